/* SPDX-License-Identifier: GPL-2.0 */
/*
 * snapblk private header: what the module's files share.  Included first
 * by every kmod/ source file so that pr_fmt() applies everywhere.
 */
#ifndef SNAPBLK_H
#define SNAPBLK_H

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/types.h>
#include <uapi/linux/snapblk.h>

/* Module version, reported by modinfo and SNAPBLK_CMD_GET_INFO. */
#define SNAPBLK_VERSION "0.1.0"

/* genl.c: the "snapblk" generic netlink family. */
int snapblk_genl_init(void);
void snapblk_genl_exit(void);

#endif /* SNAPBLK_H */
