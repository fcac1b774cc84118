/* SPDX-License-Identifier: MIT */
/*
 * ms_ram: the object (blocks, dirty bitmaps, counters), the zero-page
 * check, the page encoder and the save side of the "ram" handler.  The
 * record parser and the load side are in src/ram-load.c, the parallel
 * channels in src/ram-channel.c; src/ram-impl.h is their contract.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migstream/qemu_ram.h"
#include "ram-impl.h"

/* A refused call: its message in ms_ram_errmsg(), @err returned. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
refuse(ms_ram *ram, int err, const char *fmt, ...)
{
	va_list ap;

	ram->err.code = 0;
	ram->err.offset = MS__NO_OFFSET;
	ram->err.text = 0;
	va_start(ap, fmt);
	vsnprintf(ram->err.msg, sizeof(ram->err.msg), fmt, ap);
	va_end(ap);
	return err;
}

static const ms_allocator *ram_alloc(const ms_ram *ram)
{
	return ram->have_alloc ? &ram->alloc : NULL;
}

/* Index of the lowest set bit of a non-zero word. */
static inline unsigned low_bit(unsigned long w)
{
#if defined(__GNUC__)
	return (unsigned)__builtin_ctzl(w);
#else
	unsigned i = 0;

	while (!(w & 1ul)) {
		w >>= 1;
		i++;
	}
	return i;
#endif
}

static inline unsigned bit_count(unsigned long w)
{
#if defined(__GNUC__)
	return (unsigned)__builtin_popcountl(w);
#else
	unsigned n = 0;

	for (; w; w &= w - 1)
		n++;
	return n;
#endif
}

/* Bits [lo, hi) of a word, 0 <= lo < hi <= MS__RAM_WORD_BITS. */
static inline unsigned long bit_range(unsigned lo, unsigned hi)
{
	unsigned long m = hi >= MS__RAM_WORD_BITS ? ~0ul : (1ul << hi) - 1;

	return m & ~((1ul << lo) - 1);
}

/*
 * Options and the object.
 */

const char *ms_ram_opts_check(const ms_ram_opts *opts)
{
	size_t ps;

	if (!opts)
		return NULL;
	if (opts->version != MS_RAM_OPTS_VERSION)
		return "ms_ram_opts: version MS_RAM_OPTS_VERSION (1) expected, "
		       "found another";
	ps = opts->page_size;
	if (ps && (ps < MS_RAM_MIN_PAGE_SIZE || ps > MS_RAM_MAX_PAGE_SIZE ||
		   (ps & (ps - 1))))
		return "ms_ram_opts: page_size 0 or a power of two from "
		       "MS_RAM_MIN_PAGE_SIZE (1024) to MS_RAM_MAX_PAGE_SIZE "
		       "(65536) expected, found another value";
	return NULL;
}

int ms_ram_new(ms_ram **out, const ms_ram_opts *opts)
{
	const ms_allocator *a = opts ? opts->allocator : NULL;
	ms_ram *ram;
	size_t ps;

	if (!out || ms_ram_opts_check(opts))
		return -EINVAL;
	ram = ms__malloc(a, sizeof(*ram));
	if (!ram)
		return -ENOMEM;
	memset(ram, 0, sizeof(*ram));
	if (a) {
		ram->alloc = *a;
		ram->have_alloc = true;
	}
	ps = opts && opts->page_size ? opts->page_size : MS_QEMU_RAM_PAGE_SIZE;
	ram->page_size = ps;
	while (((size_t)1 << ram->page_bits) < ps)
		ram->page_bits++;
	if (opts) {
		ram->sync = opts->sync;
		ram->sync_opaque = opts->sync_opaque;
	}
	ms__ram_enc_init(&ram->enc);
	ms__ram_dec_init(&ram->dec, -1, true, true);
	*out = ram;
	return 0;
}

void ms_ram_free(ms_ram *ram)
{
	const ms_allocator *a;
	unsigned i;

	if (!ram)
		return;
	a = ram_alloc(ram);
	ms__ram_chan_stop(ram, true);
	ms__ram_mapped_release(ram);
	for (i = 0; i < ram->nblk; i++) {
		ms__free(a, ram->blk[i].dirty);
		ms__free(a, ram->blk[i].sent);
		ms__free(a, ram->blk[i].maybe_set);
	}
	ms__free(a, ram->blk);
	ms__free(a, ram);
}

const char *ms_ram_errmsg(const ms_ram *ram)
{
	return ram ? ram->err.msg : "";
}

/* Why a block description is refused, in ram->err; 0 if it is fine. */
static int block_check(ms_ram *ram, const ms_ram_block *blk)
{
	uint64_t ps = ram->page_size, max;
	size_t len;

	if (!blk)
		return refuse(ram, -EINVAL,
			      "ms_ram_add_block: a block expected, "
			      "found NULL");
	if (blk->version != MS_RAM_BLOCK_VERSION)
		return refuse(ram, -EINVAL,
			      "ms_ram_add_block: version MS_RAM_BLOCK_VERSION "
			      "(%u) expected, found %u",
			      MS_RAM_BLOCK_VERSION, blk->version);
	len = blk->idstr ? strlen(blk->idstr) : 0;
	if (!len || len > MS_COUNTED_STRING_MAX)
		return refuse(ram, -EINVAL,
			      "ms_ram_add_block: an idstr of 1 to 255 bytes "
			      "expected, found %s of %zu bytes",
			      blk->idstr ? "one" : "NULL", len);
	max = blk->max_length ? blk->max_length : blk->used_length;
	if (blk->used_length % ps || max % ps)
		return refuse(ram, -EINVAL,
			      "ms_ram_add_block: '%s': lengths that are "
			      "multiples of the page size %llu expected, found "
			      "used_length 0x%llx and max_length 0x%llx",
			      blk->idstr, (unsigned long long)ps,
			      (unsigned long long)blk->used_length,
			      (unsigned long long)blk->max_length);
	if (max < blk->used_length)
		return refuse(ram, -EINVAL,
			      "ms_ram_add_block: '%s': max_length 0 or at "
			      "least used_length 0x%llx expected, found 0x%llx",
			      blk->idstr, (unsigned long long)blk->used_length,
			      (unsigned long long)max);
	if (max / ps > (uint64_t)SIZE_MAX / 4 || max > (uint64_t)SIZE_MAX)
		return refuse(ram, -EINVAL,
			      "ms_ram_add_block: '%s': a max_length this host "
			      "can address expected, found 0x%llx",
			      blk->idstr, (unsigned long long)max);
	if (max && !blk->host)
		return refuse(ram, -EINVAL,
			      "ms_ram_add_block: '%s': host memory expected "
			      "for 0x%llx bytes, found NULL",
			      blk->idstr, (unsigned long long)max);
	if ((uintptr_t)blk->host % ps)
		return refuse(ram, -EINVAL,
			      "ms_ram_add_block: '%s': host memory aligned to "
			      "the page size %llu expected, found %p",
			      blk->idstr, (unsigned long long)ps, blk->host);
	if (blk->flags & ~MS_RAM_BLOCK_ZEROED)
		return refuse(ram, -EINVAL,
			      "ms_ram_add_block: '%s': flags 0 or "
			      "MS_RAM_BLOCK_ZEROED expected, found 0x%x",
			      blk->idstr, blk->flags);
	return 0;
}

/* Find a block by name: its index or -1. */
static int find_block(const ms_ram *ram, const char *name)
{
	size_t len = strlen(name);
	unsigned i;

	for (i = 0; i < ram->nblk; i++)
		if (ram->blk[i].idlen == len &&
		    !memcmp(ram->blk[i].idstr, name, len))
			return (int)i;
	return -1;
}

/* Allocate a block's three bitmaps; maybe_set starts all set unless the
 * memory is known to be zero. */
static int block_bitmaps(ms_ram *ram, struct ms__ram_block *b)
{
	const ms_allocator *a = ram_alloc(ram);
	size_t n = b->nwords ? b->nwords : 1, i;

	b->dirty = ms__malloc(a, n * sizeof(*b->dirty));
	b->sent = ms__malloc(a, n * sizeof(*b->sent));
	b->maybe_set = ms__malloc(a, n * sizeof(*b->maybe_set));
	if (!b->dirty || !b->sent || !b->maybe_set) {
		ms__free(a, b->dirty);
		ms__free(a, b->sent);
		ms__free(a, b->maybe_set);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		atomic_init(&b->dirty[i], 0ul);
		b->sent[i] = 0;
		atomic_init(&b->maybe_set[i], b->zeroed ? 0ul : ~0ul);
	}
	return 0;
}

int ms_ram_add_block(ms_ram *ram, const ms_ram_block *blk, unsigned *index)
{
	struct ms__ram_block *b;
	int ret;

	if (!ram)
		return -EINVAL;
	if (ram->active)
		return refuse(ram, -EINVAL,
			      "ms_ram_add_block: no save or load "
			      "running expected, found one");
	ret = block_check(ram, blk);
	if (ret)
		return ret;
	if (find_block(ram, blk->idstr) >= 0)
		return refuse(ram, -EEXIST,
			      "ms_ram_add_block: a new block name expected, "
			      "found '%s' registered already",
			      blk->idstr);
	if (ram->nblk >= MS_RAM_MAX_BLOCKS)
		return refuse(ram, -E2BIG,
			      "ms_ram_add_block: '%s': at most "
			      "MS_RAM_MAX_BLOCKS (%u) blocks expected, this "
			      "would be one more",
			      blk->idstr, MS_RAM_MAX_BLOCKS);
	if (ram->nblk == ram->cap) {
		unsigned cap = ram->cap ? 2 * ram->cap : 8;

		b = ms__realloc(ram_alloc(ram), ram->blk, cap * sizeof(*b));
		if (!b)
			return refuse(ram, -ENOMEM,
				      "ms_ram_add_block: out of "
				      "memory");
		ram->blk = b;
		ram->cap = cap;
	}
	b = &ram->blk[ram->nblk];
	memset(b, 0, sizeof(*b));
	b->idlen = (unsigned)strlen(blk->idstr);
	memcpy(b->idstr, blk->idstr, b->idlen + 1);
	b->host = blk->host;
	b->used = blk->used_length;
	b->max = blk->max_length ? blk->max_length : blk->used_length;
	b->npages = b->used >> ram->page_bits;
	b->maxpages = b->max >> ram->page_bits;
	b->nwords = (size_t)((b->maxpages + MS__RAM_WORD_BITS - 1) /
			     MS__RAM_WORD_BITS);
	b->zeroed = blk->flags & MS_RAM_BLOCK_ZEROED;
	if (block_bitmaps(ram, b))
		return refuse(ram, -ENOMEM,
			      "ms_ram_add_block: '%s': out of memory for the "
			      "bitmaps of %llu pages",
			      blk->idstr, (unsigned long long)b->maxpages);
	if (index)
		*index = ram->nblk;
	ram->nblk++;
	return 0;
}

int ms_ram_resize(ms_ram *ram, unsigned index, uint64_t used_length)
{
	struct ms__ram_block *b;

	if (!ram)
		return -EINVAL;
	if (ram->active)
		return refuse(ram, -EINVAL,
			      "ms_ram_resize: no save or load "
			      "running expected, found one");
	if (index >= ram->nblk)
		return refuse(ram, -EINVAL,
			      "ms_ram_resize: a block index below %u expected, "
			      "found %u",
			      ram->nblk, index);
	b = &ram->blk[index];
	if (used_length % ram->page_size || used_length > b->max)
		return refuse(ram, -EINVAL,
			      "ms_ram_resize: '%s': a multiple of the page "
			      "size %zu up to max_length 0x%llx expected, "
			      "found 0x%llx",
			      b->idstr, ram->page_size,
			      (unsigned long long)b->max,
			      (unsigned long long)used_length);
	b->used = used_length;
	b->npages = used_length >> ram->page_bits;
	return 0;
}

int ms_ram_set_channels(ms_ram *ram, const int *fds, unsigned n,
			const ms_codec_opts *codec)
{
	const char *why;
	unsigned i, j;

	if (!ram)
		return -EINVAL;
	if (ram->active)
		return refuse(ram, -EINVAL,
			      "ms_ram_set_channels: no save or "
			      "load running expected, found one");
	if (n > MS_RAM_MAX_CHANNELS)
		return refuse(ram, -EINVAL,
			      "ms_ram_set_channels: 0 to MS_RAM_MAX_CHANNELS "
			      "(%u) channels expected, found %u",
			      MS_RAM_MAX_CHANNELS, n);
	if (n && !fds)
		return refuse(ram, -EINVAL,
			      "ms_ram_set_channels: %u descriptors expected, "
			      "found NULL",
			      n);
	for (i = 0; i < n; i++) {
		if (fds[i] < 0)
			return refuse(ram, -EINVAL,
				      "ms_ram_set_channels: open descriptors "
				      "expected, found %d for channel %u",
				      fds[i], i);
		for (j = 0; j < i; j++)
			if (fds[j] == fds[i])
				return refuse(ram, -EINVAL,
					      "ms_ram_set_channels: a "
					      "descriptor per channel "
					      "expected, found %d for "
					      "channels %u and %u",
					      fds[i], j, i);
	}
	why = codec ? ms_codec_opts_check(codec, false) : NULL;
	if (why && ms_codec_opts_check(codec, true))
		return refuse(ram, -EINVAL, "ms_ram_set_channels: %s", why);
	ram->nch = n;
	for (i = 0; i < n; i++)
		ram->fds[i] = fds[i];
	ram->have_codec = codec != NULL;
	if (codec)
		ram->chan_codec = *codec;
	return 0;
}

/*
 * Dirty tracking.
 */

void ms_ram_mark_dirty(ms_ram *ram, unsigned index, uint64_t offset,
		       uint64_t len)
{
	struct ms__ram_block *b;
	uint64_t first, last;
	size_t w, wl;

	assert(ram && index < ram->nblk);
	if (!ram || index >= ram->nblk || !len)
		return;
	b = &ram->blk[index];
	if (offset >= b->max)
		return;
	if (len > b->max - offset)
		len = b->max - offset;
	first = offset >> ram->page_bits;
	last = (offset + len - 1) >> ram->page_bits;
	w = (size_t)(first / MS__RAM_WORD_BITS);
	wl = (size_t)(last / MS__RAM_WORD_BITS);
	if (w == wl) {
		atomic_fetch_or_explicit(
			&b->dirty[w],
			bit_range((unsigned)(first % MS__RAM_WORD_BITS),
				  (unsigned)(last % MS__RAM_WORD_BITS) + 1),
			memory_order_release);
		return;
	}
	atomic_fetch_or_explicit(
		&b->dirty[w],
		bit_range((unsigned)(first % MS__RAM_WORD_BITS),
			  MS__RAM_WORD_BITS),
		memory_order_release);
	for (w++; w < wl; w++)
		atomic_fetch_or_explicit(&b->dirty[w], ~0ul,
					 memory_order_release);
	atomic_fetch_or_explicit(
		&b->dirty[wl],
		bit_range(0, (unsigned)(last % MS__RAM_WORD_BITS) + 1),
		memory_order_release);
}

int ms_ram_dirty_log(ms_ram *ram, unsigned index, uint64_t first_page,
		     const uint64_t *bitmap, uint64_t npages)
{
	struct ms__ram_block *b;
	uint64_t i, v, pg;
	unsigned done, n, tb;

	if (!ram)
		return -EINVAL;
	if (index >= ram->nblk)
		return refuse(ram, -EINVAL,
			      "ms_ram_dirty_log: a block index below %u "
			      "expected, found %u",
			      ram->nblk, index);
	b = &ram->blk[index];
	if (npages > b->maxpages || first_page > b->maxpages - npages)
		return refuse(
			ram, -EINVAL,
			"ms_ram_dirty_log: '%s': pages within its %llu "
			"(max_length) expected, found %llu from page %llu",
			b->idstr, (unsigned long long)b->maxpages,
			(unsigned long long)npages,
			(unsigned long long)first_page);
	if (npages && !bitmap)
		return refuse(ram, -EINVAL,
			      "ms_ram_dirty_log: a bitmap "
			      "expected, found NULL");
	for (i = 0; i < npages; i += 64) {
		v = bitmap[i / 64];
		if (npages - i < 64)
			v &= ((uint64_t)1 << (npages - i)) - 1;
		if (!v)
			continue;
		/* Bits [done, done + n) of @v land in one word of ours. */
		for (done = 0; done < 64; done += n) {
			uint64_t chunk;

			pg = first_page + i + done;
			tb = (unsigned)(pg % MS__RAM_WORD_BITS);
			n = (unsigned)MS__RAM_WORD_BITS - tb;
			if (n > 64 - done)
				n = 64 - done;
			chunk = v >> done;
			if (n < 64)
				chunk &= ((uint64_t)1 << n) - 1;
			if (chunk)
				atomic_fetch_or_explicit(
					&b->dirty[pg / MS__RAM_WORD_BITS],
					(unsigned long)chunk << tb,
					memory_order_release);
		}
	}
	return 0;
}

uint64_t ms_ram_dirty_pages(const ms_ram *ram)
{
	uint64_t n = 0;
	unsigned i;
	size_t w, full;

	if (!ram)
		return 0;
	for (i = 0; i < ram->nblk; i++) {
		struct ms__ram_block *b = &ram->blk[i];
		unsigned rest = (unsigned)(b->npages % MS__RAM_WORD_BITS);

		full = (size_t)(b->npages / MS__RAM_WORD_BITS);
		for (w = 0; w < full; w++)
			n += bit_count(atomic_load_explicit(
				&b->dirty[w], memory_order_relaxed));
		if (rest)
			n += bit_count(
				atomic_load_explicit(&b->dirty[full],
						     memory_order_relaxed) &
				bit_range(0, rest));
	}
	return n;
}

void ms_ram_get_stats(const ms_ram *ram, ms_ram_stats *st)
{
	if (!st)
		return;
	if (!ram) {
		memset(st, 0, sizeof(*st));
		return;
	}
	*st = ram->st;
}

/*
 * The zero check: the first and the last 32 bytes alone (most non-zero
 * pages differ there), then blocks of 256 aligned bytes OR'd together,
 * with an exit after each block.  Loads go through memcpy(), which
 * compilers turn into plain (or vector) loads without any alignment or
 * aliasing assumption in the source.  With GCC or clang on a target with
 * 16-byte vectors (SSE2, arm64) the blocks are OR'd as such vectors, and
 * on x86-64 as 32-byte AVX2 vectors when the CPU has them, which is what
 * lets one stream of loads keep up with memcmp()'s; elsewhere as 8-byte
 * words.
 */
static inline uint64_t load64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

#if defined(__GNUC__) && (defined(__SSE2__) || defined(__aarch64__))
typedef uint64_t zvec16 __attribute__((vector_size(16)));

static inline zvec16 load16(const unsigned char *p)
{
	zvec16 v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* [q, e), both 32-aligned: whether all zero. */
static bool zero_blocks(const unsigned char *q, const unsigned char *e)
{
	zvec16 x;

	for (; e - q >= 256; q += 256) {
		x = ((load16(q) | load16(q + 16)) |
		     (load16(q + 32) | load16(q + 48))) |
		    ((load16(q + 64) | load16(q + 80)) |
		     (load16(q + 96) | load16(q + 112)));
		x |= ((load16(q + 128) | load16(q + 144)) |
		      (load16(q + 160) | load16(q + 176))) |
		     ((load16(q + 192) | load16(q + 208)) |
		      (load16(q + 224) | load16(q + 240)));
		if (x[0] | x[1])
			return false;
	}
	for (; q < e; q += 32) {
		x = load16(q) | load16(q + 16);
		if (x[0] | x[1])
			return false;
	}
	return true;
}
#else
static bool zero_blocks(const unsigned char *q, const unsigned char *e)
{
	for (; e - q >= 64; q += 64)
		if (load64(q) | load64(q + 8) | load64(q + 16) |
		    load64(q + 24) | load64(q + 32) | load64(q + 40) |
		    load64(q + 48) | load64(q + 56))
			return false;
	for (; q < e; q += 8)
		if (load64(q))
			return false;
	return true;
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_ZERO_AVX2 1
typedef uint64_t zvec32 __attribute__((vector_size(32)));

__attribute__((target("avx2"))) static inline zvec32
load32(const unsigned char *p)
{
	zvec32 v;

	memcpy(&v, p, sizeof(v));
	return v;
}

__attribute__((target("avx2"))) static bool
zero_blocks_avx2(const unsigned char *q, const unsigned char *e)
{
	zvec32 x;

	for (; e - q >= 256; q += 256) {
		x = ((load32(q) | load32(q + 32)) |
		     (load32(q + 64) | load32(q + 96))) |
		    ((load32(q + 128) | load32(q + 160)) |
		     (load32(q + 192) | load32(q + 224)));
		if (x[0] | x[1] | x[2] | x[3])
			return false;
	}
	for (; q < e; q += 32) {
		x = load32(q);
		if (x[0] | x[1] | x[2] | x[3])
			return false;
	}
	return true;
}
#endif

bool ms_buffer_is_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf, *q, *e;
	size_t i;

	if (len < 64) {
		for (i = 0; i < len; i++)
			if (p[i])
				return false;
		return true;
	}
	if (load64(p) | load64(p + 8) | load64(p + 16) | load64(p + 24) |
	    load64(p + len - 32) | load64(p + len - 24) | load64(p + len - 16) |
	    load64(p + len - 8))
		return false;
	/* Checked: [p, q) and [e, p + len), q and e 32-aligned, q <= e. */
	q = p + 32 - ((uintptr_t)p & 31u);
	e = p + len - ((uintptr_t)(p + len) & 31u);
	if (q >= e)
		return true;
#if defined(HAVE_ZERO_AVX2)
	if (__builtin_cpu_supports("avx2"))
		return zero_blocks_avx2(q, e);
#endif
	return zero_blocks(q, e);
}

/*
 * Encoder.
 */

void ms__ram_enc_init(struct ms__ram_enc *e)
{
	e->last_blk = -1;
	memset(&e->st, 0, sizeof(e->st));
}

void ms__ram_dec_init(struct ms__ram_dec *d, int channel, bool allow_list,
		      bool allow_pages)
{
	memset(d, 0, sizeof(*d));
	d->last_blk = -1;
	d->channel = channel;
	d->allow_list = allow_list;
	d->allow_pages = allow_pages;
}

void ms__ram_stats_add(ms_ram *ram, const ms_ram_stats *st)
{
	ram->st.pages += st->pages;
	ram->st.zero_pages += st->zero_pages;
	ram->st.resent += st->resent;
	ram->st.bytes += st->bytes;
	ram->st.round_pages += st->pages;
	ram->st.round_zero += st->zero_pages;
}

int ms__ram_put_block_list(ms_ram *ram, ms_stream *s)
{
	uint64_t total = 0;
	unsigned i;

	/* A block of used length 0 is not listed: QEMU's list ends when
	 * the lengths reach the total, so it could not be read back. */
	for (i = 0; i < ram->nblk; i++)
		total += ram->blk[i].used;
	ms_put_be64(s, total | MS_QEMU_RAM_MEM_SIZE);
	for (i = 0; i < ram->nblk; i++) {
		const struct ms__ram_block *b = &ram->blk[i];

		if (!b->used)
			continue;
		ms_put_u8(s, (uint8_t)b->idlen);
		ms_put_buffer(s, b->idstr, b->idlen);
		ms_put_be64(s, b->used);
	}
	return ms_stream_error(s);
}

int ms__ram_put_sync_eos(ms_stream *s, uint64_t value)
{
	ms_put_be64(s, value << MS__RAM_SYNC_SHIFT | MS_QEMU_RAM_MULTIFD_FLUSH);
	ms_put_be64(s, MS_QEMU_RAM_EOS);
	return ms_stream_error(s);
}

/* One page record: ZERO with its fill byte, or PAGE and the page. */
static void send_page(ms_ram *ram, struct ms__ram_enc *e, ms_stream *s,
		      unsigned b, uint64_t page)
{
	struct ms__ram_block *blk = &ram->blk[b];
	uint8_t hdr[8 + 1 + MS_COUNTED_STRING_MAX + 1];
	uint64_t off = page << ram->page_bits;
	const uint8_t *p = blk->host + off;
	size_t n = 8, w = (size_t)(page / MS__RAM_WORD_BITS);
	unsigned long bit = 1ul << (page % MS__RAM_WORD_BITS);
	bool zero = ms_buffer_is_zero(p, ram->page_size);
	uint64_t v = off | (zero ? MS_QEMU_RAM_ZERO : MS_QEMU_RAM_PAGE);

	if (e->last_blk == (int)b) {
		v |= MS_QEMU_RAM_CONTINUE;
	} else {
		hdr[8] = (uint8_t)blk->idlen;
		memcpy(hdr + 9, blk->idstr, blk->idlen);
		n = 9 + blk->idlen;
		e->last_blk = (int)b;
	}
	ms__store_be64(hdr, v);
	e->st.pages++;
	if (zero) {
		hdr[n++] = 0;
		ms_put_buffer(s, hdr, n);
		e->st.zero_pages++;
	} else {
		ms_put_buffer(s, hdr, n);
		ms_put_buffer_async(s, p, ram->page_size);
		e->st.bytes += ram->page_size;
	}
	if (blk->sent[w] & bit)
		e->st.resent++;
	blk->sent[w] |= bit;
}

int ms__ram_send_pages(ms_ram *ram, struct ms__ram_enc *e, ms_stream *s,
		       unsigned b, uint64_t first, uint64_t end)
{
	struct ms__ram_block *blk = &ram->blk[b];
	uint64_t base;
	unsigned long bits, m;
	size_t w;
	int ret;

	for (base = first; base < end; base += MS__RAM_WORD_BITS) {
		w = (size_t)(base / MS__RAM_WORD_BITS);
		if (end - base >= MS__RAM_WORD_BITS) {
			bits = atomic_exchange_explicit(&blk->dirty[w], 0ul,
							memory_order_acq_rel);
		} else {
			m = bit_range(0, (unsigned)(end - base));
			bits = atomic_fetch_and_explicit(&blk->dirty[w], ~m,
							 memory_order_acq_rel) &
			       m;
		}
		while (bits) {
			send_page(ram, e, s, b, base + low_bit(bits));
			bits &= bits - 1;
		}
		ret = ms_stream_error(s);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * The save side of the handler.
 */

static int ram_save_setup(void *opaque, ms_stream *s)
{
	ms_ram *ram = opaque;
	unsigned i;
	size_t w, full;
	int ret;

	ram->active = true;
	ram->ended = false;
	ram->sync_err = 0;
	ram->round = 0;
	memset(&ram->st, 0, sizeof(ram->st));
	ms__ram_enc_init(&ram->enc);
	for (i = 0; i < ram->nblk; i++) {
		struct ms__ram_block *b = &ram->blk[i];
		unsigned rest = (unsigned)(b->npages % MS__RAM_WORD_BITS);

		full = (size_t)(b->npages / MS__RAM_WORD_BITS);
		for (w = 0; w < b->nwords; w++) {
			b->sent[w] = 0;
			atomic_store_explicit(&b->dirty[w],
					      w < full	  ? ~0ul
					      : w == full ? bit_range(0, rest)
							  : 0ul,
					      memory_order_relaxed);
		}
	}
	atomic_thread_fence(memory_order_seq_cst);
	if (ram->map_save) {
		ret = ms__ram_mapped_setup(ram, s);
		if (!ret)
			ret = ms__ram_put_block_list(ram, s);
		return ret ? ret : ms__ram_put_sync_eos(s, MS__RAM_SYNC_MAPPED);
	}
	ms__ram_put_block_list(ram, s);
	if (!ram->nch) {
		ms_put_be64(s, MS_QEMU_RAM_EOS);
		return ms_stream_error(s);
	}
	ret = ms__ram_put_sync_eos(s, ram->nch);
	return ret ? ret : ms__ram_chan_save_start(ram, s);
}

/*
 * Call the sync callback.  A failure is kept in @sync_err (@sync_asked: it
 * came from a pending estimate, not from a round's start) for
 * sync_failed() to report: a pending estimate has no stream to fail.
 */
static int ram_sync(ms_ram *ram, bool asked)
{
	int ret = ram->sync(ram->sync_opaque, ram);

	if (ret) {
		ram->sync_err = ret < 0 ? ret : -EIO;
		ram->sync_ret = ret;
		ram->sync_asked = asked;
	}
	return ram->sync_err;
}

/* Fail @s with the sync call that failed. */
static int sync_failed(ms_ram *ram, ms_stream *s)
{
	if (!ram->sync_asked)
		return ms_stream_set_error(
			s, ram->sync_err,
			"RAM sync callback: 0 expected, it returned %d (%s) "
			"in round %llu",
			ram->sync_ret, ms_strerror(ram->sync_err),
			(unsigned long long)ram->round + 1);
	return ms_stream_set_error(
		s, ram->sync_err,
		"RAM sync callback: 0 expected, it returned %d (%s) when "
		"asked for the pages left after round %llu",
		ram->sync_ret, ms_strerror(ram->sync_err),
		(unsigned long long)ram->round);
}

/* One round: the emulator's dirty log, then every dirty page. */
static int ram_round(ms_ram *ram, ms_stream *s, bool final)
{
	unsigned i;
	int ret;

	if (ram->sync_err || (ram->sync && ram_sync(ram, false)))
		return sync_failed(ram, s);
	ram->round++;
	ram->st.rounds++;
	ram->st.round_pages = 0;
	ram->st.round_zero = 0;
	if (ram->map_save) {
		ret = ms__ram_mapped_round(ram, s);
		if (!ret)
			ms_put_be64(s, MS_QEMU_RAM_EOS);
		return ret ? ret : ms_stream_error(s);
	}
	if (ram->nch) {
		ret = ms__ram_chan_save_round(ram, final, s);
		return ret ? ret : ms__ram_put_sync_eos(s, ram->round);
	}
	memset(&ram->enc.st, 0, sizeof(ram->enc.st));
	for (i = 0; i < ram->nblk && !ms_stream_error(s); i++)
		ms__ram_send_pages(ram, &ram->enc, s, i, 0, ram->blk[i].npages);
	ms__ram_stats_add(ram, &ram->enc.st);
	ms_put_be64(s, MS_QEMU_RAM_EOS);
	return ms_stream_error(s);
}

/*
 * The dirty pages left.  With a sync callback the bitmaps hold only what
 * the last call handed over, so an empty bitmap asks the emulator's log
 * again before it answers "nothing" (QEMU syncs when its estimate gets
 * small, for the same reason): otherwise a save that found every page
 * clean after its first round would skip the handler in every later one
 * and leave the whole log to stop-and-copy.  A failed call is kept for
 * the round that asked, or (from ms_save_pending()) the next one, to
 * report.
 */
static uint64_t ram_dirty_left(ms_ram *ram)
{
	uint64_t n = ms_ram_dirty_pages(ram);

	if (n || !ram->sync || !ram->active || ram->ended || ram->sync_err)
		return n;
	/* On failure, 1: the handler runs again and reports it. */
	return ram_sync(ram, true) ? 1 : ms_ram_dirty_pages(ram);
}

static int ram_save_iterate(void *opaque, ms_stream *s)
{
	ms_ram *ram = opaque;
	int ret = ram_round(ram, s, false);
	uint64_t left;

	if (ret)
		return ret;
	left = ram_dirty_left(ram);
	return ram->sync_err ? sync_failed(ram, s) : left > 0;
}

static uint64_t ram_pending(void *opaque)
{
	ms_ram *ram = opaque;

	return ram_dirty_left(ram) * ram->page_size;
}

static int ram_save_complete(void *opaque, ms_stream *s)
{
	ms_ram *ram = opaque;
	int ret = ram_round(ram, s, true);

	if (!ret)
		ram->ended = true;
	return ret;
}

static void ram_save_cleanup(void *opaque)
{
	ms_ram *ram = opaque;

	ms__ram_chan_stop(ram, !ram->ended);
	ram->active = false;
}

static const ms_handler_ops ram_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_setup = ram_save_setup,
	.save_iterate = ram_save_iterate,
	.pending = ram_pending,
	.save_complete = ram_save_complete,
	.load = ms__ram_load,
	.save_cleanup = ram_save_cleanup,
};

int ms_ram_register(ms_ram *ram, ms_registry *reg, uint32_t *section_id)
{
	if (!ram)
		return -EINVAL;
	return ms_registry_add(reg, MS_QEMU_RAM_IDSTR, 0, MS_QEMU_RAM_VERSION,
			       MS_QEMU_RAM_VERSION, &ram_ops, ram, section_id);
}
