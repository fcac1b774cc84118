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
	ms__error refused; /* the last call refused (ms_registry_errmsg()) */
};

/* Iterative handlers are saved in rounds (START, PART..., END). */
static inline bool ms__handler_is_iterative(const struct ms__handler *h)
{
	return h->ops->save_iterate != NULL;
}

/* The handler registered as @idstr / @instance_id, or NULL. */
struct ms__handler *ms__registry_find(ms_registry *reg, const char *idstr,
				      uint32_t instance_id);

/*
 * Refuse a call on @reg, or a constructor given @reg: record the message
 * ("<fmt...>", no offset or section) for ms_registry_errmsg(), replacing
 * the last one, and return @err.
 */
int ms__registry_refuse(ms_registry *reg, int err, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

/*
 * Copy the codec settings @src (NULL for the defaults) of the option
 * structure @what into @dst for a writer (@reader false: the native
 * profile with CRC) or a reader (auto-detection); a NULL allocator
 * becomes @reg's.  Returns 0, or -EINVAL with ms__registry_refuse() when
 * @src has another version.
 */
int ms__driver_codec_copy(ms_registry *reg, ms_codec_opts *dst,
			  const ms_codec_opts *src, bool reader,
			  const char *what);

#endif /* MIGSTREAM_DRIVER_IMPL_H */
