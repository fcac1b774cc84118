/* SPDX-License-Identifier: MIT */
/*
 * Damaged QEMU captures through migstream-dump's walker (tools/dump-walk.c),
 * in-process: every truncation must fail with an error naming its offset
 * (status 1), and no bit flip may crash, hang or leak; a flip the walker
 * refuses also names its offset.
 *
 * A whole capture is mostly 4 KiB pages and zero-page records, each
 * truncated the same way; walking it once per byte would take minutes.
 * So each capture is first reduced to a stream of the same grammar: its
 * header, configuration and RAM START as they are, the first records of
 * its RAM PART (the first pages of each kind it has, the block names),
 * the PART's EOS and footer, and then every byte from the END of RAM on
 * (all the device sections, EOF and the trailer, if any) as they are.
 * The reduced stream must walk cleanly; then it is cut at every offset
 * and flipped at every byte (see captures[] for the one exception), the
 * trailer's JSON at a stride.  The whole capture is also cut around every
 * record boundary and at a stride.
 *
 * Every byte is cut and flipped in the plain build, where a walk costs
 * least.  Under valgrind (CK_FORK=no, as make check-valgrind sets it), in
 * a sanitizer build, under qemu-user (MS_RUN_WRAPPER set) or with
 * MS_TEST_SAMPLED=1 (the CI's repeat builds) the reduced stream's offsets
 * are sampled instead (every 97th cut, every 101st flip): the same code
 * paths, at a fraction of the 2 x 10^5 walks.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <migstream/qemu_ram.h>

#include "dump.h"

/* Records kept of the RAM PART: at least this many, and enough to hold
 * this many pages of each kind other than zero pages. */
#define KEEP_RECORDS 48u
#define KEEP_PAGES   1u
#define MAX_RECORDS  4096u

/* The captures, and the stride of their reduced stream's cuts and flips:
 * every byte, but q35-run's 64 KiB of device sections (a virtio-net
 * section of 46 KB, mostly its filter tables) every 5th. */
static const struct {
	const char *name;
	size_t stride;
} captures[] = {{"pc-novmdesc", 1}, {"pc-compress", 1}, {"q35-run", 5}};

static int failures;
static int tmpfd = -1;
static bool sampled;

#define FAIL(...)                                                              \
	do {                                                                   \
		fprintf(stderr, "FAIL: " __VA_ARGS__);                         \
		fputc('\n', stderr);                                           \
		failures++;                                                    \
	} while (0)

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint8_t *load_gz(const char *path, size_t *len)
{
	size_t cap = 1u << 20, n = 0;
	uint8_t *b = malloc(cap), *nb;
	gzFile g = gzopen(path, "rb");
	int r;

	if (!g || !b) {
		fprintf(stderr, "%s: cannot read\n", path);
		free(b);
		if (g)
			gzclose(g);
		return NULL;
	}
	while ((r = gzread(g, b + n, (unsigned)(cap - n))) > 0) {
		n += (size_t)r;
		if (n == cap) {
			nb = realloc(b, cap * 2);
			if (!nb)
				break;
			b = nb;
			cap *= 2;
		}
	}
	gzclose(g);
	if (r < 0) {
		free(b);
		return NULL;
	}
	*len = n;
	return b;
}

/* Put @d (@n bytes) in the temporary file, for the walker to read. */
static int put_file(const uint8_t *d, size_t n)
{
	size_t off = 0;
	ssize_t w;

	if (ftruncate(tmpfd, 0) || lseek(tmpfd, 0, SEEK_SET))
		return -1;
	while (off < n) {
		w = write(tmpfd, d + off, n - off);
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	return 0;
}

/* Walk the first @n bytes of the temporary file as verify does. */
static int walk(size_t n, char *msg, size_t cap)
{
	struct dump_walk w;
	int ret;

	if (ftruncate(tmpfd, (off_t)n) || lseek(tmpfd, 0, SEEK_SET)) {
		perror("temporary file");
		exit(99);
	}
	memset(&w, 0, sizeof(w));
	w.name = "damaged";
	w.fd = tmpfd;
	w.strict = true;
	ret = dump_walk_run(&w);
	if (msg)
		snprintf(msg, cap, "%s", w.errmsg);
	if (ret && (!w.err || strncmp(w.errmsg, "offset 0x", 9)))
		FAIL("walk of %zu bytes: status %d without an offset: '%s'", n,
		     ret, w.errmsg);
	dump_walk_free(&w);
	return ret;
}

/* Record offsets of a stream, by a walk. */
struct recs {
	uint64_t off[MAX_RECORDS];
	uint8_t type[MAX_RECORDS];
	bool ram[MAX_RECORDS];
	size_t n;
};

static void on_rec(struct dump_walk *w, const ms_record *rec, uint64_t plen,
		   void *opaque)
{
	struct recs *r = opaque;

	(void)w;
	(void)plen;
	if (r->n == MAX_RECORDS)
		return;
	r->off[r->n] = rec->offset;
	r->type[r->n] = rec->type;
	r->ram[r->n] = !strcmp(rec->section.idstr, "ram");
	r->n++;
}

/*
 * The reduced stream (see the top): returns its length, written to
 * @out (at least @n + 256 bytes); 0 if the capture is not of the expected
 * shape.  The RAM PART keeps its first KEEP_RECORDS records and the first
 * KEEP_PAGES pages of each other kind, a CONTINUE record after a dropped
 * one getting its block's name back.
 */
static size_t reduce(const uint8_t *d, size_t n, const struct recs *r,
		     uint8_t *out)
{
	size_t i, part = 0, part_end = 0, end = 0, p, o, start, body;
	unsigned seen[3] = {0, 0, 0}, flags, kind;
	char blk[MS_COUNTED_STRING_MAX + 1] = "";
	bool prev_kept = true, keep;
	uint64_t v, nrec = 0;

	for (i = 0; i + 1 < r->n; i++) {
		if (r->type[i] == MS_REC_PART && r->ram[i] && !part) {
			part = (size_t)r->off[i];
			part_end = (size_t)r->off[i + 1]; /* its footer */
		}
		if (r->type[i] == MS_REC_END && r->ram[i])
			end = (size_t)r->off[i];
	}
	if (!part || !end || part_end <= part + 5 || end < part_end)
		return 0;
	o = part + 5;
	memcpy(out, d, o);
	for (p = part + 5; p + 8 <= part_end; nrec++) {
		start = p;
		v = be64(d + p);
		flags = (unsigned)(v & (MS_QEMU_RAM_PAGE_SIZE - 1));
		if (flags & MS_QEMU_RAM_EOS)
			break;
		p += 8;
		if (!(flags & MS_QEMU_RAM_CONTINUE)) {
			memcpy(blk, d + p + 1, d[p]);
			blk[d[p]] = '\0';
			p += 1u + d[p];
		}
		body = p;
		kind = 3;
		if (flags & MS_QEMU_RAM_ZERO) {
			p += 1;
		} else if (flags & MS_QEMU_RAM_PAGE) {
			p += MS_QEMU_RAM_PAGE_SIZE;
			kind = 0;
		} else if (flags & MS_QEMU_RAM_COMPRESS_PAGE) {
			p += 4u + be32(d + p);
			kind = 1;
		} else if (flags & MS_QEMU_RAM_XBZRLE) {
			p += 3u + ((size_t)d[p + 1] << 8 | d[p + 2]);
			kind = 2;
		} else {
			return 0; /* not handled here */
		}
		keep = nrec < KEEP_RECORDS ||
		       (kind < 3 && seen[kind] < KEEP_PAGES);
		if (kind < 3)
			seen[kind]++;
		if (keep && !prev_kept && (flags & MS_QEMU_RAM_CONTINUE)) {
			/* The same record, naming its block. */
			v &= ~(uint64_t)MS_QEMU_RAM_CONTINUE;
			for (i = 0; i < 8; i++)
				out[o + i] = (uint8_t)(v >> (56 - 8 * i));
			o += 8;
			out[o++] = (uint8_t)strlen(blk);
			memcpy(out + o, blk, strlen(blk));
			o += strlen(blk);
			memcpy(out + o, d + body, p - body);
			o += p - body;
		} else if (keep) {
			memcpy(out + o, d + start, p - start);
			o += p - start;
		}
		prev_kept = keep;
	}
	/* EOS, the PART's footer, then everything from the END on. */
	memset(out + o, 0, 8);
	out[o + 7] = MS_QEMU_RAM_EOS;
	o += 8;
	memcpy(out + o, d + part_end, 5);
	o += 5;
	memcpy(out + o, d + end, n - end);
	return o + n - end;
}

/* Cut @d at every offset of [from, to) with @stride; each must fail. */
static void cuts(const char *name, const uint8_t *d, size_t n, size_t from,
		 size_t to, size_t stride, size_t eof_end)
{
	char msg[1024];
	size_t c;

	if (put_file(d, n)) {
		perror("temporary file");
		exit(99);
	}
	/* Longest first: the file is truncated step by step. */
	for (c = to; c-- > from;) {
		if ((to - 1 - c) % stride && c != from)
			continue;
		if (c == eof_end)
			continue; /* right after EOF: a stream without trailer */
		if (walk(c, msg, sizeof(msg)) != DUMP_EXIT_INVALID) {
			FAIL("%s cut at %zu: status 1 expected (%s)", name, c,
			     msg);
			return;
		}
	}
}

/* Flip one bit of every @stride-th byte of [from, to), one at a time. */
static void flips(uint8_t *d, size_t n, size_t from, size_t to, size_t stride)
{
	size_t i;
	uint8_t b;

	if (put_file(d, n)) {
		perror("temporary file");
		exit(99);
	}
	for (i = from; i < to; i += stride) {
		b = (uint8_t)(d[i] ^ (1u << (i % 8)));
		if (pwrite(tmpfd, &b, 1, (off_t)i) != 1 ||
		    (walk(n, NULL, 0),
		     pwrite(tmpfd, d + i, 1, (off_t)i) != 1)) {
			perror("temporary file");
			exit(99);
		}
	}
}

/*
 * With MS_DUMP_REDUCED_DIR set, the reduced stream up to its EOF (no
 * trailer) is written there as NAME-reduced: seeds of the dump_walk
 * fuzz corpus (tests/fuzz/corpus/dump_walk).
 */
static void save_reduced(const char *name, const uint8_t *d, size_t n)
{
	const char *dir = getenv("MS_DUMP_REDUCED_DIR");
	char path[4096];
	FILE *f;

	if (!dir || !*dir)
		return;
	snprintf(path, sizeof(path), "%s/%s-reduced", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(d, 1, n, f) != n || fclose(f))
		FAIL("%s: cannot write", path);
}

static void check_capture(const char *top, const char *name, size_t stride)
{
	char path[4096], msg[1024];
	struct dump_walk w;
	struct recs *r = calloc(1, sizeof(*r));
	uint8_t *d, *red;
	size_t n, rn, i, eof_end = 0, s;

	snprintf(path, sizeof(path), "%s/tests/data/qemu/%s.mig.gz", top, name);
	d = load_gz(path, &n);
	if (!d || !r) {
		FAIL("%s: cannot load", path);
		free(r);
		free(d);
		return;
	}
	if (put_file(d, n) || lseek(tmpfd, 0, SEEK_SET)) {
		perror("temporary file");
		exit(99);
	}
	memset(&w, 0, sizeof(w));
	w.name = name;
	w.fd = tmpfd;
	w.strict = true;
	w.on_record = on_rec;
	w.opaque = r;
	if (dump_walk_run(&w))
		FAIL("%s: does not walk: %s", name, w.errmsg);
	dump_walk_free(&w);
	for (i = 0; i < r->n; i++)
		if (r->type[i] == MS_REC_EOF)
			eof_end = (size_t)r->off[i] + 1;

	/* The whole capture: around every record boundary, and a stride. */
	s = sampled ? 65521 : 4093;
	cuts(name, d, n, 0, n, s, eof_end);
	for (i = 0; i < r->n; i++) {
		size_t o = (size_t)r->off[i];

		cuts(name, d, n, o > 3 ? o - 3 : 0, o + 4 < n ? o + 4 : n, 1,
		     eof_end);
	}

	/* The reduced stream: every offset, every byte flipped. */
	red = malloc(n + 256);
	rn = red ? reduce(d, n, r, red) : 0;
	if (!rn) {
		FAIL("%s: cannot be reduced", name);
	} else {
		if (put_file(red, rn) ||
		    walk(rn, msg, sizeof(msg)) != DUMP_EXIT_OK) {
			FAIL("%s reduced (%zu bytes): does not walk: %s", name,
			     rn, msg);
		} else {
			size_t eof = 0, json = rn;

			/* The trailer's JSON is sampled: one code path. */
			for (i = 0; i < r->n; i++)
				if (r->type[i] == MS_REC_VMDESC)
					json = (size_t)r->off[i] + 5 + rn - n;
			if (eof_end)
				eof = rn - (n - eof_end);
			save_reduced(name, red, eof ? eof : rn);
			cuts(name, red, rn, json, rn, 97, eof);
			cuts(name, red, rn, 0, json, sampled ? 97 : stride,
			     eof);
			flips(red, rn, json, rn, 89);
			flips(red, rn, 0, json, sampled ? 101 : stride);
			printf("%s: %zu bytes, reduced to %zu: cut and "
			       "flipped every %zu bytes (trailer: 97, 89)\n",
			       name, n, rn, sampled ? (size_t)97 : stride);
		}
	}
	free(red);
	free(r);
	free(d);
}

/* Whether the environment variable @name is set to a non-empty value
 * other than "0". */
static bool env_set(const char *name)
{
	const char *v = getenv(name);

	return v && *v && strcmp(v, "0") != 0;
}

/* Whether this program was built with AddressSanitizer. */
static bool sanitized(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	return true;
#else
	return false;
#endif
#else
	return false;
#endif
}

int main(void)
{
	const char *top = getenv("top_srcdir");
	const char *fork_env = getenv("CK_FORK");
	char path[] = "/tmp/check_dump_damage-XXXXXX";
	size_t i;

	if (!top)
		top = ".";
	sampled = (fork_env && !strcmp(fork_env, "no")) || sanitized() ||
		  env_set("MS_RUN_WRAPPER") || env_set("MS_TEST_SAMPLED");
	tmpfd = mkstemp(path);
	if (tmpfd < 0) {
		perror("mkstemp");
		return 99;
	}
	unlink(path);
	for (i = 0; i < sizeof(captures) / sizeof(captures[0]); i++)
		check_capture(top, captures[i].name, captures[i].stride);
	close(tmpfd);
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	return failures ? 1 : 0;
}
