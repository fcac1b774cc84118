/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the benchmark's runner and cases (declared in bench/bench.h):
 * time, error reports, the cycled source data, medians.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Elapsed seconds since @t0, never 0 so that ratios stay finite. */
double since(double t0)
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
int stream_failed(const char *what, int ret, ms_stream *s)
{
	fprintf(stderr, "migstream-bench: %s failed: %s%s%s\n", what,
		ms_strerror(ret), s ? ": " : "", s ? ms_stream_errmsg(s) : "");
	return -1;
}

/* Report a failed system call (errno is set); returns -1. */
int sys_failed(const char *what)
{
	fprintf(stderr, "migstream-bench: %s: %s\n", what, strerror(errno));
	return -1;
}

/* The @i-th chunk of @len bytes of the source, wrapping around. */
const uint8_t *src_chunk(const struct bench *b, size_t i, size_t len)
{
	return b->src + (i * len) % SRC_SIZE;
}

/* write() all of @len bytes, completing short writes and EINTR. */
int write_all(int fd, const uint8_t *p, size_t len)
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
double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	if (n % 2)
		return v[n / 2];
	return (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The counters of @s minus those in @before: what one run added. */
void stats_since(ms_stream *s, const ms_stream_stats *before,
		 ms_stream_stats *out)
{
	ms_stream_get_stats(s, out);
	out->bytes -= before->bytes;
	out->bytes_copied -= before->bytes_copied;
	out->bytes_zero_copy -= before->bytes_zero_copy;
	out->sink_calls -= before->sink_calls;
}

int mem_teardown(struct bench *b)
{
	int ret = ms_stream_close(b->mem);

	free(b->dst);
	b->dst = NULL;
	b->mem = NULL;
	if (ret)
		return stream_failed("ms_stream_close", ret, NULL);
	return 0;
}
