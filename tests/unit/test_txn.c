/* SPDX-License-Identifier: Apache-2.0 */
/* test_txn.c: the names of a sink's transactions and the log of their records (lib/txn.c). */
#include <string.h>

#include "test.h"
#include "txn.h"

static void test_names(void)
{
	ev_buf b = EV_BUF_INIT;
	ev_txn_id(&b, "job", "dlqsink-late", "events.late");
	CHECK(strcmp(ev_buf_cstr(&b), "evpipe.job.dlqsink-late.events.late") == 0);
	ev_txn_marker_group(&b, "evpipe.job.dlqsink-late.events.late");
	CHECK(strcmp(ev_buf_cstr(&b), "evpipe-txn.evpipe.job.dlqsink-late.events.late") == 0);
	ev_buf_free(&b);
}

static void test_log(void)
{
	ev_buf log = EV_BUF_INIT;
	ev_txn_entry e;
	size_t pos = 0;
	CHECK(ev_txn_log_count(&log) == 0);
	CHECK(ev_txn_log_add(&log, "schema", 6, "{\"a\":1}", 7) == 0);
	/* a key with a space, a newline and a digit in it; an empty payload */
	CHECK(ev_txn_log_add(&log, "1 \n2", 4, "", 0) == 0);
	CHECK(ev_txn_log_add(&log, "k", 1, "two\nlines", 9) < 0);
	CHECK(ev_txn_log_count(&log) == 2);
	CHECK(ev_txn_log_next(&log, &pos, &e) == 1);
	CHECK(e.keylen == 6 && memcmp(e.key, "schema", 6) == 0);
	CHECK(e.len == 7 && memcmp(e.payload, "{\"a\":1}", 7) == 0);
	CHECK(ev_txn_log_next(&log, &pos, &e) == 1);
	CHECK(e.keylen == 4 && memcmp(e.key, "1 \n2", 4) == 0 && e.len == 0);
	CHECK(ev_txn_log_next(&log, &pos, &e) == 0);
	/* cut short, or a length that runs past the end: malformed */
	log.len -= 1;
	CHECK(ev_txn_log_count(&log) < 0);
	ev_buf_reset(&log);
	ev_buf_puts(&log, "99 ab\n");
	CHECK(ev_txn_log_count(&log) < 0);
	ev_buf_reset(&log);
	ev_buf_puts(&log, "x schema{}\n");
	CHECK(ev_txn_log_count(&log) < 0);
	ev_buf_free(&log);
}

int main(void)
{
	RUN(test_names);
	RUN(test_log);
	return test_report();
}
