// SPDX-License-Identifier: GPL-2.0
/*
 * Deterministic ext4 flattening of a directory tree or tar archive with
 * mke2fs -d and debugfs.  See sb_flatten.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flatten.h"
#include "util.h"

#define BLOCK		4096ULL
#define INODE_SIZE	256ULL

extern char **environ;

static const char mke2fs_conf[] =
	"# Written by snapblk-build: the same features on every host.\n"
	"[defaults]\n"
	"\tbase_features = sparse_super,large_file,filetype,resize_inode,"
	"dir_index,ext_attr\n"
	"\tdefault_mntopts = acl,user_xattr\n"
	"\tenable_periodic_fsck = 0\n"
	"\tblocksize = 4096\n"
	"\tinode_size = 256\n"
	"\tinode_ratio = 16384\n"
	"\thash_alg = half_md4\n"
	"[fs_types]\n"
	"\text4 = {\n"
	"\t\tfeatures = has_journal,extent,huge_file,flex_bg,"
	"metadata_csum,64bit,dir_nlink,extra_isize\n"
	"\t}\n"
	"\tdefault = {\n"
	"\t}\n";

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

/* ------------------------------------------------------------- helpers */

static int find_tool(const char *name, char *out, size_t len)
{
	static const char *const extra[] = { "/usr/sbin", "/sbin",
					     "/usr/bin", "/bin" };
	const char *path = getenv("PATH");
	char *dirs, *dir, *save = NULL;
	size_t i;

	dirs = strdup(path ? path : "");
	if (!dirs)
		return -ENOMEM;
	for (dir = strtok_r(dirs, ":", &save); dir;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(out, len, "%s/%s", *dir ? dir : ".", name);
		if (!access(out, X_OK)) {
			free(dirs);
			return 0;
		}
	}
	free(dirs);
	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		snprintf(out, len, "%s/%s", extra[i], name);
		if (!access(out, X_OK))
			return 0;
	}
	return -ENOENT;
}

/* The environment for e2fsprogs: ours, less what would change output. */
static char **tool_env(const char *conf, long epoch)
{
	static const char *const drop[] = { "MKE2FS_", "E2FSPROGS_", "LC_",
					    "LANG=", "LANGUAGE=", "TZ=" };
	size_t n = 0, i, k;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 5, sizeof(*env));
	if (!env)
		return NULL;
	for (i = 0, k = 0; i < n; i++) {
		size_t d;

		for (d = 0; d < sizeof(drop) / sizeof(drop[0]); d++)
			if (!strncmp(environ[i], drop[d], strlen(drop[d])))
				break;
		if (d == sizeof(drop) / sizeof(drop[0]))
			env[k++] = environ[i];
	}
	if (asprintf(&env[k++], "MKE2FS_CONFIG=%s", conf) < 0 ||
	    asprintf(&env[k++], "E2FSPROGS_FAKE_TIME=%ld", epoch) < 0)
		return NULL;
	env[k++] = "LC_ALL=C";
	env[k++] = "TZ=UTC";
	return env;
}

/* Print the last lines of a tool's log, indented, on stderr. */
static void show_log(const char *path)
{
	char line[512], *lines[12] = { NULL };
	size_t n = 0, i;
	FILE *f;

	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		free(lines[n % 12]);
		lines[n % 12] = strdup(line);
		n++;
	}
	fclose(f);
	for (i = n > 12 ? n - 12 : 0; i < n; i++) {
		fprintf(stderr, "    %s", lines[i % 12] ? lines[i % 12] : "");
		free(lines[i % 12]);
		lines[i % 12] = NULL;
	}
}

/*
 * Run argv with env; stdout to out, stderr to err (NULL: /dev/null; the
 * same path: both into one file).  Returns the exit status, or -errno.
 */
static int run_tool(char *const argv[], char *const env[], const char *out,
		    const char *err)
{
	posix_spawn_file_actions_t fa;
	int ret, status;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out ? out : "/dev/null",
					 O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (err && out && !strcmp(err, out))
		posix_spawn_file_actions_adddup2(&fa, 1, 2);
	else
		posix_spawn_file_actions_addopen(&fa, 2,
						 err ? err : "/dev/null",
						 O_WRONLY | O_CREAT | O_TRUNC,
						 0600);
	ret = posix_spawn(&pid, argv[0], &fa, NULL, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	if (ret)
		return -ret;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

/* ------------------------------------------------------- tree walking */

static struct {
	uint64_t blocks;	/* data blocks, estimated */
	uint64_t dir_bytes;	/* directory entry bytes */
	uint64_t entries;
	char bad[PATH_MAX];	/* first unreadable path */
	int bad_err;
} walk;

static int walk_one(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	size_t name_len = strlen(path + ftw->base);

	(void)type;
	walk.entries++;
	walk.dir_bytes += 8 + ((name_len + 3) & ~3UL);
	if (S_ISREG(st->st_mode)) {
		walk.blocks += (st->st_size + BLOCK - 1) / BLOCK;
		if (access(path, R_OK) && !walk.bad_err) {
			walk.bad_err = errno;
			snprintf(walk.bad, sizeof(walk.bad), "%s", path);
		}
	} else if (S_ISDIR(st->st_mode)) {
		walk.blocks++;
		if (access(path, R_OK | X_OK) && !walk.bad_err) {
			walk.bad_err = errno;
			snprintf(walk.bad, sizeof(walk.bad), "%s", path);
		}
	} else if (S_ISLNK(st->st_mode) && st->st_size >= 60) {
		walk.blocks++;
	}
	return 0;
}

/* mke2fs's journal size for a file system of this many blocks. */
static uint64_t journal_blocks(uint64_t blocks)
{
	if (blocks < 32768)
		return 1024;
	if (blocks < 256 * 1024)
		return 4096;
	if (blocks < 512 * 1024)
		return 8192;
	if (blocks < 4096 * 1024)
		return 16384;
	if (blocks < 8192 * 1024)
		return 32768;
	if (blocks < 16384 * 1024)
		return 65536;
	if (blocks < 32768 * 1024)
		return 131072;
	return 262144;
}

/* Inode count and file system size for the tree, from its walk. */
static void estimate(uint64_t *inodes, uint64_t *size)
{
	uint64_t data, b;

	*inodes = walk.entries + walk.entries / 4 + 64;
	data = walk.blocks + walk.dir_bytes / BLOCK;
	b = data + data / 8 + *inodes * INODE_SIZE / BLOCK + 2048;
	b += journal_blocks(b + journal_blocks(b));
	*size = (b * BLOCK + (1 << 20) - 1) & ~((1ULL << 20) - 1);
	if (*size < (16ULL << 20))
		*size = 16ULL << 20;
}

/* --------------------------------------------------------- clean-up */

static int make_writable(const char *path, const struct stat *st, int type,
			 struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_D && (st->st_mode & 0700) != 0700)
		chmod(path, st->st_mode | 0700);
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void sb_flatten_cleanup(struct sb_flatten *f)
{
	if (!f->workdir[0])
		return;
	nftw(f->workdir, make_writable, 32, FTW_PHYS);
	nftw(f->workdir, remove_one, 32, FTW_PHYS | FTW_DEPTH);
	f->workdir[0] = '\0';
}

/* ------------------------------------------------------------ steps */

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fputs(text, f);
	if (fclose(f))
		return -errno;
	return 0;
}

static int extract_tar(const struct sb_flatten_opts *o, struct sb_flatten *f,
		       char **env, char *tree, size_t len)
{
	char tar[PATH_MAX], log[PATH_MAX];
	int ret;

	snprintf(tree, len, "%s/tree", f->workdir);
	snprintf(log, sizeof(log), "%s/tar.log", f->workdir);
	if (mkdir(tree, 0755) < 0) {
		err_report(errno, "check --tmpdir", "cannot create %s", tree);
		return -1;
	}
	if (find_tool("tar", tar, sizeof(tar))) {
		err_report(0, "install GNU tar (Debian package tar)",
			   "cannot flatten %s: tar not found", o->tar);
		return -1;
	}
	{
		char *argv[] = { tar, "-x", "-f", (char *)o->tar, "-C", tree,
				 "--same-permissions", "--numeric-owner",
				 "--delay-directory-restore", NULL };

		if (o->verbose)
			fprintf(stderr, "%s: extracting %s\n", prog_name,
				o->tar);
		ret = run_tool(argv, env, log, log);
	}
	if (ret) {
		err_report(ret < 0 ? -ret : 0,
			   "check that the file is a tar archive that GNU tar "
			   "can read (tar -tf FILE), and that --tmpdir has "
			   "room for its contents",
			   "cannot extract %s (tar exit status %d)", o->tar,
			   ret);
		show_log(log);
		return -1;
	}
	return 0;
}

static int used_inodes_cmds(const struct sb_flatten_opts *o,
			    const char *dump, const char *cmds)
{
	unsigned long count = 0, first = 11, a, b, i;
	char *line = NULL, *p, *end;
	size_t cap = 0;
	uint8_t *used = NULL;
	FILE *in, *out;
	int ret = -EINVAL;

	in = fopen(dump, "r");
	if (!in)
		return -errno;
	out = fopen(cmds, "w");
	if (!out) {
		fclose(in);
		return -errno;
	}
	/* getline(): a group's list of free inodes can be long. */
	while (getline(&line, &cap, in) > 0) {
		if (!strncmp(line, "Inode count:", 12)) {
			count = strtoul(line + 12, NULL, 10);
			free(used);
			used = malloc(count + 1);
			if (!used)
				goto out;
			memset(used, 1, count + 1);
		} else if (!strncmp(line, "First inode:", 12)) {
			first = strtoul(line + 12, NULL, 10);
		} else if (!strncmp(line, "  Free inodes:", 14) && used) {
			for (p = line + 14; *p; p = end) {
				while (*p == ' ' || *p == ',')
					p++;
				if (*p < '0' || *p > '9')
					break;
				a = strtoul(p, &end, 10);
				b = a;
				if (*end == '-')
					b = strtoul(end + 1, &end, 10);
				for (i = a; i <= b && i <= count; i++)
					used[i] = 0;
			}
		}
	}
	if (!used || !count)
		goto out;
	for (i = 2; i <= count; i++) {
		if (!used[i] || (i != 2 && i < first))
			continue;
		fprintf(out, "sif <%lu> atime @%ld\nsif <%lu> ctime @%ld\n"
			"sif <%lu> crtime @%ld\n", i, o->epoch, i, o->epoch,
			i, o->epoch);
		fprintf(out, "sif <%lu> atime_extra 0\n"
			"sif <%lu> ctime_extra 0\n"
			"sif <%lu> crtime_extra 0\n", i, i, i);
		if (o->set_owner && i != first)
			fprintf(out, "sif <%lu> uid %u\nsif <%lu> gid %u\n",
				i, o->uid, i, o->gid);
	}
	ret = 0;
out:
	free(line);
	free(used);
	fclose(in);
	if (fclose(out) && !ret)
		ret = -errno;
	return ret;
}

/* Any line of debugfs's stderr but its banner is an error. */
static bool debugfs_failed(const char *log)
{
	char line[512];
	bool bad = false;
	FILE *f;

	f = fopen(log, "r");
	if (!f)
		return true;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "debugfs ", 8))
			bad = true;
	fclose(f);
	return bad;
}

static int make_fs(const struct sb_flatten_opts *o, struct sb_flatten *f,
		   char **env, const char *tree, uint64_t inodes)
{
	char mke2fs[PATH_MAX], dumpe2fs[PATH_MAX], debugfs[PATH_MAX];
	char log[PATH_MAX], dump[PATH_MAX], cmds[PATH_MAX];
	char ninodes[32], ext[256];
	const char *uuid = o->uuid ? o->uuid : SB_FLATTEN_UUID;
	int fd, ret;

	if (find_tool("mke2fs", mke2fs, sizeof(mke2fs)) ||
	    find_tool("dumpe2fs", dumpe2fs, sizeof(dumpe2fs)) ||
	    find_tool("debugfs", debugfs, sizeof(debugfs))) {
		err_report(0, "install e2fsprogs (1.47 or later)",
			   "cannot flatten: mke2fs, dumpe2fs or debugfs not "
			   "found");
		return -1;
	}
	fd = open(f->image, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, f->fs_size) < 0) {
		err_report(errno, "check the path and the free space there",
			   "cannot create image file %s", f->image);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);

	snprintf(log, sizeof(log), "%s/e2fs.log", f->workdir);
	snprintf(dump, sizeof(dump), "%s/dumpe2fs.txt", f->workdir);
	snprintf(cmds, sizeof(cmds), "%s/debugfs.cmds", f->workdir);
	snprintf(ninodes, sizeof(ninodes), "%llu", (unsigned long long)inodes);
	snprintf(ext, sizeof(ext),
		 "hash_seed=%s,root_owner=%u:%u,lazy_itable_init=0,"
		 "lazy_journal_init=0,nodiscard", uuid,
		 o->set_owner ? o->uid : 0, o->set_owner ? o->gid : 0);
	{
		char *argv[] = { mke2fs, "-q", "-F", "-t", "ext4", "-T",
				 "default", "-b", "4096", "-I", "256", "-N",
				 ninodes, "-m", "0", "-U", (char *)uuid, "-E",
				 ext, "-d", (char *)tree, f->image, NULL };

		if (o->verbose)
			fprintf(stderr, "%s: making a %llu MiB ext4 image\n",
				prog_name,
				(unsigned long long)(f->fs_size >> 20));
		ret = run_tool(argv, env, log, log);
	}
	if (ret) {
		err_report(ret < 0 ? -ret : 0,
			   "if it ran out of space, give a larger --fs-size; "
			   "the mke2fs messages follow",
			   "mke2fs failed (exit status %d)", ret);
		show_log(log);
		return -1;
	}
	{
		char *argv[] = { dumpe2fs, f->image, NULL };

		ret = run_tool(argv, env, dump, log);
	}
	if (!ret)
		ret = used_inodes_cmds(o, dump, cmds);
	if (ret) {
		err_report(ret < 0 ? -ret : 0, "the dumpe2fs messages follow",
			   "cannot list the inodes of %s", f->image);
		show_log(log);
		return -1;
	}
	{
		char *argv[] = { debugfs, "-w", "-f", cmds, f->image, NULL };

		ret = run_tool(argv, env, NULL, log);
	}
	if (ret || debugfs_failed(log)) {
		err_report(ret < 0 ? -ret : 0, "the debugfs messages follow",
			   "cannot normalise inode times in %s", f->image);
		show_log(log);
		return -1;
	}
	return 0;
}

int sb_flatten_run(const struct sb_flatten_opts *o, struct sb_flatten *f)
{
	const char *tmp = o->tmpdir;
	char tree[PATH_MAX], conf[PATH_MAX];
	uint64_t inodes, size;
	char **env = NULL;
	struct stat st;
	int ret = -1;

	memset(f, 0, sizeof(*f));
	if (!tmp)
		tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = "/var/tmp";
	if (snprintf(f->workdir, sizeof(f->workdir), "%s/snapblk-build.XXXXXX",
		     tmp) >= (int)sizeof(f->workdir)) {
		err_report(ENAMETOOLONG, "use a shorter --tmpdir",
			   "cannot use %s for temporary files", tmp);
		f->workdir[0] = '\0';
		return -1;
	}
	if (!mkdtemp(f->workdir)) {
		err_report(errno, "set --tmpdir (or TMPDIR) to a writable "
			   "directory with room for the image",
			   "cannot create a temporary directory in %s", tmp);
		f->workdir[0] = '\0';
		return -1;
	}
	snprintf(conf, sizeof(conf), "%s/mke2fs.conf", f->workdir);
	if (write_text(conf, mke2fs_conf)) {
		err_report(errno, "check --tmpdir", "cannot write %s", conf);
		return -1;
	}
	env = tool_env(conf, o->epoch);
	if (!env) {
		err_report(ENOMEM, NULL, "cannot flatten");
		return -1;
	}

	if (o->tar) {
		if (extract_tar(o, f, env, tree, sizeof(tree)))
			goto out;
	} else {
		errno = 0;
		if (stat(o->src_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			err_report(errno ? errno : ENOTDIR,
				   "--from-dir takes an existing directory",
				   "cannot flatten %s", o->src_dir);
			goto out;
		}
		snprintf(tree, sizeof(tree), "%s", o->src_dir);
	}

	memset(&walk, 0, sizeof(walk));
	if (nftw(tree, walk_one, 32, FTW_PHYS) < 0) {
		err_report(errno, "check that the tree is readable",
			   "cannot walk %s", tree);
		goto out;
	}
	if (walk.bad_err) {
		err_report(walk.bad_err, "make the tree readable by this user "
			   "(e.g. chmod -R u+rX) or build as one who can "
			   "read it",
			   "cannot read %s", walk.bad);
		goto out;
	}
	estimate(&inodes, &size);
	f->fs_size = o->fs_size ? o->fs_size : size;
	if (o->image_out)
		snprintf(f->image, sizeof(f->image), "%s", o->image_out);
	else
		snprintf(f->image, sizeof(f->image), "%s/image.ext4",
			 f->workdir);
	if (make_fs(o, f, env, tree, inodes))
		goto out;
	ret = 0;
out:
	/* The two strings tool_env() allocated sit just before LC_ALL. */
	if (env) {
		size_t n = 0;

		while (env[n])
			n++;
		free(env[n - 4]);
		free(env[n - 3]);
		free(env);
	}
	return ret;
}
