/* SPDX-License-Identifier: MIT */
/*
 * Private declarations of the codec.  codec.c holds the writer and reader
 * objects, their checks of call order and options, and the pieces both
 * profiles share (the section table, the CONFIGURATION record, commands,
 * zlib set-up); codec-qemu.c and codec-native.c each read and write one
 * profile, as docs/FORMAT.md describes them, behind struct ms__codec_profile.
 */
#ifndef MIGSTREAM_CODEC_H
#define MIGSTREAM_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <zlib.h>

#include "internal.h"
#include "migstream/section.h"

/* Native profile constants: docs/FORMAT.md is the reference. */
#define MS__NATIVE_HEADER_SIZE	 16
#define MS__NATIVE_VERSION	 1
#define MS__NATIVE_RECORD_HDR	 6	 /* u8 type, u8 flags, be32 length */
#define MS__NFEAT_CRC32		 0x0001u /* every record ends with a CRC-32 */
#define MS__NFEAT_FOOTERS	 0x0002u /* sections end with FOOTER records */
#define MS__NFEAT_KNOWN		 (MS__NFEAT_CRC32 | MS__NFEAT_FOOTERS)
#define MS__NFEAT_MANDATORY_MASK 0x00ffu /* unknown ones here: refuse */
#define MS__NREC_DATA		 0x10
#define MS__NREC_TRAILER	 0x7f
#define MS__NREC_OPTIONAL	 0x80 /* type bit: skippable when unknown */
#define MS__NFLAG_ZLIB		 0x01 /* DATA: be32 size, then raw deflate */

extern const uint8_t ms__native_magic[8];

struct ms__codec_profile;

enum ms__wstate { MS__W_INIT, MS__W_BODY, MS__W_EOF, MS__W_VMDESC, MS__W_DONE };

struct ms_writer {
	ms_stream *s;
	ms_codec_opts o;
	const ms_allocator *a;
	const struct ms__codec_profile *prof;
	ms__error err;	  /* sticky */
	ms__error misuse; /* the last call refused with -EINVAL */
	enum ms__wstate state;
	bool open;
	bool crc_on;
	uint32_t cur_id;   /* id of the open section */
	uint64_t nrecords; /* elements written after the header */
	uint64_t start;	   /* tell() at the header */
	/* Native. */
	size_t chunk;
	ms_stream *payload;
	uint64_t index;
	uint32_t chain;
	z_stream z;
	bool z_init;
	uint8_t *zbuf;
	size_t zcap;
};

/* The reader's position in the grammar. */
enum ms__rstate {
	MS__R_START,
	MS__R_BODY,
	MS__R_AFTER_EOF,
	MS__R_AFTER_VMDESC,
	MS__R_DONE
};

/* What the last record left for the caller to read. */
enum ms__ropen { MS__O_NONE, MS__O_SECTION, MS__O_CONFIG, MS__O_VMDESC };

/* An entry of the reader's section table (codec.c). */
struct ms__sec {
	uint32_t id;
	uint32_t left, right; /* the table's links: 1-based, 0 for none */
	uint8_t height;	      /* of the subtree here: 1 for a leaf */
	bool live;	      /* started and not ended */
	uint32_t instance_id;
	uint32_t version_id;
	char idstr[MS_COUNTED_STRING_MAX + 1];
};

struct ms_reader {
	ms_stream *s;
	ms_codec_opts o;
	const ms_allocator *a;
	const struct ms__codec_profile *prof;
	ms_profile profile;
	enum ms__rstate state;
	enum ms__ropen open;
	ms__error err;
	uint64_t index;
	ms_section_hdr cur; /* the section last seen (for messages) */
	bool have_cur;
	bool want_footer;
	size_t max_vmdesc;
	/* Section table: a balanced tree on the id (codec.c). */
	struct ms__sec *secs;
	size_t nsecs, capsecs;
	uint32_t sec_root;
	uint64_t table_steps; /* entries visited, for the tests */
	/* Payload of the current element. */
	ms_stream *window;	/* commands (both), the trailer (QEMU) */
	ms_stream *dead_window; /* closed once no snapshot can revive it */
	bool seen_mandatory;	/* a non-optional record was read */
	bool defer_free;	/* a fed load takes snapshots */
	ms_stream *payload;	/* native: the dechunking stream */
	/* Native. */
	uint64_t start;
	bool crc_on;
	bool footers;
	uint32_t chain;
	uint32_t chain_prev; /* before the last record's CRC */
	uint8_t *rbuf;	     /* the record being read, when copied */
	const uint8_t *rp;   /* the record being read: rbuf or in place */
	bool inplace_feed;   /* records may be used in place in a feed */
	size_t rcap;
	uint8_t *dbuf; /* decompressed DATA */
	size_t dcap;
	const uint8_t *dp; /* payload bytes not yet handed out */
	size_t dleft;
	bool data_end;	      /* no more DATA for the open element */
	uint64_t data_total;  /* payload bytes of the open element */
	uint64_t data_expect; /* VMDESC: the announced length */
	z_stream z;
	bool z_init;
};

/*
 * One profile's bytes.  codec.c has checked the call (order, arguments)
 * and updated the writer's state before a writer hook runs; the hooks
 * return 0 or the writer's sticky error.
 */
struct ms__codec_profile {
	/* The file header. */
	int (*header)(ms_writer *w);
	/* CONFIGURATION: the machine name (@len bytes), @extra. */
	int (*configuration)(ms_writer *w, const char *machine, size_t len,
			     const void *extra, size_t extra_len);
	/* A section's header (@v: id, then idstr, instance, version). */
	int (*begin)(ms_writer *w, uint8_t type, const struct iovec *v, int nv,
		     ms_stream **payload);
	/* The end of the open section (w->cur_id): its footer, if any. */
	int (*end)(ms_writer *w);
	/* COMMAND: @hdr is be16 cmd, be16 len. */
	int (*command)(ms_writer *w, const uint8_t hdr[4], const void *data,
		       uint16_t len);
	int (*eof)(ms_writer *w);
	int (*vmdesc)(ms_writer *w, const void *json, size_t len);
	/* The end of the stream (not the flush, codec.c does it). */
	int (*finish)(ms_writer *w);
	/* Reader: the next record after the file header (ms_reader_next). */
	int (*next)(ms_reader *r, ms_record *rec);
};

extern const struct ms__codec_profile ms__codec_qemu;
extern const struct ms__codec_profile ms__codec_native;

/*
 * Shared by both profiles (codec.c).
 */

/* Check and copy options (NULL: the defaults).  Returns 0, or -EINVAL with
 * *@why (if not NULL) saying what is wrong. */
int ms__codec_opts_apply(ms_codec_opts *dst, const ms_codec_opts *src,
			 bool reader, const char **why);
/* Fixed payload length of command @cmd, -1 for variable, -2 unknown. */
int ms__command_len(uint16_t cmd);
void ms__zstream_init(z_stream *z, const ms_allocator *a);

/* Fail the writer (first error wins), located at the output's tell(). */
int ms__writer_fail(ms_writer *w, int err, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;
/* Take up an error of the writer's output stream. */
int ms__writer_take_stream(ms_writer *w);

/* The writer's error, taking up one its output stream met. */
static inline int ms__writer_check(ms_writer *w)
{
	if (w->err.code)
		return w->err.code;
	if (!ms_stream_error(w->s))
		return 0;
	return ms__writer_take_stream(w);
}

/* Fail the reader at byte @off of its input (first error wins); a
 * non-negative @err becomes -EBADMSG. */
int ms__reader_fail_at(ms_reader *r, int err, uint64_t off, const char *fmt,
		       ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 4, 5)))
#endif
	;
/* Turn an error of stream @s into the reader's, located at @off (or at
 * the stream's error offset), naming @what was being read. */
int ms__reader_stream_at(ms_reader *r, ms_stream *s, uint64_t off,
			 const char *what);
int ms__reader_stream(ms_reader *r, ms_stream *s, const char *what);
/* Clear @rec for the next record: its numbers and empty strings.  (Not
 * memset(): a record holds two 257-byte strings, and the reader clears
 * one per record, many times the bytes of a small record.) */
void ms__record_clear(ms_record *rec);
/* Copy section header @src to @dst, its idstr up to the NUL only. */
void ms__section_hdr_copy(ms_section_hdr *dst, const ms_section_hdr *src);
/* Validate a section header against the table; fills in PART and END. */
int ms__reader_section_seen(ms_reader *r, ms_section_hdr *h, uint64_t off);
/* CONFIGURATION: read the machine name from @p into @rec; skip the
 * subsections the caller did not read. */
int ms__reader_config_name(ms_reader *r, ms_stream *p, ms_record *rec);
int ms__reader_config_skip(ms_reader *r, ms_stream *p);
/* Grow @buf to @need bytes (bounded by the caller). */
int ms__reader_grow(ms_reader *r, uint8_t **buf, size_t *cap, size_t need);

/* Profile headers, after the first 8 bytes were peeked. */
int ms__native_read_header(ms_reader *r);
int ms__qemu_read_header(ms_reader *r);

/* Let a native reader over a feed use records in place: for a caller
 * that never feeds while a payload of the reader is open (the driver). */
void ms__reader_inplace_feed(ms_reader *r);
int ms__reader_snapshot_new(ms_reader *r, void **snap);
void ms__reader_commit(ms_reader *r);
void ms__reader_snapshot_free(const ms_reader *r, void *snap);
void *ms__reader_snapshot(const ms_reader *r, void *snap);
void ms__reader_restore(ms_reader *r, const void *snap);
unsigned ms__reader_native_crc(const ms_reader *r);
/* Section-table entries the reader has visited so far: its cost, which
 * tests hold to O(log n) per section. */
uint64_t ms__reader_table_steps(const ms_reader *r);

/*
 * Readiness of fed data, for a load that reads an element only once it
 * is there (the load driver).  Both scans resume where the last call
 * stopped, so that their cost is linear in the data fed; zero the scan
 * state when the next element starts.
 */

/* Where ms__codec_native_ready() stopped. */
typedef struct ms__native_scan {
	bool valid; /* off and head hold a position */
	bool head;  /* the element's head record was seen */
	size_t off; /* the next record to look at */
} ms__native_scan;

/*
 * Native: is the next element complete in @p[0..@n)?  It starts after
 * what is left of the previous element's DATA records (at byte 0, or
 * after the file header when @first); it is complete when its head record
 * and all its DATA records are there and the byte after them (the next
 * record's type) is too, or the data has ended (@at_end).  @crc is the
 * bytes of CRC after each record (ms__reader_native_crc()); with @first
 * it is read from the header's feature bits instead.  Returns 1 when the
 * reader can read the element (or report its damage), else 0.
 */
int ms__codec_native_ready(ms__native_scan *sc, const uint8_t *p, size_t n,
			   bool at_end, bool first, unsigned crc);

/* Where ms__codec_qemu_ready() stopped. */
typedef struct ms__qemu_scan {
	bool footer_seen; /* the open section's footer may be there */
	size_t from;	  /* the next byte to look at */
} ms__qemu_scan;

/*
 * QEMU: could the payload of open section @id be complete in
 * @p[0..@n)?  The stream does not say where a payload ends: it could when
 * a footer for @id follows somewhere, always without footers
 * (@no_footers) or when no more data can come (@force).  Returns 1 or 0;
 * a caller that retries a failed parse also bounds how often it does.
 */
int ms__codec_qemu_ready(ms__qemu_scan *sc, const uint8_t *p, size_t n,
			 uint32_t id, bool no_footers, bool force);

#endif /* MIGSTREAM_CODEC_H */
