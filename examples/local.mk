# Examples: built by 'make', and run by 'make check' (the demo's tests
# are in tests/demo/).
# Included by the top Makefile.am.

noinst_PROGRAMS += examples/stream-demo examples/vfio-user-device
TESTS += examples/stream-demo examples/vfio-user-device

examples_stream_demo_SOURCES = examples/stream-demo.c
examples_stream_demo_LDADD = $(LIBMS)

examples_vfio_user_device_SOURCES = examples/vfio-user-device.c
examples_vfio_user_device_LDADD = $(LIBMS)

# The end-to-end demo: a machine migrated between two processes.  Its
# machine is also run in-process by the demo-migrate benchmark case.
DEMO_SOURCES = examples/migrate-demo-machine.c examples/migrate-demo.h

noinst_PROGRAMS += examples/migrate-demo
examples_migrate_demo_SOURCES = examples/migrate-demo.c $(DEMO_SOURCES)
examples_migrate_demo_LDADD = $(LIBMS)

# A real vfio-user device server on libvfio-user, when configure finds it
# (--with-libvfio-user[=DIR]); not run by 'make check' (a vfio-user client
# drives it: see the file's comment).  CI compiles it against the mock
# header of each API version instead (vfu_types_check in .ci/run).
if BUILD_VFU_SERVER
noinst_PROGRAMS += examples/vfio-user-server
endif
examples_vfio_user_server_SOURCES = examples/vfio-user-server.c
examples_vfio_user_server_CPPFLAGS = $(AM_CPPFLAGS) $(LIBVFIO_USER_CFLAGS)
examples_vfio_user_server_LDADD = $(LIBMS) $(LIBVFIO_USER_LIBS)
