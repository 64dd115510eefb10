// SPDX-License-Identifier: GPL-2.0
/*
 * pcntl(2) process management (popcorn.ko, issue #13): what may never
 * move and the errno of each refusal, PCNTL_FORBID/PCNTL_ALLOW and the
 * "opt-in" policy, migration groups, PCNTL_STAT, admission on the
 * destination (accept, accept_uids, max_load, min_free_kb), PCNTL_NODE_INFO,
 * PCNTL_PULL, PCNTL_PS and cluster-wide pids.
 *
 * The test runs on one node (home) and reaches a peer only through pcntl(2)
 * and migration: to test admission, home refuses and a kid that went to
 * the peer is asked back. Kids are children of the test that first unmap
 * the harness's MAP_SHARED bookkeeping (shared writable memory cannot
 * migrate) and report through pipes held at home. Settings the test
 * changes in /sys/kernel/cohort are put back to their defaults by the
 * fixture's teardown, whatever happened. Module loading and the peer rules
 * are cohort_cluster.h's.
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "cohort_test.h"
#include "cohort_cluster.h"

/* argv[1] of the test binary run again by exec (forbid_kept_across_exec). */
#define EXEC_MODE	"--pcntl-mgmt-exec-check"
/* argv[1] of the binary run by exec_is_ebusy's child: it exits EXEC_DONE. */
#define EXEC_EXIT_MODE	"--pcntl-mgmt-exec-exit"
#define EXEC_DONE	7
#define COMM		"pcntl_mgmt_test"	/* 15 characters: all of comm */

/* A pid no process can have (pid_max is at most PID_MAX_LIMIT). */
#define NO_SUCH_PID	(PCNTL_PID_MAX - 1)

/* ---- pcntl(2) helpers ---- */

/* pcntl(cmd, a0, a1, a2): 0 on success, else the errno. */
static long call_errno(unsigned int cmd, unsigned long a0, unsigned long a1,
		       unsigned long a2)
{
	errno = 0;
	if (pcntl(cmd, a0, a1, a2) >= 0)
		return 0;
	return errno;
}

static long migrate_errno(unsigned long pid, unsigned long node, int *refused)
{
	return call_errno(PCNTL_MIGRATE, pid, node, (unsigned long)refused);
}

static long pcntl_stat_of(unsigned long pid, struct pcntl_stat *st)
{
	memset(st, 0, sizeof(*st));
	errno = 0;
	return pcntl(PCNTL_STAT, pid, (unsigned long)st, sizeof(*st));
}

/* PCNTL_STAT's flags of @pid, or 0 (with a log) when it fails. */
static unsigned int stat_flags(struct __test_metadata *_metadata, unsigned long pid)
{
	struct pcntl_stat st;

	if (pcntl_stat_of(pid, &st) < 0) {
		TH_LOG("PCNTL_STAT(%lu): %s", pid, strerror(errno));
		return 0;
	}
	return st.flags;
}

static long node_info(unsigned long node, struct pcntl_node_info *info)
{
	memset(info, 0, sizeof(*info));
	errno = 0;
	return pcntl(PCNTL_NODE_INFO, node, (unsigned long)info, sizeof(*info));
}

/* Number of processes PCNTL_PS(@node) lists; -errno on failure. */
static long ps_count(unsigned long node)
{
	long n = pcntl(PCNTL_PS, node, 0, 0);

	return n < 0 ? -errno : n;
}

/*
 * PCNTL_PS(@node) into a buffer of @max records; returns the count the
 * kernel says (may be more than @max) or -errno.
 */
static long ps_list(unsigned long node, struct pcntl_proc *procs, size_t max)
{
	long n;

	memset(procs, 0, max * sizeof(*procs));
	n = pcntl(PCNTL_PS, node, (unsigned long)procs, max * sizeof(*procs));
	return n < 0 ? -errno : n;
}

/* The record with cluster-wide pid @gpid among @n, or NULL. */
static const struct pcntl_proc *ps_find(const struct pcntl_proc *procs, long n,
					int gpid)
{
	long i;

	for (i = 0; i < n; i++)
		if (procs[i].gpid == gpid)
			return &procs[i];
	return NULL;
}

/* A group number of this test's own (1 to 2^31 - 1). */
static unsigned long group_id(int n)
{
	return (getpid() & 0xfffff) * 16 + n + 1;
}

/* A child that is gone: the pid of a child reaped a moment ago. */
static pid_t reaped_pid(void)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid(pid, &status, 0);
	return pid;
}

/* ---- kids: children that stay, or move, and report through pipes ---- */

/* Start a kid and wait until it is ready; the test stops if it never is. */
#define START_READY(k, fn, arg) do { \
	start_kid(_metadata, (k), (fn), (arg)); \
	ASSERT_TRUE(kid_ready((k), 30000)) { \
		finish_kid(_metadata, (k), 1000); \
	} \
} while (0)

/* A kid that waits where it is (others move it). */
static int kid_idle(void *arg)
{
	(void)arg;
	wready();
	wait_go();
	return 0;
}

/* A kid that moves itself to node *@arg, then waits there. */
static int kid_away(void *arg)
{
	WMIGRATE(*(int *)arg);
	wready();
	wait_go();
	return 0;
}

/* A kid that moves itself to node *@arg, forbids its migration, then waits. */
static int kid_away_forbidden(void *arg)
{
	WMIGRATE(*(int *)arg);
	WCHECK(pcntl(PCNTL_FORBID, 0, 0, 0) == 0, "PCNTL_FORBID(0): %s", strerror(errno));
	wready();
	wait_go();
	return 0;
}

/* A child that computes until it is killed (it dies with the test). */
static pid_t start_spinner(void)
{
	volatile uint64_t x = 0;
	pid_t pid = fork();

	if (pid)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	close_kid_fds();
	for (;;)
		x++;
}

static void stop(pid_t pid)
{
	int status;

	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
}

/* ---- the node's settings, put back by the teardown ---- */

enum setting { S_ACCEPT, S_MAX_LOAD, S_MIN_FREE_KB, S_ACCEPT_UIDS, S_POLICY, NR_SETTINGS };

static const struct {
	const char *path;
	const char *dflt;	/* what the teardown writes back */
} settings[NR_SETTINGS] = {
	[S_ACCEPT] = { COHORT_SYSFS "/accept", "1" },
	[S_MAX_LOAD] = { COHORT_SYSFS "/max_load", "0" },
	[S_MIN_FREE_KB] = { COHORT_SYSFS "/min_free_kb", "0" },
	[S_ACCEPT_UIDS] = { COHORT_SYSFS "/accept_uids", "\n" },
	[S_POLICY] = { COHORT_SYSFS "/migration_policy", "any" },
};

FIXTURE(mgmt) {
	int home, other;	/* this node; a peer (-1 alone) */
	unsigned int changed;	/* settings to put back, bit per enum setting */
};

FIXTURE_SETUP(mgmt)
{
	self->home = g_node;
	self->other = peer(0);
	self->changed = 0;
}

FIXTURE_TEARDOWN(mgmt)
{
	int i, ret;

	for (i = 0; i < NR_SETTINGS; i++) {
		if (!(self->changed & (1U << i)))
			continue;
		ret = cohort_write_file(settings[i].path, settings[i].dflt);
		EXPECT_EQ(0, ret) {
			TH_LOG("putting %s back to its default: %s", settings[i].path,
			       strerror(-ret));
		}
	}
}

/* Write @value to setting @s of this node; the test stops if it cannot. */
#define SET(s, value) do { \
	int _r; \
	self->changed |= 1U << (s); \
	_r = cohort_write_file(settings[s].path, (value)); \
	ASSERT_EQ(0, _r) { \
		TH_LOG("writing '%s' to %s: %s", (value), settings[s].path, strerror(-_r)); \
	} \
} while (0)

/* ---- what never moves ---- */

/* The node's init: EPERM, and it stays (issue #13: a node must never lose its init). */
TEST_F_TIMEOUT(mgmt, init_is_eperm, 60)
{
	long e;

	NEED_PEERS(1);
	ASSERT_EQ(self->home, where(1));
	e = migrate_errno(1, self->other, NULL);
	EXPECT_EQ(EPERM, e) {
		TH_LOG("PCNTL_MIGRATE(1, %d): %s", self->other, strerror(e));
	}
	EXPECT_EQ(EPERM, migrate_errno(PCNTL_GPID(self->home, 1), self->other, NULL));
	EXPECT_EQ(EPERM, call_errno(PCNTL_PULL, PCNTL_GPID(self->other, 1), 0, 0));
	EXPECT_EQ(self->home, where(1));
	EXPECT_EQ(self->other, where(PCNTL_GPID(self->other, 1)));
	/* Should it have gone, bring it back before the node needs it. */
	if (where(1) != self->home)
		migrate_errno(1, self->home, NULL);
}

/* The init of a new pid namespace: EPERM, and it stays. */
TEST_F_TIMEOUT(mgmt, pid_namespace_init_is_eperm, 60)
{
	int p[2], status;
	pid_t mid, nsinit = 0;
	long e;

	NEED_PEERS(1);
	ASSERT_EQ(0, pipe(p));
	fflush(stdout);
	fflush(stderr);
	mid = fork();
	ASSERT_LE(0, mid);
	if (mid == 0) {
		pid_t c;

		close_kid_fds();
		drop_shared_mappings();
		if (unshare(CLONE_NEWPID)) {
			c = -errno;
			_exit(write(p[1], &c, sizeof(c)) == sizeof(c) ? 0 : 10);
		}
		c = fork();
		if (c == 0) {
			/* pid 1 of the new namespace */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getpid() != 1)
				_exit(11);
			for (;;)
				pause();
		}
		if (c < 0 || write(p[1], &c, sizeof(c)) != sizeof(c))
			_exit(12);
		waitpid(c, &status, 0);
		_exit(0);
	}
	close(p[1]);
	ASSERT_EQ(sizeof(nsinit), read_within(p[0], &nsinit, sizeof(nsinit), 10000)) {
		wait_within(mid, 1000, &status);
		TH_LOG("no namespace init");
	}
	close(p[0]);
	if (nsinit < 0) {
		wait_within(mid, 10000, &status);
		/* config/cohort.config turns CONFIG_PID_NS on. */
		ASSERT_EQ(0, nsinit) {
			TH_LOG("unshare(CLONE_NEWPID): %s", strerror(-nsinit));
		}
	}
	e = migrate_errno(nsinit, self->other, NULL);
	EXPECT_EQ(EPERM, e) {
		TH_LOG("PCNTL_MIGRATE(%d, %d) of a pid namespace's init: %s", nsinit,
		       self->other, strerror(e));
	}
	EXPECT_EQ(self->home, where(nsinit));
	stop(nsinit);
	EXPECT_EQ(0, wait_within(mid, 10000, &status));
	EXPECT_EXITED(0, status);
}

/* A traced process: EBUSY, it stays; once the tracer detaches it moves. */
TEST_F_TIMEOUT(mgmt, traced_is_ebusy, 90)
{
	struct kid k;
	int status;
	long e;

	NEED_PEERS(1);
	START_READY(&k, kid_idle, NULL);
	ASSERT_EQ(0, ptrace(PTRACE_SEIZE, k.pid, 0, 0)) {
		TH_LOG("PTRACE_SEIZE: %s", strerror(errno));
		finish_kid(_metadata, &k, 1000);
	}
	e = migrate_errno(k.pid, self->other, NULL);
	EXPECT_EQ(EBUSY, e) {
		TH_LOG("PCNTL_MIGRATE of a traced process: %s", strerror(e));
	}
	EXPECT_EQ(self->home, where(k.pid));
	/* Detach: interrupt it into a ptrace stop first. */
	ASSERT_EQ(0, ptrace(PTRACE_INTERRUPT, k.pid, 0, 0));
	ASSERT_EQ(k.pid, waitpid(k.pid, &status, 0));
	ASSERT_EQ(0, ptrace(PTRACE_DETACH, k.pid, 0, 0));
	EXPECT_EQ(0, migrate_errno(k.pid, self->other, NULL));
	EXPECT_EQ(self->other, where(k.pid));
	EXPECT_EXITED(0, finish_kid(_metadata, &k, 30000));
}

/* exec_is_ebusy's child: a second thread that sends its tid and waits. */
static int exec_tid_fd = -1;

static void *exec_sibling(void *arg)
{
	pid_t tid = gettid();

	(void)arg;
	if (write(exec_tid_fd, &tid, sizeof(tid)) != sizeof(tid))
		_exit(90);
	for (;;)
		pause();
	return NULL;
}

/* Whether /proc/@pid/status says "TracerPid:\t0". */
static bool untraced(pid_t pid)
{
	char path[64], buf[4096];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	n = cohort_read_file(path, buf, sizeof(buf));
	return n > 0 && strstr(buf, "\nTracerPid:\t0\n");
}

/*
 * A process in the middle of an execve(2): EBUSY, though it is not traced.
 * Its exec waits (de_thread()) for its second thread to exit, and that
 * thread, the only one traced (PTRACE_O_TRACEEXIT), is held in its exit
 * stop until the test lets it go: the exec window held open, not by
 * tracing the process moved.
 */
TEST_F_TIMEOUT(mgmt, exec_is_ebusy, 90)
{
	int tidp[2], gop[2], status;
	pid_t child, tid = 0;
	pthread_t t;
	char c = 0;
	long e;

	NEED_SETUP();
	ASSERT_EQ(0, pipe(tidp));
	ASSERT_EQ(0, pipe(gop));
	fflush(stdout);
	fflush(stderr);
	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close_kid_fds();
		close(tidp[0]);
		close(gop[1]);
		exec_tid_fd = tidp[1];
		if (pthread_create(&t, NULL, exec_sibling, NULL))
			_exit(91);
		if (read(gop[0], &c, 1) != 1)
			_exit(92);
		execl("/proc/self/exe", COMM, EXEC_EXIT_MODE, (char *)NULL);
		_exit(93);
	}
	close(tidp[1]);
	close(gop[0]);
	ASSERT_EQ(sizeof(tid), read_within(tidp[0], &tid, sizeof(tid), 10000)) {
		stop(child);
	}
	ASSERT_NE(child, tid);
	ASSERT_EQ(0, ptrace(PTRACE_SEIZE, tid, NULL, (void *)(long)PTRACE_O_TRACEEXIT)) {
		TH_LOG("PTRACE_SEIZE of thread %d: %s", tid, strerror(errno));
		stop(child);
	}
	/* Not traced itself, not in an exec: it may move (here, to home). */
	EXPECT_TRUE(untraced(child));
	EXPECT_EQ(0, migrate_errno(child, self->home, NULL));
	/* The exec: the sibling is killed and stops on its way out. */
	ASSERT_EQ(1, write(gop[1], "x", 1));
	ASSERT_EQ(tid, waitpid(tid, &status, __WALL)) {
		TH_LOG("waitpid(%d): %s", tid, strerror(errno));
		stop(child);
	}
	ASSERT_TRUE(WIFSTOPPED(status) && status >> 8 == (SIGTRAP | PTRACE_EVENT_EXIT << 8)) {
		TH_LOG("thread %d: wait status %#x, not its exit stop", tid, status);
		stop(child);
	}
	/* Now in execve(2), waiting for the thread: EBUSY, and it stays. */
	EXPECT_TRUE(untraced(child));
	e = migrate_errno(child, self->home, NULL);
	EXPECT_EQ(EBUSY, e) {
		TH_LOG("PCNTL_MIGRATE of a process in execve(2), to its node: %s", strerror(e));
	}
	if (self->other >= 0) {
		e = migrate_errno(child, self->other, NULL);
		EXPECT_EQ(EBUSY, e) {
			TH_LOG("PCNTL_MIGRATE of a process in execve(2), to node %d: %s",
			       self->other, strerror(e));
		}
	}
	EXPECT_EQ(self->home, where(child));
	/* Let the thread go: the exec completes and the new image exits. */
	EXPECT_EQ(0, ptrace(PTRACE_DETACH, tid, 0, 0));
	EXPECT_EQ(0, wait_within(child, 30000, &status));
	EXPECT_EXITED(EXEC_DONE, status);
	close(tidp[0]);
	close(gop[1]);
}

/* A kernel thread (kthreadd, pid 2): EPERM. */
TEST_F_TIMEOUT(mgmt, kernel_thread_is_eperm, 60)
{
	char comm[64] = "";
	long e;

	NEED_PEERS(1);
	if (cohort_read_file("/proc/2/comm", comm, sizeof(comm)) <= 0 ||
	    strcmp(comm, "kthreadd\n")) {
		SKIP(return, "pid 2 is not kthreadd here ('%s')", comm);
	}
	e = migrate_errno(2, self->other, NULL);
	EXPECT_EQ(EPERM, e) {
		TH_LOG("PCNTL_MIGRATE(2, %d) of kthreadd: %s", self->other, strerror(e));
	}
	EXPECT_EQ(self->home, where(2));
}

/* ---- forbid and allow ---- */

/* A process that forbids its migration: its own request fails too. */
static int forbid_self(void *arg)
{
	int other = *(int *)arg, home = g_node;
	struct pcntl_stat st;
	long e;

	WCHECK(pcntl(PCNTL_FORBID, 0, 0, 0) == 0, "PCNTL_FORBID(0): %s", strerror(errno));
	WCHECK(pcntl_stat_of(0, &st) >= 0, "PCNTL_STAT: %s", strerror(errno));
	WCHECK(st.flags & PCNTL_F_FORBIDDEN, "flags %#x without PCNTL_F_FORBIDDEN", st.flags);
	WCHECK(!(st.flags & PCNTL_F_ALLOWED), "flags %#x: both forbidden and allowed",
	       st.flags);
	e = migrate_errno(0, other, NULL);
	WCHECK(e == EACCES, "own request: %s, expected EACCES", strerror(e));
	e = migrate_errno(getpid(), other, NULL);
	WCHECK(e == EACCES, "own request by pid: %s, expected EACCES", strerror(e));
	WCHECK(where(0) == home, "moved anyway: on node %ld", where(0));
	/* The last call wins. */
	WCHECK(pcntl(PCNTL_ALLOW, 0, 0, 0) == 0, "PCNTL_ALLOW(0): %s", strerror(errno));
	WCHECK(pcntl_stat_of(0, &st) >= 0, "PCNTL_STAT: %s", strerror(errno));
	WCHECK((st.flags & (PCNTL_F_FORBIDDEN | PCNTL_F_ALLOWED)) == PCNTL_F_ALLOWED,
	       "flags %#x after PCNTL_ALLOW", st.flags);
	WMIGRATE(other);
	WMIGRATE(home);
	return 0;
}

TEST_F_TIMEOUT(mgmt, forbid_refuses_own_request, 60)
{
	NEED_PEERS(1);
	RUN_KID(forbid_self, &self->other, 45000);
}

/* Forbidden by root: root's requests fail too; allowed again, it moves. */
TEST_F_TIMEOUT(mgmt, forbid_refuses_root_until_allowed, 90)
{
	struct kid k;
	long e;

	NEED_PEERS(1);
	START_READY(&k, kid_idle, NULL);
	EXPECT_EQ(0, pcntl(PCNTL_FORBID, k.pid, 0, 0));
	EXPECT_TRUE(stat_flags(_metadata, k.pid) & PCNTL_F_FORBIDDEN);
	e = migrate_errno(k.pid, self->other, NULL);
	EXPECT_EQ(EACCES, e) {
		TH_LOG("PCNTL_MIGRATE of a forbidden process by root: %s", strerror(e));
	}
	EXPECT_EQ(EACCES, migrate_errno(PCNTL_GPID(self->home, k.pid), self->other, NULL));
	EXPECT_EQ(self->home, where(k.pid));
	EXPECT_EQ(0, pcntl(PCNTL_ALLOW, k.pid, 0, 0));
	EXPECT_EQ(0, migrate_errno(k.pid, self->other, NULL));
	EXPECT_EQ(self->other, where(k.pid));
	/* Forbidden where it runs now, by its cluster-wide pid: refused both ways. */
	EXPECT_EQ(0, pcntl(PCNTL_FORBID, PCNTL_GPID(self->home, k.pid), 0, 0));
	EXPECT_TRUE(stat_flags(_metadata, PCNTL_GPID(self->home, k.pid)) & PCNTL_F_FORBIDDEN);
	EXPECT_EQ(EACCES, migrate_errno(k.pid, self->home, NULL));
	EXPECT_EQ(EACCES, call_errno(PCNTL_PULL, PCNTL_GPID(self->home, k.pid), 0, 0));
	EXPECT_EQ(self->other, where(k.pid));
	EXPECT_EQ(0, pcntl(PCNTL_ALLOW, PCNTL_GPID(self->home, k.pid), 0, 0));
	EXPECT_EQ(0, migrate_errno(k.pid, self->home, NULL));
	EXPECT_EQ(self->home, where(k.pid));
	EXPECT_EXITED(0, finish_kid(_metadata, &k, 30000));
}

/* A child forked by a forbidden process is forbidden too. */
static int forbid_fork(void *arg)
{
	int other = *(int *)arg, status;
	struct pcntl_stat st;
	pid_t c;
	long e;

	WCHECK(pcntl(PCNTL_FORBID, 0, 0, 0) == 0, "PCNTL_FORBID(0): %s", strerror(errno));
	c = fork();
	WCHECK(c >= 0, "fork: %s", strerror(errno));
	if (c == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	WCHECK(pcntl_stat_of(c, &st) >= 0, "PCNTL_STAT(child): %s", strerror(errno));
	WCHECK(st.flags & PCNTL_F_FORBIDDEN, "child's flags %#x without PCNTL_F_FORBIDDEN",
	       st.flags);
	e = migrate_errno(c, other, NULL);
	WCHECK(e == EACCES, "migrating the child: %s, expected EACCES", strerror(e));
	WCHECK(where(c) == g_node, "the child moved to node %ld anyway", where(c));
	/* The child's setting is its own. */
	WCHECK(pcntl(PCNTL_ALLOW, c, 0, 0) == 0, "PCNTL_ALLOW(child): %s", strerror(errno));
	e = migrate_errno(c, other, NULL);
	WCHECK(e == 0, "migrating the allowed child: %s", strerror(e));
	WCHECK(where(c) == other, "the allowed child is on node %ld", where(c));
	WCHECK(pcntl_stat_of(0, &st) >= 0 && (st.flags & PCNTL_F_FORBIDDEN),
	       "the parent's flags %#x changed with its child's", st.flags);
	kill(c, SIGKILL);
	WCHECK(waitpid(c, &status, 0) == c && WIFSIGNALED(status), "waitpid");
	return 0;
}

TEST_F_TIMEOUT(mgmt, forbid_inherited_by_fork, 90)
{
	NEED_PEERS(1);
	RUN_KID(forbid_fork, &self->other, 75000);
}

/*
 * PCNTL_FORBID with PCNTL_FORBID_SELF pins the process only: its own
 * request is refused, its child starts in the default state and moves;
 * PCNTL_FORBID with another flag is EINVAL.
 */
static int forbid_self_only(void *arg)
{
	int other = *(int *)arg, status;
	struct pcntl_stat st;
	pid_t c;
	long e;

	WCHECK(pcntl(PCNTL_FORBID, 0, 2, 0) == -1 && errno == EINVAL,
	       "PCNTL_FORBID(0, 2): %s, expected EINVAL", strerror(errno));
	WCHECK(pcntl(PCNTL_FORBID, 0, PCNTL_FORBID_SELF, 0) == 0,
	       "PCNTL_FORBID(0, PCNTL_FORBID_SELF): %s", strerror(errno));
	WCHECK(pcntl_stat_of(0, &st) >= 0, "PCNTL_STAT: %s", strerror(errno));
	WCHECK((st.flags & (PCNTL_F_FORBIDDEN | PCNTL_F_SELF_ONLY)) ==
	       (PCNTL_F_FORBIDDEN | PCNTL_F_SELF_ONLY), "flags %#x", st.flags);
	e = migrate_errno(0, other, NULL);
	WCHECK(e == EACCES, "own request: %s, expected EACCES", strerror(e));
	c = fork();
	WCHECK(c >= 0, "fork: %s", strerror(errno));
	if (c == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	WCHECK(pcntl_stat_of(c, &st) >= 0, "PCNTL_STAT(child): %s", strerror(errno));
	WCHECK(!(st.flags & (PCNTL_F_FORBIDDEN | PCNTL_F_ALLOWED | PCNTL_F_SELF_ONLY)),
	       "child's flags %#x: not the default state", st.flags);
	e = migrate_errno(c, other, NULL);
	WCHECK(e == 0, "migrating the child: %s", strerror(e));
	WCHECK(where(c) == other, "the child is on node %ld", where(c));
	/* A plain PCNTL_FORBID replaces it: children inherit again. */
	WCHECK(pcntl(PCNTL_FORBID, 0, 0, 0) == 0, "PCNTL_FORBID(0): %s", strerror(errno));
	WCHECK(pcntl_stat_of(0, &st) >= 0 && !(st.flags & PCNTL_F_SELF_ONLY),
	       "flags %#x after a plain PCNTL_FORBID", st.flags);
	kill(c, SIGKILL);
	WCHECK(waitpid(c, &status, 0) == c && WIFSIGNALED(status), "waitpid");
	return 0;
}

TEST_F_TIMEOUT(mgmt, forbid_self_not_inherited, 90)
{
	NEED_PEERS(1);
	RUN_KID(forbid_self_only, &self->other, 75000);
}

/* Run again by exec (EXEC_MODE NODE): still forbidden, own request refused. */
static int exec_check(const char *node_arg)
{
	struct pcntl_stat st;
	int node = atoi(node_arg);

	if (pcntl_stat_of(0, &st) < 0)
		return 10;
	if (!(st.flags & PCNTL_F_FORBIDDEN))
		return 11;
	if (migrate_errno(0, node, NULL) != EACCES)
		return 12;
	if (where(0) == node)
		return 13;
	return 0;
}

static int forbid_exec(void *arg)
{
	char node[16];
	char *argv[] = { COMM, EXEC_MODE, node, NULL };

	snprintf(node, sizeof(node), "%d", *(int *)arg);
	WCHECK(pcntl(PCNTL_FORBID, 0, 0, 0) == 0, "PCNTL_FORBID(0): %s", strerror(errno));
	execv("/proc/self/exe", argv);
	wfail(__LINE__, "exec /proc/self/exe: %s", strerror(errno));
}

TEST_F_TIMEOUT(mgmt, forbid_kept_across_exec, 60)
{
	struct kid k;
	int st;

	NEED_PEERS(1);
	start_kid(_metadata, &k, forbid_exec, &self->other);
	st = finish_kid(_metadata, &k, 45000);
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		TH_LOG("wait status %#x; after exec exit status 10: no PCNTL_STAT, 11: not forbidden, 12: own request not EACCES, 13: moved",
		       st);
	}
}

/* Without CAP_SYS_ADMIN, the kill(2) rule; a pid nobody holds, ESRCH. */
TEST_F_TIMEOUT(mgmt, settings_need_kill_permission, 60)
{
	pid_t pid, parent = getpid(), gone;
	int status;

	NEED_SETUP();
	/* In a group, so that only the permission can refuse LEAVE. */
	ASSERT_EQ(0, pcntl(PCNTL_GROUP_JOIN, 0, group_id(6), 0));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(10);
		if (call_errno(PCNTL_FORBID, 1, 0, 0) != EPERM)
			_exit(11);
		if (call_errno(PCNTL_ALLOW, parent, 0, 0) != EPERM)
			_exit(12);
		if (call_errno(PCNTL_GROUP_JOIN, parent, 5, 0) != EPERM)
			_exit(13);
		if (call_errno(PCNTL_GROUP_LEAVE, parent, 0, 0) != EPERM)
			_exit(14);
		if (call_errno(PCNTL_FORBID, PCNTL_GPID(g_node, parent), 0, 0) != EPERM)
			_exit(15);
		if (call_errno(PCNTL_DEFAULT, parent, 0, 0) != EPERM)
			_exit(16);
		/* Already here: only the permission can refuse it. */
		if (call_errno(PCNTL_PULL, parent, 0, 0) != EPERM)
			_exit(17);
		if (call_errno(PCNTL_PULL, PCNTL_GPID(g_node, parent), 0, 0) != EPERM)
			_exit(18);
		/* Its own process: allowed. */
		if (call_errno(PCNTL_FORBID, 0, 0, 0) || call_errno(PCNTL_ALLOW, getpid(), 0, 0) ||
		    call_errno(PCNTL_DEFAULT, 0, 0, 0))
			_exit(19);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		TH_LOG("wait status %#x; exit status 10: setuid failed, 11 to 18: a request for another user's process was not EPERM, 19: its own request failed",
		       status);
	}
	EXPECT_FALSE(stat_flags(_metadata, 1) & PCNTL_F_FORBIDDEN);
	EXPECT_EQ(0, pcntl(PCNTL_GROUP_LEAVE, 0, 0, 0));
	gone = reaped_pid();
	ASSERT_LT(0, gone);
	EXPECT_EQ(ESRCH, call_errno(PCNTL_FORBID, gone, 0, 0));
	EXPECT_EQ(ESRCH, call_errno(PCNTL_ALLOW, gone, 0, 0));
	EXPECT_EQ(ESRCH, call_errno(PCNTL_DEFAULT, gone, 0, 0));
	EXPECT_EQ(ESRCH, call_errno(PCNTL_GROUP_JOIN, gone, 5, 0));
	EXPECT_EQ(ESRCH, call_errno(PCNTL_GROUP_LEAVE, gone, 0, 0));
	EXPECT_EQ(ESRCH, call_errno(PCNTL_PULL, gone, 0, 0));
}

/* ---- the "opt-in" policy ---- */

/* A process that moves itself under "opt-in": by pid 0 and by its own pid. */
static int opt_in_self(void *arg)
{
	int other = *(int *)arg, home = g_node;
	long e;

	WMIGRATE(other);
	WMIGRATE(home);
	e = migrate_errno(getpid(), other, NULL);
	WCHECK(e == 0, "own request by pid under opt-in: %s", strerror(e));
	WCHECK(where(0) == other, "on node %ld", where(0));
	WMIGRATE(home);
	return 0;
}

TEST_F_TIMEOUT(mgmt, opt_in_policy, 120)
{
	struct pcntl_node_info info;
	struct kid k, own;
	unsigned int flags;
	long e;

	NEED_PEERS(1);
	/* Say nothing, so that the kids start saying nothing either. */
	ASSERT_EQ(0, pcntl(PCNTL_DEFAULT, 0, 0, 0));
	flags = stat_flags(_metadata, 0);
	ASSERT_EQ(0, flags & (PCNTL_F_ALLOWED | PCNTL_F_FORBIDDEN));
	ASSERT_EQ(PCNTL_NODE_INFO_SIZE_VER0, node_info(self->home, &info));
	EXPECT_FALSE(info.flags & PCNTL_NODE_OPT_IN);
	SET(S_POLICY, "opt-in");
	ASSERT_EQ(PCNTL_NODE_INFO_SIZE_VER0, node_info(self->home, &info));
	EXPECT_TRUE(info.flags & PCNTL_NODE_OPT_IN) {
		TH_LOG("NODE_INFO flags %#x under opt-in", info.flags);
	}
	START_READY(&k, kid_idle, NULL);
	EXPECT_EQ(0, stat_flags(_metadata, k.pid) & (PCNTL_F_ALLOWED | PCNTL_F_FORBIDDEN));
	/* Others, root included, may not move it. */
	e = migrate_errno(k.pid, self->other, NULL);
	EXPECT_EQ(EACCES, e) {
		TH_LOG("moving a process that never said ALLOW under opt-in: %s",
		       strerror(e));
	}
	EXPECT_EQ(EACCES, migrate_errno(PCNTL_GPID(self->home, k.pid), self->other, NULL));
	EXPECT_EQ(self->home, where(k.pid));
	/* It may move itself. */
	start_kid(_metadata, &own, opt_in_self, &self->other);
	EXPECT_EXITED(0, finish_kid(_metadata, &own, 60000));
	/* Once it said ALLOW, others may. */
	EXPECT_EQ(0, pcntl(PCNTL_ALLOW, k.pid, 0, 0));
	EXPECT_EQ(0, migrate_errno(k.pid, self->other, NULL));
	EXPECT_EQ(self->other, where(k.pid));
	EXPECT_EQ(0, migrate_errno(k.pid, self->home, NULL));
	EXPECT_EQ(self->home, where(k.pid));
	EXPECT_EXITED(0, finish_kid(_metadata, &k, 30000));
}

/* ---- migration groups ---- */

#define NR_MEMBERS	3

static void start_members(struct __test_metadata *_metadata, struct kid *k, int n)
{
	int i;

	for (i = 0; i < n; i++)
		START_READY(&k[i], kid_idle, NULL);
}

static void finish_members(struct __test_metadata *_metadata, struct kid *k, int n)
{
	int i;

	for (i = 0; i < n; i++)
		EXPECT_EXITED(0, finish_kid(_metadata, &k[i], 30000));
}

/* Every member of @k runs on @node. */
#define EXPECT_ALL_ON(k, n, node) do { \
	int _i; \
	for (_i = 0; _i < (n); _i++) { \
		EXPECT_EQ((node), where((k)[_i].pid)) { \
			TH_LOG("member %d (pid %d)", _i, (k)[_i].pid); \
		} \
	} \
} while (0)

TEST_F_TIMEOUT(mgmt, group_moves_together, 120)
{
	unsigned long g = group_id(0);
	struct kid k[NR_MEMBERS];
	struct pcntl_stat st;
	int i, refused = -1;

	NEED_PEERS(1);
	start_members(_metadata, k, NR_MEMBERS);
	for (i = 0; i < NR_MEMBERS; i++) {
		EXPECT_EQ(0, pcntl(PCNTL_GROUP_JOIN, k[i].pid, g, 0));
		ASSERT_LE(0, pcntl_stat_of(k[i].pid, &st));
		EXPECT_EQ(g, st.group);
	}
	EXPECT_EQ(0, migrate_errno(k[0].pid, self->other, &refused));
	EXPECT_ALL_ON(k, NR_MEMBERS, self->other);
	/* Back by another member, by its cluster-wide pid. */
	EXPECT_EQ(0, migrate_errno(PCNTL_GPID(self->home, k[2].pid), self->home, NULL));
	EXPECT_ALL_ON(k, NR_MEMBERS, self->home);
	for (i = 0; i < NR_MEMBERS; i++) {
		ASSERT_LE(0, pcntl_stat_of(k[i].pid, &st));
		EXPECT_EQ(2, st.migrations);
	}
	finish_members(_metadata, k, NR_MEMBERS);
}

/* One member forbids: nothing moves, EACCES, and *a2 names it. */
TEST_F_TIMEOUT(mgmt, group_refusal_moves_none, 120)
{
	unsigned long g = group_id(1);
	struct kid k[NR_MEMBERS];
	int i, refused = -1;
	long e;

	NEED_PEERS(1);
	start_members(_metadata, k, NR_MEMBERS);
	for (i = 0; i < NR_MEMBERS; i++)
		EXPECT_EQ(0, pcntl(PCNTL_GROUP_JOIN, k[i].pid, g, 0));
	EXPECT_EQ(0, pcntl(PCNTL_FORBID, k[2].pid, 0, 0));
	e = migrate_errno(k[0].pid, self->other, &refused);
	EXPECT_EQ(EACCES, e) {
		TH_LOG("a group with a forbidden member: %s", strerror(e));
	}
	EXPECT_EQ(k[2].pid, refused);
	EXPECT_ALL_ON(k, NR_MEMBERS, self->home);
	/* Without a2 the same, silently. */
	EXPECT_EQ(EACCES, migrate_errno(k[1].pid, self->other, NULL));
	EXPECT_ALL_ON(k, NR_MEMBERS, self->home);
	EXPECT_EQ(0, pcntl(PCNTL_ALLOW, k[2].pid, 0, 0));
	EXPECT_EQ(0, migrate_errno(k[0].pid, self->other, NULL));
	EXPECT_ALL_ON(k, NR_MEMBERS, self->other);
	EXPECT_EQ(0, migrate_errno(k[0].pid, self->home, NULL));
	EXPECT_ALL_ON(k, NR_MEMBERS, self->home);
	finish_members(_metadata, k, NR_MEMBERS);
}

/* A member that refuses from another node is named by its cluster-wide pid. */
TEST_F_TIMEOUT(mgmt, group_refusal_names_remote_member, 120)
{
	unsigned long g = group_id(2);
	struct kid k[2];
	int refused = -1;
	long e;

	NEED_PEERS(1);
	start_members(_metadata, k, 2);
	/* k[1] goes alone, then joins and forbids from there. */
	EXPECT_EQ(0, migrate_errno(k[1].pid, self->other, NULL));
	ASSERT_EQ(self->other, where(k[1].pid));
	EXPECT_EQ(0, pcntl(PCNTL_GROUP_JOIN, k[0].pid, g, 0));
	EXPECT_EQ(0, pcntl(PCNTL_GROUP_JOIN, PCNTL_GPID(self->home, k[1].pid), g, 0));
	EXPECT_EQ(0, pcntl(PCNTL_FORBID, PCNTL_GPID(self->home, k[1].pid), 0, 0));
	e = migrate_errno(k[0].pid, self->other, &refused);
	EXPECT_EQ(EACCES, e) {
		TH_LOG("%s", strerror(e));
	}
	EXPECT_EQ(PCNTL_GPID(self->home, k[1].pid), refused) {
		TH_LOG("refused %#x, expected the gpid %#x of pid %d on node %d", refused,
		       PCNTL_GPID(self->home, k[1].pid), k[1].pid, self->other);
	}
	EXPECT_EQ(self->home, where(k[0].pid));
	EXPECT_EQ(self->other, where(k[1].pid));
	/* Allowed again: the member at home joins the one away. */
	EXPECT_EQ(0, pcntl(PCNTL_ALLOW, PCNTL_GPID(self->home, k[1].pid), 0, 0));
	EXPECT_EQ(0, migrate_errno(k[0].pid, self->other, NULL));
	EXPECT_ALL_ON(k, 2, self->other);
	EXPECT_EQ(0, migrate_errno(k[1].pid, self->home, NULL));
	EXPECT_ALL_ON(k, 2, self->home);
	finish_members(_metadata, k, 2);
}

/*
 * A child forked without PCNTL_GROUP_FORK is in no group; with it, the
 * child is in its parent's group and moves with it.
 */
static int group_forker(void *arg)
{
	unsigned long g = *(unsigned long *)arg;
	struct pcntl_stat st;
	int status;
	pid_t c, d;

	WCHECK(pcntl(PCNTL_GROUP_JOIN, 0, g + 1, 0) == 0, "JOIN: %s", strerror(errno));
	d = fork();
	WCHECK(d >= 0, "fork: %s", strerror(errno));
	if (d == 0) {
		/* Alive until stated: an exited child may already be gone. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	WCHECK(pcntl_stat_of(d, &st) >= 0, "PCNTL_STAT: %s", strerror(errno));
	WCHECK(st.group == 0, "child of a plain member is in group %u", st.group);
	kill(d, SIGKILL);
	WCHECK(waitpid(d, &status, 0) == d, "waitpid");

	WCHECK(pcntl(PCNTL_GROUP_JOIN, 0, g, PCNTL_GROUP_FORK) == 0, "JOIN FORK: %s",
	       strerror(errno));
	WCHECK(pcntl_stat_of(0, &st) >= 0 && st.group == g && (st.flags & PCNTL_F_GROUP_FORK),
	       "own group %u flags %#x", st.group, st.flags);
	c = fork();
	WCHECK(c >= 0, "fork: %s", strerror(errno));
	if (c == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	WCHECK(pcntl_stat_of(c, &st) >= 0, "PCNTL_STAT: %s", strerror(errno));
	WCHECK(st.group == g && (st.flags & PCNTL_F_GROUP_FORK),
	       "child forked after JOIN with PCNTL_GROUP_FORK: group %u flags %#x, expected %lu",
	       st.group, st.flags, g);
	wsend(c);
	wready();
	wait_go();
	kill(c, SIGKILL);
	waitpid(c, &status, 0);
	return 0;
}

TEST_F_TIMEOUT(mgmt, group_fork_flag, 120)
{
	unsigned long g = group_id(3);
	struct kid k;
	pid_t c = 0;

	NEED_PEERS(1);
	start_kid(_metadata, &k, group_forker, &g);
	ASSERT_EQ(sizeof(c), read_within(k.data, &c, sizeof(c), 30000)) {
		finish_kid(_metadata, &k, 1000);
	}
	ASSERT_TRUE(kid_ready(&k, 30000)) {
		finish_kid(_metadata, &k, 1000);
	}
	/* Moving the child moves its parent, and back. */
	EXPECT_EQ(0, migrate_errno(c, self->other, NULL));
	EXPECT_EQ(self->other, where(c));
	EXPECT_EQ(self->other, where(k.pid));
	EXPECT_EQ(0, migrate_errno(k.pid, self->home, NULL));
	EXPECT_EQ(self->home, where(c));
	EXPECT_EQ(self->home, where(k.pid));
	EXPECT_EXITED(0, finish_kid(_metadata, &k, 30000));
}

/* LEAVE takes a member out; joining another group leaves the first. */
TEST_F_TIMEOUT(mgmt, group_leave_and_switch, 120)
{
	unsigned long g = group_id(4);
	struct kid k[NR_MEMBERS];
	struct pcntl_stat st;

	NEED_PEERS(1);
	start_members(_metadata, k, NR_MEMBERS);
	EXPECT_EQ(0, pcntl(PCNTL_GROUP_JOIN, k[0].pid, g, 0));
	EXPECT_EQ(0, pcntl(PCNTL_GROUP_JOIN, k[1].pid, g, 0));
	EXPECT_EQ(0, pcntl(PCNTL_GROUP_JOIN, k[2].pid, g, 0));
	EXPECT_EQ(0, pcntl(PCNTL_GROUP_LEAVE, k[1].pid, 0, 0));
	ASSERT_LE(0, pcntl_stat_of(k[1].pid, &st));
	EXPECT_EQ(0, st.group);
	EXPECT_EQ(EINVAL, call_errno(PCNTL_GROUP_LEAVE, k[1].pid, 0, 0));
	EXPECT_EQ(0, pcntl(PCNTL_GROUP_JOIN, k[2].pid, g + 1, 0));
	ASSERT_LE(0, pcntl_stat_of(k[2].pid, &st));
	EXPECT_EQ(g + 1, st.group);
	EXPECT_EQ(0, migrate_errno(k[0].pid, self->other, NULL));
	EXPECT_EQ(self->other, where(k[0].pid));
	EXPECT_EQ(self->home, where(k[1].pid));
	EXPECT_EQ(self->home, where(k[2].pid));
	EXPECT_EQ(0, migrate_errno(k[0].pid, self->home, NULL));
	finish_members(_metadata, k, NR_MEMBERS);
}

TEST_F_TIMEOUT(mgmt, group_bad_arguments_einval, 60)
{
	const unsigned long bad_groups[] = { 0, 1UL << 31, 1UL << 32, ~0UL };
	const unsigned long bad_flags[] = { 0x2, 0x80000000, ~0UL, PCNTL_GROUP_FORK | 0x8 };
	unsigned long g = group_id(5);
	struct pcntl_stat st;
	struct kid k;
	size_t i;

	NEED_SETUP();
	START_READY(&k, kid_idle, NULL);
	for (i = 0; i < ARRAY_SIZE(bad_groups); i++) {
		EXPECT_EQ(EINVAL, call_errno(PCNTL_GROUP_JOIN, k.pid, bad_groups[i], 0)) {
			TH_LOG("group %#lx", bad_groups[i]);
		}
	}
	for (i = 0; i < ARRAY_SIZE(bad_flags); i++) {
		EXPECT_EQ(EINVAL, call_errno(PCNTL_GROUP_JOIN, k.pid, g, bad_flags[i])) {
			TH_LOG("flags %#lx", bad_flags[i]);
		}
	}
	ASSERT_LE(0, pcntl_stat_of(k.pid, &st));
	EXPECT_EQ(0, st.group);
	EXPECT_EQ(EINVAL, call_errno(PCNTL_GROUP_LEAVE, k.pid, 0, 0));
	EXPECT_EQ(0, pcntl(PCNTL_GROUP_JOIN, k.pid, 0x7fffffff, 0));
	ASSERT_LE(0, pcntl_stat_of(k.pid, &st));
	EXPECT_EQ(0x7fffffffU, st.group);
	EXPECT_EQ(0, pcntl(PCNTL_GROUP_LEAVE, k.pid, 0, 0));
	EXPECT_EXITED(0, finish_kid(_metadata, &k, 30000));
}

/* ---- PCNTL_STAT ---- */

TEST_F_TIMEOUT(mgmt, stat_sizes_and_pointers, 60)
{
	const unsigned long small[] = { 0, 1, 8, 64, PCNTL_STAT_SIZE_VER0 - 1 };
	union {
		struct pcntl_stat st;
		unsigned char b[256];
	} u;
	unsigned char *buf = u.b;
	size_t i;
	long n;

	NEED_SETUP();
	for (i = 0; i < ARRAY_SIZE(small); i++) {
		EXPECT_EQ(EINVAL, call_errno(PCNTL_STAT, 0, (unsigned long)buf, small[i])) {
			TH_LOG("size %lu", small[i]);
		}
	}
	EXPECT_EQ(EFAULT, call_errno(PCNTL_STAT, 0, 0, PCNTL_STAT_SIZE_VER0));
	EXPECT_EQ(EFAULT, call_errno(PCNTL_STAT, 0, ~0UL - 64, PCNTL_STAT_SIZE_VER0));
	/* A larger buffer: only the kernel's size is written. */
	memset(buf, 0xa5, sizeof(u));
	n = pcntl(PCNTL_STAT, 0, (unsigned long)buf, sizeof(u));
	EXPECT_EQ(PCNTL_STAT_SIZE_VER0, n);
	EXPECT_EQ(PCNTL_STAT_SIZE_VER0, u.st.size);
	EXPECT_EQ(PCNTL_GPID(g_node, getpid()), u.st.gpid);
	for (i = PCNTL_STAT_SIZE_VER0; i < sizeof(u); i++)
		if (buf[i] != 0xa5)
			break;
	EXPECT_EQ(sizeof(u), i) {
		TH_LOG("byte %zu beyond the %d the kernel fills was written", i,
		       PCNTL_STAT_SIZE_VER0);
	}
	EXPECT_EQ(PCNTL_STAT_SIZE_VER0, pcntl(PCNTL_STAT, 0, (unsigned long)buf,
					      PCNTL_STAT_SIZE_VER0));
	EXPECT_EQ(ESRCH, call_errno(PCNTL_STAT, reaped_pid(), (unsigned long)buf, sizeof(u)));
	EXPECT_EQ(EINVAL, call_errno(PCNTL_STAT, (unsigned long)-1L, (unsigned long)buf,
				     sizeof(u)));
}

TEST_F_TIMEOUT(mgmt, stat_never_migrated, 60)
{
	struct pcntl_stat st, by_gpid;
	uint64_t t0 = now_ms(), lived;
	struct kid k;

	NEED_SETUP();
	START_READY(&k, kid_idle, NULL);
	cohort_msleep(300);
	ASSERT_EQ(PCNTL_STAT_SIZE_VER0, pcntl_stat_of(k.pid, &st)) {
		finish_kid(_metadata, &k, 1000);
	}
	lived = now_ms() - t0;
	EXPECT_EQ(PCNTL_STAT_SIZE_VER0, st.size);
	EXPECT_EQ(PCNTL_GPID(g_node, k.pid), st.gpid);
	EXPECT_EQ(0, st.group);
	EXPECT_EQ((unsigned int)g_node, st.origin);
	EXPECT_EQ((unsigned int)g_node, st.node);
	EXPECT_EQ(0, st.migrations);
	EXPECT_EQ(1ULL << g_node, st.visited);
	EXPECT_EQ(0, st.flags & (PCNTL_F_MIGRATED | PCNTL_F_AWAY | PCNTL_F_GROUP_FORK));
	EXPECT_LE(250ULL * 1000000, st.age_ns);
	EXPECT_GE((lived + 1000) * 1000000, st.age_ns);
	/* Never moved: resident since it was made. */
	EXPECT_GE(st.age_ns, st.resident_ns);
	EXPECT_GE(st.resident_ns + 100000000ULL, st.age_ns) {
		TH_LOG("age %llu ns, resident %llu ns", (unsigned long long)st.age_ns,
		       (unsigned long long)st.resident_ns);
	}
	EXPECT_EQ(PCNTL_STAT_SIZE_VER0,
		  pcntl_stat_of(PCNTL_GPID(g_node, k.pid), &by_gpid));
	EXPECT_EQ(st.gpid, by_gpid.gpid);
	EXPECT_EQ(st.visited, by_gpid.visited);
	/* The caller itself. */
	ASSERT_EQ(PCNTL_STAT_SIZE_VER0, pcntl_stat_of(0, &st));
	EXPECT_EQ(PCNTL_GPID(g_node, getpid()), st.gpid);
	EXPECT_EXITED(0, finish_kid(_metadata, &k, 30000));
}

static int stat_there_and_back(void *arg)
{
	int other = *(int *)arg, home = g_node;
	uint64_t both = (1ULL << home) | (1ULL << other);
	struct pcntl_stat st;

	WMIGRATE(other);
	WCHECK(pcntl_stat_of(0, &st) == PCNTL_STAT_SIZE_VER0, "PCNTL_STAT there: %s",
	       strerror(errno));
	WCHECK(st.migrations == 1, "migrations %llu there", (unsigned long long)st.migrations);
	WCHECK((st.flags & (PCNTL_F_MIGRATED | PCNTL_F_AWAY)) ==
	       (PCNTL_F_MIGRATED | PCNTL_F_AWAY), "flags %#x there", st.flags);
	WCHECK(st.node == (unsigned int)other && st.origin == (unsigned int)home,
	       "node %u origin %u there", st.node, st.origin);
	WCHECK(st.gpid == PCNTL_GPID(home, getpid()), "gpid %#x there", st.gpid);
	WCHECK(st.visited == both, "visited %#llx there", (unsigned long long)st.visited);
	WCHECK(st.bytes_moved > 0, "bytes_moved 0 there");
	WCHECK(st.resident_ns < st.age_ns, "resident %llu age %llu there",
	       (unsigned long long)st.resident_ns, (unsigned long long)st.age_ns);
	wready();
	wait_go();
	WMIGRATE(home);
	WCHECK(pcntl_stat_of(0, &st) == PCNTL_STAT_SIZE_VER0, "PCNTL_STAT: %s",
	       strerror(errno));
	WCHECK(st.migrations == 2, "migrations %llu back home",
	       (unsigned long long)st.migrations);
	WCHECK((st.flags & (PCNTL_F_MIGRATED | PCNTL_F_AWAY)) == PCNTL_F_MIGRATED,
	       "flags %#x back home", st.flags);
	WCHECK(st.node == (unsigned int)home && st.origin == (unsigned int)home,
	       "node %u origin %u back home", st.node, st.origin);
	WCHECK(st.visited == both, "visited %#llx back home", (unsigned long long)st.visited);
	WCHECK(st.bytes_moved > 0, "bytes_moved 0 back home");
	WCHECK(st.resident_ns < st.age_ns, "resident %llu age %llu back home",
	       (unsigned long long)st.resident_ns, (unsigned long long)st.age_ns);
	return 0;
}

TEST_F_TIMEOUT(mgmt, stat_after_migrations, 120)
{
	struct pcntl_stat st;
	struct kid k;

	NEED_PEERS(1);
	START_READY(&k, stat_there_and_back, &self->other);
	/* From home, by its pid here and by its cluster-wide pid. */
	ASSERT_EQ(PCNTL_STAT_SIZE_VER0, pcntl_stat_of(k.pid, &st));
	EXPECT_EQ((unsigned int)self->other, st.node);
	EXPECT_EQ((unsigned int)self->home, st.origin);
	EXPECT_EQ(1, st.migrations);
	EXPECT_TRUE(st.flags & PCNTL_F_MIGRATED);
	ASSERT_EQ(PCNTL_STAT_SIZE_VER0, pcntl_stat_of(PCNTL_GPID(self->home, k.pid), &st));
	EXPECT_EQ((unsigned int)self->other, st.node);
	EXPECT_EQ(1, st.migrations);
	EXPECT_EXITED(0, finish_kid(_metadata, &k, 60000));
}

/* ---- admission on the destination ---- */

/*
 * A process new to the home node: a kid goes to NODE and forks a child
 * there, an ordinary process of that node, whose pid there it reports on
 * the data pipe; it ends its child when it is let go. Admission applies
 * to it (a process coming back to its shadow is always taken back).
 */
static int kid_stranger(void *arg)
{
	int status;
	pid_t c;

	WMIGRATE(*(int *)arg);
	c = fork();
	WCHECK(c >= 0, "fork on node %d: %s", *(int *)arg, strerror(errno));
	if (c == 0) {
		for (;;)
			pause();
	}
	wsend(c);
	wready();
	wait_go();
	kill(c, SIGKILL);
	waitpid(c, &status, 0);
	return 0;
}

/* The cluster-wide pid of kid_stranger()'s child on node @node. */
static int stranger_gpid(struct __test_metadata *_metadata, struct kid *k, int node)
{
	pid_t c = 0;

	if (read_within(k->data, &c, sizeof(c), 10000) != sizeof(c) || c <= 0) {
		TH_LOG("no pid from the kid's child on node %d", node);
		return -1;
	}
	return PCNTL_GPID(node, c);
}

/* Start kid_stranger() toward the peer; @g gets its child's gpid. */
#define START_STRANGER(k, g) do { \
	START_READY((k), kid_stranger, &self->other); \
	(g) = stranger_gpid(_metadata, (k), self->other); \
	ASSERT_LT(0, (g)) { \
		finish_kid(_metadata, (k), 1000); \
	} \
} while (0)

/* The setting is back: process @g comes @home, and its kid ends. */
static void expect_admitted(struct __test_metadata *_metadata, struct kid *k, int g,
			    int home)
{
	EXPECT_EQ(0, migrate_errno(g, home, NULL));
	EXPECT_EQ(home, where(g));
	EXPECT_EXITED(0, finish_kid(_metadata, k, 30000));
}

TEST_F_TIMEOUT(mgmt, accept_zero_refuses, 120)
{
	struct pcntl_node_info info;
	struct kid k, back;
	int g;
	long e;

	NEED_PEERS(1);
	START_STRANGER(&k, g);
	ASSERT_EQ(self->other, where(g));
	SET(S_ACCEPT, "0");
	ASSERT_EQ(PCNTL_NODE_INFO_SIZE_VER0, node_info(self->home, &info));
	EXPECT_TRUE(info.flags & PCNTL_NODE_REFUSE_ADMIN);
	EXPECT_FALSE(info.flags & PCNTL_NODE_ACCEPTS) {
		TH_LOG("flags %#x with accept=0", info.flags);
	}
	e = migrate_errno(g, self->home, NULL);
	EXPECT_EQ(ECONNREFUSED, e) {
		TH_LOG("moving a process here with accept=0: %s", strerror(e));
	}
	EXPECT_EQ(self->other, where(g));
	EXPECT_EQ(ECONNREFUSED, call_errno(PCNTL_PULL, g, 0, 0));
	EXPECT_EQ(self->other, where(g));
	/* A process of this node comes back to its shadow all the same. */
	START_READY(&back, kid_away, &self->other);
	EXPECT_EQ(0, migrate_errno(back.pid, self->home, NULL));
	EXPECT_EQ(self->home, where(back.pid));
	EXPECT_EXITED(0, finish_kid(_metadata, &back, 30000));
	SET(S_ACCEPT, "1");
	ASSERT_EQ(PCNTL_NODE_INFO_SIZE_VER0, node_info(self->home, &info));
	EXPECT_TRUE(info.flags & PCNTL_NODE_ACCEPTS);
	EXPECT_FALSE(info.flags & PCNTL_NODE_REFUSE_ADMIN);
	expect_admitted(_metadata, &k, g, self->home);
}

TEST_F_TIMEOUT(mgmt, accept_uids_refuses_others, 120)
{
	struct pcntl_node_info info;
	char uids[64];
	struct kid k;
	int g;
	long e;

	NEED_PEERS(1);
	START_STRANGER(&k, g);
	ASSERT_EQ(self->other, where(g));
	/* The kid is root's; only uid 65534 and 4242 may come. */
	SET(S_ACCEPT_UIDS, "65534 4242");
	ASSERT_EQ(PCNTL_NODE_INFO_SIZE_VER0, node_info(self->home, &info));
	EXPECT_TRUE(info.flags & PCNTL_NODE_UID_LIST);
	e = migrate_errno(g, self->home, NULL);
	EXPECT_EQ(ECONNREFUSED, e) {
		TH_LOG("moving uid %d's process here with accept_uids '65534 4242': %s",
		       getuid(), strerror(e));
	}
	EXPECT_EQ(self->other, where(g));
	snprintf(uids, sizeof(uids), "65534 %d", getuid());
	SET(S_ACCEPT_UIDS, uids);
	expect_admitted(_metadata, &k, g, self->home);
}

#define NR_SPINNERS	3

TEST_F_TIMEOUT(mgmt, max_load_refuses, 120)
{
	struct pcntl_node_info info = { 0 };
	pid_t spin[NR_SPINNERS] = { 0 };
	uint64_t deadline;
	struct kid k;
	int g;
	int i;
	long e;

	NEED_PEERS(1);
	START_STRANGER(&k, g);
	ASSERT_EQ(self->other, where(g));
	SET(S_MAX_LOAD, "1");
	for (i = 0; i < NR_SPINNERS; i++)
		spin[i] = start_spinner();
	deadline = now_ms() + 20000;
	while (node_info(self->home, &info) == PCNTL_NODE_INFO_SIZE_VER0 &&
	       !(info.flags & PCNTL_NODE_REFUSE_LOAD) && now_ms() < deadline)
		cohort_msleep(100);
	EXPECT_EQ(1, info.max_load);
	EXPECT_TRUE(info.flags & PCNTL_NODE_REFUSE_LOAD) {
		TH_LOG("%d spinners, max_load 1: nr_running %u, flags %#x", NR_SPINNERS,
		       info.nr_running, info.flags);
	}
	EXPECT_FALSE(info.flags & PCNTL_NODE_ACCEPTS);
	e = migrate_errno(g, self->home, NULL);
	EXPECT_EQ(ECONNREFUSED, e) {
		TH_LOG("moving a process to a node above max_load: %s", strerror(e));
	}
	EXPECT_EQ(self->other, where(g));
	for (i = 0; i < NR_SPINNERS; i++)
		stop(spin[i]);
	SET(S_MAX_LOAD, "0");
	expect_admitted(_metadata, &k, g, self->home);
}

TEST_F_TIMEOUT(mgmt, min_free_kb_refuses, 120)
{
	struct pcntl_node_info info;
	char kb[32];
	struct kid k;
	int g;
	long e;

	NEED_PEERS(1);
	START_STRANGER(&k, g);
	ASSERT_EQ(PCNTL_NODE_INFO_SIZE_VER0, node_info(self->home, &info));
	/* More than the node has: always below. */
	snprintf(kb, sizeof(kb), "%llu", (unsigned long long)info.total_kb * 2);
	SET(S_MIN_FREE_KB, kb);
	ASSERT_EQ(PCNTL_NODE_INFO_SIZE_VER0, node_info(self->home, &info));
	EXPECT_EQ(strtoull(kb, NULL, 10), info.min_free_kb);
	EXPECT_TRUE(info.flags & PCNTL_NODE_REFUSE_MEM);
	EXPECT_FALSE(info.flags & PCNTL_NODE_ACCEPTS);
	e = migrate_errno(g, self->home, NULL);
	EXPECT_EQ(ECONNREFUSED, e) {
		TH_LOG("moving a process to a node below min_free_kb: %s", strerror(e));
	}
	EXPECT_EQ(self->other, where(g));
	SET(S_MIN_FREE_KB, "0");
	expect_admitted(_metadata, &k, g, self->home);
}

/* A uid that is not the test's: the second of kid_strangers()'s children. */
#define OTHER_UID	4242

/*
 * Two processes new to home: a kid goes to NODE and forks two children
 * there, the first of the test's uid, the second of OTHER_UID (it says so
 * on a pipe before the kid reports); it sends both pids on the data pipe,
 * in that order, and ends them when it is let go.
 */
static int kid_strangers(void *arg)
{
	pid_t c[2];
	int p[2], status, i;
	char ok;

	WMIGRATE(*(int *)arg);
	WCHECK(pipe(p) == 0, "pipe: %s", strerror(errno));
	for (i = 0; i < 2; i++) {
		c[i] = fork();
		WCHECK(c[i] >= 0, "fork on node %d: %s", *(int *)arg, strerror(errno));
		if (c[i] == 0) {
			if (i == 1 && setresuid(OTHER_UID, OTHER_UID, OTHER_UID))
				_exit(1);
			if (i == 1 && write(p[1], "u", 1) != 1)
				_exit(1);
			for (;;)
				pause();
		}
	}
	WCHECK(read(p[0], &ok, 1) == 1, "the second child did not take uid %d", OTHER_UID);
	wsend(c[0]);
	wsend(c[1]);
	wready();
	wait_go();
	for (i = 0; i < 2; i++) {
		kill(c[i], SIGKILL);
		waitpid(c[i], &status, 0);
	}
	return 0;
}

/* Each of the @n processes @g runs on @node and never migrated. */
static void expect_unmoved(struct __test_metadata *_metadata, const int *g, int n,
			   int node)
{
	struct pcntl_stat st;
	int i;

	for (i = 0; i < n; i++) {
		EXPECT_EQ(node, where(g[i])) {
			TH_LOG("process %d:%d", PCNTL_GPID_NODE(g[i]), PCNTL_GPID_PID(g[i]));
		}
		ASSERT_EQ(PCNTL_STAT_SIZE_VER0, pcntl_stat_of(g[i], &st));
		EXPECT_EQ(0, st.migrations) {
			TH_LOG("process %d:%d moved %u times (there and back?)",
			       PCNTL_GPID_NODE(g[i]), PCNTL_GPID_PID(g[i]), st.migrations);
		}
	}
}

/*
 * A group asked here by the node that refuses (PCNTL_PULL, and
 * PCNTL_MIGRATE run on the destination): admission is checked for the
 * group as a whole before anything moves. Home takes only the test's uid;
 * of two members new to home, the second (created second on the peer) is
 * OTHER_UID's: ECONNREFUSED, *a2 names it, and neither member moved, not
 * even there and back (PCNTL_STAT: 0 migrations).
 */
TEST_F_TIMEOUT(mgmt, group_admission_checked_before_any_move, 180)
{
	unsigned long g = group_id(7);
	char uids[64];
	int m[2], i, refused;
	struct kid k;
	pid_t c;
	long e;

	NEED_PEERS(1);
	START_READY(&k, kid_strangers, &self->other);
	for (i = 0; i < 2; i++) {
		c = 0;
		ASSERT_EQ(sizeof(c), read_within(k.data, &c, sizeof(c), 10000)) {
			finish_kid(_metadata, &k, 1000);
		}
		m[i] = PCNTL_GPID(self->other, c);
		EXPECT_EQ(0, pcntl(PCNTL_GROUP_JOIN, m[i], g, 0));
	}
	snprintf(uids, sizeof(uids), "%d", getuid());
	SET(S_ACCEPT_UIDS, uids);
	/* Pulled here, by the first member. */
	refused = -1;
	e = call_errno(PCNTL_PULL, m[0], 0, (unsigned long)&refused);
	EXPECT_EQ(ECONNREFUSED, e) {
		TH_LOG("pulling a group with a member of uid %d, accept_uids '%s': %s",
		       OTHER_UID, uids, strerror(e));
	}
	EXPECT_EQ(m[1], refused) {
		TH_LOG("*a2 %#x, expected the gpid %#x", refused, m[1]);
	}
	expect_unmoved(_metadata, m, 2, self->other);
	/* Moved here by PCNTL_MIGRATE run here, by the other member's gpid. */
	refused = -1;
	e = migrate_errno(m[1], self->home, &refused);
	EXPECT_EQ(ECONNREFUSED, e) {
		TH_LOG("PCNTL_MIGRATE of the group to this refusing node: %s", strerror(e));
	}
	EXPECT_EQ(m[1], refused);
	expect_unmoved(_metadata, m, 2, self->other);
	/* a2 that cannot be written: EFAULT, nothing moves. */
	EXPECT_EQ(EFAULT, call_errno(PCNTL_PULL, m[0], 0, 8));
	expect_unmoved(_metadata, m, 2, self->other);
	/* Both uids admitted: the group comes, *a2 stays 0; then back. */
	snprintf(uids, sizeof(uids), "%d %d", getuid(), OTHER_UID);
	SET(S_ACCEPT_UIDS, uids);
	refused = -1;
	EXPECT_EQ(0, call_errno(PCNTL_PULL, m[0], 0, (unsigned long)&refused));
	EXPECT_EQ(0, refused);
	for (i = 0; i < 2; i++)
		EXPECT_EQ(self->home, where(m[i]));
	EXPECT_EQ(0, migrate_errno(m[0], self->other, NULL));
	for (i = 0; i < 2; i++)
		EXPECT_EQ(self->other, where(m[i]));
	EXPECT_EXITED(0, finish_kid(_metadata, &k, 30000));
}

/*
 * A kid that moves itself to node @a->node, then asks from there
 * PCNTL_MIGRATE of @a->gpid to @a->dest, and sends the errno (0 for
 * success) and *a2.
 */
struct remote_move {
	int node, gpid, dest;
};

static int kid_remote_move(void *arg)
{
	const struct remote_move *a = arg;
	int refused = -1;
	long e;

	WMIGRATE(a->node);
	e = migrate_errno(a->gpid, a->dest, &refused);
	wsend(e);
	wsend(refused);
	wready();
	wait_go();
	return 0;
}

/*
 * The same answer whichever node asks: home refuses every process
 * (accept 0) but takes back those whose shadow it keeps, a group of
 * home's processes included, whether asked from home or from the peer.
 */
TEST_F_TIMEOUT(mgmt, group_going_home_admitted_from_any_node, 180)
{
	unsigned long g = group_id(8);
	struct kid k[2], asker;
	struct remote_move a;
	pid_t e = -1, refused = -1;
	int i;

	NEED_PEERS(1);
	start_members(_metadata, k, 2);
	for (i = 0; i < 2; i++)
		EXPECT_EQ(0, pcntl(PCNTL_GROUP_JOIN, k[i].pid, g, 0));
	EXPECT_EQ(0, migrate_errno(k[0].pid, self->other, NULL));
	EXPECT_ALL_ON(k, 2, self->other);
	SET(S_ACCEPT, "0");
	/* Asked from home. */
	EXPECT_EQ(0, migrate_errno(k[1].pid, self->home, NULL));
	EXPECT_ALL_ON(k, 2, self->home);
	SET(S_ACCEPT, "1");
	EXPECT_EQ(0, migrate_errno(k[0].pid, self->other, NULL));
	EXPECT_ALL_ON(k, 2, self->other);
	SET(S_ACCEPT, "0");
	/* Asked from the peer, by a process there. */
	a.node = self->other;
	a.gpid = PCNTL_GPID(self->home, k[1].pid);
	a.dest = self->home;
	START_READY(&asker, kid_remote_move, &a);
	EXPECT_EQ(sizeof(e), read_within(asker.data, &e, sizeof(e), 10000));
	EXPECT_EQ(sizeof(refused), read_within(asker.data, &refused, sizeof(refused), 10000));
	EXPECT_EQ(0, e) {
		TH_LOG("the group going home to accept=0, asked from node %d: %s (member %#x)",
		       self->other, strerror(e), refused);
	}
	EXPECT_ALL_ON(k, 2, self->home);
	EXPECT_EXITED(0, finish_kid(_metadata, &asker, 30000));
	finish_members(_metadata, k, 2);
}

/* ---- PCNTL_NODE_INFO ---- */

TEST_F_TIMEOUT(mgmt, node_info_this_node_and_a_peer, 60)
{
	struct pcntl_node_info info;
	struct sysinfo si;
	uint64_t total;
	long procs;

	NEED_SETUP();
	ASSERT_EQ(PCNTL_NODE_INFO_SIZE_VER0, node_info(g_node, &info));
	EXPECT_EQ(PCNTL_NODE_INFO_SIZE_VER0, info.size);
	EXPECT_EQ((unsigned int)g_node, info.node);
	EXPECT_EQ(sysconf(_SC_NPROCESSORS_ONLN), (long)info.nr_cpus);
	ASSERT_EQ(0, sysinfo(&si));
	total = (uint64_t)si.totalram * si.mem_unit / 1024;
	EXPECT_TRUE(info.total_kb >= total * 99 / 100 && info.total_kb <= total * 101 / 100) {
		TH_LOG("total_kb %llu, sysinfo says %llu", (unsigned long long)info.total_kb,
		       (unsigned long long)total);
	}
	EXPECT_GE(info.total_kb, info.free_kb);
	EXPECT_LT(0, info.free_kb);
	/* The defaults. */
	EXPECT_EQ(PCNTL_NODE_ACCEPTS, info.flags) {
		TH_LOG("flags %#x", info.flags);
	}
	EXPECT_EQ(0, info.max_load);
	EXPECT_EQ(0, info.min_free_kb);
	EXPECT_LE(1, info.nr_running);
	EXPECT_GE(info.nr_procs, info.nr_distributed);
	procs = ps_count(g_node);
	EXPECT_TRUE(procs > 0 && labs(procs - (long)info.nr_procs) <= 5) {
		TH_LOG("nr_procs %u, PCNTL_PS counts %ld", info.nr_procs, procs);
	}
	if (peer(0) < 0)
		return;
	ASSERT_EQ(PCNTL_NODE_INFO_SIZE_VER0, node_info(peer(0), &info));
	EXPECT_EQ((unsigned int)peer(0), info.node);
	EXPECT_LE(1, info.nr_cpus);
	EXPECT_LT(0, info.total_kb);
	EXPECT_GE(info.total_kb, info.free_kb);
	EXPECT_LE(1, info.nr_procs);
	EXPECT_TRUE(info.flags & PCNTL_NODE_ACCEPTS);
}

TEST_F_TIMEOUT(mgmt, node_info_errors, 60)
{
	const unsigned long bad_nodes[] = { 64, 65, 1000, 1UL << 32, ~0UL };
	unsigned char buf[128];
	size_t i;
	long n;

	NEED_SETUP();
	for (i = 0; i < ARRAY_SIZE(bad_nodes); i++) {
		EXPECT_EQ(EINVAL, call_errno(PCNTL_NODE_INFO, bad_nodes[i], (unsigned long)buf,
					     sizeof(buf))) {
			TH_LOG("node %#lx", bad_nodes[i]);
		}
	}
	for (i = g_nr_nodes; i < COHORT_MAX_NODES; i += 7) {
		EXPECT_EQ(EINVAL, call_errno(PCNTL_NODE_INFO, i, (unsigned long)buf,
					     sizeof(buf))) {
			TH_LOG("node %zu, not in a cluster of %lu", i, g_nr_nodes);
		}
	}
	EXPECT_EQ(EINVAL, call_errno(PCNTL_NODE_INFO, g_node, (unsigned long)buf, 8));
	EXPECT_EQ(EINVAL, call_errno(PCNTL_NODE_INFO, g_node, (unsigned long)buf,
				     PCNTL_NODE_INFO_SIZE_VER0 - 1));
	EXPECT_EQ(EFAULT, call_errno(PCNTL_NODE_INFO, g_node, 0, sizeof(buf)));
	memset(buf, 0x5a, sizeof(buf));
	n = pcntl(PCNTL_NODE_INFO, g_node, (unsigned long)buf, sizeof(buf));
	EXPECT_EQ(PCNTL_NODE_INFO_SIZE_VER0, n);
	for (i = PCNTL_NODE_INFO_SIZE_VER0; i < sizeof(buf); i++)
		if (buf[i] != 0x5a)
			break;
	EXPECT_EQ(sizeof(buf), i);
}

/* A node of the cluster that is down: EHOSTDOWN (only when one is). */
TEST_F_TIMEOUT(mgmt, node_info_down_node_ehostdown, 60)
{
	struct pcntl_node_info info;
	unsigned long n;

	NEED_SETUP();
	for (n = 0; n < g_nr_nodes; n++)
		if (!(online_nodes() & (1ULL << n)))
			break;
	if (n == g_nr_nodes) {
		SKIP(return, "every node of the %lu is up (the peer-death scenario has one down)",
		     g_nr_nodes);
	}
	EXPECT_EQ(EHOSTDOWN, (node_info(n, &info) < 0 ? errno : 0)) {
		TH_LOG("node %lu, down", n);
	}
}

/* ---- PCNTL_PULL ---- */

TEST_F_TIMEOUT(mgmt, pull_brings_a_process_here, 120)
{
	struct pcntl_stat st;
	struct kid k;

	NEED_PEERS(1);
	START_READY(&k, kid_away, &self->other);
	ASSERT_EQ(self->other, where(k.pid));
	EXPECT_EQ(0, call_errno(PCNTL_PULL, PCNTL_GPID(self->home, k.pid), 0, 0));
	EXPECT_EQ(self->home, where(k.pid));
	/* Already here: 0 at once, nothing moves. */
	EXPECT_EQ(0, call_errno(PCNTL_PULL, k.pid, 0, 0));
	ASSERT_EQ(PCNTL_STAT_SIZE_VER0, pcntl_stat_of(k.pid, &st));
	EXPECT_EQ(2, st.migrations);
	/* Away again, pulled by its pid here. */
	EXPECT_EQ(0, migrate_errno(k.pid, self->other, NULL));
	EXPECT_EQ(0, call_errno(PCNTL_PULL, k.pid, 0, 0));
	EXPECT_EQ(self->home, where(k.pid));
	EXPECT_EQ(ESRCH, call_errno(PCNTL_PULL, PCNTL_GPID(self->other, NO_SUCH_PID), 0, 0));
	EXPECT_EQ(EINVAL, call_errno(PCNTL_PULL, PCNTL_GPID(64, 1), 0, 0));
	EXPECT_EXITED(0, finish_kid(_metadata, &k, 30000));
}

TEST_F_TIMEOUT(mgmt, pull_forbidden_is_eacces, 120)
{
	struct kid k;
	long e;

	NEED_PEERS(1);
	START_READY(&k, kid_away_forbidden, &self->other);
	ASSERT_EQ(self->other, where(k.pid));
	e = call_errno(PCNTL_PULL, PCNTL_GPID(self->home, k.pid), 0, 0);
	EXPECT_EQ(EACCES, e) {
		TH_LOG("pulling a forbidden process: %s", strerror(e));
	}
	EXPECT_EQ(self->other, where(k.pid));
	EXPECT_EQ(0, pcntl(PCNTL_ALLOW, PCNTL_GPID(self->home, k.pid), 0, 0));
	EXPECT_EQ(0, pcntl(PCNTL_PULL, PCNTL_GPID(self->home, k.pid), 0, 0));
	EXPECT_EQ(self->home, where(k.pid));
	EXPECT_EXITED(0, finish_kid(_metadata, &k, 30000));
}

/* ---- PCNTL_PS ---- */

#define PS_MAX	1024

static struct pcntl_proc ps_buf[PS_MAX];

TEST_F_TIMEOUT(mgmt, ps_lists_a_process_where_it_runs, 120)
{
	const struct pcntl_proc *p;
	struct kid k;
	int gpid, i;
	long n;

	NEED_PEERS(1);
	START_READY(&k, kid_away, &self->other);
	gpid = PCNTL_GPID(self->home, k.pid);
	n = ps_list(self->other, ps_buf, PS_MAX);
	ASSERT_LT(0, n);
	ASSERT_GE(PS_MAX, n);
	p = ps_find(ps_buf, n, gpid);
	ASSERT_NE(NULL, p) {
		TH_LOG("gpid %#x (%d:%d) not among node %d's %ld processes", gpid,
		       self->home, k.pid, self->other, n);
		finish_kid(_metadata, &k, 1000);
	}
	EXPECT_EQ((unsigned int)self->other, p->node);
	EXPECT_EQ((unsigned int)self->home, p->origin);
	EXPECT_LT(0, p->pid);
	EXPECT_EQ(getuid(), p->uid);
	EXPECT_EQ(0, p->group);
	EXPECT_EQ(1, p->threads);
	EXPECT_EQ(1, p->migrations);
	EXPECT_TRUE(p->flags & PCNTL_F_MIGRATED);
	EXPECT_TRUE(p->flags & PCNTL_F_AWAY);
	EXPECT_EQ(0, strncmp(p->comm, COMM, sizeof(p->comm)));
	/* Once: not at home, where its shadow is. */
	n = ps_list(self->home, ps_buf, PS_MAX);
	ASSERT_LT(0, n);
	ASSERT_GE(PS_MAX, n);
	EXPECT_EQ(NULL, ps_find(ps_buf, n, gpid));
	for (i = 0; i < n; i++) {
		EXPECT_NE(k.pid, ps_buf[i].pid) {
			TH_LOG("pid %d listed at home, gpid %#x", k.pid, ps_buf[i].gpid);
		}
	}
	/* This test is listed at home, by its pid; kernel threads are not. */
	p = ps_find(ps_buf, n, PCNTL_GPID(self->home, getpid()));
	ASSERT_NE(NULL, p);
	EXPECT_EQ(getpid(), p->pid);
	EXPECT_EQ((unsigned int)self->home, p->node);
	EXPECT_EQ(0, p->migrations);
	for (i = 0; i < n; i++) {
		EXPECT_NE(2, ps_buf[i].pid) {
			TH_LOG("kthreadd listed");
		}
	}
	/* Back home: listed at home, not there. */
	EXPECT_EQ(0, migrate_errno(k.pid, self->home, NULL));
	n = ps_list(self->home, ps_buf, PS_MAX);
	ASSERT_LT(0, n);
	p = ps_find(ps_buf, n, gpid);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(k.pid, p->pid);
	EXPECT_EQ(2, p->migrations);
	EXPECT_FALSE(p->flags & PCNTL_F_AWAY);
	n = ps_list(self->other, ps_buf, PS_MAX);
	ASSERT_LT(0, n);
	EXPECT_EQ(NULL, ps_find(ps_buf, n, gpid));
	EXPECT_EXITED(0, finish_kid(_metadata, &k, 30000));
}

TEST_F_TIMEOUT(mgmt, ps_count_and_small_buffers, 60)
{
	struct pcntl_proc two[2];
	struct kid k;
	long n, m;

	NEED_SETUP();
	START_READY(&k, kid_idle, NULL);
	/* The harness, this test and the kid at least. */
	n = ps_count(g_node);
	EXPECT_LE(3, n);
	/* Room for one record, and for one and a half: one is stored. */
	memset(two, 0x5a, sizeof(two));
	m = pcntl(PCNTL_PS, g_node, (unsigned long)two, sizeof(two[0]));
	EXPECT_LE(3, m);
	EXPECT_LT(0, two[0].gpid);
	EXPECT_EQ(0x5a5a5a5a, two[1].gpid);
	memset(two, 0x5a, sizeof(two));
	m = pcntl(PCNTL_PS, g_node, (unsigned long)two, sizeof(two[0]) * 3 / 2);
	EXPECT_LE(3, m);
	EXPECT_EQ(0x5a5a5a5a, two[1].gpid);
	EXPECT_EQ(-EINVAL, ps_count(64));
	EXPECT_EQ(-EINVAL, ps_count(~0UL));
	EXPECT_EQ(EFAULT, call_errno(PCNTL_PS, g_node, 0, sizeof(two)));
	EXPECT_EXITED(0, finish_kid(_metadata, &k, 30000));
}

/* ---- cluster-wide pids ---- */

TEST_F_TIMEOUT(mgmt, gpid_names_a_process_anywhere, 120)
{
	pid_t gone;
	struct kid k;

	NEED_SETUP();
	EXPECT_EQ(g_node, where(PCNTL_GPID(g_node, getpid())));
	EXPECT_EQ(where(getpid()), where(PCNTL_GPID(g_node, getpid())));
	EXPECT_EQ(g_node, where(PCNTL_GPID(g_node, 1)));
	errno = 0;
	EXPECT_EQ(-1, where(PCNTL_GPID(64, 1)));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, where(PCNTL_GPID(500, getpid())));
	EXPECT_EQ(EINVAL, errno);
	gone = reaped_pid();
	errno = 0;
	EXPECT_EQ(-1, where(PCNTL_GPID(g_node, gone)));
	EXPECT_EQ(ESRCH, errno);
	errno = 0;
	EXPECT_EQ(-1, where(PCNTL_GPID(g_node, NO_SUCH_PID)));
	EXPECT_EQ(ESRCH, errno);
	if (!need_peers(_metadata, 1))
		return;
	EXPECT_EQ(self->other, where(PCNTL_GPID(self->other, 1)));
	errno = 0;
	EXPECT_EQ(-1, where(PCNTL_GPID(self->other, NO_SUCH_PID)));
	EXPECT_EQ(ESRCH, errno);
	START_READY(&k, kid_idle, NULL);
	EXPECT_EQ(0, migrate_errno(PCNTL_GPID(self->home, k.pid), self->other, NULL));
	EXPECT_EQ(self->other, where(PCNTL_GPID(self->home, k.pid)));
	EXPECT_EQ(self->other, where(k.pid));
	EXPECT_EQ(0, migrate_errno(PCNTL_GPID(self->home, k.pid), self->home, NULL));
	EXPECT_EQ(self->home, where(PCNTL_GPID(self->home, k.pid)));
	EXPECT_EXITED(0, finish_kid(_metadata, &k, 30000));
}

COHORT_CLUSTER_CLEANUP_TEST()

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], EXEC_MODE))
		return exec_check(argv[2]);
	if (argc == 2 && !strcmp(argv[1], EXEC_EXIT_MODE))
		return EXEC_DONE;
	return cohort_cluster_main(argc, argv, "pcntl_mgmt_test");
}
