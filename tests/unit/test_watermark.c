/* SPDX-License-Identifier: Apache-2.0 */
/* test_watermark.c: bounded out-of-orderness, per-partition minimum, idleness, promises. */
#include "test.h"
#include "watermark.h"

static void test_bounded(void)
{
	ev_wm_opts o = {5000, 0, 0};
	ev_wm *w = ev_wm_new(&o);
	CHECK(ev_wm_current(w, 0) == EV_WM_MIN);
	CHECK(ev_wm_observe(w, 0, 100000, 0) == EV_WM_OK);
	CHECK(ev_wm_current(w, 0) == 100000 - 5000 - 1);
	ev_wm_observe(w, 0, 90000, 0); /* out of order: the maximum holds */
	CHECK(ev_wm_current(w, 0) == 94999);
	ev_wm_observe(w, 0, 110000, 0);
	CHECK(ev_wm_current(w, 0) == 104999);
	ev_wm_end(w);
	CHECK(ev_wm_current(w, 0) == EV_WM_END);
	ev_wm_free(w);
}

static void test_partitions_and_idleness(void)
{
	ev_wm_opts o = {0, 10000, 0};
	ev_wm *w = ev_wm_new(&o);
	ev_wm_observe(w, 1, 50000, 0);
	ev_wm_observe(w, 2, 20000, 0);
	CHECK(ev_wm_current(w, 0) == 19999); /* the slower partition holds it back */
	ev_wm_observe(w, 1, 60000, 5000);
	CHECK(ev_wm_current(w, 5000) == 19999);
	int idle = -1;
	CHECK(ev_wm_partitions(w, 5000, &idle) == 2 && idle == 0);
	/* partition 2 silent for the idle timeout: left out */
	CHECK(ev_wm_current(w, 10000) == 59999);
	CHECK(ev_wm_partitions(w, 10000, &idle) == 2 && idle == 1);
	/* back with an old time: the watermark does not go backwards */
	ev_wm_observe(w, 2, 21000, 11000);
	CHECK(ev_wm_current(w, 11000) == 59999);
	/* every partition idle: no new evidence, it stays */
	CHECK(ev_wm_current(w, 100000) == 59999);
	ev_wm_free(w);
}

static void test_promises_and_future(void)
{
	ev_wm_opts o = {1000, 0, 3600000};
	ev_wm *w = ev_wm_new(&o);
	ev_wm_promise(w, 7000);
	CHECK(ev_wm_current(w, 0) == 7000);
	ev_wm_observe(w, 0, 5000, 0);
	CHECK(ev_wm_current(w, 0) == 7000); /* a promise is not taken back */
	ev_wm_observe(w, 0, 20000, 0);
	CHECK(ev_wm_current(w, 0) == 18999);
	/* a year ahead of the partition: refused, nothing changes */
	CHECK(ev_wm_observe(w, 0, 20000 + 365LL * 86400000, 0) == EV_WM_TOO_FAR_AHEAD);
	CHECK(ev_wm_current(w, 0) == 18999);
	CHECK(ev_wm_observe(w, 0, 20000 + 3600000, 0) == EV_WM_OK);
	/* a partition's first record has nothing to be compared with */
	CHECK(ev_wm_observe(w, 9, 4102444800000, 0) == EV_WM_OK);
	/* extreme times do not overflow */
	CHECK(ev_wm_observe(w, 10, INT64_MIN + 5, 0) == EV_WM_OK);
	CHECK(ev_wm_current(w, 0) == 18999); /* the new, ancient partition holds it */
	ev_wm_free(w);
}

/* A watermark saved and restored goes on as the original would. */
static void test_encode(void)
{
	ev_wm_opts o = {5000, 60000, 0};
	ev_wm *a = ev_wm_new(&o), *b = ev_wm_new(&o);
	ev_wm_observe(a, 1, 100000, 0);
	ev_wm_observe(a, 2, 90000, 0);
	ev_wm_promise(a, 50000);
	int64_t before = ev_wm_current(a, 0);
	ev_buf enc = EV_BUF_INIT;
	CHECK(ev_wm_encode(a, &enc) == 0);
	CHECK(ev_wm_decode(b, enc.data, enc.len, 1000) == 0);
	CHECK(ev_wm_current(b, 1000) == before && before == 84999);
	ev_wm_observe(a, 2, 120000, 2000);
	ev_wm_observe(b, 2, 120000, 2000);
	CHECK(ev_wm_current(b, 2000) == ev_wm_current(a, 2000));
	CHECK(ev_wm_partitions(b, 2000, NULL) == 2);
	CHECK(ev_wm_decode(b, enc.data, enc.len - 1, 0) < 0);
	enc.data[0] = 9;
	CHECK(ev_wm_decode(b, enc.data, enc.len, 0) < 0);
	ev_buf_free(&enc);
	ev_wm_free(a);
	ev_wm_free(b);
}

int main(void)
{
	RUN(test_bounded);
	RUN(test_encode);
	RUN(test_partitions_and_idleness);
	RUN(test_promises_and_future);
	return test_report();
}
