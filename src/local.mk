# The library, its public headers and its pkg-config file.
# Included by the top Makefile.am.

lib_LIBRARIES += src/libmigstream.a
src_libmigstream_a_CFLAGS = $(AM_CFLAGS) -fPIC $(ZLIB_CFLAGS)
# One file a line, so that adding or removing a source merges cleanly.
src_libmigstream_a_SOURCES = \
	src/internal.h \
	src/stream-impl.h \
	src/alloc.c \
	src/arena.c \
	src/error.c \
	src/version.c \
	src/stream.c \
	src/sink-mem.c \
	src/sink-fd.c \
	src/sink-iov.c \
	src/sink-custom.c \
	src/sink-feed.c \
	src/substream.c \
	src/crc.c \
	src/codec.h \
	src/codec.c \
	src/codec-qemu.c \
	src/codec-native.c \
	src/subsection.c \
	src/driver-impl.h \
	src/registry.c \
	src/save.c \
	src/load.c \
	src/vfio-user.c \
	src/ram-impl.h \
	src/ram.c \
	src/ram-load.c \
	src/ram-channel.c \
	src/ram-mapped.c

migstreamincludedir = $(includedir)/migstream
migstreaminclude_HEADERS = \
	include/migstream/migstream.h \
	include/migstream/stream.h \
	include/migstream/section.h \
	include/migstream/driver.h \
	include/migstream/vfio_user.h \
	include/migstream/qemu_ram.h \
	include/migstream/ram.h
nodist_migstreaminclude_HEADERS = include/migstream/version.h
EXTRA_DIST += include/migstream/version.h.in
DISTCLEANFILES += include/migstream/version.h

pkgconfig_DATA = migstream.pc
EXTRA_DIST += migstream.pc.in
DISTCLEANFILES += migstream.pc

# What the programs of the other folders link.
LIBMS = src/libmigstream.a $(ZLIB_LIBS)
