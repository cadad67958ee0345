/* SPDX-License-Identifier: Apache-2.0 */
/* opts.c: command-line options: parsing by a tool's table, its usage text, option values. */
#include "opts.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timefmt.h"

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

/* ---- Option tables ------------------------------------------------------------------------ */

/* getopt_long's value for an option without a short letter: LONG_BASE + its index. */
enum { LONG_BASE = 0x10000, HELP_COLUMN = 27 };

static int is_option(const ev_option *o)
{
	return o->kind >= EV_OPTK_FLAG;
}

static size_t count(const ev_option *opts)
{
	size_t n = 0;
	while (opts[n].kind != EV_OPTK_END)
		n++;
	return n;
}

static size_t find_long(const ev_option *opts, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (is_option(&opts[i]) && opts[i].long_name &&
		    strcmp(opts[i].long_name, name) == 0)
			return i;
	return n;
}

static const ev_option *find_short(const ev_option *opts, size_t n, int c)
{
	for (size_t i = 0; i < n; i++)
		if (is_option(&opts[i]) && opts[i].short_name == c)
			return &opts[i];
	return NULL;
}

static void store_int(void *p, size_t size, int64_t v)
{
	if (size == sizeof(int64_t)) {
		memcpy(p, &v, sizeof(v));
	} else {
		int32_t v32 = (int32_t)v;
		memcpy(p, &v32, sizeof(v32));
	}
}

static int invalid(const char *what, const char *arg, char *err, size_t errlen)
{
	snprintf(err, errlen, "invalid %s '%s'", what, arg);
	return EV_OPTS_USAGE;
}

/* Do what option o says with arg. */
static int apply(const ev_option *o, char *arg, char *err, size_t errlen)
{
	int64_t v;
	uint64_t u;
	switch (o->kind) {
	case EV_OPTK_FLAG: *(int *)o->value = (int)o->min; return 0;
	case EV_OPTK_BIT: *(int *)o->value |= (int)o->min; return 0;
	case EV_OPTK_STRING: *(const char **)o->value = arg; return 0;
	case EV_OPTK_INT:
		if (ev_opt_int(arg, o->min, o->max, &v) < 0)
			return invalid(o->what, arg, err, errlen);
		store_int(o->value, o->size, v);
		return 0;
	case EV_OPTK_SIZE:
		if (ev_opt_size(arg, &u) < 0 || u < (uint64_t)o->min || u > (uint64_t)o->max)
			return invalid(o->what, arg, err, errlen);
		*(uint64_t *)o->value = u;
		return 0;
	case EV_OPTK_DURATION:
		if (ev_opt_duration_ms(arg, o->unit, &v) < 0 || v < o->min || v > o->max)
			return invalid("duration", arg, err, errlen);
		*(int64_t *)o->value = v;
		return 0;
	case EV_OPTK_TIME:
		if (ev_time_parse(arg, &v) < 0)
			return invalid("time", arg, err, errlen);
		*(int64_t *)o->value = v;
		return 0;
	case EV_OPTK_CALLBACK: return o->fn(o, arg, err, errlen);
	case EV_OPTK_HELP: return EV_OPTS_HELP;
	default: return 0;
	}
}

int ev_opts_parse(const ev_option *opts, int argc, char **argv, char *err, size_t errlen)
{
	size_t n = count(opts), nlong = 0, nshort = 0;
	struct option *longs = calloc(n + 1, sizeof(*longs));
	char *shorts = malloc(2 * n + 1);
	int c, rc = 0;
	if (!longs || !shorts) {
		free(longs);
		free(shorts);
		snprintf(err, errlen, "out of memory");
		return EV_OPTS_USAGE;
	}
	for (size_t i = 0; i < n; i++) {
		const ev_option *o = &opts[i];
		size_t to = o->kind == EV_OPTK_ALIAS ? find_long(opts, n, o->help) : i;
		if (to == n || !is_option(&opts[to]))
			continue;
		if (o->long_name) {
			longs[nlong].name = o->long_name;
			longs[nlong].has_arg = opts[to].argh ? required_argument : no_argument;
			longs[nlong].val =
				opts[to].short_name ? opts[to].short_name : LONG_BASE + (int)to;
			nlong++;
		}
		if (o->short_name && o->kind != EV_OPTK_ALIAS) {
			shorts[nshort++] = (char)o->short_name;
			if (o->argh)
				shorts[nshort++] = ':';
		}
	}
	shorts[nshort] = '\0';
	opterr = 0;
	while (rc == 0 && (c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		const ev_option *o = c >= LONG_BASE ? &opts[c - LONG_BASE] : find_short(opts, n, c);
		rc = c == '?' || !o ? EV_OPTS_UNKNOWN : apply(o, optarg, err, errlen);
	}
	free(longs);
	free(shorts);
	return rc;
}

/* "  -s, --long ARG" and the help, its lines after the first at the help column. */
static void usage_option(ev_buf *out, const ev_option *o)
{
	size_t start = out->len;
	if (o->short_name)
		ev_buf_printf(out, "  -%c%s", o->short_name, o->long_name ? ", " : "");
	else
		ev_buf_puts(out, "      ");
	if (o->long_name)
		ev_buf_printf(out, "--%s", o->long_name);
	if (o->argh)
		ev_buf_printf(out, " %s", o->argh);
	size_t width = out->len - start;
	if (width + 2 > HELP_COLUMN && *o->help) {
		ev_buf_putc(out, '\n');
		width = 0;
	}
	for (const char *h = o->help; *h;) {
		size_t line = strcspn(h, "\n");
		ev_buf_printf(out, "%*s", (int)(HELP_COLUMN - width), "");
		ev_buf_append(out, h, line);
		ev_buf_putc(out, '\n');
		width = 0;
		h += line;
		if (*h)
			h++;
	}
	if (!*o->help)
		ev_buf_putc(out, '\n');
}

int ev_opts_usage(const ev_option *opts, ev_buf *out)
{
	for (const ev_option *o = opts; o->kind != EV_OPTK_END; o++) {
		if (o->kind == EV_OPTK_TEXT)
			ev_buf_puts(out, o->help);
		else if (o->kind != EV_OPTK_ALIAS && o->help)
			usage_option(out, o);
	}
	return ev_buf_cstr(out) ? 0 : -1;
}
