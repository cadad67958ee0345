/* SPDX-License-Identifier: Apache-2.0 */
/* test_progress.c: the status line's text from two samples of a registry; a scraped page. */
#include <string.h>

#include "metrics.h"
#include "progress.h"
#include "scrape.h"
#include "test.h"

static void test_format(void)
{
	char buf[256];
	ev_progress_sample a = {.in = 1000,
				.out = 900,
				.dead = 10,
				.late = 0,
				.blocked = 0.1,
				.has_in = 1,
				.has_dead = 1,
				.has_late = 1,
				.has_wm = 1,
				.ns = 1000000000u};
	ev_progress_sample b = a;
	b.in = 53100;
	b.out = 52000;
	b.dead = 12;
	b.wm_lag = 5.04;
	b.blocked = 0.35;
	b.ns = 2000000000u;
	ev_progress_format(buf, sizeof(buf), 0, &a, &b);
	CHECK_STR(buf,
		  "in 52.1k/s | out 51.1k/s | dead 2/s | late 0/s | wm lag 5.0s | blocked 25% | "
		  "53.1k in, 52.0k out");
	ev_progress_format(buf, sizeof(buf), 20, &a, &b);
	CHECK_STR(buf, "in 52.1k/s | out 51.");
	/* a tool without inputs, dead letters or windows (evgen); a lag of days */
	b.has_in = b.has_dead = b.has_late = 0;
	b.wm_lag = 86400 * 3;
	ev_progress_format(buf, sizeof(buf), 0, &a, &b);
	CHECK_STR(buf, "out 51.1k/s | wm lag 3d | blocked 25% | 52.0k out");
}

static void test_sample(void)
{
	ev_metrics *m = ev_metrics_new("t", "j");
	ev_progress_sample s;
	ev_counter_add(ev_metrics_counter(m, "evpipe_records_in_total", "", NULL), 7);
	ev_counter_add(ev_metrics_counter(m, "evpipe_dead_letters_total", "", "reason=\"a\""), 2);
	ev_counter_add(ev_metrics_counter(m, "evpipe_dead_letters_total", "", "reason=\"b\""), 3);
	ev_counter_add(ev_metrics_counter(m, "evpipe_late_records_total", "",
					  "outcome=\"updated\""),
		       5);
	ev_counter_add(ev_metrics_counter_seconds(m, "evpipe_output_blocked_seconds_total", "",
						  "output=\"stdout\""),
		       1500000000u);
	ev_progress_sample_take(m, &s);
	CHECK(s.has_in && s.in == 7);
	CHECK(s.has_dead && s.dead == 5);
	CHECK(!s.has_late && s.late == 0); /* updates within the lateness are not late records */
	CHECK(s.blocked == 1.5);
	CHECK(!s.has_wm);
	ev_metrics_free(m);
}

static int text_sum(void *arg, const char *name, const char *labels, double *sum)
{
	return ev_scrape_sum(arg, strlen(arg), name, labels, sum);
}

/* What evtop reads: the same sample from the page the registry renders. */
static void test_scrape(void)
{
	ev_metrics *m = ev_metrics_new("evwindow", "j");
	ev_buf page = EV_BUF_INIT;
	ev_progress_sample a, b;
	double sum;
	char out[64], err[128];
	ev_counter_add(ev_metrics_counter(m, "evpipe_records_in_total", "", NULL), 12);
	ev_counter_add(ev_metrics_counter(m, "evpipe_late_records_total", "",
					  "outcome=\"dead_lettered\""),
		       3);
	ev_counter_add(ev_metrics_counter(m, "evpipe_late_records_total", "",
					  "outcome=\"updated\""),
		       4);
	ev_gauge_set(ev_metrics_gauge(m, "evpipe_watermark_lag_seconds", "", NULL), 2.5);
	CHECK(ev_metrics_render(m, &page) == 0);
	ev_progress_sample_take(m, &a);
	ev_progress_sample_from(text_sum, (void *)ev_buf_cstr(&page), &b);
	CHECK(b.has_in && b.in == a.in && b.has_late && b.late == 3 && b.has_wm &&
	      b.wm_lag == 2.5 && !b.has_dead);
	CHECK(ev_scrape_sum(page.data, page.len, "evpipe_late_records_total", NULL, &sum) == 2 &&
	      sum == 7);
	CHECK(ev_scrape_sum(page.data, page.len, "evpipe_late_records", NULL, &sum) == 0);
	CHECK(ev_scrape_label(page.data, page.len, "evpipe_records_in_total", "tool", out,
			      sizeof(out)) == 0);
	CHECK_STR(out, "evwindow");
	CHECK(ev_scrape_label(page.data, page.len, "evpipe_nothing", "tool", out, sizeof(out)) < 0);
	CHECK(ev_scrape_url("9100", out, sizeof(out), err, sizeof(err)) == 0);
	CHECK_STR(out, "http://127.0.0.1:9100/metrics");
	CHECK(ev_scrape_url("host:9100", out, sizeof(out), err, sizeof(err)) == 0);
	CHECK_STR(out, "http://host:9100/metrics");
	CHECK(ev_scrape_url("http://h:1/m", out, sizeof(out), err, sizeof(err)) == 0);
	CHECK_STR(out, "http://h:1/m");
	CHECK(ev_scrape_url("host:", out, sizeof(out), err, sizeof(err)) < 0);
	CHECK(ev_scrape_url(":9100", out, sizeof(out), err, sizeof(err)) < 0);
	ev_buf_free(&page);
	ev_metrics_free(m);
}

int main(void)
{
	RUN(test_format);
	RUN(test_sample);
	RUN(test_scrape);
	return test_report();
}
