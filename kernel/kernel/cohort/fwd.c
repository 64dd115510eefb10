// SPDX-License-Identifier: GPL-2.0
/*
 * Cohort hub: file operations a migrated task forwards to its origin. The
 * shadow task left at the origin holds the process's file table and runs
 * these in its own context, on kernel buffers that carried the data over.
 * Positions follow read(2)/write(2): the file position is used and moved
 * unless an explicit offset is given (pread/pwrite).
 */
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kdev_t.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/uaccess.h>
#include <linux/stat.h>
#include <linux/uidgid.h>

#include "internal.h"

static loff_t *cohort_file_ppos(struct file *file)
{
	return file->f_mode & FMODE_STREAM ? NULL : &file->f_pos;
}

/*
 * Files with ->read or ->write but no iterator method (some of /proc)
 * cannot take kernel buffers: go through a scratch mapping in current's
 * address space, which the shadow serving the call owns.
 */
static ssize_t cohort_fd_rw_user(struct file *file, void *buf, size_t len,
				 loff_t *ppos, bool write)
{
	unsigned long scratch;
	ssize_t ret;

	if (!len)
		return 0;
	scratch = vm_mmap(NULL, 0, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, 0);
	if (IS_ERR_VALUE(scratch))
		return scratch;
	if (write) {
		ret = -EFAULT;
		if (!copy_to_user((void __user *)scratch, buf, len))
			ret = vfs_write(file, (const char __user *)scratch, len,
					ppos);
	} else {
		ret = vfs_read(file, (char __user *)scratch, len, ppos);
		if (ret > 0 && copy_from_user(buf, (void __user *)scratch, ret))
			ret = -EFAULT;
	}
	vm_munmap(scratch, len);
	return ret;
}

static ssize_t cohort_fd_rw(struct file *file, void *buf, size_t len,
			    loff_t *ppos, bool write)
{
	if (write) {
		if (!file->f_op->write_iter && file->f_op->write)
			return cohort_fd_rw_user(file, buf, len, ppos, true);
		return kernel_write(file, buf, len, ppos);
	}
	if (!file->f_op->read_iter && file->f_op->read)
		return cohort_fd_rw_user(file, buf, len, ppos, false);
	return kernel_read(file, buf, len, ppos);
}

/**
 * cohort_fd_read - read(2) or pread(2) on one of current's files
 * @fd: the descriptor
 * @buf: kernel buffer
 * @len: bytes wanted
 * @pos: offset for pread(2), or negative to use the file position
 *
 * Return: bytes read or a negative errno, as the system call.
 */
ssize_t cohort_fd_read(int fd, void *buf, size_t len, loff_t pos)
{
	struct fd f = fdget_pos(fd);
	struct file *file = fd_file(f);
	loff_t p, *ppos;
	ssize_t ret;

	if (!file)
		return -EBADF;
	if (pos >= 0) {
		ret = -ESPIPE;
		if (file->f_mode & FMODE_PREAD) {
			p = pos;
			ret = cohort_fd_rw(file, buf, len, &p, false);
		}
	} else {
		ppos = cohort_file_ppos(file);
		if (ppos) {
			p = *ppos;
			ppos = &p;
		}
		ret = cohort_fd_rw(file, buf, len, ppos, false);
		if (ret >= 0 && ppos)
			file->f_pos = p;
	}
	fdput_pos(f);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_fd_read);

/**
 * cohort_fd_write - write(2) or pwrite(2) on one of current's files
 * @fd: the descriptor
 * @buf: kernel buffer
 * @len: bytes to write
 * @pos: offset for pwrite(2), or negative to use the file position
 *
 * Return: bytes written or a negative errno, as the system call.
 */
ssize_t cohort_fd_write(int fd, const void *buf, size_t len, loff_t pos)
{
	struct fd f = fdget_pos(fd);
	struct file *file = fd_file(f);
	loff_t p, *ppos;
	ssize_t ret;

	if (!file)
		return -EBADF;
	if (pos >= 0) {
		ret = -ESPIPE;
		if (file->f_mode & FMODE_PWRITE) {
			p = pos;
			ret = cohort_fd_rw(file, (void *)buf, len, &p, true);
		}
	} else {
		ppos = cohort_file_ppos(file);
		if (ppos) {
			p = *ppos;
			ppos = &p;
		}
		ret = cohort_fd_rw(file, (void *)buf, len, ppos, true);
		if (ret >= 0 && ppos)
			file->f_pos = p;
	}
	fdput_pos(f);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_fd_write);

/**
 * cohort_fd_lseek - lseek(2) on one of current's files
 * @fd: the descriptor
 * @offset: the offset
 * @whence: SEEK_*
 *
 * Return: the new position or a negative errno.
 */
loff_t cohort_fd_lseek(int fd, loff_t offset, int whence)
{
	struct fd f;
	loff_t ret;

	if (whence < 0 || whence > SEEK_MAX)
		return -EINVAL;
	f = fdget_pos(fd);
	if (!fd_file(f))
		return -EBADF;
	ret = vfs_llseek(fd_file(f), offset, whence);
	fdput_pos(f);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_fd_lseek);

/**
 * cohort_fd_stat - fstat(2) on one of current's files
 * @fd: the descriptor
 * @statbuf: a struct stat, the system call's layout
 * @size: its size, sizeof(struct stat)
 *
 * Return: 0 or a negative errno.
 */
int cohort_fd_stat(int fd, void *statbuf, size_t size)
{
	struct stat *st = statbuf;
	struct kstat stat;
	int ret;

	if (size != sizeof(*st))
		return -EINVAL;
	ret = vfs_fstat(fd, &stat);
	if (ret)
		return ret;
	memset(st, 0, sizeof(*st));
	st->st_dev = new_encode_dev(stat.dev);
	st->st_ino = stat.ino;
	st->st_mode = stat.mode;
	st->st_nlink = stat.nlink;
	st->st_uid = from_kuid_munged(current_user_ns(), stat.uid);
	st->st_gid = from_kgid_munged(current_user_ns(), stat.gid);
	st->st_rdev = new_encode_dev(stat.rdev);
	st->st_size = stat.size;
	st->st_atime = stat.atime.tv_sec;
	st->st_mtime = stat.mtime.tv_sec;
	st->st_ctime = stat.ctime.tv_sec;
	st->st_atime_nsec = stat.atime.tv_nsec;
	st->st_mtime_nsec = stat.mtime.tv_nsec;
	st->st_ctime_nsec = stat.ctime.tv_nsec;
	st->st_blocks = stat.blocks;
	st->st_blksize = stat.blksize;
	return 0;
}
EXPORT_SYMBOL_GPL(cohort_fd_stat);

/**
 * cohort_fd_close - close(2) one of current's files
 * @fd: the descriptor
 *
 * Return: 0 or a negative errno.
 */
int cohort_fd_close(int fd)
{
	return close_fd(fd);
}
EXPORT_SYMBOL_GPL(cohort_fd_close);

/**
 * cohort_fd_open - open(2) a file into current's table
 * @path: the path, relative to current's working directory
 * @flags: O_* flags
 * @mode: mode of a file created
 *
 * Return: the new descriptor or a negative errno.
 */
int cohort_fd_open(const char *path, int flags, umode_t mode)
{
	struct file *file;
	int fd;

	fd = get_unused_fd_flags(flags);
	if (fd < 0)
		return fd;
	file = filp_open(path, flags | O_LARGEFILE, mode);
	if (IS_ERR(file)) {
		put_unused_fd(fd);
		return PTR_ERR(file);
	}
	fd_install(fd, file);
	return fd;
}
EXPORT_SYMBOL_GPL(cohort_fd_open);
