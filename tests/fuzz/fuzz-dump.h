/* SPDX-License-Identifier: MIT */
/*
 * Shared by the targets of the dump tool's commands (fuzz_dump_state,
 * fuzz_dump_convert, fuzz_dump_extract): the invariant macro, a walk that
 * lists the records it reads (type, section id, payload length and the
 * CRC-32 of the payload, a command's bytes included), and standard error
 * quietened around a command when FZ_QUIET is set (libFuzzer still saves
 * the input of a crash; replay it without FZ_QUIET to see the report).
 */
#ifndef MS_FUZZ_DUMP_H
#define MS_FUZZ_DUMP_H

#define FZ_WANT_FILES
#include "fuzz-common.h"

#include <zlib.h>

#include "dump.h"

#define FD_ASSERT(cond)                                                        \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr,                                        \
				"%s:%d: fuzz invariant violated: %s\n",        \
				__FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

struct fd_rec {
	uint8_t type;
	uint32_t section_id;
	uint64_t offset;
	uint64_t plen;
	uint32_t crc;
	size_t name_len; /* of the idstr (START, FULL) or the machine */
};

struct fd_list {
	struct fd_rec *v;
	size_t n, cap;
	struct fd_rec cur;
};

static inline int fd_list_begin(struct dump_walk *w, const ms_record *rec,
				ms_stream *payload, void *opaque)
{
	struct fd_list *l = opaque;
	static uint8_t cmd[65535];

	(void)w;
	memset(&l->cur, 0, sizeof(l->cur));
	l->cur.type = rec->type;
	l->cur.offset = rec->offset;
	if (rec->type <= MS_REC_FULL || rec->type == MS_REC_FOOTER)
		l->cur.section_id = rec->section.section_id;
	l->cur.name_len =
		strlen(rec->type == MS_REC_CONFIGURATION ? rec->machine
							 : rec->section.idstr);
	l->cur.crc = (uint32_t)crc32(0, NULL, 0);
	if (rec->type == MS_REC_COMMAND) {
		if (ms_get_buffer(payload, cmd, rec->length))
			return ms_stream_error(payload);
		l->cur.crc = (uint32_t)crc32(l->cur.crc, cmd, rec->length);
		l->cur.plen = rec->length;
	}
	return 0;
}

static inline int fd_list_bytes(struct dump_walk *w, const uint8_t *d, size_t n,
				void *opaque)
{
	struct fd_list *l = opaque;

	(void)w;
	l->cur.crc = (uint32_t)crc32(l->cur.crc, d, (uInt)n);
	l->cur.plen += n;
	return 0;
}

static inline void fd_list_record(struct dump_walk *w, const ms_record *rec,
				  uint64_t plen, void *opaque)
{
	struct fd_list *l = opaque;
	struct fd_rec *nv;

	(void)w;
	(void)rec;
	(void)plen;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		nv = realloc(l->v, l->cap * sizeof(*nv));
		FD_ASSERT(nv != NULL);
		l->v = nv;
	}
	l->v[l->n++] = l->cur;
}

/*
 * Walk the file @path, strictly or not, listing its records in @l (freed
 * by the caller); keeps the VM description with @keep.  Return: the walk's
 * status; @w is the caller's to free.
 */
static inline int fd_walk_list(const char *path, bool strict, bool keep,
			       struct dump_walk *w, struct fd_list *l)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	FD_ASSERT(fd >= 0);
	memset(w, 0, sizeof(*w));
	memset(l, 0, sizeof(*l));
	w->name = path;
	w->fd = fd;
	w->strict = strict;
	w->keep_vmdesc = keep;
	w->on_begin = fd_list_begin;
	w->on_bytes = fd_list_bytes;
	w->on_record = fd_list_record;
	w->opaque = l;
	ret = dump_walk_run(w);
	close(fd);
	return ret;
}

/* Standard error to /dev/null (FZ_QUIET set) until fd_loud(). */
static inline int fd_quiet(void)
{
	int saved, null;

	if (!getenv("FZ_QUIET"))
		return -1;
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	FD_ASSERT(saved >= 0 && null >= 0);
	dup2(null, STDERR_FILENO);
	close(null);
	return saved;
}

static inline void fd_loud(int saved)
{
	if (saved < 0)
		return;
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
}

#endif /* MS_FUZZ_DUMP_H */
