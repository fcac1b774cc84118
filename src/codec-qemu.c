/* SPDX-License-Identifier: MIT */
/*
 * The QEMU profile ("QEVM" version 3, docs/FORMAT.md): the grammar of
 * QEMU's migration stream, written straight on the output stream and read
 * back element by element.  Nothing in it says where a section's payload
 * ends: the reader hands the input itself to the caller and expects the
 * footer (if the stream has footers) where the caller stopped.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "codec.h"

/*
 * Writing.
 */

static int qw_header(ms_writer *w)
{
	ms_put_be32(w->s, MS_QEMU_MAGIC);
	ms_put_be32(w->s, MS_QEMU_VERSION);
	return ms__writer_check(w);
}

static int qw_configuration(ms_writer *w, const char *machine, size_t len,
			    const void *extra, size_t extra_len)
{
	ms_put_u8(w->s, MS_REC_CONFIGURATION);
	ms_put_be32(w->s, (uint32_t)len);
	ms_put_buffer(w->s, machine, len);
	if (extra_len)
		ms_put_buffer(w->s, extra, extra_len);
	return ms__writer_check(w);
}

static int qw_begin(ms_writer *w, uint8_t type, const struct iovec *v, int nv,
		    ms_stream **payload)
{
	int i;

	ms_put_u8(w->s, type);
	for (i = 0; i < nv; i++)
		ms_put_buffer(w->s, v[i].iov_base, v[i].iov_len);
	*payload = w->s;
	return ms__writer_check(w);
}

static int qw_end(ms_writer *w)
{
	if (!w->o.no_footers) {
		ms_put_u8(w->s, MS_REC_FOOTER);
		ms_put_be32(w->s, w->cur_id);
	}
	return ms__writer_check(w);
}

static int qw_command(ms_writer *w, const uint8_t hdr[4], const void *data,
		      uint16_t len)
{
	ms_put_u8(w->s, MS_REC_COMMAND);
	ms_put_buffer(w->s, hdr, 4);
	ms_put_buffer(w->s, data, len);
	/* QEMU flushes after every command. */
	ms_stream_flush(w->s);
	return ms__writer_check(w);
}

static int qw_eof(ms_writer *w)
{
	ms_put_u8(w->s, MS_REC_EOF);
	return ms__writer_check(w);
}

static int qw_vmdesc(ms_writer *w, const void *json, size_t len)
{
	ms_put_u8(w->s, MS_REC_VMDESC);
	ms_put_be32(w->s, (uint32_t)len);
	ms_put_buffer(w->s, json, len);
	return ms__writer_check(w);
}

static int qw_finish(ms_writer *w)
{
	return ms__writer_check(w);
}

/*
 * Reading.
 */

int ms__qemu_read_header(ms_reader *r)
{
	uint32_t magic, ver;

	ms_get_be32(r->s, &magic);
	if (magic != MS_QEMU_MAGIC)
		return ms__reader_fail_at(r, -EBADMSG, 0,
					  "not a migration stream: magic "
					  "0x%08x, expected 0x%08x (QEVM) or a "
					  "migstream native header",
					  magic, MS_QEMU_MAGIC);
	if (ms_get_be32(r->s, &ver))
		return ms__reader_stream(r, r->s, "file header");
	if (ver != MS_QEMU_VERSION)
		return ms__reader_fail_at(r, -ENOTSUP, 4,
					  "QEMU stream version %u, only %u is "
					  "supported%s",
					  ver, MS_QEMU_VERSION,
					  ver == 2 ? " (v2 is obsolete)" : "");
	r->profile = MS_PROFILE_QEMU;
	r->state = MS__R_BODY;
	return 0;
}

/*
 * Before the next record: skip what the caller left of a command's or the
 * trailer's payload (their lengths are known), and after the trailer
 * check that the stream ends.  Returns 1 to go on, 0 at the clean end, or
 * the error.
 */
static int qr_close_window(ms_reader *r)
{
	/* The window reads no further than its end: skip the rest. */
	uint64_t unread = ms__substream_left(r->window);

	/* Skip first: a fed load may retry this call from a snapshot that
	 * still holds the window. */
	if (unread && ms_skip(r->s, unread))
		return ms__reader_stream(r, r->s, "skipping a payload");
	if (r->defer_free) {
		ms_stream_close(r->dead_window);
		r->dead_window = r->window;
	} else {
		ms_stream_close(r->window);
	}
	r->window = NULL;
	if (r->state != MS__R_AFTER_VMDESC)
		return 1;
	if (ms__stream_is_starved(r->s))
		return ms__reader_fail_at(r, -EAGAIN, ms_stream_tell(r->s),
					  "waiting for the end of the data");
	if (!ms_stream_is_eof(r->s))
		return ms_stream_error(r->s)
			       ? ms__reader_stream(r, r->s, "trailer")
			       : ms__reader_fail_at(r, -EBADMSG,
						    ms_stream_tell(r->s),
						    "data after the VM "
						    "description");
	r->state = MS__R_DONE;
	return 0;
}

/* The footer the open section must end with, at @rec->offset. */
static int qr_footer(ms_reader *r, ms_record *rec)
{
	uint64_t off = rec->offset;
	uint8_t type;
	uint32_t id;

	/* The caller's payload parse may have run out of data. */
	if (ms_stream_error(r->s))
		return ms__reader_stream(r, r->s, "section payload");
	if (ms_get_u8(r->s, &type))
		return ms__reader_stream(r, r->s, "footer");
	if (type != MS_REC_FOOTER)
		return ms__reader_fail_at(r, -EBADMSG, off,
					  "footer for section %u expected, "
					  "found 0x%02x",
					  r->cur.section_id, type);
	if (ms_get_be32(r->s, &id))
		return ms__reader_stream(r, r->s, "footer");
	if (id != r->cur.section_id)
		return ms__reader_fail_at(r, -EBADMSG, off,
					  "footer for section %u expected, "
					  "found one for section %u",
					  r->cur.section_id, id);
	r->want_footer = false;
	r->index++;
	rec->type = MS_REC_FOOTER;
	ms__section_hdr_copy(&rec->section, &r->cur);
	/* Errors after a footer no longer name its section. */
	r->have_cur = false;
	return 1;
}

/* One function per record type, after its type byte: 1 or the error. */
typedef int (*qr_fn)(ms_reader *r, ms_record *rec);

static int qr_configuration(ms_reader *r, ms_record *rec)
{
	if (rec->index != 0 || r->o.no_configuration)
		return ms__reader_fail_at(r, -EBADMSG, rec->offset,
					  "unexpected CONFIGURATION");
	return ms__reader_config_name(r, r->s, rec) ? r->err.code : 1;
}

static int qr_section(ms_reader *r, ms_record *rec)
{
	ms_section_hdr *h = &rec->section;

	h->type = rec->type;
	ms_get_be32(r->s, &h->section_id);
	if (h->type == MS_REC_START || h->type == MS_REC_FULL) {
		ms_get_counted_string(r->s, h->idstr);
		ms_get_be32(r->s, &h->instance_id);
		ms_get_be32(r->s, &h->version_id);
	}
	if (ms_stream_error(r->s))
		return ms__reader_stream(r, r->s, "section header");
	if (ms__reader_section_seen(r, h, rec->offset))
		return r->err.code;
	r->want_footer = !r->o.no_footers;
	r->open = MS__O_SECTION;
	return 1;
}

static int qr_command(ms_reader *r, ms_record *rec)
{
	uint16_t clen;
	int fixed, ret;

	ms_get_be16(r->s, &rec->cmd);
	ms_get_be16(r->s, &clen);
	if (ms_stream_error(r->s))
		return ms__reader_stream(r, r->s, "command");
	rec->length = clen;
	fixed = ms__command_len(rec->cmd);
	if (fixed == -2)
		return ms__reader_fail_at(r, -EBADMSG, rec->offset,
					  "unknown command %u", rec->cmd);
	if (fixed >= 0 && fixed != (int)rec->length)
		return ms__reader_fail_at(r, -EBADMSG, rec->offset,
					  "command %u has %u bytes of "
					  "payload, %d expected",
					  rec->cmd, rec->length, fixed);
	ret = ms__substream_new(&r->window, r->s, rec->length, r->a);
	if (ret)
		return ms__reader_fail_at(r, ret, rec->offset, "out of memory");
	return 1;
}

static int qr_eof(ms_reader *r, ms_record *rec)
{
	(void)rec;
	r->state = MS__R_AFTER_EOF;
	r->have_cur = false;
	return 1;
}

static int qr_vmdesc(ms_reader *r, ms_record *rec)
{
	uint32_t len;
	int ret;

	if (r->state != MS__R_AFTER_EOF || r->o.no_vmdesc)
		return ms__reader_fail_at(r, -EBADMSG, rec->offset,
					  "unexpected VM description");
	if (ms_get_be32(r->s, &len))
		return ms__reader_stream(r, r->s, "VM description");
	if (len > r->max_vmdesc)
		return ms__reader_fail_at(r, -EFBIG, rec->offset,
					  "VM description of %u bytes, over "
					  "the limit of %zu",
					  len, r->max_vmdesc);
	rec->length = len;
	ret = ms__substream_new(&r->window, r->s, len, r->a);
	if (ret)
		return ms__reader_fail_at(r, ret, rec->offset, "out of memory");
	r->state = MS__R_AFTER_VMDESC;
	return 1;
}

static int qr_footer_alone(ms_reader *r, ms_record *rec)
{
	return ms__reader_fail_at(r, -EBADMSG, rec->offset,
				  "footer without a section");
}

/* The record types of the profile; the others are refused. */
static qr_fn qr_handler(uint8_t type)
{
	switch (type) {
	case MS_REC_CONFIGURATION:
		return qr_configuration;
	case MS_REC_START:
	case MS_REC_FULL:
	case MS_REC_PART:
	case MS_REC_END:
		return qr_section;
	case MS_REC_COMMAND:
		return qr_command;
	case MS_REC_EOF:
		return qr_eof;
	case MS_REC_VMDESC:
		return qr_vmdesc;
	case MS_REC_FOOTER:
		return qr_footer_alone;
	default:
		return NULL;
	}
}

/* At the end of the input: fine after EOF, a cut stream before. */
static int qr_at_end(ms_reader *r, uint64_t off)
{
	if (ms_stream_error(r->s))
		return ms__reader_stream(r, r->s, "record");
	if (r->state == MS__R_AFTER_EOF) {
		r->state = MS__R_DONE;
		return 0;
	}
	return ms__reader_fail_at(r, -ENODATA, off,
				  "stream truncated: it ends before EOF");
}

static int qemu_next(ms_reader *r, ms_record *rec)
{
	uint64_t off;
	uint8_t type;
	qr_fn fn;
	int ret;

	if (r->window) {
		ret = qr_close_window(r);
		if (ret <= 0)
			return ret;
	}
	if (r->open == MS__O_CONFIG) {
		if (ms__reader_config_skip(r, r->s))
			return r->err.code;
		r->open = MS__O_NONE;
	}
	off = ms_stream_tell(r->s);
	ms__record_clear(rec);
	rec->offset = off;
	rec->index = r->index;
	if (r->want_footer)
		return qr_footer(r, rec);
	if (ms_stream_is_eof(r->s))
		return qr_at_end(r, off);
	if (ms_get_u8(r->s, &type))
		return ms__reader_stream(r, r->s, "record");
	rec->type = type;
	r->index++;
	/* After EOF, only the trailer (or the end) may come. */
	if (r->state == MS__R_AFTER_EOF && type != MS_REC_VMDESC)
		return ms__reader_fail_at(r, -EBADMSG, off,
					  "0x%02x after EOF: expected the VM "
					  "description (0x06) or the end of "
					  "the stream",
					  type);
	fn = qr_handler(type);
	if (!fn)
		return ms__reader_fail_at(r, -EBADMSG, off,
					  "unknown record type 0x%02x", type);
	return fn(r, rec);
}

/*
 * Readiness of fed data.
 */

int ms__codec_qemu_ready(ms__qemu_scan *sc, const uint8_t *p, size_t n,
			 uint32_t id, bool no_footers, bool force)
{
	size_t i = sc->from;

	if (force || no_footers)
		sc->footer_seen = true;
	for (; !sc->footer_seen && i + 5 <= n; i++) {
		if (p[i] == MS_REC_FOOTER && ms__load_be32(p + i + 1) == id) {
			sc->from = i + 1;
			sc->footer_seen = true;
		}
	}
	if (!sc->footer_seen)
		sc->from = n > 4 ? n - 4 : 0;
	return sc->footer_seen;
}

const struct ms__codec_profile ms__codec_qemu = {
	.header = qw_header,
	.configuration = qw_configuration,
	.begin = qw_begin,
	.end = qw_end,
	.command = qw_command,
	.eof = qw_eof,
	.vmdesc = qw_vmdesc,
	.finish = qw_finish,
	.next = qemu_next,
};
