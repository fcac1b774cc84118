/* SPDX-License-Identifier: MIT */
/*
 * migstream-dump: inspect and check migration streams, QEMU's ("QEVM"
 * version 3) and migstream's native profile.
 *
 *	migstream-dump COMMAND [OPTIONS] FILE
 *
 * Commands: info, sections, verify, convert (dump-convert.c), extract
 * (dump-extract.c), state and desc (dump-state.c).  FILE may be
 * "-" for stdin.  Exit status: 0
 * success, 1 invalid or truncated stream, 2 usage error, 3 I/O error.
 * See migstream-dump(1).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dump.h"

#define PROG "migstream-dump"

/* The record types info counts, in the order it prints them. */
static const uint8_t counted_types[] = {
	MS_REC_START,  MS_REC_PART,	     MS_REC_END,     MS_REC_FULL,
	MS_REC_FOOTER, MS_REC_CONFIGURATION, MS_REC_COMMAND, MS_REC_SUBSECTION,
	MS_REC_EOF,    MS_REC_VMDESC,
};

#define NCOUNTED (sizeof(counted_types) / sizeof(counted_types[0]))
/*
 * The command line.  One table of commands (name, handler, usage, the
 * options each takes) and one of options: every option is parsed the same
 * way, by one getopt_long() pass, before or after the command and in any
 * order (up to "--"); the global ones are set for every command, and one
 * that a command has no use for is refused with a message that says so.
 */

/* The values of the options without a short form. */
enum {
	OPT_SPOOL_MAX = 256,
	OPT_GUNZIP_MAX,
	OPT_JSON_MEM_MAX,
	OPT_MAX_BYTES,
	OPT_DESC,
	OPT_MAX_VALUES,
	OPT_MAX_OUTPUT,
	OPT_MAX_MEMORY,
};

/* Every option: the global ones first (NGLOBAL), then the commands' own. */
static const struct option longopts[] = {
	{"json", no_argument, NULL, 'j'},
	{"quiet", no_argument, NULL, 'q'},
	{"spool-max", required_argument, NULL, OPT_SPOOL_MAX},
	{"gunzip-max", required_argument, NULL, OPT_GUNZIP_MAX},
	{"json-mem-max", required_argument, NULL, OPT_JSON_MEM_MAX},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{"to", required_argument, NULL, 't'},
	{"compress", optional_argument, NULL, 'c'},
	{"max-bytes", required_argument, NULL, OPT_MAX_BYTES},
	{"desc", required_argument, NULL, OPT_DESC},
	{"memory", no_argument, NULL, 'm'},
	{"max-values", required_argument, NULL, OPT_MAX_VALUES},
	{"max-output", required_argument, NULL, OPT_MAX_OUTPUT},
	{"max-memory", required_argument, NULL, OPT_MAX_MEMORY},
	{NULL, 0, NULL, 0},
};

#define NGLOBAL 7
/* ':' first: a missing argument is told from an unknown option. */
static const char shortopts[] = ":jqhVt:c::m";

static const char global_help[] =
	"Global options (before or after the command; -j and -q where they "
	"mean\n"
	"something):\n"
	"  -j, --json     JSON output: info, sections (state and desc always "
	"print\n"
	"                 JSON); refused by verify, convert and extract\n"
	"  -q, --quiet    verify: no OK line (convert and extract print "
	"nothing\n"
	"                 on success anyway); refused by info, sections, "
	"state, desc\n"
	"  --spool-max SIZE     the most bytes copied to a temporary file\n"
	"                 (default: 64G or half the free space there)\n"
	"  --gunzip-max SIZE    the most bytes inflated from gzip input (1T)\n"
	"  --json-mem-max SIZE  parser memory for the VM description "
	"(128M)\n"
	"  -h, --help     this help (COMMAND --help: the command's)\n"
	"  -V, --version  the migstream version\n"
	"SIZE: bytes, or a number with K, M, G or T (powers of 1024).\n";

static int cmd_info(int argc, char **argv);
static int cmd_sections(int argc, char **argv);
static int cmd_verify(int argc, char **argv);

/*
 * struct command - One command of the tool.
 * @name: its name on the command line.
 * @run: its handler; @argv[0] is @name, then its own options in their
 *       long form, "--" and its operands.  Return: a DUMP_EXIT_* status.
 * @operands: its operands, for messages ("FILE", "IN OUT", "DIR FILE").
 * @usage: what follows @name in its synopsis.
 * @summary: one line for --help.
 * @help: its own options, one per line, for COMMAND --help (NULL: none).
 * @own: the values (struct option.val) of its own options, 0-terminated.
 * @json: whether --json means something to it ...
 * @nojson: ... else the message that refuses it.
 * @quiet: whether -q means something to it: the commands whose success
 *         is their exit status (the others print what they were asked).
 */
struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *operands;
	const char *usage;
	const char *summary;
	const char *help;
	int own[6];
	bool json;
	const char *nojson;
	bool quiet;
};

static const struct command commands[] = {
	{
		.name = "info",
		.run = cmd_info,
		.operands = "FILE",
		.usage = "[-j] FILE",
		.summary = "profile, machine, record counts, RAM blocks and "
			   "pages",
		.json = true,
	},
	{
		.name = "sections",
		.run = cmd_sections,
		.operands = "FILE",
		.usage = "[-j] FILE",
		.summary = "one line per record",
		.json = true,
	},
	{
		.name = "verify",
		.run = cmd_verify,
		.operands = "FILE",
		.usage = "[-q] FILE",
		.summary = "check the whole stream; exit 0 only if it is whole "
			   "and valid",
		.nojson = "verify has no --json output (its verdict is its "
			  "exit status; info --json reports the same walk)",
		.quiet = true,
	},
	{
		.name = "convert",
		.run = dump_convert_main,
		.operands = "IN OUT",
		.usage = "--to native|qemu|mapped [--compress[=LEVEL]] IN OUT",
		.summary = "re-frame a stream in the other profile (OUT may be "
			   "'-')",
		.help = "  -t, --to native|qemu|mapped  the profile to write, "
			"or a mapped\n"
			"                          snapshot file (required)\n"
			"  -c, --compress[=LEVEL]  native: zlib per chunk, "
			"LEVEL 1 to 9 (6)\n",
		.own = {'t', 'c'},
		.nojson = "convert has no --json output (it writes a stream)",
		.quiet = true,
	},
	{
		.name = "extract",
		.run = dump_extract_main,
		.operands = "DIR FILE",
		.usage = "[--max-bytes=N] DIR FILE",
		.summary = "RAM blocks as sparse files, desc.json and "
			   "state.json",
		.help = "  --max-bytes N     the block files' sizes together, "
			"at most (1T;\n"
			"                    suffixes K, M, G, T, P, E)\n",
		.own = {OPT_MAX_BYTES},
		.nojson = "extract has no --json output (it writes files; "
			  "state.json and desc.json are JSON)",
		.quiet = true,
	},
	{
		.name = "state",
		.run = dump_state_main,
		.operands = "FILE",
		.usage = "[-m] [--desc DESC] [--max-values N] [--max-output B] "
			 "[--max-memory B] FILE",
		.summary = "every device's state as JSON, as QEMU's "
			   "analyze-migration.py",
		.help = "  -m, --memory      RAM page contents too, streamed\n"
			"  --desc DESC       the VM description of the file "
			"DESC, not the stream's\n"
			"  --max-values N    values decoded in the stream "
			"(4Mi)\n"
			"  --max-output B    bytes written, plus 16 a byte of "
			"input (256MiB)\n"
			"  --max-memory B    bytes of the parsed description "
			"and a section's state\n"
			"                    (128MiB)\n",
		.own = {'m', OPT_DESC, OPT_MAX_VALUES, OPT_MAX_OUTPUT,
			OPT_MAX_MEMORY},
		.json = true, /* its output is JSON */
	},
	{
		.name = "desc",
		.run = dump_desc_main,
		.operands = "FILE",
		.usage = "[--max-memory B] FILE",
		.summary = "the VM description (JSON trailer), indented",
		.help = "  --max-memory B    bytes of the parsed description "
			"(128MiB)\n",
		.own = {OPT_MAX_MEMORY},
		.json = true, /* its output is JSON */
	},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	size_t i;

	fprintf(f,
		"Usage: " PROG " COMMAND [OPTIONS] FILE\n"
		"Inspect a QEMU (\"QEVM\" v3) or migstream native migration "
		"stream, or a mapped\nsnapshot file (\"MSMAPPED\"); FILE may "
		"be '-'.\n"
		"\n"
		"Commands:\n");
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %s %s\n      %s\n", commands[i].name,
			commands[i].usage, commands[i].summary);
	fprintf(f,
		"\n%s\n"
		"'" PROG " COMMAND --help' lists the command's own options.\n"
		"\n"
		"Exit status: 0 success, 1 invalid or truncated stream (or "
		"over a limit),\n2 usage error (a directory as FILE too), "
		"3 system error.\n",
		global_help);
}

static void command_usage(const struct command *c)
{
	printf("Usage: " PROG " %s %s\n%s.\n", c->name, c->usage, c->summary);
	if (c->help)
		printf("\nIts options:\n%s", c->help);
	printf("\n%s", global_help);
}

static int usage_error(const struct command *c, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/* A usage error (status 2): of command @c, or of the command line. */
static int usage_error(const struct command *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG "%s%s: ", c ? " " : "", c ? c->name : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (c)
		fprintf(stderr, "\nUsage: " PROG " %s %s\n", c->name, c->usage);
	else
		fprintf(stderr, "\nTry '" PROG " --help'.\n");
	return DUMP_EXIT_USAGE;
}

static const char *profile_name(ms_profile p)
{
	switch (p) {
	case MS_PROFILE_QEMU:
		return "qemu";
	case MS_PROFILE_NATIVE:
		return "native";
	default:
		return "unknown";
	}
}

/* Native: "crc32", "none", or NULL for the QEMU profile. */
static const char *checksum_name(const struct dump_walk *w)
{
	if (w->profile != MS_PROFILE_NATIVE)
		return NULL;
	return w->features & 0x0001u ? "crc32" : "none";
}

static void report_error(const struct dump_walk *w)
{
	fprintf(stderr, PROG ": %s: %s\n", dump_esc(w->name), w->errmsg);
}

/*
 * info
 */

static void info_text(const struct dump_walk *w)
{
	const char *cs = checksum_name(w);
	size_t i;

	printf("file:       %s\n", dump_esc(w->name));
	printf("profile:    %s\n", profile_name(w->profile));
	printf("version:    %u\n", w->version);
	printf("machine:    %s\n",
	       w->have_machine ? dump_esc(w->machine) : "-");
	printf("bytes read: %" PRIu64 "\n", w->end);
	printf("records:    %" PRIu64 "\n", w->records);
	for (i = 0; i < NCOUNTED; i++)
		printf("  %-14s %" PRIu64 "\n",
		       ms_record_type_name(counted_types[i]),
		       w->count[counted_types[i]]);
	if (w->ncaps) {
		printf("capabilities:");
		for (i = 0; i < w->ncaps; i++)
			printf(" %s", dump_esc(w->caps[i]));
		printf("\n");
	}
	if (w->have_vmdesc)
		printf("vmdesc:     %" PRIu32 " bytes of JSON\n",
		       w->vmdesc_len);
	else if (w->complete && w->profile == MS_PROFILE_QEMU)
		printf("vmdesc:     none (the stream ends after its EOF byte, "
		       "at offset 0x%" PRIx64 ")\n",
		       w->end);
	else
		printf("vmdesc:     none\n");
	if (w->no_footers)
		printf("footers:    none (QEMU before 2.4): device sections "
		       "delimited by the VM description\n");
	if (w->ram_listed) {
		printf("ram:        %u blocks, %" PRIu64
		       " bytes, page size %u\n",
		       w->nblk, w->ram_total, w->page_size);
		for (i = 0; i < w->nblk; i++)
			printf("  %-40s %12" PRIu64 "\n",
			       dump_esc(w->blk[i].name), w->blk[i].len);
	} else {
		printf("ram:        none\n");
	}
	printf("pages:     ");
	for (i = 0; i < DUMP_PAGE_KINDS; i++)
		printf(" %s %" PRIu64 "%s", dump_page_kind_name((int)i),
		       w->pages[i], i + 1 < DUMP_PAGE_KINDS ? "," : "\n");
	if (w->multifd_flushes)
		printf("multifd flushes: %" PRIu64 "\n", w->multifd_flushes);
	if (w->ram_broken)
		printf("ram:        not parsed to the end (see warnings)\n");
	if (cs)
		printf("checksums:  %s%s\n", cs,
		       !strcmp(cs, "none") ? ""
		       : w->complete	   ? ", all verified"
					   : ", verified up to the error");
	if (w->complete)
		printf("status:     complete\n");
	else if (!strncmp(w->errmsg, "offset ", 7))
		printf("status:     stopped at %s\n", w->errmsg);
	else
		printf("status:     stopped at offset 0x%" PRIx64 ": %s\n",
		       w->end, w->errmsg);
}

static void info_json(const struct dump_walk *w, bool nested)
{
	const char *cs = checksum_name(w);
	size_t i;

	printf("{\"file\": ");
	dump_json_str(stdout, w->name);
	printf(", \"profile\": \"%s\", \"version\": %u, \"machine\": ",
	       profile_name(w->profile), w->version);
	if (w->have_machine)
		dump_json_str(stdout, w->machine);
	else
		printf("null");
	printf(", \"bytes\": %" PRIu64 ", \"records\": %" PRIu64
	       ", \"section_types\": {",
	       w->end, w->records);
	for (i = 0; i < NCOUNTED; i++)
		printf("%s\"%s\": %" PRIu64, i ? ", " : "",
		       ms_record_type_name(counted_types[i]),
		       w->count[counted_types[i]]);
	printf("}, \"capabilities\": [");
	for (i = 0; i < w->ncaps; i++) {
		printf("%s", i ? ", " : "");
		dump_json_str(stdout, w->caps[i]);
	}
	printf("], \"ram\": {\"total\": %" PRIu64 ", \"page_size\": %u"
	       ", \"blocks\": {",
	       w->ram_total, w->page_size);
	for (i = 0; i < w->nblk; i++) {
		printf("%s", i ? ", " : "");
		dump_json_str(stdout, w->blk[i].name);
		printf(": %" PRIu64, w->blk[i].len);
	}
	printf("}, \"pages\": {");
	for (i = 0; i < DUMP_PAGE_KINDS; i++)
		printf("%s\"%s\": %" PRIu64, i ? ", " : "",
		       dump_page_kind_name((int)i), w->pages[i]);
	printf("}, \"multifd_flush\": %" PRIu64 ", \"parsed\": %s}",
	       w->multifd_flushes, w->ram_broken ? "false" : "true");
	if (w->have_vmdesc)
		printf(", \"vmdesc\": %" PRIu32, w->vmdesc_len);
	else
		printf(", \"vmdesc\": null");
	if (w->no_footers)
		printf(", \"footers\": false");
	if (cs)
		printf(", \"checksum\": {\"type\": \"%s\", \"verified\": %s}",
		       cs,
		       !strcmp(cs, "crc32") && w->complete ? "true" : "false");
	else
		printf(", \"checksum\": null");
	printf(", \"warnings\": %" PRIu64 ", \"complete\": %s, \"error\": ",
	       w->warnings, w->complete ? "true" : "false");
	if (w->complete)
		printf("null");
	else
		dump_json_str(stdout, w->errmsg);
	printf(nested ? "}" : "}\n");
}

/*
 * sections
 */

struct sections_ctx {
	bool json;
	uint64_t n;
	uint64_t base; /* a mapped file's device stream offset */
};

static void sections_record(struct dump_walk *w, const ms_record *rec,
			    uint64_t plen, void *opaque)
{
	struct sections_ctx *c = opaque;
	const ms_section_hdr *h = &rec->section;
	bool sec = rec->type >= MS_REC_START && rec->type <= MS_REC_FULL;
	bool id = sec || rec->type == MS_REC_FOOTER;
	const char *name = sec || rec->type == MS_REC_FOOTER   ? h->idstr
			   : rec->type == MS_REC_CONFIGURATION ? rec->machine
							       : "";

	(void)w;
	if (!c->json) {
		printf("0x%08" PRIx64 " %-13s ", c->base + rec->offset,
		       ms_record_type_name(rec->type));
		if (id)
			printf("%5" PRIu32, h->section_id);
		else if (rec->type == MS_REC_COMMAND)
			printf("%5u", rec->cmd);
		else
			printf("%5s", "-");
		printf(" %-32s", *name ? dump_esc(name) : "-");
		if (sec)
			printf(" %4" PRIu32 " %4" PRIu32, h->instance_id,
			       h->version_id);
		else
			printf(" %4s %4s", "-", "-");
		printf(" %10" PRIu64 "\n", plen);
		return;
	}
	printf("%s\n  {\"offset\": %" PRIu64 ", \"type\": \"%s\"",
	       c->n ? "," : "", c->base + rec->offset,
	       ms_record_type_name(rec->type));
	if (id)
		printf(", \"section_id\": %" PRIu32, h->section_id);
	if (*name) {
		printf(", \"%s\": ",
		       rec->type == MS_REC_CONFIGURATION ? "machine" : "idstr");
		dump_json_str(stdout, name);
	}
	if (sec)
		printf(", \"instance_id\": %" PRIu32
		       ", \"version_id\": %" PRIu32,
		       h->instance_id, h->version_id);
	if (rec->type == MS_REC_COMMAND)
		printf(", \"cmd\": %u", rec->cmd);
	printf(", \"payload_length\": %" PRIu64 "}", plen);
	c->n++;
}

/*
 * info, sections and verify: one walk each.
 */

enum walk_command { CMD_INFO, CMD_SECTIONS, CMD_VERIFY };

static int run_mapped(enum walk_command cmd, const char *file);

static int run(enum walk_command cmd, const char *file)
{
	struct sections_ctx sc = {.json = dump_opts.json};
	struct dump_source src;
	struct dump_walk w;
	int ret;

	if (dump_is_mapped(file))
		return run_mapped(cmd, file);
	memset(&w, 0, sizeof(w));
	ret = dump_source_open(&src, file);
	if (ret)
		return ret;
	w.name = src.name;
	w.fd = src.fd;
	w.src = &src;
	w.strict = cmd == CMD_VERIFY;
	w.progress = dump_progress(cmd == CMD_SECTIONS);
	if (cmd == CMD_SECTIONS) {
		w.on_record = sections_record;
		w.opaque = &sc;
		if (dump_opts.json)
			printf("[");
	}
	ret = dump_walk_run(&w);
	switch (cmd) {
	case CMD_INFO:
		if (dump_opts.json)
			info_json(&w, false);
		else
			info_text(&w);
		break;
	case CMD_SECTIONS:
		if (dump_opts.json)
			printf("%s]\n", sc.n ? "\n" : "");
		break;
	case CMD_VERIFY:
		if (!ret && !dump_opts.quiet)
			printf("%s: OK: %s profile, %" PRIu64
			       " records, %" PRIu64 " bytes, %" PRIu64
			       " RAM pages%s%s\n",
			       w.name, profile_name(w.profile), w.records,
			       w.end,
			       w.pages[0] + w.pages[1] + w.pages[2] +
				       w.pages[3],
			       checksum_name(&w) && !strcmp(checksum_name(&w),
							    "crc32")
				       ? ", every checksum verified"
				       : "",
			       w.have_vmdesc ? ""
					     : "; no VM description trailer "
					       "after EOF (the stream ends "
					       "there)");
		break;
	}
	if (ret)
		report_error(&w);
	dump_walk_free(&w);
	dump_source_close(&src);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, PROG ": writing the output: %s\n",
			strerror(errno));
		return DUMP_EXIT_IO;
	}
	return ret;
}

/*
 * A mapped snapshot file (dump-mapped.c): its layout, then the device
 * stream's walk.  info and sections check the header, the table and the
 * regions (info also the bitmaps and checksum tables); verify checks all
 * of it, every page's CRC included.
 */
static int run_mapped(enum walk_command cmd, const char *file)
{
	struct sections_ctx sc = {.json = dump_opts.json};
	struct dump_mapped m;
	struct dump_walk w;
	uint64_t pages = 0;
	unsigned i;
	int ret;

	memset(&w, 0, sizeof(w));
	ret = dump_mapped_open(&m, file);
	if (!ret && cmd != CMD_SECTIONS)
		ret = dump_mapped_pages(&m, cmd == CMD_VERIFY);
	if (ret) {
		fprintf(stderr, PROG ": %s: %s\n", dump_esc(m.name), m.e.msg);
		dump_mapped_close(&m);
		return ret;
	}
	w.strict = cmd == CMD_VERIFY;
	w.progress = dump_progress(cmd == CMD_SECTIONS);
	sc.base = m.dev_off;
	if (cmd == CMD_SECTIONS) {
		w.on_record = sections_record;
		w.opaque = &sc;
		if (dump_opts.json)
			printf("[");
	}
	ret = dump_mapped_walk(&m, &w);
	for (i = 0; i < m.nblocks; i++)
		pages += m.b[i].present;
	if (cmd == CMD_INFO && dump_opts.json) {
		printf("{\"file\": ");
		dump_json_str(stdout, m.name);
		printf(", \"profile\": \"mapped\", \"layout\": ");
		dump_mapped_layout(&m, true);
		printf(", \"device_stream\": ");
		info_json(&w, true);
		printf(", \"complete\": %s, \"error\": ",
		       ret ? "false" : "true");
		if (ret)
			dump_json_str(stdout, m.e.msg);
		else
			printf("null");
		printf("}\n");
	} else if (cmd == CMD_INFO) {
		printf("profile:    mapped (device stream below)\n");
		dump_mapped_layout(&m, false);
		info_text(&w);
	} else if (cmd == CMD_SECTIONS && dump_opts.json) {
		printf("%s]\n", sc.n ? "\n" : "");
	} else if (cmd == CMD_VERIFY && !ret && !dump_opts.quiet) {
		printf("%s: OK: mapped file, %" PRIu32 " blocks, %" PRIu64
		       " pages saved, every page's CRC verified; device "
		       "stream: %" PRIu64 " records, %" PRIu64 " bytes, every "
		       "checksum verified\n",
		       m.name, m.nblocks, pages, w.records, w.end);
	}
	if (ret)
		fprintf(stderr, PROG ": %s: %s\n", dump_esc(m.name), m.e.msg);
	dump_walk_free(&w);
	dump_mapped_close(&m);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, PROG ": writing the output: %s\n",
			strerror(errno));
		return DUMP_EXIT_IO;
	}
	return ret;
}

/* The handlers get the command's name, "--" and FILE (see main()). */
static int cmd_info(int argc, char **argv)
{
	return run(CMD_INFO, argv[argc - 1]);
}

static int cmd_sections(int argc, char **argv)
{
	return run(CMD_SECTIONS, argv[argc - 1]);
}

static int cmd_verify(int argc, char **argv)
{
	return run(CMD_VERIFY, argv[argc - 1]);
}

/* A size: digits, then an optional K, M, G or T (powers of 1024). */
static bool parse_size(const char *arg, uint64_t *v)
{
	unsigned long long n;
	unsigned shift = 0;
	char *end;

	errno = 0;
	if (*arg < '0' || *arg > '9')
		return false;
	n = strtoull(arg, &end, 10);
	if (errno)
		return false;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	case '\0':
		break;
	default:
		return false;
	}
	if (shift && end[1])
		return false;
	if (!n || n > (UINT64_MAX >> shift))
		return false;
	*v = (uint64_t)n << shift;
	return true;
}

/* The option of value @val in longopts[]. */
static const struct option *option_of(int val)
{
	const struct option *o;

	for (o = longopts; o->name; o++)
		if (o->val == val)
			return o;
	return NULL;
}

static bool is_global(int val)
{
	const struct option *o = option_of(val);

	return o && o - longopts < NGLOBAL;
}

static bool takes(const struct command *c, int val)
{
	const int *v;

	for (v = c->own; *v; v++)
		if (*v == val)
			return true;
	return false;
}

/* The commands that take option @val, for a message ("state, desc"). */
static const char *takers(int val, char *buf, size_t cap)
{
	size_t i, n = 0;

	buf[0] = '\0';
	for (i = 0; i < NCOMMANDS && n < cap; i++)
		if (takes(&commands[i], val))
			n += (size_t)snprintf(buf + n, cap - n, "%s%s",
					      n ? ", " : "", commands[i].name);
	return buf;
}

/* One option given: its value and argument (NULL if none). */
struct given {
	int val;
	const char *arg;
};

/* Set global option @g; DUMP_EXIT_OK, or a status after its message. */
static int set_global(const struct command *c, const struct given *g)
{
	static const struct {
		int val;
		uint64_t *v;
	} limits[] = {
		{OPT_SPOOL_MAX, &dump_limits.spool_max},
		{OPT_GUNZIP_MAX, &dump_limits.gunzip_max},
		{OPT_JSON_MEM_MAX, &dump_limits.json_mem_max},
	};
	size_t i;

	switch (g->val) {
	case 'j':
		dump_opts.json = true;
		return DUMP_EXIT_OK;
	case 'q':
		dump_opts.quiet = true;
		return DUMP_EXIT_OK;
	default:
		break;
	}
	for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		if (limits[i].val != g->val)
			continue;
		if (parse_size(g->arg, limits[i].v))
			return DUMP_EXIT_OK;
		return usage_error(c,
				   "--%s: a size expected (bytes, or a number "
				   "with K, M, G or T), found '%s'",
				   option_of(g->val)->name, g->arg);
	}
	return DUMP_EXIT_OK;
}

/*
 * The handler's argument vector: @c's name, its own options of @given in
 * their long form, "--" and the @nops operands.  Return: its argc, or -1
 * (out of memory).
 */
static int handler_argv(const struct command *c, const struct given *given,
			int ngiven, char **ops, int nops, char ***out)
{
	const struct option *o;
	char **v = calloc((size_t)(2 * ngiven + nops + 3), sizeof(*v));
	char *opt;
	int n = 0, i;

	if (!v)
		return -1;
	v[n++] = (char *)c->name;
	for (i = 0; i < ngiven; i++) {
		if (is_global(given[i].val))
			continue;
		o = option_of(given[i].val);
		opt = malloc(strlen(o->name) + 4 +
			     (given[i].arg ? strlen(given[i].arg) : 0));
		if (!opt)
			goto out_free;
		/* --NAME=ARG: right for an optional argument as well. */
		sprintf(opt, "--%s%s%s", o->name, given[i].arg ? "=" : "",
			given[i].arg ? given[i].arg : "");
		v[n++] = opt;
	}
	v[n++] = (char *)"--";
	for (i = 0; i < nops; i++)
		v[n++] = ops[i];
	*out = v;
	return n;
out_free:
	for (i = 1; i < n; i++)
		free(v[i]);
	free(v);
	return -1;
}

static void handler_argv_free(char **v, int n)
{
	int i;

	for (i = 1; i < n && strcmp(v[i], "--"); i++)
		free(v[i]);
	free(v);
}

/* The operands of @c: as many as it takes, or a usage error. */
static int check_operands(const struct command *c, char **ops, int nops)
{
	int want = strchr(c->operands, ' ') ? 2 : 1;
	char what[32];

	if (nops == want)
		return DUMP_EXIT_OK;
	if (want == 1 && nops < 1)
		return usage_error(c, "missing %s", c->operands);
	if (want == 1)
		return usage_error(c, "unexpected argument '%s'", ops[1]);
	snprintf(what, sizeof(what), "%s", c->operands);
	*strchr(what, ' ') = '\0';
	return usage_error(c, "%s and %s expected", what,
			   strchr(c->operands, ' ') + 1);
}

int main(int argc, char **argv)
{
	const struct command *c = NULL;
	struct given *given;
	bool help = false, version = false;
	char **hv = NULL, who[64];
	int opt, ngiven = 0, ret, hc, i;
	size_t k;

	given = calloc((size_t)argc + 1, sizeof(*given));
	if (!given) {
		fprintf(stderr, PROG ": out of memory\n");
		return DUMP_EXIT_IO;
	}
	/* One pass over every option, wherever it is (up to "--"). */
	opterr = 0;
	optind = 0;
	while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) !=
	       -1) {
		if (opt == '?' || opt == ':') {
			char bad[3] = {'-', (char)optopt, '\0'};
			const char *what = argv[optind - 1];

			/* A short option (not a long one's value). */
			if (optopt > 0 && optopt < 128 &&
			    strncmp(what, "--", 2))
				what = bad;

			free(given);
			return usage_error(NULL, "%s '%s'",
					   opt == ':' ? "an argument expected "
							"after"
						      : "unknown option",
					   what);
		}
		if (opt == 'h')
			help = true;
		else if (opt == 'V')
			version = true;
		given[ngiven].val = opt;
		given[ngiven++].arg = optarg;
	}
	if (version) {
		printf(PROG " (migstream) %s\n", ms_version_string());
		free(given);
		return DUMP_EXIT_OK;
	}
	if (optind < argc) {
		for (k = 0; k < NCOMMANDS; k++)
			if (!strcmp(argv[optind], commands[k].name))
				c = &commands[k];
		if (!c) {
			free(given);
			return usage_error(NULL, "unknown command '%s'",
					   argv[optind]);
		}
		optind++;
	}
	if (help) {
		if (c)
			command_usage(c);
		else
			usage(stdout);
		free(given);
		return DUMP_EXIT_OK;
	}
	if (!c) {
		free(given);
		return usage_error(NULL, "%s", "missing COMMAND");
	}
	/* Each option: global, the command's own, or refused. */
	for (i = 0; i < ngiven; i++) {
		if (is_global(given[i].val)) {
			ret = set_global(c, &given[i]);
		} else if (!takes(c, given[i].val)) {
			ret = usage_error(
				c, "--%s is an option of %s only",
				option_of(given[i].val)->name,
				takers(given[i].val, who, sizeof(who)));
		} else {
			continue;
		}
		if (ret) {
			free(given);
			return ret;
		}
	}
	if (dump_opts.json && !c->json) {
		free(given);
		return usage_error(c, "%s", c->nojson);
	}
	if (dump_opts.quiet && !c->quiet) {
		free(given);
		return usage_error(c,
				   "-q/--quiet: %s prints its output on "
				   "success, -q would leave nothing (verify, "
				   "convert and extract take it)",
				   c->name);
	}
	ret = check_operands(c, argv + optind, argc - optind);
	if (ret) {
		free(given);
		return ret;
	}
	hc = handler_argv(c, given, ngiven, argv + optind, argc - optind, &hv);
	free(given);
	if (hc < 0) {
		fprintf(stderr, PROG ": out of memory\n");
		return DUMP_EXIT_IO;
	}
	ret = c->run(hc, hv);
	handler_argv_free(hv, hc);
	return ret;
}
