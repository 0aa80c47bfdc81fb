// SPDX-License-Identifier: GPL-2.0
/*
 * The "snapblk" generic netlink family: it resolves through libnl with its
 * version and "events" multicast group while the module is loaded, answers
 * GET_INFO, refuses malformed requests with clean errnos, and disappears
 * with the module.
 */
#include <netlink/genl/genl.h>

#include "kselftest_harness.h"
#include "lib.h"
#include "genl.h"

FIXTURE(family) {
	struct sb_nl nl;
};

FIXTURE_SETUP(family)
{
	if (sb_module_loaded("snapblk"))
		sb_unload("snapblk");
	ASSERT_EQ(0, sb_load(sb_ko_path(), NULL));
	ASSERT_EQ(0, sb_nl_open(&self->nl));
}

FIXTURE_TEARDOWN(family)
{
	sb_nl_close(&self->nl);
	sb_unload("snapblk");
}

TEST_F(family, resolves_with_version_and_events_group)
{
	EXPECT_GT(self->nl.family, 0);
	EXPECT_EQ(SNAPBLK_GENL_VERSION, self->nl.version);
	EXPECT_GT(sb_nl_mcgrp(&self->nl, SNAPBLK_GENL_MCGRP_EVENTS), 0);
	EXPECT_EQ(-ENOENT, sb_nl_mcgrp(&self->nl, "no-such-group"));
}

TEST_F(family, get_info_matches_module)
{
	struct sb_info info;
	char sysfs_version[64];

	ASSERT_EQ(0, sb_nl_get_info(&self->nl, &info));
	EXPECT_EQ(SNAPBLK_API_VERSION, info.api_version);
	ASSERT_EQ(0, sb_read_file("/sys/module/snapblk/version",
				  sysfs_version, sizeof(sysfs_version)));
	EXPECT_STREQ(sysfs_version, info.module_version);
}

static int put_unknown_attr(struct nl_msg *msg, void *arg)
{
	(void)arg;
	return nla_put_u32(msg, SNAPBLK_ATTR_MAX + 1, 1);
}

static int put_short_u32(struct nl_msg *msg, void *arg)
{
	(void)arg;
	return nla_put_u8(msg, SNAPBLK_ATTR_API_VERSION, 1);
}

static int put_long_string(struct nl_msg *msg, void *arg)
{
	char s[SNAPBLK_VERSION_LEN * 2];

	(void)arg;
	memset(s, 'x', sizeof(s) - 1);
	s[sizeof(s) - 1] = '\0';
	return nla_put_string(msg, SNAPBLK_ATTR_MODULE_VERSION, s);
}

TEST_F(family, unknown_attribute_is_refused)
{
	EXPECT_EQ(-EINVAL, sb_nl_request(&self->nl, SNAPBLK_CMD_GET_INFO,
					 put_unknown_attr, NULL, NULL));
	EXPECT_STRNE("", self->nl.extack);
}

TEST_F(family, wrong_size_attribute_is_refused)
{
	EXPECT_EQ(-EINVAL, sb_nl_request(&self->nl, SNAPBLK_CMD_GET_INFO,
					 put_short_u32, NULL, NULL));
}

TEST_F(family, oversized_string_is_refused)
{
	EXPECT_EQ(-EINVAL, sb_nl_request(&self->nl, SNAPBLK_CMD_GET_INFO,
					 put_long_string, NULL, NULL));
}

TEST_F(family, unknown_command_is_refused)
{
	EXPECT_EQ(-EOPNOTSUPP, sb_nl_request(&self->nl, SNAPBLK_CMD_MAX + 1,
					     NULL, NULL, NULL));
}

TEST(family_goes_away_with_module)
{
	struct sb_nl nl;

	if (sb_module_loaded("snapblk"))
		sb_unload("snapblk");
	EXPECT_EQ(-ENOENT, sb_nl_open(&nl));
	ASSERT_EQ(0, sb_load(sb_ko_path(), NULL));
	ASSERT_EQ(0, sb_nl_open(&nl));
	sb_nl_close(&nl);
	ASSERT_EQ(0, sb_unload("snapblk"));
	EXPECT_EQ(-ENOENT, sb_nl_open(&nl));
}

TEST_HARNESS_MAIN
