/* SPDX-License-Identifier: MIT */
/*
 * migstream-dump: the state and desc commands.
 *
 * desc prints the VM-description trailer as Python's json.dumps(indent=4)
 * does.  state decodes every device section field by field, driven by
 * the VM description, and prints what QEMU's analyze-migration.py -d state
 * prints (7.2): keys "<idstr> (<section_id>)", integers as "0x%0*x"
 * strings (2 digits a byte; negative ones "0x... (-n)"), other types as
 * space-separated hex bytes, bools as JSON bools, structs and subsections
 * as objects, indexed elements as arrays, and RAM as its "section sizes".
 *
 * The trailer sits at the end of the stream: in a regular file it is found
 * by the exact-end rule (0x06, be32 len, the JSON ending the file, after
 * the EOF byte 0x00), else by a first walk; the stream is then walked from
 * its start.  Standard input is spooled to a temporary file unless --desc
 * gives the description.  Only the description and one section's decoded
 * state are held in memory.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "dump.h"

#define PROG "migstream-dump"

/* The output is written by one thread: stdio without its locks, where
 * the C library offers that. */
#if defined(__GLIBC__)
#define pj_write(p, n, f) fwrite_unlocked(p, 1, n, f)
#define pj_putc(c, f)	  fputc_unlocked(c, f)
#else
#define pj_write(p, n, f) fwrite(p, 1, n, f)
#define pj_putc(c, f)	  fputc(c, f)
#endif

/* Bounds on what a (possibly hostile) description makes us build. */
#define STATE_MAX_FIELD	 (64u * 1024u * 1024u) /* bytes of one field */
#define STATE_MAX_VALUES (2u * 1024u * 1024u)  /* values of one section */
#define STATE_MAX_INT	 64u		       /* bytes of an integer */
#define PATH_MAX_LEN	 512u
#define SCAN_CHUNK	 (64u * 1024u)
#define READ_CHUNK	 4096u

/*
 * JSON output, formatted as Python's json.dumps(indent=4): ", " never
 * appears, ": " separates keys, non-ASCII and control characters are
 * escaped as \uXXXX (lowercase hex).
 */

static void pj_indent(FILE *f, int level)
{
	static const char spaces[] = "                                "
				     "                                ";
	size_t n = (size_t)level * 4;

	while (n) {
		size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;

		pj_write(spaces, k, f);
		n -= k;
	}
}

/* Decode one UTF-8 sequence (valid: jansson checked it). */
static size_t utf8_next(const unsigned char *p, size_t n, uint32_t *cp)
{
	if (p[0] < 0x80 || n < 2) {
		*cp = p[0];
		return 1;
	}
	if ((p[0] & 0xe0) == 0xc0) {
		*cp = (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
		return 2;
	}
	if ((p[0] & 0xf0) == 0xe0 && n >= 3) {
		*cp = (uint32_t)(p[0] & 0x0f) << 12 |
		      (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
		return 3;
	}
	if (n >= 4) {
		*cp = (uint32_t)(p[0] & 0x07) << 18 |
		      (uint32_t)(p[1] & 0x3f) << 12 |
		      (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
		return 4;
	}
	*cp = p[0];
	return 1;
}

static void pj_string(FILE *f, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	size_t i = 0, l;

	pj_putc('"', f);
	while (i < n) {
		/* A run of printable ASCII other than '"' and '\\': as is. */
		for (l = i; l < n && p[l] >= 0x20 && p[l] < 0x7f &&
			    p[l] != '"' && p[l] != '\\';
		     l++)
			;
		if (l > i) {
			pj_write(p + i, l - i, f);
			i = l;
			continue;
		}
		l = utf8_next(p + i, n - i, &cp);
		i += l;
		switch (cp) {
		case '"':
			fputs("\\\"", f);
			continue;
		case '\\':
			fputs("\\\\", f);
			continue;
		case '\n':
			fputs("\\n", f);
			continue;
		case '\r':
			fputs("\\r", f);
			continue;
		case '\t':
			fputs("\\t", f);
			continue;
		case '\b':
			fputs("\\b", f);
			continue;
		case '\f':
			fputs("\\f", f);
			continue;
		default:
			break;
		}
		if (cp >= 0x20 && cp < 0x7f) {
			pj_putc((int)cp, f);
		} else if (cp < 0x10000) {
			fprintf(f, "\\u%04x", cp);
		} else {
			cp -= 0x10000;
			fprintf(f, "\\u%04x\\u%04x", 0xd800 | (cp >> 10),
				0xdc00 | (cp & 0x3ff));
		}
	}
	pj_putc('"', f);
}

/* A double as Python's repr() writes it. */
static void pj_real(FILE *f, double v)
{
	char buf[64], digits[32], *e;
	int prec, exp, nd, i;

	if (isnan(v)) {
		fputs("NaN", f);
		return;
	}
	if (isinf(v)) {
		fputs(v < 0 ? "-Infinity" : "Infinity", f);
		return;
	}
	for (prec = 0; prec < 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*e", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	/* buf: [-]d[.ddd]e[+-]XX */
	e = strchr(buf, 'e');
	exp = atoi(e + 1);
	*e = '\0';
	nd = 0;
	for (i = 0; buf[i]; i++)
		if (buf[i] >= '0' && buf[i] <= '9')
			digits[nd++] = buf[i];
	digits[nd] = '\0';
	if (v < 0 || (v == 0 && signbit(v)))
		pj_putc('-', f);
	if (exp < -4 || exp >= 16) {
		fputc(digits[0], f);
		if (nd > 1)
			fprintf(f, ".%s", digits + 1);
		fprintf(f, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
	} else if (exp < 0) {
		fputs("0.", f);
		for (i = 0; i < -exp - 1; i++)
			pj_putc('0', f);
		fputs(digits, f);
	} else {
		for (i = 0; i <= exp; i++)
			fputc(i < nd ? digits[i] : '0', f);
		pj_putc('.', f);
		if (nd > exp + 1)
			fputs(digits + exp + 1, f);
		else
			pj_putc('0', f);
	}
}

static void pj_value(FILE *f, json_t *v, int level)
{
	const char *key;
	json_t *val;
	size_t i, n;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if (!json_object_size(v)) {
			fputs("{}", f);
			return;
		}
		fputs("{\n", f);
		n = 0;
		json_object_foreach(v, key, val)
		{
			if (n++)
				fputs(",\n", f);
			pj_indent(f, level + 1);
			pj_string(f, key, strlen(key));
			fputs(": ", f);
			pj_value(f, val, level + 1);
		}
		pj_putc('\n', f);
		pj_indent(f, level);
		pj_putc('}', f);
		return;
	case JSON_ARRAY:
		if (!json_array_size(v)) {
			fputs("[]", f);
			return;
		}
		fputs("[\n", f);
		json_array_foreach(v, i, val)
		{
			if (i)
				fputs(",\n", f);
			pj_indent(f, level + 1);
			pj_value(f, val, level + 1);
		}
		pj_putc('\n', f);
		pj_indent(f, level);
		pj_putc(']', f);
		return;
	case JSON_STRING:
		pj_string(f, json_string_value(v), json_string_length(v));
		return;
	case JSON_INTEGER:
		fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return;
	case JSON_REAL:
		pj_real(f, json_real_value(v));
		return;
	case JSON_TRUE:
		fputs("true", f);
		return;
	case JSON_FALSE:
		fputs("false", f);
		return;
	case JSON_NULL:
		fputs("null", f);
		return;
	}
}

/*
 * Input: the stream, a seekable fd when the trailer must be found.
 */

struct input {
	int fd;
	const char *name;
	bool close;
};

static int err_io(const char *name, const char *what, int e)
{
	fprintf(stderr, PROG ": %s: %s: %s\n", name, what, strerror(e));
	return DUMP_EXIT_IO;
}

/* The input (dump-input.c): a regular file at the stream's start; a pipe
 * or gzip input is copied to a temporary file (its magic checked first),
 * even when not @seekable since the magic was read from it. */
static int input_open(struct input *in, const char *file, bool seekable)
{
	(void)seekable;
	return dump_open_file(file, &in->fd, &in->name, &in->close);
}

static void input_close(struct input *in)
{
	if (in->close)
		close(in->fd);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
	uint8_t *b = buf;
	ssize_t r;

	while (n) {
		r = pread(fd, b, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ENODATA;
		b += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/*
 * The exact-end rule: the last position p with d[p] == 0x06,
 * p + 5 + be32(d + p + 1) == size, d[p + 5] == '{' and d[p - 1] == 0x00.
 * Return: 1 with *@pos and *@len set, 0 when there is none, or -errno.
 */
static int trailer_find(int fd, uint64_t size, uint64_t *pos, uint32_t *len)
{
	uint64_t lo, hi, a, p;
	uint8_t *buf;
	int ret = 0;

	if (size < 7)
		return 0;
	/* Candidates p from size - 6 down to lo. */
	lo = size - 6 > MS_DEFAULT_MAX_VMDESC ? size - 5 - MS_DEFAULT_MAX_VMDESC
					      : 1;
	buf = malloc(SCAN_CHUNK + 7);
	if (!buf)
		return -ENOMEM;
	hi = size - 6 + 1; /* one past the highest candidate */
	while (hi > lo && !ret) {
		a = hi - lo > SCAN_CHUNK ? hi - SCAN_CHUNK : lo;
		/* Bytes [a - 1, hi + 5) hold every candidate's 7 bytes. */
		ret = pread_all(fd, buf, (size_t)(hi - a + 6), a - 1);
		if (ret)
			break;
		for (p = hi; p-- > a;) {
			const uint8_t *d = buf + (p - a) + 1;

			if (d[0] == MS_REC_VMDESC && d[5] == '{' &&
			    d[-1] == MS_REC_EOF &&
			    p + 5 + be32(d + 1) == size) {
				*pos = p;
				*len = be32(d + 1);
				ret = 1;
				break;
			}
		}
		hi = a;
	}
	free(buf);
	return ret;
}

/*
 * The stream's VM description: by the exact-end rule in a QEMU stream,
 * else by a walk (the native profile; or as a check that there is none).
 * Return: 0 with *@json (malloc'd, NUL-terminated) and *@len, or a
 * DUMP_EXIT_* status after printing the error.
 */
static int vmdesc_get(struct input *in, char **json, size_t *len)
{
	struct dump_walk w;
	uint8_t magic[4];
	struct stat st;
	uint64_t pos = 0;
	uint32_t l = 0;
	int ret;

	if (fstat(in->fd, &st))
		return err_io(in->name, "cannot stat", errno);
	if (S_ISREG(st.st_mode) && !pread_all(in->fd, magic, 4, 0) &&
	    be32(magic) == MS_QEMU_MAGIC) {
		ret = trailer_find(in->fd, (uint64_t)st.st_size, &pos, &l);
		if (ret < 0)
			return err_io(in->name, "reading the trailer", -ret);
		if (ret == 1) {
			*json = malloc((size_t)l + 1);
			if (!*json)
				return err_io(in->name, "reading the trailer",
					      ENOMEM);
			ret = pread_all(in->fd, *json, l, pos + 5);
			if (ret) {
				free(*json);
				return err_io(in->name, "reading the trailer",
					      -ret);
			}
			(*json)[l] = '\0';
			*len = l;
			return 0;
		}
	}
	/* A first walk. */
	memset(&w, 0, sizeof(w));
	w.name = in->name;
	w.fd = in->fd;
	w.keep_vmdesc = true;
	ret = dump_walk_run(&w);
	if (w.vmdesc && w.complete) {
		*json = w.vmdesc;
		*len = w.vmdesc_len;
		w.vmdesc = NULL;
		dump_walk_free(&w);
		if (lseek(in->fd, 0, SEEK_SET) < 0)
			return err_io(in->name, "cannot seek", errno);
		return 0;
	}
	if (ret)
		fprintf(stderr, PROG ": %s: %s\n", w.name, w.errmsg);
	else
		fprintf(stderr,
			PROG ": %s: offset 0x%" PRIx64
			     ": no VM description (vmdesc) trailer: the stream "
			     "ends after its EOF byte (state decodes device "
			     "sections with one; --desc FILE gives it)\n",
			w.name, w.end);
	dump_walk_free(&w);
	return DUMP_EXIT_INVALID;
}

static json_t *vmdesc_parse(const char *name, const char *json, size_t len)
{
	json_error_t e;
	json_t *root;

	root = json_loadb(json, len, 0, &e);
	if (!root) {
		fprintf(stderr,
			PROG ": %s: VM description: invalid JSON at line %d, "
			     "column %d (byte %d): %s\n",
			name, e.line, e.column, e.position, e.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		fprintf(stderr,
			PROG ": %s: VM description: a JSON object expected\n",
			name);
		json_decref(root);
		return NULL;
	}
	return root;
}

/*
 * desc
 */

static int desc_run(const char *file)
{
	struct input in;
	json_t *root;
	size_t len;
	char *json;
	int ret;

	ret = input_open(&in, file, true);
	if (ret)
		return ret;
	/* Only a trailer the walk reaches counts (not a planted one). */
	ret = dump_walk_trailer(in.name, in.fd, &json, &len);
	if (!ret) {
		root = vmdesc_parse(in.name, json, len);
		free(json);
		if (root) {
			pj_value(stdout, root, 0);
			fputc('\n', stdout);
			json_decref(root);
		} else {
			ret = DUMP_EXIT_INVALID;
		}
	}
	input_close(&in);
	return ret;
}

/*
 * state: the decoder.
 */

struct state {
	json_t *root;	 /* the description */
	json_t *devices; /* "instance_id/name" -> device */
	FILE *out;
	uint64_t nkeys;	 /* sections printed */
	uint64_t values; /* values built for the current section */
	bool native;
	char path[PATH_MAX_LEN];
	size_t plen; /* strlen(path) */
	/* -m: RAM pages are printed as they come, in the RAM member. */
	bool memory;
	bool ram_open;	 /* the RAM member's "memory" object is open */
	uint32_t ram_id; /* the RAM section's id, and idstr */
	char ram_idstr[MS_COUNTED_STRING_MAX + 1];
	uint64_t mem_n; /* entries of the open "memory" object */
	char *hex;	/* a page as hex text */
	json_t *f_last; /* the last field looked up, its type, size */
	const char *f_type;
	json_int_t f_size;
	char *hbuf; /* read_hex()'s text, and its size */
	size_t hcap;
	const char *int_type; /* the last type classified, and its class: */
	int int_class;	      /* 1 signed, 2 unsigned integer, 0 other */
};

/*
 * A field's name for messages: its path, such as "env.segs[2].base".
 * Built for every field, so without printf.  Each returns the length
 * before, for path_pop().
 */
static size_t path_add(struct state *st, const char *s, size_t n)
{
	size_t old = st->plen;

	if (n > sizeof(st->path) - 1 - old)
		n = sizeof(st->path) - 1 - old;
	memcpy(st->path + old, s, n);
	st->plen = old + n;
	st->path[st->plen] = '\0';
	return old;
}

static size_t path_name(struct state *st, const char *name)
{
	size_t old = st->plen;

	if (old)
		path_add(st, ".", 1);
	path_add(st, name, strlen(name));
	return old;
}

static size_t path_index(struct state *st, json_int_t i)
{
	char b[32], *q = b + sizeof(b);
	unsigned long long u =
		i < 0 ? 0ull - (unsigned long long)i : (unsigned long long)i;

	*--q = ']';
	do {
		*--q = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (i < 0)
		*--q = '-';
	*--q = '[';
	return path_add(st, q, (size_t)(b + sizeof(b) - q));
}

static void path_pop(struct state *st, size_t old)
{
	st->path[old] = '\0';
	st->plen = old;
}

/* Look at the next @n bytes of the payload. */
static const uint8_t *need(struct dump_walk *w, struct state *st, ms_stream *p,
			   size_t n, const char *what)
{
	const uint8_t *d;
	ssize_t got = ms_peek(p, &d, n);

	if (got < 0) {
		dump_walk_fail(w, (int)got, "field '%s': %s: %s", st->path,
			       what, ms_stream_errmsg(p));
		return NULL;
	}
	if ((size_t)got < n) {
		dump_walk_fail(w, st->native ? -EBADMSG : -ENODATA,
			       "field '%s': %s (%zu bytes) expected, end of "
			       "%s found after %zd bytes",
			       st->path, what, n,
			       st->native ? "the section's payload" : "stream",
			       got);
		return NULL;
	}
	return d;
}

static int consume(struct dump_walk *w, ms_stream *p, size_t n)
{
	if (ms_skip(p, n))
		return dump_walk_fail(w, ms_stream_error(p), "%s",
				      ms_stream_errmsg(p));
	return 0;
}

static int count_value(struct dump_walk *w, struct state *st)
{
	if (++st->values > STATE_MAX_VALUES)
		return dump_walk_fail(w, -E2BIG,
				      "field '%s': more than %u values in "
				      "one section",
				      st->path, STATE_MAX_VALUES);
	return 0;
}

static int nomem(struct dump_walk *w, struct state *st)
{
	return dump_walk_fail(w, -ENOMEM, "field '%s': out of memory",
			      st->path);
}

/* @size bytes as "xx xx ...". */
static int read_hex(struct dump_walk *w, struct state *st, ms_stream *p,
		    size_t size, const char *type, json_t **out)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *d;
	size_t done = 0, c, i;
	char *s, *q;

	if (st->hcap < 3 * size + 1) {
		s = realloc(st->hbuf, 3 * size + 1);
		if (!s)
			return nomem(w, st);
		st->hbuf = s;
		st->hcap = 3 * size + 1;
	}
	s = st->hbuf;
	q = s;
	while (done < size) {
		c = size - done < READ_CHUNK ? size - done : READ_CHUNK;
		d = need(w, st, p, c, type);
		if (!d)
			return -1;
		for (i = 0; i < c; i++) {
			if (q != s)
				*q++ = ' ';
			*q++ = hex[d[i] >> 4];
			*q++ = hex[d[i] & 15];
		}
		if (consume(w, p, c))
			return -1;
		done += c;
	}
	*out = json_stringn_nocheck(s, (size_t)(q - s));
	return *out ? 0 : nomem(w, st);
}

/* Decimal of the negative two's-complement big-endian @d (@n bytes). */
static void neg_decimal(const uint8_t *d, size_t n, char *out, size_t cap)
{
	uint8_t mag[STATE_MAX_INT];
	char dec[STATE_MAX_INT * 3 + 2];
	size_t i, nd = 0;
	unsigned carry, rem;
	bool zero;

	/* Magnitude: ~d + 1. */
	carry = 1;
	for (i = n; i-- > 0;) {
		unsigned v = (unsigned)(uint8_t)~d[i] + carry;

		mag[i] = (uint8_t)v;
		carry = v >> 8;
	}
	do {
		rem = 0;
		zero = true;
		for (i = 0; i < n; i++) {
			unsigned v = rem << 8 | mag[i];

			mag[i] = (uint8_t)(v / 10);
			rem = v % 10;
			if (mag[i])
				zero = false;
		}
		dec[nd++] = (char)('0' + rem);
	} while (!zero && nd < sizeof(dec) - 1);
	snprintf(out, cap, "-");
	for (i = 0; i < nd && i + 2 < cap; i++)
		out[1 + i] = dec[nd - 1 - i];
	out[1 + (i < cap - 1 ? i : cap - 2)] = '\0';
}

/* An integer of @size bytes: "0x%0*x", negative ones "0x... (-n)". */
static int read_int(struct dump_walk *w, struct state *st, ms_stream *p,
		    size_t size, bool is_signed, const char *type, json_t **out)
{
	static const char hex[] = "0123456789abcdef";
	char s[STATE_MAX_INT * 2 + 3 + STATE_MAX_INT * 3 + 8];
	const uint8_t *d;
	size_t i, n;

	if (!size || size > STATE_MAX_INT)
		return dump_walk_fail(w, -ENOTSUP,
				      "field '%s': an integer (%s) of 1 to %u "
				      "bytes expected, its size is %zu",
				      st->path, type, STATE_MAX_INT, size);
	d = need(w, st, p, size, type);
	if (!d)
		return -1;
	s[0] = '0';
	s[1] = 'x';
	n = 2;
	for (i = 0; i < size; i++) {
		s[n++] = hex[d[i] >> 4];
		s[n++] = hex[d[i] & 15];
	}
	s[n] = '\0';
	if (is_signed && (d[0] & 0x80)) {
		s[n++] = ' ';
		s[n++] = '(';
		neg_decimal(d, size, s + n, sizeof(s) - n - 2);
		n += strlen(s + n);
		s[n++] = ')';
		s[n] = '\0';
	}
	if (consume(w, p, size))
		return -1;
	*out = json_string_nocheck(s);
	return *out ? 0 : nomem(w, st);
}

static int decode_struct(struct dump_walk *w, struct state *st, ms_stream *p,
			 json_t *desc, json_t *obj);

static const char *const signed_types[] = {
	"int8",	 "int16",	"int32",       "int32 equal", "int32 le",
	"int64", "int64 equal", "uint8 equal", "uint16 equal"};
static const char *const unsigned_types[] = {"uint8", "uint16", "uint32",
					     "uint32 equal", "uint64"};

static bool in_list(const char *s, const char *const *l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(s, l[i]))
			return true;
	return false;
}

#define IN_LIST(s, l) in_list(s, l, sizeof(l) / sizeof(l[0]))

/* One field (one element of an array) described by @f. */
static int read_field(struct dump_walk *w, struct state *st, ms_stream *p,
		      json_t *f, json_t **out)
{
	const char *type;
	const uint8_t *d;
	json_int_t size;
	json_t *jt, *js, *sd;
	size_t len;
	int ret;

	if (count_value(w, st))
		return -1;
	/* The elements of an array share @f: looked up once. */
	if (f != st->f_last) {
		jt = json_object_get(f, "type");
		js = json_object_get(f, "size");
		st->f_last = f;
		st->f_type =
			json_is_string(jt) ? json_string_value(jt) : "unknown";
		st->f_size = json_is_integer(js) ? json_integer_value(js) : -1;
	}
	type = st->f_type;
	size = st->f_size;
	if (!strcmp(type, "struct")) {
		sd = json_object_get(f, "struct");
		if (!json_is_object(sd) ||
		    !json_is_array(json_object_get(sd, "fields")))
			return dump_walk_fail(w, -EBADMSG,
					      "field '%s': struct: its VM "
					      "description has no \"struct\" "
					      "with \"fields\"",
					      st->path);
		*out = json_object();
		if (!*out)
			return nomem(w, st);
		ret = decode_struct(w, st, p, sd, *out);
		if (ret) {
			json_decref(*out);
			*out = NULL;
		}
		return ret;
	}
	if (!strcmp(type, "capability")) {
		d = need(w, st, p, 1, "capability name length");
		if (!d)
			return -1;
		len = d[0];
		d = need(w, st, p, 1 + len, "capability name");
		if (!d)
			return -1;
		*out = json_stringn((const char *)d + 1, len);
		if (!*out)
			return dump_walk_fail(w, -EBADMSG,
					      "field '%s': capability name "
					      "is not UTF-8",
					      st->path);
		return consume(w, p, 1 + len);
	}
	if (size < 0 || (uint64_t)size > STATE_MAX_FIELD)
		return dump_walk_fail(w, -EBADMSG,
				      "field '%s' (%s): a \"size\" from 0 to "
				      "%u expected in its VM description",
				      st->path, type, STATE_MAX_FIELD);
	/* Array elements share their type string: classified once. */
	if (type != st->int_type) {
		st->int_type = type;
		st->int_class = IN_LIST(type, signed_types)	? 1
				: IN_LIST(type, unsigned_types) ? 2
								: 0;
	}
	if (st->int_class)
		return read_int(w, st, p, (size_t)size, st->int_class == 1,
				type, out);
	if (!strcmp(type, "bool")) {
		if (size < 1)
			return dump_walk_fail(w, -EBADMSG,
					      "field '%s' (bool): a size of "
					      "at least 1 expected, found 0",
					      st->path);
		d = need(w, st, p, (size_t)size, type);
		if (!d)
			return -1;
		*out = json_boolean(d[0] != 0);
		return consume(w, p, (size_t)size);
	}
	if (!strcmp(type, "nullptr")) {
		d = need(w, st, p, (size_t)size, type);
		if (!d)
			return -1;
		if (size != 1 || d[0] != '0')
			return dump_walk_fail(w, -EBADMSG,
					      "field '%s' (nullptr): the "
					      "marker 0x30 expected",
					      st->path);
		*out = json_string("nullptr");
		return consume(w, p, 1);
	}
	/* float64, timer, buffer, unused_buffer, bitmap and every other
	 * type (pci config, virtio, tmp, CPU_Double_U, ...): its bytes. */
	return read_hex(w, st, p, (size_t)size, type, out);
}

/* Fields, then the subsections listed, into @obj. */
static int decode_struct(struct dump_walk *w, struct state *st, ms_stream *p,
			 json_t *desc, json_t *obj)
{
	json_t *fields = json_object_get(desc, "fields");
	json_t *subs = json_object_get(desc, "subsections");
	json_t *f, *jn, *ja, *ji, *v, *arr, *sub, *sobj, *sname;
	char name[MS_COUNTED_STRING_MAX + 1];
	json_int_t n, i;
	const uint8_t *d;
	size_t fi, si, mark, len;
	bool indexed;

	if (!json_is_array(fields))
		return dump_walk_fail(w, -EBADMSG,
				      "'%s': its VM description has no "
				      "\"fields\"",
				      st->path[0] ? st->path : "the device");
	json_array_foreach(fields, fi, f)
	{
		jn = json_object_get(f, "name");
		ja = json_object_get(f, "array_len");
		ji = json_object_get(f, "index");
		if (!json_is_object(f) || !json_is_string(jn))
			return dump_walk_fail(
				w, -EBADMSG,
				"'%s': field %zu of its VM description has no "
				"\"name\"",
				st->path[0] ? st->path : "the device", fi);
		n = json_is_integer(ja) ? json_integer_value(ja) : 1;
		indexed = ja || ji;
		if (n < 0)
			return dump_walk_fail(w, -EBADMSG,
					      "field '%s%s%s': array_len "
					      "%" JSON_INTEGER_FORMAT
					      " is negative",
					      st->path, st->path[0] ? "." : "",
					      json_string_value(jn), n);
		for (i = 0; i < n; i++) {
			mark = path_name(st, json_string_value(jn));
			if (ja)
				path_index(st, i);
			else if (json_is_integer(ji))
				path_index(st, json_integer_value(ji));
			v = NULL;
			if (read_field(w, st, p, f, &v))
				return -1;
			if (!indexed) {
				/* A repeated name replaces the value. */
				if (json_object_set_new(
					    obj, json_string_value(jn), v))
					return nomem(w, st);
			} else {
				arr = json_object_get(obj,
						      json_string_value(jn));
				if (!json_is_array(arr)) {
					arr = json_array();
					if (!arr ||
					    json_object_set_new(
						    obj, json_string_value(jn),
						    arr)) {
						json_decref(v);
						return nomem(w, st);
					}
				}
				if (json_array_append_new(arr, v))
					return nomem(w, st);
			}
			path_pop(st, mark);
		}
	}
	if (!subs)
		return 0;
	if (!json_is_array(subs))
		return dump_walk_fail(w, -EBADMSG,
				      "'%s': \"subsections\" of its VM "
				      "description is not an array",
				      st->path[0] ? st->path : "the device");
	json_array_foreach(subs, si, sub)
	{
		sname = json_object_get(sub, "vmsd_name");
		mark = path_name(st, json_is_string(sname)
					     ? json_string_value(sname)
					     : "subsection");
		d = need(w, st, p, 2, "subsection header (0x05, name)");
		if (!d)
			return -1;
		if (d[0] != MS_REC_SUBSECTION)
			return dump_walk_fail(w, -EBADMSG,
					      "subsection '%s': its header "
					      "(0x05) expected, found 0x%02x",
					      st->path, d[0]);
		len = d[1];
		d = need(w, st, p, 2 + len + 4, "subsection header");
		if (!d)
			return -1;
		memcpy(name, d + 2, len);
		name[len] = '\0';
		if (json_is_string(sname) &&
		    strcmp(name, json_string_value(sname)))
			return dump_walk_fail(w, -EBADMSG,
					      "subsection '%s' expected, "
					      "found '%s'",
					      json_string_value(sname), name);
		if (consume(w, p, 2 + len + 4))
			return -1;
		path_pop(st, mark);
		mark = path_name(st, name);
		sobj = json_object();
		if (!sobj)
			return nomem(w, st);
		if (decode_struct(w, st, p, sub, sobj)) {
			json_decref(sobj);
			return -1;
		}
		if (json_object_set_new(obj, name, sobj))
			return dump_walk_fail(w, -EBADMSG,
					      "subsection '%s': its name is "
					      "not UTF-8",
					      st->path);
		path_pop(st, mark);
	}
	return 0;
}

/* Print one "<idstr> (<id>)": value member of the top-level object. */
static int print_member(struct dump_walk *w, struct state *st,
			const ms_section_hdr *h, json_t *v)
{
	char key[MS_COUNTED_STRING_MAX + 16];
	json_t *k;

	snprintf(key, sizeof(key), "%s (%" PRIu32 ")", h->idstr, h->section_id);
	k = json_string(key);
	if (!k)
		return dump_walk_fail(w, -EBADMSG, "the idstr is not UTF-8");
	fputs(st->nkeys++ ? ",\n    " : "{\n    ", st->out);
	pj_string(st->out, json_string_value(k), json_string_length(k));
	json_decref(k);
	fputs(": ", st->out);
	pj_value(st->out, v, 1);
	return 0;
}

/*
 * The JSON tree of one device section lives in an arena: jansson's
 * allocations go to a bump allocator while the section is decoded and
 * printed, and all of it is dropped at once afterwards (a few large
 * blocks instead of a malloc and a free per field; a third of the run
 * time of 'state' went to them).  The tool is single-threaded, and
 * jansson's allocator is process-wide: it is set for the decoding and put
 * back afterwards.  Frees of arena memory are ignored; others go to free().
 */
#define ARENA_BLOCK (256u * 1024u)
#define ARENA_MAX   64u /* blocks; beyond, allocations go to malloc() */

struct arena {
	char *block[ARENA_MAX];
	size_t nblock; /* blocks allocated */
	size_t cur;    /* block in use */
	size_t used;   /* bytes used in it */
	bool on;
};

static struct arena arena;

static void *arena_malloc(size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (!arena.on || !n || n > ARENA_BLOCK / 8)
		return malloc(n ? n : 1);
	if (arena.nblock && arena.used + n > ARENA_BLOCK) {
		if (arena.cur + 1 >= ARENA_MAX)
			return malloc(n);
		arena.cur++;
		arena.used = 0;
	}
	if (arena.cur >= arena.nblock) {
		arena.block[arena.nblock] = malloc(ARENA_BLOCK);
		if (!arena.block[arena.nblock])
			return malloc(n);
		arena.nblock++;
	}
	arena.used += n;
	return arena.block[arena.cur] + arena.used - n;
}

static void arena_free(void *p)
{
	uintptr_t a = (uintptr_t)p;
	size_t i;

	for (i = 0; i < arena.nblock; i++)
		if (a >= (uintptr_t)arena.block[i] &&
		    a < (uintptr_t)arena.block[i] + ARENA_BLOCK)
			return;
	free(p);
}

/* Start (@on) or end an arena section; ending drops everything in it. */
static void arena_use(bool on)
{
	arena.on = on;
	arena.cur = 0;
	arena.used = 0;
}

static void arena_free_all(void)
{
	size_t i;

	for (i = 0; i < arena.nblock; i++)
		free(arena.block[i]);
	memset(&arena, 0, sizeof(arena));
}

static int state_payload(struct dump_walk *w, const ms_record *rec,
			 ms_stream *p, void *opaque)
{
	struct state *st = opaque;
	const ms_section_hdr *h = &rec->section;
	char key[MS_COUNTED_STRING_MAX + 16];
	json_t *dev, *obj;
	int ret;

	if (rec->type == MS_REC_PART || rec->type == MS_REC_END)
		return dump_walk_fail(w, -ENOTSUP,
				      "a %s of a live section other than RAM "
				      "found: the VM description does not "
				      "describe it",
				      rec->type == MS_REC_PART ? "PART"
							       : "END");
	snprintf(key, sizeof(key), "%" PRIu32 "/%s", h->instance_id, h->idstr);
	dev = json_object_get(st->devices, key);
	if (!dev)
		return dump_walk_fail(w, -ENOTSUP,
				      "device '%s' instance %" PRIu32
				      ": not in the VM description, its "
				      "payload cannot be decoded",
				      h->idstr, h->instance_id);
	st->native = w->profile == MS_PROFILE_NATIVE;
	st->values = 0;
	path_pop(st, 0);
	arena_use(true);
	obj = json_object();
	if (!obj) {
		arena_use(false);
		return dump_walk_fail(w, -ENOMEM, "out of memory");
	}
	ret = decode_struct(w, st, p, dev, obj);
	if (!ret)
		ret = print_member(w, st, h, obj);
	/* Gives back the references the tree holds outside the arena. */
	json_decref(obj);
	arena_use(false);
	return ret ? -EBADMSG : 0;
}

/* RAM: its "section sizes", once its block list was read. */
static json_t *ram_sizes(const struct dump_walk *w)
{
	char val[24];
	json_t *sizes = json_object();
	unsigned i;

	for (i = 0; sizes && i < w->nblk; i++) {
		snprintf(val, sizeof(val), "0x%016" PRIx64, w->blk[i].len);
		json_object_set_new(sizes, w->blk[i].name, json_string(val));
	}
	return sizes;
}

/*
 * -m: open the RAM member and its "memory" object, whose entries are
 * then printed page by page.  The member is opened at the first page or
 * at the end of the START section, whichever comes first, and closed
 * when a record other than the RAM section's own comes.  Pages sent after
 * that (sections interleaved) open the member again, with "memory" only.
 */
static int ram_open(struct dump_walk *w, struct state *st, bool sizes)
{
	char key[MS_COUNTED_STRING_MAX + 16];
	json_t *v;

	snprintf(key, sizeof(key), "%s (%" PRIu32 ")", st->ram_idstr,
		 st->ram_id);
	fputs(st->nkeys++ ? ",\n    " : "{\n    ", st->out);
	pj_string(st->out, key, strlen(key));
	fputs(": {\n", st->out);
	if (sizes) {
		v = ram_sizes(w);
		if (!v)
			return dump_walk_fail(w, -ENOMEM, "out of memory");
		fputs("        \"section sizes\": ", st->out);
		pj_value(st->out, v, 2);
		json_decref(v);
		fputs(",\n", st->out);
	}
	fputs("        \"memory\": {", st->out);
	st->ram_open = true;
	st->mem_n = 0;
	return 0;
}

static void ram_close(struct state *st)
{
	if (!st->ram_open)
		return;
	fputs(st->mem_n ? "\n        }\n    }" : "}\n    }", st->out);
	st->ram_open = false;
}

static int state_page(struct dump_walk *w, unsigned blk, uint64_t addr,
		      enum dump_page_kind kind, const uint8_t *data, size_t len,
		      void *opaque)
{
	static const char digits[] = "0123456789abcdef";
	struct state *st = opaque;
	const char *name = w->blk[blk].name;
	char key[MS_COUNTED_STRING_MAX + 32];
	size_t i, n = 0;
	int ret;

	if (!st->ram_open) {
		ret = ram_open(w, st, !st->mem_n);
		if (ret)
			return ret;
	}
	fputs(st->mem_n++ ? ",\n            " : "\n            ", st->out);
	snprintf(key, sizeof(key), "%s (0x%016" PRIx64 ")", name, addr);
	pj_string(st->out, key, strlen(key));
	if (kind == DUMP_PAGE_ZERO) {
		fputs(": \"Filled with 0x00\"", st->out);
		return 0;
	}
	if (!st->hex) {
		/* "xbzrle " and 3 characters a byte, for the largest of a
		 * page and an XBZRLE record (be16 length). */
		st->hex = malloc(8 + 3 * (size_t)(w->page_size > 65535u
							  ? w->page_size
							  : 65535u));
		if (!st->hex)
			return dump_walk_fail(w, -ENOMEM, "out of memory");
	}
	if (kind == DUMP_PAGE_XBZRLE) {
		memcpy(st->hex, "xbzrle ", 7);
		n = 7;
	}
	for (i = 0; i < len; i++) {
		if (i)
			st->hex[n++] = ' ';
		st->hex[n++] = digits[data[i] >> 4];
		st->hex[n++] = digits[data[i] & 15];
	}
	fputs(": \"", st->out);
	pj_write(st->hex, n, st->out);
	pj_putc('"', st->out);
	return 0;
}

/* -m: note the RAM section, and close its member when another comes. */
static int state_begin(struct dump_walk *w, const ms_record *rec,
		       ms_stream *payload, void *opaque)
{
	struct state *st = opaque;
	bool sec = rec->type >= MS_REC_START && rec->type <= MS_REC_FULL;

	(void)w;
	(void)payload;
	if (rec->type == MS_REC_FOOTER)
		return 0;
	if ((rec->type == MS_REC_START || rec->type == MS_REC_FULL) &&
	    !strcmp(rec->section.idstr, "ram")) {
		ram_close(st);
		st->ram_id = rec->section.section_id;
		snprintf(st->ram_idstr, sizeof(st->ram_idstr), "%s",
			 rec->section.idstr);
		st->mem_n = 0;
		return 0;
	}
	if (!sec || rec->section.section_id != st->ram_id)
		ram_close(st);
	return 0;
}

static void state_record(struct dump_walk *w, const ms_record *rec,
			 uint64_t plen, void *opaque)
{
	struct state *st = opaque;
	json_t *obj, *sizes;

	(void)plen;
	if ((rec->type != MS_REC_START && rec->type != MS_REC_FULL) ||
	    strcmp(rec->section.idstr, "ram"))
		return;
	if (st->memory) {
		/* Opened by a page already, or now, sizes first. */
		if (!st->ram_open && !st->mem_n)
			ram_open(w, st, true);
		return;
	}
	obj = json_object();
	sizes = ram_sizes(w);
	if (!obj || !sizes || json_object_set(obj, "section sizes", sizes))
		goto out;
	print_member(w, st, &rec->section, obj);
out:
	json_decref(sizes);
	json_decref(obj);
}

/* Index the description's devices by "instance_id/name". */
static int state_index(struct state *st, const char *name)
{
	json_t *devs = json_object_get(st->root, "devices"), *d, *n, *i;
	char key[512];
	size_t k;

	if (!json_is_array(devs)) {
		fprintf(stderr,
			PROG ": %s: VM description: no \"devices\" array\n",
			name);
		return DUMP_EXIT_INVALID;
	}
	st->devices = json_object();
	if (!st->devices)
		return err_io(name, "VM description", ENOMEM);
	json_array_foreach(devs, k, d)
	{
		n = json_object_get(d, "name");
		i = json_object_get(d, "instance_id");
		if (!json_is_string(n) || !json_is_integer(i) ||
		    !json_is_array(json_object_get(d, "fields"))) {
			fprintf(stderr,
				PROG ": %s: VM description: device %zu (%s): "
				     "\"name\", \"instance_id\" and \"fields\" "
				     "expected\n",
				name, k,
				json_is_string(n) ? json_string_value(n) : "?");
			return DUMP_EXIT_INVALID;
		}
		snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT "/%s",
			 json_integer_value(i), json_string_value(n));
		if (json_object_set(st->devices, key, d))
			return err_io(name, "VM description", ENOMEM);
	}
	return 0;
}

/* Read a description file (at most MS_DEFAULT_MAX_VMDESC bytes). */
static int read_desc_file(const char *file, char **json, size_t *len)
{
	size_t cap = 65536, n = 0;
	ssize_t r;
	char *b, *nb;
	int fd;

	fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC)
			       : STDIN_FILENO;
	if (fd < 0) {
		fprintf(stderr, PROG ": %s: cannot open: %s\n", file,
			strerror(errno));
		return DUMP_EXIT_IO;
	}
	b = malloc(cap + 1);
	for (;;) {
		if (!b)
			break;
		if (n == cap) {
			if (cap > MS_DEFAULT_MAX_VMDESC) {
				fprintf(stderr,
					PROG ": %s: a VM description of at "
					     "most %u bytes expected\n",
					file, MS_DEFAULT_MAX_VMDESC);
				free(b);
				if (fd != STDIN_FILENO)
					close(fd);
				return DUMP_EXIT_INVALID;
			}
			nb = realloc(b, 2 * cap + 1);
			if (!nb) {
				free(b);
				b = NULL;
				break;
			}
			b = nb;
			cap *= 2;
		}
		r = read(fd, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(b);
			if (fd != STDIN_FILENO)
				close(fd);
			return err_io(file, "reading", errno);
		}
		if (!r)
			break;
		n += (size_t)r;
	}
	if (fd != STDIN_FILENO)
		close(fd);
	if (!b)
		return err_io(file, "reading", ENOMEM);
	b[n] = '\0';
	*json = b;
	*len = n;
	return 0;
}

/*
 * Decode the stream of @in with the description @json to @out; @name
 * names the description in messages.
 */
static int state_decode(struct input *in, const char *name, const char *json,
			size_t len, FILE *out, bool memory)
{
	struct state st;
	struct dump_walk w;
	int ret;

	memset(&st, 0, sizeof(st));
	st.out = out;
	st.memory = memory;
	json_set_alloc_funcs(arena_malloc, arena_free);
	st.root = vmdesc_parse(name, json, len);
	ret = st.root ? state_index(&st, name) : DUMP_EXIT_INVALID;
	if (!ret) {
		memset(&w, 0, sizeof(w));
		w.name = in->name;
		w.fd = in->fd;
		w.strict = true;
		w.progress = dump_progress(out == stdout);
		w.on_payload = state_payload;
		w.on_record = state_record;
		if (memory) {
			w.on_begin = state_begin;
			w.on_page = state_page;
		}
		w.opaque = &st;
		ret = dump_walk_run(&w);
		ram_close(&st);
		if (ret) {
			fflush(out);
			fprintf(stderr, PROG ": %s: %s\n", w.name, w.errmsg);
		} else {
			fputs(st.nkeys ? "\n}\n" : "{}\n", out);
		}
		dump_walk_free(&w);
	}
	json_decref(st.devices);
	json_decref(st.root);
	json_set_alloc_funcs(malloc, free);
	arena_free_all();
	free(st.hex);
	free(st.hbuf);
	return ret;
}

static int state_run(const char *file, const char *desc_file, bool memory)
{
	struct input in;
	char *json = NULL;
	size_t len = 0;
	int ret;

	if (desc_file && !strcmp(desc_file, "-") && !strcmp(file, "-")) {
		fprintf(stderr, PROG ": state: --desc - and FILE - both "
				     "read standard input\n");
		return DUMP_EXIT_USAGE;
	}
	if (desc_file) {
		ret = read_desc_file(desc_file, &json, &len);
		if (ret)
			return ret;
	}
	ret = input_open(&in, file, !desc_file);
	if (ret) {
		free(json);
		return ret;
	}
	if (!desc_file)
		ret = vmdesc_get(&in, &json, &len);
	/* Megabytes of small writes: a larger buffer than stdio's. */
	setvbuf(stdout, NULL, _IOFBF, 1u << 16);
	if (!ret)
		ret = state_decode(&in, desc_file ? desc_file : in.name, json,
				   len, stdout, memory);
	free(json);
	input_close(&in);
	return ret;
}

int dump_state_write(const char *name, int fd, const char *json, size_t len,
		     FILE *out)
{
	struct input in = {.fd = fd, .name = name, .close = false};

	return state_decode(&in, name, json, len, out, false);
}

/*
 * Command lines.
 */

static int cmd_usage(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

static int cmd_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG " %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nUsage: " PROG " %s%s FILE\n", cmd,
		strcmp(cmd, "state") ? "" : " [-m] [--desc DESC]");
	return DUMP_EXIT_USAGE;
}

static int finish(int ret)
{
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, PROG ": writing the output: %s\n",
			strerror(errno));
		return DUMP_EXIT_IO;
	}
	return ret;
}

int dump_state_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"desc", required_argument, NULL, 'D'},
		{"memory", no_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *desc = NULL;
	bool memory = false;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "hm", longopts, NULL)) != -1) {
		switch (opt) {
		case 'D':
			desc = optarg;
			break;
		case 'm':
			memory = true;
			break;
		case 'h':
			printf("Usage: " PROG " state [-m] [--desc DESC] FILE\n"
			       "Decode every device section with the VM "
			       "description (the stream's trailer, or DESC)\n"
			       "and print it as JSON, as QEMU's "
			       "analyze-migration.py -d state does.\n"
			       "  -m, --memory  RAM page contents too, "
			       "streamed\n");
			return DUMP_EXIT_OK;
		default:
			return cmd_usage("state", "%s", "bad option");
		}
	}
	if (optind >= argc)
		return cmd_usage("state", "%s", "missing FILE");
	if (optind + 1 < argc)
		return cmd_usage("state", "unexpected argument '%s'",
				 argv[optind + 1]);
	return finish(state_run(argv[optind], desc, memory));
}

int dump_desc_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			printf("Usage: " PROG " desc FILE\n"
			       "Print the stream's VM description (its JSON "
			       "trailer), indented by 4.\n");
			return DUMP_EXIT_OK;
		default:
			return cmd_usage("desc", "%s", "bad option");
		}
	}
	if (optind >= argc)
		return cmd_usage("desc", "%s", "missing FILE");
	if (optind + 1 < argc)
		return cmd_usage("desc", "unexpected argument '%s'",
				 argv[optind + 1]);
	return finish(desc_run(argv[optind]));
}
