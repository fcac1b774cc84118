/* SPDX-License-Identifier: MIT */
/*
 * migstream-dump: the stream walker shared by its commands.
 *
 * The walker reads a stream through ms_reader and consumes every payload
 * exactly: RAM ("ram", version 4) by its grammar, device sections of the
 * QEMU profile by a scan for their footer followed by a valid record, and
 * native payloads by their known length.  Memory stays bounded whatever
 * the stream size: the input is read through one fd stream, and nothing
 * but the RAM block table is kept.
 */
#ifndef MIGSTREAM_DUMP_H
#define MIGSTREAM_DUMP_H

#include <stdbool.h>
#include <stdint.h>

#include <migstream/migstream.h>

/* Exit statuses. */
#define DUMP_EXIT_OK	  0
#define DUMP_EXIT_INVALID 1
#define DUMP_EXIT_USAGE	  2
#define DUMP_EXIT_IO	  3

/* Limits of what the walker keeps, checked before it allocates. */
#define DUMP_MAX_RAM_BLOCKS 4096u
#define DUMP_MAX_CAPS	    64u

/* One RAM block of the START section's block list. */
struct dump_ram_block {
	char name[MS_COUNTED_STRING_MAX + 1];
	uint64_t len;
};

/* RAM page records by kind. */
enum dump_page_kind {
	DUMP_PAGE_ZERO,
	DUMP_PAGE_NORMAL,
	DUMP_PAGE_COMPRESSED,
	DUMP_PAGE_XBZRLE,
	DUMP_PAGE_KINDS
};

struct dump_walk;

/*
 * typedef dump_record_fn - Called after each record's payload was
 * consumed.  @plen is the payload length (0 for records without one).
 */
typedef void (*dump_record_fn)(struct dump_walk *w, const ms_record *rec,
			       uint64_t plen, void *opaque);

/*
 * struct dump_walk - One walk over one stream: its settings and results.
 * The settings are filled by the caller before dump_walk_run(); the rest
 * is the walker's.
 */
struct dump_walk {
	/* Settings. */
	const char *name; /* the file name, for messages */
	int fd;		  /* the input, read from its current position */
	bool strict;	  /* verify: anything unchecked is an error */
	dump_record_fn on_record;
	void *opaque;

	/* Results. */
	ms_profile profile;
	unsigned version;  /* QEMU: 3; native: the header's version */
	unsigned features; /* native: the header's feature flags */
	char machine[MS_COUNTED_STRING_MAX + 1];
	bool have_machine;
	uint64_t count[256]; /* records by type; [MS_REC_SUBSECTION] counts
				the configuration's subsections */
	uint64_t records;    /* all records */
	uint32_t vmdesc_len;
	bool have_vmdesc;
	unsigned page_size; /* RAM target page size */
	bool ignore_shared; /* the x-ignore-shared capability */
	unsigned ncaps;
	char caps[DUMP_MAX_CAPS][MS_COUNTED_STRING_MAX + 1];
	/* RAM. */
	struct dump_ram_block *blk;
	unsigned nblk;
	uint64_t ram_total;
	bool ram_listed; /* the block list was read */
	bool ram_broken; /* lenient walk: RAM could not be parsed */
	int last_blk;	 /* the block of CONTINUE pages, -1 for none */
	uint64_t pages[DUMP_PAGE_KINDS];
	uint64_t multifd_flushes;
	uint64_t ram_sections; /* RAM sections parsed by their grammar */
	uint64_t scanned;      /* payloads delimited by a footer scan */
	uint64_t warnings;
	/* End state. */
	uint64_t end;  /* input offset reached */
	bool complete; /* the stream was read to its clean end */
	int err;       /* the first error (negative errno), or 0 */
	int exit_code; /* DUMP_EXIT_* for it */
	char errmsg[1024];

	/* Private to the walker. */
	void *priv;
};

/*
 * dump_walk_run() - Walk the whole stream.
 * @w: settings filled in, results zeroed.
 *
 * Stops at the first error, whose message ("offset 0x...: section N
 * 'idstr': ...") is in w->errmsg.  Warnings of a lenient walk go to
 * stderr.
 *
 * Return: DUMP_EXIT_OK at the clean end of a valid stream, else
 * DUMP_EXIT_INVALID or DUMP_EXIT_IO (w->exit_code).
 */
int dump_walk_run(struct dump_walk *w);

/* dump_walk_free() - Free what the walker allocated. */
void dump_walk_free(struct dump_walk *w);

/* dump_page_kind_name() - "zero", "normal", "compressed" or "xbzrle". */
const char *dump_page_kind_name(int kind);

#endif /* MIGSTREAM_DUMP_H */
