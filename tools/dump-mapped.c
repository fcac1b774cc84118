/* SPDX-License-Identifier: MIT */
/*
 * migstream-dump: mapped snapshot files (magic "MSMAPPED"), read and
 * written here on their own, from the layout of docs/FORMAT.md ("Mapped
 * snapshot files"), without the library's ms_ram_mapped_*(): the tool
 * judges a file by itself, so that a test can prove the two agree.
 *
 * The reader checks, in the layout's order, the header, the block table,
 * every region's bounds, each block's bitmap and checksum table (its
 * meta_crc and present count), every page's CRC (verify), and then walks
 * the device stream [D, D + L) with the stream walker, whose RAM section
 * must hold the block list, the MAPPED sync record and no page.  Every
 * refusal names the file offset, what was expected and what was found.
 *
 * The writer (convert --to mapped) places each page record of a streaming
 * input at its page's offset in OUT.tmp (the last write wins; a page that
 * turns zero is punched out), writes the device stream to a temporary file
 * meanwhile, and at the end copies it to D, writes the bitmaps, checksum
 * tables, block table and header, fsync()s, and only then sets COMPLETE.
 */
#include "config.h"

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <migstream/qemu_ram.h>

#include "dump.h"

#define PROG "migstream-dump"

#define HDR_SIZE    4096u
#define ENTRY_SIZE  512u
#define META_ALIGN  4096u
#define CHUNK	    (1u << 20)
#define SYNC_MAPPED ((UINT64_C(0xffffffff) << 16) | MS_QEMU_RAM_MULTIFD_FLUSH)
#define RAM_EOS	    ((uint64_t)MS_QEMU_RAM_EOS)
#define START_CAP   (1u << 20)

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
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

static uint32_t crc(const void *d, size_t n)
{
	const uint8_t *p = d;
	uLong c = crc32(0L, Z_NULL, 0);

	while (n) {
		uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;

		c = crc32(c, p, k);
		p += k;
		n -= k;
	}
	return (uint32_t)c;
}

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	return !n || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

/* pread() all of @n bytes at @off; 0, or -errno (-ENODATA: end of file). */
static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
	uint8_t *b = buf;
	ssize_t k;

	while (n) {
		k = pread(fd, b, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (!k)
			return -ENODATA;
		b += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
	const uint8_t *b = buf;
	ssize_t k;

	while (n) {
		k = pwrite(fd, b, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		b += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

bool dump_is_mapped(const char *file)
{
	uint8_t m[8];
	struct stat st;
	int fd;
	bool yes;

	if (!strcmp(file, "-"))
		fd = dup(STDIN_FILENO);
	else
		fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	yes = !fstat(fd, &st) && S_ISREG(st.st_mode) &&
	      !pread_all(fd, m, 8, 0) && !memcmp(m, DUMP_MAPPED_MAGIC, 8);
	close(fd);
	return yes;
}

static int bad(struct dump_mapped *m, uint64_t off, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

static int bad(struct dump_mapped *m, uint64_t off, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dump_error_vset(&m->e, -EBADMSG, off, DUMP_NO_SECTION, NULL, fmt, ap);
	va_end(ap);
	return DUMP_EXIT_INVALID;
}

static int io_fail(struct dump_mapped *m, int err, uint64_t off,
		   const char *what)
{
	if (err == -ENODATA)
		return bad(m, off, "%s expected, found the end of the file",
			   what);
	dump_error_set(&m->e, err, off, DUMP_NO_SECTION, NULL, "reading %s: %s",
		       what, strerror(-err));
	return DUMP_EXIT_IO;
}

/* The header: the checks up to the file size, in the layout's order. */
static int check_header(struct dump_mapped *m, const uint8_t *h, size_t n)
{
	uint32_t flags;
	size_t i;

	if (n < 12)
		return bad(m, n,
			   "a 4096-byte header expected, found the end "
			   "of the file");
	m->version = be32(h + 8);
	if (m->version != 1)
		return bad(m, 8, "version 1 expected, found %" PRIu32,
			   m->version);
	if (n < 16)
		return bad(m, 12,
			   "incomplete: its save did not commit (the "
			   "flags expected, found the end of the file)");
	flags = be32(h + 12);
	if (!(flags & DUMP_MAPPED_COMPLETE))
		return bad(
			m, 12,
			"incomplete: its save did not commit (flags 0x%" PRIx32
			", COMPLETE 0x1 clear)",
			flags);
	if (n < HDR_SIZE)
		return bad(m, n,
			   "a 4096-byte header expected, found the end "
			   "of the file");
	if (crc(h, 60) != be32(h + 60))
		return bad(m, 60,
			   "header_crc 0x%08" PRIx32 " (CRC-32 of bytes 0..59) "
			   "expected, found 0x%08" PRIx32,
			   crc(h, 60), be32(h + 60));
	for (i = 64; i < HDR_SIZE; i++)
		if (h[i])
			return bad(m, 64,
				   "zero bytes from 0x40 to 0x1000 expected, "
				   "found 0x%02x at 0x%zx",
				   h[i], i);
	if (flags & ~DUMP_MAPPED_COMPLETE)
		return bad(m, 12,
			   "flags 0x1 (COMPLETE) expected, found 0x%" PRIx32
			   " (unknown bits set)",
			   flags);
	m->flags = flags;
	m->page_size = be32(h + 16);
	if (m->page_size < 1024 || m->page_size > 65536 ||
	    (m->page_size & (m->page_size - 1)))
		return bad(m, 16,
			   "a page size that is a power of two from 1024 to "
			   "65536 expected, found %" PRIu32,
			   m->page_size);
	m->nblocks = be32(h + 20);
	if (m->nblocks > DUMP_MAPPED_MAX_BLOCKS)
		return bad(m, 20, "at most %u blocks expected, found %" PRIu32,
			   DUMP_MAPPED_MAX_BLOCKS, m->nblocks);
	if (be64(h + 24) != DUMP_MAPPED_ALIGN)
		return bad(m, 24, "align 0x100000 expected, found 0x%" PRIx64,
			   be64(h + 24));
	m->dev_off = be64(h + 32);
	m->dev_len = be64(h + 40);
	m->file_size = be64(h + 48);
	if (m->size != m->file_size)
		return bad(m, m->size < m->file_size ? m->size : m->file_size,
			   "a file of 0x%" PRIx64
			   " bytes (file_size) expected, "
			   "found 0x%" PRIx64 " bytes (%s)",
			   m->file_size, m->size,
			   m->size < m->file_size ? "truncated"
						  : "trailing bytes");
	return 0;
}

/* One table entry at file offset @off; *@end: where the next may begin. */
static int check_entry(struct dump_mapped *m, unsigned i, const uint8_t *e,
		       uint64_t off, uint64_t *end)
{
	struct dump_mapped_block *b = &m->b[i];
	uint64_t bml, crl, pgl;
	unsigned j;

	b->idlen = e[0];
	if (!b->idlen)
		return bad(m, off, "block %u: idlen 1..255 expected, found 0",
			   i);
	memcpy(b->name, e + 1, b->idlen);
	b->name[b->idlen] = '\0';
	if (memchr(b->name, '\0', b->idlen))
		return bad(m, off,
			   "block %u: a name without NUL bytes expected", i);
	for (j = 1u + b->idlen; j < 256; j++)
		if (e[j])
			return bad(m, off,
				   "block %u '%s': zero padding after its "
				   "name expected, found 0x%02x at entry "
				   "byte %u",
				   i, dump_esc(b->name), e[j], j);
	for (j = 300; j < ENTRY_SIZE; j++)
		if (e[j])
			return bad(m, off,
				   "block %u '%s': zero bytes at the entry's "
				   "end expected, found 0x%02x at entry byte "
				   "%u",
				   i, dump_esc(b->name), e[j], j);
	for (j = 0; j < i; j++)
		if (!strcmp(m->b[j].name, b->name))
			return bad(m, off,
				   "block %u: a name distinct from block %u's "
				   "expected, found '%s' twice",
				   i, j, dump_esc(b->name));
	b->used = be64(e + 256);
	b->bitmap_off = be64(e + 264);
	b->crc_off = be64(e + 272);
	b->pages_off = be64(e + 280);
	b->meta_crc = be32(e + 288);
	b->present = be64(e + 292);
	if (b->used % m->page_size || b->used > m->size)
		return bad(m, off + 256,
			   "block '%s': a used_length that is a multiple of "
			   "the page size %" PRIu32 " and fits the file "
			   "expected, found 0x%" PRIx64,
			   dump_esc(b->name), m->page_size, b->used);
	b->npages = b->used / m->page_size;
	if (b->bitmap_off % META_ALIGN || b->crc_off % META_ALIGN)
		return bad(m, off + 264,
			   "block '%s': bitmap and checksum offsets that are "
			   "multiples of 4096 expected, found 0x%" PRIx64
			   " and 0x%" PRIx64,
			   dump_esc(b->name), b->bitmap_off, b->crc_off);
	if (b->pages_off % DUMP_MAPPED_ALIGN)
		return bad(m, off + 264,
			   "block '%s': a pages offset that is a multiple of "
			   "0x100000 expected, found 0x%" PRIx64,
			   dump_esc(b->name), b->pages_off);
	if (b->present > b->npages)
		return bad(m, b->bitmap_off,
			   "block '%s': at most %" PRIu64 " pages present "
			   "expected, found %" PRIu64,
			   dump_esc(b->name), b->npages, b->present);
	bml = round_up((b->npages + 7) / 8, META_ALIGN);
	crl = round_up(4 * b->npages, META_ALIGN);
	pgl = round_up(b->used, DUMP_MAPPED_ALIGN);
	if (b->bitmap_off < *end || b->bitmap_off > m->size - bml)
		goto out_order;
	if (b->crc_off < b->bitmap_off + bml || b->crc_off > m->size - crl)
		goto out_order;
	if (b->pages_off < b->crc_off + crl || b->pages_off > m->size - pgl)
		goto out_order;
	*end = b->pages_off + pgl;
	if (*end > m->dev_off)
		return bad(m, off + 264,
			   "block '%s': its pages region [0x%" PRIx64
			   ", 0x%" PRIx64 ") below the device stream at "
			   "0x%" PRIx64 " expected",
			   dump_esc(b->name), b->pages_off, *end, m->dev_off);
	return 0;
out_order:
	return bad(m, off + 264,
		   "block '%s': bitmap (0x%" PRIx64 "), checksums (0x%" PRIx64
		   ") and pages (0x%" PRIx64 ") in order, from 0x%" PRIx64
		   ", without overlap and inside the file expected (sizes "
		   "0x%" PRIx64 ", 0x%" PRIx64 ", 0x%" PRIx64 ")",
		   dump_esc(b->name), b->bitmap_off, b->crc_off, b->pages_off,
		   *end, bml, crl, pgl);
}

int dump_mapped_open(struct dump_mapped *m, const char *file)
{
	uint8_t h[HDR_SIZE], *t;
	struct stat st;
	uint64_t end, tlen;
	ssize_t n;
	unsigned i;
	int ret;

	memset(m, 0, sizeof(*m));
	m->name = strcmp(file, "-") ? file : "<stdin>";
	m->fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC)
				  : dup(STDIN_FILENO);
	if (m->fd < 0 || fstat(m->fd, &st)) {
		dump_error_set(&m->e, -errno, DUMP_NO_OFFSET, DUMP_NO_SECTION,
			       NULL, "cannot open: %s", strerror(errno));
		return DUMP_EXIT_IO;
	}
	m->size = (uint64_t)st.st_size;
	n = pread(m->fd, h, sizeof(h), 0);
	if (n < 0)
		return io_fail(m, -errno, 0, "the header");
	if (n < 8 || memcmp(h, DUMP_MAPPED_MAGIC, 8))
		return bad(m, 0, "magic \"MSMAPPED\" expected");
	ret = check_header(m, h, (size_t)n);
	if (ret)
		return ret;
	tlen = (uint64_t)m->nblocks * ENTRY_SIZE;
	if (HDR_SIZE + tlen > m->size)
		return bad(m, m->size,
			   "a block table of %" PRIu32 " entries (to 0x%" PRIx64
			   ") expected, found the end of the file",
			   m->nblocks, HDR_SIZE + tlen);
	m->b = calloc(m->nblocks ? m->nblocks : 1, sizeof(*m->b));
	t = malloc(tlen ? tlen : 1);
	if (!m->b || !t) {
		free(t);
		dump_error_set(&m->e, -ENOMEM, DUMP_NO_OFFSET, DUMP_NO_SECTION,
			       NULL, "out of memory");
		return DUMP_EXIT_IO;
	}
	ret = pread_all(m->fd, t, tlen, HDR_SIZE);
	if (ret) {
		free(t);
		return io_fail(m, ret, HDR_SIZE, "the block table");
	}
	if (crc(t, tlen) != be32(h + 56)) {
		ret = bad(m, HDR_SIZE,
			  "table_crc 0x%08" PRIx32
			  " (CRC-32 of the block table "
			  "at 0x1000) expected, found 0x%08" PRIx32,
			  crc(t, tlen), be32(h + 56));
		free(t);
		return ret;
	}
	end = HDR_SIZE + tlen;
	for (i = 0; i < m->nblocks && !ret; i++)
		ret = check_entry(m, i, t + (size_t)i * ENTRY_SIZE,
				  HDR_SIZE + (uint64_t)i * ENTRY_SIZE, &end);
	free(t);
	if (ret)
		return ret;
	if (m->dev_off % DUMP_MAPPED_ALIGN || m->dev_off < end)
		return bad(m, 32,
			   "dev_offset: a multiple of 0x100000 from 0x%" PRIx64
			   " (the end of the last region) expected, found "
			   "0x%" PRIx64,
			   end, m->dev_off);
	if (m->dev_len > m->file_size ||
	    m->dev_off != m->file_size - m->dev_len)
		return bad(m, 32,
			   "dev_offset + dev_length == file_size 0x%" PRIx64
			   " expected, found 0x%" PRIx64 " + 0x%" PRIx64,
			   m->file_size, m->dev_off, m->dev_len);
	return 0;
}

int dump_mapped_meta(struct dump_mapped *m, unsigned i, uint8_t **bm,
		     uint32_t **crcs)
{
	struct dump_mapped_block *b = &m->b[i];
	size_t bml = (size_t)((b->npages + 7) / 8);
	uint64_t pop = 0, k;
	uint8_t *d;
	uint32_t c;
	int ret;

	*bm = NULL;
	*crcs = NULL;
	if (b->npages > SIZE_MAX / 8) {
		dump_error_set(&m->e, -E2BIG, b->bitmap_off, DUMP_NO_SECTION,
			       NULL,
			       "block '%s': %" PRIu64 " pages: more than this "
			       "system can hold the checksums of",
			       dump_esc(b->name), b->npages);
		return DUMP_EXIT_INVALID;
	}
	d = malloc(bml + 4 * (size_t)b->npages + 1);
	*crcs = malloc(4 * (size_t)b->npages + 1);
	if (!d || !*crcs) {
		free(d);
		free(*crcs);
		*crcs = NULL;
		dump_error_set(&m->e, -ENOMEM, DUMP_NO_OFFSET, DUMP_NO_SECTION,
			       NULL, "out of memory for block '%s''s bitmap",
			       dump_esc(b->name));
		return DUMP_EXIT_IO;
	}
	ret = pread_all(m->fd, d, bml, b->bitmap_off);
	if (!ret)
		ret = pread_all(m->fd, d + bml, 4 * (size_t)b->npages,
				b->crc_off);
	if (ret) {
		free(d);
		free(*crcs);
		*crcs = NULL;
		return io_fail(m, ret, b->bitmap_off, "a bitmap");
	}
	c = crc(d, bml + 4 * (size_t)b->npages);
	for (k = 0; k < bml; k++)
		pop += (uint64_t)__builtin_popcount(d[k]);
	for (k = 0; k < b->npages; k++)
		(*crcs)[k] = be32(d + bml + 4 * k);
	*bm = d;
	if (c != b->meta_crc)
		return bad(m, b->bitmap_off,
			   "block '%s': meta_crc 0x%08" PRIx32 " (CRC-32 of "
			   "its bitmap at 0x%" PRIx64 " and checksums at "
			   "0x%" PRIx64 ") expected, found 0x%08" PRIx32,
			   dump_esc(b->name), c, b->bitmap_off, b->crc_off,
			   b->meta_crc);
	if (bml && (d[bml - 1] >> (b->npages % 8 ? b->npages % 8 : 8)))
		return bad(m, b->bitmap_off,
			   "block '%s': no bitmap bit past its %" PRIu64
			   " pages expected, found 0x%02x",
			   dump_esc(b->name), b->npages, d[bml - 1]);
	if (pop != b->present)
		return bad(m, b->bitmap_off,
			   "block '%s': present %" PRIu64 " (the bitmap's set "
			   "bits) expected, found %" PRIu64,
			   dump_esc(b->name), pop, b->present);
	return 0;
}

static bool bit(const uint8_t *bm, uint64_t i)
{
	return bm[i / 8] >> (i % 8) & 1;
}

/*
 * Every page of block @i: a present page's CRC (and, @all, its bytes read
 * and checked), an absent page's checksum 0; counts the zero pages.
 */
static int block_pages(struct dump_mapped *m, unsigned i, bool all)
{
	struct dump_mapped_block *b = &m->b[i];
	uint32_t *crcs, zc = m->zero_crc, c;
	uint64_t k, j, n, per = CHUNK / m->page_size;
	uint8_t *bm, *buf;
	int ret;

	ret = dump_mapped_meta(m, i, &bm, &crcs);
	if (ret) {
		free(bm);
		free(crcs);
		return ret;
	}
	buf = malloc(CHUNK);
	if (!buf) {
		ret = DUMP_EXIT_IO;
		dump_error_set(&m->e, -ENOMEM, DUMP_NO_OFFSET, DUMP_NO_SECTION,
			       NULL, "out of memory");
		goto out;
	}
	b->zero = 0;
	for (k = 0; k < b->npages && !ret; k += n) {
		n = b->npages - k < per ? b->npages - k : per;
		if (all) {
			ret = pread_all(m->fd, buf, (size_t)(n * m->page_size),
					b->pages_off + k * m->page_size);
			if (ret) {
				ret = io_fail(m, ret,
					      b->pages_off + k * m->page_size,
					      "pages");
				break;
			}
		}
		for (j = k; j < k + n && !ret; j++) {
			uint8_t *p = buf + (j - k) * m->page_size;
			uint64_t at = b->pages_off + j * m->page_size;

			if (!bit(bm, j)) {
				if (crcs[j])
					ret = bad(
						m, b->crc_off + 4 * j,
						"block '%s' page %" PRIu64
						" (not saved): checksum 0 "
						"expected, found 0x%08" PRIx32,
						dump_esc(b->name), j, crcs[j]);
				continue;
			}
			if (!all && crcs[j] != zc)
				continue;
			if (!all &&
			    (ret = pread_all(m->fd, p, m->page_size, at))) {
				ret = io_fail(m, ret, at, "a page");
				break;
			}
			c = crc(p, m->page_size);
			if (c != crcs[j])
				ret = bad(m, at,
					  "block '%s' page %" PRIu64 ": CRC-32 "
					  "0x%08" PRIx32 " (its checksum at "
					  "0x%" PRIx64 ") expected, found "
					  "0x%08" PRIx32,
					  dump_esc(b->name), j, crcs[j],
					  b->crc_off + 4 * j, c);
			else if (c == zc && all_zero(p, m->page_size))
				b->zero++;
		}
	}
out:
	free(buf);
	free(bm);
	free(crcs);
	return ret;
}

int dump_mapped_pages(struct dump_mapped *m, bool all)
{
	uint8_t *z = calloc(1, m->page_size);
	unsigned i;
	int ret = 0;

	if (!z) {
		dump_error_set(&m->e, -ENOMEM, DUMP_NO_OFFSET, DUMP_NO_SECTION,
			       NULL, "out of memory");
		return DUMP_EXIT_IO;
	}
	m->zero_crc = crc(z, m->page_size);
	free(z);
	for (i = 0; i < m->nblocks && !ret; i++)
		ret = block_pages(m, i, all);
	return ret;
}

/*
 * The device stream's RAM section: the START's payload is captured (up to
 * START_CAP bytes), a PART's or END's must be EOS alone.
 */
struct devcheck {
	bool ram; /* the record being read is a RAM section */
	uint8_t type;
	uint8_t *start; /* the RAM START's payload */
	size_t n;
	uint64_t nstart, bad_at; /* bad_at: a RAM PART/END not EOS alone */
	uint64_t plen;
	uint8_t part[8];
	dump_begin_fn next_begin;
	dump_bytes_fn next_bytes;
	dump_record_fn next_record;
	void *next;
};

static int dc_begin(struct dump_walk *w, const ms_record *rec,
		    ms_stream *payload, void *opaque)
{
	struct devcheck *d = opaque;

	d->type = rec->type;
	d->ram = rec->type >= MS_REC_START && rec->type <= MS_REC_FULL &&
		 !strcmp(rec->section.idstr, MS_QEMU_RAM_IDSTR);
	d->plen = 0;
	if (d->ram && rec->type == MS_REC_START)
		d->nstart++;
	return d->next_begin ? d->next_begin(w, rec, payload, d->next) : 0;
}

static int dc_bytes(struct dump_walk *w, const uint8_t *b, size_t n,
		    void *opaque)
{
	struct devcheck *d = opaque;
	size_t k;

	if (d->ram && d->type == MS_REC_START && d->nstart == 1) {
		k = START_CAP - d->n < n ? START_CAP - d->n : n;
		memcpy(d->start + d->n, b, k);
		d->n += k;
	} else if (d->ram) {
		for (k = 0; k < n; k++, d->plen++)
			if (d->plen < 8)
				d->part[d->plen] = b[k];
	}
	return d->next_bytes ? d->next_bytes(w, b, n, d->next) : 0;
}

static void dc_record(struct dump_walk *w, const ms_record *rec, uint64_t plen,
		      void *opaque)
{
	struct devcheck *d = opaque;

	if (d->ram && rec->type != MS_REC_START && !d->bad_at &&
	    (plen != 8 || be64(d->part) != RAM_EOS))
		d->bad_at = rec->offset + 1;
	d->ram = false;
	if (d->next_record)
		d->next_record(w, rec, plen, d->next);
}

/* The RAM START's payload against the table. */
static int check_start(struct dump_mapped *m, const struct devcheck *d)
{
	uint64_t total = 0, at = m->dev_off, v, len;
	size_t p = 8;
	unsigned i;

	for (i = 0; i < m->nblocks; i++)
		total += m->b[i].used;
	if (!d->nstart && !total)
		return 0;
	if (d->nstart != 1)
		return bad(m, at,
			   "device stream: one \"ram\" START section "
			   "expected, found %" PRIu64,
			   d->nstart);
	if (d->n < 8 || (be64(d->start) & ~(uint64_t)0xfff) != total ||
	    (be64(d->start) & 0xfff) != MS_QEMU_RAM_MEM_SIZE)
		return bad(m, at,
			   "device stream: RAM START: be64 (0x%" PRIx64
			   " | MEM_SIZE), the table's total, expected",
			   total);
	for (i = 0; i < m->nblocks; i++) {
		const struct dump_mapped_block *b = &m->b[i];

		if (!b->used)
			continue;
		if (p + 1 > d->n || d->start[p] != b->idlen ||
		    p + 1 + b->idlen + 8 > d->n ||
		    memcmp(d->start + p + 1, b->name, b->idlen))
			return bad(m, at,
				   "device stream: RAM START: block '%s' "
				   "(the table's, in order) expected in the "
				   "block list",
				   dump_esc(b->name));
		p += 1u + b->idlen;
		len = be64(d->start + p);
		if (len != b->used)
			return bad(m, at,
				   "device stream: RAM START: block '%s' of "
				   "0x%" PRIx64 " bytes (used_length) "
				   "expected, found 0x%" PRIx64,
				   dump_esc(b->name), b->used, len);
		p += 8;
	}
	v = p + 16 <= d->n ? be64(d->start + p) : 0;
	if (p + 16 != d->n || v != SYNC_MAPPED ||
	    be64(d->start + p + 8) != RAM_EOS)
		return bad(m, at,
			   "device stream: RAM START: the block list, then "
			   "the MAPPED sync record 0x%" PRIx64 " and EOS, "
			   "expected (%zu bytes), found %zu bytes",
			   SYNC_MAPPED, p + 16, d->n);
	if (d->bad_at)
		return bad(m, m->dev_off + d->bad_at - 1,
			   "device stream: a RAM PART or END of EOS (0x10) "
			   "alone expected: a mapped file's pages are in its "
			   "regions");
	return 0;
}

/* Rewrite a walker message "offset 0xR: ..." with the file offset. */
static void walk_error(struct dump_mapped *m, const struct dump_walk *w)
{
	unsigned long long rel;
	char *end;

	if (!strncmp(w->errmsg, "offset 0x", 9)) {
		rel = strtoull(w->errmsg + 9, &end, 16);
		if (*end == ':') {
			dump_error_set(&m->e, -EBADMSG, m->dev_off + rel,
				       DUMP_NO_SECTION, NULL,
				       "device stream offset 0x%llx:%s", rel,
				       end + 1);
			return;
		}
	}
	dump_error_set(&m->e, -EBADMSG, m->dev_off, DUMP_NO_SECTION, NULL,
		       "device stream: %s", w->errmsg);
}

int dump_mapped_walk(struct dump_mapped *m, struct dump_walk *w)
{
	struct devcheck d = {0};
	int ret;

	d.start = malloc(START_CAP);
	if (!d.start) {
		dump_error_set(&m->e, -ENOMEM, DUMP_NO_OFFSET, DUMP_NO_SECTION,
			       NULL, "out of memory");
		return DUMP_EXIT_IO;
	}
	d.next_begin = w->on_begin;
	d.next_bytes = w->on_bytes;
	d.next_record = w->on_record;
	d.next = w->opaque;
	w->on_begin = dc_begin;
	w->on_bytes = dc_bytes;
	w->on_record = dc_record;
	w->opaque = &d;
	w->fd = m->fd;
	w->name = m->name;
	if (lseek(m->fd, (off_t)m->dev_off, SEEK_SET) < 0) {
		free(d.start);
		return io_fail(m, -errno, m->dev_off, "the device stream");
	}
	ret = dump_walk_run(w);
	w->opaque = d.next;
	if (ret) {
		walk_error(m, w);
	} else if (w->profile != MS_PROFILE_NATIVE) {
		ret = bad(m, m->dev_off,
			  "device stream: a native-profile stream (0x89 "
			  "\"MSN\") expected");
	} else if (w->pages[0] + w->pages[1] + w->pages[2] + w->pages[3]) {
		ret = bad(m, m->dev_off,
			  "device stream: no RAM page record expected, found "
			  "%" PRIu64,
			  w->pages[0] + w->pages[1] + w->pages[2] +
				  w->pages[3]);
	} else if (w->ram_listed && w->page_size != m->page_size) {
		ret = bad(m, 16,
			  "page size %u (the device stream's target page "
			  "bits) expected, found %" PRIu32,
			  w->page_size, m->page_size);
	} else {
		ret = check_start(m, &d);
	}
	free(d.start);
	return ret;
}

void dump_mapped_close(struct dump_mapped *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	free(m->b);
	m->b = NULL;
}

void dump_mapped_layout(const struct dump_mapped *m, bool json)
{
	uint64_t pres = 0, zero = 0;
	unsigned i;

	for (i = 0; i < m->nblocks; i++) {
		pres += m->b[i].present;
		zero += m->b[i].zero;
	}
	if (json) {
		printf("{\"page_size\": %" PRIu32 ", \"align\": %" PRIu64
		       ", \"dev_offset\": %" PRIu64 ", \"dev_length\": %" PRIu64
		       ", \"file_size\": %" PRIu64 ", \"pages_saved\": %" PRIu64
		       ", \"zero_pages\": %" PRIu64 ", \"blocks\": [",
		       m->page_size, DUMP_MAPPED_ALIGN, m->dev_off, m->dev_len,
		       m->file_size, pres, zero);
		for (i = 0; i < m->nblocks; i++) {
			const struct dump_mapped_block *b = &m->b[i];

			printf("%s{\"name\": ", i ? ", " : "");
			dump_json_str(stdout, b->name);
			printf(", \"used_length\": %" PRIu64
			       ", \"pages_saved\": %" PRIu64
			       ", \"zero_pages\": %" PRIu64
			       ", \"bitmap_offset\": %" PRIu64
			       ", \"crc_offset\": %" PRIu64
			       ", \"pages_offset\": %" PRIu64 "}",
			       b->used, b->present, b->zero, b->bitmap_off,
			       b->crc_off, b->pages_off);
		}
		printf("]}");
		return;
	}
	printf("layout:     page size %" PRIu32 ", align 0x%" PRIx64
	       ", %" PRIu32 " blocks, %" PRIu64 " pages saved, %" PRIu64
	       " zero\n",
	       m->page_size, DUMP_MAPPED_ALIGN, m->nblocks, pres, zero);
	for (i = 0; i < m->nblocks; i++) {
		const struct dump_mapped_block *b = &m->b[i];

		printf("  %-32s used %12" PRIu64 " saved %9" PRIu64
		       " zero %9" PRIu64 " bitmap 0x%" PRIx64 " crc 0x%" PRIx64
		       " pages 0x%" PRIx64 "\n",
		       dump_esc(b->name), b->used, b->present, b->zero,
		       b->bitmap_off, b->crc_off, b->pages_off);
	}
	printf("device:     0x%" PRIx64 " + 0x%" PRIx64 " = 0x%" PRIx64 "\n",
	       m->dev_off, m->dev_len, m->file_size);
}

/*
 * extract: block @i's file, @name in @dirfd, made by copying each run of
 * saved pages that are not zero from the region (copy_file_range() where
 * the system has it, else reads and writes of up to 1 MiB); zero pages
 * and pages not saved stay holes; the file is @used long.
 */
static int copy_run(int in, uint64_t from, int out, uint64_t to, uint64_t n)
{
	uint8_t *buf;
	size_t k;
	int ret = 0;

#ifdef HAVE_COPY_FILE_RANGE
	while (n) {
		off_t a = (off_t)from, b = (off_t)to;
		ssize_t c = copy_file_range(in, &a, out, &b, (size_t)n, 0);

		if (c < 0 && errno == EINTR)
			continue;
		if (c <= 0)
			break; /* EXDEV, ENOSYS, ...: the plain copy */
		from += (uint64_t)c;
		to += (uint64_t)c;
		n -= (uint64_t)c;
	}
	if (!n)
		return 0;
#endif
	buf = malloc(CHUNK);
	if (!buf)
		return -ENOMEM;
	while (n && !ret) {
		k = n < CHUNK ? (size_t)n : CHUNK;
		ret = pread_all(in, buf, k, from);
		if (!ret)
			ret = pwrite_all(out, buf, k, to);
		from += k;
		to += k;
		n -= k;
	}
	free(buf);
	return ret;
}

int dump_mapped_block_file(struct dump_mapped *m, unsigned i, int dirfd,
			   const char *name)
{
	struct dump_mapped_block *b = &m->b[i];
	uint64_t j, run = 0, P = m->page_size;
	uint32_t *crcs;
	uint8_t *bm, *page;
	bool data;
	int fd, ret;

	ret = dump_mapped_meta(m, i, &bm, &crcs);
	page = malloc(P);
	if (ret || !page) {
		free(bm);
		free(crcs);
		free(page);
		return ret ? ret : -ENOMEM;
	}
	fd = openat(dirfd, name,
		    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)b->used)) {
		ret = -errno;
		goto out;
	}
	for (j = 0; j <= b->npages && !ret; j++) {
		data = j < b->npages && bit(bm, j);
		if (data && crcs[j] == m->zero_crc) {
			ret = pread_all(m->fd, page, P, b->pages_off + j * P);
			data = ret || !all_zero(page, P);
		}
		if (data && !ret)
			continue;
		if (j > run && !ret)
			ret = copy_run(m->fd, b->pages_off + run * P, fd,
				       run * P, (j - run) * P);
		run = j + 1;
	}
	if (!ret && fsync(fd))
		ret = -errno;
out:
	if (fd >= 0 && close(fd) && !ret)
		ret = -errno;
	free(page);
	free(bm);
	free(crcs);
	return ret;
}

/*
 * convert from a mapped file: the RAM payloads of the streaming form.
 * START: the block list (blocks of used_length 0 left out) and EOS; PART:
 * EOS; END: every saved page in order (ZERO records for zero pages), EOS.
 */
static int put_list(struct dump_mapped *m, ms_stream *s)
{
	uint64_t total = 0;
	unsigned i;
	int ret;

	for (i = 0; i < m->nblocks; i++)
		total += m->b[i].used;
	ret = ms_put_be64(s, total | MS_QEMU_RAM_MEM_SIZE);
	for (i = 0; i < m->nblocks && !ret; i++) {
		if (!m->b[i].used)
			continue;
		ret = ms_put_u8(s, (uint8_t)m->b[i].idlen);
		if (!ret)
			ret = ms_put_buffer(s, m->b[i].name, m->b[i].idlen);
		if (!ret)
			ret = ms_put_be64(s, m->b[i].used);
	}
	return ret;
}

static int put_pages(struct dump_mapped *m, unsigned i, ms_stream *s)
{
	struct dump_mapped_block *b = &m->b[i];
	uint64_t j, P = m->page_size;
	bool first = true, zero;
	uint32_t *crcs;
	uint8_t *bm, *page;
	int ret;

	ret = dump_mapped_meta(m, i, &bm, &crcs);
	page = malloc(P);
	if (ret || !page) {
		free(bm);
		free(crcs);
		free(page);
		return ret ? -EBADMSG : -ENOMEM;
	}
	for (j = 0; j < b->npages && !ret; j++) {
		if (!bit(bm, j))
			continue;
		ret = pread_all(m->fd, page, P, b->pages_off + j * P);
		if (ret)
			break;
		zero = crcs[j] == m->zero_crc && all_zero(page, P);
		ret = ms_put_be64(
			s,
			j * P | (zero ? MS_QEMU_RAM_ZERO : MS_QEMU_RAM_PAGE) |
				(first ? 0 : MS_QEMU_RAM_CONTINUE));
		if (!ret && first) {
			ret = ms_put_u8(s, (uint8_t)b->idlen);
			if (!ret)
				ret = ms_put_buffer(s, b->name, b->idlen);
		}
		if (!ret)
			ret = zero ? ms_put_u8(s, 0)
				   : ms_put_buffer(s, page, (size_t)P);
		first = false;
	}
	free(page);
	free(bm);
	free(crcs);
	return ret;
}

int dump_mapped_ram_payload(struct dump_mapped *m, uint8_t type, ms_stream *s)
{
	unsigned i;
	int ret = 0;

	if (type == MS_REC_START)
		ret = put_list(m, s);
	for (i = 0; type == MS_REC_END && i < m->nblocks && !ret; i++)
		ret = put_pages(m, i, s);
	if (!ret)
		ret = ms_put_be64(s, RAM_EOS);
	return ret;
}

/*
 * convert to a mapped file.
 */

/* The layout of w's block list, once: offsets as the format places them. */
static int out_layout(struct dump_mapped_out *o, struct dump_walk *w)
{
	uint64_t at, P, np, total = 0;
	unsigned i;

	if (o->laid)
		return 0;
	if (w->ignore_shared)
		return dump_error_set(&o->e, -ENOTSUP, DUMP_NO_OFFSET,
				      DUMP_NO_SECTION, NULL,
				      "x-ignore-shared streams are not "
				      "converted to a mapped file");
	if (w->nblk > DUMP_MAPPED_MAX_BLOCKS)
		return dump_error_set(&o->e, -E2BIG, DUMP_NO_OFFSET,
				      DUMP_NO_SECTION, NULL,
				      "at most %u RAM blocks in a mapped file "
				      "expected, found %u",
				      DUMP_MAPPED_MAX_BLOCKS, w->nblk);
	P = o->page_size = w->page_size;
	o->nblocks = w->nblk;
	o->b = calloc(w->nblk ? w->nblk : 1, sizeof(*o->b));
	o->bm = calloc(w->nblk ? w->nblk : 1, sizeof(*o->bm));
	o->crc = calloc(w->nblk ? w->nblk : 1, sizeof(*o->crc));
	o->page = calloc(1, P);
	if (!o->b || !o->bm || !o->crc || !o->page)
		return dump_error_set(&o->e, -ENOMEM, DUMP_NO_OFFSET,
				      DUMP_NO_SECTION, NULL, "out of memory");
	o->zero_crc = crc(o->page, P);
	at = round_up(HDR_SIZE + (uint64_t)w->nblk * ENTRY_SIZE,
		      DUMP_MAPPED_ALIGN);
	for (i = 0; i < w->nblk; i++) {
		struct dump_mapped_block *b = &o->b[i];

		if (w->blk[i].len % P)
			return dump_error_set(
				&o->e, -EBADMSG, DUMP_NO_OFFSET,
				DUMP_NO_SECTION, NULL,
				"RAM block '%s': a used length that is a "
				"multiple of the page size %" PRIu64
				" expected, found 0x%" PRIx64,
				dump_esc(w->blk[i].name), P, w->blk[i].len);
		np = w->blk[i].len / P;
		total += np;
		if (total > DUMP_MAPPED_MAX_PAGES)
			return dump_error_set(
				&o->e, -E2BIG, DUMP_NO_OFFSET, DUMP_NO_SECTION,
				NULL,
				"at most %llu pages in all expected for a "
				"mapped file, found more",
				(unsigned long long)DUMP_MAPPED_MAX_PAGES);
		memcpy(b->name, w->blk[i].name, sizeof(b->name));
		b->idlen = (unsigned)strlen(b->name);
		b->used = w->blk[i].len;
		b->npages = np;
		b->bitmap_off = at;
		b->crc_off = at + round_up((np + 7) / 8, META_ALIGN);
		b->pages_off =
			round_up(b->crc_off + round_up(4 * np, META_ALIGN),
				 DUMP_MAPPED_ALIGN);
		at = b->pages_off + round_up(b->used, DUMP_MAPPED_ALIGN);
		o->bm[i] = calloc(1, (size_t)((np + 7) / 8) + 1);
		o->crc[i] = calloc(1, 4 * (size_t)np + 4);
		if (!o->bm[i] || !o->crc[i])
			return dump_error_set(&o->e, -ENOMEM, DUMP_NO_OFFSET,
					      DUMP_NO_SECTION, NULL,
					      "out of memory");
	}
	o->dev_off = at;
	o->laid = true;
	return 0;
}

int dump_mapped_out_page(struct dump_mapped_out *o, struct dump_walk *w,
			 unsigned blk, uint64_t addr, enum dump_page_kind kind,
			 const uint8_t *data, size_t len)
{
	struct dump_mapped_block *b;
	uint64_t j, at;
	bool was_data;
	int ret;

	if (o->e.code || out_layout(o, w))
		return o->e.code;
	b = &o->b[blk];
	j = addr / o->page_size;
	at = b->pages_off + j * o->page_size;
	was_data = bit(o->bm[blk], j) && o->crc[blk][j] != o->zero_crc;
	if (kind == DUMP_PAGE_XBZRLE)
		return dump_error_set(&o->e, -ENOTSUP, DUMP_NO_OFFSET,
				      DUMP_NO_SECTION, NULL,
				      "block '%s' page 0x%" PRIx64 ": XBZRLE "
				      "pages are not converted to a mapped "
				      "file",
				      dump_esc(b->name), addr);
	if (kind == DUMP_PAGE_ZERO || all_zero(data, len)) {
		if (was_data) {
			ret = -EOPNOTSUPP;
#ifdef FALLOC_FL_PUNCH_HOLE
			ret = fallocate(o->fd,
					FALLOC_FL_PUNCH_HOLE |
						FALLOC_FL_KEEP_SIZE,
					(off_t)at, (off_t)o->page_size)
				      ? -errno
				      : 0;
#endif
			if (ret) {
				memset(o->page, 0, o->page_size);
				ret = pwrite_all(o->fd, o->page, o->page_size,
						 at);
			}
			if (ret)
				goto out_err;
		}
		o->crc[blk][j] = o->zero_crc;
	} else {
		ret = pwrite_all(o->fd, data, len, at);
		if (ret)
			goto out_err;
		o->crc[blk][j] = crc(data, len);
	}
	o->bm[blk][j / 8] |= (uint8_t)(1u << (j % 8));
	return 0;
out_err:
	return dump_error_set(&o->e, ret, DUMP_NO_OFFSET, DUMP_NO_SECTION, NULL,
			      "writing a page: %s", strerror(-ret));
}

int dump_mapped_out_ram(struct dump_mapped_out *o, struct dump_walk *w,
			uint8_t type, ms_stream *s)
{
	unsigned i;
	int ret = 0;

	if (o->e.code)
		return o->e.code;
	if (type == MS_REC_START) {
		if (!w->ram_listed)
			return dump_error_set(&o->e, -EBADMSG, DUMP_NO_OFFSET,
					      DUMP_NO_SECTION, NULL,
					      "a RAM START without a block "
					      "list");
		if (out_layout(o, w))
			return o->e.code;
		ret = ms_put_be64(s, w->ram_total | MS_QEMU_RAM_MEM_SIZE);
		for (i = 0; i < o->nblocks && !ret; i++) {
			ret = ms_put_u8(s, (uint8_t)o->b[i].idlen);
			if (!ret)
				ret = ms_put_buffer(s, o->b[i].name,
						    o->b[i].idlen);
			if (!ret)
				ret = ms_put_be64(s, o->b[i].used);
		}
		if (!ret)
			ret = ms_put_be64(s, SYNC_MAPPED);
	}
	if (!ret)
		ret = ms_put_be64(s, RAM_EOS);
	return ret;
}

/* Write the bitmaps, checksum tables, table and header (COMPLETE clear). */
static int out_meta(struct dump_mapped_out *o, uint64_t dev_len, uint8_t *h)
{
	uint64_t tlen = (uint64_t)o->nblocks * ENTRY_SIZE, k, pop;
	uint8_t *t = calloc(1, tlen + 1), *c;
	unsigned i;
	int ret = 0;

	if (!t)
		return -ENOMEM;
	for (i = 0; i < o->nblocks && !ret; i++) {
		struct dump_mapped_block *b = &o->b[i];
		size_t bml = (size_t)((b->npages + 7) / 8);
		uint8_t *e = t + (size_t)i * ENTRY_SIZE;

		c = malloc(bml + 4 * (size_t)b->npages + 1);
		if (!c) {
			ret = -ENOMEM;
			break;
		}
		memcpy(c, o->bm[i], bml);
		for (k = 0, pop = 0; k < bml; k++)
			pop += (uint64_t)__builtin_popcount(c[k]);
		for (k = 0; k < b->npages; k++)
			put32(c + bml + 4 * k, o->crc[i][k]);
		ret = pwrite_all(o->fd, c, bml, b->bitmap_off);
		if (!ret)
			ret = pwrite_all(o->fd, c + bml, 4 * (size_t)b->npages,
					 b->crc_off);
		e[0] = (uint8_t)b->idlen;
		memcpy(e + 1, b->name, b->idlen);
		put64(e + 256, b->used);
		put64(e + 264, b->bitmap_off);
		put64(e + 272, b->crc_off);
		put64(e + 280, b->pages_off);
		put32(e + 288, crc(c, bml + 4 * (size_t)b->npages));
		put64(e + 292, pop);
		free(c);
	}
	if (!ret)
		ret = pwrite_all(o->fd, t, tlen, HDR_SIZE);
	memset(h, 0, HDR_SIZE);
	memcpy(h, DUMP_MAPPED_MAGIC, 8);
	put32(h + 8, 1);
	put32(h + 16, o->page_size);
	put32(h + 20, o->nblocks);
	put64(h + 24, DUMP_MAPPED_ALIGN);
	put64(h + 32, o->dev_off);
	put64(h + 40, dev_len);
	put64(h + 48, o->dev_off + dev_len);
	put32(h + 56, crc(t, tlen));
	free(t);
	if (!ret)
		ret = pwrite_all(o->fd, h, HDR_SIZE, 0);
	return ret;
}

int dump_mapped_out_finish(struct dump_mapped_out *o, struct dump_walk *w,
			   int dev_fd)
{
	uint8_t h[HDR_SIZE];
	off_t len;
	int ret;

	if (!o->e.code && !o->laid)
		out_layout(o, w);
	if (o->e.code)
		return o->e.code;
	o->page_size = o->page_size ? o->page_size : w->page_size;
	len = lseek(dev_fd, 0, SEEK_END);
	ret = len < 0 ? -errno : 0;
	if (!ret && ftruncate(o->fd, (off_t)(o->dev_off + (uint64_t)len)))
		ret = -errno;
	if (!ret)
		ret = copy_run(dev_fd, 0, o->fd, o->dev_off, (uint64_t)len);
	if (!ret)
		ret = out_meta(o, (uint64_t)len, h);
	/* COMPLETE is set last, once everything else is on disk. */
	if (!ret && fsync(o->fd))
		ret = -errno;
	if (!ret) {
		put32(h + 12, DUMP_MAPPED_COMPLETE);
		put32(h + 60, crc(h, 60));
		ret = pwrite_all(o->fd, h, HDR_SIZE, 0);
	}
	if (!ret && fsync(o->fd))
		ret = -errno;
	if (ret)
		dump_error_set(&o->e, ret, DUMP_NO_OFFSET, DUMP_NO_SECTION,
			       NULL, "writing the mapped file: %s",
			       strerror(-ret));
	return o->e.code;
}

void dump_mapped_out_free(struct dump_mapped_out *o)
{
	unsigned i;

	for (i = 0; o->bm && i < o->nblocks; i++) {
		free(o->bm[i]);
		free(o->crc[i]);
	}
	free(o->bm);
	free(o->crc);
	free(o->b);
	free(o->page);
	o->bm = NULL;
	o->crc = NULL;
	o->b = NULL;
	o->page = NULL;
}
