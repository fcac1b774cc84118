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

int ms_stream_new_iov(ms_stream **out, ms_iov_fn fn, void *opaque,
		      const ms_stream_opts *opts)
{
	ms_stream *s;
	int ret;

	if (!out || !fn)
		return -EINVAL;
	ret = ms__stream_create_buffered(&s, MS_STREAM_WRITER, MS__KIND_IOV_CB,
					 opts);
	if (ret)
		return ret;
	s->iov_fn = fn;
	s->iov_opaque = opaque;
	*out = s;
	return 0;
}

/*
 * The array writer cannot reuse staging memory it has handed out, so its
 * staging buffers are chunks that live until close; the current one is
 * filled up before a new one is taken, and a new one is taken only when a
 * put needs room (ms__iov_array_make_room()), never by a flush, so that a
 * flush that delivered everything cannot fail with -ENOMEM.
 */
static int iov_array_new_chunk(ms_stream *s)
{
	struct ms__chunk *c;

	c = ms__malloc(s->alloc, sizeof(*c) + s->buf_size);
	if (!c)
		return ms__stream_fail(s, -ENOMEM, s->pos,
				       "iovec array: out of memory");
	c->next = s->chunks;
	s->chunks = c;
	s->buf = (uint8_t *)(c + 1);
	s->buf_cap = s->buf_size;
	s->buf_len = 0;
	s->stage_start = 0;
	return 0;
}

int ms__iov_array_flush(ms_stream *s)
{
	int i, n;

	/* Describe the staging bytes not yet handed out. */
	if (s->buf_len > s->stage_start) {
		s->iov[s->iovcnt].iov_base = s->buf + s->stage_start;
		s->iov[s->iovcnt].iov_len = s->buf_len - s->stage_start;
		s->iovcnt++;
		s->stage_start = s->buf_len;
	}
	n = *s->out_iovcnt;
	for (i = 0; i < s->iovcnt; i++) {
		if (n == s->out_iovmax) {
			s->iovcnt = 0;
			return ms__stream_fail(s, -ENOSPC, s->flushed,
					       "iovec array full: %d entries",
					       s->out_iovmax);
		}
		s->out_iov[n++] = s->iov[i];
		s->flushed += s->iov[i].iov_len;
		*s->out_iovcnt = n;
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
int ms__iov_array_make_room(ms_stream *s)
{
	if (ms__iov_array_flush(s))
		return s->err;
	if (s->buf_len < s->buf_cap)
		return 0;
	return iov_array_new_chunk(s);
}

/*
 * At close the entries the stream handed out point into chunks that are
 * about to be freed, so nothing more is handed out: bytes put since the
 * last flush are dropped, and that is the caller's bug.
 */
void ms__iov_array_close(ms_stream *s)
{
	uint64_t unflushed = s->pos - s->flushed;

	s->iovcnt = 0;
	if (unflushed)
		ms__stream_fail(s, -EINVAL, s->flushed,
				"closed with %llu bytes not flushed",
				(unsigned long long)unflushed);
}

int ms_stream_new_iov_array(ms_stream **out, struct iovec *iov, int iovmax,
			    int *iovcnt, const ms_stream_opts *opts)
{
	ms_stream *s;
	int ret;

	if (!out || !iov || iovmax <= 0 || !iovcnt)
		return -EINVAL;
	ret = ms__stream_create(&s, MS_STREAM_WRITER, MS__KIND_IOV_ARRAY, opts);
	if (ret)
		return ret;
	if (iov_array_new_chunk(s)) {
		ms__stream_destroy(s);
		return -ENOMEM;
	}
	s->out_iov = iov;
	s->out_iovmax = iovmax;
	s->out_iovcnt = iovcnt;
	*iovcnt = 0;
	*out = s;
	return 0;
}

static ssize_t iov_read(ms_stream *s, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t done = 0;

	while (done < len && s->riov_idx < s->riovcnt) {
		const struct iovec *v = &s->riov[s->riov_idx];
		size_t left = v->iov_len - s->riov_off;
		size_t n = len - done < left ? len - done : left;

		/* Empty entries may have a NULL base: no memcpy() for them. */
		if (n)
			memcpy(p + done,
			       (const uint8_t *)v->iov_base + s->riov_off, n);
		done += n;
		s->riov_off += n;
		if (s->riov_off == v->iov_len) {
			s->riov_idx++;
			s->riov_off = 0;
		}
	}
	return (ssize_t)done;
}

static const struct ms__transport iov_reader_transport = {
	.read = iov_read,
};

int ms_stream_new_iov_reader(ms_stream **out, const struct iovec *iov,
			     int iovcnt, const ms_stream_opts *opts)
{
	ms_stream *s;
	int i, ret;

	if (!out || iovcnt < 0 || (iovcnt && !iov))
		return -EINVAL;
	for (i = 0; i < iovcnt; i++)
		if (iov[i].iov_len && !iov[i].iov_base)
			return -EINVAL;
	ret = ms__stream_create_buffered(&s, MS_STREAM_READER,
					 MS__KIND_IOV_READER, opts);
	if (ret)
		return ret;
	if (iovcnt) {
		s->riov = ms__malloc(s->alloc, sizeof(*iov) * (size_t)iovcnt);
		if (!s->riov) {
			ret = -ENOMEM;
			goto out_destroy;
		}
		memcpy(s->riov, iov, sizeof(*iov) * (size_t)iovcnt);
	}
	s->riovcnt = iovcnt;
	s->t = &iov_reader_transport;
	*out = s;
	return 0;

out_destroy:
	ms__stream_destroy(s);
	return ret;
}
