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
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dump.h"

#define PROG		"migstream-dump"
#define OUT_BUFFER_SIZE (256u * 1024u)
/* Largest configuration payload kept (QEMU's is a few dozen bytes). */
#define MAX_CONFIG (1u << 20)

struct conv {
	ms_profile to;
	int level;
	int out_fd;
	ms_stream *out;
	ms_writer *wr;
	ms_stream *payload; /* the open section's, in the writer */
	uint8_t type;	    /* the record whose payload is being read */
	uint8_t *buf;	    /* configuration or VM description */
	size_t len, cap, max;
	int err;
	char msg[512];
};

static int conv_fail(struct conv *c, int err, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

static int conv_fail(struct conv *c, int err, const char *fmt, ...)
{
	va_list ap;

	if (c->err)
		return c->err;
	c->err = err ? err : -EIO;
	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	return c->err;
}

/* Fail with the writer's sticky error, if it has one. */
static int conv_check(struct conv *c, int ret, const char *what)
{
	if (!ret)
		return 0;
	return conv_fail(c, ret, "writing %s: %s", what,
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
	ret = ms_writer_new(&c->wr, c->out, &o);
	if (!ret)
		ret = ms_writer_header(c->wr);
	return conv_check(c, ret, "the header");
}

static int conv_begin(struct dump_walk *w, const ms_record *rec,
		      ms_stream *payload, void *opaque)
{
	struct conv *c = opaque;
	uint8_t cmd[65535];
	int ret = 0;

	if (c->err)
		return c->err;
	if (!c->wr && conv_start(c, w))
		return c->err;
	c->type = rec->type;
	c->len = 0;
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
					 "reading command %u: %s", rec->cmd,
					 ms_stream_errmsg(payload));
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
	if (c->err)
		return c->err;
	switch (c->type) {
	case MS_REC_START:
	case MS_REC_PART:
	case MS_REC_END:
	case MS_REC_FULL:
		return conv_check(c, ms_put_buffer(c->payload, d, n),
				  "a section payload");
	case MS_REC_CONFIGURATION:
	case MS_REC_VMDESC:
		if (n > c->max - c->len)
			return conv_fail(c, -EOVERFLOW,
					 "%s of more than %zu bytes",
					 ms_record_type_name(c->type), c->max);
		if (c->len + n > c->cap) {
			ncap = c->cap ? c->cap : 4096;
			while (ncap < c->len + n)
				ncap *= 2;
			nb = realloc(c->buf, ncap);
			if (!nb)
				return conv_fail(c, -ENOMEM, "out of memory");
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

	(void)w;
	(void)plen;
	if (c->err)
		return;
	switch (rec->type) {
	case MS_REC_START:
	case MS_REC_PART:
	case MS_REC_END:
	case MS_REC_FULL:
		c->payload = NULL;
		ret = ms_writer_end(c->wr);
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
	fprintf(stderr, "\nUsage: " PROG " convert --to native|qemu "
			"[--compress[=LEVEL]] IN OUT\n");
	return DUMP_EXIT_USAGE;
}

int dump_convert_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"to", required_argument, NULL, 't'},
		{"compress", optional_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	ms_stream_opts so = {.version = MS_STREAM_OPTS_VERSION,
			     .buffer_size = OUT_BUFFER_SIZE};
	struct conv c = {.to = MS_PROFILE_AUTO, .out_fd = -1};
	struct dump_source src;
	struct dump_walk w;
	const char *in, *out;
	char *tmp = NULL, *end;
	bool compress = false;
	int opt, ret;
	long lvl;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "+t:c::h", longopts, NULL)) !=
	       -1) {
		switch (opt) {
		case 't':
			if (!strcmp(optarg, "native"))
				c.to = MS_PROFILE_NATIVE;
			else if (!strcmp(optarg, "qemu"))
				c.to = MS_PROFILE_QEMU;
			else
				return convert_usage("--to native or qemu "
						     "expected, found '%s'",
						     optarg);
			break;
		case 'c':
			compress = true;
			c.level = 6;
			if (optarg) {
				errno = 0;
				lvl = strtol(optarg, &end, 10);
				if (errno || *end || end == optarg || lvl < 1 ||
				    lvl > 9)
					return convert_usage(
						"--compress: a level from 1 "
						"to 9 expected, found '%s'",
						optarg);
				c.level = (int)lvl;
			}
			break;
		case 'h':
			printf("Usage: " PROG " convert --to native|qemu "
			       "[--compress[=LEVEL]] IN OUT\n");
			return DUMP_EXIT_OK;
		default:
			return DUMP_EXIT_USAGE;
		}
	}
	if (c.to == MS_PROFILE_AUTO)
		return convert_usage("%s", "--to native|qemu is required");
	if (compress && c.to != MS_PROFILE_NATIVE)
		return convert_usage("%s", "--compress needs --to native");
	if (argc - optind != 2)
		return convert_usage("%s", "IN and OUT expected");
	in = argv[optind];
	out = argv[optind + 1];

	memset(&w, 0, sizeof(w));
	/* Magic checked, gzip inflated (dump-input.c). */
	ret = dump_source_open(&src, in);
	if (ret)
		return ret;
	w.name = src.name;
	if (!strcmp(out, "-")) {
		c.out_fd = STDOUT_FILENO;
	} else {
		tmp = malloc(strlen(out) + 5);
		if (!tmp) {
			ret = DUMP_EXIT_IO;
			fprintf(stderr, PROG ": out of memory\n");
			goto out_close_in;
		}
		sprintf(tmp, "%s.tmp", out);
		c.out_fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
				0644);
		if (c.out_fd < 0) {
			fprintf(stderr, PROG ": %s: cannot create: %s\n", tmp,
				strerror(errno));
			ret = DUMP_EXIT_IO;
			goto out_free_tmp;
		}
	}
	ret = ms_stream_new_fd(&c.out, c.out_fd, MS_STREAM_WRITER, 0, &so);
	if (ret) {
		fprintf(stderr, PROG ": %s: %s\n", out, ms_strerror(ret));
		ret = DUMP_EXIT_IO;
		goto out_close_out;
	}

	w.fd = src.fd;
	w.src = &src;
	w.progress = dump_progress(false);
	w.on_begin = conv_begin;
	w.on_bytes = conv_bytes;
	w.on_record = conv_record;
	w.opaque = &c;
	ret = dump_walk_run(&w);
	if (!ret && !c.err && c.wr)
		conv_check(&c, ms_writer_finish(c.wr), "the end");
	if (!ret && !c.err && !c.wr)
		conv_fail(&c, -EIO, "nothing to write");
	if (c.err) {
		fprintf(stderr, PROG ": %s: %s\n", out, c.msg);
		ret = DUMP_EXIT_IO;
	} else if (ret) {
		fprintf(stderr, PROG ": %s: %s\n", w.name, w.errmsg);
	}
	ms_writer_free(c.wr);
	if (ms_stream_close(c.out) && !ret) {
		fprintf(stderr, PROG ": %s: write error\n", out);
		ret = DUMP_EXIT_IO;
	}
	dump_walk_free(&w);
	if (!ret && tmp && fsync(c.out_fd)) {
		fprintf(stderr, PROG ": %s: %s\n", tmp, strerror(errno));
		ret = DUMP_EXIT_IO;
	}
out_close_out:
	if (tmp && close(c.out_fd) && !ret) {
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
out_close_in:
	dump_source_close(&src);
	free(c.buf);
	return ret;
}
