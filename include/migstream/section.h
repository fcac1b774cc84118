/* SPDX-License-Identifier: MIT */
/*
 * migstream framing codec: QEMU's migration stream grammar ("QEVM"
 * version 3) byte for byte, and migstream's native profile (length and
 * checksum on every record, optional zlib per section), behind one writer
 * and one pull reader.  docs/FORMAT.md describes both profiles byte by
 * byte.
 *
 * A writer or reader works on top of an ms_stream that the caller owns:
 * it never closes it.  Section payloads are written and read through a
 * payload stream the codec hands out (the underlying stream itself in the
 * QEMU profile, a chunking stream in the native profile), so handler code
 * is the same for both profiles.
 *
 * Errors are those of stream.h: negative errnos, with a message naming
 * the byte offset (in hex), the section and what was expected, available
 * from ms_writer_errmsg() and ms_reader_errmsg().  A call made out of
 * order or with a bad argument returns -EINVAL and says what was
 * expected in the same message, without failing the object.  Objects are
 * not thread-safe; distinct objects may be used on distinct threads.
 */
#ifndef MIGSTREAM_SECTION_H
#define MIGSTREAM_SECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <migstream/stream.h>

#ifdef __cplusplus
extern "C" {
#endif

/* QEMU's file magic ("QEVM") and the one version it accepts. */
#define MS_QEMU_MAGIC	0x5145564du
#define MS_QEMU_VERSION 3u

/**
 * enum ms_record_type - Top-level elements of a stream.
 *
 * The values are QEMU's section type bytes; the native profile uses the
 * same values for the same elements.  MS_REC_SUBSECTION occurs only inside
 * payloads and is listed for completeness.
 */
typedef enum ms_record_type {
	MS_REC_EOF = 0x00,
	MS_REC_START = 0x01,
	MS_REC_PART = 0x02,
	MS_REC_END = 0x03,
	MS_REC_FULL = 0x04,
	MS_REC_SUBSECTION = 0x05,
	MS_REC_VMDESC = 0x06,
	MS_REC_CONFIGURATION = 0x07,
	MS_REC_COMMAND = 0x08,
	MS_REC_FOOTER = 0x7e
} ms_record_type;

/**
 * ms_record_type_name() - Name of a record type.
 * @type: an ms_record_type value.
 *
 * Return: "START", "FULL", "EOF", ... or "unknown".  Thread-safe.
 */
const char *ms_record_type_name(int type);

/**
 * enum ms_profile - The two stream grammars.
 * @MS_PROFILE_AUTO: reader only: decide from the first bytes.
 * @MS_PROFILE_QEMU: QEMU's "QEVM" version 3 stream.
 * @MS_PROFILE_NATIVE: migstream's own, see docs/FORMAT.md; what writers
 *                     write by default.
 */
typedef enum ms_profile {
	MS_PROFILE_AUTO = 0,
	MS_PROFILE_QEMU = 1,
	MS_PROFILE_NATIVE = 2
} ms_profile;

/* QEMU migration commands (QEMU_VM_COMMAND), as in QEMU 7.2 to 10.x. */
enum ms_qemu_command {
	MS_CMD_OPEN_RETURN_PATH = 1,
	MS_CMD_PING = 2,
	MS_CMD_POSTCOPY_ADVISE = 3,
	MS_CMD_POSTCOPY_LISTEN = 4,
	MS_CMD_POSTCOPY_RUN = 5,
	MS_CMD_POSTCOPY_RAM_DISCARD = 6,
	MS_CMD_PACKAGED = 7,
	MS_CMD_ENABLE_COLO = 8,
	MS_CMD_POSTCOPY_RESUME = 9,
	MS_CMD_RECV_BITMAP = 10,
	MS_CMD_SWITCHOVER_START = 11,
	MS_CMD_MAX = 12
};

/* Native profile: largest payload of one record, checked before any
 * allocation.  Writers split section payloads into chunks below it. */
#define MS_NATIVE_MAX_RECORD (16u * 1024u * 1024u)
/* Default size of the native profile's payload chunks. */
#define MS_NATIVE_DEFAULT_CHUNK (64u * 1024u)
/* Largest VM-description trailer either reader accepts by default. */
#define MS_DEFAULT_MAX_VMDESC (64u * 1024u * 1024u)
/* Most sections (distinct ids) one stream may start. */
#define MS_MAX_SECTIONS 65536u

#define MS_CODEC_OPTS_VERSION 1

/**
 * struct ms_codec_opts - Settings of a writer or reader.
 * @version: must be MS_CODEC_OPTS_VERSION.
 * @profile: the grammar; MS_PROFILE_AUTO is accepted by readers only.
 * @no_footers: QEMU profile: no SECTION_FOOTER after sections (QEMU's
 *              send-section-footer=off, machine types up to 2.3).  The
 *              native profile records the choice in its header.
 * @no_configuration: QEMU profile: no CONFIGURATION after the header
 *                    (send-configuration=off).  Readers accept either when
 *                    this is false, since the 0x07 byte is unambiguous.
 * @no_vmdesc: QEMU profile, writers: the caller will not write a
 *             VM-description trailer; readers: refuse one.
 * @checksum: native writers: 0 for CRC-32 on every record (the default),
 *            -1 for none (records carry no checksum; for benchmarks).
 * @compress_level: native writers: 0 for no compression, 1-9 to deflate
 *                  every payload chunk at that zlib level.
 * @chunk_size: native writers: payload bytes per record, 0 for
 *              MS_NATIVE_DEFAULT_CHUNK, otherwise 16 to
 *              MS_NATIVE_MAX_RECORD / 2.
 * @max_vmdesc: readers: largest trailer accepted, 0 for
 *              MS_DEFAULT_MAX_VMDESC.
 * @allocator: allocation hooks, or NULL.
 *
 * The one default, which NULL and ms_codec_opts_init() give: writers
 * write the native profile with a CRC-32 on every record, footers, no
 * compression and MS_NATIVE_DEFAULT_CHUNK chunks; a NULL reader detects
 * the profile, so that the default reader accepts what any writer
 * writes.  To write what QEMU reads, ask for MS_PROFILE_QEMU (QEMU 7.2's
 * grammar: configuration, footers, trailer).
 *
 * Start from ms_codec_opts_init() and change the fields you need.  A
 * struct whose @version is 0 is refused with -EINVAL when any other field
 * is set, so that a forgotten @version never drops settings silently; one
 * that is all zero means the defaults, as NULL does.
 */
typedef struct ms_codec_opts {
	unsigned version;
	ms_profile profile;
	bool no_footers;
	bool no_configuration;
	bool no_vmdesc;
	int checksum;
	int compress_level;
	size_t chunk_size;
	size_t max_vmdesc;
	const ms_allocator *allocator;
} ms_codec_opts;

/**
 * ms_codec_opts_init() - Fill codec options with the defaults.
 * @o: the options to fill.
 *
 * Sets @o->version to MS_CODEC_OPTS_VERSION, the profile to
 * MS_PROFILE_NATIVE with CRC-32 (@o->checksum 0) and every other field to
 * 0, which means its default.  A reader given these options reads the
 * native profile only; set @o->profile to MS_PROFILE_AUTO (or pass NULL)
 * to accept both.
 */
void ms_codec_opts_init(ms_codec_opts *o);

/**
 * ms_codec_opts_check() - Say what is wrong with codec options.
 * @o: options, or NULL.
 * @reader: check them for ms_reader_new() (true) or ms_writer_new().
 *
 * The constructors refuse with -EINVAL exactly the options this finds
 * wrong; it says why, for example "ms_codec_opts: version is 0 but fields
 * are set: set version to MS_CODEC_OPTS_VERSION (or start from
 * ms_codec_opts_init())".  Thread-safe.
 *
 * Return: NULL when @o is accepted, else a static message.
 */
const char *ms_codec_opts_check(const ms_codec_opts *o, bool reader);

/**
 * struct ms_section_hdr - The header of a section record.
 * @type: MS_REC_START, MS_REC_PART, MS_REC_END or MS_REC_FULL.
 * @section_id: QEMU's registration index of the handler.
 * @idstr: START and FULL only: the handler's name, such as "ram" or
 *         "0000:00:01.3/piix4_pm", at most 255 bytes.
 * @instance_id: START and FULL only.
 * @version_id: START and FULL only.
 */
typedef struct ms_section_hdr {
	uint8_t type;
	uint32_t section_id;
	char idstr[MS_COUNTED_STRING_MAX + 1];
	uint32_t instance_id;
	uint32_t version_id;
} ms_section_hdr;

/*
 * Writer.
 */

/** typedef ms_writer - An opaque stream writer. */
typedef struct ms_writer ms_writer;

/**
 * ms_writer_new() - Create a writer on an output stream.
 * @out: receives the writer; untouched on failure.
 * @s: a writer stream; borrowed, never closed by the writer, and must
 *     outlive it.
 * @opts: settings, or NULL for the defaults: the native profile with
 *        CRC-32 (see struct ms_codec_opts).
 *
 * Nothing is written until ms_writer_header().
 *
 * Return: 0, -EINVAL (bad @opts, see ms_codec_opts_check(), or @s not a
 * writer) or -ENOMEM.
 */
int ms_writer_new(ms_writer **out, ms_stream *s, const ms_codec_opts *opts);

/**
 * ms_writer_free() - Free a writer (the stream stays open).
 * @w: a writer, or NULL.
 */
void ms_writer_free(ms_writer *w);

/**
 * ms_writer_header() - Write the file header.
 * @w: a writer.
 *
 * QEMU: be32 magic, be32 version 3.  Native: see docs/FORMAT.md.
 *
 * Return: 0 or the writer's sticky error.
 */
int ms_writer_header(ms_writer *w);

/**
 * ms_writer_configuration() - Write the CONFIGURATION record.
 * @w: a writer.
 * @machine: machine type name such as "pc-i440fx-7.2" (at most 255 bytes).
 * @extra: the configuration's encoded subsections (each starting with
 *         0x05), or NULL; copied.
 * @extra_len: bytes in @extra.
 *
 * Return: 0, -EINVAL (name too long, called out of order, or the writer
 * was told no_configuration), or the sticky error.
 */
int ms_writer_configuration(ms_writer *w, const char *machine,
			    const void *extra, size_t extra_len);

/**
 * ms_writer_begin() - Start a section and get the stream for its payload.
 * @w: a writer.
 * @hdr: the section header; START and FULL carry the idstr, instance and
 *       version, PART and END only the id.
 * @payload: receives the payload stream, valid until ms_writer_end().
 *           Write with ms_put_*() and do not close it.
 *
 * Return: 0, -EINVAL (bad type, idstr too long, a section already open),
 * or the sticky error.
 */
int ms_writer_begin(ms_writer *w, const ms_section_hdr *hdr,
		    ms_stream **payload);

/**
 * ms_writer_end() - End the open section (footer, if the profile has one).
 * @w: a writer.
 *
 * Return: 0, -EINVAL (no open section), or the sticky error, which
 * includes one the payload stream met.
 */
int ms_writer_end(ms_writer *w);

/**
 * ms_writer_command() - Write a QEMU_VM_COMMAND record.
 * @w: a writer.
 * @cmd: an enum ms_qemu_command value (1..MS_CMD_MAX-1).
 * @data: the command's payload; copied.  May be NULL if @len is 0.
 * @len: payload bytes; must match the command's fixed length, if it has
 *       one.
 *
 * Return: 0, -EINVAL, or the sticky error.
 */
int ms_writer_command(ms_writer *w, uint16_t cmd, const void *data,
		      uint16_t len);

/**
 * ms_writer_eof() - Write the EOF record that ends the sections.
 * @w: a writer.
 *
 * Return: 0, -EINVAL (a section is open), or the sticky error.
 */
int ms_writer_eof(ms_writer *w);

/**
 * ms_writer_vmdesc() - Write the VM-description JSON trailer.
 * @w: a writer, after ms_writer_eof().
 * @json: the JSON text, without NUL; copied.
 * @len: its length.
 *
 * Return: 0, -EINVAL (before EOF, twice, or no_vmdesc), or the sticky
 * error.
 */
int ms_writer_vmdesc(ms_writer *w, const void *json, size_t len);

/**
 * ms_writer_finish() - Complete the stream and flush it.
 * @w: a writer, after ms_writer_eof() (and the trailer, if any).
 *
 * The native profile writes its trailer record here (record count and a
 * checksum over the whole stream).  The stream is flushed.
 *
 * Return: 0 or the sticky error.
 */
int ms_writer_finish(ms_writer *w);

/**
 * ms_writer_error() - The writer's sticky error.
 * @w: a writer.
 *
 * Return: 0 or a negative errno.
 */
int ms_writer_error(const ms_writer *w);

/**
 * ms_writer_errmsg() - Message of the writer's error.
 * @w: a writer.
 *
 * The message of the sticky error, such as "offset 0x1f4: record of
 * 16777300 bytes"; without one, the message of the last call refused
 * with -EINVAL, such as "ms_writer_begin: called before
 * ms_writer_header" (such a refusal does not fail the writer).
 *
 * Return: "" or the message; valid until the writer is freed.
 */
const char *ms_writer_errmsg(const ms_writer *w);

/**
 * ms_writer_error_offset() - Byte offset of the writer's sticky error.
 * @w: a writer.
 *
 * Return: the offset in the output stream where the error happened, or 0
 * without an error.
 */
uint64_t ms_writer_error_offset(const ms_writer *w);

/*
 * Reader.
 */

/** typedef ms_reader - An opaque pull parser. */
typedef struct ms_reader ms_reader;

/**
 * struct ms_record - One top-level element, as returned by the reader.
 * @type: an ms_record_type value.
 * @offset: byte offset of the record's first byte in the stream.
 * @section: for START, PART, END and FULL: the header; for PART and END
 *           the reader fills idstr, instance and version from the START
 *           that opened the section.
 * @machine: CONFIGURATION: the machine type name.
 * @cmd: COMMAND: the command number.
 * @length: COMMAND: payload length; VMDESC: JSON length; CONFIGURATION:
 *          length of the machine name.  0 otherwise.
 * @index: native profile: the record's number (0 for the first after the
 *         header); QEMU profile: the element's number.
 *
 * After a section, a CONFIGURATION, a COMMAND or a VMDESC, the payload is
 * read through ms_reader_payload() before the next call to
 * ms_reader_next().  In the native profile what the caller leaves unread
 * is skipped (and checked); in the QEMU profile nothing can be skipped,
 * except for COMMAND and VMDESC whose lengths are known.
 */
typedef struct ms_record {
	uint8_t type;
	uint64_t offset;
	ms_section_hdr section;
	char machine[MS_COUNTED_STRING_MAX + 1];
	uint16_t cmd;
	uint32_t length;
	uint64_t index;
} ms_record;

/**
 * ms_reader_new() - Create a pull parser on an input stream.
 * @out: receives the reader; untouched on failure.
 * @s: a reader stream; borrowed, never closed, must outlive the reader.
 * @opts: settings, or NULL for the default reader, which detects the
 *        profile: it accepts what any writer writes (QEMU streams without
 *        footers aside, which need no_footers said).
 *
 * Nothing is read until the first ms_reader_next(), which reads and checks
 * the file header.
 *
 * Return: 0, -EINVAL (bad @opts, see ms_codec_opts_check(), or @s not a
 * reader) or -ENOMEM.
 */
int ms_reader_new(ms_reader **out, ms_stream *s, const ms_codec_opts *opts);

/**
 * ms_reader_free() - Free a reader (the stream stays open).
 * @r: a reader, or NULL.
 */
void ms_reader_free(ms_reader *r);

/**
 * ms_reader_next() - Read the next top-level record.
 * @r: a reader.
 * @rec: receives the record.
 *
 * Checks everything the grammar allows: magic and version, known record
 * types, footers matching the open section, PART and END only for started
 * sections, string lengths, command lengths, the trailer ending exactly
 * at the end of the stream, and in the native profile every checksum and
 * the record count.
 *
 * Return: 1 when @rec holds a record, 0 at the clean end of the stream
 * (after EOF and the trailer, if any), or a negative errno: -EBADMSG for
 * a malformed stream, -EILSEQ for a checksum mismatch, -ENODATA for a
 * truncated one, -ENOTSUP for an unknown mandatory record type, or the
 * stream's error.  Errors are sticky.
 */
int ms_reader_next(ms_reader *r, ms_record *rec);

/**
 * ms_reader_payload() - The stream of the current record's payload.
 * @r: a reader.
 *
 * Return: a reader stream positioned at the payload of the record last
 * returned by ms_reader_next(), valid until the next call to it; do not
 * close it.  In the native profile it ends (-ENODATA) where the payload
 * ends.
 */
ms_stream *ms_reader_payload(ms_reader *r);

/**
 * ms_reader_profile() - The profile being read.
 * @r: a reader.
 *
 * Return: MS_PROFILE_QEMU or MS_PROFILE_NATIVE once the header was read,
 * MS_PROFILE_AUTO before.
 */
ms_profile ms_reader_profile(const ms_reader *r);

/**
 * ms_reader_fail() - Fail the reader from a payload parser.
 * @r: a reader.
 * @err: a negative errno.
 * @fmt: printf-style message, prefixed by the reader with the offset and
 *       the current section.
 *
 * Return: the reader's error after the call (the first error wins).
 */
int ms_reader_fail(ms_reader *r, int err, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

/**
 * ms_reader_error() - The reader's sticky error.
 * @r: a reader.
 *
 * Return: 0 or a negative errno.
 */
int ms_reader_error(const ms_reader *r);

/**
 * ms_reader_errmsg() - Message of the reader's error.
 * @r: a reader.
 *
 * Return: "" or a message such as "offset 0x3d1a2: section 7 'cpu':
 * footer for section 7 expected, found 0x04"; valid until the reader is
 * freed.
 */
const char *ms_reader_errmsg(const ms_reader *r);

/**
 * ms_reader_error_offset() - Byte offset of the reader's error.
 * @r: a reader.
 *
 * Return: the offset in the input stream, or 0 without an error.
 */
uint64_t ms_reader_error_offset(const ms_reader *r);

/*
 * Subsections, inside a section's payload (QEMU's vmstate subsections).
 */

/**
 * ms_put_subsection() - Write a subsection header.
 * @s: a payload stream.
 * @name: "<parent>/<name>", such as "cpu/poll_control_msr", at most 255
 *        bytes.
 * @version_id: the subsection's version.
 *
 * Writes u8 0x05, the counted name and be32 @version_id; the subsection's
 * fields follow.
 *
 * Return: 0, -EINVAL (name too long) or the stream's sticky error.
 */
int ms_put_subsection(ms_stream *s, const char *name, uint32_t version_id);

/**
 * ms_get_subsection() - Read the next subsection header, if one follows.
 * @s: a payload stream.
 * @parent: the section's vmstate name; only subsections named
 *          "@parent/..." are taken.
 * @name: receives the full name.
 * @version_id: receives the version.
 *
 * Peeks first: when the next byte is not 0x05, or the name does not start
 * with "@parent/", nothing is consumed, as in QEMU's loader.
 *
 * Return: 1 with a subsection header read, 0 when none follows, or the
 * stream's sticky error.
 */
int ms_get_subsection(ms_stream *s, const char *parent,
		      char name[MS_COUNTED_STRING_MAX + 1],
		      uint32_t *version_id);

#ifdef __cplusplus
}
#endif

#endif /* MIGSTREAM_SECTION_H */
