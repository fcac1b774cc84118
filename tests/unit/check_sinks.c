/* SPDX-License-Identifier: MIT */
/*
 * The file-descriptor, iovec and custom sinks over real files, pipes,
 * sockets and processes: round trips, short transfers, EAGAIN and poll(),
 * EINTR, end of data, EPIPE without SIGPIPE, ENOSPC, timeouts, descriptor
 * ownership, zero-copy iovecs and user-defined transports.
 *
 * Every test cleans up after itself (descriptors, children, signal
 * handlers), so that the program also passes with CK_FORK=no under
 * valgrind.  Children never call Check: they report the line of their
 * first failed check through a pipe and leave with _exit().
 */
#include "config.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ms-test.h"

/*
 * Small helpers.
 */

static ms_stream_opts opts_of(size_t buffer_size, int timeout_ms)
{
	ms_stream_opts o = {MS_STREAM_OPTS_VERSION, NULL, buffer_size, 0,
			    timeout_ms};

	return o;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (long)(t1.tv_sec - t0->tv_sec) * 1000 +
	       (t1.tv_nsec - t0->tv_nsec) / 1000000L;
}

static void set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	ck_assert_int_ge(fl, 0);
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	ck_assert_int_eq(fcntl(fd, F_SETFL, fl), 0);
}

static bool is_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && (fl & O_NONBLOCK);
}

static bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static bool fd_is_closed(int fd)
{
	return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

/* A fresh, already unlinked temporary file. */
static int temp_fd(void)
{
	const char *dir = getenv("TMPDIR");
	char path[512];
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
	snprintf(path, sizeof(path), "%s/check_sinks.XXXXXX", dir);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(unlink(path), 0);
	return fd;
}

/* The script's bytes, as a memory writer makes them; free() the result. */
static uint8_t *script_bytes(const struct ms_test_script *sc, size_t *len)
{
	const uint8_t *data;
	uint8_t *copy;
	ms_stream *w;

	ck_assert_int_eq(ms_stream_new_mem(&w, 0, NULL), 0);
	ck_assert_int_eq(ms_test_script_write(w, sc), 0);
	ck_assert_int_eq(ms_stream_mem_view(w, &data, len), 0);
	ck_assert_uint_eq(*len, ms_test_script_size());
	copy = malloc(*len);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, data, *len);
	ck_assert_int_eq(ms_stream_close(w), 0);
	return copy;
}

/* Sum of the script's ms_put_buffer_async() sizes (all zero-copy). */
static size_t script_async_bytes(void)
{
	size_t n = 0;
	int i;

	for (i = 5; i < MS_TEST_SCRIPT_LEN; i += 8)
		n += 4096 + (size_t)i * 13;
	return n;
}

/*
 * Raw I/O for the peers of the streams under test: complete transfers,
 * retry EINTR and wait on EAGAIN.  They return 0 (or a count) or -errno.
 */
static int raw_write(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = {fd, POLLOUT, 0};

			poll(&pfd, 1, -1);
			continue;
		}
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads up to @len bytes; fewer only at the end of the data. */
static ssize_t raw_read(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, p + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = {fd, POLLIN, 0};

			poll(&pfd, 1, -1);
			continue;
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/*
 * Channels: a pipe or an AF_UNIX stream socketpair.  fds[0] is the end
 * that is read, fds[1] the end that is written.
 */
enum channel_kind { CH_PIPE, CH_SOCKET, CH_KINDS };

static const char *const channel_names[CH_KINDS] = {"pipe", "socketpair"};

/* Without Check, for children. */
static int channel_make(int kind, int fds[2])
{
	if (kind == CH_PIPE)
		return pipe(fds);
	return socketpair(AF_UNIX, SOCK_STREAM, 0, fds);
}

static void channel_open(int kind, int fds[2])
{
	ck_assert_msg(channel_make(kind, fds) == 0, "%s: %s",
		      channel_names[kind], strerror(errno));
}

/* Make the channel hold only a few kilobytes, so that writers wait. */
static void channel_shrink(int kind, const int fds[2])
{
	int sz = 4096;

	if (kind == CH_PIPE) {
		ck_assert_int_eq(fcntl(fds[1], F_SETPIPE_SZ, sz), sz);
		return;
	}
	ck_assert_int_eq(
		setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)), 0);
	ck_assert_int_eq(
		setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)), 0);
}

/* Bytes waiting to be read at the read end. */
static int channel_queued(int fd)
{
	int n = -1;

	ck_assert_int_eq(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

/*
 * Child processes.  A child function returns 0, or the line of its first
 * failed CHILD_CHECK(); child_finish() turns that into a Check failure.
 */
#define CHILD_CHECK(cond)                                                      \
	do {                                                                   \
		if (!(cond))                                                   \
			return __LINE__;                                       \
	} while (0)

struct child {
	pid_t pid;
	int report; /* read end of the child's report pipe */
};

static void child_start(struct child *c, int (*fn)(void *), void *arg)
{
	int rep[2];
	pid_t pid;

	ck_assert_int_eq(pipe(rep), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		int line;

		close(rep[0]);
		/* A watchdog, away from Check's own SIGALRM handler. */
		signal(SIGALRM, SIG_DFL);
		alarm(60);
		line = fn(arg);
		if (write(rep[1], &line, sizeof(line)) != sizeof(line))
			_exit(2);
		_exit(line ? 1 : 0);
	}
	close(rep[1]);
	c->pid = pid;
	c->report = rep[0];
}

static void child_finish(struct child *c)
{
	int line = -1, status = 0;
	ssize_t n;
	pid_t r;

	n = raw_read(c->report, &line, sizeof(line));
	close(c->report);
	do {
		r = waitpid(c->pid, &status, 0);
	} while (r < 0 && errno == EINTR);
	ck_assert_int_eq(r, c->pid);
	ck_assert_msg(!WIFSIGNALED(status), "child killed by signal %d (%s)",
		      WTERMSIG(status), strsignal(WTERMSIG(status)));
	ck_assert_msg(n == sizeof(line), "child reported nothing");
	ck_assert_msg(line == 0, "child check failed at line %d", line);
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}

/* A handler for SIGUSR1 installed without SA_RESTART. */
static volatile sig_atomic_t usr1_count;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_count++;
}

static void usr1_install(struct sigaction *old)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;
	usr1_count = 0;
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, old), 0);
}

/*
 * File descriptors: files, /dev/null, /dev/full, ownership, arguments.
 */

/* Loop test: _i is 0 for a blocking descriptor, 1 for O_NONBLOCK. */
START_TEST(test_sinks_fd_file_roundtrip)
{
	struct ms_test_script sc;
	size_t size = ms_test_script_size();
	struct stat st;
	ms_stream_stats stats;
	ms_stream *w, *r;
	uint8_t v = 99;
	int fd = temp_fd();

	if (_i)
		set_nonblock(fd, true);
	ms_test_script_init(&sc);
	ck_assert_int_eq(ms_stream_new_fd(&w, fd, MS_STREAM_WRITER, 0, NULL),
			 0);
	ck_assert_int_eq(ms_test_script_write(w, &sc), 0);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ms_stream_get_stats(w, &stats);
	ck_assert_uint_eq(stats.bytes, size);
	ck_assert_uint_eq(stats.bytes_zero_copy, script_async_bytes());
	ck_assert_uint_eq(stats.bytes_copied, size - script_async_bytes());
	ck_assert_int_eq(ms_stream_close(w), 0);
	ck_assert(fd_is_open(fd));
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, (off_t)size);

	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(ms_stream_new_fd(&r, fd, MS_STREAM_READER, 0, NULL),
			 0);
	ms_test_script_read(r, &sc);
	ck_assert_uint_eq(ms_stream_tell(r), size);
	ck_assert(ms_stream_is_eof(r));
	ck_assert_int_eq(ms_get_u8(r, &v), -ENODATA);
	ck_assert_uint_eq(v, 0);
	ck_assert_uint_eq(ms_stream_error_offset(r), size);
	ck_assert_int_eq(ms_stream_close(r), -ENODATA);
	ck_assert_int_eq(is_nonblock(fd), _i == 1);
	ck_assert_int_eq(close(fd), 0);
}
END_TEST

START_TEST(test_sinks_fd_dev_null)
{
	struct ms_test_script sc;
	ms_stream_stats stats;
	ms_stream *w, *r;
	uint32_t v = 99;
	int fd;

	ms_test_script_init(&sc);
	fd = open("/dev/null", O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(
		ms_stream_new_fd(&w, fd, MS_STREAM_WRITER, MS_FD_OWN, NULL), 0);
	ck_assert_int_eq(ms_test_script_write(w, &sc), 0);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ms_stream_get_stats(w, &stats);
	ck_assert_uint_eq(stats.bytes, ms_test_script_size());
	/*
	 * /dev/null takes every writev whole: one call per flush, and the
	 * copied bytes fill the 32 KiB buffer at least once before the last.
	 */
	ck_assert_uint_ge(stats.sink_calls,
			  stats.bytes_copied / MS_STREAM_DEFAULT_BUFFER_SIZE +
				  1);
	ck_assert_uint_le(stats.sink_calls, 10);
	ck_assert_int_eq(ms_stream_close(w), 0);
	ck_assert(fd_is_closed(fd));

	fd = open("/dev/null", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(
		ms_stream_new_fd(&r, fd, MS_STREAM_READER, MS_FD_OWN, NULL), 0);
	ck_assert(ms_stream_is_eof(r));
	ck_assert_int_eq(ms_get_be32(r, &v), -ENODATA);
	ck_assert_uint_eq(v, 0);
	ck_assert_uint_eq(ms_stream_error_offset(r), 0);
	ck_assert_ptr_nonnull(strstr(ms_stream_errmsg(r), "end of stream"));
	ck_assert(!ms_stream_is_eof(r));
	ck_assert_int_eq(ms_stream_close(r), -ENODATA);
	ck_assert(fd_is_closed(fd));
}
END_TEST

/* A reader gets exactly the data, then the end, then -ENODATA. */
START_TEST(test_sinks_fd_eof_exact)
{
	ms_stream_opts o = opts_of(16, 0);
	uint8_t data[100], buf[200];
	const uint8_t *p;
	uint32_t v32 = 99;
	ms_stream *r;
	size_t i;
	int fd = temp_fd();

	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i + 1);
	ck_assert_int_eq(raw_write(fd, data, sizeof(data)), 0);

	/* Gets of every size up to the last byte, then a get past it. */
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(ms_stream_new_fd(&r, fd, MS_STREAM_READER, 0, &o), 0);
	ck_assert_int_eq(ms_get_buffer(r, buf, 40), 0);
	ck_assert_mem_eq(buf, data, 40);
	ck_assert_int_eq(ms_get_buffer(r, buf, 58), 0);
	ck_assert_mem_eq(buf, data + 40, 58);
	ck_assert(!ms_stream_is_eof(r));
	ck_assert_int_eq(ms_peek(r, &p, 16), 2);
	ck_assert_uint_eq(p[0], 99);
	ck_assert_uint_eq(ms_stream_available(r), 2);
	ck_assert_int_eq(ms_get_be32(r, &v32), -ENODATA);
	ck_assert_uint_eq(v32, 0);
	ck_assert_uint_eq(ms_stream_error_offset(r), 98);
	ck_assert_str_eq(ms_stream_errmsg(r),
			 "offset 0x62: end of stream: 4 bytes needed, 2 left");
	ck_assert_uint_eq(ms_stream_available(r), 0);
	ms_stream_close(r);

	/* Exactly all of it, then is_eof, then a get fails at the end. */
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(ms_stream_new_fd(&r, fd, MS_STREAM_READER, 0, &o), 0);
	ck_assert_int_eq(ms_get_buffer(r, buf, 100), 0);
	ck_assert_mem_eq(buf, data, 100);
	ck_assert(ms_stream_is_eof(r));
	ck_assert_int_eq(ms_peek(r, &p, 16), 0);
	ck_assert_int_eq(ms_get_buffer(r, buf, 1), -ENODATA);
	ck_assert_uint_eq(ms_stream_error_offset(r), 100);
	ms_stream_close(r);

	/* A large get (read straight into the caller's memory) past it. */
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(ms_stream_new_fd(&r, fd, MS_STREAM_READER, 0, &o), 0);
	ck_assert_int_eq(ms_get_be32(r, &v32), 0);
	ck_assert_uint_eq(v32, 0x01020304);
	memset(buf, 0xee, sizeof(buf));
	ck_assert_int_eq(ms_get_buffer(r, buf, 150), -ENODATA);
	ck_assert_uint_eq(ms_stream_error_offset(r), 4);
	for (i = 0; i < 150; i++)
		ck_assert_uint_eq(buf[i], 0);
	ck_assert_uint_eq(buf[150], 0xee);
	ms_stream_close(r);

	/* A skip past it. */
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(ms_stream_new_fd(&r, fd, MS_STREAM_READER, 0, &o), 0);
	ck_assert_int_eq(ms_skip(r, 60), 0);
	ck_assert_int_eq(ms_skip(r, 41), -ENODATA);
	ck_assert_uint_eq(ms_stream_error_offset(r), 60);
	ms_stream_close(r);
	ck_assert_int_eq(close(fd), 0);
}
END_TEST

/* A pipe's writer sends @arg bytes of a pattern and closes. */
struct eof_arg {
	int fds[2];
	size_t len;
};

static int eof_writer(void *p)
{
	struct eof_arg *a = p;
	uint8_t buf[3000];

	close(a->fds[0]);
	ms_test_fill(buf, a->len, 3);
	CHILD_CHECK(raw_write(a->fds[1], buf, a->len / 2) == 0);
	sleep_ms(20);
	CHILD_CHECK(raw_write(a->fds[1], buf + a->len / 2,
			      a->len - a->len / 2) == 0);
	close(a->fds[1]);
	return 0;
}

/* Loop test over the channel kinds. */
START_TEST(test_sinks_fd_eof_over_channel)
{
	struct eof_arg a = {{-1, -1}, 3000};
	uint8_t want[3000], got[3000];
	struct child c;
	ms_stream *r;
	uint16_t v = 99;

	channel_open(_i, a.fds);
	child_start(&c, eof_writer, &a);
	close(a.fds[1]);
	ms_test_fill(want, sizeof(want), 3);
	ck_assert_int_eq(ms_stream_new_fd(&r, a.fds[0], MS_STREAM_READER,
					  MS_FD_OWN, NULL),
			 0);
	ck_assert_int_eq(ms_get_buffer(r, got, sizeof(got)), 0);
	ck_assert_mem_eq(got, want, sizeof(got));
	ck_assert(ms_stream_is_eof(r));
	ck_assert_int_eq(ms_get_be16(r, &v), -ENODATA);
	ck_assert_uint_eq(v, 0);
	ck_assert_uint_eq(ms_stream_error_offset(r), 3000);
	ck_assert_int_eq(ms_stream_close(r), -ENODATA);
	ck_assert(fd_is_closed(a.fds[0]));
	child_finish(&c);
}
END_TEST

START_TEST(test_sinks_fd_enospc_dev_full)
{
	ms_stream_opts o = opts_of(16, 0);
	uint8_t buf[100];
	ms_stream *w;
	int fd, full;

	memset(buf, 7, sizeof(buf));
	full = open("/dev/full", O_WRONLY);
	ck_assert_int_ge(full, 0);

	/* The first flush fails at offset 0. */
	ck_assert_int_eq(ms_stream_new_fd(&w, full, MS_STREAM_WRITER, 0, NULL),
			 0);
	ck_assert_int_eq(ms_put_be64(w, 1), 0);
	ck_assert_int_eq(ms_stream_flush(w), -ENOSPC);
	ck_assert_uint_eq(ms_stream_error_offset(w), 0);
	ck_assert_uint_eq(ms_stream_tell(w), 8);
	ck_assert_int_eq(ms_put_u8(w, 1), -ENOSPC);
	ck_assert_uint_eq(ms_stream_tell(w), 8);
	ck_assert_ptr_nonnull(strstr(ms_stream_errmsg(w), "write error"));
	ck_assert_int_eq(ms_stream_close(w), -ENOSPC);

	/* A put that fills the buffer fails through its internal flush. */
	ck_assert_int_eq(ms_stream_new_fd(&w, full, MS_STREAM_WRITER, 0, &o),
			 0);
	ck_assert_int_eq(ms_put_buffer(w, buf, sizeof(buf)), -ENOSPC);
	ck_assert_uint_eq(ms_stream_error_offset(w), 0);
	ck_assert_int_eq(ms_stream_close(w), -ENOSPC);

	/* Nothing flushed: close reports the error of its final flush. */
	ck_assert_int_eq(ms_stream_new_fd(&w, full, MS_STREAM_WRITER, 0, NULL),
			 0);
	ck_assert_int_eq(ms_put_buffer(w, buf, 10), 0);
	ck_assert_int_eq(ms_stream_close(w), -ENOSPC);

	/*
	 * Write and flush into /dev/null, then turn the same descriptor
	 * into /dev/full: the error is at the first byte not taken.
	 */
	fd = open("/dev/null", O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ms_stream_new_fd(&w, fd, MS_STREAM_WRITER, 0, &o), 0);
	ck_assert_int_eq(ms_put_buffer(w, buf, 50), 0);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ck_assert_int_eq(dup2(full, fd), fd);
	ck_assert_int_eq(ms_put_buffer(w, buf, 5), 0);
	ck_assert_int_eq(ms_stream_flush(w), -ENOSPC);
	ck_assert_uint_eq(ms_stream_error_offset(w), 50);
	ck_assert_uint_eq(ms_stream_tell(w), 55);
	ck_assert_int_eq(ms_stream_close(w), -ENOSPC);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(close(full), 0);
}
END_TEST

START_TEST(test_sinks_fd_own_closes)
{
	ms_stream_opts bad = opts_of(0, 0);
	ms_stream *s;
	int fds[2];

	ck_assert_int_eq(pipe(fds), 0);
	/* Without MS_FD_OWN both descriptors stay open. */
	ck_assert_int_eq(
		ms_stream_new_fd(&s, fds[0], MS_STREAM_READER, 0, NULL), 0);
	ck_assert_int_eq(ms_stream_close(s), 0);
	ck_assert(fd_is_open(fds[0]));
	ck_assert_int_eq(
		ms_stream_new_fd(&s, fds[1], MS_STREAM_WRITER, 0, NULL), 0);
	ck_assert_int_eq(ms_put_be32(s, 0xabcdef01), 0);
	ck_assert_int_eq(ms_stream_close(s), 0);
	ck_assert(fd_is_open(fds[1]));
	ck_assert_int_eq(channel_queued(fds[0]), 4);

	/* A constructor that fails leaves even an owned descriptor open. */
	bad.version = 0;
	s = (ms_stream *)0x1;
	ck_assert_int_eq(
		ms_stream_new_fd(&s, fds[1], MS_STREAM_WRITER, MS_FD_OWN, &bad),
		-EINVAL);
	ck_assert_ptr_eq(s, (ms_stream *)0x1);
	ck_assert(fd_is_open(fds[1]));

	/* With MS_FD_OWN, close() flushes and then closes each end. */
	ck_assert_int_eq(
		ms_stream_new_fd(&s, fds[1], MS_STREAM_WRITER, MS_FD_OWN, NULL),
		0);
	ck_assert_int_eq(ms_put_be32(s, 0x02030405), 0);
	ck_assert_int_eq(ms_stream_close(s), 0);
	ck_assert(fd_is_closed(fds[1]));
	ck_assert_int_eq(
		ms_stream_new_fd(&s, fds[0], MS_STREAM_READER, MS_FD_OWN, NULL),
		0);
	{
		uint32_t a = 0, b = 0;

		ck_assert_int_eq(ms_get_be32(s, &a), 0);
		ck_assert_int_eq(ms_get_be32(s, &b), 0);
		ck_assert_uint_eq(a, 0xabcdef01);
		ck_assert_uint_eq(b, 0x02030405);
		ck_assert(ms_stream_is_eof(s));
	}
	ck_assert_int_eq(ms_stream_close(s), 0);
	ck_assert(fd_is_closed(fds[0]));
}
END_TEST

/*
 * ms_stream_new_file(): a scratch directory per test, removed at the end.
 */
struct scratch {
	char dir[512];
	char path[600];
};

static void scratch_init(struct scratch *sc)
{
	const char *tmp = getenv("TMPDIR");

	if (!tmp || !*tmp)
		tmp = "/tmp";
	snprintf(sc->dir, sizeof(sc->dir), "%s/check_sinks.XXXXXX", tmp);
	ck_assert_ptr_nonnull(mkdtemp(sc->dir));
}

static const char *scratch_path(struct scratch *sc, const char *name)
{
	snprintf(sc->path, sizeof(sc->path), "%s/%s", sc->dir, name);
	return sc->path;
}

/* The lowest descriptor number not in use: where open() puts the next. */
static int next_fd(void)
{
	int fd = dup(0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(close(fd), 0);
	return fd;
}

/* Bytes in the file at @path, -1 if there is none. */
static long long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

START_TEST(test_sinks_file_roundtrip)
{
	struct scratch sc;
	const char *path;
	uint8_t got[3000], want[3000];
	struct stat st;
	mode_t old_mask;
	ms_stream *w, *r;
	size_t i;
	int fd;

	for (i = 0; i < sizeof(want); i++)
		want[i] = (uint8_t)(i * 7);
	scratch_init(&sc);
	path = scratch_path(&sc, "snapshot");

	/* A new file, mode 0666 less the umask, descriptor close-on-exec
	 * and owned: closed by ms_stream_close(). */
	old_mask = umask(022);
	fd = next_fd();
	ck_assert_int_eq(ms_stream_new_file(&w, path, MS_STREAM_WRITER, NULL),
			 0);
	umask(old_mask);
	ck_assert(fd_is_open(fd));
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0644);
	ck_assert_int_eq(ms_put_be32(w, 0x01020304), 0);
	ck_assert_int_eq(ms_put_buffer(w, want, sizeof(want)), 0);
	ck_assert_int_eq(ms_stream_close(w), 0);
	ck_assert(fd_is_closed(fd));
	ck_assert_int_eq(file_size(path), 4 + sizeof(want));

	/* Read back, with the reader's descriptor owned too. */
	ck_assert_int_eq(ms_stream_new_file(&r, path, MS_STREAM_READER, NULL),
			 0);
	ck_assert(fd_is_open(fd));
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	{
		uint32_t v = 0;

		ck_assert_int_eq(ms_get_be32(r, &v), 0);
		ck_assert_uint_eq(v, 0x01020304);
	}
	ck_assert_int_eq(ms_get_buffer(r, got, sizeof(got)), 0);
	ck_assert_mem_eq(got, want, sizeof(want));
	ck_assert(ms_stream_is_eof(r));
	ck_assert_int_eq(ms_stream_close(r), 0);
	ck_assert(fd_is_closed(fd));

	/* A writer truncates what was there. */
	ck_assert_int_eq(ms_stream_new_file(&w, path, MS_STREAM_WRITER, NULL),
			 0);
	ck_assert_int_eq(file_size(path), 0);
	ck_assert_int_eq(ms_put_u8(w, 9), 0);
	ck_assert_int_eq(ms_stream_close(w), 0);
	ck_assert_int_eq(file_size(path), 1);
	ck_assert_int_eq(next_fd(), fd);

	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(rmdir(sc.dir), 0);
}
END_TEST

START_TEST(test_sinks_file_refusals)
{
	ms_stream_opts bad = opts_of(0, 0);
	ms_stream *const sentinel = (ms_stream *)0x1;
	ms_stream *s = sentinel;
	struct scratch sc;
	struct ms_test_alloc ta;
	ms_stream_opts o = opts_of(0, 0);
	const char *path;
	int fd = next_fd();

	scratch_init(&sc);

	/* Missing: the file, or the directory it would be created in. */
	ck_assert_int_eq(ms_stream_new_file(&s, scratch_path(&sc, "none"),
					    MS_STREAM_READER, NULL),
			 -ENOENT);
	ck_assert_int_eq(ms_stream_new_file(&s, scratch_path(&sc, "no/file"),
					    MS_STREAM_WRITER, NULL),
			 -ENOENT);
	ck_assert_int_eq(file_size(scratch_path(&sc, "none")), -1);

	/* A directory, for writing and for reading. */
	ck_assert_int_eq(ms_stream_new_file(&s, sc.dir, MS_STREAM_WRITER, NULL),
			 -EISDIR);
	ck_assert_int_eq(ms_stream_new_file(&s, sc.dir, MS_STREAM_READER, NULL),
			 -EISDIR);

	/* Bad arguments; bad options or no memory leave the file alone. */
	path = scratch_path(&sc, "kept");
	ck_assert_int_eq(ms_stream_new_file(&s, path, MS_STREAM_WRITER, NULL),
			 0);
	ck_assert_int_eq(ms_put_be32(s, 7), 0);
	ck_assert_int_eq(ms_stream_close(s), 0);
	s = sentinel;
	ck_assert_int_eq(ms_stream_new_file(&s, NULL, MS_STREAM_READER, NULL),
			 -EINVAL);
	ck_assert_int_eq(ms_stream_new_file(NULL, path, MS_STREAM_READER, NULL),
			 -EINVAL);
	ck_assert_int_eq(ms_stream_new_file(&s, path, (ms_stream_mode)3, NULL),
			 -EINVAL);
	bad.version = 0;
	ck_assert_int_eq(ms_stream_new_file(&s, path, MS_STREAM_WRITER, &bad),
			 -EINVAL);
	ms_test_alloc_init(&ta, 1);
	o.allocator = &ta.a;
	ck_assert_int_eq(ms_stream_new_file(&s, path, MS_STREAM_WRITER, &o),
			 -ENOMEM);
	ms_test_alloc_init(&ta, 2);
	ck_assert_int_eq(ms_stream_new_file(&s, path, MS_STREAM_WRITER, &o),
			 -ENOMEM);
	ck_assert_int_eq(ta.live, 0);
	ck_assert_int_eq(file_size(path), 4);
	ck_assert_ptr_eq(s, sentinel);
	ck_assert_int_eq(next_fd(), fd);

	/*
	 * A directory the process may not write to.  Permission bits do not
	 * bind root: then the check runs as an unprivileged user, if the
	 * process may become one.
	 */
	ck_assert_int_eq(mkdir(scratch_path(&sc, "ro"), 0555), 0);
	ck_assert_int_eq(chmod(sc.dir, 0755), 0);
	{
		bool root = geteuid() == 0;
		bool as_user = !root || seteuid(65534) == 0;

		if (as_user) {
			ck_assert_int_eq(ms_stream_new_file(
						 &s, scratch_path(&sc, "ro/x"),
						 MS_STREAM_WRITER, NULL),
					 -EACCES);
			ck_assert_ptr_eq(s, sentinel);
			ck_assert_int_eq(next_fd(), fd);
		}
		if (root && as_user)
			ck_assert_int_eq(seteuid(0), 0);
	}
	ck_assert_int_eq(rmdir(scratch_path(&sc, "ro")), 0);
	ck_assert_int_eq(unlink(scratch_path(&sc, "kept")), 0);
	ck_assert_int_eq(rmdir(sc.dir), 0);
}
END_TEST

START_TEST(test_sinks_fd_bad_args)
{
	ms_stream_opts o = opts_of(0, 0);
	ms_stream *const sentinel = (ms_stream *)0x1;
	ms_stream *s = sentinel;
	int fds[2], closed;

	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(ms_stream_new_fd(&s, -1, MS_STREAM_READER, 0, NULL),
			 -EINVAL);
	ck_assert_int_eq(
		ms_stream_new_fd(&s, -1, MS_STREAM_WRITER, MS_FD_OWN, NULL),
		-EINVAL);
	ck_assert_int_eq(
		ms_stream_new_fd(&s, fds[0], MS_STREAM_READER, 0x2, NULL),
		-EINVAL);
	ck_assert_int_eq(ms_stream_new_fd(&s, fds[0], MS_STREAM_READER,
					  MS_FD_OWN | 0x80000000u, NULL),
			 -EINVAL);
	ck_assert_int_eq(
		ms_stream_new_fd(&s, fds[0], (ms_stream_mode)0, 0, NULL),
		-EINVAL);
	ck_assert_int_eq(
		ms_stream_new_fd(&s, fds[0], (ms_stream_mode)3, 0, NULL),
		-EINVAL);
	o.timeout_ms = -5;
	ck_assert_int_eq(
		ms_stream_new_fd(&s, fds[0], MS_STREAM_READER, MS_FD_OWN, &o),
		-EINVAL);
	ck_assert_int_eq(
		ms_stream_new_fd(NULL, fds[0], MS_STREAM_READER, 0, NULL),
		-EINVAL);
	ck_assert_ptr_eq(s, sentinel);
	ck_assert(fd_is_open(fds[0]));

	/* A descriptor that is not open. */
	closed = fds[1];
	ck_assert_int_eq(close(closed), 0);
	ck_assert_int_eq(
		ms_stream_new_fd(&s, closed, MS_STREAM_WRITER, 0, NULL),
		-EBADF);
	ck_assert_int_eq(
		ms_stream_new_fd(&s, closed, MS_STREAM_READER, MS_FD_OWN, NULL),
		-EBADF);
	ck_assert_ptr_eq(s, sentinel);
	ck_assert_int_eq(close(fds[0]), 0);
}
END_TEST

/*
 * Two processes over a pipe and a socketpair.
 */

struct roundtrip_arg {
	int fds[2];
	const struct ms_test_script *sc;
	bool nonblock;
};

static int roundtrip_writer(void *p)
{
	struct roundtrip_arg *a = p;
	ms_stream *w;

	close(a->fds[0]);
	CHILD_CHECK(is_nonblock(a->fds[1]) == a->nonblock);
	CHILD_CHECK(ms_stream_new_fd(&w, a->fds[1], MS_STREAM_WRITER, MS_FD_OWN,
				     NULL) == 0);
	CHILD_CHECK(ms_test_script_write(w, a->sc) == 0);
	CHILD_CHECK(ms_stream_tell(w) == ms_test_script_size());
	CHILD_CHECK(ms_stream_close(w) == 0);
	return 0;
}

/*
 * Loop test: bit 0 picks the channel, bit 1 a non-blocking writer, bit 2
 * a non-blocking reader.  The writer is a child process.
 */
START_TEST(test_sinks_fd_process_roundtrip)
{
	struct ms_test_script sc;
	struct roundtrip_arg a;
	struct child c;
	ms_stream *r;
	int kind = _i & 1;
	bool wnb = _i & 2, rnb = _i & 4;

	ms_test_script_init(&sc);
	a.sc = &sc;
	a.nonblock = wnb;
	channel_open(kind, a.fds);
	set_nonblock(a.fds[1], wnb);
	set_nonblock(a.fds[0], rnb);
	child_start(&c, roundtrip_writer, &a);
	close(a.fds[1]);
	ck_assert_int_eq(ms_stream_new_fd(&r, a.fds[0], MS_STREAM_READER,
					  MS_FD_OWN, NULL),
			 0);
	ms_test_script_read(r, &sc);
	ck_assert(ms_stream_is_eof(r));
	ck_assert_uint_eq(ms_stream_tell(r), ms_test_script_size());
	ck_assert_int_eq(is_nonblock(a.fds[0]), rnb);
	ck_assert_int_eq(ms_stream_close(r), 0);
	child_finish(&c);
}
END_TEST

struct slow_arg {
	int fds[2];
	const uint8_t *want;
	size_t len;
};

/* Reads the raw bytes in small pieces, pausing often. */
static int slow_reader(void *p)
{
	struct slow_arg *a = p;
	uint8_t buf[1000];
	size_t off = 0;
	int i = 0;

	close(a->fds[1]);
	sleep_ms(20);
	for (;;) {
		ssize_t n =
			raw_read(a->fds[0], buf, 1 + (size_t)(i * 37) % 999);

		CHILD_CHECK(n >= 0);
		if (n == 0)
			break;
		CHILD_CHECK(off + (size_t)n <= a->len);
		CHILD_CHECK(memcmp(buf, a->want + off, (size_t)n) == 0);
		off += (size_t)n;
		if (++i % 4 == 0)
			sleep_ms(1);
	}
	CHILD_CHECK(off == a->len);
	close(a->fds[0]);
	return 0;
}

/*
 * Loop test over the channel kinds: a non-blocking writer faster than its
 * reader meets EAGAIN and waits in poll(); nothing is lost or reordered.
 */
START_TEST(test_sinks_fd_slow_reader_nonblocking_writer)
{
	struct ms_test_script sc;
	struct slow_arg a;
	ms_stream_stats base, st;
	struct child c;
	ms_stream *w;
	uint8_t *want;
	size_t len;
	int fd;

	ms_test_script_init(&sc);
	want = script_bytes(&sc, &len);

	/* How many sink calls the script takes with a sink that keeps up. */
	fd = open("/dev/null", O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(
		ms_stream_new_fd(&w, fd, MS_STREAM_WRITER, MS_FD_OWN, NULL), 0);
	ck_assert_int_eq(ms_test_script_write(w, &sc), 0);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ms_stream_get_stats(w, &base);
	ck_assert_int_eq(ms_stream_close(w), 0);

	a.want = want;
	a.len = len;
	channel_open(_i, a.fds);
	channel_shrink(_i, a.fds);
	set_nonblock(a.fds[1], true);
	child_start(&c, slow_reader, &a);
	close(a.fds[0]);
	ck_assert_int_eq(ms_stream_new_fd(&w, a.fds[1], MS_STREAM_WRITER,
					  MS_FD_OWN, NULL),
			 0);
	ck_assert_int_eq(ms_test_script_write(w, &sc), 0);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ms_stream_get_stats(w, &st);
	ck_assert_uint_eq(st.bytes, len);
	/* Partial writes and EAGAIN retries cost extra sink calls. */
	ck_assert_uint_gt(st.sink_calls, base.sink_calls);
	ck_assert(is_nonblock(a.fds[1]));
	ck_assert_int_eq(ms_stream_close(w), 0);
	child_finish(&c);
	free(want);
}
END_TEST

/* Writes the raw bytes in small pieces, pausing often. */
static int slow_writer(void *p)
{
	struct slow_arg *a = p;
	size_t off = 0;
	int i = 0;

	close(a->fds[0]);
	sleep_ms(20);
	while (off < a->len) {
		size_t n = 1 + (size_t)(i * 53) % 1500;

		if (n > a->len - off)
			n = a->len - off;
		CHILD_CHECK(raw_write(a->fds[1], a->want + off, n) == 0);
		off += n;
		if (++i % 4 == 0)
			sleep_ms(1);
	}
	close(a->fds[1]);
	return 0;
}

/*
 * Loop test over the channel kinds: a non-blocking reader faster than its
 * writer meets EAGAIN and waits in poll().
 */
START_TEST(test_sinks_fd_slow_writer_nonblocking_reader)
{
	struct ms_test_script sc;
	struct slow_arg a;
	ms_stream_stats base, st;
	struct child c;
	ms_stream *r;
	uint8_t *want;
	size_t len;
	int fd;

	ms_test_script_init(&sc);
	want = script_bytes(&sc, &len);

	/* How many sink calls the script takes from a regular file. */
	fd = temp_fd();
	ck_assert_int_eq(raw_write(fd, want, len), 0);
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(
		ms_stream_new_fd(&r, fd, MS_STREAM_READER, MS_FD_OWN, NULL), 0);
	ms_test_script_read(r, &sc);
	ck_assert(ms_stream_is_eof(r));
	ms_stream_get_stats(r, &base);
	ck_assert_int_eq(ms_stream_close(r), 0);

	a.want = want;
	a.len = len;
	channel_open(_i, a.fds);
	set_nonblock(a.fds[0], true);
	child_start(&c, slow_writer, &a);
	close(a.fds[1]);
	ck_assert_int_eq(ms_stream_new_fd(&r, a.fds[0], MS_STREAM_READER,
					  MS_FD_OWN, NULL),
			 0);
	ms_test_script_read(r, &sc);
	ck_assert(ms_stream_is_eof(r));
	ms_stream_get_stats(r, &st);
	ck_assert_uint_eq(st.bytes, len);
	ck_assert_uint_gt(st.sink_calls, base.sink_calls);
	ck_assert(is_nonblock(a.fds[0]));
	ck_assert_int_eq(ms_stream_close(r), 0);
	child_finish(&c);
	free(want);
}
END_TEST

/* Writes 300 counting bytes, three at a time. */
static int trickle_writer(void *p)
{
	int *fds = p;
	uint8_t b[3];
	int i;

	close(fds[0]);
	for (i = 0; i < 300; i += 3) {
		b[0] = (uint8_t)i;
		b[1] = (uint8_t)(i + 1);
		b[2] = (uint8_t)(i + 2);
		CHILD_CHECK(raw_write(fds[1], b, 3) == 0);
		if (i % 30 == 0)
			sleep_ms(1);
	}
	close(fds[1]);
	return 0;
}

/*
 * Loop test over the channel kinds: peek up to the buffer size waits for
 * enough data across many refills; a larger peek is refused without
 * failing the stream.
 */
START_TEST(test_sinks_fd_peek_across_refills)
{
	ms_stream_opts o = opts_of(16, 0);
	const uint8_t *p;
	struct child c;
	ms_stream *r;
	int fds[2], pos, k;

	channel_open(_i, fds);
	child_start(&c, trickle_writer, fds);
	close(fds[1]);
	ck_assert_int_eq(
		ms_stream_new_fd(&r, fds[0], MS_STREAM_READER, MS_FD_OWN, &o),
		0);
	for (pos = 0; pos < 300; pos++) {
		int want = 300 - pos < 16 ? 300 - pos : 16;
		uint8_t v;

		ck_assert_int_eq(ms_peek(r, &p, 16), want);
		for (k = 0; k < want; k++)
			ck_assert_uint_eq(p[k], (uint8_t)(pos + k));
		ck_assert_uint_ge(ms_stream_available(r), (size_t)want);
		if (pos % 50 == 0) {
			ck_assert_int_eq(ms_peek(r, &p, 17), -EINVAL);
			ck_assert_ptr_null(p);
			ck_assert_int_eq(ms_stream_error(r), 0);
		}
		ck_assert_int_eq(ms_get_u8(r, &v), 0);
		ck_assert_uint_eq(v, (uint8_t)pos);
	}
	ck_assert_int_eq(ms_peek(r, &p, 16), 0);
	ck_assert(ms_stream_is_eof(r));
	ck_assert_int_eq(ms_peek(r, &p, 17), -EINVAL);
	ck_assert_int_eq(ms_stream_close(r), 0);
	child_finish(&c);
}
END_TEST

/*
 * Errors on descriptors: EPIPE, EINTR, timeouts.
 */

/*
 * Runs in a child with SIGPIPE at its default disposition, so that a
 * SIGPIPE kills it: the parent sees how it died.
 */
static int epipe_child(void *p)
{
	int kind = *(int *)p;
	struct timespec zero = {0, 0};
	sigset_t pipe_set, set;
	uint8_t buf[1000];
	ms_stream *w;
	int fds[2];

	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	CHILD_CHECK(sigprocmask(SIG_UNBLOCK, &pipe_set, NULL) == 0);
	memset(buf, 0x5a, sizeof(buf));

	/* The peer reads what was flushed, then goes away. */
	CHILD_CHECK(channel_make(kind, fds) == 0);
	CHILD_CHECK(ms_stream_new_fd(&w, fds[1], MS_STREAM_WRITER, MS_FD_OWN,
				     NULL) == 0);
	CHILD_CHECK(ms_put_buffer(w, buf, sizeof(buf)) == 0);
	CHILD_CHECK(ms_stream_flush(w) == 0);
	CHILD_CHECK(raw_read(fds[0], buf, sizeof(buf)) == sizeof(buf));
	close(fds[0]);
	CHILD_CHECK(ms_put_be64(w, 1) == 0);
	CHILD_CHECK(ms_stream_flush(w) == -EPIPE);
	CHILD_CHECK(ms_stream_error_offset(w) == 1000);
	CHILD_CHECK(ms_stream_tell(w) == 1008);
	CHILD_CHECK(strstr(ms_stream_errmsg(w), "write error") != NULL);
	CHILD_CHECK(ms_put_u8(w, 1) == -EPIPE);
	CHILD_CHECK(ms_stream_tell(w) == 1008);
	CHILD_CHECK(sigpending(&set) == 0 && !sigismember(&set, SIGPIPE));
	/* The signal mask is as it was. */
	CHILD_CHECK(sigprocmask(SIG_BLOCK, NULL, &set) == 0);
	CHILD_CHECK(!sigismember(&set, SIGPIPE));
	CHILD_CHECK(ms_stream_close(w) == -EPIPE);

	/* A caller that blocks SIGPIPE finds none left pending. */
	CHILD_CHECK(sigprocmask(SIG_BLOCK, &pipe_set, NULL) == 0);
	CHILD_CHECK(channel_make(kind, fds) == 0);
	close(fds[0]);
	CHILD_CHECK(ms_stream_new_fd(&w, fds[1], MS_STREAM_WRITER, MS_FD_OWN,
				     NULL) == 0);
	CHILD_CHECK(ms_put_buffer(w, buf, 100) == 0);
	CHILD_CHECK(ms_stream_flush(w) == -EPIPE);
	CHILD_CHECK(ms_stream_error_offset(w) == 0);
	CHILD_CHECK(sigpending(&set) == 0 && !sigismember(&set, SIGPIPE));
	CHILD_CHECK(sigprocmask(SIG_BLOCK, NULL, &set) == 0);
	CHILD_CHECK(sigismember(&set, SIGPIPE));
	CHILD_CHECK(ms_stream_close(w) == -EPIPE);

	/* A SIGPIPE the caller already had pending is left to it. */
	CHILD_CHECK(raise(SIGPIPE) == 0);
	CHILD_CHECK(channel_make(kind, fds) == 0);
	close(fds[0]);
	CHILD_CHECK(ms_stream_new_fd(&w, fds[1], MS_STREAM_WRITER, MS_FD_OWN,
				     NULL) == 0);
	CHILD_CHECK(ms_put_buffer(w, buf, 100) == 0);
	CHILD_CHECK(ms_stream_close(w) == -EPIPE);
	CHILD_CHECK(sigpending(&set) == 0 && sigismember(&set, SIGPIPE));
	CHILD_CHECK(sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE);
	CHILD_CHECK(sigpending(&set) == 0 && !sigismember(&set, SIGPIPE));
	CHILD_CHECK(sigprocmask(SIG_UNBLOCK, &pipe_set, NULL) == 0);
	return 0;
}

/* Loop test over the channel kinds. */
START_TEST(test_sinks_fd_epipe_no_sigpipe)
{
	struct child c;
	int kind = _i;

	child_start(&c, epipe_child, &kind);
	child_finish(&c);
}
END_TEST

struct signaller_arg {
	int fds[2];
	int go[2]; /* the parent writes a byte here just before it blocks */
	pid_t target;
	size_t len;
};

/*
 * Best effort: wait until @pid sleeps in a system call, as Linux shows in
 * /proc; elsewhere, or after two seconds, just go on.
 */
static void wait_until_blocked(pid_t pid)
{
	char path[64], buf[256], *p;
	int i, fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	for (i = 0; i < 2000; i++) {
		fd = open(path, O_RDONLY);
		if (fd < 0)
			return;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			return;
		buf[n] = '\0';
		p = strrchr(buf, ')');
		if (!p || p[1] != ' ')
			return;
		if (p[2] == 'S')
			return;
		sleep_ms(1);
	}
}

/* Waits for the parent's go, then interrupts it three times. */
static int signal_parent(struct signaller_arg *a)
{
	char go;
	int i;

	close(a->go[1]);
	if (raw_read(a->go[0], &go, 1) != 1)
		return __LINE__;
	close(a->go[0]);
	for (i = 0; i < 3; i++) {
		sleep_ms(30);
		wait_until_blocked(a->target);
		if (kill(a->target, SIGUSR1) < 0)
			return __LINE__;
	}
	return 0;
}

/* In the parent: let the child go, just before blocking. */
static void signaller_go(struct signaller_arg *a)
{
	close(a->go[0]);
	ck_assert_int_eq(raw_write(a->go[1], "g", 1), 0);
	close(a->go[1]);
}

/* Interrupts the blocked parent a few times, then sends the data. */
static int signal_then_write(void *p)
{
	struct signaller_arg *a = p;
	uint8_t buf[64];
	int line;

	close(a->fds[0]);
	line = signal_parent(a);
	if (line)
		return line;
	sleep_ms(30);
	ms_test_fill(buf, sizeof(buf), 11);
	CHILD_CHECK(raw_write(a->fds[1], buf, sizeof(buf)) == 0);
	close(a->fds[1]);
	return 0;
}

/*
 * Loop test over the channel kinds: a blocking read interrupted by a
 * signal whose handler does not restart system calls is retried.
 */
START_TEST(test_sinks_fd_eintr_read)
{
	struct signaller_arg a;
	struct sigaction old;
	ms_stream_stats st;
	uint8_t want[64], got[64];
	struct child c;
	ms_stream *r;

	channel_open(_i, a.fds);
	ck_assert_int_eq(pipe(a.go), 0);
	a.target = getpid();
	usr1_install(&old);
	child_start(&c, signal_then_write, &a);
	close(a.fds[1]);
	ck_assert_int_eq(ms_stream_new_fd(&r, a.fds[0], MS_STREAM_READER,
					  MS_FD_OWN, NULL),
			 0);
	signaller_go(&a);
	ck_assert_int_eq(ms_get_buffer(r, got, sizeof(got)), 0);
	ms_test_fill(want, sizeof(want), 11);
	ck_assert_mem_eq(got, want, sizeof(got));
	ck_assert_int_ge(usr1_count, 1);
	/* One read for the data, and at least one that was interrupted. */
	ms_stream_get_stats(r, &st);
	ck_assert_uint_ge(st.sink_calls, 2);
	ck_assert(ms_stream_is_eof(r));
	ck_assert_int_eq(ms_stream_close(r), 0);
	child_finish(&c);
	ck_assert_int_eq(sigaction(SIGUSR1, &old, NULL), 0);
}
END_TEST

/* Interrupts the blocked parent a few times, then reads everything. */
static int signal_then_read(void *p)
{
	struct signaller_arg *a = p;
	uint8_t *want = malloc(a->len), *got = malloc(a->len);
	int ret = 0;

	close(a->fds[1]);
	if (!want || !got) {
		ret = __LINE__;
		goto out_free;
	}
	ret = signal_parent(a);
	if (ret)
		goto out_free;
	ms_test_fill(want, a->len, 12);
	if (raw_read(a->fds[0], got, a->len) != (ssize_t)a->len ||
	    memcmp(got, want, a->len) != 0)
		ret = __LINE__;
	else if (raw_read(a->fds[0], got, 1) != 0)
		ret = __LINE__;
	close(a->fds[0]);
out_free:
	free(want);
	free(got);
	return ret;
}

/*
 * Loop test over the channel kinds: a blocking write to a full channel,
 * interrupted by a signal without SA_RESTART, is retried.
 */
START_TEST(test_sinks_fd_eintr_write)
{
	const size_t len = 8 * MS_STREAM_DEFAULT_BUFFER_SIZE;
	struct signaller_arg a;
	struct sigaction old;
	ms_stream_stats base, st;
	struct child c;
	ms_stream *w;
	uint8_t *data = malloc(len);
	int fd;

	ck_assert_ptr_nonnull(data);
	ms_test_fill(data, len, 12);

	/* How many sink calls the data takes with a sink that keeps up. */
	fd = open("/dev/null", O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(
		ms_stream_new_fd(&w, fd, MS_STREAM_WRITER, MS_FD_OWN, NULL), 0);
	ck_assert_int_eq(ms_put_buffer(w, data, len), 0);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ms_stream_get_stats(w, &base);
	ck_assert_int_eq(ms_stream_close(w), 0);

	channel_open(_i, a.fds);
	if (_i == CH_SOCKET)
		channel_shrink(_i, a.fds);
	ck_assert_int_eq(pipe(a.go), 0);
	a.target = getpid();
	a.len = len;
	usr1_install(&old);
	child_start(&c, signal_then_read, &a);
	close(a.fds[0]);
	ck_assert_int_eq(ms_stream_new_fd(&w, a.fds[1], MS_STREAM_WRITER,
					  MS_FD_OWN, NULL),
			 0);
	signaller_go(&a);
	ck_assert_int_eq(ms_put_buffer(w, data, len), 0);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ck_assert_int_ge(usr1_count, 1);
	/* The calls that were interrupted come on top. */
	ms_stream_get_stats(w, &st);
	ck_assert_uint_eq(st.bytes, len);
	ck_assert_uint_gt(st.sink_calls, base.sink_calls);
	ck_assert_int_eq(ms_stream_close(w), 0);
	child_finish(&c);
	ck_assert_int_eq(sigaction(SIGUSR1, &old, NULL), 0);
	free(data);
}
END_TEST

/*
 * Loop test over the channel kinds: a non-blocking descriptor nobody
 * serves fails the stream with -ETIMEDOUT after timeout_ms.
 */
START_TEST(test_sinks_fd_timeout)
{
	ms_stream_opts o = opts_of(0, 50);
	struct timespec t0;
	ms_stream_stats st;
	uint64_t calls;
	uint8_t big[65536];
	uint32_t v32 = 0;
	uint64_t v64 = 99;
	ms_stream *s;
	long ms;
	int fds[2], queued;

	/* A reader with nothing to read. */
	channel_open(_i, fds);
	set_nonblock(fds[0], true);
	ck_assert_int_eq(ms_stream_new_fd(&s, fds[0], MS_STREAM_READER, 0, &o),
			 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(ms_get_be64(s, &v64), -ETIMEDOUT);
	ms = elapsed_ms(&t0);
	ck_assert_int_ge(ms, 45);
	ck_assert_int_lt(ms, 5000);
	ck_assert_uint_eq(v64, 0);
	ck_assert_uint_eq(ms_stream_error_offset(s), 0);
	ck_assert_ptr_nonnull(strstr(ms_stream_errmsg(s), "timed out"));
	/* Sticky: the sink is not tried again. */
	ms_stream_get_stats(s, &st);
	calls = st.sink_calls;
	ck_assert_int_eq(ms_get_be32(s, &v32), -ETIMEDOUT);
	ms_stream_get_stats(s, &st);
	ck_assert_uint_eq(st.sink_calls, calls);
	ck_assert_int_eq(ms_stream_close(s), -ETIMEDOUT);

	/*
	 * A reader whose data stops short: the offset is the first byte the
	 * sink did not deliver, not the start of the get (4).
	 */
	ck_assert_int_eq(raw_write(fds[1], "0123456789", 10), 0);
	ck_assert_int_eq(ms_stream_new_fd(&s, fds[0], MS_STREAM_READER, 0, &o),
			 0);
	ck_assert_int_eq(ms_get_be32(s, &v32), 0);
	ck_assert_uint_eq(v32, 0x30313233);
	ck_assert_int_eq(ms_get_be64(s, &v64), -ETIMEDOUT);
	ck_assert_uint_eq(ms_stream_error_offset(s), 10);
	ck_assert_int_eq(ms_stream_close(s), -ETIMEDOUT);

	/* A writer whose reader never reads. */
	channel_shrink(_i, fds);
	set_nonblock(fds[1], true);
	memset(big, 0x42, sizeof(big));
	ck_assert_int_eq(ms_stream_new_fd(&s, fds[1], MS_STREAM_WRITER, 0, &o),
			 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(ms_put_buffer(s, big, sizeof(big)), -ETIMEDOUT);
	ms = elapsed_ms(&t0);
	ck_assert_int_ge(ms, 45);
	ck_assert_int_lt(ms, 5000);
	ck_assert_int_eq(ms_stream_flush(s), -ETIMEDOUT);
	/* The offset is what the channel took. */
	queued = channel_queued(fds[0]);
	ck_assert_int_gt(queued, 0);
	ck_assert_uint_eq(ms_stream_error_offset(s), (uint64_t)queued);
	ck_assert_uint_lt(ms_stream_error_offset(s), sizeof(big));
	ck_assert_int_eq(ms_stream_close(s), -ETIMEDOUT);
	ck_assert_int_eq(close(fds[0]), 0);
	ck_assert_int_eq(close(fds[1]), 0);
}
END_TEST

/*
 * Iovec writers.
 */

struct iov_rec {
	uint8_t *data; /* everything the callback saw, in order */
	size_t len, cap;
	struct iovec ent[4096]; /* the entries, as given */
	int nent;
	int calls;
	int min_cnt, max_cnt;
	int fail_at; /* 1-based call that fails, 0 for none */
	int fail_err;
};

static void iov_rec_init(struct iov_rec *r)
{
	memset(r, 0, sizeof(*r));
	r->min_cnt = 1 << 30;
}

static int iov_rec_fn(void *opaque, const struct iovec *iov, int iovcnt)
{
	struct iov_rec *r = opaque;
	int i;

	r->calls++;
	if (iovcnt < r->min_cnt)
		r->min_cnt = iovcnt;
	if (iovcnt > r->max_cnt)
		r->max_cnt = iovcnt;
	if (r->fail_at == r->calls)
		return r->fail_err;
	for (i = 0; i < iovcnt; i++) {
		if (r->nent < (int)(sizeof(r->ent) / sizeof(r->ent[0])))
			r->ent[r->nent++] = iov[i];
		if (r->len + iov[i].iov_len > r->cap) {
			size_t cap = r->cap ? r->cap : 4096;
			uint8_t *nd;

			while (cap < r->len + iov[i].iov_len)
				cap *= 2;
			nd = realloc(r->data, cap);
			if (!nd)
				return -ENOMEM;
			r->data = nd;
			r->cap = cap;
		}
		memcpy(r->data + r->len, iov[i].iov_base, iov[i].iov_len);
		r->len += iov[i].iov_len;
	}
	return 0;
}

/* Whether some entry is exactly [base, base + len). */
static bool has_entry(const struct iovec *ent, int n, const void *base,
		      size_t len)
{
	int i;

	for (i = 0; i < n; i++)
		if (ent[i].iov_base == base && ent[i].iov_len == len)
			return true;
	return false;
}

START_TEST(test_sinks_iov_callback_script)
{
	struct ms_test_script sc;
	struct iov_rec *rec = malloc(sizeof(*rec));
	ms_stream_stats st;
	ms_stream *w;
	uint8_t *want;
	size_t len;
	int i;

	ck_assert_ptr_nonnull(rec);
	iov_rec_init(rec);
	ms_test_script_init(&sc);
	want = script_bytes(&sc, &len);
	ck_assert_int_eq(ms_stream_new_iov(&w, iov_rec_fn, rec, NULL), 0);
	ck_assert_int_eq(ms_test_script_write(w, &sc), 0);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ck_assert_uint_eq(rec->len, len);
	ck_assert_mem_eq(rec->data, want, len);
	/* Every large async buffer arrived as the caller's own memory. */
	for (i = 5; i < MS_TEST_SCRIPT_LEN; i += 8)
		ck_assert_msg(has_entry(rec->ent, rec->nent, sc.big + i,
					4096 + (size_t)i * 13),
			      "async buffer %d was copied", i);
	ms_stream_get_stats(w, &st);
	ck_assert_uint_eq(st.bytes, len);
	ck_assert_uint_eq(st.bytes_zero_copy, script_async_bytes());
	ck_assert_uint_eq(st.bytes_copied, len - script_async_bytes());
	ck_assert_uint_eq(st.sink_calls, (uint64_t)rec->calls);
	ck_assert_int_ge(rec->min_cnt, 1);
	ck_assert_int_le(rec->max_cnt, MS_STREAM_MAX_IOV);
	/* A flush with nothing queued does not call back. */
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ck_assert_int_eq(ms_stream_close(w), 0);
	ck_assert_uint_eq(st.sink_calls, (uint64_t)rec->calls);
	free(want);
	free(rec->data);
	free(rec);
}
END_TEST

START_TEST(test_sinks_iov_callback_exact_entries)
{
	ms_stream_opts o = opts_of(0, 0);
	struct iov_rec *rec = malloc(sizeof(*rec));
	static uint8_t a[8192], b[5000], c[200];
	ms_stream_stats st;
	ms_stream *w;

	ck_assert_ptr_nonnull(rec);
	iov_rec_init(rec);
	ms_test_fill(a, sizeof(a), 1);
	ms_test_fill(b, sizeof(b), 2);
	ms_test_fill(c, sizeof(c), 3);
	ck_assert_int_eq(ms_stream_new_iov(&w, iov_rec_fn, rec, NULL), 0);
	ck_assert_int_eq(ms_put_u8(w, 0x11), 0);
	ck_assert_int_eq(ms_put_buffer_async(w, a, sizeof(a)), 0);
	ck_assert_int_eq(ms_put_be32(w, 0x22334455), 0);
	ck_assert_int_eq(ms_put_buffer_async(w, b, sizeof(b)), 0);
	ck_assert_int_eq(ms_put_buffer_async(w, c, 100), 0);
	ck_assert_int_eq(rec->calls, 0);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ck_assert_int_eq(rec->calls, 1);
	ck_assert_int_eq(rec->nent, 5);
	ck_assert_uint_eq(rec->ent[0].iov_len, 1);
	ck_assert_ptr_eq(rec->ent[1].iov_base, a);
	ck_assert_uint_eq(rec->ent[1].iov_len, sizeof(a));
	ck_assert_uint_eq(rec->ent[2].iov_len, 4);
	ck_assert_ptr_eq(rec->ent[3].iov_base, b);
	ck_assert_uint_eq(rec->ent[3].iov_len, sizeof(b));
	/* The small async buffer was copied, after b. */
	ck_assert_ptr_ne(rec->ent[4].iov_base, c);
	ck_assert_uint_eq(rec->ent[4].iov_len, 100);
	ck_assert_uint_eq(rec->len, 1 + sizeof(a) + 4 + sizeof(b) + 100);
	ck_assert_uint_eq(rec->data[0], 0x11);
	ck_assert_mem_eq(rec->data + 1 + sizeof(a) + 4 + sizeof(b), c, 100);
	ms_stream_get_stats(w, &st);
	ck_assert_uint_eq(st.bytes_zero_copy, sizeof(a) + sizeof(b));
	ck_assert_uint_eq(st.bytes_copied, 1 + 4 + 100);
	ck_assert_int_eq(ms_stream_close(w), 0);
	free(rec->data);

	/* The threshold is a setting. */
	iov_rec_init(rec);
	o.zero_copy_threshold = 64;
	ck_assert_int_eq(ms_stream_new_iov(&w, iov_rec_fn, rec, &o), 0);
	ck_assert_int_eq(ms_put_buffer_async(w, c, 64), 0);
	ck_assert_int_eq(ms_put_buffer_async(w, c + 64, 63), 0);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ck_assert_int_eq(rec->nent, 2);
	ck_assert_ptr_eq(rec->ent[0].iov_base, c);
	ck_assert_ptr_ne(rec->ent[1].iov_base, c + 64);
	ck_assert_uint_eq(rec->ent[1].iov_len, 63);
	ms_stream_get_stats(w, &st);
	ck_assert_uint_eq(st.bytes_zero_copy, 64);
	ck_assert_uint_eq(st.bytes_copied, 63);
	ck_assert_int_eq(ms_stream_close(w), 0);
	free(rec->data);
	free(rec);
}
END_TEST

/*
 * Many queued buffers go out in calls of at most MS_STREAM_MAX_IOV.  Loop
 * test: _i is the period of the small puts between the async buffers
 * (every one, every other one, every third one), so that the queue
 * reaches each fill level, including one short of full.
 */
START_TEST(test_sinks_iov_callback_max_iov)
{
	static uint8_t big[4096];
	struct iov_rec *rec = malloc(sizeof(*rec));
	size_t off = 0, small = 0;
	int i, period = _i + 1;
	ms_stream *w;

	ck_assert_ptr_nonnull(rec);
	iov_rec_init(rec);
	ms_test_fill(big, sizeof(big), 4);
	ck_assert_int_eq(ms_stream_new_iov(&w, iov_rec_fn, rec, NULL), 0);
	for (i = 0; i < 300; i++) {
		if (i % period == 0) {
			ck_assert_int_eq(ms_put_u8(w, (uint8_t)i), 0);
			small++;
		}
		ck_assert_int_eq(ms_put_buffer_async(w, big, sizeof(big)), 0);
		ck_assert_int_le(rec->max_cnt, MS_STREAM_MAX_IOV);
	}
	/* The queue never waits for the final flush to send them. */
	ck_assert_int_ge(rec->calls, (int)(300 + small) / MS_STREAM_MAX_IOV);
	ck_assert_int_eq(ms_stream_close(w), 0);
	ck_assert_int_le(rec->max_cnt, MS_STREAM_MAX_IOV);
	ck_assert_int_ge(rec->min_cnt, 1);
	ck_assert_int_eq(rec->nent, 300 + (int)small);
	ck_assert_uint_eq(rec->len, small + 300 * sizeof(big));
	for (i = 0; i < 300; i++) {
		if (i % period == 0)
			ck_assert_uint_eq(rec->data[off++], (uint8_t)i);
		ck_assert_mem_eq(rec->data + off, big, sizeof(big));
		off += sizeof(big);
	}
	free(rec->data);
	free(rec);
}
END_TEST

START_TEST(test_sinks_iov_callback_error_sticky)
{
	ms_stream_opts o = opts_of(16, 0);
	struct iov_rec *rec = malloc(sizeof(*rec));
	uint8_t buf[100] = {0};
	ms_stream *w;
	int i;

	ck_assert_ptr_nonnull(rec);
	iov_rec_init(rec);
	rec->fail_at = 2;
	rec->fail_err = -ECONNRESET;
	ck_assert_int_eq(ms_stream_new_iov(&w, iov_rec_fn, rec, NULL), 0);
	ck_assert_int_eq(ms_put_buffer(w, buf, 10), 0);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ck_assert_int_eq(ms_put_buffer(w, buf, 20), 0);
	ck_assert_int_eq(ms_stream_flush(w), -ECONNRESET);
	ck_assert_int_eq(ms_stream_error(w), -ECONNRESET);
	ck_assert_uint_eq(ms_stream_error_offset(w), 10);
	ck_assert_ptr_nonnull(strstr(ms_stream_errmsg(w), "iovec callback"));
	ck_assert_int_eq(ms_put_u8(w, 1), -ECONNRESET);
	ck_assert_int_eq(ms_put_buffer_async(w, buf, 100), -ECONNRESET);
	ck_assert_uint_eq(ms_stream_tell(w), 30);
	ck_assert_int_eq(ms_stream_flush(w), -ECONNRESET);
	ck_assert_int_eq(ms_stream_close(w), -ECONNRESET);
	/* No call after the one that failed. */
	ck_assert_int_eq(rec->calls, 2);
	free(rec->data);

	/*
	 * A failure in an internal flush surfaces in the put: with a 16-byte
	 * buffer, the puts of bytes 16, 32 and 48 flush.
	 */
	iov_rec_init(rec);
	rec->fail_at = 3;
	rec->fail_err = -EIO;
	ck_assert_int_eq(ms_stream_new_iov(&w, iov_rec_fn, rec, &o), 0);
	for (i = 0; i < 48; i++)
		ck_assert_int_eq(ms_put_u8(w, (uint8_t)i), 0);
	ck_assert_int_eq(ms_put_u8(w, 48), -EIO);
	ck_assert_uint_eq(ms_stream_tell(w), 48);
	ck_assert_uint_eq(ms_stream_error_offset(w), 32);
	ck_assert_int_eq(rec->calls, 3);
	ck_assert_int_eq(ms_stream_close(w), -EIO);
	ck_assert_int_eq(rec->calls, 3);
	ck_assert_uint_eq(rec->len, 32);
	free(rec->data);
	free(rec);
}
END_TEST

/* Concatenates @n entries into a new buffer of *len bytes. */
static uint8_t *concat(const struct iovec *iov, int n, size_t *len)
{
	uint8_t *out;
	size_t total = 0, off = 0;
	int i;

	for (i = 0; i < n; i++)
		total += iov[i].iov_len;
	out = malloc(total ? total : 1);
	ck_assert_ptr_nonnull(out);
	for (i = 0; i < n; i++) {
		memcpy(out + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	*len = total;
	return out;
}

START_TEST(test_sinks_iov_array_script)
{
	struct ms_test_script sc;
	static struct iovec iov[2048];
	ms_stream_stats st;
	uint8_t *want, *got;
	size_t len, glen;
	ms_stream *w;
	int cnt = -1, i;

	ms_test_script_init(&sc);
	want = script_bytes(&sc, &len);
	ck_assert_int_eq(ms_stream_new_iov_array(&w, iov, 2048, &cnt, NULL), 0);
	ck_assert_int_eq(cnt, 0);
	ck_assert_int_eq(ms_test_script_write(w, &sc), 0);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ck_assert_int_gt(cnt, 0);
	got = concat(iov, cnt, &glen);
	ck_assert_uint_eq(glen, len);
	ck_assert_mem_eq(got, want, len);
	free(got);
	for (i = 5; i < MS_TEST_SCRIPT_LEN; i += 8)
		ck_assert_msg(
			has_entry(iov, cnt, sc.big + i, 4096 + (size_t)i * 13),
			"async buffer %d was copied", i);
	ms_stream_get_stats(w, &st);
	ck_assert_uint_eq(st.bytes_zero_copy, script_async_bytes());
	ck_assert_uint_eq(st.bytes_copied, len - script_async_bytes());
	/* The stream's own entries are still intact after more puts. */
	for (i = 0; i < 100; i++)
		ck_assert_int_eq(ms_put_be64(w, 0xffffffffffffffffull), 0);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	got = concat(iov, cnt, &glen);
	ck_assert_uint_eq(glen, len + 800);
	ck_assert_mem_eq(got, want, len);
	free(got);
	ck_assert_int_eq(ms_stream_close(w), 0);
	free(want);
}
END_TEST

/* Data the stream owns stays put while more is written, until close. */
START_TEST(test_sinks_iov_array_entries_stay_valid)
{
	ms_stream_opts o = opts_of(16, 0);
	struct iovec iov[256];
	uint8_t want[1010], *got;
	const void *first_base;
	size_t glen, i;
	ms_stream *w;
	int cnt = -1;

	for (i = 0; i < sizeof(want); i++)
		want[i] = (uint8_t)(i * 7 + 1);
	ck_assert_int_eq(ms_stream_new_iov_array(&w, iov, 256, &cnt, &o), 0);
	ck_assert_int_eq(ms_put_buffer(w, want, 10), 0);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ck_assert_int_eq(cnt, 1);
	ck_assert_uint_eq(iov[0].iov_len, 10);
	ck_assert_ptr_ne(iov[0].iov_base, want);
	first_base = iov[0].iov_base;
	/* Flushes a few bytes at a time, through many staging chunks. */
	for (i = 10; i < sizeof(want); i += 11) {
		size_t n = sizeof(want) - i < 11 ? sizeof(want) - i : 11;

		ck_assert_int_eq(ms_put_buffer(w, want + i, n), 0);
		if (i % 3 == 0)
			ck_assert_int_eq(ms_stream_flush(w), 0);
	}
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ck_assert_ptr_eq(iov[0].iov_base, first_base);
	ck_assert_mem_eq(iov[0].iov_base, want, 10);
	got = concat(iov, cnt, &glen);
	ck_assert_uint_eq(glen, sizeof(want));
	ck_assert_mem_eq(got, want, sizeof(want));
	free(got);
	for (i = 0; i < (size_t)cnt; i++) {
		ck_assert_uint_ge(iov[i].iov_len, 1);
		ck_assert_uint_le(iov[i].iov_len, 16);
	}
	ck_assert_int_eq(ms_stream_close(w), 0);
}
END_TEST

START_TEST(test_sinks_iov_array_enospc)
{
	static uint8_t a[5000], b[6000];
	struct iovec iov[4];
	ms_stream *w;
	int cnt = -1;

	memset(iov, 0, sizeof(iov));
	ck_assert_int_eq(ms_stream_new_iov_array(&w, iov, 3, &cnt, NULL), 0);
	ck_assert_int_eq(ms_put_u8(w, 1), 0);
	ck_assert_int_eq(ms_put_buffer_async(w, a, sizeof(a)), 0);
	ck_assert_int_eq(ms_put_be16(w, 2), 0);
	ck_assert_int_eq(ms_put_buffer_async(w, b, sizeof(b)), 0);
	ck_assert_int_eq(ms_stream_flush(w), -ENOSPC);
	ck_assert_int_eq(cnt, 3);
	ck_assert_uint_eq(iov[0].iov_len, 1);
	ck_assert_ptr_eq(iov[1].iov_base, a);
	ck_assert_uint_eq(iov[2].iov_len, 2);
	ck_assert_ptr_null(iov[3].iov_base);
	ck_assert_uint_eq(ms_stream_error_offset(w), 1 + sizeof(a) + 2);
	ck_assert_ptr_nonnull(strstr(ms_stream_errmsg(w), "iovec array"));
	ck_assert_int_eq(ms_put_u8(w, 1), -ENOSPC);
	ck_assert_int_eq(ms_stream_close(w), -ENOSPC);
	ck_assert_int_eq(cnt, 3);

	/* Full on the last entry exactly is fine; one more is not. */
	ck_assert_int_eq(ms_stream_new_iov_array(&w, iov, 1, &cnt, NULL), 0);
	ck_assert_int_eq(ms_put_be32(w, 5), 0);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ck_assert_int_eq(cnt, 1);
	ck_assert_int_eq(ms_put_be32(w, 6), 0);
	ck_assert_int_eq(ms_stream_flush(w), -ENOSPC);
	ck_assert_int_eq(cnt, 1);
	ck_assert_int_eq(ms_stream_close(w), -ENOSPC);
	ck_assert_int_eq(cnt, 1);
}
END_TEST

/*
 * Close frees the chunks that stream-owned entries point at, so it never
 * hands out entries itself: unflushed bytes are dropped with -EINVAL and
 * the caller's array is left exactly as the last flush left it.
 */
START_TEST(test_sinks_iov_array_close_unflushed)
{
	static uint8_t big[5000];
	struct iovec iov[8], before[8];
	ms_stream *w;
	int cnt = -1;

	/* Nothing flushed: nothing is handed out. */
	memset(iov, 0x5a, sizeof(iov));
	memcpy(before, iov, sizeof(iov));
	ck_assert_int_eq(ms_stream_new_iov_array(&w, iov, 8, &cnt, NULL), 0);
	ck_assert_int_eq(cnt, 0);
	ck_assert_int_eq(ms_put_be32(w, 1), 0);
	ck_assert_int_eq(ms_put_buffer_async(w, big, sizeof(big)), 0);
	ck_assert_int_eq(ms_put_u8(w, 2), 0);
	ck_assert_int_eq(ms_stream_close(w), -EINVAL);
	ck_assert_int_eq(cnt, 0);
	ck_assert_mem_eq(iov, before, sizeof(iov));

	/* Flushed, then more: the entries of the flush stay as they were. */
	ck_assert_int_eq(ms_stream_new_iov_array(&w, iov, 8, &cnt, NULL), 0);
	ck_assert_int_eq(ms_put_be32(w, 1), 0);
	ck_assert_int_eq(ms_put_buffer_async(w, big, sizeof(big)), 0);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ck_assert_int_eq(cnt, 2);
	memcpy(before, iov, sizeof(iov));
	ck_assert_int_eq(ms_put_u8(w, 2), 0);
	ck_assert_int_eq(ms_stream_close(w), -EINVAL);
	ck_assert_int_eq(cnt, 2);
	ck_assert_mem_eq(iov, before, sizeof(iov));
	/* Entries that point at the caller's own buffers stay usable. */
	ck_assert_ptr_eq(iov[1].iov_base, big);
	ck_assert_uint_eq(iov[1].iov_len, sizeof(big));

	/* Flush, use the entries, then close: the documented order. */
	ck_assert_int_eq(ms_stream_new_iov_array(&w, iov, 8, &cnt, NULL), 0);
	ck_assert_int_eq(ms_put_be32(w, 0x01020304), 0);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ck_assert_int_eq(cnt, 1);
	ck_assert_uint_eq(iov[0].iov_len, 4);
	ck_assert_uint_eq(((const uint8_t *)iov[0].iov_base)[3], 4);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ck_assert_int_eq(ms_stream_close(w), 0);
	ck_assert_int_eq(cnt, 1);
}
END_TEST

/*
 * A flush that delivered everything succeeds even when the next staging
 * chunk could not be allocated: the chunk is taken by the next put.
 */
START_TEST(test_sinks_iov_array_flush_allocates_nothing)
{
	ms_stream_opts o = opts_of(16, 0);
	struct ms_test_alloc ta;
	struct iovec iov[8];
	uint8_t b16[16];
	ms_stream *w;
	int cnt = -1;

	memset(b16, 0x33, sizeof(b16));
	/* Allocations: the stream, its first chunk, then the next chunk. */
	ms_test_alloc_init(&ta, 3);
	o.allocator = &ta.a;
	ck_assert_int_eq(ms_stream_new_iov_array(&w, iov, 8, &cnt, &o), 0);
	ck_assert_int_eq(ta.calls, 2);
	/* Exactly fills the first chunk. */
	ck_assert_int_eq(ms_put_buffer(w, b16, sizeof(b16)), 0);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ck_assert_int_eq(ta.calls, 2);
	ck_assert_int_eq(cnt, 1);
	ck_assert_uint_eq(iov[0].iov_len, 16);
	ck_assert_mem_eq(iov[0].iov_base, b16, 16);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	/* The next put needs the chunk, and that allocation fails. */
	ck_assert_int_eq(ms_put_u8(w, 1), -ENOMEM);
	ck_assert_int_eq(cnt, 1);
	ck_assert_int_eq(ms_stream_close(w), -ENOMEM);
	ck_assert_int_eq(ta.live, 0);

	/* Without the failure, the next put takes a new chunk. */
	ms_test_alloc_init(&ta, 0);
	ck_assert_int_eq(ms_stream_new_iov_array(&w, iov, 8, &cnt, &o), 0);
	ck_assert_int_eq(ms_put_buffer(w, b16, sizeof(b16)), 0);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ck_assert_int_eq(ms_put_be16(w, 0x3344), 0);
	ck_assert_int_eq(ta.calls, 3);
	ck_assert_int_eq(ms_stream_flush(w), 0);
	ck_assert_int_eq(cnt, 2);
	ck_assert_uint_eq(iov[1].iov_len, 2);
	ck_assert_int_eq(ms_stream_close(w), 0);
	ck_assert_int_eq(ta.live, 0);
}
END_TEST

static int iov_nop_fn(void *opaque, const struct iovec *iov, int iovcnt)
{
	(void)opaque;
	(void)iov;
	(void)iovcnt;
	return 0;
}

START_TEST(test_sinks_iov_bad_args)
{
	ms_stream_opts bad = opts_of(0, 0);
	ms_stream *const sentinel = (ms_stream *)0x1;
	ms_stream *s = sentinel;
	struct iovec iov[2] = {{NULL, 0}, {NULL, 1}};
	int cnt = 7;

	bad.version = 2;
	ck_assert_int_eq(ms_stream_new_iov(&s, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(ms_stream_new_iov(&s, iov_nop_fn, NULL, &bad),
			 -EINVAL);
	ck_assert_int_eq(ms_stream_new_iov(NULL, iov_nop_fn, NULL, NULL),
			 -EINVAL);
	ck_assert_int_eq(ms_stream_new_iov_array(&s, NULL, 2, &cnt, NULL),
			 -EINVAL);
	ck_assert_int_eq(ms_stream_new_iov_array(&s, iov, 0, &cnt, NULL),
			 -EINVAL);
	ck_assert_int_eq(ms_stream_new_iov_array(&s, iov, -1, &cnt, NULL),
			 -EINVAL);
	ck_assert_int_eq(ms_stream_new_iov_array(&s, iov, 2, NULL, NULL),
			 -EINVAL);
	ck_assert_int_eq(ms_stream_new_iov_array(&s, iov, 2, &cnt, &bad),
			 -EINVAL);
	ck_assert_int_eq(cnt, 7);
	ck_assert_int_eq(ms_stream_new_iov_reader(&s, iov, -1, NULL), -EINVAL);
	ck_assert_int_eq(ms_stream_new_iov_reader(&s, NULL, 1, NULL), -EINVAL);
	/* A NULL base is refused only when its length is not zero. */
	ck_assert_int_eq(ms_stream_new_iov_reader(&s, iov, 2, NULL), -EINVAL);
	ck_assert_int_eq(ms_stream_new_iov_reader(&s, iov, 1, &bad), -EINVAL);
	ck_assert_ptr_eq(s, sentinel);
	ck_assert_int_eq(ms_stream_new_iov_reader(&s, iov, 1, NULL), 0);
	ck_assert(ms_stream_is_eof(s));
	ck_assert_int_eq(ms_stream_close(s), 0);
	ck_assert_int_eq(ms_stream_new_iov_reader(&s, NULL, 0, NULL), 0);
	ck_assert(ms_stream_is_eof(s));
	ck_assert_int_eq(ms_stream_close(s), 0);
}
END_TEST

/*
 * Iovec reader.
 */

/* Entry sizes: mostly small, some large, some empty. */
static const size_t mixed_sizes[] = {0, 1,    0,  2,  3,  17, 0, 0, 4096,
				     5, 1000, 16, 15, 31, 33, 0, 7, 20000};
static const size_t small_sizes[] = {0, 1, 2, 0, 3, 5, 8, 0, 13, 21, 1, 34};

/*
 * Cuts @len bytes into entries whose sizes cycle through @sizes (of
 * @nsizes), then adds an empty entry; returns the number of entries.
 */
static int cut_iov(const uint8_t *data, size_t len, const size_t *sizes,
		   size_t nsizes, struct iovec *iov, int max)
{
	size_t off = 0, k = 0;
	int n = 0;

	while (off < len) {
		size_t sz = sizes[k++ % nsizes];

		ck_assert_int_lt(n, max - 1);
		if (sz > len - off)
			sz = len - off;
		iov[n].iov_base = (void *)(uintptr_t)(data + off);
		iov[n].iov_len = sz;
		off += sz;
		n++;
	}
	/* A trailing empty entry. */
	iov[n].iov_base = NULL;
	iov[n].iov_len = 0;
	return n + 1;
}

START_TEST(test_sinks_iov_reader_script)
{
	static const size_t bufsizes[] = {16, 64, 0};
	struct ms_test_script sc;
	static struct iovec iov[1024];
	ms_stream_stats st;
	uint8_t *want;
	size_t len, b;
	ms_stream *r;
	int n;

	ms_test_script_init(&sc);
	want = script_bytes(&sc, &len);
	n = cut_iov(want, len, mixed_sizes,
		    sizeof(mixed_sizes) / sizeof(mixed_sizes[0]), iov, 1024);
	for (b = 0; b < sizeof(bufsizes) / sizeof(bufsizes[0]); b++) {
		ms_stream_opts o = opts_of(bufsizes[b], 0);

		ck_assert_int_eq(ms_stream_new_iov_reader(&r, iov, n, &o), 0);
		ms_test_script_read(r, &sc);
		ck_assert_uint_eq(ms_stream_tell(r), len);
		ck_assert(ms_stream_is_eof(r));
		ms_stream_get_stats(r, &st);
		ck_assert_uint_eq(st.bytes, len);
		ck_assert_uint_ge(st.sink_calls, 1);
		ck_assert_int_eq(ms_stream_close(r), 0);
	}
	free(want);
}
END_TEST

START_TEST(test_sinks_iov_reader_peek_skip)
{
	ms_stream_opts o = opts_of(16, 0);
	uint8_t data[1000], buf[64];
	struct iovec iov[200];
	const uint8_t *p;
	ms_stream *r;
	size_t i, pos = 0;
	int n, k;

	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 3);
	n = cut_iov(data, sizeof(data), small_sizes,
		    sizeof(small_sizes) / sizeof(small_sizes[0]), iov, 200);
	ck_assert_int_eq(ms_stream_new_iov_reader(&r, iov, n, &o), 0);
	while (pos < 900) {
		size_t want = sizeof(data) - pos < 16 ? sizeof(data) - pos : 16;

		ck_assert_int_eq(ms_peek(r, &p, 16), (ssize_t)want);
		for (k = 0; k < (int)want; k++)
			ck_assert_uint_eq(p[k], (uint8_t)((pos + k) * 3));
		if (pos % 3 == 0) {
			ck_assert_int_eq(ms_peek(r, &p, 17), -EINVAL);
			ck_assert_int_eq(ms_stream_error(r), 0);
		}
		/* Alternately skip 7 and read 5 bytes. */
		if (pos % 2) {
			ck_assert_int_eq(ms_skip(r, 7), 0);
			pos += 7;
		} else {
			ck_assert_int_eq(ms_get_buffer(r, buf, 5), 0);
			for (k = 0; k < 5; k++)
				ck_assert_uint_eq(buf[k],
						  (uint8_t)((pos + k) * 3));
			pos += 5;
		}
		ck_assert_uint_eq(ms_stream_tell(r), pos);
	}
	/* A large skip across many entries, then a read past the end. */
	ck_assert_int_eq(ms_skip(r, sizeof(data) - pos - 10), 0);
	ck_assert_int_eq(ms_peek(r, &p, 16), 10);
	ck_assert_uint_eq(p[0], (uint8_t)(990 * 3));
	memset(buf, 0xee, sizeof(buf));
	ck_assert_int_eq(ms_get_buffer(r, buf, 20), -ENODATA);
	ck_assert_uint_eq(ms_stream_error_offset(r), 990);
	for (k = 0; k < 20; k++)
		ck_assert_uint_eq(buf[k], 0);
	ck_assert_uint_eq(buf[20], 0xee);
	ck_assert_int_eq(ms_peek(r, &p, 1), -ENODATA);
	ck_assert_int_eq(ms_stream_close(r), -ENODATA);

	/* Entries of only empty parts read as an empty stream. */
	for (k = 0; k < 10; k++) {
		iov[k].iov_base = data;
		iov[k].iov_len = 0;
	}
	ck_assert_int_eq(ms_stream_new_iov_reader(&r, iov, 10, &o), 0);
	ck_assert(ms_stream_is_eof(r));
	ck_assert_int_eq(ms_get_u8(r, buf), -ENODATA);
	ck_assert_uint_eq(ms_stream_error_offset(r), 0);
	ck_assert_int_eq(ms_stream_close(r), -ENODATA);
}
END_TEST

/*
 * Custom transports.
 */

struct cw {
	uint8_t *data;
	size_t len, cap;
	uint64_t rng;
	size_t max_take; /* most bytes one writev takes */
	bool eintr, eagain;
	bool has_wait;
	bool need_wait; /* -EAGAIN was returned; wait not yet called */
	int fail_after; /* fail once this many bytes were taken, if > 0 */
	int fail_err;
	int close_ret;
	int calls, eintrs, eagains, waits, closes, bad;
};

static void cw_init(struct cw *c, size_t max_take)
{
	memset(c, 0, sizeof(*c));
	c->rng = 0x9e3779b97f4a7c15ull;
	c->max_take = max_take;
}

static ssize_t cw_writev(void *opaque, const struct iovec *iov, int iovcnt)
{
	struct cw *c = opaque;
	size_t offered = 0, take, done = 0;
	uint64_t r;
	int i;

	c->calls++;
	if (c->closes)
		c->bad++;
	if (iovcnt < 1 || iovcnt > MS_STREAM_MAX_IOV)
		c->bad++;
	for (i = 0; i < iovcnt; i++)
		offered += iov[i].iov_len;
	if (!offered)
		c->bad++;
	if (c->need_wait && c->has_wait)
		c->bad++;
	c->need_wait = false;
	if (c->fail_after > 0 && c->len >= (size_t)c->fail_after)
		return c->fail_err;
	r = ms_test_rand(&c->rng);
	if (c->eintr && r % 7 == 0) {
		c->eintrs++;
		return -EINTR;
	}
	if (c->eagain && r % 5 == 1) {
		c->eagains++;
		c->need_wait = true;
		return -EAGAIN;
	}
	take = 1 + (size_t)(r >> 16) % c->max_take;
	if (take > offered)
		take = offered;
	if (c->len + take > c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 4096;
		uint8_t *nd;

		while (cap < c->len + take)
			cap *= 2;
		nd = realloc(c->data, cap);
		if (!nd)
			return -ENOMEM;
		c->data = nd;
		c->cap = cap;
	}
	for (i = 0; i < iovcnt && done < take; i++) {
		size_t n = iov[i].iov_len < take - done ? iov[i].iov_len
							: take - done;

		memcpy(c->data + c->len + done, iov[i].iov_base, n);
		done += n;
	}
	c->len += done;
	return (ssize_t)done;
}

static int cw_wait(void *opaque, int events)
{
	struct cw *c = opaque;

	c->waits++;
	if (events != MS_WAIT_WRITE || !c->need_wait)
		c->bad++;
	c->need_wait = false;
	return 0;
}

static int cw_close(void *opaque)
{
	struct cw *c = opaque;

	c->closes++;
	return c->close_ret;
}

static const ms_stream_ops cw_ops = {MS_STREAM_OPS_VERSION, cw_writev, NULL,
				     cw_wait, cw_close};

/*
 * Short writes of 1..N bytes with -EINTR and -EAGAIN (and a wait op)
 * sprinkled in: the bytes arrive complete and in order.
 */
START_TEST(test_sinks_custom_writer_short_writes)
{
	static const size_t takes[] = {1, 7, 1000, 100000};
	struct ms_test_script sc;
	ms_stream_stats st;
	uint8_t *want;
	size_t len, t;
	ms_stream *w;

	ms_test_script_init(&sc);
	want = script_bytes(&sc, &len);
	for (t = 0; t < sizeof(takes) / sizeof(takes[0]); t++) {
		struct cw c;

		cw_init(&c, takes[t]);
		c.eintr = true;
		c.eagain = true;
		c.has_wait = true;
		ck_assert_int_eq(ms_stream_new_custom(&w, &cw_ops, &c,
						      MS_STREAM_WRITER, NULL),
				 0);
		ck_assert_int_eq(ms_test_script_write(w, &sc), 0);
		ck_assert_int_eq(ms_stream_flush(w), 0);
		ms_stream_get_stats(w, &st);
		ck_assert_uint_eq(st.sink_calls, (uint64_t)c.calls);
		ck_assert_int_eq(c.closes, 0);
		ck_assert_int_eq(ms_stream_close(w), 0);
		ck_assert_int_eq(c.closes, 1);
		ck_assert_int_eq(c.bad, 0);
		ck_assert_int_eq(c.waits, c.eagains);
		/* The largest take needs too few calls to be sure of these. */
		if (takes[t] <= 1000) {
			ck_assert_int_gt(c.eintrs, 0);
			ck_assert_int_gt(c.eagains, 0);
		}
		if (takes[t] == 1)
			ck_assert_int_ge(c.calls, (int)len);
		ck_assert_uint_eq(c.len, len);
		ck_assert_mem_eq(c.data, want, len);
		free(c.data);
	}
	free(want);
}
END_TEST

START_TEST(test_sinks_custom_writer_errors)
{
	ms_stream_ops ops = cw_ops;
	ms_stream_opts o = opts_of(16, 0);
	uint8_t buf[100];
	ms_stream *w;
	struct cw c;

	memset(buf, 3, sizeof(buf));

	/* -EAGAIN without a wait op fails the stream with -EAGAIN. */
	ops.wait = NULL;
	cw_init(&c, 5);
	c.eagain = true;
	ck_assert_int_eq(
		ms_stream_new_custom(&w, &ops, &c, MS_STREAM_WRITER, &o), 0);
	ck_assert_int_eq(ms_put_buffer(w, buf, sizeof(buf)), -EAGAIN);
	ck_assert_int_eq(ms_stream_error(w), -EAGAIN);
	ck_assert_uint_eq(ms_stream_error_offset(w), c.len);
	ck_assert_int_eq(c.eagains, 1);
	ck_assert_int_eq(c.waits, 0);
	ck_assert_int_eq(ms_stream_close(w), -EAGAIN);
	ck_assert_int_eq(c.closes, 1);
	free(c.data);

	/* An error after some bytes: the offset is the first not taken. */
	cw_init(&c, 3);
	c.fail_after = 40;
	c.fail_err = -ECONNRESET;
	ck_assert_int_eq(
		ms_stream_new_custom(&w, &cw_ops, &c, MS_STREAM_WRITER, &o), 0);
	ck_assert_int_eq(ms_put_buffer(w, buf, sizeof(buf)), -ECONNRESET);
	ck_assert_uint_ge(c.len, 40);
	ck_assert_uint_eq(ms_stream_error_offset(w), c.len);
	ck_assert_int_eq(ms_stream_close(w), -ECONNRESET);
	ck_assert_int_eq(c.closes, 1);
	free(c.data);
}
END_TEST

/* A writev that lies about what it took. */
static ssize_t zero_writev(void *opaque, const struct iovec *iov, int iovcnt)
{
	(void)opaque;
	(void)iov;
	(void)iovcnt;
	return 0;
}

static ssize_t greedy_writev(void *opaque, const struct iovec *iov, int iovcnt)
{
	size_t n = 0;
	int i;

	(void)opaque;
	for (i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return (ssize_t)n + 1;
}

static int failing_wait(void *opaque, int events)
{
	(void)opaque;
	(void)events;
	return -ECANCELED;
}

static ssize_t eagain_writev(void *opaque, const struct iovec *iov, int iovcnt)
{
	(void)opaque;
	(void)iov;
	(void)iovcnt;
	return -EAGAIN;
}

START_TEST(test_sinks_custom_writer_bad_returns)
{
	ms_stream_ops ops = {MS_STREAM_OPS_VERSION, zero_writev, NULL, NULL,
			     NULL};
	ms_stream *w;

	ck_assert_int_eq(
		ms_stream_new_custom(&w, &ops, NULL, MS_STREAM_WRITER, NULL),
		0);
	ck_assert_int_eq(ms_put_be32(w, 1), 0);
	ck_assert_int_eq(ms_stream_flush(w), -EIO);
	ck_assert_uint_eq(ms_stream_error_offset(w), 0);
	ck_assert_int_eq(ms_stream_close(w), -EIO);

	ops.writev = greedy_writev;
	ck_assert_int_eq(
		ms_stream_new_custom(&w, &ops, NULL, MS_STREAM_WRITER, NULL),
		0);
	ck_assert_int_eq(ms_put_be32(w, 1), 0);
	ck_assert_int_eq(ms_stream_close(w), -EIO);

	/* A wait op's error fails the stream. */
	ops.writev = eagain_writev;
	ops.wait = failing_wait;
	ck_assert_int_eq(
		ms_stream_new_custom(&w, &ops, NULL, MS_STREAM_WRITER, NULL),
		0);
	ck_assert_int_eq(ms_put_be32(w, 1), 0);
	ck_assert_int_eq(ms_stream_flush(w), -ECANCELED);
	ck_assert_int_eq(ms_stream_close(w), -ECANCELED);
}
END_TEST

struct cr {
	const uint8_t *data;
	size_t len, off;
	uint64_t rng;
	size_t max_give;
	bool need_wait;
	int calls, eintrs, eagains, waits, closes, bad;
	int close_ret;
};

static ssize_t cr_read(void *opaque, void *buf, size_t len)
{
	struct cr *c = opaque;
	uint64_t r = ms_test_rand(&c->rng);
	size_t n;

	c->calls++;
	if (len < 1 || c->need_wait || c->closes)
		c->bad++;
	if (r % 11 == 0) {
		c->eintrs++;
		return -EINTR;
	}
	if (r % 13 == 1) {
		c->eagains++;
		c->need_wait = true;
		return -EAGAIN;
	}
	n = c->len - c->off;
	if (n > len)
		n = len;
	if (n > c->max_give)
		n = c->max_give;
	memcpy(buf, c->data + c->off, n);
	c->off += n;
	return (ssize_t)n;
}

static int cr_wait(void *opaque, int events)
{
	struct cr *c = opaque;

	c->waits++;
	if (events != MS_WAIT_READ || !c->need_wait)
		c->bad++;
	c->need_wait = false;
	return 0;
}

static int cr_close(void *opaque)
{
	struct cr *c = opaque;

	c->closes++;
	return c->close_ret;
}

static const ms_stream_ops cr_ops = {MS_STREAM_OPS_VERSION, NULL, cr_read,
				     cr_wait, cr_close};

/* A reader whose transport gives one byte per call. */
START_TEST(test_sinks_custom_reader_one_byte)
{
	ms_stream_opts o = opts_of(16, 0);
	struct ms_test_script sc;
	ms_stream_stats st;
	const uint8_t *p;
	uint8_t *want;
	size_t len;
	ms_stream *r;
	struct cr c;

	ms_test_script_init(&sc);
	want = script_bytes(&sc, &len);
	memset(&c, 0, sizeof(c));
	c.data = want;
	c.len = len;
	c.rng = 12345;
	c.max_give = 1;
	ck_assert_int_eq(
		ms_stream_new_custom(&r, &cr_ops, &c, MS_STREAM_READER, &o), 0);
	/* Peek waits for a full buffer, one byte at a time. */
	ck_assert_int_eq(ms_peek(r, &p, 16), 16);
	ck_assert_mem_eq(p, want, 16);
	ms_test_script_read(r, &sc);
	ck_assert(ms_stream_is_eof(r));
	ms_stream_get_stats(r, &st);
	ck_assert_uint_eq(st.sink_calls, (uint64_t)c.calls);
	ck_assert_uint_gt(st.sink_calls, len);
	ck_assert_int_gt(c.eintrs, 0);
	ck_assert_int_gt(c.eagains, 0);
	ck_assert_int_eq(c.waits, c.eagains);
	ck_assert_int_eq(c.bad, 0);
	ck_assert_int_eq(c.closes, 0);
	ck_assert_int_eq(ms_stream_close(r), 0);
	ck_assert_int_eq(c.closes, 1);
	free(want);
}
END_TEST

START_TEST(test_sinks_custom_close_once)
{
	ms_stream *s;
	struct cw c;
	struct cr rc;

	/* A close op's error becomes the stream's. */
	cw_init(&c, 100);
	c.close_ret = -EIO;
	ck_assert_int_eq(
		ms_stream_new_custom(&s, &cw_ops, &c, MS_STREAM_WRITER, NULL),
		0);
	ck_assert_int_eq(ms_put_be64(s, 0x0102030405060708ull), 0);
	ck_assert_int_eq(c.calls, 0);
	ck_assert_int_eq(ms_stream_close(s), -EIO);
	/* After the final flush. */
	ck_assert_int_eq(c.closes, 1);
	ck_assert_uint_eq(c.len, 8);
	ck_assert_int_eq(c.bad, 0);
	free(c.data);

	/* It does not replace an earlier error, and is still called. */
	cw_init(&c, 100);
	c.close_ret = -EIO;
	c.fail_after = 8;
	c.fail_err = -ENOSPC;
	ck_assert_int_eq(
		ms_stream_new_custom(&s, &cw_ops, &c, MS_STREAM_WRITER, NULL),
		0);
	ck_assert_int_eq(ms_put_be64(s, 1), 0);
	ck_assert_int_eq(ms_stream_flush(s), 0);
	ck_assert_int_eq(ms_put_be64(s, 2), 0);
	ck_assert_int_eq(ms_stream_flush(s), -ENOSPC);
	ck_assert_int_eq(c.closes, 0);
	ck_assert_int_eq(ms_stream_close(s), -ENOSPC);
	ck_assert_int_eq(c.closes, 1);
	free(c.data);

	/* Readers too. */
	memset(&rc, 0, sizeof(rc));
	rc.data = (const uint8_t *)"abc";
	rc.len = 3;
	rc.rng = 1;
	rc.max_give = 3;
	rc.close_ret = -EBADF;
	ck_assert_int_eq(
		ms_stream_new_custom(&s, &cr_ops, &rc, MS_STREAM_READER, NULL),
		0);
	ck_assert_int_eq(ms_skip(s, 3), 0);
	ck_assert(ms_stream_is_eof(s));
	ck_assert_int_eq(ms_stream_close(s), -EBADF);
	ck_assert_int_eq(rc.closes, 1);
	ck_assert_int_eq(rc.bad, 0);
}
END_TEST

START_TEST(test_sinks_custom_bad_ops)
{
	ms_stream_ops ops = cw_ops;
	ms_stream_opts bad = opts_of(0, 0);
	ms_stream *const sentinel = (ms_stream *)0x1;
	ms_stream *s = sentinel;
	struct cw c;

	cw_init(&c, 1);
	ops.version = 0;
	ck_assert_int_eq(
		ms_stream_new_custom(&s, &ops, &c, MS_STREAM_WRITER, NULL),
		-EINVAL);
	ops.version = MS_STREAM_OPS_VERSION + 1;
	ck_assert_int_eq(
		ms_stream_new_custom(&s, &ops, &c, MS_STREAM_WRITER, NULL),
		-EINVAL);
	ops.version = MS_STREAM_OPS_VERSION;
	/* cw_ops has no read op, cr_ops no writev op. */
	ck_assert_int_eq(
		ms_stream_new_custom(&s, &ops, &c, MS_STREAM_READER, NULL),
		-EINVAL);
	ck_assert_int_eq(
		ms_stream_new_custom(&s, &cr_ops, &c, MS_STREAM_WRITER, NULL),
		-EINVAL);
	ck_assert_int_eq(
		ms_stream_new_custom(&s, NULL, &c, MS_STREAM_WRITER, NULL),
		-EINVAL);
	ck_assert_int_eq(
		ms_stream_new_custom(&s, &ops, &c, (ms_stream_mode)0, NULL),
		-EINVAL);
	bad.version = 0;
	ck_assert_int_eq(
		ms_stream_new_custom(&s, &ops, &c, MS_STREAM_WRITER, &bad),
		-EINVAL);
	ck_assert_int_eq(
		ms_stream_new_custom(NULL, &ops, &c, MS_STREAM_WRITER, NULL),
		-EINVAL);
	ck_assert_ptr_eq(s, sentinel);
	/* A refused stream never calls its ops. */
	ck_assert_int_eq(c.calls + c.closes + c.waits, 0);
}
END_TEST

/*
 * Errors a descriptor really returns are named in the message, not
 * "unknown error": read(2) on a directory (EISDIR) and a write to an
 * unconnected socket (ENOTCONN).
 */
START_TEST(test_sinks_fd_transport_errnos_named)
{
	ms_stream *r, *w;
	uint8_t v = 9;
	int fd;

	fd = open("/", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(
		ms_stream_new_fd(&r, fd, MS_STREAM_READER, MS_FD_OWN, NULL), 0);
	ck_assert_int_eq(ms_get_u8(r, &v), -EISDIR);
	ck_assert_uint_eq(v, 0);
	ck_assert_uint_eq(ms_stream_error_offset(r), 0);
	ck_assert_str_eq(ms_stream_errmsg(r),
			 "offset 0x0: read error: is a directory");
	ck_assert_int_eq(ms_stream_close(r), -EISDIR);
	ck_assert(fd_is_closed(fd));

	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(
		ms_stream_new_fd(&w, fd, MS_STREAM_WRITER, MS_FD_OWN, NULL), 0);
	ck_assert_int_eq(ms_put_be32(w, 1), 0);
	ck_assert_int_eq(ms_stream_flush(w), -ENOTCONN);
	ck_assert_str_eq(ms_stream_errmsg(w),
			 "offset 0x0: write error: socket not connected");
	ck_assert_int_eq(ms_stream_close(w), -ENOTCONN);
	ck_assert(fd_is_closed(fd));
}
END_TEST

static Suite *sinks_suite(void)
{
	Suite *s = suite_create("sinks");
	TCase *tc;

	tc = tcase_create("fd files");
	tcase_set_timeout(tc, 10);
	tcase_add_loop_test(tc, test_sinks_fd_file_roundtrip, 0, 2);
	tcase_add_test(tc, test_sinks_fd_dev_null);
	tcase_add_test(tc, test_sinks_fd_eof_exact);
	tcase_add_test(tc, test_sinks_fd_enospc_dev_full);
	tcase_add_test(tc, test_sinks_fd_own_closes);
	tcase_add_test(tc, test_sinks_fd_bad_args);
	tcase_add_test(tc, test_sinks_file_roundtrip);
	tcase_add_test(tc, test_sinks_file_refusals);
	suite_add_tcase(s, tc);

	tc = tcase_create("fd processes");
	tcase_set_timeout(tc, 20);
	tcase_add_loop_test(tc, test_sinks_fd_eof_over_channel, 0, CH_KINDS);
	tcase_add_loop_test(tc, test_sinks_fd_process_roundtrip, 0, 8);
	tcase_add_loop_test(tc, test_sinks_fd_slow_reader_nonblocking_writer, 0,
			    CH_KINDS);
	tcase_add_loop_test(tc, test_sinks_fd_slow_writer_nonblocking_reader, 0,
			    CH_KINDS);
	tcase_add_loop_test(tc, test_sinks_fd_peek_across_refills, 0, CH_KINDS);
	suite_add_tcase(s, tc);

	tc = tcase_create("fd errors");
	tcase_set_timeout(tc, 20);
	tcase_add_loop_test(tc, test_sinks_fd_epipe_no_sigpipe, 0, CH_KINDS);
	tcase_add_loop_test(tc, test_sinks_fd_eintr_read, 0, CH_KINDS);
	tcase_add_loop_test(tc, test_sinks_fd_eintr_write, 0, CH_KINDS);
	tcase_add_loop_test(tc, test_sinks_fd_timeout, 0, CH_KINDS);
	tcase_add_test(tc, test_sinks_fd_transport_errnos_named);
	suite_add_tcase(s, tc);

	tc = tcase_create("iovec writer");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_sinks_iov_callback_script);
	tcase_add_test(tc, test_sinks_iov_callback_exact_entries);
	tcase_add_loop_test(tc, test_sinks_iov_callback_max_iov, 0, 3);
	tcase_add_test(tc, test_sinks_iov_callback_error_sticky);
	tcase_add_test(tc, test_sinks_iov_array_script);
	tcase_add_test(tc, test_sinks_iov_array_entries_stay_valid);
	tcase_add_test(tc, test_sinks_iov_array_enospc);
	tcase_add_test(tc, test_sinks_iov_array_close_unflushed);
	tcase_add_test(tc, test_sinks_iov_array_flush_allocates_nothing);
	tcase_add_test(tc, test_sinks_iov_bad_args);
	suite_add_tcase(s, tc);

	tc = tcase_create("iovec reader");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_sinks_iov_reader_script);
	tcase_add_test(tc, test_sinks_iov_reader_peek_skip);
	suite_add_tcase(s, tc);

	tc = tcase_create("custom");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_sinks_custom_writer_short_writes);
	tcase_add_test(tc, test_sinks_custom_writer_errors);
	tcase_add_test(tc, test_sinks_custom_writer_bad_returns);
	tcase_add_test(tc, test_sinks_custom_reader_one_byte);
	tcase_add_test(tc, test_sinks_custom_close_once);
	tcase_add_test(tc, test_sinks_custom_bad_ops);
	suite_add_tcase(s, tc);
	return s;
}

MS_TEST_MAIN(sinks_suite)
