// SPDX-License-Identifier: GPL-2.0
/*
 * Cohort hub: helpers that move a task's kernel state between nodes. The
 * process layer (popcorn.ko) packs what the save helpers return into its
 * migration message and hands it to the load helpers on the other node; it
 * decides nothing here. Unless a helper says otherwise it acts on current.
 */
#include <linux/capability.h>
#include <linux/module.h>
#include <linux/pid_namespace.h>
#include <linux/rcupdate.h>
#include <linux/cred.h>
#include <linux/entry-common.h>
#include <linux/fs_struct.h>
#include <linux/sched/cputime.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/sched/task_stack.h>
#include <linux/signal.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/task_work.h>
#include <linux/timekeeping.h>
#include <linux/uidgid.h>
#include <linux/workqueue.h>

#include <asm/syscall.h>

#include "internal.h"

/*
 * A disposition no signal has in user space: a shadow catches every signal
 * with it so that none stops or kills it before it forwards the signal. A
 * shadow never returns to user space with it installed.
 */
#define COHORT_SHADOW_HANDLER	((__sighandler_t)2UL)

/**
 * cohort_signals_save - read current's signal state
 * @sig: where to store it
 */
void cohort_signals_save(struct cohort_signals *sig)
{
	struct sighand_struct *sighand = current->sighand;
	sigset_t pending;
	int i;

	spin_lock_irq(&sighand->siglock);
	sig->blocked = current->blocked.sig[0];
	sigorsets(&pending, &current->pending.signal,
		  &current->signal->shared_pending.signal);
	sig->pending = pending.sig[0];
	for (i = 0; i < ARRAY_SIZE(sig->action); i++) {
		const struct sigaction *sa = &sighand->action[i].sa;

		sig->action[i].handler = (unsigned long)sa->sa_handler;
		sig->action[i].flags = sa->sa_flags;
		sig->action[i].restorer = (unsigned long)sa->sa_restorer;
		sig->action[i].mask = sa->sa_mask.sig[0];
	}
	spin_unlock_irq(&sighand->siglock);
}
EXPORT_SYMBOL_GPL(cohort_signals_save);

/**
 * cohort_signals_load - install a signal state into current
 * @sig: as cohort_signals_save() returned it on another node
 *
 * Dispositions and the blocked set are replaced; SIGKILL and SIGSTOP keep
 * their fixed dispositions. The pending signals are queued again by
 * cohort_sigqueue_load(), with their siginfo.
 */
void cohort_signals_load(const struct cohort_signals *sig)
{
	struct sighand_struct *sighand = current->sighand;
	sigset_t blocked;
	int i;

	spin_lock_irq(&sighand->siglock);
	for (i = 0; i < ARRAY_SIZE(sig->action); i++) {
		struct sigaction *sa = &sighand->action[i].sa;

		if (i + 1 == SIGKILL || i + 1 == SIGSTOP)
			continue;
		sa->sa_handler = (__sighandler_t)(unsigned long)sig->action[i].handler;
		sa->sa_flags = sig->action[i].flags;
		sa->sa_restorer = (__sigrestore_t)(unsigned long)sig->action[i].restorer;
		sa->sa_mask.sig[0] = sig->action[i].mask;
		sigdelsetmask(&sa->sa_mask, sigmask(SIGKILL) | sigmask(SIGSTOP));
	}
	spin_unlock_irq(&sighand->siglock);

	blocked.sig[0] = sig->blocked;
	sigdelsetmask(&blocked, sigmask(SIGKILL) | sigmask(SIGSTOP));
	set_current_blocked(&blocked);
}
EXPORT_SYMBOL_GPL(cohort_signals_load);

/**
 * cohort_signals_shadow - make current a shadow for signals
 * @sent: the pending signals that travelled with the task, dropped here
 *
 * Every signal but SIGKILL and SIGSTOP is caught and none is blocked, so
 * that each one wakes the shadow, which forwards it to where the task runs.
 * The task's dispositions and mask travelled with it and come back with it.
 */
void cohort_signals_shadow(u64 sent)
{
	struct sighand_struct *sighand = current->sighand;
	kernel_siginfo_t info;
	enum pid_type type;
	sigset_t keep, none;
	int i;

	sigemptyset(&none);
	set_current_blocked(&none);

	spin_lock_irq(&sighand->siglock);
	for (i = 0; i < _NSIG; i++) {
		struct sigaction *sa = &sighand->action[i].sa;

		if (i + 1 == SIGKILL || i + 1 == SIGSTOP)
			continue;
		sa->sa_handler = COHORT_SHADOW_HANDLER;
		sa->sa_flags = 0;
		sa->sa_restorer = NULL;
		sigemptyset(&sa->sa_mask);
	}
	/* dequeue_signal() takes what is not in the mask it is given. */
	keep.sig[0] = ~sent;
	while (dequeue_signal(&keep, &info, &type) > 0)
		;
	spin_unlock_irq(&sighand->siglock);
}
EXPORT_SYMBOL_GPL(cohort_signals_shadow);

/**
 * cohort_signal_next - take one pending signal off current
 *
 * Return: its number, or 0 when none is pending. SIGKILL is never taken:
 * test fatal_signal_pending() for it.
 */
int cohort_signal_next(void)
{
	kernel_siginfo_t info;
	enum pid_type type;
	sigset_t mask;
	int sig;

	siginitset(&mask, sigmask(SIGKILL));
	spin_lock_irq(&current->sighand->siglock);
	sig = dequeue_signal(&mask, &info, &type);
	spin_unlock_irq(&current->sighand->siglock);
	return sig > 0 ? sig : 0;
}
EXPORT_SYMBOL_GPL(cohort_signal_next);

/**
 * cohort_task_interrupt - end a task's interruptible sleep without a signal
 * @tsk: the task, a shadow running a forwarded system call
 *
 * Sets TIF_NOTIFY_SIGNAL, which signal_pending() sees, so the call @tsk
 * runs stops as a signal would stop it (-ERESTARTSYS, -EINTR, or a short
 * count); no signal is queued, so the shadow forwards none. @tsk clears it
 * with cohort_interrupt_clear(), since it does not return to user space.
 */
void cohort_task_interrupt(struct task_struct *tsk)
{
	set_notify_signal(tsk);
}
EXPORT_SYMBOL_GPL(cohort_task_interrupt);

/**
 * cohort_interrupt_clear - clear what cohort_task_interrupt() set on current
 *
 * Task work queued meanwhile still runs: it runs when current's own task
 * work returns, which task_work_run() loops for.
 */
void cohort_interrupt_clear(void)
{
	clear_notify_signal();
}
EXPORT_SYMBOL_GPL(cohort_interrupt_clear);

/**
 * cohort_fatal_signal_pending - whether current has been killed
 *
 * Return: true when SIGKILL is pending.
 */
bool cohort_fatal_signal_pending(void)
{
	return fatal_signal_pending(current);
}
EXPORT_SYMBOL_GPL(cohort_fatal_signal_pending);

/**
 * cohort_task_has_mm - whether @mm is @tsk's address space
 * @tsk: the task
 * @mm: an address space the caller holds alive (a fault in it, say)
 *
 * For a fault in a migrated task's memory taken by another task (reading
 * /proc/PID/cmdline or environ, ptrace), to find whose memory it is.
 *
 * Return: true when @tsk's mm is @mm now.
 */
bool cohort_task_has_mm(struct task_struct *tsk, struct mm_struct *mm)
{
	bool ret;

	task_lock(tsk);
	ret = tsk->mm == mm;
	task_unlock(tsk);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_task_has_mm);

/**
 * cohort_parent_tgid - the process id of current's parent
 *
 * Return: what getppid(2) returns.
 */
pid_t cohort_parent_tgid(void)
{
	pid_t pid;

	rcu_read_lock();
	pid = task_tgid_vnr(rcu_dereference(current->real_parent));
	rcu_read_unlock();
	return pid;
}
EXPORT_SYMBOL_GPL(cohort_parent_tgid);

/**
 * cohort_task_pid - a task's process and thread ids
 * @tsk: the task
 * @tgid: where to store its process id (thread group id)
 *
 * Return: its thread id; both as seen from current's pid namespace.
 */
pid_t cohort_task_pid(struct task_struct *tsk, pid_t *tgid)
{
	*tgid = task_tgid_vnr(tsk);
	return task_pid_vnr(tsk);
}
EXPORT_SYMBOL_GPL(cohort_task_pid);

/**
 * cohort_creds_save - read current's credentials
 * @creds: where to store them
 */
void cohort_creds_save(struct cohort_creds *creds)
{
	const struct cred *cred = current_cred();

	creds->uid = from_kuid_munged(&init_user_ns, cred->uid);
	creds->gid = from_kgid_munged(&init_user_ns, cred->gid);
	creds->suid = from_kuid_munged(&init_user_ns, cred->suid);
	creds->sgid = from_kgid_munged(&init_user_ns, cred->sgid);
	creds->euid = from_kuid_munged(&init_user_ns, cred->euid);
	creds->egid = from_kgid_munged(&init_user_ns, cred->egid);
	creds->fsuid = from_kuid_munged(&init_user_ns, cred->fsuid);
	creds->fsgid = from_kgid_munged(&init_user_ns, cred->fsgid);
	creds->cap_inheritable = cred->cap_inheritable.val;
	creds->cap_permitted = cred->cap_permitted.val;
	creds->cap_effective = cred->cap_effective.val;
	creds->cap_bset = cred->cap_bset.val;
	creds->cap_ambient = cred->cap_ambient.val;
	creds->securebits = cred->securebits;
	creds->umask = current->fs->umask;
}
EXPORT_SYMBOL_GPL(cohort_creds_save);

/*
 * cohort_creds_fill - set @new's ids and capabilities to those of @c
 *
 * Return: 0, or -EINVAL for ids that do not map.
 */
int cohort_creds_fill(struct cred *new, const struct cohort_creds *c)
{
	kuid_t uid = make_kuid(&init_user_ns, c->uid);
	kuid_t suid = make_kuid(&init_user_ns, c->suid);
	kuid_t euid = make_kuid(&init_user_ns, c->euid);
	kuid_t fsuid = make_kuid(&init_user_ns, c->fsuid);
	kgid_t gid = make_kgid(&init_user_ns, c->gid);
	kgid_t sgid = make_kgid(&init_user_ns, c->sgid);
	kgid_t egid = make_kgid(&init_user_ns, c->egid);
	kgid_t fsgid = make_kgid(&init_user_ns, c->fsgid);
	kuid_t old_uid = new->uid;

	if (!uid_valid(uid) || !uid_valid(suid) || !uid_valid(euid) ||
	    !uid_valid(fsuid) || !gid_valid(gid) || !gid_valid(sgid) ||
	    !gid_valid(egid) || !gid_valid(fsgid))
		return -EINVAL;
	new->uid = uid;
	new->suid = suid;
	new->euid = euid;
	new->fsuid = fsuid;
	new->gid = gid;
	new->sgid = sgid;
	new->egid = egid;
	new->fsgid = fsgid;
	new->cap_inheritable.val = c->cap_inheritable & CAP_VALID_MASK;
	new->cap_permitted.val = c->cap_permitted & CAP_VALID_MASK;
	new->cap_effective.val = c->cap_effective & CAP_VALID_MASK;
	new->cap_bset.val = c->cap_bset & CAP_VALID_MASK;
	new->cap_ambient.val = c->cap_ambient & CAP_VALID_MASK;
	new->securebits = c->securebits;
	/* As set_user() and execve(): the new uid's accounting. */
	if (!uid_eq(new->uid, old_uid)) {
		struct user_struct *user = alloc_uid(new->uid);

		if (!user)
			return -ENOMEM;
		free_uid(new->user);
		new->user = user;
	}
	return set_cred_ucounts(new);
}

/**
 * cohort_creds_load - give current the credentials of a migrated task
 * @creds: as cohort_creds_save() returned them on another node
 *
 * Supplementary groups are not carried: current keeps its own.
 *
 * Return: 0, -EINVAL for ids that do not map, or -ENOMEM.
 */
int cohort_creds_load(const struct cohort_creds *creds)
{
	struct cred *new = prepare_creds();
	int ret;

	if (!new)
		return -ENOMEM;
	ret = cohort_creds_fill(new, creds);
	if (ret) {
		abort_creds(new);
		return ret;
	}
	current->fs->umask = creds->umask & 0777;
	return commit_creds(new);
}
EXPORT_SYMBOL_GPL(cohort_creds_load);

/**
 * cohort_sched_save - read current's scheduling policy
 * @sched: where to store it
 */
void cohort_sched_save(struct cohort_sched *sched)
{
	sched->policy = current->policy;
	sched->rt_priority = current->rt_priority;
	sched->nice = task_nice(current);
}
EXPORT_SYMBOL_GPL(cohort_sched_save);

/**
 * cohort_sched_load - give current a scheduling policy
 * @sched: as cohort_sched_save() returned it on another node
 *
 * Return: 0 or the errno of sched_setscheduler().
 */
int cohort_sched_load(const struct cohort_sched *sched)
{
	struct sched_param param = { .sched_priority = sched->rt_priority };
	int ret;

	if (sched->nice < MIN_NICE || sched->nice > MAX_NICE)
		return -EINVAL;
	if (sched->policy != current->policy ||
	    sched->rt_priority != current->rt_priority) {
		ret = sched_setscheduler_nocheck(current, sched->policy, &param);
		if (ret)
			return ret;
	}
	set_user_nice(current, sched->nice);
	return 0;
}
EXPORT_SYMBOL_GPL(cohort_sched_load);

/**
 * cohort_set_comm - name current
 * @comm: the name, cut at TASK_COMM_LEN - 1 bytes
 */
void cohort_set_comm(const char *comm)
{
	char name[TASK_COMM_LEN];

	strscpy_pad(name, comm, sizeof(name));
	__set_task_comm(current, name, false);
}
EXPORT_SYMBOL_GPL(cohort_set_comm);

/**
 * struct cohort_work - a function to run in a task
 * @head: task_work linkage
 * @fn: the function
 * @data: its argument
 * @owner: the module of @fn, pinned until @fn returned
 * @task: the task, while @kick waits to queue the work again
 * @kick: queues the work again once the task ran a little (it was inside
 *	its vDSO)
 */
struct cohort_work {
	struct callback_head head;
	cohort_work_fn fn;
	void *data;
	struct module *owner;
	struct task_struct *task;
	struct delayed_work kick;
};

static void cohort_work_run(struct callback_head *head);

/* A jiffy later: the task is in user space, most likely out of the vDSO. */
static void cohort_work_kick(struct work_struct *w)
{
	struct cohort_work *work = container_of(to_delayed_work(w),
						struct cohort_work, kick);
	struct task_struct *tsk = work->task;

	init_task_work(&work->head, cohort_work_run);
	if (task_work_add(tsk, &work->head, TWA_SIGNAL)) {
		/* It is exiting: @fn hears so, as it would in the task. */
		work->fn(work->data, true);
		module_put(work->owner);
		kfree(work);
	}
	put_task_struct(tsk);
}

static void cohort_work_run(struct callback_head *head)
{
	struct cohort_work *work = container_of(head, struct cohort_work, head);
	bool exiting = current->flags & PF_EXITING;
	long status;

	/*
	 * Work queued with TWA_SIGNAL runs from get_signal(), before an
	 * interrupted system call is set up to restart (queuing it again
	 * would not help: task_work_run() runs what is added meanwhile at
	 * once). cohort_arch_save() records the registers the call resumes
	 * with.
	 */
	/*
	 * Stopped inside the vDSO (an interrupt, not a system call, brought
	 * it here): a migration now would let it finish the call on another
	 * node, with this node's clock readings in its registers. Let it run
	 * out first; it leaves the vDSO within microseconds.
	 */
	if (!exiting && cohort_arch_in_vdso(task_pt_regs(current))) {
		work->task = get_task_struct(current);
		INIT_DELAYED_WORK(&work->kick, cohort_work_kick);
		schedule_delayed_work(&work->kick, 1);
		return;
	}
	status = work->fn(work->data, exiting);
	module_put(work->owner);
	kfree(work);
	/* The owner is unpinned and its function has returned: it may go. */
	if (status >= 0 && !exiting)
		do_group_exit(status);
}

static struct cohort_work *cohort_work_alloc(struct module *owner,
					     cohort_work_fn fn, void *data)
{
	struct cohort_work *work;

	if (!try_module_get(owner))
		return NULL;
	work = kmalloc(sizeof(*work), GFP_KERNEL);
	if (!work) {
		module_put(owner);
		return NULL;
	}
	init_task_work(&work->head, cohort_work_run);
	work->fn = fn;
	work->data = data;
	work->owner = owner;
	return work;
}

static void cohort_work_free(struct cohort_work *work)
{
	module_put(work->owner);
	kfree(work);
}

/**
 * cohort_task_work - run a function in a task on its way to user space
 * @owner: the module of @fn, pinned until @fn returned
 * @tsk: the task
 * @fn: the function; its @exiting argument is true when @tsk exits instead;
 *	it returns COHORT_WORK_RESUME or a wait status to end @tsk with
 * @data: its argument
 * @flags: COHORT_WORK_INTERRUPT to interrupt an interruptible sleep (the
 *	system call restarts, or returns -EINTR if it cannot restart)
 *
 * Return: 0 when @fn will run exactly once, -ESRCH if @tsk is exiting, or
 * -ENOMEM (also when @owner is going away); @fn does not run on error.
 */
int cohort_task_work(struct module *owner, struct task_struct *tsk,
		     cohort_work_fn fn, void *data, unsigned int flags)
{
	bool interrupt = flags & COHORT_WORK_INTERRUPT;
	struct cohort_work *work = cohort_work_alloc(owner, fn, data);
	int ret;

	if (!work)
		return -ENOMEM;
	ret = task_work_add(tsk, &work->head,
			    interrupt ? TWA_SIGNAL : TWA_RESUME);
	if (ret)
		cohort_work_free(work);
	return ret;
}
EXPORT_SYMBOL_GPL(cohort_task_work);

/**
 * struct cohort_arrival - what a task cohort_spawn() creates starts with
 * @creds: its credentials
 * @work: the function to run on its way to user space
 */
struct cohort_arrival {
	struct cohort_creds creds;
	struct cohort_work *work;
};

/*
 * The new task: a user-mode thread with no mm yet. It takes its
 * credentials, an empty address space (cohort_exec_fresh_mm()) and a user
 * process's registers, then goes to user space through @work, which
 * installs the migrated process. No program is executed.
 */
static int cohort_arrival_fn(void *arg)
{
	struct cohort_arrival *a = arg;
	struct cohort_work *work = a->work;
	struct cred *new;
	int ret = -ENOMEM;

	/* As the usermode helper: default signal handlers, nice 0. */
	spin_lock_irq(&current->sighand->siglock);
	flush_signal_handlers(current, 1);
	spin_unlock_irq(&current->sighand->siglock);
	set_user_nice(current, 0);
	/* Whatever CPUs the kernel thread that made it was bound to. */
	set_cpus_allowed_ptr(current, cpu_possible_mask);
	set_task_comm(current, "cohort-arrival");
	new = prepare_kernel_cred(current);
	if (new) {
		ret = cohort_creds_fill(new, &a->creds);
		if (ret)
			abort_creds(new);
		else
			commit_creds(new);
	}
	if (!ret) {
		current->fs->umask = a->creds.umask & 0777;
		ret = cohort_exec_fresh_mm();
	}
	kfree(a);
	if (!ret) {
		cohort_arch_fresh_user();
		ret = task_work_add(current, &work->head, TWA_RESUME);
	}
	if (ret) {
		work->fn(work->data, true);
		cohort_work_free(work);
		do_exit(0);
	}
	/* To user space, through @work. */
	return 0;
}

/**
 * cohort_spawn - create a user task to receive a migrated task
 * @owner: the module of @fn, pinned until @fn returned
 * @creds: the credentials the task gets
 * @fn: run in the new task on its first way to user space, where it
 *	installs the migrated state (@exiting true if the task dies first);
 *	it returns COHORT_WORK_RESUME or a wait status to end the task with
 * @data: argument of @fn
 *
 * The task is a user-mode thread, a child of kthreadd (which reaps it),
 * given an empty address space without executing anything. @fn is called exactly once whatever happens: from
 * the new task, or with @exiting true when it could not be set up.
 *
 * Return: 0 (the task runs on its own), or a negative errno when no task
 * could be created (@fn was called).
 */
int cohort_spawn(struct module *owner, const struct cohort_creds *creds,
		 cohort_work_fn fn, void *data)
{
	struct cohort_arrival *a = kmalloc(sizeof(*a), GFP_KERNEL);
	pid_t pid;

	if (a)
		a->work = cohort_work_alloc(owner, fn, data);
	if (!a || !a->work) {
		kfree(a);
		fn(data, true);
		return -ENOMEM;
	}
	a->creds = *creds;
	/* A child of kthreadd, as the usermode helper's: reaped at once. */
	pid = user_mode_thread(cohort_arrival_fn, a, CLONE_PARENT | SIGCHLD);
	if (pid < 0) {
		/* @fn first: freeing the work unpins its module. */
		fn(data, true);
		cohort_work_free(a->work);
		kfree(a);
		return pid;
	}
	return 0;
}
EXPORT_SYMBOL_GPL(cohort_spawn);

/**
 * cohort_task_forward - route @tsk's system calls through the process layer
 * @tsk: the task
 * @on: whether to
 *
 * While on, every system call of @tsk reaches the migration slot's
 * syscall() first.
 */
void cohort_task_forward(struct task_struct *tsk, bool on)
{
	if (on)
		set_task_syscall_work(tsk, COHORT);
	else
		clear_task_syscall_work(tsk, COHORT);
}
EXPORT_SYMBOL_GPL(cohort_task_forward);

/**
 * cohort_may_control - whether current may migrate @tsk
 * @tsk: the task
 *
 * Return: true when current may send @tsk a signal by its credentials
 * (kill(2)'s rule) or has CAP_SYS_ADMIN.
 */
bool cohort_may_control(struct task_struct *tsk)
{
	const struct cred *cred = current_cred();
	const struct cred *tcred;
	bool ok;

	if (capable(CAP_SYS_ADMIN))
		return true;
	rcu_read_lock();
	tcred = __task_cred(tsk);
	ok = uid_eq(cred->euid, tcred->suid) || uid_eq(cred->euid, tcred->uid) ||
	     uid_eq(cred->uid, tcred->suid) || uid_eq(cred->uid, tcred->uid);
	rcu_read_unlock();
	return ok;
}
EXPORT_SYMBOL_GPL(cohort_may_control);

/**
 * cohort_get_comm - current's name
 * @comm: TASK_COMM_LEN bytes, NUL-padded on return
 */
void cohort_get_comm(char *comm)
{
	__get_task_comm(comm, TASK_COMM_LEN, current);
}
EXPORT_SYMBOL_GPL(cohort_get_comm);

/**
 * cohort_set_syscall_return - change what current's system call returns
 * @value: the value, or a negative errno
 *
 * For task work that runs as the system call returns (a failed migration
 * that pcntl(2) asked for).
 */
void cohort_set_syscall_return(long value)
{
	syscall_set_return_value(current, task_pt_regs(current), 0, value);
}
EXPORT_SYMBOL_GPL(cohort_set_syscall_return);

/**
 * cohort_module_pin - keep a module loaded
 * @owner: the module
 *
 * For state that lives on outside any call into the module, such as a task
 * it manages: rmmod fails with -EBUSY while a pin is held.
 *
 * Return: false when @owner is already going away.
 */
bool cohort_module_pin(struct module *owner)
{
	return try_module_get(owner);
}
EXPORT_SYMBOL_GPL(cohort_module_pin);

/**
 * cohort_module_unpin - drop a pin taken with cohort_module_pin()
 * @owner: the module
 */
void cohort_module_unpin(struct module *owner)
{
	module_put(owner);
}
EXPORT_SYMBOL_GPL(cohort_module_unpin);

/**
 * cohort_rcu_read_lock - rcu_read_lock() for Rust code
 */
void cohort_rcu_read_lock(void)
{
	rcu_read_lock();
}
EXPORT_SYMBOL_GPL(cohort_rcu_read_lock);

/**
 * cohort_rcu_read_unlock - rcu_read_unlock() for Rust code
 */
void cohort_rcu_read_unlock(void)
{
	rcu_read_unlock();
}
EXPORT_SYMBOL_GPL(cohort_rcu_read_unlock);

/**
 * cohort_may_migrate - whether a task is of a kind migration handles
 * @tsk: the task
 *
 * A thread that has begun to exit does not count: a joined pthread is one
 * from the moment pthread_join() returns (its tid is cleared in exit_mm(),
 * after signal->live dropped), though it stays in the thread group until
 * exit_notify() releases it. The leaving task waits for such threads with
 * cohort_await_lone_thread().
 *
 * Return: true for a user process with one live thread, its group leader,
 * with a time-sharing or real-time policy.
 */
bool cohort_may_migrate(struct task_struct *tsk)
{
	return !(tsk->flags & (PF_KTHREAD | PF_EXITING | PF_IO_WORKER)) &&
	       tsk->mm && thread_group_leader(tsk) &&
	       atomic_read(&tsk->signal->live) == 1 &&
	       tsk->policy != SCHED_DEADLINE;
}
EXPORT_SYMBOL_GPL(cohort_may_migrate);

/**
 * cohort_await_lone_thread - wait until the current task is its group's only thread
 * @timeout_ms: how long exiting threads may take to be released
 *
 * Called by a leaving task that cohort_may_migrate() accepted: its other
 * threads, if any, are past exit_mm() and only need exit_notify() to be
 * released. Polls every jiffy.
 *
 * Return: 0 once current is alone, -EOPNOTSUPP if a live thread appeared,
 * -EINTR on a fatal signal, -EAGAIN after @timeout_ms.
 */
int cohort_await_lone_thread(unsigned int timeout_ms)
{
	unsigned long end = jiffies + msecs_to_jiffies(timeout_ms);

	while (!thread_group_empty(current)) {
		if (atomic_read(&current->signal->live) != 1)
			return -EOPNOTSUPP;
		if (fatal_signal_pending(current))
			return -EINTR;
		if (time_after(jiffies, end))
			return -EAGAIN;
		schedule_timeout_killable(1);
	}
	return 0;
}
EXPORT_SYMBOL_GPL(cohort_await_lone_thread);

/**
 * cohort_proc_inherit - give a new process its parent's migration settings
 * @parent: the forking task
 * @child: the new task
 * @clone_flags: the clone() flags
 *
 * A new process keeps PCNTL_F_FORBIDDEN and PCNTL_F_ALLOWED, unless its
 * parent forbade itself only (PCNTL_F_SELF_ONLY: the child starts in the
 * default state); it joins its parent's migration group only when the
 * parent joined with PCNTL_GROUP_FORK. A new thread shares its process's
 * settings already.
 */
void cohort_proc_inherit(struct task_struct *parent,
			 struct task_struct *child, u64 clone_flags)
{
	u32 flags, group;

	if (clone_flags & CLONE_THREAD)
		return;
	flags = READ_ONCE(parent->signal->cohort_flags);
	group = READ_ONCE(parent->signal->cohort_group);
	if (!(flags & PCNTL_F_GROUP_FORK))
		group = 0;
	if (!group)
		flags &= ~PCNTL_F_GROUP_FORK;
	if (flags & PCNTL_F_SELF_ONLY)
		flags &= ~(PCNTL_F_FORBIDDEN | PCNTL_F_SELF_ONLY);
	/* The child is on the task list: pcntl(2) may already see it. */
	spin_lock_irq(&child->sighand->siglock);
	WRITE_ONCE(child->signal->cohort_flags, flags & COHORT_PROC_FLAGS);
	WRITE_ONCE(child->signal->cohort_group, group);
	spin_unlock_irq(&child->sighand->siglock);
}

/**
 * cohort_proc_settings - a process's migration settings
 * @tsk: a task of the process
 * @group: set to its migration group, 0 for none
 *
 * Return: its COHORT_PROC_FLAGS.
 */
u32 cohort_proc_settings(struct task_struct *tsk, u32 *group)
{
	*group = READ_ONCE(tsk->signal->cohort_group);
	return READ_ONCE(tsk->signal->cohort_flags) & COHORT_PROC_FLAGS;
}
EXPORT_SYMBOL_GPL(cohort_proc_settings);

/**
 * cohort_proc_update - change a process's migration settings
 * @tsk: a task of the process
 * @clear: COHORT_PROC_FLAGS to clear
 * @set: COHORT_PROC_FLAGS to set (after @clear)
 * @group: the new migration group, or NULL to keep it
 *
 * Return: 0, -EINVAL for flags outside COHORT_PROC_FLAGS, or -ESRCH when
 * the process is exiting.
 */
int cohort_proc_update(struct task_struct *tsk, u32 clear, u32 set,
		       const u32 *group)
{
	unsigned long irqflags;
	u32 flags;

	if ((clear | set) & ~COHORT_PROC_FLAGS)
		return -EINVAL;
	if (!lock_task_sighand(tsk, &irqflags))
		return -ESRCH;
	flags = (tsk->signal->cohort_flags & ~clear) | set;
	WRITE_ONCE(tsk->signal->cohort_flags, flags);
	if (group)
		WRITE_ONCE(tsk->signal->cohort_group, *group);
	unlock_task_sighand(tsk, &irqflags);
	return 0;
}
EXPORT_SYMBOL_GPL(cohort_proc_update);

/**
 * cohort_migration_refusal - whether a task must stay on its node
 * @tsk: the task
 *
 * Processes that are part of the node itself never move: the init of any
 * pid namespace (it would take the namespace's life with it to a node that
 * may die) and kernel threads. Others cannot move now: a traced process
 * (its tracer is here), one in the middle of an execve() or dumping core.
 *
 * Return: 0, -EPERM for the first kind, -EBUSY for the second.
 */
int cohort_migration_refusal(struct task_struct *tsk)
{
	bool reaper;

	if (tsk->flags & (PF_KTHREAD | PF_IO_WORKER))
		return -EPERM;
	rcu_read_lock();
	reaper = is_global_init(tsk) ||
		 (task_tgid(tsk) && is_child_reaper(task_tgid(tsk)));
	rcu_read_unlock();
	if (reaper)
		return -EPERM;
	if (READ_ONCE(tsk->ptrace) || tsk->in_execve ||
	    READ_ONCE(tsk->signal->core_state))
		return -EBUSY;
	return 0;
}
EXPORT_SYMBOL_GPL(cohort_migration_refusal);

/**
 * cohort_may_control_as - kill(2)'s permission rule for given credentials
 * @tsk: the task acted on
 * @uid: real uid of the caller (initial user namespace)
 * @euid: effective uid of the caller
 * @admin: the caller has CAP_SYS_ADMIN
 *
 * For requests from other nodes, which send their caller's ids: users are
 * taken to be the same on every node of a cluster.
 *
 * Return: true when the caller may act on @tsk.
 */
bool cohort_may_control_as(struct task_struct *tsk, u32 uid, u32 euid,
			   bool admin)
{
	kuid_t kuid = make_kuid(&init_user_ns, uid);
	kuid_t keuid = make_kuid(&init_user_ns, euid);
	const struct cred *tcred;
	bool ok;

	if (admin)
		return true;
	if (!uid_valid(kuid) || !uid_valid(keuid))
		return false;
	rcu_read_lock();
	tcred = __task_cred(tsk);
	ok = uid_eq(keuid, tcred->suid) || uid_eq(keuid, tcred->uid) ||
	     uid_eq(kuid, tcred->suid) || uid_eq(kuid, tcred->uid);
	rcu_read_unlock();
	return ok;
}
EXPORT_SYMBOL_GPL(cohort_may_control_as);

/**
 * cohort_current_ids - current's ids, as cohort_may_control_as() takes them
 * @uid: set to its real uid in the initial user namespace
 * @euid: set to its effective uid
 * @admin: set to whether it has CAP_SYS_ADMIN
 */
void cohort_current_ids(u32 *uid, u32 *euid, bool *admin)
{
	const struct cred *cred = current_cred();

	*uid = from_kuid_munged(&init_user_ns, cred->uid);
	*euid = from_kuid_munged(&init_user_ns, cred->euid);
	/* Asked for every command: no audit record, no PF_SUPERPRIV. */
	*admin = has_capability_noaudit(current, CAP_SYS_ADMIN);
}
EXPORT_SYMBOL_GPL(cohort_current_ids);

/**
 * cohort_task_age_ns - time since a task's process was created
 * @tsk: the task
 *
 * Return: nanoseconds of CLOCK_BOOTTIME since its thread group leader
 * started on this node.
 */
u64 cohort_task_age_ns(struct task_struct *tsk)
{
	u64 now = ktime_get_boottime_ns();
	u64 start = READ_ONCE(tsk->group_leader->start_boottime);

	return now > start ? now - start : 0;
}
EXPORT_SYMBOL_GPL(cohort_task_age_ns);

/**
 * cohort_ps - list the user processes of this node
 * @out: room for @max entries
 * @max: how many fit
 *
 * Kernel threads are left out, and so are processes outside the caller's
 * pid namespace; pids are the caller's (a message handler's: the initial
 * namespace's). The list is a snapshot taken under RCU: a process forked
 * or ended meanwhile may be in it or not.
 *
 * Return: how many user processes there are; the first min(that, @max) are
 * in @out.
 */
unsigned int cohort_ps(struct cohort_ps_entry *out, unsigned int max)
{
	struct task_struct *p;
	unsigned int n = 0;
	u64 now = ktime_get_boottime_ns();

	rcu_read_lock();
	for_each_process(p) {
		struct cohort_ps_entry *e;
		struct task_cputime ct;

		pid_t pid = task_tgid_vnr(p);

		/* Kernel threads, and processes the caller cannot name. */
		if ((p->flags & PF_KTHREAD) || !pid)
			continue;
		if (n < max) {
			e = &out[n];
			e->pid = pid;
			e->uid = from_kuid_munged(&init_user_ns, task_uid(p));
			e->flags = cohort_proc_settings(p, &e->group);
			e->threads = get_nr_threads(p);
			thread_group_cputime(p, &ct);
			e->cpu_ns = ct.sum_exec_runtime;
			e->age_ns = now > p->start_boottime ?
				    now - p->start_boottime : 0;
			__get_task_comm(e->comm, TASK_COMM_LEN, p);
		}
		n++;
	}
	rcu_read_unlock();
	return n;
}
EXPORT_SYMBOL_GPL(cohort_ps);
