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

/*
 * The output: written by one thread, so stdio without its locks where the
 * C library offers that, and counted, so that what a stream makes us
 * write is capped (--max-output).  Past the cap nothing more is written
 * and @over is set; the caller turns that into the error.
 */
#if defined(__GLIBC__)
#define out_fwrite(p, n, f) fwrite_unlocked(p, 1, n, f)
#define out_fputc(c, f)	    fputc_unlocked(c, f)
#else
#define out_fwrite(p, n, f) fwrite(p, 1, n, f)
#define out_fputc(c, f)	    fputc(c, f)
#endif

struct pj {
	FILE *f;
	uint64_t n;   /* bytes written */
	uint64_t max; /* most bytes allowed, UINT64_MAX for no cap */
	bool over;    /* a write was refused */
};

static void pj_write(struct pj *o, const void *p, size_t n)
{
	if (o->over || n > o->max - o->n) {
		o->over = true;
		return;
	}
	o->n += n;
	out_fwrite(p, n, o->f);
}

static void pj_putc(int c, struct pj *o)
{
	if (o->over || o->n == o->max) {
		o->over = true;
		return;
	}
	o->n++;
	out_fputc(c, o->f);
}

static void pj_puts(struct pj *o, const char *s)
{
	pj_write(o, s, strlen(s));
}

static void pj_printf(struct pj *o, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

static void pj_printf(struct pj *o, const char *fmt, ...)
{
	char b[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	if (n > 0)
		pj_write(o, b,
			 (size_t)n < sizeof(b) ? (size_t)n : sizeof(b) - 1);
}

/* Bounds on what a (possibly hostile) description makes us build. */
#define STATE_MAX_FIELD (64u * 1024u * 1024u) /* bytes of one field */
#define STATE_MAX_INT	64u		      /* bytes of an integer */
#define PATH_MAX_LEN	512u
#define SCAN_CHUNK	(64u * 1024u)
#define READ_CHUNK	4096u

/*
 * The caps of a state run over the whole stream, each set by the option
 * named in its refusal: values decoded (--max-values), bytes written
 * beyond STATE_OUT_PER_IN a byte of input read (--max-output), and bytes
 * held by the parsed VM description and the decoded state of the section
 * at hand (--max-memory).  The real captures stay far below the defaults
 * (q35-dev: 87,000 values, 3 MB of output).
 */
#define STATE_DEF_VALUES (4ull * 1024 * 1024)
#define STATE_DEF_OUTPUT (256ull * 1024 * 1024)
#define STATE_OUT_PER_IN 16u
#define STATE_DEF_MEMORY (128ull * 1024 * 1024)

struct state_caps {
	uint64_t max_values;
	uint64_t max_output;
	uint64_t max_memory;
};

static const struct state_caps state_defaults = {
	STATE_DEF_VALUES, STATE_DEF_OUTPUT, STATE_DEF_MEMORY};

/*
 * Memory the trees take: jansson and the decoder allocate through
 * mem_alloc(), which counts what is held (with the allocator's overhead,
 * MEM_OVERHEAD a block) and refuses what would pass the cap.
 */
#define MEM_HDR	     16u
#define MEM_OVERHEAD 32u

static struct {
	uint64_t used; /* bytes held */
	uint64_t base; /* held when the cap was set: another decoder's */
	uint64_t max;  /* the cap, UINT64_MAX for none */
	bool over;     /* an allocation was refused for it */
} mem = {0, 0, UINT64_MAX, false};

static void *mem_alloc(size_t n)
{
	uint64_t mine = mem.used > mem.base ? mem.used - mem.base : 0;
	unsigned char *p;

	if ((uint64_t)n + MEM_OVERHEAD > mem.max - mine) {
		mem.over = true;
		return NULL;
	}
	p = malloc(n + MEM_HDR);
	if (!p)
		return NULL;
	memcpy(p, &n, sizeof(n));
	mem.used += (uint64_t)n + MEM_OVERHEAD;
	return p + MEM_HDR;
}

static void mem_free(void *q)
{
	unsigned char *p = q;
	size_t n;

	if (!p)
		return;
	p -= MEM_HDR;
	memcpy(&n, p, sizeof(n));
	mem.used -= (uint64_t)n + MEM_OVERHEAD;
	free(p);
}

/* Cap what jansson allocates from now on (@max, 0: no cap); what is held
 * already (the walker's decoder, while extract writes state.json) is not
 * counted. */
static void mem_start(uint64_t max)
{
	mem.base = mem.used;
	mem.max = max ? max : UINT64_MAX;
	mem.over = false;
}

/*
 * JSON output, formatted as Python's json.dumps(indent=4): ", " never
 * appears, ": " separates keys, non-ASCII and control characters are
 * escaped as \uXXXX (lowercase hex).
 */

static void pj_indent(struct pj *f, int level)
{
	static const char spaces[] = "                                "
				     "                                ";
	size_t n = (size_t)level * 4;

	while (n) {
		size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;

		pj_write(f, spaces, k);
		n -= k;
	}
}

/*
 * The index of the first byte of @p (@n bytes) that is not part of valid
 * UTF-8 (no overlong forms, surrogates or code points past U+10FFFF), or
 * @n.  Names from the stream are checked with it: state refuses what is
 * not UTF-8 rather than guess an encoding.
 */
static size_t utf8_check(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k, len;
	unsigned char lo, hi;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		lo = 0x80;
		hi = 0xbf;
		if (p[i] >= 0xc2 && p[i] <= 0xdf)
			len = 2;
		else if (p[i] >= 0xe0 && p[i] <= 0xef)
			len = 3;
		else if (p[i] >= 0xf0 && p[i] <= 0xf4)
			len = 4;
		else
			return i;
		if (p[i] == 0xe0)
			lo = 0xa0;
		else if (p[i] == 0xed)
			hi = 0x9f;
		else if (p[i] == 0xf0)
			lo = 0x90;
		else if (p[i] == 0xf4)
			hi = 0x8f;
		if (n - i < len || p[i + 1] < lo || p[i + 1] > hi)
			return i;
		for (k = 2; k < len; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return i;
		i += len;
	}
	return n;
}

/* Decode one UTF-8 sequence (valid: jansson or utf8_check() checked it). */
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

static void pj_string(struct pj *f, const char *s, size_t n)
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
			pj_write(f, p + i, l - i);
			i = l;
			continue;
		}
		l = utf8_next(p + i, n - i, &cp);
		i += l;
		switch (cp) {
		case '"':
			pj_puts(f, "\\\"");
			continue;
		case '\\':
			pj_puts(f, "\\\\");
			continue;
		case '\n':
			pj_puts(f, "\\n");
			continue;
		case '\r':
			pj_puts(f, "\\r");
			continue;
		case '\t':
			pj_puts(f, "\\t");
			continue;
		case '\b':
			pj_puts(f, "\\b");
			continue;
		case '\f':
			pj_puts(f, "\\f");
			continue;
		default:
			break;
		}
		if (cp >= 0x20 && cp < 0x7f) {
			pj_putc((int)cp, f);
		} else if (cp < 0x10000) {
			pj_printf(f, "\\u%04x", cp);
		} else {
			cp -= 0x10000;
			pj_printf(f, "\\u%04x\\u%04x", 0xd800 | (cp >> 10),
				  0xdc00 | (cp & 0x3ff));
		}
	}
	pj_putc('"', f);
}

/* A double as Python's repr() writes it. */
static void pj_real(struct pj *f, double v)
{
	char buf[64], digits[32], *e;
	int prec, exp, nd, i;

	if (isnan(v)) {
		pj_puts(f, "NaN");
		return;
	}
	if (isinf(v)) {
		pj_puts(f, v < 0 ? "-Infinity" : "Infinity");
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
		pj_putc(digits[0], f);
		if (nd > 1)
			pj_printf(f, ".%s", digits + 1);
		pj_printf(f, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
	} else if (exp < 0) {
		pj_puts(f, "0.");
		for (i = 0; i < -exp - 1; i++)
			pj_putc('0', f);
		pj_puts(f, digits);
	} else {
		for (i = 0; i <= exp; i++)
			pj_putc(i < nd ? digits[i] : '0', f);
		pj_putc('.', f);
		if (nd > exp + 1)
			pj_puts(f, digits + exp + 1);
		else
			pj_putc('0', f);
	}
}

static void pj_value(struct pj *f, json_t *v, int level)
{
	const char *key;
	json_t *val;
	size_t i, n;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if (!json_object_size(v)) {
			pj_puts(f, "{}");
			return;
		}
		pj_puts(f, "{\n");
		n = 0;
		json_object_foreach(v, key, val)
		{
			if (n++)
				pj_puts(f, ",\n");
			pj_indent(f, level + 1);
			pj_string(f, key, strlen(key));
			pj_puts(f, ": ");
			pj_value(f, val, level + 1);
		}
		pj_putc('\n', f);
		pj_indent(f, level);
		pj_putc('}', f);
		return;
	case JSON_ARRAY:
		if (!json_array_size(v)) {
			pj_puts(f, "[]");
			return;
		}
		pj_puts(f, "[\n");
		json_array_foreach(v, i, val)
		{
			if (i)
				pj_puts(f, ",\n");
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
		pj_printf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return;
	case JSON_REAL:
		pj_real(f, json_real_value(v));
		return;
	case JSON_TRUE:
		pj_puts(f, "true");
		return;
	case JSON_FALSE:
		pj_puts(f, "false");
		return;
	case JSON_NULL:
		pj_puts(f, "null");
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
int dump_vmdesc_candidate(int fd, char **json, uint32_t *len, uint64_t *pos)
{
	uint8_t magic[4];
	struct stat st;
	int ret;

	if (fstat(fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode) || pread_all(fd, magic, 4, 0) ||
	    be32(magic) != MS_QEMU_MAGIC)
		return 0;
	ret = trailer_find(fd, (uint64_t)st.st_size, pos, len);
	if (ret <= 0)
		return ret;
	*json = malloc((size_t)*len + 1);
	if (!*json)
		return -ENOMEM;
	ret = pread_all(fd, *json, *len, *pos + 5);
	if (ret) {
		free(*json);
		*json = NULL;
		return ret;
	}
	(*json)[*len] = '\0';
	return 1;
}

static int vmdesc_get(struct input *in, char **json, size_t *len, uint64_t *at)
{
	struct dump_walk w;
	uint64_t pos = 0;
	uint32_t l = 0;
	/* The stream's start: a mapped file's device stream is not at 0. */
	off_t start = lseek(in->fd, 0, SEEK_CUR);
	int ret;

	*at = 0;
	ret = dump_vmdesc_candidate(in->fd, json, &l, &pos);
	if (ret < 0)
		return err_io(in->name, "reading the trailer", -ret);
	if (ret == 1) {
		/* The decoding walk must reach this very trailer. */
		*at = pos + 1;
		*len = l;
		return 0;
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
		if (start < 0 || lseek(in->fd, start, SEEK_SET) < 0)
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

/* Parse the VM description; NULL with the error in @msg. */
static json_t *vmdesc_parse(const char *json, size_t len, char *msg, size_t cap)
{
	json_error_t e;
	json_t *root;

	root = json_loadb(json, len, 0, &e);
	if (!root && mem.over) {
		snprintf(msg, cap,
			 "VM description: its %zu bytes of JSON need more "
			 "than %" PRIu64 " bytes of memory parsed (the cap, "
			 "set by --max-memory)",
			 len, mem.max);
		return NULL;
	}
	if (!root) {
		snprintf(msg, cap,
			 "VM description: invalid JSON at line %d, column %d "
			 "(byte %d): %s",
			 e.line, e.column, e.position, e.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		snprintf(msg, cap, "VM description: a JSON object expected");
		json_decref(root);
		return NULL;
	}
	return root;
}

/*
 * state: the decoder.
 */

struct state {
	json_t *root;	 /* the description */
	json_t *devices; /* "instance_id/name" -> device */
	struct pj out;
	uint64_t nkeys;	 /* sections printed */
	uint64_t values; /* values decoded in the stream */
	struct state_caps caps;
	uint64_t in_bytes; /* input read, at least (for --max-output) */
	bool native;
	/* An error found where the walk cannot be stopped (on_record): it
	 * stops at the next record. */
	struct dump_error fail;
	const ms_record *rec; /* in on_record: the record */
	bool opaque;	      /* the payload just read was not decoded */
	struct opaque_tab *otab;
	uint64_t nopaque; /* sections shown as opaque */
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

static int consume(struct dump_walk *w, struct state *st, ms_stream *p,
		   size_t n)
{
	st->in_bytes += n;
	return dump_walk_skip(w, p, n);
}

static int count_value(struct dump_walk *w, struct state *st)
{
	if (++st->values > st->caps.max_values)
		return dump_walk_fail(w, -E2BIG,
				      "field '%s': more than %" PRIu64
				      " values decoded in the stream (the "
				      "cap, set by --max-values)",
				      st->path, st->caps.max_values);
	return 0;
}

static int st_fail(struct dump_walk *w, struct state *st, int err,
		   const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 4, 5)))
#endif
	;

static int nomem(struct dump_walk *w, struct state *st)
{
	if (mem.over)
		return st_fail(w, st, -E2BIG,
			       "field '%s': the decoded state needs "
			       "more than %" PRIu64 " bytes of memory "
			       "(the cap, set by --max-memory)",
			       st->path, mem.max);
	return st_fail(w, st, -ENOMEM, "field '%s': out of memory", st->path);
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
		mem_free(st->hbuf);
		st->hcap = 0;
		st->hbuf = mem_alloc(3 * size + 1);
		if (!st->hbuf)
			return nomem(w, st);
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
		if (consume(w, st, p, c))
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
	if (consume(w, st, p, size))
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
		return consume(w, st, p, 1 + len);
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
		return consume(w, st, p, (size_t)size);
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
		return consume(w, st, p, 1);
	}
	/* float64, timer, buffer, unused_buffer, bitmap and every other
	 * type (pci config, virtio, tmp, CPU_Double_U, ...): its bytes. */
	return read_hex(w, st, p, (size_t)size, type, out);
}

/*
 * The @n values of field @f into @obj.  The work per value does not
 * depend on the name's length: the name is measured and looked up once.
 */
static int decode_field(struct dump_walk *w, struct state *st, ms_stream *p,
			json_t *obj, json_t *f, json_int_t n, bool indexed)
{
	json_t *jn = json_object_get(f, "name");
	json_t *ja = json_object_get(f, "array_len");
	json_t *ji = json_object_get(f, "index");
	const char *name = json_string_value(jn);
	size_t nlen = json_string_length(jn), mark, base;
	json_t *v, *arr = NULL;
	json_int_t i;

	if (indexed && n) {
		arr = json_object_get(obj, name);
		if (!json_is_array(arr)) {
			arr = json_array();
			if (!arr || json_object_set_new(obj, name, arr))
				return nomem(w, st);
		}
	}
	base = st->plen;
	if (base)
		path_add(st, ".", 1);
	path_add(st, name, nlen);
	mark = st->plen;
	for (i = 0; i < n; i++) {
		if (ja)
			path_index(st, i);
		else if (json_is_integer(ji))
			path_index(st, json_integer_value(ji));
		v = NULL;
		if (read_field(w, st, p, f, &v))
			return -1;
		/* A repeated name replaces the value. */
		if (indexed ? json_array_append_new(arr, v)
			    : json_object_set_new(obj, name, v))
			return nomem(w, st);
		path_pop(st, mark);
	}
	path_pop(st, base);
	return 0;
}

/* Fields, then the subsections listed, into @obj. */
static int decode_struct(struct dump_walk *w, struct state *st, ms_stream *p,
			 json_t *desc, json_t *obj)
{
	json_t *fields = json_object_get(desc, "fields");
	json_t *subs = json_object_get(desc, "subsections");
	json_t *f, *jn, *ja, *ji, *sub, *sobj, *sname;
	char name[MS_COUNTED_STRING_MAX + 1];
	json_int_t n;
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
		if (decode_field(w, st, p, obj, f, n, indexed))
			return -1;
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
		if (strlen(name) != len)
			return dump_walk_fail(w, -EBADMSG,
					      "subsection '%s': its name has a "
					      "NUL byte",
					      st->path);
		if (json_is_string(sname) &&
		    strcmp(name, json_string_value(sname)))
			return dump_walk_fail(w, -EBADMSG,
					      "subsection '%s' expected, "
					      "found '%s'",
					      json_string_value(sname), name);
		if (consume(w, st, p, 2 + len + 4))
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

/*
 * Errors of the decoder.  From a payload (st->rec NULL) they go to the
 * walker, which names the offset and the section; from on_record, which
 * cannot stop the walk, they are kept in st->fail with the record's
 * offset and stop it at the next record (state_begin()).
 */
static int st_fail(struct dump_walk *w, struct state *st, int err,
		   const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!st->rec)
		return dump_walk_fail(w, err, "%s", msg);
	dump_error_set(&st->fail, err, st->rec->offset,
		       st->rec->section.section_id, st->rec->section.idstr,
		       "%s", msg);
	return err;
}

/* A name from the stream, @what, must be UTF-8 to be printed. */
static int check_name(struct dump_walk *w, struct state *st, const char *what,
		      const char *name)
{
	size_t n = strlen(name), bad = utf8_check(name, n);

	if (bad == n)
		return 0;
	return st_fail(w, st, -EILSEQ,
		       "%s: UTF-8 expected, found byte 0x%02x at position %zu "
		       "(state writes JSON strings and does not guess an "
		       "encoding)",
		       what, (unsigned char)name[bad], bad);
}

/* The output allowed so far: --max-output plus STATE_OUT_PER_IN a byte
 * of input read. */
static void out_allow(struct state *st)
{
	uint64_t extra = st->in_bytes > UINT64_MAX / STATE_OUT_PER_IN
				 ? UINT64_MAX
				 : st->in_bytes * STATE_OUT_PER_IN;

	st->out.max = extra > UINT64_MAX - st->caps.max_output
			      ? UINT64_MAX
			      : st->caps.max_output + extra;
}

static int out_check(struct dump_walk *w, struct state *st)
{
	if (!st->out.over)
		return 0;
	return st_fail(
		w, st, -E2BIG,
		"the output reaches %" PRIu64 " bytes for %" PRIu64
		" bytes of input (the cap, set by --max-output, is %" PRIu64
		" bytes plus %u a byte of input)",
		st->out.n, st->in_bytes, st->caps.max_output, STATE_OUT_PER_IN);
}

/* Start one "<idstr> (<id>)": member of the top-level object. */
static int open_member(struct dump_walk *w, struct state *st,
		       const ms_section_hdr *h)
{
	char key[MS_COUNTED_STRING_MAX + 16];

	if (check_name(w, st, "the section's idstr", h->idstr))
		return -1;
	snprintf(key, sizeof(key), "%s (%" PRIu32 ")", h->idstr, h->section_id);
	out_allow(st);
	pj_puts(&st->out, st->nkeys++ ? ",\n    " : "{\n    ");
	pj_string(&st->out, key, strlen(key));
	pj_puts(&st->out, ": ");
	return 0;
}

/* Print one "<idstr> (<id>)": value member of the top-level object; the
 * walker's decoder (no output) prints nothing. */
static int print_member(struct dump_walk *w, struct state *st,
			const ms_section_hdr *h, json_t *v)
{
	if (!st->out.f)
		return 0;
	if (open_member(w, st, h))
		return -1;
	pj_value(&st->out, v, 1);
	return out_check(w, st);
}

/*
 * The JSON tree of one device section lives in an arena: jansson's
 * allocations go to a bump allocator while the section is decoded and
 * printed, and all of it is dropped at once afterwards (a few large
 * blocks instead of a malloc and a free per field; a third of the run
 * time of 'state' went to them).  The tool is single-threaded, and
 * jansson's allocator is process-wide: it is set for the decoding and put
 * back afterwards.  Frees of arena memory are ignored; others go to
 * mem_free().  Both count in the memory cap.
 */
#define ARENA_BLOCK (256u * 1024u)
#define ARENA_MAX   64u /* blocks; beyond, allocations go to mem_alloc() */

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
		return mem_alloc(n ? n : 1);
	if (arena.nblock && arena.used + n > ARENA_BLOCK) {
		if (arena.cur + 1 >= ARENA_MAX)
			return mem_alloc(n);
		arena.cur++;
		arena.used = 0;
	}
	if (arena.cur >= arena.nblock) {
		arena.block[arena.nblock] = mem_alloc(ARENA_BLOCK);
		if (!arena.block[arena.nblock])
			return mem_alloc(n);
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
	mem_free(p);
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
		mem_free(arena.block[i]);
	memset(&arena, 0, sizeof(arena));
}

/* Jansson's allocator for our trees: counted and capped (mem_alloc()),
 * in the arena while a section is decoded. */
struct hooks {
	json_malloc_t m;
	json_free_t f;
};

static void hooks_on(struct hooks *h)
{
	json_get_alloc_funcs(&h->m, &h->f);
	json_set_alloc_funcs(arena_malloc, arena_free);
}

static void hooks_off(const struct hooks *h)
{
	json_set_alloc_funcs(h->m, h->f);
}

static int state_payload(struct dump_walk *w, const ms_record *rec,
			 ms_stream *p, void *opaque)
{
	struct state *st = opaque;
	const ms_section_hdr *h = &rec->section;
	char key[MS_COUNTED_STRING_MAX + 16];
	json_t *dev, *obj;
	int ret;

	/* Iterative sections other than RAM (block migration, dirty
	 * bitmaps) are not in the description: shown as opaque.  A device
	 * (FULL) it lacks means it does not describe this stream. */
	snprintf(key, sizeof(key), "%" PRIu32 "/%s", h->instance_id, h->idstr);
	dev = rec->type == MS_REC_PART || rec->type == MS_REC_END
		      ? NULL
		      : json_object_get(st->devices, key);
	if (!dev && rec->type == MS_REC_FULL)
		return dump_walk_fail(w, -ENOTSUP,
				      "device '%s' instance %" PRIu32
				      ": not in the VM description, its "
				      "payload cannot be decoded",
				      h->idstr, h->instance_id);
	if (!dev) {
		st->opaque = true;
		return DUMP_PAYLOAD_OPAQUE;
	}
	st->native = w->profile == MS_PROFILE_NATIVE;
	path_pop(st, 0);
	arena_use(true);
	obj = json_object();
	if (!obj) {
		arena_use(false);
		return nomem(w, st);
	}
	ret = decode_struct(w, st, p, dev, obj);
	if (!ret)
		ret = print_member(w, st, h, obj);
	/* Gives back the references the tree holds outside the arena. */
	json_decref(obj);
	arena_use(false);
	return ret ? -EBADMSG : 0;
}

/*
 * Opaque sections, by section id: what they are and how many bytes their
 * records carried.  A FULL is printed at once, a START at its END (or at
 * the end of the stream, if it has none).  An open-addressing table: ids
 * are at most MS_MAX_SECTIONS.
 */
struct opaque_sec {
	bool used, open;
	uint32_t id, instance_id, version_id;
	uint64_t records, bytes;
	char idstr[MS_COUNTED_STRING_MAX + 1];
};

struct opaque_tab {
	size_t cap, n; /* slots (a power of 2), used */
	struct opaque_sec *s;
};

static struct opaque_sec *opaque_get(struct state *st, uint32_t id)
{
	struct opaque_tab *t = st->otab;
	struct opaque_sec *ns;
	size_t i, j, cap;

	if (!t) {
		t = st->otab = mem_alloc(sizeof(*t));
		if (!t)
			return NULL;
		memset(t, 0, sizeof(*t));
	}
	if (2 * (t->n + 1) > t->cap) {
		cap = t->cap ? 2 * t->cap : 16;
		ns = mem_alloc(cap * sizeof(*ns));
		if (!ns)
			return NULL;
		memset(ns, 0, cap * sizeof(*ns));
		for (i = 0; i < t->cap; i++) {
			if (!t->s[i].used)
				continue;
			for (j = t->s[i].id * 2654435761u & (cap - 1);
			     ns[j].used; j = (j + 1) & (cap - 1))
				;
			ns[j] = t->s[i];
		}
		mem_free(t->s);
		t->s = ns;
		t->cap = cap;
	}
	for (i = id * 2654435761u & (t->cap - 1); t->s[i].used;
	     i = (i + 1) & (t->cap - 1))
		if (t->s[i].id == id)
			return &t->s[i];
	t->s[i].used = true;
	t->s[i].id = id;
	t->n++;
	return &t->s[i];
}

static void opaque_free(struct state *st)
{
	if (st->otab)
		mem_free(st->otab->s);
	mem_free(st->otab);
	st->otab = NULL;
}

static int opaque_print(struct dump_walk *w, struct state *st,
			const struct opaque_sec *o)
{
	ms_section_hdr h;
	json_t *v;
	int ret;

	memset(&h, 0, sizeof(h));
	h.section_id = o->id;
	memcpy(h.idstr, o->idstr, sizeof(h.idstr));
	st->nopaque++;
	v = json_pack("{s:s, s:I, s:I, s:I, s:I, s:b}", "opaque",
		      "not in the VM description", "instance_id",
		      (json_int_t)o->instance_id, "version_id",
		      (json_int_t)o->version_id, "records",
		      (json_int_t)o->records, "bytes", (json_int_t)o->bytes,
		      "ended", !o->open);
	if (!v)
		return nomem(w, st);
	ret = print_member(w, st, &h, v);
	json_decref(v);
	return ret;
}

/* One record of an opaque section, @plen bytes of payload. */
static int opaque_record(struct dump_walk *w, struct state *st,
			 const ms_record *rec, uint64_t plen)
{
	const ms_section_hdr *h = &rec->section;
	struct opaque_sec *o = opaque_get(st, h->section_id);

	if (!o)
		return nomem(w, st);
	if (rec->type == MS_REC_START || rec->type == MS_REC_FULL) {
		o->instance_id = h->instance_id;
		o->version_id = h->version_id;
		memcpy(o->idstr, h->idstr, sizeof(o->idstr));
		o->records = 0;
		o->bytes = 0;
		o->open = rec->type == MS_REC_START;
	} else if (!o->idstr[0]) {
		/* A PART or END of a section started as a described one. */
		memcpy(o->idstr, h->idstr, sizeof(o->idstr));
		o->open = true;
	}
	o->records++;
	o->bytes += plen;
	st->in_bytes += plen;
	if (rec->type == MS_REC_FULL || rec->type == MS_REC_END) {
		o->open = false;
		return opaque_print(w, st, o);
	}
	return 0;
}

/* At the end of the stream: the opaque sections not ended. */
static int opaque_finish(struct dump_walk *w, struct state *st)
{
	size_t i;

	for (i = 0; st->otab && i < st->otab->cap; i++)
		if (st->otab->s[i].used && st->otab->s[i].open &&
		    opaque_print(w, st, &st->otab->s[i]))
			return -1;
	return 0;
}

/* RAM: its "section sizes", once its block list was read. */
static int ram_sizes(struct dump_walk *w, struct state *st, json_t **out)
{
	char val[24], what[64];
	json_t *sizes = json_object();
	unsigned i;

	*out = NULL;
	if (!sizes)
		return nomem(w, st);
	for (i = 0; i < w->nblk; i++) {
		snprintf(what, sizeof(what), "RAM block %u's name", i);
		if (check_name(w, st, what, w->blk[i].name)) {
			json_decref(sizes);
			return -1;
		}
		snprintf(val, sizeof(val), "0x%016" PRIx64, w->blk[i].len);
		if (json_object_set_new(sizes, w->blk[i].name,
					json_string(val))) {
			json_decref(sizes);
			return nomem(w, st);
		}
	}
	*out = sizes;
	return 0;
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
	ms_section_hdr h;
	json_t *v = NULL;

	memset(&h, 0, sizeof(h));
	h.section_id = st->ram_id;
	memcpy(h.idstr, st->ram_idstr, sizeof(h.idstr));
	if (sizes && ram_sizes(w, st, &v))
		return -1;
	if (open_member(w, st, &h)) {
		json_decref(v);
		return -1;
	}
	pj_puts(&st->out, "{\n");
	if (sizes) {
		pj_puts(&st->out, "        \"section sizes\": ");
		pj_value(&st->out, v, 2);
		json_decref(v);
		pj_puts(&st->out, ",\n");
	}
	pj_puts(&st->out, "        \"memory\": {");
	st->ram_open = true;
	st->mem_n = 0;
	return out_check(w, st);
}

static void ram_close(struct state *st)
{
	if (!st->ram_open)
		return;
	pj_puts(&st->out, st->mem_n ? "\n        }\n    }" : "}\n    }");
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

	/* A page record is 8 bytes at least, and its data. */
	st->in_bytes += 8 + (data ? len : 0);
	if (!st->ram_open && ram_open(w, st, !st->mem_n))
		return -EBADMSG;
	out_allow(st);
	pj_puts(&st->out, st->mem_n++ ? ",\n            " : "\n            ");
	snprintf(key, sizeof(key), "%s (0x%016" PRIx64 ")", name, addr);
	pj_string(&st->out, key, strlen(key));
	if (kind == DUMP_PAGE_ZERO) {
		pj_puts(&st->out, ": \"Filled with 0x00\"");
		return out_check(w, st) ? -E2BIG : 0;
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
	pj_puts(&st->out, ": \"");
	pj_write(&st->out, st->hex, n);
	pj_putc('"', &st->out);
	return out_check(w, st) ? -E2BIG : 0;
}

/* Before each record: stop at an error of on_record; -m: note the RAM
 * section, and close its member when another comes. */
static int state_begin(struct dump_walk *w, const ms_record *rec,
		       ms_stream *payload, void *opaque)
{
	struct state *st = opaque;
	bool sec = rec->type >= MS_REC_START && rec->type <= MS_REC_FULL;

	(void)w;
	(void)payload;
	st->opaque = false;
	st->in_bytes += 16; /* the record's head, at least 1 byte */
	if (st->fail.code)
		return st->fail.code;
	if (!st->memory || rec->type == MS_REC_FOOTER)
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

	if (st->fail.code)
		return;
	st->rec = rec;
	if (st->opaque) {
		opaque_record(w, st, rec, plen);
	} else if ((rec->type != MS_REC_START && rec->type != MS_REC_FULL) ||
		   strcmp(rec->section.idstr, "ram")) {
		/* Decoded (or not a section). */
	} else if (st->memory) {
		/* Opened by a page already, or now, sizes first. */
		if (!st->ram_open && !st->mem_n)
			ram_open(w, st, true);
	} else if (!ram_sizes(w, st, &sizes)) {
		obj = json_object();
		if (!obj)
			json_decref(sizes);
		if (!obj || json_object_set_new(obj, "section sizes", sizes))
			nomem(w, st);
		else
			print_member(w, st, &rec->section, obj);
		json_decref(obj);
	}
	st->opaque = false;
	st->rec = NULL;
}

/*
 * desc
 */

static int desc_run(const char *file, uint64_t max_memory)
{
	struct hooks hk;
	char msg[512];
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
		hooks_on(&hk);
		mem_start(max_memory);
		root = vmdesc_parse(json, len, msg, sizeof(msg));
		free(json);
		if (root) {
			struct pj o = {.f = stdout, .max = UINT64_MAX};

			pj_value(&o, root, 0);
			pj_putc('\n', &o);
			json_decref(root);
		} else {
			fprintf(stderr, PROG ": %s: %s\n", in.name, msg);
			ret = DUMP_EXIT_INVALID;
		}
		hooks_off(&hk);
		arena_free_all();
	}
	input_close(&in);
	return ret;
}

/* Index the description's devices by "instance_id/name"; a negative
 * errno with the error in @msg. */
static int state_index(struct state *st, char *msg, size_t cap)
{
	json_t *devs = json_object_get(st->root, "devices"), *d, *n, *i;
	char key[512];
	size_t k;

	if (!json_is_array(devs)) {
		snprintf(msg, cap, "VM description: no \"devices\" array");
		return -EBADMSG;
	}
	st->devices = json_object();
	if (!st->devices)
		goto out_nomem;
	json_array_foreach(devs, k, d)
	{
		n = json_object_get(d, "name");
		i = json_object_get(d, "instance_id");
		if (!json_is_string(n) || !json_is_integer(i) ||
		    !json_is_array(json_object_get(d, "fields"))) {
			snprintf(msg, cap,
				 "VM description: device %zu (%s): \"name\", "
				 "\"instance_id\" and \"fields\" expected",
				 k,
				 json_is_string(n) ? json_string_value(n)
						   : "?");
			return -EBADMSG;
		}
		snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT "/%s",
			 json_integer_value(i), json_string_value(n));
		if (json_object_set(st->devices, key, d))
			goto out_nomem;
	}
	return 0;
out_nomem:
	if (!mem.over) {
		snprintf(msg, cap, "VM description: out of memory");
		return -ENOMEM;
	}
	snprintf(msg, cap,
		 "VM description: its index needs more than %" PRIu64
		 " bytes of memory (the cap, set by --max-memory)",
		 mem.max);
	return -E2BIG;
}

/* The description parsed and indexed into @st, with the hooks on. */
static int state_load(struct state *st, const char *json, size_t len, char *msg,
		      size_t cap)
{
	mem_start(st->caps.max_memory);
	st->root = vmdesc_parse(json, len, msg, cap);
	if (!st->root)
		return mem.over ? -E2BIG : -EBADMSG;
	return state_index(st, msg, cap);
}

/* What the decoder holds, with the hooks on. */
static void state_clear(struct state *st)
{
	opaque_free(st);
	json_decref(st->devices);
	json_decref(st->root);
	st->devices = NULL;
	st->root = NULL;
	mem_free(st->hbuf);
	st->hbuf = NULL;
	st->hcap = 0;
	free(st->hex);
	st->hex = NULL;
	arena_free_all();
}

static int exit_of(int err)
{
	return err == -ENOMEM || err == -EIO ? DUMP_EXIT_IO : DUMP_EXIT_INVALID;
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

/* The end of a walk: the opaque sections not ended, and the error. */
static int state_end(struct state *st, struct dump_walk *w, int ret)
{
	static const ms_record end = {.type = MS_REC_EOF};
	ms_record rec = end;

	ram_close(st);
	/* Errors now are the stream end's. */
	rec.offset = w->end;
	st->rec = &rec;
	if (!ret && !st->fail.code && w->vmdesc_at && !w->have_vmdesc)
		st_fail(w, st, -EBADMSG,
			"the stream ends without the VM description trailer "
			"at offset 0x%" PRIx64 " that decoded it",
			w->vmdesc_at - 1);
	if (!ret && !st->fail.code)
		opaque_finish(w, st);
	st->rec = NULL;
	fflush(st->out.f);
	if (st->fail.code) {
		fprintf(stderr, PROG ": %s: %s\n", w->name, st->fail.msg);
		return exit_of(st->fail.code);
	}
	if (ret) {
		fprintf(stderr, PROG ": %s: %s\n", w->name, w->errmsg);
		return ret;
	}
	st->out.max = UINT64_MAX;
	pj_puts(&st->out, st->nkeys ? "\n}\n" : "{}\n");
	if (st->nopaque)
		fprintf(stderr,
			PROG ": %s: %" PRIu64 " section%s not in the VM "
			     "description, shown as opaque\n",
			w->name, st->nopaque, st->nopaque > 1 ? "s" : "");
	return 0;
}

/*
 * Decode the stream of @in with the description @json to @out; @name
 * names the description in messages.
 */
static int state_decode(struct input *in, const char *name, const char *json,
			size_t len, uint64_t at, FILE *out, bool memory,
			const struct state_caps *caps)
{
	struct state st;
	struct dump_walk w;
	struct hooks hk;
	char msg[512];
	int ret;

	memset(&st, 0, sizeof(st));
	st.out.f = out;
	st.caps = *caps;
	st.out.max = caps->max_output;
	st.memory = memory;
	hooks_on(&hk);
	ret = state_load(&st, json, len, msg, sizeof(msg));
	if (ret) {
		fprintf(stderr, PROG ": %s: %s\n", name, msg);
		ret = exit_of(ret);
	} else {
		memset(&w, 0, sizeof(w));
		w.name = in->name;
		w.fd = in->fd;
		w.strict = true;
		w.vmdesc_at = at;
		w.progress = dump_progress(out == stdout);
		w.on_payload = state_payload;
		w.on_record = state_record;
		w.on_begin = state_begin;
		if (memory)
			w.on_page = state_page;
		w.opaque = &st;
		ret = state_end(&st, &w, dump_walk_run(&w));
		dump_walk_free(&w);
	}
	state_clear(&st);
	hooks_off(&hk);
	return ret;
}

static int state_run(const char *file, const char *desc_file, bool memory,
		     const struct state_caps *caps)
{
	struct input in;
	char *json = NULL;
	uint64_t at = 0;
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
		ret = vmdesc_get(&in, &json, &len, &at);
	/* Megabytes of small writes: a larger buffer than stdio's. */
	setvbuf(stdout, NULL, _IOFBF, 1u << 16);
	if (!ret)
		ret = state_decode(&in, desc_file ? desc_file : in.name, json,
				   len, at, stdout, memory, caps);
	free(json);
	input_close(&in);
	return ret;
}

int dump_state_write(const char *name, int fd, const char *json, size_t len,
		     FILE *out)
{
	struct input in = {.fd = fd, .name = name, .close = false};

	return state_decode(&in, name, json, len, 0, out, false,
			    &state_defaults);
}

/*
 * The walker's decoder for streams without footers: the state decoder
 * with no output.
 */
struct dump_desc {
	struct state st;
};

int dump_desc_new(struct dump_desc **out, const char *json, size_t len,
		  char *msg, size_t cap)
{
	struct dump_desc *d = calloc(1, sizeof(*d));
	struct hooks hk;
	int ret;

	if (!d) {
		snprintf(msg, cap, "out of memory");
		return -ENOMEM;
	}
	d->st.caps = state_defaults;
	d->st.out.max = UINT64_MAX;
	hooks_on(&hk);
	ret = state_load(&d->st, json, len, msg, cap);
	if (ret)
		state_clear(&d->st);
	hooks_off(&hk);
	if (ret) {
		free(d);
		return ret;
	}
	*out = d;
	return 0;
}

int dump_desc_payload(struct dump_walk *w, const ms_record *rec, ms_stream *p,
		      void *opaque)
{
	struct dump_desc *d = opaque;
	struct hooks hk;
	int ret;

	hooks_on(&hk);
	ret = state_payload(w, rec, p, &d->st);
	hooks_off(&hk);
	return ret;
}

void dump_desc_free(struct dump_desc *d)
{
	struct hooks hk;

	if (!d)
		return;
	hooks_on(&hk);
	state_clear(&d->st);
	hooks_off(&hk);
	free(d);
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
		strcmp(cmd, "state") ? " [--max-memory B]"
				     : " [-m] [--desc DESC] [--max-values N] "
				       "[--max-output B] [--max-memory B]");
	return DUMP_EXIT_USAGE;
}

static const char cap_syntax[] =
	"a positive integer expected, with an optional K, M, G or T suffix "
	"(powers of 1024)";

/* A cap from the command line: N, or N with a K/M/G/T suffix. */
static int parse_cap(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'T':
		shift += 10;
		/* fallthrough */
	case 'G':
		shift += 10;
		/* fallthrough */
	case 'M':
		shift += 10;
		/* fallthrough */
	case 'K':
		shift += 10;
		end++;
		break;
	default:
		break;
	}
	if (*end || !v || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

/* The cap of option --@opt of command @cmd, from optarg. */
static int cap_arg(const char *cmd, const char *opt, uint64_t *out)
{
	if (!parse_cap(optarg, out))
		return 0;
	return cmd_usage(cmd, "--%s %s: %s", opt, optarg, cap_syntax);
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
		{"max-values", required_argument, NULL, 'V'},
		{"max-output", required_argument, NULL, 'O'},
		{"max-memory", required_argument, NULL, 'M'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct state_caps caps = state_defaults;
	const char *desc = NULL;
	bool memory = false;
	int opt;

	optind = 0; /* a fresh getopt: main() parsed the command line before */
	while ((opt = getopt_long(argc, argv, "hm", longopts, NULL)) != -1) {
		switch (opt) {
		case 'D':
			desc = optarg;
			break;
		case 'm':
			memory = true;
			break;
		case 'V':
			if (cap_arg("state", "max-values", &caps.max_values))
				return DUMP_EXIT_USAGE;
			break;
		case 'O':
			if (cap_arg("state", "max-output", &caps.max_output))
				return DUMP_EXIT_USAGE;
			break;
		case 'M':
			if (cap_arg("state", "max-memory", &caps.max_memory))
				return DUMP_EXIT_USAGE;
			break;
		case 'h':
			printf("Usage: " PROG " state [-m] [--desc DESC] FILE\n"
			       "Decode every device section with the VM "
			       "description (the stream's trailer, or DESC)\n"
			       "and print it as JSON, as QEMU's "
			       "analyze-migration.py -d state does.\n"
			       "  -m, --memory  RAM page contents too, "
			       "streamed\n"
			       "  --max-values N    values decoded in the "
			       "stream (4Mi)\n"
			       "  --max-output B    bytes written, plus 16 a "
			       "byte of input (256MiB)\n"
			       "  --max-memory B    bytes of the parsed "
			       "description and a section's state (128MiB)\n");
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
	return finish(state_run(argv[optind], desc, memory, &caps));
}

int dump_desc_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"max-memory", required_argument, NULL, 'M'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t max_memory = STATE_DEF_MEMORY;
	int opt;

	optind = 0; /* a fresh getopt: main() parsed the command line before */
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'M':
			if (cap_arg("desc", "max-memory", &max_memory))
				return DUMP_EXIT_USAGE;
			break;
		case 'h':
			printf("Usage: " PROG " desc [--max-memory B] FILE\n"
			       "Print the stream's VM description (its JSON "
			       "trailer), indented by 4.\n"
			       "  --max-memory B    bytes of the parsed "
			       "description (128MiB)\n");
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
	return finish(desc_run(argv[optind], max_memory));
}
