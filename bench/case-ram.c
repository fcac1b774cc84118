/* SPDX-License-Identifier: MIT */
/*
 * ms_ram's cases (issue #13); their groups are listed in bench/cases.h.
 *
 * The RAM of every case but ram-zero-scan is the migrate demo's initial
 * machine (examples/migrate-demo-machine.c: seed 1, half the pages zero,
 * bench_ram_config.bytes of it), built once by the group's setup; the
 * guest is idle.  Destinations are forked processes whose memory is
 * mapped and touched before the clock starts; a run is timed from the
 * connection to the destination's answer, after it placed every page.
 * The destination of a group's first (untimed) run compares every byte
 * with the source's, which it has through fork().
 *
 * ram-tcp, ram-tcp-qemu: an ms_ram with that one block, its handler alone
 *   in a registry, saved (setup, one round, complete) over one loopback
 *   TCP connection, native profile (CRC-32 on every record, the default)
 *   and QEMU profile (zero-copy puts, no checksum), into the ms_ram of
 *   the destination (MS_RAM_BLOCK_ZEROED memory).  The baseline,
 *   writev-pages: a plain writev() loop sending each non-zero page with
 *   an 8-byte header (its offset), zero pages skipped, to a process that
 *   reads header and page into its RAM at the page's place.
 * ram-zlib-2ch against ram-zlib-1ch: the same, native profile with zlib
 *   level 1 in every channel, pages on 2 channels against 1 (loopback
 *   TCP connections beside the main one).  The note beside it gives the
 *   limit this machine allows, from raw deflate and inflate timings of
 *   the same pages measured in the setup: two cores shared by deflate
 *   and inflate, 2 t_d / (t_d + t_i), against one deflating core.
 * ram-vs-qemu: the demo's migration of that machine (demo_save() and
 *   demo_load(), as demo-migrate runs them, guest idle) against Debian's
 *   qemu-system-x86_64 migrating the same RAM image between two QEMU
 *   processes over loopback TCP (QMP: migrate to completed, polled every
 *   millisecond).  Its ratio is QEMU's time / ours.  Skipped, with a
 *   message, under --quick and when QEMU is missing or does not start.
 *   The load average is printed beside it.
 * ram-zero-scan: ms_buffer_is_zero() over bench_ram_config.zero_bytes of
 *   zero pages, page by page, against memcmp() of each page with a
 *   static zero page.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../examples/migrate-demo.h"
#include "cases.h"

#define PAGE	     DEMO_PAGE
#define RAM_IOV	     64 /* pages per writev() of the baseline */
#define RAM_RBUF     (256 * KIB)
#define QEMU_BIN     "qemu-system-x86_64"
#define QEMU_START_S 60

/**
 * struct ram_bench - State of the RAM groups (one group at a time).
 * @vm: the demo's machine: the source RAM (and ram-vs-qemu's source).
 * @lfd: the listening loopback socket.
 * @addr: its address.
 * @nonzero: non-zero pages of @vm.
 * @calls: runs so far, for the first run's check.
 * @nchan: channels of the current subject run.
 * @t_deflate: ram-zlib: raw deflate seconds per byte.
 * @t_inflate: ram-zlib: raw inflate seconds per byte.
 * @zero: ram-zero-scan: the zero pages.
 * @zero_len: their bytes.
 * @zero_sum: pages found zero (so that no scan is optimized away).
 * @dir: ram-vs-qemu: the temporary directory (image, QMP sockets).
 * @image: ram-vs-qemu: the RAM image QEMU maps.
 * @load0: /proc/loadavg at the setup.
 */
struct ram_bench {
	struct demo_vm vm;
	int lfd;
	struct sockaddr_in addr;
	uint64_t nonzero;
	int calls;
	unsigned nchan;
	double t_deflate;
	double t_inflate;
	uint8_t *zero;
	size_t zero_len;
	uint64_t zero_sum;
	char dir[256];
	char image[300];
	char load0[128];
};

static struct ram_bench rb;

/* In a forked receiver: the write end of the pipe that says it is
 * ready. */
static int ram_ready_fd = -1;

/* Print a note: beside the lines on stdout, on stderr under --json. */
static void note(const struct bench *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void note(const struct bench *b, const char *fmt, ...)
{
	FILE *f = b->cfg->json ? stderr : stdout;
	va_list ap;

	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fflush(f);
}

/**
 * read_loadavg() - The first three fields of /proc/loadavg.
 * @buf: receives them, or "unknown".
 * @len: room in @buf.
 */
static void read_loadavg(char *buf, size_t len)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double a, b, c;

	if (f && fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
		snprintf(buf, len, "%.2f %.2f %.2f", a, b, c);
	else
		snprintf(buf, len, "unknown");
	if (f)
		fclose(f);
}

/*
 * Processes and connections.
 */

/**
 * ram_ready() - In a forked receiver: tell the parent it is ready.
 */
static void ram_ready(void)
{
	char c = 1;

	if (write(ram_ready_fd, &c, 1) != 1)
		_exit(3);
	close(ram_ready_fd);
}

/**
 * ram_spawn() - Fork a receiver and wait until it is ready.
 * @child: runs in the child; its result is the exit status.
 *
 * Return: the child's pid, or -1.
 */
static pid_t ram_spawn(int (*child)(void))
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe(p))
		return -1;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		ram_ready_fd = p[1];
		_exit(child());
	}
	close(p[1]);
	if (pid < 0 || read(p[0], &c, 1) != 1) {
		close(p[0]);
		if (pid > 0)
			waitpid(pid, NULL, 0);
		return -1;
	}
	close(p[0]);
	return pid;
}

/**
 * ram_reap() - Wait for a receiver; it must exit with 0.
 * @pid: the receiver.
 * @who: its name, for the message.
 *
 * Return: 0, or -1 after a message.
 */
static int ram_reap(pid_t pid, const char *who)
{
	int status;

	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		fprintf(stderr, "ram: the %s failed\n", who);
		return -1;
	}
	return 0;
}

/**
 * ram_connect() - Connect to the listening socket and say which one this is.
 * @index: 0 for the main stream, 1 + i for channel i.
 *
 * Return: the socket, or -1.
 */
static int ram_connect(unsigned index)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint8_t c = (uint8_t)index;

	if (fd < 0 ||
	    connect(fd, (struct sockaddr *)&rb.addr, sizeof(rb.addr)) ||
	    write(fd, &c, 1) != 1) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/**
 * ram_accept() - In a receiver: the main connection and @nchan channels,
 *                sorted by the byte each sends first.
 * @fds: receives 1 + @nchan sockets, the main one first.
 * @nchan: channels.
 *
 * Return: 0, or -1.
 */
static int ram_accept(int *fds, unsigned nchan)
{
	unsigned i, k;
	uint8_t c;
	int fd;

	for (i = 0; i <= nchan; i++)
		fds[i] = -1;
	for (i = 0; i <= nchan; i++) {
		fd = accept(rb.lfd, NULL, NULL);
		if (fd < 0 || read(fd, &c, 1) != 1 || c > nchan ||
		    fds[c] >= 0) {
			if (fd >= 0)
				close(fd);
			for (k = 0; k <= nchan; k++)
				if (fds[k] >= 0)
					close(fds[k]);
			return -1;
		}
		fds[c] = fd;
	}
	return 0;
}

/**
 * map_ram() - Fresh anonymous memory, touched.
 * @bytes: how much.
 *
 * Return: the memory, or NULL.
 */
static uint8_t *map_ram(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0, bytes); /* zeros: still MS_RAM_BLOCK_ZEROED */
	return p;
}

/*
 * The source machine, shared by the groups that migrate RAM.
 */

/**
 * ram_setup_common() - The demo's machine and a listening socket.
 * @b: the bench; @b->units gets the RAM's bytes.
 * @who: the group, for messages.
 * @vdev_size: the machine's vfio-user device memory (the demo's default
 *             for ram-vs-qemu, a page for the others, which migrate the
 *             RAM alone).
 *
 * Return: 0, or -1 after a message.
 */
static int ram_setup_common(struct bench *b, const char *who, size_t vdev_size)
{
	const struct bench_ram_config *c = &b->cfg->ext.ram;
	struct demo_config cfg = {
		.ram_size = c->bytes,
		.vdev_size = vdev_size,
		.seed = 1,
		.zero_pct = c->zero_pct,
		.rate = 0,
		.nic_version = DEMO_NIC_VERSION,
	};
	socklen_t len = sizeof(rb.addr);
	size_t i;
	int ret;

	memset(&rb, 0, sizeof(rb));
	rb.lfd = -1;
	ret = demo_vm_init(&rb.vm, &cfg);
	if (ret) {
		fprintf(stderr, "%s: %s\n", who, strerror(-ret));
		return -1;
	}
	for (i = 0; i < rb.vm.npages; i++)
		if (!ms_buffer_is_zero(rb.vm.ram + i * PAGE, PAGE))
			rb.nonzero++;
	rb.lfd = socket(AF_INET, SOCK_STREAM, 0);
	rb.addr.sin_family = AF_INET;
	rb.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (rb.lfd < 0 ||
	    bind(rb.lfd, (struct sockaddr *)&rb.addr, sizeof(rb.addr)) ||
	    listen(rb.lfd, MS_RAM_MAX_CHANNELS + 4) ||
	    getsockname(rb.lfd, (struct sockaddr *)&rb.addr, &len)) {
		fprintf(stderr, "%s: ", who);
		return sys_failed("listening socket");
	}
	b->units = (double)rb.vm.npages * PAGE;
	return 0;
}

/**
 * ram_teardown() - Free the machine and the socket.
 * @b: the bench.
 *
 * Return: 0.
 */
static int ram_teardown(struct bench *b)
{
	(void)b;
	if (rb.lfd >= 0)
		close(rb.lfd);
	rb.lfd = -1;
	demo_vm_free(&rb.vm);
	return 0;
}

/*
 * ram-tcp and ram-zlib: ms_ram to ms_ram.
 */

/**
 * ram_dest() - Receiver: an ms_ram over fresh memory, the load, "OK"; on
 *              the first run a comparison with the source's RAM.
 *
 * Return: 0, or 1 on failure.
 */
static int ram_dest(void)
{
	size_t bytes = rb.vm.npages * PAGE;
	ms_ram_block blk = {.version = MS_RAM_BLOCK_VERSION,
			    .idstr = DEMO_RAM_BLOCK,
			    .used_length = bytes,
			    .flags = MS_RAM_BLOCK_ZEROED};
	int fds[MS_RAM_MAX_CHANNELS + 1];
	ms_registry *reg = NULL;
	ms_stream *in = NULL;
	ms_load *ld = NULL;
	ms_ram *ram = NULL;
	unsigned i;
	int ret;

	blk.host = map_ram(bytes);
	if (!blk.host)
		return 1;
	ret = ms_ram_new(&ram, NULL);
	if (!ret)
		ret = ms_ram_add_block(ram, &blk, NULL);
	if (!ret)
		ret = ms_registry_new(&reg, NULL);
	if (!ret)
		ret = ms_ram_register(ram, reg, NULL);
	if (!ret)
		ret = ms_load_new(&ld, reg, NULL);
	if (ret)
		return 1;
	ram_ready();
	if (ram_accept(fds, rb.nchan))
		return 1;
	ret = ms_ram_set_channels(ram, fds + 1, rb.nchan, NULL);
	if (!ret)
		ret = ms_stream_new_fd(&in, fds[0], MS_STREAM_READER, 0,
				       &demo_read_opts);
	if (!ret)
		ret = ms_load_run(ld, in);
	if (!ret)
		ret = ms_ram_load_check(ram);
	if (ret)
		fprintf(stderr, "ram: destination: %s%s\n", ms_load_errmsg(ld),
			ms_ram_errmsg(ram));
	if (!ret && rb.calls == 1 && memcmp(blk.host, rb.vm.ram, bytes)) {
		fprintf(stderr, "ram: the destination's RAM differs\n");
		ret = -EIO;
	}
	if (write(fds[0], ret ? "ERR\n" : "OK\n", ret ? 4 : 3) < 0)
		ret = -EPIPE;
	ms_stream_close(in);
	ms_load_free(ld);
	ms_registry_free(reg);
	ms_ram_free(ram);
	for (i = 0; i <= rb.nchan; i++)
		close(fds[i]);
	munmap(blk.host, bytes);
	return ret ? 1 : 0;
}

/**
 * ram_save_all() - Save @ram's handler alone into @fd: setup, rounds,
 *                  complete (an idle guest needs one round).
 * @ram: the source's ms_ram, channels set.
 * @fd: the main connection.
 * @codec: the main stream's codec.
 *
 * Return: 0, or -1 after a message.
 */
static int ram_save_all(ms_ram *ram, int fd, const ms_codec_opts *codec)
{
	ms_save_opts so = {.version = MS_SAVE_OPTS_VERSION, .codec = codec};
	ms_registry *reg = NULL;
	ms_stream *s = NULL;
	ms_save *sv = NULL;
	int ret, more = 1;

	ret = ms_registry_new(&reg, NULL);
	if (!ret)
		ret = ms_ram_register(ram, reg, NULL);
	if (!ret)
		ret = ms_stream_new_fd(&s, fd, MS_STREAM_WRITER, 0, NULL);
	if (!ret)
		ret = ms_save_new(&sv, reg, s, &so);
	if (!ret)
		ret = ms_save_setup(sv);
	while (!ret && more > 0) {
		more = ms_save_iterate(sv);
		if (more < 0)
			ret = more;
	}
	if (!ret)
		ret = ms_save_complete(sv);
	if (!ret)
		ret = ms_stream_flush(s);
	if (ret)
		fprintf(stderr, "ram: source: %s\n",
			sv && *ms_save_errmsg(sv) ? ms_save_errmsg(sv)
			: s			  ? ms_stream_errmsg(s)
						  : ms_strerror(ret));
	ms_save_free(sv);
	if (ms_stream_close(s) && !ret)
		ret = -EIO;
	ms_registry_free(reg);
	return ret ? -1 : 0;
}

/**
 * ram_migrate() - One ms_ram migration to a forked destination.
 * @b: the bench.
 * @secs: receives the time, from the connection to the answer.
 * @codec: the codec of the main stream and the channels.
 * @nchan: channels beside the main connection.
 *
 * Return: 0, or -1 after a message.
 */
static int ram_migrate(struct bench *b, double *secs,
		       const ms_codec_opts *codec, unsigned nchan)
{
	int fds[MS_RAM_MAX_CHANNELS + 1];
	unsigned i, n = 0;
	char ack[4];
	double t0;
	pid_t pid;
	int ret = 0;

	rb.nchan = nchan;
	rb.calls++;
	pid = ram_spawn(ram_dest);
	if (pid < 0)
		return sys_failed("ram: fork");
	t0 = now();
	for (n = 0; n <= nchan; n++) {
		fds[n] = ram_connect(n);
		if (fds[n] < 0)
			break;
	}
	if (n <= nchan)
		ret = sys_failed("ram: connect");
	if (!ret && ms_ram_set_channels(rb.vm.ramh, fds + 1, nchan, codec)) {
		fprintf(stderr, "ram: %s\n", ms_ram_errmsg(rb.vm.ramh));
		ret = -1;
	}
	if (!ret)
		ret = ram_save_all(rb.vm.ramh, fds[0], codec);
	if (!ret) {
		shutdown(fds[0], SHUT_WR);
		if (read(fds[0], ack, 3) != 3 || memcmp(ack, "OK\n", 3))
			ret = -1;
	}
	*secs = since(t0);
	for (i = 0; i < n; i++)
		close(fds[i]);
	if (ret)
		kill(pid, SIGKILL);
	if (ram_reap(pid, "ms_ram destination") || ret)
		return -1;
	(void)b;
	return 0;
}

/**
 * ram_plain_dest() - Baseline receiver: header and page into place.
 *
 * Return: 0, or 1 on failure.
 */
static int ram_plain_dest(void)
{
	size_t bytes = rb.vm.npages * PAGE, have = 0, at = 0;
	uint8_t *ram = map_ram(bytes), *buf = malloc(RAM_RBUF);
	uint64_t pages = 0, off;
	int fd, i;
	ssize_t n;

	if (!ram || !buf)
		return 1;
	ram_ready();
	if (ram_accept(&fd, 0))
		return 1;
	for (;;) {
		/* The record at @at: 8 bytes of offset, then the page. */
		while (have - at >= 8 + PAGE) {
			off = 0;
			for (i = 0; i < 8; i++)
				off = off << 8 | buf[at + (size_t)i];
			if (off > bytes - PAGE)
				return 1;
			memcpy(ram + off, buf + at + 8, PAGE);
			at += 8 + PAGE;
			pages++;
		}
		memmove(buf, buf + at, have - at);
		have -= at;
		at = 0;
		n = read(fd, buf + have, RAM_RBUF - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	if (n < 0 || have || pages != rb.nonzero)
		return 1;
	if (write(fd, "OK\n", 3) != 3)
		return 1;
	close(fd);
	munmap(ram, bytes);
	free(buf);
	return 0;
}

/**
 * writev_all() - writev() every byte of @iov, completing short writes.
 * @fd: the socket.
 * @iov: the vector (changed).
 * @cnt: its entries.
 *
 * Return: 0 or -1.
 */
static int writev_all(int fd, struct iovec *iov, int cnt)
{
	ssize_t n;
	int k = 0;

	while (k < cnt) {
		n = writev(fd, iov + k, cnt - k);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		while (n > 0 && k < cnt) {
			if ((size_t)n >= iov[k].iov_len) {
				n -= (ssize_t)iov[k].iov_len;
				k++;
			} else {
				iov[k].iov_base =
					(uint8_t *)iov[k].iov_base + n;
				iov[k].iov_len -= (size_t)n;
				n = 0;
			}
		}
	}
	return 0;
}

/**
 * ram_plain_run() - Baseline: non-zero pages, each after an 8-byte header.
 * @b: the bench.
 * @secs: receives the time.
 *
 * Return: 0, or -1 after a message.
 */
static int ram_plain_run(struct bench *b, double *secs)
{
	struct iovec iov[2 * RAM_IOV];
	uint8_t hdr[RAM_IOV][8];
	size_t i;
	double t0;
	char ack[4];
	int fd, cnt = 0, ret = 0, k;
	pid_t pid;

	(void)b;
	pid = ram_spawn(ram_plain_dest);
	if (pid < 0)
		return sys_failed("ram: fork");
	t0 = now();
	fd = ram_connect(0);
	if (fd < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return sys_failed("ram: connect");
	}
	for (i = 0; i <= rb.vm.npages && !ret; i++) {
		if (i < rb.vm.npages) {
			uint8_t *p = rb.vm.ram + i * PAGE;

			/* The zero check is the baseline's too. */
			if (ms_buffer_is_zero(p, PAGE))
				continue;
			for (k = 0; k < 8; k++)
				hdr[cnt / 2][k] =
					(uint8_t)((uint64_t)i * PAGE >>
						  (56 - 8 * k));
			iov[cnt].iov_base = hdr[cnt / 2];
			iov[cnt++].iov_len = 8;
			iov[cnt].iov_base = p;
			iov[cnt++].iov_len = PAGE;
			if (cnt < 2 * RAM_IOV)
				continue;
		}
		if (cnt && writev_all(fd, iov, cnt))
			ret = -1;
		cnt = 0;
	}
	shutdown(fd, SHUT_WR);
	if (!ret && read(fd, ack, 3) != 3)
		ret = -1;
	*secs = since(t0);
	close(fd);
	if (ret)
		kill(pid, SIGKILL);
	if (ram_reap(pid, "writev loop's receiver") || ret)
		return -1;
	return 0;
}

static int ram_tcp_setup(struct bench *b)
{
	return ram_setup_common(b, "ram-tcp", DEMO_PAGE);
}

/**
 * ram_tcp_run() - Subject: native profile, CRC-32 on every record.
 * @b: the bench.
 * @secs: receives the time.
 *
 * Return: 0, or -1 after a message.
 */
static int ram_tcp_run(struct bench *b, double *secs)
{
	ms_codec_opts c = {.version = MS_CODEC_OPTS_VERSION,
			   .profile = MS_PROFILE_NATIVE};

	return ram_migrate(b, secs, &c, 0);
}

/**
 * ram_tcp_qemu_run() - Subject: QEMU profile (zero-copy puts, no CRC).
 * @b: the bench.
 * @secs: receives the time.
 *
 * Return: 0, or -1 after a message.
 */
static int ram_tcp_qemu_run(struct bench *b, double *secs)
{
	ms_codec_opts c = {.version = MS_CODEC_OPTS_VERSION,
			   .profile = MS_PROFILE_QEMU};

	return ram_migrate(b, secs, &c, 0);
}

const struct group bench_group_ram_tcp = {
	.vs = "writev-pages",
	.unit = "bytes",
	.setup = ram_tcp_setup,
	.teardown = ram_teardown,
	.baseline = ram_plain_run,
	.subj = {{"ram-tcp-qemu", ram_tcp_qemu_run, METRIC_MBPS, 0.90, 0},
		 {"ram-tcp", ram_tcp_run, METRIC_NONE, 0, 0}},
	.nsubj = 2,
};

/*
 * ram-zlib-2ch against ram-zlib-1ch.
 */

/**
 * zlib_times() - Raw deflate (level 1) and inflate of the non-zero pages,
 *                page by page: seconds per byte of each.
 * @b: the bench.
 *
 * Return: 0, or -1 after a message.
 */
static int zlib_times(struct bench *b)
{
	size_t cap = compressBound(PAGE), i, k = 0, bytes = 0;
	size_t n = rb.vm.npages;
	uint8_t *out = malloc(cap), back[PAGE];
	z_stream d, f;
	double td, ti, t0;
	int ret = -1;

	(void)b;
	memset(&d, 0, sizeof(d));
	memset(&f, 0, sizeof(f));
	if (!out || deflateInit2(&d, 1, Z_DEFLATED, -15, 8,
				 Z_DEFAULT_STRATEGY) != Z_OK) {
		free(out);
		return sys_failed("ram-zlib: deflateInit");
	}
	if (inflateInit2(&f, -15) != Z_OK)
		goto out;
	/* Deflate each page, inflate it back; time both apart. */
	td = ti = 0;
	for (i = 0; i < n; i++) {
		const uint8_t *p = rb.vm.ram + i * PAGE;

		if (ms_buffer_is_zero(p, PAGE))
			continue;
		t0 = now();
		deflateReset(&d);
		d.next_in = (Bytef *)(uintptr_t)p;
		d.avail_in = PAGE;
		d.next_out = out;
		d.avail_out = (uInt)cap;
		if (deflate(&d, Z_FINISH) != Z_STREAM_END)
			goto out;
		k = cap - d.avail_out;
		td += now() - t0;
		t0 = now();
		inflateReset(&f);
		f.next_in = out;
		f.avail_in = (uInt)k;
		f.next_out = back;
		f.avail_out = PAGE;
		if (inflate(&f, Z_FINISH) != Z_STREAM_END || f.avail_out)
			goto out;
		ti += now() - t0;
		bytes += PAGE;
	}
	rb.t_deflate = bytes ? td / (double)bytes : 0;
	rb.t_inflate = bytes ? ti / (double)bytes : 0;
	ret = 0;
out:
	if (ret)
		fprintf(stderr, "ram-zlib: raw deflate or inflate failed\n");
	deflateEnd(&d);
	inflateEnd(&f);
	free(out);
	return ret;
}

static int ram_zlib_setup(struct bench *b)
{
	if (ram_setup_common(b, "ram-zlib", DEMO_PAGE))
		return -1;
	return zlib_times(b);
}

/**
 * ram_zlib_teardown() - The limit note, then the common teardown.
 * @b: the bench.
 *
 * Return: 0.
 */
static int ram_zlib_teardown(struct bench *b)
{
	double td = rb.t_deflate, ti = rb.t_inflate;

	if (td > 0 && ti > 0)
		note(b,
		     "ram-zlib-2ch: limit on this machine %.2fx = 2 cores / "
		     "(deflate %.2f + inflate %.2f ns/byte) against 1 / "
		     "deflate, from raw zlib level 1 on the same pages in "
		     "this run\n",
		     2 * td / (td + ti), td * 1e9, ti * 1e9);
	return ram_teardown(b);
}

static int ram_zlib_run(struct bench *b, double *secs, unsigned nchan)
{
	ms_codec_opts c = {.version = MS_CODEC_OPTS_VERSION,
			   .profile = MS_PROFILE_NATIVE,
			   .compress_level = 1};

	return ram_migrate(b, secs, &c, nchan);
}

/**
 * ram_zlib_1ch_run() - Baseline: one channel.
 * @b: the bench.
 * @secs: receives the time.
 *
 * Return: 0, or -1 after a message.
 */
static int ram_zlib_1ch_run(struct bench *b, double *secs)
{
	return ram_zlib_run(b, secs, 1);
}

/**
 * ram_zlib_2ch_run() - Subject: two channels.
 * @b: the bench.
 * @secs: receives the time.
 *
 * Return: 0, or -1 after a message.
 */
static int ram_zlib_2ch_run(struct bench *b, double *secs)
{
	return ram_zlib_run(b, secs, 2);
}

const struct group bench_group_ram_zlib = {
	.vs = "ram-zlib-1ch",
	.unit = "bytes",
	.setup = ram_zlib_setup,
	.teardown = ram_zlib_teardown,
	.baseline = ram_zlib_1ch_run,
	.subj = {{"ram-zlib-2ch", ram_zlib_2ch_run, METRIC_MBPS, 1.35, 0}},
	.nsubj = 1,
};

/*
 * ram-vs-qemu.
 */

/**
 * struct qemu - A QEMU process and its QMP connection.
 * @pid: the process, or -1.
 * @fd: the QMP socket, or -1.
 * @buf: bytes read and not yet consumed.
 * @have: their number.
 */
struct qemu {
	pid_t pid;
	int fd;
	char buf[65536];
	size_t have;
};

static struct qemu qsrc, qdst;

/**
 * qmp_line() - Read QMP's next line (a JSON object).
 * @q: the QEMU.
 * @line: receives it, NUL-terminated.
 * @len: room in @line.
 *
 * Return: 0, or -1 (connection closed, 10 s without a line).
 */
static int qmp_line(struct qemu *q, char *line, size_t len)
{
	struct pollfd pfd = {.fd = q->fd, .events = POLLIN};
	char *nl;
	ssize_t n;
	size_t k;

	for (;;) {
		nl = memchr(q->buf, '\n', q->have);
		if (nl) {
			k = (size_t)(nl - q->buf);
			if (k >= len)
				k = len - 1;
			memcpy(line, q->buf, k);
			line[k] = '\0';
			k = (size_t)(nl - q->buf) + 1;
			memmove(q->buf, q->buf + k, q->have - k);
			q->have -= k;
			return 0;
		}
		if (q->have == sizeof(q->buf))
			q->have = 0; /* a line too long: not one we need */
		if (poll(&pfd, 1, 10000) <= 0)
			return -1;
		n = read(q->fd, q->buf + q->have, sizeof(q->buf) - q->have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		q->have += (size_t)n;
	}
}

/**
 * qmp() - Send a QMP command and read its answer (events are skipped).
 * @q: the QEMU.
 * @cmd: the command, one JSON object.
 * @ans: receives the answer.
 * @len: room in @ans.
 *
 * Return: 0 for a "return", -1 for an "error" (after a message) or no
 * answer.
 */
static int qmp(struct qemu *q, const char *cmd, char *ans, size_t len)
{
	if (write_all(q->fd, (const uint8_t *)cmd, strlen(cmd)))
		return -1;
	for (;;) {
		if (qmp_line(q, ans, len))
			return -1;
		if (strstr(ans, "\"return\""))
			return 0;
		if (strstr(ans, "\"error\"")) {
			fprintf(stderr, "ram-vs-qemu: QMP %s: %s\n", cmd, ans);
			return -1;
		}
	}
}

/**
 * qemu_stop() - Kill a QEMU and close its QMP connection.
 * @q: the QEMU.
 */
static void qemu_stop(struct qemu *q)
{
	if (q->fd >= 0)
		close(q->fd);
	if (q->pid > 0) {
		kill(q->pid, SIGKILL);
		waitpid(q->pid, NULL, 0);
	}
	q->fd = -1;
	q->pid = -1;
	q->have = 0;
}

/**
 * arg() - A writable copy of a constant argument, for execvp().
 * @s: the argument.
 *
 * Called in the forked child only, which execs or exits.
 *
 * Return: the copy; out of memory, the child exits with 127.
 */
static char *arg(const char *s)
{
	char *p = strdup(s);

	if (!p)
		_exit(127);
	return p;
}

/**
 * qemu_start() - Start QEMU on the image and connect to its QMP socket.
 * @q: the QEMU.
 * @name: "src" or "dst" (its socket and log in rb.dir).
 * @incoming: start with -incoming defer.
 *
 * Return: 0, or -1 after a message (nothing left running).
 */
static int qemu_start(struct qemu *q, const char *name, bool incoming)
{
	char sock[300], qmp_arg[340], mem[420], log[300], line[4096];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char *argv[24];
	double t0 = now();
	size_t k;
	int n = 0, fd, st;

	snprintf(sock, sizeof(sock), "%s/%s.qmp", rb.dir, name);
	snprintf(log, sizeof(log), "%s/%s.log", rb.dir, name);
	snprintf(qmp_arg, sizeof(qmp_arg), "unix:%s,server=on,wait=off", sock);
	snprintf(mem, sizeof(mem),
		 "memory-backend-file,id=m0,size=1G,mem-path=%s,share=off,"
		 "prealloc=on",
		 rb.image);
	unlink(sock);
	q->fd = -1;
	q->have = 0;
	fflush(stdout);
	fflush(stderr);
	q->pid = fork();
	if (q->pid == 0) {
		/* In the child: argv's copies live until execvp(). */
		static const char *const fixed[] = {
			QEMU_BIN, "-M",		 "pc",	     "-m",   "1G",
			"-S",	  "-nodefaults", "-display", "none", "-object"};
		static const char *const incoming_args[] = {"-incoming",
							    "defer"};

		for (k = 0; k < sizeof(fixed) / sizeof(fixed[0]); k++)
			argv[n++] = arg(fixed[k]);
		argv[n++] = mem;
		argv[n++] = arg("-machine");
		argv[n++] = arg("memory-backend=m0");
		argv[n++] = arg("-qmp");
		argv[n++] = qmp_arg;
		for (k = 0; incoming && k < 2; k++)
			argv[n++] = arg(incoming_args[k]);
		argv[n] = NULL;
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(QEMU_BIN, argv);
		_exit(127);
	}
	if (q->pid < 0)
		return sys_failed("ram-vs-qemu: fork");
	if (strlen(sock) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "ram-vs-qemu: %s: too long for a socket\n",
			sock);
		qemu_stop(q);
		return -1;
	}
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	/* Prealloc of 1 GiB takes a moment: wait for the socket. */
	while (now() - t0 < QEMU_START_S) {
		if (waitpid(q->pid, &st, WNOHANG) == q->pid) {
			q->pid = -1;
			break;
		}
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd >= 0 &&
		    !connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			q->fd = fd;
			break;
		}
		if (fd >= 0)
			close(fd);
		usleep(20000);
	}
	if (q->fd < 0 || qmp_line(q, line, sizeof(line)) ||
	    !strstr(line, "\"QMP\"") ||
	    qmp(q, "{\"execute\":\"qmp_capabilities\"}\n", line,
		sizeof(line))) {
		fprintf(stderr,
			"ram-vs-qemu: %s did not start (see %s): skipping\n",
			QEMU_BIN, log);
		qemu_stop(q);
		return -1;
	}
	return 0;
}

/**
 * free_port() - A loopback TCP port free now.
 *
 * Return: the port, or 0.
 */
static unsigned free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	unsigned port = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/**
 * qemu_run() - Baseline: QEMU migrates the image, migrate to completed.
 * @b: the bench.
 * @secs: receives the time.
 *
 * Return: 0, or -1 after a message.
 */
static int qemu_run(struct bench *b, double *secs)
{
	char cmd[256], ans[8192];
	unsigned port = free_port();
	double t0;
	int ret = -1;

	(void)b;
	if (qemu_start(&qsrc, "src", false) || qemu_start(&qdst, "dst", true))
		goto out;
	snprintf(cmd, sizeof(cmd),
		 "{\"execute\":\"migrate-set-parameters\",\"arguments\":"
		 "{\"max-bandwidth\":107374182400}}\n");
	if (qmp(&qsrc, cmd, ans, sizeof(ans)))
		goto out;
	snprintf(cmd, sizeof(cmd),
		 "{\"execute\":\"migrate-incoming\",\"arguments\":"
		 "{\"uri\":\"tcp:127.0.0.1:%u\"}}\n",
		 port);
	if (qmp(&qdst, cmd, ans, sizeof(ans)))
		goto out;
	snprintf(cmd, sizeof(cmd),
		 "{\"execute\":\"migrate\",\"arguments\":"
		 "{\"uri\":\"tcp:127.0.0.1:%u\"}}\n",
		 port);
	t0 = now();
	if (qmp(&qsrc, cmd, ans, sizeof(ans)))
		goto out;
	for (;;) {
		if (qmp(&qsrc, "{\"execute\":\"query-migrate\"}\n", ans,
			sizeof(ans)))
			goto out;
		if (strstr(ans, "\"status\": \"completed\"") ||
		    strstr(ans, "\"status\":\"completed\""))
			break;
		if (strstr(ans, "\"failed\"") || strstr(ans, "\"cancelled\"")) {
			fprintf(stderr, "ram-vs-qemu: QEMU's migration: %s\n",
				ans);
			goto out;
		}
		if (now() - t0 > 600) {
			fprintf(stderr, "ram-vs-qemu: QEMU's migration did not "
					"complete in 600 s\n");
			goto out;
		}
		usleep(1000);
	}
	*secs = since(t0);
	ret = 0;
out:
	qemu_stop(&qsrc);
	qemu_stop(&qdst);
	return ret;
}

/**
 * demo_dest_main() - Receiver: the demo's blank machine and demo_load().
 *
 * Return: 0, or 1 on failure.
 */
static int demo_dest_main(void)
{
	struct demo_vm vm;
	struct demo_result res;
	ms_stream *in = NULL;
	int fd, ret;

	ret = demo_vm_init_blank(&vm, &rb.vm.cfg);
	if (ret)
		return 1;
	ram_ready();
	if (ram_accept(&fd, 0))
		return 1;
	ret = ms_stream_new_fd(&in, fd, MS_STREAM_READER, 0, &demo_read_opts);
	if (!ret)
		ret = demo_load(&vm, in, NULL, 0, &res);
	ms_stream_close(in);
	if (ret)
		fprintf(stderr, "ram-vs-qemu: destination: %s\n", res.errmsg);
	if (!ret && rb.calls == 1 &&
	    memcmp(vm.ram, rb.vm.ram, vm.npages * PAGE)) {
		fprintf(stderr, "ram-vs-qemu: the destination's RAM differs\n");
		ret = -EIO;
	}
	if (write(fd, ret ? "ERR\n" : "OK\n", ret ? 4 : 3) < 0)
		ret = -EPIPE;
	close(fd);
	demo_vm_free(&vm);
	return ret ? 1 : 0;
}

/**
 * demo_vs_run() - Subject: the demo's migration of the same RAM.
 * @b: the bench.
 * @secs: receives the time, from the connection to the answer.
 *
 * Return: 0, or -1 after a message.
 */
static int demo_vs_run(struct bench *b, double *secs)
{
	struct demo_save_opts o = {.profile = MS_PROFILE_NATIVE,
				   .downtime_ms = 300,
				   .max_rounds = DEMO_MAX_ROUNDS,
				   .wait_ack = true};
	struct demo_result res;
	double t0;
	pid_t pid;
	int fd, ret;

	(void)b;
	rb.calls++;
	pid = ram_spawn(demo_dest_main);
	if (pid < 0)
		return sys_failed("ram-vs-qemu: fork");
	t0 = now();
	fd = ram_connect(0);
	if (fd < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return sys_failed("ram-vs-qemu: connect");
	}
	ret = demo_save(&rb.vm, fd, &o, &res);
	*secs = since(t0);
	close(fd);
	if (ret) {
		fprintf(stderr, "ram-vs-qemu: %s\n", res.errmsg);
		kill(pid, SIGKILL);
	}
	if (ram_reap(pid, "demo's destination") || ret)
		return -1;
	return 0;
}

/**
 * qemu_found() - Whether QEMU_BIN is an executable on $PATH.
 *
 * Return: true if found.
 */
static bool qemu_found(void)
{
	const char *path = getenv("PATH");
	char dir[4096], file[4400];
	size_t n;

	while (path && *path) {
		n = strcspn(path, ":");
		if (n && n < sizeof(dir)) {
			memcpy(dir, path, n);
			dir[n] = '\0';
			snprintf(file, sizeof(file), "%s/%s", dir, QEMU_BIN);
			if (!access(file, X_OK))
				return true;
		}
		path += n + (path[n] == ':');
	}
	return false;
}

/**
 * write_image() - The source machine's RAM into rb.image.
 *
 * Return: 0, or -1 after a message.
 */
static int write_image(void)
{
	const char *tmpdir = getenv("TMPDIR");
	size_t bytes = rb.vm.npages * PAGE;
	int fd;

	snprintf(rb.dir, sizeof(rb.dir), "%s/migstream-bench-XXXXXX",
		 tmpdir && *tmpdir ? tmpdir : "/tmp");
	if (!mkdtemp(rb.dir)) {
		rb.dir[0] = '\0';
		return sys_failed("ram-vs-qemu: mkdtemp");
	}
	snprintf(rb.image, sizeof(rb.image), "%s/ram.img", rb.dir);
	fd = open(rb.image, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write_all(fd, rb.vm.ram, bytes) || close(fd)) {
		if (fd >= 0)
			close(fd);
		return sys_failed("ram-vs-qemu: writing the RAM image");
	}
	return 0;
}

/**
 * ram_vs_qemu_setup() - The 1 GiB machine, its image, a QEMU probe.
 * @b: the bench.
 *
 * Return: 0, 1 to skip the case (after a message), or -1.
 */
static int ram_vs_qemu_setup(struct bench *b)
{
	memset(&rb, 0, sizeof(rb));
	rb.lfd = -1;
	qsrc.pid = qdst.pid = -1;
	qsrc.fd = qdst.fd = -1;
	if (b->cfg->quick) {
		note(b, "ram-vs-qemu: skipped under --quick (two 1 GiB QEMU "
			"processes and seconds per run)\n");
		return 1;
	}
	if (!qemu_found()) {
		note(b, "ram-vs-qemu: skipped: %s is not on PATH\n", QEMU_BIN);
		return 1;
	}
	if (b->cfg->ext.ram.bytes != (size_t)1 << 30) {
		note(b, "ram-vs-qemu: skipped: QEMU's machine has 1 GiB, this "
			"run's RAM another size\n");
		return 1;
	}
	if (ram_setup_common(b, "ram-vs-qemu", DEMO_DEFAULT_VDEV))
		return -1;
	read_loadavg(rb.load0, sizeof(rb.load0));
	if (write_image())
		return -1;
	if (qemu_start(&qsrc, "src", false)) {
		qemu_stop(&qsrc);
		return 1;
	}
	qemu_stop(&qsrc);
	return 0;
}

/**
 * ram_vs_qemu_teardown() - The load note, the image, the machine.
 * @b: the bench.
 *
 * Return: 0.
 */
static int ram_vs_qemu_teardown(struct bench *b)
{
	char load1[128], path[400];

	if (rb.dir[0]) {
		read_loadavg(load1, sizeof(load1));
		note(b,
		     "ram-vs-qemu: load average %s at the start, %s at the "
		     "end (/proc/loadavg, 1/5/15 min, %ld cores online)\n",
		     rb.load0, load1, sysconf(_SC_NPROCESSORS_ONLN));
		unlink(rb.image);
		snprintf(path, sizeof(path), "%s/src.log", rb.dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/dst.log", rb.dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/src.qmp", rb.dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/dst.qmp", rb.dir);
		unlink(path);
		rmdir(rb.dir);
		rb.dir[0] = '\0';
	}
	return ram_teardown(b);
}

const struct group bench_group_ram_vs_qemu = {
	.vs = "qemu-7.2-migrate",
	.unit = "bytes",
	.setup = ram_vs_qemu_setup,
	.teardown = ram_vs_qemu_teardown,
	.baseline = qemu_run,
	.subj = {{"ram-vs-qemu", demo_vs_run, METRIC_MBPS, 15.0, 0}},
	.nsubj = 1,
};

/*
 * ram-zero-scan.
 */

static int zero_setup(struct bench *b)
{
	memset(&rb, 0, sizeof(rb));
	rb.lfd = -1;
	rb.zero_len = b->cfg->ext.ram.zero_bytes;
	rb.zero = map_ram(rb.zero_len);
	if (!rb.zero)
		return sys_failed("ram-zero-scan: mmap");
	b->units = (double)rb.zero_len;
	return 0;
}

static int zero_teardown(struct bench *b)
{
	(void)b;
	if (rb.zero && rb.zero_sum == 0) {
		fprintf(stderr, "ram-zero-scan: no page was found zero\n");
		munmap(rb.zero, rb.zero_len);
		return -1;
	}
	if (rb.zero)
		munmap(rb.zero, rb.zero_len);
	rb.zero = NULL;
	return 0;
}

/**
 * zero_memcmp_run() - Baseline: memcmp() of each page with a zero page.
 * @b: the bench.
 * @secs: receives the time.
 *
 * Return: 0, or -1 when a page is not found zero.
 */
static int zero_memcmp_run(struct bench *b, double *secs)
{
	static const uint8_t zero[PAGE];
	size_t i, n = rb.zero_len / PAGE, found = 0;
	double t0 = now();

	(void)b;
	for (i = 0; i < n; i++)
		found += !memcmp(rb.zero + i * PAGE, zero, PAGE);
	*secs = since(t0);
	rb.zero_sum += found;
	return found == n ? 0 : -1;
}

/**
 * zero_scan_run() - Subject: ms_buffer_is_zero() on each page.
 * @b: the bench.
 * @secs: receives the time.
 *
 * Return: 0, or -1 when a page is not found zero.
 */
static int zero_scan_run(struct bench *b, double *secs)
{
	size_t i, n = rb.zero_len / PAGE, found = 0;
	double t0 = now();

	(void)b;
	for (i = 0; i < n; i++)
		found += ms_buffer_is_zero(rb.zero + i * PAGE, PAGE);
	*secs = since(t0);
	rb.zero_sum += found;
	if (found != n)
		fprintf(stderr, "ram-zero-scan: %zu of %zu pages found zero\n",
			found, n);
	return found == n ? 0 : -1;
}

const struct group bench_group_ram_zero_scan = {
	.vs = "memcmp-zero-page",
	.unit = "bytes",
	.setup = zero_setup,
	.teardown = zero_teardown,
	.baseline = zero_memcmp_run,
	.subj = {{"ram-zero-scan", zero_scan_run, METRIC_MBPS, 1.0, 0}},
	.nsubj = 1,
};
