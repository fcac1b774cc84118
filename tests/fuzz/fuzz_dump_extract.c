/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: migstream-dump extract (tools/dump-extract.c) into a
 * directory of a private one, emptied after each input.
 *
 * Byte 0 of the input picks --max-bytes: bit 0 set, 64 KiB << (bits 1-4);
 * else 64 MiB (the default of 1 TiB would only make bigger sparse files).
 * The rest is the stream, written to a file.
 *
 * Invariants: no crash, no leak; a status of 0, 1 or 3; only regular
 * files, all in the output directory; their apparent sizes together at
 * most --max-bytes; after a success, one file per RAM block of the
 * stream's block list (besides desc.json and state.json), with the
 * blocks' sizes adding up to the file sizes.
 */
#include "config.h"

#include <inttypes.h>

#include "fuzz-dump.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The files of @dir: block files (all but desc.json and state.json). */
static void fx_scan(const char *dir, uint64_t *nfiles, uint64_t *bytes)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;
	char p[4300];

	*nfiles = 0;
	*bytes = 0;
	if (!d) {
		FD_ASSERT(errno == ENOENT);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		FD_ASSERT(snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) <
			  (int)sizeof(p));
		FD_ASSERT(!lstat(p, &st));
		FD_ASSERT(S_ISREG(st.st_mode));
		if (!strcmp(e->d_name, "desc.json") ||
		    !strcmp(e->d_name, "state.json"))
			continue;
		(*nfiles)++;
		*bytes += (uint64_t)st.st_size;
	}
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = fz_dir("fuzz_dump_extract");
	char in[4200], out[4200], opt[64];
	char *argv[5];
	uint64_t max, nfiles, bytes;
	struct dump_walk w;
	struct fd_list l;
	unsigned i;
	int ret, quiet;

	if (size < 1)
		return 0;
	max = data[0] & 1 ? UINT64_C(65536) << ((data[0] >> 1) & 15)
			  : UINT64_C(64) << 20;
	snprintf(in, sizeof(in), "%s/in", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(opt, sizeof(opt), "--max-bytes=%" PRIu64, max);
	FD_ASSERT(fz_empty_dir(dir, false));
	fz_write_file(in, data + 1, size - 1);
	argv[0] = (char *)"extract";
	argv[1] = opt;
	argv[2] = out;
	argv[3] = in;
	argv[4] = NULL;
	quiet = fd_quiet();
	ret = dump_extract_main(4, argv);
	fd_loud(quiet);
	FD_ASSERT(ret == DUMP_EXIT_OK || ret == DUMP_EXIT_INVALID ||
		  ret == DUMP_EXIT_IO);
	fx_scan(out, &nfiles, &bytes);
	FD_ASSERT(bytes <= max);
	if (ret == DUMP_EXIT_OK) {
		FD_ASSERT(fd_walk_list(in, true, false, &w, &l) ==
			  DUMP_EXIT_OK);
		FD_ASSERT(nfiles == w.nblk);
		for (i = 0; i < w.nblk; i++)
			bytes -= w.blk[i].len;
		FD_ASSERT(bytes == 0);
		dump_walk_free(&w);
		free(l.v);
	}
	/* Only regular files were made, and nothing outside out/. */
	FD_ASSERT(fz_empty_dir(out, true));
	FD_ASSERT(!unlink(in));
	FD_ASSERT(fz_empty_dir(dir, false));
	return 0;
}
