// SPDX-License-Identifier: GPL-2.0
/*
 * snapblk: control tool for the snapblk kernel module, dmsetup style.
 * Commands live in the table below; each entry's usage line doubles as
 * its help text.  See Documentation/man/snapblk.8.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "genl.h"
#include "util.h"


static bool opt_json;

struct command {
	const char *name;
	const char *args;
	const char *help;
	int min_args, max_args;
	int (*fn)(int argc, char **argv);
};

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct command commands[] = {
	{ "version", "", "print the tool's and the loaded module's versions",
	  0, 0, cmd_version },
	{ "help", "[COMMAND]", "show help for all commands or for one",
	  0, 1, cmd_help },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f,
		"usage: %s [--json] COMMAND [ARGS]\n"
		"\n"
		"Control the snapblk lazy block device and clone hook.\n"
		"\n"
		"Commands:\n", prog_name);
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %-10s %s\n", commands[i].name,
			commands[i].args, commands[i].help);
	fprintf(f,
		"\n"
		"Options:\n"
		"  -j, --json     machine-readable output (read-only commands)\n"
		"  -h, --help     this text\n"
		"  -V, --version  same as the version command\n"
		"\n"
		"Exit status: 0 success, 1 failure, 2 usage error.\n"
		"See snapblk(8).\n");
}

static const struct command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static int cmd_help(int argc, char **argv)
{
	const struct command *c;

	if (argc == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	c = find_command(argv[0]);
	if (!c)
		die(EXIT_USAGE, 0, "run 'snapblk help' for the list",
		    "unknown command '%s'", argv[0]);
	printf("usage: %s %s %s\n\n%s\n", prog_name, c->name, c->args, c->help);
	return EXIT_OK;
}

static int cmd_version(int argc, char **argv)
{
	struct sb_info info;
	struct sb_nl nl;
	int ret;

	(void)argc;
	(void)argv;
	ret = sb_nl_open(&nl);
	if (!ret) {
		ret = sb_nl_get_info(&nl, &info);
		sb_nl_close(&nl);
	}
	if (ret && ret != -ENOENT)
		die(EXIT_FAIL, -ret, sb_nl_open_hint(ret),
		    "cannot query the snapblk module");

	if (opt_json) {
		printf("{\"tools_version\":");
		json_print_string(SNAPBLK_TOOLS_VERSION);
		printf(",\"uapi_version\":%u,\"module_loaded\":%s",
		       SNAPBLK_API_VERSION, ret ? "false" : "true");
		if (!ret) {
			printf(",\"module_version\":");
			json_print_string(info.module_version);
			printf(",\"module_api_version\":%u", info.api_version);
		}
		printf("}\n");
		return EXIT_OK;
	}
	printf("tools version:      %s (API %u)\n", SNAPBLK_TOOLS_VERSION,
	       SNAPBLK_API_VERSION);
	if (ret)
		printf("module version:     (module not loaded)\n");
	else
		printf("module version:     %s (API %u)\n", info.module_version,
		       info.api_version);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const struct command *c;
	int opt, nargs;

	prog_name = "snapblk";
	/* '+': stop at the command name; its own arguments follow. */
	while ((opt = getopt_long(argc, argv, "+jhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			opt_json = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			return cmd_version(0, NULL);
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	c = find_command(argv[optind]);
	if (!c)
		die(EXIT_USAGE, 0, "run 'snapblk help' for the list of commands",
		    "unknown command '%s'", argv[optind]);
	nargs = argc - optind - 1;
	if (nargs < c->min_args || nargs > c->max_args)
		die(EXIT_USAGE, 0, "run 'snapblk help' for usage",
		    "usage: %s %s %s", prog_name, c->name, c->args);
	return c->fn(nargs, argv + optind + 1);
}
