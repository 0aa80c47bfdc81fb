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
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "hex.h"
#include "json.h"
#include "genl.h"
#include "manifest.h"
#include "file.h"
#include "util.h"
#include "snapblk_gen.h"
#include "snapblk.h"

/* Options after the command name; each command lists those it takes. */
enum {
	OPT_JSON = 1 << 0,
	OPT_KEY_FILE = 1 << 1,
	OPT_FETCH_TIMEOUT = 1 << 2,
	OPT_COUNT = 1 << 3,
	OPT_EXEC = 1 << 4,
	OPT_TIMEOUT = 1 << 5,
	OPT_ID = 1 << 6,
	OPT_LOOP = 1 << 7,
	OPT_OUTPUT = 1 << 8,
	OPT_READAHEAD = 1 << 9,
	OPT_MAX_INFLIGHT = 1 << 10,
	OPT_PREFETCH = 1 << 11,
	OPT_HYDRATE = 1 << 12,
	OPT_STOP = 1 << 13,
	OPT_PROMETHEUS = 1 << 14,
	OPT_WAIT = 1 << 15,
};

struct sb_cli_opts sb_cli_opts;
static const char *opt_key_file;
static uint32_t opt_fetch_timeout_ms;	/* 0: not given */
static uint32_t opt_count;		/* 0: not given */
static const char *opt_exec;		/* wait-clone --exec */
static uint32_t opt_timeout;		/* wait-clone --timeout, 0: none */
static const char *opt_id;		/* simulate-clone --id */
static bool opt_loop;			/* wait-clone --loop */
static uint32_t opt_readahead;		/* create --readahead, 0: none */
static uint32_t opt_max_inflight;	/* create --max-inflight, 0: none */
static const char *opt_prefetch;	/* create --prefetch FILE */
static bool opt_hydrate;		/* create --hydrate */

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
static int cmd_events(int argc, char **argv);
static int cmd_clone_status(int argc, char **argv);
static int cmd_wait_clone(int argc, char **argv);
static int cmd_simulate_clone(int argc, char **argv);

static const struct command commands[] = {
	{ "create", "NAME MANIFEST --key-file FILE [--fetch-timeout MS] "
	  "[--readahead N] [--max-inflight N] [--prefetch FILE | --hydrate] "
	  "[--wait]",
	  "unseal MANIFEST and map its image as a device named NAME",
	  "  -k, --key-file FILE      tenant key the manifest is sealed with\n"
	  "  -t, --fetch-timeout MS   fail a chunk fetch after MS ms "
	  "(default 30000)\n"
	  "  -r, --readahead N        when reads move on to the next chunk, "
	  "fetch the\n"
	  "                           N after it in the background (0 to 256;\n"
	  "                           default 0: off)\n"
	  "  -m, --max-inflight N     at most N fetches of the device at once "
	  "(1 to\n"
	  "                           1024; default 16)\n"
	  "  -p, --prefetch FILE      then fetch the chunks of record file "
	  "FILE in\n"
	  "                           the background, in its order ('snapblk "
	  "record')\n"
	  "  -H, --hydrate            then fetch every chunk in the "
	  "background\n"
	  "  -w, --wait               return once that prefetch has ended\n"
	  "  -j, --json               print the new device as JSON\n",
	  2, 2, OPT_KEY_FILE | OPT_FETCH_TIMEOUT | OPT_JSON | OPT_READAHEAD |
	  OPT_MAX_INFLIGHT | OPT_PREFETCH | OPT_HYDRATE | OPT_WAIT,
	  cmd_create },
	{ "remove", "NAME", "remove device NAME (it must not be in use)",
	  NULL, 1, 1, 0, cmd_remove },
	{ "ls", "[--json]", "list the devices",
	  "  -j, --json               print a JSON array\n",
	  0, 0, OPT_JSON, cmd_ls },
	{ "info", "NAME [--json]",
	  "show a device's settings and counters (as status NAME)",
	  "  -j, --json               print a JSON object\n",
	  1, 1, OPT_JSON, sb_cli_info },
	{ "status", "[NAME] [--json | --prometheus]",
	  "show a device in full, or every device and the shared cache",
	  "  -j, --json               print a JSON object\n"
	  "  -P, --prometheus         print Prometheus text exposition "
	  "format\n",
	  0, 1, OPT_JSON | OPT_PROMETHEUS, sb_cli_status },
	{ "record", "NAME --output FILE [--json]",
	  "save the order of the device's first reads to FILE, for --prefetch",
	  "  -o, --output FILE        the record file to write (replaced "
	  "atomically)\n"
	  "  -j, --json               print what was recorded as JSON\n",
	  1, 1, OPT_OUTPUT | OPT_JSON, sb_cli_record },
	{ "prefetch", "NAME FILE [--wait] | --stop NAME",
	  "fetch the chunks of record file FILE in the background, or stop "
	  "that",
	  "  -s, --stop               stop the device's running prefetch or "
	  "hydration\n"
	  "  -w, --wait               return once the prefetch has ended\n"
	  "  -j, --json               print the device as JSON\n",
	  1, 2, OPT_STOP | OPT_WAIT | OPT_JSON, sb_cli_prefetch },
	{ "hydrate", "NAME [--wait]",
	  "fetch every chunk of the device in the background",
	  "  -w, --wait               return once every chunk is fetched\n"
	  "  -j, --json               print the device as JSON\n",
	  1, 1, OPT_WAIT | OPT_JSON, sb_cli_hydrate },
	{ "events", "[--json] [--count N]",
	  "print the module's events as they happen, one per line",
	  "  -n, --count N            exit after N events\n"
	  "  -j, --json               one JSON object per line\n",
	  0, 0, OPT_JSON | OPT_COUNT, cmd_events },
	{ "clone-status", "[--json]",
	  "show the clone generation, its sources and counters",
	  "  -j, --json               print a JSON object\n",
	  0, 0, OPT_JSON, cmd_clone_status },
	{ "wait-clone", "[--exec CMD [--loop]] [--timeout S] [--json]",
	  "block until the next VM clone, print it, then run CMD",
	  "  -e, --exec CMD           then run CMD with /bin/sh -c; its exit "
	  "status\n"
	  "                           is ours; it finds SNAPBLK_GENERATION and\n"
	  "                           SNAPBLK_CLONE_SOURCE in its environment\n"
	  "  -l, --loop               run CMD after every clone, forever, "
	  "missing none\n"
	  "  -T, --timeout S          give up after S seconds without a clone "
	  "(exit 3)\n"
	  "  -j, --json               print the clone as a JSON object\n",
	  0, 0, OPT_EXEC | OPT_LOOP | OPT_TIMEOUT | OPT_JSON, cmd_wait_clone },
	{ "simulate-clone", "[--id UUID]",
	  "tell the module a clone happened, as a hypervisor would (tests)",
	  "  -i, --id UUID            the new generation ID (default: random,\n"
	  "                           drawn from the RNG the clone shares)\n",
	  0, 0, OPT_ID, cmd_simulate_clone },
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
		"Exit status: 0 success, 1 failure, 2 usage error, 4 manifest\n"
		"authentication failed (wrong key or damaged manifest), 5 not a\n"
		"manifest, truncated, or unsupported version.\n"
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

void sb_cli_connect(struct sb_nl *nl, const char *what)
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

const char *sb_cli_nl_hint(int err)
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

noreturn void sb_cli_nl_die(const struct sb_nl *nl, int err,
			    const char *hint, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (!hint)
		hint = sb_cli_nl_hint(err);
	if (nl->extack[0])
		die(EXIT_FAIL, 0, hint, "%s: %s (%s)", what, nl->extack,
		    strerror(-err));
	die(EXIT_FAIL, -err, hint, "%s", what);
}

void sb_cli_check_name_len(const char *name)
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

	sb_cli_check_name_len(name);
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
	unsigned long v;

	if (parse_ulong(s, min, UINT32_MAX, &v))
		die(EXIT_USAGE, 0, "give a whole number, at least 1",
		    "invalid %s '%s'", opt, s);
	return v;
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
		die(SB_EXIT_MANIFEST, 0, "check the manifest path: no manifest "
		    "is this large", "%s: %s", path,
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
		die(sb_manifest_exit(ret), 0, sb_manifest_hint(ret), "%s: %s",
		    path, sb_manifest_strerror(ret));
}

int sb_cli_memfd(const char *name, const void *buf, size_t len,
		 const char *what)
{
	int fd, ret;

	fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		die(EXIT_FAIL, errno, errno == ENOSYS ?
		    "this kernel lacks memfd_create (Linux 3.17 or later)" :
		    NULL, "cannot create the memfd for %s", what);
	ret = sb_write_all(fd, buf, len);
	if (ret)
		die(EXIT_FAIL, -ret, ret == -ENOSPC || ret == -ENOMEM ?
		    "free some memory and retry" : NULL,
		    "cannot write %s", what);
	return fd;
}

void sb_cli_require_api(struct sb_nl *nl, uint32_t api, const char *what,
			const char *feature)
{
	struct sb_info info;
	int ret;

	ret = sb_nl_get_info(nl, &info);
	if (ret)
		sb_cli_nl_die(nl, ret, NULL, "%s", what);
	if (info.api_version < api)
		die(EXIT_FAIL, 0, "load the module that came with these tools "
		    "('snapblk version' shows both)",
		    "%s: the loaded module (API %" PRIu32 ") has no %s; that "
		    "needs API %" PRIu32, what, info.api_version, feature, api);
}

/*
 * create --prefetch/--hydrate: start it on the new device, or remove the
 * device again and exit 1, so that create does all or nothing.
 */
static void create_prefetch(struct sb_nl *nl, const char *name,
			    const uint8_t *image_id,
			    const struct sb_trace *trace, struct sb_dev *dev)
{
	struct sb_nl refused;
	char hint[160];
	int ret;

	ret = sb_cli_start_prefetch(nl, name, image_id, trace ?
				    SB_PREFETCH_LIST : SB_PREFETCH_HYDRATE,
				    trace, dev);
	if (!ret)
		return;
	/* The removal below clears the module's message: keep it. */
	refused = *nl;
	if (!sb_nl_remove(nl, name))
		snprintf(hint, sizeof(hint), "device %s was removed again; "
			 "create it without %s to map it anyway", name,
			 trace ? "--prefetch" : "--hydrate");
	else
		snprintf(hint, sizeof(hint), "device %s stays mapped, "
			 "without it; 'snapblk remove %s' takes it down", name,
			 name);
	sb_cli_nl_die(&refused, ret, hint, "cannot start the %s of device %s",
		      trace ? "prefetch" : "hydration", name);
}

static int cmd_create(int argc, char **argv)
{
	const char *name = argv[0], *path = argv[1];
	struct sb_trace trace = { 0 };
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
	if (opt_prefetch)
		sb_cli_load_trace(opt_prefetch, &trace, m.image_id,
				  m.chunk_size, m.chunk_count,
				  "this manifest's");
	fd = sb_cli_memfd("snapblk-table", m.chunks,
			  m.chunk_count * sizeof(struct snapblk_chunk_entry),
			  "the chunk table");

	snprintf(what, sizeof(what), "cannot create device %s", name);
	sb_cli_connect(&nl, what);
	if (opt_readahead || opt_max_inflight || opt_prefetch || opt_hydrate)
		sb_cli_require_api(&nl, 4, what, "readahead, max-inflight, "
				   "prefetch or hydration");
	memset(&req, 0, sizeof(req));
	req.name = name;
	req.image_size = m.image_size;
	req.chunk_size = m.chunk_size;
	req.image_id = m.image_id;
	req.table_fd = fd;
	req.fetch_timeout_ms = opt_fetch_timeout_ms;
	req.readahead_chunks = opt_readahead;
	req.max_inflight = opt_max_inflight;
	ret = sb_nl_create(&nl, &req, &dev);
	close(fd);
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
		sb_cli_nl_die(&nl, ret, ret == -EINVAL ?
		       "the module refused the image's sizes or chunk table; "
		       "do the module and the tools match? ('snapblk "
		       "version')" : NULL,
		       "cannot create device %s", name);
	if (opt_prefetch || opt_hydrate)
		create_prefetch(&nl, name, m.image_id,
				opt_prefetch ? &trace : NULL, &dev);
	sb_manifest_free(&m);
	sb_trace_free(&trace);
	/* The device node first: a script waiting on it can go on. */
	if (!sb_cli_opts.json) {
		printf("/dev/snapblk%" PRIu32 "\n", dev.index);
		if (fflush(stdout))
			die(EXIT_FAIL, errno, NULL, "cannot write the output");
	}
	if (sb_cli_opts.wait)
		sb_cli_wait_prefetch(&nl, name, &dev);
	sb_nl_close(&nl);

	if (sb_cli_opts.json) {
		sb_cli_print_dev_json(&dev);
		putchar('\n');
	}
	return sb_cli_opts.wait ? sb_cli_prefetch_outcome(&dev) : EXIT_OK;
}

/* -------------------------------------------------------------- remove */

static int cmd_remove(int argc, char **argv)
{
	const char *name = argv[0];
	struct sb_nl nl;
	char what[64];
	int ret;

	(void)argc;
	sb_cli_check_name_len(name);
	snprintf(what, sizeof(what), "cannot remove device %s", name);
	sb_cli_connect(&nl, what);
	ret = sb_nl_remove(&nl, name);
	if (ret == -EBUSY)
		die(EXIT_FAIL, 0, "unmount it first (and close what holds it "
		    "open: 'fuser -vm /dev/snapblk/NAME')",
		    "device %s is in use (mounted or open)", name);
	if (ret == -ENOENT)
		die(EXIT_FAIL, 0, sb_cli_nl_hint(ret), "no device %s", name);
	if (ret)
		sb_cli_nl_die(&nl, ret, NULL, "cannot remove device %s", name);
	sb_nl_close(&nl);
	return EXIT_OK;
}

/* ------------------------------------------------------------ ls, info */

static int cmd_ls(int argc, char **argv)
{
	struct {
		struct sb_dev *devs;
		size_t n;
	} l;
	char size[16], csize[16], dev[32], res[48];
	struct sb_nl nl;
	size_t i;
	int w = 4;

	(void)argc;
	(void)argv;
	sb_cli_connect(&nl, "cannot list the devices");
	l.n = sb_cli_list_devices(&nl, "cannot list the devices", &l.devs);
	sb_nl_close(&nl);

	if (sb_cli_opts.json) {
		putchar('[');
		for (i = 0; i < l.n; i++) {
			if (i)
				putchar(',');
			sb_cli_print_dev_json(&l.devs[i]);
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
		       sb_fmt_size(d->image_size, SB_SIZE_SHORT, size,
				   sizeof(size)),
		       sb_fmt_size(d->chunk_size, SB_SIZE_SHORT, csize,
				   sizeof(csize)), res);
	}
	free(l.devs);
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
	case SNAPBLK_EVENT_CLONE:
		return "clone";
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
		if (ev->has_addr) {
			char hex[2 * SNAPBLK_ADDR_LEN + 1];

			sb_hex(ev->addr, SNAPBLK_ADDR_LEN, hex);
			printf(",\"address\":\"%s\",\"refetch\":%s", hex,
			       ev->refetch ? "true" : "false");
		}
		break;
	case SNAPBLK_EVENT_CLONE:
		printf(",\"generation\":%" PRIu64 ",\"source\":\"%s\""
		       ",\"reseed\":\"%s\"", ev->generation,
		       sb_clone_source_name(ev->clone_source),
		       sb_reseed_name(ev->reseed));
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
		if (ev->has_addr) {
			char hex[2 * SNAPBLK_ADDR_LEN + 1];

			sb_hex(ev->addr, SNAPBLK_ADDR_LEN, hex);
			printf("chunk error: %s chunk %" PRIu64 " (%.16s...): "
			       "%s%s\n", ev->dev.name, ev->chunk, hex,
			       strerror(ev->error), ev->refetch ?
			       "; fetching it again" : "");
		} else {
			printf("chunk error: %s chunk %" PRIu64 ": %s\n",
			       ev->dev.name, ev->chunk, strerror(ev->error));
		}
		break;
	case SNAPBLK_EVENT_CLONE:
		printf("clone: generation %" PRIu64 " from %s, RNG reseed %s\n",
		       ev->generation, sb_clone_source_name(ev->clone_source),
		       sb_reseed_name(ev->reseed));
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

	if (sb_cli_opts.json)
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
	sb_cli_connect(&nl, "cannot listen to events");
	ret = sb_nl_listen(&nl, SNAPBLK_GENL_MCGRP_EVENTS, on_event, on_lost,
			   &e);
	if (ret < 0)
		die(EXIT_FAIL, -ret, ret == -ENOENT ?
		    "the loaded module is older than these tools; "
		    "'snapblk version' shows both" : sb_cli_nl_hint(ret),
		    "cannot listen to the module's events");
	sb_nl_close(&nl);
	return EXIT_OK;
}

/* --------------------------------------------------------------- clone */

static int cmd_clone_status(int argc, char **argv)
{
	static const char *const stat_names[SNAPBLK_CLONE_STAT_MAX + 1] = {
		[SNAPBLK_CLONE_STAT_EVENTS] = "events",
		[SNAPBLK_CLONE_STAT_DUPLICATES] = "duplicates",
		[SNAPBLK_CLONE_STAT_RESEEDS] = "reseeds",
		[SNAPBLK_CLONE_STAT_RESEED_FAILURES] = "reseed_failures",
	};
	struct sb_clone_status st;
	struct sb_nl nl;
	uint32_t s;
	int i, n = 0, ret;

	(void)argc;
	(void)argv;
	sb_cli_connect(&nl, "cannot query the clone generation");
	ret = sb_nl_clone_status(&nl, &st);
	if (ret)
		sb_cli_nl_die(&nl, ret, NULL,
			      "cannot query the clone generation");
	sb_nl_close(&nl);

	if (sb_cli_opts.json) {
		printf("{\"generation\":%" PRIu64 ",\"last_source\":\"%s\""
		       ",\"sources\":[", st.generation,
		       sb_clone_source_name(st.last_source));
		for (s = 1; s < 32; s++)
			if (st.sources & (1U << s))
				printf("%s\"%s\"", n++ ? "," : "",
				       sb_clone_source_name(s));
		printf("]");
		for (i = 1; i <= SNAPBLK_CLONE_STAT_MAX; i++)
			if (stat_names[i])
				printf(",\"%s\":%" PRIu64, stat_names[i],
				       st.stats[i]);
		printf("}\n");
		return EXIT_OK;
	}
	printf("generation:       %" PRIu64 "\n", st.generation);
	printf("last source:      %s\n", sb_clone_source_name(st.last_source));
	printf("sources:         ");
	for (s = 1; s < 32; s++)
		if (st.sources & (1U << s))
			printf(" %s", sb_clone_source_name(s));
	printf("\n");
	for (i = 1; i <= SNAPBLK_CLONE_STAT_MAX; i++)
		if (stat_names[i])
			printf("%-17s %" PRIu64 "\n", stat_names[i],
			       st.stats[i]);
	return EXIT_OK;
}

/* Exit status of wait-clone when --timeout expires. */
#define EXIT_TIMEOUT 3

/* Wait for the generation to change on @fd; the new state in @gi. */
static void wait_generation(int fd, struct snapblk_gen_info *gi)
{
	struct pollfd pfd;
	ssize_t n;
	int ret;

	for (;;) {
		n = read(fd, gi, sizeof(*gi));
		if (n == (ssize_t)sizeof(*gi))
			return;
		if (n >= 0)
			die(EXIT_FAIL, 0, "do the module and the tools match? "
			    "('snapblk version' shows both)",
			    "short read from %s", SNAPBLK_GEN_DEVICE);
		if (errno != EAGAIN && errno != EINTR)
			die(EXIT_FAIL, errno, NULL, "cannot read %s",
			    SNAPBLK_GEN_DEVICE);
		pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
		ret = poll(&pfd, 1, opt_timeout ? (int)opt_timeout * 1000 : -1);
		if (ret < 0 && errno != EINTR)
			die(EXIT_FAIL, errno, NULL, "cannot wait on %s",
			    SNAPBLK_GEN_DEVICE);
		if (ret == 0) {
			err_report(0, NULL, "no clone within %" PRIu32 " s",
				   opt_timeout);
			exit(EXIT_TIMEOUT);
		}
	}
}

static void print_clone(const struct snapblk_gen_info *gi)
{
	if (sb_cli_opts.json)
		printf("{\"generation\":%" PRIu64 ",\"source\":\"%s\","
		       "\"reseed\":\"%s\",\"clone_time_ns\":%" PRIu64 "}\n",
		       (uint64_t)gi->generation, sb_clone_source_name(gi->source),
		       sb_reseed_name(gi->reseed), (uint64_t)gi->clone_time_ns);
	else
		printf("clone: generation %" PRIu64 " from %s, RNG reseed %s\n",
		       (uint64_t)gi->generation, sb_clone_source_name(gi->source),
		       sb_reseed_name(gi->reseed));
	if (fflush(stdout))
		die(EXIT_FAIL, errno, NULL, "cannot write the output");
}

/* Run the --exec command for clone @gi: in our place, or (loop) a child. */
static void run_hook(const struct snapblk_gen_info *gi, bool replace)
{
	char env[32];
	pid_t pid = 0;
	int status;

	if (!replace) {
		pid = fork();
		if (pid < 0)
			die(EXIT_FAIL, errno, NULL, "cannot fork for --exec");
	}
	if (pid == 0) {
		snprintf(env, sizeof(env), "%" PRIu64, (uint64_t)gi->generation);
		if (setenv("SNAPBLK_GENERATION", env, 1) ||
		    setenv("SNAPBLK_CLONE_SOURCE",
			   sb_clone_source_name(gi->source), 1))
			die(EXIT_FAIL, errno, NULL, "cannot set the environment");
		execl("/bin/sh", "sh", "-c", opt_exec, (char *)NULL);
		die(EXIT_FAIL, errno, NULL, "cannot run /bin/sh -c '%s'",
		    opt_exec);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die(EXIT_FAIL, errno, NULL, "cannot wait for --exec");
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		err_report(0, "the next clone runs it again",
			   "warning: '%s' failed for generation %" PRIu64
			   " (status %d)", opt_exec, (uint64_t)gi->generation,
			   WIFEXITED(status) ? WEXITSTATUS(status) : 128 +
			   WTERMSIG(status));
}

static int cmd_wait_clone(int argc, char **argv)
{
	struct snapblk_gen_info gi;
	int fd;

	(void)argc;
	(void)argv;
	if (opt_loop && !opt_exec)
		die(EXIT_USAGE, 0, "run 'snapblk help wait-clone' for usage",
		    "--loop needs --exec");
	fd = open(SNAPBLK_GEN_DEVICE, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		die(EXIT_FAIL, errno, errno == ENOENT ?
		    "load the module: 'insmod snapblk.ko'" : NULL,
		    "cannot open %s", SNAPBLK_GEN_DEVICE);
	/*
	 * With --loop the file stays open between hooks, so a clone that
	 * happens while a hook runs is not missed: the next read returns it
	 * (several clones meanwhile are one, the latest).
	 */
	do {
		wait_generation(fd, &gi);
		print_clone(&gi);
		if (opt_exec)
			run_hook(&gi, !opt_loop);
	} while (opt_loop);
	close(fd);
	return EXIT_OK;
}

/* "0123...ef" or "01234567-89ab-cdef-0123-456789abcdef" */
static void parse_uuid(const char *s, uint8_t id[SNAPBLK_GENERATION_ID_LEN])
{
	const char *p = s;
	int i, hi, lo;

	for (i = 0; i < SNAPBLK_GENERATION_ID_LEN; i++) {
		if (*p == '-' && (i == 4 || i == 6 || i == 8 || i == 10))
			p++;
		hi = sb_hexval(p[0]);
		lo = hi < 0 ? -1 : sb_hexval(p[1]);
		if (lo < 0)
			break;
		id[i] = hi << 4 | lo;
		p += 2;
	}
	if (i < SNAPBLK_GENERATION_ID_LEN || *p)
		die(EXIT_USAGE, 0, "give 32 hex digits, dashes allowed as in "
		    "a UUID", "invalid --id '%s'", s);
}

static int cmd_simulate_clone(int argc, char **argv)
{
	uint8_t id[SNAPBLK_GENERATION_ID_LEN];
	uint64_t generation;
	struct sb_nl nl;
	int ret;

	(void)argc;
	(void)argv;
	if (opt_id)
		parse_uuid(opt_id, id);
	sb_cli_connect(&nl, "cannot simulate a clone");
	ret = sb_nl_clone_trigger(&nl, opt_id ? id : NULL, &generation);
	if (ret)
		sb_cli_nl_die(&nl, ret, ret == -EPERM ?
		       "this needs CAP_NET_ADMIN and CAP_SYS_ADMIN: are you "
		       "root?" : NULL, "cannot simulate a clone");
	sb_nl_close(&nl);
	printf("generation %" PRIu64 "\n", generation);
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

	if (sb_cli_opts.json) {
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

static unsigned int opt_bit(int opt)
{
	switch (opt) {
	case 'j':
		return OPT_JSON;
	case 'k':
		return OPT_KEY_FILE;
	case 't':
		return OPT_FETCH_TIMEOUT;
	case 'n':
		return OPT_COUNT;
	case 'e':
		return OPT_EXEC;
	case 'T':
		return OPT_TIMEOUT;
	case 'l':
		return OPT_LOOP;
	case 'o':
		return OPT_OUTPUT;
	case 'r':
		return OPT_READAHEAD;
	case 'm':
		return OPT_MAX_INFLIGHT;
	case 'p':
		return OPT_PREFETCH;
	case 'H':
		return OPT_HYDRATE;
	case 's':
		return OPT_STOP;
	case 'P':
		return OPT_PROMETHEUS;
	case 'w':
		return OPT_WAIT;
	default:
		return OPT_ID;
	}
}

static const char *opt_long_name(const struct option *opts, int opt)
{
	for (; opts->name; opts++)
		if (opts->val == opt)
			return opts->name;
	return "?";
}

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
		{ "exec", required_argument, NULL, 'e' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "id", required_argument, NULL, 'i' },
		{ "loop", no_argument, NULL, 'l' },
		{ "output", required_argument, NULL, 'o' },
		{ "readahead", required_argument, NULL, 'r' },
		{ "max-inflight", required_argument, NULL, 'm' },
		{ "prefetch", required_argument, NULL, 'p' },
		{ "hydrate", no_argument, NULL, 'H' },
		{ "stop", no_argument, NULL, 's' },
		{ "prometheus", no_argument, NULL, 'P' },
		{ "wait", no_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char hint[64];
	unsigned long v;
	unsigned int want;
	int opt;

	snprintf(hint, sizeof(hint), "run 'snapblk help %s' for usage",
		 c->name);
	opterr = 0;
	optind = 0;	/* reinitialise getopt: argv[0] is the command */
	while ((opt = getopt_long(argc, argv, ":jk:t:n:e:T:i:lo:r:m:p:HsPwh",
				  opts, NULL)) != -1) {
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
		want = opt_bit(opt);
		if (!(c->opts & want))
			die(EXIT_USAGE, 0, hint,
			    "option --%s does not apply to '%s'",
			    opt_long_name(opts, opt), c->name);
		switch (opt) {
		case 'j':
			sb_cli_opts.json = true;
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
		case 'e':
			opt_exec = optarg;
			break;
		case 'T':
			opt_timeout = parse_u32(optarg, "--timeout", 1);
			if (opt_timeout > INT32_MAX / 1000)
				die(EXIT_USAGE, 0, "at most 2147483 s",
				    "invalid --timeout '%s'", optarg);
			break;
		case 'i':
			opt_id = optarg;
			break;
		case 'l':
			opt_loop = true;
			break;
		case 'o':
			sb_cli_opts.output = optarg;
			break;
		case 'r':
			if (parse_ulong(optarg, 0, SNAPBLK_READAHEAD_MAX, &v))
				die(EXIT_USAGE, 0, "give 0 (off) to 256 chunks",
				    "invalid --readahead '%s'", optarg);
			opt_readahead = v;
			break;
		case 'm':
			if (parse_ulong(optarg, 1, SNAPBLK_MAX_INFLIGHT_MAX,
					&v))
				die(EXIT_USAGE, 0, "give 1 to 1024 fetches",
				    "invalid --max-inflight '%s'", optarg);
			opt_max_inflight = v;
			break;
		case 'p':
			opt_prefetch = optarg;
			break;
		case 'H':
			opt_hydrate = true;
			break;
		case 's':
			sb_cli_opts.stop = true;
			break;
		case 'P':
			sb_cli_opts.prometheus = true;
			break;
		case 'w':
			sb_cli_opts.wait = true;
			break;
		}
	}
	if (opt_prefetch && opt_hydrate)
		die(EXIT_USAGE, 0, hint, "--prefetch and --hydrate exclude "
		    "each other");
	if (sb_cli_opts.json && sb_cli_opts.prometheus)
		die(EXIT_USAGE, 0, hint, "--json and --prometheus exclude "
		    "each other");
	if (sb_cli_opts.wait && c->fn == cmd_create && !opt_prefetch &&
	    !opt_hydrate)
		die(EXIT_USAGE, 0, hint, "--wait needs --prefetch or "
		    "--hydrate");
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
			sb_cli_opts.json = true;
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
