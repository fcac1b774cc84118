/* SPDX-License-Identifier: MIT */
/*
 * Substream: a reader over the next N bytes of another reader, for payloads
 * whose length is known (commands, the VM description).  It reads no
 * further than N bytes, so the parent is left exactly at the window's end
 * once the window is drained.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "stream-impl.h"

struct window {
	ms_stream *parent;
	uint64_t left;
	const ms_allocator *alloc;
};

static ssize_t window_read(void *opaque, void *buf, size_t len)
{
	struct window *w = opaque;
	const uint8_t *p;
	ssize_t n;

	if (!w->left)
		return 0;
	if (len > w->left)
		len = (size_t)w->left;
	if (w->parent->t && len > w->parent->buf_cap)
		len = w->parent->buf_cap;
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

static int window_close(void *opaque)
{
	struct window *w = opaque;

	ms__free(w->alloc, w);
	return 0;
}

static const ms_stream_ops window_ops = {
	MS_STREAM_OPS_VERSION, NULL, window_read, NULL, window_close,
};

int ms__substream_new(ms_stream **out, ms_stream *parent, uint64_t limit,
		      const ms_allocator *a)
{
	ms_stream_opts o = {MS_STREAM_OPTS_VERSION, a, 4096, 0, 0};
	struct window *w;
	int ret;

	w = ms__malloc(a, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->parent = parent;
	w->left = limit;
	w->alloc = a;
	ret = ms_stream_new_custom(out, &window_ops, w, MS_STREAM_READER, &o);
	if (ret)
		ms__free(a, w);
	return ret;
}

uint64_t ms__substream_left(const ms_stream *s)
{
	const struct window *w = s->ops_opaque;

	return w->left;
}
