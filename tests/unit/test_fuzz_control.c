/* SPDX-License-Identifier: Apache-2.0 */
/* test_fuzz_control.c: the fuzz harness of control lines and kin's line for a payload
 * (tests/fuzz/fuzz_control.c) over its committed corpus. */
#include "../fuzz/fuzz_control.c"
#include "fuzz_corpus.h"

int main(void)
{
	return fuzz_corpus_main("control", 20);
}
