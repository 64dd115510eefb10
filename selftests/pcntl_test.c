// SPDX-License-Identifier: GPL-2.0
/*
 * pcntl(2): -ENOSYS for every command while popcorn is not loaded (even
 * with the other modules loaded), PCNTL_WHERE and argument checking once
 * it is, and -ENOSYS again after it is unloaded.
 *
 * Fixtures run in declaration order: no_popcorn, popcorn, zz_unloaded.
 */
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "cohort_test.h"

static const unsigned int some_cmds[] = {
	0, PCNTL_WHERE, 2, PCNTL_NODES, 8, 9999, UINT_MAX,
};

/* Each of the @n commands in @cmds, with zero arguments, fails with @err. */
static void expect_cmds_fail(struct __test_metadata *_metadata,
			     const unsigned int *cmds, size_t n, int err)
{
	size_t i;
	long ret;

	for (i = 0; i < n; i++) {
		errno = 0;
		ret = pcntl(cmds[i], 0, 0, 0);
		EXPECT_EQ(-1, ret) {
			TH_LOG("cmd %u returned %ld", cmds[i], ret);
		}
		EXPECT_EQ(err, errno) {
			TH_LOG("cmd %u: errno %d (%s)", cmds[i], errno,
			       strerror(errno));
		}
	}
}

static void expect_enosys(struct __test_metadata *_metadata)
{
	expect_cmds_fail(_metadata, some_cmds, ARRAY_SIZE(some_cmds), ENOSYS);
	/* Arguments do not matter either. */
	errno = 0;
	EXPECT_EQ(-1, pcntl(PCNTL_WHERE, getpid(), ~0UL, 1));
	EXPECT_EQ(ENOSYS, errno);
}

static unsigned long node_id(struct __test_metadata *_metadata)
{
	unsigned long id = 0;
	int ret;

	ret = cohort_read_ulong(COHORT_NODE_ID, &id);
	ASSERT_EQ(0, ret) {
		TH_LOG("%s: %s", COHORT_NODE_ID, strerror(-ret));
	}
	return id;
}

static void expect_pcntl_owner(struct __test_metadata *_metadata,
			       const char *owner)
{
	struct cohort_ops ops;

	ASSERT_EQ(0, cohort_read_ops_checked(&ops));
	EXPECT_STREQ(owner, ops.owner[COHORT_SLOT_PCNTL]);
}

/* ---- popcorn not loaded ---- */

/* Load popcorn.ko (or find it loaded); the test stops if it cannot be. */
static void load_popcorn(struct __test_metadata *_metadata)
{
	int ret = cohort_ensure_loaded("popcorn");

	ASSERT_EQ(0, ret) {
		TH_LOG("loading popcorn: %s", strerror(-ret));
	}
}

FIXTURE(no_popcorn) {
};

FIXTURE_SETUP(no_popcorn)
{
	int ret;

	ret = cohort_ensure_unloaded("popcorn");
	/* Without module support nothing can be loaded: fine. */
	if (ret == -ENOSYS)
		ret = 0;
	ASSERT_EQ(0, ret) {
		TH_LOG("unloading popcorn: %s", strerror(-ret));
	}
	ASSERT_FALSE(cohort_module_loaded("popcorn"));
}

FIXTURE_TEARDOWN(no_popcorn)
{
}

TEST_F(no_popcorn, enosys_for_all_commands)
{
	expect_enosys(_metadata);
	expect_pcntl_owner(_metadata, "-");
}

/* kmsg and gobelins do not own the pcntl slot. */
TEST_F_TIMEOUT(no_popcorn, enosys_with_other_modules_loaded, 120)
{
	static const char * const others[] = { "kmsg", "gobelins" };
	size_t i;
	int ret;

	for (i = 0; i < 2; i++)
		if (!cohort_module_file_present(others[i]))
			SKIP(return, "%s/%s.ko not present", COHORT_MODULE_DIR,
			     others[i]);
	for (i = 0; i < 2; i++) {
		ret = cohort_ensure_loaded(others[i]);
		ASSERT_EQ(0, ret) {
			TH_LOG("loading %s: %s", others[i], strerror(-ret));
		}
	}
	expect_pcntl_owner(_metadata, "-");
	expect_enosys(_metadata);
	for (i = 0; i < 2; i++)
		EXPECT_EQ(0, cohort_ensure_unloaded(others[i]));
}

/* ---- popcorn loaded ---- */

FIXTURE(popcorn) {
};

FIXTURE_SETUP(popcorn)
{
	if (!cohort_module_file_present("popcorn"))
		SKIP(return, "%s/popcorn.ko not present", COHORT_MODULE_DIR);
	/* Stays loaded across these tests; zz_unloaded removes it. */
	load_popcorn(_metadata);
	expect_pcntl_owner(_metadata, "popcorn");
}

FIXTURE_TEARDOWN(popcorn)
{
}

TEST_F(popcorn, where_self)
{
	unsigned long id = node_id(_metadata);

	EXPECT_EQ((long)id, pcntl(PCNTL_WHERE, 0, 0, 0));
	EXPECT_EQ((long)id, pcntl(PCNTL_WHERE, getpid(), 0, 0));
}

/* Another live process, and a freshly forked child asking about itself. */
TEST_F(popcorn, where_child)
{
	unsigned long id = node_id(_metadata);
	int status, pfd[2];
	pid_t pid;
	char c;

	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(pfd[0]);
		if (pcntl(PCNTL_WHERE, 0, 0, 0) != (long)id)
			_exit(1);
		if (pcntl(PCNTL_WHERE, getpid(), 0, 0) != (long)id)
			_exit(2);
		if (pcntl(PCNTL_WHERE, getppid(), 0, 0) != (long)id)
			_exit(3);
		if (write(pfd[1], "r", 1) != 1)
			_exit(4);
		for (;;)
			pause();
	}
	close(pfd[1]);
	ASSERT_EQ(1, read(pfd[0], &c, 1)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	close(pfd[0]);
	EXPECT_EQ((long)id, pcntl(PCNTL_WHERE, pid, 0, 0));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status)) {
		TH_LOG("child failed check %d", WEXITSTATUS(status));
	}
}

/* A valid pid nobody holds: the pid of a child reaped a moment ago. */
TEST_F(popcorn, where_missing_pid_is_esrch)
{
	int status;
	pid_t pid;
	long ret;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(0);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(-1, kill(pid, 0));
	ASSERT_EQ(ESRCH, errno);

	errno = 0;
	ret = pcntl(PCNTL_WHERE, pid, 0, 0);
	EXPECT_EQ(-1, ret) {
		TH_LOG("pid %d returned %ld", pid, ret);
	}
	EXPECT_EQ(ESRCH, errno) {
		TH_LOG("pid %d: errno %d (%s)", pid, errno, strerror(errno));
	}
}

/*
 * Negative pids, cluster-wide pids of a node that cannot exist (64 and
 * above: PCNTL_GPID(64, 1), INT_MAX), and values whose low 32 bits are a
 * real pid: a module that truncates a0 to pid_t would answer for the wrong
 * process. They are malformed arguments, not missing processes: EINVAL
 * (see Documentation/pcntl.rst), never ESRCH, never an answer. (Values
 * from PID_MAX_LIMIT, 4M, up name processes by their node and pid there.)
 */
TEST_F(popcorn, where_bad_pid_is_einval)
{
	unsigned long bad[] = {
		(unsigned long)-1L,
		(unsigned long)-5L,
		(unsigned long)(long)INT_MIN,
		(unsigned long)-(long)getpid(),
		(unsigned long)PCNTL_GPID(64, 1),
		(unsigned long)INT_MAX,
		(1UL << 32),
		(1UL << 32) + getpid(),
	};
	size_t i;
	long ret;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		errno = 0;
		ret = pcntl(PCNTL_WHERE, bad[i], 0, 0);
		EXPECT_EQ(-1, ret) {
			TH_LOG("pid %#lx returned %ld", bad[i], ret);
		}
		EXPECT_EQ(EINVAL, errno) {
			TH_LOG("pid %#lx: errno %d (%s)", bad[i], errno,
			       strerror(errno));
		}
	}
}

/*
 * The nodes this node should list: itself, and when kmsg is loaded here
 * every peer its peers file shows up.
 */
static uint64_t kmsg_view(unsigned long id)
{
	char buf[8192], *line, *save = NULL;
	uint64_t bm = UINT64_C(1) << id;

	if (cohort_read_file("/sys/kernel/debug/kmsg/peers", buf, sizeof(buf)) < 0)
		return bm;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long n;
		char st[16];

		if (sscanf(line, "%lu %15s", &n, st) == 2 && n < 64 &&
		    !strcmp(st, "up"))
			bm |= UINT64_C(1) << n;
	}
	return bm;
}

/*
 * Wait up to @ms for PCNTL_NODES to equal @want (NULL: kmsg_view()); the
 * last bitmap read is in @online and the command's result returned.
 */
static long wait_nodes(unsigned long id, const uint64_t *want, int ms,
		       uint64_t *online, uint64_t *expected)
{
	long count;

	for (;;) {
		*online = 0;
		*expected = want ? *want : kmsg_view(id);
		count = pcntl(PCNTL_NODES, (unsigned long)online, sizeof(*online), 0);
		if ((count >= 0 && *online == *expected) || ms <= 0)
			return count;
		cohort_msleep(100);
		ms -= 100;
	}
}

/*
 * The bitmap is this node and exactly the peers kmsg shows up here (this
 * node alone without kmsg; membership events are asynchronous, so within
 * 5 s); only the first 8 bytes of a larger buffer are written.
 */
TEST_F(popcorn, nodes_bitmap)
{
	unsigned long id = node_id(_metadata);
	uint64_t online = 0, want;
	long count;

	count = wait_nodes(id, NULL, 5000, &online, &want);
	ASSERT_LE(1, count) {
		TH_LOG("PCNTL_NODES: %ld (%s)", count, strerror(errno));
	}
	EXPECT_EQ(want, online) {
		TH_LOG("PCNTL_NODES %#llx, expected %#llx (kmsg %s here)",
		       (unsigned long long)online, (unsigned long long)want,
		       cohort_module_loaded("kmsg") ? "loaded" : "not loaded");
	}
	EXPECT_EQ(count, __builtin_popcountll(online));
	/* A larger buffer is fine; only the first 8 bytes are written. */
	{
		uint64_t big[2] = { 0, 0xdeadbeef };

		EXPECT_EQ(count, pcntl(PCNTL_NODES, (unsigned long)big, sizeof(big), 0));
		EXPECT_EQ(online, big[0]);
		EXPECT_EQ(0xdeadbeefULL, big[1]);
	}
}

/*
 * popcorn follows kmsg's membership: with kmsg loaded here, PCNTL_NODES
 * lists the peers kmsg shows up (every node with COHORT_REQUIRE_PEERS=1,
 * whose runner loads kmsg on the other nodes); after kmsg unloads, this
 * node alone.
 */
TEST_F_TIMEOUT(popcorn, nodes_follow_kmsg, 90)
{
	unsigned long id = node_id(_metadata), nr = 0;
	uint64_t online, want, self_only = UINT64_C(1) << id;
	bool loaded_here = false;
	long count;
	int ret;

	if (!cohort_module_file_present("kmsg"))
		SKIP(return, "%s/kmsg.ko not present", COHORT_MODULE_DIR);
	ASSERT_EQ(0, cohort_read_ulong(COHORT_NR_NODES, &nr));
	if (!cohort_module_loaded("kmsg")) {
		ret = cohort_load_module("kmsg");
		ASSERT_EQ(0, ret) {
			TH_LOG("loading kmsg: %s", strerror(-ret));
		}
		loaded_here = true;
	}
	if (cohort_require_peers()) {
		uint64_t all = nr >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << nr) - 1;

		count = wait_nodes(id, &all, 30000, &online, &want);
		EXPECT_EQ(all, online) {
			TH_LOG("PCNTL_NODES %#llx 30 s after kmsg loaded, expected every node %#llx (COHORT_REQUIRE_PEERS=1)",
			       (unsigned long long)online, (unsigned long long)all);
		}
	} else {
		/* Give peers that run kmsg time to connect, then compare. */
		cohort_msleep(3000);
		count = wait_nodes(id, NULL, 5000, &online, &want);
		EXPECT_EQ(want, online) {
			TH_LOG("PCNTL_NODES %#llx, kmsg shows %#llx up",
			       (unsigned long long)online, (unsigned long long)want);
		}
	}
	EXPECT_EQ(count, __builtin_popcountll(online));
	if (!loaded_here)
		return;
	ret = cohort_ensure_unloaded("kmsg");
	ASSERT_EQ(0, ret) {
		TH_LOG("unloading kmsg: %s", strerror(-ret));
	}
	count = wait_nodes(id, &self_only, 5000, &online, &want);
	EXPECT_EQ(self_only, online) {
		TH_LOG("PCNTL_NODES %#llx after kmsg unloaded, expected this node alone %#llx",
		       (unsigned long long)online, (unsigned long long)self_only);
	}
	EXPECT_EQ(1, count);
}

TEST_F(popcorn, nodes_bad_buffer)
{
	uint64_t online;

	errno = 0;
	EXPECT_EQ(-1, pcntl(PCNTL_NODES, (unsigned long)&online, 4, 0));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, pcntl(PCNTL_NODES, 0, sizeof(online), 0));
	EXPECT_EQ(EFAULT, errno);
	errno = 0;
	EXPECT_EQ(-1, pcntl(PCNTL_NODES, ~0UL - 3, sizeof(online), 0));
	EXPECT_EQ(EFAULT, errno);
}

TEST_F(popcorn, unknown_command_is_einval)
{
	static const unsigned int unknown[] = { 0, 9999, UINT_MAX };

	expect_cmds_fail(_metadata, unknown, ARRAY_SIZE(unknown), EINVAL);
}

/* The hub counts pcntl calls on the popcorn-owned slot. */
TEST_F(popcorn, calls_are_counted)
{
	struct cohort_ops a, b;
	int i;

	ASSERT_EQ(0, cohort_read_ops_checked(&a));
	for (i = 0; i < 10; i++)
		pcntl(PCNTL_WHERE, 0, 0, 0);
	ASSERT_EQ(0, cohort_read_ops_checked(&b));
	EXPECT_LE(a.calls[COHORT_SLOT_PCNTL] + 10, b.calls[COHORT_SLOT_PCNTL]);
}

/* ---- popcorn unloaded again ---- */

FIXTURE(zz_unloaded) {
};

FIXTURE_SETUP(zz_unloaded)
{
}

FIXTURE_TEARDOWN(zz_unloaded)
{
}

TEST_F_TIMEOUT(zz_unloaded, enosys_after_unload, 120)
{
	struct cohort_ops a, b;
	int ret;

	if (!cohort_module_file_present("popcorn"))
		SKIP(return, "%s/popcorn.ko not present", COHORT_MODULE_DIR);
	load_popcorn(_metadata);
	ASSERT_LE(0, pcntl(PCNTL_WHERE, 0, 0, 0));

	ret = cohort_unload_module("popcorn");
	ASSERT_EQ(0, ret) {
		TH_LOG("unloading popcorn: %s", strerror(-ret));
	}
	expect_pcntl_owner(_metadata, "-");
	ASSERT_EQ(0, cohort_read_ops_checked(&a));
	expect_enosys(_metadata);
	/* Nothing registered: nothing counted. */
	ASSERT_EQ(0, cohort_read_ops_checked(&b));
	EXPECT_EQ(a.calls[COHORT_SLOT_PCNTL], b.calls[COHORT_SLOT_PCNTL]);
}

TEST_HARNESS_MAIN
