/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the fed load driver (ms_load_feed(), ms_load_feed_reserve()
 * and ms_load_finish()), in chunk sizes taken from the input, with
 * handlers registered for every section the input names.  The same input
 * is also loaded pulled (ms_load_run()), and the two must agree: a fed
 * load accepts what the pulled one accepts (unless over its held-bytes
 * limit) and refuses what it refuses.  The bytes its tries read stay
 * linear in the input.
 *
 * An input: byte 0 the mode, byte 1 the chunk count K (low nibble) and
 * the held-bytes limit (high nibble: 0 the default, else 256 << it), K
 * chunk-size bytes (used in turn; none: the whole stream at once), then
 * the stream.  Mode bits: 0-1 the profile (auto, QEMU, native, auto),
 * bit 2 no_footers, bit 3 no_configuration, bit 4 write in place
 * (reserve and commit), bit 5 handlers that read a few bytes before
 * their payload's end is looked for, bit 6 one allocation fails.
 */
#include "fuzz-common.h"
#include "internal.h"

#define LF_MAX_HANDLERS 256

struct lf_handler {
	uint32_t section_id; /* QEMU: the footer its payload ends with */
	bool eager;	     /* reads a few bytes first */
};

struct lf {
	uint8_t mode;
	const uint8_t *chunks;
	size_t nchunks;
	size_t max_fed;
	const uint8_t *data;
	size_t size;
	ms_codec_opts copts;
	struct fz fz; /* the allocator that fails, and invariant reports */
	struct lf_handler h[LF_MAX_HANDLERS];
	size_t nh;
};

/* Accept-all: read the payload as its writer wrote it (deterministic, so
 * a retried run does the same). */
static int lf_load(void *opaque, ms_stream *s, uint32_t version, uint8_t type)
{
	const struct lf_handler *h = opaque;
	const uint8_t *d;
	uint8_t b[8];

	(void)type;
	if (h->eager && ms_peek(s, &d, 1) == 1 && d[0] != MS_REC_FOOTER)
		ms_get_buffer(s, b, 1 + version % 4);
	if (h->section_id == UINT32_MAX)
		fz_drain(s); /* native: the payload stream ends */
	else if (h->section_id != UINT32_MAX - 1)
		fz_scan_footer(s, h->section_id);
	/* A feed that ran dry is retried; other errors are the load's. */
	return ms_stream_error(s);
}

static int lf_save(void *opaque, ms_stream *s)
{
	(void)s;
	(void)opaque;
	return 0;
}

static const ms_handler_ops lf_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_state = lf_save,
	.load = lf_load,
};

/* Register a handler for each section the stream starts, as far as it
 * parses. */
static void lf_register(struct lf *l, ms_registry *reg)
{
	ms_stream *s;
	ms_reader *r;
	ms_record rec;

	if (ms_stream_new_mem_reader(&s, l->data, l->size, NULL))
		return;
	if (ms_reader_new(&r, s, &l->copts)) {
		ms_stream_close(s);
		return;
	}
	while (ms_reader_next(r, &rec) == 1 && l->nh < LF_MAX_HANDLERS) {
		bool native = ms_reader_profile(r) == MS_PROFILE_NATIVE;
		struct lf_handler *h = &l->h[l->nh];

		if (rec.type != MS_REC_START && rec.type != MS_REC_FULL) {
			if (!native && rec.type >= MS_REC_PART &&
			    rec.type <= MS_REC_END && !l->copts.no_footers)
				fz_scan_footer(ms_reader_payload(r),
					       rec.section.section_id);
			continue;
		}
		h->eager = l->mode & 0x20;
		if (native)
			h->section_id = UINT32_MAX;
		else if (l->copts.no_footers)
			h->section_id = UINT32_MAX - 1;
		else
			h->section_id = rec.section.section_id;
		if (!native && !l->copts.no_footers)
			fz_scan_footer(ms_reader_payload(r),
				       rec.section.section_id);
		if (ms_registry_add(reg, rec.section.idstr,
				    rec.section.instance_id, UINT32_MAX, 0,
				    &lf_ops, h, NULL) == 0)
			l->nh++;
	}
	ms_reader_free(r);
	ms_stream_close(s);
}

static size_t lf_chunk(const struct lf *l, size_t k)
{
	uint8_t b;

	if (!l->nchunks)
		return SIZE_MAX;
	b = l->chunks[k % l->nchunks];
	return b < 0xc0 ? (size_t)b + 1 : (size_t)(b - 0xbf) * 1024;
}

/* Feed the whole input; what the load ended with. */
static int lf_feed(struct lf *l, ms_load *ld)
{
	size_t off = 0, k, n;
	void *room;
	int ret = 0;

	for (k = 0; off < l->size && !ret; k++, off += n) {
		n = lf_chunk(l, k);
		if (n > l->size - off)
			n = l->size - off;
		if (!(l->mode & 0x10)) {
			ret = ms_load_feed(ld, l->data + off, n);
			continue;
		}
		ret = ms_load_feed_reserve(ld, n, &room);
		if (!ret) {
			memcpy(room, l->data + off, n);
			ret = ms_load_feed_commit(ld, n);
		}
	}
	return ret ? ret : ms_load_finish(ld);
}

static void lf_check(struct lf *l, ms_load *ld, int ret, int pulled)
{
	const char *msg = ms_load_errmsg(ld);
	uint64_t attempts, bytes;

	FZ_ASSERT(&l->fz, ms_load_is_complete(ld) == !ret);
	FZ_ASSERT(&l->fz, ms_load_error(ld) == ret);
	ms__load_counts(ld, &attempts, &bytes);
	/* Failed tries of an element read less than twice what it needed. */
	FZ_ASSERT(&l->fz, bytes <= 3 * (uint64_t)l->size + 64);
	if (ret == -ENOMEM)
		return;
	if (ret) {
		FZ_ASSERT(&l->fz, !strncmp(msg, "offset 0x", 9));
		FZ_ASSERT(&l->fz, strtoull(msg + 9, NULL, 16) ==
					  ms_load_error_offset(ld));
		FZ_ASSERT(&l->fz, ms_load_error_offset(ld) <= l->size);
	}
	if (l->fz.fail_at || pulled == -ENOMEM)
		return;
	/* Fed and pulled agree, but for the fed load's limit. */
	if (!pulled)
		FZ_ASSERT(&l->fz, !ret || (ret == -EFBIG && l->max_fed &&
					   strstr(msg, "max_fed_bytes")));
	else
		FZ_ASSERT(&l->fz, ret);
}

static bool lf_init(struct lf *l, const uint8_t *data, size_t size)
{
	size_t k;

	memset(l, 0, sizeof(*l));
	if (size < 2)
		return false;
	l->mode = data[0];
	l->nchunks = data[1] & 0x0f;
	k = data[1] >> 4;
	l->max_fed = k ? (size_t)256 << k : 0;
	if (size < 2 + l->nchunks)
		return false;
	l->chunks = data + 2;
	l->data = data + 2 + l->nchunks;
	l->size = size - 2 - l->nchunks;
	l->copts.version = MS_CODEC_OPTS_VERSION;
	l->copts.profile = (l->mode & 3) == 1	? MS_PROFILE_QEMU
			   : (l->mode & 3) == 2 ? MS_PROFILE_NATIVE
						: MS_PROFILE_AUTO;
	l->copts.no_footers = l->mode & 0x04;
	l->copts.no_configuration = l->mode & 0x08;
	l->fz.alloc.malloc = fz_malloc;
	l->fz.alloc.realloc = fz_realloc;
	l->fz.alloc.free = fz_free;
	l->fz.alloc.opaque = &l->fz;
	l->fz.size = l->size;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lf l;
	ms_registry *reg;
	ms_codec_opts co;
	ms_load_opts lo;
	ms_load *ld;
	ms_stream *s;
	int pulled, ret;

	if (!lf_init(&l, data, size))
		return 0;
	if (ms_registry_new(&reg, NULL))
		return 0;
	lf_register(&l, reg);
	memset(&lo, 0, sizeof(lo));
	lo.version = MS_LOAD_OPTS_VERSION;
	co = l.copts;
	lo.codec = &co;
	lo.max_fed_bytes = l.max_fed;
	/* Pulled, for the verdict to agree with. */
	pulled = -ENOMEM;
	if (!ms_stream_new_mem_reader(&s, l.data, l.size, NULL)) {
		if (!ms_load_new(&ld, reg, &lo)) {
			pulled = ms_load_run(ld, s);
			ms_load_free(ld);
		}
		ms_stream_close(s);
	}
	/* Fed, with one allocation failing in fault mode. */
	if (l.mode & 0x40) {
		l.fz.fail_at = 1 + data[1] % 16;
		co.allocator = &l.fz.alloc;
	}
	ret = ms_load_new(&ld, reg, &lo);
	if (ret) {
		FZ_ASSERT(&l.fz, ret == -ENOMEM && l.fz.fail_at);
	} else {
		ret = lf_feed(&l, ld);
#ifdef FZ_VERBOSE
		fprintf(stderr, "pulled %d fed %d: %s\n", pulled, ret,
			ms_load_errmsg(ld));
#endif
		lf_check(&l, ld, ret, pulled);
		ms_load_free(ld);
	}
	ms_registry_free(reg);
	return 0;
}
