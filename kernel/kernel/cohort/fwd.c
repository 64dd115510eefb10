// SPDX-License-Identifier: GPL-2.0
/*
 * Cohort hub: process calls of a migrated task.
 *
 * A migrated task's pid, process group, session and the children it had
 * at its origin stay there, with its shadow. The shadow runs these for the
 * task (wait for its children, signals and ids in the origin's pid
 * space); the others help the task on the node it runs on tell its own
 * children there from the rest. Files are proxy files (proxy.c).
 */
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/pid.h>
#include <linux/resource.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/security.h>
#include <linux/signal.h>
#include <linux/uaccess.h>

#include "internal.h"

/**
 * cohort_shadow_wait4 - wait4(2) in current (a shadow) for its children
 * @pid: wait4's pid argument, in current's pid namespace
 * @options: WNOHANG, WUNTRACED, WCONTINUED, __WALL...
 * @status: where the child's status goes
 * @ru: where its resource usage goes (struct rusage)
 *
 * The status passes through a scratch page of current's address space,
 * which kernel_wait4() writes to as user memory.
 *
 * Return: the pid reaped, 0 (WNOHANG), or a negative errno.
 */
long cohort_shadow_wait4(pid_t pid, int options, int *status, void *ru)
{
	unsigned long scratch;
	long ret;

	if (!current->mm)
		return -EINVAL;
	scratch = vm_mmap(NULL, 0, PAGE_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, 0);
	if (IS_ERR_VALUE(scratch))
		return scratch;
	ret = kernel_wait4(pid, (int __user *)scratch, options, ru);
	if (ret > 0 && copy_from_user(status, (void __user *)scratch,
				      sizeof(*status)))
		ret = -EFAULT;
	vm_munmap(scratch, PAGE_SIZE);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_shadow_wait4);

static void kill_info(struct kernel_siginfo *info, int sig)
{
	clear_siginfo(info);
	info->si_signo = sig;
	info->si_errno = 0;
	info->si_code = SI_USER;
	info->si_pid = task_tgid_vnr(current);
	info->si_uid = from_kuid_munged(current_user_ns(), current_uid());
}

/**
 * cohort_kill - kill(2) from current, but never to every process
 * @pid: a process (positive), current's process group (0) or a process
 *	group (below -1)
 * @sig: the signal
 *
 * Return: 0 or a negative errno, as kill(2).
 */
int cohort_kill(pid_t pid, int sig)
{
	struct kernel_siginfo info;
	struct pid *pgrp;
	int ret;

	if (pid == -1 || pid == INT_MIN || !valid_signal(sig))
		return -EINVAL;
	kill_info(&info, sig);
	if (pid > 0)
		return kill_pid_info(sig, &info, find_vpid(pid));
	rcu_read_lock();
	pgrp = pid ? find_vpid(-pid) : task_pgrp(current);
	read_lock(&tasklist_lock);
	ret = __kill_pgrp_info(sig, &info, pgrp);
	read_unlock(&tasklist_lock);
	rcu_read_unlock();
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_kill);

/**
 * cohort_tgkill - tgkill(2) from current
 * @tgid: the thread group
 * @tid: the thread
 * @sig: the signal
 *
 * Return: 0 or a negative errno, as tgkill(2).
 */
int cohort_tgkill(pid_t tgid, pid_t tid, int sig)
{
	struct kernel_siginfo info;
	struct task_struct *p;
	int ret = -ESRCH;

	if (tgid <= 0 || tid <= 0 || !valid_signal(sig))
		return -EINVAL;
	kill_info(&info, sig);
	rcu_read_lock();
	p = find_task_by_vpid(tid);
	if (p && task_tgid_vnr(p) == tgid)
		ret = group_send_sig_info(sig, &info, p, PIDTYPE_PID);
	rcu_read_unlock();
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_tgkill);

/**
 * cohort_getpgid - getpgid(2) or getsid(2) from current
 * @pid: the process, 0 for current
 * @session: getsid(2)
 *
 * Return: the process group or session id, or a negative errno.
 */
pid_t cohort_getpgid(pid_t pid, bool session)
{
	struct task_struct *p;
	pid_t ret = -ESRCH;

	rcu_read_lock();
	p = pid ? find_task_by_vpid(pid) : current;
	if (p) {
		if (session) {
			ret = security_task_getsid(p);
			if (!ret)
				ret = pid_vnr(task_session(p));
		} else {
			ret = security_task_getpgid(p);
			if (!ret)
				ret = pid_vnr(task_pgrp(p));
		}
		if (!ret)
			ret = -ESRCH;
	}
	rcu_read_unlock();
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_getpgid);

/**
 * cohort_has_child - whether current has children here
 * @pid: a child's pid here, or 0 or less for any child
 */
bool cohort_has_child(pid_t pid)
{
	struct task_struct *c;
	bool found = false;

	read_lock(&tasklist_lock);
	list_for_each_entry(c, &current->children, sibling) {
		if (pid <= 0 || task_pid_vnr(c) == pid) {
			found = true;
			break;
		}
	}
	read_unlock(&tasklist_lock);
	return found;
}
EXPORT_SYMBOL_GPL(cohort_has_child);

/**
 * cohort_wait4_local - wait4(2) of current for its children here
 * @pid: wait4's pid argument
 * @status: the caller's user pointer for the status, or NULL
 * @options: wait4's options
 * @ru: the caller's user pointer for the rusage, or NULL
 *
 * Return: as wait4(2).
 */
long cohort_wait4_local(pid_t pid, void __user *status, int options,
			void __user *ru)
{
	struct rusage r;
	long ret;

	ret = kernel_wait4(pid, status, options, ru ? &r : NULL);
	if (ret > 0 && ru && copy_to_user(ru, &r, sizeof(r)))
		ret = -EFAULT;
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_wait4_local);

/**
 * cohort_scratch_map - map a private scratch area in current's mm
 * @len: its size in bytes
 *
 * Return: its address, or a negative errno.
 */
long cohort_scratch_map(size_t len)
{
	if (!current->mm)
		return -EINVAL;
	return vm_mmap(NULL, 0, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, 0);
}
EXPORT_SYMBOL_GPL(cohort_scratch_map);

/**
 * cohort_scratch_unmap - unmap what cohort_scratch_map() mapped
 * @addr: its address
 * @len: its size
 */
void cohort_scratch_unmap(unsigned long addr, size_t len)
{
	vm_munmap(addr, len);
}
EXPORT_SYMBOL_GPL(cohort_scratch_unmap);
