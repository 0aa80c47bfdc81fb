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
};

/*
 * Decode a device message.  NAME and INDEX are required, the rest is
 * zero when missing; -EPROTO for a malformed message.
 */
int sb_nl_parse_dev(struct nlattr **tb, struct sb_dev *dev);

/* Name of counter SNAPBLK_STAT_@stat in snake case, or NULL (PAD, ...). */
const char *sb_stat_name(int stat);

/* What SNAPBLK_CMD_CREATE needs. */
struct sb_create {
	const char *name;
	uint64_t image_size;
	uint32_t chunk_size;
	const uint8_t *image_id;	/* SNAPBLK_IMAGE_ID_LEN bytes */
	int table_fd;			/* memfd with the chunk table */
	uint32_t fetch_timeout_ms;	/* 0: the module's default */
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
