/* SPDX-License-Identifier: MIT */
/* Placeholder: being written. */
#include "config.h"

#include "ms-test.h"

START_TEST(test_codec_placeholder)
{
	ck_assert_int_eq(ms_version(), MS_VERSION_HEX);
}
END_TEST

static Suite *codec_suite(void)
{
	Suite *s = suite_create("codec");
	TCase *tc = tcase_create("placeholder");

	tcase_add_test(tc, test_codec_placeholder);
	suite_add_tcase(s, tc);
	return s;
}

MS_TEST_MAIN(codec_suite)
