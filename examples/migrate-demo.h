/* SPDX-License-Identifier: MIT */
/*
 * migrate-demo: a small emulator model that embeds libmigstream.a.  This
 * header is shared by the demo's command line (migrate-demo.c), its
 * machine and migration code (migrate-demo-machine.c) and the
 * demo-migrate benchmark case (bench/case-demo.c).
 */
#ifndef MIGRATE_DEMO_H
#define MIGRATE_DEMO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <migstream/migstream.h>

#define DEMO_PAGE	  4096u
#define DEMO_NREGS	  16
#define DEMO_NIC_RING	  64
#define DEMO_RAM_BLOCK	  "pc.ram"
#define DEMO_NIC_VERSION  2u /* version 2 added the MTU */
#define DEMO_DEFAULT_VDEV (1u << 20)
#define DEMO_DEFAULT_RATE 5000u /* guest page writes per second */
#define DEMO_MAX_ROUNDS	  30
#define DEMO_ACK_MAX	  512

/**
 * struct demo_cpu - The CPU: registers, with the FPU in a subsection.
 * @regs: general registers.
 * @pc: the guest's program counter: the number of steps it ran.  The
 *      destination replays that many steps to know what to expect.
 * @flags: a flags register.
 * @fpu: FPU registers, sent in the "cpu/fpu" subsection when not all 0.
 */
struct demo_cpu {
	uint64_t regs[DEMO_NREGS];
	uint64_t pc;
	uint32_t flags;
	uint64_t fpu[8];
};

/**
 * struct demo_timer - A periodic timer.
 * @expire_ns: next expiry.
 * @period_ns: period.
 * @fired: expiries so far.
 * @enabled: 0 or 1.
 */
struct demo_timer {
	uint64_t expire_ns;
	uint32_t period_ns;
	uint64_t fired;
	uint8_t enabled;
};

/**
 * struct demo_nic - A small network card.
 * @mac: its address.
 * @rx_head: receive ring index.
 * @tx_head: transmit ring index.
 * @rx_packets: packets received.
 * @ring: descriptor ring.
 * @mtu: version 2 and later; 1500 when loaded from version 1.
 */
struct demo_nic {
	uint8_t mac[6];
	uint32_t rx_head;
	uint32_t tx_head;
	uint64_t rx_packets;
	uint32_t ring[DEMO_NIC_RING];
	uint16_t mtu;
};

/**
 * struct demo_vdev - The device behind the vfio-user adapter.
 * @mem: device memory, iterative (sent in rounds while the guest runs).
 * @dirty: one flag per DEMO_PAGE block of @mem.
 * @nblocks: blocks in @mem.
 * @ndirty: dirty blocks.
 * @regs: registers, saved at stop-and-copy.
 * @reg: the device's own registry (vdev-mem, vdev-regs).
 * @adapter: the vfio-user adapter serving it.
 * @buf: a window's worth of bytes for read_data().
 */
struct demo_vdev {
	uint8_t *mem;
	uint8_t *dirty;
	size_t nblocks;
	size_t ndirty;
	uint32_t regs[DEMO_NREGS];
	ms_registry *reg;
	ms_vfu_adapter *adapter;
	uint8_t *buf;
};

/**
 * struct demo_config - How the machine is built.
 * @ram_size: bytes of RAM (a multiple of DEMO_PAGE).
 * @vdev_size: bytes of the vfio-user device's memory.
 * @seed: the initial contents and the guest's writes derive from it.
 * @zero_pct: percentage of RAM pages that start as zeros.
 * @rate: guest steps (page writes) per second; 0 for an idle guest.
 * @nic_version: the NIC version this build saves and loads.
 * @untouched_ram: a blank machine's RAM is left untouched (fresh
 *                 anonymous memory reads as zeros), as a destination for
 *                 an mmap-mode restore wants it: mapping over it then
 *                 frees no pages.
 */
struct demo_config {
	size_t ram_size;
	size_t vdev_size;
	uint64_t seed;
	unsigned zero_pct;
	unsigned rate;
	uint32_t nic_version;
	bool untouched_ram;
};

/**
 * struct demo_vm - The machine.
 * @cfg: how it was built.
 * @ram: guest RAM ("pc.ram"), fresh anonymous memory (mmap).
 * @npages: pages of RAM.
 * @ramh: the ms_ram that holds @ram as its one block: its dirty bitmap,
 *        its zero pages, its section handler ("ram").
 * @ram_index: @ram's block index in @ramh.
 * @rounds: precopy rounds of the current migration (stop-and-copy not
 *          counted).
 * @cpu: the CPU.
 * @timer: the timer.
 * @nic: the NIC.
 * @vdev: the vfio-user device.
 * @lock: taken by the guest for each step and by the migration while it
 *        reads device memory or device state; RAM needs no lock (its
 *        dirty bits are marked with ms_ram_mark_dirty() after each write).
 * @guest: the guest thread, while @running.
 * @running: whether the guest thread runs.
 * @stop: tells the guest thread to stop.
 * @verbose: print each round.
 */
struct demo_vm {
	struct demo_config cfg;
	uint8_t *ram;
	size_t npages;
	ms_ram *ramh;
	unsigned ram_index;
	unsigned rounds;
	struct demo_cpu cpu;
	struct demo_timer timer;
	struct demo_nic nic;
	struct demo_vdev vdev;
	pthread_mutex_t lock;
	pthread_t guest;
	bool running;
	atomic_bool stop;
	bool verbose;
};

int demo_vm_init(struct demo_vm *vm, const struct demo_config *cfg);
int demo_vm_init_blank(struct demo_vm *vm, const struct demo_config *cfg);
void demo_vm_free(struct demo_vm *vm);
void demo_vm_step(struct demo_vm *vm, uint64_t n);
int demo_guest_start(struct demo_vm *vm);
void demo_guest_stop(struct demo_vm *vm);
int demo_vm_registry(struct demo_vm *vm, ms_registry **out);
int demo_vm_compare(const struct demo_vm *got, const struct demo_vm *want,
		    char *why, size_t why_len);

/**
 * struct demo_save_opts - How the source migrates.
 * @profile: MS_PROFILE_NATIVE or MS_PROFILE_QEMU.
 * @compress: zlib level 1 on every native chunk.
 * @downtime_ms: the downtime target.
 * @max_rounds: precopy rounds before stop-and-copy is forced.
 * @wait_ack: read the destination's answer after the stream (TCP).
 * @chan_fds: @nchan connected sockets that carry the RAM pages beside
 *            the main stream (ms_ram_set_channels()); borrowed.
 * @nchan: 0 (pages in the main stream) to MS_RAM_MAX_CHANNELS.
 * @min_rounds: precopy rounds before stop-and-copy may start (0: any).
 * @mapped: @fd is a file open for reading and writing: save a mapped
 *          snapshot (ms_ram_mapped_save_begin(), native profile only).
 * @threads: writer threads of a mapped save (0 for 1).
 * @no_fsync: a mapped save skips its fsync() calls (benchmarks).
 * @kill_round: die by SIGKILL once this precopy round is sent, before
 *              stop-and-copy (0: never; crash tests).
 */
struct demo_save_opts {
	ms_profile profile;
	bool compress;
	unsigned downtime_ms;
	unsigned max_rounds;
	bool wait_ack;
	const int *chan_fds;
	unsigned nchan;
	unsigned min_rounds;
	bool mapped;
	unsigned threads;
	bool no_fsync;
	unsigned kill_round;
};

/**
 * struct demo_result - What a migration reports.
 * @bytes: stream bytes written (or read).
 * @total_s: seconds from the first byte to the end (to the destination's
 *           answer for TCP).
 * @downtime_s: seconds the guest was stopped, until the destination said
 *              it resumed (TCP) or until the stream was complete (file).
 * @restore_s: a mapped restore: seconds of ms_ram_mapped_restore().
 * @err_offset: stream offset reached when the migration failed.
 * @errmsg: why it failed.
 */
struct demo_result {
	uint64_t bytes;
	double total_s;
	double downtime_s;
	double restore_s;
	uint64_t err_offset;
	char errmsg[768];
};

/*
 * Settings of the destination's reader: a buffer that holds a whole
 * native DATA record, which the codec then checks and parses in place.
 */
extern const ms_stream_opts demo_read_opts;

int demo_save(struct demo_vm *vm, int fd, const struct demo_save_opts *o,
	      struct demo_result *res);
int demo_load(struct demo_vm *vm, ms_stream *in, const int *chan_fds,
	      unsigned nchan, struct demo_result *res);
int demo_load_mapped(struct demo_vm *vm, int fd, ms_ram_restore_mode mode,
		     unsigned threads, struct demo_result *res);
void demo_ram_stats(const struct demo_vm *vm, ms_ram_stats *st);
double demo_now(void);

#endif
