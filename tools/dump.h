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

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <migstream/migstream.h>
#include <zlib.h>

/* Exit statuses. */
#define DUMP_EXIT_OK	  0
#define DUMP_EXIT_INVALID 1
#define DUMP_EXIT_USAGE	  2
#define DUMP_EXIT_IO	  3

/* Limits of what the walker keeps, checked before it allocates. */
#define DUMP_MAX_RAM_BLOCKS 4096u
#define DUMP_MAX_CAPS	    64u

/* Default caps of struct dump_limits. */
#define DUMP_JSON_MEM_MAX (128ull << 20)
#define DUMP_SPOOL_MAX	  (64ull << 30)
#define DUMP_GUNZIP_MAX	  (1ull << 40)

/*
 * struct dump_limits - Caps of every command, from options the main
 * program takes before or after any command (0: the default).
 * @json_mem_max: --json-mem-max: parser memory for a VM description.
 * @spool_max: --spool-max: bytes copied to a temporary file (standard
 *             input, or the inflated form of a gzip file); by default the
 *             smaller of DUMP_SPOOL_MAX and half the free space there.
 * @gunzip_max: --gunzip-max: bytes inflated from a gzip input.
 */
struct dump_limits {
	uint64_t json_mem_max;
	uint64_t spool_max;
	uint64_t gunzip_max;
};

extern struct dump_limits dump_limits;

/*
 * struct dump_opts - The global output options, set by the command line
 * (migstream-dump.c) for every command.
 * @json: -j, --json: JSON output (info, sections).
 * @quiet: -q, --quiet: verify prints no OK line (verify, convert and
 *         extract take it: their success is their exit status).
 */
struct dump_opts {
	bool json;
	bool quiet;
};

extern struct dump_opts dump_opts;

/*
 * struct dump_error - The first error of one of the tool's objects (an
 * input, the walker's payload parser, convert's output, extract's files,
 * state's decoder), the way the library keeps its own: a negative errno,
 * the input offset it is about, and a message that reads, like the
 * library's, "offset 0x<hex>: section <id> '<idstr>': <what was expected,
 * what was found>" (the offset and the section when they apply).  Later
 * errors do not replace the first.  Zero-initialised: no error.
 * @code: 0, or the negative errno.
 * @offset: the input offset named in @msg, or DUMP_NO_OFFSET.
 * @msg: the message, NUL-terminated.
 */
#define DUMP_ERRMSG_SIZE 1536u
/* No offset to name (dump_error_set()'s @offset). */
#define DUMP_NO_OFFSET UINT64_MAX
/* No section to name (dump_error_set()'s @section_id). */
#define DUMP_NO_SECTION (-1LL)

struct dump_error {
	int code;
	uint64_t offset;
	char msg[DUMP_ERRMSG_SIZE];
};

/*
 * dump_error_set() - Record the first error of @e: @err (a negative
 * errno; anything else becomes -EIO), and the message "offset 0x@offset: "
 * (unless DUMP_NO_OFFSET), "section @section_id '@idstr': " (unless
 * DUMP_NO_SECTION), then @fmt.  Return: the first error's code, the
 * earlier one if @e had one.
 */
int dump_error_set(struct dump_error *e, int err, uint64_t offset,
		   long long section_id, const char *idstr, const char *fmt,
		   ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 6, 7)))
#endif
	;

/* dump_error_vset() - dump_error_set() with a va_list. */
int dump_error_vset(struct dump_error *e, int err, uint64_t offset,
		    long long section_id, const char *idstr, const char *fmt,
		    va_list ap)
#if defined(__GNUC__)
	__attribute__((format(printf, 6, 0)))
#endif
	;

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
 * Optional hooks of the converter and the extractor.  Each returns 0, or
 * a negative errno that stops the walk (w->err gets it; the hook keeps
 * its own message).
 *
 * dump_begin_fn: called before a record's payload is consumed, with the
 * stream of that payload (a COMMAND's bytes may be read from it).
 * dump_bytes_fn: every payload byte the walker consumes, in order.
 * dump_page_fn: each RAM page record: @blk indexes w->blk, @addr is the
 * page's offset in it, @data is the page (normal, compressed once
 * inflated; @len the page size), the XBZRLE data (@len bytes), or NULL
 * for a zero page.
 */
typedef int (*dump_begin_fn)(struct dump_walk *w, const ms_record *rec,
			     ms_stream *payload, void *opaque);
typedef int (*dump_bytes_fn)(struct dump_walk *w, const uint8_t *d, size_t n,
			     void *opaque);
typedef int (*dump_page_fn)(struct dump_walk *w, unsigned blk, uint64_t addr,
			    enum dump_page_kind kind, const uint8_t *data,
			    size_t len, void *opaque);

/*
 * dump_payload_fn (state): decodes the payload of a section other than
 * RAM from @p, instead of the footer scan.  Returns 0, or the negative
 * errno of dump_walk_fail().
 */
typedef int (*dump_payload_fn)(struct dump_walk *w, const ms_record *rec,
			       ms_stream *p, void *opaque);

/*
 * struct dump_source - An input read once (dump-input.c): the file or
 * standard input after its magic was checked, inflated if it is gzip.
 * Read it with dump_source_read() (an ms_stream_ops read) or give it to
 * a walk (dump_walk.src).  An error of its own (gzip data, a read) is
 * in @error (without an offset: the walk that reads it names one).
 */
struct dump_source {
	int fd;
	const char *name; /* for messages ("<stdin>" for "-") */
	bool close;	  /* @fd is ours */
	uint8_t head[4];  /* the magic, read before the rest */
	size_t nhead, head_off;
	bool gz; /* inflating */
	z_stream z;
	bool z_ready, in_eof, member_end;
	uint8_t *zbuf;
	uint64_t in_total, out_total, out_max;
	struct dump_error error;
};

/*
 * dump_source_open() - Open @file ("-": standard input) and check its
 * first bytes: a stream's magic or gzip's.  Return: a DUMP_EXIT_* status,
 * the message printed (a directory is a usage error, 2).
 */
int dump_source_open(struct dump_source *s, const char *file);

/* dump_source_read() - Read the stream (inflated); an ms_stream_ops read. */
ssize_t dump_source_read(void *opaque, void *buf, size_t len);

/* dump_source_status() - The DUMP_EXIT_* status of the source's error. */
int dump_source_status(const struct dump_source *s);

/* dump_source_close() - Free the source (and close its fd if ours). */
void dump_source_close(struct dump_source *s);

/*
 * dump_open_file() - Open @file ("-": standard input) for a command that
 * needs a regular file: the file itself if it is a plain stream, else
 * (a pipe, gzip) a copy of the stream in an unlinked file of $TMPDIR
 * (else /tmp), after its magic was checked, of at most dump_spool_cap()
 * bytes.  *@fd is at the stream's first byte; *@owned says whether the
 * caller closes it; *@name names the input in messages.  Return: a
 * DUMP_EXIT_* status, the message printed.
 */
int dump_open_file(const char *file, int *fd, const char **name, bool *owned);

/* dump_spool_cap() - The bytes a spool (on @fd's file system) may hold. */
uint64_t dump_spool_cap(int fd);

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
	/* Optional: the input read through this instead of fd. */
	struct dump_source *src;
	dump_record_fn on_record;
	dump_begin_fn on_begin; /* optional hooks, see above */
	dump_bytes_fn on_bytes;
	dump_page_fn on_page;
	dump_payload_fn on_payload; /* NULL: the footer scan */
	bool keep_vmdesc;	    /* keep the trailer's JSON in vmdesc */
	bool progress; /* a progress line on stderr (see dump_progress()) */
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
	char *vmdesc;	    /* keep_vmdesc: the JSON, NUL-terminated */
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
	/* Whether the error is about the last record's payload. */
	bool in_payload;

	/* Streams without section footers (QEMU machine types before 2.4):
	 * see dump_walk_skip() below. */
	bool no_footers;    /* result: the QEMU stream has no footers */
	uint64_t vmdesc_at; /* the trailer the walk must reach (its offset
			       + 1; 0 for none): set by the caller, or for
			       no_footers by the walker */
	unsigned nf_probe;  /* private: 1 in the walk that looks for them */

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

/*
 * dump_walk_trailer() - The VM description of the stream read from @fd
 * (from its position; seeked back there on success), found by walking
 * the whole stream: only a trailer that follows the EOF record of a
 * valid stream, and ends it, counts.
 * Return: DUMP_EXIT_OK with *@json (malloc'd, NUL-terminated, @len
 * bytes), or a DUMP_EXIT_* status after printing why (the walk's error,
 * or no trailer: 1).
 */
int dump_walk_trailer(const char *name, int fd, char **json, size_t *len);

/*
 * dump_walk_fail() - Fail the payload being decoded (from a
 * dump_payload_fn); the walker prefixes the offset and the section.
 * Return: the first error recorded.
 */
int dump_walk_fail(struct dump_walk *w, int err, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

/*
 * dump_progress() - Whether a walk should show its progress line: when
 * stderr is a terminal, and, for a command printing as it goes
 * (@prints_stdout), stdout is not one.  The line is printed at most every
 * MIGSTREAM_DUMP_PROGRESS_MS milliseconds (250), first after one such
 * interval, and erased at the end.
 */
bool dump_progress(bool prints_stdout);

/*
 * Text from the stream (names, machine types, messages that quote them)
 * made safe to print: valid UTF-8 passes, but a control character (C0,
 * DEL, C1) and every byte that is not part of valid UTF-8 become "\xNN",
 * and a backslash "\\", so that the text is unambiguous and no byte of
 * the stream reaches a terminal as an escape sequence.
 *
 * DUMP_ESC_SIZE(n) - The room the escaped form of @n bytes needs.
 */
#define DUMP_ESC_SIZE(n) (4u * (n) + 1u)

/*
 * dump_escape() - Escape @src into @dst (@cap bytes, NUL-terminated;
 * cut at a whole character when short).  Return: the length written.
 */
size_t dump_escape(char *dst, size_t cap, const char *src);

/*
 * dump_esc() - dump_escape() into one of 4 static buffers, which it
 * returns (for a name of up to MS_COUNTED_STRING_MAX bytes; the fifth call
 * reuses the first buffer).
 */
const char *dump_esc(const char *s);

/* dump_is_utf8() - Whether @s is valid UTF-8. */
bool dump_is_utf8(const char *s);

/*
 * dump_json_str() - Write @s to @f as a JSON string: valid UTF-8 as it is
 * (a control character as \uNNNN); a string that is not valid UTF-8 in
 * its dump_escape() form (the JSON string then holds "\xNN" for each
 * invalid byte and "\\" for each backslash).
 */
void dump_json_str(FILE *f, const char *s);

/* dump_walk_free() - Free what the walker allocated. */
void dump_walk_free(struct dump_walk *w);

/* dump_page_kind_name() - "zero", "normal", "compressed" or "xbzrle". */
const char *dump_page_kind_name(int kind);

/*
 * dump_convert_main(), dump_extract_main() - The convert and extract
 * commands; @argv[0] is the command name, then the command's own options
 * and its operands (migstream-dump.c has taken the global ones out).
 * Return: a DUMP_EXIT_* status.
 */
int dump_convert_main(int argc, char **argv);
int dump_extract_main(int argc, char **argv);

/*
 * dump_state_main(), dump_desc_main() - The state and desc commands
 * (dump-state.c); @argv[0] is the command name.  Return: a DUMP_EXIT_*
 * status.
 */
int dump_state_main(int argc, char **argv);

/*
 * dump_state_write() - What the state command prints, to @out: the
 * stream read from @fd (at its current position) decoded with the VM
 * description @json (@len bytes).  Messages go to stderr, @name naming
 * the stream.  Return: a DUMP_EXIT_* status.
 */
int dump_state_write(const char *name, int fd, const char *json, size_t len,
		     FILE *out);

/*
 * dump_spool_stdin() - dump_open_file() of standard input: *@fd is
 * STDIN_FILENO for a plain regular file, else an unlinked temporary
 * file's (at offset 0).  Return: a DUMP_EXIT_* status (the message
 * printed).
 */
int dump_spool_stdin(int *fd);
int dump_desc_main(int argc, char **argv);

/*
 * Sections the VM description does not describe, and streams without
 * section footers.
 *
 * DUMP_PAYLOAD_OPAQUE: returned by a dump_payload_fn for a payload it does
 * not decode; the walker then finds its end by the footer scan (or, in a
 * stream without footers, refuses it).
 *
 * dump_walk_skip() - Consume @n bytes of the payload @p from a
 * dump_payload_fn, through the walker's on_bytes hook.  Return: 0 or the
 * negative errno of dump_walk_fail().
 *
 * In a QEMU stream without footers the walker delimits each device
 * section with the VM description: the caller's on_payload, or else the
 * trailer that ends the file (dump_vmdesc_candidate()), decoded by
 * dump-state.c's dump_desc_*(), and the walk must reach that very trailer.
 * Such a stream is recognised in a regular file only (the first section's
 * end is looked at in a first, short walk).
 */
#define DUMP_PAYLOAD_OPAQUE 1

int dump_walk_skip(struct dump_walk *w, ms_stream *p, size_t n);

/*
 * dump_vmdesc_candidate() - By the exact-end rule, the trailer that ends
 * the regular file @fd of a QEMU stream: 1 with its JSON in *@json
 * (malloc'd, NUL-terminated), *@len and its offset *@pos; 0 when there is
 * none; or a negative errno.
 */
int dump_vmdesc_candidate(int fd, char **json, uint32_t *len, uint64_t *pos);

/*
 * dump_desc_new(), dump_desc_payload(), dump_desc_free() - A VM
 * description's decoder that consumes device sections without printing
 * them.  dump_desc_new() writes its error to @msg (@cap bytes) and
 * returns -EBADMSG (not a usable description), -E2BIG (over a cap) or
 * -ENOMEM.  dump_desc_payload() is a dump_payload_fn with the decoder as
 * its opaque.
 */
struct dump_desc;
int dump_desc_new(struct dump_desc **out, const char *json, size_t len,
		  char *msg, size_t cap);
int dump_desc_payload(struct dump_walk *w, const ms_record *rec, ms_stream *p,
		      void *opaque);
void dump_desc_free(struct dump_desc *d);

/*
 * Mapped snapshot files (dump-mapped.c): magic "MSMAPPED", read and
 * written on their own (not with the library's ms_ram_mapped_*()).
 */
#define DUMP_MAPPED_MAGIC      "MSMAPPED"
#define DUMP_MAPPED_COMPLETE   0x1u
#define DUMP_MAPPED_ALIGN      ((uint64_t)1 << 20)
#define DUMP_MAPPED_MAX_BLOCKS 1024u

/* One block of a mapped file's table, as read (@zero: counted pages). */
struct dump_mapped_block {
	char name[MS_COUNTED_STRING_MAX + 1];
	unsigned idlen;
	uint64_t used, npages, bitmap_off, crc_off, pages_off, present, zero;
	uint32_t meta_crc;
};

/* struct dump_mapped - A mapped file open for reading. */
struct dump_mapped {
	int fd;
	const char *name;
	uint64_t size; /* the file's */
	uint32_t version, flags, page_size, nblocks, zero_crc;
	uint64_t dev_off, dev_len, file_size;
	struct dump_mapped_block *b;
	struct dump_error e;
};

/* dump_is_mapped() - Whether @file ("-": stdin) is a regular file with the
 * mapped magic. */
bool dump_is_mapped(const char *file);

/*
 * dump_mapped_open() - Open @file and check its header, block table and
 * regions.  dump_mapped_pages() - Check every block's bitmap and checksum
 * table and count its zero pages; with @all, read every page and check its
 * CRC.  dump_mapped_walk() - Walk the device stream with @w (its hooks are
 * kept) and check its RAM section against the table.  Each returns a
 * DUMP_EXIT_* status, the message in m->e.  dump_mapped_close() frees.
 */
int dump_mapped_open(struct dump_mapped *m, const char *file);
int dump_mapped_pages(struct dump_mapped *m, bool all);
int dump_mapped_walk(struct dump_mapped *m, struct dump_walk *w);
void dump_mapped_close(struct dump_mapped *m);

/* dump_mapped_meta() - Block @i's bitmap (*@bm) and checksums (*@crcs),
 * both malloc'd, checked against meta_crc and present. */
int dump_mapped_meta(struct dump_mapped *m, unsigned i, uint8_t **bm,
		     uint32_t **crcs);

/* dump_mapped_layout() - Print the layout (text lines, or a JSON object). */
void dump_mapped_layout(const struct dump_mapped *m, bool json);

/*
 * dump_mapped_block_file() - extract: create block @i's file @name in
 * @dirfd (O_EXCL) by copying its region's runs of saved non-zero pages;
 * zero and unsaved pages stay holes.  Return: 0, a DUMP_EXIT_* status
 * (m->e set), or a negative errno about the output.
 */
int dump_mapped_block_file(struct dump_mapped *m, unsigned i, int dirfd,
			   const char *name);

/*
 * dump_mapped_ram_payload() - convert from a mapped file: the streaming
 * form of a RAM section's payload of type @type (START: block list, EOS;
 * PART: EOS; END: every saved page, EOS), to @s.  Return: 0 or -errno.
 */
int dump_mapped_ram_payload(struct dump_mapped *m, uint8_t type, ms_stream *s);

/*
 * struct dump_mapped_out - convert to a mapped file: OUT.tmp (@fd) takes
 * each page at its offset as the walk goes; dump_mapped_out_ram() writes a
 * RAM section's payload of the device stream (START: block list, MAPPED
 * sync, EOS; PART and END: EOS); dump_mapped_out_finish() copies the
 * device stream (@dev_fd) to D, writes the metadata, fsync()s and sets
 * COMPLETE last.  Each returns 0 or a negative errno (the message in @e).
 */
#define DUMP_MAPPED_MAX_PAGES (UINT64_C(1) << 28)
struct dump_mapped_out {
	int fd;
	uint32_t page_size, zero_crc;
	unsigned nblocks;
	bool laid;
	uint64_t dev_off;
	struct dump_mapped_block *b;
	uint8_t **bm;
	uint32_t **crc;
	uint8_t *page;
	struct dump_error e;
};
int dump_mapped_out_page(struct dump_mapped_out *o, struct dump_walk *w,
			 unsigned blk, uint64_t addr, enum dump_page_kind kind,
			 const uint8_t *data, size_t len);
int dump_mapped_out_ram(struct dump_mapped_out *o, struct dump_walk *w,
			uint8_t type, ms_stream *s);
int dump_mapped_out_finish(struct dump_mapped_out *o, struct dump_walk *w,
			   int dev_fd);
void dump_mapped_out_free(struct dump_mapped_out *o);

/* dump_safe_name() - A block's file name for extract (dump-extract.c). */
#define DUMP_SAFE_NAME_SIZE 216u
void dump_safe_name(char *dst, const char *src, unsigned idx);

#endif /* MIGSTREAM_DUMP_H */
