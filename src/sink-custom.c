/* SPDX-License-Identifier: MIT */
/*
 * Custom sink: a user-defined ops table behind the same core, and the
 * library's own borrowing reader (a custom reader that can also lend its
 * next bytes in place).
 */
#include "config.h"

#include <assert.h>
#include <errno.h>

#include "stream-impl.h"

struct custom {
	const ms_stream_ops *ops;
	void *opaque;
	ssize_t (*borrow)(void *opaque, const uint8_t **p);
};

static ssize_t custom_writev(ms_stream *s, const struct iovec *iov, int cnt)
{
	const struct custom *c = s->sink;

	return c->ops->writev(c->opaque, iov, cnt);
}

static ssize_t custom_read(ms_stream *s, void *buf, size_t len)
{
	const struct custom *c = s->sink;

	return c->ops->read(c->opaque, buf, len);
}

static int custom_wait(ms_stream *s, int events)
{
	const struct custom *c = s->sink;

	return c->ops->wait(c->opaque, events);
}

static int custom_close(ms_stream *s)
{
	const struct custom *c = s->sink;

	return c->ops->close(c->opaque);
}

/* One table per combination, so that missing ops stay NULL for the core. */
static const struct ms__transport custom_transports[4] = {
	{
		.flags = MS__SINK_HANDS_OFF,
		.read = custom_read,
		.writev = custom_writev,
	},
	{
		.flags = MS__SINK_HANDS_OFF,
		.read = custom_read,
		.writev = custom_writev,
		.wait = custom_wait,
	},
	{
		.flags = MS__SINK_HANDS_OFF,
		.read = custom_read,
		.writev = custom_writev,
		.close = custom_close,
	},
	{
		.flags = MS__SINK_HANDS_OFF,
		.read = custom_read,
		.writev = custom_writev,
		.wait = custom_wait,
		.close = custom_close,
	},
};

static ssize_t custom_borrow(ms_stream *s, const uint8_t **p)
{
	const struct custom *c = s->sink;

	return c->borrow(c->opaque, p);
}

static const struct ms__transport borrowing_transport = {
	.read = custom_read,
	.borrow = custom_borrow,
};

int ms__stream_new_borrowing(ms_stream **out, const ms_stream_ops *ops,
			     ssize_t (*borrow)(void *opaque, const uint8_t **p),
			     void *opaque, const ms_stream_opts *opts)
{
	struct custom *c;
	ms_stream *s;
	int ret;

	if (!ops->read || ops->wait || ops->close)
		return -EINVAL;
	ret = ms__stream_create_buffered(
		&s, MS_STREAM_READER, &borrowing_transport, sizeof(*c), opts);
	if (ret)
		return ret;
	c = s->sink;
	c->ops = ops;
	c->opaque = opaque;
	c->borrow = borrow;
	*out = s;
	return 0;
}

int ms_stream_new_custom(ms_stream **out, const ms_stream_ops *ops,
			 void *opaque, ms_stream_mode mode,
			 const ms_stream_opts *opts)
{
	const struct ms__transport *t;
	struct custom *c;
	ms_stream *s;
	int ret;

	if (!out || !ops || ops->version != MS_STREAM_OPS_VERSION)
		return -EINVAL;
	if ((mode == MS_STREAM_WRITER && !ops->writev) ||
	    (mode == MS_STREAM_READER && !ops->read))
		return -EINVAL;
	t = &custom_transports[(ops->wait ? 1 : 0) | (ops->close ? 2 : 0)];
	ret = ms__stream_create_buffered(&s, mode, t, sizeof(*c), opts);
	if (ret)
		return ret;
	c = s->sink;
	c->ops = ops;
	c->opaque = opaque;
	*out = s;
	return 0;
}
