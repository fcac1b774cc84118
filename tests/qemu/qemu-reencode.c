/* SPDX-License-Identifier: MIT */
/*
 * qemu-reencode: read a QEMU migration stream with the library's reader
 * and write it again, record by record, with its writer in the QEMU
 * profile.  Only the public API (<migstream/migstream.h>) is used.
 *
 *	qemu-reencode IN OUT
 *
 * RAM sections ("ram", version 4) are parsed record by record and every
 * page (zero, normal, compressed, XBZRLE) is written again through the
 * writer's payload stream.  Device sections carry no length in the QEMU
 * profile: their payload is what comes before their footer, found by a
 * scan that checks that a valid record follows it, and is re-framed by
 * the writer.  The configuration's subsections (capabilities, target
 * page bits, UUID) are parsed and passed on.  Exit status: 0, 1 for a
 * stream this program cannot read, 3 for an I/O error.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <migstream/migstream.h>

/* The footer scan: its window, and the bytes a following record needs. */
#define SCAN_WINDOW    16384u
#define SCAN_LOOKAHEAD (5u + 1u + 4u + 1u + 255u + 8u)
/* Largest device payload taken. */
#define MAX_PAYLOAD (64u * 1024u * 1024u)

struct reenc {
	ms_reader *r;
	ms_writer *w;
	bool ignore_shared;
	uint8_t *buf; /* a device payload, or a page */
	size_t cap;
	char msg[512];
};

static int fail(struct reenc *x, const char *what, int err)
{
	snprintf(x->msg, sizeof(x->msg), "%s: %s", what, ms_strerror(err));
	return err ? err : -EBADMSG;
}

static int grow(struct reenc *x, size_t n)
{
	uint8_t *b;

	if (n <= x->cap)
		return 0;
	if (n > MAX_PAYLOAD)
		return -E2BIG;
	b = realloc(x->buf, n);
	if (!b)
		return -ENOMEM;
	x->buf = b;
	x->cap = n;
	return 0;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* ms_get_counted_string(), 0 or a negative errno. */
static int get_cstr(ms_stream *p, char name[MS_COUNTED_STRING_MAX + 1])
{
	int ret = ms_get_counted_string(p, name);

	return ret < 0 ? ret : 0;
}

/* Copy @n bytes from @in to @out. */
static int copy(struct reenc *x, ms_stream *in, ms_stream *out, size_t n)
{
	int ret = grow(x, n ? n : 1);

	if (!ret)
		ret = ms_get_buffer(in, x->buf, n);
	if (!ret)
		ret = ms_put_buffer(out, x->buf, n);
	return ret;
}

/*
 * The configuration's subsections: u8 0x05, cstr name, be32 version, and
 * the fields of the three QEMU 7.2 has.
 */
static int config_extra(struct reenc *x, ms_stream *p, ms_stream *out)
{
	char name[MS_COUNTED_STRING_MAX + 1];
	const uint8_t *d;
	uint32_t v, n, i;
	uint8_t u8;
	int ret;

	while ((ret = (int)ms_peek(p, &d, 1)) == 1 && d[0] == 0x05) {
		ret = ms_get_u8(p, &u8);
		ret = ret ? ret : get_cstr(p, name);
		ret = ret ? ret : ms_get_be32(p, &v);
		if (ret)
			return ret;
		ms_put_u8(out, 0x05);
		ms_put_counted_string(out, name);
		ms_put_be32(out, v);
		if (!strcmp(name, "configuration/capabilities")) {
			ret = ms_get_be32(p, &n);
			ms_put_be32(out, n);
			for (i = 0; !ret && i < n; i++) {
				ret = get_cstr(p, name);
				if (!strcmp(name, "x-ignore-shared"))
					x->ignore_shared = true;
				ms_put_counted_string(out, name);
			}
		} else if (!strcmp(name, "configuration/target-page-bits")) {
			ret = copy(x, p, out, 4);
		} else if (!strcmp(name, "configuration/uuid")) {
			ret = copy(x, p, out, 16);
		} else {
			snprintf(x->msg, sizeof(x->msg),
				 "configuration subsection '%s' unknown", name);
			return -ENOTSUP;
		}
		if (ret)
			return ret;
	}
	return ret < 0 ? ret : 0;
}

/* A RAM section's payload, record by record up to EOS. */
static int ram_copy(struct reenc *x, ms_stream *p, ms_stream *out)
{
	char name[MS_COUNTED_STRING_MAX + 1];
	uint64_t v, total, len;
	unsigned flags;
	uint32_t clen;
	uint16_t xlen;
	uint8_t u8;
	int ret;

	for (;;) {
		ret = ms_get_be64(p, &v);
		if (ret)
			return ret;
		ms_put_be64(out, v);
		flags = (unsigned)(v & (MS_QEMU_RAM_PAGE_SIZE - 1));
		switch (flags & ~MS_QEMU_RAM_CONTINUE) {
		case MS_QEMU_RAM_EOS:
			return 0;
		case MS_QEMU_RAM_MULTIFD_FLUSH:
			continue;
		case MS_QEMU_RAM_MEM_SIZE:
			/* The block list: cstr name, be64 length each. */
			for (total = v & ~(uint64_t)(MS_QEMU_RAM_PAGE_SIZE - 1);
			     total; total -= len) {
				ret = get_cstr(p, name);
				ret = ret ? ret : ms_get_be64(p, &len);
				if (ret)
					return ret;
				if (len > total) {
					snprintf(x->msg, sizeof(x->msg),
						 "RAM block list: '%s' too "
						 "long",
						 name);
					return -EBADMSG;
				}
				ms_put_counted_string(out, name);
				ms_put_be64(out, len);
				if (x->ignore_shared && copy(x, p, out, 8))
					return -ENODATA;
			}
			continue;
		case MS_QEMU_RAM_ZERO:
		case MS_QEMU_RAM_PAGE:
		case MS_QEMU_RAM_XBZRLE:
		case MS_QEMU_RAM_COMPRESS_PAGE:
			break;
		default:
			snprintf(x->msg, sizeof(x->msg),
				 "RAM record flags 0x%x not handled", flags);
			return -ENOTSUP;
		}
		if (!(flags & MS_QEMU_RAM_CONTINUE)) {
			ret = get_cstr(p, name);
			if (ret)
				return ret;
			ms_put_counted_string(out, name);
		}
		switch (flags & ~MS_QEMU_RAM_CONTINUE) {
		case MS_QEMU_RAM_ZERO:
			ret = ms_get_u8(p, &u8);
			ms_put_u8(out, u8);
			break;
		case MS_QEMU_RAM_PAGE:
			ret = copy(x, p, out, MS_QEMU_RAM_PAGE_SIZE);
			break;
		case MS_QEMU_RAM_XBZRLE:
			ret = ms_get_u8(p, &u8);
			ret = ret ? ret : ms_get_be16(p, &xlen);
			ms_put_u8(out, u8);
			ms_put_be16(out, xlen);
			ret = ret ? ret : copy(x, p, out, xlen);
			break;
		default:
			ret = ms_get_be32(p, &clen);
			if (!ret && clen > 2 * MS_QEMU_RAM_PAGE_SIZE)
				ret = -EBADMSG;
			ms_put_be32(out, clen);
			ret = ret ? ret : copy(x, p, out, clen);
			break;
		}
		if (ret)
			return ret;
	}
}

/* Whether @d (@n bytes, @end: nothing follows them) starts a record. */
static bool record_follows(const uint8_t *d, size_t n, bool end)
{
	size_t l, i;

	if (!n)
		return end;
	switch (d[0]) {
	case 0x00: /* EOF, then the trailer or the end */
		return (n == 1 && end) || (n > 1 && d[1] == 0x06);
	case 0x01:
	case 0x04: /* START or FULL: id, cstr idstr, instance, version */
		if (n < 6)
			return false;
		l = d[5];
		if (!l || n < 6 + l + 8)
			return false;
		for (i = 0; i < l; i++)
			if (d[6 + i] < 0x20 || d[6 + i] > 0x7e)
				return false;
		return be32(d + 6 + l + 4) < 0x10000u;
	case 0x02:
	case 0x03: /* PART or END: an id */
		return n >= 5 && be32(d + 1) < 0x10000u;
	case 0x08: /* COMMAND: a known number */
		return n >= 3 && d[1] == 0 && d[2] >= 1 && d[2] <= 11;
	default:
		return false;
	}
}

/*
 * A device payload: the bytes up to the footer (u8 0x7e, be32 @id) that
 * a valid record follows, read into x->buf; *@len gets their number.
 */
static int device_payload(struct reenc *x, ms_stream *p, uint32_t id,
			  size_t *len)
{
	const uint8_t *d;
	size_t i, n = 0, take, rest;
	ssize_t got;
	bool more;
	int ret;

	for (;;) {
		got = ms_peek(p, &d, SCAN_WINDOW);
		if (got < 0)
			return (int)got;
		more = (size_t)got == SCAN_WINDOW;
		take = more ? (size_t)got - 4 : (size_t)got;
		for (i = 0; i + 5 <= (size_t)got; i++) {
			if (d[i] != 0x7e || be32(d + i + 1) != id)
				continue;
			rest = (size_t)got - i - 5;
			if (more && rest < SCAN_LOOKAHEAD) {
				take = i; /* look again from here */
				break;
			}
			if (record_follows(d + i + 5, rest, !more))
				goto found;
		}
		if (!more) {
			snprintf(x->msg, sizeof(x->msg),
				 "section %u: no footer found", (unsigned)id);
			return -EBADMSG;
		}
		ret = grow(x, n + take);
		ret = ret ? ret : ms_get_buffer(p, x->buf + n, take);
		if (ret)
			return ret;
		n += take;
	}
found:
	ret = grow(x, n + i + 1);
	if (!ret)
		ret = ms_get_buffer(p, x->buf + n, i);
	*len = n + i;
	return ret;
}

static int reencode(struct reenc *x)
{
	ms_record rec;
	ms_stream *p, *out, *cfg = NULL;
	const uint8_t *d;
	size_t len;
	char *json;
	int ret;

	ret = ms_writer_header(x->w);
	while (!ret && (ret = ms_reader_next(x->r, &rec)) == 1) {
		p = ms_reader_payload(x->r);
		ret = 0;
		switch (rec.type) {
		case MS_REC_CONFIGURATION:
			ret = ms_stream_new_mem(&cfg, 0, NULL);
			ret = ret ? ret : config_extra(x, p, cfg);
			if (!ret) {
				ret = ms_stream_mem_view(cfg, &d, &len);
				ret = ret ? ret
					  : ms_writer_configuration(
						    x->w, rec.machine,
						    len ? d : NULL, len);
			}
			ms_stream_close(cfg);
			break;
		case MS_REC_START:
		case MS_REC_PART:
		case MS_REC_END:
		case MS_REC_FULL:
			ret = ms_writer_begin(x->w, &rec.section, &out);
			if (ret)
				break;
			if (!strcmp(rec.section.idstr, "ram")) {
				ret = ram_copy(x, p, out);
			} else {
				ret = device_payload(
					x, p, rec.section.section_id, &len);
				ret = ret ? ret
					  : ms_put_buffer(out, x->buf, len);
			}
			ret = ret ? ret : ms_writer_end(x->w);
			break;
		case MS_REC_FOOTER:
			break; /* written by ms_writer_end() */
		case MS_REC_COMMAND:
			ret = grow(x, rec.length + 1u);
			ret = ret ? ret : ms_get_buffer(p, x->buf, rec.length);
			ret = ret ? ret
				  : ms_writer_command(x->w, rec.cmd, x->buf,
						      (uint16_t)rec.length);
			break;
		case MS_REC_EOF:
			ret = ms_writer_eof(x->w);
			break;
		case MS_REC_VMDESC:
			json = malloc(rec.length + 1u);
			ret = json ? ms_get_buffer(p, json, rec.length)
				   : -ENOMEM;
			ret = ret ? ret
				  : ms_writer_vmdesc(x->w, json, rec.length);
			free(json);
			break;
		default:
			snprintf(x->msg, sizeof(x->msg), "record type %u",
				 rec.type);
			ret = -ENOTSUP;
		}
		if (ret && !x->msg[0])
			fail(x, ms_record_type_name(rec.type), ret);
	}
	if (ret < 0 && !x->msg[0])
		snprintf(x->msg, sizeof(x->msg), "%s",
			 ms_reader_error(x->r) ? ms_reader_errmsg(x->r)
					       : ms_writer_errmsg(x->w));
	if (!ret)
		ret = ms_writer_finish(x->w);
	if (ret && !x->msg[0])
		snprintf(x->msg, sizeof(x->msg), "%s", ms_writer_errmsg(x->w));
	return ret;
}

int main(int argc, char **argv)
{
	ms_stream_opts so = {.version = MS_STREAM_OPTS_VERSION,
			     .buffer_size = 1u << 20};
	ms_codec_opts ro = {.version = MS_CODEC_OPTS_VERSION,
			    .profile = MS_PROFILE_QEMU};
	struct reenc x;
	ms_stream *in = NULL, *out = NULL;
	int ifd, ofd, ret, cret;

	memset(&x, 0, sizeof(x));
	if (argc != 3) {
		fprintf(stderr, "usage: qemu-reencode IN OUT\n");
		return 2;
	}
	ifd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (ifd < 0) {
		perror(argv[1]);
		return 3;
	}
	ofd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (ofd < 0) {
		perror(argv[2]);
		close(ifd);
		return 3;
	}
	ret = ms_stream_new_fd(&in, ifd, MS_STREAM_READER, MS_FD_OWN, &so);
	if (ret)
		close(ifd);
	cret = ms_stream_new_fd(&out, ofd, MS_STREAM_WRITER, MS_FD_OWN, NULL);
	if (cret)
		close(ofd);
	ret = ret ? ret : cret;
	ret = ret ? ret : ms_reader_new(&x.r, in, &ro);
	/* The writer: QEMU's defaults (profile, configuration, footers). */
	ret = ret ? ret
		  : ms_writer_new(
			    &x.w, out,
			    &(ms_codec_opts){.version = MS_CODEC_OPTS_VERSION,
					     .profile = MS_PROFILE_QEMU});
	if (!ret)
		ret = reencode(&x);
	else
		fail(&x, "setting up", ret);
	ms_reader_free(x.r);
	ms_writer_free(x.w);
	ms_stream_close(in);
	cret = ms_stream_close(out);
	free(x.buf);
	if (!ret && cret) {
		ret = cret;
		fail(&x, argv[2], cret);
	}
	if (ret) {
		fprintf(stderr, "qemu-reencode: %s: %s\n", argv[1], x.msg);
		return ret == -EIO || ret == -ENOSPC ? 3 : 1;
	}
	return 0;
}
