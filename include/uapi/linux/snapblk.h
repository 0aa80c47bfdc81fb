/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * snapblk: chunked lazy block device and VM clone notification.
 *
 * This is the one header shared by the kernel module (kmod/) and the
 * userspace tools (user/).  Everything in it is ABI: enums only grow at
 * their end (before the __*_MAX sentinel), structures carry explicit
 * padding and only grow at their end.
 *
 * Generic netlink family "snapblk"
 * ================================
 *
 * Resolve the family by name (SNAPBLK_GENL_NAME).  The family version
 * (SNAPBLK_GENL_VERSION) is bumped when a command's meaning changes in a
 * way old userspace cannot detect; adding commands or attributes does not
 * bump it.  Attributes are validated strictly: unknown attributes and
 * attributes of the wrong size are refused with -EINVAL and an extack
 * message.  Every command that changes state requires CAP_NET_ADMIN
 * (GENL_ADMIN_PERM).
 *
 * Commands:
 *
 *   SNAPBLK_CMD_GET_INFO   (unprivileged, do)
 *     request:  no attributes
 *     reply:    SNAPBLK_ATTR_MODULE_VERSION  (NUL-terminated string)
 *               SNAPBLK_ATTR_API_VERSION     (u32, SNAPBLK_API_VERSION)
 *
 *   SNAPBLK_CMD_CREATE     (admin, do): map an unsealed image
 *     request:  SNAPBLK_ATTR_NAME        (string, < SNAPBLK_NAME_LEN)
 *               SNAPBLK_ATTR_IMAGE_SIZE  (u64, bytes, > 0)
 *               SNAPBLK_ATTR_CHUNK_SIZE  (u32, power of two, MIN..MAX)
 *               SNAPBLK_ATTR_IMAGE_ID    (binary, SNAPBLK_IMAGE_ID_LEN)
 *               SNAPBLK_ATTR_TABLE_FD    (u32): a file descriptor of the
 *                 caller (a memfd or other regular file) holding
 *                 chunk_count struct
 *                 snapblk_chunk_entry from offset 0; the kernel reads it
 *                 during the command, the caller may close it after.
 *               SNAPBLK_ATTR_FETCH_TIMEOUT_MS (u32, optional)
 *     reply:    a device message (below)
 *     errors:   EEXIST name taken, EINVAL bad sizes or table, ENOMEM
 *
 *   SNAPBLK_CMD_REMOVE     (admin, do)
 *     request:  SNAPBLK_ATTR_NAME
 *     errors:   ENOENT no such device, EBUSY device open (mounted)
 *
 *   SNAPBLK_CMD_STATUS     (unprivileged, do and dump)
 *     request:  SNAPBLK_ATTR_NAME (do); nothing (dump: every device)
 *     reply:    one device message per device
 *
 *   A device message carries SNAPBLK_ATTR_NAME, SNAPBLK_ATTR_INDEX (u32,
 *   N of /dev/snapblkN), SNAPBLK_ATTR_IMAGE_SIZE, SNAPBLK_ATTR_CHUNK_SIZE,
 *   SNAPBLK_ATTR_IMAGE_ID, SNAPBLK_ATTR_FETCH_TIMEOUT_MS and
 *   SNAPBLK_ATTR_STATS, a nest of SNAPBLK_STAT_* u64 counters.  From API
 *   version 4 also SNAPBLK_ATTR_READAHEAD_CHUNKS, SNAPBLK_ATTR_MAX_INFLIGHT,
 *   SNAPBLK_ATTR_PREFETCH_STATE (u32, SNAPBLK_PREFETCH_*), and, with the
 *   stats, SNAPBLK_ATTR_LATENCY (binary: SNAPBLK_LATENCY_BUCKETS __u64,
 *   see there) and SNAPBLK_ATTR_TIERS (nest: attribute type T is a u64,
 *   the chunks whose answer the daemon said came from tier T, see
 *   SNAPBLK_TIER_*; only tiers seen are present).
 *
 *   SNAPBLK_CMD_CREATE also takes (API 4, optional)
 *               SNAPBLK_ATTR_READAHEAD_CHUNKS (u32, 0..SNAPBLK_READAHEAD_MAX,
 *                 default 0: off)
 *               SNAPBLK_ATTR_MAX_INFLIGHT (u32, 1..SNAPBLK_MAX_INFLIGHT_MAX,
 *                 default SNAPBLK_MAX_INFLIGHT_DEFAULT)
 *
 *   SNAPBLK_CMD_PREFETCH   (admin, do; API 4): fetch chunks of a device in
 *     the background, in the order given, at most max_inflight fetches of
 *     the device at once (demand fetches count), each at background
 *     priority (SNAPBLK_FETCH_F_BACKGROUND).  Replaces a prefetch that is
 *     still running.
 *     request:  SNAPBLK_ATTR_NAME
 *               SNAPBLK_ATTR_IMAGE_ID: the image the list was recorded
 *                 for; EINVAL ("prefetch list is for another image")
 *                 unless it is the device's
 *               one of: SNAPBLK_ATTR_PREFETCH_FD (u32): a regular file
 *                 or memfd of the caller holding __u32 chunk indexes
 *                 (native endian) from offset 0, SNAPBLK_ATTR_PREFETCH_COUNT
 *                 (u32) of them, each < the device's chunk count (else
 *                 EINVAL); SNAPBLK_ATTR_HYDRATE (u32, 1): every chunk of
 *                 the image, in order; SNAPBLK_ATTR_PREFETCH_STOP (u32, 1):
 *                 stop the running prefetch (fetches in flight finish).
 *     reply:    a device message
 *
 *   SNAPBLK_CMD_TRACE_GET  (admin, do; API 4): the order in which the
 *     device's reads first touched its chunks (ZERO chunks excluded), for
 *     `snapblk record`.  At most SNAPBLK_TRACE_MAX chunks are recorded.
 *     request:  SNAPBLK_ATTR_NAME, SNAPBLK_ATTR_TRACE_OFFSET (u32, first
 *               entry wanted; optional, 0)
 *     reply:    SNAPBLK_ATTR_IMAGE_ID, SNAPBLK_ATTR_CHUNK_SIZE,
 *               SNAPBLK_ATTR_TRACE_TOTAL (u32, entries recorded so far),
 *               SNAPBLK_ATTR_TRACE (binary, __u32 chunk indexes from the
 *               offset, at most SNAPBLK_TRACE_BATCH of them; absent when
 *               the offset is at or past the total)
 *
 *   SNAPBLK_CMD_CACHE_STATUS (unprivileged, do; API 4): the shared cache.
 *     reply:    SNAPBLK_ATTR_CACHE_STATS (nest of SNAPBLK_CACHE_STAT_*,
 *               u64 each), SNAPBLK_ATTR_LATENCY (every fetch since load),
 *               SNAPBLK_ATTR_TIERS (likewise)
 *
 * Multicast groups:
 *
 *   SNAPBLK_CMD_CLONE_TRIGGER (admin and CAP_SYS_ADMIN, do): simulate a
 *     VM clone, for tests and for VMMs that tell the guest through an
 *     agent.  Runs the whole clone path: mixes the ID into the RNG, forces
 *     a reseed, bumps the generation, notifies userspace.
 *     request:  SNAPBLK_ATTR_GENERATION_ID (binary, SNAPBLK_GENERATION_ID_LEN,
 *                 optional: a random one is drawn when absent, which only
 *                 makes sense in tests: a real clone's ID must come from
 *                 outside the cloned memory)
 *     reply:    SNAPBLK_ATTR_GENERATION (u64, the new generation; unchanged
 *                 when the ID is the current one: a duplicate)
 *     errors:   EPERM without CAP_SYS_ADMIN (forcing a reseed needs it)
 *
 *   SNAPBLK_CMD_CLONE_STATUS (unprivileged, do)
 *     reply:    SNAPBLK_ATTR_GENERATION, SNAPBLK_ATTR_CLONE_SOURCE (u32, of
 *               the last clone, SNAPBLK_CLONE_SOURCE_UNSPEC before any),
 *               SNAPBLK_ATTR_CLONE_SOURCES (u32 bitmask of 1 << source for
 *               the sources this module listens to),
 *               SNAPBLK_ATTR_CLONE_STATS (nest of SNAPBLK_CLONE_STAT_*)
 *
 * Multicast groups:
 *
 *   SNAPBLK_GENL_MCGRP_EVENTS ("events"): device and clone events, each a
 *   message whose command is an SNAPBLK_EVENT_* value:
 *     SNAPBLK_EVENT_DEVICE_ADDED, SNAPBLK_EVENT_DEVICE_REMOVED: a device
 *       message without stats;
 *     SNAPBLK_EVENT_CHUNK_ERROR: SNAPBLK_ATTR_NAME, SNAPBLK_ATTR_CHUNK
 *       (u64 chunk index), SNAPBLK_ATTR_ERROR (u32 positive errno),
 *       SNAPBLK_ATTR_ADDR (binary, SNAPBLK_ADDR_LEN: the chunk's content
 *       address, API version 3) and SNAPBLK_ATTR_REFETCH (u32, API
 *       version 3): 1 when the answer failed verification and the
 *       kernel queued the fetch once more (with SNAPBLK_FETCH_F_REFETCH),
 *       the reads still waiting; 0 when the reads that needed the chunk
 *       failed with EIO;
 *     SNAPBLK_EVENT_CLONE: SNAPBLK_ATTR_GENERATION (u64),
 *       SNAPBLK_ATTR_CLONE_SOURCE (u32), SNAPBLK_ATTR_RESEED (u32,
 *       SNAPBLK_RESEED_*).  Sent after the RNG was reseeded.  The
 *       generation ID itself is never multicast (see /dev/snapblk-gen).
 */
#ifndef _UAPI_LINUX_SNAPBLK_H
#define _UAPI_LINUX_SNAPBLK_H

#include <linux/types.h>

#define SNAPBLK_GENL_NAME		"snapblk"
#define SNAPBLK_GENL_VERSION		1
#define SNAPBLK_GENL_MCGRP_EVENTS	"events"

/*
 * Version of this header's ABI as a whole, reported by
 * SNAPBLK_CMD_GET_INFO so that tools can tell an old module from a new
 * one without parsing version strings.  Bumped whenever a command,
 * attribute or structure is added.
 *
 * 3: struct snapblk_fetch_req grew to 72 bytes (flags, deadline_ns),
 *    SNAPBLK_FETCH_F_*, the re-fetch after a bad answer,
 *    SNAPBLK_ATTR_ADDR and SNAPBLK_ATTR_REFETCH in chunk-error events,
 *    SNAPBLK_STAT_REFETCHES.
 * 4: background fetches (readahead, prefetch, hydration) and
 *    SNAPBLK_FETCH_F_BACKGROUND; struct snapblk_fetch_resp may be 24
 *    bytes (tier, retries); SNAPBLK_CMD_PREFETCH, SNAPBLK_CMD_TRACE_GET,
 *    SNAPBLK_CMD_CACHE_STATUS; the attributes and counters marked API 4.
 */
#define SNAPBLK_API_VERSION		4

enum snapblk_cmd {
	SNAPBLK_CMD_UNSPEC,
	SNAPBLK_CMD_GET_INFO,
	SNAPBLK_CMD_CREATE,
	SNAPBLK_CMD_REMOVE,
	SNAPBLK_CMD_STATUS,
	SNAPBLK_EVENT_DEVICE_ADDED,
	SNAPBLK_EVENT_DEVICE_REMOVED,
	SNAPBLK_EVENT_CHUNK_ERROR,
	SNAPBLK_CMD_CLONE_TRIGGER,	/* API version 2 */
	SNAPBLK_CMD_CLONE_STATUS,
	SNAPBLK_EVENT_CLONE,
	SNAPBLK_CMD_PREFETCH,		/* API version 4 */
	SNAPBLK_CMD_TRACE_GET,
	SNAPBLK_CMD_CACHE_STATUS,

	__SNAPBLK_CMD_MAX,
};

#define SNAPBLK_CMD_MAX (__SNAPBLK_CMD_MAX - 1)

enum snapblk_attr {
	SNAPBLK_ATTR_UNSPEC,
	SNAPBLK_ATTR_MODULE_VERSION,	/* string, at most SNAPBLK_VERSION_LEN */
	SNAPBLK_ATTR_API_VERSION,	/* u32 */
	SNAPBLK_ATTR_NAME,		/* string, < SNAPBLK_NAME_LEN */
	SNAPBLK_ATTR_INDEX,		/* u32 */
	SNAPBLK_ATTR_IMAGE_SIZE,	/* u64 */
	SNAPBLK_ATTR_CHUNK_SIZE,	/* u32 */
	SNAPBLK_ATTR_IMAGE_ID,		/* binary, SNAPBLK_IMAGE_ID_LEN */
	SNAPBLK_ATTR_TABLE_FD,		/* u32 */
	SNAPBLK_ATTR_FETCH_TIMEOUT_MS,	/* u32 */
	SNAPBLK_ATTR_STATS,		/* nest of SNAPBLK_STAT_* (u64 each) */
	SNAPBLK_ATTR_CHUNK,		/* u64 chunk index */
	SNAPBLK_ATTR_ERROR,		/* u32 positive errno */
	SNAPBLK_ATTR_PAD,		/* alignment padding for u64 */
	SNAPBLK_ATTR_GENERATION,	/* u64, API version 2 */
	SNAPBLK_ATTR_GENERATION_ID,	/* binary, SNAPBLK_GENERATION_ID_LEN */
	SNAPBLK_ATTR_CLONE_SOURCE,	/* u32, SNAPBLK_CLONE_SOURCE_* */
	SNAPBLK_ATTR_CLONE_SOURCES,	/* u32, bitmask of 1 << source */
	SNAPBLK_ATTR_RESEED,		/* u32, SNAPBLK_RESEED_* */
	SNAPBLK_ATTR_CLONE_STATS,	/* nest of SNAPBLK_CLONE_STAT_* (u64) */
	SNAPBLK_ATTR_ADDR,		/* binary, SNAPBLK_ADDR_LEN; API 3 */
	SNAPBLK_ATTR_REFETCH,		/* u32, 0 or 1; API 3 */
	SNAPBLK_ATTR_READAHEAD_CHUNKS,	/* u32; API 4 */
	SNAPBLK_ATTR_MAX_INFLIGHT,	/* u32 */
	SNAPBLK_ATTR_PREFETCH_STATE,	/* u32, SNAPBLK_PREFETCH_* */
	SNAPBLK_ATTR_PREFETCH_FD,	/* u32 file descriptor */
	SNAPBLK_ATTR_PREFETCH_COUNT,	/* u32 */
	SNAPBLK_ATTR_HYDRATE,		/* u32, 1 */
	SNAPBLK_ATTR_PREFETCH_STOP,	/* u32, 1 */
	SNAPBLK_ATTR_TRACE_OFFSET,	/* u32 */
	SNAPBLK_ATTR_TRACE_TOTAL,	/* u32 */
	SNAPBLK_ATTR_TRACE,		/* binary, __u32 chunk indexes */
	SNAPBLK_ATTR_LATENCY,		/* binary, __u64[SNAPBLK_LATENCY_BUCKETS] */
	SNAPBLK_ATTR_TIERS,		/* nest, u64 per SNAPBLK_TIER_* */
	SNAPBLK_ATTR_CACHE_STATS,	/* nest of SNAPBLK_CACHE_STAT_* */

	__SNAPBLK_ATTR_MAX,
};

#define SNAPBLK_ATTR_MAX (__SNAPBLK_ATTR_MAX - 1)

/* Device counters, nested in SNAPBLK_ATTR_STATS; also in sysfs. */
enum snapblk_stat {
	SNAPBLK_STAT_UNSPEC,
	SNAPBLK_STAT_CHUNKS,		/* chunks in the image */
	SNAPBLK_STAT_ZERO_CHUNKS,	/* of which ZERO */
	SNAPBLK_STAT_RESIDENT,		/* of which in the memory cache now */
	SNAPBLK_STAT_CACHE_HITS,	/* chunk lookups served from memory */
	SNAPBLK_STAT_CACHE_MISSES,	/* chunk lookups that needed a fetch */
	SNAPBLK_STAT_BYTES_FETCHED,	/* ciphertext bytes accepted */
	SNAPBLK_STAT_FETCH_ERRORS,	/* bad, failed or timed-out fetches */
	SNAPBLK_STAT_INFLIGHT,		/* fetches queued or in progress */
	SNAPBLK_STAT_PAD,		/* alignment padding for u64 */
	SNAPBLK_STAT_REFETCHES,		/* bad answers fetched again; API 3 */
	SNAPBLK_STAT_EVICTIONS,		/* resident chunks dropped; API 4 */
	SNAPBLK_STAT_DEMAND_FETCHES,	/* fetches a read waited for */
	SNAPBLK_STAT_READAHEAD_FETCHES,	/* background: readahead */
	SNAPBLK_STAT_PREFETCH_FETCHES,	/* background: prefetch, hydration */
	SNAPBLK_STAT_PREFETCH_USED,	/* background chunks read since */
	SNAPBLK_STAT_PREFETCH_WASTED,	/* background chunks evicted unread */
	SNAPBLK_STAT_PREFETCH_JOINED,	/* misses joining a background fetch */
	SNAPBLK_STAT_PREFETCH_QUEUED,	/* chunks in the prefetch list */
	SNAPBLK_STAT_PREFETCH_DONE,	/* of which handled */
	SNAPBLK_STAT_RETRIES,		/* store retries the daemon reported */
	SNAPBLK_STAT_FETCH_LATENCY_US,	/* sum of fetch latencies, in us */
	SNAPBLK_STAT_FETCHES_DONE,	/* fetches completed: histogram count */
	SNAPBLK_STAT_TRACE_CHUNKS,	/* chunks in the first-touch trace */

	__SNAPBLK_STAT_MAX,
};

#define SNAPBLK_STAT_MAX (__SNAPBLK_STAT_MAX - 1)

/* Shared cache counters, nested in SNAPBLK_ATTR_CACHE_STATS; API 4. */
enum snapblk_cache_stat {
	SNAPBLK_CACHE_STAT_UNSPEC,
	SNAPBLK_CACHE_STAT_PAD,		/* alignment padding for u64 */
	SNAPBLK_CACHE_STAT_LIMIT_BYTES,	/* cache_mb, in bytes */
	SNAPBLK_CACHE_STAT_BYTES,	/* plaintext held */
	SNAPBLK_CACHE_STAT_CHUNKS,	/* chunks held */
	SNAPBLK_CACHE_STAT_PROTECTED_BYTES,	/* of which protected */
	SNAPBLK_CACHE_STAT_HITS,	/* lookups served from memory */
	SNAPBLK_CACHE_STAT_MISSES,	/* lookups that waited for a fetch */
	SNAPBLK_CACHE_STAT_INSERTS,	/* chunks added */
	SNAPBLK_CACHE_STAT_EVICTIONS,	/* chunks dropped for room */
	SNAPBLK_CACHE_STAT_DROPPED,	/* chunks dropped by drop_cache */
	SNAPBLK_CACHE_STAT_PROMOTIONS,	/* probation -> protected */
	SNAPBLK_CACHE_STAT_PENDING,	/* fetches queued or in progress */
	SNAPBLK_CACHE_STAT_BYTES_FETCHED,	/* ciphertext accepted */
	SNAPBLK_CACHE_STAT_FETCH_ERRORS,
	SNAPBLK_CACHE_STAT_BACKGROUND_FETCHES,
	SNAPBLK_CACHE_STAT_FETCH_LATENCY_US,
	SNAPBLK_CACHE_STAT_FETCHES_DONE,
	SNAPBLK_CACHE_STAT_RETRIES,

	__SNAPBLK_CACHE_STAT_MAX,
};

#define SNAPBLK_CACHE_STAT_MAX (__SNAPBLK_CACHE_STAT_MAX - 1)

/*
 * SNAPBLK_ATTR_LATENCY: fetch latency, from the miss (or the background
 * request) to the verified chunk in the cache, as a log2 histogram:
 * bucket 0 counts fetches under 2 us, bucket i (0 < i < last) those in
 * [2^i, 2^(i+1)) us, the last one all from 2^(SNAPBLK_LATENCY_BUCKETS-1)
 * us (about 2.1 s) on.
 */
#define SNAPBLK_LATENCY_BUCKETS		22

/*
 * Where the daemon found a chunk (struct snapblk_fetch_resp.tier and the
 * SNAPBLK_ATTR_TIERS nest).  The memory cache is the device's cache hits.
 * SNAPBLK_TIER_STORE + k is the k-th store the daemon was given (0 the
 * first), for k < SNAPBLK_TIER_STORES; later stores count as the last.
 */
enum snapblk_tier {
	SNAPBLK_TIER_UNSPEC,		/* the daemon did not say */
	SNAPBLK_TIER_DISK,		/* the host-wide disk cache */
	SNAPBLK_TIER_STORE,		/* first store; then + k */
};

#define SNAPBLK_TIER_STORES		8
#define SNAPBLK_TIER_MAX		(SNAPBLK_TIER_STORE + SNAPBLK_TIER_STORES - 1)

/* Prefetch state of a device (SNAPBLK_ATTR_PREFETCH_STATE, sysfs). */
enum snapblk_prefetch_state {
	SNAPBLK_PREFETCH_NONE,		/* never started */
	SNAPBLK_PREFETCH_RUNNING,	/* chunks left to fetch */
	SNAPBLK_PREFETCH_DONE,		/* every chunk of the list handled */
	SNAPBLK_PREFETCH_STOPPED,	/* stopped before the end */
};

/* Readahead and in-flight bounds of a device. */
#define SNAPBLK_READAHEAD_MAX		256
#define SNAPBLK_MAX_INFLIGHT_DEFAULT	16
#define SNAPBLK_MAX_INFLIGHT_MAX	1024
/* Most chunks in a first-touch trace; most per SNAPBLK_CMD_TRACE_GET. */
#define SNAPBLK_TRACE_MAX		(1U << 20)
#define SNAPBLK_TRACE_BATCH		4096

/* Who reported a clone. */
enum snapblk_clone_source {
	SNAPBLK_CLONE_SOURCE_UNSPEC,	/* no clone yet */
	SNAPBLK_CLONE_SOURCE_VMGENID,	/* ACPI VM generation ID (vmgenid) */
	SNAPBLK_CLONE_SOURCE_GENPAGE,	/* paravirtual generation page + IRQ */
	SNAPBLK_CLONE_SOURCE_TRIGGER,	/* SNAPBLK_CMD_CLONE_TRIGGER */

	__SNAPBLK_CLONE_SOURCE_MAX,
};

#define SNAPBLK_CLONE_SOURCE_MAX (__SNAPBLK_CLONE_SOURCE_MAX - 1)

/* How the RNG was reseeded for a clone (SNAPBLK_ATTR_RESEED). */
enum snapblk_reseed {
	SNAPBLK_RESEED_UNSPEC,
	SNAPBLK_RESEED_FORCED,	/* ID mixed in, crng reseeded by snapblk */
	SNAPBLK_RESEED_KERNEL,	/* the kernel's vmgenid path had reseeded */
	SNAPBLK_RESEED_FAILED,	/* ID mixed in, forced reseed failed */

	__SNAPBLK_RESEED_MAX,
};

/* Clone counters, nested in SNAPBLK_ATTR_CLONE_STATS; also in sysfs. */
enum snapblk_clone_stat {
	SNAPBLK_CLONE_STAT_UNSPEC,
	SNAPBLK_CLONE_STAT_EVENTS,	/* clone reports from any source */
	SNAPBLK_CLONE_STAT_DUPLICATES,	/* reports of the current ID: no bump */
	SNAPBLK_CLONE_STAT_RESEEDS,	/* forced reseeds that succeeded */
	SNAPBLK_CLONE_STAT_RESEED_FAILURES,	/* forced reseeds that failed */
	SNAPBLK_CLONE_STAT_PAD,		/* alignment padding for u64 */

	__SNAPBLK_CLONE_STAT_MAX,
};

#define SNAPBLK_CLONE_STAT_MAX (__SNAPBLK_CLONE_STAT_MAX - 1)

/* A VM generation ID: 16 bytes, like the ACPI VM generation ID. */
#define SNAPBLK_GENERATION_ID_LEN	16

/* Longest device name, including the terminating NUL. */
#define SNAPBLK_NAME_LEN		32
/* Default of a device's fetch_timeout_ms. */
#define SNAPBLK_FETCH_TIMEOUT_MS_DEFAULT	30000

/* Longest module version string, including the terminating NUL. */
#define SNAPBLK_VERSION_LEN		32

/*
 * Image format: chunks and manifests
 * ==================================
 *
 * Shared by snapblk-build (which writes images), the snapblk tool (which
 * unseals manifests) and the kernel (which verifies and decrypts chunks).
 * Documentation/format.md is the full specification; these are its
 * constants and on-disk structures.  All multi-byte fields are
 * little-endian.
 *
 * A chunk is chunk_size bytes of image (the last one zero-padded), stored
 * encrypted under its content address:
 *
 *	key  = HMAC-SHA256(convergence secret, plaintext)
 *	ct   = AES-256-CTR(key, IV = 16 zero bytes, plaintext)
 *	addr = SHA-256(ct)
 *
 * All-zero chunks are flagged SNAPBLK_CHUNK_F_ZERO, with address and key
 * all zero, and are never stored.
 *
 * A manifest file is a struct snapblk_manifest_header (unsealed, the
 * AES-256-GCM additional data), then header.body_len bytes of sealed body,
 * then a SNAPBLK_MANIFEST_TAG_LEN byte GCM tag.  The body, once unsealed,
 * is a struct snapblk_manifest_body followed by chunk_count
 * struct snapblk_chunk_entry, one per chunk in image order.
 */
#define SNAPBLK_MANIFEST_MAGIC		"SNAPBLKM"	/* no NUL on disk */
#define SNAPBLK_MANIFEST_MAGIC_LEN	8
#define SNAPBLK_MANIFEST_VERSION	1

#define SNAPBLK_CHUNK_SIZE_MIN		(64U << 10)
#define SNAPBLK_CHUNK_SIZE_MAX		(4U << 20)
#define SNAPBLK_CHUNK_SIZE_DEFAULT	(512U << 10)
/* Most chunks one manifest may list (8 TiB at the default chunk size). */
#define SNAPBLK_MANIFEST_MAX_CHUNKS	(1U << 24)

#define SNAPBLK_ADDR_LEN		32	/* SHA-256 of the ciphertext */
#define SNAPBLK_CHUNK_KEY_LEN		32	/* AES-256 key */
#define SNAPBLK_IMAGE_ID_LEN		32	/* SHA-256, see format.md */
#define SNAPBLK_SECRET_ID_LEN		16	/* names a convergence secret */
#define SNAPBLK_TENANT_KEY_LEN		32	/* seals manifests */
#define SNAPBLK_MANIFEST_NONCE_LEN	12	/* AES-256-GCM nonce */
#define SNAPBLK_MANIFEST_TAG_LEN	16	/* AES-256-GCM tag */

/* struct snapblk_chunk_entry.flags */
#define SNAPBLK_CHUNK_F_ZERO		(1U << 0)	/* all zero, not stored */
#define SNAPBLK_CHUNK_F_ALL		SNAPBLK_CHUNK_F_ZERO

/*
 * struct snapblk_manifest_body.layout: which builder layout made the image
 * (Documentation/format.md, "Flattening").  Informative only: readers
 * accept any value; it shows when two images cannot share chunks because
 * they were laid out differently.  Was __reserved (always 0) before.
 */
/* 0: an image file as given, or a snapblk 0.6 build (mke2fs) */
#define SNAPBLK_LAYOUT_RAW		0
#define SNAPBLK_LAYOUT_STABLE1		1	/* dedup-stable layout, version 1 */

/* Unsealed manifest header: nothing in it is secret.  48 bytes. */
struct snapblk_manifest_header {
	__u8	magic[SNAPBLK_MANIFEST_MAGIC_LEN];	/* "SNAPBLKM" */
	__le32	version;		/* SNAPBLK_MANIFEST_VERSION */
	__le32	flags;			/* none defined yet: 0 */
	__le32	header_len;		/* sizeof(this structure) */
	__le32	__reserved0;		/* 0 */
	__le64	body_len;		/* sealed body bytes, tag excluded */
	__u8	nonce[SNAPBLK_MANIFEST_NONCE_LEN];
	__le32	__reserved1;		/* 0 */
};

/* Start of the unsealed body.  80 bytes. */
struct snapblk_manifest_body {
	__le64	image_size;		/* bytes */
	__le32	chunk_size;		/* power of two, MIN..MAX */
	__le32	flags;			/* none defined yet: 0 */
	__le64	chunk_count;		/* DIV_ROUND_UP(image_size, chunk_size) */
	__le32	entry_len;		/* sizeof(struct snapblk_chunk_entry) */
	__le32	layout;			/* SNAPBLK_LAYOUT_*: how it was flattened */
	__u8	image_id[SNAPBLK_IMAGE_ID_LEN];
	__u8	secret_id[SNAPBLK_SECRET_ID_LEN];
};

/* One chunk of the image.  72 bytes. */
struct snapblk_chunk_entry {
	__u8	addr[SNAPBLK_ADDR_LEN];
	__u8	key[SNAPBLK_CHUNK_KEY_LEN];
	__le32	flags;			/* SNAPBLK_CHUNK_F_* */
	__le32	__reserved;		/* 0 */
};

/*
 * Fetch protocol: /dev/snapblk-fetch
 * ==================================
 *
 * The kernel asks a fetch daemon (snapblkd) for chunk ciphertext through
 * the misc character device /dev/snapblk-fetch (root only).
 *
 * read() returns whole request records laid end to end, as many as fit
 * in the buffer (at least one; EINVAL if the buffer is smaller than one);
 * it blocks until a request is pending, or returns EAGAIN with O_NONBLOCK.
 * Each record is a struct snapblk_fetch_req whose first field, @len, is
 * the size of that record: a daemon steps from one record to the next by
 * @len, accepts any @len >= the size of the structure it was built with
 * and ignores the bytes it does not know (a newer module appends fields).
 * Records only grow, at their end; a record shorter than the daemon's
 * structure comes from an older module the daemon cannot serve.  This
 * module's records are sizeof(struct snapblk_fetch_req), 72 bytes
 * (SNAPBLK_API_VERSION 3; 64 bytes before, with a reserved field in
 * place of @flags and no @deadline_ns).  A daemon built before API
 * version 3 required exactly 64 and does not work with this module.
 *
 * poll() reports POLLIN while a request is pending.  A request read by a
 * daemon belongs to that open file until answered; when the file is closed
 * (the daemon exits or dies) its unanswered requests go back to the queue
 * for the next reader, with the same id.
 *
 * write() answers one request: a struct snapblk_fetch_resp, then, when
 * error is 0, exactly chunk_size bytes of ciphertext as stored (the
 * kernel checks the length and the SHA-256 against the address before it
 * decrypts; a bad answer never fails the write).  The write returns its
 * full length once the request is accepted, ENOENT for an unknown or
 * already answered id, EINVAL for a malformed record.  error > 0 (a
 * positive errno, e.g. ENOENT for a chunk missing from the store) fails
 * the waiting reads with EIO.
 *
 * An answer that fails the kernel's checks (the wrong length, or bytes
 * whose SHA-256 is not the address) does not fail the reads the first
 * time: the kernel raises a chunk-error event (SNAPBLK_ATTR_REFETCH 1)
 * and queues the fetch once more, under a new id, with
 * SNAPBLK_FETCH_F_REFETCH set and the same @deadline_ns.  A second bad
 * answer to that fetch fails the waiting reads with EIO (and raises an
 * event with SNAPBLK_ATTR_REFETCH 0).
 */

/*
 * struct snapblk_fetch_req.flags.
 *
 * SNAPBLK_FETCH_F_DEADLINE: @deadline_ns is valid.  The kernel fails the
 *   fetch (its reads get EIO, a late answer gets ENOENT) once
 *   CLOCK_MONOTONIC (clock_gettime(), the kernel's ktime_get_ns()) passes
 *   @deadline_ns, not before it and normally within 250 ms after it (the
 *   period of the kernel's deadline scan).  It is the device's
 *   fetch_timeout_ms after the chunk was first missed (when
 *   several devices wait for one chunk, that of the device that missed
 *   it first: the deadline the kernel enforces).  A daemon need not work
 *   on a request past it.  This module always sets it.
 *
 * SNAPBLK_FETCH_F_REFETCH: an earlier answer for this fetch failed
 *   verification.  The copy the daemon had may be bad (a corrupted disk
 *   cache file): fetch from the store, not from a cache, and replace the
 *   cached copy.  The kernel fetches a chunk at most twice per miss.
 *
 * SNAPBLK_FETCH_F_BACKGROUND (API 4): no read waits for this chunk yet
 *   (readahead, prefetch or hydration).  The kernel hands out every
 *   pending demand request before any background one; a daemon should
 *   likewise start demand requests first and keep room for them (never
 *   fill all its transfer slots with background work), so that a
 *   background fetch delays a demand read by at most one fetch.  A read
 *   that needs the chunk while its request is still queued in the kernel
 *   makes it a demand request (the flag is then clear when it is read).
 *
 * Bits not defined here are 0 from this module; a daemon ignores those it
 * does not know.
 */
#define SNAPBLK_FETCH_F_DEADLINE	(1U << 0)
#define SNAPBLK_FETCH_F_REFETCH		(1U << 1)
#define SNAPBLK_FETCH_F_BACKGROUND	(1U << 2)

/* One request: 72 bytes, no implicit padding. */
struct snapblk_fetch_req {
	__u32	len;		/* size of this record: step by it */
	__u32	chunk_size;	/* bytes of ciphertext to deliver */
	__u64	id;		/* echo in the answer */
	__u8	addr[SNAPBLK_ADDR_LEN];	/* content address to fetch */
	__u32	dev_index;	/* /dev/snapblkN, for logs */
	__u32	flags;		/* SNAPBLK_FETCH_F_*; API 3 (was reserved) */
	__u64	chunk;		/* chunk index in that device, for logs */
	__u64	deadline_ns;	/* CLOCK_MONOTONIC ns, F_DEADLINE; API 3 */
};

/*
 * One answer.  @len is 16 (API 3: no @tier, no @retries) or 24; the
 * kernel takes either and refuses any other with EINVAL.
 */
struct snapblk_fetch_resp {
	__u32	len;		/* 16 or sizeof(struct snapblk_fetch_resp) */
	__u32	error;		/* 0, or a positive errno */
	__u64	id;		/* from the request */
	__u32	tier;		/* SNAPBLK_TIER_*: where it came from; API 4 */
	__u32	retries;	/* store requests beyond the first; API 4 */
};

#define SNAPBLK_FETCH_RESP_LEN_V3	16

/*
 * Clone generation: /dev/snapblk-gen
 * ==================================
 *
 * Readable by everyone (mode 0444); opening it for writing is refused
 * with EPERM.  Documentation/clone.md is the full description.
 *
 * mmap() of the first page, MAP_SHARED and PROT_READ only (anything else
 * is refused), gives a struct snapblk_gen_info the kernel keeps current:
 * a hot path detects a clone with one load of @generation.  To read a
 * consistent set of fields, retry while @seq is odd or changed (see
 * include/snapblk_gen.h).  A mapping, like an open file, holds a module
 * reference: rmmod is refused (EBUSY) until it is unmapped.
 *
 * read() returns one struct snapblk_gen_info (the buffer must hold it,
 * else EINVAL) once the generation differs from the one this open file
 * last returned (at open: the current one), blocking until then, or
 * EAGAIN with O_NONBLOCK.  poll() reports POLLIN | POLLPRI at that point.
 * An open file holds a module reference: rmmod waits for the last close.
 *
 * The generation ID is not in this page: it is readable by root only,
 * in /sys/class/misc/snapblk-gen/generation_id.
 */
struct snapblk_gen_info {
	__u64	generation;	/* clones seen since the module loaded */
	__u32	seq;		/* odd while the kernel updates this page */
	__u32	source;		/* SNAPBLK_CLONE_SOURCE_* of the last clone */
	__u32	reseed;		/* SNAPBLK_RESEED_* of the last clone */
	__u32	__reserved;	/* 0 */
	__u64	clone_time_ns;	/* CLOCK_BOOTTIME of the last clone */
};

/*
 * Paravirtual generation page (module parameter genpage=4K@ADDR:IRQ)
 * ==================================================================
 *
 * A page of guest-physical memory shared with the VMM, for VMMs without
 * ACPI.  All fields little-endian.  The VMM fills in @magic and @version
 * before the guest boots.  On a clone, before the clone's first
 * instruction, the VMM writes a new @id, then increments @generation,
 * then raises the edge-triggered interrupt IRQ.  The guest mixes @id into
 * the RNG, forces a reseed, then writes @generation to @ack_generation:
 * a VMM that holds its other vCPUs until @ack_generation equals
 * @generation knows that no guest code runs before the reseed.
 */
#define SNAPBLK_GENPAGE_MAGIC		0x47425053	/* "SPBG" read as le32 */
#define SNAPBLK_GENPAGE_VERSION		1

struct snapblk_genpage {
	__le32	magic;			/* VMM: SNAPBLK_GENPAGE_MAGIC */
	__le32	version;		/* VMM: SNAPBLK_GENPAGE_VERSION */
	__le64	generation;		/* VMM: incremented on every clone */
	__u8	id[SNAPBLK_GENERATION_ID_LEN];	/* VMM: unique per clone */
	__le64	ack_generation;		/* guest: generation reseeded for */
	__le32	guest_version;		/* guest: SNAPBLK_GENPAGE_VERSION */
	__le32	__reserved;		/* 0 */
};

#endif /* _UAPI_LINUX_SNAPBLK_H */
