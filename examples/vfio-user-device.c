/* SPDX-License-Identifier: MIT */
/*
 * vfio-user-device: a device's state moved between two processes by the
 * vfio-user adapter, first through libvfio-user's API v1 (the migration
 * region: pending_bytes, data_offset, data_size), then through API v2
 * (read_data/write_data).
 *
 * A vfio-user server hands the adapter's callbacks to libvfio-user (see
 * MS_VFU_DEFINE_CALLBACKS_V1/V2 in <migstream/vfio_user.h>) and the
 * library calls them when the client (QEMU) drives the migration.  Here
 * each process calls them itself, in the order libvfio-user does, and a
 * socketpair stands in for the migration stream between the source and
 * the destination QEMU:
 *
 *   source (child)                        destination (parent)
 *                                         transition(RESUME)
 *   transition(PRE_COPY)
 *   while get_pending_bytes() > 0:        for each window received:
 *     prepare_data(&offset, &size)          prepare_data(&offset, NULL)
 *     read_data(buf, size, offset)          write_data(buf, n, offset)
 *     send the window                       data_written(n)
 *   transition(STOP_AND_COPY), again
 *   transition(STOP), send END            transition(RUNNING): loaded
 *
 * v2 has no registers: the source reads with read_data() until it returns
 * 0 and the destination writes each chunk with write_data().
 *
 * The device has an iterative part (RAM, sent in rounds while the guest
 * runs and writes to it) and a non-iterative part (registers with a
 * subsection), saved only once the device is stopped.  The destination
 * checks the result byte for byte.
 *
 * Build against an installed library with
 *   cc vfio-user-device.c $(pkg-config --cflags --libs migstream)
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <migstream/migstream.h>

#define PAGE		4096
#define PAGES_PER_ROUND 64 /* 256 KiB of RAM per precopy round */
#define NREGS		64
#define RAM_END		UINT64_MAX /* ends a RAM section's page list */

/*
 * The device.
 */

struct device {
	uint8_t *ram; /* iterative: sent in rounds while the guest runs */
	bool *dirty;
	size_t npages;
	size_t ndirty;
	size_t cursor; /* where the next round starts looking */
	unsigned rounds;
	uint32_t regs[NREGS]; /* non-iterative, */
	uint64_t irq_mask;    /* with this in a subsection */
	bool running;	      /* not migrated: set by the hooks */
};

static int device_init(struct device *d, size_t size, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull | 1;
	size_t i;

	memset(d, 0, sizeof(*d));
	d->npages = (size + PAGE - 1) / PAGE;
	d->ram = malloc(d->npages * PAGE + 1);
	d->dirty = calloc(d->npages + 1, sizeof(bool));
	if (!d->ram || !d->dirty)
		return -ENOMEM;
	for (i = 0; i < d->npages * PAGE / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(d->ram + i * 8, &x, 8);
	}
	for (i = 0; i < NREGS; i++)
		d->regs[i] = (uint32_t)(seed << 16) + (uint32_t)i;
	d->irq_mask = 0xfeedface00000000ull | seed;
	return 0;
}

static void device_free(struct device *d)
{
	free(d->ram);
	free(d->dirty);
}

static bool device_equal(const struct device *a, const struct device *b)
{
	return a->npages == b->npages &&
	       !memcmp(a->ram, b->ram, a->npages * PAGE) &&
	       !memcmp(a->regs, b->regs, sizeof(a->regs)) &&
	       a->irq_mask == b->irq_mask;
}

/* The guest keeps running during precopy and writes to page 0, which the
 * first round already sent: dirty tracking makes it go again. */
static void guest_runs(struct device *d)
{
	if (!d->npages)
		return;
	d->ram[0] ^= 0xff;
	if (!d->dirty[0]) {
		d->dirty[0] = true;
		d->ndirty++;
	}
}

/*
 * Section handlers: "ram" is iterative, "regs" is not.
 */

static int ram_save_setup(void *opaque, ms_stream *s)
{
	struct device *d = opaque;
	size_t i;

	for (i = 0; i < d->npages; i++)
		d->dirty[i] = true; /* dirty tracking starts */
	d->ndirty = d->npages;
	d->cursor = 0;
	d->rounds = 0;
	return ms_put_be64(s, d->npages);
}

/* Up to @max dirty pages: be64 index and the page; then RAM_END. */
static int ram_send(ms_stream *s, struct device *d, size_t max)
{
	size_t sent = 0, i;

	while (sent < max && d->ndirty) {
		i = d->cursor;
		d->cursor = (d->cursor + 1) % d->npages;
		if (!d->dirty[i])
			continue;
		d->dirty[i] = false;
		d->ndirty--;
		sent++;
		ms_put_be64(s, i);
		ms_put_buffer(s, d->ram + i * PAGE, PAGE); /* copied */
	}
	ms_put_be64(s, RAM_END);
	return ms_stream_error(s);
}

static int ram_save_iterate(void *opaque, ms_stream *s)
{
	struct device *d = opaque;
	int ret = ram_send(s, d, PAGES_PER_ROUND);

	if (++d->rounds == 1)
		guest_runs(d);
	return ret ? ret : d->ndirty > 0; /* 1: more to send */
}

static uint64_t ram_pending(void *opaque)
{
	struct device *d = opaque;

	return (uint64_t)d->ndirty * PAGE;
}

static int ram_save_complete(void *opaque, ms_stream *s)
{
	return ram_send(s, opaque, SIZE_MAX);
}

static int ram_load(void *opaque, ms_stream *s, uint32_t version_id,
		    uint8_t type)
{
	struct device *d = opaque;
	uint64_t v;

	(void)version_id;
	if (type == MS_REC_START) {
		if (!ms_get_be64(s, &v) && v != d->npages)
			return ms_stream_set_error(
				s, -EINVAL, "%llu pages, expected %zu",
				(unsigned long long)v, d->npages);
		return ms_stream_error(s);
	}
	while (!ms_get_be64(s, &v) && v != RAM_END) {
		if (v >= d->npages)
			return ms_stream_set_error(s, -EINVAL, "page %llu",
						   (unsigned long long)v);
		ms_get_buffer(s, d->ram + v * PAGE, PAGE);
	}
	return ms_stream_error(s);
}

static int regs_save(void *opaque, ms_stream *s)
{
	struct device *d = opaque;

	ms_put_be32_array(s, d->regs, NREGS);
	ms_put_subsection(s, "regs/irq", 1);
	ms_put_be64(s, d->irq_mask);
	return ms_stream_error(s);
}

static int regs_load(void *opaque, ms_stream *s, uint32_t version_id,
		     uint8_t type)
{
	struct device *d = opaque;
	char name[MS_COUNTED_STRING_MAX + 1];
	uint32_t sub_version;
	int ret;

	(void)version_id;
	(void)type;
	ms_get_be32_array(s, d->regs, NREGS);
	while ((ret = ms_get_subsection(s, "regs", name, &sub_version)) == 1) {
		if (strcmp(name, "regs/irq"))
			return ms_stream_set_error(
				s, -ENOENT, "unknown subsection %s", name);
		ms_get_be64(s, &d->irq_mask);
	}
	return ret < 0 ? ret : ms_stream_error(s);
}

static const ms_handler_ops ram_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_setup = ram_save_setup,
	.save_iterate = ram_save_iterate,
	.pending = ram_pending,
	.save_complete = ram_save_complete,
	.load = ram_load,
};

static const ms_handler_ops regs_ops = {
	.version = MS_HANDLER_OPS_VERSION,
	.save_state = regs_save,
	.load = regs_load,
};

static int device_registry(struct device *d, ms_registry **out)
{
	ms_registry *reg;
	int ret;

	ret = ms_registry_new(&reg, NULL);
	if (ret)
		return ret;
	ret = ms_registry_add(reg, "ram", 0, 1, 1, &ram_ops, d, NULL);
	if (!ret)
		ret = ms_registry_add(reg, "regs", 0, 1, 1, &regs_ops, d, NULL);
	if (ret) {
		ms_registry_free(reg);
		return ret;
	}
	*out = reg;
	return 0;
}

/*
 * The migration stream between the two processes: a header, then the
 * bytes of one window (or chunk).
 */

enum { MSG_DATA = 1, MSG_END = 2, MSG_FAIL = 3 };

struct msg {
	uint32_t type;
	uint32_t err; /* MSG_FAIL: the source's errno */
	uint64_t len; /* MSG_DATA: bytes that follow */
};

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE; /* the other side went away */
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_msg(int fd, uint32_t type, uint32_t err, const void *buf,
		    size_t len)
{
	struct msg m = {type, err, len};
	int ret = write_all(fd, &m, sizeof(m));

	return ret ? ret : write_all(fd, buf, len);
}

/*
 * The source.
 */

/* v1: one iteration per window, as libvfio-user drives the callbacks when
 * QEMU reads pending_bytes, data_offset, data_size and then the data. */
static int source_v1_drain(ms_vfu_adapter *a, int fd, uint8_t *buf)
{
	uint64_t offset, size;
	int ret;

	while (ms_vfu_v1_get_pending_bytes(a) > 0) {
		if (ms_vfu_v1_prepare_data(a, &offset, &size))
			return -errno;
		if (ms_vfu_v1_read_data(a, buf, size, offset) != (ssize_t)size)
			return -errno;
		ret = send_msg(fd, MSG_DATA, 0, buf, size);
		if (ret)
			return ret;
	}
	return 0;
}

/* v2: read_data until it returns 0 ("no more data"). */
static int source_v2_drain(ms_vfu_adapter *a, int fd, uint8_t *buf, size_t size)
{
	ssize_t n;
	int ret;

	while ((n = ms_vfu_v2_read_data(a, buf, size)) > 0) {
		ret = send_msg(fd, MSG_DATA, 0, buf, (size_t)n);
		if (ret)
			return ret;
	}
	return n < 0 ? -errno : 0;
}

/*
 * The device's own work on a transition (ms_vfu_opts' hooks, which the
 * callback tables of a real server reach through ms_vfu_transition()): it
 * stops before the save completes and runs again once loaded, or once a
 * save is cancelled.  A real device stops and re-arms its timers,
 * interrupts and DMA here.  The non-iterative state is taken in the
 * transition into STOP_AND_COPY, right after device_pre().
 */
static int device_pre(void *opaque, ms_vfu_migr_state from,
		      ms_vfu_migr_state to)
{
	struct device *d = opaque;

	(void)from;
	if (to == MS_VFU_MIGR_STATE_STOP_AND_COPY ||
	    to == MS_VFU_MIGR_STATE_STOP)
		d->running = false;
	return 0;
}

static int device_post(void *opaque, ms_vfu_migr_state from,
		       ms_vfu_migr_state to)
{
	struct device *d = opaque;

	(void)from;
	if (to == MS_VFU_MIGR_STATE_RUNNING)
		d->running = true;
	return 0;
}

/* libvfio-user sends the client only errno: the message goes here. */
static void device_log(void *opaque, int err, const char *msg)
{
	(void)opaque;
	fprintf(stderr, "vfio-user adapter: %s: %s\n", strerror(err), msg);
}

static ms_vfu_opts device_opts(int api, size_t window, struct device *d)
{
	ms_vfu_opts o = {.version = MS_VFU_OPTS_VERSION,
			 .api = api,
			 .window = window,
			 .pre_transition = device_pre,
			 .post_transition = device_post,
			 .log = device_log,
			 .opaque = d};

	return o;
}

static int source_migrate(int api, size_t state_size, size_t window, int fd)
{
	struct device dev;
	ms_vfu_opts opts = device_opts(api, window, &dev);
	ms_registry *reg = NULL;
	ms_vfu_adapter *a = NULL;
	uint8_t *buf = malloc(window);
	int ret;

	ret = buf ? device_init(&dev, state_size, (uint64_t)api) : -ENOMEM;
	dev.running = true;
	if (!ret)
		ret = device_registry(&dev, &reg);
	if (!ret)
		ret = ms_vfu_adapter_new(&a, reg, &opts);
	if (ret)
		goto out_msg;

	/* Pre-copy: the guest runs, RAM goes out in rounds.  Stop-and-copy:
	 * the rest, then the registers.  Then the device is stopped. */
	if (ms_vfu_transition(a, MS_VFU_MIGR_STATE_PRE_COPY))
		goto out_errno;
	ret = api == 1 ? source_v1_drain(a, fd, buf)
		       : source_v2_drain(a, fd, buf, window);
	if (ret)
		goto out_msg;
	if (ms_vfu_transition(a, MS_VFU_MIGR_STATE_STOP_AND_COPY))
		goto out_errno;
	ret = dev.running ? -EBUSY : 0; /* device_pre() stopped it */
	if (!ret)
		ret = api == 1 ? source_v1_drain(a, fd, buf)
			       : source_v2_drain(a, fd, buf, window);
	if (ret)
		goto out_msg;
	if (ms_vfu_transition(a, MS_VFU_MIGR_STATE_STOP))
		goto out_errno;
	ret = send_msg(fd, MSG_END, 0, NULL, 0);
	goto out;

out_errno:
	ret = -errno;
out_msg:
	fprintf(stderr, "source v%d: %s\n", api, strerror(-ret));
	send_msg(fd, MSG_FAIL, (uint32_t)-ret, NULL, 0);
out:
	ms_vfu_adapter_free(a);
	ms_registry_free(reg);
	if (buf)
		device_free(&dev);
	free(buf);
	return ret;
}

/*
 * The destination.
 */

/* v1: the window may be smaller than what arrives (QEMU then writes it in
 * several rounds); each round starts at the offset prepare_data gives. */
static int dest_v1_write(ms_vfu_adapter *a, const uint8_t *data, size_t len)
{
	size_t window = ms_vfu_window_size(a), n;
	uint64_t offset;

	while (len) {
		n = len < window ? len : window;
		if (ms_vfu_v1_prepare_data(a, &offset, NULL) ||
		    ms_vfu_v1_write_data(a, data, n, offset) != (ssize_t)n ||
		    ms_vfu_v1_data_written(a, n))
			return -errno;
		data += n;
		len -= n;
	}
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dest_migrate(int api, size_t state_size, size_t window, int fd)
{
	struct device dev, expect;
	ms_vfu_opts opts = device_opts(api, window, &dev);
	ms_registry *reg = NULL;
	ms_vfu_adapter *a = NULL;
	uint8_t *buf = malloc(window);
	unsigned long chunks = 0;
	struct msg m;
	double t0;
	int ret;

	/* What the source has once the guest wrote during precopy. */
	ret = buf ? device_init(&expect, state_size, (uint64_t)api) : -ENOMEM;
	if (ret)
		goto out_buf;
	guest_runs(&expect);
	ret = device_init(&dev, state_size, 0);
	if (!ret)
		ret = device_registry(&dev, &reg);
	if (!ret)
		ret = ms_vfu_adapter_new(&a, reg, &opts);
	if (ret)
		goto out;

	t0 = now();
	/* libvfio-user v2 walks RUNNING -> STOP -> RESUMING. */
	if ((api == 2 && ms_vfu_transition(a, MS_VFU_MIGR_STATE_STOP)) ||
	    ms_vfu_transition(a, MS_VFU_MIGR_STATE_RESUME))
		goto out_errno;
	for (;;) {
		ret = read_all(fd, &m, sizeof(m));
		if (ret)
			goto out_msg;
		if (m.type == MSG_END)
			break;
		if (m.type == MSG_FAIL) {
			ret = -(int)m.err;
			goto out_msg;
		}
		if (m.type != MSG_DATA || m.len > window) {
			ret = -EPROTO;
			goto out_msg;
		}
		ret = read_all(fd, buf, m.len);
		if (!ret && api == 1)
			ret = dest_v1_write(a, buf, m.len);
		if (!ret && api == 2 &&
		    ms_vfu_v2_write_data(a, buf, m.len) != (ssize_t)m.len)
			ret = -errno;
		if (ret)
			goto out_msg;
		chunks++;
	}
	/* Leaving RESUME completes the load (v2: RESUMING -> STOP ->
	 * RUNNING); a bad or short stream fails here. */
	if ((api == 2 && ms_vfu_transition(a, MS_VFU_MIGR_STATE_STOP)) ||
	    ms_vfu_transition(a, MS_VFU_MIGR_STATE_RUNNING))
		goto out_errno;
	t0 = now() - t0;
	if (!device_equal(&dev, &expect) || !dev.running) {
		fprintf(stderr, "v%d: the state differs\n", api);
		ret = -EIO;
		goto out;
	}
	printf("v%d %-21s %10llu bytes in %7.1f ms (%6.1f MiB/s), %lu %s, "
	       "state identical\n",
	       api, api == 1 ? "(migration region):" : "(read/write_data):",
	       (unsigned long long)ms_vfu_bytes(a), t0 * 1e3,
	       (double)ms_vfu_bytes(a) / (1 << 20) / (t0 > 0 ? t0 : 1e-9),
	       chunks, api == 1 ? "windows" : "chunks");
	goto out;

out_errno:
	ret = -errno;
out_msg:
	fprintf(stderr, "destination v%d: %s\n", api, strerror(-ret));
out:
	ms_vfu_adapter_free(a);
	ms_registry_free(reg);
	device_free(&dev);
	device_free(&expect);
out_buf:
	free(buf);
	return ret;
}

/*
 * Command line.
 */

/* "16M", "64k", "1048576": bytes; 0 if malformed. */
static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	switch (*end) {
	case 'g':
	case 'G':
		v <<= 10;
		/* fall through */
	case 'm':
	case 'M':
		v <<= 10;
		/* fall through */
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	}
	return *end || end == s ? 0 : (size_t)v;
}

static void usage(FILE *f, const char *argv0)
{
	fprintf(f,
		"Usage: %s [--state-size SIZE] [--window SIZE]\n"
		"Migrates a device between two processes through the "
		"vfio-user\n"
		"adapter, with libvfio-user's migration API v1, then v2.\n"
		"  --state-size SIZE  device RAM (default 16M; k, M, G "
		"suffixes)\n"
		"  --window SIZE      v1 data area and v2 read size (default "
		"32k, 16 to 1M)\n"
		"  --help             this text\n",
		argv0);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"state-size", required_argument, NULL, 's'},
		{"window", required_argument, NULL, 'w'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	size_t state_size = 16u << 20, window = MS_VFU_DEFAULT_WINDOW;
	int fds[2], c, status, api, ret = 0;
	pid_t pid;

	while ((c = getopt_long(argc, argv, "s:w:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			state_size = parse_size(optarg);
			if (!state_size) {
				fprintf(stderr, "bad --state-size %s\n",
					optarg);
				return 2;
			}
			break;
		case 'w':
			window = parse_size(optarg);
			if (window < 16 || window > (1u << 20)) {
				fprintf(stderr, "--window must be 16 to 1M\n");
				return 2;
			}
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			usage(stderr, argv[0]);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr, argv[0]);
		return 2;
	}
	printf("device state: %zu KiB of RAM in %zu-byte pages + registers; "
	       "window %zu bytes\n",
	       (state_size + PAGE - 1) / PAGE * PAGE / 1024, (size_t)PAGE,
	       window);
	fflush(stdout);

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds)) {
		perror("socketpair");
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		/* The source: v1, then v2. */
		signal(SIGPIPE, SIG_IGN);
		close(fds[0]);
		for (api = 1; api <= 2 && !ret; api++)
			ret = source_migrate(api, state_size, window, fds[1]);
		close(fds[1]);
		_exit(ret ? 1 : 0);
	}
	close(fds[1]);
	for (api = 1; api <= 2 && !ret; api++)
		ret = dest_migrate(api, state_size, window, fds[0]);
	close(fds[0]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		ret = ret ? ret : -ECHILD;
	return ret ? 1 : 0;
}
