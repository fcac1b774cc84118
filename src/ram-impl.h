/* SPDX-License-Identifier: MIT */
/*
 * Private to ms_ram: the object (src/ram.c), its page encoder and record
 * parser (src/ram.c, src/ram-load.c) and its parallel channels
 * (src/ram-channel.c).
 *
 * Wire layout with N > 0 channels (docs/FORMAT.md, "RAM"):
 *
 * - Main stream, "ram" START: be64 (total | MEM_SIZE), the block list,
 *   then be64 (N << MS__RAM_SYNC_SHIFT | MULTIFD_FLUSH), then EOS.
 *   Each PART (round k = 1, 2, ...) and the END (the last round): no page
 *   records, be64 (k << MS__RAM_SYNC_SHIFT | MULTIFD_FLUSH), EOS.  The
 *   main PART of round k is written once every channel has sent (and
 *   flushed) its share of round k.
 * - Channel i: a stream of its own (header, records, EOF, trailer),
 *   written with the codec options of ms_ram_set_channels().  Its START
 *   is "ram", instance i, version 4, with the same block list and sync
 *   record (N) as the main START; then one PART per round k with that
 *   channel's pages of the round, be64 (k << SHIFT | MULTIFD_FLUSH) and
 *   EOS; the last round is an END instead of a PART; then EOF.
 * - Without channels, the main stream has no sync record at all: it is
 *   QEMU 7.2's grammar exactly.
 *
 * The source splits each block into stripes of MS__RAM_STRIPE_PAGES pages;
 * stripe j of the whole RAM (counted over the blocks in order) is channel
 * j % N's in every round.  A stripe is a whole number of bitmap words, so
 * no two channel threads clear bits of the same word.
 */
#ifndef MIGSTREAM_RAM_IMPL_H
#define MIGSTREAM_RAM_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"
#include "migstream/ram.h"

/* The sync record's value (channel count in a START, round number in a
 * PART or END) sits above every page mask. */
#define MS__RAM_SYNC_SHIFT 16
/* The sync record's value in the START section of a mapped snapshot's
 * device stream: the pages are in the file's regions, not in the stream
 * (docs/FORMAT.md, "Mapped snapshot files"). */
#define MS__RAM_SYNC_MAPPED 0xffffffffull
/* Pages per stripe (a multiple of any word size's bits). */
#define MS__RAM_STRIPE_PAGES 512u
/* Bits per dirty-bitmap word. */
#define MS__RAM_WORD_BITS (sizeof(unsigned long) * 8u)

/**
 * struct ms__ram_block - A registered block.
 * @idstr: its name, NUL-terminated.
 * @idlen: strlen(@idstr), 1 to 255.
 * @host: its memory.
 * @used: used length in bytes.
 * @max: max length in bytes.
 * @npages: @used / page size.
 * @maxpages: @max / page size.
 * @nwords: bitmap words over @maxpages.
 * @dirty: the dirty bitmap, @nwords words, marked from any thread.
 * @sent: source: pages sent at least once in this save (written only by
 *        the thread that owns the page's stripe).
 * @maybe_set: destination: a page that may hold non-zero bytes (all set
 *             unless MS_RAM_BLOCK_ZEROED); atomic, since a hostile source
 *             may send one page on two channels.
 * @zeroed: registered with MS_RAM_BLOCK_ZEROED.
 * @listed: destination: named by the main stream's block list (written
 *          by the migration thread only).
 */
struct ms__ram_block {
	char idstr[MS_COUNTED_STRING_MAX + 1];
	unsigned idlen;
	uint8_t *host;
	uint64_t used;
	uint64_t max;
	uint64_t npages;
	uint64_t maxpages;
	size_t nwords;
	atomic_ulong *dirty;
	unsigned long *sent;
	atomic_ulong *maybe_set;
	bool zeroed;
	bool listed;
};

/**
 * struct ms__ram_enc - State of one output of pages (the main stream or a
 * channel): QEMU's "last sent block", which lives across sections.
 * @last_blk: index of the block of the last page record, -1 for none.
 * @st: counters of this output (summed into the ms_ram's by its owner).
 */
struct ms__ram_enc {
	int last_blk;
	ms_ram_stats st;
};

/**
 * struct ms__ram_dec - State of one input of pages.
 * @last_blk: QEMU's "last received block": -1 for none.
 * @channel: -1 for the main stream, else the channel's number (for
 *           messages).
 * @allow_list: a MEM_SIZE block list may come (START sections only).
 * @allow_pages: page records may come (false in the main stream of a
 *               migration with channels).
 * @sync: the value of the section's sync record, if @have_sync.
 * @have_sync: the section had a sync record (MULTIFD_FLUSH).
 * @st: counters of this input.
 */
struct ms__ram_dec {
	int last_blk;
	int channel;
	bool allow_list;
	bool allow_pages;
	uint64_t sync;
	bool have_sync;
	ms_ram_stats st;
};

struct ms__ram_chan;
struct ms__ram_mapped;

/**
 * struct ms_ram - The object.
 * @alloc: allocation hooks (zeroed for libc).
 * @blk: the blocks, @nblk of @cap.
 * @page_size: the page size; @page_bits its log2.
 * @sync: the sync callback and @sync_opaque.
 * @sync_err: save: the errno of the sync call that failed, for
 *            sync_failed() to report (0: none); @sync_ret what the
 *            callback returned; @sync_asked: the call came from a pending
 *            estimate, not from a round's start.
 * @nch: channels set for the next save or load; @fds their descriptors;
 *       @chan_codec their codec options (@have_codec false for NULL).
 * @ch: the running channels (src/ram-channel.c), or NULL.
 * @round: the current round of a save or load (0 in setup).
 * @active: a save or load is running (between its setup/START and its
 *          cleanup/END).
 * @enc: the main stream's encoder (no channels).
 * @dec: the main stream's decoder.
 * @started: load: the START section was loaded.
 * @ended: load: the END section was loaded (and the channels joined);
 *         save: the END section was written (the cleanup then stops the
 *         channels without aborting them).
 * @st: the counters of the running or last save or load.
 * @map: a mapped save's or restore's state (src/ram-mapped.c), or NULL.
 * @map_save: the handler saves into a mapped file (its "ram" sections
 *            hold the block list and the MAPPED mark, the pages go to
 *            the file by the writer threads).
 * @map_restored: the handler loads the device stream of a mapped file:
 *                its START must carry the MAPPED mark, no section pages.
 * @err: the message of the last refused call (ms_ram_errmsg()).
 */
struct ms_ram {
	ms_allocator alloc;
	bool have_alloc;
	struct ms__ram_block *blk;
	unsigned nblk, cap;
	size_t page_size;
	unsigned page_bits;
	ms_ram_sync_fn sync;
	void *sync_opaque;
	int sync_err;
	int sync_ret;
	bool sync_asked;
	unsigned nch;
	int fds[MS_RAM_MAX_CHANNELS];
	ms_codec_opts chan_codec;
	bool have_codec;
	struct ms__ram_chan *ch;
	uint64_t round;
	bool active;
	struct ms__ram_enc enc;
	struct ms__ram_dec dec;
	bool started;
	bool ended;
	ms_ram_stats st;
	struct ms__ram_mapped *map;
	bool map_save;
	bool map_restored;
	ms__error err;
};

/*
 * Shared by the core and the channels (src/ram.c, src/ram-load.c).
 */

/* Reset an encoder or decoder (last block none, counters 0). */
void ms__ram_enc_init(struct ms__ram_enc *e);
void ms__ram_dec_init(struct ms__ram_dec *d, int channel, bool allow_list,
		      bool allow_pages);

/* Write be64 (total | MEM_SIZE) and the block list (no EOS). */
int ms__ram_put_block_list(ms_ram *ram, ms_stream *s);

/* Write the sync record be64 (value << MS__RAM_SYNC_SHIFT | MULTIFD_FLUSH)
 * and then EOS: the end of every section of a migration with channels. */
int ms__ram_put_sync_eos(ms_stream *s, uint64_t value);

/*
 * Send the dirty pages of pages [@first, @end) of block @b: each bitmap
 * word of the range is cleared with one atomic exchange and its set bits
 * are sent, zero pages as ZERO records, others as PAGE records (with
 * ms_put_buffer_async(): the stream copies when its sink needs to), the
 * block's name when it is not @e->last_blk's.  @first is a multiple of
 * MS__RAM_WORD_BITS; @end is one too, or the block's npages.  Updates
 * @e->st and the block's @sent bits.  Returns 0 or the stream's error.
 */
int ms__ram_send_pages(ms_ram *ram, struct ms__ram_enc *e, ms_stream *s,
		       unsigned b, uint64_t first, uint64_t end);

/*
 * Read one section's records up to and including EOS from @s (a "ram"
 * payload): a block list where @d->allow_list (checked against the
 * registered blocks: every one named once, same used length, total as
 * announced), page records where @d->allow_pages (bounds-checked and
 * placed in the block), at most one sync record (its value into
 * @d->sync), which must be the last record before EOS.  XBZRLE,
 * COMPRESS_PAGE, HOOK and FULL are refused naming the flag.  Every
 * failure fails @s with a message naming what was expected and found,
 * the block, and the channel when @d->channel >= 0 (the stream's error
 * carries the offset).  Returns 0 or the stream's error.
 *
 * Thread-safe for concurrent calls on distinct decoders and streams (the
 * channel threads): it writes only @d, @s, the pages and the atomic
 * @maybe_set bits, never @ram->st or other shared fields.  The check that
 * a block list names every block once uses memory of the call's own.
 * ms__ram_send_pages() likewise writes only @e, @s, the dirty words of its
 * range and the @sent bits of its range.
 */
int ms__ram_load_records(ms_ram *ram, struct ms__ram_dec *d, ms_stream *s);

/* The "ram" handler's load (src/ram-load.c), which ms_ram_register()
 * (src/ram.c) puts in the handler's ops beside the save callbacks. */
int ms__ram_load(void *opaque, ms_stream *s, uint32_t version_id, uint8_t type);

/* Add an encoder's or decoder's counters to @ram->st: pages, zero_pages,
 * resent and bytes, and pages and zero_pages also to round_pages and
 * round_zero (the core zeroes those and counts @ram->st.rounds at the
 * start of each round).  Called on the migration thread only. */
void ms__ram_stats_add(ms_ram *ram, const ms_ram_stats *st);

/*
 * The channels (src/ram-channel.c).  Each returns 0 or a negative errno;
 * on failure it fails @main (the section's payload stream) with a message
 * "RAM channel <i>: <the channel's own message, with its offset>".
 */

/* Source, from the START handler after the main block list: create a
 * writer on each channel fd and a thread per channel; each writes its
 * header and its START section.  Waits until every channel has written
 * its START. */
int ms__ram_chan_save_start(ms_ram *ram, ms_stream *main);

/* Source: round @ram->round on every channel (their stripes of every
 * block; a PART, or the END and EOF and the trailer when @final), and
 * wait until every channel has written and flushed it.  The counters of
 * the round are added to @ram->st. */
int ms__ram_chan_save_round(ms_ram *ram, bool final, ms_stream *main);

/* Source and destination: stop the threads (a thread blocked on its fd
 * is woken by shutdown(2) of the fd when @abort), join them and free the
 * channels; @ram->ch becomes NULL.  Safe with no channels running. */
void ms__ram_chan_stop(ms_ram *ram, bool abort);

/* Destination, from the main START's handler once its block list and
 * sync record (channel count @n) are read: check @n against @ram->nch,
 * create a reader and a thread per channel.  Each thread reads its START
 * (instance i, the same block list and count), then its rounds in order,
 * waiting after each round until every channel has applied that round. */
int ms__ram_chan_load_start(ms_ram *ram, uint64_t n, ms_stream *main);

/* Destination, at the main stream's sync record of round @round: fail if
 * a channel has failed (without waiting); when @final, wait until every
 * channel has applied its END (round @round) and read its EOF, join the
 * threads and add their counters to @ram->st. */
int ms__ram_chan_load_sync(ms_ram *ram, uint64_t round, bool final,
			   ms_stream *main);

/*
 * Mapped snapshot files (src/ram-mapped.c).
 */

/* Source, from the handler's setup in mapped mode: fail @s unless every
 * block still has the used length the file's layout was made for. */
int ms__ram_mapped_setup(ms_ram *ram, ms_stream *s);

/* Source: write the dirty pages of every block to their places in the
 * file with the writer threads, update the file's bitmap and checksum
 * tables in memory and add the round's counters to @ram->st.  A writer's
 * failure fails @s naming the block and the file offset. */
int ms__ram_mapped_round(ms_ram *ram, ms_stream *s);

/* Release what a mapped save or restore holds (tables, the device
 * stream); @ram->map becomes NULL and both modes end.  Mappings stay. */
void ms__ram_mapped_release(ms_ram *ram);

#endif /* MIGSTREAM_RAM_IMPL_H */
