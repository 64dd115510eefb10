// SPDX-License-Identifier: GPL-2.0
/*
 * Cohort hub: proxy files and the file server beneath them.
 *
 * A distributed process keeps its open files where they were opened (their
 * home node). On every other node its descriptors are proxy files: files of
 * a small pseudo file system whose operations the module in the files slot
 * (&struct cohort_file_ops) sends to the home. A proxy never blocks in the
 * module: a read or write that would wait comes back -EAGAIN, and the proxy
 * waits here, interruptibly, until the home says the file's poll mask
 * changed (cohort_proxy_ready()). So signals, SA_RESTART and O_NONBLOCK
 * are the local kernel's own.
 *
 * On the home side, cohort_file_read() and friends run the operations on
 * the real file without ever blocking the caller (a message dispatcher),
 * and a watch (cohort_watch_new()) reports wake-ups of the file's wait
 * queues.
 *
 * See Documentation/migration.rst in the Cohort tree.
 */
#define pr_fmt(fmt) "cohort: " fmt

#include <linux/cred.h>
#include <linux/dnotify.h>
#include <linux/fcntl.h>
#include <linux/fdtable.h>
#include <linux/filelock.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/fsnotify.h>
#include <linux/kthread.h>
#include <linux/mman.h>
#include <linux/sched/mm.h>
#include <linux/kdev_t.h>
#include <linux/mount.h>
#include <linux/namei.h>
#include <linux/poll.h>
#include <linux/pseudo_fs.h>
#include <linux/sched/signal.h>
#include <linux/security.h>
#include <linux/slab.h>
#include <linux/stat.h>
#include <linux/termios.h>
#include <linux/tty.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <linux/workqueue.h>

#include "internal.h"

#define COHORT_PROXY_MAGIC	0x43687078	/* "Chpx" */

/* Every proxy file of this node, for cohort_proxy_ready() and peer death. */
static LIST_HEAD(proxies);
static DEFINE_SPINLOCK(proxies_lock);
static struct vfsmount *proxy_mnt;

/* The poll events that end a wait for reading or writing. */
#define PROXY_IN	(EPOLLIN | EPOLLRDNORM | EPOLLERR | EPOLLHUP | EPOLLRDHUP)
#define PROXY_OUT	(EPOLLOUT | EPOLLWRNORM | EPOLLERR | EPOLLHUP)

/* What a proxy reports when its home is gone. */
#define PROXY_DEAD_MASK	(EPOLLERR | EPOLLHUP | EPOLLIN | EPOLLOUT)

static const struct cohort_file_ops *proxy_ops_get(int *idx)
{
	const struct cohort_file_ops *ops;

	*idx = srcu_read_lock(&cohort_srcu);
	ops = cohort_slot_ops(COHORT_SLOT_FILES);
	if (!ops)
		srcu_read_unlock(&cohort_srcu, *idx);
	return ops;
}

static void proxy_ops_put(int idx)
{
	srcu_read_unlock(&cohort_srcu, idx);
}

/*
 * proxy_ops_get() for a request of @p: NULL (nothing held) when @p is none
 * or dead, as when no module serves proxies.
 */
static const struct cohort_file_ops *proxy_ops_live(struct cohort_proxy *p,
						    int *idx)
{
	if (!p || READ_ONCE(p->dead))
		return NULL;
	return proxy_ops_get(idx);
}

static struct cohort_proxy *proxy_of(struct file *file)
{
	return file->private_data;
}

/**
 * cohort_proxy_home - the node holding the file behind a proxy
 * @p: the proxy
 */
unsigned int cohort_proxy_home(const struct cohort_proxy *p)
{
	return p->home;
}
EXPORT_SYMBOL_GPL(cohort_proxy_home);

/**
 * cohort_proxy_id - the export id of the file behind a proxy, at its home
 * @p: the proxy
 */
u64 cohort_proxy_id(const struct cohort_proxy *p)
{
	return p->id;
}
EXPORT_SYMBOL_GPL(cohort_proxy_id);

/**
 * cohort_proxy_set_mask - record the poll mask a reply from the home carried
 * @p: the proxy
 * @mask: the file's poll mask at the home
 */
void cohort_proxy_set_mask(struct cohort_proxy *p, __poll_t mask)
{
	WRITE_ONCE(p->mask, mask);
}
EXPORT_SYMBOL_GPL(cohort_proxy_set_mask);

static void proxy_wake(struct cohort_proxy *p, __poll_t mask)
{
	atomic_inc(&p->seq);
	wake_up_interruptible_poll(&p->wq, mask);
}

/**
 * cohort_proxy_ready - the home says a file's poll mask changed
 * @home: the node that sent it
 * @id: the export id there
 * @mask: the new mask
 *
 * Wakes every waiter on every proxy of that file on this node.
 */
void cohort_proxy_ready(unsigned int home, u64 id, __poll_t mask)
{
	struct cohort_proxy *p;

	spin_lock(&proxies_lock);
	list_for_each_entry(p, &proxies, node) {
		if (p->home == home && p->id == id) {
			WRITE_ONCE(p->mask, mask);
			proxy_wake(p, mask);
		}
	}
	spin_unlock(&proxies_lock);
}
EXPORT_SYMBOL_GPL(cohort_proxy_ready);

/**
 * cohort_proxy_node_down - a home went down
 * @home: the node
 *
 * Its proxies fail every operation with -EIO from now on, poll reports
 * EPOLLERR | EPOLLHUP, and every waiter on them wakes up.
 */
void cohort_proxy_node_down(unsigned int home)
{
	struct cohort_proxy *p;

	spin_lock(&proxies_lock);
	list_for_each_entry(p, &proxies, node) {
		if (p->home == home) {
			WRITE_ONCE(p->dead, true);
			proxy_wake(p, PROXY_DEAD_MASK);
		}
	}
	spin_unlock(&proxies_lock);
}
EXPORT_SYMBOL_GPL(cohort_proxy_node_down);

/*
 * Wait until the home reports @events, or an error. @seq is p->seq as read
 * before the operation that found the file not ready: a report that came
 * since then ends the wait at once.
 */
static int proxy_wait(struct cohort_proxy *p, __poll_t events, int seq)
{
	const struct cohort_file_ops *ops;
	int idx, mask;

	ops = proxy_ops_get(&idx);
	if (!ops)
		return -EIO;
	mask = ops->arm(p);
	proxy_ops_put(idx);
	if (mask < 0)
		return mask;
	WRITE_ONCE(p->mask, (__poll_t)mask);
	if ((__poll_t)mask & events)
		return 0;
	if (wait_event_interruptible(p->wq, atomic_read(&p->seq) != seq ||
					    READ_ONCE(p->dead)))
		return -ERESTARTSYS;
	return READ_ONCE(p->dead) ? -EIO : 0;
}

/* One request for at most COHORT_FILE_MAX_DATA bytes, waiting if needed. */
static ssize_t proxy_rw_once(struct file *file, void *buf, size_t len,
			     loff_t pos, bool write)
{
	struct cohort_proxy *p = proxy_of(file);
	const struct cohort_file_ops *ops;
	ssize_t ret;
	int idx, seq;

	for (;;) {
		if (READ_ONCE(p->dead))
			return -EIO;
		seq = atomic_read(&p->seq);
		ops = proxy_ops_get(&idx);
		if (!ops)
			return -EIO;
		if (write)
			ret = ops->write(p, buf, len, pos, file->f_flags);
		else
			ret = ops->read(p, buf, len, pos, file->f_flags);
		proxy_ops_put(idx);
		if (ret != -EAGAIN || (file->f_flags & O_NONBLOCK))
			return ret;
		ret = proxy_wait(p, write ? PROXY_OUT : PROXY_IN, seq);
		if (ret)
			return ret;
	}
}

static ssize_t proxy_read(struct file *file, char __user *ubuf, size_t count,
			  loff_t *ppos)
{
	bool whole = S_ISREG(file_inode(file)->i_mode);
	size_t chunk = min_t(size_t, count, COHORT_FILE_MAX_DATA);
	ssize_t done = 0, ret = 0;
	void *buf;

	if (!count)
		return 0;
	buf = kvmalloc(chunk, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	while (done < count) {
		size_t n = min_t(size_t, count - done, chunk);

		ret = proxy_rw_once(file, buf, n, ppos ? *ppos : -1, false);
		if (ret <= 0)
			break;
		if (copy_to_user(ubuf + done, buf, ret)) {
			ret = -EFAULT;
			break;
		}
		done += ret;
		if (ppos)
			*ppos += ret;
		/* A pipe or a terminal gives what it has; a file, all. */
		if (!whole || ret < n)
			break;
	}
	kvfree(buf);
	return done ? done : ret;
}

static ssize_t proxy_write(struct file *file, const char __user *ubuf,
			   size_t count, loff_t *ppos)
{
	size_t chunk = min_t(size_t, count, COHORT_FILE_MAX_DATA);
	ssize_t done = 0, ret = 0;
	void *buf;

	if (!count)
		return 0;
	buf = kvmalloc(chunk, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	while (done < count) {
		size_t n = min_t(size_t, count - done, chunk);

		if (copy_from_user(buf, ubuf + done, n)) {
			ret = -EFAULT;
			break;
		}
		ret = proxy_rw_once(file, buf, n, ppos ? *ppos : -1, true);
		if (ret <= 0)
			break;
		done += ret;
		if (ppos)
			*ppos += ret;
		/* Non-blocking writers take a short write as it comes. */
		if ((file->f_flags & O_NONBLOCK) && ret < n)
			break;
	}
	kvfree(buf);
	if (ret == -EPIPE && !done)
		send_sig(SIGPIPE, current, 0);
	return done ? done : ret;
}

static loff_t proxy_llseek(struct file *file, loff_t offset, int whence)
{
	struct cohort_proxy *p = proxy_of(file);
	const struct cohort_file_ops *ops;
	loff_t ret;
	int idx;

	ops = proxy_ops_live(p, &idx);
	if (!ops)
		return -EIO;
	ret = ops->llseek(p, offset, whence);
	proxy_ops_put(idx);
	return ret;
}

static __poll_t proxy_poll(struct file *file, struct poll_table_struct *pt)
{
	struct cohort_proxy *p = proxy_of(file);
	const struct cohort_file_ops *ops;
	int idx, mask;

	poll_wait(file, &p->wq, pt);
	if (READ_ONCE(p->dead))
		return PROXY_DEAD_MASK;
	if (!READ_ONCE(p->armed)) {
		ops = proxy_ops_get(&idx);
		if (!ops)
			return PROXY_DEAD_MASK;
		mask = ops->arm(p);
		proxy_ops_put(idx);
		if (mask < 0)
			return EPOLLERR;
		WRITE_ONCE(p->mask, (__poll_t)mask);
		WRITE_ONCE(p->armed, true);
	}
	return READ_ONCE(p->mask);
}

static int proxy_fsync(struct file *file, loff_t start, loff_t end,
		       int datasync)
{
	struct cohort_proxy *p = proxy_of(file);
	const struct cohort_file_ops *ops;
	int idx, ret;

	ops = proxy_ops_live(p, &idx);
	if (!ops)
		return -EIO;
	ret = ops->fsync(p, datasync);
	proxy_ops_put(idx);
	return ret;
}

/* Most bytes of entries one readdir request to the home brings back. */
#define PROXY_READDIR_MAX	(32 * 1024)

/*
 * getdents(2) on a proxy of a directory. The position is the home's (a
 * proxy is a stream): the home reads entries from it and moves it past
 * them. Each entry is emitted at its position there, and a batch ends
 * with the position after it (an entry without a name), so the d_off
 * values the caller sees are the home's: telldir() and seekdir() work. An
 * entry the caller has no room for sends the home's position back to that
 * entry, so that the next call reads it again.
 */
static int proxy_iterate(struct file *file, struct dir_context *ctx)
{
	struct cohort_proxy *p = proxy_of(file);
	const struct cohort_file_ops *ops;
	ssize_t len, at;
	int idx, ret = 0;
	void *buf;

	buf = kvmalloc(PROXY_READDIR_MAX, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (READ_ONCE(p->dead)) {
			ret = -EIO;
			break;
		}
		ops = proxy_ops_get(&idx);
		if (!ops) {
			ret = -EIO;
			break;
		}
		len = ops->readdir(p, buf, PROXY_READDIR_MAX);
		proxy_ops_put(idx);
		if (len <= 0) {
			ret = len;
			break;
		}
		for (at = 0; at < len;) {
			struct cohort_dirent *d = buf + at;
			size_t rec = ALIGN(sizeof(*d) + d->namelen, 8);

			if (at + rec > len) {
				ret = -EPROTO;
				goto out;
			}
			ctx->pos = d->pos;
			if (!d->namelen) {
				/* The end of the batch. */
				at += rec;
				continue;
			}
			if (!dir_emit(ctx, d->name, d->namelen, d->ino, d->type)) {
				/* No room: this entry comes first next time. */
				ops = proxy_ops_get(&idx);
				if (!ops) {
					ret = -EIO;
					goto out;
				}
				ret = ops->llseek(p, d->pos, SEEK_SET);
				proxy_ops_put(idx);
				ret = ret < 0 ? ret : 0;
				goto out;
			}
			at += rec;
		}
	}
out:
	kvfree(buf);
	return ret;
}

static int proxy_release(struct inode *inode, struct file *file)
{
	struct cohort_proxy *p = proxy_of(file);
	const struct cohort_file_ops *ops;
	int idx;

	spin_lock(&proxies_lock);
	list_del(&p->node);
	spin_unlock(&proxies_lock);
	if (!READ_ONCE(p->dead)) {
		ops = proxy_ops_get(&idx);
		if (ops) {
			ops->release(p);
			proxy_ops_put(idx);
		}
	}
	kfree(p);
	return 0;
}

/*
 * The ioctls a proxy forwards, with the size of what they read from and
 * write to user memory: the terminal's (legacy numbers, whose sizes the
 * number does not say) and any _IOC-encoded one up to
 * COHORT_IOCTL_MAX_DATA bytes. A command that takes no pointer sends its
 * argument's value.
 */
struct proxy_ioctl_shape {
	unsigned int cmd;
	u16 in, out;
};

static const struct proxy_ioctl_shape tty_ioctls[] = {
	{ TCGETS, 0, sizeof(struct termios) },
	{ TCSETS, sizeof(struct termios), 0 },
	{ TCSETSW, sizeof(struct termios), 0 },
	{ TCSETSF, sizeof(struct termios), 0 },
	{ TIOCGWINSZ, 0, sizeof(struct winsize) },
	{ TIOCSWINSZ, sizeof(struct winsize), 0 },
	{ TIOCGPGRP, 0, sizeof(pid_t) },
	{ TIOCSPGRP, sizeof(pid_t), 0 },
	{ TIOCGSID, 0, sizeof(pid_t) },
	{ TIOCOUTQ, 0, sizeof(int) },
	{ FIONREAD, 0, sizeof(int) },
	{ TCFLSH, 0, 0 },
	{ TCXONC, 0, 0 },
	{ TCSBRK, 0, 0 },
	{ TCSBRKP, 0, 0 },
};

static int proxy_ioctl_shape(unsigned int cmd, size_t *in, size_t *out)
{
	size_t size = _IOC_SIZE(cmd);
	int i;

	for (i = 0; i < ARRAY_SIZE(tty_ioctls); i++) {
		if (tty_ioctls[i].cmd == cmd) {
			*in = tty_ioctls[i].in;
			*out = tty_ioctls[i].out;
			return 0;
		}
	}
	/* Legacy numbers have type 0x54 ('T') and no direction or size. */
	if (!_IOC_DIR(cmd) && !size && _IOC_TYPE(cmd) == 'T')
		return -ENOTTY;
	if (size > COHORT_IOCTL_MAX_DATA)
		return -ENOTTY;
	*in = _IOC_DIR(cmd) & _IOC_WRITE ? size : 0;
	*out = _IOC_DIR(cmd) & _IOC_READ ? size : 0;
	return 0;
}

static long proxy_ioctl(struct file *file, unsigned int cmd,
			unsigned long arg)
{
	struct cohort_proxy *p = proxy_of(file);
	const struct cohort_file_ops *ops;
	u8 in[COHORT_IOCTL_MAX_DATA] __aligned(8);
	size_t in_len, out_len;
	void *out = NULL;
	long ret;
	int idx;

	if (READ_ONCE(p->dead))
		return -EIO;
	ret = proxy_ioctl_shape(cmd, &in_len, &out_len);
	if (ret)
		return ret;
	if (in_len && copy_from_user(in, (void __user *)arg, in_len))
		return -EFAULT;
	if (out_len) {
		out = kzalloc(out_len, GFP_KERNEL);
		if (!out)
			return -ENOMEM;
	}
	ops = proxy_ops_get(&idx);
	if (!ops) {
		kfree(out);
		return -EIO;
	}
	ret = ops->ioctl(p, cmd, in_len || out_len ? 0 : arg, in, in_len,
			 out, out_len);
	proxy_ops_put(idx);
	if (ret >= 0 && out_len && copy_to_user((void __user *)arg, out, out_len))
		ret = -EFAULT;
	kfree(out);
	return ret;
}

/* Longest sleep between two tries of a lock that must wait, in ms. */
#define PROXY_LOCK_POLL_MAX_MS	100

/*
 * Sends @lk to the home; a lock that must wait (@wait) is tried again,
 * sleeping between tries (1 ms, doubling up to PROXY_LOCK_POLL_MAX_MS),
 * until it is granted or a signal comes: -ERESTARTSYS then, as a local
 * wait for a lock ends.
 */
static int proxy_lock_send(struct file *file, struct cohort_lock *lk, bool wait)
{
	struct cohort_proxy *p = proxy_of(file);
	const struct cohort_file_ops *ops;
	unsigned int delay_ms = 1;
	int idx, ret;

	for (;;) {
		ops = proxy_ops_live(p, &idx);
		if (!ops)
			return -EIO;
		ret = ops->lock(p, lk);
		proxy_ops_put(idx);
		if (ret != -EAGAIN || !wait)
			return ret;
		/* An early wake-up without a signal is not an interruption. */
		schedule_timeout_interruptible(msecs_to_jiffies(delay_ms));
		if (signal_pending(current))
			return -ERESTARTSYS;
		delay_ms = min(delay_ms * 2, PROXY_LOCK_POLL_MAX_MS);
	}
}

/*
 * fcntl(2) locks. An OFD lock belongs to an open file description, and a
 * proxy's is the home's: it is taken there, on the home's file, where it
 * conflicts with every lock of the inode as one taken at the home would. A
 * POSIX record lock belongs to a process (its files_struct): the home
 * takes it as the lock of the process's shadow there (the module names
 * the distributed process in the request), whose descriptor table owns
 * the locks the process took before it left, so they are the one owner's.
 * A process that is not distributed has no shadow at the home: its locks
 * are refused with -ENOLCK rather than taken on the proxy alone, where no
 * other process would see them. Only regular files' locks travel so.
 */
static int proxy_lock(struct file *file, int cmd, struct file_lock *fl)
{
	struct cohort_lock lk = {
		.kind = COHORT_LOCK_OFD,
		.type = fl->c.flc_type,
		.pid = fl->c.flc_pid,
		.start = fl->fl_start,
		.end = fl->fl_end,
	};
	int ret;

	if (!IS_GETLK(cmd) && !IS_SETLK(cmd) && !IS_SETLKW(cmd))
		return -EINVAL;
	if (!(fl->c.flc_flags & FL_OFDLCK)) {
		if (!IS_GETLK(cmd) && !S_ISREG(file_inode(file)->i_mode))
			return fl->c.flc_type == F_UNLCK ? 0 : -ENOLCK;
		lk.kind = COHORT_LOCK_POSIX;
	}
	if (IS_GETLK(cmd)) {
		lk.cmd = COHORT_LOCK_TEST;
		ret = proxy_lock_send(file, &lk, false);
		if (ret)
			return ret;
		fl->c.flc_type = lk.type;
		if (lk.type != F_UNLCK) {
			fl->c.flc_flags = FL_POSIX |
					  (lk.conflict_ofd ? FL_OFDLCK : 0);
			fl->c.flc_pid = lk.pid;
			fl->fl_start = lk.start;
			fl->fl_end = lk.end;
		}
		return 0;
	}
	lk.cmd = COHORT_LOCK_SET;
	return proxy_lock_send(file, &lk, IS_SETLKW(cmd));
}

/*
 * close(2) of a proxy: a close at the home releases the POSIX record locks
 * that the closing process holds on the file, and so does this one, at the
 * home, for a distributed process (the module sends nothing for another).
 * Not on the way out of a migration (cohort_files_leave_all()).
 */
static int proxy_flush(struct file *file, fl_owner_t id)
{
	struct cohort_lock lk = {
		.cmd = COHORT_LOCK_SET,
		.kind = COHORT_LOCK_POSIX,
		.type = F_UNLCK,
		.pid = task_tgid_vnr(current),
		.start = 0,
		.end = OFFSET_MAX,
	};

	if (S_ISREG(file_inode(file)->i_mode))
		/* A release that fails leaves close(2) nothing to report. */
		proxy_lock_send(file, &lk, false);
	return 0;
}

/*
 * flock(2): a lock of the open file description, taken at the home like an
 * OFD lock. It goes when the home's file is closed for good, that is once
 * every proxy of it and every descriptor at the home are closed.
 */
static int proxy_flock(struct file *file, int cmd, struct file_lock *fl)
{
	struct cohort_lock lk = {
		.cmd = COHORT_LOCK_SET,
		.kind = COHORT_LOCK_FLOCK,
		.type = fl->c.flc_type,
		.pid = fl->c.flc_pid,
		.start = 0,
		.end = OFFSET_MAX,
	};

	return proxy_lock_send(file, &lk, IS_SETLKW(cmd));
}

static const struct file_operations cohort_proxy_fops = {
	.read		= proxy_read,
	.write		= proxy_write,
	.llseek		= proxy_llseek,
	.poll		= proxy_poll,
	.fsync		= proxy_fsync,
	.iterate_shared	= proxy_iterate,
	.unlocked_ioctl	= proxy_ioctl,
	.lock		= proxy_lock,
	.flock		= proxy_flock,
	.flush		= proxy_flush,
	.release	= proxy_release,
};

static int proxy_getattr(struct mnt_idmap *idmap, const struct path *path,
			 struct kstat *stat, u32 request_mask,
			 unsigned int query_flags)
{
	struct inode *inode = d_inode(path->dentry);
	struct cohort_proxy *p = inode->i_private;
	const struct cohort_file_ops *ops;
	struct cohort_stat st;
	int idx, ret;

	ops = proxy_ops_live(p, &idx);
	if (!ops)
		return -EIO;
	ret = ops->getattr(p, &st);
	proxy_ops_put(idx);
	if (ret)
		return ret;
	stat->result_mask = STATX_BASIC_STATS & st.result_mask;
	stat->dev = new_decode_dev(st.dev);
	stat->ino = st.ino;
	stat->mode = st.mode;
	stat->nlink = st.nlink;
	stat->uid = make_kuid(&init_user_ns, st.uid);
	stat->gid = make_kgid(&init_user_ns, st.gid);
	stat->rdev = new_decode_dev(st.rdev);
	stat->size = st.size;
	stat->blksize = st.blksize;
	stat->blocks = st.blocks;
	stat->atime.tv_sec = st.atime;
	stat->atime.tv_nsec = st.atime_nsec;
	stat->mtime.tv_sec = st.mtime;
	stat->mtime.tv_nsec = st.mtime_nsec;
	stat->ctime.tv_sec = st.ctime;
	stat->ctime.tv_nsec = st.ctime_nsec;
	if (st.result_mask & STATX_BTIME) {
		stat->result_mask |= STATX_BTIME;
		stat->btime.tv_sec = st.btime;
		stat->btime.tv_nsec = st.btime_nsec;
	}
	return 0;
}

/* One time of @attr for the home's vfs_utimes(): set, now, or left. */
static void proxy_filetime(struct cohort_filetime *t, unsigned int valid,
			   unsigned int which, unsigned int set,
			   const struct timespec64 *ts)
{
	t->sec = 0;
	if (!(valid & which)) {
		t->nsec = UTIME_OMIT;
	} else if (!(valid & set)) {
		t->nsec = UTIME_NOW;
	} else {
		t->sec = ts->tv_sec;
		t->nsec = ts->tv_nsec;
	}
}

/*
 * The file lives at its home: ftruncate(2), fchmod(2), fchown(2) and
 * futimens(2) are sent there, where the home runs the kernel's own
 * vfs_fchmod(), vfs_fchown() and vfs_utimes() on its file with the caller's
 * credentials, so they are checked as they would be there. The iattr
 * notify_change() built for the proxy's inode is turned back into the
 * call's arguments: an owner change first (chown adds ATTR_KILL_* and
 * maybe ATTR_MODE, which the home recomputes for the real inode), then a
 * mode, then times. Anything else here would lie.
 */
static int proxy_setattr(struct mnt_idmap *idmap, struct dentry *dentry,
			 struct iattr *attr)
{
	struct cohort_proxy *p = d_inode(dentry)->i_private;
	unsigned int valid = attr->ia_valid;
	const struct cohort_file_ops *ops;
	struct cohort_setattr sa = {};
	int idx, ret;

	if (valid & ATTR_SIZE) {
		if (!(valid & ATTR_FILE))
			return -EOPNOTSUPP;
	} else if (valid & (ATTR_UID | ATTR_GID)) {
		sa.change = COHORT_SETATTR_OWNER;
		sa.uid = valid & ATTR_UID ? __vfsuid_val(attr->ia_vfsuid) : (u32)-1;
		sa.gid = valid & ATTR_GID ? __vfsgid_val(attr->ia_vfsgid) : (u32)-1;
	} else if (valid & ATTR_MODE) {
		sa.change = COHORT_SETATTR_MODE;
		sa.mode = attr->ia_mode & S_IALLUGO;
	} else if (valid & (ATTR_ATIME | ATTR_MTIME | ATTR_TOUCH)) {
		sa.change = COHORT_SETATTR_TIMES;
		sa.now = valid & ATTR_TOUCH;
		proxy_filetime(&sa.times[0], valid, ATTR_ATIME, ATTR_ATIME_SET,
			       &attr->ia_atime);
		proxy_filetime(&sa.times[1], valid, ATTR_MTIME, ATTR_MTIME_SET,
			       &attr->ia_mtime);
	} else {
		return -EOPNOTSUPP;
	}
	ops = proxy_ops_live(p, &idx);
	if (!ops)
		return -EIO;
	if (valid & ATTR_SIZE)
		ret = ops->truncate(p, attr->ia_size);
	else
		ret = ops->setattr(p, &sa);
	proxy_ops_put(idx);
	return ret;
}

#ifdef CONFIG_COHORT_HOOKS
/*
 * The base of a record lock given relative to the file position (SEEK_CUR,
 * lockf(3)) or its end (SEEK_END): a proxy is a stream whose own position
 * and size stay 0; the home's are asked for (an lseek(0, SEEK_CUR), which
 * does not move the position, or an fstat for the size).
 */
int __cohort_file_lock_base(struct file *file, int whence, loff_t *base)
{
	struct cohort_proxy *p = cohort_file_proxy(file);
	const struct cohort_file_ops *ops;
	struct cohort_stat st;
	loff_t ret;
	int idx;

	if (!p)
		return 0;
	ops = proxy_ops_live(p, &idx);
	if (!ops)
		return -EIO;
	if (whence == SEEK_CUR) {
		ret = ops->llseek(p, 0, SEEK_CUR);
	} else {
		ret = ops->getattr(p, &st);
		if (!ret)
			ret = st.size;
	}
	proxy_ops_put(idx);
	if (ret < 0)
		return ret;
	*base = ret;
	return 0;
}

/*
 * fcntl(F_SETFL) of a proxy (from setfl(), which then sets the proxy's own
 * copy): the flags belong to the open file description, which is the
 * home's, so they change there, checked with the caller's credentials
 * (file_setfl()). FASYNC stays the proxy's: the home's file would signal
 * its own owner, and a proxy has no fasync() of its own.
 */
int __cohort_file_setfl(struct file *file, unsigned int flags)
{
	struct cohort_setattr sa = {
		.change = COHORT_SETATTR_FLAGS,
		.flags = flags & (O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME),
	};
	struct cohort_proxy *p = cohort_file_proxy(file);
	const struct cohort_file_ops *ops;
	int idx, ret;

	if (!p)
		return 0;
	ops = proxy_ops_live(p, &idx);
	if (!ops)
		return -EIO;
	ret = ops->setattr(p, &sa);
	proxy_ops_put(idx);
	return ret;
}
#endif

static const struct inode_operations cohort_proxy_iops = {
	.getattr	= proxy_getattr,
	.setattr	= proxy_setattr,
};

static char *proxy_dname(struct dentry *dentry, char *buffer, int buflen)
{
	struct cohort_proxy *p = d_inode(dentry)->i_private;

	return dynamic_dname(buffer, buflen, "cohort-proxy:[%u:%llu]",
			     p ? p->home : 0, p ? p->id : 0);
}

static const struct dentry_operations proxy_dentry_ops = {
	.d_dname	= proxy_dname,
};

static int proxyfs_init_fs_context(struct fs_context *fc)
{
	struct pseudo_fs_context *ctx = init_pseudo(fc, COHORT_PROXY_MAGIC);

	if (!ctx)
		return -ENOMEM;
	ctx->dops = &proxy_dentry_ops;
	return 0;
}

static struct file_system_type proxy_fs_type = {
	.name			= "cohort-proxy",
	.init_fs_context	= proxyfs_init_fs_context,
	.kill_sb		= kill_anon_super,
};

/*
 * The inode's type: a proxy is a regular file, a FIFO or a character
 * device as its file is; anything else (a directory, a socket) is a plain
 * proxy, so that no code takes it for a directory it could walk or a
 * socket it could use. fstat() still reports the home's type.
 */
static umode_t proxy_inode_mode(u32 i_mode)
{
	umode_t type = i_mode & S_IFMT;

	if (type != S_IFREG && type != S_IFIFO && type != S_IFCHR)
		type = S_IFREG;
	return type | (i_mode & 0777);
}

#define PROXY_FMODE_MIRRORED (FMODE_LSEEK | FMODE_PREAD | FMODE_PWRITE)

/**
 * cohort_proxy_new - a proxy file for a file held by another node
 * @home: the node holding the file
 * @id: its export id there
 * @f_flags: the file's status flags there (O_*)
 * @f_mode: its FMODE_* bits there; read, write, seek, pread and pwrite
 *	are mirrored
 * @i_mode: its inode's mode there
 *
 * The caller owns the one reference of the returned file; releasing the
 * last reference calls the files slot's release(). The position is the
 * home's: the proxy is a stream here, and pread/pwrite carry their offset.
 *
 * Return: the file or an ERR_PTR().
 */
struct file *cohort_proxy_new(unsigned int home, u64 id, u32 f_flags,
			      u32 f_mode, u32 i_mode)
{
	unsigned int acc = f_mode & (FMODE_READ | FMODE_WRITE);
	struct cohort_proxy *p;
	struct inode *inode;
	struct file *file;
	int flags;

	if (IS_ERR_OR_NULL(proxy_mnt))
		return ERR_PTR(-ENODEV);
	if (!acc)
		return ERR_PTR(-EINVAL);
	p = kzalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return ERR_PTR(-ENOMEM);
	p->home = home;
	p->id = id;
	init_waitqueue_head(&p->wq);
	inode = new_inode_pseudo(proxy_mnt->mnt_sb);
	if (!inode) {
		kfree(p);
		return ERR_PTR(-ENOMEM);
	}
	inode->i_ino = get_next_ino();
	inode->i_mode = proxy_inode_mode(i_mode);
	/*
	 * Owned by the task that installs it, so that the VFS's checks of the
	 * proxy's inode before proxy_setattr() (utimes to now) let the task
	 * through to the home, which checks for real.
	 */
	inode->i_uid = current_fsuid();
	inode->i_gid = current_fsgid();
	inode->i_op = &cohort_proxy_iops;
	inode->i_fop = &cohort_proxy_fops;
	inode->i_private = p;
	simple_inode_init_ts(inode);

	flags = f_flags & ~(O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC);
	flags |= acc == (FMODE_READ | FMODE_WRITE) ? O_RDWR :
		 acc == FMODE_WRITE ? O_WRONLY : O_RDONLY;
	file = alloc_file_pseudo(inode, proxy_mnt, "", flags,
				 &cohort_proxy_fops);
	if (IS_ERR(file)) {
		iput(inode);
		kfree(p);
		return file;
	}
	file->private_data = p;
	file->f_mode &= ~PROXY_FMODE_MIRRORED;
	file->f_mode |= (f_mode & PROXY_FMODE_MIRRORED) | FMODE_STREAM;
	spin_lock(&proxies_lock);
	list_add(&p->node, &proxies);
	spin_unlock(&proxies_lock);
	return file;
}
EXPORT_SYMBOL_GPL(cohort_proxy_new);

/**
 * cohort_file_proxy - the proxy behind a file, if it is one
 * @file: any file
 *
 * Return: the proxy (valid while the caller holds @file) or NULL.
 */
struct cohort_proxy *cohort_file_proxy(struct file *file)
{
	return file->f_op == &cohort_proxy_fops ? proxy_of(file) : NULL;
}
EXPORT_SYMBOL_GPL(cohort_file_proxy);

/**
 * cohort_proxy_disown - forget a proxy's reference at its home
 * @file: a proxy file
 *
 * For a migration that failed on arrival: the node that sent it takes the
 * reference back itself, so releasing this proxy must not. The proxy fails
 * every operation from now on.
 */
void cohort_proxy_disown(struct file *file)
{
	struct cohort_proxy *p = cohort_file_proxy(file);

	if (p)
		WRITE_ONCE(p->dead, true);
}
EXPORT_SYMBOL_GPL(cohort_proxy_disown);

/**
 * cohort_file_info - what a proxy of @file must know of it
 * @file: the file
 * @f_flags: its status flags
 * @f_mode: its FMODE_* bits
 * @i_mode: its inode's mode
 */
void cohort_file_info(struct file *file, u32 *f_flags, u32 *f_mode,
		      u32 *i_mode)
{
	*f_flags = file->f_flags;
	*f_mode = (__force u32)file->f_mode;
	*i_mode = file_inode(file)->i_mode;
}
EXPORT_SYMBOL_GPL(cohort_file_info);

/**
 * cohort_file_get - take a reference to a file
 * @file: the file
 */
void cohort_file_get(struct file *file)
{
	get_file(file);
}
EXPORT_SYMBOL_GPL(cohort_file_get);

/**
 * cohort_file_put - drop a reference to a file
 * @file: the file
 */
void cohort_file_put(struct file *file)
{
	fput(file);
}
EXPORT_SYMBOL_GPL(cohort_file_put);

/**
 * cohort_fd_next - the next open descriptor of current's table
 * @fd: in: where to start; out: the descriptor found
 * @cloexec: out: whether it is close-on-exec
 *
 * Return: the file, with a reference the caller drops, or NULL when no
 * descriptor at or above @fd is open.
 */
struct file *cohort_fd_next(unsigned int *fd, bool *cloexec)
{
	struct files_struct *files = current->files;
	struct file *file = NULL;

	if (!files)
		return NULL;
	spin_lock(&files->file_lock);
	for (; *fd < files_fdtable(files)->max_fds; (*fd)++) {
		file = files_lookup_fd_locked(files, *fd);
		if (file) {
			get_file(file);
			*cloexec = close_on_exec(*fd, files);
			break;
		}
	}
	spin_unlock(&files->file_lock);
	return file;
}
EXPORT_SYMBOL_GPL(cohort_fd_next);

/**
 * cohort_fd_install_at - install a file at a given descriptor of current
 * @fd: the descriptor; a file open there is closed first
 * @file: the file; the caller keeps its own reference
 * @cloexec: set close-on-exec
 *
 * Return: 0 or a negative errno (-EBADF beyond RLIMIT_NOFILE).
 */
int cohort_fd_install_at(unsigned int fd, struct file *file, bool cloexec)
{
	return replace_fd(fd, file, cloexec ? O_CLOEXEC : 0);
}
EXPORT_SYMBOL_GPL(cohort_fd_install_at);

/**
 * cohort_fd_install_new - install a file at the lowest free descriptor
 * @file: the file; its reference passes to the table on success
 * @cloexec: set close-on-exec
 *
 * Return: the descriptor or a negative errno (the caller keeps its
 * reference then).
 */
int cohort_fd_install_new(struct file *file, bool cloexec)
{
	int fd = get_unused_fd_flags(cloexec ? O_CLOEXEC : 0);

	if (fd >= 0)
		fd_install(fd, file);
	return fd;
}
EXPORT_SYMBOL_GPL(cohort_fd_install_new);

/*
 * Empties current's descriptor table (unshared first), releasing each file
 * before it returns. @leave: the descriptors are not closed but move with
 * the task to another node, so its POSIX record locks stay (they are this
 * table's, which stays with the task's shadow) and a proxy is not flushed
 * (its flush releases them at its home).
 */
static int files_empty(bool leave)
{
	struct files_struct *files;
	struct file *file;
	unsigned int fd, max;
	int err;

	err = unshare_files();
	if (err)
		return err;
	files = current->files;
	if (!files)
		return 0;
	spin_lock(&files->file_lock);
	max = files_fdtable(files)->max_fds;
	spin_unlock(&files->file_lock);
	for (fd = 0; fd < max; fd++) {
		file = file_close_fd(fd);
		if (!file)
			continue;
		/* As close(2): filp_flush() is private to fs/open.c. */
		if (file->f_op->flush && !(leave && cohort_file_proxy(file)))
			file->f_op->flush(file, files);
		if (!(file->f_mode & FMODE_PATH)) {
			dnotify_flush(file, files);
			if (!leave)
				locks_remove_posix(file, files);
		}
		__fput_sync(file);
	}
	return 0;
}

/**
 * cohort_files_close_all - close every descriptor of current, now
 *
 * A table shared with another task is unshared first, so the other task
 * keeps its descriptors. Files are released before this returns, as by
 * close(2), not at the next return to user space: a shadow never returns
 * there while it serves, and a pipe's reader elsewhere must see its end.
 *
 * Return: 0 or a negative errno.
 */
int cohort_files_close_all(void)
{
	return files_empty(false);
}
EXPORT_SYMBOL_GPL(cohort_files_close_all);

/**
 * cohort_files_leave_all - empty current's descriptor table for a task
 * that left, keeping what its descriptors hold
 *
 * As cohort_files_close_all(), but the descriptors moved with the task:
 * the POSIX record locks of the table stay, owned by it (the shadow's
 * table, which a proxy's lock names at this node, see
 * cohort_task_lock_owner()), and proxies are not flushed, which would
 * release the task's locks at their homes.
 *
 * Return: 0 or a negative errno.
 */
int cohort_files_leave_all(void)
{
	return files_empty(true);
}
EXPORT_SYMBOL_GPL(cohort_files_leave_all);

/**
 * cohort_file_open - open a file for current, without a descriptor
 * @path: the path, relative to current's working directory
 * @flags: O_* flags
 * @mode: mode of a file created
 *
 * Return: the file or an ERR_PTR().
 */
struct file *cohort_file_open(const char *path, int flags, umode_t mode)
{
	return filp_open(path, flags | O_LARGEFILE, mode);
}
EXPORT_SYMBOL_GPL(cohort_file_open);

/* Whether I/O on @file may wait for something else than the disk. */
static bool file_may_block(struct file *file)
{
	umode_t mode = file_inode(file)->i_mode;

	return !S_ISREG(mode) && !S_ISBLK(mode) && !S_ISDIR(mode);
}

/**
 * cohort_file_poll_mask - a file's poll mask now
 * @file: the file
 */
__poll_t cohort_file_poll_mask(struct file *file)
{
	return vfs_poll(file, NULL);
}
EXPORT_SYMBOL_GPL(cohort_file_poll_mask);

/*
 * Files with ->read or ->write but no iterator method (some of /proc)
 * cannot take kernel buffers. The file server is a kernel thread: it
 * borrows an address space of its own for a scratch buffer, one caller at
 * a time.
 */
static DEFINE_MUTEX(server_mm_lock);
static struct mm_struct *server_mm;	/* under server_mm_lock, never freed */
#define SERVER_SCRATCH	0x10000000UL

/* Borrow the server's address space; on success server_mm_lock is held. */
static int server_mm_use(void)
{
	if (!(current->flags & PF_KTHREAD) || current->mm)
		return -EINVAL;
	mutex_lock(&server_mm_lock);
	if (!server_mm)
		server_mm = mm_alloc();
	if (!server_mm) {
		mutex_unlock(&server_mm_lock);
		return -ENOMEM;
	}
	kthread_use_mm(server_mm);
	return 0;
}

static void server_mm_unuse(void)
{
	kthread_unuse_mm(server_mm);
	mutex_unlock(&server_mm_lock);
}

static ssize_t file_rw_user(struct file *file, void *buf, size_t len,
			    loff_t *ppos, bool write)
{
	unsigned long addr;
	ssize_t ret;

	ret = server_mm_use();
	if (ret)
		return ret;
	addr = vm_mmap(NULL, SERVER_SCRATCH, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0);
	if (IS_ERR_VALUE(addr)) {
		ret = addr;
		goto out;
	}
	if (write) {
		ret = -EFAULT;
		if (!copy_to_user((void __user *)addr, buf, len))
			ret = vfs_write(file, (const char __user *)addr, len,
					ppos);
	} else {
		ret = vfs_read(file, (char __user *)addr, len, ppos);
		if (ret > 0 && copy_from_user(buf, (void __user *)addr, ret))
			ret = -EFAULT;
	}
	vm_munmap(addr, len);
out:
	server_mm_unuse();
	return ret;
}

static loff_t *file_pos_lock(struct file *file, loff_t pos, loff_t *p)
{
	if (pos >= 0) {
		*p = pos;
		return NULL;
	}
	if (file->f_mode & FMODE_ATOMIC_POS)
		mutex_lock(&file->f_pos_lock);
	*p = (file->f_mode & FMODE_STREAM) ? 0 : file->f_pos;
	return &file->f_pos;
}

static void file_pos_unlock(struct file *file, loff_t *fpos, loff_t p,
			    ssize_t ret)
{
	if (!fpos)
		return;
	if (ret >= 0 && !(file->f_mode & FMODE_STREAM))
		*fpos = p;
	if (file->f_mode & FMODE_ATOMIC_POS)
		mutex_unlock(&file->f_pos_lock);
}

/**
 * cohort_file_read - read from a file for a proxy, without blocking
 * @file: the file
 * @buf: kernel buffer
 * @len: bytes wanted
 * @pos: offset (pread), or negative to use and move the file position
 *
 * A file whose reads may wait (a pipe, a terminal, a socket) is read only
 * when its poll mask says it is readable, and with IOCB_NOWAIT.
 *
 * Return: bytes read, -EAGAIN when the read would block, or a negative
 * errno.
 */
ssize_t cohort_file_read(struct file *file, void *buf, size_t len, loff_t pos)
{
	struct kvec kv = { .iov_base = buf, .iov_len = len };
	struct iov_iter iter;
	struct kiocb kiocb;
	loff_t p, *fpos;
	ssize_t ret;

	if (pos >= 0 && !(file->f_mode & FMODE_PREAD))
		return -ESPIPE;
	if (file_may_block(file) && !(vfs_poll(file, NULL) & PROXY_IN))
		return -EAGAIN;
	fpos = file_pos_lock(file, pos, &p);
	if (!file->f_op->read_iter && file->f_op->read) {
		ret = file_rw_user(file, buf, len, &p, false);
		file_pos_unlock(file, fpos, p, ret);
		return ret;
	}
	init_sync_kiocb(&kiocb, file);
	kiocb.ki_pos = p;
	if (file_may_block(file))
		kiocb.ki_flags |= IOCB_NOWAIT;
	iov_iter_kvec(&iter, ITER_DEST, &kv, 1, len);
	ret = vfs_iocb_iter_read(file, &kiocb, &iter);
	file_pos_unlock(file, fpos, kiocb.ki_pos, ret);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_file_read);

/**
 * cohort_file_write - write to a file for a proxy, without blocking
 * @file: the file
 * @buf: kernel buffer
 * @len: bytes to write
 * @pos: offset (pwrite), or negative to use and move the file position
 * @flags: the proxy's status flags: O_APPEND appends, whatever the file's
 *
 * Return: bytes written (maybe fewer than @len on a pipe), -EAGAIN when
 * nothing can be written without blocking, or a negative errno.
 */
ssize_t cohort_file_write(struct file *file, const void *buf, size_t len,
			  loff_t pos, unsigned int flags)
{
	struct kvec kv = { .iov_base = (void *)buf, .iov_len = len };
	struct iov_iter iter;
	struct kiocb kiocb;
	loff_t p, *fpos;
	ssize_t ret;

	if (pos >= 0 && !(file->f_mode & FMODE_PWRITE))
		return -ESPIPE;
	if (file_may_block(file) && !(vfs_poll(file, NULL) & PROXY_OUT))
		return -EAGAIN;
	fpos = file_pos_lock(file, pos, &p);
	if (!file->f_op->write_iter && file->f_op->write) {
		ret = file_rw_user(file, (void *)buf, len, &p, true);
		file_pos_unlock(file, fpos, p, ret);
		return ret;
	}
	init_sync_kiocb(&kiocb, file);
	kiocb.ki_pos = p;
	kiocb.ki_flags &= ~IOCB_APPEND;
	if ((flags & O_APPEND) && pos < 0)
		kiocb.ki_flags |= IOCB_APPEND;
	if (file_may_block(file))
		kiocb.ki_flags |= IOCB_NOWAIT;
	iov_iter_kvec(&iter, ITER_SOURCE, &kv, 1, len);
	ret = vfs_iocb_iter_write(file, &kiocb, &iter);
	file_pos_unlock(file, fpos, kiocb.ki_pos, ret);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_file_write);

/**
 * cohort_file_llseek - lseek(2) on a file for a proxy
 * @file: the file
 * @offset: the offset
 * @whence: SEEK_*
 *
 * Return: the new position or a negative errno.
 */
loff_t cohort_file_llseek(struct file *file, loff_t offset, int whence)
{
	loff_t ret;

	if (whence < 0 || whence > SEEK_MAX)
		return -EINVAL;
	if (!(file->f_mode & FMODE_LSEEK))
		return -ESPIPE;
	if (file->f_mode & FMODE_ATOMIC_POS)
		mutex_lock(&file->f_pos_lock);
	ret = vfs_llseek(file, offset, whence);
	if (file->f_mode & FMODE_ATOMIC_POS)
		mutex_unlock(&file->f_pos_lock);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_file_llseek);

/**
 * cohort_file_ioctl - ioctl(2) on a file for a proxy
 * @file: the file
 * @cmd: the command
 * @value: the argument, for a command that takes no pointer
 * @in: what the command reads, @in_len bytes
 * @in_len: 0 to COHORT_IOCTL_MAX_DATA
 * @out: where what the command writes goes, @out_len bytes
 * @out_len: 0 to COHORT_IOCTL_MAX_DATA
 *
 * A command with a buffer gets a pointer into a scratch page of the
 * address space the file server borrows. Commands that depend on the
 * caller's session (TIOCSPGRP, TIOCSCTTY) see the server's, not the
 * process's: they fail.
 *
 * Return: what the command returns.
 */
long cohort_file_ioctl(struct file *file, unsigned int cmd,
		       unsigned long value, const void *in, size_t in_len,
		       void *out, size_t out_len)
{
	unsigned long addr;
	long ret;

	if (in_len > COHORT_IOCTL_MAX_DATA || out_len > COHORT_IOCTL_MAX_DATA)
		return -EINVAL;
	if (!in_len && !out_len)
		return vfs_ioctl(file, cmd, value);
	ret = server_mm_use();
	if (ret)
		return ret;
	addr = vm_mmap(NULL, SERVER_SCRATCH, PAGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0);
	if (IS_ERR_VALUE(addr)) {
		ret = addr;
		goto out;
	}
	ret = -EFAULT;
	if (in_len && copy_to_user((void __user *)addr, in, in_len))
		goto unmap;
	ret = vfs_ioctl(file, cmd, addr);
	if (ret >= 0 && out_len && copy_from_user(out, (void __user *)addr,
						  out_len))
		ret = -EFAULT;
unmap:
	vm_munmap(addr, PAGE_SIZE);
out:
	server_mm_unuse();
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_file_ioctl);

/**
 * cohort_file_getattr - fstat(2) of a file for a proxy
 * @file: the file
 * @st: filled in; ids are in the initial user namespace
 *
 * Return: 0 or a negative errno.
 */
int cohort_file_getattr(struct file *file, struct cohort_stat *st)
{
	struct kstat stat;
	int ret;

	ret = vfs_getattr(&file->f_path, &stat,
			  STATX_BASIC_STATS | STATX_BTIME,
			  AT_STATX_SYNC_AS_STAT);
	if (ret)
		return ret;
	memset(st, 0, sizeof(*st));
	st->dev = new_encode_dev(stat.dev);
	st->ino = stat.ino;
	st->mode = stat.mode;
	st->nlink = stat.nlink;
	st->uid = from_kuid_munged(&init_user_ns, stat.uid);
	st->gid = from_kgid_munged(&init_user_ns, stat.gid);
	st->rdev = new_encode_dev(stat.rdev);
	st->size = stat.size;
	st->blksize = stat.blksize;
	st->blocks = stat.blocks;
	st->atime = stat.atime.tv_sec;
	st->atime_nsec = stat.atime.tv_nsec;
	st->mtime = stat.mtime.tv_sec;
	st->mtime_nsec = stat.mtime.tv_nsec;
	st->ctime = stat.ctime.tv_sec;
	st->ctime_nsec = stat.ctime.tv_nsec;
	if (stat.result_mask & STATX_BTIME) {
		st->btime = stat.btime.tv_sec;
		st->btime_nsec = stat.btime.tv_nsec;
	}
	st->result_mask = stat.result_mask;
	return 0;
}
EXPORT_SYMBOL_GPL(cohort_file_getattr);

/**
 * cohort_file_fsync - fsync(2) or fdatasync(2) of a file for a proxy
 * @file: the file
 * @datasync: fdatasync
 *
 * Return: 0 or a negative errno.
 */
int cohort_file_fsync(struct file *file, int datasync)
{
	return vfs_fsync(file, datasync);
}
EXPORT_SYMBOL_GPL(cohort_file_fsync);

struct readdir_buf {
	struct dir_context ctx;
	void *buf;
	size_t len, used;
};

static bool readdir_actor(struct dir_context *ctx, const char *name,
			  int namelen, loff_t pos, u64 ino, unsigned int type)
{
	struct readdir_buf *rb = container_of(ctx, struct readdir_buf, ctx);
	size_t rec = ALIGN(sizeof(struct cohort_dirent) + namelen, 8);
	struct cohort_dirent *d;

	if (namelen <= 0 || namelen > U16_MAX || rb->used + rec > rb->len)
		return false;
	d = rb->buf + rb->used;
	memset(d, 0, rec);
	d->ino = ino;
	d->pos = pos;
	d->type = type;
	d->namelen = namelen;
	memcpy(d->name, name, namelen);
	rb->used += rec;
	return true;
}

/**
 * cohort_file_readdir - directory entries of a file for a proxy
 * @file: the directory
 * @buf: where to write them (struct cohort_dirent)
 * @len: room at @buf
 *
 * Reads from the file's position and moves it past the entries written;
 * unless there were none (the end), the last entry has no name and holds
 * the position after the others.
 *
 * Return: the bytes written (0 at the end), or a negative errno: -ENOTDIR
 * for a file that is no directory, -EINVAL when @len is too small for an
 * entry.
 */
ssize_t cohort_file_readdir(struct file *file, void *buf, size_t len)
{
	size_t end = sizeof(struct cohort_dirent);
	struct readdir_buf rb = {
		.ctx.actor = readdir_actor,
		.buf = buf,
	};
	struct cohort_dirent *d;
	int ret;

	if (len < end + ALIGN(end + NAME_MAX, 8))
		return -EINVAL;
	rb.len = len - end;
	ret = iterate_dir(file, &rb.ctx);
	if (ret)
		return ret;
	if (!rb.used)
		return 0;
	d = buf + rb.used;
	memset(d, 0, end);
	d->pos = file->f_pos;
	return rb.used + end;
}
EXPORT_SYMBOL_GPL(cohort_file_readdir);

/**
 * cohort_file_truncate - ftruncate(2) of a file for a proxy
 * @file: the file
 * @len: the new size
 *
 * Checked as ftruncate checks it: a regular file opened for writing, not
 * append-only.
 *
 * Return: 0 or a negative errno.
 */
int cohort_file_truncate(struct file *file, loff_t len)
{
	struct dentry *dentry = file->f_path.dentry;
	struct inode *inode = dentry->d_inode;
	int ret;

	if (len < 0)
		return -EINVAL;
	if (!S_ISREG(inode->i_mode) || !(file->f_mode & FMODE_WRITE))
		return -EINVAL;
	if (IS_APPEND(file_inode(file)))
		return -EPERM;
	sb_start_write(inode->i_sb);
	ret = security_file_truncate(file);
	if (!ret)
		ret = do_truncate(file_mnt_idmap(file), dentry, len,
				  ATTR_MTIME | ATTR_CTIME, file);
	sb_end_write(inode->i_sb);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_file_truncate);

/**
 * cohort_file_setattr - fchmod(2), fchown(2), futimens(2) or
 * fcntl(F_SETFL) of a file for a proxy
 * @file: the file
 * @sa: the change
 * @creds: the credentials of the task that asks, on its node
 * @gids: its supplementary groups
 * @ngroups: how many, at most NGROUPS_MAX
 *
 * Runs vfs_fchmod(), vfs_fchown(), vfs_utimes() or file_setfl() on @file
 * with the caller's credentials in place of current's, so that the change
 * is checked (owner, CAP_CHOWN, CAP_FOWNER, group membership, write
 * access for a change to now, the owner for O_NOATIME), audited and
 * notified as the call would be here.
 *
 * Return: 0 or a negative errno: -EINVAL for a mode beyond 07777, an
 * unknown change, ids that do not map or too many groups.
 */
int cohort_file_setattr(struct file *file, const struct cohort_setattr *sa,
			const struct cohort_creds *creds, const u32 *gids,
			unsigned int ngroups)
{
	struct timespec64 times[2], *tp = NULL;
	const struct cred *old;
	struct group_info *gi;
	struct cred *new;
	int ret, i;

	new = prepare_creds();
	if (!new)
		return -ENOMEM;
	ret = cohort_creds_fill(new, creds);
	if (ret)
		goto abort;
	gi = cohort_groups_make(gids, ngroups);
	if (IS_ERR(gi)) {
		ret = PTR_ERR(gi);
		goto abort;
	}
	set_groups(new, gi);
	put_group_info(gi);
	old = override_creds(new);
	switch (sa->change) {
	case COHORT_SETATTR_MODE:
		ret = sa->mode > 07777 ? -EINVAL : vfs_fchmod(file, sa->mode);
		break;
	case COHORT_SETATTR_OWNER:
		ret = vfs_fchown(file, sa->uid, sa->gid);
		break;
	case COHORT_SETATTR_TIMES:
		if (!sa->now) {
			for (i = 0; i < 2; i++) {
				times[i].tv_sec = sa->times[i].sec;
				times[i].tv_nsec = sa->times[i].nsec;
			}
			tp = times;
		}
		ret = vfs_utimes(&file->f_path, tp);
		break;
	case COHORT_SETATTR_FLAGS:
		ret = file_setfl(file, sa->flags & (O_APPEND | O_NONBLOCK |
						    O_DIRECT | O_NOATIME));
		break;
	default:
		ret = -EINVAL;
	}
	revert_creds(old);
	put_cred(new);
	return ret;
abort:
	abort_creds(new);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_file_setattr);

/**
 * cohort_file_lock - take, drop or test a lock for a proxy
 * @file: the file (the proxy's open file description)
 * @lk: the lock; a test stores the conflicting lock in it
 *
 * The lock is @file's, as the proxy's own fcntl(2) or flock(2) on @file
 * would take it, checked as they check it (the file's access mode, the
 * security hook); recorded with @lk->pid. A POSIX lock is @lk->owner's,
 * taken, dropped or tested as that owner's fcntl(2) would; without an
 * owner it is only tested, as the lock of an owner that holds none. Never
 * blocks.
 *
 * Return: 0, -EAGAIN when a conflicting lock is held, or a negative errno.
 */
int cohort_file_lock(struct file *file, struct cohort_lock *lk)
{
	struct file_lock *fl;
	int ret;

	if (lk->type != F_RDLCK && lk->type != F_WRLCK && lk->type != F_UNLCK)
		return -EINVAL;
	if (lk->start < 0 || lk->end < lk->start)
		return -EINVAL;
	fl = locks_alloc_lock();
	if (!fl)
		return -ENOLCK;
	fl->c.flc_file = file;
	fl->c.flc_owner = file;
	fl->c.flc_pid = lk->pid;
	fl->c.flc_type = lk->type;
	fl->fl_start = lk->start;
	fl->fl_end = lk->end;
	if (lk->kind == COHORT_LOCK_FLOCK) {
		ret = -EINVAL;
		if (lk->cmd != COHORT_LOCK_SET || lk->start || lk->end != OFFSET_MAX)
			goto out;
		ret = -EBADF;
		if (lk->type != F_UNLCK && !(file->f_mode & (FMODE_READ | FMODE_WRITE)))
			goto out;
		fl->c.flc_flags = FL_FLOCK;
		ret = security_file_lock(file, fl->c.flc_type);
		if (ret)
			goto out;
		/* Without FL_SLEEP neither waits. */
		if (file->f_op->flock)
			ret = file->f_op->flock(file, F_SETLK, fl);
		else
			ret = locks_lock_file_wait(file, fl);
		goto out;
	}
	ret = -EINVAL;
	if (lk->kind == COHORT_LOCK_POSIX) {
		fl->c.flc_flags = FL_POSIX;
		if (lk->owner) {
			fl->c.flc_owner = (fl_owner_t)lk->owner;
		} else {
			/* A test only, as an owner holding nothing: this request. */
			if (lk->cmd != COHORT_LOCK_TEST)
				goto out;
			fl->c.flc_owner = fl;
		}
	} else if (lk->kind == COHORT_LOCK_OFD) {
		fl->c.flc_flags = FL_POSIX | FL_OFDLCK;
	} else {
		goto out;
	}
	if (lk->cmd == COHORT_LOCK_TEST) {
		ret = vfs_test_lock(file, fl);
		if (ret)
			goto out;
		lk->type = fl->c.flc_type;
		if (fl->c.flc_type != F_UNLCK) {
			lk->conflict_ofd = fl->c.flc_flags & FL_OFDLCK;
			lk->pid = fl->c.flc_pid;
			lk->start = fl->fl_start;
			lk->end = fl->fl_end;
		}
		goto out;
	}
	ret = -EINVAL;
	if (lk->cmd != COHORT_LOCK_SET)
		goto out;
	ret = -EBADF;
	if ((lk->type == F_RDLCK && !(file->f_mode & FMODE_READ)) ||
	    (lk->type == F_WRLCK && !(file->f_mode & FMODE_WRITE)))
		goto out;
	ret = security_file_lock(file, fl->c.flc_type);
	if (!ret)
		ret = vfs_lock_file(file, F_SETLK, fl, NULL);
out:
	locks_free_lock(fl);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_file_lock);

static int posix_locks_of(const void *owner, struct file *file, unsigned int fd)
{
	struct file_lock_context *ctx = locks_inode_context(file_inode(file));
	struct file_lock *fl;
	int found = 0;

	if (!ctx || list_empty_careful(&ctx->flc_posix))
		return 0;
	spin_lock(&ctx->flc_lock);
	for_each_file_lock(fl, &ctx->flc_posix) {
		if (fl->c.flc_owner == owner) {
			found = 1;
			break;
		}
	}
	spin_unlock(&ctx->flc_lock);
	return found;
}

/**
 * cohort_task_posix_locks - whether a process holds POSIX record locks
 * that cannot move with it
 * @tsk: a task of the process
 *
 * Record locks (fcntl(2) F_SETLK, lockf(3)) belong to the descriptor
 * table. A process's own table stays with its shadow when it leaves, and
 * the locks with it (cohort_files_leave_all()), but a table shared with
 * another process (CLONE_FILES) is unshared on the way: the locks would
 * stay the other process's while the migrated one went on as if it held
 * them.
 *
 * Return: true when @tsk's table is shared and a lock it owns is held on
 * a file of that table.
 */
bool cohort_task_posix_locks(struct task_struct *tsk)
{
	struct files_struct *files;
	bool found = false;

	task_lock(tsk);
	files = tsk->files;
	/* exit_files() clears tsk->files under task_lock() before freeing. */
	if (files && atomic_read(&files->count) > 1)
		found = iterate_fd(files, 0, posix_locks_of, files);
	task_unlock(tsk);
	return found;
}
EXPORT_SYMBOL_GPL(cohort_task_posix_locks);

/**
 * cohort_task_lock_owner - the owner of a process's POSIX record locks
 * @tsk: a task of the process (a shadow, at a home)
 *
 * The owner of a POSIX lock is the descriptor table of the process that
 * takes it; a proxy's lock of a distributed process is taken at the file's
 * home as the lock of the process's shadow there, whose table stays for as
 * long as the shadow lives (cohort_files_leave_all()).
 *
 * Return: the owner, to be compared only (the table may go once @tsk
 * ends, and its locks with it: cohort_file_unlock_owner()), or NULL when
 * @tsk has no table.
 */
const void *cohort_task_lock_owner(struct task_struct *tsk)
{
	const void *owner;

	task_lock(tsk);
	owner = tsk->files;
	task_unlock(tsk);
	return owner;
}
EXPORT_SYMBOL_GPL(cohort_task_lock_owner);

/**
 * cohort_file_unlock_owner - release an owner's POSIX record locks on a file
 * @file: the file
 * @owner: the owner (cohort_task_lock_owner())
 *
 * As a close(2) of @file by the owner releases them; for the files a home
 * serves to proxies when the owner's shadow ends.
 */
void cohort_file_unlock_owner(struct file *file, const void *owner)
{
	locks_remove_posix(file, (fl_owner_t)owner);
}
EXPORT_SYMBOL_GPL(cohort_file_unlock_owner);

/* Wait queues one watch can follow (a pipe uses two). */
#define WATCH_MAX_QUEUES 4

struct cohort_watch_entry {
	wait_queue_entry_t wait;
	wait_queue_head_t *whead;
	struct cohort_watch *watch;
};

/**
 * struct cohort_watch - the wait queues of an exported file, followed
 * @pt: the poll table vfs_poll() registers through
 * @nr: entries in use
 * @entries: one per wait queue the file's poll method named
 * @work: runs the files slot's fired() outside the waker's context
 * @cookie: given to fired()
 */
struct cohort_watch {
	poll_table pt;
	int nr;
	struct cohort_watch_entry entries[WATCH_MAX_QUEUES];
	struct work_struct work;
	u64 cookie;
};

static void watch_work(struct work_struct *work)
{
	struct cohort_watch *w = container_of(work, struct cohort_watch, work);
	const struct cohort_file_ops *ops;
	int idx;

	ops = proxy_ops_get(&idx);
	if (!ops)
		return;
	ops->fired(w->cookie);
	proxy_ops_put(idx);
}

static int watch_wake(wait_queue_entry_t *wait, unsigned int mode, int sync,
		      void *key)
{
	struct cohort_watch_entry *e =
		container_of(wait, struct cohort_watch_entry, wait);

	if (key_to_poll(key) & POLLFREE) {
		list_del_init(&wait->entry);
		/*
		 * The queue goes away with its owner (see eventpoll.c): the
		 * release pairs with the acquire in cohort_watch_free(), which
		 * then leaves the dead queue alone.
		 */
		smp_store_release(&e->whead, NULL);
		return 0;
	}
	queue_work(system_unbound_wq, &e->watch->work);
	return 0;
}

static void watch_queue(struct file *file, wait_queue_head_t *whead,
			poll_table *pt)
{
	struct cohort_watch *w = container_of(pt, struct cohort_watch, pt);
	struct cohort_watch_entry *e;

	if (w->nr >= WATCH_MAX_QUEUES) {
		pr_warn_once("a file has more than %d wait queues; some wake-ups are missed\n",
			     WATCH_MAX_QUEUES);
		return;
	}
	e = &w->entries[w->nr++];
	e->watch = w;
	e->whead = whead;
	init_waitqueue_func_entry(&e->wait, watch_wake);
	add_wait_queue(whead, &e->wait);
}

/**
 * cohort_watch_new - follow the wait queues of a file
 * @file: the file; the caller keeps it open until cohort_watch_free()
 * @cookie: given to the files slot's fired() on every wake-up
 *
 * fired() runs in a workqueue after the file's wait queues are woken (for
 * reading, writing, hang-up), coalesced; it reads the mask itself.
 *
 * Return: the watch or NULL when out of memory.
 */
struct cohort_watch *cohort_watch_new(struct file *file, u64 cookie)
{
	struct cohort_watch *w = kzalloc(sizeof(*w), GFP_KERNEL);

	if (!w)
		return NULL;
	w->cookie = cookie;
	INIT_WORK(&w->work, watch_work);
	init_poll_funcptr(&w->pt, watch_queue);
	w->pt._key = ~(__poll_t)0;
	vfs_poll(file, &w->pt);
	return w;
}
EXPORT_SYMBOL_GPL(cohort_watch_new);

/**
 * cohort_watch_free - stop following a file
 * @w: the watch, or NULL
 *
 * Waits for a fired() in flight.
 */
void cohort_watch_free(struct cohort_watch *w)
{
	wait_queue_head_t *whead;
	int i;

	if (!w)
		return;
	for (i = 0; i < w->nr; i++) {
		rcu_read_lock();
		/* Pairs with the release in watch_wake()'s POLLFREE case. */
		whead = smp_load_acquire(&w->entries[i].whead);
		if (whead)
			remove_wait_queue(whead, &w->entries[i].wait);
		rcu_read_unlock();
	}
	cancel_work_sync(&w->work);
	kfree(w);
}
EXPORT_SYMBOL_GPL(cohort_watch_free);

static int __init cohort_proxy_init(void)
{
	int err = register_filesystem(&proxy_fs_type);

	if (err)
		return err;
	proxy_mnt = kern_mount(&proxy_fs_type);
	if (IS_ERR(proxy_mnt)) {
		err = PTR_ERR(proxy_mnt);
		unregister_filesystem(&proxy_fs_type);
	}
	return err;
}
fs_initcall(cohort_proxy_init);
