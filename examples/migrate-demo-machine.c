/* SPDX-License-Identifier: MIT */
/*
 * migrate-demo: the machine (RAM, a guest thread, a CPU, a timer, a NIC
 * and a device behind the vfio-user adapter), its section handlers, and
 * the save and load that migrate it.
 *
 * RAM is the library's: one block, "pc.ram", registered with an ms_ram,
 * which tracks its dirty pages (the guest marks them after each write),
 * finds its zero pages, writes and reads QEMU's "ram" grammar and, with
 * channels, spreads the pages over further sockets.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "migrate-demo.h"

/* Ends the block list of the vfio-user device's memory sections. */
#define VDEV_END 0xffffffffu
/* Largest chunk of vfio-user data framed into one record. */
#define VDEV_WINDOW MS_VFU_DEFAULT_WINDOW

const ms_stream_opts demo_read_opts = {
	.version = MS_STREAM_OPTS_VERSION,
	.buffer_size = 256u << 10,
};

/* The machine's sections, in registration (and save) order. */
static const char *const section_names[] = {"ram", "cpu", "timer", "nic",
					    "vfio-dev"};

/**
 * demo_now() - Monotonic time.
 *
 * Return: seconds since an arbitrary point.
 */
double demo_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/**
 * mix() - splitmix64: every value of the machine derives from the seed.
 */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/**
 * store_le64() - Little-endian store: RAM contents are the same on any host.
 */
static void store_le64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/**
 * fill_page() - Half random, half a counter: pages compress, not to 0.
 */
static void fill_page(uint8_t *p, uint64_t h)
{
	uint64_t x = h | 1;
	size_t i;

	for (i = DEMO_PAGE / 2; i < DEMO_PAGE; i += 8)
		store_le64(p + i, (h & 0xffff0000u) | i);
	for (i = 0; i < DEMO_PAGE / 2; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		store_le64(p + i, x);
	}
}

/**
 * alloc_pages() - Allocate page-aligned memory.
 * @bytes: how much.
 *
 * Return: the memory (free() it), or NULL.
 */
static void *alloc_pages(size_t bytes)
{
	void *p = NULL;

	if (posix_memalign(&p, DEMO_PAGE, bytes ? bytes : DEMO_PAGE))
		return NULL;
	return p;
}

/*
 * The vfio-user device's own handlers: "vdev-mem" (iterative) and
 * "vdev-regs".  The adapter calls them while it produces or loads the
 * device's state; the machine lock protects the memory from the guest.
 */

static int vdev_send(ms_stream *s, struct demo_vm *vm)
{
	struct demo_vdev *d = &vm->vdev;
	size_t i;

	pthread_mutex_lock(&vm->lock);
	for (i = 0; i < d->nblocks && d->ndirty; i++) {
		if (!d->dirty[i])
			continue;
		d->dirty[i] = 0;
		d->ndirty--;
		ms_put_be32(s, (uint32_t)i);
		ms_put_buffer(s, d->mem + i * DEMO_PAGE, DEMO_PAGE);
	}
	pthread_mutex_unlock(&vm->lock);
	ms_put_be32(s, VDEV_END);
	return ms_stream_error(s);
}

/**
 * vdev_mem_setup() - "vdev-mem" START: every block is dirty.
 * @opaque: the machine.
 * @s: the payload stream.
 *
 * Return: 0 or the stream's error.
 */
static int vdev_mem_setup(void *opaque, ms_stream *s)
{
	struct demo_vm *vm = opaque;

	pthread_mutex_lock(&vm->lock);
	memset(vm->vdev.dirty, 1, vm->vdev.nblocks);
	vm->vdev.ndirty = vm->vdev.nblocks;
	pthread_mutex_unlock(&vm->lock);
	return ms_put_be32(s, (uint32_t)vm->vdev.nblocks);
}

/**
 * vdev_mem_iterate() - "vdev-mem" PART: the dirty blocks.
 * @opaque: the machine.
 * @s: the payload stream.
 *
 * Return: 1 if blocks are dirty again, 0, or an error.
 */
static int vdev_mem_iterate(void *opaque, ms_stream *s)
{
	struct demo_vm *vm = opaque;
	int ret = vdev_send(s, vm);
	size_t left;

	pthread_mutex_lock(&vm->lock);
	left = vm->vdev.ndirty;
	pthread_mutex_unlock(&vm->lock);
	return ret ? ret : left > 0;
}

/**
 * vdev_mem_pending() - Bytes of dirty device memory.
 * @opaque: the machine.
 *
 * Return: the estimate.
 */
static uint64_t vdev_mem_pending(void *opaque)
{
	struct demo_vm *vm = opaque;
	uint64_t n;

	pthread_mutex_lock(&vm->lock);
	n = (uint64_t)vm->vdev.ndirty * DEMO_PAGE;
	pthread_mutex_unlock(&vm->lock);
	return n;
}

/**
 * vdev_mem_complete() - "vdev-mem" END: the last dirty blocks.
 * @opaque: the machine.
 * @s: the payload stream.
 *
 * Return: 0 or the stream's error.
 */
static int vdev_mem_complete(void *opaque, ms_stream *s)
{
	return vdev_send(s, opaque);
}

/**
 * vdev_mem_load() - Load a "vdev-mem" section.
 * @opaque: the machine.
 * @s: the payload stream.
 * @version_id: the section's version.
 * @type: its type.
 *
 * Return: 0 or a negative errno (@s failed with why).
 */
static int vdev_mem_load(void *opaque, ms_stream *s, uint32_t version_id,
			 uint8_t type)
{
	struct demo_vdev *d = &((struct demo_vm *)opaque)->vdev;
	uint32_t v;

	(void)version_id;
	if (type == MS_REC_START) {
		if (!ms_get_be32(s, &v) && v != d->nblocks)
			ms_stream_set_error(s, -EINVAL,
					    "device memory of %u blocks, this "
					    "device has %zu",
					    v, d->nblocks);
		return ms_stream_error(s);
	}
	while (!ms_get_be32(s, &v) && v != VDEV_END) {
		if (v >= d->nblocks)
			return ms_stream_set_error(
				s, -EINVAL,
				"device memory block %u, fewer than %zu "
				"expected",
				v, d->nblocks);
		ms_get_buffer(s, d->mem + (size_t)v * DEMO_PAGE, DEMO_PAGE);
	}
	return ms_stream_error(s);
}

/**
 * vdev_regs_save() - "vdev-regs": the device's registers.
 * @opaque: the machine.
 * @s: the payload stream.
 *
 * Return: 0 or the stream's error.
 */
static int vdev_regs_save(void *opaque, ms_stream *s)
{
	struct demo_vm *vm = opaque;

	return ms_put_be32_array(s, vm->vdev.regs, DEMO_NREGS);
}

/**
 * vdev_regs_load() - Load the device's registers.
 * @opaque: the machine.
 * @s: the payload stream.
 * @version_id: the section's version.
 * @type: its type.
 *
 * Return: 0 or the stream's error.
 */
static int vdev_regs_load(void *opaque, ms_stream *s, uint32_t version_id,
			  uint8_t type)
{
	struct demo_vm *vm = opaque;

	(void)version_id;
	(void)type;
	return ms_get_be32_array(s, vm->vdev.regs, DEMO_NREGS);
}

static const ms_handler_ops vdev_mem_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_setup = vdev_mem_setup,
	.save_iterate = vdev_mem_iterate,
	.pending = vdev_mem_pending,
	.save_complete = vdev_mem_complete,
	.load = vdev_mem_load,
};

static const ms_handler_ops vdev_regs_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_state = vdev_regs_save,
	.load = vdev_regs_load,
};

/*
 * The machine.
 */

static int vdev_init(struct demo_vm *vm, bool blank)
{
	struct demo_vdev *d = &vm->vdev;
	ms_vfu_opts vo = {.version = MS_VFU_OPTS_VERSION,
			  .api = MS_VFU_MIGR_CALLBACKS_V2};
	size_t i;
	int ret;

	d->nblocks = (vm->cfg.vdev_size + DEMO_PAGE - 1) / DEMO_PAGE;
	d->mem = alloc_pages(d->nblocks * DEMO_PAGE);
	d->dirty = calloc(d->nblocks + 1, 1);
	d->buf = malloc(VDEV_WINDOW);
	if (!d->mem || !d->dirty || !d->buf)
		return -ENOMEM;
	memset(d->mem, 0, d->nblocks * DEMO_PAGE);
	for (i = 0; !blank && i < d->nblocks; i++)
		fill_page(d->mem + i * DEMO_PAGE,
			  mix(vm->cfg.seed ^ 0xdef0 ^ (i << 20)));
	for (i = 0; !blank && i < DEMO_NREGS; i++)
		d->regs[i] = (uint32_t)mix(vm->cfg.seed * 11 + i);
	ret = ms_registry_new(&d->reg, NULL);
	if (ret)
		return ret;
	ret = ms_registry_add(d->reg, "vdev-mem", 0, 1, 1, &vdev_mem_ops, vm,
			      NULL);
	if (!ret)
		ret = ms_registry_add(d->reg, "vdev-regs", 0, 1, 1,
				      &vdev_regs_ops, vm, NULL);
	if (!ret)
		ret = ms_vfu_adapter_new(&d->adapter, d->reg, &vo);
	return ret;
}

/**
 * ram_init() - Map the machine's RAM and register it with a new ms_ram.
 * @vm: the machine, with @npages set.
 * @blank: a destination's machine: its RAM is fresh anonymous memory,
 *         all zeros, and the block says so (MS_RAM_BLOCK_ZEROED), so that
 *         a zero page for a page no record wrote is neither read nor
 *         written.
 *
 * Every page is touched now (written with zeros, which leaves fresh
 * memory as it was), not during the migration.
 *
 * Return: 0, -ENOMEM, or ms_ram's error after a message.
 */
static int ram_init(struct demo_vm *vm, bool blank)
{
	size_t bytes = vm->npages * DEMO_PAGE;
	ms_ram_block blk = {.version = MS_RAM_BLOCK_VERSION,
			    .idstr = DEMO_RAM_BLOCK,
			    .used_length = bytes,
			    .flags = blank ? MS_RAM_BLOCK_ZEROED : 0};
	void *p;
	int ret;

	p = mmap(NULL, bytes ? bytes : DEMO_PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	vm->ram = p;
	if (!blank || !vm->cfg.untouched_ram)
		memset(vm->ram, 0, bytes);
	blk.host = vm->ram;
	ret = ms_ram_new(&vm->ramh, NULL);
	if (!ret)
		ret = ms_ram_add_block(vm->ramh, &blk, &vm->ram_index);
	if (ret && vm->ramh)
		fprintf(stderr, "migrate-demo: RAM: %s\n",
			ms_ram_errmsg(vm->ramh));
	return ret;
}

/**
 * vm_init() - Build a machine.
 * @vm: the machine to fill.
 * @cfg: its configuration; copied.
 * @blank: a destination's machine, all zeros (@cfg->seed is still kept:
 *         the guest's writes derive from it); otherwise the source's,
 *         from the seed.
 *
 * Return: 0 or -ENOMEM (call demo_vm_free() either way).
 */
static int vm_init(struct demo_vm *vm, const struct demo_config *cfg,
		   bool blank)
{
	uint64_t s;
	size_t i;
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->cfg = *cfg;
	pthread_mutex_init(&vm->lock, NULL);
	atomic_init(&vm->stop, false);
	vm->npages = cfg->ram_size / DEMO_PAGE;
	ret = ram_init(vm, blank);
	if (ret)
		return ret;
	s = cfg->seed;
	for (i = 0; !blank && i < vm->npages; i++) {
		uint64_t h = mix(s ^ (i * 0x2545f4914f6cdd1dull));

		if (h % 100 >= cfg->zero_pct)
			fill_page(vm->ram + i * DEMO_PAGE, h);
	}
	if (!blank) {
		for (i = 0; i < DEMO_NREGS; i++)
			vm->cpu.regs[i] = mix(s + i);
		vm->cpu.flags = 0x202;
		for (i = 0; i < 4; i++)
			vm->cpu.fpu[i] = mix(s * 3 + i);
		vm->timer.expire_ns = 1000000;
		vm->timer.period_ns = 1000000 + (uint32_t)(s % 1000);
		vm->timer.enabled = 1;
		vm->nic.mac[0] = 0x52;
		vm->nic.mac[1] = 0x54;
		for (i = 2; i < 6; i++)
			vm->nic.mac[i] = (uint8_t)(s >> (8 * i));
		for (i = 0; i < DEMO_NIC_RING; i++)
			vm->nic.ring[i] = (uint32_t)mix(s * 7 + i);
		vm->nic.mtu = 1500;
	}
	return vdev_init(vm, blank);
}

/**
 * demo_vm_init() - Build a source's machine from its seed.
 * @vm: the machine to fill.
 * @cfg: its configuration; copied.
 *
 * Return: 0 or a negative errno (call demo_vm_free() either way).
 */
int demo_vm_init(struct demo_vm *vm, const struct demo_config *cfg)
{
	return vm_init(vm, cfg, false);
}

/**
 * demo_vm_init_blank() - Build a destination's machine: all zeros.
 * @vm: the machine to fill.
 * @cfg: its configuration; copied.
 *
 * Return: 0 or -ENOMEM (call demo_vm_free() either way).
 */
int demo_vm_init_blank(struct demo_vm *vm, const struct demo_config *cfg)
{
	return vm_init(vm, cfg, true);
}

/**
 * demo_vm_free() - Stop the guest and free a machine.
 * @vm: the machine (initialized or zeroed).
 */
void demo_vm_free(struct demo_vm *vm)
{
	demo_guest_stop(vm);
	ms_vfu_adapter_free(vm->vdev.adapter);
	ms_registry_free(vm->vdev.reg);
	free(vm->vdev.mem);
	free(vm->vdev.dirty);
	free(vm->vdev.buf);
	ms_ram_free(vm->ramh);
	if (vm->ram)
		munmap(vm->ram,
		       vm->npages ? vm->npages * DEMO_PAGE : DEMO_PAGE);
	pthread_mutex_destroy(&vm->lock);
	memset(vm, 0, sizeof(*vm));
}

/**
 * demo_vm_step() - Run @n guest steps (the caller holds the lock, or the
 *                  guest thread is not running; the lock is for the
 *                  devices: RAM needs none).
 * @vm: the machine.
 * @n: steps.
 *
 * Step k writes 64 bytes into one RAM page and updates every device, all
 * from the seed and k, so that a destination can replay the guest up to
 * the program counter it received and compare the result.
 */
void demo_vm_step(struct demo_vm *vm, uint64_t n)
{
	struct demo_vdev *d = &vm->vdev;

	while (n--) {
		uint64_t k = vm->cpu.pc;
		uint64_t h =
			mix(vm->cfg.seed ^ ((k + 1) * 0xd1342543de82ef95ull));
		size_t p = (size_t)(h % vm->npages), off, j;

		off = (size_t)((h >> 20) % (DEMO_PAGE / 64)) * 64;
		for (j = 0; j < 8; j++)
			store_le64(vm->ram + p * DEMO_PAGE + off + j * 8,
				   mix(h + j));
		/* After the write: see <migstream/ram.h>. */
		ms_ram_mark_dirty(vm->ramh, vm->ram_index,
				  (uint64_t)p * DEMO_PAGE + off, 64);
		vm->cpu.regs[k % DEMO_NREGS] += h;
		vm->cpu.flags ^= (uint32_t)(h & 0x1);
		if (k % 8 == 0)
			vm->cpu.fpu[(k / 8) % 8] = h;
		if (k % 50 == 0) {
			vm->timer.expire_ns += vm->timer.period_ns;
			vm->timer.fired++;
		}
		if (k % 3 == 0) {
			vm->nic.ring[vm->nic.rx_head] = (uint32_t)h;
			vm->nic.rx_head = (vm->nic.rx_head + 1) % DEMO_NIC_RING;
			vm->nic.rx_packets++;
		}
		vm->nic.tx_head = (uint32_t)(k % DEMO_NIC_RING);
		if (k % 4 == 0 && d->nblocks) {
			size_t b = (size_t)((h >> 8) % d->nblocks);

			store_le64(
				d->mem + b * DEMO_PAGE +
					(size_t)((h >> 40) % (DEMO_PAGE / 8)) *
						8,
				h);
			if (!d->dirty[b]) {
				d->dirty[b] = 1;
				d->ndirty++;
			}
			d->regs[k % DEMO_NREGS] ^= (uint32_t)h;
		}
		vm->cpu.pc = k + 1;
	}
}

/**
 * guest_main() - The guest thread: steps in bursts, about cfg.rate a second.
 * @opaque: the machine.
 *
 * Return: NULL.
 */
static void *guest_main(void *opaque)
{
	struct demo_vm *vm = opaque;
	unsigned rate = vm->cfg.rate;
	uint64_t burst = rate >= 1000 ? rate / 1000 : 1;
	struct timespec ts;
	uint64_t ns = 1000000000ull * burst / rate;

	ts.tv_sec = (time_t)(ns / 1000000000ull);
	ts.tv_nsec = (long)(ns % 1000000000ull);
	while (!atomic_load(&vm->stop)) {
		pthread_mutex_lock(&vm->lock);
		demo_vm_step(vm, burst);
		pthread_mutex_unlock(&vm->lock);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/**
 * demo_guest_start() - Start the guest thread (nothing for rate 0).
 * @vm: the machine.
 *
 * Return: 0 or a negative errno.
 */
int demo_guest_start(struct demo_vm *vm)
{
	int ret;

	if (vm->running || !vm->cfg.rate)
		return 0;
	atomic_store(&vm->stop, false);
	ret = pthread_create(&vm->guest, NULL, guest_main, vm);
	if (ret)
		return -ret;
	vm->running = true;
	return 0;
}

/**
 * demo_guest_stop() - Stop the guest thread and wait for it.
 * @vm: the machine.
 */
void demo_guest_stop(struct demo_vm *vm)
{
	if (!vm->running)
		return;
	atomic_store(&vm->stop, true);
	pthread_join(vm->guest, NULL);
	vm->running = false;
}

/*
 * CPU (version 1, subsection "cpu/fpu"), timer (1), NIC (1 or 2).
 */

static int cpu_save(void *opaque, ms_stream *s)
{
	struct demo_vm *vm = opaque;
	const struct demo_cpu *c = &vm->cpu;
	size_t i;

	ms_put_be64_array(s, c->regs, DEMO_NREGS);
	ms_put_be64(s, c->pc);
	ms_put_be32(s, c->flags);
	for (i = 0; i < 8 && !c->fpu[i]; i++)
		;
	if (i < 8) { /* only when the FPU was used, as QEMU's needed() */
		ms_put_subsection(s, "cpu/fpu", 1);
		ms_put_be64_array(s, c->fpu, 8);
	}
	return ms_stream_error(s);
}

/**
 * cpu_load() - Load the CPU and its optional "cpu/fpu" subsection.
 * @opaque: the machine.
 * @s: the payload stream.
 * @version_id: the section's version.
 * @type: its type.
 *
 * Return: 0 or a negative errno.
 */
static int cpu_load(void *opaque, ms_stream *s, uint32_t version_id,
		    uint8_t type)
{
	struct demo_vm *vm = opaque;
	struct demo_cpu *c = &vm->cpu;
	char name[MS_COUNTED_STRING_MAX + 1];
	uint32_t sub;
	int ret;

	(void)version_id;
	(void)type;
	ms_get_be64_array(s, c->regs, DEMO_NREGS);
	ms_get_be64(s, &c->pc);
	ms_get_be32(s, &c->flags);
	memset(c->fpu, 0, sizeof(c->fpu));
	while ((ret = ms_get_subsection(s, "cpu", name, &sub)) == 1) {
		if (strcmp(name, "cpu/fpu") || sub != 1)
			return ms_stream_set_error(
				s, -ENOTSUP,
				"subsection cpu/fpu version 1 expected, found "
				"%s version %u",
				name, sub);
		ms_get_be64_array(s, c->fpu, 8);
	}
	return ret < 0 ? ret : ms_stream_error(s);
}

/**
 * timer_save() - "timer": the timer's state.
 * @opaque: the machine.
 * @s: the payload stream.
 *
 * Return: 0 or the stream's error.
 */
static int timer_save(void *opaque, ms_stream *s)
{
	const struct demo_timer *t = &((struct demo_vm *)opaque)->timer;

	ms_put_be64(s, t->expire_ns);
	ms_put_be32(s, t->period_ns);
	ms_put_be64(s, t->fired);
	ms_put_u8(s, t->enabled);
	return ms_stream_error(s);
}

/**
 * timer_load() - Load and check the timer.
 * @opaque: the machine.
 * @s: the payload stream.
 * @version_id: the section's version.
 * @type: its type.
 *
 * Return: 0 or a negative errno.
 */
static int timer_load(void *opaque, ms_stream *s, uint32_t version_id,
		      uint8_t type)
{
	struct demo_timer *t = &((struct demo_vm *)opaque)->timer;

	(void)version_id;
	(void)type;
	ms_get_be64(s, &t->expire_ns);
	ms_get_be32(s, &t->period_ns);
	ms_get_be64(s, &t->fired);
	ms_get_u8(s, &t->enabled);
	if (!ms_stream_error(s) && (t->period_ns == 0 || t->enabled > 1))
		ms_stream_set_error(s, -EINVAL,
				    "timer period > 0 and enabled 0 or 1 "
				    "expected, found period %u, enabled %u",
				    t->period_ns, t->enabled);
	return ms_stream_error(s);
}

/**
 * nic_save() - "nic": the NIC, in the version this build saves.
 * @opaque: the machine.
 * @s: the payload stream.
 *
 * Return: 0 or the stream's error.
 */
static int nic_save(void *opaque, ms_stream *s)
{
	struct demo_vm *vm = opaque;
	const struct demo_nic *n = &vm->nic;

	ms_put_buffer(s, n->mac, sizeof(n->mac));
	ms_put_be32(s, n->rx_head);
	ms_put_be32(s, n->tx_head);
	ms_put_be64(s, n->rx_packets);
	ms_put_be32_array(s, n->ring, DEMO_NIC_RING);
	if (vm->cfg.nic_version >= 2)
		ms_put_be16(s, n->mtu);
	return ms_stream_error(s);
}

/**
 * nic_load() - Load the NIC: version 1 has no MTU.
 * @opaque: the machine.
 * @s: the payload stream.
 * @version_id: the section's version (1 or 2).
 * @type: its type.
 *
 * Return: 0 or a negative errno.
 */
static int nic_load(void *opaque, ms_stream *s, uint32_t version_id,
		    uint8_t type)
{
	struct demo_nic *n = &((struct demo_vm *)opaque)->nic;

	(void)type;
	ms_get_buffer(s, n->mac, sizeof(n->mac));
	ms_get_be32(s, &n->rx_head);
	ms_get_be32(s, &n->tx_head);
	ms_get_be64(s, &n->rx_packets);
	ms_get_be32_array(s, n->ring, DEMO_NIC_RING);
	n->mtu = 1500; /* version 1 had no MTU */
	if (version_id >= 2)
		ms_get_be16(s, &n->mtu);
	if (!ms_stream_error(s) &&
	    (n->rx_head >= DEMO_NIC_RING || n->tx_head >= DEMO_NIC_RING))
		ms_stream_set_error(s, -EINVAL,
				    "NIC ring indices below %u expected, "
				    "found rx %u, tx %u",
				    DEMO_NIC_RING, n->rx_head, n->tx_head);
	return ms_stream_error(s);
}

/*
 * The vfio-user device, seen from the machine: its state is read out of
 * the adapter's window (read_data) and framed into the section as
 * (be32 length, bytes) chunks ended by a 0 length; the destination
 * writes the chunks into its adapter (write_data).
 */

static int vfio_fail(ms_stream *s, struct demo_vm *vm, const char *what)
{
	int err = errno ? -errno : -EIO;

	return ms_stream_set_error(s, err, "vfio-user device: %s: %s", what,
				   ms_vfu_errmsg(vm->vdev.adapter));
}

/**
 * vfio_drain() - Read what the adapter has for now and frame it.
 */
static int vfio_drain(ms_stream *s, struct demo_vm *vm)
{
	struct demo_vdev *d = &vm->vdev;
	ssize_t n;

	while ((n = ms_vfu_v2_read_data(d->adapter, d->buf, VDEV_WINDOW)) > 0) {
		ms_put_be32(s, (uint32_t)n);
		ms_put_buffer(s, d->buf, (size_t)n);
	}
	if (n < 0)
		return vfio_fail(s, vm, "read_data");
	ms_put_be32(s, 0);
	return ms_stream_error(s);
}

/**
 * vfio_save_setup() - "vfio-dev" START: the adapter enters PRE_COPY.
 * @opaque: the machine.
 * @s: the payload stream.
 *
 * Return: 0 or a negative errno.
 */
static int vfio_save_setup(void *opaque, ms_stream *s)
{
	struct demo_vm *vm = opaque;

	errno = 0;
	/* After a migration the device is stopped: it runs again first. */
	if (ms_vfu_state(vm->vdev.adapter) == MS_VFU_MIGR_STATE_STOP &&
	    ms_vfu_transition(vm->vdev.adapter, MS_VFU_MIGR_STATE_RUNNING))
		return vfio_fail(s, vm, "transition to RUNNING");
	if (ms_vfu_transition(vm->vdev.adapter, MS_VFU_MIGR_STATE_PRE_COPY))
		return vfio_fail(s, vm, "transition to PRE_COPY");
	return vfio_drain(s, vm);
}

/**
 * vfio_save_iterate() - "vfio-dev" PART: what the adapter has for now.
 * @opaque: the machine.
 * @s: the payload stream.
 *
 * Return: 1 if the device has dirty memory again, 0, or an error.
 */
static int vfio_save_iterate(void *opaque, ms_stream *s)
{
	struct demo_vm *vm = opaque;
	int ret = vfio_drain(s, vm);

	return ret ? ret : vdev_mem_pending(vm) > 0;
}

/**
 * vfio_pending() - Bytes the vfio-user device still has to send.
 * @opaque: the machine.
 *
 * Return: the estimate.
 */
static uint64_t vfio_pending(void *opaque)
{
	return vdev_mem_pending(opaque);
}

/**
 * vfio_save_complete() - "vfio-dev" END: STOP_AND_COPY, the rest, STOP.
 * @opaque: the machine.
 * @s: the payload stream.
 *
 * Return: 0 or a negative errno.
 */
static int vfio_save_complete(void *opaque, ms_stream *s)
{
	struct demo_vm *vm = opaque;
	ms_vfu_adapter *a = vm->vdev.adapter;

	errno = 0;
	if (ms_vfu_transition(a, MS_VFU_MIGR_STATE_STOP_AND_COPY))
		return vfio_fail(s, vm, "transition to STOP_AND_COPY");
	if (vfio_drain(s, vm))
		return ms_stream_error(s);
	if (ms_vfu_transition(a, MS_VFU_MIGR_STATE_STOP))
		return vfio_fail(s, vm, "transition to STOP");
	return 0;
}

/**
 * vfio_load() - Load a "vfio-dev" section through the adapter (RESUME).
 * @opaque: the machine.
 * @s: the payload stream.
 * @version_id: the section's version.
 * @type: START starts the device's load, END completes it.
 *
 * Return: 0 or a negative errno (@s failed with the adapter's message).
 */
static int vfio_load(void *opaque, ms_stream *s, uint32_t version_id,
		     uint8_t type)
{
	struct demo_vm *vm = opaque;
	struct demo_vdev *d = &vm->vdev;
	uint32_t n;

	(void)version_id;
	errno = 0;
	if (type == MS_REC_START || type == MS_REC_FULL) {
		/* libvfio-user v2: RUNNING -> STOP -> RESUMING. */
		if ((ms_vfu_state(d->adapter) != MS_VFU_MIGR_STATE_STOP &&
		     ms_vfu_transition(d->adapter, MS_VFU_MIGR_STATE_STOP)) ||
		    ms_vfu_transition(d->adapter, MS_VFU_MIGR_STATE_RESUME))
			return vfio_fail(s, vm, "transition to RESUME");
	}
	while (!ms_get_be32(s, &n) && n) {
		if (n > VDEV_WINDOW)
			return ms_stream_set_error(
				s, -EBADMSG,
				"vfio-user chunk of at most %u bytes "
				"expected, found %u",
				VDEV_WINDOW, n);
		if (ms_get_buffer(s, d->buf, n))
			break;
		if (ms_vfu_v2_write_data(d->adapter, d->buf, n) != (ssize_t)n)
			return vfio_fail(s, vm, "write_data");
	}
	if (ms_stream_error(s))
		return ms_stream_error(s);
	if (type == MS_REC_END || type == MS_REC_FULL) {
		/* Leaving RESUMING completes the device's load. */
		if (ms_vfu_transition(d->adapter, MS_VFU_MIGR_STATE_STOP))
			return vfio_fail(s, vm, "device state");
		if (ms_vfu_transition(d->adapter, MS_VFU_MIGR_STATE_RUNNING))
			return vfio_fail(s, vm, "transition to RUNNING");
	}
	return 0;
}

static const ms_handler_ops cpu_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_state = cpu_save,
	.load = cpu_load,
};

static const ms_handler_ops timer_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_state = timer_save,
	.load = timer_load,
};

static const ms_handler_ops nic_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_state = nic_save,
	.load = nic_load,
};

static const ms_handler_ops vfio_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_setup = vfio_save_setup,
	.save_iterate = vfio_save_iterate,
	.pending = vfio_pending,
	.save_complete = vfio_save_complete,
	.load = vfio_load,
};

/**
 * demo_vm_registry() - Register the machine's section handlers.
 * @vm: the machine, passed to every handler.
 * @out: receives the registry, which the caller frees.
 *
 * "ram" is ms_ram's handler, section 0; the devices follow.
 *
 * Return: 0 or a negative errno.
 */
int demo_vm_registry(struct demo_vm *vm, ms_registry **out)
{
	static const ms_handler_ops *const ops[] = {&cpu_ops, &timer_ops,
						    &nic_ops, &vfio_ops};
	ms_registry *reg;
	uint32_t version;
	size_t i;
	int ret;

	ret = ms_registry_new(&reg, NULL);
	if (ret)
		return ret;
	ret = ms_ram_register(vm->ramh, reg, NULL);
	for (i = 0; !ret && i < sizeof(ops) / sizeof(ops[0]); i++) {
		version = ops[i] == &nic_ops ? vm->cfg.nic_version : 1;
		ret = ms_registry_add(reg, section_names[i + 1], 0, version, 1,
				      ops[i], vm, NULL);
	}
	if (ret) {
		ms_registry_free(reg);
		return ret;
	}
	*out = reg;
	return 0;
}

#define DIFF(what, cond)                                                       \
	do {                                                                   \
		if (cond) {                                                    \
			snprintf(why, why_len, "%s differs", what);            \
			return -1;                                             \
		}                                                              \
	} while (0)

/**
 * demo_vm_compare() - Compare every byte of RAM and every device field.
 * @got: the machine as loaded.
 * @want: the machine as expected.
 * @why: receives what differs first.
 * @why_len: room in @why.
 *
 * Return: 0 when identical, -1 otherwise.
 */
int demo_vm_compare(const struct demo_vm *got, const struct demo_vm *want,
		    char *why, size_t why_len)
{
	const struct demo_cpu *a = &got->cpu, *b = &want->cpu;
	const struct demo_nic *n = &got->nic, *m = &want->nic;
	size_t i;

	DIFF("RAM size", got->npages != want->npages);
	for (i = 0; i < got->npages; i++) {
		if (memcmp(got->ram + i * DEMO_PAGE, want->ram + i * DEMO_PAGE,
			   DEMO_PAGE)) {
			snprintf(why, why_len, "RAM page %zu differs", i);
			return -1;
		}
	}
	DIFF("cpu.regs", memcmp(a->regs, b->regs, sizeof(a->regs)));
	DIFF("cpu.pc", a->pc != b->pc);
	DIFF("cpu.flags", a->flags != b->flags);
	DIFF("cpu/fpu", memcmp(a->fpu, b->fpu, sizeof(a->fpu)));
	DIFF("timer.expire_ns", got->timer.expire_ns != want->timer.expire_ns);
	DIFF("timer.period_ns", got->timer.period_ns != want->timer.period_ns);
	DIFF("timer.fired", got->timer.fired != want->timer.fired);
	DIFF("timer.enabled", got->timer.enabled != want->timer.enabled);
	DIFF("nic.mac", memcmp(n->mac, m->mac, sizeof(n->mac)));
	DIFF("nic.rx_head", n->rx_head != m->rx_head);
	DIFF("nic.tx_head", n->tx_head != m->tx_head);
	DIFF("nic.rx_packets", n->rx_packets != m->rx_packets);
	DIFF("nic.ring", memcmp(n->ring, m->ring, sizeof(n->ring)));
	DIFF("nic.mtu", n->mtu != m->mtu);
	DIFF("vfio-user device memory size",
	     got->vdev.nblocks != want->vdev.nblocks);
	DIFF("vfio-user device memory", memcmp(got->vdev.mem, want->vdev.mem,
					       got->vdev.nblocks * DEMO_PAGE));
	DIFF("vfio-user device registers",
	     memcmp(got->vdev.regs, want->vdev.regs, sizeof(got->vdev.regs)));
	return 0;
}

/*
 * Save and load.
 */

/**
 * demo_ram_stats() - The RAM counters of the current or last migration.
 * @vm: the machine.
 * @st: receives ms_ram's counters.
 */
void demo_ram_stats(const struct demo_vm *vm, ms_ram_stats *st)
{
	ms_ram_get_stats(vm->ramh, st);
}

/* The line of one precopy round; @before: the counters before it. */
static void round_line(const struct demo_vm *vm, unsigned round,
		       const ms_ram_stats *before, uint64_t bytes, double secs)
{
	ms_ram_stats st;

	/* From the totals: a round in which RAM had nothing dirty does not
	 * run the handler, so its per-round counters are the last run's. */
	ms_ram_get_stats(vm->ramh, &st);
	printf("  round %u: %llu pages sent (%llu zero), %.1f MiB in %.3f s "
	       "(%.0f MB/s), %llu dirty pages left\n",
	       round, (unsigned long long)(st.pages - before->pages),
	       (unsigned long long)(st.zero_pages - before->zero_pages),
	       (double)bytes / (1 << 20), secs,
	       secs > 0 ? (double)bytes / secs / 1e6 : 0.0,
	       (unsigned long long)ms_ram_dirty_pages(vm->ramh));
	fflush(stdout);
}

/**
 * sent_bytes() - Bytes a migration has moved so far.
 * @vm: the machine.
 * @s: the main stream.
 * @nchan: channels beside it.
 *
 * Return: the main stream's bytes, plus, with channels, the page bytes
 * ms_ram sent on them.
 */
static uint64_t sent_bytes(const struct demo_vm *vm, ms_stream *s,
			   unsigned nchan)
{
	ms_ram_stats st;

	if (!nchan)
		return ms_stream_tell(s);
	ms_ram_get_stats(vm->ramh, &st);
	return ms_stream_tell(s) + st.bytes;
}

/**
 * read_ack() - The destination's answer: "OK" or "ERR message", one line.
 */
static int read_ack(int fd, char *msg, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got + 1 < len) {
		n = read(fd, msg + got, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0 || msg[got] == '\n')
			break;
		got++;
	}
	msg[got] = '\0';
	if (!strcmp(msg, "OK"))
		return 0;
	return got ? -EPROTO : -ECONNRESET;
}

/**
 * mapped_begin() - Start a mapped save into a file.
 * @vm: the machine.
 * @fd: the file, open for reading and writing.
 * @o: the save's settings (@o->threads, @o->no_fsync).
 * @s: receives the device stream (the ms_ram's: not to be closed).
 * @res: receives the message on failure.
 *
 * Return: 0 or a negative errno.
 */
static int mapped_begin(struct demo_vm *vm, int fd,
			const struct demo_save_opts *o, ms_stream **s,
			struct demo_result *res)
{
	ms_ram_mapped_opts mo = {.version = MS_RAM_MAPPED_OPTS_VERSION,
				 .threads = o->threads,
				 .no_fsync = o->no_fsync};
	int ret;

	if (o->profile != MS_PROFILE_NATIVE || o->nchan) {
		snprintf(res->errmsg, sizeof(res->errmsg),
			 "a mapped snapshot needs the native profile and no "
			 "channels");
		return -EINVAL;
	}
	ret = ms_ram_mapped_save_begin(vm->ramh, fd, &mo, s);
	if (ret)
		snprintf(res->errmsg, sizeof(res->errmsg), "mapped save: %s",
			 ms_ram_errmsg(vm->ramh));
	return ret;
}

/**
 * demo_save() - Migrate the machine into @fd.
 * @vm: the machine; its guest runs during precopy (started by the caller)
 *      and is stopped for stop-and-copy.
 * @fd: a connected socket or a file open for writing; not closed.
 * @o: how.
 * @res: receives the figures, or the error and the offset reached.
 *
 * On failure the guest is running again when this returns (if it was
 * running at the start) and the vfio-user device is back in RUNNING.
 *
 * Return: 0 or a negative errno.
 */
int demo_save(struct demo_vm *vm, int fd, const struct demo_save_opts *o,
	      struct demo_result *res)
{
	ms_stream_opts so = {.version = MS_STREAM_OPTS_VERSION};
	ms_codec_opts codec = {.version = MS_CODEC_OPTS_VERSION};
	ms_save_opts sv_opts = {.version = MS_SAVE_OPTS_VERSION,
				.codec = &codec,
				.machine = "migstream-demo"};
	bool was_running = vm->running;
	ms_registry *reg = NULL;
	ms_stream *s = NULL;
	ms_save *sv = NULL;
	double t0, tr, td = 0, bw;
	uint64_t b0, pending;
	ms_ram_stats st0;
	/* Page bytes that do not go through the main stream. */
	unsigned pages_aside = o->nchan + o->mapped;
	char ack[DEMO_ACK_MAX];
	int ret, more, cret;

	memset(res, 0, sizeof(*res));
	vm->rounds = 0;
	codec.profile = o->profile;
	codec.compress_level = o->compress ? 1 : 0;
	/* The channels are written as the main stream is (each is a stream
	 * of its own); they serve this save only. */
	ret = ms_ram_set_channels(vm->ramh, o->chan_fds, o->nchan, &codec);
	if (ret) {
		snprintf(res->errmsg, sizeof(res->errmsg), "channels: %s",
			 ms_ram_errmsg(vm->ramh));
		goto out;
	}
	ret = demo_vm_registry(vm, &reg);
	if (!ret && o->mapped)
		ret = mapped_begin(vm, fd, o, &s, res);
	else if (!ret)
		ret = ms_stream_new_fd(&s, fd, MS_STREAM_WRITER, 0, &so);
	if (ret && *res->errmsg)
		goto out;
	if (!ret)
		ret = ms_save_new(&sv, reg, s, &sv_opts);
	if (ret) {
		snprintf(res->errmsg, sizeof(res->errmsg), "setup: %s",
			 ms_strerror(ret));
		goto out;
	}

	t0 = demo_now();
	ret = ms_save_setup(sv);
	/* A round that leaves nothing dirty ends precopy, unless fewer
	 * than --min-rounds have run: the guest may dirty more meanwhile,
	 * and the next round sends it. */
	for (more = 1; !ret && (more || vm->rounds < o->min_rounds);) {
		tr = demo_now();
		b0 = sent_bytes(vm, s, pages_aside);
		ms_ram_get_stats(vm->ramh, &st0);
		more = ms_save_iterate(sv);
		if (more < 0) {
			ret = more;
			break;
		}
		vm->rounds++;
		tr = demo_now() - tr;
		b0 = sent_bytes(vm, s, pages_aside) - b0;
		bw = (double)b0 / (tr > 1e-6 ? tr : 1e-6);
		pending = ms_save_pending(sv);
		if (vm->verbose)
			round_line(vm, vm->rounds, &st0, b0, tr);
		if (vm->rounds == o->kill_round) {
			fprintf(stderr,
				"migrate-demo: --kill-in-round %u: killing "
				"the source\n",
				o->kill_round);
			raise(SIGKILL);
		}
		/* Stop when what is left fits in the downtime at the
		 * throughput of the last round. */
		if (((double)pending <= bw * o->downtime_ms / 1e3 &&
		     vm->rounds >= o->min_rounds) ||
		    vm->rounds >= o->max_rounds)
			break;
	}
	if (!ret) {
		demo_guest_stop(vm);
		td = demo_now();
		ret = ms_save_complete(sv);
	}
	if (!o->mapped) {
		cret = ms_stream_flush(s);
		if (!ret)
			ret = cret;
	}
	res->bytes = sent_bytes(vm, s, pages_aside);
	if (ret) {
		int serr = ms_stream_error(s);

		res->err_offset =
			serr ? ms_stream_error_offset(s) : ms_stream_tell(s);
		snprintf(res->errmsg, sizeof(res->errmsg), "%s",
			 *ms_save_errmsg(sv) ? ms_save_errmsg(sv)
					     : ms_stream_errmsg(s));
		goto out;
	}
	if (o->mapped) {
		/* The bitmaps and checksums, then the COMPLETE mark. */
		ret = ms_ram_mapped_save_commit(vm->ramh);
		if (ret) {
			snprintf(res->errmsg, sizeof(res->errmsg), "%s",
				 ms_ram_errmsg(vm->ramh));
			goto out;
		}
	}
	if (o->wait_ack) {
		/* The stream is complete: tell the destination, then wait
		 * for it to say it loaded everything and resumed. */
		shutdown(fd, SHUT_WR);
		ret = read_ack(fd, ack, sizeof(ack));
		if (ret) {
			res->err_offset = ms_stream_tell(s);
			snprintf(res->errmsg, sizeof(res->errmsg),
				 "offset %llu: the destination %s%s",
				 (unsigned long long)res->err_offset,
				 ret == -ECONNRESET
					 ? "closed the connection without "
					   "an answer"
					 : "refused the migration: ",
				 ret == -ECONNRESET	    ? ""
				 : !strncmp(ack, "ERR ", 4) ? ack + 4
							    : ack);
			goto out;
		}
	}
	res->downtime_s = demo_now() - td;
	res->total_s = demo_now() - t0;
out:
	ms_save_free(sv);
	/* A mapped save's stream is the ms_ram's. */
	cret = o->mapped ? 0 : ms_stream_close(s);
	if (!ret && cret)
		ret = cret;
	ms_registry_free(reg);
	if (ret) {
		/* The migration failed: the machine goes on here. */
		if (ms_vfu_state(vm->vdev.adapter) != MS_VFU_MIGR_STATE_RUNNING)
			ms_vfu_transition(vm->vdev.adapter,
					  MS_VFU_MIGR_STATE_RUNNING);
		if (was_running)
			demo_guest_start(vm);
	}
	return ret;
}

/**
 * demo_load() - Load a machine from @in.
 * @vm: a blank machine.
 * @in: the stream; not closed.
 * @chan_fds: @nchan connected sockets, channel i of the source's on
 *            @chan_fds[i]; borrowed.
 * @nchan: the channels the source must use (ms_ram refuses another
 *         number), 0 for none.
 * @res: receives the figures, or the error and its offset.
 *
 * The load succeeds only when ms_ram_load_check() says RAM is whole.
 *
 * Return: 0 or a negative errno.
 */
static int load_run(struct demo_vm *vm, ms_stream *in, unsigned nchan,
		    double t0, struct demo_result *res);

int demo_load(struct demo_vm *vm, ms_stream *in, const int *chan_fds,
	      unsigned nchan, struct demo_result *res)
{
	double t0 = demo_now();
	int ret;

	memset(res, 0, sizeof(*res));
	ret = ms_ram_set_channels(vm->ramh, chan_fds, nchan, NULL);
	if (ret) {
		snprintf(res->errmsg, sizeof(res->errmsg), "channels: %s",
			 ms_ram_errmsg(vm->ramh));
		return ret;
	}
	return load_run(vm, in, nchan, t0, res);
}

/**
 * load_run() - Load the device state (and the pages it carries) from @in.
 * @vm: the machine, its RAM's channels or mapped restore set up.
 * @in: the stream; not closed.
 * @nchan: the channels beside @in.
 * @t0: when the load started (demo_now()).
 * @res: receives the figures, or the error and its offset.
 *
 * Return: 0 or a negative errno.
 */
static int load_run(struct demo_vm *vm, ms_stream *in, unsigned nchan,
		    double t0, struct demo_result *res)
{
	ms_registry *reg = NULL;
	ms_load *ld = NULL;
	int ret;

	ret = demo_vm_registry(vm, &reg);
	if (!ret)
		ret = ms_load_new(&ld, reg, NULL);
	if (ret) {
		snprintf(res->errmsg, sizeof(res->errmsg), "setup: %s",
			 ms_strerror(ret));
		goto out;
	}
	ret = ms_load_run(ld, in);
	res->bytes = ms_stream_tell(in);
	res->total_s = demo_now() - t0;
	if (ret) {
		res->err_offset = ms_load_error_offset(ld);
		snprintf(res->errmsg, sizeof(res->errmsg), "%s",
			 ms_load_errmsg(ld));
	} else if ((ret = ms_ram_load_check(vm->ramh)) != 0) {
		res->err_offset = res->bytes;
		snprintf(res->errmsg, sizeof(res->errmsg), "offset 0x%llx: %s",
			 (unsigned long long)res->bytes,
			 ms_ram_errmsg(vm->ramh));
	} else {
		ms_ram_stats st;

		ms_ram_get_stats(vm->ramh, &st);
		if (nchan)
			res->bytes += st.bytes;
	}
out:
	ms_load_free(ld);
	ms_registry_free(reg);
	return ret;
}

/**
 * demo_load_mapped() - Restore a machine from a mapped snapshot file.
 * @vm: a blank machine (its RAM mmap(2)'d, as ram_init() makes it).
 * @fd: the file, open for reading; not closed.
 * @mode: map the pages in, or read them and check their CRCs.
 * @threads: reader threads of a read-mode restore (0 for 1).
 * @res: receives the figures (@res->total_s: from the call to the end of
 *       the device load, when the guest may run), or the error.
 *
 * The load succeeds only when ms_ram_load_check() says RAM is whole.
 *
 * Return: 0 or a negative errno.
 */
int demo_load_mapped(struct demo_vm *vm, int fd, ms_ram_restore_mode mode,
		     unsigned threads, struct demo_result *res)
{
	ms_ram_mapped_opts mo = {.version = MS_RAM_MAPPED_OPTS_VERSION,
				 .threads = threads,
				 .mode = mode};
	double t0 = demo_now();
	ms_stream *in = NULL;
	int ret;

	memset(res, 0, sizeof(*res));
	ret = ms_ram_mapped_restore(vm->ramh, fd, &mo, &in);
	res->restore_s = demo_now() - t0;
	if (ret) {
		snprintf(res->errmsg, sizeof(res->errmsg), "%s",
			 ms_ram_errmsg(vm->ramh));
		return ret;
	}
	/* The device stream is the ms_ram's: not closed here. */
	return load_run(vm, in, 0, t0, res);
}
