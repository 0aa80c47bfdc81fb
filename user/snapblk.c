// SPDX-License-Identifier: GPL-2.0
/*
 * snapblk: control tool for the snapblk kernel module, dmsetup style.
 * Commands live in the table below; each entry's usage line doubles as
 * its help text.  See Documentation/man/snapblk.8.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "genl.h"
#include "manifest.h"
#include "sb_file.h"
#include "util.h"

/* Options after the command name; each command lists those it takes. */
enum {
	OPT_JSON = 1 << 0,
	OPT_KEY_FILE = 1 << 1,
	OPT_FETCH_TIMEOUT = 1 << 2,
	OPT_COUNT = 1 << 3,
};

static bool opt_json;
static const char *opt_key_file;
static uint32_t opt_fetch_timeout_ms;	/* 0: not given */
static uint32_t opt_count;		/* 0: not given */

struct command {
	const char *name;
	const char *args;
	const char *help;
	const char *options;	/* help for its options, or NULL */
	int min_args, max_args;
	unsigned int opts;	/* OPT_* it accepts */
	int (*fn)(int argc, char **argv);
};

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);
static int cmd_create(int argc, char **argv);
static int cmd_remove(int argc, char **argv);
static int cmd_ls(int argc, char **argv);
static int cmd_info(int argc, char **argv);
static int cmd_events(int argc, char **argv);

static const struct command commands[] = {
	{ "create", "NAME MANIFEST --key-file FILE [--fetch-timeout MS]",
	  "unseal MANIFEST and map its image as a device named NAME",
	  "  -k, --key-file FILE      tenant key the manifest is sealed with\n"
	  "  -t, --fetch-timeout MS   fail a chunk fetch after MS ms "
	  "(default 30000)\n"
	  "  -j, --json               print the new device as JSON\n",
	  2, 2, OPT_KEY_FILE | OPT_FETCH_TIMEOUT | OPT_JSON, cmd_create },
	{ "remove", "NAME", "remove device NAME (it must not be in use)",
	  NULL, 1, 1, 0, cmd_remove },
	{ "ls", "[--json]", "list the devices",
	  "  -j, --json               print a JSON array\n",
	  0, 0, OPT_JSON, cmd_ls },
	{ "info", "NAME [--json]",
	  "show a device's settings and counters",
	  "  -j, --json               print a JSON object\n",
	  1, 1, OPT_JSON, cmd_info },
	{ "status", "NAME [--json]", "same as info",
	  "  -j, --json               print a JSON object\n",
	  1, 1, OPT_JSON, cmd_info },
	{ "events", "[--json] [--count N]",
	  "print the module's events as they happen, one per line",
	  "  -n, --count N            exit after N events\n"
	  "  -j, --json               one JSON object per line\n",
	  0, 0, OPT_JSON | OPT_COUNT, cmd_events },
	{ "version", "", "print the tool's and the loaded module's versions",
	  NULL, 0, 0, OPT_JSON, cmd_version },
	{ "help", "[COMMAND]", "show help for all commands or for one",
	  NULL, 0, 1, 0, cmd_help },
};

#define NR_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	size_t i;

	fprintf(f,
		"usage: %s [--json] COMMAND [ARGS]\n"
		"\n"
		"Control the snapblk lazy block device and clone hook.\n"
		"\n"
		"Commands:\n", prog_name);
	for (i = 0; i < NR_COMMANDS; i++)
		fprintf(f, "  %s%s%s\n        %s\n", commands[i].name,
			*commands[i].args ? " " : "", commands[i].args,
			commands[i].help);
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

	for (i = 0; i < NR_COMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void command_usage(const struct command *c)
{
	printf("usage: %s %s%s%s\n\n%s\n", prog_name, c->name,
	       *c->args ? " " : "", c->args, c->help);
	if (c->options)
		printf("\nOptions:\n%s", c->options);
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
	command_usage(c);
	return EXIT_OK;
}

/* ------------------------------------------------------------- helpers */

/* Connect to the module's family, or say why @what failed and exit 1. */
static void sb_connect(struct sb_nl *nl, const char *what)
{
	int ret = sb_nl_open(nl);

	if (ret == -ENOENT)
		die(EXIT_FAIL, 0, "load it with 'insmod snapblk.ko' (or "
		    "'modprobe snapblk' once installed)",
		    "%s: the snapblk module is not loaded", what);
	if (ret)
		die(EXIT_FAIL, -ret, sb_nl_open_hint(ret),
		    "%s: cannot talk to the snapblk module", what);
}

/* Advice for an errno the module answered a command with. */
static const char *nl_hint(int err)
{
	switch (err) {
	case -EPERM:
	case -EACCES:
		return "this needs CAP_NET_ADMIN: are you root?";
	case -EOPNOTSUPP:
		return "the loaded module is older than these tools; "
		       "'snapblk version' shows both";
	case -EPROTO:
		return "the module's reply was not understood; do the module "
		       "and the tools match? ('snapblk version' shows both)";
	case -ENOMEM:
		return "free some memory and retry";
	case -ENOENT:
		return "'snapblk ls' lists the devices";
	default:
		return NULL;
	}
}

/*
 * Report a command the module refused: "what: kernel's message (errno
 * text)" when the module said why, else "what: errno text".  Exits 1.
 */
static noreturn void nl_die(const struct sb_nl *nl, int err,
			    const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static noreturn void nl_die(const struct sb_nl *nl, int err,
			    const char *hint, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (!hint)
		hint = nl_hint(err);
	if (nl->extack[0])
		die(EXIT_FAIL, 0, hint, "%s: %s (%s)", what, nl->extack,
		    strerror(-err));
	die(EXIT_FAIL, -err, hint, "%s", what);
}

/* A name the module accepts: 1 to SNAPBLK_NAME_LEN - 1 bytes. */
static void check_name_len(const char *name)
{
	if (!name[0] || strlen(name) >= SNAPBLK_NAME_LEN)
		die(EXIT_USAGE, 0, "a device name has 1 to 31 characters",
		    "invalid device name '%s'", name);
}

/*
 * A new device's name also becomes /dev/snapblk/NAME (udev), so keep it
 * to characters that are safe in a path and in a shell.
 */
static void check_new_name(const char *name)
{
	const char *p;

	check_name_len(name);
	for (p = name; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789_.:@+-", *p))
			break;
	if (*p || name[0] == '.' || name[0] == '-')
		die(EXIT_USAGE, 0, "use letters, digits and _ . : @ + - "
		    "(not first: . or -)", "invalid device name '%s'", name);
}

static uint32_t parse_u32(const char *s, const char *opt, uint32_t min)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min ||
	    v > UINT32_MAX)
		die(EXIT_USAGE, 0, "give a whole number, at least 1",
		    "invalid %s '%s'", opt, s);
	return v;
}

/* 1536 -> "1.5K", 524288 -> "512K", 100 -> "100B" */
static const char *fmt_size(uint64_t v, char buf[16])
{
	static const char units[] = "KMGTPE";
	int u = -1;
	uint64_t div = 1;

	while (v / div >= 1024 && u < 5) {
		div *= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, 16, "%" PRIu64 "B", v);
	else if (v % div == 0)
		snprintf(buf, 16, "%" PRIu64 "%c", v / div, units[u]);
	else
		snprintf(buf, 16, "%.1f%c", (double)v / div, units[u]);
	return buf;
}

static void print_hex(const uint8_t *p, size_t n)
{
	while (n--)
		printf("%02x", *p++);
}

/* One device as a JSON object (no newline). */
static void print_dev_json(const struct sb_dev *d)
{
	int i;

	printf("{\"name\":");
	json_print_string(d->name);
	printf(",\"index\":%" PRIu32 ",\"device\":\"/dev/snapblk%" PRIu32 "\""
	       ",\"image_size\":%" PRIu64 ",\"chunk_size\":%" PRIu32
	       ",\"image_id\":\"", d->index, d->index, d->image_size,
	       d->chunk_size);
	print_hex(d->image_id, sizeof(d->image_id));
	printf("\",\"fetch_timeout_ms\":%" PRIu32, d->fetch_timeout_ms);
	if (d->has_stats) {
		const char *sep = "";

		printf(",\"stats\":{");
		for (i = 1; i <= SNAPBLK_STAT_MAX; i++) {
			if (!(d->stat_present & (1ULL << i)) ||
			    !sb_stat_name(i))
				continue;
			printf("%s\"%s\":%" PRIu64, sep, sb_stat_name(i),
			       d->stats[i]);
			sep = ",";
		}
		printf("}");
	}
	printf("}");
}

/* -------------------------------------------------------------- create */

/* Read and unseal a manifest file, or say why not and exit 1. */
static void load_manifest(const char *path, const char *key_file,
			  struct sb_manifest *m)
{
	struct snapblk_manifest_header hdr;
	uint8_t key[SNAPBLK_TENANT_KEY_LEN], *buf;
	size_t len;
	int ret;

	sb_load_tenant_key(key_file, key);
	ret = sb_read_file(path, SB_MANIFEST_MAX_FILE_LEN, &buf, &len);
	if (ret == -EFBIG)
		die(EXIT_FAIL, 0, "check the manifest path: no manifest is "
		    "this large", "%s: %s", path,
		    sb_manifest_strerror(SB_MF_FOREIGN));
	if (ret)
		die(EXIT_FAIL, -ret, "check the manifest path",
		    "cannot read manifest %s", path);
	ret = sb_manifest_parse_header(buf, len, &hdr);
	if (!ret)
		ret = sb_manifest_unseal(buf, len, key, m);
	OPENSSL_cleanse(key, sizeof(key));
	free(buf);
	if (ret)
		die(EXIT_FAIL, 0, sb_manifest_hint(ret), "%s: %s", path,
		    sb_manifest_strerror(ret));
}

/* The chunk table, exactly as in the unsealed body, in a new memfd. */
static int table_memfd(const struct sb_manifest *m)
{
	size_t len = m->chunk_count * sizeof(struct snapblk_chunk_entry);
	int fd, ret;

	fd = memfd_create("snapblk-table", MFD_CLOEXEC);
	if (fd < 0)
		die(EXIT_FAIL, errno, errno == ENOSYS ?
		    "this kernel lacks memfd_create (Linux 3.17 or later)" :
		    NULL, "cannot create the chunk table memfd");
	ret = sb_write_all(fd, m->chunks, len);
	if (ret)
		die(EXIT_FAIL, -ret, ret == -ENOSPC || ret == -ENOMEM ?
		    "free some memory and retry" : NULL,
		    "cannot write the chunk table");
	return fd;
}

static int cmd_create(int argc, char **argv)
{
	const char *name = argv[0], *path = argv[1];
	struct sb_manifest m;
	struct sb_create req;
	struct sb_dev dev;
	struct sb_nl nl;
	char hint[128], what[64];
	int fd, ret;

	(void)argc;
	check_new_name(name);
	if (!opt_key_file)
		die(EXIT_USAGE, 0, "give the tenant key the manifest was "
		    "sealed with: --key-file FILE",
		    "create needs --key-file");
	/* Everything that can fail without the module fails first. */
	load_manifest(path, opt_key_file, &m);
	fd = table_memfd(&m);

	snprintf(what, sizeof(what), "cannot create device %s", name);
	sb_connect(&nl, what);
	memset(&req, 0, sizeof(req));
	req.name = name;
	req.image_size = m.image_size;
	req.chunk_size = m.chunk_size;
	req.image_id = m.image_id;
	req.table_fd = fd;
	req.fetch_timeout_ms = opt_fetch_timeout_ms;
	ret = sb_nl_create(&nl, &req, &dev);
	close(fd);
	sb_manifest_free(&m);
	if (ret == -EEXIST) {
		snprintf(hint, sizeof(hint), "pick another name or 'snapblk "
			 "remove %s'", name);
		die(EXIT_FAIL, 0, hint, "device %s exists", name);
	}
	if (ret == -EPROTO)
		die(EXIT_FAIL, 0, "'snapblk info NAME' shows it; do the "
		    "module and the tools match? ('snapblk version')",
		    "device %s may have been created, but the module's reply "
		    "was not understood", name);
	if (ret)
		nl_die(&nl, ret, ret == -EINVAL ?
		       "the module refused the image's sizes or chunk table; "
		       "do the module and the tools match? ('snapblk "
		       "version')" : NULL,
		       "cannot create device %s", name);
	sb_nl_close(&nl);

	if (opt_json) {
		print_dev_json(&dev);
		putchar('\n');
	} else {
		printf("/dev/snapblk%" PRIu32 "\n", dev.index);
	}
	return EXIT_OK;
}

/* -------------------------------------------------------------- remove */

static int cmd_remove(int argc, char **argv)
{
	const char *name = argv[0];
	struct sb_nl nl;
	char what[64];
	int ret;

	(void)argc;
	check_name_len(name);
	snprintf(what, sizeof(what), "cannot remove device %s", name);
	sb_connect(&nl, what);
	ret = sb_nl_remove(&nl, name);
	if (ret == -EBUSY)
		die(EXIT_FAIL, 0, "unmount it first (and close what holds it "
		    "open: 'fuser -vm /dev/snapblk/NAME')",
		    "device %s is in use (mounted or open)", name);
	if (ret == -ENOENT)
		die(EXIT_FAIL, 0, nl_hint(ret), "no device %s", name);
	if (ret)
		nl_die(&nl, ret, NULL, "cannot remove device %s", name);
	sb_nl_close(&nl);
	return EXIT_OK;
}

/* ------------------------------------------------------------ ls, info */

struct dev_list {
	struct sb_dev *devs;
	size_t n, cap;
};

static int collect_dev(const struct sb_dev *dev, void *arg)
{
	struct dev_list *l = arg;
	struct sb_dev *p;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		p = realloc(l->devs, l->cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->devs = p;
	}
	l->devs[l->n++] = *dev;
	return 0;
}

static int cmp_dev(const void *a, const void *b)
{
	const struct sb_dev *x = a, *y = b;

	return x->index < y->index ? -1 : x->index > y->index;
}

static int cmd_ls(int argc, char **argv)
{
	struct dev_list l = { 0 };
	char size[16], csize[16], dev[32], res[48];
	struct sb_nl nl;
	size_t i;
	int ret, w = 4;

	(void)argc;
	(void)argv;
	sb_connect(&nl, "cannot list the devices");
	ret = sb_nl_status_all(&nl, collect_dev, &l);
	if (ret)
		nl_die(&nl, ret, NULL, "cannot list the devices");
	sb_nl_close(&nl);
	qsort(l.devs, l.n, sizeof(*l.devs), cmp_dev);

	if (opt_json) {
		putchar('[');
		for (i = 0; i < l.n; i++) {
			if (i)
				putchar(',');
			print_dev_json(&l.devs[i]);
		}
		printf("]\n");
		free(l.devs);
		return EXIT_OK;
	}
	for (i = 0; i < l.n; i++)
		if ((int)strlen(l.devs[i].name) > w)
			w = strlen(l.devs[i].name);
	printf("%-*s  %-16s %8s %10s  %s\n", w, "NAME", "DEVICE", "SIZE",
	       "CHUNK-SIZE", "RESIDENT/CHUNKS");
	for (i = 0; i < l.n; i++) {
		const struct sb_dev *d = &l.devs[i];

		snprintf(dev, sizeof(dev), "/dev/snapblk%" PRIu32, d->index);
		snprintf(res, sizeof(res), "%" PRIu64 "/%" PRIu64,
			 d->stats[SNAPBLK_STAT_RESIDENT],
			 d->stats[SNAPBLK_STAT_CHUNKS]);
		printf("%-*s  %-16s %8s %10s  %s\n", w, d->name, dev,
		       fmt_size(d->image_size, size),
		       fmt_size(d->chunk_size, csize), res);
	}
	free(l.devs);
	return EXIT_OK;
}

/* Labels of the counters for people; JSON uses sb_stat_name(). */
static const char *const stat_labels[SNAPBLK_STAT_MAX + 1] = {
	[SNAPBLK_STAT_CHUNKS] = "chunks",
	[SNAPBLK_STAT_ZERO_CHUNKS] = "zero chunks",
	[SNAPBLK_STAT_RESIDENT] = "resident chunks",
	[SNAPBLK_STAT_CACHE_HITS] = "cache hits",
	[SNAPBLK_STAT_CACHE_MISSES] = "cache misses",
	[SNAPBLK_STAT_BYTES_FETCHED] = "bytes fetched",
	[SNAPBLK_STAT_FETCH_ERRORS] = "fetch errors",
	[SNAPBLK_STAT_INFLIGHT] = "fetches in flight",
};

static int cmd_info(int argc, char **argv)
{
	const char *name = argv[0];
	char size[16], what[64];
	struct sb_dev d;
	struct sb_nl nl;
	int i, ret;

	(void)argc;
	check_name_len(name);
	snprintf(what, sizeof(what), "cannot query device %s", name);
	sb_connect(&nl, what);
	ret = sb_nl_status(&nl, name, &d);
	if (ret == -ENOENT)
		die(EXIT_FAIL, 0, nl_hint(ret), "no device %s", name);
	if (ret)
		nl_die(&nl, ret, NULL, "cannot query device %s", name);
	sb_nl_close(&nl);

	if (opt_json) {
		print_dev_json(&d);
		putchar('\n');
		return EXIT_OK;
	}
	printf("%-18s %s\n", "name:", d.name);
	printf("%-18s /dev/snapblk%" PRIu32 "\n", "device:", d.index);
	printf("%-18s %" PRIu64 " (%s)\n", "image size:", d.image_size,
	       fmt_size(d.image_size, size));
	printf("%-18s %" PRIu32 " (%s)\n", "chunk size:", d.chunk_size,
	       fmt_size(d.chunk_size, size));
	printf("%-18s ", "image id:");
	print_hex(d.image_id, sizeof(d.image_id));
	printf("\n%-18s %" PRIu32 " ms\n", "fetch timeout:",
	       d.fetch_timeout_ms);
	for (i = 1; i <= SNAPBLK_STAT_MAX; i++) {
		char label[32];

		if (!(d.stat_present & (1ULL << i)) || !stat_labels[i])
			continue;
		snprintf(label, sizeof(label), "%s:", stat_labels[i]);
		printf("%-18s %" PRIu64 "\n", label, d.stats[i]);
	}
	return EXIT_OK;
}

/* -------------------------------------------------------------- events */

struct events {
	uint32_t seen;
};

static const char *event_name(uint8_t cmd)
{
	switch (cmd) {
	case SNAPBLK_EVENT_DEVICE_ADDED:
		return "device-added";
	case SNAPBLK_EVENT_DEVICE_REMOVED:
		return "device-removed";
	case SNAPBLK_EVENT_CHUNK_ERROR:
		return "chunk-error";
	default:
		return "unknown";
	}
}

static void print_event_json(const struct sb_event *ev)
{
	printf("{\"event\":\"%s\"", event_name(ev->cmd));
	switch (ev->cmd) {
	case SNAPBLK_EVENT_DEVICE_ADDED:
	case SNAPBLK_EVENT_DEVICE_REMOVED:
		printf(",\"name\":");
		json_print_string(ev->dev.name);
		printf(",\"index\":%" PRIu32 ",\"device\":\"/dev/snapblk%"
		       PRIu32 "\"", ev->dev.index, ev->dev.index);
		break;
	case SNAPBLK_EVENT_CHUNK_ERROR:
		printf(",\"name\":");
		json_print_string(ev->dev.name);
		printf(",\"chunk\":%" PRIu64 ",\"errno\":%" PRIu32
		       ",\"error\":", ev->chunk, ev->error);
		json_print_string(strerror(ev->error));
		break;
	default:
		printf(",\"cmd\":%u", ev->cmd);
		if (ev->dev.name[0]) {
			printf(",\"name\":");
			json_print_string(ev->dev.name);
		}
		break;
	}
	printf("}\n");
}

static void print_event(const struct sb_event *ev)
{
	switch (ev->cmd) {
	case SNAPBLK_EVENT_DEVICE_ADDED:
	case SNAPBLK_EVENT_DEVICE_REMOVED:
		printf("device %s: %s /dev/snapblk%" PRIu32 "\n",
		       ev->cmd == SNAPBLK_EVENT_DEVICE_ADDED ? "added" :
		       "removed", ev->dev.name, ev->dev.index);
		break;
	case SNAPBLK_EVENT_CHUNK_ERROR:
		printf("chunk error: %s chunk %" PRIu64 ": %s\n",
		       ev->dev.name, ev->chunk, strerror(ev->error));
		break;
	default:
		printf("unknown event %u%s%s\n", ev->cmd,
		       ev->dev.name[0] ? ": " : "", ev->dev.name);
		break;
	}
}

static int on_event(const struct sb_event *ev, void *arg)
{
	struct events *e = arg;

	if (opt_json)
		print_event_json(ev);
	else
		print_event(ev);
	if (fflush(stdout))
		die(EXIT_FAIL, errno, NULL, "cannot write the output");
	e->seen++;
	return opt_count && e->seen >= opt_count;
}

static void on_lost(void *arg)
{
	(void)arg;
	err_report(0, "events came faster than they were read; query "
		   "'snapblk ls' for the current state",
		   "warning: some events were lost");
}

static int cmd_events(int argc, char **argv)
{
	struct events e = { 0 };
	struct sb_nl nl;
	int ret;

	(void)argc;
	(void)argv;
	sb_connect(&nl, "cannot listen to events");
	ret = sb_nl_listen(&nl, SNAPBLK_GENL_MCGRP_EVENTS, on_event, on_lost,
			   &e);
	if (ret < 0)
		die(EXIT_FAIL, -ret, ret == -ENOENT ?
		    "the loaded module is older than these tools; "
		    "'snapblk version' shows both" : nl_hint(ret),
		    "cannot listen to the module's events");
	sb_nl_close(&nl);
	return EXIT_OK;
}

/* ------------------------------------------------------------- version */

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

/* ---------------------------------------------------------------- main */

/*
 * Parse the options that follow the command name (anywhere among its
 * arguments); returns the number of positional arguments left at argv[1..].
 */
static int parse_command_opts(const struct command *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "fetch-timeout", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char hint[64];
	unsigned int want;
	int opt;

	snprintf(hint, sizeof(hint), "run 'snapblk help %s' for usage",
		 c->name);
	opterr = 0;
	optind = 0;	/* reinitialise getopt: argv[0] is the command */
	while ((opt = getopt_long(argc, argv, ":jk:t:n:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			command_usage(c);
			exit(EXIT_OK);
		case ':':
			die(EXIT_USAGE, 0, hint, "option '%s' needs a value",
			    argv[optind - 1]);
		case '?':
			die(EXIT_USAGE, 0, hint, "unknown option '%s'",
			    argv[optind - 1]);
		}
		want = opt == 'j' ? OPT_JSON : opt == 'k' ? OPT_KEY_FILE :
		       opt == 't' ? OPT_FETCH_TIMEOUT : OPT_COUNT;
		if (!(c->opts & want))
			die(EXIT_USAGE, 0, hint,
			    "option --%s does not apply to '%s'",
			    opt == 'j' ? "json" : opt == 'k' ? "key-file" :
			    opt == 't' ? "fetch-timeout" : "count", c->name);
		switch (opt) {
		case 'j':
			opt_json = true;
			break;
		case 'k':
			opt_key_file = optarg;
			break;
		case 't':
			opt_fetch_timeout_ms = parse_u32(optarg,
							 "--fetch-timeout", 1);
			break;
		case 'n':
			opt_count = parse_u32(optarg, "--count", 1);
			break;
		}
	}
	return argc - optind;
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
	int opt, nargs, ret;

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
	argc -= optind;
	argv += optind;
	nargs = parse_command_opts(c, argc, argv);
	if (nargs < c->min_args || nargs > c->max_args) {
		char hint[64];

		snprintf(hint, sizeof(hint), "run 'snapblk help %s' for usage",
			 c->name);
		die(EXIT_USAGE, 0, hint, "usage: %s %s%s%s", prog_name,
		    c->name, *c->args ? " " : "", c->args);
	}
	ret = c->fn(nargs, argv + optind);
	if (fflush(stdout) || ferror(stdout))
		die(EXIT_FAIL, errno, NULL, "cannot write the output");
	return ret;
}
