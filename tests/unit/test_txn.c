/* SPDX-License-Identifier: Apache-2.0 */
/* test_txn.c: the names of a sink's transactions, the log of their records, and the bounds of
 * their waits (lib/txn.c). */
#include <signal.h>
#include <string.h>

#include "clock.h"
#include "test.h"
#include "tool.h"
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

/* A transactional producer of brokers that refuse every connection (nothing listens on port 1). */
static rd_kafka_t *unreachable(void)
{
	char e[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", e, sizeof(e));
	rd_kafka_conf_set(conf, "transactional.id", "evpipe.test.txn", e, sizeof(e));
	rd_kafka_conf_set(conf, "log_level", "0", e, sizeof(e));
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
	if (!rk)
		rd_kafka_conf_destroy(conf);
	return rk;
}

/* With no broker, init_transactions would be retried for ever: it gives up after wait_ms, and
 * once a stop signal came, after stop_ms. */
static void test_bounded_waits(void)
{
	char err[512];
	rd_kafka_t *rk = unreachable();
	CHECK(rk != NULL);
	if (!rk)
		return;
	ev_txn_limits lim = {.wait_ms = 1500, .stop_ms = 300};
	uint64_t t0 = ev_mono_ns();
	CHECK(ev_txn_init(rk, 60000, &lim, err, sizeof(err)) < 0);
	uint64_t ms = (ev_mono_ns() - t0) / 1000000;
	CHECK(ms >= 1400 && ms < 4000);
	CHECK(strstr(err, "the brokers did not answer within 1500 ms") != NULL);

	ev_tool_catch_signals();
	raise(SIGTERM);
	CHECK(ev_tool_stop_requested() == SIGTERM);
	lim.wait_ms = 60000;
	t0 = ev_mono_ns();
	CHECK(ev_txn_init(rk, 60000, &lim, err, sizeof(err)) < 0);
	ms = (ev_mono_ns() - t0) / 1000000;
	CHECK(ms >= 250 && ms < 3000);
	CHECK(strstr(err, "a stop signal came, and the brokers did not answer within 300 ms after "
			  "it") != NULL);
	rd_kafka_destroy(rk);
}

int main(void)
{
	RUN(test_names);
	RUN(test_log);
	RUN(test_bounded_waits);
	return test_report();
}
