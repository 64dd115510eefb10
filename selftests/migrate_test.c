// SPDX-License-Identifier: GPL-2.0
/*
 * Process migration with pcntl(2) PCNTL_MIGRATE (popcorn.ko): memory that
 * follows on demand, forwarded file calls, identity, signals, exit status,
 * fork on a remote node, errors, and many migrations in a row.
 *
 * Every migrating process is a "worker": a child of the test that first
 * unmaps the harness's MAP_SHARED bookkeeping (a shared writable mapping
 * cannot migrate), then runs a function and reports through pipes held at
 * the origin (a worker on another node writes to them through forwarding).
 * A worker failing a check writes why to its report pipe and exits 1; the
 * test logs every report line.
 *
 * Module loading and the peer rules are cohort_cluster.h's.
 */
#include <dirent.h>
#include <grp.h>
#include <sched.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <termios.h>
#include <ucontext.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <linux/sched.h>

#include "kselftest_harness.h"
#include "cohort_test.h"
#include "cohort_cluster.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* ---- patterns ---- */

static inline uint64_t pat(uint64_t seed, uint64_t i)
{
	uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ULL ^ (seed + 1) * 0xD6E8FEB86659FD93ULL;

	x ^= x >> 29;
	return x * 0xBF58476D1CE4E5B9ULL;
}

static void __attribute__((noinline)) fill(void *p, size_t len, uint64_t seed)
{
	uint64_t *q = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		q[i] = pat(seed, i);
}

/* Index of the first word of @p that is not @seed's pattern, or -1. */
static long __attribute__((noinline)) check(const void *p, size_t len, uint64_t seed)
{
	const uint64_t *q = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		if (q[i] != pat(seed, i))
			return i;
	return -1;
}

/*
 * Describe how @p differs from @seed's pattern: pages that differ, the
 * first bad word, and how many bad pages are all zeroes (a page that was
 * never brought over and was filled afresh).
 */
static void describe_mismatch(char *out, size_t size, const void *p, size_t len,
			      uint64_t seed)
{
	const uint64_t *q = p;
	size_t words = len / 8, pages = (words + 511) / 512, pg, i, bad = 0, zero = 0;
	long first = -1;

	for (pg = 0; pg < pages; pg++) {
		bool differs = false, zeroes = true;

		for (i = pg * 512; i < (pg + 1) * 512 && i < words; i++) {
			if (q[i] != pat(seed, i)) {
				differs = true;
				if (first < 0)
					first = i;
			}
			if (q[i])
				zeroes = false;
		}
		bad += differs;
		zero += differs && zeroes;
	}
	if (first < 0) {
		snprintf(out, size, "no difference now");
		return;
	}
	snprintf(out, size,
		 "%zu of %zu pages differ (%zu of them all zeroes); first at page %ld word %ld: %#llx, expected %#llx",
		 bad, pages, zero, first / 512, first % 512, (unsigned long long)q[first],
		 (unsigned long long)pat(seed, first));
}

/* ---- workers ---- */


/* A worker checks a buffer (whole pages) against @seed's pattern. */
#define WCHECK_MEM(p, len, seed, fmt, ...) do { \
	if (check((p), (len), (seed)) >= 0) { \
		char _d[256]; \
		describe_mismatch(_d, sizeof(_d), (p), (len), (seed)); \
		wfail(__LINE__, fmt ": %s", ##__VA_ARGS__, _d); \
	} \
} while (0)

/* Process state letter from /proc/PID/stat, or 0. */
static char proc_state(pid_t pid)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (cohort_read_file(path, buf, sizeof(buf)) <= 0)
		return 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/* Wait until @pid sleeps in state @st ('S', 'D'); false after @ms. */
static bool wait_state(pid_t pid, char st, int ms)
{
	uint64_t deadline = now_ms() + ms;

	while (proc_state(pid) != st) {
		if (now_ms() >= deadline)
			return false;
		cohort_msleep(5);
	}
	return true;
}

/* PCNTL_MIGRATE(pid, node, a2): 0 or the errno (pid is not truncated). */
static long migrate_errno(unsigned long pid, unsigned long node, unsigned long a2)
{
	errno = 0;
	if (pcntl(PCNTL_MIGRATE, pid, node, a2) == 0)
		return 0;
	return errno;
}

/* ---- memory ---- */

#define ANON_SIZE	(4UL << 20)
#define ANON_KEPT	(1UL << 20)	/* last part of it, not rewritten remotely */
#define UNTOUCHED_SIZE	(256UL << 10)
#define BRK_SIZE	((1UL << 20) + 3 * 4096 + 123)
#define BRK_MORE	(256UL << 10)
#define NEWMAP_SIZE	(512UL << 10)
#define GONE_SIZE	(64UL << 10)
#define STACK_BYTES	(256UL << 10)

static uint64_t g_data[4096] = { 1, 2, 3 };	/* .data */
static uint64_t g_bss[8192];			/* .bss */

/*
 * Memory written before, checked and partly rewritten on the peer
 * (anonymous mmap, brk heap, stack, .data, .bss), memory mapped, grown
 * and unmapped there, then all of it checked back home.
 */
static int __attribute__((noinline)) roundtrip_memory(void *arg)
{
	int home = g_node, other = *(int *)arg;
	uint64_t stack[STACK_BYTES / 8];
	char *anon, *untouched, *heap, *more, *newmap, *gone, *brk_remote;

	anon = mmap(NULL, ANON_SIZE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	untouched = mmap(NULL, UNTOUCHED_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	gone = mmap(NULL, GONE_SIZE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	WCHECK(anon != MAP_FAILED && untouched != MAP_FAILED && gone != MAP_FAILED,
	       "mmap: %s", strerror(errno));
	heap = sbrk(BRK_SIZE);
	WCHECK(heap != (void *)-1, "sbrk: %s", strerror(errno));

	fill(anon, ANON_SIZE - ANON_KEPT, 1);
	fill(anon + ANON_SIZE - ANON_KEPT, ANON_KEPT, 101);
	fill(untouched, UNTOUCHED_SIZE, 2);
	fill(heap, BRK_SIZE & ~7UL, 3);
	fill(stack, STACK_BYTES, 4);
	fill(g_data, sizeof(g_data), 5);
	fill(g_bss, sizeof(g_bss), 6);
	fill(gone, GONE_SIZE, 7);

	WCHECK(where(0) == home, "PCNTL_WHERE before: %ld", where(0));
	WMIGRATE(other);

	WCHECK_MEM(anon, ANON_SIZE - ANON_KEPT, 1, "anonymous buffer on node %d", other);
	WCHECK_MEM(anon + ANON_SIZE - ANON_KEPT, ANON_KEPT, 101,
		   "anonymous buffer (last MiB) on node %d", other);
	WCHECK_MEM(heap, BRK_SIZE & ~7UL, 3, "brk heap on node %d", other);
	WCHECK_MEM(stack, STACK_BYTES, 4, "stack array on node %d", other);
	WCHECK_MEM(g_data, sizeof(g_data), 5, ".data on node %d", other);
	WCHECK_MEM(g_bss, sizeof(g_bss), 6, ".bss on node %d", other);

	/* Rewrite there (the last ANON_KEPT of anon is only read there). */
	fill(anon, ANON_SIZE - ANON_KEPT, 11);
	fill(heap, BRK_SIZE & ~7UL, 13);
	fill(stack, STACK_BYTES, 14);
	fill(g_data, sizeof(g_data), 15);
	fill(g_bss, sizeof(g_bss), 16);
	/* Grow the heap, map and unmap there. */
	more = sbrk(BRK_MORE);
	WCHECK(more != (void *)-1, "sbrk on node %d: %s", other, strerror(errno));
	fill(more, BRK_MORE, 17);
	newmap = mmap(NULL, NEWMAP_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	WCHECK(newmap != MAP_FAILED, "mmap on node %d: %s", other, strerror(errno));
	fill(newmap, NEWMAP_SIZE, 18);
	WCHECK(munmap(gone, GONE_SIZE) == 0, "munmap on node %d: %s", other,
	       strerror(errno));
	brk_remote = sbrk(0);

	WMIGRATE(home);

	WCHECK_MEM(anon, ANON_SIZE - ANON_KEPT, 11,
		   "anonymous buffer back home (rewritten on node %d)", other);
	WCHECK_MEM(anon + ANON_SIZE - ANON_KEPT, ANON_KEPT, 101,
		   "anonymous buffer back home (last MiB, only read on node %d)", other);
	WCHECK_MEM(untouched, UNTOUCHED_SIZE, 2, "buffer never touched on node %d, back home",
		   other);
	WCHECK_MEM(heap, BRK_SIZE & ~7UL, 13, "brk heap back home");
	WCHECK(sbrk(0) == brk_remote, "program break back home %p, on node %d it was %p",
	       sbrk(0), other, brk_remote);
	WCHECK_MEM(more, BRK_MORE, 17, "heap grown on node %d, back home", other);
	WCHECK_MEM(stack, STACK_BYTES, 14, "stack array back home");
	WCHECK_MEM(g_data, sizeof(g_data), 15, ".data back home");
	WCHECK_MEM(g_bss, sizeof(g_bss), 16, ".bss back home");
	WCHECK_MEM(newmap, NEWMAP_SIZE, 18, "mapping made on node %d, back home", other);
	/* What was unmapped there is unmapped here. */
	{
		void *p = mmap(gone, GONE_SIZE, PROT_READ,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

		WCHECK(p == gone, "range unmapped on node %d is still mapped back home (mmap: %s)",
		       other, p == MAP_FAILED ? strerror(errno) : "other address");
	}
	/* And a write back home sticks. */
	fill(anon, ANON_SIZE, 21);
	WCHECK_MEM(anon, ANON_SIZE, 21, "rewrite back home");
	return 0;
}

FIXTURE(migrate) {
	int home;
	int other;
};

FIXTURE_SETUP(migrate)
{
	self->home = g_node;
	self->other = peer(0);
}

FIXTURE_TEARDOWN(migrate)
{
}

TEST_F_TIMEOUT(migrate, roundtrip_memory, 180)
{
	NEED_PEERS(1);
	RUN_KID(roundtrip_memory, &self->other, 150000);
}

/* ---- Read copies (gobelins' containers) ---- */

#define SHARED_PAGES	64
#define GOBELINS_STATS	"/sys/kernel/debug/gobelins/stats"

/* The value of gobelins counter @name on this node, or -1. */
static long gobelins_counter(const char *name)
{
	static char buf[4096];
	size_t len = strlen(name);
	ssize_t n;
	char *line;
	int fd;

	fd = open(GOBELINS_STATS, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	for (line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
		if (!strncmp(line, name, len) && line[len] == ' ')
			return strtol(line + len + 1, NULL, 10);
	return -1;
}

/*
 * Pages read on another node stay here too: the node reading them gets
 * read copies, the origin keeps its own, and reading them back home takes
 * no fault that waits for another node (remote_faults does not move).
 * Written there, they come back (one remote fault each).
 */
static int read_copies_stay(void *arg)
{
	int other = *(int *)arg;
	size_t ps = 4096, i;
	long before, after;
	char *buf;

	buf = mmap(NULL, SHARED_PAGES * ps, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	WCHECK(buf != MAP_FAILED, "mmap: %s", strerror(errno));
	fill(buf, SHARED_PAGES * ps, 81);
	WMIGRATE(other);
	WCHECK(check(buf, SHARED_PAGES * ps, 81) < 0, "the pages changed on node %d", other);
	/* Half of them written there. */
	fill(buf, SHARED_PAGES / 2 * ps, 82);
	WMIGRATE(g_node);
	/* Twice: the first warms what reading the counters touches. */
	before = gobelins_counter("remote_faults");
	before = gobelins_counter("remote_faults");
	WCHECK(before >= 0, "no remote_faults in %s", GOBELINS_STATS);
	/* The half only read there, as filled here (the pattern runs on). */
	for (i = SHARED_PAGES / 2 * ps / 8; i < SHARED_PAGES * ps / 8; i++)
		WCHECK(((uint64_t *)buf)[i] == pat(81, i), "word %zu changed", i);
	after = gobelins_counter("remote_faults");
	WCHECK(after == before,
	       "reading %d pages only read on node %d took %ld remote faults back home, expected 0",
	       SHARED_PAGES / 2, other, after - before);
	before = after;
	WCHECK(check(buf, SHARED_PAGES / 2 * ps, 82) < 0, "pages written on node %d", other);
	after = gobelins_counter("remote_faults");
	WCHECK(after - before >= SHARED_PAGES / 2,
	       "%d pages written on node %d came back with %ld remote faults, expected one each",
	       SHARED_PAGES / 2, other, after - before);
	WCHECK(munmap(buf, SHARED_PAGES * ps) == 0, "munmap: %s", strerror(errno));
	return 0;
}

TEST_F_TIMEOUT(migrate, read_copies_stay, 120)
{
	NEED_PEERS(1);
	RUN_KID(read_copies_stay, &self->other, 90000);
}

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

/*
 * madvise(MADV_DONTNEED) and MADV_DONTNEED_LOCKED drop a range's pages on
 * every node: pages written on the peer and read back home (so the peer
 * keeps a copy) read as zeros afterwards on both nodes, a write to one of
 * them keeps only what was written, and the pages around the range keep
 * their data. (MADV_FREE drops them everywhere too, but Linux lets a
 * freed page read as its old data until reclaim, so nothing is checked.)
 */
static int dontneed_drops_pages_everywhere(void *arg)
{
	int other = *(int *)arg;
	size_t ps = 4096, n = 16, i;
	static const int advice[] = { MADV_DONTNEED, MADV_DONTNEED_LOCKED };
	char *buf;
	int a;

	buf = mmap(NULL, n * ps, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	WCHECK(buf != MAP_FAILED, "mmap: %s", strerror(errno));
	for (a = 0; a < 2; a++) {
		fill(buf, n * ps, 90 + a);
		WMIGRATE(other);
		fill(buf, n * ps, 92 + a);	/* the peer owns every page */
		WMIGRATE(g_node);
		/* Read copies here; the peer keeps its own. */
		WCHECK(check(buf, n * ps, 92 + a) < 0, "pages written on node %d", other);
		WCHECK(madvise(buf + 4 * ps, 8 * ps, advice[a]) == 0, "madvise %d: %s",
		       advice[a], strerror(errno));
		for (i = 4 * ps; i < 12 * ps; i++)
			WCHECK(!buf[i], "advice %d: byte %zu is %#x here, expected 0",
			       advice[a], i, buf[i] & 0xff);
		WMIGRATE(other);
		for (i = 4 * ps; i < 12 * ps; i++)
			WCHECK(!buf[i], "advice %d: byte %zu is %#x on node %d, expected 0",
			       advice[a], i, buf[i] & 0xff, other);
		for (i = 0; i < n * ps / 8; i++) {
			if (i == 4 * ps / 8)
				i = 12 * ps / 8;
			WCHECK(((uint64_t *)buf)[i] == pat(92 + a, i),
			       "advice %d: word %zu outside the range changed on node %d",
			       advice[a], i, other);
		}
		WMIGRATE(g_node);
		/* A write after the drop keeps only what was written. */
		buf[5 * ps] = 7;
		for (i = 5 * ps + 1; i < 6 * ps; i++)
			WCHECK(!buf[i], "advice %d: byte %zu is %#x after a write, expected 0",
			       advice[a], i, buf[i] & 0xff);
	}
	WCHECK(munmap(buf, n * ps) == 0, "munmap: %s", strerror(errno));
	return 0;
}

TEST_F_TIMEOUT(migrate, dontneed_drops_pages_everywhere, 120)
{
	NEED_PEERS(1);
	RUN_KID(dontneed_drops_pages_everywhere, &self->other, 90000);
}

/* ---- Shared anonymous memory (gobelins' shared containers) ---- */

/* The head of a shared region: a lock built from atomic instructions. */
struct shm_counter {
	uint32_t lock;
	uint32_t pad;
	uint64_t count;		/* under the lock */
	uint64_t ready;		/* processes ready to count */
	uint64_t done;		/* processes that finished counting */
};

#define SHM_ROUNDS	300
#define SHM_PAGES	4

struct shm_arg {
	int nodes[2];		/* where the children go */
	int n;			/* how many children */
	key_t key;		/* SysV: the segment's key */
};

/*
 * Once the @procs processes are ready (or after 60 s), adds @rounds to
 * @c->count, one at a time under the lock.
 */
static void shm_add(struct shm_counter *c, int rounds, uint64_t procs)
{
	int i, ms;

	__atomic_fetch_add(&c->ready, 1, __ATOMIC_SEQ_CST);
	for (ms = 0; __atomic_load_n(&c->ready, __ATOMIC_SEQ_CST) < procs && ms < 60000; ms++)
		usleep(1000);
	for (i = 0; i < rounds; i++) {
		for (;;) {
			/* Test and test-and-set: spin on a read copy. */
			while (__atomic_load_n(&c->lock, __ATOMIC_RELAXED))
				sched_yield();
			if (!__atomic_exchange_n(&c->lock, 1, __ATOMIC_ACQUIRE))
				break;
		}
		c->count++;
		__atomic_store_n(&c->lock, 0, __ATOMIC_RELEASE);
		/* Let the others take it: the page goes back and forth. */
		usleep(100);
	}
	__atomic_fetch_add(&c->done, 1, __ATOMIC_SEQ_CST);
}

/*
 * In a worker that counted with its @a->n children (@kids): waits (60 s)
 * until every process counted, reaps the children (@codes says what their
 * exit statuses mean) and checks the total.
 */
static void shm_finish(struct shm_counter *c, pid_t *kids, struct shm_arg *a,
		       const char *codes)
{
	uint64_t want = (uint64_t)(a->n + 1) * SHM_ROUNDS;
	int i, ms, status;

	for (ms = 0; __atomic_load_n(&c->done, __ATOMIC_SEQ_CST) < (uint64_t)a->n + 1 &&
	     ms < 60000; ms += 10)
		usleep(10000);
	for (i = 0; i < a->n; i++) {
		WCHECK(waitpid(kids[i], &status, 0) == kids[i], "waitpid: %s", strerror(errno));
		WCHECK(WIFEXITED(status) && !WEXITSTATUS(status),
		       "child on node %d: status %#x (exit %s)", a->nodes[i], status, codes);
	}
	WCHECK(c->done == (uint64_t)a->n + 1, "%lu of %d processes finished",
	       (unsigned long)c->done, a->n + 1);
	WCHECK(c->count == want, "count %lu, expected %lu",
	       (unsigned long)c->count, (unsigned long)want);
}

/*
 * A MAP_SHARED | MAP_ANONYMOUS region is one memory on every node: the
 * worker fills it, forks a child per node in @a, each child moves there,
 * reads what the worker wrote, and all of them (the worker staying home)
 * count at the same time under a spinlock in the region: the total is
 * exact. The worker then moves to the first node, sees the count, writes
 * there, and back home reads what it wrote.
 */
static int shared_anonymous_counter(void *varg)
{
	struct shm_arg *a = varg;
	size_t ps = 4096, len = SHM_PAGES * ps;
	uint64_t want = (uint64_t)(a->n + 1) * SHM_ROUNDS;
	struct shm_counter *c;
	pid_t kids[2];
	int i;
	char *p;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	WCHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
	c = (struct shm_counter *)p;
	fill(p + ps, 2 * ps, 61);
	for (i = 0; i < a->n; i++) {
		kids[i] = fork();
		WCHECK(kids[i] >= 0, "fork: %s", strerror(errno));
		if (kids[i] == 0) {
			if (pcntl(PCNTL_MIGRATE, 0, a->nodes[i], 0) != 0)
				_exit(10);
			if (where(0) != a->nodes[i])
				_exit(11);
			if (check(p + ps, 2 * ps, 61) >= 0)
				_exit(12);
			shm_add(c, SHM_ROUNDS, a->n + 1);
			_exit(0);
		}
	}
	shm_add(c, SHM_ROUNDS, a->n + 1);
	shm_finish(c, kids, a, "10: no move, 11: elsewhere, 12: data");
	WMIGRATE(a->nodes[0]);
	WCHECK(c->count == want, "count %lu on node %d, expected %lu",
	       (unsigned long)c->count, a->nodes[0], (unsigned long)want);
	WCHECK_MEM(p + ps, 2 * ps, 61, "the region on node %d", a->nodes[0]);
	fill(p + ps, 2 * ps, 62);
	WMIGRATE(g_node);
	WCHECK_MEM(p + ps, 2 * ps, 62, "written on node %d, read back home", a->nodes[0]);
	WCHECK(munmap(p, len) == 0, "munmap: %s", strerror(errno));
	return 0;
}

/*
 * Runs @fn (shared_anonymous_counter() or sysv_counter()) in a worker.
 * Then, once the worker is gone (its shadows too, which map a region
 * where they are) and a segment of @a->key it may have left is removed,
 * nothing of the shared memory is left: this node's links come back to
 * what they were.
 */
static void shm_test(struct __test_metadata *_metadata, int (*fn)(void *),
		     struct shm_arg *a)
{
	long before, links;
	int ms, id;

	before = gobelins_counter("links");
	ASSERT_LE(0, before);
	RUN_KID(fn, a, 150000);
	id = a->key ? shmget(a->key, 0, 0600) : -1;
	if (id >= 0) {
		TH_LOG("segment of key %#x left: removed", a->key);
		shmctl(id, IPC_RMID, NULL);
	}
	for (ms = 0; (links = gobelins_counter("links")) > before && ms < 20000; ms += 50)
		usleep(50000);
	EXPECT_EQ(before, links) {
		TH_LOG("%ld links left here, %ld before: the shared memory stayed", links,
		       before);
	}
}

TEST_F_TIMEOUT(migrate, shared_anonymous_counter, 180)
{
	struct shm_arg a = { .nodes = { self->other }, .n = 1 };

	NEED_PEERS(1);
	shm_test(_metadata, shared_anonymous_counter, &a);
}

TEST_F_TIMEOUT(migrate, shared_anonymous_three_nodes, 240)
{
	struct shm_arg a = { .n = 2 };

	NEED_PEERS(2);
	a.nodes[0] = peer(0);
	a.nodes[1] = peer(1);
	shm_test(_metadata, shared_anonymous_counter, &a);
}

/* ---- SysV shared memory: cluster-wide keys ---- */

#define SYSV_PAGES	3

/* The worker's attachment, which its children detach first. */
static void *g_shm_attached;

/*
 * In a child of sysv_counter(): detaches the attachment fork copied (a
 * process attached cannot move) and moves to @node. Returns 0, or the
 * exit status of the step that failed (9, 10).
 */
static int sysv_move(int node)
{
	if (shmdt(g_shm_attached))
		return 9;
	if (pcntl(PCNTL_MIGRATE, 0, node, 0) != 0 || where(0) != node)
		return 10;
	return 0;
}

/*
 * Child of sysv_counter(): moves to @node, finds the segment of @key there
 * (shmget without IPC_CREAT), checks the refusals of a second creation and
 * of a larger size, attaches, reads what the worker wrote and counts with
 * everyone. Exits with the number of the step that failed.
 */
static int sysv_child(int node, key_t key, int procs)
{
	size_t ps = 4096;
	int id, r;
	char *q;

	r = sysv_move(node);
	if (r)
		return r;
	id = shmget(key, 0, 0600);
	if (id < 0)
		return 20;
	if (shmget(key, SYSV_PAGES * ps, IPC_CREAT | IPC_EXCL | 0600) >= 0 || errno != EEXIST)
		return 21;
	if (shmget(key, (SYSV_PAGES + 1) * ps, 0600) >= 0 || errno != EINVAL)
		return 22;
	q = shmat(id, NULL, 0);
	if (q == (void *)-1)
		return 23;
	if (check(q + ps, 2 * ps, 71) >= 0)
		return 24;
	shm_add((struct shm_counter *)q, SHM_ROUNDS, procs);
	if (shmdt(q))
		return 25;
	return 0;
}

/* Child of sysv_counter(): on @node, removes the segment of @key. */
static int sysv_remover(int node, key_t key)
{
	int id, r = sysv_move(node);

	if (r)
		return r;
	id = shmget(key, 0, 0600);
	if (id < 0)
		return 30;
	if (shmctl(id, IPC_RMID, NULL))
		return 31;
	return 0;
}

/* Child of sysv_counter(): on @node, the key is gone. */
static int sysv_gone(int node, key_t key)
{
	int ms, r = sysv_move(node);

	if (r)
		return r;
	for (ms = 0; shmget(key, 0, 0600) >= 0 && ms < 10000; ms += 20)
		usleep(20000);
	return errno == ENOENT ? 0 : 40;
}

/* Forks a child running @fn(node, key) and waits for its exit status. */
static int sysv_run(int (*fn)(int, key_t), int node, key_t key)
{
	pid_t pid = fork();
	int status;

	if (pid == 0)
		_exit(fn(node, key));
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/*
 * A SysV key names one segment on every node. The worker makes a segment
 * here and fills it; a child per node in @a moves there, finds the segment
 * by key (its own segment of that node, the same memory), and everyone
 * counts at the same time under a spinlock in it: the total is exact. A
 * process attached to a segment cannot move (EOPNOTSUPP). IPC_RMID on the
 * first node removes the key everywhere: the worker's shmget() here then
 * fails with ENOENT (it stays attached to what it had), and so does one
 * on the other nodes.
 */
static int sysv_counter(void *varg)
{
	struct shm_arg *a = varg;
	size_t ps = 4096;
	key_t key = a->key;
	uint64_t want = (uint64_t)(a->n + 1) * SHM_ROUNDS;
	struct shm_counter *c;
	pid_t kids[2];
	int i, id, ms, r;
	long e;
	char *p;

	id = shmget(key, SYSV_PAGES * ps, IPC_CREAT | IPC_EXCL | 0600);
	WCHECK(id >= 0, "shmget: %s", strerror(errno));
	p = shmat(id, NULL, 0);
	WCHECK(p != (void *)-1, "shmat: %s", strerror(errno));
	g_shm_attached = p;
	c = (struct shm_counter *)p;
	fill(p + ps, 2 * ps, 71);
	e = migrate_errno(0, a->nodes[0], 0);
	WCHECK(e == EOPNOTSUPP, "attached to a SysV segment: errno %ld (%s), expected EOPNOTSUPP",
	       e, strerror(e));
	for (i = 0; i < a->n; i++) {
		kids[i] = fork();
		WCHECK(kids[i] >= 0, "fork: %s", strerror(errno));
		if (kids[i] == 0)
			_exit(sysv_child(a->nodes[i], key, a->n + 1));
	}
	shm_add(c, SHM_ROUNDS, a->n + 1);
	shm_finish(c, kids, a,
		   "9: shmdt of the copy, 10: no move, 20: not found, 21: created twice, 22: larger size, 23: shmat, 24: data, 25: shmdt");
	r = sysv_run(sysv_remover, a->nodes[0], key);
	WCHECK(r == 0, "IPC_RMID on node %d: %d (30: not found, 31: shmctl)", a->nodes[0], r);
	for (ms = 0; shmget(key, 0, 0600) >= 0 && ms < 10000; ms += 20)
		usleep(20000);
	WCHECK(errno == ENOENT, "removed on node %d, the key is still here: %s",
	       a->nodes[0], strerror(errno));
	WCHECK(c->count == want, "count %lu after the removal, expected %lu",
	       (unsigned long)c->count, (unsigned long)want);
	r = sysv_run(sysv_gone, a->nodes[a->n - 1], key);
	WCHECK(r == 0, "the removed key on node %d: %d", a->nodes[a->n - 1], r);
	WCHECK(shmdt(p) == 0, "shmdt: %s", strerror(errno));
	return 0;
}

/* A key of this test process's own for @a's segment. */
static key_t sysv_key(struct shm_arg *a)
{
	return 0x5c000000 | (getpid() & 0xfffff) | (a->n << 20);
}

TEST_F_TIMEOUT(migrate, sysv_key_counter, 180)
{
	struct shm_arg a = { .nodes = { self->other }, .n = 1 };

	NEED_PEERS(1);
	a.key = sysv_key(&a);
	shm_test(_metadata, sysv_counter, &a);
}

TEST_F_TIMEOUT(migrate, sysv_key_three_nodes, 240)
{
	struct shm_arg a = { .n = 2 };

	NEED_PEERS(2);
	a.nodes[0] = peer(0);
	a.nodes[1] = peer(1);
	a.key = sysv_key(&a);
	shm_test(_metadata, sysv_counter, &a);
}

#define SHMGET_RACERS	6

/*
 * Processes of one node calling shmget(key, IPC_CREAT) at the same time,
 * the key unknown to the cluster: each gets the same segment (no EAGAIN
 * from the race of their lookups at the key's manager), and once it is
 * removed nothing of it is left here.
 */
TEST_F_TIMEOUT(migrate, sysv_concurrent_shmget, 90)
{
	key_t key = 0x5b000000 | (getpid() & 0xffffff);
	int go[2], ids[2], i, id, status, ms;
	pid_t pids[SHMGET_RACERS];
	long before, links;
	char c;

	NEED_PEERS(1);
	before = gobelins_counter("links");
	ASSERT_LE(0, before);
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(ids));
	for (i = 0; i < SHMGET_RACERS; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (!pids[i]) {
			close(go[1]);
			if (read(go[0], &c, 1) != 0)
				_exit(1);
			id = shmget(key, 4 * 4096, IPC_CREAT | 0600);
			if (id < 0)
				id = -errno;
			_exit(write(ids[1], &id, sizeof(id)) == sizeof(id) ? 0 : 2);
		}
	}
	close(go[0]);
	close(ids[1]);
	/* All of them at once: the pipe's end of file releases them. */
	close(go[1]);
	id = -1;
	for (i = 0; i < SHMGET_RACERS; i++) {
		int got;

		ASSERT_EQ((ssize_t)sizeof(got), read(ids[0], &got, sizeof(got)));
		EXPECT_LE(0, got) {
			TH_LOG("racer %d: shmget: %s", i, strerror(-got));
		}
		if (id < 0)
			id = got;
		EXPECT_EQ(id, got);
	}
	close(ids[0]);
	for (i = 0; i < SHMGET_RACERS; i++) {
		ASSERT_EQ(pids[i], waitpid(pids[i], &status, 0));
		EXPECT_EQ(0, status);
	}
	if (id >= 0)
		EXPECT_EQ(0, shmctl(id, IPC_RMID, NULL));
	for (ms = 0; (links = gobelins_counter("links")) > before && ms < 20000; ms += 50)
		usleep(50000);
	EXPECT_EQ(before, links);
}

/*
 * A read copy stays read-only through mprotect(PROT_READ) then
 * mprotect(PROT_READ | PROT_WRITE): the write after faults, so the page
 * layer takes the only copy and the other node sees it. @shared: a
 * MAP_SHARED | MAP_ANONYMOUS region, read and written by a child on the
 * peer while the worker stays home; else the worker's private memory,
 * read and written by the worker on the peer.
 */
struct kid_arg_mp {
	int other;
	bool shared;
};

static int mprotect_then_write(char *page, char expect)
{
	if (page[0] != expect)
		return 20;
	if (mprotect(page, 4096, PROT_READ))
		return 21;
	if (mprotect(page, 4096, PROT_READ | PROT_WRITE))
		return 22;
	page[0] = 0x77;
	return 0;
}

static int mprotect_read_copy(struct kid_arg_mp *a)
{
	size_t ps = 4096;
	char *p = mmap(NULL, 4 * ps, PROT_READ | PROT_WRITE,
		       (a->shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
	int status, r;
	pid_t pid;

	WCHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
	memset(p, 'e', 4 * ps);
	if (a->shared) {
		pid = fork();
		WCHECK(pid >= 0, "fork: %s", strerror(errno));
		if (!pid) {
			if (pcntl(PCNTL_MIGRATE, 0, a->other, 0))
				_exit(10);
			_exit(mprotect_then_write(p + ps, 'e'));
		}
		WCHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
		WCHECK(WIFEXITED(status) && !WEXITSTATUS(status),
		       "child on node %d: status %#x (10: no move, 20: data, 21, 22: mprotect)",
		       a->other, status);
	} else {
		WMIGRATE(a->other);
		r = mprotect_then_write(p + ps, 'e');
		WCHECK(!r, "on node %d: step %d (20: data, 21, 22: mprotect)", a->other, r);
		WMIGRATE(g_node);
	}
	WCHECK(p[ps] == 0x77, "the byte written on node %d after mprotect reads %#x here",
	       a->other, p[ps] & 0xff);
	WCHECK(p[0] == 'e' && p[2 * ps] == 'e', "the pages around changed");
	munmap(p, 4 * ps);
	return 0;
}

static int mprotect_read_copy_kid(void *varg)
{
	return mprotect_read_copy(varg);
}

TEST_F_TIMEOUT(migrate, mprotect_keeps_read_copies_read_only_shared, 90)
{
	struct kid_arg_mp a = { .other = self->other, .shared = true };

	NEED_PEERS(1);
	RUN_KID(mprotect_read_copy_kid, &a, 60000);
}

TEST_F_TIMEOUT(migrate, mprotect_keeps_read_copies_read_only_private, 90)
{
	struct kid_arg_mp a = { .other = self->other, .shared = false };

	NEED_PEERS(1);
	RUN_KID(mprotect_read_copy_kid, &a, 60000);
}

#define CREATE_ROUNDS	10

/* Two processes meeting in a shared region, one per node. */
struct create_race {
	uint32_t arrived[CREATE_ROUNDS];
	int32_t ids[CREATE_ROUNDS][2];
};

/* Round @k of @who (0 home, 1 peer): meets the other, then shmget(). */
static void create_round(struct create_race *r, key_t base, int k, int who)
{
	int ms;

	__atomic_fetch_add(&r->arrived[k], 1, __ATOMIC_SEQ_CST);
	for (ms = 0; __atomic_load_n(&r->arrived[k], __ATOMIC_SEQ_CST) < 2 && ms < 20000; ms++)
		usleep(1000);
	r->ids[k][who] = shmget(base + k, 4096, IPC_CREAT | 0600);
	if (r->ids[k][who] < 0)
		r->ids[k][who] = -errno;
}

/*
 * shmget(key, IPC_CREAT) of a new key on two nodes at the same moment,
 * 10 keys: both calls succeed every time (one node makes the key, the
 * other finds it, even before the maker linked its segment), and what
 * one writes the other reads.
 */
static int sysv_create_race(void *varg)
{
	int other = *(int *)varg, k, status;
	key_t base = 0x5a000000 | ((getpid() & 0xffff) << 8);
	struct create_race *r;
	pid_t pid;
	char *p;

	r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	WCHECK(r != MAP_FAILED, "mmap: %s", strerror(errno));
	memset(r, 0, sizeof(*r));
	pid = fork();
	WCHECK(pid >= 0, "fork: %s", strerror(errno));
	if (!pid) {
		if (pcntl(PCNTL_MIGRATE, 0, other, 0))
			_exit(10);
		for (k = 0; k < CREATE_ROUNDS; k++)
			create_round(r, base, k, 1);
		_exit(0);
	}
	for (k = 0; k < CREATE_ROUNDS; k++)
		create_round(r, base, k, 0);
	WCHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
	WCHECK(WIFEXITED(status) && !WEXITSTATUS(status), "child: status %#x", status);
	for (k = 0; k < CREATE_ROUNDS; k++) {
		WCHECK(r->ids[k][0] >= 0 && r->ids[k][1] >= 0,
		       "key %#x: shmget(IPC_CREAT) gave %d here, %d on node %d",
		       base + k, r->ids[k][0], r->ids[k][1], other);
		p = shmat(r->ids[k][0], NULL, 0);
		WCHECK(p != (void *)-1, "shmat: %s", strerror(errno));
		WCHECK(shmctl(r->ids[k][0], IPC_RMID, NULL) == 0, "IPC_RMID: %s", strerror(errno));
		shmdt(p);
	}
	munmap(r, sizeof(*r));
	return 0;
}

TEST_F_TIMEOUT(migrate, sysv_create_race_across_nodes, 120)
{
	NEED_PEERS(1);
	RUN_KID(sysv_create_race, &self->other, 90000);
}

/*
 * A segment made here by root with mode 0600 keeps that owner and mode on
 * the peer: root there sees them (IPC_STAT); an unprivileged process there
 * finds the key (shmget asking for no access) but may neither ask for
 * read-write access (EACCES) nor attach (EACCES).
 */
static int sysv_owner_child(int other, key_t key)
{
	struct shmid_ds ds;
	int id;

	if (pcntl(PCNTL_MIGRATE, 0, other, 0) != 0 || where(0) != other)
		return 10;
	id = shmget(key, 0, 0);
	if (id < 0)
		return 20;
	if (shmctl(id, IPC_STAT, &ds))
		return 21;
	if (ds.shm_perm.uid != 0 || (ds.shm_perm.mode & 0777) != 0600)
		return 22;
	if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
		return 23;
	if (shmat(id, NULL, 0) != (void *)-1 || errno != EACCES)
		return 24;
	if (shmget(key, 0, 0600) >= 0 || errno != EACCES)
		return 25;
	return 0;
}

static int sysv_owner(void *varg)
{
	int other = *(int *)varg, id, status;
	key_t key = 0x59000000 | (getpid() & 0xffffff);
	pid_t pid;

	WCHECK(getuid() == 0, "runs as root");
	id = shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0600);
	WCHECK(id >= 0, "shmget: %s", strerror(errno));
	pid = fork();
	WCHECK(pid >= 0, "fork: %s", strerror(errno));
	if (!pid)
		_exit(sysv_owner_child(other, key));
	WCHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
	shmctl(id, IPC_RMID, NULL);
	WCHECK(WIFEXITED(status) && !WEXITSTATUS(status),
	       "child on node %d: status %#x (10: no move, 20: not found, 21: IPC_STAT, 22: owner or mode, 23: setuid, 24: attached, 25: shmget 0600)",
	       other, status);
	return 0;
}

TEST_F_TIMEOUT(migrate, sysv_owner_and_mode_everywhere, 90)
{
	NEED_PEERS(1);
	RUN_KID(sysv_owner, &self->other, 60000);
}

/* ---- MAP_PRIVATE file mappings ---- */

#define FMAP_PAGES	16

struct fmap_arg {
	int other;
	const char *path;	/* file to map */
	bool create;		/* create it (in /tmp, this node only) */
};

static uint64_t file_seed(const char *path)
{
	uint64_t h = 1469598103934665603ULL;

	while (*path)
		h = (h ^ (unsigned char)*path++) * 1099511628211ULL;
	return h;
}

/*
 * Map @path MAP_PRIVATE: page 0 written before leaving, page 1 read, the
 * others untouched; on the peer, check them all and write pages 2, 3 and
 * 9; back home the mapping has every write and the file none.
 */
static int map_private_file(void *varg)
{
	struct fmap_arg *a = varg;
	size_t ps = 4096, len = FMAP_PAGES * ps, i;
	static char orig[FMAP_PAGES * 4096], now[FMAP_PAGES * 4096];
	const int remote_pages[] = { 2, 3, 9 };
	int home = g_node, fd;
	char *map;

	if (a->create) {
		fd = open(a->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		WCHECK(fd >= 0, "create %s: %s", a->path, strerror(errno));
		fill(orig, len, file_seed(a->path));
		WCHECK(write(fd, orig, len) == (ssize_t)len, "write %s: %s", a->path,
		       strerror(errno));
		close(fd);
	}
	fd = open(a->path, O_RDONLY);
	WCHECK(fd >= 0, "open %s: %s", a->path, strerror(errno));
	WCHECK(pread(fd, orig, len, 0) == (ssize_t)len, "read %s: %s", a->path,
	       strerror(errno));
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	WCHECK(map != MAP_FAILED, "mmap %s: %s", a->path, strerror(errno));
	close(fd);

	memset(map, 0xa5, ps);		/* page 0: a private copy before leaving */
	WCHECK(!memcmp(map + ps, orig + ps, ps), "page 1 differs from the file");

	WMIGRATE(a->other);

	for (i = 0; i < FMAP_PAGES; i++) {
		if (i == 0) {
			WCHECK(map[0] == (char)0xa5 && !memcmp(map, map + 1, ps - 1),
			       "page 0 on node %d lost the write made before migrating",
			       a->other);
			continue;
		}
		WCHECK(!memcmp(map + i * ps, orig + i * ps, ps),
		       "page %zu of %s differs from the file on node %d", i, a->path,
		       a->other);
	}
	for (i = 0; i < 3; i++)
		fill(map + remote_pages[i] * ps, ps, 100 + remote_pages[i]);

	WMIGRATE(home);

	for (i = 0; i < FMAP_PAGES; i++) {
		char *p = map + i * ps;

		if (i == 0) {
			WCHECK(p[0] == (char)0xa5 && !memcmp(p, p + 1, ps - 1),
			       "page 0 back home lost the write made before migrating");
		} else if (i == 2 || i == 3 || i == 9) {
			WCHECK_MEM(p, ps, 100 + i, "page %zu written on node %d, back home", i,
				   a->other);
		} else {
			WCHECK(!memcmp(p, orig + i * ps, ps),
			       "page %zu back home differs from the file", i);
		}
	}
	fd = open(a->path, O_RDONLY);
	WCHECK(fd >= 0, "reopen %s: %s", a->path, strerror(errno));
	WCHECK(pread(fd, now, len, 0) == (ssize_t)len, "reread %s", a->path);
	close(fd);
	WCHECK(!memcmp(now, orig, len), "%s changed on disk: a private write reached the file",
	       a->path);
	munmap(map, len);
	return 0;
}

/* A file that exists only on this node (/tmp is each node's own tmpfs). */
TEST_F_TIMEOUT(migrate, map_private_tmp_file, 120)
{
	char path[64];
	struct fmap_arg a = { .other = self->other, .path = path, .create = true };

	NEED_PEERS(1);
	snprintf(path, sizeof(path), "/tmp/migrate_test.map.%d", getpid());
	RUN_KID(map_private_file, &a, 90000);
	unlink(path);
}

/* A file every node has, the same (this binary, from the initramfs). */
TEST_F_TIMEOUT(migrate, map_private_initramfs_file, 120)
{
	static char exe[PATH_MAX];
	struct fmap_arg a = { .other = self->other, .path = exe };
	ssize_t n;

	NEED_PEERS(1);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	ASSERT_LT(0, n);
	exe[n] = '\0';
	RUN_KID(map_private_file, &a, 90000);
}

/* ---- forwarded file calls ---- */

struct io_arg {
	int other;
	int pipe_w;		/* write end of a pipe the test reads */
	int out_r;		/* read end of the pipe the worker's stdout is */
	char file[64];		/* opened before migrating */
	char newfile[64];	/* created after migrating, absolute */
	char relfile[64];	/* created after migrating, relative to /tmp */
};

#define BIG_IO (200UL * 1024)

static int forwarded_io(void *varg)
{
	struct io_arg *a = varg;
	static char big[BIG_IO], back[BIG_IO];
	const char msg[] = "pipe data from the peer";
	char buf[64];
	struct stat st;
	int fd, nfd, home = g_node;
	off_t off;
	ssize_t n;
	size_t got;

	fd = open(a->file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	WCHECK(fd >= 0, "open %s: %s", a->file, strerror(errno));
	WCHECK(write(fd, "0123456789", 10) == 10, "write: %s", strerror(errno));
	WCHECK(chdir("/tmp") == 0, "chdir /tmp: %s", strerror(errno));

	WMIGRATE(a->other);

	/* A pipe opened at home. */
	n = write(a->pipe_w, msg, sizeof(msg));
	WCHECK(n == (ssize_t)sizeof(msg), "write to the pipe on node %d: %zd (%s)",
	       a->other, n, strerror(errno));
	/* stdio, through the origin's stdout (a pipe the test reads). */
	printf("printf from node %ld\n", where(0));
	WCHECK(fflush(stdout) == 0, "fflush(stdout): %s", strerror(errno));

	/* A file opened at home: offsets, size, positioned I/O. */
	off = lseek(fd, 0, SEEK_CUR);
	WCHECK(off == 10, "lseek(SEEK_CUR) on node %d: %lld", a->other, (long long)off);
	fill(big, BIG_IO, 31);
	n = write(fd, big, BIG_IO);
	WCHECK(n == (ssize_t)BIG_IO, "write %lu bytes on node %d: %zd (%s)", BIG_IO,
	       a->other, n, strerror(errno));
	WCHECK(fstat(fd, &st) == 0, "fstat on node %d: %s", a->other, strerror(errno));
	WCHECK(S_ISREG(st.st_mode) && st.st_size == (off_t)(10 + BIG_IO),
	       "fstat on node %d: mode %o size %lld, expected a regular file of %lu bytes",
	       a->other, st.st_mode, (long long)st.st_size, 10 + BIG_IO);
	off = lseek(fd, 3, SEEK_SET);
	WCHECK(off == 3, "lseek(3, SEEK_SET): %lld", (long long)off);
	n = read(fd, buf, 4);
	WCHECK(n == 4 && !memcmp(buf, "3456", 4), "read after lseek on node %d: %zd", a->other, n);
	n = pwrite(fd, "XYZ", 3, 5);
	WCHECK(n == 3, "pwrite on node %d: %zd (%s)", a->other, n, strerror(errno));
	n = pread(fd, buf, 10, 0);
	WCHECK(n == 10 && !memcmp(buf, "01234XYZ89", 10),
	       "pread on node %d: %zd '%.10s'", a->other, n, buf);
	off = lseek(fd, 0, SEEK_CUR);
	WCHECK(off == 7, "pread/pwrite moved the offset: %lld, expected 7", (long long)off);
	for (got = 0; got < BIG_IO; got += n) {
		n = pread(fd, back + got, BIG_IO - got, 10 + got);
		WCHECK(n > 0, "pread at %zu on node %d: %zd (%s)", got, a->other, n,
		       strerror(errno));
	}
	WCHECK_MEM(back, BIG_IO, 31, "pread back on node %d", a->other);
	WCHECK(close(fd) == 0, "close on node %d: %s", a->other, strerror(errno));
	errno = 0;
	WCHECK(fstat(fd, &st) == -1 && errno == EBADF,
	       "fstat after close on node %d: errno %d, expected EBADF", a->other, errno);

	/* Files created there, absolute and relative to the origin's cwd. */
	nfd = open(a->newfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	WCHECK(nfd >= 0, "open %s on node %d: %s", a->newfile, a->other, strerror(errno));
	WCHECK(write(nfd, big, 3 * 4096 + 17) == 3 * 4096 + 17, "write %s: %s", a->newfile,
	       strerror(errno));
	WCHECK(close(nfd) == 0, "close %s: %s", a->newfile, strerror(errno));
	nfd = openat(AT_FDCWD, a->relfile, O_WRONLY | O_CREAT | O_EXCL, 0600);
	WCHECK(nfd >= 0, "openat(AT_FDCWD, %s) on node %d: %s", a->relfile, a->other,
	       strerror(errno));
	WCHECK(write(nfd, "relative\n", 9) == 9, "write %s: %s", a->relfile, strerror(errno));
	WCHECK(close(nfd) == 0, "close %s: %s", a->relfile, strerror(errno));

	WMIGRATE(home);

	/* Back home, with local calls: what was written is there. */
	nfd = open(a->newfile, O_RDONLY);
	WCHECK(nfd >= 0, "open %s back home: %s", a->newfile, strerror(errno));
	n = read(nfd, back, BIG_IO);
	WCHECK(n == 3 * 4096 + 17 && !memcmp(back, big, n),
	       "%s back home: %zd bytes, expected %d written on node %d", a->newfile, n,
	       3 * 4096 + 17, a->other);
	close(nfd);
	nfd = open(a->relfile, O_RDONLY);
	WCHECK(nfd >= 0, "open /tmp/%s back home: %s", a->relfile, strerror(errno));
	n = read(nfd, buf, sizeof(buf));
	WCHECK(n == 9 && !memcmp(buf, "relative\n", 9), "/tmp/%s back home: %zd bytes",
	       a->relfile, n);
	close(nfd);
	nfd = open(a->file, O_RDONLY);
	WCHECK(nfd >= 0, "open %s back home: %s", a->file, strerror(errno));
	WCHECK(fstat(nfd, &st) == 0 && st.st_size == (off_t)(10 + BIG_IO),
	       "%s back home: size %lld", a->file, (long long)st.st_size);
	n = read(nfd, buf, 10);
	WCHECK(n == 10 && !memcmp(buf, "01234XYZ89", 10), "%s back home: '%.10s'", a->file,
	       buf);
	close(nfd);
	return 0;
}

TEST_F_TIMEOUT(migrate, forwarded_io, 120)
{
	struct io_arg a = { .other = self->other };
	const char msg[] = "pipe data from the peer";
	char buf[256], expect[64];
	int p[2], out[2], saved, status;
	struct kid w;
	ssize_t n;

	NEED_PEERS(1);
	snprintf(a.file, sizeof(a.file), "/tmp/migrate_test.io.%d", getpid());
	snprintf(a.newfile, sizeof(a.newfile), "/tmp/migrate_test.new.%d", getpid());
	snprintf(a.relfile, sizeof(a.relfile), "migrate_test.rel.%d", getpid());
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(0, pipe(out));
	a.pipe_w = p[1];
	/* The worker's stdout is @out (it inherits fd 1 as we set it now). */
	fflush(stdout);
	saved = dup(1);
	ASSERT_LE(0, saved);
	ASSERT_EQ(1, dup2(out[1], 1));
	start_kid(_metadata, &w, forwarded_io, &a);
	dup2(saved, 1);
	close(saved);
	close(out[1]);
	close(p[1]);
	status = finish_kid(_metadata, &w, 90000);
	EXPECT_EXITED(0, status);

	n = read_within(p[0], buf, sizeof(msg), 1000);
	EXPECT_EQ((ssize_t)sizeof(msg), n);
	EXPECT_EQ(0, memcmp(buf, msg, sizeof(msg)));
	memset(buf, 0, sizeof(buf));
	n = read_within(out[0], buf, sizeof(buf) - 1, 1000);
	snprintf(expect, sizeof(expect), "printf from node %d\n", self->other);
	EXPECT_STREQ(expect, buf);
	close(p[0]);
	close(out[0]);
	unlink(a.file);
	unlink(a.newfile);
	snprintf(buf, sizeof(buf), "/tmp/%s", a.relfile);
	unlink(buf);
}

/*
 * A file of the origin's /proc read after migrating: the read is served
 * at the origin like any other (here /proc/self/maps, whose file has a
 * .read method and no .read_iter, and /proc/self/status).
 */
static int proc_read(void *arg)
{
	int other = *(int *)arg, fd, sfd;
	char home_buf[256], buf[256];
	ssize_t n, hn;

	fd = open("/proc/self/maps", O_RDONLY);
	WCHECK(fd >= 0, "open /proc/self/maps: %s", strerror(errno));
	hn = read(fd, home_buf, sizeof(home_buf));
	WCHECK(hn > 0, "read /proc/self/maps at home: %zd (%s)", hn, strerror(errno));
	WCHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek: %s", strerror(errno));
	WMIGRATE(other);
	errno = 0;
	sfd = open("/proc/self/status", O_RDONLY);
	WCHECK(sfd >= 0, "open /proc/self/status on node %d: %s", other, strerror(errno));
	n = read(sfd, buf, sizeof(buf) - 1);
	WCHECK(n > 5 && !memcmp(buf, "Name:", 5),
	       "read /proc/self/status on node %d: %zd (%s)", other, n, strerror(errno));
	close(sfd);
	errno = 0;
	n = read(fd, buf, sizeof(buf));
	WCHECK(n == hn && !memcmp(buf, home_buf, n),
	       "read /proc/self/maps (opened at home) on node %d: %zd (%s), at home %zd",
	       other, n, strerror(errno), hn);
	close(fd);
	WMIGRATE(g_node);
	return 0;
}

TEST_F_TIMEOUT(migrate, forwarded_read_proc_file, 60)
{
	NEED_PEERS(1);
	RUN_KID(proc_read, &self->other, 45000);
}

/* ---- identity ---- */

struct id_arg {
	int other;
	pid_t test_pid;
};

static int identity(void *varg)
{
	struct id_arg *a = varg;
	pid_t pid = syscall(SYS_getpid), tid = syscall(SYS_gettid);
	pid_t ppid = syscall(SYS_getppid);
	long r;

	WCHECK(ppid == a->test_pid, "getppid %d, the test is %d", ppid, a->test_pid);
	WMIGRATE(a->other);
	r = syscall(SYS_getpid);
	WCHECK(r == pid, "getpid on node %d: %ld, at home %d", a->other, r, pid);
	r = syscall(SYS_gettid);
	WCHECK(r == tid, "gettid on node %d: %ld, at home %d", a->other, r, tid);
	r = syscall(SYS_getppid);
	WCHECK(r == ppid, "getppid on node %d: %ld, at home %d", a->other, r, ppid);
	WCHECK(getpid() == pid, "libc getpid on node %d: %d", a->other, getpid());
	/* Wait there until the test has looked at us from home. */
	wready();
	wait_go();
	WCHECK(where(0) == a->other, "on node %ld after waiting", where(0));
	return 0;
}

/*
 * getpid/gettid/getppid are the origin's on the peer; the test sees the
 * worker on the peer with PCNTL_WHERE(pid) while it is there.
 */
TEST_F_TIMEOUT(migrate, identity, 60)
{
	struct id_arg a = { .other = self->other, .test_pid = getpid() };
	struct kid w;
	long r;

	NEED_PEERS(1);
	start_kid(_metadata, &w, identity, &a);
	ASSERT_TRUE(kid_ready(&w, 30000)) {
		finish_kid(_metadata, &w, 1000);
	}
	r = where(w.pid);
	EXPECT_EQ(self->other, r);
	EXPECT_EXITED(0, finish_kid(_metadata, &w, 30000));
}

/* ---- many migrations ---- */

/*
 * 300 migrations from the first node of the cluster; 30 from each other
 * node (the same path, once per node, without paying for the long run
 * on every node: every run visits every node anyway). Each step rewrites
 * a 64 KiB buffer, 16 pages whose only copy is on the node before: under
 * TCG a step takes about 250 ms on 2 nodes and 500 ms to 1 s on 3 (a read
 * fault, then a write fault, on each page), so 1000 steps no longer fit
 * the harness timeout on a busy host.
 */
#define RR_STEPS	300
#define RR_STEPS_OTHERS	30
#define RR_WORDS	(64 * 1024 / 8)

static unsigned int rr_steps(void)
{
	return g_node == g_nodes[0] ? RR_STEPS : RR_STEPS_OTHERS;
}

/*
 * One step of the checksum workload: transform the buffer with @step,
 * fold it into the running sum.
 */
static uint64_t rr_step(uint64_t *buf, uint64_t running, unsigned int step)
{
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < RR_WORDS; i++) {
		buf[i] = buf[i] * 6364136223846793005ULL + step * 1442695040888963407ULL + i;
		sum = (sum ^ buf[i]) * 0x100000001b3ULL;
	}
	return (running ^ sum) * 0x9E3779B97F4A7C15ULL + step;
}

static uint64_t rr_buf[RR_WORDS];
static uint64_t rr_hist[RR_STEPS];
static unsigned char rr_where[RR_STEPS];

static void rr_init(void)
{
	fill(rr_buf, sizeof(rr_buf), 77);
}

/* Migrate round robin over every online node, one step after each. */
static int round_robin(void *arg)
{
	uint64_t running = 0;
	int i, at = 0, home = g_node;
	unsigned int s;

	(void)arg;
	for (i = 0; i < g_nnodes; i++)
		if (g_nodes[i] == home)
			at = i;
	rr_init();
	for (s = 0; s < rr_steps(); s++) {
		int dest = g_nodes[(at + 1 + s) % g_nnodes];

		WMIGRATE(dest);
		running = rr_step(rr_buf, running, s);
		rr_hist[s] = running;
		rr_where[s] = dest;
	}
	if (where(0) != home)
		WMIGRATE(home);
	WCHECK(write(w_data, rr_hist, rr_steps() * sizeof(rr_hist[0])) ==
	       (ssize_t)(rr_steps() * sizeof(rr_hist[0])), "write: %s", strerror(errno));
	WCHECK(write(w_data, rr_where, rr_steps()) == (ssize_t)rr_steps(), "write: %s",
	       strerror(errno));
	return 0;
}

TEST_F_TIMEOUT(migrate, round_robin, 600)
{
	static uint64_t expect[RR_STEPS], got[RR_STEPS];
	static unsigned char at[RR_STEPS];
	uint64_t running = 0, t0, ms;
	unsigned int s, steps;
	struct kid w;
	size_t n1, n2;
	int status, n;

	NEED_PEERS(1);
	steps = rr_steps();
	/* The same computation, without migrating. */
	rr_init();
	for (s = 0; s < steps; s++)
		expect[s] = running = rr_step(rr_buf, running, s);

	t0 = now_ms();
	start_kid(_metadata, &w, round_robin, NULL);
	n1 = read_within(w.data, got, steps * sizeof(got[0]), 540000);
	n2 = read_within(w.data, at, steps, 10000);
	status = finish_kid(_metadata, &w, 60000);
	ms = now_ms() - t0;
	EXPECT_EXITED(0, status);
	ASSERT_EQ(steps * sizeof(got[0]), n1);
	ASSERT_EQ(steps, n2);
	for (s = 0; s < steps; s++) {
		if (got[s] != expect[s]) {
			TH_LOG("checksum differs first after step %u (run on node %d): %#llx, expected %#llx",
			       s, at[s], (unsigned long long)got[s],
			       (unsigned long long)expect[s]);
			break;
		}
	}
	EXPECT_EQ(steps, s);
	/* The last step may leave it away from home: one more to come back. */
	n = steps + (at[steps - 1] != self->home);
	TH_LOG("%d migrations over %d nodes in %llu ms (%.1f ms each)", n, g_nnodes,
	       (unsigned long long)ms, (double)ms / n);
}

/* ---- several hops ---- */

#define HOP_SIZE	(1UL << 20)

/*
 * Visit every online node in turn and come back: at each stop check what
 * the previous stop wrote (every other page rewritten at each stop) and
 * that forwarded writes and identity still work.
 */
static int tour(void *arg)
{
	static uint64_t stackseed;
	int home = g_node, i, at = 0, stops = 0;
	pid_t pid = getpid();
	char *buf;
	size_t ps = 4096, pg;

	(void)arg;
	buf = mmap(NULL, HOP_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	WCHECK(buf != MAP_FAILED, "mmap: %s", strerror(errno));
	for (pg = 0; pg < HOP_SIZE / ps; pg++)
		fill(buf + pg * ps, ps, 500 + pg);
	for (i = 0; i < g_nnodes; i++)
		if (g_nodes[i] == home)
			at = i;
	for (i = 1; i <= g_nnodes; i++) {
		int dest = g_nodes[(at + i) % g_nnodes];

		WMIGRATE(dest);
		stops++;
		for (pg = 0; pg < HOP_SIZE / ps; pg++) {
			/* Odd pages last written at stop (stops - 1), even ones at home. */
			uint64_t seed = (pg & 1) && stops > 1 ? 1000 * (stops - 1) + pg : 500 + pg;

			WCHECK_MEM(buf + pg * ps, ps, seed, "stop %d (node %d): page %zu", stops,
				   dest, pg);
			if (pg & 1)
				fill(buf + pg * ps, ps, 1000 * stops + pg);
		}
		WCHECK(getpid() == pid, "getpid on node %d: %d, expected %d", dest, getpid(), pid);
		wlog("stop %d: node %d", stops, dest);
		stackseed = stops;
	}
	WCHECK(where(0) == home, "the tour ended on node %ld, not home", where(0));
	WCHECK(stackseed == (uint64_t)g_nnodes, "static variable %llu after %d stops",
	       (unsigned long long)stackseed, g_nnodes);
	return 0;
}

/* 0 -> 1 -> 2 -> 0 on 3 nodes: every node and back, memory checked at each stop. */
TEST_F_TIMEOUT(migrate, multi_hop, 180)
{
	NEED_PEERS(2);
	RUN_KID(tour, NULL, 150000);
}

/* ---- another process, moved by the test ---- */

/* Blocks reading its data pipe; exits with a status made from what it read. */
struct blocked_arg {
	int in;		/* read end of the pipe the test writes */
	int expect_node;
};

static int blocked_reader(void *varg)
{
	struct blocked_arg *a = varg;
	char buf[64];
	long node;
	ssize_t n;
	int sum = 0, i;

	wready();
	n = read(a->in, buf, sizeof(buf));
	node = where(0);
	WCHECK(n > 0, "read: %zd (%s)", n, strerror(errno));
	WCHECK(node == a->expect_node, "read returned on node %ld, expected %d", node,
	       a->expect_node);
	for (i = 0; i < n; i++)
		sum += (unsigned char)buf[i];
	wlog("read %zd bytes on node %ld", n, node);
	return 2 + sum % 100;
}

static int expected_status(const char *s)
{
	int sum = 0;

	while (*s)
		sum += (unsigned char)*s++;
	return 2 + sum % 100;
}

/*
 * Start a worker blocked in read() on a pipe; returns the pipe's write
 * end. The worker's read is interrupted by each migration and restarted.
 */
static int start_blocked(struct __test_metadata *_metadata, struct kid *w,
			 struct blocked_arg *a)
{
	int p[2];

	if (pipe(p)) {
		TH_LOG("pipe: %s", strerror(errno));
		return -1;
	}
	a->in = p[0];
	start_kid(_metadata, w, blocked_reader, a);
	close(p[0]);
	if (!kid_ready(w, 10000) || !wait_state(w->pid, 'S', 10000)) {
		TH_LOG("worker %d never blocked in read()", w->pid);
		close(p[1]);
		return -1;
	}
	return p[1];
}

/*
 * A worker that computes in user space (no system call to interrupt) until
 * SIGUSR1, then checks where it is and exits with 33.
 */
static volatile sig_atomic_t spin_stop;

static void on_usr1(int sig)
{
	(void)sig;
	spin_stop = 1;
}

static int spinner(void *arg)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	int expect = *(int *)arg;
	volatile uint64_t x = 0;
	uint64_t i;

	WCHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction: %s", strerror(errno));
	wready();
	while (!spin_stop)
		for (i = 0; i < 100000; i++)
			x += i;
	WCHECK(where(0) == expect, "stopped on node %ld, expected %d", where(0), expect);
	return 33;
}

TEST_F_TIMEOUT(migrate, other_blocked_in_read, 90)
{
	struct blocked_arg a = { .expect_node = self->other };
	const char data[] = "data for the migrated reader";
	struct kid w;
	uint64_t t0;
	int in;

	NEED_PEERS(1);
	in = start_blocked(_metadata, &w, &a);
	ASSERT_LE(0, in) {
		finish_kid(_metadata, &w, 1000);
	}
	t0 = now_ms();
	EXPECT_EQ(0, migrate_errno(w.pid, self->other, 0));
	TH_LOG("PCNTL_MIGRATE(%d, %d) took %llu ms", w.pid, self->other,
	       (unsigned long long)(now_ms() - t0));
	EXPECT_EQ(self->other, where(w.pid));
	/* Already there: nothing to do. */
	EXPECT_EQ(0, migrate_errno(w.pid, self->other, 0));
	EXPECT_EQ(self->other, where(w.pid));
	EXPECT_EQ((ssize_t)sizeof(data) - 1, write(in, data, sizeof(data) - 1));
	EXPECT_EXITED(expected_status(data), finish_kid(_metadata, &w, 30000));
	close(in);
	/* Gone: its shadow ended with it. */
	errno = 0;
	EXPECT_EQ(-1, where(w.pid));
	EXPECT_EQ(ESRCH, errno);
}

/*
 * The test moves a running process to every node in turn and back home:
 * a request for a process that runs elsewhere goes through its shadow.
 */
TEST_F_TIMEOUT(migrate, other_moved_onward_and_back, 120)
{
	struct kid w;
	int i, at = 0;

	NEED_PEERS(1);
	start_kid(_metadata, &w, spinner, &self->home);
	ASSERT_TRUE(kid_ready(&w, 10000)) {
		finish_kid(_metadata, &w, 1000);
	}
	for (i = 0; i < g_nnodes; i++)
		if (g_nodes[i] == self->home)
			at = i;
	for (i = 1; i <= g_nnodes; i++) {
		int dest = g_nodes[(at + i) % g_nnodes];

		EXPECT_EQ(0, migrate_errno(w.pid, dest, 0)) {
			TH_LOG("hop %d to node %d", i, dest);
		}
		EXPECT_EQ(dest, where(w.pid));
	}
	EXPECT_EQ(0, kill(w.pid, SIGUSR1));
	EXPECT_EXITED(33, finish_kid(_metadata, &w, 30000));
}

/* ---- signals ---- */

static void on_term(int sig)
{
	char m[64];
	int n;

	n = snprintf(m, sizeof(m), "signal %d handled on node %ld\n", sig, where(0));
	if (write(w_data, m, n) != n)
		_exit(43);
	_exit(42);
}

/* What the worker does while it waits for the signal. */
enum sig_wait {
	SIG_PAUSE,	/* pause(), on its node */
	SIG_READ,	/* a forwarded read() the origin blocks in */
	SIG_CALLS,	/* forwarded calls back to back, none blocking */
};

struct sig_arg {
	int other;
	enum sig_wait wait;
	char comm[16];	/* a name to find the task by */
};

static int wait_for_signal(void *varg)
{
	struct sig_arg *a = varg;
	struct sigaction sa = { .sa_handler = on_term };
	int p[2];
	char c;

	WCHECK(sigaction(SIGTERM, &sa, NULL) == 0, "sigaction: %s", strerror(errno));
	WCHECK(pipe(p) == 0, "pipe: %s", strerror(errno));
	if (a->comm[0])
		prctl(PR_SET_NAME, a->comm);
	WMIGRATE(a->other);
	wready();
	for (;;) {
		switch (a->wait) {
		case SIG_READ:
			if (read(p[0], &c, 1) >= 0)
				wfail(__LINE__, "read returned");
			break;
		case SIG_CALLS:
			/* Each a round trip to the origin; EINTR is fine. */
			c = 'x';
			if (write(p[1], &c, 1) == 1 && read(p[0], &c, 1) != 1)
				wfail(__LINE__, "read lost the byte written");
			break;
		case SIG_PAUSE:
			pause();
			break;
		}
	}
}

static void sigterm_test(struct __test_metadata *_metadata, int other,
			 enum sig_wait wait, int delay_ms)
{
	struct sig_arg a = { .other = other, .wait = wait };
	char buf[128], expect[64];
	struct kid w;
	ssize_t n;

	start_kid(_metadata, &w, wait_for_signal, &a);
	ASSERT_TRUE(kid_ready(&w, 30000)) {
		finish_kid(_metadata, &w, 1000);
	}
	EXPECT_EQ(other, where(w.pid));
	/* Let it get into its sleep there, or not. */
	if (delay_ms)
		cohort_msleep(delay_ms);
	EXPECT_EQ(0, kill(w.pid, SIGTERM));
	/* Before finish_kid closes the pipe. */
	memset(buf, 0, sizeof(buf));
	snprintf(expect, sizeof(expect), "signal %d handled on node %d\n", SIGTERM, other);
	n = read_within(w.data, buf, strlen(expect), 20000);
	EXPECT_EXITED(42, finish_kid(_metadata, &w, 20000));
	EXPECT_EQ((ssize_t)strlen(expect), n);
	EXPECT_STREQ(expect, buf);
}

/* kill(pid, SIGTERM) at the origin: the handler runs on the peer. */
TEST_F_TIMEOUT(migrate, sigterm_handler_runs_remote, 90)
{
	NEED_PEERS(1);
	sigterm_test(_metadata, self->other, SIG_PAUSE, 200);
}

/* The same while the task waits in a read() its origin serves. */
TEST_F_TIMEOUT(migrate, sigterm_during_forwarded_read, 90)
{
	NEED_PEERS(1);
	sigterm_test(_metadata, self->other, SIG_READ, 200);
}

/*
 * A signal racing a forwarded call: sent at the origin before the read
 * reaches the shadow, as the shadow starts blocking in it, or while the
 * task makes one forwarded call after another (so as replies are sent and
 * between calls). Whichever way the race goes, the handler runs on the
 * peer and its own forwarded write gets through.
 */
TEST_F_TIMEOUT(migrate, sigterm_racing_forwarded_calls, 300)
{
	static const int delays[] = { 0, 1, 2, 5, 10, 20 };
	unsigned int i;

	NEED_PEERS(1);
	for (i = 0; i < ARRAY_SIZE(delays); i++) {
		TH_LOG("SIGTERM %d ms after ready: blocked read, then busy calls",
		       delays[i]);
		sigterm_test(_metadata, self->other, SIG_READ, delays[i]);
		sigterm_test(_metadata, self->other, SIG_CALLS, delays[i]);
	}
}

/* Count processes named @comm in this node's /proc. */
static int count_comm(const char *comm)
{
	char path[300], name[64];
	struct dirent *d;
	int count = 0;
	DIR *dir;
	ssize_t n;

	dir = opendir("/proc");
	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		if (d->d_name[0] < '0' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", d->d_name);
		n = cohort_read_file(path, name, sizeof(name));
		if (n > 0 && name[n - 1] == '\n')
			name[n - 1] = '\0';
		if (n > 0 && !strcmp(name, comm))
			count++;
	}
	closedir(dir);
	return count;
}

/*
 * The private writable mappings (read from /proc/self/maps at home: a
 * forwarded read of a /proc file fails, see forwarded_read_proc_file), and
 * a read of each of their pages where the worker runs, so that the pages
 * a child forked there copies are there: a child forked on a remote node
 * does not get its parent's pages that are still elsewhere (see
 * fork_on_remote_child_memory).
 */
static unsigned long pf_ranges[256][2];
static int pf_nr;

static void collect_private_ranges(void)
{
	static char maps[64 * 1024];
	size_t len = 0;
	char *line, *nl;
	ssize_t n;
	int fd;

	fd = open("/proc/self/maps", O_RDONLY);
	WCHECK(fd >= 0, "open /proc/self/maps: %s", strerror(errno));
	while (len < sizeof(maps) - 1 &&
	       (n = read(fd, maps + len, sizeof(maps) - 1 - len)) > 0)
		len += n;
	close(fd);
	maps[len] = '\0';
	for (line = maps; *line && pf_nr < 256; line = nl + 1) {
		unsigned long a, b;
		char perms[8];

		nl = strchr(line, '\n');
		if (!nl)
			break;
		*nl = '\0';
		if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) != 3 ||
		    perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p')
			continue;
		pf_ranges[pf_nr][0] = a;
		pf_ranges[pf_nr][1] = b;
		pf_nr++;
	}
	WCHECK(pf_nr > 0, "no private writable mapping in /proc/self/maps");
}

static void touch_private_ranges(void)
{
	unsigned long a;
	int i;

	for (i = 0; i < pf_nr; i++)
		for (a = pf_ranges[i][0]; a < pf_ranges[i][1]; a += 4096)
			(void)*(volatile char *)a;
}

struct probe_arg {
	int node;
	const char *comm;
	int want;
};

/*
 * On node @node, count the processes named @comm until there are @want
 * (within 20 s: the end of a killed task there can take a while on a
 * loaded host): a migrated worker forks there, and the child, whose calls
 * are that node's, reads its /proc. Reports the count.
 */
static int probe(void *varg)
{
	struct probe_arg *a = varg;
	int status, n;
	pid_t pid;

	collect_private_ranges();
	WMIGRATE(a->node);
	touch_private_ranges();
	pid = fork();
	WCHECK(pid >= 0, "fork on node %d: %s", a->node, strerror(errno));
	if (pid == 0) {
		uint64_t deadline = now_ms() + 20000;

		for (;;) {
			n = count_comm(a->comm);
			if (n == a->want || now_ms() >= deadline)
				_exit(n < 0 ? 255 : n > 200 ? 200 : n);
			cohort_msleep(20);
		}
	}
	WCHECK(waitpid(pid, &status, 0) == pid, "waitpid on node %d: %s", a->node,
	       strerror(errno));
	WCHECK(WIFEXITED(status), "probe on node %d: status %#x", a->node, status);
	n = WEXITSTATUS(status);
	WCHECK(n == a->want, "%d process(es) named %s on node %d, expected %d", n, a->comm,
	       a->node, a->want);
	WMIGRATE(g_node);
	return 0;
}

/*
 * SIGKILL at the origin ends the task on the peer and its shadow: the
 * parent sees SIGKILL, the pid is gone, and no process of that name is
 * left on either node.
 */
TEST_F_TIMEOUT(migrate, sigkill_ends_task_and_shadows, 120)
{
	struct sig_arg a = { .other = self->other };
	struct probe_arg pa = { .node = self->other, .comm = a.comm };
	struct kid w;
	uint64_t t0;
	int status;

	NEED_PEERS(1);
	snprintf(a.comm, sizeof(a.comm), "mtk%d", getpid() % 1000000);
	start_kid(_metadata, &w, wait_for_signal, &a);
	ASSERT_TRUE(kid_ready(&w, 30000)) {
		finish_kid(_metadata, &w, 1000);
	}
	EXPECT_EQ(self->other, where(w.pid));
	/* It is there, under its name (so the probe can see it at all). */
	pa.want = 1;
	RUN_KID(probe, &pa, 60000);

	t0 = now_ms();
	EXPECT_EQ(0, kill(w.pid, SIGKILL));
	status = finish_kid(_metadata, &w, 20000);
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
		TH_LOG("wait status %#x", status);
	}
	TH_LOG("reaped %llu ms after SIGKILL", (unsigned long long)(now_ms() - t0));
	errno = 0;
	EXPECT_EQ(-1, where(w.pid));
	EXPECT_EQ(ESRCH, errno);
	EXPECT_EQ(0, count_comm(a.comm));
	pa.want = 0;
	RUN_KID(probe, &pa, 60000);
}

/* ---- exit status ---- */

static int exit_remote(void *arg)
{
	WMIGRATE(*(int *)arg);
	exit(7);
}

static int segv_remote(void *arg)
{
	WMIGRATE(*(int *)arg);
	*(volatile int *)0 = 1;
	wfail(__LINE__, "survived a write to address 0");
}

/* exit(7) on the peer: the parent at home reaps status 7. */
TEST_F_TIMEOUT(migrate, exit_status_from_remote, 60)
{
	struct kid w;

	NEED_PEERS(1);
	start_kid(_metadata, &w, exit_remote, &self->other);
	EXPECT_EXITED(7, finish_kid(_metadata, &w, 30000));
}

/* A write to NULL on the peer: the parent at home sees SIGSEGV. */
TEST_F_TIMEOUT(migrate, sigsegv_on_remote, 60)
{
	struct kid w;
	int status;

	NEED_PEERS(1);
	start_kid(_metadata, &w, segv_remote, &self->other);
	status = finish_kid(_metadata, &w, 30000);
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) {
		TH_LOG("wait status %#x", status);
	}
}

/* ---- fork on the remote node ---- */

#define FORK_BUF (64UL << 10)

static int fork_remote(void *arg)
{
	int other = *(int *)arg, status, code;
	volatile int value;
	pid_t pid, r;

	WMIGRATE(other);
	value = 40 + other;	/* written there */
	pid = fork();
	WCHECK(pid >= 0, "fork on node %d: %s", other, strerror(errno));
	if (pid == 0) {
		/* The child runs there, with system calls of its own. */
		if (pcntl(PCNTL_WHERE, 0, 0, 0) != other)
			_exit(100);
		_exit(value);
	}
	r = waitpid(pid, &status, 0);
	WCHECK(r == pid, "waitpid(%d) on node %d: %d (%s)", pid, other, r, strerror(errno));
	code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	WCHECK(WIFEXITED(status) && code == 40 + other,
	       "child on node %d: wait status %#x (100: it ran elsewhere)", other, status);
	WMIGRATE(g_node);
	return 0;
}

/*
 * fork() on the peer makes a child there, with its parent's descriptors
 * (see child_inherits_proxies_and_home_unwraps); it runs, exits, and its
 * parent reaps it there.
 */
TEST_F_TIMEOUT(migrate, fork_on_remote, 60)
{
	NEED_PEERS(1);
	RUN_KID(fork_remote, &self->other, 45000);
}

/*
 * execve() on the peer: the new program runs there, and its output still
 * goes to the files the process has at its origin (here, the data pipe).
 */
static int exec_remote(void *arg)
{
	int other = *(int *)arg;

	WCHECK(dup2(w_data, 1) == 1, "dup2: %s", strerror(errno));
	WMIGRATE(other);
	execl("/usr/bin/count", "count", "3", "10", (char *)NULL);
	WCHECK(0, "execl on node %d: %s", other, strerror(errno));
	return 1;
}

TEST_F_TIMEOUT(migrate, exec_on_remote, 60)
{
	char got[128] = "", want[128];
	struct kid w;
	size_t n;

	NEED_PEERS(1);
	snprintf(want, sizeof(want), "1 node %d\n2 node %d\n3 node %d\n",
		 self->other, self->other, self->other);
	start_kid(_metadata, &w, exec_remote, &self->other);
	n = read_within(w.data, got, strlen(want), 40000);
	EXPECT_EQ(strlen(want), n);
	EXPECT_STREQ(want, got);
	EXPECT_EXITED(0, finish_kid(_metadata, &w, 30000));
}

/*
 * On the peer, the process names itself by the pid getpid() gives (its pid
 * at the origin): pcntl takes that as the caller.
 */
static int own_pid_remote(void *arg)
{
	int other = *(int *)arg;
	long r;

	WMIGRATE(other);
	r = pcntl(PCNTL_WHERE, getpid(), 0, 0);
	WCHECK(r == other, "PCNTL_WHERE(getpid() = %d) on node %d: %ld (%s)",
	       getpid(), other, r, strerror(errno));
	errno = 0;
	r = pcntl(PCNTL_MIGRATE, getpid(), g_node, 0);
	WCHECK(r == 0, "PCNTL_MIGRATE(getpid(), %d) on node %d: %ld (%s)", g_node,
	       other, r, strerror(errno));
	WCHECK(where(0) == g_node, "back home: PCNTL_WHERE says %ld", where(0));
	return 0;
}

TEST_F_TIMEOUT(migrate, own_pid_on_remote, 60)
{
	NEED_PEERS(1);
	RUN_KID(own_pid_remote, &self->other, 45000);
}

/*
 * A pid given to pcntl(2) is read in the caller's pid space: on a node, a
 * process of that node is named by its pid there even when a process that
 * came from another node had the same pid at its origin; the visitor is
 * named by its cluster-wide pid. The kid forks twins on the peer until one
 * has a pid the test can give a process of its own (clone3 with set_tid);
 * that twin then comes here, where two processes answer to one pid: the
 * local one by its pid, the visitor by PCNTL_GPID(peer, pid).
 */
struct twin_arg {
	int other;
	int cmd;	/* read end: 'x' ends a twin, 'm' brings it here */
};

static int twin_maker(void *varg)
{
	struct twin_arg *a = varg;
	int tries, status;
	pid_t pid;
	char c;

	WMIGRATE(a->other);
	for (tries = 0; tries < 32; tries++) {
		pid = fork();
		WCHECK(pid >= 0, "fork on node %d: %s", a->other, strerror(errno));
		if (pid == 0) {
			/* A process of node a->other, with a pid of its own there. */
			if (read(a->cmd, &c, 1) != 1)
				_exit(2);
			if (c == 'x')
				_exit(3);
			if (pcntl(PCNTL_MIGRATE, 0, g_node, 0) != 0)
				_exit(4);
			wready();
			wait_go();
			_exit(0);
		}
		wsend(pid);
		WCHECK(waitpid(pid, &status, 0) == pid, "waitpid(%d): %s", pid, strerror(errno));
		if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
			continue;
		WCHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		       "the twin ended with status %#x", status);
		return 0;
	}
	WCHECK(0, "no twin of %d tries had a pid free on node %d", tries, g_node);
	return 1;
}

/* A child with pid @pid (clone3's set_tid), which waits to be killed. */
static pid_t fork_with_pid(pid_t pid)
{
	struct clone_args args = {
		.exit_signal = SIGCHLD,
		.set_tid = (uintptr_t)&pid,
		.set_tid_size = 1,
	};
	long r;

	r = syscall(SYS_clone3, &args, sizeof(args));
	if (r == 0) {
		close_kid_fds();
		drop_shared_mappings();
		for (;;)
			pause();
	}
	return r;
}

TEST_F_TIMEOUT(migrate, local_pid_is_not_a_visitors, 90)
{
	struct twin_arg a = { .other = self->other };
	pid_t twin = 0, local = -1;
	struct pcntl_stat st;
	int cmd[2], tries, status;
	struct kid w;

	NEED_PEERS(1);
	ASSERT_EQ(0, pipe(cmd));
	a.cmd = cmd[0];
	start_kid(_metadata, &w, twin_maker, &a);
	close(cmd[0]);
	for (tries = 0; tries < 32 && local < 0; tries++) {
		ASSERT_EQ(sizeof(twin), read_within(w.data, &twin, sizeof(twin), 30000)) {
			TH_LOG("no twin pid from the kid: %s", g_read_within_why);
			finish_kid(_metadata, &w, 1000);
		}
		local = fork_with_pid(twin);
		if (local < 0) {
			ASSERT_EQ(EEXIST, errno) {
				TH_LOG("clone3(set_tid = %d): %s", twin, strerror(errno));
			}
			ASSERT_EQ(1, write(cmd[1], "x", 1));
		}
	}
	ASSERT_EQ(twin, local) {
		TH_LOG("pids of %d twins were all taken here", tries);
		finish_kid(_metadata, &w, 1000);
	}
	ASSERT_EQ(1, write(cmd[1], "m", 1));
	ASSERT_TRUE(kid_ready(&w, 30000)) {
		TH_LOG("the twin did not come here: %s", g_read_within_why);
		kill(local, SIGKILL);
		waitpid(local, &status, 0);
		finish_kid(_metadata, &w, 1000);
	}
	/* Pid `twin` names the process of this node. */
	ASSERT_LE(0, pcntl(PCNTL_STAT, twin, (unsigned long)&st, sizeof(st)));
	EXPECT_EQ((unsigned int)g_node, st.origin);
	EXPECT_EQ(PCNTL_GPID(g_node, twin), st.gpid);
	/* The visitor answers to its cluster-wide pid. */
	ASSERT_LE(0, pcntl(PCNTL_STAT, PCNTL_GPID(self->other, twin), (unsigned long)&st,
			   sizeof(st)));
	EXPECT_EQ((unsigned int)self->other, st.origin);
	EXPECT_EQ((unsigned int)g_node, st.node);
	/* Moving pid `twin` moves the local process; the visitor stays. */
	EXPECT_EQ(0, migrate_errno(twin, self->other, 0));
	EXPECT_EQ(self->other, where(twin));
	EXPECT_EQ(g_node, where(PCNTL_GPID(self->other, twin)));
	kill(local, SIGKILL);
	EXPECT_EQ(0, wait_within(local, 30000, &status));
	close(cmd[1]);
	EXPECT_EXITED(0, finish_kid(_metadata, &w, 30000));
}

static int fork_remote_memory(void *arg)
{
	static char before[FORK_BUF];
	int other = *(int *)arg, status;
	pid_t pid;

	fill(before, FORK_BUF, 61);
	WMIGRATE(other);
	/* Not touched here by the parent before the fork. */
	pid = fork();
	WCHECK(pid >= 0, "fork on node %d: %s", other, strerror(errno));
	if (pid == 0)
		_exit(check(before, FORK_BUF, 61) < 0 ? 0 : 1);
	WCHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
	WCHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "the child forked on node %d does not see memory its parent wrote before migrating (status %#x)",
	       other, status);
	WCHECK(check(before, FORK_BUF, 61) < 0, "the parent's memory differs after the fork");
	WMIGRATE(g_node);
	return 0;
}

/* The child forked on the peer sees its parent's memory (copy of it). */
TEST_F_TIMEOUT(migrate, fork_on_remote_child_memory, 60)
{
	NEED_PEERS(1);
	RUN_KID(fork_remote_memory, &self->other, 45000);
}

/* ---- descriptors are proxy files ---- */

/*
 * A pipe made after the move is an ordinary local pipe: what is written
 * comes back, in one process and through a child forked there.
 */
static int local_pipe_remote(void *arg)
{
	int other = *(int *)arg, p[2], status;
	char buf[32] = "";
	pid_t pid;

	WMIGRATE(other);
	WCHECK(pipe(p) == 0, "pipe on node %d: %s", other, strerror(errno));
	WCHECK(write(p[1], "local", 5) == 5, "write: %s", strerror(errno));
	WCHECK(read(p[0], buf, sizeof(buf)) == 5 && !memcmp(buf, "local", 5),
	       "a pipe made on node %d lost its data: '%s'", other, buf);
	pid = fork();
	WCHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0)
		_exit(write(p[1], "child", 5) == 5 ? 0 : 1);
	WCHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	       WEXITSTATUS(status) == 0, "child: status %#x", status);
	close(p[1]);
	memset(buf, 0, sizeof(buf));
	WCHECK(read(p[0], buf, sizeof(buf)) == 5 && !memcmp(buf, "child", 5),
	       "the child's write: '%s'", buf);
	WCHECK(read(p[0], buf, sizeof(buf)) == 0, "no end of file after the last close");
	close(p[0]);
	WMIGRATE(g_node);
	return 0;
}

TEST_F_TIMEOUT(migrate, pipe_made_after_migration, 60)
{
	NEED_PEERS(1);
	RUN_KID(local_pipe_remote, &self->other, 45000);
}

/*
 * The worker holds the only write end of a pipe the test reads at the
 * origin; it writes on the peer and closes it there: the reader gets the
 * data, then end of file.
 */
static int close_remote(void *varg)
{
	int *a = varg;

	WMIGRATE(a[0]);
	WCHECK(write(a[1], "bye", 3) == 3, "write on node %d: %s", a[0], strerror(errno));
	WCHECK(close(a[1]) == 0, "close on node %d: %s", a[0], strerror(errno));
	wready();
	wait_go();
	return 0;
}

TEST_F_TIMEOUT(migrate, pipe_end_closed_remotely, 60)
{
	struct pollfd pfd;
	char buf[8] = "";
	struct kid w;
	int p[2], a[2];

	NEED_PEERS(1);
	ASSERT_EQ(0, pipe(p));
	a[0] = self->other;
	a[1] = p[1];
	start_kid(_metadata, &w, close_remote, a);
	close(p[1]);
	EXPECT_TRUE(kid_ready(&w, 30000));
	EXPECT_EQ(3, read_within(p[0], buf, 3, 5000));
	EXPECT_EQ(0, memcmp(buf, "bye", 3));
	/*
	 * End of file, not a hang: nobody holds the write end any more. The
	 * peer's close reaches the origin asynchronously, so wait for the
	 * pipe to say so; the read does not block (and fails with EAGAIN
	 * where a write end is still held).
	 */
	pfd.fd = p[0];
	pfd.events = POLLIN;
	EXPECT_EQ(1, poll(&pfd, 1, 10000));
	EXPECT_TRUE(pfd.revents & (POLLIN | POLLHUP)) {
		TH_LOG("revents %#x", pfd.revents);
	}
	ASSERT_EQ(0, fcntl(p[0], F_SETFL, O_NONBLOCK));
	errno = 0;
	EXPECT_EQ(0, read(p[0], buf, 1)) {
		TH_LOG("read after the remote close: %s", strerror(errno));
	}
	EXPECT_EXITED(0, finish_kid(_metadata, &w, 30000));
	close(p[0]);
}

/*
 * Descriptor and status flags travel, and the kernel's descriptor calls
 * work on the proxies: F_GETFL, F_GETFD, dup, dup2, F_DUPFD_CLOEXEC,
 * close_range, readv/writev, and a read of more than a megabyte at once.
 */
#define BIG_READ	(1536UL << 10)

static int fd_calls_remote(void *arg)
{
	static char big[BIG_READ], back[BIG_READ];
	char path[64], link[96], one[4], two[6];
	int other = *(int *)arg, wfd, rfd, d, fl;
	struct iovec iov[2];
	ssize_t n;

	snprintf(path, sizeof(path), "/tmp/migrate_test.fd.%d", getpid());
	wfd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
	rfd = open(path, O_RDONLY | O_NONBLOCK);
	WCHECK(wfd >= 0 && rfd >= 0, "open %s: %s", path, strerror(errno));
	fill(big, BIG_READ, 71);
	WCHECK(write(wfd, big, BIG_READ) == (ssize_t)BIG_READ, "write: %s", strerror(errno));

	WMIGRATE(other);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", rfd);
	memset(link, 0, sizeof(link));
	WCHECK(readlink(path, link, sizeof(link) - 1) > 0 && strstr(link, "cohort-proxy:"),
	       "on node %d descriptor %d is not a proxy file: '%s'", other, rfd, link);
	snprintf(path, sizeof(path), "/tmp/migrate_test.fd.%d", getpid());
	fl = fcntl(wfd, F_GETFL);
	WCHECK(fl >= 0 && (fl & O_APPEND) && (fl & O_ACCMODE) == O_WRONLY,
	       "F_GETFL of the O_APPEND file on node %d: %#x", other, fl);
	WCHECK(fcntl(wfd, F_GETFD) == FD_CLOEXEC, "F_GETFD lost FD_CLOEXEC");
	fl = fcntl(rfd, F_GETFL);
	WCHECK(fl >= 0 && (fl & O_NONBLOCK), "F_GETFL lost O_NONBLOCK: %#x", fl);
	WCHECK(fcntl(rfd, F_GETFD) == 0, "F_GETFD of the other file: %d", fcntl(rfd, F_GETFD));

	/* One read of more than FILE_MAX_DATA returns everything. */
	n = read(rfd, back, BIG_READ);
	WCHECK(n == (ssize_t)BIG_READ, "read of %lu bytes on node %d: %zd (%s)", BIG_READ,
	       other, n, strerror(errno));
	WCHECK_MEM(back, BIG_READ, 71, "read back on node %d", other);

	d = dup(rfd);
	WCHECK(d >= 0, "dup of a proxy on node %d: %s", other, strerror(errno));
	WCHECK(lseek(d, 2, SEEK_SET) == 2, "lseek through the dup: %s", strerror(errno));
	WCHECK(lseek(rfd, 0, SEEK_CUR) == 2, "a dup does not share the offset");
	WCHECK(dup2(d, 40) == 40, "dup2: %s", strerror(errno));
	WCHECK(fcntl(d, F_DUPFD_CLOEXEC, 50) >= 50, "F_DUPFD_CLOEXEC: %s", strerror(errno));
	WCHECK(fcntl(rfd, F_SETFD, FD_CLOEXEC) == 0 && fcntl(rfd, F_GETFD) == FD_CLOEXEC,
	       "F_SETFD did not stick");

	iov[0] = (struct iovec){ .iov_base = one, .iov_len = sizeof(one) };
	iov[1] = (struct iovec){ .iov_base = two, .iov_len = sizeof(two) };
	WCHECK(lseek(d, 0, SEEK_SET) == 0, "lseek: %s", strerror(errno));
	n = readv(d, iov, 2);
	WCHECK(n == 10 && !memcmp(one, big, 4) && !memcmp(two, big + 4, 6),
	       "readv of a proxy on node %d: %zd (%s)", other, n, strerror(errno));
	iov[0] = (struct iovec){ .iov_base = "ab", .iov_len = 2 };
	iov[1] = (struct iovec){ .iov_base = "cd", .iov_len = 2 };
	WCHECK(writev(wfd, iov, 2) == 4, "writev: %s", strerror(errno));
	WCHECK(pread(rfd, one, 4, BIG_READ) == 4 && !memcmp(one, "abcd", 4),
	       "writev then pread: '%.4s'", one);

	WCHECK(syscall(SYS_close_range, 40, ~0U, 0) == 0, "close_range: %s", strerror(errno));
	errno = 0;
	WCHECK(fcntl(40, F_GETFD) == -1 && errno == EBADF, "close_range left fd 40 open");
	close(d);
	close(rfd);
	close(wfd);
	WMIGRATE(g_node);
	unlink(path);
	return 0;
}

TEST_F_TIMEOUT(migrate, descriptor_calls_on_proxies, 90)
{
	NEED_PEERS(1);
	RUN_KID(fd_calls_remote, &self->other, 75000);
}

/*
 * poll and epoll on a proxy of a pipe: not ready, then ready once the
 * test writes at the origin; a blocking read waits for the data.
 *
 * Before each wait the worker tells the test (a byte on its data pipe),
 * and right after it tells it again (ready): the test checks that the
 * wait has not ended NO_DATA_MS after it began, with nothing to read,
 * then writes, and the wait must end. A wait that does not wait fails the
 * test; one that does not wake up when the data comes too.
 */
#define NO_DATA_MS	500

static int poll_remote(void *varg)
{
	int *a = varg, ep, n;
	struct pollfd pfd = { .fd = a[1], .events = POLLIN };
	struct epoll_event ev = { .events = EPOLLIN }, out;
	char c = 0;
	ssize_t r;

	WMIGRATE(a[0]);
	n = poll(&pfd, 1, 100);
	WCHECK(n == 0, "poll of an empty pipe on node %d: %d (revents %#x)", a[0], n,
	       pfd.revents);
	ep = epoll_create1(0);
	WCHECK(ep >= 0, "epoll_create1: %s", strerror(errno));
	WCHECK(epoll_ctl(ep, EPOLL_CTL_ADD, a[1], &ev) == 0, "EPOLL_CTL_ADD of a proxy: %s",
	       strerror(errno));
	WCHECK(write(w_data, "e", 1) == 1, "data: %s", strerror(errno));
	n = epoll_wait(ep, &out, 1, 20000);
	wready();
	WCHECK(n == 1 && (out.events & EPOLLIN), "epoll_wait on node %d: %d (%#x)", a[0], n,
	       n > 0 ? out.events : 0);
	n = poll(&pfd, 1, 10000);
	WCHECK(n == 1 && (pfd.revents & POLLIN), "poll on node %d: %d (%#x)", a[0], n,
	       pfd.revents);
	WCHECK(read(a[1], &c, 1) == 1 && c == 'p', "read: '%c' (%s)", c, strerror(errno));
	/* Blocking read: the test writes once it has seen it wait. */
	WCHECK(write(w_data, "b", 1) == 1, "data: %s", strerror(errno));
	r = read(a[1], &c, 1);
	wready();
	WCHECK(r == 1 && c == 'q', "blocking read on node %d: %zd '%c' (%s)", a[0], r, c,
	       strerror(errno));
	close(ep);
	WMIGRATE(g_node);
	return 0;
}

/*
 * The worker @w is about to wait (it sent @what on its data pipe): it
 * must still wait NO_DATA_MS later, then the test writes @data on @fd and
 * the wait must end.
 */
static void wait_then_wake(struct __test_metadata *_metadata, struct kid *w, char what,
			   int fd, const char *data)
{
	char c = 0;

	ASSERT_EQ(1, read_within(w->data, &c, 1, 30000));
	ASSERT_EQ(what, c);
	EXPECT_FALSE(kid_ready(w, NO_DATA_MS)) {
		TH_LOG("the worker's wait '%c' ended with nothing to read", what);
	}
	ASSERT_EQ(1, write(fd, data, 1));
	EXPECT_TRUE(kid_ready(w, 20000)) {
		TH_LOG("the worker's wait '%c' did not end when '%s' came", what, data);
	}
}

TEST_F_TIMEOUT(migrate, poll_and_blocking_read_on_proxy, 60)
{
	struct kid w;
	int p[2], a[2];

	NEED_PEERS(1);
	ASSERT_EQ(0, pipe(p));
	a[0] = self->other;
	a[1] = p[0];
	start_kid(_metadata, &w, poll_remote, a);
	close(p[0]);
	wait_then_wake(_metadata, &w, 'e', p[1], "p");
	wait_then_wake(_metadata, &w, 'b', p[1], "q");
	EXPECT_EXITED(0, finish_kid(_metadata, &w, 30000));
	close(p[1]);
}

/*
 * The open file description is shared with the origin: a write through
 * the proxy moves the offset the test sees, and O_APPEND writes from both
 * sides never overwrite each other.
 */
#define APPENDS 40

static int append_remote(void *varg)
{
	int *a = varg, i;
	char rec[8];

	WMIGRATE(a[0]);
	WCHECK(write(a[1], "12345", 5) == 5, "write: %s", strerror(errno));
	wready();
	for (i = 0; i < APPENDS; i++) {
		snprintf(rec, sizeof(rec), "P%03d\n", i);
		WCHECK(write(a[2], rec, 5) == 5, "append %d on node %d: %s", i, a[0],
		       strerror(errno));
	}
	WMIGRATE(g_node);
	return 0;
}

TEST_F_TIMEOUT(migrate, shared_offset_and_append, 90)
{
	char path[64], rec[8], buf[APPENDS * 10 + 1];
	int a[3], i, np = 0, nc = 0;
	struct kid w;
	ssize_t n;

	NEED_PEERS(1);
	snprintf(path, sizeof(path), "/tmp/migrate_test.app.%d", getpid());
	a[0] = self->other;
	a[1] = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
	a[2] = open(path, O_WRONLY | O_APPEND);
	ASSERT_LE(0, a[1]);
	ASSERT_LE(0, a[2]);
	start_kid(_metadata, &w, append_remote, a);
	ASSERT_TRUE(kid_ready(&w, 30000));
	/* The worker's write moved the offset of the description we share. */
	EXPECT_EQ(5, lseek(a[1], 0, SEEK_CUR));
	for (i = 0; i < APPENDS; i++) {
		snprintf(rec, sizeof(rec), "C%03d\n", i);
		ASSERT_EQ(5, write(a[2], rec, 5));
	}
	EXPECT_EXITED(0, finish_kid(_metadata, &w, 60000));
	n = pread(a[1], buf, sizeof(buf) - 1, 5);
	EXPECT_EQ(2 * APPENDS * 5, n);
	for (i = 0; i + 5 <= n; i += 5) {
		int v = atoi(buf + i + 1);

		EXPECT_EQ('\n', buf[i + 4]);
		if (buf[i] == 'P' && v == np)
			np++;
		else if (buf[i] == 'C' && v == nc)
			nc++;
		else
			TH_LOG("record '%.4s' at %d out of order", buf + i, i);
	}
	EXPECT_EQ(APPENDS, np);
	EXPECT_EQ(APPENDS, nc);
	close(a[1]);
	close(a[2]);
	unlink(path);
}

/*
 * A signal interrupts a read that waits on a proxy on the node the task
 * runs on: with SA_RESTART the read goes on and gets the data written
 * after the handler ran; without it, the read fails with EINTR.
 */
/* Signals a worker's handler counted, by number. */
static volatile sig_atomic_t seen[65];

static void count_signal(int sig)
{
	seen[sig]++;
}

/*
 * The worker's SIGUSR2 handler: counts the signal and tells the test
 * through w_data what it interrupted, from the registers the kernel saved
 * for sigreturn (x86-64): 'R' a read the kernel will restart (ip back on
 * the syscall instruction, ax the read's number again), 'E' a system call
 * that failed with EINTR (ip right after a syscall instruction), 'u'
 * anything else: the signal came before the worker was in its read, and
 * the test sends it again. (One instruction before the read's syscall
 * looks like 'R': the read then just waits for its data.)
 */
static void tell_signal(int sig, siginfo_t *si, void *ucv)
{
	char c = 'u';
#ifdef __x86_64__
	const ucontext_t *uc = ucv;
	const unsigned char *ip = (const unsigned char *)uc->uc_mcontext.gregs[REG_RIP];
	long long ax = uc->uc_mcontext.gregs[REG_RAX];

	if (ax == __NR_read && ip[0] == 0x0f && ip[1] == 0x05)
		c = 'R';
	else if (ax == -EINTR && ip[-2] == 0x0f && ip[-1] == 0x05)
		c = 'E';
#endif
	(void)si;
	(void)ucv;
	seen[sig]++;
	if (write(w_data, &c, 1) != 1)
		_exit(44);
}

static int restart_remote(void *varg)
{
	int *a = varg, e;
	struct sigaction sa = { .sa_sigaction = tell_signal,
				.sa_flags = SA_SIGINFO | SA_RESTART };
	char c = 0;
	ssize_t n;

	WCHECK(sigaction(SIGUSR2, &sa, NULL) == 0, "sigaction: %s", strerror(errno));
	WMIGRATE(a[0]);
	wready();
	n = read(a[1], &c, 1);
	WCHECK(n == 1 && c == 'r', "SA_RESTART read on node %d: %zd '%c', %d signals (%s)",
	       a[0], n, c, (int)seen[SIGUSR2], strerror(errno));
	sa.sa_flags = SA_SIGINFO;
	WCHECK(sigaction(SIGUSR2, &sa, NULL) == 0, "sigaction: %s", strerror(errno));
	wready();
	errno = 0;
	n = read(a[1], &c, 1);
	e = errno;
	wready();
	WCHECK(n == -1 && e == EINTR, "read without SA_RESTART on node %d: %zd, errno %d, %d signals",
	       a[0], n, e, (int)seen[SIGUSR2]);
	WMIGRATE(g_node);
	return 0;
}

/*
 * SIGUSR2 to worker @w until its handler interrupted something other than
 * user space (15 tries); returns what the handler said, 0 if it said
 * nothing within 20 s.
 */
static char signal_worker(struct __test_metadata *_metadata, struct kid *w)
{
	char c = 0;
	int i;

	for (i = 0; i < 15; i++) {
		EXPECT_EQ(0, kill(w->pid, SIGUSR2));
		if (read_within(w->data, &c, 1, 20000) != 1)
			return 0;
		if (c != 'u')
			return c;
		/* Not in its read yet: it is a few instructions away. */
		cohort_msleep(50);
	}
	TH_LOG("15 signals all came before the worker's read");
	return c;
}

TEST_F_TIMEOUT(migrate, signal_restarts_proxy_read, 90)
{
	struct kid w;
	int p[2], a[2];

#ifndef __x86_64__
	SKIP(return, "reads the x86-64 signal frame");
#endif
	NEED_PEERS(1);
	ASSERT_EQ(0, pipe(p));
	a[0] = self->other;
	a[1] = p[0];
	start_kid(_metadata, &w, restart_remote, a);
	close(p[0]);
	ASSERT_TRUE(kid_ready(&w, 30000)) {
		finish_kid(_metadata, &w, 1000);
	}
	/* SA_RESTART: the handler ran in the read, which goes on. */
	EXPECT_EQ('R', signal_worker(_metadata, &w));
	ASSERT_EQ(1, write(p[1], "r", 1));
	ASSERT_TRUE(kid_ready(&w, 20000)) {
		finish_kid(_metadata, &w, 1000);
	}
	/* Without it: the handler ran in the read, which failed. */
	EXPECT_EQ('E', signal_worker(_metadata, &w));
	EXPECT_TRUE(kid_ready(&w, 20000));
	EXPECT_EXITED(0, finish_kid(_metadata, &w, 30000));
	close(p[1]);
}

/*
 * A child forked on the peer inherits the proxies: its output reaches the
 * origin's pipe (here the worker's stdout), and back at its origin the
 * process has its very files again, not proxies.
 */
static int inherit_remote(void *arg)
{
	int other = *(int *)arg, status;
	struct stat before, after;
	char link[128] = "", path[64];
	pid_t pid;

	WCHECK(fstat(w_data, &before) == 0, "fstat: %s", strerror(errno));
	WMIGRATE(other);
	pid = fork();
	WCHECK(pid >= 0, "fork on node %d: %s", other, strerror(errno));
	if (pid == 0) {
		static const char msg[] = "from the child";

		_exit(write(w_data, msg, sizeof(msg) - 1) == sizeof(msg) - 1 ? 0 : 1);
	}
	WCHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	       WEXITSTATUS(status) == 0, "the child forked on node %d could not write to its "
	       "inherited descriptor (status %#x)", other, status);
	WMIGRATE(g_node);
	WCHECK(fstat(w_data, &after) == 0 && after.st_ino == before.st_ino &&
	       after.st_dev == before.st_dev, "back home, the descriptor is another file");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", w_data);
	WCHECK(readlink(path, link, sizeof(link) - 1) > 0 && !strstr(link, "cohort-proxy"),
	       "back home the descriptor is still a proxy: %s", link);
	return 0;
}

TEST_F_TIMEOUT(migrate, child_inherits_proxies_and_home_unwraps, 60)
{
	static const char msg[] = "from the child";
	char got[32] = "";
	struct kid w;

	NEED_PEERS(1);
	start_kid(_metadata, &w, inherit_remote, &self->other);
	EXPECT_EQ(sizeof(msg) - 1, read_within(w.data, got, sizeof(msg) - 1, 30000));
	EXPECT_STREQ(msg, got);
	EXPECT_EXITED(0, finish_kid(_metadata, &w, 30000));
}

/*
 * Through a third node: 0 -> 1 -> 2, a proxy whose home is neither the
 * node the task left nor the one it reached, then home again.
 */
static int third_node(void *varg)
{
	int *a = varg;
	char c = 0;

	WMIGRATE(a[0]);
	WMIGRATE(a[1]);
	WCHECK(write(a[2], "3", 1) == 1, "write on node %d: %s", a[1], strerror(errno));
	WCHECK(read(a[3], &c, 1) == 1 && c == 't', "read on node %d: '%c' (%s)", a[1], c,
	       strerror(errno));
	WMIGRATE(g_node);
	WCHECK(write(a[2], "h", 1) == 1, "write back home: %s", strerror(errno));
	return 0;
}

TEST_F_TIMEOUT(migrate, proxies_through_a_third_node, 90)
{
	int up[2], down[2], a[4];
	struct kid w;
	char buf[2] = "";

	NEED_PEERS(2);
	ASSERT_EQ(0, pipe(up));
	ASSERT_EQ(0, pipe(down));
	a[0] = peer(0);
	a[1] = peer(1);
	a[2] = up[1];
	a[3] = down[0];
	start_kid(_metadata, &w, third_node, a);
	close(up[1]);
	close(down[0]);
	ASSERT_EQ(1, write(down[1], "t", 1));
	EXPECT_EQ(2, read_within(up[0], buf, 2, 60000));
	EXPECT_EQ(0, memcmp(buf, "3h", 2));
	EXPECT_EXITED(0, finish_kid(_metadata, &w, 30000));
	close(up[0]);
	close(down[1]);
}

/*
 * Path calls resolve at the origin, like open: the process sees one file
 * system. A file made at the origin before the move is found by stat,
 * renamed, linked and removed from the peer; a directory made there is
 * the working directory for relative paths; getcwd and readlink answer
 * from the origin; and back home every change is there.
 */
static int paths_remote(void *arg)
{
	char dir[64], file[96], moved[96], link[96], target[128] = "", cwd[256] = "";
	int other = *(int *)arg, fd;
	struct stat st;
	ssize_t n;

	snprintf(dir, sizeof(dir), "/tmp/migrate_test.dir.%d", getpid());
	snprintf(file, sizeof(file), "%s.f", dir);
	snprintf(moved, sizeof(moved), "%s/moved", dir);
	snprintf(link, sizeof(link), "%s/link", dir);
	fd = open(file, O_CREAT | O_WRONLY | O_TRUNC, 0640);
	WCHECK(fd >= 0 && write(fd, "12345", 5) == 5, "create %s: %s", file, strerror(errno));
	close(fd);

	WMIGRATE(other);
	WCHECK(stat(file, &st) == 0 && st.st_size == 5 && (st.st_mode & 0777) == 0640,
	       "stat of a file made at the origin, on node %d: %s", other, strerror(errno));
	WCHECK(access(file, R_OK) == 0, "access on node %d: %s", other, strerror(errno));
	WCHECK(mkdir(dir, 0750) == 0, "mkdir on node %d: %s", other, strerror(errno));
	WCHECK(rename(file, moved) == 0, "rename on node %d: %s", other, strerror(errno));
	WCHECK(symlink("moved", link) == 0, "symlink on node %d: %s", other, strerror(errno));
	WCHECK(chdir(dir) == 0, "chdir on node %d: %s", other, strerror(errno));
	WCHECK(getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, dir),
	       "getcwd on node %d after chdir(%s): '%s' (%s)", other, dir, cwd, strerror(errno));
	n = readlink("link", target, sizeof(target) - 1);
	WCHECK(n == 5 && !memcmp(target, "moved", 5), "readlink of a relative path on node %d: %zd",
	       other, n);
	WCHECK(lstat("link", &st) == 0 && S_ISLNK(st.st_mode), "lstat: %s", strerror(errno));
	WCHECK(fstatat(AT_FDCWD, "moved", &st, 0) == 0 && st.st_size == 5,
	       "fstatat(AT_FDCWD, relative) on node %d: %s", other, strerror(errno));
	fd = open("moved", O_RDONLY);
	WCHECK(fd >= 0, "open relative after chdir on node %d: %s", other, strerror(errno));
	close(fd);
	WCHECK(unlink("link") == 0, "unlink on node %d: %s", other, strerror(errno));
	WCHECK(truncate("moved", 2) == 0, "truncate on node %d: %s", other, strerror(errno));
	errno = 0;
	WCHECK(stat("link", &st) == -1 && errno == ENOENT, "unlinked link still there");

	WMIGRATE(g_node);
	memset(cwd, 0, sizeof(cwd));
	WCHECK(getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, dir), "back home the cwd is '%s'", cwd);
	WCHECK(stat(moved, &st) == 0 && st.st_size == 2, "back home %s: %s, size %lld", moved,
	       strerror(errno), (long long)st.st_size);
	WCHECK(stat(file, &st) == -1, "back home the renamed file is still there");
	WCHECK(unlink(moved) == 0 && chdir("/") == 0 && rmdir(dir) == 0, "clean up: %s",
	       strerror(errno));
	return 0;
}

TEST_F_TIMEOUT(migrate, path_calls_resolve_at_origin, 60)
{
	NEED_PEERS(1);
	RUN_KID(paths_remote, &self->other, 45000);
}

/*
 * Directories and ftruncate through proxies: a directory of the origin
 * with more entries than one request to the home brings back (1500 names
 * of 60 bytes), read on the peer through a descriptor opened before the
 * move with a getdents64 buffer that holds a few entries at a time (every
 * entry the caller had no room for comes first next time), and through
 * opendir() after the move (the path resolves at the origin): each name
 * exactly once. rewinddir() reads them all again; seekdir() to a
 * telldir() reads the same entry again. ftruncate() of a file opened for
 * writing at the origin changes its size there; of one opened read-only
 * it fails with EINVAL as locally.
 */
#define DIR_ENTRIES 1500

static int dir_entry_index(const char *name)
{
	int i;

	if (sscanf(name, "entry-%d-", &i) != 1 || i < 0 || i >= DIR_ENTRIES)
		return -1;
	return i;
}

/* Counts each entry of @fd read with getdents64 into a @size-byte buffer. */
static int getdents_all(int fd, size_t size, unsigned char *seen)
{
	char buf[4096];
	long n, at;
	int others = 0;

	memset(seen, 0, DIR_ENTRIES);
	while ((n = syscall(SYS_getdents64, fd, buf, size)) > 0) {
		for (at = 0; at < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + at);
			int i = dir_entry_index(d->d_name);

			if (i < 0)
				others++;
			else
				seen[i]++;
			at += d->d_reclen;
		}
	}
	return n < 0 ? -errno : others;
}

static int dirs_remote(void *arg)
{
	char dir[64], path[160], pad[61], name[256] = "", again[256] = "";
	static unsigned char seen[DIR_ENTRIES];
	int other = *(int *)arg, dfd, rw, ro, i, r, count;
	struct dirent *e;
	struct stat st;
	long where_at;
	DIR *d;

	memset(pad, 'x', 60);
	pad[60] = 0;
	snprintf(dir, sizeof(dir), "/tmp/migrate_test.dirs.%d", getpid());
	WCHECK(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno));
	for (i = 0; i < DIR_ENTRIES; i++) {
		snprintf(path, sizeof(path), "%s/entry-%04d-%s", dir, i, pad);
		r = open(path, O_CREAT | O_WRONLY, 0644);
		WCHECK(r >= 0, "create %s: %s", path, strerror(errno));
		close(r);
	}
	snprintf(path, sizeof(path), "%s/entry-0000-%s", dir, pad);
	rw = open(path, O_RDWR);
	ro = open(path, O_RDONLY);
	WCHECK(rw >= 0 && ro >= 0 && write(rw, "0123456789", 10) == 10, "open %s: %s", path,
	       strerror(errno));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	WCHECK(dfd >= 0, "open %s: %s", dir, strerror(errno));

	WMIGRATE(other);
	r = getdents_all(dfd, 300, seen);
	WCHECK(r == 2, "getdents64 of a proxy directory on node %d: %d (. and .. expected)",
	       other, r);
	for (i = 0; i < DIR_ENTRIES; i++)
		WCHECK(seen[i] == 1, "entry %d read %d times through a 300-byte buffer on node %d",
		       i, seen[i], other);
	d = opendir(dir);
	WCHECK(d, "opendir of a directory of the origin, on node %d: %s", other, strerror(errno));
	for (r = 0; r < 2; r++) {
		memset(seen, 0, DIR_ENTRIES);
		count = 0;
		errno = 0;
		while ((e = readdir(d))) {
			i = dir_entry_index(e->d_name);
			if (i >= 0)
				seen[i]++;
			if (++count == 700) {
				where_at = telldir(d);
				snprintf(name, sizeof(name), "%s", readdir(d)->d_name);
				seekdir(d, where_at);
			}
			if (count == 701)
				snprintf(again, sizeof(again), "%s", e->d_name);
		}
		WCHECK(errno == 0, "readdir on node %d: %s", other, strerror(errno));
		WCHECK(count == DIR_ENTRIES + 2, "pass %d: readdir gave %d entries, want %d", r,
		       count, DIR_ENTRIES + 2);
		for (i = 0; i < DIR_ENTRIES; i++)
			WCHECK(seen[i] == 1, "pass %d: entry %d read %d times", r, i, seen[i]);
		WCHECK(name[0] && !strcmp(name, again),
		       "seekdir to a telldir read '%s', then '%s'", name, again);
		rewinddir(d);
	}
	closedir(d);

	WCHECK(ftruncate(rw, 3) == 0, "ftruncate of a proxy on node %d: %s", other,
	       strerror(errno));
	WCHECK(fstat(rw, &st) == 0 && st.st_size == 3, "size after ftruncate on node %d: %lld",
	       other, (long long)st.st_size);
	errno = 0;
	WCHECK(ftruncate(ro, 1) == -1 && errno == EINVAL,
	       "ftruncate of a read-only proxy on node %d: errno %d, want EINVAL", other, errno);

	WMIGRATE(g_node);
	WCHECK(stat(path, &st) == 0 && st.st_size == 3 && (st.st_mode & 0777) == 0644,
	       "back home %s: size %lld mode %o", path, (long long)st.st_size, st.st_mode & 0777);
	close(rw);
	close(ro);
	close(dfd);
	for (i = 0; i < DIR_ENTRIES; i++) {
		snprintf(path, sizeof(path), "%s/entry-%04d-%s", dir, i, pad);
		unlink(path);
	}
	WCHECK(rmdir(dir) == 0, "clean up %s: %s", dir, strerror(errno));
	return 0;
}

TEST_F_TIMEOUT(migrate, directories_and_ftruncate_on_proxies, 120)
{
	NEED_PEERS(1);
	RUN_KID(dirs_remote, &self->other, 100000);
}

/*
 * fchmod, fchown and futimens of a proxy change the file at its home, as
 * the call would there: as root every change works, fchown clears the
 * set-user-ID bit (the home's chown logic, not the proxy's), explicit
 * times keep their nanoseconds, UTIME_OMIT keeps a time and UTIME_NOW or
 * NULL times take the time now; the origin sees each change.
 */
static int attrs_root(void *arg)
{
	int other = *(int *)arg, fd;
	struct timespec ts[2];
	struct stat st;
	char path[96];
	time_t before;

	snprintf(path, sizeof(path), "/tmp/migrate_test.attrs.%d", getpid());
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	WCHECK(fd >= 0, "create %s: %s", path, strerror(errno));
	WMIGRATE(other);
	WCHECK(fchmod(fd, 04710) == 0, "fchmod of a proxy on node %d: %s", other, strerror(errno));
	WCHECK(fstat(fd, &st) == 0 && (st.st_mode & 07777) == 04710, "mode after fchmod: %o",
	       st.st_mode & 07777);
	WCHECK(fchown(fd, 1234, 5678) == 0, "fchown of a proxy on node %d: %s", other,
	       strerror(errno));
	WCHECK(fstat(fd, &st) == 0 && st.st_uid == 1234 && st.st_gid == 5678 &&
	       (st.st_mode & 07777) == 0710,
	       "after fchown: uid %u gid %u mode %o (want 1234 5678 0710: chown clears S_ISUID)",
	       st.st_uid, st.st_gid, st.st_mode & 07777);
	WCHECK(fchown(fd, -1, 42) == 0 && fstat(fd, &st) == 0 && st.st_uid == 1234 &&
	       st.st_gid == 42, "fchown(-1, 42): %s, uid %u gid %u", strerror(errno), st.st_uid,
	       st.st_gid);
	ts[0].tv_sec = 1000000000;
	ts[0].tv_nsec = 500;
	ts[1].tv_sec = 1200000000;
	ts[1].tv_nsec = 250;
	WCHECK(futimens(fd, ts) == 0, "futimens of a proxy on node %d: %s", other,
	       strerror(errno));
	WCHECK(fstat(fd, &st) == 0 && st.st_atim.tv_sec == 1000000000 &&
	       st.st_atim.tv_nsec == 500 && st.st_mtim.tv_sec == 1200000000 &&
	       st.st_mtim.tv_nsec == 250, "times after futimens: %lld.%09ld %lld.%09ld",
	       (long long)st.st_atim.tv_sec, st.st_atim.tv_nsec, (long long)st.st_mtim.tv_sec,
	       st.st_mtim.tv_nsec);
	before = time(NULL);
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_nsec = UTIME_NOW;
	WCHECK(futimens(fd, ts) == 0 && fstat(fd, &st) == 0 &&
	       st.st_atim.tv_sec == 1000000000 && st.st_atim.tv_nsec == 500 &&
	       st.st_mtim.tv_sec >= before - 60,
	       "UTIME_OMIT, UTIME_NOW: %s, %lld.%09ld %lld", strerror(errno),
	       (long long)st.st_atim.tv_sec, st.st_atim.tv_nsec, (long long)st.st_mtim.tv_sec);
	WCHECK(futimens(fd, NULL) == 0 && fstat(fd, &st) == 0 &&
	       st.st_atim.tv_sec >= before - 60, "futimens(NULL): %s, atime %lld",
	       strerror(errno), (long long)st.st_atim.tv_sec);
	errno = 0;
	ts[0].tv_nsec = 1000000000;
	WCHECK(futimens(fd, ts) == -1 && errno == EINVAL, "futimens with 10^9 ns: errno %d",
	       errno);
	WMIGRATE(g_node);
	WCHECK(stat(path, &st) == 0 && st.st_uid == 1234 && st.st_gid == 42 &&
	       (st.st_mode & 07777) == 0710 && st.st_atim.tv_sec >= before - 60,
	       "at the origin: uid %u gid %u mode %o atime %lld", st.st_uid, st.st_gid,
	       st.st_mode & 07777, (long long)st.st_atim.tv_sec);
	close(fd);
	WCHECK(unlink(path) == 0, "clean up %s: %s", path, strerror(errno));
	return 0;
}

TEST_F_TIMEOUT(migrate, attributes_through_proxies, 60)
{
	NEED_PEERS(1);
	RUN_KID(attrs_root, &self->other, 45000);
}

/*
 * The home checks a proxy's fchmod, fchown and futimens with the caller's
 * credentials, not its own server's: uid 65534 may change the mode and the
 * group of its own file (to a group it is in), not give it away nor take
 * a group it is not in (EPERM); on root's file that it may write, the time
 * now works and an explicit time or a mode is EPERM, as locally.
 */
static int attrs_unprivileged(void *arg)
{
	int other = *(int *)arg, mine, theirs;
	char a[96], b[96];
	struct timespec ts[2] = { { 5, 0 }, { 5, 0 } };
	struct stat st;

	snprintf(a, sizeof(a), "/tmp/migrate_test.mine.%d", getpid());
	snprintf(b, sizeof(b), "/tmp/migrate_test.theirs.%d", getpid());
	mine = open(a, O_CREAT | O_RDWR | O_TRUNC, 0644);
	theirs = open(b, O_CREAT | O_RDWR | O_TRUNC, 0644);
	WCHECK(mine >= 0 && theirs >= 0, "create: %s", strerror(errno));
	WCHECK(fchown(mine, 65534, 65534) == 0 && fchmod(theirs, 0666) == 0, "set up: %s",
	       strerror(errno));
	/* Unlinked now: root's tidy-up is not the test's business later. */
	WCHECK(unlink(a) == 0 && unlink(b) == 0, "unlink: %s", strerror(errno));
	WCHECK(setgroups(0, NULL) == 0 && setgid(65534) == 0 && setuid(65534) == 0,
	       "drop to 65534: %s", strerror(errno));
	WMIGRATE(other);
	WCHECK(fchmod(mine, 0600) == 0, "fchmod of its own file on node %d: %s", other,
	       strerror(errno));
	errno = 0;
	WCHECK(fchown(mine, 0, -1) == -1 && errno == EPERM,
	       "giving its file to root on node %d: errno %d, want EPERM", other, errno);
	errno = 0;
	WCHECK(fchown(mine, -1, 0) == -1 && errno == EPERM,
	       "taking group 0 on node %d: errno %d, want EPERM", other, errno);
	WCHECK(fchown(mine, -1, 65534) == 0, "its own group on node %d: %s", other,
	       strerror(errno));
	WCHECK(futimens(mine, ts) == 0, "explicit times on its own file, node %d: %s", other,
	       strerror(errno));
	WCHECK(futimens(theirs, NULL) == 0, "times now on a file it may write, node %d: %s",
	       other, strerror(errno));
	errno = 0;
	WCHECK(futimens(theirs, ts) == -1 && errno == EPERM,
	       "explicit times on root's file, node %d: errno %d, want EPERM", other, errno);
	errno = 0;
	WCHECK(fchmod(theirs, 0600) == -1 && errno == EPERM,
	       "fchmod of root's file on node %d: errno %d, want EPERM", other, errno);
	WMIGRATE(g_node);
	WCHECK(fstat(mine, &st) == 0 && (st.st_mode & 07777) == 0600 && st.st_uid == 65534 &&
	       st.st_mtim.tv_sec == 5, "at the origin: mode %o uid %u mtime %lld",
	       st.st_mode & 07777, st.st_uid, (long long)st.st_mtim.tv_sec);
	WCHECK(fstat(theirs, &st) == 0 && (st.st_mode & 07777) == 0666 && st.st_uid == 0,
	       "root's file at the origin: mode %o uid %u", st.st_mode & 07777, st.st_uid);
	return 0;
}

TEST_F_TIMEOUT(migrate, attributes_checked_with_callers_credentials, 60)
{
	NEED_PEERS(1);
	RUN_KID(attrs_unprivileged, &self->other, 45000);
}

/*
 * fcntl(F_SETFL) on a proxy changes the open file description's status
 * flags at the home, where other processes share it (here the test, which
 * opened the file before forking the kid): O_APPEND and O_NONBLOCK are
 * set and cleared there, the home's writes follow O_APPEND, and O_NOATIME
 * is checked there with the caller's credentials (the kid, uid 65534 from
 * before the move, owns its proxy's inode but not root's file, so only
 * the home can refuse). O_DIRECT is refused on a proxy.
 */
static int setfl_remote(void *varg)
{
	int *a = varg, fl;

	WCHECK(setgroups(0, NULL) == 0 && setgid(65534) == 0 && setuid(65534) == 0,
	       "drop to 65534: %s", strerror(errno));
	WMIGRATE(a[0]);
	fl = fcntl(a[1], F_GETFL);
	WCHECK(fl >= 0 && (fl & O_ACCMODE) == O_RDWR && !(fl & (O_APPEND | O_NONBLOCK)),
	       "F_GETFL of a proxy on node %d: %#x (%s)", a[0], fl, strerror(errno));
	WCHECK(fcntl(a[1], F_SETFL, fl | O_APPEND | O_NONBLOCK) == 0,
	       "F_SETFL O_APPEND|O_NONBLOCK on node %d: %s", a[0], strerror(errno));
	fl = fcntl(a[1], F_GETFL);
	WCHECK((fl & (O_APPEND | O_NONBLOCK)) == (O_APPEND | O_NONBLOCK),
	       "F_GETFL after F_SETFL on node %d: %#x", a[0], fl);
	/* At offset 0, but the home's file appends. */
	WCHECK(lseek(a[1], 0, SEEK_SET) == 0 && write(a[1], "b", 1) == 1,
	       "write at 0 with O_APPEND on node %d: %s", a[0], strerror(errno));
	errno = 0;
	WCHECK(fcntl(a[1], F_SETFL, fl | O_DIRECT) == -1 && errno == EINVAL,
	       "F_SETFL O_DIRECT on a proxy, node %d: errno %d, want EINVAL", a[0], errno);
	wready();
	wait_go();
	WCHECK(fcntl(a[1], F_SETFL, O_APPEND) == 0, "F_SETFL O_APPEND on node %d: %s", a[0],
	       strerror(errno));
	errno = 0;
	WCHECK(fcntl(a[1], F_SETFL, O_APPEND | O_NOATIME) == -1 && errno == EPERM,
	       "O_NOATIME on root's file by uid 65534, node %d: errno %d, want EPERM", a[0],
	       errno);
	fl = fcntl(a[1], F_GETFL);
	WCHECK(fl >= 0 && !(fl & O_NOATIME), "a refused F_SETFL changed the proxy: %#x", fl);
	return 0;
}

TEST_F_TIMEOUT(migrate, status_flags_at_the_home, 60)
{
	char path[64], buf[8] = "";
	struct kid w;
	int a[2], fl;

	NEED_PEERS(1);
	snprintf(path, sizeof(path), "/tmp/migrate_test.setfl.%d", getpid());
	a[0] = self->other;
	a[1] = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ASSERT_LE(0, a[1]);
	ASSERT_EQ(0, unlink(path));
	ASSERT_EQ(1, write(a[1], "a", 1));
	start_kid(_metadata, &w, setfl_remote, a);
	ASSERT_TRUE(kid_ready(&w, 30000));
	/* The description the test shares with the kid changed here. */
	fl = fcntl(a[1], F_GETFL);
	EXPECT_EQ(O_APPEND | O_NONBLOCK, fl & (O_APPEND | O_NONBLOCK));
	EXPECT_EXITED(0, finish_kid(_metadata, &w, 30000));
	fl = fcntl(a[1], F_GETFL);
	EXPECT_EQ(O_APPEND, fl & (O_APPEND | O_NONBLOCK | O_NOATIME));
	/* The kid wrote "b" at offset 0: appended, so "ab". */
	EXPECT_EQ(2, pread(a[1], buf, sizeof(buf), 0));
	EXPECT_EQ(0, memcmp(buf, "ab", 2));
	close(a[1]);
}

/*
 * A terminal opened at the origin stays a terminal on the peer: isatty,
 * tcgetattr/tcsetattr, the window size and FIONREAD are forwarded ioctls,
 * and what they change is the one terminal's state.
 */
static int tty_remote(void *varg)
{
	int *a = varg, n = -1;
	struct termios t;
	struct winsize ws;

	WMIGRATE(a[0]);
	WCHECK(isatty(a[1]), "isatty of a terminal opened at the origin, on node %d: %s", a[0],
	       strerror(errno));
	WCHECK(tcgetattr(a[1], &t) == 0, "tcgetattr on node %d: %s", a[0], strerror(errno));
	t.c_lflag &= ~ECHO;
	WCHECK(tcsetattr(a[1], TCSANOW, &t) == 0, "tcsetattr on node %d: %s", a[0],
	       strerror(errno));
	memset(&ws, 0, sizeof(ws));
	ws.ws_row = 33;
	ws.ws_col = 77;
	WCHECK(ioctl(a[1], TIOCSWINSZ, &ws) == 0, "TIOCSWINSZ on node %d: %s", a[0],
	       strerror(errno));
	memset(&ws, 0, sizeof(ws));
	WCHECK(ioctl(a[1], TIOCGWINSZ, &ws) == 0 && ws.ws_row == 33 && ws.ws_col == 77,
	       "TIOCGWINSZ on node %d: %s, %ux%u", a[0], strerror(errno), ws.ws_row, ws.ws_col);
	wready();
	wait_go();
	WCHECK(ioctl(a[1], FIONREAD, &n) == 0 && n == 4, "FIONREAD on node %d: %d (%s)", a[0],
	       n, strerror(errno));
	errno = 0;
	WCHECK(ioctl(a[1], 0x5499, 0) == -1 && errno == ENOTTY,
	       "an unknown terminal ioctl on node %d: errno %d, want ENOTTY", a[0], errno);
	WMIGRATE(g_node);
	return 0;
}

TEST_F_TIMEOUT(migrate, terminal_ioctls_on_proxy, 60)
{
	struct pollfd pfd;
	struct termios t;
	struct winsize ws;
	struct kid w;
	int m, a[2], n = -1;

	NEED_PEERS(1);
	m = posix_openpt(O_RDWR | O_NOCTTY);
	ASSERT_LE(0, m);
	ASSERT_EQ(0, grantpt(m));
	ASSERT_EQ(0, unlockpt(m));
	a[0] = self->other;
	a[1] = open(ptsname(m), O_RDWR | O_NOCTTY);
	ASSERT_LE(0, a[1]);
	start_kid(_metadata, &w, tty_remote, a);
	ASSERT_TRUE(kid_ready(&w, 30000));
	/* What the worker set on the peer is the terminal's state here. */
	ASSERT_EQ(0, tcgetattr(a[1], &t));
	EXPECT_EQ(0, t.c_lflag & ECHO);
	ASSERT_EQ(0, ioctl(m, TIOCGWINSZ, &ws));
	EXPECT_EQ(33, ws.ws_row);
	EXPECT_EQ(77, ws.ws_col);
	ASSERT_EQ(4, write(m, "abc\n", 4));
	/*
	 * The line reaches the slave's line discipline later, from a work
	 * item (flush_to_ldisc): the worker asks FIONREAD only once the line
	 * is there to read, as the origin sees it.
	 */
	pfd.fd = a[1];
	pfd.events = POLLIN;
	EXPECT_EQ(1, poll(&pfd, 1, 10000));
	EXPECT_EQ(0, ioctl(a[1], FIONREAD, &n));
	EXPECT_EQ(4, n);
	EXPECT_EXITED(0, finish_kid(_metadata, &w, 30000));
	close(a[1]);
	close(m);
}

/* ---- one pid space: the ids, children and signals of the origin ---- */

/*
 * On the peer the process keeps its pid, process group and session; it
 * signals itself by its pid (kill, raise); it names itself by its pid in
 * calls where 0 means the caller; a child forked there sees it as parent,
 * and finds it by that pid with pcntl.
 */
static int ids_remote(void *arg)
{
	int other = *(int *)arg, status, prio;
	pid_t me = getpid(), pg = getpgrp(), sid = getsid(0), pid;
	struct sched_param sp;

	WCHECK(signal(SIGUSR1, count_signal) != SIG_ERR, "signal: %s", strerror(errno));
	WMIGRATE(other);
	WCHECK(getpid() == me, "getpid %d, was %d", getpid(), me);
	WCHECK(getpgrp() == pg && getpgid(0) == pg && getpgid(me) == pg,
	       "process group on node %d: %d/%d/%d, was %d", other, getpgrp(), getpgid(0),
	       getpgid(me), pg);
	WCHECK(getsid(0) == sid && getsid(me) == sid, "session on node %d: %d, was %d", other,
	       getsid(0), sid);
	WCHECK(kill(me, SIGUSR1) == 0 && seen[SIGUSR1] == 1,
	       "kill(getpid()) on node %d: %s, %d signals", other, strerror(errno),
	       (int)seen[SIGUSR1]);
	WCHECK(raise(SIGUSR1) == 0 && seen[SIGUSR1] == 2, "raise on node %d: %d signals", other,
	       (int)seen[SIGUSR1]);
	errno = 0;
	prio = getpriority(PRIO_PROCESS, me);
	WCHECK(errno == 0 && prio == getpriority(PRIO_PROCESS, 0),
	       "getpriority(PRIO_PROCESS, getpid()) on node %d: %d (%s)", other, prio,
	       strerror(errno));
	WCHECK(sched_getparam(me, &sp) == 0, "sched_getparam(getpid()) on node %d: %s", other,
	       strerror(errno));
	pid = fork();
	WCHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (getppid() != me)
			_exit(1);
		/* The parent's node, by the parent's pid. */
		_exit(pcntl(PCNTL_WHERE, me, 0, 0) == other ? 0 : 2);
	}
	WCHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status),
	       "waitpid of the child forked on node %d: %s", other, strerror(errno));
	WCHECK(WEXITSTATUS(status) == 0, "child forked on node %d: %s", other,
	       WEXITSTATUS(status) == 1 ? "getppid() is not its parent" :
	       "PCNTL_WHERE(parent's pid) does not find its parent");
	WMIGRATE(g_node);
	return 0;
}

TEST_F_TIMEOUT(migrate, ids_and_self_signals_remote, 60)
{
	NEED_PEERS(1);
	RUN_KID(ids_remote, &self->other, 45000);
}

/*
 * Children forked at the origin are waited for from the peer: a blocking
 * waitpid, WNOHANG before the child ends, wait for any child when there
 * are children on both nodes, and ECHILD when none is left; the status
 * and rusage come back. system() works across the move.
 */
static int wait_remote(void *arg)
{
	int other = *(int *)arg, status = 0, p[2];
	pid_t a, b, c, r;
	struct rusage ru;
	char x;

	WCHECK(pipe(p) == 0, "pipe: %s", strerror(errno));
	a = fork();
	WCHECK(a >= 0, "fork: %s", strerror(errno));
	if (a == 0)
		_exit(read(p[0], &x, 1) == 1 ? 17 : 99);
	b = fork();
	WCHECK(b >= 0, "fork: %s", strerror(errno));
	if (b == 0) {
		signal(SIGTERM, SIG_DFL);
		pause();
		_exit(98);
	}
	WMIGRATE(other);
	r = waitpid(a, &status, WNOHANG);
	WCHECK(r == 0, "WNOHANG waitpid of a running child at the origin: %d (%s)", r,
	       strerror(errno));
	WCHECK(write(p[1], "g", 1) == 1, "write: %s", strerror(errno));
	memset(&ru, 0xff, sizeof(ru));
	r = wait4(a, &status, 0, &ru);
	WCHECK(r == a && WIFEXITED(status) && WEXITSTATUS(status) == 17,
	       "wait4 of a child at the origin from node %d: %d, status %#x (%s)", other, r,
	       status, strerror(errno));
	WCHECK(ru.ru_utime.tv_sec >= 0 && ru.ru_utime.tv_usec < 1000000,
	       "rusage not filled: %ld.%06ld", (long)ru.ru_utime.tv_sec,
	       (long)ru.ru_utime.tv_usec);
	/* kill reaches the child at the origin by its pid there. */
	WCHECK(kill(b, SIGTERM) == 0, "kill(%d) of a child at the origin from node %d: %s", b,
	       other, strerror(errno));
	c = fork();
	WCHECK(c >= 0, "fork on node %d: %s", other, strerror(errno));
	if (c == 0) {
		usleep(300 * 1000);
		_exit(23);
	}
	/* Two children left, one on each node: wait for any twice. */
	for (int i = 0; i < 2; i++) {
		r = waitpid(-1, &status, 0);
		if (r == b)
			WCHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM,
			       "child at the origin: status %#x", status);
		else if (r == c)
			WCHECK(WIFEXITED(status) && WEXITSTATUS(status) == 23,
			       "child on node %d: status %#x", other, status);
		else
			WCHECK(0, "waitpid(-1) on node %d: %d (%s)", other, r, strerror(errno));
	}
	errno = 0;
	r = waitpid(-1, &status, 0);
	WCHECK(r == -1 && errno == ECHILD, "waitpid with no child left: %d, errno %d", r, errno);
	status = system("exit 5");
	WCHECK(WIFEXITED(status) && WEXITSTATUS(status) == 5,
	       "system(\"exit 5\") on node %d: status %#x", other, status);
	WMIGRATE(g_node);
	return 0;
}

TEST_F_TIMEOUT(migrate, wait_and_kill_children_across_nodes, 90)
{
	NEED_PEERS(1);
	RUN_KID(wait_remote, &self->other, 75000);
}

/* ---- errors ---- */

FIXTURE(errors) {
	int other;	/* a peer, or this node when alone */
};

FIXTURE_SETUP(errors)
{
	self->other = peer(0) >= 0 ? peer(0) : g_node;
}

FIXTURE_TEARDOWN(errors)
{
}

/* A pid nobody holds: ESRCH. */
TEST_F(errors, esrch_missing_pid)
{
	int status;
	pid_t pid;

	NEED_SETUP();
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(0);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(ESRCH, migrate_errno(pid, self->other, 0));
	EXPECT_EQ(ESRCH, migrate_errno(pid, g_node, 0));
}

/* Node 64 and above, huge values: EINVAL. */
TEST_F(errors, einval_node_out_of_range)
{
	const unsigned long bad[] = { 64, 65, 1000, 1UL << 32, ~0UL, (unsigned long)-1L << 8 };
	size_t i;

	NEED_SETUP();
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(EINVAL, migrate_errno(0, bad[i], 0)) {
			TH_LOG("node %#lx", bad[i]);
		}
		EXPECT_EQ(EINVAL, migrate_errno(getppid(), bad[i], 0)) {
			TH_LOG("node %#lx for pid %d", bad[i], getppid());
		}
	}
	EXPECT_EQ(g_node, where(0));
}

/* Every node id below 64 not up (not in the cluster, or down): EINVAL. */
TEST_F(errors, einval_node_absent_or_down)
{
	int n, tried = 0;

	NEED_SETUP();
	for (n = 0; n < COHORT_MAX_NODES; n++) {
		if (n == g_node || (online_nodes() & (1ULL << n)))
			continue;
		tried++;
		EXPECT_EQ(EINVAL, migrate_errno(0, n, 0)) {
			TH_LOG("node %d (cluster of %lu, online %#llx)", n, g_nr_nodes,
			       (unsigned long long)online_nodes());
		}
		EXPECT_EQ(EINVAL, migrate_errno(getppid(), n, 0)) {
			TH_LOG("node %d for pid %d", n, getppid());
		}
	}
	EXPECT_LE(64 - (int)g_nr_nodes, tried);
	EXPECT_EQ(g_node, where(0));
}

/*
 * a2 is 0 or where the pid of a group member that refuses goes
 * (pcntl_mgmt_test tests groups): a pointer is no error by itself.
 */
TEST_F(errors, a2_pointer_accepted)
{
	int refused = -1;

	NEED_SETUP();
	EXPECT_EQ(0, migrate_errno(0, g_node, (unsigned long)&refused));
	EXPECT_EQ(0, migrate_errno(getpid(), g_node, (unsigned long)&refused));
	EXPECT_EQ(g_node, where(0));
}

/*
 * Negative pids, pids whose high bits are set, cluster-wide pids of a node
 * that cannot exist (64): EINVAL.
 */
TEST_F(errors, einval_bad_pid)
{
	const unsigned long bad[] = {
		(unsigned long)-1L, (unsigned long)-2L, (unsigned long)(long)INT_MIN,
		(unsigned long)-(long)getpid(), (unsigned long)PCNTL_GPID(64, 1),
		(1UL << 32) + getpid(),
	};
	size_t i;

	NEED_SETUP();
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(EINVAL, migrate_errno(bad[i], self->other, 0)) {
			TH_LOG("pid %#lx", bad[i]);
		}
	}
}

/* To the node it is on: 0, and nothing moves. */
TEST_F(errors, to_own_node_is_noop)
{
	pid_t pid;
	int status;

	NEED_SETUP();
	EXPECT_EQ(0, migrate_errno(0, g_node, 0));
	EXPECT_EQ(g_node, where(0));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	EXPECT_EQ(0, migrate_errno(pid, g_node, 0));
	EXPECT_EQ(g_node, where(pid));
	/* init never moves, not even to where it is. */
	EXPECT_EQ(EPERM, migrate_errno(1, g_node, 0));
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	EXPECT_TRUE(WIFSIGNALED(status));
}

/*
 * Without CAP_SYS_ADMIN, a process may migrate only what it may signal:
 * uid 65534 gets EPERM for init and for its root parent.
 */
TEST_F(errors, eperm_unprivileged)
{
	int status;
	pid_t pid, parent = getpid();

	NEED_SETUP();
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(10);
		if (kill(1, 0) == 0 || errno != EPERM)
			_exit(11);	/* the premise: it may not signal init */
		/* Harmless ones first, should the check be missing. */
		if (migrate_errno(1, g_node, 0) != EPERM)
			_exit(12);
		if (migrate_errno(parent, self->other, 0) != EPERM)
			_exit(13);
		if (migrate_errno(1, self->other, 0) != EPERM)
			_exit(14);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EXITED(0, status);
	EXPECT_EQ(g_node, where(1));
	EXPECT_EQ(g_node, where(parent));
}

static void *idle_thread(void *arg)
{
	char c;

	if (read(*(int *)arg, &c, 1) < 0)
		return NULL;
	return NULL;
}

struct thr_arg {
	int other;
	int gate;	/* read end the thread waits on; closed by the worker */
	int gate_w;
};

/* Two threads: EOPNOTSUPP; once the thread is gone, migration works. */
static int threaded(void *varg)
{
	struct thr_arg *a = varg;
	pthread_t t;
	long e;

	WCHECK(pthread_create(&t, NULL, idle_thread, &a->gate) == 0, "pthread_create");
	e = migrate_errno(0, a->other, 0);
	WCHECK(e == EOPNOTSUPP, "with 2 threads: errno %ld (%s), expected EOPNOTSUPP", e,
	       strerror(e));
	WCHECK(where(0) == g_node, "moved anyway: on node %ld", where(0));
	/* The test tries too, from outside. */
	wready();
	wait_go();
	close(a->gate_w);
	WCHECK(pthread_join(t, NULL) == 0, "pthread_join");
	WMIGRATE(a->other);
	WMIGRATE(g_node);
	return 0;
}

TEST_F_TIMEOUT(errors, eopnotsupp_threads, 60)
{
	struct thr_arg a = { .other = self->other };
	struct kid w;
	int gate[2];

	NEED_PEERS(1);
	ASSERT_EQ(0, pipe(gate));
	a.gate = gate[0];
	a.gate_w = gate[1];
	start_kid(_metadata, &w, threaded, &a);
	close(gate[0]);
	close(gate[1]);
	ASSERT_TRUE(kid_ready(&w, 20000)) {
		finish_kid(_metadata, &w, 1000);
	}
	/* Still two threads while it waited to get ready... */
	EXPECT_EQ(EOPNOTSUPP, migrate_errno(w.pid, self->other, 0));
	EXPECT_EQ(g_node, where(w.pid));
	EXPECT_EXITED(0, finish_kid(_metadata, &w, 30000));
}

static void *exit_at_once(void *arg)
{
	return arg;
}

/*
 * A thread joined a moment ago is still in the thread group while it ends
 * (pthread_join() returns from exit_mm(), before the kernel releases it):
 * migration counts live threads only, and the leaving task waits for the
 * ended one. Own and outside requests, each right after a join.
 */
static int joined_then_moves(void *varg)
{
	int other = *(int *)varg;
	pthread_t t;
	int i;

	for (i = 0; i < 8; i++) {
		WCHECK(pthread_create(&t, NULL, exit_at_once, NULL) == 0, "pthread_create");
		WCHECK(pthread_join(t, NULL) == 0, "pthread_join");
		WMIGRATE(i % 2 ? g_node : other);
	}
	WCHECK(where(0) == g_node, "ended on node %ld", where(0));
	/* Now from outside: the test moves it after each join. */
	for (i = 0; i < 4; i++) {
		long to = i % 2 ? g_node : other;
		uint64_t end;

		WCHECK(pthread_create(&t, NULL, exit_at_once, NULL) == 0, "pthread_create");
		WCHECK(pthread_join(t, NULL) == 0, "pthread_join");
		wready();
		for (end = now_ms() + 30000; where(0) != to && now_ms() < end;)
			usleep(1000);
		WCHECK(where(0) == to, "round %d: on node %ld, expected %ld", i, where(0), to);
	}
	wait_go();
	return 0;
}

TEST_F_TIMEOUT(errors, joined_thread_does_not_count, 120)
{
	struct kid w;
	int i;

	NEED_PEERS(1);
	start_kid(_metadata, &w, joined_then_moves, &self->other);
	for (i = 0; i < 4; i++) {
		int to = i % 2 ? g_node : self->other;

		ASSERT_TRUE(kid_ready(&w, 60000)) {
			TH_LOG("round %d: the kid is not ready: %s", i, g_read_within_why);
			finish_kid(_metadata, &w, 1000);
		}
		EXPECT_EQ(0, migrate_errno(w.pid, to, 0)) {
			TH_LOG("round %d: moving the process to node %d after a join", i, to);
		}
		EXPECT_EQ(to, where(w.pid));
	}
	EXPECT_EXITED(0, finish_kid(_metadata, &w, 30000));
}

/*
 * A process stopped inside the vDSO moves on where it stopped: a task in a
 * time namespace reads the namespace's page there, which exists only while
 * it is in one. The kid enters a time namespace of its own (no offsets, so
 * the nodes' clocks decide nothing) and reads CLOCK_MONOTONIC in a loop, so
 * that most moves take it in the vDSO, while the test moves it back and
 * forth; it must survive them all, its clock never going back.
 */
static int vdso_spinner(void *arg)
{
	struct pollfd pfd = { .fd = w_go, .events = POLLIN };
	struct timespec ts;
	uint64_t last = 0, t;
	unsigned long n;
	int fd;

	(void)arg;
	WCHECK(unshare(CLONE_NEWTIME) == 0, "unshare(CLONE_NEWTIME): %s", strerror(errno));
	fd = open("/proc/self/ns/time_for_children", O_RDONLY);
	WCHECK(fd >= 0, "open time_for_children: %s", strerror(errno));
	WCHECK(setns(fd, CLONE_NEWTIME) == 0, "setns(CLONE_NEWTIME): %s", strerror(errno));
	close(fd);
	wready();
	for (n = 0;; n++) {
		WCHECK(clock_gettime(CLOCK_MONOTONIC, &ts) == 0, "clock_gettime: %s",
		       strerror(errno));
		t = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
		WCHECK(t >= last, "CLOCK_MONOTONIC went back by %llu ns on node %ld",
		       (unsigned long long)(last - t), where(0));
		last = t;
		if (n % 4096 == 0 && poll(&pfd, 1, 0) > 0)
			break;
	}
	return 0;
}

TEST_F_TIMEOUT(migrate, moved_inside_the_vdso, 120)
{
	struct kid w;
	int i;

	NEED_PEERS(1);
	start_kid(_metadata, &w, vdso_spinner, NULL);
	ASSERT_TRUE(kid_ready(&w, 30000)) {
		TH_LOG("the kid is not ready: %s", g_read_within_why);
		finish_kid(_metadata, &w, 1000);
	}
	for (i = 0; i < 16; i++) {
		int to = i % 2 ? g_node : self->other;

		ASSERT_EQ(0, migrate_errno(w.pid, to, 0)) {
			TH_LOG("move %d, to node %d", i, to);
			EXPECT_EXITED(0, finish_kid(_metadata, &w, 30000));
		}
		usleep(20000);
	}
	EXPECT_EXITED(0, finish_kid(_metadata, &w, 30000));
}

/*
 * Locks of an open file description through a proxy: flock(2) and OFD
 * record locks are taken at the file's home, on the file the proxy stands
 * for, so they conflict with the locks of processes there. A flock taken
 * before the move stays held; a lock that must wait waits on the remote
 * node until the home grants it, and a signal ends the wait (EINTR without
 * SA_RESTART). A POSIX record lock on a proxy is the process's, taken at
 * the home (posix_locks_move_with_the_process has more), and F_GETLK is
 * answered there. The test, at the origin, holds and
 * releases the other side of each conflict through its own open of the
 * file; once the worker is gone, its locks are.
 */
struct lock_arg {
	int other;
	char path[64];
};

static void on_alarm(int sig)
{
	(void)sig;
}

static int ofd_lock(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = {
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = start,
		.l_len = len,
	};

	return fcntl(fd, cmd, &fl);
}

static int locks_at_the_home(void *varg)
{
	struct lock_arg *a = varg;
	struct sigaction sa = { .sa_handler = on_alarm };
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 10 };
	uint64_t end;
	int fd, r;

	fd = open(a->path, O_RDWR);
	WCHECK(fd >= 0, "open %s: %s", a->path, strerror(errno));
	WCHECK(flock(fd, LOCK_EX | LOCK_NB) == 0, "flock before the move: %s", strerror(errno));
	WMIGRATE(a->other);
	WCHECK(ofd_lock(fd, F_OFD_SETLK, F_WRLCK, 10, 10) == 0,
	       "F_OFD_SETLK on node %d: %s", a->other, strerror(errno));
	wready();
	/* The test holds bytes 100-109 and lets them go after a while. */
	WCHECK(ofd_lock(fd, F_OFD_SETLKW, F_WRLCK, 100, 10) == 0,
	       "F_OFD_SETLKW: %s", strerror(errno));
	WCHECK(flock(fd, LOCK_UN) == 0, "flock(LOCK_UN): %s", strerror(errno));
	wready();
	/* The test takes the flock now. */
	for (end = now_ms() + 10000; (r = flock(fd, LOCK_EX | LOCK_NB)) == 0 && now_ms() < end;) {
		WCHECK(flock(fd, LOCK_UN) == 0, "flock(LOCK_UN): %s", strerror(errno));
		usleep(10000);
	}
	WCHECK(r == -1 && errno == EWOULDBLOCK,
	       "flock(LOCK_EX|LOCK_NB) while the test holds it: %d (%s)", r, strerror(errno));
	WCHECK(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction: %s", strerror(errno));
	alarm(1);
	r = flock(fd, LOCK_EX);
	WCHECK(r == -1 && errno == EINTR, "a blocking flock and SIGALRM: %d (%s), expected EINTR",
	       r, strerror(errno));
	wready();
	/* The test lets the flock go. */
	WCHECK(flock(fd, LOCK_EX) == 0, "blocking flock: %s", strerror(errno));
	/* Locks of one open file description do not conflict. */
	fl.l_len = 200;
	WCHECK(fcntl(fd, F_OFD_GETLK, &fl) == 0, "F_OFD_GETLK: %s", strerror(errno));
	WCHECK(fl.l_type == F_UNLCK, "F_OFD_GETLK finds its own lock (type %d)", fl.l_type);
	/*
	 * A process's own record lock is taken at the home, as the process's:
	 * F_GETLK finds the locks of others there (the test's, with its pid)
	 * and this description's OFD locks, whose owner is not the process,
	 * but not the process's own.
	 */
	WCHECK(ofd_lock(fd, F_SETLK, F_WRLCK, 0, 1) == 0, "F_SETLK on a proxy: %s",
	       strerror(errno));
	r = ofd_lock(fd, F_SETLK, F_WRLCK, 305, 1);
	WCHECK(r == -1 && (errno == EAGAIN || errno == EACCES),
	       "F_SETLK over the test's record lock: %d (%s), expected EAGAIN", r,
	       strerror(errno));
	fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 300, .l_len = 10 };
	WCHECK(fcntl(fd, F_GETLK, &fl) == 0, "F_GETLK: %s", strerror(errno));
	WCHECK(fl.l_type == F_WRLCK && fl.l_start == 300 && fl.l_len == 10 && fl.l_pid == getppid(),
	       "F_GETLK on a proxy: type %d, %lld+%lld, pid %d; expected the test's (pid %d) write lock on 300-309",
	       fl.l_type, (long long)fl.l_start, (long long)fl.l_len, fl.l_pid, (int)getppid());
	fl = (struct flock){ .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 50 };
	WCHECK(fcntl(fd, F_GETLK, &fl) == 0, "F_GETLK: %s", strerror(errno));
	WCHECK(fl.l_type == F_WRLCK && fl.l_start == 10 && fl.l_pid == -1,
	       "F_GETLK over its own OFD lock: type %d, start %lld, pid %d; expected the OFD lock at 10",
	       fl.l_type, (long long)fl.l_start, fl.l_pid);
	WCHECK(where(0) == a->other, "on node %ld", where(0));
	wait_go();
	return 0;
}

TEST_F_TIMEOUT(migrate, locks_at_the_home, 120)
{
	struct lock_arg a = { .other = self->other };
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 200 };
	struct kid w;
	uint64_t end;
	int fd, r;

	NEED_PEERS(1);
	snprintf(a.path, sizeof(a.path), "/tmp/cohort-locks-%d", (int)getpid());
	fd = open(a.path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	/* What the worker will wait for, held from the start. */
	ASSERT_EQ(0, ofd_lock(fd, F_OFD_SETLK, F_WRLCK, 100, 10));
	/* A record lock of this process, which the worker's F_GETLK finds. */
	ASSERT_EQ(0, ofd_lock(fd, F_SETLK, F_WRLCK, 300, 10));
	start_kid(_metadata, &w, locks_at_the_home, &a);
	ASSERT_TRUE(kid_ready(&w, 60000)) {
		finish_kid(_metadata, &w, 1000);
	}
	/* The worker's flock travelled, its OFD lock is at the home. */
	r = flock(fd, LOCK_EX | LOCK_NB);
	EXPECT_TRUE(r == -1 && errno == EWOULDBLOCK) {
		TH_LOG("flock here while the worker holds it: %d (%s)", r, strerror(errno));
	}
	EXPECT_EQ(0, fcntl(fd, F_OFD_GETLK, &fl));
	EXPECT_EQ(F_WRLCK, fl.l_type);
	EXPECT_EQ(10, fl.l_start);
	EXPECT_EQ(10, fl.l_len);
	EXPECT_EQ(-1, fl.l_pid);
	r = ofd_lock(fd, F_OFD_SETLK, F_WRLCK, 15, 2);
	EXPECT_TRUE(r == -1 && errno == EAGAIN) {
		TH_LOG("F_OFD_SETLK over the worker's lock: %d (%s)", r, strerror(errno));
	}
	/* Let go what the worker waits for, once it waits. */
	usleep(300000);
	EXPECT_EQ(self->other, where(w.pid));
	EXPECT_EQ(0, ofd_lock(fd, F_OFD_SETLK, F_UNLCK, 100, 10));
	ASSERT_TRUE(kid_ready(&w, 30000)) {
		finish_kid(_metadata, &w, 1000);
	}
	/* The worker has bytes 100-109 and let the flock go. */
	fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 10 };
	EXPECT_EQ(0, fcntl(fd, F_OFD_GETLK, &fl));
	EXPECT_EQ(F_WRLCK, fl.l_type);
	EXPECT_EQ(100, fl.l_start);
	/* Blocking: the worker takes and drops it until it sees it held. */
	EXPECT_EQ(0, flock(fd, LOCK_EX));
	ASSERT_TRUE(kid_ready(&w, 30000)) {
		finish_kid(_metadata, &w, 1000);
	}
	usleep(300000);
	EXPECT_EQ(0, flock(fd, LOCK_UN));
	EXPECT_EXITED(0, finish_kid(_metadata, &w, 30000));
	/*
	 * Its last descriptor closed: its locks go with the file at the home,
	 * once the remote node's release of its hold arrives.
	 */
	close(fd);
	fd = open(a.path, O_RDWR);
	ASSERT_LE(0, fd);
	for (end = now_ms() + 10000; (r = flock(fd, LOCK_EX | LOCK_NB)) && now_ms() < end;)
		usleep(10000);
	EXPECT_EQ(0, r) {
		TH_LOG("the worker's flock outlived it: %s", strerror(errno));
	}
	fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 0 };
	EXPECT_EQ(0, fcntl(fd, F_OFD_GETLK, &fl));
	EXPECT_EQ(F_UNLCK, fl.l_type);
	/* Its record lock went with its close of the file. */
	fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 1 };
	EXPECT_EQ(0, fcntl(fd, F_GETLK, &fl));
	EXPECT_EQ(F_UNLCK, fl.l_type);
	close(fd);
	unlink(a.path);
}

/* The record lock on @fd over @start..+@len as F_GETLK finds it. */
static struct flock getlk(int fd, off_t start, off_t len)
{
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = start,
		.l_len = len,
	};

	if (fcntl(fd, F_GETLK, &fl))
		fl.l_type = -1;
	return fl;
}

/*
 * POSIX record locks belong to the process's descriptor table, which
 * stays with its shadow when it leaves: a lock held before the move stays
 * held, one taken through a proxy is taken at the home as the same
 * owner's (so it merges with, and releases, the older ones), a blocking
 * one waits for the test's, the locks are the process's own again once it
 * is back, and its close of the file releases them at the home. The test
 * checks each from the origin with a descriptor of its own.
 */
static int posix_locks_move(void *varg)
{
	struct lock_arg *a = varg;
	struct flock fl;
	int fd, fd2;

	fd = open(a->path, O_RDWR);
	WCHECK(fd >= 0, "open %s: %s", a->path, strerror(errno));
	WCHECK(ofd_lock(fd, F_SETLK, F_WRLCK, 0, 10) == 0, "F_SETLK: %s", strerror(errno));
	WMIGRATE(a->other);
	/* Its own lock does not conflict with itself, wherever it is. */
	fl = getlk(fd, 0, 10);
	WCHECK(fl.l_type == F_UNLCK, "F_GETLK over its own lock on node %d: type %d",
	       a->other, fl.l_type);
	WCHECK(ofd_lock(fd, F_SETLK, F_WRLCK, 20, 10) == 0, "F_SETLK on node %d: %s",
	       a->other, strerror(errno));
	/* lockf(3) is F_SETLK from the file position, which is the home's. */
	WCHECK(lseek(fd, 60, SEEK_SET) == 60 && lockf(fd, F_TLOCK, 5) == 0,
	       "lockf on node %d: %s", a->other, strerror(errno));
	/* From the end of the file (100 bytes, at the home): 90-94. */
	fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_END, .l_start = -10, .l_len = 5 };
	WCHECK(fcntl(fd, F_SETLK, &fl) == 0, "F_SETLK from SEEK_END on node %d: %s", a->other,
	       strerror(errno));
	wready();
	/* The test checks 0-9, 20-29, 60-64, 90-94, then lets its 40-49 go. */
	WCHECK(ofd_lock(fd, F_SETLKW, F_WRLCK, 40, 10) == 0, "F_SETLKW on node %d: %s",
	       a->other, strerror(errno));
	WCHECK(ofd_lock(fd, F_SETLK, F_UNLCK, 0, 10) == 0, "F_UNLCK of 0-9 on node %d: %s",
	       a->other, strerror(errno));
	WMIGRATE(g_node);
	/* Home again: its locks are its own, released as its own. */
	fl = getlk(fd, 20, 50);
	WCHECK(fl.l_type == F_UNLCK, "F_GETLK over its own locks back home: type %d",
	       fl.l_type);
	WCHECK(ofd_lock(fd, F_SETLK, F_UNLCK, 20, 10) == 0, "F_UNLCK at home: %s",
	       strerror(errno));
	WMIGRATE(a->other);
	wready();
	/* The test checks 0-29 free, 40-49 and 60-64 held. */
	wait_go();
	/*
	 * A close of the proxy releases them all at the home: an OFD lock of
	 * a new open, whose owner is not the process, then takes the range.
	 */
	close(fd);
	fd2 = open(a->path, O_RDWR);
	WCHECK(fd2 >= 0, "open again on node %d: %s", a->other, strerror(errno));
	WCHECK(ofd_lock(fd2, F_OFD_SETLK, F_WRLCK, 0, 100) == 0,
	       "after its close, an OFD lock over its record locks on node %d: %s", a->other,
	       strerror(errno));
	close(fd2);
	return 0;
}

TEST_F_TIMEOUT(migrate, posix_locks_move_with_the_process, 120)
{
	struct lock_arg a = { .other = self->other };
	struct flock fl;
	struct kid w;
	uint64_t end;
	int fd, r;

	NEED_PEERS(1);
	snprintf(a.path, sizeof(a.path), "/tmp/cohort-posix-lock-%d", (int)getpid());
	fd = open(a.path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, 100));
	ASSERT_EQ(0, ofd_lock(fd, F_SETLK, F_WRLCK, 40, 10));
	start_kid(_metadata, &w, posix_locks_move, &a);
	ASSERT_TRUE(kid_ready(&w, 60000)) {
		finish_kid(_metadata, &w, 1000);
	}
	EXPECT_EQ(self->other, where(w.pid));
	/* The lock it took before the move, and the two it took after. */
	fl = getlk(fd, 0, 10);
	EXPECT_EQ(F_WRLCK, fl.l_type);
	EXPECT_EQ(w.pid, fl.l_pid);
	fl = getlk(fd, 25, 1);
	EXPECT_EQ(F_WRLCK, fl.l_type);
	EXPECT_EQ(20, fl.l_start);
	EXPECT_EQ(w.pid, fl.l_pid);
	fl = getlk(fd, 62, 1);
	EXPECT_EQ(F_WRLCK, fl.l_type);
	EXPECT_EQ(60, fl.l_start);
	EXPECT_EQ(5, fl.l_len);
	fl = getlk(fd, 80, 20);
	EXPECT_EQ(F_WRLCK, fl.l_type);
	EXPECT_EQ(90, fl.l_start);
	EXPECT_EQ(5, fl.l_len);
	r = ofd_lock(fd, F_SETLK, F_WRLCK, 5, 1);
	EXPECT_TRUE(r == -1 && (errno == EAGAIN || errno == EACCES)) {
		TH_LOG("F_SETLK over its lock from before the move: %d (%s)", r, strerror(errno));
	}
	/* It waits for 40-49 (F_SETLKW) once it said so: let go. */
	usleep(300000);
	EXPECT_EQ(0, ofd_lock(fd, F_SETLK, F_UNLCK, 40, 10));
	ASSERT_TRUE(kid_ready(&w, 60000)) {
		finish_kid(_metadata, &w, 1000);
	}
	EXPECT_EQ(F_UNLCK, getlk(fd, 0, 30).l_type);
	fl = getlk(fd, 40, 10);
	EXPECT_EQ(F_WRLCK, fl.l_type);
	EXPECT_EQ(w.pid, fl.l_pid);
	EXPECT_EQ(F_WRLCK, getlk(fd, 60, 5).l_type);
	EXPECT_EXITED(0, finish_kid(_metadata, &w, 30000));
	/*
	 * Its record locks went with its close (it checked); the OFD lock it
	 * took last goes with the file at the home, once the remote node's
	 * release of its hold arrives.
	 */
	for (end = now_ms() + 10000; getlk(fd, 0, 0).l_type != F_UNLCK && now_ms() < end;)
		usleep(10000);
	fl = getlk(fd, 0, 0);
	EXPECT_EQ(F_UNLCK, fl.l_type) {
		TH_LOG("a lock outlived the worker: type %d at %lld, pid %d", fl.l_type,
		       (long long)fl.l_start, fl.l_pid);
	}
	close(fd);
	unlink(a.path);
}

/*
 * A table shared with another process (CLONE_FILES) would be unshared on
 * the way out, and its record locks would stay the other process's: a
 * process holding one in such a table is refused (EOPNOTSUPP, before
 * anything moves); once the table is its own it moves with its locks.
 */
static int table_sharer(void *arg)
{
	(void)arg;
	pause();
	return 0;
}

static int posix_lock_shared_table(void *varg)
{
	static char stack[64 << 10] __attribute__((aligned(16)));
	struct lock_arg *a = varg;
	pid_t sharer;
	long e;
	int fd, status;

	fd = open(a->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	WCHECK(fd >= 0, "open %s: %s", a->path, strerror(errno));
	WCHECK(ofd_lock(fd, F_SETLK, F_WRLCK, 0, 10) == 0, "F_SETLK: %s", strerror(errno));
	sharer = clone(table_sharer, stack + sizeof(stack), CLONE_FILES | SIGCHLD, NULL);
	WCHECK(sharer > 0, "clone(CLONE_FILES): %s", strerror(errno));
	e = migrate_errno(0, a->other, 0);
	WCHECK(e == EOPNOTSUPP,
	       "holding a record lock in a shared table: errno %ld (%s), expected EOPNOTSUPP",
	       e, strerror(e));
	WCHECK(where(0) == g_node, "moved anyway: on node %ld", where(0));
	WCHECK(kill(sharer, SIGKILL) == 0 && waitpid(sharer, &status, 0) == sharer,
	       "end the sharer: %s", strerror(errno));
	WMIGRATE(a->other);
	WMIGRATE(g_node);
	WCHECK(getlk(fd, 0, 10).l_type == F_UNLCK, "its lock is not its own after the trip");
	close(fd);
	unlink(a->path);
	return 0;
}

TEST_F_TIMEOUT(errors, eopnotsupp_posix_lock_shared_table, 60)
{
	struct lock_arg a = { .other = self->other };

	NEED_PEERS(1);
	snprintf(a.path, sizeof(a.path), "/tmp/cohort-posix-lock-%d", (int)getpid());
	RUN_KID(posix_lock_shared_table, &a, 50000);
}

/*
 * A shared writable mapping of a file: EOPNOTSUPP (its pages would need
 * the file linker); unmapped, migration works. (An anonymous shared region
 * migrates: see migrate.shared_anonymous_counter.)
 */
struct shared_arg {
	int other;
	char path[64];
};

static int shared_file_mapping(void *varg)
{
	struct shared_arg *a = varg;
	const char *path = a->path;
	size_t len = 16 * 4096;
	char *p;
	long e;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	WCHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	WCHECK(ftruncate(fd, len) == 0, "ftruncate: %s", strerror(errno));
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	WCHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
	memset(p, 1, len);
	e = migrate_errno(0, a->other, 0);
	WCHECK(e == EOPNOTSUPP, "with a shared writable mapping: errno %ld (%s), expected EOPNOTSUPP",
	       e, strerror(e));
	WCHECK(where(0) == g_node, "moved anyway: on node %ld", where(0));
	WCHECK(p[len - 1] == 1, "the mapping changed");
	munmap(p, len);
	close(fd);
	unlink(path);
	WMIGRATE(a->other);
	WMIGRATE(g_node);
	return 0;
}

TEST_F_TIMEOUT(errors, eopnotsupp_shared_file_rw, 60)
{
	struct shared_arg a = { .other = self->other };

	NEED_PEERS(1);
	snprintf(a.path, sizeof(a.path), "/tmp/migrate_test.shared.%d", getpid());
	RUN_KID(shared_file_mapping, &a, 45000);
	unlink(a.path);
}

/*
 * mremap() by a migrated task (Documentation/migration.rst, Limits): the
 * task's memory is a container whose pages are indexed by address, so a
 * mapping may grow or shrink in place on any node, and a shrunk tail reads
 * as zeros when it grows again; a move (MREMAP_MAYMOVE, MREMAP_FIXED) is
 * refused with EOPNOTSUPP on every node, its origin too, and the mapping
 * does not change.
 */
static int mremap_remote(void *arg)
{
	int other = *(int *)arg;
	size_t ps = 4096;
	char *p, *q;

	p = mmap(NULL, 4 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	WCHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
	fill(p, 2 * ps, 71);
	WCHECK(munmap(p + 2 * ps, 2 * ps) == 0, "munmap: %s", strerror(errno));
	WMIGRATE(other);
	errno = 0;
	q = mremap(p, 2 * ps, 64 * ps, MREMAP_MAYMOVE);
	WCHECK(q == MAP_FAILED && errno == EOPNOTSUPP,
	       "mremap MAYMOVE on node %d: %p errno %d (%s), expected EOPNOTSUPP", other, q,
	       errno, strerror(errno));
	WCHECK(check(p, 2 * ps, 71) < 0, "the mapping changed on node %d", other);
	/* In place it works here: the new part is fresh. */
	q = mremap(p, 2 * ps, 4 * ps, 0);
	WCHECK(q == p, "mremap grow in place on node %d: %p errno %d (%s), expected %p",
	       other, q, errno, strerror(errno), p);
	WCHECK(check(p, 2 * ps, 71) < 0, "the mapping changed when it grew on node %d", other);
	for (size_t i = 2 * ps; i < 4 * ps; i++)
		WCHECK(!p[i], "grown part not zero-filled at byte %zu", i - 2 * ps);
	fill(p + 2 * ps, 2 * ps, 72);
	WMIGRATE(g_node);

	/* Home: the pages written on the peer come back. */
	WCHECK(check(p, 2 * ps, 71) < 0 && check(p + 2 * ps, 2 * ps, 72) < 0,
	       "the grown mapping's contents did not come home");
	errno = 0;
	q = mremap(p, 4 * ps, 64 * ps, MREMAP_MAYMOVE);
	WCHECK(q == MAP_FAILED && errno == EOPNOTSUPP,
	       "mremap MAYMOVE at the origin: %p errno %d (%s), expected EOPNOTSUPP",
	       q, errno, strerror(errno));
	/* Shrunk in place, the tail's pages go everywhere... */
	q = mremap(p, 4 * ps, 3 * ps, 0);
	WCHECK(q == p, "mremap shrink in place: %p errno %d (%s)", q, errno, strerror(errno));
	WMIGRATE(other);
	/* ...and read as zeros when it grows again, on the peer too. */
	q = mremap(p, 3 * ps, 4 * ps, 0);
	WCHECK(q == p, "mremap regrow on node %d: %p errno %d (%s)", other, q, errno,
	       strerror(errno));
	for (size_t i = 3 * ps; i < 4 * ps; i++)
		WCHECK(!p[i], "released tail not zero-filled at byte %zu", i - 3 * ps);
	WCHECK(check(p + 2 * ps, ps, 72) < 0, "page 2 changed on node %d", other);
	WMIGRATE(g_node);
	WCHECK(munmap(p, 4 * ps) == 0, "munmap: %s", strerror(errno));
	return 0;
}

TEST_F_TIMEOUT(errors, eopnotsupp_mremap_after_migration, 60)
{
	NEED_PEERS(1);
	RUN_KID(mremap_remote, &self->other, 45000);
}

/*
 * A task that cannot reach a safe point (a vfork parent waits
 * uninterruptibly for its child): EAGAIN after about 15 s, and it stays.
 */
static int vfork_waiter(void *arg)
{
	int expect = *(int *)arg;
	pid_t pid;

	wready();
	pid = vfork();
	if (pid == 0) {
		pid_t me = syscall(SYS_getpid);
		struct timespec ts = { 60, 0 };

		if (write(w_data, &me, sizeof(me)) != sizeof(me))
			_exit(1);
		nanosleep(&ts, NULL);
		_exit(0);
	}
	WCHECK(pid > 0, "vfork: %s", strerror(errno));
	WCHECK(where(0) == expect, "once its vfork child died: on node %ld, expected %d",
	       where(0), expect);
	/* Alive until the test has checked where it is. */
	wait_go();
	return 0;
}

/* Start a vfork_waiter; false (logged) unless it sleeps for its child. */
static bool start_vfork_waiter(struct __test_metadata *_metadata, struct kid *w,
			       int *expect, pid_t *child)
{
	*child = 0;
	start_kid(_metadata, w, vfork_waiter, expect);
	if (kid_ready(w, 10000) &&
	    read_within(w->data, child, sizeof(*child), 10000) == sizeof(*child) &&
	    wait_state(w->pid, 'D', 10000))
		return true;
	TH_LOG("worker %d not waiting for its vfork child (state %c)", w->pid,
	       proc_state(w->pid));
	if (*child > 0)
		kill(*child, SIGKILL);
	finish_kid(_metadata, w, 1000);
	return false;
}

/*
 * A second request while a first one waits for its process: EBUSY at once.
 * The process cannot reach a safe point (a vfork parent), so the first
 * request waits; once the vfork child dies the process moves and the first
 * request returns 0.
 */
TEST_F_TIMEOUT(errors, ebusy_concurrent_requests, 120)
{
	struct kid w;
	pid_t child, asker;
	uint64_t t0, ms;
	int st;
	long e;

	NEED_PEERS(1);
	ASSERT_TRUE(start_vfork_waiter(_metadata, &w, &self->other, &child));
	asker = fork();
	ASSERT_LE(0, asker) {
		kill(child, SIGKILL);
		finish_kid(_metadata, &w, 1000);
	}
	if (asker == 0)
		_exit(migrate_errno(w.pid, self->other, 0));
	/* The first request sleeps (interruptibly) until the worker leaves. */
	ASSERT_TRUE(wait_state(asker, 'S', 10000)) {
		TH_LOG("the first request never waited (state %c)", proc_state(asker));
		kill(child, SIGKILL);
		wait_within(asker, 30000, &st);
		finish_kid(_metadata, &w, 30000);
	}
	t0 = now_ms();
	e = migrate_errno(w.pid, self->other, 0);
	ms = now_ms() - t0;
	EXPECT_EQ(EBUSY, e) {
		TH_LOG("second request: errno %ld (%s) after %llu ms", e, strerror(e),
		       (unsigned long long)ms);
	}
	/* At once: the first request waits up to 15 s, a loaded host is slow. */
	EXPECT_GE(5000, ms);
	EXPECT_EQ(g_node, where(w.pid));
	/* Free the worker: it reaches user space and the first request completes. */
	t0 = now_ms();
	EXPECT_EQ(0, kill(child, SIGKILL));
	ASSERT_EQ(0, wait_within(asker, 30000, &st));
	TH_LOG("first request: %s %llu ms after the vfork child died",
	       WIFEXITED(st) ? strerror(WEXITSTATUS(st)) : "killed",
	       (unsigned long long)(now_ms() - t0));
	EXPECT_EXITED(0, st);
	EXPECT_EQ(self->other, where(w.pid));
	EXPECT_EXITED(0, finish_kid(_metadata, &w, 30000));
}

TEST_F_TIMEOUT(errors, eagain_no_safe_point, 90)
{
	struct kid w;
	uint64_t t0, ms;
	pid_t child = 0;
	long e;

	NEED_PEERS(1);
	ASSERT_TRUE(start_vfork_waiter(_metadata, &w, &g_node, &child));
	t0 = now_ms();
	e = migrate_errno(w.pid, self->other, 0);
	ms = now_ms() - t0;
	EXPECT_EQ(EAGAIN, e) {
		TH_LOG("errno %ld (%s) after %llu ms", e, strerror(e), (unsigned long long)ms);
	}
	TH_LOG("PCNTL_MIGRATE returned after %llu ms", (unsigned long long)ms);
	/* About 15 s: not at once, and not much more (a loaded host is slow). */
	EXPECT_LE(10000, ms);
	EXPECT_GE(40000, ms);
	EXPECT_EQ(g_node, where(w.pid));
	kill(child, SIGKILL);
	EXPECT_EXITED(0, finish_kid(_metadata, &w, 20000));
}

COHORT_CLUSTER_CLEANUP_TEST()

int main(int argc, char **argv)
{
	return cohort_cluster_main(argc, argv, "migrate_test");
}
