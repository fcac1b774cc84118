/* SPDX-License-Identifier: MIT */
/*
 * Mapped snapshot files (docs/FORMAT.md, "Mapped snapshot files"): the
 * layout, the writer threads of a save's rounds, the commit, and the
 * checks and the two ways of placing the pages of a restore.
 *
 * The file: a 4096-byte header, a table of 512-byte block entries, then
 * per block its bitmap, its checksum table and its pages at fixed
 * offsets (regions aligned to MS_RAM_MAPPED_ALIGN), then the device
 * stream.  A round's writer threads take stripes of MS__RAM_STRIPE_PAGES
 * pages from a shared counter; a stripe is a whole number of dirty words
 * and of bitmap bytes, so no two threads touch the same word or byte.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ram-impl.h"

#define HDR_SIZE       4096u
#define ENT_SIZE       512u
#define META_ALIGN     4096u
#define FLAG_COMPLETE  0x1u
#define MAPPED_VERSION 1u
/* Bytes one reader thread takes at a time. */
#define READ_CHUNK ((uint64_t)1 << 20)
#define A	   MS_RAM_MAPPED_ALIGN

static const char magic[8] = {'M', 'S', 'M', 'A', 'P', 'P', 'E', 'D'};
static const uint8_t zeros[65536];

/* One block of the file, as laid out (save) or as read (restore). */
struct mblock {
	uint64_t used, npages;
	uint64_t bitmap_off, crc_off, pages_off;
	uint8_t *bitmap;
	uint32_t *crc;
	unsigned long *nonzero;
	unsigned reg;
	char idstr[MS_COUNTED_STRING_MAX + 1];
};

struct ms__ram_mapped {
	const ms_allocator *a;
	int fd;
	unsigned threads;
	bool no_fsync;
	size_t page_size;
	unsigned page_bits;
	unsigned nblk;
	struct mblock *b;
	uint64_t *first; /* first stripe (save) or chunk (restore) of block i */
	uint64_t njobs;
	uint64_t D, L;
	uint8_t *meta; /* header and table, HDR_SIZE + nblk * ENT_SIZE bytes */
	ms_stream *dev;
	uint64_t dev_pos;
	int dev_err;
	uint64_t dev_err_off;
	uint32_t zero_crc;
	ms_ram_stats rst;
	/* A round's or a read's shared state. */
	atomic_ullong next;
	atomic_int failed;
	pthread_mutex_t lock;
	int err;
	uint64_t err_off;
	unsigned err_blk;
	char err_what[160];
};

/* One thread of a round or a read. */
struct worker {
	ms_ram *ram;
	struct ms__ram_mapped *m;
	ms_ram_stats st;
	int kind; /* the pending run: 0 none, 1 write, 2 punch */
	unsigned run_blk;
	uint64_t run_first, run_n;
	pthread_t tid;
};

static inline uint64_t round_up(uint64_t v, uint64_t to)
{
	return (v + to - 1) / to * to;
}

/* A refused call or a refused file: ram_errmsg() says why, prefixed
 * "offset 0x...: " when @off is not MS__NO_OFFSET. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int
mfail(ms_ram *ram, int err, uint64_t off, const char *fmt, ...)
{
	va_list ap;

	memset(&ram->err, 0, sizeof(ram->err));
	va_start(ap, fmt);
	ms__error_vset(&ram->err, err, -EBADMSG, off, MS__NO_SECTION, NULL, fmt,
		       ap);
	va_end(ap);
	ram->err.code = 0;
	return err;
}

/* A worker's failure: the first one is kept, the others stop. */
static int wfail(struct ms__ram_mapped *m, int err, uint64_t off, unsigned blk,
		 const char *what)
{
	pthread_mutex_lock(&m->lock);
	if (!m->err) {
		m->err = err;
		m->err_off = off;
		m->err_blk = blk;
		snprintf(m->err_what, sizeof(m->err_what), "%s", what);
	}
	pthread_mutex_unlock(&m->lock);
	atomic_store(&m->failed, 1);
	return err;
}

static int pwrite_all(int fd, const void *buf, uint64_t len, uint64_t off,
		      uint64_t *fail_off)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		size_t k =
			len > ((size_t)1 << 30) ? (size_t)1 << 30 : (size_t)len;

		n = pwrite(fd, p, k, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*fail_off = off;
			return n < 0 ? -errno : -EIO;
		}
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

static int pread_all(int fd, void *buf, uint64_t len, uint64_t off,
		     uint64_t *fail_off)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len) {
		size_t k =
			len > ((size_t)1 << 30) ? (size_t)1 << 30 : (size_t)len;

		n = pread(fd, p, k, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*fail_off = off;
			return n < 0 ? -errno : -ENODATA;
		}
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* Zeros over [off, off + len): a hole where the file system punches one,
 * else written zeros. */
static int punch(int fd, uint64_t off, uint64_t len, uint64_t *fail_off)
{
	uint64_t k;
	int ret;

#if defined(FALLOC_FL_PUNCH_HOLE) && defined(FALLOC_FL_KEEP_SIZE)
	if (!fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		       (off_t)off, (off_t)len))
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS) {
		*fail_off = off;
		return -errno;
	}
#endif
	for (; len; off += k, len -= k) {
		k = len < sizeof(zeros) ? len : sizeof(zeros);
		ret = pwrite_all(fd, zeros, k, off, fail_off);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * The object.
 */

static void map_free(struct ms__ram_mapped *m)
{
	unsigned i;

	if (!m)
		return;
	if (m->dev)
		ms_stream_close(m->dev);
	for (i = 0; m->b && i < m->nblk; i++) {
		ms__free(m->a, m->b[i].bitmap);
		ms__free(m->a, m->b[i].crc);
		ms__free(m->a, m->b[i].nonzero);
	}
	ms__free(m->a, m->b);
	ms__free(m->a, m->first);
	ms__free(m->a, m->meta);
	pthread_mutex_destroy(&m->lock);
	ms__free(m->a, m);
}

void ms__ram_mapped_release(ms_ram *ram)
{
	map_free(ram->map);
	ram->map = NULL;
	ram->map_save = false;
	ram->map_restored = false;
}

static const char *opts_check(const ms_ram_mapped_opts *o)
{
	if (!o)
		return NULL;
	if (o->version != MS_RAM_MAPPED_OPTS_VERSION)
		return "ms_ram_mapped_opts: version MS_RAM_MAPPED_OPTS_VERSION "
		       "(1) expected, found another";
	if (o->threads > MS_RAM_MAX_CHANNELS)
		return "ms_ram_mapped_opts: threads 0 to MS_RAM_MAX_CHANNELS "
		       "(64) expected, found more";
	if (o->mode != MS_RAM_RESTORE_MMAP && o->mode != MS_RAM_RESTORE_READ)
		return "ms_ram_mapped_opts: mode MS_RAM_RESTORE_MMAP or "
		       "MS_RAM_RESTORE_READ expected, found another";
	return NULL;
}

/* Common checks of save_begin and restore; a new state in @out. */
static int map_new(ms_ram *ram, const char *fn, int fd,
		   const ms_ram_mapped_opts *o, ms_stream **device,
		   struct ms__ram_mapped **out)
{
	const ms_allocator *a = ram->have_alloc ? &ram->alloc : NULL;
	struct ms__ram_mapped *m;
	const char *why = opts_check(o);
	struct stat st;

	if (why)
		return mfail(ram, -EINVAL, MS__NO_OFFSET, "%s: %s", fn, why);
	if (!device)
		return mfail(ram, -EINVAL, MS__NO_OFFSET,
			     "%s: a place for the device stream expected, "
			     "found NULL",
			     fn);
	if (ram->active)
		return mfail(ram, -EINVAL, MS__NO_OFFSET,
			     "%s: no save or load running expected, found one",
			     fn);
	if (ram->nch)
		return mfail(ram, -EINVAL, MS__NO_OFFSET,
			     "%s: no RAM channels expected (a mapped file's "
			     "pages go by threads), found %u set",
			     fn, ram->nch);
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode))
		return mfail(ram, -EINVAL, MS__NO_OFFSET,
			     "%s: a descriptor of a regular file expected, "
			     "found %d (%s)",
			     fn, fd,
			     fd < 0 ? "negative" : "not a regular file");
	ms__ram_mapped_release(ram);
	m = ms__malloc(a, sizeof(*m));
	if (!m)
		return mfail(ram, -ENOMEM, MS__NO_OFFSET, "%s: out of memory",
			     fn);
	memset(m, 0, sizeof(*m));
	m->a = a;
	m->fd = fd;
	m->threads = o && o->threads ? o->threads : 1;
	m->no_fsync = o && o->no_fsync;
	m->page_size = ram->page_size;
	m->page_bits = ram->page_bits;
	m->zero_crc = ms__crc32(0, zeros, ram->page_size);
	pthread_mutex_init(&m->lock, NULL);
	*out = m;
	return 0;
}

/* Arrays of @n blocks and the job prefix sums. */
static int map_blocks(struct ms__ram_mapped *m, unsigned n)
{
	m->nblk = n;
	m->b = ms__malloc(m->a, (n ? n : 1) * sizeof(*m->b));
	m->first = ms__malloc(m->a, (n + 1) * sizeof(*m->first));
	m->meta = ms__malloc(m->a, HDR_SIZE + (size_t)n * ENT_SIZE);
	if (!m->b || !m->first || !m->meta)
		return -ENOMEM;
	memset(m->b, 0, (n ? n : 1) * sizeof(*m->b));
	memset(m->meta, 0, HDR_SIZE + (size_t)n * ENT_SIZE);
	return 0;
}

/* A block's bitmap and checksum table in memory (and, saving, the bits
 * of the pages the file holds non-zero). */
static int mblock_tables(struct ms__ram_mapped *m, struct mblock *mb, bool save)
{
	size_t nb = (size_t)((mb->npages + 7) / 8), nw;

	nw = (size_t)((mb->npages + MS__RAM_WORD_BITS - 1) / MS__RAM_WORD_BITS);
	mb->bitmap = ms__malloc(m->a, nb ? nb : 1);
	mb->crc = ms__malloc(m->a, mb->npages ? (size_t)mb->npages * 4 : 4);
	if (save)
		mb->nonzero = ms__malloc(m->a, (nw ? nw : 1) * sizeof(long));
	if (!mb->bitmap || !mb->crc || (save && !mb->nonzero))
		return -ENOMEM;
	memset(mb->bitmap, 0, nb ? nb : 1);
	memset(mb->crc, 0, mb->npages ? (size_t)mb->npages * 4 : 4);
	if (save)
		memset(mb->nonzero, 0, (nw ? nw : 1) * sizeof(long));
	return 0;
}

/* The job (stripe or chunk) @j: its block, by binary search. */
static unsigned job_block(const struct ms__ram_mapped *m, uint64_t j)
{
	unsigned lo = 0, hi = m->nblk;

	while (hi - lo > 1) {
		unsigned mid = lo + (hi - lo) / 2;

		if (m->first[mid] <= j)
			lo = mid;
		else
			hi = mid;
	}
	while (lo + 1 < m->nblk && m->first[lo + 1] <= j)
		lo++;
	return lo;
}

/* Run @fn on m->threads threads (the calling one among them) and join. */
static void run_workers(ms_ram *ram, struct ms__ram_mapped *m, struct worker *w,
			void *(*fn)(void *))
{
	unsigned i, n = m->threads;

	atomic_store(&m->next, 0);
	atomic_store(&m->failed, 0);
	m->err = 0;
	for (i = 0; i < n; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].ram = ram;
		w[i].m = m;
	}
	for (i = 1; i < n; i++)
		if (pthread_create(&w[i].tid, NULL, fn, &w[i]))
			break;
	n = i;
	fn(&w[0]);
	for (i = 1; i < n; i++)
		pthread_join(w[i].tid, NULL);
	for (i = n; i < m->threads; i++)
		w[i].m = NULL;
}

/*
 * Save.
 */

static void put_header(struct ms__ram_mapped *m, bool complete)
{
	uint8_t *h = m->meta;

	memset(h, 0, HDR_SIZE);
	memcpy(h, magic, sizeof(magic));
	ms__store_be32(h + 8, MAPPED_VERSION);
	ms__store_be32(h + 12, complete ? FLAG_COMPLETE : 0);
	ms__store_be32(h + 16, (uint32_t)m->page_size);
	ms__store_be32(h + 20, m->nblk);
	ms__store_be64(h + 24, A);
	ms__store_be64(h + 32, m->D);
	ms__store_be64(h + 40, m->L);
	ms__store_be64(h + 48, m->D + m->L);
	ms__store_be32(h + 56,
		       ms__crc32(0, h + HDR_SIZE, (size_t)m->nblk * ENT_SIZE));
	ms__store_be32(h + 60, ms__crc32(0, h, 60));
}

static void put_entry(struct ms__ram_mapped *m, unsigned i, uint32_t meta_crc,
		      uint64_t present)
{
	uint8_t *e = m->meta + HDR_SIZE + (size_t)i * ENT_SIZE;
	const struct mblock *mb = &m->b[i];
	size_t len = strlen(mb->idstr);

	memset(e, 0, ENT_SIZE);
	e[0] = (uint8_t)len;
	memcpy(e + 1, mb->idstr, len);
	ms__store_be64(e + 256, mb->used);
	ms__store_be64(e + 264, mb->bitmap_off);
	ms__store_be64(e + 272, mb->crc_off);
	ms__store_be64(e + 280, mb->pages_off);
	ms__store_be32(e + 288, meta_crc);
	ms__store_be64(e + 292, present);
}

/* Offsets of every region, D, and the tables in memory. */
static int save_layout(ms_ram *ram, struct ms__ram_mapped *m)
{
	uint64_t cur, bm, ct;
	unsigned i;

	if (map_blocks(m, ram->nblk))
		return -ENOMEM;
	cur = round_up(HDR_SIZE + (uint64_t)ram->nblk * ENT_SIZE, A);
	m->first[0] = 0;
	for (i = 0; i < ram->nblk; i++) {
		struct mblock *mb = &m->b[i];

		memcpy(mb->idstr, ram->blk[i].idstr, ram->blk[i].idlen + 1);
		mb->used = ram->blk[i].used;
		mb->npages = mb->used >> ram->page_bits;
		bm = round_up((mb->npages + 7) / 8, META_ALIGN);
		ct = round_up(mb->npages * 4, META_ALIGN);
		mb->bitmap_off = cur;
		mb->crc_off = cur + bm;
		mb->pages_off = round_up(mb->crc_off + ct, A);
		cur = mb->pages_off + round_up(mb->used, A);
		m->first[i + 1] =
			m->first[i] + (mb->npages + MS__RAM_STRIPE_PAGES - 1) /
					      MS__RAM_STRIPE_PAGES;
		if (mblock_tables(m, mb, true))
			return -ENOMEM;
		put_entry(m, i, 0, 0);
	}
	m->njobs = m->first[ram->nblk];
	m->D = cur;
	return 0;
}

/* The device stream's sink: pwrite() at D + its position. */
static ssize_t dev_writev(void *opaque, const struct iovec *iov, int iovcnt)
{
	struct ms__ram_mapped *m = opaque;
	uint64_t off = m->D + m->dev_pos;
	ssize_t n;

	(void)iovcnt;
	n = pwrite(m->fd, iov[0].iov_base, iov[0].iov_len, (off_t)off);
	if (n < 0) {
		if (errno == EINTR)
			return -EINTR;
		m->dev_err = -errno;
		m->dev_err_off = off;
		return -errno;
	}
	m->dev_pos += (uint64_t)n;
	return n ? n : -EIO;
}

/* The device stream's source: pread() within [D, D + L). */
static ssize_t dev_read(void *opaque, void *buf, size_t len)
{
	struct ms__ram_mapped *m = opaque;
	ssize_t n;

	if (m->dev_pos >= m->L)
		return 0;
	if (len > m->L - m->dev_pos)
		len = (size_t)(m->L - m->dev_pos);
	n = pread(m->fd, buf, len, (off_t)(m->D + m->dev_pos));
	if (n < 0)
		return errno == EINTR ? -EINTR : -errno;
	m->dev_pos += (uint64_t)n;
	return n;
}

static const ms_stream_ops dev_write_ops = {.version = MS_STREAM_OPS_VERSION,
					    .writev = dev_writev};
static const ms_stream_ops dev_read_ops = {.version = MS_STREAM_OPS_VERSION,
					   .read = dev_read};

static int dev_stream(struct ms__ram_mapped *m, ms_stream_mode mode)
{
	ms_stream_opts so = {.version = MS_STREAM_OPTS_VERSION,
			     .allocator = m->a,
			     .buffer_size = 256u * 1024u};

	return ms_stream_new_custom(&m->dev,
				    mode == MS_STREAM_WRITER ? &dev_write_ops
							     : &dev_read_ops,
				    m, mode, &so);
}

int ms_ram_mapped_save_begin(ms_ram *ram, int fd,
			     const ms_ram_mapped_opts *opts, ms_stream **device)
{
	struct ms__ram_mapped *m = NULL;
	uint64_t off = 0;
	int ret;

	if (!ram)
		return -EINVAL;
	ret = map_new(ram, "ms_ram_mapped_save_begin", fd, opts, device, &m);
	if (ret)
		return ret;
	if (save_layout(ram, m) || dev_stream(m, MS_STREAM_WRITER)) {
		map_free(m);
		return mfail(ram, -ENOMEM, MS__NO_OFFSET,
			     "ms_ram_mapped_save_begin: out of memory for the "
			     "tables of %u blocks",
			     ram->nblk);
	}
	put_header(m, false);
	ret = ftruncate(fd, 0) ? -errno : 0;
	if (!ret)
		ret = pwrite_all(fd, m->meta,
				 HDR_SIZE + (uint64_t)m->nblk * ENT_SIZE, 0,
				 &off);
	if (!ret && ftruncate(fd, (off_t)m->D))
		ret = -errno;
	if (ret) {
		map_free(m);
		return mfail(ram, ret, off,
			     "ms_ram_mapped_save_begin: the header and block "
			     "table written and the file sized to 0x%llx "
			     "expected, found %s",
			     (unsigned long long)m->D, ms_strerror(ret));
	}
	ram->map = m;
	ram->map_save = true;
	*device = m->dev;
	return 0;
}

int ms__ram_mapped_setup(ms_ram *ram, ms_stream *s)
{
	struct ms__ram_mapped *m = ram->map;
	unsigned i;

	if (ram->nch)
		return ms_stream_set_error(s, -EINVAL,
					   "mapped save: no RAM channels "
					   "expected, found %u set",
					   ram->nch);
	if (m->nblk != ram->nblk)
		return ms_stream_set_error(s, -EINVAL,
					   "mapped save: the %u RAM blocks of "
					   "ms_ram_mapped_save_begin() "
					   "expected, found %u",
					   m->nblk, ram->nblk);
	for (i = 0; i < ram->nblk; i++)
		if (ram->blk[i].used != m->b[i].used)
			return ms_stream_set_error(
				s, -EINVAL,
				"mapped save: RAM block '%s' of used length "
				"0x%llx (as at ms_ram_mapped_save_begin()) "
				"expected, found 0x%llx",
				ram->blk[i].idstr,
				(unsigned long long)m->b[i].used,
				(unsigned long long)ram->blk[i].used);
	atomic_store(&m->next, 0);
	return 0;
}

/* Write or punch the pending run of pages. */
static int flush_run(struct worker *w)
{
	struct ms__ram_mapped *m = w->m;
	const struct mblock *mb = &m->b[w->run_blk];
	uint64_t off = mb->pages_off + (w->run_first << m->page_bits);
	uint64_t len = w->run_n << m->page_bits, fo = off;
	int ret = 0, kind = w->kind;

	w->kind = 0;
	if (kind == 1)
		ret = pwrite_all(m->fd,
				 w->ram->blk[w->run_blk].host +
					 (w->run_first << m->page_bits),
				 len, off, &fo);
	else if (kind == 2)
		ret = punch(m->fd, off, len, &fo);
	if (ret)
		return wfail(m, ret, fo, w->run_blk,
			     kind == 1 ? "pwrite() of its pages"
				       : "zeroing (hole punch) of its pages");
	return 0;
}

static int add_run(struct worker *w, int kind, unsigned b, uint64_t page)
{
	int ret;

	if (w->kind == kind && w->run_blk == b &&
	    w->run_first + w->run_n == page) {
		w->run_n++;
		return 0;
	}
	ret = flush_run(w);
	w->kind = kind;
	w->run_blk = b;
	w->run_first = page;
	w->run_n = 1;
	return ret;
}

/* One dirty page: its checksum, bitmap bit and place in a run. */
static int put_page(struct worker *w, unsigned b, uint64_t page)
{
	struct ms__ram_mapped *m = w->m;
	struct ms__ram_block *blk = &w->ram->blk[b];
	struct mblock *mb = &m->b[b];
	const uint8_t *p = blk->host + (page << m->page_bits);
	size_t wd = (size_t)(page / MS__RAM_WORD_BITS);
	unsigned long bit = 1ul << (page % MS__RAM_WORD_BITS);
	bool zero = ms_buffer_is_zero(p, m->page_size);

	w->st.pages++;
	if (blk->sent[wd] & bit)
		w->st.resent++;
	blk->sent[wd] |= bit;
	mb->bitmap[page / 8] |= (uint8_t)(1u << (page % 8));
	if (zero) {
		w->st.zero_pages++;
		mb->crc[page] = m->zero_crc;
		if (!(mb->nonzero[wd] & bit))
			return 0;
		mb->nonzero[wd] &= ~bit;
		return add_run(w, 2, b, page);
	}
	w->st.bytes += m->page_size;
	mb->crc[page] = ms__crc32(0, p, m->page_size);
	mb->nonzero[wd] |= bit;
	return add_run(w, 1, b, page);
}

/* The dirty pages of pages [first, end) of block @b. */
static int write_stripe(struct worker *w, unsigned b, uint64_t first,
			uint64_t end)
{
	struct ms__ram_block *blk = &w->ram->blk[b];
	unsigned long bits, mask;
	uint64_t base;
	size_t wd;
	int ret;

	for (base = first; base < end; base += MS__RAM_WORD_BITS) {
		wd = (size_t)(base / MS__RAM_WORD_BITS);
		if (end - base >= MS__RAM_WORD_BITS) {
			bits = atomic_exchange_explicit(&blk->dirty[wd], 0ul,
							memory_order_acq_rel);
		} else {
			mask = (1ul << (end - base)) - 1;
			bits = atomic_fetch_and_explicit(&blk->dirty[wd], ~mask,
							 memory_order_acq_rel) &
			       mask;
		}
		while (bits) {
			ret = put_page(w, b,
				       base + (unsigned)__builtin_ctzl(bits));
			if (ret)
				return ret;
			bits &= bits - 1;
		}
	}
	return flush_run(w);
}

static void *writer_main(void *arg)
{
	struct worker *w = arg;
	struct ms__ram_mapped *m = w->m;
	uint64_t j, first, end;
	unsigned b;

	while (!atomic_load(&m->failed)) {
		j = atomic_fetch_add(&m->next, 1);
		if (j >= m->njobs)
			break;
		b = job_block(m, j);
		first = (j - m->first[b]) * MS__RAM_STRIPE_PAGES;
		end = first + MS__RAM_STRIPE_PAGES;
		if (end > m->b[b].npages)
			end = m->b[b].npages;
		if (write_stripe(w, b, first, end))
			break;
	}
	return NULL;
}

int ms__ram_mapped_round(ms_ram *ram, ms_stream *s)
{
	struct worker w[MS_RAM_MAX_CHANNELS];
	struct ms__ram_mapped *m = ram->map;
	unsigned i;

	run_workers(ram, m, w, writer_main);
	for (i = 0; i < m->threads; i++)
		if (w[i].m)
			ms__ram_stats_add(ram, &w[i].st);
	if (m->err)
		return ms_stream_set_error(
			s, m->err,
			"mapped file: the %s of RAM block '%s' at file "
			"offset 0x%llx expected to succeed, found %s",
			m->err_what, m->b[m->err_blk].idstr,
			(unsigned long long)m->err_off, ms_strerror(m->err));
	return 0;
}

/* Every block's bitmap and checksum table into the file, their CRC and
 * count into the table. */
static int commit_tables(ms_ram *ram, struct ms__ram_mapped *m, uint64_t *off)
{
	uint8_t *buf = NULL;
	unsigned i;
	uint64_t k, present;
	int ret = 0;

	for (i = 0; i < m->nblk && !ret; i++) {
		struct mblock *mb = &m->b[i];
		size_t nb = (size_t)((mb->npages + 7) / 8);
		uint32_t c;

		buf = ms__malloc(m->a, mb->npages ? (size_t)mb->npages * 4 : 4);
		if (!buf)
			return -ENOMEM;
		for (k = 0; k < mb->npages; k++)
			ms__store_be32(buf + 4 * k, mb->crc[k]);
		for (k = 0, present = 0; k < nb; k++)
			present += (unsigned)__builtin_popcount(mb->bitmap[k]);
		c = ms__crc32(0, mb->bitmap, nb);
		c = ms__crc32(c, buf, (size_t)mb->npages * 4);
		put_entry(m, i, c, present);
		ret = pwrite_all(m->fd, mb->bitmap, nb, mb->bitmap_off, off);
		if (!ret)
			ret = pwrite_all(m->fd, buf, mb->npages * 4,
					 mb->crc_off, off);
		ms__free(m->a, buf);
	}
	(void)ram;
	return ret;
}

static int sync_file(struct ms__ram_mapped *m)
{
	if (m->no_fsync || !fsync(m->fd))
		return 0;
	return -errno;
}

int ms_ram_mapped_save_commit(ms_ram *ram)
{
	struct ms__ram_mapped *m;
	uint64_t off = MS__NO_OFFSET;
	int ret;

	if (!ram)
		return -EINVAL;
	m = ram->map;
	if (!m || !ram->map_save)
		return mfail(ram, -EINVAL, MS__NO_OFFSET,
			     "ms_ram_mapped_save_commit: a mapped save begun "
			     "with ms_ram_mapped_save_begin() expected, found "
			     "none");
	if (!ram->ended)
		return mfail(ram, -EINVAL, MS__NO_OFFSET,
			     "ms_ram_mapped_save_commit: a save whose "
			     "ms_save_complete() succeeded expected, found its "
			     "RAM END not written");
	ret = ms_stream_flush(m->dev);
	if (ret)
		return mfail(ram, ret, m->dev_err ? m->dev_err_off : m->D,
			     "mapped file: the device stream flushed expected, "
			     "found %s",
			     ms_stream_errmsg(m->dev));
	m->L = m->dev_pos;
	ret = ftruncate(m->fd, (off_t)(m->D + m->L)) ? -errno : 0;
	if (!ret)
		ret = commit_tables(ram, m, &off);
	put_header(m, false);
	if (!ret)
		ret = pwrite_all(m->fd, m->meta,
				 HDR_SIZE + (uint64_t)m->nblk * ENT_SIZE, 0,
				 &off);
	if (!ret)
		ret = sync_file(m);
	put_header(m, true);
	if (!ret)
		ret = pwrite_all(m->fd, m->meta, HDR_SIZE, 0, &off);
	if (!ret)
		ret = sync_file(m);
	if (ret)
		return mfail(ram, ret, off,
			     "mapped file: the tables and the COMPLETE header "
			     "written and synced expected, found %s",
			     ms_strerror(ret));
	ram->map_save = false;
	return 0;
}

/*
 * Restore: the checks, in the order of docs/FORMAT.md.
 */

static bool all_zero(const uint8_t *p, size_t n)
{
	return ms_buffer_is_zero(p, n);
}

/* Magic, version, COMPLETE: what a file of @size bytes shows of them. */
static int check_ident(ms_ram *ram, const uint8_t *h, uint64_t size)
{
	if (size < 8 || memcmp(h, magic, 8))
		return mfail(ram, -EBADMSG, 0,
			     "mapped snapshot: the magic 'MSMAPPED' expected, "
			     "found %s",
			     size < 8 ? "a file shorter than 8 bytes"
				      : "other bytes: not a mapped snapshot");
	if (size < 12 || ms__load_be32(h + 8) != MAPPED_VERSION)
		return mfail(ram, -EBADMSG, size < 12 ? size : 8,
			     "mapped snapshot: version 1 expected, found %s",
			     size < 12 ? "the file's end" : "another version");
	if (size < 16 || !(ms__load_be32(h + 12) & FLAG_COMPLETE))
		return mfail(ram, -ENODATA, size < 16 ? size : 12,
			     "mapped snapshot: incomplete: its save did not "
			     "commit (the COMPLETE flag expected, found %s)",
			     size < 16 ? "the file's end" : "it clear");
	return 0;
}

static int check_header(ms_ram *ram, struct ms__ram_mapped *m, const uint8_t *h,
			uint64_t size)
{
	uint32_t flags = ms__load_be32(h + 12), ps = ms__load_be32(h + 16);
	uint32_t nblk = ms__load_be32(h + 20);
	uint64_t fsz = ms__load_be64(h + 48);

	if (size < HDR_SIZE)
		return mfail(ram, -EBADMSG, size,
			     "mapped snapshot: truncated: a header of %u bytes "
			     "expected, found a file of 0x%llx bytes",
			     HDR_SIZE, (unsigned long long)size);
	if (ms__crc32(0, h, 60) != ms__load_be32(h + 60))
		return mfail(ram, -EBADMSG, 60,
			     "mapped snapshot: header_crc 0x%08x (of bytes "
			     "0..59) expected, found 0x%08x",
			     ms__crc32(0, h, 60), ms__load_be32(h + 60));
	if (!all_zero(h + 64, HDR_SIZE - 64) || (flags & ~FLAG_COMPLETE))
		return mfail(ram, -EBADMSG, flags & ~FLAG_COMPLETE ? 12 : 64,
			     "mapped snapshot: zero %s expected, found other "
			     "bits",
			     flags & ~FLAG_COMPLETE ? "flags but COMPLETE"
						    : "bytes 64..4095");
	if (ps < MS_RAM_MIN_PAGE_SIZE || ps > MS_RAM_MAX_PAGE_SIZE ||
	    (ps & (ps - 1)))
		return mfail(ram, -EBADMSG, 16,
			     "mapped snapshot: a page size that is a power of "
			     "two from 1024 to 65536 expected, found %u",
			     ps);
	if (nblk > MS_RAM_MAX_BLOCKS)
		return mfail(ram, -EBADMSG, 20,
			     "mapped snapshot: at most %u blocks expected, "
			     "found %u",
			     MS_RAM_MAX_BLOCKS, nblk);
	if (ms__load_be64(h + 24) != A)
		return mfail(ram, -EBADMSG, 24,
			     "mapped snapshot: align 0x%llx expected, found "
			     "0x%llx",
			     (unsigned long long)A,
			     (unsigned long long)ms__load_be64(h + 24));
	if (size != fsz)
		return mfail(ram, -EBADMSG, size < fsz ? size : fsz,
			     "mapped snapshot: %s: a file of file_size 0x%llx "
			     "bytes (header offset 48) expected, found 0x%llx",
			     size < fsz ? "truncated" : "trailing bytes",
			     (unsigned long long)fsz, (unsigned long long)size);
	m->D = ms__load_be64(h + 32);
	m->L = ms__load_be64(h + 40);
	m->page_size = ps;
	return 0;
}

/* Entry @i's names and offsets, against the previous region's end @end. */
static int check_entry(ms_ram *ram, struct ms__ram_mapped *m, unsigned i,
		       uint64_t *end)
{
	const uint8_t *e = m->meta + HDR_SIZE + (size_t)i * ENT_SIZE;
	uint64_t at = HDR_SIZE + (uint64_t)i * ENT_SIZE, bm, ct, D = m->D;
	struct mblock *mb = &m->b[i];
	unsigned len = e[0], k;

	if (!len || memchr(e + 1, 0, len) || !all_zero(e + 1 + len, 255 - len))
		return mfail(ram, -EBADMSG, at,
			     "mapped snapshot: block %u: a name of 1 to 255 "
			     "non-zero bytes and zero padding expected, found "
			     "idlen %u and other bytes",
			     i, len);
	memcpy(mb->idstr, e + 1, len);
	mb->idstr[len] = 0;
	mb->used = ms__load_be64(e + 256);
	mb->bitmap_off = ms__load_be64(e + 264);
	mb->crc_off = ms__load_be64(e + 272);
	mb->pages_off = ms__load_be64(e + 280);
	mb->npages = mb->used / m->page_size;
	bm = round_up((mb->npages + 7) / 8, META_ALIGN);
	ct = round_up(mb->npages * 4, META_ALIGN);
	if (mb->used % m->page_size || !all_zero(e + 300, 212))
		return mfail(ram, -EBADMSG, at + 256,
			     "mapped snapshot: block '%s': a used_length that "
			     "is a multiple of the page size and zero padding "
			     "expected, found 0x%llx",
			     mb->idstr, (unsigned long long)mb->used);
	if (mb->bitmap_off % META_ALIGN || mb->crc_off % META_ALIGN ||
	    mb->pages_off % A || mb->bitmap_off < *end || mb->bitmap_off > D ||
	    mb->crc_off < mb->bitmap_off || D - mb->bitmap_off < bm ||
	    mb->crc_off - mb->bitmap_off < bm || mb->crc_off > D ||
	    D - mb->crc_off < ct || mb->pages_off < mb->crc_off + ct ||
	    mb->pages_off > D || D - mb->pages_off < round_up(mb->used, A))
		return mfail(ram, -EBADMSG, at + 264,
			     "mapped snapshot: block '%s': aligned regions in "
			     "order, not overlapping, below D 0x%llx expected, "
			     "found bitmap 0x%llx, checksums 0x%llx, pages "
			     "0x%llx",
			     mb->idstr, (unsigned long long)D,
			     (unsigned long long)mb->bitmap_off,
			     (unsigned long long)mb->crc_off,
			     (unsigned long long)mb->pages_off);
	for (k = 0; k < i; k++)
		if (!strcmp(m->b[k].idstr, mb->idstr))
			return mfail(ram, -EBADMSG, at,
				     "mapped snapshot: distinct block names "
				     "expected, found '%s' twice",
				     mb->idstr);
	*end = mb->pages_off + round_up(mb->used, A);
	return 0;
}

static int check_table(ms_ram *ram, struct ms__ram_mapped *m, uint64_t fsz)
{
	const uint8_t *h = m->meta;
	size_t tlen = (size_t)m->nblk * ENT_SIZE;
	uint64_t end, off = HDR_SIZE;
	unsigned i;
	int ret;

	if (tlen && pread_all(m->fd, m->meta + HDR_SIZE, tlen, HDR_SIZE, &off))
		return mfail(ram, -EBADMSG, off,
			     "mapped snapshot: truncated: a block table of %zu "
			     "bytes expected, found the file's end",
			     tlen);
	if (ms__crc32(0, h + HDR_SIZE, tlen) != ms__load_be32(h + 56))
		return mfail(ram, -EBADMSG, HDR_SIZE,
			     "mapped snapshot: table_crc 0x%08x (header offset "
			     "56) expected, found 0x%08x",
			     ms__load_be32(h + 56),
			     ms__crc32(0, h + HDR_SIZE, tlen));
	end = round_up(HDR_SIZE + tlen, A);
	for (i = 0; i < m->nblk; i++) {
		ret = check_entry(ram, m, i, &end);
		if (ret)
			return ret;
	}
	if (m->D % A || m->D < end || m->L > fsz || m->D != fsz - m->L)
		return mfail(ram, -EBADMSG, 32,
			     "mapped snapshot: D (0x%llx) a multiple of 0x%llx "
			     "after the last region (0x%llx) with D + L == "
			     "file_size 0x%llx expected, found L 0x%llx",
			     (unsigned long long)m->D, (unsigned long long)A,
			     (unsigned long long)end, (unsigned long long)fsz,
			     (unsigned long long)m->L);
	return 0;
}

/* The file's blocks against the registered ones, one to one. */
static int match_blocks(ms_ram *ram, struct ms__ram_mapped *m)
{
	uint8_t seen[MS_RAM_MAX_BLOCKS / 8];
	unsigned i, k;

	if (m->page_size != ram->page_size)
		return mfail(ram, -EINVAL, 16,
			     "mapped snapshot: page size %zu (this ms_ram's) "
			     "expected, found %zu",
			     ram->page_size, m->page_size);
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < m->nblk; i++) {
		struct mblock *mb = &m->b[i];

		for (k = 0; k < ram->nblk; k++)
			if (!strcmp(ram->blk[k].idstr, mb->idstr))
				break;
		if (k == ram->nblk)
			return mfail(ram, -EINVAL,
				     HDR_SIZE + (uint64_t)i * ENT_SIZE,
				     "mapped snapshot: a registered RAM block "
				     "expected, found '%s' (0x%llx bytes), "
				     "which this side does not have",
				     mb->idstr, (unsigned long long)mb->used);
		if (ram->blk[k].used != mb->used)
			return mfail(ram, -EINVAL,
				     HDR_SIZE + (uint64_t)i * ENT_SIZE + 256,
				     "mapped snapshot: RAM block '%s' of used "
				     "length 0x%llx (as registered) expected, "
				     "found 0x%llx",
				     mb->idstr,
				     (unsigned long long)ram->blk[k].used,
				     (unsigned long long)mb->used);
		mb->reg = k;
		seen[k / 8] |= (uint8_t)(1u << (k % 8));
	}
	for (k = 0; k < ram->nblk; k++)
		if (!(seen[k / 8] & (1u << (k % 8))))
			return mfail(ram, -EINVAL, HDR_SIZE,
				     "mapped snapshot: every registered RAM "
				     "block expected, found no '%s' in its "
				     "table of %u blocks",
				     ram->blk[k].idstr, m->nblk);
	return 0;
}

/* Block @i's bitmap and checksum table: read, CRC, count, all present. */
static int check_meta(ms_ram *ram, struct ms__ram_mapped *m, unsigned i)
{
	const uint8_t *e = m->meta + HDR_SIZE + (size_t)i * ENT_SIZE;
	struct mblock *mb = &m->b[i];
	size_t nb = (size_t)((mb->npages + 7) / 8), k;
	uint64_t off = 0, present = 0;
	uint8_t *raw;
	uint32_t c;

	if (mblock_tables(m, mb, false))
		return mfail(ram, -ENOMEM, MS__NO_OFFSET,
			     "ms_ram_mapped_restore: out of memory");
	raw = (uint8_t *)mb->crc;
	if (pread_all(m->fd, mb->bitmap, nb, mb->bitmap_off, &off) ||
	    pread_all(m->fd, raw, mb->npages * 4, mb->crc_off, &off))
		return mfail(ram, -EIO, off,
			     "mapped snapshot: block '%s': its tables read "
			     "expected, found a read error",
			     mb->idstr);
	c = ms__crc32(0, mb->bitmap, nb);
	c = ms__crc32(c, raw, (size_t)mb->npages * 4);
	if (c != ms__load_be32(e + 288))
		return mfail(ram, -EBADMSG, mb->bitmap_off,
			     "mapped snapshot: block '%s': meta_crc 0x%08x "
			     "(table offset 0x%llx) expected, found 0x%08x",
			     mb->idstr, ms__load_be32(e + 288),
			     (unsigned long long)(HDR_SIZE +
						  (uint64_t)i * ENT_SIZE + 288),
			     c);
	for (k = 0; k < nb; k++)
		present += (unsigned)__builtin_popcount(mb->bitmap[k]);
	if (present != ms__load_be64(e + 292))
		return mfail(ram, -EBADMSG, mb->bitmap_off,
			     "mapped snapshot: block '%s': present %llu (its "
			     "bitmap's bits) expected, found %llu",
			     mb->idstr, (unsigned long long)present,
			     (unsigned long long)ms__load_be64(e + 292));
	if (present != mb->npages ||
	    (nb && (mb->bitmap[nb - 1] >> (mb->npages - 8 * (nb - 1)))))
		return mfail(ram, -EBADMSG, mb->bitmap_off,
			     "mapped snapshot: block '%s': every one of its "
			     "%llu pages saved expected, found %llu",
			     mb->idstr, (unsigned long long)mb->npages,
			     (unsigned long long)present);
	for (k = 0; k < mb->npages; k++)
		mb->crc[k] = ms__load_be32(raw + 4 * k);
	return 0;
}

/*
 * Restore: placing the pages.
 */

static int map_blocks_mmap(ms_ram *ram, struct ms__ram_mapped *m)
{
	long sp = sysconf(_SC_PAGESIZE);
	uint64_t ps = sp > 0 ? (uint64_t)sp : 4096;
	unsigned i;

	for (i = 0; i < m->nblk; i++) {
		struct mblock *mb = &m->b[i];
		const struct ms__ram_block *b = &ram->blk[mb->reg];

		if (mb->used && ((uintptr_t)b->host % ps || mb->used % ps ||
				 mb->pages_off % ps))
			return mfail(ram, -EINVAL, mb->pages_off,
				     "ms_ram_mapped_restore: mmap mode: RAM "
				     "block '%s' at an address and of a length "
				     "that are multiples of the system page "
				     "size %llu expected, found %p and 0x%llx",
				     mb->idstr, (unsigned long long)ps,
				     (void *)b->host,
				     (unsigned long long)mb->used);
	}
	for (i = 0; i < m->nblk; i++) {
		struct mblock *mb = &m->b[i];
		uint8_t *host = ram->blk[mb->reg].host;

		if (!mb->used)
			continue;
		if (mmap(host, (size_t)mb->used, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_FIXED, m->fd,
			 (off_t)mb->pages_off) == MAP_FAILED)
			return mfail(ram, -errno, mb->pages_off,
				     "ms_ram_mapped_restore: RAM block '%s' "
				     "mapped expected, mmap() failed: %s",
				     mb->idstr, ms_strerror(-errno));
		m->rst.pages += mb->npages;
		m->rst.bytes += mb->used;
	}
	return 0;
}

/* Pages [first, first + n) of block @b: checked against the checksum
 * table (@hole: they are zeros, not read; a zero page needs no CRC). */
static int check_pages(struct worker *w, unsigned b, uint64_t first, uint64_t n,
		       bool hole)
{
	struct ms__ram_mapped *m = w->m;
	const struct mblock *mb = &m->b[b];
	const uint8_t *host = w->ram->blk[mb->reg].host;
	uint64_t k;
	uint32_t c;
	char what[128];

	for (k = first; k < first + n; k++) {
		const uint8_t *p = host + (k << m->page_bits);

		c = hole || ms_buffer_is_zero(p, m->page_size)
			    ? m->zero_crc
			    : ms__crc32(0, p, m->page_size);
		w->st.pages++;
		if (c == m->zero_crc)
			w->st.zero_pages++;
		else
			w->st.bytes += m->page_size;
		if (c == mb->crc[k])
			continue;
		snprintf(what, sizeof(what),
			 "page %llu: CRC-32 0x%08x (its checksum table) "
			 "expected, found 0x%08x",
			 (unsigned long long)k, mb->crc[k], c);
		return wfail(m, -EBADMSG, mb->pages_off + (k << m->page_bits),
			     b, what);
	}
	return 0;
}

/* Where the data of [@pos, @len) from @foff starts, in whole pages (@pos
 * without SEEK_DATA).  Holes after it are read: one lseek() per chunk
 * costs less than two per hole where zero pages alternate with others. */
static uint64_t data_start(struct ms__ram_mapped *m, uint64_t foff,
			   uint64_t pos, uint64_t len)
{
#if defined(SEEK_DATA)
	off_t d = lseek(m->fd, (off_t)(foff + pos), SEEK_DATA);
	uint64_t data;

	if (d < 0)
		return errno == ENXIO ? len : pos;
	data = (uint64_t)d - foff;
	if (data > len)
		data = len;
	return pos + (data - pos) / m->page_size * m->page_size;
#else
	(void)m;
	(void)foff;
	(void)len;
	return pos;
#endif
}

/* One chunk: bytes [off, off + len) of block @b. */
static int read_chunk(struct worker *w, unsigned b, uint64_t off, uint64_t len)
{
	struct ms__ram_mapped *m = w->m;
	const struct mblock *mb = &m->b[b];
	const struct ms__ram_block *blk = &w->ram->blk[mb->reg];
	uint64_t pos = 0, data, fo, pb = m->page_bits;
	uint8_t *dst = blk->host + off;
	int ret;

	data = data_start(m, mb->pages_off + off, pos, len);
	if (data > pos) {
		if (!blk->zeroed && !ms_buffer_is_zero(dst + pos, data - pos))
			memset(dst + pos, 0, data - pos);
		ret = check_pages(w, b, (off + pos) >> pb, (data - pos) >> pb,
				  true);
		if (ret)
			return ret;
	}
	if (data >= len)
		return 0;
	ret = pread_all(m->fd, dst + data, len - data,
			mb->pages_off + off + data, &fo);
	if (ret)
		return wfail(m, ret == -ENODATA ? -EBADMSG : ret, fo, b,
			     "read of its pages");
	return check_pages(w, b, (off + data) >> pb, (len - data) >> pb, false);
}

static void *reader_main(void *arg)
{
	struct worker *w = arg;
	struct ms__ram_mapped *m = w->m;
	uint64_t j, off, len;
	unsigned b;

	while (!atomic_load(&m->failed)) {
		j = atomic_fetch_add(&m->next, 1);
		if (j >= m->njobs)
			break;
		b = job_block(m, j);
		off = (j - m->first[b]) * READ_CHUNK;
		len = m->b[b].used - off;
		if (len > READ_CHUNK)
			len = READ_CHUNK;
		if (read_chunk(w, b, off, len))
			break;
	}
	return NULL;
}

static int read_blocks(ms_ram *ram, struct ms__ram_mapped *m)
{
	struct worker w[MS_RAM_MAX_CHANNELS];
	unsigned i;

	m->first[0] = 0;
	for (i = 0; i < m->nblk; i++)
		m->first[i + 1] = m->first[i] +
				  (m->b[i].used + READ_CHUNK - 1) / READ_CHUNK;
	m->njobs = m->first[m->nblk];
	run_workers(ram, m, w, reader_main);
	for (i = 0; i < m->threads; i++) {
		if (!w[i].m)
			continue;
		m->rst.pages += w[i].st.pages;
		m->rst.zero_pages += w[i].st.zero_pages;
		m->rst.bytes += w[i].st.bytes;
	}
	if (m->err)
		return mfail(ram, m->err, m->err_off,
			     "mapped snapshot: RAM block '%s': %s%s%s",
			     m->b[m->err_blk].idstr, m->err_what,
			     m->err == -EBADMSG ? "" : ": ",
			     m->err == -EBADMSG ? "" : ms_strerror(m->err));
	return 0;
}

/* Header, table, blocks and their tables: everything before the pages. */
static int restore_checks(ms_ram *ram, struct ms__ram_mapped *m)
{
	uint8_t h[HDR_SIZE];
	struct stat st;
	uint64_t size, off = 0;
	ssize_t n;
	unsigned i;
	int ret;

	if (fstat(m->fd, &st))
		return mfail(ram, -errno, MS__NO_OFFSET,
			     "ms_ram_mapped_restore: fstat() failed: %s",
			     ms_strerror(-errno));
	size = (uint64_t)st.st_size;
	memset(h, 0, sizeof(h));
	n = pread(m->fd, h, sizeof(h), 0);
	if (n < 0)
		return mfail(ram, -errno, 0,
			     "mapped snapshot: its header read expected, "
			     "found %s",
			     ms_strerror(-errno));
	if ((uint64_t)n < size && (uint64_t)n < HDR_SIZE &&
	    pread_all(m->fd, h + n, HDR_SIZE - (uint64_t)n, (uint64_t)n, &off))
		size = (uint64_t)n;
	ret = check_ident(ram, h, size);
	if (!ret)
		ret = check_header(ram, m, h, size);
	if (ret)
		return ret;
	if (map_blocks(m, ms__load_be32(h + 20)))
		return mfail(ram, -ENOMEM, MS__NO_OFFSET,
			     "ms_ram_mapped_restore: out of memory");
	memcpy(m->meta, h, HDR_SIZE);
	ret = check_table(ram, m, size);
	if (!ret)
		ret = match_blocks(ram, m);
	for (i = 0; !ret && i < m->nblk; i++)
		ret = check_meta(ram, m, i);
	return ret;
}

int ms_ram_mapped_restore(ms_ram *ram, int fd, const ms_ram_mapped_opts *opts,
			  ms_stream **device)
{
	struct ms__ram_mapped *m = NULL;
	int ret;

	if (!ram)
		return -EINVAL;
	ret = map_new(ram, "ms_ram_mapped_restore", fd, opts, device, &m);
	if (ret)
		return ret;
	m->page_bits = ram->page_bits;
	ret = restore_checks(ram, m);
	if (!ret)
		ret = opts && opts->mode == MS_RAM_RESTORE_READ
			      ? read_blocks(ram, m)
			      : map_blocks_mmap(ram, m);
	m->dev_pos = 0;
	if (!ret && dev_stream(m, MS_STREAM_READER))
		ret = mfail(ram, -ENOMEM, MS__NO_OFFSET,
			    "ms_ram_mapped_restore: out of memory");
	if (ret) {
		map_free(m);
		return ret;
	}
	ram->map = m;
	ram->map_restored = true;
	/* The load's START keeps these counters (src/ram-load.c). */
	memset(&ram->st, 0, sizeof(ram->st));
	ms__ram_stats_add(ram, &m->rst);
	*device = m->dev;
	return 0;
}
