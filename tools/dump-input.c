/* SPDX-License-Identifier: MIT */
/*
 * migstream-dump: opening the input.  See dump.h.
 *
 * Every command opens its FILE here: a directory is refused (a usage
 * error), the first 4 bytes must be a stream's magic (QEMU's "QEVM",
 * native's 0x89 "MSN") or gzip's (1f 8b) before anything else is read or
 * written, and gzip input is inflated as it is read (zlib), members one
 * after the other as gunzip does.  A command that reads its input once
 * (info, sections, verify, convert) reads through a dump_source; one that
 * needs a regular file (state, desc, extract) gets standard input or the
 * inflated stream copied to an unlinked file in $TMPDIR (else /tmp), of at
 * most dump_spool_cap() bytes.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zlib.h>

#include "dump.h"

#define PROG	  "migstream-dump"
#define ZBUF_SIZE (256u * 1024u)

static int src_fail(struct dump_source *s, int err, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

/* Record the source's first error (the walk names the offset); return it. */
static int src_fail(struct dump_source *s, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err = dump_error_vset(&s->error, err, DUMP_NO_OFFSET, DUMP_NO_SECTION,
			      NULL, fmt, ap);
	va_end(ap);
	return err;
}

/* The bytes as they are in the file: the magic read first, then the fd. */
static ssize_t raw_read(struct dump_source *s, uint8_t *buf, size_t len)
{
	ssize_t n;

	if (s->head_off < s->nhead) {
		n = (ssize_t)(s->nhead - s->head_off);
		if ((size_t)n > len)
			n = (ssize_t)len;
		memcpy(buf, s->head + s->head_off, (size_t)n);
		s->head_off += (size_t)n;
		return n;
	}
	do
		n = read(s->fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return src_fail(s, -errno, "cannot read: %s", strerror(errno));
	return n;
}

/* Inflate into @buf; 0 at the end of the last member. */
static ssize_t gz_read(struct dump_source *s, uint8_t *buf, size_t len)
{
	ssize_t n;
	int zr;

	for (;;) {
		if (!s->z.avail_in && !s->in_eof) {
			n = raw_read(s, s->zbuf, ZBUF_SIZE);
			if (n < 0)
				return n;
			s->in_eof = n == 0;
			s->z.next_in = s->zbuf;
			s->z.avail_in = (uInt)n;
			s->in_total += (uint64_t)n;
		}
		if (s->member_end) {
			/* Another member, or the end. */
			if (!s->z.avail_in && s->in_eof)
				return 0;
			if (!s->z.avail_in)
				continue;
			if (s->z.next_in[0] != 0x1f)
				return src_fail(
					s, -EBADMSG,
					"gzip: another member (1f 8b) or the "
					"end "
					"expected after the compressed data, "
					"found byte 0x%02x at compressed "
					"offset "
					"0x%llx",
					s->z.next_in[0],
					(unsigned long long)(s->in_total -
							     s->z.avail_in));
			if (inflateReset(&s->z) != Z_OK)
				return src_fail(s, -ENOMEM,
						"zlib: cannot reset");
			s->member_end = false;
		}
		if (s->out_total >= s->out_max)
			len = 1; /* one byte more tells whether it is over */
		s->z.next_out = buf;
		s->z.avail_out = (uInt)(len > ZBUF_SIZE ? ZBUF_SIZE : len);
		n = (ssize_t)s->z.avail_out;
		zr = inflate(&s->z, Z_NO_FLUSH);
		n -= (ssize_t)s->z.avail_out;
		if (zr == Z_STREAM_END)
			s->member_end = true;
		else if (zr == Z_BUF_ERROR && s->in_eof && !s->z.avail_in)
			return src_fail(s, -EBADMSG,
					"gzip: the compressed data ends early, "
					"after %llu bytes (a cut .gz file)",
					(unsigned long long)s->in_total);
		else if (zr != Z_OK && zr != Z_BUF_ERROR)
			return src_fail(
				s, zr == Z_MEM_ERROR ? -ENOMEM : -EBADMSG,
				"gzip: invalid compressed data near compressed "
				"offset 0x%llx: %s",
				(unsigned long long)(s->in_total -
						     s->z.avail_in),
				s->z.msg ? s->z.msg : "corrupt");
		if (n > 0) {
			s->out_total += (uint64_t)n;
			if (s->out_total > s->out_max)
				return src_fail(s, -EFBIG,
						"gzip: inflates to more than "
						"%llu bytes "
						"(--gunzip-max)",
						(unsigned long long)s->out_max);
			return n;
		}
	}
}

ssize_t dump_source_read(void *opaque, void *buf, size_t len)
{
	struct dump_source *s = opaque;

	if (s->error.code)
		return s->error.code;
	return s->gz ? gz_read(s, buf, len) : raw_read(s, buf, len);
}

/* Whether @d (@n bytes) starts as a migration stream does. */
static bool is_stream_magic(const uint8_t *d, size_t n)
{
	return n >= 4 && (!memcmp(d, "QEVM", 4) ||
			  (d[0] == 0x89 && !memcmp(d + 1, "MSN", 3)));
}

/* Read the first bytes and check them; a DUMP_EXIT_* status. */
static int source_magic(struct dump_source *s)
{
	ssize_t n;

	while (s->nhead < sizeof(s->head)) {
		do
			n = read(s->fd, s->head + s->nhead,
				 sizeof(s->head) - s->nhead);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			fprintf(stderr, PROG ": %s: cannot read: %s\n",
				dump_esc(s->name), strerror(errno));
			return errno == EISDIR ? DUMP_EXIT_USAGE : DUMP_EXIT_IO;
		}
		if (n == 0)
			break;
		s->nhead += (size_t)n;
	}
	if (s->nhead >= 2 && s->head[0] == 0x1f && s->head[1] == 0x8b) {
		s->gz = true;
		s->zbuf = malloc(ZBUF_SIZE);
		if (!s->zbuf || inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK) {
			fprintf(stderr, PROG ": out of memory\n");
			return DUMP_EXIT_IO;
		}
		s->z_ready = true;
		s->out_max = dump_limits.gunzip_max ? dump_limits.gunzip_max
						    : DUMP_GUNZIP_MAX;
		return DUMP_EXIT_OK;
	}
	if (is_stream_magic(s->head, s->nhead))
		return DUMP_EXIT_OK;
	if (s->nhead < sizeof(s->head))
		fprintf(stderr,
			PROG ": %s: offset 0x0: a 4-byte magic expected, end "
			     "of stream found after %zu bytes\n",
			dump_esc(s->name), s->nhead);
	else
		fprintf(stderr,
			PROG ": %s: offset 0x0: magic \"QEVM\" (QEMU), 0x89 "
			     "\"MSN\" (native) or 1f 8b (gzip) expected, found "
			     "%02x %02x %02x %02x\n",
			dump_esc(s->name), s->head[0], s->head[1], s->head[2],
			s->head[3]);
	return DUMP_EXIT_INVALID;
}

int dump_source_open(struct dump_source *s, const char *file)
{
	struct stat st;
	int ret;

	memset(s, 0, sizeof(*s));
	s->name = file;
	s->fd = STDIN_FILENO;
	if (!strcmp(file, "-")) {
		s->name = "<stdin>";
	} else {
		s->fd = open(file, O_RDONLY | O_CLOEXEC);
		if (s->fd < 0) {
			fprintf(stderr, PROG ": %s: cannot open: %s\n",
				dump_esc(file), strerror(errno));
			return DUMP_EXIT_IO;
		}
		s->close = true;
	}
	if (fstat(s->fd, &st)) {
		fprintf(stderr, PROG ": %s: cannot stat: %s\n",
			dump_esc(s->name), strerror(errno));
		ret = DUMP_EXIT_IO;
	} else if (S_ISDIR(st.st_mode)) {
		fprintf(stderr,
			PROG ": %s: a directory: a stream file expected (usage "
			     "error)\n",
			dump_esc(s->name));
		ret = DUMP_EXIT_USAGE;
	} else {
		ret = source_magic(s);
	}
	if (ret)
		dump_source_close(s);
	return ret;
}

/* A plain regular file (not gzip) at offset 0 is read as it is: rewind
 * over the magic.  Return: whether it is one. */
static bool source_rewind_plain(struct dump_source *s)
{
	struct stat st;

	if (s->gz || fstat(s->fd, &st) || !S_ISREG(st.st_mode) ||
	    lseek(s->fd, 0, SEEK_CUR) != (off_t)s->nhead ||
	    lseek(s->fd, 0, SEEK_SET) != 0)
		return false;
	s->nhead = 0;
	s->head_off = 0;
	return true;
}

void dump_source_close(struct dump_source *s)
{
	if (s->z_ready)
		inflateEnd(&s->z);
	s->z_ready = false;
	free(s->zbuf);
	s->zbuf = NULL;
	if (s->close)
		close(s->fd);
	s->close = false;
}

int dump_source_status(const struct dump_source *s)
{
	switch (s->error.code) {
	case 0:
		return DUMP_EXIT_OK;
	case -EBADMSG:
	case -EFBIG:
		return DUMP_EXIT_INVALID;
	default:
		return DUMP_EXIT_IO;
	}
}

/*
 * The spool.
 */

uint64_t dump_spool_cap(int fd)
{
	struct statvfs v;
	uint64_t half;

	if (dump_limits.spool_max)
		return dump_limits.spool_max;
	if (fd >= 0 && !fstatvfs(fd, &v)) {
		half = (uint64_t)v.f_bavail * v.f_frsize / 2;
		if (half < DUMP_SPOOL_MAX)
			return half;
	}
	return DUMP_SPOOL_MAX;
}

/* An unlinked temporary file in $TMPDIR, else /tmp; -1 after a message. */
static int spool_create(const char *name)
{
	const char *dir = getenv("TMPDIR");
	char *path;
	int fd, e;

	if (!dir || !*dir)
		dir = "/tmp";
	path = malloc(strlen(dir) + sizeof("/migstream-dump-XXXXXX"));
	if (!path) {
		fprintf(stderr, PROG ": out of memory\n");
		return -1;
	}
	sprintf(path, "%s/migstream-dump-XXXXXX", dir);
	fd = mkstemp(path);
	e = errno;
	if (fd >= 0)
		unlink(path);
	else
		fprintf(stderr,
			PROG ": %s: cannot create a temporary file in %s "
			     "(TMPDIR): %s\n",
			dump_esc(name), dump_esc(dir), strerror(e));
	free(path);
	return fd;
}

static int write_all(int fd, const uint8_t *b, size_t n)
{
	ssize_t w;

	while (n) {
		w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Copy the rest of @s to a temporary file; a DUMP_EXIT_* status. */
static int spool(struct dump_source *s, int *out)
{
	uint64_t total = 0, cap;
	uint8_t *buf, first[4];
	size_t nfirst = 0, i;
	ssize_t n;
	int fd, ret = DUMP_EXIT_OK;

	fd = spool_create(s->name);
	if (fd < 0)
		return DUMP_EXIT_IO;
	cap = dump_spool_cap(fd);
	buf = malloc(ZBUF_SIZE);
	if (!buf) {
		close(fd);
		fprintf(stderr, PROG ": out of memory\n");
		return DUMP_EXIT_IO;
	}
	while ((n = dump_source_read(s, buf, ZBUF_SIZE)) > 0) {
		for (i = 0; nfirst < 4 && i < (size_t)n; i++)
			first[nfirst++] = buf[i];
		if (s->gz && nfirst == 4 && total < 4 &&
		    !is_stream_magic(first, 4)) {
			fprintf(stderr,
				PROG
				": %s: gzip data that is not a migration "
				"stream: offset 0x0 of the inflated data: "
				"magic \"QEVM\" or 0x89 \"MSN\" expected\n",
				dump_esc(s->name));
			ret = DUMP_EXIT_INVALID;
			break;
		}
		if ((uint64_t)n > cap - total) {
			fprintf(stderr,
				PROG
				": %s: more than %llu bytes to copy to a "
				"temporary file (--spool-max SIZE; the "
				"default is the smaller of 64 GiB and half "
				"the free space of TMPDIR)\n",
				dump_esc(s->name), (unsigned long long)cap);
			ret = DUMP_EXIT_INVALID;
			break;
		}
		total += (uint64_t)n;
		n = write_all(fd, buf, (size_t)n);
		if (n < 0) {
			fprintf(stderr,
				PROG ": %s: writing the temporary file: %s\n",
				dump_esc(s->name), strerror((int)-n));
			ret = DUMP_EXIT_IO;
			break;
		}
	}
	free(buf);
	if (!ret && !n && s->gz && nfirst < 4) {
		fprintf(stderr,
			PROG ": %s: gzip data of %zu bytes: not a migration "
			     "stream\n",
			dump_esc(s->name), nfirst);
		ret = DUMP_EXIT_INVALID;
	}
	if (!ret && n < 0) {
		fprintf(stderr, PROG ": %s: %s\n", dump_esc(s->name),
			s->error.msg);
		ret = dump_source_status(s);
	}
	if (!ret && lseek(fd, 0, SEEK_SET) < 0) {
		fprintf(stderr, PROG ": %s: cannot seek: %s\n",
			dump_esc(s->name), strerror(errno));
		ret = DUMP_EXIT_IO;
	}
	if (ret)
		close(fd);
	else
		*out = fd;
	return ret;
}

int dump_open_file(const char *file, int *fd, const char **name, bool *owned)
{
	struct dump_source s;
	struct dump_mapped m;
	int ret;

	if (dump_is_mapped(file)) {
		/* A mapped file: its device stream, once the header, table
		 * and regions are checked (offsets in messages are then the
		 * device stream's). */
		ret = dump_mapped_open(&m, file);
		if (!ret && lseek(m.fd, (off_t)m.dev_off, SEEK_SET) < 0)
			ret = DUMP_EXIT_IO;
		if (ret) {
			fprintf(stderr, PROG ": %s: %s\n", dump_esc(m.name),
				m.e.code ? m.e.msg : strerror(errno));
			dump_mapped_close(&m);
			return ret;
		}
		*fd = m.fd;
		*name = m.name;
		*owned = true;
		m.fd = -1;
		dump_mapped_close(&m);
		return DUMP_EXIT_OK;
	}
	ret = dump_source_open(&s, file);
	if (ret)
		return ret;
	*name = s.name;
	if (source_rewind_plain(&s)) {
		*fd = s.fd;
		*owned = s.close;
		return DUMP_EXIT_OK;
	}
	ret = spool(&s, fd);
	dump_source_close(&s);
	*owned = true;
	return ret;
}

int dump_spool_stdin(int *fd)
{
	const char *name;
	bool owned;
	int ret = dump_open_file("-", fd, &name, &owned);

	/* A regular file on stdin needs no copy. */
	(void)name;
	(void)owned;
	return ret;
}
