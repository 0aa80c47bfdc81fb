// SPDX-License-Identifier: GPL-2.0
/* The event sink (see events.h). */
#include "snapblk.h"
#include "events.h"

#include <linux/rwsem.h>

/*
 * events_sem: its write side changes the sink, its read side is held by
 * every sender for as long as it uses it, so unregistering waits for them.
 */
static DECLARE_RWSEM(events_sem);
static const struct snapblk_event_ops *events_sink;

void snapblk_events_register(const struct snapblk_event_ops *ops)
{
	down_write(&events_sem);
	events_sink = ops;
	up_write(&events_sem);
}

void snapblk_events_unregister(void)
{
	down_write(&events_sem);
	events_sink = NULL;
	up_write(&events_sem);
}

void snapblk_event_dev(u8 cmd, struct snapblk_dev *dev)
{
	down_read(&events_sem);
	if (events_sink)
		events_sink->dev_event(cmd, dev);
	up_read(&events_sem);
}

void snapblk_event_chunk_error(struct snapblk_client *cl, u64 chunk,
			       const u8 *addr, int err, bool refetch)
{
	down_read(&events_sem);
	if (events_sink)
		events_sink->chunk_error(cl, chunk, addr, err, refetch);
	up_read(&events_sem);
}

void snapblk_event_clone(u64 generation, u32 source, u32 reseed)
{
	down_read(&events_sem);
	if (events_sink)
		events_sink->clone(generation, source, reseed);
	up_read(&events_sem);
}
