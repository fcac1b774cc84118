/* SPDX-License-Identifier: MIT */
/*
 * The save and load drivers: round trips in both profiles, blocking and
 * fed in chunks of every size, stop at the first error (a load loop that
 * breaks out of its switch instead of its loop would not), unknown
 * sections, versions, truncation at every offset, cancellation and
 * allocation failure, and the messages of calls made out of order.
 */
#include "config.h"

#include <fcntl.h>
#include <stddef.h>
#include <unistd.h>

#include "internal.h"
#include "ms-test.h"

#define PAGES 64
#define PAGE  256

/* A small VM: iterative RAM, a CPU with a subsection, a timer. */
struct vm {
	uint8_t ram[PAGES][PAGE];
	bool dirty[PAGES];
	int per_round;
	uint64_t regs[8];
	uint32_t msr;
	bool has_msr;
	uint64_t timer;
	/* Counters. */
	int loads[4];
	int cleanups;
	int fail_load;	/* section id whose load fails, or -1 */
	int short_read; /* load reads one byte less (-1 off) */
};

static void vm_init(struct vm *v, uint64_t seed)
{
	int i;

	memset(v, 0, sizeof(*v));
	for (i = 0; i < PAGES; i++) {
		/* Every fourth page is zero, as in a real guest. */
		if (i % 4)
			ms_test_fill(v->ram[i], PAGE, seed + (uint64_t)i);
		v->dirty[i] = true;
	}
	for (i = 0; i < 8; i++)
		v->regs[i] = seed * 1000 + (uint64_t)i;
	/* The last register holds the bytes of the CPU's footer (7e and
	 * section id 1) just before its subsection: a fed QEMU-profile load
	 * must not take it for the end of the section. */
	v->regs[7] = 0x1122337e00000001ull;
	v->msr = (uint32_t)seed;
	v->has_msr = true;
	v->timer = 0x1122334455667788ull ^ seed;
	v->per_round = 10;
	v->fail_load = -1;
	v->short_read = -1;
}

static void vm_clear(struct vm *v)
{
	memset(v->ram, 0xee, sizeof(v->ram));
	memset(v->regs, 0, sizeof(v->regs));
	v->msr = 0;
	v->has_msr = false;
	v->timer = 0;
	memset(v->loads, 0, sizeof(v->loads));
	v->fail_load = -1;
	v->short_read = -1;
}

static bool vm_equal(const struct vm *a, const struct vm *b)
{
	return !memcmp(a->ram, b->ram, sizeof(a->ram)) &&
	       !memcmp(a->regs, b->regs, sizeof(a->regs)) && a->msr == b->msr &&
	       a->has_msr == b->has_msr && a->timer == b->timer;
}

static bool page_is_zero(const uint8_t *p)
{
	int i;

	for (i = 0; i < PAGE; i++)
		if (p[i])
			return false;
	return true;
}

/* RAM: be32 page index | flags, then the page unless it is zero. */
static int ram_send(ms_stream *s, struct vm *v, int max)
{
	int i, sent = 0;

	for (i = 0; i < PAGES && sent < max; i++) {
		if (!v->dirty[i])
			continue;
		v->dirty[i] = false;
		sent++;
		if (page_is_zero(v->ram[i])) {
			ms_put_be32(s, (uint32_t)i << 8 | 0x02);
		} else {
			ms_put_be32(s, (uint32_t)i << 8 | 0x08);
			ms_put_buffer_async(s, v->ram[i], PAGE);
		}
	}
	ms_put_be32(s, 0x10); /* end of this section's pages */
	return ms_stream_error(s);
}

static int ram_setup(void *opaque, ms_stream *s)
{
	(void)opaque;
	return ms_put_be64(s, (uint64_t)PAGES * PAGE);
}

static uint64_t ram_pending(void *opaque)
{
	struct vm *v = opaque;
	uint64_t n = 0;
	int i;

	for (i = 0; i < PAGES; i++)
		n += v->dirty[i] ? PAGE : 0;
	return n;
}

static int ram_iterate(void *opaque, ms_stream *s)
{
	struct vm *v = opaque;
	int ret = ram_send(s, v, v->per_round);

	return ret ? ret : ram_pending(v) > 0;
}

static int ram_complete(void *opaque, ms_stream *s)
{
	return ram_send(s, opaque, PAGES);
}

static int ram_load(void *opaque, ms_stream *s, uint32_t version, uint8_t type)
{
	struct vm *v = opaque;
	uint64_t size;
	uint32_t w;

	v->loads[0]++;
	if (v->fail_load == 0)
		return -EIO;
	if (type == MS_REC_START) {
		ms_get_be64(s, &size);
		if (size != (uint64_t)PAGES * PAGE)
			return ms_stream_set_error(s, -EINVAL, "RAM size %llu",
						   (unsigned long long)size);
		return ms_stream_error(s);
	}
	for (;;) {
		uint32_t idx;

		if (ms_get_be32(s, &w))
			return ms_stream_error(s);
		if (w == 0x10)
			return 0;
		idx = w >> 8;
		if (idx >= PAGES)
			return ms_stream_set_error(s, -EINVAL, "page %u", idx);
		if ((w & 0xff) == 0x02)
			memset(v->ram[idx], 0, PAGE);
		else if ((w & 0xff) == 0x08)
			ms_get_buffer(s, v->ram[idx], PAGE);
		else
			return ms_stream_set_error(s, -EINVAL, "flags 0x%x",
						   w & 0xff);
	}
}

static void ram_cleanup(void *opaque)
{
	((struct vm *)opaque)->cleanups++;
}

static int cpu_save(void *opaque, ms_stream *s)
{
	struct vm *v = opaque;

	ms_put_be64_array(s, v->regs, 8);
	if (v->has_msr) {
		ms_put_subsection(s, "cpu/msr", 1);
		ms_put_be32(s, v->msr);
	}
	return ms_stream_error(s);
}

static int cpu_load(void *opaque, ms_stream *s, uint32_t version, uint8_t type)
{
	struct vm *v = opaque;
	char name[MS_COUNTED_STRING_MAX + 1];
	uint32_t sv;
	int ret;

	v->loads[1]++;
	if (v->fail_load == 1)
		return -EIO;
	ms_get_be64_array(s, v->regs, 8);
	v->has_msr = false;
	while ((ret = ms_get_subsection(s, "cpu", name, &sv)) == 1) {
		if (strcmp(name, "cpu/msr") || sv != 1)
			return ms_stream_set_error(
				s, -ENOENT, "unknown subsection %s", name);
		ms_get_be32(s, &v->msr);
		v->has_msr = true;
	}
	return ret < 0 ? ret : ms_stream_error(s);
}

static int timer_save(void *opaque, ms_stream *s)
{
	return ms_put_be64(s, ((struct vm *)opaque)->timer);
}

static int timer_load(void *opaque, ms_stream *s, uint32_t version,
		      uint8_t type)
{
	struct vm *v = opaque;
	uint32_t hi, lo;

	v->loads[2]++;
	if (v->fail_load == 2)
		return -EIO;
	ms_get_be32(s, &hi);
	if (v->short_read == 2)
		return ms_stream_error(s);
	ms_get_be32(s, &lo);
	v->timer = (uint64_t)hi << 32 | lo;
	return ms_stream_error(s);
}

static const ms_handler_ops ram_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_setup = ram_setup,
	.save_iterate = ram_iterate,
	.pending = ram_pending,
	.save_complete = ram_complete,
	.load = ram_load,
	.save_cleanup = ram_cleanup,
};

static const ms_handler_ops cpu_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_state = cpu_save,
	.load = cpu_load,
};

static const ms_handler_ops timer_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_state = timer_save,
	.load = timer_load,
};

/* A registry for @v; cpu at @cpu_version (its minimum is 2). */
static ms_registry *vm_registry(struct vm *v, uint32_t cpu_version,
				const ms_allocator *a)
{
	ms_registry *reg;
	uint32_t id[3] = {9, 9, 9};

	ck_assert_int_eq(ms_registry_new(&reg, a), 0);
	/* The natural chain: 0 on success, and the ids through the last
	 * parameter, in registration order. */
	if (ms_registry_add(reg, "ram", 0, 4, 4, &ram_ops, v, &id[0]) ||
	    ms_registry_add(reg, "cpu", 0, cpu_version, 2, &cpu_ops, v,
			    &id[1]) ||
	    ms_registry_add(reg, "timer", 0, 1, 1, &timer_ops, v, &id[2]))
		ck_abort_msg("ms_registry_add: %s", ms_registry_errmsg(reg));
	ck_assert_uint_eq(id[0], 0);
	ck_assert_uint_eq(id[1], 1);
	ck_assert_uint_eq(id[2], 2);
	return reg;
}

static ms_codec_opts codec(ms_profile p, int level)
{
	ms_codec_opts o;

	memset(&o, 0, sizeof(o));
	o.version = MS_CODEC_OPTS_VERSION;
	o.profile = p;
	o.compress_level = level;
	o.chunk_size = 1000; /* several DATA records per section */
	return o;
}

/* Saves @v with precopy rounds; returns the stream bytes (malloc'd). */
static uint8_t *vm_save(struct vm *v, ms_codec_opts c, size_t *len)
{
	ms_save_opts so;
	ms_registry *reg = vm_registry(v, 3, NULL);
	ms_stream *s;
	ms_save *sv;
	const uint8_t *data;
	uint8_t *copy;
	int rounds = 0, ret;

	memset(&so, 0, sizeof(so));
	so.version = MS_SAVE_OPTS_VERSION;
	so.codec = &c;
	so.machine = "migstream-test-1.0";
	so.vmdesc = "{\"page_size\": 256, \"devices\": []}";
	so.vmdesc_len = strlen(so.vmdesc);
	ck_assert_int_eq(ms_stream_new_mem(&s, 0, NULL), 0);
	ck_assert_int_eq(ms_save_new(&sv, reg, s, &so), 0);
	ck_assert_int_eq(ms_save_setup(sv), 0);
	ck_assert_uint_eq(ms_save_pending(sv), (uint64_t)PAGES * PAGE);
	while ((ret = ms_save_iterate(sv)) == 1) {
		rounds++;
		/* The guest dirties a page while precopy runs. */
		if (rounds == 2) {
			v->ram[5][7] ^= 0x5a;
			v->dirty[5] = true;
		}
	}
	ck_assert_int_eq(ret, 0);
	ck_assert_int_ge(rounds, PAGES / v->per_round - 1);
	ck_assert_uint_eq(ms_save_pending(sv), 0);
	/* Stop-and-copy: a last change is sent in the END section. */
	v->ram[9][0] ^= 0xff;
	v->dirty[9] = true;
	ck_assert_int_eq(ms_save_complete(sv), 0);
	ck_assert_str_eq(ms_save_errmsg(sv), "");
	ms_save_free(sv);
	ck_assert_int_eq(v->cleanups, 1);
	v->cleanups = 0;
	ms_stream_mem_view(s, &data, len);
	copy = malloc(*len);
	memcpy(copy, data, *len);
	ms_stream_close(s);
	ms_registry_free(reg);
	return copy;
}

static const struct {
	ms_profile p;
	int level;
} profiles[] = {
	{MS_PROFILE_QEMU, 0},
	{MS_PROFILE_NATIVE, 0},
	{MS_PROFILE_NATIVE, 6},
};

START_TEST(test_driver_roundtrip_blocking)
{
	struct vm src, dst;
	ms_registry *reg;
	ms_load *ld;
	ms_stream *in;
	uint8_t *data;
	size_t len;

	vm_init(&src, 1 + (uint64_t)_i);
	data = vm_save(&src, codec(profiles[_i].p, profiles[_i].level), &len);
	vm_init(&dst, 99);
	vm_clear(&dst);
	reg = vm_registry(&dst, 3, NULL);
	ck_assert_int_eq(ms_stream_new_mem_reader(&in, data, len, NULL), 0);
	ck_assert_int_eq(ms_load_new(&ld, reg, NULL), 0);
	ck_assert_msg(ms_load_run(ld, in) == 0, "%s", ms_load_errmsg(ld));
	ck_assert(ms_load_is_complete(ld));
	ck_assert(vm_equal(&src, &dst));
	ck_assert_int_eq(dst.loads[1], 1);
	ck_assert_int_eq(dst.loads[2], 1);
	ck_assert_int_ge(dst.loads[0], 7); /* START, PARTs, END */
	ms_load_free(ld);
	ms_stream_close(in);
	ms_registry_free(reg);
	free(data);
}
END_TEST

/* Fed in chunks of many sizes: the same state, and (native) each section
 * loaded exactly once. */
START_TEST(test_driver_roundtrip_fed)
{
	static const size_t sizes[] = {1, 2, 3, 7, 64, 999, 4096, 1 << 20};
	struct vm src, dst;
	uint8_t *data;
	size_t len, k;
	int sections_once = -1;

	vm_init(&src, 7);
	data = vm_save(&src, codec(profiles[_i].p, profiles[_i].level), &len);
	/* Each size twice: copied in by ms_load_feed(), then written in
	 * place (ms_load_feed_reserve/commit, reserving more than used). */
	for (k = 0; k < 2 * sizeof(sizes) / sizeof(sizes[0]); k++) {
		bool inplace = k % 2;
		ms_registry *reg;
		ms_load *ld;
		size_t off = 0;
		void *room;

		vm_init(&dst, 99);
		vm_clear(&dst);
		reg = vm_registry(&dst, 3, NULL);
		ck_assert_int_eq(ms_load_new(&ld, reg, NULL), 0);
		while (off < len) {
			size_t sz = sizes[k / 2];
			size_t n = len - off < sz ? len - off : sz;

			if (inplace) {
				ck_assert_int_eq(
					ms_load_feed_reserve(ld, n + 5, &room),
					0);
				memcpy(room, data + off, n);
			}
			ck_assert_msg((inplace ? ms_load_feed_commit(ld, n)
					       : ms_load_feed(ld, data + off,
							      n)) == 0,
				      "chunk %zu at %zu: %s", sz, off,
				      ms_load_errmsg(ld));
			off += n;
		}
		ck_assert_msg(ms_load_finish(ld) == 0, "%s",
			      ms_load_errmsg(ld));
		ck_assert(ms_load_is_complete(ld));
		ck_assert(vm_equal(&src, &dst));
		if (profiles[_i].p == MS_PROFILE_NATIVE) {
			int total = dst.loads[0] + dst.loads[1] + dst.loads[2];

			/* No section is ever retried. */
			ck_assert_int_eq(dst.loads[1], 1);
			ck_assert_int_eq(dst.loads[2], 1);
			if (sections_once < 0)
				sections_once = total;
			ck_assert_int_eq(total, sections_once);
		}
		ms_load_free(ld);
		ms_registry_free(reg);
	}
	free(data);
}
END_TEST

/* Writing a fed load in place: misuse is refused, the load goes on. */
START_TEST(test_driver_feed_in_place_misuse)
{
	struct vm src, dst;
	ms_registry *reg;
	ms_stream *in;
	ms_load *ld;
	uint8_t *data;
	size_t len;
	void *room;

	vm_init(&src, 3);
	data = vm_save(&src, codec(MS_PROFILE_NATIVE, 0), &len);
	vm_init(&dst, 4);
	vm_clear(&dst);
	reg = vm_registry(&dst, 3, NULL);

	/* A load that is run from a stream cannot be fed. */
	ck_assert_int_eq(ms_stream_new_mem_reader(&in, data, len, NULL), 0);
	ck_assert_int_eq(ms_load_new(&ld, reg, NULL), 0);
	ck_assert_int_eq(ms_load_run(ld, in), 0);
	ck_assert_int_eq(ms_load_feed_reserve(ld, 10, &room), -EINVAL);
	ck_assert_ptr_null(room);
	/* Nor finished as if it had been fed (it once leaked its reader). */
	ck_assert_int_eq(ms_load_finish(ld), -EINVAL);
	ck_assert_int_eq(ms_load_error(ld), 0);
	ms_load_free(ld);
	ms_stream_close(in);

	/* Committing more than reserved, or without a reservation, is
	 * refused and the load still completes. */
	ck_assert_int_eq(ms_load_new(&ld, reg, NULL), 0);
	ck_assert_int_eq(ms_load_feed_reserve(ld, 10, &room), 0);
	ck_assert_int_eq(ms_load_feed_commit(ld, 11), -EINVAL);
	ck_assert_int_eq(ms_load_error(ld), 0);
	ck_assert_int_eq(ms_load_feed_reserve(ld, len, &room), 0);
	memcpy(room, data, len);
	ck_assert_int_eq(ms_load_feed_commit(ld, len), 0);
	ck_assert_int_eq(ms_load_feed_commit(ld, 1), -EINVAL);
	ck_assert_int_eq(ms_load_finish(ld), 0);
	ck_assert(ms_load_is_complete(ld));
	/* After the end, no more room: refused, and the load stays good. */
	ck_assert_int_eq(ms_load_feed_reserve(ld, 1, &room), -EINVAL);
	ck_assert_int_eq(ms_load_feed_commit(ld, 4), -EINVAL);
	ck_assert_int_eq(ms_load_feed_commit(ld, 0), -EINVAL);
	ck_assert_int_eq(ms_load_error(ld), 0);
	ms_load_free(ld);
	ck_assert(vm_equal(&src, &dst));
	ms_registry_free(reg);
	free(data);
}
END_TEST

/* Loads a stream (blocking); returns the error, with the message. */
static int load_bytes(struct vm *dst, uint32_t cpu_version, const uint8_t *data,
		      size_t len, char *msg, size_t msglen, uint64_t *off)
{
	ms_registry *reg = vm_registry(dst, cpu_version, NULL);
	ms_stream *in;
	ms_load *ld;
	int ret;

	ck_assert_int_eq(ms_stream_new_mem_reader(&in, data, len, NULL), 0);
	ck_assert_int_eq(ms_load_new(&ld, reg, NULL), 0);
	ret = ms_load_run(ld, in);
	snprintf(msg, msglen, "%s", ms_load_errmsg(ld));
	if (off)
		*off = ms_load_error_offset(ld);
	ck_assert_int_eq(ret, ms_load_error(ld));
	ms_load_free(ld);
	ms_stream_close(in);
	ms_registry_free(reg);
	return ret;
}

/*
 * A load loop that breaks out of its switch, not its loop, on an error
 * parses later sections from a misaligned stream and loses the error.
 * Here the first failing load ends everything.
 */
START_TEST(test_driver_stops_at_first_error)
{
	struct vm src, dst;
	char msg[512];
	uint8_t *data;
	size_t len;
	uint64_t off;
	int ret;

	vm_init(&src, 3);
	data = vm_save(&src, codec(profiles[_i].p, 0), &len);

	/* The CPU (a FULL section before the timer) fails to load. */
	vm_init(&dst, 99);
	vm_clear(&dst);
	dst.fail_load = 1;
	ret = load_bytes(&dst, 3, data, len, msg, sizeof(msg), &off);
	ck_assert_int_eq(ret, -EIO);
	ck_assert_int_eq(dst.loads[1], 1);
	ck_assert_int_eq(dst.loads[2], 0); /* nothing after it ran */
	ck_assert_ptr_nonnull(strstr(msg, "section 1 'cpu'"));
	ck_assert_ptr_nonnull(strstr(msg, "load failed"));
	ck_assert_uint_gt(off, 0);
	ck_assert_uint_lt(off, len);

	/* RAM fails at its START: no PART, no device is touched. */
	vm_init(&dst, 99);
	vm_clear(&dst);
	dst.fail_load = 0;
	ret = load_bytes(&dst, 3, data, len, msg, sizeof(msg), NULL);
	ck_assert_int_eq(ret, -EIO);
	ck_assert_int_eq(dst.loads[0], 1);
	ck_assert_int_eq(dst.loads[1] + dst.loads[2], 0);
	ck_assert_ptr_nonnull(strstr(msg, "section 0 'ram'"));

	/* A load that reads too little is caught at its section. */
	vm_init(&dst, 99);
	vm_clear(&dst);
	dst.short_read = 2;
	ret = load_bytes(&dst, 3, data, len, msg, sizeof(msg), NULL);
	ck_assert_int_lt(ret, 0);
	ck_assert_ptr_nonnull(strstr(msg, "'timer'"));
	if (profiles[_i].p == MS_PROFILE_QEMU)
		ck_assert_ptr_nonnull(strstr(msg, "footer for section 2"));
	else
		ck_assert_ptr_nonnull(strstr(msg, "unread"));
	free(data);
}
END_TEST

START_TEST(test_driver_unknown_section_and_versions)
{
	struct vm src, dst;
	ms_registry *reg;
	ms_stream *in;
	ms_load *ld;
	char msg[512];
	uint8_t *data;
	size_t len;

	vm_init(&src, 4);
	data = vm_save(&src, codec(profiles[_i].p, 0), &len);

	/* A destination without a "timer" handler. */
	vm_init(&dst, 99);
	ck_assert_int_eq(ms_registry_new(&reg, NULL), 0);
	ms_registry_add(reg, "ram", 0, 4, 4, &ram_ops, &dst, NULL);
	ms_registry_add(reg, "cpu", 0, 3, 2, &cpu_ops, &dst, NULL);
	ms_stream_new_mem_reader(&in, data, len, NULL);
	ms_load_new(&ld, reg, NULL);
	ck_assert_int_eq(ms_load_run(ld, in), -ENOENT);
	ck_assert_ptr_nonnull(strstr(ms_load_errmsg(ld), "'timer'"));
	ck_assert_ptr_nonnull(strstr(ms_load_errmsg(ld), "unknown section"));
	ms_load_free(ld);
	ms_stream_close(in);
	ms_registry_free(reg);

	/* Source cpu version 3; an older destination knows only 2. */
	vm_init(&dst, 99);
	ck_assert_int_eq(load_bytes(&dst, 2, data, len, msg, sizeof(msg), NULL),
			 -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(msg, "'cpu'"));
	ck_assert_ptr_nonnull(strstr(msg, "version 3 is newer than this "
					  "build's 2"));
	free(data);

	/* A stream saved with cpu version 1, below the minimum of 2. */
	{
		ms_registry *r2;
		ms_save *sv;
		ms_stream *s;
		const uint8_t *d;
		size_t l;
		ms_save_opts so;
		ms_codec_opts co = codec(profiles[_i].p, 0);

		memset(&so, 0, sizeof(so));
		so.version = MS_SAVE_OPTS_VERSION;
		so.codec = &co;
		vm_init(&src, 4);
		ms_registry_new(&r2, NULL);
		ms_registry_add(r2, "cpu", 0, 1, 1, &cpu_ops, &src, NULL);
		ms_stream_new_mem(&s, 0, NULL);
		ms_save_new(&sv, r2, s, &so);
		ck_assert_int_eq(ms_save_setup(sv), 0);
		ck_assert_int_eq(ms_save_complete(sv), 0);
		ms_save_free(sv);
		ms_stream_mem_view(s, &d, &l);
		vm_init(&dst, 99);
		ck_assert_int_eq(
			load_bytes(&dst, 3, d, l, msg, sizeof(msg), NULL),
			-ENOTSUP);
		ck_assert_ptr_nonnull(strstr(msg, "version 1 is older"));
		ms_stream_close(s);
		ms_registry_free(r2);
	}
}
END_TEST

/* Cut at every offset: a clean error, blocking and fed. */
START_TEST(test_driver_truncation_every_offset)
{
	struct vm src, dst;
	uint8_t *data;
	size_t len, cut, eof_end;

	vm_init(&src, 5);
	src.per_round = 32;
	data = vm_save(&src, codec(profiles[_i].p, profiles[_i].level), &len);
	/* vm_save's trailer: u8 0x06, be32 length, the JSON. */
	eof_end = len - 5 - strlen("{\"page_size\": 256, \"devices\": []}");
	for (cut = 0; cut < len; cut++) {
		ms_registry *reg;
		ms_stream *in;
		ms_load *ld;
		int ret;

		vm_init(&dst, 99);
		reg = vm_registry(&dst, 3, NULL);
		ms_stream_new_mem_reader(&in, data, cut, NULL);
		ms_load_new(&ld, reg, NULL);
		ret = ms_load_run(ld, in);
		/* QEMU's trailer is optional: a cut right after EOF is a
		 * whole stream. */
		if (ret == 0 && profiles[_i].p == MS_PROFILE_QEMU &&
		    cut == eof_end) {
			ms_load_free(ld);
			ms_stream_close(in);
			ms_registry_free(reg);
			continue;
		}
		/* One offset prefix: a stream error inside the message is
		 * quoted without its own. */
		if (ret == 0 || ms_load_error_offset(ld) > cut ||
		    strncmp(ms_load_errmsg(ld), "offset 0x", 9) ||
		    strstr(ms_load_errmsg(ld) + 9, ": offset 0x"))
			ck_abort_msg(
				"cut at %zu: %d '%s' at %llu", cut, ret,
				ms_load_errmsg(ld),
				(unsigned long long)ms_load_error_offset(ld));
		ms_load_free(ld);
		ms_stream_close(in);

		/* Fed in two pieces, then finished. */
		ms_load_new(&ld, reg, NULL);
		ret = ms_load_feed(ld, data, cut / 2);
		if (!ret)
			ret = ms_load_feed(ld, data + cut / 2, cut - cut / 2);
		if (!ret)
			ret = ms_load_finish(ld);
		if (ret == 0 || ms_load_error_offset(ld) > cut ||
		    strstr(ms_load_errmsg(ld), ": offset 0x"))
			ck_abort_msg("fed, cut at %zu: %d '%s'", cut, ret,
				     ms_load_errmsg(ld));
		ms_load_free(ld);
		ms_registry_free(reg);
	}
	free(data);
}
END_TEST

/* A save abandoned midway cleans up and the registry is reusable. */
START_TEST(test_driver_cancel_and_reuse)
{
	struct vm src, dst;
	ms_registry *reg;
	ms_stream *s, *in;
	ms_save *sv;
	ms_load *ld;
	const uint8_t *d;
	size_t l;

	vm_init(&src, 6);
	reg = vm_registry(&src, 3, NULL);
	ms_stream_new_mem(&s, 0, NULL);
	ck_assert_int_eq(ms_save_new(&sv, reg, s, NULL), 0);
	ck_assert_int_eq(ms_save_setup(sv), 0);
	ck_assert_int_eq(ms_save_iterate(sv), 1);
	ms_save_free(sv); /* cancelled */
	ck_assert_int_eq(src.cleanups, 1);
	ms_stream_close(s);

	/* A second attempt from scratch succeeds. */
	vm_init(&src, 6);
	ms_stream_new_mem(&s, 0, NULL);
	ck_assert_int_eq(ms_save_new(&sv, reg, s, NULL), 0);
	ck_assert_int_eq(ms_save_setup(sv), 0);
	while (ms_save_iterate(sv) == 1)
		;
	ck_assert_int_eq(ms_save_complete(sv), 0);
	ms_save_free(sv);
	ms_stream_mem_view(s, &d, &l);

	/* A load abandoned midway, then a complete one. */
	vm_init(&dst, 99);
	vm_clear(&dst);
	{
		ms_registry *r2 = vm_registry(&dst, 3, NULL);

		ms_load_new(&ld, r2, NULL);
		ck_assert_int_eq(ms_load_feed(ld, d, l / 2), 0);
		ms_load_free(ld);
		ms_stream_new_mem_reader(&in, d, l, NULL);
		ms_load_new(&ld, r2, NULL);
		ck_assert_int_eq(ms_load_run(ld, in), 0);
		ck_assert(vm_equal(&src, &dst));
		ms_load_free(ld);
		ms_stream_close(in);
		ms_registry_free(r2);
	}
	ms_stream_close(s);
	ms_registry_free(reg);
}
END_TEST

START_TEST(test_driver_registry_arguments)
{
	static const ms_handler_ops no_load = {
		.version = MS_HANDLER_OPS_VERSION,
		.save_state = timer_save,
	};
	static const ms_handler_ops no_save = {
		.version = MS_HANDLER_OPS_VERSION,
		.load = timer_load,
	};
	char long_name[300];
	ms_registry *reg;
	ms_save *sv = NULL;
	struct vm v;

	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	ck_assert_int_eq(ms_registry_new(&reg, NULL), 0);
	static const ms_handler_ops v1_ops = {
		.version = 1,
		.save_state = timer_save,
		.load = timer_load,
	};
	uint32_t id = 7;

	ck_assert_int_eq(
		ms_registry_add(reg, "t", 0, 1, 1, &timer_ops, &v, &id), 0);
	ck_assert_uint_eq(id, 0);
	ck_assert_str_eq(ms_registry_errmsg(reg), "");
	ck_assert_int_eq(
		ms_registry_add(reg, "t", 0, 1, 1, &timer_ops, &v, &id),
		-EEXIST);
	ck_assert_uint_eq(id, 0); /* untouched on failure */
	ck_assert_str_eq(
		ms_registry_errmsg(reg),
		"ms_registry_add: 't' instance 0 is already registered");
	ck_assert_int_eq(
		ms_registry_add(reg, "t", 1, 1, 1, &timer_ops, &v, &id), 0);
	ck_assert_uint_eq(id, 1);
	ck_assert_int_eq(
		ms_registry_add(reg, "u", 0, 1, 2, &timer_ops, &v, NULL),
		-EINVAL);
	ck_assert_str_eq(ms_registry_errmsg(reg),
			 "ms_registry_add: 'u': min_version_id 2 is above "
			 "version_id 1");
	/* Handler ops of version 1 (opaque last) are refused, and say so. */
	ck_assert_int_eq(ms_registry_add(reg, "w", 0, 1, 1, &v1_ops, &v, NULL),
			 -EINVAL);
	ck_assert_ptr_nonnull(
		strstr(ms_registry_errmsg(reg),
		       "ops->version is not MS_HANDLER_OPS_VERSION"));
	ck_assert_int_eq(
		ms_registry_add(reg, "", 0, 1, 1, &timer_ops, &v, NULL),
		-EINVAL);
	ck_assert_int_eq(
		ms_registry_add(reg, long_name, 0, 1, 1, &timer_ops, &v, NULL),
		-EINVAL);
	ck_assert_int_eq(ms_registry_add(reg, "v", 0, 1, 1, &no_load, &v, NULL),
			 -EINVAL);
	ck_assert_int_eq(ms_registry_add(reg, "v", 0, 1, 1, &no_save, &v, NULL),
			 -EINVAL);
	ck_assert_str_eq(ms_registry_errmsg(reg),
			 "ms_registry_add: 'v': neither ops->save_iterate nor "
			 "ops->save_state is set");
	ck_assert_int_eq(ms_save_new(&sv, reg, NULL, NULL), -EINVAL);
	ck_assert_ptr_null(sv);
	ck_assert_str_eq(ms_registry_errmsg(reg),
			 "ms_save_new: no output stream given");
	ms_registry_free(reg);
	ms_registry_free(NULL);
	ms_save_free(NULL);
	ms_load_free(NULL);
}
END_TEST

/* Allocation failure at every N, in a save and a load. */
START_TEST(test_driver_alloc_failure)
{
	struct vm src, dst;
	uint8_t *data;
	size_t len;
	long n;

	vm_init(&src, 8);
	data = vm_save(&src, codec(profiles[_i].p, profiles[_i].level), &len);
	for (n = 1;; n++) {
		struct ms_test_alloc ta;
		ms_stream_opts so = {MS_STREAM_OPTS_VERSION, NULL, 0, 0, 0};
		ms_load_opts lo;
		ms_codec_opts co;
		ms_registry *reg = NULL;
		ms_stream *in;
		ms_load *ld;
		int ret;

		ms_test_alloc_init(&ta, n);
		so.allocator = &ta.a;
		memset(&lo, 0, sizeof(lo));
		lo.version = MS_LOAD_OPTS_VERSION;
		memset(&co, 0, sizeof(co));
		co.version = MS_CODEC_OPTS_VERSION;
		co.allocator = &ta.a;
		lo.codec = &co;
		vm_init(&dst, 99);
		ret = ms_registry_new(&reg, &ta.a);
		if (!ret) {
			ret = ms_registry_add(reg, "ram", 0, 4, 4, &ram_ops,
					      &dst, NULL);
			if (!ret)
				ret = ms_registry_add(reg, "cpu", 0, 3, 2,
						      &cpu_ops, &dst, NULL);
			if (!ret)
				ret = ms_registry_add(reg, "timer", 0, 1, 1,
						      &timer_ops, &dst, NULL);
		}
		if (!ret)
			ret = ms_stream_new_mem_reader(&in, data, len, &so);
		if (!ret) {
			ret = ms_load_new(&ld, reg, &lo);
			if (!ret) {
				ret = ms_load_run(ld, in);
				ms_load_free(ld);
			}
			ms_stream_close(in);
		}
		if (reg)
			ms_registry_free(reg);
		ck_assert_msg(ret == 0 || ret == -ENOMEM, "allocation %ld: %d",
			      n, ret);
		ck_assert_msg(ta.live == 0, "allocation %ld: %ld leaked", n,
			      ta.live);
		if (ta.calls < n) {
			ck_assert_int_eq(ret, 0);
			ck_assert(vm_equal(&src, &dst));
			break;
		}
	}
	free(data);
}
END_TEST

/* "Nothing for now" from save_iterate ends when the guest dirties more. */
START_TEST(test_driver_iterate_resumes_when_dirty)
{
	struct vm v;
	ms_registry *reg;
	ms_stream *s;
	ms_save *sv;
	int ret;

	vm_init(&v, 11);
	v.per_round = PAGES;
	reg = vm_registry(&v, 3, NULL);
	ms_stream_new_mem(&s, 0, NULL);
	ck_assert_int_eq(ms_save_new(&sv, reg, s, NULL), 0);
	ck_assert_int_eq(ms_save_setup(sv), 0);
	ck_assert_int_eq(ms_save_iterate(sv), 0); /* all sent */
	ck_assert_uint_eq(ms_save_pending(sv), 0);
	v.ram[3][0] ^= 1;
	v.dirty[3] = true;
	ck_assert_uint_eq(ms_save_pending(sv), PAGE);
	ret = ms_save_iterate(sv);
	ck_assert_int_eq(ret, 0);
	/* The handler ran again and sent the page. */
	ck_assert(!v.dirty[3]);
	ck_assert_uint_eq(ms_save_pending(sv), 0);
	ck_assert_int_eq(ms_save_complete(sv), 0);
	ms_save_free(sv);
	ms_stream_close(s);
	ms_registry_free(reg);
}
END_TEST

/* A save callback that fails after its stream failed reports the stream's
 * error, the first one, not its own return value. */
static int fails_after_put(void *opaque, ms_stream *s)
{
	uint8_t big[4096] = {0};

	(void)opaque;
	ms_put_buffer(s, big, sizeof(big));
	return -EIO;
}

START_TEST(test_driver_save_reports_stream_error)
{
	static const ms_handler_ops ops = {
		.version = MS_HANDLER_OPS_VERSION,
		.save_state = fails_after_put,
		.load = timer_load,
	};
	ms_save_opts so;
	ms_codec_opts co = codec(profiles[_i].p, 0);
	ms_registry *reg;
	ms_stream *s;
	ms_save *sv;
	char want[32];

	memset(&so, 0, sizeof(so));
	so.version = MS_SAVE_OPTS_VERSION;
	so.codec = &co;
	ck_assert_int_eq(ms_registry_new(&reg, NULL), 0);
	ck_assert_int_eq(ms_registry_add(reg, "dev", 0, 1, 1, &ops, NULL, NULL),
			 0);
	/* Room for the header and the section header, not the payload. */
	ck_assert_int_eq(ms_stream_new_mem(&s, 64, NULL), 0);
	ck_assert_int_eq(ms_save_new(&sv, reg, s, &so), 0);
	ck_assert_int_eq(ms_save_setup(sv), 0);
	ck_assert_int_eq(ms_save_error(sv), 0);
	ck_assert_uint_eq(ms_save_error_offset(sv), 0);
	ck_assert_int_eq(ms_save_complete(sv), -ENOSPC);
	ck_assert_ptr_nonnull(strstr(ms_save_errmsg(sv), "section 0 'dev'"));
	/* The error, and where the output failed, also as numbers. */
	ck_assert_int_eq(ms_save_error(sv), -ENOSPC);
	ck_assert_uint_eq(ms_save_error_offset(sv), ms_stream_error_offset(s));
	snprintf(want, sizeof(want), "offset 0x%llx: ",
		 (unsigned long long)ms_save_error_offset(sv));
	ck_assert_ptr_eq(strstr(ms_save_errmsg(sv), want), ms_save_errmsg(sv));
	ms_save_free(sv);
	ms_stream_close(s);
	ms_registry_free(reg);
}
END_TEST

/* ms_save_setup() flushes: the destination has the START sections before
 * the first round (a handler may set up there), and a flush that fails
 * fails the setup with the stream's message, its offset named once. */
START_TEST(test_driver_setup_flushes)
{
	ms_codec_opts co = codec(profiles[_i].p, profiles[_i].level);
	ms_save_opts so;
	struct vm v;
	ms_registry *reg;
	ms_stream *s;
	ms_save *sv;
	uint8_t buf[4096];
	ssize_t n;
	int fds[2];
	const char *msg;

	memset(&so, 0, sizeof(so));
	so.version = MS_SAVE_OPTS_VERSION;
	so.codec = &co;
	vm_init(&v, 7);
	reg = vm_registry(&v, 3, NULL);
	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(
		ms_stream_new_fd(&s, fds[1], MS_STREAM_WRITER, 0, NULL), 0);
	ck_assert_int_eq(ms_save_new(&sv, reg, s, &so), 0);
	ck_assert_int_eq(ms_save_setup(sv), 0);
	n = read(fds[0], buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	ck_assert_uint_eq((uint64_t)n, ms_stream_tell(s));
	ms_save_free(sv);
	ms_stream_close(s);
	close(fds[0]);
	close(fds[1]);

	/* Nobody reads: the flush fails and so does the setup. */
	ck_assert_int_eq(pipe(fds), 0);
	close(fds[0]);
	ck_assert_int_eq(
		ms_stream_new_fd(&s, fds[1], MS_STREAM_WRITER, 0, NULL), 0);
	ck_assert_int_eq(ms_save_new(&sv, reg, s, &so), 0);
	ck_assert_int_eq(ms_save_setup(sv), -EPIPE);
	msg = ms_save_errmsg(sv);
	ck_assert_ptr_eq(strstr(msg, "offset 0x"), msg);
	ck_assert_ptr_null(strstr(msg + 1, "offset 0x"));
	ck_assert_int_eq(ms_save_error(sv), -EPIPE);
	ms_save_free(sv);
	ms_stream_close(s);
	close(fds[1]);
	ms_registry_free(reg);
}
END_TEST

/*
 * Hostile fed loads: costs counted (not timed) and the held-bytes limit.
 */

/* A device whose state is be32 length, then that many bytes of a pattern:
 * by default "7e 00 00 00 00", its own footer (section id 0) over and over. */
struct blob {
	uint32_t len;
	const uint8_t *pattern;
	size_t plen;
	uint32_t loaded;
};

static const uint8_t fake_footer[5] = {0x7e, 0, 0, 0, 0};

static int blob_save(void *opaque, ms_stream *s)
{
	const struct blob *b = opaque;
	uint32_t i;

	ms_put_be32(s, b->len);
	for (i = 0; i < b->len; i++)
		ms_put_u8(s, b->pattern[i % b->plen]);
	return ms_stream_error(s);
}

static int blob_load(void *opaque, ms_stream *s, uint32_t version, uint8_t type)
{
	struct blob *b = opaque;
	uint8_t buf[4096];
	uint32_t len, i, k, n;

	(void)version;
	(void)type;
	b->loaded = 0;
	if (ms_get_be32(s, &len))
		return ms_stream_error(s);
	for (i = 0; i < len; i += n) {
		n = len - i < sizeof(buf) ? len - i : (uint32_t)sizeof(buf);
		if (ms_get_buffer(s, buf, n))
			return ms_stream_error(s);
		for (k = 0; k < n; k++)
			if (buf[k] != b->pattern[(i + k) % b->plen])
				return -EINVAL;
	}
	b->loaded = len;
	return 0;
}

static const ms_handler_ops blob_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_state = blob_save,
	.load = blob_load,
};

/* A stream of one blob section of @len bytes. */
static uint8_t *blob_stream(ms_codec_opts c, uint32_t len, size_t *out_len)
{
	struct blob b = {len, fake_footer, sizeof(fake_footer), 0};
	const uint8_t *data;
	ms_registry *reg;
	ms_save_opts so;
	ms_stream *s;
	ms_save *sv;
	uint8_t *copy;

	memset(&so, 0, sizeof(so));
	so.version = MS_SAVE_OPTS_VERSION;
	so.codec = &c;
	ck_assert_int_eq(ms_registry_new(&reg, NULL), 0);
	ck_assert_int_eq(
		ms_registry_add(reg, "blob", 0, 1, 1, &blob_ops, &b, NULL), 0);
	ck_assert_int_eq(ms_stream_new_mem(&s, 0, NULL), 0);
	ck_assert_int_eq(ms_save_new(&sv, reg, s, &so), 0);
	ck_assert_int_eq(ms_save_setup(sv), 0);
	ck_assert_int_eq(ms_save_complete(sv), 0);
	ms_save_free(sv);
	ms_stream_mem_view(s, &data, out_len);
	copy = malloc(*out_len);
	memcpy(copy, data, *out_len);
	ms_stream_close(s);
	ms_registry_free(reg);
	return copy;
}

/* Feed @data in @chunk bytes (by copy, or in place when @inplace) into a
 * load of one blob with @lo; returns what the load ended with. */
static int blob_feed(const uint8_t *data, size_t len, size_t chunk,
		     bool inplace, const ms_load_opts *lo, struct blob *b,
		     ms_load **out)
{
	ms_registry *reg;
	ms_load *ld;
	size_t off, n;
	void *room;
	int ret = 0;

	ck_assert_int_eq(ms_registry_new(&reg, NULL), 0);
	ck_assert_int_eq(
		ms_registry_add(reg, "blob", 0, 1, 1, &blob_ops, b, NULL), 0);
	ck_assert_int_eq(ms_load_new(&ld, reg, lo), 0);
	for (off = 0; off < len && !ret; off += n) {
		n = len - off < chunk ? len - off : chunk;
		if (inplace) {
			ret = ms_load_feed_reserve(ld, n, &room);
			if (!ret) {
				memcpy(room, data + off, n);
				ret = ms_load_feed_commit(ld, n);
			}
		} else {
			ret = ms_load_feed(ld, data + off, n);
		}
	}
	if (!ret)
		ret = ms_load_finish(ld);
	*out = ld;
	/* The registry outlives the load only as long as the caller looks. */
	ms_registry_free(reg);
	return ret;
}

/* The tries of a fed load of @len bytes: a few dozen, reading O(@len). */
static void check_tries(const ms_load *ld, size_t len)
{
	uint64_t attempts, bytes;

	ms__load_counts(ld, &attempts, &bytes);
	ck_assert_msg(attempts <= 40, "%llu tries",
		      (unsigned long long)attempts);
	ck_assert_msg(bytes <= 3 * (uint64_t)len, "%llu bytes read for %zu",
		      (unsigned long long)bytes, len);
}

/*
 * A QEMU section full of its own footer's bytes, fed in small chunks: every
 * one of them once made the handler run again from the section's start.
 * The tries are counted; with and without footers.
 */
START_TEST(test_driver_fed_fake_footers_linear)
{
	ms_codec_opts c = codec(MS_PROFILE_QEMU, 0);
	const uint32_t size = 256u << 10;
	struct blob b = {0, fake_footer, sizeof(fake_footer), 0};
	uint8_t *data;
	ms_load *ld;
	size_t len;
	int ret;

	ms_load_opts lo;

	c.no_footers = _i;
	data = blob_stream(c, size, &len);
	memset(&lo, 0, sizeof(lo));
	lo.version = MS_LOAD_OPTS_VERSION;
	lo.codec = &c;
	ret = blob_feed(data, len, 256, false, &lo, &b, &ld);
	ck_assert_msg(ret == 0, "%s", ms_load_errmsg(ld));
	ck_assert_uint_eq(b.loaded, size);
	/* Doubling from 256 bytes to 256 KiB: about 11 runs of the handler,
	 * reading less than twice the section; the records around it add a
	 * few tries of a few bytes. */
	check_tries(ld, len);
	ms_load_free(ld);
	free(data);
}
END_TEST

/* The same for the reader's own retries: a configuration of 64K
 * capabilities (about 128 KiB) fed 16 bytes at a time. */
START_TEST(test_driver_fed_long_configuration_linear)
{
	static const char sub[] = "configuration/capabilities";
	ms_codec_opts c = codec(MS_PROFILE_QEMU, 0);
	struct blob b = {0, fake_footer, sizeof(fake_footer), 0};
	const uint8_t *d;
	uint8_t *extra, *p;
	ms_writer *w;
	ms_stream *s;
	ms_load *ld;
	size_t n, i, caps = 65536;

	/* u8 0x05, cstr name, be32 version, be32 count, then "a" each. */
	n = 1 + 1 + strlen(sub) + 4 + 4 + caps * 2;
	extra = p = malloc(n);
	*p++ = MS_REC_SUBSECTION;
	*p++ = (uint8_t)strlen(sub);
	memcpy(p, sub, strlen(sub));
	p += strlen(sub);
	memcpy(p, "\0\0\0\1", 4);
	p += 4;
	*p++ = (uint8_t)(caps >> 24);
	*p++ = (uint8_t)(caps >> 16);
	*p++ = (uint8_t)(caps >> 8);
	*p++ = (uint8_t)caps;
	for (i = 0; i < caps; i++) {
		*p++ = 1;
		*p++ = 'a';
	}
	ck_assert_int_eq(ms_stream_new_mem(&s, 0, NULL), 0);
	ck_assert_int_eq(ms_writer_new(&w, s, &c), 0);
	ck_assert_int_eq(ms_writer_header(w), 0);
	ck_assert_int_eq(ms_writer_configuration(w, "pc", extra, n), 0);
	ck_assert_int_eq(ms_writer_eof(w), 0);
	ck_assert_int_eq(ms_writer_finish(w), 0);
	ms_writer_free(w);
	ck_assert_int_eq(ms_stream_mem_view(s, &d, &n), 0);
	ck_assert_msg(blob_feed(d, n, 16, _i, NULL, &b, &ld) == 0, "%s",
		      ms_load_errmsg(ld));
	check_tries(ld, n);
	ms_load_free(ld);
	ms_stream_close(s);
	free(extra);
}
END_TEST

/*
 * The held-bytes limit, both profiles: a 256 KiB section over a limit of
 * 64 KiB is refused with the option's name, fed in chunks, whole (taken in
 * slices) or in place; under a limit of 512 KiB it loads, and the buffer
 * stays within twice the limit.
 */
START_TEST(test_driver_fed_limit)
{
	ms_codec_opts c = codec(_i ? MS_PROFILE_NATIVE : MS_PROFILE_QEMU, 0);
	static const size_t chunks[] = {4096, 1u << 30};
	const uint32_t size = 256u << 10;
	struct blob b = {0, fake_footer, sizeof(fake_footer), 0};
	struct ms_test_maxalloc ma;
	ms_registry *reg;
	ms_load_opts lo;
	uint8_t *data;
	ms_load *ld;
	size_t len, k;
	int ret;

	data = blob_stream(c, size, &len);
	memset(&lo, 0, sizeof(lo));
	lo.version = MS_LOAD_OPTS_VERSION;
	lo.max_fed_bytes = 64u << 10;
	for (k = 0; k < 3; k++) {
		ret = blob_feed(data, len, chunks[k % 2], k == 2, &lo, &b, &ld);
		ck_assert_msg(ret == -EFBIG, "%d: %s", ret, ms_load_errmsg(ld));
		ck_assert_ptr_nonnull(strstr(ms_load_errmsg(ld),
					     "ms_load_opts.max_fed_bytes"));
		ck_assert_ptr_nonnull(strstr(ms_load_errmsg(ld), "65536"));
		ck_assert_uint_eq(b.loaded, 0);
		ms_load_free(ld);
	}
	/* Under the limit: loaded, fed whole and in chunks. */
	ms_test_maxalloc_init(&ma);
	ck_assert_int_eq(ms_registry_new(&reg, &ma.a), 0);
	ck_assert_int_eq(
		ms_registry_add(reg, "blob", 0, 1, 1, &blob_ops, &b, NULL), 0);
	lo.max_fed_bytes = 512u << 10;
	memset(&c, 0, sizeof(c));
	c.version = MS_CODEC_OPTS_VERSION;
	c.allocator = &ma.a;
	lo.codec = &c;
	ck_assert_int_eq(ms_load_new(&ld, reg, &lo), 0);
	ck_assert_msg(ms_load_feed(ld, data, len) == 0, "%s",
		      ms_load_errmsg(ld));
	ck_assert_msg(ms_load_finish(ld) == 0, "%s", ms_load_errmsg(ld));
	ck_assert_uint_eq(b.loaded, size);
	ck_assert_msg(ma.largest <= 2 * lo.max_fed_bytes, "%zu bytes",
		      ma.largest);
	ms_load_free(ld);
	ms_registry_free(reg);
	ck_assert_int_eq(ma.live, 0);
	for (k = 0; k < 2; k++) {
		ret = blob_feed(data, len, 4096, k, &lo, &b, &ld);
		ck_assert_msg(ret == 0, "%s", ms_load_errmsg(ld));
		ck_assert_uint_eq(b.loaded, size);
		ms_load_free(ld);
	}
	free(data);
}
END_TEST

/* A byte fed after a stream that is complete and finished: refused where
 * it lies, the message starting with that offset like every load error. */
START_TEST(test_driver_fed_data_after_end)
{
	ms_codec_opts c = codec(_i ? MS_PROFILE_NATIVE : MS_PROFILE_QEMU, 0);
	struct blob b = {0, fake_footer, sizeof(fake_footer), 0};
	ms_registry *reg;
	uint8_t *data;
	ms_load *ld;
	size_t len;
	char want[64];

	data = blob_stream(c, 100, &len);
	ck_assert_int_eq(ms_registry_new(&reg, NULL), 0);
	ck_assert_int_eq(
		ms_registry_add(reg, "blob", 0, 1, 1, &blob_ops, &b, NULL), 0);
	ck_assert_int_eq(ms_load_new(&ld, reg, NULL), 0);
	ck_assert_int_eq(ms_load_feed(ld, data, len), 0);
	ck_assert_int_eq(ms_load_finish(ld), 0);
	ck_assert(ms_load_is_complete(ld));
	ck_assert_int_eq(ms_load_feed(ld, "x", 1), -EBADMSG);
	ck_assert_uint_eq(ms_load_error_offset(ld), len);
	snprintf(want, sizeof(want), "offset 0x%zx: data after the end", len);
	ck_assert_msg(!strncmp(ms_load_errmsg(ld), want, strlen(want)), "'%s'",
		      ms_load_errmsg(ld));
	ms_load_free(ld);
	ms_registry_free(reg);
	free(data);
}
END_TEST

/* Option structures of older versions are refused with a message (there
 * are no compatibility shims before 1.0), as are codec settings whose
 * version was forgotten; NULL codec settings are the defaults. */
START_TEST(test_driver_opts_versions)
{
	ms_codec_opts forgot;
	ms_load_opts lo;
	ms_save_opts so;
	ms_registry *reg;
	ms_stream *s;
	ms_load *ld = NULL;
	ms_save *sv = NULL;
	unsigned v;

	ck_assert_int_eq(ms_registry_new(&reg, NULL), 0);
	ck_assert_int_eq(ms_stream_new_mem(&s, 0, NULL), 0);
	for (v = 0; v <= MS_LOAD_OPTS_VERSION + 1; v++) {
		if (v == MS_LOAD_OPTS_VERSION)
			continue;
		memset(&lo, 0, sizeof(lo));
		lo.version = v;
		ck_assert_int_eq(ms_load_new(&ld, reg, &lo), -EINVAL);
		ck_assert_ptr_null(ld);
		ck_assert_ptr_nonnull(strstr(ms_registry_errmsg(reg),
					     "ms_load_new: opts->version is"));
	}
	memset(&so, 0, sizeof(so));
	so.version = 1;
	ck_assert_int_eq(ms_save_new(&sv, reg, s, &so), -EINVAL);
	ck_assert_ptr_null(sv);
	ck_assert_str_eq(ms_registry_errmsg(reg),
			 "ms_save_new: opts->version is 1, expected "
			 "MS_SAVE_OPTS_VERSION (2)");
	/* Settings under a zero version are not silently dropped. */
	memset(&forgot, 0, sizeof(forgot));
	forgot.profile = MS_PROFILE_QEMU;
	so.version = MS_SAVE_OPTS_VERSION;
	so.codec = &forgot;
	ck_assert_int_eq(ms_save_new(&sv, reg, s, &so), -EINVAL);
	ck_assert_str_eq(ms_registry_errmsg(reg),
			 "ms_save_new: opts: codec->version is 0, expected "
			 "MS_CODEC_OPTS_VERSION (1)");
	memset(&lo, 0, sizeof(lo));
	lo.version = MS_LOAD_OPTS_VERSION;
	lo.codec = &forgot;
	ck_assert_int_eq(ms_load_new(&ld, reg, &lo), -EINVAL);
	ck_assert_ptr_nonnull(
		strstr(ms_registry_errmsg(reg), "codec->version is 0"));
	ms_stream_close(s);
	ms_registry_free(reg);
}
END_TEST

/* The save's default is the one of every writer: native, with CRC. */
START_TEST(test_driver_save_default_native)
{
	struct vm v;
	ms_registry *reg;
	ms_stream *s;
	ms_save *sv;
	const uint8_t *d;
	size_t n;

	vm_init(&v, 2);
	reg = vm_registry(&v, 3, NULL);
	ck_assert_int_eq(ms_stream_new_mem(&s, 0, NULL), 0);
	ck_assert_int_eq(ms_save_new(&sv, reg, s, NULL), 0);
	ck_assert_int_eq(ms_save_setup(sv), 0);
	ck_assert_int_eq(ms_save_complete(sv), 0);
	ms_save_free(sv);
	ms_stream_mem_view(s, &d, &n);
	ck_assert_uint_ge(n, 16);
	ck_assert_mem_eq(d, "\x89MSN\r\n\x1a\n", 8); /* docs/FORMAT.md */
	/* The header's feature bits (bytes 10-11) have CRC-32 on. */
	ck_assert_uint_ne(d[11] & 1, 0);
	ms_stream_close(s);
	ms_registry_free(reg);
}
END_TEST

/* Calls out of order return -EINVAL, leave the object as it was, and say
 * what was expected. */
START_TEST(test_driver_misuse_messages)
{
	struct vm v;
	ms_registry *reg;
	ms_stream *s;
	ms_save *sv;
	ms_load *ld;
	ms_stream *in;
	const uint8_t *d;
	size_t n;
	void *room;

	vm_init(&v, 2);
	reg = vm_registry(&v, 3, NULL);
	ck_assert_int_eq(ms_stream_new_mem(&s, 0, NULL), 0);
	ck_assert_int_eq(ms_save_new(&sv, reg, s, NULL), 0);
	ck_assert_str_eq(ms_save_errmsg(sv), "");
	ck_assert_int_eq(ms_save_complete(sv), -EINVAL);
	ck_assert_str_eq(ms_save_errmsg(sv),
			 "ms_save_complete: called before ms_save_setup");
	ck_assert_int_eq(ms_save_error(sv), 0);
	ck_assert_int_eq(ms_save_iterate(sv), -EINVAL);
	ck_assert_str_eq(ms_save_errmsg(sv),
			 "ms_save_iterate: called before ms_save_setup");
	ck_assert_int_eq(ms_save_complete_step(sv), -EINVAL);
	ck_assert_str_eq(ms_save_errmsg(sv),
			 "ms_save_complete_step: called before ms_save_setup");
	ck_assert_int_eq(ms_save_setup(sv), 0);
	ck_assert_int_eq(ms_save_setup(sv), -EINVAL);
	ck_assert_str_eq(ms_save_errmsg(sv), "ms_save_setup: called twice");
	ck_assert_int_eq(ms_save_complete_step(sv), 1);
	ck_assert_int_eq(ms_save_complete(sv), -EINVAL);
	ck_assert_str_eq(ms_save_errmsg(sv), "ms_save_complete: called after "
					     "ms_save_complete_step");
	ck_assert_int_eq(ms_save_iterate(sv), -EINVAL);
	ck_assert_ptr_nonnull(
		strstr(ms_save_errmsg(sv), "called after stop-and-copy began"));
	while (ms_save_complete_step(sv) == 1)
		;
	ck_assert_int_eq(ms_save_complete_step(sv), -EINVAL);
	ck_assert_str_eq(ms_save_errmsg(sv),
			 "ms_save_complete_step: the save is already complete");
	ck_assert_int_eq(ms_save_error(sv), 0);
	ms_save_free(sv);

	/* Loads: a run load is not fed; a commit needs a reservation. */
	ck_assert_int_eq(ms_load_new(&ld, reg, NULL), 0);
	ck_assert_int_eq(ms_load_feed_commit(ld, 4), -EINVAL);
	ck_assert_ptr_nonnull(strstr(ms_load_errmsg(ld),
				     "ms_load_feed_commit: 4 bytes, but no "
				     "room of that size is reserved"));
	ck_assert_int_eq(ms_load_feed(ld, NULL, 3), -EINVAL);
	ck_assert_str_eq(ms_load_errmsg(ld),
			 "ms_load_feed: buf is NULL, len 3");
	ck_assert_int_eq(ms_load_error(ld), 0);
	ms_load_free(ld);
	ms_stream_mem_view(s, &d, &n);
	ck_assert_int_eq(ms_stream_new_mem_reader(&in, d, n, NULL), 0);
	ck_assert_int_eq(ms_load_new(&ld, reg, NULL), 0);
	ck_assert_msg(ms_load_run(ld, in) == 0, "%s", ms_load_errmsg(ld));
	ck_assert_int_eq(ms_load_feed_reserve(ld, 1, &room), -EINVAL);
	ck_assert_str_eq(ms_load_errmsg(ld),
			 "ms_load_feed_reserve: the load was run with "
			 "ms_load_run, not fed");
	ck_assert_int_eq(ms_load_run(ld, in), -EINVAL);
	ck_assert_str_eq(ms_load_errmsg(ld),
			 "ms_load_run: the load was already run (ms_load_run)");
	ck_assert_int_eq(ms_load_error(ld), 0);
	ms_load_free(ld);
	ms_stream_close(in);
	ms_stream_close(s);
	ms_registry_free(reg);
}
END_TEST

static Suite *driver_suite(void)
{
	Suite *s = suite_create("driver");
	TCase *tc;
	int np = (int)(sizeof(profiles) / sizeof(profiles[0]));

	tc = tcase_create("round trips");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_driver_roundtrip_blocking, 0, np);
	tcase_add_loop_test(tc, test_driver_roundtrip_fed, 0, np);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_driver_stops_at_first_error, 0, 2);
	tcase_add_loop_test(tc, test_driver_unknown_section_and_versions, 0, 2);
	tcase_add_loop_test(tc, test_driver_truncation_every_offset, 0, np);
	tcase_add_test(tc, test_driver_registry_arguments);
	tcase_add_test(tc, test_driver_feed_in_place_misuse);
	tcase_add_test(tc, test_driver_iterate_resumes_when_dirty);
	tcase_add_loop_test(tc, test_driver_save_reports_stream_error, 0, np);
	tcase_add_loop_test(tc, test_driver_setup_flushes, 0, np);
	suite_add_tcase(s, tc);

	tc = tcase_create("life cycle");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_driver_cancel_and_reuse);
	tcase_add_loop_test(tc, test_driver_alloc_failure, 0, np);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostile fed loads");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_driver_fed_fake_footers_linear, 0, 2);
	tcase_add_loop_test(tc, test_driver_fed_long_configuration_linear, 0,
			    2);
	tcase_add_loop_test(tc, test_driver_fed_limit, 0, 2);
	tcase_add_test(tc, test_driver_opts_versions);
	tcase_add_test(tc, test_driver_save_default_native);
	tcase_add_test(tc, test_driver_misuse_messages);
	tcase_add_loop_test(tc, test_driver_fed_data_after_end, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

MS_TEST_MAIN(driver_suite)
