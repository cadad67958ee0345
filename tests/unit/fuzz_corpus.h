/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_corpus.h: run a libFuzzer harness (tests/fuzz/fuzz_NAME.c, included before this header)
 * over its committed corpus tests/fuzz/corpus/NAME, so that make check checks every input that
 * once broke an invariant. The harness aborts when one fails. */
#ifndef EV_FUZZ_CORPUS_H
#define EV_FUZZ_CORPUS_H

#include <stdint.h>
#include <stdio.h>

#include "test.h"

static inline void fuzz_corpus_one(void *arg, char *buf, size_t n)
{
	(*(int *)arg)++;
	LLVMFuzzerTestOneInput((const uint8_t *)buf, n); /* aborts when an invariant fails */
}

/* Replay tests/fuzz/corpus/name, which must hold at least min_files inputs. */
static inline int fuzz_corpus_main(const char *name, int min_files)
{
	char dir[256];
	int done = 0;
	snprintf(dir, sizeof(dir), "tests/fuzz/corpus/%s", name);
	test_current = name;
	int files = test_each_file(dir, fuzz_corpus_one, &done);
	CHECK(files >= min_files);
	CHECK(done == files);
	fprintf(stderr, "fuzz corpus: %d inputs of %s hold every invariant\n", files, dir);
	return test_report();
}

#endif
