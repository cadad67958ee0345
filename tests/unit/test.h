/* test.h: a minimal unit-test harness; each binary ends with "N passed, N failed". */
#ifndef EV_TEST_H
#define EV_TEST_H

#include <stdio.h>
#include <string.h>

static int test_passed, test_failed;
static const char *test_current;

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (cond) {                                                                  \
			test_passed++;                                                       \
		} else {                                                                     \
			test_failed++;                                                       \
			fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, \
				test_current, #cond);                                        \
		}                                                                            \
	} while (0)

#define CHECK_STR(got, want)                                                                    \
	do {                                                                                    \
		const char *g_ = (got), *w_ = (want);                                           \
		if (g_ && w_ && strcmp(g_, w_) == 0) {                                          \
			test_passed++;                                                          \
		} else {                                                                        \
			test_failed++;                                                          \
			fprintf(stderr, "%s:%d: %s: got '%s', want '%s'\n", __FILE__, __LINE__, \
				test_current, g_ ? g_ : "(null)", w_ ? w_ : "(null)");          \
		}                                                                               \
	} while (0)

#define RUN(fn)                     \
	do {                        \
		test_current = #fn; \
		fn();               \
	} while (0)

static inline int test_report(void)
{
	printf("%d passed, %d failed\n", test_passed, test_failed);
	return test_failed ? 1 : 0;
}

#endif
