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
#include "dev.h"
#include "events.h"

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

static struct netlink_range_validation readahead_range = {
	.min = 0,
	.max = SNAPBLK_READAHEAD_MAX,
};

static struct netlink_range_validation prefetch_count_range = {
	.min = 1,
	.max = SNAPBLK_MANIFEST_MAX_CHUNKS,
};

static struct netlink_range_validation max_inflight_range = {
	.min = 1,
	.max = SNAPBLK_MAX_INFLIGHT_MAX,
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
	[SNAPBLK_ATTR_READAHEAD_CHUNKS] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &readahead_range),
	[SNAPBLK_ATTR_MAX_INFLIGHT] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &max_inflight_range),
	[SNAPBLK_ATTR_PREFETCH_STATE] = { .type = NLA_REJECT },
	[SNAPBLK_ATTR_PREFETCH_FD] = { .type = NLA_U32 },
	[SNAPBLK_ATTR_PREFETCH_COUNT] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &prefetch_count_range),
	[SNAPBLK_ATTR_HYDRATE] = NLA_POLICY_RANGE(NLA_U32, 1, 1),
	[SNAPBLK_ATTR_PREFETCH_STOP] = NLA_POLICY_RANGE(NLA_U32, 1, 1),
	[SNAPBLK_ATTR_TRACE_OFFSET] = { .type = NLA_U32 },
	[SNAPBLK_ATTR_TRACE_TOTAL] = { .type = NLA_REJECT },
	[SNAPBLK_ATTR_TRACE] = { .type = NLA_REJECT },
	[SNAPBLK_ATTR_LATENCY] = { .type = NLA_REJECT },
	[SNAPBLK_ATTR_TIERS] = { .type = NLA_REJECT },
	[SNAPBLK_ATTR_CACHE_STATS] = { .type = NLA_REJECT },
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

/* SNAPBLK_ATTR_LATENCY and SNAPBLK_ATTR_TIERS of @st. */
static int put_histograms(struct sk_buff *msg, struct snapblk_stats *st)
{
	u64 lat[SNAPBLK_LATENCY_BUCKETS];
	struct nlattr *nest;
	int i;

	for (i = 0; i < SNAPBLK_LATENCY_BUCKETS; i++)
		lat[i] = atomic64_read(&st->latency[i]);
	if (nla_put(msg, SNAPBLK_ATTR_LATENCY, sizeof(lat), lat))
		return -EMSGSIZE;
	nest = nla_nest_start(msg, SNAPBLK_ATTR_TIERS);
	if (!nest)
		return -EMSGSIZE;
	for (i = SNAPBLK_TIER_UNSPEC; i <= SNAPBLK_TIER_MAX; i++) {
		u64 v = atomic64_read(&st->tiers[i]);

		/* Attribute type 0 is reserved: the unreported tier is PAD's */
		if (v && i != SNAPBLK_TIER_UNSPEC &&
		    nla_put_u64_64bit(msg, i, v, SNAPBLK_TIER_UNSPEC))
			return -EMSGSIZE;
	}
	nla_nest_end(msg, nest);
	return 0;
}

/* Counter @stat of @dev. */
static u64 dev_stat(struct snapblk_dev *dev, int stat)
{
	switch (stat) {
	case SNAPBLK_STAT_CHUNKS:
		return dev->nr_chunks;
	case SNAPBLK_STAT_ZERO_CHUNKS:
		return dev->nr_zero;
	case SNAPBLK_STAT_RESIDENT:
		return atomic64_read(&dev->cl.resident);
	case SNAPBLK_STAT_INFLIGHT:
		return atomic_read(&dev->cl.waiting);
	case SNAPBLK_STAT_TRACE_CHUNKS:
		return min_t(u32, atomic_read(&dev->trace_len), dev->trace_cap);
	default:
		return snapblk_stat_read(&dev->cl.stats, stat);
	}
}

/* Put the attributes of a device message; @stats adds the counters. */
static int put_dev(struct sk_buff *msg, struct snapblk_dev *dev, bool stats)
{
	struct nlattr *nest;
	int i;

	if (nla_put_string(msg, SNAPBLK_ATTR_NAME, dev->name) ||
	    nla_put_u32(msg, SNAPBLK_ATTR_INDEX, dev->index) ||
	    nla_put_u64_64bit(msg, SNAPBLK_ATTR_IMAGE_SIZE, dev->image_size,
			      SNAPBLK_ATTR_PAD) ||
	    nla_put_u32(msg, SNAPBLK_ATTR_CHUNK_SIZE, dev->chunk_size) ||
	    nla_put(msg, SNAPBLK_ATTR_IMAGE_ID, SNAPBLK_IMAGE_ID_LEN,
		    dev->image_id) ||
	    nla_put_u32(msg, SNAPBLK_ATTR_FETCH_TIMEOUT_MS,
			READ_ONCE(dev->fetch_timeout_ms)) ||
	    nla_put_u32(msg, SNAPBLK_ATTR_READAHEAD_CHUNKS,
			READ_ONCE(dev->readahead_chunks)) ||
	    nla_put_u32(msg, SNAPBLK_ATTR_MAX_INFLIGHT,
			READ_ONCE(dev->max_inflight)) ||
	    nla_put_u32(msg, SNAPBLK_ATTR_PREFETCH_STATE,
			snapblk_bg_state(dev, NULL, NULL)))
		return -EMSGSIZE;
	if (!stats)
		return 0;
	nest = nla_nest_start(msg, SNAPBLK_ATTR_STATS);
	if (!nest)
		return -EMSGSIZE;
	for (i = SNAPBLK_STAT_UNSPEC + 1; i <= SNAPBLK_STAT_MAX; i++)
		if (i != SNAPBLK_STAT_PAD &&
		    nla_put_u64_64bit(msg, i, dev_stat(dev, i),
				      SNAPBLK_STAT_PAD))
			return -EMSGSIZE;
	nla_nest_end(msg, nest);
	return put_histograms(msg, &dev->cl.stats);
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
		.max_inflight = SNAPBLK_MAX_INFLIGHT_DEFAULT,
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
	if (a[SNAPBLK_ATTR_READAHEAD_CHUNKS])
		p.readahead_chunks = nla_get_u32(a[SNAPBLK_ATTR_READAHEAD_CHUNKS]);
	if (a[SNAPBLK_ATTR_MAX_INFLIGHT])
		p.max_inflight = nla_get_u32(a[SNAPBLK_ATTR_MAX_INFLIGHT]);
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
 * Read @count chunk indexes of a prefetch list from the caller's file
 * descriptor (like the chunk table: a regular file or memfd, read in the
 * caller's context, charged to its memory cgroup), each < @nr_chunks.
 */
static u32 *read_prefetch_list(struct genl_info *info, u32 count,
			       u64 nr_chunks)
{
	size_t len = (size_t)count * sizeof(u32);
	loff_t pos = 0;
	struct file *f;
	ssize_t n;
	u32 *list, i;

	f = fget(nla_get_u32(info->attrs[SNAPBLK_ATTR_PREFETCH_FD]));
	if (!f) {
		GENL_SET_ERR_MSG(info, "prefetch file descriptor is not open");
		return ERR_PTR(-EBADF);
	}
	if (!(f->f_mode & FMODE_READ) ||
	    !S_ISREG(file_inode(f)->i_mode)) {
		fput(f);
		GENL_SET_ERR_MSG(info, "prefetch list must be a readable regular file or memfd");
		return ERR_PTR(-EINVAL);
	}
	list = kvmalloc(len, GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL |
			__GFP_NOWARN);
	if (!list) {
		fput(f);
		GENL_SET_ERR_MSG(info, "no memory for the prefetch list");
		return ERR_PTR(-ENOMEM);
	}
	n = kernel_read(f, list, len, &pos);
	fput(f);
	if (n != len) {
		kvfree(list);
		GENL_SET_ERR_MSG(info, "prefetch list is shorter than its count");
		return ERR_PTR(n < 0 ? n : -EINVAL);
	}
	for (i = 0; i < count; i++) {
		if (list[i] >= nr_chunks) {
			kvfree(list);
			GENL_SET_ERR_MSG(info, "prefetch list names a chunk past the image");
			return ERR_PTR(-EINVAL);
		}
	}
	return list;
}

static int snapblk_genl_prefetch(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **a = info->attrs;
	struct snapblk_dev *dev;
	u32 *list = NULL, count = 0, i;
	u8 image_id[SNAPBLK_IMAGE_ID_LEN];
	u64 nr_chunks;
	int how, ret;

	if (GENL_REQ_ATTR_CHECK(info, SNAPBLK_ATTR_NAME))
		return -EINVAL;
	how = !!a[SNAPBLK_ATTR_PREFETCH_FD] + !!a[SNAPBLK_ATTR_HYDRATE] +
	      !!a[SNAPBLK_ATTR_PREFETCH_STOP];
	if (how != 1) {
		GENL_SET_ERR_MSG(info, "give one of a prefetch list, HYDRATE or PREFETCH_STOP");
		return -EINVAL;
	}
	if (!a[SNAPBLK_ATTR_PREFETCH_STOP] &&
	    GENL_REQ_ATTR_CHECK(info, SNAPBLK_ATTR_IMAGE_ID))
		return -EINVAL;
	if (a[SNAPBLK_ATTR_PREFETCH_FD] &&
	    GENL_REQ_ATTR_CHECK(info, SNAPBLK_ATTR_PREFETCH_COUNT))
		return -EINVAL;

	mutex_lock(&snapblk_devs_mutex);
	dev = snapblk_dev_find(nla_data(a[SNAPBLK_ATTR_NAME]));
	if (dev) {
		snapblk_dev_get(dev);
		memcpy(image_id, dev->image_id, sizeof(image_id));
		nr_chunks = dev->nr_chunks;
	}
	mutex_unlock(&snapblk_devs_mutex);
	if (!dev) {
		GENL_SET_ERR_MSG(info, "no such device");
		return -ENOENT;
	}
	ret = -EINVAL;
	if (a[SNAPBLK_ATTR_PREFETCH_STOP]) {
		snapblk_bg_stop(dev);
		goto reply;
	}
	if (memcmp(nla_data(a[SNAPBLK_ATTR_IMAGE_ID]), image_id,
		   SNAPBLK_IMAGE_ID_LEN)) {
		GENL_SET_ERR_MSG(info, "prefetch list is for another image");
		goto out;
	}
	if (a[SNAPBLK_ATTR_PREFETCH_FD]) {
		count = nla_get_u32(a[SNAPBLK_ATTR_PREFETCH_COUNT]);
		list = read_prefetch_list(info, count, nr_chunks);
		if (IS_ERR(list)) {
			ret = PTR_ERR(list);
			goto out;
		}
	} else {
		ret = -EFBIG;
		if (nr_chunks > U32_MAX) {
			GENL_SET_ERR_MSG(info, "image too large to hydrate");
			goto out;
		}
		count = nr_chunks;
		list = kvmalloc_array(count, sizeof(u32), GFP_KERNEL_ACCOUNT |
				      __GFP_RETRY_MAYFAIL | __GFP_NOWARN);
		ret = -ENOMEM;
		if (!list)
			goto out;
		for (i = 0; i < count; i++)
			list[i] = i;
	}
	snapblk_bg_prefetch(dev, list, count);
reply:
	ret = reply_dev(info, dev, SNAPBLK_CMD_PREFETCH);
out:
	snapblk_dev_put(dev);
	return ret;
}

static int snapblk_genl_trace_get(struct sk_buff *skb, struct genl_info *info)
{
	struct snapblk_dev *dev;
	struct sk_buff *msg;
	u32 off = 0, total, n, i;
	struct nlattr *nla;
	void *hdr;
	u32 *out;
	int ret;

	if (GENL_REQ_ATTR_CHECK(info, SNAPBLK_ATTR_NAME))
		return -EINVAL;
	if (info->attrs[SNAPBLK_ATTR_TRACE_OFFSET])
		off = nla_get_u32(info->attrs[SNAPBLK_ATTR_TRACE_OFFSET]);
	msg = genlmsg_new(SNAPBLK_TRACE_BATCH * sizeof(u32) + NLMSG_DEFAULT_SIZE,
			  GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &snapblk_genl_family, 0,
				SNAPBLK_CMD_TRACE_GET);
	ret = -EMSGSIZE;
	if (!hdr)
		goto err_free;

	mutex_lock(&snapblk_devs_mutex);
	dev = snapblk_dev_find(nla_data(info->attrs[SNAPBLK_ATTR_NAME]));
	if (!dev) {
		mutex_unlock(&snapblk_devs_mutex);
		GENL_SET_ERR_MSG(info, "no such device");
		ret = -ENOENT;
		goto err_free;
	}
	total = min_t(u32, atomic_read(&dev->trace_len), dev->trace_cap);
	n = off < total ? min(total - off, SNAPBLK_TRACE_BATCH) : 0;
	if (nla_put(msg, SNAPBLK_ATTR_IMAGE_ID, SNAPBLK_IMAGE_ID_LEN,
		    dev->image_id) ||
	    nla_put_u32(msg, SNAPBLK_ATTR_CHUNK_SIZE, dev->chunk_size) ||
	    nla_put_u32(msg, SNAPBLK_ATTR_TRACE_TOTAL, total))
		goto err_unlock;
	if (n) {
		nla = nla_reserve(msg, SNAPBLK_ATTR_TRACE, n * sizeof(u32));
		if (!nla)
			goto err_unlock;
		out = nla_data(nla);
		/* A slot being written this moment reads U32_MAX. */
		for (i = 0; i < n; i++)
			out[i] = READ_ONCE(dev->trace[off + i]);
	}
	mutex_unlock(&snapblk_devs_mutex);
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);

err_unlock:
	mutex_unlock(&snapblk_devs_mutex);
err_free:
	nlmsg_free(msg);
	return ret;
}

static int snapblk_genl_cache_status(struct sk_buff *skb,
				     struct genl_info *info)
{
	u64 st[SNAPBLK_CACHE_STAT_MAX + 1] = { 0 };
	struct sk_buff *msg;
	struct nlattr *nest;
	void *hdr;
	int i;

	snapblk_cache_stats(st);
	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &snapblk_genl_family, 0,
				SNAPBLK_CMD_CACHE_STATUS);
	if (!hdr)
		goto err_free;
	nest = nla_nest_start(msg, SNAPBLK_ATTR_CACHE_STATS);
	if (!nest)
		goto err_free;
	for (i = SNAPBLK_CACHE_STAT_UNSPEC + 1; i <= SNAPBLK_CACHE_STAT_MAX; i++)
		if (i != SNAPBLK_CACHE_STAT_PAD &&
		    nla_put_u64_64bit(msg, i, st[i], SNAPBLK_CACHE_STAT_PAD))
			goto err_free;
	nla_nest_end(msg, nest);
	if (put_histograms(msg, &snapblk_global_stats))
		goto err_free;
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);

err_free:
	nlmsg_free(msg);
	return -EMSGSIZE;
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
	{
		.cmd = SNAPBLK_CMD_PREFETCH,
		.doit = snapblk_genl_prefetch,
		.flags = GENL_ADMIN_PERM,
	},
	{
		/* Which chunks a tenant read, in order: not for everyone. */
		.cmd = SNAPBLK_CMD_TRACE_GET,
		.doit = snapblk_genl_trace_get,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = SNAPBLK_CMD_CACHE_STATUS,
		.doit = snapblk_genl_cache_status,
	},
};

/*
 * The event sink (events.h): registered once the family is, unregistered
 * before it goes, so every event below is sent while it is registered.
 * Senders run in process context (they allocate with GFP_KERNEL).
 */
static void multicast(struct sk_buff *msg)
{
	genlmsg_multicast(&snapblk_genl_family, msg, 0, 0, GFP_KERNEL);
}

/*
 * Start an event message of @dev (a device message without stats), or
 * NULL without memory.
 */
static struct sk_buff *dev_event_start(u8 cmd, struct snapblk_dev *dev,
				       void **hdr)
{
	struct sk_buff *msg;

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
static void genl_dev_event(u8 cmd, struct snapblk_dev *dev)
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
 * The caller holds @cl's device alive (a reference, or a request of it).
 */
static void genl_chunk_error(struct snapblk_client *cl, u64 chunk,
			     const u8 *addr, int err, bool refetch)
{
	struct snapblk_dev *dev = snapblk_client_dev(cl);
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
static void genl_clone_event(u64 generation, u32 source, u32 reseed)
{
	struct sk_buff *msg;
	void *hdr;

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

static const struct snapblk_event_ops genl_event_ops = {
	.dev_event = genl_dev_event,
	.chunk_error = genl_chunk_error,
	.clone = genl_clone_event,
};

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
	snapblk_events_register(&genl_event_ops);
	return 0;
}

void snapblk_genl_exit(void)
{
	snapblk_events_unregister();
	genl_unregister_family(&snapblk_genl_family);
}

MODULE_ALIAS_GENL_FAMILY(SNAPBLK_GENL_NAME);
