/* SPDX-License-Identifier: MIT */
/*
 * The dump benchmark cases, included by bench/migstream-bench.c (they use its
 * struct bench, struct group and helpers).  BENCH_DUMP_GROUPS expands to
 * the initializers of this file's groups, each followed by a comma.
 */

#define BENCH_DUMP_GROUPS /* none yet */
