/* SPDX-License-Identifier: MIT */
/*
 * Generates the seed corpus of the two fuzz targets.  Not built by make:
 *
 *   cc -std=gnu11 -Iinclude -I$BUILD/include tests/fuzz/make-seeds.c \
 *      $BUILD/src/libmigstream.a -lz $LIBS -o /tmp/make-seeds
 *   /tmp/make-seeds tests/data/qemu tests/fuzz/corpus/qemu_reader \
 *      tests/fuzz/corpus/native_reader tests/fuzz/corpus/load_feed
 *
 * ($LIBS as in $BUILD/Makefile, e.g. -lisal.)  Every seed starts with the
 * two control bytes of fuzz-common.h; valid streams are paired with a
 * well-behaved consumer (mode bit 6) so that the fuzzer starts from
 * inputs that parse to the end.  The QEMU samples give the first 16 KiB
 * and the last 4 KiB of real streams, and a stream made of their last
 * device sections and a shortened trailer.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <migstream/migstream.h>

#include "fuzz-common.h"

static const char *out_qemu, *out_native;

static void die(const char *what, int err)
{
	fprintf(stderr, "make-seeds: %s: %s\n", what, ms_strerror(err));
	exit(1);
}

static const char *out_feed; /* fuzz_load_feed's corpus, if given */

/* A fuzz_load_feed seed: its own prefix (fuzz_load_feed.c), @nchunks chunk
 * sizes and the held-bytes limit's nibble. */
static void save_feed(const char *name, uint8_t mode, uint8_t limit,
		      const uint8_t *chunks, size_t nchunks,
		      const uint8_t *data, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", out_feed, name);
	f = fopen(path, "wb");
	if (!f || fputc(mode, f) == EOF ||
	    fputc((int)(limit << 4 | nchunks), f) == EOF ||
	    (nchunks && fwrite(chunks, 1, nchunks, f) != nchunks) ||
	    (len && fwrite(data, 1, len, f) != len) || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void save(const char *dir, const char *name, uint8_t mode, uint8_t seed,
		 const uint8_t *data, size_t len)
{
	const uint8_t chunks[3] = {(uint8_t)(seed & 0x3f), 0xc1, 0x0f};
	char path[4096];
	FILE *f;

	/* Every valid reader seed is a fed-load seed too (QEMU: its
	 * no_footers and no_configuration bits carried over). */
	if (out_feed && dir == out_qemu && (mode & FZ_MODE_POLITE))
		save_feed(name,
			  (uint8_t)(1 | (mode & FZ_MODE_OPT_A ? 4 : 0) |
				    (mode & FZ_MODE_OPT_C ? 8 : 0)),
			  0, chunks, 3, data, len);
	else if (out_feed && dir == out_native && (mode & FZ_MODE_POLITE))
		save_feed(name, 2, 0, chunks, 3, data, len);

	if (len + FZ_PREFIX > 64 * 1024) {
		fprintf(stderr, "make-seeds: %s: %zu bytes, too big\n", name,
			len);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fputc(mode, f) == EOF || fputc(seed, f) == EOF ||
	    (len && fwrite(data, 1, len, f) != len) || fclose(f)) {
		perror(path);
		exit(1);
	}
}

/* Save the bytes a memory writer holds and free it. */
static void save_stream(const char *dir, const char *name, uint8_t mode,
			uint8_t seed, ms_stream *s)
{
	const uint8_t *d;
	size_t len;
	int ret = ms_stream_mem_view(s, &d, &len);

	if (ret)
		die(name, ret);
	save(dir, name, mode, seed, d, len);
	ms_stream_close(s);
}

static ms_writer *new_writer(ms_stream **s, ms_profile profile, bool no_footers,
			     int checksum, int level, size_t chunk)
{
	ms_codec_opts o;
	ms_writer *w;
	int ret;

	memset(&o, 0, sizeof(o));
	o.version = MS_CODEC_OPTS_VERSION;
	o.profile = profile;
	o.no_footers = no_footers;
	o.checksum = checksum;
	o.compress_level = level;
	o.chunk_size = chunk;
	ret = ms_stream_new_mem(s, 0, NULL);
	if (ret)
		die("stream", ret);
	ret = ms_writer_new(&w, *s, &o);
	if (ret)
		die("writer", ret);
	if (ms_writer_header(w))
		die("header", ms_writer_error(w));
	return w;
}

static void section(ms_writer *w, uint8_t type, uint32_t id, const char *name,
		    uint32_t instance, uint32_t version, const void *payload,
		    size_t len)
{
	ms_section_hdr h = {0};
	ms_stream *p;

	h.type = type;
	h.section_id = id;
	snprintf(h.idstr, sizeof(h.idstr), "%s", name);
	h.instance_id = instance;
	h.version_id = version;
	if (ms_writer_begin(w, &h, &p))
		die("begin", ms_writer_error(w));
	if (len)
		ms_put_buffer(p, payload, len);
	if (ms_writer_end(w))
		die("end", ms_writer_error(w));
}

static void finish(ms_writer *w, const char *json)
{
	if (ms_writer_eof(w))
		die("eof", ms_writer_error(w));
	if (json && ms_writer_vmdesc(w, json, strlen(json)))
		die("vmdesc", ms_writer_error(w));
	if (ms_writer_finish(w))
		die("finish", ms_writer_error(w));
	ms_writer_free(w);
}

static const char json[] =
	"{\"page_size\": 4096, \"devices\": [{\"name\": \"timer\", "
	"\"instance_id\": 0, \"vmsd_name\": \"timer\", \"version\": 2, "
	"\"fields\": [{\"name\": \"cpu_ticks_offset\", \"type\": "
	"\"int64\", \"size\": 8}]}]}";

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static size_t put_cstr(uint8_t *b, const char *str)
{
	size_t k = strlen(str);

	b[0] = (uint8_t)k;
	memcpy(b + 1, str, k);
	return 1 + k;
}

/* A subsection header: 0x05, the counted name, be32 version 1. */
static size_t put_sub(uint8_t *b, const char *name)
{
	size_t n = 0;

	b[n++] = MS_REC_SUBSECTION;
	n += put_cstr(b + n, name);
	be32(b + n, 1);
	return n + 4;
}

/* Configuration subsections as QEMU encodes them. */
static size_t config_extra(uint8_t *b)
{
	size_t n = 0, i;

	n += put_sub(b + n, "configuration/target-page-bits");
	be32(b + n, 12);
	n += 4;
	n += put_sub(b + n, "configuration/capabilities");
	be32(b + n, 2);
	n += 4;
	n += put_cstr(b + n, "x-ignore-shared");
	n += put_cstr(b + n, "validate-uuid");
	n += put_sub(b + n, "configuration/uuid");
	for (i = 0; i < 16; i++)
		b[n++] = (uint8_t)(0x10 + i);
	return n;
}

static void be64(uint8_t *p, uint64_t v)
{
	be32(p, (uint32_t)(v >> 32));
	be32(p + 4, (uint32_t)v);
}

/* A payload resembling a RAM section: block list, pages, EOS. */
static size_t ram_like(uint8_t *b, size_t pages, uint64_t seed)
{
	size_t n = 0, i, k;

	be64(b, 0x1082000 | MS_QEMU_RAM_MEM_SIZE), n += 8;
	b[n++] = 6;
	memcpy(b + n, "pc.ram", 6), n += 6;
	be64(b + n, 0x1000000), n += 8;
	for (i = 0; i < pages; i++) {
		be64(b + n, (uint64_t)i << 12 | MS_QEMU_RAM_PAGE |
				    (i ? MS_QEMU_RAM_CONTINUE : 0)),
			n += 8;
		if (!i) {
			b[n++] = 6;
			memcpy(b + n, "pc.ram", 6), n += 6;
		}
		for (k = 0; k < 4096; k++) {
			seed = seed * 6364136223846793005ull + 1;
			b[n++] = (i & 1) ? (uint8_t)(seed >> 56) : (uint8_t)k;
		}
	}
	be64(b + n, MS_QEMU_RAM_EOS), n += 8;
	return n;
}

/*
 * QEMU profile.
 */

#define Q_POLITE FZ_MODE_POLITE
#define Q_NOFOOT FZ_MODE_OPT_A
#define Q_NOVMD	 FZ_MODE_OPT_B
#define Q_NOCONF FZ_MODE_OPT_C

static void qemu_basic(const char *name, uint8_t mode, bool footers,
		       bool payloads, bool config, bool vmdesc)
{
	static uint8_t buf[3 * 4200];
	uint8_t extra[256];
	ms_stream *s;
	ms_writer *w = new_writer(&s, MS_PROFILE_QEMU, !footers, 0, 0, 0);
	size_t n;

	if (config && ms_writer_configuration(w, "pc-i440fx-7.2", extra,
					      config_extra(extra)))
		die("configuration", ms_writer_error(w));
	n = payloads ? ram_like(buf, 2, 1) : 0;
	section(w, MS_REC_START, 2, "ram", 0, 4, buf, n);
	section(w, MS_REC_PART, 2, "ram", 0, 4, buf, payloads ? 40 : 0);
	section(w, MS_REC_END, 2, "ram", 0, 4, "\0\0\0\0\0\0\0\x10",
		payloads ? 8 : 0);
	section(w, MS_REC_FULL, 0, "timer", 0, 2, "\0\0\0\0\0\0\0\1",
		8 * payloads);
	section(w, MS_REC_FULL, 40, "0000:00:01.3/piix4_pm", 0, 3,
		"\0\1\2\3\x05", payloads ? 5 : 0);
	section(w, MS_REC_FULL, 7, "dma", 1, 2, NULL, 0);
	finish(w, vmdesc ? json : NULL);
	save_stream(out_qemu, name, mode, 0x11, s);
}

static void qemu_commands(void)
{
	static const uint8_t advise[16] = {0, 0, 0, 0, 0, 0, 0x10, 0,
					   0, 0, 0, 0, 0, 0, 0x10, 0};
	static const uint8_t discard[] = {
		0, 6, 'p', 'c', '.', 'r', 'a', 'm', 0, 0, 0,	0, 0,
		0, 0, 0,   0,	0,   0,	  0,   0,   0, 0, 0x10, 0};
	static const uint8_t bitmap[] = {6, 'p', 'c', '.', 'r', 'a', 'm'};
	const uint8_t *nd;
	uint8_t ping[4] = {0, 0, 0, 0x42}, pk[4];
	ms_stream *s, *ns;
	ms_writer *w, *nw;
	size_t nlen;

	/* Every command, and PACKAGED with its nested sections (as in
	 * postcopy, without an EOF of their own). */
	w = new_writer(&s, MS_PROFILE_QEMU, false, 0, 0, 0);
	ms_writer_configuration(w, "pc-q35-7.2", NULL, 0);
	ms_writer_command(w, MS_CMD_OPEN_RETURN_PATH, NULL, 0);
	ms_writer_command(w, MS_CMD_PING, ping, 4);
	ms_writer_command(w, MS_CMD_POSTCOPY_ADVISE, advise, 16);
	ms_writer_command(w, MS_CMD_POSTCOPY_ADVISE, NULL, 0);
	section(w, MS_REC_START, 2, "ram", 0, 4, NULL, 0);
	ms_writer_command(w, MS_CMD_POSTCOPY_RAM_DISCARD, discard,
			  sizeof(discard));
	ms_writer_command(w, MS_CMD_POSTCOPY_LISTEN, NULL, 0);
	ms_writer_command(w, MS_CMD_RECV_BITMAP, bitmap, sizeof(bitmap));
	ms_writer_command(w, MS_CMD_SWITCHOVER_START, NULL, 0);
	ms_writer_command(w, MS_CMD_ENABLE_COLO, NULL, 0);
	ms_writer_command(w, MS_CMD_POSTCOPY_RESUME, NULL, 0);
	nw = new_writer(&ns, MS_PROFILE_QEMU, false, 0, 0, 0);
	section(nw, MS_REC_FULL, 3, "apic", 0, 3, "\1\2\3\4", 4);
	section(nw, MS_REC_END, 2, "ram", 0, 4, NULL, 0);
	ms_writer_free(nw);
	ms_stream_mem_view(ns, &nd, &nlen);
	be32(pk, (uint32_t)(nlen - 8));
	ms_writer_command(w, MS_CMD_PACKAGED, pk, 4);
	ms_put_buffer(s, nd + 8, nlen - 8);
	ms_stream_close(ns);
	ms_writer_command(w, MS_CMD_POSTCOPY_RUN, NULL, 0);
	if (ms_writer_error(w))
		die("commands", ms_writer_error(w));
	finish(w, json);
	save_stream(out_qemu, "qemu-commands", Q_POLITE, 0x21, s);

	/* PING only, no configuration, no trailer. */
	w = new_writer(&s, MS_PROFILE_QEMU, false, 0, 0, 0);
	ms_writer_command(w, MS_CMD_PING, ping, 4);
	section(w, MS_REC_FULL, 1, "cpu", 0, 12, "\0\0\0\1", 4);
	ms_writer_command(w, MS_CMD_PING, ping, 4);
	finish(w, NULL);
	save_stream(out_qemu, "qemu-ping", Q_POLITE | Q_NOCONF | Q_NOVMD, 0x22,
		    s);
}

/* Many sections: the reader's section table grows and rehashes. */
static void qemu_many(void)
{
	ms_stream *s;
	ms_writer *w = new_writer(&s, MS_PROFILE_QEMU, false, 0, 0, 0);
	char name[32];
	uint32_t i;

	ms_writer_configuration(w, "pc", NULL, 0);
	for (i = 0; i < 150; i++) {
		snprintf(name, sizeof(name), "dev%u", i);
		section(w, MS_REC_START, i * 7919u, name, i, 1, NULL, 0);
	}
	for (i = 0; i < 150; i++)
		section(w, MS_REC_END, i * 7919u, "", 0, 0, NULL, 0);
	for (i = 0; i < 20; i++)
		section(w, MS_REC_FULL, 0xfffffff0u + i, "x", i, 1, NULL, 0);
	finish(w, "{}");
	save_stream(out_qemu, "qemu-many-sections", Q_POLITE, 0x23, s);
}

/* Whether a plausible FULL section header follows a footer at @q. */
static bool full_at(const uint8_t *d, size_t q)
{
	size_t i;

	if (d[q] != MS_REC_FULL || d[q - 5] != MS_REC_FOOTER || d[q - 4] ||
	    d[q - 3] || d[q + 1] || d[q + 2] || !d[q + 5])
		return false;
	for (i = 0; i < d[q + 5]; i++)
		if (d[q + 6 + i] < 0x20 || d[q + 6 + i] > 0x7e)
			return false;
	return true;
}

/* A QEMU stream as bytes: the first 16 KiB, the last 4 KiB and a tail. */
static void qemu_samples(const char *dir, const char *name, uint8_t seed)
{
	static uint8_t d[4 << 20];
	uint8_t tail[6 * 1024], nm[64];
	char path[4096];
	size_t len, eof = 0, p, q, n, jl;
	gzFile gz;
	int k;

	snprintf(path, sizeof(path), "%s/%s.mig.gz", dir, name);
	gz = gzopen(path, "rb");
	if (!gz) {
		perror(path);
		exit(1);
	}
	k = gzread(gz, d, sizeof(d));
	gzclose(gz);
	if (k <= 0)
		die(path, -EIO);
	len = (size_t)k;
	snprintf((char *)nm, sizeof(nm), "qemu-%s-head", name);
	save(out_qemu, (char *)nm, Q_POLITE, seed, d, 16 * 1024);
	snprintf((char *)nm, sizeof(nm), "qemu-%s-head-feed", name);
	save(out_qemu, (char *)nm, Q_POLITE | FZ_SRC_FEED, seed, d, 16 * 1024);
	snprintf((char *)nm, sizeof(nm), "qemu-%s-last4k", name);
	save(out_qemu, (char *)nm, Q_POLITE, seed, d + len - 4096, 4096);

	/* Find EOF: 0x00, then 0x06 and a length that ends the stream. */
	for (p = len - 6; p > 8; p--) {
		if (d[p] == MS_REC_EOF && d[p + 1] == MS_REC_VMDESC &&
		    p + 6 +
				    ((size_t)d[p + 2] << 24 |
				     (size_t)d[p + 3] << 16 |
				     (size_t)d[p + 4] << 8 | d[p + 5]) ==
			    len) {
			eof = p;
			break;
		}
	}
	if (!eof)
		die("no EOF in the sample", -EBADMSG);
	/* Start at the first FULL header after a footer in the last 3 KiB. */
	for (q = eof - 3072; q < eof; q++)
		if (full_at(d, q))
			break;
	if (q == eof)
		die("no FULL section before EOF", -EBADMSG);
	memcpy(tail, d, 8);
	n = 8;
	memcpy(tail + n, d + q, eof + 1 - q);
	n += eof + 1 - q;
	jl = 1500;
	tail[n++] = MS_REC_VMDESC;
	be32(tail + n, (uint32_t)jl);
	n += 4;
	memcpy(tail + n, d + eof + 6, jl);
	n += jl;
	snprintf((char *)nm, sizeof(nm), "qemu-%s-tail", name);
	save(out_qemu, (char *)nm, Q_POLITE, seed, tail, n);
	snprintf((char *)nm, sizeof(nm), "qemu-%s-tail-pull", name);
	save(out_qemu, (char *)nm, Q_POLITE | FZ_SRC_PULL | FZ_MODE_SMALL_BUF,
	     seed, tail, n);
}

static void qemu_seeds(const char *samples)
{
	static const uint8_t v2[] = {'Q', 'E', 'V', 'M', 0, 0, 0, 2, 0};
	static const uint8_t bad[] = {'Q', 'E', 'V', 'M', 0, 0, 0, 3, 0x09};

	qemu_basic("qemu-full", Q_POLITE, true, true, true, true);
	qemu_basic("qemu-full-feed", Q_POLITE | FZ_SRC_FEED, true, true, true,
		   true);
	qemu_basic("qemu-full-pull-smallbuf",
		   Q_POLITE | FZ_SRC_PULL | FZ_MODE_SMALL_BUF, true, true, true,
		   true);
	qemu_basic("qemu-full-iov", Q_POLITE | FZ_SRC_IOV, true, true, true,
		   true);
	qemu_basic("qemu-full-random", FZ_SRC_MEM, true, true, true, true);
	qemu_basic("qemu-nofooters", Q_POLITE | Q_NOFOOT, false, false, true,
		   true);
	qemu_basic("qemu-nofooters-payloads", Q_NOFOOT, false, true, true,
		   true);
	qemu_basic("qemu-novmdesc", Q_POLITE | Q_NOVMD, true, true, true,
		   false);
	qemu_basic("qemu-noconfig", Q_POLITE | Q_NOCONF, true, false, false,
		   true);
	qemu_basic("qemu-fault", Q_POLITE | FZ_MODE_FAULT | FZ_SRC_FEED, true,
		   true, true, true);
	qemu_commands();
	qemu_many();
	save(out_qemu, "qemu-v2", 0, 0, v2, sizeof(v2));
	save(out_qemu, "qemu-badtype", 0, 0, bad, sizeof(bad));
	qemu_samples(samples, "pc-min", 0x31);
	qemu_samples(samples, "q35-dev", 0x32);
}

/*
 * Native profile.
 */

#define N_POLITE FZ_MODE_POLITE

static void native_basic(const char *name, uint8_t mode, bool footers,
			 int checksum, int level, size_t chunk,
			 bool compressible)
{
	static uint8_t buf[3 * 4200];
	uint8_t extra[256], ping[4] = {1, 2, 3, 4}, pk[4] = {0, 0, 0, 0};
	ms_stream *s;
	ms_writer *w = new_writer(&s, MS_PROFILE_NATIVE, !footers, checksum,
				  level, chunk);
	size_t n = ram_like(buf, compressible ? 2 : 3, 5);

	if (!compressible)
		n = 2 * 4096 + 100;
	if (ms_writer_configuration(w, "pc-i440fx-7.2", extra,
				    config_extra(extra)))
		die("configuration", ms_writer_error(w));
	section(w, MS_REC_START, 2, "ram", 0, 4, buf, n);
	ms_writer_command(w, MS_CMD_PING, ping, 4);
	section(w, MS_REC_PART, 2, "ram", 0, 4, buf, 100);
	section(w, MS_REC_END, 2, "ram", 0, 4, NULL, 0);
	ms_writer_command(w, MS_CMD_PACKAGED, pk, 4);
	section(w, MS_REC_FULL, 0, "timer", 0, 2, "\0\0\0\0\0\0\0\1", 8);
	section(w, MS_REC_FULL, 40, "0000:00:01.3/piix4_pm", 0, 3, NULL, 0);
	ms_writer_command(w, MS_CMD_OPEN_RETURN_PATH, NULL, 0);
	finish(w, json);
	save_stream(out_native, name, mode, 0x41, s);
}

/* Every kind of record with tiny payloads: easy for the fuzzer to reshape. */
static void native_small(const char *name, uint8_t mode, bool footers,
			 int checksum, int level)
{
	uint8_t ping[4] = {0, 0, 0, 7}, pk[4] = {0, 0, 0, 0}, a[200];
	ms_stream *s;
	ms_writer *w = new_writer(&s, MS_PROFILE_NATIVE, !footers, checksum,
				  level, 64);

	memset(a, 'A', sizeof(a));
	if (ms_writer_configuration(w, "pc", NULL, 0))
		die("configuration", ms_writer_error(w));
	section(w, MS_REC_START, 2, "ram", 0, 4, "\1\2\3", 3);
	ms_writer_command(w, MS_CMD_PING, ping, 4);
	section(w, MS_REC_PART, 2, "ram", 0, 4, a, level ? sizeof(a) : 70);
	section(w, MS_REC_END, 2, "ram", 0, 4, NULL, 0);
	ms_writer_command(w, MS_CMD_PACKAGED, pk, 4);
	section(w, MS_REC_FULL, 5, "cpu", 1, 12, "\0\0\0\1", 4);
	finish(w, "{}");
	save_stream(out_native, name, mode, 0x42, s);
}

/* A hand-made native stream, for records the writer never makes. */
struct nat {
	uint8_t b[8192];
	size_t n;
	uint64_t index;
	uint32_t chain;
	bool crc;
};

static void nat_rec(struct nat *st, uint8_t type, uint8_t flags, const void *p,
		    uint32_t len)
{
	uint8_t seed[8], *h = st->b + st->n;
	uint32_t crc;

	h[0] = type;
	h[1] = flags;
	be32(h + 2, len);
	memcpy(h + 6, p, len);
	st->n += 6 + len;
	if (st->crc) {
		be64(seed, st->index);
		crc = (uint32_t)crc32(0, seed, 8);
		crc = (uint32_t)crc32(crc, h, 6 + len);
		be32(st->b + st->n, crc);
		st->chain = (uint32_t)crc32(st->chain, st->b + st->n, 4);
		st->n += 4;
	}
	st->index++;
}

static void nat_start(struct nat *st, bool crc, uint16_t flags)
{
	static const uint8_t magic[8] = {0x89, 'M',  'S',  'N',
					 '\r', '\n', 0x1a, '\n'};

	memset(st, 0, sizeof(*st));
	st->crc = crc;
	memcpy(st->b, magic, 8);
	st->b[8] = 0;
	st->b[9] = 1;
	st->b[10] = (uint8_t)(flags >> 8);
	st->b[11] = (uint8_t)flags;
	be32(st->b + 12, (uint32_t)crc32(0, st->b, 12));
	st->n = 16;
}

static void nat_trailer(struct nat *st)
{
	uint8_t t[20];

	be64(t, st->index);
	be64(t + 8, st->n);
	be32(t + 16, st->crc ? st->chain : 0);
	nat_rec(st, 0x7f, 0, t, 20);
}

static void native_handmade(void)
{
	uint8_t sec[16], foot[4], vm[4], data[64];
	struct nat st;
	z_stream z;

	/* Optional unknown records (skipped) and an empty DATA record. */
	nat_start(&st, true, 0x0003 | 0x0100);
	memcpy(sec,
	       "\0\0\0\x09\x03"
	       "cpu"
	       "\0\0\0\0\0\0\0\x0c",
	       16);
	nat_rec(&st, MS_REC_FULL, 0, sec, 16);
	nat_rec(&st, 0x10, 0, "", 0);
	nat_rec(&st, 0x10, 0, "\1\2\3", 3);
	be32(foot, 9);
	nat_rec(&st, MS_REC_FOOTER, 0, foot, 4);
	nat_rec(&st, 0x85, 0, "optional", 8);
	nat_rec(&st, MS_REC_EOF, 0, "", 0);
	nat_rec(&st, 0xc0, 0, "", 0);
	be32(vm, 2);
	nat_rec(&st, MS_REC_VMDESC, 0, vm, 4);
	nat_rec(&st, 0x10, 0, "{}", 2);
	nat_trailer(&st);
	save(out_native, "native-optional-records", N_POLITE, 0x51, st.b, st.n);

	/* No CRC, no footers, a compressed DATA record made by hand. */
	nat_start(&st, false, 0);
	nat_rec(&st, MS_REC_FULL, 0, sec, 16);
	memset(&z, 0, sizeof(z));
	deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
	memset(fz_scratch, 'A', 1000);
	be32(data, 1000);
	z.next_in = fz_scratch;
	z.avail_in = 1000;
	z.next_out = data + 4;
	z.avail_out = sizeof(data) - 4;
	deflate(&z, Z_FINISH);
	nat_rec(&st, 0x10, 0x01, data, (uint32_t)(4 + z.total_out));
	deflateEnd(&z);
	nat_rec(&st, MS_REC_EOF, 0, "", 0);
	nat_trailer(&st);
	save(out_native, "native-handmade-zlib", N_POLITE, 0x52, st.b, st.n);
}

static void native_seeds(void)
{
	ms_stream *s;
	ms_writer *w;

	w = new_writer(&s, MS_PROFILE_NATIVE, false, 0, 0, 0);
	finish(w, NULL);
	save_stream(out_native, "native-empty", N_POLITE, 0, s);

	native_basic("native-crc", N_POLITE, true, 0, 0, 0, true);
	native_basic("native-crc-feed", N_POLITE | FZ_SRC_FEED, true, 0, 0, 0,
		     true);
	native_basic("native-crc-pull-smallbuf",
		     N_POLITE | FZ_SRC_PULL | FZ_MODE_SMALL_BUF, true, 0, 0, 0,
		     true);
	native_basic("native-crc-iov", N_POLITE | FZ_SRC_IOV, true, 0, 0, 0,
		     true);
	native_basic("native-random", 0, true, 0, 0, 0, true);
	native_basic("native-nocrc", N_POLITE, true, -1, 0, 0, true);
	native_basic("native-nofooters", N_POLITE, false, 0, 0, 0, true);
	native_basic("native-nocrc-nofooters", N_POLITE, false, -1, 0, 0, true);
	native_basic("native-chunk512", N_POLITE, true, 0, 0, 512, true);
	native_basic("native-zlib1", N_POLITE, true, 0, 1, 0, true);
	native_basic("native-zlib6-chunk1k", N_POLITE, true, 0, 6, 1024, true);
	native_basic("native-zlib9", N_POLITE | FZ_SRC_PULL, true, 0, 9, 0,
		     true);
	native_basic("native-zlib9-random", 0, true, 0, 9, 2048, true);
	native_basic("native-zlib6-incompressible", N_POLITE, true, 0, 6, 0,
		     false);
	native_basic("native-zlib-nocrc", N_POLITE, false, -1, 6, 0, true);
	native_basic("native-fault", N_POLITE | FZ_MODE_FAULT, true, 0, 6, 0,
		     true);
	native_basic("native-small-vmdesc", N_POLITE | FZ_MODE_OPT_A, true, 0,
		     0, 0, true);
	native_basic("native-auto", N_POLITE | FZ_MODE_OPT_B, true, 0, 0, 0,
		     true);
	native_small("native-small-fixcrc", N_POLITE | FZ_MODE_OPT_C, true, 0,
		     0);
	native_small("native-small-fixcrc-random", FZ_MODE_OPT_C, true, 0, 0);
	native_small("native-small-nocrc", N_POLITE, true, -1, 0);
	native_small("native-small-nofooters-fixcrc",
		     N_POLITE | FZ_MODE_OPT_C | FZ_SRC_PULL, false, 0, 0);
	native_small("native-small-zlib-fixcrc", N_POLITE | FZ_MODE_OPT_C, true,
		     0, 6);
	native_handmade();
}

/* Hostile streams for fuzz_load_feed: fake footers, colliding ids, a
 * FULL reusing an open START's id. */
static void feed_seeds(void)
{
	static const uint8_t fake[5] = {MS_REC_FOOTER, 0, 0, 0, 0};
	const uint8_t tiny[2] = {0x0f, 0x00}, one[1] = {0};
	uint8_t pay[4096];
	ms_writer *w;
	ms_stream *s;
	const uint8_t *d;
	size_t len, i;
	int native;

	/* A section full of its own footer, fed 16 then 1 byte at a time;
	 * and over a held-bytes limit of 512 bytes. */
	for (i = 0; i < sizeof(pay); i++)
		pay[i] = fake[i % 5];
	for (native = 0; native < 2; native++) {
		w = new_writer(&s, native ? MS_PROFILE_NATIVE : MS_PROFILE_QEMU,
			       false, 0, 0, 0);
		section(w, MS_REC_FULL, 0, "blob", 0, 1, pay, sizeof(pay));
		finish(w, NULL);
		ms_stream_mem_view(s, &d, &len);
		save_feed(native ? "native-fake-footers" : "qemu-fake-footers",
			  native ? 2 : 1, 0, tiny, 2, d, len);
		save_feed(native ? "native-over-limit" : "qemu-over-limit",
			  native ? 2 : 1, 1, one, 1, d, len);
		ms_stream_close(s);
	}
	/* Section ids that once collided: multiples of 2^17. */
	w = new_writer(&s, MS_PROFILE_QEMU, false, 0, 0, 0);
	for (i = 0; i < 200; i++)
		section(w, MS_REC_FULL, (uint32_t)(i << 17), "dev", (uint32_t)i,
			1, NULL, 0);
	finish(w, NULL);
	ms_stream_mem_view(s, &d, &len);
	save_feed("qemu-colliding-ids", 1, 0, tiny, 2, d, len);
	ms_stream_close(s);
	/* A FULL reusing the id of an open START. */
	w = new_writer(&s, MS_PROFILE_QEMU, false, 0, 0, 0);
	section(w, MS_REC_START, 3, "ram", 0, 4, "abc", 3);
	section(w, MS_REC_FULL, 3, "timer", 0, 1, "xyz", 3);
	section(w, MS_REC_END, 3, "ram", 0, 4, NULL, 0);
	finish(w, NULL);
	ms_stream_mem_view(s, &d, &len);
	save_feed("qemu-full-reuses-open-id", 1, 0, tiny, 2, d, len);
	ms_stream_close(s);
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5) {
		fprintf(stderr,
			"usage: %s SAMPLE_DIR QEMU_OUT NATIVE_OUT [FEED_OUT]\n",
			argv[0]);
		return 2;
	}
	out_qemu = argv[2];
	out_native = argv[3];
	out_feed = argc == 5 ? argv[4] : NULL;
	qemu_seeds(argv[1]);
	native_seeds();
	if (out_feed)
		feed_seeds();
	return 0;
}
