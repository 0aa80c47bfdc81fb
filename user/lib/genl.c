// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
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
};

_Static_assert(SNAPBLK_STAT_MAX < 64, "stat_present is a u64 bit mask");

const char *sb_stat_name(int stat)
{
	if (stat <= 0 || stat > SNAPBLK_STAT_MAX)
		return NULL;
	return stat_names[stat];
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

int sb_nl_parse_dev(struct nlattr **tb, struct sb_dev *dev)
{
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
	if (tb[SNAPBLK_ATTR_STATS])
		return parse_stats(tb[SNAPBLK_ATTR_STATS], dev);
	return 0;
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
