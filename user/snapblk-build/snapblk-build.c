// SPDX-License-Identifier: GPL-2.0
/*
 * snapblk-build: cut an image into convergently encrypted chunks, store
 * them under their content addresses and write a sealed manifest; check
 * and describe such images.  See Documentation/man/snapblk-build.1 and
 * Documentation/format.md.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <libgen.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "hex.h"
#include "json.h"
#include "chunk.h"
#include "manifest.h"
#include "file.h"
#include "flatten.h"
#include "progress.h"
#include "store.h"
#include "util.h"


/*
 * Exit statuses beyond util.h's (documented in snapblk-build(1)); a
 * manifest's errors give util.h's SB_EXIT_AUTH (4) and SB_EXIT_MANIFEST
 * (5), as in every tool.
 */
enum {
	EXIT_BAD_CHUNKS = 3,	/* verify found missing or damaged chunks */
};

#define MAX_JOBS	256
#define HEX_ADDR_LEN	(2 * SNAPBLK_ADDR_LEN + 1)

static const char usage_text[] =
"usage: snapblk-build COMMAND [OPTIONS] [ARGS]\n"
"\n"
"Turn a disk image into a content-addressed chunk store and a sealed\n"
"manifest for the snapblk lazy block device, and check such images.\n"
"\n"
"Commands:\n"
"  create IMAGE|--from-dir DIR|--from-tar FILE|--layer FILE...|\n"
"         --from-oci DIR[:REF] --store DIR --key-file K\n"
"         [--secret-file S] [--chunk-size N] -o MANIFEST\n"
"                      build an image: write its new chunks to the store\n"
"                      and its manifest, sealed with the tenant key\n"
"  verify MANIFEST --store DIR --key-file K [--secret-file S]\n"
"                      check that every chunk is in the store, matches\n"
"                      its address and decrypts\n"
"  inspect MANIFEST --key-file K [--json] [--chunks]\n"
"                      show a manifest's header, sizes, counts, image ID\n"
"  gc --store DIR --keep MANIFEST[:KEYFILE]... [--key-file K] [--delete]\n"
"                      find (with --delete: delete) the chunks no kept\n"
"                      manifest references; a dry run by default\n"
"  keygen -o FILE      write a new random tenant key (mode 0600)\n"
"  help [COMMAND]      this text, or a command's options\n"
"\n"
"Options for every command:\n"
"  -h, --help          help (after a command: that command's help)\n"
"  -V, --version       print the version\n"
"\n"
"Exit status: 0 success, 1 failure, 2 usage error, 3 verify found bad\n"
"chunks, 4 manifest authentication failed (wrong key or corrupted\n"
"manifest), 5 not a manifest, truncated, or unsupported version.\n"
"See snapblk-build(1) and Documentation/format.md.\n";

static const char create_help[] =
"usage: snapblk-build create IMAGE --store DIR --key-file K -o MANIFEST\n"
"       snapblk-build create --from-dir DIR|--from-tar FILE|\n"
"                            --layer FILE [--layer FILE...]|\n"
"                            --from-oci DIR[:REF] ...\n"
"\n"
"Cut IMAGE (a raw image file or a block device) into chunks, encrypt\n"
"each with a key derived from its content and the convergence secret,\n"
"store each new one under its address and write the manifest, sealed\n"
"with the tenant key.  Chunks already in the store are not rewritten;\n"
"all-zero chunks are never stored, and the holes of a sparse IMAGE are\n"
"not even read.\n"
"\n"
"  -s, --store DIR        chunk store directory (created, with its\n"
"                         parents, mode 0755, if missing)\n"
"  -k, --key-file K       tenant key (from 'snapblk-build keygen'): 64 hex\n"
"                         digits, mode 0600 (readable by others: refused)\n"
"      --raw-key          the key file is 32 raw bytes instead\n"
"  -o, --output MANIFEST  where to write the sealed manifest (refused if\n"
"                         it exists, unless --force)\n"
"      --force            replace an existing MANIFEST and --image-out\n"
"      --verify-existing  re-read the chunks the store has already and\n"
"                         compare them with what they must hold (their\n"
"                         SHA-256 is their address), instead of trusting\n"
"                         their size; damaged ones are rewritten and\n"
"                         counted\n"
"  -S, --secret-file S    convergence secret (16 to 4096 bytes); images\n"
"                         built with the same secret share chunks.\n"
"                         Default: the documented public default secret\n"
"  -c, --chunk-size N     chunk size: a power of two from 64K to 4M\n"
"                         (suffixes K, M; default 512K)\n"
"  -j, --jobs N           worker threads (default: one per CPU)\n"
"  -q, --quiet            no progress bar and no summary\n"
"      --json             print the summary as JSON\n"
"\n"
"Flattening a tree into an ext4 image first (in the dedup-stable layout\n"
"of Documentation/format.md: images that share layers or files share\n"
"chunks; no privilege and no temporary tree needed):\n"
"      --from-dir DIR     the directory tree DIR (owners, modes, xattrs\n"
"                         and hard links as they are on disk)\n"
"      --from-tar FILE    one tar archive (gzip, zstd, xz or plain;\n"
"                         '-' reads standard input)\n"
"      --layer FILE       a container layer (tar, compressed or not, or\n"
"                         '-'); repeat, lowest first: applied in order\n"
"                         with the OCI rules (.wh. whiteouts, opaque\n"
"                         directories, hard links, devices, xattrs,\n"
"                         owners and modes from the headers)\n"
"      --from-oci DIR[:REF]  the layers of an OCI image layout (as\n"
"                         'skopeo copy ... oci:DIR:REF' or umoci make),\n"
"                         every digest checked; REF picks one of several\n"
"      --fs-size N        file system size (default: a size class, 1 GiB\n"
"                         times a power of 4, with 8x room; suffixes\n"
"                         K, M, G, T)\n"
"      --fs-uuid UUID     file system UUID and directory hash seed\n"
"                         (default " SB_FLATTEN_UUID ")\n"
"      --owner UID:GID    make every file owned by UID:GID\n"
"      --image-out FILE   keep the ext4 image in FILE (not inside the\n"
"                         --from-dir tree: refused with exit 2)\n"
"      --tmpdir DIR       temporary files (default $TMPDIR, /var/tmp)\n"
"All inode times but mtime, and the file system's own times, are set to\n"
"$SOURCE_DATE_EPOCH (default 1000000000).\n"
"\n"
"SIGINT, SIGTERM, SIGHUP or SIGQUIT end a build without leaving a\n"
"temporary file (in the store, next to MANIFEST, an unfinished\n"
"--image-out); the build then dies of that signal.  The temporary files\n"
"of a build killed otherwise (kill -9, a crash) are removed by the next\n"
"build into the same store, or by 'snapblk-build gc --delete': those\n"
"whose process is not running on this host, or over an hour old.\n";

static const char verify_help[] =
"usage: snapblk-build verify MANIFEST --store DIR --key-file K\n"
"                            [--secret-file S] [--jobs N] [--quiet]\n"
"\n"
"Check every chunk the manifest lists: present in the store, of the\n"
"right size, its SHA-256 equal to its address, and decrypting to data\n"
"that derives its key (checked when the image was built with the\n"
"default secret, or with --secret-file).  Each bad chunk is reported on\n"
"standard output; the exit status is 3 if there was any.  --raw-key:\n"
"the key file is 32 raw bytes, not hex.\n";

static const char inspect_help[] =
"usage: snapblk-build inspect MANIFEST --key-file K [--json] [--chunks]\n"
"\n"
"Unseal the manifest and show its format version, image size, chunk\n"
"size, chunk counts, stored size, image ID and the builder layout it\n"
"was flattened in.  --chunks lists every\n"
"chunk's index, offset, flags and address (never its key).  --raw-key:\n"
"the key file is 32 raw bytes, not hex.  In --json output, bytes of a\n"
"name that are not UTF-8 are written as \\u00XX (XX the byte).\n";

static const char gc_help[] =
"usage: snapblk-build gc --store DIR --keep MANIFEST[:KEYFILE] [--keep ...]\n"
"                        [--key-file K] [--raw-key] [--delete] [--verbose]\n"
"                        [--json]\n"
"       snapblk-build gc --store DIR --keep-nothing [--delete] ...\n"
"\n"
"Find the chunks in the store that no kept manifest references, and the\n"
"stale temporary files of interrupted builds.  A DRY RUN by default: it\n"
"says how many there are and how much they hold, and deletes nothing.\n"
"\n"
"  -s, --store DIR        the chunk store\n"
"      --keep MANIFEST    a manifest whose chunks stay (repeat for each\n"
"                         image in use); unsealed with --key-file\n"
"      --keep MANIFEST:KEYFILE\n"
"                         the same with its own tenant key (manifests of\n"
"                         different tenants); the argument is split at\n"
"                         its last ':', so a MANIFEST path with a colon\n"
"                         needs its :KEYFILE\n"
"  -k, --key-file K       the key of every --keep without its own\n"
"      --raw-key          key files are 32 raw bytes, not hex\n"
"      --keep-nothing     keep no manifest: every chunk is unreferenced\n"
"                         (without it, gc with no --keep is refused)\n"
"      --delete           delete them (and take the store's lock: refused\n"
"                         while a build writes to the store)\n"
"  -v, --verbose          list every file it deletes or would delete\n"
"      --json             print the counts as JSON\n"
"\n"
"Every kept manifest is read first; if one cannot be read or unsealed,\n"
"gc stops (exit 1, 4 or 5) before it looks at the store.  A temporary\n"
"file is stale when the process named in it is not running on this\n"
"host, or it is over an hour old.  Files that are not chunks are left\n"
"alone and counted.\n";

static const char keygen_help[] =
"usage: snapblk-build keygen -o FILE [--force]\n"
"\n"
"Write a new random 256-bit tenant key to FILE as 64 hex digits, mode\n"
"0600.  FILE must not exist unless --force is given.  Keep it secret:\n"
"it unseals every manifest built with it.\n";

/* ------------------------------------------------------------- helpers */

static noreturn void cmd_usage_die(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static noreturn void cmd_usage_die(const char *cmd, const char *fmt, ...)
{
	static char hint[128];
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(hint, sizeof(hint), "run 'snapblk-build %s --help' for usage",
		 cmd);
	usage_hint = hint;
	usage_die("%s", msg);
}

/* NULL path: the default secret, returned as NULL. */
static uint8_t *read_secret(const char *path, size_t *len)
{
	uint8_t *buf;
	int ret;

	*len = 0;
	if (!path)
		return NULL;
	ret = sb_read_file(path, SB_SECRET_MAX_LEN, &buf, len);
	if (ret == -EFBIG || (!ret && *len < SB_SECRET_MIN_LEN))
		die(EXIT_FAIL, 0, "a secret file holds 16 to 4096 bytes, e.g. "
		    "made with 'head -c 32 /dev/urandom > FILE'",
		    "convergence secret %s is too %s", path,
		    ret ? "long" : "short");
	if (ret)
		die(EXIT_FAIL, -ret, "check --secret-file and its permissions",
		    "cannot read convergence secret %s", path);
	return buf;
}

static struct sb_store *open_store(const char *dir, uint32_t chunk_size,
				   bool writable)
{
	struct sb_store *st;
	int ret;

	ret = sb_store_open(dir, chunk_size, writable, &st);
	if (ret == -ENOENT)
		die(EXIT_FAIL, -ret, writable ?
		    "create it first (mkdir -p DIR) or check --store" :
		    "check --store: it names the store the image was built "
		    "into", "cannot open store %s", dir);
	if (ret)
		die(EXIT_FAIL, -ret, ret == -ENOTDIR ?
		    "--store takes a directory" :
		    "check the store directory's permissions",
		    "cannot open store %s", dir);
	return st;
}

/*
 * A file longer than any manifest: say whether it is a foreign file (most
 * likely: an image given for its manifest) or a damaged manifest.
 */
static noreturn void too_long(const char *path)
{
	struct snapblk_manifest_header hdr;
	uint8_t head[sizeof(hdr)] = { 0 };
	ssize_t n = 0;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, head, sizeof(head));
		close(fd);
	}
	ret = sb_manifest_parse_header(head, n > 0 ? n : 0, &hdr);
	if (ret != SB_MF_FOREIGN && ret != SB_MF_VERSION)
		ret = SB_MF_MALFORMED;
	die(SB_EXIT_MANIFEST, 0, sb_manifest_hint(ret), "%s: %s%s", path,
	    sb_manifest_strerror(ret), ret == SB_MF_MALFORMED ?
	    " (longer than any manifest)" : "");
}

static void load_manifest(const char *path, const char *key_file,
			  unsigned int key_flags, struct sb_manifest *m,
			  struct snapblk_manifest_header *hdr, size_t *len)
{
	uint8_t key[SNAPBLK_TENANT_KEY_LEN], *buf;
	int ret;

	sb_load_tenant_key_opt(key_file, key_flags, key);
	ret = sb_read_file(path, SB_MANIFEST_MAX_FILE_LEN, &buf, len);
	if (ret == -EFBIG)
		too_long(path);
	if (ret)
		die(EXIT_FAIL, -ret, "check the manifest path",
		    "cannot read manifest %s", path);
	ret = sb_manifest_parse_header(buf, *len, hdr);
	if (!ret)
		ret = sb_manifest_unseal(buf, *len, key, m);
	OPENSSL_cleanse(key, sizeof(key));
	free(buf);
	if (ret)
		die(sb_manifest_exit(ret), 0, sb_manifest_hint(ret), "%s: %s",
		    path, sb_manifest_strerror(ret));
}

static unsigned int default_jobs(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > MAX_JOBS ? MAX_JOBS : (unsigned int)n;
}

/* ------------------------------------------------------ worker pool */

/*
 * The workers of create and verify share this shape: claim chunk indexes
 * from next until the table is done or one fails.  The first error is
 * kept for the main thread to report.
 */
struct pool {
	unsigned int jobs;
	uint64_t count;			/* chunks */
	uint32_t chunk_size;
	atomic_uint_fast64_t next;
	atomic_uint_fast64_t done;	/* chunks finished */
	atomic_bool stop;
	atomic_uint running;
	pthread_mutex_t lock;
	bool failed;
	int err;			/* first error: errno, or 0 */
	char what[256];			/* and what failed */
	const char *hint;
};

static void pool_fail(struct pool *p, int err, const char *hint,
		      const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void pool_fail(struct pool *p, int err, const char *hint,
		      const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&p->lock);
	if (!p->failed) {
		p->failed = true;
		p->err = err;
		p->hint = hint;
		va_start(ap, fmt);
		vsnprintf(p->what, sizeof(p->what), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&p->lock);
	atomic_store(&p->stop, true);
}

/* Run fn on jobs threads, drawing progress until they are all done. */
static void pool_run(struct pool *p, void *(*fn)(void *), void *arg,
		     const char *label, bool progress)
{
	pthread_t tid[MAX_JOBS];
	struct sb_progress bar;
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	unsigned int i, started = 0;
	sigset_t block, old;
	int ret;

	pthread_mutex_init(&p->lock, NULL);
	atomic_store(&p->running, p->jobs);
	/* Workers inherit a mask that keeps the signal handler off them. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (i = 0; i < p->jobs; i++) {
		ret = pthread_create(&tid[i], NULL, fn, arg);
		if (ret) {
			atomic_fetch_sub(&p->running, p->jobs - i);
			pool_fail(p, ret, "lower --jobs",
				  "cannot start a worker thread");
			break;
		}
		started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	sb_progress_start(&bar, label, p->count * p->chunk_size, progress);
	while (atomic_load(&p->running)) {
		nanosleep(&ts, NULL);
		sb_progress_update(&bar, atomic_load(&p->done) * p->chunk_size);
	}
	sb_progress_end(&bar);
	for (i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
}

static bool pool_claim(struct pool *p, uint64_t *idx)
{
	if (atomic_load(&p->stop))
		return false;
	*idx = atomic_fetch_add(&p->next, 1);
	return *idx < p->count;
}

static void *aligned_buf(size_t len)
{
	void *p;

	return posix_memalign(&p, 4096, len) ? NULL : p;
}

/* ------------------------------------------------------------ create */

/* Addresses seen in this run, so that a repeated chunk is written once. */
struct addr_set {
	uint32_t *slot;			/* chunk index + 1, 0 = empty */
	uint64_t mask;
	pthread_mutex_t lock;
};

/*
 * One create: set up by cmd_create(), then read by the workers, which
 * write only their own chunks' entries in m, the atomic counters and
 * (under its lock) seen.
 */
struct build {
	struct pool pool;
	int fd;				/* the image */
	uint64_t image_size;
	bool sparse;			/* a regular file: SEEK_DATA works */
	bool verify_existing;		/* compare chunks already stored */
	const char *image;		/* its name, for messages */
	struct sb_manifest *m;
	struct sb_store *st;
	const uint8_t *secret;
	size_t secret_len;
	struct addr_set seen;
	/* zero: all-zero chunks (holes included); fresh: written; present:
	 * already stored (or earlier in the image); damaged: stored but
	 * wrong (--verify-existing), rewritten; written: bytes written. */
	atomic_uint_fast64_t zero, fresh, present, damaged, written;
};

static int addr_set_init(struct addr_set *s, uint64_t n)
{
	uint64_t cap = 16;

	while (cap < 2 * n)
		cap <<= 1;
	s->slot = calloc(cap, sizeof(*s->slot));
	s->mask = cap - 1;
	pthread_mutex_init(&s->lock, NULL);
	return s->slot ? 0 : -ENOMEM;
}

/* true if chunk idx's address was not seen before (and is now). */
static bool addr_set_add(struct addr_set *s, const struct sb_manifest *m,
			 uint64_t idx)
{
	const uint8_t *a = m->chunks[idx].addr;
	uint64_t h;
	bool fresh = true;

	memcpy(&h, a, sizeof(h));
	pthread_mutex_lock(&s->lock);
	for (h &= s->mask; s->slot[h]; h = (h + 1) & s->mask) {
		if (!memcmp(m->chunks[s->slot[h] - 1].addr, a,
			    SNAPBLK_ADDR_LEN)) {
			fresh = false;
			break;
		}
	}
	if (fresh)
		s->slot[h] = idx + 1;
	pthread_mutex_unlock(&s->lock);
	return fresh;
}

/*
 * Read chunk idx into buf (zero-padded past the end of the image): 0, or
 * 1 without reading when the chunk lies in a hole of a sparse file (it
 * is all zero), or -errno (-ENODATA: the image shrank).
 */
static int read_chunk(struct build *b, uint64_t idx, uint8_t *buf)
{
	uint32_t cs = b->m->chunk_size;
	uint64_t off = idx * cs;
	size_t want = cs, got = 0;
	ssize_t r;
	off_t data;

	if (off + want > b->image_size)
		want = b->image_size - off;
	if (b->sparse) {
		/*
		 * The next data at or after off; none (ENXIO) or only past
		 * this chunk: a hole.  lseek() moves the shared file offset,
		 * which pread() does not use.  Other errors: just read.
		 */
		data = lseek(b->fd, off, SEEK_DATA);
		if ((data < 0 && errno == ENXIO) ||
		    (data >= 0 && (uint64_t)data >= off + want))
			return 1;
	}
	while (got < want) {
		r = pread(b->fd, buf + got, want - got, off + got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (!r)
			return -ENODATA;
		got += r;
	}
	memset(buf + want, 0, cs - want);
	return 0;
}

/*
 * Store chunk idx's ciphertext unless the store has it already; with
 * --verify-existing a stored copy is read (into scratch) and compared
 * with ct byte for byte (so its SHA-256 is its address), and rewritten
 * when it differs.
 */
static int store_chunk(struct build *b, uint64_t idx, const uint8_t *ct,
		       uint8_t *scratch)
{
	const struct snapblk_chunk_entry *e = &b->m->chunks[idx];
	uint32_t cs = b->m->chunk_size;
	int ret;

	if (!addr_set_add(&b->seen, b->m, idx)) {
		/* Earlier in this image: written (or found) once. */
		atomic_fetch_add(&b->present, 1);
		return 0;
	}
	ret = sb_store_has(b->st, e->addr);
	if (ret == 1 && b->verify_existing) {
		uint64_t size;

		ret = sb_store_read(b->st, e->addr, scratch, cs, &size);
		if (!ret && !memcmp(scratch, ct, cs))
			ret = 1;
		else if (!ret || ret == -EMSGSIZE || ret == -ENOENT)
			ret = 2;	/* damaged (or gone): rewrite */
		if (ret < 0)
			return ret;
	}
	if (ret == 1) {
		atomic_fetch_add(&b->present, 1);
		return 0;
	}
	if (ret == 0 || ret == 2)
		ret = sb_store_put(b->st, e->addr, ct, cs) ?: ret;
	if (ret < 0)
		return ret;
	if (ret == 2)
		atomic_fetch_add(&b->damaged, 1);
	else
		atomic_fetch_add(&b->fresh, 1);
	atomic_fetch_add(&b->written, cs);
	return 0;
}

static void *build_worker(void *arg)
{
	struct build *b = arg;
	struct pool *p = &b->pool;
	uint32_t cs = b->m->chunk_size;
	struct snapblk_chunk_entry *e;
	struct sb_chunk_ctx *ctx;
	uint8_t *pt, *ct;
	uint64_t idx;
	int ret;

	ctx = sb_chunk_ctx_new(b->secret, b->secret_len);
	pt = aligned_buf(cs);
	ct = aligned_buf(cs);
	if (!ctx || !pt || !ct) {
		pool_fail(p, ENOMEM, "lower --jobs or --chunk-size",
			  "cannot set up a worker");
		goto out;
	}
	/* --verify-existing reads stored chunks into pt, no longer needed. */
	while (pool_claim(p, &idx)) {
		e = &b->m->chunks[idx];
		ret = read_chunk(b, idx, pt);
		if (ret == 1) {
			e->flags = htole32(SNAPBLK_CHUNK_F_ZERO);
			atomic_fetch_add(&b->zero, 1);
			atomic_fetch_add(&p->done, 1);
			continue;
		}
		if (ret) {
			pool_fail(p, ret == -ENODATA ? 0 : -ret,
				  "check that nothing changes the image while "
				  "it is built", ret == -ENODATA ?
				  "%s shrank while it was read" :
				  "cannot read %s", b->image);
			break;
		}
		if (sb_is_zero(pt, cs)) {
			e->flags = htole32(SNAPBLK_CHUNK_F_ZERO);
			atomic_fetch_add(&b->zero, 1);
			atomic_fetch_add(&p->done, 1);
			continue;
		}
		ret = sb_chunk_seal(ctx, pt, ct, cs, e->key, e->addr);
		if (ret) {
			pool_fail(p, -ret, "check the OpenSSL installation",
				  "cannot encrypt chunk %llu",
				  (unsigned long long)idx);
			break;
		}
		ret = store_chunk(b, idx, ct, pt);
		if (ret == -EINTR)
			break;	/* a signal: the handler ends the process */
		if (ret) {
			pool_fail(p, -ret, "check the store's free space and "
				  "permissions", "cannot write chunk %llu to "
				  "the store", (unsigned long long)idx);
			break;
		}
		atomic_fetch_add(&p->done, 1);
	}
out:
	free(pt);
	free(ct);
	sb_chunk_ctx_free(ctx);
	atomic_fetch_sub(&p->running, 1);
	return NULL;
}

static int open_image(const char *path, uint64_t *size, bool *sparse)
{
	struct stat st;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(EXIT_FAIL, errno, errno == EACCES ?
		    "check its permissions, or build as a user who can read "
		    "it" : "check the image path",
		    "cannot open image %s", path);
	if (fstat(fd, &st) < 0)
		die(EXIT_FAIL, errno, NULL, "cannot stat image %s", path);
	*sparse = false;
	if (S_ISREG(st.st_mode)) {
		*size = st.st_size;
		/* Holes are skipped by SEEK_DATA, where the fs has it. */
		*sparse = lseek(fd, 0, SEEK_DATA) >= 0 || errno == ENXIO;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size) < 0)
			die(EXIT_FAIL, errno, NULL,
			    "cannot get the size of %s", path);
	} else {
		die(EXIT_FAIL, 0, "use --from-dir for a directory tree",
		    "image %s is not a regular file or a block device", path);
	}
	if (!*size)
		die(EXIT_FAIL, 0, "check the image path", "image %s is empty",
		    path);
	/* Tell the kernel we read it once, front to back. */
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return fd;
}

/* create's command line, as parse_create() leaves it. */
struct create_opts {
	const char *image, *store, *key_file, *secret_file, *output;
	uint64_t chunk_size;
	unsigned int jobs;
	bool quiet, json;
	bool force;		/* replace an existing -o and --image-out */
	bool verify_existing;	/* re-read chunks the store has */
	unsigned int key_flags;	/* SB_KEY_RAW with --raw-key */
	struct sb_flatten_opts flat;
	bool flatten;
};

static void print_summary(const struct create_opts *o, struct build *b,
			  double secs)
{
	uint64_t n = b->m->chunk_count, zero = atomic_load(&b->zero);
	uint64_t fresh = atomic_load(&b->fresh);
	uint64_t present = atomic_load(&b->present);
	uint64_t written = atomic_load(&b->written);
	char id[2 * SNAPBLK_IMAGE_ID_LEN + 1], h1[32], h2[32];
	double ratio = fresh ? (double)(n - zero) / fresh : 0;

	sb_hex(b->m->image_id, SNAPBLK_IMAGE_ID_LEN, id);
	if (o->json) {
		printf("{\"image_size\":%llu,\"chunk_size\":%u,"
		       "\"chunks\":%llu,\"zero\":%llu,\"new\":%llu,"
		       "\"present\":%llu,\"damaged\":%llu,"
		       "\"bytes_written\":%llu,"
		       "\"dedup_ratio\":%.4f,\"image_id\":\"%s\","
		       "\"seconds\":%.3f,\"manifest\":",
		       (unsigned long long)b->image_size, b->m->chunk_size,
		       (unsigned long long)n, (unsigned long long)zero,
		       (unsigned long long)fresh,
		       (unsigned long long)present,
		       (unsigned long long)atomic_load(&b->damaged),
		       (unsigned long long)written, ratio, id, secs);
		json_print_string(o->output);
		printf("}\n");
		return;
	}
	sb_fmt_size(b->image_size, SB_SIZE_IEC, h1, sizeof(h1));
	sb_fmt_size(b->m->chunk_size, SB_SIZE_IEC, h2, sizeof(h2));
	printf("image:     %s, %s (%llu chunks of %s)\n", b->image, h1,
	       (unsigned long long)n, h2);
	printf("chunks:    %llu total, %llu zero, %llu new, %llu already "
	       "present\n", (unsigned long long)n, (unsigned long long)zero,
	       (unsigned long long)fresh, (unsigned long long)present);
	if (o->verify_existing)
		printf("verified:  %llu chunks already stored, %llu of them "
		       "damaged and rewritten\n",
		       (unsigned long long)present,
		       (unsigned long long)atomic_load(&b->damaged));
	sb_fmt_size(written, SB_SIZE_IEC, h1, sizeof(h1));
	printf("written:   %s to %s\n", h1, o->store);
	if (fresh)
		printf("dedup:     %.2fx (%llu non-zero chunks, %llu "
		       "written)\n", ratio, (unsigned long long)(n - zero),
		       (unsigned long long)fresh);
	else
		printf("dedup:     every chunk was already in the store\n");
	printf("image ID:  %s\n", id);
	printf("manifest:  %s (%.1f s)\n", o->output, secs);
}

static void parse_owner(const char *s, struct sb_flatten_opts *f)
{
	unsigned long uid, gid;
	char buf[64], *colon;

	snprintf(buf, sizeof(buf), "%s", s);
	colon = strchr(buf, ':');
	if (!colon)
		cmd_usage_die("create", "--owner takes UID:GID (numbers), not '%s'",
			  s);
	*colon = '\0';
	if (parse_ulong(buf, 0, 0xfffffffeUL, &uid) ||
	    parse_ulong(colon + 1, 0, 0xfffffffeUL, &gid))
		cmd_usage_die("create", "--owner takes UID:GID (numbers), not '%s'",
			  s);
	f->set_owner = true;
	f->uid = uid;
	f->gid = gid;
}

/*
 * Whether path (which need not exist) would be dir or inside it, by the
 * real paths of dir and of path's parent directory.
 */
static bool path_inside(const char *path, const char *dir)
{
	char rdir[PATH_MAX], rparent[PATH_MAX], copy[PATH_MAX];
	size_t n;

	if (!realpath(dir, rdir))
		return false;
	snprintf(copy, sizeof(copy), "%s", path);
	if (!realpath(dirname(copy), rparent))
		return false;
	n = strlen(rdir);
	if (n == 1)
		return true;	/* "/" holds everything */
	return !strncmp(rparent, rdir, n) &&
	       (rparent[n] == '/' || rparent[n] == '\0');
}

/*
 * Refuse outputs that would clobber something: an existing -o or
 * --image-out without --force (exit 1), an --image-out inside the
 * --from-dir tree it is made from (exit 2: it would be copied into
 * itself).
 */
static void check_outputs(const struct create_opts *o)
{
	const char *img = o->flat.image_out;
	struct stat st;

	if (img && o->flat.src_dir && path_inside(img, o->flat.src_dir))
		cmd_usage_die("create", "--image-out %s is inside the input "
			      "tree %s: put it elsewhere", img,
			      o->flat.src_dir);
	if (!o->force && !lstat(o->output, &st))
		die(EXIT_FAIL, 0, "give --force to replace it, or another -o",
		    "manifest %s exists", o->output);
	if (!o->force && img && !lstat(img, &st))
		die(EXIT_FAIL, 0, "give --force to replace it, or another "
		    "--image-out", "image %s exists", img);
}

static void parse_create(int argc, char **argv, struct create_opts *o)
{
	enum { O_FROM_DIR = 256, O_FROM_TAR, O_LAYER, O_FROM_OCI, O_FS_SIZE, O_FS_UUID, O_OWNER,
	       O_IMAGE_OUT, O_TMPDIR, O_JSON, O_FORCE, O_VERIFY_EXISTING,
	       O_RAW_KEY };
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "secret-file", required_argument, NULL, 'S' },
		{ "chunk-size", required_argument, NULL, 'c' },
		{ "output", required_argument, NULL, 'o' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, O_JSON },
		{ "from-dir", required_argument, NULL, O_FROM_DIR },
		{ "from-tar", required_argument, NULL, O_FROM_TAR },
		{ "layer", required_argument, NULL, O_LAYER },
		{ "from-oci", required_argument, NULL, O_FROM_OCI },
		{ "fs-size", required_argument, NULL, O_FS_SIZE },
		{ "fs-uuid", required_argument, NULL, O_FS_UUID },
		{ "owner", required_argument, NULL, O_OWNER },
		{ "image-out", required_argument, NULL, O_IMAGE_OUT },
		{ "tmpdir", required_argument, NULL, O_TMPDIR },
		{ "force", no_argument, NULL, O_FORCE },
		{ "verify-existing", no_argument, NULL, O_VERIFY_EXISTING },
		{ "raw-key", no_argument, NULL, O_RAW_KEY },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long jobs;
	unsigned int i, stdin_uses;
	int opt, sources;

	memset(o, 0, sizeof(*o));
	o->chunk_size = SNAPBLK_CHUNK_SIZE_DEFAULT;
	o->jobs = default_jobs();
	while ((opt = getopt_long(argc, argv, "s:k:S:c:o:j:qh", opts,
				  NULL)) != -1) {
		switch (opt) {
		case 's':
			o->store = optarg;
			break;
		case 'k':
			o->key_file = optarg;
			break;
		case 'S':
			o->secret_file = optarg;
			break;
		case 'c':
			if (sb_parse_size(optarg, &o->chunk_size))
				cmd_usage_die("create", "bad chunk size '%s'",
					  optarg);
			break;
		case 'o':
			o->output = optarg;
			break;
		case 'j':
			if (parse_ulong(optarg, 1, MAX_JOBS, &jobs))
				cmd_usage_die("create", "--jobs takes 1 to %d",
					  MAX_JOBS);
			o->jobs = jobs;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			fputs(create_help, stdout);
			exit(EXIT_OK);
		case O_JSON:
			o->json = true;
			break;
		case O_FROM_DIR:
			o->flat.src_dir = optarg;
			break;
		case O_FROM_TAR:
			o->flat.tar = optarg;
			break;
		case O_LAYER:
			if (o->flat.nlayers == SB_FLATTEN_MAX_LAYERS)
				cmd_usage_die("create", "at most %d --layer",
					      SB_FLATTEN_MAX_LAYERS);
			o->flat.layers[o->flat.nlayers++] = optarg;
			break;
		case O_FROM_OCI:
			o->flat.oci = optarg;
			break;
		case O_FS_SIZE:
			if (sb_parse_size(optarg, &o->flat.fs_size) ||
			    o->flat.fs_size < (1 << 20))
				cmd_usage_die("create", "bad --fs-size '%s' (at "
					  "least 1M)", optarg);
			break;
		case O_FS_UUID:
			o->flat.uuid = optarg;
			break;
		case O_OWNER:
			parse_owner(optarg, &o->flat);
			break;
		case O_IMAGE_OUT:
			o->flat.image_out = optarg;
			break;
		case O_TMPDIR:
			o->flat.tmpdir = optarg;
			break;
		case O_FORCE:
			o->force = true;
			break;
		case O_VERIFY_EXISTING:
			o->verify_existing = true;
			break;
		case O_RAW_KEY:
			o->key_flags |= SB_KEY_RAW;
			break;
		default:
			cmd_usage_die("create", "bad option");
		}
	}
	if (optind < argc)
		o->image = argv[optind++];
	if (optind < argc)
		cmd_usage_die("create", "unexpected argument '%s'", argv[optind]);
	sources = !!o->image + !!o->flat.src_dir + !!o->flat.tar +
		  !!o->flat.nlayers + !!o->flat.oci;
	if (sources != 1)
		cmd_usage_die("create", "give exactly one of IMAGE, --from-dir, "
			      "--from-tar, --layer (one or more) and --from-oci");
	for (i = 0, stdin_uses = !!(o->flat.tar && !strcmp(o->flat.tar, "-"));
	     i < o->flat.nlayers; i++)
		stdin_uses += !strcmp(o->flat.layers[i], "-");
	if (stdin_uses > 1)
		cmd_usage_die("create", "standard input ('-') can be read once");
	o->flat.chunk_size = o->chunk_size;
	o->flatten = !o->image;
	if (!o->flatten && (o->flat.fs_size || o->flat.uuid ||
			    o->flat.set_owner || o->flat.image_out))
		cmd_usage_die("create", "--fs-size, --fs-uuid, --owner and "
			  "--image-out go with --from-dir, --from-tar, --layer "
			  "or --from-oci");
	if (!o->store || !o->key_file || !o->output)
		cmd_usage_die("create", "--store, --key-file and -o are required");
	if (!sb_chunk_size_valid(o->chunk_size))
		die(EXIT_USAGE, 0, "use a power of two from 64K to 4M "
		    "(default 512K)", "chunk size %llu is out of range",
		    (unsigned long long)o->chunk_size);
	if (o->flatten && sb_flatten_epoch(&o->flat.epoch))
		die(EXIT_USAGE, 0, "set it to seconds since 1970, or unset it",
		    "SOURCE_DATE_EPOCH '%s' is not a valid time",
		    getenv("SOURCE_DATE_EPOCH"));
	o->flat.verbose = !o->quiet && isatty(STDERR_FILENO);
	check_outputs(o);
}

/*
 * Called by the signal handler (util.c) after it removed the registered
 * temporary files: must be async-signal-safe.
 */
static void create_abort(void)
{
	/*
	 * The flattener's part (async-signal-safe): its image and spool
	 * files are O_TMPFILE (nothing named); this removes an unfinished
	 * --image-out.
	 */
	sb_flatten_abort();
}

/*
 * Remove the stale temporary files that builds killed before they could
 * clean up left in the store and next to the manifest; say how many.
 */
static void sweep_stale(const struct create_opts *o, struct sb_store *st)
{
	char copy[PATH_MAX], prefix[NAME_MAX + 1];
	uint64_t n = 0;
	int dfd, ret;

	ret = sb_store_sweep_tmp(st, true, &n);
	if (ret)
		err_report(-ret, NULL, "warning: cannot remove stale temporary "
			   "files in store %s", o->store);
	snprintf(copy, sizeof(copy), "%s", o->output);
	dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		snprintf(copy, sizeof(copy), "%s", o->output);
		snprintf(prefix, sizeof(prefix), "%s.tmp-", basename(copy));
		sb_sweep_tmp(dfd, prefix, true, &n);
		close(dfd);
	}
	if (n && !o->quiet && !o->json)
		fprintf(stderr, "%s: removed %llu stale temporary files of "
			"interrupted builds\n", prog_name,
			(unsigned long long)n);
}

static int cmd_create(int argc, char **argv)
{
	uint8_t key[SNAPBLK_TENANT_KEY_LEN], *secret, *sealed;
	struct sb_flatten flat = { .fd = -1 };
	struct sb_manifest m;
	struct create_opts o;
	struct build b;
	size_t sealed_len;
	double start = sb_now();
	int ret;

	parse_create(argc, argv, &o);
	sb_load_tenant_key_opt(o.key_file, o.key_flags, key);
	memset(&b, 0, sizeof(b));
	b.verify_existing = o.verify_existing;
	secret = read_secret(o.secret_file, &b.secret_len);
	b.secret = secret;
	/* From here on SIGINT and SIGTERM remove what this build made. */
	ret = sb_tmp_install_signals(create_abort);
	if (ret)
		die(EXIT_FAIL, -ret, NULL, "cannot install signal handlers");
	/* Like casync make: the store is created if it is missing. */
	ret = sb_store_mkdir(o.store);
	if (ret)
		die(EXIT_FAIL, -ret, ret == -ENOTDIR ?
		    "--store takes a directory: a part of the path is a file" :
		    "check --store and its parent's permissions",
		    "cannot create store %s", o.store);
	b.st = open_store(o.store, o.chunk_size, true);
	ret = sb_store_lock(b.st, false, true);
	if (ret)
		die(EXIT_FAIL, -ret, NULL, "cannot lock store %s", o.store);
	sweep_stale(&o, b.st);

	if (o.flatten) {
		/* Any exit before the manifest is written drops the image. */
		atexit(sb_flatten_abort);
		if (sb_flatten_run(&o.flat, &flat)) {
			sb_flatten_cleanup(&flat);
			exit(EXIT_FAIL);
		}
		o.image = flat.image;
	}
	b.image = !o.flatten ? o.image : o.flat.src_dir ? o.flat.src_dir :
		  o.flat.tar ? o.flat.tar : o.flat.oci ? o.flat.oci :
		  o.flat.layers[o.flat.nlayers - 1];
	if (b.image && !strcmp(b.image, "-"))
		b.image = "standard input";
	b.fd = open_image(o.image, &b.image_size, &b.sparse);

	ret = sb_manifest_init(&m, b.image_size, o.chunk_size);
	if (ret)
		die(EXIT_FAIL, 0, ret == SB_MF_INVALID ?
		    "use a larger --chunk-size for an image this large" : NULL,
		    "cannot build %s: %s", b.image,
		    ret == SB_MF_INVALID ? "too many chunks" :
		    sb_manifest_strerror(ret));
	if (secret) {
		ret = sb_secret_id(secret, b.secret_len, m.secret_id);
	} else {
		uint8_t def[32];

		sb_default_secret(def);
		ret = sb_secret_id(def, sizeof(def), m.secret_id);
	}
	if (ret)
		die(EXIT_FAIL, -ret, "check the OpenSSL installation",
		    "cannot derive the secret id");
	b.m = &m;
	m.layout = o.flatten ? flat.layout : SNAPBLK_LAYOUT_RAW;
	if (addr_set_init(&b.seen, m.chunk_count))
		die(EXIT_FAIL, ENOMEM, NULL, "cannot build %s", b.image);

	b.pool.jobs = o.jobs;
	b.pool.count = m.chunk_count;
	b.pool.chunk_size = m.chunk_size;
	pool_run(&b.pool, build_worker, &b, "building", !o.quiet);
	if (!b.pool.failed) {
		ret = sb_store_sync(b.st);
		if (ret)
			pool_fail(&b.pool, -ret, "check the store's file "
				  "system", "cannot sync the store %s",
				  o.store);
	}
	if (b.pool.failed) {
		sb_store_close(b.st);
		sb_flatten_cleanup(&flat);
		die(EXIT_FAIL, b.pool.err, b.pool.hint, "%s", b.pool.what);
	}
	close(b.fd);
	sb_flatten_cleanup(&flat);

	ret = sb_manifest_seal(&m, key, &sealed, &sealed_len);
	OPENSSL_cleanse(key, sizeof(key));
	if (ret)
		die(EXIT_FAIL, 0, sb_manifest_hint(ret),
		    "cannot seal the manifest: %s", sb_manifest_strerror(ret));
	ret = sb_write_file_atomic(o.output, sealed, sealed_len, 0644, false);
	if (ret)
		die(EXIT_FAIL, -ret, "check the -o path and its directory",
		    "cannot write manifest %s", o.output);
	sb_flatten_keep();
	if (!o.quiet)
		print_summary(&o, &b, sb_now() - start);
	free(sealed);
	sb_store_close(b.st);
	sb_manifest_free(&m);
	free(b.seen.slot);
	if (secret)
		OPENSSL_clear_free(secret, b.secret_len);
	return EXIT_OK;
}

/* ------------------------------------------------------------ verify */

enum chunk_state {
	CS_OK,
	CS_ZERO,
	CS_MISSING,
	CS_SIZE,
	CS_ADDR,
	CS_KEY,
	CS_IO,
};

struct check {
	struct pool pool;
	struct sb_manifest *m;
	struct sb_store *st;
	const uint8_t *secret;		/* NULL: default */
	size_t secret_len;
	bool check_key;
	uint8_t *state;			/* enum chunk_state per chunk */
	uint64_t *detail;		/* size or errno */
};

static void *verify_worker(void *arg)
{
	struct check *c = arg;
	struct pool *p = &c->pool;
	uint32_t cs = c->m->chunk_size;
	struct snapblk_chunk_entry *e;
	struct sb_chunk_ctx *ctx;
	uint8_t *pt, *ct;
	uint64_t idx, size;
	int ret;

	ctx = sb_chunk_ctx_new(c->secret, c->secret_len);
	pt = aligned_buf(cs);
	ct = aligned_buf(cs);
	if (!ctx || !pt || !ct) {
		pool_fail(p, ENOMEM, "lower --jobs", "cannot set up a worker");
		goto out;
	}
	while (pool_claim(p, &idx)) {
		e = &c->m->chunks[idx];
		atomic_fetch_add(&p->done, 1);
		if (sb_entry_is_zero(e)) {
			c->state[idx] = CS_ZERO;
			continue;
		}
		ret = sb_store_read(c->st, e->addr, ct, cs, &size);
		if (ret == -ENOENT) {
			c->state[idx] = CS_MISSING;
			continue;
		}
		if (ret == -EMSGSIZE) {
			c->state[idx] = CS_SIZE;
			c->detail[idx] = size;
			continue;
		}
		if (ret) {
			c->state[idx] = CS_IO;
			c->detail[idx] = -ret;
			continue;
		}
		ret = sb_chunk_open(ctx, ct, pt, cs, e->key, e->addr,
				    c->check_key);
		if (ret == -EBADMSG)
			c->state[idx] = CS_ADDR;
		else if (ret == -EKEYREJECTED)
			c->state[idx] = CS_KEY;
		else if (ret)
			pool_fail(p, -ret, "check the OpenSSL installation",
				  "cannot decrypt chunk %llu",
				  (unsigned long long)idx);
		else
			c->state[idx] = CS_OK;
	}
out:
	free(pt);
	free(ct);
	sb_chunk_ctx_free(ctx);
	atomic_fetch_sub(&p->running, 1);
	return NULL;
}

static void report_bad(const struct check *c, uint64_t i)
{
	char hex[HEX_ADDR_LEN];

	sb_hex(c->m->chunks[i].addr, SNAPBLK_ADDR_LEN, hex);
	printf("bad chunk %llu (offset %llu, address %s): ",
	       (unsigned long long)i,
	       (unsigned long long)(i * c->m->chunk_size), hex);
	switch (c->state[i]) {
	case CS_MISSING:
		printf("missing from the store\n");
		break;
	case CS_SIZE:
		printf("%s: %llu bytes, expected %u\n",
		       c->detail[i] < c->m->chunk_size ? "truncated" :
		       "wrong size", (unsigned long long)c->detail[i],
		       c->m->chunk_size);
		break;
	case CS_ADDR:
		printf("content does not match its address (damaged, or "
		       "another chunk's data)\n");
		break;
	case CS_KEY:
		printf("decrypts to data that does not match its key\n");
		break;
	default:
		printf("cannot read: %s\n", strerror((int)c->detail[i]));
		break;
	}
}

static int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "secret-file", required_argument, NULL, 'S' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "raw-key", no_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	const char *store = NULL, *key_file = NULL, *secret_file = NULL;
	unsigned int key_flags = 0;
	uint8_t def[32], def_id[SNAPBLK_SECRET_ID_LEN];
	uint8_t sid[SNAPBLK_SECRET_ID_LEN], *secret;
	struct snapblk_manifest_header hdr;
	uint64_t i, ok = 0, zero = 0, bad = 0;
	unsigned long jobs = default_jobs();
	struct sb_manifest m;
	struct check c;
	bool quiet = false;
	size_t len;
	int opt;

	while ((opt = getopt_long(argc, argv, "s:k:S:j:qh", opts,
				  NULL)) != -1) {
		switch (opt) {
		case 's':
			store = optarg;
			break;
		case 'k':
			key_file = optarg;
			break;
		case 'S':
			secret_file = optarg;
			break;
		case 'j':
			if (parse_ulong(optarg, 1, MAX_JOBS, &jobs))
				cmd_usage_die("verify", "--jobs takes 1 to %d",
					  MAX_JOBS);
			break;
		case 'q':
			quiet = true;
			break;
		case 'R':
			key_flags |= SB_KEY_RAW;
			break;
		case 'h':
			fputs(verify_help, stdout);
			return EXIT_OK;
		default:
			cmd_usage_die("verify", "bad option");
		}
	}
	if (argc - optind != 1)
		cmd_usage_die("verify", "give exactly one MANIFEST");
	if (!store || !key_file)
		cmd_usage_die("verify", "--store and --key-file are required");

	load_manifest(argv[optind], key_file, key_flags, &m, &hdr, &len);
	memset(&c, 0, sizeof(c));
	c.m = &m;
	c.st = open_store(store, m.chunk_size, false);
	secret = read_secret(secret_file, &c.secret_len);
	c.secret = secret;
	sb_default_secret(def);
	sb_secret_id(def, sizeof(def), def_id);
	if (secret) {
		sb_secret_id(secret, c.secret_len, sid);
		if (memcmp(sid, m.secret_id, sizeof(sid)))
			die(EXIT_FAIL, 0, "give the secret file the image was "
			    "built with, or leave --secret-file out",
			    "%s is not the convergence secret of %s",
			    secret_file, argv[optind]);
		c.check_key = true;
	} else {
		c.check_key = !memcmp(def_id, m.secret_id, sizeof(def_id));
	}
	c.state = calloc(m.chunk_count, 1);
	c.detail = calloc(m.chunk_count, sizeof(*c.detail));
	if (!c.state || !c.detail)
		die(EXIT_FAIL, ENOMEM, NULL, "cannot verify %s", argv[optind]);
	c.pool.jobs = jobs;
	c.pool.count = m.chunk_count;
	c.pool.chunk_size = m.chunk_size;
	pool_run(&c.pool, verify_worker, &c, "verifying", !quiet);
	if (c.pool.failed)
		die(EXIT_FAIL, c.pool.err, c.pool.hint, "%s", c.pool.what);

	for (i = 0; i < m.chunk_count; i++) {
		if (c.state[i] == CS_OK) {
			ok++;
		} else if (c.state[i] == CS_ZERO) {
			zero++;
		} else {
			bad++;
			report_bad(&c, i);
		}
	}
	if (!quiet || bad)
		printf("%s: %llu chunks: %llu ok, %llu zero, %llu bad%s\n",
		       argv[optind], (unsigned long long)m.chunk_count,
		       (unsigned long long)ok, (unsigned long long)zero,
		       (unsigned long long)bad, c.check_key ? "" :
		       " (keys not checked: give --secret-file to check them)");
	if (bad)
		err_report(0, "delete the bad chunks' files (DIR/ab/abcd... "
			   "for address abcd...), then run 'snapblk-build "
			   "create' on the image again to restore them",
			   "%s: %llu bad chunks in store %s", argv[optind],
			   (unsigned long long)bad, store);
	free(c.state);
	free(c.detail);
	sb_store_close(c.st);
	sb_manifest_free(&m);
	if (secret)
		OPENSSL_clear_free(secret, c.secret_len);
	return bad ? EXIT_BAD_CHUNKS : EXIT_OK;
}

/* ----------------------------------------------------------- inspect */

/* SNAPBLK_LAYOUT_*, as inspect shows it. */
static const char *layout_name(uint32_t layout)
{
	switch (layout) {
	case SNAPBLK_LAYOUT_RAW:
		return "raw image, or flattened by snapblk 0.6 or older";
	case SNAPBLK_LAYOUT_STABLE1:
		return "dedup-stable ext4, version 1";
	default:
		return "unknown: built by a newer snapblk-build";
	}
}

static int cmd_inspect(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key-file", required_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'J' },
		{ "chunks", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "raw-key", no_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned int key_flags = 0;
	char id[2 * SNAPBLK_IMAGE_ID_LEN + 1];
	char sid[2 * SNAPBLK_SECRET_ID_LEN + 1];
	char hex[HEX_ADDR_LEN], h1[32], h2[32];
	uint8_t def[32], def_id[SNAPBLK_SECRET_ID_LEN];
	const char *key_file = NULL, *path;
	struct snapblk_manifest_header hdr;
	bool json = false, chunks = false, is_default;
	uint64_t zero, distinct, i;
	struct sb_manifest m;
	size_t len;
	int opt;

	while ((opt = getopt_long(argc, argv, "k:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'k':
			key_file = optarg;
			break;
		case 'J':
			json = true;
			break;
		case 'C':
			chunks = true;
			break;
		case 'R':
			key_flags |= SB_KEY_RAW;
			break;
		case 'h':
			fputs(inspect_help, stdout);
			return EXIT_OK;
		default:
			cmd_usage_die("inspect", "bad option");
		}
	}
	if (argc - optind != 1)
		cmd_usage_die("inspect", "give exactly one MANIFEST");
	if (!key_file)
		cmd_usage_die("inspect", "--key-file is required");
	path = argv[optind];
	load_manifest(path, key_file, key_flags, &m, &hdr, &len);
	if (sb_manifest_count(&m, &zero, &distinct))
		die(EXIT_FAIL, ENOMEM, NULL, "cannot inspect %s", path);
	sb_hex(m.image_id, SNAPBLK_IMAGE_ID_LEN, id);
	sb_hex(m.secret_id, SNAPBLK_SECRET_ID_LEN, sid);
	sb_default_secret(def);
	sb_secret_id(def, sizeof(def), def_id);
	is_default = !memcmp(def_id, m.secret_id, sizeof(def_id));

	if (json) {
		printf("{\"manifest\":");
		json_print_string(path);
		printf(",\"format_version\":%u,\"header_len\":%u,"
		       "\"sealed_body_len\":%llu,\"file_len\":%zu,"
		       "\"image_id\":\"%s\",\"image_size\":%llu,"
		       "\"chunk_size\":%u,\"chunks\":%llu,\"zero\":%llu,"
		       "\"stored\":%llu,\"distinct\":%llu,"
		       "\"stored_bytes\":%llu,\"secret_id\":\"%s\","
		       "\"default_secret\":%s,\"layout\":%u,"
		       "\"layout_name\":\"%s\"",
		       le32toh(hdr.version), le32toh(hdr.header_len),
		       (unsigned long long)le64toh(hdr.body_len), len, id,
		       (unsigned long long)m.image_size, m.chunk_size,
		       (unsigned long long)m.chunk_count,
		       (unsigned long long)zero,
		       (unsigned long long)(m.chunk_count - zero),
		       (unsigned long long)distinct,
		       (unsigned long long)(distinct * m.chunk_size), sid,
		       is_default ? "true" : "false", m.layout,
		       layout_name(m.layout));
		if (chunks) {
			printf(",\"chunk_table\":[");
			for (i = 0; i < m.chunk_count; i++) {
				sb_hex(m.chunks[i].addr, SNAPBLK_ADDR_LEN, hex);
				printf("%s{\"index\":%llu,\"zero\":%s,"
				       "\"address\":\"%s\"}", i ? "," : "",
				       (unsigned long long)i,
				       sb_entry_is_zero(&m.chunks[i]) ?
				       "true" : "false",
				       sb_entry_is_zero(&m.chunks[i]) ? "" :
				       hex);
			}
			printf("]");
		}
		printf("}\n");
		sb_manifest_free(&m);
		return EXIT_OK;
	}
	printf("manifest:      %s (%zu bytes)\n", path, len);
	printf("format:        version %u, %u-byte header, %llu-byte sealed "
	       "body (AES-256-GCM)\n", le32toh(hdr.version),
	       le32toh(hdr.header_len),
	       (unsigned long long)le64toh(hdr.body_len));
	printf("image ID:      %s\n", id);
	sb_fmt_size(m.image_size, SB_SIZE_IEC, h1, sizeof(h1));
	printf("image size:    %llu bytes (%s)\n",
	       (unsigned long long)m.image_size, h1);
	sb_fmt_size(m.chunk_size, SB_SIZE_IEC, h1, sizeof(h1));
	printf("chunk size:    %u bytes (%s)\n", m.chunk_size, h1);
	printf("chunks:        %llu total, %llu zero, %llu stored, "
	       "%llu distinct\n", (unsigned long long)m.chunk_count,
	       (unsigned long long)zero,
	       (unsigned long long)(m.chunk_count - zero),
	       (unsigned long long)distinct);
	sb_fmt_size(distinct * m.chunk_size, SB_SIZE_IEC, h2, sizeof(h2));
	printf("stored size:   %llu bytes (%s) in distinct chunks\n",
	       (unsigned long long)(distinct * m.chunk_size), h2);
	printf("layout:        %u (%s)\n", m.layout, layout_name(m.layout));
	printf("secret:        %s (id %s)\n",
	       is_default ? "default convergence secret" :
	       "custom convergence secret", sid);
	if (chunks) {
		printf("\n%-10s %-14s %-5s %s\n", "index", "offset", "flags",
		       "address");
		for (i = 0; i < m.chunk_count; i++) {
			bool z = sb_entry_is_zero(&m.chunks[i]);

			sb_hex(m.chunks[i].addr, SNAPBLK_ADDR_LEN, hex);
			printf("%-10llu %-14llu %-5s %s\n",
			       (unsigned long long)i,
			       (unsigned long long)(i * m.chunk_size),
			       z ? "zero" : "-", z ? "-" : hex);
		}
	}
	sb_manifest_free(&m);
	return EXIT_OK;
}

/* ---------------------------------------------------------------- gc */

/* The addresses the kept manifests reference, sorted for bsearch(). */
struct keep_set {
	uint8_t (*addr)[SNAPBLK_ADDR_LEN];
	size_t n, cap;
};

static int addr_cmp(const void *a, const void *b)
{
	return memcmp(a, b, SNAPBLK_ADDR_LEN);
}

static void keep_manifest(struct keep_set *k, const char *arg,
			  const char *key_file, unsigned int key_flags)
{
	struct snapblk_manifest_header hdr;
	char path[PATH_MAX], *colon;
	struct sb_manifest m;
	const char *kf = key_file;
	uint8_t (*q)[SNAPBLK_ADDR_LEN];
	size_t len;
	uint64_t i;

	snprintf(path, sizeof(path), "%s", arg);
	/* MANIFEST:KEYFILE, split at the last colon. */
	colon = strrchr(path, ':');
	if (colon) {
		*colon = '\0';
		kf = colon + 1;
	}
	if (!kf || !*kf || !*path)
		cmd_usage_die("gc", "--keep %s needs a key: give --key-file K "
			      "or --keep MANIFEST:KEYFILE", arg);
	/* An unreadable kept manifest stops gc: nothing is deleted. */
	load_manifest(path, kf, key_flags, &m, &hdr, &len);
	for (i = 0; i < m.chunk_count; i++) {
		if (sb_entry_is_zero(&m.chunks[i]))
			continue;
		if (k->n == k->cap) {
			k->cap = k->cap ? 2 * k->cap : 4096;
			q = realloc(k->addr, k->cap * sizeof(*q));
			if (!q)
				die(EXIT_FAIL, ENOMEM, NULL, "cannot read %s",
				    path);
			k->addr = q;
		}
		memcpy(k->addr[k->n++], m.chunks[i].addr, SNAPBLK_ADDR_LEN);
	}
	sb_manifest_free(&m);
}

/* One gc pass over the store: what it found, and what it did. */
struct gc_run {
	const struct keep_set *keep;
	bool remove, verbose, json;
	const char *store;
	uint64_t chunks, kept, garbage, garbage_bytes, tmp, tmp_bytes, other;
	int err;		/* the last unlink error, or 0 */
};

static bool chunk_name(const char *fan, const char *name, uint8_t *addr)
{
	size_t i;

	if (strlen(name) != 2 * SNAPBLK_ADDR_LEN || strncmp(name, fan, 2))
		return false;
	for (i = 0; i < 2 * SNAPBLK_ADDR_LEN; i++)
		if (!((name[i] >= '0' && name[i] <= '9') ||
		      (name[i] >= 'a' && name[i] <= 'f')))
			return false;
	return !sb_unhex(name, addr, SNAPBLK_ADDR_LEN);
}

static int gc_one(void *arg, int fanfd, const char *fan, const char *name,
		  const struct stat *s)
{
	struct gc_run *g = arg;
	uint8_t addr[SNAPBLK_ADDR_LEN];
	bool tmp = false;

	if (!strncmp(name, ".tmp-", 5) && S_ISREG(s->st_mode)) {
		if (!sb_tmp_is_stale(name, s->st_mtime, time(NULL)))
			return 0;	/* a running build's */
		tmp = true;
		g->tmp++;
		g->tmp_bytes += s->st_size;
	} else if (!S_ISREG(s->st_mode) || !chunk_name(fan, name, addr)) {
		g->other++;
		return 0;
	} else {
		g->chunks++;
		if (g->keep->n && bsearch(addr, g->keep->addr, g->keep->n,
					  SNAPBLK_ADDR_LEN, addr_cmp)) {
			g->kept++;
			return 0;
		}
		g->garbage++;
		g->garbage_bytes += s->st_size;
	}
	if (g->verbose && !g->json)
		printf("%s %s/%s/%s (%llu bytes%s)\n",
		       g->remove ? "deleted" : "would delete", g->store, fan,
		       name, (unsigned long long)s->st_size,
		       tmp ? ", stale temporary file" : "");
	if (g->remove && unlinkat(fanfd, name, 0) < 0 && errno != ENOENT)
		g->err = -errno;
	return 0;
}

static int cmd_gc(int argc, char **argv)
{
	enum { O_KEEP = 256, O_DELETE, O_JSON, O_RAW_KEY, O_KEEP_NOTHING };
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "keep", required_argument, NULL, O_KEEP },
		{ "key-file", required_argument, NULL, 'k' },
		{ "raw-key", no_argument, NULL, O_RAW_KEY },
		{ "delete", no_argument, NULL, O_DELETE },
		{ "keep-nothing", no_argument, NULL, O_KEEP_NOTHING },
		{ "json", no_argument, NULL, O_JSON },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *store = NULL, *key_file = NULL, **keeps;
	unsigned int key_flags = 0;
	bool keep_nothing = false;
	struct keep_set k = { 0 };
	struct gc_run g = { 0 };
	struct sb_store *st;
	char h1[32], h2[32];
	int opt, ret, nkeep = 0, i;

	keeps = calloc(argc, sizeof(*keeps));
	if (!keeps)
		die(EXIT_FAIL, ENOMEM, NULL, "cannot start gc");
	while ((opt = getopt_long(argc, argv, "s:k:vh", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			store = optarg;
			break;
		case O_KEEP:
			keeps[nkeep++] = optarg;
			break;
		case 'k':
			key_file = optarg;
			break;
		case O_RAW_KEY:
			key_flags |= SB_KEY_RAW;
			break;
		case O_DELETE:
			g.remove = true;
			break;
		case O_KEEP_NOTHING:
			keep_nothing = true;
			break;
		case O_JSON:
			g.json = true;
			break;
		case 'v':
			g.verbose = true;
			break;
		case 'h':
			fputs(gc_help, stdout);
			return EXIT_OK;
		default:
			cmd_usage_die("gc", "bad option");
		}
	}
	if (optind != argc)
		cmd_usage_die("gc", "unexpected argument '%s'", argv[optind]);
	if (!store)
		cmd_usage_die("gc", "--store is required");
	if (!nkeep && !keep_nothing)
		cmd_usage_die("gc", "give the manifests to keep (--keep); with "
			      "none every chunk would go: --keep-nothing "
			      "says that is meant");
	if (nkeep && keep_nothing)
		cmd_usage_die("gc", "--keep-nothing and --keep exclude each "
			      "other");

	/* Every kept manifest must open before anything is looked at. */
	for (i = 0; i < nkeep; i++)
		keep_manifest(&k, keeps[i], key_file, key_flags);
	if (k.n)
		qsort(k.addr, k.n, SNAPBLK_ADDR_LEN, addr_cmp);

	/* Any chunk size: gc only looks at names and sizes. */
	st = open_store(store, 0, g.remove);
	if (g.remove) {
		ret = sb_store_lock(st, true, false);
		if (ret == -EBUSY)
			die(EXIT_FAIL, 0, "wait for it to finish, then run gc "
			    "again", "a build is writing to store %s", store);
		if (ret)
			die(EXIT_FAIL, -ret, NULL, "cannot lock store %s",
			    store);
	}
	g.keep = &k;
	g.store = store;
	ret = sb_store_walk(st, gc_one, &g);
	if (ret)
		die(EXIT_FAIL, -ret, "check the store's permissions",
		    "cannot read store %s", store);
	if (g.remove && g.err)
		err_report(-g.err, "check the store's permissions",
			   "cannot delete some files in store %s", store);
	if (g.json) {
		printf("{\"store\":");
		json_print_string(store);
		printf(",\"deleted\":%s,\"kept_manifests\":%d,"
		       "\"chunks\":%llu,\"referenced\":%llu,"
		       "\"unreferenced\":%llu,\"unreferenced_bytes\":%llu,"
		       "\"stale_tmp\":%llu,\"stale_tmp_bytes\":%llu,"
		       "\"other\":%llu}\n", g.remove ? "true" : "false", nkeep,
		       (unsigned long long)g.chunks,
		       (unsigned long long)g.kept,
		       (unsigned long long)g.garbage,
		       (unsigned long long)g.garbage_bytes,
		       (unsigned long long)g.tmp,
		       (unsigned long long)g.tmp_bytes,
		       (unsigned long long)g.other);
	} else {
		sb_fmt_size(g.garbage_bytes, SB_SIZE_IEC, h1, sizeof(h1));
		sb_fmt_size(g.tmp_bytes, SB_SIZE_IEC, h2, sizeof(h2));
		printf("%s: %llu chunks, %llu referenced by %d kept "
		       "manifests\n", store, (unsigned long long)g.chunks,
		       (unsigned long long)g.kept, nkeep);
		printf("%s %llu unreferenced chunks (%s) and %llu stale "
		       "temporary files (%s)%s\n",
		       g.remove ? "freed:" : "would free:",
		       (unsigned long long)g.garbage, h1,
		       (unsigned long long)g.tmp, h2,
		       g.remove ? "" : "; give --delete to delete them");
		if (g.other)
			printf("left alone: %llu files that are not chunks\n",
			       (unsigned long long)g.other);
	}
	sb_store_close(st);
	free(k.addr);
	free(keeps);
	return g.remove && g.err ? EXIT_FAIL : EXIT_OK;
}

/* ------------------------------------------------------------ keygen */

static int cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint8_t key[SNAPBLK_TENANT_KEY_LEN];
	char text[2 * SNAPBLK_TENANT_KEY_LEN + 2];
	const char *out = NULL;
	bool force = false;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "o:fh", opts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			out = optarg;
			break;
		case 'f':
			force = true;
			break;
		case 'h':
			fputs(keygen_help, stdout);
			return EXIT_OK;
		default:
			cmd_usage_die("keygen", "bad option");
		}
	}
	if (optind != argc)
		cmd_usage_die("keygen", "unexpected argument '%s'", argv[optind]);
	if (!out)
		cmd_usage_die("keygen", "-o FILE is required");
	if (RAND_priv_bytes(key, sizeof(key)) != 1)
		die(EXIT_FAIL, 0, "check the OpenSSL installation and the "
		    "kernel's random source", "cannot generate a random key");
	sb_format_tenant_key(key, text);
	ret = sb_write_file_atomic(out, text, strlen(text), 0600, !force);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(text, sizeof(text));
	if (ret == -EEXIST)
		die(EXIT_FAIL, -ret, "choose another name, or give --force to "
		    "replace it (manifests sealed with the old key can then "
		    "no longer be opened)", "cannot write tenant key %s", out);
	if (ret)
		die(EXIT_FAIL, -ret, "check the path and its directory's "
		    "permissions", "cannot write tenant key %s", out);
	fprintf(stderr, "%s: wrote a new tenant key to %s; keep it secret\n",
		prog_name, out);
	return EXIT_OK;
}

/* -------------------------------------------------------------- main */

struct command {
	const char *name;
	const char *help;
	int (*fn)(int argc, char **argv);
};

static const struct command commands[] = {
	{ "create", create_help, cmd_create },
	{ "verify", verify_help, cmd_verify },
	{ "inspect", inspect_help, cmd_inspect },
	{ "keygen", keygen_help, cmd_keygen },
	{ "gc", gc_help, cmd_gc },
};

static const struct command *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct command *c;

	prog_name = "snapblk-build";
	if (argc < 2) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("snapblk-build %s (manifest format %u)\n",
		       SNAPBLK_TOOLS_VERSION, SNAPBLK_MANIFEST_VERSION);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "help")) {
		if (argc < 3) {
			fputs(usage_text, stdout);
			return EXIT_OK;
		}
		c = find_command(argv[2]);
		if (!c)
			die(EXIT_USAGE, 0, "run 'snapblk-build help' for the "
			    "list", "unknown command '%s'", argv[2]);
		fputs(c->help, stdout);
		return EXIT_OK;
	}
	c = find_command(argv[1]);
	if (!c)
		die(EXIT_USAGE, 0, "run 'snapblk-build help' for the list of "
		    "commands", "unknown command '%s'", argv[1]);
	/* Each command parses its own options; argv[0] is its name. */
	return c->fn(argc - 1, argv + 1);
}
