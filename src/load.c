/* SPDX-License-Identifier: MIT */
/*
 * The load driver: dispatches each section of a stream to its handler,
 * from a stream it pulls (ms_load_run()) or from chunks fed to it
 * (ms_load_feed()).  Every error stops the load at once and is reported
 * with its offset and section; nothing after a failure is parsed.
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

struct ms_load {
	ms_registry *reg;
	ms_load_opts o;
	const ms_allocator *a;
	ms_reader *r;
	ms_stream *feed; /* incremental loads */
	bool complete;
	bool have_rec; /* rec read, its payload not loaded yet */
	ms_record rec;
	struct ms__handler *cur;
	ms__qemu_scan qscan; /* QEMU feed: the open section's footer search */
	/* Fed: the bytes there were when the next element last ran out of
	 * data (0 if it has not); see retry_due(). */
	size_t retry_at;
	size_t max_fed;	       /* the most bytes a fed load holds */
	uint64_t attempts;     /* tries of a record or payload (for tests) */
	uint64_t tried_bytes;  /* bytes those tries read (for tests) */
	ms__native_scan nscan; /* native feed: the element scan so far */
	bool started;	       /* the file header was read */
	bool native;
	unsigned native_crc;
	void *snap;	     /* reader state before a record that may run dry */
	ms_codec_opts codec; /* the copy o.codec points to */
	ms__error err;	     /* sticky */
	ms__error refused;   /* the last call refused with -EINVAL */
};

static int load_fail(ms_load *ld, int err, uint64_t off,
		     const ms_section_hdr *sec, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 5, 6)))
#endif
	;

/*
 * Fail the load (the first error wins) at input offset @off, with the
 * message "offset 0x<off>: section <id> '<idstr>': <fmt...>" (the section
 * part only with @sec; no prefix and offset 0 when @off is MS__NO_OFFSET).
 */
static int load_fail(ms_load *ld, int err, uint64_t off,
		     const ms_section_hdr *sec, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ms__error_vset(&ld->err, err, -EIO, off,
		       sec ? (long long)sec->section_id : MS__NO_SECTION,
		       sec ? sec->idstr : NULL, fmt, ap);
	va_end(ap);
	return ld->err.code;
}

static int load_take(ms_load *ld, int err, uint64_t off, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 4, 5)))
#endif
	;

/* Fail the load at @off with a message that already names the offset (the
 * reader's or a stream's message). */
static int load_take(ms_load *ld, int err, uint64_t off, const char *fmt, ...)
{
	va_list ap;

	if (ld->err.code)
		return ld->err.code;
	va_start(ap, fmt);
	ms__error_vset(&ld->err, err, -EIO, MS__NO_OFFSET, MS__NO_SECTION, NULL,
		       fmt, ap);
	va_end(ap);
	ld->err.offset = off;
	return ld->err.code;
}

/* Take up the reader's error as the load's. */
static int load_reader_fail(ms_load *ld)
{
	return load_take(ld, ms_reader_error(ld->r),
			 ms_reader_error_offset(ld->r), "%s",
			 ms_reader_errmsg(ld->r));
}

static int load_refuse(ms_load *ld, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/* Refuse a call out of order or with a bad argument: -EINVAL, the load
 * unchanged. */
static int load_refuse(ms_load *ld, const char *fmt, ...)
{
	va_list ap;

	memset(&ld->refused, 0, sizeof(ld->refused));
	va_start(ap, fmt);
	ms__error_vset(&ld->refused, -EINVAL, -EINVAL, MS__NO_OFFSET,
		       MS__NO_SECTION, NULL, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int ms_load_new(ms_load **out, ms_registry *reg, const ms_load_opts *opts)
{
	ms_codec_opts codec;
	ms_load *ld;

	if (!reg)
		return -EINVAL;
	if (!out)
		return ms__registry_refuse(reg, -EINVAL,
					   "ms_load_new: no out pointer given");
	if (opts && opts->version != MS_LOAD_OPTS_VERSION)
		return ms__registry_refuse(
			reg, -EINVAL,
			"ms_load_new: opts->version is %u, expected "
			"MS_LOAD_OPTS_VERSION (%u)",
			opts->version, MS_LOAD_OPTS_VERSION);
	if (ms__driver_codec_copy(reg, &codec, opts ? opts->codec : NULL, true,
				  "ms_load_new: opts"))
		return -EINVAL;
	ld = ms__malloc(reg->a, sizeof(*ld));
	if (!ld)
		return ms__registry_refuse(reg, -ENOMEM,
					   "ms_load_new: out of memory");
	memset(ld, 0, sizeof(*ld));
	if (opts)
		ld->o = *opts;
	ld->o.version = MS_LOAD_OPTS_VERSION;
	ld->codec = codec;
	ld->o.codec = &ld->codec;
	ld->max_fed = ld->o.max_fed_bytes ? ld->o.max_fed_bytes
					  : MS_DEFAULT_MAX_FED_BYTES;
	ld->reg = reg;
	ld->a = reg->a;
	*out = ld;
	return 0;
}

void ms_load_free(ms_load *ld)
{
	if (!ld)
		return;
	if (ld->snap)
		ms__reader_snapshot_free(ld->r, ld->snap);
	ms_reader_free(ld->r);
	ms_stream_close(ld->feed);
	ms__free(ld->a, ld);
}

bool ms_load_is_complete(const ms_load *ld)
{
	return ld->complete;
}

int ms_load_error(const ms_load *ld)
{
	return ld->err.code;
}

const char *ms_load_errmsg(const ms_load *ld)
{
	if (ld->err.code)
		return ld->err.msg;
	return ld->refused.code ? ld->refused.msg : "";
}

uint64_t ms_load_error_offset(const ms_load *ld)
{
	if (!ld->err.code || ld->err.offset == MS__NO_OFFSET)
		return 0;
	return ld->err.offset;
}

/* Find the handler of a section record and check its version. */
static int load_lookup(ms_load *ld, const ms_record *rec)
{
	const ms_section_hdr *h = &rec->section;
	struct ms__handler *hd =
		ms__registry_find(ld->reg, h->idstr, h->instance_id);

	if (!hd)
		return load_fail(
			ld, -ENOENT, rec->offset, NULL,
			"section %u '%s' instance %u: unknown section: "
			"no handler is registered for it",
			h->section_id, h->idstr, h->instance_id);
	if (h->version_id > hd->version_id)
		return load_fail(ld, -ENOTSUP, rec->offset, h,
				 "version %u is newer than this build's %u",
				 h->version_id, hd->version_id);
	if (h->version_id < hd->min_version_id)
		return load_fail(ld, -ENOTSUP, rec->offset, h,
				 "version %u is older than the oldest this "
				 "build loads (%u)",
				 h->version_id, hd->min_version_id);
	ld->cur = hd;
	return 0;
}

/*
 * Run the handler of the current section on its payload.  Returns 0, an
 * error, or -EAGAIN when a fed load ran out of data (the caller rewinds).
 */
static int load_payload(ms_load *ld)
{
	const ms_record *rec = &ld->rec;
	ms_stream *p = ms_reader_payload(ld->r);
	uint64_t start = ms_stream_tell(p);
	uint64_t fed = ld->feed ? ms_stream_tell(ld->feed) : 0;
	int ret, perr;

	ret = ld->cur->ops->load(ld->cur->opaque, p, rec->section.version_id,
				 rec->section.type);
	/* Input bytes (native payloads may be inflated). */
	ld->attempts++;
	if (ld->feed)
		ld->tried_bytes += ms_stream_tell(ld->feed) - fed;
	perr = ms_stream_error(p);
	if (ld->feed && perr == -EAGAIN && p == ld->feed)
		return -EAGAIN;
	if (ret < 0 || perr) {
		uint64_t off =
			perr ? ms_stream_error_offset(p) : ms_stream_tell(p);
		const char *msg =
			perr ? ms__stream_errtext(p) : ms_strerror(ret);

		/* A grammar or checksum error under the payload. */
		if (perr && ms_reader_error(ld->r))
			return load_reader_fail(ld);
		if (ms_reader_profile(ld->r) == MS_PROFILE_NATIVE) {
			/* Payload offsets are within the section. */
			return load_fail(ld, perr ? perr : ret, rec->offset,
					 &rec->section,
					 "load failed at payload offset "
					 "0x%llx: %s",
					 (unsigned long long)(off - start),
					 msg);
		}
		return load_fail(ld, perr ? perr : ret, off, &rec->section,
				 "load failed: %s", msg);
	}
	/* The native profile knows where the payload ends: all of it must
	 * have been read, as QEMU's footer check demands. */
	if (ms_reader_profile(ld->r) == MS_PROFILE_NATIVE &&
	    !ms_stream_is_eof(p)) {
		if (ms_reader_error(ld->r))
			return load_reader_fail(ld);
		return load_fail(
			ld, -EBADMSG, rec->offset, &rec->section,
			"the load read %llu bytes and left the rest of the "
			"payload unread (a version or layout mismatch)",
			(unsigned long long)(ms_stream_tell(p) - start));
	}
	return 0;
}

/* Dispatch one record.  Returns 0, -EAGAIN (fed load) or an error. */
static int load_record(ms_load *ld)
{
	ms_record *rec = &ld->rec;

	switch (rec->type) {
	case MS_REC_START:
	case MS_REC_FULL:
	case MS_REC_PART:
	case MS_REC_END:
		if (load_lookup(ld, rec))
			return ld->err.code;
		return load_payload(ld);
	default:
		/* Configuration, footers, commands and the trailer need no
		 * handler; the reader checks and skips them. */
		return 0;
	}
}

int ms_load_run(ms_load *ld, ms_stream *s)
{
	int ret;

	assert(ld && s);
	if (ld->err.code)
		return ld->err.code;
	if (ld->r || ld->feed)
		return load_refuse(ld, "ms_load_run: the load was already %s",
				   ld->feed ? "fed (ms_load_feed)"
					    : "run (ms_load_run)");
	ret = ms_reader_new(&ld->r, s, &ld->codec);
	if (ret)
		return load_fail(ld, ret, MS__NO_OFFSET, NULL,
				 "cannot create reader: %s", ms_strerror(ret));
	for (;;) {
		ret = ms_reader_next(ld->r, &ld->rec);
		if (ret < 0)
			return load_reader_fail(ld);
		if (ret == 0)
			break;
		/* Stop at the first error: nothing after it is parsed. */
		if (load_record(ld))
			return ld->err.code;
	}
	ld->complete = true;
	return 0;
}

/*
 * Fed loads.
 */

size_t ms__load_max_fed(const ms_load *ld)
{
	return ld->max_fed;
}

void ms__load_counts(const ms_load *ld, uint64_t *attempts, uint64_t *bytes)
{
	*attempts = ld->attempts;
	*bytes = ld->tried_bytes;
}

/*
 * Fed QEMU loads parse again from the start of a record or section when
 * more data has come: the stream does not say where either ends.  Each
 * retry reads at most what is there, so retrying on every chunk would be
 * quadratic (a section full of byte sequences that look like its footer
 * made the handler run again at each one).  An element that ran out of
 * data with @ld->retry_at bytes there is tried again only once they have
 * doubled: the tries of one element then read less than twice what it
 * finally needed, whatever the chunks and the payload.  At the end of the
 * data (@force), or when the load holds all it may, it is tried at once.
 */
static bool retry_due(const ms_load *ld, size_t n, bool force)
{
	return force || n / 2 >= ld->retry_at;
}

/* QEMU: could the open section's payload be complete, and is a try due?
 * The codec's footer search resumes where it stopped: linear in the data. */
static bool qemu_section_ready(ms_load *ld, const uint8_t *p, size_t n,
			       bool force)
{
	return ms__codec_qemu_ready(&ld->qscan, p, n,
				    ld->rec.section.section_id,
				    ld->codec.no_footers, force) &&
	       retry_due(ld, n, force);
}

/* The next element has been loaded: start afresh. */
static void load_advanced(ms_load *ld)
{
	ld->retry_at = 0;
	memset(&ld->qscan, 0, sizeof(ld->qscan));
}

/*
 * Read the next record of a fed load (@n bytes are there).  Returns 1
 * for a record, 0 to wait for more data or at the end of the stream, or
 * the error.
 */
static int load_pump_record(ms_load *ld, const uint8_t *p, size_t n,
			    bool at_end, bool force)
{
	uint64_t from = ms_stream_tell(ld->feed);
	void *saved;
	bool native;
	int ret;

	if (ld->complete)
		return 0;
	native = ld->native;
	if (!ld->started) {
		if (n < MS__NATIVE_HEADER_SIZE && !at_end)
			return 0;
		native = n >= 8 && !memcmp(p, ms__native_magic, 8);
	}
	/* A native element is read only once complete. */
	if (native && !ms__codec_native_ready(&ld->nscan, p, n, at_end,
					      !ld->started, ld->native_crc))
		return 0;
	if (!native && !retry_due(ld, n, force))
		return 0;
	/* Try the next record; undo all if data ran out. */
	saved = ms__reader_snapshot(ld->r, ld->snap);
	ms__feed_mark(ld->feed);
	ret = ms_reader_next(ld->r, &ld->rec);
	ld->attempts++;
	ld->tried_bytes += ms_stream_tell(ld->feed) - from;
	if (ret == -EAGAIN && !at_end && !native) {
		ms__reader_restore(ld->r, saved);
		ms__feed_rewind(ld->feed);
		ld->retry_at = n ? n : 1;
		return 0;
	}
	ms__feed_unmark(ld->feed);
	if (ret == -EAGAIN && !at_end)
		return load_take(ld, -EBADMSG, ms_reader_error_offset(ld->r),
				 "%s (an incomplete native element)",
				 ms_reader_errmsg(ld->r));
	if (ret < 0)
		return load_reader_fail(ld);
	ms__reader_commit(ld->r);
	memset(&ld->nscan, 0, sizeof(ld->nscan)); /* the next element starts */
	load_advanced(ld);
	if (!ld->started) {
		ld->started = true;
		ld->native = ms_reader_profile(ld->r) == MS_PROFILE_NATIVE;
		ld->native_crc = ms__reader_native_crc(ld->r);
	}
	if (ret == 0)
		ld->complete = true;
	return ret;
}

/* Load what the fed data allows. */
static int load_pump(ms_load *ld, bool at_end)
{
	const uint8_t *p;
	size_t n;
	ssize_t k;
	bool force;
	int ret;

	for (;;) {
		k = ms_peek(ld->feed, &p, ms_stream_available(ld->feed));
		n = k < 0 ? 0 : (size_t)k;
		force = at_end || n >= ld->max_fed;
		if (!ld->have_rec) {
			ret = load_pump_record(ld, p, n, at_end, force);
			if (ret <= 0)
				return ret;
			ld->have_rec = true;
			continue;
		}
		/* A section whose handler has not run yet. */
		if (!ld->native &&
		    (ld->rec.type >= MS_REC_START &&
		     ld->rec.type <= MS_REC_FULL) &&
		    !qemu_section_ready(ld, p, n, force))
			return 0;
		ms__feed_mark(ld->feed);
		ret = load_record(ld);
		if (ret == -EAGAIN) {
			if (at_end)
				return load_fail(ld, -ENODATA,
						 ms_stream_tell(ld->feed),
						 &ld->rec.section,
						 "stream truncated in its "
						 "payload");
			ms__feed_rewind(ld->feed);
			ld->retry_at = n ? n : 1;
			ld->qscan.footer_seen = false;
			return 0;
		}
		ms__feed_unmark(ld->feed);
		if (ret)
			return ld->err.code;
		ld->have_rec = false;
		load_advanced(ld);
	}
}

static int load_feed_start(ms_load *ld)
{
	ms_stream_opts so = {MS_STREAM_OPTS_VERSION, ld->a, 0, 0, 0};
	int ret;

	ret = ms_stream_new_feed(&ld->feed, &so);
	if (!ret)
		ret = ms_reader_new(&ld->r, ld->feed, &ld->codec);
	/* Fed only between loads of whole elements: records can be used
	 * where they lie in the feed. */
	if (!ret)
		ms__reader_inplace_feed(ld->r);
	if (!ret && !ld->snap)
		ret = ms__reader_snapshot_new(ld->r, &ld->snap);
	if (ret)
		return load_fail(ld, ret, MS__NO_OFFSET, NULL,
				 "cannot start the load: %s", ms_strerror(ret));
	return 0;
}

/* A fed load ready for data: 0, -EINVAL for a load that is run (@what
 * names the call refused), or the sticky error. */
static int load_feed_ready(ms_load *ld, const char *what)
{
	if (ld->err.code)
		return ld->err.code;
	if (!ld->feed && ld->r)
		return load_refuse(ld,
				   "%s: the load was run with ms_load_run, "
				   "not fed",
				   what);
	if (!ld->feed && load_feed_start(ld))
		return ld->err.code;
	return 0;
}

/* Bytes fed after the end of the stream fail the load. */
static int load_past_end(ms_load *ld, size_t len)
{
	uint64_t off = ms_stream_tell(ld->feed);

	if (ld->complete && len)
		return load_fail(ld, -EBADMSG, off, NULL,
				 "data after the end of the stream");
	return 0;
}

/* Data was appended to the feed (@ret: how that went): load what is
 * complete now. */
static int load_fed(ms_load *ld, int ret)
{
	if (ret)
		return load_take(ld, ret, ms_stream_tell(ld->feed), "%s",
				 ms__stream_errtext(ld->feed));
	return load_pump(ld, false);
}

/* The load would hold more than it may: refuse, naming the option. */
static int load_over_cap(ms_load *ld, size_t held, size_t more)
{
	uint64_t off = ms_stream_tell(ld->feed);

	if (ld->have_rec && ld->rec.type >= MS_REC_START &&
	    ld->rec.type <= MS_REC_FULL)
		return load_fail(ld, -EFBIG, ld->rec.offset, &ld->rec.section,
				 "a fed load holding %zu bytes of this "
				 "unfinished section and what follows it "
				 "cannot take %zu more: over the limit of %zu "
				 "(ms_load_opts.max_fed_bytes)",
				 held, more, ld->max_fed);
	return load_fail(ld, -EFBIG, off, NULL,
			 "a fed load holding %zu bytes of an unfinished "
			 "element and what follows it cannot take %zu more: "
			 "over the limit of %zu (ms_load_opts.max_fed_bytes)",
			 held, more, ld->max_fed);
}

int ms_load_feed(ms_load *ld, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	size_t held, take;
	int ret;

	assert(ld);
	ret = load_feed_ready(ld, "ms_load_feed");
	if (ret)
		return ret;
	if (!buf && len)
		return load_refuse(ld, "ms_load_feed: buf is NULL, len %zu",
				   len);
	/* In slices that fit under the limit, each loaded before the next
	 * is taken: a chunk may complete many sections. */
	do {
		if (load_past_end(ld, len))
			return ld->err.code;
		held = ms_stream_available(ld->feed);
		if (held >= ld->max_fed && len)
			return load_over_cap(ld, held, len);
		take = ld->max_fed - held < len ? ld->max_fed - held : len;
		if (load_fed(ld, ms_stream_feed(ld->feed, b, take)))
			return ld->err.code;
		b += take;
		len -= take;
	} while (len);
	return 0;
}

int ms_load_feed_reserve(ms_load *ld, size_t len, void **room)
{
	size_t held;
	int ret;

	assert(ld && room);
	*room = NULL;
	ret = load_feed_ready(ld, "ms_load_feed_reserve");
	if (ret)
		return ret;
	held = ms_stream_available(ld->feed);
	if (!ld->complete && (held > ld->max_fed || len > ld->max_fed - held))
		return load_over_cap(ld, held, len);
	ret = ms_stream_feed_reserve(ld->feed, len, room);
	if (ret == -EINVAL) /* the load stays as it is */
		return load_refuse(ld, "ms_load_feed_reserve: called after "
				       "ms_load_finish");
	if (ret)
		return load_take(ld, ret, ms_stream_tell(ld->feed), "%s",
				 ms__stream_errtext(ld->feed));
	return 0;
}

int ms_load_feed_commit(ms_load *ld, size_t len)
{
	assert(ld);
	if (ld->err.code)
		return ld->err.code;
	if (!ld->feed || ms__feed_commit_ok(ld->feed, len))
		return load_refuse(ld,
				   "ms_load_feed_commit: %zu bytes, but no "
				   "room of that size is reserved (call "
				   "ms_load_feed_reserve first)",
				   len);
	if (load_past_end(ld, len))
		return ld->err.code;
	return load_fed(ld, ms_stream_feed_commit(ld->feed, len));
}

int ms_load_finish(ms_load *ld)
{
	int ret;

	assert(ld);
	ret = load_feed_ready(ld, "ms_load_finish");
	if (ret)
		return ret;
	ms_stream_feed_end(ld->feed);
	if (load_pump(ld, true))
		return ld->err.code;
	if (!ld->complete)
		return load_fail(ld, -ENODATA, ms_stream_tell(ld->feed), NULL,
				 "stream truncated");
	return 0;
}
