/* SPDX-License-Identifier: MIT */
/*
 * An arena of payloads and a writer that puts its bytes straight into it:
 * the vfio-user adapter takes the device's non-iterative state there at
 * the transition into STOP_AND_COPY, and hands the bytes to the save
 * later without another copy.
 *
 * The memory is fresh, and touching fresh memory costs a page fault per
 * page: on a small VM, 64 MiB of 4 KiB pages cost 30 times the copy of
 * the bytes into them.  So chunks grow geometrically (64 KiB to 32 MiB)
 * and, with the C library's allocator on a system with MADV_HUGEPAGE,
 * chunks of 2 MiB and more are mapped on 2 MiB boundaries and advised as
 * huge pages: one fault per 2 MiB.  Where the advice is unknown or
 * refused, the chunks are plain pages, slower only.
 *
 * Bounds: a payload that does not fit in the rest of the last chunk
 * moves, with the bytes it already has, to a new chunk of at least twice
 * that size; the rest is left unused, and is smaller than the payload.
 * A chunk the payload outgrows again held nothing else and is freed.  So
 * every byte is copied O(1) times amortised, and the arena holds at most
 * twice the payloads plus its last chunk.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#if defined(HAVE_DECL_MADV_HUGEPAGE) && HAVE_DECL_MADV_HUGEPAGE
#include <sys/mman.h>
#define ARENA_HUGE ((size_t)2 << 20)
#endif

#include "internal.h"
#include "stream-impl.h"

#define ARENA_FIRST ((size_t)64 << 10)
#define ARENA_MAX   ((size_t)32 << 20)

struct ms__arena_chunk {
	struct ms__arena_chunk *prev, *next;
	uint8_t *mem;
	size_t cap;
	size_t used;
	bool mapped; /* mem is an mmap() of @cap bytes */
};

/* The writer's state: its arena and the chunk it writes into. */
struct arena_writer {
	struct ms__arena *ar;
	struct ms__arena_chunk *chunk;
};

void ms__arena_init(struct ms__arena *ar, const ms_allocator *a)
{
	memset(ar, 0, sizeof(*ar));
	ar->a = a;
}

static void chunk_free(struct ms__arena *ar, struct ms__arena_chunk *c)
{
#ifdef ARENA_HUGE
	if (c->mapped)
		munmap(c->mem, c->cap);
	else
#endif
		ms__free(ar->a, c->mem);
	ar->bytes -= c->cap;
	ms__free(ar->a, c);
}

#ifdef ARENA_HUGE
/* @cap bytes (a multiple of ARENA_HUGE) on an ARENA_HUGE boundary, or
 * NULL. */
static uint8_t *huge_map(size_t cap)
{
	uint8_t *p, *aligned;
	size_t len = cap + ARENA_HUGE, head;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	head = (ARENA_HUGE - (uintptr_t)p % ARENA_HUGE) % ARENA_HUGE;
	aligned = p + head;
	if (head)
		munmap(p, head);
	munmap(aligned + cap, len - head - cap);
	/* Advice: a kernel without transparent huge pages says no, and the
	 * chunk still works with small pages. */
	(void)madvise(aligned, cap, MADV_HUGEPAGE);
	return aligned;
}
#endif

/* A new last chunk of at least @need bytes, or NULL. */
static struct ms__arena_chunk *chunk_new(struct ms__arena *ar, size_t need)
{
	struct ms__arena_chunk *c;
	size_t cap = ar->next_cap ? ar->next_cap : ARENA_FIRST;

	while (cap < need) {
		if (cap > SIZE_MAX / 2)
			return NULL;
		cap *= 2;
	}
	c = ms__malloc(ar->a, sizeof(*c));
	if (!c)
		return NULL;
	memset(c, 0, sizeof(*c));
#ifdef ARENA_HUGE
	if (!ar->a && cap >= ARENA_HUGE && cap <= SIZE_MAX - ARENA_HUGE) {
		cap = (cap + ARENA_HUGE - 1) / ARENA_HUGE * ARENA_HUGE;
		c->mem = huge_map(cap);
		c->mapped = c->mem != NULL;
	}
#endif
	if (!c->mem)
		c->mem = ms__malloc(ar->a, cap);
	if (!c->mem) {
		ms__free(ar->a, c);
		return NULL;
	}
	c->cap = cap;
	ar->bytes += cap;
	c->prev = ar->tail;
	if (ar->tail)
		ar->tail->next = c;
	else
		ar->head = c;
	ar->tail = c;
	ar->next_cap = cap < ARENA_MAX / 2 ? 2 * cap : ARENA_MAX;
	return c;
}

void ms__arena_release_before(struct ms__arena *ar,
			      const struct ms__arena_chunk *keep)
{
	while (ar->head && ar->head != keep) {
		struct ms__arena_chunk *c = ar->head;

		ar->head = c->next;
		if (ar->head)
			ar->head->prev = NULL;
		else
			ar->tail = NULL;
		chunk_free(ar, c);
	}
}

void ms__arena_free(struct ms__arena *ar)
{
	ms__arena_release_before(ar, NULL);
	ar->next_cap = 0;
}

/* The payload's bytes do not fit: move them to a new chunk that has room
 * for @want more. */
static int arena_make_room(ms_stream *s, size_t want)
{
	struct arena_writer *w = s->sink;
	struct ms__arena_chunk *c;
	size_t held = s->buf_len;

	if (want > SIZE_MAX - held)
		return ms__stream_fail(s, -ENOMEM, s->pos,
				       "payload too large: %zu bytes and %zu "
				       "more",
				       held, want);
	c = chunk_new(w->ar, held + want);
	if (!c)
		return ms__stream_fail(s, -ENOMEM, s->pos,
				       "cannot allocate %zu bytes for the "
				       "payload",
				       held + want);
	if (held)
		memcpy(c->mem, s->buf, held);
	if (w->chunk && !w->chunk->used) {
		/* The payload had that chunk to itself: nothing is left in it.
		 * It is the one before the new last chunk. */
		struct ms__arena_chunk *old = w->chunk;

		assert(c->prev == old);
		c->prev = old->prev;
		if (old->prev)
			old->prev->next = c;
		else
			w->ar->head = c;
		chunk_free(w->ar, old);
	}
	w->chunk = c;
	s->buf = c->mem;
	s->buf_cap = c->cap;
	return 0;
}

/* Every byte is in the arena already: nothing to hand on. */
static int arena_flush(ms_stream *s)
{
	return s->err.code;
}

static const struct ms__transport arena_writer_transport = {
	.flags = MS__SINK_HOLDS_DATA,
	.flush = arena_flush,
	.make_room = arena_make_room,
};

int ms__arena_writer(ms_stream **out, struct ms__arena *ar)
{
	struct arena_writer *w;
	struct ms__arena_chunk *c = ar->tail;
	ms_stream_opts so = {MS_STREAM_OPTS_VERSION, ar->a, 0, 0, 0};
	ms_stream *s;
	int ret;

	ret = ms__stream_create(&s, MS_STREAM_WRITER, &arena_writer_transport,
				sizeof(*w), &so);
	if (ret)
		return ret;
	w = s->sink;
	w->ar = ar;
	if (c && c->used < c->cap) {
		w->chunk = c;
		s->buf = c->mem + c->used;
		s->buf_cap = c->cap - c->used;
	}
	*out = s;
	return 0;
}

int ms__arena_commit(ms_stream *s, const uint8_t **data, size_t *len,
		     struct ms__arena_chunk **chunk)
{
	struct arena_writer *w = s->sink;

	assert(s->t == &arena_writer_transport);
	*data = NULL;
	*len = 0;
	*chunk = NULL;
	if (s->err.code)
		return s->err.code;
	if (!s->buf_len)
		return 0;
	*data = s->buf;
	*len = s->buf_len;
	*chunk = w->chunk;
	w->chunk->used = (size_t)(s->buf - w->chunk->mem) + s->buf_len;
	/* The stream may still be closed, but writes no more here. */
	s->buf = NULL;
	s->buf_len = s->buf_cap = 0;
	return 0;
}
