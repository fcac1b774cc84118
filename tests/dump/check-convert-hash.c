/* SPDX-License-Identifier: MIT */
/*
 * The record summaries of migstream-dump convert (tools/dump-convert.c,
 * included here for its static functions): SipHash-2-4 against the
 * reference vectors of its paper (key 00..0f, messages 00..(n-1)), fed
 * whole and in every split into two pieces and byte by byte, as the
 * walker's chunks come.  Exits 1 on a mismatch.
 */
#include "config.h"

#include "../tools/dump-convert.c"

/* SipHash-2-4 of 00 01 .. (n-1) under the key 00 .. 0f (the paper's
 * Appendix A, and its reference implementation's vectors). */
static const struct {
	size_t n;
	uint64_t want;
} vectors[] = {
	{0, UINT64_C(0x726fdb47dd0e0e31)},
	{15, UINT64_C(0xa129ca6149be45e5)},
	{63, UINT64_C(0x958a324ceb064572)},
};

int main(void)
{
	uint8_t key[16], msg[64];
	uint64_t k[2], got;
	struct sip h;
	size_t v, cut, i;
	int fail = 0;

	for (i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)i;
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)i;
	k[0] = le64(key);
	k[1] = le64(key + 8);
	for (v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
		for (cut = 0; cut <= vectors[v].n; cut++) {
			sip_init(&h, k);
			sip_update(&h, msg, cut);
			sip_update(&h, msg + cut, vectors[v].n - cut);
			got = sip_final(&h);
			if (got != vectors[v].want) {
				printf("FAIL: %zu bytes cut at %zu: %016llx, "
				       "%016llx expected\n",
				       vectors[v].n, cut,
				       (unsigned long long)got,
				       (unsigned long long)vectors[v].want);
				fail = 1;
			}
		}
		sip_init(&h, k);
		for (i = 0; i < vectors[v].n; i++)
			sip_update(&h, msg + i, 1);
		if (sip_final(&h) != vectors[v].want) {
			printf("FAIL: %zu bytes one by one\n", vectors[v].n);
			fail = 1;
		}
	}
	if (!fail)
		printf("ok: SipHash-2-4 vectors, whole and in pieces\n");
	return fail;
}
