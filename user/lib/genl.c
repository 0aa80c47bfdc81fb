// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <netlink/netlink.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/family.h>

#include "genl.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* libnl folds errnos into its own codes; undo that for the common ones. */
static int nlerr_to_errno(int nlerr)
{
	switch (nlerr < 0 ? -nlerr : nlerr) {
	case NLE_SUCCESS: return 0;
	case NLE_NOMEM: return -ENOMEM;
	case NLE_PERM: return -EPERM;
	case NLE_NOACCESS: return -EACCES;
	case NLE_INVAL: return -EINVAL;
	case NLE_RANGE: return -ERANGE;
	case NLE_BUSY: return -EBUSY;
	case NLE_EXIST: return -EEXIST;
	case NLE_AGAIN: return -EAGAIN;
	case NLE_INTR: return -EINTR;
	case NLE_OBJ_NOTFOUND: return -ENOENT;
	case NLE_OPNOTSUPP: return -EOPNOTSUPP;
	case NLE_AF_NOSUPPORT: return -EAFNOSUPPORT;
	case NLE_PROTO_MISMATCH: return -EPROTONOSUPPORT;
	case NLE_MSGSIZE: return -EMSGSIZE;
	case NLE_NODEV: return -ENODEV;
	default: return -EIO;
	}
}

int sb_nl_open(struct sb_nl *nl)
{
	struct nl_cache *cache = NULL;
	struct genl_family *fam;
	int one = 1, ret;

	memset(nl, 0, sizeof(*nl));
	nl->sk = nl_socket_alloc();
	if (!nl->sk)
		return -ENOMEM;
	ret = genl_connect(nl->sk);
	if (ret < 0) {
		ret = nlerr_to_errno(ret);
		goto err;
	}
	/* The kernel's extended ack carries a human-readable reason. */
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_EXT_ACK,
		   &one, sizeof(one));
	ret = genl_ctrl_alloc_cache(nl->sk, &cache);
	if (ret < 0) {
		ret = nlerr_to_errno(ret);
		goto err;
	}
	fam = genl_ctrl_search_by_name(cache, SNAPBLK_GENL_NAME);
	if (!fam) {
		ret = -ENOENT;
		goto err;
	}
	nl->family = genl_family_get_id(fam);
	nl->version = genl_family_get_version(fam);
	genl_family_put(fam);
	nl_cache_free(cache);
	return 0;
err:
	if (cache)
		nl_cache_free(cache);
	nl_socket_free(nl->sk);
	nl->sk = NULL;
	return ret;
}

void sb_nl_close(struct sb_nl *nl)
{
	if (nl->sk)
		nl_socket_free(nl->sk);
	nl->sk = NULL;
}

const char *sb_nl_open_hint(int err)
{
	switch (err) {
	case -ENOENT:
		return "is the snapblk module loaded? Load it with "
		       "'insmod snapblk.ko' (or 'modprobe snapblk' once installed)";
	case -EPERM:
	case -EACCES:
		return "this needs CAP_NET_ADMIN: are you root?";
	case -EAFNOSUPPORT:
	case -EPROTONOSUPPORT:
		return "this kernel lacks generic netlink support";
	default:
		return NULL;
	}
}

int sb_nl_mcgrp(struct sb_nl *nl, const char *name)
{
	int ret = genl_ctrl_resolve_grp(nl->sk, SNAPBLK_GENL_NAME, name);

	return ret < 0 ? nlerr_to_errno(ret) : ret;
}

struct request {
	struct sb_nl *nl;
	int (*parse)(struct nlattr **tb, void *arg);
	void *arg;
	int err;	/* kernel's errno (negative), or a parse error */
	int done;
};

/* Copy NLMSGERR_ATTR_MSG out of the attributes at @attrs into nl->extack. */
static void save_extack_attrs(struct sb_nl *nl, struct nlattr *attrs, int len)
{
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];

	if (len <= 0)
		return;
	if (nla_parse(tb, NLMSGERR_ATTR_MAX, attrs, len, NULL) < 0)
		return;
	if (tb[NLMSGERR_ATTR_MSG])
		nla_strlcpy(nl->extack, tb[NLMSGERR_ATTR_MSG],
			    sizeof(nl->extack));
}

/* Copy NLMSGERR_ATTR_MSG of an extended ack into nl->extack. */
static void save_extack(struct sb_nl *nl, struct nlmsghdr *nlh,
			struct nlmsgerr *e)
{
	int len, skip;

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	skip = sizeof(*e);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		skip += e->msg.nlmsg_len - sizeof(e->msg);
	len = (int)nlh->nlmsg_len - NLMSG_HDRLEN - skip;
	save_extack_attrs(nl, (struct nlattr *)((char *)e + skip), len);
}

static int error_cb(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct request *r = arg;
	struct nlmsghdr *nlh = (struct nlmsghdr *)e - 1;

	(void)nla;
	r->err = e->error;
	if (e->error)
		save_extack(r->nl, nlh, e);
	r->done = 1;
	return NL_STOP;
}

static int ack_cb(struct nl_msg *msg, void *arg)
{
	struct request *r = arg;

	(void)msg;
	r->done = 1;
	return NL_STOP;
}

/*
 * NLMSG_DONE ends a dump.  Its payload is an int: 0, or the error the
 * dump stopped with (then, with NLM_F_ACK_TLVS, an extended ack).
 */
static int finish_cb(struct nl_msg *msg, void *arg)
{
	struct request *r = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	int len = (int)nlh->nlmsg_len - NLMSG_HDRLEN;
	int skip = NLMSG_ALIGN(sizeof(int));
	char *data = nlmsg_data(nlh);
	int err;

	if (len >= (int)sizeof(int)) {
		memcpy(&err, data, sizeof(int));
		if (err < 0 && !r->err) {
			r->err = err;
			if (nlh->nlmsg_flags & NLM_F_ACK_TLVS)
				save_extack_attrs(r->nl, (struct nlattr *)
						  (data + skip), len - skip);
		}
	}
	r->done = 1;
	return NL_STOP;
}

static int valid_cb(struct nl_msg *msg, void *arg)
{
	struct request *r = arg;
	struct nlattr *tb[SNAPBLK_ATTR_MAX + 1];
	int ret;

	ret = genlmsg_parse(nlmsg_hdr(msg), 0, tb, SNAPBLK_ATTR_MAX, NULL);
	if (ret < 0) {
		r->err = -EPROTO;
		return NL_SKIP;
	}
	if (r->parse && !r->err) {
		ret = r->parse(tb, r->arg);
		if (ret < 0)
			r->err = ret;
	}
	return NL_OK;
}

static int request(struct sb_nl *nl, uint8_t cmd, int flags,
		   int (*put)(struct nl_msg *msg, void *arg),
		   int (*parse)(struct nlattr **tb, void *arg), void *arg)
{
	struct request r = { .nl = nl, .parse = parse, .arg = arg };
	struct nl_msg *msg;
	struct nl_cb *cb;
	int ret;

	nl->extack[0] = '\0';
	msg = nlmsg_alloc();
	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!msg || !cb) {
		ret = -ENOMEM;
		goto out;
	}
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0,
			 flags, cmd, SNAPBLK_GENL_VERSION)) {
		ret = -EMSGSIZE;
		goto out;
	}
	if (put) {
		ret = put(msg, arg);
		if (ret < 0) {
			ret = nlerr_to_errno(ret);
			goto out;
		}
	}
	nl_cb_err(cb, NL_CB_CUSTOM, error_cb, &r);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, ack_cb, &r);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, finish_cb, &r);
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, valid_cb, &r);
	ret = nl_send_auto(nl->sk, msg);
	if (ret < 0) {
		ret = nlerr_to_errno(ret);
		goto out;
	}
	while (!r.done) {
		ret = nl_recvmsgs(nl->sk, cb);
		/*
		 * A refused command makes libnl return its own code for the
		 * kernel's errno; error_cb() kept the errno itself.
		 */
		if (r.err)
			break;
		if (ret < 0) {
			ret = nlerr_to_errno(ret);
			goto out;
		}
	}
	ret = r.err;
out:
	nl_cb_put(cb);
	nlmsg_free(msg);
	return ret;
}

int sb_nl_request(struct sb_nl *nl, uint8_t cmd,
		  int (*put)(struct nl_msg *msg, void *arg),
		  int (*parse)(struct nlattr **tb, void *arg), void *arg)
{
	return request(nl, cmd, NLM_F_REQUEST | NLM_F_ACK, put, parse, arg);
}

int sb_nl_dump(struct sb_nl *nl, uint8_t cmd,
	       int (*put)(struct nl_msg *msg, void *arg),
	       int (*parse)(struct nlattr **tb, void *arg), void *arg)
{
	return request(nl, cmd, NLM_F_REQUEST | NLM_F_DUMP, put, parse, arg);
}

static int parse_info(struct nlattr **tb, void *arg)
{
	struct sb_info *info = arg;

	if (!tb[SNAPBLK_ATTR_MODULE_VERSION] || !tb[SNAPBLK_ATTR_API_VERSION])
		return -EPROTO;
	nla_strlcpy(info->module_version, tb[SNAPBLK_ATTR_MODULE_VERSION],
		    sizeof(info->module_version));
	info->api_version = nla_get_u32(tb[SNAPBLK_ATTR_API_VERSION]);
	return 0;
}

int sb_nl_get_info(struct sb_nl *nl, struct sb_info *info)
{
	memset(info, 0, sizeof(*info));
	return sb_nl_request(nl, SNAPBLK_CMD_GET_INFO, NULL, parse_info, info);
}

/* ------------------------------------------------------------ devices */

static const char *const stat_names[SNAPBLK_STAT_MAX + 1] = {
	[SNAPBLK_STAT_CHUNKS] = "chunks",
	[SNAPBLK_STAT_ZERO_CHUNKS] = "zero_chunks",
	[SNAPBLK_STAT_RESIDENT] = "resident",
	[SNAPBLK_STAT_CACHE_HITS] = "cache_hits",
	[SNAPBLK_STAT_CACHE_MISSES] = "cache_misses",
	[SNAPBLK_STAT_BYTES_FETCHED] = "bytes_fetched",
	[SNAPBLK_STAT_FETCH_ERRORS] = "fetch_errors",
	[SNAPBLK_STAT_INFLIGHT] = "inflight",
	[SNAPBLK_STAT_REFETCHES] = "refetches",
	[SNAPBLK_STAT_EVICTIONS] = "evictions",
	[SNAPBLK_STAT_DEMAND_FETCHES] = "demand_fetches",
	[SNAPBLK_STAT_READAHEAD_FETCHES] = "readahead_fetches",
	[SNAPBLK_STAT_PREFETCH_FETCHES] = "prefetch_fetches",
	[SNAPBLK_STAT_PREFETCH_USED] = "prefetch_used",
	[SNAPBLK_STAT_PREFETCH_WASTED] = "prefetch_wasted",
	[SNAPBLK_STAT_PREFETCH_JOINED] = "prefetch_joined",
	[SNAPBLK_STAT_PREFETCH_QUEUED] = "prefetch_queued",
	[SNAPBLK_STAT_PREFETCH_DONE] = "prefetch_done",
	[SNAPBLK_STAT_RETRIES] = "retries",
	[SNAPBLK_STAT_FETCH_LATENCY_US] = "fetch_latency_us",
	[SNAPBLK_STAT_FETCHES_DONE] = "fetches_done",
	[SNAPBLK_STAT_TRACE_CHUNKS] = "trace_chunks",
};

static const char *const cache_stat_names[SNAPBLK_CACHE_STAT_MAX + 1] = {
	[SNAPBLK_CACHE_STAT_LIMIT_BYTES] = "limit_bytes",
	[SNAPBLK_CACHE_STAT_BYTES] = "bytes",
	[SNAPBLK_CACHE_STAT_CHUNKS] = "chunks",
	[SNAPBLK_CACHE_STAT_PROTECTED_BYTES] = "protected_bytes",
	[SNAPBLK_CACHE_STAT_HITS] = "hits",
	[SNAPBLK_CACHE_STAT_MISSES] = "misses",
	[SNAPBLK_CACHE_STAT_INSERTS] = "inserts",
	[SNAPBLK_CACHE_STAT_EVICTIONS] = "evictions",
	[SNAPBLK_CACHE_STAT_DROPPED] = "dropped",
	[SNAPBLK_CACHE_STAT_PROMOTIONS] = "promotions",
	[SNAPBLK_CACHE_STAT_PENDING] = "pending",
	[SNAPBLK_CACHE_STAT_BYTES_FETCHED] = "bytes_fetched",
	[SNAPBLK_CACHE_STAT_FETCH_ERRORS] = "fetch_errors",
	[SNAPBLK_CACHE_STAT_BACKGROUND_FETCHES] = "background_fetches",
	[SNAPBLK_CACHE_STAT_FETCH_LATENCY_US] = "fetch_latency_us",
	[SNAPBLK_CACHE_STAT_FETCHES_DONE] = "fetches_done",
	[SNAPBLK_CACHE_STAT_RETRIES] = "retries",
};

_Static_assert(SNAPBLK_CACHE_STAT_MAX < 64, "cache stat_present is a u64");
_Static_assert(SNAPBLK_TIER_MAX < 32, "tier_present is a u32 bit mask");

_Static_assert(SNAPBLK_STAT_MAX < 64, "stat_present is a u64 bit mask");

const char *sb_stat_name(int stat)
{
	if (stat <= 0 || stat > SNAPBLK_STAT_MAX)
		return NULL;
	return stat_names[stat];
}

const char *sb_cache_stat_name(int stat)
{
	if (stat <= 0 || stat > SNAPBLK_CACHE_STAT_MAX)
		return NULL;
	return cache_stat_names[stat];
}

const char *sb_prefetch_state_name(uint32_t state)
{
	static const char *const names[] = {
		[SNAPBLK_PREFETCH_NONE] = "none",
		[SNAPBLK_PREFETCH_RUNNING] = "running",
		[SNAPBLK_PREFETCH_DONE] = "done",
		[SNAPBLK_PREFETCH_STOPPED] = "stopped",
	};

	return state < sizeof(names) / sizeof(names[0]) ? names[state] :
	       "unknown";
}

const char *sb_tier_name(int tier)
{
	static const char *const names[SNAPBLK_TIER_MAX + 1] = {
		[SNAPBLK_TIER_UNSPEC] = "unknown",
		[SNAPBLK_TIER_DISK] = "disk",
		[SNAPBLK_TIER_STORE + 0] = "store0",
		[SNAPBLK_TIER_STORE + 1] = "store1",
		[SNAPBLK_TIER_STORE + 2] = "store2",
		[SNAPBLK_TIER_STORE + 3] = "store3",
		[SNAPBLK_TIER_STORE + 4] = "store4",
		[SNAPBLK_TIER_STORE + 5] = "store5",
		[SNAPBLK_TIER_STORE + 6] = "store6",
		[SNAPBLK_TIER_STORE + 7] = "store7",
	};

	_Static_assert(SNAPBLK_TIER_STORES == 8, "a name for every store");
	if (tier < 0 || tier > SNAPBLK_TIER_MAX)
		return NULL;
	return names[tier];
}

static int get_u32(struct nlattr *a, uint32_t *v)
{
	if (!a)
		return 0;
	if (nla_len(a) != sizeof(uint32_t))
		return -EPROTO;
	*v = nla_get_u32(a);
	return 0;
}

static int get_u64(struct nlattr *a, uint64_t *v)
{
	if (!a)
		return 0;
	if (nla_len(a) != sizeof(uint64_t))
		return -EPROTO;
	*v = nla_get_u64(a);
	return 0;
}

static int get_name(struct nlattr *a, char name[SNAPBLK_NAME_LEN])
{
	int len;

	if (!a)
		return -EPROTO;
	len = nla_len(a);
	if (len < 2 || len > SNAPBLK_NAME_LEN ||
	    ((char *)nla_data(a))[len - 1] != '\0')
		return -EPROTO;
	nla_strlcpy(name, a, SNAPBLK_NAME_LEN);
	return 0;
}

static int parse_stats(struct nlattr *nest, struct sb_dev *dev)
{
	struct nlattr *tb[SNAPBLK_STAT_MAX + 1];
	int i;

	/* Counters of a newer module (past SNAPBLK_STAT_MAX) are ignored. */
	if (nla_parse_nested(tb, SNAPBLK_STAT_MAX, nest, NULL) < 0)
		return -EPROTO;
	for (i = 1; i <= SNAPBLK_STAT_MAX; i++) {
		if (!tb[i] || i == SNAPBLK_STAT_PAD)
			continue;
		if (get_u64(tb[i], &dev->stats[i]))
			return -EPROTO;
		dev->stat_present |= 1ULL << i;
	}
	dev->has_stats = true;
	return 0;
}

/*
 * SNAPBLK_ATTR_LATENCY and SNAPBLK_ATTR_TIERS of @tb into @h.  A newer
 * module's extra buckets count in the last one; tiers past
 * SNAPBLK_TIER_MAX are ignored (the module counts later stores as the
 * last already).
 */
static int parse_hist(struct nlattr **tb, struct sb_fetch_hist *h)
{
	struct nlattr *a = tb[SNAPBLK_ATTR_LATENCY], *t;
	int i, n, rem;
	uint64_t v;

	if (a) {
		n = nla_len(a);
		if (n <= 0 || n % sizeof(uint64_t))
			return -EPROTO;
		n /= sizeof(uint64_t);
		for (i = 0; i < n; i++) {
			memcpy(&v, (char *)nla_data(a) + i * sizeof(v),
			       sizeof(v));
			h->latency[i < SNAPBLK_LATENCY_BUCKETS ? i :
				   SNAPBLK_LATENCY_BUCKETS - 1] += v;
		}
		h->has_latency = true;
	}
	a = tb[SNAPBLK_ATTR_TIERS];
	if (a) {
		/*
		 * By hand: type 0 is both the padding of the u64s (empty)
		 * and, should a module send it, the unreported tier.
		 */
		nla_for_each_nested(t, a, rem) {
			i = nla_type(t);
			if (i > SNAPBLK_TIER_MAX || !nla_len(t))
				continue;
			if (get_u64(t, &h->tiers[i]))
				return -EPROTO;
			h->tier_present |= 1U << i;
		}
		h->has_tiers = true;
	}
	return 0;
}

/* An optional u32 attribute: *@has says whether it was there. */
static int get_opt_u32(struct nlattr *a, bool *has, uint32_t *v)
{
	*has = a;
	return get_u32(a, v);
}

int sb_nl_parse_dev(struct nlattr **tb, struct sb_dev *dev)
{
	int ret;

	memset(dev, 0, sizeof(*dev));
	if (get_name(tb[SNAPBLK_ATTR_NAME], dev->name) ||
	    !tb[SNAPBLK_ATTR_INDEX] ||
	    get_u32(tb[SNAPBLK_ATTR_INDEX], &dev->index) ||
	    get_u64(tb[SNAPBLK_ATTR_IMAGE_SIZE], &dev->image_size) ||
	    get_u32(tb[SNAPBLK_ATTR_CHUNK_SIZE], &dev->chunk_size) ||
	    get_u32(tb[SNAPBLK_ATTR_FETCH_TIMEOUT_MS], &dev->fetch_timeout_ms))
		return -EPROTO;
	if (tb[SNAPBLK_ATTR_IMAGE_ID]) {
		if (nla_len(tb[SNAPBLK_ATTR_IMAGE_ID]) != SNAPBLK_IMAGE_ID_LEN)
			return -EPROTO;
		memcpy(dev->image_id, nla_data(tb[SNAPBLK_ATTR_IMAGE_ID]),
		       SNAPBLK_IMAGE_ID_LEN);
	}
	if (get_opt_u32(tb[SNAPBLK_ATTR_READAHEAD_CHUNKS], &dev->has_readahead,
			&dev->readahead_chunks) ||
	    get_opt_u32(tb[SNAPBLK_ATTR_MAX_INFLIGHT], &dev->has_max_inflight,
			&dev->max_inflight) ||
	    get_opt_u32(tb[SNAPBLK_ATTR_PREFETCH_STATE],
			&dev->has_prefetch_state, &dev->prefetch_state))
		return -EPROTO;
	if (tb[SNAPBLK_ATTR_STATS]) {
		ret = parse_stats(tb[SNAPBLK_ATTR_STATS], dev);
		if (ret)
			return ret;
	}
	return parse_hist(tb, &dev->hist);
}

static int parse_dev(struct nlattr **tb, void *arg)
{
	return sb_nl_parse_dev(tb, arg);
}

struct create {
	const struct sb_create *req;
	struct sb_dev *dev;
};

static int put_create(struct nl_msg *msg, void *arg)
{
	const struct sb_create *req = ((struct create *)arg)->req;
	int ret;

	ret = nla_put_string(msg, SNAPBLK_ATTR_NAME, req->name);
	if (!ret)
		ret = nla_put_u64(msg, SNAPBLK_ATTR_IMAGE_SIZE,
				  req->image_size);
	if (!ret)
		ret = nla_put_u32(msg, SNAPBLK_ATTR_CHUNK_SIZE,
				  req->chunk_size);
	if (!ret)
		ret = nla_put(msg, SNAPBLK_ATTR_IMAGE_ID, SNAPBLK_IMAGE_ID_LEN,
			      req->image_id);
	if (!ret)
		ret = nla_put_u32(msg, SNAPBLK_ATTR_TABLE_FD, req->table_fd);
	if (!ret && req->fetch_timeout_ms)
		ret = nla_put_u32(msg, SNAPBLK_ATTR_FETCH_TIMEOUT_MS,
				  req->fetch_timeout_ms);
	if (!ret && req->readahead_chunks)
		ret = nla_put_u32(msg, SNAPBLK_ATTR_READAHEAD_CHUNKS,
				  req->readahead_chunks);
	if (!ret && req->max_inflight)
		ret = nla_put_u32(msg, SNAPBLK_ATTR_MAX_INFLIGHT,
				  req->max_inflight);
	return ret;
}

static int parse_create(struct nlattr **tb, void *arg)
{
	return sb_nl_parse_dev(tb, ((struct create *)arg)->dev);
}

int sb_nl_create(struct sb_nl *nl, const struct sb_create *req,
		 struct sb_dev *dev)
{
	struct create c = { .req = req, .dev = dev };
	int ret;

	memset(dev, 0, sizeof(*dev));
	ret = sb_nl_request(nl, SNAPBLK_CMD_CREATE, put_create, parse_create,
			    &c);
	/* A device message is the reply; an ack alone is not enough. */
	if (!ret && !dev->name[0])
		ret = -EPROTO;
	return ret;
}

static int put_name(struct nl_msg *msg, void *arg)
{
	return nla_put_string(msg, SNAPBLK_ATTR_NAME, arg);
}

int sb_nl_remove(struct sb_nl *nl, const char *name)
{
	return sb_nl_request(nl, SNAPBLK_CMD_REMOVE, put_name, NULL,
			     (void *)name);
}

struct status_one {
	const char *name;
	struct sb_dev *dev;
};

static int put_status(struct nl_msg *msg, void *arg)
{
	return put_name(msg, (void *)((struct status_one *)arg)->name);
}

static int parse_status(struct nlattr **tb, void *arg)
{
	return parse_dev(tb, ((struct status_one *)arg)->dev);
}

int sb_nl_status(struct sb_nl *nl, const char *name, struct sb_dev *dev)
{
	struct status_one s = { .name = name, .dev = dev };
	int ret;

	memset(dev, 0, sizeof(*dev));
	ret = sb_nl_request(nl, SNAPBLK_CMD_STATUS, put_status, parse_status,
			    &s);
	if (!ret && !dev->name[0])
		ret = -EPROTO;
	return ret;
}

struct status_all {
	int (*fn)(const struct sb_dev *dev, void *arg);
	void *arg;
};

static int parse_status_all(struct nlattr **tb, void *arg)
{
	struct status_all *s = arg;
	struct sb_dev dev;
	int ret;

	ret = sb_nl_parse_dev(tb, &dev);
	if (ret)
		return ret;
	return s->fn(&dev, s->arg);
}

int sb_nl_status_all(struct sb_nl *nl,
		     int (*fn)(const struct sb_dev *dev, void *arg),
		     void *arg)
{
	struct status_all s = { .fn = fn, .arg = arg };

	return sb_nl_dump(nl, SNAPBLK_CMD_STATUS, NULL, parse_status_all, &s);
}

/* ------------------------------------------------------ prefetch, trace */

struct prefetch {
	const struct sb_prefetch *req;
	struct sb_dev *dev;
};

static int put_prefetch(struct nl_msg *msg, void *arg)
{
	const struct sb_prefetch *req = ((struct prefetch *)arg)->req;
	int ret;

	ret = nla_put_string(msg, SNAPBLK_ATTR_NAME, req->name);
	/* A stop needs no image ID (the kernel ignores one). */
	if (!ret && req->image_id)
		ret = nla_put(msg, SNAPBLK_ATTR_IMAGE_ID, SNAPBLK_IMAGE_ID_LEN,
			      req->image_id);
	if (ret)
		return ret;
	switch (req->mode) {
	case SB_PREFETCH_LIST:
		ret = nla_put_u32(msg, SNAPBLK_ATTR_PREFETCH_FD, req->fd);
		if (!ret)
			ret = nla_put_u32(msg, SNAPBLK_ATTR_PREFETCH_COUNT,
					  req->count);
		return ret;
	case SB_PREFETCH_HYDRATE:
		return nla_put_u32(msg, SNAPBLK_ATTR_HYDRATE, 1);
	case SB_PREFETCH_STOP:
		return nla_put_u32(msg, SNAPBLK_ATTR_PREFETCH_STOP, 1);
	}
	return -NLE_INVAL;
}

static int parse_prefetch(struct nlattr **tb, void *arg)
{
	return sb_nl_parse_dev(tb, ((struct prefetch *)arg)->dev);
}

int sb_nl_prefetch(struct sb_nl *nl, const struct sb_prefetch *req,
		   struct sb_dev *dev)
{
	struct prefetch p = { .req = req, .dev = dev };
	int ret;

	memset(dev, 0, sizeof(*dev));
	ret = sb_nl_request(nl, SNAPBLK_CMD_PREFETCH, put_prefetch,
			    parse_prefetch, &p);
	if (!ret && !dev->name[0])
		ret = -EPROTO;
	return ret;
}

/* SNAPBLK_CMD_TRACE_GET, batch after batch. */
struct trace_get {
	const char *name;
	uint32_t offset;	/* next entry to ask for */
	bool started;		/* the first answer came: @want is known */
	bool replied;		/* the last request got its answer */
	uint32_t n;		/* entries the last answer brought */
	uint32_t want;		/* entries to read: the first total */
	struct sb_trace *tr;	/* the trace so far */
};

static int put_trace_get(struct nl_msg *msg, void *arg)
{
	struct trace_get *g = arg;
	int ret;

	ret = nla_put_string(msg, SNAPBLK_ATTR_NAME, g->name);
	if (!ret && g->offset)
		ret = nla_put_u32(msg, SNAPBLK_ATTR_TRACE_OFFSET, g->offset);
	return ret;
}

static int parse_trace_get(struct nlattr **tb, void *arg)
{
	struct trace_get *g = arg;
	struct sb_trace *tr = g->tr;
	struct nlattr *a = tb[SNAPBLK_ATTR_TRACE];
	uint32_t chunk_size = 0, total = 0, n = 0, i, v;
	const uint8_t *id;

	if (!tb[SNAPBLK_ATTR_IMAGE_ID] || !tb[SNAPBLK_ATTR_CHUNK_SIZE] ||
	    !tb[SNAPBLK_ATTR_TRACE_TOTAL] ||
	    nla_len(tb[SNAPBLK_ATTR_IMAGE_ID]) != SNAPBLK_IMAGE_ID_LEN ||
	    get_u32(tb[SNAPBLK_ATTR_CHUNK_SIZE], &chunk_size) ||
	    get_u32(tb[SNAPBLK_ATTR_TRACE_TOTAL], &total) ||
	    total > SNAPBLK_TRACE_MAX)
		return -EPROTO;
	if (a) {
		if (nla_len(a) % sizeof(uint32_t) ||
		    nla_len(a) > SNAPBLK_TRACE_BATCH * (int)sizeof(uint32_t))
			return -EPROTO;
		n = nla_len(a) / sizeof(uint32_t);
	}
	id = nla_data(tb[SNAPBLK_ATTR_IMAGE_ID]);
	if (!g->started) {
		/* The first answer: what the trace is, and how long. */
		memcpy(tr->image_id, id, SNAPBLK_IMAGE_ID_LEN);
		tr->chunk_size = chunk_size;
		g->want = total;
		g->started = true;
		if (total) {
			tr->chunks = malloc(total * sizeof(uint32_t));
			if (!tr->chunks)
				return -ENOMEM;
		}
	} else if (memcmp(id, tr->image_id, SNAPBLK_IMAGE_ID_LEN) ||
		   chunk_size != tr->chunk_size) {
		return -ESTALE;
	}
	/* Keep what is wanted; entries recorded since are not. */
	if (n > g->want - g->offset)
		n = g->want - g->offset;
	for (i = 0; i < n; i++) {
		memcpy(&v, (char *)nla_data(a) + i * sizeof(v), sizeof(v));
		/* A slot the kernel was filling that moment: no chunk. */
		if (v != UINT32_MAX)
			tr->chunks[tr->count++] = v;
	}
	g->offset += n;
	g->n = n;
	g->replied = true;
	return 0;
}

int sb_nl_trace_get(struct sb_nl *nl, const char *name, struct sb_trace *tr)
{
	struct trace_get g = { .name = name, .tr = tr };
	int ret;

	memset(tr, 0, sizeof(*tr));
	do {
		g.replied = false;
		ret = sb_nl_request(nl, SNAPBLK_CMD_TRACE_GET, put_trace_get,
				    parse_trace_get, &g);
		if (!ret && !g.replied)
			ret = -EPROTO;
		/* No progress: the trace is shorter than the device said. */
		if (!ret && !g.n && g.offset < g.want)
			ret = -EPROTO;
	} while (!ret && g.offset < g.want);
	if (ret) {
		/* Not sb_trace_free(): genl.o links without trace.o. */
		free(tr->chunks);
		tr->chunks = NULL;
		tr->count = 0;
	}
	return ret;
}

/* -------------------------------------------------------------- cache */

struct cache_status {
	struct sb_cache_status *st;
	bool replied;
};

static int parse_cache_status(struct nlattr **tb, void *arg)
{
	struct cache_status *c = arg;
	struct sb_cache_status *st = c->st;
	struct nlattr *nest[SNAPBLK_CACHE_STAT_MAX + 1];
	int i;

	if (!tb[SNAPBLK_ATTR_CACHE_STATS] ||
	    nla_parse_nested(nest, SNAPBLK_CACHE_STAT_MAX,
			     tb[SNAPBLK_ATTR_CACHE_STATS], NULL) < 0)
		return -EPROTO;
	for (i = 1; i <= SNAPBLK_CACHE_STAT_MAX; i++) {
		if (i == SNAPBLK_CACHE_STAT_PAD || !nest[i])
			continue;
		if (get_u64(nest[i], &st->stats[i]))
			return -EPROTO;
		st->stat_present |= 1ULL << i;
	}
	c->replied = true;
	return parse_hist(tb, &st->hist);
}

int sb_nl_cache_status(struct sb_nl *nl, struct sb_cache_status *st)
{
	struct cache_status c = { .st = st };
	int ret;

	memset(st, 0, sizeof(*st));
	ret = sb_nl_request(nl, SNAPBLK_CMD_CACHE_STATUS, NULL,
			    parse_cache_status, &c);
	if (!ret && !c.replied)
		ret = -EPROTO;
	return ret;
}

/* -------------------------------------------------------------- clone */

static int parse_clone_status(struct nlattr **tb, void *arg)
{
	struct sb_clone_status *st = arg;
	struct nlattr *nest[SNAPBLK_CLONE_STAT_MAX + 1];
	int i;

	if (!tb[SNAPBLK_ATTR_GENERATION] || !tb[SNAPBLK_ATTR_CLONE_SOURCE] ||
	    !tb[SNAPBLK_ATTR_CLONE_SOURCES] || !tb[SNAPBLK_ATTR_CLONE_STATS] ||
	    get_u64(tb[SNAPBLK_ATTR_GENERATION], &st->generation) ||
	    get_u32(tb[SNAPBLK_ATTR_CLONE_SOURCE], &st->last_source) ||
	    get_u32(tb[SNAPBLK_ATTR_CLONE_SOURCES], &st->sources) ||
	    nla_parse_nested(nest, SNAPBLK_CLONE_STAT_MAX,
			     tb[SNAPBLK_ATTR_CLONE_STATS], NULL) < 0)
		return -EPROTO;
	for (i = 1; i <= SNAPBLK_CLONE_STAT_MAX; i++)
		if (i != SNAPBLK_CLONE_STAT_PAD && nest[i] &&
		    get_u64(nest[i], &st->stats[i]))
			return -EPROTO;
	return 0;
}

int sb_nl_clone_status(struct sb_nl *nl, struct sb_clone_status *st)
{
	memset(st, 0, sizeof(*st));
	return sb_nl_request(nl, SNAPBLK_CMD_CLONE_STATUS, NULL,
			     parse_clone_status, st);
}

struct clone_trigger {
	const uint8_t *id;
	uint64_t generation;
	bool replied;
};

static int put_clone_trigger(struct nl_msg *msg, void *arg)
{
	struct clone_trigger *t = arg;

	if (!t->id)
		return 0;
	return nla_put(msg, SNAPBLK_ATTR_GENERATION_ID,
		       SNAPBLK_GENERATION_ID_LEN, t->id);
}

static int parse_clone_trigger(struct nlattr **tb, void *arg)
{
	struct clone_trigger *t = arg;

	if (!tb[SNAPBLK_ATTR_GENERATION] ||
	    get_u64(tb[SNAPBLK_ATTR_GENERATION], &t->generation))
		return -EPROTO;
	t->replied = true;
	return 0;
}

int sb_nl_clone_trigger(struct sb_nl *nl, const uint8_t *id,
			uint64_t *generation)
{
	struct clone_trigger t = { .id = id };
	int ret;

	ret = sb_nl_request(nl, SNAPBLK_CMD_CLONE_TRIGGER, put_clone_trigger,
			    parse_clone_trigger, &t);
	if (!ret && !t.replied)
		ret = -EPROTO;
	if (!ret && generation)
		*generation = t.generation;
	return ret;
}

const char *sb_clone_source_name(uint32_t source)
{
	static const char *const names[] = {
		[SNAPBLK_CLONE_SOURCE_UNSPEC] = "none",
		[SNAPBLK_CLONE_SOURCE_VMGENID] = "vmgenid",
		[SNAPBLK_CLONE_SOURCE_GENPAGE] = "genpage",
		[SNAPBLK_CLONE_SOURCE_TRIGGER] = "trigger",
	};

	return source < sizeof(names) / sizeof(names[0]) ? names[source] :
	       "unknown";
}

const char *sb_reseed_name(uint32_t reseed)
{
	static const char *const names[] = {
		[SNAPBLK_RESEED_UNSPEC] = "none",
		[SNAPBLK_RESEED_FORCED] = "forced",
		[SNAPBLK_RESEED_KERNEL] = "kernel",
		[SNAPBLK_RESEED_FAILED] = "failed",
	};

	return reseed < sizeof(names) / sizeof(names[0]) ? names[reseed] :
	       "unknown";
}

/* ------------------------------------------------------------- events */

struct listen {
	int (*fn)(const struct sb_event *ev, void *arg);
	void *arg;
	int family;
	int ret;	/* fn's non-zero return, or a decoding error */
};

static int parse_event(struct nl_msg *msg, struct sb_event *ev)
{
	struct nlattr *tb[SNAPBLK_ATTR_MAX + 1];
	struct genlmsghdr *gh = nlmsg_data(nlmsg_hdr(msg));

	memset(ev, 0, sizeof(*ev));
	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, SNAPBLK_ATTR_MAX, NULL) < 0)
		return -EPROTO;
	ev->cmd = gh->cmd;
	switch (ev->cmd) {
	case SNAPBLK_EVENT_DEVICE_ADDED:
	case SNAPBLK_EVENT_DEVICE_REMOVED:
		return sb_nl_parse_dev(tb, &ev->dev);
	case SNAPBLK_EVENT_CHUNK_ERROR:
		if (get_name(tb[SNAPBLK_ATTR_NAME], ev->dev.name) ||
		    !tb[SNAPBLK_ATTR_CHUNK] || !tb[SNAPBLK_ATTR_ERROR] ||
		    get_u64(tb[SNAPBLK_ATTR_CHUNK], &ev->chunk) ||
		    get_u32(tb[SNAPBLK_ATTR_ERROR], &ev->error))
			return -EPROTO;
		if (tb[SNAPBLK_ATTR_ADDR]) {
			if (nla_len(tb[SNAPBLK_ATTR_ADDR]) != SNAPBLK_ADDR_LEN)
				return -EPROTO;
			memcpy(ev->addr, nla_data(tb[SNAPBLK_ATTR_ADDR]),
			       SNAPBLK_ADDR_LEN);
			ev->has_addr = true;
		}
		if (tb[SNAPBLK_ATTR_REFETCH] &&
		    get_u32(tb[SNAPBLK_ATTR_REFETCH], &ev->refetch))
			return -EPROTO;
		return 0;
	case SNAPBLK_EVENT_CLONE:
		if (!tb[SNAPBLK_ATTR_GENERATION] ||
		    get_u64(tb[SNAPBLK_ATTR_GENERATION], &ev->generation) ||
		    !tb[SNAPBLK_ATTR_CLONE_SOURCE] ||
		    get_u32(tb[SNAPBLK_ATTR_CLONE_SOURCE], &ev->clone_source) ||
		    !tb[SNAPBLK_ATTR_RESEED] ||
		    get_u32(tb[SNAPBLK_ATTR_RESEED], &ev->reseed))
			return -EPROTO;
		return 0;
	default:
		/* An event this tool does not know: hand over what is there. */
		if (tb[SNAPBLK_ATTR_NAME])
			get_name(tb[SNAPBLK_ATTR_NAME], ev->dev.name);
		return 0;
	}
}

static int event_cb(struct nl_msg *msg, void *arg)
{
	struct listen *l = arg;
	struct sb_event ev;
	int ret;

	if (nlmsg_hdr(msg)->nlmsg_type != l->family)
		return NL_SKIP;
	ret = parse_event(msg, &ev);
	if (ret) {
		l->ret = ret;
		return NL_STOP;
	}
	ret = l->fn(&ev, l->arg);
	if (ret) {
		l->ret = ret;
		return NL_STOP;
	}
	return NL_OK;
}

/* Multicast messages carry no sequence number of ours. */
static int no_seq_check(struct nl_msg *msg, void *arg)
{
	(void)msg;
	(void)arg;
	return NL_OK;
}

int sb_nl_listen(struct sb_nl *nl, const char *group,
		 int (*fn)(const struct sb_event *ev, void *arg),
		 void (*lost)(void *arg), void *arg)
{
	struct listen l = { .fn = fn, .arg = arg, .family = nl->family };
	struct nl_cb *cb;
	int grp, ret;

	grp = sb_nl_mcgrp(nl, group);
	if (grp < 0)
		return grp;
	ret = nl_socket_add_membership(nl->sk, grp);
	if (ret < 0)
		return nlerr_to_errno(ret);
	nl_socket_disable_seq_check(nl->sk);
	/* Room for bursts (many devices created at once); best effort. */
	nl_socket_set_buffer_size(nl->sk, 1 << 20, 0);
	cb = nl_cb_alloc(NL_CB_DEFAULT);
	if (!cb)
		return -ENOMEM;
	nl_cb_set(cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, no_seq_check, NULL);
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, event_cb, &l);
	while (!l.ret) {
		errno = 0;
		ret = nl_recvmsgs(nl->sk, cb);
		if (ret == -NLE_NOMEM && errno == ENOBUFS) {
			/* The socket overflowed: events were dropped. */
			if (lost)
				lost(arg);
			continue;
		}
		if (ret < 0) {
			l.ret = nlerr_to_errno(ret);
			break;
		}
	}
	nl_cb_put(cb);
	return l.ret;
}
