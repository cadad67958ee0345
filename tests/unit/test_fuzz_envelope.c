/* SPDX-License-Identifier: Apache-2.0 */
/* test_fuzz_envelope.c: the fuzz harness of kin -P -J's envelope reader and writer
 * (tests/fuzz/fuzz_envelope.c) over its committed corpus. */
#include "../fuzz/fuzz_envelope.c"
#include "fuzz_corpus.h"

int main(void)
{
	return fuzz_corpus_main("envelope", 20);
}
