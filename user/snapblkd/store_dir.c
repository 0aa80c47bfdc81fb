// SPDX-License-Identifier: GPL-2.0
/*
 * The directory store backend: chunk files read by a pool of --jobs
 * threads, so that a slow or stuck disk never holds up the event loop
 * (or the other stores).  Reads go through sb_store_read_chunk(), which
 * trusts nothing at a chunk path (user/lib/store.h).
 *
 * Locking: pool.lock guards both lists and the busy count; the loop
 * queues with dir_start() and collects with store_dir_complete() when
 * pool.event_fd is readable.  A fetch on the todo or done list, or in a
 * worker's hands, has busy set and belongs to the pool.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapblkd.h"
#include "store.h"

struct dir_store {
	struct sb_store *st;
	char dir[PATH_MAX];
};

struct dir_job {
	struct fetch *f;
	struct dir_store *ds;
	struct dir_job *next;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct dir_job *todo, **todo_tail;
	struct dir_job *done;
	unsigned int busy;		/* queued or being read */
	unsigned int threads;
	int event_fd;
} pool = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
	.todo_tail = &pool.todo,
	.event_fd = -1,
};

/* What went wrong goes to f->detail as "PATH: why", as logged. */
static void read_one(struct dir_store *ds, struct fetch *f)
{
	struct sb_store_found found;
	int ret;

	ret = sb_store_read_chunk(ds->st, f->req.addr, f->buf,
				  f->req.chunk_size, &found);
	f->status = ret;
	f->detail[0] = '\0';
	if (!ret) {
		f->result = FR_OK;
		f->got = f->req.chunk_size;
		return;
	}
	if (ret == -ENOENT || ret == -ENOTDIR) {
		f->result = FR_MISSING;
		snprintf(f->detail, sizeof(f->detail), "%s/%s: %s", ds->dir,
			 f->name, strerror(ENOENT));
		return;
	}
	f->result = FR_BAD;
	if (ret == -ELOOP)
		snprintf(f->detail, sizeof(f->detail), "%s/%s: a symbolic "
			 "link in the path (not followed)", ds->dir, f->name);
	else if (ret == -EMSGSIZE && !S_ISREG(found.type))
		snprintf(f->detail, sizeof(f->detail),
			 "%s/%s: not a regular file (%s)", ds->dir, f->name,
			 sb_store_type_name(found.type));
	else if (ret == -EMSGSIZE)
		snprintf(f->detail, sizeof(f->detail),
			 "%s/%s: %llu bytes, expected %u", ds->dir, f->name,
			 (unsigned long long)found.size, f->req.chunk_size);
	else
		snprintf(f->detail, sizeof(f->detail), "reading %s/%s: %s",
			 ds->dir, f->name, strerror(-ret));
}

static void *worker(void *arg)
{
	struct dir_job *j;
	uint64_t one = 1;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&pool.lock);
		while (!pool.todo)
			pthread_cond_wait(&pool.wake, &pool.lock);
		j = pool.todo;
		pool.todo = j->next;
		if (!pool.todo)
			pool.todo_tail = &pool.todo;
		pthread_mutex_unlock(&pool.lock);

		read_one(j->ds, j->f);

		pthread_mutex_lock(&pool.lock);
		j->next = pool.done;
		pool.done = j;
		pthread_mutex_unlock(&pool.lock);
		if (write(pool.event_fd, &one, sizeof(one)) < 0)
			abort();	/* cannot happen with a valid eventfd */
	}
	return NULL;
}

static int pool_start(char *msg, size_t msglen)
{
	pthread_attr_t attr;
	pthread_t t;
	unsigned int i;
	int ret;

	if (pool.threads)
		return 0;
	pool.event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pool.event_fd < 0) {
		snprintf(msg, msglen, "creating an eventfd: %s",
			 strerror(errno));
		return -errno;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (i = 0; i < bopts.jobs; i++) {
		ret = pthread_create(&t, &attr, worker, NULL);
		if (ret) {
			pthread_attr_destroy(&attr);
			snprintf(msg, msglen, "starting reader threads: %s",
				 strerror(ret));
			return -ret;
		}
		pool.threads++;
	}
	pthread_attr_destroy(&attr);
	return 0;
}

static void dir_start(struct backend *be, struct fetch *f)
{
	struct dir_job *j = calloc(1, sizeof(*j));

	if (!j) {
		f->result = FR_LOCAL;
		f->status = -ENOMEM;
		snprintf(f->detail, sizeof(f->detail), "out of memory");
		fetch_done(f);
		return;
	}
	j->f = f;
	j->ds = be->priv;
	f->busy = true;
	pthread_mutex_lock(&pool.lock);
	*pool.todo_tail = j;
	pool.todo_tail = &j->next;
	pool.busy++;
	pthread_cond_signal(&pool.wake);
	pthread_mutex_unlock(&pool.lock);
}

/* A queued read is taken back; one a worker holds finishes unseen. */
static void dir_cancel(struct backend *be, struct fetch *f)
{
	struct dir_job **p, *j;

	(void)be;
	pthread_mutex_lock(&pool.lock);
	for (p = &pool.todo; *p; p = &(*p)->next) {
		if ((*p)->f != f)
			continue;
		j = *p;
		*p = j->next;
		if (pool.todo_tail == &j->next)
			pool.todo_tail = p;
		pool.busy--;
		free(j);
		f->busy = false;
		break;
	}
	pthread_mutex_unlock(&pool.lock);
}

static void dir_close(struct backend *be)
{
	struct dir_store *ds = be->priv;

	sb_store_close(ds->st);
	free(ds);
}

static const struct backend_ops dir_ops = {
	.kind = "dir",
	.start = dir_start,
	.cancel = dir_cancel,
	.close = dir_close,
};

int store_dir_open(const char *dir, struct backend *be, char *msg,
		   size_t msglen)
{
	struct dir_store *ds = calloc(1, sizeof(*ds));
	int ret;

	if (!ds) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	snprintf(ds->dir, sizeof(ds->dir), "%s", dir);
	/* Chunk sizes come with each request: 0 here. */
	ret = sb_store_open(dir, 0, false, &ds->st);
	if (ret) {
		snprintf(msg, msglen, "opening chunk store %s: %s%s", dir,
			 strerror(-ret), ret == -ENOENT || ret == -ENOTDIR ?
			 " (give the directory that snapblk-build create "
			 "--store wrote)" : "");
		free(ds);
		return ret;
	}
	ret = pool_start(msg, msglen);
	if (ret) {
		sb_store_close(ds->st);
		free(ds);
		return ret;
	}
	be->ops = &dir_ops;
	be->priv = ds;
	return 0;
}

int store_dir_event_fd(void)
{
	return pool.event_fd;
}

void store_dir_complete(void)
{
	struct dir_job *done, *j;
	uint64_t n;

	if (pool.event_fd < 0 ||
	    read(pool.event_fd, &n, sizeof(n)) != sizeof(n))
		return;
	pthread_mutex_lock(&pool.lock);
	done = pool.done;
	pool.done = NULL;
	pthread_mutex_unlock(&pool.lock);
	while (done) {
		j = done;
		done = j->next;
		pthread_mutex_lock(&pool.lock);
		pool.busy--;
		pthread_mutex_unlock(&pool.lock);
		j->f->busy = false;
		fetch_done(j->f);
		free(j);
	}
}

unsigned int store_dir_busy(void)
{
	unsigned int n;

	pthread_mutex_lock(&pool.lock);
	n = pool.busy;
	pthread_mutex_unlock(&pool.lock);
	return n;
}
