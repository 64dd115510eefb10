// SPDX-License-Identifier: GPL-2.0
/*
 * kmsg's debugfs `hreq`: round trips through the hub's message API to the
 * bench-ping handler of a peer (what `cohort bench kmsg` reports beside
 * the link-thread `ping`). Bad commands fail with EINVAL; a peer that is
 * down fails at once with EHOSTDOWN and the file says so; a peer that is
 * up answers every request, and the file reads the timings. kmsg is left
 * loaded or not as it was found.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "cohort_test.h"

#define KMSG_DIR	"/sys/kernel/debug/kmsg"
#define HREQ		KMSG_DIR "/hreq"
/*
 * How long peers that also have kmsg loaded get to show up; with
 * COHORT_REQUIRE_PEERS=1 (the runner loaded kmsg on every other node)
 * every one must, within MESH_REQUIRED_MS.
 */
#define MESH_WAIT_MS		3000
#define MESH_REQUIRED_MS	30000

/* Write @cmd to the hreq file; 0 or -errno. */
static int hreq(const char *cmd)
{
	return cohort_write_file(HREQ, cmd);
}

/* Whether kmsg shows @node up; -errno if the peers file cannot be read. */
static int peer_up(unsigned long node)
{
	char state[16], ip[32];
	int ret = cohort_peer_state(node, state, sizeof(state), ip, sizeof(ip));

	return ret ? ret : !strcmp(state, "up");
}

/* Whether every other node is up: wait at most @ms for it. */
static bool wait_mesh(unsigned long me, unsigned long nr_nodes, int ms)
{
	long long deadline = cohort_now_ms() + ms;

	for (;;) {
		unsigned long n, up = 0;

		for (n = 0; n < nr_nodes; n++)
			up += n != me && peer_up(n) == 1;
		if (up == nr_nodes - 1)
			return true;
		if (cohort_now_ms() > deadline)
			return false;
		cohort_msleep(100);
	}
}

FIXTURE(hreq) {
	unsigned long node;
	unsigned long nr_nodes;
	bool loaded_here;
};

FIXTURE_SETUP(hreq)
{
	if (!cohort_module_file_present("kmsg"))
		SKIP(return, "kmsg.ko is not in " COHORT_MODULE_DIR);
	ASSERT_EQ(0, cohort_read_ulong(COHORT_NODE_ID, &self->node));
	ASSERT_EQ(0, cohort_read_ulong(COHORT_NR_NODES, &self->nr_nodes));
	self->loaded_here = !cohort_module_loaded("kmsg");
	ASSERT_EQ(0, cohort_ensure_loaded("kmsg"));
}

FIXTURE_TEARDOWN(hreq)
{
	if (self->loaded_here)
		EXPECT_EQ(0, cohort_ensure_unloaded("kmsg"));
}

TEST_F(hreq, bad_commands_are_einval)
{
	unsigned long peer = (self->node + 1) % self->nr_nodes;
	char cmd[64];

	EXPECT_EQ(0, access(HREQ, R_OK | W_OK));
	snprintf(cmd, sizeof(cmd), "%lu 1", self->node);
	EXPECT_EQ(-EINVAL, hreq(cmd));			/* to itself */
	snprintf(cmd, sizeof(cmd), "%lu 1", self->nr_nodes);
	EXPECT_EQ(-EINVAL, hreq(cmd));			/* no such node */
	EXPECT_EQ(-EINVAL, hreq("4294967296 1"));
	EXPECT_EQ(-EINVAL, hreq("x 1"));
	EXPECT_EQ(-EINVAL, hreq("-1 1"));
	EXPECT_EQ(-EINVAL, hreq("1"));
	EXPECT_EQ(-EINVAL, hreq(""));
	snprintf(cmd, sizeof(cmd), "%lu 1 2", peer);
	EXPECT_EQ(-EINVAL, hreq(cmd));			/* a word too many */
	snprintf(cmd, sizeof(cmd), "%lu 0", peer);
	EXPECT_EQ(-EINVAL, hreq(cmd));			/* count 0 */
	snprintf(cmd, sizeof(cmd), "%lu 100000001", peer);
	EXPECT_EQ(-EINVAL, hreq(cmd));			/* count too large */
}

/*
 * Every peer: one that is up answers COUNT requests and the file reads
 * the timings, and the types file counts them as bench pings; one that is
 * down fails at once, and the file says how.
 */
TEST_F_TIMEOUT(hreq, round_trips_through_the_hub, 90)
{
	unsigned long n;

	if (self->nr_nodes < 2)
		SKIP(return, "one-node cluster: no peer");
	if (cohort_require_peers()) {
		/* Then a peer that is down is a failure, not the other branch. */
		ASSERT_TRUE(wait_mesh(self->node, self->nr_nodes, MESH_REQUIRED_MS)) {
			TH_LOG("not every peer is up %d s after kmsg loaded here (COHORT_REQUIRE_PEERS=1)",
			       MESH_REQUIRED_MS / 1000);
		}
	} else if (!wait_mesh(self->node, self->nr_nodes, MESH_WAIT_MS)) {
		TH_LOG("not every peer has kmsg loaded: those must fail at once");
	}
	for (n = 0; n < self->nr_nodes; n++) {
		unsigned long node, count, total, min, avg, max;
		char cmd[64], buf[256], types[4096];
		long long start, took;
		int up, ret, err;

		if (n == self->node)
			continue;
		up = peer_up(n);
		ASSERT_LE(0, up);
		snprintf(cmd, sizeof(cmd), "%lu 20", n);
		start = cohort_now_ms();
		ret = hreq(cmd);
		took = cohort_now_ms() - start;
		ASSERT_LT(0, cohort_read_file(HREQ, buf, sizeof(buf)));
		if (!up) {
			EXPECT_EQ(-EHOSTDOWN, ret);
			EXPECT_GT(500, took) {
				TH_LOG("hreq to down node %lu took %lld ms", n, took);
			}
			ASSERT_EQ(3, sscanf(buf, "node=%lu count=%lu error=%d",
					    &node, &count, &err)) {
				TH_LOG("hreq reads '%s'", buf);
			}
			EXPECT_EQ(n, node);
			EXPECT_EQ(0, count);
			EXPECT_EQ(-EHOSTDOWN, err);
			continue;
		}
		EXPECT_EQ(0, ret) {
			TH_LOG("hreq to up node %lu: %d", n, ret);
		}
		ASSERT_EQ(6, sscanf(buf,
				    "node=%lu count=%lu total_ns=%lu min_ns=%lu avg_ns=%lu max_ns=%lu",
				    &node, &count, &total, &min, &avg, &max)) {
			TH_LOG("hreq reads '%s'", buf);
		}
		EXPECT_EQ(n, node);
		EXPECT_EQ(20, count);
		EXPECT_LT(0, min);
		EXPECT_LE(min, avg);
		EXPECT_LE(avg, max);
		EXPECT_LE(min * 20, total);
		/* They went out as the hub-level bench-ping type. */
		ASSERT_LT(0, cohort_read_file(KMSG_DIR "/types", types,
					      sizeof(types)));
		EXPECT_NE(NULL, strstr(types, "0x0101 bench-ping tx_msgs=")) {
			TH_LOG("types reads:\n%s", types);
		}
	}
}

TEST_HARNESS_MAIN
