/* SPDX-License-Identifier: MIT */
/*
 * The stream core: buffering, big-endian puts and gets, sticky errors.
 *
 * A writer keeps small puts in a staging buffer and queues large
 * ms_put_buffer_async() buffers as iovecs that point at the caller's
 * memory; a flush hands the staging bytes and the queued buffers, in
 * order, to the sink.  Staging bytes that are not yet described by an
 * iovec run from stage_start to buf_len, so a small put is a bounds check
 * and a store.
 *
 * A reader consumes buf[buf_pos, buf_len) and refills it from the sink's
 * read hook (or lets the sink lend its bytes in place).
 *
 * The core does not know which sink it serves: each sink's transport
 * table (stream-impl.h) gives the byte movers, hooks where the sink does
 * something else than the default (the memory writer grows instead of
 * flushing, the iovec array hands out entries instead of writing, the
 * feed reader is appended to instead of refilled) and flags for the few
 * rules that depend on the sink.
 *
 * After an error a reader's window is emptied and a writer refuses puts,
 * so the fast paths need no extra test for the sticky error beyond one
 * load.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "stream-impl.h"

/*
 * Errors.
 */

static int stream_vfail(ms_stream *s, int err, uint64_t offset, const char *fmt,
			va_list ap)
#if defined(__GNUC__)
	__attribute__((format(printf, 4, 0)))
#endif
	;

static int stream_vfail(ms_stream *s, int err, uint64_t offset, const char *fmt,
			va_list ap)
{
	if (s->err.code)
		return s->err.code;
	ms__error_vset(&s->err, err, -EIO, offset, MS__NO_SECTION, NULL, fmt,
		       ap);
	if (s->mode == MS_STREAM_READER) {
		/* Nothing buffered may be consumed after an error; a feed
		 * reader keeps its data for ms__feed_rewind(). */
		s->buf_len_at_err = s->buf_len;
		s->buf_pos = 0;
		s->buf_len = 0;
	}
	return s->err.code;
}

int ms__stream_fail(ms_stream *s, int err, uint64_t offset, const char *fmt,
		    ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = stream_vfail(s, err, offset, fmt, ap);
	va_end(ap);
	return ret;
}

void ms__stream_clear_error(ms_stream *s)
{
	if (!s->err.code)
		return;
	memset(&s->err, 0, sizeof(s->err));
	if (s->mode == MS_STREAM_READER)
		s->buf_len = s->buf_len_at_err;
}

int ms_stream_set_error(ms_stream *s, int err, const char *fmt, ...)
{
	va_list ap;
	int ret;

	assert(s);
	if (!s)
		return -EINVAL;
	va_start(ap, fmt);
	ret = stream_vfail(s, err, s->pos, fmt, ap);
	va_end(ap);
	return ret;
}

const ms__error *ms__stream_error(const ms_stream *s)
{
	return &s->err;
}

const char *ms__stream_errtext(const ms_stream *s)
{
	return ms__error_text(&s->err);
}

int ms_stream_error(const ms_stream *s)
{
	assert(s);
	return s ? s->err.code : -EINVAL;
}

const char *ms_stream_errmsg(const ms_stream *s)
{
	assert(s);
	if (!s)
		return "";
	return s->err.msg;
}

uint64_t ms_stream_error_offset(const ms_stream *s)
{
	assert(s);
	return s && s->err.code ? s->err.offset : 0;
}

uint64_t ms_stream_tell(const ms_stream *s)
{
	assert(s);
	return s ? s->pos : 0;
}

ms_stream_mode ms_stream_mode_of(const ms_stream *s)
{
	assert(s);
	return s ? s->mode : (ms_stream_mode)0;
}

void ms_stream_get_stats(const ms_stream *s, ms_stream_stats *st)
{
	assert(s && st);
	if (!st)
		return;
	if (!s) {
		memset(st, 0, sizeof(*st));
		return;
	}
	st->bytes = s->pos;
	st->bytes_copied = s->copied;
	st->bytes_zero_copy = s->zero_copied;
	st->sink_calls = s->sink_calls;
}

/*
 * Creation and destruction.
 */

/* Where the sink's state starts in the stream's allocation. */
#define SINK_OFFSET                                                            \
	((sizeof(struct ms_stream) + _Alignof(max_align_t) - 1) /              \
	 _Alignof(max_align_t) * _Alignof(max_align_t))

int ms__stream_create(ms_stream **sp, ms_stream_mode mode,
		      const struct ms__transport *t, size_t sink_size,
		      const ms_stream_opts *opts)
{
	const ms_allocator *a = NULL;
	size_t buf_size = MS_STREAM_DEFAULT_BUFFER_SIZE;
	size_t zc = MS_STREAM_DEFAULT_ZERO_COPY_THRESHOLD;
	int timeout_ms = 0;
	ms_stream *s;

	if (mode != MS_STREAM_WRITER && mode != MS_STREAM_READER)
		return -EINVAL;
	if (opts) {
		if (opts->version != MS_STREAM_OPTS_VERSION)
			return -EINVAL;
		if (opts->allocator &&
		    (!opts->allocator->malloc || !opts->allocator->realloc ||
		     !opts->allocator->free))
			return -EINVAL;
		a = opts->allocator;
		if (opts->buffer_size) {
			if (opts->buffer_size < 16 ||
			    opts->buffer_size > ((size_t)1 << 30))
				return -EINVAL;
			buf_size = opts->buffer_size;
		}
		if (opts->zero_copy_threshold)
			zc = opts->zero_copy_threshold;
		if (opts->timeout_ms < 0)
			return -EINVAL;
		timeout_ms = opts->timeout_ms;
	}

	if (sink_size > SIZE_MAX - SINK_OFFSET)
		return -ENOMEM;
	s = ms__malloc(a, SINK_OFFSET + sink_size);
	if (!s)
		return -ENOMEM;
	memset(s, 0, SINK_OFFSET + sink_size);
	s->mode = mode;
	s->t = t;
	s->flags = t->flags;
	s->sink = sink_size ? (uint8_t *)s + SINK_OFFSET : NULL;
	s->alloc = a;
	s->buf_size = buf_size;
	s->zc_threshold = zc;
	s->timeout_ms = timeout_ms;
	s->queue_limit = SIZE_MAX;
	*sp = s;
	return 0;
}

/*
 * Create a stream with its owned staging buffer: the constructor of the
 * fd, iovec and custom sinks.
 */
int ms__stream_create_buffered(ms_stream **sp, ms_stream_mode mode,
			       const struct ms__transport *t, size_t sink_size,
			       const ms_stream_opts *opts)
{
	ms_stream *s;
	int ret;

	ret = ms__stream_create(&s, mode, t, sink_size, opts);
	if (ret)
		return ret;
	s->buf = ms__malloc(s->alloc, s->buf_size);
	if (!s->buf) {
		ms__stream_destroy(s);
		return -ENOMEM;
	}
	s->buf_owned = true;
	s->buf_cap = s->buf_size;
	*sp = s;
	return 0;
}

void ms__stream_destroy(ms_stream *s)
{
	if (s->t->destroy)
		s->t->destroy(s);
	if (s->borrowed)
		s->buf = s->own_buf;
	if (s->buf_owned)
		ms__free(s->alloc, s->buf);
	ms__free(s->alloc, s);
}

int ms_stream_close(ms_stream *s)
{
	int ret;

	if (!s)
		return 0;
	if (s->mode == MS_STREAM_WRITER) {
		if (s->t->pre_close)
			s->t->pre_close(s);
		else
			ms_stream_flush(s);
	}
	if (s->t->close) {
		ret = s->t->close(s);
		if (ret < 0)
			ms__stream_fail(s, ret, s->pos, "closing the sink: %s",
					ms_strerror(ret));
	}
	ret = s->err.code;
	ms__stream_destroy(s);
	return ret;
}

/*
 * Writing.
 */

void ms__writer_seal(ms_stream *s)
{
	size_t n = s->buf_len - s->stage_start;

	if (!n)
		return;
	assert(s->iovcnt < MS_STREAM_MAX_IOV);
	s->iov[s->iovcnt].iov_base = s->buf + s->stage_start;
	s->iov[s->iovcnt].iov_len = n;
	s->iovcnt++;
	s->stage_start = s->buf_len;
}

/* Hand every iovec to the sink, completing short writes. */
static int sink_write_all(ms_stream *s, struct iovec *iov, int cnt)
{
	while (cnt > 0) {
		size_t offered = 0;
		ssize_t n;
		int i, r;

		for (i = 0; i < cnt; i++)
			offered += iov[i].iov_len;
		if (!offered)
			break;
		s->sink_calls++;
		n = s->t->writev(s, iov, cnt);
		if (n > 0) {
			size_t left = (size_t)n;

			if (left > offered)
				return ms__stream_fail(
					s, -EIO, s->flushed,
					"sink claims %zu bytes written, %zu "
					"offered",
					left, offered);
			s->flushed += left;
			while (cnt > 0 && left >= iov->iov_len) {
				left -= iov->iov_len;
				iov++;
				cnt--;
			}
			if (left) {
				iov->iov_base = (uint8_t *)iov->iov_base + left;
				iov->iov_len -= left;
			}
			continue;
		}
		if (n == 0)
			return ms__stream_fail(
				s, -EIO, s->flushed,
				"write error: sink took no bytes");
		if (n == -EINTR)
			continue;
		if ((n == -EAGAIN || n == -EWOULDBLOCK) && s->t->wait) {
			r = s->t->wait(s, MS_WAIT_WRITE);
			if (r < 0)
				return ms__stream_fail(
					s, r, s->flushed,
					"write error: waiting for the sink: %s",
					ms_strerror(r));
			continue;
		}
		return ms__stream_fail(s, (int)n, s->flushed, "write error: %s",
				       ms_strerror((int)n));
	}
	return 0;
}

void ms__writer_reset(ms_stream *s)
{
	s->iovcnt = 0;
	s->buf_len = 0;
	s->stage_start = 0;
	s->queue_mark = s->zero_copied;
}

int ms__writer_flush(ms_stream *s)
{
	if (s->err.code)
		return s->err.code;
	if (s->t->flush)
		return s->t->flush(s);
	ms__writer_seal(s);
	if (s->iovcnt)
		sink_write_all(s, s->iov, s->iovcnt);
	ms__writer_reset(s);
	return s->err.code;
}

void ms__stream_drop(ms_stream *s)
{
	if (s->mode != MS_STREAM_WRITER || !(s->flags & MS__SINK_HANDS_OFF))
		return;
	s->iovcnt = 0;
	s->buf_len = 0;
	s->stage_start = 0;
}

int ms_stream_flush(ms_stream *s)
{
	assert(s);
	if (!s)
		return -EINVAL;
	if (s->mode != MS_STREAM_WRITER)
		return s->err.code;
	return ms__writer_flush(s);
}

/*
 * Make room in the staging buffer (the sink's hook, or a flush), so that
 * at least one byte, and @want bytes where possible, fit.
 */
static int make_room(ms_stream *s, size_t want)
{
	if (s->t->make_room)
		return s->t->make_room(s, want);
	return ms__writer_flush(s);
}

/*
 * A call in the wrong direction (a put on a reader, a get on a writer):
 * -EINVAL, and a note naming the call in the stream's message.  Out of
 * line, so that the checks of the fast paths stay one compare.
 */
static int wrong_direction(ms_stream *s, const char *fn)
#if defined(__GNUC__)
	__attribute__((cold, noinline))
#endif
	;

static int wrong_direction(ms_stream *s, const char *fn)
{
	if (!s)
		return -EINVAL;
	if (s->mode == MS_STREAM_READER)
		return ms__error_misuse(&s->err,
					"%s: called on a reader, a put needs a "
					"writer",
					fn);
	return ms__error_misuse(
		&s->err, "%s: called on a writer, a get needs a reader", fn);
}

#define WRITER_CHECK(s)                                                        \
	do {                                                                   \
		assert((s) && (s)->mode == MS_STREAM_WRITER);                  \
		if (!(s) || (s)->mode != MS_STREAM_WRITER)                     \
			return wrong_direction((s), __func__);                 \
		if ((s)->err.code)                                             \
			return (s)->err.code;                                  \
	} while (0)

/* Copy @len bytes into the staging buffer, flushing as it fills. */
static int put_copy(ms_stream *s, const uint8_t *p, size_t len)
{
	while (len) {
		size_t room = s->buf_cap - s->buf_len;
		size_t n;

		if (!room) {
			if (make_room(s, len))
				return s->err.code;
			continue;
		}
		n = len < room ? len : room;
		memcpy(s->buf + s->buf_len, p, n);
		s->buf_len += n;
		s->pos += n;
		s->copied += n;
		p += n;
		len -= n;
	}
	return 0;
}

/* Slow path of the fixed-size puts: the bytes straddle a flush. */
static int put_small(ms_stream *s, const uint8_t *p, size_t len)
{
	if ((s->flags & MS__SINK_HOLDS_DATA) && make_room(s, len))
		return s->err.code;
	return put_copy(s, p, len);
}

int ms_put_u8(ms_stream *s, uint8_t v)
{
	WRITER_CHECK(s);
	if (s->buf_len < s->buf_cap) {
		s->buf[s->buf_len++] = v;
		s->pos++;
		s->copied++;
		return 0;
	}
	return put_small(s, &v, 1);
}

int ms_put_be16(ms_stream *s, uint16_t v)
{
	uint8_t b[2];

	WRITER_CHECK(s);
	if (s->buf_cap - s->buf_len >= 2) {
		ms__store_be16(s->buf + s->buf_len, v);
		s->buf_len += 2;
		s->pos += 2;
		s->copied += 2;
		return 0;
	}
	ms__store_be16(b, v);
	return put_small(s, b, 2);
}

int ms_put_be32(ms_stream *s, uint32_t v)
{
	uint8_t b[4];

	WRITER_CHECK(s);
	if (s->buf_cap - s->buf_len >= 4) {
		ms__store_be32(s->buf + s->buf_len, v);
		s->buf_len += 4;
		s->pos += 4;
		s->copied += 4;
		return 0;
	}
	ms__store_be32(b, v);
	return put_small(s, b, 4);
}

int ms_put_be64(ms_stream *s, uint64_t v)
{
	uint8_t b[8];

	WRITER_CHECK(s);
	if (s->buf_cap - s->buf_len >= 8) {
		ms__store_be64(s->buf + s->buf_len, v);
		s->buf_len += 8;
		s->pos += 8;
		s->copied += 8;
		return 0;
	}
	ms__store_be64(b, v);
	return put_small(s, b, 8);
}

int ms_put_s8(ms_stream *s, int8_t v)
{
	return ms_put_u8(s, (uint8_t)v);
}

int ms_put_sbe16(ms_stream *s, int16_t v)
{
	return ms_put_be16(s, (uint16_t)v);
}

int ms_put_sbe32(ms_stream *s, int32_t v)
{
	return ms_put_be32(s, (uint32_t)v);
}

int ms_put_sbe64(ms_stream *s, int64_t v)
{
	return ms_put_be64(s, (uint64_t)v);
}

/*
 * Array puts: store as many values as fit in the staging buffer in one
 * loop that keeps the write position in a register, then let the
 * single-value slow path flush or grow.
 */
#define DEFINE_PUT_ARRAY(bits)                                                 \
	int ms_put_be##bits##_array(ms_stream *s, const uint##bits##_t *v,     \
				    size_t n)                                  \
	{                                                                      \
		WRITER_CHECK(s);                                               \
		assert(v || !n);                                               \
		if (!v && n)                                                   \
			return ms__error_misuse(&s->err,                       \
						"%s: values NULL for %zu",     \
						__func__, n);                  \
		while (n) {                                                    \
			size_t k = (s->buf_cap - s->buf_len) / (bits / 8), i;  \
			uint8_t *p;                                            \
                                                                               \
			if (!k) {                                              \
				if (ms_put_be##bits(s, *v))                    \
					return s->err.code;                    \
				v++;                                           \
				n--;                                           \
				continue;                                      \
			}                                                      \
			/* Only now: a fresh memory writer's buf is NULL. */   \
			p = s->buf + s->buf_len;                               \
			if (k > n)                                             \
				k = n;                                         \
			for (i = 0; i < k; i++)                                \
				ms__store_be##bits(p + i * (bits / 8), v[i]);  \
			s->buf_len += k * (bits / 8);                          \
			s->pos += k * (bits / 8);                              \
			s->copied += k * (bits / 8);                           \
			v += k;                                                \
			n -= k;                                                \
		}                                                              \
		return 0;                                                      \
	}

DEFINE_PUT_ARRAY(16)
DEFINE_PUT_ARRAY(32)
DEFINE_PUT_ARRAY(64)

/*
 * Queue the caller's buffer as an iovec after the staging bytes.  The
 * caller makes sure it is no longer referenced when it may change.
 */
static int queue_buffer(ms_stream *s, const void *buf, size_t len)
{
	/* Two entries may be needed: the staging bytes and this buffer. */
	if (s->iovcnt + 2 > MS_STREAM_MAX_IOV && ms__writer_flush(s))
		return s->err.code;
	ms__writer_seal(s);
	s->iov[s->iovcnt].iov_base = (void *)(uintptr_t)buf;
	s->iov[s->iovcnt].iov_len = len;
	s->iovcnt++;
	s->pos += len;
	s->zero_copied += len;
	return 0;
}

int ms_put_buffer(ms_stream *s, const void *buf, size_t len)
{
	WRITER_CHECK(s);
	if (!len)
		return 0;
	assert(buf);
	if (!buf)
		return ms__error_misuse(&s->err,
					"ms_put_buffer: buffer NULL for %zu "
					"bytes",
					len);
	if ((s->flags & MS__SINK_HOLDS_DATA) && s->buf_cap - s->buf_len < len &&
	    make_room(s, len))
		return s->err.code;
	/*
	 * A buffer at least as large as the staging buffer would only be
	 * copied to be written out at once: hand it to the sink directly,
	 * together with what is queued, before returning.
	 */
	if (len >= s->buf_size && (s->flags & MS__SINK_HANDS_OFF)) {
		if (queue_buffer(s, buf, len))
			return s->err.code;
		return ms__writer_flush(s);
	}
	return put_copy(s, buf, len);
}

int ms_put_buffer_async(ms_stream *s, const void *buf, size_t len)
{
	WRITER_CHECK(s);
	if (!len)
		return 0;
	assert(buf);
	if (!buf)
		return ms__error_misuse(&s->err,
					"ms_put_buffer_async: buffer NULL for "
					"%zu bytes",
					len);
	if (len < s->zc_threshold || (s->flags & MS__SINK_HOLDS_DATA))
		return ms_put_buffer(s, buf, len);
	if (queue_buffer(s, buf, len))
		return s->err.code;
	/* Flush when the queue is full, or holds what the sink wants in one
	 * write (see queue_limit). */
	if (s->iovcnt == MS_STREAM_MAX_IOV ||
	    s->zero_copied - s->queue_mark >= s->queue_limit)
		return ms__writer_flush(s);
	return 0;
}

int ms_put_counted_string(ms_stream *s, const char *str)
{
	size_t len;

	WRITER_CHECK(s);
	assert(str);
	if (!str)
		return ms__error_misuse(&s->err,
					"ms_put_counted_string: string NULL");
	len = strlen(str);
	if (len > MS_COUNTED_STRING_MAX)
		return ms__error_misuse(&s->err,
					"ms_put_counted_string: at most %d "
					"bytes fit, the string has %zu",
					MS_COUNTED_STRING_MAX, len);
	ms_put_u8(s, (uint8_t)len);
	return ms_put_buffer(s, str, len);
}

/*
 * Reading.
 */

#define READER_CHECK(s)                                                        \
	do {                                                                   \
		assert((s) && (s)->mode == MS_STREAM_READER);                  \
		if (!(s) || (s)->mode != MS_STREAM_READER)                     \
			return wrong_direction((s), __func__);                 \
	} while (0)

/*
 * The same for a get that stores into @out (@size bytes): a misused get
 * zeroes its output, as a failed one does, and never leaves stale data.
 */
#define READER_CHECK_OUT(s, out, size)                                         \
	do {                                                                   \
		assert((s) && (s)->mode == MS_STREAM_READER);                  \
		if (!(s) || (s)->mode != MS_STREAM_READER) {                   \
			if (out)                                               \
				memset((out), 0, (size));                      \
			return wrong_direction((s), __func__);                 \
		}                                                              \
	} while (0)

/* Read from the sink, retrying EINTR and waiting on EAGAIN. */
static ssize_t sink_read(ms_stream *s, void *buf, size_t len)
{
	for (;;) {
		ssize_t n;
		int r;

		s->sink_calls++;
		n = s->t->read(s, buf, len);
		if (n > 0) {
			if ((size_t)n > len)
				return ms__stream_fail(
					s, -EIO, s->received,
					"sink claims %zd bytes read, %zu asked",
					n, len);
			s->received += (size_t)n;
			return n;
		}
		if (n == 0) {
			s->eof = true;
			return 0;
		}
		if (n == -EINTR)
			continue;
		if ((n == -EAGAIN || n == -EWOULDBLOCK) && s->t->wait) {
			r = s->t->wait(s, MS_WAIT_READ);
			if (r < 0)
				return ms__stream_fail(
					s, r, s->received,
					"read error: waiting for the sink: %s",
					ms_strerror(r));
			continue;
		}
		return ms__stream_fail(s, (int)n, s->received, "read error: %s",
				       ms_strerror((int)n));
	}
}

/*
 * Fail the stream for a get that started at @start, needed @need bytes and
 * found @have: -EAGAIN while a feed reader may still get more data,
 * -ENODATA at the end of the data.
 */
static int fail_short(ms_stream *s, uint64_t start, uint64_t need,
		      uint64_t have)
{
	if (s->err.code)
		return s->err.code;
	if ((s->flags & MS__SINK_FED) && !s->eof)
		return ms__stream_fail(s, -EAGAIN, start,
				       "%llu bytes needed, %llu available "
				       "(more may be fed)",
				       (unsigned long long)need,
				       (unsigned long long)have);
	return ms__stream_fail(s, -ENODATA, start,
			       "end of stream: %llu bytes needed, %llu left",
			       (unsigned long long)need,
			       (unsigned long long)have);
}

/*
 * Make at least @need bytes (at most the buffer capacity) available in
 * buf[buf_pos...].  Returns what is available, possibly less when the
 * data ends; the stream may have failed.
 */
/* The source's next bytes in place (see struct ms__transport.borrow). */
static ssize_t sink_borrow(ms_stream *s, const uint8_t **p)
{
	ssize_t n;

	s->sink_calls++;
	n = s->t->borrow(s, p);
	if (n > 0) {
		s->received += (size_t)n;
		s->zero_copied += (size_t)n;
		return n;
	}
	if (n == 0) {
		s->eof = true;
		return 0;
	}
	return ms__stream_fail(s, (int)n, s->received, "read error: %s",
			       ms_strerror((int)n));
}

static size_t fill(ms_stream *s, size_t need)
{
	size_t have = s->buf_len - s->buf_pos;

	if (have >= need || s->err.code || !s->t->read || s->eof)
		return have;
	if (s->borrowed) {
		/* What is left of the borrowed bytes moves to our own buffer
		 * before the source moves on (have < need <= buf_cap). */
		memcpy(s->own_buf, s->buf + s->buf_pos, have);
		s->copied += have;
		s->buf = s->own_buf;
		s->borrowed = false;
		s->buf_pos = 0;
		s->buf_len = have;
	} else if (s->buf_pos) {
		memmove(s->buf, s->buf + s->buf_pos, have);
		s->buf_pos = 0;
		s->buf_len = have;
	}
	if (!have && s->t->borrow) {
		const uint8_t *p = NULL;
		ssize_t n = sink_borrow(s, &p);

		if (n <= 0)
			return 0;
		if ((size_t)n >= need) {
			/* Read in place: no copy at all. */
			s->own_buf = s->buf;
			s->buf = (uint8_t *)(uintptr_t)p;
			s->borrowed = true;
			s->buf_len = (size_t)n;
			return (size_t)n;
		}
		memcpy(s->buf, p, (size_t)n);
		s->copied += (size_t)n;
		s->buf_len = (size_t)n;
	}
	while (s->buf_len < need && !s->eof && !s->err.code) {
		ssize_t n = sink_read(s, s->buf + s->buf_len,
				      s->buf_cap - s->buf_len);

		if (n > 0) {
			s->buf_len += (size_t)n;
			s->copied += (size_t)n;
		}
	}
	return s->buf_len - s->buf_pos;
}

/* Copy exactly @len bytes out of the stream (slow path). */
static int get_copy(ms_stream *s, uint8_t *p, size_t len)
{
	size_t want = len;
	uint64_t start = s->pos;

	while (len) {
		size_t have = s->buf_len - s->buf_pos;
		size_t n;

		if (!have && s->t->read && len >= s->buf_cap && !s->eof) {
			/* Large read: straight into the caller's memory. */
			ssize_t r = sink_read(s, p, len);

			if (r > 0) {
				p += r;
				len -= (size_t)r;
				s->pos += (uint64_t)r;
			}
			if (r <= 0 && (s->err.code || s->eof))
				break;
			continue;
		}
		if (!have) {
			have = fill(s, len < s->buf_cap ? len : s->buf_cap);
			if (!have)
				break;
		}
		n = len < have ? len : have;
		memcpy(p, s->buf + s->buf_pos, n);
		s->buf_pos += n;
		s->pos += n;
		p += n;
		len -= n;
	}
	if (len) {
		size_t got = want - len;

		fail_short(s, start, want, got);
		memset(p - got, 0, want);
		return s->err.code;
	}
	return 0;
}

/* Fixed-size get slow path: the bytes straddle a refill, or are missing. */
static int get_small(ms_stream *s, uint8_t *p, size_t len)
{
	if (s->err.code) {
		memset(p, 0, len);
		return s->err.code;
	}
	if (fill(s, len) < len) {
		memset(p, 0, len);
		return fail_short(s, s->pos, len, s->buf_len - s->buf_pos);
	}
	memcpy(p, s->buf + s->buf_pos, len);
	s->buf_pos += len;
	s->pos += len;
	return 0;
}

int ms_get_u8(ms_stream *s, uint8_t *v)
{
	READER_CHECK_OUT(s, v, sizeof(*v));
	if (s->buf_pos < s->buf_len) {
		*v = s->buf[s->buf_pos++];
		s->pos++;
		return 0;
	}
	return get_small(s, v, 1);
}

int ms_get_be16(ms_stream *s, uint16_t *v)
{
	uint8_t b[2];
	int r;

	READER_CHECK_OUT(s, v, sizeof(*v));
	if (s->buf_len - s->buf_pos >= 2) {
		*v = ms__load_be16(s->buf + s->buf_pos);
		s->buf_pos += 2;
		s->pos += 2;
		return 0;
	}
	r = get_small(s, b, 2);
	*v = ms__load_be16(b);
	return r;
}

int ms_get_be32(ms_stream *s, uint32_t *v)
{
	uint8_t b[4];
	int r;

	READER_CHECK_OUT(s, v, sizeof(*v));
	if (s->buf_len - s->buf_pos >= 4) {
		*v = ms__load_be32(s->buf + s->buf_pos);
		s->buf_pos += 4;
		s->pos += 4;
		return 0;
	}
	r = get_small(s, b, 4);
	*v = ms__load_be32(b);
	return r;
}

int ms_get_be64(ms_stream *s, uint64_t *v)
{
	uint8_t b[8];
	int r;

	READER_CHECK_OUT(s, v, sizeof(*v));
	if (s->buf_len - s->buf_pos >= 8) {
		*v = ms__load_be64(s->buf + s->buf_pos);
		s->buf_pos += 8;
		s->pos += 8;
		return 0;
	}
	r = get_small(s, b, 8);
	*v = ms__load_be64(b);
	return r;
}

int ms_get_s8(ms_stream *s, int8_t *v)
{
	uint8_t u;
	int r = ms_get_u8(s, &u);

	*v = (int8_t)u;
	return r;
}

int ms_get_sbe16(ms_stream *s, int16_t *v)
{
	uint16_t u;
	int r = ms_get_be16(s, &u);

	*v = (int16_t)u;
	return r;
}

int ms_get_sbe32(ms_stream *s, int32_t *v)
{
	uint32_t u;
	int r = ms_get_be32(s, &u);

	*v = (int32_t)u;
	return r;
}

int ms_get_sbe64(ms_stream *s, int64_t *v)
{
	uint64_t u;
	int r = ms_get_be64(s, &u);

	*v = (int64_t)u;
	return r;
}

/* Array gets: decode what is buffered in one loop, refill as needed. */
#define DEFINE_GET_ARRAY(bits)                                                 \
	int ms_get_be##bits##_array(ms_stream *s, uint##bits##_t *v, size_t n) \
	{                                                                      \
		size_t left = n;                                               \
		uint##bits##_t *out = v;                                       \
                                                                               \
		READER_CHECK_OUT(s, v, n * sizeof(*v));                        \
		assert(v || !n);                                               \
		if (!v && n)                                                   \
			return ms__error_misuse(&s->err,                       \
						"%s: values NULL for %zu",     \
						__func__, n);                  \
		while (left) {                                                 \
			size_t k = (s->buf_len - s->buf_pos) / (bits / 8), i;  \
			const uint8_t *p;                                      \
                                                                               \
			if (!k) {                                              \
				if (ms_get_be##bits(s, out))                   \
					break;                                 \
				out++;                                         \
				left--;                                        \
				continue;                                      \
			}                                                      \
			/* Only now: an empty reader's buf may be NULL. */     \
			p = s->buf + s->buf_pos;                               \
			if (k > left)                                          \
				k = left;                                      \
			for (i = 0; i < k; i++)                                \
				out[i] =                                       \
					ms__load_be##bits(p + i * (bits / 8)); \
			s->buf_pos += k * (bits / 8);                          \
			s->pos += k * (bits / 8);                              \
			out += k;                                              \
			left -= k;                                             \
		}                                                              \
		if (left)                                                      \
			memset(v, 0, n * sizeof(*v));                          \
		return s->err.code;                                            \
	}

DEFINE_GET_ARRAY(16)
DEFINE_GET_ARRAY(32)
DEFINE_GET_ARRAY(64)

int ms_get_buffer(ms_stream *s, void *buf, size_t len)
{
	READER_CHECK_OUT(s, buf, len);
	if (!len)
		return s->err.code;
	assert(buf);
	if (!buf)
		return ms__error_misuse(&s->err,
					"ms_get_buffer: buffer NULL for %zu "
					"bytes",
					len);
	if (s->err.code) {
		memset(buf, 0, len);
		return s->err.code;
	}
	if (s->buf_len - s->buf_pos >= len) {
		memcpy(buf, s->buf + s->buf_pos, len);
		s->buf_pos += len;
		s->pos += len;
		return 0;
	}
	return get_copy(s, buf, len);
}

int ms_get_counted_string(ms_stream *s, char buf[MS_COUNTED_STRING_MAX + 1])
{
	uint8_t len;

	READER_CHECK_OUT(s, buf, 1);
	buf[0] = '\0';
	if (ms_get_u8(s, &len))
		return s->err.code;
	if (ms_get_buffer(s, buf, len)) {
		buf[0] = '\0';
		return s->err.code;
	}
	buf[len] = '\0';
	return len;
}

ssize_t ms_peek(ms_stream *s, const uint8_t **data, size_t len)
{
	size_t have;

	assert(data);
	if (data)
		*data = NULL;
	READER_CHECK(s);
	if (!data)
		return ms__error_misuse(&s->err, "ms_peek: data NULL");
	if (s->err.code)
		return s->err.code;
	if (len > ms__stream_peek_max(s))
		return ms__error_misuse(&s->err,
					"ms_peek: at most the buffer size "
					"(%zu bytes) can be peeked, %zu asked",
					ms__stream_peek_max(s), len);
	have = fill(s, len);
	if (s->err.code)
		return s->err.code;
	/* A feed that may still grow cannot say what follows: as a get. */
	if (have < len && (s->flags & MS__SINK_FED) && !s->eof)
		return fail_short(s, s->pos, len, have);
	/* An empty memory or feed reader may have no buffer at all. */
	if (s->buf)
		*data = s->buf + s->buf_pos;
	return (ssize_t)(have < len ? have : len);
}

int ms_skip(ms_stream *s, uint64_t len)
{
	uint64_t start;

	READER_CHECK(s);
	if (s->err.code)
		return s->err.code;
	start = s->pos;
	while (len) {
		size_t have = s->buf_len - s->buf_pos;
		size_t n;

		if (!have) {
			have = fill(s, 1);
			if (!have) {
				uint64_t done = s->pos - start;

				return fail_short(s, start, done + len, done);
			}
		}
		n = len < have ? (size_t)len : have;
		s->buf_pos += n;
		s->pos += n;
		len -= n;
	}
	return 0;
}

bool ms_stream_is_eof(ms_stream *s)
{
	assert(s && s->mode == MS_STREAM_READER);
	if (!s || s->mode != MS_STREAM_READER || s->err.code)
		return false;
	if (s->buf_len > s->buf_pos)
		return false;
	fill(s, 1);
	return !s->err.code && s->buf_len == s->buf_pos && s->eof;
}

size_t ms_stream_available(const ms_stream *s)
{
	assert(s);
	if (!s || s->mode != MS_STREAM_READER || s->err.code)
		return 0;
	return s->buf_len - s->buf_pos;
}
