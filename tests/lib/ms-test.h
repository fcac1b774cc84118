/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the Check test programs.
 */
#ifndef MS_TEST_H
#define MS_TEST_H

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <migstream/migstream.h>

/* Run one suite and turn its result into an exit status. */
#define MS_TEST_MAIN(suite_fn)                                                 \
	int main(void)                                                         \
	{                                                                      \
		SRunner *sr = srunner_create(suite_fn());                      \
		int failed;                                                    \
		srunner_run_all(sr, CK_ENV);                                   \
		failed = srunner_ntests_failed(sr);                            \
		srunner_free(sr);                                              \
		return failed ? EXIT_FAILURE : EXIT_SUCCESS;                   \
	}

/* Deterministic pseudo-random bytes (xorshift), the same on every host. */
static inline uint64_t ms_test_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

static inline void ms_test_fill(void *buf, size_t len, uint64_t seed)
{
	uint8_t *p = buf;
	uint64_t st = seed * 2654435761u + 88172645463325252ull;
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(ms_test_rand(&st) >> 24);
}

/*
 * A fixed script of mixed operations: every put type, small and large
 * buffers (copied and zero-copy), counted strings.  Writing it and reading
 * it back checks a whole stream end to end.
 */
#define MS_TEST_SCRIPT_LEN 200
#define MS_TEST_BIG	   9000

struct ms_test_script {
	uint8_t big[MS_TEST_BIG];
};

static inline void ms_test_script_init(struct ms_test_script *sc)
{
	ms_test_fill(sc->big, sizeof(sc->big), 7);
}

/* Returns the stream's error after writing the script. */
static inline int ms_test_script_write(ms_stream *s,
				       const struct ms_test_script *sc)
{
	int i;

	for (i = 0; i < MS_TEST_SCRIPT_LEN; i++) {
		switch (i % 8) {
		case 0:
			ms_put_u8(s, (uint8_t)i);
			break;
		case 1:
			ms_put_be16(s, (uint16_t)(0xfe00 + i));
			break;
		case 2:
			ms_put_be32(s, 0x80000000u + (uint32_t)i);
			break;
		case 3:
			ms_put_be64(s, 0x0102030405060708ull * (uint64_t)i);
			break;
		case 4:
			ms_put_buffer(s, sc->big, (size_t)(i * 37) % 5000);
			break;
		case 5:
			ms_put_buffer_async(s, sc->big + i,
					    4096 + (size_t)i * 13);
			break;
		case 6:
			ms_put_counted_string(s, "0000:00:01.3/piix4_pm");
			break;
		default:
			ms_put_sbe32(s, -i);
			break;
		}
	}
	return ms_stream_error(s);
}

/* Size in bytes of the script's stream. */
static inline size_t ms_test_script_size(void)
{
	size_t n = 0;
	int i;

	for (i = 0; i < MS_TEST_SCRIPT_LEN; i++) {
		switch (i % 8) {
		case 0:
			n += 1;
			break;
		case 1:
			n += 2;
			break;
		case 2:
			n += 4;
			break;
		case 3:
			n += 8;
			break;
		case 4:
			n += (size_t)(i * 37) % 5000;
			break;
		case 5:
			n += 4096 + (size_t)i * 13;
			break;
		case 6:
			n += 1 + strlen("0000:00:01.3/piix4_pm");
			break;
		default:
			n += 4;
			break;
		}
	}
	return n;
}

/* Reads the script back, checking every value with Check asserts. */
static inline void ms_test_script_read(ms_stream *s,
				       const struct ms_test_script *sc)
{
	static const size_t maxbuf = 4096 + MS_TEST_SCRIPT_LEN * 13;
	uint8_t *tmp = malloc(maxbuf);
	char str[MS_COUNTED_STRING_MAX + 1];
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	int32_t s32;
	size_t n;
	int i;

	ck_assert_ptr_nonnull(tmp);
	for (i = 0; i < MS_TEST_SCRIPT_LEN; i++) {
		switch (i % 8) {
		case 0:
			ck_assert_int_eq(ms_get_u8(s, &u8), 0);
			ck_assert_uint_eq(u8, (uint8_t)i);
			break;
		case 1:
			ck_assert_int_eq(ms_get_be16(s, &u16), 0);
			ck_assert_uint_eq(u16, (uint16_t)(0xfe00 + i));
			break;
		case 2:
			ck_assert_int_eq(ms_get_be32(s, &u32), 0);
			ck_assert_uint_eq(u32, 0x80000000u + (uint32_t)i);
			break;
		case 3:
			ck_assert_int_eq(ms_get_be64(s, &u64), 0);
			ck_assert_uint_eq(u64,
					  0x0102030405060708ull * (uint64_t)i);
			break;
		case 4:
			n = (size_t)(i * 37) % 5000;
			ck_assert_int_eq(ms_get_buffer(s, tmp, n), 0);
			ck_assert_mem_eq(tmp, sc->big, n);
			break;
		case 5:
			n = 4096 + (size_t)i * 13;
			ck_assert_int_eq(ms_get_buffer(s, tmp, n), 0);
			ck_assert_mem_eq(tmp, sc->big + i, n);
			break;
		case 6:
			ck_assert_int_eq(ms_get_counted_string(s, str),
					 (int)strlen("0000:00:01.3/piix4_pm"));
			ck_assert_str_eq(str, "0000:00:01.3/piix4_pm");
			break;
		default:
			ck_assert_int_eq(ms_get_sbe32(s, &s32), 0);
			ck_assert_int_eq(s32, -i);
			break;
		}
	}
	free(tmp);
}

/*
 * Allocator that counts live blocks and fails the Nth allocation (1-based;
 * 0 never fails).
 */
struct ms_test_alloc {
	ms_allocator a;
	long live;
	long calls;
	long fail_at;
};

static inline void *ms_test_alloc_malloc(void *opaque, size_t size)
{
	struct ms_test_alloc *t = opaque;
	void *p;

	t->calls++;
	if (t->fail_at && t->calls == t->fail_at)
		return NULL;
	p = malloc(size);
	if (p)
		t->live++;
	return p;
}

static inline void *ms_test_alloc_realloc(void *opaque, void *ptr, size_t size)
{
	struct ms_test_alloc *t = opaque;
	void *p;

	t->calls++;
	if (t->fail_at && t->calls == t->fail_at)
		return NULL;
	p = realloc(ptr, size);
	if (p && !ptr)
		t->live++;
	return p;
}

static inline void ms_test_alloc_free(void *opaque, void *ptr)
{
	struct ms_test_alloc *t = opaque;

	if (ptr)
		t->live--;
	free(ptr);
}

static inline void ms_test_alloc_init(struct ms_test_alloc *t, long fail_at)
{
	t->a.malloc = ms_test_alloc_malloc;
	t->a.realloc = ms_test_alloc_realloc;
	t->a.free = ms_test_alloc_free;
	t->a.opaque = t;
	t->live = 0;
	t->calls = 0;
	t->fail_at = fail_at;
}

/*
 * Allocator that remembers the largest single request and counts live
 * blocks, for checks that a hostile length is refused before anything of
 * its size is allocated.
 */
struct ms_test_maxalloc {
	ms_allocator a;
	size_t largest;
	long live;
};

static inline void *ms_test_maxalloc_malloc(void *opaque, size_t size)
{
	struct ms_test_maxalloc *t = opaque;
	void *p;

	if (size > t->largest)
		t->largest = size;
	p = malloc(size);
	if (p)
		t->live++;
	return p;
}

static inline void *ms_test_maxalloc_realloc(void *opaque, void *ptr,
					     size_t size)
{
	struct ms_test_maxalloc *t = opaque;
	void *p;

	if (size > t->largest)
		t->largest = size;
	p = realloc(ptr, size);
	if (p && !ptr)
		t->live++;
	return p;
}

static inline void ms_test_maxalloc_free(void *opaque, void *ptr)
{
	struct ms_test_maxalloc *t = opaque;

	if (ptr)
		t->live--;
	free(ptr);
}

static inline void ms_test_maxalloc_init(struct ms_test_maxalloc *t)
{
	t->a.malloc = ms_test_maxalloc_malloc;
	t->a.realloc = ms_test_maxalloc_realloc;
	t->a.free = ms_test_maxalloc_free;
	t->a.opaque = t;
	t->largest = 0;
	t->live = 0;
}

#endif /* MS_TEST_H */
