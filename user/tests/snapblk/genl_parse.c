// SPDX-License-Identifier: GPL-2.0
/*
 * What `snapblk status` shows comes from decoding the module's device
 * and cache messages: an API-4 device message (as kmod/genl.c builds
 * it, u64 padding in the tiers nest included) yields the settings,
 * prefetch state, latency histogram and tiers; an API-3 one decodes
 * with none of them marked present; malformed attributes are -EPROTO,
 * not garbage; every counter has its snake-case name.
 */
#include <errno.h>
#include <string.h>

#include <netlink/attr.h>
#include <netlink/msg.h>

#include "genl.h"
#include "kselftest_harness.h"

FIXTURE(msg)
{
	struct nl_msg *msg;
	struct nlattr *tb[SNAPBLK_ATTR_MAX + 1];
};

FIXTURE_SETUP(msg)
{
	static const uint8_t id[SNAPBLK_IMAGE_ID_LEN] = { 0xab, 0xcd };

	self->msg = nlmsg_alloc();
	ASSERT_NE(NULL, self->msg);
	ASSERT_NE(NULL, nlmsg_put(self->msg, 0, 0, 0x10, 0, 0));
	ASSERT_EQ(0, nla_put_string(self->msg, SNAPBLK_ATTR_NAME, "vm1"));
	ASSERT_EQ(0, nla_put_u32(self->msg, SNAPBLK_ATTR_INDEX, 3));
	ASSERT_EQ(0, nla_put_u64(self->msg, SNAPBLK_ATTR_IMAGE_SIZE, 1 << 20));
	ASSERT_EQ(0, nla_put_u32(self->msg, SNAPBLK_ATTR_CHUNK_SIZE, 65536));
	ASSERT_EQ(0, nla_put(self->msg, SNAPBLK_ATTR_IMAGE_ID, sizeof(id),
			     id));
	ASSERT_EQ(0, nla_put_u32(self->msg, SNAPBLK_ATTR_FETCH_TIMEOUT_MS,
				 30000));
}

FIXTURE_TEARDOWN(msg)
{
	nlmsg_free(self->msg);
}

/* Parse what the test put into the message. */
static int parse(struct __test_metadata *_metadata, FIXTURE_DATA(msg) *self,
		 struct sb_dev *d)
{
	ASSERT_EQ(0, nlmsg_parse(nlmsg_hdr(self->msg), 0, self->tb,
				 SNAPBLK_ATTR_MAX, NULL));
	return sb_nl_parse_dev(self->tb, d);
}

static void put_api4(struct __test_metadata *_metadata, struct nl_msg *msg)
{
	uint64_t lat[SNAPBLK_LATENCY_BUCKETS] = { 0 };
	struct nlattr *nest;

	ASSERT_EQ(0, nla_put_u32(msg, SNAPBLK_ATTR_READAHEAD_CHUNKS, 8));
	ASSERT_EQ(0, nla_put_u32(msg, SNAPBLK_ATTR_MAX_INFLIGHT, 32));
	ASSERT_EQ(0, nla_put_u32(msg, SNAPBLK_ATTR_PREFETCH_STATE,
				 SNAPBLK_PREFETCH_DONE));
	nest = nla_nest_start(msg, SNAPBLK_ATTR_STATS);
	ASSERT_NE(NULL, nest);
	ASSERT_EQ(0, nla_put_u64(msg, SNAPBLK_STAT_CHUNKS, 16));
	ASSERT_EQ(0, nla_put_u64(msg, SNAPBLK_STAT_TRACE_CHUNKS, 9));
	ASSERT_EQ(0, nla_put_u64(msg, SNAPBLK_STAT_FETCHES_DONE, 5));
	nla_nest_end(msg, nest);
	lat[0] = 1;
	lat[10] = 4;
	ASSERT_EQ(0, nla_put(msg, SNAPBLK_ATTR_LATENCY, sizeof(lat), lat));
	nest = nla_nest_start(msg, SNAPBLK_ATTR_TIERS);
	ASSERT_NE(NULL, nest);
	/* what nla_put_u64_64bit() pads with where it must align */
	ASSERT_EQ(0, nla_put(msg, SNAPBLK_TIER_UNSPEC, 0, NULL));
	ASSERT_EQ(0, nla_put_u64(msg, SNAPBLK_TIER_DISK, 2));
	ASSERT_EQ(0, nla_put_u64(msg, SNAPBLK_TIER_STORE + 1, 3));
	/* a tier of a newer module: ignored */
	ASSERT_EQ(0, nla_put_u64(msg, SNAPBLK_TIER_MAX + 1, 7));
	nla_nest_end(msg, nest);
}

TEST_F(msg, api4_device_message)
{
	struct sb_dev d;

	put_api4(_metadata, self->msg);
	ASSERT_EQ(0, parse(_metadata, self, &d));
	EXPECT_STREQ("vm1", d.name);
	EXPECT_EQ(3, d.index);
	EXPECT_TRUE(d.has_readahead);
	EXPECT_EQ(8, d.readahead_chunks);
	EXPECT_TRUE(d.has_max_inflight);
	EXPECT_EQ(32, d.max_inflight);
	EXPECT_TRUE(d.has_prefetch_state);
	EXPECT_EQ(SNAPBLK_PREFETCH_DONE, d.prefetch_state);
	EXPECT_EQ(9, d.stats[SNAPBLK_STAT_TRACE_CHUNKS]);
	EXPECT_TRUE(d.stat_present & 1ULL << SNAPBLK_STAT_FETCHES_DONE);
	EXPECT_TRUE(d.hist.has_latency);
	EXPECT_EQ(1, d.hist.latency[0]);
	EXPECT_EQ(4, d.hist.latency[10]);
	EXPECT_TRUE(d.hist.has_tiers);
	EXPECT_EQ(1U << SNAPBLK_TIER_DISK | 1U << (SNAPBLK_TIER_STORE + 1),
		  d.hist.tier_present);
	EXPECT_EQ(2, d.hist.tiers[SNAPBLK_TIER_DISK]);
	EXPECT_EQ(3, d.hist.tiers[SNAPBLK_TIER_STORE + 1]);
}

TEST_F(msg, api3_device_message_has_nothing_of_api4)
{
	struct sb_dev d;
	struct nlattr *nest;

	nest = nla_nest_start(self->msg, SNAPBLK_ATTR_STATS);
	ASSERT_NE(NULL, nest);
	ASSERT_EQ(0, nla_put_u64(self->msg, SNAPBLK_STAT_CHUNKS, 16));
	nla_nest_end(self->msg, nest);
	ASSERT_EQ(0, parse(_metadata, self, &d));
	EXPECT_EQ(65536, d.chunk_size);
	EXPECT_EQ(0xab, d.image_id[0]);
	EXPECT_FALSE(d.has_readahead);
	EXPECT_FALSE(d.has_max_inflight);
	EXPECT_FALSE(d.has_prefetch_state);
	EXPECT_FALSE(d.hist.has_latency);
	EXPECT_FALSE(d.hist.has_tiers);
	EXPECT_EQ(1ULL << SNAPBLK_STAT_CHUNKS, d.stat_present);
}

TEST_F(msg, short_latency_is_refused)
{
	struct sb_dev d;
	uint64_t lat[3] = { 0 };

	ASSERT_EQ(0, nla_put(self->msg, SNAPBLK_ATTR_LATENCY,
			     sizeof(lat) - 1, lat));
	EXPECT_EQ(-EPROTO, parse(_metadata, self, &d));
}

TEST_F(msg, tier_of_the_wrong_size_is_refused)
{
	struct sb_dev d;
	struct nlattr *nest;

	nest = nla_nest_start(self->msg, SNAPBLK_ATTR_TIERS);
	ASSERT_NE(NULL, nest);
	ASSERT_EQ(0, nla_put_u32(self->msg, SNAPBLK_TIER_DISK, 2));
	nla_nest_end(self->msg, nest);
	EXPECT_EQ(-EPROTO, parse(_metadata, self, &d));
}

TEST_F(msg, prefetch_state_of_the_wrong_size_is_refused)
{
	struct sb_dev d;

	ASSERT_EQ(0, nla_put_u64(self->msg, SNAPBLK_ATTR_PREFETCH_STATE, 1));
	EXPECT_EQ(-EPROTO, parse(_metadata, self, &d));
}

TEST(every_counter_has_a_name)
{
	int i, missing = 0;

	for (i = 1; i <= SNAPBLK_STAT_MAX; i++)
		if (i != SNAPBLK_STAT_PAD && !sb_stat_name(i)) {
			TH_LOG("SNAPBLK_STAT %d has no name", i);
			missing++;
		}
	for (i = 1; i <= SNAPBLK_CACHE_STAT_MAX; i++)
		if (i != SNAPBLK_CACHE_STAT_PAD && !sb_cache_stat_name(i)) {
			TH_LOG("SNAPBLK_CACHE_STAT %d has no name", i);
			missing++;
		}
	EXPECT_EQ(0, missing);
	EXPECT_STREQ("trace_chunks", sb_stat_name(SNAPBLK_STAT_TRACE_CHUNKS));
	EXPECT_STREQ("prefetch_wasted",
		     sb_stat_name(SNAPBLK_STAT_PREFETCH_WASTED));
	EXPECT_STREQ("limit_bytes",
		     sb_cache_stat_name(SNAPBLK_CACHE_STAT_LIMIT_BYTES));
	EXPECT_EQ(NULL, sb_stat_name(SNAPBLK_STAT_PAD));
	EXPECT_EQ(NULL, sb_stat_name(SNAPBLK_STAT_MAX + 1));
}

TEST(tier_and_state_names)
{
	EXPECT_STREQ("disk", sb_tier_name(SNAPBLK_TIER_DISK));
	EXPECT_STREQ("store0", sb_tier_name(SNAPBLK_TIER_STORE));
	EXPECT_STREQ("store7", sb_tier_name(SNAPBLK_TIER_MAX));
	EXPECT_EQ(NULL, sb_tier_name(SNAPBLK_TIER_MAX + 1));
	EXPECT_STREQ("running",
		     sb_prefetch_state_name(SNAPBLK_PREFETCH_RUNNING));
	EXPECT_STREQ("stopped",
		     sb_prefetch_state_name(SNAPBLK_PREFETCH_STOPPED));
	EXPECT_STREQ("unknown", sb_prefetch_state_name(99));
}

TEST_HARNESS_MAIN
