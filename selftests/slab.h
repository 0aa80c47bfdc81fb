/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Slab accounting for the selftests' leak checks: counts of objects in use
 * per slab cache, taken as precisely as a kernel without kmemleak allows.
 * See "How the leak check works" in Documentation/testing.md.
 */
#ifndef SNAPBLK_SELFTEST_SLAB_H
#define SNAPBLK_SELFTEST_SLAB_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MAX_CACHES 512

#ifndef SETTLE_SECONDS
#define SETTLE_SECONDS 3
#endif

struct slab_count {
	char name[64];
	long active;
};

/*
 * Write 1 to every /sys/kernel/slab/<cache>/shrink: SLUB then returns the
 * objects cached on each CPU to their slabs, so that /proc/slabinfo counts
 * the objects really in use instead of whole per-CPU slabs.
 */
static inline void slab_shrink_all(void)
{
	char path[512];
	struct dirent *de;
	DIR *d = opendir("/sys/kernel/slab");

	if (!d)
		return;
	while ((de = readdir(d))) {
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/kernel/slab/%s/shrink",
			 de->d_name);
		fd = open(path, O_WRONLY);
		if (fd < 0)
			continue;
		/* A failed write (an alias of a merged cache) is harmless. */
		if (write(fd, "1", 1) != 1)
			errno = 0;
		close(fd);
	}
	closedir(d);
}

static inline void drop_caches(void)
{
	FILE *f = fopen("/proc/sys/vm/drop_caches", "w");

	if (f) {
		fputs("3\n", f);
		fclose(f);
	}
}

/* Snapshot /proc/slabinfo after dropping reclaimable caches. */
static inline int slab_snapshot(struct slab_count *c, int max)
{
	char line[512];
	FILE *f;
	int n = 0;

	/*
	 * Dropping caches also runs the kfree_rcu() shrinker, which hands
	 * batched frees to RCU at once instead of after up to 5 s; then wait
	 * for the grace period and the callbacks, and drop again.
	 */
	sync();
	drop_caches();
	sleep(SETTLE_SECONDS);
	drop_caches();
	slab_shrink_all();
	f = fopen("/proc/slabinfo", "r");
	if (!f)
		return -errno;
	while (n < max && fgets(line, sizeof(line), f)) {
		if (line[0] == '#' || !strncmp(line, "slabinfo", 8))
			continue;
		if (sscanf(line, "%63s %ld", c[n].name, &c[n].active) != 2)
			continue;
		n++;
	}
	fclose(f);
	return n;
}

/*
 * Caches a module's leak shows in: kmalloc (where all its plain
 * allocations come from) and its own caches.  A module's own cache that
 * still holds objects when the module destroys it makes the kernel log a
 * BUG line, which fails the VM run anyway.  File-system caches (dentries,
 * inodes, radix tree nodes) are left out: the 9p root and tmpfs move them
 * by hundreds of objects whatever the module does.
 */
static inline int watched_cache(const char *name)
{
	return !strncmp(name, "kmalloc-", 8) || !strncmp(name, "snapblk", 7);
}

/*
 * The largest growth, in objects, of a watched_cache() between snapshots
 * @before (@nb entries) and @after (@na entries), naming it in @worst.
 */
static inline long slab_max_growth(const struct slab_count *before, int nb,
				   const struct slab_count *after, int na,
				   char worst[64])
{
	long max = 0;
	int i, j;

	strcpy(worst, "(none)");
	for (i = 0; i < na; i++) {
		if (!watched_cache(after[i].name))
			continue;
		for (j = 0; j < nb; j++) {
			if (strcmp(after[i].name, before[j].name))
				continue;
			if (after[i].active - before[j].active > max) {
				max = after[i].active - before[j].active;
				memcpy(worst, after[i].name, 64);
			}
			break;
		}
	}
	return max;
}

#endif
