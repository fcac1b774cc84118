/* SPDX-License-Identifier: MIT */
/*
 * The stream core's cases: the memory sink (mem-put-4k, mem-put-4k-grow,
 * iov-4k), big-endian puts (mem-put-be64, mem-put-be64-single) and the fd
 * sink on a pipe and on /dev/null (fd-pipe-32k, fd-pipe-32k-copy,
 * fd-devnull-4k).  Their groups are listed in bench/cases.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cases.h"

/* Chunk size of the pipe cases. */
#define CHUNK_32K (32 * KIB)
/* Values per pass of mem-put-be64: 64 KiB of output, cache-resident. */
#define BE64_VALUES 8192
/* Read size of the process draining the pipe. */
#define DRAIN_SIZE (256 * KIB)

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

const struct group bench_group_mem_put_4k = {
	.vs = "memcpy",
	.unit = "bytes",
	.setup = mem_setup,
	.teardown = mem_teardown,
	.baseline = memcpy_run,
	.subj = {{"mem-put-4k", mem_put_run, METRIC_MBPS, 0.90, 0},
		 {"iov-4k", iov_run, METRIC_COPIED, 0, 0}},
	.nsubj = 2,
};

const struct group bench_group_mem_put_4k_grow = {
	.vs = "malloc+memcpy",
	.unit = "bytes",
	.setup = grow_setup,
	.baseline = malloc_memcpy_run,
	.subj = {{"mem-put-4k-grow", mem_grow_run, METRIC_NONE, 0, 0}},
	.nsubj = 1,
};

const struct group bench_group_mem_put_be64 = {
	.vs = "bswap-store",
	.unit = "values",
	.setup = be64_setup,
	.teardown = be64_teardown,
	.baseline = bswap_run,
	.subj = {{"mem-put-be64", be64_array_run, METRIC_NS, 0.5, 0},
		 {"mem-put-be64-single", be64_single_run, METRIC_NS, 0, 0}},
	.nsubj = 2,
};

const struct group bench_group_fd_pipe_32k = {
	.vs = "write",
	.unit = "bytes",
	.setup = pipe_setup,
	.teardown = fd_teardown,
	.baseline = pipe_write_run,
	.subj = {{"fd-pipe-32k", pipe_async_run, METRIC_MBPS, 0.95, 0},
		 {"fd-pipe-32k-copy", pipe_copy_run, METRIC_NONE, 0, 0}},
	.nsubj = 2,
};

const struct group bench_group_fd_devnull_4k = {
	.vs = "write",
	.unit = "bytes",
	.setup = null_setup,
	.teardown = fd_teardown,
	.baseline = null_write_run,
	.subj = {{"fd-devnull-4k", null_async_run, METRIC_MBPS, 0.95, 0}},
	.nsubj = 1,
};
