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
#include <linux/ctype.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <net/genetlink.h>

static struct netlink_range_validation chunk_size_range = {
	.min = SNAPBLK_CHUNK_SIZE_MIN,
	.max = SNAPBLK_CHUNK_SIZE_MAX,
};

static struct netlink_range_validation fetch_timeout_range = {
	.min = 1,
	.max = SNAPBLK_FETCH_TIMEOUT_MS_MAX,
};

static const struct nla_policy snapblk_genl_policy[SNAPBLK_ATTR_MAX + 1] = {
	[SNAPBLK_ATTR_MODULE_VERSION] = { .type = NLA_NUL_STRING,
					  .len = SNAPBLK_VERSION_LEN - 1 },
	[SNAPBLK_ATTR_API_VERSION] = { .type = NLA_U32 },
	[SNAPBLK_ATTR_NAME] = { .type = NLA_NUL_STRING,
				.len = SNAPBLK_NAME_LEN - 1 },
	[SNAPBLK_ATTR_INDEX] = { .type = NLA_U32 },
	[SNAPBLK_ATTR_IMAGE_SIZE] = { .type = NLA_U64 },
	[SNAPBLK_ATTR_CHUNK_SIZE] = NLA_POLICY_FULL_RANGE(NLA_U32,
							  &chunk_size_range),
	[SNAPBLK_ATTR_IMAGE_ID] = NLA_POLICY_EXACT_LEN(SNAPBLK_IMAGE_ID_LEN),
	[SNAPBLK_ATTR_TABLE_FD] = { .type = NLA_U32 },
	[SNAPBLK_ATTR_FETCH_TIMEOUT_MS] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &fetch_timeout_range),
	[SNAPBLK_ATTR_STATS] = { .type = NLA_REJECT },
	[SNAPBLK_ATTR_CHUNK] = { .type = NLA_REJECT },
	[SNAPBLK_ATTR_ERROR] = { .type = NLA_REJECT },
	[SNAPBLK_ATTR_PAD] = { .type = NLA_REJECT },
	[SNAPBLK_ATTR_GENERATION] = { .type = NLA_REJECT },
	[SNAPBLK_ATTR_GENERATION_ID] =
		NLA_POLICY_EXACT_LEN(SNAPBLK_GENERATION_ID_LEN),
	[SNAPBLK_ATTR_CLONE_SOURCE] = { .type = NLA_REJECT },
	[SNAPBLK_ATTR_CLONE_SOURCES] = { .type = NLA_REJECT },
	[SNAPBLK_ATTR_RESEED] = { .type = NLA_REJECT },
	[SNAPBLK_ATTR_CLONE_STATS] = { .type = NLA_REJECT },
	[SNAPBLK_ATTR_ADDR] = NLA_POLICY_EXACT_LEN(SNAPBLK_ADDR_LEN),
	[SNAPBLK_ATTR_REFETCH] = { .type = NLA_REJECT },
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

/* Put the attributes of a device message; @stats adds the counters. */
static int put_dev(struct sk_buff *msg, struct snapblk_dev *dev, bool stats)
{
	struct nlattr *nest;

	if (nla_put_string(msg, SNAPBLK_ATTR_NAME, dev->name) ||
	    nla_put_u32(msg, SNAPBLK_ATTR_INDEX, dev->index) ||
	    nla_put_u64_64bit(msg, SNAPBLK_ATTR_IMAGE_SIZE, dev->image_size,
			      SNAPBLK_ATTR_PAD) ||
	    nla_put_u32(msg, SNAPBLK_ATTR_CHUNK_SIZE, dev->chunk_size) ||
	    nla_put(msg, SNAPBLK_ATTR_IMAGE_ID, SNAPBLK_IMAGE_ID_LEN,
		    dev->image_id) ||
	    nla_put_u32(msg, SNAPBLK_ATTR_FETCH_TIMEOUT_MS,
			READ_ONCE(dev->fetch_timeout_ms)))
		return -EMSGSIZE;
	if (!stats)
		return 0;
	nest = nla_nest_start(msg, SNAPBLK_ATTR_STATS);
	if (!nest ||
	    nla_put_u64_64bit(msg, SNAPBLK_STAT_CHUNKS, dev->nr_chunks,
			      SNAPBLK_STAT_PAD) ||
	    nla_put_u64_64bit(msg, SNAPBLK_STAT_ZERO_CHUNKS, dev->nr_zero,
			      SNAPBLK_STAT_PAD) ||
	    nla_put_u64_64bit(msg, SNAPBLK_STAT_RESIDENT,
			      atomic64_read(&dev->resident), SNAPBLK_STAT_PAD) ||
	    nla_put_u64_64bit(msg, SNAPBLK_STAT_CACHE_HITS,
			      atomic64_read(&dev->hits), SNAPBLK_STAT_PAD) ||
	    nla_put_u64_64bit(msg, SNAPBLK_STAT_CACHE_MISSES,
			      atomic64_read(&dev->misses), SNAPBLK_STAT_PAD) ||
	    nla_put_u64_64bit(msg, SNAPBLK_STAT_BYTES_FETCHED,
			      atomic64_read(&dev->bytes_fetched),
			      SNAPBLK_STAT_PAD) ||
	    nla_put_u64_64bit(msg, SNAPBLK_STAT_FETCH_ERRORS,
			      atomic64_read(&dev->fetch_errors),
			      SNAPBLK_STAT_PAD) ||
	    nla_put_u64_64bit(msg, SNAPBLK_STAT_INFLIGHT,
			      atomic_read(&dev->inflight), SNAPBLK_STAT_PAD) ||
	    nla_put_u64_64bit(msg, SNAPBLK_STAT_REFETCHES,
			      atomic64_read(&dev->refetches), SNAPBLK_STAT_PAD))
		return -EMSGSIZE;
	nla_nest_end(msg, nest);
	return 0;
}

/* Reply to @info with the device message of @dev. */
static int reply_dev(struct genl_info *info, struct snapblk_dev *dev, u8 cmd)
{
	struct sk_buff *msg;
	void *hdr;

	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &snapblk_genl_family, 0, cmd);
	if (!hdr || put_dev(msg, dev, true)) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
}

/*
 * Read and check the chunk table the caller passed as a file descriptor.
 * We run in the caller's context (netlink delivers synchronously), so the
 * descriptor is the caller's own.  It must be a regular file (a memfd is
 * one): a pipe, socket or device could make the read wait for ever.  The
 * family has parallel_ops, so a slow read holds no lock but the caller.
 * The table is charged to the caller's memory cgroup; beyond its limit
 * the command fails with ENOMEM rather than wake the OOM killer.
 */
static struct snapblk_chunk_entry *read_table(struct genl_info *info,
					      u64 nr_chunks)
{
	struct snapblk_chunk_entry *table;
	size_t len = nr_chunks * sizeof(*table);
	static const u8 zero[SNAPBLK_ADDR_LEN];
	loff_t pos = 0;
	struct file *f;
	ssize_t n;
	u64 i;
	int ret;

	f = fget(nla_get_u32(info->attrs[SNAPBLK_ATTR_TABLE_FD]));
	if (!f) {
		GENL_SET_ERR_MSG(info, "table file descriptor is not open");
		return ERR_PTR(-EBADF);
	}
	ret = -EBADF;
	if (!(f->f_mode & FMODE_READ)) {
		GENL_SET_ERR_MSG(info, "table file descriptor is not readable");
		goto err_put;
	}
	ret = -EINVAL;
	if (!S_ISREG(file_inode(f)->i_mode)) {
		GENL_SET_ERR_MSG(info, "table must be a regular file or a memfd");
		goto err_put;
	}
	ret = -ENOMEM;
	table = kvmalloc(len, GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL |
			 __GFP_NOWARN);
	if (!table) {
		GENL_SET_ERR_MSG(info, "no memory for the chunk table");
		goto err_put;
	}
	n = kernel_read(f, table, len, &pos);
	fput(f);
	if (n != len) {
		kvfree_sensitive(table, len);
		GENL_SET_ERR_MSG(info, "chunk table is shorter than the image");
		return ERR_PTR(n < 0 ? n : -EINVAL);
	}
	for (i = 0; i < nr_chunks; i++) {
		const struct snapblk_chunk_entry *e = &table[i];
		bool is_zero = e->flags & SNAPBLK_CHUNK_F_ZERO;

		if ((e->flags & ~SNAPBLK_CHUNK_F_ALL) || e->__reserved ||
		    (is_zero && (memcmp(e->addr, zero, sizeof(zero)) ||
				 memcmp(e->key, zero, sizeof(zero))))) {
			kvfree_sensitive(table, len);
			GENL_SET_ERR_MSG(info, "malformed chunk table entry");
			return ERR_PTR(-EINVAL);
		}
		if (!(i & 4095))
			cond_resched();
	}
	return table;

err_put:
	fput(f);
	return ERR_PTR(ret);
}

/*
 * Names become /dev/snapblk/NAME through udev: ASCII letters, digits and
 * "_.:@+-", not starting with "." or "-" (so never "..", never a path).
 * The kernel's isalnum() takes Latin-1 letters too: check ASCII first.
 */
static bool valid_name(const char *name)
{
	const char *p;

	if (!name[0] || name[0] == '.' || name[0] == '-')
		return false;
	for (p = name; *p; p++)
		if (!isascii(*p) || (!isalnum(*p) && !strchr("_.:@+-", *p)))
			return false;
	return true;
}

static bool name_taken(const char *name)
{
	bool ret;

	mutex_lock(&snapblk_devs_mutex);
	ret = snapblk_dev_find(name);
	mutex_unlock(&snapblk_devs_mutex);
	return ret;
}

static int snapblk_genl_create(struct sk_buff *skb, struct genl_info *info)
{
	struct snapblk_dev_params p = {
		.fetch_timeout_ms = SNAPBLK_FETCH_TIMEOUT_MS_DEFAULT,
	};
	struct nlattr **a = info->attrs;
	struct snapblk_dev *dev;
	u64 nr_chunks;
	int ret;

	if (GENL_REQ_ATTR_CHECK(info, SNAPBLK_ATTR_NAME) ||
	    GENL_REQ_ATTR_CHECK(info, SNAPBLK_ATTR_IMAGE_SIZE) ||
	    GENL_REQ_ATTR_CHECK(info, SNAPBLK_ATTR_CHUNK_SIZE) ||
	    GENL_REQ_ATTR_CHECK(info, SNAPBLK_ATTR_IMAGE_ID) ||
	    GENL_REQ_ATTR_CHECK(info, SNAPBLK_ATTR_TABLE_FD))
		return -EINVAL;
	p.name = nla_data(a[SNAPBLK_ATTR_NAME]);
	p.image_size = nla_get_u64(a[SNAPBLK_ATTR_IMAGE_SIZE]);
	p.chunk_size = nla_get_u32(a[SNAPBLK_ATTR_CHUNK_SIZE]);
	p.image_id = nla_data(a[SNAPBLK_ATTR_IMAGE_ID]);
	if (a[SNAPBLK_ATTR_FETCH_TIMEOUT_MS])
		p.fetch_timeout_ms = nla_get_u32(a[SNAPBLK_ATTR_FETCH_TIMEOUT_MS]);
	if (!valid_name(p.name)) {
		NL_SET_ERR_MSG_ATTR(info->extack, a[SNAPBLK_ATTR_NAME],
				    "device name must be letters, digits and _.:@+- not starting with . or -");
		return -EINVAL;
	}
	if (!is_power_of_2(p.chunk_size)) {
		NL_SET_ERR_MSG_ATTR(info->extack, a[SNAPBLK_ATTR_CHUNK_SIZE],
				    "chunk size is not a power of two");
		return -EINVAL;
	}
	/* Compared before rounding up: near 2^64 the count would wrap. */
	if (!p.image_size ||
	    p.image_size > (u64)SNAPBLK_MANIFEST_MAX_CHUNKS * p.chunk_size) {
		NL_SET_ERR_MSG_ATTR(info->extack, a[SNAPBLK_ATTR_IMAGE_SIZE],
				    "image size out of range");
		return -EINVAL;
	}
	nr_chunks = DIV_ROUND_UP_ULL(p.image_size, p.chunk_size);
	/* Before the table is read (create checks again, under the lock). */
	if (name_taken(p.name)) {
		GENL_SET_ERR_MSG(info, "a device with this name exists");
		return -EEXIST;
	}
	p.table = read_table(info, nr_chunks);
	if (IS_ERR(p.table))
		return PTR_ERR(p.table);
	ret = snapblk_dev_create(&p);
	if (ret) {
		kvfree_sensitive(p.table, nr_chunks * sizeof(*p.table));
		if (ret == -EEXIST)
			GENL_SET_ERR_MSG(info, "a device with this name exists");
		return ret;
	}
	/* The device exists even if the reply cannot be sent. */
	mutex_lock(&snapblk_devs_mutex);
	dev = snapblk_dev_find(p.name);
	ret = dev ? reply_dev(info, dev, SNAPBLK_CMD_CREATE) : 0;
	mutex_unlock(&snapblk_devs_mutex);
	return ret;
}

static int snapblk_genl_remove(struct sk_buff *skb, struct genl_info *info)
{
	int ret;

	if (GENL_REQ_ATTR_CHECK(info, SNAPBLK_ATTR_NAME))
		return -EINVAL;
	ret = snapblk_dev_remove(nla_data(info->attrs[SNAPBLK_ATTR_NAME]));
	if (ret == -EBUSY)
		GENL_SET_ERR_MSG(info, "device is open (mounted?)");
	else if (ret == -ENOENT)
		GENL_SET_ERR_MSG(info, "no such device");
	return ret;
}

static int snapblk_genl_status(struct sk_buff *skb, struct genl_info *info)
{
	struct snapblk_dev *dev;
	int ret;

	if (GENL_REQ_ATTR_CHECK(info, SNAPBLK_ATTR_NAME))
		return -EINVAL;
	mutex_lock(&snapblk_devs_mutex);
	dev = snapblk_dev_find(nla_data(info->attrs[SNAPBLK_ATTR_NAME]));
	if (dev) {
		ret = reply_dev(info, dev, SNAPBLK_CMD_STATUS);
	} else {
		GENL_SET_ERR_MSG(info, "no such device");
		ret = -ENOENT;
	}
	mutex_unlock(&snapblk_devs_mutex);
	return ret;
}

/* Dump: cb->args[0] is the number of devices already sent. */
static int snapblk_genl_status_dump(struct sk_buff *skb,
				    struct netlink_callback *cb)
{
	struct snapblk_dev *dev;
	long i = 0;
	void *hdr;

	mutex_lock(&snapblk_devs_mutex);
	list_for_each_entry(dev, &snapblk_devs, list) {
		if (i++ < cb->args[0])
			continue;
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, &snapblk_genl_family,
				  NLM_F_MULTI, SNAPBLK_CMD_STATUS);
		if (!hdr)
			break;
		if (put_dev(skb, dev, true)) {
			genlmsg_cancel(skb, hdr);
			break;
		}
		genlmsg_end(skb, hdr);
		cb->args[0]++;
	}
	mutex_unlock(&snapblk_devs_mutex);
	return skb->len;
}

/*
 * Simulate a clone.  Forcing a reseed is RNDRESEEDCRNG's privilege, so on
 * top of GENL_ADMIN_PERM (CAP_NET_ADMIN) the caller needs CAP_SYS_ADMIN;
 * the reseed runs in the caller's context, before the reply.
 */
static int snapblk_genl_clone_trigger(struct sk_buff *skb,
				      struct genl_info *info)
{
	u8 id[SNAPBLK_GENERATION_ID_LEN];
	struct sk_buff *msg;
	u64 generation;
	void *hdr;
	int ret;

	if (!netlink_capable(skb, CAP_SYS_ADMIN)) {
		GENL_SET_ERR_MSG(info, "forcing an RNG reseed needs CAP_SYS_ADMIN");
		return -EPERM;
	}
	if (info->attrs[SNAPBLK_ATTR_GENERATION_ID])
		nla_memcpy(id, info->attrs[SNAPBLK_ATTR_GENERATION_ID],
			   sizeof(id));
	else
		get_random_bytes(id, sizeof(id));
	ret = snapblk_clone_event(SNAPBLK_CLONE_SOURCE_TRIGGER, id, false,
				  &generation);
	if (ret) {
		GENL_SET_ERR_MSG(info, "generation bumped but the RNG reseed failed");
		return ret;
	}

	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &snapblk_genl_family, 0,
				SNAPBLK_CMD_CLONE_TRIGGER);
	if (!hdr || nla_put_u64_64bit(msg, SNAPBLK_ATTR_GENERATION,
				      generation, SNAPBLK_ATTR_PAD)) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
}

static int snapblk_genl_clone_status(struct sk_buff *skb,
				     struct genl_info *info)
{
	struct snapblk_clone_stats st;
	struct sk_buff *msg;
	struct nlattr *nest;
	u64 generation;
	void *hdr;

	snapblk_clone_get(&generation, NULL, &st);
	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &snapblk_genl_family, 0,
				SNAPBLK_CMD_CLONE_STATUS);
	if (!hdr)
		goto err_free;
	if (nla_put_u64_64bit(msg, SNAPBLK_ATTR_GENERATION, generation,
			      SNAPBLK_ATTR_PAD) ||
	    nla_put_u32(msg, SNAPBLK_ATTR_CLONE_SOURCE, st.last_source) ||
	    nla_put_u32(msg, SNAPBLK_ATTR_CLONE_SOURCES,
			snapblk_clone_sources()))
		goto err_free;
	nest = nla_nest_start(msg, SNAPBLK_ATTR_CLONE_STATS);
	if (!nest ||
	    nla_put_u64_64bit(msg, SNAPBLK_CLONE_STAT_EVENTS, st.events,
			      SNAPBLK_CLONE_STAT_PAD) ||
	    nla_put_u64_64bit(msg, SNAPBLK_CLONE_STAT_DUPLICATES,
			      st.duplicates, SNAPBLK_CLONE_STAT_PAD) ||
	    nla_put_u64_64bit(msg, SNAPBLK_CLONE_STAT_RESEEDS, st.reseeds,
			      SNAPBLK_CLONE_STAT_PAD) ||
	    nla_put_u64_64bit(msg, SNAPBLK_CLONE_STAT_RESEED_FAILURES,
			      st.reseed_failures, SNAPBLK_CLONE_STAT_PAD))
		goto err_free;
	nla_nest_end(msg, nest);
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);

err_free:
	nlmsg_free(msg);
	return -EMSGSIZE;
}

static const struct genl_small_ops snapblk_genl_ops[] = {
	{
		.cmd = SNAPBLK_CMD_GET_INFO,
		.doit = snapblk_genl_get_info,
	},
	{
		.cmd = SNAPBLK_CMD_CREATE,
		.doit = snapblk_genl_create,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = SNAPBLK_CMD_REMOVE,
		.doit = snapblk_genl_remove,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = SNAPBLK_CMD_STATUS,
		.doit = snapblk_genl_status,
		.dumpit = snapblk_genl_status_dump,
	},
	{
		.cmd = SNAPBLK_CMD_CLONE_TRIGGER,
		.doit = snapblk_genl_clone_trigger,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = SNAPBLK_CMD_CLONE_STATUS,
		.doit = snapblk_genl_clone_status,
	},
};

/*
 * Events are sent only while the family is registered: genl_live is set
 * after registration and cleared before unregistration, under the write
 * side of genl_live_sem, whose read side each sender holds.  Senders run
 * in process context (they allocate with GFP_KERNEL).
 */
static DECLARE_RWSEM(genl_live_sem);
static bool genl_live;

static void multicast(struct sk_buff *msg)
{
	down_read(&genl_live_sem);
	if (genl_live)
		genlmsg_multicast(&snapblk_genl_family, msg, 0, 0, GFP_KERNEL);
	else
		nlmsg_free(msg);
	up_read(&genl_live_sem);
}

/*
 * Start an event message of @dev (a device message without stats), or
 * NULL: no listener can get it (the family is going), or no memory.
 */
static struct sk_buff *dev_event_start(u8 cmd, struct snapblk_dev *dev,
				       void **hdr)
{
	struct sk_buff *msg;

	if (!READ_ONCE(genl_live))
		return NULL;
	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return NULL;
	*hdr = genlmsg_put(msg, 0, 0, &snapblk_genl_family, 0, cmd);
	if (!*hdr || put_dev(msg, dev, false)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

/* Multicast DEVICE_ADDED or DEVICE_REMOVED of @dev to "events". */
void snapblk_genl_dev_event(u8 cmd, struct snapblk_dev *dev)
{
	struct sk_buff *msg;
	void *hdr;

	msg = dev_event_start(cmd, dev, &hdr);
	if (!msg)
		return;
	genlmsg_end(msg, hdr);
	multicast(msg);
}

/*
 * Multicast CHUNK_ERROR: chunk @chunk of @dev, content address @addr,
 * failed with positive errno @err; @refetch when the kernel queued the
 * fetch once more (the reads still wait) rather than failing the reads.
 * The caller holds @dev alive (a reference, or a request of it).
 */
void snapblk_genl_chunk_error(struct snapblk_dev *dev, u64 chunk,
			      const u8 *addr, int err, bool refetch)
{
	struct sk_buff *msg;
	void *hdr;

	msg = dev_event_start(SNAPBLK_EVENT_CHUNK_ERROR, dev, &hdr);
	if (!msg)
		return;
	if (nla_put_u64_64bit(msg, SNAPBLK_ATTR_CHUNK, chunk,
			      SNAPBLK_ATTR_PAD) ||
	    nla_put_u32(msg, SNAPBLK_ATTR_ERROR, err) ||
	    nla_put(msg, SNAPBLK_ATTR_ADDR, SNAPBLK_ADDR_LEN, addr) ||
	    nla_put_u32(msg, SNAPBLK_ATTR_REFETCH, refetch)) {
		nlmsg_free(msg);
		return;
	}
	genlmsg_end(msg, hdr);
	multicast(msg);
}

/* Multicast a clone: sent after the RNG was reseeded for it. */
void snapblk_genl_clone_event(u64 generation, u32 source, u32 reseed)
{
	struct sk_buff *msg;
	void *hdr;

	if (!READ_ONCE(genl_live))
		return;
	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return;
	hdr = genlmsg_put(msg, 0, 0, &snapblk_genl_family, 0,
			  SNAPBLK_EVENT_CLONE);
	if (!hdr ||
	    nla_put_u64_64bit(msg, SNAPBLK_ATTR_GENERATION, generation,
			      SNAPBLK_ATTR_PAD) ||
	    nla_put_u32(msg, SNAPBLK_ATTR_CLONE_SOURCE, source) ||
	    nla_put_u32(msg, SNAPBLK_ATTR_RESEED, reseed)) {
		nlmsg_free(msg);
		return;
	}
	genlmsg_end(msg, hdr);
	multicast(msg);
}

static const struct genl_multicast_group snapblk_genl_mcgrps[] = {
	{ .name = SNAPBLK_GENL_MCGRP_EVENTS },
};

/*
 * Registered last at module init and unregistered first at exit
 * (main.c), so no command runs against state that is not set up or is
 * torn down.  Unregistering waits for commands in progress.  Commands run
 * in parallel (no genl_mutex): each takes the lock of what it touches
 * (snapblk_devs_mutex, the clone state's), and a CREATE reading its
 * table holds none.
 */
static struct genl_family snapblk_genl_family __ro_after_init = {
	.name = SNAPBLK_GENL_NAME,
	.version = SNAPBLK_GENL_VERSION,
	.maxattr = SNAPBLK_ATTR_MAX,
	.policy = snapblk_genl_policy,
	.netnsok = false,
	.parallel_ops = true,
	.module = THIS_MODULE,
	.small_ops = snapblk_genl_ops,
	.n_small_ops = ARRAY_SIZE(snapblk_genl_ops),
	.resv_start_op = SNAPBLK_CMD_STATUS + 1,
	.mcgrps = snapblk_genl_mcgrps,
	.n_mcgrps = ARRAY_SIZE(snapblk_genl_mcgrps),
};

int __init snapblk_genl_init(void)
{
	int ret;

	ret = genl_register_family(&snapblk_genl_family);
	if (ret) {
		pr_err("cannot register generic netlink family %s: %d\n",
		       SNAPBLK_GENL_NAME, ret);
		return ret;
	}
	down_write(&genl_live_sem);
	genl_live = true;
	up_write(&genl_live_sem);
	return 0;
}

void snapblk_genl_exit(void)
{
	down_write(&genl_live_sem);
	genl_live = false;
	up_write(&genl_live_sem);
	genl_unregister_family(&snapblk_genl_family);
}

MODULE_ALIAS_GENL_FAMILY(SNAPBLK_GENL_NAME);
