/* SPDX-License-Identifier: MIT */
/*
 * vfio-user-server: a vfio-user PCI device server built on libvfio-user,
 * whose migration state is served by migstream's vfio-user adapter.
 *
 * The device model is the one libvfio-user's samples/client expects of a
 * server, so that client can drive it: BAR0 is an 8-byte timer register
 * (write an absolute time_t: when it comes, the device raises INTx and
 * does a DMA test on the client's memory), BAR1 is 16 KiB of device
 * memory that the client's "guest" writes during pre-copy.  On top of
 * that the device has a state of --state-size bytes (default 1M): three
 * quarters iterative (saved in pre-copy rounds), one quarter
 * non-iterative (saved with BAR0 and BAR1 once the device is stopped),
 * filled with a deterministic pattern.  A destination clears its state
 * before loading, and once the load is complete checks it byte for byte
 * against the pattern: "vfio-user-server: state OK" or "... FAIL at
 * offset 0x...".
 *
 *   vfio-user-server [-v] [--api 1|2] [--state-size SIZE] SOCKET
 *
 * --api must be the API version of the <libvfio-user.h> it was built
 * against (VFU_MIGR_CALLBACKS_VERS: 1 up to the tree of October 2022, 2
 * after); that is its default.  SIZE takes a K, M or G suffix.
 *
 * The transitions go through the adapter's callback table
 * (MS_VFU_DEFINE_CALLBACKS_V1/V2); the device's own work is in the
 * adapter's hooks: pre_transition quiesces the timer when the device
 * stops, post_transition checks a loaded state and re-arms the timer
 * when the device runs again (after RESUME -> RUNNING, or a cancelled
 * save).  The adapter's failure messages go to libvfio-user's log
 * through the log callback: only errno crosses the socket.
 *
 * Built by 'make' when configure finds libvfio-user
 * (--with-libvfio-user[=DIR]).  By hand, against an installed library:
 *   cc vfio-user-server.c $(pkg-config --cflags --libs migstream) -lvfio-user
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <libvfio-user.h>

#include <migstream/migstream.h>

#define BAR1_SIZE  0x4000 /* a power of two, as newer libvfio-user needs */
#define ROUND	   (256u * 1024u) /* iterative bytes per pre-copy round */
#define CHUNK_END  UINT64_MAX	  /* ends a section's list of chunks */
#define DMA_SLOTS  64
#define DMA_TEST   4096	  /* bytes of the DMA test, one page */
#define PCI_VENDOR 0xdead /* the IDs samples/client checks */
#define PCI_DEVICE 0xbeef
#define PCI_SUBVEN 0xcafe
#define PCI_SUBSYS 0xbabe

struct dev {
	vfu_ctx_t *ctx;
	ms_vfu_adapter *adapter;
	int api;
	uint8_t *iter; /* iterative: saved in rounds during pre-copy */
	size_t iter_len;
	size_t cursor;	/* iterative bytes sent so far in this save */
	uint8_t *fixed; /* non-iterative: saved once the device stops */
	size_t fixed_len;
	time_t bar0; /* when the timer fires (absolute) */
	uint8_t bar1[BAR1_SIZE];
	bool loading; /* a load runs: check the state when it ends */
	struct iovec dma[DMA_SLOTS]; /* the client's DMA regions */
};

static volatile sig_atomic_t timer_fired;

static void on_alarm(int sig)
{
	(void)sig;
	timer_fired = 1;
}

/*
 * The state pattern: 8 bytes per 8-byte word of the state (iterative
 * part first), a function of the word's index only, so a destination can
 * recompute what it must have received.
 */
static uint64_t pattern(uint64_t word)
{
	uint64_t x = word + 0x9e3779b97f4a7c15ull;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void fill(uint8_t *p, size_t len, uint64_t base)
{
	uint64_t v;
	size_t i;

	for (i = 0; i < len; i += 8) {
		v = pattern((base + i) / 8);
		memcpy(p + i, &v, len - i < 8 ? len - i : 8);
	}
}

/* Return: the first offset (from @base) where @p differs, or SIZE_MAX. */
static size_t check(const uint8_t *p, size_t len, uint64_t base)
{
	uint8_t want[8];
	size_t i, j, n;
	uint64_t v;

	for (i = 0; i < len; i += 8) {
		v = pattern((base + i) / 8);
		memcpy(want, &v, 8);
		n = len - i < 8 ? len - i : 8;
		if (memcmp(p + i, want, n))
			for (j = 0; j < n; j++)
				if (p[i + j] != want[j])
					return i + j;
	}
	return SIZE_MAX;
}

static void device_check(struct dev *d)
{
	size_t off = check(d->iter, d->iter_len, 0);

	if (off == SIZE_MAX) {
		off = check(d->fixed, d->fixed_len, d->iter_len);
		if (off != SIZE_MAX)
			off += d->iter_len;
	}
	if (off == SIZE_MAX)
		printf("vfio-user-server: state OK, %zu bytes (%llu in the "
		       "stream)\n",
		       d->iter_len + d->fixed_len,
		       (unsigned long long)ms_vfu_bytes(d->adapter));
	else
		printf("vfio-user-server: state FAIL at offset 0x%zx\n", off);
	fflush(stdout);
}

/*
 * The timer: quiesced while the device is stopped, re-armed from BAR0
 * when it runs again.  A deadline already past fires in one second (the
 * client needs the time to map its DMA regions again after a migration).
 */
static int timer_arm(struct dev *d)
{
	struct itimerval t = {{0, 0}, {0, 0}};
	time_t now = time(NULL);

	if (!d->bar0)
		return 0;
	t.it_value.tv_sec = d->bar0 > now ? d->bar0 - now : 1;
	vfu_log(d->ctx, LOG_DEBUG, "timer fires in %lld s",
		(long long)t.it_value.tv_sec);
	return setitimer(ITIMER_REAL, &t, NULL) ? -errno : 0;
}

static void timer_quiesce(struct dev *d)
{
	struct itimerval t = {{0, 0}, {0, 0}};

	vfu_log(d->ctx, LOG_DEBUG, "timer quiesced");
	setitimer(ITIMER_REAL, &t, NULL);
}

/*
 * The adapter's hooks and log.
 */

static bool stopped(ms_vfu_migr_state s)
{
	return s == MS_VFU_MIGR_STATE_STOP_AND_COPY ||
	       s == MS_VFU_MIGR_STATE_STOP || s == MS_VFU_MIGR_STATE_RESUME;
}

static int pre_transition(void *opaque, ms_vfu_migr_state from,
			  ms_vfu_migr_state to)
{
	struct dev *d = opaque;

	if (stopped(to) && !stopped(from))
		timer_quiesce(d);
	if (to == MS_VFU_MIGR_STATE_RESUME && from != to) {
		/* What the destination checks must come through the stream. */
		memset(d->iter, 0, d->iter_len);
		memset(d->fixed, 0, d->fixed_len);
		memset(d->bar1, 0, sizeof(d->bar1));
		d->bar0 = 0;
		d->loading = true;
	}
	return 0;
}

static int post_transition(void *opaque, ms_vfu_migr_state from,
			   ms_vfu_migr_state to)
{
	struct dev *d = opaque;

	/* The load is complete at RESUME -> RUNNING (v1) or -> STOP (v2). */
	if (from == MS_VFU_MIGR_STATE_RESUME && to != from && d->loading) {
		d->loading = false;
		device_check(d);
	}
	return to == MS_VFU_MIGR_STATE_RUNNING && from != to ? timer_arm(d) : 0;
}

static void adapter_log(void *opaque, int err, const char *msg)
{
	struct dev *d = opaque;

	if (d->ctx)
		vfu_log(d->ctx, LOG_ERR, "migstream: %s: %s", strerror(err),
			msg);
	else
		fprintf(stderr, "migstream: %s: %s\n", strerror(err), msg);
}

/*
 * Section handlers: "mem" (the iterative part) and "regs" (BAR0, BAR1
 * and the non-iterative part).  Each sends chunks, be64 offset, be64
 * length and the bytes, ended by CHUNK_END.
 */

static int put_chunks(ms_stream *s, const uint8_t *p, size_t from, size_t to)
{
	size_t n;

	while (from < to) {
		n = to - from < ROUND ? to - from : ROUND;
		ms_put_be64(s, from);
		ms_put_be64(s, n);
		ms_put_buffer(s, p + from, n);
		from += n;
	}
	ms_put_be64(s, CHUNK_END);
	return ms_stream_error(s);
}

static int get_chunks(ms_stream *s, uint8_t *p, size_t len)
{
	uint64_t off, n;

	while (!ms_get_be64(s, &off) && off != CHUNK_END) {
		if (ms_get_be64(s, &n))
			break;
		if (off > len || n > len - off)
			return ms_stream_set_error(
				s, -EINVAL,
				"chunk 0x%llx+0x%llx: expected one within "
				"0x%zx bytes",
				(unsigned long long)off, (unsigned long long)n,
				len);
		ms_get_buffer(s, p + off, n);
	}
	return ms_stream_error(s);
}

static int mem_save_setup(void *opaque, ms_stream *s)
{
	struct dev *d = opaque;

	d->cursor = 0;
	return ms_put_be64(s, d->iter_len);
}

static int mem_save_iterate(void *opaque, ms_stream *s)
{
	struct dev *d = opaque;
	size_t to = d->iter_len - d->cursor < ROUND ? d->iter_len
						    : d->cursor + ROUND;
	int ret = put_chunks(s, d->iter, d->cursor, to);

	d->cursor = to;
	return ret ? ret : d->cursor < d->iter_len; /* 1: more to send */
}

static uint64_t mem_pending(void *opaque)
{
	struct dev *d = opaque;

	return d->iter_len - d->cursor;
}

static int mem_save_complete(void *opaque, ms_stream *s)
{
	struct dev *d = opaque;
	int ret = put_chunks(s, d->iter, d->cursor, d->iter_len);

	d->cursor = d->iter_len;
	return ret;
}

static int mem_load(void *opaque, ms_stream *s, uint32_t version_id,
		    uint8_t type)
{
	struct dev *d = opaque;
	uint64_t len;

	(void)version_id;
	if (type != MS_REC_START)
		return get_chunks(s, d->iter, d->iter_len);
	if (!ms_get_be64(s, &len) && len != d->iter_len)
		return ms_stream_set_error(
			s, -EINVAL, "%llu iterative bytes, expected %zu",
			(unsigned long long)len, d->iter_len);
	return ms_stream_error(s);
}

static int regs_save(void *opaque, ms_stream *s)
{
	struct dev *d = opaque;

	ms_put_be64(s, (uint64_t)d->bar0);
	ms_put_buffer(s, d->bar1, sizeof(d->bar1));
	ms_put_be64(s, d->fixed_len);
	return put_chunks(s, d->fixed, 0, d->fixed_len);
}

static int regs_load(void *opaque, ms_stream *s, uint32_t version_id,
		     uint8_t type)
{
	struct dev *d = opaque;
	uint64_t v;

	(void)version_id;
	(void)type;
	if (!ms_get_be64(s, &v))
		d->bar0 = (time_t)v;
	ms_get_buffer(s, d->bar1, sizeof(d->bar1));
	if (!ms_get_be64(s, &v) && v != d->fixed_len)
		return ms_stream_set_error(
			s, -EINVAL, "%llu non-iterative bytes, expected %zu",
			(unsigned long long)v, d->fixed_len);
	return ms_stream_error(s) ? ms_stream_error(s)
				  : get_chunks(s, d->fixed, d->fixed_len);
}

static const ms_handler_ops mem_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_setup = mem_save_setup,
	.save_iterate = mem_save_iterate,
	.pending = mem_pending,
	.save_complete = mem_save_complete,
	.load = mem_load,
};

static const ms_handler_ops regs_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_state = regs_save,
	.load = regs_load,
};

/*
 * libvfio-user's callbacks: the migration table comes from the adapter,
 * the regions and DMA are the device's.
 */

static ms_vfu_adapter *adapter_of(vfu_ctx_t *ctx)
{
	return ((struct dev *)vfu_get_private(ctx))->adapter;
}

#if VFU_MIGR_CALLBACKS_VERS == 1
MS_VFU_DEFINE_CALLBACKS_V1(migr_callbacks, adapter_of);
#else
MS_VFU_DEFINE_CALLBACKS_V2(migr_callbacks, adapter_of);
#endif

static ssize_t bar0_access(vfu_ctx_t *ctx, char *buf, size_t count,
			   loff_t offset, bool is_write)
{
	struct dev *d = vfu_get_private(ctx);
	time_t t;

	if (count != sizeof(t) || offset != 0) {
		vfu_log(ctx, LOG_ERR,
			"BAR0: %zu bytes at 0x%llx, expected %zu "
			"at 0",
			count, (unsigned long long)offset, sizeof(t));
		errno = EINVAL;
		return -1;
	}
	if (!is_write) {
		t = time(NULL) - d->bar0;
		memcpy(buf, &t, sizeof(t));
		return (ssize_t)count;
	}
	memcpy(&d->bar0, buf, sizeof(d->bar0));
	/* A stopped device keeps the deadline for when it runs again. */
	if (ms_vfu_state(d->adapter) == MS_VFU_MIGR_STATE_RUNNING &&
	    timer_arm(d)) {
		errno = EIO;
		return -1;
	}
	return (ssize_t)count;
}

static ssize_t bar1_access(vfu_ctx_t *ctx, char *buf, size_t count,
			   loff_t offset, bool is_write)
{
	struct dev *d = vfu_get_private(ctx);

	if (offset < 0 || (size_t)offset > BAR1_SIZE ||
	    count > BAR1_SIZE - (size_t)offset) {
		vfu_log(ctx, LOG_ERR, "BAR1: %zu bytes at 0x%llx, past 0x%x",
			count, (unsigned long long)offset, BAR1_SIZE);
		errno = EINVAL;
		return -1;
	}
	if (is_write)
		memcpy(d->bar1 + offset, buf, count);
	else
		memcpy(buf, d->bar1 + offset, count);
	return (ssize_t)count;
}

static void dma_register(vfu_ctx_t *ctx, vfu_dma_info_t *info)
{
	struct dev *d = vfu_get_private(ctx);
	size_t i;

	for (i = 0; i < DMA_SLOTS; i++)
		if (!d->dma[i].iov_len) {
			d->dma[i] = info->iova;
			return;
		}
	vfu_log(ctx, LOG_ERR, "more than %d DMA regions: one ignored",
		DMA_SLOTS);
}

static void dma_unregister(vfu_ctx_t *ctx, vfu_dma_info_t *info)
{
	struct dev *d = vfu_get_private(ctx);
	size_t i;

	for (i = 0; i < DMA_SLOTS; i++)
		if (d->dma[i].iov_base == info->iova.iov_base &&
		    d->dma[i].iov_len == info->iova.iov_len)
			d->dma[i].iov_len = 0;
}

static int device_reset(vfu_ctx_t *ctx, vfu_reset_type_t type)
{
	vfu_log(ctx, LOG_DEBUG, "reset (%d)", (int)type);
	return 0;
}

/* The first registered DMA region (the lowest slot), or NULL. */
static struct iovec *dma_slot(struct dev *d, int nth)
{
	int i;

	for (i = 0; i < DMA_SLOTS; i++)
		if (d->dma[i].iov_len && nth-- == 0)
			return &d->dma[i];
	return NULL;
}

/* A page written to the client's memory through messages and read back. */
static int dma_test_messages(struct dev *d, struct iovec *r)
{
	uint8_t out[DMA_TEST], in[DMA_TEST];
	dma_sg_t *sg = malloc(dma_sg_size());
	int ret = -1;

	memset(out, 'A', sizeof(out));
	if (sg && vfu_addr_to_sgl(d->ctx, r->iov_base, sizeof(out), sg, 1,
				  PROT_READ | PROT_WRITE) >= 0) {
#if VFU_MIGR_CALLBACKS_VERS == 1
		ret = vfu_sgl_write(d->ctx, sg, 1, out) ||
		      vfu_sgl_read(d->ctx, sg, 1, in);
#else
		ret = vfu_sgl_write(d->ctx, sg, 1, out, 0) ||
		      vfu_sgl_read(d->ctx, sg, 1, in, 0);
#endif
		ret = ret ? -1 : memcmp(in, out, sizeof(in)) ? -2 : 0;
	}
	free(sg);
	return ret;
}

#if VFU_MIGR_CALLBACKS_VERS != 1
/* A page written straight into the client's (mapped) memory: the server
 * marks it dirty itself. */
static int dma_test_direct(struct dev *d, struct iovec *r)
{
	dma_sg_t *sg = malloc(dma_sg_size());
	struct iovec iov = {0};
	int ret = -1;

	if (sg &&
	    vfu_addr_to_sgl(d->ctx, r->iov_base, DMA_TEST, sg, 1,
			    PROT_READ | PROT_WRITE) >= 0 &&
	    !vfu_sgl_get(d->ctx, sg, &iov, 1, 0)) {
		memset(iov.iov_base, 'B', iov.iov_len);
		vfu_sgl_mark_dirty(d->ctx, sg, 1);
		vfu_sgl_put(d->ctx, sg, &iov, 1);
		ret = 0;
	}
	free(sg);
	return ret;
}
#endif

/* The timer fired: INTx, then the DMA test on the client's memory (v2:
 * direct into its second region first, as samples/client checks). */
static void device_timer(struct dev *d)
{
	struct iovec *r0 = dma_slot(d, 0);
	int ret;

	if (vfu_irq_trigger(d->ctx, 0))
		vfu_log(d->ctx, LOG_ERR, "INTx: %s", strerror(errno));
	if (!r0) {
		vfu_log(d->ctx, LOG_ERR, "DMA test: no DMA region");
		return;
	}
	ret = 0;
#if VFU_MIGR_CALLBACKS_VERS != 1
	if (dma_slot(d, 1))
		ret = dma_test_direct(d, dma_slot(d, 1));
#endif
	if (!ret)
		ret = dma_test_messages(d, r0);
	vfu_log(d->ctx, ret ? LOG_ERR : LOG_DEBUG, "DMA test: %s",
		ret == -2 ? "read back differs"
		: ret	  ? "failed"
			  : "OK");
}

/*
 * Setup.
 */

static void vfu_log_stderr(vfu_ctx_t *ctx, int level, const char *msg)
{
	(void)ctx;
	(void)level;
	fprintf(stderr, "vfio-user-server[%d]: %s\n", (int)getpid(), msg);
}

static int device_regions(struct dev *d)
{
	if (vfu_setup_region(d->ctx, VFU_PCI_DEV_BAR0_REGION_IDX,
			     sizeof(time_t), bar0_access, VFU_REGION_FLAG_RW,
			     NULL, 0, -1, 0) ||
	    vfu_setup_region(d->ctx, VFU_PCI_DEV_BAR1_REGION_IDX, BAR1_SIZE,
			     bar1_access, VFU_REGION_FLAG_RW, NULL, 0, -1, 0))
		return -1;
#if VFU_MIGR_CALLBACKS_VERS == 1
	/*
	 * The v1 migration region: libvfio-user's register block, then the
	 * adapter's window.  Plain memory: no access callback, no mmap
	 * areas and no fd.  libvfio-user serves the register block itself
	 * and turns accesses to the data area into the adapter's callbacks
	 * (read_data, write_data); a mapped data area would bypass them.
	 */
	if (vfu_setup_region(d->ctx, VFU_PCI_DEV_MIGR_REGION_IDX,
			     vfu_get_migr_register_area_size() +
				     ms_vfu_window_size(d->adapter),
			     NULL, VFU_REGION_FLAG_RW, NULL, 0, -1, 0) ||
	    vfu_setup_device_migration_callbacks(
		    d->ctx, &migr_callbacks, vfu_get_migr_register_area_size()))
		return -1;
	return vfu_setup_device_dma(d->ctx, dma_register, dma_unregister);
#else
	/* v2 has no region: the callbacks are the whole migration. */
	if (vfu_setup_device_migration_callbacks(d->ctx, &migr_callbacks))
		return -1;
	return vfu_setup_device_dma(d->ctx, DMA_SLOTS, dma_register,
				    dma_unregister);
#endif
}

static int device_create(struct dev *d, const char *path, bool verbose)
{
	d->ctx = vfu_create_ctx(VFU_TRANS_SOCK, path, 0, d, VFU_DEV_TYPE_PCI);
	if (!d->ctx)
		return -1;
	if (vfu_setup_log(d->ctx, vfu_log_stderr,
			  verbose ? LOG_DEBUG : LOG_ERR) ||
	    vfu_pci_init(d->ctx, VFU_PCI_TYPE_CONVENTIONAL,
			 PCI_HEADER_TYPE_NORMAL, 0))
		return -1;
	vfu_pci_set_id(d->ctx, PCI_VENDOR, PCI_DEVICE, PCI_SUBVEN, PCI_SUBSYS);
	if (device_regions(d) ||
	    vfu_setup_device_reset_cb(d->ctx, device_reset) ||
	    vfu_setup_device_nr_irqs(d->ctx, VFU_DEV_INTX_IRQ, 1) ||
	    vfu_realize_ctx(d->ctx))
		return -1;
	return 0;
}

static int device_registry(struct dev *d, ms_registry **out)
{
	ms_registry *reg;
	int ret = ms_registry_new(&reg, NULL);

	if (ret)
		return ret;
	ret = ms_registry_add(reg, "mem", 0, 1, 1, &mem_ops, d, NULL);
	if (!ret)
		ret = ms_registry_add(reg, "regs", 0, 1, 1, &regs_ops, d, NULL);
	if (ret) {
		fprintf(stderr, "vfio-user-server: %s\n",
			ms_registry_errmsg(reg));
		ms_registry_free(reg);
		return ret;
	}
	*out = reg;
	return 0;
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	switch (*end) {
	case 'G':
		shift += 10; /* fall through */
	case 'M':
		shift += 10; /* fall through */
	case 'K':
		shift += 10;
		end++;
		break;
	default:
		break;
	}
	if (errno || end == s || *end || v == 0 || v > (SIZE_MAX >> 2) >> shift)
		return -1;
	*out = (size_t)v << shift;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vfio-user-server [-v] [--api 1|2] "
		   "[--state-size SIZE] SOCKET\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"api", required_argument, NULL, 'a'},
		{"state-size", required_argument, NULL, 's'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct sigaction sa;
	struct dev *d = calloc(1, sizeof(*d));
	ms_vfu_opts opts = {.version = MS_VFU_OPTS_VERSION};
	ms_registry *reg = NULL;
	size_t size = 1u << 20;
	bool verbose = false;
	int c, ret = 1;

	if (!d)
		return 1;
	d->api = VFU_MIGR_CALLBACKS_VERS;
	while ((c = getopt_long(argc, argv, "vh", lopts, NULL)) != -1) {
		switch (c) {
		case 'a':
			d->api = atoi(optarg);
			break;
		case 's':
			if (parse_size(optarg, &size)) {
				fprintf(stderr,
					"vfio-user-server: bad size "
					"'%s'\n",
					optarg);
				goto out;
			}
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout);
			ret = 0;
			goto out;
		default:
			usage(stderr);
			goto out;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		goto out;
	}
	if (d->api != VFU_MIGR_CALLBACKS_VERS) {
		fprintf(stderr,
			"vfio-user-server: --api %d, but built against "
			"libvfio-user API v%d\n",
			d->api, VFU_MIGR_CALLBACKS_VERS);
		goto out;
	}

	/* ¾ iterative, ¼ not. */
	d->fixed_len = size / 4;
	d->iter_len = size - d->fixed_len;
	d->iter = malloc(d->iter_len);
	d->fixed = malloc(d->fixed_len ? d->fixed_len : 1);
	if (!d->iter || !d->fixed)
		goto out;
	fill(d->iter, d->iter_len, 0);
	fill(d->fixed, d->fixed_len, d->iter_len);

	opts.api = d->api;
	opts.pre_transition = pre_transition;
	opts.post_transition = post_transition;
	opts.log = adapter_log;
	opts.opaque = d;
	if (device_registry(d, &reg) ||
	    ms_vfu_adapter_new(&d->adapter, reg, &opts)) {
		fprintf(stderr, "vfio-user-server: %s\n",
			reg ? ms_registry_errmsg(reg) : "no registry");
		goto out;
	}

	/* No SA_RESTART: the timer interrupts vfu_run_ctx() (EINTR). */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL))
		goto out;

	if (device_create(d, argv[optind], verbose)) {
		perror("vfio-user-server: libvfio-user setup");
		goto out;
	}
	printf("vfio-user-server: API v%d, %zu bytes of state (%zu "
	       "iterative), window %zu, on %s\n",
	       d->api, size, d->iter_len, ms_vfu_window_size(d->adapter),
	       argv[optind]);
	fflush(stdout);
	if (vfu_attach_ctx(d->ctx)) {
		perror("vfio-user-server: vfu_attach_ctx");
		goto out;
	}
	for (;;) {
		c = vfu_run_ctx(d->ctx);
		if (c >= 0)
			continue;
		if (errno != EINTR)
			break;
		if (timer_fired) {
			timer_fired = 0;
			device_timer(d);
		}
	}
	/* The client went away: the normal end. */
	ret = errno == ENOTCONN || errno == ESHUTDOWN ? 0 : 1;
	if (ret)
		perror("vfio-user-server: vfu_run_ctx");
out:
	if (d->ctx)
		vfu_destroy_ctx(d->ctx);
	ms_vfu_adapter_free(d->adapter);
	ms_registry_free(reg);
	free(d->iter);
	free(d->fixed);
	free(d);
	return ret;
}
