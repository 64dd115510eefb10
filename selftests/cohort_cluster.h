/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The cluster as a migration test on one node sees it, and the workers
 * such a test runs: children that move themselves with pcntl(2) and report
 * through a pipe held at their origin. Shared by migrate_test and
 * state_test; include it once, after kselftest_harness.h and
 * cohort_test.h.
 *
 * cohort_cluster_setup() loads kmsg.ko and popcorn.ko here if they are not
 * loaded (cohort_cluster_unload() unloads what it loaded); other nodes
 * must have them loaded already, which only the host can do: the runner
 * does, and sets COHORT_REQUIRE_PEERS=1. Then a test that needs more peers
 * than are up fails; it skips only when the cluster has too few nodes.
 * Without the variable (a binary run by hand on a lone node), tests that
 * need a peer skip, saying so.
 */
#ifndef COHORT_CLUSTER_H
#define COHORT_CLUSTER_H

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

/* ---- the cluster as this node sees it, set up once in main() ---- */

static int g_node = -1;			/* this node */
static unsigned long g_nr_nodes;	/* nodes in the cluster */
static uint64_t g_online;		/* PCNTL_NODES after setup */
static int g_nodes[COHORT_MAX_NODES];	/* online nodes, ascending, us included */
static int g_nnodes;
static bool g_strict;			/* COHORT_REQUIRE_PEERS=1 */
static bool g_loaded_kmsg, g_loaded_gobelins, g_loaded_popcorn; /* by this binary */
static char g_setup_error[256];		/* empty when setup worked */

static inline long where(pid_t pid)
{
	return pcntl(PCNTL_WHERE, pid, 0, 0);
}

static inline uint64_t online_nodes(void)
{
	uint64_t bm = 0;

	if (pcntl(PCNTL_NODES, (unsigned long)&bm, sizeof(bm), 0) < 0)
		return 0;
	return bm;
}

static inline uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/* Loads @name unless it is loaded; false (with g_setup_error) on failure. */
/* Read exactly @len bytes from @fd within @ms; returns bytes read. */
/* Why the last read_within() returned short, for a test's log. */
static char g_read_within_why[96];

static inline size_t read_within(int fd, void *buf, size_t len, int ms)
{
	uint64_t start = now_ms(), deadline = start + ms;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	ssize_t n;
	int r;

	g_read_within_why[0] = 0;
	while (got < len) {
		int64_t left = deadline - now_ms();

		if (left <= 0) {
			snprintf(g_read_within_why, sizeof(g_read_within_why),
				 "no data within %d ms (%llu ms passed)", ms,
				 (unsigned long long)(now_ms() - start));
			break;
		}
		r = poll(&pfd, 1, left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(g_read_within_why, sizeof(g_read_within_why),
				 "poll: %d (%s) after %llu ms", r, r ? strerror(errno) : "time-out",
				 (unsigned long long)(now_ms() - start));
			break;
		}
		n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(g_read_within_why, sizeof(g_read_within_why),
				 "read: %zd (%s) after %llu ms", n, n ? strerror(errno) : "end of file",
				 (unsigned long long)(now_ms() - start));
			break;
		}
		got += n;
	}
	return got;
}

/*
 * waitpid() with a deadline: 0 with the child's status, or -1 after killing
 * it with SIGKILL when it did not end in @ms.
 */
static inline int wait_within(pid_t pid, int ms, int *status)
{
	uint64_t deadline = now_ms() + ms;
	pid_t r;

	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0)
			return -1;
		if (now_ms() >= deadline)
			break;
		cohort_msleep(5);
	}
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	return -1;
}

/* Log every line child @pid (a @who) reported on pipe @fd so far. */
static inline void log_child_lines(struct __test_metadata *_metadata, int fd,
				   const char *who, pid_t pid)
{
	char buf[8192], *line, *nl;
	size_t len = 0;
	ssize_t n;

	fcntl(fd, F_SETFL, O_NONBLOCK);
	while (len < sizeof(buf) - 1 &&
	       (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += n;
	buf[len] = '\0';
	for (line = buf; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		TH_LOG("%s %d: %s", who, pid, line);
		if (!nl)
			break;
	}
}

static inline bool cluster_load(const char *name, bool *loaded)
{
	int ret;

	if (cohort_module_loaded(name))
		return true;
	ret = cohort_load_module(name);
	if (ret) {
		snprintf(g_setup_error, sizeof(g_setup_error), "loading %s: %s",
			 name, strerror(-ret));
		return false;
	}
	*loaded = true;
	return true;
}

/* Whether gobelins' debugfs stats say its container layer is synced. */
static inline bool gobelins_synced(void)
{
	char line[128];
	bool synced = false;
	FILE *f = fopen("/sys/kernel/debug/gobelins/stats", "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (!strcmp(line, "synced 1\n"))
			synced = true;
	fclose(f);
	return synced;
}

/* Reads the cluster, loads the modules here, waits for the peers. */
static inline void cohort_cluster_setup(const char *prog)
{
	unsigned long id = 0;
	uint64_t full, deadline;
	int ret, n;

	g_strict = cohort_require_peers();
	ret = cohort_read_ulong(COHORT_NODE_ID, &id);
	if (!ret)
		ret = cohort_read_ulong(COHORT_NR_NODES, &g_nr_nodes);
	if (ret) {
		snprintf(g_setup_error, sizeof(g_setup_error),
			 "reading %s: %s", COHORT_SYSFS, strerror(-ret));
		return;
	}
	g_node = id;
	/* popcorn moves a process's memory through gobelins' containers. */
	if (!cluster_load("kmsg", &g_loaded_kmsg) ||
	    !cluster_load("gobelins", &g_loaded_gobelins) ||
	    !cluster_load("popcorn", &g_loaded_popcorn))
		return;
	/* Peers that run kmsg join within a second or two of it loading. */
	full = g_nr_nodes >= 64 ? ~0ULL : (1ULL << g_nr_nodes) - 1;
	deadline = now_ms() + (g_strict ? 30000 : 5000);
	while ((g_online = online_nodes()) != full && now_ms() < deadline)
		cohort_msleep(100);
	for (n = 0; n < COHORT_MAX_NODES; n++)
		if (g_online & (1ULL << n))
			g_nodes[g_nnodes++] = n;
	/*
	 * With peers up, gobelins joins (or boots with) them first: until
	 * then a migration is EAGAIN. Alone, it waits for peers to come.
	 */
	if (g_nnodes > 1) {
		deadline = now_ms() + 30000;
		while (!gobelins_synced() && now_ms() < deadline)
			cohort_msleep(100);
		if (!gobelins_synced())
			printf("# %s: gobelins not synced with its peers after 30 s\n", prog);
	}
	printf("# %s: node %d of %lu, online:", prog, g_node, g_nr_nodes);
	for (n = 0; n < g_nnodes; n++)
		printf(" %d", g_nodes[n]);
	printf("%s%s%s%s\n", g_strict ? " (peers required)" : "",
	       g_loaded_kmsg ? ", loaded kmsg" : "",
	       g_loaded_gobelins ? ", loaded gobelins" : "",
	       g_loaded_popcorn ? ", loaded popcorn" : "");
	fflush(stdout);
}

/* The i-th online node other than this one (i from 0). */
static inline int peer(int i)
{
	int n;

	for (n = 0; n < g_nnodes; n++)
		if (g_nodes[n] != g_node && i-- == 0)
			return g_nodes[n];
	return -1;
}

/*
 * Returns true when @want other nodes are up; otherwise skips (one-node
 * cluster; a 2-node cluster for a 3-node test; peers without modules when
 * not required) or fails.
 */
static inline bool need_peers(struct __test_metadata *_metadata, int want)
{
	int have = g_nnodes - 1;

	if (g_setup_error[0]) {
		TH_LOG("setup: %s", g_setup_error);
		_metadata->exit_code = KSFT_FAIL;
		return false;
	}
	if (have >= want)
		return true;
	if (g_nr_nodes == 1) {
		SKIP(return false, "one-node cluster: no other node to migrate to");
	}
	if ((unsigned long)want + 1 > g_nr_nodes) {
		SKIP(return false, "needs %d nodes, the cluster has %lu",
		     want + 1, g_nr_nodes);
	}
	if (!g_strict && have == 0) {
		SKIP(return false,
		     "no other node of %lu is up here: they need kmsg and popcorn loaded (COHORT_REQUIRE_PEERS=1 makes this a failure)",
		     g_nr_nodes);
	}
	TH_LOG("only %d of the %lu nodes are up (PCNTL_NODES %#llx); need %d",
	       g_nnodes, g_nr_nodes, (unsigned long long)g_online, want + 1);
	_metadata->exit_code = KSFT_FAIL;
	return false;
}

#define NEED_PEERS(n) do { if (!need_peers(_metadata, (n))) return; } while (0)
#define NEED_SETUP() NEED_PEERS(0)

/* Unloads what cohort_cluster_setup() loaded, popcorn first, kmsg last. */
static inline void cohort_cluster_unload(struct __test_metadata *_metadata)
{
	int ret;

	if (g_loaded_popcorn) {
		ret = cohort_ensure_unloaded("popcorn");
		EXPECT_EQ(0, ret) {
			TH_LOG("unloading popcorn: %s", strerror(-ret));
		}
	}
	if (g_loaded_gobelins) {
		ret = cohort_ensure_unloaded("gobelins");
		EXPECT_EQ(0, ret) {
			TH_LOG("unloading gobelins: %s", strerror(-ret));
		}
	}
	if (g_loaded_kmsg) {
		ret = cohort_ensure_unloaded("kmsg");
		EXPECT_EQ(0, ret) {
			TH_LOG("unloading kmsg: %s", strerror(-ret));
		}
	}
	if (!g_loaded_popcorn && !g_loaded_gobelins && !g_loaded_kmsg)
		TH_LOG("kmsg, gobelins and popcorn were loaded before: left loaded");
}

/*
 * The last test of a binary, after every other (the harness runs them in
 * file order): unload what cohort_cluster_setup() loaded. Expand at the
 * end of the file.
 */
#define COHORT_CLUSTER_CLEANUP_TEST() \
	FIXTURE(zz_cleanup) { \
		int unused; \
	}; \
	FIXTURE_SETUP(zz_cleanup) \
	{ \
	} \
	FIXTURE_TEARDOWN(zz_cleanup) \
	{ \
	} \
	TEST_F_TIMEOUT(zz_cleanup, unload_modules_loaded_here, 60) \
	{ \
		cohort_cluster_unload(_metadata); \
	}

/* main() of a migration test binary named @prog. */
static inline int cohort_cluster_main(int argc, char **argv, const char *prog)
{
	/* A write to a pipe whose reader died fails; it does not kill the test. */
	signal(SIGPIPE, SIG_IGN);
	/* Listing or help needs no cluster (and must not load modules). */
	if (argc < 2 || (strcmp(argv[1], "-l") && strcmp(argv[1], "-h")))
		cohort_cluster_setup(prog);
	return test_harness_run(argc, argv);
}

/* ---- in a worker ---- */

/* The write end of the worker's report pipe (text lines). */
static int w_rep = -1;

static inline void wvlog(const char *fmt, va_list ap)
{
	char buf[512];
	int n;

	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(w_rep, buf, n) < 0)
		return;
}

static inline void __attribute__((format(printf, 1, 2)))
wlog(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	wvlog(fmt, ap);
	va_end(ap);
}

/* A worker reports a failed check and exits 1. */
static inline void __attribute__((noreturn, format(printf, 2, 3)))
wfail(int line, const char *fmt, ...)
{
	char buf[480];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	wlog("FAILED at line %d on node %ld: %s", line, where(0), buf);
	_exit(1);
}

#define WCHECK(cond, fmt, ...) do { \
	if (!(cond)) \
		wfail(__LINE__, "%s: " fmt, #cond, ##__VA_ARGS__); \
} while (0)

/* A worker moves itself to @node and checks it got there. */
#define WMIGRATE(node) do { \
	int _n = (node); \
	long _r, _w; \
	errno = 0; \
	_r = pcntl(PCNTL_MIGRATE, 0, _n, 0); \
	WCHECK(_r == 0, "PCNTL_MIGRATE(0, %d) = %ld (%s)", _n, _r, strerror(errno)); \
	_w = where(0); \
	WCHECK(_w == _n, "after migrating to node %d PCNTL_WHERE says %ld", _n, _w); \
} while (0)

/*
 * Unmap the MAP_SHARED mappings inherited from the harness (its test
 * metadata, results, teardown flag): migration refuses shared writable
 * memory, and a worker never uses them.
 */
static inline void drop_shared_mappings(void)
{
	static char maps[256 * 1024];
	static unsigned long ranges[512][2];
	size_t len = 0, nr = 0, i;
	char *line, *nl;
	ssize_t n;
	int fd;

	fd = open("/proc/self/maps", O_RDONLY);
	if (fd < 0)
		_exit(90);
	while (len < sizeof(maps) - 1 &&
	       (n = read(fd, maps + len, sizeof(maps) - 1 - len)) > 0)
		len += n;
	close(fd);
	maps[len] = '\0';
	for (line = maps; *line && nr < 512; line = nl + 1) {
		unsigned long a, b;
		char perms[8];

		nl = strchr(line, '\n');
		if (!nl)
			break;
		if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3 &&
		    perms[3] == 's') {
			ranges[nr][0] = a;
			ranges[nr][1] = b;
			nr++;
		}
	}
	for (i = 0; i < nr; i++)
		if (munmap((void *)ranges[i][0], ranges[i][1] - ranges[i][0]))
			_exit(91);
}

/* ---- kids: children that move and report to the test through pipes ---- */

/*
 * A kid runs a function of the test in a child process (that unmapped the
 * harness's shared memory, so that it may migrate) and talks to the test
 * through four pipes; wready(), wsend(), wait_go() and WCHECK()/wfail()
 * are its side, start_kid(), kid_ready() and finish_kid() the test's.
 */
struct kid {
	pid_t pid;
	int rep;	/* read end of the report pipe (text) */
	int data;	/* read end of the data pipe (binary) */
	int ready;	/* read end of the ready pipe */
	int go;		/* write end of the go pipe: closing it lets the kid end */
	bool finished;	/* finish_kid() ran */
};

/* In a kid: the write ends of its pipes (w_rep is above). */
static int w_data = -1, w_ready = -1, w_go = -1;

/*
 * The test's ends of the pipes of the kids it runs: a new kid closes them,
 * so that a kid's go pipe ends when the test closes it, whatever other
 * kids were started after it.
 */
static int g_kid_fds[64];
static int g_nr_kid_fds;

static inline void keep_kid_fd(int fd)
{
	if (g_nr_kid_fds < (int)ARRAY_SIZE(g_kid_fds))
		g_kid_fds[g_nr_kid_fds++] = fd;
}

static inline void close_kid_fd(int fd)
{
	int i;

	for (i = 0; i < g_nr_kid_fds; i++)
		if (g_kid_fds[i] == fd) {
			g_kid_fds[i] = g_kid_fds[--g_nr_kid_fds];
			break;
		}
	close(fd);
}

/* In a new child: close the test's ends of every kid's pipes. */
static inline void close_kid_fds(void)
{
	int i;

	for (i = 0; i < g_nr_kid_fds; i++)
		close(g_kid_fds[i]);
	g_nr_kid_fds = 0;
}

/* A kid tells the test it reached its waiting point. */
static inline void wready(void)
{
	if (write(w_ready, "r", 1) != 1)
		wfail(__LINE__, "ready: %s", strerror(errno));
}

/* A kid sends a pid to the test. */
static inline void wsend(pid_t pid)
{
	if (write(w_data, &pid, sizeof(pid)) != sizeof(pid))
		wfail(__LINE__, "data: %s", strerror(errno));
}

/*
 * A kid waits until the test closes its go pipe. The read is an
 * interruptible sleep: a migration another process asks for interrupts it
 * and it goes on where the kid then runs.
 */
static inline void wait_go(void)
{
	char c;

	if (read(w_go, &c, 1) != 0)
		wfail(__LINE__, "go: %s", strerror(errno));
}

/* Runs @fn(@arg) in a new kid; its exit status is what @fn returns. */
static inline void start_kid(struct __test_metadata *_metadata, struct kid *k,
			     int (*fn)(void *), void *arg)
{
	int rep[2], data[2], ready[2], go[2];

	ASSERT_EQ(0, pipe(rep));
	ASSERT_EQ(0, pipe(data));
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(go));
	fflush(stdout);
	fflush(stderr);
	k->finished = false;
	k->pid = fork();
	ASSERT_LE(0, k->pid);
	if (k->pid == 0) {
		close_kid_fds();
		close(rep[0]);
		close(data[0]);
		close(ready[0]);
		close(go[1]);
		w_rep = rep[1];
		w_data = data[1];
		w_ready = ready[1];
		w_go = go[0];
		drop_shared_mappings();
		_exit(fn(arg) & 0xff);
	}
	close(rep[1]);
	close(data[1]);
	close(ready[1]);
	close(go[0]);
	k->rep = rep[0];
	k->data = data[0];
	k->ready = ready[0];
	k->go = go[1];
	keep_kid_fd(k->rep);
	keep_kid_fd(k->data);
	keep_kid_fd(k->ready);
	keep_kid_fd(k->go);
}

/* Whether the kid said it is ready within @ms. */
static inline bool kid_ready(struct kid *k, int ms)
{
	char c;

	return read_within(k->ready, &c, 1, ms) == 1;
}

/*
 * Let the kid end (close its go pipe), wait for it (SIGKILL after @ms; a
 * time-out fails the test), log its reports and close its pipes. Returns
 * its wait status; 0 for a kid already finished. Its pid stays in @k.
 */
static inline int finish_kid(struct __test_metadata *_metadata, struct kid *k,
			     int ms)
{
	int status = 0, ret;

	if (k->finished || k->pid <= 0)
		return 0;
	k->finished = true;
	close_kid_fd(k->go);
	ret = wait_within(k->pid, ms, &status);
	log_child_lines(_metadata, k->rep, "kid", k->pid);
	close_kid_fd(k->rep);
	close_kid_fd(k->data);
	close_kid_fd(k->ready);
	EXPECT_EQ(0, ret) {
		TH_LOG("kid %d did not end within %d ms: killed", k->pid, ms);
	}
	return status;
}

/* The kid exited with @code. */
#define EXPECT_EXITED(code, status) do { \
	int _s = (status); \
	EXPECT_TRUE(WIFEXITED(_s) && WEXITSTATUS(_s) == (code)) { \
		if (WIFEXITED(_s)) \
			TH_LOG("exit status %d, expected %d", WEXITSTATUS(_s), (code)); \
		else if (WIFSIGNALED(_s)) \
			TH_LOG("killed by signal %d (%s), expected exit status %d", \
			       WTERMSIG(_s), strsignal(WTERMSIG(_s)), (code)); \
		else \
			TH_LOG("wait status %#x, expected exit status %d", _s, (code)); \
	} \
} while (0)

/* Runs @fn(@arg) in a kid and expects it to end with status 0 within @ms. */
#define RUN_KID(fn, arg, ms) do { \
	struct kid _k; \
	start_kid(_metadata, &_k, (fn), (arg)); \
	EXPECT_EXITED(0, finish_kid(_metadata, &_k, (ms))); \
} while (0)

#endif /* COHORT_CLUSTER_H */
