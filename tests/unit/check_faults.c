/* SPDX-License-Identifier: MIT */
/*
 * Fault injection: a sink that fails its Nth call in each of the ways a
 * real transport can (short transfer, EINTR, EAGAIN, ENOSPC, EPIPE, EIO),
 * for every N across a whole stream; and allocation failure at every N.
 */
#include "config.h"

#include <fcntl.h>
#include <unistd.h>

#include "ms-test.h"

enum fault {
	FAULT_SHORT,
	FAULT_EINTR,
	FAULT_EAGAIN,
	FAULT_ENOSPC,
	FAULT_EPIPE,
	FAULT_EIO,
	FAULT_COUNT
};

static const char *const fault_names[FAULT_COUNT] = {
	"short", "EINTR", "EAGAIN", "ENOSPC", "EPIPE", "EIO",
};

static int fault_errno(enum fault f)
{
	switch (f) {
	case FAULT_EINTR:
		return -EINTR;
	case FAULT_EAGAIN:
		return -EAGAIN;
	case FAULT_ENOSPC:
		return -ENOSPC;
	case FAULT_EPIPE:
		return -EPIPE;
	case FAULT_EIO:
		return -EIO;
	default:
		return 0;
	}
}

static bool fault_is_transient(enum fault f)
{
	return f == FAULT_SHORT || f == FAULT_EINTR || f == FAULT_EAGAIN;
}

/* A transport over a byte array that misbehaves once, at call fail_at. */
struct faulty {
	uint8_t *data;
	size_t len, cap, off;
	long calls, fail_at, waits;
	enum fault fault;
	bool fired;
};

static ssize_t faulty_writev(void *opaque, const struct iovec *iov, int cnt)
{
	struct faulty *f = opaque;
	size_t offered = 0, take, before;
	int i;

	for (i = 0; i < cnt; i++)
		offered += iov[i].iov_len;
	ck_assert_uint_gt(offered, 0);
	f->calls++;
	take = offered;
	if (f->calls == f->fail_at) {
		f->fired = true;
		if (f->fault != FAULT_SHORT)
			return fault_errno(f->fault);
		take = offered / 2 ? offered / 2 : 1;
		/* Also a short transfer that ends inside the second entry. */
		if (cnt > 1 && iov[0].iov_len + 1 < offered)
			take = iov[0].iov_len + 1;
	}
	ck_assert_uint_le(f->len + take, f->cap);
	before = f->len;
	for (i = 0; i < cnt && take; i++) {
		size_t n = iov[i].iov_len < take ? iov[i].iov_len : take;

		memcpy(f->data + f->len, iov[i].iov_base, n);
		f->len += n;
		take -= n;
	}
	return (ssize_t)(f->len - before);
}

static ssize_t faulty_read(void *opaque, void *buf, size_t len)
{
	struct faulty *f = opaque;
	size_t n = f->len - f->off < len ? f->len - f->off : len;

	f->calls++;
	if (f->calls == f->fail_at) {
		f->fired = true;
		if (f->fault != FAULT_SHORT)
			return fault_errno(f->fault);
		n = n ? 1 : 0;
	}
	memcpy(buf, f->data + f->off, n);
	f->off += n;
	return (ssize_t)n;
}

static int faulty_wait(void *opaque, int events)
{
	struct faulty *f = opaque;

	ck_assert(events == MS_WAIT_READ || events == MS_WAIT_WRITE);
	f->waits++;
	return 0;
}

static const ms_stream_ops faulty_ops = {
	MS_STREAM_OPS_VERSION, faulty_writev, faulty_read, faulty_wait, NULL,
};

/* The stream every fault run writes: mixed sizes, copied and queued. */
#define FAULT_BIG 20000

static void fault_script_write(ms_stream *s, const uint8_t *big)
{
	int i;

	for (i = 0; i < 40; i++) {
		ms_put_be32(s, 0xa0000000u + (uint32_t)i);
		ms_put_u8(s, (uint8_t)i);
		ms_put_buffer(s, big, (size_t)(i * 53) % 700);
		if (i % 3 == 0)
			ms_put_buffer_async(s, big + i * 100, 1024 + i * 11);
		ms_put_be64(s, (uint64_t)i << 40);
	}
}

static ms_stream_opts small_buffer_opts(void)
{
	ms_stream_opts o = {MS_STREAM_OPTS_VERSION, NULL, 256, 1024, 0};

	return o;
}

/* Writes the script with no fault; returns the reference bytes. */
static uint8_t *fault_reference(const uint8_t *big, size_t *len, long *calls)
{
	ms_stream_opts o = small_buffer_opts();
	struct faulty f = {0};
	ms_stream *s;

	f.cap = 1 << 20;
	f.data = malloc(f.cap);
	ck_assert_ptr_nonnull(f.data);
	ck_assert_int_eq(
		ms_stream_new_custom(&s, &faulty_ops, &f, MS_STREAM_WRITER, &o),
		0);
	fault_script_write(s, big);
	ck_assert_int_eq(ms_stream_close(s), 0);
	*len = f.len;
	*calls = f.calls;
	return f.data;
}

START_TEST(test_faults_writer_every_call)
{
	ms_stream_opts o = small_buffer_opts();
	uint8_t *big = malloc(FAULT_BIG), *ref;
	size_t ref_len;
	long ref_calls, n;
	int fault;

	ck_assert_ptr_nonnull(big);
	ms_test_fill(big, FAULT_BIG, 3);
	ref = fault_reference(big, &ref_len, &ref_calls);
	ck_assert_uint_gt(ref_calls, 20);

	for (fault = 0; fault < FAULT_COUNT; fault++) {
		for (n = 1; n <= ref_calls + 1; n++) {
			struct faulty f = {0};
			ms_stream *s;
			int ret;

			f.cap = 1 << 20;
			f.data = malloc(f.cap);
			f.fail_at = n;
			f.fault = (enum fault)fault;
			ck_assert_int_eq(
				ms_stream_new_custom(&s, &faulty_ops, &f,
						     MS_STREAM_WRITER, &o),
				0);
			fault_script_write(s, big);
			ret = ms_stream_close(s);
			if (!f.fired || fault_is_transient(f.fault)) {
				/* Retried: every byte once, in order. */
				ck_assert_msg(ret == 0, "%s at call %ld: %d",
					      fault_names[fault], n, ret);
				ck_assert_uint_eq(f.len, ref_len);
				ck_assert_mem_eq(f.data, ref, ref_len);
			} else {
				ck_assert_int_eq(ret, fault_errno(f.fault));
				/* What was written is a prefix of the data. */
				ck_assert_uint_lt(f.len, ref_len);
				ck_assert_mem_eq(f.data, ref, f.len);
				ck_assert_int_eq(f.calls, n);
			}
			if (f.fault == FAULT_EAGAIN && f.fired)
				ck_assert_int_eq(f.waits, 1);
			free(f.data);
		}
	}
	free(ref);
	free(big);
}
END_TEST

/*
 * The error's offset and message name the first byte the sink refused,
 * for each fatal fault (_i: EIO, ENOSPC, EPIPE).
 */
START_TEST(test_faults_writer_error_offset)
{
	static const enum fault fatal[] = {FAULT_EIO, FAULT_ENOSPC,
					   FAULT_EPIPE};
	ms_stream_opts o = small_buffer_opts();
	uint8_t *big = malloc(FAULT_BIG), *ref;
	enum fault fault = fatal[_i];
	int err = fault_errno(fault);
	size_t ref_len;
	long n, ref_calls;

	ck_assert_ptr_nonnull(big);
	ms_test_fill(big, FAULT_BIG, 3);
	ref = fault_reference(big, &ref_len, &ref_calls);
	free(ref);
	for (n = 1; n <= ref_calls; n++) {
		struct faulty f = {0};
		char want[128];
		ms_stream *s;

		f.cap = 1 << 20;
		f.data = malloc(f.cap);
		f.fail_at = n;
		f.fault = fault;
		ms_stream_new_custom(&s, &faulty_ops, &f, MS_STREAM_WRITER, &o);
		fault_script_write(s, big);
		ms_stream_flush(s);
		ck_assert(f.fired);
		ck_assert_int_eq(ms_stream_error(s), err);
		ck_assert_msg(ms_stream_error_offset(s) == f.len,
			      "%s at call %ld: offset %llu, %zu taken",
			      fault_names[fault], n,
			      (unsigned long long)ms_stream_error_offset(s),
			      f.len);
		snprintf(want, sizeof(want), "offset 0x%zx: write error: %s",
			 f.len, ms_strerror(err));
		ck_assert_str_eq(ms_stream_errmsg(s), want);
		/* No call reaches the sink after the error. */
		ms_put_buffer(s, big, 5000);
		ms_stream_flush(s);
		ck_assert_int_eq(f.calls, n);
		ck_assert_int_eq(ms_stream_close(s), err);
		free(f.data);
	}
	free(big);
}
END_TEST

/* Reads the reference back through a reader that faults at call N. */
START_TEST(test_faults_reader_every_call)
{
	ms_stream_opts o = small_buffer_opts();
	uint8_t *big = malloc(FAULT_BIG), *ref, *got;
	size_t ref_len;
	long ref_calls, n, calls = 0;
	int fault;

	ck_assert_ptr_nonnull(big);
	ms_test_fill(big, FAULT_BIG, 3);
	ref = fault_reference(big, &ref_len, &ref_calls);
	got = malloc(ref_len);

	/* How many sink calls a clean read of the whole stream makes. */
	{
		struct faulty f = {0};
		ms_stream *s;

		f.data = ref;
		f.len = ref_len;
		ms_stream_new_custom(&s, &faulty_ops, &f, MS_STREAM_READER, &o);
		ck_assert_int_eq(ms_get_buffer(s, got, ref_len), 0);
		ck_assert(ms_stream_is_eof(s));
		ms_stream_close(s);
		calls = f.calls;
	}

	for (fault = 0; fault < FAULT_COUNT; fault++) {
		for (n = 1; n <= calls + 1; n++) {
			struct faulty f = {0};
			size_t done = 0;
			ms_stream *s;
			int ret = 0;

			f.data = ref;
			f.len = ref_len;
			f.fail_at = n;
			f.fault = (enum fault)fault;
			ms_stream_new_custom(&s, &faulty_ops, &f,
					     MS_STREAM_READER, &o);
			/* Read in pieces of varying size, as a parser does. */
			while (done < ref_len && !ret) {
				size_t k = 1 + (done * 7) % 300;
				uint32_t v;

				if (k > ref_len - done)
					k = ref_len - done;
				if (k == 4) {
					ret = ms_get_be32(s, &v);
					got[done] = (uint8_t)(v >> 24);
					got[done + 1] = (uint8_t)(v >> 16);
					got[done + 2] = (uint8_t)(v >> 8);
					got[done + 3] = (uint8_t)v;
				} else {
					ret = ms_get_buffer(s, got + done, k);
				}
				if (!ret)
					done += k;
			}
			if (!f.fired || fault_is_transient(f.fault)) {
				ck_assert_msg(ret == 0, "%s at call %ld: %d",
					      fault_names[fault], n, ret);
				ck_assert_mem_eq(got, ref, ref_len);
				ck_assert(ms_stream_is_eof(s));
			} else {
				ck_assert_int_eq(ret, fault_errno(f.fault));
				ck_assert_mem_eq(got, ref, done);
				/* Located at the first byte not delivered. */
				ck_assert_uint_eq(ms_stream_error_offset(s),
						  f.off);
				ck_assert_uint_le(done, f.off);
			}
			ms_stream_close(s);
		}
	}
	free(got);
	free(ref);
	free(big);
}
END_TEST

/*
 * Allocation failure at every N: each call gives 0 or -ENOMEM, what was
 * produced before the failure is intact, and nothing leaks.
 */
typedef int (*alloc_scenario)(const ms_allocator *a, const uint8_t *ref,
			      size_t ref_len);

static int scenario_mem_writer(const ms_allocator *a, const uint8_t *ref,
			       size_t ref_len)
{
	ms_stream_opts o = {MS_STREAM_OPTS_VERSION, a, 0, 0, 0};
	struct ms_test_script *sc = malloc(sizeof(*sc));
	const uint8_t *data;
	size_t len;
	ms_stream *s;
	int ret;

	ms_test_script_init(sc);
	ret = ms_stream_new_mem(&s, 0, &o);
	if (ret) {
		free(sc);
		return ret;
	}
	ret = ms_test_script_write(s, sc);
	ck_assert(ret == 0 || ret == -ENOMEM);
	ms_stream_mem_view(s, &data, &len);
	ck_assert_uint_le(len, ref_len);
	if (len)
		ck_assert_mem_eq(data, ref, len);
	if (!ret)
		ck_assert_uint_eq(len, ref_len);
	free(sc);
	return ms_stream_close(s);
}

static int scenario_feed_reader(const ms_allocator *a, const uint8_t *ref,
				size_t ref_len)
{
	ms_stream_opts o = {MS_STREAM_OPTS_VERSION, a, 0, 0, 0};
	struct ms_test_script *sc = malloc(sizeof(*sc));
	size_t off = 0;
	ms_stream *s;
	int ret;

	ms_test_script_init(sc);
	ret = ms_stream_new_feed(&s, &o);
	if (ret) {
		free(sc);
		return ret;
	}
	while (off < ref_len) {
		size_t n = ref_len - off < 5000 ? ref_len - off : 5000;

		ret = ms_stream_feed(s, ref + off, n);
		if (ret) {
			ck_assert_int_eq(ret, -ENOMEM);
			ck_assert_int_eq(ms_stream_error(s), -ENOMEM);
			free(sc);
			return ms_stream_close(s);
		}
		off += n;
	}
	ms_stream_feed_end(s);
	ms_test_script_read(s, sc);
	free(sc);
	return ms_stream_close(s);
}

static int scenario_custom_writer(const ms_allocator *a, const uint8_t *ref,
				  size_t ref_len)
{
	ms_stream_opts o = {MS_STREAM_OPTS_VERSION, a, 0, 0, 0};
	struct ms_test_script *sc = malloc(sizeof(*sc));
	struct faulty f = {0};
	ms_stream *s;
	int ret;

	ms_test_script_init(sc);
	f.cap = ref_len;
	f.data = malloc(f.cap);
	ret = ms_stream_new_custom(&s, &faulty_ops, &f, MS_STREAM_WRITER, &o);
	if (!ret) {
		ck_assert_int_eq(ms_test_script_write(s, sc), 0);
		ret = ms_stream_close(s);
		ck_assert_int_eq(ret, 0);
		ck_assert_mem_eq(f.data, ref, ref_len);
	}
	free(f.data);
	free(sc);
	return ret;
}

static int scenario_iov_array(const ms_allocator *a, const uint8_t *ref,
			      size_t ref_len)
{
	ms_stream_opts o = {MS_STREAM_OPTS_VERSION, a, 1024, 0, 0};
	struct ms_test_script *sc = malloc(sizeof(*sc));
	struct iovec iov[1024];
	size_t off = 0;
	int cnt = 0, i, ret;
	ms_stream *s;

	ms_test_script_init(sc);
	ret = ms_stream_new_iov_array(&s, iov, 1024, &cnt, &o);
	if (ret) {
		free(sc);
		return ret;
	}
	ret = ms_test_script_write(s, sc);
	ms_stream_flush(s);
	ck_assert(ret == 0 || ret == -ENOMEM);
	/* Whatever was handed out is the start of the stream. */
	for (i = 0; i < cnt; i++) {
		ck_assert_uint_le(off + iov[i].iov_len, ref_len);
		ck_assert_mem_eq(iov[i].iov_base, ref + off, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	if (!ms_stream_error(s))
		ck_assert_uint_eq(off, ref_len);
	free(sc);
	return ms_stream_close(s);
}

static int scenario_iov_reader(const ms_allocator *a, const uint8_t *ref,
			       size_t ref_len)
{
	ms_stream_opts o = {MS_STREAM_OPTS_VERSION, a, 0, 0, 0};
	struct ms_test_script *sc = malloc(sizeof(*sc));
	struct iovec iov[3];
	ms_stream *s;
	int ret;

	ms_test_script_init(sc);
	iov[0].iov_base = (void *)(uintptr_t)ref;
	iov[0].iov_len = 1000;
	iov[1].iov_base = (void *)(uintptr_t)(ref + 1000);
	iov[1].iov_len = 0;
	iov[2].iov_base = (void *)(uintptr_t)(ref + 1000);
	iov[2].iov_len = ref_len - 1000;
	ret = ms_stream_new_iov_reader(&s, iov, 3, &o);
	if (!ret) {
		ms_test_script_read(s, sc);
		ck_assert(ms_stream_is_eof(s));
		ret = ms_stream_close(s);
	}
	free(sc);
	return ret;
}

static int scenario_fd_writer(const ms_allocator *a, const uint8_t *ref,
			      size_t ref_len)
{
	ms_stream_opts o = {MS_STREAM_OPTS_VERSION, a, 0, 0, 0};
	struct ms_test_script *sc = malloc(sizeof(*sc));
	ms_stream *s;
	int fd, ret;

	(void)ref;
	ms_test_script_init(sc);
	fd = open("/dev/null", O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ret = ms_stream_new_fd(&s, fd, MS_STREAM_WRITER, MS_FD_OWN, &o);
	if (ret) {
		/* A constructor that fails leaves the descriptor open. */
		ck_assert_int_eq(close(fd), 0);
		free(sc);
		return ret;
	}
	ck_assert_int_eq(ms_test_script_write(s, sc), 0);
	ck_assert_uint_eq(ms_stream_tell(s), ref_len);
	/* The script's async buffers are referenced until close returns. */
	ret = ms_stream_close(s);
	free(sc);
	return ret;
}

struct iov_collect {
	uint8_t *data;
	size_t len, cap;
};

static int iov_collect_fn(void *opaque, const struct iovec *iov, int cnt)
{
	struct iov_collect *c = opaque;
	int i;

	for (i = 0; i < cnt; i++) {
		ck_assert_uint_le(c->len + iov[i].iov_len, c->cap);
		memcpy(c->data + c->len, iov[i].iov_base, iov[i].iov_len);
		c->len += iov[i].iov_len;
	}
	return 0;
}

static int scenario_iov_callback(const ms_allocator *a, const uint8_t *ref,
				 size_t ref_len)
{
	ms_stream_opts o = {MS_STREAM_OPTS_VERSION, a, 0, 0, 0};
	struct ms_test_script *sc = malloc(sizeof(*sc));
	struct iov_collect c = {0};
	ms_stream *s;
	int ret;

	ms_test_script_init(sc);
	c.cap = ref_len;
	c.data = malloc(c.cap);
	ret = ms_stream_new_iov(&s, iov_collect_fn, &c, &o);
	if (!ret) {
		ck_assert_int_eq(ms_test_script_write(s, sc), 0);
		ret = ms_stream_close(s);
		ck_assert_int_eq(ret, 0);
		ck_assert_uint_eq(c.len, ref_len);
		ck_assert_mem_eq(c.data, ref, ref_len);
	}
	free(c.data);
	free(sc);
	return ret;
}

static int scenario_mem_reader(const ms_allocator *a, const uint8_t *ref,
			       size_t ref_len)
{
	ms_stream_opts o = {MS_STREAM_OPTS_VERSION, a, 0, 0, 0};
	struct ms_test_script *sc = malloc(sizeof(*sc));
	ms_stream *s;
	int ret;

	ms_test_script_init(sc);
	ret = ms_stream_new_mem_reader(&s, ref, ref_len, &o);
	if (!ret) {
		ms_test_script_read(s, sc);
		ck_assert(ms_stream_is_eof(s));
		ret = ms_stream_close(s);
	}
	free(sc);
	return ret;
}

static int scenario_custom_reader(const ms_allocator *a, const uint8_t *ref,
				  size_t ref_len)
{
	ms_stream_opts o = {MS_STREAM_OPTS_VERSION, a, 0, 0, 0};
	struct ms_test_script *sc = malloc(sizeof(*sc));
	struct faulty f = {0};
	ms_stream *s;
	int ret;

	ms_test_script_init(sc);
	f.data = (uint8_t *)(uintptr_t)ref;
	f.len = ref_len;
	ret = ms_stream_new_custom(&s, &faulty_ops, &f, MS_STREAM_READER, &o);
	if (!ret) {
		ms_test_script_read(s, sc);
		ck_assert(ms_stream_is_eof(s));
		ret = ms_stream_close(s);
	}
	free(sc);
	return ret;
}

static void run_alloc_scenario(alloc_scenario fn, const char *name)
{
	struct ms_test_script *sc = malloc(sizeof(*sc));
	const uint8_t *data;
	uint8_t *ref;
	size_t ref_len;
	ms_stream *w;
	long n;

	ms_test_script_init(sc);
	ck_assert_int_eq(ms_stream_new_mem(&w, 0, NULL), 0);
	ms_test_script_write(w, sc);
	ms_stream_mem_view(w, &data, &ref_len);
	ref = malloc(ref_len);
	memcpy(ref, data, ref_len);
	ms_stream_close(w);
	free(sc);

	for (n = 1;; n++) {
		struct ms_test_alloc ta;
		int ret;

		ms_test_alloc_init(&ta, n);
		ret = fn(&ta.a, ref, ref_len);
		ck_assert_msg(ret == 0 || ret == -ENOMEM,
			      "%s: allocation %ld failed: got %d", name, n,
			      ret);
		ck_assert_msg(ta.live == 0, "%s: %ld blocks leaked at %ld",
			      name, ta.live, n);
		if (ta.calls < n) {
			/* The Nth allocation never happened: all done. */
			ck_assert_int_eq(ret, 0);
			break;
		}
		ck_assert_msg(ret == -ENOMEM, "%s: failure %ld not reported",
			      name, n);
	}
	free(ref);
}

START_TEST(test_faults_alloc_every_call)
{
	run_alloc_scenario(scenario_mem_writer, "memory writer");
	run_alloc_scenario(scenario_feed_reader, "feed reader");
	run_alloc_scenario(scenario_custom_writer, "custom writer");
	run_alloc_scenario(scenario_iov_array, "iovec array");
	run_alloc_scenario(scenario_iov_reader, "iovec reader");
	run_alloc_scenario(scenario_fd_writer, "fd writer on /dev/null");
	run_alloc_scenario(scenario_iov_callback, "iovec callback");
	run_alloc_scenario(scenario_mem_reader, "memory reader");
	run_alloc_scenario(scenario_custom_reader, "custom reader");
}
END_TEST

static Suite *faults_suite(void)
{
	Suite *s = suite_create("faults");
	TCase *tc;

	tc = tcase_create("sink faults");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_faults_writer_every_call);
	tcase_add_loop_test(tc, test_faults_writer_error_offset, 0, 3);
	tcase_add_test(tc, test_faults_reader_every_call);
	suite_add_tcase(s, tc);

	tc = tcase_create("allocation failure");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_faults_alloc_every_call);
	suite_add_tcase(s, tc);
	return s;
}

MS_TEST_MAIN(faults_suite)
