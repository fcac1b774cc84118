/* SPDX-License-Identifier: MIT */
/*
 * The codec's cases: the native profile's checksums (native-crc-4k,
 * native-crc-4k-hot) and compression (native-zlib-4k, native-zlib-4k-l6),
 * and the QEMU profile's section framing (qemu-frame).  Their groups are
 * listed in bench/cases.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"

/* Pages per PART section of the native cases, as a RAM precopy batch. */
#define RAM_BATCH_PAGES 256
/* Section id of "ram" in the native cases. */
#define RAM_SECTION_ID 2
/* Pages of the page-like data of native-zlib-4k (cycled). */
#define MIX_PAGES 256
/* Sections per pass of qemu-frame, and their payload sizes. */
#define FRAME_SECTIONS	  1000
#define FRAME_PAYLOAD_MIN 64
#define FRAME_PAYLOAD_MAX 200

/*
 * Native profile: native-crc-4k and native-zlib-4k.
 *
 * Both write RAM as a precopy iteration does: PART sections of "ram",
 * RAM_BATCH_PAGES pages each, every page put with one ms_put_buffer().
 * The writers' chunk size is 4 KiB, so every page becomes one DATA record
 * of its own and the framing, the checksum and the deflate stream are
 * paid per page: the finest chunking RAM gets.  (QEMU's own stream puts
 * an 8-byte address before every page; these cases leave it out so that
 * records and pages line up.)  The writers are made once and reused: each
 * run ends by discarding its output, as in mem-put-4k.
 */

/* Record layout of the native profile: u8 type, u8 flags, be32 length,
 * the payload, and be32 CRC-32 with checksums on. */
#define NATIVE_REC_HDR	 6
#define NATIVE_REC_DATA	 0x10
#define NATIVE_FLAG_ZLIB 0x01

static uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t xorshift64(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Report a failed writer call; returns -1. */
static int writer_failed(const char *what, int ret, const ms_writer *w)
{
	fprintf(stderr, "migstream-bench: %s failed: %s: %s\n", what,
		ms_strerror(ret), ms_writer_errmsg(w));
	return -1;
}

/* Page @i of a run: cycled source, or the page-like data when @mix. */
static const uint8_t *page_at(const struct bench *b, size_t i, bool mix)
{
	if (mix)
		return b->pages + (i % MIX_PAGES) * CHUNK_4K;
	return src_chunk(b, i, CHUNK_4K);
}

/**
 * native_writer_new() - A native writer on a new memory writer.
 * @b: the bench, which owns both from here on.
 * @s: receives the memory writer.
 * @w: receives the codec writer.
 * @checksum: the writer's checksum option.
 * @level: its compression level.
 *
 * Writes the file header and an empty START section of "ram", checks the
 * header's CRC-32 against zlib's crc32() (so that a faster CRC is known to
 * compute the same value), and discards them: the runs write only PART
 * sections.
 *
 * Return: 0, or -1 after a message.
 */
static int native_writer_new(struct bench *b, ms_stream **s, ms_writer **w,
			     int checksum, int level)
{
	ms_codec_opts o;
	ms_section_hdr h;
	const uint8_t *d;
	ms_stream *p;
	size_t len;
	int ret;

	(void)b;
	memset(&o, 0, sizeof(o));
	o.version = MS_CODEC_OPTS_VERSION;
	o.profile = MS_PROFILE_NATIVE;
	o.checksum = checksum;
	o.compress_level = level;
	o.chunk_size = CHUNK_4K;
	ret = ms_stream_new_mem(s, 0, NULL);
	if (ret)
		return stream_failed("ms_stream_new_mem", ret, NULL);
	ret = ms_writer_new(w, *s, &o);
	if (ret)
		return stream_failed("ms_writer_new", ret, NULL);
	memset(&h, 0, sizeof(h));
	h.type = MS_REC_START;
	h.section_id = RAM_SECTION_ID;
	strcpy(h.idstr, "ram");
	h.version_id = 4;
	ret = ms_writer_header(*w);
	if (!ret)
		ret = ms_writer_begin(*w, &h, &p);
	if (!ret)
		ret = ms_writer_end(*w);
	if (ret)
		return writer_failed("native header", ret, *w);
	ret = ms_stream_mem_view(*s, &d, &len);
	if (ret)
		return stream_failed("ms_stream_mem_view", ret, *s);
	if (len < 16 || load_be32(d + 12) != (uint32_t)crc32(0, d, 12)) {
		fprintf(stderr, "migstream-bench: native header: CRC-32 "
				"differs from zlib's\n");
		return -1;
	}
	ret = ms_stream_mem_discard(*s, len);
	if (ret)
		return stream_failed("ms_stream_mem_discard", ret, *s);
	return 0;
}

/* Release whatever the codec cases set up (all of it may be unset). */
static int codec_teardown(struct bench *b)
{
	int ret = 0, r;

	ms_writer_free(b->w);
	ms_writer_free(b->w2);
	b->w = NULL;
	b->w2 = NULL;
	r = ms_stream_close(b->mem2);
	if (r)
		ret = stream_failed("ms_stream_close", r, NULL);
	b->mem2 = NULL;
	if (b->z_init)
		deflateEnd(&b->z);
	b->z_init = false;
	free(b->pages);
	free(b->hdrs);
	free(b->plen);
	b->pages = NULL;
	b->hdrs = NULL;
	b->plen = NULL;
	if (mem_teardown(b))
		ret = -1;
	return ret;
}

/*
 * Write pages @first to @first + @npages - 1 (cycled source, or the
 * page-like data when @mix) as PART sections of RAM_BATCH_PAGES pages
 * through @w.
 */
static int ram_write(struct bench *b, ms_writer *w, size_t first, size_t npages,
		     bool mix, double *secs)
{
	ms_section_hdr h;
	ms_stream *p;
	size_t i, k, end = first + npages;
	double t0;
	int ret = 0;

	memset(&h, 0, sizeof(h));
	h.type = MS_REC_PART;
	h.section_id = RAM_SECTION_ID;
	t0 = now();
	for (i = first; i < end && !ret; i += RAM_BATCH_PAGES) {
		ret = ms_writer_begin(w, &h, &p);
		for (k = i; k < i + RAM_BATCH_PAGES && k < end && !ret; k++)
			ret = ms_put_buffer(p, page_at(b, k, mix), CHUNK_4K);
		if (!ret)
			ret = ms_writer_end(w);
	}
	*secs = since(t0);
	if (ret)
		return writer_failed("ram section", ret, w);
	return 0;
}

/* Pages per repetition of native-crc-4k. */
static size_t crc_pages(const struct bench *b)
{
	return b->cfg->crc_bytes / CHUNK_4K;
}

static int crc_setup(struct bench *b)
{
	b->units = (double)(crc_pages(b) * CHUNK_4K);
	if (native_writer_new(b, &b->mem, &b->w, 0, 0) ||
	    native_writer_new(b, &b->mem2, &b->w2, -1, 0))
		return -1;
	/* @w wrote two records: the START and its footer. */
	b->nrec = 2;
	return 0;
}

/**
 * crc_check() - Check and discard what ram_write() wrote.
 * @b: the bench.
 * @s: the memory writer.
 * @first: the first page written.
 * @npages: the pages written.
 * @crc: whether records carry a CRC-32.
 * @who: the name for messages.
 *
 * Checks the length, the last page, and with @crc that page's record CRC
 * against zlib's crc32(): the CRC covers the record's index as be64, its
 * header and its payload.
 *
 * Return: 0, or -1 after a message.
 */
static int crc_check(struct bench *b, ms_stream *s, size_t first, size_t npages,
		     bool crc, const char *who)
{
	size_t nsec = (npages + RAM_BATCH_PAGES - 1) / RAM_BATCH_PAGES;
	size_t rec = NATIVE_REC_HDR + (crc ? 4 : 0);
	size_t len, at, want = nsec * 2 * (rec + 4) + npages * (rec + CHUNK_4K);
	const uint8_t *d;
	uint8_t seed[8];
	uLong c;
	int ret;

	ret = ms_stream_mem_view(s, &d, &len);
	if (ret)
		return stream_failed("ms_stream_mem_view", ret, s);
	/* The last DATA record comes before the footer record. */
	at = len - (rec + 4) - (rec + CHUNK_4K);
	if (len != want || d[at] != NATIVE_REC_DATA || d[at + 1] ||
	    load_be32(d + at + 2) != CHUNK_4K ||
	    memcmp(d + at + NATIVE_REC_HDR,
		   page_at(b, first + npages - 1, false), CHUNK_4K)) {
		fprintf(stderr, "migstream-bench: %s: wrong output\n", who);
		return -1;
	}
	if (crc) {
		b->nrec += 2 * nsec + npages;
		store_be64(seed, b->nrec - 2);
		c = crc32(0, seed, sizeof(seed));
		c = crc32(c, d + at, NATIVE_REC_HDR + CHUNK_4K);
		if (load_be32(d + at + NATIVE_REC_HDR + CHUNK_4K) !=
		    (uint32_t)c) {
			fprintf(stderr,
				"migstream-bench: %s: CRC-32 differs "
				"from zlib's\n",
				who);
			return -1;
		}
	}
	ret = ms_stream_mem_discard(s, len);
	if (ret)
		return stream_failed("ms_stream_mem_discard", ret, s);
	return 0;
}

/*
 * One run of native-crc-4k (@hot false): all pages, then the check, so
 * that the output streams to memory as in mem-put-4k.  One run of
 * native-crc-4k-hot (@hot true): the same pages, but each section is
 * checked and discarded at once, so that the output reuses the same
 * RAM_BATCH_PAGES pages of memory and stays in the caches, as in a
 * writer that sends a small buffer to a socket.
 */
static int crc_common(struct bench *b, bool crc, bool hot, double *secs)
{
	ms_writer *w = crc ? b->w : b->w2;
	ms_stream *s = crc ? b->mem : b->mem2;
	const char *who = crc ? "native-crc-4k" : "no-checksum";
	size_t i, n = crc_pages(b), step = hot ? RAM_BATCH_PAGES : n;
	ms_stream_stats before;
	double t;

	ms_stream_get_stats(s, &before);
	*secs = 0;
	for (i = 0; i < n; i += step) {
		if (step > n - i)
			step = n - i;
		if (ram_write(b, w, i, step, false, &t) ||
		    crc_check(b, s, i, step, crc, who))
			return -1;
		*secs += t;
	}
	stats_since(s, &before, &b->stats);
	return 0;
}

/* Baseline: the native writer without checksums. */
static int crc_off_run(struct bench *b, double *secs)
{
	return crc_common(b, false, false, secs);
}

/* Subject: the same writes with a CRC-32 on every record. */
static int crc_on_run(struct bench *b, double *secs)
{
	return crc_common(b, true, false, secs);
}

static int crc_off_hot_run(struct bench *b, double *secs)
{
	return crc_common(b, false, true, secs);
}

static int crc_on_hot_run(struct bench *b, double *secs)
{
	return crc_common(b, true, true, secs);
}

/*
 * Page-like data: a fixed pseudo-random mix of 1/4 zero pages, 1/2 text
 * pages (log lines of common words, times and numbers) and 1/4 random
 * pages, which deflate cannot shrink.
 */
static void fill_pages(uint8_t *pages)
{
	static const char *const words[] = {
		"kernel:", "eth0",     "link",	      "up",	    "down",
		"error",   "info",     "systemd[1]:", "Started",    "session",
		"user",	   "root",     "connection",  "from",	    "port",
		"sshd",	   "accepted", "publickey",   "for",	    "on",
		"timeout", "retrying", "device",      "virtio_blk", "request",
		"done",	   "queue",    "memory",      "cgroup",	    "usage",
		"bytes",   "warning",
	};
	uint64_t x = 0x9e3779b97f4a7c15ull;
	size_t p, i, n;

	for (p = 0; p < MIX_PAGES; p++) {
		uint8_t *d = pages + p * CHUNK_4K;
		unsigned kind = (unsigned)(xorshift64(&x) % 4);

		if (kind == 0) {
			memset(d, 0, CHUNK_4K);
			continue;
		}
		if (kind == 3) {
			for (i = 0; i < CHUNK_4K; i++)
				d[i] = (uint8_t)(xorshift64(&x) >> 32);
			continue;
		}
		for (n = 0; n < CHUNK_4K;) {
			char line[256];
			uint64_t r = xorshift64(&x);
			int k, w, nw = 4 + (int)(r % 6);

			k = snprintf(line, sizeof(line),
				     "May %2u %02u:%02u:%02u vm%u",
				     (unsigned)(r >> 8) % 28 + 1,
				     (unsigned)(r >> 16) % 24,
				     (unsigned)(r >> 24) % 60,
				     (unsigned)(r >> 32) % 60,
				     (unsigned)(r >> 40) % 4);
			for (w = 0; w < nw; w++)
				k += snprintf(line + k,
					      sizeof(line) - (size_t)k, " %s",
					      words[xorshift64(&x) % 32]);
			k += snprintf(line + k, sizeof(line) - (size_t)k,
				      " id=%u\n",
				      (unsigned)(xorshift64(&x) % 100000));
			if ((size_t)k > CHUNK_4K - n)
				k = (int)(CHUNK_4K - n);
			memcpy(d + n, line, (size_t)k);
			n += (size_t)k;
		}
	}
}

/* Pages per repetition of native-zlib-4k at b->zlevel. */
static size_t zlib_pages(const struct bench *b)
{
	size_t bytes = b->cfg->zlib_bytes;

	/* Level 6 is several times slower: a quarter of the data. */
	if (b->zlevel > 1)
		bytes /= 4;
	return bytes / CHUNK_4K;
}

static int zlib_setup(struct bench *b, int level)
{
	size_t bound;

	b->zlevel = level;
	b->units = (double)(zlib_pages(b) * CHUNK_4K);
	b->pages = malloc(MIX_PAGES * CHUNK_4K);
	if (!b->pages)
		return sys_failed("malloc");
	fill_pages(b->pages);
	memset(&b->z, 0, sizeof(b->z));
	if (deflateInit2(&b->z, level, Z_DEFLATED, -15, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK) {
		fprintf(stderr, "migstream-bench: deflateInit2 failed\n");
		return -1;
	}
	b->z_init = true;
	/* The baseline deflates into one flat, pre-faulted buffer. */
	bound = deflateBound(&b->z, CHUNK_4K);
	b->dst = malloc(zlib_pages(b) * bound);
	if (!b->dst)
		return sys_failed("malloc");
	memset(b->dst, 0, zlib_pages(b) * bound);
	return native_writer_new(b, &b->mem, &b->w, 0, level);
}

static int zlib1_setup(struct bench *b)
{
	return zlib_setup(b, 1);
}

static int zlib6_setup(struct bench *b)
{
	return zlib_setup(b, 6);
}

/* Whether raw deflate data @z of @zlen bytes inflates to the 4 KiB @page. */
static bool inflates_to(const uint8_t *z, size_t zlen, const uint8_t *page)
{
	uint8_t out[CHUNK_4K + 1];
	z_stream s;
	int zr;

	memset(&s, 0, sizeof(s));
	if (inflateInit2(&s, -15) != Z_OK)
		return false;
	s.next_in = (Bytef *)(uintptr_t)z;
	s.avail_in = (uInt)zlen;
	s.next_out = out;
	s.avail_out = sizeof(out);
	zr = inflate(&s, Z_FINISH);
	inflateEnd(&s);
	return zr == Z_STREAM_END && s.avail_in == 0 &&
	       sizeof(out) - s.avail_out == CHUNK_4K &&
	       !memcmp(out, page, CHUNK_4K);
}

/*
 * Baseline: raw deflate of every page on its own, with one long-lived
 * z_stream reset per page, as the writer does per chunk.  Its output goes
 * to one flat buffer; its size is what the writer is compared with.
 */
static int deflate_run(struct bench *b, double *secs)
{
	size_t npages = zlib_pages(b), bound = deflateBound(&b->z, CHUNK_4K);
	size_t i, off = 0, last = 0;
	double t0;
	int zr = Z_STREAM_END;

	t0 = now();
	for (i = 0; i < npages && zr == Z_STREAM_END; i++) {
		zr = deflateReset(&b->z);
		if (zr != Z_OK)
			break;
		b->z.next_in = (Bytef *)(uintptr_t)page_at(b, i, true);
		b->z.avail_in = CHUNK_4K;
		b->z.next_out = b->dst + off;
		b->z.avail_out = (uInt)bound;
		zr = deflate(&b->z, Z_FINISH);
		last = off;
		off += bound - b->z.avail_out;
	}
	*secs = since(t0);
	if (zr != Z_STREAM_END || !inflates_to(b->dst + last, off - last,
					       page_at(b, npages - 1, true))) {
		fprintf(stderr, "migstream-bench: raw deflate failed\n");
		return -1;
	}
	b->base_out_bytes = off;
	return 0;
}

/**
 * zlib_run() - Subject: the compressing native writer.
 * @b: the bench.
 * @secs: receives the time.
 *
 * Its output size, all records included, is reported against the raw
 * deflate output.  The output is walked record by record: it must hold a
 * DATA record per page, and the last page must come back from its record
 * (compressed, or stored when deflate did not make it smaller).
 *
 * Return: 0, or -1 after a message.
 */
static int zlib_run(struct bench *b, double *secs)
{
	size_t npages = zlib_pages(b), ndata = 0, len, at, n, last = 0;
	ms_stream_stats before;
	const uint8_t *d;
	bool ok;
	int ret;

	ms_stream_get_stats(b->mem, &before);
	if (ram_write(b, b->w, 0, npages, true, secs))
		return -1;
	stats_since(b->mem, &before, &b->stats);
	ret = ms_stream_mem_view(b->mem, &d, &len);
	if (ret)
		return stream_failed("ms_stream_mem_view", ret, b->mem);
	for (at = 0; at + NATIVE_REC_HDR + 4 <= len; at += n) {
		if (d[at] == NATIVE_REC_DATA) {
			ndata++;
			last = at;
		}
		n = NATIVE_REC_HDR + load_be32(d + at + 2) + 4;
	}
	n = load_be32(d + last + 2);
	if (d[last + 1] & NATIVE_FLAG_ZLIB)
		ok = n > 4 &&
		     load_be32(d + last + NATIVE_REC_HDR) == CHUNK_4K &&
		     inflates_to(d + last + NATIVE_REC_HDR + 4, n - 4,
				 page_at(b, npages - 1, true));
	else
		ok = n == CHUNK_4K &&
		     !memcmp(d + last + NATIVE_REC_HDR,
			     page_at(b, npages - 1, true), CHUNK_4K);
	if (at != len || ndata != npages || !ok) {
		fprintf(stderr, "migstream-bench: native-zlib-4k: wrong "
				"output\n");
		return -1;
	}
	b->out_bytes = len;
	ret = ms_stream_mem_discard(b->mem, len);
	if (ret)
		return stream_failed("ms_stream_mem_discard", ret, b->mem);
	return 0;
}

/*
 * qemu-frame: the cost of QEMU's section framing.  FRAME_SECTIONS FULL
 * sections with payloads of FRAME_PAYLOAD_MIN to FRAME_PAYLOAD_MAX bytes,
 * as a device-state switchover writes them, framed by a QEMU-profile
 * writer (begin, one put, end with its footer), against the same payload
 * bytes put unframed into the same kind of memory writer.  The value is
 * the extra time per section.  Each pass of FRAME_SECTIONS sections ends
 * by checking and discarding the output, on both sides.
 */

/* The payload of section @i: a slice of the source. */
static const uint8_t *frame_payload(const struct bench *b, size_t i)
{
	return b->src + i * 256;
}

static int frame_setup(struct bench *b)
{
	static const char *const names[] = {
		"timer",
		"cpu_common",
		"cpu",
		"apic",
		"kvmclock",
		"0000:00:01.3/piix4_pm",
		"0000:00:02.0/vga",
		"0000:00:03.0/virtio-net",
		"mc146818rtc",
		"ioapic",
		"0000:00:01.0/PIIX3",
		"0000:00:04.0/virtio-blk",
	};
	ms_codec_opts o;
	const uint8_t *d;
	size_t i, len;
	int ret;

	b->units = (double)FRAME_SECTIONS * (double)b->cfg->frame_passes;
	b->hdrs = calloc(FRAME_SECTIONS, sizeof(*b->hdrs));
	b->plen = calloc(FRAME_SECTIONS, sizeof(*b->plen));
	if (!b->hdrs || !b->plen)
		return sys_failed("calloc");
	b->framed_len = 0;
	b->plain_len = 0;
	for (i = 0; i < FRAME_SECTIONS; i++) {
		ms_section_hdr *h = &b->hdrs[i];

		h->type = MS_REC_FULL;
		h->section_id = (uint32_t)i + 3;
		snprintf(h->idstr, sizeof(h->idstr), "%s", names[i % 12]);
		h->instance_id = (uint32_t)(i / 12);
		h->version_id = 1 + (uint32_t)(i % 5);
		b->plen[i] =
			FRAME_PAYLOAD_MIN +
			(i * 37) % (FRAME_PAYLOAD_MAX - FRAME_PAYLOAD_MIN + 1);
		b->plain_len += b->plen[i];
		/* type, id, counted idstr, instance, version; footer. */
		b->framed_len += 1 + 4 + 1 + strlen(h->idstr) + 4 + 4 +
				 b->plen[i] + 1 + 4;
	}
	ret = ms_stream_new_mem(&b->mem, 0, NULL);
	if (!ret)
		ret = ms_stream_new_mem(&b->mem2, 0, NULL);
	if (ret)
		return stream_failed("ms_stream_new_mem", ret, NULL);
	memset(&o, 0, sizeof(o));
	o.version = MS_CODEC_OPTS_VERSION;
	o.profile = MS_PROFILE_QEMU;
	ret = ms_writer_new(&b->w, b->mem2, &o);
	if (ret)
		return stream_failed("ms_writer_new", ret, NULL);
	ret = ms_writer_header(b->w);
	if (ret)
		return writer_failed("ms_writer_header", ret, b->w);
	ret = ms_stream_mem_view(b->mem2, &d, &len);
	if (!ret)
		ret = ms_stream_mem_discard(b->mem2, len);
	if (ret)
		return stream_failed("ms_stream_mem_discard", ret, b->mem2);
	return 0;
}

/**
 * frame_pass_end() - Check and (but after the last pass) discard a pass.
 * @s: the memory writer.
 * @want: the bytes a pass makes.
 * @last: whether this is the last pass, whose output is kept for a check.
 * @data: receives the output.
 *
 * Return: 0, or -1 after a message.
 */
static int frame_pass_end(ms_stream *s, size_t want, bool last,
			  const uint8_t **data)
{
	size_t len;
	int ret;

	ret = ms_stream_mem_view(s, data, &len);
	if (ret)
		return stream_failed("ms_stream_mem_view", ret, s);
	if (len != want) {
		fprintf(stderr,
			"migstream-bench: qemu-frame: %zu bytes, %zu "
			"expected\n",
			len, want);
		return -1;
	}
	if (last)
		return 0;
	ret = ms_stream_mem_discard(s, len);
	if (ret)
		return stream_failed("ms_stream_mem_discard", ret, s);
	return 0;
}

/* Baseline: the payloads with ms_put_buffer(), unframed. */
static int unframed_run(struct bench *b, double *secs)
{
	size_t pass, i, passes = b->cfg->frame_passes;
	const uint8_t *d = NULL;
	double t0;
	int ret = 0;

	t0 = now();
	for (pass = 0; pass < passes; pass++) {
		for (i = 0; i < FRAME_SECTIONS && !ret; i++)
			ret = ms_put_buffer(b->mem, frame_payload(b, i),
					    b->plen[i]);
		if (ret)
			return stream_failed("ms_put_buffer", ret, b->mem);
		if (frame_pass_end(b->mem, b->plain_len, pass + 1 == passes,
				   &d))
			return -1;
	}
	*secs = since(t0);
	if (memcmp(d + b->plain_len - b->plen[FRAME_SECTIONS - 1],
		   frame_payload(b, FRAME_SECTIONS - 1),
		   b->plen[FRAME_SECTIONS - 1])) {
		fprintf(stderr, "migstream-bench: unframed: wrong output\n");
		return -1;
	}
	ret = ms_stream_mem_discard(b->mem, b->plain_len);
	if (ret)
		return stream_failed("ms_stream_mem_discard", ret, b->mem);
	return 0;
}

/* Subject: every payload as a FULL section of a QEMU-profile writer. */
static int framed_run(struct bench *b, double *secs)
{
	size_t pass, i, passes = b->cfg->frame_passes;
	const ms_section_hdr *h = &b->hdrs[FRAME_SECTIONS - 1];
	size_t plen = b->plen[FRAME_SECTIONS - 1], idlen = strlen(h->idstr);
	ms_stream_stats before;
	const uint8_t *d = NULL, *e;
	ms_stream *p;
	double t0;
	int ret = 0;

	ms_stream_get_stats(b->mem2, &before);
	t0 = now();
	for (pass = 0; pass < passes; pass++) {
		for (i = 0; i < FRAME_SECTIONS && !ret; i++) {
			ret = ms_writer_begin(b->w, &b->hdrs[i], &p);
			if (!ret)
				ret = ms_put_buffer(p, frame_payload(b, i),
						    b->plen[i]);
			if (!ret)
				ret = ms_writer_end(b->w);
		}
		if (ret)
			return writer_failed("qemu-frame section", ret, b->w);
		if (frame_pass_end(b->mem2, b->framed_len, pass + 1 == passes,
				   &d))
			return -1;
	}
	*secs = since(t0);
	stats_since(b->mem2, &before, &b->stats);
	/* The last section: 0x04, id, idstr, instance, version, payload,
	 * footer 0x7e and id. */
	e = d + b->framed_len - (1 + 4 + 1 + idlen + 8 + plen + 5);
	if (e[0] != MS_REC_FULL || load_be32(e + 1) != h->section_id ||
	    e[5] != idlen || memcmp(e + 6, h->idstr, idlen) ||
	    load_be32(e + 6 + idlen) != h->instance_id ||
	    load_be32(e + 10 + idlen) != h->version_id ||
	    memcmp(e + 14 + idlen, frame_payload(b, FRAME_SECTIONS - 1),
		   plen) ||
	    e[14 + idlen + plen] != MS_REC_FOOTER ||
	    load_be32(e + 15 + idlen + plen) != h->section_id) {
		fprintf(stderr, "migstream-bench: qemu-frame: wrong output\n");
		return -1;
	}
	ret = ms_stream_mem_discard(b->mem2, b->framed_len);
	if (ret)
		return stream_failed("ms_stream_mem_discard", ret, b->mem2);
	return 0;
}

const struct group bench_group_native_crc_4k = {
	.vs = "no-checksum",
	.unit = "bytes",
	.setup = crc_setup,
	.teardown = codec_teardown,
	.baseline = crc_off_run,
	.subj = {{"native-crc-4k", crc_on_run, METRIC_MBPS, 0.87, 0}},
	.nsubj = 1,
};

const struct group bench_group_native_crc_4k_hot = {
	.vs = "no-checksum",
	.unit = "bytes",
	.setup = crc_setup,
	.teardown = codec_teardown,
	.baseline = crc_off_hot_run,
	.subj = {{"native-crc-4k-hot", crc_on_hot_run, METRIC_NONE, 0, 0}},
	.nsubj = 1,
};

const struct group bench_group_native_zlib_4k = {
	.vs = "raw-deflate",
	.unit = "bytes",
	.setup = zlib1_setup,
	.teardown = codec_teardown,
	.baseline = deflate_run,
	.subj = {{"native-zlib-4k", zlib_run, METRIC_MBPS, 0.95, 1.0}},
	.nsubj = 1,
};

const struct group bench_group_native_zlib_4k_l6 = {
	.vs = "raw-deflate",
	.unit = "bytes",
	.setup = zlib6_setup,
	.teardown = codec_teardown,
	.baseline = deflate_run,
	.subj = {{"native-zlib-4k-l6", zlib_run, METRIC_NONE, 0, 0}},
	.nsubj = 1,
};

const struct group bench_group_qemu_frame = {
	.vs = "unframed",
	.unit = "sections",
	.setup = frame_setup,
	.teardown = codec_teardown,
	.baseline = unframed_run,
	.subj = {{"qemu-frame", framed_run, METRIC_EXTRA, 0, 0}},
	.nsubj = 1,
};
