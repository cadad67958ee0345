/* opts.c: parsing of option values shared by the tools (durations, sizes, counts, lists). */
#include "opts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ev_opt_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int ev_opt_duration_ms(const char *s, int64_t default_unit_ms, int64_t *ms)
{
	static const struct {
		const char *suffix;
		int64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -1;
	int64_t unit = default_unit_ms;
	if (*end) {
		unit = 0;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strcmp(end, units[i].suffix) == 0)
				unit = units[i].ms;
		if (!unit)
			return -1;
	}
	double r = v * (double)unit;
	if (r > 9.2e18)
		return -1;
	*ms = (int64_t)(r + 0.5);
	return 0;
}

int ev_opt_size(const char *s, uint64_t *bytes)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = {{"", 1},          {"B", 1},        {"k", 1024},       {"K", 1024},
		     {"KiB", 1024},    {"KB", 1024},    {"M", 1u << 20},   {"MiB", 1u << 20},
		     {"MB", 1u << 20}, {"G", 1u << 30}, {"GiB", 1u << 30}, {"GB", 1u << 30}};
	char *end;
	errno = 0;
	if (s[0] == '-')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(end, units[i].suffix) == 0) {
			if (v > UINT64_MAX / units[i].mult)
				return -1;
			*bytes = v * units[i].mult;
			return 0;
		}
	return -1;
}

char *ev_opt_read_file(const char *path, size_t max, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
		return NULL;
	}
	char *data = malloc(max + 1);
	size_t n = data ? fread(data, 1, max + 1, f) : 0;
	int bad = !data || ferror(f);
	fclose(f);
	if (bad || n > max) {
		snprintf(err, errlen, bad ? "cannot read '%s'" : "'%s' is too large", path);
		free(data);
		return NULL;
	}
	while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r'))
		n--;
	data[n] = '\0';
	return data;
}
