/* SPDX-License-Identifier: MIT */
/*
 * The mapped snapshot cases (snap-resume-mmap, snap-restore-read,
 * snap-save-mapped); their groups are listed in bench/cases.h.  Each
 * group builds the migrate demo's machine (bench_snap_config.bytes of
 * RAM, half the pages zero, the devices and the vfio-user device) and
 * writes its files in a directory of its own, removed by its teardown,
 * under $MS_BENCH_DIR if set, else $TMPDIR (default /tmp); the save
 * group, which writes and frees a mapped file per run, prefers /dev/shm
 * when that file system has room for three copies of the RAM: on a disk
 * file system mounted with discard, freeing a mapped file's many extents
 * takes seconds per 32 MiB, and a full run of it there did not end.  The
 * restores read from the disk's page cache, as a restore on a host does
 * (a file in /dev/shm would make cat's baseline a copy from memory).  The page cache is not dropped (that needs root): every
 * file is read cache-warm, subject and baseline alike.  Each destination
 * machine is built before the clock starts; the first run of each
 * restore compares every byte with the source (an idle guest: the source
 * machine is what was saved), after the clock stops.
 *
 * snap-resume-mmap: from opening the mapped file to the end of the
 * device load ("guest may run") with an mmap-mode restore, into RAM never
 * touched; the baseline is the full restore of the streaming native
 * snapshot of the same machine (open to load end) into RAM touched
 * before the clock starts, as the demo's destination has it.
 *
 * snap-restore-read: the same with a read-mode restore with 2 threads
 * (every page read and its CRC checked) into touched RAM; the baseline
 * is `cat FILE > /dev/null` of the same file (fork and exec), or a read()
 * loop when cat cannot be run (stderr says which).
 *
 * snap-save-mapped: a mapped save with 2 writer threads (without fsync)
 * against the streaming native save into a file, both of the idle
 * machine; for information.  The teardown prints the file sizes (st_size
 * and allocated) of saves of a running guest after 1 and after 4
 * precopy rounds, mapped and streaming.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../examples/migrate-demo.h"
#include "cases.h"

/**
 * struct snap_bench - State of a mapped snapshot group.
 * @vm: the source machine, its guest idle.
 * @dir: the temporary directory, or "".
 * @mapped: the mapped snapshot file.
 * @stream: the streaming native snapshot file.
 * @checked: whether the streaming ([0]) and the mapped ([1]) restore
 *           compared their first run's bytes.
 * @use_cat: the read baseline runs cat (else a read() loop).
 * @buf: the read() loop's buffer.
 */
struct snap_bench {
	struct demo_vm vm;
	char dir[256];
	char mapped[300];
	char stream[300];
	bool checked[2];
	bool use_cat;
	uint8_t *buf;
};

#define SNAP_BUF ((size_t)1 << 20)

static struct snap_bench snap_b;

/**
 * snap_cfg() - The machine of the snapshot cases.
 * @b: the bench.
 * @cfg: receives it.
 */
static void snap_cfg(const struct bench *b, struct demo_config *cfg)
{
	const struct bench_snap_config *c = &b->cfg->ext.snap;

	memset(cfg, 0, sizeof(*cfg));
	cfg->ram_size = c->bytes;
	cfg->vdev_size = DEMO_DEFAULT_VDEV;
	cfg->seed = 1;
	cfg->zero_pct = c->zero_pct;
	cfg->rate = c->rate;
	cfg->nic_version = DEMO_NIC_VERSION;
}

/**
 * snap_save() - Save the source machine into @path.
 * @path: the file.
 * @mapped: a mapped snapshot (2 writer threads, no fsync) or a stream.
 * @rounds: 0: as the demo decides; else exactly that many precopy rounds
 *          (while the guest writes something).
 * @secs: receives the seconds of the save and the close, or NULL.
 *
 * The last run's file is unlinked, not truncated: ext4 writes back the
 * dirty pages of a file truncated to 0 (auto_da_alloc), which would time
 * the disk, not the save.  The open is not timed.
 *
 * Return: 0, or -1 after a message.
 */
static int snap_save(const char *path, bool mapped, unsigned rounds,
		     double *secs)
{
	struct demo_save_opts o = {.profile = MS_PROFILE_NATIVE,
				   .downtime_ms = 300,
				   .max_rounds =
					   rounds ? rounds : DEMO_MAX_ROUNDS,
				   .min_rounds = rounds,
				   .mapped = mapped,
				   .threads = 2,
				   .no_fsync = true};
	struct demo_result res;
	double t0;
	int fd, ret;

	if (unlink(path) && errno != ENOENT)
		return sys_failed(path);
	fd = open(path, (mapped ? O_RDWR : O_WRONLY) | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return sys_failed(path);
	t0 = now();
	ret = demo_save(&snap_b.vm, fd, &o, &res);
	if (close(fd) && !ret)
		ret = -errno;
	if (secs)
		*secs = since(t0);
	if (ret) {
		fprintf(stderr, "snap: save to %s: %s: %s\n", path,
			ms_strerror(ret), res.errmsg);
		return -1;
	}
	return 0;
}

/**
 * snap_setup_common() - Build the source and the temporary directory.
 * @b: the bench; @b->units gets the RAM's bytes.
 * @shm: prefer /dev/shm for the directory (see snap_base_dir()).
 *
 * Return: 0, or -1 after a message.
 */
/**
 * snap_base_dir() - Where the case's temporary directory goes.
 * @need: bytes the files need.
 * @shm: prefer /dev/shm when it has room.
 *
 * Return: a directory name (static or from the environment).
 */
static const char *snap_base_dir(uint64_t need, bool shm)
{
	const char *dir = getenv("MS_BENCH_DIR");
	struct statvfs sv;

	if (dir && *dir)
		return dir;
	if (shm && !access("/dev/shm", W_OK) && !statvfs("/dev/shm", &sv) &&
	    (uint64_t)sv.f_bavail * sv.f_frsize >= need)
		return "/dev/shm";
	dir = getenv("TMPDIR");
	return dir && *dir ? dir : "/tmp";
}

static int snap_setup_common(struct bench *b, bool shm)
{
	const char *tmpdir;
	struct demo_config cfg;
	int ret;

	memset(&snap_b, 0, sizeof(snap_b));
	snap_cfg(b, &cfg);
	ret = demo_vm_init(&snap_b.vm, &cfg);
	if (ret) {
		fprintf(stderr, "snap: %s\n", strerror(-ret));
		return -1;
	}
	tmpdir = snap_base_dir(3 * (uint64_t)cfg.ram_size, shm);
	snprintf(snap_b.dir, sizeof(snap_b.dir), "%s/migstream-snap-XXXXXX",
		 tmpdir);
	if (!mkdtemp(snap_b.dir)) {
		snap_b.dir[0] = '\0';
		return sys_failed("snap: mkdtemp");
	}
	fprintf(stderr, "snap: files in %s\n", snap_b.dir);
	snprintf(snap_b.mapped, sizeof(snap_b.mapped), "%s/vm.msm", snap_b.dir);
	snprintf(snap_b.stream, sizeof(snap_b.stream), "%s/vm.snap",
		 snap_b.dir);
	b->units = (double)cfg.ram_size;
	return 0;
}

/**
 * snap_teardown() - Remove the files and free the machine.
 * @b: the bench.
 *
 * Return: 0.
 */
static int snap_teardown(struct bench *b)
{
	(void)b;
	if (snap_b.dir[0]) {
		unlink(snap_b.mapped);
		unlink(snap_b.stream);
		rmdir(snap_b.dir);
	}
	free(snap_b.buf);
	demo_vm_free(&snap_b.vm);
	memset(&snap_b, 0, sizeof(snap_b));
	return 0;
}

/**
 * snap_check() - Compare a restored machine with the source.
 * @vm: the restored machine.
 * @what: the case, for the message.
 *
 * Return: 0, or -1 after a message.
 */
static int snap_check(const struct demo_vm *vm, const char *what)
{
	char why[128];

	if (demo_vm_compare(vm, &snap_b.vm, why, sizeof(why))) {
		fprintf(stderr, "%s: the restored machine differs: %s\n", what,
			why);
		return -1;
	}
	return 0;
}

/**
 * snap_restore() - Restore a snapshot into a fresh blank machine.
 * @mapped: the mapped file (else the streaming one).
 * @mode: a mapped restore's mode.
 * @threads: a read-mode restore's threads.
 * @untouched: leave the blank machine's RAM untouched.
 * @secs: receives the seconds from the open to the end of the load.
 *
 * Return: 0, or -1 after a message.
 */
static int snap_restore(bool mapped, ms_ram_restore_mode mode, unsigned threads,
			bool untouched, double *secs)
{
	const char *path = mapped ? snap_b.mapped : snap_b.stream;
	struct demo_config cfg = snap_b.vm.cfg;
	struct demo_result res;
	struct demo_vm vm;
	ms_stream *in = NULL;
	double t0;
	int fd, ret;

	cfg.untouched_ram = untouched;
	ret = demo_vm_init_blank(&vm, &cfg);
	if (ret) {
		fprintf(stderr, "snap: %s\n", strerror(-ret));
		demo_vm_free(&vm);
		return -1;
	}
	t0 = now();
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		demo_vm_free(&vm);
		return sys_failed(path);
	}
	if (mapped) {
		ret = demo_load_mapped(&vm, fd, mode, threads, &res);
		close(fd);
	} else {
		ret = ms_stream_new_fd(&in, fd, MS_STREAM_READER, MS_FD_OWN,
				       &demo_read_opts);
		if (!ret)
			ret = demo_load(&vm, in, NULL, 0, &res);
		else
			close(fd);
		ms_stream_close(in);
	}
	*secs = since(t0);
	if (ret)
		fprintf(stderr, "snap: restore of %s: %s: %s\n", path,
			ms_strerror(ret), res.errmsg);
	else if (!snap_b.checked[mapped]) {
		snap_b.checked[mapped] = true;
		ret = snap_check(&vm, path);
	}
	demo_vm_free(&vm);
	return ret ? -1 : 0;
}

/*
 * snap-resume-mmap vs stream-restore.
 */

static int resume_setup(struct bench *b)
{
	if (snap_setup_common(b, false) ||
	    snap_save(snap_b.mapped, true, 0, NULL) ||
	    snap_save(snap_b.stream, false, 0, NULL))
		return -1;
	return 0;
}

static int stream_restore_run(struct bench *b, double *secs)
{
	(void)b;
	return snap_restore(false, MS_RAM_RESTORE_MMAP, 1, false, secs);
}

static int resume_mmap_run(struct bench *b, double *secs)
{
	(void)b;
	return snap_restore(true, MS_RAM_RESTORE_MMAP, 1, true, secs);
}

const struct group bench_group_snap_resume_mmap = {
	.vs = "stream-restore",
	.unit = "bytes",
	.setup = resume_setup,
	.teardown = snap_teardown,
	.baseline = stream_restore_run,
	.subj = {{"snap-resume-mmap", resume_mmap_run, METRIC_MBPS, 50, 0}},
	.nsubj = 1,
};

/*
 * snap-restore-read vs cat.
 */

/**
 * cat_file() - `cat FILE > /dev/null` (fork and exec), or the read() loop.
 * @cat: run cat (else read() the file into a buffer).
 *
 * Return: 0, or -1 (cat could not run or failed).
 */
static int cat_file(bool cat)
{
	ssize_t n;
	pid_t pid;
	int fd, st;

	if (!cat) {
		fd = open(snap_b.mapped, O_RDONLY);
		if (fd < 0)
			return sys_failed(snap_b.mapped);
		while ((n = read(fd, snap_b.buf, SNAP_BUF)) > 0 ||
		       (n < 0 && errno == EINTR))
			;
		close(fd);
		return n < 0 ? sys_failed("snap: read") : 0;
	}
	pid = fork();
	if (pid < 0)
		return sys_failed("snap: fork");
	if (pid == 0) {
		fd = open("/dev/null", O_WRONLY);
		if (fd < 0 || dup2(fd, 1) < 0)
			_exit(126);
		execlp("cat", "cat", snap_b.mapped, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return sys_failed("snap: waitpid");
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int read_setup(struct bench *b)
{
	struct stat st;

	if (snap_setup_common(b, false) ||
	    snap_save(snap_b.mapped, true, 0, NULL))
		return -1;
	snap_b.buf = malloc(SNAP_BUF);
	if (!snap_b.buf)
		return sys_failed("snap: malloc");
	snap_b.use_cat = cat_file(true) == 0;
	if (stat(snap_b.mapped, &st))
		return sys_failed(snap_b.mapped);
	fprintf(stderr,
		"snap-restore-read: baseline %s of the %.1f MiB file, cache "
		"warm\n",
		snap_b.use_cat ? "`cat FILE > /dev/null` (fork+exec)"
			       : "a read() loop (cat could not run)",
		(double)st.st_size / (1 << 20));
	/* The value is the file's bytes per second. */
	b->units = (double)st.st_size;
	return 0;
}

static int cat_run(struct bench *b, double *secs)
{
	double t0 = now();

	(void)b;
	if (cat_file(snap_b.use_cat)) {
		fprintf(stderr, "snap-restore-read: cat failed\n");
		return -1;
	}
	*secs = since(t0);
	return 0;
}

static int restore_read_run(struct bench *b, double *secs)
{
	(void)b;
	return snap_restore(true, MS_RAM_RESTORE_READ, 2, false, secs);
}

const struct group bench_group_snap_restore_read = {
	.vs = "cat",
	.unit = "bytes",
	.setup = read_setup,
	.teardown = snap_teardown,
	.baseline = cat_run,
	.subj = {{"snap-restore-read", restore_read_run, METRIC_MBPS, 0.80, 0}},
	.nsubj = 1,
};

/*
 * snap-save-mapped vs stream-save.
 */

static int stream_save_run(struct bench *b, double *secs)
{
	(void)b;
	return snap_save(snap_b.stream, false, 0, secs);
}

static int save_mapped_run(struct bench *b, double *secs)
{
	(void)b;
	return snap_save(snap_b.mapped, true, 0, secs);
}

/**
 * print_sizes() - Sizes of saves of a running guest after @rounds rounds.
 * @rounds: precopy rounds.
 *
 * Return: 0, or -1 after a message.
 */
static int print_sizes(unsigned rounds)
{
	struct stat sm, ss;
	unsigned rm, rs;

	if (demo_guest_start(&snap_b.vm) ||
	    snap_save(snap_b.mapped, true, rounds, NULL))
		return -1;
	rm = snap_b.vm.rounds;
	if (demo_guest_start(&snap_b.vm) ||
	    snap_save(snap_b.stream, false, rounds, NULL))
		return -1;
	rs = snap_b.vm.rounds;
	if (stat(snap_b.mapped, &sm) || stat(snap_b.stream, &ss))
		return sys_failed("snap: stat");
	fprintf(stderr,
		"snap-save-mapped: running guest (%u pages/s), %u precopy "
		"round(s): mapped %.1f MiB (%.1f MiB allocated), streaming "
		"%.1f MiB (%.1f MiB allocated, %u round(s))\n",
		snap_b.vm.cfg.rate, rm, (double)sm.st_size / (1 << 20),
		(double)sm.st_blocks * 512 / (1 << 20),
		(double)ss.st_size / (1 << 20),
		(double)ss.st_blocks * 512 / (1 << 20), rs);
	return 0;
}

static int save_setup(struct bench *b)
{
	return snap_setup_common(b, true);
}

static int save_teardown(struct bench *b)
{
	int ret = 0;

	if (snap_b.dir[0] && (print_sizes(1) || print_sizes(4)))
		ret = -1;
	snap_teardown(b);
	return ret;
}

const struct group bench_group_snap_save_mapped = {
	.vs = "stream-save",
	.unit = "bytes",
	.setup = save_setup,
	.teardown = save_teardown,
	.baseline = stream_save_run,
	.subj = {{"snap-save-mapped", save_mapped_run, METRIC_NONE, 0, 0}},
	.nsubj = 1,
};
