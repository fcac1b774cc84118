/* SPDX-License-Identifier: MIT */
/*
 * Configuration of the dump benchmark cases (bench/case-dump.c), part of
 * struct bench_config (bench/bench.h).
 */
#ifndef MS_BENCH_CASE_DUMP_H
#define MS_BENCH_CASE_DUMP_H

#include <stdbool.h>
#include <stddef.h>

/**
 * struct bench_dump_config - Sizes of the dump cases.
 * @bytes: RAM bytes of the stream dump-verify generates and reads each
 *         repetition (the stream is that plus 8 bytes a page, and a few
 *         hundred of framing).
 */
struct bench_dump_config {
	size_t bytes;
};

/* Fills @c for a full run, or a --quick one. */
static inline void bench_dump_config_init(struct bench_dump_config *c,
					  bool quick)
{
	c->bytes = quick ? (size_t)64 << 20 : (size_t)256 << 20;
}

#endif
