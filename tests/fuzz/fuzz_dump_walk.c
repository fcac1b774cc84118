/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the stream walker of migstream-dump (tools/dump-walk.c),
 * in both profiles (the walker detects the profile).  The whole input is
 * the stream: the walker reads a descriptor, so the input is written to
 * an unlinked temporary file, reused from one input to the next.
 *
 * Each input is walked three times: as 'verify' does (strict), as 'info'
 * does (lenient), and leniently with the hooks of the converter and the
 * extractor (every payload byte, every RAM page, the VM description kept).
 * Invariants: no crash, no leak, an error names its offset ("offset
 * 0x..."), a strict walk that passes passes leniently too, and the hooks
 * see what the walker says it parsed.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dump.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DW_ASSERT(cond)                                                        \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr,                                        \
				"%s:%d: fuzz invariant violated: %s\n",        \
				__FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

struct dw_ctx {
	size_t size;	  /* the input's */
	uint64_t records; /* seen by on_record */
	uint64_t prev;	  /* the previous record's offset */
	uint64_t bytes;	  /* seen by on_bytes */
	uint64_t pages;	  /* seen by on_page */
	uint64_t begins;  /* seen by on_begin */
	volatile uint8_t sink;
};

static void dw_record(struct dump_walk *w, const ms_record *rec, uint64_t plen,
		      void *opaque)
{
	struct dw_ctx *c = opaque;

	DW_ASSERT(rec->offset <= c->size);
	DW_ASSERT(!c->records || rec->offset > c->prev);
	(void)plen; /* zlib frames: may exceed the input */
	DW_ASSERT(w->profile == MS_PROFILE_QEMU ||
		  w->profile == MS_PROFILE_NATIVE);
	c->prev = rec->offset;
	c->records++;
}

static int dw_begin(struct dump_walk *w, const ms_record *rec,
		    ms_stream *payload, void *opaque)
{
	struct dw_ctx *c = opaque;

	(void)w;
	(void)rec;
	DW_ASSERT(payload != NULL);
	c->begins++;
	return 0;
}

static int dw_bytes(struct dump_walk *w, const uint8_t *d, size_t n,
		    void *opaque)
{
	struct dw_ctx *c = opaque;

	(void)w;
	DW_ASSERT(n > 0);
	c->sink ^= d[0] ^ d[n - 1];
	c->bytes += n;
	return 0;
}

static int dw_page(struct dump_walk *w, unsigned blk, uint64_t addr,
		   enum dump_page_kind kind, const uint8_t *data, size_t len,
		   void *opaque)
{
	struct dw_ctx *c = opaque;

	DW_ASSERT(blk < w->nblk);
	DW_ASSERT(addr < w->blk[blk].len);
	DW_ASSERT(addr % w->page_size == 0);
	switch (kind) {
	case DUMP_PAGE_ZERO:
		DW_ASSERT(!data && !len);
		break;
	case DUMP_PAGE_NORMAL:
	case DUMP_PAGE_COMPRESSED:
		DW_ASSERT(data && len == w->page_size);
		c->sink ^= data[0] ^ data[len - 1];
		break;
	case DUMP_PAGE_XBZRLE:
		DW_ASSERT(len <= w->page_size);
		DW_ASSERT(data || !len);
		if (len)
			c->sink ^= data[0] ^ data[len - 1];
		break;
	default:
		DW_ASSERT(!"page of an unknown kind");
	}
	c->pages++;
	return 0;
}

/* The input's file, unlinked, rewritten for each input. */
static int dw_fd = -1;

static void dw_input(const uint8_t *data, size_t size)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	size_t off = 0;
	ssize_t n;

	if (dw_fd < 0) {
		snprintf(path, sizeof(path), "%s/fuzz_dump_walk.XXXXXX",
			 dir && *dir ? dir : "/tmp");
		dw_fd = mkstemp(path);
		if (dw_fd < 0) {
			snprintf(path, sizeof(path),
				 "/tmp/fuzz_dump_walk.XXXXXX");
			dw_fd = mkstemp(path);
		}
		if (dw_fd < 0) {
			perror("fuzz_dump_walk: a temporary file");
			abort();
		}
		unlink(path);
	}
	if (ftruncate(dw_fd, 0) || lseek(dw_fd, 0, SEEK_SET))
		abort();
	while (off < size) {
		n = write(dw_fd, data + off, size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			perror("fuzz_dump_walk: writing the input");
			abort();
		}
		off += (size_t)n;
	}
}

/* One walk; the hooks only with @hooks. */
static void dw_walk(struct dump_walk *w, struct dw_ctx *c, size_t size,
		    bool strict, bool hooks)
{
	uint64_t pages;
	int ret;

	memset(w, 0, sizeof(*w));
	memset(c, 0, sizeof(*c));
	c->size = size;
	w->name = "fuzz";
	w->fd = dw_fd;
	w->strict = strict;
	w->on_record = dw_record;
	w->opaque = c;
	if (hooks) {
		w->on_begin = dw_begin;
		w->on_bytes = dw_bytes;
		w->on_page = dw_page;
		w->keep_vmdesc = true;
	}
	if (lseek(dw_fd, 0, SEEK_SET))
		abort();
	ret = dump_walk_run(w);
	DW_ASSERT(ret == w->exit_code);
	DW_ASSERT(!ret == !w->err);
	DW_ASSERT(w->complete == !w->err);
	DW_ASSERT(ret == DUMP_EXIT_OK || ret == DUMP_EXIT_INVALID ||
		  ret == DUMP_EXIT_IO);
	DW_ASSERT(w->records == c->records + (w->err ? 1 : 0) ||
		  w->records == c->records);
	DW_ASSERT(w->end <= size);
	DW_ASSERT(memchr(w->errmsg, '\0', sizeof(w->errmsg)) != NULL);
	DW_ASSERT(memchr(w->machine, '\0', sizeof(w->machine)) != NULL);
	DW_ASSERT(w->nblk <= DUMP_MAX_RAM_BLOCKS);
	DW_ASSERT(w->ncaps <= DUMP_MAX_CAPS);
	if (w->err) {
		/* Only a failure to set the walk up has no offset. */
		if (w->err != -ENOMEM || !strncmp(w->errmsg, "offset", 6)) {
			if (strncmp(w->errmsg, "offset 0x", 9)) {
				fprintf(stderr, "error without offset: '%s'\n",
					w->errmsg);
				abort();
			}
			DW_ASSERT(strtoull(w->errmsg + 9, NULL, 16) <= size);
		}
	} else {
		DW_ASSERT(w->end == size);
		DW_ASSERT(w->profile == MS_PROFILE_QEMU ||
			  w->profile == MS_PROFILE_NATIVE);
		DW_ASSERT(!strict || !w->warnings);
	}
	if (hooks) {
		pages = w->pages[0] + w->pages[1] + w->pages[2] + w->pages[3];
		DW_ASSERT(c->pages == pages || c->pages + 1 == pages);
		DW_ASSERT(c->begins == w->records);
		DW_ASSERT(!w->vmdesc || w->have_vmdesc);
		if (w->vmdesc)
			DW_ASSERT(strlen(w->vmdesc) <= w->vmdesc_len);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dump_walk strict, lenient, hooked;
	struct dw_ctx cs, cl, ch;

	dw_input(data, size);

	/* verify */
	dw_walk(&strict, &cs, size, true, false);
	/* info */
	dw_walk(&lenient, &cl, size, false, false);
	/* convert and extract: the hooks */
	dw_walk(&hooked, &ch, size, false, true);

	/* What passes strictly passes leniently, record for record. */
	if (!strict.err) {
		DW_ASSERT(!lenient.err);
		DW_ASSERT(lenient.records == strict.records);
		DW_ASSERT(lenient.profile == strict.profile);
		DW_ASSERT(!lenient.warnings);
	}
	/* The hooks change nothing of the walk. */
	DW_ASSERT(hooked.err == lenient.err);
	DW_ASSERT(hooked.records == lenient.records);
	DW_ASSERT(hooked.end == lenient.end);
	DW_ASSERT(!strcmp(hooked.errmsg, lenient.errmsg));

	dump_walk_free(&strict);
	dump_walk_free(&lenient);
	dump_walk_free(&hooked);
	return 0;
}
