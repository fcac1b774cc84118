/* SPDX-License-Identifier: MIT */
/*
 * Built only when configure finds <libvfio-user.h>: migstream's
 * declarations must match libvfio-user's.  The state values are checked
 * at compile time, and the callback tables the MS_VFU_DEFINE_CALLBACKS
 * macros generate must compile against the real vfu_migration_callbacks_t
 * of the version the header declares.
 */
#include <libvfio-user.h>

#include <migstream/migstream.h>

_Static_assert((int)VFU_MIGR_STATE_STOP == (int)MS_VFU_MIGR_STATE_STOP,
	       "STOP differs");
_Static_assert((int)VFU_MIGR_STATE_RUNNING == (int)MS_VFU_MIGR_STATE_RUNNING,
	       "RUNNING differs");
_Static_assert((int)VFU_MIGR_STATE_STOP_AND_COPY ==
		       (int)MS_VFU_MIGR_STATE_STOP_AND_COPY,
	       "STOP_AND_COPY differs");
_Static_assert((int)VFU_MIGR_STATE_PRE_COPY == (int)MS_VFU_MIGR_STATE_PRE_COPY,
	       "PRE_COPY differs");
_Static_assert((int)VFU_MIGR_STATE_RESUME == (int)MS_VFU_MIGR_STATE_RESUME,
	       "RESUME differs");

/* No device is created: the adapter lookup only has to type-check. */
static ms_vfu_adapter *adapter_of(vfu_ctx_t *ctx)
{
	(void)ctx;
	return NULL;
}

#if VFU_MIGR_CALLBACKS_VERS == 1
MS_VFU_DEFINE_CALLBACKS_V1(types_callbacks, adapter_of);
#else
MS_VFU_DEFINE_CALLBACKS_V2(types_callbacks, adapter_of);
#endif

int main(void)
{
	/* The table's version is the header's. */
	return types_callbacks.version == VFU_MIGR_CALLBACKS_VERS ? 0 : 1;
}
