/* SPDX-License-Identifier: MIT */
/* Placeholder: the benchmark cases are being written. */
int main(void)
{
	return 0;
}
