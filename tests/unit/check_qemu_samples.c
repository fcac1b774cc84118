/* SPDX-License-Identifier: MIT */
/*
 * Real QEMU 7.2 migration streams (tests/data/qemu, see capture-qemu.sh).
 * The QEMU profile reader walks every element while the test consumes
 * each payload exactly: a small RAM parser for the live "ram" section, and
 * a footer scan for device sections, whose payloads carry no length.  The
 * writer re-frames the elements byte for byte, directly and through the
 * native profile, and cut or corrupted copies fail with precise errors.
 */
#include "config.h"

#include <zlib.h>

#include "ms-test.h"

/* RAM section: short names for <migstream/qemu_ram.h>. */
#define RAM_FLAG_MASK  ((uint64_t)MS_QEMU_RAM_PAGE_SIZE - 1)
#define RAM_MAX_BLOCKS 64

/*
 * What each capture holds, counted once by an independent walker (the
 * pc-min figures are those of the spec's reference capture, §7).
 */
struct sample {
	const char *file;
	const char *machine;
	size_t size;
	unsigned full;
	unsigned start, part, end;
	uint64_t ram_total;
	uint64_t normal_pages;
	uint64_t zero_pages;
	uint32_t vmdesc_len;
};

static const struct sample samples[] = {
	/* -M pc -m 16 -nodefaults -S: the reference capture of the spec. */
	{"pc-min.mig.gz", "pc-i440fx-7.2", 350517, 30, 1, 1, 1, 17309696, 49,
	 4177, 98649},
	/* -M q35, 64 MiB, with vga, e1000e, virtio-net, e1000, virtio-rng
	 * and virtio-balloon devices. */
	{"q35-dev.mig.gz", "pc-q35-7.2", 1749475, 37, 1, 1, 1, 85270528, 244,
	 20574, 55949},
};

#define NSAMPLES ((int)(sizeof(samples) / sizeof(samples[0])))

/*
 * Check records the location of every passing ck_assert() through its
 * message channel, which costs seconds over tens of thousands of pages
 * (and more under valgrind): per-page checks use this, which only calls
 * into Check when the condition fails.
 */
#define REQUIRE(cond, ...)                                                     \
	do {                                                                   \
		if (!(cond))                                                   \
			ck_abort_msg(__VA_ARGS__);                             \
	} while (0)

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* A growable byte buffer. */
struct buf {
	uint8_t *p;
	size_t len, cap;
};

/* Make room for @n more bytes and return where they go. */
static uint8_t *buf_grow(struct buf *b, size_t n)
{
	if (b->cap - b->len < n + 1) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap - b->len < n + 1)
			cap *= 2;
		b->p = realloc(b->p, cap);
		ck_assert_ptr_nonnull(b->p);
		b->cap = cap;
	}
	return b->p + b->len;
}

static void buf_add(struct buf *b, const void *d, size_t n)
{
	memcpy(buf_grow(b, n), d, n);
	b->len += n;
}

/* Decompress a sample, found under $top_srcdir (out-of-tree builds). */
static void sample_load(const struct sample *sm, struct buf *out)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	gzFile gz;
	int n;

	snprintf(path, sizeof(path), "%s/tests/data/qemu/%s",
		 top && *top ? top : ".", sm->file);
	gz = gzopen(path, "rb");
	ck_assert_msg(gz != NULL, "cannot open %s (is top_srcdir set?)", path);
	memset(out, 0, sizeof(*out));
	do {
		n = gzread(gz, buf_grow(out, 65536), 65536);
		ck_assert_msg(n >= 0, "%s: %s", path, gzerror(gz, &n));
		out->len += (size_t)n;
	} while (n > 0);
	gzclose(gz);
	ck_assert_uint_eq(out->len, sm->size);
}

/* One element as the reader returned it. */
struct elem {
	uint8_t type;
	uint32_t id;
	uint32_t instance_id;
	char idstr[MS_COUNTED_STRING_MAX + 1];
	uint64_t off;  /* the record's first byte */
	uint64_t poff; /* its payload's first byte in the input */
	uint64_t plen; /* payload bytes the test consumed */
};

struct ram_block {
	char name[MS_COUNTED_STRING_MAX + 1];
	uint64_t len;
	uint64_t first_page; /* index of its first page in seen */
};

/* A walk over one stream, and what it found. */
struct walk {
	/* Set up by walk_init(). */
	ms_profile profile;
	const uint8_t *scan; /* QEMU profile: the intact stream, footer scans */
	size_t scan_len;
	ms_writer *out; /* every element is re-emitted here, or NULL */
	/* Results. */
	unsigned count[128]; /* records per type */
	char machine[MS_COUNTED_STRING_MAX + 1];
	struct ram_block blk[RAM_MAX_BLOCKS];
	unsigned nblk;
	int last_blk; /* the block of CONTINUE pages, -1 for none yet */
	uint64_t ram_total, normal_pages, zero_pages;
	uint8_t *seen; /* bitmap of the pages sent */
	uint32_t vmdesc_len;
	char *vmdesc; /* NUL-terminated copy of the JSON */
	struct elem *el;
	size_t nel, capel;
	uint64_t end; /* input position at the clean end */
	bool at_eof;
	char errmsg[640];
	uint64_t err_off;
	struct buf pl; /* the payload of the current element */
};

static void walk_init(struct walk *w, ms_profile profile, const uint8_t *scan,
		      size_t scan_len, ms_writer *out)
{
	memset(w, 0, sizeof(*w));
	w->profile = profile;
	w->scan = scan;
	w->scan_len = scan_len;
	w->out = out;
	w->last_blk = -1;
}

static void walk_free(struct walk *w)
{
	free(w->seen);
	free(w->vmdesc);
	free(w->el);
	free(w->pl.p);
}

/*
 * Read @n payload bytes and keep them in w->pl for re-emission.  Returns
 * them (valid until the next call) or NULL when the stream failed.
 */
static const uint8_t *tap(struct walk *w, ms_stream *p, size_t n)
{
	uint8_t *d = buf_grow(&w->pl, n);

	if (ms_get_buffer(p, d, n))
		return NULL;
	w->pl.len += n;
	return d;
}

static int tap_cstr(struct walk *w, ms_stream *p, char *s)
{
	const uint8_t *q = tap(w, p, 1);
	size_t len;

	s[0] = '\0';
	if (!q)
		return ms_stream_error(p);
	len = q[0];
	q = tap(w, p, len);
	if (!q)
		return ms_stream_error(p);
	memcpy(s, q, len);
	s[len] = '\0';
	return 0;
}

/* Read whatever is left of a self-delimited (native) payload. */
static int drain(struct walk *w, ms_stream *p)
{
	const uint8_t *d;
	ssize_t n;

	while ((n = ms_peek(p, &d, 4096)) > 0) {
		buf_add(&w->pl, d, (size_t)n);
		ms_skip(p, (uint64_t)n);
	}
	return (int)n;
}

/*
 * RAM START: be64 (total | MEM_SIZE), then (cstr idstr, be64 used_length)
 * until the lengths sum to total, then be64 EOS.
 */
static int ram_start(struct walk *w, ms_stream *p)
{
	const uint8_t *q = tap(w, p, 8);
	uint64_t v, sum = 0;

	if (!q)
		return ms_stream_error(p);
	v = be64(q);
	ck_assert_uint_eq(v & RAM_FLAG_MASK, MS_QEMU_RAM_MEM_SIZE);
	ck_assert_ptr_null(w->seen);
	w->ram_total = v & ~RAM_FLAG_MASK;
	while (sum < w->ram_total) {
		struct ram_block *b = &w->blk[w->nblk];

		ck_assert_uint_lt(w->nblk, RAM_MAX_BLOCKS);
		if (tap_cstr(w, p, b->name) || !(q = tap(w, p, 8)))
			return ms_stream_error(p);
		b->len = be64(q);
		ck_assert_msg(b->len && b->len % MS_QEMU_RAM_PAGE_SIZE == 0 &&
				      b->len <= w->ram_total - sum,
			      "RAM block '%s' of 0x%llx bytes", b->name,
			      (unsigned long long)b->len);
		b->first_page = sum / MS_QEMU_RAM_PAGE_SIZE;
		sum += b->len;
		w->nblk++;
	}
	q = tap(w, p, 8);
	if (!q)
		return ms_stream_error(p);
	ck_assert_uint_eq(be64(q), MS_QEMU_RAM_EOS);
	w->seen = calloc(w->ram_total / MS_QEMU_RAM_PAGE_SIZE / 8 + 1, 1);
	ck_assert_ptr_nonnull(w->seen);
	return 0;
}

static int ram_block_find(const struct walk *w, const char *name)
{
	unsigned i;

	for (i = 0; i < w->nblk; i++)
		if (!strcmp(w->blk[i].name, name))
			return (int)i;
	return -1;
}

/*
 * RAM PART and END: page records up to EOS.  be64 (offset | flags), the
 * block's cstr unless CONTINUE, then a fill byte (ZERO) or a page (PAGE).
 */
static int ram_pages(struct walk *w, ms_stream *p)
{
	char name[MS_COUNTED_STRING_MAX + 1];
	const struct ram_block *b;
	const uint8_t *q;
	uint64_t v, off, page;
	unsigned flags;

	ck_assert_ptr_nonnull(w->seen);
	for (;;) {
		q = tap(w, p, 8);
		if (!q)
			return ms_stream_error(p);
		v = be64(q);
		flags = (unsigned)(v & RAM_FLAG_MASK);
		off = v & ~RAM_FLAG_MASK;
		if (flags == MS_QEMU_RAM_EOS)
			return 0;
		REQUIRE((flags & ~(MS_QEMU_RAM_ZERO | MS_QEMU_RAM_PAGE |
				   MS_QEMU_RAM_CONTINUE)) == 0 &&
				!(flags & MS_QEMU_RAM_ZERO) !=
					!(flags & MS_QEMU_RAM_PAGE),
			"RAM page record with flags 0x%x", flags);
		if (!(flags & MS_QEMU_RAM_CONTINUE)) {
			if (tap_cstr(w, p, name))
				return ms_stream_error(p);
			w->last_blk = ram_block_find(w, name);
			REQUIRE(w->last_blk >= 0, "unknown RAM block '%s'",
				name);
		}
		REQUIRE(w->last_blk >= 0, "CONTINUE before any block");
		b = &w->blk[w->last_blk];
		REQUIRE(off < b->len, "page 0x%llx past RAM block '%s'",
			(unsigned long long)off, b->name);
		page = b->first_page + off / MS_QEMU_RAM_PAGE_SIZE;
		/* A paused guest (-S) sends every page exactly once. */
		REQUIRE(!(w->seen[page / 8] & (1u << (page % 8))),
			"page 0x%llx of '%s' sent twice",
			(unsigned long long)off, b->name);
		w->seen[page / 8] |= (uint8_t)(1u << (page % 8));
		if (flags & MS_QEMU_RAM_ZERO) {
			q = tap(w, p, 1);
			if (!q)
				return ms_stream_error(p);
			REQUIRE(q[0] == 0, "zero page with fill 0x%02x", q[0]);
			w->zero_pages++;
		} else {
			if (!tap(w, p, MS_QEMU_RAM_PAGE_SIZE))
				return ms_stream_error(p);
			w->normal_pages++;
		}
	}
}

/* Whether @q starts a plausible next element (the footer scan's check). */
static bool element_starts(const uint8_t *d, size_t n, size_t q)
{
	size_t i, len;

	if (q >= n)
		return false;
	switch (d[q]) {
	case MS_REC_FULL:
		if (n - q < 6)
			return false;
		len = d[q + 5];
		if (!len || n - q < 6 + len + 8)
			return false;
		for (i = 0; i < len; i++)
			if (d[q + 6 + i] <= 0x20 || d[q + 6 + i] >= 0x7f)
				return false;
		return true;
	case MS_REC_EOF:
		return n - q >= 6 && d[q + 1] == MS_REC_VMDESC &&
		       be32(d + q + 2) == n - q - 6;
	case MS_REC_START:
	case MS_REC_PART:
	case MS_REC_END:
		return true;
	default:
		return false;
	}
}

/*
 * Length of a device section's payload starting at @start: up to the
 * first footer carrying its id that is followed by a valid element.
 */
static size_t full_payload_len(const uint8_t *d, size_t n, size_t start,
			       uint32_t id)
{
	size_t q;

	for (q = start; q + 5 <= n; q++)
		if (d[q] == MS_REC_FOOTER && be32(d + q + 1) == id &&
		    element_starts(d, n, q + 5))
			return q - start;
	ck_abort_msg("no footer for section %u after offset 0x%zx", id, start);
	return 0;
}

/* Consume the payload of @rec exactly, keeping its bytes in w->pl. */
static int consume(struct walk *w, const ms_record *rec, ms_stream *p,
		   ms_stream *in)
{
	const ms_section_hdr *h = &rec->section;
	const uint8_t *q;
	ssize_t n;
	int ret;

	switch (rec->type) {
	case MS_REC_CONFIGURATION:
		memcpy(w->machine, rec->machine, sizeof(w->machine));
		if (w->profile == MS_PROFILE_NATIVE)
			return drain(w, p);
		/* x86 machine types send no configuration subsections. */
		n = ms_peek(p, &q, 1);
		ck_assert_msg(n <= 0 || q[0] != MS_REC_SUBSECTION,
			      "configuration subsections in an x86 sample");
		return 0;
	case MS_REC_START:
	case MS_REC_PART:
	case MS_REC_END:
	case MS_REC_FULL:
		if (!strcmp(h->idstr, "ram")) {
			ck_assert_uint_eq(h->version_id, MS_QEMU_RAM_VERSION);
			ret = h->type == MS_REC_START ? ram_start(w, p)
						      : ram_pages(w, p);
			if (!ret && w->profile == MS_PROFILE_NATIVE)
				ck_assert(ms_stream_is_eof(p));
			return ret;
		}
		/* RAM is the only live section of these captures. */
		ck_assert_uint_eq(h->type, MS_REC_FULL);
		if (w->profile == MS_PROFILE_NATIVE)
			return drain(w, p);
		ck_assert_ptr_eq(p, in);
		q = tap(w, p,
			full_payload_len(w->scan, w->scan_len,
					 (size_t)ms_stream_tell(in),
					 h->section_id));
		return q ? 0 : ms_stream_error(p);
	case MS_REC_VMDESC:
		w->vmdesc_len = rec->length;
		q = tap(w, p, rec->length);
		if (!q)
			return ms_stream_error(p);
		ck_assert_uint_ge(rec->length, 2);
		ck_assert_int_eq(q[0], '{');
		ck_assert_int_eq(q[rec->length - 1], '}');
		ck_assert_ptr_null(w->vmdesc);
		w->vmdesc = malloc(rec->length + 1u);
		ck_assert_ptr_nonnull(w->vmdesc);
		memcpy(w->vmdesc, q, rec->length);
		w->vmdesc[rec->length] = '\0';
		return 0;
	default: /* FOOTER and EOF have no payload. */
		return 0;
	}
}

/* Write @rec again, with the payload bytes the test consumed. */
static void emit(struct walk *w, const ms_record *rec)
{
	ms_stream *p;

	switch (rec->type) {
	case MS_REC_CONFIGURATION:
		ck_assert_int_eq(ms_writer_configuration(w->out, rec->machine,
							 w->pl.p, w->pl.len),
				 0);
		break;
	case MS_REC_START:
	case MS_REC_PART:
	case MS_REC_END:
	case MS_REC_FULL:
		ck_assert_int_eq(ms_writer_begin(w->out, &rec->section, &p), 0);
		ck_assert_int_eq(ms_put_buffer(p, w->pl.p, w->pl.len), 0);
		ck_assert_int_eq(ms_writer_end(w->out), 0);
		break;
	case MS_REC_FOOTER: /* ms_writer_end() wrote it. */
		break;
	case MS_REC_EOF:
		ck_assert_int_eq(ms_writer_eof(w->out), 0);
		break;
	case MS_REC_VMDESC:
		ck_assert_int_eq(ms_writer_vmdesc(w->out, w->pl.p, w->pl.len),
				 0);
		break;
	default:
		ck_abort_msg("unexpected record type 0x%02x", rec->type);
	}
}

static struct elem *elem_add(struct walk *w, const ms_record *rec,
			     uint64_t poff)
{
	struct elem *e;

	if (w->nel == w->capel) {
		w->capel = w->capel ? w->capel * 2 : 64;
		w->el = realloc(w->el, w->capel * sizeof(*w->el));
		ck_assert_ptr_nonnull(w->el);
	}
	e = &w->el[w->nel++];
	memset(e, 0, sizeof(*e));
	e->type = rec->type;
	e->id = rec->section.section_id;
	e->instance_id = rec->section.instance_id;
	memcpy(e->idstr, rec->section.idstr, sizeof(e->idstr));
	e->off = rec->offset;
	e->poff = poff;
	return e;
}

/*
 * Read @len bytes of @data with the reader until it ends or fails.
 * Returns 0 at the clean end (the writer, if any, is finished) or the
 * reader's error, whose message and offset are kept in @w.
 */
static int walk_run(struct walk *w, const uint8_t *data, size_t len)
{
	ms_codec_opts o = {.version = MS_CODEC_OPTS_VERSION,
			   .profile = w->profile};
	ms_stream *in, *p;
	ms_record rec;
	ms_reader *r;
	struct elem *e;
	int ret;

	ck_assert_int_eq(ms_stream_new_mem_reader(&in, data, len, NULL), 0);
	ck_assert_int_eq(ms_reader_new(&r, in, &o), 0);
	if (w->out)
		ck_assert_int_eq(ms_writer_header(w->out), 0);
	while ((ret = ms_reader_next(r, &rec)) == 1) {
		ck_assert_uint_lt(rec.type, 128);
		w->count[rec.type]++;
		p = ms_reader_payload(r);
		e = elem_add(w, &rec, ms_stream_tell(in));
		w->pl.len = 0;
		if (consume(w, &rec, p, in)) {
			/* The payload ran out: the reader must say so. */
			ret = ms_reader_next(r, &rec);
			ck_assert_msg(ret < 0,
				      "payload failed (%s), reader returned %d",
				      ms_stream_errmsg(p), ret);
			break;
		}
		e->plen = w->pl.len;
		if (w->out)
			emit(w, &rec);
	}
	if (ret == 0) {
		w->end = ms_stream_tell(in);
		w->at_eof = ms_stream_is_eof(in);
		if (w->out)
			ck_assert_int_eq(ms_writer_finish(w->out), 0);
	} else {
		ck_assert_int_eq(ms_reader_error(r), ret);
		snprintf(w->errmsg, sizeof(w->errmsg), "%s",
			 ms_reader_errmsg(r));
		w->err_off = ms_reader_error_offset(r);
	}
	ms_reader_free(r);
	ms_stream_close(in);
	return ret;
}

/* The @n-th (from 0) element of @type. */
static const struct elem *elem_nth(const struct walk *w, uint8_t type,
				   unsigned n)
{
	size_t i;

	for (i = 0; i < w->nel; i++)
		if (w->el[i].type == type && n-- == 0)
			return &w->el[i];
	ck_abort_msg("no %s number %u", ms_record_type_name(type), n);
	return NULL;
}

/* Everything a complete walk of @sm must have found, in either profile. */
static void check_walk(const struct walk *w, const struct sample *sm)
{
	unsigned sections = sm->start + sm->part + sm->end + sm->full;
	char key[MS_COUNTED_STRING_MAX + 64];
	const char *json;
	unsigned devices = 0;
	size_t i;

	ck_assert_str_eq(w->machine, sm->machine);
	ck_assert_uint_eq(w->count[MS_REC_CONFIGURATION], 1);
	ck_assert_uint_eq(w->count[MS_REC_START], sm->start);
	ck_assert_uint_eq(w->count[MS_REC_PART], sm->part);
	ck_assert_uint_eq(w->count[MS_REC_END], sm->end);
	ck_assert_uint_eq(w->count[MS_REC_FULL], sm->full);
	ck_assert_uint_eq(w->count[MS_REC_FOOTER], sections);
	ck_assert_uint_eq(w->count[MS_REC_EOF], 1);
	ck_assert_uint_eq(w->count[MS_REC_VMDESC], 1);
	ck_assert_uint_eq(w->count[MS_REC_COMMAND], 0);

	/* Configuration, each section and its footer, EOF, the trailer. */
	ck_assert_uint_eq(w->nel, 1 + 2 * sections + 2);
	ck_assert_uint_eq(w->el[0].type, MS_REC_CONFIGURATION);
	for (i = 1; i + 2 < w->nel; i += 2) {
		ck_assert_uint_ge(w->el[i].type, MS_REC_START);
		ck_assert_uint_le(w->el[i].type, MS_REC_FULL);
		ck_assert_uint_eq(w->el[i + 1].type, MS_REC_FOOTER);
		ck_assert_uint_eq(w->el[i + 1].id, w->el[i].id);
	}
	ck_assert_uint_eq(w->el[w->nel - 2].type, MS_REC_EOF);
	ck_assert_uint_eq(w->el[w->nel - 1].type, MS_REC_VMDESC);

	/* RAM: every page of every block, once, within its block. */
	ck_assert_uint_eq(w->ram_total, sm->ram_total);
	ck_assert_uint_eq(w->normal_pages, sm->normal_pages);
	ck_assert_uint_eq(w->zero_pages, sm->zero_pages);
	ck_assert_uint_eq(w->normal_pages + w->zero_pages,
			  w->ram_total / MS_QEMU_RAM_PAGE_SIZE);

	/* The trailer describes each device section, in stream order. */
	ck_assert_uint_eq(w->vmdesc_len, sm->vmdesc_len);
	json = w->vmdesc;
	for (i = 0; i < w->nel; i++) {
		if (w->el[i].type != MS_REC_FULL)
			continue;
		snprintf(key, sizeof(key),
			 "{\"name\": \"%s\", \"instance_id\": %u,",
			 w->el[i].idstr, w->el[i].instance_id);
		json = strstr(json, key);
		ck_assert_msg(json != NULL, "device %s is not in the trailer",
			      key);
		json += strlen(key);
	}
	for (json = w->vmdesc; (json = strstr(json, "\"instance_id\": "));
	     json++)
		devices++;
	ck_assert_uint_eq(devices, sm->full);
}

/* Compare two streams, naming the first byte that differs. */
static void check_same_bytes(const uint8_t *got, size_t got_len,
			     const uint8_t *want, size_t want_len)
{
	size_t i, n = got_len < want_len ? got_len : want_len;

	for (i = 0; i < n && got[i] == want[i]; i++)
		;
	ck_assert_msg(i == n && got_len == want_len,
		      "streams differ at offset 0x%zx (%zu and %zu bytes)", i,
		      got_len, want_len);
}

START_TEST(test_qemu_samples_walk_every_element)
{
	const struct sample *sm = &samples[_i];
	struct buf data;
	struct walk w;
	size_t i;

	sample_load(sm, &data);
	walk_init(&w, MS_PROFILE_QEMU, data.p, data.len, NULL);
	ck_assert_msg(walk_run(&w, data.p, data.len) == 0, "%s: %s", sm->file,
		      w.errmsg);
	check_walk(&w, sm);
	ck_assert_uint_eq(w.end, data.len);
	ck_assert(w.at_eof);
	/* Every byte is accounted for, by the reader or by the test. */
	ck_assert_uint_eq(w.el[0].off, 8);
	for (i = 0; i + 1 < w.nel; i++)
		ck_assert_uint_eq(w.el[i + 1].off, w.el[i].poff + w.el[i].plen);
	ck_assert_uint_eq(w.el[w.nel - 1].poff + w.el[w.nel - 1].plen,
			  data.len);
	walk_free(&w);
	free(data.p);
}
END_TEST

/* Re-framing the elements through the QEMU writer gives the same bytes. */
START_TEST(test_qemu_samples_reframe_identical)
{
	const struct sample *sm = &samples[_i];
	const uint8_t *out;
	struct buf data;
	struct walk w;
	ms_codec_opts qo;
	ms_writer *wr;
	ms_stream *s;
	size_t len;

	/* QEMU's grammar, asked for: the default writer is native. */
	ms_codec_opts_init(&qo);
	qo.profile = MS_PROFILE_QEMU;
	sample_load(sm, &data);
	ck_assert_int_eq(ms_stream_new_mem(&s, 0, NULL), 0);
	ck_assert_int_eq(ms_writer_new(&wr, s, &qo), 0);
	walk_init(&w, MS_PROFILE_QEMU, data.p, data.len, wr);
	ck_assert_msg(walk_run(&w, data.p, data.len) == 0, "%s: %s", sm->file,
		      w.errmsg);
	ck_assert_int_eq(ms_stream_mem_view(s, &out, &len), 0);
	check_same_bytes(out, len, data.p, data.len);
	walk_free(&w);
	ms_writer_free(wr);
	ck_assert_int_eq(ms_stream_close(s), 0);
	free(data.p);
}
END_TEST

/*
 * QEMU to native (stored, then deflated) and back to QEMU: the native
 * reader hands out the same elements and payloads, and the result is the
 * original stream.
 */
START_TEST(test_qemu_samples_native_roundtrip)
{
	const struct sample *sm = &samples[_i / 2];
	ms_codec_opts no = {.version = MS_CODEC_OPTS_VERSION,
			    .profile = MS_PROFILE_NATIVE,
			    .compress_level = _i % 2 ? 6 : 0};
	ms_codec_opts qo = {.version = MS_CODEC_OPTS_VERSION,
			    .profile = MS_PROFILE_QEMU};
	const uint8_t *nat, *out;
	size_t nat_len, len;
	struct walk w1, w2;
	ms_writer *wn, *wq;
	ms_stream *sn, *sq;
	struct buf data;

	sample_load(sm, &data);
	ck_assert_int_eq(ms_stream_new_mem(&sn, 0, NULL), 0);
	ck_assert_int_eq(ms_writer_new(&wn, sn, &no), 0);
	walk_init(&w1, MS_PROFILE_QEMU, data.p, data.len, wn);
	ck_assert_msg(walk_run(&w1, data.p, data.len) == 0, "%s: %s", sm->file,
		      w1.errmsg);
	ck_assert_int_eq(ms_stream_mem_view(sn, &nat, &nat_len), 0);
	if (no.compress_level)
		ck_assert_uint_lt(nat_len, data.len);

	ck_assert_int_eq(ms_stream_new_mem(&sq, 0, NULL), 0);
	ck_assert_int_eq(ms_writer_new(&wq, sq, &qo), 0);
	walk_init(&w2, MS_PROFILE_NATIVE, NULL, 0, wq);
	ck_assert_msg(walk_run(&w2, nat, nat_len) == 0, "%s (native): %s",
		      sm->file, w2.errmsg);
	check_walk(&w2, sm);
	ck_assert_uint_eq(w2.end, nat_len);
	ck_assert(w2.at_eof);
	ck_assert_int_eq(ms_stream_mem_view(sq, &out, &len), 0);
	check_same_bytes(out, len, data.p, data.len);

	walk_free(&w1);
	walk_free(&w2);
	ms_writer_free(wn);
	ms_writer_free(wq);
	ck_assert_int_eq(ms_stream_close(sn), 0);
	ck_assert_int_eq(ms_stream_close(sq), 0);
	free(data.p);
}
END_TEST

/* Walk the first @cut bytes (an exact-size copy, for ASan). */
static int walk_cut(struct walk *w, const struct buf *data, size_t cut,
		    uint8_t flip_at, size_t flip_off)
{
	uint8_t *copy = malloc(cut ? cut : 1);
	int ret;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, data->p, cut);
	if (flip_at)
		copy[flip_off] ^= flip_at;
	/* The footer scan runs on the intact stream, the test's oracle. */
	walk_init(w, MS_PROFILE_QEMU, data->p, data->len, NULL);
	ret = walk_run(w, copy, cut);
	free(copy);
	return ret;
}

/* A cut copy fails cleanly, naming an offset inside what it was given. */
static void check_cut(const struct buf *data, size_t cut)
{
	struct walk w;
	int ret;

	ck_assert_uint_lt(cut, data->len);
	ret = walk_cut(&w, data, cut, 0, 0);
	ck_assert_msg(ret == -ENODATA || ret == -EBADMSG, "cut at %zu: %d (%s)",
		      cut, ret, w.errmsg);
	ck_assert_msg(!strncmp(w.errmsg, "offset 0x", 9), "cut at %zu: '%s'",
		      cut, w.errmsg);
	ck_assert_msg(w.err_off <= cut, "cut at %zu: error offset %llu", cut,
		      (unsigned long long)w.err_off);
	walk_free(&w);
}

START_TEST(test_qemu_samples_truncated_fails_cleanly)
{
	const struct elem *cfg, *st, *part, *end, *f0, *fm, *fl, *eof, *vd;
	const struct sample *sm = &samples[0];
	size_t cuts[32], n = 0, i;
	struct buf data;
	struct walk w, t;

	sample_load(sm, &data);
	walk_init(&w, MS_PROFILE_QEMU, data.p, data.len, NULL);
	ck_assert_int_eq(walk_run(&w, data.p, data.len), 0);
	cfg = elem_nth(&w, MS_REC_CONFIGURATION, 0);
	st = elem_nth(&w, MS_REC_START, 0);
	part = elem_nth(&w, MS_REC_PART, 0);
	end = elem_nth(&w, MS_REC_END, 0);
	f0 = elem_nth(&w, MS_REC_FULL, 0);
	fm = elem_nth(&w, MS_REC_FULL, sm->full / 2);
	fl = elem_nth(&w, MS_REC_FULL, sm->full - 1);
	eof = elem_nth(&w, MS_REC_EOF, 0);
	vd = elem_nth(&w, MS_REC_VMDESC, 0);

	cuts[n++] = 3;			     /* magic */
	cuts[n++] = 6;			     /* version */
	cuts[n++] = 8;			     /* right after the header */
	cuts[n++] = cfg->off + 3;	     /* machine name length */
	cuts[n++] = cfg->poff - 4;	     /* machine name */
	cuts[n++] = st->off + 3;	     /* START section id */
	cuts[n++] = st->off + 7;	     /* START idstr */
	cuts[n++] = st->poff + 4;	     /* RAM total */
	cuts[n++] = st->poff + st->plen / 2; /* RAM block list */
	cuts[n++] = st->poff + st->plen + 2; /* START footer */
	cuts[n++] = part->off + 1;	     /* PART section id */
	cuts[n++] = part->poff + 11;	     /* first page record */
	cuts[n++] = part->poff + part->plen / 2;
	cuts[n++] = part->poff + part->plen - 3; /* EOS */
	cuts[n++] = end->poff + end->plen;	 /* END footer missing */
	cuts[n++] = f0->off;			 /* at a section boundary */
	cuts[n++] = f0->off + 9;		 /* FULL idstr */
	cuts[n++] = fm->poff + fm->plen / 2;	 /* device payload */
	cuts[n++] = fl->poff + fl->plen - 1;	 /* last device byte */
	cuts[n++] = fm[1].off + 3;		 /* device footer */
	cuts[n++] = eof->off;			 /* EOF missing */
	cuts[n++] = vd->off + 3;		 /* trailer length */
	cuts[n++] = vd->poff;			 /* trailer JSON */
	cuts[n++] = vd->poff + vd->plen / 2;
	cuts[n++] = data.len - 1;
	ck_assert_uint_eq(fm[1].type, MS_REC_FOOTER);
	for (i = 0; i < n; i++)
		check_cut(&data, cuts[i]);

	/* Cut right after EOF the stream is complete: no trailer is fine. */
	ck_assert_int_eq(walk_cut(&t, &data, eof->off + 1, 0, 0), 0);
	ck_assert_uint_eq(t.count[MS_REC_EOF], 1);
	ck_assert_uint_eq(t.count[MS_REC_VMDESC], 0);
	walk_free(&t);
	walk_free(&w);
	free(data.p);
}
END_TEST

/* A footer naming another section is caught where it is. */
START_TEST(test_qemu_samples_footer_mismatch)
{
	const struct elem *fm, *ft;
	struct buf data;
	struct walk w, t;
	int ret;

	sample_load(&samples[0], &data);
	walk_init(&w, MS_PROFILE_QEMU, data.p, data.len, NULL);
	ck_assert_int_eq(walk_run(&w, data.p, data.len), 0);
	fm = elem_nth(&w, MS_REC_FULL, samples[0].full / 2);
	ft = fm + 1;
	ck_assert_uint_eq(ft->type, MS_REC_FOOTER);
	/* Flip the low bit of the footer's section id. */
	ret = walk_cut(&t, &data, data.len, 0x01, ft->off + 4);
	ck_assert_msg(ret == -EBADMSG, "%d (%s)", ret, t.errmsg);
	ck_assert_msg(strstr(t.errmsg, "footer for section") != NULL, "'%s'",
		      t.errmsg);
	ck_assert_msg(strstr(t.errmsg, fm->idstr) != NULL, "'%s'", t.errmsg);
	ck_assert_uint_eq(t.err_off, ft->off);
	walk_free(&t);
	walk_free(&w);
	free(data.p);
}
END_TEST

/* QEMU's obsolete version 2 is refused as unsupported. */
START_TEST(test_qemu_samples_version_2_refused)
{
	struct buf data;
	struct walk t;
	int ret;

	sample_load(&samples[0], &data);
	ck_assert_uint_eq(data.p[7], MS_QEMU_VERSION);
	ret = walk_cut(&t, &data, data.len, MS_QEMU_VERSION ^ 2, 7);
	ck_assert_msg(ret == -ENOTSUP, "%d (%s)", ret, t.errmsg);
	ck_assert_msg(!strncmp(t.errmsg, "offset 0x4: ", 12), "'%s'", t.errmsg);
	ck_assert_ptr_nonnull(strstr(t.errmsg, "version 2"));
	ck_assert_uint_eq(t.nel, 0);
	walk_free(&t);
	free(data.p);
}
END_TEST

static Suite *qemu_samples_suite(void)
{
	Suite *s = suite_create("qemu_samples");
	TCase *tc;

	tc = tcase_create("walk");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_qemu_samples_walk_every_element, 0,
			    NSAMPLES);
	suite_add_tcase(s, tc);

	tc = tcase_create("re-framing");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_qemu_samples_reframe_identical, 0,
			    NSAMPLES);
	tcase_add_loop_test(tc, test_qemu_samples_native_roundtrip, 0,
			    2 * NSAMPLES);
	suite_add_tcase(s, tc);

	tc = tcase_create("damaged streams");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_qemu_samples_truncated_fails_cleanly);
	tcase_add_test(tc, test_qemu_samples_footer_mismatch);
	tcase_add_test(tc, test_qemu_samples_version_2_refused);
	suite_add_tcase(s, tc);
	return s;
}

MS_TEST_MAIN(qemu_samples_suite)
