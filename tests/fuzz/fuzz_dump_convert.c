/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: migstream-dump convert (tools/dump-convert.c), both ways.
 *
 * Byte 0 of the input picks the direction (bit 0: to native, else to
 * QEMU) and a compression level for native output (bits 1-3, 0 for
 * none); the rest is the stream, written to a file in a private
 * directory, converted to another file there.
 *
 * Invariants: no crash, no leak; a status of 0 (converted), 1 (invalid)
 * or 3; no output left after a refusal; after a conversion, the output
 * walks (strictly, when the input's walk had no warnings) to the same
 * records as the input, record for record (type, section id, payload
 * length and CRC-32); and a QEMU stream converted to native converts back
 * to the same bytes.
 */
#include "config.h"

#include "fuzz-dump.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fc_in[4200], fc_out[4200], fc_back[4200];

static int fc_convert(const char *to, unsigned level, const char *in,
		      const char *out)
{
	char lvl[32];
	char *argv[6];
	int argc = 0, quiet, ret;

	argv[argc++] = (char *)"convert";
	argv[argc++] = (char *)"--to";
	argv[argc++] = (char *)to;
	if (level) {
		snprintf(lvl, sizeof(lvl), "--compress=%u", level);
		argv[argc++] = lvl;
	}
	argv[argc++] = (char *)in;
	argv[argc++] = (char *)out;
	quiet = fd_quiet();
	ret = dump_convert_main(argc, argv);
	fd_loud(quiet);
	return ret;
}

static bool fc_exists(const char *path)
{
	char tmp[4300];

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	return !access(path, F_OK) || !access(tmp, F_OK);
}

/* The converted output reads back as the input's records. */
static void fc_compare(ms_profile to)
{
	struct dump_walk wi, wo;
	struct fd_list li, lo;
	size_t i;
	int ri, ro, quiet;

	quiet = fd_quiet();
	ri = fd_walk_list(fc_in, false, false, &wi, &li);
	FD_ASSERT(ri == DUMP_EXIT_OK);
	ro = fd_walk_list(fc_out, !wi.warnings, false, &wo, &lo);
	fd_loud(quiet);
	if (ro != DUMP_EXIT_OK)
		fprintf(stderr, "converted output: %s\n", wo.errmsg);
	FD_ASSERT(ro == DUMP_EXIT_OK);
	FD_ASSERT(wo.profile == to);
	FD_ASSERT(lo.n == li.n);
	for (i = 0; i < li.n; i++) {
		FD_ASSERT(lo.v[i].type == li.v[i].type);
		FD_ASSERT(lo.v[i].section_id == li.v[i].section_id);
		FD_ASSERT(lo.v[i].plen == li.v[i].plen);
		FD_ASSERT(lo.v[i].crc == li.v[i].crc);
		FD_ASSERT(lo.v[i].name_len == li.v[i].name_len);
	}
	dump_walk_free(&wi);
	dump_walk_free(&wo);
	free(li.v);
	free(lo.v);
}

/*
 * Whether a counted string of the QEMU stream @data holds a NUL: the
 * reader's records end such an idstr or machine name there (as QEMU's
 * strcmp() does), so that the bytes after it cannot come back.
 */
static bool fc_has_nul_name(const uint8_t *data, size_t size)
{
	struct dump_walk w;
	struct fd_list l;
	bool nul = false;
	size_t i, o;
	int quiet = fd_quiet();

	fd_walk_list(fc_in, false, false, &w, &l);
	fd_loud(quiet);
	for (i = 0; i < l.n && !nul; i++) {
		o = (size_t)l.v[i].offset;
		if (l.v[i].type == MS_REC_START || l.v[i].type == MS_REC_FULL)
			nul = o + 6 <= size && data[o + 5] != l.v[i].name_len;
		else if (l.v[i].type == MS_REC_CONFIGURATION)
			nul = o + 5 <= size && ((uint32_t)data[o + 1] << 24 |
						(uint32_t)data[o + 2] << 16 |
						(uint32_t)data[o + 3] << 8 |
						data[o + 4]) != l.v[i].name_len;
	}
	dump_walk_free(&w);
	free(l.v);
	return nul;
}

/* A QEMU input converted to native comes back byte for byte. */
static void fc_round_trip(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size + 1);
	FILE *f;
	size_t n;

	FD_ASSERT(buf != NULL);
	FD_ASSERT(fc_convert("qemu", 0, fc_out, fc_back) == DUMP_EXIT_OK);
	f = fopen(fc_back, "rb");
	FD_ASSERT(f != NULL);
	n = fread(buf, 1, size + 1, f);
	fclose(f);
	FD_ASSERT((n == size && !memcmp(buf, data, size)) ||
		  fc_has_nul_name(data, size));
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = fz_dir("fuzz_dump_convert");
	bool native;
	unsigned level;
	int ret;

	if (size < 1)
		return 0;
	native = data[0] & 1;
	level = (data[0] >> 1) & 7;
	if (level > 0 && !native)
		level = 0;
	snprintf(fc_in, sizeof(fc_in), "%s/in", dir);
	snprintf(fc_out, sizeof(fc_out), "%s/out", dir);
	snprintf(fc_back, sizeof(fc_back), "%s/back", dir);
	FD_ASSERT(fz_empty_dir(dir, false));
	fz_write_file(fc_in, data + 1, size - 1);
	ret = fc_convert(native ? "native" : "qemu", level, fc_in, fc_out);
	FD_ASSERT(ret == DUMP_EXIT_OK || ret == DUMP_EXIT_INVALID ||
		  ret == DUMP_EXIT_IO);
	if (ret) {
		FD_ASSERT(!fc_exists(fc_out));
	} else {
		fc_compare(native ? MS_PROFILE_NATIVE : MS_PROFILE_QEMU);
		if (native && size > 5 && !memcmp(data + 1, "QEVM", 4))
			fc_round_trip(data + 1, size - 1);
	}
	FD_ASSERT(fz_empty_dir(dir, false));
	return 0;
}
