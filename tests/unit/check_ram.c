/* SPDX-License-Identifier: MIT */
/*
 * ms_ram without channels: its refusals and their messages, the zero
 * check, dirty tracking (marks from threads while the migration thread
 * clears, KVM-shaped dirty logs at any bit offset), round trips in both
 * profiles over real pipes with a guest thread writing during precopy,
 * QEMU 7.2's bytes exactly, agreement with migstream-dump, and hostile
 * streams (kept in tests/data/ram/, written by this test when
 * MS_RAM_WRITE_DATA names a directory) each refused with its message,
 * truncated at every byte or fed in chunks of every kind.
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ms-test.h"
#include "ram-impl.h"

#include <migstream/qemu_ram.h>

#define PS 4096u

static void *xalloc(size_t bytes)
{
	void *p = NULL;

	ck_assert_int_eq(posix_memalign(&p, 65536, bytes ? bytes : 65536), 0);
	memset(p, 0, bytes);
	return p;
}

static ms_ram *xram(size_t page_size)
{
	ms_ram_opts o = {.version = MS_RAM_OPTS_VERSION,
			 .page_size = page_size};
	ms_ram *ram = NULL;

	ck_assert_int_eq(ms_ram_new(&ram, &o), 0);
	return ram;
}

static unsigned xblock(ms_ram *ram, const char *name, void *host, uint64_t used,
		       uint64_t max, unsigned flags)
{
	ms_ram_block b = {.version = MS_RAM_BLOCK_VERSION,
			  .idstr = name,
			  .host = host,
			  .used_length = used,
			  .max_length = max,
			  .flags = flags};
	unsigned idx = 99;

	ck_assert_msg(!ms_ram_add_block(ram, &b, &idx), "%s",
		      ms_ram_errmsg(ram));
	return idx;
}

static void expect_msg(const char *got, const char *want)
{
	ck_assert_msg(strstr(got, want), "message '%s' lacks '%s'", got, want);
}

/*
 * The object's refusals.
 */

START_TEST(test_ram_opts)
{
	ms_ram_opts o = {.version = MS_RAM_OPTS_VERSION};
	ms_ram *ram = NULL;

	ck_assert_ptr_null(ms_ram_opts_check(NULL));
	ck_assert_ptr_null(ms_ram_opts_check(&o));
	o.page_size = 3000;
	expect_msg(ms_ram_opts_check(&o), "power of two");
	ck_assert_int_eq(ms_ram_new(&ram, &o), -EINVAL);
	ck_assert_ptr_null(ram);
	o.page_size = 512;
	expect_msg(ms_ram_opts_check(&o), "MS_RAM_MIN_PAGE_SIZE");
	o.page_size = 131072;
	expect_msg(ms_ram_opts_check(&o), "MS_RAM_MAX_PAGE_SIZE");
	o.page_size = 1024;
	o.version = 0;
	expect_msg(ms_ram_opts_check(&o), "version");
	ck_assert_int_eq(ms_ram_new(NULL, NULL), -EINVAL);
	ck_assert_int_eq(ms_ram_new(&ram, NULL), 0);
	ck_assert_str_eq(ms_ram_errmsg(ram), "");
	ms_ram_free(ram);
	ms_ram_free(NULL);
}
END_TEST

START_TEST(test_ram_add_block_refusals)
{
	ms_ram *ram = xram(0);
	uint8_t *mem = xalloc(8 * PS);
	ms_ram_block b = {.version = MS_RAM_BLOCK_VERSION,
			  .idstr = "pc.ram",
			  .host = mem,
			  .used_length = 4 * PS};
	char longname[300];
	unsigned idx;
	int i;

	ck_assert_int_eq(ms_ram_add_block(ram, NULL, NULL), -EINVAL);
	expect_msg(ms_ram_errmsg(ram), "found NULL");
	b.version = 7;
	ck_assert_int_eq(ms_ram_add_block(ram, &b, NULL), -EINVAL);
	expect_msg(ms_ram_errmsg(ram),
		   "MS_RAM_BLOCK_VERSION (1) expected, found 7");
	b.version = MS_RAM_BLOCK_VERSION;
	b.idstr = "";
	ck_assert_int_eq(ms_ram_add_block(ram, &b, NULL), -EINVAL);
	expect_msg(ms_ram_errmsg(ram),
		   "idstr of 1 to 255 bytes expected, found one of 0");
	b.idstr = NULL;
	ck_assert_int_eq(ms_ram_add_block(ram, &b, NULL), -EINVAL);
	expect_msg(ms_ram_errmsg(ram), "found NULL of 0 bytes");
	memset(longname, 'a', 256);
	longname[256] = 0;
	b.idstr = longname;
	ck_assert_int_eq(ms_ram_add_block(ram, &b, NULL), -EINVAL);
	expect_msg(ms_ram_errmsg(ram), "found one of 256 bytes");
	longname[255] = 0;
	ck_assert_int_eq(ms_ram_add_block(ram, &b, &idx), 0);
	ck_assert_uint_eq(idx, 0);
	b.idstr = "pc.ram";
	b.used_length = 100;
	ck_assert_int_eq(ms_ram_add_block(ram, &b, NULL), -EINVAL);
	expect_msg(ms_ram_errmsg(ram), "multiples of the page size 4096 "
				       "expected, found used_length 0x64");
	b.used_length = 4 * PS;
	b.max_length = 2 * PS;
	ck_assert_int_eq(ms_ram_add_block(ram, &b, NULL), -EINVAL);
	expect_msg(ms_ram_errmsg(ram),
		   "at least used_length 0x4000 expected, found 0x2000");
	b.max_length = 0;
	b.host = NULL;
	ck_assert_int_eq(ms_ram_add_block(ram, &b, NULL), -EINVAL);
	expect_msg(
		ms_ram_errmsg(ram),
		"'pc.ram': host memory expected for 0x4000 bytes, found NULL");
	b.host = mem + 8;
	ck_assert_int_eq(ms_ram_add_block(ram, &b, NULL), -EINVAL);
	expect_msg(ms_ram_errmsg(ram),
		   "aligned to the page size 4096 expected");
	b.host = mem;
	b.flags = 0x10;
	ck_assert_int_eq(ms_ram_add_block(ram, &b, NULL), -EINVAL);
	expect_msg(ms_ram_errmsg(ram),
		   "flags 0 or MS_RAM_BLOCK_ZEROED expected, found 0x10");
	b.flags = 0;
	ck_assert_int_eq(ms_ram_add_block(ram, &b, &idx), 0);
	ck_assert_uint_eq(idx, 1);
	ck_assert_int_eq(ms_ram_add_block(ram, &b, NULL), -EEXIST);
	expect_msg(
		ms_ram_errmsg(ram),
		"a new block name expected, found 'pc.ram' registered already");
	/* An empty block needs no memory. */
	b.idstr = "empty";
	b.host = NULL;
	b.used_length = 0;
	ck_assert_int_eq(ms_ram_add_block(ram, &b, &idx), 0);
	ck_assert_uint_eq(idx, 2);
	for (i = 3; i < (int)MS_RAM_MAX_BLOCKS; i++) {
		char name[16];

		snprintf(name, sizeof(name), "b%d", i);
		b.idstr = name;
		ck_assert_int_eq(ms_ram_add_block(ram, &b, NULL), 0);
	}
	b.idstr = "one-too-many";
	ck_assert_int_eq(ms_ram_add_block(ram, &b, NULL), -E2BIG);
	expect_msg(ms_ram_errmsg(ram),
		   "at most MS_RAM_MAX_BLOCKS (1024) blocks expected");
	ck_assert_int_eq(ms_ram_add_block(NULL, &b, NULL), -EINVAL);
	ms_ram_free(ram);
	free(mem);
}
END_TEST

START_TEST(test_ram_resize_channels_refusals)
{
	ms_ram *ram = xram(0);
	uint8_t *mem = xalloc(8 * PS);
	ms_codec_opts co;
	int fds[3] = {5, 6, 5};
	unsigned i;

	i = xblock(ram, "pc.ram", mem, 4 * PS, 8 * PS, 0);
	ck_assert_int_eq(ms_ram_resize(ram, 1, PS), -EINVAL);
	expect_msg(ms_ram_errmsg(ram),
		   "a block index below 1 expected, found 1");
	ck_assert_int_eq(ms_ram_resize(ram, i, 9 * PS), -EINVAL);
	expect_msg(ms_ram_errmsg(ram),
		   "up to max_length 0x8000 expected, found 0x9000");
	ck_assert_int_eq(ms_ram_resize(ram, i, PS + 1), -EINVAL);
	expect_msg(ms_ram_errmsg(ram), "found 0x1001");
	ck_assert_int_eq(ms_ram_resize(ram, i, 8 * PS), 0);
	ck_assert_int_eq(ms_ram_resize(ram, i, 0), 0);
	ck_assert_int_eq(ms_ram_set_channels(ram, NULL, 2, NULL), -EINVAL);
	expect_msg(ms_ram_errmsg(ram), "2 descriptors expected, found NULL");
	ck_assert_int_eq(ms_ram_set_channels(ram, fds, 65, NULL), -EINVAL);
	expect_msg(ms_ram_errmsg(ram),
		   "0 to MS_RAM_MAX_CHANNELS (64) channels expected, found 65");
	ck_assert_int_eq(ms_ram_set_channels(ram, fds, 3, NULL), -EINVAL);
	expect_msg(ms_ram_errmsg(ram), "a descriptor per channel expected, "
				       "found 5 for channels 0 and 2");
	fds[2] = -1;
	ck_assert_int_eq(ms_ram_set_channels(ram, fds, 3, NULL), -EINVAL);
	expect_msg(ms_ram_errmsg(ram),
		   "open descriptors expected, found -1 for channel 2");
	ms_codec_opts_init(&co);
	co.compress_level = 42;
	ck_assert_int_eq(ms_ram_set_channels(ram, fds, 2, &co), -EINVAL);
	expect_msg(ms_ram_errmsg(ram), "ms_ram_set_channels: ms_codec_opts");
	co.compress_level = 1;
	ck_assert_int_eq(ms_ram_set_channels(ram, fds, 2, &co), 0);
	ck_assert_uint_eq(ram->nch, 2);
	ck_assert_int_eq(ms_ram_set_channels(ram, NULL, 0, NULL), 0);
	ck_assert_uint_eq(ram->nch, 0);
	ck_assert_int_eq(ms_ram_dirty_log(ram, 3, 0, NULL, 0), -EINVAL);
	expect_msg(ms_ram_errmsg(ram),
		   "a block index below 1 expected, found 3");
	ck_assert_int_eq(ms_ram_resize(ram, i, 4 * PS), 0);
	ck_assert_int_eq(ms_ram_dirty_log(ram, i, 4, NULL, 5), -EINVAL);
	expect_msg(ms_ram_errmsg(ram), "pages within its 8 (max_length) "
				       "expected, found 5 from page 4");
	ck_assert_int_eq(ms_ram_dirty_log(ram, i, 0, NULL, 1), -EINVAL);
	expect_msg(ms_ram_errmsg(ram), "a bitmap expected, found NULL");
	ck_assert_int_eq(ms_ram_load_check(ram), -ENODATA);
	expect_msg(ms_ram_errmsg(ram),
		   "'ram' START section (the block list) expected, found none");
	ms_ram_free(ram);
	free(mem);
}
END_TEST

/*
 * The zero check.
 */

START_TEST(test_ram_is_zero)
{
	uint8_t *buf = xalloc(3 * PS);
	size_t off, len, i;

	ck_assert(ms_buffer_is_zero(buf, 0));
	ck_assert(ms_buffer_is_zero(NULL, 0));
	for (off = 0; off < 17; off++)
		for (len = 0; len < 300; len += (len < 40 ? 1 : 7)) {
			ck_assert(ms_buffer_is_zero(buf + off, len));
			for (i = 0; i < len; i++) {
				buf[off + i] = 0x80;
				ck_assert_msg(
					!ms_buffer_is_zero(buf + off, len),
					"off %zu len %zu byte %zu", off, len,
					i);
				buf[off + i] = 0;
			}
			/* Bytes just outside are not looked at. */
			if (off)
				buf[off - 1] = 1;
			buf[off + len] = 1;
			ck_assert(ms_buffer_is_zero(buf + off, len));
			if (off)
				buf[off - 1] = 0;
			buf[off + len] = 0;
		}
	/* The block loops: every byte of a few longer lengths. */
	for (off = 0; off < 40; off += 13)
		for (len = 500; len < 2 * PS; len = len * 2 + 13) {
			ck_assert(ms_buffer_is_zero(buf + off, len));
			for (i = 0; i < len; i++) {
				buf[off + i] = 1;
				ck_assert_msg(
					!ms_buffer_is_zero(buf + off, len),
					"off %zu len %zu byte %zu", off, len,
					i);
				buf[off + i] = 0;
			}
		}
	ck_assert(ms_buffer_is_zero(buf, 3 * PS));
	buf[3 * PS - 1] = 1;
	ck_assert(!ms_buffer_is_zero(buf, 3 * PS));
	ck_assert(ms_buffer_is_zero(buf + 1, 3 * PS - 2));
	buf[2 * PS + 77] = 4;
	ck_assert(!ms_buffer_is_zero(buf + 1, 3 * PS - 2));
	free(buf);
}
END_TEST

/*
 * Dirty tracking.
 */

/* Whether page @p of block @b is marked (the private bitmap). */
static bool is_dirty(const ms_ram *ram, unsigned b, uint64_t p)
{
	return atomic_load(&ram->blk[b].dirty[p / MS__RAM_WORD_BITS]) >>
		       (p % MS__RAM_WORD_BITS) &
	       1u;
}

static void clear_dirty(ms_ram *ram, unsigned b)
{
	size_t w;

	for (w = 0; w < ram->blk[b].nwords; w++)
		atomic_store(&ram->blk[b].dirty[w], 0ul);
}

START_TEST(test_ram_mark_dirty)
{
	ms_ram *ram = xram(0);
	uint8_t *mem = xalloc(300 * PS);
	unsigned b = xblock(ram, "pc.ram", mem, 200 * PS, 300 * PS, 0);
	uint64_t p;

	ms_ram_mark_dirty(ram, b, 5 * PS + 1, 1);
	ck_assert(is_dirty(ram, b, 5));
	ck_assert_uint_eq(ms_ram_dirty_pages(ram), 1);
	/* Every page a range touches, across words. */
	ms_ram_mark_dirty(ram, b, 60 * PS + PS - 1, 70 * PS + 2);
	for (p = 0; p < 300; p++) {
		bool want = p == 5 || (p >= 60 && p <= 131);

		ck_assert_int_eq(is_dirty(ram, b, p), want);
	}
	ck_assert_uint_eq(ms_ram_dirty_pages(ram), 73);
	/* Past the used length: marked, not counted; past max: cut. */
	ms_ram_mark_dirty(ram, b, 250 * PS, 1000 * PS);
	ck_assert(is_dirty(ram, b, 299));
	ck_assert_uint_eq(ms_ram_dirty_pages(ram), 73);
	ms_ram_mark_dirty(ram, b, 400 * PS, PS);
	ms_ram_mark_dirty(ram, b, 0, 0);
	ck_assert(!is_dirty(ram, b, 0));
	ms_ram_free(ram);
	free(mem);
}
END_TEST

/* ms_ram_dirty_log() at every bit offset: its uint64_t words land on
 * unsigned long words of any size and byte order. */
START_TEST(test_ram_dirty_log)
{
	ms_ram *ram = xram(0);
	uint8_t *mem = xalloc(400 * PS);
	unsigned b = xblock(ram, "pc.ram", mem, 400 * PS, 0, 0);
	uint64_t log[4], first, n, p, st = 42;
	unsigned w;

	for (first = 0; first < 140; first += (first < 70 ? 1 : 13)) {
		for (n = 0; n <= 256; n += (n < 70 ? 1 : 31)) {
			for (w = 0; w < 4; w++)
				log[w] = ms_test_rand(&st);
			clear_dirty(ram, b);
			ck_assert_int_eq(
				ms_ram_dirty_log(ram, b, first, log, n), 0);
			for (p = 0; p < 400; p++) {
				bool want = p >= first && p < first + n &&
					    (log[(p - first) / 64] >>
						     ((p - first) % 64) &
					     1);

				ck_assert_msg(is_dirty(ram, b, p) == want,
					      "first %llu n %llu page %llu",
					      (unsigned long long)first,
					      (unsigned long long)n,
					      (unsigned long long)p);
			}
		}
	}
	/* Merged into what is marked already. */
	clear_dirty(ram, b);
	ms_ram_mark_dirty(ram, b, 3 * PS, PS);
	log[0] = 1;
	ck_assert_int_eq(ms_ram_dirty_log(ram, b, 100, log, 1), 0);
	ck_assert_uint_eq(ms_ram_dirty_pages(ram), 2);
	ck_assert_int_eq(ms_ram_dirty_log(ram, b, 399, log, 1), 0);
	ck_assert_int_eq(ms_ram_dirty_log(ram, b, 399, log, 2), -EINVAL);
	ck_assert_int_eq(ms_ram_dirty_log(ram, b, UINT64_MAX, log, 2), -EINVAL);
	ms_ram_free(ram);
	free(mem);
}
END_TEST

/*
 * Saving and loading through memory.
 */

struct saved {
	uint8_t *data;
	size_t len;
};

static void saved_free(struct saved *sv)
{
	free(sv->data);
	sv->data = NULL;
	sv->len = 0;
}

static ms_codec_opts codec_of(ms_profile profile, int level)
{
	ms_codec_opts co;

	ms_codec_opts_init(&co);
	co.profile = profile;
	co.compress_level = level;
	return co;
}

/* A save of one ms_ram into memory, step by step. */
struct saving {
	ms_registry *reg;
	ms_stream *s;
	ms_save *sv;
};

/* Register @ram alone and run the save's setup. */
static void saving_start(struct saving *w, ms_ram *ram, ms_profile profile,
			 int level)
{
	ms_codec_opts co = codec_of(profile, level);
	ms_save_opts so = {.version = MS_SAVE_OPTS_VERSION, .codec = &co};

	memset(w, 0, sizeof(*w));
	ck_assert_int_eq(ms_registry_new(&w->reg, NULL), 0);
	ck_assert_int_eq(ms_ram_register(ram, w->reg, NULL), 0);
	ck_assert_int_eq(ms_stream_new_mem(&w->s, 0, NULL), 0);
	ck_assert_int_eq(ms_save_new(&w->sv, w->reg, w->s, &so), 0);
	ck_assert_msg(!ms_save_setup(w->sv), "%s", ms_save_errmsg(w->sv));
}

/* What the save wrote (after ms_save_complete()), copied. */
static struct saved saving_bytes(const struct saving *w)
{
	const uint8_t *d;
	struct saved out;

	ck_assert_int_eq(ms_stream_mem_view(w->s, &d, &out.len), 0);
	out.data = malloc(out.len);
	memcpy(out.data, d, out.len);
	return out;
}

static void saving_free(struct saving *w)
{
	ms_save_free(w->sv);
	ms_stream_close(w->s);
	ms_registry_free(w->reg);
}

/* A whole save of @ram into memory: setup, @rounds iterations (at most),
 * complete. */
static struct saved save_mem(ms_ram *ram, ms_profile profile, int level,
			     int rounds)
{
	struct saving w;
	struct saved out;
	int i;

	saving_start(&w, ram, profile, level);
	for (i = 0; i < rounds; i++)
		if (ms_save_iterate(w.sv) <= 0)
			break;
	ck_assert_msg(!ms_save_complete(w.sv), "%s", ms_save_errmsg(w.sv));
	out = saving_bytes(&w);
	saving_free(&w);
	return out;
}

/* Load @len bytes into @ram; returns the load's error, its message in
 * @msg. */
static int load_mem(ms_ram *ram, const void *data, size_t len, char *msg,
		    size_t msglen)
{
	ms_registry *reg = NULL;
	ms_stream *s = NULL;
	ms_load *ld = NULL;
	int ret;

	ck_assert_int_eq(ms_registry_new(&reg, NULL), 0);
	ck_assert_int_eq(ms_ram_register(ram, reg, NULL), 0);
	ck_assert_int_eq(ms_stream_new_mem_reader(&s, data, len, NULL), 0);
	ck_assert_int_eq(ms_load_new(&ld, reg, NULL), 0);
	ret = ms_load_run(ld, s);
	if (msg)
		snprintf(msg, msglen, "%s", ms_load_errmsg(ld));
	ms_load_free(ld);
	ms_stream_close(s);
	ms_registry_free(reg);
	return ret;
}

/* Feed @len bytes in chunks: 1 byte each for @mode 0, random sizes
 * (seeded by @mode) otherwise. */
static int load_fed(ms_ram *ram, const uint8_t *data, size_t len, int mode,
		    char *msg, size_t msglen)
{
	ms_registry *reg = NULL;
	ms_load *ld = NULL;
	uint64_t st = (uint64_t)mode * 7919u + 1;
	size_t at = 0, n;
	int ret = 0;

	ck_assert_int_eq(ms_registry_new(&reg, NULL), 0);
	ck_assert_int_eq(ms_ram_register(ram, reg, NULL), 0);
	ck_assert_int_eq(ms_load_new(&ld, reg, NULL), 0);
	while (at < len && !ret) {
		n = mode ? 1 + (size_t)(ms_test_rand(&st) % 9000) : 1;
		if (n > len - at)
			n = len - at;
		ret = ms_load_feed(ld, data + at, n);
		at += n;
	}
	if (!ret)
		ret = ms_load_finish(ld);
	if (msg)
		snprintf(msg, msglen, "%s", ms_load_errmsg(ld));
	ms_load_free(ld);
	ms_registry_free(reg);
	return ret;
}

/* Two blocks of mixed zero and random pages, and an empty one. */
struct pair {
	ms_ram *src, *dst;
	uint8_t *smem[3], *dmem[3];
	uint64_t len[3];
};

static void fill_mixed(uint8_t *mem, uint64_t len, uint64_t seed)
{
	uint64_t p;

	for (p = 0; p < len / PS; p++)
		if ((p * 7 + seed) % 3)
			ms_test_fill(mem + p * PS, PS, seed * 1000 + p);
}

static void pair_init(struct pair *pr, unsigned dst_flags)
{
	static const char *const names[3] = {"pc.ram", "/rom@etc/acpi/tables",
					     "pc.bios"};
	unsigned i;

	pr->len[0] = 64 * PS;
	pr->len[1] = 3 * PS;
	pr->len[2] = 17 * PS;
	pr->src = xram(0);
	pr->dst = xram(0);
	for (i = 0; i < 3; i++) {
		pr->smem[i] = xalloc(pr->len[i]);
		pr->dmem[i] = xalloc(pr->len[i]);
		fill_mixed(pr->smem[i], pr->len[i], i + 1);
		/* The destination's memory holds garbage unless zeroed. */
		if (!(dst_flags & MS_RAM_BLOCK_ZEROED))
			memset(pr->dmem[i], 0xa5, pr->len[i]);
		xblock(pr->src, names[i], pr->smem[i], pr->len[i], 0, 0);
		xblock(pr->dst, names[i], pr->dmem[i], pr->len[i], 0,
		       dst_flags);
	}
}

static void pair_check(const struct pair *pr)
{
	unsigned i;

	for (i = 0; i < 3; i++)
		ck_assert_msg(!memcmp(pr->smem[i], pr->dmem[i], pr->len[i]),
			      "block %u differs", i);
}

static void pair_free(struct pair *pr)
{
	unsigned i;

	ms_ram_free(pr->src);
	ms_ram_free(pr->dst);
	for (i = 0; i < 3; i++) {
		free(pr->smem[i]);
		free(pr->dmem[i]);
	}
}

START_TEST(test_ram_mem_roundtrip)
{
	static const struct {
		ms_profile profile;
		int level;
	} cases[] = {{MS_PROFILE_QEMU, 0},
		     {MS_PROFILE_NATIVE, 0},
		     {MS_PROFILE_NATIVE, 1}};
	struct pair pr;
	struct saved sv;
	ms_ram_stats st, dt;
	char msg[1024];
	unsigned c;

	for (c = 0; c < 3; c++) {
		pair_init(&pr, c == 1 ? MS_RAM_BLOCK_ZEROED : 0);
		sv = save_mem(pr.src, cases[c].profile, cases[c].level, 5);
		ck_assert_msg(
			!load_mem(pr.dst, sv.data, sv.len, msg, sizeof(msg)),
			"%s", msg);
		pair_check(&pr);
		ck_assert_int_eq(ms_ram_load_check(pr.dst), 0);
		ms_ram_get_stats(pr.src, &st);
		ms_ram_get_stats(pr.dst, &dt);
		ck_assert_uint_eq(st.pages, 84);
		ck_assert_uint_eq(st.rounds, 2);
		ck_assert_uint_eq(st.resent, 0);
		ck_assert_uint_eq(st.pages, dt.pages);
		ck_assert_uint_eq(st.zero_pages, dt.zero_pages);
		ck_assert_uint_eq(st.bytes, dt.bytes);
		ck_assert_uint_eq(st.rounds, dt.rounds);
		ck_assert_uint_eq(st.bytes, (st.pages - st.zero_pages) * PS);
		ck_assert_uint_gt(st.zero_pages, 20);
		ck_assert_uint_eq(st.round_pages, 0);
		saved_free(&sv);
		pair_free(&pr);
	}
}
END_TEST

/*
 * Round trips over real descriptors with guest threads writing.
 */

struct guest {
	ms_ram *ram;
	unsigned blk;
	uint8_t *mem;
	uint64_t pages; /* pages this thread writes: [first, first + pages) */
	uint64_t first;
	uint64_t seed;
	atomic_bool *stop;
	atomic_ulong writes;
};

/* Write a page (sometimes zero it), then mark it: the documented order. */
static void *guest_main(void *opaque)
{
	struct guest *g = opaque;
	uint64_t st = g->seed, r, p, v;

	while (!atomic_load(g->stop)) {
		r = ms_test_rand(&st);
		p = g->first + r % g->pages;
		if (r >> 60 == 0) {
			memset(g->mem + p * PS, 0, PS);
		} else {
			v = ms_test_rand(&st);
			memcpy(g->mem + p * PS + (r >> 20) % (PS / 8) * 8, &v,
			       8);
		}
		ms_ram_mark_dirty(g->ram, g->blk, p * PS, PS);
		atomic_fetch_add(&g->writes, 1);
	}
	return NULL;
}

struct loader {
	ms_ram *ram;
	int fd;
	int ret;
	char msg[1024];
};

static void *loader_main(void *opaque)
{
	struct loader *l = opaque;
	ms_registry *reg = NULL;
	ms_stream *s = NULL;
	ms_load *ld = NULL;

	ck_assert_int_eq(ms_registry_new(&reg, NULL), 0);
	ck_assert_int_eq(ms_ram_register(l->ram, reg, NULL), 0);
	ck_assert_int_eq(ms_stream_new_fd(&s, l->fd, MS_STREAM_READER, 0, NULL),
			 0);
	ck_assert_int_eq(ms_load_new(&ld, reg, NULL), 0);
	l->ret = ms_load_run(ld, s);
	snprintf(l->msg, sizeof(l->msg), "%s", ms_load_errmsg(ld));
	ms_load_free(ld);
	ms_stream_close(s);
	ms_registry_free(reg);
	return NULL;
}

/*
 * Migrate @pr->src into @pr->dst over a pipe (@sock false) or a
 * socketpair, @nguests threads writing block 0 during @rounds precopy
 * rounds; the guests stop before stop-and-copy.  Returns the source's
 * counters.
 */
static ms_ram_stats migrate_fd(struct pair *pr, ms_profile profile, int level,
			       bool sock, unsigned nguests, int rounds)
{
	ms_codec_opts co = codec_of(profile, level);
	ms_save_opts so = {.version = MS_SAVE_OPTS_VERSION, .codec = &co};
	struct guest g[4];
	pthread_t gt[4], lt;
	struct loader l = {.ram = pr->dst};
	atomic_bool stop;
	ms_registry *reg = NULL;
	ms_stream *s = NULL;
	ms_save *sv = NULL;
	ms_ram_stats st;
	unsigned i;
	int fds[2], r;

	if (sock)
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	else
		ck_assert_int_eq(pipe(fds), 0);
	l.fd = fds[0];
	ck_assert_int_eq(pthread_create(&lt, NULL, loader_main, &l), 0);
	atomic_init(&stop, false);
	for (i = 0; i < nguests; i++) {
		g[i].ram = pr->src;
		g[i].blk = 0;
		g[i].mem = pr->smem[0];
		/* Threads share bitmap words: 4 pages each, interleaved. */
		g[i].pages = pr->len[0] / PS / nguests;
		g[i].first = i * g[i].pages;
		g[i].seed = 1000 + i;
		g[i].stop = &stop;
		atomic_init(&g[i].writes, 0ul);
		ck_assert_int_eq(
			pthread_create(&gt[i], NULL, guest_main, &g[i]), 0);
	}
	ck_assert_int_eq(ms_registry_new(&reg, NULL), 0);
	ck_assert_int_eq(ms_ram_register(pr->src, reg, NULL), 0);
	ck_assert_int_eq(
		ms_stream_new_fd(&s, fds[1], MS_STREAM_WRITER, 0, NULL), 0);
	ck_assert_int_eq(ms_save_new(&sv, reg, s, &so), 0);
	ck_assert_msg(!ms_save_setup(sv), "%s", ms_save_errmsg(sv));
	for (r = 0; r < rounds; r++) {
		/* Let the guests write between rounds. */
		for (i = 0; i < nguests; i++) {
			unsigned long w = atomic_load(&g[i].writes);

			while (atomic_load(&g[i].writes) < w + 50)
				sched_yield();
		}
		ck_assert_int_ge(ms_save_iterate(sv), 0);
	}
	atomic_store(&stop, true);
	for (i = 0; i < nguests; i++)
		pthread_join(gt[i], NULL);
	ck_assert_msg(!ms_save_complete(sv), "%s", ms_save_errmsg(sv));
	ms_save_free(sv);
	ms_stream_close(s);
	close(fds[1]);
	pthread_join(lt, NULL);
	close(fds[0]);
	ck_assert_msg(!l.ret, "%s", l.msg);
	ck_assert_msg(!ms_ram_load_check(pr->dst), "%s",
		      ms_ram_errmsg(pr->dst));
	ms_registry_free(reg);
	ms_ram_get_stats(pr->src, &st);
	return st;
}

START_TEST(test_ram_fd_roundtrip)
{
	static const struct {
		ms_profile profile;
		int level;
		bool sock;
	} cases[] = {{MS_PROFILE_QEMU, 0, false},
		     {MS_PROFILE_NATIVE, 0, true},
		     {MS_PROFILE_NATIVE, 1, true},
		     {MS_PROFILE_QEMU, 0, true}};
	struct pair pr;
	ms_ram_stats st, dt;
	unsigned c = (unsigned)_i;

	pair_init(&pr, c == 3 ? MS_RAM_BLOCK_ZEROED : 0);
	st = migrate_fd(&pr, cases[c].profile, cases[c].level, cases[c].sock, 1,
			6);
	pair_check(&pr);
	ms_ram_get_stats(pr.dst, &dt);
	ck_assert_uint_eq(st.rounds, 7);
	ck_assert_uint_eq(dt.rounds, 7);
	ck_assert_uint_eq(st.pages, dt.pages);
	ck_assert_uint_eq(st.zero_pages, dt.zero_pages);
	ck_assert_uint_gt(st.pages, 84);
	ck_assert_uint_gt(st.resent, 0);
	ck_assert_uint_eq(st.resent, st.pages - 84);
	pair_free(&pr);
}
END_TEST

/* Four threads mark pages of the same bitmap words while the migration
 * thread clears them: a page written after its bit was cleared must be
 * sent again, so the destination ends equal. */
START_TEST(test_ram_lost_bits)
{
	struct pair pr;
	ms_ram_stats st;
	int rep;

	for (rep = 0; rep < 3; rep++) {
		pair_init(&pr, 0);
		st = migrate_fd(&pr, MS_PROFILE_QEMU, 0, true, 4, 25);
		pair_check(&pr);
		ck_assert_uint_gt(st.resent, 25);
		pair_free(&pr);
	}
}
END_TEST

/* ZEROED: a zero page no record wrote is not touched, so memory that
 * cannot even be read is fine; one written by a PAGE is cleared again. */
START_TEST(test_ram_zeroed)
{
	ms_ram *src = xram(0), *dst = xram(0);
	uint8_t *smem = xalloc(8 * PS), *dmem, *none;
	struct saved sv, sv2;
	char msg[1024];

	dmem = mmap(NULL, 8 * PS, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	none = mmap(NULL, 4 * PS, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		    0);
	ck_assert(dmem != MAP_FAILED && none != MAP_FAILED);
	ms_test_fill(smem + 2 * PS, PS, 5);
	xblock(src, "pc.ram", smem, 8 * PS, 0, 0);
	xblock(src, "zeros", smem + 4 * PS, 4 * PS, 0, 0);
	xblock(dst, "pc.ram", dmem, 8 * PS, 0, MS_RAM_BLOCK_ZEROED);
	xblock(dst, "zeros", none, 4 * PS, 0, MS_RAM_BLOCK_ZEROED);
	memset(smem + 4 * PS, 0, 4 * PS);
	sv = save_mem(src, MS_PROFILE_QEMU, 0, 3);
	ck_assert_msg(!load_mem(dst, sv.data, sv.len, msg, sizeof(msg)), "%s",
		      msg);
	ck_assert(!memcmp(smem, dmem, 8 * PS));
	/* Page 2 goes zero: the second migration into the same memory must
	 * clear it (its bit says it may be set). */
	memset(smem + 2 * PS, 0, PS);
	sv2 = save_mem(src, MS_PROFILE_QEMU, 0, 3);
	ck_assert_msg(!load_mem(dst, sv2.data, sv2.len, msg, sizeof(msg)), "%s",
		      msg);
	ck_assert(ms_buffer_is_zero(dmem, 8 * PS));
	saved_free(&sv);
	saved_free(&sv2);
	munmap(dmem, 8 * PS);
	munmap(none, 4 * PS);
	ms_ram_free(src);
	ms_ram_free(dst);
	free(smem);
}
END_TEST

/* A block resized (as a guest's hot-plugged memory grows) migrates at its
 * new used length; a destination at the old one refuses it. */
START_TEST(test_ram_resize_migrate)
{
	ms_ram *src = xram(0), *dst = xram(0);
	uint8_t *smem = xalloc(16 * PS), *dmem = xalloc(16 * PS);
	unsigned sb, db;
	struct saved sv;
	char msg[1024];

	ms_test_fill(smem, 16 * PS, 9);
	sb = xblock(src, "pc.ram", smem, 4 * PS, 16 * PS, 0);
	db = xblock(dst, "pc.ram", dmem, 4 * PS, 16 * PS, 0);
	ck_assert_int_eq(ms_ram_resize(src, sb, 12 * PS), 0);
	sv = save_mem(src, MS_PROFILE_NATIVE, 0, 3);
	ck_assert_int_eq(load_mem(dst, sv.data, sv.len, msg, sizeof(msg)),
			 -EINVAL);
	expect_msg(msg, "RAM block 'pc.ram' of used length 0x4000 (as "
			"registered) expected, found 0xc000");
	ck_assert_int_eq(ms_ram_resize(dst, db, 12 * PS), 0);
	ck_assert_msg(!load_mem(dst, sv.data, sv.len, msg, sizeof(msg)), "%s",
		      msg);
	ck_assert(!memcmp(smem, dmem, 12 * PS));
	ck_assert(ms_buffer_is_zero(dmem + 12 * PS, 4 * PS));
	saved_free(&sv);
	ms_ram_free(src);
	ms_ram_free(dst);
	free(smem);
	free(dmem);
}
END_TEST

/*
 * QEMU 7.2's bytes, exactly.
 */

struct bytes {
	uint8_t d[65536];
	size_t n;
};

static void b_u8(struct bytes *b, uint8_t v)
{
	ck_assert_uint_lt(b->n, sizeof(b->d));
	b->d[b->n++] = v;
}

static void b_be32(struct bytes *b, uint32_t v)
{
	int i;

	for (i = 3; i >= 0; i--)
		b_u8(b, (uint8_t)(v >> (8 * i)));
}

static void b_be64(struct bytes *b, uint64_t v)
{
	b_be32(b, (uint32_t)(v >> 32));
	b_be32(b, (uint32_t)v);
}

static void b_str(struct bytes *b, const char *s)
{
	size_t n = strlen(s);

	b_u8(b, (uint8_t)n);
	ck_assert_uint_le(b->n + n, sizeof(b->d));
	memcpy(b->d + b->n, s, n);
	b->n += n;
}

static void b_mem(struct bytes *b, const void *p, size_t n)
{
	ck_assert_uint_le(b->n + n, sizeof(b->d));
	memcpy(b->d + b->n, p, n);
	b->n += n;
}

/* A section header of "ram" (section 0): START has its name. */
static void b_section(struct bytes *b, uint8_t type)
{
	b_u8(b, type);
	b_be32(b, 0);
	if (type == MS_REC_START) {
		b_str(b, "ram");
		b_be32(b, 0);
		b_be32(b, 4);
	}
}

static void b_footer(struct bytes *b)
{
	b_u8(b, MS_REC_FOOTER);
	b_be32(b, 0);
}

static const uint8_t *find(const struct saved *sv, const struct bytes *b,
			   const uint8_t *from)
{
	const uint8_t *end = sv->data + sv->len, *p;

	for (p = from; p + b->n <= end; p++)
		if (!memcmp(p, b->d, b->n))
			return p;
	return NULL;
}

static int dirty_vram_page0(void *opaque, ms_ram *ram)
{
	int *calls = opaque;

	/* Call 2, when the one precopy round asks what is left: the block
	 * of the last record, sent by stop-and-copy (call 3). */
	if (++*calls == 2)
		ms_ram_mark_dirty(ram, 1, 0, 1);
	return 0;
}

START_TEST(test_ram_qemu_bytes)
{
	int calls = 0;
	ms_ram_opts o = {.version = MS_RAM_OPTS_VERSION,
			 .sync = dirty_vram_page0,
			 .sync_opaque = &calls};
	ms_ram *ram = NULL;
	uint8_t *ram0 = xalloc(4 * PS), *vram = xalloc(2 * PS);
	static struct bytes start, part, end;
	const uint8_t *at;
	struct saved sv;

	ck_assert_int_eq(ms_ram_new(&ram, &o), 0);
	ms_test_fill(ram0, PS, 1);
	ms_test_fill(ram0 + 2 * PS, PS, 2);
	ms_test_fill(vram + PS, PS, 3);
	xblock(ram, "pc.ram", ram0, 4 * PS, 0, 0);
	xblock(ram, "vga.vram", vram, 2 * PS, 0, 0);
	xblock(ram, "unused", NULL, 0, 0, 0);
	sv = save_mem(ram, MS_PROFILE_QEMU, 0, 1);
	ck_assert_uint_ge(sv.len, 8);
	ck_assert(!memcmp(sv.data, "QEVM\0\0\0\3", 8));

	b_section(&start, MS_REC_START);
	b_be64(&start, 6 * PS | MS_QEMU_RAM_MEM_SIZE);
	b_str(&start, "pc.ram");
	b_be64(&start, 4 * PS);
	b_str(&start, "vga.vram");
	b_be64(&start, 2 * PS);
	b_be64(&start, MS_QEMU_RAM_EOS);
	b_footer(&start);

	b_section(&part, MS_REC_PART);
	b_be64(&part, 0 | MS_QEMU_RAM_PAGE);
	b_str(&part, "pc.ram");
	b_mem(&part, ram0, PS);
	b_be64(&part, PS | MS_QEMU_RAM_ZERO | MS_QEMU_RAM_CONTINUE);
	b_u8(&part, 0);
	b_be64(&part, 2 * PS | MS_QEMU_RAM_PAGE | MS_QEMU_RAM_CONTINUE);
	b_mem(&part, ram0 + 2 * PS, PS);
	b_be64(&part, 3 * PS | MS_QEMU_RAM_ZERO | MS_QEMU_RAM_CONTINUE);
	b_u8(&part, 0);
	b_be64(&part, 0 | MS_QEMU_RAM_ZERO);
	b_str(&part, "vga.vram");
	b_u8(&part, 0);
	b_be64(&part, PS | MS_QEMU_RAM_PAGE | MS_QEMU_RAM_CONTINUE);
	b_mem(&part, vram + PS, PS);
	b_be64(&part, MS_QEMU_RAM_EOS);
	b_footer(&part);

	/* The last block lives across sections: CONTINUE. */
	b_section(&end, MS_REC_END);
	b_be64(&end, 0 | MS_QEMU_RAM_ZERO | MS_QEMU_RAM_CONTINUE);
	b_u8(&end, 0);
	b_be64(&end, MS_QEMU_RAM_EOS);
	b_footer(&end);

	at = find(&sv, &start, sv.data);
	ck_assert_msg(at != NULL, "START section not found");
	at = find(&sv, &part, at + start.n);
	ck_assert_msg(at != NULL, "PART section not found");
	/* Nothing between the sections. */
	ck_assert(find(&sv, &start, sv.data) + start.n == at);
	ck_assert_msg(at + part.n == find(&sv, &end, at), "END section");
	ck_assert_int_eq(calls, 3);
	saved_free(&sv);
	ms_ram_free(ram);
	free(ram0);
	free(vram);
}
END_TEST

/*
 * An emulator with its own dirty log (KVM's shape): the guest's writes
 * reach ms_ram only through the sync callback, so precopy goes on only if
 * the save asks the log again when its bitmaps are empty.
 */
struct kvm_guest {
	uint8_t *mem;
	uint64_t log;	      /* one bit per page of the 64-page block */
	unsigned writes_left; /* writes still to come, one per call */
	unsigned calls;
	unsigned fail_call; /* the call that returns -EIO (0: none) */
	bool stopped;
};

static int kvm_sync(void *opaque, ms_ram *ram)
{
	struct kvm_guest *g = opaque;
	uint64_t page;

	if (++g->calls == g->fail_call)
		return -EIO;
	ck_assert_int_eq(ms_ram_dirty_log(ram, 0, 0, &g->log, 64), 0);
	g->log = 0;
	/* The next write lands while the coming round runs. */
	if (g->writes_left && !g->stopped) {
		page = 5 + 7 * g->writes_left--;
		ms_test_fill(g->mem + page * PS, PS, 900 + g->writes_left);
		g->log |= 1ull << page;
	}
	return 0;
}

static ms_ram *kvm_ram(struct kvm_guest *g, unsigned writes, unsigned fail_call)
{
	ms_ram_opts o = {.version = MS_RAM_OPTS_VERSION,
			 .sync = kvm_sync,
			 .sync_opaque = g};
	ms_ram *ram = NULL;

	memset(g, 0, sizeof(*g));
	g->mem = xalloc(64 * PS);
	fill_mixed(g->mem, 64 * PS, 3);
	g->writes_left = writes;
	g->fail_call = fail_call;
	ck_assert_int_eq(ms_ram_new(&ram, &o), 0);
	xblock(ram, "pc.ram", g->mem, 64 * PS, 0, 0);
	return ram;
}

START_TEST(test_ram_dirty_log_precopy)
{
	struct kvm_guest g;
	ms_ram *ram = kvm_ram(&g, 3, 0), *dst = xram(0);
	uint8_t *dmem = xalloc(64 * PS);
	struct saving w;
	struct saved out;
	ms_ram_stats st;
	char msg[1024];
	int more, rounds = 0;

	xblock(dst, "pc.ram", dmem, 64 * PS, 0, 0);
	saving_start(&w, ram, MS_PROFILE_QEMU, 0);
	ck_assert_uint_eq(ms_save_pending(w.sv), 64 * PS);
	while ((more = ms_save_iterate(w.sv)) > 0) {
		rounds++;
		ck_assert_int_lt(rounds, 10);
		/* Each write is seen once the round after it ended. */
		ck_assert_uint_eq(ms_save_pending(w.sv), PS);
	}
	ck_assert_msg(more == 0, "%s", ms_save_errmsg(w.sv));
	rounds++;
	/* Round 1 sends every page, and the first write is handed over
	 * when it ends; round 2 sends it and the second, round 3 the third,
	 * and the log is empty when round 3 ends (with the old rule, that
	 * an empty bitmap means no more, precopy ended after round 1). */
	ck_assert_int_eq(rounds, 3);
	ck_assert_uint_eq(ms_save_pending(w.sv), 0);
	ck_assert_uint_eq(g.writes_left, 0);
	g.stopped = true;
	ck_assert_msg(!ms_save_complete(w.sv), "%s", ms_save_errmsg(w.sv));
	ms_ram_get_stats(ram, &st);
	ck_assert_uint_eq(st.round_pages, 0);
	ck_assert_uint_eq(st.resent, 3);
	ck_assert_uint_eq(st.rounds, 4);
	out = saving_bytes(&w);
	saving_free(&w);
	ck_assert_msg(!load_mem(dst, out.data, out.len, msg, sizeof(msg)), "%s",
		      msg);
	ck_assert(!memcmp(g.mem, dmem, 64 * PS));
	saved_free(&out);
	ms_ram_free(ram);
	ms_ram_free(dst);
	free(g.mem);
	free(dmem);
}
END_TEST

/* A sync call that fails fails the save with its errno and says when: at
 * a round's start, when a round asks what is left after it, or from
 * ms_save_pending(), whose failure the next step reports. */
START_TEST(test_ram_dirty_log_sync_fails)
{
	/* Call 1 starts round 1, call 2 asks what is left after it, call
	 * 3 is ms_save_pending()'s. */
	static const struct {
		unsigned fail_call;
		const char *when;
	} cases[] = {
		{1, "in round 1"}, {2, "after round 1"}, {3, "after round 1"}};
	unsigned c;

	for (c = 0; c < 3; c++) {
		struct kvm_guest g;
		ms_ram *ram = kvm_ram(&g, 0, cases[c].fail_call);
		struct saving w;
		int ret;

		saving_start(&w, ram, MS_PROFILE_NATIVE, 0);
		/* The bitmap is full: no call. */
		ck_assert_uint_eq(ms_save_pending(w.sv), 64 * PS);
		ck_assert_uint_eq(g.calls, 0);
		ret = ms_save_iterate(w.sv);
		if (cases[c].fail_call == 3) {
			ck_assert_int_eq(ret, 0);
			ck_assert_uint_gt(ms_save_pending(w.sv), 0);
			ck_assert_uint_eq(g.calls, 3);
			ret = ms_save_complete(w.sv);
		}
		ck_assert_int_eq(ret, -EIO);
		expect_msg(ms_save_errmsg(w.sv), "RAM sync callback");
		expect_msg(ms_save_errmsg(w.sv), cases[c].when);
		ck_assert_int_eq(ms_save_iterate(w.sv), -EIO);
		saving_free(&w);
		ms_ram_free(ram);
		free(g.mem);
	}
}
END_TEST

/*
 * Hostile streams: a QEMU stream with one "ram" START (and PART) of the
 * given payloads, loaded into "pc.ram" (4 pages) and "vga.vram" (2).
 */

struct hostile {
	const char *name;
	const char *want; /* in the load's message */
	bool grammar;	  /* migstream-dump refuses it too */
	void (*start)(struct bytes *b);
	void (*part)(struct bytes *b);
};

static void list_ok(struct bytes *b)
{
	b_be64(b, 6 * PS | MS_QEMU_RAM_MEM_SIZE);
	b_str(b, "pc.ram");
	b_be64(b, 4 * PS);
	b_str(b, "vga.vram");
	b_be64(b, 2 * PS);
}

static void start_ok(struct bytes *b)
{
	list_ok(b);
	b_be64(b, MS_QEMU_RAM_EOS);
}

static void h_unknown(struct bytes *b)
{
	b_be64(b, 6 * PS | MS_QEMU_RAM_MEM_SIZE);
	b_str(b, "pc.ram");
	b_be64(b, 4 * PS);
	b_str(b, "evil");
	b_be64(b, 2 * PS);
	b_be64(b, MS_QEMU_RAM_EOS);
}

static void h_size(struct bytes *b)
{
	b_be64(b, 5 * PS | MS_QEMU_RAM_MEM_SIZE);
	b_str(b, "pc.ram");
	b_be64(b, 4 * PS);
	b_str(b, "vga.vram");
	b_be64(b, PS);
	b_be64(b, MS_QEMU_RAM_EOS);
}

static void h_dup(struct bytes *b)
{
	b_be64(b, 8 * PS | MS_QEMU_RAM_MEM_SIZE);
	b_str(b, "pc.ram");
	b_be64(b, 4 * PS);
	b_str(b, "pc.ram");
	b_be64(b, 4 * PS);
	b_be64(b, MS_QEMU_RAM_EOS);
}

static void h_missing(struct bytes *b)
{
	b_be64(b, 4 * PS | MS_QEMU_RAM_MEM_SIZE);
	b_str(b, "pc.ram");
	b_be64(b, 4 * PS);
	b_be64(b, MS_QEMU_RAM_EOS);
}

static void h_total(struct bytes *b)
{
	b_be64(b, (uint64_t)1 << 63 | MS_QEMU_RAM_MEM_SIZE);
	b_str(b, "pc.ram");
	b_be64(b, 4 * PS);
	b_str(b, "vga.vram");
	b_be64(b, 2 * PS);
	b_be64(b, MS_QEMU_RAM_EOS);
}

static void h_empty_name(struct bytes *b)
{
	b_be64(b, 6 * PS | MS_QEMU_RAM_MEM_SIZE);
	b_str(b, "");
	b_be64(b, 4 * PS);
	b_be64(b, MS_QEMU_RAM_EOS);
}

static void h_page_first(struct bytes *b)
{
	b_be64(b, MS_QEMU_RAM_ZERO);
	b_str(b, "pc.ram");
	b_u8(b, 0);
	start_ok(b);
}

static void page_at(struct bytes *b, uint64_t off, const char *blk)
{
	static uint8_t page[PS];

	b_be64(b, off | MS_QEMU_RAM_PAGE);
	b_str(b, blk);
	b_mem(b, page, PS);
	b_be64(b, MS_QEMU_RAM_EOS);
}

static void h_past(struct bytes *b)
{
	page_at(b, 4 * PS, "pc.ram");
}

static void h_2p63(struct bytes *b)
{
	page_at(b, (uint64_t)1 << 63, "pc.ram");
}

static void h_2p32(struct bytes *b)
{
	page_at(b, (uint64_t)1 << 32, "vga.vram");
}

static void h_page_unknown(struct bytes *b)
{
	page_at(b, 0, "pc.rom");
}

static void h_continue(struct bytes *b)
{
	b_be64(b, MS_QEMU_RAM_ZERO | MS_QEMU_RAM_CONTINUE);
	b_u8(b, 0);
	b_be64(b, MS_QEMU_RAM_EOS);
}

static void h_fill(struct bytes *b)
{
	b_be64(b, PS | MS_QEMU_RAM_ZERO);
	b_str(b, "pc.ram");
	b_u8(b, 1);
	b_be64(b, MS_QEMU_RAM_EOS);
}

static void flag_rec(struct bytes *b, unsigned flag)
{
	b_be64(b, PS | flag);
	b_str(b, "pc.ram");
	/* What would follow: zeros, ended by EOS. */
	b_be32(b, 0);
	b_be64(b, MS_QEMU_RAM_EOS);
}

static void h_xbzrle(struct bytes *b)
{
	flag_rec(b, MS_QEMU_RAM_XBZRLE);
}

static void h_compress(struct bytes *b)
{
	flag_rec(b, MS_QEMU_RAM_COMPRESS_PAGE);
}

static void h_hook(struct bytes *b)
{
	b_be64(b, MS_QEMU_RAM_HOOK);
	b_be64(b, MS_QEMU_RAM_EOS);
}

static void h_full(struct bytes *b)
{
	b_be64(b, MS_QEMU_RAM_FULL);
	b_be64(b, MS_QEMU_RAM_EOS);
}

static void h_unknown_flag(struct bytes *b)
{
	b_be64(b, 0x400);
	b_be64(b, MS_QEMU_RAM_EOS);
}

static void h_start_sync(struct bytes *b)
{
	list_ok(b);
	b_be64(b,
	       (uint64_t)2 << MS__RAM_SYNC_SHIFT | MS_QEMU_RAM_MULTIFD_FLUSH);
	b_be64(b, MS_QEMU_RAM_EOS);
}

static void h_part_sync(struct bytes *b)
{
	b_be64(b,
	       (uint64_t)1 << MS__RAM_SYNC_SHIFT | MS_QEMU_RAM_MULTIFD_FLUSH);
	b_be64(b, MS_QEMU_RAM_EOS);
}

static void h_part_list(struct bytes *b)
{
	start_ok(b);
}

static const struct hostile hostiles[] = {
	{"unknown-block",
	 "found 'evil' (0x2000 bytes), which this side does "
	 "not have",
	 false, h_unknown, NULL},
	{"size-mismatch",
	 "RAM block 'vga.vram' of used length 0x2000 (as "
	 "registered) expected, found 0x1000",
	 false, h_size, NULL},
	{"duplicate-block",
	 "distinct RAM block names expected, found "
	 "'pc.ram' twice",
	 true, h_dup, NULL},
	{"missing-block",
	 "every registered RAM block expected, found no "
	 "'vga.vram' (0x2000 bytes)",
	 false, h_missing, NULL},
	{"total-2p63",
	 "a total of 0x6000 (the 2 registered RAM blocks) "
	 "expected, found 0x8000000000000000 announced",
	 true, h_total, NULL},
	{"empty-name", "a RAM block name expected, found an empty name", true,
	 h_empty_name, NULL},
	{"page-before-list",
	 "block list (MEM_SIZE, 0x04) expected first in "
	 "the START section, found the record 0x2",
	 true, h_page_first, NULL},
	{"page-past-end",
	 "an offset below 0x4000 (the used length of RAM "
	 "block 'pc.ram') expected, found 0x4000",
	 true, start_ok, h_past},
	{"offset-2p63", "expected, found 0x8000000000000000", true, start_ok,
	 h_2p63},
	{"offset-2p32",
	 "an offset below 0x2000 (the used length of RAM block "
	 "'vga.vram') expected, found 0x100000000",
	 true, start_ok, h_2p32},
	{"page-unknown-block",
	 "a RAM block of the block list expected, found "
	 "'pc.rom'",
	 true, start_ok, h_page_unknown},
	{"continue-first",
	 "a RAM block name expected, found CONTINUE (0x20) "
	 "on the first page",
	 true, start_ok, h_continue},
	{"fill-byte-1",
	 "zero page of 'pc.ram' at 0x1000: fill byte 0 "
	 "expected, found 0x01",
	 true, start_ok, h_fill},
	{"xbzrle", "XBZRLE (0x40) page found", true, start_ok, h_xbzrle},
	{"compress-page", "COMPRESS_PAGE (0x100) page found", true, start_ok,
	 h_compress},
	{"hook", "HOOK (0x80) found", true, start_ok, h_hook},
	{"full", "FULL (0x01) found", true, start_ok, h_full},
	{"unknown-flag",
	 "RAM record flags ZERO, MEM_SIZE, PAGE, EOS or "
	 "MULTIFD_FLUSH expected, found 0x400",
	 true, start_ok, h_unknown_flag},
	{"start-sync",
	 "a RAM channel sync point found: the source sends "
	 "pages on 2 channels; call ms_ram_set_channels()",
	 false, h_start_sync, NULL},
	{"part-sync", "a RAM channel sync point (round 1) found", false,
	 start_ok, h_part_sync},
	{"part-block-list",
	 "found a block list (MEM_SIZE, 0x04) after the "
	 "START section",
	 true, start_ok, h_part_list},
};

#define NHOSTILE (sizeof(hostiles) / sizeof(hostiles[0]))

/* The whole stream of a case: header, START, PART, EOF. */
static void hostile_stream(const struct hostile *h, struct bytes *b)
{
	b->n = 0;
	b_be32(b, MS_QEMU_MAGIC);
	b_be32(b, MS_QEMU_VERSION);
	b_section(b, MS_REC_START);
	h->start(b);
	b_footer(b);
	if (h->part) {
		b_section(b, MS_REC_PART);
		h->part(b);
		b_footer(b);
	}
	b_u8(b, MS_REC_EOF);
}

static const char *srcdir(void)
{
	const char *d = getenv("top_srcdir");

	return d && *d ? d : "..";
}

/* The copy under tests/data/ram/, which must hold the same bytes (and is
 * written when MS_RAM_WRITE_DATA names the directory to write to). */
static void hostile_file(const struct hostile *h, const struct bytes *b,
			 char *path, size_t len)
{
	const char *out = getenv("MS_RAM_WRITE_DATA");
	struct bytes *f = malloc(sizeof(*f));
	FILE *fp;

	if (out && *out) {
		snprintf(path, len, "%s/%s.mig", out, h->name);
		fp = fopen(path, "wb");
		ck_assert_ptr_nonnull(fp);
		ck_assert_uint_eq(fwrite(b->d, 1, b->n, fp), b->n);
		ck_assert_int_eq(fclose(fp), 0);
	}
	snprintf(path, len, "%s/tests/data/ram/%s.mig", srcdir(), h->name);
	fp = fopen(path, "rb");
	ck_assert_msg(fp != NULL,
		      "%s missing (MS_RAM_WRITE_DATA=DIR writes it)", path);
	f->n = fread(f->d, 1, sizeof(f->d), fp);
	fclose(fp);
	ck_assert_msg(f->n == b->n && !memcmp(f->d, b->d, b->n),
		      "%s differs from what the test builds", path);
	free(f);
}

static struct pair *hostile_dst(void)
{
	struct pair *pr = calloc(1, sizeof(*pr));

	pr->len[0] = 4 * PS;
	pr->len[1] = 2 * PS;
	pr->dst = xram(0);
	pr->dmem[0] = xalloc(4 * PS);
	pr->dmem[1] = xalloc(2 * PS);
	xblock(pr->dst, "pc.ram", pr->dmem[0], 4 * PS, 0, 0);
	xblock(pr->dst, "vga.vram", pr->dmem[1], 2 * PS, 0, 0);
	return pr;
}

static void hostile_dst_free(struct pair *pr)
{
	ms_ram_free(pr->dst);
	free(pr->dmem[0]);
	free(pr->dmem[1]);
	free(pr);
}

/* migstream-dump verify's exit status on @path, or -1 if it cannot run
 * here (a cross build). */
static int dump_verify(const char *path)
{
	const char *bd = getenv("top_builddir");
	char cmd[2048];
	int st;

	if (getenv("MS_RUN_WRAPPER"))
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "%s/tools/migstream-dump verify -q '%s' >/dev/null 2>&1",
		 bd && *bd ? bd : ".", path);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_ram_hostile)
{
	const struct hostile *h = &hostiles[_i];
	struct bytes *b = malloc(sizeof(*b));
	struct pair *pr = hostile_dst();
	char msg[1024], path[1024];
	int ret, mode, st;

	hostile_stream(h, b);
	hostile_file(h, b, path, sizeof(path));
	ret = load_mem(pr->dst, b->d, b->n, msg, sizeof(msg));
	ck_assert_msg(ret < 0, "%s: loaded", h->name);
	expect_msg(msg, h->want);
	expect_msg(msg, "section 0 'ram'");
	expect_msg(msg, "offset 0x");
	/* Fed in any chunks: the same refusal. */
	for (mode = 0; mode < 3; mode++) {
		ret = load_fed(pr->dst, b->d, b->n, mode, msg, sizeof(msg));
		ck_assert_msg(ret < 0, "%s: fed load passed", h->name);
		expect_msg(msg, h->want);
	}
	st = dump_verify(path);
	if (st >= 0 && h->grammar)
		ck_assert_msg(st == 1, "%s: migstream-dump verify exited %d",
			      h->name, st);
	else if (st >= 0)
		ck_assert_msg(st == 0, "%s: migstream-dump verify exited %d",
			      h->name, st);
	hostile_dst_free(pr);
	free(b);
}
END_TEST

/* The case streams without their fault load: the harness is right. */
START_TEST(test_ram_hostile_control)
{
	static const struct hostile good = {"ok", "", false, start_ok, NULL};
	struct bytes *b = malloc(sizeof(*b));
	struct pair *pr = hostile_dst();
	char msg[1024];

	hostile_stream(&good, b);
	ck_assert_msg(!load_mem(pr->dst, b->d, b->n, msg, sizeof(msg)), "%s",
		      msg);
	ck_assert_int_eq(ms_ram_load_check(pr->dst), -ENODATA);
	expect_msg(ms_ram_errmsg(pr->dst),
		   "'ram' END section (stop-and-copy) expected, found START "
		   "and 0 PART sections only");
	hostile_dst_free(pr);
	free(b);
}
END_TEST

/* A small stream cut at every byte: refused (or, before the RAM's END,
 * short of ms_ram_load_check()), never a crash; fed whole in 1-byte and
 * random chunks (a section may run again from its first byte): equal. */
START_TEST(test_ram_truncated_and_fed)
{
	struct pair pr;
	struct saved sv;
	char msg[1024];
	size_t n;
	int mode, ret;

	pair_init(&pr, 0);
	pr.len[0] = 5 * PS;
	ck_assert_int_eq(ms_ram_resize(pr.src, 0, 5 * PS), 0);
	ck_assert_int_eq(ms_ram_resize(pr.dst, 0, 5 * PS), 0);
	sv = save_mem(pr.src, MS_PROFILE_QEMU, 0, 3);
	for (n = 0; n < sv.len; n++) {
		ret = load_mem(pr.dst, sv.data, n, msg, sizeof(msg));
		ck_assert_msg(ret < 0 || ms_ram_load_check(pr.dst) < 0,
			      "cut at %zu of %zu: loaded", n, sv.len);
	}
	for (mode = 0; mode < 4; mode++) {
		memset(pr.dmem[0], 0x5a, pr.len[0]);
		ret = load_fed(pr.dst, sv.data, sv.len, mode, msg, sizeof(msg));
		ck_assert_msg(!ret, "mode %d: %s", mode, msg);
		ck_assert_int_eq(ms_ram_load_check(pr.dst), 0);
		pair_check(&pr);
	}
	saved_free(&sv);
	/* The native profile fed likewise. */
	sv = save_mem(pr.src, MS_PROFILE_NATIVE, 1, 3);
	for (mode = 0; mode < 2; mode++) {
		memset(pr.dmem[1], 0x5a, pr.len[1]);
		ret = load_fed(pr.dst, sv.data, sv.len, mode, msg, sizeof(msg));
		ck_assert_msg(!ret, "mode %d: %s", mode, msg);
		pair_check(&pr);
	}
	saved_free(&sv);
	pair_free(&pr);
}
END_TEST

/*
 * migstream-dump reads what ms_ram writes: the same page counts, RAM
 * bytes and blocks.
 */

/* The number after "KEY": in @json (the first one), or UINT64_MAX. */
static uint64_t json_num(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(json, pat);
	return p ? strtoull(p + strlen(pat), NULL, 10) : UINT64_MAX;
}

static char *run_out(const char *cmd)
{
	FILE *fp = popen(cmd, "r");
	char *out = calloc(1, 65536);
	size_t n;

	ck_assert_ptr_nonnull(fp);
	n = fread(out, 1, 65535, fp);
	out[n] = 0;
	ck_assert_int_eq(pclose(fp), 0);
	return out;
}

static void file_equals(const char *path, const uint8_t *mem, uint64_t len)
{
	uint8_t *buf = malloc((size_t)len + 1);
	FILE *fp = fopen(path, "rb");
	size_t n;

	ck_assert_msg(fp != NULL, "%s missing", path);
	n = fread(buf, 1, (size_t)len + 1, fp);
	fclose(fp);
	ck_assert_uint_eq(n, len);
	ck_assert_msg(!memcmp(buf, mem, (size_t)len), "%s differs", path);
	free(buf);
}

START_TEST(test_ram_dump_agrees)
{
	static const ms_profile profiles[] = {MS_PROFILE_QEMU,
					      MS_PROFILE_NATIVE};
	const char *bd = getenv("top_builddir");
	char dir[] = "/tmp/check_ram.XXXXXX", path[1200], cmd[4096];
	struct pair pr;
	struct saved sv;
	ms_ram_stats st;
	char *out;
	FILE *fp;
	int c;

	if (getenv("MS_RUN_WRAPPER"))
		return; /* a cross build: the tool runs under an emulator */
	bd = bd && *bd ? bd : ".";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	for (c = 0; c < 2; c++) {
		pair_init(&pr, 0);
		sv = save_mem(pr.src, profiles[c], c, 3);
		ms_ram_get_stats(pr.src, &st);
		snprintf(path, sizeof(path), "%s/s.mig", dir);
		fp = fopen(path, "wb");
		ck_assert_uint_eq(fwrite(sv.data, 1, sv.len, fp), sv.len);
		fclose(fp);
		snprintf(cmd, sizeof(cmd),
			 "%s/tools/migstream-dump info --json %s", bd, path);
		out = run_out(cmd);
		ck_assert_uint_eq(json_num(out, "normal"),
				  st.pages - st.zero_pages);
		ck_assert_uint_eq(json_num(out, "zero"), st.zero_pages);
		ck_assert_uint_eq(json_num(out, "total"), 84 * PS);
		ck_assert_uint_eq(json_num(out, "pc.ram"), pr.len[0]);
		ck_assert_uint_eq(json_num(out, "/rom@etc/acpi/tables"),
				  pr.len[1]);
		free(out);
		snprintf(cmd, sizeof(cmd),
			 "%s/tools/migstream-dump extract %s/x %s 2>/dev/null "
			 "&& "
			 "echo ok",
			 bd, dir, path);
		out = run_out(cmd);
		ck_assert_str_eq(out, "ok\n");
		free(out);
		snprintf(path, sizeof(path), "%s/x/pc.ram", dir);
		file_equals(path, pr.smem[0], pr.len[0]);
		snprintf(path, sizeof(path),
			 "%s/x/%%2From@etc%%2Facpi%%2Ftables", dir);
		file_equals(path, pr.smem[1], pr.len[1]);
		snprintf(path, sizeof(path), "%s/x/pc.bios", dir);
		file_equals(path, pr.smem[2], pr.len[2]);
		snprintf(cmd, sizeof(cmd), "rm -rf %s/x %s/s.mig", dir, dir);
		ck_assert_int_eq(system(cmd), 0);
		saved_free(&sv);
		pair_free(&pr);
	}
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static Suite *ram_suite(void)
{
	Suite *s = suite_create("ram");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_ram_opts);
	tcase_add_test(tc, test_ram_add_block_refusals);
	tcase_add_test(tc, test_ram_resize_channels_refusals);
	tcase_add_test(tc, test_ram_is_zero);
	tcase_add_test(tc, test_ram_mark_dirty);
	tcase_add_test(tc, test_ram_dirty_log);
	tcase_add_test(tc, test_ram_mem_roundtrip);
	tcase_add_loop_test(tc, test_ram_fd_roundtrip, 0, 4);
	tcase_add_test(tc, test_ram_lost_bits);
	tcase_add_test(tc, test_ram_zeroed);
	tcase_add_test(tc, test_ram_resize_migrate);
	tcase_add_test(tc, test_ram_qemu_bytes);
	tcase_add_test(tc, test_ram_dirty_log_precopy);
	tcase_add_test(tc, test_ram_dirty_log_sync_fails);
	tcase_add_loop_test(tc, test_ram_hostile, 0, (int)NHOSTILE);
	tcase_add_test(tc, test_ram_hostile_control);
	tcase_add_test(tc, test_ram_truncated_and_fed);
	tcase_add_test(tc, test_ram_dump_agrees);
	suite_add_tcase(s, tc);
	return s;
}

MS_TEST_MAIN(ram_suite)
