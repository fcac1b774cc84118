/* SPDX-License-Identifier: MIT */
/*
 * Test drivers for the vfio-user adapter: the two sides of the protocol as
 * libvfio-user and QEMU speak them, without libvfio-user.
 *
 * vfu1_*: an emulation of libvfio-user v1's migration region (its
 * lib/migration.c): the 32-byte register block with exact widths, the
 * save-side iteration FSM with its FINISHED latch,
 * the validity table of device_state writes, dead space, and data accesses
 * forwarded to read_data/write_data at "region offset - data_offset".
 * On top of it, a client that behaves as QEMU 6.2's hw/vfio/migration.c:
 * vfio_save_buffer(), the save sequence with stop-and-copy written twice,
 * and vfio_load_buffer() with its splitting of a source chunk into rounds
 * when the destination's region is smaller.
 *
 * vfu2_*: libvfio-user v2's migration: migration_set_state() walking
 * next_state[][] with one transition() call per hop, MIG_DATA_READ/WRITE
 * with their state and size checks; and a QEMU-like v2 client.
 *
 * The emulated library calls the adapter's functions directly and, like
 * libvfio-user, answers the client with -1 and errno.  The client loops
 * return 0 or a negative errno, as QEMU's do.
 *
 * The transport: libvfio-user reads a request's 16-byte header with one
 * recvmsg() and then its body with one recv() without MSG_WAITALL (its
 * lib/tran_sock.c, in the v1 tree and at the v2 head alike).  A body
 * larger than what the Unix socket holds at that moment comes back
 * short; the library logs "short read: expected=<body>, actual=<got>",
 * answers that request with EINVAL without calling any callback, and the
 * unread rest of the body stays in the socket, where the next header read
 * takes it: from then on requests and replies no longer line up (the
 * session has desynced).  @sockbuf models it: a message (header and
 * body) of more than @sockbuf bytes is refused with EINVAL and every
 * later request fails with EPROTO without reaching the adapter.  v1 region
 * writes carry the window (the destination's data area) in one request
 * when the client writes it whole, so the window decides; v2 data writes
 * are as large as the client makes them.
 *
 * The code is in tests/lib/vfu-client.c; this header declares what the
 * tests call.
 */
#ifndef MS_VFU_CLIENT_H
#define MS_VFU_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <migstream/migstream.h>

/* A small deterministic generator for access patterns. */
uint64_t vfu_rand(uint64_t *st);

/*
 * libvfio-user v1.
 */

/* struct vfio_user_migration_info: offsets and size. */
#define VFU1_REG_DEVICE_STATE 0
#define VFU1_REG_PENDING      8
#define VFU1_REG_DATA_OFFSET  16
#define VFU1_REG_DATA_SIZE    24
#define VFU1_INFO_SIZE	      32
/* vfu_get_migr_register_area_size(): the info rounded up to a page; the
 * server passes it as the data_offset of the setup call. */
#define VFU1_DATA_OFFSET 4096u
/* SERVER_MAX_DATA_XFER_SIZE: the largest region access. */
#define VFU1_MAX_XFER (1u << 20)

/*
 * The bytes of one message a Unix socket delivers to one recv(): about
 * 36 KiB, what Linux's default AF_UNIX buffer let through in a measured
 * run (a 65552-byte body arrived as 36528 bytes after its 16-byte
 * header).  0 for a transport that reads bodies whole (a libvfio-user
 * that waits for the whole body).
 */
#define VFU_SOCKBUF_DEFAULT 36544u

/* struct vfio_user_header, before every body. */
#define VFU_MSG_HEADER 16u
/* struct vfio_user_region_access (offset, region, count) before the
 * data of a v1 region write; struct vfio_user_mig_data (argsz, size)
 * before a v2 data write. */
#define VFU1_ACCESS_HEADER 16u
#define VFU2_DATA_HEADER   8u

/* What the transport did to the requests (see @sockbuf above). */
struct vfu_transport {
	size_t sockbuf;		   /* 0: bodies arrive whole */
	unsigned long short_reads; /* requests that arrived short */
	uint64_t stale;		   /* body bytes left in the socket: desynced */
};

/* VFIO v1 device_state bits. */
#define VFU1_STOP     0u
#define VFU1_RUNNING  1u
#define VFU1_SAVING   2u
#define VFU1_RESUMING 4u
#define VFU1_MASK     7u

enum vfu1_iter {
	VFU1_ITER_INITIAL,
	VFU1_ITER_STARTED,
	VFU1_ITER_DATA_PREPARED,
	VFU1_ITER_FINISHED
};

/* How many times the library called each adapter callback. */
struct vfu_calls {
	unsigned long transition;
	unsigned long pending;
	unsigned long prepare;
	unsigned long read;
	unsigned long write;
	unsigned long written;
};

struct vfu1_dev {
	ms_vfu_adapter *a;
	uint64_t region_size; /* data_offset + the data area */
	uint32_t device_state;
	enum vfu1_iter iter;
	uint64_t iter_offset;
	uint64_t iter_size;
	uint64_t iter_pending;
	struct vfu_calls n;
	struct vfu_transport tr; /* vfu1_init(): VFU_SOCKBUF_DEFAULT */
};

/* The region is the register area plus the adapter's window, as the
 * header tells servers to set it up; the socket holds
 * VFU_SOCKBUF_DEFAULT. */
void vfu1_init(struct vfu1_dev *d, ms_vfu_adapter *a);

/*
 * migr_states[] of lib/migration_priv.h, as its unit test asserts it: the
 * pre-copy row's precedence slip makes pre-copy -> running legal and
 * pre-copy -> pre-copy illegal.  Rows 5 to 7 are empty.
 */
bool vfu1_arc_valid(uint32_t from, uint32_t to);

/* migr_state_vfio_to_vfu(): the error state (110b) maps to -1, which the
 * library passes to transition() anyway. */
ms_vfu_migr_state vfu1_to_vfu(uint32_t bits);

/*
 * One VFIO_USER_REGION_READ/WRITE of the migration region.  Returns
 * @count or -1 with errno, as the reply would carry: EINVAL for a write
 * whose message is over @d->tr.sockbuf, EPROTO for anything after it.
 */
ssize_t vfu1_access(struct vfu1_dev *d, void *buf, size_t count, uint64_t pos,
		    bool is_write);

int vfu1_read_u64(struct vfu1_dev *d, uint64_t reg, uint64_t *v);

int vfu1_write_u64(struct vfu1_dev *d, uint64_t reg, uint64_t v);

int vfu1_set_state(struct vfu1_dev *d, uint32_t bits);

/*
 * The QEMU-like v1 client.
 */

/* How the client reads (save) or writes (load) a range of the data area. */
enum vfu_pattern {
	/* vfio_mig_rw(): naturally aligned 8, 4, 2, 1-byte accesses. */
	VFU_PAT_QEMU8,
	/* One access per range, up to the transfer limit (an mmap-like
	 * client). */
	VFU_PAT_WHOLE,
	/* Pieces of @piece bytes, in order. */
	VFU_PAT_PIECES,
	/* Pieces of @piece bytes, last first. */
	VFU_PAT_REVERSE,
	/* Random sub-ranges (1 to 997 bytes) in random order; reads then
	 * re-read random sub-ranges and compare. */
	VFU_PAT_SCATTER
};

/* Called with each chunk vfio_save_buffer() puts in the stream. */
typedef int (*vfu_sink_fn)(const void *buf, size_t len, void *opaque);

struct vfu_client_opts {
	enum vfu_pattern pattern;
	size_t piece;
	uint64_t seed;
	/* Save: at most this many precopy iterations (0: until pending is
	 * 0); the chunks go to @sink. */
	unsigned max_precopy;
	vfu_sink_fn sink;
	void *opaque;
	/* Save: called after every pending_bytes read that reached the
	 * adapter (iteration start), with the value read.  Optional. */
	void (*after_pending)(uint64_t pending, void *opaque);
	/* Results. */
	uint64_t bytes;	   /* data bytes moved */
	uint64_t chunks;   /* vfio_save_buffer() calls with data / rounds */
	uint64_t max_size; /* largest data_size seen */
	unsigned precopy;  /* precopy iterations done */
};

/*
 * vfio_save_buffer(): data_offset, then data_size, then the data, in
 * sections of MIN(data_size, region size - data_offset).  Returns the
 * data_size (≥ 0) or a negative errno.
 */
int64_t vfu1_save_buffer(struct vfu1_dev *d, struct vfu_client_opts *o);

int vfu1_read_pending(struct vfu1_dev *d, struct vfu_client_opts *o,
		      uint64_t *p);

/* vfio_migration_set_state(): read-modify-write of device_state. */
int vfu1_rmw_state(struct vfu1_dev *d, uint32_t mask, uint32_t value);

/* The source's precopy: save_setup, then save_live_pending and
 * save_live_iterate until pending is 0 or @o->max_precopy iterations. */
int vfu1_qemu_precopy(struct vfu1_dev *d, struct vfu_client_opts *o);

/* The VM stops: stop-and-copy, written twice (vm state change, then
 * save_live_complete_precopy), drained until pending is 0, then STOP. */
int vfu1_qemu_complete(struct vfu1_dev *d, struct vfu_client_opts *o);

int vfu1_qemu_save(struct vfu1_dev *d, struct vfu_client_opts *o);

/* load_setup: RESUMING. */
int vfu1_qemu_load_setup(struct vfu1_dev *d);

/*
 * vfio_load_buffer(): one source chunk.  Each round re-reads data_offset,
 * writes MIN(len, region size - data_offset) bytes there with @o's
 * pattern, and writes that count to data_size.
 */
int vfu1_qemu_load_chunk(struct vfu1_dev *d, struct vfu_client_opts *o,
			 const void *data, size_t len);

/* The VM starts: RESUMING -> RUNNING. */
int vfu1_qemu_load_done(struct vfu1_dev *d);

/*
 * libvfio-user v2.
 */

/* enum vfio_user_device_mig_state. */
enum vfu2_state {
	VFU2_ERROR = 0,
	VFU2_STOP = 1,
	VFU2_RUNNING = 2,
	VFU2_STOP_COPY = 3,
	VFU2_RESUMING = 4,
	VFU2_RUNNING_P2P = 5,
	VFU2_PRE_COPY = 6,
	VFU2_PRE_COPY_P2P = 7,
	VFU2_NUM_STATES = 8
};

ms_vfu_migr_state vfu2_to_vfu(enum vfu2_state s);

struct vfu2_dev {
	ms_vfu_adapter *a;
	enum vfu2_state state;
	uint64_t max_xfer; /* the client's max_data_xfer_size */
	/* The transition() calls of the last SET. */
	ms_vfu_migr_state hops[8];
	int nhops;
	struct vfu_calls n;
	struct vfu_transport tr; /* vfu2_init(): sockbuf 0 (whole) */
};

/* The socket reads bodies whole (set @d->tr.sockbuf to model
 * libvfio-user's transport: the client's write size then decides). */
void vfu2_init(struct vfu2_dev *d, ms_vfu_adapter *a);

/* DEVICE_FEATURE SET MIG_DEVICE_STATE: migration_set_state(). */
int vfu2_set_state(struct vfu2_dev *d, unsigned target);

/* VFIO_USER_MIG_DATA_READ: the reply's size, or -1 with errno. */
ssize_t vfu2_data_read(struct vfu2_dev *d, void *buf, uint64_t size);

/* VFIO_USER_MIG_DATA_WRITE: 0 or -1 with errno (EINVAL over
 * @d->tr.sockbuf, then EPROTO). */
int vfu2_data_write(struct vfu2_dev *d, const void *buf, uint64_t size);

/* save_setup (PRE_COPY), precopy iterations until read_data returns 0,
 * STOP_COPY drained until 0, then STOP (save_cleanup). */
int vfu2_qemu_save(struct vfu2_dev *d, struct vfu_client_opts *o,
		   size_t buf_size);

int vfu2_qemu_load_setup(struct vfu2_dev *d);

/* One DEV_DATA_STATE chunk, written in order (the stream's byte order must
 * be kept) in pieces of @o->piece bytes (PIECES) or whole (otherwise). */
int vfu2_qemu_load_chunk(struct vfu2_dev *d, struct vfu_client_opts *o,
			 const void *data, size_t len);

/* The VM starts: RESUMING -> STOP -> RUNNING. */
int vfu2_qemu_load_done(struct vfu2_dev *d);

#endif /* MS_VFU_CLIENT_H */
