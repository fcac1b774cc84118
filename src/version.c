/* SPDX-License-Identifier: MIT */
#include "config.h"

#include "migstream/version.h"

unsigned ms_version(void)
{
	return MS_VERSION_HEX;
}

const char *ms_version_string(void)
{
	return MS_VERSION_STRING;
}
