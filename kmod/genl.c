// SPDX-License-Identifier: GPL-2.0
/*
 * The "snapblk" generic netlink family: the control interface of the
 * module.  Commands and attributes are described in
 * include/uapi/linux/snapblk.h and Documentation/netlink.md.
 *
 * Policy: validation is strict (the family policy below is applied to
 * every command; unknown attributes are refused).  Every command that
 * changes state carries GENL_ADMIN_PERM.
 */
#include "snapblk.h"

#include <linux/module.h>
#include <net/genetlink.h>

static const struct nla_policy snapblk_genl_policy[SNAPBLK_ATTR_MAX + 1] = {
	[SNAPBLK_ATTR_MODULE_VERSION] = { .type = NLA_NUL_STRING,
					  .len = SNAPBLK_VERSION_LEN - 1 },
	[SNAPBLK_ATTR_API_VERSION] = { .type = NLA_U32 },
};

static struct genl_family snapblk_genl_family;

static int snapblk_genl_get_info(struct sk_buff *skb, struct genl_info *info)
{
	struct sk_buff *msg;
	void *hdr;
	int ret = -EMSGSIZE;

	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;

	hdr = genlmsg_put_reply(msg, info, &snapblk_genl_family, 0,
				SNAPBLK_CMD_GET_INFO);
	if (!hdr)
		goto err_free;
	if (nla_put_string(msg, SNAPBLK_ATTR_MODULE_VERSION, SNAPBLK_VERSION) ||
	    nla_put_u32(msg, SNAPBLK_ATTR_API_VERSION, SNAPBLK_API_VERSION))
		goto err_free;
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);

err_free:
	nlmsg_free(msg);
	return ret;
}

static const struct genl_small_ops snapblk_genl_ops[] = {
	{
		.cmd = SNAPBLK_CMD_GET_INFO,
		.doit = snapblk_genl_get_info,
	},
};

static const struct genl_multicast_group snapblk_genl_mcgrps[] = {
	{ .name = SNAPBLK_GENL_MCGRP_EVENTS },
};

/*
 * Registered from module init until module exit; the genetlink core holds
 * a module reference while a command runs, so no command outlives it.
 */
static struct genl_family snapblk_genl_family __ro_after_init = {
	.name = SNAPBLK_GENL_NAME,
	.version = SNAPBLK_GENL_VERSION,
	.maxattr = SNAPBLK_ATTR_MAX,
	.policy = snapblk_genl_policy,
	.netnsok = false,
	.module = THIS_MODULE,
	.small_ops = snapblk_genl_ops,
	.n_small_ops = ARRAY_SIZE(snapblk_genl_ops),
	.resv_start_op = SNAPBLK_CMD_GET_INFO + 1,
	.mcgrps = snapblk_genl_mcgrps,
	.n_mcgrps = ARRAY_SIZE(snapblk_genl_mcgrps),
};

int __init snapblk_genl_init(void)
{
	int ret;

	ret = genl_register_family(&snapblk_genl_family);
	if (ret)
		pr_err("cannot register generic netlink family %s: %d\n",
		       SNAPBLK_GENL_NAME, ret);
	return ret;
}

void snapblk_genl_exit(void)
{
	genl_unregister_family(&snapblk_genl_family);
}

MODULE_ALIAS_GENL_FAMILY(SNAPBLK_GENL_NAME);
