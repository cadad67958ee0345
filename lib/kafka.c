/* SPDX-License-Identifier: Apache-2.0 */
/* kafka.c: librdkafka configuration from options and files, kin's message envelope. */
#include "kafka.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "codec.h"
#include "json.h"
#include "log.h"
#include "opts.h"
#include "tool.h"

static void log_line(const rd_kafka_t *rk, int level, const char *fac, const char *msg)
{
	(void)level;
	ev_debug("librdkafka: %s: %s: %s", rd_kafka_name(rk), fac, msg);
}

void ev_kafka_conf_logging(rd_kafka_conf_t *conf)
{
	rd_kafka_conf_set_log_cb(conf, log_line);
}

static int is_secret(const char *key)
{
	static const char *const words[] = {"password",    "secret",  "sasl.oauthbearer.config",
					    "ssl.key.pem", "ssl_key", "ssl.keystore.key"};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strstr(key, words[i]))
			return 1;
	return 0;
}

/* The pairs of a dump as "key = value" lines, secrets' values redacted. */
static int dump_pairs(ev_buf *out, const char **arr, size_t cnt)
{
	int rc = 0;
	for (size_t i = 0; i + 1 < cnt; i += 2)
		rc |= ev_buf_printf(out, "%s = %s\n", arr[i],
				    is_secret(arr[i]) ? "[redacted]" : arr[i + 1]);
	return rc;
}

int ev_kafka_conf_dump(rd_kafka_conf_t *conf, ev_buf *out)
{
	size_t cnt;
	const char **arr = rd_kafka_conf_dump(conf, &cnt);
	int rc = ev_buf_puts(out, "# Global config\n");
	rc |= dump_pairs(out, arr, cnt);
	rc |= ev_buf_puts(out, "\n# Topic config\n");
	rd_kafka_conf_dump_free(arr, cnt);
	rd_kafka_topic_conf_t *fresh = NULL, *tc = rd_kafka_conf_get_default_topic_conf(conf);
	if (!tc)
		tc = fresh = rd_kafka_topic_conf_new();
	arr = rd_kafka_topic_conf_dump(tc, &cnt);
	rc |= dump_pairs(out, arr, cnt);
	rc |= ev_buf_puts(out, "\n");
	rd_kafka_conf_dump_free(arr, cnt);
	if (fresh)
		rd_kafka_topic_conf_destroy(fresh);
	return rc < 0 ? -1 : 0;
}

int ev_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *val, int from_argv,
		      char *err, size_t errlen)
{
	if (from_argv && is_secret(key)) {
		snprintf(
			err, errlen,
			"refusing secret property '%s' on the command line: put it in a file given "
			"with -F or $EVPIPE_KAFKA_CONFIG",
			key);
		return -1;
	}
	char rderr[512];
	if (rd_kafka_conf_set(conf, key, val, rderr, sizeof(rderr)) != RD_KAFKA_CONF_OK) {
		snprintf(err, errlen, "%s", rderr);
		return -1;
	}
	return 0;
}

int ev_kafka_conf_set_pair(rd_kafka_conf_t *conf, const char *pair, int from_argv, char *err,
			   size_t errlen)
{
	const char *eq = strchr(pair, '=');
	if (!eq || eq == pair) {
		snprintf(err, errlen, "property '%s' is not key=value", pair);
		return -1;
	}
	char *key = strndup(pair, (size_t)(eq - pair));
	if (!key) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = ev_kafka_conf_set(conf, key, eq + 1, from_argv, err, errlen);
	free(key);
	return rc;
}

/* The properties tools may give defaults of their own (ev_kafka_opts_default). */
static const char *const tuned[] = {"queued.min.messages", "fetch.wait.max.ms",
				    "partition.assignment.strategy", "transaction.timeout.ms"};

/* Note in *given which tuned property "key=value" sets. */
static void note_given(unsigned *given, const char *pair)
{
	size_t klen = strcspn(pair, "=");
	for (size_t i = 0; given && i < sizeof(tuned) / sizeof(tuned[0]); i++)
		if (strlen(tuned[i]) == klen && strncmp(tuned[i], pair, klen) == 0)
			*given |= 1u << i;
}

static int conf_file(rd_kafka_conf_t *conf, const char *path, unsigned *given, char *err,
		     size_t errlen);

int ev_kafka_opts_init(ev_kafka_opts *o, char *err, size_t errlen)
{
	const char *path = getenv("EVPIPE_KAFKA_CONFIG");
	o->brokers = NULL;
	o->timeout_ms = 10000;
	o->given = 0;
	o->conf = rd_kafka_conf_new();
	if (path && *path && conf_file(o->conf, path, &o->given, err, errlen) < 0)
		return -1;
	return 0;
}

int ev_kafka_opts_default(ev_kafka_opts *o, const char *key, const char *val, char *err,
			  size_t errlen)
{
	for (size_t i = 0; i < sizeof(tuned) / sizeof(tuned[0]); i++)
		if (strcmp(tuned[i], key) == 0)
			return o->given & (1u << i)
				       ? 0
				       : ev_kafka_conf_set(o->conf, key, val, 0, err, errlen);
	snprintf(err, errlen, "'%s' is not a property with a tool default", key);
	return -1;
}

int ev_kafka_opt_property(const ev_option *o, char *arg, char *err, size_t errlen)
{
	ev_kafka_opts *k = o->value;
	if (ev_kafka_conf_set_pair(k->conf, arg, 1, err, errlen) < 0)
		return -1;
	note_given(&k->given, arg);
	return 0;
}

int ev_kafka_opt_file(const ev_option *o, char *arg, char *err, size_t errlen)
{
	ev_kafka_opts *k = o->value;
	return conf_file(k->conf, arg, &k->given, err, errlen);
}

int ev_kafka_opts_brokers(ev_kafka_opts *o)
{
	if (!o->brokers)
		o->brokers = getenv("KAFKA_BROKERS");
	return o->brokers && *o->brokers ? 0 : -1;
}

int ev_kafka_probe(rd_kafka_t *rk, const ev_kafka_opts *o, rd_kafka_topic_t *rkt,
		   const struct rd_kafka_metadata **md, char *err, size_t errlen)
{
	const struct rd_kafka_metadata *m = NULL;
	rd_kafka_resp_err_t e = rd_kafka_metadata(rk, rkt ? 0 : 1, rkt, &m, (int)o->timeout_ms);
	if (e) {
		snprintf(err, errlen, "cannot reach Kafka at '%s' within %lld ms: %s", o->brokers,
			 (long long)o->timeout_ms, rd_kafka_err2str(e));
		return -1;
	}
	if (md)
		*md = m;
	else
		rd_kafka_metadata_destroy(m);
	return 0;
}

int ev_kafka_conf_file(rd_kafka_conf_t *conf, const char *path, char *err, size_t errlen)
{
	return conf_file(conf, path, NULL, err, errlen);
}

static int conf_file(rd_kafka_conf_t *conf, const char *path, unsigned *given, char *err,
		     size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int lineno = 0, rc = 0;
	while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
			line[--n] = '\0';
		char *p = line + strspn(line, " \t");
		if (*p == '\0' || *p == '#')
			continue;
		char msg[512];
		if (ev_kafka_conf_set_pair(conf, p, 0, msg, sizeof(msg)) < 0) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
			rc = -1;
		}
		note_given(given, p);
	}
	free(line);
	fclose(f);
	return rc;
}

static int put_bytes(ev_buf *out, const char *name, const void *p, size_t n)
{
	if (!p)
		return ev_buf_printf(out, "\"%s\":null", name);
	return ev_json_bytes_field(out, name, p, n);
}

void ev_kafka_record_of(ev_kafka_record *r, const rd_kafka_message_t *msg, int headers)
{
	rd_kafka_timestamp_type_t tstype;
	rd_kafka_headers_t *hdrs = NULL;
	*r = (ev_kafka_record){
		.topic = rd_kafka_topic_name(msg->rkt),
		.partition = msg->partition,
		.offset = msg->offset,
		.broker = rd_kafka_message_broker_id(msg),
		.key = msg->key,
		.key_len = msg->key_len,
		.payload = msg->payload,
		.len = msg->len,
	};
	r->ts = rd_kafka_message_timestamp(msg, &tstype);
	r->tstype = tstype == RD_KAFKA_TIMESTAMP_CREATE_TIME       ? "create"
		    : tstype == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? "logappend"
								   : "none";
	if (headers && rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
		r->headers = hdrs;
}

int ev_kafka_envelope_format(ev_buf *out, const rd_kafka_message_t *msg)
{
	ev_kafka_record r;
	ev_kafka_record_of(&r, msg, 1);
	return ev_kafka_envelope_write(out, &r);
}

int ev_kafka_envelope_write(ev_buf *out, const ev_kafka_record *r)
{
	int rc = ev_buf_puts(out, "{\"topic\":");
	rc |= ev_buf_json_string(out, r->topic, strlen(r->topic));
	rc |= ev_buf_printf(
		out,
		",\"partition\":%d,\"offset\":%lld,\"tstype\":\"%s\",\"ts\":%lld,\"broker\":%d",
		(int)r->partition, (long long)r->offset, r->tstype, (long long)r->ts,
		(int)r->broker);
	if (r->headers) {
		const char *name;
		const void *val;
		size_t vlen;
		rc |= ev_buf_puts(out, ",\"headers\":[");
		for (size_t i = 0; rd_kafka_header_get_all(r->headers, i, &name, &val, &vlen) == 0;
		     i++) {
			if (i)
				rc |= ev_buf_putc(out, ',');
			rc |= ev_buf_json_string(out, name, strlen(name));
			rc |= ev_buf_putc(out, ',');
			if (!val) {
				rc |= ev_buf_puts(out, "null");
			} else if (ev_utf8_valid(val, vlen)) {
				rc |= ev_buf_json_string(out, val, vlen);
			} else {
				rc |= ev_buf_puts(out, "{\"b64\":\"");
				rc |= ev_base64_encode(out, val, vlen);
				rc |= ev_buf_puts(out, "\"}");
			}
		}
		rc |= ev_buf_putc(out, ']');
	}
	rc |= ev_buf_putc(out, ',');
	rc |= put_bytes(out, "key", r->key, r->key_len);
	rc |= ev_buf_putc(out, ',');
	rc |= put_bytes(out, "payload", r->payload, r->len);
	return rc | ev_buf_putc(out, '}');
}

/* Take a bytes field given as "name" (string or null) or "name_b64". Returns 1 when
 * present, 0 when absent, -1 when malformed. */
static int take_bytes(json_t *root, const char *name, ev_buf *buf, const char **p, size_t *n,
		      char *err, size_t errlen)
{
	char b64name[64];
	json_t *v = json_object_get(root, name);
	snprintf(b64name, sizeof(b64name), "%s_b64", name);
	json_t *b = json_object_get(root, b64name);
	ev_buf_reset(buf);
	*p = NULL;
	*n = 0;
	if (v && b) {
		snprintf(err, errlen, "envelope has both \"%s\" and \"%s\"", name, b64name);
		return -1;
	}
	if (b) {
		if (!json_is_string(b) ||
		    ev_base64_decode(buf, json_string_value(b), json_string_length(b)) < 0) {
			snprintf(err, errlen, "envelope field \"%s\" is not base64", b64name);
			return -1;
		}
	} else if (v && json_is_string(v)) {
		if (ev_buf_append(buf, json_string_value(v), json_string_length(v)) < 0)
			return -1;
	} else if (v && !json_is_null(v)) {
		snprintf(err, errlen, "envelope field \"%s\" must be a string or null", name);
		return -1;
	} else {
		return v ? 1 : 0;
	}
	*p = ev_buf_cstr(buf);
	*n = buf->len;
	return 1;
}

static int take_headers(json_t *arr, rd_kafka_headers_t **out, char *err, size_t errlen)
{
	if (!json_is_array(arr) || json_array_size(arr) % 2) {
		snprintf(err, errlen,
			 "envelope field \"headers\" must be an array of name, value pairs");
		return -1;
	}
	ev_buf tmp = EV_BUF_INIT;
	rd_kafka_headers_t *h = rd_kafka_headers_new(json_array_size(arr) / 2);
	for (size_t i = 0; i < json_array_size(arr); i += 2) {
		json_t *name = json_array_get(arr, i);
		json_t *val = json_array_get(arr, i + 1);
		json_t *b64 = json_is_object(val) ? json_object_get(val, "b64") : NULL;
		const void *vp = NULL;
		ssize_t vn = 0;
		ev_buf_reset(&tmp);
		/* A name is a C string to librdkafka: one with a NUL would be cut there. */
		if (!json_is_string(name) ||
		    strlen(json_string_value(name)) != json_string_length(name)) {
			snprintf(err, errlen, "envelope header name must be a string without NUL");
			goto fail;
		}
		if (json_is_string(val)) {
			vp = json_string_value(val);
			vn = (ssize_t)json_string_length(val);
		} else if (json_is_string(b64) && ev_base64_decode(&tmp, json_string_value(b64),
								   json_string_length(b64)) == 0) {
			vp = ev_buf_cstr(&tmp);
			vn = (ssize_t)tmp.len;
		} else if (!json_is_null(val)) {
			snprintf(err, errlen,
				 "envelope header '%s' has a value that is not a string, "
				 "null or {\"b64\":...}",
				 json_string_value(name));
			goto fail;
		}
		rd_kafka_header_add(h, json_string_value(name), -1, vp, vn);
	}
	ev_buf_free(&tmp);
	*out = h;
	return 0;
fail:
	ev_buf_free(&tmp);
	rd_kafka_headers_destroy(h);
	return -1;
}

int ev_kafka_envelope_parse(ev_kafka_envelope *env, const char *line, size_t len, char *err,
			    size_t errlen)
{
	json_error_t jerr;
	json_t *root = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
	env->topic = NULL;
	env->partition = RD_KAFKA_PARTITION_UA;
	env->ts = 0;
	env->headers = NULL;
	if (!root || !json_is_object(root)) {
		snprintf(err, errlen, "not a JSON envelope: %s",
			 root ? "not an object" : jerr.text);
		json_decref(root);
		return -1;
	}
	int rc = -1;
	json_t *v;
	if (take_bytes(root, "key", &env->keybuf, &env->key, &env->key_len, err, errlen) < 0)
		goto out;
	int has = take_bytes(root, "payload", &env->payloadbuf, &env->payload, &env->payload_len,
			     err, errlen);
	if (has < 0)
		goto out;
	if (has == 0) {
		snprintf(err, errlen, "envelope has no \"payload\"");
		goto out;
	}
	if ((v = json_object_get(root, "topic")) && !json_is_null(v)) {
		/* Produced to by name: one with a NUL would be cut there, to another topic. */
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
			snprintf(err, errlen,
				 "envelope field \"topic\" must be a string without NUL");
			goto out;
		}
		ev_buf_reset(&env->topicbuf);
		ev_buf_puts(&env->topicbuf, json_string_value(v));
		env->topic = ev_buf_cstr(&env->topicbuf);
	}
	if ((v = json_object_get(root, "partition")) && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < -1 ||
		    json_integer_value(v) > INT32_MAX) {
			snprintf(err, errlen,
				 "envelope field \"partition\" must be an integer >= -1");
			goto out;
		}
		env->partition = (int32_t)json_integer_value(v);
	}
	if ((v = json_object_get(root, "ts")) && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			snprintf(err, errlen,
				 "envelope field \"ts\" must be a non-negative integer");
			goto out;
		}
		env->ts = json_integer_value(v);
	}
	if ((v = json_object_get(root, "headers")) && !json_is_null(v) &&
	    take_headers(v, &env->headers, err, errlen) < 0)
		goto out;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

void ev_kafka_envelope_free(ev_kafka_envelope *env)
{
	ev_buf_free(&env->keybuf);
	ev_buf_free(&env->payloadbuf);
	ev_buf_free(&env->topicbuf);
	if (env->headers)
		rd_kafka_headers_destroy(env->headers);
	env->headers = NULL;
}

/* An offset of a statistics document; -1 when absent or unknown. */
static json_int_t stat_offset(json_t *partition, const char *key)
{
	json_t *v = json_object_get(partition, key);
	return json_is_integer(v) ? json_integer_value(v) : -1;
}

int ev_kafka_stats_lag(const char *json, size_t len,
		       void (*fn)(void *arg, const char *topic, int32_t partition, int64_t lag),
		       void *arg)
{
	json_t *root = json_loadb(json, len, 0, NULL);
	json_t *topics = root ? json_object_get(root, "topics") : NULL;
	if (!json_is_object(topics)) {
		json_decref(root);
		return root ? 0 : -1;
	}
	const char *tname;
	json_t *t;
	json_object_foreach(topics, tname, t)
	{
		const char *pname;
		json_t *p;
		json_object_foreach(json_object_get(t, "partitions"), pname, p)
		{
			long part = strtol(pname, NULL, 10);
			/* The end (the last stable offset under read_committed, else the high
			 * watermark) minus the position: Kafka's records-lag. librdkafka's own
			 * consumer_lag counts from the committed offset, unknown without a group. */
			json_int_t end = stat_offset(p, "ls_offset");
			if (end < 0)
				end = stat_offset(p, "hi_offset");
			json_int_t pos = stat_offset(p, "app_offset");
			if (pos < 0) /* nothing consumed yet: where fetching starts */
				pos = stat_offset(p, "next_offset");
			if (pos < 0)
				pos = stat_offset(p, "committed_offset");
			/* Offsets below 0 are unknown; the internal UA partition is not a real one. */
			if (part >= 0 && end >= 0 && pos >= 0)
				fn(arg, tname, (int32_t)part, end > pos ? end - pos : 0);
		}
	}
	json_decref(root);
	return 0;
}

void ev_kafka_delivery_note(ev_kafka_delivery *d, const rd_kafka_message_t *msg)
{
	if (!msg->err) {
		d->delivered++;
		return;
	}
	if (!d->failed)
		d->first_err = msg->err;
	d->failed++;
	ev_debug("delivery failed: %s", rd_kafka_err2str(msg->err));
}

/* Once a stop signal came, whether stop_ms passed since this wait first saw it (*end: 0 until
 * then, then when it ends). */
static int stop_past(uint64_t *end, int stop_ms)
{
	if (!ev_tool_stop_requested())
		return 0;
	uint64_t now = ev_mono_ns();
	if (!*end)
		*end = now + (uint64_t)(stop_ms > 0 ? stop_ms : 0) * 1000000u;
	return now >= *end;
}

rd_kafka_resp_err_t ev_kafka_produce(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int32_t partition,
				     const void *payload, size_t len, const void *key,
				     size_t keylen, int64_t ts, rd_kafka_headers_t **headers,
				     int stop_ms)
{
	uint64_t stop_end = 0;
	for (;;) {
		rd_kafka_resp_err_t err;
		if (headers && *headers)
			err = rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt),
						RD_KAFKA_V_PARTITION(partition),
						RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
						RD_KAFKA_V_VALUE((void *)payload, len),
						RD_KAFKA_V_KEY(key, keylen),
						RD_KAFKA_V_TIMESTAMP(ts),
						RD_KAFKA_V_HEADERS(*headers), RD_KAFKA_V_END);
		else
			err = rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt),
						RD_KAFKA_V_PARTITION(partition),
						RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
						RD_KAFKA_V_VALUE((void *)payload, len),
						RD_KAFKA_V_KEY(key, keylen),
						RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			if (!err && headers)
				*headers = NULL; /* owned by the message now */
			return err;
		}
		if (rd_kafka_fatal_error(rk, NULL, 0))
			return RD_KAFKA_RESP_ERR__FATAL;
		if (stop_past(&stop_end, stop_ms))
			return err;
		rd_kafka_poll(rk, 100);
	}
}

int ev_kafka_flush_all(rd_kafka_t *rk, int stop_ms)
{
	uint64_t stop_end = 0;
	while (rd_kafka_outq_len(rk) > 0 && !rd_kafka_fatal_error(rk, NULL, 0) &&
	       !stop_past(&stop_end, stop_ms))
		rd_kafka_flush(rk, 100);
	return rd_kafka_outq_len(rk);
}

int ev_kafka_read_all(rd_kafka_t *consumer, const char *topic, int timeout_ms,
		      int (*fn)(void *arg, const rd_kafka_message_t *msg), void *arg, char *err,
		      size_t errlen)
{
	const struct rd_kafka_metadata *md;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(consumer, topic, NULL);
	rd_kafka_resp_err_t e = rd_kafka_metadata(consumer, 0, rkt, &md, timeout_ms);
	rd_kafka_topic_destroy(rkt);
	if (e) {
		snprintf(err, errlen, "cannot reach Kafka within %d ms: %s", timeout_ms,
			 rd_kafka_err2str(e));
		return -1;
	}
	if (md->topic_cnt != 1 || md->topics[0].err) {
		snprintf(err, errlen, "topic '%s': %s", topic,
			 rd_kafka_err2str(md->topic_cnt ? md->topics[0].err
							: RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
		rd_kafka_metadata_destroy(md);
		return -1;
	}
	int left = md->topics[0].partition_cnt;
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(left);
	for (int i = 0; i < md->topics[0].partition_cnt; i++)
		rd_kafka_topic_partition_list_add(list, topic, md->topics[0].partitions[i].id)
			->offset = RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_metadata_destroy(md);
	e = rd_kafka_assign(consumer, list);
	rd_kafka_topic_partition_list_destroy(list);
	if (e) {
		snprintf(err, errlen, "cannot assign '%s': %s", topic, rd_kafka_err2str(e));
		return -1;
	}
	int rc = 0;
	while (left > 0 && rc == 0) {
		rd_kafka_message_t *msg = rd_kafka_consumer_poll(consumer, 100);
		if (!msg)
			continue;
		if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			left--;
		} else if (msg->err) {
			snprintf(err, errlen, "%s: %s", topic, rd_kafka_message_errstr(msg));
			rc = -1;
		} else if (fn(arg, msg) != 0) {
			snprintf(err, errlen, "stopped reading '%s'", topic);
			rc = -1;
		}
		rd_kafka_message_destroy(msg);
	}
	return rc;
}

/* The value of config name of one resource, by DescribeConfigs within timeout_ms into *val.
 * Returns 0, 1 when the resource has no such value (an unknown topic), or -1 with a message
 * in err. */
static int describe_config(rd_kafka_t *rk, rd_kafka_ResourceType_t type, const char *resource,
			   const char *name, int timeout_ms, int64_t *val, char *err, size_t errlen)
{
	char e[256];
	rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(type, resource);
	rd_kafka_AdminOptions_t *opts =
		rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
	rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, e, sizeof(e));
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_DescribeConfigs(rk, &res, 1, opts, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
	int rc = -1;
	const rd_kafka_DescribeConfigs_result_t *r =
		ev ? rd_kafka_event_DescribeConfigs_result(ev) : NULL;
	size_t n = 0;
	const rd_kafka_ConfigResource_t **rs =
		r && !rd_kafka_event_error(ev) ? rd_kafka_DescribeConfigs_result_resources(r, &n)
					       : NULL;
	if (!ev) {
		snprintf(err, errlen, "no answer within %d ms", timeout_ms);
	} else if (!r || rd_kafka_event_error(ev)) {
		snprintf(err, errlen, "%s", rd_kafka_event_error_string(ev));
	} else if (n != 1) {
		snprintf(err, errlen, "no configuration of '%s' in the answer", resource);
	} else if (rd_kafka_ConfigResource_error(rs[0])) {
		rc = rd_kafka_ConfigResource_error(rs[0]) == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
			     ? 1
			     : -1;
		snprintf(err, errlen, "%s", rd_kafka_ConfigResource_error_string(rs[0]));
	} else {
		size_t cnt = 0;
		const rd_kafka_ConfigEntry_t **c = rd_kafka_ConfigResource_configs(rs[0], &cnt);
		rc = 1;
		for (size_t i = 0; i < cnt && rc == 1; i++) {
			const char *v = rd_kafka_ConfigEntry_value(c[i]);
			if (strcmp(rd_kafka_ConfigEntry_name(c[i]), name) == 0 && v) {
				*val = strtoll(v, NULL, 10);
				rc = 0;
			}
		}
		if (rc)
			snprintf(err, errlen, "'%s' has no %s", resource, name);
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_AdminOptions_destroy(opts);
	rd_kafka_ConfigResource_destroy(res);
	return rc;
}

int ev_kafka_max_message_bytes(rd_kafka_t *rk, const char *topic, int timeout_ms, int64_t *max,
			       char *err, size_t errlen)
{
	char e[256], id[16];
	int rc = describe_config(rk, RD_KAFKA_RESOURCE_TOPIC, topic, "max.message.bytes",
				 timeout_ms, max, e, sizeof(e));
	if (rc == 1) {
		/* Not created yet: it will have the broker's default. */
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_resp_err_t r = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
		if (r || md->broker_cnt < 1) {
			snprintf(e, sizeof(e), "%s", r ? rd_kafka_err2str(r) : "no broker");
			rc = -1;
		} else {
			snprintf(id, sizeof(id), "%d", (int)md->brokers[0].id);
			rc = describe_config(rk, RD_KAFKA_RESOURCE_BROKER, id, "message.max.bytes",
					     timeout_ms, max, e, sizeof(e));
		}
		if (md)
			rd_kafka_metadata_destroy(md);
	}
	if (rc != 0) {
		snprintf(err, errlen, "cannot read the largest message '%s' takes: %s", topic, e);
		return -1;
	}
	return 0;
}
