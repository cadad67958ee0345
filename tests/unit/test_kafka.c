/* SPDX-License-Identifier: Apache-2.0 */
/* test_kafka.c: kin's envelope parsing, property handling and statistics parsing. */
#include <getopt.h>
#include <stdlib.h>
#include <unistd.h>

#include "kafka.h"
#include "test.h"

static void test_envelope(void)
{
	ev_kafka_envelope env;
	char err[256];
	memset(&env, 0, sizeof(env));
	const char *e = "{\"topic\":\"t\",\"partition\":2,\"offset\":5,\"ts\":1700000000000,"
			"\"headers\":[\"h1\",\"v1\",\"h2\",null,\"h3\",{\"b64\":\"/w==\"}],"
			"\"key\":\"k\",\"payload\":\"{\\\"a\\\":1}\"}";
	CHECK(ev_kafka_envelope_parse(&env, e, strlen(e), err, sizeof(err)) == 0);
	CHECK_STR(env.topic, "t");
	CHECK(env.partition == 2);
	CHECK(env.ts == 1700000000000);
	CHECK(env.key_len == 1 && env.key[0] == 'k');
	CHECK(env.payload_len == 7 && memcmp(env.payload, "{\"a\":1}", 7) == 0);
	CHECK(env.headers && rd_kafka_header_cnt(env.headers) == 3);
	const void *v;
	size_t n;
	CHECK(rd_kafka_header_get_last(env.headers, "h3", &v, &n) == 0 && n == 1 &&
	      ((const unsigned char *)v)[0] == 0xff);
	CHECK(rd_kafka_header_get_last(env.headers, "h2", &v, &n) == 0 && v == NULL);
	rd_kafka_headers_destroy(env.headers);
	env.headers = NULL;

	const char *b = "{\"key\":null,\"payload_b64\":\"AP8=\"}";
	CHECK(ev_kafka_envelope_parse(&env, b, strlen(b), err, sizeof(err)) == 0);
	CHECK(env.key == NULL && env.topic == NULL && env.partition == RD_KAFKA_PARTITION_UA);
	CHECK(env.payload_len == 2 && env.payload[0] == 0 && (unsigned char)env.payload[1] == 0xff);

	const char *bad[] = {"not json",
			     "[1]",
			     "{\"key\":\"k\"}",
			     "{\"payload\":1}",
			     "{\"payload\":\"x\",\"payload_b64\":\"eA==\"}",
			     "{\"payload\":\"x\",\"partition\":\"1\"}",
			     "{\"payload\":\"x\",\"headers\":[\"only-name\"]}",
			     "{\"payload_b64\":\"!!\"}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(ev_kafka_envelope_parse(&env, bad[i], strlen(bad[i]), err, sizeof(err)) < 0);
		CHECK(strlen(err) > 0);
	}
	ev_kafka_envelope_free(&env);
}

/* A topic or a header name holding a NUL was cut there, so that kin produced to another topic
 * than the envelope's (found by fuzzing): refused. A NUL in a value is kept. */
static void test_envelope_nul(void)
{
	ev_kafka_envelope env;
	char err[256];
	memset(&env, 0, sizeof(env));
	const char *topic = "{\"topic\":\"ev\\u0000ents\",\"payload\":\"x\"}";
	CHECK(ev_kafka_envelope_parse(&env, topic, strlen(topic), err, sizeof(err)) < 0);
	CHECK(strstr(err, "\"topic\"") != NULL);
	const char *name = "{\"headers\":[\"a\\u0000b\",\"v\"],\"payload\":\"x\"}";
	CHECK(ev_kafka_envelope_parse(&env, name, strlen(name), err, sizeof(err)) < 0);
	CHECK(strstr(err, "header name") != NULL);
	CHECK(env.headers == NULL);
	const char *value = "{\"headers\":[\"a\",\"v\\u0000w\"],\"payload\":\"x\\u0000y\"}";
	CHECK(ev_kafka_envelope_parse(&env, value, strlen(value), err, sizeof(err)) == 0);
	const void *v;
	size_t n;
	CHECK(env.headers && rd_kafka_header_get_last(env.headers, "a", &v, &n) == 0 && n == 3);
	CHECK(env.payload_len == 3 && env.payload[1] == '\0');

	/* What kin -C -J writes reads back as it was. */
	ev_buf line = EV_BUF_INIT;
	ev_kafka_record r = {.topic = "t",
			     .partition = 2,
			     .offset = 7,
			     .tstype = "create",
			     .ts = 5,
			     .headers = env.headers,
			     .payload = env.payload,
			     .len = env.payload_len};
	ev_kafka_envelope back;
	memset(&back, 0, sizeof(back));
	CHECK(ev_kafka_envelope_write(&line, &r) == 0);
	CHECK(ev_kafka_envelope_parse(&back, line.data, line.len, err, sizeof(err)) == 0);
	CHECK_STR(back.topic, "t");
	CHECK(back.partition == 2 && back.ts == 5 && back.key == NULL);
	CHECK(back.payload_len == 3 && memcmp(back.payload, "x\0y", 3) == 0);
	CHECK(back.headers && rd_kafka_header_get_last(back.headers, "a", &v, &n) == 0 && n == 3);
	ev_buf_free(&line);
	ev_kafka_envelope_free(&back);
	ev_kafka_envelope_free(&env);
}

static void test_conf(void)
{
	char err[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	CHECK(ev_kafka_conf_set_pair(conf, "linger.ms=7", 1, err, sizeof(err)) == 0);
	CHECK(ev_kafka_conf_set_pair(conf, "sasl.password=hunter2", 1, err, sizeof(err)) < 0);
	CHECK(strstr(err, "refusing") != NULL && strstr(err, "hunter2") == NULL);
	CHECK(ev_kafka_conf_set_pair(conf, "no-equals", 1, err, sizeof(err)) < 0);
	CHECK(ev_kafka_conf_set_pair(conf, "no.such.property=1", 1, err, sizeof(err)) < 0);

	char path[] = "/tmp/evpipe-conf-XXXXXX";
	int fd = mkstemp(path);
	const char text[] = "# comment\n\nsasl.password=from-a-file\nlinger.ms = 9\n";
	CHECK(write(fd, text, sizeof(text) - 1) == (ssize_t)(sizeof(text) - 1));
	close(fd);
	CHECK(ev_kafka_conf_file(conf, path, err, sizeof(err)) < 0); /* "linger.ms " has a space */
	CHECK(strstr(err, ":4:") != NULL);
	unlink(path);
	char val[64];
	size_t n = sizeof(val);
	CHECK(rd_kafka_conf_get(conf, "sasl.password", val, &n) == RD_KAFKA_CONF_OK);
	CHECK_STR(val, "from-a-file");
	rd_kafka_conf_destroy(conf);
}

static const char *conf_value(rd_kafka_conf_t *conf, const char *key, char *val, size_t size)
{
	return rd_kafka_conf_get(conf, key, val, &size) == RD_KAFKA_CONF_OK ? val : "?";
}

/* A tool's default applies unless -X, -F or $EVPIPE_KAFKA_CONFIG gave the property. */
static void test_defaults(void)
{
	char err[256], val[64];
	ev_kafka_opts o;
	unsetenv("EVPIPE_KAFKA_CONFIG");
	CHECK(ev_kafka_opts_init(&o, err, sizeof(err)) == 0);
	char path[] = "/tmp/evpipe-conf-XXXXXX";
	int fd = mkstemp(path);
	const char text[] = "queued.min.messages=100000\n";
	CHECK(write(fd, text, sizeof(text) - 1) == (ssize_t)(sizeof(text) - 1));
	close(fd);
	/* Through the options of the fragment every Kafka tool declares. */
	const ev_option opts[] = {EV_OPTS_KAFKA(&o), EV_OPT_END()};
	char a0[] = "kin", a1[] = "-X", a2[] = "fetch.wait.max.ms=250", a3[] = "-F",
	     a4[] = "--timeout", a5[] = "3s";
	char *argv[] = {a0, a1, a2, a3, path, a4, a5, NULL};
	optind = 1;
	CHECK(ev_opts_parse(opts, 7, argv, err, sizeof(err)) == 0 && optind == 7);
	CHECK(o.timeout_ms == 3000);
	unlink(path);
	CHECK(ev_kafka_opts_default(&o, "fetch.wait.max.ms", "100", err, sizeof(err)) == 0);
	CHECK(ev_kafka_opts_default(&o, "queued.min.messages", "500000", err, sizeof(err)) == 0);
	CHECK_STR(conf_value(o.conf, "fetch.wait.max.ms", val, sizeof(val)), "250");
	CHECK_STR(conf_value(o.conf, "queued.min.messages", val, sizeof(val)), "100000");
	CHECK(ev_kafka_opts_default(&o, "linger.ms", "5", err, sizeof(err)) < 0);
	rd_kafka_conf_destroy(o.conf);

	CHECK(ev_kafka_opts_init(&o, err, sizeof(err)) == 0);
	CHECK(ev_kafka_opts_default(&o, "fetch.wait.max.ms", "100", err, sizeof(err)) == 0);
	CHECK(ev_kafka_opts_default(&o, "queued.min.messages", "500000", err, sizeof(err)) == 0);
	CHECK_STR(conf_value(o.conf, "fetch.wait.max.ms", val, sizeof(val)), "100");
	CHECK_STR(conf_value(o.conf, "queued.min.messages", val, sizeof(val)), "500000");
	rd_kafka_conf_destroy(o.conf);
}

struct lag_seen {
	int calls;
	int64_t sum;
};

static void on_lag(void *arg, const char *topic, int32_t partition, int64_t lag)
{
	struct lag_seen *s = arg;
	(void)topic;
	(void)partition;
	s->calls++;
	s->sum += lag;
}

static void test_stats(void)
{
	const char *js =
		"{\"topics\":{\"events\":{\"partitions\":{"
		"\"0\":{\"ls_offset\":10,\"hi_offset\":12,\"app_offset\":5,\"committed_offset\":2},"
		"\"1\":{\"ls_offset\":-1,\"hi_offset\":9,\"app_offset\":-1001,\"committed_offset\":2},"
		"\"2\":{\"ls_offset\":7,\"app_offset\":-1001,\"committed_offset\":-1001},"
		"\"3\":{\"ls_offset\":0,\"app_offset\":-1001,\"next_offset\":0},"
		"\"-1\":{\"ls_offset\":100,\"app_offset\":0}}}}}";
	struct lag_seen s = {0, 0};
	CHECK(ev_kafka_stats_lag(js, strlen(js), on_lag, &s) == 0);
	CHECK(s.calls == 3 && s.sum == 5 + 7 + 0);
	CHECK(ev_kafka_stats_lag("{", 1, on_lag, &s) < 0);
}

int main(void)
{
	RUN(test_envelope);
	RUN(test_envelope_nul);
	RUN(test_conf);
	RUN(test_defaults);
	RUN(test_stats);
	return test_report();
}
