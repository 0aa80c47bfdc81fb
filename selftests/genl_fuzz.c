// SPDX-License-Identifier: GPL-2.0
/*
 * A fuzzer for the "snapblk" generic netlink family, over raw netlink
 * sockets.  SNAPBLK_FUZZ_MESSAGES (default 100000) messages are built
 * from valid templates of every command (and events and unknown command
 * numbers sent as commands), then mutated: attributes of the wrong type
 * and length (0, 1, 3, 7, 9 ... huge), nested garbage, duplicates,
 * NLA_F_NESTED and byte-order bits, truncated nlattr headers, bad
 * nlmsg_len, NLM_F_DUMP on commands without a dump, random header fields,
 * names with non-ASCII bytes, image sizes 0, 2^64-1, 2^64-4096, chunk
 * sizes that are not powers of two, table descriptors that are a huge
 * sparse memfd, a pipe, a directory, /dev/zero, a socket, a closed or a
 * write-only descriptor.  A tenth of the messages come from two
 * unprivileged callers (nobody, and root without CAP_NET_ADMIN) at the
 * same time: every command that changes state must get EPERM.
 * SNAPBLK_FUZZ_SEED replays a run (the seed is printed).
 *
 * Afterwards every device the fuzzer made is removed, the family still
 * answers, a ZERO device reads zeros, a device of real chunks served by
 * an in-test fetch daemon reads back byte for byte, and the module
 * unloads.  The VM runner fails the run on any kernel warning.
 */
#include <grp.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <netlink/genl/genl.h>

#include "kselftest_harness.h"
#include "lib.h"
#include "genl.h"
#include "fetchlib.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define CHUNK		(64U << 10)
#define ZERO_ENTRIES	64		/* ZERO chunks in the good table */
#define HUGE_ENTRIES	(1U << 24)	/* SNAPBLK_MANIFEST_MAX_CHUNKS */
#define MAX_ATTRS	24
#define MSG_MAX		(192 << 10)	/* one message, serialized */
#define BATCH_MAX	(256 << 10)	/* one send() */
#define RCV_BUF		(256 << 10)
#define MAX_ERRNO	4096
/* Kernel-internal errnos (ERESTARTSYS, ENOTSUPP...) must never leak. */
#define FIRST_KERNEL_ERRNO 512
/* Longest fetch_timeout_ms (Documentation/netlink.md): one hour. */
#define FETCH_TIMEOUT_MS_MAX 3600000U

static int family;

/* ----------------------------------------------------------- sockets */

static int nl_socket(bool extack)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int fd, one = 1, size = RCV_BUF;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    NETLINK_GENERIC);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -errno;
	}
	if (extack)
		setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	return fd;
}

struct answers {
	uint64_t acks;			/* NLMSG_ERROR or NLMSG_DONE */
	uint64_t replies;		/* anything else */
	uint64_t overruns;		/* ENOBUFS: replies the kernel dropped */
	uint64_t by_errno[MAX_ERRNO];	/* acks by errno (0: success) */
	uint64_t kernel_errno;		/* errno >= FIRST_KERNEL_ERRNO */
	int last_kernel_errno;
	uint64_t ok_by_cmd[256];	/* successes, by command */
};

/* The command of each message sent, by sequence number, for the counts. */
static uint8_t cmd_of_seq[1 << 16];

/*
 * Read whatever is queued on @fd without waiting.  With @seq non-zero,
 * returns the errno (>= 0) of the ack or NLMSG_DONE of message @seq when
 * one was read, else -1.
 */
static int drain(int fd, struct answers *an, uint32_t seq)
{
	static __thread uint8_t buf[RCV_BUF];
	int found = -1;

	for (;;) {
		struct nlmsghdr *h;
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0) {
			if (errno == ENOBUFS) {
				an->overruns++;
				continue;
			}
			if (errno == EINTR)
				continue;
			return found;
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, n);
		     h = NLMSG_NEXT(h, n)) {
			int err = 0;

			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);

				if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
					continue;
				err = -e->error;
			} else if (h->nlmsg_type != NLMSG_DONE) {
				an->replies++;
				continue;
			}
			an->acks++;
			if (!err && h->nlmsg_type == NLMSG_ERROR)
				an->ok_by_cmd[cmd_of_seq[h->nlmsg_seq & 0xffff]]++;
			if (err < 0 || err >= MAX_ERRNO)
				err = MAX_ERRNO - 1;
			an->by_errno[err]++;
			if (err >= FIRST_KERNEL_ERRNO) {
				an->kernel_errno++;
				an->last_kernel_errno = err;
			}
			if (seq && h->nlmsg_seq == seq)
				found = err;
		}
	}
}

/* Wait up to @ms for the answer to @seq: its errno, or -1. */
static int wait_answer(int fd, struct answers *an, uint32_t seq, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	double end = sb_now() + ms / 1000.0;
	int err;

	for (;;) {
		err = drain(fd, an, seq);
		if (err >= 0)
			return err;
		if (sb_now() > end)
			return -1;
		poll(&p, 1, 20);
	}
}

/* ------------------------------------------------------------ messages */

struct attr {
	uint16_t type;			/* with NLA_F_* bits */
	uint32_t len;
	const uint8_t *data;
};

struct msg {
	uint16_t nltype, nlflags;
	uint8_t cmd, version;
	uint16_t reserved;
	int nattrs;
	struct attr a[MAX_ATTRS];
};

/* Table descriptors a CREATE may name. */
enum {
	FD_GOOD,	/* memfd, ZERO_ENTRIES ZERO chunks */
	FD_MIXED,	/* memfd, random valid entries */
	FD_BADENTRY,	/* memfd with a malformed entry */
	FD_HUGE,	/* sparse memfd of HUGE_ENTRIES zero entries */
	FD_PIPE,	/* pipe, writer closed */
	FD_DIR,
	FD_DEVZERO,
	FD_SOCKET,	/* socketpair, peer closed */
	FD_CLOSED,
	FD_WRONLY,
	FD_OPATH,
	FD_EVENTFD,	/* non-blocking */
	FD_FETCH,	/* /dev/snapblk-fetch, non-blocking */
	NR_FDS
};

struct fuzzer {
	struct sb_rng rng;
	bool priv;			/* root: every mutation; else well-formed headers */
	const char *prefix;		/* device names: "fz" (root), "fzu" */
	int fds[NR_FDS];
	uint8_t arena[MSG_MAX * 2];
	size_t used;
	uint32_t seq;
	int triggers_left;		/* CLONE_TRIGGERs that may go through */
	uint64_t sent, batches;
	uint64_t by_cmd[256];
};

static uint8_t *arena(struct fuzzer *f, size_t len)
{
	uint8_t *p;

	if (f->used + len > sizeof(f->arena))
		return NULL;
	p = f->arena + f->used;
	f->used += len;
	return p;
}

static void put(struct fuzzer *f, struct msg *m, uint16_t type,
		const void *data, uint32_t len)
{
	uint8_t *p;

	if (m->nattrs >= MAX_ATTRS || len > 65535 - NLA_HDRLEN)
		return;
	p = arena(f, len);
	if (!p)
		return;
	memcpy(p, data, len);
	m->a[m->nattrs].type = type;
	m->a[m->nattrs].len = len;
	m->a[m->nattrs].data = p;
	m->nattrs++;
}

static void put_u32(struct fuzzer *f, struct msg *m, uint16_t t, uint32_t v)
{
	put(f, m, t, &v, sizeof(v));
}

static void put_u64(struct fuzzer *f, struct msg *m, uint16_t t, uint64_t v)
{
	put(f, m, t, &v, sizeof(v));
}

static uint32_t pick(struct fuzzer *f, uint32_t n)
{
	return sb_rng_below(&f->rng, n);
}

static bool chance(struct fuzzer *f, uint32_t percent)
{
	return pick(f, 100) < percent;
}

static void put_random(struct fuzzer *f, struct msg *m, uint16_t type,
		       uint32_t len)
{
	uint8_t buf[65536];

	sb_rng_fill(&f->rng, buf, len);
	put(f, m, type, buf, len);
}

/* A length worth trying for an attribute: around the sizes of the types. */
static uint32_t odd_length(struct fuzzer *f)
{
	static const uint32_t lens[] = {
		0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65,
	};

	if (chance(f, 3))
		return 1000 + pick(f, 65535 - NLA_HDRLEN - 1000);	/* huge */
	return lens[pick(f, ARRAY_SIZE(lens))];
}

static const char name_chars[] =
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:@+-";

static void put_name(struct fuzzer *f, struct msg *m)
{
	char s[80];
	uint32_t i, n;

	switch (pick(f, 20)) {
	case 0 ... 11:	/* a small pool, so that names collide and devices go */
		snprintf(s, sizeof(s), "%s%u", f->prefix, pick(f, 16));
		break;
	case 12 ... 13:	/* a valid name from the whole alphabet, bounded set */
		snprintf(s, sizeof(s), "%s%c", f->prefix,
			 name_chars[pick(f, sizeof(name_chars) - 1)]);
		break;
	case 14:	/* bytes of every value, NUL-terminated */
		n = 1 + pick(f, 40);
		for (i = 0; i < n; i++)
			s[i] = 1 + pick(f, 255);
		s[n] = '\0';
		break;
	case 15: {	/* Latin-1, UTF-8, control characters */
		static const char *const odd[] = {
			"fz\xe9", "fz\xc3\xa9", "\xf0\x9f\x92\xa9", "fz\x7f",
			"fz\n", "fz/x", "..", ".fz", "-fz", "fz x", "fz\x01",
			"\xff\xfe", "fz%s%n", "fz\\",
		};
		snprintf(s, sizeof(s), "%s", odd[pick(f, ARRAY_SIZE(odd))]);
		break;
	}
	case 16:	/* longest allowed, one too long */
		n = SNAPBLK_NAME_LEN - 1 + pick(f, 3);
		memset(s, 'n', n);
		memcpy(s, f->prefix, strlen(f->prefix));
		s[n] = '\0';
		break;
	case 17:	/* no terminating NUL */
		snprintf(s, sizeof(s), "%s%u", f->prefix, pick(f, 16));
		put(f, m, SNAPBLK_ATTR_NAME, s, strlen(s));
		return;
	case 18:	/* empty */
		put(f, m, SNAPBLK_ATTR_NAME, "", chance(f, 50));
		return;
	default:	/* embedded NUL */
		snprintf(s, sizeof(s), "%s%u", f->prefix, pick(f, 16));
		n = strlen(s);
		s[n] = '\0';
		memcpy(s + n + 1, "tail", 5);
		put(f, m, SNAPBLK_ATTR_NAME, s, n + 6);
		return;
	}
	put(f, m, SNAPBLK_ATTR_NAME, s, strlen(s) + 1);
}

static uint32_t chunk_size(struct fuzzer *f)
{
	static const uint32_t odd[] = {
		0, 1, 4096, 65535, 65537, 3 * CHUNK, 5 * CHUNK, (4U << 20) - 1,
		(4U << 20) + 1, 8U << 20, 1U << 31, UINT32_MAX, 32768,
	};

	if (chance(f, 80))
		return CHUNK << (chance(f, 60) ? 0 : pick(f, 7));
	if (chance(f, 80))
		return odd[pick(f, ARRAY_SIZE(odd))];
	return sb_rng_next(&f->rng);
}

static uint64_t image_size(struct fuzzer *f, uint32_t cs, int table)
{
	static const uint64_t odd[] = {
		0, 1, 511, 4095, 4096, UINT64_MAX, UINT64_MAX - 4095,
		UINT64_MAX - 65535, 1ULL << 63, (1ULL << 63) + 1,
		(1ULL << 32), (1ULL << 32) - 1,
	};
	uint64_t c = cs ? cs : CHUNK;

	if (table == FD_HUGE && chance(f, 90))	/* table up to 1.2 MB */
		return c * (1 + pick(f, 1U << 14)) - pick(f, 2) * pick(f, c);
	if (chance(f, 70))
		return c * (1 + pick(f, ZERO_ENTRIES + 4)) -
		       (chance(f, 20) ? pick(f, c) : 0);
	if (chance(f, 60)) {
		uint64_t v = odd[pick(f, ARRAY_SIZE(odd))];

		return chance(f, 50) ? v : UINT64_MAX - c * pick(f, 3);
	}
	if (chance(f, 50))	/* around the 2^24 chunk limit */
		return c * (HUGE_ENTRIES - 1 + pick(f, 3)) + pick(f, 2);
	return sb_rng_next(&f->rng);
}

/* The valid request of @m->cmd (for events and unknown ones: any). */
static void template(struct fuzzer *f, struct msg *m)
{
	uint8_t cmd = m->cmd;
	uint8_t id[SNAPBLK_IMAGE_ID_LEN];
	uint32_t cs;
	int t;

	if (cmd > SNAPBLK_CMD_MAX || cmd == 0 || cmd == SNAPBLK_EVENT_DEVICE_ADDED ||
	    cmd == SNAPBLK_EVENT_DEVICE_REMOVED ||
	    cmd == SNAPBLK_EVENT_CHUNK_ERROR || cmd == SNAPBLK_EVENT_CLONE) {
		static const uint8_t real[] = {
			SNAPBLK_CMD_CREATE, SNAPBLK_CMD_REMOVE,
			SNAPBLK_CMD_STATUS, SNAPBLK_CMD_CLONE_TRIGGER,
		};
		cmd = real[pick(f, ARRAY_SIZE(real))];
	}
	switch (cmd) {
	case SNAPBLK_CMD_CREATE:
		cs = chunk_size(f);
		t = chance(f, 55) ? FD_GOOD : (int)pick(f, NR_FDS);
		put_name(f, m);
		put_u64(f, m, SNAPBLK_ATTR_IMAGE_SIZE, image_size(f, cs, t));
		put_u32(f, m, SNAPBLK_ATTR_CHUNK_SIZE, cs);
		sb_rng_fill(&f->rng, id, sizeof(id));
		put(f, m, SNAPBLK_ATTR_IMAGE_ID, id, sizeof(id));
		put_u32(f, m, SNAPBLK_ATTR_TABLE_FD,
			t == FD_CLOSED && chance(f, 50) ? 1000 + pick(f, 1000) :
			(uint32_t)f->fds[t]);
		if (chance(f, 60)) {
			static const uint32_t to[] = {
				0, 1, 1000, 30000, FETCH_TIMEOUT_MS_MAX,
				FETCH_TIMEOUT_MS_MAX + 1, UINT32_MAX,
			};
			put_u32(f, m, SNAPBLK_ATTR_FETCH_TIMEOUT_MS,
				to[pick(f, ARRAY_SIZE(to))]);
		}
		break;
	case SNAPBLK_CMD_REMOVE:
		put_name(f, m);
		break;
	case SNAPBLK_CMD_STATUS:
		if (chance(f, 85))
			put_name(f, m);
		break;
	case SNAPBLK_CMD_CLONE_TRIGGER:
		if (chance(f, 50))
			put_random(f, m, SNAPBLK_ATTR_GENERATION_ID,
				   SNAPBLK_GENERATION_ID_LEN);
		break;
	default:	/* GET_INFO, CLONE_STATUS: no attributes */
		break;
	}
}

/* Nested garbage: a run of attributes, some of them malformed. */
static void put_nest(struct fuzzer *f, struct msg *m, uint16_t type)
{
	uint8_t buf[512];
	uint32_t len = 0, n = 1 + pick(f, 6), i;

	for (i = 0; i < n && len + 64 <= sizeof(buf); i++) {
		struct nlattr *a = (struct nlattr *)(buf + len);
		uint32_t plen = pick(f, 5) == 0 ? pick(f, 40) : 8;

		a->nla_type = pick(f, 12) | (chance(f, 10) ? NLA_F_NESTED : 0);
		a->nla_len = NLA_HDRLEN + plen;
		sb_rng_fill(&f->rng, buf + len + NLA_HDRLEN, plen);
		if (chance(f, 10))		/* a lying length */
			a->nla_len = pick(f, 600);
		len += NLA_ALIGN(NLA_HDRLEN + plen);
	}
	if (chance(f, 20))			/* a torn header at the end */
		len += 1 + pick(f, 3);
	put(f, m, type, buf, len);
}

static void mutate(struct fuzzer *f, struct msg *m)
{
	struct attr tmp;
	int i = m->nattrs ? (int)pick(f, m->nattrs) : -1;
	uint16_t type = pick(f, SNAPBLK_ATTR_MAX + 3);

	switch (pick(f, 13)) {
	case 0:		/* wrong length */
		if (i >= 0) {
			uint32_t len = odd_length(f);
			uint16_t t = m->a[i].type;

			m->a[i] = m->a[--m->nattrs];
			put_random(f, m, t, len);
		}
		break;
	case 1:		/* wrong type */
		if (i >= 0)
			m->a[i].type = chance(f, 80) ? type :
				       pick(f, 0x4000);
		break;
	case 2:
		if (i >= 0)
			m->a[i].type |= NLA_F_NESTED;
		break;
	case 3:
		if (i >= 0)
			m->a[i].type |= NLA_F_NET_BYTEORDER;
		break;
	case 4:		/* nested garbage in any attribute */
		put_nest(f, m, type | (chance(f, 50) ? NLA_F_NESTED : 0));
		break;
	case 5:		/* duplicate */
		if (i >= 0 && m->nattrs < MAX_ATTRS)
			m->a[m->nattrs++] = m->a[i];
		break;
	case 6:		/* delete */
		if (i >= 0)
			m->a[i] = m->a[--m->nattrs];
		break;
	case 7:		/* another valid-looking attribute */
		switch (type) {
		case SNAPBLK_ATTR_NAME:
			put_name(f, m);
			break;
		case SNAPBLK_ATTR_IMAGE_SIZE:
		case SNAPBLK_ATTR_CHUNK:
		case SNAPBLK_ATTR_GENERATION:
			put_u64(f, m, type, sb_rng_next(&f->rng));
			break;
		case SNAPBLK_ATTR_IMAGE_ID:
			put_random(f, m, type, SNAPBLK_IMAGE_ID_LEN);
			break;
		case SNAPBLK_ATTR_GENERATION_ID:
			put_random(f, m, type, SNAPBLK_GENERATION_ID_LEN);
			break;
		case SNAPBLK_ATTR_ADDR:
			put_random(f, m, type, SNAPBLK_ADDR_LEN);
			break;
		case SNAPBLK_ATTR_STATS:
		case SNAPBLK_ATTR_CLONE_STATS:
			put_nest(f, m, type | NLA_F_NESTED);
			break;
		case SNAPBLK_ATTR_TABLE_FD:
			put_u32(f, m, type, f->fds[pick(f, NR_FDS)]);
			break;
		default:
			put_u32(f, m, type, chance(f, 50) ?
				(uint32_t)sb_rng_next(&f->rng) : pick(f, 4));
			break;
		}
		break;
	case 8:		/* edge values of the attribute's own size */
		if (i >= 0 && (m->a[i].len == 4 || m->a[i].len == 8)) {
			static const uint64_t edge[] = {
				0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff,
				0x100000000ULL, UINT64_MAX, UINT64_MAX - 4095,
				1ULL << 63, 65536, 65537, 3 * 65536,
			};
			uint64_t v = edge[pick(f, ARRAY_SIZE(edge))];
			uint16_t t = m->a[i].type;
			uint32_t len = chance(f, 80) ? m->a[i].len : 8;

			m->a[i] = m->a[--m->nattrs];
			put(f, m, t, &v, len);
		}
		break;
	case 9:		/* attributes only the kernel sends */
		if (chance(f, 20))
			put_u32(f, m, SNAPBLK_ATTR_REFETCH, pick(f, 2));
		else
			put_u64(f, m, SNAPBLK_ATTR_STATS + pick(f, 4), 0);
		break;
	case 10:	/* shuffle */
		if (m->nattrs > 1) {
			int j = pick(f, m->nattrs);

			tmp = m->a[i];
			m->a[i] = m->a[j];
			m->a[j] = tmp;
		}
		break;
	case 11:	/* type 0 and the largest types */
		put_u32(f, m, chance(f, 50) ? 0 : 0x3fff, 1);
		break;
	default:	/* a whole new random attribute */
		put_random(f, m, type, odd_length(f));
		break;
	}
}

/* Build one message; the header fields may be mutated (root only). */
static void make_msg(struct fuzzer *f, struct msg *m)
{
	static const uint8_t cmds[] = {
		SNAPBLK_CMD_GET_INFO, SNAPBLK_CMD_CREATE, SNAPBLK_CMD_CREATE,
		SNAPBLK_CMD_CREATE, SNAPBLK_CMD_CREATE, SNAPBLK_CMD_REMOVE,
		SNAPBLK_CMD_REMOVE, SNAPBLK_CMD_STATUS, SNAPBLK_CMD_STATUS,
		SNAPBLK_CMD_CLONE_STATUS, SNAPBLK_CMD_CLONE_TRIGGER,
	};
	int nmut;

	memset(m, 0, sizeof(*m));
	f->used = 0;
	if (chance(f, 88))
		m->cmd = cmds[pick(f, ARRAY_SIZE(cmds))];
	else if (chance(f, 60))	/* events and UNSPEC sent as commands */
		m->cmd = (uint8_t[]){ 0, 5, 6, 7, 10 }[pick(f, 5)];
	else
		m->cmd = SNAPBLK_CMD_MAX + 1 + pick(f, 255 - SNAPBLK_CMD_MAX);
	m->nltype = family;
	m->nlflags = NLM_F_REQUEST | NLM_F_ACK;
	m->version = SNAPBLK_GENL_VERSION;
	if (chance(f, 10) || (m->cmd == SNAPBLK_CMD_STATUS && chance(f, 20)))
		m->nlflags |= NLM_F_DUMP;
	if (chance(f, 5))
		m->version = pick(f, 256);
	if (chance(f, 3))
		m->reserved = 1 + pick(f, 0xffff);
	if (f->priv) {
		if (chance(f, 2))
			m->nlflags &= ~NLM_F_REQUEST;
		if (chance(f, 5))
			m->nlflags &= ~NLM_F_ACK;
		if (chance(f, 3))
			m->nlflags |= pick(f, 0x10000);
		if (chance(f, 1))
			m->nltype = (uint16_t[]){ NLMSG_NOOP, NLMSG_ERROR,
						  NLMSG_DONE, NLMSG_OVERRUN,
						  0x7ff0 }[pick(f, 5)];
	}
	template(f, m);
	nmut = (int[]){ 0, 1, 1, 1, 2, 2, 3, 5 }[pick(f, 8)];
	while (nmut--)
		mutate(f, m);
	/*
	 * Each clone logs a line: past its budget, a trigger carries an
	 * attribute the policy refuses, so that the kernel log (128 KiB,
	 * which the VM runner reads whole) does not wrap.
	 */
	if (f->priv && m->cmd == SNAPBLK_CMD_CLONE_TRIGGER &&
	    f->triggers_left-- <= 0)
		put_u64(f, m, SNAPBLK_ATTR_CHUNK, 0);
	f->by_cmd[m->cmd]++;
}

/*
 * Serialize @m at @out (room for MSG_MAX bytes); returns its length.
 * For root, the nlattr and nlmsg lengths may lie.
 */
static uint32_t serialize(struct fuzzer *f, const struct msg *m, uint8_t *out)
{
	struct nlmsghdr *h = (struct nlmsghdr *)out;
	struct genlmsghdr *g = NLMSG_DATA(h);
	uint32_t len = NLMSG_HDRLEN + GENL_HDRLEN;
	int i;

	memset(out, 0, len);
	h->nlmsg_type = m->nltype;
	h->nlmsg_flags = m->nlflags;
	h->nlmsg_seq = ++f->seq;
	/* Acked without being run: no NLM_F_REQUEST, or a control type. */
	cmd_of_seq[f->seq & 0xffff] = (m->nlflags & NLM_F_REQUEST) &&
				      m->nltype == family ? m->cmd : 0;
	g->cmd = m->cmd;
	g->version = m->version;
	g->reserved = m->reserved;
	for (i = 0; i < m->nattrs; i++) {
		struct nlattr *a = (struct nlattr *)(out + len);
		uint32_t alen = NLA_ALIGN(NLA_HDRLEN + m->a[i].len);

		if (len + alen > MSG_MAX - 8)
			break;
		a->nla_type = m->a[i].type;
		a->nla_len = NLA_HDRLEN + m->a[i].len;
		memcpy(a + 1, m->a[i].data, m->a[i].len);
		memset(out + len + NLA_HDRLEN + m->a[i].len, 0,
		       alen - NLA_HDRLEN - m->a[i].len);
		if (f->priv && chance(f, 2))	/* a lying nla_len */
			a->nla_len = chance(f, 50) ? pick(f, NLA_HDRLEN) :
				     a->nla_len + 1 + pick(f, 64);
		len += alen;
	}
	if (f->priv && chance(f, 3)) {		/* a torn nlattr header */
		uint32_t n = 1 + pick(f, 3);

		sb_rng_fill(&f->rng, out + len, n);
		len += n;
	}
	h->nlmsg_len = len;
	if (f->priv && chance(f, 3)) {		/* a lying nlmsg_len */
		switch (pick(f, 4)) {
		case 0:
			h->nlmsg_len = pick(f, NLMSG_HDRLEN + GENL_HDRLEN);
			break;
		case 1:
			h->nlmsg_len = len - pick(f, len - NLMSG_HDRLEN + 1);
			break;
		case 2:
			h->nlmsg_len = len + 1 + pick(f, 64);
			break;
		default:
			h->nlmsg_len = sb_rng_next(&f->rng);
			break;
		}
	}
	return len;
}

/* --------------------------------------------------------- privileges */

static int drop_to_nobody(void)
{
	if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
	    setresuid(65534, 65534, 65534))
		return -errno;
	return 0;
}

/* The capability sets of this process: get (@set false) or set them. */
static int caps(struct __user_cap_data_struct d[2], bool set)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};

	return syscall(set ? SYS_capset : SYS_capget, &h, d) ? -errno : 0;
}

/* Root without @drop (a mask of CAP_* bits below 32) in any set. */
static int drop_caps(uint32_t drop)
{
	struct __user_cap_data_struct d[2];
	int ret = caps(d, false);

	if (ret)
		return ret;
	d[0].effective &= ~drop;
	d[0].permitted &= ~drop;
	d[0].inheritable &= ~drop;
	return caps(d, true);
}

static bool has_cap(int cap)
{
	struct __user_cap_data_struct d[2];

	if (caps(d, false))
		return true;
	return d[cap / 32].effective & (1U << (cap % 32));
}

static bool mutating(uint8_t cmd)
{
	return cmd == SNAPBLK_CMD_CREATE || cmd == SNAPBLK_CMD_REMOVE ||
	       cmd == SNAPBLK_CMD_CLONE_TRIGGER;
}

/*
 * An unprivileged caller: @n well-formed-header messages, one at a time,
 * each answer checked.  Every command that changes state must be refused:
 * EPERM, unless the genetlink core refused it first (NLM_F_DUMP on a
 * command without a dump: EOPNOTSUPP; a reserved field: EINVAL).  Returns
 * the number of violations.
 */
static int unprivileged_run(struct fuzzer *f, uint64_t n, const char *who)
{
	static uint8_t buf[MSG_MAX];
	struct answers *an = calloc(1, sizeof(*an));
	uint64_t i, noanswer = 0, eperm = 0;
	int fd, bad = 0, err;
	struct msg m;

	fd = nl_socket(true);
	if (fd < 0 || !an) {
		printf("# %s: no netlink socket: %s\n", who, strerror(-fd));
		return 1;
	}
	for (i = 0; i < n; i++) {
		uint32_t len;

		make_msg(f, &m);
		len = serialize(f, &m, buf);
		if (send(fd, buf, len, 0) < 0 && errno != ENOBUFS) {
			printf("# %s: send: %s\n", who, strerror(errno));
			bad++;
			break;
		}
		err = wait_answer(fd, an, f->seq, 5000);
		if (err < 0) {
			noanswer++;
			continue;
		}
		if (!mutating(m.cmd))
			continue;
		eperm += err == EPERM;
		if (err == EPERM || err == EOPNOTSUPP || err == EINVAL) {
			bool dump = (m.nlflags & NLM_F_DUMP) == NLM_F_DUMP;
			bool reserved = m.cmd > SNAPBLK_CMD_STATUS && m.reserved;

			if (err == EPERM || dump || reserved)
				continue;
		}
		if (bad++ < 5)
			printf("# %s: command %u (flags %#x, %d attributes) answered %d (%s), not EPERM\n",
			       who, m.cmd, m.nlflags, m.nattrs, err,
			       strerror(err));
	}
	if (noanswer > n / 100) {
		printf("# %s: %llu of %llu messages got no answer\n", who,
		       (unsigned long long)noanswer, (unsigned long long)n);
		bad++;
	}
	printf("# %s: %llu messages, %llu mutating commands refused with EPERM, %llu unanswered\n",
	       who, (unsigned long long)n, (unsigned long long)eperm,
	       (unsigned long long)noanswer);
	close(fd);
	free(an);
	return bad;
}

/* ------------------------------------------------------------ fixture */

static int open_fds(int fds[NR_FDS])
{
	struct snapblk_chunk_entry e[ZERO_ENTRIES];
	struct sb_rng r;
	int p[2], sp[2], i;

	sb_rng_seed(&r, 42);
	memset(e, 0, sizeof(e));
	for (i = 0; i < ZERO_ENTRIES; i++)
		e[i].flags = SNAPBLK_CHUNK_F_ZERO;
	fds[FD_GOOD] = memfd_create("good", MFD_CLOEXEC);
	if (write(fds[FD_GOOD], e, sizeof(e)) != sizeof(e))
		return -EIO;
	for (i = 0; i < ZERO_ENTRIES; i++) {
		sb_rng_fill(&r, &e[i], offsetof(struct snapblk_chunk_entry,
						 flags));
		e[i].flags = i % 3 ? 0 : SNAPBLK_CHUNK_F_ZERO;
		if (e[i].flags)
			memset(&e[i], 0, offsetof(struct snapblk_chunk_entry,
						  flags));
	}
	fds[FD_MIXED] = memfd_create("mixed", MFD_CLOEXEC);
	if (write(fds[FD_MIXED], e, sizeof(e)) != sizeof(e))
		return -EIO;
	e[ZERO_ENTRIES / 2].__reserved = 1;
	fds[FD_BADENTRY] = memfd_create("bad", MFD_CLOEXEC);
	if (write(fds[FD_BADENTRY], e, sizeof(e)) != sizeof(e))
		return -EIO;
	fds[FD_HUGE] = memfd_create("huge", MFD_CLOEXEC);
	if (ftruncate(fds[FD_HUGE], (off_t)HUGE_ENTRIES *
		      sizeof(struct snapblk_chunk_entry)))
		return -errno;
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	close(p[1]);
	fds[FD_PIPE] = p[0];
	fds[FD_DIR] = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fds[FD_DEVZERO] = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
		return -errno;
	close(sp[1]);
	fds[FD_SOCKET] = sp[0];
	fds[FD_CLOSED] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	close(fds[FD_CLOSED]);	/* a number that was open a moment ago */
	fds[FD_WRONLY] = open("/dev/null", O_WRONLY | O_CLOEXEC);
	fds[FD_OPATH] = open("/dev/null", O_PATH | O_CLOEXEC);
	fds[FD_EVENTFD] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	fds[FD_FETCH] = open("/dev/snapblk-fetch",
			     O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	for (i = 0; i < NR_FDS; i++)
		if (i != FD_CLOSED && fds[i] < 0)
			return -ENOENT;
	return 0;
}

static void close_fds(int fds[NR_FDS])
{
	int i;

	for (i = 0; i < NR_FDS; i++)
		if (i != FD_CLOSED && fds[i] >= 0)
			close(fds[i]);
	memset(fds, 0xff, sizeof(int) * NR_FDS);
}

FIXTURE(fuzz) {
	struct sb_nl nl;
	int fds[NR_FDS];
};

FIXTURE_SETUP(fuzz)
{
	memset(self->fds, 0xff, sizeof(self->fds));
	if (sb_module_loaded("snapblk"))
		ASSERT_EQ(0, sb_unload("snapblk"));
	ASSERT_EQ(0, sb_load(sb_ko_path(), NULL));
	ASSERT_EQ(0, sb_nl_open(&self->nl));
	family = self->nl.family;
	ASSERT_EQ(0, open_fds(self->fds));
}

FIXTURE_TEARDOWN(fuzz)
{
	close_fds(self->fds);
	sb_nl_close(&self->nl);
	sb_unload("snapblk");
}

static int collect_name(const struct sb_dev *dev, void *arg)
{
	char (*names)[SNAPBLK_NAME_LEN] = arg;
	int i;

	for (i = 0; i < 256 && names[i][0]; i++)
		;
	if (i < 256)
		snprintf(names[i], SNAPBLK_NAME_LEN, "%s", dev->name);
	return 0;
}

/* Remove every device; the number removed, or -errno. */
static int remove_all(struct sb_nl *nl)
{
	static char names[257][SNAPBLK_NAME_LEN];
	int i, ret, n = 0;

	memset(names, 0, sizeof(names));
	ret = sb_nl_status_all(nl, collect_name, names);
	if (ret < 0)
		return ret;
	for (i = 0; names[i][0]; i++) {
		ret = sb_nl_remove(nl, names[i]);
		if (ret)
			return ret;
		n++;
	}
	return n;
}

static int count_devices(struct sb_nl *nl)
{
	static char names[257][SNAPBLK_NAME_LEN];
	int i, ret;

	memset(names, 0, sizeof(names));
	ret = sb_nl_status_all(nl, collect_name, names);
	if (ret < 0)
		return ret;
	for (i = 0; names[i][0]; i++)
		;
	return i;
}

/* A raw CREATE: the errno of its answer (0: created), -1 for none. */
static int raw_create(const char *name, uint64_t size, uint32_t cs, int tfd,
		      double *took)
{
	struct fuzzer *f = calloc(1, sizeof(*f));
	static uint8_t buf[MSG_MAX];
	struct answers an = { 0 };
	uint8_t id[SNAPBLK_IMAGE_ID_LEN] = { 1 };
	struct msg m = {
		.nltype = family,
		.nlflags = NLM_F_REQUEST | NLM_F_ACK,
		.cmd = SNAPBLK_CMD_CREATE,
		.version = SNAPBLK_GENL_VERSION,
	};
	double t0 = sb_now();
	int fd = nl_socket(true), err;
	uint32_t len;

	if (fd < 0 || !f)
		return -1;
	f->priv = false;
	put(f, &m, SNAPBLK_ATTR_NAME, name, strlen(name) + 1);
	put_u64(f, &m, SNAPBLK_ATTR_IMAGE_SIZE, size);
	put_u32(f, &m, SNAPBLK_ATTR_CHUNK_SIZE, cs);
	put(f, &m, SNAPBLK_ATTR_IMAGE_ID, id, sizeof(id));
	put_u32(f, &m, SNAPBLK_ATTR_TABLE_FD, tfd);
	put_u32(f, &m, SNAPBLK_ATTR_FETCH_TIMEOUT_MS, 1000);
	len = serialize(f, &m, buf);
	err = send(fd, buf, len, 0) < 0 ? -1 :
	      wait_answer(fd, &an, f->seq, 10000);
	if (took)
		*took = sb_now() - t0;
	close(fd);
	free(f);
	return err;
}

/* ------------------------------------------------------------- tests */

/*
 * Sizes at the edges: 0, near 2^64 (where rounding up to whole chunks
 * wraps), one chunk past the 2^24 limit; chunk sizes that are not powers
 * of two or out of range; names that are not ASCII.  Each refused, none
 * leaves a device.
 */
TEST_F(fuzz, edge_values_are_refused)
{
	static const uint64_t sizes[] = {
		0, UINT64_MAX, UINT64_MAX - 4095, UINT64_MAX - CHUNK + 1,
		UINT64_MAX - CHUNK, (uint64_t)HUGE_ENTRIES * CHUNK + 1,
		1ULL << 63,
	};
	static const struct { uint32_t cs; int err; } chunks[] = {
		{ 3 * CHUNK, EINVAL }, { CHUNK + 4096, EINVAL },
		{ (4U << 20) - CHUNK, EINVAL }, { 4096, ERANGE },
		{ 8U << 20, ERANGE }, { 0, ERANGE }, { UINT32_MAX, ERANGE },
	};
	static const char *const names[] = {
		"fz\xe9", "\xc3\xa9t\xc3\xa9", "fz\xff", "fz\x7f", "fz\n",
		"fz/x", "..", ".fz", "-fz", "", "fz x",
	};
	struct sb_create c = {
		.image_size = ZERO_ENTRIES * (uint64_t)CHUNK,
		.chunk_size = CHUNK,
		.table_fd = self->fds[FD_GOOD],
	};
	uint8_t id[SNAPBLK_IMAGE_ID_LEN] = { 0 };
	struct sb_dev d;
	unsigned int i;
	int err;

	c.image_id = id;
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		c.name = "edge";
		c.image_size = sizes[i];
		err = sb_nl_create(&self->nl, &c, &d);
		if (err != -EINVAL)
			ksft_print_msg("image size %#llx: %d (%s), want EINVAL\n",
				       (unsigned long long)sizes[i], err,
				       strerror(-err));
		EXPECT_EQ(-EINVAL, err);
		if (!err)
			sb_nl_remove(&self->nl, "edge");
	}
	c.image_size = ZERO_ENTRIES * (uint64_t)CHUNK;
	for (i = 0; i < ARRAY_SIZE(chunks); i++) {
		c.chunk_size = chunks[i].cs;
		err = sb_nl_create(&self->nl, &c, &d);
		if (err != -chunks[i].err)
			ksft_print_msg("chunk size %u: %d (%s)\n", chunks[i].cs,
				       err, strerror(-err));
		EXPECT_EQ(-chunks[i].err, err);
		if (!err)
			sb_nl_remove(&self->nl, "edge");
	}
	c.chunk_size = CHUNK;
	for (i = 0; i < ARRAY_SIZE(names); i++) {
		c.name = names[i];
		err = sb_nl_create(&self->nl, &c, &d);
		if (err != -EINVAL)
			ksft_print_msg("name \"%s\": %d (%s), want EINVAL\n",
				       names[i], err, strerror(-err));
		EXPECT_EQ(-EINVAL, err);
		if (!err)
			sb_nl_remove(&self->nl, names[i]);
	}
	EXPECT_EQ(0, count_devices(&self->nl));
}

static void on_alarm(int sig)
{
	(void)sig;
}

/*
 * Table descriptors that are not a memfd: each is answered at once (a
 * read that could wait for ever would hold the caller, and with a
 * family lock every other user), refused (EBADF not open or not
 * readable, EINVAL not a regular file), and leaves no device.  A huge sparse memfd (2^24 entries, 1.2 GB: more than the
 * test VM's memory) fails with ENOMEM or works, without a kernel
 * warning (allocation failure reports count as warnings).
 */
TEST_F_TIMEOUT(fuzz, table_descriptors, 300)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	struct {
		const char *what;
		int fd;
		int want;	/* Documentation/netlink.md */
	} cases[16];
	int n = 0, i, err, p[2], sp[2], nlfd, pipe_case = -1;
	bool pipe_refused = false;
	uint8_t buf[64] = { 0 };
	double took;

	sigaction(SIGALRM, &sa, NULL);
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));	/* empty, writer open */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp));
	ASSERT_EQ(0, close(self->fds[FD_FETCH]));	/* a blocking one */
	self->fds[FD_FETCH] = open("/dev/snapblk-fetch", O_RDWR | O_CLOEXEC);
	ASSERT_GE(self->fds[FD_FETCH], 0);
	/* Our own netlink socket with a dump pending on it. */
	ASSERT_EQ(0, sb_nl_create(&self->nl, &(struct sb_create){
		.name = "fz-dump", .image_size = CHUNK, .chunk_size = CHUNK,
		.image_id = buf, .table_fd = self->fds[FD_GOOD] },
		&(struct sb_dev){ 0 }));
	nlfd = nl_socket(false);
	ASSERT_GE(nlfd, 0);
	{
		struct nlmsghdr *h = (struct nlmsghdr *)buf;
		struct genlmsghdr *g = NLMSG_DATA(h);

		h->nlmsg_len = NLMSG_HDRLEN + GENL_HDRLEN;
		h->nlmsg_type = family;
		h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
		g->cmd = SNAPBLK_CMD_STATUS;
		g->version = SNAPBLK_GENL_VERSION;
		ASSERT_EQ((ssize_t)h->nlmsg_len, send(nlfd, buf, h->nlmsg_len, 0));
	}
#define CASE(w, f, e) cases[n++] = (typeof(cases[0])){ w, f, e }
	CASE("closed descriptor", self->fds[FD_CLOSED], EBADF);
	CASE("descriptor number 1000000", 1000000, EBADF);
	CASE("write-only descriptor", self->fds[FD_WRONLY], EBADF);
	CASE("O_PATH descriptor", self->fds[FD_OPATH], EBADF);
	CASE("directory", self->fds[FD_DIR], EINVAL);
	CASE("/dev/zero", self->fds[FD_DEVZERO], EINVAL);
	CASE("pipe at end of file", self->fds[FD_PIPE], EINVAL);
	CASE("socket at end of file", self->fds[FD_SOCKET], EINVAL);
	pipe_case = n;
	CASE("empty pipe, writer open", p[0], EINVAL);
	CASE("empty socket, peer open", sp[0], EINVAL);
	CASE("blocking /dev/snapblk-fetch", self->fds[FD_FETCH], EINVAL);
	CASE("non-blocking eventfd", self->fds[FD_EVENTFD], EINVAL);
#undef CASE
	for (i = 0; i < n; i++) {
		alarm(3);	/* a read that waits is interrupted, and failed */
		err = raw_create("fz-fd", 4 * (uint64_t)CHUNK, CHUNK,
				 cases[i].fd, &took);
		alarm(0);
		ksft_print_msg("table fd %s: %s (%.2f s)\n", cases[i].what,
			       err < 0 ? "no answer" : strerror(err), took);
		EXPECT_LT(took, 2.5);
		EXPECT_LT(err, FIRST_KERNEL_ERRNO);
		EXPECT_EQ(cases[i].want, err);
		if (!err)
			sb_nl_remove(&self->nl, "fz-fd");
		if (i == pipe_case)
			pipe_refused = err > 0 && took < 2.5;
	}
	/*
	 * The same socket, which has a dump pending: reading it as the table
	 * would run the dump inside CREATE.  Only tried where the pipe was
	 * refused at once (else it could deadlock the genetlink lock).
	 */
	if (pipe_refused) {
		alarm(3);
		err = raw_create("fz-fd", 4 * (uint64_t)CHUNK, CHUNK, nlfd,
				 &took);
		alarm(0);
		ksft_print_msg("table fd a netlink socket with a dump pending: %s (%.2f s)\n",
			       err < 0 ? "no answer" : strerror(err), took);
		EXPECT_EQ(EINVAL, err);
		if (!err)
			sb_nl_remove(&self->nl, "fz-fd");
	} else {
		ksft_print_msg("not tried: a netlink socket with a dump pending as the table (the kernel waits on a pipe, so it could deadlock)\n");
		EXPECT_TRUE(pipe_refused);
	}
	close(nlfd);
	close(p[0]);
	close(p[1]);
	close(sp[0]);
	close(sp[1]);

	/* Huge tables from a sparse memfd: all entries zero (valid). */
	for (i = 0; i < 2; i++) {
		uint64_t entries = i ? HUGE_ENTRIES : HUGE_ENTRIES / 4;

		err = raw_create("fz-huge", entries * CHUNK, CHUNK,
				 self->fds[FD_HUGE], &took);
		ksft_print_msg("table of %llu entries (%llu MB): %s (%.1f s)\n",
			       (unsigned long long)entries,
			       (unsigned long long)(entries * 72 >> 20),
			       err < 0 ? "no answer" : err ? strerror(err) :
			       "created", took);
		EXPECT_TRUE(err == 0 || err == ENOMEM);
		if (!err)
			EXPECT_EQ(0, sb_nl_remove(&self->nl, "fz-huge"));
	}
	EXPECT_EQ(0, sb_nl_remove(&self->nl, "fz-dump"));
	EXPECT_EQ(0, count_devices(&self->nl));
}

/* The privileged commands from callers without the privilege. */
static int child_expect(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (!pid)
		_exit(fn(arg));
	if (waitpid(pid, &status, 0) != pid)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Exit status: 0 when every privileged command was refused with EPERM. */
static int try_privileged(int memfd, bool sys_admin_only)
{
	uint8_t id[SNAPBLK_IMAGE_ID_LEN] = { 0 };
	struct sb_create c = {
		.name = "fz-priv", .image_size = CHUNK, .chunk_size = CHUNK,
		.image_id = id, .table_fd = memfd,
	};
	struct sb_clone_status st;
	struct sb_info info;
	struct sb_nl nl;
	struct sb_dev d;
	uint64_t gen;
	int bad = 0;

	if (sb_nl_open(&nl))
		return 20;
	if (sb_nl_get_info(&nl, &info))
		bad |= 1;
	if (sb_nl_status(&nl, "fz-priv-keep", &d))
		bad |= 2;
	if (sb_nl_clone_status(&nl, &st))
		bad |= 4;
	if (sb_nl_clone_trigger(&nl, NULL, &gen) != -EPERM)
		bad |= 8;
	if (!sys_admin_only) {
		if (sb_nl_create(&nl, &c, &d) != -EPERM)
			bad |= 16;
		if (sb_nl_remove(&nl, "fz-priv-keep") != -EPERM)
			bad |= 32;
	}
	sb_nl_close(&nl);
	return bad;
}

static int as_nobody(void *arg)
{
	if (drop_to_nobody() || has_cap(CAP_NET_ADMIN))
		return 30;
	return try_privileged(*(int *)arg, false);
}

static int as_root_without_net_admin(void *arg)
{
	if (drop_caps(1U << CAP_NET_ADMIN | 1U << CAP_SYS_ADMIN) ||
	    has_cap(CAP_NET_ADMIN) || getuid())
		return 30;
	return try_privileged(*(int *)arg, false);
}

static int as_root_without_sys_admin(void *arg)
{
	if (drop_caps(1U << CAP_SYS_ADMIN) || has_cap(CAP_SYS_ADMIN))
		return 30;
	return try_privileged(*(int *)arg, true);
}

/* A netlink socket opened by nobody, passed to root over @arg's socket. */
static int open_as_nobody(void *arg)
{
	int sock = *(int *)arg, fd;
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = "s", .iov_len = 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	if (drop_to_nobody())
		return 30;
	fd = nl_socket(false);
	if (fd < 0)
		return 31;
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &mh, 0) == 1 ? 0 : 32;
}

TEST_F(fuzz, unprivileged_callers_get_eperm)
{
	uint8_t id[SNAPBLK_IMAGE_ID_LEN] = { 0 };
	struct sb_create c = {
		.name = "fz-priv-keep", .image_size = CHUNK,
		.chunk_size = CHUNK, .image_id = id,
		.table_fd = self->fds[FD_GOOD],
	};
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct sb_clone_status st0, st1;
	struct iovec iov;
	struct msghdr mh = { 0 };
	struct answers an = { 0 };
	struct fuzzer *f;
	struct sb_dev d;
	uint8_t buf[512];
	int sp[2], fd, err;
	struct msg m;

	ASSERT_EQ(0, sb_nl_create(&self->nl, &c, &d));
	ASSERT_EQ(0, sb_nl_clone_status(&self->nl, &st0));
	EXPECT_EQ(0, child_expect(as_nobody, &self->fds[FD_GOOD]));
	EXPECT_EQ(0, child_expect(as_root_without_net_admin,
				  &self->fds[FD_GOOD]));
	EXPECT_EQ(0, child_expect(as_root_without_sys_admin,
				  &self->fds[FD_GOOD]));

	/* Root sending through nobody's socket is not privileged either. */
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp));
	EXPECT_EQ(0, child_expect(open_as_nobody, &sp[1]));
	iov.iov_base = buf;
	iov.iov_len = sizeof(buf);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	ASSERT_EQ(1, recvmsg(sp[0], &mh, 0));
	memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(int));
	f = calloc(1, sizeof(*f));
	ASSERT_NE(NULL, f);
	memset(&m, 0, sizeof(m));
	m.nltype = family;
	m.nlflags = NLM_F_REQUEST | NLM_F_ACK;
	m.cmd = SNAPBLK_CMD_REMOVE;
	m.version = SNAPBLK_GENL_VERSION;
	put(f, &m, SNAPBLK_ATTR_NAME, "fz-priv-keep", 13);
	{
		uint8_t *out = malloc(MSG_MAX);
		uint32_t len = serialize(f, &m, out);

		ASSERT_EQ((ssize_t)len, send(fd, out, len, 0));
		free(out);
	}
	err = wait_answer(fd, &an, f->seq, 5000);
	EXPECT_EQ(EPERM, err);
	free(f);
	close(fd);
	close(sp[0]);
	close(sp[1]);

	EXPECT_EQ(0, sb_nl_status(&self->nl, "fz-priv-keep", &d));
	EXPECT_EQ(-ENOENT, sb_nl_status(&self->nl, "fz-priv", &d));
	ASSERT_EQ(0, sb_nl_clone_status(&self->nl, &st1));
	EXPECT_EQ(st0.generation, st1.generation);
	EXPECT_EQ(0, sb_nl_remove(&self->nl, "fz-priv-keep"));
}

/* Opens and closes whatever /dev/snapblkN exist, racing REMOVE. */
struct toucher {
	pthread_t thread;
	volatile int stop;
	uint64_t opens;
	struct sb_rng rng;
};

static void *toucher_main(void *arg)
{
	struct toucher *t = arg;
	char path[96], buf[64];
	uint64_t size;
	int fd, i;

	while (!t->stop) {
		i = sb_rng_below(&t->rng, 24);
		snprintf(path, sizeof(path), "/dev/snapblk%d", i);
		fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			t->opens++;
			ioctl(fd, BLKGETSIZE64, &size);
			usleep(sb_rng_below(&t->rng, 2000));
			close(fd);
		}
		snprintf(path, sizeof(path),
			 "/sys/block/snapblk%d/snapblk/%s", i,
			 sb_rng_below(&t->rng, 2) ? "name" : "resident_chunks");
		sb_read_file(path, buf, sizeof(buf));
		if (!sb_rng_below(&t->rng, 8)) {
			snprintf(path, sizeof(path),
				 "/sys/block/snapblk%d/snapblk/fetch_timeout_ms",
				 i);
			fd = open(path, O_WRONLY | O_CLOEXEC);
			if (fd >= 0) {
				snprintf(buf, sizeof(buf), "%u",
					 sb_rng_below(&t->rng, 4000000));
				if (write(fd, buf, strlen(buf)) < 0)
					errno = 0;
				close(fd);
			}
		}
		usleep(500);
	}
	return NULL;
}

/* Read the whole of /dev/snapblk@index with O_DIRECT, then buffered. */
static int read_device(uint32_t index, const struct sb_image *img,
		       uint64_t size)
{
	char path[64];
	uint8_t *buf;
	ssize_t n;
	int fd, ret = 0, pass;

	snprintf(path, sizeof(path), "/dev/snapblk%u", index);
	if (posix_memalign((void **)&buf, 4096, size))
		return -ENOMEM;
	for (pass = 0; pass < 2 && !ret; pass++) {
		fd = open(path, O_RDONLY | O_CLOEXEC | (pass ? 0 : O_DIRECT));
		if (fd < 0) {
			ret = -errno;
			break;
		}
		memset(buf, 0x5a, size);
		n = pread(fd, buf, size, 0);
		if (n != (ssize_t)size)
			ret = n < 0 ? -errno : -EIO;
		else if (img && sb_image_diff(img, 0, buf, size) >= 0)
			ret = -EBADMSG;
		else if (!img && !sb_is_zero(buf, size))
			ret = -EBADMSG;
		close(fd);
	}
	free(buf);
	return ret;
}

TEST_F_TIMEOUT(fuzz, random_messages, 3600)
{
	uint64_t total = sb_env_u64("SNAPBLK_FUZZ_MESSAGES", 100000);
	uint64_t seed = sb_seed_from_env("SNAPBLK_FUZZ_SEED");
	uint64_t unpriv = total / 20, root = total - 2 * unpriv, i, report;
	struct answers *an = calloc(1, sizeof(*an));
	struct fuzzer *f = calloc(1, sizeof(*f));
	uint8_t *batch = malloc(BATCH_MAX + MSG_MAX);
	struct toucher t = { 0 };
	struct sb_clone_status st;
	struct sb_image img;
	struct sb_fetcher fetcher;
	struct sb_create c;
	struct sb_dev d;
	struct sb_rng r;
	struct sb_info info;
	pid_t kids[2];
	int fds[2], k, status, removed;
	double t0, took;
	uint32_t blen;
	struct msg m;

	ASSERT_TRUE(an && f && batch);
	ksft_print_msg("seed %llu (SNAPBLK_FUZZ_SEED=%llu replays), %llu messages (SNAPBLK_FUZZ_MESSAGES)\n",
		       (unsigned long long)seed, (unsigned long long)seed,
		       (unsigned long long)total);
	memcpy(f->fds, self->fds, sizeof(f->fds));
	f->priv = true;
	f->prefix = "fz";
	f->triggers_left = 300;
	sb_rng_seed(&f->rng, seed);

	/* Two unprivileged callers alongside. */
	for (k = 0; k < 2; k++) {
		kids[k] = fork();
		ASSERT_GE(kids[k], 0);
		if (!kids[k]) {
			const char *who = k ? "root without CAP_NET_ADMIN" :
					      "nobody";

			if (k ? drop_caps(1U << CAP_NET_ADMIN |
					  1U << CAP_SYS_ADMIN) :
				drop_to_nobody())
				_exit(100);
			if (has_cap(CAP_NET_ADMIN))
				_exit(101);
			f->priv = false;
			f->prefix = "fzu";
			sb_rng_seed(&f->rng, seed + 1 + k);
			_exit(unprivileged_run(f, unpriv, who) ? 1 : 0);
		}
	}
	t.rng.s = seed ^ 0x5555;
	ASSERT_EQ(0, pthread_create(&t.thread, NULL, toucher_main, &t));

	fds[0] = nl_socket(false);
	fds[1] = nl_socket(true);
	ASSERT_GE(fds[0], 0);
	ASSERT_GE(fds[1], 0);
	t0 = sb_now();
	report = 20000;
	for (i = 0; i < root;) {
		uint32_t n = 1 + sb_rng_below(&f->rng, 8), j;
		int fd = fds[sb_rng_below(&f->rng, 2)];

		blen = 0;
		for (j = 0; j < n && i < root && blen < BATCH_MAX; j++, i++) {
			make_msg(f, &m);
			blen += NLMSG_ALIGN(serialize(f, &m, batch + blen));
		}
		f->sent += j;
		f->batches++;
		if (send(fd, batch, blen, 0) < 0 && errno != ENOBUFS &&
		    errno != EAGAIN)
			ksft_print_msg("send: %s\n", strerror(errno));
		drain(fds[0], an, 0);
		drain(fds[1], an, 0);
		if (i >= report) {
			ksft_print_msg("%llu messages, %.0f/s\n",
				       (unsigned long long)i,
				       i / (sb_now() - t0));
			report += 20000;
		}
	}
	took = sb_now() - t0;
	usleep(100000);
	drain(fds[0], an, 0);
	drain(fds[1], an, 0);
	for (k = 0; k < 2; k++) {
		ASSERT_EQ(kids[k], waitpid(kids[k], &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status)) {
			ksft_print_msg("unprivileged caller %d: status %#x\n",
				       k, status);
		}
	}
	t.stop = 1;
	pthread_join(t.thread, NULL);
	close(fds[0]);
	close(fds[1]);

	ksft_print_msg("root: %llu messages in %llu sends, %.1f s, %.0f messages/s total (with the unprivileged callers' %llu)\n",
		       (unsigned long long)f->sent,
		       (unsigned long long)f->batches, took,
		       (f->sent + 2 * unpriv) / (sb_now() - t0),
		       (unsigned long long)(2 * unpriv));
	ksft_print_msg("answers %llu, replies %llu, overruns %llu; %llu opens of fuzzed devices\n",
		       (unsigned long long)an->acks,
		       (unsigned long long)an->replies,
		       (unsigned long long)an->overruns,
		       (unsigned long long)t.opens);
	for (k = 0; k < MAX_ERRNO; k++)
		if (an->by_errno[k])
			ksft_print_msg("  errno %d (%s): %llu\n", k,
				       k ? strerror(k) : "ok",
				       (unsigned long long)an->by_errno[k]);
	ksft_print_msg("acked without being run (no NLM_F_REQUEST, or a control message type): %llu\n",
		       (unsigned long long)an->ok_by_cmd[0]);
	ksft_print_msg("succeeded: GET_INFO %llu, CREATE %llu, REMOVE %llu, STATUS %llu, CLONE_TRIGGER %llu, CLONE_STATUS %llu\n",
		       (unsigned long long)an->ok_by_cmd[SNAPBLK_CMD_GET_INFO],
		       (unsigned long long)an->ok_by_cmd[SNAPBLK_CMD_CREATE],
		       (unsigned long long)an->ok_by_cmd[SNAPBLK_CMD_REMOVE],
		       (unsigned long long)an->ok_by_cmd[SNAPBLK_CMD_STATUS],
		       (unsigned long long)an->ok_by_cmd[SNAPBLK_CMD_CLONE_TRIGGER],
		       (unsigned long long)an->ok_by_cmd[SNAPBLK_CMD_CLONE_STATUS]);
	EXPECT_EQ(0, an->kernel_errno) {
		ksft_print_msg("a kernel-internal errno %d reached userspace\n",
			       an->last_kernel_errno);
	}
	EXPECT_GT(an->by_errno[0], 0);		/* some commands worked */
	EXPECT_GT(an->acks, f->sent / 2);	/* the kernel kept answering */

	/* Every device the fuzzer made goes; the family still works. */
	close_fds(self->fds);
	removed = remove_all(&self->nl);
	EXPECT_GE(removed, 0);
	ksft_print_msg("%d devices left by the fuzzer removed\n", removed);
	EXPECT_EQ(0, count_devices(&self->nl));
	EXPECT_EQ(0, sb_nl_get_info(&self->nl, &info));
	EXPECT_EQ(0, sb_nl_clone_status(&self->nl, &st));
	ksft_print_msg("clone generation after the fuzz: %llu\n",
		       (unsigned long long)st.generation);

	/* A ZERO device reads zeros. */
	ASSERT_EQ(0, open_fds(self->fds));
	memset(&c, 0, sizeof(c));
	c.name = "after-zero";
	c.image_size = ZERO_ENTRIES * (uint64_t)CHUNK;
	c.chunk_size = CHUNK;
	c.image_id = (uint8_t[SNAPBLK_IMAGE_ID_LEN]){ 7 };
	c.table_fd = self->fds[FD_GOOD];
	ASSERT_EQ(0, sb_nl_create(&self->nl, &c, &d));
	EXPECT_EQ(0, read_device(d.index, NULL, c.image_size));
	EXPECT_EQ(0, sb_nl_remove(&self->nl, "after-zero"));
	close_fds(self->fds);

	/* Real chunks, served by a fetch daemon of our own, read back. */
	sb_rng_seed(&r, seed);
	ASSERT_EQ(0, sb_image_make(&img, CHUNK, 24, 5, 7, &r));
	c.name = "after-real";
	c.image_size = img.size;
	c.table_fd = sb_image_table_fd(&img);
	c.fetch_timeout_ms = 20000;
	ASSERT_GE(c.table_fd, 0);
	ASSERT_EQ(0, sb_fetcher_start(&fetcher, &img));
	ASSERT_EQ(0, sb_nl_create(&self->nl, &c, &d));
	close(c.table_fd);
	EXPECT_EQ(0, read_device(d.index, &img, img.size));
	EXPECT_EQ(0, sb_nl_status(&self->nl, "after-real", &d));
	EXPECT_EQ(0, d.stats[SNAPBLK_STAT_FETCH_ERRORS]);
	EXPECT_EQ(0, sb_nl_remove(&self->nl, "after-real"));
	EXPECT_EQ(0, sb_fetcher_stop(&fetcher));
	EXPECT_GT(fetcher.answered, 0);
	EXPECT_EQ(0, fetcher.unknown);
	sb_image_free(&img);

	/* And the module unloads. */
	sb_nl_close(&self->nl);
	EXPECT_EQ(0, sb_unload("snapblk"));
	EXPECT_FALSE(sb_module_loaded("snapblk"));
	free(batch);
	free(f);
	free(an);
}

TEST_HARNESS_MAIN
