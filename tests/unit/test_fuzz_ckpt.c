/* SPDX-License-Identifier: Apache-2.0 */
/* test_fuzz_ckpt.c: the fuzz harness of checkpoint manifests from a hostile store
 * (tests/fuzz/fuzz_ckpt.c) over its committed corpus. */
#include "../fuzz/fuzz_ckpt.c"
#include "fuzz_corpus.h"

int main(void)
{
	return fuzz_corpus_main("ckpt", 20);
}
