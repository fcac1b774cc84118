/* SPDX-License-Identifier: MIT */
/*
 * Private declarations of the codec (writer and reader).
 */
#ifndef MIGSTREAM_CODEC_H
#define MIGSTREAM_CODEC_H

#include <stdbool.h>
#include <stdint.h>
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

enum ms__wstate { MS__W_INIT, MS__W_BODY, MS__W_EOF, MS__W_VMDESC, MS__W_DONE };

struct ms_writer {
	ms_stream *s;
	ms_codec_opts o;
	const ms_allocator *a;
	int err;
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
	char errmsg[512];
};

int ms__codec_opts_apply(ms_codec_opts *dst, const ms_codec_opts *src,
			 bool reader);
int ms__command_len(uint16_t cmd);
void ms__zstream_init(z_stream *z, const ms_allocator *a);
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

/* Drop what a writer stream buffered, without sending it. */
void ms__stream_drop(ms_stream *s);

#endif /* MIGSTREAM_CODEC_H */
