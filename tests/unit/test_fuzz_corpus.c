/* test_fuzz_corpus.c: the fuzz harness of the line-to-verdict path over its committed corpus,
 * so that every input that once broke an invariant is checked by make check. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "../fuzz/fuzz_validate.c"
#include "test.h"

static void run_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int files = 0;
	CHECK(d != NULL);
	while (d && (e = readdir(d)) != NULL) {
		char path[4096];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		FILE *f = fopen(path, "rb");
		if (!f)
			continue;
		static uint8_t buf[1 << 16];
		size_t n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, n); /* aborts when an invariant fails */
		files++;
	}
	if (d)
		closedir(d);
	CHECK(files > 100);
	fprintf(stderr, "fuzz corpus: %d inputs of %s hold every invariant\n", files, dir);
}

int main(void)
{
	test_current = "run_dir";
	run_dir("tests/fuzz/corpus/validate");
	return test_report();
}
