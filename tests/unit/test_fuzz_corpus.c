/* SPDX-License-Identifier: Apache-2.0 */
/* test_fuzz_corpus.c: the fuzz harness of the line-to-verdict path over its committed corpus,
 * so that every input that once broke an invariant is checked by make check. */
#include "../fuzz/fuzz_validate.c"
#include "fuzz_corpus.h"

int main(void)
{
	return fuzz_corpus_main("validate", 100);
}
