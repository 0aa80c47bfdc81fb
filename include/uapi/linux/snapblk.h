/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * snapblk: chunked lazy block device and VM clone notification.
 *
 * This is the one header shared by the kernel module (kmod/) and the
 * userspace tools (user/).  Everything in it is ABI: enums only grow at
 * their end (before the __*_MAX sentinel), structures carry explicit
 * padding and only grow at their end.
 *
 * Generic netlink family "snapblk"
 * ================================
 *
 * Resolve the family by name (SNAPBLK_GENL_NAME).  The family version
 * (SNAPBLK_GENL_VERSION) is bumped when a command's meaning changes in a
 * way old userspace cannot detect; adding commands or attributes does not
 * bump it.  Attributes are validated strictly: unknown attributes and
 * attributes of the wrong size are refused with -EINVAL and an extack
 * message.  Every command that changes state requires CAP_NET_ADMIN
 * (GENL_ADMIN_PERM).
 *
 * Commands:
 *
 *   SNAPBLK_CMD_GET_INFO   (unprivileged, do)
 *     request:  no attributes
 *     reply:    SNAPBLK_ATTR_MODULE_VERSION  (NUL-terminated string)
 *               SNAPBLK_ATTR_API_VERSION     (u32, SNAPBLK_API_VERSION)
 *
 * Multicast groups:
 *
 *   SNAPBLK_GENL_MCGRP_EVENTS ("events"): device and clone events.  No
 *   event is defined yet; listeners may subscribe already.
 */
#ifndef _UAPI_LINUX_SNAPBLK_H
#define _UAPI_LINUX_SNAPBLK_H

#include <linux/types.h>

#define SNAPBLK_GENL_NAME		"snapblk"
#define SNAPBLK_GENL_VERSION		1
#define SNAPBLK_GENL_MCGRP_EVENTS	"events"

/*
 * Version of this header's ABI as a whole, reported by
 * SNAPBLK_CMD_GET_INFO so that tools can tell an old module from a new
 * one without parsing version strings.  Bumped whenever a command,
 * attribute or structure is added.
 */
#define SNAPBLK_API_VERSION		1

enum snapblk_cmd {
	SNAPBLK_CMD_UNSPEC,
	SNAPBLK_CMD_GET_INFO,

	__SNAPBLK_CMD_MAX,
};

#define SNAPBLK_CMD_MAX (__SNAPBLK_CMD_MAX - 1)

enum snapblk_attr {
	SNAPBLK_ATTR_UNSPEC,
	SNAPBLK_ATTR_MODULE_VERSION,	/* string, at most SNAPBLK_VERSION_LEN */
	SNAPBLK_ATTR_API_VERSION,	/* u32 */

	__SNAPBLK_ATTR_MAX,
};

#define SNAPBLK_ATTR_MAX (__SNAPBLK_ATTR_MAX - 1)

/* Longest module version string, including the terminating NUL. */
#define SNAPBLK_VERSION_LEN		32

#endif /* _UAPI_LINUX_SNAPBLK_H */
