/* SPDX-License-Identifier: MIT */
/*
 * migrate-demo: live migration of a small emulated machine with
 * libmigstream.a, between two processes over TCP, or into and out of a
 * snapshot file.
 *
 *   migrate-demo --listen tcp:127.0.0.1:4444          # the destination
 *   migrate-demo --to tcp:127.0.0.1:4444              # the source
 *   migrate-demo --to file:vm.snap                    # a snapshot
 *   migrate-demo --from file:vm.snap                  # restore it
 *   migrate-demo --to file:vm.msm --mapped            # a mapped snapshot
 *   migrate-demo --from file:vm.msm --mapped --restore mmap
 *   migrate-demo --listen tcp:127.0.0.1:4444 --channels 2
 *   migrate-demo --to tcp:127.0.0.1:4444 --channels 2 # pages on 2 more
 *
 * The source's guest thread writes to RAM while precopy rounds send the
 * dirty pages; once what is left fits in --downtime-ms at the measured
 * throughput, the guest stops and the rest goes (stop-and-copy).  The
 * destination loads, answers "OK" (or why not) and checks every byte of
 * RAM and every device field against what the source had when it stopped:
 * it replays the guest from the seed up to the CPU's program counter.
 *
 * RAM is the library's ms_ram (see migrate-demo-machine.c).  With
 * --channels N the source opens N more TCP connections after the main
 * one and ms_ram sends the pages over them, one thread each.  How the
 * destination tells the connections apart: each begins with a hello of
 * HELLO_LEN bytes, read before anything else: the magic "mdc1", a byte
 * with the connection's index (0 the main stream, 1 + i channel i), a
 * byte with the source's channel count, two zero bytes, and a be64 id
 * drawn at random for each migration attempt.  The destination accepts
 * connections until it holds the main one and the channels it expects
 * of the same id, sorts them by index, and closes any other (a bad
 * hello, another attempt's id, an index taken twice).  A source with
 * another channel count than the destination's is refused by ms_ram
 * (its START section says the count), not by the demo.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "migrate-demo.h"

#define CONNECT_TIMEOUT_S 30
/* The usage text says 64; a hello's bytes hold an index and a count. */
_Static_assert(MS_RAM_MAX_CHANNELS == 64, "--channels says 0 to 64");
/* Bytes of a connection's hello, and its magic. */
#define HELLO_LEN   16
#define HELLO_MAGIC "mdc1"

/**
 * struct options - The command line.
 * @to: "tcp:HOST:PORT" or "file:PATH": be the source.
 * @listen: "tcp:HOST:PORT": be the destination.
 * @from: "file:PATH": restore a snapshot.
 * @port_file: the destination writes the port it listens on here.
 * @cfg: the machine.
 * @save: how the source migrates.
 * @attempts: migrations the source tries before giving up.
 * @accept: incoming migrations the destination accepts before giving up.
 * @drop_after: destination: close the first connection after this many
 *              bytes (0: never).
 * @kill_after: destination: die by SIGKILL after this many bytes.
 * @drop_chan_after: destination: close the first migration's channel 0
 *                   connection after this many of its bytes (0: never).
 * @nchan: RAM channels beside the main connection (--channels).
 * @timeout_s: destination and restore: give up (SIGALRM) after this many
 *             seconds; 0 waits forever.
 * @mapped: --to/--from file: a mapped snapshot file.
 * @restore: how a mapped restore places the pages (--restore).
 * @threads: writer or reader threads of a mapped save or restore.
 * @quiet: print only the summary.
 */
struct options {
	const char *to;
	const char *listen;
	const char *from;
	const char *port_file;
	struct demo_config cfg;
	struct demo_save_opts save;
	unsigned attempts;
	unsigned accept;
	uint64_t drop_after;
	uint64_t kill_after;
	uint64_t drop_chan_after;
	unsigned nchan;
	unsigned timeout_s;
	bool mapped;
	ms_ram_restore_mode restore;
	unsigned threads;
	bool quiet;
};

/**
 * parse_size() - "16M", "64k", "1G", "4096": bytes; 0 if malformed.
 */
static uint64_t parse_size(const char *s)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return 0;
	switch (*end) {
	case 'g':
	case 'G':
		v <<= 10;
		/* fall through */
	case 'm':
	case 'M':
		v <<= 10;
		/* fall through */
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	}
	return *end ? 0 : (uint64_t)v;
}

/**
 * parse_tcp() - "tcp:HOST:PORT": splits into @host and @port (the last colon).
 */
static int parse_tcp(const char *addr, char *host, size_t hlen,
		     const char **port)
{
	const char *colon;
	size_t n;

	if (strncmp(addr, "tcp:", 4))
		return -EINVAL;
	addr += 4;
	colon = strrchr(addr, ':');
	if (!colon || colon == addr || !colon[1])
		return -EINVAL;
	n = (size_t)(colon - addr);
	if (addr[0] == '[' && n >= 2 && addr[n - 1] == ']') {
		addr++;
		n -= 2;
	}
	if (n >= hlen)
		return -EINVAL;
	memcpy(host, addr, n);
	host[n] = '\0';
	*port = colon + 1;
	return 0;
}

/**
 * resolve_tcp() - Look up a "tcp:HOST:PORT" address, saying what is wrong.
 * @addr: the address.
 * @flags: getaddrinfo()'s ai_flags (AI_PASSIVE to listen).
 * @ai: receives the list, for freeaddrinfo().
 * @port: receives the PORT part of @addr.
 *
 * Return: 0, or -EINVAL after a message.
 */
static int resolve_tcp(const char *addr, int flags, struct addrinfo **ai,
		       const char **port)
{
	struct addrinfo hints;
	char host[256];
	int ret;

	if (parse_tcp(addr, host, sizeof(host), port)) {
		fprintf(stderr,
			"migrate-demo: bad address '%s': "
			"tcp:HOST:PORT expected\n",
			addr);
		return -EINVAL;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = flags;
	ret = getaddrinfo(host, *port, &hints, ai);
	if (ret) {
		fprintf(stderr, "migrate-demo: %s: %s\n", addr,
			gai_strerror(ret));
		return -EINVAL;
	}
	return 0;
}

/**
 * secs_of() - Seconds of a result, never 0.
 * @r: the result.
 *
 * Return: @r's total seconds, or 1 ns when it is 0.
 */
static double secs_of(const struct demo_result *r)
{
	return r->total_s > 0 ? r->total_s : 1e-9;
}

/*
 * Source.
 */

static int tcp_connect(const char *addr)
{
	struct addrinfo *ai, *p;
	double deadline = demo_now() + CONNECT_TIMEOUT_S;
	struct timespec pause = {0, 100 * 1000 * 1000};
	const char *port;
	int fd = -1, ret = 0;

	if (resolve_tcp(addr, 0, &ai, &port))
		return -EINVAL;
	/* The destination may not listen yet: retry for a while. */
	for (;;) {
		for (p = ai; p; p = p->ai_next) {
			fd = socket(p->ai_family, p->ai_socktype,
				    p->ai_protocol);
			if (fd < 0)
				continue;
			if (!connect(fd, p->ai_addr, p->ai_addrlen))
				break;
			ret = -errno;
			close(fd);
			fd = -1;
		}
		if (fd >= 0 || demo_now() > deadline ||
		    (ret != -ECONNREFUSED && ret != -ENOENT))
			break;
		nanosleep(&pause, NULL);
	}
	freeaddrinfo(ai);
	if (fd < 0)
		fprintf(stderr, "migrate-demo: cannot connect to %s: %s\n",
			addr, strerror(ret ? -ret : EHOSTUNREACH));
	return fd >= 0 ? fd : ret ? ret : -EHOSTUNREACH;
}

/*
 * Connections: the hello that tells them apart (see the top comment).
 */

/**
 * io_all() - read() or write() all of @len bytes, through EINTR.
 * @fd: the descriptor.
 * @buf: the bytes.
 * @len: their number.
 * @wr: write (else read).
 *
 * Return: 0, -EPIPE at an early end, or a negative errno.
 */
static int io_all(int fd, void *buf, size_t len, bool wr)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = wr ? write(fd, p, len) : read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/**
 * hello_send() - Begin a connection with its hello.
 * @fd: the connection.
 * @index: 0 for the main stream, 1 + i for channel i.
 * @count: the source's channel count.
 * @id: the migration attempt's id.
 *
 * Return: 0 or a negative errno.
 */
static int hello_send(int fd, unsigned index, unsigned count, uint64_t id)
{
	uint8_t h[HELLO_LEN] = {0};
	int i;

	memcpy(h, HELLO_MAGIC, 4);
	h[4] = (uint8_t)index;
	h[5] = (uint8_t)count;
	for (i = 0; i < 8; i++)
		h[8 + i] = (uint8_t)(id >> (56 - 8 * i));
	return io_all(fd, h, sizeof(h), true);
}

/**
 * hello_recv() - Read a connection's hello.
 * @fd: the connection.
 * @index: receives its index.
 * @count: receives the source's channel count.
 * @id: receives the attempt's id.
 *
 * Return: 0, or -EPROTO for something else than a hello.
 */
static int hello_recv(int fd, unsigned *index, unsigned *count, uint64_t *id)
{
	uint8_t h[HELLO_LEN];
	int i;

	if (io_all(fd, h, sizeof(h), false) || memcmp(h, HELLO_MAGIC, 4) ||
	    h[6] || h[7] || h[5] > MS_RAM_MAX_CHANNELS)
		return -EPROTO;
	*index = h[4];
	*count = h[5];
	*id = 0;
	for (i = 0; i < 8; i++)
		*id = *id << 8 | h[8 + i];
	return 0;
}

/**
 * attempt_id() - A random id for a migration attempt.
 *
 * Return: 64 bits from /dev/urandom, or from the clock and the pid.
 */
static uint64_t attempt_id(void)
{
	uint64_t id = 0;
	struct timespec ts;
	int fd = open("/dev/urandom", O_RDONLY);

	if (fd >= 0) {
		if (io_all(fd, &id, sizeof(id), false))
			id = 0;
		close(fd);
	}
	if (!id) {
		clock_gettime(CLOCK_REALTIME, &ts);
		id = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
		     ((uint64_t)getpid() << 16);
	}
	return id;
}

/**
 * connect_all() - Open a migration's main connection and its channels.
 * @o: the command line.
 * @chan: receives o->nchan channel sockets.
 *
 * Return: the main socket, or a negative errno after a message (nothing
 * is left open).
 */
static int connect_all(const struct options *o, int *chan)
{
	uint64_t id = attempt_id();
	unsigned i, k;
	int fd, ret;

	fd = tcp_connect(o->to);
	if (fd < 0)
		return fd;
	ret = hello_send(fd, 0, o->nchan, id);
	for (i = 0; !ret && i < o->nchan; i++) {
		chan[i] = tcp_connect(o->to);
		if (chan[i] < 0) {
			ret = chan[i];
			break;
		}
		ret = hello_send(chan[i], i + 1, o->nchan, id);
		if (ret)
			i++;
	}
	if (!ret)
		return fd;
	fprintf(stderr, "migrate-demo: connecting %s: %s\n", o->to,
		strerror(-ret));
	for (k = 0; k < i; k++)
		close(chan[k]);
	close(fd);
	return ret;
}

/**
 * profile_name() - How the source writes, for messages.
 * @o: the command line.
 *
 * Return: a static string.
 */
static const char *profile_name(const struct options *o)
{
	static char buf[96];

	snprintf(buf, sizeof(buf), "%s%s%s",
		 o->save.profile == MS_PROFILE_QEMU ? "QEMU profile"
		 : o->save.compress		    ? "native profile, zlib"
						    : "native profile",
		 o->mapped ? ", mapped file" : "",
		 o->nchan ? ", pages on " : "");
	if (o->nchan)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf),
			 "%u channel%s", o->nchan, o->nchan == 1 ? "" : "s");
	return buf;
}

/**
 * print_machine() - Print the machine's configuration (unless --quiet).
 * @o: the command line.
 * @role: "source", "destination" or "restore".
 */
static void print_machine(const struct options *o, const char *role)
{
	if (o->quiet)
		return;
	printf("%s: %zu MiB of RAM (%zu pages), cpu, timer, nic v%u, "
	       "vfio-user device with %zu KiB",
	       role, o->cfg.ram_size >> 20, o->cfg.ram_size / DEMO_PAGE,
	       o->cfg.nic_version, o->cfg.vdev_size >> 10);
	if (!strcmp(role, "source"))
		printf("; %u %% of the pages zero at the start, the guest "
		       "writes %u pages/s",
		       o->cfg.zero_pct, o->cfg.rate);
	printf("\n");
}

/**
 * print_save_summary() - Print the stop-and-copy line and the summary.
 * @vm: the source machine.
 * @r: the migration's figures.
 * @o: the command line.
 * @where: the --to argument.
 */
static void print_save_summary(const struct demo_vm *vm,
			       const struct demo_result *r,
			       const struct options *o, const char *where)
{
	ms_ram_stats st0, *st = &st0;

	demo_ram_stats(vm, st);
	if (!o->quiet)
		printf("  stop-and-copy: %llu pages and the device state, "
		       "downtime %.1f ms (target %u ms)\n",
		       (unsigned long long)st->round_pages, r->downtime_s * 1e3,
		       o->save.downtime_ms);
	printf("summary: migrated to %s (%s) in %.3f s: %u precopy round%s, "
	       "%llu page records (%llu zero, %llu resent), %.1f MiB "
	       "%s (%.0f MB/s), downtime %.1f ms, guest at step %llu\n",
	       where, profile_name(o), r->total_s, vm->rounds,
	       vm->rounds == 1 ? "" : "s", (unsigned long long)st->pages,
	       (unsigned long long)st->zero_pages,
	       (unsigned long long)st->resent, (double)r->bytes / (1 << 20),
	       o->nchan ? "moved (main stream, and page bytes on the channels)"
	       : o->mapped ? "written (device state, and the pages in place)"
			   : "written",
	       (double)r->bytes / secs_of(r) / 1e6, r->downtime_s * 1e3,
	       (unsigned long long)vm->cpu.pc);
}

/**
 * run_source() - Be the source: migrate to --to, trying --attempts times.
 * @o: the command line.
 *
 * Return: the exit status: 0 migrated, 1 failed.
 */
static int run_source(const struct options *o)
{
	struct demo_vm vm;
	struct demo_result res;
	bool tcp = !strncmp(o->to, "tcp:", 4);
	struct demo_save_opts so = o->save;
	int chan[MS_RAM_MAX_CHANNELS];
	unsigned attempt, i;
	int fd, ret;

	if (!tcp && strncmp(o->to, "file:", 5)) {
		fprintf(stderr,
			"migrate-demo: --to '%s': tcp:HOST:PORT or "
			"file:PATH expected\n",
			o->to);
		return 2;
	}
	if (!tcp && o->nchan) {
		fprintf(stderr,
			"migrate-demo: --channels needs a tcp: "
			"destination (a file: snapshot is one stream)\n");
		return 2;
	}
	if (o->mapped && (tcp || o->save.profile != MS_PROFILE_NATIVE)) {
		fprintf(stderr, "migrate-demo: --mapped needs a file: target "
				"and the native profile (no --qemu-profile)\n");
		return 2;
	}
	ret = demo_vm_init(&vm, &o->cfg);
	if (ret) {
		fprintf(stderr, "migrate-demo: %s\n", strerror(-ret));
		demo_vm_free(&vm);
		return 1;
	}
	vm.verbose = !o->quiet;
	print_machine(o, "source");
	ret = demo_guest_start(&vm);
	for (attempt = 1; !ret && attempt <= o->attempts; attempt++) {
		if (tcp)
			fd = connect_all(o, chan);
		else
			fd = open(o->to + 5,
				  (o->mapped ? O_RDWR : O_WRONLY) | O_CREAT |
					  O_TRUNC,
				  0644);
		if (fd < 0) {
			ret = tcp ? fd : -errno;
			if (!tcp)
				fprintf(stderr, "migrate-demo: %s: %s\n",
					o->to + 5, strerror(errno));
			break;
		}
		if (!o->quiet)
			printf("migration %u to %s (%s), downtime target "
			       "%u ms\n",
			       attempt, o->to, profile_name(o),
			       o->save.downtime_ms);
		so.chan_fds = chan;
		so.nchan = tcp ? o->nchan : 0;
		so.mapped = o->mapped;
		so.threads = o->threads;
		ret = demo_save(&vm, fd, &so, &res);
		for (i = 0; i < so.nchan; i++)
			close(chan[i]);
		if (close(fd) && !ret && !tcp) {
			ret = -errno;
			snprintf(res.errmsg, sizeof(res.errmsg), "close: %s",
				 strerror(errno));
		}
		if (!ret) {
			print_save_summary(&vm, &res, o, o->to);
			break;
		}
		fprintf(stderr,
			"migrate-demo: migration %u failed at offset %llu: "
			"%s: %s\n",
			attempt, (unsigned long long)res.err_offset,
			ms_strerror(ret), res.errmsg);
		fprintf(stderr,
			"migrate-demo: the guest keeps running on the source "
			"(step %llu)\n",
			(unsigned long long)vm.cpu.pc);
		if (attempt < o->attempts) {
			/* A destination that just died may still complete
			 * connections for a moment: let it go first. */
			struct timespec pause = {0, 300 * 1000 * 1000};

			nanosleep(&pause, NULL);
			ret = 0;
		}
	}
	demo_vm_free(&vm);
	return ret ? 1 : 0;
}

/*
 * Destination.
 */

/**
 * struct conn - The destination's end of a migration connection.
 * @fd: the socket.
 * @got: bytes read so far.
 * @drop_after: close the connection after this many bytes (0: never).
 * @kill_after: die after this many bytes (0: never).
 */
struct conn {
	int fd;
	uint64_t got;
	uint64_t drop_after;
	uint64_t kill_after;
};

/**
 * conn_read() - Read op of the destination's connection stream.
 * @opaque: the struct conn.
 * @buf: receives the bytes.
 * @len: the most to read.
 *
 * Return: bytes read, 0 at the end, or a negative errno; -ECONNABORTED
 * once --drop-after is reached (the connection is shut down).  The
 * process dies at --kill-after.
 */
static ssize_t conn_read(void *opaque, void *buf, size_t len)
{
	struct conn *c = opaque;
	uint64_t limit = c->drop_after ? c->drop_after : c->kill_after;
	ssize_t n;

	if (limit) {
		if (c->got >= limit && c->kill_after) {
			fprintf(stderr,
				"migrate-demo: --kill-after %llu: "
				"killing the destination\n",
				(unsigned long long)c->kill_after);
			raise(SIGKILL);
		}
		if (c->got >= limit) {
			fprintf(stderr,
				"migrate-demo: --drop-after %llu: "
				"closing the connection\n",
				(unsigned long long)c->drop_after);
			shutdown(c->fd, SHUT_RDWR);
			return -ECONNABORTED;
		}
		if (len > limit - c->got)
			len = (size_t)(limit - c->got);
	}
	n = read(c->fd, buf, len);
	if (n < 0)
		return -errno;
	c->got += (uint64_t)n;
	return n;
}

static const ms_stream_ops conn_ops = {
	.version = MS_STREAM_OPS_VERSION,
	.read = conn_read,
};

/**
 * struct relay - --drop-channel-after: channel 0 through a pipe.
 * @tcp: the channel's connection, read here.
 * @pipe_w: the write end of the pipe whose read end ms_ram reads.
 * @limit: bytes passed on before the connection is dropped.
 * @thread: the thread that copies.
 * @started: whether @thread runs.
 *
 * A real fault on a channel: after @limit bytes the connection is reset
 * (SO_LINGER 0, then close(): the source's next write fails) and the pipe
 * is closed (ms_ram's reader finds the channel ended early).
 */
struct relay {
	int tcp;
	int pipe_w;
	uint64_t limit;
	pthread_t thread;
	bool started;
};

static void *relay_main(void *opaque)
{
	struct relay *r = opaque;
	struct linger lg = {1, 0};
	uint8_t buf[65536];
	uint64_t got = 0;
	ssize_t n;

	while (got < r->limit) {
		size_t want = sizeof(buf);

		if (want > r->limit - got)
			want = (size_t)(r->limit - got);
		n = read(r->tcp, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || io_all(r->pipe_w, buf, (size_t)n, true))
			break;
		got += (uint64_t)n;
	}
	if (got >= r->limit)
		fprintf(stderr,
			"migrate-demo: --drop-channel-after %llu: resetting "
			"channel 0's connection\n",
			(unsigned long long)r->limit);
	setsockopt(r->tcp, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(r->tcp);
	close(r->pipe_w);
	return NULL;
}

/**
 * relay_start() - Put a relay between channel 0's connection and ms_ram.
 * @r: the relay.
 * @fd: the connection; the relay owns it from now on.
 * @limit: --drop-channel-after.
 *
 * Return: the descriptor ms_ram reads instead, or a negative errno.
 */
static int relay_start(struct relay *r, int fd, uint64_t limit)
{
	int p[2], ret;

	if (pipe(p))
		return -errno;
	r->tcp = fd;
	r->pipe_w = p[1];
	r->limit = limit;
	ret = pthread_create(&r->thread, NULL, relay_main, r);
	if (ret) {
		close(p[0]);
		close(p[1]);
		return -ret;
	}
	r->started = true;
	return p[0];
}

/**
 * relay_stop() - Stop a relay (its reader, @rfd, is closed first).
 * @r: the relay.
 */
static void relay_stop(struct relay *r)
{
	if (!r->started)
		return;
	shutdown(r->tcp, SHUT_RDWR);
	pthread_join(r->thread, NULL);
	r->started = false;
}

/**
 * accept_all() - Accept a migration's main connection and its channels.
 * @lfd: the listening socket.
 * @nchan: the channels this destination expects (--channels).
 * @chan: receives @nchan descriptors, sorted by index.
 *
 * Connections are taken in any order and sorted by their hello.  When
 * the source has fewer channels than @nchan, the missing ones are ends of
 * closed socket pairs, read as empty: ms_ram refuses the source's channel
 * count in the START section before it reads a channel.
 *
 * Return: the main connection, or a negative errno after a message
 * (nothing is left open).
 */
static int accept_all(int lfd, unsigned nchan, int *chan)
{
	uint64_t chan_id[MS_RAM_MAX_CHANNELS], id = 0, hid;
	unsigned i, want = nchan, got = 0, index, count;
	int fd, main_fd = -1, sp[2];

	for (i = 0; i < nchan; i++)
		chan[i] = -1;
	while (main_fd < 0 || got < want) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0 && errno == EINTR)
			continue;
		if (fd < 0) {
			fprintf(stderr, "migrate-demo: accept: %s\n",
				strerror(errno));
			goto fail;
		}
		if (hello_recv(fd, &index, &count, &hid)) {
			fprintf(stderr, "migrate-demo: a connection without "
					"a migrate-demo hello: closed\n");
			close(fd);
			continue;
		}
		if (index == 0 && main_fd < 0) {
			main_fd = fd;
			id = hid;
			want = count < nchan ? count : nchan;
			/* Channels of an older attempt go. */
			for (i = 0; i < nchan; i++) {
				if (chan[i] >= 0 && chan_id[i] != id) {
					close(chan[i]);
					chan[i] = -1;
					got--;
				}
			}
			continue;
		}
		i = index - 1;
		if (index == 0 || i >= nchan || chan[i] >= 0 ||
		    (main_fd >= 0 && hid != id)) {
			close(fd);
			continue;
		}
		chan[i] = fd;
		chan_id[i] = hid;
		got++;
	}
	for (i = 0; i < nchan; i++) {
		if (chan[i] >= 0)
			continue;
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp)) {
			fprintf(stderr, "migrate-demo: socketpair: %s\n",
				strerror(errno));
			goto fail;
		}
		close(sp[1]);
		chan[i] = sp[0];
	}
	return main_fd;
fail:
	fd = -errno;
	for (i = 0; i < nchan; i++)
		if (chan[i] >= 0)
			close(chan[i]);
	if (main_fd >= 0)
		close(main_fd);
	return fd ? fd : -EIO;
}

/**
 * tcp_listen() - Listen on a tcp:HOST:PORT address.
 * @addr: the --listen argument.
 * @port_file: where to write the port, or NULL.
 *
 * Return: the listening socket, or a negative errno after a message.
 */
static int tcp_listen(const char *addr, const char *port_file)
{
	struct addrinfo *ai, *p;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const char *port;
	char pbuf[32];
	int fd = -1, one = 1, ret = EADDRNOTAVAIL;
	FILE *f;

	if (resolve_tcp(addr, AI_PASSIVE, &ai, &port))
		return -EINVAL;
	for (p = ai; p; p = p->ai_next) {
		fd = socket(p->ai_family, p->ai_socktype, p->ai_protocol);
		if (fd < 0) {
			ret = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (!bind(fd, p->ai_addr, p->ai_addrlen) &&
		    !listen(fd, MS_RAM_MAX_CHANNELS + 4))
			break;
		ret = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		fprintf(stderr, "migrate-demo: cannot listen on %s: %s\n", addr,
			strerror(ret));
		return -ret;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) ||
	    getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, pbuf, sizeof(pbuf),
			NI_NUMERICSERV))
		snprintf(pbuf, sizeof(pbuf), "%s", port);
	if (port_file) {
		/* Written whole under a temporary name, then renamed: a
		 * reader never sees a partial port. */
		char tmp[4096];

		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		f = fopen(tmp, "w");
		if (!f || fprintf(f, "%s\n", pbuf) < 0 || fclose(f) ||
		    rename(tmp, port_file)) {
			fprintf(stderr, "migrate-demo: %s: %s\n", port_file,
				strerror(errno));
			close(fd);
			return -EIO;
		}
	}
	return fd;
}

/**
 * send_ack() - Answer the source: "OK" or "ERR why", one line.
 * @fd: the connection.
 * @ret: the load's result.
 * @msg: the load's error message.
 */
static void send_ack(int fd, int ret, const char *msg)
{
	char line[DEMO_ACK_MAX];
	int n;

	if (!ret)
		n = snprintf(line, sizeof(line), "OK\n");
	else
		n = snprintf(line, sizeof(line), "ERR %s\n", msg);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1, line[n - 1] = '\n';
	if (write(fd, line, (size_t)n) < 0) {
		/* The source is gone: it will find out on its own. */
	}
}

/**
 * verify() - Replay the guest up to the received program counter and compare.
 */
static int verify(const struct demo_vm *vm, const struct options *o)
{
	struct demo_vm want;
	char why[128];
	int ret;

	ret = demo_vm_init(&want, &o->cfg);
	if (!ret) {
		demo_vm_step(&want, vm->cpu.pc);
		ret = demo_vm_compare(vm, &want, why, sizeof(why));
	} else {
		snprintf(why, sizeof(why), "%s", strerror(-ret));
	}
	demo_vm_free(&want);
	if (ret) {
		fprintf(stderr,
			"migrate-demo: the destination's state is not the "
			"source's: %s\n",
			why);
		return 1;
	}
	printf("verified: %zu RAM pages, cpu, timer, nic and the vfio-user "
	       "device are identical to the source's at step %llu\n",
	       vm->npages, (unsigned long long)vm->cpu.pc);
	return 0;
}

/**
 * load_failed() - Say why the guest is not started.
 * @r: the load's figures and error.
 * @ret: the load's error.
 */
static void load_failed(const struct demo_result *r, int ret)
{
	fprintf(stderr, "migrate-demo: refusing to start the guest: %s: %s\n",
		ms_strerror(ret), r->errmsg);
}

/**
 * print_load_summary() - Print what a destination loaded.
 * @vm: the loaded machine.
 * @r: the load's figures.
 * @from: where it came from.
 */
static void print_load_summary(const struct demo_vm *vm,
			       const struct demo_result *r, const char *from)
{
	printf("summary: loaded from %s: %.1f MiB in %.3f s (%.0f MB/s); "
	       "guest resumed at step %llu\n",
	       from, (double)r->bytes / (1 << 20), r->total_s,
	       (double)r->bytes / secs_of(r) / 1e6,
	       (unsigned long long)vm->cpu.pc);
}

/**
 * run_listen() - Be the destination: accept up to --accept migrations.
 * @o: the command line.
 *
 * Return: the exit status: 0 loaded and verified, 1 otherwise.
 */
static int run_listen(const struct options *o)
{
	struct demo_vm vm;
	struct demo_result res;
	struct conn c;
	struct relay relay;
	ms_stream *in = NULL;
	int chan[MS_RAM_MAX_CHANNELS];
	unsigned n, i;
	int lfd, ret = -ENOMEM;

	lfd = tcp_listen(o->listen, o->port_file);
	if (lfd < 0)
		return 1;
	print_machine(o, "destination");
	for (n = 1; n <= o->accept; n++) {
		ret = demo_vm_init_blank(&vm, &o->cfg);
		if (ret) {
			fprintf(stderr, "migrate-demo: %s\n", strerror(-ret));
			demo_vm_free(&vm);
			break;
		}
		if (!o->quiet)
			printf("waiting for migration %u on %s\n", n,
			       o->listen);
		fflush(stdout);
		memset(&c, 0, sizeof(c));
		memset(&relay, 0, sizeof(relay));
		c.fd = accept_all(lfd, o->nchan, chan);
		if (c.fd < 0) {
			ret = c.fd;
			demo_vm_free(&vm);
			break;
		}
		c.drop_after = n == 1 ? o->drop_after : 0;
		c.kill_after = n == 1 ? o->kill_after : 0;
		ret = 0;
		if (n == 1 && o->drop_chan_after && o->nchan) {
			ret = relay_start(&relay, chan[0], o->drop_chan_after);
			if (ret >= 0) {
				chan[0] = ret;
				ret = 0;
			}
		}
		if (!ret)
			ret = ms_stream_new_custom(&in, &conn_ops, &c,
						   MS_STREAM_READER,
						   &demo_read_opts);
		if (!ret) {
			ret = demo_load(&vm, in, chan, o->nchan, &res);
			ms_stream_close(in);
		} else {
			snprintf(res.errmsg, sizeof(res.errmsg), "%s",
				 ms_strerror(ret));
		}
		send_ack(c.fd, ret, res.errmsg);
		close(c.fd);
		for (i = 0; i < o->nchan; i++)
			close(chan[i]);
		relay_stop(&relay);
		if (!ret) {
			print_load_summary(&vm, &res, o->listen);
			ret = verify(&vm, o);
			demo_vm_free(&vm);
			close(lfd);
			return ret;
		}
		load_failed(&res, ret);
		demo_vm_free(&vm);
	}
	close(lfd);
	return 1;
}

/**
 * run_restore_mapped() - Restore a mapped snapshot file and verify it.
 * @o: the command line.
 *
 * Return: the exit status: 0 restored and verified, 1 otherwise.
 */
static int run_restore_mapped(const struct options *o)
{
	struct demo_config cfg = o->cfg;
	struct demo_vm vm;
	struct demo_result res;
	double t0;
	int fd, ret;

	/* The pages come from the file: a blank RAM that was never touched
	 * (an mmap-mode restore maps over it). */
	cfg.untouched_ram = true;
	ret = demo_vm_init_blank(&vm, &cfg);
	if (ret) {
		fprintf(stderr, "migrate-demo: %s\n", strerror(-ret));
		demo_vm_free(&vm);
		return 1;
	}
	print_machine(o, "restore");
	t0 = demo_now();
	fd = open(o->from + 5, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "migrate-demo: %s: %s\n", o->from + 5,
			strerror(errno));
		demo_vm_free(&vm);
		return 1;
	}
	ret = demo_load_mapped(&vm, fd, o->restore, o->threads, &res);
	res.total_s = demo_now() - t0;
	close(fd);
	if (!ret) {
		printf("guest may run after %.1f ms (mapped restore, %s mode: "
		       "RAM %.1f ms, device state %.1f ms)\n",
		       res.total_s * 1e3,
		       o->restore == MS_RAM_RESTORE_MMAP ? "mmap" : "read",
		       res.restore_s * 1e3,
		       (res.total_s - res.restore_s) * 1e3);
		print_load_summary(&vm, &res, o->from);
		ret = verify(&vm, o);
	} else {
		load_failed(&res, ret);
		ret = 1;
	}
	demo_vm_free(&vm);
	return ret;
}

/**
 * run_restore() - Restore a snapshot (--from) and verify it.
 * @o: the command line.
 *
 * Return: the exit status: 0, 1 or 2.
 */
static int run_restore(const struct options *o)
{
	struct demo_vm vm;
	struct demo_result res;
	ms_stream *in = NULL;
	int fd, ret;

	if (o->nchan) {
		fprintf(stderr, "migrate-demo: --channels needs --to or "
				"--listen tcp: (a file: snapshot is one "
				"stream)\n");
		return 2;
	}
	if (strncmp(o->from, "file:", 5)) {
		fprintf(stderr,
			"migrate-demo: --from '%s': file:PATH "
			"expected\n",
			o->from);
		return 2;
	}
	if (o->mapped)
		return run_restore_mapped(o);
	fd = open(o->from + 5, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "migrate-demo: %s: %s\n", o->from + 5,
			strerror(errno));
		return 1;
	}
	ret = demo_vm_init_blank(&vm, &o->cfg);
	if (!ret)
		ret = ms_stream_new_fd(&in, fd, MS_STREAM_READER, MS_FD_OWN,
				       &demo_read_opts);
	if (ret) {
		fprintf(stderr, "migrate-demo: %s\n", strerror(-ret));
		close(fd);
		demo_vm_free(&vm);
		return 1;
	}
	print_machine(o, "restore");
	ret = demo_load(&vm, in, NULL, 0, &res);
	ms_stream_close(in);
	if (!ret) {
		print_load_summary(&vm, &res, o->from);
		ret = verify(&vm, o);
	} else {
		load_failed(&res, ret);
		ret = 1;
	}
	demo_vm_free(&vm);
	return ret;
}

/*
 * Command line.
 */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: migrate-demo --to tcp:HOST:PORT|file:PATH [options]\n"
		"       migrate-demo --listen tcp:HOST:PORT [options]\n"
		"       migrate-demo --from file:PATH [options]\n"
		"\n"
		"Live-migrates a small emulated machine (RAM written by a "
		"guest thread,\n"
		"a CPU, a timer, a NIC and a device behind the vfio-user "
		"adapter) with\n"
		"libmigstream: the source sends precopy rounds, then stops "
		"the guest for\n"
		"stop-and-copy; the destination loads and checks every byte "
		"against\n"
		"the source's final state.  Both sides need the same machine "
		"options.\n"
		"\n"
		"  --to tcp:HOST:PORT   migrate to a destination (source)\n"
		"  --to file:PATH       write a snapshot\n"
		"  --listen tcp:HOST:PORT  wait for a migration "
		"(destination; port 0: any)\n"
		"  --from file:PATH     restore a snapshot\n"
		"  --qemu-profile       write QEMU's stream grammar (default: "
		"native)\n"
		"  --compress           zlib on every native chunk\n"
		"  --channels N         RAM pages over N more TCP connections, "
		"one thread\n"
		"                       each (0 to %u, default 0; both sides "
		"the same)\n"
		"  --downtime-ms N      downtime target (default 100)\n"
		"  --max-rounds N       precopy rounds at most (default %d)\n"
		"  --ram SIZE           RAM size (default 256M; k, M, G)\n"
		"  --vdev-size SIZE     vfio-user device memory (default "
		"1M)\n"
		"  --zero-pct N         pages that start as zeros, in %% "
		"(default 50)\n"
		"  --dirty-rate N       guest page writes per second "
		"(default %u; 0: idle)\n"
		"  --seed N             seed of the contents (default 1)\n"
		"  --nic-version N      NIC version this build saves and "
		"loads (1 or 2)\n"
		"  --attempts N         source: migrations to try (default "
		"1)\n"
		"  --accept N           destination: migrations to accept "
		"(default 1)\n"
		"  --port-file PATH     destination: write the port there\n"
		"  --drop-after BYTES   destination: close the first "
		"connection there\n"
		"  --kill-after BYTES   destination: die by SIGKILL there\n"
		"  --drop-channel-after BYTES  destination: reset the first "
		"migration's\n"
		"                       channel 0 connection there\n"
		"  --timeout-s N        destination, restore: give up after N "
		"seconds\n"
		"  --mapped             --to/--from file: a mapped snapshot "
		"file (pages at\n"
		"                       fixed places, native profile only)\n"
		"  --restore mmap|read  mapped restore: map the pages in "
		"(default) or read\n"
		"                       them and check every page's CRC\n"
		"  --threads N          mapped save or read-mode restore: "
		"threads (1 to %u)\n"
		"  --min-rounds N       precopy rounds before stop-and-copy "
		"(default 0)\n"
		"  --kill-in-round N    source: die by SIGKILL once precopy "
		"round N is sent\n"
		"  --quiet              print only the summary\n"
		"  --help               this text\n"
		"\n"
		"Exit status: 0 done, 1 the migration failed, 2 usage.\n",
		MS_RAM_MAX_CHANNELS, DEMO_MAX_ROUNDS, DEMO_DEFAULT_RATE,
		MS_RAM_MAX_CHANNELS);
}

/**
 * bad_value() - Report a bad option value.
 * @opt: the option's name.
 * @v: the value given.
 * @want: what was expected.
 *
 * Return: 2, the usage exit status.
 */
static int bad_value(const char *opt, const char *v, const char *want)
{
	fprintf(stderr, "migrate-demo: --%s '%s': %s expected\n", opt, v, want);
	return 2;
}

/**
 * main() - Run the source, the destination or a restore.
 * @argc: argument count.
 * @argv: arguments.
 *
 * Return: 0 done, 1 the migration failed, 2 usage.
 */
int main(int argc, char **argv)
{
	enum {
		OPT_TO = 256,
		OPT_LISTEN,
		OPT_FROM,
		OPT_QEMU,
		OPT_COMPRESS,
		OPT_DOWNTIME,
		OPT_ROUNDS,
		OPT_RAM,
		OPT_VDEV,
		OPT_ZERO,
		OPT_RATE,
		OPT_SEED,
		OPT_NIC,
		OPT_ATTEMPTS,
		OPT_ACCEPT,
		OPT_PORT_FILE,
		OPT_DROP,
		OPT_KILL,
		OPT_DROP_CHAN,
		OPT_CHANNELS,
		OPT_TIMEOUT,
		OPT_MAPPED,
		OPT_RESTORE,
		OPT_THREADS,
		OPT_MIN_ROUNDS,
		OPT_KILL_ROUND,
		OPT_QUIET,
		OPT_HELP,
	};
	static const struct option longopts[] = {
		{"to", required_argument, NULL, OPT_TO},
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"from", required_argument, NULL, OPT_FROM},
		{"qemu-profile", no_argument, NULL, OPT_QEMU},
		{"compress", no_argument, NULL, OPT_COMPRESS},
		{"downtime-ms", required_argument, NULL, OPT_DOWNTIME},
		{"max-rounds", required_argument, NULL, OPT_ROUNDS},
		{"ram", required_argument, NULL, OPT_RAM},
		{"vdev-size", required_argument, NULL, OPT_VDEV},
		{"zero-pct", required_argument, NULL, OPT_ZERO},
		{"dirty-rate", required_argument, NULL, OPT_RATE},
		{"seed", required_argument, NULL, OPT_SEED},
		{"nic-version", required_argument, NULL, OPT_NIC},
		{"attempts", required_argument, NULL, OPT_ATTEMPTS},
		{"accept", required_argument, NULL, OPT_ACCEPT},
		{"port-file", required_argument, NULL, OPT_PORT_FILE},
		{"drop-after", required_argument, NULL, OPT_DROP},
		{"kill-after", required_argument, NULL, OPT_KILL},
		{"drop-channel-after", required_argument, NULL, OPT_DROP_CHAN},
		{"channels", required_argument, NULL, OPT_CHANNELS},
		{"timeout-s", required_argument, NULL, OPT_TIMEOUT},
		{"mapped", no_argument, NULL, OPT_MAPPED},
		{"restore", required_argument, NULL, OPT_RESTORE},
		{"threads", required_argument, NULL, OPT_THREADS},
		{"min-rounds", required_argument, NULL, OPT_MIN_ROUNDS},
		{"kill-in-round", required_argument, NULL, OPT_KILL_ROUND},
		{"quiet", no_argument, NULL, OPT_QUIET},
		{"help", no_argument, NULL, OPT_HELP},
		{NULL, 0, NULL, 0},
	};
	struct options o = {
		.cfg = {.ram_size = 256u << 20,
			.vdev_size = DEMO_DEFAULT_VDEV,
			.seed = 1,
			.zero_pct = 50,
			.rate = DEMO_DEFAULT_RATE,
			.nic_version = DEMO_NIC_VERSION},
		.save = {.profile = MS_PROFILE_NATIVE,
			 .downtime_ms = 100,
			 .max_rounds = DEMO_MAX_ROUNDS,
			 .wait_ack = true},
		.attempts = 1,
		.accept = 1,
	};
	uint64_t v;
	int c, modes;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		v = optarg ? parse_size(optarg) : 0;
		switch (c) {
		case OPT_TO:
			o.to = optarg;
			break;
		case OPT_LISTEN:
			o.listen = optarg;
			break;
		case OPT_FROM:
			o.from = optarg;
			break;
		case OPT_QEMU:
			o.save.profile = MS_PROFILE_QEMU;
			break;
		case OPT_COMPRESS:
			o.save.compress = true;
			break;
		case OPT_DOWNTIME:
			if (!v || v > 3600000)
				return bad_value("downtime-ms", optarg,
						 "1 to 3600000");
			o.save.downtime_ms = (unsigned)v;
			break;
		case OPT_ROUNDS:
			if (!v || v > 10000)
				return bad_value("max-rounds", optarg,
						 "1 to 10000");
			o.save.max_rounds = (unsigned)v;
			break;
		case OPT_RAM:
			if (v < DEMO_PAGE || v % DEMO_PAGE ||
			    v > ((uint64_t)64 << 30))
				return bad_value("ram", optarg,
						 "a multiple of 4k up to 64G");
			o.cfg.ram_size = (size_t)v;
			break;
		case OPT_VDEV:
			if (v < DEMO_PAGE || v > (1u << 30))
				return bad_value("vdev-size", optarg,
						 "4k to 1G");
			o.cfg.vdev_size = (size_t)v;
			break;
		case OPT_ZERO:
			if (v > 100 || (!v && strcmp(optarg, "0")))
				return bad_value("zero-pct", optarg,
						 "0 to 100");
			o.cfg.zero_pct = (unsigned)v;
			break;
		case OPT_RATE:
			if (v > 10000000 || (!v && strcmp(optarg, "0")))
				return bad_value("dirty-rate", optarg,
						 "0 to 10000000");
			o.cfg.rate = (unsigned)v;
			break;
		case OPT_SEED:
			if (!v && strcmp(optarg, "0"))
				return bad_value("seed", optarg, "a number");
			o.cfg.seed = v;
			break;
		case OPT_NIC:
			if (v != 1 && v != 2)
				return bad_value("nic-version", optarg,
						 "1 or 2");
			o.cfg.nic_version = (uint32_t)v;
			break;
		case OPT_ATTEMPTS:
			if (!v || v > 100)
				return bad_value("attempts", optarg,
						 "1 to 100");
			o.attempts = (unsigned)v;
			break;
		case OPT_ACCEPT:
			if (!v || v > 100)
				return bad_value("accept", optarg, "1 to 100");
			o.accept = (unsigned)v;
			break;
		case OPT_PORT_FILE:
			o.port_file = optarg;
			break;
		case OPT_DROP:
			if (!v)
				return bad_value("drop-after", optarg,
						 "a byte count");
			o.drop_after = v;
			break;
		case OPT_KILL:
			if (!v)
				return bad_value("kill-after", optarg,
						 "a byte count");
			o.kill_after = v;
			break;
		case OPT_DROP_CHAN:
			if (!v)
				return bad_value("drop-channel-after", optarg,
						 "a byte count");
			o.drop_chan_after = v;
			break;
		case OPT_CHANNELS:
			if (v > MS_RAM_MAX_CHANNELS ||
			    (!v && strcmp(optarg, "0")))
				return bad_value("channels", optarg, "0 to 64");
			o.nchan = (unsigned)v;
			break;
		case OPT_TIMEOUT:
			if (!v || v > 86400)
				return bad_value("timeout-s", optarg,
						 "1 to 86400");
			o.timeout_s = (unsigned)v;
			break;
		case OPT_MAPPED:
			o.mapped = true;
			break;
		case OPT_RESTORE:
			if (!strcmp(optarg, "mmap"))
				o.restore = MS_RAM_RESTORE_MMAP;
			else if (!strcmp(optarg, "read"))
				o.restore = MS_RAM_RESTORE_READ;
			else
				return bad_value("restore", optarg,
						 "mmap or read");
			break;
		case OPT_THREADS:
			if (!v || v > MS_RAM_MAX_CHANNELS)
				return bad_value("threads", optarg, "1 to 64");
			o.threads = (unsigned)v;
			break;
		case OPT_MIN_ROUNDS:
			if (v > 10000 || (!v && strcmp(optarg, "0")))
				return bad_value("min-rounds", optarg,
						 "0 to 10000");
			o.save.min_rounds = (unsigned)v;
			break;
		case OPT_KILL_ROUND:
			if (!v || v > 10000)
				return bad_value("kill-in-round", optarg,
						 "1 to 10000");
			o.save.kill_round = (unsigned)v;
			break;
		case OPT_QUIET:
			o.quiet = true;
			break;
		case OPT_HELP:
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	modes = !!o.to + !!o.listen + !!o.from;
	if (optind < argc || modes != 1) {
		fprintf(stderr, "migrate-demo: one of --to, --listen and "
				"--from expected\n");
		usage(stderr);
		return 2;
	}
	if (o.mapped && (o.listen || o.nchan || o.save.compress ||
			 o.save.profile != MS_PROFILE_NATIVE)) {
		fprintf(stderr, "migrate-demo: --mapped needs --to or --from "
				"file: with the native profile (no --listen, "
				"--channels, --qemu-profile or --compress)\n");
		return 2;
	}
	if (o.save.kill_round && !o.to) {
		fprintf(stderr, "migrate-demo: --kill-in-round needs --to (a "
				"source)\n");
		return 2;
	}
	if (o.save.compress && o.save.profile == MS_PROFILE_QEMU) {
		fprintf(stderr, "migrate-demo: --compress needs the native "
				"profile\n");
		return 2;
	}
	/* A closed connection must give EPIPE, not kill the process. */
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (o.to) {
		o.save.wait_ack = !strncmp(o.to, "tcp:", 4);
		return run_source(&o);
	}
	/* A watchdog for scripts: a destination never waits forever. */
	if (o.timeout_s && !o.to)
		alarm(o.timeout_s);
	if (o.listen)
		return run_listen(&o);
	return run_restore(&o);
}
