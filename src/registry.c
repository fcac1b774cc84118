/* SPDX-License-Identifier: MIT */
/*
 * The registry: the section handlers of one VM or device server, in
 * registration order, which is their section ids' and the save's order.
 */
#include "config.h"

#include <errno.h>
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

int ms_registry_add(ms_registry *reg, const char *idstr, uint32_t instance_id,
		    uint32_t version_id, uint32_t min_version_id,
		    const ms_handler_ops *ops, void *opaque)
{
	struct ms__handler *h;

	if (!reg || !idstr || !ops || ops->version != MS_HANDLER_OPS_VERSION ||
	    !ops->load || (!ops->save_iterate && !ops->save_state) ||
	    strlen(idstr) > MS_COUNTED_STRING_MAX || !idstr[0] ||
	    min_version_id > version_id || reg->n >= MS_MAX_SECTIONS)
		return -EINVAL;
	if (ms__registry_find(reg, idstr, instance_id))
		return -EEXIST;
	if (reg->n == reg->cap) {
		size_t cap = reg->cap ? reg->cap * 2 : 16;
		struct ms__handler *n =
			ms__realloc(reg->a, reg->h, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
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
	return (int)h->section_id;
}
