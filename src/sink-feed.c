/* SPDX-License-Identifier: MIT */
/*
 * Feed reader: a reader whose data is appended chunk by chunk by its
 * owner (ms_stream_feed(), or in place with ms_stream_feed_reserve() and
 * ms_stream_feed_commit()), for event loops and message transports.
 *
 * It has no transport to read from: the appended bytes go straight into
 * the stream's buffer, buf[buf_pos, buf_len) is everything fed and not
 * yet read, and a get that runs out fails with -EAGAIN until
 * ms_stream_feed_end() (MS__SINK_FED).  For the load driver it can also
 * mark a position and rewind to it (see ms__feed_mark() in internal.h).
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "stream-impl.h"

struct feed {
	bool marked;
	size_t mark;	   /* buf_pos at the mark */
	uint64_t mark_pos; /* pos at the mark */
	size_t reserved;   /* room given by ms_stream_feed_reserve() */
	bool reserving;	   /* a reservation awaits its commit */
};

static const struct ms__transport feed_transport = {
	.flags = MS__SINK_FED,
};

int ms_stream_new_feed(ms_stream **out, const ms_stream_opts *opts)
{
	ms_stream *s;
	int ret;

	if (!out)
		return -EINVAL;
	ret = ms__stream_create(&s, MS_STREAM_READER, &feed_transport,
				sizeof(struct feed), opts);
	if (ret)
		return ret;
	s->buf_owned = true;
	*out = s;
	return 0;
}

bool ms__stream_is_feed(const ms_stream *s)
{
	return s->t == &feed_transport;
}

/*
 * -EINVAL for a call that needs a feed reader whose end is not marked
 * (@fn with @after_end), with a note in @s saying which it was not.
 */
static int refuse(ms_stream *s, const char *fn, bool after_end)
{
	if (!s)
		return -EINVAL;
	if (!ms__stream_is_feed(s))
		return ms__error_misuse(&s->err,
					"%s: needs a feed reader "
					"(ms_stream_new_feed())",
					fn);
	if (after_end && s->eof)
		return ms__error_misuse(
			&s->err, "%s: called after ms_stream_feed_end()", fn);
	return -EINVAL;
}

/*
 * Grow the buffer so that @len more bytes fit after buf_len, moving the
 * unread bytes (and the marked ones) to the front when that is cheap.
 */
static int feed_make_room(ms_stream *s, size_t len)
{
	struct feed *f = s->sink;
	size_t keep, held;

	if (len > SIZE_MAX / 4 || s->buf_len > SIZE_MAX / 4 - len)
		return ms__stream_fail(s, -ENOMEM, s->pos,
				       "feed: too much unread data");
	keep = f->marked && f->mark < s->buf_pos ? f->mark : s->buf_pos;
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
		if (f->marked)
			f->mark -= keep;
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
	return 0;
}

int ms_stream_feed_reserve(ms_stream *s, size_t len, void **room)
{
	struct feed *f;
	int ret;

	assert(s && ms__stream_is_feed(s) && room);
	if (room)
		*room = NULL;
	if (!s || !ms__stream_is_feed(s) || s->eof)
		return refuse(s, __func__, true);
	if (!room)
		return ms__error_misuse(&s->err,
					"ms_stream_feed_reserve: room NULL");
	if (s->err.code)
		return s->err.code;
	f = s->sink;
	f->reserving = false;
	ret = feed_make_room(s, len);
	if (ret)
		return ret;
	f->reserved = len;
	f->reserving = true;
	*room = s->buf ? s->buf + s->buf_len : NULL;
	return 0;
}

int ms_stream_feed_commit(ms_stream *s, size_t len)
{
	struct feed *f;

	assert(s && ms__stream_is_feed(s));
	if (!s || !ms__stream_is_feed(s))
		return refuse(s, __func__, false);
	if (s->err.code)
		return s->err.code;
	f = s->sink;
	if (s->eof)
		return refuse(s, __func__, true);
	if (!f->reserving)
		return ms__error_misuse(&s->err,
					"ms_stream_feed_commit: no reservation "
					"to commit (ms_stream_feed_reserve() "
					"first, once per commit)");
	if (len > f->reserved)
		return ms__error_misuse(&s->err,
					"ms_stream_feed_commit: %zu bytes "
					"committed, only %zu reserved",
					len, f->reserved);
	s->buf_len += len;
	s->received += len;
	f->reserved = 0;
	f->reserving = false;
	return 0;
}

int ms_stream_feed(ms_stream *s, const void *buf, size_t len)
{
	void *room;
	int ret;

	assert(s && ms__stream_is_feed(s));
	if (!s || !ms__stream_is_feed(s) || s->eof)
		return refuse(s, __func__, true);
	if (!buf && len)
		return ms__error_misuse(&s->err,
					"ms_stream_feed: buffer NULL for %zu "
					"bytes",
					len);
	if (s->err.code)
		return s->err.code;
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
	assert(s && ms__stream_is_feed(s));
	if (!s || !ms__stream_is_feed(s))
		return refuse(s, __func__, false);
	s->eof = true;
	return s->err.code;
}

void ms__feed_mark(ms_stream *s)
{
	struct feed *f = s->sink;

	f->marked = true;
	f->mark = s->buf_pos;
	f->mark_pos = s->pos;
}

void ms__feed_unmark(ms_stream *s)
{
	struct feed *f = s->sink;

	f->marked = false;
}

int ms__feed_rewind(ms_stream *s)
{
	struct feed *f = s->sink;

	if (!f->marked || (s->err.code && s->err.code != -EAGAIN))
		return -EINVAL;
	/* An error emptied the window: the data is still in the buffer. */
	ms__stream_clear_error(s);
	s->buf_pos = f->mark;
	s->pos = f->mark_pos;
	return 0;
}

int ms__feed_commit_ok(const ms_stream *s, size_t len)
{
	const struct feed *f;

	if (!ms__stream_is_feed(s) || s->eof)
		return -EINVAL;
	f = s->sink;
	if (!f->reserving || len > f->reserved)
		return -EINVAL;
	return 0;
}

bool ms__stream_is_starved(const ms_stream *s)
{
	return ms__stream_is_feed(s) && !s->eof && !s->err.code &&
	       s->buf_pos == s->buf_len;
}
