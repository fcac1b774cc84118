/* SPDX-License-Identifier: MIT */
/*
 * migstream-bench: throughput of the stream core measured against plain C
 * baselines in the same run.
 *
 * Every case pairs a subject (a migstream writer) with a baseline doing
 * the same work without the library (memcpy(), byte-swapped stores,
 * write()).  Each repetition runs the baseline and the subjects of a case
 * back to back, in an order that rotates from one repetition to the next,
 * so that slow drifts of the machine (frequency, other load) hit both
 * sides alike.  A case's ratio is the median over the repetitions of
 * baseline time / subject time: 1.0 means as fast as the baseline, more
 * means faster.  Values are medians too.
 *
 * Output: one line per case,
 *   CASE VALUE UNIT ratio=R vs=BASELINE [target>=T ok|MISSED]
 * or, with --json, one JSON object.  The exit status is non-zero only when
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

/* Default timed repetitions, full and --quick. */
#define REPS_FULL  15
#define REPS_QUICK 7

#define MAX_SUBJECTS 2
#define MAX_RESULTS  8
#define MAX_REPS     101

/**
 * struct bench_config - What to run and how much of it.
 * @json: print one JSON object instead of one line per case.
 * @reps: timed repetitions per case (after one untimed warm-up).
 * @mem_bytes: bytes put per repetition by the memory and iovec cases.
 * @be64_passes: passes of BE64_VALUES values per repetition.
 * @pipe_bytes: bytes written per repetition by the pipe cases.
 * @null_bytes: bytes written per repetition by the /dev/null case.
 */
struct bench_config {
	bool json;
	int reps;
	size_t mem_bytes;
	size_t be64_passes;
	size_t pipe_bytes;
	size_t null_bytes;
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
};

/* One timed run: 0 and the elapsed seconds, or -1 after a message. */
typedef int (*run_fn)(struct bench *b, double *secs);

/* How a subject's value is computed and printed. */
enum metric {
	METRIC_MBPS,   /* MB/s, with a least acceptable ratio */
	METRIC_NS,     /* nanoseconds per value, with a least ratio */
	METRIC_COPIED, /* bytes the stream copied per byte put; target 0 */
	METRIC_NONE,   /* MB/s, for information: no target */
};

/**
 * struct subject - One reported case.
 * @name: the case name printed first on its line.
 * @run: one timed run.
 * @metric: what its value is.
 * @target: the least acceptable ratio (METRIC_MBPS and METRIC_NS); 0 for
 *          a line reported for information only.
 */
struct subject {
	const char *name;
	run_fn run;
	enum metric metric;
	double target;
};

/**
 * struct group - A baseline and the subjects measured against it.
 * @vs: the baseline's name.
 * @unit: what @bench.units counts ("bytes" or "values").
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
 * The cases.
 */

static const struct group groups[] = {
	{
		.vs = "memcpy",
		.unit = "bytes",
		.setup = mem_setup,
		.teardown = mem_teardown,
		.baseline = memcpy_run,
		.subj = {{"mem-put-4k", mem_put_run, METRIC_MBPS, 0.90},
			 {"iov-4k", iov_run, METRIC_COPIED, 0}},
		.nsubj = 2,
	},
	{
		.vs = "malloc+memcpy",
		.unit = "bytes",
		.setup = grow_setup,
		.baseline = malloc_memcpy_run,
		.subj = {{"mem-put-4k-grow", mem_grow_run, METRIC_NONE, 0}},
		.nsubj = 1,
	},
	{
		.vs = "bswap-store",
		.unit = "values",
		.setup = be64_setup,
		.teardown = be64_teardown,
		.baseline = bswap_run,
		.subj = {{"mem-put-be64", be64_array_run, METRIC_NS, 0.5},
			 {"mem-put-be64-single", be64_single_run, METRIC_NS,
			  0}},
		.nsubj = 2,
	},
	{
		.vs = "write",
		.unit = "bytes",
		.setup = pipe_setup,
		.teardown = fd_teardown,
		.baseline = pipe_write_run,
		.subj = {{"fd-pipe-32k", pipe_async_run, METRIC_MBPS, 0.95},
			 {"fd-pipe-32k-copy", pipe_copy_run, METRIC_NONE, 0}},
		.nsubj = 2,
	},
	{
		.vs = "write",
		.unit = "bytes",
		.setup = null_setup,
		.teardown = fd_teardown,
		.baseline = null_write_run,
		.subj = {{"fd-devnull-4k", null_async_run, METRIC_MBPS, 0.95}},
		.nsubj = 1,
	},
};

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
	double ratios[MAX_REPS];
	int i;

	for (i = 0; i < reps; i++)
		ratios[i] = base_t[i] / subj_t[i];
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
			if (g->subj[act[p - 1]].run(b, &secs))
				goto out_teardown;
			stats[p - 1] = b->stats;
			if (r >= 0)
				subj_t[p - 1][r] = secs;
		}
	}
	for (k = 0; k < nact; k++) {
		double bt[MAX_REPS];

		/* fill_result() sorts, so give each subject its own copy. */
		memcpy(bt, base_t, sizeof(bt[0]) * (size_t)reps);
		b->stats = stats[k];
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
		"Each line: CASE VALUE UNIT ratio=R vs=BASELINE [target]\n"
		"  R is the median over the repetitions of baseline time / "
		"subject time\n"
		"  (1.0: as fast as the baseline; higher: faster).  MB/s are "
		"10^6 bytes/s.\n"
		"  iov-4k's value is bytes the stream copied per byte put; "
		"its target is 0.\n"
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
	};
	struct result res[MAX_RESULTS];
	const char *only = NULL;
	struct bench b;
	bool quick = false;
	int c, i, k, n, nres = 0, ret = 0;
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
	}
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

	for (i = 0; i < (int)(sizeof(groups) / sizeof(groups[0])); i++) {
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
	free(b.src);
	return ret;
}
