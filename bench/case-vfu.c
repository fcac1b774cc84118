/* SPDX-License-Identifier: MIT */
/*
 * The vfio-user adapter's cases: vfu-socket-32k-v1 and vfu-socket-32k-v2
 * (the adapter in two device servers, a client between them over Unix
 * sockets), and vfu-inproc-32k (the same adapters called directly, for
 * information).  Their groups are listed in bench/cases.h.
 *
 * vfu-socket-32k-*: a migration as a vfio-user client drives it.  The
 * source and the destination are each a server thread on one end of a
 * socketpair; the client (this thread) speaks libvfio-user's protocol to
 * both, one request and one reply at a time, framed as libvfio-user frames
 * them (a 16-byte header, then the command's body), and moves the state
 * through a 32 KiB window:
 *   v1: region accesses of the migration region: the source's
 *       pending_bytes, data_offset and data_size registers and the data
 *       area, read; the destination's data_offset read, the data area and
 *       data_size written; device_state written for each transition;
 *   v2: VFIO_USER_MIG_DATA_READ and VFIO_USER_MIG_DATA_WRITE messages of
 *       the window size, and VFIO_USER_DEVICE_FEATURE to set the state.
 * Each server reads a request (its header, then its body), does what
 * libvfio-user does with it, calls the migration callbacks as
 * libvfio-user would (lib/migration.c of the v1 tree and of v2, in this
 * file's own code), and sends the reply.  The subject's callbacks are the
 * adapter's, on a device of 1 MiB sections; the baseline's are raw ones
 * that memcpy() from and to the flat device memory, through the same
 * transport and the same messages per byte.  The ratio is then what the
 * adapter costs inside a server.  The servers keep one buffer per
 * direction instead of allocating one per message, as libvfio-user does:
 * that leaves less shared time around the callbacks, so the ratio is the
 * stricter for it.  A run is timed in the CPU time of the process (see
 * cpu_now()), so that other programs on the machine do not count.  The
 * destination's state is compared byte for byte with the source's after
 * every run; a difference fails the benchmark.
 *
 * The device: three quarters of the state are RAM-like and iterative
 * (1 MiB PART sections, all sent during pre-copy), one quarter is
 * non-iterative 1 MiB sections, sent at stop-and-copy, as in the runs
 * against the real libvfio-user.
 *
 * vfu-socket-32k-v1-lazy and -v2-lazy (information, no target) are the
 * same with ms_vfu_opts.lazy_final set.  By default the adapter copies
 * every non-iterative payload at the transition into STOP_AND_COPY (the
 * device may change after it) into memory of its own, which a one-shot
 * migration touches for the first time: the raw callbacks give no such
 * guarantee and read the stopped device as the client asks.  With
 * lazy_final the adapter reads it then too, so the two lines side by side
 * show what that copy costs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "cases.h"

#define VFU_SECTION MIB
/* The client's window: v1's data area and v2's transfer size. */
#define VFU_WINDOW (32 * KIB)
/* Device state of the socket cases with --quick (ASan runs them). */
#define VFU_SOCKET_QUICK (8 * MIB)

/*
 * libvfio-user's wire format (its include/vfio-user.h), under local
 * names.  Fields are in the host's byte order: both ends share the host.
 */

/* struct vfio_user_header: every message starts with it. */
struct wire_hdr {
	uint16_t msg_id;
	uint16_t cmd;
	uint32_t msg_size; /* header and body */
	uint32_t flags;
	uint32_t error_no; /* replies with WIRE_F_ERROR */
};

/* struct vfio_user_region_access: REGION_READ/WRITE's body, before the
 * data (a write's, and a read reply's). */
struct wire_region_access {
	uint64_t offset;
	uint32_t region;
	uint32_t count;
};

/* struct vfio_user_mig_data: MIG_DATA_READ/WRITE's body, before the data
 * (a write's, and a read reply's). */
struct wire_mig_data {
	uint32_t argsz;
	uint32_t size;
};

/* struct vfio_user_device_feature followed by
 * vfio_user_device_feature_mig_state: setting the v2 device state. */
struct wire_mig_state {
	uint32_t argsz;
	uint32_t flags;
	uint32_t device_state;
	uint32_t data_fd;
};

_Static_assert(sizeof(struct wire_hdr) == 16, "vfio_user_header");
_Static_assert(sizeof(struct wire_region_access) == 16, "region_access");
_Static_assert(sizeof(struct wire_mig_data) == 8, "mig_data");
_Static_assert(sizeof(struct wire_mig_state) == 16, "device_feature");

/* enum vfio_user_command */
#define WIRE_REGION_READ    9
#define WIRE_REGION_WRITE   10
#define WIRE_DEVICE_FEATURE 16
#define WIRE_MIG_DATA_READ  17
#define WIRE_MIG_DATA_WRITE 18
/* The header's flags. */
#define WIRE_F_TYPE_MASK 0xfu
#define WIRE_F_REPLY	 0x1u
#define WIRE_F_ERROR	 0x20u
/* VFU_PCI_DEV_MIGR_REGION_IDX */
#define WIRE_MIGR_REGION 9u
/* VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE */
#define WIRE_SET_MIG_STATE ((1u << 17) | 2u)

/* v1's migration region: struct vfio_user_migration_info's registers,
 * then the data area at the register area rounded up to a page. */
#define REG_DEVICE_STATE 0
#define REG_PENDING	 8
#define REG_DATA_OFFSET	 16
#define REG_DATA_SIZE	 24
#define REG_INFO_SIZE	 32
#define DATA_OFFSET	 4096
#define REGION_SIZE	 (DATA_OFFSET + VFU_WINDOW)
/* v1's device_state bits. */
#define V1_STOP	    0u
#define V1_RUNNING  1u
#define V1_SAVING   2u
#define V1_RESUMING 4u
/* enum vfio_user_device_mig_state (v2). */
#define V2_STOP	     1u
#define V2_RUNNING   2u
#define V2_STOP_COPY 3u
#define V2_RESUMING  4u
#define V2_PRE_COPY  6u

/* libvfio-user v1's save iteration, reset by every state change. */
enum iter {
	ITER_INITIAL,
	ITER_STARTED,
	ITER_PREPARED,
	ITER_FINISHED,
};

/* Room for a request's or a reply's body. */
#define BODY_ROOM (VFU_WINDOW + 64)

struct vfu_dev;

/* The migration callbacks a server calls: the adapter's or raw ones. */
struct vfu_cbs {
	int (*transition)(struct vfu_dev *d, ms_vfu_migr_state st);
	uint64_t (*pending)(struct vfu_dev *d);
	int (*prepare)(struct vfu_dev *d, uint64_t *off, uint64_t *size);
	ssize_t (*read1)(struct vfu_dev *d, void *buf, uint64_t count,
			 uint64_t off);
	ssize_t (*write1)(struct vfu_dev *d, const void *buf, uint64_t count,
			  uint64_t off);
	int (*written)(struct vfu_dev *d, uint64_t count);
	ssize_t (*read2)(struct vfu_dev *d, void *buf, uint64_t count);
	ssize_t (*write2)(struct vfu_dev *d, const void *buf, uint64_t count);
};

/* A part of a device's state: the iterative one or a non-iterative one. */
struct vfu_part {
	uint8_t *mem;
	size_t len;
	size_t sent;
};

/*
 * One side of a migration: a device (its memory, its handlers and its
 * adapter, or the raw callbacks' positions) and, in the socket cases, the
 * server that serves it.
 */
struct vfu_dev {
	uint8_t *mem;
	size_t size;
	struct vfu_part ram;   /* the iterative part, at the front */
	struct vfu_part *regs; /* the non-iterative 1 MiB parts */
	size_t nregs;
	ms_registry *reg;
	ms_vfu_adapter *a;
	/* Raw callbacks: where the state is read or written. */
	ms_vfu_migr_state rstate;
	size_t pos;	/* saving: the offered window's start */
	size_t end;	/* saving: the end of what this state sends */
	size_t offered; /* v1 saving: bytes offered at @pos */
	size_t wpos;	/* resuming: where the round's window starts */
	size_t wlen;	/* v1 resuming: bytes written in this round */
	/* The server. */
	const struct vfu_cbs *cb;
	int api;
	int fd;
	uint32_t dev_state; /* v1: device_state bits; v2: the state */
	enum iter iter;
	uint64_t iter_pending, iter_off, iter_size;
	uint8_t *req; /* a request's body */
	uint8_t *rep; /* a reply's body */
	pthread_t thread;
	bool started;
	char err[200]; /* why the server stopped early, or "" */
};

/*
 * The device's handlers.
 */

static int ram_iterate(void *opaque, ms_stream *s)
{
	struct vfu_part *p = opaque;

	if (p->sent < p->len) {
		ms_put_be64(s, p->sent);
		ms_put_buffer_async(s, p->mem + p->sent, VFU_SECTION);
		p->sent += VFU_SECTION;
	} else {
		ms_put_be64(s, UINT64_MAX);
	}
	return ms_stream_error(s) ? ms_stream_error(s) : p->sent < p->len;
}

static int ram_complete(void *opaque, ms_stream *s)
{
	(void)opaque;
	return ms_put_be64(s, UINT64_MAX);
}

static uint64_t ram_pending(void *opaque)
{
	const struct vfu_part *p = opaque;

	return p->len - p->sent;
}

static int ram_load(void *opaque, ms_stream *s, uint32_t version, uint8_t type)
{
	struct vfu_part *p = opaque;
	uint64_t off;

	(void)version;
	if (type == MS_REC_START)
		return 0;
	if (ms_get_be64(s, &off))
		return ms_stream_error(s);
	if (off == UINT64_MAX)
		return 0;
	if (off > p->len - VFU_SECTION)
		return ms_stream_set_error(s, -EINVAL, "offset %llu",
					   (unsigned long long)off);
	return ms_get_buffer(s, p->mem + off, VFU_SECTION);
}

static const ms_handler_ops ram_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_iterate = ram_iterate,
	.pending = ram_pending,
	.save_complete = ram_complete,
	.load = ram_load,
};

static int regs_save(void *opaque, ms_stream *s)
{
	const struct vfu_part *p = opaque;

	return ms_put_buffer(s, p->mem, p->len);
}

static int regs_load(void *opaque, ms_stream *s, uint32_t version, uint8_t type)
{
	struct vfu_part *p = opaque;

	(void)version;
	(void)type;
	return ms_get_buffer(s, p->mem, p->len);
}

static const ms_handler_ops regs_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_state = regs_save,
	.load = regs_load,
};

/* Lay out device @d on @mem: the parts, nothing registered yet. */
static void dev_init(struct vfu_dev *d, uint8_t *mem, size_t size)
{
	size_t i, iter = size - d->nregs * VFU_SECTION;

	d->mem = mem;
	d->size = size;
	d->ram.mem = mem;
	d->ram.len = iter;
	d->ram.sent = 0;
	for (i = 0; i < d->nregs; i++) {
		d->regs[i].mem = mem + iter + i * VFU_SECTION;
		d->regs[i].len = VFU_SECTION;
	}
	d->reg = NULL;
	d->a = NULL;
}

/* Register @d's handlers and create its adapter (with ms_vfu_opts'
 * lazy_final set to @lazy). */
static int dev_adapter(struct vfu_dev *d, int api, bool lazy)
{
	ms_vfu_opts o;
	size_t i;

	memset(&o, 0, sizeof(o));
	o.version = MS_VFU_OPTS_VERSION;
	o.api = api;
	o.window = VFU_WINDOW;
	o.lazy_final = lazy;
	if (ms_registry_new(&d->reg, NULL) ||
	    ms_registry_add(d->reg, "ram", 0, 1, 1, &ram_ops, &d->ram, NULL))
		goto fail;
	for (i = 0; i < d->nregs; i++)
		if (ms_registry_add(d->reg, "regs", (uint32_t)i, 1, 1,
				    &regs_ops, &d->regs[i], NULL))
			goto fail;
	if (ms_vfu_adapter_new(&d->a, d->reg, &o))
		goto fail;
	return 0;
fail:
	fprintf(stderr, "migstream-bench: vfu: setting up a device: %s\n",
		d->reg ? ms_registry_errmsg(d->reg) : "out of memory");
	return -1;
}

static void dev_release(struct vfu_dev *d)
{
	ms_vfu_adapter_free(d->a);
	ms_registry_free(d->reg);
	d->a = NULL;
	d->reg = NULL;
}

/*
 * Setup and teardown, shared by the groups.
 */

static int vfu_setup_size(struct bench *b, size_t size)
{
	size_t i, nregs = size / 4 / VFU_SECTION;

	if (!nregs || size % (4 * VFU_SECTION)) {
		fprintf(stderr,
			"migstream-bench: vfu: %zu bytes of device state, "
			"expected a multiple of 4 MiB\n",
			size);
		return -1;
	}
	b->units = (double)size;
	b->vsrc = malloc(size);
	b->dst = malloc(size);
	b->vdev = calloc(2, sizeof(*b->vdev));
	if (!b->vsrc || !b->dst || !b->vdev)
		return sys_failed("malloc");
	for (i = 0; i < 2; i++) {
		b->vdev[i].nregs = nregs;
		b->vdev[i].fd = -1;
		b->vdev[i].regs = calloc(nregs, sizeof(*b->vdev[i].regs));
		b->vdev[i].req = malloc(BODY_ROOM);
		b->vdev[i].rep = malloc(BODY_ROOM);
		if (!b->vdev[i].regs || !b->vdev[i].req || !b->vdev[i].rep)
			return sys_failed("malloc");
	}
	for (i = 0; i < size; i++)
		b->vsrc[i] = (uint8_t)(i * 131 + (i >> 12));
	memset(b->dst, 0, size);
	return 0;
}

static int vfu_setup(struct bench *b)
{
	return vfu_setup_size(b, b->cfg->vfu_bytes);
}

static int vfu_socket_setup(struct bench *b)
{
	return vfu_setup_size(b, b->cfg->quick ? VFU_SOCKET_QUICK
					       : b->cfg->vfu_bytes);
}

static int vfu_teardown(struct bench *b)
{
	size_t i;

	for (i = 0; b->vdev && i < 2; i++) {
		free(b->vdev[i].regs);
		free(b->vdev[i].req);
		free(b->vdev[i].rep);
	}
	free(b->vsrc);
	free(b->dst);
	free(b->vdev);
	b->vsrc = NULL;
	b->dst = NULL;
	b->vdev = NULL;
	return 0;
}

/* The destination's state must be the source's, byte for byte. */
static int vfu_check(const struct bench *b, const char *name)
{
	if (!memcmp(b->dst, b->vsrc, (size_t)b->units))
		return 0;
	fprintf(stderr,
		"migstream-bench: %s: the destination's state differs "
		"from the source's\n",
		name);
	return -1;
}

/*
 * The callbacks: the adapter's, wrapped as MS_VFU_DEFINE_CALLBACKS_*()
 * wraps them for libvfio-user.
 */

static int ad_transition(struct vfu_dev *d, ms_vfu_migr_state st)
{
	return ms_vfu_transition(d->a, st);
}

static uint64_t ad_pending(struct vfu_dev *d)
{
	return ms_vfu_v1_get_pending_bytes(d->a);
}

static int ad_prepare(struct vfu_dev *d, uint64_t *off, uint64_t *size)
{
	return ms_vfu_v1_prepare_data(d->a, off, size);
}

static ssize_t ad_read1(struct vfu_dev *d, void *buf, uint64_t count,
			uint64_t off)
{
	return ms_vfu_v1_read_data(d->a, buf, count, off);
}

static ssize_t ad_write1(struct vfu_dev *d, const void *buf, uint64_t count,
			 uint64_t off)
{
	return ms_vfu_v1_write_data(d->a, buf, count, off);
}

static int ad_written(struct vfu_dev *d, uint64_t count)
{
	return ms_vfu_v1_data_written(d->a, count);
}

static ssize_t ad_read2(struct vfu_dev *d, void *buf, uint64_t count)
{
	return ms_vfu_v2_read_data(d->a, buf, count);
}

static ssize_t ad_write2(struct vfu_dev *d, const void *buf, uint64_t count)
{
	return ms_vfu_v2_write_data(d->a, buf, count);
}

static const struct vfu_cbs adapter_cbs = {
	ad_transition, ad_pending, ad_prepare, ad_read1,
	ad_write1,     ad_written, ad_read2,   ad_write2,
};

/*
 * Raw callbacks: the state is the flat device memory, sent in order; the
 * pre-copy phase sends the iterative part, stop-and-copy the rest.
 */

static int raw_einval(void)
{
	errno = EINVAL;
	return -1;
}

static int raw_transition(struct vfu_dev *d, ms_vfu_migr_state st)
{
	switch (st) {
	case MS_VFU_MIGR_STATE_PRE_COPY:
		d->pos = 0;
		d->end = d->ram.len;
		break;
	case MS_VFU_MIGR_STATE_STOP_AND_COPY:
		if (d->rstate != MS_VFU_MIGR_STATE_PRE_COPY)
			d->pos = 0;
		d->end = d->size;
		break;
	case MS_VFU_MIGR_STATE_RESUME:
		d->wpos = 0;
		d->wlen = 0;
		break;
	default:
		break;
	}
	d->rstate = st;
	return 0;
}

static uint64_t raw_pending(struct vfu_dev *d)
{
	d->pos += d->offered;
	d->offered = 0;
	return d->end - d->pos;
}

static int raw_prepare(struct vfu_dev *d, uint64_t *off, uint64_t *size)
{
	*off = 0;
	if (size) {
		d->offered = d->end - d->pos < VFU_WINDOW ? d->end - d->pos
							  : VFU_WINDOW;
		*size = d->offered;
	}
	return 0;
}

static ssize_t raw_read1(struct vfu_dev *d, void *buf, uint64_t count,
			 uint64_t off)
{
	if (off > d->offered || count > d->offered - off)
		return raw_einval();
	memcpy(buf, d->mem + d->pos + off, count);
	return (ssize_t)count;
}

static ssize_t raw_write1(struct vfu_dev *d, const void *buf, uint64_t count,
			  uint64_t off)
{
	if (off > VFU_WINDOW || count > VFU_WINDOW - off ||
	    off + count > d->size - d->wpos)
		return raw_einval();
	memcpy(d->mem + d->wpos + off, buf, count);
	if (off + count > d->wlen)
		d->wlen = off + count;
	return (ssize_t)count;
}

static int raw_written(struct vfu_dev *d, uint64_t count)
{
	if (count > d->wlen)
		return raw_einval();
	d->wpos += count;
	d->wlen = 0;
	return 0;
}

static ssize_t raw_read2(struct vfu_dev *d, void *buf, uint64_t count)
{
	size_t n = d->end - d->pos < count ? d->end - d->pos : count;

	memcpy(buf, d->mem + d->pos, n);
	d->pos += n;
	return (ssize_t)n;
}

static ssize_t raw_write2(struct vfu_dev *d, const void *buf, uint64_t count)
{
	if (count > d->size - d->wpos)
		return raw_einval();
	memcpy(d->mem + d->wpos, buf, count);
	d->wpos += count;
	return (ssize_t)count;
}

static const struct vfu_cbs raw_cbs = {
	raw_transition, raw_pending, raw_prepare, raw_read1,
	raw_write1,	raw_written, raw_read2,	  raw_write2,
};

/*
 * The transport: whole messages over a stream socket.
 */

/*
 * Send (@out) or receive all the bytes @iov describes (@n entries, which
 * are consumed).  Return: 0; 1 when receiving and the peer closed before
 * the first byte; -1 with errno.
 */
static int io_all(int fd, struct iovec *iov, int n, bool out)
{
	size_t done = 0;
	struct msghdr m;
	ssize_t r;

	for (;;) {
		while (n > 0 && !iov->iov_len) {
			iov++;
			n--;
		}
		if (!n)
			return 0;
		memset(&m, 0, sizeof(m));
		m.msg_iov = iov;
		m.msg_iovlen = n;
		r = out ? sendmsg(fd, &m, 0) : recvmsg(fd, &m, MSG_WAITALL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (!r) {
			if (!done)
				return 1;
			errno = ECONNRESET;
			return -1;
		}
		done += (size_t)r;
		while ((size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
			if (!n)
				return 0;
		}
		iov->iov_base = (uint8_t *)iov->iov_base + r;
		iov->iov_len -= (size_t)r;
	}
}

static void set_iov(struct iovec *iov, const void *p, size_t len)
{
	iov->iov_base = (void *)(uintptr_t)p;
	iov->iov_len = len;
}

/*
 * The server: libvfio-user's handling of the migration messages.
 */

/* The errno a failed callback left, as libvfio-user replies it. */
static int cb_errno(void)
{
	return errno > 0 ? errno : EIO;
}

/* libvfio-user v1's migr_state_vfio_to_vfu(), for the bits used here. */
static int v1_state(uint32_t bits, ms_vfu_migr_state *st)
{
	switch (bits) {
	case V1_STOP:
		*st = MS_VFU_MIGR_STATE_STOP;
		return 0;
	case V1_RUNNING:
		*st = MS_VFU_MIGR_STATE_RUNNING;
		return 0;
	case V1_SAVING:
		*st = MS_VFU_MIGR_STATE_STOP_AND_COPY;
		return 0;
	case V1_SAVING | V1_RUNNING:
		*st = MS_VFU_MIGR_STATE_PRE_COPY;
		return 0;
	case V1_RESUMING:
		*st = MS_VFU_MIGR_STATE_RESUME;
		return 0;
	default:
		return EINVAL;
	}
}

/* pending_bytes: the callback at the start of an iteration, then the
 * cached value until the client reads data_offset; 0 once finished. */
static uint64_t v1_pending(struct vfu_dev *d)
{
	if (d->iter == ITER_FINISHED)
		return 0;
	if (d->iter == ITER_STARTED)
		return d->iter_pending;
	d->iter_pending = d->cb->pending(d);
	d->iter = d->iter_pending ? ITER_STARTED : ITER_FINISHED;
	return d->iter_pending;
}

/* data_offset: saving, prepare_data once per iteration; resuming, where
 * the client writes next. */
static int v1_data_offset(struct vfu_dev *d, uint64_t *v)
{
	if (d->dev_state == V1_RESUMING) {
		if (d->cb->prepare(d, v, NULL))
			return cb_errno();
		*v += DATA_OFFSET;
		return 0;
	}
	if (!(d->dev_state & V1_SAVING))
		return EINVAL;
	if (d->iter == ITER_STARTED) {
		if (d->cb->prepare(d, &d->iter_off, &d->iter_size))
			return cb_errno();
		d->iter = ITER_PREPARED;
	} else if (d->iter != ITER_PREPARED) {
		return EINVAL;
	}
	*v = d->iter_off + DATA_OFFSET;
	return 0;
}

/* An access within struct vfio_user_migration_info; 0 or an errno. */
static int v1_register(struct vfu_dev *d, uint8_t *buf, uint32_t count,
		       uint64_t pos, bool is_write)
{
	ms_vfu_migr_state st;
	uint32_t bits;
	uint64_t v = 0;
	int err;

	if (pos == REG_DEVICE_STATE && count == sizeof(bits)) {
		if (!is_write) {
			memcpy(buf, &d->dev_state, sizeof(bits));
			return 0;
		}
		memcpy(&bits, buf, sizeof(bits));
		if ((err = v1_state(bits, &st)))
			return err;
		if (d->cb->transition(d, st))
			return cb_errno();
		d->dev_state = bits;
		d->iter = ITER_INITIAL;
		return 0;
	}
	if (count != sizeof(v))
		return EINVAL;
	if (pos == REG_DATA_SIZE && is_write) {
		if (d->dev_state != V1_RESUMING)
			return EINVAL;
		memcpy(&v, buf, sizeof(v));
		return d->cb->written(d, v) ? cb_errno() : 0;
	}
	if (is_write)
		return EINVAL;
	switch (pos) {
	case REG_PENDING:
		v = (d->dev_state & V1_SAVING) ? v1_pending(d) : 0;
		break;
	case REG_DATA_OFFSET:
		if ((err = v1_data_offset(d, &v)))
			return err;
		break;
	case REG_DATA_SIZE:
		if (!(d->dev_state & V1_SAVING) ||
		    (d->iter != ITER_STARTED && d->iter != ITER_PREPARED))
			return EINVAL;
		v = d->iter_size;
		break;
	default:
		return EINVAL;
	}
	memcpy(buf, &v, sizeof(v));
	return 0;
}

/* VFIO_USER_REGION_READ/WRITE of the migration region (v1). */
static int serve_region(struct vfu_dev *d, bool is_write, size_t len,
			size_t *rlen)
{
	struct wire_region_access ra;
	uint8_t *buf;
	ssize_t n;
	int err;

	if (len < sizeof(ra))
		return EINVAL;
	memcpy(&ra, d->req, sizeof(ra));
	if (ra.region != WIRE_MIGR_REGION || ra.offset > REGION_SIZE ||
	    ra.count > REGION_SIZE - ra.offset ||
	    len != sizeof(ra) + (is_write ? ra.count : 0))
		return EINVAL;
	buf = (is_write ? d->req : d->rep) + sizeof(ra);
	if (ra.offset + ra.count <= REG_INFO_SIZE) {
		err = v1_register(d, buf, ra.count, ra.offset, is_write);
		if (err)
			return err;
	} else if (ra.offset < DATA_OFFSET) {
		return EINVAL; /* dead space between registers and data */
	} else {
		n = is_write ? d->cb->write1(d, buf, ra.count,
					     ra.offset - DATA_OFFSET)
			     : d->cb->read1(d, buf, ra.count,
					    ra.offset - DATA_OFFSET);
		if (n < 0)
			return cb_errno();
		if ((size_t)n != ra.count)
			return EINVAL;
	}
	memcpy(d->rep, &ra, sizeof(ra));
	*rlen = sizeof(ra) + (is_write ? 0 : ra.count);
	return 0;
}

/* VFIO_USER_DEVICE_FEATURE setting the device state (v2); the reply
 * echoes the request.  The client asks only for direct arcs. */
static int serve_feature(struct vfu_dev *d, size_t len, size_t *rlen)
{
	static const ms_vfu_migr_state map[] = {
		[V2_STOP] = MS_VFU_MIGR_STATE_STOP,
		[V2_RUNNING] = MS_VFU_MIGR_STATE_RUNNING,
		[V2_STOP_COPY] = MS_VFU_MIGR_STATE_STOP_AND_COPY,
		[V2_RESUMING] = MS_VFU_MIGR_STATE_RESUME,
		[V2_PRE_COPY] = MS_VFU_MIGR_STATE_PRE_COPY,
	};
	struct wire_mig_state f;

	if (len != sizeof(f))
		return EINVAL;
	memcpy(&f, d->req, sizeof(f));
	if (f.flags != WIRE_SET_MIG_STATE || f.argsz < sizeof(f) ||
	    f.device_state > V2_PRE_COPY || f.device_state == 5 ||
	    !f.device_state)
		return EINVAL;
	if (f.device_state != d->dev_state) {
		if (d->cb->transition(d, map[f.device_state]))
			return cb_errno();
		d->dev_state = f.device_state;
	}
	memcpy(d->rep, &f, sizeof(f));
	*rlen = sizeof(f);
	return 0;
}

/* VFIO_USER_MIG_DATA_READ (v2): the reply has room for the size asked,
 * and says how much of it read_data filled. */
static int serve_mig_read(struct vfu_dev *d, size_t len, size_t *rlen)
{
	struct wire_mig_data m;
	ssize_t n;

	if (len != sizeof(m))
		return EINVAL;
	memcpy(&m, d->req, sizeof(m));
	if ((d->dev_state != V2_PRE_COPY && d->dev_state != V2_STOP_COPY) ||
	    m.size > VFU_WINDOW || m.argsz < sizeof(m) + m.size)
		return EINVAL;
	n = d->cb->read2(d, d->rep + sizeof(m), m.size);
	if (n < 0)
		return cb_errno();
	if ((size_t)n < m.size)
		memset(d->rep + sizeof(m) + n, 0, m.size - (size_t)n);
	*rlen = sizeof(m) + m.size;
	m.size = (uint32_t)n;
	m.argsz = (uint32_t)(sizeof(m) + (size_t)n);
	memcpy(d->rep, &m, sizeof(m));
	return 0;
}

/* VFIO_USER_MIG_DATA_WRITE (v2): all of it, or EINVAL; no reply body. */
static int serve_mig_write(struct vfu_dev *d, size_t len, size_t *rlen)
{
	struct wire_mig_data m;
	ssize_t n;

	if (len < sizeof(m))
		return EINVAL;
	memcpy(&m, d->req, sizeof(m));
	if (d->dev_state != V2_RESUMING || m.size > VFU_WINDOW ||
	    m.argsz < sizeof(m) + m.size || len < sizeof(m) + m.size)
		return EINVAL;
	n = d->cb->write2(d, d->req + sizeof(m), m.size);
	if (n < 0)
		return cb_errno();
	if ((size_t)n != m.size)
		return EINVAL;
	*rlen = 0;
	return 0;
}

/* One request: 0 and the reply body's length, or an errno. */
static int serve_one(struct vfu_dev *d, const struct wire_hdr *h, size_t len,
		     size_t *rlen)
{
	bool v1 = d->api == MS_VFU_MIGR_CALLBACKS_V1;

	if ((h->flags & WIRE_F_TYPE_MASK) != 0)
		return EINVAL;
	switch (h->cmd) {
	case WIRE_REGION_READ:
	case WIRE_REGION_WRITE:
		if (v1)
			return serve_region(d, h->cmd == WIRE_REGION_WRITE, len,
					    rlen);
		break;
	case WIRE_DEVICE_FEATURE:
		if (!v1)
			return serve_feature(d, len, rlen);
		break;
	case WIRE_MIG_DATA_READ:
		if (!v1)
			return serve_mig_read(d, len, rlen);
		break;
	case WIRE_MIG_DATA_WRITE:
		if (!v1)
			return serve_mig_write(d, len, rlen);
		break;
	}
	return EINVAL;
}

static void *server_fail(struct vfu_dev *d, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/* Say why the server stops, and close its socket for the client. */
static void *server_fail(struct vfu_dev *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
	shutdown(d->fd, SHUT_RDWR);
	return NULL;
}

/*
 * The server thread: a request's header, then its body, then the reply
 * (header and body in one message), until the client closes the socket.
 */
static void *serve(void *arg)
{
	struct vfu_dev *d = arg;
	struct wire_hdr h, rh;
	struct iovec iov[2];
	size_t len, rlen;
	int ret, err;

	for (;;) {
		set_iov(&iov[0], &h, sizeof(h));
		ret = io_all(d->fd, iov, 1, false);
		if (ret == 1)
			return NULL; /* the client is done */
		if (ret)
			return server_fail(d, "receiving a header: %s",
					   strerror(errno));
		if (h.msg_size < sizeof(h) ||
		    h.msg_size - sizeof(h) > BODY_ROOM)
			return server_fail(d,
					   "message of %u bytes (expected "
					   "16 to %zu)",
					   (unsigned)h.msg_size,
					   sizeof(h) + BODY_ROOM);
		len = h.msg_size - sizeof(h);
		set_iov(&iov[0], d->req, len);
		if (io_all(d->fd, iov, 1, false))
			return server_fail(d, "receiving a body of %zu bytes",
					   len);
		rlen = 0;
		err = serve_one(d, &h, len, &rlen);
		memset(&rh, 0, sizeof(rh));
		rh.msg_id = h.msg_id;
		rh.cmd = h.cmd;
		rh.flags = WIRE_F_REPLY;
		if (err) {
			rh.flags |= WIRE_F_ERROR;
			rh.error_no = (uint32_t)err;
			rlen = 0;
		}
		rh.msg_size = (uint32_t)(sizeof(rh) + rlen);
		set_iov(&iov[0], &rh, sizeof(rh));
		set_iov(&iov[1], d->rep, rlen);
		if (io_all(d->fd, iov, 2, true))
			return server_fail(d, "sending a reply: %s",
					   strerror(errno));
	}
}

/*
 * The client: QEMU's and libvfio-user's samples' sequence of messages.
 */

enum { SRC, DST };

struct vfu_client {
	int fd[2];
	uint16_t msg_id;
	uint8_t win[VFU_WINDOW];
	int side;      /* the side of the failed request */
	char err[200]; /* what failed */
};

static int client_fail(struct vfu_client *c, int side, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

static int client_fail(struct vfu_client *c, int side, const char *fmt, ...)
{
	va_list ap;

	c->side = side;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * One request to @side (its body @body, @blen bytes, then @dlen bytes of
 * @data) and its reply (@rblen bytes of body into @rbody, then up to
 * @rdlen bytes of data into @rdata, their number into *@got if not NULL).
 */
static int request(struct vfu_client *c, int side, uint16_t cmd,
		   const void *body, size_t blen, const void *data, size_t dlen,
		   void *rbody, size_t rblen, void *rdata, size_t rdlen,
		   size_t *got)
{
	const char *who = side == SRC ? "source" : "destination";
	struct wire_hdr h, rh;
	struct iovec iov[3];
	size_t n;
	int ret;

	memset(&h, 0, sizeof(h));
	h.msg_id = ++c->msg_id;
	h.cmd = cmd;
	h.msg_size = (uint32_t)(sizeof(h) + blen + dlen);
	set_iov(&iov[0], &h, sizeof(h));
	set_iov(&iov[1], body, blen);
	set_iov(&iov[2], data, dlen);
	if (io_all(c->fd[side], iov, 3, true))
		return client_fail(c, side, "sending command %u to the %s: %s",
				   cmd, who, strerror(errno));
	set_iov(&iov[0], &rh, sizeof(rh));
	ret = io_all(c->fd[side], iov, 1, false);
	if (ret)
		return client_fail(c, side,
				   "the %s did not reply to command %u", who,
				   cmd);
	if (rh.msg_id != h.msg_id || rh.cmd != cmd ||
	    (rh.flags & WIRE_F_TYPE_MASK) != WIRE_F_REPLY ||
	    rh.msg_size < sizeof(rh))
		return client_fail(c, side,
				   "the %s's reply to command %u is not one "
				   "(msg_id %u, cmd %u, flags %#x)",
				   who, cmd, rh.msg_id, rh.cmd, rh.flags);
	if (rh.flags & WIRE_F_ERROR)
		return client_fail(c, side, "the %s failed command %u: %s", who,
				   cmd, strerror((int)rh.error_no));
	n = rh.msg_size - sizeof(rh);
	if (n < rblen || n - rblen > rdlen)
		return client_fail(c, side,
				   "the %s's reply to command %u has %zu "
				   "bytes, expected %zu to %zu",
				   who, cmd, n, rblen, rblen + rdlen);
	set_iov(&iov[0], rbody, rblen);
	set_iov(&iov[1], rdata, n - rblen);
	if (io_all(c->fd[side], iov, 2, false))
		return client_fail(c, side, "the %s's reply was cut short",
				   who);
	if (got)
		*got = n - rblen;
	return 0;
}

/* A region access of exactly @count bytes. */
static int region_rw(struct vfu_client *c, int side, bool is_write,
		     uint64_t off, void *buf, size_t count)
{
	struct wire_region_access ra, rra;
	size_t got = 0;

	ra.offset = off;
	ra.region = WIRE_MIGR_REGION;
	ra.count = (uint32_t)count;
	if (is_write)
		return request(c, side, WIRE_REGION_WRITE, &ra, sizeof(ra), buf,
			       count, &rra, sizeof(rra), NULL, 0, NULL);
	if (request(c, side, WIRE_REGION_READ, &ra, sizeof(ra), NULL, 0, &rra,
		    sizeof(rra), buf, count, &got))
		return -1;
	if (got != count || rra.count != count)
		return client_fail(c, side, "read %zu bytes, expected %zu", got,
				   count);
	return 0;
}

static int reg_read(struct vfu_client *c, int side, uint64_t reg, uint64_t *v)
{
	return region_rw(c, side, false, reg, v, sizeof(*v));
}

static int reg_write(struct vfu_client *c, int side, uint64_t reg, uint64_t v)
{
	return region_rw(c, side, true, reg, &v, sizeof(v));
}

static int v1_set(struct vfu_client *c, int side, uint32_t bits)
{
	return region_rw(c, side, true, REG_DEVICE_STATE, &bits, sizeof(bits));
}

/*
 * One phase of v1: until the source has nothing pending, read its
 * pending_bytes, data_offset, data_size and data, and write the data and
 * data_size at the data_offset the destination gives.
 */
static int v1_drain(struct vfu_client *c)
{
	uint64_t pending, off, size, doff;

	for (;;) {
		if (reg_read(c, SRC, REG_PENDING, &pending))
			return -1;
		if (!pending)
			return 0;
		if (reg_read(c, SRC, REG_DATA_OFFSET, &off) ||
		    reg_read(c, SRC, REG_DATA_SIZE, &size))
			return -1;
		if (!size || size > VFU_WINDOW)
			return client_fail(c, SRC,
					   "data_size %llu with %llu bytes "
					   "pending (expected 1 to %zu)",
					   (unsigned long long)size,
					   (unsigned long long)pending,
					   VFU_WINDOW);
		if (region_rw(c, SRC, false, off, c->win, (size_t)size) ||
		    reg_read(c, DST, REG_DATA_OFFSET, &doff) ||
		    region_rw(c, DST, true, doff, c->win, (size_t)size) ||
		    reg_write(c, DST, REG_DATA_SIZE, size))
			return -1;
	}
}

static int client_v1(struct vfu_client *c)
{
	if (v1_set(c, SRC, V1_SAVING | V1_RUNNING) ||
	    v1_set(c, DST, V1_RESUMING) || v1_drain(c) ||
	    v1_set(c, SRC, V1_SAVING) || v1_drain(c) ||
	    v1_set(c, SRC, V1_STOP) || v1_set(c, DST, V1_RUNNING))
		return -1;
	return 0;
}

static int v2_set(struct vfu_client *c, int side, uint32_t state)
{
	struct wire_mig_state f, rf;

	f.argsz = sizeof(f);
	f.flags = WIRE_SET_MIG_STATE;
	f.device_state = state;
	f.data_fd = UINT32_MAX;
	return request(c, side, WIRE_DEVICE_FEATURE, &f, sizeof(f), NULL, 0,
		       &rf, sizeof(rf), NULL, 0, NULL);
}

/* One phase of v2: data reads of the window size from the source, each
 * written to the destination, until a read returns nothing. */
static int v2_drain(struct vfu_client *c)
{
	struct wire_mig_data m, rm;
	size_t got;

	for (;;) {
		m.argsz = sizeof(m) + VFU_WINDOW;
		m.size = VFU_WINDOW;
		if (request(c, SRC, WIRE_MIG_DATA_READ, &m, sizeof(m), NULL, 0,
			    &rm, sizeof(rm), c->win, VFU_WINDOW, &got))
			return -1;
		if (rm.size > got)
			return client_fail(c, SRC,
					   "read_data gave %u bytes in a "
					   "reply of %zu",
					   rm.size, got);
		if (!rm.size)
			return 0;
		m.argsz = (uint32_t)sizeof(m) + rm.size;
		m.size = rm.size;
		if (request(c, DST, WIRE_MIG_DATA_WRITE, &m, sizeof(m), c->win,
			    rm.size, NULL, 0, NULL, 0, NULL))
			return -1;
	}
}

static int client_v2(struct vfu_client *c)
{
	if (v2_set(c, SRC, V2_PRE_COPY) || v2_set(c, DST, V2_STOP) ||
	    v2_set(c, DST, V2_RESUMING) || v2_drain(c) ||
	    v2_set(c, SRC, V2_STOP_COPY) || v2_drain(c) ||
	    v2_set(c, SRC, V2_STOP) || v2_set(c, DST, V2_STOP) ||
	    v2_set(c, DST, V2_RUNNING))
		return -1;
	return 0;
}

/* Start the server of side @d on one end of a new socketpair; the
 * other end goes to *@cfd. */
static int server_start(struct vfu_dev *d, int *cfd)
{
	int sv[2], ret;

	d->err[0] = '\0';
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return sys_failed("socketpair");
	d->fd = sv[1];
	*cfd = sv[0];
	ret = pthread_create(&d->thread, NULL, serve, d);
	if (ret) {
		errno = ret;
		return sys_failed("pthread_create");
	}
	d->started = true;
	return 0;
}

/* Let the client's socket go, so that the server sees its end. */
static void server_stop(struct vfu_dev *d, int *cfd)
{
	if (*cfd >= 0)
		close(*cfd);
	*cfd = -1;
	if (d->started)
		pthread_join(d->thread, NULL);
	d->started = false;
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

/* Reset side @d for a run: its device, its callbacks, its server. */
static int side_init(struct vfu_dev *d, uint8_t *mem, size_t size, int api,
		     bool raw, bool lazy)
{
	dev_init(d, mem, size);
	d->api = api;
	d->cb = raw ? &raw_cbs : &adapter_cbs;
	d->rstate = MS_VFU_MIGR_STATE_RUNNING;
	d->pos = d->end = d->offered = d->wpos = d->wlen = 0;
	d->dev_state =
		api == MS_VFU_MIGR_CALLBACKS_V1 ? V1_RUNNING : V2_RUNNING;
	d->iter = ITER_INITIAL;
	d->iter_pending = d->iter_off = d->iter_size = 0;
	return raw ? 0 : dev_adapter(d, api, lazy);
}

/*
 * CPU seconds of the whole process (every thread, user and system time).
 * The client and the two servers take turns (one request, one reply), so
 * on an idle machine this is the wall time; on a shared one it leaves out
 * the time other programs hold the CPUs.
 */
static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One migration through the two servers, timed from the client's first
 * message to its last reply, in CPU time. */
static int socket_run(struct bench *b, double *secs, int api, bool raw,
		      bool lazy, const char *name)
{
	static struct vfu_client c;
	size_t size = (size_t)b->units;
	int i, ret = -1, rc = -1;
	double t0;

	memset(b->dst, 0, size);
	c.fd[SRC] = c.fd[DST] = -1;
	c.err[0] = '\0';
	c.msg_id = 0;
	if (side_init(&b->vdev[SRC], b->vsrc, size, api, raw, lazy) ||
	    side_init(&b->vdev[DST], b->dst, size, api, raw, lazy))
		goto out;
	for (i = SRC; i <= DST; i++)
		if (server_start(&b->vdev[i], &c.fd[i]))
			goto out;
	t0 = cpu_now();
	rc = api == MS_VFU_MIGR_CALLBACKS_V1 ? client_v1(&c) : client_v2(&c);
	*secs = cpu_now() - t0;
	if (*secs < 1e-9)
		*secs = 1e-9;
out:
	for (i = SRC; i <= DST; i++)
		server_stop(&b->vdev[i], &c.fd[i]);
	for (i = SRC; i <= DST; i++)
		if (b->vdev[i].err[0])
			fprintf(stderr, "migstream-bench: %s: %s server: %s\n",
				name, i == SRC ? "source" : "destination",
				b->vdev[i].err);
	if (rc && c.err[0])
		fprintf(stderr, "migstream-bench: %s: %s%s%s\n", name, c.err,
			b->vdev[c.side].a ? ": " : "",
			b->vdev[c.side].a ? ms_vfu_errmsg(b->vdev[c.side].a)
					  : "");
	if (!rc && !b->vdev[SRC].err[0] && !b->vdev[DST].err[0])
		ret = vfu_check(b, name);
	for (i = SRC; i <= DST; i++)
		dev_release(&b->vdev[i]);
	return ret;
}

static int socket_v1_run(struct bench *b, double *secs)
{
	return socket_run(b, secs, MS_VFU_MIGR_CALLBACKS_V1, false, false,
			  "vfu-socket-32k-v1");
}

static int socket_v1_lazy_run(struct bench *b, double *secs)
{
	return socket_run(b, secs, MS_VFU_MIGR_CALLBACKS_V1, false, true,
			  "vfu-socket-32k-v1-lazy");
}

static int socket_v1_raw_run(struct bench *b, double *secs)
{
	return socket_run(b, secs, MS_VFU_MIGR_CALLBACKS_V1, true, false,
			  "memcpy-callbacks-v1");
}

static int socket_v2_run(struct bench *b, double *secs)
{
	return socket_run(b, secs, MS_VFU_MIGR_CALLBACKS_V2, false, false,
			  "vfu-socket-32k-v2");
}

static int socket_v2_lazy_run(struct bench *b, double *secs)
{
	return socket_run(b, secs, MS_VFU_MIGR_CALLBACKS_V2, false, true,
			  "vfu-socket-32k-v2-lazy");
}

static int socket_v2_raw_run(struct bench *b, double *secs)
{
	return socket_run(b, secs, MS_VFU_MIGR_CALLBACKS_V2, true, false,
			  "memcpy-callbacks-v2");
}

const struct group bench_group_vfu_socket_32k_v1 = {
	.vs = "memcpy-callbacks-v1",
	.unit = "bytes",
	.setup = vfu_socket_setup,
	.teardown = vfu_teardown,
	.baseline = socket_v1_raw_run,
	.subj = {{"vfu-socket-32k-v1", socket_v1_run, METRIC_MBPS, 0.90, 0},
		 {"vfu-socket-32k-v1-lazy", socket_v1_lazy_run, METRIC_NONE, 0,
		  0}},
	.nsubj = 2,
};

const struct group bench_group_vfu_socket_32k_v2 = {
	.vs = "memcpy-callbacks-v2",
	.unit = "bytes",
	.setup = vfu_socket_setup,
	.teardown = vfu_teardown,
	.baseline = socket_v2_raw_run,
	.subj = {{"vfu-socket-32k-v2", socket_v2_run, METRIC_MBPS, 0.90, 0},
		 {"vfu-socket-32k-v2-lazy", socket_v2_lazy_run, METRIC_NONE, 0,
		  0}},
	.nsubj = 2,
};

/*
 * vfu-inproc-32k: the same device through two v1 adapters in this
 * thread, the client's loop calling them directly (no transport), against
 * the copies any transport through a 32 KiB window makes.  For
 * information: it shows the adapter's own cost with nothing around it.
 */

/* Each window copied from the source into the window, then from the
 * window into the destination. */
static int vfu_window_copy_run(struct bench *b, double *secs)
{
	static uint8_t win[VFU_WINDOW];
	size_t off, n, size = (size_t)b->units;
	double t0 = now();

	for (off = 0; off < size; off += n) {
		n = size - off < sizeof(win) ? size - off : sizeof(win);
		memcpy(win, b->vsrc + off, n);
		memcpy(b->dst + off, win, n);
	}
	*secs = since(t0);
	return vfu_check(b, "memcpy-via-32k");
}

/* Tell what failed in the adapter and give up. */
static int inproc_failed(const char *what, ms_vfu_adapter *a)
{
	fprintf(stderr, "migstream-bench: vfu-inproc-32k: %s: %s\n", what,
		ms_vfu_errmsg(a));
	return -1;
}

static int inproc_run(struct bench *b, double *secs)
{
	static uint8_t win[VFU_WINDOW];
	size_t size = (size_t)b->units;
	ms_vfu_adapter *as, *ad;
	uint64_t off, n, doff;
	int ret = -1;
	double t0;

	memset(b->dst, 0, size);
	if (side_init(&b->vdev[SRC], b->vsrc, size, MS_VFU_MIGR_CALLBACKS_V1,
		      false, false) ||
	    side_init(&b->vdev[DST], b->dst, size, MS_VFU_MIGR_CALLBACKS_V1,
		      false, false))
		goto out;
	as = b->vdev[SRC].a;
	ad = b->vdev[DST].a;
	t0 = now();
	if (ms_vfu_transition(as, MS_VFU_MIGR_STATE_STOP_AND_COPY) ||
	    ms_vfu_transition(ad, MS_VFU_MIGR_STATE_RESUME)) {
		inproc_failed("transition", as);
		goto out;
	}
	while (ms_vfu_v1_get_pending_bytes(as)) {
		if (ms_vfu_v1_prepare_data(as, &off, &n) ||
		    ms_vfu_v1_read_data(as, win, n, off) != (ssize_t)n) {
			inproc_failed("source", as);
			goto out;
		}
		if (ms_vfu_v1_prepare_data(ad, &doff, NULL) ||
		    ms_vfu_v1_write_data(ad, win, n, doff) != (ssize_t)n ||
		    ms_vfu_v1_data_written(ad, n)) {
			inproc_failed("destination", ad);
			goto out;
		}
	}
	if (ms_vfu_transition(ad, MS_VFU_MIGR_STATE_RUNNING)) {
		inproc_failed("finishing the load", ad);
		goto out;
	}
	*secs = since(t0);
	ret = vfu_check(b, "vfu-inproc-32k");
out:
	dev_release(&b->vdev[SRC]);
	dev_release(&b->vdev[DST]);
	return ret;
}

const struct group bench_group_vfu_inproc_32k = {
	.vs = "memcpy-via-32k",
	.unit = "bytes",
	.setup = vfu_setup,
	.teardown = vfu_teardown,
	.baseline = vfu_window_copy_run,
	.subj = {{"vfu-inproc-32k", inproc_run, METRIC_NONE, 0, 0}},
	.nsubj = 1,
};
