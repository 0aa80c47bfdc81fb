/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Events (events.c): what the devices, the fetch path and the clone hook
 * tell userspace, without knowing how.  The control family (genl.c)
 * registers the one sink once it is registered itself and unregisters it
 * before it goes; events raised while no sink is registered are dropped.
 * So the devices and netlink reach each other only through this API.
 */
#ifndef SNAPBLK_EVENTS_H
#define SNAPBLK_EVENTS_H

#include <linux/types.h>

struct snapblk_dev;
struct snapblk_client;

struct snapblk_event_ops {
	/* SNAPBLK_EVENT_DEVICE_ADDED or _REMOVED. */
	void (*dev_event)(u8 cmd, struct snapblk_dev *dev);
	/* A chunk of @cl failed (@refetch: it is being fetched again). */
	void (*chunk_error)(struct snapblk_client *cl, u64 chunk,
			    const u8 *addr, int err, bool refetch);
	void (*clone)(u64 generation, u32 source, u32 reseed);
};

/*
 * Senders run in process context and may sleep; the caller holds what
 * it names alive (a reference, or a request of the device).
 */
void snapblk_event_dev(u8 cmd, struct snapblk_dev *dev);
void snapblk_event_chunk_error(struct snapblk_client *cl, u64 chunk,
			       const u8 *addr, int err, bool refetch);
void snapblk_event_clone(u64 generation, u32 source, u32 reseed);

/* Unregistering waits for the senders in progress. */
void snapblk_events_register(const struct snapblk_event_ops *ops);
void snapblk_events_unregister(void);

#endif /* SNAPBLK_EVENTS_H */
