/* SPDX-License-Identifier: MIT */
/* Placeholder: being written. */
#include "config.h"

#include "ms-test.h"

START_TEST(test_vfio_user_placeholder)
{
	ck_assert_int_eq(ms_version(), MS_VERSION_HEX);
}
END_TEST

static Suite *vfio_user_suite(void)
{
	Suite *s = suite_create("vfio_user");
	TCase *tc = tcase_create("placeholder");

	tcase_add_test(tc, test_vfio_user_placeholder);
	suite_add_tcase(s, tc);
	return s;
}

MS_TEST_MAIN(vfio_user_suite)
