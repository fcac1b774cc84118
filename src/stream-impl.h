/* SPDX-License-Identifier: MIT */
/*
 * The stream structure, shared by the core (stream.c) and the sinks
 * (sink-*.c).  Private.
 */
#ifndef MIGSTREAM_STREAM_IMPL_H
#define MIGSTREAM_STREAM_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "internal.h"

enum ms__kind {
	MS__KIND_MEM,	     /* writer into growable memory */
	MS__KIND_MEM_READER, /* reader over the caller's buffer */
	MS__KIND_FEED,	     /* reader fed with ms_stream_feed() */
	MS__KIND_FD,	     /* file descriptor, either direction */
	MS__KIND_IOV_CB,     /* writer handing iovecs to a callback */
	MS__KIND_IOV_ARRAY,  /* writer filling the caller's iovec array */
	MS__KIND_IOV_READER, /* reader over the caller's iovecs */
	MS__KIND_CUSTOM,     /* user-defined ops, either direction */
};

/* How the core reaches a sink; errors are negative errnos. */
struct ms__transport {
	ssize_t (*writev)(ms_stream *s, const struct iovec *iov, int cnt);
	ssize_t (*read)(ms_stream *s, void *buf, size_t len);
	int (*wait)(ms_stream *s, int events); /* NULL: EAGAIN fails */
	int (*close)(ms_stream *s);
	/* Optional, readers: the next bytes where they lie, consumed from
	 * the source; valid until the next read or borrow.  Like read: > 0
	 * bytes, 0 at the end, or a negative errno. */
	ssize_t (*borrow)(ms_stream *s, const uint8_t **p);
};

/* Staging memory an iovec-array writer handed out and must keep. */
struct ms__chunk {
	struct ms__chunk *next;
};

struct ms_stream {
	/* Hot fields first: the fast paths touch only these. */
	uint8_t *buf;
	size_t buf_pos; /* reader: next byte; memory writer: held start */
	size_t buf_len; /* bytes in buf */
	size_t buf_cap;
	uint64_t pos; /* logical position: bytes put or got */
	int err;      /* sticky first error, 0 if none */
	ms_stream_mode mode;

	enum ms__kind kind;
	const ms_allocator *alloc;
	const struct ms__transport *t; /* NULL for memory and feed */
	bool buf_owned;
	bool eof;      /* reader: the sink reported the end */
	bool borrowed; /* reader: buf is the source's memory, not own_buf */
	uint8_t *own_buf;
	size_t buf_size;
	size_t zc_threshold;
	int timeout_ms;

	/* Writer queue. */
	size_t stage_start; /* staging bytes before this are queued */
	struct iovec iov[MS_STREAM_MAX_IOV];
	int iovcnt;
	uint64_t flushed;    /* bytes the sink has taken */
	uint64_t queue_mark; /* zero_copied at the last flush */
	/* Zero-copy bytes queued before a flush: unlimited (the iovec limit)
	 * for files and devices, which like few large writes; a buffer's
	 * worth for pipes and sockets, whose reader drains while the writer
	 * writes (64 x 32 KiB per writev() to a pipe ran at 0.8 of 32 KiB
	 * write()s: the writer fills the pipe, then waits for it). */
	size_t queue_limit;

	/* Reader progress. */
	uint64_t received; /* bytes the sink has delivered */

	/* Feed reader: the mark of ms__feed_mark(). */
	bool feed_marked;
	size_t feed_mark;
	uint64_t feed_mark_pos;
	size_t feed_len_saved; /* buf_len when an error emptied it */
	size_t feed_reserved;  /* room given by ms_stream_feed_reserve() */
	bool feed_reserving;   /* a reservation awaits its commit */

	/* Memory writer. */
	size_t max_size;
	size_t mem_alloc; /* bytes allocated at buf */

	/* File descriptor. */
	int fd;
	unsigned fd_flags;
	bool fd_is_socket;
	bool fd_may_sigpipe; /* a pipe or socket: writes may raise SIGPIPE */

	/* Iovec sinks. */
	ms_iov_fn iov_fn;
	void *iov_opaque;
	struct iovec *out_iov;
	int out_iovmax;
	int *out_iovcnt;
	struct ms__chunk *chunks;
	struct iovec *riov; /* reader's copy of the caller's list */
	int riovcnt;
	int riov_idx;
	size_t riov_off;

	/* Custom. */
	const ms_stream_ops *ops;
	void *ops_opaque;
	ssize_t (*borrow_fn)(void *opaque, const uint8_t **p);

	/* Counters. */
	uint64_t copied;
	uint64_t zero_copied;
	uint64_t sink_calls;

	uint64_t err_offset;
	char errmsg[MS__ERRMSG_SIZE];
};

int ms__stream_create(ms_stream **sp, ms_stream_mode mode, enum ms__kind kind,
		      const ms_stream_opts *opts);
int ms__stream_create_buffered(ms_stream **sp, ms_stream_mode mode,
			       enum ms__kind kind, const ms_stream_opts *opts);
void ms__stream_destroy(ms_stream *s);
int ms__writer_flush(ms_stream *s);
int ms__iov_array_flush(ms_stream *s);
int ms__iov_array_make_room(ms_stream *s);
void ms__iov_array_close(ms_stream *s);
void ms__mem_set_limit(ms_stream *s);
void ms__stream_drop(ms_stream *s);
void ms__feed_mark(ms_stream *s);
void ms__feed_unmark(ms_stream *s);
int ms__feed_rewind(ms_stream *s);

#endif /* MIGSTREAM_STREAM_IMPL_H */
