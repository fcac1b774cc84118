/* SPDX-License-Identifier: MIT */
/*
 * Every case group of migstream-bench, in the order they run and print.
 *
 * BENCH_CASES(X) calls X(FAMILY, NAME) once per group: the group is
 * bench_group_NAME, defined in bench/case-FAMILY.c.  A group is a baseline
 * and the subjects (the reported cases) measured against it; the comment
 * after each entry names its subjects and its baseline.  To add a case,
 * define its group in the file of its family (or a new bench/case-*.c
 * added to bench/local.mk) and list it here.
 */
#ifndef MS_BENCH_CASES_H
#define MS_BENCH_CASES_H

#include "bench.h"

#define BENCH_CASES(X)                                                         \
	/* mem-put-4k, iov-4k vs memcpy */                                     \
	X(stream, mem_put_4k)                                                  \
	/* mem-put-4k-grow vs malloc+memcpy */                                 \
	X(stream, mem_put_4k_grow)                                             \
	/* mem-put-be64, mem-put-be64-single vs bswap-store */                 \
	X(stream, mem_put_be64)                                                \
	/* fd-pipe-32k, fd-pipe-32k-copy vs write */                           \
	X(stream, fd_pipe_32k)                                                 \
	/* fd-devnull-4k vs write */                                           \
	X(stream, fd_devnull_4k)                                               \
	/* native-crc-4k vs no-checksum */                                     \
	X(codec, native_crc_4k)                                                \
	/* native-crc-4k-hot vs no-checksum */                                 \
	X(codec, native_crc_4k_hot)                                            \
	/* native-zlib-4k vs raw-deflate */                                    \
	X(codec, native_zlib_4k)                                               \
	/* native-zlib-4k-l6 vs raw-deflate */                                 \
	X(codec, native_zlib_4k_l6)                                            \
	/* qemu-frame vs unframed */                                           \
	X(codec, qemu_frame)                                                   \
	/* vfu-socket-32k-v1 vs memcpy-callbacks-v1 */                         \
	X(vfu, vfu_socket_32k_v1)                                              \
	/* vfu-socket-32k-v2 vs memcpy-callbacks-v2 */                         \
	X(vfu, vfu_socket_32k_v2)                                              \
	/* vfu-inproc-32k vs memcpy-via-32k (information) */                   \
	X(vfu, vfu_inproc_32k)                                                 \
	/* dump-verify vs read */                                              \
	X(dump, dump_verify)                                                   \
	/* dump-verify-small vs read */                                        \
	X(dump, dump_verify_small)                                             \
	/* demo-migrate, demo-migrate-qemu vs plain-tcp-loop */                \
	X(demo, demo_migrate)                                                  \
	/* ram-tcp-qemu, ram-tcp vs writev-pages */                            \
	X(ram, ram_tcp)                                                        \
	/* ram-zlib-2ch vs ram-zlib-1ch */                                     \
	X(ram, ram_zlib)                                                       \
	/* ram-vs-qemu vs qemu-7.2-migrate (skipped under --quick) */          \
	X(ram, ram_vs_qemu)                                                    \
	/* ram-zero-scan vs memcmp-zero-page */                                \
	X(ram, ram_zero_scan)                                                  \
	/* snap-resume-mmap vs stream-restore */                               \
	X(snap, snap_resume_mmap)                                              \
	/* snap-restore-read vs cat */                                         \
	X(snap, snap_restore_read)                                             \
	/* snap-save-mapped vs stream-save (information) */                    \
	X(snap, snap_save_mapped)

#define BENCH_DECLARE_GROUP(family, name)                                      \
	extern const struct group bench_group_##name;
BENCH_CASES(BENCH_DECLARE_GROUP)
#undef BENCH_DECLARE_GROUP

#endif
