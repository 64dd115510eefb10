// SPDX-License-Identifier: GPL-2.0
/*
 * tcpbench: the user-space TCP baseline that `cohort bench kmsg` compares
 * kmsg against.
 *
 *   tcpbench server PORT
 *	Accept connections forever, one child process per connection.
 *   tcpbench pingpong HOST PORT COUNT SIZE
 *	COUNT sequential round trips of SIZE-byte messages (TCP_NODELAY);
 *	prints "count=C size=S total_ns=T avg_ns=A min_ns=N max_ns=X".
 *   tcpbench stream HOST PORT BYTES
 *	Send BYTES in 1 MiB writes; the server answers with the number of
 *	bytes it received once it has them all, so the time covers delivery;
 *	prints "bytes=B total_ns=T".
 *
 * Each connection starts with a 16-byte header (all little endian):
 * u32 magic, u32 mode ('P' or 'S'), u64 argument (message size for a
 * ping-pong, total bytes for a stream).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define TB_MAGIC	0x54424e43u	/* "CNBT" */
#define MODE_PING	'P'
#define MODE_STREAM	'S'
#define MAX_MSG		(4u << 20)
#define CHUNK		(1u << 20)

struct hdr {
	uint32_t magic;
	uint32_t mode;
	uint64_t arg;
};

static void die(const char *what)
{
	fprintf(stderr, "tcpbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void fail(const char *msg)
{
	fprintf(stderr, "tcpbench: %s\n", msg);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Read exactly @len bytes; returns 0, or -1 on EOF or error. */
static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return (errno || end == s || *end || *s == '-') ? -1 : 0;
}

static void set_nodelay(int fd)
{
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		die("setsockopt TCP_NODELAY");
}

/* Serve one connection; returns the process exit status. */
static int serve(int fd)
{
	struct hdr h;
	char *buf;

	set_nodelay(fd);
	if (read_all(fd, &h, sizeof(h)) < 0 || h.magic != TB_MAGIC)
		return 1;
	if (h.mode == MODE_PING) {
		if (h.arg == 0 || h.arg > MAX_MSG)
			return 1;
		buf = malloc(h.arg);
		if (!buf)
			return 1;
		/* Echo messages until the client closes. */
		while (read_all(fd, buf, h.arg) == 0)
			if (write_all(fd, buf, h.arg) < 0)
				return 1;
		return 0;
	}
	if (h.mode == MODE_STREAM) {
		uint64_t got = 0;

		buf = malloc(CHUNK);
		if (!buf)
			return 1;
		while (got < h.arg) {
			ssize_t n = read(fd, buf, CHUNK);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return 1;
			got += n;
		}
		return write_all(fd, &got, sizeof(got)) < 0;
	}
	return 1;
}

static int cmd_server(const char *port_s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	uint64_t port;
	int one = 1, lfd;

	if (parse_u64(port_s, &port) < 0 || !port || port > 65535)
		fail("bad PORT");
	signal(SIGCHLD, SIG_IGN);	/* no zombies */
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_ANY);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind");
	if (listen(lfd, 16) < 0)
		die("listen");
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		pid_t pid;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept");
		}
		pid = fork();
		if (pid < 0) {
			close(fd);
			continue;
		}
		if (pid == 0) {
			close(lfd);
			_exit(serve(fd));
		}
		close(fd);
	}
}

/* HOST is an IPv4 address: a static binary has no resolver to speak of. */
static int connect_to(const char *host, const char *port_s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	uint64_t port;
	int fd;

	if (parse_u64(port_s, &port) < 0 || !port || port > 65535)
		fail("bad PORT");
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		fail("bad HOST (an IPv4 address)");
	sa.sin_port = htons(port);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	set_nodelay(fd);
	return fd;
}

static int cmd_pingpong(const char *host, const char *port,
			const char *count_s, const char *size_s)
{
	uint64_t count, size, i, t0, t, dt, total, min = UINT64_MAX, max = 0;
	struct hdr h = { .magic = TB_MAGIC, .mode = MODE_PING };
	char *buf;
	int fd;

	if (parse_u64(count_s, &count) < 0 || !count)
		fail("bad COUNT");
	if (parse_u64(size_s, &size) < 0 || !size || size > MAX_MSG)
		fail("bad SIZE (1 to 4194304)");
	buf = malloc(size);
	if (!buf)
		fail("out of memory");
	memset(buf, 0x5a, size);
	fd = connect_to(host, port);
	h.arg = size;
	if (write_all(fd, &h, sizeof(h)) < 0)
		die("write");
	t0 = now_ns();
	t = t0;
	for (i = 0; i < count; i++) {
		uint64_t t1;

		if (write_all(fd, buf, size) < 0)
			die("write");
		if (read_all(fd, buf, size) < 0)
			fail("connection closed by the server");
		t1 = now_ns();
		dt = t1 - t;
		t = t1;
		if (dt < min)
			min = dt;
		if (dt > max)
			max = dt;
	}
	total = t - t0;
	close(fd);
	printf("count=%" PRIu64 " size=%" PRIu64 " total_ns=%" PRIu64
	       " avg_ns=%" PRIu64 " min_ns=%" PRIu64 " max_ns=%" PRIu64 "\n",
	       count, size, total, total / count, min, max);
	return 0;
}

static int cmd_stream(const char *host, const char *port, const char *bytes_s)
{
	struct hdr h = { .magic = TB_MAGIC, .mode = MODE_STREAM };
	uint64_t bytes, left, t0, total, got;
	char *buf;
	int fd;

	if (parse_u64(bytes_s, &bytes) < 0 || !bytes)
		fail("bad BYTES");
	buf = malloc(CHUNK);
	if (!buf)
		fail("out of memory");
	memset(buf, 0xa5, CHUNK);
	fd = connect_to(host, port);
	h.arg = bytes;
	if (write_all(fd, &h, sizeof(h)) < 0)
		die("write");
	t0 = now_ns();
	for (left = bytes; left;) {
		size_t n = left < CHUNK ? left : CHUNK;

		if (write_all(fd, buf, n) < 0)
			die("write");
		left -= n;
	}
	if (read_all(fd, &got, sizeof(got)) < 0)
		fail("no acknowledgement from the server");
	total = now_ns() - t0;
	close(fd);
	if (got != bytes) {
		fprintf(stderr, "tcpbench: server received %" PRIu64
			" bytes, %" PRIu64 " sent\n", got, bytes);
		return 1;
	}
	printf("bytes=%" PRIu64 " total_ns=%" PRIu64 "\n", bytes, total);
	return 0;
}

static void usage(void)
{
	fputs("usage: tcpbench server PORT\n"
	      "       tcpbench pingpong HOST PORT COUNT SIZE\n"
	      "       tcpbench stream HOST PORT BYTES\n", stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "server"))
		return cmd_server(argv[2]);
	if (argc == 6 && !strcmp(argv[1], "pingpong"))
		return cmd_pingpong(argv[2], argv[3], argv[4], argv[5]);
	if (argc == 5 && !strcmp(argv[1], "stream"))
		return cmd_stream(argv[2], argv[3], argv[4]);
	usage();
	return 2;
}
