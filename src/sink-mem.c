/* SPDX-License-Identifier: MIT */
/*
 * Memory sinks: a growable writer and a reader over the caller's buffer.
 *
 * The writer has no transport behind it: its staging buffer is the
 * result, which grows (make_room) instead of being flushed, and holds
 * buf[buf_pos, buf_len) (buf_pos moves with ms_stream_mem_discard()).
 * The reader points buf at the caller's bytes and has nothing to refill
 * it from.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "stream-impl.h"

struct mem_writer {
	size_t max_size;  /* 0: no limit */
	size_t allocated; /* bytes allocated at buf */
};

/*
 * buf_cap is what the fast paths may fill: the allocation, cut down so
 * that no more than max_size bytes are held.
 */
static void mem_set_limit(ms_stream *s)
{
	struct mem_writer *m = s->sink;

	s->buf_cap = m->allocated;
	if (m->max_size && s->buf_cap - s->buf_pos > m->max_size)
		s->buf_cap = s->buf_pos + m->max_size;
}

/* Make room for @need contiguous bytes. */
static int mem_make_room(ms_stream *s, size_t need)
{
	struct mem_writer *m = s->sink;
	size_t held = s->buf_len - s->buf_pos;
	size_t cap;
	uint8_t *nb;

	if (m->max_size && need > m->max_size - held)
		return ms__stream_fail(s, -ENOSPC, s->pos,
				       "memory sink full: %zu bytes held, %zu "
				       "more do not fit in %zu",
				       held, need, m->max_size);
	if (need > SIZE_MAX / 4 || s->buf_len > SIZE_MAX / 4 - need)
		return ms__stream_fail(s, -ENOMEM, s->pos,
				       "memory sink too large");
	/*
	 * Move the held bytes over the discarded ones only when that
	 * reclaims at least as much as it moves: amortised O(1) per byte.
	 */
	if (s->buf_pos && s->buf_pos >= held && m->allocated - held >= need) {
		memmove(s->buf, s->buf + s->buf_pos, held);
		s->buf_pos = 0;
		s->buf_len = held;
	} else if (m->allocated - s->buf_len < need) {
		cap = m->allocated ? m->allocated : 256;
		while (cap - s->buf_len < need) {
			if (cap > SIZE_MAX / 2)
				return ms__stream_fail(s, -ENOMEM, s->pos,
						       "memory sink too large");
			cap *= 2;
		}
		nb = ms__realloc(s->alloc, s->buf, cap);
		if (!nb)
			return ms__stream_fail(s, -ENOMEM, s->pos,
					       "memory sink: cannot grow to "
					       "%zu bytes",
					       cap);
		s->buf = nb;
		m->allocated = cap;
	}
	mem_set_limit(s);
	return 0;
}

/* Every put was copied into the result: nothing to hand on. */
static int mem_flush(ms_stream *s)
{
	return s->err.code;
}

static const struct ms__transport mem_writer_transport = {
	.flags = MS__SINK_HOLDS_DATA,
	.flush = mem_flush,
	.make_room = mem_make_room,
};

int ms_stream_new_mem(ms_stream **out, size_t max_size,
		      const ms_stream_opts *opts)
{
	struct mem_writer *m;
	ms_stream *s;
	int ret;

	if (!out)
		return -EINVAL;
	ret = ms__stream_create(&s, MS_STREAM_WRITER, &mem_writer_transport,
				sizeof(*m), opts);
	if (ret)
		return ret;
	m = s->sink;
	m->max_size = max_size;
	s->buf_owned = true;
	/* The buffer is allocated on the first put. */
	*out = s;
	return 0;
}

static bool is_mem_writer(const ms_stream *s)
{
	return s && s->t == &mem_writer_transport;
}

/* -EINVAL for a call that needs a memory writer, with a note in @s. */
static int not_mem_writer(ms_stream *s, const char *fn)
{
	if (!s)
		return -EINVAL;
	return ms__error_misuse(
		&s->err, "%s: needs a memory writer (ms_stream_new_mem())", fn);
}

int ms_stream_mem_view(ms_stream *s, const uint8_t **data, size_t *len)
{
	assert(is_mem_writer(s) && data && len);
	if (data)
		*data = NULL;
	if (len)
		*len = 0;
	if (!is_mem_writer(s))
		return not_mem_writer(s, __func__);
	if (!data || !len)
		return ms__error_misuse(&s->err,
					"ms_stream_mem_view: data or len NULL");
	*data = s->buf ? s->buf + s->buf_pos : NULL;
	*len = s->buf_len - s->buf_pos;
	return s->err.code;
}

int ms_stream_mem_discard(ms_stream *s, size_t len)
{
	assert(is_mem_writer(s));
	if (!is_mem_writer(s))
		return not_mem_writer(s, __func__);
	if (len > s->buf_len - s->buf_pos)
		return ms__error_misuse(
			&s->err,
			"ms_stream_mem_discard: at most the %zu "
			"bytes held can be discarded, %zu asked",
			s->buf_len - s->buf_pos, len);
	s->buf_pos += len;
	if (s->buf_pos == s->buf_len) {
		/* Everything was taken: start again at the front for free. */
		s->buf_pos = 0;
		s->buf_len = 0;
	} else if (s->buf_len - s->buf_pos <= s->buf_pos / 8) {
		/* Few bytes left: moving them now is cheap, and spares a
		 * bigger move (or a growth) when the writer runs out. */
		memmove(s->buf, s->buf + s->buf_pos, s->buf_len - s->buf_pos);
		s->buf_len -= s->buf_pos;
		s->buf_pos = 0;
	}
	mem_set_limit(s);
	return 0;
}

/* A reader over the caller's bytes: no read hook, nothing to refill. */
static const struct ms__transport mem_reader_transport = {
	.flags = 0,
};

int ms_stream_new_mem_reader(ms_stream **out, const void *buf, size_t len,
			     const ms_stream_opts *opts)
{
	ms_stream *s;
	int ret;

	if (!out || (!buf && len))
		return -EINVAL;
	ret = ms__stream_create(&s, MS_STREAM_READER, &mem_reader_transport, 0,
				opts);
	if (ret)
		return ret;
	/* Never written through: readers only load from buf. */
	s->buf = (uint8_t *)(uintptr_t)buf;
	s->buf_len = len;
	s->buf_cap = len;
	s->eof = true;
	*out = s;
	return 0;
}
