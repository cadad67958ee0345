/* SPDX-License-Identifier: Apache-2.0 */
/* test_stage.c: the stage loop: one class per line, inputs in order, control lines checked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "stage.h"
#include "test.h"

static void test_classify(void)
{
	static const struct {
		const char *line;
		int flags, checkpoints;
		enum ev_line_class want;
	} cases[] = {
		{"", 0, 0, EV_LINE_BLANK},
		{"  \t ", 0, 0, EV_LINE_BLANK},
		{"  \t ", 0, 1, EV_LINE_BLANK},
		{"{\"n\":1}", 0, 0, EV_LINE_RECORD},
		{" {\"n\":1}", 0, 0, EV_LINE_RECORD},
		{"\v", 0, 0, EV_LINE_RECORD}, /* not JSON whitespace: a record, dead-lettered */
		{"{\"__evpipe\":\"watermark\",\"ts\":1}", 0, 0, EV_LINE_CONTROL},
		{"{\"__evpipe\":\"watermark\",\"ts\":1}", 0, 1, EV_LINE_CONTROL},
		/* the last line without its newline: torn with checkpoints, whatever it holds */
		{"{\"n\":1}", EV_LINE_NO_NEWLINE, 1, EV_LINE_TORN},
		{"{\"__evpipe\":\"barrier\",\"id\":4", EV_LINE_NO_NEWLINE, 1, EV_LINE_TORN},
		{"{\"__evpipe\":\"watermark\",\"ts\":1}", EV_LINE_NO_NEWLINE, 1, EV_LINE_TORN},
		{"   ", EV_LINE_NO_NEWLINE, 1, EV_LINE_TORN},
		{"", EV_LINE_NO_NEWLINE, 1, EV_LINE_BLANK},
		/* without checkpoints nothing replays it: it is what it is */
		{"{\"n\":1}", EV_LINE_NO_NEWLINE, 0, EV_LINE_RECORD},
		{"   ", EV_LINE_NO_NEWLINE, 0, EV_LINE_BLANK},
		{"{\"__evpipe\":\"barrier\",\"id\":4", EV_LINE_NO_NEWLINE, 0, EV_LINE_CONTROL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum ev_line_class got = ev_line_classify(cases[i].line, strlen(cases[i].line),
							  cases[i].flags, cases[i].checkpoints);
		if (got != cases[i].want)
			fprintf(stderr, "case %zu '%s': %s, want %s\n", i, cases[i].line,
				ev_line_class_name(got), ev_line_class_name(cases[i].want));
		CHECK(got == cases[i].want);
	}
}

static char dir[] = "/tmp/test_stage.XXXXXX";

static char *write_file(const char *name, const char *data)
{
	static char paths[4][256];
	static int n;
	char *p = paths[n++ % 4];
	snprintf(p, 256, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	fputs(data, f);
	fclose(f);
	return p;
}

/* The lines a stage returns, as "class:text;" each, and the status of its last call. */
static int read_all(ev_stage_opts *o, char *out, size_t outlen)
{
	ev_stage *s = ev_stage_new(o);
	ev_stage_line l;
	int r;
	size_t n = 0;
	out[0] = 0;
	while ((r = ev_stage_next(s, &l)) > 0)
		n += (size_t)snprintf(out + n, outlen - n, "%s:%s;", ev_line_class_name(l.cls),
				      l.data);
	ev_stage_free(s);
	return r;
}

static void test_files_in_order(void)
{
	char got[512];
	ev_metrics *m = ev_metrics_new("test", "job");
	char *files[3];
	files[0] =
		write_file("a", "{\"a\":1}\n\n \t\n{\"__evpipe\":\"barrier\",\"id\":1,\"ts\":1}\n");
	files[1] = write_file("b",
			      "{\"b\":1}\n{\"__evpipe\":\"barrier\",\"id\":2,\"ts\":1}\n{\"b\":2}");
	files[2] = write_file("c", "");
	ev_stage_opts o = {.files = files, .nfiles = 3, .metrics = m};
	CHECK(read_all(&o, got, sizeof(got)) == 0);
	CHECK_STR(got, "record:{\"a\":1};control:{\"__evpipe\":\"barrier\",\"id\":1,\"ts\":1};"
		       "record:{\"b\":1};control:{\"__evpipe\":\"barrier\",\"id\":2,\"ts\":1};"
		       "record:{\"b\":2};");
	/* the barriers of all the inputs make one sequence (ADR 0013): 2 then 1 is refused */
	char *back[2] = {files[1], files[0]};
	ev_stage_opts o2 = {.files = back, .nfiles = 2, .metrics = m};
	CHECK(read_all(&o2, got, sizeof(got)) == -1);
	CHECK_STR(got, "record:{\"b\":1};control:{\"__evpipe\":\"barrier\",\"id\":2,\"ts\":1};"
		       "record:{\"b\":2};record:{\"a\":1};");
	/* a missing input is an error, after the ones before it */
	char *missing[2] = {files[0], "/nonexistent/x"};
	ev_stage_opts o3 = {.files = missing, .nfiles = 2, .metrics = m};
	CHECK(read_all(&o3, got, sizeof(got)) == -1);
	CHECK_STR(got, "record:{\"a\":1};control:{\"__evpipe\":\"barrier\",\"id\":1,\"ts\":1};");
	ev_metrics_free(m);
}

static void test_torn_and_counts(void)
{
	char got[512];
	ev_metrics *m = ev_metrics_new("test", "job");
	ev_ckpt ck;
	memset(&ck, 0, sizeof(ck));
	ck.url = "file:///nowhere"; /* only whether checkpoints are on matters here */
	char *files[1] = {write_file("t", "{\"a\":1}\n  \n{\"__evpipe\":\"barrier\",\"id\":7")};
	ev_stage_opts o = {.files = files, .nfiles = 1, .ck = &ck, .metrics = m};
	ev_stage *s = ev_stage_new(&o);
	ev_stage_line l;
	CHECK(ev_stage_next(s, &l) == 1 && l.cls == EV_LINE_RECORD && l.lineno == 1);
	CHECK(ev_stage_next(s, &l) == 0); /* the blank line and the torn one passed over */
	CHECK(ev_stage_records(s) == 1 && ev_stage_blank(s) == 1);
	ev_stage_free(s);
	ev_buf text = EV_BUF_INIT;
	CHECK(ev_metrics_render(m, &text) == 0);
	CHECK(strstr(ev_buf_cstr(&text), "evpipe_records_skipped_total{tool=\"test\",job=\"job\","
					 "reason=\"torn\"} 1\n") != NULL);
	CHECK(strstr(ev_buf_cstr(&text), "evpipe_records_skipped_total{tool=\"test\",job=\"job\","
					 "reason=\"blank\"} 1\n") != NULL);
	CHECK(strstr(ev_buf_cstr(&text),
		     "evpipe_records_in_total{tool=\"test\",job=\"job\"} 1\n") != NULL);
	ev_buf_free(&text);
	/* without checkpoints, the same last line is a control line, and an impossible one */
	ev_stage_opts o2 = {.files = files, .nfiles = 1, .metrics = m};
	CHECK(read_all(&o2, got, sizeof(got)) == -1);
	ev_metrics_free(m);
}

int main(void)
{
	ev_log_set_level(EV_LOG_ERROR);
	if (!mkdtemp(dir))
		return 1;
	RUN(test_classify);
	RUN(test_files_in_order);
	RUN(test_torn_and_counts);
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return test_report();
}
