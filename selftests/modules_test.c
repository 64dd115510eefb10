// SPDX-License-Identifier: GPL-2.0
/*
 * Cohort modules against the hub: each of kmsg, popcorn and gobelins
 * registers its ops slots on load and gives them back on unload, loads are
 * independent of order, and the hub's per-slot call counters move while a
 * module is registered and stop when it is gone.
 */
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "cohort_test.h"

#define ALL_MODULES	((1U << COHORT_NR_MODULES) - 1)
#define PAGE		((size_t)sysconf(_SC_PAGESIZE))

/* Every slot owned by exactly what @loaded (bitmask of modules) says. */
static void expect_owners(struct __test_metadata *_metadata,
			  unsigned int loaded)
{
	struct cohort_ops ops;
	int s, m;

	ASSERT_EQ(0, cohort_read_ops_checked(&ops));
	for (s = 0; s < COHORT_NR_SLOTS; s++) {
		const char *want = "-";

		for (m = 0; m < COHORT_NR_MODULES; m++)
			if ((loaded & (1U << m)) &&
			    (cohort_module(m)->slots & COHORT_SLOT_BIT(s)))
				want = cohort_module(m)->name;
		EXPECT_STREQ(want, ops.owner[s]) {
			TH_LOG("slot %s, loaded mask %#x", cohort_slot_name(s),
			       loaded);
		}
	}
}

/* First module of the @mods mask whose .ko is absent, or -1. */
static int first_missing(unsigned int mods)
{
	int m;

	for (m = 0; m < COHORT_NR_MODULES; m++)
		if ((mods & (1U << m)) &&
		    !cohort_module_file_present(cohort_module(m)->name))
			return m;
	return -1;
}

/* Unload every module we could have loaded (its .ko is present). */
static void ensure_all_unloaded(struct __test_metadata *_metadata)
{
	int m, ret;

	for (m = 0; m < COHORT_NR_MODULES; m++) {
		if (!cohort_module_file_present(cohort_module(m)->name))
			continue;
		ret = cohort_ensure_unloaded(cohort_module(m)->name);
		EXPECT_EQ(0, ret) {
			TH_LOG("unloading %s: %s", cohort_module(m)->name,
			       strerror(-ret));
		}
	}
}

static void load_ok(struct __test_metadata *_metadata, int m)
{
	int ret = cohort_load_module(cohort_module(m)->name);

	ASSERT_EQ(0, ret) {
		TH_LOG("loading %s: %s", cohort_module(m)->name, strerror(-ret));
	}
}

static void unload_ok(struct __test_metadata *_metadata, int m)
{
	int ret = cohort_unload_module(cohort_module(m)->name);

	ASSERT_EQ(0, ret) {
		TH_LOG("unloading %s: %s", cohort_module(m)->name,
		       strerror(-ret));
	}
}

/* ---- one module at a time ---- */

FIXTURE(module) {
};

FIXTURE_VARIANT(module) {
	int mod;
};

FIXTURE_VARIANT_ADD(module, kmsg) {
	.mod = COHORT_MOD_KMSG,
};

FIXTURE_VARIANT_ADD(module, popcorn) {
	.mod = COHORT_MOD_POPCORN,
};

FIXTURE_VARIANT_ADD(module, gobelins) {
	.mod = COHORT_MOD_GOBELINS,
};

FIXTURE_SETUP(module)
{
	const char *name = cohort_module(variant->mod)->name;
	struct cohort_ops ops;
	int ret, s;

	if (!cohort_module_file_present(name))
		SKIP(return, "%s/%s.ko not present", COHORT_MODULE_DIR, name);
	ret = cohort_ensure_unloaded(name);
	ASSERT_EQ(0, ret) {
		TH_LOG("cannot unload %s: %s", name, strerror(-ret));
	}
	ASSERT_FALSE(cohort_module_loaded(name));
	ASSERT_EQ(0, cohort_read_ops_checked(&ops));
	for (s = 0; s < COHORT_NR_SLOTS; s++)
		if (cohort_module(variant->mod)->slots & COHORT_SLOT_BIT(s))
			ASSERT_STREQ("-", ops.owner[s]);
}

FIXTURE_TEARDOWN(module)
{
	const char *name = cohort_module(variant->mod)->name;

	EXPECT_EQ(0, cohort_ensure_unloaded(name));
}

/* Compare only the slots this module owns; others are not ours to judge. */
static void expect_module_slots(struct __test_metadata *_metadata, int mod,
				const char *owner)
{
	struct cohort_ops ops;
	int s;

	ASSERT_EQ(0, cohort_read_ops_checked(&ops));
	for (s = 0; s < COHORT_NR_SLOTS; s++) {
		if (cohort_module(mod)->slots & COHORT_SLOT_BIT(s)) {
			EXPECT_STREQ(owner, ops.owner[s]) {
				TH_LOG("slot %s", cohort_slot_name(s));
			}
		} else {
			EXPECT_STRNE(cohort_module(mod)->name, ops.owner[s]) {
				TH_LOG("slot %s taken by %s, not its owner",
				       cohort_slot_name(s),
				       cohort_module(mod)->name);
			}
		}
	}
}

TEST_F_TIMEOUT(module, load_sets_owner, 120)
{
	int mod = variant->mod;

	load_ok(_metadata, mod);
	EXPECT_TRUE(cohort_module_loaded(cohort_module(mod)->name));
	expect_module_slots(_metadata, mod, cohort_module(mod)->name);
}

TEST_F_TIMEOUT(module, load_twice_is_eexist, 120)
{
	int mod = variant->mod;

	load_ok(_metadata, mod);
	EXPECT_EQ(-EEXIST, cohort_load_module(cohort_module(mod)->name));
	/* The failed second load must not disturb the registration. */
	EXPECT_TRUE(cohort_module_loaded(cohort_module(mod)->name));
	expect_module_slots(_metadata, mod, cohort_module(mod)->name);
}

TEST_F_TIMEOUT(module, unload_clears_owner, 120)
{
	int mod = variant->mod;

	load_ok(_metadata, mod);
	expect_module_slots(_metadata, mod, cohort_module(mod)->name);
	unload_ok(_metadata, mod);
	EXPECT_FALSE(cohort_module_loaded(cohort_module(mod)->name));
	expect_module_slots(_metadata, mod, "-");
	EXPECT_EQ(-ENOENT, cohort_unload_module(cohort_module(mod)->name));
}

TEST_F_TIMEOUT(module, reload_cycles, 180)
{
	int mod = variant->mod;
	int i;

	for (i = 0; i < 3; i++) {
		load_ok(_metadata, mod);
		expect_module_slots(_metadata, mod, cohort_module(mod)->name);
		unload_ok(_metadata, mod);
		expect_module_slots(_metadata, mod, "-");
	}
}

/* ---- all three together ---- */

FIXTURE(all) {
};

FIXTURE_SETUP(all)
{
	int missing;

	missing = first_missing(ALL_MODULES);
	if (missing >= 0)
		SKIP(return, "%s/%s.ko not present", COHORT_MODULE_DIR,
		     cohort_module(missing)->name);
	ensure_all_unloaded(_metadata);
	ASSERT_EQ(0, _metadata->exit_code);
	expect_owners(_metadata, 0);
}

FIXTURE_TEARDOWN(all)
{
	ensure_all_unloaded(_metadata);
}

static void load_unload_orders(struct __test_metadata *_metadata,
			       const int load[COHORT_NR_MODULES],
			       const int unload[COHORT_NR_MODULES])
{
	unsigned int loaded = 0;
	int i;

	for (i = 0; i < COHORT_NR_MODULES; i++) {
		load_ok(_metadata, load[i]);
		loaded |= 1U << load[i];
		expect_owners(_metadata, loaded);
	}
	for (i = 0; i < COHORT_NR_MODULES; i++) {
		unload_ok(_metadata, unload[i]);
		loaded &= ~(1U << unload[i]);
		expect_owners(_metadata, loaded);
	}
}

TEST_F_TIMEOUT(all, load_all_unload_in_other_orders, 240)
{
	static const int orders[][2][COHORT_NR_MODULES] = {
		{
			{ COHORT_MOD_KMSG, COHORT_MOD_POPCORN, COHORT_MOD_GOBELINS },
			{ COHORT_MOD_GOBELINS, COHORT_MOD_KMSG, COHORT_MOD_POPCORN },
		},
		{
			{ COHORT_MOD_GOBELINS, COHORT_MOD_POPCORN, COHORT_MOD_KMSG },
			{ COHORT_MOD_KMSG, COHORT_MOD_GOBELINS, COHORT_MOD_POPCORN },
		},
		{
			{ COHORT_MOD_POPCORN, COHORT_MOD_KMSG, COHORT_MOD_GOBELINS },
			{ COHORT_MOD_POPCORN, COHORT_MOD_GOBELINS, COHORT_MOD_KMSG },
		},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(orders); i++)
		load_unload_orders(_metadata, orders[i][0], orders[i][1]);
}

/* ---- counters ---- */

static unsigned long long slot_calls(struct __test_metadata *_metadata,
				     int slot)
{
	struct cohort_ops ops;

	ASSERT_EQ(0, cohort_read_ops_checked(&ops));
	return ops.calls[slot];
}

/*
 * Map @n fresh anonymous pages with THP off (one fault per page, not one
 * per 2M) and touch each one once, by reading or by writing.
 */
static void touch_fresh_pages(struct __test_metadata *_metadata, size_t n,
			      bool write)
{
	size_t i, len = n * PAGE;
	unsigned long sum = 0;
	char *p;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	/* May fail with EINVAL on a kernel without THP: nothing to turn off. */
	madvise(p, len, MADV_NOHUGEPAGE);
	for (i = 0; i < n; i++) {
		if (write)
			p[i * PAGE] = (char)i;
		else
			sum += p[i * PAGE];
	}
	/* Every access above must really happen: it is what we count. */
	asm volatile("" : : "r"(sum) : "memory");
	EXPECT_EQ(0, sum);
	ASSERT_EQ(0, munmap(p, len));
}

static void fork_and_exit(struct __test_metadata *_metadata, int n)
{
	int i, status;
	pid_t pid;

	for (i = 0; i < n; i++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0)
			_exit(i & 0x7f);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_TRUE(WIFEXITED(status));
		ASSERT_EQ(i & 0x7f, WEXITSTATUS(status));
	}
}

FIXTURE(counters) {
};

FIXTURE_SETUP(counters)
{
	/* Each test skips on the modules it needs. */
	ensure_all_unloaded(_metadata);
	ASSERT_EQ(0, _metadata->exit_code);
}

FIXTURE_TEARDOWN(counters)
{
	ensure_all_unloaded(_metadata);
}

TEST_F_TIMEOUT(counters, gobelins_counts_faults, 120)
{
	const size_t n = 512;
	unsigned long long c0, c1, c2;
	int missing;

	missing = first_missing(1U << COHORT_MOD_GOBELINS);
	if (missing >= 0)
		SKIP(return, "%s/%s.ko not present", COHORT_MODULE_DIR,
		     cohort_module(missing)->name);
	load_ok(_metadata, COHORT_MOD_GOBELINS);
	expect_owners(_metadata, 1U << COHORT_MOD_GOBELINS);

	c0 = slot_calls(_metadata, COHORT_SLOT_FAULT);
	touch_fresh_pages(_metadata, n, true);
	c1 = slot_calls(_metadata, COHORT_SLOT_FAULT);
	EXPECT_LE(c0 + n, c1) {
		TH_LOG("%zu write faults on fresh pages: fault calls %llu -> %llu",
		       n, c0, c1);
	}
	touch_fresh_pages(_metadata, n, false);
	c2 = slot_calls(_metadata, COHORT_SLOT_FAULT);
	EXPECT_LE(c1 + n, c2) {
		TH_LOG("%zu read faults on fresh pages: fault calls %llu -> %llu",
		       n, c1, c2);
	}
}

TEST_F_TIMEOUT(counters, popcorn_counts_task_events, 120)
{
	const int n = 16;
	unsigned long long c0, c1, c2;
	int status, missing;
	pid_t pid;

	missing = first_missing(1U << COHORT_MOD_POPCORN);
	if (missing >= 0)
		SKIP(return, "%s/%s.ko not present", COHORT_MODULE_DIR,
		     cohort_module(missing)->name);
	load_ok(_metadata, COHORT_MOD_POPCORN);
	expect_owners(_metadata, 1U << COHORT_MOD_POPCORN);

	/* Each fork + exit: one creation and one exit. */
	c0 = slot_calls(_metadata, COHORT_SLOT_TASK);
	fork_and_exit(_metadata, n);
	c1 = slot_calls(_metadata, COHORT_SLOT_TASK);
	EXPECT_LE(c0 + 2 * n, c1) {
		TH_LOG("%d fork+exit: task calls %llu -> %llu", n, c0, c1);
	}

	/* fork + exec + exit: creation, exec and exit. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	c2 = slot_calls(_metadata, COHORT_SLOT_TASK);
	EXPECT_LE(c1 + 3, c2) {
		TH_LOG("fork+exec+exit: task calls %llu -> %llu", c1, c2);
	}
}

TEST_F_TIMEOUT(counters, popcorn_counts_layout_calls, 120)
{
	const int n = 16;
	unsigned long long c0, c1;
	void *maps[16], *brk0, *q;
	int i, missing;

	missing = first_missing(1U << COHORT_MOD_POPCORN);
	if (missing >= 0)
		SKIP(return, "%s/%s.ko not present", COHORT_MODULE_DIR,
		     cohort_module(missing)->name);
	load_ok(_metadata, COHORT_MOD_POPCORN);

	c0 = slot_calls(_metadata, COHORT_SLOT_LAYOUT);
	for (i = 0; i < n; i++) {
		maps[i] = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ASSERT_NE(MAP_FAILED, maps[i]);
	}
	c1 = slot_calls(_metadata, COHORT_SLOT_LAYOUT);
	EXPECT_LE(c0 + n, c1) {
		TH_LOG("%d mmap: layout calls %llu -> %llu", n, c0, c1);
	}

	c0 = c1;
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, mprotect(maps[i], PAGE, PROT_READ));
	c1 = slot_calls(_metadata, COHORT_SLOT_LAYOUT);
	EXPECT_LE(c0 + n, c1) {
		TH_LOG("%d mprotect: layout calls %llu -> %llu", n, c0, c1);
	}

	c0 = c1;
	q = mremap(maps[0], 4 * PAGE, 2 * PAGE, 0);
	ASSERT_EQ(maps[0], q);
	c1 = slot_calls(_metadata, COHORT_SLOT_LAYOUT);
	EXPECT_LE(c0 + 1, c1) {
		TH_LOG("mremap: layout calls %llu -> %llu", c0, c1);
	}

	c0 = c1;
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, munmap(maps[i], i ? 4 * PAGE : 2 * PAGE));
	c1 = slot_calls(_metadata, COHORT_SLOT_LAYOUT);
	EXPECT_LE(c0 + n, c1) {
		TH_LOG("%d munmap: layout calls %llu -> %llu", n, c0, c1);
	}

	/* brk grow: the raw syscall, glibc's sbrk may cache. */
	brk0 = (void *)syscall(__NR_brk, 0);
	c0 = slot_calls(_metadata, COHORT_SLOT_LAYOUT);
	q = (void *)syscall(__NR_brk, (char *)brk0 + 16 * PAGE);
	ASSERT_EQ((char *)brk0 + 16 * PAGE, (char *)q);
	c1 = slot_calls(_metadata, COHORT_SLOT_LAYOUT);
	EXPECT_LE(c0 + 1, c1) {
		TH_LOG("brk grow: layout calls %llu -> %llu", c0, c1);
	}
	ASSERT_EQ(brk0, (void *)syscall(__NR_brk, brk0));
}

/* A tiny workload hitting every hook a module can count. */
static void hook_workload(struct __test_metadata *_metadata)
{
	void *p;

	fork_and_exit(_metadata, 4);
	touch_fresh_pages(_metadata, 64, true);
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, mprotect(p, PAGE, PROT_READ));
	ASSERT_EQ(0, munmap(p, PAGE));
}

TEST_F_TIMEOUT(counters, counters_stop_after_unload, 180)
{
	static const int hooked[] = {
		COHORT_SLOT_TASK, COHORT_SLOT_LAYOUT, COHORT_SLOT_FAULT,
	};
	struct cohort_ops before, live, gone, later;
	size_t i;
	int m, s, missing;

	missing = first_missing(ALL_MODULES);
	if (missing >= 0)
		SKIP(return, "%s/%s.ko not present", COHORT_MODULE_DIR,
		     cohort_module(missing)->name);
	ASSERT_EQ(0, cohort_read_ops_checked(&before));
	for (m = 0; m < COHORT_NR_MODULES; m++)
		load_ok(_metadata, m);
	expect_owners(_metadata, ALL_MODULES);
	hook_workload(_metadata);
	ASSERT_EQ(0, cohort_read_ops_checked(&live));

	for (m = COHORT_NR_MODULES - 1; m >= 0; m--)
		unload_ok(_metadata, m);
	ASSERT_EQ(0, cohort_read_ops_checked(&gone));
	expect_owners(_metadata, 0);

	/* Counters keep their value across unregistration... */
	for (s = 0; s < COHORT_NR_SLOTS; s++) {
		EXPECT_LE(live.calls[s], gone.calls[s]) {
			TH_LOG("slot %s went backwards on unload",
			       cohort_slot_name(s));
		}
	}
	/* The counters are the node's since boot: compare with before loading. */
	for (i = 0; i < ARRAY_SIZE(hooked); i++) {
		EXPECT_LT(before.calls[hooked[i]], live.calls[hooked[i]]) {
			TH_LOG("slot %s: no calls counted while registered (%llu before loading, %llu after the workload)",
			       cohort_slot_name(hooked[i]), before.calls[hooked[i]],
			       live.calls[hooked[i]]);
		}
	}

	/* ...and stop moving once nothing is registered. */
	hook_workload(_metadata);
	ASSERT_EQ(0, cohort_read_ops_checked(&later));
	for (s = 0; s < COHORT_NR_SLOTS; s++) {
		EXPECT_EQ(gone.calls[s], later.calls[s]) {
			TH_LOG("slot %s counted %llu calls with no owner",
			       cohort_slot_name(s),
			       later.calls[s] - gone.calls[s]);
		}
	}
}

TEST_HARNESS_MAIN
