/* SPDX-License-Identifier: MIT */
/*
 * migstream/ram.h: guest RAM as a section handler.
 *
 * An emulator registers its RAM blocks with an ms_ram and gets one
 * iterative section handler ("ram", instance 0, version 4, the name and
 * version QEMU uses) that an ms_registry runs like any other.  The source
 * sends every page in the first precopy round, then the pages dirtied
 * since, round after round, and the rest at stop-and-copy; the
 * destination writes each page straight into the registered block.
 *
 * The payload is QEMU 7.2's "ram" grammar (<migstream/qemu_ram.h>): a
 * block list in the START section, then page records (PAGE with the
 * page's bytes, ZERO with one fill byte for a page of zeros, CONTINUE
 * when the block is the previous record's), each section ended by EOS.
 * In the QEMU profile that is what QEMU writes and reads; in the native
 * profile the same bytes travel inside CRC-checked, optionally
 * zlib-compressed chunks.  migstream-dump reads both.
 *
 * Dirty tracking.  Each block has a dirty bitmap, one bit per page.  Any
 * thread may mark pages with ms_ram_mark_dirty() at any time, without a
 * lock, while the migration thread scans and clears the bitmap a word at
 * a time with an atomic exchange: no bit is lost.  The rule that makes
 * this safe: mark a page after the write to it (or, as KVM's dirty log
 * does, in the write fault before it, which is ordered before the write
 * becomes visible).  A write that lands after its bit was cleared for a
 * round sets the bit again, and the page is resent in a later round; the
 * last round runs with the guest stopped, so the destination ends with
 * the last contents.  An emulator with its own dirty log (KVM's
 * KVM_GET_DIRTY_LOG) instead hands it over from a sync callback, called
 * at the start of every round and when the save asks what is left, with
 * ms_ram_dirty_log().
 *
 * Parallel channels.  ms_ram_set_channels() spreads the page data over N
 * further streams (sockets or pipes), each written and read by a thread
 * of its own, as QEMU's multifd does; zero detection, checksums and
 * compression then run on those threads.  The main stream keeps the
 * block list and one sync point per round.  A round ends when every
 * channel has sent its share, and the destination applies no page of
 * round k+1 before every channel has applied round k, so a page resent in
 * a later round is never overwritten by an older copy.  A channel that
 * fails fails the migration with the channel's number and offset.
 *
 * Errors are negative errnos with a message: ms_ram_errmsg() for refused
 * calls, the stream's (and so the save's or load's) message for failures
 * while migrating.  An ms_ram is used by one save or one load at a time;
 * only ms_ram_mark_dirty() and ms_buffer_is_zero() may be called from
 * other threads meanwhile.
 */
#ifndef MIGSTREAM_RAM_H
#define MIGSTREAM_RAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <migstream/driver.h>
#include <migstream/section.h>
#include <migstream/stream.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most blocks one ms_ram holds. */
#define MS_RAM_MAX_BLOCKS 1024u
/* Most parallel channels. */
#define MS_RAM_MAX_CHANNELS 64u
/* Smallest and largest page size: QEMU's target pages, 1 KiB to 64 KiB. */
#define MS_RAM_MIN_PAGE_SIZE 1024u
#define MS_RAM_MAX_PAGE_SIZE 65536u

/** typedef ms_ram - Guest RAM: blocks, dirty bitmaps, its section handler. */
typedef struct ms_ram ms_ram;

/**
 * typedef ms_ram_sync_fn - Hand the emulator's dirty log over to ms_ram.
 * @opaque: ms_ram_opts.sync_opaque.
 * @ram: the ms_ram; call ms_ram_dirty_log() or ms_ram_mark_dirty() on it.
 *
 * Called on the migration thread at the start of every precopy round and
 * of stop-and-copy, before the bitmaps are scanned (not for the setup,
 * which marks every page), and whenever the save must know whether pages
 * are left while no page is marked: after a round that leaves none, and
 * from ms_save_pending().  So a guest that writes during a round keeps
 * precopy going, as with ms_ram_mark_dirty(); the call must be cheap
 * enough to make once more per round.  A failure there fails the next
 * round (or stop-and-copy) with its errno.
 *
 * Return: 0, or a negative errno that fails the save.
 */
typedef int (*ms_ram_sync_fn)(void *opaque, ms_ram *ram);

#define MS_RAM_OPTS_VERSION 1

/**
 * struct ms_ram_opts - Settings of an ms_ram.
 * @version: must be MS_RAM_OPTS_VERSION.
 * @page_size: the target page size of every block, a power of two from
 *             MS_RAM_MIN_PAGE_SIZE to MS_RAM_MAX_PAGE_SIZE; 0 for
 *             MS_QEMU_RAM_PAGE_SIZE (4096).  QEMU's grammar has one page
 *             size per stream: a stream with another page size than 4096
 *             needs the configuration's target-page-bits for
 *             migstream-dump to read it.
 * @sync: called at the start of each round (and see ms_ram_sync_fn),
 *        or NULL.
 * @sync_opaque: passed to @sync.
 * @allocator: allocation hooks, or NULL.
 *
 * NULL options mean all defaults.
 */
typedef struct ms_ram_opts {
	unsigned version;
	size_t page_size;
	ms_ram_sync_fn sync;
	void *sync_opaque;
	const ms_allocator *allocator;
} ms_ram_opts;

/* ms_ram_block.flags: the destination's memory is all zeros before the
 * load (fresh anonymous memory), so a zero page for a page that no record
 * wrote yet is neither read nor written. */
#define MS_RAM_BLOCK_ZEROED 0x1u

#define MS_RAM_BLOCK_VERSION 1

/**
 * struct ms_ram_block - One RAM block, as registered.
 * @version: must be MS_RAM_BLOCK_VERSION.
 * @idstr: its name, 1 to 255 bytes, such as "pc.ram"; copied.  Blocks of
 *         one ms_ram have distinct names; source and destination must
 *         register the same names with the same used lengths.
 * @host: the block's memory, @max_length bytes (at least @used_length),
 *        aligned to the page size; borrowed, must outlive the ms_ram.
 * @used_length: bytes migrated, a multiple of the page size (0 allowed).
 * @max_length: the most the block may grow to with ms_ram_resize(); 0
 *              for @used_length.
 * @flags: MS_RAM_BLOCK_ZEROED or 0.
 */
typedef struct ms_ram_block {
	unsigned version;
	const char *idstr;
	void *host;
	uint64_t used_length;
	uint64_t max_length;
	unsigned flags;
} ms_ram_block;

/**
 * ms_ram_new() - Create an ms_ram without blocks.
 * @out: receives it; untouched on failure.
 * @opts: settings, or NULL; copied.
 *
 * Return: 0, -EINVAL (bad @opts; ms_ram_opts_check() says why) or
 * -ENOMEM.
 */
int ms_ram_new(ms_ram **out, const ms_ram_opts *opts);

/**
 * ms_ram_opts_check() - Say what is wrong with ms_ram options.
 * @opts: options, or NULL.
 *
 * Return: NULL when ms_ram_new() accepts @opts, else a static message.
 * Thread-safe.
 */
const char *ms_ram_opts_check(const ms_ram_opts *opts);

/**
 * ms_ram_free() - Free an ms_ram.
 * @ram: an ms_ram, or NULL.
 *
 * Stops and joins the channel threads of a save or load that did not end
 * (shutting their sockets down with shutdown(2) so that no thread stays
 * blocked); the registry that holds its handler must not run it again.
 * Releases what a mapped save or restore holds (its tables and device
 * stream; its threads never outlive a round or a restore).  The mappings
 * of an mmap-mode restore stay: they are the guest's memory now, the
 * emulator unmaps them with its blocks.
 */
void ms_ram_free(ms_ram *ram);

/**
 * ms_ram_errmsg() - Why the last refused call on @ram failed.
 * @ram: an ms_ram.
 *
 * Return: "" or the message, valid until the next call with @ram.
 */
const char *ms_ram_errmsg(const ms_ram *ram);

/**
 * ms_ram_add_block() - Register a RAM block.
 * @ram: an ms_ram with no save or load running.
 * @blk: the block; copied (the memory is borrowed).
 * @index: receives the block's index (0, 1, ... in registration order),
 *         or NULL.
 *
 * Blocks are listed in the stream in registration order.
 *
 * Return: 0, -EINVAL (bad @blk, see ms_ram_errmsg()), -EEXIST (a block
 * of that name), -E2BIG (MS_RAM_MAX_BLOCKS) or -ENOMEM.
 */
int ms_ram_add_block(ms_ram *ram, const ms_ram_block *blk, unsigned *index);

/**
 * ms_ram_resize() - Change a block's used length.
 * @ram: an ms_ram with no save or load running.
 * @index: the block.
 * @used_length: the new length, a multiple of the page size, at most the
 *               block's max_length.
 *
 * Return: 0 or -EINVAL (see ms_ram_errmsg()).
 */
int ms_ram_resize(ms_ram *ram, unsigned index, uint64_t used_length);

/**
 * ms_ram_register() - Add @ram's section handler to a registry.
 * @ram: an ms_ram.
 * @reg: the registry; @ram must outlive its use of the handler.
 * @section_id: receives the section's id, or NULL.
 *
 * The handler is "ram", instance 0, version MS_QEMU_RAM_VERSION (4).  It
 * may be registered in several registries, for one save or load at a
 * time.
 *
 * Return: what ms_registry_add() returns (its message in
 * ms_registry_errmsg()).
 */
int ms_ram_register(ms_ram *ram, ms_registry *reg, uint32_t *section_id);

/**
 * ms_ram_set_channels() - Send or receive the pages over parallel streams.
 * @ram: an ms_ram with no save or load running.
 * @fds: @n connected descriptors (sockets or pipes), open for writing on
 *       a source and for reading on a destination; borrowed, never
 *       closed, and used only by the next save or load.  Channel i of the
 *       source must reach channel i of the destination.
 * @n: the number of channels, 0 to MS_RAM_MAX_CHANNELS; 0 sends the
 *     pages in the main stream (the default).
 * @codec: how each channel stream is written (each is a stream of its
 *         own, header to trailer, that migstream-dump can read); copied.
 *         NULL for the default: native profile with a CRC-32 on every
 *         record.  Readers detect the profile.
 *
 * Source and destination must use the same number of channels: a
 * destination with another number refuses the stream's START section.
 * A source shuts each channel socket down for writing (shutdown(2),
 * SHUT_WR) once its stream is complete, since the destination reads a
 * channel to its end; a save or load that fails shuts every channel
 * socket down both ways, so that no thread at either end stays blocked.
 * A pipe cannot be shut down: a thread blocked on one waits for its peer.
 *
 * Return: 0, -EINVAL (see ms_ram_errmsg()) or -ENOMEM.
 */
int ms_ram_set_channels(ms_ram *ram, const int *fds, unsigned n,
			const ms_codec_opts *codec);

/**
 * ms_ram_mark_dirty() - Mark the pages of a range dirty.
 * @ram: an ms_ram.
 * @index: the block.
 * @offset: the first byte written, from the block's start.
 * @len: bytes written; every page they touch is marked.
 *
 * Lock-free and callable from any thread at any time (an atomic OR per
 * bitmap word).  Call it after the write (see the header's comment).  A
 * range past the block's max_length is cut at it; an unknown @index is
 * ignored (a caller bug, caught by assert()).
 */
void ms_ram_mark_dirty(ms_ram *ram, unsigned index, uint64_t offset,
		       uint64_t len);

/**
 * ms_ram_dirty_log() - Merge a dirty log into a block's bitmap.
 * @ram: an ms_ram, typically from the sync callback.
 * @index: the block.
 * @first_page: the page (from the block's start) of bit 0 of @bitmap.
 * @bitmap: one bit per page, bit j of @bitmap[w] for page first_page +
 *          64 * w + j, as KVM_GET_DIRTY_LOG gives it (on a 64-bit host).
 * @npages: pages in @bitmap.
 *
 * Return: 0, or -EINVAL for an unknown block or a range past its
 * max_length (see ms_ram_errmsg()).
 */
int ms_ram_dirty_log(ms_ram *ram, unsigned index, uint64_t first_page,
		     const uint64_t *bitmap, uint64_t npages);

/**
 * ms_ram_dirty_pages() - Pages marked dirty now.
 * @ram: an ms_ram.
 *
 * Return: the number of set bits over the used pages of every block; the
 * handler's pending estimate is that times the page size (with a sync
 * callback, after asking it when no bit is set).
 */
uint64_t ms_ram_dirty_pages(const ms_ram *ram);

/**
 * struct ms_ram_stats - What the current (or last) save or load did.
 * @rounds: precopy rounds, stop-and-copy included.
 * @pages: page records sent or loaded, @zero_pages of them zero records.
 * @zero_pages: see @pages.
 * @resent: source: pages sent more than once in this save.
 * @round_pages: page records of the last round.
 * @round_zero: zero records of the last round.
 * @bytes: page bytes sent or loaded (records' headers not counted).
 */
typedef struct ms_ram_stats {
	uint64_t rounds;
	uint64_t pages;
	uint64_t zero_pages;
	uint64_t resent;
	uint64_t round_pages;
	uint64_t round_zero;
	uint64_t bytes;
} ms_ram_stats;

/**
 * ms_ram_get_stats() - Read the counters.
 * @ram: an ms_ram.
 * @st: receives them.
 *
 * Counters restart at each save's setup and each load's START section.
 */
void ms_ram_get_stats(const ms_ram *ram, ms_ram_stats *st);

/**
 * ms_ram_load_check() - Whether a load gave every block its full state.
 * @ram: an ms_ram after ms_load_run() (or the last ms_load_feed()).
 *
 * A stream may end without a "ram" section, or with its START but not its
 * END; the load driver cannot tell, since it knows no handler's grammar.
 * This says whether the START (with a block list naming every registered
 * block) and the END sections were loaded and every channel finished.
 *
 * Return: 0, or -ENODATA with a message in ms_ram_errmsg().
 */
int ms_ram_load_check(ms_ram *ram);

/*
 * Mapped snapshot files (docs/FORMAT.md, "Mapped snapshot files").
 *
 * For file targets only: each block gets a region of the file, aligned to
 * MS_RAM_MAPPED_ALIGN, with its pages at fixed offsets, so that a page
 * sent again overwrites its own place and the file never grows beyond the
 * RAM plus the device state, whatever the number of rounds.  Zero pages
 * are holes.  The device state is a native-profile stream at the end of
 * the file, whose "ram" sections hold the block list and no pages.  The
 * header's COMPLETE mark is written last, after fsync(), so that a file
 * whose save did not end is refused by every reader.
 *
 * Save: ms_ram_mapped_save_begin() on a file opened for writing gives the
 * stream to run ms_save on (native profile); the pages go to their places
 * with pwrite() from @threads writer threads in every round, the guest
 * may run during the precopy rounds (the migration thread is one of the
 * writers); after ms_save_complete(), ms_ram_mapped_save_commit() writes
 * the bitmaps and page checksums, then the COMPLETE mark.  A new mapped
 * save or restore, or ms_ram_free(), releases what the last one held.
 *
 * Restore: ms_ram_mapped_restore() checks the header, the block table
 * and the registered blocks, places the pages (MS_RAM_RESTORE_MMAP: maps
 * each block's region MAP_PRIVATE|MAP_FIXED over the block's memory, so
 * pages come in on first touch; MS_RAM_RESTORE_READ: pread() by @threads
 * threads into the block's memory, checking every page's CRC-32) and
 * gives the stream of the device state to run ms_load_run() on.
 *
 * Integrity: the header, the block table and each block's bitmap and
 * checksum table carry CRC-32s, checked by both modes; the device records
 * carry the native profile's.  Each page's CRC-32 is checked in read mode
 * and by migstream-dump verify; a mapped page cannot be checked before
 * the guest touches it, so mmap mode does not check pages (verify the
 * file first where that matters).
 */

/* Alignment of every block's page region in a mapped file (as QEMU's
 * mapped-ram, so that any host page size, huge pages included, maps). */
#define MS_RAM_MAPPED_ALIGN ((uint64_t)1 << 20)

/**
 * enum ms_ram_restore_mode - How a mapped restore places the pages.
 * @MS_RAM_RESTORE_MMAP: map each region over the block's memory
 *                       (MAP_PRIVATE: guest writes stay in memory); the
 *                       block's host address and used length must be
 *                       multiples of the system page size.
 * @MS_RAM_RESTORE_READ: read every page into the block's memory and check
 *                       its CRC-32.
 */
typedef enum ms_ram_restore_mode {
	MS_RAM_RESTORE_MMAP = 0,
	MS_RAM_RESTORE_READ = 1
} ms_ram_restore_mode;

#define MS_RAM_MAPPED_OPTS_VERSION 1

/**
 * struct ms_ram_mapped_opts - Settings of a mapped save or restore.
 * @version: must be MS_RAM_MAPPED_OPTS_VERSION.
 * @threads: writer (save) or reader (read-mode restore) threads, 1 to
 *           MS_RAM_MAX_CHANNELS; 0 for 1.
 * @mode: restore only.
 * @no_fsync: save only: skip the two fsync() calls (tests and
 *            benchmarks; a crash may then leave a file marked complete
 *            whose pages did not all reach the disk).
 */
typedef struct ms_ram_mapped_opts {
	unsigned version;
	unsigned threads;
	ms_ram_restore_mode mode;
	bool no_fsync;
} ms_ram_mapped_opts;

/**
 * ms_ram_mapped_save_begin() - Start a mapped save into a file.
 * @ram: an ms_ram with its blocks, no save or load running, no channels.
 * @fd: a regular file open for reading and writing; truncated and
 *      written from offset 0; borrowed, never closed.
 * @opts: settings, or NULL.
 * @device: receives a writer stream at the device state's offset: run
 *          ms_save on it with the native profile; owned by @ram (do not
 *          close it), valid until ms_ram_mapped_save_commit() or
 *          ms_ram_free().
 *
 * Return: 0, -EINVAL (see ms_ram_errmsg()), -ENOMEM or a negative errno
 * of the file.
 */
int ms_ram_mapped_save_begin(ms_ram *ram, int fd,
			     const ms_ram_mapped_opts *opts,
			     ms_stream **device);

/**
 * ms_ram_mapped_save_commit() - Complete a mapped save.
 * @ram: an ms_ram whose mapped save's ms_save_complete() succeeded.
 *
 * Flushes the device stream, writes every block's bitmap and checksum
 * table, fsync()s, writes the header with its COMPLETE mark and
 * fsync()s again.  Without this call the file stays incomplete.
 *
 * Return: 0, -EINVAL (called out of order, see ms_ram_errmsg()) or the
 * file's negative errno (ms_ram_errmsg() names the offset).
 */
int ms_ram_mapped_save_commit(ms_ram *ram);

/**
 * ms_ram_mapped_restore() - Restore the RAM of a mapped snapshot file.
 * @ram: an ms_ram whose blocks have the file's names and used lengths, no
 *       save or load running.
 * @fd: the file, open for reading; borrowed (mappings keep their own
 *      reference to it).
 * @opts: settings, or NULL (mmap mode, one thread).
 * @device: receives a reader stream over the device state: run
 *          ms_load_run() on it, with @ram's handler registered; owned by
 *          @ram, valid until the next save or restore or ms_ram_free().
 *
 * Refuses, naming the offset and what was expected and found: a file
 * that is not a mapped snapshot, an incomplete one (its save never
 * committed), a truncated one, a checksum that does not match, a block
 * unknown here or of another size, a page that was never saved, and (read
 * mode) a page whose CRC-32 does not match.  After the load,
 * ms_ram_load_check() holds as for a stream, and ms_ram_get_stats()
 * counts the pages the restore placed.
 *
 * In mmap mode every block's memory must be memory the emulator got from
 * mmap(2) (anonymous, memfd or file mappings; never malloc()'s heap):
 * MAP_FIXED replaces it with the file's region, which the emulator later
 * unmaps as it would its own memory.  A restore that fails in mmap mode
 * may leave blocks checked before the failure mapped already (with the
 * file's contents).  SEEK_DATA and SEEK_HOLE may move @fd's file offset.
 *
 * Return: 0, -EINVAL (see ms_ram_errmsg()), -EBADMSG, -ENODATA
 * (incomplete), -ENOMEM or the file's negative errno.
 */
int ms_ram_mapped_restore(ms_ram *ram, int fd, const ms_ram_mapped_opts *opts,
			  ms_stream **device);

/**
 * ms_buffer_is_zero() - Whether a buffer holds only zero bytes.
 * @buf: the bytes; any alignment.
 * @len: their number.
 *
 * Word-wise with an early exit, at memory bandwidth for page-sized
 * buffers.  Thread-safe.
 *
 * Return: true when every byte is 0 (and for @len 0).
 */
bool ms_buffer_is_zero(const void *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* MIGSTREAM_RAM_H */
