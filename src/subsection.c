/* SPDX-License-Identifier: MIT */
/*
 * Subsection headers inside section payloads.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "internal.h"
#include "migstream/section.h"

int ms_put_subsection(ms_stream *s, const char *name, uint32_t version_id)
{
	int ret;

	if (!name || strlen(name) > MS_COUNTED_STRING_MAX)
		return -EINVAL;
	ms_put_u8(s, MS_REC_SUBSECTION);
	ret = ms_put_counted_string(s, name);
	if (ret)
		return ret;
	return ms_put_be32(s, version_id);
}

int ms_get_subsection(ms_stream *s, const char *parent,
		      char name[MS_COUNTED_STRING_MAX + 1],
		      uint32_t *version_id)
{
	size_t plen = strlen(parent), len;
	const uint8_t *p;
	ssize_t n;

	name[0] = '\0';
	*version_id = 0;
	/* Type, length and the "parent/" prefix, without consuming. */
	n = ms_peek(s, &p, 2 + plen + 1);
	if (n < 0)
		return (int)n;
	if (n < 2 || p[0] != MS_REC_SUBSECTION)
		return 0;
	len = p[1];
	if (len < plen + 2 || (size_t)n < 2 + plen + 1 ||
	    memcmp(p + 2, parent, plen) || p[2 + plen] != '/')
		return 0;
	ms_skip(s, 1);
	ms_get_counted_string(s, name);
	ms_get_be32(s, version_id);
	return ms_stream_error(s) ? ms_stream_error(s) : 1;
}
