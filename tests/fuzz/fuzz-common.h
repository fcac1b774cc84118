/* SPDX-License-Identifier: MIT */
/*
 * Shared by the fuzz targets: the layout of a fuzz input, the streams a
 * reader is run on, the payload consumers and the invariants checked after
 * every call.  A violated invariant prints what went wrong and calls
 * abort(), so that libFuzzer reports the input.
 *
 * An input is two control bytes followed by the stream:
 * - byte 0, the mode: bits 0-1 pick the source stream (a memory reader, a
 *   feed reader fed in small chunks, a custom pull reader that returns
 *   short reads, an iovec reader over a split list), bit 2 asks for small
 *   stream buffers, bits 3-5 are reader options chosen by the target,
 *   bit 6 makes the consumer well behaved (it reads every payload the way
 *   the writer wrote it), bit 7 makes one allocation fail.
 * - byte 1 seeds the pseudo-random choices: chunk sizes, how each payload
 *   is consumed and which allocation fails.
 */
#ifndef MS_FUZZ_COMMON_H
#define MS_FUZZ_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <migstream/migstream.h>

#define FZ_PREFIX	  2
#define FZ_MODE_SOURCE	  0x03u
#define FZ_MODE_SMALL_BUF 0x04u
#define FZ_MODE_OPT_A	  0x08u
#define FZ_MODE_OPT_B	  0x10u
#define FZ_MODE_OPT_C	  0x20u
#define FZ_MODE_POLITE	  0x40u
#define FZ_MODE_FAULT	  0x80u
#define FZ_MAX_IOV	  64
#define FZ_SCRATCH	  (128u * 1024u)
#define FZ_SMALL_VMDESC	  64u

enum fz_source { FZ_SRC_MEM, FZ_SRC_FEED, FZ_SRC_PULL, FZ_SRC_IOV };

struct fz {
	uint8_t mode;
	ms_profile profile; /* what the reader was asked for */
	bool no_footers;    /* QEMU: the reader expects no footers */
	uint64_t rng;	    /* the consumer's choices */
	uint64_t rng_src;   /* the source's chunk sizes */
	const uint8_t *data;
	size_t size;
	size_t pulled; /* pull source: bytes handed out */
	unsigned long nalloc;
	unsigned long fail_at; /* 0, or the allocation that fails */
	ms_allocator alloc;
	ms_codec_opts copts;
	ms_stream *s;
	ms_reader *r;
};

/* Payload bytes land here; static so that no read is an allocation. */
static uint8_t fz_scratch[FZ_SCRATCH];
static volatile uint8_t fz_sink;

static inline void fz_die(const struct fz *f, const char *what,
			  const char *file, int line)
{
	fprintf(stderr, "%s:%d: fuzz invariant violated: %s\n", file, line,
		what);
	if (f && f->r)
		fprintf(stderr, "reader error %d (%s) at 0x%llx: '%s'\n",
			ms_reader_error(f->r),
			ms_strerror(ms_reader_error(f->r)),
			(unsigned long long)ms_reader_error_offset(f->r),
			ms_reader_errmsg(f->r));
	abort();
}

#define FZ_ASSERT(f, cond)                                                     \
	do {                                                                   \
		if (!(cond))                                                   \
			fz_die((f), #cond, __FILE__, __LINE__);                \
	} while (0)

static inline uint32_t fz_rand(uint64_t *st)
{
	uint64_t x = *st;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*st = x;
	return (uint32_t)(x >> 32);
}

/* A length: mostly small, sometimes a few KiB, rarely up to the scratch. */
static inline size_t fz_len(struct fz *f)
{
	uint32_t v = fz_rand(&f->rng);

	switch (v & 7) {
	case 0:
	case 1:
	case 2:
	case 3:
		return (v >> 8) % 17;
	case 4:
	case 5:
		return (v >> 8) % 257;
	case 6:
		return (v >> 8) % 8193;
	default:
		return (v >> 8) % (FZ_SCRATCH + 1);
	}
}

/*
 * Allocation hooks: count every allocation and, in fault mode, fail the
 * one numbered fail_at.
 */
static inline bool fz_alloc_fails(struct fz *f)
{
	f->nalloc++;
	return f->fail_at && f->nalloc == f->fail_at;
}

static inline void *fz_malloc(void *opaque, size_t size)
{
	if (fz_alloc_fails(opaque))
		return NULL;
	return malloc(size);
}

static inline void *fz_realloc(void *opaque, void *ptr, size_t size)
{
	if (fz_alloc_fails(opaque))
		return NULL;
	return realloc(ptr, size);
}

static inline void fz_free(void *opaque, void *ptr)
{
	(void)opaque;
	free(ptr);
}

/* Pull source: hands out the input in short, pseudo-random reads. */
static inline ssize_t fz_pull_read(void *opaque, void *buf, size_t len)
{
	struct fz *f = opaque;
	uint32_t v = fz_rand(&f->rng_src);
	size_t n;

	if (f->pulled == f->size)
		return 0;
	if ((v & 0x1ff) == 0)
		return -EINTR; /* retried by the stream */
	n = (v & 0x100) ? 1 + (v >> 16) % 4096 : 1 + (v >> 16) % 32;
	if (n > len)
		n = len;
	if (n > f->size - f->pulled)
		n = f->size - f->pulled;
	memcpy(buf, f->data + f->pulled, n);
	f->pulled += n;
	return (ssize_t)n;
}

static const ms_stream_ops fz_pull_ops = {
	MS_STREAM_OPS_VERSION, NULL, fz_pull_read, NULL, NULL,
};

/* Open the source stream; 0 or a negative errno (only -ENOMEM is fine). */
static inline int fz_open_source(struct fz *f)
{
	ms_stream_opts so = {MS_STREAM_OPTS_VERSION, NULL, 0, 0, 0};
	struct iovec iov[FZ_MAX_IOV];
	size_t off, n;
	int ret, cnt;

	if (f->fail_at)
		so.allocator = &f->alloc;
	if (f->mode & FZ_MODE_SMALL_BUF)
		so.buffer_size = 16 + fz_rand(&f->rng_src) % 64;
	switch (f->mode & FZ_MODE_SOURCE) {
	case FZ_SRC_MEM:
		return ms_stream_new_mem_reader(&f->s, f->data, f->size, &so);
	case FZ_SRC_FEED:
		ret = ms_stream_new_feed(&f->s, &so);
		if (ret)
			return ret;
		for (off = 0; off < f->size; off += n) {
			uint32_t v = fz_rand(&f->rng_src);

			n = (v & 1) ? 1 + (v >> 8) % 16 : 1 + (v >> 8) % 2048;
			if (n > f->size - off)
				n = f->size - off;
			/* A failed feed fails the stream: the reader must
			 * report it. */
			if (ms_stream_feed(f->s, f->data + off, n))
				break;
		}
		ms_stream_feed_end(f->s);
		return 0;
	case FZ_SRC_PULL:
		return ms_stream_new_custom(&f->s, &fz_pull_ops, f,
					    MS_STREAM_READER, &so);
	default:
		for (off = 0, cnt = 0; cnt < FZ_MAX_IOV; cnt++) {
			uint32_t v = fz_rand(&f->rng_src);

			n = (v & 3) == 0 ? 0 : 1 + (v >> 8) % 1024;
			if (cnt == FZ_MAX_IOV - 1 || n > f->size - off)
				n = f->size - off;
			iov[cnt].iov_base = (void *)(uintptr_t)(f->data + off);
			iov[cnt].iov_len = n;
			off += n;
			if (off == f->size) {
				cnt++;
				break;
			}
		}
		return ms_stream_new_iov_reader(&f->s, iov, cnt, &so);
	}
}

/*
 * Payload consumers.
 */

/* One pseudo-random get, peek or skip on @p, with stream invariants. */
static inline void fz_op(struct fz *f, ms_stream *p)
{
	char str[MS_COUNTED_STRING_MAX + 1];
	const uint8_t *d;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	size_t n = fz_len(f), i;
	ssize_t k;
	int ret;

	switch (fz_rand(&f->rng) % 10) {
	case 0:
		ret = ms_get_u8(p, &u8);
		FZ_ASSERT(f, !ret || !u8);
		break;
	case 1:
		ret = ms_get_be16(p, &u16);
		FZ_ASSERT(f, !ret || !u16);
		break;
	case 2:
		ret = ms_get_be32(p, &u32);
		FZ_ASSERT(f, !ret || !u32);
		break;
	case 3:
		ret = ms_get_be64(p, &u64);
		FZ_ASSERT(f, !ret || !u64);
		break;
	case 4:
		ret = ms_get_buffer(p, fz_scratch, n);
		if (ret)
			for (i = 0; i < n; i++)
				FZ_ASSERT(f, !fz_scratch[i]);
		break;
	case 5:
		k = ms_peek(p, &d, n);
		FZ_ASSERT(f, k <= (ssize_t)n);
		if (k > 0) {
			fz_sink ^= d[0];
			fz_sink ^= d[k - 1];
		}
		break;
	case 6:
		ms_skip(p, (fz_rand(&f->rng) & 0xff) ? n : UINT64_MAX / 2);
		break;
	case 7:
		ret = ms_get_counted_string(p, str);
		/* The bytes may hold a NUL; the string ends after them. */
		FZ_ASSERT(f,
			  ret < 0 || (ret <= MS_COUNTED_STRING_MAX &&
				      !str[ret] && strlen(str) <= (size_t)ret));
		FZ_ASSERT(f, ret >= 0 || !str[0]);
		break;
	case 8:
		ms_get_be32_array(p, (uint32_t *)(void *)fz_scratch, n / 4);
		break;
	default:
		if ((fz_rand(&f->rng) & 0x3f) == 0) {
			/* A payload parser fails the payload stream. */
			ms_stream_set_error(p, -EPROTO, "fuzz: bad payload");
			break;
		}
		ms_get_be16_array(p, (uint16_t *)(void *)fz_scratch, n / 2);
		break;
	}
}

/* Read @len bytes in scratch-sized pieces. */
static inline void fz_read(ms_stream *p, uint64_t len)
{
	while (len && !ms_stream_error(p)) {
		size_t n = len < FZ_SCRATCH ? (size_t)len : FZ_SCRATCH;

		ms_get_buffer(p, fz_scratch, n);
		len -= n;
	}
}

/* Read until the stream ends (native payloads end where they end). */
static inline void fz_drain(ms_stream *p)
{
	const uint8_t *d;

	while (ms_peek(p, &d, 1) > 0) {
		size_t n = ms_stream_available(p);

		if (n > FZ_SCRATCH)
			n = FZ_SCRATCH;
		if (ms_get_buffer(p, fz_scratch, n ? n : 1))
			break;
	}
}

/* QEMU sections: skip to the footer of section @id, as a scanner would. */
static inline void fz_scan_footer(ms_stream *p, uint32_t id)
{
	const uint8_t *d;

	while (ms_peek(p, &d, 5) == 5) {
		if (d[0] == MS_REC_FOOTER &&
		    ((uint32_t)d[1] << 24 | (uint32_t)d[2] << 16 |
		     (uint32_t)d[3] << 8 | d[4]) == id)
			return;
		if (ms_skip(p, 1))
			return;
	}
}

/* Consume a record's payload the way its writer wrote it. */
static inline void fz_polite(struct fz *f, const ms_record *rec, ms_stream *p)
{
	bool native = ms_reader_profile(f->r) == MS_PROFILE_NATIVE;
	uint32_t v;

	switch (rec->type) {
	case MS_REC_START:
	case MS_REC_PART:
	case MS_REC_END:
	case MS_REC_FULL:
		if (native)
			fz_drain(p);
		else if (!f->no_footers)
			fz_scan_footer(p, rec->section.section_id);
		break;
	case MS_REC_COMMAND:
		if (rec->cmd == MS_CMD_PACKAGED)
			ms_get_be32(p, &v);
		else
			fz_read(p, rec->length);
		break;
	case MS_REC_VMDESC:
		fz_read(p, rec->length);
		break;
	case MS_REC_CONFIGURATION:
		if (native)
			fz_drain(p);
		break;
	default:
		break;
	}
}

/* Consume a record's payload in an input-driven way. */
static inline void fz_consume(struct fz *f, const ms_record *rec)
{
	ms_stream *p = ms_reader_payload(f->r);
	uint32_t v, i;

	FZ_ASSERT(f, p != NULL);
	if (f->mode & FZ_MODE_POLITE) {
		fz_polite(f, rec, p);
		return;
	}
	v = fz_rand(&f->rng);
	switch (v % 8) {
	case 0:
	case 1:
		break; /* read nothing */
	case 2:
		fz_polite(f, rec, p);
		break;
	case 3:
		if (ms_reader_profile(f->r) == MS_PROFILE_NATIVE)
			fz_drain(p);
		else
			fz_scan_footer(p, rec->section.section_id);
		break;
	case 7:
		fz_op(f, p);
		fz_polite(f, rec, p);
		break;
	default:
		for (i = 0; i <= (v >> 8) % 4; i++)
			fz_op(f, p);
		break;
	}
	if (((v >> 16) & 0x7f) == 0) {
		/* A payload parser that gives up. */
		int err = ms_reader_error(f->r);
		int ret = ms_reader_fail(f->r, -EPROTO,
					 "fuzz consumer gave up on record %llu",
					 (unsigned long long)rec->index);

		FZ_ASSERT(f, ret == (err ? err : -EPROTO));
	}
}

/*
 * Invariants.
 */

static inline void fz_check_error(struct fz *f, int ret)
{
	const char *msg = ms_reader_errmsg(f->r);
	uint64_t off = ms_reader_error_offset(f->r);
	char copy[1024];
	ms_record rec;

	FZ_ASSERT(f, ms_reader_error(f->r) == ret);
	FZ_ASSERT(f, msg && msg[0]);
	FZ_ASSERT(f, !strncmp(msg, "offset 0x", 9));
	FZ_ASSERT(f, strtoull(msg + 9, NULL, 16) == off);
	FZ_ASSERT(f, off <= f->size);
	snprintf(copy, sizeof(copy), "%s", msg);
	/* Sticky: the same error, the same message, the same offset. */
	FZ_ASSERT(f, ms_reader_next(f->r, &rec) == ret);
	FZ_ASSERT(f, ms_reader_next(f->r, &rec) == ret);
	FZ_ASSERT(f, !strcmp(ms_reader_errmsg(f->r), copy));
	FZ_ASSERT(f, ms_reader_error_offset(f->r) == off);
}

static inline void fz_check_record(struct fz *f, const ms_record *rec,
				   uint64_t prev, bool first)
{
	ms_profile pr = ms_reader_profile(f->r);

	FZ_ASSERT(f, !ms_reader_error(f->r));
	FZ_ASSERT(f, !ms_reader_errmsg(f->r)[0]);
	FZ_ASSERT(f, rec->offset <= f->size);
	FZ_ASSERT(f, first || rec->offset > prev);
	FZ_ASSERT(f, pr == MS_PROFILE_QEMU || pr == MS_PROFILE_NATIVE);
	FZ_ASSERT(f, f->profile == MS_PROFILE_AUTO || pr == f->profile);
	FZ_ASSERT(f, memchr(rec->section.idstr, '\0',
			    sizeof(rec->section.idstr)) != NULL);
	FZ_ASSERT(f, memchr(rec->machine, '\0', sizeof(rec->machine)) != NULL);
	switch (rec->type) {
	case MS_REC_START:
	case MS_REC_PART:
	case MS_REC_END:
	case MS_REC_FULL:
		FZ_ASSERT(f, rec->section.type == rec->type);
		break;
	case MS_REC_CONFIGURATION:
		FZ_ASSERT(f, rec->length == strlen(rec->machine));
		break;
	case MS_REC_VMDESC:
		FZ_ASSERT(f, rec->length <= f->copts.max_vmdesc ||
				     !f->copts.max_vmdesc);
		break;
	case MS_REC_EOF:
	case MS_REC_COMMAND:
	case MS_REC_FOOTER:
		break;
	default:
		FZ_ASSERT(f, !"record of an unknown type");
	}
}

static inline void fz_check_end(struct fz *f)
{
	ms_record rec;

	FZ_ASSERT(f, !ms_reader_error(f->r));
	FZ_ASSERT(f, !ms_reader_errmsg(f->r)[0]);
	FZ_ASSERT(f, ms_reader_error_offset(f->r) == 0);
	/* A clean end is the end of the input: nothing is left over. */
	FZ_ASSERT(f, ms_stream_tell(f->s) == f->size);
	FZ_ASSERT(f, ms_reader_next(f->r, &rec) == 0);
}

/*
 * Run one input.  The target fills f->copts (from the option bits of the
 * mode) and f->profile before calling.
 */
static inline void fz_run(struct fz *f)
{
	uint64_t prev = 0, count = 0;
	ms_record rec;
	int ret;

	if (fz_open_source(f)) {
		FZ_ASSERT(f, f->fail_at);
		return;
	}
	ret = ms_reader_new(&f->r, f->s, &f->copts);
	if (ret) {
		FZ_ASSERT(f, ret == -ENOMEM && f->fail_at);
		f->r = NULL;
		goto out_close;
	}
	for (;;) {
		ret = ms_reader_next(f->r, &rec);
		if (ret <= 0)
			break;
		FZ_ASSERT(f, ret == 1);
		fz_check_record(f, &rec, prev, !count);
		prev = rec.offset;
		/* Every record takes at least one byte: no endless loop. */
		FZ_ASSERT(f, ++count <= f->size);
#ifdef FZ_VERBOSE
		fprintf(stderr, "record %s at 0x%llx\n",
			ms_record_type_name(rec.type),
			(unsigned long long)rec.offset);
#endif
		fz_consume(f, &rec);
	}
#ifdef FZ_VERBOSE
	fprintf(stderr, "end: %d %s\n", ret, ms_reader_errmsg(f->r));
#endif
	if (ret < 0)
		fz_check_error(f, ret);
	else
		fz_check_end(f);
	ms_reader_free(f->r);
	f->r = NULL;
out_close:
	ms_stream_close(f->s);
	f->s = NULL;
}

/* Split the input into control bytes and the stream; false if too short. */
static inline bool fz_init(struct fz *f, const uint8_t *data, size_t size,
			   ms_profile profile)
{
	memset(f, 0, sizeof(*f));
	if (size < FZ_PREFIX)
		return false;
	f->mode = data[0];
	f->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)data[1] * 0x100000001b3ull);
	f->rng_src = f->rng ^ 0xd1b54a32d192ed03ull;
	fz_rand(&f->rng);
	fz_rand(&f->rng_src);
	f->data = data + FZ_PREFIX;
	f->size = size - FZ_PREFIX;
	f->profile = profile;
	f->alloc.malloc = fz_malloc;
	f->alloc.realloc = fz_realloc;
	f->alloc.free = fz_free;
	f->alloc.opaque = f;
	if (f->mode & FZ_MODE_FAULT)
		f->fail_at = 1 + fz_rand(&f->rng_src) % 24;
	f->copts.version = MS_CODEC_OPTS_VERSION;
	f->copts.profile = profile;
	if (f->fail_at)
		f->copts.allocator = &f->alloc;
	/* Now and then a small trailer limit, unless the consumer is polite. */
	if (!(f->mode & FZ_MODE_POLITE) && fz_rand(&f->rng) % 8 == 0)
		f->copts.max_vmdesc = fz_rand(&f->rng) % FZ_SMALL_VMDESC;
	return true;
}

/*
 * The targets of the dump tool's commands (fuzz_dump_state, _convert and
 * _extract) read files: a private directory made once per process, and
 * helpers to write, list and empty it.  Define FZ_WANT_FILES before the
 * include to get them.
 */
#ifdef FZ_WANT_FILES
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static char fz_dir_path[4096];
static inline bool fz_empty_dir(const char *path, bool rmself);

static inline void fz_dir_remove(void)
{
	fz_empty_dir(fz_dir_path, true);
}

/*
 * The process's directory, made at the first call and removed at exit;
 * aborts on failure.
 */
static inline const char *fz_dir(const char *target)
{
	const char *tmp = getenv("TMPDIR");

	if (fz_dir_path[0])
		return fz_dir_path;
	snprintf(fz_dir_path, sizeof(fz_dir_path), "%s/%s.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp", target);
	if (!mkdtemp(fz_dir_path)) {
		perror("fuzz: a temporary directory");
		abort();
	}
	atexit(fz_dir_remove);
	return fz_dir_path;
}

/* Write @size bytes to @path (created or truncated); aborts on failure. */
static inline void fz_write_file(const char *path, const uint8_t *data,
				 size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t off = 0;
	ssize_t n;

	if (fd < 0) {
		perror(path);
		abort();
	}
	while (off < size) {
		n = write(fd, data + off, size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			perror(path);
			abort();
		}
		off += (size_t)n;
	}
	if (close(fd)) {
		perror(path);
		abort();
	}
}

/*
 * Remove the entries of directory @path (regular files only: anything
 * else is reported by returning false) and, with @rmself, @path itself.
 */
static inline bool fz_empty_dir(const char *path, bool rmself)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char p[4096];
	struct stat st;
	bool ok = true;

	if (!d)
		return errno == ENOENT;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (snprintf(p, sizeof(p), "%s/%s", path, e->d_name) >=
			    (int)sizeof(p) ||
		    lstat(p, &st)) {
			ok = false;
			continue;
		}
		if (!S_ISREG(st.st_mode))
			ok = false; /* removed all the same */
		if (S_ISDIR(st.st_mode))
			fz_empty_dir(p, true);
		else
			unlink(p);
	}
	closedir(d);
	if (rmself && rmdir(path))
		ok = false;
	return ok;
}
#endif /* FZ_WANT_FILES */

#endif /* MS_FUZZ_COMMON_H */
