/* SPDX-License-Identifier: MIT */
/*
 * The vfio-user adapter: libvfio-user's migration callbacks served from
 * the save and load drivers.
 *
 * Saving: the device state is produced lazily into a memory stream, a
 * round or a section at a time, only when less than a window is buffered,
 * so memory stays in O(window + largest section).  By default the
 * non-iterative sections' payloads are taken at the transition into
 * STOP_AND_COPY instead: the save then runs on a copy of the registry in
 * which each non-iterative handler's save_state hands back the payload
 * taken then (struct final), so the stream is the driver's, byte for
 * byte, and the device may change after the transition; memory grows by
 * those payloads.  They are written straight into an arena
 * (src/arena.c, huge pages where it can: the first touch of fresh memory
 * cost the default more than the copy itself) and handed to the save
 * from there, so a byte is copied as often as with lazy_final.  v1
 * offers one window per iteration (prepare_data), lets the client read
 * any part of it any number of times (read_data), and drops it when the
 * client asks for the pending bytes again.  v2 hands out the bytes in order (read_data).
 *
 * Resuming: v1 writes land in a window-sized room reserved at the end of
 * the incremental load's buffer, at the offsets the client gives;
 * data_written() commits the round's bytes there without copying them, so
 * no round overwrites an earlier one and sections are loaded as soon as
 * they are complete (their records checked and read in place).  Leaving
 * RESUME finishes the load and returns its error, if any.
 *
 * Transitions run the device's pre-hook, the adapter's step, then the
 * post-hook; a failed post-hook is retried alone by the same state again.
 * Every failing call logs its message once (fail()).
 *
 * What the adapter guarantees, and tests/unit/check_vfio_user.c checks:
 * reads are bounded by the window actually offered, no buffer is kept
 * after it is freed, load errors stop the load and reach the client, the
 * window is not the state size, rounds do not overwrite each other,
 * transitions neither swallow errors nor abort, a hook failure leaves a
 * state from which the documented retry or cancel works.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "driver-impl.h"
#include "internal.h"
#include "migstream/driver.h"
#include "migstream/vfio_user.h"

#define MAX_WINDOW (1u << 20)

/*
 * A non-iterative handler of the save's registry copy: its save_state
 * replays the payload taken at the transition into STOP_AND_COPY, or,
 * before that (lazy_final), calls the device's.
 */
struct final {
	const ms_handler_ops *ops; /* the device's */
	void *opaque;
	ms_handler_ops replay; /* @ops with save_state replaced */
	struct ms__arena *arena;
	bool taken;	     /* @data and @len hold the payload */
	const uint8_t *data; /* in @arena, NULL for none */
	size_t len;
	struct ms__arena_chunk *chunk; /* @data's */
};

struct ms_vfu_adapter {
	ms_registry *reg;
	ms_vfu_opts o;
	ms_codec_opts codec; /* the copy o.codec points to */
	const ms_allocator *a;
	ms_vfu_migr_state state;
	size_t window;
	uint64_t bytes;
	/* Save. */
	ms_stream *out; /* produced and not yet read */
	ms_save *sv;
	bool iter_more;	  /* iterative handlers still have data */
	bool produced;	  /* the whole stream has been produced */
	uint64_t offered; /* v1: bytes of the window offered */
	int save_err;
	ms_registry copy;	/* eager final state: the save's registry */
	struct final *final;	/* one per handler of @copy */
	struct ms__arena arena; /* their payloads */
	/* Load. */
	ms_load *ld;
	uint8_t *wroom; /* v1: the window written by the client, in the
			 * load's own buffer (no copy on commit) */
	uint64_t wlen;	/* v1: bytes written in this round */
	int load_err;
	bool load_told; /* a transition has returned load_err */
	/* Transitions. */
	bool post_failed; /* the post-hook of the last transition failed */
	ms_vfu_migr_state post_from; /* ...which came from this state */
	bool quiet;	/* fail() does not log: the failure is reported later */
	ms__error last; /* why the last failing call failed */
};

static int vfail(ms_vfu_adapter *a, int err, uint64_t offset,
		 const struct ms__handler *h, const char *fmt, va_list ap)
#if defined(__GNUC__)
	__attribute__((format(printf, 5, 0)))
#endif
	;
static int fail(ms_vfu_adapter *a, int err, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;
static int fail_at(ms_vfu_adapter *a, int err, uint64_t offset,
		   const struct ms__handler *h, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 5, 6)))
#endif
	;

/*
 * Record why (replacing the last failure's message: the adapter's error
 * is not sticky, the save's and load's are), give it to the log, set
 * errno, return -1 (libvfio-user's convention).  @err is a positive or
 * negative errno; @offset and @h name where, when not MS__NO_OFFSET and
 * NULL.  Every failing callback calls this exactly once.
 */
static int vfail(ms_vfu_adapter *a, int err, uint64_t offset,
		 const struct ms__handler *h, const char *fmt, va_list ap)
{
	int saved;

	memset(&a->last, 0, sizeof(a->last));
	ms__error_vset(&a->last, err < 0 ? err : -err, -EIO, offset,
		       h ? (long long)h->section_id : MS__NO_SECTION,
		       h ? h->idstr : NULL, fmt, ap);
	saved = -a->last.code;
	if (a->o.log && !a->quiet)
		a->o.log(a->o.opaque, saved, a->last.msg);
	errno = saved;
	return -1;
}

static int fail(ms_vfu_adapter *a, int err, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vfail(a, err, MS__NO_OFFSET, NULL, fmt, ap);
	va_end(ap);
	return ret;
}

static int fail_at(ms_vfu_adapter *a, int err, uint64_t offset,
		   const struct ms__handler *h, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vfail(a, err, offset, h, fmt, ap);
	va_end(ap);
	return ret;
}

static const char *const state_names[] = {
	[MS_VFU_MIGR_STATE_STOP] = "STOP",
	[MS_VFU_MIGR_STATE_RUNNING] = "RUNNING",
	[MS_VFU_MIGR_STATE_STOP_AND_COPY] = "STOP_AND_COPY",
	[MS_VFU_MIGR_STATE_PRE_COPY] = "PRE_COPY",
	[MS_VFU_MIGR_STATE_RESUME] = "RESUME",
};

static const char *state_name(ms_vfu_migr_state s)
{
	return (unsigned)s <= MS_VFU_MIGR_STATE_RESUME ? state_names[s]
						       : "unknown";
}

/*
 * Refuse a callback: of the other API version, or out of its state
 * (@expected says in which it is accepted).
 */
static int refuse(ms_vfu_adapter *a, const char *what, int api,
		  const char *expected)
{
	if ((int)a->o.api != api)
		return fail(a, EINVAL,
			    "%s is a v%d callback, this adapter serves v%d",
			    what, api == MS_VFU_MIGR_CALLBACKS_V1 ? 1 : 2,
			    a->o.api == MS_VFU_MIGR_CALLBACKS_V1 ? 1 : 2);
	return fail(a, EINVAL, "%s in state %s: expected %s", what,
		    state_name(a->state), expected);
}

#define SAVING_STATES "PRE_COPY or STOP_AND_COPY, with a save started"
#define RESUME_STATE  "RESUME, with a load started"

/* Check ms_vfu_adapter_new()'s @opts: 0 or -EINVAL with a message. */
static int check_opts(ms_registry *reg, const ms_vfu_opts *opts)
{
	if (opts->version == 1 || opts->version == 2)
		return ms__registry_refuse(
			reg, -EINVAL,
			"ms_vfu_adapter_new: opts->version is %u, expected "
			"MS_VFU_OPTS_VERSION (%u): versions 1 and 2 are no "
			"longer accepted (version 3 added the hooks, the log, "
			"lazy_final and max_fed_bytes)",
			opts->version, MS_VFU_OPTS_VERSION);
	if (opts->version != MS_VFU_OPTS_VERSION)
		return ms__registry_refuse(
			reg, -EINVAL,
			"ms_vfu_adapter_new: opts->version is %u, expected "
			"MS_VFU_OPTS_VERSION (%u)",
			opts->version, MS_VFU_OPTS_VERSION);
	if (opts->api != MS_VFU_MIGR_CALLBACKS_V1 &&
	    opts->api != MS_VFU_MIGR_CALLBACKS_V2)
		return ms__registry_refuse(
			reg, -EINVAL,
			"ms_vfu_adapter_new: opts->api is %d, expected "
			"MS_VFU_MIGR_CALLBACKS_V1 or MS_VFU_MIGR_CALLBACKS_V2",
			opts->api);
	if (opts->window > MAX_WINDOW || (opts->window && opts->window < 16))
		return ms__registry_refuse(
			reg, -EINVAL,
			"ms_vfu_adapter_new: opts->window is %zu, expected 0 "
			"or 16 to %u bytes",
			opts->window, MAX_WINDOW);
	if (opts->codec && opts->codec->version == MS_CODEC_OPTS_VERSION &&
	    opts->codec->profile == MS_PROFILE_AUTO)
		return ms__registry_refuse(
			reg, -EINVAL,
			"ms_vfu_adapter_new: opts->codec->profile is "
			"MS_PROFILE_AUTO, expected the profile to write");
	return 0;
}

int ms_vfu_adapter_new(ms_vfu_adapter **out, ms_registry *reg,
		       const ms_vfu_opts *opts)
{
	ms_codec_opts codec;
	ms_vfu_opts o;
	ms_vfu_adapter *a;

	if (!reg)
		return -EINVAL;
	if (!out)
		return ms__registry_refuse(reg, -EINVAL,
					   "ms_vfu_adapter_new: no out pointer "
					   "given");
	memset(&o, 0, sizeof(o));
	o.version = MS_VFU_OPTS_VERSION;
	o.api = MS_VFU_MIGR_CALLBACKS_V2;
	if (opts && check_opts(reg, opts))
		return -EINVAL;
	if (opts)
		o = *opts;
	if (ms__driver_codec_copy(reg, &codec, o.codec, false,
				  "ms_vfu_adapter_new: opts"))
		return -EINVAL;
	/* The adapter's allocator is the codec's, NULL for libc. */
	if (!o.codec || !o.codec->allocator)
		codec.allocator = NULL;
	a = ms__malloc(codec.allocator, sizeof(*a));
	if (!a)
		return ms__registry_refuse(reg, -ENOMEM,
					   "ms_vfu_adapter_new: out of memory");
	memset(a, 0, sizeof(*a));
	a->reg = reg;
	a->o = o;
	a->codec = codec;
	a->o.codec = &a->codec;
	a->a = codec.allocator;
	ms__arena_init(&a->arena, a->a);
	a->window = o.window ? o.window : MS_VFU_DEFAULT_WINDOW;
	a->state = MS_VFU_MIGR_STATE_RUNNING;
	*out = a;
	return 0;
}

/* Drop the payloads taken at STOP_AND_COPY, if any. */
static void final_drop(ms_vfu_adapter *a)
{
	size_t i;

	for (i = 0; a->final && i < a->copy.n; i++) {
		a->final[i].taken = false;
		a->final[i].data = NULL;
		a->final[i].len = 0;
		a->final[i].chunk = NULL;
	}
	ms__arena_free(&a->arena);
}

/* Abandon any save: handlers are cleaned up, buffers freed. */
static void save_end(ms_vfu_adapter *a)
{
	ms_save_free(a->sv);
	a->sv = NULL;
	final_drop(a);
	ms__free(a->a, a->final);
	a->final = NULL;
	ms__free(a->a, a->copy.h);
	memset(&a->copy, 0, sizeof(a->copy));
	ms_stream_close(a->out);
	a->out = NULL;
	a->offered = 0;
	a->iter_more = false;
	a->produced = false;
	a->save_err = 0;
}

static void load_end(ms_vfu_adapter *a)
{
	ms_load_free(a->ld);
	a->ld = NULL;
	a->wroom = NULL;
	a->wlen = 0;
}

void ms_vfu_adapter_free(ms_vfu_adapter *a)
{
	if (!a)
		return;
	save_end(a);
	load_end(a);
	ms__free(a->a, a);
}

size_t ms_vfu_window_size(const ms_vfu_adapter *a)
{
	return a->window;
}

size_t ms__vfu_max_fed(const ms_vfu_adapter *a)
{
	return a->ld ? ms__load_max_fed(a->ld) : 0;
}

ms_vfu_migr_state ms_vfu_state(const ms_vfu_adapter *a)
{
	return a->state;
}

const char *ms_vfu_errmsg(const ms_vfu_adapter *a)
{
	return a->last.code ? a->last.msg : "";
}

uint64_t ms_vfu_bytes(const ms_vfu_adapter *a)
{
	return a->bytes;
}

/*
 * Saving.
 */

/* Bytes produced and not yet read. */
static size_t held(const ms_vfu_adapter *a)
{
	const uint8_t *d;
	size_t n = 0;

	if (a->out)
		ms_stream_mem_view(a->out, &d, &n);
	return n;
}

/* A non-iterative section's save_state in the registry copy. */
static int final_replay(void *opaque, ms_stream *s)
{
	struct final *f = opaque;
	int ret;

	if (!f->taken)
		return f->ops->save_state(f->opaque, s);
	/* The sections are replayed in the order they were taken, and each
	 * is copied on by the time its put returns: the chunks before this
	 * one's hold nothing more to send. */
	if (f->chunk)
		ms__arena_release_before(f->arena, f->chunk);
	ret = f->len ? ms_put_buffer(s, f->data, f->len) : 0;
	f->taken = false;
	f->data = NULL;
	f->len = 0;
	return ret;
}

/*
 * The registry the save runs on when the final state is taken eagerly:
 * the device's handlers (same ids, order and versions), the non-iterative
 * ones through struct final.  The device's registry is not touched.
 */
static int copy_registry(ms_vfu_adapter *a)
{
	size_t i, n = a->reg->n;

	memset(&a->copy, 0, sizeof(a->copy));
	a->copy.a = a->reg->a;
	if (!n)
		return 0;
	a->copy.h = ms__malloc(a->a, n * sizeof(*a->copy.h));
	a->final = ms__malloc(a->a, n * sizeof(*a->final));
	if (!a->copy.h || !a->final)
		return -ENOMEM;
	memcpy(a->copy.h, a->reg->h, n * sizeof(*a->copy.h));
	memset(a->final, 0, n * sizeof(*a->final));
	a->copy.n = a->copy.cap = n;
	for (i = 0; i < n; i++) {
		struct ms__handler *h = &a->copy.h[i];
		struct final *f = &a->final[i];

		if (ms__handler_is_iterative(h) || !h->ops->save_state)
			continue;
		f->ops = h->ops;
		f->opaque = h->opaque;
		f->arena = &a->arena;
		f->replay = *h->ops;
		f->replay.save_state = final_replay;
		h->ops = &f->replay;
		h->opaque = f;
	}
	return 0;
}

/*
 * The transition into STOP_AND_COPY, eager: every non-iterative
 * save_state runs now, into the arena, whose bytes the save writes when
 * it reaches that section.  On failure nothing is kept.
 */
static int take_final(ms_vfu_adapter *a)
{
	ms_stream *w;
	size_t i;
	int ret;

	for (i = 0; a->final && i < a->copy.n; i++) {
		struct ms__handler *h = &a->copy.h[i];
		struct final *f = &a->final[i];

		if (!f->ops)
			continue;
		ret = ms__arena_writer(&w, &a->arena);
		if (!ret) {
			ret = f->ops->save_state(f->opaque, w);
			if (ms_stream_error(w))
				ret = ms_stream_error(w);
			if (ret >= 0)
				ret = ms__arena_commit(w, &f->data, &f->len,
						       &f->chunk);
			ms_stream_close(w);
			f->taken = ret >= 0;
		}
		if (ret < 0) {
			final_drop(a);
			return fail_at(a, ret, a->bytes + held(a), h,
				       "save_state at the transition into "
				       "STOP_AND_COPY failed: %s (expected 0)",
				       ms_strerror(ret));
		}
	}
	return 0;
}

static int save_start(ms_vfu_adapter *a)
{
	ms_save_opts so;
	int ret;

	save_end(a);
	memset(&so, 0, sizeof(so));
	so.version = MS_SAVE_OPTS_VERSION;
	so.codec = &a->codec;
	ret = ms_stream_new_mem(&a->out, 0, NULL);
	if (!ret && !a->o.lazy_final)
		ret = copy_registry(a);
	if (!ret)
		ret = ms_save_new(&a->sv, a->o.lazy_final ? a->reg : &a->copy,
				  a->out, &so);
	if (!ret)
		ret = ms_save_setup(a->sv);
	if (ret) {
		fail(a, ret, "cannot start the save: %s",
		     a->sv ? ms_save_errmsg(a->sv) : ms_strerror(ret));
		save_end(a);
		return ret;
	}
	a->iter_more = true;
	a->bytes = 0;
	return 0;
}

/*
 * Produce until at least @want bytes are buffered or, in PRE_COPY, the
 * iterative handlers have nothing more for now, or the whole stream is
 * out.  One precopy round or one completion section per step.
 */
static int produce(ms_vfu_adapter *a, size_t want)
{
	int ret;

	if (a->save_err) {
		fail(a, a->save_err, "%s", ms_save_errmsg(a->sv));
		return a->save_err;
	}
	/* Precopy goes on when the guest dirtied more since "no more". */
	if (!a->iter_more && !a->produced && ms_save_pending(a->sv))
		a->iter_more = true;
	while (held(a) < want && !a->produced) {
		if (a->iter_more) {
			ret = ms_save_iterate(a->sv);
			if (ret < 0)
				goto out_fail;
			a->iter_more = ret > 0;
			continue;
		}
		if (a->state != MS_VFU_MIGR_STATE_STOP_AND_COPY)
			break; /* precopy: the rest waits for stop-and-copy */
		ret = ms_save_complete_step(a->sv);
		if (ret < 0)
			goto out_fail;
		a->produced = ret == 0;
	}
	return 0;

out_fail:
	a->save_err = ret;
	fail(a, ret, "%s", ms_save_errmsg(a->sv));
	return ret;
}

/* Drop what the client has read. */
static void consume(ms_vfu_adapter *a, size_t n)
{
	ms_stream_mem_discard(a->out, n);
	a->bytes += n;
}

static bool saving(const ms_vfu_adapter *a)
{
	return a->state == MS_VFU_MIGR_STATE_PRE_COPY ||
	       a->state == MS_VFU_MIGR_STATE_STOP_AND_COPY;
}

uint64_t ms_vfu_v1_get_pending_bytes(ms_vfu_adapter *a)
{
	uint64_t n;
	int ret;

	assert(a);
	if (!saving(a) || !a->sv || a->o.api != MS_VFU_MIGR_CALLBACKS_V1)
		return 0;
	if (a->offered) {
		/* The client read the window it was offered. */
		consume(a, a->offered);
		a->offered = 0;
	}
	/* prepare_data reports an error (and logs it): 1 makes the client
	 * call it. */
	a->quiet = true;
	ret = produce(a, a->window);
	a->quiet = false;
	if (ret)
		return 1;
	n = held(a);
	if (!n)
		return 0;
	if (!a->produced)
		n += ms_save_pending(a->sv);
	return n;
}

int ms_vfu_v1_prepare_data(ms_vfu_adapter *a, uint64_t *offset, uint64_t *size)
{
	size_t n;

	assert(a && offset);
	if (a->state == MS_VFU_MIGR_STATE_RESUME && !size) {
		if (!a->ld)
			return fail(a, EINVAL,
				    "prepare_data in RESUME: no load in "
				    "progress (expected RESUME entered "
				    "from RUNNING)");
		*offset = 0;
		return 0;
	}
	if (!saving(a) || !size || !a->sv ||
	    a->o.api != MS_VFU_MIGR_CALLBACKS_V1)
		return refuse(a, "prepare_data", MS_VFU_MIGR_CALLBACKS_V1,
			      SAVING_STATES ", or " RESUME_STATE);
	if (a->save_err)
		return fail(a, a->save_err, "%s", ms_save_errmsg(a->sv));
	if (!a->offered) {
		if (produce(a, a->window))
			return -1;
		n = held(a);
		a->offered = n < a->window ? n : a->window;
	}
	*offset = 0;
	*size = a->offered;
	return 0;
}

ssize_t ms_vfu_v1_read_data(ms_vfu_adapter *a, void *buf, uint64_t count,
			    uint64_t offset)
{
	const uint8_t *d;
	size_t n;

	assert(a);
	if (!saving(a) || !a->out || a->o.api != MS_VFU_MIGR_CALLBACKS_V1)
		return refuse(a, "read_data", MS_VFU_MIGR_CALLBACKS_V1,
			      SAVING_STATES);
	if (offset > a->offered || count > a->offered - offset)
		return fail(
			a, EINVAL,
			"read of %llu bytes at offset 0x%llx is outside the "
			"%llu bytes offered (expected a range within the "
			"window prepare_data gave)",
			(unsigned long long)count, (unsigned long long)offset,
			(unsigned long long)a->offered);
	if (!count)
		return 0;
	ms_stream_mem_view(a->out, &d, &n);
	memcpy(buf, d + offset, count);
	return (ssize_t)count;
}

ssize_t ms_vfu_v2_read_data(ms_vfu_adapter *a, void *buf, uint64_t count)
{
	const uint8_t *d;
	size_t n;

	assert(a);
	if (!saving(a) || !a->sv || a->o.api != MS_VFU_MIGR_CALLBACKS_V2)
		return refuse(a, "read_data", MS_VFU_MIGR_CALLBACKS_V2,
			      SAVING_STATES);
	if (count > SSIZE_MAX)
		count = SSIZE_MAX;
	if (produce(a, count > SIZE_MAX ? SIZE_MAX : (size_t)count))
		return -1;
	ms_stream_mem_view(a->out, &d, &n);
	if (n > count)
		n = (size_t)count;
	if (n) {
		memcpy(buf, d, n);
		consume(a, n);
	}
	return (ssize_t)n;
}

/*
 * Resuming.
 */

/* The most a load holds of the stream, besides v1's window. */
static size_t max_fed(const ms_vfu_adapter *a)
{
	return a->o.max_fed_bytes ? a->o.max_fed_bytes
				  : MS_DEFAULT_MAX_FED_BYTES;
}

/* The load failed with @ret: keep it and say why, naming the adapter's
 * option when the load's limit was hit. */
static int load_failed(ms_vfu_adapter *a, int ret)
{
	a->load_err = ret;
	if (ret == -EFBIG)
		return fail(a, ret,
			    "%s; that limit is ms_vfu_opts.max_fed_bytes (%zu"
			    "%s), expected a state whose sections fit in it",
			    ms_load_errmsg(a->ld), max_fed(a),
			    a->o.api == MS_VFU_MIGR_CALLBACKS_V1
				    ? ", plus the v1 window"
				    : "");
	return fail(a, ret, "%s", ms_load_errmsg(a->ld));
}

static int load_start(ms_vfu_adapter *a)
{
	ms_codec_opts codec = a->codec;
	ms_load_opts lo;
	int ret;

	load_end(a);
	memset(&lo, 0, sizeof(lo));
	lo.version = MS_LOAD_OPTS_VERSION;
	codec.profile = MS_PROFILE_AUTO;
	lo.codec = &codec;
	/* v1 reserves a whole window per round on top of the section being
	 * loaded: the same sections load in either API version. */
	lo.max_fed_bytes = max_fed(a);
	if (a->o.api == MS_VFU_MIGR_CALLBACKS_V1)
		lo.max_fed_bytes = lo.max_fed_bytes > SIZE_MAX - a->window
					   ? SIZE_MAX
					   : lo.max_fed_bytes + a->window;
	ret = ms_load_new(&a->ld, a->reg, &lo);
	if (ret) {
		load_end(a);
		return fail(a, ret, "cannot start the load: %s",
			    ms_strerror(ret));
	}
	a->load_err = 0;
	a->load_told = false;
	a->bytes = 0;
	return 0;
}

/* Feed the load; a load error is kept and reported. */
static int feed(ms_vfu_adapter *a, const void *buf, size_t len)
{
	int ret;

	if (a->load_err)
		return load_failed(a, a->load_err);
	ret = ms_load_feed(a->ld, buf, len);
	if (ret)
		return load_failed(a, ret);
	a->bytes += len;
	return 0;
}

ssize_t ms_vfu_v1_write_data(ms_vfu_adapter *a, const void *buf, uint64_t count,
			     uint64_t offset)
{
	void *room;

	assert(a);
	if (a->state != MS_VFU_MIGR_STATE_RESUME || !a->ld ||
	    a->o.api != MS_VFU_MIGR_CALLBACKS_V1)
		return refuse(a, "write_data", MS_VFU_MIGR_CALLBACKS_V1,
			      RESUME_STATE);
	if (offset > a->window || count > a->window - offset)
		return fail(a, EINVAL,
			    "write of %llu bytes at offset 0x%llx is outside "
			    "the %zu byte window (expected a range within it)",
			    (unsigned long long)count,
			    (unsigned long long)offset, a->window);
	if (a->load_err)
		return load_failed(a, a->load_err);
	if (!a->wroom) {
		/* The round's window lives at the end of the load's buffer:
		 * data_written() hands it over without copying it. */
		if (ms_load_feed_reserve(a->ld, a->window, &room))
			return load_failed(a, ms_load_error(a->ld));
		a->wroom = room;
	}
	/* Bytes skipped over are zero, not what the buffer held before, until
	 * the client writes them (in any order). */
	if (offset > a->wlen)
		memset(a->wroom + a->wlen, 0, (size_t)(offset - a->wlen));
	memcpy(a->wroom + offset, buf, count);
	if (offset + count > a->wlen)
		a->wlen = offset + count;
	return (ssize_t)count;
}

int ms_vfu_v1_data_written(ms_vfu_adapter *a, uint64_t count)
{
	int ret;

	assert(a);
	if (a->state != MS_VFU_MIGR_STATE_RESUME || !a->ld ||
	    a->o.api != MS_VFU_MIGR_CALLBACKS_V1)
		return refuse(a, "data_written", MS_VFU_MIGR_CALLBACKS_V1,
			      RESUME_STATE);
	if (count > a->wlen)
		return fail(a, EINVAL,
			    "data_written(%llu) but only %llu bytes were "
			    "written in this round (expected at most that)",
			    (unsigned long long)count,
			    (unsigned long long)a->wlen);
	if (a->load_err)
		return load_failed(a, a->load_err);
	a->wlen = 0;
	a->wroom = NULL;
	if (!count)
		return 0;
	ret = ms_load_feed_commit(a->ld, (size_t)count);
	if (ret)
		return load_failed(a, ret);
	a->bytes += count;
	return 0;
}

ssize_t ms_vfu_v2_write_data(ms_vfu_adapter *a, const void *buf, uint64_t count)
{
	assert(a);
	if (a->state != MS_VFU_MIGR_STATE_RESUME || !a->ld ||
	    a->o.api != MS_VFU_MIGR_CALLBACKS_V2)
		return refuse(a, "write_data", MS_VFU_MIGR_CALLBACKS_V2,
			      RESUME_STATE);
	if (count > SSIZE_MAX)
		return fail(a, EINVAL,
			    "write of %llu bytes (expected at most SSIZE_MAX)",
			    (unsigned long long)count);
	if (feed(a, buf, (size_t)count))
		return -1;
	return (ssize_t)count;
}

/* Leaving RESUME: the stream must be complete and loaded. */
static int load_finish(ms_vfu_adapter *a)
{
	int ret;

	if (a->load_err)
		return load_failed(a, a->load_err);
	ret = ms_load_finish(a->ld);
	if (ret)
		return load_failed(a, ret);
	load_end(a);
	return 0;
}

/*
 * Transitions.
 */

#define BIT(s) (1u << (s))

/* libvfio-user v1's table (lib/migration_priv.h), to != from. */
static const unsigned v1_arcs[5] = {
	[MS_VFU_MIGR_STATE_STOP] = BIT(MS_VFU_MIGR_STATE_RUNNING),
	[MS_VFU_MIGR_STATE_RUNNING] = BIT(MS_VFU_MIGR_STATE_STOP) |
				      BIT(MS_VFU_MIGR_STATE_STOP_AND_COPY) |
				      BIT(MS_VFU_MIGR_STATE_PRE_COPY) |
				      BIT(MS_VFU_MIGR_STATE_RESUME),
	[MS_VFU_MIGR_STATE_STOP_AND_COPY] =
		BIT(MS_VFU_MIGR_STATE_STOP) | BIT(MS_VFU_MIGR_STATE_RUNNING),
	[MS_VFU_MIGR_STATE_PRE_COPY] = BIT(MS_VFU_MIGR_STATE_STOP) |
				       BIT(MS_VFU_MIGR_STATE_RUNNING) |
				       BIT(MS_VFU_MIGR_STATE_STOP_AND_COPY),
	[MS_VFU_MIGR_STATE_RESUME] = BIT(MS_VFU_MIGR_STATE_RUNNING),
};

/* libvfio-user v2's direct arcs (lib/migration.c); one call per hop. */
static const unsigned v2_arcs[5] = {
	[MS_VFU_MIGR_STATE_STOP] = BIT(MS_VFU_MIGR_STATE_RUNNING) |
				   BIT(MS_VFU_MIGR_STATE_STOP_AND_COPY) |
				   BIT(MS_VFU_MIGR_STATE_RESUME),
	[MS_VFU_MIGR_STATE_RUNNING] =
		BIT(MS_VFU_MIGR_STATE_STOP) | BIT(MS_VFU_MIGR_STATE_PRE_COPY),
	[MS_VFU_MIGR_STATE_STOP_AND_COPY] = BIT(MS_VFU_MIGR_STATE_STOP),
	[MS_VFU_MIGR_STATE_PRE_COPY] = BIT(MS_VFU_MIGR_STATE_RUNNING) |
				       BIT(MS_VFU_MIGR_STATE_STOP_AND_COPY),
	[MS_VFU_MIGR_STATE_RESUME] = BIT(MS_VFU_MIGR_STATE_STOP),
};

/* Refuse an arc the API version does not have, naming those it has. */
static int refuse_transition(ms_vfu_adapter *a, ms_vfu_migr_state from,
			     ms_vfu_migr_state to, unsigned arcs)
{
	const char *name[MS_VFU_MIGR_STATE_RESUME + 1] = {""};
	unsigned s, k = 0;

	for (s = 0; s <= MS_VFU_MIGR_STATE_RESUME; s++)
		if (arcs & BIT(s))
			name[k++] = state_name((ms_vfu_migr_state)s);
	return fail(a, EINVAL,
		    "transition from %s to %s is not allowed (libvfio-user "
		    "v%d: expected %s%s%s%s%s%s%s)",
		    state_name(from), state_name(to),
		    a->o.api == MS_VFU_MIGR_CALLBACKS_V1 ? 1 : 2, name[0],
		    k > 1 ? ", " : "", k > 1 ? name[1] : "", k > 2 ? ", " : "",
		    k > 2 ? name[2] : "", k > 3 ? ", " : "",
		    k > 3 ? name[3] : "");
}

/*
 * Run a hook: 0, or -1 with its errno (a positive return counts as that
 * errno, 0 never fails).
 */
static int hook(ms_vfu_adapter *a, ms_vfu_hook_fn fn, const char *name,
		ms_vfu_migr_state from, ms_vfu_migr_state to)
{
	int ret;

	if (!fn)
		return 0;
	ret = fn(a->o.opaque, from, to);
	if (!ret)
		return 0;
	return fail(a, ret < 0 ? ret : -ret,
		    "transition from %s to %s: %s failed: %s (expected 0)",
		    state_name(from), state_name(to), name,
		    ms_strerror(ret < 0 ? ret : -ret));
}

/* The same state again: QEMU writes STOP_AND_COPY twice. */
static int same_state(ms_vfu_adapter *a, ms_vfu_migr_state state)
{
	/* A failed load is restarted by entering RESUME again. */
	if (state == MS_VFU_MIGR_STATE_RESUME && a->load_err && load_start(a))
		return -1;
	/* The retry of a transition whose post-hook failed runs it alone. */
	if (a->post_failed) {
		if (hook(a, a->o.post_transition, "post_transition",
			 a->post_from, state))
			return -1;
		a->post_failed = false;
	}
	return 0;
}

/* What the adapter does on a legal transition; the state is kept on
 * failure. */
static int act(ms_vfu_adapter *a, ms_vfu_migr_state from,
	       ms_vfu_migr_state state)
{
	bool fresh;

	/*
	 * Leaving RESUME finishes the load; a failure keeps the state.  v2
	 * has no other way out (libvfio-user v2 never forwards RESUME to
	 * RESUME), so there a STOP after the error was returned abandons
	 * the failed load, and a new RESUME can follow.
	 */
	if (from == MS_VFU_MIGR_STATE_RESUME) {
		if (a->load_told && a->o.api == MS_VFU_MIGR_CALLBACKS_V2) {
			load_end(a);
		} else if (load_finish(a)) {
			a->load_told = true;
			return -1;
		}
	}

	switch (state) {
	case MS_VFU_MIGR_STATE_PRE_COPY:
		if (save_start(a))
			return -1;
		break;
	case MS_VFU_MIGR_STATE_STOP_AND_COPY:
		/* From PRE_COPY the save goes on; otherwise it starts here. */
		fresh = from != MS_VFU_MIGR_STATE_PRE_COPY;
		if (fresh && save_start(a))
			return -1;
		/* A window offered in PRE_COPY stays offered: the client
		 * commits it with its next pending-bytes read.  The
		 * non-iterative state is taken now (in STOP_AND_COPY already,
		 * for the handlers that look), the rest as the client reads. */
		a->state = state;
		if (!a->o.lazy_final && !a->save_err && take_final(a)) {
			a->state = from;
			if (fresh)
				save_end(a);
			return -1;
		}
		return 0;
	case MS_VFU_MIGR_STATE_RESUME:
		save_end(a);
		if (load_start(a))
			return -1;
		break;
	case MS_VFU_MIGR_STATE_RUNNING:
	case MS_VFU_MIGR_STATE_STOP:
		/* The end of a save, or its cancellation: either way the
		 * device is ready for the next attempt. */
		save_end(a);
		break;
	}
	a->state = state;
	return 0;
}

int ms_vfu_transition(ms_vfu_adapter *a, ms_vfu_migr_state state)
{
	ms_vfu_migr_state from;
	const unsigned *arcs;

	assert(a);
	from = a->state;
	if ((unsigned)state > MS_VFU_MIGR_STATE_RESUME)
		return fail(a, EINVAL,
			    "transition to unknown state %d (expected 0 to "
			    "%d)",
			    (int)state, (int)MS_VFU_MIGR_STATE_RESUME);
	if (state == from)
		return same_state(a, state);
	arcs = a->o.api == MS_VFU_MIGR_CALLBACKS_V1 ? v1_arcs : v2_arcs;
	if (!(arcs[from] & BIT(state)))
		return refuse_transition(a, from, state, arcs[from]);
	if (hook(a, a->o.pre_transition, "pre_transition", from, state) ||
	    act(a, from, state))
		return -1;
	a->post_failed = false;
	if (hook(a, a->o.post_transition, "post_transition", from, state)) {
		/* The adapter stays in @state; the same state again retries
		 * the hook alone. */
		a->post_failed = true;
		a->post_from = from;
		return -1;
	}
	return 0;
}
