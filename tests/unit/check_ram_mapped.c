/* SPDX-License-Identifier: MIT */
/*
 * Mapped snapshot files, on real files in a temporary directory: round
 * trips in both restore modes with 1, 2 and 4 threads, a running guest
 * over 4 precopy rounds (the file stays bounded by the RAM), pages that
 * become zero (holes), truncation at every region boundary and at random
 * offsets, trailing bytes, a saving process killed at random points, bit
 * flips in every part of the file, RAM that does not match, the streaming
 * loader's refusal of a mapped device stream, refused calls, and the
 * hostile files kept in tests/data/mapped/ (gzip'd, written by this test
 * when MS_MAPPED_WRITE_DATA names a directory).
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "ms-test.h"
#include "ram-impl.h"

#define PS   4096u
#define NBLK 3
#define MIB  ((uint64_t)1 << 20)

static const char *const names[NBLK] = {"pc.ram", "empty", "vga.vram"};
/* pc.ram is not a whole number of stripes (512 pages). */
static const uint64_t lens[NBLK] = {5 * MIB + 3 * PS, 0, 1 * MIB};

static void expect_msg(const char *got, const char *want)
{
	ck_assert_msg(strstr(got, want), "message '%s' lacks '%s'", got, want);
}

static char tmp_dir[256];

static const char *tdir(void)
{
	const char *t = getenv("TMPDIR");

	if (!tmp_dir[0]) {
		snprintf(tmp_dir, sizeof(tmp_dir), "%s/msmapXXXXXX",
			 t && *t ? t : "/tmp");
		ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
	}
	return tmp_dir;
}

/* The end of a test: its (empty) directory removed. */
static void tdone(void)
{
	if (tmp_dir[0])
		ck_assert_int_eq(rmdir(tmp_dir), 0);
	tmp_dir[0] = 0;
}

static void tpath(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tdir(), name);
}

/* A device with 300 bytes of state. */
struct dev {
	uint8_t state[300];
	uint8_t got[300];
	bool loaded;
};

static int dev_save(void *opaque, ms_stream *s)
{
	struct dev *d = opaque;

	return ms_put_buffer(s, d->state, sizeof(d->state));
}

static int dev_load(void *opaque, ms_stream *s, uint32_t v, uint8_t type)
{
	struct dev *d = opaque;

	(void)v;
	(void)type;
	d->loaded = !ms_get_buffer(s, d->got, sizeof(d->got));
	return ms_stream_error(s);
}

static const ms_handler_ops dev_ops = {.version = MS_HANDLER_OPS_VERSION,
				       .save_state = dev_save,
				       .load = dev_load};

struct vm {
	ms_ram *ram;
	uint8_t *mem[NBLK + 1], *base[NBLK + 1];
	uint64_t len[NBLK + 1];
	size_t maplen[NBLK + 1];
	struct dev dev;
	ms_registry *reg;
};

static void vm_init(struct vm *v, const uint64_t *len, size_t page_size,
		    const char *const *nm, unsigned n)
{
	ms_ram_opts o = {.version = MS_RAM_OPTS_VERSION,
			 .page_size = page_size};
	unsigned i;

	memset(v, 0, sizeof(*v));
	ck_assert_uint_le(n, NBLK + 1);
	ck_assert_int_eq(ms_ram_new(&v->ram, &o), 0);
	for (i = 0; i < n; i++) {
		ms_ram_block b = {.version = MS_RAM_BLOCK_VERSION,
				  .idstr = nm[i],
				  .used_length = len[i]};

		v->len[i] = len[i];
		v->maplen[i] = len[i] ? (size_t)len[i] : PS;
		/* Aligned to 64 KiB, for every page size. */
		v->maplen[i] += 65536;
		v->base[i] = mmap(NULL, v->maplen[i], PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ck_assert_ptr_ne(v->base[i], MAP_FAILED);
		v->mem[i] =
			v->base[i] + (65536 - (uintptr_t)v->base[i] % 65536);
		b.host = len[i] ? v->mem[i] : NULL;
		ck_assert_msg(!ms_ram_add_block(v->ram, &b, NULL), "%s",
			      ms_ram_errmsg(v->ram));
	}
	ck_assert_int_eq(ms_registry_new(&v->reg, NULL), 0);
	ck_assert_int_eq(ms_ram_register(v->ram, v->reg, NULL), 0);
	ck_assert_int_eq(ms_registry_add(v->reg, "dev", 0, 1, 1, &dev_ops,
					 &v->dev, NULL),
			 0);
}

static void vm_std(struct vm *v)
{
	vm_init(v, lens, 0, names, NBLK);
}

static void vm_free(struct vm *v)
{
	unsigned i;

	ms_registry_free(v->reg);
	ms_ram_free(v->ram);
	for (i = 0; i < NBLK + 1; i++)
		if (v->base[i])
			munmap(v->base[i], v->maplen[i]);
}

/* Half the pages zero, in runs; the others random. */
static void fill_half(struct vm *v, uint64_t seed)
{
	unsigned i;
	uint64_t p;

	for (i = 0; i < NBLK; i++)
		for (p = 0; p < v->len[i] / PS; p++)
			if ((p / 3 + seed) % 2)
				ms_test_fill(v->mem[i] + p * PS, PS,
					     seed * 100000 + i * 10000 + p);
			else
				memset(v->mem[i] + p * PS, 0, PS);
	ms_test_fill(v->dev.state, sizeof(v->dev.state), seed + 7);
}

/* The crash test saves with fsync(). */
static bool with_fsync;

static ms_ram_mapped_opts mopts(unsigned threads, ms_ram_restore_mode mode)
{
	ms_ram_mapped_opts o = {.version = MS_RAM_MAPPED_OPTS_VERSION,
				.threads = threads,
				.mode = mode,
				.no_fsync = !with_fsync};
	return o;
}

/* Hooks of a save between rounds (the running guest). */
typedef void (*round_fn)(struct vm *v, int round, void *arg);

/* A mapped save of @v into @path with @rounds precopy rounds. */
static void save_file(struct vm *v, const char *path, unsigned threads,
		      int rounds, round_fn fn, void *arg)
{
	ms_ram_mapped_opts o = mopts(threads, MS_RAM_RESTORE_MMAP);
	ms_stream *dev = NULL;
	ms_save *sv = NULL;
	int fd, i;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_msg(!ms_ram_mapped_save_begin(v->ram, fd, &o, &dev), "%s",
		      ms_ram_errmsg(v->ram));
	ck_assert_int_eq(ms_save_new(&sv, v->reg, dev, NULL), 0);
	ck_assert_msg(!ms_save_setup(sv), "%s", ms_save_errmsg(sv));
	for (i = 0; i < rounds; i++) {
		if (fn)
			fn(v, i, arg);
		ck_assert_msg(ms_save_iterate(sv) >= 0, "%s",
			      ms_save_errmsg(sv));
	}
	if (fn)
		fn(v, -1, arg);
	ck_assert_msg(!ms_save_complete(sv), "%s", ms_save_errmsg(sv));
	ms_save_free(sv);
	ck_assert_msg(!ms_ram_mapped_save_commit(v->ram), "%s",
		      ms_ram_errmsg(v->ram));
	ck_assert_int_eq(close(fd), 0);
}

/* Restore @path into @v and load its device state: 0 or the error, the
 * message in @msg. */
static int restore_file(struct vm *v, const char *path, unsigned threads,
			ms_ram_restore_mode mode, char *msg, size_t msglen)
{
	ms_ram_mapped_opts o = mopts(threads, mode);
	ms_stream *dev = NULL;
	ms_load *ld = NULL;
	int fd, ret;

	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ret = ms_ram_mapped_restore(v->ram, fd, &o, &dev);
	snprintf(msg, msglen, "%s", ms_ram_errmsg(v->ram));
	if (!ret) {
		ck_assert_int_eq(ms_load_new(&ld, v->reg, NULL), 0);
		ret = ms_load_run(ld, dev);
		snprintf(msg, msglen, "%s", ms_load_errmsg(ld));
		ms_load_free(ld);
		if (!ret) {
			ret = ms_ram_load_check(v->ram);
			snprintf(msg, msglen, "%s", ms_ram_errmsg(v->ram));
		}
	}
	close(fd);
	return ret;
}

static void same_ram(const struct vm *a, const struct vm *b)
{
	unsigned i;

	for (i = 0; i < NBLK; i++)
		ck_assert_msg(!a->len[i] ||
				      !memcmp(a->mem[i], b->mem[i], a->len[i]),
			      "block %u differs", i);
	ck_assert_msg(b->dev.loaded, "device state not loaded");
	ck_assert_int_eq(memcmp(a->dev.state, b->dev.got, sizeof(b->dev.got)),
			 0);
}

static uint8_t *read_whole(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *d;
	int fd = open(path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	*len = (size_t)st.st_size;
	d = malloc(*len ? *len : 1);
	ck_assert_int_eq(pread(fd, d, *len, 0), (ssize_t)*len);
	close(fd);
	return d;
}

static void write_whole(const char *path, const uint8_t *d, size_t len)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, d, len, 0), (ssize_t)len);
	close(fd);
}

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* The file's regions: entry @i's field at @off. */
static uint64_t ent(const uint8_t *f, unsigned i, unsigned off)
{
	return be64(f + 4096 + 512 * i + off);
}

/*
 * Round trips.
 */

START_TEST(test_mapped_roundtrip)
{
	static const unsigned thr[3] = {1, 2, 4};
	ms_ram_restore_mode mode =
		_i % 2 ? MS_RAM_RESTORE_READ : MS_RAM_RESTORE_MMAP;
	unsigned threads = thr[_i / 2];
	struct vm src, dst;
	ms_ram_stats st;
	char path[300], msg[1024];
	struct stat fs;

	vm_std(&src);
	vm_std(&dst);
	fill_half(&src, (uint64_t)_i + 1);
	tpath(path, sizeof(path), "rt.msm");
	save_file(&src, path, threads, 1, NULL, NULL);
	ms_ram_get_stats(src.ram, &st);
	ck_assert_uint_eq(st.pages, (lens[0] + lens[2]) / PS);
	ck_assert_uint_gt(st.zero_pages, 0);
	ck_assert_uint_eq(st.bytes, (st.pages - st.zero_pages) * PS);
	ck_assert_int_eq(stat(path, &fs), 0);
	ck_assert_msg(
		!restore_file(&dst, path, threads, mode, msg, sizeof(msg)),
		"%s", msg);
	same_ram(&src, &dst);
	ck_assert_int_eq(ms_ram_load_check(dst.ram), 0);
	ms_ram_get_stats(dst.ram, &st);
	ck_assert_uint_eq(st.pages, (lens[0] + lens[2]) / PS);
	vm_free(&src);
	vm_free(&dst);
	unlink(path);
	tdone();
}
END_TEST

/* The guest: a thread writing random pages of pc.ram, marking them. */
struct guest {
	struct vm *v;
	atomic_bool stop;
	pthread_t tid;
	uint64_t seed;
};

static void *guest_main(void *arg)
{
	struct guest *g = arg;
	uint64_t st = g->seed, p, n = g->v->len[0] / PS;

	while (!atomic_load(&g->stop)) {
		p = ms_test_rand(&st) % n;
		if (p % 5 == 0)
			memset(g->v->mem[0] + p * PS, 0, PS);
		else
			ms_test_fill(g->v->mem[0] + p * PS, PS,
				     ms_test_rand(&st));
		ms_ram_mark_dirty(g->v->ram, 0, p * PS, PS);
	}
	return NULL;
}

static void guest_rounds(struct vm *v, int round, void *arg)
{
	struct guest *g = arg;

	if (round == 0)
		ck_assert_int_eq(pthread_create(&g->tid, NULL, guest_main, g),
				 0);
	/* Each round has pages to send again (the guest may lag). */
	while (round > 0 && ms_ram_dirty_pages(v->ram) < 20)
		usleep(100);
	if (round == -1) {
		atomic_store(&g->stop, true);
		pthread_join(g->tid, NULL);
	}
}

START_TEST(test_mapped_running_guest)
{
	struct vm src, dst;
	struct guest g = {.seed = 99};
	char path[300], msg[1024];
	struct stat fs;
	uint64_t ram = lens[0] + lens[2], meta, dev;
	ms_ram_stats st;
	uint8_t *f;
	size_t flen;

	vm_std(&src);
	vm_std(&dst);
	fill_half(&src, 5);
	g.v = &src;
	tpath(path, sizeof(path), "run.msm");
	save_file(&src, path, 2, 4, guest_rounds, &g);
	ms_ram_get_stats(src.ram, &st);
	ck_assert_uint_eq(st.rounds, 5);
	ck_assert_uint_gt(st.resent, 0);
	ck_assert_int_eq(stat(path, &fs), 0);
	f = read_whole(path, &flen);
	dev = be64(f + 40);
	free(f);
	/* Header and table, then per block a bitmap and a checksum table,
	 * each region aligned to 1 MiB. */
	meta = MIB + NBLK * 2 * MIB;
	ck_assert_uint_le((uint64_t)fs.st_size, ram + dev + meta);
	ck_assert_uint_le((uint64_t)fs.st_blocks * 512, ram + dev + meta);
	ck_assert_msg(!restore_file(&dst, path, 2, MS_RAM_RESTORE_READ, msg,
				    sizeof(msg)),
		      "%s", msg);
	same_ram(&src, &dst);
	vm_free(&src);
	vm_free(&dst);
	unlink(path);
	tdone();
}
END_TEST

/* Pages 8..15 of pc.ram non-zero in round 1, zero from round 2 on. */
static void zero_later(struct vm *v, int round, void *arg)
{
	(void)arg;
	if (round != 0)
		return;
	memset(v->mem[0] + 8 * PS, 0, 8 * PS);
	ms_ram_mark_dirty(v->ram, 0, 8 * PS, 8 * PS);
}

START_TEST(test_mapped_zero_later)
{
	struct vm src, dst;
	char path[300], msg[1024];
	uint64_t pages, p;
	uint8_t *f;
	size_t flen;

	vm_std(&src);
	vm_std(&dst);
	fill_half(&src, 1);
	for (p = 0; p < 32; p++)
		ms_test_fill(src.mem[0] + p * PS, PS, p + 3);
	tpath(path, sizeof(path), "zl.msm");
	save_file(&src, path, 1, 2, zero_later, NULL);
	f = read_whole(path, &flen);
	pages = ent(f, 0, 280);
	for (p = 8 * PS; p < 16 * PS; p++)
		ck_assert_msg(!f[pages + p],
			      "byte 0x%llx of the page region "
			      "is not zero",
			      (unsigned long long)p);
	ck_assert_uint_ne(f[pages + 7 * PS + 100] | f[pages + 7 * PS + 101] |
				  f[pages + 7 * PS + 102],
			  0);
#if defined(SEEK_DATA) && defined(__linux__)
	{
		int fd = open(path, O_RDONLY);
		off_t d;

		ck_assert_int_ge(fd, 0);
		d = lseek(fd, (off_t)(pages + 8 * PS), SEEK_DATA);
		/* A file system without holes reports data everywhere. */
		if (d != (off_t)(pages + 8 * PS))
			ck_assert_int_ge(d, (off_t)(pages + 16 * PS));
		close(fd);
	}
#endif
	free(f);
	ck_assert_msg(!restore_file(&dst, path, 1, MS_RAM_RESTORE_READ, msg,
				    sizeof(msg)),
		      "%s", msg);
	same_ram(&src, &dst);
	vm_free(&src);
	vm_free(&dst);
	unlink(path);
	tdone();
}
END_TEST

/*
 * Damaged files.
 */

/* A saved file of the standard VM, its bytes in @f. */
static uint8_t *std_file(const char *path, size_t *flen, struct vm *src)
{
	vm_std(src);
	fill_half(src, 3);
	save_file(src, path, 2, 1, NULL, NULL);
	return read_whole(path, flen);
}

/* Restore @d (@len bytes) in @mode: the error, its message in @msg. */
static int try_bytes(const uint8_t *d, size_t len, ms_ram_restore_mode mode,
		     char *msg, size_t msglen, struct vm *dst)
{
	char path[300];
	int ret;

	tpath(path, sizeof(path), "try.msm");
	write_whole(path, d, len);
	vm_std(dst);
	ret = restore_file(dst, path, 2, mode, msg, msglen);
	unlink(path);
	return ret;
}

static void refused_at(const uint8_t *f, size_t len, const char *want)
{
	char msg[1024];
	struct vm dst;
	int ret =
		try_bytes(f, len, MS_RAM_RESTORE_READ, msg, sizeof(msg), &dst);

	ck_assert_msg(ret == -EBADMSG || ret == -ENODATA,
		      "%zu bytes: refusal expected, got %d (%s)", len, ret,
		      msg);
	expect_msg(msg, "offset 0x");
	if (want)
		expect_msg(msg, want);
	vm_free(&dst);
}

START_TEST(test_mapped_truncated)
{
	uint64_t cut[64], st = 12345, D, L;
	unsigned n = 0, i, k;
	char path[300];
	struct vm src;
	size_t flen;
	uint8_t *f, *g;

	tpath(path, sizeof(path), "tr.msm");
	f = std_file(path, &flen, &src);
	D = be64(f + 32);
	L = be64(f + 40);
	ck_assert_uint_eq(D + L, flen);
	cut[n++] = 4096;
	cut[n++] = 4096 + NBLK * 512;
	for (i = 0; i < NBLK; i++) {
		uint64_t np = ent(f, i, 256) / PS;

		cut[n++] = ent(f, i, 264);
		cut[n++] = ent(f, i, 264) + (np + 7) / 8;
		cut[n++] = ent(f, i, 272);
		cut[n++] = ent(f, i, 272) + 4 * np;
		cut[n++] = ent(f, i, 280);
		cut[n++] = ent(f, i, 280) + np * PS;
	}
	cut[n++] = D;
	cut[n++] = D + L - 1;
	for (i = 0; i < n; i++)
		if (cut[i] < flen)
			refused_at(f, (size_t)cut[i], "truncated");
	for (k = 0; k < 50; k++)
		refused_at(f, 1 + (size_t)(ms_test_rand(&st) % (flen - 1)),
			   NULL);
	g = malloc(flen + 1);
	memcpy(g, f, flen);
	g[flen] = 0;
	refused_at(g, flen + 1, "trailing bytes");
	free(g);
	free(f);
	vm_free(&src);
	unlink(path);
	tdone();
}
END_TEST

START_TEST(test_mapped_bitflips)
{
	struct {
		const char *what;
		uint64_t off;
		const char *want;
	} fl[6];
	char path[300], msg[1024];
	struct vm src, dst;
	uint64_t D, L, page;
	size_t flen;
	uint8_t *f;
	unsigned i, m;
	int ret;

	tpath(path, sizeof(path), "bf.msm");
	f = std_file(path, &flen, &src);
	D = be64(f + 32);
	L = be64(f + 40);
	/* A non-zero page of pc.ram: page 3 ((3 / 3 + 3) % 2 == 0 is zero;
	 * page 0 is (0 + 3) % 2 == 1, non-zero). */
	page = ent(f, 0, 280) + 100;
	fl[0].what = "header", fl[0].off = 20, fl[0].want = "header_crc";
	fl[1].what = "table", fl[1].off = 4096 + 260, fl[1].want = "table_crc";
	fl[2].what = "device record", fl[2].off = D + L / 2, fl[2].want = "";
	fl[3].what = "bitmap", fl[3].off = ent(f, 0, 264),
	fl[3].want = "meta_crc";
	fl[4].what = "checksum table", fl[4].off = ent(f, 2, 272) + 6,
	fl[4].want = "meta_crc";
	fl[5].what = "page", fl[5].off = page, fl[5].want = "CRC-32";
	for (i = 0; i < 6; i++) {
		for (m = 0; m < 2; m++) {
			f[fl[i].off] ^= 0x10;
			ret = try_bytes(f, flen,
					m ? MS_RAM_RESTORE_READ
					  : MS_RAM_RESTORE_MMAP,
					msg, sizeof(msg), &dst);
			f[fl[i].off] ^= 0x10;
			if (i == 5 && !m) {
				/* mmap mode does not check pages: the
				 * restore succeeds with that byte flipped. */
				ck_assert_msg(!ret, "%s", msg);
				ck_assert_uint_eq(dst.mem[0][100],
						  src.mem[0][100] ^ 0x10);
				src.mem[0][100] ^= 0x10;
				same_ram(&src, &dst);
				src.mem[0][100] ^= 0x10;
			} else {
				ck_assert_msg(ret < 0,
					      "a flip in the %s not caught",
					      fl[i].what);
				expect_msg(msg, fl[i].want);
				expect_msg(msg, "offset 0x");
			}
			vm_free(&dst);
		}
	}
	free(f);
	vm_free(&src);
	unlink(path);
	tdone();
}
END_TEST

/* Restore the standard file into a VM of other blocks. */
static void wrong_ram(const char *path, const uint64_t *len,
		      const char *const *nm, unsigned n, size_t page_size,
		      const char *want)
{
	char msg[1024];
	struct vm dst;
	int ret;

	vm_init(&dst, len, page_size, nm, n);
	ret = restore_file(&dst, path, 1, MS_RAM_RESTORE_READ, msg,
			   sizeof(msg));
	ck_assert_int_eq(ret, -EINVAL);
	expect_msg(msg, want);
	vm_free(&dst);
}

START_TEST(test_mapped_wrong_ram)
{
	static const char *const other[NBLK] = {"pc.ram", "empty", "vga"};
	static const char *const more[NBLK + 1] = {"pc.ram", "empty",
						   "vga.vram", "extra"};
	const uint64_t small[NBLK] = {4 * MIB, 0, 1 * MIB};
	const uint64_t four[NBLK + 1] = {lens[0], 0, lens[2], PS};
	const uint64_t even[NBLK] = {6 * MIB, 0, 1 * MIB};
	char path[300];
	struct vm src;
	size_t flen;
	uint8_t *f;

	tpath(path, sizeof(path), "wr.msm");
	f = std_file(path, &flen, &src);
	wrong_ram(path, small, names, NBLK, 0, "of used length 0x400000");
	wrong_ram(path, lens, names, 2, 0,
		  "'vga.vram' (0x100000 bytes), "
		  "which this side does not have");
	wrong_ram(path, four, more, NBLK + 1, 0, "found no 'extra'");
	wrong_ram(path, lens, other, NBLK, 0, "which this side does not have");
	wrong_ram(path, even, names, NBLK, 8192, "page size 8192");
	free(f);
	vm_free(&src);
	unlink(path);
	tdone();
}
END_TEST

START_TEST(test_mapped_streaming_refuses)
{
	char path[300];
	struct vm src, dst;
	ms_stream *s = NULL;
	ms_load *ld = NULL;
	uint64_t D, L;
	size_t flen;
	uint8_t *f;

	tpath(path, sizeof(path), "sr.msm");
	f = std_file(path, &flen, &src);
	D = be64(f + 32);
	L = be64(f + 40);
	vm_std(&dst);
	ck_assert_int_eq(ms_stream_new_mem_reader(&s, f + D, (size_t)L, NULL),
			 0);
	ck_assert_int_eq(ms_load_new(&ld, dst.reg, NULL), 0);
	ck_assert_int_lt(ms_load_run(ld, s), 0);
	expect_msg(ms_load_errmsg(ld),
		   "the pages of this stream are in a mapped snapshot file's "
		   "regions: restore it with ms_ram_mapped_restore()");
	ck_assert_int_eq(ms_ram_load_check(dst.ram), -ENODATA);
	ms_load_free(ld);
	ms_stream_close(s);
	free(f);
	vm_free(&src);
	vm_free(&dst);
	unlink(path);
	tdone();
}
END_TEST

START_TEST(test_mapped_refusals)
{
	ms_ram_mapped_opts o = mopts(1, MS_RAM_RESTORE_MMAP);
	char path[300];
	ms_stream *dev = NULL;
	struct vm v;
	int fd, p[2];

	vm_std(&v);
	tpath(path, sizeof(path), "rf.msm");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ms_ram_mapped_save_commit(v.ram), -EINVAL);
	expect_msg(ms_ram_errmsg(v.ram), "ms_ram_mapped_save_begin() expected");
	o.version = 7;
	ck_assert_int_eq(ms_ram_mapped_save_begin(v.ram, fd, &o, &dev),
			 -EINVAL);
	expect_msg(ms_ram_errmsg(v.ram), "MS_RAM_MAPPED_OPTS_VERSION");
	o = mopts(65, MS_RAM_RESTORE_MMAP);
	ck_assert_int_eq(ms_ram_mapped_restore(v.ram, fd, &o, &dev), -EINVAL);
	expect_msg(ms_ram_errmsg(v.ram), "threads 0 to MS_RAM_MAX_CHANNELS");
	ck_assert_int_eq(ms_ram_mapped_save_begin(v.ram, fd, NULL, NULL),
			 -EINVAL);
	expect_msg(ms_ram_errmsg(v.ram), "device stream expected");
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(ms_ram_mapped_restore(v.ram, p[0], NULL, &dev),
			 -EINVAL);
	expect_msg(ms_ram_errmsg(v.ram), "regular file");
	ck_assert_int_eq(ms_ram_set_channels(v.ram, p, 1, NULL), 0);
	ck_assert_int_eq(ms_ram_mapped_save_begin(v.ram, fd, NULL, &dev),
			 -EINVAL);
	expect_msg(ms_ram_errmsg(v.ram), "no RAM channels expected");
	ck_assert_int_eq(ms_ram_set_channels(v.ram, NULL, 0, NULL), 0);
	/* Begun, not completed: the commit is refused, the file incomplete. */
	ck_assert_int_eq(ms_ram_mapped_save_begin(v.ram, fd, NULL, &dev), 0);
	ck_assert_int_eq(ms_ram_mapped_save_commit(v.ram), -EINVAL);
	expect_msg(ms_ram_errmsg(v.ram), "ms_save_complete() succeeded");
	ck_assert_int_eq(ms_ram_mapped_restore(v.ram, fd, NULL, &dev),
			 -ENODATA);
	expect_msg(ms_ram_errmsg(v.ram),
		   "offset 0xc: mapped snapshot: incomplete: its save did not "
		   "commit");
	close(p[0]);
	close(p[1]);
	close(fd);
	vm_free(&v);
	unlink(path);
	tdone();
}
END_TEST

/*
 * A saving process killed at random points.
 */

/* Round r rewrites 50 pages of pc.ram. */
static void crash_rounds(struct vm *v, int round, void *arg)
{
	uint64_t p;

	(void)arg;
	if (round < 0)
		return;
	for (p = 0; p < 50; p++) {
		uint64_t pg = (uint64_t)round * 50 + p;

		ms_test_fill(v->mem[0] + pg * PS, PS, pg + 1000u * round);
		ms_ram_mark_dirty(v->ram, 0, pg * PS, PS);
	}
}

/* A child that saves into @path; it writes a byte to @ready when its
 * save begins. */
static pid_t crash_child(const char *path, int ready)
{
	pid_t pid = fork();
	struct vm v;
	char c = 1;

	ck_assert_int_ge(pid, 0);
	if (pid)
		return pid;
	with_fsync = true;
	vm_std(&v);
	fill_half(&v, 11);
	if (write(ready, &c, 1) != 1)
		_exit(2);
	save_file(&v, path, 2, 3, crash_rounds, NULL);
	_exit(0);
}

/* Start a child, wait until its save begins. */
static pid_t crash_start(const char *path, int *p)
{
	pid_t pid = crash_child(path, p[1]);
	char c;

	ck_assert_int_eq(read(p[0], &c, 1), 1);
	return pid;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

START_TEST(test_mapped_crash)
{
	struct vm want, dst;
	char path[300], msg[1024];
	uint64_t st = 777;
	double t0, full;
	int status, k, ret, done = 0, refused = 0, p[2];
	struct stat fs;
	pid_t pid;

	vm_std(&want);
	fill_half(&want, 11);
	for (k = 0; k < 3; k++)
		crash_rounds(&want, k, NULL);
	tpath(path, sizeof(path), "crash.msm");
	ck_assert_int_eq(pipe(p), 0);
	pid = crash_start(path, p);
	t0 = now_us();
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	full = now_us() - t0;
	for (k = 0; k < 20; k++) {
		unlink(path);
		pid = crash_start(path, p);
		usleep((useconds_t)(ms_test_rand(&st) %
				    (uint64_t)(full * 1.1 + 1)));
		kill(pid, SIGKILL);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		if (stat(path, &fs))
			continue;
		vm_std(&dst);
		ret = restore_file(&dst, path, 1, MS_RAM_RESTORE_READ, msg,
				   sizeof(msg));
		if (!ret) {
			same_ram(&want, &dst);
			done++;
		} else if (fs.st_size < 8) {
			ck_assert_int_eq(ret, -EBADMSG);
			refused++;
		} else {
			ck_assert_msg(ret == -ENODATA, "%d: %s", ret, msg);
			expect_msg(msg, "incomplete: its save did not commit");
			refused++;
		}
		vm_free(&dst);
	}
	close(p[0]);
	close(p[1]);
	fprintf(stderr, "crash: %d restored, %d refused, %d without a file\n",
		done, refused, 20 - done - refused);
	vm_free(&want);
	unlink(path);
	tdone();
}
END_TEST

/*
 * Hostile files, kept in tests/data/mapped/ (gzip'd: they are mostly
 * zeros), each refused with its message.
 */

static uint32_t crc(const uint8_t *p, size_t n)
{
	return (uint32_t)crc32(0L, p, (uInt)n);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

/* The CRCs of block 0's tables, the table and the header, recomputed. */
static void fix_crcs(uint8_t *f)
{
	uint64_t np = ent(f, 0, 256) / PS, k, present = 0;
	uint8_t *e = f + 4096;
	uint32_t c;

	c = (uint32_t)crc32(0L, f + ent(f, 0, 264), (uInt)((np + 7) / 8));
	c = (uint32_t)crc32(c, f + ent(f, 0, 272), (uInt)(4 * np));
	for (k = 0; k < (np + 7) / 8; k++)
		present += (uint64_t)__builtin_popcount(f[ent(f, 0, 264) + k]);
	put32(e + 288, c);
	put64(e + 292, present);
	put32(f + 56, crc(e, 512));
	put32(f + 60, crc(f, 60));
}

struct hostile {
	const char *name;
	int err;
	const char *want;
};

static const struct hostile hostiles[] = {
	{"incomplete", -ENODATA, "offset 0xc: mapped snapshot: incomplete"},
	{"header-crc", -EBADMSG, "offset 0x3c: mapped snapshot: header_crc"},
	{"align", -EBADMSG, "offset 0x18: mapped snapshot: align 0x100000"},
	{"missing-page", -EBADMSG, "every one of its 4 pages saved"},
	{"overlap", -EBADMSG, "aligned regions in order, not overlapping"},
	{"page-crc", -EBADMSG, "page 2: CRC-32"},
	{"truncated", -EBADMSG, "truncated: a file of file_size"},
};
#define NHOSTILE (sizeof(hostiles) / sizeof(hostiles[0]))

/* A file of one block "ram" of 4 pages and no device: small once gzip'd. */
static uint8_t *tiny_file(size_t *flen)
{
	static const char *const nm[1] = {"ram"};
	const uint64_t len[1] = {4 * PS};
	char path[300];
	struct vm v;
	uint8_t *f;
	size_t p;

	vm_init(&v, len, 0, nm, 1);
	for (p = 0; p < 4 * PS; p++)
		v.mem[0][p] = (uint8_t)(p * 7 / 5 + p / PS);
	tpath(path, sizeof(path), "tiny.msm");
	save_file(&v, path, 1, 0, NULL, NULL);
	f = read_whole(path, flen);
	unlink(path);
	vm_free(&v);
	return f;
}

/* Hostile file @i made from the tiny file @f; its length. */
static size_t make_hostile(unsigned i, uint8_t *f, size_t flen)
{
	const char *n = hostiles[i].name;

	if (!strcmp(n, "incomplete")) {
		f[15] &= 0xfe;
		put32(f + 60, crc(f, 60));
	} else if (!strcmp(n, "header-crc")) {
		f[47] ^= 1;
	} else if (!strcmp(n, "align")) {
		put64(f + 24, 4096);
		put32(f + 60, crc(f, 60));
	} else if (!strcmp(n, "missing-page")) {
		f[ent(f, 0, 264)] &= 0xfb;
		fix_crcs(f);
	} else if (!strcmp(n, "overlap")) {
		put64(f + 4096 + 280, ent(f, 0, 264));
		fix_crcs(f);
	} else if (!strcmp(n, "page-crc")) {
		f[ent(f, 0, 280) + 2 * PS + 17] ^= 0x80;
	} else {
		flen = (size_t)be64(f + 32) + 5;
	}
	return flen;
}

static void gz_write(const char *path, const uint8_t *d, size_t len)
{
	gzFile gz = gzopen(path, "wb9");

	ck_assert_ptr_nonnull(gz);
	ck_assert_int_eq(gzwrite(gz, d, (unsigned)len), (int)len);
	ck_assert_int_eq(gzclose(gz), Z_OK);
}

static uint8_t *gz_read(const char *path, size_t *len)
{
	gzFile gz = gzopen(path, "rb");
	size_t cap = 1 << 20, n = 0;
	uint8_t *d = malloc(cap);
	int k;

	ck_assert_msg(gz != NULL,
		      "%s missing (MS_MAPPED_WRITE_DATA=DIR writes it)", path);
	while ((k = gzread(gz, d + n, (unsigned)(cap - n))) > 0) {
		n += (size_t)k;
		if (n == cap)
			d = realloc(d, cap *= 2);
	}
	ck_assert_int_eq(k, 0);
	gzclose(gz);
	*len = n;
	return d;
}

START_TEST(test_mapped_hostile)
{
	const struct hostile *h = &hostiles[_i];
	const char *out = getenv("MS_MAPPED_WRITE_DATA");
	const char *src = getenv("top_srcdir");
	char path[512], msg[1024];
	size_t flen, hlen, slen;
	uint8_t *f = tiny_file(&flen), *s;
	static const char *const nm[1] = {"ram"};
	const uint64_t len[1] = {4 * PS};
	struct vm dst;
	int ret;

	hlen = make_hostile((unsigned)_i, f, flen);
	if (out && *out) {
		snprintf(path, sizeof(path), "%s/%s.msm.gz", out, h->name);
		gz_write(path, f, hlen);
	}
	snprintf(path, sizeof(path), "%s/tests/data/mapped/%s.msm.gz",
		 src && *src ? src : "..", h->name);
	s = gz_read(path, &slen);
	ck_assert_msg(slen == hlen && !memcmp(s, f, hlen),
		      "%s differs from what the test builds", path);
	tpath(path, sizeof(path), "hostile.msm");
	write_whole(path, s, slen);
	vm_init(&dst, len, 0, nm, 1);
	ret = restore_file(&dst, path, 1, MS_RAM_RESTORE_READ, msg,
			   sizeof(msg));
	ck_assert_msg(ret == h->err, "%s: %d expected, found %d (%s)", h->name,
		      h->err, ret, msg);
	expect_msg(msg, h->want);
	vm_free(&dst);
	unlink(path);
	free(s);
	free(f);
	tdone();
}
END_TEST

static Suite *mapped_suite(void)
{
	Suite *s = suite_create("ram_mapped");
	TCase *tc = tcase_create("mapped");

	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_mapped_roundtrip, 0, 6);
	tcase_add_test(tc, test_mapped_running_guest);
	tcase_add_test(tc, test_mapped_zero_later);
	tcase_add_test(tc, test_mapped_truncated);
	tcase_add_test(tc, test_mapped_bitflips);
	tcase_add_test(tc, test_mapped_wrong_ram);
	tcase_add_test(tc, test_mapped_streaming_refuses);
	tcase_add_test(tc, test_mapped_refusals);
	tcase_add_test(tc, test_mapped_crash);
	tcase_add_loop_test(tc, test_mapped_hostile, 0, (int)NHOSTILE);
	suite_add_tcase(s, tc);
	return s;
}

MS_TEST_MAIN(mapped_suite)
