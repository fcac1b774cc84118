/* SPDX-License-Identifier: MIT */
/*
 * ms_ram's destination: the parser of QEMU's "ram" records (shared with
 * the channel threads, see src/ram-impl.h) and the handler's load.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "migstream/qemu_ram.h"
#include "ram-impl.h"

/* Fail @s with a message, naming the channel when @d is one's. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int
dec_fail(const struct ms__ram_dec *d, ms_stream *s, int err, const char *fmt,
	 ...)
{
	char text[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (d->channel >= 0)
		return ms_stream_set_error(s, err, "channel %d: %s", d->channel,
					   text);
	return ms_stream_set_error(s, err, "%s", text);
}

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

/* The first registered block of a non-zero length that @seen lacks. */
static int first_unseen(const ms_ram *ram, const uint8_t *seen)
{
	unsigned i;

	for (i = 0; i < ram->nblk; i++)
		if (ram->blk[i].used && !(seen[i / 8] & (1u << (i % 8))))
			return (int)i;
	return -1;
}

/* One entry of the block list: u8 length, idstr, be64 used length. */
static int list_entry(ms_ram *ram, const struct ms__ram_dec *d, ms_stream *s,
		      uint8_t *seen, uint64_t *sum, uint64_t total)
{
	char name[MS_COUNTED_STRING_MAX + 1];
	uint64_t len;
	int i;

	if (ms_get_counted_string(s, name) < 0 || ms_get_be64(s, &len))
		return ms_stream_error(s);
	if (!name[0])
		return dec_fail(d, s, -EBADMSG,
				"block list: a RAM block name expected, found "
				"an empty name");
	i = find_block(ram, name);
	if (i < 0)
		return dec_fail(d, s, -EINVAL,
				"block list: a registered RAM block expected, "
				"found '%s' (0x%llx bytes), which this side "
				"does not have",
				name, (unsigned long long)len);
	if (seen[i / 8] & (1u << (i % 8)))
		return dec_fail(
			d, s, -EBADMSG,
			"block list: distinct RAM block names expected, "
			"found '%s' twice",
			name);
	if (!len || len != ram->blk[i].used)
		return dec_fail(d, s, -EINVAL,
				"block list: RAM block '%s' of used length "
				"0x%llx (as registered) expected, found 0x%llx",
				name, (unsigned long long)ram->blk[i].used,
				(unsigned long long)len);
	if (len > total - *sum)
		return dec_fail(d, s, -EINVAL,
				"block list: RAM block '%s' (0x%llx bytes) "
				"within the announced total 0x%llx expected, "
				"found it past it (0x%llx listed before it)",
				name, (unsigned long long)len,
				(unsigned long long)total,
				(unsigned long long)*sum);
	seen[i / 8] |= (uint8_t)(1u << (i % 8));
	*sum += len;
	return 0;
}

/* The block list after MEM_SIZE: every registered block of a non-zero
 * length once, with its used length, adding up to @total. */
static int block_list(ms_ram *ram, const struct ms__ram_dec *d, ms_stream *s,
		      uint64_t total)
{
	uint8_t seen[MS_RAM_MAX_BLOCKS / 8];
	uint64_t sum = 0, want = 0;
	unsigned i;
	int miss, ret;

	memset(seen, 0, sizeof(seen));
	for (i = 0; i < ram->nblk; i++)
		want += ram->blk[i].used;
	while (sum < total) {
		if (sum == want)
			return dec_fail(d, s, -EINVAL,
					"block list: a total of 0x%llx (the "
					"%u registered RAM blocks) expected, "
					"found 0x%llx announced",
					(unsigned long long)want, ram->nblk,
					(unsigned long long)total);
		ret = list_entry(ram, d, s, seen, &sum, total);
		if (ret)
			return ret;
	}
	miss = first_unseen(ram, seen);
	if (miss >= 0)
		return dec_fail(d, s, -EINVAL,
				"block list: every registered RAM block "
				"expected, found no '%s' (0x%llx bytes) in it "
				"(total 0x%llx announced, 0x%llx registered)",
				ram->blk[miss].idstr,
				(unsigned long long)ram->blk[miss].used,
				(unsigned long long)total,
				(unsigned long long)want);
	return 0;
}

/* A ZERO record's fill byte and its placement. */
static int zero_page(ms_ram *ram, const struct ms__ram_dec *d, ms_stream *s,
		     struct ms__ram_block *b, uint64_t addr)
{
	uint64_t page = addr >> ram->page_bits;
	size_t w = (size_t)(page / MS__RAM_WORD_BITS);
	unsigned long bit = 1ul << (page % MS__RAM_WORD_BITS);
	uint8_t fill;

	if (ms_get_u8(s, &fill))
		return ms_stream_error(s);
	if (fill)
		return dec_fail(d, s, -EBADMSG,
				"zero page of '%s' at 0x%llx: fill byte 0 "
				"expected, found 0x%02x",
				b->idstr, (unsigned long long)addr, fill);
	/* Memory known to be zero (a ZEROED block's page that no record
	 * wrote since the last ZERO) is neither read nor written; other
	 * memory is the emulator's, which may have written it meanwhile. */
	if (!b->zeroed) {
		if (!ms_buffer_is_zero(b->host + addr, ram->page_size))
			memset(b->host + addr, 0, ram->page_size);
	} else if (atomic_load_explicit(&b->maybe_set[w],
					memory_order_relaxed) &
		   bit) {
		if (!ms_buffer_is_zero(b->host + addr, ram->page_size))
			memset(b->host + addr, 0, ram->page_size);
		atomic_fetch_and_explicit(&b->maybe_set[w], ~bit,
					  memory_order_relaxed);
	}
	return 0;
}

/* A PAGE or ZERO record whose be64 is @v. */
static int page_record(ms_ram *ram, struct ms__ram_dec *d, ms_stream *s,
		       uint64_t v, unsigned flags)
{
	uint64_t addr = v & ~(uint64_t)(ram->page_size - 1), page;
	char name[MS_COUNTED_STRING_MAX + 1];
	struct ms__ram_block *b;
	int i;

	if (!(flags & MS_QEMU_RAM_CONTINUE)) {
		if (ms_get_counted_string(s, name) < 0)
			return ms_stream_error(s);
		i = find_block(ram, name);
		if (i < 0)
			return dec_fail(d, s, -EINVAL,
					"page record: a RAM block of the block "
					"list expected, found '%s'",
					name);
		d->last_blk = i;
	} else if (d->last_blk < 0) {
		return dec_fail(d, s, -EBADMSG,
				"page record: a RAM block name expected, found "
				"CONTINUE (0x20) on the first page");
	}
	b = &ram->blk[d->last_blk];
	if (addr >= b->used)
		return dec_fail(d, s, -EBADMSG,
				"page record: an offset below 0x%llx (the used "
				"length of RAM block '%s') expected, found "
				"0x%llx",
				(unsigned long long)b->used, b->idstr,
				(unsigned long long)addr);
	d->st.pages++;
	if ((flags & ~MS_QEMU_RAM_CONTINUE) == MS_QEMU_RAM_ZERO) {
		d->st.zero_pages++;
		return zero_page(ram, d, s, b, addr);
	}
	if (ms_get_buffer(s, b->host + addr, ram->page_size))
		return ms_stream_error(s);
	page = addr >> ram->page_bits;
	if (b->zeroed)
		atomic_fetch_or_explicit(
			&b->maybe_set[page / MS__RAM_WORD_BITS],
			1ul << (page % MS__RAM_WORD_BITS),
			memory_order_relaxed);
	d->st.bytes += ram->page_size;
	return 0;
}

/* A sync record, whose be64 is @v: the section's last record. */
static int sync_record(ms_ram *ram, struct ms__ram_dec *d, ms_stream *s,
		       uint64_t v)
{
	uint64_t eos;

	if ((v & ~(uint64_t)(ram->page_size - 1)) !=
	    (v >> MS__RAM_SYNC_SHIFT) << MS__RAM_SYNC_SHIFT)
		return dec_fail(
			d, s, -EBADMSG,
			"RAM sync point: a value above bit %u expected, "
			"found the record 0x%llx",
			MS__RAM_SYNC_SHIFT, (unsigned long long)v);
	if (ms_get_be64(s, &eos))
		return ms_stream_error(s);
	if (eos != MS_QEMU_RAM_EOS)
		return dec_fail(d, s, -EBADMSG,
				"RAM sync point: EOS (0x10) right after it "
				"expected, found the record 0x%llx",
				(unsigned long long)eos);
	d->sync = v >> MS__RAM_SYNC_SHIFT;
	d->have_sync = true;
	return 0;
}

/* The flags no ms_ram reads: a message naming each. */
static int refused_flag(const struct ms__ram_dec *d, ms_stream *s,
			unsigned base, unsigned flags)
{
	switch (base) {
	case MS_QEMU_RAM_XBZRLE:
		return dec_fail(d, s, -ENOTSUP,
				"RAM record: XBZRLE (0x40) page found: "
				"ms_ram does not decode XBZRLE; migrate with "
				"QEMU's xbzrle capability off");
	case MS_QEMU_RAM_COMPRESS_PAGE:
		return dec_fail(d, s, -ENOTSUP,
				"RAM record: COMPRESS_PAGE (0x100) page "
				"found: ms_ram does not decode compressed "
				"pages; migrate with QEMU's compress "
				"capability off");
	case MS_QEMU_RAM_HOOK:
		return dec_fail(d, s, -ENOTSUP,
				"RAM record: HOOK (0x80) found: RDMA hook data "
				"cannot be read from a stream");
	case MS_QEMU_RAM_FULL:
		return dec_fail(d, s, -ENOTSUP,
				"RAM record: FULL (0x01) found: obsolete since "
				"QEMU 0.13");
	default:
		return dec_fail(d, s, -EBADMSG,
				"RAM record flags ZERO, MEM_SIZE, PAGE, EOS or "
				"MULTIFD_FLUSH expected, found 0x%x",
				flags);
	}
}

/* Whether the record of @base may come here; 0 or the failure. */
static int record_allowed(const struct ms__ram_dec *d, ms_stream *s,
			  unsigned base, unsigned flags, bool listed)
{
	bool page = base == MS_QEMU_RAM_ZERO || base == MS_QEMU_RAM_PAGE;

	if (base == MS_QEMU_RAM_MEM_SIZE && !d->allow_list)
		return dec_fail(d, s, -EBADMSG,
				"page record or EOS expected, found a block "
				"list (MEM_SIZE, 0x04) after the START "
				"section");
	if (base == MS_QEMU_RAM_MEM_SIZE && listed)
		return dec_fail(d, s, -EBADMSG,
				"page record expected, found a second block "
				"list (MEM_SIZE)");
	if (page && !d->allow_pages)
		return dec_fail(d, s, -EBADMSG,
				"no page record in the main stream of a "
				"migration over RAM channels or of a mapped "
				"snapshot expected, found one (flags 0x%x)",
				flags);
	if ((page || base == MS_QEMU_RAM_EOS ||
	     base == MS_QEMU_RAM_MULTIFD_FLUSH) &&
	    d->allow_list && !listed)
		return dec_fail(d, s, -EBADMSG,
				"block list (MEM_SIZE, 0x04) expected first in "
				"the START section, found the record 0x%x",
				flags);
	return 0;
}

int ms__ram_load_records(ms_ram *ram, struct ms__ram_dec *d, ms_stream *s)
{
	uint64_t v, mask = ram->page_size - 1;
	unsigned flags, base;
	bool listed = false;
	int ret;

	for (;;) {
		if (ms_get_be64(s, &v))
			return ms_stream_error(s);
		flags = (unsigned)(v & mask);
		base = flags & ~MS_QEMU_RAM_CONTINUE;
		ret = record_allowed(d, s, base, flags, listed);
		if (ret)
			return ret;
		switch (base) {
		case MS_QEMU_RAM_MEM_SIZE:
			ret = block_list(ram, d, s, v & ~mask);
			listed = true;
			break;
		case MS_QEMU_RAM_EOS:
			return 0;
		case MS_QEMU_RAM_MULTIFD_FLUSH:
			return sync_record(ram, d, s, v);
		case MS_QEMU_RAM_ZERO:
		case MS_QEMU_RAM_PAGE:
			ret = page_record(ram, d, s, v, flags);
			break;
		default:
			return refused_flag(d, s, base, flags);
		}
		if (ret)
			return ret;
	}
}

/*
 * The handler's load.
 */

/* The MAPPED mark: wanted exactly when a mapped restore placed the pages;
 * a mapped START then ends the section's work. */
static int mapped_mark(ms_ram *ram, const struct ms__ram_dec *d, ms_stream *s)
{
	bool mark = d->have_sync && d->sync == MS__RAM_SYNC_MAPPED;
	unsigned i;

	if (mark && !ram->map_restored)
		return ms_stream_set_error(
			s, -EINVAL,
			"the pages of this stream are in a mapped snapshot "
			"file's regions: restore it with "
			"ms_ram_mapped_restore()");
	if (!ram->map_restored)
		return 0;
	if (!mark)
		return ms_stream_set_error(
			s, -EBADMSG,
			"the MAPPED mark (sync value 0x%llx) after the block "
			"list of a mapped snapshot's device stream expected, "
			"found %s",
			(unsigned long long)MS__RAM_SYNC_MAPPED,
			d->have_sync ? "another sync value" : "none");
	for (i = 0; i < ram->nblk; i++)
		ram->blk[i].listed = ram->blk[i].used > 0;
	ram->active = true;
	ram->started = true;
	return 0;
}

static int load_start(ms_ram *ram, ms_stream *s)
{
	struct ms__ram_dec *d = &ram->dec;
	unsigned i;
	int ret;

	ram->started = false;
	ram->ended = false;
	ram->round = 0;
	/* A mapped restore counted its pages already. */
	if (!ram->map_restored)
		memset(&ram->st, 0, sizeof(ram->st));
	ms__ram_dec_init(d, -1, true, ram->nch == 0 && !ram->map_restored);
	ret = ms__ram_load_records(ram, d, s);
	if (ret)
		return ret;
	ret = mapped_mark(ram, d, s);
	if (ret || ram->map_restored)
		return ret;
	if (d->have_sync && !ram->nch)
		return ms_stream_set_error(
			s, -EINVAL,
			"a RAM channel sync point found: the source sends "
			"pages on %llu channels; call ms_ram_set_channels() "
			"with as many before the load",
			(unsigned long long)d->sync);
	if (d->have_sync && d->sync != ram->nch)
		return ms_stream_set_error(
			s, -EINVAL,
			"RAM channels: %u expected (ms_ram_set_channels()), "
			"found %llu on the source: give both ends the same "
			"number",
			ram->nch, (unsigned long long)d->sync);
	if (!d->have_sync && ram->nch)
		return ms_stream_set_error(
			s, -EINVAL,
			"RAM channels: a sync point with the source's count "
			"(%u, ms_ram_set_channels()) expected after the block "
			"list, found none: the source sends its pages in the "
			"main stream; set 0 channels here or %u there",
			ram->nch, ram->nch);
	for (i = 0; i < ram->nblk; i++)
		ram->blk[i].listed = ram->blk[i].used > 0;
	ms__ram_stats_add(ram, &d->st);
	memset(&d->st, 0, sizeof(d->st));
	ram->active = true;
	ram->started = true;
	return ram->nch ? ms__ram_chan_load_start(ram, d->sync, s) : 0;
}

static int load_part(ms_ram *ram, ms_stream *s, bool final)
{
	struct ms__ram_dec *d = &ram->dec;
	int ret;

	if (!ram->started)
		return ms_stream_set_error(
			s, -EBADMSG,
			"the 'ram' START section (its block list) expected "
			"before a %s section, found none",
			final ? "END" : "PART");
	d->allow_list = false;
	d->allow_pages = ram->nch == 0 && !ram->map_restored;
	d->have_sync = false;
	d->sync = 0;
	memset(&d->st, 0, sizeof(d->st));
	ret = ms__ram_load_records(ram, d, s);
	if (ret)
		return ret;
	if (ram->map_restored && d->have_sync)
		return ms_stream_set_error(
			s, -EBADMSG,
			"EOS alone in a %s section of a mapped snapshot's "
			"device stream expected, found a sync point",
			final ? "END" : "PART");
	if (d->have_sync && !ram->nch)
		return ms_stream_set_error(
			s, -EINVAL,
			"a RAM channel sync point (round %llu) found: the "
			"source sends pages on channels; call "
			"ms_ram_set_channels() with as many before the load",
			(unsigned long long)d->sync);
	if (ram->nch && !d->have_sync)
		return ms_stream_set_error(
			s, -EBADMSG,
			"RAM channels: a sync point (round %llu) at the end of "
			"the section expected, found EOS alone",
			(unsigned long long)ram->round + 1);
	if (ram->nch && d->sync != ram->round + 1)
		return ms_stream_set_error(
			s, -EBADMSG,
			"RAM channels: the sync point of round %llu expected, "
			"found round %llu",
			(unsigned long long)ram->round + 1,
			(unsigned long long)d->sync);
	ram->round++;
	ram->st.rounds++;
	ram->st.round_pages = 0;
	ram->st.round_zero = 0;
	ms__ram_stats_add(ram, &d->st);
	memset(&d->st, 0, sizeof(d->st));
	if (ram->nch) {
		ret = ms__ram_chan_load_sync(ram, ram->round, final, s);
		if (ret)
			return ret;
	}
	if (final) {
		ram->ended = true;
		ram->active = false;
		ram->map_restored = false;
	}
	return 0;
}

int ms__ram_load(void *opaque, ms_stream *s, uint32_t version_id, uint8_t type)
{
	ms_ram *ram = opaque;
	/* A fed load may run a section again from its first byte: what a
	 * failed call changed is put back (pages written twice hold the
	 * same bytes). */
	struct ms__ram_dec dec = ram->dec;
	ms_ram_stats st = ram->st;
	uint64_t round = ram->round;
	bool started = ram->started, ended = ram->ended, active = ram->active;
	int ret;

	(void)version_id;
	switch (type) {
	case MS_REC_START:
		ret = load_start(ram, s);
		break;
	case MS_REC_PART:
	case MS_REC_END:
		ret = load_part(ram, s, type == MS_REC_END);
		break;
	default:
		ret = ms_stream_set_error(s, -EBADMSG,
					  "a START, PART or END section "
					  "expected, found %s: 'ram' is "
					  "iterative",
					  ms_record_type_name(type));
	}
	if (ret) {
		ram->dec = dec;
		ram->st = st;
		ram->round = round;
		ram->started = started;
		ram->ended = ended;
		ram->active = active;
	}
	return ret;
}

int ms_ram_load_check(ms_ram *ram)
{
	if (!ram)
		return -EINVAL;
	ram->err.code = 0;
	if (!ram->started) {
		snprintf(ram->err.msg, sizeof(ram->err.msg),
			 "ms_ram_load_check: the 'ram' START section (the "
			 "block list) expected, found none: the stream held "
			 "no RAM");
		return -ENODATA;
	}
	if (!ram->ended) {
		snprintf(ram->err.msg, sizeof(ram->err.msg),
			 "ms_ram_load_check: the 'ram' END section "
			 "(stop-and-copy) expected, found START and %llu "
			 "PART sections only: the stream ended before the "
			 "migration completed",
			 (unsigned long long)ram->round);
		return -ENODATA;
	}
	return 0;
}
