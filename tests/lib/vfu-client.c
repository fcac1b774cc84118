/* SPDX-License-Identifier: MIT */
/*
 * The test drivers of the vfio-user adapter declared in vfu-client.h: an
 * emulation of libvfio-user's v1 migration region and v2 state machine,
 * and QEMU-like clients of both.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <migstream/migstream.h>

#include "vfu-client.h"

static int vfu_error(int err)
{
	errno = err;
	return -1;
}

/*
 * The server reads a request of @body bytes after its header: 0 when it
 * arrives whole; -1 with EINVAL when it arrives short (the request is
 * refused, the rest stays in the socket), EPROTO once the session has
 * desynced.
 */
static int vfu_recv(struct vfu_transport *t, uint64_t body)
{
	if (t->stale)
		return vfu_error(EPROTO);
	if (!t->sockbuf || VFU_MSG_HEADER + body <= t->sockbuf)
		return 0;
	t->short_reads++;
	t->stale = body - (t->sockbuf - VFU_MSG_HEADER);
	return vfu_error(EINVAL);
}

uint64_t vfu_rand(uint64_t *st)
{
	uint64_t x = *st ? *st : 0x9e3779b97f4a7c15ull;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*st = x;
	return x;
}

void vfu1_init(struct vfu1_dev *d, ms_vfu_adapter *a)
{
	memset(d, 0, sizeof(*d));
	d->a = a;
	d->region_size = VFU1_DATA_OFFSET + ms_vfu_window_size(a);
	d->device_state = VFU1_RUNNING;
	d->iter = VFU1_ITER_INITIAL;
	d->tr.sockbuf = VFU_SOCKBUF_DEFAULT;
}

bool vfu1_arc_valid(uint32_t from, uint32_t to)
{
	static const uint8_t rows[8] = {
		[0] = 1u << 0 | 1u << 1,
		[1] = 1u << 0 | 1u << 1 | 1u << 2 | 1u << 3 | 1u << 4 | 1u << 6,
		[2] = 1u << 0 | 1u << 1 | 1u << 2 | 1u << 6,
		[3] = 1u << 0 | 1u << 1 | 1u << 2 | 1u << 6,
		[4] = 1u << 1 | 1u << 4 | 1u << 6,
	};

	return from < 8 && to < 8 && (rows[from] >> to & 1u);
}

ms_vfu_migr_state vfu1_to_vfu(uint32_t bits)
{
	switch (bits) {
	case VFU1_STOP:
		return MS_VFU_MIGR_STATE_STOP;
	case VFU1_RUNNING:
		return MS_VFU_MIGR_STATE_RUNNING;
	case VFU1_SAVING:
		return MS_VFU_MIGR_STATE_STOP_AND_COPY;
	case VFU1_RUNNING | VFU1_SAVING:
		return MS_VFU_MIGR_STATE_PRE_COPY;
	case VFU1_RESUMING:
		return MS_VFU_MIGR_STATE_RESUME;
	default:
		return (ms_vfu_migr_state)-1;
	}
}

static bool vfu1_is_saving(const struct vfu1_dev *d)
{
	return d->device_state == VFU1_SAVING ||
	       d->device_state == (VFU1_RUNNING | VFU1_SAVING);
}

static int vfu1_device_state(struct vfu1_dev *d, uint32_t *v, bool is_write)
{
	if (!is_write) {
		*v = d->device_state;
		return 0;
	}
	if (!vfu1_arc_valid(d->device_state, *v))
		return vfu_error(EINVAL);
	d->n.transition++;
	if (ms_vfu_transition(d->a, vfu1_to_vfu(*v)))
		return -1;
	d->device_state = *v;
	d->iter = VFU1_ITER_INITIAL;
	return 0;
}

static int vfu1_pending(struct vfu1_dev *d, uint64_t *v, bool is_write)
{
	if (is_write)
		return vfu_error(EINVAL);
	switch (d->iter) {
	case VFU1_ITER_FINISHED:
		*v = 0; /* latched: no callback until the next state write */
		return 0;
	case VFU1_ITER_INITIAL:
	case VFU1_ITER_DATA_PREPARED:
		d->n.pending++;
		*v = d->iter_pending = ms_vfu_v1_get_pending_bytes(d->a);
		d->iter = *v ? VFU1_ITER_STARTED : VFU1_ITER_FINISHED;
		return 0;
	case VFU1_ITER_STARTED:
	default:
		*v = d->iter_pending;
		return 0;
	}
}

static int vfu1_data_offset(struct vfu1_dev *d, uint64_t *v, bool is_write)
{
	uint64_t off;

	if (vfu1_is_saving(d)) {
		if (is_write)
			return vfu_error(EINVAL);
		if (d->iter == VFU1_ITER_STARTED) {
			d->n.prepare++;
			if (ms_vfu_v1_prepare_data(d->a, &d->iter_offset,
						   &d->iter_size))
				return -1;
			d->iter = VFU1_ITER_DATA_PREPARED;
		} else if (d->iter != VFU1_ITER_DATA_PREPARED) {
			return vfu_error(EINVAL); /* out of sequence */
		}
		*v = d->iter_offset + VFU1_DATA_OFFSET;
		return 0;
	}
	if (d->device_state == VFU1_RESUMING) {
		if (is_write)
			return vfu_error(EINVAL);
		d->n.prepare++;
		if (ms_vfu_v1_prepare_data(d->a, &off, NULL))
			return -1;
		*v = off + VFU1_DATA_OFFSET;
		return 0;
	}
	return vfu_error(EINVAL);
}

static int vfu1_data_size(struct vfu1_dev *d, uint64_t *v, bool is_write)
{
	if (vfu1_is_saving(d)) {
		if (is_write)
			return vfu_error(EINVAL);
		/* Upstream FIXME: read before data_offset, this is the
		 * previous iteration's size and prepare_data is not called. */
		if (d->iter != VFU1_ITER_STARTED &&
		    d->iter != VFU1_ITER_DATA_PREPARED)
			return vfu_error(EINVAL);
		*v = d->iter_size;
		return 0;
	}
	if (d->device_state == VFU1_RESUMING) {
		if (!is_write) {
			*v = 0;
			return 0;
		}
		d->n.written++;
		return ms_vfu_v1_data_written(d->a, *v) ? -1 : 0;
	}
	return vfu_error(EINVAL);
}

ssize_t vfu1_access(struct vfu1_dev *d, void *buf, size_t count, uint64_t pos,
		    bool is_write)
{
	ssize_t ret;
	uint32_t u32;
	uint64_t u64;

	/* The request reaches the library; a write carries its data. */
	if (vfu_recv(&d->tr, VFU1_ACCESS_HEADER + (is_write ? count : 0)))
		return -1;
	/* lib/libvfio-user.c: the transfer limit and the region bounds. */
	if (count > VFU1_MAX_XFER || pos > d->region_size ||
	    count > d->region_size - pos)
		return vfu_error(EINVAL);
	if (pos + count <= VFU1_INFO_SIZE) {
		switch (pos) {
		case VFU1_REG_DEVICE_STATE:
			if (count != 4)
				return vfu_error(EINVAL);
			u32 = 0;
			if (is_write)
				memcpy(&u32, buf, 4);
			ret = vfu1_device_state(d, &u32, is_write);
			if (!ret && !is_write)
				memcpy(buf, &u32, 4);
			break;
		case VFU1_REG_PENDING:
		case VFU1_REG_DATA_OFFSET:
		case VFU1_REG_DATA_SIZE:
			if (count != 8)
				return vfu_error(EINVAL);
			u64 = 0;
			if (is_write)
				memcpy(&u64, buf, 8);
			if (pos == VFU1_REG_PENDING)
				ret = vfu1_pending(d, &u64, is_write);
			else if (pos == VFU1_REG_DATA_OFFSET)
				ret = vfu1_data_offset(d, &u64, is_write);
			else
				ret = vfu1_data_size(d, &u64, is_write);
			if (!ret && !is_write)
				memcpy(buf, &u64, 8);
			break;
		default:
			return vfu_error(EINVAL);
		}
		return ret ? -1 : (ssize_t)count;
	}
	if (pos < VFU1_DATA_OFFSET)
		return vfu_error(EINVAL); /* dead space */
	if (is_write) {
		d->n.write++;
		ret = ms_vfu_v1_write_data(d->a, buf, count,
					   pos - VFU1_DATA_OFFSET);
	} else {
		d->n.read++;
		ret = ms_vfu_v1_read_data(d->a, buf, count,
					  pos - VFU1_DATA_OFFSET);
	}
	/* A short callback is not reported: the reply has count bytes. */
	return ret < 0 ? -1 : (ssize_t)count;
}

int vfu1_read_u64(struct vfu1_dev *d, uint64_t reg, uint64_t *v)
{
	return vfu1_access(d, v, 8, reg, false) < 0 ? -1 : 0;
}

int vfu1_write_u64(struct vfu1_dev *d, uint64_t reg, uint64_t v)
{
	return vfu1_access(d, &v, 8, reg, true) < 0 ? -1 : 0;
}

int vfu1_set_state(struct vfu1_dev *d, uint32_t bits)
{
	return vfu1_access(d, &bits, 4, VFU1_REG_DEVICE_STATE, true) < 0 ? -1
									 : 0;
}

static int vfu_for_pieces(size_t len, struct vfu_client_opts *o, uint64_t base,
			  int (*fn)(size_t off, size_t n, void *arg), void *arg)
{
	size_t off, n, piece = o->piece ? o->piece : 64;
	size_t *cuts, *order, ncuts = 0, i;
	int ret = 0;

	switch (o->pattern) {
	case VFU_PAT_QEMU8:
		for (off = 0; off < len && !ret; off += n) {
			uint64_t at = base + off;

			if (len - off >= 8 && !(at % 8))
				n = 8;
			else if (len - off >= 4 && !(at % 4))
				n = 4;
			else if (len - off >= 2 && !(at % 2))
				n = 2;
			else
				n = 1;
			ret = fn(off, n, arg);
		}
		return ret;
	case VFU_PAT_WHOLE:
		for (off = 0; off < len && !ret; off += n) {
			n = len - off < VFU1_MAX_XFER ? len - off
						      : VFU1_MAX_XFER;
			ret = fn(off, n, arg);
		}
		return ret;
	case VFU_PAT_PIECES:
		for (off = 0; off < len && !ret; off += n) {
			n = len - off < piece ? len - off : piece;
			ret = fn(off, n, arg);
		}
		return ret;
	case VFU_PAT_REVERSE:
		if (!len)
			return 0;
		off = (len - 1) / piece * piece;
		for (;;) {
			n = len - off < piece ? len - off : piece;
			ret = fn(off, n, arg);
			if (ret || !off)
				return ret;
			off -= piece;
		}
	case VFU_PAT_SCATTER:
	default:
		/* Cut points in increasing order, visited in a shuffled
		 * order: cuts[k] starts a piece that ends at cuts[k + 1]. */
		cuts = malloc((len + 2) * 2 * sizeof(*cuts));
		if (!cuts)
			return -ENOMEM;
		for (off = 0; off < len; off += n) {
			n = 1 + (size_t)(vfu_rand(&o->seed) % 997);
			if (n > len - off)
				n = len - off;
			cuts[ncuts++] = off;
		}
		cuts[ncuts] = len;
		order = cuts + ncuts + 1;
		for (i = 0; i < ncuts; i++)
			order[i] = i;
		for (i = ncuts; i > 1; i--) {
			size_t j = (size_t)(vfu_rand(&o->seed) % i), t;

			t = order[i - 1];
			order[i - 1] = order[j];
			order[j] = t;
		}
		for (i = 0; i < ncuts && !ret; i++)
			ret = fn(cuts[order[i]],
				 cuts[order[i] + 1] - cuts[order[i]], arg);
		free(cuts);
		return ret;
	}
}

struct vfu1_rw_arg {
	struct vfu1_dev *d;
	uint8_t *buf;
	uint64_t pos; /* region offset of buf[0] */
	bool is_write;
};

static int vfu1_rw_piece(size_t off, size_t n, void *arg)
{
	struct vfu1_rw_arg *r = arg;

	if (vfu1_access(r->d, r->buf + off, n, r->pos + off, r->is_write) < 0)
		return -errno;
	return 0;
}

static int vfu1_rw(struct vfu1_dev *d, struct vfu_client_opts *o, void *buf,
		   size_t len, uint64_t pos, bool is_write)
{
	struct vfu1_rw_arg r = {d, buf, pos, is_write};
	uint8_t tmp[997];
	int ret, k;

	ret = vfu_for_pieces(len, o, pos, vfu1_rw_piece, &r);
	if (ret || is_write || o->pattern != VFU_PAT_SCATTER || !len)
		return ret;
	for (k = 0; k < 16; k++) {
		size_t off = (size_t)(vfu_rand(&o->seed) % len);
		size_t n = 1 + (size_t)(vfu_rand(&o->seed) % sizeof(tmp));

		if (n > len - off)
			n = len - off;
		if (vfu1_access(d, tmp, n, pos + off, false) < 0)
			return -errno;
		if (memcmp(tmp, (uint8_t *)buf + off, n))
			return -EILSEQ; /* a re-read gave other bytes */
	}
	return 0;
}

int64_t vfu1_save_buffer(struct vfu1_dev *d, struct vfu_client_opts *o)
{
	uint64_t data_offset, data_size, total;
	uint8_t *buf;
	int ret;

	if (vfu1_read_u64(d, VFU1_REG_DATA_OFFSET, &data_offset) ||
	    vfu1_read_u64(d, VFU1_REG_DATA_SIZE, &data_size))
		return -errno;
	total = data_size;
	if (data_size > o->max_size)
		o->max_size = data_size;
	while (data_size) {
		uint64_t sec = d->region_size > data_offset
				       ? d->region_size - data_offset
				       : 0;

		if (sec > data_size)
			sec = data_size;
		if (!sec)
			return -ENOMEM; /* QEMU's g_try_malloc(0) */
		buf = malloc(sec);
		if (!buf)
			return -ENOMEM;
		ret = vfu1_rw(d, o, buf, sec, data_offset, false);
		if (!ret && o->sink)
			ret = o->sink(buf, sec, o->opaque);
		free(buf);
		if (ret)
			return ret;
		o->bytes += sec;
		data_size -= sec;
		data_offset += sec;
	}
	if (total)
		o->chunks++;
	return (int64_t)total;
}

int vfu1_read_pending(struct vfu1_dev *d, struct vfu_client_opts *o,
		      uint64_t *p)
{
	unsigned long before = d->n.pending;

	if (vfu1_read_u64(d, VFU1_REG_PENDING, p))
		return -errno;
	if (o->after_pending && d->n.pending != before)
		o->after_pending(*p, o->opaque);
	return 0;
}

int vfu1_rmw_state(struct vfu1_dev *d, uint32_t mask, uint32_t value)
{
	uint32_t s;

	if (vfu1_access(d, &s, 4, VFU1_REG_DEVICE_STATE, false) < 0)
		return -errno;
	s = (s & mask) | value;
	if (vfu1_set_state(d, s))
		return -errno;
	return 0;
}

int vfu1_qemu_precopy(struct vfu1_dev *d, struct vfu_client_opts *o)
{
	uint64_t pending;
	int64_t n;
	int ret;

	ret = vfu1_rmw_state(d, VFU1_MASK, VFU1_SAVING); /* pre-copy */
	if (ret)
		return ret;
	while (!o->max_precopy || o->precopy < o->max_precopy) {
		ret = vfu1_read_pending(d, o, &pending);
		if (ret)
			return ret;
		if (!pending)
			break;
		n = vfu1_save_buffer(d, o);
		if (n < 0)
			return (int)n;
		o->precopy++;
	}
	return 0;
}

int vfu1_qemu_complete(struct vfu1_dev *d, struct vfu_client_opts *o)
{
	uint64_t pending;
	int64_t n;
	int ret;

	ret = vfu1_rmw_state(d, ~VFU1_RUNNING, 0);
	if (!ret)
		ret = vfu1_rmw_state(d, ~VFU1_RUNNING, VFU1_SAVING);
	if (!ret)
		ret = vfu1_read_pending(d, o, &pending);
	while (!ret && pending) {
		n = vfu1_save_buffer(d, o);
		if (n < 0)
			return (int)n;
		if (!n)
			break;
		ret = vfu1_read_pending(d, o, &pending);
	}
	if (!ret)
		ret = vfu1_rmw_state(d, ~VFU1_SAVING, 0); /* STOP */
	return ret;
}

int vfu1_qemu_save(struct vfu1_dev *d, struct vfu_client_opts *o)
{
	int ret = vfu1_qemu_precopy(d, o);

	return ret ? ret : vfu1_qemu_complete(d, o);
}

int vfu1_qemu_load_setup(struct vfu1_dev *d)
{
	return vfu1_rmw_state(d, ~VFU1_MASK, VFU1_RESUMING);
}

int vfu1_qemu_load_chunk(struct vfu1_dev *d, struct vfu_client_opts *o,
			 const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t data_offset, report;
	int ret;

	do {
		if (vfu1_read_u64(d, VFU1_REG_DATA_OFFSET, &data_offset))
			return -errno;
		report = d->region_size > data_offset
				 ? d->region_size - data_offset
				 : 0;
		if (report > len)
			report = len;
		if (!report && len)
			return -ENOSPC;
		ret = vfu1_rw(d, o, (void *)(uintptr_t)p, report, data_offset,
			      true);
		if (ret)
			return ret;
		if (vfu1_write_u64(d, VFU1_REG_DATA_SIZE, report))
			return -errno;
		o->chunks++;
		o->bytes += report;
		p += report;
		len -= report;
	} while (len);
	return 0;
}

int vfu1_qemu_load_done(struct vfu1_dev *d)
{
	return vfu1_rmw_state(d, ~VFU1_MASK, VFU1_RUNNING);
}

static enum vfu2_state vfu2_next(enum vfu2_state from, enum vfu2_state to)
{
	static const uint8_t next[8][8] = {
		[VFU2_STOP] = {0, 1, 2, 3, 4, 0, 2, 0},
		[VFU2_RUNNING] = {0, 1, 2, 1, 1, 0, 6, 0},
		[VFU2_STOP_COPY] = {0, 1, 1, 3, 1, 0, 0, 0},
		[VFU2_RESUMING] = {0, 1, 1, 1, 4, 0, 1, 0},
		[VFU2_PRE_COPY] = {0, 2, 2, 3, 2, 0, 6, 0},
	};

	return (enum vfu2_state)next[from][to];
}

ms_vfu_migr_state vfu2_to_vfu(enum vfu2_state s)
{
	switch (s) {
	case VFU2_STOP:
		return MS_VFU_MIGR_STATE_STOP;
	case VFU2_RUNNING:
		return MS_VFU_MIGR_STATE_RUNNING;
	case VFU2_STOP_COPY:
		return MS_VFU_MIGR_STATE_STOP_AND_COPY;
	case VFU2_RESUMING:
		return MS_VFU_MIGR_STATE_RESUME;
	case VFU2_PRE_COPY:
		return MS_VFU_MIGR_STATE_PRE_COPY;
	default:
		return (ms_vfu_migr_state)-1;
	}
}

void vfu2_init(struct vfu2_dev *d, ms_vfu_adapter *a)
{
	memset(d, 0, sizeof(*d));
	d->a = a;
	d->state = VFU2_RUNNING;
	d->max_xfer = VFU1_MAX_XFER;
}

int vfu2_set_state(struct vfu2_dev *d, unsigned target)
{
	enum vfu2_state next;

	d->nhops = 0;
	if (vfu_recv(&d->tr, 16))
		return -1;
	if (target >= VFU2_NUM_STATES)
		return vfu_error(EINVAL);
	while (d->state != target) {
		next = vfu2_next(d->state, (enum vfu2_state)target);
		if (next == VFU2_ERROR)
			return vfu_error(EINVAL);
		d->n.transition++;
		if (d->nhops < 8)
			d->hops[d->nhops++] = vfu2_to_vfu(next);
		if (ms_vfu_transition(d->a, vfu2_to_vfu(next)))
			return -1; /* stays at the last successful hop */
		d->state = next;
	}
	return 0;
}

ssize_t vfu2_data_read(struct vfu2_dev *d, void *buf, uint64_t size)
{
	if (vfu_recv(&d->tr, VFU2_DATA_HEADER))
		return -1;
	if (d->state != VFU2_PRE_COPY && d->state != VFU2_STOP_COPY)
		return vfu_error(EINVAL);
	if (size > d->max_xfer)
		return vfu_error(EINVAL);
	d->n.read++;
	return ms_vfu_v2_read_data(d->a, buf, size);
}

int vfu2_data_write(struct vfu2_dev *d, const void *buf, uint64_t size)
{
	ssize_t n;

	if (vfu_recv(&d->tr, VFU2_DATA_HEADER + size))
		return -1;
	if (d->state != VFU2_RESUMING)
		return vfu_error(EINVAL);
	if (size > d->max_xfer)
		return vfu_error(EINVAL);
	d->n.write++;
	n = ms_vfu_v2_write_data(d->a, buf, size);
	if (n < 0)
		return -1;
	if ((uint64_t)n != size)
		return vfu_error(EINVAL); /* partial writes are invalid */
	return 0;
}

static int vfu2_save_block(struct vfu2_dev *d, struct vfu_client_opts *o,
			   uint8_t *buf, size_t buf_size, ssize_t *n)
{
	int ret = 0;

	*n = vfu2_data_read(d, buf, buf_size);
	if (*n < 0)
		return -errno;
	if ((size_t)*n > o->max_size)
		o->max_size = (size_t)*n;
	if (*n && o->sink)
		ret = o->sink(buf, (size_t)*n, o->opaque);
	if (*n) {
		o->bytes += (uint64_t)*n;
		o->chunks++;
	}
	return ret;
}

int vfu2_qemu_save(struct vfu2_dev *d, struct vfu_client_opts *o,
		   size_t buf_size)
{
	uint8_t *buf = malloc(buf_size ? buf_size : 1);
	ssize_t n = 1;
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = vfu2_set_state(d, VFU2_PRE_COPY) ? -errno : 0;
	while (!ret && n && (!o->max_precopy || o->precopy < o->max_precopy)) {
		ret = vfu2_save_block(d, o, buf, buf_size, &n);
		if (n > 0)
			o->precopy++;
	}
	if (!ret)
		ret = vfu2_set_state(d, VFU2_STOP_COPY) ? -errno : 0;
	n = 1;
	while (!ret && n)
		ret = vfu2_save_block(d, o, buf, buf_size, &n);
	if (!ret)
		ret = vfu2_set_state(d, VFU2_STOP) ? -errno : 0;
	free(buf);
	return ret;
}

int vfu2_qemu_load_setup(struct vfu2_dev *d)
{
	return vfu2_set_state(d, VFU2_RESUMING) ? -errno : 0;
}

struct vfu2_w_arg {
	struct vfu2_dev *d;
	const uint8_t *buf;
};

static int vfu2_w_piece(size_t off, size_t n, void *arg)
{
	struct vfu2_w_arg *w = arg;

	return vfu2_data_write(w->d, w->buf + off, n) ? -errno : 0;
}

int vfu2_qemu_load_chunk(struct vfu2_dev *d, struct vfu_client_opts *o,
			 const void *data, size_t len)
{
	struct vfu2_w_arg w = {d, data};
	struct vfu_client_opts in_order = *o;
	int ret;

	if (o->pattern != VFU_PAT_PIECES)
		in_order.pattern = VFU_PAT_WHOLE;
	ret = vfu_for_pieces(len, &in_order, 0, vfu2_w_piece, &w);
	if (!ret) {
		o->chunks++;
		o->bytes += len;
	}
	return ret;
}

int vfu2_qemu_load_done(struct vfu2_dev *d)
{
	return vfu2_set_state(d, VFU2_RUNNING) ? -errno : 0;
}
