/* SPDX-License-Identifier: MIT */
/*
 * A mock of <libvfio-user.h>: the migration types that
 * MS_VFU_DEFINE_CALLBACKS_V1() and MS_VFU_DEFINE_CALLBACKS_V2() use, and
 * the functions, types and constants a device server uses
 * (examples/vfio-user-server.c), with upstream's names, values, field
 * order and signatures (nutanix/libvfio-user include/libvfio-user.h: API
 * v1 at aa19ba9, the last tree with it, of 2022-10-04; API v2 at
 * efd091b).  It is compiled against, never linked: nothing defines the
 * functions.
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
 * macros here (a typedef upstream), and so is what differs between the
 * versions: the functions whose signatures differ are macros naming
 * mock_vfu_v1_* or mock_vfu_v2_* declarations, and the constants only
 * one version has (VFU_PCI_DEV_MIGR_REGION_IDX and
 * vfu_get_migr_register_area_size() are v1's; VFU_REGION_FLAG_64_BITS,
 * VFU_SGL_DIRECT_ACCESS and LIBVFIO_USER_MAX_DMA_REGIONS are v2's) are
 * defined for that version only.
 */
#ifndef MOCK_LIBVFIO_USER_H
#define MOCK_LIBVFIO_USER_H

#include <stdint.h>
#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>
#include <syslog.h>

/* Opaque, as upstream. */
typedef struct vfu_ctx vfu_ctx_t;
struct dma_sg;
typedef struct dma_sg dma_sg_t;
typedef void *vfu_dma_addr_t;

size_t dma_sg_size(void);

#define LIBVFIO_USER_FLAG_ATTACH_NB (1 << 0)

typedef enum { VFU_TRANS_SOCK, VFU_TRANS_PIPE, VFU_TRANS_MAX } vfu_trans_t;

typedef enum { VFU_DEV_TYPE_PCI } vfu_dev_type_t;

vfu_ctx_t *vfu_create_ctx(vfu_trans_t trans, const char *path, int flags,
			  void *pvt, vfu_dev_type_t dev_type);
int vfu_realize_ctx(vfu_ctx_t *vfu_ctx);
int vfu_attach_ctx(vfu_ctx_t *vfu_ctx);
int vfu_get_poll_fd(vfu_ctx_t *vfu_ctx);
int vfu_run_ctx(vfu_ctx_t *vfu_ctx);
void vfu_destroy_ctx(vfu_ctx_t *vfu_ctx);
void *vfu_get_private(vfu_ctx_t *vfu_ctx);

/* Levels are syslog(3)'s. */
typedef void(vfu_log_fn_t)(vfu_ctx_t *vfu_ctx, int level, const char *msg);
void vfu_log(vfu_ctx_t *vfu_ctx, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int vfu_setup_log(vfu_ctx_t *vfu_ctx, vfu_log_fn_t *log, int level);

/* loff_t: <sys/types.h> with _DEFAULT_SOURCE or _GNU_SOURCE, as upstream. */
typedef ssize_t(vfu_region_access_cb_t)(vfu_ctx_t *vfu_ctx, char *buf,
					size_t count, loff_t offset,
					bool is_write);

#define VFU_REGION_FLAG_READ	  (1 << 0)
#define VFU_REGION_FLAG_WRITE	  (1 << 1)
#define VFU_REGION_FLAG_RW	  (VFU_REGION_FLAG_READ | VFU_REGION_FLAG_WRITE)
#define VFU_REGION_FLAG_MEM	  (1 << 2)
#define VFU_REGION_FLAG_ALWAYS_CB (1 << 3)

int vfu_setup_region(vfu_ctx_t *vfu_ctx, int region_idx, size_t size,
		     vfu_region_access_cb_t *region_access, int flags,
		     struct iovec *mmap_areas, uint32_t nr_mmap_areas, int fd,
		     uint64_t offset);

typedef enum vfu_reset_type {
	VFU_RESET_DEVICE,
	VFU_RESET_LOST_CONN,
	VFU_RESET_PCI_FLR
} vfu_reset_type_t;

typedef int(vfu_device_quiesce_cb_t)(vfu_ctx_t *vfu_ctx);
void vfu_setup_device_quiesce_cb(vfu_ctx_t *vfu_ctx,
				 vfu_device_quiesce_cb_t *quiesce_cb);
int vfu_device_quiesced(vfu_ctx_t *vfu_ctx, int quiesce_errno);

typedef int(vfu_reset_cb_t)(vfu_ctx_t *vfu_ctx, vfu_reset_type_t type);
int vfu_setup_device_reset_cb(vfu_ctx_t *vfu_ctx, vfu_reset_cb_t *reset);

typedef struct vfu_dma_info {
	struct iovec iova;
	void *vaddr;
	struct iovec mapping;
	size_t page_size;
	uint32_t prot;
} vfu_dma_info_t;

typedef void(vfu_dma_register_cb_t)(vfu_ctx_t *vfu_ctx, vfu_dma_info_t *info);
typedef void(vfu_dma_unregister_cb_t)(vfu_ctx_t *vfu_ctx, vfu_dma_info_t *info);

enum vfu_dev_irq_type {
	VFU_DEV_INTX_IRQ,
	VFU_DEV_MSI_IRQ,
	VFU_DEV_MSIX_IRQ,
	VFU_DEV_ERR_IRQ,
	VFU_DEV_REQ_IRQ,
	VFU_DEV_NUM_IRQS
};

int vfu_setup_device_nr_irqs(vfu_ctx_t *vfu_ctx, enum vfu_dev_irq_type type,
			     uint32_t count);
int vfu_irq_trigger(vfu_ctx_t *vfu_ctx, uint32_t subindex);

int vfu_addr_to_sgl(vfu_ctx_t *vfu_ctx, vfu_dma_addr_t dma_addr, size_t len,
		    dma_sg_t *sgl, size_t max_nr_sgs, int prot);
int vfu_sgl_get(vfu_ctx_t *vfu_ctx, dma_sg_t *sgl, struct iovec *iov,
		size_t cnt, int flags);
void vfu_sgl_mark_dirty(vfu_ctx_t *vfu_ctx, dma_sg_t *sgl, size_t cnt);
void vfu_sgl_put(vfu_ctx_t *vfu_ctx, dma_sg_t *sgl, struct iovec *iov,
		 size_t cnt);

/* Upstream's regions of a PCI device, BAR0 to VGA (the rest is per
 * version, below). */
enum {
	VFU_PCI_DEV_BAR0_REGION_IDX,
	VFU_PCI_DEV_BAR1_REGION_IDX,
	VFU_PCI_DEV_BAR2_REGION_IDX,
	VFU_PCI_DEV_BAR3_REGION_IDX,
	VFU_PCI_DEV_BAR4_REGION_IDX,
	VFU_PCI_DEV_BAR5_REGION_IDX,
	VFU_PCI_DEV_ROM_REGION_IDX,
	VFU_PCI_DEV_CFG_REGION_IDX,
	VFU_PCI_DEV_VGA_REGION_IDX
};

typedef enum {
	VFU_PCI_TYPE_CONVENTIONAL,
	VFU_PCI_TYPE_PCI_X_1,
	VFU_PCI_TYPE_PCI_X_2,
	VFU_PCI_TYPE_EXPRESS
} vfu_pci_type_t;

/* Upstream has it from <linux/pci_regs.h>. */
#ifndef PCI_HEADER_TYPE_NORMAL
#define PCI_HEADER_TYPE_NORMAL 0
#endif

int vfu_pci_init(vfu_ctx_t *vfu_ctx, vfu_pci_type_t pci_type, int hdr_type,
		 int revision);
void vfu_pci_set_id(vfu_ctx_t *vfu_ctx, uint16_t vid, uint16_t did,
		    uint16_t ssvid, uint16_t ssid);
void vfu_pci_set_class(vfu_ctx_t *vfu_ctx, uint8_t base, uint8_t sub,
		       uint8_t pi);

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

/* The functions whose signatures differ. */
int mock_vfu_v1_setup_device_migration_callbacks(
	vfu_ctx_t *vfu_ctx, const mock_vfu_migration_callbacks_v1_t *callbacks,
	uint64_t data_offset);
int mock_vfu_v2_setup_device_migration_callbacks(
	vfu_ctx_t *vfu_ctx, const mock_vfu_migration_callbacks_v2_t *callbacks);
int mock_vfu_v1_setup_device_dma(vfu_ctx_t *vfu_ctx,
				 vfu_dma_register_cb_t *dma_register,
				 vfu_dma_unregister_cb_t *dma_unregister);
int mock_vfu_v2_setup_device_dma(vfu_ctx_t *vfu_ctx, size_t max_regions,
				 vfu_dma_register_cb_t *dma_register,
				 vfu_dma_unregister_cb_t *dma_unregister);
int mock_vfu_v1_sgl_read(vfu_ctx_t *vfu_ctx, dma_sg_t *sg, size_t cnt,
			 void *data);
int mock_vfu_v1_sgl_write(vfu_ctx_t *vfu_ctx, dma_sg_t *sg, size_t cnt,
			  void *data);
int mock_vfu_v2_sgl_read(vfu_ctx_t *vfu_ctx, dma_sg_t *sg, size_t sg_cnt,
			 void *data, int flags);
int mock_vfu_v2_sgl_write(vfu_ctx_t *vfu_ctx, dma_sg_t *sg, size_t sg_cnt,
			  void *data, int flags);
/* v1 only: the size of the migration region's register block. */
size_t mock_vfu_v1_get_migr_register_area_size(void);

#endif /* MOCK_LIBVFIO_USER_H */

#undef vfu_migration_callbacks_t
#undef VFU_MIGR_CALLBACKS_VERS
#undef vfu_setup_device_migration_callbacks
#undef vfu_setup_device_dma
#undef vfu_sgl_read
#undef vfu_sgl_write
#undef vfu_get_migr_register_area_size
#undef VFU_PCI_DEV_MIGR_REGION_IDX
#undef VFU_PCI_DEV_NUM_REGIONS
#undef VFU_REGION_FLAG_64_BITS
#undef VFU_REGION_FLAG_PREFETCH
#undef VFU_REGION_FLAG_MASK
#undef VFU_SGL_DIRECT_ACCESS
#undef LIBVFIO_USER_MAX_DMA_REGIONS
#if !defined(MOCK_VFU_API) || MOCK_VFU_API == 2
#define vfu_migration_callbacks_t mock_vfu_migration_callbacks_v2_t
#define VFU_MIGR_CALLBACKS_VERS	  2
#define vfu_setup_device_migration_callbacks                                   \
	mock_vfu_v2_setup_device_migration_callbacks
#define vfu_setup_device_dma	 mock_vfu_v2_setup_device_dma
#define vfu_sgl_read		 mock_vfu_v2_sgl_read
#define vfu_sgl_write		 mock_vfu_v2_sgl_write
#define VFU_PCI_DEV_NUM_REGIONS	 9
#define VFU_REGION_FLAG_64_BITS	 (1 << 4)
#define VFU_REGION_FLAG_PREFETCH (1 << 5)
#define VFU_REGION_FLAG_MASK                                                   \
	(VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM |                            \
	 VFU_REGION_FLAG_ALWAYS_CB | VFU_REGION_FLAG_64_BITS |                 \
	 VFU_REGION_FLAG_PREFETCH)
#define VFU_SGL_DIRECT_ACCESS	     (1)
#define LIBVFIO_USER_MAX_DMA_REGIONS (1000 * 1000)
#elif MOCK_VFU_API == 1
#define vfu_migration_callbacks_t mock_vfu_migration_callbacks_v1_t
#define VFU_MIGR_CALLBACKS_VERS	  1
#define vfu_setup_device_migration_callbacks                                   \
	mock_vfu_v1_setup_device_migration_callbacks
#define vfu_setup_device_dma		mock_vfu_v1_setup_device_dma
#define vfu_sgl_read			mock_vfu_v1_sgl_read
#define vfu_sgl_write			mock_vfu_v1_sgl_write
#define vfu_get_migr_register_area_size mock_vfu_v1_get_migr_register_area_size
#define VFU_PCI_DEV_MIGR_REGION_IDX	9
#define VFU_PCI_DEV_NUM_REGIONS		10
#define VFU_REGION_FLAG_MASK                                                   \
	(VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM | VFU_REGION_FLAG_ALWAYS_CB)
#else
#error "MOCK_VFU_API must be 1 or 2"
#endif
