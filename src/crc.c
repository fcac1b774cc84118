/* SPDX-License-Identifier: MIT */
/*
 * CRC-32 (IEEE 802.3, as zlib's crc32() and gzip compute it) for the
 * native profile.
 *
 * Long inputs go to zlib, or where configure found Intel's ISA-L to its
 * folding implementation (PCLMULQDQ, AVX-512, chosen at run time), which
 * computes the same value many times faster.  ISA-L's crc32_gzip_refl()
 * has zlib's conventions: the same reflected polynomial, the same pre- and
 * post-inversion, and a previous result as the initial value continues
 * the CRC (0 starts one).  This was checked against zlib for every length
 * from 0 to 10000 with initial values 0, 0xffffffff and random ones, and
 * for chained calls.
 *
 * Short inputs, which every native record has (its index, its header and
 * the 4-byte CRC that the stream's running CRC takes in), cost either
 * library a fixed 20 to 40 ns per call.  They take a table-driven loop
 * here instead, eight bytes per step ("slicing-by-8"), which finishes the
 * 4 to 14 bytes in a few nanoseconds.
 */
#include "config.h"

#include <zlib.h>
#ifdef HAVE_ISAL
#include <isa-l/crc.h>
#endif

#include "internal.h"

/* Inputs shorter than this take the table; measured cross-over points. */
#ifdef HAVE_ISAL
#define CRC_SHORT 16
#else
#define CRC_SHORT 256
#endif

/*
 * The tables: tab[k][n] is the CRC register after byte n followed by k
 * zero bytes, with the register starting at 0.  That is linear in the bits
 * of n, so each entry is the XOR of the columns for n's set bits, and the
 * eight columns of each table (the entries for 1, 2, 4, ... 128) are all
 * that is written out.  tab[0] is zlib's table for polynomial 0xedb88320.
 */
#define CRC_LIN(n, c0, c1, c2, c3, c4, c5, c6, c7)                             \
	(((n)&1 ? c0 : 0) ^ ((n)&2 ? c1 : 0) ^ ((n)&4 ? c2 : 0) ^              \
	 ((n)&8 ? c3 : 0) ^ ((n)&16 ? c4 : 0) ^ ((n)&32 ? c5 : 0) ^            \
	 ((n)&64 ? c6 : 0) ^ ((n)&128 ? c7 : 0))
#define CRC_T0(n)                                                              \
	CRC_LIN(n, 0x77073096u, 0xee0e612cu, 0x076dc419u, 0x0edb8832u,         \
		0x1db71064u, 0x3b6e20c8u, 0x76dc4190u, 0xedb88320u)
#define CRC_T1(n)                                                              \
	CRC_LIN(n, 0x191b3141u, 0x32366282u, 0x646cc504u, 0xc8d98a08u,         \
		0x4ac21251u, 0x958424a2u, 0xf0794f05u, 0x3b83984bu)
#define CRC_T2(n)                                                              \
	CRC_LIN(n, 0x01c26a37u, 0x0384d46eu, 0x0709a8dcu, 0x0e1351b8u,         \
		0x1c26a370u, 0x384d46e0u, 0x709a8dc0u, 0xe1351b80u)
#define CRC_T3(n)                                                              \
	CRC_LIN(n, 0xb8bc6765u, 0xaa09c88bu, 0x8f629757u, 0xc5b428efu,         \
		0x5019579fu, 0xa032af3eu, 0x9b14583du, 0xed59b63bu)
#define CRC_T4(n)                                                              \
	CRC_LIN(n, 0x3d6029b0u, 0x7ac05360u, 0xf580a6c0u, 0x30704bc1u,         \
		0x60e09782u, 0xc1c12f04u, 0x58f35849u, 0xb1e6b092u)
#define CRC_T5(n)                                                              \
	CRC_LIN(n, 0xcb5cd3a5u, 0x4dc8a10bu, 0x9b914216u, 0xec53826du,         \
		0x03d6029bu, 0x07ac0536u, 0x0f580a6cu, 0x1eb014d8u)
#define CRC_T6(n)                                                              \
	CRC_LIN(n, 0xa6770bb4u, 0x979f1129u, 0xf44f2413u, 0x33ef4e67u,         \
		0x67de9cceu, 0xcfbd399cu, 0x440b7579u, 0x8816eaf2u)
#define CRC_T7(n)                                                              \
	CRC_LIN(n, 0xccaa009eu, 0x4225077du, 0x844a0efau, 0xd3e51bb5u,         \
		0x7cbb312bu, 0xf9766256u, 0x299dc2edu, 0x533b85dau)
#define CRC_R8(T, n)                                                           \
	T(n), T(n + 1), T(n + 2), T(n + 3), T(n + 4), T(n + 5), T(n + 6),      \
		T(n + 7)
#define CRC_R64(T, n)                                                          \
	CRC_R8(T, n), CRC_R8(T, n + 8), CRC_R8(T, n + 16), CRC_R8(T, n + 24),  \
		CRC_R8(T, n + 32), CRC_R8(T, n + 40), CRC_R8(T, n + 48),       \
		CRC_R8(T, n + 56)
#define CRC_R256(T)                                                            \
	{                                                                      \
		CRC_R64(T, 0), CRC_R64(T, 64), CRC_R64(T, 128),                \
			CRC_R64(T, 192)                                        \
	}

static const uint32_t crc_tab[8][256] = {
	CRC_R256(CRC_T0), CRC_R256(CRC_T1), CRC_R256(CRC_T2), CRC_R256(CRC_T3),
	CRC_R256(CRC_T4), CRC_R256(CRC_T5), CRC_R256(CRC_T6), CRC_R256(CRC_T7),
};

/* Four bytes as a little-endian value (the reflected CRC's order). */
static uint32_t load_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Slicing-by-8, for short inputs. */
static uint32_t crc32_short(uint32_t crc, const uint8_t *p, size_t len)
{
	crc = ~crc;
	while (len >= 8) {
		uint32_t lo = crc ^ load_le32(p);
		uint32_t hi = load_le32(p + 4);

		crc = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
		      crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^
		      crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
		      crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	if (len >= 4) {
		uint32_t v = crc ^ load_le32(p);

		crc = crc_tab[3][v & 0xff] ^ crc_tab[2][(v >> 8) & 0xff] ^
		      crc_tab[1][(v >> 16) & 0xff] ^ crc_tab[0][v >> 24];
		p += 4;
		len -= 4;
	}
	while (len--)
		crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

uint32_t ms__crc32(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (len < CRC_SHORT)
		return crc32_short(crc, p, len);
#ifdef HAVE_ISAL
	/* ISA-L does not write through its non-const pointer. */
	return crc32_gzip_refl(crc, (uint8_t *)(uintptr_t)p, (uint64_t)len);
#else
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
