/* SPDX-License-Identifier: MIT */
/*
 * mapped-lib: the library's side of the differential test of mapped
 * snapshot files (check-mapped-lib.sh), against migstream-dump's own
 * reader and writer (tools/dump-mapped.c).
 *
 *	mapped-lib save-mapped OUT	a mapped save (ms_ram_mapped_save_*)
 *	mapped-lib save-stream OUT	a streaming native save of the same RAM
 *	mapped-lib restore FILE MODE	ms_ram_mapped_restore() (mmap or read),
 *					the device state loaded, the RAM
 *					compared with the saved one
 *
 * The RAM is fixed: three blocks, half of their pages zero, in runs, the
 * others a pattern of their block and index; between the two precopy
 * rounds some pages change (non-zero to other bytes, non-zero to zero,
 * zero to non-zero), so that the last write must win.
 * Exit status: 0 success, 1 the library refused (message on stderr), 2 the
 * restored RAM differs, 3 a system error.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <migstream/migstream.h>
#include <migstream/ram.h>

#define PS   4096u
#define NBLK 3u

static const char *const names[NBLK] = {"pc.ram", "vga.vram", "pc.bios"};
static const uint64_t lens[NBLK] = {4u << 20, 1u << 20, 256u << 10};

struct vm {
	ms_ram *ram;
	uint8_t *mem[NBLK];
	ms_registry *reg;
};

/* Page @p of block @b in round @round (0: the first, 1: after changes). */
static void page_fill(uint8_t *d, unsigned b, uint64_t p, int round)
{
	uint64_t x = (uint64_t)b * 1000003u + p * 7919u + 1;
	bool zero = (p / 3) % 2 == 0;
	unsigned i;

	if (round && p % 5 == 0)
		zero = !zero; /* rewritten: zero <-> data */
	if (round && p % 7 == 0)
		x += 12345; /* rewritten: other data */
	if (zero) {
		memset(d, 0, PS);
		return;
	}
	for (i = 0; i < PS; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		d[i] = (uint8_t)(x >> 56);
	}
}

static void fill(struct vm *v, int round)
{
	unsigned b;
	uint64_t p;

	for (b = 0; b < NBLK; b++)
		for (p = 0; p < lens[b] / PS; p++)
			page_fill(v->mem[b] + p * PS, b, p, round);
}

static int vm_init(struct vm *v)
{
	ms_ram_opts o = {.version = MS_RAM_OPTS_VERSION};
	unsigned b;

	memset(v, 0, sizeof(*v));
	if (ms_ram_new(&v->ram, &o))
		return -1;
	for (b = 0; b < NBLK; b++) {
		ms_ram_block blk = {.version = MS_RAM_BLOCK_VERSION,
				    .idstr = names[b],
				    .used_length = lens[b]};

		v->mem[b] = mmap(NULL, (size_t)lens[b], PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (v->mem[b] == MAP_FAILED)
			return -1;
		blk.host = v->mem[b];
		if (ms_ram_add_block(v->ram, &blk, NULL)) {
			fprintf(stderr, "mapped-lib: %s\n",
				ms_ram_errmsg(v->ram));
			return -1;
		}
	}
	if (ms_registry_new(&v->reg, NULL) ||
	    ms_ram_register(v->ram, v->reg, NULL))
		return -1;
	return 0;
}

/* Setup, a round, the changed pages marked dirty, a round, complete. */
static int save_rounds(struct vm *v, ms_stream *s)
{
	ms_save *sv = NULL;
	unsigned b;
	int ret;

	fill(v, 0);
	ret = ms_save_new(&sv, v->reg, s, NULL);
	if (!ret)
		ret = ms_save_setup(sv);
	if (!ret)
		ret = ms_save_iterate(sv) < 0 ? -EIO : 0;
	if (!ret) {
		fill(v, 1);
		for (b = 0; b < NBLK; b++)
			ms_ram_mark_dirty(v->ram, b, 0, lens[b]);
		ret = ms_save_iterate(sv) < 0 ? -EIO : 0;
	}
	if (!ret)
		ret = ms_save_complete(sv);
	if (ret && sv)
		fprintf(stderr, "mapped-lib: save: %s\n", ms_save_errmsg(sv));
	ms_save_free(sv);
	return ret;
}

static int cmd_save(struct vm *v, const char *out, bool mapped)
{
	ms_ram_mapped_opts o = {.version = MS_RAM_MAPPED_OPTS_VERSION,
				.threads = 2};
	ms_stream *s = NULL;
	int fd, ret;

	fd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return 3;
	if (mapped)
		ret = ms_ram_mapped_save_begin(v->ram, fd, &o, &s);
	else
		ret = ms_stream_new_fd(&s, fd, MS_STREAM_WRITER, 0, NULL);
	if (ret) {
		fprintf(stderr, "mapped-lib: %s\n", ms_ram_errmsg(v->ram));
		close(fd);
		return 1;
	}
	ret = save_rounds(v, s);
	if (!ret && mapped) {
		ret = ms_ram_mapped_save_commit(v->ram);
		if (ret)
			fprintf(stderr, "mapped-lib: commit: %s\n",
				ms_ram_errmsg(v->ram));
	}
	if (!mapped && ms_stream_close(s) && !ret)
		ret = -EIO;
	if (close(fd) && !ret)
		ret = -EIO;
	return ret ? 1 : 0;
}

static int cmd_restore(struct vm *v, const char *file, const char *mode)
{
	ms_ram_mapped_opts o = {.version = MS_RAM_MAPPED_OPTS_VERSION,
				.threads = 2};
	uint8_t want[PS];
	ms_stream *dev = NULL;
	ms_load *ld = NULL;
	unsigned b;
	uint64_t p;
	int fd, ret;

	o.mode = !strcmp(mode, "read") ? MS_RAM_RESTORE_READ
				       : MS_RAM_RESTORE_MMAP;
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 3;
	ret = ms_ram_mapped_restore(v->ram, fd, &o, &dev);
	if (ret) {
		fprintf(stderr, "mapped-lib: restore: %s\n",
			ms_ram_errmsg(v->ram));
		close(fd);
		return 1;
	}
	ret = ms_load_new(&ld, v->reg, NULL);
	if (!ret)
		ret = ms_load_run(ld, dev);
	if (ret)
		fprintf(stderr, "mapped-lib: load: %s\n",
			ld ? ms_load_errmsg(ld) : "ms_load_new failed");
	if (!ret && (ret = ms_ram_load_check(v->ram)))
		fprintf(stderr, "mapped-lib: load check: %s\n",
			ms_ram_errmsg(v->ram));
	ms_load_free(ld);
	close(fd);
	if (ret)
		return 1;
	for (b = 0; b < NBLK; b++)
		for (p = 0; p < lens[b] / PS; p++) {
			page_fill(want, b, p, 1);
			if (memcmp(want, v->mem[b] + p * PS, PS)) {
				fprintf(stderr,
					"mapped-lib: block %s page %llu "
					"differs from the saved one\n",
					names[b], (unsigned long long)p);
				return 2;
			}
		}
	return 0;
}

int main(int argc, char **argv)
{
	struct vm v;
	int ret;

	if (argc < 3 || (!strcmp(argv[1], "restore") && argc < 4)) {
		fprintf(stderr, "usage: mapped-lib save-mapped|save-stream OUT "
				"| restore FILE mmap|read\n");
		return 3;
	}
	if (vm_init(&v))
		return 3;
	if (!strcmp(argv[1], "save-mapped"))
		ret = cmd_save(&v, argv[2], true);
	else if (!strcmp(argv[1], "save-stream"))
		ret = cmd_save(&v, argv[2], false);
	else
		ret = cmd_restore(&v, argv[2], argv[3]);
	ms_registry_free(v.reg);
	ms_ram_free(v.ram);
	return ret;
}
