/* SPDX-License-Identifier: MIT */
/*
 * migstream vfio-user adapter: serves libvfio-user's migration callbacks
 * (API v1: migration region with pending_bytes, data_offset and data_size
 * registers; API v2: transition, read_data, write_data) from the save and
 * load drivers, through a migration window smaller than the device state.
 *
 * This header does not need libvfio-user.  It declares compatible types
 * (the same values) under the ms_ prefix and functions that take the
 * adapter where libvfio-user passes its vfu_ctx_t; a server includes
 * <libvfio-user.h> and expands MS_VFU_DEFINE_CALLBACKS_V1() or
 * MS_VFU_DEFINE_CALLBACKS_V2() to get callbacks with libvfio-user's exact
 * signatures, then passes them to vfu_setup_device_migration_callbacks():
 *
 *	static ms_vfu_adapter *adapter_of(vfu_ctx_t *ctx)
 *	{
 *		return ((struct my_device *)vfu_get_private(ctx))->adapter;
 *	}
 *	MS_VFU_DEFINE_CALLBACKS_V2(my_migr_callbacks, adapter_of);
 *	...
 *	vfu_setup_device_migration_callbacks(ctx, &my_migr_callbacks);
 *
 * or with API v1 (the region must be data_offset + the window size):
 *
 *	MS_VFU_DEFINE_CALLBACKS_V1(my_migr_callbacks, adapter_of);
 *	...
 *	vfu_setup_region(ctx, VFU_PCI_DEV_MIGR_REGION_IDX,
 *			 vfu_get_migr_register_area_size() +
 *				 ms_vfu_window_size(adapter), ...);
 *	vfu_setup_device_migration_callbacks(ctx, &my_migr_callbacks,
 *			 vfu_get_migr_register_area_size());
 *
 * The tables wire libvfio-user's transition callback straight to
 * ms_vfu_transition(): the device's own work on a transition (quiescing
 * before a save, re-arming after a load) goes in ms_vfu_opts'
 * pre_transition and post_transition hooks, so a server needs no
 * transition callback of its own, and its failures go to ms_vfu_opts.log.
 *
 * Functions here follow libvfio-user's convention, not the rest of
 * migstream's: they return -1 and set errno on failure.  The adapter
 * keeps a message for the last failure (ms_vfu_errmsg()) and gives it to
 * the log callback; libvfio-user sends only the errno to the client.  An
 * adapter is
 * not thread-safe (libvfio-user calls it from one thread); adapters share
 * nothing, so each device may live on its own thread.
 */
#ifndef MIGSTREAM_VFIO_USER_H
#define MIGSTREAM_VFIO_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <migstream/driver.h>
#include <migstream/section.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * enum ms_vfu_migr_state - libvfio-user's vfu_migr_state_t, same values.
 *
 * Both API versions use these names in their transition callback; v2
 * maps its STOP_COPY to STOP_AND_COPY and RESUMING to RESUME.
 */
typedef enum ms_vfu_migr_state {
	MS_VFU_MIGR_STATE_STOP = 0,
	MS_VFU_MIGR_STATE_RUNNING = 1,
	MS_VFU_MIGR_STATE_STOP_AND_COPY = 2,
	MS_VFU_MIGR_STATE_PRE_COPY = 3,
	MS_VFU_MIGR_STATE_RESUME = 4
} ms_vfu_migr_state;

/* libvfio-user's VFU_MIGR_CALLBACKS_VERS of the two API versions. */
#define MS_VFU_MIGR_CALLBACKS_V1 1
#define MS_VFU_MIGR_CALLBACKS_V2 2

/*
 * Default size of the v1 migration window (the data area): 32 KiB.
 * libvfio-user reads each request's body with one recv() (no
 * MSG_WAITALL), so a v1 region write larger than one Unix-socket buffer
 * (about 36 KiB on Linux) can arrive short ("short read: expected=65552,
 * actual=36528"): the library refuses that request with EINVAL, reads the
 * rest of its body as the next request's header, and the session
 * desyncs.  A client that writes the window in one request (as
 * libvfio-user's own client does) sends one window plus 32 bytes of
 * headers, so 32 KiB always fits.  A larger window needs a libvfio-user
 * that reads message bodies in full.
 */
#define MS_VFU_DEFAULT_WINDOW (32u * 1024u)

/** typedef ms_vfu_adapter - The migration state of one device. */
typedef struct ms_vfu_adapter ms_vfu_adapter;

/**
 * typedef ms_vfu_hook_fn - The device's own work around a transition.
 * @opaque: ms_vfu_opts.opaque.
 * @from: the adapter's state.
 * @to: the state requested.
 *
 * A pre-transition hook quiesces the device (timers, interrupts, DMA)
 * before a save starts or completes; a post-transition hook re-arms it
 * from the loaded state after RESUME -> RUNNING, or resumes it after a
 * cancelled save.  Both run around every legal transition to another
 * state (never for the same state again, never for a refused one): the
 * pre-hook before the adapter acts, the post-hook once it has, only if
 * it succeeded.  A device that quiesced in a pre-hook of a transition
 * that then failed resumes at the next transition whose @to is RUNNING.
 * See ms_vfu_transition() for what a failure leaves.
 *
 * Return: 0, or a negative errno to fail the transition (the callback
 * then returns -1 with that errno; a positive value counts as its
 * negation).
 */
typedef int (*ms_vfu_hook_fn)(void *opaque, ms_vfu_migr_state from,
			      ms_vfu_migr_state to);

/**
 * typedef ms_vfu_log_fn - Where the adapter's failure messages go.
 * @opaque: ms_vfu_opts.opaque.
 * @err: the errno the callback returns with (positive).
 * @msg: what failed (offset, section, expected and found), as
 *       ms_vfu_errmsg() gives it; valid during the call.
 *
 * Called exactly once per failing call of the adapter (a transition, a
 * read, a write, a prepare_data or data_written, a call refused out of
 * its state or API version, a hook), just before it returns -1; never
 * for ms_vfu_adapter_new() (see ms_registry_errmsg()).  A save error that
 * ms_vfu_v1_get_pending_bytes() meets is logged by the prepare_data
 * that reports it.  libvfio-user passes only errno across the socket to
 * the client: this is how the message reaches a log.  errno is kept
 * across the call.
 */
typedef void (*ms_vfu_log_fn)(void *opaque, int err, const char *msg);

/* Version 3 added the hooks, the log, @lazy_final and @max_fed_bytes;
 * older versions are refused. */
#define MS_VFU_OPTS_VERSION 3

/**
 * struct ms_vfu_opts - Settings of an adapter.
 * @version: must be MS_VFU_OPTS_VERSION.
 * @api: MS_VFU_MIGR_CALLBACKS_V1 or MS_VFU_MIGR_CALLBACKS_V2 (which
 *       callbacks libvfio-user will call).
 * @window: v1: bytes of the data area, 0 for MS_VFU_DEFAULT_WINDOW; at
 *          most 1 MiB (libvfio-user's largest transfer); v2 ignores it.
 * @codec: how the device state is framed, copied by ms_vfu_adapter_new():
 *         NULL for the default of every writer, the native profile with a
 *         CRC-32 on every record; MS_PROFILE_QEMU is allowed,
 *         MS_PROFILE_AUTO is not.  Its allocator, if any, is also the
 *         adapter's.  Loads detect the profile.
 * @pre_transition: called before the adapter acts on a transition to
 *                  another state, or NULL.  Failing it fails the
 *                  transition with nothing changed: the same transition
 *                  may be retried.
 * @post_transition: called after the adapter has acted on it, or NULL.
 *                   Failing it fails the transition; the adapter stays
 *                   in the new state, and the same state again runs the
 *                   post-hook alone (see ms_vfu_transition()).
 * @log: called once per failure with its errno and message, or NULL.
 * @opaque: passed to @pre_transition, @post_transition and @log.
 * @lazy_final: false (the default): the non-iterative handlers'
 *              save_state runs in the transition into STOP_AND_COPY (v1)
 *              or STOP_COPY (v2), after the pre-hook, so the device's
 *              non-iterative state may change once the transition has
 *              returned; the iterative handlers' save_complete still runs
 *              as the client reads, so their data must not change until
 *              the last read.  Memory: the window, plus every
 *              non-iterative section's payload (held from the transition
 *              until the client reads it, in chunks that hold at most
 *              twice the payloads plus one chunk of up to 32 MiB or twice
 *              the largest payload; with the C library's allocator on
 *              Linux, chunks of 2 MiB and more ask for huge pages, which
 *              cut the cost of touching that fresh memory), plus the
 *              largest iterative section.  true: every save_state runs at the client's
 *              reads, as before version 3, and the whole device must
 *              stay quiet until the last read; memory: the window plus
 *              the largest section.
 * @max_fed_bytes: the most bytes of a load the adapter holds at once
 *                 (ms_load_opts.max_fed_bytes; v1 adds a window), 0 for
 *                 MS_DEFAULT_MAX_FED_BYTES; a device knows its largest
 *                 section.  A state with a larger section fails to load
 *                 with EFBIG and a message naming this option.
 *
 * NULL means v2 with the defaults.
 */
typedef struct ms_vfu_opts {
	unsigned version;
	int api;
	size_t window;
	const ms_codec_opts *codec;
	ms_vfu_hook_fn pre_transition;
	ms_vfu_hook_fn post_transition;
	ms_vfu_log_fn log;
	void *opaque;
	bool lazy_final;
	size_t max_fed_bytes;
} ms_vfu_opts;

/**
 * ms_vfu_adapter_new() - Create the adapter of one device.
 * @out: receives the adapter; untouched on failure.
 * @reg: the device's section handlers (iterative ones are saved during
 *       PRE_COPY, all of them at STOP_AND_COPY); must outlive the adapter.
 * @opts: settings, or NULL.
 *
 * The adapter starts in RUNNING, as libvfio-user's device does.
 *
 * Return: 0, -EINVAL or -ENOMEM (migstream's convention: this is not a
 * libvfio-user callback); ms_registry_errmsg() says why.
 */
int ms_vfu_adapter_new(ms_vfu_adapter **out, ms_registry *reg,
		       const ms_vfu_opts *opts);

/**
 * ms_vfu_adapter_free() - Free an adapter, in any state.
 * @a: an adapter, or NULL.
 *
 * A save or load in progress is abandoned (its handlers cleaned up).
 */
void ms_vfu_adapter_free(ms_vfu_adapter *a);

/**
 * ms_vfu_window_size() - The v1 data area size, for the region's size.
 * @a: an adapter.
 *
 * Return: the window in bytes.
 */
size_t ms_vfu_window_size(const ms_vfu_adapter *a);

/**
 * ms_vfu_state() - The adapter's current migration state.
 * @a: an adapter.
 *
 * Return: an ms_vfu_migr_state value.
 */
ms_vfu_migr_state ms_vfu_state(const ms_vfu_adapter *a);

/**
 * ms_vfu_errmsg() - Why the last failing call failed.
 * @a: an adapter.
 *
 * A call refused out of its state or API version says which it expected
 * ("read_data in state RUNNING: expected PRE_COPY or STOP_AND_COPY, ...").
 *
 * Return: "" or a message naming the offset and section for stream
 * errors; valid until the next call on @a.
 */
const char *ms_vfu_errmsg(const ms_vfu_adapter *a);

/**
 * ms_vfu_bytes() - Bytes of device state moved in the current or last
 *                  migration (saved and read out, or written and loaded).
 * @a: an adapter.
 *
 * Return: the byte count.
 */
uint64_t ms_vfu_bytes(const ms_vfu_adapter *a);

/**
 * ms_vfu_transition() - The transition callback (both API versions).
 * @a: an adapter.
 * @state: the new state.
 *
 * RUNNING to PRE_COPY starts a save (iterative handlers only, the guest
 * runs); STOP_AND_COPY completes it (the rest of the iterative data, then
 * every non-iterative section, then EOF); RUNNING to RESUME starts a
 * load, which RESUME to RUNNING (v1) or to STOP (v2) finishes.  Back to
 * RUNNING from a saving state cancels the save.  The same state again is
 * accepted and changes nothing (QEMU writes STOP_AND_COPY twice).  The
 * legal transitions are libvfio-user's for the adapter's API version.
 *
 * Into STOP_AND_COPY, unless ms_vfu_opts.lazy_final is set, every
 * non-iterative save_state runs here (in STOP_AND_COPY already, as
 * ms_vfu_state() tells a handler that asks); if one fails, the
 * transition fails with its errno and the section named, the save stays
 * in PRE_COPY (or, started here, is abandoned), and the transition may be
 * retried.
 *
 * Hooks: ms_vfu_opts.pre_transition runs first; if it fails, nothing has
 * changed and the same transition may be retried.  Then the adapter
 * acts; if that fails, the state is kept and no post-hook runs.  Then
 * ms_vfu_opts.post_transition; if it fails, the adapter stays in the new
 * state, with its action done (a save started or ended, a load
 * finished).  libvfio-user records a state only when this callback
 * succeeds, so the client's retry of the same state reaches the adapter
 * again: the same state again then runs the post-hook alone (with the
 * old state as @from), and succeeds when it does.  Any other transition
 * is judged from the new state and drops the failed post-hook: a cancel
 * back to RUNNING works from PRE_COPY in both API versions and from
 * STOP_AND_COPY in v1 (through libvfio-user v2, which still records the
 * old state, only after the retry).
 *
 * Return: 0, or -1 with errno: EINVAL for an illegal transition (nothing
 * changes), a hook's errno, or the error of the save or load that the
 * transition ran or finished (ENODATA for a truncated stream, EILSEQ for
 * a checksum mismatch, EBADMSG, ENOENT for an unknown device, ENOTSUP
 * for a version out of range, EFBIG over ms_vfu_opts.max_fed_bytes,
 * ENOMEM...).  After a failed load the adapter is in RESUME with the
 * load failed; RUNNING is refused and only a new RESUME (after STOP for
 * v2) starts again.
 */
int ms_vfu_transition(ms_vfu_adapter *a, ms_vfu_migr_state state);

/*
 * API v1.
 */

/**
 * ms_vfu_v1_get_pending_bytes() - v1 get_pending_bytes callback.
 * @a: an adapter.
 *
 * Commits the window last offered by ms_vfu_v1_prepare_data() (the client
 * has read it), produces more state if the buffer ran low, and returns
 * what remains: buffered bytes plus the handlers' estimates.  0 in
 * non-saving states and when everything was read.  After a save error it
 * returns 1, so that the client's next step (prepare_data) reports (and
 * logs) it.
 *
 * Return: pending bytes.
 */
uint64_t ms_vfu_v1_get_pending_bytes(ms_vfu_adapter *a);

/**
 * ms_vfu_v1_prepare_data() - v1 prepare_data callback.
 * @a: an adapter.
 * @offset: receives the data's offset relative to the data area (0).
 * @size: saving: receives the size of the window offered (at most the
 *        window); NULL when resuming, where @offset is where the client
 *        writes next.
 *
 * Return: 0, or -1 with errno (EINVAL in a state without data, or the
 * save's error).
 */
int ms_vfu_v1_prepare_data(ms_vfu_adapter *a, uint64_t *offset, uint64_t *size);

/**
 * ms_vfu_v1_read_data() - v1 read_data callback.
 * @a: an adapter.
 * @buf: receives the bytes.
 * @count: how many; the range must lie within the offered window.
 * @offset: relative to the data area.
 *
 * Any sub-range of the window may be read, any number of times.
 *
 * Return: @count, or -1 with errno EINVAL (out of the window or not
 * saving).
 */
ssize_t ms_vfu_v1_read_data(ms_vfu_adapter *a, void *buf, uint64_t count,
			    uint64_t offset);

/**
 * ms_vfu_v1_write_data() - v1 write_data callback.
 * @a: an adapter, resuming.
 * @buf: the bytes; copied.
 * @count: how many.
 * @offset: relative to the data area; the range must fit in the window.
 *
 * Return: @count, or -1 with errno EINVAL.
 */
ssize_t ms_vfu_v1_write_data(ms_vfu_adapter *a, const void *buf, uint64_t count,
			     uint64_t offset);

/**
 * ms_vfu_v1_data_written() - v1 data_written callback.
 * @a: an adapter, resuming.
 * @count: bytes of this round, written from the offset prepare_data gave.
 *
 * Hands the round's bytes to the load, which parses what is complete.
 *
 * Return: 0, or -1 with errno (EINVAL for a count past what was written,
 * or the load's error).
 */
int ms_vfu_v1_data_written(ms_vfu_adapter *a, uint64_t count);

/*
 * API v2.
 */

/**
 * ms_vfu_v2_read_data() - v2 read_data callback.
 * @a: an adapter in PRE_COPY or STOP_AND_COPY.
 * @buf: receives the bytes.
 * @count: the most to read.
 *
 * Return: @count while the state lasts, then a shorter count, then 0 (no
 * more data, in PRE_COPY: for now); -1 with errno on error.
 */
ssize_t ms_vfu_v2_read_data(ms_vfu_adapter *a, void *buf, uint64_t count);

/**
 * ms_vfu_v2_write_data() - v2 write_data callback.
 * @a: an adapter in RESUME.
 * @buf: the bytes; copied.
 * @count: how many.
 *
 * Return: @count, or -1 with errno (the load's error).
 */
ssize_t ms_vfu_v2_write_data(ms_vfu_adapter *a, const void *buf,
			     uint64_t count);

/*
 * Callback tables with libvfio-user's signatures, for a server that
 * includes <libvfio-user.h> (these macros use its types).  @name is the
 * vfu_migration_callbacks_t variable defined; @get_adapter is a function
 * or macro mapping a vfu_ctx_t * to the device's ms_vfu_adapter *.
 */
#define MS_VFU_DEFINE_CALLBACKS_V1(name, get_adapter)                          \
	static int name##_transition(vfu_ctx_t *ctx, vfu_migr_state_t st)      \
	{                                                                      \
		return ms_vfu_transition(get_adapter(ctx),                     \
					 (ms_vfu_migr_state)st);               \
	}                                                                      \
	static uint64_t name##_pending(vfu_ctx_t *ctx)                         \
	{                                                                      \
		return ms_vfu_v1_get_pending_bytes(get_adapter(ctx));          \
	}                                                                      \
	static int name##_prepare(vfu_ctx_t *ctx, uint64_t *off, uint64_t *sz) \
	{                                                                      \
		return ms_vfu_v1_prepare_data(get_adapter(ctx), off, sz);      \
	}                                                                      \
	static ssize_t name##_read(vfu_ctx_t *ctx, void *buf, uint64_t count,  \
				   uint64_t off)                               \
	{                                                                      \
		return ms_vfu_v1_read_data(get_adapter(ctx), buf, count, off); \
	}                                                                      \
	static ssize_t name##_write(vfu_ctx_t *ctx, void *buf, uint64_t count, \
				    uint64_t off)                              \
	{                                                                      \
		return ms_vfu_v1_write_data(get_adapter(ctx), buf, count,      \
					    off);                              \
	}                                                                      \
	static int name##_written(vfu_ctx_t *ctx, uint64_t count)              \
	{                                                                      \
		return ms_vfu_v1_data_written(get_adapter(ctx), count);        \
	}                                                                      \
	static const vfu_migration_callbacks_t name = {                        \
		.version = 1,                                                  \
		.transition = name##_transition,                               \
		.get_pending_bytes = name##_pending,                           \
		.prepare_data = name##_prepare,                                \
		.read_data = name##_read,                                      \
		.write_data = name##_write,                                    \
		.data_written = name##_written,                                \
	}

#define MS_VFU_DEFINE_CALLBACKS_V2(name, get_adapter)                          \
	static int name##_transition(vfu_ctx_t *ctx, vfu_migr_state_t st)      \
	{                                                                      \
		return ms_vfu_transition(get_adapter(ctx),                     \
					 (ms_vfu_migr_state)st);               \
	}                                                                      \
	static ssize_t name##_read(vfu_ctx_t *ctx, void *buf, uint64_t count)  \
	{                                                                      \
		return ms_vfu_v2_read_data(get_adapter(ctx), buf, count);      \
	}                                                                      \
	static ssize_t name##_write(vfu_ctx_t *ctx, void *buf, uint64_t count) \
	{                                                                      \
		return ms_vfu_v2_write_data(get_adapter(ctx), buf, count);     \
	}                                                                      \
	static const vfu_migration_callbacks_t name = {                        \
		.version = 2,                                                  \
		.transition = name##_transition,                               \
		.read_data = name##_read,                                      \
		.write_data = name##_write,                                    \
	}

#ifdef __cplusplus
}
#endif

#endif /* MIGSTREAM_VFIO_USER_H */
