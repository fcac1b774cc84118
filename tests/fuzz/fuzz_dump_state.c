/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the state decoder of migstream-dump (tools/dump-state.c,
 * dump_state_write()) with its VM description.
 *
 * Byte 0 of the input picks where the description comes from: bit 0 set,
 * the stream's own trailer (kept by a lenient walk first; no trailer, no
 * decoding); else bytes 1-2 are a be16 length N and the next N bytes the
 * JSON, the rest the stream.  The stream is written to a file; the output
 * goes to /dev/null.
 *
 * Invariants: no crash, no leak, a status of 0, 1 or 3, and the same
 * status for the same input twice (nothing is kept from one call to the
 * next).
 */
#include "config.h"

#include "fuzz-dump.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *fs_null;

static int fs_decode(const char *path, const char *json, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret, quiet;

	FD_ASSERT(fd >= 0);
	quiet = fd_quiet();
	ret = dump_state_write("fuzz", fd, json, len, fs_null);
	fd_loud(quiet);
	close(fd);
	FD_ASSERT(ret == DUMP_EXIT_OK || ret == DUMP_EXIT_INVALID ||
		  ret == DUMP_EXIT_IO);
	return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = fz_dir("fuzz_dump_state");
	const uint8_t *json, *stream;
	char path[4200];
	struct dump_walk w;
	struct fd_list l;
	size_t jlen, slen;
	int ret;

	if (!fs_null) {
		fs_null = fopen("/dev/null", "w");
		FD_ASSERT(fs_null != NULL);
	}
	if (size < 1)
		return 0;
	snprintf(path, sizeof(path), "%s/in", dir);
	if (data[0] & 1) {
		fz_write_file(path, data + 1, size - 1);
		ret = fd_quiet();
		fd_walk_list(path, false, true, &w, &l);
		fd_loud(ret);
		if (w.vmdesc) {
			ret = fs_decode(path, w.vmdesc, w.vmdesc_len);
			FD_ASSERT(fs_decode(path, w.vmdesc, w.vmdesc_len) ==
				  ret);
		}
		dump_walk_free(&w);
		free(l.v);
		return 0;
	}
	if (size < 3)
		return 0;
	jlen = (size_t)data[1] << 8 | data[2];
	if (jlen > size - 3)
		jlen = size - 3;
	json = data + 3;
	stream = json + jlen;
	slen = size - 3 - jlen;
	fz_write_file(path, stream, slen);
	ret = fs_decode(path, (const char *)json, jlen);
	FD_ASSERT(fs_decode(path, (const char *)json, jlen) == ret);
	return 0;
}
