/* SPDX-License-Identifier: MIT */
/*
 * The vfio-user adapter, driven through emulations of libvfio-user v1 and
 * v2 and QEMU-like clients (vfu-client.h): the transition tables (direct
 * and through the libraries), the v1 register block, round trips of many
 * sizes and windows, bounded memory, one regression test per pitfall of
 * a naive adapter (the guarantees listed at the top of src/vfio-user.c),
 * bad input on the destination, the QEMU
 * profile, libvfio-user's transport cutting a body over the socket buffer
 * short, the hooks failing at every edge of both matrices, the final state
 * taken at the transition, the log, max_fed_bytes, the generated callback
 * tables (against mock/libvfio-user.h) and two adapters on two threads.
 *
 * Set MS_VFU_VERBOSE=1 to print the large round trips' timings.
 */
#include "config.h"

#include <pthread.h>
#include <time.h>

#include "internal.h"
#include "ms-test.h"
#include "vfu-client.h"

#define KiB (1024u)
#define MiB (1024u * 1024u)

/*
 * The test device: an iterative RAM (pages sent in precopy rounds, some
 * rewritten by the "guest" during precopy and sent again) and two
 * non-iterative parts (registers with a subsection holding a blob of any
 * size, and a timer), like check_driver.c's vm.
 */
#define NREGS	  16
#define SEC_RAM	  0
#define SEC_REGS  1
#define SEC_TIMER 2
#define SEC_EXTRA 3

struct dev_cfg {
	size_t ram; /* bytes, a multiple of @page */
	size_t page;
	unsigned per_round;
	size_t blob;
};

struct dev {
	uint8_t *ram;
	bool *dirty;
	size_t ndirty;
	size_t npages;
	size_t page;
	unsigned per_round;
	unsigned iterations; /* save_iterate calls of this save */
	unsigned redirty_at; /* the iteration in which the guest writes */
	uint64_t regs[NREGS];
	uint8_t *blob;
	size_t blob_len;
	uint64_t timer;
	uint32_t extra;
	/* Observation and faults. */
	ms_vfu_adapter *a; /* the adapter saving it, for phase checks */
	unsigned saves_full;
	unsigned saves_early; /* save_state before STOP_AND_COPY */
	unsigned loads[4];
	unsigned cleanups;
	int fail_setup; /* an errno for save_setup to fail with */
	int fail_state; /* an errno for the registers' save_state */
	int fail_load;	/* section id whose load fails with -EIO, or -1 */
};

static void fill(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t st = seed * 0x9e3779b97f4a7c15ull + 1;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		uint64_t v = vfu_rand(&st);

		memcpy(p + i, &v, 8);
	}
	for (; i < len; i++)
		p[i] = (uint8_t)vfu_rand(&st);
}

static void dev_alloc(struct dev *d, const struct dev_cfg *c)
{
	memset(d, 0, sizeof(*d));
	d->page = c->page ? c->page : 256;
	d->npages = c->ram / d->page;
	d->per_round = c->per_round ? c->per_round : 4;
	d->ram = malloc(d->npages * d->page + 1);
	d->dirty = calloc(d->npages + 1, sizeof(bool));
	ck_assert_ptr_nonnull(d->ram);
	ck_assert_ptr_nonnull(d->dirty);
	d->redirty_at = 2;
	d->fail_load = -1;
}

/* The source: every eighth page zero, the rest pseudo-random. */
static void dev_init_src(struct dev *d, const struct dev_cfg *c, uint64_t seed)
{
	size_t i;

	dev_alloc(d, c);
	for (i = 0; i < d->npages; i++) {
		if (i % 8 == 7)
			memset(d->ram + i * d->page, 0, d->page);
		else
			fill(d->ram + i * d->page, d->page, seed * 1000003 + i);
	}
	for (i = 0; i < NREGS; i++)
		d->regs[i] = seed << 32 | (uint64_t)i * 0x1111;
	d->blob_len = c->blob;
	d->blob = malloc(c->blob + 1);
	ck_assert_ptr_nonnull(d->blob);
	fill(d->blob, c->blob, seed + 77);
	d->timer = 0x1122334455667788ull ^ seed;
	d->extra = 0xabcd;
}

/* The destination: nothing of the source's state. */
static void dev_init_dst(struct dev *d, const struct dev_cfg *c)
{
	dev_alloc(d, c);
	memset(d->ram, 0xee, d->npages * d->page);
}

static void dev_free(struct dev *d)
{
	free(d->ram);
	free(d->dirty);
	free(d->blob);
	memset(d, 0, sizeof(*d));
}

static bool dev_equal(const struct dev *a, const struct dev *b)
{
	return a->npages == b->npages && a->page == b->page &&
	       !memcmp(a->ram, b->ram, a->npages * a->page) &&
	       !memcmp(a->regs, b->regs, sizeof(a->regs)) &&
	       a->blob_len == b->blob_len &&
	       (!a->blob_len || !memcmp(a->blob, b->blob, a->blob_len)) &&
	       a->timer == b->timer;
}

static bool page_is_zero(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static int ram_setup(void *opaque, ms_stream *s)
{
	struct dev *d = opaque;
	size_t i;

	if (d->fail_setup)
		return -d->fail_setup;
	/* Dirty tracking starts: all of RAM is to be sent. */
	for (i = 0; i < d->npages; i++)
		d->dirty[i] = true;
	d->ndirty = d->npages;
	d->iterations = 0;
	ms_put_be64(s, d->npages);
	return ms_put_be32(s, (uint32_t)d->page);
}

static int ram_send(ms_stream *s, struct dev *d, size_t max)
{
	size_t i, sent = 0;

	for (i = 0; i < d->npages && sent < max; i++) {
		const uint8_t *p = d->ram + i * d->page;

		if (!d->dirty[i])
			continue;
		d->dirty[i] = false;
		d->ndirty--;
		sent++;
		if (page_is_zero(p, d->page)) {
			ms_put_be32(s, (uint32_t)i << 8 | MS_QEMU_RAM_ZERO);
		} else {
			ms_put_be32(s, (uint32_t)i << 8 | MS_QEMU_RAM_PAGE);
			ms_put_buffer(s, p, d->page);
		}
	}
	ms_put_be32(s, MS_QEMU_RAM_EOS);
	return ms_stream_error(s);
}

static uint64_t ram_pending(void *opaque)
{
	struct dev *d = opaque;

	return (uint64_t)d->ndirty * d->page;
}

static void guest_write(struct dev *d, size_t page, size_t at, uint8_t x)
{
	d->ram[page * d->page + at] ^= x;
	if (!d->dirty[page]) {
		d->dirty[page] = true;
		d->ndirty++;
	}
}

static int ram_iterate(void *opaque, ms_stream *s)
{
	struct dev *d = opaque;
	int ret;

	/* The guest rewrites pages that were sent in the first round. */
	if (++d->iterations == d->redirty_at && d->npages) {
		guest_write(d, 0, 3, 0x5a);
		guest_write(d, d->npages / 2, 1, 0xa5);
	}
	ret = ram_send(s, d, d->per_round);
	return ret ? ret : ram_pending(d) > 0;
}

static int ram_complete(void *opaque, ms_stream *s)
{
	return ram_send(s, opaque, SIZE_MAX);
}

static void ram_cleanup(void *opaque)
{
	((struct dev *)opaque)->cleanups++;
}

static int ram_load(void *opaque, ms_stream *s, uint32_t version, uint8_t type)
{
	struct dev *d = opaque;
	uint64_t npages;
	uint32_t w, page;

	(void)version;
	d->loads[SEC_RAM]++;
	if (d->fail_load == SEC_RAM)
		return -EIO;
	if (type == MS_REC_START) {
		ms_get_be64(s, &npages);
		ms_get_be32(s, &page);
		if (!ms_stream_error(s) &&
		    (npages != d->npages || page != d->page))
			return ms_stream_set_error(
				s, -EINVAL, "RAM of %llu pages of %u",
				(unsigned long long)npages, page);
		return ms_stream_error(s);
	}
	for (;;) {
		uint32_t idx;

		if (ms_get_be32(s, &w))
			return ms_stream_error(s);
		if (w == MS_QEMU_RAM_EOS)
			return 0;
		idx = w >> 8;
		if (idx >= d->npages)
			return ms_stream_set_error(s, -EINVAL, "page %u", idx);
		if ((w & 0xff) == MS_QEMU_RAM_ZERO)
			memset(d->ram + (size_t)idx * d->page, 0, d->page);
		else if ((w & 0xff) == MS_QEMU_RAM_PAGE)
			ms_get_buffer(s, d->ram + (size_t)idx * d->page,
				      d->page);
		else
			return ms_stream_set_error(s, -EINVAL, "flags 0x%x",
						   w & 0xff);
	}
}

static int regs_save(void *opaque, ms_stream *s)
{
	struct dev *d = opaque;

	d->saves_full++;
	if (d->a && ms_vfu_state(d->a) != MS_VFU_MIGR_STATE_STOP_AND_COPY)
		d->saves_early++;
	if (d->fail_state)
		return -d->fail_state;
	ms_put_be64_array(s, d->regs, NREGS);
	if (d->blob_len) {
		ms_put_subsection(s, "regs/blob", 1);
		ms_put_be32(s, (uint32_t)d->blob_len);
		ms_put_buffer(s, d->blob, d->blob_len);
	}
	return ms_stream_error(s);
}

static int regs_load(void *opaque, ms_stream *s, uint32_t version, uint8_t type)
{
	struct dev *d = opaque;
	char name[MS_COUNTED_STRING_MAX + 1];
	uint32_t sv, len;
	int ret;

	(void)version;
	(void)type;
	d->loads[SEC_REGS]++;
	if (d->fail_load == SEC_REGS)
		return -EIO;
	ms_get_be64_array(s, d->regs, NREGS);
	free(d->blob);
	d->blob = NULL;
	d->blob_len = 0;
	while ((ret = ms_get_subsection(s, "regs", name, &sv)) == 1) {
		if (strcmp(name, "regs/blob") || sv != 1)
			return ms_stream_set_error(
				s, -ENOENT, "unknown subsection %s", name);
		if (ms_get_be32(s, &len))
			return ms_stream_error(s);
		if (len > 64 * MiB)
			return ms_stream_set_error(s, -EINVAL, "blob of %u",
						   len);
		free(d->blob);
		d->blob = malloc(len + 1);
		if (!d->blob)
			return -ENOMEM;
		ms_get_buffer(s, d->blob, len);
		d->blob_len = len;
	}
	return ret < 0 ? ret : ms_stream_error(s);
}

static int timer_save(void *opaque, ms_stream *s)
{
	return ms_put_be64(s, ((struct dev *)opaque)->timer);
}

static int timer_load(void *opaque, ms_stream *s, uint32_t version,
		      uint8_t type)
{
	struct dev *d = opaque;

	(void)version;
	(void)type;
	d->loads[SEC_TIMER]++;
	if (d->fail_load == SEC_TIMER)
		return -EIO;
	ms_get_be64(s, &d->timer);
	return ms_stream_error(s);
}

static int extra_save(void *opaque, ms_stream *s)
{
	return ms_put_be32(s, ((struct dev *)opaque)->extra);
}

static int extra_load(void *opaque, ms_stream *s, uint32_t version,
		      uint8_t type)
{
	struct dev *d = opaque;

	(void)version;
	(void)type;
	d->loads[SEC_EXTRA]++;
	return ms_get_be32(s, &d->extra);
}

static const ms_handler_ops ram_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_setup = ram_setup,
	.save_iterate = ram_iterate,
	.pending = ram_pending,
	.save_complete = ram_complete,
	.load = ram_load,
	.save_cleanup = ram_cleanup,
};

static const ms_handler_ops regs_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_state = regs_save,
	.load = regs_load,
};

static const ms_handler_ops timer_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_state = timer_save,
	.load = timer_load,
};

static const ms_handler_ops extra_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_state = extra_save,
	.load = extra_load,
};

/* "ram", "regs" at @regs_version (minimum 1), "timer", and with @extra a
 * device only the source has. */
static ms_registry *dev_registry(struct dev *d, uint32_t regs_version,
				 bool extra, const ms_allocator *al)
{
	ms_registry *reg;

	uint32_t id;

	ck_assert_int_eq(ms_registry_new(&reg, al), 0);
	ck_assert_int_eq(ms_registry_add(reg, "ram", 0, 1, 1, &ram_ops, d, &id),
			 0);
	ck_assert_uint_eq(id, SEC_RAM);
	ck_assert_int_eq(ms_registry_add(reg, "regs", 0, regs_version, 1,
					 &regs_ops, d, &id),
			 0);
	ck_assert_uint_eq(id, SEC_REGS);
	ck_assert_int_eq(
		ms_registry_add(reg, "timer", 0, 1, 1, &timer_ops, d, &id), 0);
	ck_assert_uint_eq(id, SEC_TIMER);
	if (extra) {
		ck_assert_int_eq(ms_registry_add(reg, "extra", 0, 1, 1,
						 &extra_ops, d, &id),
				 0);
		ck_assert_uint_eq(id, SEC_EXTRA);
	}
	return reg;
}

static ms_codec_opts native_codec(ms_profile p, const ms_allocator *al)
{
	ms_codec_opts c;

	memset(&c, 0, sizeof(c));
	c.version = MS_CODEC_OPTS_VERSION;
	c.profile = p ? p : MS_PROFILE_NATIVE;
	c.allocator = al;
	return c;
}

/*
 * Adapter settings; the codec's are kept in @c (which must last until
 * ms_vfu_adapter_new() has copied them), or are the defaults (NULL, the
 * native profile with CRC) when @c is NULL, which needs !@p and !@al.
 */
static ms_vfu_opts vfu_opts(int api, size_t window, ms_profile p,
			    const ms_allocator *al, ms_codec_opts *c)
{
	ms_vfu_opts o;

	memset(&o, 0, sizeof(o));
	o.version = MS_VFU_OPTS_VERSION;
	o.api = api;
	o.window = window;
	ck_assert(c || (!p && !al));
	if (c) {
		*c = native_codec(p, al);
		o.codec = c;
	}
	return o;
}

/* The stream of @d saved by the driver directly, as the adapter produces
 * it (setup, every precopy round, then stop-and-copy); @d changes as in a
 * migration (the guest's writes during precopy). */
static uint8_t *dev_save(struct dev *d, ms_profile p, size_t *len)
{
	ms_registry *reg;
	ms_codec_opts c = native_codec(p, NULL);
	ms_save_opts so;
	ms_stream *s;
	ms_save *sv;
	const uint8_t *data;
	uint8_t *copy;
	int ret;

	reg = dev_registry(d, 2, false, NULL);
	memset(&so, 0, sizeof(so));
	so.version = MS_SAVE_OPTS_VERSION;
	so.codec = &c;
	ck_assert_int_eq(ms_stream_new_mem(&s, 0, NULL), 0);
	ck_assert_int_eq(ms_save_new(&sv, reg, s, &so), 0);
	ck_assert_int_eq(ms_save_setup(sv), 0);
	while ((ret = ms_save_iterate(sv)) == 1)
		;
	ck_assert_int_eq(ret, 0);
	ck_assert_int_eq(ms_save_complete(sv), 0);
	ms_save_free(sv);
	ms_stream_mem_view(s, &data, len);
	copy = malloc(*len + 1);
	memcpy(copy, data, *len);
	ms_stream_close(s);
	ms_registry_free(reg);
	return copy;
}

/* The stream of a source made from @c and @seed. */
static uint8_t *dev_stream(const struct dev_cfg *c, uint64_t seed, ms_profile p,
			   size_t *len)
{
	struct dev d;
	uint8_t *stream;

	dev_init_src(&d, c, seed);
	stream = dev_save(&d, p, len);
	dev_free(&d);
	return stream;
}

/* Sizes the blob so that the stream is exactly @target bytes long. */
static void calibrate(struct dev_cfg *c, size_t target)
{
	size_t len;
	int k;

	c->blob = 0;
	for (k = 0; k < 16; k++) {
		free(dev_stream(c, 1, MS_PROFILE_NATIVE, &len));
		if (len == target)
			return;
		ck_assert_uint_lt(len, target + c->blob + 1);
		c->blob = c->blob + target - len;
	}
	ck_abort_msg("cannot size a stream of %zu bytes", target);
}

/*
 * An allocator that tracks the bytes live and their peak (a size header
 * before every block).
 */
struct peak {
	ms_allocator a;
	size_t cur;
	size_t peak;
	long live;
};

#define PEAK_HDR 16

static void *peak_malloc(void *opaque, size_t size)
{
	struct peak *p = opaque;
	uint8_t *b = malloc(size + PEAK_HDR);

	if (!b)
		return NULL;
	memcpy(b, &size, sizeof(size));
	p->cur += size;
	if (p->cur > p->peak)
		p->peak = p->cur;
	p->live++;
	return b + PEAK_HDR;
}

static void *peak_realloc(void *opaque, void *ptr, size_t size)
{
	struct peak *p = opaque;
	uint8_t *b, *nb;
	size_t old;

	if (!ptr)
		return peak_malloc(opaque, size);
	b = (uint8_t *)ptr - PEAK_HDR;
	memcpy(&old, b, sizeof(old));
	nb = realloc(b, size + PEAK_HDR);
	if (!nb)
		return NULL;
	memcpy(nb, &size, sizeof(size));
	p->cur = p->cur - old + size;
	if (p->cur > p->peak)
		p->peak = p->cur;
	return nb + PEAK_HDR;
}

static void peak_free(void *opaque, void *ptr)
{
	struct peak *p = opaque;
	uint8_t *b;
	size_t old;

	if (!ptr)
		return;
	b = (uint8_t *)ptr - PEAK_HDR;
	memcpy(&old, b, sizeof(old));
	p->cur -= old;
	p->live--;
	free(b);
}

static void peak_init(struct peak *p)
{
	memset(p, 0, sizeof(*p));
	p->a.malloc = peak_malloc;
	p->a.realloc = peak_realloc;
	p->a.free = peak_free;
	p->a.opaque = p;
}

/*
 * One migration: a destination adapter resuming, a source adapter saved
 * by the QEMU-like client, each chunk handed to the destination as it is
 * read (memory stays O(window)), then RESUME -> RUNNING.
 */
struct mig {
	int api;
	size_t window;	   /* v1: the source's window; v2: the read size */
	size_t dst_window; /* v1: the destination's window, 0 for @window */
	size_t read_size;  /* v2: bytes per read, 0 for @window */
	ms_profile profile;
	enum vfu_pattern rpat, wpat;
	size_t rpiece, wpiece;
	unsigned max_precopy;
	const ms_allocator *src_alloc, *dst_alloc;
	/* Faults injected between the two sides. */
	int64_t flip_at; /* stream offset of a byte to corrupt, or -1 */
	int64_t cut_at;	 /* stream bytes from here are dropped, or -1 */
	bool keep_going; /* feed the destination after it failed */
	size_t sockbuf;	 /* v1: the socket's (vfu-client.h), 0: whole */
	bool v2_sockbuf; /* v2 too (vfu2_init() reads bodies whole) */
	/* Results: 0 or a negative errno. */
	int save_ret;
	int load_ret;
	int done_ret;
	char errmsg[1024]; /* the destination adapter's message */
	uint64_t src_bytes, dst_bytes, moved;
	uint64_t max_chunk, chunks, dst_rounds;
	unsigned long short_reads; /* v1: destination requests cut short */
	uint64_t held_max;	   /* v1: the most the source held */
	bool held_bad;
	uint8_t head[4]; /* the stream's first bytes (its magic) */
	unsigned precopy;
	double seconds;
	/* Internal. */
	struct dev *src;
	struct vfu1_dev *d1;
	struct vfu2_dev *d2;
	struct vfu_client_opts *dst;
	uint64_t off;
};

static void mig_init(struct mig *m, int api, size_t window)
{
	memset(m, 0, sizeof(*m));
	m->api = api;
	m->window = window;
	m->profile = MS_PROFILE_NATIVE;
	m->rpat = VFU_PAT_QEMU8;
	m->wpat = VFU_PAT_QEMU8;
	m->flip_at = -1;
	m->cut_at = -1;
	m->sockbuf = VFU_SOCKBUF_DEFAULT;
}

/* A window larger than the default needs a libvfio-user that reads
 * message bodies whole, when the client writes the window whole. */
static void mig_whole_bodies(struct mig *m)
{
	if ((m->dst_window ? m->dst_window : m->window) > MS_VFU_DEFAULT_WINDOW)
		m->sockbuf = 0;
}

static int pipe_sink(const void *buf, size_t len, void *opaque)
{
	struct mig *m = opaque;
	const uint8_t *data = buf;
	uint8_t *copy = NULL;
	uint64_t start = m->off;
	int ret;

	if (start < sizeof(m->head))
		memcpy(m->head + start, buf,
		       len < sizeof(m->head) - start ? len
						     : sizeof(m->head) - start);
	m->off += len;
	if (m->flip_at >= 0 && (uint64_t)m->flip_at >= start &&
	    (uint64_t)m->flip_at < start + len) {
		copy = malloc(len);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, buf, len);
		copy[m->flip_at - (int64_t)start] ^= 0x10;
		data = copy;
	}
	if (m->cut_at >= 0 && start + len > (uint64_t)m->cut_at)
		len = start >= (uint64_t)m->cut_at
			      ? 0
			      : (size_t)((uint64_t)m->cut_at - start);
	if (len && (!m->load_ret || m->keep_going)) {
		if (m->d1)
			ret = vfu1_qemu_load_chunk(m->d1, m->dst, data, len);
		else
			ret = vfu2_qemu_load_chunk(m->d2, m->dst, data, len);
		if (ret && !m->load_ret)
			m->load_ret = ret;
	}
	free(copy);
	return m->load_ret && !m->keep_going ? m->load_ret : 0;
}

/* v1: what the source adapter holds is its pending bytes less the RAM's
 * own estimate, which the adapter adds while the save is not complete. */
static void track_held(uint64_t pending, void *opaque)
{
	struct mig *m = opaque;
	uint64_t ram = ram_pending(m->src);

	if (!pending || m->src->fail_state)
		return;
	if (pending < ram) {
		m->held_bad = true;
		return;
	}
	if (pending - ram > m->held_max)
		m->held_max = pending - ram;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Returns 0 once both adapters were created (results in @m), or the
 * creation error. */
static int migrate(struct mig *m, ms_registry *sreg, struct dev *src,
		   ms_registry *dreg)
{
	ms_codec_opts sco, dco;
	ms_vfu_opts so =
		vfu_opts(m->api, m->window, m->profile, m->src_alloc, &sco);
	ms_vfu_opts dopt =
		vfu_opts(m->api, m->dst_window ? m->dst_window : m->window,
			 m->profile, m->dst_alloc, &dco);
	struct vfu_client_opts sc, dc;
	struct vfu1_dev s1, d1;
	struct vfu2_dev s2, d2;
	ms_vfu_adapter *sa, *da;
	double t0 = now();
	int ret;

	ret = ms_vfu_adapter_new(&sa, sreg, &so);
	if (ret)
		return ret;
	ret = ms_vfu_adapter_new(&da, dreg, &dopt);
	if (ret) {
		ms_vfu_adapter_free(sa);
		return ret;
	}
	memset(&sc, 0, sizeof(sc));
	sc.pattern = m->rpat;
	sc.piece = m->rpiece;
	sc.seed = 1;
	sc.max_precopy = m->max_precopy;
	sc.sink = pipe_sink;
	sc.opaque = m;
	memset(&dc, 0, sizeof(dc));
	dc.pattern = m->wpat;
	dc.piece = m->wpiece;
	dc.seed = 2;
	m->src = src;
	m->dst = &dc;
	m->off = 0;
	src->a = sa;
	if (m->api == MS_VFU_MIGR_CALLBACKS_V1) {
		sc.after_pending = track_held;
		vfu1_init(&s1, sa);
		vfu1_init(&d1, da);
		s1.tr.sockbuf = d1.tr.sockbuf = m->sockbuf;
		m->d1 = &d1;
		m->d2 = NULL;
		m->load_ret = vfu1_qemu_load_setup(&d1);
		if (!m->load_ret)
			m->save_ret = vfu1_qemu_save(&s1, &sc);
		m->done_ret = vfu1_qemu_load_done(&d1);
		m->short_reads = d1.tr.short_reads;
	} else {
		vfu2_init(&s2, sa);
		vfu2_init(&d2, da);
		if (m->v2_sockbuf)
			d2.tr.sockbuf = m->sockbuf;
		m->d1 = NULL;
		m->d2 = &d2;
		m->load_ret = vfu2_qemu_load_setup(&d2);
		if (!m->load_ret)
			m->save_ret = vfu2_qemu_save(&s2, &sc,
						     m->read_size ? m->read_size
								  : m->window);
		m->done_ret = vfu2_qemu_load_done(&d2);
		m->short_reads = d2.tr.short_reads;
	}
	m->seconds = now() - t0;
	snprintf(m->errmsg, sizeof(m->errmsg), "%s", ms_vfu_errmsg(da));
	m->src_bytes = ms_vfu_bytes(sa);
	m->dst_bytes = ms_vfu_bytes(da);
	m->moved = sc.bytes;
	m->max_chunk = sc.max_size;
	m->chunks = sc.chunks;
	m->precopy = sc.precopy;
	m->dst_rounds = dc.chunks;
	src->a = NULL;
	ms_vfu_adapter_free(sa);
	ms_vfu_adapter_free(da);
	return 0;
}

/* A whole round trip that must succeed, checked byte for byte. */
static void roundtrip(struct mig *m, const struct dev_cfg *c, uint64_t seed)
{
	struct dev src, dst;
	ms_registry *sreg, *dreg;

	dev_init_src(&src, c, seed);
	dev_init_dst(&dst, c);
	sreg = dev_registry(&src, 2, false, m->src_alloc);
	dreg = dev_registry(&dst, 2, false, m->dst_alloc);
	ck_assert_int_eq(migrate(m, sreg, &src, dreg), 0);
	ck_assert_msg(!m->save_ret && !m->load_ret && !m->done_ret,
		      "api %d window %zu: save %d load %d done %d: %s", m->api,
		      m->window, m->save_ret, m->load_ret, m->done_ret,
		      m->errmsg);
	ck_assert_msg(dev_equal(&src, &dst), "api %d window %zu: state differs",
		      m->api, m->window);
	ck_assert_uint_eq(m->src_bytes, m->moved);
	ck_assert_uint_eq(m->dst_bytes, m->moved);
	/* Device state proper is saved once, at stop-and-copy. */
	ck_assert_uint_eq(src.saves_full, 1);
	ck_assert_uint_eq(src.saves_early, 0);
	ck_assert_uint_eq(src.cleanups, 1);
	ck_assert(!m->held_bad);
	ms_registry_free(sreg);
	ms_registry_free(dreg);
	dev_free(&src);
	dev_free(&dst);
}

static const size_t windows[] = {4 * KiB, MS_VFU_DEFAULT_WINDOW, 1 * MiB};

/*
 * Transition tables.
 */

#define ST_STOP MS_VFU_MIGR_STATE_STOP
#define ST_RUN	MS_VFU_MIGR_STATE_RUNNING
#define ST_SAC	MS_VFU_MIGR_STATE_STOP_AND_COPY
#define ST_PRE	MS_VFU_MIGR_STATE_PRE_COPY
#define ST_RES	MS_VFU_MIGR_STATE_RESUME

static const struct dev_cfg small_cfg = {4 * 256, 256, 2, 100};

/* Writes a whole stream into a resuming adapter, as its API does. */
static void write_stream(ms_vfu_adapter *a, int api, const uint8_t *d,
			 size_t len)
{
	size_t w = ms_vfu_window_size(a), off = 0, n;
	uint64_t o;

	if (api == MS_VFU_MIGR_CALLBACKS_V2) {
		ck_assert_int_eq(ms_vfu_v2_write_data(a, d, len), (ssize_t)len);
		return;
	}
	while (off < len) {
		n = len - off < w ? len - off : w;
		ck_assert_int_eq(ms_vfu_v1_prepare_data(a, &o, NULL), 0);
		ck_assert_int_eq(ms_vfu_v1_write_data(a, d + off, n, o),
				 (ssize_t)n);
		ck_assert_int_eq(ms_vfu_v1_data_written(a, n), 0);
		off += n;
	}
}

/* Brings a new adapter to @st by a legal path; RESUME with a complete
 * stream written, so that leaving it succeeds. */
static void drive_to(ms_vfu_adapter *a, int api, ms_vfu_migr_state st,
		     const uint8_t *stream, size_t len)
{
	bool v2 = api == MS_VFU_MIGR_CALLBACKS_V2;

	switch (st) {
	case ST_RUN:
		break;
	case ST_STOP:
	case ST_PRE:
		ck_assert_int_eq(ms_vfu_transition(a, st), 0);
		break;
	case ST_SAC:
	case ST_RES:
		if (v2)
			ck_assert_int_eq(ms_vfu_transition(a, ST_STOP), 0);
		ck_assert_int_eq(ms_vfu_transition(a, st), 0);
		if (st == ST_RES)
			write_stream(a, api, stream, len);
		break;
	}
	ck_assert_int_eq(ms_vfu_state(a), st);
}

/*
 * The adapter's documented tables, from (row) to (column), in the order
 * STOP, RUNNING, STOP_AND_COPY, PRE_COPY, RESUME.  v1 is libvfio-user's
 * migr_states[] (pre-copy -> running allowed); v2 its direct arcs.  The
 * same state again is accepted by the adapter (QEMU writes stop-and-copy
 * twice), even pre-copy, which libvfio-user v1 itself refuses.
 */
static const char *const v1_table[5] = {"YY---", "YYYYY", "YYY--", "YYYY-",
					"-Y--Y"};
static const char *const v2_table[5] = {"YYY-Y", "YY-Y-", "Y-Y--", "-YYY-",
					"Y---Y"};

static void direct_matrix(int api)
{
	const char *const *table = api == 1 ? v1_table : v2_table;
	struct dev src, dst;
	ms_registry *reg;
	uint8_t *stream;
	size_t len;
	int from, to;

	dev_init_src(&src, &small_cfg, 3);
	dev_init_dst(&dst, &small_cfg);
	stream = dev_stream(&small_cfg, 3, MS_PROFILE_NATIVE, &len);
	reg = dev_registry(&dst, 2, false, NULL);
	for (from = 0; from < 5; from++) {
		for (to = 0; to < 8; to++) {
			ms_vfu_opts o = vfu_opts(api, 0, 0, NULL, NULL);
			ms_vfu_adapter *a;
			bool ok = to < 5 && table[from][to] == 'Y';
			int ret;

			ck_assert_int_eq(ms_vfu_adapter_new(&a, reg, &o), 0);
			drive_to(a, api, (ms_vfu_migr_state)from, stream, len);
			errno = 0;
			ret = ms_vfu_transition(a, (ms_vfu_migr_state)to);
			if (ok) {
				ck_assert_msg(ret == 0, "v%d %d->%d: %s", api,
					      from, to, ms_vfu_errmsg(a));
				ck_assert_int_eq(ms_vfu_state(a), to);
			} else {
				ck_assert_msg(ret == -1 && errno == EINVAL,
					      "v%d %d->%d: %d errno %d", api,
					      from, to, ret, errno);
				ck_assert_int_eq(ms_vfu_state(a), from);
				ck_assert_str_ne(ms_vfu_errmsg(a), "");
			}
			ms_vfu_adapter_free(a);
		}
	}
	ms_registry_free(reg);
	free(stream);
	dev_free(&src);
	dev_free(&dst);
}

START_TEST(test_vfio_user_v1_matrix)
{
	direct_matrix(MS_VFU_MIGR_CALLBACKS_V1);
}
END_TEST

START_TEST(test_vfio_user_v2_matrix)
{
	direct_matrix(MS_VFU_MIGR_CALLBACKS_V2);
}
END_TEST

/* Writes a stream through the emulated v1 region, as QEMU's load does. */
static void v1_region_write_stream(struct vfu1_dev *d, const uint8_t *data,
				   size_t len)
{
	struct vfu_client_opts o;

	memset(&o, 0, sizeof(o));
	o.pattern = VFU_PAT_QEMU8;
	ck_assert_int_eq(vfu1_qemu_load_chunk(d, &o, data, len), 0);
}

/*
 * Every device_state write from every reachable state through the
 * emulated libvfio-user v1: the library's table decides whether the
 * adapter is called at all; the error state (110b) reaches it as -1.
 */
START_TEST(test_vfio_user_v1_library_matrix)
{
	static const uint32_t froms[] = {0, 1, 2, 3, 4};
	struct dev dst;
	ms_registry *reg;
	uint8_t *stream;
	size_t len, i;
	uint32_t to;

	dev_init_dst(&dst, &small_cfg);
	stream = dev_stream(&small_cfg, 3, MS_PROFILE_NATIVE, &len);
	reg = dev_registry(&dst, 2, false, NULL);
	for (i = 0; i < sizeof(froms) / sizeof(froms[0]); i++) {
		for (to = 0; to <= 8; to++) {
			ms_vfu_opts o = vfu_opts(1, 0, 0, NULL, NULL);
			ms_vfu_adapter *a;
			struct vfu1_dev d;
			unsigned long calls;
			bool valid = vfu1_arc_valid(froms[i], to);
			int ret;

			ck_assert_int_eq(ms_vfu_adapter_new(&a, reg, &o), 0);
			vfu1_init(&d, a);
			if (froms[i] != VFU1_RUNNING)
				ck_assert_int_eq(vfu1_set_state(&d, froms[i]),
						 0);
			if (froms[i] == VFU1_RESUMING)
				v1_region_write_stream(&d, stream, len);
			calls = d.n.transition;
			errno = 0;
			ret = vfu1_set_state(&d, to);
			if (valid && to != 6) {
				ck_assert_msg(ret == 0, "%u->%u: %s", froms[i],
					      to, ms_vfu_errmsg(a));
				ck_assert_uint_eq(d.device_state, to);
				ck_assert_int_eq(ms_vfu_state(a),
						 vfu1_to_vfu(to));
			} else {
				ck_assert_msg(ret == -1 && errno == EINVAL,
					      "%u->%u: %d %d", froms[i], to,
					      ret, errno);
				ck_assert_uint_eq(d.device_state, froms[i]);
				ck_assert_int_eq(ms_vfu_state(a),
						 vfu1_to_vfu(froms[i]));
			}
			/* The adapter sees only what the table allows. */
			ck_assert_uint_eq(d.n.transition - calls, valid);
			ms_vfu_adapter_free(a);
		}
	}
	/* The table itself, as libvfio-user's unit test asserts it. */
	ck_assert(vfu1_arc_valid(3, 1));
	ck_assert(!vfu1_arc_valid(3, 3));
	ck_assert(vfu1_arc_valid(2, 2));
	ck_assert(!vfu1_arc_valid(4, 0));
	for (to = 0; to < 8; to++)
		ck_assert(!vfu1_arc_valid(5, to) && !vfu1_arc_valid(6, to) &&
			  !vfu1_arc_valid(7, to));
	ms_registry_free(reg);
	free(stream);
	dev_free(&dst);
}
END_TEST

/*
 * libvfio-user v2's paths (the hops its transition callback is given for
 * each pair of vfio-user states): S stop, R running, C stop-copy,
 * M resuming, P pre-copy; "!" is EINVAL without any call.  Rows and
 * columns are vfio-user states 0 to 8.
 */
static const char *const v2_paths[8][9] = {
	[VFU2_STOP] = {"!", "", "R", "C", "M", "!", "RP", "!", "!"},
	[VFU2_RUNNING] = {"!", "S", "", "SC", "SM", "!", "P", "!", "!"},
	[VFU2_STOP_COPY] = {"!", "S", "SR", "", "SM", "!", "!", "!", "!"},
	[VFU2_RESUMING] = {"!", "S", "SR", "SC", "", "!", "SRP", "!", "!"},
	[VFU2_PRE_COPY] = {"!", "RS", "R", "C", "RSM", "!", "", "!", "!"},
};

static char hop_letter(ms_vfu_migr_state s)
{
	return "SRCPM"[s];
}

START_TEST(test_vfio_user_v2_library_paths)
{
	static const unsigned froms[] = {VFU2_STOP, VFU2_RUNNING,
					 VFU2_STOP_COPY, VFU2_RESUMING,
					 VFU2_PRE_COPY};
	struct dev dst;
	ms_registry *reg;
	uint8_t *stream;
	size_t len, i;
	unsigned to;

	dev_init_dst(&dst, &small_cfg);
	stream = dev_stream(&small_cfg, 3, MS_PROFILE_NATIVE, &len);
	reg = dev_registry(&dst, 2, false, NULL);
	for (i = 0; i < sizeof(froms) / sizeof(froms[0]); i++) {
		for (to = 0; to <= 8; to++) {
			const char *want = v2_paths[froms[i]][to];
			ms_vfu_opts o = vfu_opts(2, 0, 0, NULL, NULL);
			ms_vfu_adapter *a;
			struct vfu2_dev d;
			char got[9];
			int ret, k;

			ck_assert_int_eq(ms_vfu_adapter_new(&a, reg, &o), 0);
			vfu2_init(&d, a);
			ck_assert_int_eq(vfu2_set_state(&d, froms[i]), 0);
			if (froms[i] == VFU2_RESUMING)
				ck_assert_int_eq(
					vfu2_data_write(&d, stream, len), 0);
			errno = 0;
			ret = vfu2_set_state(&d, to);
			for (k = 0; k < d.nhops; k++)
				got[k] = hop_letter(d.hops[k]);
			got[k] = '\0';
			if (want[0] == '!') {
				ck_assert_msg(ret == -1 && errno == EINVAL,
					      "%u->%u", froms[i], to);
				ck_assert_int_eq(d.nhops, 0);
				ck_assert_uint_eq(d.state, froms[i]);
			} else {
				ck_assert_msg(ret == 0, "%u->%u: %s", froms[i],
					      to, ms_vfu_errmsg(a));
				ck_assert_str_eq(got, want);
				ck_assert_uint_eq(d.state, to);
				ck_assert_int_eq(ms_vfu_state(a),
						 vfu2_to_vfu(to));
			}
			ms_vfu_adapter_free(a);
		}
	}
	ms_registry_free(reg);
	free(stream);
	dev_free(&dst);
}
END_TEST

/*
 * The v1 register block: exact widths and offsets (EINVAL without any
 * callback), dead space, the region's end, read-only registers, and the
 * iteration FSM (cached pending, once-per-iteration prepare_data, the
 * FINISHED latch, reset on every device_state write).
 */
START_TEST(test_vfio_user_v1_register_access)
{
	struct dev src;
	ms_registry *reg;
	ms_vfu_opts o = vfu_opts(1, 4 * KiB, 0, NULL, NULL);
	ms_vfu_adapter *a;
	struct vfu1_dev d;
	struct vfu_calls before;
	uint8_t buf[64];
	uint64_t v, p, off, size;
	uint32_t st = VFU1_RUNNING;

	dev_init_src(&src, &(struct dev_cfg){64 * 256, 256, 4, 3000}, 5);
	reg = dev_registry(&src, 2, false, NULL);
	ck_assert_int_eq(ms_vfu_adapter_new(&a, reg, &o), 0);
	vfu1_init(&d, a);
	ck_assert_uint_eq(d.region_size, VFU1_DATA_OFFSET + 4 * KiB);
	ck_assert_int_eq(ms_vfu_state(a), ST_RUN); /* as libvfio-user's */

	before = d.n;
	memset(buf, 0, sizeof(buf));
	/* Wrong widths. */
	ck_assert_int_eq(vfu1_access(&d, &st, 3, 0, true), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(vfu1_access(&d, buf, 8, 0, true), -1);
	ck_assert_int_eq(vfu1_access(&d, buf, 2, 0, false), -1);
	ck_assert_int_eq(vfu1_access(&d, buf, 4, VFU1_REG_PENDING, false), -1);
	ck_assert_int_eq(vfu1_access(&d, buf, 16, VFU1_REG_DATA_OFFSET, false),
			 -1);
	ck_assert_int_eq(vfu1_access(&d, buf, 1, VFU1_REG_DATA_SIZE, false),
			 -1);
	/* Wrong offsets: reserved, unaligned, across the end. */
	ck_assert_int_eq(vfu1_access(&d, buf, 4, 4, false), -1);
	ck_assert_int_eq(vfu1_access(&d, buf, 4, 12, false), -1);
	ck_assert_int_eq(vfu1_access(&d, buf, 8, 9, false), -1);
	ck_assert_int_eq(vfu1_access(&d, buf, 16, 24, false), -1);
	/* Dead space between the registers and the data. */
	ck_assert_int_eq(vfu1_access(&d, buf, 8, 32, false), -1);
	ck_assert_int_eq(vfu1_access(&d, buf, 1, VFU1_DATA_OFFSET - 1, false),
			 -1);
	ck_assert_int_eq(vfu1_access(&d, buf, 2, VFU1_DATA_OFFSET - 1, true),
			 -1);
	/* Past the region, or more than one transfer. */
	ck_assert_int_eq(vfu1_access(&d, buf, 8, d.region_size - 4, false), -1);
	ck_assert_int_eq(vfu1_access(&d, buf, VFU1_MAX_XFER + 1,
				     VFU1_DATA_OFFSET, false),
			 -1);
	/* Registers of a state without data. */
	ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_DATA_OFFSET, &v), -1);
	ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_DATA_SIZE, &v), -1);
	ck_assert_int_eq(vfu1_write_u64(&d, VFU1_REG_PENDING, 1), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert(!memcmp(&before, &d.n, sizeof(before)));
	/* Data accesses outside saving and resuming reach read_data, which
	 * refuses them. */
	ck_assert_int_eq(vfu1_access(&d, buf, 8, VFU1_DATA_OFFSET, false), -1);
	ck_assert_int_eq(d.n.read, 1);
	/* pending_bytes is not state-checked: the adapter says 0, and the
	 * library latches it. */
	ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_PENDING, &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_PENDING, &v), 0);
	ck_assert_uint_eq(d.n.pending, 1);

	/* Pre-copy: the FSM restarts. */
	ck_assert_int_eq(vfu1_set_state(&d, VFU1_RUNNING | VFU1_SAVING), 0);
	ck_assert_int_eq(vfu1_access(&d, &st, 4, 0, false), 4);
	ck_assert_uint_eq(st, 3);
	ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_DATA_OFFSET, &v), -1);
	ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_DATA_SIZE, &v), -1);
	ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_PENDING, &p), 0);
	ck_assert_uint_gt(p, 0);
	ck_assert_uint_eq(d.n.pending, 2);
	/* STARTED: cached, no callback. */
	ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_PENDING, &v), 0);
	ck_assert_uint_eq(v, p);
	ck_assert_uint_eq(d.n.pending, 2);
	/* data_size before data_offset: the stale size, no prepare_data. */
	ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_DATA_SIZE, &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_uint_eq(d.n.prepare, 0);
	/* data_offset: prepare_data once per iteration. */
	ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_DATA_OFFSET, &off), 0);
	ck_assert_uint_eq(off, VFU1_DATA_OFFSET);
	ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_DATA_OFFSET, &v), 0);
	ck_assert_uint_eq(v, off);
	ck_assert_uint_eq(d.n.prepare, 1);
	ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_DATA_SIZE, &size), 0);
	ck_assert_uint_gt(size, 0);
	ck_assert_uint_le(size, 4 * KiB);
	/* Read-only while saving. */
	before = d.n;
	ck_assert_int_eq(vfu1_write_u64(&d, VFU1_REG_DATA_OFFSET, 0), -1);
	ck_assert_int_eq(vfu1_write_u64(&d, VFU1_REG_DATA_SIZE, 0), -1);
	ck_assert(!memcmp(&before, &d.n, sizeof(before)));
	/* The data, at the advertised offset. */
	ck_assert_int_eq(vfu1_access(&d, buf, 8, off, false), 8);
	ck_assert_uint_eq(d.n.read, 2);
	/* Next iteration: pending reaches the adapter again. */
	ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_PENDING, &v), 0);
	ck_assert_uint_eq(d.n.pending, 3);
	/* A device_state write resets the FSM: data_offset is out of
	 * sequence again.  Stop-and-copy twice reaches the adapter twice. */
	ck_assert_int_eq(vfu1_set_state(&d, VFU1_SAVING), 0);
	ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_DATA_OFFSET, &v), -1);
	ck_assert_int_eq(vfu1_set_state(&d, VFU1_SAVING), 0);
	ck_assert_uint_eq(d.n.transition, 3);
	ck_assert_int_eq(ms_vfu_state(a), ST_SAC);
	/* Drain; then FINISHED latches 0 without callbacks. */
	for (;;) {
		uint8_t *w;

		ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_PENDING, &p), 0);
		if (!p)
			break;
		ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_DATA_OFFSET, &off),
				 0);
		ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_DATA_SIZE, &size),
				 0);
		w = malloc(size);
		ck_assert_int_eq(vfu1_access(&d, w, size, off, false),
				 (ssize_t)size);
		free(w);
	}
	before = d.n;
	ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_PENDING, &p), 0);
	ck_assert_uint_eq(p, 0);
	ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_DATA_OFFSET, &v), -1);
	ck_assert(!memcmp(&before, &d.n, sizeof(before)));
	/* Even polled directly, a finished save does not re-arm (a naive
	 * adapter starts over). */
	ck_assert_uint_eq(ms_vfu_v1_get_pending_bytes(a), 0);
	ck_assert_uint_eq(ms_vfu_v1_get_pending_bytes(a), 0);
	ck_assert_int_eq(vfu1_set_state(&d, VFU1_STOP), 0);
	ms_vfu_adapter_free(a);
	ms_registry_free(reg);
	dev_free(&src);
}
END_TEST

/*
 * Round trips.
 */

/* Index: api (2) x window (3) x size (4): no device state, one byte,
 * a stream of exactly one window, and one byte more. */
START_TEST(test_vfio_user_roundtrip)
{
	int api = _i % 2 + 1;
	size_t w = windows[(_i / 2) % 3];
	int kind = _i / 6;
	struct dev_cfg c = {0, 256, 4, 0};
	struct mig m;

	if (kind == 1)
		c.blob = 1;
	if (kind >= 2) {
		c.ram = w / 2 / 256 * 256;
		c.per_round = (unsigned)(c.ram / 256 / 8 + 1);
		calibrate(&c, w + (kind == 3));
	}
	mig_init(&m, api, w);
	/* A 1 MiB window read 8 bytes at a time is slow and says nothing
	 * new; QEMU reads it whole when the area is mmapped. */
	if (w == 1 * MiB)
		m.rpat = m.wpat = VFU_PAT_WHOLE;
	mig_whole_bodies(&m);
	roundtrip(&m, &c, 1);
	if (kind >= 2)
		ck_assert_uint_eq(m.moved, w + (kind == 3));
	ck_assert_uint_le(m.max_chunk, w);
	if (api == 1 && kind == 3)
		ck_assert_uint_ge(m.chunks, 2);
}
END_TEST

static bool under_valgrind(void)
{
	return getenv("MS_UNDER_VALGRIND") != NULL;
}

/*
 * 100 MiB of device state through every window and both APIs (under 2 s
 * for the six natively, about 4 s with ASan).  Under valgrind
 * (MS_UNDER_VALGRIND set) the state is scaled down to 4 MiB.  The source
 * holds at most a window and a section, the destination's allocations stay
 * within a few sections: both far below the state.  The data area is read
 * and written whole, as QEMU does when it is mmapped; the 8-byte accesses
 * are covered by the smaller round trips.
 */
START_TEST(test_vfio_user_roundtrip_large)
{
	int api = _i % 2 + 1;
	size_t w = windows[_i / 2];
	size_t state = under_valgrind() ? 4 * MiB : 100 * MiB;
	struct dev_cfg c = {state, 4096, 256, 64 * KiB};
	size_t section = (size_t)c.per_round * (c.page + 4) + 4 * KiB;
	struct peak sp, dp;
	struct mig m;

	peak_init(&sp);
	peak_init(&dp);
	mig_init(&m, api, w);
	m.rpat = m.wpat = VFU_PAT_WHOLE;
	m.src_alloc = &sp.a;
	m.dst_alloc = &dp.a;
	mig_whole_bodies(&m);
	roundtrip(&m, &c, 11);
	ck_assert_uint_gt(m.moved, state / 8 * 7); /* 1 page in 8 is zero */
	ck_assert_uint_ge(m.precopy, 2);
	if (api == 1)
		ck_assert_uint_le(m.held_max, w + section);
	ck_assert_msg(dp.peak <= 4 * (w + section), "destination peak %zu",
		      dp.peak);
	ck_assert_int_eq(sp.live, 0);
	ck_assert_int_eq(dp.live, 0);
	if (getenv("MS_VFU_VERBOSE"))
		fprintf(stderr,
			"v%d window %7zu: %llu bytes in %.2f s, source held "
			"<= %llu (v1 only), destination peak %zu\n",
			api, w, (unsigned long long)m.moved, m.seconds,
			(unsigned long long)m.held_max, dp.peak);
}
END_TEST

/*
 * Access patterns: arbitrary sub-ranges read in any order and re-read
 * (a naive adapter decrements pending per read), pieces written
 * backwards or scattered, destination windows smaller and larger than the
 * source's, a 16-byte window, v2 reads of one byte.
 */
START_TEST(test_vfio_user_patterns)
{
	static const struct {
		int api;
		size_t w, dst_w;
		enum vfu_pattern r, wr;
		size_t rpiece, wpiece;
	} cases[] = {
		{1, 64 * KiB, 0, VFU_PAT_SCATTER, VFU_PAT_SCATTER, 0, 0},
		{1, 64 * KiB, 4 * KiB + 24, VFU_PAT_REVERSE, VFU_PAT_REVERSE,
		 1000, 333},
		{1, 4 * KiB, 1 * MiB, VFU_PAT_PIECES, VFU_PAT_PIECES, 3, 4096},
		{1, 16, 16, VFU_PAT_QEMU8, VFU_PAT_QEMU8, 0, 0},
		{1, 1 * MiB, 17, VFU_PAT_WHOLE, VFU_PAT_QEMU8, 0, 0},
		{2, 4 * KiB, 0, VFU_PAT_QEMU8, VFU_PAT_PIECES, 0, 7},
		{2, 0, 0, VFU_PAT_QEMU8, VFU_PAT_WHOLE, 0, 0},
	};
	struct dev_cfg c = {256 * 256, 256, 16, 20000};
	struct mig m;

	mig_init(&m, cases[_i].api, cases[_i].w);
	m.dst_window = cases[_i].dst_w;
	m.rpat = cases[_i].r;
	m.wpat = cases[_i].wr;
	m.rpiece = cases[_i].rpiece;
	m.wpiece = cases[_i].wpiece;
	if (!m.window) { /* v2, one byte per read */
		m.read_size = 1;
		c.ram = 16 * 256;
		c.blob = 100;
	}
	mig_whole_bodies(&m);
	roundtrip(&m, &c, 2 + (uint64_t)_i);
	if (cases[_i].dst_w && cases[_i].dst_w < cases[_i].w)
		ck_assert_uint_gt(m.dst_rounds, m.chunks);
}
END_TEST

/*
 * Memory stays bounded: the adapter allocates through the codec's
 * allocator; its output buffer is libc's, so on the source the bytes held
 * are deduced from pending_bytes (held + the RAM's estimate).  The
 * destination's load allocates through the registry's allocator.  With
 * 16 MiB of state (4 MiB under valgrind) both stay within a window and a
 * few sections.
 */
START_TEST(test_vfio_user_memory_bounded)
{
	int api = _i % 2 + 1;
	size_t w = _i / 2 ? 1 * MiB : 4 * KiB;
	size_t state = under_valgrind() ? 4 * MiB : 16 * MiB;
	struct dev_cfg c = {state, 4096, 32, 8 * KiB};
	size_t section = (size_t)c.per_round * (c.page + 4) + c.blob + 4 * KiB;
	struct peak sp, dp;
	struct mig m;

	peak_init(&sp);
	peak_init(&dp);
	mig_init(&m, api, w);
	m.rpat = m.wpat = VFU_PAT_WHOLE;
	m.src_alloc = &sp.a;
	m.dst_alloc = &dp.a;
	mig_whole_bodies(&m);
	roundtrip(&m, &c, 12);
	if (api == 1) {
		ck_assert_uint_gt(m.held_max, 0);
		ck_assert_msg(m.held_max < w + section, "held %llu",
			      (unsigned long long)m.held_max);
	}
	ck_assert_uint_le(m.max_chunk, w);
	ck_assert_msg(dp.peak < 4 * (w + section), "destination peak %zu",
		      dp.peak);
	ck_assert_uint_lt(sp.peak, 4 * (w + section));
	ck_assert_int_eq(sp.live, 0);
	ck_assert_int_eq(dp.live, 0);
}
END_TEST

/* The QEMU profile (QEVM stream, no checksums) through v1 and v2. */
START_TEST(test_vfio_user_qemu_profile)
{
	struct dev_cfg c = {512 * 256, 256, 32, 5000};
	struct mig m;

	mig_init(&m, _i % 2 + 1, _i / 2 ? 4 * KiB : 64 * KiB);
	m.profile = MS_PROFILE_QEMU;
	roundtrip(&m, &c, 21);
	/* QEMU's grammar went through the window, not the native one. */
	ck_assert_uint_eq(((uint32_t)m.head[0] << 24) |
				  ((uint32_t)m.head[1] << 16) |
				  ((uint32_t)m.head[2] << 8) | m.head[3],
			  MS_QEMU_MAGIC);
}
END_TEST

/*
 * The pitfalls of a naive adapter, one test each: what src/vfio-user.c's
 * header comment promises.
 */

/* Reads past the end of what prepare_data offered fail with
 * EINVAL and copy nothing, directly and through the region. */
START_TEST(test_vfio_user_read_past_window)
{
	struct dev src;
	ms_registry *reg;
	ms_vfu_opts o = vfu_opts(1, 64 * KiB, 0, NULL, NULL);
	ms_vfu_adapter *a;
	struct vfu1_dev d;
	uint8_t buf[64], sentinel[64];
	uint64_t p, off, size;

	dev_init_src(&src, &small_cfg, 4);
	reg = dev_registry(&src, 2, false, NULL);
	ck_assert_int_eq(ms_vfu_adapter_new(&a, reg, &o), 0);
	memset(sentinel, 0x77, sizeof(sentinel));
	memcpy(buf, sentinel, sizeof(buf));
	/* Nothing offered yet. */
	ck_assert_int_eq(ms_vfu_v1_read_data(a, buf, 1, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	vfu1_init(&d, a);
	ck_assert_int_eq(vfu1_set_state(&d, VFU1_RUNNING | VFU1_SAVING), 0);
	ck_assert_int_eq(ms_vfu_v1_read_data(a, buf, 1, 0), -1);
	ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_PENDING, &p), 0);
	ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_DATA_OFFSET, &off), 0);
	ck_assert_int_eq(vfu1_read_u64(&d, VFU1_REG_DATA_SIZE, &size), 0);
	ck_assert_uint_gt(size, 8);
	ck_assert_uint_lt(size, 64 * KiB); /* the region goes further */

	ck_assert_int_eq(ms_vfu_v1_read_data(a, buf, 8, size - 4), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(ms_vfu_v1_read_data(a, buf, 1, size), -1);
	ck_assert_int_eq(ms_vfu_v1_read_data(a, buf, size + 1, 0), -1);
	ck_assert_int_eq(ms_vfu_v1_read_data(a, buf, UINT64_MAX, 1), -1);
	ck_assert_int_eq(ms_vfu_v1_read_data(a, buf, 1, UINT64_MAX), -1);
	ck_assert_int_eq(ms_vfu_v1_read_data(a, buf, 2, UINT64_MAX - 1), -1);
	ck_assert(!memcmp(buf, sentinel, sizeof(buf)));
	ck_assert_ptr_nonnull(strstr(ms_vfu_errmsg(a), "outside"));
	/* Through the region: inside it, past the data. */
	ck_assert_int_eq(vfu1_access(&d, buf, 8, off + size - 4, false), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert(!memcmp(buf, sentinel, sizeof(buf)));
	/* The last bytes offered are readable, and again. */
	ck_assert_int_eq(vfu1_access(&d, buf, 4, off + size - 4, false), 4);
	ck_assert_int_eq(ms_vfu_v1_read_data(a, buf + 8, 4, size - 4), 4);
	ck_assert(!memcmp(buf, buf + 8, 4));
	ck_assert_int_eq(ms_vfu_v1_read_data(a, buf, 0, size), 0);
	ms_vfu_adapter_free(a);
	ms_registry_free(reg);
	dev_free(&src);
}
END_TEST

/* Freeing an adapter mid-save or mid-load frees everything once
 * (ASan and valgrind watch), and the device can migrate again. */
START_TEST(test_vfio_user_free_midway)
{
	int api = _i + 1;
	struct dev_cfg c = {256 * 256, 256, 8, 3000};
	struct dev src, dst;
	ms_registry *sreg, *dreg;
	struct peak pk;
	ms_codec_opts co;
	ms_vfu_opts o;
	ms_vfu_adapter *a;
	uint8_t *stream, buf[4096];
	size_t len;
	uint64_t off, size;
	struct mig m;
	long base;

	peak_init(&pk);
	o = vfu_opts(api, 4 * KiB, 0, &pk.a, &co);
	dev_init_src(&src, &c, 31);
	dev_init_dst(&dst, &c);
	sreg = dev_registry(&src, 2, false, &pk.a);
	dreg = dev_registry(&dst, 2, false, &pk.a);
	base = pk.live;

	/* Mid-save: in pre-copy with a window offered, and in
	 * stop-and-copy partway through. */
	ck_assert_int_eq(ms_vfu_adapter_new(&a, sreg, &o), 0);
	ck_assert_int_eq(ms_vfu_transition(a, ST_PRE), 0);
	if (api == 1) {
		ck_assert_uint_gt(ms_vfu_v1_get_pending_bytes(a), 0);
		ck_assert_int_eq(ms_vfu_v1_prepare_data(a, &off, &size), 0);
		ck_assert_int_eq(ms_vfu_v1_read_data(a, buf, size, off),
				 (ssize_t)size);
	} else {
		ck_assert_int_eq(ms_vfu_v2_read_data(a, buf, sizeof(buf)),
				 (ssize_t)sizeof(buf));
	}
	ms_vfu_adapter_free(a);
	ck_assert_uint_eq(src.cleanups, 1);

	ck_assert_int_eq(ms_vfu_adapter_new(&a, sreg, &o), 0);
	if (api == 2)
		ck_assert_int_eq(ms_vfu_transition(a, ST_STOP), 0);
	ck_assert_int_eq(ms_vfu_transition(a, ST_SAC), 0);
	if (api == 1) {
		ck_assert_uint_gt(ms_vfu_v1_get_pending_bytes(a), 0);
		ck_assert_int_eq(ms_vfu_v1_prepare_data(a, &off, &size), 0);
	} else {
		ck_assert_int_gt(ms_vfu_v2_read_data(a, buf, sizeof(buf)), 0);
	}
	ms_vfu_adapter_free(a);
	ck_assert_uint_eq(src.cleanups, 2);

	/* Mid-load: half the stream written. */
	stream = dev_stream(&c, 31, MS_PROFILE_NATIVE, &len);
	ck_assert_int_eq(ms_vfu_adapter_new(&a, dreg, &o), 0);
	if (api == 2)
		ck_assert_int_eq(ms_vfu_transition(a, ST_STOP), 0);
	ck_assert_int_eq(ms_vfu_transition(a, ST_RES), 0);
	write_stream(a, api, stream, len / 2);
	if (api == 1) { /* and a round written, not committed */
		ck_assert_int_eq(ms_vfu_v1_prepare_data(a, &off, NULL), 0);
		ck_assert_int_eq(ms_vfu_v1_write_data(a, stream, 100, off),
				 100);
	}
	ms_vfu_adapter_free(a);
	free(stream);
	ck_assert_int_eq(pk.live, base);

	/* Then whole migrations work, twice on the same devices. */
	src.cleanups = 0;
	mig_init(&m, api, 4 * KiB);
	ck_assert_int_eq(migrate(&m, sreg, &src, dreg), 0);
	ck_assert_msg(!m.save_ret && !m.load_ret && !m.done_ret, "%s",
		      m.errmsg);
	ck_assert(dev_equal(&src, &dst));
	mig_init(&m, api, 4 * KiB);
	ck_assert_int_eq(migrate(&m, sreg, &src, dreg), 0);
	ck_assert_msg(!m.save_ret && !m.load_ret && !m.done_ret, "%s",
		      m.errmsg);
	ck_assert(dev_equal(&src, &dst));
	ck_assert_uint_eq(src.cleanups, 2);
	ck_assert_int_eq(pk.live, base);
	ms_registry_free(sreg);
	ms_registry_free(dreg);
	ck_assert_int_eq(pk.live, 0);
	dev_free(&src);
	dev_free(&dst);
}
END_TEST

/*
 * A load error ends the load.  A byte corrupted in the middle of
 * the stream, in RAM's precopy data, and all the rest still written: no
 * later section's handler runs, every later round fails with the same
 * error, and RESUME -> RUNNING returns -1 with it; the message names the
 * offset and the section.  Native: any byte (the checksum catches it).
 * QEMU profile, which has no checksum: page 21's flags byte becomes 0x18.
 */
START_TEST(test_vfio_user_load_stops_at_error)
{
	int api = _i % 2 + 1;
	bool qemu = _i / 2;
	ms_profile prof = qemu ? MS_PROFILE_QEMU : MS_PROFILE_NATIVE;
	static const uint8_t page21[4] = {0, 0, 21, MS_QEMU_RAM_PAGE};
	struct dev_cfg c = {64 * 256, 256, 8, 3000};
	struct dev src, dst;
	ms_registry *sreg, *dreg;
	uint8_t *stream;
	size_t len, i;
	struct mig m;

	stream = dev_stream(&c, 41, prof, &len);
	dev_init_src(&src, &c, 41);
	dev_init_dst(&dst, &c);
	sreg = dev_registry(&src, 2, false, NULL);
	dreg = dev_registry(&dst, 2, false, NULL);
	mig_init(&m, api, 4 * KiB);
	m.profile = prof;
	m.keep_going = true;
	m.flip_at = (int64_t)len / 3;
	if (qemu) {
		for (i = 0; i + 4 <= len; i++)
			if (!memcmp(stream + i, page21, 4))
				break;
		ck_assert_uint_lt(i, len / 2);
		m.flip_at = (int64_t)i + 3;
	}
	ck_assert_int_eq(migrate(&m, sreg, &src, dreg), 0);
	ck_assert_int_eq(m.save_ret, 0);
	ck_assert_int_lt(m.load_ret, 0);
	ck_assert_int_eq(m.done_ret, m.load_ret);
	if (qemu) {
		ck_assert_int_eq(m.done_ret, -EINVAL);
		ck_assert_ptr_nonnull(strstr(m.errmsg, "flags 0x18"));
	} else {
		ck_assert_msg(m.done_ret == -EILSEQ || m.done_ret == -EBADMSG,
			      "%d: %s", m.done_ret, m.errmsg);
	}
	ck_assert_ptr_nonnull(strstr(m.errmsg, "offset 0x"));
	ck_assert_ptr_nonnull(strstr(m.errmsg, "'ram'"));
	/* Nothing after RAM was loaded. */
	ck_assert_uint_eq(dst.loads[SEC_REGS], 0);
	ck_assert_uint_eq(dst.loads[SEC_TIMER], 0);
	ms_registry_free(sreg);
	ms_registry_free(dreg);
	free(stream);
	dev_free(&src);
	dev_free(&dst);
}
END_TEST

/* A state far larger than the window moves through it: every
 * offered size fits the window, QEMU's reads stay in the region (it
 * would fail with ENOMEM otherwise), and the state arrives whole. */
START_TEST(test_vfio_user_state_larger_than_window)
{
	struct dev_cfg c = {2 * MiB, 4096, 16, 100 * KiB};
	struct mig m;

	mig_init(&m, 1, 4 * KiB);
	roundtrip(&m, &c, 51);
	ck_assert_uint_le(m.max_chunk, 4 * KiB);
	ck_assert_uint_ge(m.chunks, m.moved / (4 * KiB));
	ck_assert_uint_gt(m.moved, 2 * MiB / 8 * 7 + 100 * KiB);
}
END_TEST

/*
 * libvfio-user's transport (vfu-client.h): a request body larger than
 * the socket buffer arrives short and the session desyncs.  A v1 client
 * that writes the destination's 64 KiB window in one request fails on the
 * first round (EINVAL, and EPROTO from then on, the adapter never called
 * again); the default 32 KiB window fits and the state arrives whole, as
 * a 64 KiB window does through a transport that reads bodies whole.  v2:
 * the client's write size decides.  Index: 64 KiB, the default, 64 KiB
 * with whole bodies; v2 with 64 KiB and 32 KiB writes.
 */
START_TEST(test_vfio_user_socket_buffer)
{
	static const struct {
		int api;
		size_t window, sockbuf;
		bool fails;
	} cases[] = {
		{1, 64 * KiB, VFU_SOCKBUF_DEFAULT, true},
		{1, 0, VFU_SOCKBUF_DEFAULT, false},
		{1, 64 * KiB, 0, false},
		{2, 64 * KiB, VFU_SOCKBUF_DEFAULT, true},
		{2, 32 * KiB, VFU_SOCKBUF_DEFAULT, false},
	};
	struct dev_cfg c = {1 * MiB, 4096, 16, 40 * KiB};
	struct dev src, dst;
	ms_registry *sreg, *dreg;
	struct mig m;

	dev_init_src(&src, &c, 151);
	dev_init_dst(&dst, &c);
	sreg = dev_registry(&src, 2, false, NULL);
	dreg = dev_registry(&dst, 2, false, NULL);
	mig_init(&m, cases[_i].api, cases[_i].window);
	m.rpat = m.wpat = VFU_PAT_WHOLE;
	m.sockbuf = cases[_i].sockbuf;
	m.v2_sockbuf = true;
	ck_assert_int_eq(migrate(&m, sreg, &src, dreg), 0);
	if (cases[_i].fails) {
		ck_assert_int_eq(m.load_ret, -EINVAL);
		ck_assert_uint_eq(m.short_reads, 1);
		ck_assert_int_eq(m.done_ret, -EPROTO);
		ck_assert_uint_eq(m.dst_bytes, 0); /* nothing reached it */
		ck_assert(!dev_equal(&src, &dst));
	} else {
		ck_assert_msg(!m.save_ret && !m.load_ret && !m.done_ret,
			      "%d %s", m.load_ret, m.errmsg);
		ck_assert_uint_eq(m.short_reads, 0);
		ck_assert_uint_eq(m.dst_bytes, m.moved);
		ck_assert(dev_equal(&src, &dst));
		if (cases[_i].api == 1 && !cases[_i].window)
			ck_assert_uint_eq(m.max_chunk, MS_VFU_DEFAULT_WINDOW);
	}
	ms_registry_free(sreg);
	ms_registry_free(dreg);
	dev_free(&src);
	dev_free(&dst);
}
END_TEST

/* Resume rounds do not overwrite each other: a destination region
 * smaller than the source's splits each chunk into several rounds, each
 * written back to front, and the state is rebuilt exactly. */
START_TEST(test_vfio_user_resume_rounds)
{
	struct dev_cfg c = {1 * MiB, 4096, 8, 70000};
	struct mig m;

	mig_init(&m, 1, 64 * KiB);
	m.rpat = VFU_PAT_WHOLE;
	m.dst_window = 4 * KiB + 40;
	m.wpat = _i ? VFU_PAT_SCATTER : VFU_PAT_REVERSE;
	m.wpiece = 96;
	roundtrip(&m, &c, 61);
	ck_assert_uint_ge(m.dst_rounds, m.moved / (4 * KiB + 40));
	ck_assert_uint_gt(m.dst_rounds, 10 * m.chunks);
}
END_TEST

/*
 * Errors are not swallowed.  A failing save_setup fails the
 * transition into PRE_COPY (-1, errno, state kept), a failing save_state
 * fails the read that needed it, a failing load fails data_written and
 * RESUME -> RUNNING.  Never 0.
 */
START_TEST(test_vfio_user_errors_reach_client)
{
	int api = _i + 1;
	struct dev_cfg c = {64 * 256, 256, 8, 500};
	struct dev src, dst;
	ms_registry *sreg, *dreg;
	ms_vfu_opts o = vfu_opts(api, 4 * KiB, 0, NULL, NULL);
	ms_vfu_adapter *a;
	struct mig m;
	int ret;

	dev_init_src(&src, &c, 71);
	dev_init_dst(&dst, &c);
	sreg = dev_registry(&src, 2, false, NULL);
	dreg = dev_registry(&dst, 2, false, NULL);

	/* save_setup fails. */
	src.fail_setup = EPERM;
	ck_assert_int_eq(ms_vfu_adapter_new(&a, sreg, &o), 0);
	if (api == 1) {
		struct vfu1_dev d;

		vfu1_init(&d, a);
		errno = 0;
		ret = vfu1_set_state(&d, VFU1_RUNNING | VFU1_SAVING);
		ck_assert_int_eq(ret, -1);
		ck_assert_int_eq(errno, EPERM);
		ck_assert_uint_eq(d.device_state, VFU1_RUNNING);
	} else {
		struct vfu2_dev d;

		vfu2_init(&d, a);
		errno = 0;
		ret = vfu2_set_state(&d, VFU2_PRE_COPY);
		ck_assert_int_eq(ret, -1);
		ck_assert_int_eq(errno, EPERM);
		ck_assert_uint_eq(d.state, VFU2_RUNNING);
	}
	ck_assert_int_eq(ms_vfu_state(a), ST_RUN);
	ck_assert_ptr_nonnull(strstr(ms_vfu_errmsg(a), "save"));
	ms_vfu_adapter_free(a);
	src.fail_setup = 0;

	/* save_state fails at stop-and-copy: the client's read fails. */
	src.fail_state = ENOSPC;
	mig_init(&m, api, 4 * KiB);
	ck_assert_int_eq(migrate(&m, sreg, &src, dreg), 0);
	ck_assert_int_eq(m.save_ret, -ENOSPC);
	ck_assert_int_eq(m.done_ret, -ENODATA); /* the stream never ended */
	src.fail_state = 0;

	/* The destination's load fails. */
	dst.fail_load = SEC_TIMER;
	mig_init(&m, api, 4 * KiB);
	ck_assert_int_eq(migrate(&m, sreg, &src, dreg), 0);
	ck_assert_int_eq(m.load_ret, -EIO);
	ck_assert_int_eq(m.done_ret, -EIO);
	ck_assert_ptr_nonnull(strstr(m.errmsg, "'timer'"));
	ms_registry_free(sreg);
	ms_registry_free(dreg);
	dev_free(&src);
	dev_free(&dst);
}
END_TEST

/* PRE_COPY saves only the iterative part; the non-iterative
 * save_state runs once, at STOP_AND_COPY. */
START_TEST(test_vfio_user_precopy_is_iterative_only)
{
	int api = _i + 1;
	struct dev_cfg c = {64 * 256, 256, 4, 500};
	struct dev src;
	ms_registry *reg;
	ms_vfu_opts o = vfu_opts(api, 4 * KiB, 0, NULL, NULL);
	ms_vfu_adapter *a;
	struct vfu_client_opts co;
	struct vfu1_dev d1;
	struct vfu2_dev d2;

	dev_init_src(&src, &c, 81);
	reg = dev_registry(&src, 2, false, NULL);
	ck_assert_int_eq(ms_vfu_adapter_new(&a, reg, &o), 0);
	src.a = a;
	memset(&co, 0, sizeof(co));
	co.pattern = VFU_PAT_QEMU8;
	if (api == 1) {
		vfu1_init(&d1, a);
		ck_assert_int_eq(vfu1_qemu_precopy(&d1, &co), 0);
	} else {
		uint8_t buf[4096];
		ssize_t n;

		vfu2_init(&d2, a);
		ck_assert_int_eq(vfu2_set_state(&d2, VFU2_PRE_COPY), 0);
		while ((n = vfu2_data_read(&d2, buf, sizeof(buf))) > 0)
			co.precopy++;
		ck_assert_int_eq(n, 0);
	}
	/* All of RAM went out in precopy; no device state yet. */
	ck_assert_uint_ge(co.precopy, 2);
	ck_assert_uint_eq(ram_pending(&src), 0);
	ck_assert_uint_eq(src.saves_full, 0);
	if (api == 1) {
		ck_assert_int_eq(vfu1_qemu_complete(&d1, &co), 0);
	} else {
		uint8_t buf[4096];

		ck_assert_int_eq(vfu2_set_state(&d2, VFU2_STOP_COPY), 0);
		while (vfu2_data_read(&d2, buf, sizeof(buf)) > 0)
			;
		ck_assert_int_eq(vfu2_set_state(&d2, VFU2_STOP), 0);
	}
	ck_assert_uint_eq(src.saves_full, 1);
	ck_assert_uint_eq(src.saves_early, 0);
	ms_vfu_adapter_free(a);
	ms_registry_free(reg);
	dev_free(&src);
}
END_TEST

/*
 * A migration cancelled in PRE_COPY (back to RUNNING,
 * as QEMU does) or after STOP_AND_COPY leaves nothing behind, and the next
 * migration of the same devices succeeds.
 */
START_TEST(test_vfio_user_migrate_after_cancel)
{
	int api = _i % 2 + 1;
	bool late = _i / 2;
	struct dev_cfg c = {128 * 256, 256, 4, 900};
	struct dev src, dst;
	ms_registry *sreg, *dreg;
	ms_vfu_opts o = vfu_opts(api, 4 * KiB, 0, NULL, NULL);
	ms_vfu_adapter *sa, *da;
	struct vfu_client_opts co;
	uint8_t *stream, buf[100];
	size_t len;
	struct mig m;

	dev_init_src(&src, &c, 91);
	dev_init_dst(&dst, &c);
	sreg = dev_registry(&src, 2, false, NULL);
	dreg = dev_registry(&dst, 2, false, NULL);
	stream = dev_stream(&c, 91, MS_PROFILE_NATIVE, &len);
	ck_assert_int_eq(ms_vfu_adapter_new(&sa, sreg, &o), 0);
	ck_assert_int_eq(ms_vfu_adapter_new(&da, dreg, &o), 0);
	memset(&co, 0, sizeof(co));
	co.pattern = VFU_PAT_QEMU8;
	co.max_precopy = 3;
	if (api == 1) {
		struct vfu1_dev s1, d1;

		vfu1_init(&s1, sa);
		vfu1_init(&d1, da);
		ck_assert_int_eq(vfu1_qemu_precopy(&s1, &co), 0);
		if (late) {
			uint64_t p;

			ck_assert_int_eq(vfu1_set_state(&s1, VFU1_SAVING), 0);
			ck_assert_int_eq(vfu1_read_pending(&s1, &co, &p), 0);
			ck_assert_int_eq(vfu1_save_buffer(&s1, &co) > 0, 1);
		}
		/* QEMU's cancel: clear SAVING, set RUNNING. */
		ck_assert_int_eq(vfu1_rmw_state(&s1, ~VFU1_SAVING, 1), 0);
		/* The destination got half the stream. */
		ck_assert_int_eq(vfu1_qemu_load_setup(&d1), 0);
		v1_region_write_stream(&d1, stream, len / 2);
	} else {
		struct vfu2_dev s2, d2;

		vfu2_init(&s2, sa);
		vfu2_init(&d2, da);
		ck_assert_int_eq(vfu2_qemu_load_setup(&d2), 0);
		ck_assert_int_eq(vfu2_data_write(&d2, stream, len / 2), 0);
		ck_assert_int_eq(vfu2_set_state(&s2, VFU2_PRE_COPY), 0);
		if (late)
			ck_assert_int_eq(vfu2_set_state(&s2, VFU2_STOP_COPY),
					 0);
		ck_assert_int_eq(vfu2_data_read(&s2, buf, sizeof(buf)),
				 (ssize_t)sizeof(buf));
		ck_assert_int_eq(vfu2_set_state(&s2, VFU2_RUNNING), 0);
	}
	ck_assert_int_eq(ms_vfu_state(sa), ST_RUN);
	ck_assert_uint_eq(src.cleanups, 1);
	ck_assert_uint_eq(ms_vfu_v1_get_pending_bytes(sa), 0);
	ms_vfu_adapter_free(sa);
	ms_vfu_adapter_free(da);
	free(stream);

	src.cleanups = 0;
	mig_init(&m, api, 4 * KiB);
	ck_assert_int_eq(migrate(&m, sreg, &src, dreg), 0);
	ck_assert_msg(!m.save_ret && !m.load_ret && !m.done_ret, "%s",
		      m.errmsg);
	ck_assert(dev_equal(&src, &dst));
	ck_assert_uint_eq(src.cleanups, 1);
	ms_registry_free(sreg);
	ms_registry_free(dreg);
	dev_free(&src);
	dev_free(&dst);
}
END_TEST

/*
 * Bad input on the destination: truncated, corrupted, an unknown device,
 * a version too new.  The transition out of RESUME fails with the right
 * errno and a message; nothing leaks; a new RESUME starts over and then
 * succeeds.  Index: kind (4) x api (2).
 */
START_TEST(test_vfio_user_bad_input)
{
	static const struct {
		const char *what;
		int err;
		const char *msg;
	} kinds[] = {
		{"truncated", -ENODATA, "truncated"},
		{"corrupted", -EILSEQ, "offset 0x"},
		{"unknown device", -ENOENT, "'extra'"},
		{"version too new", -ENOTSUP, "'regs'"},
	};
	int kind = _i / 2, api = _i % 2 + 1;
	struct dev_cfg c = {64 * 256, 256, 8, 2000};
	struct dev src, dst;
	ms_registry *sreg, *dreg;
	struct peak sp, dp;
	size_t len;
	struct mig m;
	long sbase, dbase;

	peak_init(&sp);
	peak_init(&dp);
	free(dev_stream(&c, 101, MS_PROFILE_NATIVE, &len));
	dev_init_src(&src, &c, 101);
	dev_init_dst(&dst, &c);
	sreg = dev_registry(&src, kind == 3 ? 3 : 2, kind == 2, &sp.a);
	dreg = dev_registry(&dst, 2, false, &dp.a);
	sbase = sp.live;
	dbase = dp.live;
	mig_init(&m, api, 4 * KiB);
	m.src_alloc = &sp.a;
	m.dst_alloc = &dp.a;
	if (kind == 0)
		m.cut_at = (int64_t)len - 7;
	if (kind == 1)
		m.flip_at = (int64_t)len / 2;
	ck_assert_int_eq(migrate(&m, sreg, &src, dreg), 0);
	ck_assert_int_eq(m.save_ret == 0 || m.save_ret == m.load_ret, 1);
	if (kind == 1)
		ck_assert_msg(m.done_ret == -EILSEQ || m.done_ret == -EBADMSG,
			      "%s: %d %s", kinds[kind].what, m.done_ret,
			      m.errmsg);
	else
		ck_assert_msg(m.done_ret == kinds[kind].err, "%s: %d %s",
			      kinds[kind].what, m.done_ret, m.errmsg);
	if (m.load_ret)
		ck_assert_int_eq(m.load_ret, m.done_ret);
	ck_assert_ptr_nonnull(strstr(m.errmsg, kinds[kind].msg));
	ck_assert_int_eq(sp.live, sbase);
	ck_assert_int_eq(dp.live, dbase);

	/* Then a good migration succeeds into the same device. */
	ms_registry_free(sreg);
	sreg = dev_registry(&src, 2, false, &sp.a);
	mig_init(&m, api, 4 * KiB);
	m.src_alloc = &sp.a;
	m.dst_alloc = &dp.a;
	ck_assert_int_eq(migrate(&m, sreg, &src, dreg), 0);
	ck_assert_msg(!m.save_ret && !m.load_ret && !m.done_ret, "%s",
		      m.errmsg);
	ck_assert(dev_equal(&src, &dst));
	ms_registry_free(sreg);
	ms_registry_free(dreg);
	ck_assert_int_eq(sp.live, 0);
	ck_assert_int_eq(dp.live, 0);
	dev_free(&src);
	dev_free(&dst);
}
END_TEST

/*
 * After a failed load the adapter stays in RESUME (RUNNING refused); a
 * new RESUME starts over: for v1 the same-state write, which libvfio-user
 * v1 forwards; for v2, whose library never forwards a same-state SET, by
 * way of STOP.
 */
START_TEST(test_vfio_user_restart_failed_load)
{
	int api = _i + 1;
	struct dev_cfg c = {16 * 256, 256, 8, 200};
	struct dev src, dst;
	ms_registry *dreg;
	ms_vfu_opts o = vfu_opts(api, 4 * KiB, 0, NULL, NULL);
	ms_vfu_adapter *a;
	uint8_t *stream;
	size_t len;

	dev_init_src(&src, &c, 111);
	dev_init_dst(&dst, &c);
	dreg = dev_registry(&dst, 2, false, NULL);
	stream = dev_save(&src, MS_PROFILE_NATIVE, &len);
	ck_assert_int_eq(ms_vfu_adapter_new(&a, dreg, &o), 0);
	if (api == 1) {
		struct vfu1_dev d;

		vfu1_init(&d, a);
		ck_assert_int_eq(vfu1_qemu_load_setup(&d), 0);
		v1_region_write_stream(&d, stream, len - 1);
		errno = 0;
		ck_assert_int_eq(vfu1_set_state(&d, VFU1_RUNNING), -1);
		ck_assert_int_eq(errno, ENODATA);
		ck_assert_int_eq(vfu1_set_state(&d, VFU1_RUNNING), -1);
		ck_assert_int_eq(ms_vfu_state(a), ST_RES);
		ck_assert_int_eq(vfu1_set_state(&d, VFU1_RESUMING), 0);
		v1_region_write_stream(&d, stream, len);
		ck_assert_int_eq(vfu1_set_state(&d, VFU1_RUNNING), 0);
	} else {
		struct vfu2_dev d;

		vfu2_init(&d, a);
		ck_assert_int_eq(vfu2_set_state(&d, VFU2_RESUMING), 0);
		ck_assert_int_eq(vfu2_data_write(&d, stream, len - 1), 0);
		errno = 0;
		ck_assert_int_eq(vfu2_set_state(&d, VFU2_RUNNING), -1);
		ck_assert_int_eq(errno, ENODATA);
		ck_assert_uint_eq(d.state, VFU2_RESUMING);
		ck_assert_int_eq(ms_vfu_state(a), ST_RES);
		/* The error was reported; STOP now abandons the load. */
		ck_assert_int_eq(vfu2_set_state(&d, VFU2_STOP), 0);
		ck_assert_int_eq(vfu2_set_state(&d, VFU2_RESUMING), 0);
		ck_assert_int_eq(vfu2_data_write(&d, stream, len), 0);
		ck_assert_int_eq(vfu2_set_state(&d, VFU2_RUNNING), 0);
	}
	ck_assert(dev_equal(&src, &dst));
	ms_vfu_adapter_free(a);
	ms_registry_free(dreg);
	free(stream);
	dev_free(&src);
	dev_free(&dst);
}
END_TEST

/*
 * A callback of the other API version is refused (EINVAL, with a message
 * that says so) and disturbs nothing: a v2 write on a v1 destination once
 * fed the load behind the v1 window's back and left that window pointing
 * into a moved buffer.  The migration then completes through its own API.
 */
START_TEST(test_vfio_user_other_api_refused)
{
	int api = _i + 1;
	struct dev_cfg c = {64 * 256, 256, 4, 300};
	struct dev src, dst;
	ms_registry *sreg, *dreg;
	ms_vfu_opts o = vfu_opts(api, 4 * KiB, 0, NULL, NULL);
	ms_vfu_adapter *sa, *da;
	uint64_t off, size, doff;
	static uint8_t buf[4 * KiB];
	ssize_t n;

	dev_init_src(&src, &c, 17);
	dev_init_dst(&dst, &c);
	sreg = dev_registry(&src, 2, false, NULL);
	dreg = dev_registry(&dst, 2, false, NULL);
	ck_assert_int_eq(ms_vfu_adapter_new(&sa, sreg, &o), 0);
	ck_assert_int_eq(ms_vfu_adapter_new(&da, dreg, &o), 0);
	if (api == 2) { /* v2 goes through STOP */
		ck_assert_int_eq(ms_vfu_transition(sa, ST_STOP), 0);
		ck_assert_int_eq(ms_vfu_transition(da, ST_STOP), 0);
	}
	ck_assert_int_eq(ms_vfu_transition(sa, ST_SAC), 0);
	ck_assert_int_eq(ms_vfu_transition(da, ST_RES), 0);
	if (api == 1) {
		/* One v1 round written, then v2 calls in its middle. */
		ck_assert_uint_ne(ms_vfu_v1_get_pending_bytes(sa), 0);
		ck_assert_int_eq(ms_vfu_v1_prepare_data(sa, &off, &size), 0);
		ck_assert_int_eq(ms_vfu_v1_read_data(sa, buf, size, off),
				 (ssize_t)size);
		ck_assert_int_eq(ms_vfu_v1_write_data(da, buf, 8, 0), 8);
		errno = 0;
		ck_assert_int_eq(ms_vfu_v2_write_data(da, buf, sizeof(buf)),
				 -1);
		ck_assert_int_eq(errno, EINVAL);
		ck_assert_str_eq(ms_vfu_errmsg(da),
				 "write_data is a v2 callback, this adapter "
				 "serves v1");
		ck_assert_int_eq(ms_vfu_v2_read_data(sa, buf, 10), -1);
		ck_assert_int_eq(errno, EINVAL);
		ck_assert_str_eq(ms_vfu_errmsg(sa),
				 "read_data is a v2 callback, this adapter "
				 "serves v1");
		ck_assert_int_eq(ms_vfu_v1_write_data(da, buf + 8, size - 8, 8),
				 (ssize_t)(size - 8));
		ck_assert_int_eq(ms_vfu_v1_data_written(da, size), 0);
		while (ms_vfu_v1_get_pending_bytes(sa)) {
			ck_assert_int_eq(
				ms_vfu_v1_prepare_data(sa, &off, &size), 0);
			ck_assert_int_eq(
				ms_vfu_v1_read_data(sa, buf, size, off),
				(ssize_t)size);
			ck_assert_int_eq(
				ms_vfu_v1_prepare_data(da, &doff, NULL), 0);
			ck_assert_int_eq(
				ms_vfu_v1_write_data(da, buf, size, doff),
				(ssize_t)size);
			ck_assert_int_eq(ms_vfu_v1_data_written(da, size), 0);
		}
	} else {
		ck_assert_uint_eq(ms_vfu_v1_get_pending_bytes(sa), 0);
		ck_assert_int_eq(ms_vfu_v1_prepare_data(sa, &off, &size), -1);
		ck_assert_str_eq(ms_vfu_errmsg(sa),
				 "prepare_data is a v1 callback, this adapter "
				 "serves v2");
		ck_assert_int_eq(ms_vfu_v1_read_data(sa, buf, 1, 0), -1);
		ck_assert_int_eq(errno, EINVAL);
		ck_assert_int_eq(ms_vfu_v1_write_data(da, buf, 1, 0), -1);
		ck_assert_int_eq(errno, EINVAL);
		ck_assert_int_eq(ms_vfu_v1_data_written(da, 0), -1);
		ck_assert_str_eq(ms_vfu_errmsg(da),
				 "data_written is a v1 callback, this adapter "
				 "serves v2");
		while ((n = ms_vfu_v2_read_data(sa, buf, sizeof(buf))) > 0)
			ck_assert_int_eq(
				ms_vfu_v2_write_data(da, buf, (uint64_t)n), n);
		ck_assert_int_eq(n, 0);
		ck_assert_int_eq(ms_vfu_transition(sa, ST_STOP), 0);
	}
	ck_assert_msg(ms_vfu_transition(da, api == 1 ? ST_RUN : ST_STOP) == 0,
		      "%s", ms_vfu_errmsg(da));
	ck_assert(dev_equal(&src, &dst));
	ms_vfu_adapter_free(sa);
	ms_vfu_adapter_free(da);
	ms_registry_free(sreg);
	ms_registry_free(dreg);
	dev_free(&src);
	dev_free(&dst);
}
END_TEST

/*
 * A v1 round with a hole (bytes the client never wrote before it
 * committed them): they read as zeros, never as whatever the buffer held
 * (valgrind checks that), and the load fails cleanly on them.
 */
START_TEST(test_vfio_user_v1_hole_is_zero)
{
	struct dev_cfg c = {0, 256, 4, 0};
	struct dev dst;
	ms_registry *dreg;
	ms_vfu_opts o = vfu_opts(1, 4 * KiB, 0, NULL, NULL);
	ms_vfu_adapter *da;
	uint8_t tail[4] = {1, 2, 3, 4};

	dev_init_dst(&dst, &c);
	dreg = dev_registry(&dst, 2, false, NULL);
	ck_assert_int_eq(ms_vfu_adapter_new(&da, dreg, &o), 0);
	ck_assert_int_eq(ms_vfu_transition(da, ST_RES), 0);
	ck_assert_int_eq(ms_vfu_v1_write_data(da, tail, 4, 100), 4);
	ck_assert_int_eq(ms_vfu_v1_data_written(da, 104), -1);
	ck_assert_int_ne(errno, 0);
	ck_assert_ptr_nonnull(strstr(ms_vfu_errmsg(da), "offset 0"));
	ck_assert_int_eq(ms_vfu_transition(da, ST_RUN), -1);
	ms_vfu_adapter_free(da);
	ms_registry_free(dreg);
	dev_free(&dst);
}
END_TEST

START_TEST(test_vfio_user_adapter_arguments)
{
	struct dev d;
	ms_registry *reg;
	ms_vfu_adapter *a = NULL;
	ms_codec_opts co;
	ms_vfu_opts o;
	struct test_case {
		unsigned version;
		int api;
		size_t window;
		ms_profile profile;
	} bad[] = {
		{0, 1, 0, MS_PROFILE_NATIVE},
		{1, 1, 0, MS_PROFILE_NATIVE}, /* before @codec was a pointer */
		{2, 1, 0, MS_PROFILE_NATIVE}, /* before the hooks */
		{MS_VFU_OPTS_VERSION, 0, 0, MS_PROFILE_NATIVE},
		{MS_VFU_OPTS_VERSION, 3, 0, MS_PROFILE_NATIVE},
		{MS_VFU_OPTS_VERSION, 1, 15, MS_PROFILE_NATIVE},
		{MS_VFU_OPTS_VERSION, 1, 1 * MiB + 1, MS_PROFILE_NATIVE},
		{MS_VFU_OPTS_VERSION, 1, 0, MS_PROFILE_AUTO},
	};
	size_t i;

	dev_init_dst(&d, &small_cfg);
	reg = dev_registry(&d, 2, false, NULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = vfu_opts(bad[i].api, bad[i].window, 0, NULL, &co);
		o.version = bad[i].version;
		co.profile = bad[i].profile;
		ck_assert_int_eq(ms_vfu_adapter_new(&a, reg, &o), -EINVAL);
		ck_assert_ptr_null(a);
		ck_assert_ptr_nonnull(strstr(ms_registry_errmsg(reg),
					     "ms_vfu_adapter_new: "));
		ck_assert_ptr_nonnull(
			strstr(ms_registry_errmsg(reg), ", expected "));
	}
	/* Versions 1 and 2 (before the hooks) are refused by name. */
	for (i = 1; i <= 2; i++) {
		char want[256];

		o = vfu_opts(1, 0, 0, NULL, NULL);
		o.version = (unsigned)i;
		ck_assert_int_eq(ms_vfu_adapter_new(&a, reg, &o), -EINVAL);
		snprintf(want, sizeof(want),
			 "ms_vfu_adapter_new: opts->version is %zu, expected "
			 "MS_VFU_OPTS_VERSION (3): versions 1 and 2 are no "
			 "longer accepted (version 3 added the hooks, the log, "
			 "lazy_final and max_fed_bytes)",
			 i);
		ck_assert_str_eq(ms_registry_errmsg(reg), want);
	}
	o.version = 4;
	ck_assert_int_eq(ms_vfu_adapter_new(&a, reg, &o), -EINVAL);
	ck_assert_str_eq(ms_registry_errmsg(reg),
			 "ms_vfu_adapter_new: opts->version is 4, expected "
			 "MS_VFU_OPTS_VERSION (3)");
	ck_assert_int_eq(ms_vfu_adapter_new(&a, NULL, NULL), -EINVAL);
	ck_assert_int_eq(ms_vfu_adapter_new(NULL, reg, NULL), -EINVAL);
	/* NULL: v2 with the defaults. */
	ck_assert_int_eq(ms_vfu_adapter_new(&a, reg, NULL), 0);
	ck_assert_uint_eq(ms_vfu_window_size(a), MS_VFU_DEFAULT_WINDOW);
	ck_assert_int_eq(ms_vfu_state(a), ST_RUN);
	ck_assert_str_eq(ms_vfu_errmsg(a), "");
	ck_assert_uint_eq(ms_vfu_bytes(a), 0);
	/* v2 is refused the v1-only steps of a state without data. */
	ck_assert_int_eq(ms_vfu_v2_read_data(a, &o, 1), -1);
	ck_assert_str_eq(ms_vfu_errmsg(a),
			 "read_data in state RUNNING: expected PRE_COPY or "
			 "STOP_AND_COPY, with a save started");
	ck_assert_int_eq(ms_vfu_v2_write_data(a, &o, 1), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_str_eq(ms_vfu_errmsg(a), "write_data in state RUNNING: "
					   "expected RESUME, with a load "
					   "started");
	/* Transitions out of the table say which ones are allowed. */
	ck_assert_int_eq(ms_vfu_transition(a, ST_RES), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_str_eq(ms_vfu_errmsg(a),
			 "transition from RUNNING to RESUME is not allowed "
			 "(libvfio-user v2: expected STOP, PRE_COPY)");
	ck_assert_int_eq(ms_vfu_transition(a, (ms_vfu_migr_state)7), -1);
	ck_assert_str_eq(ms_vfu_errmsg(a), "transition to unknown state 7 "
					   "(expected 0 to 4)");
	ck_assert_int_eq(ms_vfu_state(a), ST_RUN);
	ms_vfu_adapter_free(a);
	o = vfu_opts(1, 16, 0, NULL, NULL);
	ck_assert_int_eq(ms_vfu_adapter_new(&a, reg, &o), 0);
	ck_assert_uint_eq(ms_vfu_window_size(a), 16);
	ms_vfu_adapter_free(a);
	ms_vfu_adapter_free(NULL);
	ms_registry_free(reg);
	dev_free(&d);
}
END_TEST

/* Each RESUME's load holds at most ms_load_opts.max_fed_bytes: the
 * default, plus, in v1, the window reserved per round on top of it. */
START_TEST(test_vfio_user_load_limit)
{
	struct dev d;
	ms_registry *reg;
	ms_vfu_adapter *a;
	ms_vfu_opts o;
	int api;

	dev_init_dst(&d, &small_cfg);
	reg = dev_registry(&d, 2, false, NULL);
	for (api = 1; api <= 2; api++) {
		o = vfu_opts(api, 4096, 0, NULL, NULL);
		ck_assert_int_eq(ms_vfu_adapter_new(&a, reg, &o), 0);
		ck_assert_uint_eq(ms__vfu_max_fed(a), 0);
		if (api == 2)
			ck_assert_int_eq(ms_vfu_transition(a, ST_STOP), 0);
		ck_assert_int_eq(ms_vfu_transition(a, ST_RES), 0);
		ck_assert_uint_eq(ms__vfu_max_fed(a),
				  MS_DEFAULT_MAX_FED_BYTES +
					  (api == 1 ? 4096 : 0));
		ms_vfu_adapter_free(a);
	}
	ms_registry_free(reg);
	dev_free(&d);
}
END_TEST

/*
 * Hooks.  One context per adapter: the edge whose pre- or post-hook
 * fails (once), the calls counted, the log's calls.
 */
struct hooks {
	ms_vfu_migr_state from, to;
	bool post;   /* fail the post-hook, else the pre-hook */
	bool cancel; /* after a post failure, cancel instead of retrying */
	bool fired;
	unsigned pre_calls, post_calls, logs;
	int log_err;
	char log_msg[1024];
};

#define HOOK_ERR EBUSY

static int hook_pre(void *opaque, ms_vfu_migr_state from, ms_vfu_migr_state to)
{
	struct hooks *h = opaque;

	h->pre_calls++;
	if (!h->post && !h->fired && from == h->from && to == h->to) {
		h->fired = true;
		return -HOOK_ERR;
	}
	return 0;
}

static int hook_post(void *opaque, ms_vfu_migr_state from, ms_vfu_migr_state to)
{
	struct hooks *h = opaque;

	h->post_calls++;
	if (h->post && !h->fired && from == h->from && to == h->to) {
		h->fired = true;
		return -HOOK_ERR;
	}
	return 0;
}

static void hook_log(void *opaque, int err, const char *msg)
{
	struct hooks *h = opaque;

	h->logs++;
	h->log_err = err;
	snprintf(h->log_msg, sizeof(h->log_msg), "%s", msg);
}

static ms_vfu_adapter *hooked_adapter(ms_registry *reg, int api,
				      struct hooks *h)
{
	ms_vfu_opts o = vfu_opts(api, 4 * KiB, 0, NULL, NULL);
	ms_vfu_adapter *a;

	o.pre_transition = hook_pre;
	o.post_transition = hook_post;
	o.log = hook_log;
	o.opaque = h;
	ck_assert_int_eq(ms_vfu_adapter_new(&a, reg, &o), 0);
	return a;
}

static bool is_saving(ms_vfu_migr_state s)
{
	return s == ST_PRE || s == ST_SAC;
}

/*
 * One transition of a hooked adapter.  Off the failing edge: both hooks
 * run once, and the same state again runs neither.  On it: -1 with the
 * hook's errno and one log call; a pre-hook failure changed nothing and
 * the retry runs both hooks; a post-hook failure left the adapter in the
 * new state and the retry runs the post-hook alone; or (@h->cancel) the
 * save is cancelled back to RUNNING and started again.  Returns whether
 * the save was started again.
 */
static bool step(ms_vfu_adapter *a, struct hooks *h, ms_vfu_migr_state to)
{
	ms_vfu_migr_state from = ms_vfu_state(a);
	unsigned pre = h->pre_calls, post = h->post_calls, logs = h->logs;
	bool armed = !h->fired && from == h->from && to == h->to;
	int ret;

	errno = 0;
	ret = ms_vfu_transition(a, to);
	if (!armed) {
		ck_assert_msg(ret == 0, "%d->%d: %s", from, to,
			      ms_vfu_errmsg(a));
		ck_assert_int_eq(ms_vfu_state(a), to);
		ck_assert_uint_eq(h->pre_calls, pre + 1);
		ck_assert_uint_eq(h->post_calls, post + 1);
		ck_assert_int_eq(ms_vfu_transition(a, to), 0);
		ck_assert_uint_eq(h->pre_calls, pre + 1);
		ck_assert_uint_eq(h->post_calls, post + 1);
		ck_assert_uint_eq(h->logs, logs);
		return false;
	}
	ck_assert_msg(ret == -1 && errno == HOOK_ERR, "%d->%d: %d %d", from, to,
		      ret, errno);
	ck_assert(h->fired);
	ck_assert_uint_eq(h->logs, logs + 1);
	ck_assert_int_eq(h->log_err, HOOK_ERR);
	ck_assert_str_eq(h->log_msg, ms_vfu_errmsg(a));
	ck_assert_ptr_nonnull(
		strstr(ms_vfu_errmsg(a), h->post ? "post_transition failed"
						 : "pre_transition failed"));
	ck_assert_uint_eq(h->pre_calls, pre + 1);
	if (!h->post) {
		ck_assert_int_eq(ms_vfu_state(a), from);
		ck_assert_uint_eq(h->post_calls, post);
		ck_assert_msg(ms_vfu_transition(a, to) == 0, "%s",
			      ms_vfu_errmsg(a));
		ck_assert_uint_eq(h->pre_calls, pre + 2);
		ck_assert_uint_eq(h->post_calls, post + 1);
	} else if (!h->cancel) {
		ck_assert_int_eq(ms_vfu_state(a), to);
		ck_assert_uint_eq(h->post_calls, post + 1);
		ck_assert_msg(ms_vfu_transition(a, to) == 0, "%s",
			      ms_vfu_errmsg(a));
		ck_assert_uint_eq(h->pre_calls, pre + 1);
		ck_assert_uint_eq(h->post_calls, post + 2);
		/* Done: the same state again runs nothing. */
		ck_assert_int_eq(ms_vfu_transition(a, to), 0);
		ck_assert_uint_eq(h->post_calls, post + 2);
	} else {
		ck_assert_int_eq(ms_vfu_state(a), to);
		ck_assert_msg(ms_vfu_transition(a, ST_RUN) == 0, "%s",
			      ms_vfu_errmsg(a));
		ck_assert_msg(ms_vfu_transition(a, to) == 0, "%s",
			      ms_vfu_errmsg(a));
		ck_assert_uint_eq(h->pre_calls, pre + 3);
		ck_assert_uint_eq(h->post_calls, post + 3);
		ck_assert_int_eq(ms_vfu_state(a), to);
		return true;
	}
	ck_assert_int_eq(ms_vfu_state(a), to);
	ck_assert_uint_eq(h->logs, logs + 1);
	return false;
}

/* Everything the source offers now, into the destination. */
static void drain(int api, ms_vfu_adapter *sa, ms_vfu_adapter *da)
{
	static uint8_t buf[4 * KiB];
	uint64_t off, size, doff;
	ssize_t n;

	if (api == MS_VFU_MIGR_CALLBACKS_V2) {
		while ((n = ms_vfu_v2_read_data(sa, buf, sizeof(buf))) > 0)
			ck_assert_int_eq(
				ms_vfu_v2_write_data(da, buf, (uint64_t)n), n);
		ck_assert_msg(n == 0, "%s", ms_vfu_errmsg(sa));
		return;
	}
	while (ms_vfu_v1_get_pending_bytes(sa)) {
		ck_assert_msg(ms_vfu_v1_prepare_data(sa, &off, &size) == 0,
			      "%s", ms_vfu_errmsg(sa));
		ck_assert_int_eq(ms_vfu_v1_read_data(sa, buf, size, off),
				 (ssize_t)size);
		ck_assert_int_eq(ms_vfu_v1_prepare_data(da, &doff, NULL), 0);
		ck_assert_int_eq(ms_vfu_v1_write_data(da, buf, size, doff),
				 (ssize_t)size);
		ck_assert_msg(ms_vfu_v1_data_written(da, size) == 0, "%s",
			      ms_vfu_errmsg(da));
	}
}

/*
 * The source's states for the edge @from -> @to: a way to @from, the
 * edge, then a way to a complete save.  Edges of RESUME are the
 * destination's: the source just migrates.
 */
static size_t edge_path(int api, ms_vfu_migr_state from, ms_vfu_migr_state to,
			ms_vfu_migr_state *p)
{
	size_t n = 0;

	if (from == ST_RES || to == ST_RES) {
		p[n++] = ST_PRE;
		p[n++] = ST_SAC;
		p[n++] = ST_STOP;
		return n;
	}
	if (from == ST_STOP)
		p[n++] = ST_STOP;
	if (from == ST_PRE || from == ST_SAC)
		p[n++] = ST_PRE;
	if (from == ST_SAC)
		p[n++] = ST_SAC;
	p[n++] = to;
	if (to == ST_RUN || (to == ST_STOP && from != ST_SAC && api == 1))
		p[n++] = to == ST_STOP ? ST_RUN : ST_PRE;
	if (p[n - 1] == ST_RUN)
		p[n++] = ST_PRE;
	if (to == ST_RUN || to == ST_PRE || (to == ST_STOP && from != ST_SAC))
		p[n++] = ST_SAC;
	if (to != ST_STOP || from != ST_SAC)
		p[n++] = ST_STOP;
	return n;
}

/*
 * A migration along @path with both adapters hooked to fail at the same
 * edge: the destination (re)opens whenever a save starts afresh, closes
 * at the end; the state must arrive whole.
 */
static void hooked_migration(int api, const ms_vfu_migr_state *path, size_t n,
			     struct hooks *hs, struct hooks *hd)
{
	struct dev_cfg c = {32 * 256, 256, 4, 300};
	struct dev src, dst;
	ms_registry *sreg, *dreg;
	ms_vfu_adapter *sa, *da = NULL;
	size_t i;

	dev_init_src(&src, &c, 161);
	dev_init_dst(&dst, &c);
	sreg = dev_registry(&src, 2, false, NULL);
	dreg = dev_registry(&dst, 2, false, NULL);
	sa = hooked_adapter(sreg, api, hs);
	for (i = 0; i < n; i++) {
		ms_vfu_migr_state prev = ms_vfu_state(sa);
		bool again = step(sa, hs, path[i]);

		if (is_saving(path[i]) && (again || !is_saving(prev))) {
			ms_vfu_adapter_free(da);
			da = hooked_adapter(dreg, api, hd);
			if (api == 2)
				step(da, hd, ST_STOP);
			step(da, hd, ST_RES);
		}
		if (is_saving(path[i]))
			drain(api, sa, da);
	}
	ck_assert_ptr_nonnull(da);
	step(da, hd, api == 1 ? ST_RUN : ST_STOP);
	if (api == 2)
		step(da, hd, ST_RUN);
	ck_assert_msg(hs->fired || hd->fired, "edge %d->%d not taken", hs->from,
		      hs->to);
	ck_assert_uint_eq(hs->logs, hs->fired);
	ck_assert_uint_eq(hd->logs, hd->fired);
	ck_assert(dev_equal(&src, &dst));
	ms_vfu_adapter_free(sa);
	ms_vfu_adapter_free(da);
	ms_registry_free(sreg);
	ms_registry_free(dreg);
	dev_free(&src);
	dev_free(&dst);
}

/*
 * Every edge of the API version's matrix, its pre-hook failing, then its
 * post-hook (retried, and, where the new state is saving and RUNNING is
 * reachable both ways, cancelled): the documented recovery works and the
 * migration then completes with the state identical.
 */
START_TEST(test_vfio_user_hook_failures)
{
	int api = _i + 1;
	const char *const *table = api == 1 ? v1_table : v2_table;
	ms_vfu_migr_state path[12];
	int from, to, kind;
	unsigned edges = 0;

	for (from = 0; from < 5; from++) {
		for (to = 0; to < 5; to++) {
			if (from == to || table[from][to] != 'Y')
				continue;
			edges++;
			for (kind = 0; kind < 3; kind++) {
				struct hooks hs, hd;
				bool can_cancel = (to == ST_PRE ||
						   (to == ST_SAC && api == 1));
				size_t n;

				if (kind == 2 && !can_cancel)
					continue;
				memset(&hs, 0, sizeof(hs));
				hs.from = (ms_vfu_migr_state)from;
				hs.to = (ms_vfu_migr_state)to;
				hs.post = kind > 0;
				hs.cancel = kind == 2;
				hd = hs;
				n = edge_path(api, hs.from, hs.to, path);
				hooked_migration(api, path, n, &hs, &hd);
			}
		}
	}
	ck_assert_uint_eq(edges, api == 1 ? 11 : 9);
}
END_TEST

/*
 * Through the emulated libraries, which keep their own state when the
 * callback fails: the client's retry of the same SET reaches the adapter
 * and runs the post-hook alone (v1 RUNNING -> PRE_COPY, v2 RESUMING ->
 * STOP -> RUNNING).
 */
START_TEST(test_vfio_user_hook_retry_library)
{
	struct dev_cfg c = {32 * 256, 256, 4, 300};
	struct dev src, dst;
	ms_registry *sreg, *dreg;
	ms_vfu_adapter *a;
	struct hooks h;
	uint8_t *stream;
	size_t len;

	dev_init_src(&src, &c, 171);
	dev_init_dst(&dst, &c);
	sreg = dev_registry(&src, 2, false, NULL);
	dreg = dev_registry(&dst, 2, false, NULL);
	stream = dev_save(&src, MS_PROFILE_NATIVE, &len);
	if (_i == 0) {
		struct vfu1_dev d;

		memset(&h, 0, sizeof(h));
		h.from = ST_RUN;
		h.to = ST_PRE;
		h.post = true;
		a = hooked_adapter(sreg, 1, &h);
		vfu1_init(&d, a);
		ck_assert_int_eq(vfu1_set_state(&d, VFU1_RUNNING | VFU1_SAVING),
				 -1);
		ck_assert_int_eq(errno, HOOK_ERR);
		ck_assert_uint_eq(d.device_state, VFU1_RUNNING);
		ck_assert_int_eq(ms_vfu_state(a), ST_PRE);
		ck_assert_int_eq(vfu1_set_state(&d, VFU1_RUNNING | VFU1_SAVING),
				 0);
		ck_assert_uint_eq(h.pre_calls, 1);
		ck_assert_uint_eq(h.post_calls, 2);
		ck_assert_uint_gt(ms_vfu_v1_get_pending_bytes(a), 0);
	} else {
		struct vfu2_dev d;

		memset(&h, 0, sizeof(h));
		h.from = ST_RES;
		h.to = ST_STOP;
		h.post = true;
		a = hooked_adapter(dreg, 2, &h);
		vfu2_init(&d, a);
		ck_assert_int_eq(vfu2_set_state(&d, VFU2_RESUMING), 0);
		ck_assert_int_eq(vfu2_data_write(&d, stream, len), 0);
		/* RESUMING -> STOP -> RUNNING stops at the failed hop. */
		ck_assert_int_eq(vfu2_set_state(&d, VFU2_RUNNING), -1);
		ck_assert_int_eq(errno, HOOK_ERR);
		ck_assert_uint_eq(d.state, VFU2_RESUMING);
		ck_assert_int_eq(ms_vfu_state(a), ST_STOP);
		ck_assert(dev_equal(&src, &dst)); /* loaded all the same */
		ck_assert_int_eq(vfu2_set_state(&d, VFU2_RUNNING), 0);
		ck_assert_int_eq(ms_vfu_state(a), ST_RUN);
	}
	ck_assert_uint_eq(h.logs, 1);
	ms_vfu_adapter_free(a);
	ms_registry_free(sreg);
	ms_registry_free(dreg);
	free(stream);
	dev_free(&src);
	dev_free(&dst);
}
END_TEST

/*
 * The final state is taken at the transition into STOP_AND_COPY: the
 * device changes its registers, blob and timer right after that
 * transition returns, and the destination gets them as they were then;
 * with lazy_final, as they are at the client's first read.  Index: api
 * (2) x lazy (2) x the blob (3000 bytes; 3 MiB + 5, past a huge page, as
 * the C library's memory and as an allocator's, which must get all of it
 * back).
 */
START_TEST(test_vfio_user_final_state_taken)
{
	int api = _i % 2 + 1;
	bool lazy = _i / 2 % 2;
	int big = _i / 4;
	struct dev_cfg c = {64 * 256, 256, 8, big ? 3 * MiB + 5 : 3000};
	struct dev src, dst;
	ms_registry *sreg, *dreg;
	struct ms_test_alloc al;
	ms_codec_opts codec;
	ms_vfu_opts o = vfu_opts(api, 4 * KiB, 0, big == 2 ? &al.a : NULL,
				 big == 2 ? &codec : NULL);
	ms_vfu_adapter *sa, *da;
	uint64_t regs[NREGS], timer;
	uint8_t *blob;

	ms_test_alloc_init(&al, 0);
	dev_init_src(&src, &c, 181);
	dev_init_dst(&dst, &c);
	sreg = dev_registry(&src, 2, false, NULL);
	dreg = dev_registry(&dst, 2, false, NULL);
	blob = malloc(c.blob);
	ck_assert_ptr_nonnull(blob);
	o.lazy_final = lazy;
	ck_assert_int_eq(ms_vfu_adapter_new(&sa, sreg, &o), 0);
	ck_assert_int_eq(ms_vfu_adapter_new(&da, dreg, &o), 0);
	src.a = sa;
	if (api == 2)
		ck_assert_int_eq(ms_vfu_transition(da, ST_STOP), 0);
	ck_assert_int_eq(ms_vfu_transition(da, ST_RES), 0);
	ck_assert_int_eq(ms_vfu_transition(sa, ST_PRE), 0);
	drain(api, sa, da);
	ck_assert_int_eq(ms_vfu_transition(sa, ST_SAC), 0);
	/* Eager: save_state ran in the transition, in STOP_AND_COPY. */
	ck_assert_uint_eq(src.saves_full, lazy ? 0 : 1);
	ck_assert_uint_eq(src.saves_early, 0);
	memcpy(regs, src.regs, sizeof(regs));
	memcpy(blob, src.blob, c.blob);
	timer = src.timer;
	src.regs[3] ^= 0xffff;
	src.blob[0] ^= 1;
	src.blob[c.blob - 1] ^= 0x80;
	src.timer++;
	drain(api, sa, da);
	ck_assert_uint_eq(src.saves_full, 1);
	ck_assert_int_eq(ms_vfu_transition(sa, ST_STOP), 0);
	ck_assert_msg(ms_vfu_transition(da, api == 1 ? ST_RUN : ST_STOP) == 0,
		      "%s", ms_vfu_errmsg(da));
	if (lazy) {
		ck_assert(dev_equal(&src, &dst));
	} else {
		ck_assert(!memcmp(dst.regs, regs, sizeof(regs)));
		ck_assert_uint_eq(dst.blob_len, c.blob);
		ck_assert(!memcmp(dst.blob, blob, c.blob));
		ck_assert_uint_eq(dst.timer, timer);
		ck_assert(!memcmp(dst.ram, src.ram, c.ram));
	}
	/* Iterative data is still sent as the client reads it. */
	ck_assert_uint_eq(src.cleanups, 1);
	src.a = NULL;
	ms_vfu_adapter_free(sa);
	ms_vfu_adapter_free(da);
	ck_assert_int_eq(al.live, 0);
	if (big == 2)
		ck_assert_int_gt(al.calls, 0);
	free(blob);
	ms_registry_free(sreg);
	ms_registry_free(dreg);
	dev_free(&src);
	dev_free(&dst);
}
END_TEST

/*
 * A save_state failing at the transition into STOP_AND_COPY fails that
 * transition, with the section named, and leaves the save in PRE_COPY
 * (or, from RUNNING or STOP, none): once the device recovers, the same
 * transition succeeds and the migration completes.
 */
START_TEST(test_vfio_user_final_state_fails)
{
	int api = _i + 1;
	struct dev_cfg c = {64 * 256, 256, 8, 300};
	struct dev src, dst;
	ms_registry *sreg, *dreg;
	ms_vfu_opts o = vfu_opts(api, 4 * KiB, 0, NULL, NULL);
	ms_vfu_adapter *sa, *da;

	dev_init_src(&src, &c, 191);
	dev_init_dst(&dst, &c);
	sreg = dev_registry(&src, 2, false, NULL);
	dreg = dev_registry(&dst, 2, false, NULL);
	ck_assert_int_eq(ms_vfu_adapter_new(&sa, sreg, &o), 0);
	ck_assert_int_eq(ms_vfu_adapter_new(&da, dreg, &o), 0);
	if (api == 2)
		ck_assert_int_eq(ms_vfu_transition(da, ST_STOP), 0);
	ck_assert_int_eq(ms_vfu_transition(da, ST_RES), 0);
	ck_assert_int_eq(ms_vfu_transition(sa, ST_PRE), 0);
	drain(api, sa, da);
	src.fail_state = ENOSPC;
	errno = 0;
	ck_assert_int_eq(ms_vfu_transition(sa, ST_SAC), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(ms_vfu_state(sa), ST_PRE);
	ck_assert_ptr_nonnull(strstr(ms_vfu_errmsg(sa), "offset 0x"));
	ck_assert_ptr_nonnull(strstr(ms_vfu_errmsg(sa),
				     "section 1 'regs': "
				     "save_state at the "
				     "transition into "
				     "STOP_AND_COPY failed"));
	src.fail_state = 0;
	ck_assert_int_eq(ms_vfu_transition(sa, ST_SAC), 0);
	drain(api, sa, da);
	ck_assert_int_eq(ms_vfu_transition(sa, ST_STOP), 0);
	ck_assert_msg(ms_vfu_transition(da, api == 1 ? ST_RUN : ST_STOP) == 0,
		      "%s", ms_vfu_errmsg(da));
	ck_assert(dev_equal(&src, &dst));
	/* From a state without a save, none is left behind. */
	src.fail_state = EIO;
	if (api == 2)
		ck_assert_int_eq(ms_vfu_transition(sa, ST_STOP), 0);
	else
		ck_assert_int_eq(ms_vfu_transition(sa, ST_RUN), 0);
	src.cleanups = 0;
	ck_assert_int_eq(ms_vfu_transition(sa, ST_SAC), -1);
	ck_assert_int_eq(errno, EIO);
	ck_assert_int_eq(ms_vfu_state(sa), api == 2 ? ST_STOP : ST_RUN);
	ck_assert_uint_eq(src.cleanups, 1);
	ms_vfu_adapter_free(sa);
	ms_vfu_adapter_free(da);
	ms_registry_free(sreg);
	ms_registry_free(dreg);
	dev_free(&src);
	dev_free(&dst);
}
END_TEST

/*
 * The log: called once per failing call, with its errno and the message
 * ms_vfu_errmsg() gives, for a refused call, an illegal transition, a
 * hook, a save error (reported by prepare_data in v1, not by the
 * pending-bytes read before it), a write outside the window, a load
 * error and a failed load's transition; never for a success.
 */
START_TEST(test_vfio_user_log_once)
{
	int api = _i + 1;
	struct dev_cfg c = {16 * 256, 256, 8, 300};
	struct dev src, dst;
	ms_registry *sreg, *dreg;
	ms_vfu_opts o = vfu_opts(api, 4 * KiB, 0, NULL, NULL);
	ms_vfu_adapter *sa, *da;
	struct hooks h;
	uint8_t buf[64] = {0};
	uint64_t off, size;
	unsigned logs;

#define LOGGED_ONCE(a, err)                                                    \
	do {                                                                   \
		ck_assert_uint_eq(h.logs, logs + 1);                           \
		ck_assert_int_eq(h.log_err, (err));                            \
		ck_assert_int_eq(errno, (err));                                \
		ck_assert_str_eq(h.log_msg, ms_vfu_errmsg(a));                 \
		logs = h.logs;                                                 \
	} while (0)

	memset(&h, 0, sizeof(h));
	h.from = h.to = (ms_vfu_migr_state)-1;
	dev_init_src(&src, &c, 201);
	dev_init_dst(&dst, &c);
	sreg = dev_registry(&src, 2, false, NULL);
	dreg = dev_registry(&dst, 2, false, NULL);
	o.log = hook_log;
	o.opaque = &h;
	o.lazy_final = true; /* save_state fails at a read */
	ck_assert_int_eq(ms_vfu_adapter_new(&sa, sreg, &o), 0);
	ck_assert_int_eq(ms_vfu_adapter_new(&da, dreg, &o), 0);
	logs = 0;
	/* A refused call; an illegal transition. */
	ck_assert_int_eq(ms_vfu_v2_read_data(sa, buf, 1), -1);
	LOGGED_ONCE(sa, EINVAL);
	ck_assert_int_eq(ms_vfu_transition(sa, (ms_vfu_migr_state)9), -1);
	LOGGED_ONCE(sa, EINVAL);
	if (api == 2) { /* v1 goes anywhere from RUNNING */
		ck_assert_int_eq(ms_vfu_transition(sa, ST_RES), -1);
		LOGGED_ONCE(sa, EINVAL);
	}
	/* A failing save_state: one log for the read that reports it. */
	src.fail_state = ENOSPC;
	ck_assert_int_eq(ms_vfu_transition(sa, ST_PRE), 0);
	ck_assert_int_eq(ms_vfu_transition(sa, ST_SAC), 0);
	if (api == 1) {
		while (ms_vfu_v1_get_pending_bytes(sa) &&
		       !ms_vfu_v1_prepare_data(sa, &off, &size))
			ck_assert_uint_eq(h.logs, logs);
		LOGGED_ONCE(sa, ENOSPC);
		ck_assert_int_eq(ms_vfu_v1_prepare_data(sa, &off, &size), -1);
		LOGGED_ONCE(sa, ENOSPC);
	} else {
		static uint8_t big[64 * KiB];

		while (ms_vfu_v2_read_data(sa, big, sizeof(big)) > 0)
			ck_assert_uint_eq(h.logs, logs);
		LOGGED_ONCE(sa, ENOSPC);
		ck_assert_int_eq(ms_vfu_v2_read_data(sa, big, 1), -1);
		LOGGED_ONCE(sa, ENOSPC);
	}
	ck_assert_int_eq(ms_vfu_transition(sa, ST_STOP), 0);
	ck_assert_uint_eq(h.logs, logs);
	/* The destination: a write outside the window (v1), a load error,
	 * the transition that finishes the failed load. */
	if (api == 2)
		ck_assert_int_eq(ms_vfu_transition(da, ST_STOP), 0);
	ck_assert_int_eq(ms_vfu_transition(da, ST_RES), 0);
	if (api == 1) {
		ck_assert_int_eq(ms_vfu_v1_write_data(da, buf, 8, 4 * KiB), -1);
		LOGGED_ONCE(da, EINVAL);
		ck_assert_int_eq(ms_vfu_v1_prepare_data(da, &off, NULL), 0);
		ck_assert_int_eq(ms_vfu_v1_write_data(da, buf, 64, off), 64);
		ck_assert_int_eq(ms_vfu_v1_data_written(da, 64), -1);
	} else {
		ck_assert_int_eq(ms_vfu_v2_write_data(da, buf, 64), -1);
	}
	ck_assert_int_ne(errno, 0);
	LOGGED_ONCE(da, errno);
	ck_assert_int_eq(ms_vfu_transition(da, api == 1 ? ST_RUN : ST_STOP),
			 -1);
	LOGGED_ONCE(da, errno);
	ck_assert_ptr_nonnull(strstr(h.log_msg, "offset 0x"));
#undef LOGGED_ONCE
	ms_vfu_adapter_free(sa);
	ms_vfu_adapter_free(da);
	ms_registry_free(sreg);
	ms_registry_free(dreg);
	dev_free(&src);
	dev_free(&dst);
}
END_TEST

/*
 * ms_vfu_opts.max_fed_bytes bounds the load: a section larger than it
 * (the registers' 20000-byte blob) is refused with EFBIG and a message
 * naming the option; the same state loads under the default.
 */
START_TEST(test_vfio_user_max_fed_bytes)
{
	int api = _i + 1;
	struct dev_cfg c = {16 * 256, 256, 8, 20000};
	struct dev src, dst;
	ms_registry *dreg;
	ms_vfu_opts o = vfu_opts(api, 4 * KiB, 0, NULL, NULL);
	ms_vfu_adapter *a;
	uint8_t *stream;
	size_t len, off, n;
	uint64_t doff;
	int ret = 0;

	dev_init_src(&src, &c, 211);
	dev_init_dst(&dst, &c);
	dreg = dev_registry(&dst, 2, false, NULL);
	stream = dev_save(&src, MS_PROFILE_NATIVE, &len);
	o.max_fed_bytes = 8 * KiB;
	ck_assert_int_eq(ms_vfu_adapter_new(&a, dreg, &o), 0);
	if (api == 2)
		ck_assert_int_eq(ms_vfu_transition(a, ST_STOP), 0);
	ck_assert_int_eq(ms_vfu_transition(a, ST_RES), 0);
	ck_assert_uint_eq(ms__vfu_max_fed(a),
			  8 * KiB + (api == 1 ? 4 * KiB : 0));
	for (off = 0; off < len && !ret; off += n) {
		n = len - off < 4 * KiB ? len - off : 4 * KiB;
		if (api == 2) {
			ret = ms_vfu_v2_write_data(a, stream + off, n) < 0;
			continue;
		}
		ck_assert_int_eq(ms_vfu_v1_prepare_data(a, &doff, NULL), 0);
		ret = ms_vfu_v1_write_data(a, stream + off, n, doff) < 0 ||
		      ms_vfu_v1_data_written(a, n) < 0;
	}
	ck_assert_int_eq(ret, 1);
	ck_assert_int_eq(errno, EFBIG);
	ck_assert_ptr_nonnull(
		strstr(ms_vfu_errmsg(a), "ms_vfu_opts.max_fed_bytes (8192"));
	ck_assert_ptr_nonnull(strstr(ms_vfu_errmsg(a), "a fed load holding"));
	ck_assert_int_eq(ms_vfu_transition(a, api == 1 ? ST_RUN : ST_STOP), -1);
	ck_assert_int_eq(errno, EFBIG);
	ms_vfu_adapter_free(a);
	/* The default takes it. */
	o.max_fed_bytes = 0;
	ck_assert_int_eq(ms_vfu_adapter_new(&a, dreg, &o), 0);
	if (api == 2)
		ck_assert_int_eq(ms_vfu_transition(a, ST_STOP), 0);
	ck_assert_int_eq(ms_vfu_transition(a, ST_RES), 0);
	write_stream(a, api, stream, len);
	ck_assert_int_eq(ms_vfu_transition(a, api == 1 ? ST_RUN : ST_STOP), 0);
	ck_assert(dev_equal(&src, &dst));
	ms_vfu_adapter_free(a);
	ms_registry_free(dreg);
	free(stream);
	dev_free(&src);
	dev_free(&dst);
}
END_TEST

/*
 * The generated callback tables, against the mock <libvfio-user.h>: the
 * test plays libvfio-user, whose vfu_ctx_t leads to the adapter.
 */
struct vfu_ctx {
	ms_vfu_adapter *adapter;
};

#define mock_adapter_of(ctx) ((ctx)->adapter)

#undef MOCK_VFU_API
#define MOCK_VFU_API 1
#include "mock/libvfio-user.h"
MS_VFU_DEFINE_CALLBACKS_V1(mock_cbs_v1, mock_adapter_of);
_Static_assert(VFU_MIGR_CALLBACKS_VERS == MS_VFU_MIGR_CALLBACKS_V1,
	       "v1 version");
#undef MOCK_VFU_API
#define MOCK_VFU_API 2
#include "mock/libvfio-user.h"
MS_VFU_DEFINE_CALLBACKS_V2(mock_cbs_v2, mock_adapter_of);
_Static_assert(VFU_MIGR_CALLBACKS_VERS == MS_VFU_MIGR_CALLBACKS_V2,
	       "v2 version");

_Static_assert((int)MS_VFU_MIGR_STATE_STOP == (int)VFU_MIGR_STATE_STOP, "STOP");
_Static_assert((int)MS_VFU_MIGR_STATE_RUNNING == (int)VFU_MIGR_STATE_RUNNING,
	       "RUNNING");
_Static_assert((int)MS_VFU_MIGR_STATE_STOP_AND_COPY ==
		       (int)VFU_MIGR_STATE_STOP_AND_COPY,
	       "STOP_AND_COPY");
_Static_assert((int)MS_VFU_MIGR_STATE_PRE_COPY == (int)VFU_MIGR_STATE_PRE_COPY,
	       "PRE_COPY");
_Static_assert((int)MS_VFU_MIGR_STATE_RESUME == (int)VFU_MIGR_STATE_RESUME,
	       "RESUME");

/* Moves what the source offers to the destination through a table. */
static void mock_v1_drain(const mock_vfu_migration_callbacks_v1_t *cb,
			  vfu_ctx_t *sctx, vfu_ctx_t *dctx)
{
	uint64_t off, size, doff;
	uint8_t *buf;

	while (cb->get_pending_bytes(sctx)) {
		ck_assert_int_eq(cb->prepare_data(sctx, &off, &size), 0);
		buf = malloc(size + 1);
		ck_assert_int_eq(cb->read_data(sctx, buf, size, off),
				 (ssize_t)size);
		ck_assert_int_eq(cb->prepare_data(dctx, &doff, NULL), 0);
		ck_assert_int_eq(cb->write_data(dctx, buf, size, doff),
				 (ssize_t)size);
		ck_assert_int_eq(cb->data_written(dctx, size), 0);
		free(buf);
	}
}

START_TEST(test_vfio_user_callbacks_v1)
{
	const mock_vfu_migration_callbacks_v1_t *cb = &mock_cbs_v1;
	struct dev_cfg c = {64 * 256, 256, 4, 3000};
	struct dev src, dst;
	ms_registry *sreg, *dreg;
	ms_vfu_opts o = vfu_opts(1, 4 * KiB, 0, NULL, NULL);
	struct vfu_ctx sctx, dctx;

	ck_assert_int_eq(cb->version, 1);
	dev_init_src(&src, &c, 121);
	dev_init_dst(&dst, &c);
	sreg = dev_registry(&src, 2, false, NULL);
	dreg = dev_registry(&dst, 2, false, NULL);
	ck_assert_int_eq(ms_vfu_adapter_new(&sctx.adapter, sreg, &o), 0);
	ck_assert_int_eq(ms_vfu_adapter_new(&dctx.adapter, dreg, &o), 0);
	ck_assert_int_eq(cb->transition(&dctx, VFU_MIGR_STATE_RESUME), 0);
	ck_assert_int_eq(cb->transition(&sctx, VFU_MIGR_STATE_PRE_COPY), 0);
	mock_v1_drain(cb, &sctx, &dctx);
	ck_assert_int_eq(cb->transition(&sctx, VFU_MIGR_STATE_STOP_AND_COPY),
			 0);
	mock_v1_drain(cb, &sctx, &dctx);
	ck_assert_int_eq(cb->transition(&sctx, VFU_MIGR_STATE_STOP), 0);
	ck_assert_int_eq(cb->transition(&dctx, VFU_MIGR_STATE_RUNNING), 0);
	ck_assert(dev_equal(&src, &dst));
	ck_assert_int_eq(cb->transition(&sctx, (vfu_migr_state_t)7), -1);
	ck_assert_int_eq(errno, EINVAL);
	ms_vfu_adapter_free(sctx.adapter);
	ms_vfu_adapter_free(dctx.adapter);
	ms_registry_free(sreg);
	ms_registry_free(dreg);
	dev_free(&src);
	dev_free(&dst);
}
END_TEST

START_TEST(test_vfio_user_callbacks_v2)
{
	const mock_vfu_migration_callbacks_v2_t *cb = &mock_cbs_v2;
	struct dev_cfg c = {64 * 256, 256, 4, 3000};
	struct dev src, dst;
	ms_registry *sreg, *dreg;
	struct vfu_ctx sctx, dctx;
	uint8_t buf[1000];
	ssize_t n;

	ck_assert_int_eq(cb->version, 2);
	dev_init_src(&src, &c, 131);
	dev_init_dst(&dst, &c);
	sreg = dev_registry(&src, 2, false, NULL);
	dreg = dev_registry(&dst, 2, false, NULL);
	ck_assert_int_eq(ms_vfu_adapter_new(&sctx.adapter, sreg, NULL), 0);
	ck_assert_int_eq(ms_vfu_adapter_new(&dctx.adapter, dreg, NULL), 0);
	ck_assert_int_eq(cb->transition(&dctx, VFU_MIGR_STATE_STOP), 0);
	ck_assert_int_eq(cb->transition(&dctx, VFU_MIGR_STATE_RESUME), 0);
	ck_assert_int_eq(cb->transition(&sctx, VFU_MIGR_STATE_PRE_COPY), 0);
	while ((n = cb->read_data(&sctx, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(cb->write_data(&dctx, buf, (uint64_t)n), n);
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(cb->transition(&sctx, VFU_MIGR_STATE_STOP_AND_COPY),
			 0);
	while ((n = cb->read_data(&sctx, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(cb->write_data(&dctx, buf, (uint64_t)n), n);
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(cb->transition(&sctx, VFU_MIGR_STATE_STOP), 0);
	ck_assert_int_eq(cb->transition(&dctx, VFU_MIGR_STATE_STOP), 0);
	ck_assert_int_eq(cb->transition(&dctx, VFU_MIGR_STATE_RUNNING), 0);
	ck_assert(dev_equal(&src, &dst));
	ms_vfu_adapter_free(sctx.adapter);
	ms_vfu_adapter_free(dctx.adapter);
	ms_registry_free(sreg);
	ms_registry_free(dreg);
	dev_free(&src);
	dev_free(&dst);
}
END_TEST

/*
 * Two migrations at once on two threads, each with its own adapters and
 * devices, one through v1 and one through v2 (then swapped): nothing is
 * shared, so both states arrive intact.
 */
struct worker {
	pthread_t t;
	struct mig m;
	ms_registry *sreg, *dreg;
	struct dev src, dst;
	int ret;
	bool equal;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;

	w->ret = migrate(&w->m, w->sreg, &w->src, w->dreg);
	w->equal = dev_equal(&w->src, &w->dst);
	return NULL;
}

START_TEST(test_vfio_user_two_threads)
{
	struct dev_cfg c = {under_valgrind() ? 1 * MiB : 8 * MiB, 4096, 16,
			    3000};
	struct worker w[2];
	int k, round;

	for (round = 0; round < 2; round++) {
		for (k = 0; k < 2; k++) {
			dev_init_src(&w[k].src, &c, 141 + (uint64_t)k);
			dev_init_dst(&w[k].dst, &c);
			w[k].sreg = dev_registry(&w[k].src, 2, false, NULL);
			w[k].dreg = dev_registry(&w[k].dst, 2, false, NULL);
			mig_init(&w[k].m, (k + round) % 2 + 1, 64 * KiB);
		}
		for (k = 0; k < 2; k++)
			ck_assert_int_eq(pthread_create(&w[k].t, NULL,
							worker_run, &w[k]),
					 0);
		for (k = 0; k < 2; k++)
			ck_assert_int_eq(pthread_join(w[k].t, NULL), 0);
		for (k = 0; k < 2; k++) {
			ck_assert_int_eq(w[k].ret, 0);
			ck_assert_msg(!w[k].m.save_ret && !w[k].m.load_ret &&
					      !w[k].m.done_ret,
				      "thread %d: %s", k, w[k].m.errmsg);
			ck_assert(w[k].equal);
			ms_registry_free(w[k].sreg);
			ms_registry_free(w[k].dreg);
			dev_free(&w[k].src);
			dev_free(&w[k].dst);
		}
	}
}
END_TEST

static Suite *vfio_user_suite(void)
{
	Suite *s = suite_create("vfio_user");
	TCase *tc;

	tc = tcase_create("transitions");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_vfio_user_v1_matrix);
	tcase_add_test(tc, test_vfio_user_v2_matrix);
	tcase_add_test(tc, test_vfio_user_v1_library_matrix);
	tcase_add_test(tc, test_vfio_user_v2_library_paths);
	tcase_add_test(tc, test_vfio_user_v1_register_access);
	tcase_add_test(tc, test_vfio_user_adapter_arguments);
	tcase_add_test(tc, test_vfio_user_load_limit);
	tcase_add_test(tc, test_vfio_user_v1_hole_is_zero);
	tcase_add_loop_test(tc, test_vfio_user_other_api_refused, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("round trips");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_vfio_user_roundtrip, 0, 24);
	tcase_add_loop_test(tc, test_vfio_user_roundtrip_large, 0, 6);
	tcase_add_loop_test(tc, test_vfio_user_patterns, 0, 7);
	tcase_add_loop_test(tc, test_vfio_user_qemu_profile, 0, 4);
	suite_add_tcase(s, tc);

	tc = tcase_create("memory");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_vfio_user_memory_bounded, 0, 4);
	suite_add_tcase(s, tc);

	tc = tcase_create("adapter pitfalls");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_vfio_user_read_past_window);
	tcase_add_loop_test(tc, test_vfio_user_free_midway, 0, 2);
	tcase_add_loop_test(tc, test_vfio_user_load_stops_at_error, 0, 4);
	tcase_add_test(tc, test_vfio_user_state_larger_than_window);
	tcase_add_loop_test(tc, test_vfio_user_resume_rounds, 0, 2);
	tcase_add_loop_test(tc, test_vfio_user_socket_buffer, 0, 5);
	tcase_add_loop_test(tc, test_vfio_user_errors_reach_client, 0, 2);
	tcase_add_loop_test(tc, test_vfio_user_precopy_is_iterative_only, 0, 2);
	tcase_add_loop_test(tc, test_vfio_user_migrate_after_cancel, 0, 4);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad input");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_vfio_user_bad_input, 0, 8);
	tcase_add_loop_test(tc, test_vfio_user_restart_failed_load, 0, 2);
	tcase_add_loop_test(tc, test_vfio_user_max_fed_bytes, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("hooks, final state and log");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_vfio_user_hook_failures, 0, 2);
	tcase_add_loop_test(tc, test_vfio_user_hook_retry_library, 0, 2);
	tcase_add_loop_test(tc, test_vfio_user_final_state_taken, 0, 12);
	tcase_add_loop_test(tc, test_vfio_user_final_state_fails, 0, 2);
	tcase_add_loop_test(tc, test_vfio_user_log_once, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("callback tables");
	tcase_add_test(tc, test_vfio_user_callbacks_v1);
	tcase_add_test(tc, test_vfio_user_callbacks_v2);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_vfio_user_two_threads);
	suite_add_tcase(s, tc);
	return s;
}

MS_TEST_MAIN(vfio_user_suite)
