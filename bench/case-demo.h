/* SPDX-License-Identifier: MIT */
/*
 * Configuration of the demo benchmark cases (bench/case-demo.c), included by
 * bench/migstream-bench.c.
 */
#ifndef MS_BENCH_CASE_DEMO_H
#define MS_BENCH_CASE_DEMO_H

#include <stdbool.h>
#include <stddef.h>

/**
 * struct bench_demo_config - Sizes of the demo cases.
 * @bytes: bytes one repetition moves.
 */
struct bench_demo_config {
	size_t bytes;
};

/* Fills @c for a full run, or a --quick one. */
static inline void bench_demo_config_init(struct bench_demo_config *c,
					  bool quick)
{
	c->bytes = quick ? 0 : 0;
}

#endif
