/* SPDX-License-Identifier: Apache-2.0 */
/* test_window.c: the window engine in-process: tumbling, sliding and session windows,
 * lateness and versions, spill and reload, save and restore, and the options fingerprint. */
#include <stdlib.h>
#include <unistd.h>

#include "test.h"
#include "window.h"

/* One engine over a store, with what it wrote. */
struct h {
	ev_window_opts o;
	ev_agg_spec *aggs;
	size_t naggs;
	const char *keys[1];
	ev_state *st;
	ev_wm *wm;
	ev_window *w;
	ev_buf rows; /* one line per row */
	ev_buf dead; /* "reason\n" per dead letter */
	int spills;  /* times the engine said it spills */
	char err[512];
};

static int on_row(void *arg, const char *row, size_t len)
{
	struct h *h = arg;
	int rc = ev_buf_append(&h->rows, row, len);
	rc |= ev_buf_putc(&h->rows, '\n');
	return rc;
}

static int on_dead(void *arg, const char *reason, const char *message)
{
	struct h *h = arg;
	(void)message;
	int rc = ev_buf_puts(&h->dead, reason);
	rc |= ev_buf_putc(&h->dead, '\n');
	return rc;
}

static void on_spill(void *arg, size_t bytes, size_t windows)
{
	struct h *h = arg;
	(void)bytes;
	(void)windows;
	h->spills++;
}

/* Windows of size/every/gap (ms) keyed by "k", aggregates aggs, out-of-orderness ooo, in a
 * store in dir (NULL: a private one). */
static int h_open(struct h *h, const char *dir, int64_t size, int64_t every, int64_t gap,
		  int64_t lateness, int64_t ooo, const char *aggs, size_t budget)
{
	memset(h, 0, sizeof(*h));
	if (ev_agg_parse(aggs, &h->aggs, &h->naggs, h->err, sizeof(h->err)) < 0)
		return -1;
	ev_state_opts so = {.dir = dir, .memory = 8u << 20};
	ev_wm_opts wo = {.out_of_orderness_ms = ooo};
	h->keys[0] = "k";
	h->st = ev_state_open(&so, h->err, sizeof(h->err));
	h->wm = ev_wm_new(&wo);
	h->o = (ev_window_opts){.size_ms = size,
				.every_ms = every,
				.gap_ms = gap,
				.lateness_ms = lateness,
				.ts_field = "ts",
				.keys = h->keys,
				.nkeys = 1,
				.aggs = h->aggs,
				.naggs = h->naggs,
				.mem_budget = budget,
				.wm = h->wm,
				.st = h->st,
				.row = on_row,
				.dead_letter = on_dead,
				.spilling = on_spill,
				.arg = h};
	h->w = h->st && h->wm ? ev_window_new(&h->o) : NULL;
	return h->w ? 0 : -1;
}

static void h_close(struct h *h)
{
	ev_window_free(h->w);
	if (h->st)
		CHECK(ev_state_close(h->st, h->err, sizeof(h->err)) == 0);
	ev_wm_free(h->wm);
	ev_agg_specs_free(h->aggs, h->naggs);
	ev_buf_free(&h->rows);
	ev_buf_free(&h->dead);
}

/* A record of key k (a JSON string) with value v for every aggregate's field, from
 * partition part of topic "t" (-1: without provenance). */
static int h_add_part(struct h *h, int64_t ts, const char *k, int64_t v, int64_t part)
{
	ev_buf key = EV_BUF_INIT, bufs[4] = {EV_BUF_INIT, EV_BUF_INIT, EV_BUF_INIT, EV_BUF_INIT};
	ev_agg_value values[4];
	json_t *jv = json_integer(v);
	ev_buf_printf(&key, "\"k\":\"%s\"", k);
	for (size_t i = 0; i < h->naggs && i < 4; i++)
		ev_agg_value_json(&values[i], &h->aggs[i], h->aggs[i].field ? jv : NULL, &bufs[i]);
	ev_record rec = {.ts = ts,
			 .partition = part < 0 ? 0 : ev_window_partition("t", 1, part),
			 .topic = part < 0 ? "" : "t",
			 .topic_len = part < 0 ? 0 : 1,
			 .src_partition = part,
			 .key = key.data,
			 .keylen = key.len,
			 .values = values};
	int rc = ev_window_add(h->w, &rec, 0, h->err, sizeof(h->err));
	json_decref(jv);
	ev_buf_free(&key);
	for (int i = 0; i < 4; i++)
		ev_buf_free(&bufs[i]);
	return rc;
}

static int h_add(struct h *h, int64_t ts, const char *k, int64_t v)
{
	return h_add_part(h, ts, k, v, -1);
}

static int h_end(struct h *h)
{
	ev_wm_end(h->wm);
	return ev_window_advance(h->w, EV_WM_END, h->err, sizeof(h->err));
}

#define T(s) "1970-01-01 00:00:" s
#define ROW(s, e, k, aggs, v)                                                              \
	"{\"window_start\":\"" T(s) "\",\"window_end\":\"" T(e) "\",\"k\":\"" k "\"," aggs \
								",\"version\":" v "}\n"

static void test_tumbling(void)
{
	struct h h;
	CHECK(h_open(&h, NULL, 10000, 0, 0, 0, 0, "count,sum:v", 1u << 20) == 0);
	CHECK(h_add(&h, 1000, "a", 1) == 0);
	CHECK(h_add(&h, 5000, "b", 3) == 0);
	CHECK(h_add(&h, 2000, "a", 2) == 0);
	CHECK(h.rows.len == 0);
	CHECK(h_add(&h, 12000, "a", 4) == 0); /* watermark 11999: [0, 10 s) fires */
	CHECK_STR(ev_buf_cstr(&h.rows),
		  ROW("00", "10", "a", "\"count\":2,\"sum_v\":3", "2")
			  ROW("00", "10", "b", "\"count\":1,\"sum_v\":3", "1"));
	CHECK(ev_wm_current(h.wm, 0) == 11999);
	ev_buf_reset(&h.rows);
	CHECK(h_end(&h) == 0);
	CHECK_STR(ev_buf_cstr(&h.rows), ROW("10", "20", "a", "\"count\":1,\"sum_v\":4", "1"));
	CHECK(h.dead.len == 0);
	h_close(&h);
}

static void test_sliding(void)
{
	struct h h;
	CHECK(h_open(&h, NULL, 10000, 5000, 0, 0, 100000, "count", 1u << 20) == 0);
	CHECK(h_add(&h, 7000, "a", 0) == 0);
	CHECK(h_add(&h, 12000, "a", 0) == 0);
	CHECK(h_end(&h) == 0);
	CHECK_STR(ev_buf_cstr(&h.rows),
		  ROW("00", "10", "a", "\"count\":1", "1") ROW("05", "15", "a", "\"count\":2", "2")
			  ROW("10", "20", "a", "\"count\":1", "1"));
	h_close(&h);
}

static void test_session_merge(void)
{
	struct h h;
	CHECK(h_open(&h, NULL, 0, 0, 5000, 0, 100000, "count,max:v", 1u << 20) == 0);
	CHECK(h_add(&h, 1000, "a", 1) == 0);
	CHECK(h_add(&h, 10000, "a", 2) == 0);
	CHECK(h_add(&h, 30000, "b", 9) == 0);
	CHECK(h_add(&h, 5500, "a", 3) == 0); /* bridges [1 s, 6 s) and [10 s, 15 s) */
	CHECK(h_end(&h) == 0);
	/* the version is the records folded: the merged session's is the sum of its parts' */
	CHECK_STR(ev_buf_cstr(&h.rows),
		  ROW("01", "15", "a", "\"count\":3,\"max_v\":3", "3")
			  ROW("30", "35", "b", "\"count\":1,\"max_v\":9", "1"));
	h_close(&h);

	/* Two sessions fired, then a late record bridges them: the merged row's version is
	 * higher than either part's. */
	CHECK(h_open(&h, NULL, 0, 0, 5000, 60000, 0, "count", 1u << 20) == 0);
	CHECK(h_add(&h, 1000, "a", 0) == 0);
	CHECK(h_add(&h, 2000, "a", 0) == 0);
	CHECK(h_add(&h, 10000, "a", 0) == 0);
	CHECK(h_add(&h, 30000, "b", 0) == 0); /* both sessions of a fire */
	CHECK(h_add(&h, 6500, "a", 0) == 0);  /* late: bridges [1 s, 7 s) and [10 s, 15 s) */
	CHECK_STR(ev_buf_cstr(&h.rows),
		  ROW("01", "07", "a", "\"count\":2", "2") ROW("10", "15", "a", "\"count\":1", "1")
			  ROW("01", "15", "a", "\"count\":4", "4"));
	h_close(&h);
}

static void test_lateness_versions(void)
{
	struct h h;
	CHECK(h_open(&h, NULL, 10000, 0, 0, 5000, 0, "count", 1u << 20) == 0);
	CHECK(h_add(&h, 1000, "a", 0) == 0);
	CHECK(h_add(&h, 12000, "b", 0) == 0); /* [0, 10 s) fires: version 1 */
	CHECK(h_add(&h, 3000, "a", 0) == 0);  /* late within the lateness: version 2 */
	CHECK_STR(ev_buf_cstr(&h.rows), ROW("00", "10", "a", "\"count\":1", "1")
						ROW("00", "10", "a", "\"count\":2", "2"));
	ev_buf_reset(&h.rows);
	CHECK(h_add(&h, 20000, "c", 0) == 0); /* watermark 19999: [0, 10 s) expires */
	CHECK(h_add(&h, 4000, "a", 0) == 0);  /* beyond the lateness */
	CHECK_STR(ev_buf_cstr(&h.dead), "late\n");
	CHECK(h_end(&h) == 0);
	CHECK_STR(ev_buf_cstr(&h.rows), ROW("10", "20", "b", "\"count\":1", "1")
						ROW("20", "30", "c", "\"count\":1", "1"));
	h_close(&h);
}

/* The same records with room for every window and with room for none: the same rows, the
 * second from windows spilled to the store and read back. */
static void test_spill_reload(void)
{
	struct h big, tiny;
	CHECK(h_open(&big, NULL, 10000, 0, 0, 5000, 0, "count,sum:v,uniq:v", 64u << 20) == 0);
	CHECK(h_open(&tiny, NULL, 10000, 0, 0, 5000, 0, "count,sum:v,uniq:v", 1) == 0);
	for (int i = 0; i < 300; i++) {
		char k[8];
		int64_t ts = (int64_t)i * 97 % 25000 + (i / 3) * 100;
		snprintf(k, sizeof(k), "k%d", i % 13);
		CHECK(h_add(&big, ts, k, i % 7) == 0);
		CHECK(h_add(&tiny, ts, k, i % 7) == 0);
	}
	CHECK(h_end(&big) == 0 && h_end(&tiny) == 0);
	CHECK(big.spills == 0 && tiny.spills > 10);
	CHECK(big.rows.len > 0);
	CHECK_STR(ev_buf_cstr(&tiny.rows), ev_buf_cstr(&big.rows));
	CHECK_STR(ev_buf_cstr(&tiny.dead), ev_buf_cstr(&big.dead));
	h_close(&big);
	h_close(&tiny);
}

/* Replace the stored fingerprint (as an older evwindow would have written it). */
static void put_fingerprint(const char *dir, const char *fp)
{
	char err[512];
	ev_state_opts so = {.dir = dir};
	ev_state *st = ev_state_open(&so, err, sizeof(err));
	CHECK(st != NULL);
	if (!st)
		return;
	ev_state_put(st, "mconfig", 7, fp, strlen(fp));
	CHECK(ev_state_commit(st, err, sizeof(err)) == 0);
	CHECK(ev_state_close(st, err, sizeof(err)) == 0);
}

/* Run 1 saves two open windows; run 2 continues from them and fires them with its own. */
static void save_run(const char *dir, const char *aggs)
{
	struct h h;
	CHECK(h_open(&h, dir, 10000, 0, 0, 0, 0, aggs, 1u << 20) == 0);
	CHECK(h_add(&h, 1000, "a", 1) == 0);
	CHECK(h_add(&h, 2000, "b", 2) == 0);
	CHECK(h_add(&h, 11000, "a", 3) == 0); /* [0, 10 s) fires; [10 s, 20 s) stays open */
	CHECK(h_add(&h, 12000, "b", 4) == 0);
	CHECK(ev_window_save(h.w, h.err, sizeof(h.err)) == 0);
	h_close(&h);
}

static void test_save_restore(void)
{
	char dir[] = "/tmp/evpipe-test-window-XXXXXX";
	struct h h;
	size_t n = 0;
	CHECK(mkdtemp(dir) != NULL);
	save_run(dir, "count,sum:v");
	CHECK(h_open(&h, dir, 10000, 0, 0, 0, 0, "count,sum:v", 1u << 20) == 0);
	CHECK(ev_window_restore(h.w, 0, &n, h.err, sizeof(h.err)) == 1 && n == 1);
	CHECK(ev_wm_current(h.wm, 0) == 11999);
	CHECK(h_add(&h, 13000, "a", 5) == 0);
	CHECK(h_end(&h) == 0);
	CHECK_STR(ev_buf_cstr(&h.rows),
		  ROW("10", "20", "a", "\"count\":2,\"sum_v\":8", "2")
			  ROW("10", "20", "b", "\"count\":1,\"sum_v\":4", "1"));
	h_close(&h);

	/* not saved (the run that used it died): refused */
	CHECK(h_open(&h, dir, 10000, 0, 0, 0, 0, "count,sum:v", 1u << 20) == 0);
	CHECK(ev_window_restore(h.w, 0, &n, h.err, sizeof(h.err)) == EV_WINDOW_FAILED);
	CHECK(strstr(h.err, "was not saved") != NULL);
	h_close(&h);
	ev_state_remove_dir(dir);

	/* other aggregates: refused */
	save_run(dir, "count,sum:v");
	CHECK(h_open(&h, dir, 10000, 0, 0, 0, 0, "count,min:v", 1u << 20) == 0);
	CHECK(ev_window_restore(h.w, 0, &n, h.err, sizeof(h.err)) == EV_WINDOW_FAILED);
	CHECK(strstr(h.err, "belongs to other windows or aggregates") != NULL);
	h_close(&h);
	ev_state_remove_dir(dir);
}

/* A checkpoint is the state as of the moment it was taken: what follows does not change it,
 * and a store opened on it continues from there. */
static void test_checkpoint(void)
{
	char dir[] = "/tmp/evpipe-test-window-XXXXXX", chk[64];
	struct h h;
	size_t n;
	CHECK(mkdtemp(dir) != NULL);
	snprintf(chk, sizeof(chk), "%s/chk", dir);
	CHECK(h_open(&h, NULL, 10000, 0, 0, 0, 0, "count,sum:v", 1u << 20) == 0);
	CHECK(h_add(&h, 1000, "a", 1) == 0);
	CHECK(h_add(&h, 11000, "b", 2) == 0);
	CHECK(ev_window_checkpoint(h.w, chk, h.err, sizeof(h.err)) == 0);
	CHECK(h_add(&h, 12000, "b", 5) == 0);
	CHECK(h_end(&h) == 0);
	h_close(&h);
	CHECK(h_open(&h, chk, 10000, 0, 0, 0, 0, "count,sum:v", 1u << 20) == 0);
	CHECK(ev_window_unmark_open(h.st, h.err, sizeof(h.err)) == 0);
	CHECK(ev_window_restore(h.w, 0, &n, h.err, sizeof(h.err)) == 1 && n == 1);
	CHECK(h_add(&h, 13000, "c", 7) == 0);
	CHECK(h_end(&h) == 0);
	CHECK_STR(ev_buf_cstr(&h.rows),
		  ROW("10", "20", "b", "\"count\":1,\"sum_v\":2", "1")
			  ROW("10", "20", "c", "\"count\":1,\"sum_v\":7", "1"));
	h_close(&h);
	ev_state_remove_dir(dir);
}

static void test_fingerprint(void)
{
	struct h h;
	ev_buf fp = EV_BUF_INIT;
	ev_agg_spec *s = NULL;
	size_t n = 0;
	char err[256];
	CHECK(h_open(&h, NULL, 10000, 0, 0, 0, 0, "count,sum:v,u=uniq:user,last:v", 1u << 20) == 0);
	CHECK(ev_window_fingerprint(&fp, &h.o) == 0);
	CHECK_STR(ev_buf_cstr(&fp), "ts=ts size=10000 every=0 gap=0 format=3 keys=k "
				    "aggs=count=count,sum_v=sum:v,u=uniq:user,last_v=last:v");
	CHECK(ev_window_fingerprint_aggs(fp.data, fp.len, &s, &n, err, sizeof(err)) == 0);
	CHECK(n == 4 && s[0].fn == EV_AGG_COUNT && !s[0].field && s[1].fn == EV_AGG_SUM &&
	      s[2].fn == EV_AGG_UNIQ && s[3].fn == EV_AGG_LAST);
	if (n == 4) {
		CHECK_STR(s[2].name, "u");
		CHECK_STR(s[2].field, "user");
	}
	ev_agg_specs_free(s, n);
	h_close(&h);

	/* format 1: enum numbers, read through the frozen table */
	const char v1[] = "ts=ts size=10000 every=0 gap=0 keys=k aggs=count=0:,s=1:v,m=2:v,"
			  "a=4:v,u=5:user,f=6:v,l=7:v,x=3:v";
	CHECK(ev_window_fingerprint_aggs(v1, strlen(v1), &s, &n, err, sizeof(err)) == 0);
	CHECK(n == 8 && s[0].fn == EV_AGG_COUNT && s[1].fn == EV_AGG_SUM && s[2].fn == EV_AGG_MIN &&
	      s[3].fn == EV_AGG_AVG && s[4].fn == EV_AGG_UNIQ && s[5].fn == EV_AGG_FIRST &&
	      s[6].fn == EV_AGG_LAST && s[7].fn == EV_AGG_MAX);
	ev_agg_specs_free(s, n);
	/* refused, never misread: an unknown number, a newer format, not a fingerprint */
	const char *bad[] = {"ts=ts size=1 every=0 gap=0 keys= aggs=count=9:",
			     "ts=ts size=1 every=0 gap=0 keys= aggs=sum=1:",
			     "ts=ts size=1 every=0 gap=0 format=2 keys= aggs=s=total:v",
			     "ts=ts size=1 every=0 gap=0 format=2 keys= aggs=count=count,",
			     "ts=ts size=1 every=0 gap=0 format=4 keys= aggs=count=count",
			     "x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = NULL;
		CHECK(ev_window_fingerprint_aggs(bad[i], strlen(bad[i]), &s, &n, err, sizeof(err)) <
			      0 &&
		      s == NULL);
	}
	CHECK(ev_window_fingerprint_aggs(bad[4], strlen(bad[4]), &s, &n, err, sizeof(err)) < 0 &&
	      strstr(err, "format 4, newer"));
	/* format 2: the aggregates by name, as format 3 */
	const char v2[] = "ts=ts size=1 every=0 gap=0 format=2 keys= aggs=count=count,s=sum:v";
	CHECK(ev_window_fingerprint_aggs(v2, strlen(v2), &s, &n, err, sizeof(err)) == 0 && n == 2 &&
	      s[1].fn == EV_AGG_SUM);
	ev_agg_specs_free(s, n);

	/* A state directory of format 1 or 2 (one scope for every partition, versions counting
	 * rows written) is refused with a message saying so, never misread; other options
	 * are refused as such. */
	static const char *const old[] = {
		"ts=ts size=10000 every=0 gap=0 keys=k aggs=count=0:,sum_v=1:v",
		"ts=ts size=10000 every=0 gap=0 format=2 keys=k aggs=count=count,sum_v=sum:v"};
	char dir[] = "/tmp/evpipe-test-window-XXXXXX";
	size_t count;
	CHECK(mkdtemp(dir) != NULL);
	for (int i = 0; i < 2; i++) {
		save_run(dir, "count,sum:v");
		put_fingerprint(dir, old[i]);
		CHECK(h_open(&h, dir, 10000, 0, 0, 0, 0, "count,sum:v", 1u << 20) == 0);
		CHECK(ev_window_restore(h.w, 0, &count, h.err, sizeof(h.err)) == EV_WINDOW_FAILED);
		CHECK(strstr(h.err, i ? "is of format 2, written before state was kept per Kafka "
					"partition"
				      : "is of format 1, written before") != NULL);
		h_close(&h);
		ev_state_remove_dir(dir);
	}
	save_run(dir, "count,sum:v");
	put_fingerprint(dir, "ts=ts size=10000 every=0 gap=0 format=3 keys=k aggs=count=count,"
			     "sum_v=min:v");
	CHECK(h_open(&h, dir, 10000, 0, 0, 0, 0, "count,sum:v", 1u << 20) == 0);
	CHECK(ev_window_restore(h.w, 0, &count, h.err, sizeof(h.err)) == EV_WINDOW_FAILED);
	CHECK(strstr(h.err, "belongs to other windows or aggregates") != NULL);
	h_close(&h);
	ev_state_remove_dir(dir);
	ev_buf_free(&fp);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* text's lines sorted, as one text (malloc'd). */
static char *sorted_lines(const char *text)
{
	char *copy = strdup(text), *save = NULL, *lines[4096];
	size_t n = 0;
	for (char *l = strtok_r(copy, "\n", &save); l && n < 4096; l = strtok_r(NULL, "\n", &save))
		lines[n++] = l;
	qsort(lines, n, sizeof(*lines), cmp_str);
	ev_buf out = EV_BUF_INIT;
	for (size_t i = 0; i < n; i++)
		ev_buf_printf(&out, "%s\n", lines[i]);
	free(copy);
	char *r = strdup(ev_buf_cstr(&out));
	ev_buf_free(&out);
	return r;
}

/* The i-th record of the partitioned stream: partition 1..4 in turn, each its own keys and
 * its event time increasing. */
static int part_add(struct h *h, int i)
{
	char k[16];
	int p = 1 + i % 4;
	snprintf(k, sizeof(k), "p%d-%d", p, i % 3);
	return h_add_part(h, (int64_t)(i / 4) * 700 + p * 50, k, i % 5, p);
}

/* Partition 3 of a state with partitions 1..4 saved, dropped and loaded into another engine:
 * the rows of both engines are those of one that kept every partition, and the partition's
 * watermark travels with it. Tumbling, sliding and session windows; with room for no window
 * in memory too (the store's windows; sessions stay in memory). */
static void test_partition_move(void)
{
	static const int64_t kinds[3][3] = {{10000, 0, 0}, {10000, 5000, 0}, {0, 0, 1000}};
	for (int run = 0; run < 6; run++) {
		int tiny = run % 2;
		const int64_t *kd = kinds[run / 2];
		struct h all, a, b;
		size_t budget = tiny ? 1 : 64u << 20, n = 0, loaded = 0;
		ev_buf saved = EV_BUF_INIT;
		uint64_t p3 = ev_window_partition("t", 1, 3);
		int64_t max3 = 0, got = 0;
		CHECK(h_open(&all, NULL, kd[0], kd[1], kd[2], 0, 0, "count,sum:v", 64u << 20) == 0);
		CHECK(h_open(&a, NULL, kd[0], kd[1], kd[2], 0, 0, "count,sum:v", budget) == 0);
		CHECK(h_open(&b, NULL, kd[0], kd[1], kd[2], 0, 0, "count,sum:v", budget) == 0);
		for (int i = 0; i < 200; i++)
			CHECK(part_add(&all, i) == 0 && part_add(&a, i) == 0);
		CHECK(all.rows.len > 0 && a.rows.len > 0);
		CHECK(ev_window_partition_save(a.w, p3, &saved, &n, a.err, sizeof(a.err)) == 0);
		CHECK(n > 0);
		CHECK(ev_wm_partition_get(a.wm, p3, &max3) == 1);
		CHECK(ev_window_partition_drop(a.w, p3, a.err, sizeof(a.err)) == 0);
		CHECK(ev_wm_partition_get(a.wm, p3, &got) == 0);
		/* a second save of it here is empty */
		ev_buf again = EV_BUF_INIT;
		size_t n2 = 1;
		CHECK(ev_window_partition_save(a.w, p3, &again, &n2, a.err, sizeof(a.err)) == 0 &&
		      n2 == 0);
		ev_buf_free(&again);
		CHECK(ev_window_partition_load(b.w, saved.data, saved.len, 0, &loaded, b.err,
					       sizeof(b.err)) == 0);
		CHECK(loaded == n);
		CHECK(ev_wm_partition_get(b.wm, p3, &got) == 1 && got == max3);
		/* loaded twice: refused */
		CHECK(ev_window_partition_load(b.w, saved.data, saved.len, 0, &loaded, b.err,
					       sizeof(b.err)) == EV_WINDOW_FAILED &&
		      strstr(b.err, "partition t/3 has state here already"));
		for (int i = 200; i < 400; i++) {
			CHECK(part_add(&all, i) == 0);
			CHECK(part_add(1 + i % 4 == 3 ? &b : &a, i) == 0);
		}
		CHECK(h_end(&all) == 0 && h_end(&a) == 0 && h_end(&b) == 0);
		CHECK(all.dead.len == 0 && a.dead.len == 0 && b.dead.len == 0);
		CHECK(!tiny || kd[2] || (a.spills > 0 && b.spills > 0));
		ev_buf_puts(&a.rows, ev_buf_cstr(&b.rows));
		char *want = sorted_lines(ev_buf_cstr(&all.rows)),
		     *got_rows = sorted_lines(ev_buf_cstr(&a.rows));
		CHECK_STR(got_rows, want);
		CHECK(strstr(ev_buf_cstr(&b.rows), "\"p3-") &&
		      !strstr(ev_buf_cstr(&b.rows), "\"p1-"));
		free(want);
		free(got_rows);
		/* of other options: refused */
		struct h c;
		CHECK(h_open(&c, NULL, kd[0], kd[1], kd[2], 0, 0, "count,sum:w", budget) == 0);
		CHECK(ev_window_partition_load(c.w, saved.data, saved.len, 0, &loaded, c.err,
					       sizeof(c.err)) == EV_WINDOW_FAILED &&
		      strstr(c.err, "belongs to other windows or aggregates"));
		CHECK(ev_window_partition_load(c.w, "EVWP\1", 5, 0, &loaded, c.err,
					       sizeof(c.err)) == EV_WINDOW_FAILED &&
		      strstr(c.err, "truncated"));
		h_close(&c);
		ev_buf_free(&saved);
		h_close(&all);
		h_close(&a);
		h_close(&b);
	}
}

static int crossings;
static char crossed[256];

static void on_cross(void *arg, const char *key, size_t keylen, const char *first, const char *now)
{
	(void)arg;
	crossings++;
	snprintf(crossed, sizeof(crossed), "%.*s %s %s", (int)keylen, key, first, now);
}

/* A key in two partitions is windowed in each apart (two rows for one window and key), and
 * said once; the partitions survive a save and restore, and the scan names them. */
static void test_cross_partition(void)
{
	char dir[] = "/tmp/evpipe-test-window-XXXXXX";
	struct h h;
	size_t n;
	CHECK(mkdtemp(dir) != NULL);
	CHECK(h_open(&h, dir, 10000, 0, 0, 0, 0, "count", 1u << 20) == 0);
	h.o.cross_partition = on_cross;
	ev_window_free(h.w);
	h.w = ev_window_new(&h.o);
	crossings = 0;
	CHECK(h_add_part(&h, 1000, "a", 0, 1) == 0);
	CHECK(h_add_part(&h, 2000, "a", 0, 2) == 0);
	CHECK(h_add_part(&h, 3000, "a", 0, 2) == 0);
	CHECK(h_add_part(&h, 4000, "a", 0, 1) == 0);
	CHECK(crossings == 1);
	CHECK_STR(crossed, "\"k\":\"a\" t/1 t/2");
	CHECK(ev_window_save(h.w, h.err, sizeof(h.err)) == 0);
	h_close(&h);
	CHECK(h_open(&h, dir, 10000, 0, 0, 0, 0, "count", 1u << 20) == 0);
	CHECK(ev_window_restore(h.w, 0, &n, h.err, sizeof(h.err)) == 1);
	CHECK(h_add_part(&h, 5000, "a", 0, 2) == 0);
	CHECK(h_end(&h) == 0);
	CHECK_STR(ev_buf_cstr(&h.rows), ROW("00", "10", "a", "\"count\":2", "2")
						ROW("00", "10", "a", "\"count\":3", "3"));
	CHECK(ev_window_save(h.w, h.err, sizeof(h.err)) == 0);
	h_close(&h);
	ev_state_remove_dir(dir);
}

struct scan {
	const ev_agg_spec *s;
	size_t n;
	ev_buf rows;
};

static int scan_row(void *arg, const ev_window_row *r)
{
	struct scan *sc = arg;
	int rc = ev_window_format_row(&sc->rows, r, sc->s, sc->n);
	rc |= ev_buf_putc(&sc->rows, '\n');
	return rc;
}

/* What ckpt dump reads: the stored rows and watermark, without running windows. */
static void test_scan(void)
{
	char dir[] = "/tmp/evpipe-test-window-XXXXXX", err[256];
	CHECK(mkdtemp(dir) != NULL);
	save_run(dir, "count,sum:v");
	ev_state_opts so = {.dir = dir};
	ev_state *st = ev_state_open(&so, err, sizeof(err));
	ev_buf fp = EV_BUF_INIT;
	ev_agg_spec *s = NULL;
	size_t n = 0;
	int64_t wm = 0;
	CHECK(ev_window_stored_fingerprint(st, &fp, err, sizeof(err)) == 1);
	CHECK(ev_window_fingerprint_aggs(fp.data, fp.len, &s, &n, err, sizeof(err)) == 0);
	CHECK(ev_window_stored_watermark(st, &wm, err, sizeof(err)) == 1 && wm == 11999);
	struct scan sc = {s, n, EV_BUF_INIT};
	CHECK(ev_window_scan(st, s, n, scan_row, &sc, err, sizeof(err)) == 0);
	CHECK_STR(ev_buf_cstr(&sc.rows),
		  ROW("10", "20", "a", "\"count\":1,\"sum_v\":3", "1")
			  ROW("10", "20", "b", "\"count\":1,\"sum_v\":4", "1"));
	ev_buf_free(&sc.rows);

	/* A store of format 2 (a 4-byte version, every window in scope 0) is read as such:
	 * its windows rewritten so, with versions 7. */
	ev_buf keys = EV_BUF_INIT, vals = EV_BUF_INIT;
	ev_state_iter *it = ev_state_iter_new(st, "w", 1, "x", 1);
	const void *k, *v;
	size_t klen, vlen, nw = 0;
	while (it && ev_state_iter_next(it, &k, &klen, &v, &vlen) == 1 && nw < 2) {
		unsigned char ver[4];
		ev_state_put_u32(ver, 7);
		ev_buf_append(&keys, &klen, sizeof(klen));
		ev_buf_append(&keys, k, klen);
		vlen -= 8;
		vlen += 4;
		ev_buf_append(&vals, &vlen, sizeof(vlen));
		ev_buf_append(&vals, ver, 4);
		ev_buf_append(&vals, (const char *)v + 8, vlen - 4);
		nw++;
	}
	ev_state_iter_free(it);
	CHECK(nw == 2);
	for (size_t i = 0, ko = 0, vo = 0; i < nw; i++) {
		memcpy(&klen, keys.data + ko, sizeof(klen));
		memcpy(&vlen, vals.data + vo, sizeof(vlen));
		ev_state_put(st, keys.data + ko + sizeof(klen), klen, vals.data + vo + sizeof(vlen),
			     vlen);
		ko += sizeof(klen) + klen;
		vo += sizeof(vlen) + vlen;
	}
	const char v2[] = "ts=ts size=10000 every=0 gap=0 format=2 keys=k aggs=count=count,"
			  "sum_v=sum:v";
	ev_state_put(st, "mconfig", 7, v2, strlen(v2));
	CHECK(ev_state_commit(st, err, sizeof(err)) == 0);
	struct scan sc2 = {s, n, EV_BUF_INIT};
	CHECK(ev_window_scan(st, s, n, scan_row, &sc2, err, sizeof(err)) == 0);
	CHECK_STR(ev_buf_cstr(&sc2.rows),
		  ROW("10", "20", "a", "\"count\":1,\"sum_v\":3", "7")
			  ROW("10", "20", "b", "\"count\":1,\"sum_v\":4", "7"));
	ev_buf_free(&sc2.rows);
	ev_buf_free(&keys);
	ev_buf_free(&vals);
	ev_agg_specs_free(s, n);
	ev_buf_free(&fp);
	CHECK(ev_state_close(st, err, sizeof(err)) == 0);
	ev_state_remove_dir(dir);
}

int main(void)
{
	RUN(test_partition_move);
	RUN(test_cross_partition);
	RUN(test_tumbling);
	RUN(test_sliding);
	RUN(test_session_merge);
	RUN(test_lateness_versions);
	RUN(test_spill_reload);
	RUN(test_save_restore);
	RUN(test_checkpoint);
	RUN(test_fingerprint);
	RUN(test_scan);
	return test_report();
}
