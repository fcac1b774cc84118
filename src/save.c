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
#include "stream-impl.h"

struct ms_save {
	ms_registry *reg;
	ms_writer *w;
	ms_stream *s;
	ms_save_opts o;
	int err;
	uint64_t err_offset; /* output offset of the error */
	int stage;	     /* 0 new, 1 set up, 2 completing, 3 complete */
	size_t step;	     /* completion: the next END/FULL step */
	char errmsg[768];
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
	va_list ap;
	int n;

	if (sv->err)
		return sv->err;
	sv->err = err < 0 ? err : -EIO;
	/* Where the output failed, if it did; else how far the save got. */
	sv->err_offset = ms_stream_error(sv->s) ? ms_stream_error_offset(sv->s)
						: ms_stream_tell(sv->s);
	if (h)
		n = snprintf(sv->errmsg, sizeof(sv->errmsg),
			     "offset %llu: section %u '%s': ",
			     (unsigned long long)sv->err_offset, h->section_id,
			     h->idstr);
	else
		n = snprintf(sv->errmsg, sizeof(sv->errmsg), "offset %llu: ",
			     (unsigned long long)sv->err_offset);
	if (n < 0 || (size_t)n >= sizeof(sv->errmsg))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(sv->errmsg + n, sizeof(sv->errmsg) - (size_t)n, fmt, ap);
	va_end(ap);
	return sv->err;
}

int ms_save_new(ms_save **out, ms_registry *reg, ms_stream *s,
		const ms_save_opts *opts)
{
	ms_save_opts o;
	ms_save *sv;
	int ret;

	if (!out || !reg || !s)
		return -EINVAL;
	memset(&o, 0, sizeof(o));
	if (opts) {
		if (opts->version != MS_SAVE_OPTS_VERSION ||
		    (opts->vmdesc_len && !opts->vmdesc))
			return -EINVAL;
		o = *opts;
	}
	if (!o.codec.version) {
		o.codec.version = MS_CODEC_OPTS_VERSION;
		o.codec.profile = MS_PROFILE_QEMU;
	}
	if (!o.machine)
		o.codec.no_configuration = true;
	if (!o.vmdesc)
		o.codec.no_vmdesc = true;
	if (!o.codec.allocator)
		o.codec.allocator = reg->a;
	sv = ms__malloc(reg->a, sizeof(*sv));
	if (!sv)
		return -ENOMEM;
	memset(sv, 0, sizeof(*sv));
	ret = ms_writer_new(&sv->w, s, &o.codec);
	if (ret) {
		ms__free(reg->a, sv);
		return ret;
	}
	sv->reg = reg;
	sv->s = s;
	sv->o = o;
	*out = sv;
	return 0;
}

const char *ms_save_errmsg(const ms_save *sv)
{
	return sv->err ? sv->errmsg : "";
}

int ms_save_error(const ms_save *sv)
{
	return sv->err;
}

uint64_t ms_save_error_offset(const ms_save *sv)
{
	return sv->err ? sv->err_offset : 0;
}

/* Run one save callback inside its own section. */
static int save_section(ms_save *sv, struct ms__handler *h, uint8_t type,
			int (*fn)(ms_stream *, void *), const char *what)
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
	ret = fn ? fn(p, h->opaque) : 0;
	/* The stream's first error wins over what the handler returned. */
	if (ret < 0)
		return save_fail(sv,
				 ms_stream_error(p) ? ms_stream_error(p) : ret,
				 h, "%s failed: %s", what,
				 ms_stream_error(p) ? ms_stream_errmsg(p)
						    : ms_strerror(ret));
	if (ms_stream_error(p))
		return save_fail(sv, ms_stream_error(p), h, "%s: %s", what,
				 ms_stream_errmsg(p));
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
	if (sv->err)
		return sv->err;
	if (sv->stage != 0)
		return -EINVAL;
	sv->stage = 1;
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
			return sv->err;
	}
	return 0;
}

int ms_save_iterate(ms_save *sv)
{
	bool more = false;
	size_t i;
	int ret;

	assert(sv);
	if (sv->err)
		return sv->err;
	if (sv->stage != 1)
		return -EINVAL;
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
	if (sv->err)
		return sv->err;
	if (sv->stage == 1) {
		sv->stage = 2;
		sv->step = 0;
	} else if (sv->stage != 2) {
		return -EINVAL;
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
				       ? sv->err
				       : 1;
		if (full && !ms__handler_is_iterative(h))
			return save_section(sv, h, MS_REC_FULL,
					    h->ops->save_state,
					    "save_state") < 0
				       ? sv->err
				       : 1;
	}
	sv->stage = 3;
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
	if (!sv->err && sv->stage != 1)
		return -EINVAL;
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
