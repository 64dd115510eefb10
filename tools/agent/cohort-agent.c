// SPDX-License-Identifier: GPL-2.0
/*
 * cohort-agent - guest side of the Cohort host CLI.
 *
 * Runs inside every node, talks to the host over the virtio-serial port
 * named "org.cohort.agent" and runs shell commands on its behalf.
 *
 * Frames (ASCII header line, optional payload):
 *   host->guest  PING <id>\n
 *   guest->host  PONG <id> <node_id>\n
 *   host->guest  EXEC <id> <timeout_s> <len>\n + <len> bytes of command line
 *   guest->host  OUT <id> <len>\n + <len> bytes   (stdout+stderr, <= 4096)
 *   guest->host  EXIT <id> <status>\n
 *   guest->host  ERR <id|-> <message>\n
 *
 * One request at a time. The agent never exits on its own: when the host
 * side is disconnected, read() returns 0 and poll() reports POLLHUP; the
 * agent then sleeps and retries. If the host goes away while a command
 * runs, the command's process group is killed (nobody is left to read its
 * output) and the agent goes back to waiting.
 *
 * Pinning (-F): the administrator can forbid the agent's own migration.
 * The agent calls pcntl(2) PCNTL_FORBID with PCNTL_FORBID_SELF on itself
 * at start and, while that fails with ENOSYS (popcorn.ko is loaded later),
 * again before serving each request. The setting is the process's (it
 * outlives popcorn.ko) and its own only: the commands it starts are in
 * the default state, as free to migrate as any process of the node.
 *
 * Build: gcc -static -O2 -Wall -Wextra -isystem <uapi headers> \
 *		-o cohort-agent cohort-agent.c
 * Usage: cohort-agent [-d] [-F]
 *	-d	detach into the background
 *	-F, --forbid-migration
 *		forbid the agent's migration (PCNTL_FORBID on itself)
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/cohort.h>

#ifndef __NR_pcntl
#define __NR_pcntl	463
#endif

#define PORT_NAME	"org.cohort.agent"
#define PORTS_DIR	"/sys/class/virtio-ports"
#define NODE_ID_FILE	"/sys/kernel/cohort/node_id"
#define MAX_ID		32
#define MAX_HEADER	256
#define MAX_CMD		(1024 * 1024)
#define OUT_CHUNK	4096
#define IDLE_SLEEP_MS	100
/* How long POLLHUP must last before the host is considered gone. */
#define HUP_GRACE_MS	1000
/* After the command exits, wait this long for leftover output. */
#define DRAIN_MS	100
#define DRAIN_MAX_MS	5000

static char node_id[32] = "-1";
static char nr_nodes[32] = "";
static int kmsg_fd = -1;
/* -F: keep the agent itself from migrating (PCNTL_FORBID). */
static bool forbid_migration;

static void logmsg(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void logmsg(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "cohort-agent: ");
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(buf) - 1)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (kmsg_fd < 0 || write(kmsg_fd, buf, n) < 0) {
		if (write(STDERR_FILENO, buf, n) < 0)
			return;
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static long pcntl(unsigned int cmd, unsigned long a0, unsigned long a1,
		  unsigned long a2)
{
	return syscall(__NR_pcntl, cmd, a0, a1, a2);
}

/* PCNTL_FORBID or PCNTL_ALLOW said last for the calling process (PCNTL_STAT). */
static bool migration_flag(unsigned int flag)
{
	struct pcntl_stat st;

	memset(&st, 0, sizeof(st));
	return pcntl(PCNTL_STAT, 0, (unsigned long)&st, sizeof(st)) >= 0 &&
	       (st.flags & flag);
}

/*
 * With -F, make sure the agent is forbidden to migrate: before each
 * request, until PCNTL_FORBID works (it fails with ENOSYS until popcorn.ko
 * is loaded).
 */
static void pin_agent(void)
{
	static int last_err;

	if (!forbid_migration || migration_flag(PCNTL_F_FORBIDDEN))
		return;
	if (pcntl(PCNTL_FORBID, 0, PCNTL_FORBID_SELF, 0) == 0) {
		logmsg("migration of the agent forbidden (pid %d)", getpid());
		last_err = 0;
		return;
	}
	if (errno != ENOSYS && errno != last_err)
		logmsg("PCNTL_FORBID: %s (tried again before each request)",
		       strerror(errno));
	last_err = errno;
}

static ssize_t read_file(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

static bool is_number(const char *s)
{
	if (*s == '-')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* Find "key=value" in the kernel command line; copy value to out. */
static bool cmdline_value(const char *key, char *out, size_t size)
{
	char buf[4096];
	size_t klen = strlen(key);
	char *tok, *save;

	if (read_file("/proc/cmdline", buf, sizeof(buf)) < 0)
		return false;
	for (tok = strtok_r(buf, " \t\n", &save); tok;
	     tok = strtok_r(NULL, " \t\n", &save)) {
		if (strncmp(tok, key, klen) || tok[klen] != '=')
			continue;
		snprintf(out, size, "%s", tok + klen + 1);
		return true;
	}
	return false;
}

/* Refresh node_id: the hub's sysfs file wins, the command line is a fallback. */
static void update_node_id(void)
{
	char buf[32], val[32];

	if (read_file(NODE_ID_FILE, buf, sizeof(buf)) > 0) {
		buf[strcspn(buf, " \t\n")] = '\0';
		if (is_number(buf)) {
			snprintf(node_id, sizeof(node_id), "%s", buf);
			return;
		}
	}
	if (cmdline_value("cohort.node_id", val, sizeof(val)) &&
	    is_number(val))
		snprintf(node_id, sizeof(node_id), "%s", val);
}

/* Scan /sys/class/virtio-ports/<x>/name for PORT_NAME. */
static bool find_port(char *dev, size_t size)
{
	struct dirent *de;
	char path[PATH_MAX], name[128];
	bool found = false;
	DIR *d;

	d = opendir(PORTS_DIR);
	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), PORTS_DIR "/%s/name", de->d_name);
		if (read_file(path, name, sizeof(name)) < 0)
			continue;
		name[strcspn(name, "\n")] = '\0';
		if (strcmp(name, PORT_NAME))
			continue;
		snprintf(dev, size, "/dev/%s", de->d_name);
		found = true;
	}
	closedir(d);
	return found;
}

static int open_port(void)
{
	char dev[PATH_MAX];
	int64_t start = now_ms();
	bool warned = false;
	int fd;

	for (;;) {
		if (find_port(dev, sizeof(dev))) {
			fd = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
			if (fd >= 0)
				return fd;
			if (!warned)
				logmsg("cannot open %s: %s (retrying)", dev,
				       strerror(errno));
			warned = true;
		} else if (!warned && now_ms() - start > 5000) {
			logmsg("no virtio port named " PORT_NAME " yet (retrying)");
			warned = true;
		}
		sleep_ms(IDLE_SLEEP_MS);
	}
}

/*
 * Wait for the port to become writable. Returns 0 when writable, -1 when
 * the host has been disconnected for longer than HUP_GRACE_MS (the open
 * notification can trail the host's first bytes, hence the grace).
 */
static int wait_writable(int fd)
{
	int64_t hup_since = -1;
	struct pollfd p;

	for (;;) {
		p.fd = fd;
		p.events = POLLOUT;
		p.revents = 0;
		if (poll(&p, 1, IDLE_SLEEP_MS) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (p.revents & POLLOUT)
			return 0;
		if (p.revents & (POLLHUP | POLLERR)) {
			if (hup_since < 0)
				hup_since = now_ms();
			else if (now_ms() - hup_since > HUP_GRACE_MS)
				return -1;
			/* POLLHUP is level-triggered: do not spin. */
			sleep_ms(10);
		} else {
			hup_since = -1;
		}
	}
}

/* Write one whole frame. Returns 0 on success, -1 if the host is gone. */
static int send_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, buf, len);
		if (n > 0) {
			buf += n;
			len -= n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -1;
		if (wait_writable(fd) < 0)
			return -1;
	}
	return 0;
}

static int send_line(int fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int send_line(int fd, const char *fmt, ...)
{
	char buf[MAX_HEADER + 64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if (n >= (int)sizeof(buf)) {
		n = sizeof(buf) - 1;
		buf[n - 1] = '\n';
	}
	return send_all(fd, buf, n);
}

static bool valid_id(const char *id)
{
	size_t n = 0;

	for (; id[n]; n++)
		if (!isalnum((unsigned char)id[n]))
			return false;
	return n > 0 && n <= MAX_ID;
}

/* Parse a decimal number without sign; false on garbage or overflow. */
static bool parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return false;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return false;
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return true;
}

struct child {
	pid_t pid;
	int out;		/* read end of the stdout/stderr pipe */
};

/*
 * execve() limits one argument to MAX_ARG_STRLEN (128 KiB), less than the
 * 1 MiB a command may have. A long command goes into a memory file that
 * the shell sources instead: "sh -c '. /proc/self/fd/N'".
 */
#define ARG_MAX_INLINE	(64 * 1024)

static int cmd_file(const char *cmd, size_t len)
{
	int fd;

	fd = memfd_create("cohort-cmd", 0);
	if (fd < 0)
		fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
	if (fd < 0)
		fd = open("/", O_TMPFILE | O_RDWR, 0600);
	if (fd < 0)
		return -1;
	while (len) {
		ssize_t n = write(fd, cmd, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return -1;
		}
		cmd += n;
		len -= n;
	}
	return fd;
}

static void child_exec(const char *cmd, int wfd)
{
	char node_env[64], nodes_env[64], source[64];
	char *envp[6];
	char *argv[] = { "sh", "-c", (char *)cmd, NULL };
	size_t len = strlen(cmd);
	sigset_t all;
	int i = 0, fd;

	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	setsid();

	fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
		_exit(126);
	if (dup2(wfd, STDOUT_FILENO) < 0 || dup2(wfd, STDERR_FILENO) < 0)
		_exit(126);
	if (fd > STDERR_FILENO)
		close(fd);
	if (wfd > STDERR_FILENO)
		close(wfd);
	/* Everything else the agent holds is O_CLOEXEC. */

	if (len > ARG_MAX_INLINE) {
		fd = cmd_file(cmd, len);
		if (fd < 0) {
			dprintf(STDERR_FILENO,
				"cohort-agent: cannot store a %zu-byte command: %s\n",
				len, strerror(errno));
			_exit(126);
		}
		snprintf(source, sizeof(source), ". /proc/self/fd/%d", fd);
		argv[2] = source;
	}

	mkdir("/root", 0700);
	if (chdir("/root") < 0 && chdir("/") < 0)
		_exit(126);

	snprintf(node_env, sizeof(node_env), "COHORT_NODE=%s", node_id);
	envp[i++] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	envp[i++] = "HOME=/root";
	envp[i++] = node_env;
	if (nr_nodes[0]) {
		snprintf(nodes_env, sizeof(nodes_env), "COHORT_NODES=%s",
			 nr_nodes);
		envp[i++] = nodes_env;
	}
	envp[i] = NULL;
	execve("/bin/sh", argv, envp);
	dprintf(STDERR_FILENO, "cohort-agent: exec /bin/sh: %s\n",
		strerror(errno));
	_exit(127);
}

static int spawn(const char *cmd, struct child *c)
{
	int pfd[2];
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0)
		child_exec(cmd, pfd[1]);
	close(pfd[1]);
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	c->pid = pid;
	c->out = pfd[0];
	return 0;
}

/*
 * Reap every exited child (the agent is a subreaper, so orphans of the
 * command come back to it). Returns true if @pid was reaped; its wait
 * status goes to @status.
 */
static bool reap(pid_t pid, int *status)
{
	bool got = false;
	pid_t r;
	int st;

	while ((r = waitpid(-1, &st, WNOHANG)) > 0) {
		if (r == pid) {
			*status = st;
			got = true;
		}
	}
	return got;
}

static void drain_signalfd(int sfd)
{
	struct signalfd_siginfo si;

	while (read(sfd, &si, sizeof(si)) == sizeof(si))
		;
}

/* True if the host side of the port is disconnected right now. */
static bool port_hung_up(int port)
{
	struct pollfd p = { .fd = port, .events = 0 };

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR));
}

static void kill_group(pid_t pid)
{
	kill(-pid, SIGKILL);
	/* In case the child has not reached setsid() yet. */
	kill(pid, SIGKILL);
}

/*
 * Run one command and stream its output. Returns 0 when EXIT was sent,
 * -1 when the host went away (the command is then killed).
 *
 * The request ends when the shell has exited and its output pipe is at
 * EOF. If a background job keeps the pipe open, the agent stops reading
 * once the pipe has been idle for DRAIN_MS after the shell exited (or
 * DRAIN_MAX_MS in any case); such a job is left running, as with ssh.
 */
static int run_exec(int port, int sfd, const char *id, unsigned int timeout_s,
		    const char *cmd)
{
	char frame[MAX_HEADER + OUT_CHUNK];
	int64_t deadline = -1, exited_at = -1, hup_since = -1;
	bool reaped = false, timed_out = false, gone = false;
	bool pipe_open = true, pipe_idle = false;
	struct pollfd p[2];
	struct child c;
	int status = 0, dummy, code;

	if (spawn(cmd, &c) < 0) {
		logmsg("cannot start command: %s", strerror(errno));
		return send_line(port, "ERR %s cannot start /bin/sh: %s\n", id,
				 strerror(errno));
	}
	if (timeout_s)
		deadline = now_ms() + (int64_t)timeout_s * 1000;

	while (!reaped || pipe_open) {
		int64_t now = now_ms();
		int64_t wait = IDLE_SLEEP_MS * 5;

		if (deadline >= 0 && !timed_out && now >= deadline) {
			kill_group(c.pid);
			timed_out = true;
		}
		if (reaped && pipe_open &&
		    ((now - exited_at >= DRAIN_MS && pipe_idle) ||
		     now - exited_at >= DRAIN_MAX_MS))
			break;

		if (deadline >= 0 && !timed_out && deadline - now < wait)
			wait = deadline - now;
		if (reaped && wait > DRAIN_MS)
			wait = DRAIN_MS;
		if (hup_since >= 0 && wait > IDLE_SLEEP_MS)
			wait = IDLE_SLEEP_MS;
		if (wait < 0)
			wait = 0;

		p[0].fd = pipe_open ? c.out : -1;
		p[0].events = POLLIN;
		p[1].fd = sfd;
		p[1].events = POLLIN;
		p[0].revents = 0;
		p[1].revents = 0;
		if (poll(p, 2, (int)wait) < 0 && errno != EINTR)
			sleep_ms(IDLE_SLEEP_MS);

		/* The port is checked apart: POLLHUP there is level-triggered. */
		if (port_hung_up(port)) {
			if (hup_since < 0)
				hup_since = now_ms();
			else if (now_ms() - hup_since > HUP_GRACE_MS)
				gone = true;
		} else {
			hup_since = -1;
		}
		if (gone) {
			kill_group(c.pid);
			break;
		}

		if (p[1].revents & POLLIN)
			drain_signalfd(sfd);
		if (!reaped && reap(c.pid, &status)) {
			reaped = true;
			exited_at = now_ms();
		}

		pipe_idle = !(p[0].revents & (POLLIN | POLLHUP | POLLERR));
		if (pipe_open && !pipe_idle) {
			char hdr[MAX_HEADER];
			int hlen;
			ssize_t n;

			/* Leave room for the header in front of the data. */
			n = read(c.out, frame + MAX_HEADER, OUT_CHUNK);
			if (n == 0 || (n < 0 && errno != EAGAIN &&
				       errno != EINTR)) {
				pipe_open = false;
			} else if (n > 0) {
				hlen = snprintf(hdr, sizeof(hdr), "OUT %s %zd\n",
						id, n);
				memcpy(frame + MAX_HEADER - hlen, hdr, hlen);
				if (send_all(port, frame + MAX_HEADER - hlen,
					     hlen + n) < 0) {
					gone = true;
					kill_group(c.pid);
					break;
				}
			}
		}
	}

	close(c.out);
	if (!reaped) {
		/* Killed above (timeout or host gone): collect it. */
		while (waitpid(c.pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	reap(-1, &dummy);

	if (gone) {
		logmsg("host went away during request %s; command killed", id);
		return -1;
	}
	if (timed_out)
		code = 124;
	else if (WIFSIGNALED(status))
		code = 128 + WTERMSIG(status);
	else
		code = WEXITSTATUS(status);
	return send_line(port, "EXIT %s %d\n", id, code);
}

/* Input state machine. */
enum in_state {
	IN_HEADER,	/* reading a header line */
	IN_RESYNC,	/* discarding up to the next newline */
	IN_PAYLOAD,	/* reading an EXEC payload */
	IN_SKIP,	/* discarding the payload of a refused EXEC */
};

struct input {
	enum in_state state;
	char line[MAX_HEADER + 1];
	size_t line_len;
	char id[MAX_ID + 1];
	unsigned int timeout_s;
	char *cmd;
	size_t cmd_len, cmd_have;
	uint64_t skip;
};

static void input_reset(struct input *in)
{
	free(in->cmd);
	in->cmd = NULL;
	in->state = IN_HEADER;
	in->line_len = 0;
	in->cmd_len = 0;
	in->cmd_have = 0;
	in->skip = 0;
}

/* Handle one complete header line (no newline). */
static void handle_header(int port, struct input *in)
{
	char *argv[8], *save, *tok;
	const char *eid;
	uint64_t timeout, len;
	int argc = 0;

	in->line[in->line_len] = '\0';
	if (in->line_len && in->line[in->line_len - 1] == '\r')
		in->line[--in->line_len] = '\0';
	in->line_len = 0;

	for (tok = strtok_r(in->line, " ", &save); tok && argc < 8;
	     tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	if (argc == 0)
		return;	/* empty line: ignore */
	pin_agent();

	eid = argc > 1 && valid_id(argv[1]) ? argv[1] : "-";

	if (!strcmp(argv[0], "PING")) {
		if (argc != 2 || !valid_id(argv[1])) {
			send_line(port, "ERR %s usage: PING <id>\n", eid);
			return;
		}
		update_node_id();
		send_line(port, "PONG %s %s\n", argv[1], node_id);
		return;
	}
	if (!strcmp(argv[0], "EXEC")) {
		if (argc != 4 || !valid_id(argv[1]) ||
		    !parse_u64(argv[2], &timeout) || timeout > UINT_MAX ||
		    !parse_u64(argv[3], &len)) {
			send_line(port,
				  "ERR %s usage: EXEC <id> <timeout_s> <len>\n",
				  eid);
			return;
		}
		snprintf(in->id, sizeof(in->id), "%s", argv[1]);
		if (len > MAX_CMD) {
			send_line(port, "ERR %s command longer than %d bytes\n",
				  in->id, MAX_CMD);
			in->skip = len;
			in->state = IN_SKIP;
			return;
		}
		in->cmd = malloc(len + 1);
		if (!in->cmd) {
			send_line(port, "ERR %s out of memory\n", in->id);
			in->skip = len;
			in->state = IN_SKIP;
			return;
		}
		in->timeout_s = timeout;
		in->cmd_len = len;
		in->cmd_have = 0;
		in->state = IN_PAYLOAD;
		return;
	}
	send_line(port, "ERR %s unknown request\n", eid);
}

/*
 * Consume bytes from the port. Returns the number consumed; stops right
 * after a complete EXEC so the caller can run it (the rest stays queued).
 */
static size_t feed(int port, struct input *in, const char *buf, size_t len,
		   bool *exec_ready)
{
	size_t i = 0, n;

	*exec_ready = false;
	while (i < len) {
		switch (in->state) {
		case IN_HEADER:
		case IN_RESYNC: {
			const char *nl = memchr(buf + i, '\n', len - i);
			size_t chunk = nl ? (size_t)(nl - (buf + i)) : len - i;

			if (in->state == IN_RESYNC) {
				i += chunk + (nl ? 1 : 0);
				if (nl)
					in->state = IN_HEADER;
				break;
			}
			if (in->line_len + chunk > MAX_HEADER) {
				send_line(port, "ERR - header too long\n");
				in->line_len = 0;
				in->state = IN_RESYNC;
				break;
			}
			memcpy(in->line + in->line_len, buf + i, chunk);
			in->line_len += chunk;
			i += chunk;
			if (nl) {
				i++;
				handle_header(port, in);
			}
			break;
		}
		case IN_PAYLOAD:
			n = in->cmd_len - in->cmd_have;
			if (n > len - i)
				n = len - i;
			memcpy(in->cmd + in->cmd_have, buf + i, n);
			in->cmd_have += n;
			i += n;
			break;
		case IN_SKIP:
			n = len - i;
			if (n > in->skip)
				n = in->skip;
			in->skip -= n;
			i += n;
			if (!in->skip)
				in->state = IN_HEADER;
			break;
		}
		if (in->state == IN_PAYLOAD && in->cmd_have == in->cmd_len) {
			in->cmd[in->cmd_len] = '\0';
			*exec_ready = true;
			return i;
		}
	}
	return i;
}

static void serve(int port, int sfd)
{
	static char buf[65536];
	struct input in = { .state = IN_HEADER };
	size_t have = 0, used;
	bool ready;
	ssize_t n;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = port, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
		};

		if (poll(p, 2, -1) < 0 && errno != EINTR) {
			sleep_ms(IDLE_SLEEP_MS);
			continue;
		}
		if (p[1].revents & POLLIN) {
			int dummy;

			drain_signalfd(sfd);
			reap(-1, &dummy);
		}
		if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;

		n = read(port, buf + have, sizeof(buf) - have);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			/* Host side closed: forget any partial frame, retry. */
			if (n < 0)
				sleep_ms(IDLE_SLEEP_MS);
			if (in.state != IN_HEADER || in.line_len || have)
				input_reset(&in);
			have = 0;
			sleep_ms(IDLE_SLEEP_MS);
			continue;
		}
		have += n;
		while (have) {
			used = feed(port, &in, buf, have, &ready);
			memmove(buf, buf + used, have - used);
			have -= used;
			if (!ready)
				continue;
			if (run_exec(port, sfd, in.id, in.timeout_s,
				     in.cmd) < 0) {
				/* Host gone: whatever it queued is stale. */
				have = 0;
			}
			input_reset(&in);
		}
	}
}

static void daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0) {
		logmsg("fork: %s", strerror(errno));
		return;
	}
	if (pid > 0)
		_exit(0);
	setsid();
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
}

int main(int argc, char **argv)
{
	bool detach = false;
	sigset_t mask;
	int port, sfd, fd, i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-d")) {
			detach = true;
		} else if (!strcmp(argv[i], "-F") ||
			   !strcmp(argv[i], "--forbid-migration")) {
			forbid_migration = true;
		} else {
			fprintf(stderr, "usage: %s [-d] [-F|--forbid-migration]\n",
				argv[0]);
			return 2;
		}
	}
	if (detach)
		daemonize();

	kmsg_fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC | O_NOCTTY);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

	/* Keep the OOM killer away from the agent. */
	fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "-1000", 5) < 0)
			logmsg("cannot set oom_score_adj: %s", strerror(errno));
		close(fd);
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0) {
		logmsg("signalfd: %s", strerror(errno));
		return 1;
	}

	pin_agent();
	update_node_id();
	cmdline_value("cohort.nr_nodes", nr_nodes, sizeof(nr_nodes));
	if (!is_number(nr_nodes))
		nr_nodes[0] = '\0';

	port = open_port();
	logmsg("ready on node %s", node_id);
	serve(port, sfd);
	return 0;
}
