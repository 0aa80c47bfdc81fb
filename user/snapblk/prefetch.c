// SPDX-License-Identifier: GPL-2.0
/*
 * snapblk record, prefetch and hydrate, and what create --prefetch and
 * --hydrate share with them.  A record file (user/lib/trace.h) lists
 * chunk indexes of one image; it is checked against the image it is to
 * be replayed on before the module is asked, so that a list recorded
 * from another image is refused with both images named.  See snapblk(8).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hex.h"
#include "json.h"
#include "util.h"
#include "snapblk.h"

/* How often --wait asks the module how far the prefetch got. */
#define WAIT_POLL_MS	100

void sb_cli_load_trace(const char *path, struct sb_trace *t,
		       const uint8_t *image_id, uint32_t chunk_size,
		       uint64_t chunks, const char *whose)
{
	static const char again[] = "record it again from a device of this "
				    "image: 'snapblk record NAME -o FILE'";
	char msg[512], have[2 * SNAPBLK_IMAGE_ID_LEN + 1],
	     want[2 * SNAPBLK_IMAGE_ID_LEN + 1];
	uint32_t i;
	int ret;

	ret = sb_trace_read(path, t, msg, sizeof(msg));
	if (ret == -EINVAL)
		die(EXIT_FAIL, 0, "give a file written by 'snapblk record' "
		    "(or record it again)", "%s", msg);
	if (ret)
		die(EXIT_FAIL, -ret, NULL, "cannot read record file %s", path);
	if (memcmp(t->image_id, image_id, SNAPBLK_IMAGE_ID_LEN)) {
		sb_hex(t->image_id, SNAPBLK_IMAGE_ID_LEN, have);
		sb_hex(image_id, SNAPBLK_IMAGE_ID_LEN, want);
		die(EXIT_FAIL, 0, again, "%s was recorded from image %.16s, "
		    "not from %s image %.16s", path, have, whose, want);
	}
	if (t->chunk_size != chunk_size)
		die(EXIT_FAIL, 0, again, "%s was recorded with %" PRIu32
		    "-byte chunks, but %s image has %" PRIu32 "-byte chunks",
		    path, t->chunk_size, whose, chunk_size);
	if (!t->count)
		die(EXIT_FAIL, 0, "record after the workload has read from "
		    "the device", "%s lists no chunk: nothing to prefetch",
		    path);
	for (i = 0; i < t->count; i++)
		if (t->chunks[i] >= chunks)
			die(EXIT_FAIL, 0, again, "%s lists chunk %" PRIu32
			    ", but %s image has %" PRIu64 " chunks", path,
			    t->chunks[i], whose, chunks);
}

int sb_cli_start_prefetch(struct sb_nl *nl, const char *name,
			  const uint8_t *image_id, enum sb_prefetch_mode mode,
			  const struct sb_trace *t, struct sb_dev *dev)
{
	uint8_t id[SNAPBLK_IMAGE_ID_LEN];
	struct sb_prefetch req = {
		.name = name,
		.image_id = id,
		.mode = mode,
		.fd = -1,
	};
	int ret;

	/* @image_id may be @dev's own, which the reply overwrites. */
	memcpy(id, image_id, sizeof(id));
	if (mode == SB_PREFETCH_LIST) {
		/* The kernel takes the indexes in its own byte order. */
		req.fd = sb_cli_memfd("snapblk-prefetch", t->chunks,
				      t->count * sizeof(uint32_t),
				      "the prefetch list");
		req.count = t->count;
	}
	ret = sb_nl_prefetch(nl, &req, dev);
	if (req.fd >= 0)
		close(req.fd);
	return ret;
}

void sb_cli_wait_prefetch(struct sb_nl *nl, const char *name,
			  struct sb_dev *dev)
{
	struct timespec ts = { 0, WAIT_POLL_MS * 1000000L };
	char what[64];

	snprintf(what, sizeof(what), "cannot wait for device %s", name);
	while (dev->prefetch_state == SNAPBLK_PREFETCH_RUNNING) {
		nanosleep(&ts, NULL);
		sb_cli_status_or_die(nl, name, dev, what);
	}
}

int sb_cli_prefetch_outcome(const struct sb_dev *dev)
{
	if (dev->prefetch_state == SNAPBLK_PREFETCH_DONE)
		return EXIT_OK;
	err_report(0, dev->stats[SNAPBLK_STAT_FETCH_ERRORS] ?
		   "'snapblk status NAME' shows the fetch errors" : NULL,
		   "the prefetch of device %s ended %s, after %" PRIu64
		   " of %" PRIu64 " chunks", dev->name,
		   sb_prefetch_state_name(dev->prefetch_state),
		   dev->stats[SNAPBLK_STAT_PREFETCH_DONE],
		   dev->stats[SNAPBLK_STAT_PREFETCH_QUEUED]);
	return EXIT_FAIL;
}

/* ------------------------------------------------------------- record */

int sb_cli_record(int argc, char **argv)
{
	const char *name = argv[0], *path = sb_cli_opts.output;
	char what[64], msg[512], hex[2 * SNAPBLK_IMAGE_ID_LEN + 1];
	struct sb_trace t;
	struct sb_nl nl;
	int ret;

	(void)argc;
	sb_cli_check_name_len(name);
	if (!path)
		die(EXIT_USAGE, 0, "say where to write it: --output FILE",
		    "record needs --output");
	snprintf(what, sizeof(what), "cannot record device %s", name);
	sb_cli_connect(&nl, what);
	sb_cli_require_api(&nl, 4, what, "first-touch trace");
	ret = sb_nl_trace_get(&nl, name, &t);
	if (ret == -ENOENT)
		die(EXIT_FAIL, 0, sb_cli_nl_hint(ret), "%s: no device %s", what,
		    name);
	if (ret == -ESTALE)
		die(EXIT_FAIL, 0, "record it again", "%s: the device was "
		    "replaced while its trace was read", what);
	if (ret)
		sb_cli_nl_die(&nl, ret, NULL, "%s", what);
	sb_nl_close(&nl);
	if (!t.count)
		die(EXIT_FAIL, 0, "record after the workload has read from "
		    "it: the trace lists each chunk at its first read",
		    "%s: it has read no chunk yet", what);
	ret = sb_trace_write(path, &t, msg, sizeof(msg));
	if (ret)
		die(EXIT_FAIL, 0, NULL, "cannot write record file %s", msg);

	if (sb_cli_opts.json) {
		sb_hex(t.image_id, SNAPBLK_IMAGE_ID_LEN, hex);
		printf("{\"name\":");
		json_print_string(name);
		printf(",\"file\":");
		json_print_string(path);
		printf(",\"chunks\":%" PRIu32 ",\"chunk_size\":%" PRIu32
		       ",\"image_id\":\"%s\"}\n", t.count, t.chunk_size, hex);
	} else {
		printf("recorded %" PRIu32 " chunk%s of %s to %s\n", t.count,
		       t.count == 1 ? "" : "s", name, path);
	}
	sb_trace_free(&t);
	return EXIT_OK;
}

/* ------------------------------------------------------ prefetch, hydrate */

/* What prefetch and hydrate print once the module took the command. */
static int started(struct sb_nl *nl, const char *name, struct sb_dev *dev,
		   const char *done)
{
	if (!sb_cli_opts.json) {
		printf("%s\n", done);
		if (fflush(stdout))
			die(EXIT_FAIL, errno, NULL, "cannot write the output");
	}
	if (sb_cli_opts.wait)
		sb_cli_wait_prefetch(nl, name, dev);
	sb_nl_close(nl);
	if (sb_cli_opts.json) {
		sb_cli_print_dev_json(dev);
		putchar('\n');
	}
	return sb_cli_opts.wait ? sb_cli_prefetch_outcome(dev) : EXIT_OK;
}

/* The device's status, for its image, after the API check. */
static void open_device(struct sb_nl *nl, const char *name, const char *what,
			struct sb_dev *dev)
{
	sb_cli_check_name_len(name);
	sb_cli_connect(nl, what);
	sb_cli_require_api(nl, 4, what, "prefetch");
	sb_cli_status_or_die(nl, name, dev, what);
}

/* sb_cli_start_prefetch() on the device @dev is, or say why not, exit 1. */
static void start_or_die(struct sb_nl *nl, struct sb_dev *dev,
			 enum sb_prefetch_mode mode, const struct sb_trace *t,
			 const char *what)
{
	char name[SNAPBLK_NAME_LEN];
	int ret;

	memcpy(name, dev->name, sizeof(name));
	ret = sb_cli_start_prefetch(nl, name, dev->image_id, mode, t, dev);
	if (ret == -ENOENT)
		die(EXIT_FAIL, 0, sb_cli_nl_hint(ret), "%s: no device %s",
		    what, name);
	if (ret)
		sb_cli_nl_die(nl, ret, NULL, "%s", what);
}

static int stop(const char *name)
{
	struct sb_dev dev;
	struct sb_nl nl;
	char what[64];

	snprintf(what, sizeof(what), "cannot stop the prefetch of %s", name);
	open_device(&nl, name, what, &dev);
	start_or_die(&nl, &dev, SB_PREFETCH_STOP, NULL, what);
	sb_nl_close(&nl);
	if (sb_cli_opts.json) {
		sb_cli_print_dev_json(&dev);
		putchar('\n');
	} else {
		printf("prefetch of %s: %s (%" PRIu64 " of %" PRIu64
		       " chunks handled)\n", name,
		       sb_prefetch_state_name(dev.prefetch_state),
		       dev.stats[SNAPBLK_STAT_PREFETCH_DONE],
		       dev.stats[SNAPBLK_STAT_PREFETCH_QUEUED]);
	}
	return EXIT_OK;
}

int sb_cli_prefetch(int argc, char **argv)
{
	const char *name = argv[0], *path = argv[1];
	char what[64], whose[64], done[128];
	struct sb_trace t;
	struct sb_dev dev;
	struct sb_nl nl;

	if (sb_cli_opts.stop) {
		if (argc != 1 || sb_cli_opts.wait)
			die(EXIT_USAGE, 0, "run 'snapblk help prefetch' for "
			    "usage", "usage: snapblk prefetch --stop NAME");
		return stop(name);
	}
	if (argc != 2)
		die(EXIT_USAGE, 0, "run 'snapblk help prefetch' for usage",
		    "usage: snapblk prefetch NAME FILE [--wait]");
	snprintf(what, sizeof(what), "cannot prefetch on device %s", name);
	open_device(&nl, name, what, &dev);
	snprintf(whose, sizeof(whose), "device %s's", name);
	sb_cli_load_trace(path, &t, dev.image_id, dev.chunk_size,
			  dev.stats[SNAPBLK_STAT_CHUNKS], whose);
	start_or_die(&nl, &dev, SB_PREFETCH_LIST, &t, what);
	snprintf(done, sizeof(done), "prefetching %" PRIu32 " chunk%s of %s",
		 t.count, t.count == 1 ? "" : "s", name);
	sb_trace_free(&t);
	return started(&nl, name, &dev, done);
}

int sb_cli_hydrate(int argc, char **argv)
{
	const char *name = argv[0];
	char what[64], done[128];
	struct sb_dev dev;
	struct sb_nl nl;

	(void)argc;
	snprintf(what, sizeof(what), "cannot hydrate device %s", name);
	open_device(&nl, name, what, &dev);
	start_or_die(&nl, &dev, SB_PREFETCH_HYDRATE, NULL, what);
	snprintf(done, sizeof(done), "hydrating %s: %" PRIu64 " chunks",
		 name, dev.stats[SNAPBLK_STAT_CHUNKS]);
	return started(&nl, name, &dev, done);
}
