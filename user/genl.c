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

/* Copy NLMSGERR_ATTR_MSG of an extended ack into nl->extack. */
static void save_extack(struct sb_nl *nl, struct nlmsghdr *nlh,
			struct nlmsgerr *e)
{
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	struct nlattr *attrs;
	int len, skip;

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	skip = sizeof(*e);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		skip += e->msg.nlmsg_len - sizeof(e->msg);
	len = (int)nlh->nlmsg_len - NLMSG_HDRLEN - skip;
	if (len <= 0)
		return;
	attrs = (struct nlattr *)((char *)e + skip);
	if (nla_parse(tb, NLMSGERR_ATTR_MAX, attrs, len, NULL) < 0)
		return;
	if (tb[NLMSGERR_ATTR_MSG])
		nla_strlcpy(nl->extack, tb[NLMSGERR_ATTR_MSG],
			    sizeof(nl->extack));
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

int sb_nl_request(struct sb_nl *nl, uint8_t cmd,
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
			 NLM_F_REQUEST | NLM_F_ACK, cmd, SNAPBLK_GENL_VERSION)) {
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
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, valid_cb, &r);
	ret = nl_send_auto(nl->sk, msg);
	if (ret < 0) {
		ret = nlerr_to_errno(ret);
		goto out;
	}
	while (!r.done) {
		ret = nl_recvmsgs(nl->sk, cb);
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
