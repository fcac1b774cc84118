/* SPDX-License-Identifier: MIT */
/*
 * migstream save and load drivers: a registry of section handlers, a save
 * driver that runs them through setup, precopy rounds and stop-and-copy,
 * and a load driver that dispatches each section to its handler and stops
 * at the first error, reading from a stream or from chunks fed to it.
 *
 * Errors are negative errnos with a message that names the byte offset
 * and the section ("offset 0x1d2: section 3 'timer': ...").  No object is
 * thread-safe; there is no global state.
 */
#ifndef MIGSTREAM_DRIVER_H
#define MIGSTREAM_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <migstream/section.h>
#include <migstream/stream.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version 2 passes @opaque first to every callback; 1 is refused. */
#define MS_HANDLER_OPS_VERSION 2

/**
 * struct ms_handler_ops - What a device (or RAM) provides to migrate.
 * @version: must be MS_HANDLER_OPS_VERSION (older versions are refused by
 *           ms_registry_add()).
 * @save_setup: iterative handlers: write the START section's payload (the
 *              first data, set up dirty tracking).  Optional.
 * @save_iterate: iterative handlers: write one PART section's payload
 *                while the guest runs.  Return 1 if more remains, 0 if
 *                this handler has nothing left for now, or a negative
 *                errno.  Its presence makes the handler iterative.
 * @pending: iterative handlers: estimate of the bytes still to send, used
 *           to decide when to stop iterating.  Optional (0).  After
 *           save_iterate returned 0, ms_save_iterate() runs the handler
 *           again only once this is non-zero, so a handler whose data
 *           arrives from elsewhere (a dirty log) looks there before it
 *           answers 0, as ms_ram does.
 * @save_complete: iterative handlers: write the END section's payload: all
 *                 that remains, with the guest stopped.  Optional.
 * @save_state: non-iterative handlers: write the whole state as one FULL
 *              section's payload, with the guest stopped.
 * @load: read a section's payload.  @version_id is the version in the
 *        stream (between the handler's minimum and its version), @type the
 *        section type (START, PART, END or FULL).  Read exactly the
 *        payload; return 0 or a negative errno (or fail @s with
 *        ms_stream_set_error() for a message of your own).  When a load
 *        is fed in chunks with the QEMU profile, a load may be called
 *        again for the same section from its first byte, if its data had
 *        not fully arrived: it must not accumulate across calls.
 * @save_cleanup: called once when a save ends, completes or is cancelled,
 *                for handlers whose save started.  Optional.
 *
 * Every callback gets first the @opaque given to ms_registry_add(), as
 * ms_stream_ops' callbacks do.  Every save callback writes through @s,
 * the section's payload stream, and returns 0 or a negative errno; write
 * errors need not be checked in between (the stream's error is sticky and
 * the driver checks it).
 */
typedef struct ms_handler_ops {
	unsigned version;
	int (*save_setup)(void *opaque, ms_stream *s);
	int (*save_iterate)(void *opaque, ms_stream *s);
	uint64_t (*pending)(void *opaque);
	int (*save_complete)(void *opaque, ms_stream *s);
	int (*save_state)(void *opaque, ms_stream *s);
	int (*load)(void *opaque, ms_stream *s, uint32_t version_id,
		    uint8_t type);
	void (*save_cleanup)(void *opaque);
} ms_handler_ops;

/** typedef ms_registry - The handlers of one VM or device server. */
typedef struct ms_registry ms_registry;

/**
 * ms_registry_new() - Create an empty registry.
 * @out: receives the registry; untouched on failure.
 * @allocator: allocation hooks, or NULL.
 *
 * Return: 0, -EINVAL or -ENOMEM.
 */
int ms_registry_new(ms_registry **out, const ms_allocator *allocator);

/**
 * ms_registry_free() - Free a registry.
 * @reg: a registry, or NULL.  No save or load may still use it.
 */
void ms_registry_free(ms_registry *reg);

/**
 * ms_registry_errmsg() - Why the last refused call on a registry failed.
 * @reg: a registry.
 *
 * Covers ms_registry_add() and the constructors that take @reg
 * (ms_save_new(), ms_load_new(), ms_vfu_adapter_new()) when they return
 * -EINVAL, -EEXIST or -ENOMEM: what was expected and what was given.  A
 * later successful call does not clear it.
 *
 * Return: "" or the message; valid until the next call with @reg.
 */
const char *ms_registry_errmsg(const ms_registry *reg);

/**
 * ms_registry_add() - Register a section handler.
 * @reg: a registry.
 * @idstr: the section's name, at most 255 bytes; copied.
 * @instance_id: distinguishes handlers with the same name.
 * @version_id: the version this build saves (and the newest it loads).
 * @min_version_id: the oldest version it loads.
 * @ops: the callbacks; borrowed, must outlive the registry.
 * @opaque: passed first to every callback.
 * @section_id: receives the new section's id, or NULL; untouched on
 *              failure.
 *
 * Sections get ids in registration order (0, 1, ...), as QEMU's do, and
 * are saved in that order.
 *
 * Return: 0, -EINVAL (bad arguments, @ops of another version, no @load,
 * or neither @save_iterate nor @save_state), -EEXIST (same idstr and
 * instance) or -ENOMEM; ms_registry_errmsg() says why.
 */
int ms_registry_add(ms_registry *reg, const char *idstr, uint32_t instance_id,
		    uint32_t version_id, uint32_t min_version_id,
		    const ms_handler_ops *ops, void *opaque,
		    uint32_t *section_id);

/* Version 2 made @codec a pointer; version 1 is refused. */
#define MS_SAVE_OPTS_VERSION 2

/**
 * struct ms_save_opts - Settings of a save.
 * @version: must be MS_SAVE_OPTS_VERSION.
 * @codec: the stream profile and its settings (see struct ms_codec_opts),
 *         copied by ms_save_new(); NULL for the default of every writer:
 *         the native profile with a CRC-32 on every record.  Set
 *         MS_PROFILE_QEMU here for QEMU's format.
 * @machine: machine type for the CONFIGURATION record, or NULL for none.
 * @vmdesc: a VM-description JSON to append after EOF, or NULL.
 * @vmdesc_len: its length.
 */
typedef struct ms_save_opts {
	unsigned version;
	const ms_codec_opts *codec;
	const char *machine;
	const char *vmdesc;
	size_t vmdesc_len;
} ms_save_opts;

/** typedef ms_save - A save in progress. */
typedef struct ms_save ms_save;

/**
 * ms_save_new() - Prepare a save of every registered handler.
 * @out: receives the save; untouched on failure.
 * @reg: the handlers; must outlive the save.
 * @s: the output stream; borrowed, not closed.
 * @opts: settings, or NULL for the defaults (the native profile with CRC,
 *        no configuration, no VM description); copied.
 *
 * Return: 0, -EINVAL (see ms_registry_errmsg()) or -ENOMEM.
 */
int ms_save_new(ms_save **out, ms_registry *reg, ms_stream *s,
		const ms_save_opts *opts);

/**
 * ms_save_setup() - Write the header, configuration and START sections.
 * @sv: a save, new.
 *
 * Then flushes the output stream, so that the destination has every START
 * section before the first round: a handler may need its START to get
 * ready (ms_ram's parallel channels start there).
 *
 * Return: 0, -EINVAL when called a second time (see ms_save_errmsg()), or
 * the save's sticky error.
 */
int ms_save_setup(ms_save *sv);

/**
 * ms_save_iterate() - One precopy round: a PART section per iterative
 *                     handler that still has data.
 * @sv: a save, after ms_save_setup().
 *
 * Return: 1 while some handler has more, 0 when none has, -EINVAL out of
 * order (see ms_save_errmsg()), or the sticky error.
 */
int ms_save_iterate(ms_save *sv);

/**
 * ms_save_pending() - Sum of the iterative handlers' pending estimates.
 * @sv: a save.
 *
 * Return: bytes; the caller compares it with what it can send within its
 * downtime to decide when to call ms_save_complete().
 */
uint64_t ms_save_pending(ms_save *sv);

/**
 * ms_save_complete() - Stop-and-copy: END sections for the iterative
 *                      handlers, FULL sections for the others, EOF, the
 *                      trailer, and a flush.
 * @sv: a save, after ms_save_setup().
 *
 * Return: 0, -EINVAL out of order (see ms_save_errmsg()), or the sticky
 * error.
 */
int ms_save_complete(ms_save *sv);

/**
 * ms_save_complete_step() - Stop-and-copy one section at a time.
 * @sv: a save, after ms_save_setup().
 *
 * Writes the next END or FULL section that ms_save_complete() would, or,
 * after the last one, EOF, the trailer and a flush.  For a caller that
 * sends the stream out of a bounded buffer (the vfio-user adapter): the
 * output grows by one section per call.
 *
 * Return: 1 while sections remain, 0 once the stream is complete, -EINVAL
 * out of order (see ms_save_errmsg()), or the sticky error.
 */
int ms_save_complete_step(ms_save *sv);

/**
 * ms_save_free() - End a save, complete or not.
 * @sv: a save, or NULL.
 *
 * A save abandoned midway calls each started handler's @save_cleanup and
 * writes nothing more; the registry can be used for a new save.
 */
void ms_save_free(ms_save *sv);

/**
 * ms_save_errmsg() - Message of the save's error.
 * @sv: a save.
 *
 * Without a sticky error, the message of the last call refused with
 * -EINVAL (called out of order, such as "ms_save_complete: called before
 * ms_save_setup"), which leaves the save as it was.
 *
 * Return: "", or a message naming the offset and the section (or, for a
 * refused call, the function and what it expected).
 */
const char *ms_save_errmsg(const ms_save *sv);

/**
 * ms_save_error() - The save's sticky error.
 * @sv: a save.
 *
 * Return: 0, or the negative errno the first failure returned.
 */
int ms_save_error(const ms_save *sv);

/**
 * ms_save_error_offset() - Output offset of the save's error.
 * @sv: a save.
 *
 * Return: where the output stream failed (its ms_stream_error_offset():
 * the bytes its sink had taken), or, for a failure of a handler or of the
 * save's own checks, the bytes the save had put by then; 0 without an
 * error.  The same offset starts ms_save_errmsg().
 */
uint64_t ms_save_error_offset(const ms_save *sv);

/* Version 3 made @codec a pointer; versions 1 and 2 are refused. */
#define MS_LOAD_OPTS_VERSION 3

/* Default of ms_load_opts.max_fed_bytes: device sections of hundreds of
 * MiB are legitimate. */
#define MS_DEFAULT_MAX_FED_BYTES ((size_t)1 << 30)

/**
 * struct ms_load_opts - Settings of a load.
 * @version: must be MS_LOAD_OPTS_VERSION.
 * @codec: the expected profile and its settings, copied by ms_load_new();
 *         NULL for the default of every reader: detect the profile (the
 *         default reader accepts what any writer writes).
 * @max_fed_bytes: fed loads: the most bytes of the stream the load holds
 *                 at once (the element it cannot load yet, what was fed
 *                 after it, and any room reserved with
 *                 ms_load_feed_reserve()); 0 for MS_DEFAULT_MAX_FED_BYTES.
 *                 A stream that needs more (a section larger than this)
 *                 is refused with -EFBIG and a message naming
 *                 ms_load_opts.max_fed_bytes.  ms_load_run() holds
 *                 nothing and ignores it.
 */
typedef struct ms_load_opts {
	unsigned version;
	const ms_codec_opts *codec;
	size_t max_fed_bytes;
} ms_load_opts;

/** typedef ms_load - A load in progress. */
typedef struct ms_load ms_load;

/**
 * ms_load_new() - Prepare a load into the registered handlers.
 * @out: receives the load; untouched on failure.
 * @reg: the handlers; must outlive the load.
 * @opts: settings, or NULL; copied.
 *
 * Return: 0, -EINVAL (no @out or @reg, or bad @opts: see
 * ms_registry_errmsg()) or -ENOMEM.
 */
int ms_load_new(ms_load **out, ms_registry *reg, const ms_load_opts *opts);

/**
 * ms_load_run() - Load a whole stream.
 * @ld: a load that has not been fed.
 * @s: the input; borrowed, not closed.
 *
 * Dispatches every section to its handler and stops at the first error:
 * an unknown section, a version out of range, a handler error, a payload
 * read past or short of its end, or any error of the stream's grammar.
 *
 * Return: 0 when the whole stream was loaded, -EINVAL for a load that was
 * run or fed before (the load stays as it was), or a negative errno (see
 * ms_load_errmsg()).
 */
int ms_load_run(ms_load *ld, ms_stream *s);

/**
 * ms_load_feed() - Give a load the next chunk of the stream.
 * @ld: a load.
 * @buf: the bytes; copied.
 * @len: their number.
 *
 * Loads every section whose data is complete and keeps the rest.  Native
 * profile: a section is loaded once all its records are there.  QEMU
 * profile: a section is tried once its footer seems to be there and, if
 * it was not, again from its start once the data held has doubled (or
 * the stream has ended, or the load holds @max_fed_bytes): the tries of
 * one section read less than twice its size, whatever the chunks.
 *
 * Memory: the load holds the element it cannot load yet and what was fed
 * after it, at most ms_load_opts.max_fed_bytes (a larger @len is taken in
 * slices, each loaded before the next); its buffer, which grows by
 * doubling, stays under four times that (twice when it is a power of two,
 * as the default is), plus the reader's section table (about 280 bytes
 * per section, at most MS_MAX_SECTIONS).  Pulled loads (ms_load_run())
 * need only their stream's buffer.
 *
 * Return: 0 (more data expected or the stream is complete, see
 * ms_load_is_complete()) or the sticky error: -EFBIG when the load would
 * hold more than ms_load_opts.max_fed_bytes.
 */
int ms_load_feed(ms_load *ld, const void *buf, size_t len);

/**
 * ms_load_feed_reserve() - Room to write the next chunk of a fed load.
 * @ld: a load.
 * @len: bytes of room wanted.
 * @room: receives where to write them; NULL on failure.
 *
 * ms_load_feed() without its copy: write up to @len bytes of the stream
 * at @room (with recv(), or from a protocol's callback), then call
 * ms_load_feed_commit() with the number written.  @room is valid until
 * the next call on @ld; a new reservation replaces an uncommitted one.
 *
 * The room counts towards ms_load_opts.max_fed_bytes: a reservation that
 * would take the load over it fails the load with -EFBIG.
 *
 * Return: 0, -EINVAL (a load that was run, not fed) or the sticky error
 * (-ENOMEM when the room cannot be had, -EFBIG over the limit).
 */
int ms_load_feed_reserve(ms_load *ld, size_t len, void **room);

/**
 * ms_load_feed_commit() - Load what was written at the reserved room.
 * @ld: a load.
 * @len: bytes written at the room of the last ms_load_feed_reserve(),
 *       from its start; at most the length reserved.
 *
 * Then as ms_load_feed(): every section now complete is loaded.
 *
 * Return: 0, -EINVAL (no reservation, or @len over it; the load goes
 * on) or the sticky error.
 */
int ms_load_feed_commit(ms_load *ld, size_t len);

/**
 * ms_load_finish() - Tell a fed load that no more data will come.
 * @ld: a load.
 *
 * Return: 0 if the stream was complete and loaded, -EINVAL for a load
 * that was run (ms_load_run()), not fed, otherwise the error (-ENODATA
 * with the offset for a truncated stream).
 */
int ms_load_finish(ms_load *ld);

/**
 * ms_load_is_complete() - Whether the whole stream has been loaded.
 * @ld: a load.
 *
 * Return: true after the end of the stream was read without error.
 */
bool ms_load_is_complete(const ms_load *ld);

/**
 * ms_load_error() - The load's sticky error.
 * @ld: a load.
 *
 * Return: 0 or a negative errno.
 */
int ms_load_error(const ms_load *ld);

/**
 * ms_load_errmsg() - Message of the load's error.
 * @ld: a load.
 *
 * Without a sticky error, the message of the last call refused with
 * -EINVAL (out of order or with a bad argument, such as
 * "ms_load_feed_commit: no room reserved with ms_load_feed_reserve"),
 * which leaves the load as it was.
 *
 * Return: "" or a message naming the offset, the section and what was
 * expected.
 */
const char *ms_load_errmsg(const ms_load *ld);

/**
 * ms_load_error_offset() - Input offset of the load's error.
 * @ld: a load.
 *
 * Return: the offset, or 0 without an error.
 */
uint64_t ms_load_error_offset(const ms_load *ld);

/**
 * ms_load_free() - Free a load, finished or abandoned.
 * @ld: a load, or NULL.  The registry can be used for a new load.
 */
void ms_load_free(ms_load *ld);

#ifdef __cplusplus
}
#endif

#endif /* MIGSTREAM_DRIVER_H */
