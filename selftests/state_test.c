// SPDX-License-Identifier: GPL-2.0
/*
 * What of a process's state travels with it (pcntl(2) PCNTL_MIGRATE,
 * popcorn.ko): the alternate signal stack, interval timers, queued signals
 * with their siginfo, resource limits, umask, personality, prctl settings,
 * supplementary groups, the robust futex list, /proc/self/exe, the
 * monotonic and boot-time clocks, a sleep, a poll or a wait a migration
 * interrupts (nanosleep, clock_nanosleep, poll, waitpid), private mappings of /dev/zero and of
 * deleted files, thousands of mappings; and that POSIX timers, which
 * cannot travel, refuse the migration before anything moves.
 *
 * Each test runs a worker (a child that moves itself, or that a child of
 * its own moves) that sets the state
 * up on this node, migrates to another node, checks the exact value there,
 * comes back and checks again. A worker failing a check reports why
 * through a pipe held here and exits 1. Module loading and the peer rules
 * are cohort_cluster.h's (COHORT_REQUIRE_PEERS=1 makes missing peers a
 * failure).
 */
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <linux/futex.h>

#include "kselftest_harness.h"
#include "cohort_test.h"
#include "cohort_cluster.h"

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

/* ---- workers: children that migrate and report through a pipe ---- */

static int g_home, g_other;

/* Runs @fn in a worker; returns its wait status after logging its report. */
static int run_worker(struct __test_metadata *_metadata, int (*fn)(void),
		      int ms)
{
	uint64_t deadline = now_ms() + ms;
	char buf[4096];
	int rep[2], status = 0;
	ssize_t n, len = 0;
	pid_t pid, r;

	if (pipe(rep))
		return -1;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(rep[0]);
		w_rep = rep[1];
		drop_shared_mappings();
		_exit(fn() & 0xff);
	}
	close(rep[1]);
	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (now_ms() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			TH_LOG("worker %d did not end within %d ms: killed", pid, ms);
			status = -1;
			break;
		}
		cohort_msleep(5);
	}
	fcntl(rep[0], F_SETFL, O_NONBLOCK);
	while (len < (ssize_t)sizeof(buf) - 1 &&
	       (n = read(rep[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += n;
	buf[len] = '\0';
	close(rep[0]);
	if (len)
		TH_LOG("worker %d: %s", pid, buf);
	return status;
}

#define RUN_WORKER(fn, ms) do { \
	int _s = run_worker(_metadata, (fn), (ms)); \
	EXPECT_TRUE(_s >= 0 && WIFEXITED(_s) && WEXITSTATUS(_s) == 0) { \
		if (_s >= 0 && WIFSIGNALED(_s)) \
			TH_LOG("worker killed by signal %d", WTERMSIG(_s)); \
		else if (_s >= 0 && WIFEXITED(_s)) \
			TH_LOG("worker exit status %d", WEXITSTATUS(_s)); \
	} \
} while (0)

/* Check @check on this node, then after moving there and after coming back. */
#define THERE_AND_BACK(check) do { \
	check(); \
	WMIGRATE(g_other); \
	check(); \
	WMIGRATE(g_home); \
	check(); \
} while (0)

/*
 * This task's pid on the node it runs on. Away from its origin getpid()
 * answers the pid there; kill(2) and tgkill(2) with either name the task
 * (see Documentation/migration.rst). A worker signals itself by this one,
 * which the siginfo checks expect as the sender.
 */
static pid_t local_pid(void)
{
	char b[32];
	ssize_t n = readlink("/proc/self", b, sizeof(b) - 1);

	if (n <= 0)
		return -1;
	b[n] = '\0';
	return atoi(b);
}

static int raise_here(int sig)
{
	pid_t me = local_pid();

	return syscall(SYS_tgkill, me, me, sig);
}

/* ---- the alternate signal stack ---- */

static char alt[64 * 1024] __attribute__((aligned(16)));
static volatile uintptr_t alt_hsp;
static volatile int alt_hflags;

static void on_alt_signal(int sig)
{
	int local;
	stack_t cur;

	(void)sig;
	alt_hsp = (uintptr_t)&local;
	alt_hflags = sigaltstack(NULL, &cur) ? -1 : cur.ss_flags;
}

static void check_altstack(void)
{
	struct sigaction old;
	stack_t cur;

	WCHECK(sigaltstack(NULL, &cur) == 0, "%s", strerror(errno));
	WCHECK(cur.ss_sp == alt && cur.ss_size == sizeof(alt) &&
	       (unsigned int)cur.ss_flags == SS_AUTODISARM,
	       "sp %p size %zu flags %#x, want %p %zu SS_AUTODISARM",
	       cur.ss_sp, cur.ss_size, cur.ss_flags, (void *)alt, sizeof(alt));
	WCHECK(sigaction(SIGUSR1, NULL, &old) == 0 &&
	       old.sa_handler == on_alt_signal && (old.sa_flags & SA_ONSTACK),
	       "SIGUSR1 lost its handler or SA_ONSTACK (flags %#x)", old.sa_flags);
	alt_hsp = 0;
	alt_hflags = -1;
	WCHECK(raise_here(SIGUSR1) == 0, "tgkill: %s", strerror(errno));
	WCHECK(alt_hsp >= (uintptr_t)alt && alt_hsp < (uintptr_t)alt + sizeof(alt),
	       "handler ran at %#lx, outside %p..%p", (unsigned long)alt_hsp,
	       (void *)alt, (void *)(alt + sizeof(alt)));
	/* SS_AUTODISARM: inside the handler the stack reads as disabled. */
	WCHECK(alt_hflags == SS_DISABLE, "flags in the handler %#x", alt_hflags);
}

static int altstack_worker(void)
{
	stack_t ss = { .ss_sp = alt, .ss_size = sizeof(alt),
		       .ss_flags = SS_AUTODISARM };
	struct sigaction sa = { .sa_handler = on_alt_signal,
				.sa_flags = SA_ONSTACK | SA_RESTART };

	sigemptyset(&sa.sa_mask);
	WCHECK(sigaltstack(&ss, NULL) == 0 && sigaction(SIGUSR1, &sa, NULL) == 0,
	       "setup: %s", strerror(errno));
	THERE_AND_BACK(check_altstack);
	return 0;
}

/* ---- interval and one-shot timers ---- */

static volatile int alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static int itimer_worker(void)
{
	struct itimerval it = {
		.it_value = { .tv_sec = 100 },
		.it_interval = { .tv_sec = 7, .tv_usec = 250000 },
	}, got;
	struct itimerval vt = {
		.it_value = { .tv_sec = 50 },
		.it_interval = { .tv_sec = 3 },
	};
	int i;

	WCHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "%s", strerror(errno));
	WCHECK(setitimer(ITIMER_VIRTUAL, &vt, NULL) == 0, "%s", strerror(errno));
	WCHECK(setitimer(ITIMER_PROF, &vt, NULL) == 0, "%s", strerror(errno));
	for (i = 0; i < 2; i++) {
		WMIGRATE(i ? g_home : g_other);
		WCHECK(getitimer(ITIMER_REAL, &got) == 0, "%s", strerror(errno));
		WCHECK(got.it_value.tv_sec >= 80 && got.it_value.tv_sec < 100,
		       "ITIMER_REAL has %ld.%06ld s left, set to 100 s",
		       (long)got.it_value.tv_sec, (long)got.it_value.tv_usec);
		WCHECK(got.it_interval.tv_sec == 7 && got.it_interval.tv_usec == 250000,
		       "ITIMER_REAL interval %ld.%06ld, want 7.250000",
		       (long)got.it_interval.tv_sec, (long)got.it_interval.tv_usec);
		WCHECK(getitimer(ITIMER_VIRTUAL, &got) == 0, "%s", strerror(errno));
		/* setitimer(2) adds a tick (10 ms) once, not at each move. */
		WCHECK(got.it_value.tv_sec >= 45 && (got.it_value.tv_sec < 50 ||
		       (got.it_value.tv_sec == 50 && got.it_value.tv_usec <= 15000)) &&
		       got.it_interval.tv_sec == 3 && got.it_interval.tv_usec == 0,
		       "ITIMER_VIRTUAL %ld.%06ld interval %ld.%06ld, want about 50 and 3",
		       (long)got.it_value.tv_sec, (long)got.it_value.tv_usec,
		       (long)got.it_interval.tv_sec, (long)got.it_interval.tv_usec);
		WCHECK(getitimer(ITIMER_PROF, &got) == 0, "%s", strerror(errno));
		WCHECK(got.it_value.tv_sec >= 45 && (got.it_value.tv_sec < 50 ||
		       (got.it_value.tv_sec == 50 && got.it_value.tv_usec <= 15000)) &&
		       got.it_interval.tv_sec == 3,
		       "ITIMER_PROF %ld.%06ld interval %ld, want about 50 and 3",
		       (long)got.it_value.tv_sec, (long)got.it_value.tv_usec,
		       (long)got.it_interval.tv_sec);
	}
	return 0;
}

/* alarm(2) keeps its time left, and an expiry after the move comes once. */
static int alarm_worker(void)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	unsigned int left;
	uint64_t t0;

	sigemptyset(&sa.sa_mask);
	WCHECK(sigaction(SIGALRM, &sa, NULL) == 0, "%s", strerror(errno));
	alarm(60);
	WMIGRATE(g_other);
	left = alarm(60);
	WCHECK(left > 40 && left <= 60, "alarm(60) had %u s left after the move", left);
	WMIGRATE(g_home);
	left = alarm(0);
	WCHECK(left > 40 && left <= 60, "alarm(60) had %u s left back home", left);

	/* A one-shot 2 s timer armed before the move fires exactly once. */
	alarms = 0;
	alarm(2);
	WMIGRATE(g_other);
	t0 = now_ms();
	while (!alarms && now_ms() - t0 < 10000)
		usleep(10000);
	WCHECK(alarms == 1, "%d SIGALRM within %llu ms after the move", alarms,
	       (unsigned long long)(now_ms() - t0));
	usleep(3000000);
	WCHECK(alarms == 1, "%d SIGALRM: the shadow's timer fired too", alarms);
	WMIGRATE(g_home);
	usleep(500000);
	WCHECK(alarms == 1, "%d SIGALRM after coming back", alarms);
	return 0;
}

/* An interval timer keeps firing at its rate on the other node. */
static int interval_worker(void)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	struct itimerval it = {
		.it_value = { .tv_usec = 200000 },
		.it_interval = { .tv_usec = 200000 },
	}, off = { 0 };
	uint64_t t0;
	int n;

	sigemptyset(&sa.sa_mask);
	WCHECK(sigaction(SIGALRM, &sa, NULL) == 0, "%s", strerror(errno));
	WCHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "%s", strerror(errno));
	WMIGRATE(g_other);
	alarms = 0;
	t0 = now_ms();
	while (now_ms() - t0 < 2000)
		usleep(20000);
	n = alarms;
	/*
	 * 10 expiries in 2 s; twice as many if the shadow's timer ran on.
	 * Expiries while a SIGALRM is still pending make one signal, and a
	 * loaded host can leave the worker unscheduled for a while: at least
	 * 2 says the timer runs here.
	 */
	WCHECK(n >= 2 && n <= 13, "%d SIGALRM in 2 s of a 200 ms timer", n);
	WCHECK(setitimer(ITIMER_REAL, &off, NULL) == 0, "%s", strerror(errno));
	WMIGRATE(g_home);
	return 0;
}

/* ---- queued signals with their siginfo ---- */

static pid_t usr2_from;	/* the pid tgkill(2) puts in SIGUSR2's siginfo */

/* sigqueue(3) to this task where it runs, with the pid it has at its origin. */
static int queue_here(int sig, int value)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	si.si_signo = sig;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_int = value;
	return syscall(SYS_rt_sigqueueinfo, local_pid(), sig, &si);
}

static void queue_signals(int rt, int nr_rt)
{
	int i;

	WCHECK(queue_here(SIGUSR1, 77) == 0, "%s", strerror(errno));
	for (i = 0; i < nr_rt; i++)
		WCHECK(queue_here(rt, 1000 + i) == 0, "%s", strerror(errno));
	usr2_from = local_pid();
	WCHECK(raise_here(SIGUSR2) == 0, "%s", strerror(errno));
}

static void take_signals(int rt, int nr_rt)
{
	struct timespec zero = { 0 };
	siginfo_t si;
	sigset_t set, pend;
	int i, s;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, rt);
	/*
	 * The thread's own queue first (SIGUSR2, by tgkill; glibc reports
	 * SI_TKILL as SI_USER), then the process's, lowest number first:
	 * SIGUSR1, then the real-time ones in the order they were queued.
	 */
	s = sigtimedwait(&set, &si, &zero);
	WCHECK(s == SIGUSR2 && (si.si_code == SI_TKILL || si.si_code == SI_USER) &&
	       si.si_pid == usr2_from,
	       "got %d code %d pid %d, want SIGUSR2 SI_TKILL from %d",
	       s, si.si_code, si.si_pid, usr2_from);
	s = sigtimedwait(&set, &si, &zero);
	WCHECK(s == SIGUSR1 && si.si_code == SI_QUEUE &&
	       si.si_value.sival_int == 77 && si.si_pid == getpid(),
	       "got %d code %d value %d pid %d, want SIGUSR1 SI_QUEUE 77 from %d",
	       s, si.si_code, si.si_value.sival_int, si.si_pid, getpid());
	for (i = 0; i < nr_rt; i++) {
		s = sigtimedwait(&set, &si, &zero);
		WCHECK(s == rt && si.si_code == SI_QUEUE &&
		       si.si_value.sival_int == 1000 + i,
		       "real-time signal %d of %d: got %d code %d value %d, want %d SI_QUEUE %d",
		       i, nr_rt, s, si.si_code, si.si_value.sival_int, rt, 1000 + i);
	}
	s = sigtimedwait(&set, &si, &zero);
	WCHECK(s < 0 && errno == EAGAIN, "one more signal %d pending", s);
	WCHECK(sigpending(&pend) == 0 && !sigismember(&pend, rt),
	       "signal %d still pending", rt);
}

static int sigqueue_worker(void)
{
	int rt = SIGRTMIN + 3;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, rt);
	WCHECK(sigprocmask(SIG_BLOCK, &set, NULL) == 0, "%s", strerror(errno));
	/* Queued here, taken there. */
	queue_signals(rt, 8);
	WMIGRATE(g_other);
	take_signals(rt, 8);
	/* Queued there, taken here. */
	queue_signals(rt, 5);
	WMIGRATE(g_home);
	take_signals(rt, 5);
	/* Queued here, through two moves. */
	queue_signals(rt, 3);
	WMIGRATE(g_other);
	WMIGRATE(g_home);
	take_signals(rt, 3);
	return 0;
}

/* ---- limits, umask, personality, prctl, groups ---- */

static const struct { int res; struct rlimit lim; } rlims[] = {
	{ RLIMIT_NOFILE, { 100, 200 } },
	{ RLIMIT_CORE, { 0, 1 << 20 } },
	{ RLIMIT_CPU, { 3000, RLIM_INFINITY } },
	{ RLIMIT_MSGQUEUE, { 4096, 8192 } },
	{ RLIMIT_NICE, { 5, 10 } },
};

static void check_rlimits(void)
{
	struct rlimit got;
	size_t i;

	for (i = 0; i < sizeof(rlims) / sizeof(rlims[0]); i++) {
		WCHECK(getrlimit(rlims[i].res, &got) == 0, "%s", strerror(errno));
		WCHECK(got.rlim_cur == rlims[i].lim.rlim_cur &&
		       got.rlim_max == rlims[i].lim.rlim_max,
		       "limit %d is %llu/%llu, want %llu/%llu", rlims[i].res,
		       (unsigned long long)got.rlim_cur,
		       (unsigned long long)got.rlim_max,
		       (unsigned long long)rlims[i].lim.rlim_cur,
		       (unsigned long long)rlims[i].lim.rlim_max);
	}
}

static int rlimit_worker(void)
{
	size_t i;

	for (i = 0; i < sizeof(rlims) / sizeof(rlims[0]); i++)
		WCHECK(setrlimit(rlims[i].res, &rlims[i].lim) == 0, "%d: %s",
		       rlims[i].res, strerror(errno));
	THERE_AND_BACK(check_rlimits);
	return 0;
}

static void check_umask(void)
{
	mode_t m = umask(0);

	umask(m);
	WCHECK(m == 027, "umask %#o, want 027", m);
}

static int umask_worker(void)
{
	umask(027);
	THERE_AND_BACK(check_umask);
	return 0;
}

#define PERSONA (PER_LINUX | ADDR_NO_RANDOMIZE | UNAME26)

static void check_personality(void)
{
	int p = personality(0xffffffff);

	WCHECK(p == PERSONA, "personality %#x, want %#x", p, PERSONA);
}

static int personality_worker(void)
{
	WCHECK(personality(PERSONA) >= 0, "%s", strerror(errno));
	THERE_AND_BACK(check_personality);
	return 0;
}

static void check_prctl(void)
{
	char name[17] = "";
	int sig = -1, reaper = -1;

	WCHECK(prctl(PR_GET_NAME, name) == 0 && !strcmp(name, "state-prctl"),
	       "name '%s'", name);
	WCHECK(prctl(PR_GET_PDEATHSIG, &sig) == 0 && sig == SIGUSR2,
	       "parent-death signal %d", sig);
	WCHECK(prctl(PR_GET_CHILD_SUBREAPER, &reaper) == 0 && reaper == 1,
	       "child subreaper %d", reaper);
	WCHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "no_new_privs lost");
	WCHECK(prctl(PR_GET_TIMERSLACK) == 123456, "timer slack %d",
	       prctl(PR_GET_TIMERSLACK));
	WCHECK(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1, "THP disable lost");
	WCHECK(prctl(PR_GET_DUMPABLE) == 0, "dumpable %d", prctl(PR_GET_DUMPABLE));
}

static int prctl_worker(void)
{
	WCHECK(prctl(PR_SET_NAME, "state-prctl") == 0, "%s", strerror(errno));
	WCHECK(prctl(PR_SET_PDEATHSIG, SIGUSR2) == 0, "%s", strerror(errno));
	WCHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0, "%s", strerror(errno));
	WCHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "%s", strerror(errno));
	WCHECK(prctl(PR_SET_TIMERSLACK, 123456) == 0, "%s", strerror(errno));
	WCHECK(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0, "%s", strerror(errno));
	WCHECK(prctl(PR_SET_DUMPABLE, 0) == 0, "%s", strerror(errno));
	THERE_AND_BACK(check_prctl);
	return 0;
}

static const gid_t groups[] = { 5, 100, 1000, 65534, 4000000 };

static void check_groups(void)
{
	gid_t got[64];
	int n, i, j, found;

	n = getgroups(64, got);
	WCHECK(n == (int)(sizeof(groups) / sizeof(groups[0])), "%d groups", n);
	for (i = 0; i < n; i++) {
		for (found = 0, j = 0; j < n; j++)
			found |= got[j] == groups[i];
		WCHECK(found, "group %u missing", groups[i]);
	}
}

static int groups_worker(void)
{
	WCHECK(setgroups(sizeof(groups) / sizeof(groups[0]), groups) == 0, "%s",
	       strerror(errno));
	THERE_AND_BACK(check_groups);
	return 0;
}

/* ---- futex registrations and /proc/self/exe ---- */

static struct robust_list_head robust = { .list = { &robust.list } };

static void check_robust(void)
{
	struct robust_list_head *head = NULL;
	size_t len = 0;

	WCHECK(syscall(SYS_get_robust_list, 0, &head, &len) == 0, "%s",
	       strerror(errno));
	WCHECK(head == &robust && len == sizeof(robust), "head %p len %zu, want %p",
	       (void *)head, len, (void *)&robust);
}

static int robust_worker(void)
{
	WCHECK(syscall(SYS_set_robust_list, &robust, sizeof(robust)) == 0, "%s",
	       strerror(errno));
	THERE_AND_BACK(check_robust);
	return 0;
}

/*
 * glibc registered this thread's rseq area, 32 bytes (the original ABI's
 * size, of which __rseq_size says 20 are used); registering it again with
 * the same arguments fails with EBUSY only while the kernel has it.
 */
#define RSEQ_LEN 32

static void check_rseq(void)
{
	struct rseq *rs = (struct rseq *)((char *)__builtin_thread_pointer() +
					  __rseq_offset);
	unsigned int cpu = ~0U;
	long r;
	int i;

	errno = 0;
	r = syscall(SYS_rseq, rs, RSEQ_LEN, 0, RSEQ_SIG);
	WCHECK(r == -1 && errno == EBUSY,
	       "rseq() again: %ld (%s), want EBUSY: the registration was lost",
	       r, strerror(errno));
	/* The kernel keeps the area up to date where the task runs now. */
	for (i = 0; i < 100; i++) {
		if (syscall(SYS_getcpu, &cpu, NULL, NULL) == 0 &&
		    rs->cpu_id == cpu && rs->cpu_id_start == cpu)
			break;
	}
	WCHECK(i < 100, "rseq cpu_id %u cpu_id_start %u, getcpu %u", rs->cpu_id,
	       rs->cpu_id_start, cpu);
}

static int rseq_worker(void)
{
	WCHECK(__rseq_size > 0,
	       "glibc registered no rseq area (__rseq_size %u): kernel without CONFIG_RSEQ?",
	       __rseq_size);
	THERE_AND_BACK(check_rseq);
	return 0;
}

static char exe0[PATH_MAX];

static void check_exe(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	WCHECK(n > 0, "readlink: %s", strerror(errno));
	exe[n] = '\0';
	WCHECK(!strcmp(exe, exe0), "/proc/self/exe is %s, want %s", exe, exe0);
}

static int exe_worker(void)
{
	ssize_t n = readlink("/proc/self/exe", exe0, sizeof(exe0) - 1);

	WCHECK(n > 0, "readlink: %s", strerror(errno));
	exe0[n] = '\0';
	THERE_AND_BACK(check_exe);
	return 0;
}

/* ---- clocks ---- */

static int64_t clock_ns(clockid_t c, bool raw)
{
	struct timespec t;

	if (raw)
		syscall(SYS_clock_gettime, c, &t);
	else
		clock_gettime(c, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int64_t last_mono, last_boot;

static void check_clocks(void)
{
	clockid_t ids[] = { CLOCK_MONOTONIC, CLOCK_BOOTTIME };
	int64_t *last[] = { &last_mono, &last_boot };
	int64_t v, s, va, v2;
	int k;

	for (k = 0; k < 2; k++) {
		/*
		 * vDSO, system call, vDSO again: the system call's value lies
		 * between the two others, however long the reads took.
		 */
		v = clock_ns(ids[k], false);
		s = clock_ns(ids[k], true);
		va = clock_ns(ids[k], false);
		WCHECK(v >= *last[k] && s >= *last[k],
		       "clock %d went back: vDSO %lld, syscall %lld, before %lld",
		       ids[k], (long long)v, (long long)s, (long long)*last[k]);
		WCHECK(v <= s && s <= va,
		       "clock %d: syscall %lld not between vDSO %lld and %lld", ids[k],
		       (long long)s, (long long)v, (long long)va);
		usleep(50000);
		v2 = clock_ns(ids[k], false);
		WCHECK(v2 - v >= 40000000LL && v2 - v < 5000000000LL,
		       "clock %d advanced %lld us over 50 ms", ids[k],
		       (long long)(v2 - v) / 1000);
		*last[k] = v2;
	}
}

static int clocks_worker(void)
{
	THERE_AND_BACK(check_clocks);
	return 0;
}

/* ---- a sleep that a migration interrupts ---- */

#define SLEEP_MS	4000
/* The mover's first move, well into the sleep. */
#define SLEEP_MOVE_MS	1000

/*
 * Forked by a sleeping worker: moves the worker (its parent, named by the
 * pid it has here) to g_other SLEEP_MOVE_MS into its sleep and, if @back,
 * home again 500 ms after that move; with @signal, sends it SIGUSR1
 * 500 ms after the first move instead; with @data_fd >= 0, writes one
 * byte 'x' to it then instead. Writes the monotonic times at which the
 * first and the last move returned (ms, two u64) to @fd; exits 1 to 5 if
 * a step failed.
 */
static void sleep_mover(pid_t worker, uint64_t t0, bool back, bool signal, int data_fd,
			int fd)
{
	uint64_t t[2];

	while (now_ms() - t0 < SLEEP_MOVE_MS)
		usleep(10000);
	if (pcntl(PCNTL_MIGRATE, worker, g_other, 0) || where(worker) != g_other)
		_exit(1);
	t[0] = now_ms();
	usleep(500000);
	if (signal && kill(worker, SIGUSR1))
		_exit(2);
	if (data_fd >= 0 && write(data_fd, "x", 1) != 1)
		_exit(5);
	if (back && pcntl(PCNTL_MIGRATE, worker, g_home, 0))
		_exit(3);
	t[1] = now_ms();
	if (write(fd, t, sizeof(t)) != sizeof(t))
		_exit(4);
	_exit(0);
}

/*
 * Forks a sleep_mover() of the calling worker, with a pipe for the times
 * it reports; *@fd is the pipe's read end, for mover_done(). Returns the
 * mover's pid.
 */
static pid_t start_mover(uint64_t t0, bool back, bool signal, int data_fd, int *fd)
{
	pid_t me = getpid(), mover;
	int fds[2];

	WCHECK(pipe(fds) == 0, "%s", strerror(errno));
	mover = fork();
	WCHECK(mover >= 0, "fork: %s", strerror(errno));
	if (mover == 0) {
		close(fds[0]);
		sleep_mover(me, t0, back, signal, data_fd, fds[1]);
	}
	close(fds[1]);
	*fd = fds[0];
	return mover;
}

/*
 * Waits for @mover and reads the times it wrote to @fd, relative to @t0:
 * when its first move returned (*@moved) and its last (returned). Checks
 * that the first move returned while the call it interrupted had time
 * left: a migration that waited for the call to end would not have
 * interrupted it.
 */
static uint64_t mover_done(pid_t mover, int fd, uint64_t t0, uint64_t *moved)
{
	uint64_t t[2] = { 0, 0 };
	int st = -1;
	pid_t w = waitpid(mover, &st, 0);

	WCHECK(w == mover, "waitpid for the mover: %d (%s)", w, strerror(errno));
	WCHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the mover failed (wait status %#x)", st);
	WCHECK(read(fd, t, sizeof(t)) == sizeof(t), "the mover said nothing");
	close(fd);
	*moved = t[0] - t0;
	WCHECK(*moved < SLEEP_MS - 500, "the first move returned %llu ms in",
	       (unsigned long long)*moved);
	return t[1] - t0;
}

/*
 * A call of @what that lasted @ms and had SLEEP_MS to go while a mover
 * moved it to g_other and back home at @back: it ends at its time, or
 * as soon as it is back if the moves took longer, within a second. One
 * started again at the first move would end at SLEEP_MOVE_MS + SLEEP_MS
 * at the earliest, so that is a bound too.
 */
static void ends_on_time(const char *what, uint64_t ms, uint64_t back)
{
	uint64_t late = (back > SLEEP_MS ? back : SLEEP_MS) + 1000;

	if (late > SLEEP_MOVE_MS + SLEEP_MS)
		late = SLEEP_MOVE_MS + SLEEP_MS;
	WCHECK(ms >= SLEEP_MS - 5, "a %d ms %s moved to node %d and back ended after %llu ms",
	       SLEEP_MS, what, g_other, (unsigned long long)ms);
	WCHECK(ms < late, "a %d ms %s ended after %llu ms (back home at %llu ms)", SLEEP_MS,
	       what, (unsigned long long)ms, (unsigned long long)back);
	WCHECK(where(0) == g_home, "on node %ld", where(0));
}

static volatile int usr1s;

static void on_usr1(int sig)
{
	(void)sig;
	usr1s++;
}

/*
 * Sleeps SLEEP_MS on @clk (SYS_nanosleep for CLOCK_MONOTONIC when @nr is
 * SYS_nanosleep, else clock_nanosleep(2)) while a mover moves it to
 * another node and, unless @signal, back. Without a signal the sleep goes
 * on where the worker arrives (restart_syscall(2)) and ends after its
 * time: neither early with EINTR nor late, as if it had started again at
 * a move. With @signal, a SIGUSR1 handler (no SA_RESTART) on the other
 * node ends it with EINTR and the time it had left in rmtp.
 */
static void sleep_moved(long nr, clockid_t clk, bool signal)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	struct timespec req = { SLEEP_MS / 1000, (SLEEP_MS % 1000) * 1000000L };
	struct timespec left = { -1, -1 };
	uint64_t t0, ms, back, moved;
	int fd, r, e;
	pid_t mover;

	sigemptyset(&sa.sa_mask);
	WCHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "%s", strerror(errno));
	usr1s = 0;
	t0 = now_ms();
	mover = start_mover(t0, !signal, signal, -1, &fd);
	if (nr == SYS_nanosleep) {
		r = syscall(SYS_nanosleep, &req, signal ? &left : NULL);
		e = r ? errno : 0;
	} else {
		e = clock_nanosleep(clk, 0, &req, signal ? &left : NULL);
		r = e ? -1 : 0;
	}
	ms = now_ms() - t0;
	back = mover_done(mover, fd, t0, &moved);
	if (signal) {
		WCHECK(r == -1 && e == EINTR && usr1s == 1,
		       "a %d ms sleep and SIGUSR1 on node %d: %d (%s), %d signal(s)",
		       SLEEP_MS, g_other, r, strerror(e), usr1s);
		/*
		 * The signal came 500 ms after the move returned; the time
		 * left when the move interrupted the sleep was more.
		 */
		WCHECK(left.tv_sec >= 0 && left.tv_nsec >= 0 &&
		       left.tv_sec * 1000 + left.tv_nsec / 1000000 + moved + 400 < SLEEP_MS,
		       "time left %ld.%09ld s, want under %llu ms", (long)left.tv_sec,
		       left.tv_nsec, (unsigned long long)(SLEEP_MS - moved - 400));
		WMIGRATE(g_home);
		return;
	}
	WCHECK(r == 0, "a %d ms sleep moved to node %d and back: %s after %llu ms",
	       SLEEP_MS, g_other, strerror(e), (unsigned long long)ms);
	ends_on_time("sleep", ms, back);
}

/*
 * poll(2)s the read end of a pipe for SLEEP_MS while a mover moves the
 * worker to another node. Without @data the mover brings it back and the
 * poll times out on time (0, not EINTR early, not late). With @data the
 * mover writes a byte to the pipe from here while the worker polls on
 * the other node: the poll, now on a proxy of the pipe, returns it.
 */
static void poll_moved(bool data)
{
	struct pollfd pfd = { .events = POLLIN };
	int fd, pipefd[2], r, e;
	uint64_t t0, ms, back, moved;
	pid_t mover;
	char c = 0;

	WCHECK(pipe(pipefd) == 0, "%s", strerror(errno));
	t0 = now_ms();
	mover = start_mover(t0, !data, false, data ? pipefd[1] : -1, &fd);
	pfd.fd = pipefd[0];
	r = poll(&pfd, 1, SLEEP_MS);
	e = r < 0 ? errno : 0;
	ms = now_ms() - t0;
	/* Held until here, so that the mover's exit is no hang-up. */
	close(pipefd[1]);
	back = mover_done(mover, fd, t0, &moved);
	if (data) {
		WCHECK(r == 1 && (pfd.revents & POLLIN),
		       "a poll moved to node %d, a byte written at home: %d (%s), revents %#x after %llu ms",
		       g_other, r, strerror(e), pfd.revents, (unsigned long long)ms);
		WCHECK(read(pipefd[0], &c, 1) == 1 && c == 'x', "read %d: %s", c, strerror(errno));
		WCHECK(ms < SLEEP_MS, "the byte came %llu ms in", (unsigned long long)ms);
		close(pipefd[0]);
		WMIGRATE(g_home);
		return;
	}
	close(pipefd[0]);
	WCHECK(r == 0, "a %d ms poll moved to node %d and back: %d (%s) after %llu ms",
	       SLEEP_MS, g_other, r, strerror(e), (unsigned long long)ms);
	ends_on_time("poll", ms, back);
}

static int sleep_monotonic_worker(void)
{
	sleep_moved(SYS_nanosleep, CLOCK_MONOTONIC, false);
	return 0;
}

static int sleep_realtime_worker(void)
{
	sleep_moved(SYS_clock_nanosleep, CLOCK_REALTIME, false);
	return 0;
}

static int sleep_boottime_worker(void)
{
	sleep_moved(SYS_clock_nanosleep, CLOCK_BOOTTIME, false);
	return 0;
}

static int sleep_signal_worker(void)
{
	sleep_moved(SYS_nanosleep, CLOCK_MONOTONIC, true);
	sleep_moved(SYS_clock_nanosleep, CLOCK_BOOTTIME, true);
	return 0;
}

/*
 * waitpid(2)s for a child of the worker's that exits with 7 at SLEEP_MS,
 * at home, while a mover moves the worker: away, the wait is the
 * shadow's (a forwarded wait4). With @how 'm' the mover brings the
 * worker back during that wait, which goes on at home and reaps the
 * child. With 'r' and 'i' the mover sends SIGUSR1 to the waiting worker
 * there, whose handler has SA_RESTART ('r': the wait goes on) or not
 * ('i': EINTR, and a second waitpid reaps the child).
 */
static void wait_moved(char how)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	uint64_t t0, ms, back, moved;
	int fd, st = -1, e;
	pid_t mover, child, r;

	sigemptyset(&sa.sa_mask);
	sa.sa_flags = how == 'r' ? SA_RESTART : 0;
	WCHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "%s", strerror(errno));
	usr1s = 0;
	t0 = now_ms();
	child = fork();
	WCHECK(child >= 0, "fork: %s", strerror(errno));
	if (child == 0) {
		while (now_ms() - t0 < SLEEP_MS)
			usleep(10000);
		_exit(7);
	}
	mover = start_mover(t0, how == 'm', how != 'm', -1, &fd);
	r = waitpid(child, &st, 0);
	e = r < 0 ? errno : 0;
	ms = now_ms() - t0;
	back = mover_done(mover, fd, t0, &moved);
	if (how == 'i') {
		WCHECK(r == -1 && e == EINTR && usr1s == 1,
		       "waitpid and SIGUSR1 without SA_RESTART on node %d: %d (%s), %d signal(s)",
		       g_other, r, strerror(e), usr1s);
		r = waitpid(child, &st, 0);
		e = r < 0 ? errno : 0;
		ms = now_ms() - t0;
	}
	WCHECK(r == child && WIFEXITED(st) && WEXITSTATUS(st) == 7,
	       "waitpid moved to node %d ('%c'): %d (%s), status %#x, %d signal(s)", g_other,
	       how, r, strerror(e), st, usr1s);
	WCHECK(how == 'm' ? usr1s == 0 : usr1s == 1, "%d signal(s)", usr1s);
	if (how == 'm') {
		ends_on_time("wait", ms, back);
		return;
	}
	WCHECK(ms >= SLEEP_MS - 5, "the child's exit was reaped %llu ms in",
	       (unsigned long long)ms);
	WMIGRATE(g_home);
}

static int wait_worker(void)
{
	wait_moved('m');
	return 0;
}

static int wait_signal_worker(void)
{
	wait_moved('r');
	wait_moved('i');
	return 0;
}

static int poll_worker(void)
{
	poll_moved(false);
	return 0;
}

static int poll_data_worker(void)
{
	poll_moved(true);
	return 0;
}

/* ---- mappings ---- */

static uint64_t word(uint64_t seed, uint64_t i)
{
	uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ULL ^ (seed + 1) * 0xD6E8FEB86659FD93ULL;

	return x ^ (x >> 29);
}

static void fill(uint64_t *p, size_t len, uint64_t seed)
{
	size_t i;

	for (i = 0; i < len / 8; i++)
		p[i] = word(seed, i);
}

/* First word of bytes [from, to) of @p that is not @seed's, or -1. */
static long bad_words(const uint64_t *p, size_t from, size_t to, uint64_t seed)
{
	size_t i;

	for (i = from / 8; i < to / 8; i++)
		if (p[i] != word(seed, i))
			return i;
	return -1;
}

static long bad_word(const uint64_t *p, size_t len, uint64_t seed)
{
	return bad_words(p, 0, len, seed);
}

#define MAP_LEN (64UL << 10)

static int devzero_worker(void)
{
	int fd = open("/dev/zero", O_RDWR);
	uint64_t *p, *q;
	long bad;

	WCHECK(fd >= 0, "/dev/zero: %s", strerror(errno));
	p = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	q = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	WCHECK(p != MAP_FAILED && q != MAP_FAILED, "mmap: %s", strerror(errno));
	fill(p, MAP_LEN / 2, 1);
	WMIGRATE(g_other);
	bad = bad_word(p, MAP_LEN / 2, 1);
	WCHECK(bad < 0, "word %ld of /dev/zero mapping differs there", bad);
	WCHECK(p[MAP_LEN / 16] == 0 && q[3] == 0, "untouched pages not zero");
	fill(p, MAP_LEN, 2);
	fill(q, MAP_LEN, 3);
	WMIGRATE(g_home);
	bad = bad_word(p, MAP_LEN, 2);
	WCHECK(bad < 0, "word %ld written there differs back home", bad);
	bad = bad_word(q, MAP_LEN, 3);
	WCHECK(bad < 0, "word %ld of the second mapping differs back home", bad);
	return 0;
}

static int unlinked_worker(void)
{
	char path[] = "/tmp/state_test.XXXXXX";
	uint64_t *buf, *p;
	int fd = mkstemp(path);
	long bad;

	WCHECK(fd >= 0, "mkstemp: %s", strerror(errno));
	buf = malloc(MAP_LEN);
	WCHECK(buf != NULL, "malloc");
	fill(buf, MAP_LEN, 4);
	WCHECK(write(fd, buf, MAP_LEN) == (ssize_t)MAP_LEN, "write: %s",
	       strerror(errno));
	p = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	WCHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
	close(fd);
	WCHECK(unlink(path) == 0, "unlink: %s", strerror(errno));
	/* One page read here, the rest first read there. */
	WCHECK(p[0] == word(4, 0), "first word");
	WMIGRATE(g_other);
	bad = bad_word(p, MAP_LEN, 4);
	WCHECK(bad < 0, "word %ld of the deleted file differs there", bad);
	fill(p, MAP_LEN / 2, 5);
	WMIGRATE(g_home);
	bad = bad_word(p, MAP_LEN / 2, 5);
	WCHECK(bad < 0, "word %ld written there differs back home", bad);
	bad = bad_words(p, MAP_LEN / 2, MAP_LEN, 4);
	WCHECK(bad < 0, "word %ld of the file's second half differs back home", bad);
	return 0;
}

#define NR_MAPS		20000
#define MAPS_STRIDE	64	/* pages written: one in this many */

static int many_maps_worker(void)
{
	size_t len = (size_t)NR_MAPS * 4096, i;
	char *base;
	int vmas = 0;
	char line[256];
	FILE *f;

	base = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	WCHECK(base != MAP_FAILED, "mmap: %s", strerror(errno));
	for (i = 0; i < NR_MAPS; i += MAPS_STRIDE)
		*(uint64_t *)(base + i * 4096) = word(6, i);
	/* Every other page read-only: NR_MAPS mappings that cannot merge. */
	for (i = 1; i < NR_MAPS; i += 2)
		WCHECK(mprotect(base + i * 4096, 4096, PROT_READ) == 0,
		       "mprotect %zu: %s", i, strerror(errno));
	f = fopen("/proc/self/maps", "r");
	WCHECK(f != NULL, "%s", strerror(errno));
	while (fgets(line, sizeof(line), f))
		vmas++;
	fclose(f);
	WCHECK(vmas >= NR_MAPS, "only %d mappings", vmas);
	WMIGRATE(g_other);
	for (i = 0; i < NR_MAPS; i += MAPS_STRIDE)
		WCHECK(*(uint64_t *)(base + i * 4096) == word(6, i),
		       "page %zu differs there", i);
	*(uint64_t *)base = word(7, 0);
	WMIGRATE(g_home);
	WCHECK(*(uint64_t *)base == word(7, 0), "page 0 written there");
	for (i = MAPS_STRIDE; i < NR_MAPS; i += MAPS_STRIDE)
		WCHECK(*(uint64_t *)(base + i * 4096) == word(6, i),
		       "page %zu differs back home", i);
	WCHECK(mprotect(base + 4096, 4096, PROT_READ | PROT_WRITE) == 0,
	       "mprotect: %s", strerror(errno));
	return 0;
}

static int count_mappings(void)
{
	char line[256];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n;
}

/*
 * As many mappings as vm.max_map_count lets a process have (65530 by
 * default; at most 65536, what a migration carries): no limit of the
 * migration's own is below the kernel's.
 */
static int max_maps_worker(void)
{
	unsigned long max = 0;
	size_t pages, i;
	char *base;
	int fd, n, want;
	char buf[32] = "";

	fd = open("/proc/sys/vm/max_map_count", O_RDONLY);
	WCHECK(fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0, "%s", strerror(errno));
	close(fd);
	max = strtoul(buf, NULL, 10);
	want = max > 65536 ? 65536 : (int)max;
	n = count_mappings();
	WCHECK(n > 0 && n < want, "%d mappings to start with", n);
	/* Each read-only page between two writable ones adds two mappings. */
	pages = 2 * (size_t)(want - n) + 2;
	/* 512 MiB of address space, a few pages of it used. */
	base = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	WCHECK(base != MAP_FAILED, "mmap: %s", strerror(errno));
	n++;
	for (i = 1; i + 1 < pages && n + 2 <= want; i += 2, n += 2)
		WCHECK(mprotect(base + i * 4096, 4096, PROT_READ) == 0,
		       "mprotect %zu (%d mappings): %s", i, n, strerror(errno));
	base[0] = 1;
	base[(pages - 1) * 4096] = 2;
	n = count_mappings();
	WCHECK(n >= want - 1 && n <= want, "%d mappings, want %d", n, want);
	WMIGRATE(g_other);
	WCHECK(base[0] == 1 && base[(pages - 1) * 4096] == 2, "contents there");
	base[4096 * 2] = 3;
	WMIGRATE(g_home);
	WCHECK(base[0] == 1 && base[4096 * 2] == 3, "contents back home");
	return 0;
}

/* ---- POSIX timers refuse the migration before anything moves ---- */

static int posix_timer_worker(void)
{
	struct sigevent sev = { .sigev_notify = SIGEV_NONE };
	struct itimerspec its = { .it_value = { .tv_sec = 100 } };
	timer_t t;
	long r;

	WCHECK(timer_create(CLOCK_MONOTONIC, &sev, &t) == 0, "%s", strerror(errno));
	WCHECK(timer_settime(t, 0, &its, NULL) == 0, "%s", strerror(errno));
	errno = 0;
	r = pcntl(PCNTL_MIGRATE, 0, g_other, 0);
	WCHECK(r == -1 && errno == EOPNOTSUPP,
	       "migrating with a POSIX timer: %ld (%s), want EOPNOTSUPP", r,
	       strerror(errno));
	WCHECK(where(0) == g_home, "moved to node %ld anyway", where(0));
	WCHECK(timer_gettime(t, &its) == 0 && its.it_value.tv_sec > 90,
	       "the timer changed: %ld s left", (long)its.it_value.tv_sec);
	WCHECK(timer_delete(t) == 0, "%s", strerror(errno));
	WMIGRATE(g_other);
	WMIGRATE(g_home);
	return 0;
}

FIXTURE(state) {
	int unused;
};

FIXTURE_SETUP(state)
{
	g_home = g_node;
	g_other = peer(0);
}

FIXTURE_TEARDOWN(state)
{
}

#define STATE_TEST(name, fn, secs) \
	TEST_F_TIMEOUT(state, name, secs) \
	{ \
		if (!need_peers(_metadata, 1)) \
			return; \
		RUN_WORKER(fn, (secs - 10) * 1000); \
	}

STATE_TEST(sigaltstack, altstack_worker, 90)
STATE_TEST(itimers_keep_time_left, itimer_worker, 90)
STATE_TEST(alarm_fires_once, alarm_worker, 120)
STATE_TEST(interval_timer_rate, interval_worker, 90)
STATE_TEST(queued_signals_siginfo_order, sigqueue_worker, 120)
STATE_TEST(rlimits, rlimit_worker, 90)
STATE_TEST(umask, umask_worker, 90)
STATE_TEST(personality, personality_worker, 90)
STATE_TEST(prctl, prctl_worker, 90)
STATE_TEST(supplementary_groups, groups_worker, 90)
STATE_TEST(robust_list, robust_worker, 90)
STATE_TEST(rseq_registration, rseq_worker, 90)
STATE_TEST(proc_self_exe, exe_worker, 90)
STATE_TEST(clocks_never_go_back, clocks_worker, 90)
STATE_TEST(sleep_monotonic_goes_on, sleep_monotonic_worker, 90)
STATE_TEST(sleep_realtime_goes_on, sleep_realtime_worker, 90)
STATE_TEST(sleep_boottime_goes_on, sleep_boottime_worker, 90)
STATE_TEST(sleep_signal_time_left, sleep_signal_worker, 120)
STATE_TEST(poll_goes_on, poll_worker, 90)
STATE_TEST(poll_sees_data_from_home, poll_data_worker, 90)
STATE_TEST(wait_goes_on, wait_worker, 90)
STATE_TEST(wait_signal_restarts_or_not, wait_signal_worker, 120)
STATE_TEST(map_private_dev_zero, devzero_worker, 120)
STATE_TEST(map_private_unlinked_file, unlinked_worker, 120)
STATE_TEST(twenty_thousand_mappings, many_maps_worker, 300)
STATE_TEST(max_map_count_mappings, max_maps_worker, 600)
STATE_TEST(posix_timer_refused, posix_timer_worker, 90)

COHORT_CLUSTER_CLEANUP_TEST()

int main(int argc, char **argv)
{
	return cohort_cluster_main(argc, argv, "state_test");
}
