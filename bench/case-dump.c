/* SPDX-License-Identifier: MIT */
/*
 * The dump tool's cases (dump-verify, dump-verify-small); their groups are
 * listed in bench/cases.h.
 *
 * dump-verify: "migstream-dump verify -q FILE" on a generated page-heavy
 * QEMU stream (cfg->ext.dump.bytes of RAM, every page a normal page of
 * distinct content), against reading the same file to its end with
 * read() in 256 KiB blocks (what "cat FILE > /dev/null" does); both from
 * the page cache.  Target: at least half the read throughput.  The tool
 * is $MS_DUMP_TOOL, else tools/migstream-dump next to the bench's
 * directory (found through /proc/self/exe), else ./tools/migstream-dump.
 *
 * dump-verify-small: the same on DUMP_SMALL_SECTIONS (1e6) tiny FULL
 * sections (a 1-byte payload each, ids cycling through 1000), where the
 * cost is per record, not per byte.  Target: 0.9 of the read throughput.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <migstream/qemu_ram.h>

#include "cases.h"

#define DUMP_PART_PAGES 4096u
#define DUMP_READ_CHUNK (256u * 1024u)

#define DUMP_SMALL_SECTIONS 1000000u
#define DUMP_SMALL_IDS	    1000u

static char dump_file[64];
static char dump_tool[4096];
static uint8_t *dump_buf;

static uint8_t *dump_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

static uint8_t *dump_be64(uint8_t *p, uint64_t v)
{
	return dump_be32(dump_be32(p, (uint32_t)(v >> 32)), (uint32_t)v);
}

/* A RAM section header (id 2; START with its name and versions), or its
 * footer (@type 0x7e). */
static uint8_t *dump_sec(uint8_t *p, uint8_t type)
{
	*p++ = type;
	p = dump_be32(p, 2);
	if (type == 0x01) {
		*p++ = 3;
		memcpy(p, "ram", 3);
		p = dump_be32(dump_be32(p + 3, 0), 4);
	}
	return p;
}

/* Find the tool (see the top); 0, or -1 after a message. */
static int dump_find_tool(void)
{
	const char *env = getenv("MS_DUMP_TOOL");
	char self[4096], *slash;
	ssize_t n;

	if (env && *env) {
		snprintf(dump_tool, sizeof(dump_tool), "%s", env);
	} else {
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n > 0) {
			self[n] = '\0';
			slash = strrchr(self,
					'/'); /* .../bench/migstream-bench */
			if (slash) {
				*slash = '\0';
				slash = strrchr(self, '/');
			}
			if (slash)
				*slash = '\0';
		}
		if (n > 0 && slash)
			snprintf(dump_tool, sizeof(dump_tool),
				 "%.4000s/tools/migstream-dump", self);
		else
			snprintf(dump_tool, sizeof(dump_tool),
				 "./tools/migstream-dump");
	}
	if (access(dump_tool, X_OK)) {
		fprintf(stderr,
			"migstream-bench: dump-verify: %s: %s (build it, or "
			"set MS_DUMP_TOOL)\n",
			dump_tool, strerror(errno));
		return -1;
	}
	return 0;
}

/* Write the stream to the temporary file; 0 or -1. */
static int dump_generate(int fd, uint64_t total)
{
	static const char json[] = "{\"page_size\": 4096, \"devices\": []}";
	uint64_t pages = total / MS_QEMU_RAM_PAGE_SIZE, i,
		 x = 0x9e3779b97f4a7c15ull;
	size_t cap = 64 * (MS_QEMU_RAM_PAGE_SIZE + 16) + 512, j;
	uint8_t *p = dump_buf, *q;

	p = dump_be32(dump_be32(p, 0x5145564du), 3);
	*p++ = 0x07;
	p = dump_be32(p, 13);
	memcpy(p, "pc-i440fx-7.2", 13);
	p = dump_sec(p + 13, 0x01);
	p = dump_be64(p, total | MS_QEMU_RAM_MEM_SIZE);
	*p++ = 6;
	memcpy(p, "pc.ram", 6);
	p = dump_be64(dump_be64(p + 6, total), MS_QEMU_RAM_EOS);
	p = dump_sec(p, 0x7e);
	for (i = 0; i < pages; i++) {
		bool first = !(i % DUMP_PART_PAGES);

		if (first)
			p = dump_sec(p, 0x02);
		p = dump_be64(p, i * MS_QEMU_RAM_PAGE_SIZE | MS_QEMU_RAM_PAGE |
					 (first ? 0 : MS_QEMU_RAM_CONTINUE));
		if (first) {
			*p++ = 6;
			memcpy(p, "pc.ram", 6);
			p += 6;
		}
		/* Page-like data: xorshift words, distinct in every page. */
		for (j = 0, q = p; j < MS_QEMU_RAM_PAGE_SIZE / 8; j++, q += 8) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			memcpy(q, &x, 8);
		}
		p += MS_QEMU_RAM_PAGE_SIZE;
		if (i % DUMP_PART_PAGES == DUMP_PART_PAGES - 1 ||
		    i + 1 == pages)
			p = dump_sec(dump_be64(p, MS_QEMU_RAM_EOS), 0x7e);
		if ((size_t)(p - dump_buf) >
		    cap - (MS_QEMU_RAM_PAGE_SIZE + 64)) {
			if (write_all(fd, dump_buf, (size_t)(p - dump_buf)))
				return -1;
			p = dump_buf;
		}
	}
	p = dump_sec(dump_be64(dump_sec(p, 0x03), MS_QEMU_RAM_EOS), 0x7e);
	*p++ = 0x00;
	*p++ = 0x06;
	p = dump_be32(p, (uint32_t)strlen(json));
	memcpy(p, json, strlen(json));
	p += strlen(json);
	return write_all(fd, dump_buf, (size_t)(p - dump_buf));
}

/* Write the stream of tiny sections (see the top); 0 or -1. */
static int dump_generate_small(int fd, uint64_t unused)
{
	static const char json[] = "{\"page_size\": 4096, \"devices\": []}";
	uint8_t *p = dump_buf;
	uint32_t i, id;

	(void)unused;
	p = dump_be32(dump_be32(p, 0x5145564du), 3);
	for (i = 0; i < DUMP_SMALL_SECTIONS; i++) {
		id = i % DUMP_SMALL_IDS;
		*p++ = 0x04;
		p = dump_be32(p, id);
		*p++ = 3;
		memcpy(p, "dev", 3);
		p = dump_be32(dump_be32(p + 3, 0), 1);
		*p++ = (uint8_t)i;
		*p++ = 0x7e;
		p = dump_be32(p, id);
		if ((size_t)(p - dump_buf) > DUMP_READ_CHUNK - 64) {
			if (write_all(fd, dump_buf, (size_t)(p - dump_buf)))
				return -1;
			p = dump_buf;
		}
	}
	*p++ = 0x00;
	*p++ = 0x06;
	p = dump_be32(p, (uint32_t)strlen(json));
	memcpy(p, json, strlen(json));
	p += strlen(json);
	return write_all(fd, dump_buf, (size_t)(p - dump_buf));
}

static int dump_read_run(struct bench *b, double *secs);

/* Generate the stream with @gen into a temporary file. */
static int dump_setup_with(struct bench *b, int (*gen)(int, uint64_t))
{
	const char *dir = getenv("TMPDIR");
	struct stat st;
	double s;
	int fd;

	if (dump_find_tool())
		return -1;
	snprintf(dump_file, sizeof(dump_file), "%.32s/ms-bench-XXXXXX",
		 dir && *dir ? dir : "/tmp");
	dump_buf =
		malloc(DUMP_READ_CHUNK > 64 * (MS_QEMU_RAM_PAGE_SIZE + 16) + 512
			       ? DUMP_READ_CHUNK
			       : 64 * (MS_QEMU_RAM_PAGE_SIZE + 16) + 512);
	if (!dump_buf)
		return sys_failed("malloc");
	fd = mkstemp(dump_file);
	if (fd < 0)
		return sys_failed("mkstemp");
	if (gen(fd, b->cfg->ext.dump.bytes) || fstat(fd, &st) || close(fd)) {
		unlink(dump_file);
		return sys_failed("writing the stream");
	}
	b->units = (double)st.st_size;
	/* Into the page cache, for both sides. */
	return dump_read_run(b, &s);
}

static int dump_setup(struct bench *b)
{
	return dump_setup_with(b, dump_generate);
}

static int dump_small_setup(struct bench *b)
{
	return dump_setup_with(b, dump_generate_small);
}

static int dump_teardown(struct bench *b)
{
	(void)b;
	if (dump_file[0])
		unlink(dump_file);
	dump_file[0] = '\0';
	free(dump_buf);
	dump_buf = NULL;
	return 0;
}

/* Baseline: read() the file to its end, 256 KiB at a time. */
static int dump_read_run(struct bench *b, double *secs)
{
	double t0 = now(), total = 0;
	ssize_t n;
	int fd;

	fd = open(dump_file, O_RDONLY);
	if (fd < 0)
		return sys_failed("open");
	while ((n = read(fd, dump_buf, DUMP_READ_CHUNK)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return sys_failed("read");
		}
		total += (double)n;
	}
	close(fd);
	*secs = since(t0);
	if (total != b->units) {
		fprintf(stderr, "migstream-bench: dump: short read\n");
		return -1;
	}
	return 0;
}

/* Subject: the tool's verify, which must pass. */
static int dump_verify_run(struct bench *b, double *secs)
{
	double t0 = now();
	int status;
	pid_t pid;

	(void)b;
	pid = fork();
	if (pid < 0)
		return sys_failed("fork");
	if (!pid) {
		execl(dump_tool, dump_tool, "verify", "-q", dump_file,
		      (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return sys_failed("waitpid");
	*secs = since(t0);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr,
			"migstream-bench: dump-verify: %s verify failed "
			"(status 0x%x)\n",
			dump_tool, (unsigned)status);
		return -1;
	}
	return 0;
}

const struct group bench_group_dump_verify = {
	.vs = "read",
	.unit = "bytes",
	.setup = dump_setup,
	.teardown = dump_teardown,
	.baseline = dump_read_run,
	.subj = {{"dump-verify", dump_verify_run, METRIC_MBPS, 0.5, 0}},
	.nsubj = 1,
};

const struct group bench_group_dump_verify_small = {
	.vs = "read",
	.unit = "bytes",
	.setup = dump_small_setup,
	.teardown = dump_teardown,
	.baseline = dump_read_run,
	.subj = {{"dump-verify-small", dump_verify_run, METRIC_MBPS, 0.9, 0}},
	.nsubj = 1,
};
