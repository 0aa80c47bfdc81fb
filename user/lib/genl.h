/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Talking to the snapblk generic netlink family through libnl-genl.
 * Every function returns 0 (or a non-negative value) on success and a
 * negative errno on failure: the kernel's own errno for a refused command,
 * so callers can tell EPERM from EINVAL from EBUSY.
 */
#ifndef SNAPBLK_USER_GENL_H
#define SNAPBLK_USER_GENL_H

#include <stdbool.h>
#include <stdint.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <linux/snapblk.h>

#include "trace.h"

struct sb_nl {
	struct nl_sock *sk;
	int family;		/* resolved family id */
	unsigned int version;	/* family version the kernel reports */
	char extack[256];	/* kernel's message for the last error, or "" */
};

/*
 * Connect and resolve the family.  -ENOENT: the family is not registered
 * (module not loaded).
 */
int sb_nl_open(struct sb_nl *nl);
void sb_nl_close(struct sb_nl *nl);

/* Multicast group id of @name, or a negative errno. */
int sb_nl_mcgrp(struct sb_nl *nl, const char *name);

/*
 * Send command @cmd with the attributes @put adds (may be NULL), wait for
 * the kernel's answer and call @parse for each reply message with its
 * attributes parsed (tb has SNAPBLK_ATTR_MAX + 1 entries; may be NULL).
 */
int sb_nl_request(struct sb_nl *nl, uint8_t cmd,
		  int (*put)(struct nl_msg *msg, void *arg),
		  int (*parse)(struct nlattr **tb, void *arg), void *arg);

struct sb_info {
	char module_version[SNAPBLK_VERSION_LEN];
	uint32_t api_version;
};

int sb_nl_get_info(struct sb_nl *nl, struct sb_info *info);

/*
 * The same as sb_nl_request() as a dump (NLM_F_DUMP): @parse is called
 * once for each message of the dump.  A dump the kernel ends with an
 * error (in NLMSG_DONE) returns that error.
 */
int sb_nl_dump(struct sb_nl *nl, uint8_t cmd,
	       int (*put)(struct nl_msg *msg, void *arg),
	       int (*parse)(struct nlattr **tb, void *arg), void *arg);

/*
 * Where fetches went and how long they took (API 4): the
 * SNAPBLK_ATTR_LATENCY histogram and the SNAPBLK_ATTR_TIERS nest of a
 * device message or of SNAPBLK_CMD_CACHE_STATUS.
 */
struct sb_fetch_hist {
	bool has_latency;		/* SNAPBLK_ATTR_LATENCY present */
	/* fetches per log2 bucket of us (SNAPBLK_LATENCY_BUCKETS) */
	uint64_t latency[SNAPBLK_LATENCY_BUCKETS];
	bool has_tiers;			/* SNAPBLK_ATTR_TIERS present */
	uint32_t tier_present;		/* bit t: tiers[t] was sent */
	uint64_t tiers[SNAPBLK_TIER_MAX + 1];	/* chunks by SNAPBLK_TIER_* */
};

/* A device message (SNAPBLK_CMD_CREATE and _STATUS replies, events). */
struct sb_dev {
	char name[SNAPBLK_NAME_LEN];
	uint32_t index;			/* N of /dev/snapblkN */
	uint64_t image_size;
	uint32_t chunk_size;
	uint8_t image_id[SNAPBLK_IMAGE_ID_LEN];
	uint32_t fetch_timeout_ms;
	bool has_stats;			/* SNAPBLK_ATTR_STATS present */
	uint64_t stat_present;		/* bit n: stats[n] was sent */
	uint64_t stats[SNAPBLK_STAT_MAX + 1];	/* by SNAPBLK_STAT_* */
	/* API 4; each has_* says the module sent it (older ones do not) */
	bool has_readahead;
	uint32_t readahead_chunks;	/* 0: readahead off */
	bool has_max_inflight;
	uint32_t max_inflight;		/* fetches of this device at once */
	bool has_prefetch_state;
	uint32_t prefetch_state;	/* SNAPBLK_PREFETCH_* */
	struct sb_fetch_hist hist;	/* with the stats */
};

/*
 * Decode a device message.  NAME and INDEX are required, the rest is
 * zero when missing; -EPROTO for a malformed message.
 */
int sb_nl_parse_dev(struct nlattr **tb, struct sb_dev *dev);

/* Name of counter SNAPBLK_STAT_@stat in snake case, or NULL (PAD, ...). */
const char *sb_stat_name(int stat);

/* "none", "running", "done", "stopped" or "unknown". */
const char *sb_prefetch_state_name(uint32_t state);

/*
 * Name of tier SNAPBLK_TIER_@tier: "unknown" (UNSPEC: the daemon did not
 * say), "disk", "store0" ... "store7"; NULL past SNAPBLK_TIER_MAX.
 */
const char *sb_tier_name(int tier);

/* SNAPBLK_CMD_CACHE_STATUS: the module's shared memory cache (API 4). */
struct sb_cache_status {
	uint64_t stat_present;		/* bit n: stats[n] was sent */
	uint64_t stats[SNAPBLK_CACHE_STAT_MAX + 1];	/* SNAPBLK_CACHE_STAT_* */
	struct sb_fetch_hist hist;	/* every fetch since the module loaded */
};

/* Name of SNAPBLK_CACHE_STAT_@stat in snake case, or NULL (PAD, ...). */
const char *sb_cache_stat_name(int stat);

int sb_nl_cache_status(struct sb_nl *nl, struct sb_cache_status *st);

/* What SNAPBLK_CMD_CREATE needs. */
struct sb_create {
	const char *name;
	uint64_t image_size;
	uint32_t chunk_size;
	const uint8_t *image_id;	/* SNAPBLK_IMAGE_ID_LEN bytes */
	int table_fd;			/* memfd with the chunk table */
	uint32_t fetch_timeout_ms;	/* 0: the module's default */
	uint32_t readahead_chunks;	/* 0: not sent (the default, off) */
	uint32_t max_inflight;		/* 0: not sent (the module's default) */
};

/* Create a device; its reply is decoded into @dev. */
int sb_nl_create(struct sb_nl *nl, const struct sb_create *req,
		 struct sb_dev *dev);
int sb_nl_remove(struct sb_nl *nl, const char *name);
/* One device by name (-ENOENT: none). */
int sb_nl_status(struct sb_nl *nl, const char *name, struct sb_dev *dev);
/* Every device: @fn for each one; a negative return stops the dump. */
int sb_nl_status_all(struct sb_nl *nl,
		     int (*fn)(const struct sb_dev *dev, void *arg),
		     void *arg);

/* What SNAPBLK_CMD_PREFETCH asks for. */
enum sb_prefetch_mode {
	SB_PREFETCH_LIST,	/* the chunks in @fd, in that order */
	SB_PREFETCH_HYDRATE,	/* every chunk of the image */
	SB_PREFETCH_STOP,	/* stop the running prefetch */
};

struct sb_prefetch {
	const char *name;
	const uint8_t *image_id;	/* SNAPBLK_IMAGE_ID_LEN bytes: the
					 * image the list is for (the kernel
					 * refuses another device's); NULL
					 * for a stop */
	enum sb_prefetch_mode mode;
	int fd;			/* LIST: file of __u32 chunk indexes (native
				 * endian) from offset 0; the kernel reads it
				 * during the command */
	uint32_t count;		/* LIST: indexes in @fd */
};

/* Start (or stop) a prefetch; the reply is decoded into @dev. */
int sb_nl_prefetch(struct sb_nl *nl, const struct sb_prefetch *req,
		   struct sb_dev *dev);

/*
 * Fetch the first-touch trace of device @name (SNAPBLK_CMD_TRACE_GET)
 * into @tr (struct sb_trace, trace.h; sb_trace_free() it), batch after
 * batch, up to the total the first answer reported (entries recorded
 * meanwhile are left for the next call; a slot the kernel was still
 * filling, which reads UINT32_MAX, is left out).  -ESTALE: the device
 * changed image in between; -EPROTO: a malformed or short answer.
 */
int sb_nl_trace_get(struct sb_nl *nl, const char *name, struct sb_trace *tr);

/* An SNAPBLK_EVENT_* message, as sb_nl_listen() hands it over. */
struct sb_event {
	uint8_t cmd;		/* SNAPBLK_EVENT_* */
	struct sb_dev dev;	/* name; the rest for device events */
	uint64_t chunk;		/* CHUNK_ERROR: chunk index */
	uint32_t error;		/* CHUNK_ERROR: positive errno */
	bool has_addr;		/* CHUNK_ERROR: addr is set (API 3) */
	uint8_t addr[SNAPBLK_ADDR_LEN];	/* CHUNK_ERROR: content address */
	uint32_t refetch;	/* CHUNK_ERROR: 1 the kernel asks again, 0
				 * the reads failed (API 3; else 0) */
	uint64_t generation;	/* CLONE: the new generation */
	uint32_t clone_source;	/* CLONE: SNAPBLK_CLONE_SOURCE_* */
	uint32_t reseed;	/* CLONE: SNAPBLK_RESEED_* */
};

/* SNAPBLK_CMD_CLONE_STATUS */
struct sb_clone_status {
	uint64_t generation;
	uint32_t last_source;	/* SNAPBLK_CLONE_SOURCE_* */
	uint32_t sources;	/* bitmask of 1 << SNAPBLK_CLONE_SOURCE_* */
	uint64_t stats[SNAPBLK_CLONE_STAT_MAX + 1];	/* SNAPBLK_CLONE_STAT_* */
};

int sb_nl_clone_status(struct sb_nl *nl, struct sb_clone_status *st);
/*
 * Simulate a clone with generation ID @id (SNAPBLK_GENERATION_ID_LEN
 * bytes, or NULL for a random one); the new generation in @generation.
 */
int sb_nl_clone_trigger(struct sb_nl *nl, const uint8_t *id,
			uint64_t *generation);
/* "vmgenid", "genpage", "trigger", "none" or "unknown". */
const char *sb_clone_source_name(uint32_t source);
/* "forced", "kernel", "failed", "none" or "unknown". */
const char *sb_reseed_name(uint32_t reseed);

/*
 * Join multicast group @group (SNAPBLK_GENL_MCGRP_EVENTS) and call @fn for
 * every event until it returns non-zero: returns that value when it is
 * positive, else the negative errno.  @lost (may be NULL) is called when
 * the socket overflowed and events were dropped; listening goes on.
 */
int sb_nl_listen(struct sb_nl *nl, const char *group,
		 int (*fn)(const struct sb_event *ev, void *arg),
		 void (*lost)(void *arg), void *arg);

/* What to tell the user for errno @err returned by sb_nl_open(). */
const char *sb_nl_open_hint(int err);

#endif
