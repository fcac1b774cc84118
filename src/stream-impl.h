/* SPDX-License-Identifier: MIT */
/*
 * The contract between the stream core (stream.c) and its sinks
 * (sink-*.c, substream.c).  Private.
 *
 * A sink is a constructor and a transport table.  The constructor makes
 * the stream with ms__stream_create() (or ms__stream_create_buffered()),
 * which allocates the sink's own state with it; the table tells the core
 * how to move bytes and, through optional hooks, how the sink differs
 * from the default (a queue of iovecs handed to writev(), a buffer
 * refilled by read()).  The core never asks which sink it serves: it
 * calls the hooks and tests the flags.  A sink reaches the core only
 * through the fields of struct ms_stream marked "sinks may" below and the
 * helpers declared at the end of this file.
 */
#ifndef MIGSTREAM_STREAM_IMPL_H
#define MIGSTREAM_STREAM_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "internal.h"

/*
 * struct ms__transport flags.
 *
 * MS__SINK_HOLDS_DATA: the staging buffer is the sink (the memory
 * writer): room for a whole put is made before it is written, so that a
 * put that does not fit fails before it writes a byte, and
 * ms_put_buffer_async() copies.
 *
 * MS__SINK_HANDS_OFF: a flush hands the queue to the sink and forgets it
 * (the buffers are written, or seen by a callback, before it returns): a
 * large ms_put_buffer() goes out from the caller's memory with the queue,
 * and ms__stream_drop() may forget what is queued.
 *
 * MS__SINK_FED: a reader whose data is appended from outside while eof is
 * false (the feed reader): a get that runs out fails with -EAGAIN, not
 * -ENODATA, until the end is marked.
 */
#define MS__SINK_HOLDS_DATA 0x1u
#define MS__SINK_HANDS_OFF  0x2u
#define MS__SINK_FED	    0x4u

/*
 * How the core reaches a sink.  Errors are negative errnos.  Every hook
 * but the byte movers of the sink's direction is optional (NULL).
 */
struct ms__transport {
	unsigned flags; /* MS__SINK_* */

	/* Readers.  @read: > 0 bytes, 0 at the end, or a negative errno;
	 * NULL when every byte is in buf already (memory and feed readers).
	 * @borrow: the next bytes where they lie, consumed from the source
	 * and valid until the next read or borrow, with @read's returns. */
	ssize_t (*read)(ms_stream *s, void *buf, size_t len);
	ssize_t (*borrow)(ms_stream *s, const uint8_t **p);

	/* Writers.  @writev: bytes taken (> 0, may be fewer than offered)
	 * or a negative errno; used by the default flush.  @flush: replaces
	 * the default flush (seal the staging bytes, hand the queue to
	 * @writev until it took everything, reset the queue); called only
	 * without a sticky error; returns the sticky error.  @make_room:
	 * the staging buffer is full (buf_len == buf_cap), or, for
	 * MS__SINK_HOLDS_DATA, @want bytes do not fit: make room for at
	 * least one byte, and @want where possible; default: a flush. */
	ssize_t (*writev)(ms_stream *s, const struct iovec *iov, int cnt);
	int (*flush)(ms_stream *s);
	int (*make_room)(ms_stream *s, size_t want);

	/* Both.  @wait: until ready for MS_WAIT_READ or MS_WAIT_WRITE;
	 * without it -EAGAIN fails the stream.  @pre_close: a writer's last
	 * act before @close, instead of the default final flush.  @close:
	 * release the transport (a negative errno fails the stream).
	 * @destroy: free what the sink allocated beyond its state; called
	 * once, last, also when a constructor gives up. */
	int (*wait)(ms_stream *s, int events);
	void (*pre_close)(ms_stream *s);
	int (*close)(ms_stream *s);
	void (*destroy)(ms_stream *s);
};

struct ms_stream {
	/* Hot fields first: the fast paths touch only these.  Sinks may
	 * read and write buf, buf_pos, buf_len and buf_cap as their hooks
	 * say: a reader consumes buf[buf_pos, buf_len), a writer stages at
	 * buf[buf_len, buf_cap). */
	uint8_t *buf;
	size_t buf_pos; /* reader: next byte; memory writer: held start */
	size_t buf_len; /* bytes in buf */
	size_t buf_cap;
	uint64_t pos; /* logical position: bytes put or got */
	ms_stream_mode mode;
	unsigned flags; /* the transport's MS__SINK_* */
	/* The sticky first error (err.code, 0 if none; the one load the
	 * fast paths make for it is in the first cache line), or with
	 * err.code 0 the note of the last call refused with -EINVAL. */
	ms__error err;
	const struct ms__transport *t;
	void *sink; /* the sink's own state, allocated with the stream */
	const ms_allocator *alloc;
	bool buf_owned; /* buf is freed with the stream */
	bool eof;	/* reader: the sink reported the end (sinks may set) */
	bool borrowed;	/* reader: buf is the source's memory, not own_buf */
	uint8_t *own_buf;
	size_t buf_size; /* the staging size the options asked for */
	size_t zc_threshold;
	int timeout_ms; /* sinks that wait read it */

	/* Writer queue. */
	size_t stage_start; /* staging bytes before this are queued */
	struct iovec iov[MS_STREAM_MAX_IOV];
	int iovcnt;
	uint64_t flushed;    /* bytes the sink has taken (sinks may add) */
	uint64_t queue_mark; /* zero_copied at the last flush */
	/* Zero-copy bytes queued before a flush: unlimited (the iovec limit)
	 * for files and devices, which like few large writes; a buffer's
	 * worth for pipes and sockets, whose reader drains while the writer
	 * writes (64 x 32 KiB per writev() to a pipe ran at 0.8 of 32 KiB
	 * write()s: the writer fills the pipe, then waits for it).  Set by
	 * the sink's constructor. */
	size_t queue_limit;

	/* Reader progress. */
	uint64_t received; /* bytes the sink has delivered (sinks may add) */
	size_t buf_len_at_err; /* buf_len when an error emptied the window */

	/* Counters; sinks may add to them. */
	uint64_t copied;
	uint64_t zero_copied;
	uint64_t sink_calls;
};

/*
 * Make a stream for transport @t with @sink_size bytes of zeroed sink
 * state at s->sink, in the same allocation.  No staging buffer: buf is
 * NULL.  On failure nothing is allocated and *sp is untouched.
 */
int ms__stream_create(ms_stream **sp, ms_stream_mode mode,
		      const struct ms__transport *t, size_t sink_size,
		      const ms_stream_opts *opts);
/* The same with an owned staging buffer of the options' buffer size. */
int ms__stream_create_buffered(ms_stream **sp, ms_stream_mode mode,
			       const struct ms__transport *t, size_t sink_size,
			       const ms_stream_opts *opts);
/* Free a stream without flushing or closing its transport (t->destroy
 * is called): for constructors that fail after ms__stream_create(). */
void ms__stream_destroy(ms_stream *s);

/* Writers: describe the staging bytes not yet queued with one iovec. */
void ms__writer_seal(ms_stream *s);
/* Writers: after a flush hook handed the queue out, start an empty one. */
void ms__writer_reset(ms_stream *s);
/* Writers: flush (the hook, or the default), and return the sticky
 * error. */
int ms__writer_flush(ms_stream *s);

/* Readers: undo a sticky error and give back the window it emptied, for a
 * feed reader that rewinds to retry with more data. */
void ms__stream_clear_error(ms_stream *s);

/* The largest ms_peek() of @s: the buffer size for a sink that refills
 * its buffer, anything for memory and feed readers. */
static inline size_t ms__stream_peek_max(const ms_stream *s)
{
	return s->t->read ? s->buf_cap : SIZE_MAX;
}

#endif /* MIGSTREAM_STREAM_IMPL_H */
