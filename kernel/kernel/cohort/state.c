// SPDX-License-Identifier: GPL-2.0
/*
 * Cohort hub: the rest of a process's state that migration carries besides
 * its signal dispositions, credentials, scheduling and address space (see
 * task.c and mm.c): the alternate signal stack, interval timers, resource
 * limits, personality, prctl settings, futex and rseq registrations, queued
 * signals with their siginfo, supplementary groups, the executable, its
 * view of CLOCK_MONOTONIC and CLOCK_BOOTTIME, kept on the new node by a
 * time namespace, and a sleep or a poll() a migration interrupted, which
 * goes on where it arrives. Every helper acts on current.
 */
#include <linux/cred.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/mm.h>
#include <linux/nsproxy.h>
#include <linux/posix-timers.h>
#include <linux/resource.h>
#include <linux/restart_block.h>
#include <linux/rseq.h>
#include <linux/sched/coredump.h>
#include <linux/sched/cputime.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/signal.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/time_namespace.h>
#include <linux/timekeeping.h>
#include <linux/uidgid.h>

#include "internal.h"

/* Differences between the clocks a task sees below this keep its namespace. */
#define COHORT_CLOCK_SLACK_NS	(NSEC_PER_SEC / 10)

static void cohort_itimer_real_get(struct cohort_itimer *it)
{
	struct signal_struct *sig = current->signal;
	ktime_t rem;

	spin_lock_irq(&current->sighand->siglock);
	rem = __hrtimer_get_remaining(&sig->real_timer, true);
	if (hrtimer_active(&sig->real_timer))
		it->value_ns = rem > 0 ? rem : NSEC_PER_USEC;
	else
		it->value_ns = 0;
	it->interval_ns = it->value_ns ? ktime_to_ns(sig->it_real_incr) : 0;
	spin_unlock_irq(&current->sighand->siglock);
}

static void cohort_itimer_real_set(const struct cohort_itimer *it)
{
	struct signal_struct *sig = current->signal;
	struct hrtimer *timer = &sig->real_timer;

again:
	spin_lock_irq(&current->sighand->siglock);
	if (hrtimer_try_to_cancel(timer) < 0) {
		spin_unlock_irq(&current->sighand->siglock);
		hrtimer_cancel_wait_running(timer);
		goto again;
	}
	if (it->value_ns) {
		sig->it_real_incr = ns_to_ktime(it->interval_ns);
		hrtimer_start(timer, ns_to_ktime(it->value_ns),
			      HRTIMER_MODE_REL);
	} else {
		sig->it_real_incr = 0;
	}
	spin_unlock_irq(&current->sighand->siglock);
}

/* As getitimer(2) reads ITIMER_VIRTUAL (CPUCLOCK_VIRT) and ITIMER_PROF. */
static void cohort_itimer_cpu_get(unsigned int clock, struct cohort_itimer *it)
{
	struct cpu_itimer *cit = &current->signal->it[clock];
	u64 samples[CPUCLOCK_MAX];
	u64 val;

	spin_lock_irq(&current->sighand->siglock);
	val = cit->expires;
	if (val) {
		thread_group_sample_cputime(current, samples);
		val = val < samples[clock] ? TICK_NSEC : val - samples[clock];
	}
	it->value_ns = val;
	it->interval_ns = val ? cit->incr : 0;
	spin_unlock_irq(&current->sighand->siglock);
}

/* As setitimer(2) arms ITIMER_VIRTUAL and ITIMER_PROF. */
static void cohort_itimer_cpu_set(unsigned int clock,
				  const struct cohort_itimer *it)
{
	struct cpu_itimer *cit = &current->signal->it[clock];
	u64 nval = it->value_ns;
	u64 oval;

	spin_lock_irq(&current->sighand->siglock);
	oval = cit->expires;
	/*
	 * setitimer(2) adds a tick here; the time left that travelled
	 * already has it, so it is not added again at each move.
	 */
	if (oval || nval)
		set_process_cpu_timer(current, clock, &nval, &oval);
	cit->expires = nval;
	cit->incr = nval ? it->interval_ns : 0;
	spin_unlock_irq(&current->sighand->siglock);
}

/* current's view of CLOCK_MONOTONIC and CLOCK_BOOTTIME, offsets included. */
static void cohort_clocks(s64 *mono, s64 *boot)
{
	struct timespec64 ts;

	ktime_get_ts64(&ts);
	timens_add_monotonic(&ts);
	*mono = timespec64_to_ns(&ts);
	ktime_get_boottime_ts64(&ts);
	timens_add_boottime(&ts);
	*boot = timespec64_to_ns(&ts);
}

/*
 * Sets @now to the time on @clockid, if it is a clock that every node has
 * and a sleep on it may be resumed on another node. Returns false for any
 * other clock (CPU-time and alarm clocks among them).
 */
static bool cohort_restart_now(clockid_t clockid, ktime_t *now)
{
	switch (clockid) {
	case CLOCK_REALTIME:
		*now = ktime_get_real();
		return true;
	case CLOCK_MONOTONIC:
		*now = ktime_get();
		return true;
	case CLOCK_BOOTTIME:
		*now = ktime_get_boottime();
		return true;
	case CLOCK_TAI:
		*now = ktime_get_clocktai();
		return true;
	}
	return false;
}

/*
 * The sleep current resumes through restart_syscall(2), if it is one that
 * may be resumed on another node: a nanosleep() or clock_nanosleep() on a
 * clock cohort_restart_now() accepts, reporting its time left (if at all)
 * to a 64-bit rmtp. Sets @clockid, @expires and @now (on that clock).
 */
static bool cohort_restart_sleep(clockid_t *clockid, ktime_t *expires,
				 ktime_t *now)
{
	struct restart_block *restart = &current->restart_block;

	if (!hrtimer_nanosleep_restart_get(restart, clockid, expires))
		return false;
	if (restart->nanosleep.type != TT_NONE &&
	    restart->nanosleep.type != TT_NATIVE)
		return false;
	return cohort_restart_now(*clockid, now);
}

/*
 * A call current resumes through restart_syscall(2): struct cohort_proc's
 * restart fields.
 */
struct cohort_restart {
	u32 kind;
	u32 arg;
	u64 addr;
	s64 ns;
};

/*
 * Reads the call current resumes through restart_syscall(2) into @r, if it
 * is one that may be resumed on another node: a sleep
 * (cohort_restart_sleep()) or a poll(). Returns @r->kind.
 */
static u32 cohort_restart_read(struct cohort_restart *r)
{
	struct restart_block *restart = &current->restart_block;
	struct pollfd __user *ufds;
	struct timespec64 end;
	bool has_timeout;
	clockid_t clockid;
	ktime_t expires, now;
	int nfds;

	*r = (struct cohort_restart){ .kind = COHORT_RESTART_NONE };
	if (!cohort_arch_in_restart())
		return r->kind;
	if (cohort_restart_sleep(&clockid, &expires, &now)) {
		r->kind = COHORT_RESTART_SLEEP;
		r->arg = clockid;
		if (restart->nanosleep.type == TT_NATIVE)
			r->addr = (unsigned long)restart->nanosleep.rmtp;
		r->ns = max_t(s64, 0, ktime_sub(expires, now));
	} else if (poll_restart_get(restart, &ufds, &nfds, &has_timeout,
				    &end) && nfds >= 0) {
		r->kind = COHORT_RESTART_POLL;
		r->arg = nfds;
		r->addr = (unsigned long)ufds;
		r->ns = has_timeout ?
			max_t(s64, 0, ktime_sub(timespec64_to_ktime(end),
						ktime_get())) : -1;
	}
	return r->kind;
}

/**
 * cohort_restart_travels - whether current's interrupted call travels
 *
 * For a task stopped on its way back to user space to migrate: true when
 * it resumes through restart_syscall(2) a sleep or a poll() that
 * cohort_proc_save() records and cohort_proc_load() sets up again on the
 * node it goes to.
 *
 * Return: true or false.
 */
bool cohort_restart_travels(void)
{
	struct cohort_restart r;

	return cohort_restart_read(&r) != COHORT_RESTART_NONE;
}

static void cohort_restart_save(struct cohort_proc *proc)
{
	struct cohort_restart r;

	cohort_restart_read(&r);
	proc->restart = r.kind;
	proc->restart_arg = r.arg;
	proc->restart_addr = r.addr;
	proc->restart_ns = r.ns;
}

/* Sets up the call cohort_restart_save() recorded to resume in current. */
static int cohort_restart_load(const struct cohort_proc *proc)
{
	struct restart_block *restart = &current->restart_block;
	struct timespec64 end;
	ktime_t now;

	switch (proc->restart) {
	case COHORT_RESTART_NONE:
		if (proc->restart_arg || proc->restart_addr || proc->restart_ns)
			return -EINVAL;
		/*
		 * A shadow coming back holds the block it had when it left:
		 * a task set up to restart a call whose block did not travel
		 * gets -EINTR instead (cohort_arch_save()).
		 */
		restart->fn = do_no_restart_syscall;
		return 0;
	case COHORT_RESTART_SLEEP:
		if (proc->restart_ns < 0 || proc->restart_addr >= TASK_SIZE_MAX ||
		    !cohort_restart_now(proc->restart_arg, &now))
			return -EINVAL;
		restart->nanosleep.type = proc->restart_addr ? TT_NATIVE : TT_NONE;
		restart->nanosleep.rmtp = (struct __kernel_timespec __user *)
			(unsigned long)proc->restart_addr;
		hrtimer_nanosleep_restart_set(restart, proc->restart_arg,
					      ktime_add_safe(now,
							     proc->restart_ns));
		return 0;
	case COHORT_RESTART_POLL:
		if (proc->restart_ns < -1 || proc->restart_arg > INT_MAX ||
		    proc->restart_addr >= TASK_SIZE_MAX)
			return -EINVAL;
		end = ktime_to_timespec64(ktime_add_safe(ktime_get(),
							 proc->restart_ns));
		poll_restart_set(restart, (struct pollfd __user *)
				 (unsigned long)proc->restart_addr,
				 proc->restart_arg,
				 proc->restart_ns < 0 ? NULL : &end);
		return 0;
	}
	return -EINVAL;
}

/**
 * cohort_proc_save - read current's process state
 * @proc: where to store it
 *
 * Return: 0, or -EOPNOTSUPP when current has POSIX timers (timer_create(2)):
 * their ids cannot be recreated on another node without a kernel change,
 * so the migration is refused rather than losing them.
 */
int cohort_proc_save(struct cohort_proc *proc)
{
	struct signal_struct *sig = current->signal;
	struct mm_struct *mm = current->mm;
	int i;

	memset(proc, 0, sizeof(*proc));
	spin_lock_irq(&current->sighand->siglock);
	i = !hlist_empty(&sig->posix_timers);
	spin_unlock_irq(&current->sighand->siglock);
	if (i)
		return -EOPNOTSUPP;

	proc->sas_sp = current->sas_ss_sp;
	proc->sas_size = current->sas_ss_size;
	proc->sas_flags = current->sas_ss_flags;
	proc->personality = current->personality;
	cohort_itimer_real_get(&proc->itimer[ITIMER_REAL]);
	cohort_itimer_cpu_get(CPUCLOCK_VIRT, &proc->itimer[ITIMER_VIRTUAL]);
	cohort_itimer_cpu_get(CPUCLOCK_PROF, &proc->itimer[ITIMER_PROF]);

	BUILD_BUG_ON(RLIM_NLIMITS != COHORT_NR_RLIMITS);
	task_lock(current->group_leader);
	for (i = 0; i < RLIM_NLIMITS; i++) {
		proc->rlim[i].cur = sig->rlim[i].rlim_cur;
		proc->rlim[i].max = sig->rlim[i].rlim_max;
	}
	task_unlock(current->group_leader);

	proc->timer_slack_ns = current->timer_slack_ns;
	proc->pdeath_signal = current->pdeath_signal;
	if (sig->is_child_subreaper)
		proc->flags |= COHORT_PROC_SUBREAPER;
	if (task_no_new_privs(current))
		proc->flags |= COHORT_PROC_NO_NEW_PRIVS;
	if (mm) {
		if (test_bit(MMF_DISABLE_THP, &mm->flags))
			proc->flags |= COHORT_PROC_THP_DISABLE;
		proc->dumpable = get_dumpable(mm);
	}
#ifdef CONFIG_FUTEX
	proc->robust_list = (unsigned long)current->robust_list;
#endif
	proc->clear_child_tid = (unsigned long)current->clear_child_tid;
#ifdef CONFIG_RSEQ
	proc->rseq = (unsigned long)current->rseq;
	proc->rseq_len = current->rseq_len;
	proc->rseq_sig = current->rseq_sig;
#endif
	cohort_clocks(&proc->monotonic_ns, &proc->boottime_ns);
	cohort_restart_save(proc);
	return 0;
}
EXPORT_SYMBOL_GPL(cohort_proc_save);

static int cohort_rlimits_load(const struct cohort_proc *proc)
{
	struct signal_struct *sig = current->signal;
	int i;

	for (i = 0; i < RLIM_NLIMITS; i++) {
		if (proc->rlim[i].cur > proc->rlim[i].max)
			return -EINVAL;
		if (i == RLIMIT_NOFILE && proc->rlim[i].max > sysctl_nr_open)
			return -EPERM;
	}
	task_lock(current->group_leader);
	for (i = 0; i < RLIM_NLIMITS; i++) {
		sig->rlim[i].rlim_cur = proc->rlim[i].cur;
		sig->rlim[i].rlim_max = proc->rlim[i].max;
	}
	task_unlock(current->group_leader);
	if (proc->rlim[RLIMIT_CPU].cur != RLIM_INFINITY)
		update_rlimit_cpu(current, proc->rlim[RLIMIT_CPU].cur);
	return 0;
}

/*
 * Puts current in a new time namespace whose offsets make CLOCK_MONOTONIC
 * read @mono and CLOCK_BOOTTIME @boot now, unless current's namespace
 * already shows them within COHORT_CLOCK_SLACK_NS and never earlier.
 */
static int cohort_timens_load(s64 mono, s64 boot)
{
#ifdef CONFIG_TIME_NS
	struct time_namespace *ns;
	struct nsproxy *nsp = NULL;
	const struct cred *old;
	struct cred *kcred;
	s64 now_mono, now_boot;
	int ret;

	cohort_clocks(&now_mono, &now_boot);
	if (now_mono >= mono && now_mono - mono < COHORT_CLOCK_SLACK_NS &&
	    now_boot >= boot && now_boot - boot < COHORT_CLOCK_SLACK_NS)
		return 0;
	if (!current_is_single_threaded())
		return -EUSERS;

	/* The namespace is the kernel's doing, not the task's: no CAP check. */
	kcred = prepare_kernel_cred(&init_task);
	if (!kcred)
		return -ENOMEM;
	old = override_creds(kcred);
	ret = unshare_nsproxy_namespaces(CLONE_NEWTIME, &nsp, NULL, NULL);
	revert_creds(old);
	put_cred(kcred);
	if (ret)
		return ret;
	if (!nsp)
		return -ENOMEM;

	ns = nsp->time_ns_for_children;
	/* Nobody is in it yet: its offsets may still be set. */
	ns->offsets.monotonic = ns_to_timespec64(mono - (now_mono -
		timespec64_to_ns(&current->nsproxy->time_ns->offsets.monotonic)));
	ns->offsets.boottime = ns_to_timespec64(boot - (now_boot -
		timespec64_to_ns(&current->nsproxy->time_ns->offsets.boottime)));
	get_time_ns(ns);
	put_time_ns(nsp->time_ns);
	nsp->time_ns = ns;
	switch_task_namespaces(current, nsp);
	timens_commit(current, ns);
	return 0;
#else
	return 0;
#endif
}

/**
 * cohort_proc_load - install a process state into current
 * @proc: as cohort_proc_save() returned it on another node
 *
 * Call once the address space is installed (the THP and dumpable settings
 * live in it, and the vDSO must be mapped for the time namespace). Timers
 * are armed with the time they had left.
 *
 * Return: 0, -EINVAL for limits or a call to resume that this node refuses,
 * -EPERM for limits, or -ENOMEM.
 */
int cohort_proc_load(const struct cohort_proc *proc)
{
	struct mm_struct *mm = current->mm;
	int ret;

	ret = cohort_rlimits_load(proc);
	if (ret)
		return ret;
	ret = cohort_timens_load(proc->monotonic_ns, proc->boottime_ns);
	if (ret)
		return ret;
	ret = cohort_restart_load(proc);
	if (ret)
		return ret;

	current->sas_ss_sp = proc->sas_sp;
	current->sas_ss_size = proc->sas_size;
	current->sas_ss_flags = proc->sas_flags;
	current->personality = proc->personality;
	/* 0 for a real-time task, as sched_setscheduler() left it. */
	current->timer_slack_ns = proc->timer_slack_ns;
	current->pdeath_signal = valid_signal(proc->pdeath_signal) ?
				 proc->pdeath_signal : 0;
	current->signal->is_child_subreaper =
		!!(proc->flags & COHORT_PROC_SUBREAPER);
	if (proc->flags & COHORT_PROC_SUBREAPER)
		current->signal->has_child_subreaper = 1;
	if (proc->flags & COHORT_PROC_NO_NEW_PRIVS)
		task_set_no_new_privs(current);
	if (mm) {
		if (mmap_write_lock_killable(mm))
			return -EINTR;
		if (proc->flags & COHORT_PROC_THP_DISABLE)
			set_bit(MMF_DISABLE_THP, &mm->flags);
		else
			clear_bit(MMF_DISABLE_THP, &mm->flags);
		mmap_write_unlock(mm);
		if (proc->dumpable <= SUID_DUMP_ROOT)
			set_dumpable(mm, proc->dumpable);
	}
#ifdef CONFIG_FUTEX
	current->robust_list = (void __user *)(unsigned long)proc->robust_list;
#endif
	current->clear_child_tid =
		(int __user *)(unsigned long)proc->clear_child_tid;
#ifdef CONFIG_RSEQ
	current->rseq = (void __user *)(unsigned long)proc->rseq;
	current->rseq_len = proc->rseq_len;
	current->rseq_sig = proc->rseq_sig;
	if (current->rseq)
		rseq_set_notify_resume(current);
#endif
	cohort_itimer_real_set(&proc->itimer[ITIMER_REAL]);
	cohort_itimer_cpu_set(CPUCLOCK_VIRT, &proc->itimer[ITIMER_VIRTUAL]);
	cohort_itimer_cpu_set(CPUCLOCK_PROF, &proc->itimer[ITIMER_PROF]);
	return 0;
}
EXPORT_SYMBOL_GPL(cohort_proc_load);

/**
 * cohort_proc_shadow - disarm current's timers: it became a shadow
 *
 * The timers travelled with the task; left armed here they would signal
 * the shadow, which forwards every signal, so the task would get each
 * expiry twice.
 */
void cohort_proc_shadow(void)
{
	static const struct cohort_itimer off;

	cohort_itimer_real_set(&off);
	cohort_itimer_cpu_set(CPUCLOCK_VIRT, &off);
	cohort_itimer_cpu_set(CPUCLOCK_PROF, &off);
}
EXPORT_SYMBOL_GPL(cohort_proc_shadow);

static unsigned long cohort_sigqueue_copy(struct sigpending *pending,
					  bool shared, struct cohort_sigq *q,
					  unsigned long nr, unsigned long max)
{
	struct sigqueue *entry;

	list_for_each_entry(entry, &pending->list, list) {
		if (nr < max) {
			q[nr].signo = entry->info.si_signo;
			q[nr].shared = shared;
			memcpy(q[nr].info, &entry->info, sizeof(entry->info));
		}
		nr++;
	}
	return nr;
}

/**
 * cohort_sigqueue_save - read current's queued signals with their siginfo
 * @q: where to store them: the thread's own queue, then the process's, each
 *	in the order they were queued
 * @max: room at @q
 *
 * Return: how many are queued (more than @max: only @max were stored).
 */
long cohort_sigqueue_save(struct cohort_sigq *q, unsigned long max)
{
	unsigned long nr;

	BUILD_BUG_ON(sizeof(kernel_siginfo_t) > COHORT_SIGINFO_SIZE);
	spin_lock_irq(&current->sighand->siglock);
	nr = cohort_sigqueue_copy(&current->pending, false, q, 0, max);
	nr = cohort_sigqueue_copy(&current->signal->shared_pending, true, q, nr,
				  max);
	spin_unlock_irq(&current->sighand->siglock);
	return nr;
}
EXPORT_SYMBOL_GPL(cohort_sigqueue_save);

/**
 * cohort_sigqueue_load - queue signals that travelled on current
 * @q: as cohort_sigqueue_save() stored them on another node
 * @nr: how many
 * @pending: the pending set; a signal in it with no entry in @q (one the
 *	kernel queued without siginfo) is raised as sent by the kernel
 *
 * Call after cohort_signals_load(): a signal ignored by the dispositions
 * is dropped as it would be here.
 */
void cohort_sigqueue_load(const struct cohort_sigq *q, unsigned long nr,
			  u64 pending)
{
	kernel_siginfo_t info;
	unsigned long i;
	int sig;

	for (i = 0; i < nr; i++) {
		sig = q[i].signo;
		if (!valid_signal(sig) || !sig)
			continue;
		memcpy(&info, q[i].info, sizeof(info));
		info.si_signo = sig;
		spin_lock_irq(&current->sighand->siglock);
		send_signal_locked(sig, &info, current,
				   q[i].shared ? PIDTYPE_TGID : PIDTYPE_PID);
		spin_unlock_irq(&current->sighand->siglock);
		if (sig <= 64)
			pending &= ~(1ULL << (sig - 1));
	}
	for (sig = 1; sig <= 64; sig++)
		if (pending & (1ULL << (sig - 1)))
			send_sig(sig, current, 1);
}
EXPORT_SYMBOL_GPL(cohort_sigqueue_load);

/**
 * cohort_groups_save - read current's supplementary groups
 * @gids: where to store them, as ids of the initial user namespace
 * @max: room at @gids
 *
 * Return: how many there are (more than @max: only @max were stored).
 */
long cohort_groups_save(u32 *gids, unsigned long max)
{
	const struct group_info *gi = current_cred()->group_info;
	unsigned long i;

	for (i = 0; i < gi->ngroups && i < max; i++)
		gids[i] = from_kgid_munged(&init_user_ns, gi->gid[i]);
	return gi->ngroups;
}
EXPORT_SYMBOL_GPL(cohort_groups_save);

/*
 * cohort_groups_make - a sorted group list of @nr gids of the initial
 * namespace
 *
 * Return: the list (the caller puts it), or ERR_PTR(-EINVAL) for ids that
 * do not map or more than NGROUPS_MAX, ERR_PTR(-ENOMEM).
 */
struct group_info *cohort_groups_make(const u32 *gids, unsigned long nr)
{
	struct group_info *gi;
	unsigned long i;

	if (nr > NGROUPS_MAX)
		return ERR_PTR(-EINVAL);
	gi = groups_alloc(nr);
	if (!gi)
		return ERR_PTR(-ENOMEM);
	for (i = 0; i < nr; i++) {
		gi->gid[i] = make_kgid(&init_user_ns, gids[i]);
		if (!gid_valid(gi->gid[i])) {
			put_group_info(gi);
			return ERR_PTR(-EINVAL);
		}
	}
	groups_sort(gi);
	return gi;
}

/**
 * cohort_groups_load - give current supplementary groups
 * @gids: as cohort_groups_save() stored them on another node
 * @nr: how many, at most NGROUPS_MAX
 *
 * Return: 0, -EINVAL for ids that do not map or too many, or -ENOMEM.
 */
int cohort_groups_load(const u32 *gids, unsigned long nr)
{
	struct group_info *gi;
	struct cred *new;

	gi = cohort_groups_make(gids, nr);
	if (IS_ERR(gi))
		return PTR_ERR(gi);
	new = prepare_creds();
	if (!new) {
		put_group_info(gi);
		return -ENOMEM;
	}
	set_groups(new, gi);
	put_group_info(gi);
	return commit_creds(new);
}
EXPORT_SYMBOL_GPL(cohort_groups_load);

/**
 * cohort_exe_save - the path of current's executable (/proc/self/exe)
 * @buf: where to store it, NUL-terminated
 * @size: room at @buf
 *
 * Return: its length without the NUL, 0 when there is none, deleted, or
 * longer than @buf.
 */
int cohort_exe_save(char *buf, size_t size)
{
	struct file *exe;
	char *path;
	int len = 0;

	if (!current->mm || !size)
		return 0;
	buf[0] = '\0';
	exe = get_mm_exe_file(current->mm);
	if (!exe)
		return 0;
	path = d_path(&exe->f_path, buf, size);
	if (!IS_ERR(path) && !d_unlinked(exe->f_path.dentry)) {
		len = strlen(path);
		memmove(buf, path, len + 1);
	} else {
		buf[0] = '\0';
	}
	fput(exe);
	return len;
}
EXPORT_SYMBOL_GPL(cohort_exe_save);

/**
 * cohort_exe_load - make @path current's executable (/proc/self/exe)
 * @path: an absolute path on this node
 *
 * Only for a task whose old executable is no longer mapped (one that just
 * arrived). A path this node lacks leaves the executable as it is.
 *
 * Return: 0 or the errno of replacing it.
 */
int cohort_exe_load(const char *path)
{
	struct file *file;
	int ret;

	if (!current->mm)
		return -EINVAL;
	file = filp_open(path, O_RDONLY | O_LARGEFILE, 0);
	if (IS_ERR(file))
		return 0;
	ret = replace_mm_exe_file(current->mm, file);
	fput(file);
	/* Still mapped, or being written: the old one stays. */
	return ret == -EBUSY || ret == -EACCES ? 0 : ret;
}
EXPORT_SYMBOL_GPL(cohort_exe_load);
