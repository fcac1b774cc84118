/* SPDX-License-Identifier: MIT */
/*
 * load-verdict FILE: whether ms_load_run() loads FILE, with a handler for
 * every section the stream names; prints "valid" or "invalid: MESSAGE"
 * and exits 0 or 1 (2 for a failure of its own).  tests/dump/check-verdicts.sh
 * compares that with migstream-dump verify.
 *
 * The handlers accept any content, but a QEMU payload has no length: a
 * handler must know where it ends, as a device does.  So FILE is first
 * walked by migstream-dump's walker, which gives every section record it
 * read the length of its payload (RAM by its grammar, the rest by the
 * footer scan); the handler of the n-th section record of the load reads
 * the length the walker found for the n-th record it read.  The one
 * payload the walker refused is refused by its handler too (a device
 * refuses what it cannot parse); every record after it, which the walker
 * never read, is read up to the first footer byte (0x7e) of the QEMU
 * profile, or drained (native profile).  The contents of the
 * CONFIGURATION record and of the VM description are no handler's: when
 * the walker refused them, the verdict is "invalid" whatever the load
 * says.  Everything else, the framing of the records, the section ids and
 * their order, EOF and the trailer's place, is the library's own verdict.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dump.h"

#define MAX_HANDLERS 4096u

struct handler {
	char idstr[MS_COUNTED_STRING_MAX + 1];
	uint32_t instance, min_version, max_version;
};

struct verdict {
	/* From the walk: each section record's payload length. */
	uint64_t *plen;
	size_t nplen, capplen;
	bool refused;	    /* the walk refused the payload of record nplen */
	uint8_t last_type;  /* of the last record the walk began */
	bool other_refused; /* ... a CONFIGURATION's or the trailer's */
	struct handler h[MAX_HANDLERS];
	size_t nh;
	bool too_many;
	/* The load: section records dispatched so far. */
	size_t loaded;
	ms_profile profile;
	bool no_footers; /* the walk found a stream without footers */
};

static bool is_section(uint8_t type)
{
	return type >= MS_REC_START && type <= MS_REC_FULL;
}

static int on_begin(struct dump_walk *w, const ms_record *rec,
		    ms_stream *payload, void *opaque)
{
	struct verdict *v = opaque;
	const ms_section_hdr *h = &rec->section;
	size_t i;

	(void)w;
	(void)payload;
	v->last_type = rec->type;
	if (rec->type != MS_REC_START && rec->type != MS_REC_FULL)
		return 0;
	for (i = 0; i < v->nh; i++)
		if (!strcmp(v->h[i].idstr, h->idstr) &&
		    v->h[i].instance == h->instance_id)
			break;
	if (i == v->nh) {
		if (v->nh == MAX_HANDLERS) {
			v->too_many = true;
			return 0;
		}
		memcpy(v->h[i].idstr, h->idstr, sizeof(v->h[i].idstr));
		v->h[i].instance = h->instance_id;
		v->h[i].min_version = h->version_id;
		v->h[i].max_version = h->version_id;
		v->nh++;
	}
	if (h->version_id < v->h[i].min_version)
		v->h[i].min_version = h->version_id;
	if (h->version_id > v->h[i].max_version)
		v->h[i].max_version = h->version_id;
	return 0;
}

static void on_record(struct dump_walk *w, const ms_record *rec, uint64_t plen,
		      void *opaque)
{
	struct verdict *v = opaque;
	uint64_t *n;

	(void)w;
	if (!is_section(rec->type))
		return;
	if (v->nplen == v->capplen) {
		v->capplen = v->capplen ? 2 * v->capplen : 64;
		n = realloc(v->plen, v->capplen * sizeof(*n));
		if (!n) {
			perror("load-verdict");
			exit(2);
		}
		v->plen = n;
	}
	v->plen[v->nplen++] = plen;
}

/* Read and drop @n bytes, or all of the payload for UINT64_MAX. */
static int discard(ms_stream *s, uint64_t n)
{
	const uint8_t *d;
	ssize_t got;
	size_t c;

	while (n) {
		c = n < 4096 ? (size_t)n : 4096;
		got = ms_peek(s, &d, c);
		if (got < 0)
			return (int)got;
		if (got == 0)
			return n == UINT64_MAX ? 0 : -EBADMSG;
		if (ms_skip(s, (size_t)got))
			return ms_stream_error(s);
		if (n != UINT64_MAX)
			n -= (uint64_t)got;
	}
	return 0;
}

/* QEMU: read up to the first footer byte, or the end of the input. */
static int to_footer_byte(ms_stream *s)
{
	const uint8_t *d, *f;
	ssize_t got;

	for (;;) {
		got = ms_peek(s, &d, 4096);
		if (got <= 0)
			return (int)got;
		f = memchr(d, MS_REC_FOOTER, (size_t)got);
		if (f)
			return ms_skip(s, (size_t)(f - d)) ? ms_stream_error(s)
							   : 0;
		if (ms_skip(s, (size_t)got))
			return ms_stream_error(s);
	}
}

static int load_any(void *opaque, ms_stream *s, uint32_t version_id,
		    uint8_t type)
{
	struct verdict *v = opaque;
	size_t i = v->loaded++;

	(void)version_id;
	(void)type;
	if (i < v->nplen)
		return v->profile == MS_PROFILE_NATIVE ? discard(s, UINT64_MAX)
						       : discard(s, v->plen[i]);
	if (i == v->nplen && v->refused)
		return -EBADMSG;
	return v->profile == MS_PROFILE_NATIVE ? discard(s, UINT64_MAX)
					       : to_footer_byte(s);
}

static int save_none(void *opaque, ms_stream *s)
{
	(void)s;
	(void)opaque;
	return -ENOTSUP;
}

static const ms_handler_ops any_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_state = save_none,
	.load = load_any,
};

static int load(const char *file, struct verdict *v)
{
	ms_registry *reg;
	ms_stream *in;
	ms_codec_opts co = {.version = MS_CODEC_OPTS_VERSION};
	ms_load_opts lo = {.version = MS_LOAD_OPTS_VERSION, .codec = &co};
	ms_load *ld;
	size_t i;
	int fd, ret;

	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || ms_registry_new(&reg, NULL)) {
		perror(file);
		exit(2);
	}
	for (i = 0; i < v->nh; i++)
		if (ms_registry_add(reg, v->h[i].idstr, v->h[i].instance,
				    v->h[i].max_version, v->h[i].min_version,
				    &any_ops, v, NULL)) {
			fprintf(stderr, "load-verdict: cannot register: %s\n",
				ms_registry_errmsg(reg));
			exit(2);
		}
	/* A consumer of a QEMU stream without footers knows it from the
	 * machine type and says so, as QEMU does; the walk found it out. */
	co.profile = MS_PROFILE_QEMU;
	co.no_footers = true;
	if (ms_stream_new_fd(&in, fd, MS_STREAM_READER, 0, NULL) ||
	    ms_load_new(&ld, reg, v->no_footers ? &lo : NULL)) {
		fprintf(stderr, "load-verdict: out of memory\n");
		exit(2);
	}
	ret = ms_load_run(ld, in);
	if (ret)
		printf("invalid: %s\n", ms_load_errmsg(ld));
	else if (v->other_refused)
		printf("invalid: the library loads it, but the content of "
		       "its %s record was refused (as its consumer would)\n",
		       v->last_type == MS_REC_VMDESC ? "VMDESC"
						     : "CONFIGURATION");
	else
		printf("valid\n");
	ret = ret || v->other_refused;
	ms_load_free(ld);
	ms_stream_close(in);
	ms_registry_free(reg);
	close(fd);
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	static struct verdict v;
	struct dump_walk w;
	int fd, ret;

	if (argc != 2) {
		fprintf(stderr, "Usage: load-verdict FILE\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		perror(argv[1]);
		return 2;
	}
	memset(&w, 0, sizeof(w));
	w.name = argv[1];
	w.fd = fd;
	w.strict = true;
	w.on_begin = on_begin;
	w.on_record = on_record;
	w.opaque = &v;
	dump_walk_run(&w);
	v.refused = w.in_payload && is_section(v.last_type);
	v.other_refused = w.in_payload && !is_section(v.last_type);
	v.profile = w.profile;
	v.no_footers = w.no_footers;
	dump_walk_free(&w);
	close(fd);
	if (v.too_many) {
		fprintf(stderr, "load-verdict: more than %u handlers\n",
			MAX_HANDLERS);
		return 2;
	}
	ret = load(argv[1], &v);
	free(v.plen);
	return ret;
}
