/* SPDX-License-Identifier: MIT */
/*
 * The writer of both profiles.  QEMU: the grammar of QEMU's savevm.c, put
 * straight on the output stream.  Native (docs/FORMAT.md): every element
 * is a record with a length and a CRC-32, and section payloads go through
 * a chunking stream whose flushes become DATA records, compressed with one
 * long-lived z_stream when asked.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "codec.h"

static int wfail(ms_writer *w, int err, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

static int wfail(ms_writer *w, int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (w->err)
		return w->err;
	w->err = err;
	n = snprintf(w->errmsg, sizeof(w->errmsg),
		     "offset %llu: ", (unsigned long long)ms_stream_tell(w->s));
	if (n < 0 || (size_t)n >= sizeof(w->errmsg))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(w->errmsg + n, sizeof(w->errmsg) - (size_t)n, fmt, ap);
	va_end(ap);
	return err;
}

/* The writer's error, taking up one its output stream met. */
static int wcheck(ms_writer *w)
{
	int err;

	if (w->err)
		return w->err;
	err = ms_stream_error(w->s);
	if (err) {
		w->err = err;
		snprintf(w->errmsg, sizeof(w->errmsg), "%s",
			 ms_stream_errmsg(w->s));
	}
	return w->err;
}

int ms_writer_error(const ms_writer *w)
{
	assert(w);
	if (w->err)
		return w->err;
	return ms_stream_error(w->s);
}

const char *ms_writer_errmsg(const ms_writer *w)
{
	assert(w);
	if (w->err)
		return w->errmsg;
	return ms_stream_errmsg(w->s);
}

/*
 * Native records.
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
		return wfail(w, -EFBIG, "record of %zu bytes", len);
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
	return wcheck(w);
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
				return w->err;
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
		return w->err;
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
			return wfail(w, ret, "cannot create payload stream");
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
	if (ret && !w->err)
		return wfail(w, ret, "payload: %s",
			     ms_stream_errmsg(w->payload));
	return w->err;
}

/*
 * Public API.
 */

int ms__codec_opts_apply(ms_codec_opts *dst, const ms_codec_opts *src,
			 bool reader)
{
	memset(dst, 0, sizeof(*dst));
	dst->version = MS_CODEC_OPTS_VERSION;
	dst->profile = reader ? MS_PROFILE_AUTO : MS_PROFILE_QEMU;
	if (!src)
		return 0;
	if (src->version != MS_CODEC_OPTS_VERSION)
		return -EINVAL;
	*dst = *src;
	if (src->profile != MS_PROFILE_QEMU &&
	    src->profile != MS_PROFILE_NATIVE &&
	    (src->profile != MS_PROFILE_AUTO || !reader))
		return -EINVAL;
	if (src->checksum != 0 && src->checksum != -1)
		return -EINVAL;
	if (src->compress_level < 0 || src->compress_level > 9)
		return -EINVAL;
	if (src->chunk_size && (src->chunk_size < 16 ||
				src->chunk_size > MS_NATIVE_MAX_RECORD / 2))
		return -EINVAL;
	if (src->allocator &&
	    (!src->allocator->malloc || !src->allocator->realloc ||
	     !src->allocator->free))
		return -EINVAL;
	return 0;
}

static voidpf zalloc_hook(voidpf opaque, uInt items, uInt size)
{
	const ms_allocator *a = opaque;

	if (size && items > SIZE_MAX / size)
		return Z_NULL;
	return ms__malloc(a, (size_t)items * size);
}

static void zfree_hook(voidpf opaque, voidpf ptr)
{
	ms__free(opaque, ptr);
}

void ms__zstream_init(z_stream *z, const ms_allocator *a)
{
	memset(z, 0, sizeof(*z));
	if (a) {
		z->zalloc = zalloc_hook;
		z->zfree = zfree_hook;
		z->opaque = (voidpf)(uintptr_t)a;
	}
}

int ms_writer_new(ms_writer **out, ms_stream *s, const ms_codec_opts *opts)
{
	ms_codec_opts o;
	ms_writer *w;
	int ret;

	if (!out || !s || ms_stream_mode_of(s) != MS_STREAM_WRITER)
		return -EINVAL;
	ret = ms__codec_opts_apply(&o, opts, false);
	if (ret)
		return ret;
	w = ms__malloc(o.allocator, sizeof(*w));
	if (!w)
		return -ENOMEM;
	memset(w, 0, sizeof(*w));
	w->s = s;
	w->o = o;
	w->a = o.allocator;
	w->chunk = o.chunk_size ? o.chunk_size : MS_NATIVE_DEFAULT_CHUNK;
	w->crc_on = o.checksum == 0;
	if (o.profile == MS_PROFILE_NATIVE && o.compress_level > 0) {
		w->zcap = deflateBound(NULL, (uLong)w->chunk) + 4 + 64;
		w->zbuf = ms__malloc(w->a, w->zcap);
		ms__zstream_init(&w->z, w->a);
		if (!w->zbuf ||
		    deflateInit2(&w->z, o.compress_level, Z_DEFLATED, -15, 8,
				 Z_DEFAULT_STRATEGY) != Z_OK) {
			ms__free(w->a, w->zbuf);
			ms__free(w->a, w);
			return -ENOMEM;
		}
		w->z_init = true;
	}
	*out = w;
	return 0;
}

void ms_writer_free(ms_writer *w)
{
	if (!w)
		return;
	if (w->payload) {
		/* Whatever the payload holds is dropped, not written. */
		ms__stream_drop(w->payload);
		ms_stream_close(w->payload);
	}
	if (w->z_init)
		deflateEnd(&w->z);
	ms__free(w->a, w->zbuf);
	ms__free(w->a, w);
}

int ms_writer_header(ms_writer *w)
{
	uint8_t h[MS__NATIVE_HEADER_SIZE];
	uint16_t flags = 0;

	assert(w);
	if (wcheck(w))
		return w->err;
	if (w->state != MS__W_INIT)
		return -EINVAL;
	w->state = MS__W_BODY;
	w->start = ms_stream_tell(w->s);
	if (w->o.profile == MS_PROFILE_QEMU) {
		ms_put_be32(w->s, MS_QEMU_MAGIC);
		ms_put_be32(w->s, MS_QEMU_VERSION);
		return wcheck(w);
	}
	if (w->crc_on)
		flags |= MS__NFEAT_CRC32;
	if (!w->o.no_footers)
		flags |= MS__NFEAT_FOOTERS;
	memcpy(h, ms__native_magic, 8);
	ms__store_be16(h + 8, MS__NATIVE_VERSION);
	ms__store_be16(h + 10, flags);
	ms__store_be32(h + 12, ms__crc32(0, h, 12));
	ms_put_buffer(w->s, h, sizeof(h));
	return wcheck(w);
}

/* Common checks: not failed, header written, nothing open. */
static int wready(ms_writer *w, bool section_open_ok)
{
	if (wcheck(w))
		return w->err;
	if (w->state == MS__W_INIT)
		return -EINVAL;
	if (w->open && !section_open_ok)
		return -EINVAL;
	return 0;
}

int ms_writer_configuration(ms_writer *w, const char *machine,
			    const void *extra, size_t extra_len)
{
	ms_stream *p;
	size_t len;
	int ret;

	assert(w && machine);
	ret = wready(w, false);
	if (ret)
		return ret;
	len = strlen(machine);
	if (len > MS_COUNTED_STRING_MAX || w->o.no_configuration ||
	    w->state != MS__W_BODY || w->nrecords || (extra_len && !extra))
		return -EINVAL;
	w->nrecords++;
	if (w->o.profile == MS_PROFILE_QEMU) {
		p = w->s;
		ms_put_u8(p, MS_REC_CONFIGURATION);
	} else {
		if (native_record_buf(w, MS_REC_CONFIGURATION, NULL, 0) ||
		    native_payload(w, &p))
			return w->err;
	}
	ms_put_be32(p, (uint32_t)len);
	ms_put_buffer(p, machine, len);
	if (extra_len)
		ms_put_buffer(p, extra, extra_len);
	if (w->o.profile == MS_PROFILE_NATIVE)
		native_payload_end(w);
	return wcheck(w);
}

int ms_writer_begin(ms_writer *w, const ms_section_hdr *hdr,
		    ms_stream **payload)
{
	uint8_t id[5], iv[8];
	struct iovec v[3];
	size_t len = 0;
	bool full_hdr;
	int i, nv, ret;

	assert(w && hdr && payload);
	ret = wready(w, false);
	if (ret)
		return ret;
	if (w->state != MS__W_BODY || hdr->type < MS_REC_START ||
	    hdr->type > MS_REC_FULL)
		return -EINVAL;
	full_hdr = hdr->type == MS_REC_START || hdr->type == MS_REC_FULL;
	if (full_hdr) {
		len = strnlen(hdr->idstr, sizeof(hdr->idstr));
		if (len > MS_COUNTED_STRING_MAX)
			return -EINVAL;
	}
	/*
	 * The section header, the same bytes in both profiles: be32 id, and
	 * for START and FULL the counted idstr, be32 instance and be32
	 * version.  The idstr is put straight from the caller's header: a
	 * copy into a staging array first cost more than the rest of the
	 * header (see bench/migstream-bench --case=qemu-frame).
	 */
	ms__store_be32(id, hdr->section_id);
	v[0].iov_base = id;
	v[0].iov_len = 4;
	nv = 1;
	if (full_hdr) {
		id[4] = (uint8_t)len;
		v[0].iov_len = 5;
		v[1].iov_base = (void *)(uintptr_t)hdr->idstr;
		v[1].iov_len = len;
		ms__store_be32(iv, hdr->instance_id);
		ms__store_be32(iv + 4, hdr->version_id);
		v[2].iov_base = iv;
		v[2].iov_len = 8;
		nv = 3;
	}
	w->nrecords++;
	w->open = true;
	/* Only the id is needed later, for the footer. */
	w->cur_id = hdr->section_id;
	if (w->o.profile == MS_PROFILE_QEMU) {
		ms_put_u8(w->s, hdr->type);
		for (i = 0; i < nv; i++)
			ms_put_buffer(w->s, v[i].iov_base, v[i].iov_len);
		*payload = w->s;
		return wcheck(w);
	}
	if (native_record(w, hdr->type, 0, v, nv) || native_payload(w, payload))
		return w->err;
	return 0;
}

int ms_writer_end(ms_writer *w)
{
	uint8_t id[4];

	assert(w);
	if (wcheck(w))
		return w->err;
	if (!w->open)
		return -EINVAL;
	w->open = false;
	if (w->o.profile == MS_PROFILE_NATIVE && native_payload_end(w))
		return w->err;
	if (w->o.no_footers)
		return wcheck(w);
	if (w->o.profile == MS_PROFILE_QEMU) {
		ms_put_u8(w->s, MS_REC_FOOTER);
		ms_put_be32(w->s, w->cur_id);
		return wcheck(w);
	}
	ms__store_be32(id, w->cur_id);
	return native_record_buf(w, MS_REC_FOOTER, id, 4);
}

/* Fixed payload lengths of the commands; -1 for variable. */
int ms__command_len(uint16_t cmd)
{
	static const int8_t lens[MS_CMD_MAX] = {
		[MS_CMD_OPEN_RETURN_PATH] = 0,
		[MS_CMD_PING] = 4,
		[MS_CMD_POSTCOPY_ADVISE] = -1,
		[MS_CMD_POSTCOPY_LISTEN] = 0,
		[MS_CMD_POSTCOPY_RUN] = 0,
		[MS_CMD_POSTCOPY_RAM_DISCARD] = -1,
		[MS_CMD_PACKAGED] = 4,
		[MS_CMD_ENABLE_COLO] = 0,
		[MS_CMD_POSTCOPY_RESUME] = 0,
		[MS_CMD_RECV_BITMAP] = -1,
		[MS_CMD_SWITCHOVER_START] = 0,
	};

	if (cmd == 0 || cmd >= MS_CMD_MAX)
		return -2;
	return lens[cmd];
}

int ms_writer_command(ms_writer *w, uint16_t cmd, const void *data,
		      uint16_t len)
{
	uint8_t hdr[4];
	int fixed, ret;

	assert(w);
	ret = wready(w, false);
	if (ret)
		return ret;
	fixed = ms__command_len(cmd);
	if (w->state != MS__W_BODY || fixed == -2 ||
	    (fixed >= 0 && fixed != len) || (len && !data))
		return -EINVAL;
	w->nrecords++;
	ms__store_be16(hdr, cmd);
	ms__store_be16(hdr + 2, len);
	if (w->o.profile == MS_PROFILE_QEMU) {
		ms_put_u8(w->s, MS_REC_COMMAND);
		ms_put_buffer(w->s, hdr, 4);
		ms_put_buffer(w->s, data, len);
		/* QEMU flushes after every command. */
		ms_stream_flush(w->s);
		return wcheck(w);
	} else {
		struct iovec v[2];

		v[0].iov_base = hdr;
		v[0].iov_len = 4;
		v[1].iov_base = (void *)(uintptr_t)data;
		v[1].iov_len = len;
		return native_record(w, MS_REC_COMMAND, 0, v, len ? 2 : 1);
	}
}

int ms_writer_eof(ms_writer *w)
{
	int ret;

	assert(w);
	ret = wready(w, false);
	if (ret)
		return ret;
	if (w->state != MS__W_BODY)
		return -EINVAL;
	w->state = MS__W_EOF;
	w->nrecords++;
	if (w->o.profile == MS_PROFILE_QEMU) {
		ms_put_u8(w->s, MS_REC_EOF);
		return wcheck(w);
	}
	return native_record_buf(w, MS_REC_EOF, NULL, 0);
}

int ms_writer_vmdesc(ms_writer *w, const void *json, size_t len)
{
	uint8_t l[4];
	ms_stream *p;
	int ret;

	assert(w);
	ret = wready(w, false);
	if (ret)
		return ret;
	if (w->state != MS__W_EOF || w->o.no_vmdesc || len > UINT32_MAX ||
	    (len && !json))
		return -EINVAL;
	w->state = MS__W_VMDESC;
	if (w->o.profile == MS_PROFILE_QEMU) {
		ms_put_u8(w->s, MS_REC_VMDESC);
		ms_put_be32(w->s, (uint32_t)len);
		ms_put_buffer(w->s, json, len);
		return wcheck(w);
	}
	ms__store_be32(l, (uint32_t)len);
	if (native_record_buf(w, MS_REC_VMDESC, l, 4) || native_payload(w, &p))
		return w->err;
	ms_put_buffer(p, json, len);
	return native_payload_end(w);
}

int ms_writer_finish(ms_writer *w)
{
	uint8_t t[20];
	int ret;

	assert(w);
	ret = wready(w, false);
	if (ret)
		return ret;
	if (w->state != MS__W_EOF && w->state != MS__W_VMDESC)
		return -EINVAL;
	w->state = MS__W_DONE;
	if (w->o.profile == MS_PROFILE_NATIVE) {
		ms__store_be64(t, w->index);
		ms__store_be64(t + 8, ms_stream_tell(w->s) - w->start);
		ms__store_be32(t + 16, w->chain);
		if (native_record_buf(w, MS__NREC_TRAILER, t, sizeof(t)))
			return w->err;
	}
	ms_stream_flush(w->s);
	return wcheck(w);
}
