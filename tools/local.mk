# The migstream-dump tool and its man page.
# Included by the top Makefile.am.

# The walker, the input layer (with the mapped file reader it opens
# mapped files with) and the state decoder: the tool's core,
# which the dump tests and fuzz targets link too.
DUMP_CORE_SOURCES = \
	tools/dump.h \
	tools/dump-walk.c \
	tools/dump-input.c \
	tools/dump-mapped.c \
	tools/dump-state.c
DUMP_CFLAGS = $(AM_CFLAGS) $(ZLIB_CFLAGS) $(JANSSON_CFLAGS) \
	-I$(top_srcdir)/tools
DUMP_LDADD = $(LIBMS) $(JANSSON_LIBS) -lm

bin_PROGRAMS += tools/migstream-dump
tools_migstream_dump_SOURCES = \
	tools/migstream-dump.c \
	tools/dump-convert.c \
	tools/dump-extract.c \
	$(DUMP_CORE_SOURCES)
tools_migstream_dump_CFLAGS = $(AM_CFLAGS) $(ZLIB_CFLAGS) $(JANSSON_CFLAGS)
tools_migstream_dump_LDADD = $(DUMP_LDADD)
dist_man1_MANS = tools/migstream-dump.1
