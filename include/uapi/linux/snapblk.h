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
 * Multicast groups:
 *
 *   SNAPBLK_GENL_MCGRP_EVENTS ("events"): device and clone events.  No
 *   event is defined yet; listeners may subscribe already.
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
 */
#define SNAPBLK_API_VERSION		1

enum snapblk_cmd {
	SNAPBLK_CMD_UNSPEC,
	SNAPBLK_CMD_GET_INFO,

	__SNAPBLK_CMD_MAX,
};

#define SNAPBLK_CMD_MAX (__SNAPBLK_CMD_MAX - 1)

enum snapblk_attr {
	SNAPBLK_ATTR_UNSPEC,
	SNAPBLK_ATTR_MODULE_VERSION,	/* string, at most SNAPBLK_VERSION_LEN */
	SNAPBLK_ATTR_API_VERSION,	/* u32 */

	__SNAPBLK_ATTR_MAX,
};

#define SNAPBLK_ATTR_MAX (__SNAPBLK_ATTR_MAX - 1)

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
	__le32	__reserved;		/* 0 */
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

#endif /* _UAPI_LINUX_SNAPBLK_H */
