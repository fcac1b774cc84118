/* SPDX-License-Identifier: MIT */
/*
 * Substream: a reader over the next N bytes of another reader, for
 * payloads whose length is known (commands, the VM description).  It
 * reads no further than N bytes, so the parent is left exactly at the
 * substream's end once the substream is drained.  Its transport reads
 * from the parent with the public ms_peek() and ms_skip().
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "stream-impl.h"

struct substream {
	ms_stream *parent;
	uint64_t left;
};

static ssize_t substream_read(ms_stream *s, void *buf, size_t len)
{
	struct substream *w = s->sink;
	const uint8_t *p;
	size_t max = ms__stream_peek_max(w->parent);
	ssize_t n;

	if (!w->left)
		return 0;
	if (len > w->left)
		len = (size_t)w->left;
	if (len > max)
		len = max;
	n = ms_peek(w->parent, &p, len);
	if (n < 0)
		return n;
	if (n == 0)
		return 0; /* the parent ended early: a short read here */
	memcpy(buf, p, (size_t)n);
	ms_skip(w->parent, (uint64_t)n);
	w->left -= (uint64_t)n;
	return n;
}

static const struct ms__transport substream_transport = {
	.read = substream_read,
};

int ms__substream_new(ms_stream **out, ms_stream *parent, uint64_t limit,
		      const ms_allocator *a)
{
	ms_stream_opts o = {MS_STREAM_OPTS_VERSION, a, 4096, 0, 0};
	struct substream *w;
	ms_stream *s;
	int ret;

	ret = ms__stream_create_buffered(&s, MS_STREAM_READER,
					 &substream_transport, sizeof(*w), &o);
	if (ret)
		return ret;
	w = s->sink;
	w->parent = parent;
	w->left = limit;
	*out = s;
	return 0;
}

uint64_t ms__substream_left(const ms_stream *s)
{
	const struct substream *w = s->sink;

	return w->left;
}
