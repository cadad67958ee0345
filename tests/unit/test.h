/* SPDX-License-Identifier: Apache-2.0 */
/* test.h: a minimal unit-test harness; each binary ends with "N passed, N failed". */
#ifndef EV_TEST_H
#define EV_TEST_H

#include <dirent.h>
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

/* Call fn with the bytes of each file of dir (up to 64 KiB of each; the buffer is reused).
 * Returns the number of files read. */
static inline int test_each_file(const char *dir, void (*fn)(void *arg, char *buf, size_t n),
				 void *arg)
{
	static char buf[1 << 16];
	DIR *d = opendir(dir);
	struct dirent *e;
	int files = 0;
	while (d && (e = readdir(d)) != NULL) {
		char path[4096];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		FILE *f = fopen(path, "rb");
		if (!f)
			continue;
		size_t n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		fn(arg, buf, n);
		files++;
	}
	if (d)
		closedir(d);
	return files;
}

static inline int test_report(void)
{
	printf("%d passed, %d failed\n", test_passed, test_failed);
	return test_failed ? 1 : 0;
}

#endif
