# migstream-bench: numbers as ratios against baselines measured in the
# same run.  'make bench' runs it (BENCH_FLAGS=--quick for a short run).
# Included by the top Makefile.am, after examples/local.mk.

noinst_PROGRAMS += bench/migstream-bench
# The runner, the case list, and one file per case family.
bench_migstream_bench_SOURCES = \
	bench/migstream-bench.c \
	bench/bench.h \
	bench/cases.h \
	bench/util.c \
	bench/case-stream.c \
	bench/case-codec.c \
	bench/case-vfu.c \
	bench/case-dump.c \
	bench/case-dump.h \
	bench/case-demo.c \
	bench/case-demo.h \
	bench/case-ram.c \
	bench/case-snap.c \
	$(DEMO_SOURCES)
bench_migstream_bench_CFLAGS = $(AM_CFLAGS) $(ZLIB_CFLAGS)
bench_migstream_bench_LDADD = $(LIBMS)

.PHONY: bench
bench: bench/migstream-bench
	$(top_builddir)/bench/migstream-bench $(BENCH_FLAGS)
