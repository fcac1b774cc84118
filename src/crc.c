/* SPDX-License-Identifier: MIT */
/*
 * CRC-32 (IEEE 802.3, as zlib's crc32() and gzip compute it) for the
 * native profile.  zlib is the portable implementation; where configure
 * found Intel's ISA-L, its folding implementation (PCLMULQDQ, AVX-512,
 * chosen at run time) computes the same value many times faster.
 *
 * ISA-L's crc32_gzip_refl() has zlib's conventions: the same reflected
 * polynomial, the same pre- and post-inversion, and a previous result as
 * the initial value continues the CRC (0 starts one).  This was checked
 * against zlib for every length from 0 to 10000 with initial values 0,
 * 0xffffffff and random ones, and for chained calls.
 */
#include "config.h"

#include <zlib.h>
#ifdef HAVE_ISAL
#include <isa-l/crc.h>
#endif

#include "internal.h"

uint32_t ms__crc32(uint32_t crc, const void *buf, size_t len)
{
#ifdef HAVE_ISAL
	/* ISA-L does not write through its non-const pointer. */
	return crc32_gzip_refl(crc, (uint8_t *)(uintptr_t)buf, (uint64_t)len);
#else
	const Bytef *p = buf;

	/* zlib takes the length as uInt: feed it in pieces that fit. */
	while (len) {
		uInt n = len > 0x40000000u ? 0x40000000u : (uInt)len;

		crc = (uint32_t)crc32(crc, p, n);
		p += n;
		len -= n;
	}
	return crc;
#endif
}
