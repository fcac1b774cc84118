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
 *
 * This file is the runner: options, repetitions, medians and the output.
 * The cases are listed in bench/cases.h and live in bench/case-*.c, one
 * file per family (stream core, codec, vfio-user adapter, dump tool,
 * demo); bench/bench.h holds what the runner and the cases share.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"

/* Default timed repetitions, full and --quick. */
#define REPS_FULL  15
#define REPS_QUICK 7

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

/* Whether a selected group was skipped (its setup said why). */
static bool any_skipped;

/* The groups of bench/cases.h, in their order. */
#define BENCH_GROUP_ENTRY(family, name) &bench_group_##name,
static const struct group *const groups[] = {BENCH_CASES(BENCH_GROUP_ENTRY)};
#undef BENCH_GROUP_ENTRY

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
	if (g->setup && (ret = g->setup(b)) != 0) {
		/* 1: skipped, with a message; -1: failed. */
		any_skipped = any_skipped || ret > 0;
		ret = ret > 0 ? 0 : -1;
		goto out_teardown;
	}
	ret = -1;
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
	bench_ram_config_init(&cfg.ext.ram, quick);
	bench_snap_config_init(&cfg.ext.snap, quick);
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
		nsubj += (size_t)groups[i]->nsubj;
	res = calloc(nsubj, sizeof(*res));
	if (!res) {
		sys_failed("calloc");
		free(b.src);
		return 1;
	}

	for (i = 0; i < (int)ngroups; i++) {
		if (run_group(groups[i], &b, only, &res[nres], &n)) {
			ret = 1;
			break;
		}
		for (k = 0; !cfg.json && k < n; k++)
			print_line(&res[nres + k]);
		nres += n;
	}
	if (!ret && !nres && !any_skipped) {
		fprintf(stderr, "migstream-bench: no case named '%s'\n", only);
		ret = 2;
	}
	if (!ret && cfg.json)
		print_json(res, nres);
	free(res);
	free(b.src);
	return ret;
}