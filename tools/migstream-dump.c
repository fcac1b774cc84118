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

struct options {
	bool json;
	bool quiet;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " COMMAND [OPTIONS] FILE\n"
		"Inspect a QEMU (\"QEVM\" v3) or migstream native migration "
		"stream; FILE may be '-'.\n"
		"\n"
		"Commands:\n"
		"  info       profile, machine, record counts, RAM blocks "
		"and pages\n"
		"  sections   one line per record\n"
		"  verify     check the whole stream; exit 0 only if it is "
		"whole and valid\n"
		"  convert --to native|qemu [--compress[=LEVEL]] IN OUT\n"
		"             re-frame a stream in the other profile\n"
		"  extract DIR FILE\n"
		"             RAM blocks as sparse files, desc.json and "
		"state.json\n"
		"  state [-m] [--desc DESC] FILE\n"
		"             every device's state as JSON, as QEMU's "
		"analyze-migration.py\n"
		"  desc FILE  the VM description (JSON trailer), indented\n"
		"\n"
		"Options:\n"
		"  -j, --json     info, sections: JSON output\n"
		"  -q, --quiet    verify: print nothing on success\n"
		"  -m, --memory   state: RAM page contents too\n"
		"  --spool-max SIZE     every command: the most bytes copied "
		"to a\n"
		"                 temporary file (default: 64G or half the "
		"free space)\n"
		"  --gunzip-max SIZE    the most bytes inflated from gzip "
		"input (1T)\n"
		"  --json-mem-max SIZE  parser memory for the VM description "
		"(128M)\n"
		"  -h, --help     this help\n"
		"  -V, --version  the migstream version\n"
		"\n"
		"Exit status: 0 success, 1 invalid or truncated stream (or "
		"over a limit),\n2 usage error (a directory as FILE too), "
		"3 system error.\n");
}

static int usage_error(const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 1, 2)))
#endif
	;

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
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

static void info_json(const struct dump_walk *w)
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
	printf("}\n");
}

/*
 * sections
 */

struct sections_ctx {
	bool json;
	uint64_t n;
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
		printf("0x%08" PRIx64 " %-13s ", rec->offset,
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
	       c->n ? "," : "", rec->offset, ms_record_type_name(rec->type));
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
 * Commands.
 */

enum command { CMD_INFO, CMD_SECTIONS, CMD_VERIFY };

static int run(enum command cmd, const struct options *o, const char *file)
{
	struct sections_ctx sc = {.json = o->json};
	struct dump_source src;
	struct dump_walk w;
	int ret;

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
		if (o->json)
			printf("[");
	}
	ret = dump_walk_run(&w);
	switch (cmd) {
	case CMD_INFO:
		if (o->json)
			info_json(&w);
		else
			info_text(&w);
		break;
	case CMD_SECTIONS:
		if (o->json)
			printf("%s]\n", sc.n ? "\n" : "");
		break;
	case CMD_VERIFY:
		if (!ret && !o->quiet)
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

/*
 * Take the limit options (struct dump_limits) out of @argv, wherever they
 * are, for every command.  Return: the new argc, or -1 after a message.
 */
static int take_limits(int argc, char **argv)
{
	static const struct {
		const char *name;
		uint64_t *v;
	} opts[] = {
		{"--spool-max", &dump_limits.spool_max},
		{"--gunzip-max", &dump_limits.gunzip_max},
		{"--json-mem-max", &dump_limits.json_mem_max},
	};
	const char *val;
	size_t i, l;
	int a, o = 1, take;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--")) {
			while (a < argc)
				argv[o++] = argv[a++];
			break;
		}
		for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
			l = strlen(opts[i].name);
			if (!strncmp(argv[a], opts[i].name, l) &&
			    (argv[a][l] == '=' || !argv[a][l]))
				break;
		}
		if (i == sizeof(opts) / sizeof(opts[0])) {
			argv[o++] = argv[a];
			continue;
		}
		take = argv[a][l] ? 0 : 1;
		val = take ? (a + 1 < argc ? argv[a + 1] : NULL)
			   : argv[a] + l + 1;
		if (!val || !parse_size(val, opts[i].v)) {
			usage_error("%s: a size expected (bytes, or a number "
				    "with K, M, G or T), found '%s'",
				    opts[i].name, val ? val : "nothing");
			return -1;
		}
		a += take;
	}
	argv[o] = NULL;
	return o;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct options o = {0};
	const char *cmd;
	enum command c;
	int opt;

	argc = take_limits(argc, argv);
	if (argc < 0)
		return DUMP_EXIT_USAGE;
	/* convert and extract parse their own options. */
	if (argc > 1 && !strcmp(argv[1], "convert"))
		return dump_convert_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "extract"))
		return dump_extract_main(argc - 1, argv + 1);
	/* state and desc (dump-state.c) too. */
	if (argc > 1 && !strcmp(argv[1], "state"))
		return dump_state_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "desc"))
		return dump_desc_main(argc - 1, argv + 1);
	while ((opt = getopt_long(argc, argv, "jqhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			o.json = true;
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return DUMP_EXIT_OK;
		case 'V':
			printf(PROG " (migstream) %s\n", ms_version_string());
			return DUMP_EXIT_OK;
		default:
			fprintf(stderr, "Try '" PROG " --help'.\n");
			return DUMP_EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return usage_error("%s", "missing COMMAND");
	cmd = argv[optind++];
	if (!strcmp(cmd, "info"))
		c = CMD_INFO;
	else if (!strcmp(cmd, "sections"))
		c = CMD_SECTIONS;
	else if (!strcmp(cmd, "verify"))
		c = CMD_VERIFY;
	else
		return usage_error("unknown command '%s'", cmd);
	if (optind >= argc)
		return usage_error("%s: missing FILE", cmd);
	if (optind + 1 < argc)
		return usage_error("unexpected argument '%s'",
				   argv[optind + 1]);
	if (o.json && c == CMD_VERIFY)
		return usage_error("%s", "verify has no --json output");
	return run(c, &o, argv[optind]);
}
