/* SPDX-License-Identifier: MIT */
/*
 * The pull parser of both profiles.  It checks everything the grammar
 * allows and names the byte offset, the section and what was expected in
 * every error.  Nothing it allocates depends on a length read from the
 * stream beyond the documented limits.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "stream-impl.h"

const uint8_t ms__native_magic[8] = {0x89, 'M',	 'S',  'N',
				     '\r', '\n', 0x1a, '\n'};

enum rstate { R_START, R_BODY, R_AFTER_EOF, R_AFTER_VMDESC, R_DONE };

/* What the last record left for the caller to read. */
enum ropen { O_NONE, O_SECTION, O_CONFIG, O_COMMAND, O_VMDESC };

struct sec {
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
	ms_profile profile;
	enum rstate state;
	enum ropen open;
	int err;
	uint64_t err_off;
	uint64_t index;
	ms_section_hdr cur; /* the section last seen (for messages) */
	bool have_cur;
	bool want_footer;
	size_t max_vmdesc;
	/* Section table: a balanced tree on the id (see sec_find()). */
	struct sec *secs;
	size_t nsecs, capsecs;
	uint32_t sec_root;
	uint64_t table_steps; /* entries visited, for the tests */
	/* Payload of the current element. */
	ms_stream *window;	/* QEMU: commands and the trailer */
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
	char errmsg[640];
};

/*
 * Errors.
 */

static int rvfail(ms_reader *r, int err, uint64_t off, const char *fmt,
		  va_list ap)
#if defined(__GNUC__)
	__attribute__((format(printf, 4, 0)))
#endif
	;

static int rvfail(ms_reader *r, int err, uint64_t off, const char *fmt,
		  va_list ap)
{
	int n;

	if (r->err)
		return r->err;
	r->err = err < 0 ? err : -EBADMSG;
	r->err_off = off;
	if (r->have_cur)
		n = snprintf(r->errmsg, sizeof(r->errmsg),
			     "offset 0x%llx: section %u '%s': ",
			     (unsigned long long)off, r->cur.section_id,
			     r->cur.idstr);
	else
		n = snprintf(r->errmsg, sizeof(r->errmsg),
			     "offset 0x%llx: ", (unsigned long long)off);
	if (n < 0 || (size_t)n >= sizeof(r->errmsg))
		n = 0;
	vsnprintf(r->errmsg + n, sizeof(r->errmsg) - (size_t)n, fmt, ap);
	return r->err;
}

static int rfail(ms_reader *r, int err, uint64_t off, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 4, 5)))
#endif
	;

static int rfail(ms_reader *r, int err, uint64_t off, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rvfail(r, err, off, fmt, ap);
	va_end(ap);
	return r->err;
}

int ms_reader_fail(ms_reader *r, int err, const char *fmt, ...)
{
	va_list ap;
	uint64_t off;

	assert(r);
	off = ms_stream_tell(r->s);
	va_start(ap, fmt);
	rvfail(r, err, off, fmt, ap);
	va_end(ap);
	return r->err;
}

/* Turn an error of stream @s into the reader's, located at @off. */
static int rstream_at(ms_reader *r, ms_stream *s, uint64_t off,
		      const char *what)
{
	int err = ms_stream_error(s);

	if (!err)
		return 0;
	if (err == -ENODATA)
		return rfail(r, err, off, "stream truncated in %s: %s", what,
			     ms_stream_errmsg(s));
	return rfail(r, err, off, "%s: %s", what, ms_stream_errmsg(s));
}

/* Turn an error of the input stream into the reader's. */
static int rstream(ms_reader *r, ms_stream *s, const char *what)
{
	return rstream_at(r, s, ms_stream_error_offset(s), what);
}

int ms_reader_error(const ms_reader *r)
{
	return r->err;
}

const char *ms_reader_errmsg(const ms_reader *r)
{
	return r->err ? r->errmsg : "";
}

uint64_t ms_reader_error_offset(const ms_reader *r)
{
	return r->err ? r->err_off : 0;
}

ms_profile ms_reader_profile(const ms_reader *r)
{
	return r->profile;
}

const char *ms_record_type_name(int type)
{
	switch (type) {
	case MS_REC_EOF:
		return "EOF";
	case MS_REC_START:
		return "START";
	case MS_REC_PART:
		return "PART";
	case MS_REC_END:
		return "END";
	case MS_REC_FULL:
		return "FULL";
	case MS_REC_SUBSECTION:
		return "SUBSECTION";
	case MS_REC_VMDESC:
		return "VMDESC";
	case MS_REC_CONFIGURATION:
		return "CONFIGURATION";
	case MS_REC_COMMAND:
		return "COMMAND";
	case MS_REC_FOOTER:
		return "FOOTER";
	default:
		return "unknown";
	}
}

/*
 * The section table: an AVL tree in one array, linked by 1-based indices
 * (0: none) so that the array can grow by realloc.  The ids come from the
 * stream, so whoever wrote it chooses them: the multiplicative hash this
 * replaces sent every multiple of 2^17 to one slot (quadratic time), and
 * any hash, keyed or mixed, can still be driven into long probes by ids
 * chosen adaptively.  A balanced tree has no bad input: whatever the ids,
 * a lookup or insertion visits at most 1.45 log2(n + 2) entries, under 24
 * for MS_MAX_SECTIONS.  Entries are never removed.
 */
#define SEC(r, i) (&(r)->secs[(i)-1])

static int sec_height(const ms_reader *r, uint32_t i)
{
	return i ? SEC(r, i)->height : 0;
}

static void sec_fix_height(ms_reader *r, uint32_t i)
{
	int hl = sec_height(r, SEC(r, i)->left);
	int hr = sec_height(r, SEC(r, i)->right);

	SEC(r, i)->height = (uint8_t)((hl > hr ? hl : hr) + 1);
}

/* Rotate the subtree at @i (left: its right child rises); returns the
 * subtree's new root. */
static uint32_t sec_rotate(ms_reader *r, uint32_t i, bool left)
{
	struct sec *x = SEC(r, i), *y;
	uint32_t c = left ? x->right : x->left;

	y = SEC(r, c);
	if (left) {
		x->right = y->left;
		y->left = i;
	} else {
		x->left = y->right;
		y->right = i;
	}
	sec_fix_height(r, i);
	sec_fix_height(r, c);
	return c;
}

static uint32_t sec_rebalance(ms_reader *r, uint32_t i)
{
	struct sec *x = SEC(r, i);
	int d;

	sec_fix_height(r, i);
	d = sec_height(r, x->left) - sec_height(r, x->right);
	if (d > 1) {
		const struct sec *l = SEC(r, x->left);

		if (sec_height(r, l->left) < sec_height(r, l->right))
			x->left = sec_rotate(r, x->left, true);
		return sec_rotate(r, i, false);
	}
	if (d < -1) {
		const struct sec *rt = SEC(r, x->right);

		if (sec_height(r, rt->right) < sec_height(r, rt->left))
			x->right = sec_rotate(r, x->right, false);
		return sec_rotate(r, i, true);
	}
	return i;
}

/* Link entry @n into the subtree at @i; returns the subtree's new root.
 * The recursion is as deep as the tree: under 24 levels. */
static uint32_t sec_insert(ms_reader *r, uint32_t i, uint32_t n)
{
	uint32_t sub;

	if (!i)
		return n;
	r->table_steps++;
	if (SEC(r, n)->id < SEC(r, i)->id) {
		sub = sec_insert(r, SEC(r, i)->left, n);
		SEC(r, i)->left = sub;
	} else {
		sub = sec_insert(r, SEC(r, i)->right, n);
		SEC(r, i)->right = sub;
	}
	return sec_rebalance(r, i);
}

static struct sec *sec_find(ms_reader *r, uint32_t id)
{
	uint32_t i = r->sec_root;

	while (i) {
		struct sec *sc = SEC(r, i);

		r->table_steps++;
		if (sc->id == id)
			return sc;
		i = id < sc->id ? sc->left : sc->right;
	}
	return NULL;
}

/* Add section @id, which sec_find() did not find. */
static struct sec *sec_add(ms_reader *r, uint32_t id, uint64_t off)
{
	struct sec *sc;
	uint32_t n;

	if (r->nsecs >= MS_MAX_SECTIONS) {
		rfail(r, -EFBIG, off, "more than %u sections", MS_MAX_SECTIONS);
		return NULL;
	}
	if (r->nsecs == r->capsecs) {
		size_t cap = r->capsecs ? r->capsecs * 2 : 64;
		struct sec *g;

		if (cap > MS_MAX_SECTIONS)
			cap = MS_MAX_SECTIONS;
		g = ms__realloc(r->a, r->secs, cap * sizeof(*g));
		if (!g) {
			rfail(r, -ENOMEM, off, "out of memory");
			return NULL;
		}
		r->secs = g;
		r->capsecs = cap;
	}
	n = (uint32_t)++r->nsecs;
	sc = SEC(r, n);
	memset(sc, 0, sizeof(*sc));
	sc->id = id;
	sc->height = 1;
	r->sec_root = sec_insert(r, r->sec_root, n);
	return sc;
}

/* Validate and record a section header; fills rec->section. */
static int section_seen(ms_reader *r, ms_section_hdr *h, uint64_t off)
{
	struct sec *sc = sec_find(r, h->section_id);

	r->cur = *h;
	r->have_cur = true;
	switch (h->type) {
	case MS_REC_START:
	case MS_REC_FULL:
		/* A START or FULL would silently end the open START. */
		if (sc && sc->live)
			return rfail(r, -EBADMSG, off,
				     "%s of a section already started (its "
				     "START has no END yet)",
				     ms_record_type_name(h->type));
		if (!sc)
			sc = sec_add(r, h->section_id, off);
		if (!sc)
			return r->err;
		sc->live = h->type == MS_REC_START;
		sc->instance_id = h->instance_id;
		sc->version_id = h->version_id;
		memcpy(sc->idstr, h->idstr, sizeof(sc->idstr));
		return 0;
	default:
		if (!sc || !sc->live) {
			strcpy(r->cur.idstr, "?");
			return rfail(r, -EBADMSG, off,
				     "%s for a section that was not started",
				     ms_record_type_name(h->type));
		}
		memcpy(h->idstr, sc->idstr, sizeof(h->idstr));
		h->instance_id = sc->instance_id;
		h->version_id = sc->version_id;
		r->cur = *h;
		if (h->type == MS_REC_END)
			sc->live = false;
		return 0;
	}
}

/*
 * Creation.
 */

int ms_reader_new(ms_reader **out, ms_stream *s, const ms_codec_opts *opts)
{
	ms_codec_opts o;
	ms_reader *r;
	int ret;

	if (!out || !s || ms_stream_mode_of(s) != MS_STREAM_READER)
		return -EINVAL;
	ret = ms__codec_opts_apply(&o, opts, true);
	if (ret)
		return ret;
	r = ms__malloc(o.allocator, sizeof(*r));
	if (!r)
		return -ENOMEM;
	memset(r, 0, sizeof(*r));
	r->s = s;
	r->o = o;
	r->a = o.allocator;
	r->max_vmdesc = o.max_vmdesc ? o.max_vmdesc : MS_DEFAULT_MAX_VMDESC;
	r->profile = MS_PROFILE_AUTO;
	*out = r;
	return 0;
}

static void close_payload(ms_reader *r)
{
	ms_stream_close(r->window);
	r->window = NULL;
	ms_stream_close(r->dead_window);
	r->dead_window = NULL;
	ms_stream_close(r->payload);
	r->payload = NULL;
}

void ms_reader_free(ms_reader *r)
{
	if (!r)
		return;
	close_payload(r);
	if (r->z_init)
		inflateEnd(&r->z);
	ms__free(r->a, r->secs);
	ms__free(r->a, r->rbuf);
	ms__free(r->a, r->dbuf);
	ms__free(r->a, r);
}

ms_stream *ms_reader_payload(ms_reader *r)
{
	assert(r);
	if (r->payload)
		return r->payload;
	if (r->window)
		return r->window;
	return r->s;
}

/*
 * Native profile.
 */

/* Grow a buffer to @need bytes (need is bounded by the caller). */
static int grow(ms_reader *r, uint8_t **buf, size_t *cap, size_t need)
{
	uint8_t *n;

	if (*cap >= need)
		return 0;
	n = ms__realloc(r->a, *buf, need);
	if (!n)
		return rfail(r, -ENOMEM, ms_stream_tell(r->s),
			     "out of memory for a record of %zu bytes", need);
	*buf = n;
	*cap = need;
	return 0;
}

/*
 * Read one whole record and check its CRC.  Returns 1 with the record in
 * r->rbuf, 0 at the clean end of the input, or an error.
 */
static int nat_read(ms_reader *r, uint8_t *type, uint8_t *flags, uint32_t *len,
		    uint64_t *off)
{
	uint8_t hdr[MS__NATIVE_RECORD_HDR], seed[8], crcb[4];
	uint32_t crc, want;
	size_t tail, got, step;
	ssize_t n;

	*off = ms_stream_tell(r->s);
	if (ms_stream_is_eof(r->s))
		return 0;
	if (ms_get_buffer(r->s, hdr, sizeof(hdr)))
		return rstream(r, r->s, "record header");
	*type = hdr[0];
	*flags = hdr[1];
	*len = ms__load_be32(hdr + 2);
	if (*len > MS_NATIVE_MAX_RECORD)
		return rfail(r, -EBADMSG, *off,
			     "record %llu: length %u over the limit of %u",
			     (unsigned long long)r->index, *len,
			     MS_NATIVE_MAX_RECORD);
	/*
	 * Where the whole record is already buffered (memory and feed
	 * readers, small records of the others), it is checked and used in
	 * place: r->rp points into the stream's buffer, which stays as it is
	 * until the next read from r->s.  Otherwise it is copied to rbuf.
	 */
	tail = r->crc_on ? 4 : 0;
	if (*len && ms_stream_available(r->s) >= (size_t)*len + tail &&
	    (r->inplace_feed || !ms__stream_is_feed(r->s))) {
		n = ms_peek(r->s, &r->rp, (size_t)*len + tail);
		if (n < 0 || (size_t)n < (size_t)*len + tail ||
		    ms_skip(r->s, (size_t)*len + tail))
			return rstream_at(r, r->s, *off, "record payload");
		memcpy(crcb, r->rp + *len, tail);
	} else {
		/*
		 * The buffer doubles as the data actually comes, from 64 KiB:
		 * a damaged length announcing megabytes costs at most twice
		 * the bytes behind it.  A record cut short (or a damaged
		 * length running past the end) is located at the record, as
		 * every other damage to it.
		 */
		for (got = 0; got < *len; got += step) {
			size_t cap = r->rcap > got ? r->rcap : 2 * got;

			if (cap < 65536)
				cap = 65536;
			if (cap > *len)
				cap = *len;
			if (grow(r, &r->rbuf, &r->rcap, cap))
				return r->err;
			step = cap - got;
			if (!ms_get_buffer(r->s, r->rbuf + got, step))
				continue;
			if (ms_stream_error(r->s) != -ENODATA)
				return rstream_at(r, r->s, *off,
						  "record payload");
			/* Said of the record, whatever the reads were. */
			return rfail(r, -ENODATA, *off,
				     "stream truncated in record payload: "
				     "record %llu (type 0x%02x) announces %u "
				     "bytes, the stream ends before them",
				     (unsigned long long)r->index, *type, *len);
		}
		if (!r->rbuf && grow(r, &r->rbuf, &r->rcap, 1))
			return r->err;
		r->rp = r->rbuf;
		if (tail && ms_get_buffer(r->s, crcb, 4))
			return rstream_at(r, r->s, *off, "record checksum");
	}
	if (r->crc_on) {
		ms__store_be64(seed, r->index);
		crc = ms__crc32(0, seed, 8);
		crc = ms__crc32(crc, hdr, sizeof(hdr));
		crc = ms__crc32(crc, r->rp, *len);
		want = ms__load_be32(crcb);
		if (crc != want)
			return rfail(r, -EILSEQ, *off,
				     "record %llu (type 0x%02x, %u bytes): "
				     "checksum mismatch: stored 0x%08x, "
				     "computed 0x%08x (corrupt, reordered or "
				     "missing record)",
				     (unsigned long long)r->index, *type, *len,
				     want, crc);
		r->chain_prev = r->chain;
		r->chain = ms__crc32(r->chain, crcb, 4);
	}
	r->index++;
	return 1;
}

/* Peek the type of the next native record without consuming it. */
static int nat_peek_type(ms_reader *r)
{
	const uint8_t *p;
	ssize_t n = ms_peek(r->s, &p, 1);

	if (n < 0)
		return rstream(r, r->s, "record header");
	return n == 0 ? -1 : p[0];
}

/* Decode the DATA record in rbuf into dp/dleft. */
static int nat_data(ms_reader *r, uint8_t flags, uint32_t len, uint64_t off)
{
	uint32_t raw;
	int zr;

	if (flags & ~MS__NFLAG_ZLIB)
		return rfail(r, -ENOTSUP, off, "DATA record with flags 0x%02x",
			     flags);
	if (!(flags & MS__NFLAG_ZLIB)) {
		r->dp = r->rp;
		r->dleft = len;
		return 0;
	}
	if (len < 4)
		return rfail(r, -EBADMSG, off, "compressed DATA of %u bytes",
			     len);
	raw = ms__load_be32(r->rp);
	if (raw > MS_NATIVE_MAX_RECORD)
		return rfail(r, -EBADMSG, off,
			     "compressed DATA expands to %u bytes, over the "
			     "limit of %u",
			     raw, MS_NATIVE_MAX_RECORD);
	if (grow(r, &r->dbuf, &r->dcap, raw ? raw : 1))
		return r->err;
	if (!r->z_init) {
		ms__zstream_init(&r->z, r->a);
		if (inflateInit2(&r->z, -15) != Z_OK)
			return rfail(r, -ENOMEM, off, "cannot start zlib");
		r->z_init = true;
	} else if (inflateReset(&r->z) != Z_OK) {
		return rfail(r, -EIO, off, "cannot reset zlib");
	}
	r->z.next_in = (Bytef *)(uintptr_t)(r->rp + 4);
	r->z.avail_in = len - 4;
	r->z.next_out = r->dbuf;
	r->z.avail_out = raw;
	zr = inflate(&r->z, Z_FINISH);
	if (zr != Z_STREAM_END || r->z.avail_out || r->z.avail_in)
		return rfail(r, -EBADMSG, off,
			     "compressed DATA does not inflate to the %u "
			     "bytes announced (zlib: %s)",
			     raw, r->z.msg ? r->z.msg : "size mismatch");
	r->dp = r->dbuf;
	r->dleft = raw;
	return 0;
}

/* Load the next DATA record of the open element, if there is one. */
static int nat_next_data(ms_reader *r)
{
	uint8_t type, flags;
	uint32_t len;
	uint64_t off;
	int t, ret;

	while (!r->dleft && !r->data_end) {
		t = nat_peek_type(r);
		if (t >= 0 && (t & MS__NREC_OPTIONAL)) {
			/* Optional records may sit between any two records:
			 * check and skip it without ending the payload. */
			ret = nat_read(r, &type, &flags, &len, &off);
			if (ret < 0)
				return ret;
			continue;
		}
		/* Every element is followed by a record (its footer, the
		 * next element, the trailer): the input ending here is a cut
		 * stream, said as such rather than as a short payload. */
		if (t == -1)
			return rfail(r, -ENODATA, ms_stream_tell(r->s),
				     "stream truncated: it ends inside an "
				     "element's payload");
		if (t >= 0 && t != MS__NREC_DATA) {
			r->data_end = true;
			break;
		}
		if (t < 0)
			return t;
		ret = nat_read(r, &type, &flags, &len, &off);
		if (ret <= 0)
			return ret ? ret : 0;
		if (nat_data(r, flags, len, off))
			return r->err;
		if (r->data_total + r->dleft >
		    (r->open == O_VMDESC ? r->data_expect : UINT64_MAX))
			return rfail(r, -EBADMSG, off,
				     "VM description longer than the %llu "
				     "bytes announced",
				     (unsigned long long)r->data_expect);
		r->data_total += r->dleft;
	}
	return r->err;
}

/*
 * Take up to @max bytes of the open element's payload where they lie (the
 * DATA record in the input's buffer or rbuf, or the inflated dbuf; valid
 * until the next take): their number, 0 at its end, or the error.
 */
static ssize_t payload_take(ms_reader *r, const uint8_t **p, size_t max)
{
	size_t n;

	if (nat_next_data(r))
		return r->err;
	n = max < r->dleft ? max : r->dleft;
	*p = r->dp;
	r->dp += n;
	r->dleft -= n;
	return (ssize_t)n;
}

/* The dechunking stream's sink: payload bytes of the open element. */
static ssize_t payload_read(void *opaque, void *buf, size_t len)
{
	const uint8_t *p = NULL;
	ssize_t n = payload_take(opaque, &p, len);

	if (n > 0)
		memcpy(buf, p, (size_t)n);
	return n;
}

/* The same, lent in place: a whole DATA record's bytes at a time. */
static ssize_t payload_borrow(void *opaque, const uint8_t **p)
{
	return payload_take(opaque, p, SIZE_MAX);
}

static const ms_stream_ops payload_ops = {
	MS_STREAM_OPS_VERSION, NULL, payload_read, NULL, NULL,
};

static int nat_open_payload(ms_reader *r, enum ropen what)
{
	ms_stream_opts so = {MS_STREAM_OPTS_VERSION, r->a, 16384, 0, 0};
	int ret;

	r->open = what;
	r->dleft = 0;
	r->data_end = false;
	r->data_total = 0;
	ret = ms__stream_new_borrowing(&r->payload, &payload_ops,
				       payload_borrow, r, &so);
	if (ret)
		return rfail(r, ret, ms_stream_tell(r->s), "out of memory");
	return 0;
}

/* Skip and check what the caller left of the open element's payload. */
static int nat_close_element(ms_reader *r)
{
	uint64_t off = ms_stream_tell(r->s);

	if (r->payload) {
		int perr = ms_stream_error(r->payload);

		/* Reading past the payload is the caller's business; a
		 * reader error behind it is ours and already recorded. */
		if (perr && perr != -ENODATA && !r->err)
			rfail(r, perr, off, "payload: %s",
			      ms_stream_errmsg(r->payload));
		ms_stream_close(r->payload);
		r->payload = NULL;
	}
	if (r->err)
		return r->err;
	while (!r->data_end) {
		r->dleft = 0;
		if (nat_next_data(r))
			return r->err;
	}
	r->dleft = 0;
	if (r->open == O_VMDESC && r->data_total != r->data_expect)
		return rfail(r, -EBADMSG, off,
			     "VM description of %llu bytes, %llu announced",
			     (unsigned long long)r->data_total,
			     (unsigned long long)r->data_expect);
	r->open = O_NONE;
	return 0;
}

static int nat_header(ms_reader *r)
{
	uint8_t h[MS__NATIVE_HEADER_SIZE];
	uint16_t ver, flags;

	r->start = ms_stream_tell(r->s);
	if (ms_get_buffer(r->s, h, sizeof(h)))
		return rstream(r, r->s, "file header");
	if (memcmp(h, ms__native_magic, 8))
		return rfail(r, -EBADMSG, r->start,
			     "not a migstream native stream (bad magic)");
	if (ms__load_be32(h + 12) != ms__crc32(0, h, 12))
		return rfail(r, -EILSEQ, r->start,
			     "file header checksum mismatch");
	ver = ms__load_be16(h + 8);
	flags = ms__load_be16(h + 10);
	if (ver != MS__NATIVE_VERSION)
		return rfail(r, -ENOTSUP, r->start,
			     "native format version %u, this reader knows %u",
			     ver, MS__NATIVE_VERSION);
	if (flags & MS__NFEAT_MANDATORY_MASK & ~MS__NFEAT_KNOWN)
		return rfail(r, -ENOTSUP, r->start,
			     "unknown mandatory features 0x%04x", flags);
	r->crc_on = flags & MS__NFEAT_CRC32;
	r->footers = flags & MS__NFEAT_FOOTERS;
	r->profile = MS_PROFILE_NATIVE;
	r->state = R_BODY;
	return 0;
}

/* A little cursor over a record payload. */
struct cur {
	const uint8_t *p;
	size_t n;
	bool bad;
};

static uint32_t cur_be32(struct cur *c)
{
	uint32_t v;

	if (c->n < 4) {
		c->bad = true;
		return 0;
	}
	v = ms__load_be32(c->p);
	c->p += 4;
	c->n -= 4;
	return v;
}

static uint16_t cur_be16(struct cur *c)
{
	uint16_t v;

	if (c->n < 2) {
		c->bad = true;
		return 0;
	}
	v = ms__load_be16(c->p);
	c->p += 2;
	c->n -= 2;
	return v;
}

static void cur_cstr(struct cur *c, char *out)
{
	size_t len;

	out[0] = '\0';
	if (c->n < 1 || c->n - 1 < c->p[0]) {
		c->bad = true;
		return;
	}
	len = c->p[0];
	memcpy(out, c->p + 1, len);
	out[len] = '\0';
	c->p += 1 + len;
	c->n -= 1 + len;
}

static int config_name(ms_reader *r, ms_stream *p, ms_record *rec);

static int nat_next(ms_reader *r, ms_record *rec)
{
	bool first;
	uint8_t type, flags;
	uint32_t len;
	uint64_t off;
	struct cur c;
	int ret;

	/* A command's payload points into rbuf: drop it before reading on. */
	ms_stream_close(r->window);
	r->window = NULL;
	for (;;) {
		if (r->open != O_NONE && nat_close_element(r))
			return r->err;
		ret = nat_read(r, &type, &flags, &len, &off);
		if (ret < 0)
			return ret;
		if (ret == 0)
			return rfail(r, -ENODATA, off,
				     "stream truncated: it ends without a "
				     "trailer record");
		memset(rec, 0, sizeof(*rec));
		rec->offset = off;
		rec->index = r->index - 1;
		rec->type = type;
		c.p = r->rp;
		c.n = len;
		c.bad = false;
		/* No known type has bit 7: an optional record is unknown, and
		 * allowed between any two records (its CRC was checked). */
		if (type & MS__NREC_OPTIONAL)
			continue;
		first = !r->seen_mandatory;
		r->seen_mandatory = true;
		/* Only a section's own footer is reported as that section's. */
		if (type != MS_REC_FOOTER && !r->want_footer)
			r->have_cur = false;
		if (flags && type != MS__NREC_DATA)
			return rfail(r, -EBADMSG, off,
				     "record type 0x%02x with flags 0x%02x",
				     type, flags);
		if (r->want_footer && type != MS_REC_FOOTER)
			return rfail(r, -EBADMSG, off,
				     "footer for section %u expected, found "
				     "record type 0x%02x",
				     r->cur.section_id, type);
		if (r->state == R_AFTER_EOF && type != MS_REC_VMDESC &&
		    type != MS__NREC_TRAILER && !(type & MS__NREC_OPTIONAL))
			return rfail(r, -EBADMSG, off,
				     "record type 0x%02x after EOF", type);
		if (r->state == R_AFTER_VMDESC && type != MS__NREC_TRAILER &&
		    !(type & MS__NREC_OPTIONAL))
			return rfail(r, -EBADMSG, off,
				     "record type 0x%02x after the VM "
				     "description",
				     type);
		switch (type) {
		case MS_REC_START:
		case MS_REC_PART:
		case MS_REC_END:
		case MS_REC_FULL:
			rec->section.type = type;
			rec->section.section_id = cur_be32(&c);
			if (type == MS_REC_START || type == MS_REC_FULL) {
				cur_cstr(&c, rec->section.idstr);
				rec->section.instance_id = cur_be32(&c);
				rec->section.version_id = cur_be32(&c);
			}
			if (c.bad || c.n)
				return rfail(r, -EBADMSG, off,
					     "%s header of %u bytes is "
					     "malformed",
					     ms_record_type_name(type), len);
			if (section_seen(r, &rec->section, off))
				return r->err;
			r->want_footer = r->footers;
			if (nat_open_payload(r, O_SECTION))
				return r->err;
			return 1;
		case MS_REC_FOOTER:
			rec->section.section_id = cur_be32(&c);
			if (c.bad || c.n)
				return rfail(r, -EBADMSG, off,
					     "malformed footer record");
			if (!r->want_footer)
				return rfail(r, -EBADMSG, off,
					     "footer without a section");
			if (rec->section.section_id != r->cur.section_id)
				return rfail(r, -EBADMSG, off,
					     "footer for section %u expected, "
					     "found one for section %u",
					     r->cur.section_id,
					     rec->section.section_id);
			rec->section = r->cur;
			r->want_footer = false;
			r->have_cur = false;
			return 1;
		case MS_REC_CONFIGURATION:
			if (!first || len)
				return rfail(r, -EBADMSG, off,
					     "CONFIGURATION must be the first "
					     "record and empty");
			if (nat_open_payload(r, O_CONFIG))
				return r->err;
			if (config_name(r, r->payload, rec))
				return r->err;
			return 1;
		case MS_REC_COMMAND: {
			int fixed;

			rec->cmd = cur_be16(&c);
			rec->length = cur_be16(&c);
			fixed = ms__command_len(rec->cmd);
			if (c.bad || c.n != rec->length)
				return rfail(r, -EBADMSG, off,
					     "malformed COMMAND record");
			if (fixed == -2 ||
			    (fixed >= 0 && fixed != (int)rec->length))
				return rfail(r, -EBADMSG, off,
					     "command %u with %u bytes of "
					     "payload is not valid",
					     rec->cmd, rec->length);
			ret = ms_stream_new_mem_reader(&r->window, c.p, c.n,
						       NULL);
			if (ret)
				return rfail(r, ret, off, "out of memory");
			r->open = O_NONE;
			return 1;
		}
		case MS_REC_EOF:
			if (len)
				return rfail(r, -EBADMSG, off,
					     "EOF record with a payload");
			if (r->state != R_BODY)
				return rfail(r, -EBADMSG, off, "second EOF");
			r->state = R_AFTER_EOF;
			r->have_cur = false;
			return 1;
		case MS_REC_VMDESC:
			if (r->state != R_AFTER_EOF)
				return rfail(r, -EBADMSG, off,
					     "VM description before EOF");
			rec->length = cur_be32(&c);
			if (c.bad || c.n)
				return rfail(r, -EBADMSG, off,
					     "malformed VMDESC record");
			if (rec->length > r->max_vmdesc)
				return rfail(r, -EFBIG, off,
					     "VM description of %u bytes, over "
					     "the limit of %zu",
					     rec->length, r->max_vmdesc);
			if (nat_open_payload(r, O_VMDESC))
				return r->err;
			r->data_expect = rec->length;
			r->state = R_AFTER_VMDESC;
			return 1;
		case MS__NREC_TRAILER: {
			uint64_t count, bytes;
			uint32_t chain;

			if (r->state == R_BODY)
				return rfail(r, -EBADMSG, off,
					     "trailer before EOF");
			if (len != 20)
				return rfail(r, -EBADMSG, off,
					     "malformed trailer record");
			count = ms__load_be64(r->rp);
			bytes = ms__load_be64(r->rp + 8);
			chain = ms__load_be32(r->rp + 16);
			if (count != rec->index)
				return rfail(r, -EBADMSG, off,
					     "trailer counts %llu records, "
					     "%llu were read",
					     (unsigned long long)count,
					     (unsigned long long)rec->index);
			if (bytes != off - r->start)
				return rfail(
					r, -EBADMSG, off,
					"trailer at byte %llu says %llu",
					(unsigned long long)(off - r->start),
					(unsigned long long)bytes);
			if (r->crc_on) {
				/* The chain now includes the trailer's CRC;
				 * the stored value covers those before. */
				if (chain != r->chain_prev)
					return rfail(
						r, -EILSEQ, off,
						"stream checksum mismatch");
			} else if (chain) {
				return rfail(r, -EBADMSG, off,
					     "stream checksum set without "
					     "checksums");
			}
			if (!ms_stream_is_eof(r->s))
				return rstream(r, r->s, "after trailer")
					       ? r->err
					       : rfail(r, -EBADMSG,
						       ms_stream_tell(r->s),
						       "data after the "
						       "trailer");
			r->state = R_DONE;
			return 0;
		}
		case MS__NREC_DATA:
			return rfail(r, -EBADMSG, off,
				     "DATA record outside a section");
		default:
			if (type & MS__NREC_OPTIONAL)
				continue; /* checked and skipped */
			return rfail(r, -ENOTSUP, off,
				     "unknown mandatory record type 0x%02x "
				     "(written by a newer migstream?)",
				     type);
		}
	}
}

/*
 * CONFIGURATION (both profiles): be32 length and the machine name, then
 * subsections that the caller may read; those it leaves are skipped.
 */
static int config_name(ms_reader *r, ms_stream *p, ms_record *rec)
{
	/* Native: @p is the payload stream, whose offsets are not the
	 * input's: name the record, or where its DATA ended. */
	bool native = p != r->s;
	uint64_t off = native ? rec->offset : ms_stream_tell(p);
	uint32_t len;

	r->open = O_CONFIG;
	if (ms_get_be32(p, &len))
		goto out_stream;
	if (len > MS_COUNTED_STRING_MAX)
		return rfail(r, -EBADMSG, off,
			     "machine type name of %u bytes (at most %u)", len,
			     MS_COUNTED_STRING_MAX);
	if (ms_get_buffer(p, rec->machine, len))
		goto out_stream;
	rec->machine[len] = '\0';
	if (memchr(rec->machine, '\0', len))
		return rfail(r, -EBADMSG, off,
			     "machine type name contains a NUL byte");
	rec->length = len;
	return 0;

out_stream:
	return native ? rstream_at(r, p, ms_stream_tell(r->s), "configuration")
		      : rstream(r, p, "configuration");
}

/* Skip the configuration's subsections the caller did not read. */
static int config_skip(ms_reader *r, ms_stream *p)
{
	char name[MS_COUNTED_STRING_MAX + 1];
	const uint8_t *b;
	uint64_t off;
	uint32_t ver, n, i;

	for (;;) {
		ssize_t k = ms_peek(p, &b, 1);

		if (k < 0)
			return rstream(r, p, "configuration");
		if (k == 0 || b[0] != MS_REC_SUBSECTION)
			return 0;
		off = ms_stream_tell(p);
		ms_skip(p, 1);
		ms_get_counted_string(p, name);
		ms_get_be32(p, &ver);
		if (ms_stream_error(p))
			return rstream(r, p, "configuration subsection");
		if (!strcmp(name, "configuration/target-page-bits")) {
			ms_skip(p, 4);
		} else if (!strcmp(name, "configuration/capabilities")) {
			ms_get_be32(p, &n);
			for (i = 0; i < n && !ms_stream_error(p); i++)
				ms_get_counted_string(p, name);
		} else if (!strcmp(name, "configuration/uuid")) {
			ms_skip(p, 16);
		} else {
			return rfail(r, -EBADMSG, off,
				     "unknown configuration subsection '%s'",
				     name);
		}
		if (ms_stream_error(p))
			return rstream(r, p, "configuration subsection");
	}
}

/*
 * QEMU profile.
 */

static int qemu_header(ms_reader *r, uint32_t magic)
{
	uint32_t ver;

	if (magic != MS_QEMU_MAGIC)
		return rfail(r, -EBADMSG, 0,
			     "not a migration stream: magic 0x%08x, expected "
			     "0x%08x (QEVM) or a migstream native header",
			     magic, MS_QEMU_MAGIC);
	if (ms_get_be32(r->s, &ver))
		return rstream(r, r->s, "file header");
	if (ver != MS_QEMU_VERSION)
		return rfail(r, -ENOTSUP, 4,
			     "QEMU stream version %u, only %u is supported%s",
			     ver, MS_QEMU_VERSION,
			     ver == 2 ? " (v2 is obsolete)" : "");
	r->profile = MS_PROFILE_QEMU;
	r->state = R_BODY;
	return 0;
}

static int qemu_next(ms_reader *r, ms_record *rec)
{
	uint64_t off;
	uint8_t type;
	int ret;

	if (r->window) {
		/* The window reads no further than its end: skip the rest. */
		uint64_t unread = ms__substream_left(r->window);

		/* Skip first: a fed load may retry this call from a
		 * snapshot that still holds the window. */
		if (unread && ms_skip(r->s, unread))
			return rstream(r, r->s, "skipping a payload");
		if (r->defer_free) {
			ms_stream_close(r->dead_window);
			r->dead_window = r->window;
		} else {
			ms_stream_close(r->window);
		}
		r->window = NULL;
		if (r->state == R_AFTER_VMDESC) {
			if (ms__stream_is_starved(r->s))
				return rfail(r, -EAGAIN, ms_stream_tell(r->s),
					     "waiting for the end of the data");
			if (!ms_stream_is_eof(r->s))
				return ms_stream_error(r->s)
					       ? rstream(r, r->s, "trailer")
					       : rfail(r, -EBADMSG,
						       ms_stream_tell(r->s),
						       "data after the VM "
						       "description");
			r->state = R_DONE;
			return 0;
		}
	}
	if (r->open == O_CONFIG) {
		if (config_skip(r, r->s))
			return r->err;
		r->open = O_NONE;
	}
	off = ms_stream_tell(r->s);
	memset(rec, 0, sizeof(*rec));
	rec->offset = off;
	rec->index = r->index;
	if (r->want_footer) {
		uint32_t id;

		/* The caller's payload parse may have run out of data. */
		if (ms_stream_error(r->s))
			return rstream(r, r->s, "section payload");
		if (ms_get_u8(r->s, &type))
			return rstream(r, r->s, "footer");
		if (type != MS_REC_FOOTER)
			return rfail(r, -EBADMSG, off,
				     "footer for section %u expected, found "
				     "0x%02x",
				     r->cur.section_id, type);
		if (ms_get_be32(r->s, &id))
			return rstream(r, r->s, "footer");
		if (id != r->cur.section_id)
			return rfail(r, -EBADMSG, off,
				     "footer for section %u expected, found "
				     "one for section %u",
				     r->cur.section_id, id);
		r->want_footer = false;
		r->index++;
		rec->type = MS_REC_FOOTER;
		rec->section = r->cur;
		/* Errors after a footer no longer name its section. */
		r->have_cur = false;
		return 1;
	}
	if (ms_stream_is_eof(r->s)) {
		if (ms_stream_error(r->s))
			return rstream(r, r->s, "record");
		if (r->state == R_AFTER_EOF) {
			r->state = R_DONE;
			return 0;
		}
		return rfail(r, -ENODATA, off,
			     "stream truncated: it ends before EOF");
	}
	if (ms_get_u8(r->s, &type))
		return rstream(r, r->s, "record");
	rec->type = type;
	r->index++;
	if (r->state == R_AFTER_EOF && type != MS_REC_VMDESC)
		return rfail(r, -EBADMSG, off,
			     "0x%02x after EOF: expected the VM description "
			     "(0x06) or the end of the stream",
			     type);
	switch (type) {
	case MS_REC_CONFIGURATION:
		if (rec->index != 0 || r->o.no_configuration)
			return rfail(r, -EBADMSG, off,
				     "unexpected CONFIGURATION");
		return config_name(r, r->s, rec) ? r->err : 1;
	case MS_REC_START:
	case MS_REC_FULL:
	case MS_REC_PART:
	case MS_REC_END:
		rec->section.type = type;
		ms_get_be32(r->s, &rec->section.section_id);
		if (type == MS_REC_START || type == MS_REC_FULL) {
			ms_get_counted_string(r->s, rec->section.idstr);
			ms_get_be32(r->s, &rec->section.instance_id);
			ms_get_be32(r->s, &rec->section.version_id);
		}
		if (ms_stream_error(r->s))
			return rstream(r, r->s, "section header");
		if (section_seen(r, &rec->section, off))
			return r->err;
		r->want_footer = !r->o.no_footers;
		r->open = O_SECTION;
		return 1;
	case MS_REC_COMMAND: {
		uint64_t plen;
		uint16_t clen;
		int fixed;

		ms_get_be16(r->s, &rec->cmd);
		ms_get_be16(r->s, &clen);
		if (ms_stream_error(r->s))
			return rstream(r, r->s, "command");
		rec->length = clen;
		fixed = ms__command_len(rec->cmd);
		if (fixed == -2)
			return rfail(r, -EBADMSG, off, "unknown command %u",
				     rec->cmd);
		if (fixed >= 0 && fixed != (int)rec->length)
			return rfail(r, -EBADMSG, off,
				     "command %u has %u bytes of payload, "
				     "%d expected",
				     rec->cmd, rec->length, fixed);
		plen = rec->length;
		ret = ms__substream_new(&r->window, r->s, plen, r->a);
		if (ret)
			return rfail(r, ret, off, "out of memory");
		return 1;
	}
	case MS_REC_EOF:
		r->state = R_AFTER_EOF;
		r->have_cur = false;
		return 1;
	case MS_REC_VMDESC: {
		uint32_t len;

		if (r->state != R_AFTER_EOF || r->o.no_vmdesc)
			return rfail(r, -EBADMSG, off,
				     "unexpected VM description");
		if (ms_get_be32(r->s, &len))
			return rstream(r, r->s, "VM description");
		if (len > r->max_vmdesc)
			return rfail(r, -EFBIG, off,
				     "VM description of %u bytes, over the "
				     "limit of %zu",
				     len, r->max_vmdesc);
		rec->length = len;
		ret = ms__substream_new(&r->window, r->s, len, r->a);
		if (ret)
			return rfail(r, ret, off, "out of memory");
		r->state = R_AFTER_VMDESC;
		return 1;
	}
	case MS_REC_FOOTER:
		return rfail(r, -EBADMSG, off, "footer without a section");
	default:
		return rfail(r, -EBADMSG, off, "unknown record type 0x%02x",
			     type);
	}
}

int ms_reader_next(ms_reader *r, ms_record *rec)
{
	const uint8_t *p;
	ssize_t n;

	assert(r && rec);
	if (r->err)
		return r->err;
	if (r->state == R_DONE)
		return 0;
	if (r->state == R_START) {
		n = ms_peek(r->s, &p, 8);
		if (n < 0)
			return rstream(r, r->s, "file header");
		if (n < 8)
			return rfail(r, -ENODATA, 0,
				     "stream of %zd bytes is too short for a "
				     "file header",
				     n);
		if (!memcmp(p, ms__native_magic, 8) &&
		    r->o.profile != MS_PROFILE_QEMU) {
			if (nat_header(r))
				return r->err;
		} else if (r->o.profile != MS_PROFILE_NATIVE) {
			uint32_t magic;

			ms_get_be32(r->s, &magic);
			if (qemu_header(r, magic))
				return r->err;
		} else {
			return rfail(r, -EBADMSG, 0,
				     "not a migstream native stream (bad "
				     "magic)");
		}
	}
	if (r->profile == MS_PROFILE_NATIVE)
		return nat_next(r, rec);
	return qemu_next(r, rec);
}

/*
 * For the load driver's fed loads: a copy of the reader's state taken
 * before a call to ms_reader_next() that may run out of fed data, put
 * back if it did.  Only the QEMU profile needs it (a native element is
 * loaded once complete), and its ms_reader_next() changes no pointer
 * before the point where data can run out.
 */
int ms__reader_snapshot_new(ms_reader *r, void **snap)
{
	*snap = ms__malloc(r->a, sizeof(*r));
	if (!*snap)
		return -ENOMEM;
	r->defer_free = true;
	return 0;
}

/* After a successful ms_reader_next(): nothing can revive a closed
 * window any more. */
void ms__reader_commit(ms_reader *r)
{
	ms_stream_close(r->dead_window);
	r->dead_window = NULL;
}

void ms__reader_snapshot_free(const ms_reader *r, void *snap)
{
	ms__free(r->a, snap);
}

void *ms__reader_snapshot(const ms_reader *r, void *snap)
{
	memcpy(snap, r, sizeof(*r));
	return snap;
}

void ms__reader_restore(ms_reader *r, const void *snap)
{
	memcpy(r, snap, sizeof(*r));
}

uint64_t ms__reader_table_steps(const ms_reader *r)
{
	return r->table_steps;
}

void ms__reader_inplace_feed(ms_reader *r)
{
	r->inplace_feed = true;
}

/* Bytes of CRC after each native record (0 or 4). */
unsigned ms__reader_native_crc(const ms_reader *r)
{
	return r->crc_on ? 4 : 0;
}
