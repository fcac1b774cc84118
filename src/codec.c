/* SPDX-License-Identifier: MIT */
/*
 * The codec's objects: the writer and the pull reader, whatever the
 * profile.  Here are the options and their one default, the checks of
 * call order and arguments (each refusal says what was expected), the
 * sticky errors, and what both profiles share: the section table, the
 * CONFIGURATION record, the commands' lengths and zlib's set-up.  The
 * bytes of each profile are in codec-qemu.c and codec-native.c.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"

const uint8_t ms__native_magic[8] = {0x89, 'M',	 'S',  'N',
				     '\r', '\n', 0x1a, '\n'};

/*
 * Options.
 */

void ms_codec_opts_init(ms_codec_opts *o)
{
	assert(o);
	memset(o, 0, sizeof(*o));
	o->version = MS_CODEC_OPTS_VERSION;
	o->profile = MS_PROFILE_NATIVE;
	o->checksum = 0; /* CRC-32 */
}

/* Whether every field but the version is zero. */
static bool opts_all_zero(const ms_codec_opts *o)
{
	return o->profile == MS_PROFILE_AUTO && !o->no_footers &&
	       !o->no_configuration && !o->no_vmdesc && !o->checksum &&
	       !o->compress_level && !o->chunk_size && !o->max_vmdesc &&
	       !o->allocator;
}

const char *ms_codec_opts_check(const ms_codec_opts *o, bool reader)
{
	if (!o)
		return NULL;
	if (o->version == 0)
		return opts_all_zero(o) ? NULL
					: "ms_codec_opts: version is 0 but "
					  "fields are set: set version to "
					  "MS_CODEC_OPTS_VERSION (or start "
					  "from ms_codec_opts_init())";
	if (o->version != MS_CODEC_OPTS_VERSION)
		return "ms_codec_opts: unknown version, expected "
		       "MS_CODEC_OPTS_VERSION";
	if (o->profile != MS_PROFILE_QEMU && o->profile != MS_PROFILE_NATIVE &&
	    (o->profile != MS_PROFILE_AUTO || !reader))
		return reader ? "ms_codec_opts: profile must be "
				"MS_PROFILE_AUTO, _QEMU or _NATIVE"
			      : "ms_codec_opts: a writer's profile must be "
				"MS_PROFILE_QEMU or MS_PROFILE_NATIVE";
	if (o->checksum != 0 && o->checksum != -1)
		return "ms_codec_opts: checksum must be 0 (CRC-32) or -1 "
		       "(none)";
	if (o->compress_level < 0 || o->compress_level > 9)
		return "ms_codec_opts: compress_level must be 0 to 9";
	if (o->chunk_size &&
	    (o->chunk_size < 16 || o->chunk_size > MS_NATIVE_MAX_RECORD / 2))
		return "ms_codec_opts: chunk_size must be 0 or 16 to "
		       "MS_NATIVE_MAX_RECORD / 2";
	if (o->allocator && (!o->allocator->malloc || !o->allocator->realloc ||
			     !o->allocator->free))
		return "ms_codec_opts: the allocator lacks a hook";
	return NULL;
}

int ms__codec_opts_apply(ms_codec_opts *dst, const ms_codec_opts *src,
			 bool reader, const char **why)
{
	const char *bad = ms_codec_opts_check(src, reader);

	if (why)
		*why = bad;
	if (bad)
		return -EINVAL;
	ms_codec_opts_init(dst);
	if (reader)
		dst->profile = MS_PROFILE_AUTO;
	if (src && src->version)
		*dst = *src;
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
 * Writer errors.
 */

int ms__writer_fail(ms_writer *w, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ms__error_vset(&w->err, err, -EIO, ms_stream_tell(w->s), MS__NO_SECTION,
		       NULL, fmt, ap);
	va_end(ap);
	return w->err.code;
}

int ms__writer_take_stream(ms_writer *w)
{
	/* The stream's error names its own offset. */
	return ms__error_take(&w->err, ms__stream_error(w->s));
}

/* Refuse a call with -EINVAL, saying what was expected; the writer
 * stays usable (ms_writer_error() is unchanged). */
static int wmisuse(ms_writer *w, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

static int wmisuse(ms_writer *w, const char *fmt, ...)
{
	va_list ap;

	w->misuse.code = 0;
	va_start(ap, fmt);
	ms__error_vset(&w->misuse, -EINVAL, -EINVAL, MS__NO_OFFSET,
		       MS__NO_SECTION, NULL, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int ms_writer_error(const ms_writer *w)
{
	assert(w);
	if (w->err.code)
		return w->err.code;
	return ms_stream_error(w->s);
}

const char *ms_writer_errmsg(const ms_writer *w)
{
	assert(w);
	if (w->err.code)
		return w->err.msg;
	if (ms_stream_error(w->s))
		return ms_stream_errmsg(w->s);
	return w->misuse.msg;
}

uint64_t ms_writer_error_offset(const ms_writer *w)
{
	assert(w);
	if (w->err.code)
		return w->err.offset;
	if (ms_stream_error(w->s))
		return ms_stream_error_offset(w->s);
	return 0;
}

/*
 * Writer.
 */

/* The native writer's compressor, when asked for. */
static int writer_zinit(ms_writer *w)
{
	w->zcap = deflateBound(NULL, (uLong)w->chunk) + 4 + 64;
	w->zbuf = ms__malloc(w->a, w->zcap);
	ms__zstream_init(&w->z, w->a);
	if (!w->zbuf || deflateInit2(&w->z, w->o.compress_level, Z_DEFLATED,
				     -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		ms__free(w->a, w->zbuf);
		return -ENOMEM;
	}
	w->z_init = true;
	return 0;
}

int ms_writer_new(ms_writer **out, ms_stream *s, const ms_codec_opts *opts)
{
	ms_codec_opts o;
	ms_writer *w;
	int ret;

	if (!out || !s || ms_stream_mode_of(s) != MS_STREAM_WRITER)
		return -EINVAL;
	ret = ms__codec_opts_apply(&o, opts, false, NULL);
	if (ret)
		return ret;
	w = ms__malloc(o.allocator, sizeof(*w));
	if (!w)
		return -ENOMEM;
	memset(w, 0, sizeof(*w));
	w->s = s;
	w->o = o;
	w->a = o.allocator;
	w->err.offset = MS__NO_OFFSET;
	w->prof = o.profile == MS_PROFILE_QEMU ? &ms__codec_qemu
					       : &ms__codec_native;
	w->chunk = o.chunk_size ? o.chunk_size : MS_NATIVE_DEFAULT_CHUNK;
	w->crc_on = o.checksum == 0;
	if (o.profile == MS_PROFILE_NATIVE && o.compress_level > 0 &&
	    writer_zinit(w)) {
		ms__free(w->a, w);
		return -ENOMEM;
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
	assert(w);
	if (ms__writer_check(w))
		return w->err.code;
	if (w->state != MS__W_INIT)
		return wmisuse(w, "ms_writer_header: the header is already "
				  "written (called twice)");
	w->state = MS__W_BODY;
	w->start = ms_stream_tell(w->s);
	return w->prof->header(w);
}

/* Common checks: not failed, header written, nothing open (unless
 * @section_open_ok), and the body not ended by EOF (unless @after_eof). */
static int wready(ms_writer *w, const char *fn, bool section_open_ok,
		  bool after_eof)
{
	if (ms__writer_check(w))
		return w->err.code;
	if (w->state == MS__W_INIT)
		return wmisuse(w, "%s: called before ms_writer_header", fn);
	if (w->open && !section_open_ok)
		return wmisuse(w,
			       "%s: section %u is open: call ms_writer_end "
			       "first",
			       fn, w->cur_id);
	if (w->state == MS__W_DONE)
		return wmisuse(w, "%s: called after ms_writer_finish", fn);
	if (w->state != MS__W_BODY && !after_eof)
		return wmisuse(w, "%s: called after ms_writer_eof", fn);
	return 0;
}

int ms_writer_configuration(ms_writer *w, const char *machine,
			    const void *extra, size_t extra_len)
{
	size_t len;
	int ret;

	assert(w && machine);
	ret = wready(w, "ms_writer_configuration", false, false);
	if (ret)
		return ret;
	len = strlen(machine);
	if (len > MS_COUNTED_STRING_MAX)
		return wmisuse(w,
			       "ms_writer_configuration: machine type name of "
			       "%zu bytes, at most %u",
			       len, MS_COUNTED_STRING_MAX);
	if (w->o.no_configuration)
		return wmisuse(w, "ms_writer_configuration: the writer was "
				  "created with no_configuration");
	if (w->nrecords)
		return wmisuse(w, "ms_writer_configuration: expected right "
				  "after the header, before any other record");
	if (extra_len && !extra)
		return wmisuse(w,
			       "ms_writer_configuration: extra is NULL with "
			       "extra_len %zu",
			       extra_len);
	w->nrecords++;
	return w->prof->configuration(w, machine, len, extra, extra_len);
}

int ms_writer_begin(ms_writer *w, const ms_section_hdr *hdr,
		    ms_stream **payload)
{
	uint8_t id[5], iv[8];
	struct iovec v[3];
	size_t len = 0;
	bool full_hdr;
	int ret;

	assert(w && hdr && payload);
	ret = wready(w, "ms_writer_begin", false, false);
	if (ret)
		return ret;
	if (hdr->type < MS_REC_START || hdr->type > MS_REC_FULL)
		return wmisuse(w,
			       "ms_writer_begin: type 0x%02x, expected START, "
			       "PART, END or FULL",
			       hdr->type);
	full_hdr = hdr->type == MS_REC_START || hdr->type == MS_REC_FULL;
	if (full_hdr) {
		len = strnlen(hdr->idstr, sizeof(hdr->idstr));
		if (len > MS_COUNTED_STRING_MAX)
			return wmisuse(w, "ms_writer_begin: idstr is not "
					  "NUL-terminated within 255 bytes");
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
	if (full_hdr) {
		id[4] = (uint8_t)len;
		v[0].iov_len = 5;
		v[1].iov_base = (void *)(uintptr_t)hdr->idstr;
		v[1].iov_len = len;
		ms__store_be32(iv, hdr->instance_id);
		ms__store_be32(iv + 4, hdr->version_id);
		v[2].iov_base = iv;
		v[2].iov_len = 8;
	}
	w->nrecords++;
	w->open = true;
	/* Only the id is needed later, for the footer. */
	w->cur_id = hdr->section_id;
	return w->prof->begin(w, hdr->type, v, full_hdr ? 3 : 1, payload);
}

int ms_writer_end(ms_writer *w)
{
	assert(w);
	if (ms__writer_check(w))
		return w->err.code;
	if (!w->open)
		return wmisuse(w, "ms_writer_end: no section is open (expected "
				  "after ms_writer_begin)");
	w->open = false;
	return w->prof->end(w);
}

int ms_writer_command(ms_writer *w, uint16_t cmd, const void *data,
		      uint16_t len)
{
	uint8_t hdr[4];
	int fixed, ret;

	assert(w);
	ret = wready(w, "ms_writer_command", false, false);
	if (ret)
		return ret;
	fixed = ms__command_len(cmd);
	if (fixed == -2)
		return wmisuse(w,
			       "ms_writer_command: unknown command %u, "
			       "expected 1 to %u",
			       cmd, MS_CMD_MAX - 1);
	if (fixed >= 0 && fixed != len)
		return wmisuse(w,
			       "ms_writer_command: command %u takes %d bytes "
			       "of payload, not %u",
			       cmd, fixed, len);
	if (len && !data)
		return wmisuse(w, "ms_writer_command: data is NULL with len %u",
			       len);
	w->nrecords++;
	ms__store_be16(hdr, cmd);
	ms__store_be16(hdr + 2, len);
	return w->prof->command(w, hdr, data, len);
}

int ms_writer_eof(ms_writer *w)
{
	int ret;

	assert(w);
	ret = wready(w, "ms_writer_eof", false, false);
	if (ret)
		return ret;
	w->state = MS__W_EOF;
	w->nrecords++;
	return w->prof->eof(w);
}

int ms_writer_vmdesc(ms_writer *w, const void *json, size_t len)
{
	int ret;

	assert(w);
	ret = wready(w, "ms_writer_vmdesc", false, true);
	if (ret)
		return ret;
	if (w->state == MS__W_BODY)
		return wmisuse(w, "ms_writer_vmdesc: called before "
				  "ms_writer_eof");
	if (w->state != MS__W_EOF)
		return wmisuse(w, "ms_writer_vmdesc: the VM description is "
				  "already written (called twice)");
	if (w->o.no_vmdesc)
		return wmisuse(w, "ms_writer_vmdesc: the writer was created "
				  "with no_vmdesc");
	if (len > UINT32_MAX)
		return wmisuse(w, "ms_writer_vmdesc: %zu bytes, at most 4 GiB",
			       len);
	if (len && !json)
		return wmisuse(w, "ms_writer_vmdesc: json is NULL with len %zu",
			       len);
	w->state = MS__W_VMDESC;
	return w->prof->vmdesc(w, json, len);
}

int ms_writer_finish(ms_writer *w)
{
	int ret;

	assert(w);
	if (w->state == MS__W_DONE && !ms__writer_check(w))
		return wmisuse(w, "ms_writer_finish: called twice");
	ret = wready(w, "ms_writer_finish", false, true);
	if (ret)
		return ret;
	if (w->state == MS__W_BODY)
		return wmisuse(w, "ms_writer_finish: called before "
				  "ms_writer_eof");
	w->state = MS__W_DONE;
	if (w->prof->finish(w))
		return w->err.code;
	ms_stream_flush(w->s);
	return ms__writer_check(w);
}

/*
 * Reader errors.
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
	return ms__error_vset(&r->err, err, -EBADMSG, off,
			      r->have_cur ? (long long)r->cur.section_id
					  : MS__NO_SECTION,
			      r->cur.idstr, fmt, ap);
}

int ms__reader_fail_at(ms_reader *r, int err, uint64_t off, const char *fmt,
		       ...)
{
	va_list ap;

	va_start(ap, fmt);
	rvfail(r, err, off, fmt, ap);
	va_end(ap);
	return r->err.code;
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
	return r->err.code;
}

int ms__reader_stream_at(ms_reader *r, ms_stream *s, uint64_t off,
			 const char *what)
{
	int err = ms_stream_error(s);

	if (!err)
		return 0;
	if (err == -ENODATA)
		return ms__reader_fail_at(r, err, off,
					  "stream truncated in %s: %s", what,
					  ms__stream_errtext(s));
	return ms__reader_fail_at(r, err, off, "%s: %s", what,
				  ms__stream_errtext(s));
}

int ms__reader_stream(ms_reader *r, ms_stream *s, const char *what)
{
	return ms__reader_stream_at(r, s, ms_stream_error_offset(s), what);
}

int ms_reader_error(const ms_reader *r)
{
	return r->err.code;
}

const char *ms_reader_errmsg(const ms_reader *r)
{
	return r->err.code ? r->err.msg : "";
}

uint64_t ms_reader_error_offset(const ms_reader *r)
{
	return r->err.code ? r->err.offset : 0;
}

ms_profile ms_reader_profile(const ms_reader *r)
{
	return r->profile;
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
	struct ms__sec *x = SEC(r, i), *y;
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
	struct ms__sec *x = SEC(r, i);
	int d;

	sec_fix_height(r, i);
	d = sec_height(r, x->left) - sec_height(r, x->right);
	if (d > 1) {
		const struct ms__sec *l = SEC(r, x->left);

		if (sec_height(r, l->left) < sec_height(r, l->right))
			x->left = sec_rotate(r, x->left, true);
		return sec_rotate(r, i, false);
	}
	if (d < -1) {
		const struct ms__sec *rt = SEC(r, x->right);

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

static struct ms__sec *sec_find(ms_reader *r, uint32_t id)
{
	uint32_t i = r->sec_root;

	while (i) {
		struct ms__sec *sc = SEC(r, i);

		r->table_steps++;
		if (sc->id == id)
			return sc;
		i = id < sc->id ? sc->left : sc->right;
	}
	return NULL;
}

/* Add section @id, which sec_find() did not find. */
static struct ms__sec *sec_add(ms_reader *r, uint32_t id, uint64_t off)
{
	struct ms__sec *sc;
	uint32_t n;

	if (r->nsecs >= MS_MAX_SECTIONS) {
		ms__reader_fail_at(r, -EFBIG, off, "more than %u sections",
				   MS_MAX_SECTIONS);
		return NULL;
	}
	if (r->nsecs == r->capsecs) {
		size_t cap = r->capsecs ? r->capsecs * 2 : 64;
		struct ms__sec *g;

		if (cap > MS_MAX_SECTIONS)
			cap = MS_MAX_SECTIONS;
		g = ms__realloc(r->a, r->secs, cap * sizeof(*g));
		if (!g) {
			ms__reader_fail_at(r, -ENOMEM, off, "out of memory");
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

/* Copy an idstr up to its NUL (at most MS_COUNTED_STRING_MAX bytes). */
static void idstr_copy(char *dst, const char *src)
{
	size_t n = strnlen(src, MS_COUNTED_STRING_MAX);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* START or FULL: a new section, or a finished one started again. */
static int section_start(ms_reader *r, struct ms__sec *sc,
			 const ms_section_hdr *h, uint64_t off)
{
	/* A START or FULL would silently end the open START. */
	if (sc && sc->live)
		return ms__reader_fail_at(r, -EBADMSG, off,
					  "%s of a section already started "
					  "(its START has no END yet)",
					  ms_record_type_name(h->type));
	if (!sc)
		sc = sec_add(r, h->section_id, off);
	if (!sc)
		return r->err.code;
	sc->live = h->type == MS_REC_START;
	sc->instance_id = h->instance_id;
	sc->version_id = h->version_id;
	idstr_copy(sc->idstr, h->idstr);
	return 0;
}

void ms__record_clear(ms_record *rec)
{
	rec->type = 0;
	rec->offset = 0;
	rec->section.type = 0;
	rec->section.section_id = 0;
	rec->section.idstr[0] = '\0';
	rec->section.instance_id = 0;
	rec->section.version_id = 0;
	rec->machine[0] = '\0';
	rec->cmd = 0;
	rec->length = 0;
	rec->index = 0;
}

void ms__section_hdr_copy(ms_section_hdr *dst, const ms_section_hdr *src)
{
	dst->type = src->type;
	dst->section_id = src->section_id;
	idstr_copy(dst->idstr, src->idstr);
	dst->instance_id = src->instance_id;
	dst->version_id = src->version_id;
}

int ms__reader_section_seen(ms_reader *r, ms_section_hdr *h, uint64_t off)
{
	struct ms__sec *sc = sec_find(r, h->section_id);

	ms__section_hdr_copy(&r->cur, h);
	r->have_cur = true;
	if (h->type == MS_REC_START || h->type == MS_REC_FULL)
		return section_start(r, sc, h, off);
	if (!sc || !sc->live) {
		strcpy(r->cur.idstr, "?");
		return ms__reader_fail_at(r, -EBADMSG, off,
					  "%s for a section that was not "
					  "started",
					  ms_record_type_name(h->type));
	}
	idstr_copy(h->idstr, sc->idstr);
	h->instance_id = sc->instance_id;
	h->version_id = sc->version_id;
	ms__section_hdr_copy(&r->cur, h);
	if (h->type == MS_REC_END)
		sc->live = false;
	return 0;
}

/*
 * CONFIGURATION (both profiles): be32 length and the machine name, then
 * subsections that the caller may read; those it leaves are skipped.
 */
int ms__reader_config_name(ms_reader *r, ms_stream *p, ms_record *rec)
{
	/* Native: @p is the payload stream, whose offsets are not the
	 * input's: name the record, or where its DATA ended. */
	bool native = p != r->s;
	uint64_t off = native ? rec->offset : ms_stream_tell(p);
	uint32_t len;

	r->open = MS__O_CONFIG;
	if (ms_get_be32(p, &len))
		goto out_stream;
	if (len > MS_COUNTED_STRING_MAX)
		return ms__reader_fail_at(r, -EBADMSG, off,
					  "machine type name of %u bytes (at "
					  "most %u)",
					  len, MS_COUNTED_STRING_MAX);
	if (ms_get_buffer(p, rec->machine, len))
		goto out_stream;
	rec->machine[len] = '\0';
	if (memchr(rec->machine, '\0', len))
		return ms__reader_fail_at(r, -EBADMSG, off,
					  "machine type name contains a NUL "
					  "byte");
	rec->length = len;
	return 0;

out_stream:
	return native ? ms__reader_stream_at(r, p, ms_stream_tell(r->s),
					     "configuration")
		      : ms__reader_stream(r, p, "configuration");
}

int ms__reader_config_skip(ms_reader *r, ms_stream *p)
{
	char name[MS_COUNTED_STRING_MAX + 1];
	const uint8_t *b;
	uint64_t off;
	uint32_t ver, n, i;

	for (;;) {
		ssize_t k = ms_peek(p, &b, 1);

		if (k < 0)
			return ms__reader_stream(r, p, "configuration");
		if (k == 0 || b[0] != MS_REC_SUBSECTION)
			return 0;
		off = ms_stream_tell(p);
		ms_skip(p, 1);
		ms_get_counted_string(p, name);
		ms_get_be32(p, &ver);
		if (ms_stream_error(p))
			return ms__reader_stream(r, p,
						 "configuration subsection");
		if (!strcmp(name, "configuration/target-page-bits")) {
			ms_skip(p, 4);
		} else if (!strcmp(name, "configuration/capabilities")) {
			ms_get_be32(p, &n);
			for (i = 0; i < n && !ms_stream_error(p); i++)
				ms_get_counted_string(p, name);
		} else if (!strcmp(name, "configuration/uuid")) {
			ms_skip(p, 16);
		} else {
			return ms__reader_fail_at(r, -EBADMSG, off,
						  "unknown configuration "
						  "subsection '%s'",
						  name);
		}
		if (ms_stream_error(p))
			return ms__reader_stream(r, p,
						 "configuration subsection");
	}
}

int ms__reader_grow(ms_reader *r, uint8_t **buf, size_t *cap, size_t need)
{
	uint8_t *n;

	if (*cap >= need)
		return 0;
	n = ms__realloc(r->a, *buf, need);
	if (!n)
		return ms__reader_fail_at(r, -ENOMEM, ms_stream_tell(r->s),
					  "out of memory for a record of %zu "
					  "bytes",
					  need);
	*buf = n;
	*cap = need;
	return 0;
}

/*
 * Reader.
 */

int ms_reader_new(ms_reader **out, ms_stream *s, const ms_codec_opts *opts)
{
	ms_codec_opts o;
	ms_reader *r;
	int ret;

	if (!out || !s || ms_stream_mode_of(s) != MS_STREAM_READER)
		return -EINVAL;
	ret = ms__codec_opts_apply(&o, opts, true, NULL);
	if (ret)
		return ret;
	r = ms__malloc(o.allocator, sizeof(*r));
	if (!r)
		return -ENOMEM;
	memset(r, 0, sizeof(*r));
	r->s = s;
	r->o = o;
	r->a = o.allocator;
	r->err.offset = MS__NO_OFFSET;
	r->max_vmdesc = o.max_vmdesc ? o.max_vmdesc : MS_DEFAULT_MAX_VMDESC;
	r->profile = MS_PROFILE_AUTO;
	*out = r;
	return 0;
}

void ms_reader_free(ms_reader *r)
{
	if (!r)
		return;
	ms_stream_close(r->window);
	ms_stream_close(r->dead_window);
	ms_stream_close(r->payload);
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

/* The file header: the profile is decided from its first 8 bytes. */
static int reader_header(ms_reader *r)
{
	const uint8_t *p;
	ssize_t n = ms_peek(r->s, &p, 8);

	if (n < 0)
		return ms__reader_stream(r, r->s, "file header");
	if (n < 8)
		return ms__reader_fail_at(r, -ENODATA, 0,
					  "stream of %zd bytes is too short "
					  "for a file header",
					  n);
	if (!memcmp(p, ms__native_magic, 8) &&
	    r->o.profile != MS_PROFILE_QEMU) {
		r->prof = &ms__codec_native;
		return ms__native_read_header(r);
	}
	if (r->o.profile != MS_PROFILE_NATIVE) {
		r->prof = &ms__codec_qemu;
		return ms__qemu_read_header(r);
	}
	return ms__reader_fail_at(r, -EBADMSG, 0,
				  "not a migstream native stream (bad magic)");
}

int ms_reader_next(ms_reader *r, ms_record *rec)
{
	assert(r && rec);
	if (r->err.code)
		return r->err.code;
	if (r->state == MS__R_DONE)
		return 0;
	if (r->state == MS__R_START && reader_header(r))
		return r->err.code;
	return r->prof->next(r, rec);
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
