// SPDX-License-Identifier: GPL-2.0
/*
 * Cohort hub: /sys/kernel/cohort identity files and the ops registry file.
 *
 * The node identity comes from three places that must agree: the kernel
 * command line (cohort.node_id=, cohort.nr_nodes=), sysfs, and what the host
 * runner exported (COHORT_NODE, COHORT_NODES).
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "cohort_test.h"

TEST(sysfs_dir_present)
{
	struct stat st;

	/* On a Cohort kernel this is a failure, never a skip. */
	ASSERT_EQ(0, stat(COHORT_SYSFS, &st)) {
		TH_LOG("%s: %s (not a Cohort kernel?)", COHORT_SYSFS,
		       strerror(errno));
	}
	ASSERT_TRUE(S_ISDIR(st.st_mode));
}

TEST(node_id_format)
{
	unsigned long id = 0;
	int ret;

	ret = cohort_read_ulong(COHORT_NODE_ID, &id);
	ASSERT_EQ(0, ret) {
		TH_LOG("%s: %s (want \"<decimal>\\n\")", COHORT_NODE_ID,
		       strerror(-ret));
	}
}

TEST(nr_nodes_format)
{
	unsigned long nr = 0;
	int ret;

	ret = cohort_read_ulong(COHORT_NR_NODES, &nr);
	ASSERT_EQ(0, ret) {
		TH_LOG("%s: %s (want \"<decimal>\\n\")", COHORT_NR_NODES,
		       strerror(-ret));
	}
	ASSERT_GE(nr, 1);
}

TEST(node_id_below_nr_nodes)
{
	unsigned long id = 0, nr = 0;

	ASSERT_EQ(0, cohort_read_ulong(COHORT_NODE_ID, &id));
	ASSERT_EQ(0, cohort_read_ulong(COHORT_NR_NODES, &nr));
	ASSERT_LT(id, nr);
}

TEST(node_id_matches_cmdline)
{
	unsigned long id = 0, cmd = 0;
	int ret;

	ASSERT_EQ(0, cohort_read_ulong(COHORT_NODE_ID, &id));
	ret = cohort_cmdline_ulong("cohort.node_id", &cmd);
	ASSERT_EQ(0, ret) {
		TH_LOG("cohort.node_id= on /proc/cmdline: %s", strerror(-ret));
	}
	ASSERT_EQ(cmd, id);
}

TEST(nr_nodes_matches_cmdline)
{
	unsigned long nr = 0, cmd = 0;
	int ret;

	ASSERT_EQ(0, cohort_read_ulong(COHORT_NR_NODES, &nr));
	ret = cohort_cmdline_ulong("cohort.nr_nodes", &cmd);
	ASSERT_EQ(0, ret) {
		TH_LOG("cohort.nr_nodes= on /proc/cmdline: %s", strerror(-ret));
	}
	ASSERT_EQ(cmd, nr);
}

TEST(node_id_matches_env)
{
	unsigned long id = 0, env = 0;
	int ret;

	ASSERT_EQ(0, cohort_read_ulong(COHORT_NODE_ID, &id));
	ret = cohort_env_ulong("COHORT_NODE", &env);
	if (ret == -ENOENT)
		SKIP(return, "COHORT_NODE not set: not started by the cohort runner");
	ASSERT_EQ(0, ret) {
		TH_LOG("COHORT_NODE=\"%s\" is not a number", getenv("COHORT_NODE"));
	}
	ASSERT_EQ(env, id);
}

TEST(nr_nodes_matches_env)
{
	unsigned long nr = 0, env = 0;
	int ret;

	ASSERT_EQ(0, cohort_read_ulong(COHORT_NR_NODES, &nr));
	ret = cohort_env_ulong("COHORT_NODES", &env);
	if (ret == -ENOENT)
		SKIP(return, "COHORT_NODES not set: not started by the cohort runner");
	ASSERT_EQ(0, ret) {
		TH_LOG("COHORT_NODES=\"%s\" is not a number", getenv("COHORT_NODES"));
	}
	ASSERT_EQ(env, nr);
}

TEST(ops_has_every_slot_in_order)
{
	struct cohort_ops ops;
	int ret, i;

	ret = cohort_read_ops(&ops);
	ASSERT_LE(0, ret) {
		TH_LOG("%s: %s (want \"<slot> <owner> <calls>\\n\" lines)",
		       COHORT_OPS, strerror(-ret));
	}
	ASSERT_EQ(COHORT_NR_SLOTS, ret);
	for (i = 0; i < COHORT_NR_SLOTS; i++) {
		EXPECT_STREQ(cohort_slot_name(i), ops.slot[i]) {
			TH_LOG("line %d", i + 1);
		}
	}
}

/*
 * Each slot is free ("-") or held by the module that the contract says
 * registers it, and a holder must actually be loaded.
 */
TEST(ops_owners_consistent_with_loaded_modules)
{
	struct cohort_ops ops;
	int s, m;

	ASSERT_EQ(0, cohort_read_ops_checked(&ops));
	for (s = 0; s < COHORT_NR_SLOTS; s++) {
		const char *want = "-";

		for (m = 0; m < COHORT_NR_MODULES; m++) {
			if (!(cohort_module(m)->slots & COHORT_SLOT_BIT(s)))
				continue;
			if (cohort_module_loaded(cohort_module(m)->name))
				want = cohort_module(m)->name;
		}
		EXPECT_STREQ(want, ops.owner[s]) {
			TH_LOG("slot %s", cohort_slot_name(s));
		}
	}
}

/* Counters never go backwards, whatever is loaded. */
TEST(ops_calls_never_decrease)
{
	struct cohort_ops before, after;
	size_t len = 64 * 4096;
	int status, s;
	char *p;
	pid_t pid;

	ASSERT_EQ(0, cohort_read_ops_checked(&before));

	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0x11, len);
	ASSERT_EQ(0, munmap(p, len));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(0);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));

	ASSERT_EQ(0, cohort_read_ops_checked(&after));
	for (s = 0; s < COHORT_NR_SLOTS; s++) {
		EXPECT_LE(before.calls[s], after.calls[s]) {
			TH_LOG("slot %s", cohort_slot_name(s));
		}
	}
}

TEST_HARNESS_MAIN
