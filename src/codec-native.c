/* SPDX-License-Identifier: MIT */
/*
 * The native profile (docs/FORMAT.md): a header with feature bits, then
 * records of u8 type, u8 flags, be32 length, the payload and (with the
 * CRC feature) a CRC-32 seeded with the record's index, and at the end a
 * trailer that counts the records and chains their CRCs.  Section
 * payloads are written through a chunking stream whose flushes become
 * DATA records, compressed with one long-lived z_stream when asked, and
 * read back through a dechunking stream.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "codec.h"

/*
 * Writing.
 */

/* Write one record: header, the payload parts, CRC. */
static int native_record(ms_writer *w, uint8_t type, uint8_t flags,
			 const struct iovec *parts, int nparts)
{
	/* The CRC's seed (the record index, be64) and the header, side by
	 * side so that one CRC call covers both. */
	uint8_t sh[8 + MS__NATIVE_RECORD_HDR], tail[4];
	uint8_t *hdr = sh + 8;
	size_t len = 0;
	uint32_t crc;
	int i;

	for (i = 0; i < nparts; i++)
		len += parts[i].iov_len;
	if (len > MS_NATIVE_MAX_RECORD)
		return ms__writer_fail(w, -EFBIG, "record of %zu bytes", len);
	hdr[0] = type;
	hdr[1] = flags;
	ms__store_be32(hdr + 2, (uint32_t)len);
	ms_put_buffer(w->s, hdr, MS__NATIVE_RECORD_HDR);
	for (i = 0; i < nparts; i++)
		ms_put_buffer(w->s, parts[i].iov_base, parts[i].iov_len);
	if (w->crc_on) {
		ms__store_be64(sh, w->index);
		crc = ms__crc32(0, sh, sizeof(sh));
		for (i = 0; i < nparts; i++)
			crc = ms__crc32(crc, parts[i].iov_base,
					parts[i].iov_len);
		ms__store_be32(tail, crc);
		ms_put_buffer(w->s, tail, sizeof(tail));
		w->chain = ms__crc32(w->chain, tail, sizeof(tail));
	}
	w->index++;
	return ms__writer_check(w);
}

static int native_record_buf(ms_writer *w, uint8_t type, const void *buf,
			     size_t len)
{
	struct iovec v;

	v.iov_base = (void *)(uintptr_t)buf;
	v.iov_len = len;
	return native_record(w, type, 0, &v, len ? 1 : 0);
}

/* Deflate @take bytes of @iov into w->zbuf; returns the size or 0. */
static size_t deflate_chunk(ms_writer *w, const struct iovec *iov, int cnt,
			    size_t take)
{
	size_t left = take;
	int i, zr;

	if (deflateReset(&w->z) != Z_OK)
		return 0;
	w->z.next_out = w->zbuf + 4;
	w->z.avail_out = (uInt)(w->zcap - 4);
	for (i = 0; i < cnt && left; i++) {
		size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;

		w->z.next_in = (Bytef *)iov[i].iov_base;
		w->z.avail_in = (uInt)n;
		left -= n;
		zr = deflate(&w->z, left ? Z_NO_FLUSH : Z_FINISH);
		if (zr != Z_OK && zr != Z_STREAM_END)
			return 0;
	}
	if (w->z.avail_in || left)
		return 0;
	return w->zcap - 4 - w->z.avail_out;
}

/* The chunking stream's sink: one DATA record per flush of the payload. */
static ssize_t chunk_writev(void *opaque, const struct iovec *iov, int cnt)
{
	ms_writer *w = opaque;
	size_t total = 0, take, zlen = 0;
	struct iovec parts[MS_STREAM_MAX_IOV];
	int i, n = 0;

	for (i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	take = total < w->chunk ? total : w->chunk;
	if (w->o.compress_level > 0) {
		zlen = deflate_chunk(w, iov, cnt, take);
		if (zlen && zlen + 4 < take) {
			struct iovec z;

			ms__store_be32(w->zbuf, (uint32_t)take);
			z.iov_base = w->zbuf;
			z.iov_len = zlen + 4;
			if (native_record(w, MS__NREC_DATA, MS__NFLAG_ZLIB, &z,
					  1))
				return w->err.code;
			return (ssize_t)take;
		}
	}
	/* Stored as is: the first @take bytes of the iovecs. */
	for (i = 0, total = 0; i < cnt && total < take; i++) {
		size_t k = iov[i].iov_len;

		if (k > take - total)
			k = take - total;
		parts[n].iov_base = iov[i].iov_base;
		parts[n].iov_len = k;
		n++;
		total += k;
	}
	if (native_record(w, MS__NREC_DATA, 0, parts, n))
		return w->err.code;
	return (ssize_t)take;
}

static const ms_stream_ops chunk_ops = {
	MS_STREAM_OPS_VERSION, chunk_writev, NULL, NULL, NULL,
};

/* The stream that native payloads are written to (made on first use). */
static int native_payload(ms_writer *w, ms_stream **out)
{
	ms_stream_opts so = {MS_STREAM_OPTS_VERSION, w->a, 0, 0, 0};
	int ret;

	if (!w->payload) {
		so.buffer_size = w->chunk;
		/* Large buffers queued zero-copy still make chunk-sized
		 * records: the sink takes at most a chunk per call. */
		so.zero_copy_threshold = w->chunk;
		ret = ms_stream_new_custom(&w->payload, &chunk_ops, w,
					   MS_STREAM_WRITER, &so);
		if (ret)
			return ms__writer_fail(w, ret,
					       "cannot create payload stream");
	}
	*out = w->payload;
	return 0;
}

/* End the payload of the open element: flush it into DATA records. */
static int native_payload_end(ms_writer *w)
{
	int ret;

	if (!w->payload)
		return 0;
	ret = ms_stream_flush(w->payload);
	if (ret && !w->err.code)
		return ms__writer_fail(w, ret, "payload: %s",
				       ms__stream_errtext(w->payload));
	return w->err.code;
}

static int nw_header(ms_writer *w)
{
	uint8_t h[MS__NATIVE_HEADER_SIZE];
	uint16_t flags = 0;

	if (w->crc_on)
		flags |= MS__NFEAT_CRC32;
	if (!w->o.no_footers)
		flags |= MS__NFEAT_FOOTERS;
	memcpy(h, ms__native_magic, 8);
	ms__store_be16(h + 8, MS__NATIVE_VERSION);
	ms__store_be16(h + 10, flags);
	ms__store_be32(h + 12, ms__crc32(0, h, 12));
	ms_put_buffer(w->s, h, sizeof(h));
	return ms__writer_check(w);
}

/* CONFIGURATION: an empty record, the name and extra as its payload. */
static int nw_configuration(ms_writer *w, const char *machine, size_t len,
			    const void *extra, size_t extra_len)
{
	ms_stream *p;

	if (native_record_buf(w, MS_REC_CONFIGURATION, NULL, 0) ||
	    native_payload(w, &p))
		return w->err.code;
	ms_put_be32(p, (uint32_t)len);
	ms_put_buffer(p, machine, len);
	if (extra_len)
		ms_put_buffer(p, extra, extra_len);
	native_payload_end(w);
	return ms__writer_check(w);
}

static int nw_begin(ms_writer *w, uint8_t type, const struct iovec *v, int nv,
		    ms_stream **payload)
{
	if (native_record(w, type, 0, v, nv) || native_payload(w, payload))
		return w->err.code;
	return 0;
}

static int nw_end(ms_writer *w)
{
	uint8_t id[4];

	if (native_payload_end(w))
		return w->err.code;
	if (w->o.no_footers)
		return ms__writer_check(w);
	ms__store_be32(id, w->cur_id);
	return native_record_buf(w, MS_REC_FOOTER, id, 4);
}

static int nw_command(ms_writer *w, const uint8_t hdr[4], const void *data,
		      uint16_t len)
{
	struct iovec v[2];

	v[0].iov_base = (void *)(uintptr_t)hdr;
	v[0].iov_len = 4;
	v[1].iov_base = (void *)(uintptr_t)data;
	v[1].iov_len = len;
	return native_record(w, MS_REC_COMMAND, 0, v, len ? 2 : 1);
}

static int nw_eof(ms_writer *w)
{
	return native_record_buf(w, MS_REC_EOF, NULL, 0);
}

/* VMDESC: the length as the record, the JSON as its payload. */
static int nw_vmdesc(ms_writer *w, const void *json, size_t len)
{
	uint8_t l[4];
	ms_stream *p;

	ms__store_be32(l, (uint32_t)len);
	if (native_record_buf(w, MS_REC_VMDESC, l, 4) || native_payload(w, &p))
		return w->err.code;
	ms_put_buffer(p, json, len);
	return native_payload_end(w);
}

/* The trailer: record count, bytes since the header, the CRC chain. */
static int nw_finish(ms_writer *w)
{
	uint8_t t[20];

	ms__store_be64(t, w->index);
	ms__store_be64(t + 8, ms_stream_tell(w->s) - w->start);
	ms__store_be32(t + 16, w->chain);
	return native_record_buf(w, MS__NREC_TRAILER, t, sizeof(t));
}

/*
 * Reading.
 */

/* A native record as read: its header and where it starts. */
struct nrec {
	uint8_t type;
	uint8_t flags;
	uint32_t len;
	uint64_t off;
};

/*
 * The payload and CRC of record @h, copied to rbuf.  The buffer doubles
 * as the data actually comes, from 64 KiB: a damaged length announcing
 * megabytes costs at most twice the bytes behind it.  A record cut short
 * (or a damaged length running past the end) is located at the record,
 * as every other damage to it.
 */
static int nat_copy_record(ms_reader *r, const struct nrec *h, uint8_t *crcb,
			   size_t tail)
{
	size_t got, step;

	for (got = 0; got < h->len; got += step) {
		size_t cap = r->rcap > got ? r->rcap : 2 * got;

		if (cap < 65536)
			cap = 65536;
		if (cap > h->len)
			cap = h->len;
		if (ms__reader_grow(r, &r->rbuf, &r->rcap, cap))
			return r->err.code;
		step = cap - got;
		if (!ms_get_buffer(r->s, r->rbuf + got, step))
			continue;
		if (ms_stream_error(r->s) != -ENODATA)
			return ms__reader_stream_at(r, r->s, h->off,
						    "record payload");
		/* Said of the record, whatever the reads were. */
		return ms__reader_fail_at(r, -ENODATA, h->off,
					  "stream truncated in record payload: "
					  "record %llu (type 0x%02x) announces "
					  "%u bytes, the stream ends before "
					  "them",
					  (unsigned long long)r->index, h->type,
					  h->len);
	}
	if (!r->rbuf && ms__reader_grow(r, &r->rbuf, &r->rcap, 1))
		return r->err.code;
	r->rp = r->rbuf;
	if (tail && ms_get_buffer(r->s, crcb, 4))
		return ms__reader_stream_at(r, r->s, h->off, "record checksum");
	return 0;
}

/* The record's CRC, seeded with its index, against the stored @crcb. */
static int nat_check_crc(ms_reader *r, const struct nrec *h, const uint8_t *hdr,
			 const uint8_t *crcb)
{
	uint8_t seed[8];
	uint32_t crc, want;

	ms__store_be64(seed, r->index);
	crc = ms__crc32(0, seed, 8);
	crc = ms__crc32(crc, hdr, MS__NATIVE_RECORD_HDR);
	crc = ms__crc32(crc, r->rp, h->len);
	want = ms__load_be32(crcb);
	if (crc != want)
		return ms__reader_fail_at(r, -EILSEQ, h->off,
					  "record %llu (type 0x%02x, %u "
					  "bytes): checksum mismatch: stored "
					  "0x%08x, computed 0x%08x (corrupt, "
					  "reordered or missing record)",
					  (unsigned long long)r->index, h->type,
					  h->len, want, crc);
	r->chain_prev = r->chain;
	r->chain = ms__crc32(r->chain, crcb, 4);
	return 0;
}

/*
 * Read one whole record and check its CRC.  Returns 1 with the record at
 * r->rp, 0 at the clean end of the input, or an error.
 */
static int nat_read(ms_reader *r, struct nrec *h)
{
	uint8_t hdr[MS__NATIVE_RECORD_HDR], crcb[4];
	size_t tail;
	ssize_t n;

	h->off = ms_stream_tell(r->s);
	if (ms_stream_is_eof(r->s))
		return 0;
	if (ms_get_buffer(r->s, hdr, sizeof(hdr)))
		return ms__reader_stream(r, r->s, "record header");
	h->type = hdr[0];
	h->flags = hdr[1];
	h->len = ms__load_be32(hdr + 2);
	if (h->len > MS_NATIVE_MAX_RECORD)
		return ms__reader_fail_at(r, -EBADMSG, h->off,
					  "record %llu: length %u over the "
					  "limit of %u",
					  (unsigned long long)r->index, h->len,
					  MS_NATIVE_MAX_RECORD);
	/*
	 * Where the whole record is already buffered (memory and feed
	 * readers, small records of the others), it is checked and used in
	 * place: r->rp points into the stream's buffer, which stays as it is
	 * until the next read from r->s.  Otherwise it is copied to rbuf.
	 */
	tail = r->crc_on ? 4 : 0;
	if (h->len && ms_stream_available(r->s) >= (size_t)h->len + tail &&
	    (r->inplace_feed || !ms__stream_is_feed(r->s))) {
		n = ms_peek(r->s, &r->rp, (size_t)h->len + tail);
		if (n < 0 || (size_t)n < (size_t)h->len + tail ||
		    ms_skip(r->s, (size_t)h->len + tail))
			return ms__reader_stream_at(r, r->s, h->off,
						    "record payload");
		memcpy(crcb, r->rp + h->len, tail);
	} else if (nat_copy_record(r, h, crcb, tail)) {
		return r->err.code;
	}
	if (r->crc_on && nat_check_crc(r, h, hdr, crcb))
		return r->err.code;
	r->index++;
	return 1;
}

/* Peek the type of the next native record without consuming it. */
static int nat_peek_type(ms_reader *r)
{
	const uint8_t *p;
	ssize_t n = ms_peek(r->s, &p, 1);

	if (n < 0)
		return ms__reader_stream(r, r->s, "record header");
	return n == 0 ? -1 : p[0];
}

/* Decode the DATA record in rbuf into dp/dleft. */
static int nat_data(ms_reader *r, uint8_t flags, uint32_t len, uint64_t off)
{
	uint32_t raw;
	int zr;

	if (flags & ~MS__NFLAG_ZLIB)
		return ms__reader_fail_at(r, -ENOTSUP, off,
					  "DATA record with flags 0x%02x",
					  flags);
	if (!(flags & MS__NFLAG_ZLIB)) {
		r->dp = r->rp;
		r->dleft = len;
		return 0;
	}
	if (len < 4)
		return ms__reader_fail_at(r, -EBADMSG, off,
					  "compressed DATA of %u bytes", len);
	raw = ms__load_be32(r->rp);
	if (raw > MS_NATIVE_MAX_RECORD)
		return ms__reader_fail_at(
			r, -EBADMSG, off,
			"compressed DATA expands to %u bytes, over the "
			"limit of %u",
			raw, MS_NATIVE_MAX_RECORD);
	if (ms__reader_grow(r, &r->dbuf, &r->dcap, raw ? raw : 1))
		return r->err.code;
	if (!r->z_init) {
		ms__zstream_init(&r->z, r->a);
		if (inflateInit2(&r->z, -15) != Z_OK)
			return ms__reader_fail_at(r, -ENOMEM, off,
						  "cannot start zlib");
		r->z_init = true;
	} else if (inflateReset(&r->z) != Z_OK) {
		return ms__reader_fail_at(r, -EIO, off, "cannot reset zlib");
	}
	r->z.next_in = (Bytef *)(uintptr_t)(r->rp + 4);
	r->z.avail_in = len - 4;
	r->z.next_out = r->dbuf;
	r->z.avail_out = raw;
	zr = inflate(&r->z, Z_FINISH);
	if (zr != Z_STREAM_END || r->z.avail_out || r->z.avail_in)
		return ms__reader_fail_at(
			r, -EBADMSG, off,
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
	struct nrec h;
	int t, ret;

	while (!r->dleft && !r->data_end) {
		t = nat_peek_type(r);
		if (t >= 0 && (t & MS__NREC_OPTIONAL)) {
			/* Optional records may sit between any two records:
			 * check and skip it without ending the payload. */
			ret = nat_read(r, &h);
			if (ret < 0)
				return ret;
			continue;
		}
		/* Every element is followed by a record (its footer, the
		 * next element, the trailer): the input ending here is a cut
		 * stream, said as such rather than as a short payload. */
		if (t == -1)
			return ms__reader_fail_at(
				r, -ENODATA, ms_stream_tell(r->s),
				"stream truncated: it ends inside an "
				"element's payload");
		if (t >= 0 && t != MS__NREC_DATA) {
			r->data_end = true;
			break;
		}
		if (t < 0)
			return t;
		ret = nat_read(r, &h);
		if (ret <= 0)
			return ret ? ret : 0;
		if (nat_data(r, h.flags, h.len, h.off))
			return r->err.code;
		if (r->data_total + r->dleft >
		    (r->open == MS__O_VMDESC ? r->data_expect : UINT64_MAX))
			return ms__reader_fail_at(
				r, -EBADMSG, h.off,
				"VM description longer than the %llu "
				"bytes announced",
				(unsigned long long)r->data_expect);
		r->data_total += r->dleft;
	}
	return r->err.code;
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
		return r->err.code;
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

static int nat_open_payload(ms_reader *r, enum ms__ropen what)
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
		return ms__reader_fail_at(r, ret, ms_stream_tell(r->s),
					  "out of memory");
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
		if (perr && perr != -ENODATA && !r->err.code)
			ms__reader_fail_at(r, perr, off, "payload: %s",
					   ms__stream_errtext(r->payload));
		ms_stream_close(r->payload);
		r->payload = NULL;
	}
	if (r->err.code)
		return r->err.code;
	while (!r->data_end) {
		r->dleft = 0;
		if (nat_next_data(r))
			return r->err.code;
	}
	r->dleft = 0;
	if (r->open == MS__O_VMDESC && r->data_total != r->data_expect)
		return ms__reader_fail_at(
			r, -EBADMSG, off,
			"VM description of %llu bytes, %llu announced",
			(unsigned long long)r->data_total,
			(unsigned long long)r->data_expect);
	r->open = MS__O_NONE;
	return 0;
}

int ms__native_read_header(ms_reader *r)
{
	uint8_t h[MS__NATIVE_HEADER_SIZE];
	uint16_t ver, flags;

	r->start = ms_stream_tell(r->s);
	if (ms_get_buffer(r->s, h, sizeof(h)))
		return ms__reader_stream(r, r->s, "file header");
	if (memcmp(h, ms__native_magic, 8))
		return ms__reader_fail_at(
			r, -EBADMSG, r->start,
			"not a migstream native stream (bad magic)");
	if (ms__load_be32(h + 12) != ms__crc32(0, h, 12))
		return ms__reader_fail_at(r, -EILSEQ, r->start,
					  "file header checksum mismatch");
	ver = ms__load_be16(h + 8);
	flags = ms__load_be16(h + 10);
	if (ver != MS__NATIVE_VERSION)
		return ms__reader_fail_at(
			r, -ENOTSUP, r->start,
			"native format version %u, this reader knows %u", ver,
			MS__NATIVE_VERSION);
	if (flags & MS__NFEAT_MANDATORY_MASK & ~MS__NFEAT_KNOWN)
		return ms__reader_fail_at(r, -ENOTSUP, r->start,
					  "unknown mandatory features 0x%04x",
					  flags);
	r->crc_on = flags & MS__NFEAT_CRC32;
	r->footers = flags & MS__NFEAT_FOOTERS;
	r->profile = MS_PROFILE_NATIVE;
	r->state = MS__R_BODY;
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

/*
 * The records after the header: one function per type, and a table of
 * the types each state of the grammar takes.
 */

/* A record being decoded: its header, a cursor over its payload, and
 * whether it is the first record (optional ones aside). */
struct nctx {
	struct nrec h;
	struct cur c;
	bool first;
};

/* Each returns 1 for a record, 0 at the clean end, or the error. */
typedef int (*nr_fn)(ms_reader *r, ms_record *rec, struct nctx *x);

static int nr_section(ms_reader *r, ms_record *rec, struct nctx *x)
{
	ms_section_hdr *h = &rec->section;

	h->type = x->h.type;
	h->section_id = cur_be32(&x->c);
	if (h->type == MS_REC_START || h->type == MS_REC_FULL) {
		cur_cstr(&x->c, h->idstr);
		h->instance_id = cur_be32(&x->c);
		h->version_id = cur_be32(&x->c);
	}
	if (x->c.bad || x->c.n)
		return ms__reader_fail_at(r, -EBADMSG, x->h.off,
					  "%s header of %u bytes is malformed",
					  ms_record_type_name(h->type),
					  x->h.len);
	if (ms__reader_section_seen(r, h, x->h.off))
		return r->err.code;
	r->want_footer = r->footers;
	if (nat_open_payload(r, MS__O_SECTION))
		return r->err.code;
	return 1;
}

static int nr_footer(ms_reader *r, ms_record *rec, struct nctx *x)
{
	rec->section.section_id = cur_be32(&x->c);
	if (x->c.bad || x->c.n)
		return ms__reader_fail_at(r, -EBADMSG, x->h.off,
					  "malformed footer record");
	if (!r->want_footer)
		return ms__reader_fail_at(r, -EBADMSG, x->h.off,
					  "footer without a section");
	if (rec->section.section_id != r->cur.section_id)
		return ms__reader_fail_at(r, -EBADMSG, x->h.off,
					  "footer for section %u expected, "
					  "found one for section %u",
					  r->cur.section_id,
					  rec->section.section_id);
	ms__section_hdr_copy(&rec->section, &r->cur);
	r->want_footer = false;
	r->have_cur = false;
	return 1;
}

static int nr_configuration(ms_reader *r, ms_record *rec, struct nctx *x)
{
	if (!x->first || x->h.len)
		return ms__reader_fail_at(r, -EBADMSG, x->h.off,
					  "CONFIGURATION must be the first "
					  "record and empty");
	if (nat_open_payload(r, MS__O_CONFIG))
		return r->err.code;
	if (ms__reader_config_name(r, r->payload, rec))
		return r->err.code;
	return 1;
}

static int nr_command(ms_reader *r, ms_record *rec, struct nctx *x)
{
	int fixed, ret;

	rec->cmd = cur_be16(&x->c);
	rec->length = cur_be16(&x->c);
	fixed = ms__command_len(rec->cmd);
	if (x->c.bad || x->c.n != rec->length)
		return ms__reader_fail_at(r, -EBADMSG, x->h.off,
					  "malformed COMMAND record");
	if (fixed == -2 || (fixed >= 0 && fixed != (int)rec->length))
		return ms__reader_fail_at(r, -EBADMSG, x->h.off,
					  "command %u with %u bytes of "
					  "payload is not valid",
					  rec->cmd, rec->length);
	ret = ms_stream_new_mem_reader(&r->window, x->c.p, x->c.n, NULL);
	if (ret)
		return ms__reader_fail_at(r, ret, x->h.off, "out of memory");
	r->open = MS__O_NONE;
	return 1;
}

static int nr_eof(ms_reader *r, ms_record *rec, struct nctx *x)
{
	(void)rec;
	if (x->h.len)
		return ms__reader_fail_at(r, -EBADMSG, x->h.off,
					  "EOF record with a payload");
	r->state = MS__R_AFTER_EOF;
	r->have_cur = false;
	return 1;
}

static int nr_vmdesc(ms_reader *r, ms_record *rec, struct nctx *x)
{
	rec->length = cur_be32(&x->c);
	if (x->c.bad || x->c.n)
		return ms__reader_fail_at(r, -EBADMSG, x->h.off,
					  "malformed VMDESC record");
	if (rec->length > r->max_vmdesc)
		return ms__reader_fail_at(r, -EFBIG, x->h.off,
					  "VM description of %u bytes, over "
					  "the limit of %zu",
					  rec->length, r->max_vmdesc);
	if (nat_open_payload(r, MS__O_VMDESC))
		return r->err.code;
	r->data_expect = rec->length;
	r->state = MS__R_AFTER_VMDESC;
	return 1;
}

/* The trailer's stream checksum: the chain of the CRCs before it. */
static int nr_trailer_chain(ms_reader *r, uint32_t chain, uint64_t off)
{
	if (r->crc_on) {
		/* The chain now includes the trailer's CRC; the stored
		 * value covers those before. */
		if (chain != r->chain_prev)
			return ms__reader_fail_at(r, -EILSEQ, off,
						  "stream checksum mismatch");
	} else if (chain) {
		return ms__reader_fail_at(r, -EBADMSG, off,
					  "stream checksum set without "
					  "checksums");
	}
	return 0;
}

static int nr_trailer(ms_reader *r, ms_record *rec, struct nctx *x)
{
	uint64_t count, bytes, off = x->h.off;

	if (x->h.len != 20)
		return ms__reader_fail_at(r, -EBADMSG, off,
					  "malformed trailer record");
	count = ms__load_be64(r->rp);
	bytes = ms__load_be64(r->rp + 8);
	if (count != rec->index)
		return ms__reader_fail_at(r, -EBADMSG, off,
					  "trailer counts %llu records, %llu "
					  "were read",
					  (unsigned long long)count,
					  (unsigned long long)rec->index);
	if (bytes != off - r->start)
		return ms__reader_fail_at(r, -EBADMSG, off,
					  "trailer at byte %llu says %llu",
					  (unsigned long long)(off - r->start),
					  (unsigned long long)bytes);
	if (nr_trailer_chain(r, ms__load_be32(r->rp + 16), off))
		return r->err.code;
	if (!ms_stream_is_eof(r->s))
		return ms__reader_stream(r, r->s, "after trailer")
			       ? r->err.code
			       : ms__reader_fail_at(r, -EBADMSG,
						    ms_stream_tell(r->s),
						    "data after the trailer");
	r->state = MS__R_DONE;
	return 0;
}

static int nr_data(ms_reader *r, ms_record *rec, struct nctx *x)
{
	(void)rec;
	return ms__reader_fail_at(r, -EBADMSG, x->h.off,
				  "DATA record outside a section");
}

static int nr_unknown(ms_reader *r, ms_record *rec, struct nctx *x)
{
	(void)rec;
	return ms__reader_fail_at(r, -ENOTSUP, x->h.off,
				  "unknown mandatory record type 0x%02x "
				  "(written by a newer migstream?)",
				  x->h.type);
}

/* The kinds of mandatory records, and their functions. */
enum nkind {
	NK_SECTION,
	NK_FOOTER,
	NK_CONFIG,
	NK_COMMAND,
	NK_EOF,
	NK_VMDESC,
	NK_TRAILER,
	NK_DATA,
	NK_UNKNOWN,
	NK_COUNT
};

#define NK(k) (1u << (k))

static const struct {
	nr_fn fn;
	const char *early; /* the refusal before EOF, if one applies */
} nkinds[NK_COUNT] = {
	[NK_SECTION] = {nr_section, NULL},
	[NK_FOOTER] = {nr_footer, NULL},
	[NK_CONFIG] = {nr_configuration, NULL},
	[NK_COMMAND] = {nr_command, NULL},
	[NK_EOF] = {nr_eof, NULL},
	[NK_VMDESC] = {nr_vmdesc, "VM description before EOF"},
	[NK_TRAILER] = {nr_trailer, "trailer before EOF"},
	[NK_DATA] = {nr_data, NULL},
	[NK_UNKNOWN] = {nr_unknown, NULL},
};

/* The state table: the kinds each state takes, and how the others are
 * refused ("record type 0x.. <after>", or the kind's own message). */
static const struct {
	unsigned takes;
	const char *after;
} nstates[] = {
	[MS__R_BODY] = {(NK(NK_COUNT) - 1) & ~(NK(NK_VMDESC) | NK(NK_TRAILER)),
			NULL},
	[MS__R_AFTER_EOF] = {NK(NK_VMDESC) | NK(NK_TRAILER), "after EOF"},
	[MS__R_AFTER_VMDESC] = {NK(NK_TRAILER), "after the VM description"},
};

static enum nkind nat_kind(uint8_t type)
{
	switch (type) {
	case MS_REC_START:
	case MS_REC_PART:
	case MS_REC_END:
	case MS_REC_FULL:
		return NK_SECTION;
	case MS_REC_FOOTER:
		return NK_FOOTER;
	case MS_REC_CONFIGURATION:
		return NK_CONFIG;
	case MS_REC_COMMAND:
		return NK_COMMAND;
	case MS_REC_EOF:
		return NK_EOF;
	case MS_REC_VMDESC:
		return NK_VMDESC;
	case MS__NREC_TRAILER:
		return NK_TRAILER;
	case MS__NREC_DATA:
		return NK_DATA;
	default:
		return NK_UNKNOWN;
	}
}

/* The checks every mandatory record passes, then its type's function. */
static int nat_dispatch(ms_reader *r, ms_record *rec, struct nctx *x)
{
	uint8_t type = x->h.type;
	enum nkind k = nat_kind(type);

	/* Only a section's own footer is reported as that section's. */
	if (type != MS_REC_FOOTER && !r->want_footer)
		r->have_cur = false;
	if (x->h.flags && type != MS__NREC_DATA)
		return ms__reader_fail_at(r, -EBADMSG, x->h.off,
					  "record type 0x%02x with flags "
					  "0x%02x",
					  type, x->h.flags);
	if (r->want_footer && type != MS_REC_FOOTER)
		return ms__reader_fail_at(r, -EBADMSG, x->h.off,
					  "footer for section %u expected, "
					  "found record type 0x%02x",
					  r->cur.section_id, type);
	if (!(nstates[r->state].takes & NK(k))) {
		if (nstates[r->state].after)
			return ms__reader_fail_at(r, -EBADMSG, x->h.off,
						  "record type 0x%02x %s", type,
						  nstates[r->state].after);
		return ms__reader_fail_at(r, -EBADMSG, x->h.off, "%s",
					  nkinds[k].early);
	}
	return nkinds[k].fn(r, rec, x);
}

static int nat_next(ms_reader *r, ms_record *rec)
{
	struct nctx x;
	int ret;

	/* A command's payload points into rbuf: drop it before reading on. */
	ms_stream_close(r->window);
	r->window = NULL;
	/* No known type has bit 7: an optional record is unknown, and
	 * allowed between any two records (its CRC was checked). */
	do {
		if (r->open != MS__O_NONE && nat_close_element(r))
			return r->err.code;
		ret = nat_read(r, &x.h);
		if (ret < 0)
			return ret;
		if (ret == 0)
			return ms__reader_fail_at(r, -ENODATA, x.h.off,
						  "stream truncated: it ends "
						  "without a trailer record");
	} while (x.h.type & MS__NREC_OPTIONAL);
	ms__record_clear(rec);
	rec->offset = x.h.off;
	rec->index = r->index - 1;
	rec->type = x.h.type;
	x.c.p = r->rp;
	x.c.n = x.h.len;
	x.c.bad = false;
	x.first = !r->seen_mandatory;
	r->seen_mandatory = true;
	return nat_dispatch(r, rec, &x);
}

/*
 * Readiness of fed data.
 */

int ms__codec_native_ready(ms__native_scan *sc, const uint8_t *p, size_t n,
			   bool at_end, bool first, unsigned crc)
{
	size_t off;
	bool head;

	if (first) {
		if (n < MS__NATIVE_HEADER_SIZE)
			return at_end;
		/* Header flags: is there a CRC after each record? */
		crc = ms__load_be16(p + 10) & MS__NFEAT_CRC32 ? 4 : 0;
	}
	/* Resume where the last call stopped: linear in the data fed. */
	if (sc->valid) {
		off = sc->off;
		head = sc->head;
	} else {
		off = first ? MS__NATIVE_HEADER_SIZE : 0;
		head = false;
	}
	for (;;) {
		uint32_t len;

		sc->valid = true;
		sc->off = off;
		sc->head = head;
		if (n - off < 1)
			return at_end;
		/* Optional records may sit between an element's DATA. */
		if (p[off] != MS__NREC_DATA && !(p[off] & MS__NREC_OPTIONAL)) {
			if (head)
				return 1; /* the next element has begun */
			head = true;
		}
		if (n - off < MS__NATIVE_RECORD_HDR)
			return at_end;
		len = ms__load_be32(p + off + 2);
		if (len > MS_NATIVE_MAX_RECORD)
			return 1; /* the reader reports it */
		if (n - off - MS__NATIVE_RECORD_HDR < (size_t)len + crc)
			return at_end;
		off += MS__NATIVE_RECORD_HDR + len + crc;
	}
}

const struct ms__codec_profile ms__codec_native = {
	.header = nw_header,
	.configuration = nw_configuration,
	.begin = nw_begin,
	.end = nw_end,
	.command = nw_command,
	.eof = nw_eof,
	.vmdesc = nw_vmdesc,
	.finish = nw_finish,
	.next = nat_next,
};
