/* SPDX-License-Identifier: MIT */
/*
 * migstream-dump: the stream walker.  See dump.h.
 *
 * Payload parsers look at their bytes with ms_peek() before they consume
 * them, so that an error names the offset of the field that is wrong, and
 * so that running into the end of a native payload is reported by the
 * parser (as "end of the section's payload") instead of failing the
 * payload stream.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <zlib.h>

#include "dump.h"

struct dump_limits dump_limits;
struct dump_opts dump_opts;

/* RAM section: short names for <migstream/qemu_ram.h>. */

/* The input's buffer: also the window of the footer scan. */
#define IN_BUFFER_SIZE (256u * 1024u)
/* Bytes the footer scan needs after a candidate's first byte: the footer
 * and the longest record head it validates, a START or FULL header with a
 * 255-byte idstr. */
#define SCAN_LOOKAHEAD (5u + 1u + 4u + 1u + 255u + 8u)
/* The footer scan's first window; it doubles up to IN_BUFFER_SIZE. */
#define SCAN_FIRST 1024u
/* Chunk size for consuming bytes through ms_peek(). */
#define SKIP_CHUNK 4096u

struct walker {
	ms_stream *in;
	ms_reader *r;
	ms_stream *p; /* the current record's payload */
	const ms_record *rec;
	uint8_t *buf; /* a compressed or XBZRLE page */
	uint8_t *page;
	z_stream z;
	bool z_ready;
	uint32_t *live; /* START sections not ended yet: a hash set */
	bool *live_used;
	size_t nlive, live_cap;
	uint64_t live_key;
	size_t capblk;	       /* entries allocated in w->blk */
	uint8_t xbzrle_len[2]; /* be16 length of the last XBZRLE page */
	struct dump_error e;   /* the payload parser's (no offset: the
				  reader names it, and the section) */
	/* The progress line (w->progress). */
	uint64_t total;	      /* the input's size, 0 if unknown */
	struct timespec next; /* when to print the next line */
	long interval_ms;     /* between lines */
	unsigned tick;	      /* pages since the last clock check */
	bool shown;	      /* a line is on the terminal */

	/* Streams without footers: the trailer's decoder, and whether the
	 * footers could not be looked for (not a file). */
	struct dump_desc *desc;
	bool nf_unprobed;
};

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

int dump_error_vset(struct dump_error *e, int err, uint64_t offset,
		    long long section_id, const char *idstr, const char *fmt,
		    va_list ap)
{
	size_t n = 0;
	int k;

	if (e->code)
		return e->code;
	e->code = err < 0 ? err : -EIO;
	e->offset = offset;
	e->msg[0] = '\0';
	if (offset != DUMP_NO_OFFSET) {
		k = snprintf(e->msg, sizeof(e->msg),
			     "offset 0x%llx: ", (unsigned long long)offset);
		n = k > 0 && (size_t)k < sizeof(e->msg) ? (size_t)k : 0;
	}
	if (section_id != DUMP_NO_SECTION) {
		k = snprintf(e->msg + n, sizeof(e->msg) - n,
			     "section %lld '%s': ", section_id,
			     idstr ? idstr : "");
		if (k > 0 && (size_t)k < sizeof(e->msg) - n)
			n += (size_t)k;
	}
	vsnprintf(e->msg + n, sizeof(e->msg) - n, fmt, ap);
	return e->code;
}

int dump_error_set(struct dump_error *e, int err, uint64_t offset,
		   long long section_id, const char *idstr, const char *fmt,
		   ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = dump_error_vset(e, err, offset, section_id, idstr, fmt, ap);
	va_end(ap);
	return ret;
}

const char *dump_page_kind_name(int kind)
{
	static const char *const names[DUMP_PAGE_KINDS] = {
		"zero", "normal", "compressed", "xbzrle"};

	return kind >= 0 && kind < DUMP_PAGE_KINDS ? names[kind] : "unknown";
}

/*
 * Text from the stream, made safe to print (see dump.h).
 */

/* The length of the valid UTF-8 sequence at @p (@n bytes left), or 0:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len, i;
	uint32_t c;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, c = p[0] & 0x1fu;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, c = p[0] & 0x0fu;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, c = p[0] & 0x07u;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3fu);
	}
	if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (len == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	return len;
}

bool dump_is_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), l;

	for (; n; p += l, n -= l) {
		l = utf8_len(p, n);
		if (!l)
			return false;
	}
	return true;
}

/* Whether the valid sequence at @p of @l bytes is a control character:
 * C0, DEL or C1 (U+0080 to U+009F, encoded c2 80 to c2 9f). */
static bool is_control(const unsigned char *p, size_t l)
{
	return (l == 1 && (p[0] < 0x20 || p[0] == 0x7f)) ||
	       (l == 2 && p[0] == 0xc2 && p[1] < 0xa0);
}

size_t dump_escape(char *dst, size_t cap, const char *src)
{
	const unsigned char *p = (const unsigned char *)src;
	size_t n = strlen(src), o = 0, l, i;

	if (!cap)
		return 0;
	for (; n; p += l, n -= l) {
		l = utf8_len(p, n);
		if (!l || is_control(p, l)) {
			/* Each byte of it as \xNN. */
			l = l ? l : 1;
			if (o + 4 * l >= cap)
				break;
			for (i = 0; i < l; i++)
				o += (size_t)snprintf(dst + o, cap - o,
						      "\\x%02x", p[i]);
		} else if (p[0] == '\\') {
			if (o + 2 >= cap)
				break;
			dst[o++] = '\\';
			dst[o++] = '\\';
		} else {
			if (o + l >= cap)
				break;
			memcpy(dst + o, p, l);
			o += l;
		}
	}
	dst[o] = '\0';
	return o;
}

const char *dump_esc(const char *s)
{
	static char bufs[4][DUMP_ESC_SIZE(MS_COUNTED_STRING_MAX)];
	static unsigned next;
	char *b = bufs[next++ % 4];

	dump_escape(b, sizeof(bufs[0]), s);
	return b;
}

void dump_json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	bool text = !dump_is_utf8(s); /* then written in its text form */
	size_t n = strlen(s), l, i;

	fputc('"', f);
	for (; n; p += l, n -= l) {
		l = utf8_len(p, n);
		if (!l || (text && is_control(p, l))) {
			/* Each byte as \xNN, in JSON "\\xNN". */
			l = l ? l : 1;
			for (i = 0; i < l; i++)
				fprintf(f, "\\\\x%02x", p[i]);
		} else if (p[0] == '\\') {
			fputs(text ? "\\\\\\\\" : "\\\\", f);
		} else if (p[0] == '"') {
			fputs("\\\"", f);
		} else if (is_control(p, l)) {
			fprintf(f, "\\u%04x", l == 1 ? p[0] : p[1]);
		} else {
			fwrite(p, 1, l, f);
		}
	}
	fputc('"', f);
}

/*
 * Errors.
 */

static int bad(struct dump_walk *w, int err, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

/* Record the payload parser's first error. */
static int vbad(struct dump_walk *w, int err, const char *fmt, va_list ap)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 0)))
#endif
	;

static int vbad(struct dump_walk *w, int err, const char *fmt, va_list ap)
{
	struct walker *k = w->priv;

	/* Raw: escaped once, where it is printed. */
	return dump_error_vset(&k->e, err, DUMP_NO_OFFSET, DUMP_NO_SECTION,
			       NULL, fmt, ap);
}

static int bad(struct dump_walk *w, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err = vbad(w, err, fmt, ap);
	va_end(ap);
	return err;
}

int dump_walk_fail(struct dump_walk *w, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err = vbad(w, err, fmt, ap);
	va_end(ap);
	return err;
}

/* A lenient walk goes on after a payload it could not parse: say so. */
static void warn(struct dump_walk *w, const char *what)
{
	struct walker *k = w->priv;
	const ms_section_hdr *h = &k->rec->section;

	fprintf(stderr,
		"migstream-dump: %s: warning: offset 0x%llx: section %u "
		"'%s': %s; %s\n",
		w->name, (unsigned long long)ms_stream_tell(k->in),
		h->section_id, dump_esc(h->idstr), dump_esc(k->e.msg), what);
	w->warnings++;
	memset(&k->e, 0, sizeof(k->e));
}

/* Whether a parser error is about the bytes (so a lenient walk may skip
 * them) rather than about the input (an I/O error or its end). */
static bool is_grammar_error(int err)
{
	return err == -EBADMSG || err == -ENOTSUP;
}

/*
 * Reading payload bytes.
 */

/* Look at the next @n bytes of the payload without consuming them. */
static const uint8_t *need(struct dump_walk *w, size_t n, const char *what)
{
	struct walker *k = w->priv;
	const uint8_t *d;
	ssize_t got = ms_peek(k->p, &d, n);

	if (got < 0) {
		bad(w, (int)got, "%s: %s", what, ms_stream_errmsg(k->p));
		return NULL;
	}
	if ((size_t)got < n) {
		if (w->profile == MS_PROFILE_NATIVE)
			bad(w, -EBADMSG,
			    "%s (%zu bytes) expected, end of the section's "
			    "payload found after %zd bytes",
			    what, n, got);
		else
			bad(w, -ENODATA,
			    "%s (%zu bytes) expected, end of stream found "
			    "after %zd bytes",
			    what, n, got);
		return NULL;
	}
	return d;
}

static int skip(struct dump_walk *w, size_t n)
{
	struct walker *k = w->priv;
	const uint8_t *d;
	int ret;

	if (w->on_bytes && n) {
		/* The bytes were peeked: this only looks at them again. */
		if (ms_peek(k->p, &d, n) != (ssize_t)n)
			return bad(w, -EIO, "payload bytes not available");
		ret = w->on_bytes(w, d, n, w->opaque);
		if (ret)
			return bad(w, ret, "stopped by the output");
	}
	return ms_skip(k->p, n) ? bad(w, ms_stream_error(k->p), "%s",
				      ms_stream_errmsg(k->p))
				: 0;
}

/* Consume @n bytes, copying them to @dst unless it is NULL. */
static int take(struct dump_walk *w, uint8_t *dst, size_t n, const char *what)
{
	const uint8_t *d;
	size_t c;

	while (n) {
		c = n < SKIP_CHUNK ? n : SKIP_CHUNK;
		d = need(w, c, what);
		if (!d)
			return ((struct walker *)w->priv)->e.code;
		if (dst) {
			memcpy(dst, d, c);
			dst += c;
		}
		if (skip(w, c))
			return -EIO;
		n -= c;
	}
	return 0;
}

/* Consume the rest of a native payload; return its byte count. */
static int drain(struct dump_walk *w, uint64_t *n)
{
	struct walker *k = w->priv;
	const uint8_t *d;
	ssize_t got;

	*n = 0;
	while ((got = ms_peek(k->p, &d, SKIP_CHUNK)) > 0) {
		if (skip(w, (size_t)got))
			return -EIO;
		*n += (uint64_t)got;
	}
	if (got < 0)
		return bad(w, (int)got, "section payload: %s",
			   ms_stream_errmsg(k->p));
	return 0;
}

/* Native: the payload must end here. */
static int expect_payload_end(struct dump_walk *w, const char *after)
{
	struct walker *k = w->priv;
	const uint8_t *d;
	ssize_t got = ms_peek(k->p, &d, 1);

	if (got < 0)
		return bad(w, (int)got, "%s", ms_stream_errmsg(k->p));
	if (got > 0)
		return bad(w, -EBADMSG,
			   "end of the section's payload after %s expected, "
			   "found byte 0x%02x",
			   after, d[0]);
	return 0;
}

/*
 * Configuration: the machine name (read by the reader), then QEMU's
 * subsections of vmstate "configuration".
 */

static int config_parse(struct dump_walk *w)
{
	static const char prefix[] = "configuration/";
	struct walker *k = w->priv;
	char name[MS_COUNTED_STRING_MAX + 1];
	const uint8_t *d;
	uint32_t ver, n, i;
	size_t len;
	ssize_t got;

	for (;;) {
		got = ms_peek(k->p, &d, 1);
		if (got < 0)
			return bad(w, (int)got, "configuration: %s",
				   ms_stream_errmsg(k->p));
		if (got == 0 || d[0] != MS_REC_SUBSECTION) {
			if (got && w->profile == MS_PROFILE_NATIVE)
				return bad(w, -EBADMSG,
					   "configuration subsection (0x05) "
					   "or end of payload expected, "
					   "found 0x%02x",
					   d[0]);
			return 0;
		}
		d = need(w, 2, "configuration subsection header");
		if (!d)
			return k->e.code;
		len = d[1];
		d = need(w, 2 + len + 4, "configuration subsection header");
		if (!d)
			return k->e.code;
		memcpy(name, d + 2, len);
		name[len] = '\0';
		ver = be32(d + 2 + len);
		if (strncmp(name, prefix, sizeof(prefix) - 1))
			return bad(w, -EBADMSG,
				   "configuration subsection "
				   "'configuration/...' expected, found '%s'",
				   name);
		if (ver != 1)
			return bad(w, -ENOTSUP,
				   "configuration subsection '%s' version 1 "
				   "expected, found %u",
				   name, ver);
		if (skip(w, 2 + len + 4))
			return k->e.code;
		w->count[MS_REC_SUBSECTION]++;
		if (!strcmp(name, "configuration/target-page-bits")) {
			d = need(w, 4, "target page bits (be32)");
			if (!d)
				return k->e.code;
			n = be32(d);
			if (n < MS_QEMU_RAM_MIN_PAGE_BITS ||
			    n > MS_QEMU_RAM_MAX_PAGE_BITS)
				return bad(w, -EBADMSG,
					   "target page bits from %u to %u "
					   "expected, found %u",
					   MS_QEMU_RAM_MIN_PAGE_BITS,
					   MS_QEMU_RAM_MAX_PAGE_BITS, n);
			w->page_size = 1u << n;
			if (skip(w, 4))
				return k->e.code;
		} else if (!strcmp(name, "configuration/capabilities")) {
			d = need(w, 4, "capability count (be32)");
			if (!d)
				return k->e.code;
			n = be32(d);
			/* In all: the subsection may come more than once. */
			if (n > DUMP_MAX_CAPS - w->ncaps)
				return bad(w, -EBADMSG,
					   "at most %u capabilities expected, "
					   "found %u more after %u",
					   DUMP_MAX_CAPS, n, w->ncaps);
			if (skip(w, 4))
				return k->e.code;
			for (i = 0; i < n; i++) {
				d = need(w, 1, "capability name");
				if (!d)
					return k->e.code;
				len = d[0];
				d = need(w, 1 + len, "capability name");
				if (!d)
					return k->e.code;
				memcpy(w->caps[w->ncaps], d + 1, len);
				w->caps[w->ncaps][len] = '\0';
				if (!strcmp(w->caps[w->ncaps],
					    "x-ignore-shared"))
					w->ignore_shared = true;
				if (!strcmp(w->caps[w->ncaps], "mapped-ram"))
					return bad(w, -ENOTSUP,
						   "capability 'mapped-ram' "
						   "found: mapped-ram files "
						   "are not supported");
				w->ncaps++;
				if (skip(w, 1 + len))
					return k->e.code;
			}
		} else if (!strcmp(name, "configuration/uuid")) {
			if (take(w, NULL, 16, "UUID (16 bytes)"))
				return k->e.code;
		} else if (w->profile == MS_PROFILE_NATIVE && !w->strict) {
			/* The payload's length is known: skip the rest. */
			return 0;
		} else {
			return bad(w, -ENOTSUP,
				   "known configuration subsection expected, "
				   "found '%s', whose length is unknown",
				   name);
		}
	}
}

/*
 * RAM.
 */

static int ram_block_find(const struct dump_walk *w, const char *name)
{
	unsigned i;

	for (i = 0; i < w->nblk; i++)
		if (!strcmp(w->blk[i].name, name))
			return (int)i;
	return -1;
}

/* The block list after MEM_SIZE: (cstr idstr, be64 used_length
 * [, be64 mr->addr with x-ignore-shared]) until the lengths sum to
 * @total. */
static int ram_block_list(struct dump_walk *w, uint64_t total)
{
	struct walker *k = w->priv;
	size_t extra = w->ignore_shared ? 8 : 0, len;
	struct dump_ram_block *b;
	uint64_t sum = 0;
	const uint8_t *d;

	w->ram_total = total;
	while (sum < total) {
		d = need(w, 1, "RAM block name");
		if (!d)
			return k->e.code;
		len = d[0];
		d = need(w, 1 + len + 8 + extra,
			 "RAM block name and used length");
		if (!d)
			return k->e.code;
		if (!len)
			return bad(w, -EBADMSG,
				   "RAM block name expected, found an empty "
				   "name");
		if (w->nblk == DUMP_MAX_RAM_BLOCKS)
			return bad(w, -EBADMSG,
				   "at most %u RAM blocks expected, found "
				   "more",
				   DUMP_MAX_RAM_BLOCKS);
		if (w->nblk == k->capblk) {
			/* Grown by doubling: most machines have a few. */
			size_t cap = k->capblk ? 2 * k->capblk : 16;

			b = realloc(w->blk, cap * sizeof(*w->blk));
			if (!b)
				return bad(w, -ENOMEM,
					   "out of memory for the RAM blocks");
			w->blk = b;
			k->capblk = cap;
		}
		b = &w->blk[w->nblk];
		memcpy(b->name, d + 1, len);
		b->name[len] = '\0';
		b->len = be64(d + 1 + len);
		if (ram_block_find(w, b->name) >= 0)
			return bad(w, -EBADMSG,
				   "distinct RAM block names expected, found "
				   "'%s' twice",
				   b->name);
		if (!b->len || b->len > total - sum)
			return bad(w, -EBADMSG,
				   "RAM block '%s': used length from 1 to "
				   "0x%llx (the rest of the total 0x%llx) "
				   "expected, found 0x%llx",
				   b->name, (unsigned long long)(total - sum),
				   (unsigned long long)total,
				   (unsigned long long)b->len);
		sum += b->len;
		w->nblk++;
		if (skip(w, 1 + len + 8 + extra))
			return k->e.code;
	}
	w->ram_listed = true;
	return 0;
}

/* uleb128_decode_small() of QEMU's util/cutils.c: at most 2 bytes. */
static int uleb128_small(const uint8_t *in, size_t avail, uint32_t *n)
{
	if (!avail)
		return -1;
	if (!(in[0] & 0x80)) {
		*n = in[0];
		return 1;
	}
	if (avail < 2 || (in[1] & 0x80))
		return -1;
	*n = (uint32_t)(in[0] & 0x7f) | (uint32_t)in[1] << 7;
	return 2;
}

/*
 * Walk XBZRLE data as QEMU's xbzrle_decode_buffer() does: (zero run,
 * non-zero run, bytes) pairs that must fit in one page.  Returns -1 or
 * the byte at which the data is invalid.
 */
static long xbzrle_check(const uint8_t *src, size_t slen, size_t dlen)
{
	size_t i = 0, d = 0;
	uint32_t count;
	int ret;

	while (i < slen) {
		if (slen - i < 2)
			return (long)i;
		ret = uleb128_small(src + i, slen - i, &count);
		if (ret < 0 || (i && !count))
			return (long)i;
		i += (size_t)ret;
		d += count;
		if (d > dlen)
			return (long)i;
		if (slen - i < 2)
			return (long)i;
		ret = uleb128_small(src + i, slen - i, &count);
		if (ret < 0 || !count)
			return (long)i;
		i += (size_t)ret;
		if (d + count > dlen || i + count > slen)
			return (long)i;
		d += count;
		i += count;
	}
	return -1;
}

static int ram_xbzrle(struct dump_walk *w, const char *blk)
{
	struct walker *k = w->priv;
	const uint8_t *d;
	size_t len;
	long at;

	d = need(w, 3, "XBZRLE header (u8 encoding, be16 length)");
	if (!d)
		return k->e.code;
	if (d[0] != MS_QEMU_RAM_XBZRLE_ENCODING)
		return bad(w, -EBADMSG,
			   "XBZRLE encoding 0x01 expected, found 0x%02x", d[0]);
	len = be16(d + 1);
	memcpy(k->xbzrle_len, d + 1, 2);
	if (len > w->page_size)
		return bad(w, -EBADMSG,
			   "XBZRLE length of at most the page size %u "
			   "expected, found %zu",
			   w->page_size, len);
	if (skip(w, 3) || take(w, k->buf, len, "XBZRLE data"))
		return k->e.code;
	at = xbzrle_check(k->buf, len, w->page_size);
	if (at >= 0)
		return bad(w, -EBADMSG,
			   "XBZRLE page of '%s': runs that fit in one page "
			   "expected, invalid run at byte %ld of %zu",
			   blk, at, len);
	return 0;
}

static int ram_compressed(struct dump_walk *w, const char *blk)
{
	struct walker *k = w->priv;
	uLong bound = compressBound(w->page_size);
	const uint8_t *d;
	uint32_t len;
	int zr;

	d = need(w, 4, "compressed page length (be32)");
	if (!d)
		return k->e.code;
	len = be32(d);
	if (!len || len > bound)
		return bad(w, -EBADMSG,
			   "compressed page length from 1 to %lu "
			   "(compressBound(%u)) expected, found %u",
			   (unsigned long)bound, w->page_size, len);
	if (skip(w, 4) || take(w, k->buf, len, "compressed page data"))
		return k->e.code;
	if (!k->z_ready) {
		memset(&k->z, 0, sizeof(k->z));
		if (inflateInit(&k->z) != Z_OK)
			return bad(w, -ENOMEM, "out of memory for zlib");
		k->z_ready = true;
	} else if (inflateReset(&k->z) != Z_OK) {
		return bad(w, -ENOMEM, "zlib: cannot reset");
	}
	k->z.next_in = k->buf;
	k->z.avail_in = len;
	k->z.next_out = k->page;
	k->z.avail_out = w->page_size + 1;
	zr = inflate(&k->z, Z_FINISH);
	if (zr != Z_STREAM_END || k->z.total_out != w->page_size ||
	    k->z.avail_in)
		return bad(w, -EBADMSG,
			   "compressed page of '%s': zlib data of exactly one "
			   "%u-byte page expected, found %s (%lu bytes out, "
			   "%u of %u bytes in unused)",
			   blk, w->page_size,
			   zr == Z_STREAM_END ? "a complete stream"
			   : k->z.msg	      ? k->z.msg
					      : "an incomplete stream",
			   (unsigned long)k->z.total_out, k->z.avail_in, len);
	return 0;
}

/*
 * The progress line: "\rNAME: 12.5 MiB of 100.0 MiB (12%)" on stderr,
 * at most every interval_ms (MIGSTREAM_DUMP_PROGRESS_MS, default 250),
 * the first one after one interval: a short run prints nothing.
 */

static void ts_add_ms(struct timespec *t, long ms)
{
	t->tv_sec += ms / 1000;
	t->tv_nsec += (ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

static void progress_start(struct dump_walk *w)
{
	struct walker *k = w->priv;
	const char *env = getenv("MIGSTREAM_DUMP_PROGRESS_MS");
	struct stat st;
	char *end;
	long ms = 250;

	if (!w->progress)
		return;
	if (env && *env) {
		ms = strtol(env, &end, 10);
		if (*end || ms < 0 || ms > 3600000L)
			ms = 250;
	}
	k->interval_ms = ms;
	if (!fstat(w->fd, &st) && S_ISREG(st.st_mode))
		k->total = (uint64_t)st.st_size;
	clock_gettime(CLOCK_MONOTONIC, &k->next);
	ts_add_ms(&k->next, ms);
}

static void progress_tick(struct dump_walk *w)
{
	struct walker *k = w->priv;
	struct timespec now;
	double done;

	if (!w->progress)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec < k->next.tv_sec ||
	    (now.tv_sec == k->next.tv_sec && now.tv_nsec < k->next.tv_nsec))
		return;
	k->next = now;
	ts_add_ms(&k->next, k->interval_ms);
	done = (double)ms_stream_tell(k->in);
	if (k->total)
		fprintf(stderr, "\r%s: %.1f MiB of %.1f MiB (%.0f%%)\033[K",
			dump_esc(w->name), done / 1048576.0,
			(double)k->total / 1048576.0,
			100.0 * done / (double)k->total);
	else
		fprintf(stderr, "\r%s: %.1f MiB\033[K", dump_esc(w->name),
			done / 1048576.0);
	k->shown = true;
}

/* Erase the progress line, if one was printed. */
static void progress_end(struct dump_walk *w)
{
	struct walker *k = w->priv;

	if (k->shown)
		fputs("\r\033[K", stderr);
	k->shown = false;
}

/* Hand a parsed page to the caller's hook, if any. */
static int page_hook(struct dump_walk *w, uint64_t addr,
		     enum dump_page_kind kind, const uint8_t *data, size_t len)
{
	struct walker *k = w->priv;
	int ret;

	if (w->progress && !(++k->tick & 1023u))
		progress_tick(w);
	if (!w->on_page)
		return 0;
	ret = w->on_page(w, (unsigned)w->last_blk, addr, kind, data, len,
			 w->opaque);
	return ret ? bad(w, ret, "stopped by the output") : 0;
}

/* One page record at the current position, whose be64 is @v. */
static int ram_page(struct dump_walk *w, uint64_t v, unsigned kind_flag)
{
	struct walker *k = w->priv;
	uint64_t addr = v & ~(uint64_t)(w->page_size - 1);
	unsigned flags = (unsigned)(v & (w->page_size - 1));
	char name[MS_COUNTED_STRING_MAX + 1];
	const struct dump_ram_block *b;
	const uint8_t *d;
	size_t hlen = 8;
	int i;

	if (!(flags & MS_QEMU_RAM_CONTINUE)) {
		d = need(w, 9, "RAM block name");
		if (!d)
			return k->e.code;
		hlen = 9 + d[8];
		d = need(w, hlen, "RAM block name");
		if (!d)
			return k->e.code;
		memcpy(name, d + 9, d[8]);
		name[d[8]] = '\0';
		i = ram_block_find(w, name);
		if (i < 0)
			return bad(w, -EBADMSG,
				   "page record: a RAM block of the block "
				   "list expected, found '%s'",
				   name);
		w->last_blk = i;
	} else if (w->last_blk < 0) {
		return bad(w, -EBADMSG,
			   "page record: a RAM block name expected, found "
			   "CONTINUE (0x20) on the first page");
	}
	b = &w->blk[w->last_blk];
	if (addr >= b->len)
		return bad(w, -EBADMSG,
			   "page record: an offset below 0x%llx (the size "
			   "of RAM block '%s') expected, found 0x%llx",
			   (unsigned long long)b->len, b->name,
			   (unsigned long long)addr);
	if (skip(w, hlen))
		return k->e.code;
	switch (kind_flag) {
	case MS_QEMU_RAM_ZERO:
		d = need(w, 1, "zero page fill byte");
		if (!d)
			return k->e.code;
		if (d[0])
			return bad(w, -EBADMSG,
				   "zero page of '%s' at 0x%llx: fill byte 0 "
				   "expected, found 0x%02x",
				   b->name, (unsigned long long)addr, d[0]);
		w->pages[DUMP_PAGE_ZERO]++;
		if (skip(w, 1))
			return k->e.code;
		return page_hook(w, addr, DUMP_PAGE_ZERO, NULL, 0);
	case MS_QEMU_RAM_PAGE:
		w->pages[DUMP_PAGE_NORMAL]++;
		if (take(w, w->on_page ? k->page : NULL, w->page_size,
			 "page data"))
			return k->e.code;
		return page_hook(w, addr, DUMP_PAGE_NORMAL, k->page,
				 w->page_size);
	case MS_QEMU_RAM_XBZRLE:
		w->pages[DUMP_PAGE_XBZRLE]++;
		if (ram_xbzrle(w, b->name))
			return k->e.code;
		return page_hook(w, addr, DUMP_PAGE_XBZRLE, k->buf,
				 be16(k->xbzrle_len));
	default:
		w->pages[DUMP_PAGE_COMPRESSED]++;
		if (ram_compressed(w, b->name))
			return k->e.code;
		return page_hook(w, addr, DUMP_PAGE_COMPRESSED, k->page,
				 w->page_size);
	}
}

/* A RAM section's payload: records up to EOS. */
static int ram_parse(struct dump_walk *w)
{
	struct walker *k = w->priv;
	const uint8_t *d;
	uint64_t v, mask = (uint64_t)w->page_size - 1;
	unsigned flags, base;

	if (!k->buf) {
		/* A page, or its compressed form, and an inflated page. */
		k->buf = malloc(compressBound(w->page_size));
		k->page = malloc(w->page_size + 1u);
		if (!k->buf || !k->page)
			return bad(w, -ENOMEM, "out of memory for a page");
	}
	for (;;) {
		d = need(w, 8, "RAM record (be64 offset and flags)");
		if (!d)
			return k->e.code;
		v = be64(d);
		flags = (unsigned)(v & mask);
		base = flags & ~MS_QEMU_RAM_CONTINUE;
		switch (base) {
		case MS_QEMU_RAM_MEM_SIZE:
			if (w->ram_listed)
				return bad(w, -EBADMSG,
					   "page record expected, found a "
					   "second block list (MEM_SIZE)");
			if (skip(w, 8) || ram_block_list(w, v & ~mask))
				return k->e.code;
			continue;
		case MS_QEMU_RAM_EOS:
			return skip(w, 8);
		case MS_QEMU_RAM_MULTIFD_FLUSH:
			w->multifd_flushes++;
			if (skip(w, 8))
				return k->e.code;
			continue;
		case MS_QEMU_RAM_ZERO:
		case MS_QEMU_RAM_PAGE:
		case MS_QEMU_RAM_XBZRLE:
		case MS_QEMU_RAM_COMPRESS_PAGE:
			if (!w->ram_listed)
				return bad(w, -EBADMSG,
					   "block list (MEM_SIZE, 0x04) "
					   "expected, found a page record "
					   "(flags 0x%x)",
					   flags);
			if (ram_page(w, v, base))
				return k->e.code;
			continue;
		case MS_QEMU_RAM_HOOK:
			return bad(w, -ENOTSUP,
				   "RAM record: RAM_SAVE_FLAG_HOOK (0x80) "
				   "found: RDMA hook data cannot be read from "
				   "a stream");
		case MS_QEMU_RAM_FULL:
			return bad(w, -ENOTSUP,
				   "RAM record: RAM_SAVE_FLAG_FULL (0x01) "
				   "found: obsolete since QEMU 0.13");
		default:
			return bad(
				w, -EBADMSG,
				"RAM record flags ZERO, MEM_SIZE, PAGE, EOS, "
				"XBZRLE, COMPRESS_PAGE or MULTIFD_FLUSH "
				"expected, found 0x%x",
				flags);
		}
	}
}

/*
 * Device sections of the QEMU profile: a footer scan.
 *
 * The live set (START sections not ended yet) is a hash set with linear
 * probing.  Slots come from a keyed mixer whose key is drawn per walk, so
 * ids chosen in a file written before the walk (multiples of 2^17, or any
 * other pattern) spread like random ones: each lookup costs O(1) expected
 * time whatever the ids.  The table stays at most half full.
 */

/* The per-walk key of the live set's mixer. */
static uint64_t live_key(void)
{
	struct timespec t;
	uint64_t key = 0;
	FILE *f = fopen("/dev/urandom", "rb");

	if (f) {
		if (fread(&key, sizeof(key), 1, f) != 1)
			key = 0;
		fclose(f);
	}
	clock_gettime(CLOCK_MONOTONIC, &t);
	key ^= (uint64_t)t.tv_nsec << 32 ^ (uint64_t)t.tv_sec ^
	       (uint64_t)getpid() << 16;
	return key | 1u;
}

/* A slot for @id: the keyed id through the 64-bit finaliser of
 * MurmurHash3. */
static size_t live_slot(const struct walker *k, uint32_t id)
{
	uint64_t h = ((uint64_t)id ^ k->live_key) * 0x9e3779b97f4a7c15ull;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return (size_t)h & (k->live_cap - 1);
}

/* The slot holding @id, or the empty slot where it would go. */
static size_t live_find(const struct walker *k, uint32_t id)
{
	size_t i = live_slot(k, id);

	while (k->live_used[i] && k->live[i] != id)
		i = (i + 1) & (k->live_cap - 1);
	return i;
}

static bool live_has(const struct walker *k, uint32_t id)
{
	return k->live_cap && k->live_used[live_find(k, id)];
}

/* Double the table (or make its first one) and put every id back. */
static int live_grow(struct dump_walk *w)
{
	struct walker *k = w->priv;
	size_t i, j, old = k->live_cap;
	uint32_t *ids = k->live;
	bool *used = k->live_used;

	k->live_cap = old ? 2 * old : 64;
	k->live = calloc(k->live_cap, sizeof(*k->live));
	k->live_used = calloc(k->live_cap, sizeof(*k->live_used));
	if (!k->live || !k->live_used) {
		free(k->live);
		free(k->live_used);
		k->live = ids;
		k->live_used = used;
		k->live_cap = old;
		return bad(w, -ENOMEM, "out of memory");
	}
	for (i = 0; i < old; i++) {
		if (!used[i])
			continue;
		j = live_find(k, ids[i]);
		k->live[j] = ids[i];
		k->live_used[j] = true;
	}
	free(ids);
	free(used);
	return 0;
}

static int live_add(struct dump_walk *w, uint32_t id)
{
	struct walker *k = w->priv;
	size_t i;

	if (k->nlive >= MS_MAX_SECTIONS)
		return bad(w, -EBADMSG,
			   "at most %u sections open at once expected, found "
			   "one more",
			   MS_MAX_SECTIONS);
	if (2 * (k->nlive + 1) > k->live_cap && live_grow(w))
		return k->e.code;
	i = live_find(k, id);
	if (!k->live_used[i]) {
		k->live[i] = id;
		k->live_used[i] = true;
		k->nlive++;
	}
	return 0;
}

/* Remove @id, moving back the ids of its probe run (no tombstones). */
static void live_del(struct walker *k, uint32_t id)
{
	size_t mask = k->live_cap - 1, i, j, home;

	if (!live_has(k, id))
		return;
	i = live_find(k, id);
	k->live_used[i] = false;
	k->nlive--;
	for (j = (i + 1) & mask; k->live_used[j]; j = (j + 1) & mask) {
		home = live_slot(k, k->live[j]);
		/* Move j's id into the hole at i unless its home lies
		 * cyclically in (i, j]. */
		if ((j > i && (home <= i || home > j)) ||
		    (j < i && home <= i && home > j)) {
			k->live[i] = k->live[j];
			k->live_used[i] = true;
			k->live_used[j] = false;
			i = j;
		}
	}
}

/*
 * Whether a valid record starts at @d[@q], of @n bytes looked at; @at_end
 * when they reach the end of the input.
 */
static bool record_starts(const struct dump_walk *w, const uint8_t *d, size_t n,
			  size_t q, bool at_end)
{
	const struct walker *k = w->priv;
	size_t i, len;
	uint16_t cmd;

	if (q >= n)
		return false;
	switch (d[q]) {
	case MS_REC_EOF:
		/* EOF, then the end (no trailer) or a trailer's head (the
		 * reader checks that the trailer ends the stream). */
		if (q + 1 == n)
			return at_end;
		if (n - q < 7 || d[q + 1] != MS_REC_VMDESC || d[q + 6] != '{')
			return false;
		return be32(d + q + 2) <= MS_DEFAULT_MAX_VMDESC;
	case MS_REC_START:
	case MS_REC_FULL:
		if (n - q < 6)
			return false;
		/* Even with the id of a live section: the reader then
		 * refuses it, as a load would. */
		len = d[q + 5];
		if (!len || n - q < 6 + len + 8)
			return false;
		for (i = 0; i < len; i++)
			if (d[q + 6 + i] <= 0x20 || d[q + 6 + i] >= 0x7f)
				return false;
		return true;
	case MS_REC_PART:
	case MS_REC_END:
		return n - q >= 5 && live_has(k, be32(d + q + 1));
	case MS_REC_COMMAND:
		if (n - q < 5)
			return false;
		cmd = be16(d + q + 1);
		return cmd && cmd < MS_CMD_MAX;
	default:
		return false;
	}
}

/*
 * Consume a payload up to the first footer of section @id that is
 * followed by a valid record (which the reader then reads).  The window
 * looked at starts small and doubles up to the input's buffer, each round
 * resuming where the last one stopped: a tiny section costs a small peek,
 * and no byte is scanned twice.
 */
static int scan_to_footer(struct dump_walk *w, uint32_t id)
{
	struct walker *k = w->priv;
	uint64_t start = ms_stream_tell(k->p);
	size_t n, limit, q, from = 0, want = SCAN_FIRST;
	const uint8_t *d, *f;
	bool at_end;
	ssize_t got;

	for (;;) {
		got = ms_peek(k->p, &d, want);
		if (got < 0)
			return bad(w, (int)got, "section payload: %s",
				   ms_stream_errmsg(k->p));
		n = (size_t)got;
		at_end = n < want;
		limit = at_end ? n : n - SCAN_LOOKAHEAD;
		for (q = from; q < limit; q++) {
			f = memchr(d + q, MS_REC_FOOTER, limit - q);
			if (!f)
				break;
			q = (size_t)(f - d);
			if (n - q >= 5 && be32(d + q + 1) == id &&
			    record_starts(w, d, n, q + 5, at_end)) {
				w->scanned++;
				return skip(w, q);
			}
		}
		if (at_end)
			break;
		from = limit;
		if (want < IN_BUFFER_SIZE) {
			want *= 2;
			continue;
		}
		if (skip(w, limit))
			return k->e.code;
		from = 0;
	}
	return bad(w, -EBADMSG,
		   "end of the payload that starts at offset 0x%llx: a "
		   "footer (7e %08x) followed by a valid record expected, "
		   "found none up to the end of the stream (a payload "
		   "without a footer can only be delimited by its grammar "
		   "or its VM description)",
		   (unsigned long long)start, id);
}

/*
 * Records.
 */

/*
 * The VM description: parsed by jansson as it is read, within
 * dump_limits.json_mem_max bytes of parser memory.
 */

/* The parser's memory: counted against the cap while a walk parses. */
static struct {
	uint64_t used, cap;
	bool over;
} json_mem;

static void *json_mem_alloc(size_t n)
{
	uint64_t *p;

	if (n > SIZE_MAX - 16 || json_mem.used + n + 16 > json_mem.cap) {
		json_mem.over = true;
		return NULL;
	}
	p = malloc(n + 16);
	if (!p)
		return NULL;
	p[0] = n + 16;
	json_mem.used += n + 16;
	return (uint8_t *)p + 16;
}

static void json_mem_free(void *q)
{
	uint8_t *p;
	uint64_t n;

	if (!q)
		return;
	p = (uint8_t *)q - 16;
	memcpy(&n, p, sizeof(n));
	json_mem.used -= n;
	free(p);
}

struct vmdesc_in {
	struct dump_walk *w;
	uint32_t len, left;
};

/* jansson's input: the next bytes of the description, copied for
 * keep_vmdesc; (size_t)-1 (with the walk's error) if they are missing. */
static size_t vmdesc_read(void *buf, size_t cap, void *opaque)
{
	struct vmdesc_in *in = opaque;
	struct dump_walk *w = in->w;
	struct walker *k = w->priv;
	bool native = w->profile == MS_PROFILE_NATIVE;
	size_t c = cap < in->left ? cap : in->left;
	const uint8_t *d;
	ssize_t got;

	if (c > SKIP_CHUNK)
		c = SKIP_CHUNK;
	if (!c)
		return 0;
	got = ms_peek(k->p, &d, c);
	if (got < 0) {
		bad(w, (int)got, "VM description: %s", ms_stream_errmsg(k->p));
		return (size_t)-1;
	}
	if ((size_t)got < c) {
		bad(w, native ? -EBADMSG : -ENODATA,
		    "VM description of %u bytes expected, end of %s found "
		    "after %llu bytes",
		    in->len, native ? "its payload" : "stream",
		    (unsigned long long)(in->len - in->left) +
			    (unsigned long long)got);
		return (size_t)-1;
	}
	memcpy(buf, d, c);
	if (w->vmdesc)
		memcpy(w->vmdesc + (in->len - in->left), d, c);
	if (skip(w, c))
		return (size_t)-1;
	in->left -= (uint32_t)c;
	return c;
}

/* Check the VM description: one JSON object, exactly @len bytes. */
static int vmdesc_check(struct dump_walk *w, uint32_t len)
{
	struct walker *k = w->priv;
	struct vmdesc_in in = {.w = w, .len = len, .left = len};
	json_malloc_t old_alloc;
	json_free_t old_free;
	json_error_t e;
	json_t *root;
	bool object;

	if (w->keep_vmdesc && !w->vmdesc) {
		w->vmdesc = malloc((size_t)len + 1);
		if (!w->vmdesc)
			return bad(w, -ENOMEM,
				   "out of memory for the VM description");
		w->vmdesc[len] = '\0';
	}
	json_get_alloc_funcs(&old_alloc, &old_free);
	json_mem.used = 0;
	json_mem.cap = dump_limits.json_mem_max ? dump_limits.json_mem_max
						: DUMP_JSON_MEM_MAX;
	json_mem.over = false;
	json_set_alloc_funcs(json_mem_alloc, json_mem_free);
	root = json_load_callback(vmdesc_read, &in, JSON_ALLOW_NUL, &e);
	object = json_is_object(root);
	json_decref(root);
	json_set_alloc_funcs(old_alloc, old_free);
	if (k->e.code)
		return k->e.code;
	if (json_mem.over)
		return bad(w, -EFBIG,
			   "VM description of %u bytes: parsing it needs more "
			   "than %llu bytes of memory (--json-mem-max)",
			   len, (unsigned long long)json_mem.cap);
	if (!root)
		return bad(w, -EBADMSG,
			   "VM description: JSON expected, invalid at byte "
			   "%d (line %d, column %d): %s",
			   e.position, e.line, e.column, e.text);
	if (!object)
		return bad(w, -EBADMSG,
			   "VM description: a JSON object expected, found a "
			   "JSON array");
	return 0;
}

static int nf_payload(struct dump_walk *w, const ms_section_hdr *h);
static int nf_probe_section(struct dump_walk *w, const ms_section_hdr *h);
static int nf_vmdesc_at(struct dump_walk *w, const ms_record *rec);
static int nf_prepare(struct dump_walk *w, ms_codec_opts *co);
static int nf_pipe_check(struct dump_walk *w, const ms_section_hdr *h);

static int section(struct dump_walk *w, const ms_section_hdr *h, uint64_t *plen)
{
	struct walker *k = w->priv;
	bool native = w->profile == MS_PROFILE_NATIVE;
	uint64_t start = ms_stream_tell(k->p), n;
	int ret = 0;

	/* A started section is live from its own footer on (its PART may
	 * follow at once, which the footer scan checks). */
	if (h->type == MS_REC_START && live_add(w, h->section_id))
		return k->e.code;
	if (w->nf_probe)
		return nf_probe_section(w, h);
	if (!strcmp(h->idstr, MS_QEMU_RAM_IDSTR) && !w->ram_broken) {
		if (h->version_id != MS_QEMU_RAM_VERSION)
			ret = bad(w, -ENOTSUP,
				  "RAM section version %u expected, found %u",
				  MS_QEMU_RAM_VERSION, h->version_id);
		else
			ret = ram_parse(w);
		if (!ret && k->nf_unprobed)
			ret = nf_pipe_check(w, h);
		if (!ret && native)
			ret = expect_payload_end(w, "EOS");
		if (!ret) {
			w->ram_sections++;
		} else if (!w->strict && is_grammar_error(ret)) {
			warn(w, native ? "RAM not parsed further"
				       : "RAM not parsed further, skipping to "
					 "the footer");
			w->ram_broken = true;
			ret = 0;
			if (!native)
				ret = scan_to_footer(w, h->section_id);
		}
	} else if (w->on_payload || k->desc) {
		ret = nf_payload(w, h);
	} else if (!native) {
		ret = scan_to_footer(w, h->section_id);
	}
	if (!ret && native)
		ret = drain(w, &n);
	*plen = ms_stream_tell(k->p) - start;
	if (ret)
		return ret;
	if (h->type == MS_REC_END)
		live_del(k, h->section_id);
	return 0;
}

static int consume(struct dump_walk *w, const ms_record *rec, uint64_t *plen)
{
	struct walker *k = w->priv;
	uint64_t n;
	int ret;

	*plen = 0;
	switch (rec->type) {
	case MS_REC_CONFIGURATION:
		memcpy(w->machine, rec->machine, sizeof(w->machine));
		w->have_machine = true;
		ret = config_parse(w);
		if (!ret && w->profile == MS_PROFILE_NATIVE)
			ret = drain(w, &n);
		/* be32 length, the name, the subsections. */
		*plen = w->profile == MS_PROFILE_NATIVE
				? ms_stream_tell(k->p)
				: ms_stream_tell(k->in) - rec->offset - 1;
		return ret;
	case MS_REC_START:
	case MS_REC_PART:
	case MS_REC_END:
	case MS_REC_FULL:
		return section(w, &rec->section, plen);
	case MS_REC_COMMAND:
		*plen = rec->length;
		return 0;
	case MS_REC_VMDESC:
		*plen = rec->length;
		w->vmdesc_len = rec->length;
		w->have_vmdesc = true;
		if (nf_vmdesc_at(w, rec))
			return k->e.code;
		return vmdesc_check(w, rec->length);
	default:
		return 0;
	}
}

/* Which exit status an error calls for. */
static int exit_code_of(int err)
{
	switch (err) {
	case 0:
		return DUMP_EXIT_OK;
	case -EBADMSG:
	case -EILSEQ:
	case -ENODATA:
	case -ENOTSUP:
	case -EPROTO:
	case -EOVERFLOW:
	case -ERANGE:
	case -EINVAL:
	case -E2BIG:
	case -EFBIG: /* over a limit */
		return DUMP_EXIT_INVALID;
	default:
		return DUMP_EXIT_IO;
	}
}

/*
 * The walk's verdict (w->err, w->errmsg, w->exit_code), set once a run,
 * from the error that ends it: @e, which has the library's message shape.
 */
static int walk_verdict(struct dump_walk *w, const struct dump_error *e)
{
	w->err = e->code;
	snprintf(w->errmsg, sizeof(w->errmsg), "%s", e->msg);
	w->exit_code = exit_code_of(e->code);
	return w->exit_code;
}

static int walk_fail(struct dump_walk *w, int err, uint64_t offset,
		     const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 4, 5)))
#endif
	;

/* Fail the walk itself (not a payload): @fmt after the offset, if any. */
static int walk_fail(struct dump_walk *w, int err, uint64_t offset,
		     const char *fmt, ...)
{
	struct dump_error e = {0};
	va_list ap;

	va_start(ap, fmt);
	dump_error_vset(&e, err, offset, DUMP_NO_SECTION, NULL, fmt, ap);
	va_end(ap);
	return walk_verdict(w, &e);
}

/* Learn the profile's version and flags from the header, unconsumed. */
static void peek_header(struct dump_walk *w)
{
	struct walker *k = w->priv;
	const uint8_t *d;
	ssize_t n = ms_peek(k->in, &d, 16);

	if (n >= 8 && be32(d) == MS_QEMU_MAGIC)
		w->version = be32(d + 4);
	else if (n >= 12 && d[0] == 0x89 && !memcmp(d + 1, "MSN", 3)) {
		w->version = be16(d + 8);
		w->features = be16(d + 10);
	}
}

static const ms_stream_ops source_ops = {
	.version = MS_STREAM_OPS_VERSION,
	.read = dump_source_read,
};

int dump_walk_run(struct dump_walk *w)
{
	ms_stream_opts so = {.version = MS_STREAM_OPTS_VERSION,
			     .buffer_size = IN_BUFFER_SIZE};
	ms_codec_opts co = {.version = MS_CODEC_OPTS_VERSION};
	struct walker *k;
	ms_record rec;
	uint64_t plen;
	int ret;

	w->page_size = MS_QEMU_RAM_PAGE_SIZE;
	w->last_blk = -1;
	k = calloc(1, sizeof(*k));
	w->priv = k;
	if (!k)
		return walk_fail(w, -ENOMEM, DUMP_NO_OFFSET, "out of memory");
	k->live_key = live_key();
	ret = nf_prepare(w, &co);
	if (ret)
		return w->exit_code;
	if (w->src)
		ret = ms_stream_new_custom(&k->in, &source_ops, w->src,
					   MS_STREAM_READER, &so);
	else
		ret = ms_stream_new_fd(&k->in, w->fd, MS_STREAM_READER, 0, &so);
	if (!ret)
		ret = ms_reader_new(&k->r, k->in, w->no_footers ? &co : NULL);
	if (ret)
		return walk_fail(w, ret, DUMP_NO_OFFSET, "%s",
				 ms_strerror(ret));
	peek_header(w);
	progress_start(w);
	while ((ret = ms_reader_next(k->r, &rec)) == 1) {
		w->profile = ms_reader_profile(k->r);
		w->records++;
		w->count[rec.type]++;
		k->p = ms_reader_payload(k->r);
		k->rec = &rec;
		if (w->on_begin &&
		    (ret = w->on_begin(w, &rec, k->p, w->opaque)) != 0) {
			ret = ms_reader_fail(k->r, ret,
					     "stopped by the output");
			break;
		}
		if (consume(w, &rec, &plen)) {
			w->in_payload = true;
			/* Through the reader: it names offset and section. */
			ret = ms_reader_fail(k->r, k->e.code, "%s", k->e.msg);
			break;
		}
		if (w->on_record)
			w->on_record(w, &rec, plen, w->opaque);
		progress_tick(w);
	}
	progress_end(w);
	w->profile = ms_reader_profile(k->r);
	w->end = ms_stream_tell(k->in);
	if (ret == 0) {
		w->complete = true;
	} else if (w->src && w->src->error.code) {
		/* The input failed (gzip data, a read): its own message, at
		 * the offset reached in the (inflated) stream. */
		walk_fail(w, w->src->error.code, DUMP_NO_OFFSET,
			  "offset 0x%llx of the stream: %s",
			  (unsigned long long)w->end, w->src->error.msg);
		return w->exit_code = dump_source_status(w->src);
	} else {
		w->err = ret;
		dump_escape(w->errmsg, sizeof(w->errmsg),
			    ms_reader_errmsg(k->r));
		if (ms_reader_error_offset(k->r))
			w->end = ms_reader_error_offset(k->r);
	}
	w->exit_code = exit_code_of(w->err);
	return w->exit_code;
}

void dump_walk_free(struct dump_walk *w)
{
	struct walker *k = w->priv;

	if (k) {
		if (k->z_ready)
			inflateEnd(&k->z);
		ms_reader_free(k->r);
		ms_stream_close(k->in);
		free(k->buf);
		free(k->page);
		free(k->live);
		free(k->live_used);
		dump_desc_free(k->desc);
		free(k);
	}
	free(w->blk);
	w->blk = NULL;
	free(w->vmdesc);
	w->vmdesc = NULL;
	w->priv = NULL;
}

bool dump_progress(bool prints_stdout)
{
	return isatty(STDERR_FILENO) &&
	       !(prints_stdout && isatty(STDOUT_FILENO));
}

int dump_walk_trailer(const char *name, int fd, char **json, size_t *len)
{
	struct dump_walk w;
	off_t start = lseek(fd, 0, SEEK_CUR);
	int ret;

	memset(&w, 0, sizeof(w));
	w.name = name;
	w.fd = fd;
	w.keep_vmdesc = true;
	ret = dump_walk_run(&w);
	if (ret) {
		fprintf(stderr, "migstream-dump: %s: %s\n", dump_esc(name),
			w.errmsg);
	} else if (!w.vmdesc) {
		fprintf(stderr,
			"migstream-dump: %s: offset 0x%llx: no VM description "
			"(vmdesc) trailer: the stream ends after its EOF "
			"byte\n",
			dump_esc(name), (unsigned long long)w.end);
		ret = DUMP_EXIT_INVALID;
	} else if (start >= 0 && lseek(fd, start, SEEK_SET) < 0) {
		fprintf(stderr, "migstream-dump: %s: cannot seek: %s\n",
			dump_esc(name), strerror(errno));
		ret = DUMP_EXIT_IO;
	} else {
		*json = w.vmdesc;
		*len = w.vmdesc_len;
		w.vmdesc = NULL;
	}
	dump_walk_free(&w);
	return ret;
}

/*
 * Payloads the caller does not decode, and streams without section
 * footers (see dump.h).  QEMU before 2.4 ends no section with a footer:
 * the walker then delimits every device section with the VM description
 * (the caller's on_payload, or the trailer that ends the file), and the
 * walk must reach exactly that trailer.
 */

int dump_walk_skip(struct dump_walk *w, ms_stream *p, size_t n)
{
	struct walker *k = w->priv;

	if (p != k->p)
		return bad(w, -EINVAL, "payload consumed from another stream");
	return skip(w, n);
}

/* A payload decoded by on_payload, or by the trailer's decoder. */
static int nf_payload(struct dump_walk *w, const ms_section_hdr *h)
{
	struct walker *k = w->priv;
	bool native = w->profile == MS_PROFILE_NATIVE;
	int ret;

	if (w->on_payload)
		ret = w->on_payload(w, k->rec, k->p, w->opaque);
	else
		ret = dump_desc_payload(w, k->rec, k->p, k->desc);
	if (ret == DUMP_PAYLOAD_OPAQUE) {
		if (native)
			return 0; /* its length is known: drained */
		if (w->no_footers)
			return bad(w, -ENOTSUP,
				   "not in the VM description: in a stream "
				   "without section footers only the "
				   "description delimits a section, so its "
				   "end cannot be found");
		return scan_to_footer(w, h->section_id);
	}
	if (ret && !k->e.code)
		ret = bad(w, ret, "section payload: %s", strerror(-ret));
	if (!ret && native)
		ret = expect_payload_end(w, "the described fields");
	return ret;
}

/*
 * The first walk (w->nf_probe 1) stops after the first section: when it
 * is RAM, parsed by its grammar, the byte after it tells whether the
 * stream has footers.  w->nf_probe becomes 3 for a footer, 4 for another
 * record, 2 when it cannot tell (footers are then assumed).
 */
static int nf_probe_section(struct dump_walk *w, const ms_section_hdr *h)
{
	struct walker *k = w->priv;
	const uint8_t *d;
	ssize_t got;

	w->nf_probe = 2;
	if (strcmp(h->idstr, MS_QEMU_RAM_IDSTR) ||
	    h->version_id != MS_QEMU_RAM_VERSION || ram_parse(w))
		return bad(w, -ECANCELED, "first section looked at");
	got = ms_peek(k->p, &d, 5);
	if (got >= 5 && d[0] == MS_REC_FOOTER && be32(d + 1) == h->section_id)
		w->nf_probe = 3;
	else if (got >= 1 && d[0] <= MS_REC_FULL)
		w->nf_probe = 4;
	return bad(w, -ECANCELED, "first section looked at");
}

static int nf_refuse(struct dump_walk *w, int err, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

static int nf_refuse(struct dump_walk *w, int err, const char *fmt, ...)
{
	struct dump_error e = {0};
	va_list ap;

	va_start(ap, fmt);
	dump_error_vset(&e, err, DUMP_NO_OFFSET, DUMP_NO_SECTION, NULL, fmt,
			ap);
	va_end(ap);
	walk_verdict(w, &e);
	return e.code;
}

/*
 * Before the walk: whether the QEMU stream in the regular file w->fd has
 * footers, and if not, the trailer that delimits its sections.
 */
static int nf_prepare(struct dump_walk *w, ms_codec_opts *co)
{
	struct walker *k = w->priv;
	struct dump_walk probe;
	char msg[512], *json = NULL;
	uint8_t magic[4];
	uint64_t pos = 0;
	uint32_t len = 0;
	off_t at, base;
	int ret;

	if (w->nf_probe)
		return 0;
	if (w->src && w->src->gz) {
		/* Inflated input cannot be probed. */
		k->nf_unprobed = true;
		return 0;
	}
	at = lseek(w->fd, 0, SEEK_CUR);
	/* A source has read the magic already: the stream starts before. */
	base = at - (w->src ? (off_t)w->src->nhead : 0);
	k->nf_unprobed = at < 0 || base < 0;
	if (k->nf_unprobed || pread(w->fd, magic, 4, base) != 4 ||
	    be32(magic) != MS_QEMU_MAGIC)
		return 0;
	if (lseek(w->fd, base, SEEK_SET) < 0)
		return nf_refuse(w, -errno, "cannot seek to 0x%llx: %s",
				 (unsigned long long)base, strerror(errno));
	memset(&probe, 0, sizeof(probe));
	probe.name = w->name;
	probe.fd = w->fd;
	probe.nf_probe = 1;
	dump_walk_run(&probe);
	dump_walk_free(&probe);
	if (lseek(w->fd, at, SEEK_SET) < 0)
		return nf_refuse(w, -errno, "cannot seek back to 0x%llx: %s",
				 (unsigned long long)at, strerror(errno));
	if (probe.nf_probe != 4)
		return 0;
	w->no_footers = true;
	co->profile = MS_PROFILE_QEMU;
	co->no_footers = true;
	ret = dump_vmdesc_candidate(w->fd, &json, &len, &pos);
	if (ret < 0)
		return nf_refuse(w, ret, "reading the VM description: %s",
				 strerror(-ret));
	if (ret)
		w->vmdesc_at = pos + 1;
	if (w->on_payload) {
		free(json);
		return 0;
	}
	if (!ret)
		return nf_refuse(
			w, -ENOTSUP,
			"offset 0x%llx: no footer after the first RAM "
			"section: the stream has no section footers (a "
			"QEMU machine type before 2.4) and no VM "
			"description trailer: its device sections "
			"cannot be delimited (state --desc DESC "
			"decodes it with a description)",
			(unsigned long long)probe.end);
	ret = dump_desc_new(&k->desc, json, len, msg, sizeof(msg));
	free(json);
	if (ret)
		return nf_refuse(w, ret,
				 "offset 0x%llx: the stream has no section "
				 "footers, and its VM description, which "
				 "delimits its sections, cannot be used: %s",
				 (unsigned long long)pos, msg);
	return 0;
}

/* The trailer reached must be the one that delimited the sections. */
static int nf_vmdesc_at(struct dump_walk *w, const ms_record *rec)
{
	if (!w->vmdesc_at || rec->offset + 1 == w->vmdesc_at)
		return 0;
	return bad(w, -EBADMSG,
		   "the walk reaches a VM description here, but the trailer "
		   "that ends the file and delimited the sections is at "
		   "offset 0x%llx: that description does not fit the stream",
		   (unsigned long long)(w->vmdesc_at - 1));
}

/*
 * Input that is not a file was not probed: after its first RAM section,
 * a QEMU stream without a footer is refused with the reason.
 */
static int nf_pipe_check(struct dump_walk *w, const ms_section_hdr *h)
{
	struct walker *k = w->priv;
	const uint8_t *d;
	ssize_t got;

	if (w->profile != MS_PROFILE_QEMU) {
		k->nf_unprobed = false;
		return 0;
	}
	got = ms_peek(k->p, &d, 5);
	if (got >= 5 && d[0] == MS_REC_FOOTER && be32(d + 1) == h->section_id) {
		k->nf_unprobed = false;
		return 0;
	}
	if (got < 1 || d[0] > MS_REC_FULL)
		return 0; /* the reader names what it finds */
	return bad(w, -ENOTSUP,
		   "no footer after the first RAM section (0x%02x follows): "
		   "a stream of a QEMU machine type before 2.4, whose "
		   "sections only its VM description delimits, can be read "
		   "from a regular file only, not from a pipe",
		   d[0]);
}
