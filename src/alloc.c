/* SPDX-License-Identifier: MIT */
/*
 * Allocation through the per-object hooks of struct ms_allocator.
 */
#include "config.h"

#include <stdlib.h>

#include "internal.h"

void *ms__malloc(const ms_allocator *a, size_t size)
{
	if (size == 0)
		size = 1;
	if (a)
		return a->malloc(a->opaque, size);
	return malloc(size);
}

void *ms__realloc(const ms_allocator *a, void *ptr, size_t size)
{
	if (size == 0)
		size = 1;
	if (a)
		return a->realloc(a->opaque, ptr, size);
	return realloc(ptr, size);
}

void ms__free(const ms_allocator *a, void *ptr)
{
	if (!ptr)
		return;
	if (a)
		a->free(a->opaque, ptr);
	else
		free(ptr);
}
