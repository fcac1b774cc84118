/* SPDX-License-Identifier: MIT */
/*
 * The registry: the section handlers of one VM or device server, in
 * registration order, which is their section ids' and the save's order.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "driver-impl.h"

int ms_registry_new(ms_registry **out, const ms_allocator *allocator)
{
	ms_registry *reg;

	if (!out)
		return -EINVAL;
	reg = ms__malloc(allocator, sizeof(*reg));
	if (!reg)
		return -ENOMEM;
	memset(reg, 0, sizeof(*reg));
	reg->a = allocator;
	*out = reg;
	return 0;
}

void ms_registry_free(ms_registry *reg)
{
	if (!reg)
		return;
	ms__free(reg->a, reg->h);
	ms__free(reg->a, reg);
}

const char *ms_registry_errmsg(const ms_registry *reg)
{
	return reg->refused.code ? reg->refused.msg : "";
}

int ms__registry_refuse(ms_registry *reg, int err, const char *fmt, ...)
{
	va_list ap;

	memset(&reg->refused, 0, sizeof(reg->refused));
	va_start(ap, fmt);
	ms__error_vset(&reg->refused, err, -EINVAL, MS__NO_OFFSET,
		       MS__NO_SECTION, NULL, fmt, ap);
	va_end(ap);
	return reg->refused.code;
}

int ms__driver_codec_copy(ms_registry *reg, ms_codec_opts *dst,
			  const ms_codec_opts *src, bool reader,
			  const char *what)
{
	if (src && src->version != MS_CODEC_OPTS_VERSION)
		return ms__registry_refuse(reg, -EINVAL,
					   "%s: codec->version is %u, expected "
					   "MS_CODEC_OPTS_VERSION (%u)",
					   what, src->version,
					   MS_CODEC_OPTS_VERSION);
	if (src) {
		*dst = *src;
	} else {
		/* The one default (readers detect the profile). */
		ms_codec_opts_init(dst);
		if (reader)
			dst->profile = MS_PROFILE_AUTO;
	}
	if (!dst->allocator)
		dst->allocator = reg->a;
	return 0;
}

struct ms__handler *ms__registry_find(ms_registry *reg, const char *idstr,
				      uint32_t instance_id)
{
	size_t i;

	for (i = 0; i < reg->n; i++)
		if (reg->h[i].instance_id == instance_id &&
		    !strcmp(reg->h[i].idstr, idstr))
			return &reg->h[i];
	return NULL;
}

/* Why @ops cannot be registered, or NULL if it can. */
static const char *ops_problem(const ms_handler_ops *ops)
{
	if (!ops)
		return "no ops";
	if (ops->version != MS_HANDLER_OPS_VERSION)
		return "ops->version is not MS_HANDLER_OPS_VERSION (version 2 "
		       "passes opaque first to every callback)";
	if (!ops->load)
		return "ops->load is NULL";
	if (!ops->save_iterate && !ops->save_state)
		return "neither ops->save_iterate nor ops->save_state is set";
	return NULL;
}

/* Check ms_registry_add()'s arguments: 0 or the refusal. */
static int add_check(ms_registry *reg, const char *idstr, uint32_t version_id,
		     uint32_t min_version_id, const ms_handler_ops *ops)
{
	const char *why = ops_problem(ops);

	if (!idstr)
		why = "idstr is NULL";
	else if (!idstr[0])
		why = "idstr is empty";
	else if (strlen(idstr) > MS_COUNTED_STRING_MAX)
		why = "idstr is longer than MS_COUNTED_STRING_MAX (255) bytes";
	if (why)
		return ms__registry_refuse(reg, -EINVAL,
					   "ms_registry_add: '%s': %s",
					   idstr ? idstr : "(null)", why);
	if (min_version_id > version_id)
		return ms__registry_refuse(
			reg, -EINVAL,
			"ms_registry_add: '%s': min_version_id %u is above "
			"version_id %u",
			idstr, min_version_id, version_id);
	if (reg->n >= MS_MAX_SECTIONS)
		return ms__registry_refuse(
			reg, -EINVAL,
			"ms_registry_add: '%s': the registry "
			"already holds MS_MAX_SECTIONS (%u)",
			idstr, MS_MAX_SECTIONS);
	return 0;
}

int ms_registry_add(ms_registry *reg, const char *idstr, uint32_t instance_id,
		    uint32_t version_id, uint32_t min_version_id,
		    const ms_handler_ops *ops, void *opaque,
		    uint32_t *section_id)
{
	struct ms__handler *h;

	if (!reg)
		return -EINVAL;
	if (add_check(reg, idstr, version_id, min_version_id, ops))
		return -EINVAL;
	if (ms__registry_find(reg, idstr, instance_id))
		return ms__registry_refuse(reg, -EEXIST,
					   "ms_registry_add: '%s' instance %u "
					   "is already registered",
					   idstr, instance_id);
	if (reg->n == reg->cap) {
		size_t cap = reg->cap ? reg->cap * 2 : 16;
		struct ms__handler *n =
			ms__realloc(reg->a, reg->h, cap * sizeof(*n));

		if (!n)
			return ms__registry_refuse(reg, -ENOMEM,
						   "ms_registry_add: '%s': out "
						   "of memory",
						   idstr);
		reg->h = n;
		reg->cap = cap;
	}
	h = &reg->h[reg->n];
	memset(h, 0, sizeof(*h));
	strcpy(h->idstr, idstr);
	h->instance_id = instance_id;
	h->version_id = version_id;
	h->min_version_id = min_version_id;
	h->section_id = (uint32_t)reg->n;
	h->ops = ops;
	h->opaque = opaque;
	reg->n++;
	if (section_id)
		*section_id = h->section_id;
	return 0;
}
