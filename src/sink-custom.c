/* SPDX-License-Identifier: MIT */
/*
 * Custom sink: a user-defined ops table behind the same core.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>

#include "stream-impl.h"

static ssize_t custom_writev(ms_stream *s, const struct iovec *iov, int cnt)
{
	return s->ops->writev(s->ops_opaque, iov, cnt);
}

static ssize_t custom_read(ms_stream *s, void *buf, size_t len)
{
	return s->ops->read(s->ops_opaque, buf, len);
}

static int custom_wait(ms_stream *s, int events)
{
	return s->ops->wait(s->ops_opaque, events);
}

static int custom_close(ms_stream *s)
{
	return s->ops->close(s->ops_opaque);
}

/* One table per combination, so that missing ops stay NULL for the core. */
static const struct ms__transport custom_transports[4] = {
	{custom_writev, custom_read, NULL, NULL, NULL},
	{custom_writev, custom_read, custom_wait, NULL, NULL},
	{custom_writev, custom_read, NULL, custom_close, NULL},
	{custom_writev, custom_read, custom_wait, custom_close, NULL},
};

static ssize_t custom_borrow(ms_stream *s, const uint8_t **p)
{
	return s->borrow_fn(s->ops_opaque, p);
}

static const struct ms__transport borrowing_transport = {
	.read = custom_read,
	.borrow = custom_borrow,
};

int ms__stream_new_borrowing(ms_stream **out, const ms_stream_ops *ops,
			     ssize_t (*borrow)(void *opaque, const uint8_t **p),
			     void *opaque, const ms_stream_opts *opts)
{
	ms_stream *s;
	int ret;

	if (!ops->read || ops->wait || ops->close)
		return -EINVAL;
	ret = ms__stream_create_buffered(&s, MS_STREAM_READER, MS__KIND_CUSTOM,
					 opts);
	if (ret)
		return ret;
	s->ops = ops;
	s->ops_opaque = opaque;
	s->borrow_fn = borrow;
	s->t = &borrowing_transport;
	*out = s;
	return 0;
}

int ms_stream_new_custom(ms_stream **out, const ms_stream_ops *ops,
			 void *opaque, ms_stream_mode mode,
			 const ms_stream_opts *opts)
{
	ms_stream *s;
	int ret;

	if (!out || !ops || ops->version != MS_STREAM_OPS_VERSION)
		return -EINVAL;
	if ((mode == MS_STREAM_WRITER && !ops->writev) ||
	    (mode == MS_STREAM_READER && !ops->read))
		return -EINVAL;
	ret = ms__stream_create_buffered(&s, mode, MS__KIND_CUSTOM, opts);
	if (ret)
		return ret;
	s->ops = ops;
	s->ops_opaque = opaque;
	s->t = &custom_transports[(ops->wait ? 1 : 0) | (ops->close ? 2 : 0)];
	*out = s;
	return 0;
}
