/* SPDX-License-Identifier: MIT */
/*
 * File-descriptor sink: files, pipes and sockets, blocking or not, over a
 * descriptor the caller gives (ms_stream_new_fd()) or one it opens for a
 * path (ms_stream_new_file()).
 *
 * The core completes short transfers and retries EINTR; this file turns
 * system calls into negative errnos, waits with poll() on EAGAIN and keeps
 * SIGPIPE away: sockets use MSG_NOSIGNAL (or SO_NOSIGPIPE), everything
 * else blocks the signal in the calling thread around the write and
 * consumes the one the write raised, as libcurl and OpenSSL do.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stream-impl.h"

struct fd_sink {
	int fd;
	unsigned flags;	  /* MS_FD_* */
	bool is_socket;	  /* writes use MSG_NOSIGNAL */
	bool may_sigpipe; /* a pipe or socket: writes may raise SIGPIPE */
};

static ssize_t neg_errno(void)
{
	return errno ? -errno : -EIO;
}

/* Write to something that is not a socket with SIGPIPE held off. */
static ssize_t writev_nosigpipe(int fd, const struct iovec *iov, int cnt)
{
	sigset_t pipe_set, old_set, pending;
	bool was_pending;
	ssize_t n;
	int saved;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigemptyset(&pending);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);

	n = writev(fd, iov, cnt);
	saved = errno;

	if (n < 0 && saved == EPIPE && !was_pending) {
		/* Consume the SIGPIPE this write raised, and only that one. */
#ifdef HAVE_SIGTIMEDWAIT
		struct timespec zero = {0, 0};

		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 &&
		       errno == EINTR)
			;
#else
		int sig;

		sigemptyset(&pending);
		sigpending(&pending);
		if (sigismember(&pending, SIGPIPE) == 1)
			sigwait(&pipe_set, &sig);
#endif
	}
	pthread_sigmask(SIG_SETMASK, &old_set, NULL);
	errno = saved;
	return n;
}

static ssize_t fd_writev(ms_stream *s, const struct iovec *iov, int cnt)
{
	const struct fd_sink *f = s->sink;
	ssize_t n;

	if (f->is_socket) {
#if HAVE_DECL_MSG_NOSIGNAL
		struct msghdr msg;

		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = (struct iovec *)(uintptr_t)iov;
		msg.msg_iovlen = cnt;
		n = sendmsg(f->fd, &msg, MSG_NOSIGNAL);
#elif HAVE_DECL_SO_NOSIGPIPE
		n = writev(f->fd, iov, cnt);
#else
		n = writev_nosigpipe(f->fd, iov, cnt);
#endif
	} else if (f->may_sigpipe) {
		n = writev_nosigpipe(f->fd, iov, cnt);
	} else {
		/* Files and devices never raise SIGPIPE: no masking needed. */
		n = writev(f->fd, iov, cnt);
	}
	return n < 0 ? neg_errno() : n;
}

static ssize_t fd_read(ms_stream *s, void *buf, size_t len)
{
	const struct fd_sink *f = s->sink;
	ssize_t n;

	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	n = read(f->fd, buf, len);
	return n < 0 ? neg_errno() : n;
}

static int fd_wait(ms_stream *s, int events)
{
	const struct fd_sink *f = s->sink;
	struct pollfd p;
	int r;

	p.fd = f->fd;
	p.events = events & MS_WAIT_READ ? POLLIN : POLLOUT;
	p.revents = 0;
	for (;;) {
		r = poll(&p, 1, s->timeout_ms ? s->timeout_ms : -1);
		if (r > 0) {
			if (p.revents & POLLNVAL)
				return -EBADF;
			/* Readiness, hang-up or error: the retry tells which. */
			return 0;
		}
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int fd_close(ms_stream *s)
{
	const struct fd_sink *f = s->sink;

	if (!(f->flags & MS_FD_OWN))
		return 0;
	/* POSIX leaves the descriptor's state unspecified after EINTR. */
	if (close(f->fd) < 0 && errno != EINTR)
		return -errno;
	return 0;
}

static const struct ms__transport fd_transport = {
	.flags = MS__SINK_HANDS_OFF,
	.writev = fd_writev,
	.read = fd_read,
	.wait = fd_wait,
	.close = fd_close,
};

/* Point a new stream at @fd, of type @st_mode. */
static void fd_attach(ms_stream *s, int fd, unsigned flags, mode_t st_mode)
{
	struct fd_sink *f = s->sink;

	f->fd = fd;
	f->flags = flags;
	f->is_socket = S_ISSOCK(st_mode);
	if (S_ISSOCK(st_mode) || S_ISFIFO(st_mode))
		s->queue_limit = s->buf_size;
	f->may_sigpipe =
		!S_ISREG(st_mode) && !S_ISCHR(st_mode) && !S_ISBLK(st_mode);
#if !HAVE_DECL_MSG_NOSIGNAL && HAVE_DECL_SO_NOSIGPIPE
	if (f->is_socket && s->mode == MS_STREAM_WRITER) {
		int one = 1;

		setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
	}
#endif
}

int ms_stream_new_fd(ms_stream **out, int fd, ms_stream_mode mode,
		     unsigned flags, const ms_stream_opts *opts)
{
	struct stat st;
	ms_stream *s;
	int ret;

	if (!out || fd < 0 || (flags & ~MS_FD_OWN))
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return errno == EBADF ? -EBADF : -EINVAL;
	ret = ms__stream_create_buffered(&s, mode, &fd_transport,
					 sizeof(struct fd_sink), opts);
	if (ret)
		return ret;
	fd_attach(s, fd, flags, st.st_mode);
	*out = s;
	return 0;
}

int ms_stream_new_file(ms_stream **out, const char *path, ms_stream_mode mode,
		       const ms_stream_opts *opts)
{
	struct stat st;
	ms_stream *s;
	int fd, oflags, ret;

	if (!out || !path)
		return -EINVAL;
	if (mode == MS_STREAM_READER)
		oflags = O_RDONLY | O_CLOEXEC;
	else if (mode == MS_STREAM_WRITER)
		oflags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
	else
		return -EINVAL;
	/* The stream first: a writer that cannot have one (bad options, no
	 * memory) leaves the file alone rather than truncated. */
	ret = ms__stream_create_buffered(&s, mode, &fd_transport,
					 sizeof(struct fd_sink), opts);
	if (ret)
		return ret;
	do
		fd = open(path, oflags, 0666);
	while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		ret = (int)neg_errno();
		goto out_destroy;
	}
	if (fstat(fd, &st) < 0) {
		ret = (int)neg_errno();
		goto out_close;
	}
	/* A directory opens for reading, but has no bytes to read. */
	if (S_ISDIR(st.st_mode)) {
		ret = -EISDIR;
		goto out_close;
	}
	fd_attach(s, fd, MS_FD_OWN, st.st_mode);
	*out = s;
	return 0;

out_close:
	close(fd);
out_destroy:
	ms__stream_destroy(s);
	return ret;
}
