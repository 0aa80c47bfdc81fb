/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Talking to the snapblk generic netlink family through libnl-genl.
 * Every function returns 0 (or a non-negative value) on success and a
 * negative errno on failure: the kernel's own errno for a refused command,
 * so callers can tell EPERM from EINVAL from EBUSY.
 */
#ifndef SNAPBLK_USER_GENL_H
#define SNAPBLK_USER_GENL_H

#include <stdint.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <linux/snapblk.h>

struct sb_nl {
	struct nl_sock *sk;
	int family;		/* resolved family id */
	unsigned int version;	/* family version the kernel reports */
	char extack[256];	/* kernel's message for the last error, or "" */
};

/*
 * Connect and resolve the family.  -ENOENT: the family is not registered
 * (module not loaded).
 */
int sb_nl_open(struct sb_nl *nl);
void sb_nl_close(struct sb_nl *nl);

/* Multicast group id of @name, or a negative errno. */
int sb_nl_mcgrp(struct sb_nl *nl, const char *name);

/*
 * Send command @cmd with the attributes @put adds (may be NULL), wait for
 * the kernel's answer and call @parse for each reply message with its
 * attributes parsed (tb has SNAPBLK_ATTR_MAX + 1 entries; may be NULL).
 */
int sb_nl_request(struct sb_nl *nl, uint8_t cmd,
		  int (*put)(struct nl_msg *msg, void *arg),
		  int (*parse)(struct nlattr **tb, void *arg), void *arg);

struct sb_info {
	char module_version[SNAPBLK_VERSION_LEN];
	uint32_t api_version;
};

int sb_nl_get_info(struct sb_nl *nl, struct sb_info *info);

/* What to tell the user for errno @err returned by sb_nl_open(). */
const char *sb_nl_open_hint(int err);

#endif
