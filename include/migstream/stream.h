/* SPDX-License-Identifier: MIT */
/*
 * migstream stream core: a buffered, one-direction byte stream with
 * big-endian puts and gets, sticky first-error reporting and pluggable
 * sinks (memory, file descriptor, iovec, custom).
 *
 * Conventions used by every function in this header:
 * - Functions that can fail return 0 (or a byte count) on success and a
 *   negative errno on failure.  ms_strerror() names every code.
 * - A stream's first error is sticky.  After it, every ms_put_*() does
 *   nothing and returns the error, every ms_get_*() returns 0 (or fills
 *   its destination with zeros) and returns the error, and
 *   ms_stream_flush() and ms_stream_close() return it.  The error keeps
 *   its code, a message ("offset 0x<hex>: <what>", the offset in hex as
 *   in every message of the library) and the byte offset at which it
 *   happened.
 * - A call refused with -EINVAL for a wrong order or a bad argument (a
 *   feed after ms_stream_feed_end(), a commit larger than its
 *   reservation, a counted string over 255 bytes) does not fail the
 *   stream: the error stays 0, and ms_stream_errmsg() names the call and
 *   what it expected until the next refusal or a real error.
 * - Caller bugs (NULL stream, a put on a reader, a get on a writer) are
 *   caught by assert(); in builds with NDEBUG they are refused as above
 *   (-EINVAL, the error state untouched, a message).  A get misused that
 *   way still stores zeros in its destination (when that is not NULL).
 * - A stream is not thread-safe: one thread at a time may use it.  The
 *   library keeps no global or static mutable state, so different streams
 *   may be used on different threads at the same time.  The function
 *   comments below say "Not thread-safe" for this rule.
 */
#ifndef MIGSTREAM_STREAM_H
#define MIGSTREAM_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * ms_strerror() - Describe an error code returned by this library.
 * @err: a negative errno as returned by a migstream function (a positive
 *       value is accepted and treated as its negation; 0 means success).
 *
 * Return: a static, human-readable string.  Unknown codes give
 * "unknown error".  Thread-safe.
 */
const char *ms_strerror(int err);

/**
 * struct ms_allocator - Per-object memory allocation hooks.
 * @malloc: like malloc(3); returns NULL on failure.
 * @realloc: like realloc(3); returns NULL on failure and leaves @ptr alone.
 * @free: like free(3); must accept NULL.
 * @opaque: passed as the first argument of each hook, as in every
 *          callback of the library.
 *
 * Objects created with an allocator use it for every allocation they make
 * (zlib's included) and keep the pointer to it: the structure must stay
 * valid until the last object created with it is freed.  NULL where an
 * allocator is accepted means the C library's.
 */
typedef struct ms_allocator {
	void *(*malloc)(void *opaque, size_t size);
	void *(*realloc)(void *opaque, void *ptr, size_t size);
	void (*free)(void *opaque, void *ptr);
	void *opaque;
} ms_allocator;

/** typedef ms_stream - An opaque stream handle. */
typedef struct ms_stream ms_stream;

/* Default internal buffer size, as QEMUFile's IO_BUF_SIZE. */
#define MS_STREAM_DEFAULT_BUFFER_SIZE (32u * 1024u)
/* Default size from which ms_put_buffer_async() queues instead of copying. */
#define MS_STREAM_DEFAULT_ZERO_COPY_THRESHOLD 4096u
/* Number of iovecs a writer queues before it flushes. */
#define MS_STREAM_MAX_IOV 64
/* Largest number of bytes ms_put_counted_string() can write. */
#define MS_COUNTED_STRING_MAX 255

#define MS_STREAM_OPTS_VERSION 1

/**
 * struct ms_stream_opts - Optional settings for a new stream.
 * @version: must be MS_STREAM_OPTS_VERSION.
 * @allocator: allocation hooks, or NULL for the C library's.
 * @buffer_size: size of the internal buffer in bytes; 0 means
 *               MS_STREAM_DEFAULT_BUFFER_SIZE.  It is also the largest
 *               ms_peek().  At least 16 bytes and at most 1 GiB
 *               (1 << 30): a size outside that range is refused with
 *               -EINVAL.
 * @zero_copy_threshold: ms_put_buffer_async() queues buffers of at least
 *                       this many bytes without copying them; 0 means
 *                       MS_STREAM_DEFAULT_ZERO_COPY_THRESHOLD.
 * @timeout_ms: how long a file-descriptor stream waits in poll() for a
 *              non-blocking descriptor to become ready; 0 waits forever.
 *              A wait that runs out fails the stream with -ETIMEDOUT.
 *
 * Pass NULL instead of a pointer to this structure for all defaults.  A
 * structure with an unknown @version is refused with -EINVAL.
 */
typedef struct ms_stream_opts {
	unsigned version;
	const ms_allocator *allocator;
	size_t buffer_size;
	size_t zero_copy_threshold;
	int timeout_ms;
} ms_stream_opts;

/**
 * enum ms_stream_mode - The one direction a stream moves data in.
 * @MS_STREAM_WRITER: the stream accepts ms_put_*() calls.
 * @MS_STREAM_READER: the stream accepts ms_get_*() calls.
 */
typedef enum ms_stream_mode {
	MS_STREAM_WRITER = 1,
	MS_STREAM_READER = 2
} ms_stream_mode;

/*
 * Memory sink.
 */

/**
 * ms_stream_new_mem() - Create a writer into a growable memory buffer.
 * @out: receives the new stream; untouched on failure.
 * @max_size: the largest number of bytes the buffer may hold at once; 0
 *            means no limit.  A put that would go past it fails the
 *            stream with -ENOSPC.
 * @opts: settings, or NULL.
 *
 * Growth is geometric, so N bytes of puts cost O(N) in total.  The
 * contents are available at any time through ms_stream_mem_view().
 *
 * Return: 0, -EINVAL (bad @opts) or -ENOMEM.
 */
int ms_stream_new_mem(ms_stream **out, size_t max_size,
		      const ms_stream_opts *opts);

/**
 * ms_stream_mem_view() - Look at the bytes a memory writer holds.
 * @s: a stream from ms_stream_new_mem().
 * @data: receives a pointer to the first byte not yet discarded; valid
 *        until the next put, ms_stream_mem_discard() or close.  May be
 *        NULL when the length is 0.
 * @len: receives the number of bytes held.
 *
 * Return: 0, the stream's sticky error (the view is still given: it
 * holds every byte put before the error), or -EINVAL when @s is NULL or
 * not a memory writer, or @data or @len is NULL (those that are not NULL
 * receive NULL and 0).
 */
int ms_stream_mem_view(ms_stream *s, const uint8_t **data, size_t *len);

/**
 * ms_stream_mem_discard() - Drop bytes from the front of a memory writer.
 * @s: a stream from ms_stream_new_mem().
 * @len: how many bytes to drop; at most the number held.
 *
 * Lets a producer hand its output out in windows while keeping memory
 * bounded by what is still held.  ms_stream_tell() is not affected, and
 * the space is reused without copying more than O(held) bytes.
 *
 * Return: 0, or -EINVAL when @len exceeds what is held.
 */
int ms_stream_mem_discard(ms_stream *s, size_t len);

/**
 * ms_stream_new_mem_reader() - Create a reader over a caller's buffer.
 * @out: receives the new stream; untouched on failure.
 * @buf: the bytes to read; borrowed, not copied: it must stay valid and
 *       unchanged until the stream is closed.  May be NULL if @len is 0.
 * @len: number of bytes in @buf.
 * @opts: settings, or NULL.
 *
 * Return: 0, -EINVAL or -ENOMEM.
 */
int ms_stream_new_mem_reader(ms_stream **out, const void *buf, size_t len,
			     const ms_stream_opts *opts);

/**
 * ms_stream_new_feed() - Create a reader that is fed data chunk by chunk.
 * @out: receives the new stream; untouched on failure.
 * @opts: settings, or NULL.
 *
 * Data is appended with ms_stream_feed() and the end is marked with
 * ms_stream_feed_end().  Only what has not been read yet is kept.  A get
 * that needs more bytes than were fed fails the stream with -EAGAIN
 * before ms_stream_feed_end() and with -ENODATA after it, so incremental
 * consumers check ms_stream_available() before they read.
 *
 * Return: 0, -EINVAL or -ENOMEM.
 */
int ms_stream_new_feed(ms_stream **out, const ms_stream_opts *opts);

/**
 * ms_stream_feed() - Append data to a feed reader.
 * @s: a stream from ms_stream_new_feed().
 * @buf: the bytes; copied before return.
 * @len: number of bytes.
 *
 * Return: 0, -EINVAL (after ms_stream_feed_end()), -ENOMEM (the stream
 * fails with it too) or the sticky error.
 */
int ms_stream_feed(ms_stream *s, const void *buf, size_t len);

/**
 * ms_stream_feed_reserve() - Room to append to a feed reader in place.
 * @s: a stream from ms_stream_new_feed().
 * @len: bytes of room wanted.
 * @room: receives where to write them (NULL when @len is 0 and the
 *        stream has no buffer yet); set to NULL on failure.
 *
 * For data that arrives in a buffer the caller does not choose (a
 * recv(), a protocol's write callback): write it straight at @room, then
 * call ms_stream_feed_commit() with the number of bytes written, and the
 * bytes are not copied again.  @room stays valid until the next call on
 * @s of any function; a new reservation replaces an uncommitted one.
 *
 * Return: 0, -EINVAL (after ms_stream_feed_end()), -ENOMEM (the stream
 * fails with it too) or the sticky error.
 */
int ms_stream_feed_reserve(ms_stream *s, size_t len, void **room);

/**
 * ms_stream_feed_commit() - Append what was written at a reservation.
 * @s: a stream from ms_stream_new_feed().
 * @len: bytes written at the room of the last ms_stream_feed_reserve(),
 *       from its start; at most the length reserved.
 *
 * Ends the reservation: the next append needs a new one.  A reservation
 * is also ended by ms_stream_feed() and by a failed reservation.
 *
 * Return: 0, the sticky error, or -EINVAL (no reservation, or @len over
 * it; nothing is appended).
 */
int ms_stream_feed_commit(ms_stream *s, size_t len);

/**
 * ms_stream_feed_end() - Mark the end of a feed reader's data.
 * @s: a stream from ms_stream_new_feed().
 *
 * Return: 0, or the sticky error.
 */
int ms_stream_feed_end(ms_stream *s);

/**
 * ms_stream_available() - Bytes a reader can deliver without waiting.
 * @s: a reader.
 *
 * Return: for memory and feed readers, every byte not yet read; for the
 * others, what is already buffered.  0 after an error.
 */
size_t ms_stream_available(const ms_stream *s);

/*
 * File-descriptor sink.
 */

/* ms_stream_new_fd() flag: ms_stream_close() closes the descriptor. */
#define MS_FD_OWN 0x1u

/**
 * ms_stream_new_fd() - Create a stream over a file, pipe or socket.
 * @out: receives the new stream; untouched on failure.
 * @fd: an open descriptor, blocking or non-blocking.
 * @mode: MS_STREAM_WRITER or MS_STREAM_READER.
 * @flags: 0 or MS_FD_OWN.
 * @opts: settings, or NULL.
 *
 * Short transfers are completed, EINTR is retried, EAGAIN/EWOULDBLOCK on
 * a non-blocking descriptor waits with poll() (see @opts->timeout_ms).
 * A writer never raises SIGPIPE: a closed peer fails the stream with
 * -EPIPE.  A reader reports the end of the data as a short read
 * (-ENODATA) only when a get needs bytes past it.  With MS_FD_OWN the
 * descriptor is closed by ms_stream_close(); when this function fails the
 * descriptor is left open whatever @flags say.
 *
 * A reader reads ahead: each read(2) asks for up to the buffer size
 * (@opts->buffer_size), so after ms_stream_close() of a reader without
 * MS_FD_OWN the descriptor's offset may be past the last byte got.  A
 * caller that goes on using the descriptor seeks back, or uses a memory
 * reader over data it read itself.
 *
 * Return: 0, -EINVAL (bad @fd number, @mode, @flags or @opts), -EBADF
 * (@fd is not an open descriptor) or -ENOMEM.
 */
int ms_stream_new_fd(ms_stream **out, int fd, ms_stream_mode mode,
		     unsigned flags, const ms_stream_opts *opts);

/**
 * ms_stream_new_file() - Open a file and create a stream over it.
 * @out: receives the new stream; untouched on failure.
 * @path: the file.  A reader opens it with O_RDONLY | O_CLOEXEC; a
 *        writer with O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC and mode
 *        0666 (less the process's umask), so an existing file is
 *        truncated.
 * @mode: MS_STREAM_WRITER or MS_STREAM_READER.
 * @opts: settings, or NULL.
 *
 * The stream owns the descriptor, as ms_stream_new_fd() with MS_FD_OWN:
 * ms_stream_close() closes it.  On failure nothing is left open or
 * allocated, and a writer whose stream cannot be made (bad @opts, no
 * memory) does not touch the file.  A directory is refused, for reading
 * too.
 *
 * Return: 0, -EINVAL (bad @path, @mode or @opts), -ENOMEM, -EISDIR, or
 * the negative errno of open(2) (-ENOENT, -EACCES, -EROFS...).
 */
int ms_stream_new_file(ms_stream **out, const char *path, ms_stream_mode mode,
		       const ms_stream_opts *opts);

/*
 * Iovec sink.
 */

/**
 * typedef ms_iov_fn - Receives a writer's data as a gather list.
 * @opaque: the pointer given at creation.
 * @iov: the data, in order; valid only during the call.
 * @iovcnt: number of entries, at least 1.
 *
 * Return: 0 when all the data was consumed, or a negative errno, which
 * becomes the stream's sticky error.
 */
typedef int (*ms_iov_fn)(void *opaque, const struct iovec *iov, int iovcnt);

/**
 * ms_stream_new_iov() - Create a writer that hands its data to a callback.
 * @out: receives the new stream; untouched on failure.
 * @fn: called on every flush with up to MS_STREAM_MAX_IOV entries:
 *      buffered small puts and, without a copy, the buffers queued by
 *      ms_put_buffer_async().
 * @opaque: passed to @fn.
 * @opts: settings, or NULL.
 *
 * Return: 0, -EINVAL or -ENOMEM.
 */
int ms_stream_new_iov(ms_stream **out, ms_iov_fn fn, void *opaque,
		      const ms_stream_opts *opts);

/**
 * ms_stream_new_iov_array() - Create a writer that gathers into an array.
 * @out: receives the new stream; untouched on failure.
 * @iov: the caller's array, filled in order as data is flushed.
 * @iovmax: number of entries in @iov.
 * @iovcnt: receives the number of entries filled so far; updated by every
 *          flush.
 * @opts: settings, or NULL.
 *
 * The entries point either at the caller's buffers queued with
 * ms_put_buffer_async() (no copy) or at memory the stream owns, which
 * stays valid until ms_stream_close().  Running out of entries fails the
 * stream with -ENOSPC.  A flush may also happen inside a put, when the
 * staging memory fills up.
 *
 * The order is: flush, use the entries, then close; close frees the
 * memory the stream-owned entries point at.  ms_stream_close() therefore
 * never flushes this writer and never touches @iov or @iovcnt: bytes put
 * since the last ms_stream_flush() are dropped, and close reports them
 * with -EINVAL ("closed with N bytes not flushed").
 *
 * Return: 0, -EINVAL or -ENOMEM.
 */
int ms_stream_new_iov_array(ms_stream **out, struct iovec *iov, int iovmax,
			    int *iovcnt, const ms_stream_opts *opts);

/**
 * ms_stream_new_iov_reader() - Create a reader over a caller's iovecs.
 * @out: receives the new stream; untouched on failure.
 * @iov: the data; the array is copied, the memory it points at is
 *       borrowed and must stay valid until the stream is closed.
 * @iovcnt: number of entries (0 or more; empty entries are allowed).
 * @opts: settings, or NULL.
 *
 * Return: 0, -EINVAL or -ENOMEM.
 */
int ms_stream_new_iov_reader(ms_stream **out, const struct iovec *iov,
			     int iovcnt, const ms_stream_opts *opts);

/*
 * Custom sink.
 */

#define MS_STREAM_OPS_VERSION 1

/* ms_stream_ops.wait() events. */
#define MS_WAIT_READ  0x1
#define MS_WAIT_WRITE 0x2

/**
 * struct ms_stream_ops - A user-defined transport.
 * @version: must be MS_STREAM_OPS_VERSION.
 * @writev: for writers: write some of @iovcnt (≥ 1) entries.  Return the
 *          number of bytes taken (≥ 1, fewer than offered is fine: the
 *          stream offers the rest again), or a negative errno.  -EINTR
 *          is retried at once; -EAGAIN calls @wait and retries; any other
 *          error fails the stream.  A return of 0 fails it with -EIO.
 * @read: for readers: read up to @len (≥ 1) bytes into @buf.  Return the
 *        number read (≥ 1), 0 at the end of the data, or a negative
 *        errno handled as for @writev.
 * @wait: optional: block until the transport is ready for @events
 *        (MS_WAIT_READ or MS_WAIT_WRITE).  Return 0 or a negative errno
 *        (which fails the stream).  Without it, -EAGAIN fails the stream.
 * @close: optional: called once by ms_stream_close() after the final
 *         flush.  A negative errno from it becomes the stream's error if
 *         it had none.
 *
 * The stream calls these from the thread that uses the stream, never
 * concurrently, and never after @close.
 */
typedef struct ms_stream_ops {
	unsigned version;
	ssize_t (*writev)(void *opaque, const struct iovec *iov, int iovcnt);
	ssize_t (*read)(void *opaque, void *buf, size_t len);
	int (*wait)(void *opaque, int events);
	int (*close)(void *opaque);
} ms_stream_ops;

/**
 * ms_stream_new_custom() - Create a stream over a user-defined transport.
 * @out: receives the new stream; untouched on failure.
 * @ops: the transport; borrowed, must stay valid until the stream is
 *       closed.  A writer needs @ops->writev, a reader @ops->read.
 * @opaque: passed to every op.
 * @mode: MS_STREAM_WRITER or MS_STREAM_READER.
 * @opts: settings, or NULL.
 *
 * Return: 0, -EINVAL or -ENOMEM.
 */
int ms_stream_new_custom(ms_stream **out, const ms_stream_ops *ops,
			 void *opaque, ms_stream_mode mode,
			 const ms_stream_opts *opts);

/*
 * Life cycle, position and errors.
 */

/**
 * ms_stream_flush() - Push buffered and queued data to the sink.
 * @s: a writer.
 *
 * What stays referenced after it returns depends on the sink:
 * - file-descriptor, custom and iovec-callback writers: the data has been
 *   written or handed to the callback, and buffers queued by
 *   ms_put_buffer_async() are no longer referenced;
 * - iovec-array writer: the data has been described in the caller's
 *   array, whose entries go on pointing at the queued caller buffers
 *   (which must stay valid and unchanged while the caller uses those
 *   entries) and at memory the stream owns (valid until
 *   ms_stream_close());
 * - memory writer: nothing to do, every put was copied.
 *
 * On a reader it does nothing.  Not thread-safe.
 *
 * Return: 0 or the sticky error; -EINVAL when @s is NULL.
 */
int ms_stream_flush(ms_stream *s);

/**
 * ms_stream_close() - Flush, close the sink if owned, and free the stream.
 * @s: a stream, or NULL (nothing happens, 0 is returned).
 *
 * The stream is freed whatever happens.  An iovec-array writer is not
 * flushed (see ms_stream_new_iov_array()): bytes put since its last flush
 * are dropped and, if the stream had no error, make close return -EINVAL.
 * Not thread-safe.
 *
 * Return: 0 or the stream's first error, including one from this final
 * flush or from closing the sink.
 */
int ms_stream_close(ms_stream *s);

/**
 * ms_stream_tell() - Bytes put into or got from the stream so far.
 * @s: a stream.
 *
 * Buffered bytes count: this is the logical position, not what reached
 * the sink.  Skipped and discarded bytes count too.
 *
 * Return: the position.
 */
uint64_t ms_stream_tell(const ms_stream *s);

/**
 * ms_stream_error() - The stream's sticky error.
 * @s: a stream.
 *
 * Return: 0 or the first negative errno the stream met.
 */
int ms_stream_error(const ms_stream *s);

/**
 * ms_stream_errmsg() - Message of the stream's sticky error.
 * @s: a stream.
 *
 * Return: the error's message, such as "offset 0x62: end of stream: 4
 * bytes needed, 2 left"; without an error, what the last call refused
 * with -EINVAL expected (e.g. "ms_stream_feed: called after
 * ms_stream_feed_end()"), or "" when there was none.  Valid until the
 * stream is closed; a later refusal or error may change it.
 */
const char *ms_stream_errmsg(const ms_stream *s);

/**
 * ms_stream_error_offset() - Where the sticky error happened.
 * @s: a stream.
 *
 * When a reader's data ends (-ENODATA, or -EAGAIN for a feed reader),
 * the position of the first byte of the get that ran out, so that the
 * item that was cut short is named.  When a sink fails, the position of
 * the first byte it did not deliver (reader) or did not take (writer).
 * For ms_stream_set_error(), the position at the time of the call.
 *
 * Return: the byte offset, or 0 when there is no error.
 */
uint64_t ms_stream_error_offset(const ms_stream *s);

/**
 * ms_stream_set_error() - Fail a stream from outside (e.g. a parser).
 * @s: a stream.
 * @err: a negative errno.
 * @fmt: printf-style message, or NULL for ms_strerror(@err).
 *
 * Does nothing if the stream already failed (the first error wins).  The
 * offset recorded is the current ms_stream_tell(), and the message is
 * "offset 0x<hex>: " followed by the formatted text.
 *
 * Return: the stream's error after the call.
 */
int ms_stream_set_error(ms_stream *s, int err, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

/**
 * ms_stream_is_eof() - Whether a reader is at the clean end of its data.
 * @s: a reader.
 *
 * May read from the sink to find out (and so may fail the stream with a
 * transport error).  A feed reader is at its end only after
 * ms_stream_feed_end().
 *
 * Return: true when no byte is left and no error happened.
 */
bool ms_stream_is_eof(ms_stream *s);

/**
 * ms_stream_mode_of() - The direction of a stream.
 * @s: a stream.
 *
 * Return: MS_STREAM_WRITER or MS_STREAM_READER; 0 (neither) when @s is
 * NULL (a caller bug, caught by assert()).
 */
ms_stream_mode ms_stream_mode_of(const ms_stream *s);

/**
 * struct ms_stream_stats - Counters of a stream, for tuning and tests.
 * @bytes: bytes moved through the stream (equals ms_stream_tell()).
 * @bytes_copied: bytes the stream copied into its own memory on the way.
 * @bytes_zero_copy: bytes passed on from caller memory without a copy.
 * @sink_calls: calls made to the sink (writev, read or callback).
 */
typedef struct ms_stream_stats {
	uint64_t bytes;
	uint64_t bytes_copied;
	uint64_t bytes_zero_copy;
	uint64_t sink_calls;
} ms_stream_stats;

/**
 * ms_stream_get_stats() - Read a stream's counters.
 * @s: a stream.
 * @st: receives the counters; all zeros when @s is NULL.
 *
 * NULL @s or @st is a caller bug, caught by assert(); with NDEBUG nothing
 * is dereferenced.  Not thread-safe.
 */
void ms_stream_get_stats(const ms_stream *s, ms_stream_stats *st);

/*
 * Writing.  Each put returns 0 or the sticky error; after an error it
 * writes nothing.
 */

/**
 * ms_put_u8() - Append one byte.
 * @s: a writer.
 * @v: the value.
 *
 * Not thread-safe.
 *
 * Return: 0, the sticky error (nothing is written), or -EINVAL when @s is
 * NULL or a reader (a caller bug, caught by assert()).
 */
int ms_put_u8(ms_stream *s, uint8_t v);

/**
 * ms_put_be16() - Append a u16 as 2 bytes, big-endian.
 * @s: a writer.
 * @v: the value.
 *
 * Not thread-safe.
 *
 * Return: 0, the sticky error (nothing is written), or -EINVAL when @s is
 * NULL or a reader (a caller bug, caught by assert()).
 */
int ms_put_be16(ms_stream *s, uint16_t v);

/**
 * ms_put_be32() - Append a u32 as 4 bytes, big-endian.
 * @s: a writer.
 * @v: the value.
 *
 * Not thread-safe.
 *
 * Return: 0, the sticky error (nothing is written), or -EINVAL when @s is
 * NULL or a reader (a caller bug, caught by assert()).
 */
int ms_put_be32(ms_stream *s, uint32_t v);

/**
 * ms_put_be64() - Append a u64 as 8 bytes, big-endian.
 * @s: a writer.
 * @v: the value.
 *
 * Not thread-safe.
 *
 * Return: 0, the sticky error (nothing is written), or -EINVAL when @s is
 * NULL or a reader (a caller bug, caught by assert()).
 */
int ms_put_be64(ms_stream *s, uint64_t v);

/**
 * ms_put_s8() - Append an s8 as one byte (two's complement).
 * @s: a writer.
 * @v: the value.
 *
 * Not thread-safe.
 *
 * Return: 0, the sticky error (nothing is written), or -EINVAL when @s is
 * NULL or a reader (a caller bug, caught by assert()).
 */
int ms_put_s8(ms_stream *s, int8_t v);

/**
 * ms_put_sbe16() - Append an s16 as 2 bytes, big-endian two's complement.
 * @s: a writer.
 * @v: the value.
 *
 * Not thread-safe.
 *
 * Return: 0, the sticky error (nothing is written), or -EINVAL when @s is
 * NULL or a reader (a caller bug, caught by assert()).
 */
int ms_put_sbe16(ms_stream *s, int16_t v);

/**
 * ms_put_sbe32() - Append an s32 as 4 bytes, big-endian two's complement.
 * @s: a writer.
 * @v: the value.
 *
 * Not thread-safe.
 *
 * Return: 0, the sticky error (nothing is written), or -EINVAL when @s is
 * NULL or a reader (a caller bug, caught by assert()).
 */
int ms_put_sbe32(ms_stream *s, int32_t v);

/**
 * ms_put_sbe64() - Append an s64 as 8 bytes, big-endian two's complement.
 * @s: a writer.
 * @v: the value.
 *
 * Not thread-safe.
 *
 * Return: 0, the sticky error (nothing is written), or -EINVAL when @s is
 * NULL or a reader (a caller bug, caught by assert()).
 */
int ms_put_sbe64(ms_stream *s, int64_t v);

/**
 * ms_put_be16_array() - Append @n values, each as a big-endian u16.
 * @s: a writer.
 * @v: the values; caller-owned, read before return.  May be NULL if @n is
 *     0.
 * @n: number of values; 0 does nothing.
 *
 * The same bytes as @n calls of ms_put_be16(), several times faster for
 * register files and other arrays.  On an error part of the values may have been written (a
 * prefix, as with single puts).  Not thread-safe.
 *
 * Return: 0, the sticky error, or -EINVAL when @s is NULL or a reader (a
 * caller bug, caught by assert()).
 */
int ms_put_be16_array(ms_stream *s, const uint16_t *v, size_t n);

/**
 * ms_put_be32_array() - Append @n values, each as a big-endian u32.
 * @s: a writer.
 * @v: the values; caller-owned, read before return.  May be NULL if @n is
 *     0.
 * @n: number of values; 0 does nothing.
 *
 * The same bytes as @n calls of ms_put_be32(), several times faster for
 * register files, bitmaps and other arrays.  On an error part of the values may have been written (a
 * prefix, as with single puts).  Not thread-safe.
 *
 * Return: 0, the sticky error, or -EINVAL when @s is NULL or a reader (a
 * caller bug, caught by assert()).
 */
int ms_put_be32_array(ms_stream *s, const uint32_t *v, size_t n);

/**
 * ms_put_be64_array() - Append @n values, each as a big-endian u64.
 * @s: a writer.
 * @v: the values; caller-owned, read before return.  May be NULL if @n is
 *     0.
 * @n: number of values; 0 does nothing.
 *
 * The same bytes as @n calls of ms_put_be64(), several times faster for
 * bitmaps, page lists and other arrays.  On an error part of the values may have been written (a
 * prefix, as with single puts).  Not thread-safe.
 *
 * Return: 0, the sticky error, or -EINVAL when @s is NULL or a reader (a
 * caller bug, caught by assert()).
 */
int ms_put_be64_array(ms_stream *s, const uint64_t *v, size_t n);

/**
 * ms_put_buffer() - Append bytes.
 * @s: a writer.
 * @buf: caller-owned; copied (or written out) before return.  May be NULL
 *       if @len is 0.
 * @len: number of bytes; 0 does nothing.
 *
 * Not thread-safe.
 *
 * Return: 0, the sticky error, or -EINVAL (@s NULL or a reader, or @buf
 * NULL with @len not 0).
 */
int ms_put_buffer(ms_stream *s, const void *buf, size_t len);

/**
 * ms_put_buffer_async() - Append bytes without copying them.
 * @s: a writer.
 * @buf: caller-owned.  When @len is at least the zero-copy threshold the
 *       stream queues a pointer to it instead of copying; how long the
 *       memory must then stay valid and unchanged depends on the sink:
 *       - file-descriptor, custom and iovec-callback writers: until the
 *         next ms_stream_flush() or ms_stream_close() returns (an earlier,
 *         internal flush may send it sooner, never later);
 *       - iovec-array writer: the flush stores a pointer to it in the
 *         caller's array, so as long as the caller uses those entries,
 *         even after ms_stream_close();
 *       - memory writer: not at all, it always copies.
 *       Smaller buffers are copied before return.
 * @len: number of bytes; 0 does nothing.
 *
 * Not thread-safe.
 *
 * Return: 0, the sticky error, or -EINVAL (@s NULL or a reader, or @buf
 * NULL with @len not 0).
 */
int ms_put_buffer_async(ms_stream *s, const void *buf, size_t len);

/**
 * ms_put_counted_string() - Append a u8 length and that many bytes.
 * @s: a writer.
 * @str: NUL-terminated string of at most MS_COUNTED_STRING_MAX bytes; the
 *       NUL is not written (QEMU's counted string).
 *
 * Not thread-safe.
 *
 * Return: 0, -EINVAL (string too long, @str NULL, or @s NULL or a reader;
 * nothing written, the stream is not failed) or the sticky error.
 */
int ms_put_counted_string(ms_stream *s, const char *str);

/*
 * Reading.  Each get stores its value (0 after an error) and returns 0 or
 * the sticky error.  A get that runs out of data fails the stream with
 * -ENODATA ("end of stream"), never passing zeros off as data.
 */

/**
 * ms_get_u8() - Read one byte.
 * @s: a reader.
 * @v: receives the value; 0 on error.
 *
 * Not thread-safe.
 *
 * Return: 0, the sticky error (-ENODATA when the data ends first, -EAGAIN
 * for a feed reader still waiting for it), or -EINVAL when @s is NULL or
 * a writer (a caller bug, caught by assert(); @v is still zeroed).
 */
int ms_get_u8(ms_stream *s, uint8_t *v);

/**
 * ms_get_be16() - Read a u16 stored as 2 bytes, big-endian.
 * @s: a reader.
 * @v: receives the value; 0 on error.
 *
 * Not thread-safe.
 *
 * Return: 0, the sticky error (-ENODATA when the data ends first, -EAGAIN
 * for a feed reader still waiting for it), or -EINVAL when @s is NULL or
 * a writer (a caller bug, caught by assert(); @v is still zeroed).
 */
int ms_get_be16(ms_stream *s, uint16_t *v);

/**
 * ms_get_be32() - Read a u32 stored as 4 bytes, big-endian.
 * @s: a reader.
 * @v: receives the value; 0 on error.
 *
 * Not thread-safe.
 *
 * Return: 0, the sticky error (-ENODATA when the data ends first, -EAGAIN
 * for a feed reader still waiting for it), or -EINVAL when @s is NULL or
 * a writer (a caller bug, caught by assert(); @v is still zeroed).
 */
int ms_get_be32(ms_stream *s, uint32_t *v);

/**
 * ms_get_be64() - Read a u64 stored as 8 bytes, big-endian.
 * @s: a reader.
 * @v: receives the value; 0 on error.
 *
 * Not thread-safe.
 *
 * Return: 0, the sticky error (-ENODATA when the data ends first, -EAGAIN
 * for a feed reader still waiting for it), or -EINVAL when @s is NULL or
 * a writer (a caller bug, caught by assert(); @v is still zeroed).
 */
int ms_get_be64(ms_stream *s, uint64_t *v);

/**
 * ms_get_s8() - Read an s8 stored as one byte (two's complement).
 * @s: a reader.
 * @v: receives the value; 0 on error.
 *
 * Not thread-safe.
 *
 * Return: 0, the sticky error (-ENODATA when the data ends first, -EAGAIN
 * for a feed reader still waiting for it), or -EINVAL when @s is NULL or
 * a writer (a caller bug, caught by assert(); @v is still zeroed).
 */
int ms_get_s8(ms_stream *s, int8_t *v);

/**
 * ms_get_sbe16() - Read an s16 stored as 2 bytes, big-endian.
 * @s: a reader.
 * @v: receives the value; 0 on error.
 *
 * Not thread-safe.
 *
 * Return: 0, the sticky error (-ENODATA when the data ends first, -EAGAIN
 * for a feed reader still waiting for it), or -EINVAL when @s is NULL or
 * a writer (a caller bug, caught by assert(); @v is still zeroed).
 */
int ms_get_sbe16(ms_stream *s, int16_t *v);

/**
 * ms_get_sbe32() - Read an s32 stored as 4 bytes, big-endian.
 * @s: a reader.
 * @v: receives the value; 0 on error.
 *
 * Not thread-safe.
 *
 * Return: 0, the sticky error (-ENODATA when the data ends first, -EAGAIN
 * for a feed reader still waiting for it), or -EINVAL when @s is NULL or
 * a writer (a caller bug, caught by assert(); @v is still zeroed).
 */
int ms_get_sbe32(ms_stream *s, int32_t *v);

/**
 * ms_get_sbe64() - Read an s64 stored as 8 bytes, big-endian.
 * @s: a reader.
 * @v: receives the value; 0 on error.
 *
 * Not thread-safe.
 *
 * Return: 0, the sticky error (-ENODATA when the data ends first, -EAGAIN
 * for a feed reader still waiting for it), or -EINVAL when @s is NULL or
 * a writer (a caller bug, caught by assert(); @v is still zeroed).
 */
int ms_get_sbe64(ms_stream *s, int64_t *v);

/**
 * ms_get_be16_array() - Read @n big-endian u16 values.
 * @s: a reader.
 * @v: receives the values; all @n are zeros on error.  May be NULL if @n
 *     is 0.
 * @n: number of values; 0 reads nothing.
 *
 * The same as @n calls of ms_get_be16(), faster.  Not thread-safe.
 *
 * Return: 0, the sticky error (-ENODATA when the data ends first, -EAGAIN
 * for a feed reader still waiting for it), or -EINVAL when @s is NULL or
 * a writer (a caller bug, caught by assert(); @v is still zeroed).
 */
int ms_get_be16_array(ms_stream *s, uint16_t *v, size_t n);

/**
 * ms_get_be32_array() - Read @n big-endian u32 values.
 * @s: a reader.
 * @v: receives the values; all @n are zeros on error.  May be NULL if @n
 *     is 0.
 * @n: number of values; 0 reads nothing.
 *
 * The same as @n calls of ms_get_be32(), faster.  Not thread-safe.
 *
 * Return: 0, the sticky error (-ENODATA when the data ends first, -EAGAIN
 * for a feed reader still waiting for it), or -EINVAL when @s is NULL or
 * a writer (a caller bug, caught by assert(); @v is still zeroed).
 */
int ms_get_be32_array(ms_stream *s, uint32_t *v, size_t n);

/**
 * ms_get_be64_array() - Read @n big-endian u64 values.
 * @s: a reader.
 * @v: receives the values; all @n are zeros on error.  May be NULL if @n
 *     is 0.
 * @n: number of values; 0 reads nothing.
 *
 * The same as @n calls of ms_get_be64(), faster.  Not thread-safe.
 *
 * Return: 0, the sticky error (-ENODATA when the data ends first, -EAGAIN
 * for a feed reader still waiting for it), or -EINVAL when @s is NULL or
 * a writer (a caller bug, caught by assert(); @v is still zeroed).
 */
int ms_get_be64_array(ms_stream *s, uint64_t *v, size_t n);

/**
 * ms_get_buffer() - Read exactly @len bytes.
 * @s: a reader.
 * @buf: receives the bytes; on error it is filled with zeros.  May be NULL
 *       if @len is 0.
 * @len: number of bytes.
 *
 * Never writes past @buf + @len and never consumes more than @len bytes
 * of the stream.  Not thread-safe.
 *
 * Return: 0, the sticky error, or -EINVAL (@s NULL or a writer, or @buf
 * NULL with @len not 0).
 */
int ms_get_buffer(ms_stream *s, void *buf, size_t len);

/**
 * ms_get_counted_string() - Read a u8 length and that many bytes.
 * @s: a reader.
 * @buf: receives the string, NUL-terminated; "" on error.
 *
 * Not thread-safe.
 *
 * Return: the string's length (0..255), the sticky error, or -EINVAL when
 * @s is NULL or a writer (@buf is still set to "").
 */
int ms_get_counted_string(ms_stream *s, char buf[MS_COUNTED_STRING_MAX + 1]);

/**
 * ms_peek() - Look at upcoming bytes without consuming them.
 * @s: a reader.
 * @data: receives a pointer to the bytes; valid until the next call on
 *        @s.  NULL on error, and possibly NULL when 0 is returned.
 * @len: how many bytes to look at; at most the buffer size, except for
 *       memory and feed readers, which hold all their data and take any
 *       length.
 *
 * Not thread-safe.
 *
 * A feed reader whose end was not marked fails with -EAGAIN, like a get,
 * when fewer than @len bytes were fed: what follows is not known yet.
 *
 * Return: the number of bytes available at @data, @len or fewer when the
 * data ends first (0 at the end), or a negative errno: the sticky error,
 * or -EINVAL when @len is larger than the buffer size, or @s is NULL or a
 * writer, or @data is NULL (the stream is not failed).
 */
ssize_t ms_peek(ms_stream *s, const uint8_t **data, size_t len);

/**
 * ms_skip() - Consume and drop @len bytes.
 * @s: a reader.
 * @len: number of bytes.
 *
 * Not thread-safe.
 *
 * Return: 0, the sticky error (-ENODATA when fewer bytes are left), or
 * -EINVAL when @s is NULL or a writer.
 */
int ms_skip(ms_stream *s, uint64_t len);

#ifdef __cplusplus
}
#endif

#endif /* MIGSTREAM_STREAM_H */
