/* SPDX-License-Identifier: MIT */
/*
 * Configuration of the demo benchmark cases (bench/case-demo.c), part of
 * struct bench_config (bench/bench.h).
 */
#ifndef MS_BENCH_CASE_DEMO_H
#define MS_BENCH_CASE_DEMO_H

#include <stdbool.h>
#include <stddef.h>

/**
 * struct bench_demo_config - Sizes of the demo cases.
 * @bytes: bytes of guest RAM the demo migrates per repetition.
 * @zero_pct: percentage of those pages that are zeros.
 * @rate: guest page writes per second during the migration.
 * @downtime_ms: the demo's downtime target.
 */
struct bench_demo_config {
	size_t bytes;
	unsigned zero_pct;
	unsigned rate;
	unsigned downtime_ms;
};

/**
 * bench_demo_config_init() - Sizes for a full run or a --quick one.
 * @c: receives the sizes.
 * @quick: whether the run is --quick.
 *
 * A full run migrates 1 GiB with half the pages zero, a quick one 128 MiB.
 */
static inline void bench_demo_config_init(struct bench_demo_config *c,
					  bool quick)
{
	c->bytes = quick ? (size_t)128 << 20 : (size_t)1 << 30;
	c->zero_pct = 50;
	c->rate = 1000;
	c->downtime_ms = 300;
}

#endif
