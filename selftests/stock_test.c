// SPDX-License-Identifier: GPL-2.0
/*
 * A Cohort kernel must behave exactly like stock Linux, with its hooks
 * compiled in and nothing registered, and with kmsg, popcorn and gobelins
 * all loaded on a single node. Every test checks real results (exit
 * statuses, memory contents, signals with their si_code and address), so a
 * hook that changes behaviour shows up here.
 *
 * The no_modules variant also runs on any stock kernel (only
 * hub_owners_match_variant needs /sys/kernel/cohort).
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "cohort_test.h"

#define PAGE		((size_t)sysconf(_SC_PAGESIZE))
#define ALL_MODULES	((1U << COHORT_NR_MODULES) - 1)
#define EXEC_PROBE	"--cohort-exec-probe"
#define EXEC_PROBE_ENV	"COHORT_EXEC_PROBE=env-ok"
/*
 * Per test, setup included: the first all_modules test loads all three
 * modules, which may take a while on a TCG guest.
 */
#define STOCK_TIMEOUT	120

/* ---- SIGSEGV probing ---- */

/* Written by the handler, read after siglongjmp() (a full barrier). */
static sigjmp_buf segv_env;
static sig_atomic_t segv_code;
static void *segv_addr;

static void segv_handler(int sig, siginfo_t *info, void *uc)
{
	(void)sig;
	(void)uc;
	segv_code = info->si_code;
	segv_addr = info->si_addr;
	siglongjmp(segv_env, 1);
}

/*
 * Read or write one byte at @p. Returns 0 if the access went through, or
 * the si_code of the SIGSEGV it raised (and the faulting address in
 * @addr).
 */
static int probe(char *p, bool write, void **addr)
{
	struct sigaction sa = {
		.sa_sigaction = segv_handler,
		.sa_flags = SA_SIGINFO,
	};
	struct sigaction old;
	int ret;

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &old))
		return -1;
	segv_code = 0;
	segv_addr = NULL;
	if (sigsetjmp(segv_env, 1) == 0) {
		/* Force the access itself, whatever the optimiser thinks. */
		if (write) {
			*p = 0x5a;
			asm volatile("" : : : "memory");
		} else
			asm volatile("" : : "r"(*p) : "memory");
		ret = 0;
	} else {
		ret = segv_code;
		if (addr)
			*addr = segv_addr;
	}
	sigaction(SIGSEGV, &old, NULL);
	return ret;
}

#define EXPECT_SEGV(_p, _write, _code) do {				\
	void *__fa = NULL;						\
	int __c = probe((char *)(_p), (_write), &__fa);	\
									\
	EXPECT_EQ((_code), __c) {					\
		TH_LOG("%s at %p: si_code %d", (_write) ? "write" : "read", \
		       (void *)(_p), __c);				\
	}								\
	if (__c > 0)							\
		EXPECT_EQ((void *)(_p), __fa);				\
} while (0)

#define EXPECT_ACCESS_OK(_p, _write)					\
	EXPECT_EQ(0, probe((char *)(_p), (_write), NULL))

/* ---- helpers ---- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static unsigned char pat(size_t i, unsigned int seed)
{
	return (unsigned char)mix64(i * 0x9e3779b97f4a7c15ULL + seed);
}

static void fill(unsigned char *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = pat(i, seed);
}

/* Index of the first byte not matching pattern @seed, or @len. */
static size_t check(const unsigned char *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != pat(i, seed))
			return i;
	return len;
}

static bool all_zero(const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	/* One fault per page, not one per 2M; EINVAL without THP is fine. */
	if (p != MAP_FAILED)
		madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

/* An unlinked /tmp file of @len bytes holding pattern @seed. */
static int tmp_file(size_t len, unsigned int seed)
{
	char name[] = "/tmp/cohort-stock-XXXXXX";
	unsigned char *buf;
	ssize_t n;
	int fd;

	fd = mkstemp(name);
	if (fd < 0)
		return -1;
	unlink(name);
	buf = malloc(len);
	if (!buf)
		goto err;
	fill(buf, len, seed);
	n = pwrite(fd, buf, len, 0);
	free(buf);
	if (n != (ssize_t)len)
		goto err;
	return fd;
err:
	close(fd);
	return -1;
}

/* Reap @pid, returning its wait status. */
static int child_status(struct __test_metadata *_metadata, pid_t pid)
{
	int status = -1;

	EXPECT_EQ(pid, waitpid(pid, &status, 0));
	return status;
}

/* ---- fixture: the same tests bare and with every module registered ---- */

FIXTURE(stock) {
};

FIXTURE_VARIANT(stock) {
	bool modules;
};

FIXTURE_VARIANT_ADD(stock, no_modules) {
	.modules = false,
};

FIXTURE_VARIANT_ADD(stock, all_modules) {
	.modules = true,
};

FIXTURE_SETUP(stock)
{
	int m, ret;

	for (m = 0; m < COHORT_NR_MODULES; m++) {
		const char *name = cohort_module(m)->name;

		if (!cohort_module_file_present(name)) {
			if (variant->modules)
				SKIP(return, "%s/%s.ko not present",
				     COHORT_MODULE_DIR, name);
			continue;
		}
		/* Loaded modules stay for the next test; the last fixture
		 * unloads them.
		 */
		if (variant->modules)
			ret = cohort_ensure_loaded(name);
		else
			ret = cohort_ensure_unloaded(name);
		ASSERT_EQ(0, ret) {
			TH_LOG("%s %s: %s", variant->modules ? "loading" :
			       "unloading", name, strerror(-ret));
		}
	}
}

FIXTURE_TEARDOWN(stock)
{
}

TEST_F_TIMEOUT(stock, hub_owners_match_variant, STOCK_TIMEOUT)
{
	struct cohort_ops ops;
	int s, m;

	ASSERT_EQ(0, cohort_read_ops_checked(&ops));
	for (s = 0; s < COHORT_NR_SLOTS; s++) {
		const char *want = "-";

		for (m = 0; m < COHORT_NR_MODULES; m++)
			if (variant->modules &&
			    (cohort_module(m)->slots & COHORT_SLOT_BIT(s)))
				want = cohort_module(m)->name;
		EXPECT_STREQ(want, ops.owner[s]) {
			TH_LOG("slot %s", cohort_slot_name(s));
		}
	}
}

TEST_F_TIMEOUT(stock, fork_exit_status, STOCK_TIMEOUT)
{
	static const int codes[] = { 0, 1, 2, 42, 127, 128, 200, 255 };
	static const int sigs[] = { SIGKILL, SIGTERM, SIGUSR1, SIGSEGV };
	int status, pfd[2];
	size_t i;
	pid_t pid;
	char c;

	for (i = 0; i < ARRAY_SIZE(codes); i++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0)
			_exit(codes[i]);
		status = child_status(_metadata, pid);
		ASSERT_TRUE(WIFEXITED(status));
		EXPECT_EQ(codes[i], WEXITSTATUS(status));
	}

	/* Killed by its own signal, no core dump. */
	for (i = 0; i < ARRAY_SIZE(sigs); i++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			struct rlimit rl = { 0, 0 };

			setrlimit(RLIMIT_CORE, &rl);
			signal(sigs[i], SIG_DFL);
			raise(sigs[i]);
			_exit(99);
		}
		status = child_status(_metadata, pid);
		ASSERT_TRUE(WIFSIGNALED(status)) {
			TH_LOG("signal %d: status %#x", sigs[i], status);
		}
		EXPECT_EQ(sigs[i], WTERMSIG(status));
	}

	/* Killed by the parent while blocked. */
	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(pfd[0]);
		if (write(pfd[1], "r", 1) != 1)
			_exit(98);
		for (;;)
			pause();
	}
	close(pfd[1]);
	ASSERT_EQ(1, read(pfd[0], &c, 1));
	close(pfd[0]);
	ASSERT_EQ(0, kill(pid, SIGTERM));
	status = child_status(_metadata, pid);
	ASSERT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGTERM, WTERMSIG(status));

	/* Nothing left to reap. */
	EXPECT_EQ(-1, waitpid(-1, &status, WNOHANG));
	EXPECT_EQ(ECHILD, errno);
}

TEST_F_TIMEOUT(stock, many_forks, 240)
{
	enum { TOTAL = 256, BATCH = 32 };
	pid_t pids[BATCH], parent = getpid();
	int done = 0, seen = 0;

	while (done < TOTAL) {
		int i, n = 0;

		for (i = 0; i < BATCH && done + i < TOTAL; i++) {
			pid_t pid = fork();

			ASSERT_LE(0, pid);
			if (pid == 0) {
				/* Wrong parent: exit with a code no slot uses. */
				if (getppid() != parent)
					_exit(255);
				_exit((done + i) % 251);
			}
			pids[i] = pid;
			n++;
		}
		/* Reap in any order and map each pid back to its slot. */
		for (i = 0; i < n; i++) {
			int status, j;
			pid_t pid = waitpid(-1, &status, 0);

			ASSERT_LT(0, pid);
			for (j = 0; j < n; j++)
				if (pids[j] == pid)
					break;
			ASSERT_LT(j, n) {
				TH_LOG("reaped unknown pid %d", pid);
			}
			pids[j] = 0;
			ASSERT_TRUE(WIFEXITED(status));
			EXPECT_EQ((done + j) % 251, WEXITSTATUS(status));
			seen++;
		}
		done += n;
	}
	EXPECT_EQ(TOTAL, seen);
	EXPECT_EQ(-1, waitpid(-1, NULL, WNOHANG));
	EXPECT_EQ(ECHILD, errno);
}

/* Copy-on-write in both directions after fork. */
TEST_F_TIMEOUT(stock, fork_cow, STOCK_TIMEOUT)
{
	size_t len = 64 * PAGE;
	int status, pfd[2];
	unsigned char *p;
	pid_t pid;
	char c;

	p = map_anon(len);
	ASSERT_NE(MAP_FAILED, p);
	fill(p, len, 1);
	ASSERT_EQ(0, pipe(pfd));

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(pfd[1]);
		if (check(p, len, 1) != len)
			_exit(1);
		/* Wait for the parent to have rewritten its copy. */
		if (read(pfd[0], &c, 1) != 1)
			_exit(2);
		if (check(p, len, 1) != len)
			_exit(3);
		fill(p, len, 3);
		if (check(p, len, 3) != len)
			_exit(4);
		_exit(0);
	}
	close(pfd[0]);
	fill(p, len, 2);
	ASSERT_EQ(1, write(pfd[1], "g", 1));
	close(pfd[1]);
	status = child_status(_metadata, pid);
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(len, check(p, len, 2));
	EXPECT_EQ(0, munmap(p, len));
}

TEST_F_TIMEOUT(stock, anon_mmap_patterns, STOCK_TIMEOUT)
{
	size_t i, n, len = 256 * PAGE;
	uint64_t *w, sum_w = 0, sum_r = 0;
	unsigned char *p;

	p = map_anon(len);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_TRUE(all_zero(p, len));

	/* Byte pattern. */
	fill(p, len, 7);
	EXPECT_EQ(len, check(p, len, 7));

	/* Word pattern, written backwards, checksummed forwards. */
	w = (uint64_t *)p;
	n = len / sizeof(*w);
	for (i = n; i-- > 0;) {
		w[i] = mix64(i + 12345);
		sum_w += w[i] * (i | 1);
	}
	for (i = 0; i < n; i++)
		sum_r += w[i] * (i | 1);
	EXPECT_EQ(sum_w, sum_r);
	for (i = 0; i < n; i++)
		if (w[i] != mix64(i + 12345))
			break;
	EXPECT_EQ(n, i);

	/* Page-stride pattern: first and last byte of each page. */
	for (i = 0; i < len / PAGE; i++) {
		p[i * PAGE] = (unsigned char)i;
		p[i * PAGE + PAGE - 1] = (unsigned char)~i;
	}
	for (i = 0; i < len / PAGE; i++) {
		if (p[i * PAGE] != (unsigned char)i ||
		    p[i * PAGE + PAGE - 1] != (unsigned char)~i)
			break;
	}
	EXPECT_EQ(len / PAGE, i);
	EXPECT_EQ(0, munmap(p, len));
}

TEST_F_TIMEOUT(stock, file_map_private, STOCK_TIMEOUT)
{
	size_t len = 8 * PAGE;
	unsigned char *p, *buf;
	int fd;

	fd = tmp_file(len, 11);
	ASSERT_LE(0, fd);
	buf = malloc(len);
	ASSERT_NE(NULL, buf);

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(len, check(p, len, 11));

	/* Private writes stay private. */
	fill(p, 4 * PAGE, 12);
	EXPECT_EQ(4 * PAGE, check(p, 4 * PAGE, 12));
	ASSERT_EQ((ssize_t)len, pread(fd, buf, len, 0));
	EXPECT_EQ(len, check(buf, len, 11));

	/* Untouched private pages still come from the file. */
	EXPECT_EQ(0, memcmp(p + 4 * PAGE, buf + 4 * PAGE, 4 * PAGE));

	EXPECT_EQ(0, munmap(p, len));
	free(buf);
	close(fd);
}

TEST_F_TIMEOUT(stock, file_map_shared, STOCK_TIMEOUT)
{
	size_t len = 8 * PAGE;
	unsigned char *p, *q, *buf;
	int fd;

	fd = tmp_file(len, 21);
	ASSERT_LE(0, fd);
	buf = malloc(len);
	ASSERT_NE(NULL, buf);

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(len, check(p, len, 21));

	/* Writes through the mapping are visible to read(). */
	fill(p, len, 22);
	ASSERT_EQ((ssize_t)len, pread(fd, buf, len, 0));
	EXPECT_EQ(len, check(buf, len, 22));

	/* write() is visible through the mapping. */
	fill(buf, len, 23);
	ASSERT_EQ((ssize_t)len, pwrite(fd, buf, len, 0));
	EXPECT_EQ(len, check(p, len, 23));

	/* A second shared mapping sees the same pages. */
	q = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, q);
	p[PAGE + 5] = 0xa5;
	EXPECT_EQ(0xa5, q[PAGE + 5]);

	EXPECT_EQ(0, msync(p, len, MS_SYNC));
	EXPECT_EQ(0, munmap(q, len));
	EXPECT_EQ(0, munmap(p, len));

	/* And the contents outlive the mapping. */
	ASSERT_EQ((ssize_t)len, pread(fd, buf, len, 0));
	EXPECT_EQ(0xa5, buf[PAGE + 5]);
	buf[PAGE + 5] = pat(PAGE + 5, 23);
	EXPECT_EQ(len, check(buf, len, 23));
	free(buf);
	close(fd);
}

TEST_F_TIMEOUT(stock, munmap_then_access_segv, STOCK_TIMEOUT)
{
	size_t len = 3 * PAGE;
	unsigned char *p;

	p = map_anon(len);
	ASSERT_NE(MAP_FAILED, p);
	fill(p, len, 31);
	ASSERT_EQ(0, munmap(p + PAGE, PAGE));

	EXPECT_SEGV(p + PAGE, false, SEGV_MAPERR);
	EXPECT_SEGV(p + 2 * PAGE - 1, true, SEGV_MAPERR);
	/* The neighbours are untouched. */
	EXPECT_EQ(PAGE, check(p, PAGE, 31));
	for (size_t i = 0; i < PAGE; i++) {
		if (p[2 * PAGE + i] != pat(2 * PAGE + i, 31)) {
			EXPECT_EQ(PAGE, i);
			break;
		}
	}
	EXPECT_EQ(0, munmap(p, len));
	EXPECT_SEGV(p, false, SEGV_MAPERR);
}

TEST_F_TIMEOUT(stock, mprotect_read_only_then_rw, STOCK_TIMEOUT)
{
	size_t len = 4 * PAGE;
	unsigned char *p;

	p = map_anon(len);
	ASSERT_NE(MAP_FAILED, p);
	fill(p, len, 41);

	ASSERT_EQ(0, mprotect(p, len, PROT_READ));
	EXPECT_EQ(len, check(p, len, 41));
	EXPECT_SEGV(p + PAGE + 3, true, SEGV_ACCERR);
	EXPECT_EQ(len, check(p, len, 41));

	ASSERT_EQ(0, mprotect(p + 2 * PAGE, PAGE, PROT_NONE));
	EXPECT_SEGV(p + 2 * PAGE, false, SEGV_ACCERR);

	ASSERT_EQ(0, mprotect(p, len, PROT_READ | PROT_WRITE));
	EXPECT_ACCESS_OK(p + PAGE + 3, true);
	EXPECT_EQ(0x5a, p[PAGE + 3]);
	p[PAGE + 3] = pat(PAGE + 3, 41);
	EXPECT_EQ(len, check(p, len, 41));
	EXPECT_EQ(0, munmap(p, len));
}

TEST_F_TIMEOUT(stock, mremap_grow_in_place, STOCK_TIMEOUT)
{
	unsigned char *p, *q;

	p = map_anon(4 * PAGE);
	ASSERT_NE(MAP_FAILED, p);
	fill(p, 2 * PAGE, 51);
	ASSERT_EQ(0, munmap(p + 2 * PAGE, 2 * PAGE));
	EXPECT_SEGV(p + 2 * PAGE, false, SEGV_MAPERR);

	q = mremap(p, 2 * PAGE, 4 * PAGE, 0);
	ASSERT_EQ(p, q);
	EXPECT_EQ(2 * PAGE, check(q, 2 * PAGE, 51));
	EXPECT_TRUE(all_zero(q + 2 * PAGE, 2 * PAGE));
	fill(q + 2 * PAGE, 2 * PAGE, 52);
	EXPECT_EQ(2 * PAGE, check(q + 2 * PAGE, 2 * PAGE, 52));

	/* Shrinking unmaps the tail. */
	q = mremap(p, 4 * PAGE, PAGE, 0);
	ASSERT_EQ(p, q);
	EXPECT_EQ(PAGE, check(q, PAGE, 51));
	EXPECT_SEGV(p + PAGE, false, SEGV_MAPERR);
	EXPECT_EQ(0, munmap(p, PAGE));
}

TEST_F_TIMEOUT(stock, mremap_maymove, STOCK_TIMEOUT)
{
	size_t len = 3 * PAGE;
	unsigned char *p, *q;

	p = map_anon(len);
	ASSERT_NE(MAP_FAILED, p);
	fill(p, len, 61);

	/* p + 2 pages is mapped, so growing the first two pages must move. */
	ASSERT_EQ(MAP_FAILED, mremap(p, 2 * PAGE, 8 * PAGE, 0));
	EXPECT_EQ(ENOMEM, errno);
	q = mremap(p, 2 * PAGE, 8 * PAGE, MREMAP_MAYMOVE);
	ASSERT_NE(MAP_FAILED, q);
	ASSERT_NE(p, q);

	EXPECT_EQ(2 * PAGE, check(q, 2 * PAGE, 61));
	EXPECT_TRUE(all_zero(q + 2 * PAGE, 6 * PAGE));
	fill(q + 2 * PAGE, 6 * PAGE, 62);
	EXPECT_EQ(6 * PAGE, check(q + 2 * PAGE, 6 * PAGE, 62));

	/* The old range is gone, the page after it stays. */
	EXPECT_SEGV(p, false, SEGV_MAPERR);
	EXPECT_SEGV(p + PAGE, true, SEGV_MAPERR);
	EXPECT_EQ(pat(2 * PAGE, 61), p[2 * PAGE]);

	EXPECT_EQ(0, munmap(q, 8 * PAGE));
	EXPECT_EQ(0, munmap(p + 2 * PAGE, PAGE));
}

/*
 * No stdio between the sbrk() calls: malloc's arena lives on the same
 * break and must not grow underneath us.
 */
TEST_F_TIMEOUT(stock, brk_grow_write_shrink, STOCK_TIMEOUT)
{
	size_t len = 64 * PAGE;
	unsigned char *b0, *old, *first;
	uintptr_t fresh;

	b0 = sbrk(0);
	ASSERT_NE((void *)-1, b0);
	fresh = ((uintptr_t)b0 + PAGE - 1) & ~(uintptr_t)(PAGE - 1);
	first = (unsigned char *)fresh;

	old = sbrk(len);
	ASSERT_EQ(b0, old);
	ASSERT_EQ(b0 + len, (unsigned char *)sbrk(0));
	/* Whole pages above the old break are fresh and zero-filled. */
	EXPECT_TRUE(all_zero(first, b0 + len - first));
	fill(b0, len, 71);
	EXPECT_EQ(len, check(b0, len, 71));

	/* Shrink: whole pages above the break go away. */
	old = sbrk(-(intptr_t)len);
	ASSERT_EQ(b0 + len, old);
	ASSERT_EQ(b0, (unsigned char *)sbrk(0));
	EXPECT_SEGV(first + PAGE, false, SEGV_MAPERR);
	EXPECT_SEGV(b0 + len - 1, true, SEGV_MAPERR);

	/* Grow again: the pages come back zeroed, not with old data. */
	ASSERT_EQ(b0, (unsigned char *)sbrk(len));
	EXPECT_TRUE(all_zero(first + PAGE, b0 + len - first - PAGE));
	ASSERT_EQ(b0 + len, (unsigned char *)sbrk(-(intptr_t)len));
	ASSERT_EQ(b0, (unsigned char *)sbrk(0));
}

TEST_F_TIMEOUT(stock, fault_workload, 240)
{
	const size_t npages = 4096;
	size_t i, len = npages * PAGE, bad = npages;
	unsigned long sum = 0, want = 0;
	unsigned char *p;

	p = map_anon(len);
	ASSERT_NE(MAP_FAILED, p);

	/* Read faults: every page reads as zero. */
	for (i = 0; i < npages; i++)
		sum += p[i * PAGE] + p[i * PAGE + PAGE / 2] + p[i * PAGE + PAGE - 1];
	EXPECT_EQ(0, sum);

	/* Write faults (zero page -> private page), three spots per page. */
	for (i = 0; i < npages; i++) {
		p[i * PAGE] = (unsigned char)(i * 7);
		p[i * PAGE + PAGE / 2] = (unsigned char)(i * 13);
		p[i * PAGE + PAGE - 1] = (unsigned char)(i * 17);
		want += (unsigned char)(i * 7) + (unsigned char)(i * 13) +
			(unsigned char)(i * 17);
	}
	/* Read back from memory, not from what the compiler remembers. */
	asm volatile("" : : : "memory");
	sum = 0;
	for (i = 0; i < npages; i++) {
		sum += p[i * PAGE] + p[i * PAGE + PAGE / 2] + p[i * PAGE + PAGE - 1];
		if (bad == npages && (p[i * PAGE] != (unsigned char)(i * 7) ||
				      p[i * PAGE + 1] != 0 ||
				      p[i * PAGE + PAGE - 2] != 0))
			bad = i;
	}
	EXPECT_EQ(want, sum);
	EXPECT_EQ(npages, bad) {
		TH_LOG("page %zu has wrong contents", bad);
	}
	EXPECT_EQ(0, munmap(p, len));
}

TEST_F_TIMEOUT(stock, madvise_dontneed_anon_zeroes, STOCK_TIMEOUT)
{
	size_t len = 64 * PAGE;
	unsigned char *p;

	p = map_anon(len);
	ASSERT_NE(MAP_FAILED, p);
	fill(p, len, 81);
	ASSERT_EQ(0, madvise(p + 16 * PAGE, 32 * PAGE, MADV_DONTNEED));
	EXPECT_EQ(16 * PAGE, check(p, 16 * PAGE, 81));
	EXPECT_TRUE(all_zero(p + 16 * PAGE, 32 * PAGE));
	for (size_t i = 48 * PAGE; i < len; i++) {
		if (p[i] != pat(i, 81)) {
			EXPECT_EQ(len, i);
			break;
		}
	}
	/* Still mapped and writable. */
	fill(p, len, 82);
	EXPECT_EQ(len, check(p, len, 82));
	EXPECT_EQ(0, munmap(p, len));
}

TEST_F_TIMEOUT(stock, madvise_dontneed_shared_file_keeps_data, STOCK_TIMEOUT)
{
	size_t len = 8 * PAGE;
	unsigned char *p;
	int fd;

	fd = tmp_file(len, 91);
	ASSERT_LE(0, fd);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	fill(p, len, 92);
	ASSERT_EQ(0, madvise(p, len, MADV_DONTNEED));
	/* Dropping the PTEs of a shared file mapping loses nothing. */
	EXPECT_EQ(len, check(p, len, 92));
	EXPECT_EQ(0, munmap(p, len));
	close(fd);
}

static int run_exec(struct __test_metadata *_metadata, const char *path,
		    char *const argv[], char *const envp[])
{
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execve(path, argv, envp);
		_exit(errno == ENOENT ? 126 : 125);
	}
	return child_status(_metadata, pid);
}

TEST_F_TIMEOUT(stock, exec_true_false, STOCK_TIMEOUT)
{
	char *const argv_true[] = { "true", NULL };
	char *const argv_false[] = { "false", NULL };
	char *const envp[] = { NULL };
	int status;

	status = run_exec(_metadata, "/bin/true", argv_true, envp);
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));

	/* Every node has it (a busybox applet); 126 would mean it does not. */
	status = run_exec(_metadata, "/bin/false", argv_false, envp);
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(1, WEXITSTATUS(status));

	/* A failed exec returns to the caller with the right errno. */
	status = run_exec(_metadata, "/nonexistent/cohort", argv_true, envp);
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(126, WEXITSTATUS(status));
}

/* Exec ourselves; argv and envp must arrive intact (see main()). */
TEST_F_TIMEOUT(stock, exec_self_args_env, STOCK_TIMEOUT)
{
	char *const argv[] = { "stock_test", EXEC_PROBE, "77", NULL };
	char *const envp[] = { EXEC_PROBE_ENV, NULL };
	int status;

	status = run_exec(_metadata, "/proc/self/exe", argv, envp);
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(77, WEXITSTATUS(status));
}

struct thread_arg {
	unsigned long *counter;
	unsigned char *slice;
	size_t len;
	unsigned int seed;
};

static void *thread_fn(void *data)
{
	struct thread_arg *a = data;
	int i;

	for (i = 0; i < 20000; i++)
		__atomic_fetch_add(a->counter, 1, __ATOMIC_RELAXED);
	fill(a->slice, a->len, a->seed);
	return NULL;
}

TEST_F_TIMEOUT(stock, threads_share_memory, STOCK_TIMEOUT)
{
	enum { NR = 4 };
	size_t slice = 16 * PAGE;
	struct thread_arg args[NR];
	pthread_t th[NR];
	unsigned long counter = 0;
	unsigned char *p;
	int i;

	p = map_anon(NR * slice);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < NR; i++) {
		args[i] = (struct thread_arg) {
			.counter = &counter,
			.slice = p + i * slice,
			.len = slice,
			.seed = 100 + i,
		};
		ASSERT_EQ(0, pthread_create(&th[i], NULL, thread_fn, &args[i]));
	}
	for (i = 0; i < NR; i++)
		ASSERT_EQ(0, pthread_join(th[i], NULL));
	EXPECT_EQ(NR * 20000UL, counter);
	for (i = 0; i < NR; i++)
		EXPECT_EQ(slice, check(p + i * slice, slice, 100 + i));
	EXPECT_EQ(0, munmap(p, NR * slice));
}

/* Runs last: leave the node with nothing registered. */
FIXTURE(zz_cleanup) {
};

FIXTURE_SETUP(zz_cleanup)
{
}

FIXTURE_TEARDOWN(zz_cleanup)
{
}

TEST_F_TIMEOUT(zz_cleanup, unload_all_modules, 120)
{
	int m, ret;

	for (m = 0; m < COHORT_NR_MODULES; m++) {
		/* Only what this suite could have loaded. */
		if (!cohort_module_file_present(cohort_module(m)->name))
			continue;
		ret = cohort_ensure_unloaded(cohort_module(m)->name);
		EXPECT_EQ(0, ret) {
			TH_LOG("unloading %s: %s", cohort_module(m)->name,
			       strerror(-ret));
		}
		EXPECT_FALSE(cohort_module_loaded(cohort_module(m)->name));
	}
}

static int exec_probe(const char *code)
{
	const char *env = getenv("COHORT_EXEC_PROBE");

	if (!env || strcmp(env, strchr(EXEC_PROBE_ENV, '=') + 1))
		return 3;
	return atoi(code);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], EXEC_PROBE))
		return exec_probe(argv[2]);
	return test_harness_run(argc, argv);
}
