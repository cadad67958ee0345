/* SPDX-License-Identifier: Apache-2.0 */
/* test_metrics.c: the registry's exposition text and its HTTP endpoint. */
#include <curl/curl.h>
#include <stdlib.h>

#include "metrics.h"
#include "test.h"

static void test_render(void)
{
	ev_metrics *m = ev_metrics_new("kin", "j1");
	ev_counter *in = ev_metrics_counter(m, "evpipe_records_in_total", "Records in", NULL);
	ev_counter *parse = ev_metrics_counter(m, "evpipe_dead_letters_total", "Dead letters",
					       "reason=\"parse\"");
	ev_gauge *wm = ev_metrics_gauge(m, "evpipe_watermark_seconds", "Watermark", NULL);
	ev_counter *schema = ev_metrics_counter(m, "evpipe_dead_letters_total", "Dead letters",
						"reason=\"schema\"");
	ev_counter *blocked = ev_metrics_counter_seconds(m, "evpipe_output_blocked_seconds_total",
							 "Blocked", NULL);
	double bounds[] = {0.1, 1};
	ev_histogram *h =
		ev_metrics_histogram(m, "evpipe_batch_seconds", "Batch latency", NULL, bounds, 2);
	CHECK(ev_metrics_counter(m, "evpipe_records_in_total", "Records in", NULL) == in);
	ev_counter_add(in, 5);
	ev_counter_inc(in);
	ev_counter_inc(parse);
	ev_counter_add(schema, 2);
	ev_counter_add(blocked, 1500000000u);
	ev_gauge_set(wm, 1.5);
	ev_histogram_observe(h, 0.05);
	ev_histogram_observe(h, 0.5);
	ev_histogram_observe(h, 5);
	ev_counter_inc(NULL); /* no-op */

	ev_buf out = EV_BUF_INIT;
	CHECK(ev_metrics_render(m, &out) == 0);
	const char *want =
		"# HELP evpipe_records_in_total Records in\n"
		"# TYPE evpipe_records_in_total counter\n"
		"evpipe_records_in_total{tool=\"kin\",job=\"j1\"} 6\n"
		"# HELP evpipe_dead_letters_total Dead letters\n"
		"# TYPE evpipe_dead_letters_total counter\n"
		"evpipe_dead_letters_total{tool=\"kin\",job=\"j1\",reason=\"parse\"} 1\n"
		"evpipe_dead_letters_total{tool=\"kin\",job=\"j1\",reason=\"schema\"} 2\n"
		"# HELP evpipe_watermark_seconds Watermark\n"
		"# TYPE evpipe_watermark_seconds gauge\n"
		"evpipe_watermark_seconds{tool=\"kin\",job=\"j1\"} 1.5\n"
		"# HELP evpipe_output_blocked_seconds_total Blocked\n"
		"# TYPE evpipe_output_blocked_seconds_total counter\n"
		"evpipe_output_blocked_seconds_total{tool=\"kin\",job=\"j1\"} 1.5\n"
		"# HELP evpipe_batch_seconds Batch latency\n"
		"# TYPE evpipe_batch_seconds histogram\n"
		"evpipe_batch_seconds_bucket{tool=\"kin\",job=\"j1\",le=\"0.10000000000000001\"} 1\n"
		"evpipe_batch_seconds_bucket{tool=\"kin\",job=\"j1\",le=\"1\"} 2\n"
		"evpipe_batch_seconds_bucket{tool=\"kin\",job=\"j1\",le=\"+Inf\"} 3\n"
		"evpipe_batch_seconds_sum{tool=\"kin\",job=\"j1\"} 5.5499999999999998\n"
		"evpipe_batch_seconds_count{tool=\"kin\",job=\"j1\"} 3\n";
	CHECK_STR(out.data, want);
	ev_buf_free(&out);
	ev_metrics_free(m);
}

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
	ev_buf_append(arg, p, size * n);
	return size * n;
}

static void test_serve(void)
{
	char err[256];
	ev_metrics *m = ev_metrics_new("evwindow", "j");
	ev_counter_add(ev_metrics_counter(m, "evpipe_records_out_total", "out", NULL), 7);
	CHECK(ev_metrics_serve(m, "127.0.0.1:0", err, sizeof(err)) == 0);
	int port = ev_metrics_port(m);
	CHECK(port > 0);

	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
	ev_buf body = EV_BUF_INIT;
	CURL *c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	CHECK(curl_easy_perform(c) == CURLE_OK);
	long status = 0;
	char *ctype = NULL;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctype);
	CHECK(status == 200);
	CHECK(ctype && strncmp(ctype, "text/plain; version=0.0.4", 25) == 0);
	CHECK(strstr(ev_buf_cstr(&body),
		     "evpipe_records_out_total{tool=\"evwindow\",job=\"j\"} 7\n") != NULL);

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/nothing", port);
	curl_easy_setopt(c, CURLOPT_URL, url);
	CHECK(curl_easy_perform(c) == CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	CHECK(status == 404);
	curl_easy_cleanup(c);
	ev_buf_free(&body);

	CHECK(ev_metrics_serve(m, "nonsense", err, sizeof(err)) < 0);
	CHECK(strstr(err, "nonsense") != NULL);
	ev_metrics_free(m);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	RUN(test_render);
	RUN(test_serve);
	curl_global_cleanup();
	return test_report();
}
