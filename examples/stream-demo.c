/* SPDX-License-Identifier: MIT */
/*
 * stream-demo: writes one small "device state" record through every sink
 * migstream has (memory, a file, a pipe to a child process, an iovec
 * callback, a custom transport) and reads each back, checking every byte.
 *
 * Build against an installed library with
 *   cc stream-demo.c $(pkg-config --cflags --libs migstream)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <migstream/migstream.h>

#define PAGE 4096

struct device {
	uint32_t regs[4];
	uint64_t clock;
	char name[32];
	uint8_t ram[4 * PAGE];
};

static void device_init(struct device *d)
{
	size_t i;

	for (i = 0; i < 4; i++)
		d->regs[i] = 0xcafe0000u + (uint32_t)i;
	d->clock = 0x123456789abcdefull;
	snprintf(d->name, sizeof(d->name), "demo-nic");
	for (i = 0; i < sizeof(d->ram); i++)
		d->ram[i] = (uint8_t)(i * 7);
}

/* The record: registers, clock, a counted name, then RAM without a copy. */
static int device_save(ms_stream *s, const struct device *d)
{
	int i;

	for (i = 0; i < 4; i++)
		ms_put_be32(s, d->regs[i]);
	ms_put_be64(s, d->clock);
	ms_put_counted_string(s, d->name);
	ms_put_buffer_async(s, d->ram, sizeof(d->ram));
	/* The RAM must stay untouched until this flush returns. */
	return ms_stream_flush(s);
}

/*
 * Saves into a writer and closes it whatever happens, so that no path
 * leaks the stream: the first error wins.
 */
static int save_and_close(ms_stream *w, const struct device *d)
{
	int ret = device_save(w, d);
	int close_ret = ms_stream_close(w);

	return ret ? ret : close_ret;
}

static int device_load(ms_stream *s, struct device *d)
{
	char name[MS_COUNTED_STRING_MAX + 1];
	int i, len;

	for (i = 0; i < 4; i++)
		ms_get_be32(s, &d->regs[i]);
	ms_get_be64(s, &d->clock);
	/* Counted strings are up to 255 bytes: validate before storing. */
	len = ms_get_counted_string(s, name);
	if (len >= (int)sizeof(d->name))
		return ms_stream_set_error(s, -EBADMSG,
					   "device name of %d bytes", len);
	if (len > 0)
		memcpy(d->name, name, (size_t)len + 1);
	ms_get_buffer(s, d->ram, sizeof(d->ram));
	return ms_stream_error(s);
}

static int check(const char *sink, ms_stream *r, const struct device *want)
{
	struct device got;
	int ret;

	memset(&got, 0, sizeof(got));
	ret = device_load(r, &got);
	if (ret) {
		fprintf(stderr, "%s: load failed at offset %llu: %s\n", sink,
			(unsigned long long)ms_stream_error_offset(r),
			ms_stream_errmsg(r));
		ms_stream_close(r);
		return -1;
	}
	if (!ms_stream_is_eof(r) || memcmp(&got, want, sizeof(got)) != 0) {
		fprintf(stderr, "%s: state differs after the round trip\n",
			sink);
		ms_stream_close(r);
		return -1;
	}
	printf("%-16s %6llu bytes, state identical\n", sink,
	       (unsigned long long)ms_stream_tell(r));
	return ms_stream_close(r);
}

/* Custom transport: a byte array with a cursor. */
struct box {
	uint8_t data[64 * 1024];
	size_t len, off;
};

static ssize_t box_writev(void *opaque, const struct iovec *iov, int cnt)
{
	struct box *b = opaque;
	ssize_t n = 0;
	int i;

	for (i = 0; i < cnt; i++) {
		if (iov[i].iov_len > sizeof(b->data) - b->len)
			return n ? n : -ENOSPC;
		memcpy(b->data + b->len, iov[i].iov_base, iov[i].iov_len);
		b->len += iov[i].iov_len;
		n += (ssize_t)iov[i].iov_len;
	}
	return n;
}

static ssize_t box_read(void *opaque, void *buf, size_t len)
{
	struct box *b = opaque;
	size_t n = b->len - b->off < len ? b->len - b->off : len;

	memcpy(buf, b->data + b->off, n);
	b->off += n;
	return (ssize_t)n;
}

/* Iovec callback: every entry must be consumed before returning. */
static int to_file(void *opaque, const struct iovec *iov, int cnt)
{
	int i;

	for (i = 0; i < cnt; i++)
		if (fwrite(iov[i].iov_base, 1, iov[i].iov_len, opaque) !=
		    iov[i].iov_len)
			return -EIO;
	return 0;
}

int main(void)
{
	static struct device dev;
	static struct box box;
	static const ms_stream_ops box_ops = {MS_STREAM_OPS_VERSION, box_writev,
					      box_read, NULL, NULL};
	char path[] = "/tmp/migstream-demo-XXXXXX";
	ms_stream *w, *r;
	const uint8_t *data;
	size_t len;
	int fd, pfd[2], status, failed = 0;
	pid_t pid;
	FILE *f;

	device_init(&dev);
	printf("migstream %s: one device record through every sink\n",
	       ms_version_string());

	/* Memory: the writer holds the data the reader reads. */
	if (ms_stream_new_mem(&w, 0, NULL))
		return 1;
	if (device_save(w, &dev)) {
		failed++;
	} else {
		ms_stream_mem_view(w, &data, &len);
		if (ms_stream_new_mem_reader(&r, data, len, NULL) ||
		    check("memory", r, &dev))
			failed++;
	}
	if (ms_stream_close(w))
		failed++;

	/* A file, written and read through file descriptors. */
	fd = mkstemp(path);
	if (fd < 0)
		return 1;
	unlink(path);
	if (ms_stream_new_fd(&w, fd, MS_STREAM_WRITER, 0, NULL) ||
	    save_and_close(w, &dev))
		failed++;
	lseek(fd, 0, SEEK_SET);
	if (ms_stream_new_fd(&r, fd, MS_STREAM_READER, MS_FD_OWN, NULL)) {
		/* A failed constructor leaves the descriptor open. */
		close(fd);
		failed++;
	} else if (check("file", r, &dev)) {
		failed++;
	}

	/* A pipe to a child process, which checks what it reads. */
	if (pipe(pfd) < 0)
		return 1;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		close(pfd[1]);
		if (ms_stream_new_fd(&r, pfd[0], MS_STREAM_READER, MS_FD_OWN,
				     NULL))
			_exit(1);
		status = check("pipe (child)", r, &dev);
		fflush(stdout);
		_exit(status ? 1 : 0);
	}
	close(pfd[0]);
	if (ms_stream_new_fd(&w, pfd[1], MS_STREAM_WRITER, MS_FD_OWN, NULL)) {
		/* Close our end anyway, or the child waits for data forever. */
		close(pfd[1]);
		failed++;
	} else if (save_and_close(w, &dev)) {
		failed++;
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		failed++;

	/* An iovec callback writing to a temporary file, read back as one. */
	f = tmpfile();
	if (!f)
		return 1;
	if (ms_stream_new_iov(&w, to_file, f, NULL) || save_and_close(w, &dev))
		failed++;
	fflush(f);
	rewind(f);
	if (ms_stream_new_fd(&r, fileno(f), MS_STREAM_READER, 0, NULL) ||
	    check("iovec callback", r, &dev))
		failed++;
	fclose(f);

	/* A custom transport. */
	if (ms_stream_new_custom(&w, &box_ops, &box, MS_STREAM_WRITER, NULL) ||
	    save_and_close(w, &dev))
		failed++;
	if (ms_stream_new_custom(&r, &box_ops, &box, MS_STREAM_READER, NULL) ||
	    check("custom", r, &dev))
		failed++;

	printf("%s\n", failed ? "FAILED" : "all sinks round-tripped");
	return failed ? 1 : 0;
}
