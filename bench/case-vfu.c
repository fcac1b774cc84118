/* SPDX-License-Identifier: MIT */
/*
 * The vfio-user adapter's cases (vfu-window-64k, vfu-window-64k-floor).
 * Their groups are listed in bench/cases.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"

/*
 * vfu-window-64k: device state through the vfio-user adapter's v1
 * protocol with a 64 KiB window, source and destination adapters in one
 * process, against a memcpy() of the same state.  The device sends its
 * state in 1 MiB PART sections, as RAM does during precopy, so that both
 * sides stay in O(window + section) memory.
 */
#define VFU_SECTION MIB
#define VFU_WINDOW  (64 * KIB)

/* vfu-window-64k: a device whose RAM-like state is iterative. */
struct vfu_dev {
	uint8_t *mem;
	size_t size;
	size_t sent;
};

static int vfu_iterate(void *opaque, ms_stream *s)
{
	struct vfu_dev *d = opaque;

	if (d->sent < d->size) {
		ms_put_be64(s, d->sent);
		ms_put_buffer_async(s, d->mem + d->sent, VFU_SECTION);
		d->sent += VFU_SECTION;
	} else {
		ms_put_be64(s, UINT64_MAX);
	}
	return ms_stream_error(s) ? ms_stream_error(s) : d->sent < d->size;
}

static int vfu_complete(void *opaque, ms_stream *s)
{
	(void)opaque;
	return ms_put_be64(s, UINT64_MAX);
}

static uint64_t vfu_pending(void *opaque)
{
	const struct vfu_dev *d = opaque;

	return d->size - d->sent;
}

static int vfu_load(void *opaque, ms_stream *s, uint32_t version, uint8_t type)
{
	struct vfu_dev *d = opaque;
	uint64_t off;

	(void)version;
	if (type == MS_REC_START)
		return 0;
	if (ms_get_be64(s, &off))
		return ms_stream_error(s);
	if (off == UINT64_MAX)
		return 0;
	if (off > d->size - VFU_SECTION)
		return ms_stream_set_error(s, -EINVAL, "offset %llu",
					   (unsigned long long)off);
	return ms_get_buffer(s, d->mem + off, VFU_SECTION);
}

static const ms_handler_ops vfu_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_iterate = vfu_iterate,
	.pending = vfu_pending,
	.save_complete = vfu_complete,
	.load = vfu_load,
};

static int vfu_setup(struct bench *b)
{
	size_t i;

	b->units = (double)b->cfg->vfu_bytes;
	b->vsrc = malloc(b->cfg->vfu_bytes);
	b->dst = malloc(b->cfg->vfu_bytes);
	b->vdev = calloc(2, sizeof(*b->vdev));
	if (!b->vsrc || !b->dst || !b->vdev)
		return sys_failed("malloc");
	for (i = 0; i < b->cfg->vfu_bytes; i++)
		b->vsrc[i] = (uint8_t)(i * 131 + (i >> 12));
	memset(b->dst, 0, b->cfg->vfu_bytes);
	return 0;
}

static int vfu_teardown(struct bench *b)
{
	free(b->vsrc);
	free(b->dst);
	free(b->vdev);
	b->vsrc = NULL;
	b->dst = NULL;
	b->vdev = NULL;
	return 0;
}

static int vfu_memcpy_run(struct bench *b, double *secs)
{
	double t0 = now();

	memcpy(b->dst, b->vsrc, b->cfg->vfu_bytes);
	*secs = since(t0);
	return 0;
}

/*
 * The copies any transport through a 64 KiB window makes: each window
 * copied from the source into the window, then from the window into the
 * destination.  The adapter's floor; reported for information.
 */
static int vfu_window_copy_run(struct bench *b, double *secs)
{
	static uint8_t win[64 * KIB];
	size_t off, n;
	double t0 = now();

	for (off = 0; off < b->cfg->vfu_bytes; off += n) {
		n = b->cfg->vfu_bytes - off < sizeof(win)
			    ? b->cfg->vfu_bytes - off
			    : sizeof(win);
		memcpy(win, b->vsrc + off, n);
		memcpy(b->dst + off, win, n);
	}
	*secs = since(t0);
	if (memcmp(b->dst, b->vsrc, b->cfg->vfu_bytes)) {
		fprintf(stderr,
			"migstream-bench: memcpy-via-64k: wrong output\n");
		return -1;
	}
	return 0;
}

/* Tell what failed in the adapter and give up. */
static int vfu_failed(const char *what, ms_vfu_adapter *a)
{
	fprintf(stderr, "migstream-bench: vfu-window-64k: %s: %s\n", what,
		a ? ms_vfu_errmsg(a) : "out of memory");
	return -1;
}

static int vfu_run(struct bench *b, double *secs)
{
	ms_vfu_opts o;
	ms_registry *rs = NULL, *rd = NULL;
	ms_vfu_adapter *as = NULL, *ad = NULL;
	static uint8_t win[VFU_WINDOW];
	uint64_t off, size, doff;
	int ret = -1;
	double t0;

	memset(&o, 0, sizeof(o));
	o.version = MS_VFU_OPTS_VERSION;
	o.api = MS_VFU_MIGR_CALLBACKS_V1;
	o.window = VFU_WINDOW;
	b->vdev[0].mem = b->vsrc;
	b->vdev[1].mem = b->dst;
	b->vdev[0].size = b->vdev[1].size = b->cfg->vfu_bytes;
	b->vdev[0].sent = 0;
	memset(b->dst, 0, b->cfg->vfu_bytes);
	if (ms_registry_new(&rs, NULL) || ms_registry_new(&rd, NULL) ||
	    ms_registry_add(rs, "ram", 0, 1, 1, &vfu_ops, &b->vdev[0], NULL) ||
	    ms_registry_add(rd, "ram", 0, 1, 1, &vfu_ops, &b->vdev[1], NULL) ||
	    ms_vfu_adapter_new(&as, rs, &o) ||
	    ms_vfu_adapter_new(&ad, rd, &o)) {
		vfu_failed("setup", NULL);
		goto out;
	}
	t0 = now();
	if (ms_vfu_transition(as, MS_VFU_MIGR_STATE_STOP_AND_COPY) ||
	    ms_vfu_transition(ad, MS_VFU_MIGR_STATE_RESUME)) {
		vfu_failed("transition", as);
		goto out;
	}
	/* The client's loop, as QEMU's with a 64 KiB data area. */
	while (ms_vfu_v1_get_pending_bytes(as)) {
		if (ms_vfu_v1_prepare_data(as, &off, &size) ||
		    ms_vfu_v1_read_data(as, win, size, off) != (ssize_t)size) {
			vfu_failed("source", as);
			goto out;
		}
		if (ms_vfu_v1_prepare_data(ad, &doff, NULL) ||
		    ms_vfu_v1_write_data(ad, win, size, doff) !=
			    (ssize_t)size ||
		    ms_vfu_v1_data_written(ad, size)) {
			vfu_failed("destination", ad);
			goto out;
		}
	}
	if (ms_vfu_transition(ad, MS_VFU_MIGR_STATE_RUNNING)) {
		vfu_failed("finishing the load", ad);
		goto out;
	}
	*secs = since(t0);
	if (memcmp(b->dst, b->vsrc, b->cfg->vfu_bytes)) {
		fprintf(stderr, "migstream-bench: vfu-window-64k: the "
				"destination's state differs\n");
		goto out;
	}
	ret = 0;
out:
	ms_vfu_adapter_free(as);
	ms_vfu_adapter_free(ad);
	ms_registry_free(rs);
	ms_registry_free(rd);
	return ret;
}

const struct group bench_group_vfu_window_64k = {
	.vs = "memcpy",
	.unit = "bytes",
	.setup = vfu_setup,
	.teardown = vfu_teardown,
	.baseline = vfu_memcpy_run,
	.subj = {{"vfu-window-64k", vfu_run, METRIC_MBPS, 0.80, 0}},
	.nsubj = 1,
};

const struct group bench_group_vfu_window_64k_floor = {
	.vs = "memcpy-via-64k",
	.unit = "bytes",
	.setup = vfu_setup,
	.teardown = vfu_teardown,
	.baseline = vfu_window_copy_run,
	.subj = {{"vfu-window-64k-floor", vfu_run, METRIC_NONE, 0, 0}},
	.nsubj = 1,
};
