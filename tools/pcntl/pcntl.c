// SPDX-License-Identifier: GPL-2.0
/*
 * pcntl: the pcntl(2) system call from the shell.
 *
 *	pcntl where [PID]		the node PID (default: this shell's parent) runs on
 *	pcntl migrate PID NODE		move process PID (and its group) to node NODE
 *	pcntl pull PID			move process PID (and its group) to this node
 *	pcntl nodes [-v]		the nodes that are up; -v: a table of their state
 *	pcntl forbid PID		PID may never be migrated
 *	pcntl allow PID			PID may be migrated (by others under "opt-in")
 *	pcntl default PID		forget forbid/allow: the node's policy decides
 *	pcntl join PID GROUP [--fork]	put PID in migration group GROUP
 *	pcntl leave PID			take PID out of its group
 *	pcntl stat PID			PID's migration statistics, one "name value" a line
 *	pcntl ps [-a]			the distributed processes of the cluster (-a: all)
 *	pcntl balance [-i SEC] [-r SEC] [-n ROUNDS] [-v]
 *					move busy processes from loaded nodes to idle ones
 *
 * PID is a pid on this node or NODE:PID, the process whose pid at its
 * origin NODE is PID, wherever it runs (a cluster-wide pid). Exits 0 on
 * success; on failure prints the errno's meaning and exits 1 (2 for bad
 * usage). See Documentation/pcntl.rst.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libpcntl.h"

#define NR_NODES_FILE	"/sys/kernel/cohort/nr_nodes"
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

static const char usage_text[] =
	"usage: pcntl where [PID]\n"
	"       pcntl migrate PID NODE\n"
	"       pcntl pull PID\n"
	"       pcntl nodes [-v]\n"
	"       pcntl forbid PID\n"
	"       pcntl allow PID\n"
	"       pcntl default PID\n"
	"       pcntl join PID GROUP [--fork]\n"
	"       pcntl leave PID\n"
	"       pcntl stat PID\n"
	"       pcntl ps [-a]\n"
	"       pcntl balance [-i SEC] [-r MIN_RESIDENCE_SEC] [-n ROUNDS] [-v]\n"
	"PID: a pid on this node, or NODE:PID (the pid at its origin node)\n";

static int usage(void)
{
	fputs(usage_text, stderr);
	return 2;
}

/* Bad usage of one subcommand: say what is wrong, then the usage. */
static int bad_usage(const char *what, const char *fmt, const char *arg)
{
	fprintf(stderr, "pcntl %s: ", what);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	return usage();
}

/* What an errno means for pcntl(2), beyond strerror(). */
static const char *hint(int err)
{
	switch (err) {
	case ENOSYS:
		return " (is popcorn.ko loaded?)";
	case EACCES:
		return " (the process, or a member of its group, forbids migration: `pcntl allow PID` lifts it; or its node's migration_policy is opt-in and it never said allow)";
	case ECONNREFUSED:
		return " (the destination refuses processes now: see `pcntl nodes -v`, and its /sys/kernel/cohort/accept, max_load, min_free_kb and accept_uids)";
	case EPERM:
		return " (init of a pid namespace, a kernel thread, or a process you may not signal)";
	case EBUSY:
		return " (the process is traced, in an exec or a core dump, or already migrating)";
	default:
		return "";
	}
}

static int fail(const char *what)
{
	int err = errno;

	fprintf(stderr, "pcntl %s: %s%s\n", what, strerror(err), hint(err));
	return 1;
}

/* A pid as the user writes it: NODE:PID for a cluster-wide pid. */
static void pid_str(char *buf, size_t size, int pid)
{
	if (PCNTL_IS_GPID(pid))
		snprintf(buf, size, "%u:%d", PCNTL_GPID_NODE(pid),
			 PCNTL_GPID_PID(pid));
	else
		snprintf(buf, size, "%d", pid);
}

static int parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

/* "N" (1 to INT_MAX) or "NODE:PID" (a cluster-wide pid). */
static int parse_pid(const char *s, pid_t *pid)
{
	const char *colon = strchr(s, ':');
	unsigned long node, v;
	char buf[32];

	if (!colon) {
		if (parse_ulong(s, INT_MAX, &v) || v == 0)
			return -1;
		*pid = v;
		return 0;
	}
	if ((size_t)(colon - s) >= sizeof(buf))
		return -1;
	memcpy(buf, s, colon - s);
	buf[colon - s] = '\0';
	if (parse_ulong(buf, COHORT_MAX_NODES - 1, &node) ||
	    parse_ulong(colon + 1, PCNTL_PID_MAX - 1, &v) || v == 0)
		return -1;
	*pid = PCNTL_GPID(node, v);
	return 0;
}

static int parse_node(const char *s, unsigned int *node)
{
	unsigned long v;

	if (parse_ulong(s, COHORT_MAX_NODES - 1, &v))
		return -1;
	*node = v;
	return 0;
}

/* ---- where, migrate, pull, nodes ---- */

static int cmd_where(int argc, char **argv)
{
	pid_t pid = getppid();
	long node;

	if (argc > 3)
		return usage();
	if (argc == 3 && parse_pid(argv[2], &pid)) {
		fprintf(stderr, "pcntl where: '%s' is not a pid\n", argv[2]);
		return 2;
	}
	node = pcntl_where(pid);
	if (node < 0)
		return fail("where");
	printf("%ld\n", node);
	return 0;
}

/* A failed move: errno's meaning, and the group member that refused if any. */
static int fail_move(const char *what, int refused)
{
	char who[32], text[96];

	if (!refused)
		return fail(what);
	pid_str(who, sizeof(who), refused);
	snprintf(text, sizeof(text), "%s: member %s of the group refused", what, who);
	return fail(text);
}

static int cmd_migrate(int argc, char **argv)
{
	unsigned int node;
	int refused = 0;
	pid_t pid;

	if (argc != 4)
		return usage();
	if (parse_pid(argv[2], &pid)) {
		fprintf(stderr, "pcntl migrate: '%s' is not a pid\n", argv[2]);
		return 2;
	}
	if (parse_node(argv[3], &node)) {
		fprintf(stderr, "pcntl migrate: '%s' is not a node id\n", argv[3]);
		return 2;
	}
	if (!pcntl_migrate_group(pid, node, &refused))
		return 0;
	return fail_move("migrate", refused);
}

static int cmd_pull(int argc, char **argv)
{
	int refused = 0;
	pid_t pid;

	if (argc != 3)
		return usage();
	if (parse_pid(argv[2], &pid)) {
		fprintf(stderr, "pcntl pull: '%s' is not a pid\n", argv[2]);
		return 2;
	}
	if (!pcntl_pull_group(pid, &refused))
		return 0;
	return fail_move("pull", refused);
}

/* How many nodes the cluster has (up or not), from sysfs or @online. */
static unsigned int cluster_size(uint64_t online)
{
	unsigned int n = 0;
	char buf[32];
	FILE *f;

	f = fopen(NR_NODES_FILE, "r");
	if (f) {
		if (fgets(buf, sizeof(buf), f))
			n = strtoul(buf, NULL, 10);
		fclose(f);
	}
	if (n > COHORT_MAX_NODES)
		n = COHORT_MAX_NODES;
	while (n < COHORT_MAX_NODES && (online >> n))
		n++;
	return n;
}

/* "accepts", or "refuses" and why: "refuses:admin,load,memory". */
static void admission_str(char *buf, size_t size, unsigned int flags)
{
	size_t len;

	if (flags & PCNTL_NODE_ACCEPTS) {
		snprintf(buf, size, "accepts");
		return;
	}
	snprintf(buf, size, "refuses");
	if (!(flags & (PCNTL_NODE_REFUSE_ADMIN | PCNTL_NODE_REFUSE_LOAD |
		       PCNTL_NODE_REFUSE_MEM)))
		return;
	len = strlen(buf);
	snprintf(buf + len, size - len, ":%s%s%s",
		 flags & PCNTL_NODE_REFUSE_ADMIN ? "admin," : "",
		 flags & PCNTL_NODE_REFUSE_LOAD ? "load," : "",
		 flags & PCNTL_NODE_REFUSE_MEM ? "memory," : "");
	len = strlen(buf);
	buf[len - 1] = '\0';	/* the last comma */
}

static void nodes_verbose(uint64_t online)
{
	unsigned int n, size = cluster_size(online);
	struct pcntl_node_info info;
	char adm[40], mem[40];

	printf("%-4s %-5s %-24s %-12s %4s %4s %6s %15s %6s %5s\n",
	       "NODE", "STATE", "ADMISSION", "POLICY", "CPUS", "RUN", "LOAD1",
	       "FREE/TOTAL_MiB", "PROCS", "DIST");
	for (n = 0; n < size; n++) {
		if (!(online & (UINT64_C(1) << n))) {
			printf("%-4u %-5s\n", n, "down");
			continue;
		}
		if (pcntl_node_info(n, &info) < 0) {
			printf("%-4u %-5s %s\n", n, errno == EHOSTDOWN ? "down" : "up",
			       strerror(errno));
			continue;
		}
		admission_str(adm, sizeof(adm), info.flags);
		snprintf(mem, sizeof(mem), "%llu/%llu",
			 (unsigned long long)(info.free_kb / 1024),
			 (unsigned long long)(info.total_kb / 1024));
		printf("%-4u %-5s %-24s %-12s %4u %4u %6.2f %15s %6u %5u\n", n, "up", adm,
		       info.flags & PCNTL_NODE_UID_LIST ?
		       (info.flags & PCNTL_NODE_OPT_IN ? "opt-in,uids" : "any,uids") :
		       (info.flags & PCNTL_NODE_OPT_IN ? "opt-in" : "any"),
		       info.nr_cpus, info.nr_running, info.load1_milli / 1000.0, mem,
		       info.nr_procs, info.nr_distributed);
	}
}

static int cmd_nodes(int argc, char **argv)
{
	uint64_t online = 0;
	unsigned int node;
	bool verbose = false;
	long count;

	if (argc == 3 && !strcmp(argv[2], "-v"))
		verbose = true;
	else if (argc != 2)
		return usage();
	count = pcntl_nodes(&online);
	if (count < 0)
		return fail("nodes");
	if (verbose) {
		nodes_verbose(online);
		return 0;
	}
	for (node = 0; node < COHORT_MAX_NODES; node++)
		if (online & (UINT64_C(1) << node))
			printf("%u\n", node);
	return 0;
}

/* ---- forbid, allow, join, leave ---- */

/* pcntl forbid|allow|default PID */
static int cmd_forbid_allow(int argc, char **argv)
{
	const char *what = argv[1];
	pid_t pid;
	int ret;

	if (argc != 3)
		return usage();
	if (parse_pid(argv[2], &pid))
		return bad_usage(what, "'%s' is not a pid", argv[2]);
	if (!strcmp(what, "forbid"))
		ret = pcntl_forbid(pid);
	else if (!strcmp(what, "allow"))
		ret = pcntl_allow(pid);
	else
		ret = pcntl_default(pid);
	return ret ? fail(what) : 0;
}

static int cmd_join(int argc, char **argv)
{
	unsigned int flags = 0;
	unsigned long group;
	pid_t pid;

	if (argc == 5 && !strcmp(argv[4], "--fork"))
		flags = PCNTL_GROUP_FORK;
	else if (argc != 4)
		return usage();
	if (parse_pid(argv[2], &pid))
		return bad_usage("join", "'%s' is not a pid", argv[2]);
	if (parse_ulong(argv[3], INT_MAX, &group) || group == 0)
		return bad_usage("join", "'%s' is not a group (1 to 2147483647)", argv[3]);
	if (pcntl_group_join(pid, group, flags))
		return fail("join");
	return 0;
}

static int cmd_leave(int argc, char **argv)
{
	pid_t pid;

	if (argc != 3)
		return usage();
	if (parse_pid(argv[2], &pid))
		return bad_usage("leave", "'%s' is not a pid", argv[2]);
	if (pcntl_group_leave(pid)) {
		if (errno == EINVAL) {
			fprintf(stderr, "pcntl leave: %s is in no group\n", argv[2]);
			return 1;
		}
		return fail("leave");
	}
	return 0;
}

/* ---- stat ---- */

static void flags_str(char *buf, size_t size, unsigned int flags)
{
	static const struct { unsigned int bit; const char *name; } names[] = {
		{ PCNTL_F_FORBIDDEN, "forbidden" },
		{ PCNTL_F_SELF_ONLY, "self-only" },
		{ PCNTL_F_ALLOWED, "allowed" },
		{ PCNTL_F_GROUP_FORK, "group-fork" },
		{ PCNTL_F_AWAY, "away" },
		{ PCNTL_F_MIGRATED, "migrated" },
	};
	size_t i, len = 0;

	buf[0] = '\0';
	for (i = 0; i < ARRAY_SIZE(names); i++)
		if ((flags & names[i].bit) && len < size)
			len += snprintf(buf + len, size - len, "%s%s", len ? "," : "",
					names[i].name);
	if (!len)
		snprintf(buf, size, "-");
}

/* Nanoseconds as seconds with 3 decimals. */
static void secs_str(char *buf, size_t size, uint64_t ns)
{
	snprintf(buf, size, "%" PRIu64 ".%03" PRIu64, ns / 1000000000,
		 ns / 1000000 % 1000);
}

/* Bit n for node n, as "0,2,5" ("-" for none). */
static void nodes_str(char *buf, size_t size, uint64_t bits)
{
	size_t len = 0;
	unsigned int n;

	buf[0] = '\0';
	for (n = 0; n < 64 && len < size; n++)
		if (bits & (UINT64_C(1) << n))
			len += snprintf(buf + len, size - len, "%s%u", len ? "," : "", n);
	if (!len)
		snprintf(buf, size, "-");
}

static int cmd_stat(int argc, char **argv)
{
	struct pcntl_stat st;
	char buf[256];
	pid_t pid;

	if (argc != 3)
		return usage();
	if (parse_pid(argv[2], &pid))
		return bad_usage("stat", "'%s' is not a pid", argv[2]);
	if (pcntl_stat(pid, &st) < 0)
		return fail("stat");
	pid_str(buf, sizeof(buf), st.gpid);
	printf("gpid %s\n", buf);
	printf("origin %u\n", st.origin);
	printf("node %u\n", st.node);
	flags_str(buf, sizeof(buf), st.flags);
	printf("flags %s\n", buf);
	printf("group %u\n", st.group);
	secs_str(buf, sizeof(buf), st.age_ns);
	printf("age %s\n", buf);
	secs_str(buf, sizeof(buf), st.resident_ns);
	printf("resident %s\n", buf);
	printf("migrations %llu\n", (unsigned long long)st.migrations);
	nodes_str(buf, sizeof(buf), st.visited);
	printf("visited %s\n", buf);
	printf("pages_fetched %llu\n", (unsigned long long)st.pages_fetched);
	printf("pages_served %llu\n", (unsigned long long)st.pages_served);
	printf("calls_forwarded %llu\n", (unsigned long long)st.calls_forwarded);
	printf("bytes_moved %llu\n", (unsigned long long)st.bytes_moved);
	return 0;
}

/* ---- ps ---- */

/* Every process of every up node; *@failed tells whether a node did not answer. */
static int ps_all(struct pcntl_proc **out, size_t *n, bool *failed)
{
	struct pcntl_proc *all = NULL, *one, *bigger;
	size_t total = 0, k;
	uint64_t online = 0;
	unsigned int node;

	*failed = false;
	if (pcntl_nodes(&online) < 0)
		return -1;
	for (node = 0; node < COHORT_MAX_NODES; node++) {
		if (!(online & (UINT64_C(1) << node)))
			continue;
		if (pcntl_ps(node, &one, &k)) {
			fprintf(stderr, "pcntl ps: node %u: %s\n", node, strerror(errno));
			*failed = true;
			continue;
		}
		bigger = realloc(all, (total + k + 1) * sizeof(*all));
		if (!bigger) {
			free(one);
			free(all);
			errno = ENOMEM;
			return -1;
		}
		all = bigger;
		memcpy(all + total, one, k * sizeof(*one));
		total += k;
		free(one);
	}
	*out = all;
	*n = total;
	return 0;
}

static int by_node_pid(const void *a, const void *b)
{
	const struct pcntl_proc *p = a, *q = b;

	if (p->node != q->node)
		return p->node < q->node ? -1 : 1;
	return (p->pid > q->pid) - (p->pid < q->pid);
}

/*
 * FLAGS of `pcntl ps`: F forbidden (S: for itself only), A allowed, G
 * group-fork, M migrated, W away.
 */
static void flag_letters(char *buf, unsigned int flags)
{
	buf[0] = !(flags & PCNTL_F_FORBIDDEN) ? '-' :
		 flags & PCNTL_F_SELF_ONLY ? 'S' : 'F';
	buf[1] = flags & PCNTL_F_ALLOWED ? 'A' : '-';
	buf[2] = flags & PCNTL_F_GROUP_FORK ? 'G' : '-';
	buf[3] = flags & PCNTL_F_MIGRATED ? 'M' : '-';
	buf[4] = flags & PCNTL_F_AWAY ? 'W' : '-';
	buf[5] = '\0';
}

static bool distributed(const struct pcntl_proc *p)
{
	return p->migrations || p->group ||
	       (p->flags & (PCNTL_F_MIGRATED | PCNTL_F_AWAY));
}

static int cmd_ps(int argc, char **argv)
{
	struct pcntl_proc *procs;
	bool all = false, failed;
	char gpid[32], flags[8], comm[sizeof(procs->comm) + 1];
	size_t n, i;

	if (argc == 3 && !strcmp(argv[2], "-a"))
		all = true;
	else if (argc != 2)
		return usage();
	if (ps_all(&procs, &n, &failed))
		return fail("ps");
	qsort(procs, n, sizeof(*procs), by_node_pid);
	printf("%-12s %7s %4s %6s %5s %10s %3s %4s %9s %5s %s\n", "GPID", "PID", "NODE",
	       "ORIGIN", "UID", "GROUP", "THR", "MIGR", "CPU(s)", "FLAGS", "COMMAND");
	for (i = 0; i < n; i++) {
		const struct pcntl_proc *p = &procs[i];

		if (!all && !distributed(p))
			continue;
		pid_str(gpid, sizeof(gpid), p->gpid);
		flag_letters(flags, p->flags);
		memcpy(comm, p->comm, sizeof(p->comm));
		comm[sizeof(p->comm)] = '\0';
		printf("%-12s %7d %4u %6u %5u %10u %3u %4llu %9.2f %5s %s\n", gpid, p->pid,
		       p->node, p->origin, p->uid, p->group, p->threads,
		       (unsigned long long)p->migrations, p->cpu_ns / 1e9, flags, comm);
	}
	free(procs);
	return failed ? 1 : 0;
}

/* ---- balance ---- */

/* A process as the balancer sees it in one round. */
struct bproc {
	int gpid;
	unsigned int node;	/* where it runs (after this round's moves) */
	unsigned int group;
	unsigned int flags;
	unsigned int threads;
	uint64_t cpu_ns;	/* on the node it was listed on */
	uint64_t resident_ns;
	uint64_t seen_ns;	/* when its node listed it (CLOCK_MONOTONIC) */
	unsigned int seen_node;	/* the node that listed it */
	long failed_round;	/* last round a move of it failed; -1: never */
	bool busy;
	bool measured;		/* busy comes from a measurement */
	bool done;		/* moved, or tried, this round */
	char comm[17];
};

struct balancer {
	double interval;	/* seconds between rounds */
	uint64_t min_res_ns;	/* minimum residence before a move */
	long rounds;		/* 0: forever */
	bool verbose;
	long round;
	int self;		/* our own cluster-wide pid */
	struct bproc *prev;	/* the previous round, sorted by gpid */
	size_t nprev;
	struct pcntl_node_info info[COHORT_MAX_NODES];
	bool usable[COHORT_MAX_NODES];	/* up, and answered this round */
	bool accepts[COHORT_MAX_NODES];
	int busy[COHORT_MAX_NODES];
};

/* A failed move is not tried again for this many rounds. */
#define BALANCE_RETRY_ROUNDS	5

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int by_gpid(const void *a, const void *b)
{
	const struct bproc *p = a, *q = b;

	return (p->gpid > q->gpid) - (p->gpid < q->gpid);
}

static struct bproc *find_prev(struct balancer *b, int gpid)
{
	struct bproc key = { .gpid = gpid };

	if (!b->nprev)
		return NULL;
	return bsearch(&key, b->prev, b->nprev, sizeof(key), by_gpid);
}

/*
 * The share of a CPU a CPU-bound process gets on node @n: all of one, or
 * on a node with more runnable tasks than CPUs, nr_cpus / runnable.
 */
static double fair_share(const struct pcntl_node_info *info)
{
	double cpus = info->nr_cpus ? info->nr_cpus : 1;
	double runnable = info->nr_running;

	if (info->load1_milli / 1000.0 > runnable)
		runnable = info->load1_milli / 1000.0;
	return runnable > cpus ? cpus / runnable : 1.0;
}

/*
 * Busy: it used more than half of what it could have had since the last
 * round: of the time between the two lists, or on an overloaded node of
 * its fair share of it. A process its node listed for the first time is
 * not busy yet; one that moved since keeps its previous verdict (its CPU
 * time counts on the node it runs on).
 */
static void judge(struct balancer *b, struct bproc *p)
{
	struct bproc *old = find_prev(b, p->gpid);
	double used, could;

	p->failed_round = old ? old->failed_round : -1;
	if (!old)
		return;
	if (old->seen_node != p->seen_node || p->cpu_ns < old->cpu_ns ||
	    p->seen_ns <= old->seen_ns) {
		p->busy = old->busy;
		return;
	}
	used = p->cpu_ns - old->cpu_ns;
	could = (p->seen_ns - old->seen_ns) * fair_share(&b->info[p->seen_node]);
	p->busy = used > could / 2;
	p->measured = true;
}

/* Lists every up node's processes; returns them (sorted by gpid) or NULL. */
static struct bproc *balance_list(struct balancer *b, size_t *count)
{
	struct bproc *cur = NULL, *bigger;
	struct pcntl_proc *procs;
	uint64_t online = 0, t;
	unsigned int n;
	size_t k, i, total = 0;

	if (pcntl_nodes(&online) < 0) {
		fprintf(stderr, "pcntl balance: PCNTL_NODES: %s\n", strerror(errno));
		return NULL;
	}
	for (n = 0; n < COHORT_MAX_NODES; n++) {
		b->usable[n] = false;
		b->accepts[n] = false;
		b->busy[n] = 0;
		if (!(online & (UINT64_C(1) << n)))
			continue;
		if (pcntl_node_info(n, &b->info[n]) < 0 || pcntl_ps(n, &procs, &k)) {
			if (b->verbose)
				printf("balance: node %u does not answer: %s\n", n,
				       strerror(errno));
			continue;
		}
		t = mono_ns();
		b->usable[n] = true;
		b->accepts[n] = b->info[n].flags & PCNTL_NODE_ACCEPTS;
		bigger = realloc(cur, (total + k + 1) * sizeof(*cur));
		if (!bigger) {
			free(procs);
			free(cur);
			fprintf(stderr, "pcntl balance: out of memory\n");
			return NULL;
		}
		cur = bigger;
		for (i = 0; i < k; i++) {
			struct bproc *p = &cur[total++];

			memset(p, 0, sizeof(*p));
			p->gpid = procs[i].gpid;
			p->node = n;
			p->seen_node = n;
			p->group = procs[i].group;
			p->flags = procs[i].flags;
			p->threads = procs[i].threads;
			p->cpu_ns = procs[i].cpu_ns;
			p->resident_ns = procs[i].resident_ns;
			p->seen_ns = t;
			memcpy(p->comm, procs[i].comm, sizeof(procs[i].comm));
		}
		free(procs);
	}
	if (!cur)
		cur = malloc(sizeof(*cur));
	if (cur)
		qsort(cur, total, sizeof(*cur), by_gpid);
	*count = total;
	return cur;
}

/* May the balancer move @p (ask for it)? */
static bool movable(struct balancer *b, const struct bproc *p)
{
	if (p->done || p->gpid == b->self)
		return false;
	if (p->failed_round >= 0 && b->round - p->failed_round < BALANCE_RETRY_ROUNDS)
		return false;
	if (p->flags & PCNTL_F_FORBIDDEN)
		return false;
	if ((b->info[p->node].flags & PCNTL_NODE_OPT_IN) && !(p->flags & PCNTL_F_ALLOWED))
		return false;
	return p->resident_ns >= b->min_res_ns;
}

/*
 * A unit the balancer moves: one process, or every member of its group.
 * @ks: its busy members on @src; @kb: its busy members not on @dst.
 * Returns false when it cannot move (a member may not, or none is busy on
 * @src).
 */
static bool unit_counts(struct balancer *b, struct bproc *cur, size_t n,
			const struct bproc *p, unsigned int src, unsigned int dst,
			int *ks, int *kb, uint64_t *res)
{
	size_t i;

	*ks = 0;
	*kb = 0;
	*res = UINT64_MAX;
	for (i = 0; i < n; i++) {
		const struct bproc *q = &cur[i];

		if (q != p && (!p->group || q->group != p->group))
			continue;
		if (!movable(b, q))
			return false;
		if (q->resident_ns < *res)
			*res = q->resident_ns;
		if (!q->busy)
			continue;
		if (q->node == src)
			(*ks)++;
		if (q->node != dst)
			(*kb)++;
	}
	return *ks > 0;
}

/* Mark @p's unit done; if it moved to @dst, update the busy counts. */
static void unit_done(struct balancer *b, struct bproc *cur, size_t n,
		      const struct bproc *p, int dst)
{
	int gpid = p->gpid;
	unsigned int group = p->group;
	size_t i;

	for (i = 0; i < n; i++) {
		struct bproc *q = &cur[i];

		if (q->gpid != gpid && (!group || q->group != group))
			continue;
		q->done = true;
		if (dst < 0 || q->node == (unsigned int)dst)
			continue;
		if (q->busy) {
			b->busy[q->node]--;
			b->busy[dst]++;
		}
		q->node = dst;
	}
}

/* Whether to try moving @p before @best: fewest busy members, then longest resident. */
static bool better(int kb, uint64_t res, int best_kb, uint64_t best_res)
{
	return kb < best_kb || (kb == best_kb && res > best_res);
}

/* Moves one unit from @src to @dst; false when none fits. */
static bool balance_one(struct balancer *b, struct bproc *cur, size_t n,
			unsigned int src, unsigned int dst)
{
	struct bproc *best = NULL;
	int ks, kb, best_kb = INT_MAX, refused = 0;
	uint64_t res, best_res = 0;
	char who[32], other[32];
	size_t i;

	for (i = 0; i < n; i++) {
		struct bproc *p = &cur[i];

		if (p->node != src || !p->busy || p->done)
			continue;
		if (!unit_counts(b, cur, n, p, src, dst, &ks, &kb, &res))
			continue;
		/* The destination must not end up busier than the source. */
		if (b->busy[dst] + kb > b->busy[src] - ks)
			continue;
		if (!best || better(kb, res, best_kb, best_res)) {
			best = p;
			best_kb = kb;
			best_res = res;
		}
	}
	if (!best)
		return false;
	pid_str(who, sizeof(who), best->gpid);
	if (pcntl_migrate_group(best->gpid, dst, &refused)) {
		int err = errno;

		other[0] = '\0';
		if (refused) {
			pid_str(other + 1, sizeof(other) - 1, refused);
			other[0] = ' ';
		}
		printf("balance: cannot move %s (%s) node %u -> %u: %s%s%s\n", who, best->comm,
		       src, dst, strerror(err), refused ? ", refused by" : "", other);
		fflush(stdout);
		for (i = 0; i < n; i++)
			if (cur[i].gpid == best->gpid ||
			    (best->group && cur[i].group == best->group))
				cur[i].failed_round = b->round;
		unit_done(b, cur, n, best, -1);
		if (err == ECONNREFUSED)
			b->accepts[dst] = false;
		return true;
	}
	if (best->group)
		printf("balance: moved %s (%s) node %u -> %u with group %u (%d busy)\n", who,
		       best->comm, src, dst, best->group, best_kb);
	else
		printf("balance: moved %s (%s) node %u -> %u\n", who, best->comm, src, dst);
	fflush(stdout);
	unit_done(b, cur, n, best, dst);
	return true;
}

/* One round: list, judge, move until balanced. */
static void balance_round(struct balancer *b)
{
	bool exhausted[COHORT_MAX_NODES] = { false };
	struct bproc *cur;
	unsigned int m;
	size_t n, i;
	int src, dst;

	cur = balance_list(b, &n);
	if (!cur)
		return;
	for (i = 0; i < n; i++) {
		judge(b, &cur[i]);
		if (cur[i].busy)
			b->busy[cur[i].node]++;
	}
	if (b->verbose) {
		printf("balance: round %ld: busy", b->round);
		for (m = 0; m < COHORT_MAX_NODES; m++)
			if (b->usable[m])
				printf(" node %u=%d%s", m, b->busy[m],
				       b->accepts[m] ? "" : " (refuses)");
		printf("\n");
		fflush(stdout);
	}
	/* This round's measures are the next one's reference, as listed. */
	free(b->prev);
	b->prev = malloc((n + 1) * sizeof(*cur));
	b->nprev = 0;
	if (b->prev) {
		memcpy(b->prev, cur, n * sizeof(*cur));
		b->nprev = n;
	}
	for (;;) {
		src = -1;
		dst = -1;
		for (m = 0; m < COHORT_MAX_NODES; m++) {
			if (!b->usable[m])
				continue;
			if (!exhausted[m] && (src < 0 || b->busy[m] > b->busy[src]))
				src = m;
			if (b->accepts[m] && (dst < 0 || b->busy[m] < b->busy[dst]))
				dst = m;
		}
		if (src < 0 || dst < 0 || src == dst || b->busy[src] - b->busy[dst] < 2)
			break;
		if (!balance_one(b, cur, n, src, dst))
			exhausted[src] = true;
	}
	/* A failed move is remembered for the next rounds. */
	for (i = 0; i < n && b->prev; i++) {
		struct bproc *old = find_prev(b, cur[i].gpid);

		if (old)
			old->failed_round = cur[i].failed_round;
	}
	free(cur);
}

static int parse_secs(const char *s, double min, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < min || v > 86400)
		return -1;
	*out = v;
	return 0;
}

static int cmd_balance(int argc, char **argv)
{
	struct balancer b = { .interval = 3, .min_res_ns = 5000000000ULL, .round = 0 };
	double res = 5;
	unsigned long rounds = 0;
	uint64_t start, left;
	char opt[3] = "-?";
	struct timespec ts;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt(argc - 1, argv + 1, "+:i:r:n:v")) != -1) {
		switch (c) {
		case 'i':
			if (parse_secs(optarg, 0.1, &b.interval))
				return bad_usage("balance", "-i '%s': not a number of seconds (0.1 or more)",
						 optarg);
			break;
		case 'r':
			if (parse_secs(optarg, 0, &res))
				return bad_usage("balance", "-r '%s': not a number of seconds",
						 optarg);
			break;
		case 'n':
			if (parse_ulong(optarg, LONG_MAX, &rounds))
				return bad_usage("balance", "-n '%s': not a number of rounds",
						 optarg);
			break;
		case 'v':
			b.verbose = true;
			break;
		case ':':
			opt[1] = optopt;
			return bad_usage("balance", "%s needs a value", opt);
		default:
			opt[1] = optopt;
			return bad_usage("balance", "unknown option %s", opt);
		}
	}
	if (optind != argc - 1)
		return usage();
	b.min_res_ns = res * 1e9;
	b.rounds = rounds;
	if (pcntl_where(0) < 0)
		return fail("balance");
	b.self = PCNTL_GPID(pcntl_where(0), getpid());
	for (b.round = 1; !b.rounds || b.round <= b.rounds; b.round++) {
		start = mono_ns();
		balance_round(&b);
		if (b.rounds && b.round == b.rounds)
			break;
		left = b.interval * 1e9;
		if (mono_ns() - start < left) {
			left -= mono_ns() - start;
			ts.tv_sec = left / 1000000000;
			ts.tv_nsec = left % 1000000000;
			while (nanosleep(&ts, &ts) && errno == EINTR)
				;
		}
	}
	free(b.prev);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "where"))
		return cmd_where(argc, argv);
	if (!strcmp(argv[1], "migrate"))
		return cmd_migrate(argc, argv);
	if (!strcmp(argv[1], "pull"))
		return cmd_pull(argc, argv);
	if (!strcmp(argv[1], "nodes"))
		return cmd_nodes(argc, argv);
	if (!strcmp(argv[1], "forbid") || !strcmp(argv[1], "allow") ||
	    !strcmp(argv[1], "default"))
		return cmd_forbid_allow(argc, argv);
	if (!strcmp(argv[1], "join"))
		return cmd_join(argc, argv);
	if (!strcmp(argv[1], "leave"))
		return cmd_leave(argc, argv);
	if (!strcmp(argv[1], "stat"))
		return cmd_stat(argc, argv);
	if (!strcmp(argv[1], "ps"))
		return cmd_ps(argc, argv);
	if (!strcmp(argv[1], "balance"))
		return cmd_balance(argc, argv);
	return usage();
}
