// SPDX-License-Identifier: GPL-2.0
/*
 * Flattening: input to tree, tree to ext4, data to its blocks.  See
 * flatten.h and Documentation/format.md, "Flattening".
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/snapblk.h>

#include "ext4.h"
#include "flatten.h"
#include "oci.h"
#include "tree.h"
#include "util.h"

/*
 * The --image-out path until the build is done (sb_flatten_keep()), for
 * sb_flatten_abort(): an image without its manifest is not kept.
 */
static char abort_path[PATH_MAX];
static volatile sig_atomic_t abort_armed;

void sb_flatten_keep(void)
{
	abort_armed = 0;
}

void sb_flatten_abort(void)
{
	if (abort_armed)
		unlink(abort_path);
}

int sb_flatten_epoch(long *epoch)
{
	const char *s = getenv("SOURCE_DATE_EPOCH");
	char *end;
	long v;

	*epoch = SB_FLATTEN_EPOCH;
	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v <= 0 || v > 0xffffffffL)
		return -EINVAL;
	*epoch = v;
	return 0;
}

void sb_flatten_cleanup(struct sb_flatten *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

static const char *tmp_dir(const struct sb_flatten_opts *o)
{
	const char *tmp = o->tmpdir;

	if (!tmp)
		tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = "/var/tmp";
	return tmp;
}

static int open_image(const struct sb_flatten_opts *o, struct sb_flatten *f)
{
	const char *tmp = tmp_dir(o);

	if (o->image_out) {
		snprintf(abort_path, sizeof(abort_path), "%s", o->image_out);
		abort_armed = 1;
		f->fd = open(o->image_out, O_RDWR | O_CREAT | O_TRUNC |
			     O_CLOEXEC, 0644);
		if (f->fd < 0) {
			abort_armed = 0;
			err_report(errno, "check the --image-out path",
				   "cannot create image file %s",
				   o->image_out);
			return -1;
		}
		snprintf(f->image, sizeof(f->image), "%s", o->image_out);
		return 0;
	}
	f->fd = open(tmp, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
	if (f->fd < 0) {
		err_report(errno, "set --tmpdir (or TMPDIR) to a writable "
			   "directory on a file system with O_TMPFILE and "
			   "room for the image",
			   "cannot create a temporary image in %s", tmp);
		return -1;
	}
	snprintf(f->image, sizeof(f->image), "/proc/self/fd/%d", f->fd);
	return 0;
}

static int read_input(const struct sb_flatten_opts *o, struct sb_tree *t)
{
	struct sb_oci_image img;
	unsigned int i;
	int ret = 0;

	if (o->src_dir)
		return sb_tree_add_dir(t, o->src_dir);
	if (o->tar)
		return sb_tree_add_layer(t, o->tar);
	if (o->oci) {
		if (sb_oci_open(o->oci, &img))
			return -1;
		if (img.nlayers > SB_FLATTEN_MAX_LAYERS) {
			err_report(0, "flatten the image to fewer layers",
				   "cannot flatten %s: %u layers, at most %d",
				   o->oci, img.nlayers, SB_FLATTEN_MAX_LAYERS);
			sb_oci_free(&img);
			return -1;
		}
		for (i = 0; i < img.nlayers && !ret; i++) {
			if (o->verbose)
				fprintf(stderr, "%s: layer %u: %s\n",
					prog_name, i + 1,
					img.layers[i].digest);
			ret = sb_tree_add_layer(t, img.layers[i].path);
		}
		sb_oci_free(&img);
		return ret;
	}
	for (i = 0; i < o->nlayers && !ret; i++)
		ret = sb_tree_add_layer(t, o->layers[i]);
	return ret;
}

static int write_data(struct sb_node *n, uint64_t off, const void *buf,
		      size_t len, void *ctx)
{
	int fd = *(int *)ctx;
	uint64_t at = n->first_block * SB_BLOCK_SIZE + off;
	const uint8_t *p = buf;
	ssize_t w;

	if (off + len > n->size || !n->first_block)
		return -EFBIG;
	while (len) {
		w = pwrite(fd, p, len, at);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		at += w;
		len -= w;
	}
	return 0;
}

int sb_flatten_run(const struct sb_flatten_opts *o, struct sb_flatten *f)
{
	struct sb_ext4_opts eo = {
		.uuid = o->uuid ? o->uuid : SB_FLATTEN_UUID,
		.epoch = o->epoch,
		.set_owner = o->set_owner,
		.uid = o->uid,
		.gid = o->gid,
		.chunk_size = o->chunk_size ? o->chunk_size :
			      SNAPBLK_CHUNK_SIZE_DEFAULT,
		.fs_size = o->fs_size,
	};
	struct sb_geom g;
	struct sb_tree *t;
	int ret = -1;

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	f->layout = SNAPBLK_LAYOUT_STABLE1;
	t = sb_tree_new(o->epoch, tmp_dir(o));
	if (!t) {
		err_report(ENOMEM, NULL, "cannot flatten");
		return -1;
	}
	if (o->verbose)
		fprintf(stderr, "%s: reading the input\n", prog_name);
	if (read_input(o, t) || sb_tree_finish(t))
		goto out;
	if (open_image(o, f))
		goto out;
	if (o->verbose)
		fprintf(stderr, "%s: writing the file system\n", prog_name);
	if (sb_ext4_write(t, &eo, f->fd, &g))
		goto out;
	free(g.itable);
	if (o->verbose)
		fprintf(stderr, "%s: copying file data\n", prog_name);
	if (sb_tree_read_data(t, write_data, &f->fd))
		goto out;
	if (fsync(f->fd) < 0) {
		err_report(errno, "check the free space where the image goes",
			   "cannot write the image %s", f->image);
		goto out;
	}
	ret = 0;
out:
	if (ret && o->image_out && f->fd >= 0)
		unlink(o->image_out);
	/* A finished image stays armed until the manifest is written. */
	if (ret)
		abort_armed = 0;
	sb_tree_free(t);
	return ret;
}
