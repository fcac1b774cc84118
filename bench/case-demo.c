/* SPDX-License-Identifier: MIT */
/*
 * The demo benchmark cases, included by bench/migstream-bench.c (they use its
 * struct bench, struct group and helpers).  BENCH_DEMO_GROUPS expands to
 * the initializers of this file's groups, each followed by a comma.
 */

#define BENCH_DEMO_GROUPS /* none yet */
