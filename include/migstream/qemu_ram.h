/* SPDX-License-Identifier: MIT */
/*
 * migstream/qemu_ram.h: the payload grammar of QEMU's "ram" section, for
 * programs that write or read guest RAM in QEMU's own format (the dump
 * tool, the migrate demo, tests).  Constants only: the library itself
 * moves "ram" payloads as opaque bytes.
 *
 * A "ram" payload is a sequence of records.  Each record starts with a
 * be64 whose bits below the target page size are MS_QEMU_RAM_* flags and
 * whose upper bits are an address: the page's offset in its RAM block,
 * or, with MS_QEMU_RAM_MEM_SIZE, the total RAM size.
 *
 * - MS_QEMU_RAM_MEM_SIZE (in the START section): the block list follows,
 *   one entry per RAM block until their lengths add up to the total: u8
 *   idstr length, the idstr (no NUL), be64 used length (and be64 block
 *   address when QEMU's x-ignore-shared capability is on).
 * - MS_QEMU_RAM_PAGE: a page of data follows.  MS_QEMU_RAM_ZERO: one fill
 *   byte follows (0 for a zero page).  Without MS_QEMU_RAM_CONTINUE, the
 *   block's idstr (u8 length, bytes) comes between the be64 and the data;
 *   with it, the page is in the same block as the previous one.
 * - MS_QEMU_RAM_EOS: the end of the section's payload.
 *
 * The page size is MS_QEMU_RAM_PAGE_SIZE unless the stream's
 * configuration section sets "configuration/target-page-bits" (from
 * MS_QEMU_RAM_MIN_PAGE_BITS to MS_QEMU_RAM_MAX_PAGE_BITS).
 */
#ifndef MIGSTREAM_QEMU_RAM_H
#define MIGSTREAM_QEMU_RAM_H

/* The section's idstr and the version_id QEMU writes for it. */
#define MS_QEMU_RAM_IDSTR   "ram"
#define MS_QEMU_RAM_VERSION 4u

/* The target page size when the stream does not say (x86, arm64 4K). */
#define MS_QEMU_RAM_PAGE_SIZE 4096u
/* The target page bits a configuration section may give. */
#define MS_QEMU_RAM_MIN_PAGE_BITS 10u
#define MS_QEMU_RAM_MAX_PAGE_BITS 16u

/*
 * Record flags, in the low bits of each record's be64 (QEMU's
 * RAM_SAVE_FLAG_* values).
 */
/* Obsolete: a full RAM block; never written by current QEMU. */
#define MS_QEMU_RAM_FULL 0x001u
/* A page of one fill byte (a zero page). */
#define MS_QEMU_RAM_ZERO 0x002u
/* The total RAM size and the block list. */
#define MS_QEMU_RAM_MEM_SIZE 0x004u
/* A page of data. */
#define MS_QEMU_RAM_PAGE 0x008u
/* The end of the section's payload. */
#define MS_QEMU_RAM_EOS 0x010u
/* The same block as the previous page: no idstr follows. */
#define MS_QEMU_RAM_CONTINUE 0x020u
/* An XBZRLE-encoded page: u8 encoding, be16 length, the data. */
#define MS_QEMU_RAM_XBZRLE 0x040u
/* A hook of the transport (RDMA); no payload of its own. */
#define MS_QEMU_RAM_HOOK 0x080u
/* A zlib-compressed page: be32 length, the deflate data. */
#define MS_QEMU_RAM_COMPRESS_PAGE 0x100u
/* A multifd synchronisation point; no payload. */
#define MS_QEMU_RAM_MULTIFD_FLUSH 0x200u

/* The only XBZRLE encoding byte QEMU writes. */
#define MS_QEMU_RAM_XBZRLE_ENCODING 0x01u

#endif /* MIGSTREAM_QEMU_RAM_H */
