/* SPDX-License-Identifier: MIT */
/*
 * The save driver: runs the registered handlers through setup, precopy
 * rounds and stop-and-copy, each inside its own section.  Every error
 * stops the save at once and is reported with its offset and section.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "driver-impl.h"

/* Where a save is; each public call accepts some of these. */
enum save_stage {
	SAVE_NEW,	 /* nothing written yet */
	SAVE_SET_UP,	 /* ms_save_setup() ran: precopy rounds */
	SAVE_COMPLETING, /* stop-and-copy, one section per step */
	SAVE_COMPLETE,	 /* EOF and trailer written */
};

struct ms_save {
	ms_registry *reg;
	ms_writer *w;
	ms_stream *s;
	ms_save_opts o;
	ms_codec_opts codec; /* the copy o.codec points to */
	ms__error err;	     /* sticky; its offset is the output's */
	ms__error refused;   /* the last call refused with -EINVAL */
	enum save_stage stage;
	size_t step; /* completion: the next END/FULL step */
};

static int save_fail(ms_save *sv, int err, const struct ms__handler *h,
		     const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 4, 5)))
#endif
	;

static int save_fail(ms_save *sv, int err, const struct ms__handler *h,
		     const char *fmt, ...)
{
	uint64_t off;
	va_list ap;

	if (sv->err.code)
		return sv->err.code;
	/* Where the output failed, if it did; else how far the save got. */
	off = ms_stream_error(sv->s) ? ms_stream_error_offset(sv->s)
				     : ms_stream_tell(sv->s);
	va_start(ap, fmt);
	ms__error_vset(&sv->err, err, -EIO, off,
		       h ? (long long)h->section_id : MS__NO_SECTION,
		       h ? h->idstr : NULL, fmt, ap);
	va_end(ap);
	return sv->err.code;
}

static int save_refuse(ms_save *sv, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/* Refuse a call out of order: -EINVAL, the save unchanged. */
static int save_refuse(ms_save *sv, const char *fmt, ...)
{
	va_list ap;

	memset(&sv->refused, 0, sizeof(sv->refused));
	va_start(ap, fmt);
	ms__error_vset(&sv->refused, -EINVAL, -EINVAL, MS__NO_OFFSET,
		       MS__NO_SECTION, NULL, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Check and copy ms_save_new()'s @opts into @o and @codec. */
static int save_opts(ms_registry *reg, const ms_save_opts *opts,
		     ms_save_opts *o, ms_codec_opts *codec)
{
	memset(o, 0, sizeof(*o));
	o->version = MS_SAVE_OPTS_VERSION;
	if (opts && opts->version != MS_SAVE_OPTS_VERSION)
		return ms__registry_refuse(
			reg, -EINVAL,
			"ms_save_new: opts->version is %u, expected "
			"MS_SAVE_OPTS_VERSION (%u)",
			opts->version, MS_SAVE_OPTS_VERSION);
	if (opts && opts->vmdesc_len && !opts->vmdesc)
		return ms__registry_refuse(reg, -EINVAL,
					   "ms_save_new: opts->vmdesc_len is "
					   "%zu but opts->vmdesc is NULL",
					   opts->vmdesc_len);
	if (opts)
		*o = *opts;
	if (ms__driver_codec_copy(reg, codec, o->codec, false,
				  "ms_save_new: opts"))
		return -EINVAL;
	o->codec = codec;
	if (!o->machine)
		codec->no_configuration = true;
	if (!o->vmdesc)
		codec->no_vmdesc = true;
	return 0;
}

int ms_save_new(ms_save **out, ms_registry *reg, ms_stream *s,
		const ms_save_opts *opts)
{
	ms_codec_opts codec;
	ms_save_opts o;
	ms_save *sv;
	int ret;

	if (!reg)
		return -EINVAL;
	if (!out || !s)
		return ms__registry_refuse(
			reg, -EINVAL, "ms_save_new: no %s given",
			out ? "output stream" : "out pointer");
	if (save_opts(reg, opts, &o, &codec))
		return -EINVAL;
	sv = ms__malloc(reg->a, sizeof(*sv));
	if (!sv)
		return ms__registry_refuse(reg, -ENOMEM,
					   "ms_save_new: out of memory");
	memset(sv, 0, sizeof(*sv));
	ret = ms_writer_new(&sv->w, s, &codec);
	if (ret) {
		ms__free(reg->a, sv);
		return ms__registry_refuse(reg, ret,
					   "ms_save_new: no writer with "
					   "opts->codec on this stream: %s",
					   ms_strerror(ret));
	}
	sv->reg = reg;
	sv->s = s;
	sv->o = o;
	sv->codec = codec;
	sv->o.codec = &sv->codec;
	*out = sv;
	return 0;
}

const char *ms_save_errmsg(const ms_save *sv)
{
	if (sv->err.code)
		return sv->err.msg;
	return sv->refused.code ? sv->refused.msg : "";
}

int ms_save_error(const ms_save *sv)
{
	return sv->err.code;
}

uint64_t ms_save_error_offset(const ms_save *sv)
{
	return sv->err.code ? sv->err.offset : 0;
}

/* Run one save callback inside its own section. */
static int save_section(ms_save *sv, struct ms__handler *h, uint8_t type,
			int (*fn)(void *, ms_stream *), const char *what)
{
	ms_section_hdr hdr;
	ms_stream *p;
	int ret;

	memset(&hdr, 0, sizeof(hdr));
	hdr.type = type;
	hdr.section_id = h->section_id;
	strcpy(hdr.idstr, h->idstr);
	hdr.instance_id = h->instance_id;
	hdr.version_id = h->version_id;
	ret = ms_writer_begin(sv->w, &hdr, &p);
	if (ret)
		return save_fail(sv, ret, h, "%s", ms_writer_errmsg(sv->w));
	ret = fn ? fn(h->opaque, p) : 0;
	/* The stream's first error wins over what the handler returned. */
	if (ret < 0)
		return save_fail(sv,
				 ms_stream_error(p) ? ms_stream_error(p) : ret,
				 h, "%s failed: %s", what,
				 ms_stream_error(p) ? ms__stream_errtext(p)
						    : ms_strerror(ret));
	if (ms_stream_error(p))
		return save_fail(sv, ms_stream_error(p), h, "%s: %s", what,
				 ms__stream_errtext(p));
	if (ms_writer_end(sv->w))
		return save_fail(sv, ms_writer_error(sv->w), h, "%s",
				 ms_writer_errmsg(sv->w));
	return ret;
}

int ms_save_setup(ms_save *sv)
{
	size_t i;
	int ret;

	assert(sv);
	if (sv->err.code)
		return sv->err.code;
	if (sv->stage != SAVE_NEW)
		return save_refuse(sv, "ms_save_setup: called twice");
	sv->stage = SAVE_SET_UP;
	if (ms_writer_header(sv->w))
		return save_fail(sv, ms_writer_error(sv->w), NULL, "%s",
				 ms_writer_errmsg(sv->w));
	if (sv->o.machine &&
	    (ret = ms_writer_configuration(sv->w, sv->o.machine, NULL, 0)))
		return save_fail(sv, ret, NULL, "configuration: %s",
				 ms_writer_errmsg(sv->w));
	for (i = 0; i < sv->reg->n; i++) {
		struct ms__handler *h = &sv->reg->h[i];

		h->started = false;
		h->more = false;
		if (!ms__handler_is_iterative(h))
			continue;
		h->started = true;
		h->more = true;
		if (save_section(sv, h, MS_REC_START, h->ops->save_setup,
				 "save_setup"))
			return sv->err.code;
	}
	/* The destination gets the START sections before the first round
	 * starts: a handler may need them to get ready (ms_ram's channel
	 * threads start there, and the source's channels would otherwise
	 * fill their sockets while the START waited in this buffer). */
	if (ms_stream_flush(sv->s))
		return ms__error_take(&sv->err, ms__stream_error(sv->s));
	return 0;
}

int ms_save_iterate(ms_save *sv)
{
	bool more = false;
	size_t i;
	int ret;

	assert(sv);
	if (sv->err.code)
		return sv->err.code;
	if (sv->stage == SAVE_NEW)
		return save_refuse(
			sv, "ms_save_iterate: called before ms_save_setup");
	if (sv->stage != SAVE_SET_UP)
		return save_refuse(sv, "ms_save_iterate: called after "
				       "stop-and-copy began (ms_save_complete "
				       "or ms_save_complete_step)");
	for (i = 0; i < sv->reg->n; i++) {
		struct ms__handler *h = &sv->reg->h[i];

		if (!ms__handler_is_iterative(h))
			continue;
		/* "Nothing for now" lasts until the handler has data again. */
		if (!h->more &&
		    !(h->ops->pending && h->ops->pending(h->opaque)))
			continue;
		ret = save_section(sv, h, MS_REC_PART, h->ops->save_iterate,
				   "save_iterate");
		if (ret < 0)
			return ret;
		h->more = ret > 0;
		more |= h->more;
	}
	return more ? 1 : 0;
}

uint64_t ms_save_pending(ms_save *sv)
{
	uint64_t sum = 0;
	size_t i;

	assert(sv);
	for (i = 0; i < sv->reg->n; i++) {
		const struct ms__handler *h = &sv->reg->h[i];

		if (ms__handler_is_iterative(h) && h->ops->pending)
			sum += h->ops->pending(h->opaque);
	}
	return sum;
}

int ms_save_complete_step(ms_save *sv)
{
	size_t n, i;
	bool full;

	assert(sv);
	if (sv->err.code)
		return sv->err.code;
	if (sv->stage == SAVE_NEW)
		return save_refuse(sv, "ms_save_complete_step: called before "
				       "ms_save_setup");
	if (sv->stage == SAVE_COMPLETE)
		return save_refuse(sv, "ms_save_complete_step: the save is "
				       "already complete");
	if (sv->stage == SAVE_SET_UP) {
		sv->stage = SAVE_COMPLETING;
		sv->step = 0;
	}
	/* Steps: END per iterative handler, FULL per other, then EOF. */
	n = sv->reg->n;
	while (sv->step < 2 * n) {
		struct ms__handler *h;

		i = sv->step % n;
		full = sv->step >= n;
		sv->step++;
		h = &sv->reg->h[i];
		if (!full && ms__handler_is_iterative(h))
			return save_section(sv, h, MS_REC_END,
					    h->ops->save_complete,
					    "save_complete") < 0
				       ? sv->err.code
				       : 1;
		if (full && !ms__handler_is_iterative(h))
			return save_section(sv, h, MS_REC_FULL,
					    h->ops->save_state,
					    "save_state") < 0
				       ? sv->err.code
				       : 1;
	}
	sv->stage = SAVE_COMPLETE;
	if (ms_writer_eof(sv->w) ||
	    (sv->o.vmdesc &&
	     ms_writer_vmdesc(sv->w, sv->o.vmdesc, sv->o.vmdesc_len)) ||
	    ms_writer_finish(sv->w))
		return save_fail(sv, ms_writer_error(sv->w), NULL, "%s",
				 ms_writer_errmsg(sv->w));
	return 0;
}

int ms_save_complete(ms_save *sv)
{
	int ret;

	assert(sv);
	if (!sv->err.code && sv->stage == SAVE_NEW)
		return save_refuse(
			sv, "ms_save_complete: called before ms_save_setup");
	if (!sv->err.code && sv->stage == SAVE_COMPLETING)
		return save_refuse(sv, "ms_save_complete: called after "
				       "ms_save_complete_step");
	if (!sv->err.code && sv->stage == SAVE_COMPLETE)
		return save_refuse(
			sv, "ms_save_complete: the save is already complete");
	while ((ret = ms_save_complete_step(sv)) == 1)
		;
	return ret;
}

void ms_save_free(ms_save *sv)
{
	size_t i;

	if (!sv)
		return;
	for (i = 0; i < sv->reg->n; i++) {
		struct ms__handler *h = &sv->reg->h[i];

		if (h->started && h->ops->save_cleanup)
			h->ops->save_cleanup(h->opaque);
		h->started = false;
		h->more = false;
	}
	ms_writer_free(sv->w);
	ms__free(sv->reg->a, sv);
}
