/* SPDX-License-Identifier: MIT */
/*
 * Private declarations shared by the registry, the save driver and the
 * load driver (src/registry.c, src/save.c, src/load.c): the registry's
 * handler table, which the two drivers walk.
 */
#ifndef MIGSTREAM_DRIVER_IMPL_H
#define MIGSTREAM_DRIVER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "migstream/driver.h"

/* One registered handler, and the state a save keeps about it. */
struct ms__handler {
	char idstr[MS_COUNTED_STRING_MAX + 1];
	uint32_t instance_id;
	uint32_t version_id;
	uint32_t min_version_id;
	uint32_t section_id;
	const ms_handler_ops *ops;
	void *opaque;
	/* Save state. */
	bool started;
	bool more;
};

struct ms_registry {
	const ms_allocator *a;
	struct ms__handler *h;
	size_t n, cap;
};

/* Iterative handlers are saved in rounds (START, PART..., END). */
static inline bool ms__handler_is_iterative(const struct ms__handler *h)
{
	return h->ops->save_iterate != NULL;
}

/* The handler registered as @idstr / @instance_id, or NULL. */
struct ms__handler *ms__registry_find(ms_registry *reg, const char *idstr,
				      uint32_t instance_id);

#endif /* MIGSTREAM_DRIVER_IMPL_H */
