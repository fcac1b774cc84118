/* SPDX-License-Identifier: MIT */
/*
 * A mock of <libvfio-user.h>: only the migration types that
 * MS_VFU_DEFINE_CALLBACKS_V1() and MS_VFU_DEFINE_CALLBACKS_V2() use, with
 * upstream's names, values and field order (nutanix/libvfio-user
 * include/libvfio-user.h: v1 at f2dd096, v2 at efd091b).
 *
 * Upstream names both layouts vfu_migration_callbacks_t.  Define
 * MOCK_VFU_API to 1 or 2 before including this header to pick one; the
 * header may be included again with the other value (the layout part is
 * outside the include guard), so one test can expand both macros:
 *
 *	#define MOCK_VFU_API 1
 *	#include "mock/libvfio-user.h"
 *	MS_VFU_DEFINE_CALLBACKS_V1(cb1, get_adapter);
 *	#undef MOCK_VFU_API
 *	#define MOCK_VFU_API 2
 *	#include "mock/libvfio-user.h"
 *	MS_VFU_DEFINE_CALLBACKS_V2(cb2, get_adapter);
 *
 * For that, vfu_migration_callbacks_t and VFU_MIGR_CALLBACKS_VERS are
 * macros here (a typedef upstream).
 */
#ifndef MOCK_LIBVFIO_USER_H
#define MOCK_LIBVFIO_USER_H

#include <stdint.h>
#include <sys/types.h>

/* Opaque, as upstream. */
typedef struct vfu_ctx vfu_ctx_t;

typedef enum {
	VFU_MIGR_STATE_STOP,
	VFU_MIGR_STATE_RUNNING,
	VFU_MIGR_STATE_STOP_AND_COPY,
	VFU_MIGR_STATE_PRE_COPY,
	VFU_MIGR_STATE_RESUME
} vfu_migr_state_t;

/* API v1: the migration region's callbacks, field order as upstream. */
typedef struct {
	int version;
	int (*transition)(vfu_ctx_t *vfu_ctx, vfu_migr_state_t state);
	uint64_t (*get_pending_bytes)(vfu_ctx_t *vfu_ctx);
	int (*prepare_data)(vfu_ctx_t *vfu_ctx, uint64_t *offset,
			    uint64_t *size);
	ssize_t (*read_data)(vfu_ctx_t *vfu_ctx, void *buf, uint64_t count,
			     uint64_t offset);
	ssize_t (*write_data)(vfu_ctx_t *vfu_ctx, void *buf, uint64_t count,
			      uint64_t offset);
	int (*data_written)(vfu_ctx_t *vfu_ctx, uint64_t count);
} mock_vfu_migration_callbacks_v1_t;

/* API v2. */
typedef struct {
	int version;
	int (*transition)(vfu_ctx_t *vfu_ctx, vfu_migr_state_t state);
	ssize_t (*read_data)(vfu_ctx_t *vfu_ctx, void *buf, uint64_t count);
	ssize_t (*write_data)(vfu_ctx_t *vfu_ctx, void *buf, uint64_t count);
} mock_vfu_migration_callbacks_v2_t;

#endif /* MOCK_LIBVFIO_USER_H */

#undef vfu_migration_callbacks_t
#undef VFU_MIGR_CALLBACKS_VERS
#if !defined(MOCK_VFU_API) || MOCK_VFU_API == 2
#define vfu_migration_callbacks_t mock_vfu_migration_callbacks_v2_t
#define VFU_MIGR_CALLBACKS_VERS	  2
#elif MOCK_VFU_API == 1
#define vfu_migration_callbacks_t mock_vfu_migration_callbacks_v1_t
#define VFU_MIGR_CALLBACKS_VERS	  1
#else
#error "MOCK_VFU_API must be 1 or 2"
#endif
