/* test_fuzz_corpus.c: the fuzz harness of the line-to-verdict path over its committed corpus,
 * so that every input that once broke an invariant is checked by make check. */
#include <stdio.h>
#include <stdlib.h>

#include "../fuzz/fuzz_validate.c"
#include "test.h"

static void one_input(void *arg, char *buf, size_t n)
{
	(void)arg;
	LLVMFuzzerTestOneInput((const uint8_t *)buf, n); /* aborts when an invariant fails */
}

static void run_dir(const char *dir)
{
	int files = test_each_file(dir, one_input, NULL);
	CHECK(files > 100);
	fprintf(stderr, "fuzz corpus: %d inputs of %s hold every invariant\n", files, dir);
}

int main(void)
{
	test_current = "run_dir";
	run_dir("tests/fuzz/corpus/validate");
	return test_report();
}
