/* SPDX-License-Identifier: MIT */
/* Placeholder: being written. */
#include "config.h"

#include "ms-test.h"

START_TEST(test_qemu_samples_placeholder)
{
	ck_assert_int_eq(ms_version(), MS_VERSION_HEX);
}
END_TEST

static Suite *qemu_samples_suite(void)
{
	Suite *s = suite_create("qemu_samples");
	TCase *tc = tcase_create("placeholder");

	tcase_add_test(tc, test_qemu_samples_placeholder);
	suite_add_tcase(s, tc);
	return s;
}

MS_TEST_MAIN(qemu_samples_suite)
