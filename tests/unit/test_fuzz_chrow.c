/* SPDX-License-Identifier: Apache-2.0 */
/* test_fuzz_chrow.c: the fuzz harness of chsink's row check against jansson
 * (tests/fuzz/fuzz_chrow.c) over its committed corpus. */
#include "../fuzz/fuzz_chrow.c"
#include "fuzz_corpus.h"

int main(void)
{
	return fuzz_corpus_main("chrow", 20);
}
