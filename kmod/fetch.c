// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/snapblk-fetch: the kernel side of the fetch daemon protocol (see
 * include/uapi/linux/snapblk.h).  Missing chunks wait on fetch_queue until
 * a daemon reads them; a read request then belongs to that open file
 * (its "claimed" list) until it is answered.  When the file is closed,
 * whatever it still claims goes back to the head of the queue, so a
 * daemon that dies or restarts loses no request; so do requests whose
 * read() faulted and answers the kernel could not take for want of
 * memory.  A chunk not delivered by its deadline (the device's
 * fetch_timeout_ms, fixed when the chunk is first missed, in
 * CLOCK_MONOTONIC nanoseconds, and shown to the daemon in every request
 * record) fails its readers within SNAPBLK_FETCH_SCAN_MS after it, however
 * many other chunks are missed meanwhile.
 *
 * Every delivered chunk is checked before anything else sees it: its
 * length, then SHA-256 of the ciphertext against the manifest's address;
 * only then is it decrypted (AES-256-CTR, zero IV, the chunk's key) into
 * the cache.  The first bad answer for a fetch puts it back at the head
 * of the queue under a new id, flagged SNAPBLK_FETCH_F_REFETCH (the
 * daemon's cached copy may be what is bad), with its deadline and
 * waiters unchanged; a second one fails exactly the reads waiting for it.
 */
#include "snapblk.h"

#include <crypto/hash.h>
#include <crypto/skcipher.h>
#include <linux/highmem.h>
#include <linux/ktime.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <linux/workqueue.h>

/* The record layout is ABI (include/uapi/linux/snapblk.h): 72 bytes. */
static_assert(sizeof(struct snapblk_fetch_req) == 72);
static_assert(offsetof(struct snapblk_fetch_req, len) == 0);
static_assert(offsetof(struct snapblk_fetch_req, chunk_size) == 4);
static_assert(offsetof(struct snapblk_fetch_req, id) == 8);
static_assert(offsetof(struct snapblk_fetch_req, addr) == 16);
static_assert(offsetof(struct snapblk_fetch_req, dev_index) == 48);
static_assert(offsetof(struct snapblk_fetch_req, flags) == 52);
static_assert(offsetof(struct snapblk_fetch_req, chunk) == 56);
static_assert(offsetof(struct snapblk_fetch_req, deadline_ns) == 64);
static_assert(sizeof(struct snapblk_fetch_resp) == 24);
static_assert(offsetof(struct snapblk_fetch_resp, tier) ==
	      SNAPBLK_FETCH_RESP_LEN_V3);

/* An open /dev/snapblk-fetch; lives from open to release. */
struct snapblk_fetcher {
	struct list_head node;		/* on fetchers, under cache lock */
	struct list_head claimed;	/* chunks read, not yet answered */
};

/* All under snapblk_cache_lock. */
static LIST_HEAD(fetch_queue);		/* FETCHING chunks not yet read */
static LIST_HEAD(fetchers);
static u64 fetch_next_id = 1;
static DECLARE_WAIT_QUEUE_HEAD(fetch_wq);

static void fetch_timeout_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(fetch_timeout_work, fetch_timeout_fn);

static struct crypto_shash *sha256_tfm;	/* unkeyed: shared by all */

/*
 * Run the deadline scan within SNAPBLK_FETCH_SCAN_MS.  A scan already
 * pending stays as it is: pushing it back on every new miss (what
 * mod_delayed_work() would do) let a steady stream of misses postpone
 * every deadline.
 */
static void arm_scan(void)
{
	queue_delayed_work(system_wq, &fetch_timeout_work,
			   msecs_to_jiffies(SNAPBLK_FETCH_SCAN_MS));
}

/* A chunk is missing: queue it for the daemon.  Cache lock held. */
void snapblk_fetch_enqueue(struct snapblk_chunk *c)
{
	c->id = fetch_next_id++;
	c->owner = NULL;
	list_add_tail(&c->fnode, &fetch_queue);
	wake_up_interruptible(&fetch_wq);
	arm_scan();
}

/*
 * Put chunks back at the head of the queue, in order, for any daemon to
 * read again.  Cache lock held.
 */
static void __requeue(struct list_head *list)
{
	struct snapblk_chunk *c;

	list_for_each_entry(c, list, fnode)
		c->owner = NULL;
	list_splice_init(list, &fetch_queue);
	wake_up_interruptible(&fetch_wq);
}

/* Fail the chunks on @list whose deadline passed; cache lock held. */
static void collect_expired(struct list_head *list, u64 now,
			    struct list_head *out)
{
	struct snapblk_chunk *c, *tmp;

	list_for_each_entry_safe(c, tmp, list, fnode) {
		if (now < c->deadline_ns)
			continue;
		refcount_inc(&c->ref);
		list_move_tail(&c->fnode, out);
	}
}

static void fetch_timeout_fn(struct work_struct *work)
{
	struct snapblk_fetcher *f;
	struct snapblk_chunk *c, *tmp;
	LIST_HEAD(expired);
	u64 now;
	bool more;

	spin_lock(&snapblk_cache_lock);
	now = ktime_get_ns();
	collect_expired(&fetch_queue, now, &expired);
	list_for_each_entry(f, &fetchers, node)
		collect_expired(&f->claimed, now, &expired);
	more = !list_empty(&fetch_queue);
	list_for_each_entry(f, &fetchers, node)
		more = more || !list_empty(&f->claimed);
	spin_unlock(&snapblk_cache_lock);

	list_for_each_entry_safe(c, tmp, &expired, fnode) {
		list_del_init(&c->fnode);
		pr_warn_ratelimited("snapblk%u: chunk %llu: no answer from the fetch daemon in time\n",
				    c->dev_index, c->chunk);
		snapblk_cache_complete(c, -ETIMEDOUT);
		snapblk_chunk_put(c);
	}
	if (more)
		arm_scan();
}

static int fetch_open(struct inode *inode, struct file *file)
{
	struct snapblk_fetcher *f = kzalloc(sizeof(*f), GFP_KERNEL);

	if (!f)
		return -ENOMEM;
	INIT_LIST_HEAD(&f->claimed);
	spin_lock(&snapblk_cache_lock);
	list_add(&f->node, &fetchers);
	spin_unlock(&snapblk_cache_lock);
	file->private_data = f;
	return 0;
}

static int fetch_release(struct inode *inode, struct file *file)
{
	struct snapblk_fetcher *f = file->private_data;

	spin_lock(&snapblk_cache_lock);
	/* Unanswered requests go back first in line, in order. */
	__requeue(&f->claimed);
	list_del(&f->node);
	spin_unlock(&snapblk_cache_lock);
	kfree(f);
	return 0;
}

static ssize_t fetch_read(struct file *file, char __user *buf, size_t len,
			  loff_t *ppos)
{
	struct snapblk_fetcher *f = file->private_data;
	size_t max = len / sizeof(struct snapblk_fetch_req), n = 0;
	struct snapblk_fetch_req *reqs;
	struct snapblk_chunk *c, *tmp;
	LIST_HEAD(taken);
	ssize_t ret;

	if (!max)
		return -EINVAL;
	max = min_t(size_t, max, 64);
	reqs = kcalloc(max, sizeof(*reqs), GFP_KERNEL);
	if (!reqs)
		return -ENOMEM;

	spin_lock(&snapblk_cache_lock);
	while (list_empty(&fetch_queue)) {
		spin_unlock(&snapblk_cache_lock);
		ret = -EAGAIN;
		if (file->f_flags & O_NONBLOCK)
			goto out;
		ret = wait_event_interruptible(fetch_wq,
					       !list_empty(&fetch_queue));
		if (ret)
			goto out;
		spin_lock(&snapblk_cache_lock);
	}
	list_for_each_entry_safe(c, tmp, &fetch_queue, fnode) {
		struct snapblk_fetch_req *r = &reqs[n];

		r->len = sizeof(*r);
		r->chunk_size = c->chunk_size;
		r->id = c->id;
		memcpy(r->addr, c->addr, SNAPBLK_ADDR_LEN);
		r->dev_index = c->dev_index;
		r->flags = SNAPBLK_FETCH_F_DEADLINE |
			   (c->refetch ? SNAPBLK_FETCH_F_REFETCH : 0);
		r->chunk = c->chunk;
		r->deadline_ns = c->deadline_ns;
		c->owner = f;
		list_move_tail(&c->fnode, &taken);
		if (++n == max)
			break;
	}
	/*
	 * Claimed only once the daemon has them.  Meanwhile they are on no
	 * list: their ids are not out yet, so no answer can look for them,
	 * and the deadline scan catches them again once they are back.
	 */
	spin_unlock(&snapblk_cache_lock);

	ret = n * sizeof(*reqs);
	if (copy_to_user(buf, reqs, ret))
		ret = -EFAULT;
	spin_lock(&snapblk_cache_lock);
	if (ret < 0)
		__requeue(&taken);
	else
		list_splice_tail(&taken, &f->claimed);
	spin_unlock(&snapblk_cache_lock);
out:
	kfree(reqs);
	return ret;
}

static __poll_t fetch_poll(struct file *file, poll_table *wait)
{
	__poll_t mask = 0;

	poll_wait(file, &fetch_wq, wait);
	spin_lock(&snapblk_cache_lock);
	if (!list_empty(&fetch_queue))
		mask |= EPOLLIN | EPOLLRDNORM;
	spin_unlock(&snapblk_cache_lock);
	return mask | EPOLLOUT | EPOLLWRNORM;
}

/* Take the chunk with @id off @f's claimed list, with a reference. */
static struct snapblk_chunk *claim_answer(struct snapblk_fetcher *f, u64 id)
{
	struct snapblk_chunk *c;

	spin_lock(&snapblk_cache_lock);
	list_for_each_entry(c, &f->claimed, fnode) {
		if (c->id == id) {
			list_del_init(&c->fnode);
			refcount_inc(&c->ref);
			spin_unlock(&snapblk_cache_lock);
			return c;
		}
	}
	spin_unlock(&snapblk_cache_lock);
	return NULL;
}

/*
 * Put @c back on @f's claimed list (its answer could not be read: the
 * daemon may answer again), without the pages it got for that answer.
 */
static void unclaim(struct snapblk_fetcher *f, struct snapblk_chunk *c)
{
	snapblk_chunk_free_pages(c);
	spin_lock(&snapblk_cache_lock);
	list_add(&c->fnode, &f->claimed);
	spin_unlock(&snapblk_cache_lock);
	snapblk_chunk_put(c);
}

/*
 * The kernel could not take @c's answer for want of memory: a transient
 * failure, not the chunk's.  Back to the head of the queue, for any
 * daemon to fetch again, and without its pages.
 */
static void requeue(struct snapblk_chunk *c)
{
	LIST_HEAD(one);

	snapblk_chunk_free_pages(c);
	spin_lock(&snapblk_cache_lock);
	list_add(&c->fnode, &one);
	__requeue(&one);
	arm_scan();
	spin_unlock(&snapblk_cache_lock);
	snapblk_chunk_put(c);
}

/*
 * The answer for @c failed verification (the wrong length, or not its
 * address).  The daemon's copy may be a corrupted cache file: the first
 * time, and while its deadline has not passed, the fetch goes back to the
 * head of the queue under a new id (an answer to the old one is refused),
 * flagged SNAPBLK_FETCH_F_REFETCH, with its deadline and waiters as they
 * were; each waiting device counts a refetch and hears of the bad answer.
 * Returns true then, having dropped the caller's reference.  Returns
 * false, changing nothing but freeing the answer's pages, when the fetch
 * was re-fetched already or is past its deadline: the caller fails it.
 */
static bool refetch(struct snapblk_chunk *c)
{
	struct snapblk_dev_chunk devs[SNAPBLK_EVENT_DEVS];
	u32 dev_index = c->dev_index;	/* immutable: for the log */
	u64 chunk = c->chunk;
	int n, i;

	/* Ours alone until it is back on the queue. */
	snapblk_chunk_free_pages(c);
	spin_lock(&snapblk_cache_lock);
	if (c->refetch || ktime_get_ns() >= c->deadline_ns) {
		spin_unlock(&snapblk_cache_lock);
		return false;
	}
	c->refetch = true;
	n = __snapblk_cache_waiting_devs(c, devs);
	for (i = 0; i < n; i++)
		atomic64_inc(&devs[i].dev->refetches);
	c->id = fetch_next_id++;
	c->owner = NULL;
	list_add(&c->fnode, &fetch_queue);
	wake_up_interruptible(&fetch_wq);
	arm_scan();
	spin_unlock(&snapblk_cache_lock);

	pr_warn_ratelimited("snapblk%u: chunk %llu: bad answer: fetching it once more\n",
			    dev_index, chunk);
	for (i = 0; i < n; i++) {
		snapblk_genl_chunk_error(devs[i].dev, devs[i].chunk, c->addr,
					 EBADMSG, true);
		snapblk_dev_put(devs[i].dev);
	}
	snapblk_chunk_put(c);
	return true;
}

/* All or none: on failure the caller frees what was allocated. */
static int alloc_pages_for(struct snapblk_chunk *c)
{
	u32 i;

	c->nr_pages = c->chunk_size >> PAGE_SHIFT;
	c->pages = kvcalloc(c->nr_pages, sizeof(*c->pages), GFP_KERNEL);
	if (!c->pages) {
		c->nr_pages = 0;
		return -ENOMEM;
	}
	for (i = 0; i < c->nr_pages; i++) {
		c->pages[i] = alloc_page(GFP_KERNEL);
		if (!c->pages[i])
			return -ENOMEM;
	}
	return 0;
}

/* Copy the daemon's ciphertext into the chunk's pages. */
static int copy_ciphertext(struct snapblk_chunk *c, struct iov_iter *from)
{
	u32 i;

	for (i = 0; i < c->nr_pages; i++)
		if (copy_page_from_iter(c->pages[i], 0, PAGE_SIZE, from) !=
		    PAGE_SIZE)
			return -EFAULT;
	return 0;
}

/* SHA-256 of the ciphertext must be the chunk's address. */
static int verify_address(struct snapblk_chunk *c)
{
	SHASH_DESC_ON_STACK(desc, sha256_tfm);
	u8 digest[SNAPBLK_ADDR_LEN];
	int ret;
	u32 i;

	desc->tfm = sha256_tfm;
	ret = crypto_shash_init(desc);
	for (i = 0; !ret && i < c->nr_pages; i++) {
		void *p = kmap_local_page(c->pages[i]);

		ret = crypto_shash_update(desc, p, PAGE_SIZE);
		kunmap_local(p);
	}
	if (!ret)
		ret = crypto_shash_final(desc, digest);
	shash_desc_zero(desc);
	if (ret)
		return ret;
	return memcmp(digest, c->addr, SNAPBLK_ADDR_LEN) ? -EBADMSG : 0;
}

/* AES-256-CTR with a zero IV and the chunk's key, in place. */
static int decrypt_chunk(struct snapblk_chunk *c)
{
	struct crypto_skcipher *tfm;
	struct skcipher_request *req;
	struct sg_table sgt;
	DECLARE_CRYPTO_WAIT(wait);
	u8 iv[16] = { 0 };
	int ret;

	tfm = crypto_alloc_skcipher("ctr(aes)", 0, 0);
	if (IS_ERR(tfm))
		return PTR_ERR(tfm);
	ret = crypto_skcipher_setkey(tfm, c->key, SNAPBLK_CHUNK_KEY_LEN);
	if (ret)
		goto out_tfm;
	ret = sg_alloc_table_from_pages(&sgt, c->pages, c->nr_pages, 0,
					c->chunk_size, GFP_KERNEL);
	if (ret)
		goto out_tfm;
	req = skcipher_request_alloc(tfm, GFP_KERNEL);
	if (!req) {
		ret = -ENOMEM;
		goto out_sg;
	}
	skcipher_request_set_callback(req, CRYPTO_TFM_REQ_MAY_SLEEP,
				      crypto_req_done, &wait);
	skcipher_request_set_crypt(req, sgt.sgl, sgt.sgl, c->chunk_size, iv);
	ret = crypto_wait_req(crypto_skcipher_decrypt(req), &wait);
	skcipher_request_free(req);
out_sg:
	sg_free_table(&sgt);
out_tfm:
	crypto_free_skcipher(tfm);
	return ret;
}

/*
 * One answer per write() or writev(): the response header, then, unless
 * it reports an error, the chunk's ciphertext.
 */
static ssize_t fetch_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	struct snapblk_fetcher *f = iocb->ki_filp->private_data;
	size_t len = iov_iter_count(from);
	struct snapblk_fetch_resp resp;
	struct snapblk_chunk *c;
	bool bad = false;	/* the answer failed a check on its content */
	int err;

	u32 hlen;

	if (len < SNAPBLK_FETCH_RESP_LEN_V3)
		return -EINVAL;
	memset(&resp, 0, sizeof(resp));
	if (copy_from_iter(&resp, SNAPBLK_FETCH_RESP_LEN_V3, from) !=
	    SNAPBLK_FETCH_RESP_LEN_V3)
		return -EFAULT;
	hlen = resp.len;
	if (hlen != SNAPBLK_FETCH_RESP_LEN_V3 && hlen != sizeof(resp))
		return -EINVAL;
	if (hlen > len)
		return -EINVAL;
	if (hlen > SNAPBLK_FETCH_RESP_LEN_V3 &&
	    copy_from_iter(&resp.tier, hlen - SNAPBLK_FETCH_RESP_LEN_V3, from) !=
	    hlen - SNAPBLK_FETCH_RESP_LEN_V3)
		return -EFAULT;
	c = claim_answer(f, resp.id);
	if (!c)
		return -ENOENT;

	if (resp.error) {
		if (len != hlen) {
			unclaim(f, c);
			return -EINVAL;
		}
		err = -EIO;
		pr_warn_ratelimited("snapblk%u: chunk %llu: fetch daemon reports error %u\n",
				    c->dev_index, c->chunk, resp.error);
		goto done;
	}
	if (len != hlen + c->chunk_size) {
		/* A truncated or padded chunk is a bad chunk. */
		err = -EBADMSG;
		bad = true;
		pr_warn_ratelimited("snapblk%u: chunk %llu: %zu bytes delivered, %u expected\n",
				    c->dev_index, c->chunk,
				    len - hlen, c->chunk_size);
		goto done;
	}
	err = alloc_pages_for(c);
	if (!err)
		err = copy_ciphertext(c, from);
	if (err == -EFAULT) {
		unclaim(f, c);
		return -EFAULT;
	}
	if (err == -ENOMEM)
		goto nomem;
	if (!err) {
		err = verify_address(c);
		bad = err == -EBADMSG;
		if (bad)
			pr_warn_ratelimited("snapblk%u: chunk %llu: content does not match its address\n",
					    c->dev_index, c->chunk);
	}
	if (!err) {
		err = decrypt_chunk(c);
		if (err == -ENOMEM)
			goto nomem;
		if (err)
			pr_warn_ratelimited("snapblk%u: chunk %llu: cannot decrypt: %d\n",
					    c->dev_index, c->chunk, err);
	}
done:
	/* A bad answer fails the reads only the second time. */
	if (bad && refetch(c))
		return len;
	snapblk_cache_complete(c, err);
	snapblk_chunk_put(c);
	return len;

nomem:
	pr_warn_ratelimited("snapblk%u: chunk %llu: no memory for the answer: fetched again\n",
			    c->dev_index, c->chunk);
	requeue(c);
	return -ENOMEM;
}

static const struct file_operations fetch_fops = {
	.owner = THIS_MODULE,
	.open = fetch_open,
	.release = fetch_release,
	.read = fetch_read,
	.write_iter = fetch_write_iter,
	.poll = fetch_poll,
	.llseek = noop_llseek,
};

static struct miscdevice fetch_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "snapblk-fetch",
	.fops = &fetch_fops,
	.mode = 0600,
};

int __init snapblk_fetch_init(void)
{
	struct crypto_skcipher *ctr;
	int ret;

	sha256_tfm = crypto_alloc_shash("sha256", 0, 0);
	if (IS_ERR(sha256_tfm)) {
		pr_err("no sha256 in the crypto API: %ld\n",
		       PTR_ERR(sha256_tfm));
		return PTR_ERR(sha256_tfm);
	}
	/*
	 * Every chunk is decrypted with a ctr(aes) transform of its own;
	 * make sure the cipher is there now (this loads the ctr module
	 * where it is one) rather than fail every read later.
	 */
	ctr = crypto_alloc_skcipher("ctr(aes)", 0, 0);
	if (IS_ERR(ctr)) {
		ret = PTR_ERR(ctr);
		pr_err("no ctr(aes) in the crypto API (%d): load the ctr module first\n",
		       ret);
		goto err_sha;
	}
	crypto_free_skcipher(ctr);
	ret = misc_register(&fetch_misc);
	if (ret)
		goto err_sha;
	return 0;

err_sha:
	crypto_free_shash(sha256_tfm);
	return ret;
}

/* No file is open (each holds a module reference) and no device exists. */
void snapblk_fetch_exit(void)
{
	struct snapblk_chunk *c, *tmp;
	LIST_HEAD(left);

	misc_deregister(&fetch_misc);
	cancel_delayed_work_sync(&fetch_timeout_work);
	spin_lock(&snapblk_cache_lock);
	list_for_each_entry_safe(c, tmp, &fetch_queue, fnode) {
		refcount_inc(&c->ref);
		list_move_tail(&c->fnode, &left);
	}
	spin_unlock(&snapblk_cache_lock);
	list_for_each_entry_safe(c, tmp, &left, fnode) {
		list_del_init(&c->fnode);
		snapblk_cache_complete(c, -ESHUTDOWN);
		snapblk_chunk_put(c);
	}
	crypto_free_shash(sha256_tfm);
}
