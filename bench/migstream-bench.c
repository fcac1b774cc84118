/* SPDX-License-Identifier: MIT */
/*
 * migstream-bench: throughput of the stream core measured against plain C
 * baselines in the same run.
 *
 * Every case pairs a subject (a migstream writer) with a baseline doing
 * the same work without the library (memcpy(), byte-swapped stores,
 * write(), raw deflate, unframed puts), or for the cost of a feature, with
 * the same writer without it (native-crc-4k: checksums off).  Each repetition runs the baseline and the subjects of a case
 * back to back, in an order that rotates from one repetition to the next,
 * so that slow drifts of the machine (frequency, other load) hit both
 * sides alike.  A case's ratio is the median over the repetitions of
 * baseline time / subject time: 1.0 means as fast as the baseline, more
 * means faster.  Values are medians too.
 *
 * Output: one line per case,
 *   CASE VALUE UNIT ratio=R vs=BASELINE [target>=T ok|MISSED] [extra]
 * or, with --json, one JSON object.  Extra fields follow the required
 * ones: size=+P% for cases whose output size is compared with the
 * baseline's (native-zlib-4k), with its own target.  The exit status is non-zero only when
 * something actually failed (a stream error, a system call); a missed
 * target is reported, not treated as a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include <migstream/migstream.h>

#define KIB ((size_t)1024)
#define MIB (1024 * KIB)

/* Source data that puts and baselines cycle through. */
#define SRC_SIZE (1 * MIB)
/* Chunk sizes of the cases. */
#define CHUNK_4K  (4 * KIB)
#define CHUNK_32K (32 * KIB)
/* Values per pass of mem-put-be64: 64 KiB of output, cache-resident. */
#define BE64_VALUES 8192
/* Read size of the process draining the pipe. */
#define DRAIN_SIZE (256 * KIB)
/* Pages per PART section of the native cases, as a RAM precopy batch. */
#define RAM_BATCH_PAGES 256
/* Section id of "ram" in the native cases. */
#define RAM_SECTION_ID 2
/* Pages of the page-like data of native-zlib-4k (cycled). */
#define MIX_PAGES 256
/* Sections per pass of qemu-frame, and their payload sizes. */
#define FRAME_SECTIONS	  1000
#define FRAME_PAYLOAD_MIN 64
#define FRAME_PAYLOAD_MAX 200

/* Default timed repetitions, full and --quick. */
#define REPS_FULL  15
#define REPS_QUICK 7

#define MAX_SUBJECTS 2
#define MAX_REPS     101

/*
 * Cases kept in their own files (bench/case-*.c, included below): each
 * file defines its own configuration struct and a macro that adds its
 * groups to the table.
 */
#include "case-dump.h"
#include "case-demo.h"

/**
 * struct bench_ext - Configuration of the cases in bench/case-*.c.
 * @dump: the dump tool's cases.
 * @demo: the end-to-end demo's cases.
 */
struct bench_ext {
	struct bench_dump_config dump;
	struct bench_demo_config demo;
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
 * @vsrc: vfu-window-64k: the source device's state.
 * @vdev: vfu-window-64k: the source and destination devices.
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

/* vfu-window-64k: a device whose RAM-like state is iterative. */
struct vfu_dev {
	uint8_t *mem;
	size_t size;
	size_t sent;
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
 * @setup: prepares @bench (sets @bench.units); NULL for nothing.
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

/**
 * struct result - What is reported for one subject.
 * @name: case name.
 * @unit: unit of @value and @baseline_value.
 * @vs: baseline name.
 * @per_rep_unit: what @units counts.
 * @value: the subject's median value.
 * @baseline_value: the baseline's median value, in @unit.
 * @ratio: median of the per-repetition baseline/subject time ratios.
 * @ratio_min: smallest per-repetition ratio.
 * @ratio_max: largest per-repetition ratio.
 * @subject_s: median seconds of a subject run.
 * @baseline_s: median seconds of a baseline run.
 * @units: bytes or values per run.
 * @reps: repetitions.
 * @metric: the subject's metric.
 * @target: the subject's target (see struct subject).
 * @met: whether the target was met.
 * @stats: counters of the subject's last stream.
 * @size: bytes the subject's last run produced; 0 when not reported.
 * @baseline_size: bytes the baseline's last run produced.
 * @size_target: see struct subject.
 * @size_met: whether @size is within @size_target of @baseline_size.
 */
struct result {
	const char *name;
	const char *unit;
	const char *vs;
	const char *per_rep_unit;
	double value;
	double baseline_value;
	double ratio;
	double ratio_min;
	double ratio_max;
	double subject_s;
	double baseline_s;
	double units;
	int reps;
	enum metric metric;
	double target;
	bool met;
	ms_stream_stats stats;
	double size;
	double baseline_size;
	double size_target;
	bool size_met;
};

/*
 * Helpers.
 */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Elapsed seconds since @t0, never 0 so that ratios stay finite. */
static double since(double t0)
{
	double d = now() - t0;

	return d > 1e-9 ? d : 1e-9;
}

/**
 * stream_failed() - Report a failed stream call.
 * @what: the call that failed.
 * @ret: its return value.
 * @s: the stream, or NULL when it does not exist (yet).
 *
 * Return: -1, for the caller to pass on.
 */
static int stream_failed(const char *what, int ret, ms_stream *s)
{
	fprintf(stderr, "migstream-bench: %s failed: %s%s%s\n", what,
		ms_strerror(ret), s ? ": " : "", s ? ms_stream_errmsg(s) : "");
	return -1;
}

/* Report a failed system call (errno is set); returns -1. */
static int sys_failed(const char *what)
{
	fprintf(stderr, "migstream-bench: %s: %s\n", what, strerror(errno));
	return -1;
}

/* The @i-th chunk of @len bytes of the source, wrapping around. */
static const uint8_t *src_chunk(const struct bench *b, size_t i, size_t len)
{
	return b->src + (i * len) % SRC_SIZE;
}

/* Sum a byte out of every 4 KiB of @p so that nothing written is dead. */
static uint64_t sample_sum(const uint8_t *p, size_t len)
{
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < len; i += CHUNK_4K)
		sum += p[i];
	return sum;
}

/* The same sample sum over what @len bytes of cycled source would give. */
static uint64_t expected_sum(const struct bench *b, size_t len)
{
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < len; i += CHUNK_4K)
		sum += b->src[i % SRC_SIZE];
	return sum;
}

/* write() all of @len bytes, completing short writes and EINTR. */
static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sys_failed("write");
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of @n values (sorted in place). */
static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	if (n % 2)
		return v[n / 2];
	return (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The counters of @s minus those in @before: what one run added. */
static void stats_since(ms_stream *s, const ms_stream_stats *before,
			ms_stream_stats *out)
{
	ms_stream_get_stats(s, out);
	out->bytes -= before->bytes;
	out->bytes_copied -= before->bytes_copied;
	out->bytes_zero_copy -= before->bytes_zero_copy;
	out->sink_calls -= before->sink_calls;
}

/*
 * Memory sink: mem-put-4k, mem-put-4k-grow and iov-4k.
 */

/*
 * mem-put-4k reuses one writer: the first (untimed) repetition grows it
 * to the full size, and every repetition ends by discarding what it
 * wrote, which puts the writer back at the front of its allocation.  It
 * then fills memory that is already allocated and faulted in, exactly as
 * the memcpy() baseline fills its pre-allocated buffer.  The cost of
 * growing is measured on its own by mem-put-4k-grow.
 */
static int mem_setup(struct bench *b)
{
	int ret;

	b->units = (double)b->cfg->mem_bytes;
	b->dst = malloc(b->cfg->mem_bytes);
	if (!b->dst)
		return sys_failed("malloc");
	/* Fault the baseline's buffer in now, not during a timed run. */
	memset(b->dst, 0, b->cfg->mem_bytes);
	ret = ms_stream_new_mem(&b->mem, 0, NULL);
	if (ret)
		return stream_failed("ms_stream_new_mem", ret, NULL);
	return 0;
}

static int mem_teardown(struct bench *b)
{
	int ret = ms_stream_close(b->mem);

	free(b->dst);
	b->dst = NULL;
	b->mem = NULL;
	if (ret)
		return stream_failed("ms_stream_close", ret, NULL);
	return 0;
}

/* Check that @len bytes at @p hold the cycled source. */
static int check_copy(const struct bench *b, const char *who, const uint8_t *p,
		      size_t len)
{
	if (len != b->cfg->mem_bytes ||
	    sample_sum(p, len) != expected_sum(b, len) ||
	    memcmp(p + len - CHUNK_4K,
		   src_chunk(b, len / CHUNK_4K - 1, CHUNK_4K), CHUNK_4K)) {
		fprintf(stderr, "migstream-bench: %s: wrong output\n", who);
		return -1;
	}
	return 0;
}

/* Baseline: memcpy() 4 KiB chunks into a flat, pre-allocated buffer. */
static int memcpy_run(struct bench *b, double *secs)
{
	size_t n = b->cfg->mem_bytes / CHUNK_4K;
	double t0;
	size_t i;

	t0 = now();
	for (i = 0; i < n; i++)
		memcpy(b->dst + i * CHUNK_4K, src_chunk(b, i, CHUNK_4K),
		       CHUNK_4K);
	*secs = since(t0);
	return check_copy(b, "memcpy", b->dst, b->cfg->mem_bytes);
}

/*
 * Put @len bytes of source in @chunk-byte pieces with ms_put_buffer()
 * (@async false) or ms_put_buffer_async() (@async true), then flush.
 */
static int put_chunks(struct bench *b, ms_stream *s, size_t len, size_t chunk,
		      bool async)
{
	size_t n = len / chunk;
	size_t i;
	int ret;

	for (i = 0; i < n; i++) {
		const uint8_t *p = src_chunk(b, i, chunk);

		ret = async ? ms_put_buffer_async(s, p, chunk)
			    : ms_put_buffer(s, p, chunk);
		if (ret)
			return stream_failed(async ? "ms_put_buffer_async"
						   : "ms_put_buffer",
					     ret, s);
	}
	ret = ms_stream_flush(s);
	if (ret)
		return stream_failed("ms_stream_flush", ret, s);
	return 0;
}

/* Subject: 4 KiB ms_put_buffer() into the reused memory writer. */
static int mem_put_run(struct bench *b, double *secs)
{
	ms_stream_stats before;
	const uint8_t *data;
	size_t len;
	double t0;
	int ret;

	ms_stream_get_stats(b->mem, &before);
	t0 = now();
	if (put_chunks(b, b->mem, b->cfg->mem_bytes, CHUNK_4K, false))
		return -1;
	*secs = since(t0);

	stats_since(b->mem, &before, &b->stats);
	ret = ms_stream_mem_view(b->mem, &data, &len);
	if (ret)
		return stream_failed("ms_stream_mem_view", ret, b->mem);
	if (check_copy(b, "mem-put-4k", data, len))
		return -1;
	ret = ms_stream_mem_discard(b->mem, len);
	if (ret)
		return stream_failed("ms_stream_mem_discard", ret, b->mem);
	return 0;
}

/* mem-put-4k-grow needs no shared state, only its size. */
static int grow_setup(struct bench *b)
{
	b->units = (double)b->cfg->mem_bytes;
	return 0;
}

/* Baseline for growth: malloc() a fresh buffer, memcpy() into it, free. */
static int malloc_memcpy_run(struct bench *b, double *secs)
{
	size_t len = b->cfg->mem_bytes;
	size_t n = len / CHUNK_4K;
	uint8_t *p;
	double t0;
	size_t i;
	int ret;

	t0 = now();
	p = malloc(len);
	if (!p)
		return sys_failed("malloc");
	for (i = 0; i < n; i++)
		memcpy(p + i * CHUNK_4K, src_chunk(b, i, CHUNK_4K), CHUNK_4K);
	*secs = since(t0);
	ret = check_copy(b, "malloc+memcpy", p, len);
	free(p);
	return ret;
}

/* Subject: a new memory writer per run, so its growth is timed too. */
static int mem_grow_run(struct bench *b, double *secs)
{
	const uint8_t *data;
	ms_stream *s;
	size_t len;
	double t0;
	int ret;

	t0 = now();
	ret = ms_stream_new_mem(&s, 0, NULL);
	if (ret)
		return stream_failed("ms_stream_new_mem", ret, NULL);
	if (put_chunks(b, s, b->cfg->mem_bytes, CHUNK_4K, false))
		goto out_close;
	*secs = since(t0);

	ms_stream_get_stats(s, &b->stats);
	ret = ms_stream_mem_view(s, &data, &len);
	if (ret) {
		stream_failed("ms_stream_mem_view", ret, s);
		goto out_close;
	}
	if (check_copy(b, "mem-put-4k-grow", data, len))
		goto out_close;
	/* Freeing is timed in the baseline, so it is here too. */
	t0 = now();
	ret = ms_stream_close(s);
	*secs += since(t0);
	if (ret)
		return stream_failed("ms_stream_close", ret, NULL);
	return 0;

out_close:
	ms_stream_close(s);
	return -1;
}

/**
 * iov_consume() - The iovec sink's callback: count and touch the data.
 * @opaque: the struct bench.
 * @iov: the gather list.
 * @iovcnt: its length.
 *
 * A real consumer would hand the list to writev() or a network library;
 * this one reads one byte of each entry so that the entries are used.
 *
 * Return: 0.
 */
static int iov_consume(void *opaque, const struct iovec *iov, int iovcnt)
{
	struct bench *b = opaque;
	int i;

	for (i = 0; i < iovcnt; i++) {
		b->iov_bytes += iov[i].iov_len;
		if (iov[i].iov_len)
			b->iov_sum += *(const uint8_t *)iov[i].iov_base;
	}
	return 0;
}

/* Subject: 4 KiB ms_put_buffer_async() into an iovec-callback writer. */
static int iov_run(struct bench *b, double *secs)
{
	size_t len = b->cfg->mem_bytes;
	ms_stream *s;
	double t0;
	int ret;

	ret = ms_stream_new_iov(&s, iov_consume, b, NULL);
	if (ret)
		return stream_failed("ms_stream_new_iov", ret, NULL);
	b->iov_bytes = 0;
	b->iov_sum = 0;

	t0 = now();
	if (put_chunks(b, s, len, CHUNK_4K, true)) {
		ms_stream_close(s);
		return -1;
	}
	*secs = since(t0);

	ms_stream_get_stats(s, &b->stats);
	ret = ms_stream_close(s);
	if (ret)
		return stream_failed("ms_stream_close", ret, NULL);
	if (b->iov_bytes != len || b->iov_sum != expected_sum(b, len)) {
		fprintf(stderr,
			"migstream-bench: iov-4k: callback got %llu "
			"bytes, %zu expected\n",
			(unsigned long long)b->iov_bytes, len);
		return -1;
	}
	return 0;
}

/*
 * mem-put-be64.
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

static int be64_setup(struct bench *b)
{
	uint64_t x = 0x0123456789abcdefull;
	size_t i;
	int ret;

	b->units = (double)BE64_VALUES * (double)b->cfg->be64_passes;
	b->vals = malloc(BE64_VALUES * sizeof(*b->vals));
	b->be_dst = malloc(BE64_VALUES * 8);
	b->be_tmp = malloc(BE64_VALUES * sizeof(*b->be_tmp));
	if (!b->vals || !b->be_dst || !b->be_tmp)
		return sys_failed("malloc");
	/* Values that differ in every byte (a xorshift sequence). */
	for (i = 0; i < BE64_VALUES; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b->vals[i] = x;
	}
	memset(b->be_dst, 0, BE64_VALUES * 8);
	ret = ms_stream_new_mem(&b->mem, 0, NULL);
	if (ret)
		return stream_failed("ms_stream_new_mem", ret, NULL);
	return 0;
}

static int be64_teardown(struct bench *b)
{
	free(b->vals);
	free(b->be_dst);
	free(b->be_tmp);
	b->be_tmp = NULL;
	b->vals = NULL;
	b->be_dst = NULL;
	return mem_teardown(b);
}

/*
 * Baseline: a loop of big-endian stores into an array.  Each pass stores
 * different values (v[i] ^ pass, as the subject does) and the last pass's
 * output is compared with the subject's, so no pass can be optimised away.
 */
static int bswap_run(struct bench *b, double *secs)
{
	const uint64_t *v = b->vals;
	uint8_t *d = b->be_dst;
	size_t pass, i;
	double t0;

	t0 = now();
	for (pass = 0; pass < b->cfg->be64_passes; pass++)
		for (i = 0; i < BE64_VALUES; i++)
			store_be64(d + 8 * i, v[i] ^ pass);
	*secs = since(t0);
	return 0;
}

/*
 * Subject: the values into the reused memory writer, which each pass
 * empties again with ms_stream_mem_discard(): with ms_put_be64_array()
 * (@array) or one ms_put_be64() call per value.
 */
static int be64_common(struct bench *b, double *secs, bool array)
{
	const uint64_t *v = b->vals;
	uint64_t *tmp = b->be_tmp;
	ms_stream *s = b->mem;
	const uint8_t *data = NULL;
	ms_stream_stats before;
	size_t pass, i, len = 0;
	double t0;
	int ret = 0;

	ms_stream_get_stats(s, &before);
	t0 = now();
	for (pass = 0; pass < b->cfg->be64_passes; pass++) {
		/*
		 * The library is opaque to the compiler, so the same values
		 * can be put in every pass; the baseline varies its values
		 * per pass only so that its loop cannot be hoisted.
		 */
		if (array) {
			ret = ms_put_be64_array(s, v, BE64_VALUES);
		} else {
			for (i = 0; i < BE64_VALUES && !ret; i++)
				ret = ms_put_be64(s, v[i]);
		}
		if (ret)
			return stream_failed("ms_put_be64", ret, s);
		ret = ms_stream_mem_view(s, &data, &len);
		if (ret)
			return stream_failed("ms_stream_mem_view", ret, s);
		if (pass + 1 == b->cfg->be64_passes)
			break;
		ret = ms_stream_mem_discard(s, len);
		if (ret)
			return stream_failed("ms_stream_mem_discard", ret, s);
	}
	*secs = since(t0);

	stats_since(s, &before, &b->stats);
	/* Check the last pass against the baseline's stores of the values. */
	for (i = 0; i < BE64_VALUES; i++)
		store_be64((uint8_t *)(tmp + i), v[i]);
	if (len != BE64_VALUES * 8 || memcmp(data, tmp, len)) {
		fprintf(stderr, "migstream-bench: mem-put-be64: output differs "
				"from the baseline's\n");
		return -1;
	}
	ret = ms_stream_mem_discard(s, len);
	if (ret)
		return stream_failed("ms_stream_mem_discard", ret, s);
	return 0;
}

static int be64_array_run(struct bench *b, double *secs)
{
	return be64_common(b, secs, true);
}

static int be64_single_run(struct bench *b, double *secs)
{
	return be64_common(b, secs, false);
}

/*
 * File descriptors: fd-pipe-32k, fd-pipe-32k-copy and fd-devnull-4k.
 */

/* The child's loop: read and discard until the end of the data. */
static void drain(int fd)
{
	uint8_t *buf = malloc(DRAIN_SIZE);
	ssize_t n;

	if (!buf)
		_exit(1);
	for (;;) {
		n = read(fd, buf, DRAIN_SIZE);
		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		_exit(n == 0 ? 0 : 1);
	}
}

/*
 * One pipe and one draining child serve the baseline and the subjects of
 * the pipe cases: the few kilobytes a run may leave in the pipe are
 * negligible next to what each run writes.
 */
static int pipe_setup(struct bench *b)
{
	int p[2];

	b->units = (double)b->cfg->pipe_bytes;
	if (pipe(p) < 0)
		return sys_failed("pipe");
	b->child = fork();
	if (b->child < 0) {
		close(p[0]);
		close(p[1]);
		return sys_failed("fork");
	}
	if (b->child == 0) {
		close(p[1]);
		drain(p[0]);
	}
	close(p[0]);
	b->fd = p[1];
	return 0;
}

/* Close the descriptor, and reap the child if there is one. */
static int fd_teardown(struct bench *b)
{
	int status, ret = 0;

	if (b->fd >= 0 && close(b->fd) < 0)
		ret = sys_failed("close");
	b->fd = -1;
	if (b->child <= 0)
		return ret;
	while (waitpid(b->child, &status, 0) < 0) {
		if (errno != EINTR)
			return sys_failed("waitpid");
	}
	b->child = -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "migstream-bench: the pipe reader failed\n");
		return -1;
	}
	return ret;
}

static int null_setup(struct bench *b)
{
	b->units = (double)b->cfg->null_bytes;
	b->fd = open("/dev/null", O_WRONLY);
	if (b->fd < 0)
		return sys_failed("open /dev/null");
	return 0;
}

/* Baseline: write() @len bytes of source in 32 KiB blocks. */
static int write_blocks(struct bench *b, size_t len, double *secs)
{
	size_t n = len / CHUNK_32K;
	double t0;
	size_t i;

	t0 = now();
	for (i = 0; i < n; i++)
		if (write_all(b->fd, src_chunk(b, i, CHUNK_32K), CHUNK_32K))
			return -1;
	*secs = since(t0);
	return 0;
}

/*
 * Subject: an fd writer over @b->fd, @chunk-byte puts of @len bytes.  The
 * stream is created and freed outside the timed part, which ends with the
 * final flush.
 */
static int fd_put(struct bench *b, size_t len, size_t chunk, bool async,
		  double *secs)
{
	ms_stream *s;
	double t0;
	int ret;

	ret = ms_stream_new_fd(&s, b->fd, MS_STREAM_WRITER, 0, NULL);
	if (ret)
		return stream_failed("ms_stream_new_fd", ret, NULL);
	t0 = now();
	if (put_chunks(b, s, len, chunk, async)) {
		ms_stream_close(s);
		return -1;
	}
	*secs = since(t0);
	ms_stream_get_stats(s, &b->stats);
	ret = ms_stream_close(s);
	if (ret)
		return stream_failed("ms_stream_close", ret, NULL);
	return 0;
}

static int pipe_write_run(struct bench *b, double *secs)
{
	return write_blocks(b, b->cfg->pipe_bytes, secs);
}

static int pipe_async_run(struct bench *b, double *secs)
{
	return fd_put(b, b->cfg->pipe_bytes, CHUNK_32K, true, secs);
}

static int pipe_copy_run(struct bench *b, double *secs)
{
	return fd_put(b, b->cfg->pipe_bytes, CHUNK_32K, false, secs);
}

static int null_write_run(struct bench *b, double *secs)
{
	return write_blocks(b, b->cfg->null_bytes, secs);
}

static int null_async_run(struct bench *b, double *secs)
{
	return fd_put(b, b->cfg->null_bytes, CHUNK_4K, true, secs);
}

/*
 * Native profile: native-crc-4k and native-zlib-4k.
 *
 * Both write RAM as a precopy iteration does: PART sections of "ram",
 * RAM_BATCH_PAGES pages each, every page put with one ms_put_buffer().
 * The writers' chunk size is 4 KiB, so every page becomes one DATA record
 * of its own and the framing, the checksum and the deflate stream are
 * paid per page: the finest chunking RAM gets.  (QEMU's own stream puts
 * an 8-byte address before every page; these cases leave it out so that
 * records and pages line up.)  The writers are made once and reused: each
 * run ends by discarding its output, as in mem-put-4k.
 */

/* Record layout of the native profile: u8 type, u8 flags, be32 length,
 * the payload, and be32 CRC-32 with checksums on. */
#define NATIVE_REC_HDR	 6
#define NATIVE_REC_DATA	 0x10
#define NATIVE_FLAG_ZLIB 0x01

static uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t xorshift64(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Report a failed writer call; returns -1. */
static int writer_failed(const char *what, int ret, const ms_writer *w)
{
	fprintf(stderr, "migstream-bench: %s failed: %s: %s\n", what,
		ms_strerror(ret), ms_writer_errmsg(w));
	return -1;
}

/* Page @i of a run: cycled source, or the page-like data when @mix. */
static const uint8_t *page_at(const struct bench *b, size_t i, bool mix)
{
	if (mix)
		return b->pages + (i % MIX_PAGES) * CHUNK_4K;
	return src_chunk(b, i, CHUNK_4K);
}

/**
 * native_writer_new() - A native writer on a new memory writer.
 * @b: the bench, which owns both from here on.
 * @s: receives the memory writer.
 * @w: receives the codec writer.
 * @checksum: the writer's checksum option.
 * @level: its compression level.
 *
 * Writes the file header and an empty START section of "ram", checks the
 * header's CRC-32 against zlib's crc32() (so that a faster CRC is known to
 * compute the same value), and discards them: the runs write only PART
 * sections.
 *
 * Return: 0, or -1 after a message.
 */
static int native_writer_new(struct bench *b, ms_stream **s, ms_writer **w,
			     int checksum, int level)
{
	ms_codec_opts o;
	ms_section_hdr h;
	const uint8_t *d;
	ms_stream *p;
	size_t len;
	int ret;

	(void)b;
	memset(&o, 0, sizeof(o));
	o.version = MS_CODEC_OPTS_VERSION;
	o.profile = MS_PROFILE_NATIVE;
	o.checksum = checksum;
	o.compress_level = level;
	o.chunk_size = CHUNK_4K;
	ret = ms_stream_new_mem(s, 0, NULL);
	if (ret)
		return stream_failed("ms_stream_new_mem", ret, NULL);
	ret = ms_writer_new(w, *s, &o);
	if (ret)
		return stream_failed("ms_writer_new", ret, NULL);
	memset(&h, 0, sizeof(h));
	h.type = MS_REC_START;
	h.section_id = RAM_SECTION_ID;
	strcpy(h.idstr, "ram");
	h.version_id = 4;
	ret = ms_writer_header(*w);
	if (!ret)
		ret = ms_writer_begin(*w, &h, &p);
	if (!ret)
		ret = ms_writer_end(*w);
	if (ret)
		return writer_failed("native header", ret, *w);
	ret = ms_stream_mem_view(*s, &d, &len);
	if (ret)
		return stream_failed("ms_stream_mem_view", ret, *s);
	if (len < 16 || load_be32(d + 12) != (uint32_t)crc32(0, d, 12)) {
		fprintf(stderr, "migstream-bench: native header: CRC-32 "
				"differs from zlib's\n");
		return -1;
	}
	ret = ms_stream_mem_discard(*s, len);
	if (ret)
		return stream_failed("ms_stream_mem_discard", ret, *s);
	return 0;
}

/* Release whatever the codec cases set up (all of it may be unset). */
static int codec_teardown(struct bench *b)
{
	int ret = 0, r;

	ms_writer_free(b->w);
	ms_writer_free(b->w2);
	b->w = NULL;
	b->w2 = NULL;
	r = ms_stream_close(b->mem2);
	if (r)
		ret = stream_failed("ms_stream_close", r, NULL);
	b->mem2 = NULL;
	if (b->z_init)
		deflateEnd(&b->z);
	b->z_init = false;
	free(b->pages);
	free(b->hdrs);
	free(b->plen);
	b->pages = NULL;
	b->hdrs = NULL;
	b->plen = NULL;
	if (mem_teardown(b))
		ret = -1;
	return ret;
}

/*
 * Write pages @first to @first + @npages - 1 (cycled source, or the
 * page-like data when @mix) as PART sections of RAM_BATCH_PAGES pages
 * through @w.
 */
static int ram_write(struct bench *b, ms_writer *w, size_t first, size_t npages,
		     bool mix, double *secs)
{
	ms_section_hdr h;
	ms_stream *p;
	size_t i, k, end = first + npages;
	double t0;
	int ret = 0;

	memset(&h, 0, sizeof(h));
	h.type = MS_REC_PART;
	h.section_id = RAM_SECTION_ID;
	t0 = now();
	for (i = first; i < end && !ret; i += RAM_BATCH_PAGES) {
		ret = ms_writer_begin(w, &h, &p);
		for (k = i; k < i + RAM_BATCH_PAGES && k < end && !ret; k++)
			ret = ms_put_buffer(p, page_at(b, k, mix), CHUNK_4K);
		if (!ret)
			ret = ms_writer_end(w);
	}
	*secs = since(t0);
	if (ret)
		return writer_failed("ram section", ret, w);
	return 0;
}

/* Pages per repetition of native-crc-4k. */
static size_t crc_pages(const struct bench *b)
{
	return b->cfg->crc_bytes / CHUNK_4K;
}

static int crc_setup(struct bench *b)
{
	b->units = (double)(crc_pages(b) * CHUNK_4K);
	if (native_writer_new(b, &b->mem, &b->w, 0, 0) ||
	    native_writer_new(b, &b->mem2, &b->w2, -1, 0))
		return -1;
	/* @w wrote two records: the START and its footer. */
	b->nrec = 2;
	return 0;
}

/**
 * crc_check() - Check and discard what ram_write() wrote.
 * @b: the bench.
 * @s: the memory writer.
 * @first: the first page written.
 * @npages: the pages written.
 * @crc: whether records carry a CRC-32.
 * @who: the name for messages.
 *
 * Checks the length, the last page, and with @crc that page's record CRC
 * against zlib's crc32(): the CRC covers the record's index as be64, its
 * header and its payload.
 *
 * Return: 0, or -1 after a message.
 */
static int crc_check(struct bench *b, ms_stream *s, size_t first, size_t npages,
		     bool crc, const char *who)
{
	size_t nsec = (npages + RAM_BATCH_PAGES - 1) / RAM_BATCH_PAGES;
	size_t rec = NATIVE_REC_HDR + (crc ? 4 : 0);
	size_t len, at, want = nsec * 2 * (rec + 4) + npages * (rec + CHUNK_4K);
	const uint8_t *d;
	uint8_t seed[8];
	uLong c;
	int ret;

	ret = ms_stream_mem_view(s, &d, &len);
	if (ret)
		return stream_failed("ms_stream_mem_view", ret, s);
	/* The last DATA record comes before the footer record. */
	at = len - (rec + 4) - (rec + CHUNK_4K);
	if (len != want || d[at] != NATIVE_REC_DATA || d[at + 1] ||
	    load_be32(d + at + 2) != CHUNK_4K ||
	    memcmp(d + at + NATIVE_REC_HDR,
		   page_at(b, first + npages - 1, false), CHUNK_4K)) {
		fprintf(stderr, "migstream-bench: %s: wrong output\n", who);
		return -1;
	}
	if (crc) {
		b->nrec += 2 * nsec + npages;
		store_be64(seed, b->nrec - 2);
		c = crc32(0, seed, sizeof(seed));
		c = crc32(c, d + at, NATIVE_REC_HDR + CHUNK_4K);
		if (load_be32(d + at + NATIVE_REC_HDR + CHUNK_4K) !=
		    (uint32_t)c) {
			fprintf(stderr,
				"migstream-bench: %s: CRC-32 differs "
				"from zlib's\n",
				who);
			return -1;
		}
	}
	ret = ms_stream_mem_discard(s, len);
	if (ret)
		return stream_failed("ms_stream_mem_discard", ret, s);
	return 0;
}

/*
 * One run of native-crc-4k (@hot false): all pages, then the check, so
 * that the output streams to memory as in mem-put-4k.  One run of
 * native-crc-4k-hot (@hot true): the same pages, but each section is
 * checked and discarded at once, so that the output reuses the same
 * RAM_BATCH_PAGES pages of memory and stays in the caches, as in a
 * writer that sends a small buffer to a socket.
 */
static int crc_common(struct bench *b, bool crc, bool hot, double *secs)
{
	ms_writer *w = crc ? b->w : b->w2;
	ms_stream *s = crc ? b->mem : b->mem2;
	const char *who = crc ? "native-crc-4k" : "no-checksum";
	size_t i, n = crc_pages(b), step = hot ? RAM_BATCH_PAGES : n;
	ms_stream_stats before;
	double t;

	ms_stream_get_stats(s, &before);
	*secs = 0;
	for (i = 0; i < n; i += step) {
		if (step > n - i)
			step = n - i;
		if (ram_write(b, w, i, step, false, &t) ||
		    crc_check(b, s, i, step, crc, who))
			return -1;
		*secs += t;
	}
	stats_since(s, &before, &b->stats);
	return 0;
}

/* Baseline: the native writer without checksums. */
static int crc_off_run(struct bench *b, double *secs)
{
	return crc_common(b, false, false, secs);
}

/* Subject: the same writes with a CRC-32 on every record. */
static int crc_on_run(struct bench *b, double *secs)
{
	return crc_common(b, true, false, secs);
}

static int crc_off_hot_run(struct bench *b, double *secs)
{
	return crc_common(b, false, true, secs);
}

static int crc_on_hot_run(struct bench *b, double *secs)
{
	return crc_common(b, true, true, secs);
}

/*
 * Page-like data: a fixed pseudo-random mix of 1/4 zero pages, 1/2 text
 * pages (log lines of common words, times and numbers) and 1/4 random
 * pages, which deflate cannot shrink.
 */
static void fill_pages(uint8_t *pages)
{
	static const char *const words[] = {
		"kernel:", "eth0",     "link",	      "up",	    "down",
		"error",   "info",     "systemd[1]:", "Started",    "session",
		"user",	   "root",     "connection",  "from",	    "port",
		"sshd",	   "accepted", "publickey",   "for",	    "on",
		"timeout", "retrying", "device",      "virtio_blk", "request",
		"done",	   "queue",    "memory",      "cgroup",	    "usage",
		"bytes",   "warning",
	};
	uint64_t x = 0x9e3779b97f4a7c15ull;
	size_t p, i, n;

	for (p = 0; p < MIX_PAGES; p++) {
		uint8_t *d = pages + p * CHUNK_4K;
		unsigned kind = (unsigned)(xorshift64(&x) % 4);

		if (kind == 0) {
			memset(d, 0, CHUNK_4K);
			continue;
		}
		if (kind == 3) {
			for (i = 0; i < CHUNK_4K; i++)
				d[i] = (uint8_t)(xorshift64(&x) >> 32);
			continue;
		}
		for (n = 0; n < CHUNK_4K;) {
			char line[256];
			uint64_t r = xorshift64(&x);
			int k, w, nw = 4 + (int)(r % 6);

			k = snprintf(line, sizeof(line),
				     "May %2u %02u:%02u:%02u vm%u",
				     (unsigned)(r >> 8) % 28 + 1,
				     (unsigned)(r >> 16) % 24,
				     (unsigned)(r >> 24) % 60,
				     (unsigned)(r >> 32) % 60,
				     (unsigned)(r >> 40) % 4);
			for (w = 0; w < nw; w++)
				k += snprintf(line + k,
					      sizeof(line) - (size_t)k, " %s",
					      words[xorshift64(&x) % 32]);
			k += snprintf(line + k, sizeof(line) - (size_t)k,
				      " id=%u\n",
				      (unsigned)(xorshift64(&x) % 100000));
			if ((size_t)k > CHUNK_4K - n)
				k = (int)(CHUNK_4K - n);
			memcpy(d + n, line, (size_t)k);
			n += (size_t)k;
		}
	}
}

/* Pages per repetition of native-zlib-4k at b->zlevel. */
static size_t zlib_pages(const struct bench *b)
{
	size_t bytes = b->cfg->zlib_bytes;

	/* Level 6 is several times slower: a quarter of the data. */
	if (b->zlevel > 1)
		bytes /= 4;
	return bytes / CHUNK_4K;
}

static int zlib_setup(struct bench *b, int level)
{
	size_t bound;

	b->zlevel = level;
	b->units = (double)(zlib_pages(b) * CHUNK_4K);
	b->pages = malloc(MIX_PAGES * CHUNK_4K);
	if (!b->pages)
		return sys_failed("malloc");
	fill_pages(b->pages);
	memset(&b->z, 0, sizeof(b->z));
	if (deflateInit2(&b->z, level, Z_DEFLATED, -15, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK) {
		fprintf(stderr, "migstream-bench: deflateInit2 failed\n");
		return -1;
	}
	b->z_init = true;
	/* The baseline deflates into one flat, pre-faulted buffer. */
	bound = deflateBound(&b->z, CHUNK_4K);
	b->dst = malloc(zlib_pages(b) * bound);
	if (!b->dst)
		return sys_failed("malloc");
	memset(b->dst, 0, zlib_pages(b) * bound);
	return native_writer_new(b, &b->mem, &b->w, 0, level);
}

static int zlib1_setup(struct bench *b)
{
	return zlib_setup(b, 1);
}

static int zlib6_setup(struct bench *b)
{
	return zlib_setup(b, 6);
}

/* Whether raw deflate data @z of @zlen bytes inflates to the 4 KiB @page. */
static bool inflates_to(const uint8_t *z, size_t zlen, const uint8_t *page)
{
	uint8_t out[CHUNK_4K + 1];
	z_stream s;
	int zr;

	memset(&s, 0, sizeof(s));
	if (inflateInit2(&s, -15) != Z_OK)
		return false;
	s.next_in = (Bytef *)(uintptr_t)z;
	s.avail_in = (uInt)zlen;
	s.next_out = out;
	s.avail_out = sizeof(out);
	zr = inflate(&s, Z_FINISH);
	inflateEnd(&s);
	return zr == Z_STREAM_END && s.avail_in == 0 &&
	       sizeof(out) - s.avail_out == CHUNK_4K &&
	       !memcmp(out, page, CHUNK_4K);
}

/*
 * Baseline: raw deflate of every page on its own, with one long-lived
 * z_stream reset per page, as the writer does per chunk.  Its output goes
 * to one flat buffer; its size is what the writer is compared with.
 */
static int deflate_run(struct bench *b, double *secs)
{
	size_t npages = zlib_pages(b), bound = deflateBound(&b->z, CHUNK_4K);
	size_t i, off = 0, last = 0;
	double t0;
	int zr = Z_STREAM_END;

	t0 = now();
	for (i = 0; i < npages && zr == Z_STREAM_END; i++) {
		zr = deflateReset(&b->z);
		if (zr != Z_OK)
			break;
		b->z.next_in = (Bytef *)(uintptr_t)page_at(b, i, true);
		b->z.avail_in = CHUNK_4K;
		b->z.next_out = b->dst + off;
		b->z.avail_out = (uInt)bound;
		zr = deflate(&b->z, Z_FINISH);
		last = off;
		off += bound - b->z.avail_out;
	}
	*secs = since(t0);
	if (zr != Z_STREAM_END || !inflates_to(b->dst + last, off - last,
					       page_at(b, npages - 1, true))) {
		fprintf(stderr, "migstream-bench: raw deflate failed\n");
		return -1;
	}
	b->base_out_bytes = off;
	return 0;
}

/**
 * zlib_run() - Subject: the compressing native writer.
 * @b: the bench.
 * @secs: receives the time.
 *
 * Its output size, all records included, is reported against the raw
 * deflate output.  The output is walked record by record: it must hold a
 * DATA record per page, and the last page must come back from its record
 * (compressed, or stored when deflate did not make it smaller).
 *
 * Return: 0, or -1 after a message.
 */
static int zlib_run(struct bench *b, double *secs)
{
	size_t npages = zlib_pages(b), ndata = 0, len, at, n, last = 0;
	ms_stream_stats before;
	const uint8_t *d;
	bool ok;
	int ret;

	ms_stream_get_stats(b->mem, &before);
	if (ram_write(b, b->w, 0, npages, true, secs))
		return -1;
	stats_since(b->mem, &before, &b->stats);
	ret = ms_stream_mem_view(b->mem, &d, &len);
	if (ret)
		return stream_failed("ms_stream_mem_view", ret, b->mem);
	for (at = 0; at + NATIVE_REC_HDR + 4 <= len; at += n) {
		if (d[at] == NATIVE_REC_DATA) {
			ndata++;
			last = at;
		}
		n = NATIVE_REC_HDR + load_be32(d + at + 2) + 4;
	}
	n = load_be32(d + last + 2);
	if (d[last + 1] & NATIVE_FLAG_ZLIB)
		ok = n > 4 &&
		     load_be32(d + last + NATIVE_REC_HDR) == CHUNK_4K &&
		     inflates_to(d + last + NATIVE_REC_HDR + 4, n - 4,
				 page_at(b, npages - 1, true));
	else
		ok = n == CHUNK_4K &&
		     !memcmp(d + last + NATIVE_REC_HDR,
			     page_at(b, npages - 1, true), CHUNK_4K);
	if (at != len || ndata != npages || !ok) {
		fprintf(stderr, "migstream-bench: native-zlib-4k: wrong "
				"output\n");
		return -1;
	}
	b->out_bytes = len;
	ret = ms_stream_mem_discard(b->mem, len);
	if (ret)
		return stream_failed("ms_stream_mem_discard", ret, b->mem);
	return 0;
}

/*
 * qemu-frame: the cost of QEMU's section framing.  FRAME_SECTIONS FULL
 * sections with payloads of FRAME_PAYLOAD_MIN to FRAME_PAYLOAD_MAX bytes,
 * as a device-state switchover writes them, framed by a QEMU-profile
 * writer (begin, one put, end with its footer), against the same payload
 * bytes put unframed into the same kind of memory writer.  The value is
 * the extra time per section.  Each pass of FRAME_SECTIONS sections ends
 * by checking and discarding the output, on both sides.
 */

/* The payload of section @i: a slice of the source. */
static const uint8_t *frame_payload(const struct bench *b, size_t i)
{
	return b->src + i * 256;
}

static int frame_setup(struct bench *b)
{
	static const char *const names[] = {
		"timer",
		"cpu_common",
		"cpu",
		"apic",
		"kvmclock",
		"0000:00:01.3/piix4_pm",
		"0000:00:02.0/vga",
		"0000:00:03.0/virtio-net",
		"mc146818rtc",
		"ioapic",
		"0000:00:01.0/PIIX3",
		"0000:00:04.0/virtio-blk",
	};
	ms_codec_opts o;
	const uint8_t *d;
	size_t i, len;
	int ret;

	b->units = (double)FRAME_SECTIONS * (double)b->cfg->frame_passes;
	b->hdrs = calloc(FRAME_SECTIONS, sizeof(*b->hdrs));
	b->plen = calloc(FRAME_SECTIONS, sizeof(*b->plen));
	if (!b->hdrs || !b->plen)
		return sys_failed("calloc");
	b->framed_len = 0;
	b->plain_len = 0;
	for (i = 0; i < FRAME_SECTIONS; i++) {
		ms_section_hdr *h = &b->hdrs[i];

		h->type = MS_REC_FULL;
		h->section_id = (uint32_t)i + 3;
		snprintf(h->idstr, sizeof(h->idstr), "%s", names[i % 12]);
		h->instance_id = (uint32_t)(i / 12);
		h->version_id = 1 + (uint32_t)(i % 5);
		b->plen[i] =
			FRAME_PAYLOAD_MIN +
			(i * 37) % (FRAME_PAYLOAD_MAX - FRAME_PAYLOAD_MIN + 1);
		b->plain_len += b->plen[i];
		/* type, id, counted idstr, instance, version; footer. */
		b->framed_len += 1 + 4 + 1 + strlen(h->idstr) + 4 + 4 +
				 b->plen[i] + 1 + 4;
	}
	ret = ms_stream_new_mem(&b->mem, 0, NULL);
	if (!ret)
		ret = ms_stream_new_mem(&b->mem2, 0, NULL);
	if (ret)
		return stream_failed("ms_stream_new_mem", ret, NULL);
	memset(&o, 0, sizeof(o));
	o.version = MS_CODEC_OPTS_VERSION;
	o.profile = MS_PROFILE_QEMU;
	ret = ms_writer_new(&b->w, b->mem2, &o);
	if (ret)
		return stream_failed("ms_writer_new", ret, NULL);
	ret = ms_writer_header(b->w);
	if (ret)
		return writer_failed("ms_writer_header", ret, b->w);
	ret = ms_stream_mem_view(b->mem2, &d, &len);
	if (!ret)
		ret = ms_stream_mem_discard(b->mem2, len);
	if (ret)
		return stream_failed("ms_stream_mem_discard", ret, b->mem2);
	return 0;
}

/**
 * frame_pass_end() - Check and (but after the last pass) discard a pass.
 * @s: the memory writer.
 * @want: the bytes a pass makes.
 * @last: whether this is the last pass, whose output is kept for a check.
 * @data: receives the output.
 *
 * Return: 0, or -1 after a message.
 */
static int frame_pass_end(ms_stream *s, size_t want, bool last,
			  const uint8_t **data)
{
	size_t len;
	int ret;

	ret = ms_stream_mem_view(s, data, &len);
	if (ret)
		return stream_failed("ms_stream_mem_view", ret, s);
	if (len != want) {
		fprintf(stderr,
			"migstream-bench: qemu-frame: %zu bytes, %zu "
			"expected\n",
			len, want);
		return -1;
	}
	if (last)
		return 0;
	ret = ms_stream_mem_discard(s, len);
	if (ret)
		return stream_failed("ms_stream_mem_discard", ret, s);
	return 0;
}

/* Baseline: the payloads with ms_put_buffer(), unframed. */
static int unframed_run(struct bench *b, double *secs)
{
	size_t pass, i, passes = b->cfg->frame_passes;
	const uint8_t *d = NULL;
	double t0;
	int ret = 0;

	t0 = now();
	for (pass = 0; pass < passes; pass++) {
		for (i = 0; i < FRAME_SECTIONS && !ret; i++)
			ret = ms_put_buffer(b->mem, frame_payload(b, i),
					    b->plen[i]);
		if (ret)
			return stream_failed("ms_put_buffer", ret, b->mem);
		if (frame_pass_end(b->mem, b->plain_len, pass + 1 == passes,
				   &d))
			return -1;
	}
	*secs = since(t0);
	if (memcmp(d + b->plain_len - b->plen[FRAME_SECTIONS - 1],
		   frame_payload(b, FRAME_SECTIONS - 1),
		   b->plen[FRAME_SECTIONS - 1])) {
		fprintf(stderr, "migstream-bench: unframed: wrong output\n");
		return -1;
	}
	ret = ms_stream_mem_discard(b->mem, b->plain_len);
	if (ret)
		return stream_failed("ms_stream_mem_discard", ret, b->mem);
	return 0;
}

/* Subject: every payload as a FULL section of a QEMU-profile writer. */
static int framed_run(struct bench *b, double *secs)
{
	size_t pass, i, passes = b->cfg->frame_passes;
	const ms_section_hdr *h = &b->hdrs[FRAME_SECTIONS - 1];
	size_t plen = b->plen[FRAME_SECTIONS - 1], idlen = strlen(h->idstr);
	ms_stream_stats before;
	const uint8_t *d = NULL, *e;
	ms_stream *p;
	double t0;
	int ret = 0;

	ms_stream_get_stats(b->mem2, &before);
	t0 = now();
	for (pass = 0; pass < passes; pass++) {
		for (i = 0; i < FRAME_SECTIONS && !ret; i++) {
			ret = ms_writer_begin(b->w, &b->hdrs[i], &p);
			if (!ret)
				ret = ms_put_buffer(p, frame_payload(b, i),
						    b->plen[i]);
			if (!ret)
				ret = ms_writer_end(b->w);
		}
		if (ret)
			return writer_failed("qemu-frame section", ret, b->w);
		if (frame_pass_end(b->mem2, b->framed_len, pass + 1 == passes,
				   &d))
			return -1;
	}
	*secs = since(t0);
	stats_since(b->mem2, &before, &b->stats);
	/* The last section: 0x04, id, idstr, instance, version, payload,
	 * footer 0x7e and id. */
	e = d + b->framed_len - (1 + 4 + 1 + idlen + 8 + plen + 5);
	if (e[0] != MS_REC_FULL || load_be32(e + 1) != h->section_id ||
	    e[5] != idlen || memcmp(e + 6, h->idstr, idlen) ||
	    load_be32(e + 6 + idlen) != h->instance_id ||
	    load_be32(e + 10 + idlen) != h->version_id ||
	    memcmp(e + 14 + idlen, frame_payload(b, FRAME_SECTIONS - 1),
		   plen) ||
	    e[14 + idlen + plen] != MS_REC_FOOTER ||
	    load_be32(e + 15 + idlen + plen) != h->section_id) {
		fprintf(stderr, "migstream-bench: qemu-frame: wrong output\n");
		return -1;
	}
	ret = ms_stream_mem_discard(b->mem2, b->framed_len);
	if (ret)
		return stream_failed("ms_stream_mem_discard", ret, b->mem2);
	return 0;
}

/*
 * vfu-window-64k: device state through the vfio-user adapter's v1
 * protocol with a 64 KiB window, source and destination adapters in one
 * process, against a memcpy() of the same state.  The device sends its
 * state in 1 MiB PART sections, as RAM does during precopy, so that both
 * sides stay in O(window + section) memory.
 */
#define VFU_SECTION MIB
#define VFU_WINDOW  (64 * KIB)

static int vfu_iterate(ms_stream *s, void *opaque)
{
	struct vfu_dev *d = opaque;

	if (d->sent < d->size) {
		ms_put_be64(s, d->sent);
		ms_put_buffer_async(s, d->mem + d->sent, VFU_SECTION);
		d->sent += VFU_SECTION;
	} else {
		ms_put_be64(s, UINT64_MAX);
	}
	return ms_stream_error(s) ? ms_stream_error(s) : d->sent < d->size;
}

static int vfu_complete(ms_stream *s, void *opaque)
{
	(void)opaque;
	return ms_put_be64(s, UINT64_MAX);
}

static uint64_t vfu_pending(void *opaque)
{
	const struct vfu_dev *d = opaque;

	return d->size - d->sent;
}

static int vfu_load(ms_stream *s, uint32_t version, uint8_t type, void *opaque)
{
	struct vfu_dev *d = opaque;
	uint64_t off;

	(void)version;
	if (type == MS_REC_START)
		return 0;
	if (ms_get_be64(s, &off))
		return ms_stream_error(s);
	if (off == UINT64_MAX)
		return 0;
	if (off > d->size - VFU_SECTION)
		return ms_stream_set_error(s, -EINVAL, "offset %llu",
					   (unsigned long long)off);
	return ms_get_buffer(s, d->mem + off, VFU_SECTION);
}

static const ms_handler_ops vfu_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_iterate = vfu_iterate,
	.pending = vfu_pending,
	.save_complete = vfu_complete,
	.load = vfu_load,
};

static int vfu_setup(struct bench *b)
{
	size_t i;

	b->units = (double)b->cfg->vfu_bytes;
	b->vsrc = malloc(b->cfg->vfu_bytes);
	b->dst = malloc(b->cfg->vfu_bytes);
	b->vdev = calloc(2, sizeof(*b->vdev));
	if (!b->vsrc || !b->dst || !b->vdev)
		return sys_failed("malloc");
	for (i = 0; i < b->cfg->vfu_bytes; i++)
		b->vsrc[i] = (uint8_t)(i * 131 + (i >> 12));
	memset(b->dst, 0, b->cfg->vfu_bytes);
	return 0;
}

static int vfu_teardown(struct bench *b)
{
	free(b->vsrc);
	free(b->dst);
	free(b->vdev);
	b->vsrc = NULL;
	b->dst = NULL;
	b->vdev = NULL;
	return 0;
}

static int vfu_memcpy_run(struct bench *b, double *secs)
{
	double t0 = now();

	memcpy(b->dst, b->vsrc, b->cfg->vfu_bytes);
	*secs = since(t0);
	return 0;
}

/*
 * The copies any transport through a 64 KiB window makes: each window
 * copied from the source into the window, then from the window into the
 * destination.  The adapter's floor; reported for information.
 */
static int vfu_window_copy_run(struct bench *b, double *secs)
{
	static uint8_t win[64 * KIB];
	size_t off, n;
	double t0 = now();

	for (off = 0; off < b->cfg->vfu_bytes; off += n) {
		n = b->cfg->vfu_bytes - off < sizeof(win)
			    ? b->cfg->vfu_bytes - off
			    : sizeof(win);
		memcpy(win, b->vsrc + off, n);
		memcpy(b->dst + off, win, n);
	}
	*secs = since(t0);
	if (memcmp(b->dst, b->vsrc, b->cfg->vfu_bytes)) {
		fprintf(stderr,
			"migstream-bench: memcpy-via-64k: wrong output\n");
		return -1;
	}
	return 0;
}

/* Tell what failed in the adapter and give up. */
static int vfu_failed(const char *what, ms_vfu_adapter *a)
{
	fprintf(stderr, "migstream-bench: vfu-window-64k: %s: %s\n", what,
		a ? ms_vfu_errmsg(a) : "out of memory");
	return -1;
}

static int vfu_run(struct bench *b, double *secs)
{
	ms_vfu_opts o;
	ms_registry *rs = NULL, *rd = NULL;
	ms_vfu_adapter *as = NULL, *ad = NULL;
	static uint8_t win[VFU_WINDOW];
	uint64_t off, size, doff;
	int ret = -1;
	double t0;

	memset(&o, 0, sizeof(o));
	o.version = MS_VFU_OPTS_VERSION;
	o.api = MS_VFU_MIGR_CALLBACKS_V1;
	o.window = VFU_WINDOW;
	b->vdev[0].mem = b->vsrc;
	b->vdev[1].mem = b->dst;
	b->vdev[0].size = b->vdev[1].size = b->cfg->vfu_bytes;
	b->vdev[0].sent = 0;
	memset(b->dst, 0, b->cfg->vfu_bytes);
	if (ms_registry_new(&rs, NULL) || ms_registry_new(&rd, NULL) ||
	    ms_registry_add(rs, "ram", 0, 1, 1, &vfu_ops, &b->vdev[0]) < 0 ||
	    ms_registry_add(rd, "ram", 0, 1, 1, &vfu_ops, &b->vdev[1]) < 0 ||
	    ms_vfu_adapter_new(&as, rs, &o) ||
	    ms_vfu_adapter_new(&ad, rd, &o)) {
		vfu_failed("setup", NULL);
		goto out;
	}
	t0 = now();
	if (ms_vfu_transition(as, MS_VFU_MIGR_STATE_STOP_AND_COPY) ||
	    ms_vfu_transition(ad, MS_VFU_MIGR_STATE_RESUME)) {
		vfu_failed("transition", as);
		goto out;
	}
	/* The client's loop, as QEMU's with a 64 KiB data area. */
	while (ms_vfu_v1_get_pending_bytes(as)) {
		if (ms_vfu_v1_prepare_data(as, &off, &size) ||
		    ms_vfu_v1_read_data(as, win, size, off) != (ssize_t)size) {
			vfu_failed("source", as);
			goto out;
		}
		if (ms_vfu_v1_prepare_data(ad, &doff, NULL) ||
		    ms_vfu_v1_write_data(ad, win, size, doff) !=
			    (ssize_t)size ||
		    ms_vfu_v1_data_written(ad, size)) {
			vfu_failed("destination", ad);
			goto out;
		}
	}
	if (ms_vfu_transition(ad, MS_VFU_MIGR_STATE_RUNNING)) {
		vfu_failed("finishing the load", ad);
		goto out;
	}
	*secs = since(t0);
	if (memcmp(b->dst, b->vsrc, b->cfg->vfu_bytes)) {
		fprintf(stderr, "migstream-bench: vfu-window-64k: the "
				"destination's state differs\n");
		goto out;
	}
	ret = 0;
out:
	ms_vfu_adapter_free(as);
	ms_vfu_adapter_free(ad);
	ms_registry_free(rs);
	ms_registry_free(rd);
	return ret;
}

/*
 * The cases.
 */

#include "case-dump.c"
#include "case-demo.c"

static const struct group groups[] = {
	{
		.vs = "memcpy",
		.unit = "bytes",
		.setup = mem_setup,
		.teardown = mem_teardown,
		.baseline = memcpy_run,
		.subj = {{"mem-put-4k", mem_put_run, METRIC_MBPS, 0.90, 0},
			 {"iov-4k", iov_run, METRIC_COPIED, 0, 0}},
		.nsubj = 2,
	},
	{
		.vs = "malloc+memcpy",
		.unit = "bytes",
		.setup = grow_setup,
		.baseline = malloc_memcpy_run,
		.subj = {{"mem-put-4k-grow", mem_grow_run, METRIC_NONE, 0, 0}},
		.nsubj = 1,
	},
	{
		.vs = "bswap-store",
		.unit = "values",
		.setup = be64_setup,
		.teardown = be64_teardown,
		.baseline = bswap_run,
		.subj = {{"mem-put-be64", be64_array_run, METRIC_NS, 0.5, 0},
			 {"mem-put-be64-single", be64_single_run, METRIC_NS, 0,
			  0}},
		.nsubj = 2,
	},
	{
		.vs = "write",
		.unit = "bytes",
		.setup = pipe_setup,
		.teardown = fd_teardown,
		.baseline = pipe_write_run,
		.subj = {{"fd-pipe-32k", pipe_async_run, METRIC_MBPS, 0.95, 0},
			 {"fd-pipe-32k-copy", pipe_copy_run, METRIC_NONE, 0,
			  0}},
		.nsubj = 2,
	},
	{
		.vs = "write",
		.unit = "bytes",
		.setup = null_setup,
		.teardown = fd_teardown,
		.baseline = null_write_run,
		.subj = {{"fd-devnull-4k", null_async_run, METRIC_MBPS, 0.95,
			  0}},
		.nsubj = 1,
	},
	{
		.vs = "no-checksum",
		.unit = "bytes",
		.setup = crc_setup,
		.teardown = codec_teardown,
		.baseline = crc_off_run,
		.subj = {{"native-crc-4k", crc_on_run, METRIC_MBPS, 0.87, 0}},
		.nsubj = 1,
	},
	{
		.vs = "no-checksum",
		.unit = "bytes",
		.setup = crc_setup,
		.teardown = codec_teardown,
		.baseline = crc_off_hot_run,
		.subj = {{"native-crc-4k-hot", crc_on_hot_run, METRIC_NONE, 0,
			  0}},
		.nsubj = 1,
	},
	{
		.vs = "raw-deflate",
		.unit = "bytes",
		.setup = zlib1_setup,
		.teardown = codec_teardown,
		.baseline = deflate_run,
		.subj = {{"native-zlib-4k", zlib_run, METRIC_MBPS, 0.95, 1.0}},
		.nsubj = 1,
	},
	{
		.vs = "raw-deflate",
		.unit = "bytes",
		.setup = zlib6_setup,
		.teardown = codec_teardown,
		.baseline = deflate_run,
		.subj = {{"native-zlib-4k-l6", zlib_run, METRIC_NONE, 0, 0}},
		.nsubj = 1,
	},
	{
		.vs = "unframed",
		.unit = "sections",
		.setup = frame_setup,
		.teardown = codec_teardown,
		.baseline = unframed_run,
		.subj = {{"qemu-frame", framed_run, METRIC_EXTRA, 0, 0}},
		.nsubj = 1,
	},
	{
		.vs = "memcpy",
		.unit = "bytes",
		.setup = vfu_setup,
		.teardown = vfu_teardown,
		.baseline = vfu_memcpy_run,
		.subj = {{"vfu-window-64k", vfu_run, METRIC_MBPS, 0.80, 0}},
		.nsubj = 1,
	},
	{
		.vs = "memcpy-via-64k",
		.unit = "bytes",
		.setup = vfu_setup,
		.teardown = vfu_teardown,
		.baseline = vfu_window_copy_run,
		.subj = {{"vfu-window-64k-floor", vfu_run, METRIC_NONE, 0, 0}},
		.nsubj = 1,
	},
	BENCH_DUMP_GROUPS BENCH_DEMO_GROUPS};

/**
 * fill_result() - Turn a subject's timings into its report.
 * @r: receives the report.
 * @g: the subject's group.
 * @sj: the subject.
 * @b: the bench, whose @units and @stats are used.
 * @base_t: the baseline's seconds per repetition (reordered).
 * @subj_t: the subject's seconds per repetition (reordered).
 * @reps: number of repetitions.
 */
static void fill_result(struct result *r, const struct group *g,
			const struct subject *sj, const struct bench *b,
			double *base_t, double *subj_t, int reps)
{
	double ratios[MAX_REPS], extra[MAX_REPS];
	int i;

	for (i = 0; i < reps; i++) {
		ratios[i] = base_t[i] / subj_t[i];
		extra[i] = subj_t[i] - base_t[i];
	}
	r->ratio = median(ratios, reps);
	r->ratio_min = ratios[0];
	r->ratio_max = ratios[reps - 1];
	r->baseline_s = median(base_t, reps);
	r->subject_s = median(subj_t, reps);
	r->name = sj->name;
	r->vs = g->vs;
	r->per_rep_unit = g->unit;
	r->units = b->units;
	r->reps = reps;
	r->metric = sj->metric;
	r->target = sj->target;
	r->stats = b->stats;
	r->size = (double)b->out_bytes;
	r->baseline_size = (double)b->base_out_bytes;
	r->size_target = sj->size_target;
	r->size_met = r->size <= r->baseline_size * (1 + sj->size_target / 100);

	switch (sj->metric) {
	case METRIC_NS:
		r->unit = "ns/value";
		r->value = r->subject_s * 1e9 / b->units;
		r->baseline_value = r->baseline_s * 1e9 / b->units;
		r->met = r->ratio >= sj->target;
		break;
	case METRIC_COPIED:
		/* memcpy() copies every byte: 1 copied byte per byte. */
		r->unit = "copied/byte";
		r->value = b->stats.bytes ? (double)b->stats.bytes_copied /
						    (double)b->stats.bytes
					  : 0;
		r->baseline_value = 1;
		r->met = b->stats.bytes_copied == 0;
		break;
	case METRIC_EXTRA:
		/* The median of the paired differences, per unit. */
		r->unit = "ns/section";
		r->value = median(extra, reps) * 1e9 / b->units;
		r->baseline_value = r->baseline_s * 1e9 / b->units;
		r->met = true;
		break;
	default:
		r->unit = "MB/s";
		r->value = b->units / r->subject_s / 1e6;
		r->baseline_value = b->units / r->baseline_s / 1e6;
		r->met = r->ratio >= sj->target;
		break;
	}
}

/* Whether case @name is selected by --case=@only (NULL selects all). */
static bool selected(const char *name, const char *only)
{
	size_t n;

	if (!only)
		return true;
	n = strlen(only);
	return !strncmp(name, only, n) && (!name[n] || name[n] == '-');
}

/**
 * run_group() - Measure a baseline and its selected subjects, interleaved.
 * @g: the group.
 * @b: the bench, set up and torn down here.
 * @only: the --case argument, or NULL for every subject.
 * @res: receives one result per selected subject.
 * @nres: receives the number of results.
 *
 * Repetition -1 is an untimed warm-up.  In repetition r the participants
 * (0 the baseline, 1... the subjects) run starting from number r + 1
 * modulo their count, so each of them goes first equally often.
 *
 * Return: 0, or -1 after a message.
 */
static int run_group(const struct group *g, struct bench *b, const char *only,
		     struct result *res, int *nres)
{
	double base_t[MAX_REPS], subj_t[MAX_SUBJECTS][MAX_REPS];
	ms_stream_stats stats[MAX_SUBJECTS];
	uint64_t out[MAX_SUBJECTS];
	int act[MAX_SUBJECTS], nact = 0;
	int reps = b->cfg->reps;
	int r, k, n, ret = -1;

	*nres = 0;
	for (k = 0; k < g->nsubj; k++)
		if (selected(g->subj[k].name, only))
			act[nact++] = k;
	if (!nact)
		return 0;
	n = nact + 1;

	b->units = 0;
	b->base_out_bytes = 0;
	if (g->setup && g->setup(b))
		goto out_teardown;
	for (r = -1; r < reps; r++) {
		for (k = 0; k < n; k++) {
			int p = (r + 1 + k) % n;
			double secs = 0;

			if (p == 0) {
				if (g->baseline(b, &secs))
					goto out_teardown;
				if (r >= 0)
					base_t[r] = secs;
				continue;
			}
			b->out_bytes = 0;
			if (g->subj[act[p - 1]].run(b, &secs))
				goto out_teardown;
			stats[p - 1] = b->stats;
			out[p - 1] = b->out_bytes;
			if (r >= 0)
				subj_t[p - 1][r] = secs;
		}
	}
	for (k = 0; k < nact; k++) {
		double bt[MAX_REPS];

		/* fill_result() sorts, so give each subject its own copy. */
		memcpy(bt, base_t, sizeof(bt[0]) * (size_t)reps);
		b->stats = stats[k];
		b->out_bytes = out[k];
		fill_result(&res[k], g, &g->subj[act[k]], b, bt, subj_t[k],
			    reps);
	}
	*nres = nact;
	ret = 0;
out_teardown:
	if (g->teardown && g->teardown(b))
		ret = -1;
	return ret;
}

/*
 * Output.
 */

static void print_line(const struct result *r)
{
	int prec = r->metric == METRIC_NS	? 2
		   : r->metric == METRIC_COPIED ? 3
						: 1;

	printf("%s %.*f %s ratio=%.2f vs=%s", r->name, prec, r->value, r->unit,
	       r->ratio, r->vs);
	if (r->metric == METRIC_COPIED)
		printf(" target==0 %s", r->met ? "ok" : "MISSED");
	else if (r->metric != METRIC_NONE && r->target > 0)
		printf(" target>=%.2f %s", r->target, r->met ? "ok" : "MISSED");
	/* Extra fields, after the required ones. */
	if (r->size > 0 && r->baseline_size > 0) {
		printf(" size=%+.2f%%", (r->size / r->baseline_size - 1) * 100);
		if (r->size_target > 0)
			printf(" size-target<=%+.0f%% %s", r->size_target,
			       r->size_met ? "ok" : "MISSED");
	}
	printf("\n");
	fflush(stdout);
}

/* Names and units are fixed identifiers: no JSON escaping is needed. */
static void print_json(const struct result *res, int n)
{
	int i;

	printf("{\"cases\":[");
	for (i = 0; i < n; i++) {
		const struct result *r = &res[i];

		printf("%s\n {\"case\":\"%s\",\"value\":%.6g,\"unit\":\"%s\","
		       "\"ratio\":%.4f,\"vs\":\"%s\",\"baseline_value\":%.6g",
		       i ? "," : "", r->name, r->value, r->unit, r->ratio,
		       r->vs, r->baseline_value);
		printf(",\"ratio_min\":%.4f,\"ratio_max\":%.4f,\"reps\":%d,"
		       "\"subject_median_s\":%.6g,\"baseline_median_s\":%.6g,"
		       "\"%s_per_rep\":%.0f",
		       r->ratio_min, r->ratio_max, r->reps, r->subject_s,
		       r->baseline_s, r->per_rep_unit, r->units);
		if (r->metric == METRIC_COPIED)
			printf(",\"mb_per_s\":%.6g,\"baseline_mb_per_s\":%.6g",
			       r->units / r->subject_s / 1e6,
			       r->units / r->baseline_s / 1e6);
		printf(",\"bytes_copied\":%llu,\"bytes_zero_copy\":%llu,"
		       "\"sink_calls\":%llu",
		       (unsigned long long)r->stats.bytes_copied,
		       (unsigned long long)r->stats.bytes_zero_copy,
		       (unsigned long long)r->stats.sink_calls);
		if (r->metric == METRIC_COPIED)
			printf(",\"target\":\"copied/byte==0\"");
		else if (r->metric != METRIC_NONE && r->target > 0)
			printf(",\"target\":\"ratio>=%.2f\"", r->target);
		if (r->metric == METRIC_COPIED || r->target > 0)
			printf(",\"target_met\":%s", r->met ? "true" : "false");
		if (r->size > 0 && r->baseline_size > 0) {
			printf(",\"size_bytes\":%.0f,\"baseline_size_bytes\":"
			       "%.0f,\"size_delta_pct\":%.4f",
			       r->size, r->baseline_size,
			       (r->size / r->baseline_size - 1) * 100);
			if (r->size_target > 0)
				printf(",\"size_target\":\"size_delta_pct<=%"
				       "g\","
				       "\"size_target_met\":%s",
				       r->size_target,
				       r->size_met ? "true" : "false");
		}
		printf("}");
	}
	printf("\n]}\n");
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: migstream-bench [--quick] [--json] [--reps=N] "
		"[--case=NAME]\n"
		"\n"
		"Measures migstream writers against plain C baselines in the "
		"same run.\n"
		"Each line: CASE VALUE UNIT ratio=R vs=BASELINE [target] "
		"[extra]\n"
		"  R is the median over the repetitions of baseline time / "
		"subject time\n"
		"  (1.0: as fast as the baseline; higher: faster).  MB/s are "
		"10^6 bytes/s.\n"
		"  iov-4k's value is bytes the stream copied per byte put; "
		"its target is 0.\n"
		"  qemu-frame's value is the time per section beyond the "
		"unframed puts.\n"
		"  size=+P%% compares the output size with the baseline's.\n"
		"\n"
		"  -q, --quick      smaller runs, under 10 seconds in all\n"
		"  -j, --json       print one JSON object instead of lines\n"
		"  -r, --reps=N     timed repetitions per case (1 to %d; "
		"default %d, %d quick)\n"
		"  -c, --case=NAME  run only NAME and the cases named "
		"NAME-...\n"
		"  -h, --help       show this help\n"
		"\n"
		"The exit status is 0 unless something failed; a missed "
		"target is not a failure.\n",
		MAX_REPS, REPS_FULL, REPS_QUICK);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"quick", no_argument, NULL, 'q'},
		{"json", no_argument, NULL, 'j'},
		{"reps", required_argument, NULL, 'r'},
		{"case", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct bench_config cfg = {
		.reps = 0,
		.mem_bytes = 256 * MIB,
		.be64_passes = 4096,
		.pipe_bytes = 1024 * MIB,
		.null_bytes = 8192 * MIB,
		.crc_bytes = 256 * MIB,
		.zlib_bytes = 16 * MIB,
		.frame_passes = 2000,
		.vfu_bytes = 256 * MIB,
	};
	struct result *res;
	const char *only = NULL;
	struct bench b;
	bool quick = false;
	int c, i, k, n, nres = 0, ret = 0;
	size_t ngroups = sizeof(groups) / sizeof(groups[0]), nsubj = 0;
	char *end;
	long v;

	while ((c = getopt_long(argc, argv, "qjr:c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			quick = true;
			break;
		case 'j':
			cfg.json = true;
			break;
		case 'r':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || v < 1 || v > MAX_REPS) {
				fprintf(stderr,
					"migstream-bench: --reps: expected 1 "
					"to %d, got '%s'\n",
					MAX_REPS, optarg);
				return 2;
			}
			cfg.reps = (int)v;
			break;
		case 'c':
			only = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (quick) {
		cfg.mem_bytes = 64 * MIB;
		cfg.be64_passes = 1024;
		cfg.pipe_bytes = 128 * MIB;
		cfg.null_bytes = 2048 * MIB;
		cfg.crc_bytes = 64 * MIB;
		cfg.zlib_bytes = 4 * MIB;
		cfg.frame_passes = 500;
		cfg.vfu_bytes = 32 * MIB;
	}
	cfg.quick = quick;
	bench_dump_config_init(&cfg.ext.dump, quick);
	bench_demo_config_init(&cfg.ext.demo, quick);
	if (!cfg.reps)
		cfg.reps = quick ? REPS_QUICK : REPS_FULL;

	/* A dead pipe reader must give EPIPE, not kill the benchmark. */
	signal(SIGPIPE, SIG_IGN);

	memset(&b, 0, sizeof(b));
	b.cfg = &cfg;
	b.fd = -1;
	b.child = -1;
	b.src = malloc(SRC_SIZE);
	if (!b.src) {
		sys_failed("malloc");
		return 1;
	}
	for (i = 0; i < (int)SRC_SIZE; i++)
		b.src[i] = (uint8_t)(i * 131 + (i >> 12));
	/* At most one result per subject of the case table. */
	for (i = 0; i < (int)ngroups; i++)
		nsubj += (size_t)groups[i].nsubj;
	res = calloc(nsubj, sizeof(*res));
	if (!res) {
		sys_failed("calloc");
		free(b.src);
		return 1;
	}

	for (i = 0; i < (int)ngroups; i++) {
		if (run_group(&groups[i], &b, only, &res[nres], &n)) {
			ret = 1;
			break;
		}
		for (k = 0; !cfg.json && k < n; k++)
			print_line(&res[nres + k]);
		nres += n;
	}
	if (!ret && !nres) {
		fprintf(stderr, "migstream-bench: no case named '%s'\n", only);
		ret = 2;
	}
	if (!ret && cfg.json)
		print_json(res, nres);
	free(res);
	free(b.src);
	return ret;
}
