# The end-to-end demo (examples/migrate-demo): real processes over
# loopback TCP, snapshots, faults; and docs/EMBEDDING.md, whose C blocks,
# end to end, are one program, compiled with the project's flags and run.
# Included by tests/local.mk.

TESTS += tests/demo/check-demo.sh
EXTRA_DIST += tests/demo/check-demo.sh
# Mapped snapshot files: rounds, both restore modes, sizes, killed saves.
TESTS += tests/demo/check-demo-mapped.sh
EXTRA_DIST += tests/demo/check-demo-mapped.sh

check_PROGRAMS += tests/demo/demo-embedding
nodist_tests_demo_demo_embedding_SOURCES = tests/demo/demo-embedding.c
tests_demo_demo_embedding_LDADD = $(LIBMS)
DISTCLEANFILES += tests/demo/demo-embedding.c
tests/demo/demo-embedding.c: $(srcdir)/docs/EMBEDDING.md
	@$(MKDIR_P) tests/demo
	$(AWK) '/^```c$$/ { on = 1; next } /^```$$/ { on = 0 } on' \
		$(srcdir)/docs/EMBEDDING.md >$@.tmp && mv $@.tmp $@
TESTS += tests/demo/check-demo-embedding.sh
EXTRA_DIST += tests/demo/check-demo-embedding.sh
