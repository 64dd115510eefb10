// SPDX-License-Identifier: GPL-2.0
/*
 * migbench: migration figures, all from one run on the origin node.
 *
 *	migbench NODE [REPS [E2E_REPS [BIG_MIB]]]
 *
 * With kmsg and popcorn loaded on this node and on NODE, measures:
 *  - the yardsticks, before and after the rest: kmsg's round trip to NODE
 *    by its link-thread ping (debugfs `ping`) and through the hub's message
 *    API (debugfs `hreq`, the path page requests take), and kmsg's
 *    throughput to NODE (debugfs `stream`, 32 MiB);
 *  - for processes with 1 MiB, 64 MiB and (when BIG_MIB is given, 1024
 *    for 1 GiB: the nodes need the room) BIG_MIB resident: the first
 *    migration here -> NODE (a task is created there; 5 new processes),
 *    then REPS times here -> NODE (its shadow there is reused) and
 *    NODE -> here (back to the shadow here); each timed on this node's
 *    clock from the pcntl(PCNTL_MIGRATE) call of a controlling process to
 *    its return;
 *  - the remote page fault: a process migrated to NODE touches pages that
 *    are still here, timed on NODE's clock by the process itself;
 *  - the container layer's faults, FAULT_PAGES pages each, and the page
 *    messages each costs (gobelins' sent_* counters of both nodes, read
 *    where the process runs; the few faults of its own migrations
 *    between the phases are in the count): a read fault on NODE of a page
 *    owned here, a write fault on NODE of a page owned here and copied
 *    nowhere else, and a write fault here of a page NODE holds a read
 *    copy of (one invalidation);
 *  - a page ping-ponged between two writers, this process here and a child
 *    on NODE, through a MAP_SHARED | MAP_ANONYMOUS region (gobelins'
 *    shared memory): PINGPONG_ROUNDS rounds, each writer waiting for the
 *    other's write; per handoff (one write on one node seen by the other),
 *    ns on this node's clock and the page messages both nodes sent;
 *  - end to end, for 1 MiB and 64 MiB working sets, E2E_REPS new processes
 *    each: the migration to NODE (as above), then the moved process reads
 *    its whole working set there, so every page moves (timed on NODE's
 *    clock by the process); the total is compared with what moving the
 *    bytes in bulk would take: bytes / kmsg throughput + one hub round
 *    trip.
 * Prints one key=value per line (medians, and every sample as
 * KEY_samples=a,b,...), then a table of ratios.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libpcntl.h"

#define MIB		(1UL << 20)
#define PAGE		4096UL
#define FAULT_PAGES	512
#define PINGPONG_ROUNDS	200
/* Longest a ping-pong may take. */
#define PINGPONG_TIMEOUT_NS	120e9
#define FRESH		5
#define KMSG		"/sys/kernel/debug/kmsg/"
#define GOBELINS_STATS	"/sys/kernel/debug/gobelins/stats"
#define STREAM_BYTES	(32UL << 20)
/* Longest a moved process may take to read 64 MiB page by page. */
#define E2E_TIMEOUT_MS	600000

static unsigned int here, there;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "migbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void fail(const char *msg)
{
	fprintf(stderr, "migbench: %s\n", msg);
	exit(1);
}

/*
 * Write @cmd to kmsg's debugfs @file, then return the number after @key
 * in what the file reads back.
 */
static double kmsg_command(const char *file, const char *cmd, const char *key)
{
	char path[128], buf[512], *p;
	ssize_t n, len = strlen(cmd);
	int fd;

	snprintf(path, sizeof(path), KMSG "%s", file);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		die(path);
	if (write(fd, cmd, len) != len)
		die(path);
	close(fd);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		die(path);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		die(path);
	buf[n] = '\0';
	p = strstr(buf, key);
	if (!p) {
		fprintf(stderr, "migbench: no %s in %s: '%s'\n", key, path, buf);
		exit(1);
	}
	return strtod(p + strlen(key), NULL);
}

/* kmsg's average round trip to @node over @count pings or hreqs, in ns. */
static double kmsg_rtt(const char *file, unsigned int node, unsigned int count)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "%u %u\n", node, count);
	return kmsg_command(file, cmd, "avg_ns=");
}

/* kmsg's throughput to @node over a stream of @bytes, in bytes/s. */
static double kmsg_bps(unsigned int node, unsigned long bytes)
{
	char cmd[64];
	double ns;

	snprintf(cmd, sizeof(cmd), "%u %lu\n", node, bytes);
	ns = kmsg_command("stream", cmd, "total_ns=");
	if (ns <= 0)
		fail("kmsg stream took no time");
	return bytes * 1e9 / ns;
}

/*
 * A child holding @mib MiB, touched, sleeping until killed; returns once
 * it touched every page.
 */
static pid_t holder(unsigned long mib)
{
	int fds[2];
	unsigned long i;
	char *mem, c = 0;
	pid_t pid;

	if (pipe(fds))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid) {
		close(fds[1]);
		if (read(fds[0], &c, 1) != 1)
			fail("a holder died before touching its memory");
		close(fds[0]);
		return pid;
	}
	close(fds[0]);
	mem = mmap(NULL, mib * MIB, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		_exit(2);
	for (i = 0; i < mib * MIB; i += PAGE)
		mem[i] = (char)i;
	if (write(fds[1], &c, 1) != 1)
		_exit(2);
	close(fds[1]);
	for (;;)
		pause();
}

/* What runs now, for error messages. */
static const char *step = "start";

static double timed_migrate(pid_t pid, unsigned int node)
{
	double t0 = now_ns();

	if (pcntl_migrate(pid, node)) {
		fprintf(stderr, "migbench: %s: pcntl_migrate(%d, %u): %s\n",
			step, (int)pid, node, strerror(errno));
		exit(1);
	}
	return now_ns() - t0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of @n samples; @v is left as it was. */
static double median(const double *v, int n)
{
	double *s = malloc(n * sizeof(*s)), m;

	if (!s)
		die("malloc");
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	free(s);
	return m;
}

/* `KEY=median` and `KEY_samples=a,b,...`, in whole units. */
static double print_samples(const char *key, const double *v, int n)
{
	double m = median(v, n);
	int i;

	printf("%s=%.0f\n%s_samples=", key, m, key);
	for (i = 0; i < n; i++)
		printf("%s%.0f", i ? "," : "", v[i]);
	printf("\n");
	return m;
}

struct moves {
	double first[FRESH];
	double *out, *back;
};

static void measure_moves(struct moves *m, unsigned long mib, int reps)
{
	pid_t pid = 0;
	int i;

	m->out = calloc(reps, sizeof(double));
	m->back = calloc(reps, sizeof(double));
	if (!m->out || !m->back)
		die("calloc");
	step = "first migrations";
	/* A new process each time: the first migration creates its task. */
	for (i = 0; i < FRESH; i++) {
		if (pid) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		pid = holder(mib);
		m->first[i] = timed_migrate(pid, there);
		timed_migrate(pid, here);
	}
	step = "to the shadows and back";
	/* Then back and forth: the shadows are reused on both sides. */
	for (i = 0; i < reps; i++) {
		m->out[i] = timed_migrate(pid, there);
		m->back[i] = timed_migrate(pid, here);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Per-page time of remote faults, measured on the other node. */
static double fault_ns(void)
{
	int fds[2];
	double ns = -1;
	pid_t pid;

	if (pipe(fds))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		char *mem = mmap(NULL, FAULT_PAGES * PAGE,
				 PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		double t0, t;
		int i;

		if (mem == MAP_FAILED)
			_exit(2);
		for (i = 0; i < FAULT_PAGES; i++)
			mem[i * PAGE] = (char)i;
		if (pcntl_migrate(0, there))
			_exit(3);
		t0 = now_ns();
		for (i = 0; i < FAULT_PAGES; i++)
			mem[i * PAGE] += 1;
		t = (now_ns() - t0) / FAULT_PAGES;
		if (write(fds[1], &t, sizeof(t)) != sizeof(t))
			_exit(4);
		for (i = 0; i < FAULT_PAGES; i++)
			if (mem[i * PAGE] != (char)(i + 1))
				_exit(5);
		_exit(0);
	}
	close(fds[1]);
	if (read(fds[0], &ns, sizeof(ns)) != sizeof(ns))
		ns = -1;
	close(fds[0]);
	waitpid(pid, NULL, 0);
	return ns;
}

/* Page messages gobelins sent from the node this process runs on. */
static double sent_here(void)
{
	FILE *f = fopen(GOBELINS_STATS, "r");
	char name[64];
	double sum = 0;
	unsigned long long v;

	if (!f)
		return -1;
	while (fscanf(f, "%63s %llu", name, &v) == 2)
		if (!strncmp(name, "sent_", 5))
			sum += v;
	fclose(f);
	return sum;
}

/* The container faults of one run: per page, ns and page messages. */
struct cfaults {
	double read_ns, write_ns, inval_ns;
	double read_msgs, write_msgs, inval_msgs;
	int ok;
};

/* Touches FAULT_PAGES pages from @mem, reading or adding 1; ns per page. */
static double touch(volatile char *mem, int write)
{
	double t0 = now_ns();
	int i;

	for (i = 0; i < FAULT_PAGES; i++) {
		if (write)
			mem[i * PAGE] += 1;
		else
			(void)mem[i * PAGE];
	}
	return (now_ns() - t0) / FAULT_PAGES;
}

/* Page messages this node sent; exits the child if they cannot be read. */
static double sent_or_exit(void)
{
	double sent = sent_here();

	if (sent < 0)
		_exit(6);
	return sent;
}

static void move_or_exit(unsigned int node)
{
	if (pcntl_migrate(0, node))
		_exit(3);
}

/* NODE's page messages when the child last left NODE. */
static double left_there;

/*
 * In a child: moves to NODE, touches @mem there (timed into *@ns), comes
 * back; returns the page messages per page both nodes sent meanwhile.
 */
static double away(volatile char *mem, int write, double *ns)
{
	double h0 = sent_or_exit(), n0;

	move_or_exit(there);
	n0 = sent_or_exit();
	*ns = touch(mem, write);
	left_there = sent_or_exit();
	move_or_exit(here);
	return (left_there - n0 + sent_or_exit() - h0) / FAULT_PAGES;
}

/* Runs in a child: see the header; reports through @fd. */
static void __attribute__((noreturn)) cfaults_child(int fd)
{
	char *a = mmap(NULL, 2 * FAULT_PAGES * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *b;
	struct cfaults r = { 0 };
	double h0, h1, n;
	int i;

	if (a == MAP_FAILED)
		_exit(2);
	b = a + FAULT_PAGES * PAGE;
	for (i = 0; i < 2 * FAULT_PAGES; i++)
		a[i * PAGE] = (char)i;
	/* Read on NODE: a read copy there of each page owned here. */
	r.read_msgs = away(a, 0, &r.read_ns);
	/* Written on NODE: ownership moves, no read copy to invalidate. */
	r.write_msgs = away(b, 1, &r.write_ns);
	/*
	 * Written here again: NODE's read copies of a are invalidated; its
	 * acknowledgements are counted on a trip there after.
	 */
	h0 = sent_or_exit();
	r.inval_ns = touch(a, 1);
	h1 = sent_or_exit();
	move_or_exit(there);
	n = sent_or_exit();
	move_or_exit(here);
	r.inval_msgs = (h1 - h0 + n - left_there) / FAULT_PAGES;
	r.ok = 1;
	for (i = 0; i < FAULT_PAGES; i++)
		if (a[i * PAGE] != (char)(i + 1) ||
		    b[i * PAGE] != (char)(FAULT_PAGES + i + 1))
			r.ok = 0;
	if (write(fd, &r, sizeof(r)) != sizeof(r))
		_exit(4);
	_exit(0);
}

/* The container faults, measured by a child; exits on failure. */
static struct cfaults container_faults(void)
{
	struct cfaults r = { 0 };
	int fds[2], status;
	pid_t pid;

	step = "container faults";
	if (pipe(fds))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		close(fds[0]);
		cfaults_child(fds[1]);
	}
	close(fds[1]);
	if (read(fds[0], &r, sizeof(r)) != sizeof(r))
		r.ok = 0;
	close(fds[0]);
	waitpid(pid, &status, 0);
	if (!r.ok)
		fprintf(stderr, "migbench: container faults: child status %#x, %s\n",
			status, r.read_ns > 0 ? "pages read back wrong" : "no report");
	if (!r.ok)
		exit(1);
	return r;
}

/* The shared page of the ping-pong. */
struct pingpong_page {
	volatile uint32_t turn;		/* 2i + 1: here wrote round i; 2i + 2: NODE */
	volatile uint32_t ready;	/* the child is on NODE */
	volatile double child_sent;	/* page messages NODE sent meanwhile */
	volatile uint32_t reported;
};

/* Waits until *@word is @value, yielding; 0 on a time-out. */
static int await(volatile uint32_t *word, uint32_t value, double deadline)
{
	while (*word != value) {
		if (now_ns() > deadline)
			return 0;
		sched_yield();
	}
	return 1;
}

/*
 * A page ping-ponged between two writers: this process and a child moved
 * to NODE; ns and page messages (both nodes) per handoff. Exits on
 * failure.
 */
static void pingpong(double *ns, double *msgs)
{
	struct pingpong_page *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	double deadline = now_ns() + PINGPONG_TIMEOUT_NS, t0, h0, h1, n0;
	uint32_t i;
	int status;
	pid_t pid;

	step = "ping-pong";
	if (p == MAP_FAILED)
		die("mmap");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		move_or_exit(there);
		n0 = sent_or_exit();
		p->ready = 1;
		for (i = 0; i < PINGPONG_ROUNDS; i++) {
			if (!await(&p->turn, 2 * i + 1, deadline))
				_exit(5);
			p->turn = 2 * i + 2;
		}
		p->child_sent = sent_or_exit() - n0;
		p->reported = 1;
		_exit(0);
	}
	if (!await(&p->ready, 1, deadline))
		fail("ping-pong: the child did not reach NODE");
	h0 = sent_here();
	t0 = now_ns();
	for (i = 0; i < PINGPONG_ROUNDS; i++) {
		p->turn = 2 * i + 1;
		if (!await(&p->turn, 2 * i + 2, deadline))
			fail("ping-pong: NODE stopped answering");
	}
	*ns = (now_ns() - t0) / (2.0 * PINGPONG_ROUNDS);
	h1 = sent_here();
	if (!await(&p->reported, 1, deadline))
		fail("ping-pong: no count from NODE");
	*msgs = (h1 - h0 + p->child_sent) / (2.0 * PINGPONG_ROUNDS);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		fail("ping-pong: the child failed");
	munmap((void *)p, PAGE);
}

/* What a moved process reports after reading its working set. */
struct e2e_report {
	double read_ns;		/* on the destination's clock */
	int ok;			/* every word read back as written */
};

/*
 * The child of an end-to-end run: fills @mib MiB (every word), says so on
 * @ready, waits for SIGUSR1 (blocked, so none is lost: it arrives once the
 * parent migrated it), then reads every word, timing it, and reports on
 * @result. Never returns.
 */
static void __attribute__((noreturn))
e2e_child(unsigned long mib, int ready, int result)
{
	unsigned long words = mib * MIB / sizeof(uint64_t), i;
	struct timespec tick = { .tv_nsec = 200000000 };
	uint64_t *mem, sum = 0, check = 0;
	struct e2e_report r;
	sigset_t usr1;
	double t0;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	mem = mmap(NULL, mib * MIB, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		_exit(2);
	for (i = 0; i < words; i++) {
		mem[i] = i * 0x9e3779b97f4a7c15ull;
		sum += mem[i];
	}
	if (write(ready, "R", 1) != 1)
		_exit(3);
	/* A migration may end a wait early: wait again. */
	while (sigtimedwait(&usr1, NULL, &tick) != SIGUSR1)
		;
	t0 = now_ns();
	for (i = 0; i < words; i++)
		check += mem[i];
	r.read_ns = now_ns() - t0;
	r.ok = check == sum;
	if (write(result, &r, sizeof(r)) != sizeof(r))
		_exit(4);
	for (;;)
		pause();
}

/* Read exactly @len bytes from @fd within @timeout_ms; 0 or -1. */
static int read_within(int fd, void *buf, size_t len, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char *c = buf;

	while (len) {
		ssize_t n;

		if (poll(&p, 1, timeout_ms) <= 0)
			return -1;
		n = read(fd, c, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c += n;
		len -= n;
	}
	return 0;
}

/*
 * One end-to-end run on a new process of @mib MiB: the migration to the
 * other node (@mig_ns, this node's clock), then its reading every word
 * there (@read_ns, that node's clock).
 */
static void e2e_once(unsigned long mib, double *mig_ns, double *read_ns)
{
	int ready[2], result[2];
	struct e2e_report r;
	sigset_t usr1, old;
	char c;
	pid_t pid;

	if (pipe(ready) || pipe(result))
		die("pipe");
	/* Blocked before the fork, so the child never loses the signal. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &old);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		close(ready[0]);
		close(result[0]);
		e2e_child(mib, ready[1], result[1]);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(ready[1]);
	close(result[1]);
	if (read_within(ready[0], &c, 1, 60000))
		fail("end-to-end: the process did not fill its memory");
	*mig_ns = timed_migrate(pid, there);
	if (kill(pid, SIGUSR1))
		die("kill SIGUSR1");
	if (read_within(result[0], &r, sizeof(r), E2E_TIMEOUT_MS))
		fail("end-to-end: no report from the moved process");
	if (!r.ok)
		fail("end-to-end: the moved process read other values than it wrote");
	*read_ns = r.read_ns;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(ready[0]);
	close(result[0]);
}

struct e2e {
	double migrate, read, total, model;
};

/*
 * @reps end-to-end runs of @mib MiB; prints their samples and returns the
 * medians, and the model: bytes / @bps + @rtt.
 */
static struct e2e measure_e2e(unsigned long mib, int reps, double bps,
			      double rtt)
{
	double *mig = calloc(reps, sizeof(double));
	double *rd = calloc(reps, sizeof(double));
	double *tot = calloc(reps, sizeof(double));
	char key[64];
	struct e2e e;
	int i;

	if (!mig || !rd || !tot)
		die("calloc");
	step = mib > 1 ? "end to end (64 MiB)" : "end to end (1 MiB)";
	for (i = 0; i < reps; i++) {
		e2e_once(mib, &mig[i], &rd[i]);
		tot[i] = mig[i] + rd[i];
	}
	snprintf(key, sizeof(key), "e2e_migrate_%lumib_ns", mib);
	e.migrate = print_samples(key, mig, reps);
	snprintf(key, sizeof(key), "e2e_read_%lumib_ns", mib);
	e.read = print_samples(key, rd, reps);
	snprintf(key, sizeof(key), "e2e_total_%lumib_ns", mib);
	e.total = print_samples(key, tot, reps);
	e.model = mib * MIB * 1e9 / bps + rtt;
	printf("e2e_model_%lumib_ns=%.0f\n", mib, e.model);
	free(mig);
	free(rd);
	free(tot);
	return e;
}

static void print_moves(const char *size, struct moves *m, int reps,
			double *first, double *out, double *back)
{
	char key[64];

	snprintf(key, sizeof(key), "first_%s_ns", size);
	*first = print_samples(key, m->first, FRESH);
	snprintf(key, sizeof(key), "out_%s_ns", size);
	*out = print_samples(key, m->out, reps);
	snprintf(key, sizeof(key), "back_%s_ns", size);
	*back = print_samples(key, m->back, reps);
	free(m->out);
	free(m->back);
}

static void row(const char *what, double ns, double rtt)
{
	printf("%-44s %12.3f %10.1f\n", what, ns / 1e6, ns / rtt);
}

int main(int argc, char **argv)
{
	int reps = argc > 2 ? atoi(argv[2]) : 10;
	int e2e_reps = argc > 3 ? atoi(argv[3]) : 3;
	unsigned long big_mib = argc > 4 ? strtoul(argv[4], NULL, 0) : 0;
	double fbig = 0, obig = 0, bbig = 0;
	struct moves huge;
	char big_label[32];
	double ping[2], hreq[2], bps[2], rtt, hrtt, tput, fault, xfer;
	double pp_ns, pp_msgs;
	struct cfaults cf;
	double f1, o1, b1, f64, o64, b64;
	struct moves small, big;
	struct e2e e1, e64;

	if (argc < 2 || argc > 5 || reps < 1 || e2e_reps < 1) {
		fprintf(stderr, "usage: migbench NODE [REPS [E2E_REPS [BIG_MIB]]]\n");
		return 2;
	}
	there = atoi(argv[1]);
	here = pcntl_where(0);
	setvbuf(stdout, NULL, _IOLBF, 0);

	ping[0] = kmsg_rtt("ping", there, 1000);
	hreq[0] = kmsg_rtt("hreq", there, 1000);
	bps[0] = kmsg_bps(there, STREAM_BYTES);
	measure_moves(&small, 1, reps);
	measure_moves(&big, 64, reps);
	if (big_mib)
		measure_moves(&huge, big_mib, reps);
	fault = fault_ns();
	if (fault < 0)
		fail("remote fault: no report from the moved process");
	cf = container_faults();
	pingpong(&pp_ns, &pp_msgs);
	ping[1] = kmsg_rtt("ping", there, 1000);
	hreq[1] = kmsg_rtt("hreq", there, 1000);
	bps[1] = kmsg_bps(there, STREAM_BYTES);

	/* The yardsticks: the mean of before and after. */
	rtt = (ping[0] + ping[1]) / 2;
	hrtt = (hreq[0] + hreq[1]) / 2;
	tput = (bps[0] + bps[1]) / 2;
	printf("kmsg_rtt_ns=%.0f\nkmsg_rtt_ns_samples=%.0f,%.0f\n", rtt,
	       ping[0], ping[1]);
	printf("hreq_rtt_ns=%.0f\nhreq_rtt_ns_samples=%.0f,%.0f\n", hrtt,
	       hreq[0], hreq[1]);
	printf("kmsg_bytes_per_s=%.0f\nkmsg_bytes_per_s_samples=%.0f,%.0f\n",
	       tput, bps[0], bps[1]);
	print_moves("1mib", &small, reps, &f1, &o1, &b1);
	print_moves("64mib", &big, reps, &f64, &o64, &b64);
	if (big_mib) {
		if (big_mib % 1024)
			snprintf(big_label, sizeof(big_label), "%lumib", big_mib);
		else
			snprintf(big_label, sizeof(big_label), "%lugib", big_mib / 1024);
		print_moves(big_label, &huge, reps, &fbig, &obig, &bbig);
	}
	printf("fault_ns=%.0f\n", fault);
	printf("read_fault_ns=%.0f\nwrite_fault_ns=%.0f\ninval_fault_ns=%.0f\n",
	       cf.read_ns, cf.write_ns, cf.inval_ns);
	printf("read_fault_msgs=%.2f\nwrite_fault_msgs=%.2f\ninval_fault_msgs=%.2f\n",
	       cf.read_msgs, cf.write_msgs, cf.inval_msgs);
	printf("pingpong_ns=%.0f\npingpong_msgs=%.2f\n", pp_ns, pp_msgs);
	/* A 4 KiB transfer at kmsg's throughput. */
	xfer = PAGE / tput * 1e9;
	e1 = measure_e2e(1, e2e_reps, tput, hrtt);
	e64 = measure_e2e(64, e2e_reps, tput, hrtt);

	printf("\n%-44s %12s %10s\n", "", "ms", "x kmsg RTT");
	row("kmsg round trip (ping)", rtt, rtt);
	row("kmsg round trip through the hub (hreq)", hrtt, rtt);
	row("migrate, new task (1 MiB)", f1, rtt);
	row("migrate, new task (64 MiB)", f64, rtt);
	row("migrate to its shadow there (1 MiB)", o1, rtt);
	row("migrate to its shadow there (64 MiB)", o64, rtt);
	row("back to the shadow here (1 MiB)", b1, rtt);
	row("back to the shadow here (64 MiB)", b64, rtt);
	row("remote page fault", fault, rtt);
	row("read fault (container)", cf.read_ns, rtt);
	row("write fault, no copy (container)", cf.write_ns, rtt);
	row("write fault, 1 copy invalidated", cf.inval_ns, rtt);
	row("ping-pong handoff (shared page)", pp_ns, rtt);
	printf("read fault / (RTT + 4 KiB at kmsg throughput) %.2f; "
	       "write fault / read fault: no copy %.2f, 1 copy %.2f\n",
	       cf.read_ns / (rtt + xfer), cf.write_ns / cf.read_ns,
	       cf.inval_ns / cf.read_ns);
	printf("page messages per fault: read %.2f, write %.2f, "
	       "write invalidating 1 copy %.2f; per ping-pong handoff %.2f\n",
	       cf.read_msgs, cf.write_msgs, cf.inval_msgs, pp_msgs);
	printf("ping-pong handoff / read fault %.2f\n", pp_ns / cf.read_ns);
	printf("64 MiB / 1 MiB: new task %.2f, to shadow %.2f, back %.2f\n",
	       f64 / f1, o64 / o1, b64 / b1);
	if (big_mib)
		printf("%lu MiB / 1 MiB: new task %.2f, to shadow %.2f, back %.2f\n",
		       big_mib, fbig / f1, obig / o1, bbig / b1);
	printf("kmsg throughput %.1f MB/s\n", tput / 1e6);
	printf("end to end (medians: migrate, then read everything there; "
	       "total) against bytes / throughput + hub RTT:\n");
	printf("  1 MiB: %.1f, %.1f; %.1f ms, model %.1f ms, ratio %.2f\n",
	       e1.migrate / 1e6, e1.read / 1e6, e1.total / 1e6,
	       e1.model / 1e6, e1.total / e1.model);
	printf("  64 MiB: %.1f, %.1f; %.1f ms, model %.1f ms, ratio %.2f\n",
	       e64.migrate / 1e6, e64.read / 1e6, e64.total / 1e6,
	       e64.model / 1e6, e64.total / e64.model);
	return 0;
}
