/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Record files: the order in which a device's reads first touched its
 * chunks, as `snapblk record` saves it and `snapblk create --prefetch`
 * and `snapblk prefetch` replay it.  All fields little-endian:
 *
 *	offset  size  field
 *	     0     8  magic "SNAPBLKT" (no NUL)
 *	     8     4  version: SB_TRACE_VERSION (1)
 *	    12     4  header_len: bytes from offset 0 to the first index
 *	              (56 in version 1; a reader skips what it does not know)
 *	    16    32  image_id: the image the trace was recorded from
 *	    48     4  chunk_size: that image's chunk size (a power of two,
 *	              SNAPBLK_CHUNK_SIZE_MIN to _MAX)
 *	    52     4  count: chunk indexes that follow
 *	header_len  4 * count  chunk indexes (__le32), in first-touch order
 *	  then    32  SHA-256 of every byte before it
 *
 * No plaintext, no keys and no content addresses: only which chunks of
 * which image were read, in what order.  The checksum makes a truncated
 * or damaged file fail to load instead of prefetching the wrong chunks.
 * No file I/O but in sb_trace_write() and sb_trace_read().
 */
#ifndef SNAPBLK_USER_TRACE_H
#define SNAPBLK_USER_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include <linux/snapblk.h>

#define SB_TRACE_MAGIC		"SNAPBLKT"
#define SB_TRACE_MAGIC_LEN	8
#define SB_TRACE_VERSION	1
#define SB_TRACE_HEADER_LEN	56	/* version 1 */
#define SB_TRACE_SUM_LEN	32	/* SHA-256 */
/* The largest header a reader takes (room for growth, not for junk). */
#define SB_TRACE_HEADER_MAX	4096
/* The longest record file there can be. */
#define SB_TRACE_MAX_FILE_LEN \
	(SB_TRACE_HEADER_MAX + 4 * (size_t)SNAPBLK_TRACE_MAX + SB_TRACE_SUM_LEN)

/* A trace in memory, host byte order. */
struct sb_trace {
	uint8_t image_id[SNAPBLK_IMAGE_ID_LEN];
	uint32_t chunk_size;
	uint32_t count;		/* entries in @chunks */
	uint32_t *chunks;	/* chunk indexes, malloc()ed (NULL if none) */
};

/* What is wrong with a record file; sb_trace_strerror() says it. */
enum sb_trace_err {
	SB_TRACE_OK,
	SB_TRACE_FOREIGN,	/* wrong magic: not a record file */
	SB_TRACE_VERSION_UNKNOWN,	/* a version this tool cannot read */
	SB_TRACE_TRUNCATED,	/* shorter than its header says */
	SB_TRACE_TRAILING,	/* longer than its header says */
	SB_TRACE_MALFORMED,	/* a field out of range */
	SB_TRACE_CHECKSUM,	/* SHA-256 mismatch: damaged */
	SB_TRACE_NOMEM,
	SB_TRACE_CRYPTO,	/* OpenSSL failed */
};

const char *sb_trace_strerror(int err);

/* Release @t's chunks (the structure itself is the caller's). */
void sb_trace_free(struct sb_trace *t);

/*
 * Encode @t as a record file in a new buffer *@out of *@len bytes
 * (free() it).  0 or SB_TRACE_NOMEM, SB_TRACE_MALFORMED (more than
 * SNAPBLK_TRACE_MAX chunks, or a chunk size that is not a power of two
 * from SNAPBLK_CHUNK_SIZE_MIN to _MAX), SB_TRACE_CRYPTO.
 */
int sb_trace_encode(const struct sb_trace *t, uint8_t **out, size_t *len);

/*
 * Check and decode the @len bytes of a record file into @t (zeroed
 * first; on failure nothing to free).  Checks in this order: magic,
 * version, header, length, checksum, so that a file of another version
 * says so rather than "damaged".  0 or an SB_TRACE_* error.
 */
int sb_trace_decode(const void *buf, size_t len, struct sb_trace *t);

/*
 * Write @t to @path atomically (a temporary file in the same directory,
 * then rename: a reader sees the old file or the new one, never half).
 * 0 or a negative errno; @msg (@msglen bytes, may be NULL) gets the
 * reason.
 */
int sb_trace_write(const char *path, const struct sb_trace *t, char *msg,
		   size_t msglen);

/*
 * Read and check the record file @path into @t.  0; a negative errno
 * when it cannot be read; -EINVAL when it is not a valid record file
 * (-ENOMEM, -EIO for the obvious).  @msg gets "PATH: why" either way.
 */
int sb_trace_read(const char *path, struct sb_trace *t, char *msg,
		  size_t msglen);

#endif
