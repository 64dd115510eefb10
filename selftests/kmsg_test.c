// SPDX-License-Identifier: GPL-2.0
/*
 * kmsg on one node: it loads and registers the msg slot, its debugfs view
 * matches the node's identity and heartbeat timeout (which cannot change
 * under it), bad commands fail with EINVAL, a ping to a
 * peer that is up succeeds and one to a peer that is down fails at once
 * instead of waiting. The runner loads kmsg on every other node and sets
 * COHORT_REQUIRE_PEERS=1: then every peer must come up. Tests that need
 * kmsg driven on several nodes at once (the mesh, echo, peer death) are
 * host-driven: see selftests/cluster/.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "cohort_test.h"

#define KMSG_DIR "/sys/kernel/debug/kmsg"
#define HEARTBEAT_PARAM "/sys/module/cohort/parameters/heartbeat_timeout_ms"

/* Write @cmd to a kmsg command file; 0 or -errno. */
static int kmsg_command(const char *file, const char *cmd)
{
	char path[128];

	snprintf(path, sizeof(path), KMSG_DIR "/%s", file);
	return cohort_write_file(path, cmd);
}

/*
 * Wait up to @ms for every peer to show "up" (or, with @any, one of them).
 * Returns the number of peers up; a peer's state is in @states.
 */
static int wait_peers_up(unsigned long self_node, unsigned long nr_nodes,
			 bool any, int ms, char states[][16])
{
	long long deadline = cohort_now_ms() + ms;
	char ip[32];
	unsigned long n;
	int up;

	for (;;) {
		up = 0;
		for (n = 0; n < nr_nodes && n < COHORT_MAX_NODES; n++) {
			if (n == self_node)
				continue;
			if (cohort_peer_state(n, states[n], 16, ip, sizeof(ip)))
				snprintf(states[n], 16, "missing");
			up += !strcmp(states[n], "up");
		}
		if (up == (int)nr_nodes - 1 || (any && up > 0) || cohort_now_ms() >= deadline)
			return up;
		cohort_msleep(100);
	}
}

FIXTURE(kmsg) {
	unsigned long node;
	unsigned long nr_nodes;
};

FIXTURE_SETUP(kmsg)
{
	if (!cohort_module_file_present("kmsg"))
		SKIP(return, "kmsg.ko is not in " COHORT_MODULE_DIR);
	ASSERT_EQ(0, cohort_read_ulong(COHORT_NODE_ID, &self->node));
	ASSERT_EQ(0, cohort_read_ulong(COHORT_NR_NODES, &self->nr_nodes));
	ASSERT_EQ(0, cohort_ensure_loaded("kmsg"));
}

FIXTURE_TEARDOWN(kmsg)
{
}

TEST_F(kmsg, registers_msg_slot)
{
	struct cohort_ops ops;

	ASSERT_EQ(0, cohort_read_ops_checked(&ops));
	EXPECT_STREQ("msg", ops.slot[COHORT_SLOT_MSG]);
	EXPECT_STREQ("kmsg", ops.owner[COHORT_SLOT_MSG]);
	EXPECT_EQ(0, access(KMSG_DIR "/params", R_OK));
	EXPECT_EQ(0, access(KMSG_DIR "/peers", R_OK));
	EXPECT_EQ(0, access(KMSG_DIR "/ping", W_OK));
}

TEST_F(kmsg, params_match_identity)
{
	unsigned long node = 0, nr = 0, hb = 0;
	char buf[512], want[64];

	ASSERT_LT(0, cohort_read_file(KMSG_DIR "/params", buf, sizeof(buf)));
	ASSERT_EQ(2, sscanf(buf, "node=%lu nr_nodes=%lu", &node, &nr));
	ASSERT_EQ(0, cohort_read_ulong(HEARTBEAT_PARAM, &hb));
	snprintf(want, sizeof(want), "heartbeat_timeout_ms=%lu ", hb);
	EXPECT_EQ(self->node, node);
	EXPECT_EQ(self->nr_nodes, nr);
	EXPECT_NE(NULL, strstr(buf, want)) {
		TH_LOG("params: %s, want %s (cohort.heartbeat_timeout_ms)", buf, want);
	}
}

/*
 * cohort.heartbeat_timeout_ms cannot change under kmsg (what kmsg runs
 * with is always what the parameter shows), and a value out of 1000 to
 * 600000 ms is refused with EINVAL, loaded or not.
 */
TEST_F(kmsg, heartbeat_timeout_param_is_checked)
{
	unsigned long hb = 0, after = 0;
	char val[32];

	ASSERT_EQ(0, cohort_read_ulong(HEARTBEAT_PARAM, &hb));
	snprintf(val, sizeof(val), "%lu\n", hb + 1000);
	EXPECT_EQ(-EBUSY, cohort_write_file(HEARTBEAT_PARAM, val));
	EXPECT_EQ(-EINVAL, cohort_write_file(HEARTBEAT_PARAM, "999\n"));
	EXPECT_EQ(-EINVAL, cohort_write_file(HEARTBEAT_PARAM, "600001\n"));
	EXPECT_EQ(-EINVAL, cohort_write_file(HEARTBEAT_PARAM, "soon\n"));
	ASSERT_EQ(0, cohort_read_ulong(HEARTBEAT_PARAM, &after));
	EXPECT_EQ(hb, after);
}

TEST_F_TIMEOUT(kmsg, peers_match_command_line, 60)
{
	char hub[4096], state[16], ip[32], want[64];
	unsigned long n;

	ASSERT_LT(0, cohort_read_file(COHORT_SYSFS "/peers", hub, sizeof(hub)));
	if (cohort_require_peers()) {
		static char states[COHORT_MAX_NODES][16];

		wait_peers_up(self->node, self->nr_nodes, false, 30000, states);
	}
	for (n = 0; n < self->nr_nodes; n++) {
		char *line, *save = NULL, copy[4096];
		bool found = false;

		ASSERT_EQ(0, cohort_peer_state(n, state, sizeof(state), ip, sizeof(ip)));
		if (n == self->node) {
			EXPECT_STREQ("self", state);
		} else if (cohort_require_peers()) {
			EXPECT_STREQ("up", state) {
				TH_LOG("node %lu, 30 s after kmsg loaded here (COHORT_REQUIRE_PEERS=1)",
				       n);
			}
		} else {
			/* Either, depending on whether it runs kmsg. */
			EXPECT_TRUE(!strcmp(state, "up") || !strcmp(state, "down")) {
				TH_LOG("node %lu: state '%s'", n, state);
			}
		}
		memcpy(copy, hub, sizeof(copy));
		snprintf(want, sizeof(want), "%lu %s", n, ip);
		for (line = strtok_r(copy, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			found |= !strcmp(line, want);
		EXPECT_TRUE(found) {
			TH_LOG("no '%s' in /sys/kernel/cohort/peers", want);
		}
	}
}

TEST_F(kmsg, bad_commands_are_einval)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "%lu 1", self->node);
	EXPECT_EQ(-EINVAL, kmsg_command("ping", cmd));		/* to itself */
	snprintf(cmd, sizeof(cmd), "%lu 1", self->nr_nodes);
	EXPECT_EQ(-EINVAL, kmsg_command("ping", cmd));		/* no such node */
	EXPECT_EQ(-EINVAL, kmsg_command("ping", "64 1"));
	EXPECT_EQ(-EINVAL, kmsg_command("ping", "x 1"));
	EXPECT_EQ(-EINVAL, kmsg_command("ping", "-1 1"));
	EXPECT_EQ(-EINVAL, kmsg_command("ping", "0"));
	EXPECT_EQ(-EINVAL, kmsg_command("ping", "0 1 2"));
	EXPECT_EQ(-EINVAL, kmsg_command("ping", ""));
	snprintf(cmd, sizeof(cmd), "%lu 0", (self->node + 1) % self->nr_nodes);
	EXPECT_EQ(-EINVAL, kmsg_command("ping", cmd));		/* count 0 */
	snprintf(cmd, sizeof(cmd), "%lu 99999999 1", (self->node + 1) % self->nr_nodes);
	EXPECT_EQ(-EINVAL, kmsg_command("echo", cmd));		/* > 4 MiB */
	EXPECT_EQ(-EINVAL, kmsg_command("stream", "0 0"));
	EXPECT_EQ(-EINVAL, kmsg_command("inject", "99 bad-magic"));
}

/*
 * Every peer that is up answers pings. With COHORT_REQUIRE_PEERS=1 every
 * peer must be up within 30 s of kmsg loading here (the others run kmsg
 * already); without it, a node whose peers do not run kmsg skips.
 */
TEST_F_TIMEOUT(kmsg, ping_up_peers, 60)
{
	static char states[COHORT_MAX_NODES][16];
	bool strict = cohort_require_peers();
	unsigned long n;
	int up;

	if (self->nr_nodes == 1)
		SKIP(return, "one-node cluster: no peer to ping");
	up = wait_peers_up(self->node, self->nr_nodes, !strict,
			   strict ? 30000 : 5000, states);
	if (strict) {
		for (n = 0; n < self->nr_nodes; n++) {
			if (n == self->node)
				continue;
			EXPECT_STREQ("up", states[n]) {
				TH_LOG("node %lu is not up 30 s after kmsg loaded here (COHORT_REQUIRE_PEERS=1)",
				       n);
			}
		}
		ASSERT_EQ((int)self->nr_nodes - 1, up);
	} else if (!up) {
		SKIP(return,
		     "no peer is up in 5 s: load kmsg on another node (COHORT_REQUIRE_PEERS=1 makes this a failure)");
	}
	for (n = 0; n < self->nr_nodes; n++) {
		char cmd[64], res[256], want[64];
		int ret;

		if (n == self->node || strcmp(states[n], "up"))
			continue;
		snprintf(cmd, sizeof(cmd), "%lu 5", n);
		ret = kmsg_command("ping", cmd);
		EXPECT_EQ(0, ret) {
			TH_LOG("ping 5 to up node %lu: %s", n, strerror(-ret));
		}
		ASSERT_LT(0, cohort_read_file(KMSG_DIR "/ping", res, sizeof(res)));
		snprintf(want, sizeof(want), "node=%lu count=5 ", n);
		EXPECT_EQ(0, strncmp(res, want, strlen(want))) {
			TH_LOG("ping result '%s', expected it to start with '%s'", res, want);
		}
		EXPECT_EQ(NULL, strstr(res, "error=")) {
			TH_LOG("ping result '%s'", res);
		}
	}
}

/*
 * A request never waits on a peer known to be down: EHOSTDOWN in under
 * 500 ms. Needs a peer that is down, which a lone node has; under the
 * runner every peer is up, and selftests/cluster/06-peer-death.sh checks
 * the same on a peer whose node died.
 */
TEST_F(kmsg, ping_down_peer_fails_at_once)
{
	unsigned long n;
	int tried = 0;

	for (n = 0; n < self->nr_nodes; n++) {
		char state[16], ip[32], cmd[64];
		long long start, took;
		int ret;

		if (n == self->node)
			continue;
		ASSERT_EQ(0, cohort_peer_state(n, state, sizeof(state), ip, sizeof(ip)));
		if (strcmp(state, "down"))
			continue;
		snprintf(cmd, sizeof(cmd), "%lu 5", n);
		start = cohort_now_ms();
		ret = kmsg_command("ping", cmd);
		took = cohort_now_ms() - start;
		/* It may have come up meanwhile: then it must have answered. */
		ASSERT_EQ(0, cohort_peer_state(n, state, sizeof(state), ip, sizeof(ip)));
		if (ret == 0 && !strcmp(state, "up"))
			continue;
		tried++;
		EXPECT_EQ(-EHOSTDOWN, ret) {
			TH_LOG("ping to down node %lu: %s", n, strerror(-ret));
		}
		EXPECT_GT(500, took) {
			TH_LOG("a ping to down node %lu took %lld ms", n, took);
		}
	}
	if (!tried)
		SKIP(return,
		     "no peer is down (every one runs kmsg): selftests/cluster/06-peer-death.sh checks a ping to a dead peer");
}

TEST_F(kmsg, unload_releases_slot)
{
	struct cohort_ops ops;

	ASSERT_EQ(0, cohort_ensure_unloaded("kmsg"));
	ASSERT_EQ(0, cohort_read_ops_checked(&ops));
	EXPECT_STREQ("-", ops.owner[COHORT_SLOT_MSG]);
	EXPECT_NE(0, access(KMSG_DIR "/peers", F_OK));
	/* And it comes back. */
	ASSERT_EQ(0, cohort_load_module("kmsg"));
	ASSERT_EQ(0, cohort_ensure_unloaded("kmsg"));
}

TEST_HARNESS_MAIN
