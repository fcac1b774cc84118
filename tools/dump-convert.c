/* SPDX-License-Identifier: MIT */
/*
 * migstream-dump convert: re-frame a stream into the other profile.
 *
 *	migstream-dump convert --to native|qemu [--compress[=LEVEL]] IN OUT
 *
 * The walker of dump-walk.c delimits every payload (RAM by its grammar,
 * QEMU device sections by the footer scan, native payloads by their
 * length) and hands each consumed byte to this file, which writes the
 * same element through an ms_writer of the other profile.  Only the
 * configuration's subsections and the VM description are held whole
 * (both are bounded by the reader's limits); section payloads go through
 * as they are read.  OUT is written to OUT.tmp and renamed at the end; on
 * any error OUT.tmp is removed and OUT is left as it was.
 *
 * The output is read back before it is renamed (or, for "-", copied to
 * standard output from an unlinked temporary file): its walk must give
 * the records of the input's, record for record (type, section id,
 * idstr, instance, version, machine, command and every payload byte).
 * A payload whose bytes the other profile's grammar reads differently (a
 * native payload holding a footer and a record head, which the QEMU
 * grammar takes for the payload's end) is refused, at the offset of the
 * input record that does not come back.  Neither walk holds more than a
 * record's summary: each input record's summary (its offset, type,
 * section id, payload length and a keyed 64-bit SipHash-2-4 of the rest)
 * goes to an unlinked temporary file, which the output's walk reads in
 * order.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dump.h"

#define PROG		"migstream-dump"
#define OUT_BUFFER_SIZE (256u * 1024u)
/* Largest configuration payload kept (QEMU's is a few dozen bytes). */
#define MAX_CONFIG (1u << 20)

/*
 * SipHash-2-4 (Aumasson and Bernstein), keyed at random for each run so
 * that no input can be made to collide: a record's summary.
 */
struct sip {
	uint64_t v[4];
	uint8_t tail[8];
	unsigned ntail;
	uint64_t len;
};

static uint64_t rotl64(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

static void sip_round(uint64_t *v)
{
	v[0] += v[1];
	v[1] = rotl64(v[1], 13) ^ v[0];
	v[0] = rotl64(v[0], 32);
	v[2] += v[3];
	v[3] = rotl64(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = rotl64(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = rotl64(v[1], 17) ^ v[2];
	v[2] = rotl64(v[2], 32);
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t x = 0;
	int i;

	for (i = 7; i >= 0; i--)
		x = x << 8 | p[i];
	return x;
}

static void sip_init(struct sip *h, const uint64_t key[2])
{
	h->v[0] = key[0] ^ UINT64_C(0x736f6d6570736575);
	h->v[1] = key[1] ^ UINT64_C(0x646f72616e646f6d);
	h->v[2] = key[0] ^ UINT64_C(0x6c7967656e657261);
	h->v[3] = key[1] ^ UINT64_C(0x7465646279746573);
	h->ntail = 0;
	h->len = 0;
}

static void sip_word(struct sip *h, uint64_t m)
{
	h->v[3] ^= m;
	sip_round(h->v);
	sip_round(h->v);
	h->v[0] ^= m;
}

static void sip_update(struct sip *h, const void *data, size_t n)
{
	const uint8_t *p = data;

	h->len += n;
	while (n && h->ntail) {
		h->tail[h->ntail++] = *p++;
		n--;
		if (h->ntail == 8) {
			sip_word(h, le64(h->tail));
			h->ntail = 0;
		}
	}
	if (!n)
		return; /* the tail may hold bytes still */
	for (; n >= 8; p += 8, n -= 8)
		sip_word(h, le64(p));
	memcpy(h->tail, p, n);
	h->ntail = (unsigned)n;
}

static uint64_t sip_final(struct sip *h)
{
	uint64_t b = h->len << 56;
	unsigned i;

	for (i = 0; i < h->ntail; i++)
		b |= (uint64_t)h->tail[i] << (8 * i);
	sip_word(h, b);
	h->v[2] ^= 0xff;
	for (i = 0; i < 4; i++)
		sip_round(h->v);
	return h->v[0] ^ h->v[1] ^ h->v[2] ^ h->v[3];
}

/* A random key: from /dev/urandom, else from the clock and the pid. */
static void sip_key(uint64_t key[2])
{
	uint8_t b[16];
	struct timespec t;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	bool ok = fd >= 0 && read(fd, b, sizeof(b)) == (ssize_t)sizeof(b);

	if (fd >= 0)
		close(fd);
	if (ok) {
		key[0] = le64(b);
		key[1] = le64(b + 8);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &t);
	key[0] = (uint64_t)t.tv_sec * 1000000007u ^ (uint64_t)t.tv_nsec;
	key[1] = (uint64_t)getpid() * UINT64_C(0x9e3779b97f4a7c15) ^ key[0];
}

/*
 * What the output's walk must give back of one input record: 32 bytes
 * of fields (40 with padding) in a private temporary file, never read by
 * another host.
 */
struct rec_sum {
	uint64_t offset; /* in its stream */
	uint64_t plen;	 /* payload bytes */
	uint64_t hash;	 /* of the header fields and the payload */
	uint32_t section_id;
	uint8_t type;
};

/* The summaries of one walk: written (the input's) or compared. */
struct tally {
	uint64_t key[2];
	struct sip h;
	struct rec_sum cur;
	FILE *spool;
	uint64_t n; /* records summed */
	bool verifying;
	struct dump_error e; /* the output's walk differs: how */
};

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/*
 * A record begins: the fields its head has in both profiles (a PART's
 * or END's idstr, instance and version are the reader's, not the
 * stream's) go into its summary.
 */
static void tally_begin(struct tally *t, const ms_record *rec)
{
	const ms_section_hdr *h = &rec->section;
	const char *str = NULL;
	uint8_t b[4 + 4 + 4 + 1];
	size_t n;

	memset(&t->cur, 0, sizeof(t->cur));
	t->cur.offset = rec->offset;
	t->cur.type = rec->type;
	sip_init(&t->h, t->key);
	sip_update(&t->h, &rec->type, 1);
	memset(b, 0, sizeof(b));
	switch (rec->type) {
	case MS_REC_START:
	case MS_REC_FULL:
		put_be32(b + 4, h->instance_id);
		put_be32(b + 8, h->version_id);
		str = h->idstr;
		/* fall through */
	case MS_REC_PART:
	case MS_REC_END:
	case MS_REC_FOOTER:
		t->cur.section_id = h->section_id;
		put_be32(b, h->section_id);
		break;
	case MS_REC_COMMAND:
		put_be32(b, rec->cmd);
		put_be32(b + 4, rec->length);
		break;
	case MS_REC_VMDESC:
		put_be32(b + 4, rec->length);
		break;
	case MS_REC_CONFIGURATION:
		str = rec->machine;
		break;
	default:
		break;
	}
	n = str ? strlen(str) : 0;
	b[12] = (uint8_t)n;
	sip_update(&t->h, b, sizeof(b));
	if (n)
		sip_update(&t->h, str, n);
}

static void tally_bytes(struct tally *t, const void *d, size_t n)
{
	sip_update(&t->h, d, n);
	t->cur.plen += n;
}

static const char *tally_what(const struct rec_sum *r, char *buf, size_t n)
{
	switch (r->type) {
	case MS_REC_START:
	case MS_REC_PART:
	case MS_REC_END:
	case MS_REC_FULL:
	case MS_REC_FOOTER:
		snprintf(buf, n, "%s of section %u",
			 ms_record_type_name(r->type), r->section_id);
		break;
	default:
		snprintf(buf, n, "%s", ms_record_type_name(r->type));
	}
	return buf;
}

/*
 * The end of a record: its summary goes to the spool (the input's walk)
 * or is compared with the next one there (the output's).  Return: 0, or
 * -errno when the spool cannot be written or read (system errors).
 */
static int tally_end(struct tally *t, const char *to)
{
	struct rec_sum want;
	char a[64], b[64];

	t->cur.hash = sip_final(&t->h);
	if (!t->verifying) {
		t->n++;
		return fwrite(&t->cur, sizeof(t->cur), 1, t->spool) == 1 ? 0
									 : -EIO;
	}
	if (t->e.code)
		return 0;
	if (fread(&want, sizeof(want), 1, t->spool) != 1) {
		if (ferror(t->spool))
			return -EIO;
		dump_error_set(&t->e, -EBADMSG, DUMP_NO_OFFSET, DUMP_NO_SECTION,
			       NULL,
			       "the end of the input: the output converted to "
			       "%s reads as more records than the %llu of the "
			       "input: record %llu, %s at its offset 0x%llx, "
			       "is not the input's; refused",
			       to, (unsigned long long)t->n,
			       (unsigned long long)t->n + 1,
			       tally_what(&t->cur, a, sizeof(a)),
			       (unsigned long long)t->cur.offset);
		return 0;
	}
	t->n++;
	if (want.type == t->cur.type && want.section_id == t->cur.section_id &&
	    want.plen == t->cur.plen && want.hash == t->cur.hash)
		return 0;
	dump_error_set(
		&t->e, -EBADMSG, want.offset, DUMP_NO_SECTION, NULL,
		"%s (record %llu, %llu payload bytes) does "
		"not convert to %s: the output reads back as %s with %llu "
		"payload bytes at its offset 0x%llx (payload bytes that the "
		"%s grammar reads otherwise, such as a footer and a record "
		"head); refused",
		tally_what(&want, a, sizeof(a)), (unsigned long long)t->n,
		(unsigned long long)want.plen, to,
		tally_what(&t->cur, b, sizeof(b)),
		(unsigned long long)t->cur.plen,
		(unsigned long long)t->cur.offset, to);
	return 0;
}

struct conv {
	ms_profile to;
	int dev_fd;		      /* --to mapped: the device stream */
	bool to_mapped;		      /* --to mapped */
	struct dump_mapped *min;      /* a mapped input, or NULL */
	struct dump_mapped_out *mout; /* --to mapped */
	const char *tmp;	      /* OUT.tmp */
	bool ram;		      /* the record read is a RAM section */
	int level;
	int out_fd;
	ms_stream *out;
	ms_writer *wr;
	ms_stream *payload; /* the open section's, in the writer */
	uint8_t type;	    /* the record whose payload is being read */
	uint8_t *buf;	    /* configuration or VM description */
	size_t len, cap, max;
	struct tally t;
	struct dump_error e; /* the output's first error */
};

static int conv_fail(struct conv *c, int err, uint64_t offset, const char *fmt,
		     ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 4, 5)))
#endif
	;

/*
 * The output's first error; @offset names the input record it is about
 * (DUMP_NO_OFFSET for a write: the writer's message names its own).
 */
static int conv_fail(struct conv *c, int err, uint64_t offset, const char *fmt,
		     ...)
{
	va_list ap;

	va_start(ap, fmt);
	err = dump_error_vset(&c->e, err, offset, DUMP_NO_SECTION, NULL, fmt,
			      ap);
	va_end(ap);
	return err;
}

/* Fail with the writer's sticky error, if it has one. */
static int conv_check(struct conv *c, int ret, const char *what)
{
	if (!ret)
		return 0;
	return conv_fail(c, ret, DUMP_NO_OFFSET, "writing %s: %s", what,
			 c->wr && *ms_writer_errmsg(c->wr)
				 ? ms_writer_errmsg(c->wr)
				 : ms_strerror(ret));
}

static int conv_start(struct conv *c, struct dump_walk *w)
{
	ms_codec_opts o = {.version = MS_CODEC_OPTS_VERSION};
	int ret;

	o.profile = c->to;
	o.compress_level = c->to == MS_PROFILE_NATIVE ? c->level : 0;
	/* Footers: QEMU input says so by w->no_footers (the walker looks);
	 * native input in its header. */
	o.no_footers = w->profile == MS_PROFILE_NATIVE
			       ? !(w->features & 0x0002u)
			       : w->no_footers;
	if (c->min || c->mout) {
		/* The device stream as it is: same checksums, no zlib. */
		if (w->profile == MS_PROFILE_NATIVE &&
		    c->to == MS_PROFILE_NATIVE)
			o.checksum = w->features & 0x0001u ? 0 : -1;
		o.compress_level = 0;
	}
	ret = ms_writer_new(&c->wr, c->out, &o);
	if (!ret)
		ret = ms_writer_header(c->wr);
	return conv_check(c, ret, "the header");
}

static int conv_begin(struct dump_walk *w, const ms_record *rec,
		      ms_stream *payload, void *opaque)
{
	struct conv *c = opaque;
	static uint8_t cmd[65535]; /* not on the stack of every record */
	int ret = 0;

	if (c->e.code)
		return c->e.code;
	if (!c->wr && conv_start(c, w))
		return c->e.code;
	c->type = rec->type;
	c->len = 0;
	c->ram = (c->min || c->mout) && rec->type >= MS_REC_START &&
		 rec->type <= MS_REC_FULL && !strcmp(rec->section.idstr, "ram");
	tally_begin(&c->t, rec);
	switch (rec->type) {
	case MS_REC_START:
	case MS_REC_PART:
	case MS_REC_END:
	case MS_REC_FULL:
		ret = ms_writer_begin(c->wr, &rec->section, &c->payload);
		return conv_check(c, ret, "a section header");
	case MS_REC_COMMAND:
		if (ms_get_buffer(payload, cmd, rec->length))
			return conv_fail(c, ms_stream_error(payload),
					 rec->offset, "reading command %u: %s",
					 rec->cmd, ms_stream_errmsg(payload));
		tally_bytes(&c->t, cmd, rec->length);
		ret = ms_writer_command(c->wr, rec->cmd, cmd,
					(uint16_t)rec->length);
		return conv_check(c, ret, "a command");
	case MS_REC_CONFIGURATION:
		c->max = MAX_CONFIG;
		return 0;
	case MS_REC_VMDESC:
		c->max = MS_DEFAULT_MAX_VMDESC;
		return 0;
	default:
		return 0;
	}
}

static int conv_bytes(struct dump_walk *w, const uint8_t *d, size_t n,
		      void *opaque)
{
	struct conv *c = opaque;
	uint8_t *nb;
	size_t ncap;

	(void)w;
	if (c->e.code)
		return c->e.code;
	if (c->ram)
		return 0; /* its payload is written at its end */
	tally_bytes(&c->t, d, n);
	switch (c->type) {
	case MS_REC_START:
	case MS_REC_PART:
	case MS_REC_END:
	case MS_REC_FULL:
		/* From or to a mapped file, in pieces below the writer's
		 * zero-copy threshold: its DATA records are then cut at every
		 * chunk_size bytes whatever the input's framing, and a mapped
		 * file converted to a stream and back is byte-exact. */
		while ((c->min || c->mout) && n > 4096) {
			if (ms_put_buffer(c->payload, d, 4096))
				break;
			d += 4096;
			n -= 4096;
		}
		return conv_check(c, ms_put_buffer(c->payload, d, n),
				  "a section payload");
	case MS_REC_CONFIGURATION:
	case MS_REC_VMDESC:
		if (n > c->max - c->len)
			return conv_fail(c, -EOVERFLOW, c->t.cur.offset,
					 "%s of more than %zu bytes",
					 ms_record_type_name(c->type), c->max);
		if (c->len + n > c->cap) {
			ncap = c->cap ? c->cap : 4096;
			while (ncap < c->len + n)
				ncap *= 2;
			nb = realloc(c->buf, ncap);
			if (!nb)
				return conv_fail(c, -ENOMEM, DUMP_NO_OFFSET,
						 "out of memory");
			c->buf = nb;
			c->cap = ncap;
		}
		memcpy(c->buf + c->len, d, n);
		c->len += n;
		return 0;
	default:
		return 0;
	}
}

static void conv_record(struct dump_walk *w, const ms_record *rec,
			uint64_t plen, void *opaque)
{
	struct conv *c = opaque;
	int ret = 0;

	(void)plen;
	if (c->e.code)
		return;
	if (tally_end(&c->t, NULL)) {
		conv_fail(c, -errno, DUMP_NO_OFFSET,
			  "the records' summaries: %s", strerror(errno));
		return;
	}
	switch (rec->type) {
	case MS_REC_START:
	case MS_REC_PART:
	case MS_REC_END:
	case MS_REC_FULL:
		if (c->ram && c->min)
			ret = dump_mapped_ram_payload(c->min, rec->type,
						      c->payload);
		else if (c->ram)
			ret = dump_mapped_out_ram(c->mout, w, rec->type,
						  c->payload);
		if (ret && c->mout && c->mout->e.code) {
			conv_fail(c, ret, rec->offset, "%s", c->mout->e.msg);
			return;
		}
		c->payload = NULL;
		if (!ret)
			ret = ms_writer_end(c->wr);
		c->ram = false;
		break;
	case MS_REC_CONFIGURATION:
		ret = ms_writer_configuration(c->wr, rec->machine, c->buf,
					      c->len);
		break;
	case MS_REC_EOF:
		ret = ms_writer_eof(c->wr);
		break;
	case MS_REC_VMDESC:
		ret = ms_writer_vmdesc(c->wr, c->buf, c->len);
		break;
	default: /* FOOTER: ms_writer_end() wrote it. */
		break;
	}
	c->type = MS_REC_EOF;
	conv_check(c, ret, ms_record_type_name(rec->type));
}

/* --to mapped: each page at its place in OUT.tmp. */
static int conv_page(struct dump_walk *w, unsigned blk, uint64_t addr,
		     enum dump_page_kind kind, const uint8_t *data, size_t len,
		     void *opaque)
{
	struct conv *c = opaque;

	if (c->e.code)
		return c->e.code;
	if (dump_mapped_out_page(c->mout, w, blk, addr, kind, data, len))
		return conv_fail(c, c->mout->e.code, DUMP_NO_OFFSET, "%s",
				 c->mout->e.msg);
	return 0;
}

/*
 * The output of a conversion from or to a mapped file, read back: a
 * mapped file checked whole by dump-mapped.c, or a stream walked strictly
 * that holds every saved page of the input.  A DUMP_EXIT_* status.
 */
static int conv_verify_mapped(struct conv *c, const struct dump_walk *in,
			      int fd)
{
	struct dump_mapped m;
	struct dump_walk w;
	uint64_t want = 0, got;
	unsigned i;
	int ret;

	if (c->mout) {
		ret = dump_mapped_open(&m, c->tmp);
		if (!ret)
			ret = dump_mapped_pages(&m, true);
		memset(&w, 0, sizeof(w));
		w.strict = true;
		if (!ret)
			ret = dump_mapped_walk(&m, &w);
		if (ret)
			fprintf(stderr,
				PROG ": %s: the mapped output does not "
				     "verify: %s: refused\n",
				in->name, m.e.msg);
		dump_walk_free(&w);
		dump_mapped_close(&m);
		return ret ? DUMP_EXIT_INVALID : DUMP_EXIT_OK;
	}
	for (i = 0; i < c->min->nblocks; i++)
		want += c->min->b[i].present;
	if (lseek(fd, 0, SEEK_SET)) {
		fprintf(stderr, PROG ": reading the output back: %s\n",
			strerror(errno));
		return DUMP_EXIT_IO;
	}
	memset(&w, 0, sizeof(w));
	w.name = "the converted output";
	w.fd = fd;
	w.strict = true;
	ret = dump_walk_run(&w);
	got = w.pages[0] + w.pages[1] + w.pages[2] + w.pages[3];
	if (ret)
		fprintf(stderr,
			PROG ": %s: the output does not verify: %s: "
			     "refused\n",
			in->name, w.errmsg);
	else if (got != want)
		fprintf(stderr,
			PROG ": %s: the output holds %llu pages, not the "
			     "%llu saved ones: refused\n",
			in->name, (unsigned long long)got,
			(unsigned long long)want);
	dump_walk_free(&w);
	return ret || got != want ? DUMP_EXIT_INVALID : DUMP_EXIT_OK;
}

static int convert_usage(const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 1, 2)))
#endif
	;

static int convert_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG " convert: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nUsage: " PROG " convert --to native|qemu|mapped "
			"[--compress[=LEVEL]] IN OUT\n");
	return DUMP_EXIT_USAGE;
}

/* The output's walk: the hooks that compare it with the input's. */
static int ver_begin(struct dump_walk *w, const ms_record *rec,
		     ms_stream *payload, void *opaque)
{
	struct tally *t = opaque;
	static uint8_t cmd[65535]; /* not on the stack of every record */

	(void)w;
	if (t->e.code)
		return -EBADMSG; /* the difference is found: stop */
	tally_begin(t, rec);
	if (rec->type == MS_REC_COMMAND) {
		if (ms_get_buffer(payload, cmd, rec->length))
			return ms_stream_error(payload);
		tally_bytes(t, cmd, rec->length);
	}
	return 0;
}

static int ver_bytes(struct dump_walk *w, const uint8_t *d, size_t n,
		     void *opaque)
{
	(void)w;
	tally_bytes(opaque, d, n);
	return 0;
}

static void ver_record(struct dump_walk *w, const ms_record *rec, uint64_t plen,
		       void *opaque)
{
	struct tally *t = opaque;

	(void)w;
	(void)rec;
	(void)plen;
	if (tally_end(t, w->profile == MS_PROFILE_QEMU ? "qemu" : "native") &&
	    !t->e.code)
		dump_error_set(&t->e, -EIO, DUMP_NO_OFFSET, DUMP_NO_SECTION,
			       NULL, "reading the records' summaries back: %s",
			       strerror(errno));
}

/*
 * Walk the output (@fd, from its start) and compare it with the input's
 * summaries in c->t.spool: strictly unless the input's walk had warnings.
 * Return: a DUMP_EXIT_* status, the message printed.
 */
static int conv_verify(struct conv *c, const struct dump_walk *in, int fd)
{
	const char *to = c->to == MS_PROFILE_QEMU ? "qemu" : "native";
	struct tally *t = &c->t;
	struct dump_walk w;
	struct rec_sum extra;
	char a[64];
	int ret;

	if (fflush(t->spool) || fseek(t->spool, 0, SEEK_SET) ||
	    lseek(fd, 0, SEEK_SET)) {
		fprintf(stderr, PROG ": %s: reading the output back: %s\n",
			in->name, strerror(errno));
		return DUMP_EXIT_IO;
	}
	t->verifying = true;
	t->n = 0;
	memset(&w, 0, sizeof(w));
	w.name = "the converted output";
	w.fd = fd;
	w.strict = !in->warnings;
	w.on_begin = ver_begin;
	w.on_bytes = ver_bytes;
	w.on_record = ver_record;
	w.opaque = t;
	ret = dump_walk_run(&w);
	if (!t->e.code && !ret &&
	    fread(&extra, sizeof(extra), 1, t->spool) == 1)
		dump_error_set(
			&t->e, -EBADMSG, extra.offset, DUMP_NO_SECTION, NULL,
			"%s (record %llu) does not convert "
			"to %s: the output reads back as %llu records only; "
			"refused",
			tally_what(&extra, a, sizeof(a)),
			(unsigned long long)t->n + 1, to,
			(unsigned long long)t->n);
	if (t->e.code) {
		fprintf(stderr, PROG ": %s: %s\n", in->name, t->e.msg);
		ret = DUMP_EXIT_INVALID;
	} else if (ret) {
		fprintf(stderr,
			PROG ": %s: the output converted to %s does not "
			     "verify: %s: refused\n",
			in->name, to, w.errmsg);
		ret = DUMP_EXIT_INVALID;
	}
	dump_walk_free(&w);
	return ret;
}

/* An unlinked temporary file, open for reading and writing, or -1. */
static int conv_tmpfile(void)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/migstream-dump.XXXXXX",
		 dir && *dir ? dir : "/tmp");
	fd = mkstemp(path);
	if (fd >= 0)
		unlink(path);
	return fd;
}

/* Copy the verified output (@fd) to standard output. */
static int conv_copy_out(int fd)
{
	static uint8_t buf[64 * 1024];
	ssize_t n, k, done;

	if (lseek(fd, 0, SEEK_SET))
		goto out_err;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out_err;
		for (done = 0; done < n; done += k) {
			k = write(STDOUT_FILENO, buf + done,
				  (size_t)(n - done));
			if (k < 0 && errno == EINTR)
				k = 0;
			else if (k <= 0)
				goto out_err;
		}
	}
	return DUMP_EXIT_OK;
out_err:
	fprintf(stderr, PROG ": writing the output: %s\n", strerror(errno));
	return DUMP_EXIT_IO;
}

/* The options; DUMP_EXIT_OK to go on (*@done unset), or the status. */
static int convert_options(struct conv *c, int argc, char **argv, bool *done)
{
	static const struct option longopts[] = {
		{"to", required_argument, NULL, 't'},
		{"compress", optional_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool compress = false;
	char *end;
	long lvl;
	int opt;

	*done = true;
	optind = 0; /* a fresh getopt: main() parsed the command line before */
	while ((opt = getopt_long(argc, argv, "+t:c::h", longopts, NULL)) !=
	       -1) {
		switch (opt) {
		case 't':
			if (!strcmp(optarg, "native"))
				c->to = MS_PROFILE_NATIVE;
			else if (!strcmp(optarg, "qemu"))
				c->to = MS_PROFILE_QEMU;
			else if (!strcmp(optarg, "mapped"))
				c->to = MS_PROFILE_NATIVE, c->to_mapped = true;
			else
				return convert_usage("--to native, qemu or "
						     "mapped expected, found "
						     "'%s'",
						     optarg);
			break;
		case 'c':
			compress = true;
			c->level = 6;
			if (optarg) {
				errno = 0;
				lvl = strtol(optarg, &end, 10);
				if (errno || *end || end == optarg || lvl < 1 ||
				    lvl > 9)
					return convert_usage(
						"--compress: a level from 1 "
						"to 9 expected, found '%s'",
						optarg);
				c->level = (int)lvl;
			}
			break;
		case 'h':
			printf("Usage: " PROG
			       " convert --to native|qemu|mapped "
			       "[--compress[=LEVEL]] IN OUT\n");
			return DUMP_EXIT_OK;
		default:
			return DUMP_EXIT_USAGE;
		}
	}
	if (c->to == MS_PROFILE_AUTO)
		return convert_usage("%s",
				     "--to native|qemu|mapped is required");
	if (compress && (c->to != MS_PROFILE_NATIVE || c->to_mapped))
		return convert_usage("%s", "--compress needs --to native");
	if (argc - optind != 2)
		return convert_usage("%s", "IN and OUT expected");
	if (c->to_mapped && !strcmp(argv[optind + 1], "-"))
		return convert_usage("%s", "--to mapped writes pages at their "
					   "offsets: OUT must be a file, not "
					   "standard output ('-')");
	*done = false;
	return DUMP_EXIT_OK;
}

/*
 * A mapped input, checked whole (layout, every page's CRC, the device
 * stream); then positioned at its device stream.  A DUMP_EXIT_* status.
 */
static int conv_open_mapped(struct conv *c, struct dump_mapped *m,
			    const char *in, struct dump_walk *w)
{
	struct dump_walk v;
	int ret;

	ret = dump_mapped_open(m, in);
	if (!ret)
		ret = dump_mapped_pages(m, true);
	if (!ret) {
		memset(&v, 0, sizeof(v));
		v.strict = true;
		ret = dump_mapped_walk(m, &v);
		dump_walk_free(&v);
	}
	if (ret) {
		fprintf(stderr, PROG ": %s: %s\n", dump_esc(m->name), m->e.msg);
		dump_mapped_close(m);
		return ret;
	}
	c->min = m;
	w->name = m->name;
	return DUMP_EXIT_OK;
}

/* Open the input (@in, "-" for standard input); -1 on failure, printed. */
/* Walk the input into c->out, then read the output back. */
static int conv_run(struct conv *c, struct dump_walk *w, const char *out)
{
	int ret;

	w->progress = dump_progress(false);
	w->on_begin = conv_begin;
	w->on_bytes = conv_bytes;
	w->on_record = conv_record;
	w->on_page = c->mout ? conv_page : NULL;
	w->opaque = c;
	if (c->min) {
		ret = dump_mapped_walk(c->min, w);
	} else {
		ret = dump_walk_run(w);
	}
	if (!ret && c->mout && w->ram_broken) {
		fprintf(stderr,
			PROG ": %s: RAM could not be parsed (see the "
			     "warnings): not converted to a mapped file\n",
			w->name);
		ret = DUMP_EXIT_INVALID;
	}
	if (!ret && !c->e.code && c->wr)
		conv_check(c, ms_writer_finish(c->wr), "the end");
	if (!ret && !c->e.code && !c->wr)
		conv_fail(c, -EIO, DUMP_NO_OFFSET, "nothing to write");
	if (c->e.code) {
		fprintf(stderr, PROG ": %s: %s\n", out, c->e.msg);
		/* What a mapped file cannot hold is the input's fault. */
		ret = c->mout && (c->e.code == -EBADMSG ||
				  c->e.code == -ENOTSUP || c->e.code == -E2BIG)
			      ? DUMP_EXIT_INVALID
			      : DUMP_EXIT_IO;
	} else if (ret) {
		fprintf(stderr, PROG ": %s: %s\n", w->name,
			c->min ? c->min->e.msg : w->errmsg);
	}
	ms_writer_free(c->wr);
	c->wr = NULL;
	if (ms_stream_close(c->out) && !ret) {
		fprintf(stderr, PROG ": %s: write error\n", out);
		ret = DUMP_EXIT_IO;
	}
	c->out = NULL;
	if (!ret && c->mout && dump_mapped_out_finish(c->mout, w, c->dev_fd)) {
		fprintf(stderr, PROG ": %s: %s\n", out, c->mout->e.msg);
		ret = DUMP_EXIT_IO;
	}
	if (!ret && (c->min || c->mout))
		ret = conv_verify_mapped(c, w, c->out_fd);
	else if (!ret)
		ret = conv_verify(c, w, c->out_fd);
	return ret;
}

int dump_convert_main(int argc, char **argv)
{
	ms_stream_opts so = {.version = MS_STREAM_OPTS_VERSION,
			     .buffer_size = OUT_BUFFER_SIZE};
	struct conv c = {.to = MS_PROFILE_AUTO, .out_fd = -1, .dev_fd = -1};
	struct dump_mapped_out mout;
	struct dump_mapped min;
	struct dump_source src;
	struct dump_walk w;
	const char *in, *out;
	char *tmp = NULL;
	bool done;
	int ret, spool;

	ret = convert_options(&c, argc, argv, &done);
	if (done)
		return ret;
	in = argv[optind];
	out = argv[optind + 1];
	memset(&w, 0, sizeof(w));
	memset(&src, 0, sizeof(src));
	src.fd = -1;
	memset(&min, 0, sizeof(min));
	min.fd = -1;
	memset(&mout, 0, sizeof(mout));
	mout.fd = -1;
	if (dump_is_mapped(in)) {
		/* Checked whole before anything is written. */
		ret = conv_open_mapped(&c, &min, in, &w);
		if (ret)
			return ret;
	} else {
		/* Magic checked, gzip inflated (dump-input.c). */
		ret = dump_source_open(&src, in);
		if (ret)
			return ret;
		w.name = src.name;
	}
	if (c.to_mapped && c.min) {
		fprintf(stderr, PROG ": %s: a mapped file already\n", w.name);
		ret = DUMP_EXIT_USAGE;
		goto out_close_in;
	}
	sip_key(c.t.key);
	spool = conv_tmpfile();
	c.t.spool = spool >= 0 ? fdopen(spool, "w+") : NULL;
	if (!c.t.spool) {
		if (spool >= 0)
			close(spool);
		fprintf(stderr, PROG ": a temporary file: %s\n",
			strerror(errno));
		ret = DUMP_EXIT_IO;
		goto out_close_in;
	}
	if (!strcmp(out, "-")) {
		/* Verified before any of it is written out. */
		c.out_fd = conv_tmpfile();
		if (c.out_fd < 0) {
			fprintf(stderr, PROG ": a temporary file: %s\n",
				strerror(errno));
			ret = DUMP_EXIT_IO;
			goto out_close_spool;
		}
	} else {
		tmp = malloc(strlen(out) + 5);
		if (!tmp) {
			ret = DUMP_EXIT_IO;
			fprintf(stderr, PROG ": out of memory\n");
			goto out_close_spool;
		}
		sprintf(tmp, "%s.tmp", out);
		c.out_fd =
			open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (c.out_fd < 0) {
			fprintf(stderr, PROG ": %s: cannot create: %s\n", tmp,
				strerror(errno));
			ret = DUMP_EXIT_IO;
			goto out_free_tmp;
		}
	}
	if (c.to_mapped) {
		mout.fd = c.out_fd;
		c.mout = &mout;
		c.tmp = tmp;
		c.dev_fd = conv_tmpfile();
		if (c.dev_fd < 0) {
			fprintf(stderr, PROG ": a temporary file: %s\n",
				strerror(errno));
			ret = DUMP_EXIT_IO;
			goto out_close_out;
		}
	}
	ret = ms_stream_new_fd(&c.out, c.to_mapped ? c.dev_fd : c.out_fd,
			       MS_STREAM_WRITER, 0, &so);
	if (ret) {
		fprintf(stderr, PROG ": %s: %s\n", out, ms_strerror(ret));
		ret = DUMP_EXIT_IO;
		goto out_close_out;
	}
	if (!c.min) {
		w.fd = src.fd;
		w.src = &src;
	}
	ret = conv_run(&c, &w, out);
	dump_walk_free(&w);
	if (!ret && !tmp)
		ret = conv_copy_out(c.out_fd);
	if (!ret && tmp && fsync(c.out_fd)) {
		fprintf(stderr, PROG ": %s: %s\n", tmp, strerror(errno));
		ret = DUMP_EXIT_IO;
	}
out_close_out:
	if (c.dev_fd >= 0)
		close(c.dev_fd);
	dump_mapped_out_free(&mout);
	if (close(c.out_fd) && tmp && !ret) {
		fprintf(stderr, PROG ": %s: %s\n", tmp, strerror(errno));
		ret = DUMP_EXIT_IO;
	}
	if (tmp) {
		if (!ret && rename(tmp, out)) {
			fprintf(stderr, PROG ": %s: cannot rename to %s: %s\n",
				tmp, out, strerror(errno));
			ret = DUMP_EXIT_IO;
		}
		if (ret)
			unlink(tmp);
	}
out_free_tmp:
	free(tmp);
out_close_spool:
	fclose(c.t.spool);
out_close_in:
	if (src.fd >= 0)
		dump_source_close(&src);
	dump_mapped_close(&min);
	free(c.buf);
	return ret;
}
