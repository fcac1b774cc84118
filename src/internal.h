/* SPDX-License-Identifier: MIT */
/*
 * Private declarations shared by the library's source files.  Nothing here
 * is installed; every non-static name carries the ms__ prefix.
 */
#ifndef MIGSTREAM_INTERNAL_H
#define MIGSTREAM_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migstream/stream.h"

#define MS__ERRMSG_SIZE 1024

/* No offset to name (ms__error_set()'s @offset). */
#define MS__NO_OFFSET UINT64_MAX
/* No section to name (ms__error_set()'s @section_id). */
#define MS__NO_SECTION (-1LL)

/*
 * The sticky first error of an object (a stream, reader, writer, save,
 * load or adapter), as jansson's json_error_t: its code, where it
 * happened and what was expected and found.  Zeroed means no error.
 */
typedef struct ms__error {
	int code;	 /* 0, or a negative errno */
	uint64_t offset; /* MS__NO_OFFSET when none applies */
	unsigned text;	 /* where @msg's text starts, after "offset 0x...: " */
	char msg[MS__ERRMSG_SIZE];
} ms__error;

/*
 * Record the first error of @e and return its code (the earlier one, if
 * @e already holds one; later calls change nothing).  A non-negative @err
 * becomes @fallback.  The message is "offset 0x<hex>: section <id>
 * '<idstr>': <fmt...>", each prefix only when given (@offset not
 * MS__NO_OFFSET, @section_id not MS__NO_SECTION); @fmt NULL gives
 * ms_strerror(err) as the text.  The one way every object of the library
 * sets its error, so that all messages name offsets the same way.
 */
int ms__error_set(ms__error *e, int err, int fallback, uint64_t offset,
		  long long section_id, const char *idstr, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 7, 8)))
#endif
	;
int ms__error_vset(ms__error *e, int err, int fallback, uint64_t offset,
		   long long section_id, const char *idstr, const char *fmt,
		   va_list ap)
#if defined(__GNUC__)
	__attribute__((format(printf, 7, 0)))
#endif
	;
/* @e's message after its "offset 0x...: " prefix, if it has one. */
const char *ms__error_text(const ms__error *e);
/* Copy @from into @e unless @e already holds an error; returns @e's code. */
int ms__error_take(ms__error *e, const ms__error *from);
/*
 * Say in @e's message why a call was refused with -EINVAL (a wrong call
 * order or a bad argument: "<function>: <what was expected>, <what was
 * found>"), without making it an error: the code stays 0, so the object
 * goes on working, and its message names the last refused call until an
 * error replaces it.  Does nothing once @e holds an error.  Returns
 * -EINVAL.
 */
int ms__error_misuse(ms__error *e, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/* Allocation through an optional ms_allocator (NULL means libc). */
void *ms__malloc(const ms_allocator *a, size_t size);
void *ms__realloc(const ms_allocator *a, void *ptr, size_t size);
void ms__free(const ms_allocator *a, void *ptr);

/* Explicit big-endian encoding, independent of the host's byte order. */
static inline void ms__store_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void ms__store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void ms__store_be64(uint8_t *p, uint64_t v)
{
	ms__store_be32(p, (uint32_t)(v >> 32));
	ms__store_be32(p + 4, (uint32_t)v);
}

static inline uint16_t ms__load_be16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t ms__load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline uint64_t ms__load_be64(const uint8_t *p)
{
	return (uint64_t)ms__load_be32(p) << 32 | ms__load_be32(p + 4);
}

/*
 * Fail a stream with an explicit offset (its error is an ms__error: the
 * message reads "offset 0x<hex>: <fmt...>"; a non-negative @err becomes
 * -EIO).  The first error wins; returns the stream's error after the
 * call.  A reader's buffered bytes can no longer be got after it.
 */
int ms__stream_fail(ms_stream *s, int err, uint64_t offset, const char *fmt,
		    ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 4, 5)))
#endif
	;
/* A stream's sticky error as a whole (code, offset, message), for an
 * object that takes it over with ms__error_take(). */
const ms__error *ms__stream_error(const ms_stream *s);
/* Its message without the "offset 0x...: " that starts it, for an object
 * that names the error within a message (and offset) of its own. */
const char *ms__stream_errtext(const ms_stream *s);

/* CRC-32 (IEEE, zlib's crc32()), continuing from @crc (0 to start). */
uint32_t ms__crc32(uint32_t crc, const void *buf, size_t len);

/* Stream over at most @limit bytes of @parent (reader), for payloads of
 * known length; closing it does not close @parent. */
int ms__substream_new(ms_stream **out, ms_stream *parent, uint64_t limit,
		      const ms_allocator *a);
/* Bytes of the window not yet taken from its parent. */
uint64_t ms__substream_left(const ms_stream *w);

/* A custom reader whose source can also lend its next bytes in place
 * (@borrow: > 0 bytes at *p, valid until the next read or borrow; 0 at
 * the end; or a negative errno); gets are served from them directly. */
int ms__stream_new_borrowing(ms_stream **out, const ms_stream_ops *ops,
			     ssize_t (*borrow)(void *opaque, const uint8_t **p),
			     void *opaque, const ms_stream_opts *opts);

/* A feed reader with nothing to read yet and no end marked. */
bool ms__stream_is_starved(const ms_stream *s);
/* Whether @s is a feed reader (its buffer moves when it is fed). */
bool ms__stream_is_feed(const ms_stream *s);
/* 0 if ms_stream_feed_commit(@s, @len) would be accepted, else -EINVAL. */
int ms__feed_commit_ok(const ms_stream *s, size_t len);
/*
 * Mark and rewind a feed reader, for the load driver: a parser that ran
 * out of fed data (-EAGAIN) goes back to the mark and tries again when
 * more has come.  The bytes from the mark on are kept until the mark is
 * dropped.  ms__feed_rewind() also undoes an -EAGAIN error; it returns
 * -EINVAL without a mark or after another error.
 */
void ms__feed_mark(ms_stream *s);
void ms__feed_unmark(ms_stream *s);
int ms__feed_rewind(ms_stream *s);

/* Drop what a writer stream queued, without sending it (writers whose
 * flush hands the data off; the others keep it). */
void ms__stream_drop(ms_stream *s);

struct ms_load;
/* What a fed load has tried so far: the runs of the reader or of a
 * handler, and the bytes they read; tests hold these to O(input). */
void ms__load_counts(const struct ms_load *ld, uint64_t *attempts,
		     uint64_t *bytes);
/* The ms_load_opts.max_fed_bytes a load uses. */
size_t ms__load_max_fed(const struct ms_load *ld);
struct ms_vfu_adapter;
/* The same for the adapter's load in progress (0 without one). */
size_t ms__vfu_max_fed(const struct ms_vfu_adapter *a);

/*
 * An arena of payloads (src/arena.c): a writer puts its bytes straight
 * into it, and ms__arena_commit() keeps them there, unmoved, until their
 * chunk is released.  Chunks of 2 MiB and more are huge pages where the
 * system has them and @a is the C library's.
 */
struct ms__arena_chunk;
struct ms__arena {
	const ms_allocator *a;
	struct ms__arena_chunk *head, *tail;
	size_t next_cap; /* the next chunk's size */
	size_t bytes;	 /* allocated in all chunks */
};
void ms__arena_init(struct ms__arena *ar, const ms_allocator *a);
/* Free every chunk; the arena may be used again. */
void ms__arena_free(struct ms__arena *ar);
/* Free the chunks before @keep (all of them for NULL). */
void ms__arena_release_before(struct ms__arena *ar,
			      const struct ms__arena_chunk *keep);
/* A writer of one payload into @ar; close it after ms__arena_commit(). */
int ms__arena_writer(ms_stream **out, struct ms__arena *ar);
/* The payload written to @s, kept in the arena: its bytes, their number
 * and their chunk (NULL and 0 for none), or the writer's error. */
int ms__arena_commit(ms_stream *s, const uint8_t **data, size_t *len,
		     struct ms__arena_chunk **chunk);

#endif /* MIGSTREAM_INTERNAL_H */
