/* SPDX-License-Identifier: MIT */
/*
 * What the benchmark's runner (bench/migstream-bench.c) and its cases
 * (bench/case-*.c, listed in bench/cases.h) share: the configuration, the
 * state a case sets up, the description of a case group, and a few
 * helpers (bench/util.c).
 */
#ifndef MS_BENCH_H
#define MS_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <zlib.h>

#include <migstream/migstream.h>

#include "case-demo.h"
#include "case-dump.h"

#define KIB ((size_t)1024)
#define MIB (1024 * KIB)

/* Source data that puts and baselines cycle through. */
#define SRC_SIZE (1 * MIB)
/* Chunk size of the 4 KiB cases. */
#define CHUNK_4K (4 * KIB)

#define MAX_SUBJECTS 2
#define MAX_REPS     101

struct vfu_dev;

/**
 * struct bench_ram_config - Sizes of ms_ram's cases (bench/case-ram.c).
 * @bytes: guest RAM migrated per repetition by ram-tcp, ram-zlib and
 *         ram-vs-qemu (which runs only with 1 GiB).
 * @zero_pct: percentage of those pages that are zeros.
 * @zero_bytes: zero pages scanned per repetition by ram-zero-scan.
 */
struct bench_ram_config {
	size_t bytes;
	unsigned zero_pct;
	size_t zero_bytes;
};

/**
 * bench_ram_config_init() - Sizes for a full run or a --quick one.
 * @c: receives the sizes.
 * @quick: whether the run is --quick.
 *
 * A full run migrates 1 GiB and scans 1 GiB, a quick one 32 MiB and
 * 16 MiB (and skips ram-vs-qemu).
 */
static inline void bench_ram_config_init(struct bench_ram_config *c, bool quick)
{
	c->bytes = quick ? (size_t)32 << 20 : (size_t)1 << 30;
	c->zero_pct = 50;
	c->zero_bytes = quick ? (size_t)16 << 20 : (size_t)1 << 30;
}

/**
 * struct bench_snap_config - Sizes of the mapped snapshot cases.
 * @bytes: bytes of the machine's RAM.
 * @zero_pct: percentage of its pages that are zeros.
 * @rate: guest page writes per second of the running-guest saves whose
 *        file sizes snap-save-mapped prints.
 */
struct bench_snap_config {
	size_t bytes;
	unsigned zero_pct;
	unsigned rate;
};

/**
 * bench_snap_config_init() - Sizes for a full run or a --quick one.
 * @c: receives the sizes.
 * @quick: whether the run is --quick.
 *
 * A full run snapshots 1 GiB with half the pages zero, a quick one
 * 32 MiB.
 */
static inline void bench_snap_config_init(struct bench_snap_config *c,
					  bool quick)
{
	c->bytes = quick ? (size_t)32 << 20 : (size_t)1 << 30;
	c->zero_pct = 50;
	c->rate = 100000;
}

/**
 * struct bench_ext - Configuration of the cases in bench/case-*.c.
 * @dump: the dump tool's cases.
 * @demo: the end-to-end demo's cases.
 * @ram: ms_ram's cases.
 */
struct bench_ext {
	struct bench_dump_config dump;
	struct bench_demo_config demo;
	struct bench_ram_config ram;
	struct bench_snap_config snap;
};

/**
 * struct bench_config - What to run and how much of it.
 * @json: print one JSON object instead of one line per case.
 * @reps: timed repetitions per case (after one untimed warm-up).
 * @mem_bytes: bytes put per repetition by the memory and iovec cases.
 * @be64_passes: passes of BE64_VALUES values per repetition.
 * @pipe_bytes: bytes written per repetition by the pipe cases.
 * @null_bytes: bytes written per repetition by the /dev/null case.
 * @crc_bytes: page bytes written per repetition by native-crc-4k.
 * @zlib_bytes: page bytes compressed per repetition by native-zlib-4k at
 *              level 1 (a quarter of them at level 6).
 * @frame_passes: passes of FRAME_SECTIONS sections per repetition of
 *                qemu-frame.
 */
struct bench_config {
	bool json;
	int reps;
	size_t mem_bytes;
	size_t be64_passes;
	size_t pipe_bytes;
	size_t null_bytes;
	size_t crc_bytes;
	size_t zlib_bytes;
	size_t frame_passes;
	size_t vfu_bytes;
	bool quick;
	struct bench_ext ext;
};

/**
 * struct bench - Buffers and descriptors shared by the runs of a case.
 * @cfg: the configuration.
 * @units: bytes (or values) one repetition moves; set by the case setup.
 * @src: SRC_SIZE bytes of pattern, the data every put takes.
 * @dst: @cfg->mem_bytes of flat, pre-faulted memory for memcpy(), from
 *       mem_setup().
 * @mem: a memory writer reused across repetitions (see mem_setup()).
 * @vals: BE64_VALUES values for mem-put-be64.
 * @be_dst: the baseline's output for mem-put-be64.
 * @be_tmp: room for BE64_VALUES values, to check mem-put-be64's output.
 * @fd: the descriptor the fd cases write to, -1 if none.
 * @child: the process draining @fd when it is a pipe, -1 if none.
 * @stats: the counters of the last subject stream, kept for the report.
 * @iov_bytes: bytes the iovec callback was handed in the last run.
 * @iov_sum: a byte of each iovec, summed so that the callback reads it.
 * @mem2: a second memory writer, for the second writer of a case.
 * @w: the codec writer on @mem (native-crc-4k: checksums on;
 *     native-zlib-4k: compressing; qemu-frame: QEMU profile).
 * @w2: native-crc-4k: the writer on @mem2, checksums off.
 * @nrec: native-crc-4k: records @w has written, for checking its CRCs.
 * @pages: MIX_PAGES pages of page-like data for native-zlib-4k.
 * @z: native-zlib-4k: the baseline's raw deflate stream.
 * @z_init: whether @z needs deflateEnd().
 * @zlevel: native-zlib-4k: the compression level.
 * @out_bytes: bytes the last subject run produced, 0 when not reported.
 * @base_out_bytes: bytes the last baseline run produced.
 * @hdrs: qemu-frame: FRAME_SECTIONS section headers.
 * @plen: qemu-frame: the payload length of each section.
 * @framed_len: qemu-frame: the bytes a pass of framed sections makes.
 * @plain_len: qemu-frame: the payload bytes of a pass.
 * @vsrc: the vfu cases: the source device's state.
 * @vdev: the vfu cases: the source and destination sides.
 */
struct bench {
	const struct bench_config *cfg;
	double units;
	uint8_t *src;
	uint8_t *dst;
	ms_stream *mem;
	uint64_t *vals;
	uint8_t *be_dst;
	uint64_t *be_tmp;
	int fd;
	pid_t child;
	ms_stream_stats stats;
	uint64_t iov_bytes;
	uint64_t iov_sum;
	ms_stream *mem2;
	ms_writer *w;
	ms_writer *w2;
	uint64_t nrec;
	uint8_t *pages;
	z_stream z;
	bool z_init;
	int zlevel;
	uint64_t out_bytes;
	uint64_t base_out_bytes;
	ms_section_hdr *hdrs;
	size_t *plen;
	size_t framed_len;
	size_t plain_len;
	uint8_t *vsrc;
	struct vfu_dev *vdev;
};

/* One timed run: 0 and the elapsed seconds, or -1 after a message. */
typedef int (*run_fn)(struct bench *b, double *secs);

/* How a subject's value is computed and printed. */
enum metric {
	METRIC_MBPS,   /* MB/s, with a least acceptable ratio */
	METRIC_NS,     /* nanoseconds per value, with a least ratio */
	METRIC_COPIED, /* bytes the stream copied per byte put; target 0 */
	METRIC_NONE,   /* MB/s, for information: no target */
	METRIC_EXTRA,  /* ns per unit the subject takes beyond the baseline */
};

/**
 * struct subject - One reported case.
 * @name: the case name printed first on its line.
 * @run: one timed run.
 * @metric: what its value is.
 * @target: the least acceptable ratio (METRIC_MBPS and METRIC_NS); 0 for
 *          a line reported for information only.
 * @size_target: for subjects that report their output size: the most it
 *               may exceed the baseline's, in percent; 0 for no target.
 */
struct subject {
	const char *name;
	run_fn run;
	enum metric metric;
	double target;
	double size_target;
};

/**
 * struct group - A baseline and the subjects measured against it.
 * @vs: the baseline's name.
 * @unit: what @bench.units counts ("bytes", "values" or "sections").
 * @setup: prepares @bench (sets @bench.units); NULL for nothing.  It
 *         returns 0, -1 on failure, or 1 after a message saying why the
 *         group is skipped in this run (@teardown still runs).
 * @teardown: releases what @setup took; returns 0 or -1.
 * @baseline: one timed run of the baseline.
 * @subj: the subjects.
 * @nsubj: number of @subj entries used.
 */
struct group {
	const char *vs;
	const char *unit;
	int (*setup)(struct bench *b);
	int (*teardown)(struct bench *b);
	run_fn baseline;
	struct subject subj[MAX_SUBJECTS];
	int nsubj;
};

/*
 * Helpers (bench/util.c).
 */

/* Store @v big-endian with shifts, which compilers turn into a bswap. */
static inline void store_be64(uint8_t *p, uint64_t v)
{
	p[0] = (uint8_t)(v >> 56);
	p[1] = (uint8_t)(v >> 48);
	p[2] = (uint8_t)(v >> 40);
	p[3] = (uint8_t)(v >> 32);
	p[4] = (uint8_t)(v >> 24);
	p[5] = (uint8_t)(v >> 16);
	p[6] = (uint8_t)(v >> 8);
	p[7] = (uint8_t)v;
}

/* Monotonic time in seconds. */
double now(void);
/* Elapsed seconds since @t0, never 0 so that ratios stay finite. */
double since(double t0);
/* Report a failed stream call (@s may be NULL); returns -1. */
int stream_failed(const char *what, int ret, ms_stream *s);
/* Report a failed system call (errno is set); returns -1. */
int sys_failed(const char *what);
/* The @i-th chunk of @len bytes of the source, wrapping around. */
const uint8_t *src_chunk(const struct bench *b, size_t i, size_t len);
/* write() all of @len bytes, completing short writes and EINTR. */
int write_all(int fd, const uint8_t *p, size_t len);
/* The median of @n values (sorted in place). */
double median(double *v, int n);
/* The counters of @s minus those in @before: what one run added. */
void stats_since(ms_stream *s, const ms_stream_stats *before,
		 ms_stream_stats *out);
/* Close @b->mem and free @b->dst: the memory cases' teardown. */
int mem_teardown(struct bench *b);

#endif
