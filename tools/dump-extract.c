/* SPDX-License-Identifier: MIT */
/*
 * migstream-dump extract: RAM blocks as sparse files, and the VM
 * description.
 *
 *	migstream-dump extract [--max-bytes=N] DIR FILE
 *
 * Each RAM block becomes DIR/NAME, NAME being the block's idstr made
 * safe (see safe_name()), created (never opened if it exists: two blocks
 * are never merged into one file), truncated to the block's size, with
 * only the
 * non-zero pages written: the file is sparse where the guest's memory is
 * zero.  Pages sent more than once (iterative migration) end as their
 * last copy; XBZRLE pages are applied to what the file holds.  The VM
 * description goes to DIR/desc.json as it is in the stream, and what
 * the state command prints to DIR/state.json (a second pass; standard
 * input is spooled to a temporary file for it).  Files are
 * opened relative to DIR with O_NOFOLLOW, and names never contain '/',
 * so nothing is written outside DIR.  The sizes of all blocks together
 * (the apparent bytes written) are refused above --max-bytes, checked
 * while the block list is read, before any file is made.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dump.h"

#define PROG "migstream-dump"
/* Longest file name made of a block's idstr, before its index suffix. */
#define SAFE_NAME_MAX  200u
#define SAFE_NAME_SIZE DUMP_SAFE_NAME_SIZE
/* Default of --max-bytes: the block files' sizes together, 1 TiB. */
#define DEFAULT_MAX_BYTES (UINT64_C(1) << 40)
#define EXTRACT_USAGE	  "Usage: " PROG " extract [--max-bytes=N] DIR FILE\n"

struct extract {
	int dirfd;
	bool *made; /* per block: its file was created */
	int cur;    /* the block whose file is open, or -1 */
	int cur_fd;
	uint8_t *page; /* an XBZRLE page being decoded */
	int vmdesc_fd; /* desc.json while the VM description is read */
	uint8_t type;
	uint64_t files;
	uint64_t max_bytes;  /* --max-bytes */
	uint64_t apparent;   /* the sizes of the blocks listed so far */
	unsigned counted;    /* blocks in apparent */
	struct dump_error e; /* the first error of the output (DIR) */
};

static int ex_fail(struct extract *x, int err, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

static int ex_fail(struct extract *x, int err, const char *fmt, ...)
{
	va_list ap;

	/* About the output: no input offset to name. */
	va_start(ap, fmt);
	err = dump_error_vset(&x->e, err, DUMP_NO_OFFSET, DUMP_NO_SECTION, NULL,
			      fmt, ap);
	va_end(ap);
	return err;
}

/*
 * safe_name() - The file name of a RAM block.
 *
 * Bytes other than letters, digits and "_-+,=@:" are written %XX, '.'
 * included where it would start the name (so "." and ".." cannot occur)
 * and '%' always (so the mapping is one to one); '/' is always encoded,
 * so the name is one path component.  Names longer than SAFE_NAME_MAX
 * are cut and end with "~" and the block's index @idx in the list: '~'
 * is encoded in any other name, and the walker refuses two blocks of one
 * name, so no two blocks get one file name.  The names desc.json and
 * state.json are reserved.
 */
void dump_safe_name(char *dst, const char *src, unsigned idx)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)src;
	size_t n = 0;
	bool cut = false;

	for (; *p; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') ||
			  (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || strchr("_-+,=@:", *p) ||
			  (*p == '.' && n);

		if (n + 3 > SAFE_NAME_MAX) {
			cut = true;
			break;
		}
		if (ok) {
			dst[n++] = (char)*p;
		} else {
			dst[n++] = '%';
			dst[n++] = hex[*p >> 4];
			dst[n++] = hex[*p & 15];
		}
	}
	dst[n] = '\0';
	if (cut)
		snprintf(dst + n, SAFE_NAME_SIZE - n, "~%u", idx);
	if (!strcmp(dst, "desc.json") || !strcmp(dst, "state.json")) {
		/* "desc.json" becomes "desc%2Ejson". */
		n = strlen(dst) - 5;
		memcpy(dst + n, "%2Ejson", 8);
	}
}

/* The descriptor of block @blk's file, created at its size if new. */
static int block_fd(struct extract *x, const struct dump_walk *w, unsigned blk)
{
	const struct dump_ram_block *b = &w->blk[blk];
	char name[SAFE_NAME_SIZE];
	int flags = O_RDWR | O_NOFOLLOW | O_CLOEXEC, err;

	if (x->cur == (int)blk)
		return x->cur_fd;
	if (x->cur_fd >= 0)
		close(x->cur_fd);
	x->cur = -1;
	dump_safe_name(name, b->name, blk);
	if (strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return ex_fail(x, -EINVAL, "RAM block '%s': unsafe name",
			       b->name);
	/* Created, never reopened: O_EXCL makes a second block that would
	 * land in an existing file (of this run or of another) an error. */
	if (!x->made[blk])
		flags |= O_CREAT | O_EXCL;
	x->cur_fd = openat(x->dirfd, name, flags, 0644);
	if (x->cur_fd < 0 && errno == EEXIST) {
		x->cur_fd = -1;
		return ex_fail(x, -EEXIST,
			       "%s: exists already (RAM block '%s'): extract "
			       "creates every block's file, into a new or "
			       "empty DIR",
			       name, b->name);
	}
	if (x->cur_fd < 0) {
		err = errno;
		return ex_fail(x, -err, "%s: cannot create: %s", name,
			       strerror(err));
	}
	if (!x->made[blk] && ftruncate(x->cur_fd, (off_t)b->len))
		return ex_fail(x, -errno, "%s: cannot set the size: %s", name,
			       strerror(errno));
	x->made[blk] = true;
	x->files++;
	x->cur = (int)blk;
	return x->cur_fd;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	return !n || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

static int put_page(struct extract *x, int fd, const uint8_t *d, size_t n,
		    uint64_t addr)
{
	size_t done = 0;
	ssize_t k;

	while (done < n) {
		k = pwrite(fd, d + done, n - done, (off_t)(addr + done));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return ex_fail(x, k < 0 ? -errno : -EIO,
				       "writing a page: %s",
				       k < 0 ? strerror(errno) : "short write");
		done += (size_t)k;
	}
	return 0;
}

static int get_page(struct extract *x, int fd, uint8_t *d, size_t n,
		    uint64_t addr)
{
	ssize_t k = pread(fd, d, n, (off_t)addr);

	if (k < 0)
		return ex_fail(x, -errno, "reading a page back: %s",
			       strerror(errno));
	if ((size_t)k < n)
		memset(d + k, 0, n - (size_t)k);
	return 0;
}

/* Apply XBZRLE data (checked by the walker) to the page in @page. */
static void xbzrle_apply(uint8_t *page, const uint8_t *src, size_t slen)
{
	size_t i = 0, d = 0;
	uint32_t count;

	while (i < slen) {
		count = src[i] & 0x7f;
		if (src[i++] & 0x80)
			count |= (uint32_t)src[i++] << 7;
		d += count;
		if (i >= slen)
			break;
		count = src[i] & 0x7f;
		if (src[i++] & 0x80)
			count |= (uint32_t)src[i++] << 7;
		memcpy(page + d, src + i, count);
		d += count;
		i += count;
	}
}

static int ex_page(struct dump_walk *w, unsigned blk, uint64_t addr,
		   enum dump_page_kind kind, const uint8_t *data, size_t len,
		   void *opaque)
{
	struct extract *x = opaque;
	size_t ps = w->page_size;
	int fd;

	if (x->e.code)
		return x->e.code;
	if (addr + ps > w->blk[blk].len)
		ps = (size_t)(w->blk[blk].len - addr);
	fd = block_fd(x, w, blk);
	if (fd < 0)
		return x->e.code;
	if (kind == DUMP_PAGE_XBZRLE) {
		if (!x->page) {
			x->page = calloc(1, w->page_size);
			if (!x->page)
				return ex_fail(x, -ENOMEM, "out of memory");
		}
		if (get_page(x, fd, x->page, ps, addr))
			return x->e.code;
		xbzrle_apply(x->page, data, len);
		return put_page(x, fd, x->page, ps, addr);
	}
	if (kind != DUMP_PAGE_ZERO && !all_zero(data, ps))
		return put_page(x, fd, data, ps, addr);
	/* A zero page: the file holds zeros there unless an earlier copy
	 * of the page was written. */
	if (!x->page) {
		x->page = calloc(1, w->page_size);
		if (!x->page)
			return ex_fail(x, -ENOMEM, "out of memory");
	}
	if (get_page(x, fd, x->page, ps, addr))
		return x->e.code;
	if (all_zero(x->page, ps))
		return 0;
	memset(x->page, 0, ps);
	return put_page(x, fd, x->page, ps, addr);
}

static int ex_begin(struct dump_walk *w, const ms_record *rec,
		    ms_stream *payload, void *opaque)
{
	struct extract *x = opaque;

	(void)w;
	(void)payload;
	if (x->e.code)
		return x->e.code;
	x->type = rec->type;
	if (rec->type != MS_REC_VMDESC)
		return 0;
	x->vmdesc_fd = openat(
		x->dirfd, "desc.json",
		O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (x->vmdesc_fd < 0)
		return ex_fail(x, -errno, "desc.json: cannot create: %s",
			       strerror(errno));
	x->files++;
	return 0;
}

/*
 * Add the blocks the walker listed since the last call to the apparent
 * bytes, and refuse them above x->max_bytes.  Called from the bytes hook:
 * the walker lists a block just before it consumes the block's entry, so
 * the error names the offset of the entry that goes over.
 */
static int count_blocks(struct extract *x, struct dump_walk *w)
{
	for (; x->counted < w->nblk; x->counted++) {
		uint64_t len = w->blk[x->counted].len;

		if (len > x->max_bytes - x->apparent)
			return dump_walk_fail(
				w, -E2BIG,
				"block list: RAM block %u '%s' of 0x%llx "
				"bytes after 0x%llx: block files of at most "
				"%llu bytes in all expected (--max-bytes)",
				x->counted, w->blk[x->counted].name,
				(unsigned long long)len,
				(unsigned long long)x->apparent,
				(unsigned long long)x->max_bytes);
		x->apparent += len;
	}
	return 0;
}

static int ex_bytes(struct dump_walk *w, const uint8_t *d, size_t n,
		    void *opaque)
{
	struct extract *x = opaque;
	ssize_t k;

	if (x->e.code)
		return x->e.code;
	if (w->nblk > x->counted && count_blocks(x, w))
		return x->e.code ? x->e.code : -E2BIG;
	if (x->type != MS_REC_VMDESC || x->vmdesc_fd < 0)
		return 0;
	while (n) {
		k = write(x->vmdesc_fd, d, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return ex_fail(x, k < 0 ? -errno : -EIO,
				       "desc.json: %s",
				       k < 0 ? strerror(errno) : "short write");
		d += k;
		n -= (size_t)k;
	}
	return 0;
}

static void ex_record(struct dump_walk *w, const ms_record *rec, uint64_t plen,
		      void *opaque)
{
	struct extract *x = opaque;

	(void)w;
	(void)plen;
	if (rec->type == MS_REC_VMDESC && x->vmdesc_fd >= 0) {
		if (close(x->vmdesc_fd) && !x->e.code)
			ex_fail(x, -errno, "desc.json: %s", strerror(errno));
		x->vmdesc_fd = -1;
	}
	x->type = MS_REC_EOF;
}

/*
 * A mapped file: checked whole first (dump-mapped.c), then each block's
 * file made by copying its region; the walk that follows reads the device
 * stream for desc.json and state.json.  Return: a DUMP_EXIT_* status.
 */
static int mapped_blocks(struct extract *x, struct dump_mapped *m)
{
	char name[SAFE_NAME_SIZE];
	struct dump_walk v;
	uint64_t total = 0;
	unsigned i;
	int ret;

	ret = dump_mapped_pages(m, true);
	if (!ret) {
		memset(&v, 0, sizeof(v));
		v.strict = true;
		ret = dump_mapped_walk(m, &v);
		dump_walk_free(&v);
	}
	if (ret) {
		fprintf(stderr, PROG ": %s: %s\n", dump_esc(m->name), m->e.msg);
		return ret;
	}
	for (i = 0; i < m->nblocks; i++) {
		if (m->b[i].used > x->max_bytes - total) {
			fprintf(stderr,
				PROG ": %s: block '%s' of 0x%llx bytes after "
				     "0x%llx: block files of at most %llu "
				     "bytes in all expected (--max-bytes)\n",
				dump_esc(m->name), dump_esc(m->b[i].name),
				(unsigned long long)m->b[i].used,
				(unsigned long long)total,
				(unsigned long long)x->max_bytes);
			return DUMP_EXIT_INVALID;
		}
		total += m->b[i].used;
	}
	for (i = 0; i < m->nblocks; i++) {
		dump_safe_name(name, m->b[i].name, i);
		if (strchr(name, '/') || !strcmp(name, ".") ||
		    !strcmp(name, "..")) {
			ex_fail(x, -EINVAL, "RAM block '%s': unsafe name",
				dump_esc(m->b[i].name));
			return DUMP_EXIT_IO;
		}
		ret = dump_mapped_block_file(m, i, x->dirfd, name);
		if (ret > 0) {
			fprintf(stderr, PROG ": %s: %s\n", dump_esc(m->name),
				m->e.msg);
			return ret;
		}
		if (ret) {
			ex_fail(x, ret, "%s: %s%s", name, strerror(-ret),
				ret == -EEXIST ? " (extract creates every "
						 "block's file, into a new or "
						 "empty DIR)"
					       : "");
			return DUMP_EXIT_IO;
		}
		x->made[i] = true;
		x->files++;
	}
	return lseek(m->fd, (off_t)m->dev_off, SEEK_SET) < 0 ? DUMP_EXIT_IO
							     : DUMP_EXIT_OK;
}

/*
 * DIR/state.json: what the state command prints, from a second pass over
 * the stream with the description the first one kept.
 */
static int write_state(struct extract *x, struct dump_walk *w, int fd,
		       off_t start)
{
	FILE *f;
	int sfd, ret;

	if (!w->vmdesc) {
		fprintf(stderr,
			PROG ": %s: no VM description (vmdesc) trailer: "
			     "desc.json and state.json not written\n",
			w->name);
		return DUMP_EXIT_OK;
	}
	if (start < 0 || lseek(fd, start, SEEK_SET) != start)
		return ex_fail(x, -errno, "%s: cannot seek back: %s", w->name,
			       strerror(errno));
	sfd = openat(x->dirfd, "state.json",
		     O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		     0644);
	if (sfd < 0)
		return ex_fail(x, -errno, "state.json: cannot create: %s",
			       strerror(errno));
	f = fdopen(sfd, "w");
	if (!f) {
		close(sfd);
		return ex_fail(x, -errno, "state.json: %s", strerror(errno));
	}
	x->files++;
	ret = dump_state_write(w->name, fd, w->vmdesc, w->vmdesc_len, f);
	if ((fflush(f) || ferror(f)) && !ret)
		ex_fail(x, -errno, "state.json: %s", strerror(errno));
	if (fclose(f) && !ret && !x->e.code)
		ex_fail(x, -errno, "state.json: %s", strerror(errno));
	if (ret || x->e.code)
		unlinkat(x->dirfd, "state.json", 0);
	return ret;
}

/*
 * A byte count: decimal digits and an optional binary suffix K, M, G, T,
 * P or E.  Return: 0, or -EINVAL for anything else, 0 included, or a
 * count past 2^64 - 1.
 */
static int parse_bytes(const char *arg, uint64_t *out)
{
	static const char units[] = "KMGTPE";
	const char *u;
	uint64_t v = 0;
	const char *p = arg;
	unsigned shift = 0;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p) {
		u = strchr(units, *p);
		if (!u || p[1])
			return -EINVAL;
		shift = 10u * (unsigned)(u - units + 1);
	}
	if (!v || v > UINT64_MAX >> shift)
		return -EINVAL;
	*out = v << shift;
	return 0;
}

/* The options; DUMP_EXIT_OK to go on (*@done unset), or the status. */
static int extract_options(struct extract *x, int argc, char **argv, bool *done)
{
	static const struct option longopts[] = {
		{"max-bytes", required_argument, NULL, 'b'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int opt;

	*done = false;
	x->max_bytes = DEFAULT_MAX_BYTES;
	optind = 0; /* a fresh getopt: main() parsed the command line before */
	while ((opt = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'b':
			if (!parse_bytes(optarg, &x->max_bytes))
				break;
			fprintf(stderr,
				PROG " extract: --max-bytes: a byte count "
				     "from 1 (suffixes K, M, G, T, P, E) "
				     "expected, found '%s'\n" EXTRACT_USAGE,
				optarg);
			*done = true;
			return DUMP_EXIT_USAGE;
		case 'h':
			printf(EXTRACT_USAGE);
			*done = true;
			return DUMP_EXIT_OK;
		default:
			*done = true;
			return DUMP_EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr,
			PROG " extract: DIR and FILE expected\n" EXTRACT_USAGE);
		*done = true;
		return DUMP_EXIT_USAGE;
	}
	return DUMP_EXIT_OK;
}

/*
 * Open the input (@in, "-" for standard input, spooled unless it is a
 * regular file: state.json needs a second pass).  Return: a DUMP_EXIT_*
 * status, the message printed.
 */
int dump_extract_main(int argc, char **argv)
{
	struct extract x = {
		.dirfd = -1, .cur = -1, .cur_fd = -1, .vmdesc_fd = -1};
	struct dump_mapped m;
	struct dump_walk w;
	const char *dir, *in;
	off_t start;
	unsigned i;
	int fd, ret, sret = 0;
	bool owned;
	bool done;

	ret = extract_options(&x, argc, argv, &done);
	if (done)
		return ret;
	dir = argv[optind];
	in = argv[optind + 1];
	memset(&w, 0, sizeof(w));
	/* state.json needs a second pass: a pipe or gzip is spooled
	 * (dump-input.c). */
	memset(&m, 0, sizeof(m));
	m.fd = -1;
	if (dump_is_mapped(in)) {
		ret = dump_mapped_open(&m, in);
		if (ret) {
			fprintf(stderr, PROG ": %s: %s\n", dump_esc(m.name),
				m.e.msg);
			dump_mapped_close(&m);
			return ret;
		}
		fd = m.fd;
		w.name = m.name;
		owned = false;
	} else {
		ret = dump_open_file(in, &fd, &w.name, &owned);
		if (ret)
			return ret;
	}
	if (mkdir(dir, 0755) && errno != EEXIST) {
		fprintf(stderr, PROG ": %s: cannot create: %s\n", dir,
			strerror(errno));
		ret = DUMP_EXIT_IO;
		goto out_close_in;
	}
	x.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	x.made = calloc(DUMP_MAX_RAM_BLOCKS, sizeof(*x.made));
	if (x.dirfd < 0 || !x.made) {
		fprintf(stderr, PROG ": %s: %s\n", dir,
			x.made ? strerror(errno) : "out of memory");
		ret = DUMP_EXIT_IO;
		goto out_close_dir;
	}
	if (m.fd >= 0) {
		ret = mapped_blocks(&x, &m);
		if (ret && !x.e.code)
			goto out_close_dir;
		if (ret)
			goto out_report;
	}
	start = lseek(fd, 0, SEEK_CUR);
	w.fd = fd;
	w.strict = true;
	w.keep_vmdesc = true;
	w.progress = dump_progress(false);
	w.on_begin = ex_begin;
	w.on_bytes = ex_bytes;
	w.on_page = m.fd >= 0 ? NULL : ex_page;
	w.on_record = ex_record;
	w.opaque = &x;
	ret = dump_walk_run(&w);
	/* Blocks without a page still get their (all-zero) file. */
	for (i = 0; !ret && !x.e.code && i < w.nblk; i++)
		if (!x.made[i])
			block_fd(&x, &w, i);
	if (x.cur_fd >= 0 && close(x.cur_fd) && !x.e.code)
		ex_fail(&x, -errno, "closing a block file: %s",
			strerror(errno));
	if (x.vmdesc_fd >= 0)
		close(x.vmdesc_fd);
	if (!ret && !x.e.code && !w.ram_broken) {
		/* Its messages are printed already. */
		sret = write_state(&x, &w, fd, start);
	}
out_report:
	if (x.e.code) {
		fprintf(stderr, PROG ": %s: %s\n", dir, x.e.msg);
		ret = DUMP_EXIT_IO;
	} else if (ret) {
		fprintf(stderr, PROG ": %s: %s\n", w.name, w.errmsg);
	} else if (sret) {
		fprintf(stderr,
			PROG ": %s: state.json not written; the RAM blocks "
			     "and desc.json were\n",
			dir);
		ret = sret;
	} else if (w.ram_broken) {
		fprintf(stderr,
			PROG ": %s: RAM could not be parsed: the "
			     "block files are incomplete\n",
			w.name);
		ret = DUMP_EXIT_INVALID;
	}
	dump_walk_free(&w);
out_close_dir:
	if (x.dirfd >= 0)
		close(x.dirfd);
	free(x.made);
	free(x.page);
out_close_in:
	if (owned)
		close(fd);
	dump_mapped_close(&m);
	return ret;
}
