/* SPDX-License-Identifier: MIT */
/*
 * Memory sinks: a growable writer, a reader over the caller's buffer, and
 * a reader fed chunk by chunk.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "stream-impl.h"

int ms_stream_new_mem(ms_stream **out, size_t max_size,
		      const ms_stream_opts *opts)
{
	ms_stream *s;
	int ret;

	if (!out)
		return -EINVAL;
	ret = ms__stream_create(&s, MS_STREAM_WRITER, MS__KIND_MEM, opts);
	if (ret)
		return ret;
	s->max_size = max_size;
	s->buf_owned = true;
	/* The buffer is allocated on the first put. */
	*out = s;
	return 0;
}

int ms_stream_mem_view(ms_stream *s, const uint8_t **data, size_t *len)
{
	assert(s && s->kind == MS__KIND_MEM && data && len);
	if (data)
		*data = NULL;
	if (len)
		*len = 0;
	if (!s || s->kind != MS__KIND_MEM || !data || !len)
		return -EINVAL;
	*data = s->buf ? s->buf + s->buf_pos : NULL;
	*len = s->buf_len - s->buf_pos;
	return s->err;
}

int ms_stream_mem_discard(ms_stream *s, size_t len)
{
	assert(s && s->kind == MS__KIND_MEM);
	if (!s || s->kind != MS__KIND_MEM || len > s->buf_len - s->buf_pos)
		return -EINVAL;
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
	ms__mem_set_limit(s);
	return 0;
}

int ms_stream_new_mem_reader(ms_stream **out, const void *buf, size_t len,
			     const ms_stream_opts *opts)
{
	ms_stream *s;
	int ret;

	if (!out || (!buf && len))
		return -EINVAL;
	ret = ms__stream_create(&s, MS_STREAM_READER, MS__KIND_MEM_READER,
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

int ms_stream_new_feed(ms_stream **out, const ms_stream_opts *opts)
{
	ms_stream *s;
	int ret;

	if (!out)
		return -EINVAL;
	ret = ms__stream_create(&s, MS_STREAM_READER, MS__KIND_FEED, opts);
	if (ret)
		return ret;
	s->buf_owned = true;
	*out = s;
	return 0;
}

int ms_stream_feed_reserve(ms_stream *s, size_t len, void **room)
{
	size_t keep, held;

	assert(s && s->kind == MS__KIND_FEED && room);
	if (room)
		*room = NULL;
	if (!s || s->kind != MS__KIND_FEED || s->eof || !room)
		return -EINVAL;
	if (s->err)
		return s->err;
	s->feed_reserving = false;
	if (len > SIZE_MAX / 4 || s->buf_len > SIZE_MAX / 4 - len)
		return ms__stream_fail(s, -ENOMEM, s->pos,
				       "feed: too much unread data");
	keep = s->feed_marked && s->feed_mark < s->buf_pos ? s->feed_mark
							   : s->buf_pos;
	held = s->buf_len - keep;
	/*
	 * Move the unread bytes to the front when that reclaims at least as
	 * many bytes as it moves and room is short (so each byte is moved at
	 * most once per byte consumed), and early when they are few: then
	 * the buffer does not run to its end before the next move and each
	 * move is cheap.
	 */
	if (keep && ((keep >= held && s->buf_cap - s->buf_len < len &&
		      s->buf_cap - held >= len) ||
		     held <= keep / 8)) {
		memmove(s->buf, s->buf + keep, held);
		s->buf_pos -= keep;
		s->buf_len = held;
		if (s->feed_marked)
			s->feed_mark -= keep;
	}
	if (s->buf_cap - s->buf_len < len) {
		size_t cap = s->buf_cap ? s->buf_cap : 256;
		uint8_t *nb;

		while (cap - s->buf_len < len) {
			if (cap > SIZE_MAX / 2)
				return ms__stream_fail(
					s, -ENOMEM, s->pos,
					"feed: too much unread data");
			cap *= 2;
		}
		nb = ms__realloc(s->alloc, s->buf, cap);
		if (!nb)
			return ms__stream_fail(s, -ENOMEM, s->pos,
					       "feed: cannot grow to %zu bytes",
					       cap);
		s->buf = nb;
		s->buf_cap = cap;
	}
	s->feed_reserved = len;
	s->feed_reserving = true;
	*room = s->buf ? s->buf + s->buf_len : NULL;
	return 0;
}

int ms_stream_feed_commit(ms_stream *s, size_t len)
{
	assert(s && s->kind == MS__KIND_FEED);
	if (!s || s->kind != MS__KIND_FEED)
		return -EINVAL;
	if (s->err)
		return s->err;
	if (ms__feed_commit_ok(s, len))
		return -EINVAL;
	s->buf_len += len;
	s->received += len;
	s->feed_reserved = 0;
	s->feed_reserving = false;
	return 0;
}

int ms_stream_feed(ms_stream *s, const void *buf, size_t len)
{
	void *room;
	int ret;

	assert(s && s->kind == MS__KIND_FEED);
	if (!s || s->kind != MS__KIND_FEED || s->eof || (!buf && len))
		return -EINVAL;
	if (s->err)
		return s->err;
	if (!len)
		return 0;
	ret = ms_stream_feed_reserve(s, len, &room);
	if (ret)
		return ret;
	memcpy(room, buf, len);
	s->copied += len;
	return ms_stream_feed_commit(s, len);
}

int ms_stream_feed_end(ms_stream *s)
{
	assert(s && s->kind == MS__KIND_FEED);
	if (!s || s->kind != MS__KIND_FEED)
		return -EINVAL;
	s->eof = true;
	return s->err;
}

/*
 * Mark and rewind, for the load driver: a parser that ran out of fed data
 * (-EAGAIN) goes back to the mark and tries again when more has come.
 * The bytes from the mark on are kept until the mark moves.
 */
void ms__feed_mark(ms_stream *s)
{
	s->feed_marked = true;
	s->feed_mark = s->buf_pos;
	s->feed_mark_pos = s->pos;
}

void ms__feed_unmark(ms_stream *s)
{
	s->feed_marked = false;
}

int ms__feed_rewind(ms_stream *s)
{
	if (!s->feed_marked || (s->err && s->err != -EAGAIN))
		return -EINVAL;
	/* An error emptied the window: the data is still in the buffer. */
	if (s->err) {
		s->err = 0;
		s->err_offset = 0;
		s->errmsg[0] = '\0';
		s->buf_len = s->feed_len_saved;
	}
	s->buf_pos = s->feed_mark;
	s->pos = s->feed_mark_pos;
	return 0;
}

bool ms__stream_is_feed(const ms_stream *s)
{
	return s->kind == MS__KIND_FEED;
}

int ms__feed_commit_ok(const ms_stream *s, size_t len)
{
	if (s->kind != MS__KIND_FEED || s->eof || !s->feed_reserving ||
	    len > s->feed_reserved)
		return -EINVAL;
	return 0;
}

/* A feed reader with nothing to read yet and no end marked. */
bool ms__stream_is_starved(const ms_stream *s)
{
	return s->kind == MS__KIND_FEED && !s->eof && !s->err &&
	       s->buf_pos == s->buf_len;
}
