// SPDX-License-Identifier: GPL-2.0
/*
 * Loading and unloading snapblk.ko: it loads, refuses a second copy, and
 * 100 load/unload cycles leave no slab objects behind.
 */
#include <stdint.h>

#include "kselftest_harness.h"
#include "lib.h"

#define CYCLES 100
#define MAX_CACHES 512

struct slab_count {
	char name[64];
	long active;
	long per_slab;
};

/* Snapshot /proc/slabinfo after dropping reclaimable caches. */
static int slab_snapshot(struct slab_count *c, int max)
{
	char line[512];
	FILE *f;
	int n = 0;

	sync();
	f = fopen("/proc/sys/vm/drop_caches", "w");
	if (f) {
		fputs("3\n", f);
		fclose(f);
	}
	f = fopen("/proc/slabinfo", "r");
	if (!f)
		return -errno;
	while (n < max && fgets(line, sizeof(line), f)) {
		long active, total, size, per_slab;

		if (line[0] == '#' || !strncmp(line, "slabinfo", 8))
			continue;
		if (sscanf(line, "%63s %ld %ld %ld %ld", c[n].name, &active,
			   &total, &size, &per_slab) != 5)
			continue;
		c[n].active = active;
		c[n].per_slab = per_slab;
		n++;
	}
	fclose(f);
	return n;
}

static void unload_if_loaded(void)
{
	if (sb_module_loaded("snapblk"))
		sb_unload("snapblk");
}

TEST(load_unload_cycles_leak_nothing)
{
	static struct slab_count before[MAX_CACHES], after[MAX_CACHES];
	const char *ko = sb_ko_path();
	int nb, na, i, j, cpus;

	unload_if_loaded();
	/* Warm up: first loads allocate caches that then stay. */
	for (i = 0; i < 10; i++) {
		ASSERT_EQ(0, sb_load(ko, NULL)) TH_LOG("load %s", ko);
		ASSERT_EQ(0, sb_unload("snapblk"));
	}
	nb = slab_snapshot(before, MAX_CACHES);
	ASSERT_GT(nb, 0) TH_LOG("cannot read /proc/slabinfo");

	for (i = 0; i < CYCLES; i++) {
		ASSERT_EQ(0, sb_load(ko, NULL)) TH_LOG("cycle %d: load", i);
		ASSERT_TRUE(sb_module_loaded("snapblk"));
		ASSERT_EQ(0, sb_unload("snapblk")) TH_LOG("cycle %d: unload", i);
		ASSERT_FALSE(sb_module_loaded("snapblk"));
	}
	na = slab_snapshot(after, MAX_CACHES);
	ASSERT_GT(na, 0);

	/*
	 * A leak of one object per cycle grows its cache by CYCLES objects.
	 * Per-CPU slabs make the counts move by up to a slab per CPU for
	 * reasons that have nothing to do with us; allow that much.
	 */
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	for (i = 0; i < na; i++) {
		for (j = 0; j < nb; j++) {
			long grew, slack;

			if (strcmp(after[i].name, before[j].name))
				continue;
			grew = after[i].active - before[j].active;
			slack = after[i].per_slab * (cpus + 1);
			EXPECT_LT(grew, CYCLES + slack)
				TH_LOG("slab cache %s grew by %ld objects over %d load/unload cycles",
				       after[i].name, grew, CYCLES);
			break;
		}
	}
}

TEST(second_load_is_refused_with_eexist)
{
	const char *ko = sb_ko_path();

	unload_if_loaded();
	ASSERT_EQ(0, sb_load(ko, NULL));
	EXPECT_EQ(-EEXIST, sb_load(ko, NULL));
	EXPECT_EQ(0, sb_unload("snapblk"));
}

TEST(unloaded_module_leaves_no_sysfs)
{
	unload_if_loaded();
	ASSERT_EQ(0, sb_load(sb_ko_path(), NULL));
	EXPECT_TRUE(sb_module_loaded("snapblk"));
	ASSERT_EQ(0, sb_unload("snapblk"));
	EXPECT_FALSE(sb_module_loaded("snapblk"));
	EXPECT_EQ(-ENOENT, sb_unload("snapblk"));
}

TEST_HARNESS_MAIN
