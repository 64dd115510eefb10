/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers for the Cohort selftests: sysfs readers, the hub's ops
 * file, module load/unload and the pcntl(2) wrapper.
 *
 * Everything here returns 0 (or a value) on success and a negative errno on
 * failure so tests can ASSERT on it and print the reason.
 */
#ifndef COHORT_TEST_H
#define COHORT_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/cohort.h>

#ifndef PCNTL_WHERE
#error "<linux/cohort.h> does not define PCNTL_WHERE"
#endif

#ifndef __NR_pcntl
#define __NR_pcntl 463
#endif

/* Overridable so the parsers can be checked against a fake tree. */
#ifndef COHORT_SYSFS
#define COHORT_SYSFS		"/sys/kernel/cohort"
#endif
#define COHORT_NODE_ID		COHORT_SYSFS "/node_id"
#define COHORT_NR_NODES		COHORT_SYSFS "/nr_nodes"
#define COHORT_OPS		COHORT_SYSFS "/ops"
#define COHORT_MODULE_DIR	"/lib/modules/cohort"

/* Ops slots, in the order the ops file lists them. */
enum cohort_slot {
	COHORT_SLOT_TASK,
	COHORT_SLOT_LAYOUT,
	COHORT_SLOT_FAULT,
	COHORT_SLOT_PCNTL,
	COHORT_SLOT_MSG,
	COHORT_SLOT_MIGRATION,
	COHORT_SLOT_FILES,
	COHORT_NR_SLOTS,
};

static inline const char *cohort_slot_name(int slot)
{
	static const char * const names[COHORT_NR_SLOTS] = {
		[COHORT_SLOT_TASK]	= "task",
		[COHORT_SLOT_LAYOUT]	= "layout",
		[COHORT_SLOT_FAULT]	= "fault",
		[COHORT_SLOT_PCNTL]	= "pcntl",
		[COHORT_SLOT_MSG]	= "msg",
		[COHORT_SLOT_MIGRATION]	= "migration",
		[COHORT_SLOT_FILES]	= "files",
	};

	return names[slot];
}

#define COHORT_SLOT_BIT(s)	(1U << (s))

struct cohort_module {
	const char *name;
	unsigned int slots;	/* COHORT_SLOT_BIT()s it registers */
};

enum {
	COHORT_MOD_KMSG,
	COHORT_MOD_POPCORN,
	COHORT_MOD_GOBELINS,
	COHORT_NR_MODULES,
};

/* Which module registers which slots, per the hub contract. */
static inline const struct cohort_module *cohort_module(int mod)
{
	static const struct cohort_module mods[COHORT_NR_MODULES] = {
		[COHORT_MOD_KMSG] = {
			.name	= "kmsg",
			.slots	= COHORT_SLOT_BIT(COHORT_SLOT_MSG),
		},
		[COHORT_MOD_POPCORN] = {
			.name	= "popcorn",
			.slots	= COHORT_SLOT_BIT(COHORT_SLOT_TASK) |
				  COHORT_SLOT_BIT(COHORT_SLOT_LAYOUT) |
				  COHORT_SLOT_BIT(COHORT_SLOT_PCNTL) |
				  COHORT_SLOT_BIT(COHORT_SLOT_MIGRATION) |
				  COHORT_SLOT_BIT(COHORT_SLOT_FILES),
		},
		[COHORT_MOD_GOBELINS] = {
			.name	= "gobelins",
			.slots	= COHORT_SLOT_BIT(COHORT_SLOT_FAULT),
		},
	};

	return &mods[mod];
}

#define COHORT_NAME_MAX	64

struct cohort_ops {
	int nr;					/* lines parsed */
	char slot[COHORT_NR_SLOTS][COHORT_NAME_MAX];
	char owner[COHORT_NR_SLOTS][COHORT_NAME_MAX];
	unsigned long long calls[COHORT_NR_SLOTS];
};

/* Read a whole (small) file into @buf, NUL terminated. Returns length. */
static inline ssize_t cohort_read_file(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;
	int fd;

	if (size == 0)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len < size - 1) {
		n = read(fd, buf + len, size - 1 - len);
		if (n < 0) {
			n = -errno;
			close(fd);
			return n;
		}
		if (n == 0)
			break;
		len += n;
	}
	close(fd);
	buf[len] = '\0';
	return len;
}

/* Parse a non-negative decimal number that must span [s, end). */
static inline int cohort_parse_ull(const char *s, const char *end,
				   unsigned long long *val)
{
	unsigned long long v = 0;
	const char *p;

	if (s == end)
		return -EINVAL;
	for (p = s; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		if (v > (ULLONG_MAX - (*p - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (*p - '0');
	}
	*val = v;
	return 0;
}

/*
 * Read a sysfs attribute holding one decimal number followed by exactly
 * one newline ("3\n"). Anything else is -EINVAL.
 */
static inline int cohort_read_ulong(const char *path, unsigned long *val)
{
	unsigned long long v;
	char buf[64];
	ssize_t len;
	int ret;

	len = cohort_read_file(path, buf, sizeof(buf));
	if (len < 0)
		return len;
	if (len < 2 || buf[len - 1] != '\n')
		return -EINVAL;
	ret = cohort_parse_ull(buf, buf + len - 1, &v);
	if (ret)
		return ret;
	if (v > ULONG_MAX)
		return -ERANGE;
	*val = v;
	return 0;
}

/* Split at the next space or end of line; returns the token's end. */
static inline const char *cohort_token_end(const char *s, const char *end)
{
	while (s < end && *s != ' ')
		s++;
	return s;
}

/*
 * Parse the ops file. Every line must be "<slot> <owner> <calls>\n" with
 * single spaces; returns the number of lines (also in @ops->nr), or
 * -EINVAL on a malformed line, -E2BIG on more than COHORT_NR_SLOTS lines.
 */
static inline int cohort_read_ops(struct cohort_ops *ops)
{
	const char *line, *nl, *a, *b;
	char buf[4096];
	ssize_t len;
	int ret;

	memset(ops, 0, sizeof(*ops));
	len = cohort_read_file(COHORT_OPS, buf, sizeof(buf));
	if (len < 0)
		return len;
	if ((size_t)len >= sizeof(buf) - 1)
		return -E2BIG;
	for (line = buf; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		if (!nl)
			return -EINVAL;	/* last line not terminated */
		if (ops->nr >= COHORT_NR_SLOTS)
			return -E2BIG;

		a = cohort_token_end(line, nl);
		if (a == line || a == nl || a - line >= COHORT_NAME_MAX)
			return -EINVAL;
		b = cohort_token_end(a + 1, nl);
		if (b == a + 1 || b == nl || b - (a + 1) >= COHORT_NAME_MAX)
			return -EINVAL;
		ret = cohort_parse_ull(b + 1, nl, &ops->calls[ops->nr]);
		if (ret)
			return ret;
		memcpy(ops->slot[ops->nr], line, a - line);
		memcpy(ops->owner[ops->nr], a + 1, b - (a + 1));
		ops->nr++;
	}
	return ops->nr;
}

/*
 * Read the ops file and check it has exactly the six slots, in order.
 * Tests that only need owners/counters use this.
 */
static inline int cohort_read_ops_checked(struct cohort_ops *ops)
{
	int ret, i;

	ret = cohort_read_ops(ops);
	if (ret < 0)
		return ret;
	if (ret != COHORT_NR_SLOTS)
		return -EINVAL;
	for (i = 0; i < COHORT_NR_SLOTS; i++)
		if (strcmp(ops->slot[i], cohort_slot_name(i)))
			return -EINVAL;
	return 0;
}

/*
 * Find "name=<decimal>" as a whole word on /proc/cmdline.
 * Returns 0, -ENOENT when absent, -EINVAL when not a number.
 */
static inline int cohort_cmdline_ulong(const char *name, unsigned long *val)
{
	unsigned long long v;
	char buf[4096];
	size_t nlen = strlen(name);
	const char *p, *end;
	ssize_t len;
	int ret;

	len = cohort_read_file("/proc/cmdline", buf, sizeof(buf));
	if (len < 0)
		return len;
	for (p = buf; *p; p = end) {
		while (*p == ' ' || *p == '\n')
			p++;
		end = p;
		while (*end && *end != ' ' && *end != '\n')
			end++;
		if ((size_t)(end - p) > nlen && !strncmp(p, name, nlen) &&
		    p[nlen] == '=') {
			ret = cohort_parse_ull(p + nlen + 1, end, &v);
			if (ret)
				return ret;
			*val = v;
			return 0;
		}
	}
	return -ENOENT;
}

/* Environment variable holding a decimal number; -ENOENT when unset. */
static inline int cohort_env_ulong(const char *name, unsigned long *val)
{
	unsigned long long v;
	const char *s = getenv(name);
	int ret;

	if (!s)
		return -ENOENT;
	ret = cohort_parse_ull(s, s + strlen(s), &v);
	if (ret)
		return ret;
	*val = v;
	return 0;
}

/*
 * COHORT_REQUIRE_PEERS=1: the runner loaded kmsg and popcorn on every other
 * node, so a test that needs an up peer fails without one instead of
 * skipping. Unset (a binary run by hand on a lone node), such a test skips
 * and says why.
 */
static inline bool cohort_require_peers(void)
{
	const char *s = getenv("COHORT_REQUIRE_PEERS");

	return s && !strcmp(s, "1");
}

/* ---- modules ---- */

static inline void cohort_module_path(const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s.ko", COHORT_MODULE_DIR, name);
}

static inline bool cohort_module_file_present(const char *name)
{
	char path[PATH_MAX];

	cohort_module_path(name, path, sizeof(path));
	return access(path, R_OK) == 0;
}

static inline bool cohort_module_loaded(const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "/sys/module/%s", name);
	return stat(path, &st) == 0;
}

/* finit_module(2); -EEXIST when already loaded. */
static inline int cohort_load_module(const char *name)
{
	char path[PATH_MAX];
	int fd, ret;

	cohort_module_path(name, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = syscall(__NR_finit_module, fd, "", 0);
	ret = ret ? -errno : 0;
	close(fd);
	return ret;
}

/* delete_module(2) with O_NONBLOCK; -ENOENT when not loaded. */
static inline int cohort_unload_module(const char *name)
{
	if (syscall(__NR_delete_module, name, O_NONBLOCK))
		return -errno;
	return 0;
}

/* Write @text to @path (a debugfs command file); 0 or -errno. */
static inline int cohort_write_file(const char *path, const char *text)
{
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	if (n < 0)
		ret = -errno;
	close(fd);
	return ret;
}

#define COHORT_KMSG_PEERS	"/sys/kernel/debug/kmsg/peers"

/*
 * State word ("self", "up", "down") and address of @node in kmsg's peers
 * file; 0, -ENOENT if it is not listed, -EINVAL for a line that does not
 * parse, or -errno if the file cannot be read.
 */
static inline int cohort_peer_state(unsigned long node, char *state, size_t size,
				    char *ip, size_t ipsize)
{
	char buf[8192], *line, *save = NULL;

	if (cohort_read_file(COHORT_KMSG_PEERS, buf, sizeof(buf)) < 0)
		return -errno;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long id;
		char st[16], addr[32];

		if (line[0] == '#')
			continue;
		if (sscanf(line, "%lu %15s %31s", &id, st, addr) != 3)
			return -EINVAL;
		if (id == node) {
			snprintf(state, size, "%s", st);
			snprintf(ip, ipsize, "%s", addr);
			return 0;
		}
	}
	return -ENOENT;
}

/* CLOCK_MONOTONIC in milliseconds. */
static inline long long cohort_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static inline void cohort_msleep(unsigned int ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (ms % 1000) * 1000000L,
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * Make sure @name is not loaded. A module still in use (EAGAIN/EBUSY, e.g.
 * a hook call in flight) gets retried for up to ~10 seconds.
 */
static inline int cohort_ensure_unloaded(const char *name)
{
	int ret, i;

	for (i = 0; i < 100; i++) {
		ret = cohort_unload_module(name);
		if (ret == 0 || ret == -ENOENT)
			return 0;
		if (ret != -EAGAIN && ret != -EBUSY)
			return ret;
		cohort_msleep(100);
	}
	return ret;
}

/* Make sure @name is loaded; an already loaded module is fine. */
static inline int cohort_ensure_loaded(const char *name)
{
	int ret = cohort_load_module(name);

	return ret == -EEXIST ? 0 : ret;
}

/* ---- pcntl(2) ---- */

static inline long pcntl(unsigned int cmd, unsigned long a0,
			 unsigned long a1, unsigned long a2)
{
	return syscall(__NR_pcntl, cmd, a0, a1, a2);
}

#endif /* COHORT_TEST_H */
