#include "config.h"
#include "ms-test.h"
START_TEST(test_placeholder)
{
	ck_assert(1);
}
END_TEST
static Suite *x_suite(void)
{
	Suite *s = suite_create("x");
	TCase *tc = tcase_create("x");
	tcase_add_test(tc, test_placeholder);
	suite_add_tcase(s, tc);
	return s;
}
MS_TEST_MAIN(x_suite)
