/* SPDX-License-Identifier: Apache-2.0 */
/* evgen: deterministic synthetic events for tests, demos and benchmarks. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "ndjson.h"
#include "opts.h"
#include "rng.h"
#include "timefmt.h"
#include "tool.h"

static const char *const default_types[] = {"page_view", "click", "add_to_cart", "purchase"};

/* The contract's event time range: 2000-01-01 to before 2100-01-01 (UTC). */
#define TS_MIN INT64_C(946684800000)
#define TS_MAX INT64_C(4102444800000)
#define MAX_TYPES 10000
#define MAX_TYPE_NAME 64

enum kind { NORMAL, INVALID, LATE };
enum breakage {
	TRUNCATED,
	MISSING_FIELD,
	BAD_TYPE,
	NEGATIVE_VALUE,
	UNKNOWN_FIELD,
	BAD_TS,
	VALUE_STRING,
	BREAKAGES
};

struct evgen {
	uint64_t count, seed;
	uint64_t rate_milli; /* events per 1000 s of event time */
	int64_t start, out_of_order, late_by;
	uint64_t users;
	double invalid_pct, late_pct;
	char **types;
	size_t *type_len;
	size_t ntypes;
	ev_tool_common common;

	ev_writer *out;
	ev_metrics *metrics;
	ev_counter *m_out, *m_invalid, *m_late, *m_blocked;
	uint64_t written, invalid, late;
};

/* ---- formatting, by hand: snprintf would be most of the time per event ---------------- */

static char *put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}
#define PUT(p, lit) put((p), (lit), sizeof(lit) - 1)

/* v in decimal, zero-padded to at least width digits. */
static char *put_u64(char *p, uint64_t v, int width)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n < width)
		tmp[n++] = '0';
	while (n)
		*p++ = tmp[--n];
	return p;
}

static char *put_i64(char *p, int64_t v)
{
	if (v < 0) {
		*p++ = '-';
		return put_u64(p, (uint64_t)0 - (uint64_t)v, 1);
	}
	return put_u64(p, (uint64_t)v, 1);
}

static char *put_hex64(char *p, uint64_t v)
{
	static const char hex[] = "0123456789abcdef";
	for (int shift = 60; shift >= 0; shift -= 4)
		*p++ = hex[(v >> shift) & 15];
	return p;
}

/* cents as a decimal number with two places: 1234 -> 12.34, -5 -> -0.05. */
static char *put_cents(char *p, int64_t cents)
{
	if (cents < 0) {
		*p++ = '-';
		cents = -cents;
	}
	p = put_u64(p, (uint64_t)cents / 100, 1);
	*p++ = '.';
	return put_u64(p, (uint64_t)cents % 100, 2);
}

/* ---- one event ------------------------------------------------------------------------ */

struct event {
	uint64_t i, user;
	size_t type;
	int64_t ts;
	int64_t cents;
	uint64_t session;
	int broken;  /* BREAKAGES when valid */
	int missing; /* with MISSING_FIELD: 0 event_id, 1 event_type, 2 user_id, 3 ts */
};

/* The event as a line into buf (at least 256 + MAX_TYPE_NAME bytes); returns its length.
 * Every field is written after a comma, and the first comma then becomes the brace. */
static size_t format_event(const struct evgen *g, const struct event *e, char *buf)
{
	char *p = buf + 1;
	if (!(e->broken == MISSING_FIELD && e->missing == 0)) {
		p = PUT(p, ",\"event_id\":\"e");
		p = put_u64(p, e->i, 12);
		*p++ = '"';
	}
	if (!(e->broken == MISSING_FIELD && e->missing == 1)) {
		p = PUT(p, ",\"event_type\":\"");
		if (e->broken == BAD_TYPE)
			p = PUT(p, "scroll");
		else
			p = put(p, g->types[e->type], g->type_len[e->type]);
		*p++ = '"';
	}
	if (!(e->broken == MISSING_FIELD && e->missing == 2)) {
		p = PUT(p, ",\"user_id\":\"user_");
		p = put_u64(p, e->user, 6);
		*p++ = '"';
	}
	if (e->broken == BAD_TS) {
		p = PUT(p, ",\"ts\":\"yesterday\"");
	} else if (!(e->broken == MISSING_FIELD && e->missing == 3)) {
		p = PUT(p, ",\"ts\":");
		p = put_i64(p, e->ts);
	}
	p = PUT(p, ",\"value\":");
	if (e->broken == VALUE_STRING)
		*p++ = '"';
	p = put_cents(p, e->broken == NEGATIVE_VALUE ? -(e->cents + 1) : e->cents);
	if (e->broken == VALUE_STRING)
		*p++ = '"';
	p = PUT(p, ",\"session_id\":\"s");
	p = put_hex64(p, e->session);
	*p++ = '"';
	if (e->broken == UNKNOWN_FIELD)
		p = PUT(p, ",\"debug\":true");
	*p++ = '}';
	buf[1] = '{';
	size_t len = (size_t)(p - (buf + 1));
	memmove(buf, buf + 1, len);
	if (e->broken == TRUNCATED)
		len -= 9; /* the end of session_id and the brace: never valid JSON */
	return len;
}

/* A user's session id: the same for the user's events within one half hour. */
static uint64_t session_of(uint64_t seed, uint64_t user, int64_t ts)
{
	uint64_t x = seed ^ (user * UINT64_C(0x9e3779b97f4a7c15)) ^
		     ((uint64_t)(ts / 1800000) * UINT64_C(0xc2b2ae3d27d4eb4f));
	return ev_splitmix64(&x);
}

static void update_metrics(struct evgen *g)
{
	ev_counter_set(g->m_out, g->written);
	ev_counter_set(g->m_invalid, g->invalid);
	ev_counter_set(g->m_late, g->late);
	ev_counter_set(g->m_blocked, ev_writer_blocked_ns(g->out));
}

static int run(struct evgen *g)
{
	ev_rng rng;
	ev_rng_seed(&rng, g->seed);
	const uint64_t t_invalid = ev_rng_threshold(g->invalid_pct / 100);
	const uint64_t t_late = ev_rng_threshold((g->invalid_pct + g->late_pct) / 100);
	int64_t max_ts = INT64_MIN; /* the latest event time of a valid event so far */
	char buf[512];

	for (uint64_t i = 0; i < g->count; i++) {
		if ((i & 1023) == 0) {
			if (ev_tool_stop_requested()) {
				ev_info("stopping on signal %d", ev_tool_stop_requested());
				break;
			}
			update_metrics(g);
		}
		/* The same draws in the same order for every event, then those of its kind. */
		struct event e;
		uint64_t u = ev_rng_next(&rng) >> 11;
		enum kind kind = u < t_invalid ? INVALID : u < t_late ? LATE : NORMAL;
		e.i = i;
		e.type = (size_t)ev_rng_below(&rng, g->ntypes);
		e.user = ev_rng_below(&rng, g->users);
		e.cents = (int64_t)ev_rng_below(&rng, 10000);
		int64_t jitter = (int64_t)ev_rng_below(&rng, (uint64_t)g->out_of_order + 1);
		int64_t base = g->start + (int64_t)((unsigned __int128)i * 1000000 / g->rate_milli);
		e.ts = base - jitter;
		e.broken = BREAKAGES;
		e.missing = -1;
		if (kind == INVALID) {
			e.broken = (int)ev_rng_below(&rng, BREAKAGES);
			e.missing = (int)ev_rng_below(&rng, 4);
			g->invalid++;
		} else if (kind == LATE && max_ts != INT64_MIN) {
			e.ts = max_ts - g->late_by -
			       (int64_t)ev_rng_below(&rng, (uint64_t)g->late_by / 2 + 1);
			g->late++;
		} else if (e.ts > max_ts) {
			max_ts = e.ts;
		}
		e.session = session_of(g->seed, e.user, base);
		size_t len = format_event(g, &e, buf);
		if (ev_writer_line(g->out, buf, len) < 0)
			goto write_error;
		g->written++;
	}
	if (ev_writer_flush(g->out) < 0)
		goto write_error;
	update_metrics(g);
	ev_info("%" PRIu64 " event(s): %" PRIu64 " invalid, %" PRIu64 " late", g->written,
		g->invalid, g->late);
	return EV_EXIT_OK;
write_error:
	if (errno != EPIPE)
		ev_error("cannot write standard output: %s", strerror(errno));
	return EV_EXIT_FAILURE;
}

/* ---- options -------------------------------------------------------------------------- */

/* "1000", "0.5", "2.125": events per second, kept in thousandths. */
static int parse_rate(const char *s, uint64_t *milli)
{
	uint64_t whole = 0, frac = 0;
	int digits = 0, frac_digits = 0;
	const char *p = s;
	for (; *p >= '0' && *p <= '9'; p++, digits++)
		if ((whole = whole * 10 + (uint64_t)(*p - '0')) > UINT64_C(1000000000))
			return -1;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, frac_digits++) {
			if (frac_digits < 3)
				frac = frac * 10 + (uint64_t)(*p - '0');
			else if (*p != '0')
				return -1; /* finer than a thousandth */
		}
	}
	for (int k = frac_digits; k < 3; k++)
		frac *= 10;
	if (*p || digits == 0)
		return -1;
	*milli = whole * 1000 + frac;
	return *milli > 0 ? 0 : -1;
}

static int parse_pct(const char *s, double *pct)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0 && v <= 100))
		return -1;
	*pct = v;
	return 0;
}

static int valid_type_name(const char *s, size_t n)
{
	if (n == 0 || n > MAX_TYPE_NAME)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.'))
			return 0;
	return 1;
}

static void free_types(struct evgen *g)
{
	for (size_t i = 0; i < g->ntypes; i++)
		free(g->types[i]);
	free(g->types);
	free(g->type_len);
	g->types = NULL;
	g->type_len = NULL;
	g->ntypes = 0;
}

static int add_type(struct evgen *g, const char *name, size_t n)
{
	char **types = realloc(g->types, (g->ntypes + 1) * sizeof(*types));
	if (types)
		g->types = types;
	size_t *lens = realloc(g->type_len, (g->ntypes + 1) * sizeof(*lens));
	if (lens)
		g->type_len = lens;
	char *copy = strndup(name, n);
	if (!types || !lens || !copy) {
		free(copy);
		return -1;
	}
	g->types[g->ntypes] = copy;
	g->type_len[g->ntypes++] = n;
	return 0;
}

/* A count of types (the default names, then type_5, ...) or a comma-separated list. */
static int parse_types(struct evgen *g, const char *s)
{
	int64_t n;
	free_types(g);
	if (ev_opt_int(s, 1, MAX_TYPES, &n) == 0) {
		for (int64_t i = 0; i < n; i++) {
			char name[32];
			if (i < 4)
				snprintf(name, sizeof(name), "%s", default_types[i]);
			else
				snprintf(name, sizeof(name), "type_%" PRId64, i + 1);
			if (add_type(g, name, strlen(name)) < 0)
				return -1;
		}
		return 0;
	}
	for (const char *p = s;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (!valid_type_name(p, len) || g->ntypes >= MAX_TYPES)
			return ev_tool_usage_error("invalid --event-types '%s': give a count or "
						   "names of [A-Za-z0-9_.-], comma-separated",
						   s);
		if (add_type(g, p, len) < 0)
			return -1;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

static int opt_seed(const ev_option *o, char *arg, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	*(uint64_t *)o->value = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-') {
		snprintf(err, errlen, "invalid seed '%s'", arg);
		return -1;
	}
	return 0;
}

static int opt_rate(const ev_option *o, char *arg, char *err, size_t errlen)
{
	if (parse_rate(arg, o->value) < 0) {
		snprintf(err, errlen, "invalid rate '%s'", arg);
		return -1;
	}
	return 0;
}

static int opt_pct(const ev_option *o, char *arg, char *err, size_t errlen)
{
	if (parse_pct(arg, o->value) < 0) {
		snprintf(err, errlen, "invalid percentage '%s'", arg);
		return -1;
	}
	return 0;
}

static int opt_types(const ev_option *o, char *arg, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	int rc = parse_types(o->value, arg);
	return rc > 0 ? rc : rc < 0 ? EV_EXIT_FAILURE : 0;
}

static int parse_args(struct evgen *g, int argc, char **argv)
{
	const ev_option options[] = {
		EV_OPT_TEXT(
			"usage: evgen [--count N] [--seed S] [options] > events\n"
			"\n"
			"Writes N synthetic events, one JSON object per line, that meet the default contract\n"
			"(contracts/event.schema.json):\n"
			"  {\"event_id\":\"e000000000042\",\"event_type\":\"click\",\"user_id\":\"user_001234\",\n"
			"   \"ts\":1732406400042,\"value\":12.34,\"session_id\":\"s3c9f1e0b7a2d4c85\"}\n"
			"The same options and seed give the same bytes on every machine (xoshiro256** seeded\n"
			"by splitmix64). Event time starts at --start and advances by 1/--rate s per event;\n"
			"each event is shifted back by up to --out-of-order. Of the events, --invalid-pct\n"
			"percent break the contract in assorted ways (truncated JSON, a required field\n"
			"missing, an unknown event_type, a negative value, an unknown field, a ts that is not\n"
			"a time, a value that is a string) and --late-pct percent are late: --late-by to 1.5\n"
			"times --late-by behind the latest event time so far, beyond a 30 s lateness with 5 s\n"
			"of out-of-orderness for windows up to 85 s with the default. The counts of invalid\n"
			"and late events are reported on stderr at the end.\n"
			"\n"
			"Options:\n"),
		EV_OPT_INT('n', "count", "N", &g->count, 0, INT64_C(1000000000000), "count",
			   "events to write (default 1000)"),
		EV_OPT_CALLBACK('s', "seed", "S", &g->seed, opt_seed,
				"seed, 0 to 2^64-1 (default 1)"),
		EV_OPT_CALLBACK(0, "rate", "R", &g->rate_milli, opt_rate,
				"events per second of event time, up to 3 decimals\n"
				"(default 1000)"),
		EV_OPT_TIME(0, "start", "TIME", &g->start,
			    "event time of the first event: RFC 3339 or epoch ms\n"
			    "(default 2024-11-24T00:00:00Z)"),
		EV_OPT_CALLBACK(0, "event-types", "N|LIST", g, opt_types,
				"the first N of page_view,click,add_to_cart,purchase (more\n"
				"than 4: type_5, ... which the default contract refuses),\n"
				"or a comma-separated list of names (default 4)"),
		EV_OPT_INT(0, "users", "N", &g->users, 1, INT64_C(1000000000000), "user count",
			   "distinct user ids (default 10000)"),
		EV_OPT_CALLBACK(0, "invalid-pct", "P", &g->invalid_pct, opt_pct,
				"percent of events that break the contract (default 0)"),
		EV_OPT_CALLBACK(0, "late-pct", "P", &g->late_pct, opt_pct,
				"percent of events that are late (default 0)"),
		EV_OPT_DURATION(0, "late-by", "D", &g->late_by, 1, 1, INT64_C(86400000) * 365,
				"how far behind a late event is at least (default 2m)"),
		EV_OPT_DURATION(0, "out-of-order", "D", &g->out_of_order, 1, 0,
				INT64_C(86400000) * 365,
				"shift each event back by up to D (bare number: ms;\n"
				"default 0, in order)"),
		EV_OPTS_PROGRESS(),
		EV_OPTS_COMMON(&g->common),
		EV_OPT_TEXT(
			"\n"
			"Exit status: 0 ok (also when stopped by SIGTERM or SIGINT, after writing what was\n"
			"generated), 1 runtime failure (I/O), 2 usage error.\n"),
		EV_OPT_END(),
	};
	int rc = ev_tool_parse(options, argc, argv);
	if (rc != 0)
		return rc;
	if (optind < argc)
		return ev_tool_usage_error("unexpected argument '%s'", argv[optind]);
	if (g->invalid_pct + g->late_pct > 100)
		return ev_tool_usage_error("--invalid-pct and --late-pct add up to more than 100");
	/* Every event time, late ones included, within the contract's range. */
	int64_t span = (int64_t)((unsigned __int128)g->count * 1000000 / g->rate_milli);
	if (g->start - g->out_of_order - g->late_by * 2 < TS_MIN || g->start + span >= TS_MAX)
		return ev_tool_usage_error("the event times would leave the contract's range "
					   "(2000-01-01 to 2100-01-01): check --start, --count "
					   "and --rate");
	return 0;
}

int main(int argc, char **argv)
{
	struct evgen g;
	memset(&g, 0, sizeof(g));
	g.count = 1000;
	g.seed = 1;
	g.rate_milli = 1000000;
	g.start = INT64_C(1732406400000); /* 2024-11-24T00:00:00Z */
	g.users = 10000;
	g.late_by = 120000;
	g.common.job = "evpipe";

	ev_tool_init("evgen");
	int rc = parse_args(&g, argc, argv);
	if (rc == 0 && g.ntypes == 0 && parse_types(&g, "4") != 0)
		rc = EV_EXIT_FAILURE;
	if (rc != 0) {
		free_types(&g);
		if (rc == EV_EXIT_FAILURE)
			ev_error("out of memory");
		return rc < 0 ? ev_tool_finish(EV_EXIT_OK) : rc;
	}
	g.metrics = ev_tool_metrics("evgen", g.common.job, g.common.metrics_addr);
	g.out = ev_writer_new(1, 1 << 20);
	if (!g.metrics || !g.out) {
		rc = EV_EXIT_FAILURE;
	} else {
		g.m_out = ev_tool_records_out(g.metrics);
		g.m_invalid = ev_metrics_counter(g.metrics, "evpipe_generated_total",
						 "Events generated, by kind", "kind=\"invalid\"");
		g.m_late = ev_metrics_counter(g.metrics, "evpipe_generated_total",
					      "Events generated, by kind", "kind=\"late\"");
		g.m_blocked = ev_tool_blocked(g.metrics, "stdout");
		ev_tool_catch_signals();
		ev_tool_progress(g.metrics);
		rc = run(&g);
	}
	ev_writer_free(g.out);
	ev_tool_metrics_free(g.metrics);
	free_types(&g);
	return ev_tool_finish(rc);
}
