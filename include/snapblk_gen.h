/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * snapblk_gen.h: detect a VM clone from userspace with one memory load.
 *
 * Header only; needs <linux/snapblk.h> (include/uapi/linux/snapblk.h).
 * Map the page once, then test it wherever a clone would do harm (before
 * handing out a nonce, a session key, a UUID):
 *
 *	struct snapblk_gen g;
 *	uint64_t seen;
 *
 *	if (snapblk_gen_open(&g) == 0) {
 *		seen = snapblk_gen_current(&g);
 *		...
 *		if (snapblk_gen_changed(&g, &seen))
 *			reseed_my_prng();	// we are a clone
 *	}
 *
 * The mapping holds a reference to snapblk.ko: rmmod is refused until
 * snapblk_gen_close() (or exit).
 * Documentation/clone.md has the whole story.
 */
#ifndef SNAPBLK_GEN_H
#define SNAPBLK_GEN_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/snapblk.h>

#define SNAPBLK_GEN_DEVICE "/dev/snapblk-gen"

struct snapblk_gen {
	const volatile struct snapblk_gen_info *info;
	size_t map_len;
};

/* Map the generation page.  0, or -errno (ENOENT: module not loaded). */
static inline int snapblk_gen_open(struct snapblk_gen *g)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p;
	int fd, err;

	g->info = NULL;
	g->map_len = 0;
	fd = open(SNAPBLK_GEN_DEVICE, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	p = mmap(NULL, (size_t)page, PROT_READ, MAP_SHARED, fd, 0);
	err = errno;
	close(fd);
	if (p == MAP_FAILED)
		return -err;
	g->info = (const volatile struct snapblk_gen_info *)p;
	g->map_len = (size_t)page;
	return 0;
}

static inline void snapblk_gen_close(struct snapblk_gen *g)
{
	munmap((void *)g->info, g->map_len);
	g->info = NULL;
}

/* The current generation: one load. */
static inline uint64_t snapblk_gen_current(const struct snapblk_gen *g)
{
	return __atomic_load_n(&g->info->generation, __ATOMIC_ACQUIRE);
}

/* True (and *seen updated) if a clone happened since *seen. */
static inline int snapblk_gen_changed(const struct snapblk_gen *g,
				      uint64_t *seen)
{
	uint64_t now = snapblk_gen_current(g);

	if (now == *seen)
		return 0;
	*seen = now;
	return 1;
}

/* A consistent copy of every field. */
static inline void snapblk_gen_read(const struct snapblk_gen *g,
				    struct snapblk_gen_info *out)
{
	uint32_t seq;

	for (;;) {
		seq = __atomic_load_n(&g->info->seq, __ATOMIC_ACQUIRE);
		memcpy(out, (const void *)g->info, sizeof(*out));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (!(seq & 1) &&
		    __atomic_load_n(&g->info->seq, __ATOMIC_RELAXED) == seq)
			return;
	}
}

#endif /* SNAPBLK_GEN_H */
