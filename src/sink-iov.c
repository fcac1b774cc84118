/* SPDX-License-Identifier: MIT */
/*
 * Iovec sinks: a writer that hands gather lists to a callback or into the
 * caller's array, and a reader over the caller's iovecs.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "stream-impl.h"

/*
 * Callback writer: a flush hands the queue (staging bytes and the
 * caller's queued buffers) to the callback in one call.
 */
struct iov_cb {
	ms_iov_fn fn;
	void *opaque;
};

static int iov_cb_flush(ms_stream *s)
{
	struct iov_cb *c = s->sink;
	int ret;

	ms__writer_seal(s);
	if (s->iovcnt) {
		s->sink_calls++;
		ret = c->fn(c->opaque, s->iov, s->iovcnt);
		if (ret < 0)
			ms__stream_fail(s, ret, s->flushed,
					"iovec callback failed: %s",
					ms_strerror(ret));
		else
			s->flushed = s->pos;
	}
	ms__writer_reset(s);
	return s->err.code;
}

static const struct ms__transport iov_cb_transport = {
	.flags = MS__SINK_HANDS_OFF,
	.flush = iov_cb_flush,
};

int ms_stream_new_iov(ms_stream **out, ms_iov_fn fn, void *opaque,
		      const ms_stream_opts *opts)
{
	struct iov_cb *c;
	ms_stream *s;
	int ret;

	if (!out || !fn)
		return -EINVAL;
	ret = ms__stream_create_buffered(&s, MS_STREAM_WRITER,
					 &iov_cb_transport, sizeof(*c), opts);
	if (ret)
		return ret;
	c = s->sink;
	c->fn = fn;
	c->opaque = opaque;
	*out = s;
	return 0;
}

/*
 * Array writer.  It cannot reuse staging memory it has handed out, so its
 * staging buffers are chunks that live until close; the current one is
 * filled up before a new one is taken, and a new one is taken only when a
 * put needs room (iov_array_make_room()), never by a flush, so that a
 * flush that delivered everything cannot fail with -ENOMEM.
 */
struct chunk {
	struct chunk *next;
};

struct iov_array {
	struct iovec *out;
	int max;
	int *cnt;
	struct chunk *chunks;
};

static int iov_array_new_chunk(ms_stream *s)
{
	struct iov_array *a = s->sink;
	struct chunk *c;

	c = ms__malloc(s->alloc, sizeof(*c) + s->buf_size);
	if (!c)
		return ms__stream_fail(s, -ENOMEM, s->pos,
				       "iovec array: out of memory");
	c->next = a->chunks;
	a->chunks = c;
	s->buf = (uint8_t *)(c + 1);
	s->buf_cap = s->buf_size;
	s->buf_len = 0;
	s->stage_start = 0;
	return 0;
}

/* Describe the queue in the caller's array; the chunk stays in use. */
static int iov_array_flush(ms_stream *s)
{
	struct iov_array *a = s->sink;
	int i, n;

	ms__writer_seal(s);
	n = *a->cnt;
	for (i = 0; i < s->iovcnt; i++) {
		if (n == a->max) {
			s->iovcnt = 0;
			return ms__stream_fail(s, -ENOSPC, s->flushed,
					       "iovec array full: %d entries",
					       a->max);
		}
		a->out[n++] = s->iov[i];
		s->flushed += s->iov[i].iov_len;
		*a->cnt = n;
	}
	if (s->iovcnt)
		s->sink_calls++;
	s->iovcnt = 0;
	return 0;
}

/*
 * The staging chunk is full: hand out what it holds, then take a new
 * chunk for the put that needs room.
 */
static int iov_array_make_room(ms_stream *s, size_t want)
{
	(void)want;
	if (iov_array_flush(s))
		return s->err.code;
	if (s->buf_len < s->buf_cap)
		return 0;
	return iov_array_new_chunk(s);
}

/*
 * At close the entries the stream handed out point into chunks that are
 * about to be freed, so nothing more is handed out: bytes put since the
 * last flush are dropped, and that is the caller's bug.
 */
static void iov_array_pre_close(ms_stream *s)
{
	uint64_t unflushed = s->pos - s->flushed;

	s->iovcnt = 0;
	if (unflushed)
		ms__stream_fail(s, -EINVAL, s->flushed,
				"closed with %llu bytes not flushed",
				(unsigned long long)unflushed);
}

static void iov_array_destroy(ms_stream *s)
{
	struct iov_array *a = s->sink;
	struct chunk *c, *next;

	for (c = a->chunks; c; c = next) {
		next = c->next;
		ms__free(s->alloc, c);
	}
}

static const struct ms__transport iov_array_transport = {
	.flush = iov_array_flush,
	.make_room = iov_array_make_room,
	.pre_close = iov_array_pre_close,
	.destroy = iov_array_destroy,
};

int ms_stream_new_iov_array(ms_stream **out, struct iovec *iov, int iovmax,
			    int *iovcnt, const ms_stream_opts *opts)
{
	struct iov_array *a;
	ms_stream *s;
	int ret;

	if (!out || !iov || iovmax <= 0 || !iovcnt)
		return -EINVAL;
	ret = ms__stream_create(&s, MS_STREAM_WRITER, &iov_array_transport,
				sizeof(*a), opts);
	if (ret)
		return ret;
	if (iov_array_new_chunk(s)) {
		ms__stream_destroy(s);
		return -ENOMEM;
	}
	a = s->sink;
	a->out = iov;
	a->max = iovmax;
	a->cnt = iovcnt;
	*iovcnt = 0;
	*out = s;
	return 0;
}

/* Reader over a copy of the caller's list. */
struct iov_reader {
	struct iovec *iov;
	int cnt;
	int idx;
	size_t off;
};

static ssize_t iov_read(ms_stream *s, void *buf, size_t len)
{
	struct iov_reader *r = s->sink;
	uint8_t *p = buf;
	size_t done = 0;

	while (done < len && r->idx < r->cnt) {
		const struct iovec *v = &r->iov[r->idx];
		size_t left = v->iov_len - r->off;
		size_t n = len - done < left ? len - done : left;

		/* Empty entries may have a NULL base: no memcpy() for them. */
		if (n)
			memcpy(p + done, (const uint8_t *)v->iov_base + r->off,
			       n);
		done += n;
		r->off += n;
		if (r->off == v->iov_len) {
			r->idx++;
			r->off = 0;
		}
	}
	return (ssize_t)done;
}

static void iov_reader_destroy(ms_stream *s)
{
	struct iov_reader *r = s->sink;

	ms__free(s->alloc, r->iov);
}

static const struct ms__transport iov_reader_transport = {
	.read = iov_read,
	.destroy = iov_reader_destroy,
};

int ms_stream_new_iov_reader(ms_stream **out, const struct iovec *iov,
			     int iovcnt, const ms_stream_opts *opts)
{
	struct iov_reader *r;
	ms_stream *s;
	int i, ret;

	if (!out || iovcnt < 0 || (iovcnt && !iov))
		return -EINVAL;
	for (i = 0; i < iovcnt; i++)
		if (iov[i].iov_len && !iov[i].iov_base)
			return -EINVAL;
	ret = ms__stream_create_buffered(
		&s, MS_STREAM_READER, &iov_reader_transport, sizeof(*r), opts);
	if (ret)
		return ret;
	r = s->sink;
	if (iovcnt) {
		r->iov = ms__malloc(s->alloc, sizeof(*iov) * (size_t)iovcnt);
		if (!r->iov) {
			ms__stream_destroy(s);
			return -ENOMEM;
		}
		memcpy(r->iov, iov, sizeof(*iov) * (size_t)iovcnt);
	}
	r->cnt = iovcnt;
	*out = s;
	return 0;
}
