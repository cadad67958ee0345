/* SPDX-License-Identifier: Apache-2.0 */
/* test_fuzz_record.c: the fuzz harness of evwindow's record reader, fast and reference paths
 * (tests/fuzz/fuzz_record.c) over its committed corpus. */
#include "../fuzz/fuzz_record.c"
#include "fuzz_corpus.h"

int main(void)
{
	return fuzz_corpus_main("record", 20);
}
