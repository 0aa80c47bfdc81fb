// SPDX-License-Identifier: GPL-2.0
/*
 * Loading and unloading snapblk.ko: it loads, refuses a second copy, and
 * 100 load/unload cycles leave no slab objects behind (a check shown to
 * catch a module that leaks one object per load).
 */
#include <stdint.h>

#include "kselftest_harness.h"
#include "lib.h"
#include "slab.h"

/* Load/unload cycles of the leak check; SNAPBLK_LEAK_CYCLES overrides. */
static int CYCLES = 100;
static void unload_if_loaded(const char *name)
{
	if (sb_module_loaded(name))
		sb_unload(name);
}

/*
 * Load and unload module @name from @ko with @params CYCLES times (after
 * 10 warm-up cycles); fill @grew with the growth of each slab cache, in
 * objects, in the order of @names.  Returns the number of caches, or a
 * negative errno if a load or unload failed.
 */
static int slab_growth(const char *ko, const char *name, const char *params,
		       struct slab_count *grew)
{
	static struct slab_count before[MAX_CACHES];
	char local[256];
	int nb = 0, na, i, j, ret;

	/*
	 * Load from tmpfs: reading the module over the 9p root each time
	 * would churn kmalloc caches by hundreds of objects.
	 */
	snprintf(local, sizeof(local), "/tmp/leakcheck-%s.ko", name);
	ret = sb_copy_file(ko, local);
	if (ret)
		return ret;
	ko = local;
	if (sb_module_loaded(name))
		sb_unload(name);
	for (i = 0; i < 10 + CYCLES; i++) {
		if (i == 10) {
			nb = slab_snapshot(before, MAX_CACHES);
			if (nb <= 0)
				return nb ? nb : -ENODATA;
		}
		ret = sb_load(ko, params);
		if (ret)
			return ret;
		if (!sb_module_loaded(name))
			return -ENOENT;
		ret = sb_unload(name);
		if (ret)
			return ret;
		if (sb_module_loaded(name))
			return -EBUSY;
	}
	na = slab_snapshot(grew, MAX_CACHES);
	if (na <= 0)
		return na ? na : -ENODATA;
	for (i = 0; i < na; i++) {
		for (j = 0; j < nb; j++) {
			if (!strcmp(grew[i].name, before[j].name)) {
				grew[i].active -= before[j].active;
				break;
			}
		}
	}
	return na;
}

/*
 * Growth of each watched_cache() over CYCLES load/unload cycles of @name,
 * beyond the growth over the same cycles of the control module, which
 * allocates nothing: loading any module makes the kernel itself keep a few
 * objects, and those cancel out.  Fills @excess; returns the number of
 * entries or -errno.
 */
static int leak_excess(const char *ko, const char *name, const char *params,
		       struct slab_count *excess)
{
	static struct slab_count ctl[MAX_CACHES], mod[MAX_CACHES];
	char ctl_ko[4096];
	struct utsname u;
	int nc, nm, i, j, n = 0;

	uname(&u);
	snprintf(ctl_ko, sizeof(ctl_ko),
		 "build/%s/selftests-modules/snapblk_leak.ko", u.release);
	nc = slab_growth(ctl_ko, "snapblk_leak", "leak_bytes=0", ctl);
	if (nc < 0)
		return nc;
	nm = slab_growth(ko, name, params, mod);
	if (nm < 0)
		return nm;
	for (i = 0; i < nm; i++) {
		long base = 0;

		if (!watched_cache(mod[i].name))
			continue;
		/*
		 * A cache that shrank during the control run freed older
		 * objects; that credits nothing to the module.
		 */
		for (j = 0; j < nc; j++) {
			if (!strcmp(mod[i].name, ctl[j].name)) {
				base = ctl[j].active > 0 ? ctl[j].active : 0;
				break;
			}
		}
		excess[n] = mod[i];
		excess[n].active -= base;
		n++;
	}
	return n;
}

/*
 * The largest excess growth of one cache that shows in every measurement,
 * naming the cache in @worst, or -errno.  A leak of one object per load
 * shows as CYCLES objects every time; other activity in the kernel
 * (measured: up to a few hundred kmalloc-8 objects on 6.12, now and then)
 * does not repeat in the same cache, so a cache past CYCLES / 2 is
 * measured again, up to three times, and the smallest figure counts.
 */
static long consistent_excess(const char *ko, const char *name,
			      const char *params, char worst[64])
{
	static struct slab_count low[MAX_CACHES], cur[MAX_CACHES];
	int nl = 0, n, run, i, j;
	long max = 0;

	for (run = 0; run < 3; run++) {
		n = leak_excess(ko, name, params, cur);
		if (n < 0)
			return n;
		if (run == 0) {
			memcpy(low, cur, n * sizeof(*cur));
			nl = n;
		}
		for (i = 0; run && i < nl; i++) {
			long seen = 0;

			for (j = 0; j < n; j++) {
				if (!strcmp(low[i].name, cur[j].name)) {
					seen = cur[j].active;
					break;
				}
			}
			if (seen < low[i].active)
				low[i].active = seen;
		}
		max = 0;
		strcpy(worst, "(none)");
		for (i = 0; i < nl; i++) {
			if (low[i].active > max) {
				max = low[i].active;
				memcpy(worst, low[i].name, 64);
			}
		}
		if (max < CYCLES / 2)
			break;
	}
	return max;
}

static void __attribute__((constructor)) leak_cycles_from_env(void)
{
	const char *env = getenv("SNAPBLK_LEAK_CYCLES");

	if (env && atoi(env) > 0)
		CYCLES = atoi(env);
}

/* Leak checks take up to 6 x (10 + CYCLES) cycles: allow them time. */
FIXTURE(leak) {
};

FIXTURE_SETUP(leak)
{
}

FIXTURE_TEARDOWN(leak)
{
}

TEST_F_TIMEOUT(leak, load_unload_cycles_leak_nothing, 600)
{
	char worst[64];
	long excess;

	excess = consistent_excess(sb_ko_path(), "snapblk", NULL, worst);
	ASSERT_GE(excess, 0) TH_LOG("load/unload failed: %s", strerror(-excess));
	ksft_print_msg("largest slab growth over %d cycles beyond the control: %ld objects (%s)\n",
		       CYCLES, excess, worst);
	EXPECT_LT(excess, CYCLES / 2)
		TH_LOG("slab cache %s grew by %ld objects more than the control over %d load/unload cycles",
		       worst, excess, CYCLES);
}

/* The check above must be able to fail: a module that leaks is caught. */
TEST_F_TIMEOUT(leak, leak_check_catches_a_leaking_module, 600)
{
	char ko[4096], worst[64];
	struct utsname u;
	long excess;

	uname(&u);
	snprintf(ko, sizeof(ko),
		 "build/%s/selftests-modules/snapblk_leak.ko", u.release);
	excess = consistent_excess(ko, "snapblk_leak", "leak_bytes=256", worst);
	ASSERT_GE(excess, 0) TH_LOG("load/unload failed: %s", strerror(-excess));
	ksft_print_msg("leaking module: largest excess growth %ld objects (%s)\n",
		       excess, worst);
	EXPECT_GE(excess, CYCLES / 2);
}

TEST(second_load_is_refused_with_eexist)
{
	const char *ko = sb_ko_path();

	unload_if_loaded("snapblk");
	ASSERT_EQ(0, sb_load(ko, NULL));
	EXPECT_EQ(-EEXIST, sb_load(ko, NULL));
	EXPECT_EQ(0, sb_unload("snapblk"));
}

TEST(unloaded_module_leaves_no_sysfs)
{
	unload_if_loaded("snapblk");
	ASSERT_EQ(0, sb_load(sb_ko_path(), NULL));
	EXPECT_TRUE(sb_module_loaded("snapblk"));
	ASSERT_EQ(0, sb_unload("snapblk"));
	EXPECT_FALSE(sb_module_loaded("snapblk"));
	EXPECT_EQ(-ENOENT, sb_unload("snapblk"));
}

TEST_HARNESS_MAIN
