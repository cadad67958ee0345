/* SPDX-License-Identifier: Apache-2.0 */
/* test_schema_suite.c: the official JSON-Schema-Test-Suite (draft7) run in-process against schema.c. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"
#include "test.h"

#define SUITE_DIR "/usr/share/json-schema-test-suite/tests/draft7"
#define KNOWN_FAILURES "tests/fixtures/evvalidate/jsts-known-failures.txt"

/* The optional format files for the formats schema.c asserts; other optional files are skipped. */
static const char *const format_files[] = {
	"optional/format/date-time.json",    "optional/format/date.json",
	"optional/format/time.json",         "optional/format/email.json",
	"optional/format/uuid.json",         "optional/format/ipv4.json",
	"optional/format/ipv6.json",         "optional/format/hostname.json",
	"optional/format/uri.json",          "optional/format/uri-reference.json",
	"optional/format/iri.json",          "optional/format/iri-reference.json",
	"optional/format/json-pointer.json", "optional/format/relative-json-pointer.json",
	"optional/format/regex.json",
};

struct known {
	char *file, *group, *test;
	int seen;
};

static struct known *known;
static size_t n_known;
static int jsts_total, jsts_passed, jsts_known;
static int fast_parsed, fast_decided, fast_missed;
static ev_fj *fj;

/* Files whose every valid instance the fast path must decide: all but uniqueItems, which it
 * decides only over short arrays of scalars. */
static int fast_decides(const char *file)
{
	return strcmp(file, "uniqueItems.json") != 0;
}

static int load_known(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "jsts: cannot open '%s': %s\n", path, strerror(errno));
		return -1;
	}
	char line[4096];
	int lineno = 0, rc = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
		if (!t2 || strchr(t2 + 1, '\t')) {
			fprintf(stderr, "%s:%d: want file<TAB>group<TAB>test\n", path, lineno);
			rc = -1;
			continue;
		}
		*t1 = *t2 = '\0';
		struct known *k = realloc(known, (n_known + 1) * sizeof(*known));
		if (!k)
			abort();
		known = k;
		known[n_known].file = strdup(line);
		known[n_known].group = strdup(t1 + 1);
		known[n_known].test = strdup(t2 + 1);
		known[n_known].seen = 0;
		n_known++;
	}
	fclose(f);
	return rc;
}

static struct known *find_known(const char *file, const char *group, const char *test)
{
	for (size_t i = 0; i < n_known; i++)
		if (strcmp(known[i].file, file) == 0 && strcmp(known[i].group, group) == 0 &&
		    strcmp(known[i].test, test) == 0)
			return &known[i];
	return NULL;
}

/* The fast path (ev_schema_valid_fast) on data as text: 1 for valid, 0 for not decided, -1
 * when the fast parser leaves the text to jansson. */
static int fast_verdict(const ev_schema *s, const json_t *data)
{
	char *text = json_dumps(data, JSON_ENCODE_ANY | JSON_COMPACT);
	size_t n;
	const ev_fj_node *nd = text ? ev_fj_parse(fj, text, strlen(text), &n) : NULL;
	int r = nd ? ev_schema_valid_fast(s, nd, 0, NULL, 0) : -1;
	free(text);
	return r;
}

/* One test case: valid and invalid alike in the fast, the silent and the collecting mode; the
 * fast path never calls valid what is not, and decides the valid instances of fast_decides. */
static int case_passes(const ev_schema *s, const char *file, const json_t *data, int valid,
		       char *why, size_t n)
{
	ev_schema_error errs[16];
	size_t fast = ev_schema_validate(s, data, errs, 1);
	int quick = fast_verdict(s, data);
	fast_parsed += quick >= 0;
	fast_decided += quick == 1;
	if (quick == 1 && fast) {
		snprintf(why, n, "the fast path calls valid what is not: %s", errs[0].message);
		return 0;
	}
	if (quick == 0 && valid && fast_decides(file)) {
		fast_missed++;
		snprintf(why, n, "the fast path leaves a valid instance to jansson");
		return 0;
	}
	size_t silent = ev_schema_validate(s, data, NULL, 0);
	size_t all = ev_schema_validate(s, data, errs, 16);
	if ((fast == 0) != valid) {
		snprintf(why, n, "expected %s, got %s%s%s", valid ? "valid" : "invalid",
			 fast ? "invalid: " : "valid", fast ? errs[0].message : "", "");
		return 0;
	}
	if ((silent == 0) != valid || (all == 0) != valid || fast > 1 || silent > 1) {
		snprintf(why, n, "modes disagree: fast %zu, silent %zu, all %zu", fast, silent,
			 all);
		return 0;
	}
	for (size_t i = 0; i < all && i < 16; i++) {
		if (!errs[i].keyword[0] || !errs[i].message[0]) {
			snprintf(why, n, "error %zu has no keyword or message", i);
			return 0;
		}
	}
	return 1;
}

static void run_file(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	json_error_t jerr;
	json_t *groups = json_load_file(path, JSON_ALLOW_NUL, &jerr);
	if (!json_is_array(groups)) {
		fprintf(stderr, "jsts: cannot load '%s': %s\n", path, jerr.text);
		test_failed++;
		json_decref(groups);
		return;
	}
	size_t gi;
	json_t *g;
	json_array_foreach(groups, gi, g)
	{
		const char *gdesc = json_string_value(json_object_get(g, "description"));
		char err[512];
		ev_schema *s = ev_schema_compile(json_object_get(g, "schema"), err, sizeof(err));
		size_t ti;
		json_t *t;
		json_array_foreach(json_object_get(g, "tests"), ti, t)
		{
			const char *tdesc = json_string_value(json_object_get(t, "description"));
			int valid = json_is_true(json_object_get(t, "valid"));
			char why[600];
			int ok = 0;
			if (s)
				ok = case_passes(s, name, json_object_get(t, "data"), valid, why,
						 sizeof(why));
			else
				snprintf(why, sizeof(why), "schema refused: %s", err);
			struct known *k = find_known(name, gdesc ? gdesc : "", tdesc ? tdesc : "");
			jsts_total++;
			if (k) {
				k->seen = 1;
				if (ok) {
					test_failed++;
					fprintf(stderr,
						"jsts: %s | %s | %s: known failure now passes: "
						"remove it from the list\n",
						name, gdesc, tdesc);
				} else {
					jsts_known++;
				}
			} else if (ok) {
				test_passed++;
				jsts_passed++;
			} else {
				test_failed++;
				fprintf(stderr, "jsts: FAIL %s | %s | %s: %s\n", name, gdesc, tdesc,
					why);
			}
		}
		ev_schema_free(s);
	}
	json_decref(groups);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
	const char *dir = getenv("JSTS_DIR");
	const char *list = getenv("JSTS_KNOWN_FAILURES");
	if (!dir || !*dir)
		dir = SUITE_DIR;
	if (!list || !*list)
		list = KNOWN_FAILURES;
	test_current = "jsts";
	fj = ev_fj_new();
	if (!fj)
		abort();
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr,
			"jsts: cannot open the suite '%s': %s (apt-get install "
			"json-schema-test-suite, or set JSTS_DIR)\n",
			dir, strerror(errno));
		test_failed++;
		return test_report();
	}
	if (load_known(list) < 0)
		test_failed++;
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0 ||
		    strcmp(de->d_name, "refRemote.json") == 0) /* needs a server */
			continue;
		names = realloc(names, (n + 1) * sizeof(*names));
		if (!names || !(names[n++] = strdup(de->d_name)))
			abort();
	}
	closedir(d);
	if (n == 0) {
		fprintf(stderr, "jsts: no test files in '%s'\n", dir);
		test_failed++;
	}
	qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		run_file(dir, names[i]);
		free(names[i]);
	}
	free(names);
	for (size_t i = 0; i < sizeof(format_files) / sizeof(format_files[0]); i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, format_files[i]);
		FILE *f = fopen(path, "r");
		if (!f) {
			/* uuid.json came after suite 2.0.0 (Debian bookworm's package) */
			fprintf(stderr, "jsts: %s is not in this version of the suite: skipped\n",
				format_files[i]);
			continue;
		}
		fclose(f);
		run_file(dir, format_files[i]);
	}
	for (size_t i = 0; i < n_known; i++) {
		if (!known[i].seen) {
			test_failed++;
			fprintf(stderr,
				"jsts: %s | %s | %s: listed as a known failure but not in the "
				"suite\n",
				known[i].file, known[i].group, known[i].test);
		}
		free(known[i].file);
		free(known[i].group);
		free(known[i].test);
	}
	free(known);
	fprintf(stderr, "jsts: %d of %d passed, %d known failures\n", jsts_passed, jsts_total,
		jsts_known);
	fprintf(stderr,
		"jsts: fast path: %d of %d instances parsed, %d decided valid, %d valid ones "
		"left to jansson where they should not be\n",
		fast_parsed, jsts_total, fast_decided, fast_missed);
	ev_fj_free(fj);
	return test_report();
}
