/* SPDX-License-Identifier: MIT */
/*
 * dump-rss: run migstream-dump on a generated QEMU stream fed through a
 * pipe, and print the child's peak RSS.
 *
 *	dump-rss MIB PROGRAM ARGS...
 *
 * The stream is written as it is generated, so no file of its size is
 * needed: a header, a configuration, RAM ("ram", version 4) with one block
 * "pc.ram" of MIB MiB whose every page is sent as a normal page (PART
 * sections of 4096 pages), END, EOF and a VM-description trailer with no
 * devices.  PROGRAM reads it on its standard input (pass "-" as its FILE);
 * its standard output goes to /dev/null.  Prints "maxrss_kib N status S"
 * (S: the exit status, or 128 + the signal) and exits 0, or 99 when the
 * child could not be run.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <migstream/qemu_ram.h>

#define PART_PAGES  4096u
#define BATCH_PAGES 64u

static uint8_t *put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

static uint8_t *put_be64(uint8_t *p, uint64_t v)
{
	p = put_be32(p, (uint32_t)(v >> 32));
	return put_be32(p, (uint32_t)v);
}

static uint8_t *put_cstr(uint8_t *p, const char *s)
{
	size_t n = strlen(s);

	*p++ = (uint8_t)n;
	memcpy(p, s, n);
	return p + n;
}

static int write_all(int fd, const uint8_t *b, size_t n)
{
	ssize_t w;

	while (n) {
		w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* A section header: type, id 2, and for START the name and versions. */
static uint8_t *section(uint8_t *p, uint8_t type)
{
	*p++ = type;
	p = put_be32(p, 2);
	if (type == 0x01) {
		p = put_cstr(p, "ram");
		p = put_be32(p, 0);
		p = put_be32(p, 4);
	}
	return p;
}

static uint8_t *footer(uint8_t *p)
{
	*p++ = 0x7e;
	return put_be32(p, 2);
}

/* Write the stream of @mib MiB of RAM to @fd; -1 when it stops early. */
static int generate(int fd, uint64_t mib)
{
	static const char json[] = "{\"page_size\": 4096, \"devices\": []}";
	uint64_t total = mib << 20, pages = total / MS_QEMU_RAM_PAGE_SIZE, i;
	size_t cap = BATCH_PAGES * (MS_QEMU_RAM_PAGE_SIZE + 8) + 512;
	uint8_t *buf = malloc(cap), *p;
	int ret = -1;

	if (!buf)
		return -1;
	p = buf;
	p = put_be32(p, 0x5145564du);
	p = put_be32(p, 3);
	*p++ = 0x07;
	p = put_be32(p, 13);
	memcpy(p, "pc-i440fx-7.2", 13);
	p += 13;
	p = section(p, 0x01);
	p = put_be64(p, total | MS_QEMU_RAM_MEM_SIZE);
	p = put_cstr(p, "pc.ram");
	p = put_be64(p, total);
	p = put_be64(p, MS_QEMU_RAM_EOS);
	p = footer(p);
	for (i = 0; i < pages; i++) {
		if (!(i % PART_PAGES))
			p = section(p, 0x02);
		p = put_be64(
			p, i * MS_QEMU_RAM_PAGE_SIZE | MS_QEMU_RAM_PAGE |
				   (i % PART_PAGES ? MS_QEMU_RAM_CONTINUE : 0));
		if (!(i % PART_PAGES))
			p = put_cstr(p, "pc.ram");
		/* Distinct pages, cheaply: a counter in a constant fill. */
		memset(p, 0x5a, MS_QEMU_RAM_PAGE_SIZE);
		put_be64(p, i);
		p += MS_QEMU_RAM_PAGE_SIZE;
		if (i % PART_PAGES == PART_PAGES - 1 || i + 1 == pages) {
			p = put_be64(p, MS_QEMU_RAM_EOS);
			p = footer(p);
		}
		if ((size_t)(p - buf) > cap - (MS_QEMU_RAM_PAGE_SIZE + 64)) {
			if (write_all(fd, buf, (size_t)(p - buf)))
				goto out;
			p = buf;
		}
	}
	p = section(p, 0x03);
	p = put_be64(p, MS_QEMU_RAM_EOS);
	p = footer(p);
	*p++ = 0x00;
	*p++ = 0x06;
	p = put_be32(p, (uint32_t)strlen(json));
	memcpy(p, json, strlen(json));
	p += strlen(json);
	ret = write_all(fd, buf, (size_t)(p - buf));
out:
	free(buf);
	return ret;
}

int main(int argc, char **argv)
{
	struct rusage ru;
	int pfd[2], status, devnull;
	uint64_t mib;
	pid_t pid;

	if (argc < 3 || !(mib = strtoull(argv[1], NULL, 10))) {
		fprintf(stderr, "usage: dump-rss MIB PROGRAM ARGS...\n");
		return 99;
	}
	signal(SIGPIPE, SIG_IGN);
	if (pipe(pfd)) {
		perror("pipe");
		return 99;
	}
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 99;
	}
	if (!pid) {
		devnull = open("/dev/null", O_WRONLY);
		if (dup2(pfd[0], STDIN_FILENO) < 0 || devnull < 0 ||
		    dup2(devnull, STDOUT_FILENO) < 0)
			_exit(99);
		close(pfd[0]);
		close(pfd[1]);
		execv(argv[2], argv + 2);
		perror(argv[2]);
		_exit(99);
	}
	close(pfd[0]);
	generate(pfd[1], mib);
	close(pfd[1]);
	while (wait4(pid, &status, 0, &ru) < 0) {
		if (errno != EINTR) {
			perror("wait4");
			return 99;
		}
	}
	printf("maxrss_kib %ld status %d\n", ru.ru_maxrss,
	       WIFEXITED(status) ? WEXITSTATUS(status)
				 : 128 + WTERMSIG(status));
	return 0;
}
