/* SPDX-License-Identifier: MIT */
/*
 * The end-to-end demo's cases (demo-migrate, demo-migrate-qemu); their
 * group is listed in bench/cases.h.
 *
 * demo-migrate: the migrate demo's machine (bench_demo_config.bytes of
 * RAM, half the pages zero, a guest writing during precopy, the devices
 * and the vfio-user device) migrated by examples/migrate-demo-machine.c
 * to a destination process over a loopback TCP socket, from the first
 * byte to the destination's "loaded" answer.  The baseline sends the
 * same non-zero pages with writev() over the same kind of socket to a
 * process that reads them into a buffer, and waits for its answer.  The
 * destination processes are forked and ready (memory touched) before the
 * clock starts.  The first run's destination also checks every byte
 * against the source.  The downtime is reported on stderr.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../examples/migrate-demo.h"
#include "cases.h"

#define DEMO_BENCH_IOV 64

/**
 * struct demo_bench - State of the demo-migrate case.
 * @vm: the source machine, kept across repetitions.
 * @lfd: the listening loopback socket.
 * @addr: its address.
 * @nonzero: bytes of non-zero pages at the start.
 * @calls: subject runs so far, the untimed warm-up included.
 * @runs: timed runs of the native subject so far.
 * @downtime: their downtimes, in seconds.
 * @rounds: precopy rounds of the last run.
 * @resent: pages resent in the last run.
 */
struct demo_bench {
	struct demo_vm vm;
	int lfd;
	struct sockaddr_in addr;
	uint64_t nonzero;
	int calls;
	int runs;
	double downtime[MAX_REPS + 1];
	unsigned rounds;
	uint64_t resent;
};

static struct demo_bench demo_b;

/**
 * demo_bench_setup() - Build the source machine and the listening socket.
 * @b: the bench; @b->units gets the non-zero bytes.
 *
 * Return: 0, or -1 after a message.
 */
static int demo_bench_setup(struct bench *b)
{
	const struct bench_demo_config *c = &b->cfg->ext.demo;
	struct demo_config cfg = {
		.ram_size = c->bytes,
		.vdev_size = DEMO_DEFAULT_VDEV,
		.seed = 1,
		.zero_pct = c->zero_pct,
		.rate = c->rate,
		.nic_version = DEMO_NIC_VERSION,
	};
	static const uint8_t zero[DEMO_PAGE];
	socklen_t len = sizeof(demo_b.addr);
	size_t i;
	int ret;

	memset(&demo_b, 0, sizeof(demo_b));
	demo_b.lfd = -1;
	ret = demo_vm_init(&demo_b.vm, &cfg);
	if (ret) {
		fprintf(stderr, "demo-migrate: %s\n", strerror(-ret));
		return -1;
	}
	for (i = 0; i < demo_b.vm.npages; i++)
		if (memcmp(demo_b.vm.ram + i * DEMO_PAGE, zero, DEMO_PAGE))
			demo_b.nonzero += DEMO_PAGE;
	demo_b.lfd = socket(AF_INET, SOCK_STREAM, 0);
	demo_b.addr.sin_family = AF_INET;
	demo_b.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (demo_b.lfd < 0 ||
	    bind(demo_b.lfd, (struct sockaddr *)&demo_b.addr,
		 sizeof(demo_b.addr)) ||
	    listen(demo_b.lfd, 4) ||
	    getsockname(demo_b.lfd, (struct sockaddr *)&demo_b.addr, &len))
		return sys_failed("demo-migrate: listening socket");
	b->units = (double)demo_b.nonzero;
	return 0;
}

/**
 * demo_bench_teardown() - Report the downtimes and free the machine.
 * @b: the bench.
 *
 * Return: 0.
 */
static int demo_bench_teardown(struct bench *b)
{
	double d[MAX_REPS + 1], med;
	int n = demo_b.runs;

	(void)b;
	if (n > 0) {
		memcpy(d, demo_b.downtime, sizeof(d[0]) * (size_t)n);
		med = median(d, n); /* sorts d */
		fprintf(stderr,
			"demo-migrate: downtime median %.1f ms (min %.1f, "
			"max %.1f) over %d runs; last run: %u precopy "
			"round(s), %llu pages resent\n",
			med * 1e3, d[0] * 1e3, d[n - 1] * 1e3, n, demo_b.rounds,
			(unsigned long long)demo_b.resent);
	}
	if (demo_b.lfd >= 0)
		close(demo_b.lfd);
	demo_vm_free(&demo_b.vm);
	return 0;
}

/* In a forked receiver: the write end of the pipe that says it is
 * ready. */
static int demo_ready_fd = -1;

/**
 * demo_ready() - In a forked receiver: tell the parent it is ready.
 */
static void demo_ready(void)
{
	char c = 1;

	if (write(demo_ready_fd, &c, 1) != 1)
		_exit(3);
	close(demo_ready_fd);
}

/**
 * demo_dest() - Destination: a blank machine, the load, "OK", and on
 *               the first run a check of every byte against the
 *               replayed source.
 * @check: whether to check.
 *
 * Return: 0, or 1 on failure.
 */
static int demo_dest(bool check)
{
	struct demo_vm vm, want;
	struct demo_result res;
	ms_stream *in = NULL;
	char why[128];
	int fd, ret;

	ret = demo_vm_init_blank(&vm, &demo_b.vm.cfg);
	if (ret)
		return 1;
	demo_ready();
	fd = accept(demo_b.lfd, NULL, NULL);
	if (fd < 0)
		return 1;
	ret = ms_stream_new_fd(&in, fd, MS_STREAM_READER, 0, &demo_read_opts);
	if (!ret)
		ret = demo_load(&vm, in, NULL, 0, &res);
	ms_stream_close(in);
	if (ret)
		fprintf(stderr, "demo-migrate: destination: %s\n", res.errmsg);
	if (write(fd, ret ? "ERR\n" : "OK\n", ret ? 4 : 3) < 0)
		ret = -EPIPE;
	close(fd);
	if (!ret && check) {
		ret = demo_vm_init(&want, &demo_b.vm.cfg);
		if (!ret) {
			demo_vm_step(&want, vm.cpu.pc);
			ret = demo_vm_compare(&vm, &want, why, sizeof(why));
			if (ret)
				fprintf(stderr, "demo-migrate: %s\n", why);
		}
		demo_vm_free(&want);
	}
	demo_vm_free(&vm);
	return ret ? 1 : 0;
}

/**
 * demo_plain_dest() - Baseline receiver: read everything into a buffer,
 *                     count, answer.
 * @check: unused.
 *
 * Return: 0, or 1 on failure.
 */
static int demo_plain_dest(bool check)
{
	size_t cap = 1 << 20;
	uint8_t *buf = malloc(cap);
	uint64_t got = 0;
	ssize_t n;
	int fd;

	(void)check;
	if (!buf)
		return 1;
	memset(buf, 0, cap);
	demo_ready();
	fd = accept(demo_b.lfd, NULL, NULL);
	if (fd < 0)
		return 1;
	while ((n = read(fd, buf, cap)) > 0)
		got += (uint64_t)n;
	if (write(fd, "OK\n", 3) < 0)
		n = -1;
	close(fd);
	free(buf);
	return n < 0 || got != demo_b.nonzero;
}

/**
 * demo_spawn() - Fork a receiver and wait until it is ready.
 * @child: runs in the child; its result is the exit status.
 * @check: passed to @child.
 *
 * Return: the child's pid, or -1.
 */
static pid_t demo_spawn(int (*child)(bool check), bool check)
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
		demo_ready_fd = p[1];
		_exit(child(check));
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
 * demo_connect() - Connect to the listening socket.
 *
 * Return: the socket, or -1.
 */
static int demo_connect(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 ||
	    connect(fd, (struct sockaddr *)&demo_b.addr, sizeof(demo_b.addr))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/**
 * demo_reap() - Wait for a receiver; it must exit with 0.
 * @pid: the receiver.
 * @who: its name, for the message.
 *
 * Return: 0, or -1 after a message.
 */
static int demo_reap(pid_t pid, const char *who)
{
	int status;

	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		fprintf(stderr, "demo-migrate: the %s failed\n", who);
		return -1;
	}
	return 0;
}

/**
 * demo_plain_run() - Baseline: the non-zero pages through writev().
 * @b: the bench.
 * @secs: receives the time.
 *
 * Return: 0, or -1 after a message.
 */
static int demo_plain_run(struct bench *b, double *secs)
{
	struct demo_vm *vm = &demo_b.vm;
	struct iovec iov[DEMO_BENCH_IOV];
	static const uint8_t zero[DEMO_PAGE];
	size_t i, k;
	ssize_t n;
	double t0;
	char ack[4];
	int fd, cnt = 0, ret = 0;
	pid_t pid;

	(void)b;
	/* The guest of the demo's runs may have written to zero pages. */
	demo_b.nonzero = 0;
	for (i = 0; i < vm->npages; i++)
		if (memcmp(vm->ram + i * DEMO_PAGE, zero, DEMO_PAGE))
			demo_b.nonzero += DEMO_PAGE;
	pid = demo_spawn(demo_plain_dest, false);
	if (pid < 0)
		return sys_failed("demo-migrate: fork");
	t0 = now();
	fd = demo_connect();
	if (fd < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return sys_failed("demo-migrate: connect");
	}
	/* The same non-zero pages the demo sends, 64 to a writev(). */
	for (i = 0; i <= vm->npages && !ret; i++) {
		if (i < vm->npages) {
			uint8_t *p = vm->ram + i * DEMO_PAGE;

			if (!memcmp(p, zero, DEMO_PAGE))
				continue;
			iov[cnt].iov_base = p;
			iov[cnt].iov_len = DEMO_PAGE;
			if (++cnt < DEMO_BENCH_IOV)
				continue;
		}
		for (k = 0; cnt > 0 && !ret;) {
			n = writev(fd, iov + k, cnt - (int)k);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				ret = -1;
				break;
			}
			while (n > 0 && (int)k < cnt) {
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
			if ((int)k == cnt)
				cnt = 0;
		}
	}
	shutdown(fd, SHUT_WR);
	if (!ret && read(fd, ack, 3) != 3)
		ret = -1;
	*secs = since(t0);
	close(fd);
	if (demo_reap(pid, "plain loop's receiver") || ret)
		return -1;
	return 0;
}

/**
 * demo_migrate_common() - The demo's migration, to the answer.
 * @b: the bench.
 * @secs: receives the time.
 * @profile: the stream grammar.
 *
 * Return: 0, or -1 after a message.
 */
static int demo_migrate_common(struct bench *b, double *secs,
			       ms_profile profile)
{
	const struct bench_demo_config *c = &b->cfg->ext.demo;
	struct demo_save_opts o = {.profile = profile,
				   .downtime_ms = c->downtime_ms,
				   .max_rounds = DEMO_MAX_ROUNDS,
				   .wait_ack = true};
	struct demo_result res;
	ms_ram_stats st;
	pid_t pid = demo_spawn(demo_dest, demo_b.calls++ == 0);
	double t0;
	int fd, ret;

	if (pid < 0)
		return sys_failed("demo-migrate: fork");
	if (demo_guest_start(&demo_b.vm)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return sys_failed("demo-migrate: guest thread");
	}
	t0 = now();
	fd = demo_connect();
	if (fd < 0) {
		demo_guest_stop(&demo_b.vm);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return sys_failed("demo-migrate: connect");
	}
	ret = demo_save(&demo_b.vm, fd, &o, &res);
	*secs = since(t0);
	close(fd);
	demo_guest_stop(&demo_b.vm);
	if (ret)
		fprintf(stderr, "demo-migrate: %s\n", res.errmsg);
	if (demo_reap(pid, "destination") || ret)
		return -1;
	/* The downtime reported is the native profile's, warm-up aside. */
	if (profile == MS_PROFILE_NATIVE && demo_b.calls > 1 &&
	    demo_b.runs <= MAX_REPS)
		demo_b.downtime[demo_b.runs++] = res.downtime_s;
	demo_ram_stats(&demo_b.vm, &st);
	demo_b.rounds = demo_b.vm.rounds;
	demo_b.resent = st.resent;
	b->out_bytes = 0;
	return 0;
}

/**
 * demo_migrate_run() - Subject: the demo's migration (native profile).
 * @b: the bench.
 * @secs: receives the time.
 *
 * Return: 0, or -1 after a message.
 */
static int demo_migrate_run(struct bench *b, double *secs)
{
	return demo_migrate_common(b, secs, MS_PROFILE_NATIVE);
}

/**
 * demo_migrate_qemu_run() - Subject, for information: the same in QEMU's
 *                           grammar (no checksums).
 * @b: the bench.
 * @secs: receives the time.
 *
 * Return: 0, or -1 after a message.
 */
static int demo_migrate_qemu_run(struct bench *b, double *secs)
{
	return demo_migrate_common(b, secs, MS_PROFILE_QEMU);
}

const struct group bench_group_demo_migrate = {
	.vs = "plain-tcp-loop",
	.unit = "bytes",
	.setup = demo_bench_setup,
	.teardown = demo_bench_teardown,
	.baseline = demo_plain_run,
	.subj = {{"demo-migrate", demo_migrate_run, METRIC_MBPS, 0.80, 0},
		 {"demo-migrate-qemu", demo_migrate_qemu_run, METRIC_NONE, 0,
		  0}},
	.nsubj = 2,
};
