/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the pull parser in the QEMU profile ("QEVM" version 3).
 * See fuzz-common.h for the layout of an input.  Option bits of the mode:
 * bit 3 no_footers, bit 4 no_vmdesc, bit 5 no_configuration.
 */
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f;

	if (!fz_init(&f, data, size, MS_PROFILE_QEMU))
		return 0;
	f.copts.no_footers = f.mode & FZ_MODE_OPT_A;
	f.copts.no_vmdesc = f.mode & FZ_MODE_OPT_B;
	f.copts.no_configuration = f.mode & FZ_MODE_OPT_C;
	f.no_footers = f.copts.no_footers;
	fz_run(&f);
	return 0;
}
