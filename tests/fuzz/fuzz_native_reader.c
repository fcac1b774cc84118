/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the pull parser in migstream's native profile.  See
 * fuzz-common.h for the layout of an input.  Option bits of the mode:
 * bit 3 a VM-description limit of a few bytes, bit 4 profile detection
 * (MS_PROFILE_AUTO) instead of MS_PROFILE_NATIVE, bit 5 checksums
 * recomputed before parsing, so that mutations of the structure are not
 * all stopped by the CRC-32s.
 */
#include <zlib.h>

#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t native_magic[8] = {0x89, 'M',  'S',  'N',
					'\r', '\n', 0x1a, '\n'};

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/*
 * Recompute, in place, the header checksum, every record's CRC-32 (when
 * the header asks for them) and the trailer's count, size and chain, as
 * the writer would have.  Stops at the first record that does not fit.
 */
static void fix_checksums(uint8_t *d, size_t n)
{
	uint32_t chain = 0, crc, len;
	uint8_t seed[8];
	uint64_t index = 0;
	size_t off = 16, tail;
	bool crc_on;

	if (n < 16 || memcmp(d, native_magic, 8))
		return;
	put_be32(d + 12, (uint32_t)crc32(0, d, 12));
	crc_on = d[11] & 0x01;
	tail = crc_on ? 4 : 0;
	while (n - off >= 6 + tail) {
		len = (uint32_t)d[off + 2] << 24 | (uint32_t)d[off + 3] << 16 |
		      (uint32_t)d[off + 4] << 8 | d[off + 5];
		if (len > n - off - 6 - tail)
			break;
		if (d[off] == 0x7f && len == 20) {
			put_be64(d + off + 6, index);
			put_be64(d + off + 14, off);
			put_be32(d + off + 22, crc_on ? chain : 0);
		}
		if (crc_on) {
			put_be64(seed, index);
			crc = (uint32_t)crc32(0, seed, 8);
			crc = (uint32_t)crc32(crc, d + off, 6 + len);
			put_be32(d + off + 6 + len, crc);
			chain = (uint32_t)crc32(chain, d + off + 6 + len, 4);
		}
		index++;
		off += 6 + len + tail;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = NULL;
	struct fz f;

	if (!fz_init(&f, data, size, MS_PROFILE_NATIVE))
		return 0;
	if (f.mode & FZ_MODE_OPT_A)
		f.copts.max_vmdesc = 1 + data[1] % FZ_SMALL_VMDESC;
	if (f.mode & FZ_MODE_OPT_B) {
		f.profile = MS_PROFILE_AUTO;
		f.copts.profile = MS_PROFILE_AUTO;
	}
	if ((f.mode & FZ_MODE_OPT_C) && f.size) {
		copy = malloc(f.size);
		if (!copy)
			return 0;
		memcpy(copy, f.data, f.size);
		fix_checksums(copy, f.size);
		f.data = copy;
	}
	fz_run(&f);
	free(copy);
	return 0;
}
