/* SPDX-License-Identifier: GPL-2.0 */
/*
 * snapblk private header: what every file of the module shares, and the
 * clone hook's interfaces.  Included first by every kmod/ source file so
 * that pr_fmt() applies everywhere.  The block side has a header per
 * layer, each including only the ones below it:
 *
 *	stats.h   counters
 *	cache.h   the content store and per-client residency
 *	fetch.h   pending fetches, the daemon protocol
 *	dev.h     devices and their background fetching
 *	events.h  what is told to userspace (genl.c registers the sink)
 */
#ifndef SNAPBLK_H
#define SNAPBLK_H

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/types.h>
#include <uapi/linux/snapblk.h>

/* Module version, reported by modinfo and SNAPBLK_CMD_GET_INFO. */
#define SNAPBLK_VERSION "0.6.0"

/* genl.c: the control family (registered last, unregistered first) */
int snapblk_genl_init(void);
void snapblk_genl_exit(void);

/* clone.c: the generation state (see there for the ordering) */
struct snapblk_clone_stats {
	u64 events;		/* SNAPBLK_CLONE_STAT_* */
	u64 duplicates;
	u64 reseeds;
	u64 reseed_failures;
	u32 last_source;	/* SNAPBLK_CLONE_SOURCE_* of the last clone */
};

int snapblk_clone_event(u32 source, const u8 *id, bool kernel_reseeded,
			u64 *generation);
u32 snapblk_clone_reseed(const u8 *id);		/* never sleeps */
void snapblk_clone_publish(u32 source, const u8 *id, u32 reseed,
			   u64 *generation);
void snapblk_clone_set_id(const u8 *id);
void snapblk_clone_get(u64 *generation, u8 *id,
		       struct snapblk_clone_stats *st);
u32 snapblk_clone_sources(void);
const char *snapblk_clone_source_name(u32 source);
int snapblk_clone_init(void);
void snapblk_clone_exit(void);

/* gendev.c: /dev/snapblk-gen, sysfs, uevents */
void snapblk_gendev_publish(u64 generation, u32 source, u32 reseed,
			    u64 time_ns);
int snapblk_gendev_init(void);
void snapblk_gendev_exit(void);

/* clone_vmgenid.c, clone_genpage.c: the clone sources */
bool snapblk_vmgenid_active(void);
int snapblk_vmgenid_init(void);
void snapblk_vmgenid_exit(void);
bool snapblk_genpage_active(void);
int snapblk_genpage_init(void);
void snapblk_genpage_exit(void);

#endif /* SNAPBLK_H */
