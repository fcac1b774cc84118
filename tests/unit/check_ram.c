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

/* A whole save of @ram into memory: setup, @rounds iterations (at most),
 * complete. */
static struct saved save_mem(ms_ram *ram, ms_profile profile, int level,
			     int rounds)
{
	ms_codec_opts co = codec_of(profile, level);
	ms_save_opts so = {.version = MS_SAVE_OPTS_VERSION, .codec = &co};
	ms_registry *reg = NULL;
	ms_stream *s = NULL;
	ms_save *sv = NULL;
	const uint8_t *d;
	struct saved out;
	int i;

	ck_assert_int_eq(ms_registry_new(&reg, NULL), 0);
	ck_assert_int_eq(ms_ram_register(ram, reg, NULL), 0);
	ck_assert_int_eq(ms_stream_new_mem(&s, 0, NULL), 0);
	ck_assert_int_eq(ms_save_new(&sv, reg, s, &so), 0);
	ck_assert_msg(!ms_save_setup(sv), "%s", ms_save_errmsg(sv));
	for (i = 0; i < rounds; i++)
		if (ms_save_iterate(sv) <= 0)
			break;
	ck_assert_msg(!ms_save_complete(sv), "%s", ms_save_errmsg(sv));
	ms_save_free(sv);
	ck_assert_int_eq(ms_stream_mem_view(s, &d, &out.len), 0);
	out.data = malloc(out.len);
	memcpy(out.data, d, out.len);
	ms_stream_close(s);
	ms_registry_free(reg);
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
	suite_add_tcase(s, tc);
	return s;
}

MS_TEST_MAIN(ram_suite)
