/* SPDX-License-Identifier: MIT */
/*
 * The stream core over the memory sinks: round trips, boundaries, sticky
 * errors, peek, skip, feed readers, limits, version and error names.
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>

#include "internal.h"
#include "ms-test.h"

static ms_stream *new_writer(size_t bufsize)
{
	ms_stream_opts o = {MS_STREAM_OPTS_VERSION, NULL, bufsize, 0, 0};
	ms_stream *s = NULL;

	ck_assert_int_eq(ms_stream_new_mem(&s, 0, &o), 0);
	return s;
}

static ms_stream *reader_of(ms_stream *w, size_t bufsize)
{
	ms_stream_opts o = {MS_STREAM_OPTS_VERSION, NULL, bufsize, 0, 0};
	const uint8_t *data;
	size_t len;
	ms_stream *r = NULL;

	ck_assert_int_eq(ms_stream_mem_view(w, &data, &len), 0);
	ck_assert_int_eq(ms_stream_new_mem_reader(&r, data, len, &o), 0);
	return r;
}

START_TEST(test_stream_version_matches_configure)
{
	ck_assert_uint_eq(ms_version(), MS_VERSION_HEX);
	ck_assert_str_eq(ms_version_string(), MS_VERSION_STRING);
	ck_assert_str_eq(ms_version_string(), PACKAGE_VERSION);
	ck_assert_uint_eq(MS_VERSION_HEX,
			  (unsigned)(MS_VERSION_MAJOR << 16 |
				     MS_VERSION_MINOR << 8 | MS_VERSION_PATCH));
}
END_TEST

START_TEST(test_stream_strerror_names_every_code)
{
	static const int codes[] = {
		EINVAL,	   ENOMEM,    EIO,     ENOSPC, EBADMSG, EPROTO,
		ENOTSUP,   EOVERFLOW, ENODATA, EAGAIN, EPIPE,	ECONNRESET,
		ETIMEDOUT, EBADF,     ERANGE,  ENOENT, EEXIST,	ECANCELED,
		EBUSY,	   EFBIG,     EILSEQ,  EPERM,
	};
	/* What a descriptor or a custom transport can pass through. */
	static const int transport_codes[] = {
		EACCES,	  ECONNABORTED, ECONNREFUSED, EDESTADDRREQ, EDQUOT,
		EFAULT,	  EHOSTUNREACH, EINTR,	      EISDIR,	    EMSGSIZE,
		ENETDOWN, ENETRESET,	ENETUNREACH,  ENOBUFS,	    ENODEV,
		ENOTCONN, ENOTSOCK,	ENOTTY,	      ENXIO,	    EROFS,
		ESPIPE,
	};
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		ck_assert_str_ne(ms_strerror(-codes[i]), "unknown error");
		ck_assert_str_eq(ms_strerror(-codes[i]), ms_strerror(codes[i]));
	}
	for (i = 0; i < sizeof(transport_codes) / sizeof(transport_codes[0]);
	     i++) {
		ck_assert_msg(strcmp(ms_strerror(-transport_codes[i]),
				     "unknown error") != 0,
			      "errno %d (%s) has no name", transport_codes[i],
			      strerror(transport_codes[i]));
		ck_assert_str_eq(ms_strerror(-transport_codes[i]),
				 ms_strerror(transport_codes[i]));
	}
	ck_assert_str_eq(ms_strerror(-EISDIR), "is a directory");
	ck_assert_str_eq(ms_strerror(-ENOTCONN), "socket not connected");
	ck_assert_str_eq(ms_strerror(0), "success");
	ck_assert_str_eq(ms_strerror(-100000), "unknown error");
	ck_assert_str_eq(ms_strerror(INT_MIN), "unknown error");
}
END_TEST

/* Every integer type at its boundaries, through buffers from 16 bytes up. */
START_TEST(test_stream_roundtrip_boundaries)
{
	static const uint64_t v64[] = {0,
				       1,
				       0x7f,
				       0x80,
				       0xff,
				       0x100,
				       0x7fff,
				       0x8000,
				       0xffff,
				       0x10000,
				       0x7fffffff,
				       0x80000000u,
				       0xffffffffu,
				       0x100000000ull,
				       0x7fffffffffffffffull,
				       0x8000000000000000ull,
				       UINT64_MAX};
	static const size_t bufsizes[] = {16, 17, 31, 4096, 0};
	size_t b, i, n = sizeof(v64) / sizeof(v64[0]);

	for (b = 0; b < sizeof(bufsizes) / sizeof(bufsizes[0]); b++) {
		ms_stream *w = new_writer(bufsizes[b]), *r;

		for (i = 0; i < n; i++) {
			ms_put_u8(w, (uint8_t)v64[i]);
			ms_put_be16(w, (uint16_t)v64[i]);
			ms_put_be32(w, (uint32_t)v64[i]);
			ms_put_be64(w, v64[i]);
			ms_put_s8(w, (int8_t)v64[i]);
			ms_put_sbe16(w, (int16_t)v64[i]);
			ms_put_sbe32(w, (int32_t)v64[i]);
			ms_put_sbe64(w, (int64_t)v64[i]);
		}
		ck_assert_uint_eq(ms_stream_tell(w), n * 30);
		r = reader_of(w, bufsizes[b]);
		for (i = 0; i < n; i++) {
			uint8_t a;
			uint16_t c;
			uint32_t d;
			uint64_t e;
			int8_t f;
			int16_t g;
			int32_t h;
			int64_t k;

			ck_assert_int_eq(ms_get_u8(r, &a), 0);
			ck_assert_int_eq(ms_get_be16(r, &c), 0);
			ck_assert_int_eq(ms_get_be32(r, &d), 0);
			ck_assert_int_eq(ms_get_be64(r, &e), 0);
			ck_assert_int_eq(ms_get_s8(r, &f), 0);
			ck_assert_int_eq(ms_get_sbe16(r, &g), 0);
			ck_assert_int_eq(ms_get_sbe32(r, &h), 0);
			ck_assert_int_eq(ms_get_sbe64(r, &k), 0);
			ck_assert_uint_eq(a, (uint8_t)v64[i]);
			ck_assert_uint_eq(c, (uint16_t)v64[i]);
			ck_assert_uint_eq(d, (uint32_t)v64[i]);
			ck_assert_uint_eq(e, v64[i]);
			ck_assert_int_eq(f, (int8_t)v64[i]);
			ck_assert_int_eq(g, (int16_t)v64[i]);
			ck_assert_int_eq(h, (int32_t)v64[i]);
			ck_assert(k == (int64_t)v64[i]);
		}
		ck_assert(ms_stream_is_eof(r));
		ck_assert_uint_eq(ms_stream_tell(r), n * 30);
		ck_assert_int_eq(ms_stream_close(r), 0);
		ck_assert_int_eq(ms_stream_close(w), 0);
	}
}
END_TEST

/* The wire form is big-endian whatever the host. */
START_TEST(test_stream_bytes_are_big_endian)
{
	static const uint8_t want[] = {0xab, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef,
				       0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
				       0x08, 0xff, 0xfe, 0x03, 'a',  'b',  'c'};
	ms_stream *w = new_writer(0);
	const uint8_t *data;
	size_t len;

	ms_put_u8(w, 0xab);
	ms_put_be16(w, 0x1234);
	ms_put_be32(w, 0xdeadbeef);
	ms_put_be64(w, 0x0102030405060708ull);
	ms_put_sbe16(w, -2);
	ms_put_counted_string(w, "abc");
	ck_assert_int_eq(ms_stream_mem_view(w, &data, &len), 0);
	ck_assert_uint_eq(len, sizeof(want));
	ck_assert_mem_eq(data, want, sizeof(want));
	ck_assert_int_eq(ms_stream_close(w), 0);
}
END_TEST

/* Puts that straddle the staging buffer, for every alignment. */
START_TEST(test_stream_straddling_puts)
{
	struct ms_test_script sc;
	size_t bs;

	ms_test_script_init(&sc);
	for (bs = 16; bs <= 40; bs++) {
		ms_stream *w = new_writer(bs), *r;

		ck_assert_int_eq(ms_test_script_write(w, &sc), 0);
		ck_assert_uint_eq(ms_stream_tell(w), ms_test_script_size());
		r = reader_of(w, bs);
		ms_test_script_read(r, &sc);
		ck_assert(ms_stream_is_eof(r));
		ms_stream_close(r);
		ms_stream_close(w);
	}
}
END_TEST

/* Array puts and gets produce exactly the bytes of single-value calls. */
START_TEST(test_stream_arrays_match_single_values)
{
	static const size_t bufsizes[] = {16, 17, 23, 0};
	uint16_t a16[101], b16[101];
	uint32_t a32[101], b32[101];
	uint64_t a64[101], b64[101];
	size_t b, i;

	for (i = 0; i < 101; i++) {
		a16[i] = (uint16_t)(i * 0x1357);
		a32[i] = (uint32_t)(i * 0x13579bdf);
		a64[i] = (uint64_t)i * 0x13579bdf2468ace1ull;
	}
	for (b = 0; b < sizeof(bufsizes) / sizeof(bufsizes[0]); b++) {
		ms_stream *w1 = new_writer(bufsizes[b]);
		ms_stream *w2 = new_writer(bufsizes[b]), *r;
		const uint8_t *d1, *d2;
		size_t l1, l2;

		ms_put_u8(w1, 1);
		ms_put_u8(w2, 1);
		for (i = 0; i < 101; i++)
			ms_put_be16(w1, a16[i]);
		for (i = 0; i < 101; i++)
			ms_put_be32(w1, a32[i]);
		for (i = 0; i < 101; i++)
			ms_put_be64(w1, a64[i]);
		ck_assert_int_eq(ms_put_be16_array(w2, a16, 101), 0);
		ck_assert_int_eq(ms_put_be32_array(w2, a32, 101), 0);
		ck_assert_int_eq(ms_put_be64_array(w2, a64, 101), 0);
		ck_assert_int_eq(ms_put_be64_array(w2, NULL, 0), 0);
		ms_stream_mem_view(w1, &d1, &l1);
		ms_stream_mem_view(w2, &d2, &l2);
		ck_assert_uint_eq(l1, 1 + 101 * 14);
		ck_assert_uint_eq(l1, l2);
		ck_assert_mem_eq(d1, d2, l1);
		ck_assert_uint_eq(ms_stream_tell(w2), l1);

		r = reader_of(w2, bufsizes[b]);
		ck_assert_int_eq(ms_skip(r, 1), 0);
		ck_assert_int_eq(ms_get_be16_array(r, b16, 101), 0);
		ck_assert_int_eq(ms_get_be32_array(r, b32, 101), 0);
		ck_assert_int_eq(ms_get_be64_array(r, b64, 101), 0);
		ck_assert_mem_eq(a16, b16, sizeof(a16));
		ck_assert_mem_eq(a32, b32, sizeof(a32));
		ck_assert_mem_eq(a64, b64, sizeof(a64));
		ck_assert(ms_stream_is_eof(r));
		ms_stream_close(r);
		ms_stream_close(w1);
		ms_stream_close(w2);
	}
}
END_TEST

/* An array get that runs out zeroes the whole array. */
START_TEST(test_stream_array_short_read)
{
	uint8_t data[8 * 5 + 3];
	uint64_t v[6];
	size_t i;
	ms_stream *r;

	memset(data, 0x11, sizeof(data));
	ck_assert_int_eq(ms_stream_new_mem_reader(&r, data, sizeof(data), NULL),
			 0);
	ck_assert_int_eq(ms_get_be64_array(r, v, 6), -ENODATA);
	for (i = 0; i < 6; i++)
		ck_assert_uint_eq(v[i], 0);
	ck_assert_uint_eq(ms_stream_error_offset(r), 40);
	ms_stream_close(r);
}
END_TEST

START_TEST(test_stream_counted_string_limits)
{
	char s255[256], s256[257], out[256];
	ms_stream *w = new_writer(0), *r;

	memset(s255, 'x', 255);
	s255[255] = '\0';
	memset(s256, 'y', 256);
	s256[256] = '\0';
	ck_assert_int_eq(ms_put_counted_string(w, ""), 0);
	ck_assert_int_eq(ms_put_counted_string(w, s255), 0);
	/* Too long: refused, nothing written, the stream still works. */
	ck_assert_int_eq(ms_put_counted_string(w, s256), -EINVAL);
	ck_assert_int_eq(ms_stream_error(w), 0);
	ck_assert_uint_eq(ms_stream_tell(w), 1 + 1 + 255);
	r = reader_of(w, 0);
	ck_assert_int_eq(ms_get_counted_string(r, out), 0);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(ms_get_counted_string(r, out), 255);
	ck_assert_str_eq(out, s255);
	/* A count past the end of the data is a short read, not zeros. */
	ck_assert_int_eq(ms_get_counted_string(r, out), -ENODATA);
	ck_assert_str_eq(out, "");
	ms_stream_close(r);
	ms_stream_close(w);
}
END_TEST

START_TEST(test_stream_counted_string_truncated)
{
	static const uint8_t data[] = {5, 'a', 'b'};
	char out[256];
	ms_stream *r;

	ck_assert_int_eq(ms_stream_new_mem_reader(&r, data, 3, NULL), 0);
	ck_assert_int_eq(ms_get_counted_string(r, out), -ENODATA);
	ck_assert_str_eq(out, "");
	ck_assert_uint_eq(ms_stream_error_offset(r), 1);
	ck_assert_ptr_nonnull(strstr(ms_stream_errmsg(r), "5 bytes needed"));
	ms_stream_close(r);
}
END_TEST

/* A short read fails with -ENODATA at the offset of the get, sticky. */
START_TEST(test_stream_short_read_is_sticky_error)
{
	static const uint8_t data[] = {1, 2, 3, 4, 5, 6};
	uint8_t buf[8];
	uint32_t v32 = 99;
	uint64_t v64 = 99;
	uint8_t v8 = 99;
	ms_stream *r;

	ck_assert_int_eq(ms_stream_new_mem_reader(&r, data, 6, NULL), 0);
	ck_assert_int_eq(ms_get_be32(r, &v32), 0);
	ck_assert_uint_eq(v32, 0x01020304);
	ck_assert_int_eq(ms_get_be64(r, &v64), -ENODATA);
	ck_assert_uint_eq(v64, 0);
	ck_assert_int_eq(ms_stream_error(r), -ENODATA);
	ck_assert_uint_eq(ms_stream_error_offset(r), 4);
	ck_assert_str_eq(ms_stream_errmsg(r),
			 "offset 0x4: end of stream: 8 bytes needed, 2 left");
	/* Bytes that were there are not handed out after the error. */
	ck_assert_int_eq(ms_get_u8(r, &v8), -ENODATA);
	ck_assert_uint_eq(v8, 0);
	memset(buf, 0xaa, sizeof(buf));
	ck_assert_int_eq(ms_get_buffer(r, buf, 2), -ENODATA);
	ck_assert_uint_eq(buf[0], 0);
	ck_assert_uint_eq(buf[1], 0);
	ck_assert_uint_eq(buf[2], 0xaa);
	ck_assert(!ms_stream_is_eof(r));
	ck_assert_uint_eq(ms_stream_available(r), 0);
	/* A later error does not replace the first. */
	ms_stream_set_error(r, -EIO, "later");
	ck_assert_int_eq(ms_stream_error(r), -ENODATA);
	ck_assert_int_eq(ms_stream_close(r), -ENODATA);
}
END_TEST

/* ms_get_buffer never copies more than asked, nor past the data. */
START_TEST(test_stream_get_buffer_exact)
{
	uint8_t src[100], dst[120];
	ms_stream *r;
	size_t i;

	for (i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)i;
	ck_assert_int_eq(ms_stream_new_mem_reader(&r, src, 100, NULL), 0);
	memset(dst, 0xee, sizeof(dst));
	ck_assert_int_eq(ms_get_buffer(r, dst, 30), 0);
	ck_assert_mem_eq(dst, src, 30);
	for (i = 30; i < sizeof(dst); i++)
		ck_assert_uint_eq(dst[i], 0xee);
	ck_assert_int_eq(ms_get_buffer(r, dst + 30, 70), 0);
	ck_assert_mem_eq(dst, src, 100);
	for (i = 100; i < sizeof(dst); i++)
		ck_assert_uint_eq(dst[i], 0xee);
	ck_assert(ms_stream_is_eof(r));
	/* Asking for more than is left zero-fills exactly the request. */
	ck_assert_int_eq(ms_get_buffer(r, dst, 10), -ENODATA);
	for (i = 0; i < 10; i++)
		ck_assert_uint_eq(dst[i], 0);
	ck_assert_uint_eq(dst[10], 10);
	ms_stream_close(r);
}
END_TEST

START_TEST(test_stream_peek_and_skip)
{
	uint8_t src[64];
	const uint8_t *p;
	ms_stream *w = new_writer(16), *r;
	ms_stream_opts o = {MS_STREAM_OPTS_VERSION, NULL, 16, 0, 0};
	uint8_t v;
	size_t i;

	for (i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i + 1);
	/* Memory readers peek any length. */
	ck_assert_int_eq(ms_stream_new_mem_reader(&r, src, 64, &o), 0);
	ck_assert_int_eq(ms_peek(r, &p, 64), 64);
	ck_assert_mem_eq(p, src, 64);
	ck_assert_int_eq(ms_peek(r, &p, 100), 64);
	ck_assert_uint_eq(ms_stream_tell(r), 0);
	ck_assert_int_eq(ms_skip(r, 60), 0);
	ck_assert_uint_eq(ms_stream_tell(r), 60);
	/* Peek at the end returns what is left, then 0. */
	ck_assert_int_eq(ms_peek(r, &p, 8), 4);
	ck_assert_uint_eq(p[0], 61);
	ck_assert_int_eq(ms_skip(r, 4), 0);
	ck_assert_int_eq(ms_peek(r, &p, 8), 0);
	ck_assert_int_eq(ms_stream_error(r), 0);
	ck_assert(ms_stream_is_eof(r));
	ck_assert_int_eq(ms_skip(r, 1), -ENODATA);
	ck_assert_uint_eq(ms_stream_error_offset(r), 64);
	ck_assert_int_eq(ms_get_u8(r, &v), -ENODATA);
	ms_stream_close(r);
	ms_stream_close(w);
}
END_TEST

START_TEST(test_stream_skip_past_end)
{
	uint8_t src[10] = {0};
	ms_stream *r;

	ck_assert_int_eq(ms_stream_new_mem_reader(&r, src, 10, NULL), 0);
	ck_assert_int_eq(ms_skip(r, 3), 0);
	ck_assert_int_eq(ms_skip(r, 1000), -ENODATA);
	ck_assert_uint_eq(ms_stream_error_offset(r), 3);
	ck_assert_str_eq(ms_stream_errmsg(r),
			 "offset 0x3: end of stream: 1000 bytes needed, 7 "
			 "left");
	ms_stream_close(r);
}
END_TEST

START_TEST(test_stream_empty_reader)
{
	ms_stream *r;
	uint8_t v;

	ck_assert_int_eq(ms_stream_new_mem_reader(&r, NULL, 0, NULL), 0);
	ck_assert(ms_stream_is_eof(r));
	ck_assert_int_eq(ms_get_u8(r, &v), -ENODATA);
	ck_assert_uint_eq(ms_stream_error_offset(r), 0);
	ms_stream_close(r);
	ck_assert_int_eq(ms_stream_new_mem_reader(&r, NULL, 1, NULL), -EINVAL);
}
END_TEST

/* After a writer error, puts do nothing and return the first error. */
START_TEST(test_stream_writer_sticky_error)
{
	ms_stream *w;
	const uint8_t *data;
	size_t len;
	uint8_t big[100] = {0};

	ck_assert_int_eq(ms_stream_new_mem(&w, 10, NULL), 0);
	ck_assert_int_eq(ms_put_be64(w, 1), 0);
	ck_assert_int_eq(ms_put_be32(w, 2), -ENOSPC);
	ck_assert_uint_eq(ms_stream_error_offset(w), 8);
	ck_assert_int_eq(ms_put_u8(w, 1), -ENOSPC);
	ck_assert_int_eq(ms_put_buffer(w, big, 1), -ENOSPC);
	ck_assert_int_eq(ms_put_buffer_async(w, big, 100), -ENOSPC);
	ck_assert_int_eq(ms_put_counted_string(w, "a"), -ENOSPC);
	ck_assert_uint_eq(ms_stream_tell(w), 8);
	/* The view still holds everything put before the error. */
	ck_assert_int_eq(ms_stream_mem_view(w, &data, &len), -ENOSPC);
	ck_assert_uint_eq(len, 8);
	ck_assert_int_eq(ms_stream_flush(w), -ENOSPC);
	ck_assert_ptr_nonnull(strstr(ms_stream_errmsg(w), "memory sink full"));
	ck_assert_int_eq(ms_stream_close(w), -ENOSPC);
}
END_TEST

START_TEST(test_stream_mem_limit_exact)
{
	ms_stream *w;
	uint8_t buf[300];
	int i;

	memset(buf, 1, sizeof(buf));
	ck_assert_int_eq(ms_stream_new_mem(&w, 1000, NULL), 0);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(ms_put_buffer(w, buf, 300), 0);
	ck_assert_int_eq(ms_put_buffer(w, buf, 100), 0);
	ck_assert_int_eq(ms_put_u8(w, 1), -ENOSPC);
	ck_assert_uint_eq(ms_stream_tell(w), 1000);
	ms_stream_close(w);
}
END_TEST

/* Discarding held bytes makes room under the limit, and tell() goes on. */
START_TEST(test_stream_mem_discard_windows)
{
	struct ms_test_alloc ta;
	ms_stream_opts o = {MS_STREAM_OPTS_VERSION, NULL, 0, 0, 0};
	ms_stream *w;
	const uint8_t *data;
	size_t len, k, total = 0;
	uint8_t chunk[700];
	uint64_t expect = 0;
	int i;

	ms_test_alloc_init(&ta, 0);
	o.allocator = &ta.a;
	ck_assert_int_eq(ms_stream_new_mem(&w, 4096, &o), 0);
	for (i = 0; i < 3000; i++) {
		for (k = 0; k < sizeof(chunk); k++)
			chunk[k] = (uint8_t)(total + k);
		if (ms_put_buffer(w, chunk, sizeof(chunk)))
			ck_abort_msg("put %d: %s", i, ms_stream_errmsg(w));
		total += sizeof(chunk);
		ms_stream_mem_view(w, &data, &len);
		if (len > 4096)
			ck_abort_msg("%zu bytes held", len);
		/* Near the limit, take a window of 1000 bytes out. */
		if (len < 3000)
			continue;
		for (k = 0; k < 1000; k++)
			if (data[k] != (uint8_t)(expect + k))
				ck_abort_msg("byte %llu differs",
					     (unsigned long long)(expect + k));
		if (ms_stream_mem_discard(w, 1000))
			ck_abort_msg("discard failed");
		expect += 1000;
	}
	ck_assert_uint_eq(ms_stream_tell(w), total);
	ck_assert_uint_gt(expect, total - 4096);
	/* Memory stays bounded: a few allocations, never one per window. */
	ck_assert_int_le(ta.calls, 8);
	ck_assert_int_eq(ms_stream_mem_discard(w, 1u << 30), -EINVAL);
	/* A put larger than the limit fails even with room discarded. */
	ms_stream_mem_view(w, &data, &len);
	ck_assert_int_eq(ms_stream_mem_discard(w, len), 0);
	ck_assert_int_eq(ms_put_buffer(w, chunk, 1), 0);
	for (k = 0; k < 6; k++)
		ms_put_buffer(w, chunk, sizeof(chunk));
	ck_assert_int_eq(ms_stream_error(w), -ENOSPC);
	ms_stream_close(w);
	ck_assert_int_eq(ta.live, 0);
}
END_TEST

/* Growth is geometric: a million 1-byte puts make few reallocations. */
START_TEST(test_stream_mem_growth_amortised)
{
	struct ms_test_alloc ta;
	ms_stream_opts o = {MS_STREAM_OPTS_VERSION, NULL, 0, 0, 0};
	ms_stream *w;
	int i, ret = 0;

	ms_test_alloc_init(&ta, 0);
	o.allocator = &ta.a;
	ck_assert_int_eq(ms_stream_new_mem(&w, 0, &o), 0);
	for (i = 0; i < 1000000; i++)
		ret |= ms_put_u8(w, (uint8_t)i);
	ck_assert_int_eq(ret, 0);
	ck_assert_int_le(ta.calls, 40);
	ck_assert_int_eq(ms_stream_close(w), 0);
	ck_assert_int_eq(ta.live, 0);
}
END_TEST

START_TEST(test_stream_feed_incremental)
{
	struct ms_test_script sc;
	ms_stream *w = new_writer(0), *r;
	const uint8_t *data;
	size_t len, off = 0;
	uint32_t v32 = 99;
	uint8_t v;

	ms_test_script_init(&sc);
	ms_test_script_write(w, &sc);
	ms_stream_mem_view(w, &data, &len);
	ck_assert_int_eq(ms_stream_new_feed(&r, NULL), 0);
	ck_assert_uint_eq(ms_stream_available(r), 0);
	ck_assert(!ms_stream_is_eof(r));
	/* Feed in odd-sized chunks; everything arrives before it is read. */
	while (off < len) {
		size_t n = len - off < 777 ? len - off : 777;

		ck_assert_int_eq(ms_stream_feed(r, data + off, n), 0);
		off += n;
	}
	ck_assert_uint_eq(ms_stream_available(r), len);
	ms_test_script_read(r, &sc);
	ck_assert(!ms_stream_is_eof(r));
	/* Reading past what was fed, before the end: -EAGAIN. */
	ck_assert_int_eq(ms_get_u8(r, &v), -EAGAIN);
	ck_assert_uint_eq(ms_stream_error_offset(r), len);
	ck_assert_int_eq(ms_stream_feed(r, data, 1), -EAGAIN);
	ms_stream_close(r);

	/* The message says what is missing, not what was fed in total. */
	ck_assert_int_eq(ms_stream_new_feed(&r, NULL), 0);
	ck_assert_int_eq(ms_stream_feed(r, data, 10), 0);
	ck_assert_int_eq(ms_skip(r, 8), 0);
	ck_assert_int_eq(ms_get_be32(r, &v32), -EAGAIN);
	ck_assert_uint_eq(v32, 0);
	ck_assert_uint_eq(ms_stream_error_offset(r), 8);
	ck_assert_str_eq(ms_stream_errmsg(r),
			 "offset 0x8: 4 bytes needed, 2 available (more may "
			 "be fed)");
	/* Sticky, as documented: more data does not clear it. */
	ck_assert_int_eq(ms_stream_feed(r, data, 10), -EAGAIN);
	ck_assert_int_eq(ms_get_u8(r, &v), -EAGAIN);
	ms_stream_close(r);

	/* The same after the end is marked: -ENODATA. */
	ck_assert_int_eq(ms_stream_new_feed(&r, NULL), 0);
	ck_assert_int_eq(ms_stream_feed(r, data, 3), 0);
	ck_assert_int_eq(ms_stream_feed_end(r), 0);
	ck_assert_int_eq(ms_stream_feed(r, data, 3), -EINVAL);
	ck_assert_int_eq(ms_skip(r, 3), 0);
	ck_assert(ms_stream_is_eof(r));
	ck_assert_int_eq(ms_get_u8(r, &v), -ENODATA);
	ms_stream_close(r);
	ms_stream_close(w);
}
END_TEST

/* A consumer that keeps up keeps a feed reader's memory bounded. */
START_TEST(test_stream_feed_bounded)
{
	struct ms_test_alloc ta;
	ms_stream_opts o = {MS_STREAM_OPTS_VERSION, NULL, 0, 0, 0};
	uint8_t chunk[1000], out[1000];
	ms_stream *r;
	int i;

	ms_test_alloc_init(&ta, 0);
	o.allocator = &ta.a;
	ck_assert_int_eq(ms_stream_new_feed(&r, &o), 0);
	for (i = 0; i < 3000; i++) {
		ms_test_fill(chunk, sizeof(chunk), (uint64_t)i);
		if (ms_stream_feed(r, chunk, sizeof(chunk)) ||
		    ms_get_buffer(r, out, 600) || memcmp(out, chunk, 600) ||
		    ms_get_buffer(r, out, 400) || memcmp(out, chunk + 600, 400))
			ck_abort_msg("round %d: %s", i, ms_stream_errmsg(r));
	}
	ck_assert_int_le(ta.calls, 10);
	ms_stream_close(r);
	ck_assert_int_eq(ta.live, 0);
}
END_TEST

/* Bytes that depend on their position in the stream. */
static void fill_at(uint8_t *p, size_t n, uint64_t at)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)((at + i) * 131 + ((at + i) >> 9));
}

/*
 * Appending in place (ms_stream_feed_reserve/commit): what is written at
 * the room arrives, in order, whatever the consumer has left unread, and
 * a consumer that keeps up keeps the buffer bounded.
 */
START_TEST(test_stream_feed_reserve)
{
	struct ms_test_alloc ta;
	ms_stream_opts o = {MS_STREAM_OPTS_VERSION, NULL, 0, 0, 0};
	uint8_t want[5000], got[5000];
	uint64_t fed = 0, read = 0;
	void *room;
	ms_stream *r;
	int i;

	ms_test_alloc_init(&ta, 0);
	o.allocator = &ta.a;
	ck_assert_int_eq(ms_stream_new_feed(&r, &o), 0);
	for (i = 0; i < 2000; i++) {
		/* Rounds of 1 to 4000 bytes, read back in other sizes, so
		 * the unread rest sits anywhere in the buffer. */
		size_t n = 1 + (size_t)(i * 7919) % 4000;
		size_t take = (size_t)(i * 104729) % 4500;

		ck_assert_int_eq(ms_stream_feed_reserve(r, 4096, &room), 0);
		ck_assert_ptr_nonnull(room);
		fill_at(room, n, fed);
		ck_assert_int_eq(ms_stream_feed_commit(r, n), 0);
		fed += n;
		if (take > fed - read)
			take = (size_t)(fed - read);
		fill_at(want, take, read);
		if (ms_get_buffer(r, got, take) || memcmp(got, want, take))
			ck_abort_msg("round %d: %s", i, ms_stream_errmsg(r));
		read += take;
	}
	ck_assert_uint_eq(ms_stream_available(r), fed - read);
	ck_assert_int_le(ta.calls, 12);

	/* Commits beyond the reservation, or without one, change nothing. */
	ck_assert_int_eq(ms_stream_feed_commit(r, 1), -EINVAL);
	ck_assert_int_eq(ms_stream_feed_reserve(r, 10, &room), 0);
	ck_assert_int_eq(ms_stream_feed_commit(r, 11), -EINVAL);
	ck_assert_uint_eq(ms_stream_available(r), fed - read);
	/* A new reservation replaces the old; committing 0 ends it. */
	ck_assert_int_eq(ms_stream_feed_reserve(r, 20, &room), 0);
	ck_assert_int_eq(ms_stream_feed_commit(r, 20), 0);
	fed += 20;
	ck_assert_int_eq(ms_stream_feed_reserve(r, 5, &room), 0);
	ck_assert_int_eq(ms_stream_feed_commit(r, 0), 0);
	ck_assert_int_eq(ms_stream_feed_commit(r, 1), -EINVAL);
	ck_assert_int_eq(ms_stream_feed_commit(r, 0), -EINVAL);
	/* ms_stream_feed() ends a reservation too. */
	ck_assert_int_eq(ms_stream_feed_reserve(r, 5, &room), 0);
	ck_assert_int_eq(ms_stream_feed(r, "x", 1), 0);
	fed++;
	ck_assert_int_eq(ms_stream_feed_commit(r, 1), -EINVAL);
	ck_assert_uint_eq(ms_stream_available(r), fed - read);

	/* After the end, nothing more can be reserved. */
	ck_assert_int_eq(ms_stream_feed_end(r), 0);
	ck_assert_int_eq(ms_stream_feed_reserve(r, 1, &room), -EINVAL);
	ck_assert_ptr_null(room);
	ms_stream_close(r);
	ck_assert_int_eq(ta.live, 0);

	/* A failed reservation fails the stream; the error is sticky. */
	ms_test_alloc_init(&ta, 0);
	o.allocator = &ta.a;
	ck_assert_int_eq(ms_stream_new_feed(&r, &o), 0);
	ta.fail_at = ta.calls + 1;
	ck_assert_int_eq(ms_stream_feed_reserve(r, 100, &room), -ENOMEM);
	ck_assert_ptr_null(room);
	ck_assert_int_eq(ms_stream_error(r), -ENOMEM);
	ck_assert_int_eq(ms_stream_feed_reserve(r, 1, &room), -ENOMEM);
	ck_assert_int_eq(ms_stream_feed_commit(r, 0), -ENOMEM);
	ms_stream_close(r);
	ck_assert_int_eq(ta.live, 0);
}
END_TEST

START_TEST(test_stream_set_error_and_offsets)
{
	ms_stream *w = new_writer(0);

	ms_put_be32(w, 7);
	ck_assert_int_eq(ms_stream_errmsg(w)[0], '\0');
	ck_assert_uint_eq(ms_stream_error_offset(w), 0);
	ck_assert_int_eq(ms_stream_set_error(w, -EBADMSG, "bad %s %d", "x", 3),
			 -EBADMSG);
	ck_assert_str_eq(ms_stream_errmsg(w), "offset 0x4: bad x 3");
	ck_assert_uint_eq(ms_stream_error_offset(w), 4);
	ck_assert_int_eq(ms_stream_close(w), -EBADMSG);

	w = new_writer(0);
	ck_assert_int_eq(ms_stream_set_error(w, -EPROTO, NULL), -EPROTO);
	ck_assert_str_eq(ms_stream_errmsg(w), "offset 0x0: protocol error");
	ck_assert_int_eq(ms_stream_close(w), -EPROTO);
}
END_TEST

START_TEST(test_stream_bad_arguments)
{
	ms_stream_opts o = {999, NULL, 0, 0, 0};
	ms_allocator half = {ms_test_alloc_malloc, NULL, NULL, NULL};
	ms_stream *s = (ms_stream *)0x1;

	ck_assert_int_eq(ms_stream_new_mem(&s, 0, &o), -EINVAL);
	ck_assert_ptr_eq(s, (ms_stream *)0x1);
	o.version = MS_STREAM_OPTS_VERSION;
	o.buffer_size = 8;
	ck_assert_int_eq(ms_stream_new_mem(&s, 0, &o), -EINVAL);
	o.buffer_size = 0;
	o.timeout_ms = -1;
	ck_assert_int_eq(ms_stream_new_mem(&s, 0, &o), -EINVAL);
	o.timeout_ms = 0;
	o.allocator = &half;
	ck_assert_int_eq(ms_stream_new_mem(&s, 0, &o), -EINVAL);
	ck_assert_ptr_eq(s, (ms_stream *)0x1);
	ck_assert_int_eq(ms_stream_new_mem(NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(ms_stream_close(NULL), 0);
}
END_TEST

START_TEST(test_stream_zero_length_ops)
{
	ms_stream *w = new_writer(0), *r;
	const uint8_t *p;

	ck_assert_int_eq(ms_put_buffer(w, NULL, 0), 0);
	ck_assert_int_eq(ms_put_buffer_async(w, NULL, 0), 0);
	ck_assert_uint_eq(ms_stream_tell(w), 0);
	r = reader_of(w, 0);
	ck_assert_int_eq(ms_get_buffer(r, NULL, 0), 0);
	ck_assert_int_eq(ms_skip(r, 0), 0);
	ck_assert_int_eq(ms_peek(r, &p, 0), 0);
	ck_assert_int_eq(ms_stream_flush(r), 0);
	ck_assert_int_eq(ms_stream_mode_of(r), MS_STREAM_READER);
	ck_assert_int_eq(ms_stream_mode_of(w), MS_STREAM_WRITER);
	ms_stream_close(r);
	ms_stream_close(w);
}
END_TEST

START_TEST(test_stream_stats_count_copies)
{
	ms_stream *w = new_writer(0);
	ms_stream_stats st;
	uint8_t big[8192] = {0};

	ms_put_be64(w, 1);
	ms_put_buffer_async(w, big, sizeof(big));
	ms_stream_get_stats(w, &st);
	ck_assert_uint_eq(st.bytes, 8 + sizeof(big));
	/* The memory sink must store every byte: all of it is copied. */
	ck_assert_uint_eq(st.bytes_copied, 8 + sizeof(big));
	ck_assert_uint_eq(st.bytes_zero_copy, 0);
	ms_stream_close(w);
}
END_TEST

/* Two streams on two threads at once never see each other's state. */
struct thread_arg {
	int id;
	int ok;
};

static void *thread_main(void *p)
{
	struct thread_arg *a = p;
	uint8_t buf[512];
	int round;

	a->ok = 1;
	for (round = 0; round < 200; round++) {
		ms_stream *w, *r;
		const uint8_t *data;
		size_t len;
		uint64_t v;
		int i;

		if (ms_stream_new_mem(&w, 0, NULL))
			return (a->ok = 0, NULL);
		for (i = 0; i < 100; i++) {
			ms_put_be64(w, (uint64_t)a->id << 32 | (uint64_t)i);
			memset(buf, a->id, sizeof(buf));
			ms_put_buffer(w, buf, (size_t)i * 5);
		}
		ms_stream_mem_view(w, &data, &len);
		if (ms_stream_new_mem_reader(&r, data, len, NULL))
			return (a->ok = 0, NULL);
		for (i = 0; i < 100; i++) {
			if (ms_get_be64(r, &v) ||
			    v != ((uint64_t)a->id << 32 | (uint64_t)i))
				a->ok = 0;
			if (ms_get_buffer(r, buf, (size_t)i * 5) ||
			    (i && buf[i * 5 - 1] != a->id))
				a->ok = 0;
		}
		/* An error on one thread's stream stays there. */
		if (ms_get_u8(r, buf) != -ENODATA)
			a->ok = 0;
		ms_stream_close(r);
		ms_stream_close(w);
	}
	return NULL;
}

START_TEST(test_stream_threads_independent)
{
	pthread_t t[4];
	struct thread_arg a[4];
	int i;

	for (i = 0; i < 4; i++) {
		a[i].id = i + 1;
		ck_assert_int_eq(
			pthread_create(&t[i], NULL, thread_main, &a[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(a[i].ok, 1);
	}
}
END_TEST

/*
 * Empty streams have no buffer at all: peeking, array puts and array gets
 * on them must not compute NULL + 0 (undefined behaviour that clang's
 * UBSan reports: build with CC=clang --enable-asan).
 */
START_TEST(test_stream_no_null_pointer_arithmetic)
{
	static const uint16_t a16[3] = {1, 2, 3};
	static const uint64_t a64[2] = {4, 5};
	uint16_t g16[2] = {7, 7};
	const uint8_t *p = (const uint8_t *)1, *data;
	size_t len;
	ms_stream *w, *r;

	/* Peek 0 bytes on an empty memory reader and a starved feed. */
	ck_assert_int_eq(ms_stream_new_mem_reader(&r, NULL, 0, NULL), 0);
	ck_assert_int_eq(ms_peek(r, &p, 0), 0);
	ck_assert_int_eq(ms_peek(r, &p, 4), 0);
	ck_assert_int_eq(ms_get_be16_array(r, g16, 0), 0);
	ck_assert_int_eq(ms_stream_error(r), 0);
	ck_assert_int_eq(ms_get_be16_array(r, g16, 2), -ENODATA);
	ck_assert_uint_eq(g16[0], 0);
	ck_assert_uint_eq(g16[1], 0);
	ms_stream_close(r);
	ck_assert_int_eq(ms_stream_new_feed(&r, NULL), 0);
	ck_assert_int_eq(ms_peek(r, &p, 0), 0);
	ck_assert_int_eq(ms_stream_error(r), 0);
	ms_stream_close(r);

	/* Empty, then non-empty arrays into fresh memory writers. */
	ck_assert_int_eq(ms_stream_new_mem(&w, 0, NULL), 0);
	ck_assert_int_eq(ms_put_be16_array(w, a16, 0), 0);
	ck_assert_int_eq(ms_put_be16_array(w, NULL, 0), 0);
	ck_assert_int_eq(ms_put_be16_array(w, a16, 3), 0);
	ms_stream_mem_view(w, &data, &len);
	ck_assert_uint_eq(len, 6);
	ck_assert_uint_eq(data[5], 3);
	ck_assert_int_eq(ms_stream_close(w), 0);
	ck_assert_int_eq(ms_stream_new_mem(&w, 0, NULL), 0);
	ck_assert_int_eq(ms_put_be64_array(w, a64, 2), 0);
	ck_assert_uint_eq(ms_stream_tell(w), 16);
	ck_assert_int_eq(ms_stream_close(w), 0);
}
END_TEST

/* Sizes near SIZE_MAX are refused before anything is allocated or read. */
START_TEST(test_stream_huge_sizes_refused)
{
	static const uint8_t byte = 1;
	ms_stream *w, *r;

	/* The buffer is never read: the size check comes first. */
	ck_assert_int_eq(ms_stream_new_mem(&w, 0, NULL), 0);
	ck_assert_int_eq(ms_put_buffer(w, &byte, SIZE_MAX / 4 + 1), -ENOMEM);
	ck_assert_uint_eq(ms_stream_tell(w), 0);
	ms_stream_close(w);
	ck_assert_int_eq(ms_stream_new_mem(&w, 0, NULL), 0);
	ck_assert_int_eq(ms_put_u8(w, 1), 0);
	ck_assert_int_eq(ms_put_buffer(w, &byte, SIZE_MAX - 1), -ENOMEM);
	ck_assert_ptr_nonnull(strstr(ms_stream_errmsg(w), "too large"));
	ms_stream_close(w);

	ck_assert_int_eq(ms_stream_new_feed(&r, NULL), 0);
	ck_assert_int_eq(ms_stream_feed(r, &byte, 1), 0);
	ck_assert_int_eq(ms_stream_feed(r, &byte, SIZE_MAX / 4 + 1), -ENOMEM);
	ms_stream_close(r);
	ck_assert_int_eq(ms_stream_new_feed(&r, NULL), 0);
	ck_assert_int_eq(ms_stream_feed(r, &byte, 1), 0);
	ck_assert_int_eq(ms_stream_feed(r, &byte, SIZE_MAX), -ENOMEM);
	ms_stream_close(r);
}
END_TEST

/* A custom reader over a fixed buffer. */
struct fixed_src {
	const uint8_t *p;
	size_t len, off;
};

static ssize_t fixed_read(void *opaque, void *buf, size_t len)
{
	struct fixed_src *f = opaque;
	size_t n = f->len - f->off < len ? f->len - f->off : len;

	memcpy(buf, f->p + f->off, n);
	f->off += n;
	return (ssize_t)n;
}

static const ms_stream_ops fixed_ops = {
	MS_STREAM_OPS_VERSION, NULL, fixed_read, NULL, NULL,
};

/*
 * Calls refused with -EINVAL (a wrong order, a bad argument) say in the
 * stream's message what was expected, and leave the stream working: the
 * error stays 0, the next refusal replaces the note, and a real error
 * replaces it for good.
 */
START_TEST(test_stream_refusals_say_what_was_expected)
{
	char s256[257];
	const uint8_t *p;
	uint8_t data[8] = {1, 2, 3, 4, 5, 6, 7, 8}, v;
	struct fixed_src src = {data, sizeof(data), 0};
	ms_stream_opts o16 = {MS_STREAM_OPTS_VERSION, NULL, 16, 0, 0};
	uint16_t v16;
	void *room;
	ms_stream *w = new_writer(0), *r, *f;

	memset(s256, 'y', 256);
	s256[256] = '\0';
	ck_assert_str_eq(ms_stream_errmsg(w), "");
	ck_assert_int_eq(ms_put_counted_string(w, s256), -EINVAL);
	ck_assert_int_eq(ms_stream_error(w), 0);
	ck_assert_uint_eq(ms_stream_error_offset(w), 0);
	ck_assert_str_eq(ms_stream_errmsg(w),
			 "ms_put_counted_string: at most 255 bytes fit, the "
			 "string has 256");
	ck_assert_int_eq(ms_put_be32(w, 1), 0);
	ck_assert_int_eq(ms_stream_mem_discard(w, 5), -EINVAL);
	ck_assert_str_eq(ms_stream_errmsg(w),
			 "ms_stream_mem_discard: at most the 4 bytes held can "
			 "be discarded, 5 asked");
	ck_assert_int_eq(ms_stream_error(w), 0);

	/* A feed reader: order of reserve, commit, feed and end. */
	ck_assert_int_eq(ms_stream_new_feed(&f, NULL), 0);
	ck_assert_int_eq(ms_stream_feed_commit(f, 1), -EINVAL);
	ck_assert_str_eq(ms_stream_errmsg(f),
			 "ms_stream_feed_commit: no reservation to commit "
			 "(ms_stream_feed_reserve() first, once per commit)");
	ck_assert_int_eq(ms_stream_feed_reserve(f, 4, &room), 0);
	ck_assert_int_eq(ms_stream_feed_commit(f, 5), -EINVAL);
	ck_assert_str_eq(ms_stream_errmsg(f),
			 "ms_stream_feed_commit: 5 bytes committed, only 4 "
			 "reserved");
	ck_assert_int_eq(ms_stream_feed(f, NULL, 3), -EINVAL);
	ck_assert_str_eq(ms_stream_errmsg(f),
			 "ms_stream_feed: buffer NULL for 3 bytes");
	ck_assert_int_eq(ms_stream_feed(f, data, 2), 0);
	ck_assert_int_eq(ms_stream_feed_end(f), 0);
	ck_assert_int_eq(ms_stream_feed(f, data, 2), -EINVAL);
	ck_assert_str_eq(ms_stream_errmsg(f),
			 "ms_stream_feed: called after ms_stream_feed_end()");
	ck_assert_int_eq(ms_stream_feed_reserve(f, 2, &room), -EINVAL);
	ck_assert_str_eq(ms_stream_errmsg(f), "ms_stream_feed_reserve: called "
					      "after ms_stream_feed_end()");
	ck_assert_int_eq(ms_stream_error(f), 0);
	/* The data fed before is still there; a real error wins. */
	ck_assert_int_eq(ms_get_u8(f, &v), 0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(ms_get_be16(f, &v16), -ENODATA);
	ck_assert_str_eq(ms_stream_errmsg(f),
			 "offset 0x1: end of stream: 2 bytes needed, 1 left");
	ck_assert_int_eq(ms_stream_feed(f, data, 1), -EINVAL);
	ck_assert_str_eq(ms_stream_errmsg(f),
			 "offset 0x1: end of stream: 2 bytes needed, 1 left");

	/* A peek larger than a refilled buffer can hold. */
	ck_assert_int_eq(ms_stream_new_custom(&r, &fixed_ops, &src,
					      MS_STREAM_READER, &o16),
			 0);
	ck_assert_int_eq(ms_peek(r, &p, 17), -EINVAL);
	ck_assert_str_eq(ms_stream_errmsg(r),
			 "ms_peek: at most the buffer size (16 bytes) can be "
			 "peeked, 17 asked");
	ck_assert_int_eq(ms_peek(r, &p, 16), 8);
	ck_assert_int_eq(ms_stream_close(r), 0);
	ck_assert_int_eq(ms_stream_close(f), -ENODATA);
	ck_assert_int_eq(ms_stream_close(w), 0);
}
END_TEST

/*
 * Caller bugs in a build with NDEBUG: NULL handles and gets or puts in
 * the wrong direction return -EINVAL, dereference nothing, leave the
 * stream's error alone, and a misused get zeroes its output.  Without
 * NDEBUG these are assert() failures, so the test has nothing to do.
 */
START_TEST(test_stream_misuse_without_asserts)
{
#ifdef NDEBUG
	char str[MS_COUNTED_STRING_MAX + 1];
	ms_stream_stats st;
	const uint8_t *p, *data;
	uint8_t u8 = 0xaa, buf[4] = {1, 2, 3, 4};
	uint16_t u16 = 0xaaaa, a16[2] = {9, 9};
	uint32_t u32 = 0xaaaaaaaa;
	uint64_t u64 = 0xaaaa, a64[2] = {9, 9};
	int8_t s8 = 5;
	int16_t s16 = 5;
	int32_t s32 = 5;
	int64_t s64 = 5;
	size_t len = 7;
	ms_stream *w = new_writer(0), *r;

	ck_assert_int_eq(ms_stream_mode_of(NULL), 0);
	memset(&st, 0xff, sizeof(st));
	ms_stream_get_stats(NULL, &st);
	ck_assert_uint_eq(st.bytes, 0);
	ck_assert_uint_eq(st.sink_calls, 0);
	ms_stream_get_stats(w, NULL);

	/* Gets on a writer. */
	ck_assert_int_eq(ms_get_u8(w, &u8), -EINVAL);
	ck_assert_int_eq(ms_get_be16(w, &u16), -EINVAL);
	ck_assert_int_eq(ms_get_be32(w, &u32), -EINVAL);
	ck_assert_int_eq(ms_get_be64(w, &u64), -EINVAL);
	ck_assert_int_eq(ms_get_s8(w, &s8), -EINVAL);
	ck_assert_int_eq(ms_get_sbe16(w, &s16), -EINVAL);
	ck_assert_int_eq(ms_get_sbe32(w, &s32), -EINVAL);
	ck_assert_int_eq(ms_get_sbe64(NULL, &s64), -EINVAL);
	ck_assert_uint_eq(u8, 0);
	ck_assert_uint_eq(u16, 0);
	ck_assert_uint_eq(u32, 0);
	ck_assert_uint_eq(u64, 0);
	ck_assert_int_eq(s8, 0);
	ck_assert_int_eq(s16, 0);
	ck_assert_int_eq(s32, 0);
	ck_assert(s64 == 0);
	ck_assert_int_eq(ms_get_be16_array(w, a16, 2), -EINVAL);
	ck_assert_int_eq(ms_get_be64_array(NULL, a64, 2), -EINVAL);
	ck_assert_uint_eq(a16[0] | a16[1], 0);
	ck_assert_uint_eq(a64[0] | a64[1], 0);
	ck_assert_int_eq(ms_get_buffer(w, buf, sizeof(buf)), -EINVAL);
	ck_assert_uint_eq(buf[0] | buf[1] | buf[2] | buf[3], 0);
	str[0] = 'x';
	ck_assert_int_eq(ms_get_counted_string(w, str), -EINVAL);
	ck_assert_str_eq(str, "");
	p = buf;
	ck_assert_int_eq(ms_peek(w, &p, 1), -EINVAL);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(ms_skip(w, 1), -EINVAL);
	ck_assert_int_eq(ms_stream_error(w), 0);
	ck_assert_str_eq(ms_stream_errmsg(w),
			 "ms_skip: called on a writer, a get needs a reader");

	/* Puts on a reader, views of a stream that is not a memory writer. */
	r = reader_of(w, 0);
	ck_assert_int_eq(ms_put_u8(r, 1), -EINVAL);
	ck_assert_int_eq(ms_put_be64_array(r, a64, 2), -EINVAL);
	ck_assert_int_eq(ms_put_buffer(NULL, buf, 1), -EINVAL);
	ck_assert_int_eq(ms_put_counted_string(r, "a"), -EINVAL);
	ck_assert_str_eq(ms_stream_errmsg(r), "ms_put_counted_string: called "
					      "on a reader, a put needs a "
					      "writer");
	data = buf;
	ck_assert_int_eq(ms_stream_mem_view(r, &data, &len), -EINVAL);
	ck_assert_ptr_null(data);
	ck_assert_uint_eq(len, 0);
	ck_assert_str_eq(ms_stream_errmsg(r),
			 "ms_stream_mem_view: needs a memory writer "
			 "(ms_stream_new_mem())");
	ck_assert_int_eq(ms_stream_mem_discard(r, 1), -EINVAL);
	ck_assert_int_eq(ms_stream_feed_end(w), -EINVAL);
	ck_assert_str_eq(ms_stream_errmsg(w),
			 "ms_stream_feed_end: needs a feed reader "
			 "(ms_stream_new_feed())");
	ck_assert_int_eq(ms_stream_feed(r, buf, 1), -EINVAL);
	ck_assert_str_eq(ms_stream_errmsg(r),
			 "ms_stream_feed: needs a feed reader "
			 "(ms_stream_new_feed())");
	ck_assert_int_eq(ms_stream_error(r), 0);
	ck_assert_int_eq(ms_stream_close(r), 0);
	ck_assert_int_eq(ms_stream_close(w), 0);
#else
	fprintf(stderr, "test_stream_misuse_without_asserts: skipped "
			"(configure with CFLAGS=-DNDEBUG to run it)\n");
#endif
}
END_TEST

/*
 * Past 4 GiB: positions, counters and error offsets are 64-bit on every
 * host, 32-bit ones included (where size_t and long wrap at 4 GiB).  The
 * transport counts what it is given and hands back bytes it never fills
 * but for the last ones, so the stream costs calls, not memory.
 */
#define BIG_CHUNK ((size_t)1 << 20)
#define BIG_LEN	  ((uint64_t)4 << 30)

struct big_io {
	uint64_t written;
	uint64_t left;
};

static ssize_t big_writev(void *opaque, const struct iovec *iov, int cnt)
{
	struct big_io *b = opaque;
	size_t n = 0;
	int i;

	for (i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	b->written += n;
	return (ssize_t)n;
}

static ssize_t big_read(void *opaque, void *buf, size_t len)
{
	struct big_io *b = opaque;

	if (len > b->left)
		len = (size_t)b->left;
	if (b->left - len < 16)
		memset(buf, 0xa5, len);
	b->left -= len;
	return (ssize_t)len;
}

START_TEST(test_stream_offsets_past_4gib)
{
	static const ms_stream_ops ops = {
		.version = MS_STREAM_OPS_VERSION,
		.writev = big_writev,
		.read = big_read,
	};
	static uint8_t chunk[BIG_CHUNK];
	struct big_io b = {0, 0};
	ms_stream_stats st;
	ms_stream *s;
	uint32_t v;
	uint64_t i;

	ck_assert_int_eq(
		ms_stream_new_custom(&s, &ops, &b, MS_STREAM_WRITER, NULL), 0);
	for (i = 0; i < BIG_LEN / BIG_CHUNK; i++)
		ck_assert_int_eq(ms_put_buffer(s, chunk, BIG_CHUNK), 0);
	ck_assert_int_eq(ms_put_be32(s, 0x01020304), 0);
	ck_assert_int_eq(ms_stream_flush(s), 0);
	ck_assert_uint_eq(ms_stream_tell(s), BIG_LEN + 4);
	ck_assert_uint_eq(b.written, BIG_LEN + 4);
	ms_stream_get_stats(s, &st);
	ck_assert_uint_eq(st.bytes, BIG_LEN + 4);
	ck_assert_uint_eq(st.bytes_copied + st.bytes_zero_copy, BIG_LEN + 4);
	ck_assert_int_eq(ms_stream_set_error(s, -EIO, "late"), -EIO);
	ck_assert_uint_eq(ms_stream_error_offset(s), BIG_LEN + 4);
	ms_stream_close(s);

	b.left = BIG_LEN + 8;
	ck_assert_int_eq(
		ms_stream_new_custom(&s, &ops, &b, MS_STREAM_READER, NULL), 0);
	ck_assert_int_eq(ms_skip(s, BIG_LEN + 4), 0);
	ck_assert_uint_eq(ms_stream_tell(s), BIG_LEN + 4);
	ck_assert_int_eq(ms_get_be32(s, &v), 0);
	ck_assert_uint_eq(v, 0xa5a5a5a5u);
	ck_assert_int_eq(ms_get_be32(s, &v), -ENODATA);
	ck_assert_uint_eq(ms_stream_error_offset(s), BIG_LEN + 8);
	ck_assert_str_eq(ms_stream_errmsg(s),
			 "offset 0x100000008: end of stream: 4 bytes needed, "
			 "0 left");
	ms_stream_close(s);
}
END_TEST

/*
 * The arena of payloads (src/arena.c), which the vfio-user adapter takes
 * the final device state into.
 */

/* Write payload @i of @len bytes into @ar with puts of every size, so
 * that some straddle a chunk's end: a be32 of @i, the bytes, a u8. */
static int arena_put(struct ms__arena *ar, uint32_t i, size_t len,
		     const uint8_t *pat, const uint8_t **data, size_t *n,
		     struct ms__arena_chunk **chunk)
{
	ms_stream *w;
	int ret;

	ret = ms__arena_writer(&w, ar);
	if (ret)
		return ret;
	ms_put_be32(w, i);
	if (len > 1000) {
		ms_put_buffer(w, pat, 1000);
		ms_put_buffer(w, pat + 1000, len - 1000);
	} else {
		ms_put_buffer(w, pat, len);
	}
	ms_put_u8(w, (uint8_t)i);
	ret = ms__arena_commit(w, data, n, chunk);
	ck_assert_int_eq(ms_stream_close(w), ret);
	return ret;
}

static void arena_check(uint32_t i, size_t len, const uint8_t *pat,
			const uint8_t *data, size_t n)
{
	ck_assert_uint_eq(n, len + 5);
	ck_assert_uint_eq(ms__load_be32(data), i);
	ck_assert_msg(!memcmp(data + 4, pat, len), "payload %u changed", i);
	ck_assert_uint_eq(data[4 + len], (uint8_t)i);
}

/* Payloads of 0 bytes to 33 MiB, around every chunk size, stay where
 * they were committed, unchanged, while more are written; the arena
 * holds at most twice the payloads plus its last chunk. */
START_TEST(test_stream_arena_payloads_stay_put)
{
	static const size_t sizes[] = {0,
				       1,
				       7,
				       65531,
				       65536,
				       65537,
				       300000,
				       (size_t)1 << 20,
				       (size_t)2 << 20,
				       ((size_t)2 << 20) + 1,
				       (size_t)5 << 20,
				       1,
				       (size_t)33 << 20,
				       12345,
				       3};
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	const uint8_t *data[N];
	struct ms__arena_chunk *chunk[N];
	size_t n[N], i, j, sum = 0, largest = 0;
	struct ms__arena ar;
	uint8_t *pat = malloc((size_t)33 << 20);

	ck_assert_ptr_nonnull(pat);
	ms_test_fill(pat, (size_t)33 << 20, 77);
	ms__arena_init(&ar, NULL);
	for (i = 0; i < N; i++) {
		ck_assert_int_eq(arena_put(&ar, (uint32_t)i, sizes[i], pat,
					   &data[i], &n[i], &chunk[i]),
				 0);
		sum += n[i];
		largest = n[i] > largest ? n[i] : largest;
		for (j = 0; j <= i; j++)
			arena_check((uint32_t)j, sizes[j], pat, data[j], n[j]);
	}
	ck_assert_uint_le(ar.bytes, 2 * sum + (largest > ((size_t)16 << 20)
						       ? 2 * largest
						       : (size_t)32 << 20));
	/* Releasing the chunks before a payload's keeps it and the later
	 * ones. */
	ms__arena_release_before(&ar, chunk[N - 3]);
	for (j = N - 3; j < N; j++)
		arena_check((uint32_t)j, sizes[j], pat, data[j], n[j]);
	ms__arena_free(&ar);
	ck_assert_uint_eq(ar.bytes, 0);
	/* The arena may be used again. */
	ck_assert_int_eq(
		arena_put(&ar, 9, 100, pat, &data[0], &n[0], &chunk[0]), 0);
	arena_check(9, 100, pat, data[0], n[0]);
	ms__arena_free(&ar);
	free(pat);
}
END_TEST

/* A payload with nothing in it is committed as none; one written in tiny
 * puts past several chunk sizes moves as it grows and keeps its bytes. */
START_TEST(test_stream_arena_growing_payload)
{
	struct ms_test_alloc al;
	struct ms__arena ar;
	struct ms__arena_chunk *chunk;
	const uint8_t *data;
	ms_stream *w;
	size_t n, i, len = 600000;

	ms_test_alloc_init(&al, 0);
	ms__arena_init(&ar, &al.a);
	ck_assert_int_eq(ms__arena_writer(&w, &ar), 0);
	ck_assert_int_eq(ms__arena_commit(w, &data, &n, &chunk), 0);
	ck_assert_ptr_null(data);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(chunk);
	ck_assert_int_eq(ms_stream_close(w), 0);

	ck_assert_int_eq(ms__arena_writer(&w, &ar), 0);
	for (i = 0; i < len / 4; i++)
		ck_assert_int_eq(ms_put_be32(w, (uint32_t)i * 2654435761u), 0);
	ck_assert_int_eq(ms__arena_commit(w, &data, &n, &chunk), 0);
	ck_assert_int_eq(ms_stream_close(w), 0);
	ck_assert_uint_eq(n, len);
	for (i = 0; i < len / 4; i++)
		ck_assert_uint_eq(ms__load_be32(data + 4 * i),
				  (uint32_t)i * 2654435761u);
	/* 64 KiB to 512 KiB, outgrown, then 1 MiB for the 600000 bytes. */
	ck_assert_uint_le(ar.bytes, 4 * len);
	/* The chunks it outgrew held nothing else and are gone: one chunk
	 * (its header and its memory) is left. */
	ck_assert_uint_eq(ar.bytes, (size_t)1 << 20);
	ck_assert_int_eq(al.live, 2);
	ms__arena_free(&ar);
	ck_assert_int_eq(al.live, 0);

	/* After a committed payload, the chunk it shares is kept (with the
	 * tail the next payload left), the ones that payload outgrew then
	 * are not: 64 KiB + 512 KiB for 10 + 300000 bytes. */
	{
		const uint8_t *first;
		size_t nfirst;
		uint8_t *pat = malloc(300000);

		ck_assert_ptr_nonnull(pat);
		ms_test_fill(pat, 300000, 3);
		ck_assert_int_eq(
			arena_put(&ar, 1, 10, pat, &first, &nfirst, &chunk), 0);
		ck_assert_int_eq(ms__arena_writer(&w, &ar), 0);
		for (i = 0; i < 300; i++)
			ck_assert_int_eq(ms_put_buffer(w, pat + 1000 * i, 1000),
					 0);
		ck_assert_int_eq(ms__arena_commit(w, &data, &n, &chunk), 0);
		ck_assert_int_eq(ms_stream_close(w), 0);
		ck_assert_uint_eq(n, 300000);
		ck_assert(!memcmp(data, pat, n));
		arena_check(1, 10, pat, first, nfirst);
		ck_assert_uint_eq(ar.bytes, ((size_t)64 << 10) + (512 << 10));
		ck_assert_uint_le(ar.bytes, 2 * (nfirst + n) + (512 << 10));
		ck_assert_int_eq(al.live, 4);
		ms__arena_free(&ar);
		ck_assert_int_eq(al.live, 0);
		free(pat);
	}
}
END_TEST

/* Every allocation of a run failing in turn: the writer fails with
 * ENOMEM at its creation or at the commit, the payloads committed before
 * stay intact, and nothing leaks. */
START_TEST(test_stream_arena_out_of_memory)
{
	static const size_t sizes[] = {10, 70000, 200000, 3, 1 << 20, 5};
	enum { N = sizeof(sizes) / sizeof(sizes[0]) };
	uint8_t *pat = malloc(1 << 20);
	struct ms_test_alloc al;
	long fail_at;
	bool clean = false;

	ck_assert_ptr_nonnull(pat);
	ms_test_fill(pat, 1 << 20, 5);
	for (fail_at = 1; !clean; fail_at++) {
		const uint8_t *data[N];
		struct ms__arena_chunk *chunk[N];
		struct ms__arena ar;
		size_t n[N], i, j;
		int ret = 0;

		ck_assert_int_lt(fail_at, 200);
		ms_test_alloc_init(&al, fail_at);
		ms__arena_init(&ar, &al.a);
		for (i = 0; i < N && !ret; i++) {
			ret = arena_put(&ar, (uint32_t)i, sizes[i], pat,
					&data[i], &n[i], &chunk[i]);
			ck_assert(ret == 0 || ret == -ENOMEM);
			for (j = 0; j < i + !ret; j++)
				arena_check((uint32_t)j, sizes[j], pat, data[j],
					    n[j]);
		}
		clean = !ret;
		ms__arena_free(&ar);
		ck_assert_int_eq(al.live, 0);
	}
	ck_assert_int_gt(fail_at, 3);
	free(pat);
}
END_TEST

static Suite *stream_suite(void)
{
	Suite *s = suite_create("stream");
	TCase *tc;

	tc = tcase_create("basics");
	tcase_add_test(tc, test_stream_version_matches_configure);
	tcase_add_test(tc, test_stream_strerror_names_every_code);
	tcase_add_test(tc, test_stream_bad_arguments);
	tcase_add_test(tc, test_stream_zero_length_ops);
	tcase_add_test(tc, test_stream_stats_count_copies);
	tcase_add_test(tc, test_stream_no_null_pointer_arithmetic);
	tcase_add_test(tc, test_stream_huge_sizes_refused);
	tcase_add_test(tc, test_stream_refusals_say_what_was_expected);
	tcase_add_test(tc, test_stream_misuse_without_asserts);
	suite_add_tcase(s, tc);

	tc = tcase_create("round trips");
	tcase_add_test(tc, test_stream_roundtrip_boundaries);
	tcase_add_test(tc, test_stream_bytes_are_big_endian);
	tcase_add_test(tc, test_stream_straddling_puts);
	tcase_add_test(tc, test_stream_counted_string_limits);
	tcase_add_test(tc, test_stream_arrays_match_single_values);
	tcase_add_test(tc, test_stream_array_short_read);
	suite_add_tcase(s, tc);

	tc = tcase_create("reader");
	tcase_add_test(tc, test_stream_counted_string_truncated);
	tcase_add_test(tc, test_stream_short_read_is_sticky_error);
	tcase_add_test(tc, test_stream_get_buffer_exact);
	tcase_add_test(tc, test_stream_peek_and_skip);
	tcase_add_test(tc, test_stream_skip_past_end);
	tcase_add_test(tc, test_stream_empty_reader);
	suite_add_tcase(s, tc);

	tc = tcase_create("memory writer");
	tcase_add_test(tc, test_stream_writer_sticky_error);
	tcase_add_test(tc, test_stream_mem_limit_exact);
	tcase_add_test(tc, test_stream_mem_discard_windows);
	tcase_add_test(tc, test_stream_mem_growth_amortised);
	tcase_add_test(tc, test_stream_set_error_and_offsets);
	suite_add_tcase(s, tc);

	tc = tcase_create("arena");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_stream_arena_payloads_stay_put);
	tcase_add_test(tc, test_stream_arena_growing_payload);
	tcase_add_test(tc, test_stream_arena_out_of_memory);
	suite_add_tcase(s, tc);

	tc = tcase_create("feed reader");
	tcase_add_test(tc, test_stream_feed_incremental);
	tcase_add_test(tc, test_stream_feed_bounded);
	tcase_add_test(tc, test_stream_feed_reserve);
	suite_add_tcase(s, tc);

	tc = tcase_create("past 4 GiB");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_stream_offsets_past_4gib);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_stream_threads_independent);
	suite_add_tcase(s, tc);
	return s;
}

MS_TEST_MAIN(stream_suite)
