/* SPDX-License-Identifier: MIT */
/*
 * ram-load [--refused TEXT] CAPTURE DIR: load the RAM of a real QEMU
 * capture into ms_ram blocks and compare it with what "migstream-dump
 * extract" wrote into DIR for the same capture (tests/qemu/check-ram-captures.sh).
 *
 * The blocks (names and used lengths) and the page size come from the
 * capture's own block list, read by migstream-dump's walker.  Every other
 * section gets a handler that accepts any content; since a QEMU payload
 * has no length, the walk also gives each section record the length of
 * its payload, and the handler of a section reads, at its n-th call, the
 * length the walk found for that section's n-th record.  Then the whole
 * stream is loaded with ms_load_run(), "ram" by ms_ram, and every block
 * must equal its file in DIR, byte for byte.  With --refused, the load
 * must fail instead, with TEXT in its message (a capture with pages
 * ms_ram does not decode).  Exits 0 on success, 1 on a difference, 2 on a
 * failure of its own.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dump.h"
#include "migstream/qemu_ram.h"
#include "migstream/ram.h"

#define MAX_HANDLERS 4096u

struct handler {
	char idstr[MS_COUNTED_STRING_MAX + 1];
	uint32_t instance, min_version, max_version;
	uint64_t *plen; /* the payload lengths of its records, in order */
	size_t n, cap, next;
	bool is_ram;
};

struct capture {
	struct handler h[MAX_HANDLERS];
	size_t nh;
	int by_id[MS_MAX_SECTIONS]; /* stream section id -> handler + 1 */
	bool no_footers;
};

static void die(const char *what)
{
	fprintf(stderr, "ram-load: %s\n", what);
	exit(2);
}

static int on_begin(struct dump_walk *w, const ms_record *rec,
		    ms_stream *payload, void *opaque)
{
	struct capture *c = opaque;
	const ms_section_hdr *h = &rec->section;
	size_t i;

	(void)w;
	(void)payload;
	if (rec->type != MS_REC_START && rec->type != MS_REC_FULL)
		return 0;
	for (i = 0; i < c->nh; i++)
		if (!strcmp(c->h[i].idstr, h->idstr) &&
		    c->h[i].instance == h->instance_id)
			break;
	if (i == c->nh) {
		if (c->nh == MAX_HANDLERS)
			die("too many sections");
		memcpy(c->h[i].idstr, h->idstr, sizeof(c->h[i].idstr));
		c->h[i].instance = h->instance_id;
		c->h[i].min_version = h->version_id;
		c->h[i].max_version = h->version_id;
		c->h[i].is_ram = !strcmp(h->idstr, MS_QEMU_RAM_IDSTR) &&
				 h->instance_id == 0;
		c->nh++;
	}
	if (h->version_id < c->h[i].min_version)
		c->h[i].min_version = h->version_id;
	if (h->version_id > c->h[i].max_version)
		c->h[i].max_version = h->version_id;
	if (h->section_id < MS_MAX_SECTIONS)
		c->by_id[h->section_id] = (int)i + 1;
	return 0;
}

static void on_record(struct dump_walk *w, const ms_record *rec, uint64_t plen,
		      void *opaque)
{
	struct capture *c = opaque;
	struct handler *h;
	uint64_t *n;
	int i;

	(void)w;
	if (rec->type < MS_REC_START || rec->type > MS_REC_FULL ||
	    rec->section.section_id >= MS_MAX_SECTIONS)
		return;
	i = c->by_id[rec->section.section_id];
	if (!i)
		return;
	h = &c->h[i - 1];
	if (h->n == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 8;
		n = realloc(h->plen, h->cap * sizeof(*n));
		if (!n)
			die("out of memory");
		h->plen = n;
	}
	h->plen[h->n++] = plen;
}

/* Any other section: read the length the walk found, keep nothing. */
static int load_any(void *opaque, ms_stream *s, uint32_t version_id,
		    uint8_t type)
{
	struct handler *h = opaque;
	uint64_t left;
	const uint8_t *d;
	ssize_t got;

	(void)version_id;
	(void)type;
	if (h->next >= h->n)
		return ms_stream_set_error(s, -EBADMSG,
					   "more records than the walk found");
	/* A fed load would call again from the first byte; ms_load_run()
	 * calls each record once. */
	left = h->plen[h->next++];
	while (left) {
		got = ms_peek(s, &d, left < 4096 ? (size_t)left : 4096);
		if (got <= 0)
			return got ? (int)got : -EBADMSG;
		if (ms_skip(s, (uint64_t)got))
			return ms_stream_error(s);
		left -= (uint64_t)got;
	}
	return 0;
}

static int save_none(void *opaque, ms_stream *s)
{
	(void)opaque;
	(void)s;
	return -ENOTSUP;
}

static const ms_handler_ops any_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_state = save_none,
	.load = load_any,
};

/* The file name migstream-dump extract gives a block (names up to 200
 * bytes; longer ones are not in the captures). */
static void file_name(const char *idstr, char *out, size_t len)
{
	static const char keep[] = "_-+,=@:.";
	size_t o = 0, i;
	unsigned char ch;

	for (i = 0; idstr[i] && o + 4 < len; i++) {
		ch = (unsigned char)idstr[i];
		if (((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		     (ch >= '0' && ch <= '9') || strchr(keep, ch)) &&
		    !(ch == '.' && i == 0))
			out[o++] = (char)ch;
		else
			o += (size_t)snprintf(out + o, len - o, "%%%02X", ch);
	}
	out[o] = '\0';
}

/* Block @i's bytes against its file in @dir: 0 or 1. */
static int compare(const char *dir, const char *idstr, const uint8_t *mem,
		   uint64_t len)
{
	char name[1024], path[2048];
	uint8_t buf[65536];
	uint64_t at = 0;
	ssize_t got;
	int fd;

	if (strlen(idstr) > 200)
		die("block name over 200 bytes");
	file_name(idstr, name, sizeof(name));
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "ram-load: %s: %s\n", path, strerror(errno));
		return 1;
	}
	while ((got = read(fd, buf, sizeof(buf))) > 0) {
		if ((uint64_t)got > len - at ||
		    memcmp(buf, mem + at, (size_t)got)) {
			fprintf(stderr,
				"ram-load: block '%s' differs from %s within "
				"bytes 0x%llx-0x%llx\n",
				idstr, path, (unsigned long long)at,
				(unsigned long long)(at + (uint64_t)got));
			close(fd);
			return 1;
		}
		at += (uint64_t)got;
	}
	close(fd);
	if (got < 0 || at != len) {
		fprintf(stderr,
			"ram-load: %s: %llu bytes, block '%s' has %llu\n", path,
			(unsigned long long)at, idstr, (unsigned long long)len);
		return 1;
	}
	return 0;
}

/* The walk: sections, payload lengths, blocks. */
static void walk(const char *file, struct capture *c, struct dump_walk *w)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die("cannot open the capture");
	memset(w, 0, sizeof(*w));
	w->name = file;
	w->fd = fd;
	w->on_begin = on_begin;
	w->on_record = on_record;
	w->opaque = c;
	if (dump_walk_run(w) || !w->complete) {
		fprintf(stderr, "ram-load: %s: the walk failed: %s\n", file,
			w->errmsg);
		exit(2);
	}
	c->no_footers = w->no_footers;
	close(fd);
}

/* ms_ram with the capture's blocks; their memory in @mem. */
static ms_ram *ram_of(const struct dump_walk *w, uint8_t **mem)
{
	ms_ram_opts o = {.version = MS_RAM_OPTS_VERSION,
			 .page_size = w->page_size};
	ms_ram_block b = {.version = MS_RAM_BLOCK_VERSION};
	ms_ram *ram;
	unsigned i;

	if (ms_ram_new(&ram, &o))
		die("ms_ram_new failed");
	for (i = 0; i < w->nblk; i++) {
		void *p = NULL;

		if (posix_memalign(&p, 65536, (size_t)w->blk[i].len))
			die("out of memory for a block");
		/* Not zero: every page must be placed by the load. */
		memset(p, 0xa5, (size_t)w->blk[i].len);
		mem[i] = p;
		b.idstr = w->blk[i].name;
		b.host = p;
		b.used_length = w->blk[i].len;
		if (ms_ram_add_block(ram, &b, NULL)) {
			fprintf(stderr, "ram-load: %s\n", ms_ram_errmsg(ram));
			exit(2);
		}
	}
	return ram;
}

/* Load @file: 0, or the load's error with its message in @msg. */
static int load(const char *file, struct capture *c, ms_ram *ram, char *msg,
		size_t len)
{
	ms_codec_opts co = {.version = MS_CODEC_OPTS_VERSION};
	ms_load_opts lo = {.version = MS_LOAD_OPTS_VERSION, .codec = &co};
	ms_registry *reg;
	ms_stream *in;
	ms_load *ld = NULL;
	size_t i;
	int ret;

	if (ms_registry_new(&reg, NULL))
		die("out of memory");
	for (i = 0; i < c->nh; i++) {
		struct handler *h = &c->h[i];

		ret = h->is_ram
			      ? ms_ram_register(ram, reg, NULL)
			      : ms_registry_add(reg, h->idstr, h->instance,
						h->max_version, h->min_version,
						&any_ops, h, NULL);
		if (ret) {
			fprintf(stderr, "ram-load: %s\n",
				ms_registry_errmsg(reg));
			exit(2);
		}
	}
	co.profile = MS_PROFILE_QEMU;
	co.no_footers = true;
	if (ms_stream_new_file(&in, file, MS_STREAM_READER, NULL) ||
	    ms_load_new(&ld, reg, c->no_footers ? &lo : NULL))
		die("cannot open the capture for the load");
	ret = ms_load_run(ld, in);
	snprintf(msg, len, "%s", ms_load_errmsg(ld));
	ms_load_free(ld);
	ms_stream_close(in);
	ms_registry_free(reg);
	return ret;
}

int main(int argc, char **argv)
{
	static struct capture c;
	static uint8_t *mem[4096];
	const char *refused = NULL;
	struct dump_walk w;
	ms_ram_stats st;
	char msg[2048];
	unsigned i;
	ms_ram *ram;
	int ret, bad = 0;

	if (argc == 5 && !strcmp(argv[1], "--refused")) {
		refused = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc != 3) {
		fprintf(stderr,
			"Usage: ram-load [--refused TEXT] CAPTURE DIR\n");
		return 2;
	}
	walk(argv[1], &c, &w);
	if (w.nblk > 4096)
		die("too many blocks");
	ram = ram_of(&w, mem);
	ret = load(argv[1], &c, ram, msg, sizeof(msg));
	if (refused) {
		if (!ret || !strstr(msg, refused)) {
			fprintf(stderr,
				"ram-load: %s: a refusal naming '%s' expected, "
				"found %s\n",
				argv[1], refused, ret ? msg : "a load");
			bad = 1;
		}
	} else if (ret) {
		fprintf(stderr, "ram-load: %s: %s\n", argv[1], msg);
		bad = 1;
	} else if (ms_ram_load_check(ram)) {
		fprintf(stderr, "ram-load: %s: %s\n", argv[1],
			ms_ram_errmsg(ram));
		bad = 1;
	} else {
		for (i = 0; i < w.nblk; i++)
			bad |= compare(argv[2], w.blk[i].name, mem[i],
				       w.blk[i].len);
		ms_ram_get_stats(ram, &st);
		if (st.pages != w.pages[DUMP_PAGE_ZERO] +
					w.pages[DUMP_PAGE_NORMAL] ||
		    st.zero_pages != w.pages[DUMP_PAGE_ZERO]) {
			fprintf(stderr,
				"ram-load: %s: %llu pages (%llu zero) loaded, "
				"the walk counted %llu and %llu\n",
				argv[1], (unsigned long long)st.pages,
				(unsigned long long)st.zero_pages,
				(unsigned long long)(w.pages[DUMP_PAGE_ZERO] +
						     w.pages[DUMP_PAGE_NORMAL]),
				(unsigned long long)w.pages[DUMP_PAGE_ZERO]);
			bad = 1;
		}
		if (!bad)
			printf("ok: %s: %u blocks, %llu pages (%llu zero)\n",
			       argv[1], w.nblk, (unsigned long long)st.pages,
			       (unsigned long long)st.zero_pages);
	}
	for (i = 0; i < w.nblk; i++)
		free(mem[i]);
	ms_ram_free(ram);
	dump_walk_free(&w);
	for (i = 0; i < c.nh; i++)
		free(c.h[i].plen);
	return bad;
}
