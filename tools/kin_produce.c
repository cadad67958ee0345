/* kin_produce.c: kin -P: produce stdin lines (or -J envelopes) to Kafka. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "kin.h"
#include "log.h"
#include "registry.h"
#include "stage.h"

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	struct kin *k = opaque;
	(void)rk;
	ev_kafka_delivery_note(&k->dl, msg);
	if (msg->err) {
		ev_counter_inc(k->m_delivery_errors);
	} else {
		ev_counter_inc(k->m_out);
		ev_counter_add(k->m_bytes_out, msg->len);
	}
}

/* The value of top-level string or number field name, as the message key. */
static int key_from_field(const char *line, size_t len, const char *name, ev_buf *key)
{
	json_t *root = json_loadb(line, len, 0, NULL);
	json_t *v = json_is_object(root) ? json_object_get(root, name) : NULL;
	int rc = 0;
	ev_buf_reset(key);
	if (json_is_string(v))
		ev_buf_append(key, json_string_value(v), json_string_length(v));
	else if (json_is_integer(v))
		ev_buf_printf(key, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		ev_buf_printf(key, "%.17g", json_real_value(v));
	else if (json_is_boolean(v))
		ev_buf_puts(key, json_is_true(v) ? "true" : "false");
	else
		rc = -1;
	json_decref(root);
	return rc;
}

/* Produce to rkt, or when it is NULL to the topic named (an envelope's). */
static int produce_one(struct kin *k, rd_kafka_topic_t *rkt, const char *topic, int32_t partition,
		       const void *payload, size_t len, const void *key, size_t keylen, int64_t ts,
		       rd_kafka_headers_t **headers)
{
	rd_kafka_topic_t *t = rkt ? rkt : rd_kafka_topic_new(k->rk, topic, NULL);
	if (k->schema_id) {
		ev_buf_reset(&k->frame);
		if (ev_registry_frame(&k->frame, k->schema_id, payload, len) < 0) {
			ev_error("out of memory");
			return -1;
		}
		payload = k->frame.data;
		len = k->frame.len;
	}
	rd_kafka_resp_err_t err =
		t ? ev_kafka_produce(k->rk, t, partition, payload, len, key, keylen, ts, headers)
		  : rd_kafka_last_error();
	if (t && !rkt)
		rd_kafka_topic_destroy(t);
	if (err) {
		ev_error("cannot produce to '%s': %s", topic, rd_kafka_err2str(err));
		return -1;
	}
	return 0;
}

/* --subject: the id of the subject's latest version, from the registry. */
static int resolve_subject(struct kin *k)
{
	char err[512];
	const char *url = getenv("SCHEMA_REGISTRY_URL");
	if (!url || !*url) {
		ev_error("--subject '%s': SCHEMA_REGISTRY_URL is not set", k->subject);
		return -1;
	}
	ev_registry *r = ev_registry_new(url, NULL, 0, err, sizeof(err));
	ev_reg_schema s = {0};
	int rc = r ? ev_registry_fetch(r, k->subject, 0, 0, &s, err, sizeof(err)) : EV_REG_ERROR;
	ev_registry_free(r);
	if (rc != EV_REG_OK) {
		ev_error("--subject '%s': %s", k->subject, err);
		return -1;
	}
	k->schema_id = s.id;
	ev_info("framing messages with schema id %d (subject '%s' version %d)", s.id, k->subject,
		s.version);
	ev_reg_schema_clear(&s);
	return 0;
}

int kin_produce(struct kin *k)
{
	int rc = EV_EXIT_OK;
	uint64_t rejected = 0;
	ev_buf key = EV_BUF_INIT;
	ev_kafka_envelope env;
	memset(&env, 0, sizeof(env));

	if (k->subject && resolve_subject(k) < 0)
		return EV_EXIT_FAILURE;
	rd_kafka_conf_set_dr_msg_cb(k->kafka.conf, on_delivery);
	if (k->idempotence && kin_conf_set(k->kafka.conf, "enable.idempotence", "true") < 0)
		return EV_EXIT_FAILURE;
	if (kin_make_client(k, RD_KAFKA_PRODUCER) < 0 || kin_probe_brokers(k, NULL, NULL) < 0)
		return EV_EXIT_FAILURE;
	/* Every line read is a record in, blank and control lines too; control lines are passed
	 * over unchecked: they belong to the stream, not to the topic's data. */
	ev_stage_opts so = {.files = k->files,
			    .nfiles = k->nfiles,
			    .max_line = (size_t)k->max_line,
			    .metrics = k->metrics,
			    .flags = EV_STAGE_COUNT_EVERY_LINE | EV_STAGE_CONTROL_UNCHECKED};
	ev_stage *in = ev_stage_new(&so);
	rd_kafka_topic_t *rkt = k->ntopics ? rd_kafka_topic_new(k->rk, k->topics[0], NULL) : NULL;
	if (!in) {
		ev_error("out of memory");
		return EV_EXIT_FAILURE;
	}

	ev_stage_line l;
	int r;
	while (!ev_tool_stop_requested() && !k->fatal) {
		/* Serve delivery reports while the input is quiet, so metrics and failures stay
		 * current. */
		if ((r = ev_stage_wait(in, 100)) == 0) {
			rd_kafka_poll(k->rk, 0);
			continue;
		}
		if (r > 0)
			r = ev_stage_next(in, &l);
		if (r == 0)
			break;
		if (r < 0) {
			rc = EV_EXIT_FAILURE;
			break;
		}
		const char *line = l.data;
		size_t len = l.len;
		if (l.cls == EV_LINE_CONTROL) {
			ev_counter_inc(k->m_skipped_control);
			continue;
		}
		if (l.flags & EV_LINE_TOO_LONG) {
			ev_error("%s: %zu bytes is over --max-line-bytes %" PRIu64 ": not produced",
				 ev_stage_where(in), len, k->max_line);
			ev_counter_inc(k->m_rejected_too_long);
			rejected++;
			continue;
		}
		const void *kp = k->key;
		size_t kn = k->key ? strlen(k->key) : 0;
		int64_t ts = 0;
		int32_t partition = k->partition;
		const char *topic = k->ntopics ? k->topics[0] : NULL;
		const void *payload = line;
		size_t plen = len;
		int err = 0;
		if (k->json) {
			char msg[512];
			if (ev_kafka_envelope_parse(&env, line, len, msg, sizeof(msg)) < 0) {
				ev_error("%s: %s: not produced", ev_stage_where(in), msg);
				ev_counter_inc(k->m_rejected_envelope);
				rejected++;
				continue;
			}
			payload = env.payload;
			plen = env.payload_len;
			kp = env.key;
			kn = env.key_len;
			ts = env.ts;
			if (partition == RD_KAFKA_PARTITION_UA)
				partition = env.partition;
			if (!topic)
				topic = env.topic;
			if (!topic) {
				ev_error("%s: envelope has no topic and -t was not given: not "
					 "produced",
					 ev_stage_where(in));
				ev_counter_inc(k->m_rejected_envelope);
				rejected++;
				rd_kafka_headers_destroy(env.headers);
				env.headers = NULL;
				continue;
			}
			err = produce_one(k, k->ntopics ? rkt : NULL, topic, partition, payload,
					  plen, kp, kn, ts, &env.headers);
			if (env.headers) {
				rd_kafka_headers_destroy(env.headers);
				env.headers = NULL;
			}
		} else {
			if (k->key_field) {
				if (key_from_field(line, len, k->key_field, &key) == 0) {
					kp = key.data;
					kn = key.len;
				} else {
					kp = NULL;
					kn = 0;
				}
			}
			err = produce_one(k, rkt, topic, partition, payload, plen, kp, kn, 0, NULL);
		}
		if (err < 0) {
			rc = EV_EXIT_FAILURE;
			break;
		}
		/* Serve delivery reports now and then; each poll takes the queue's lock. */
		if ((l.lineno & 63) == 0)
			rd_kafka_poll(k->rk, 0);
	}
	if (ev_tool_stop_requested())
		ev_info("stopping on signal %d: flushing %d queued message(s)",
			ev_tool_stop_requested(), rd_kafka_outq_len(k->rk));
	/* Flush everything queued, even after a signal: what was read must be delivered. */
	ev_kafka_flush_all(k->rk);
	if (k->dl.failed) {
		ev_error("%" PRIu64 " of %" PRIu64 " message(s) failed delivery: %s", k->dl.failed,
			 k->dl.failed + k->dl.delivered, rd_kafka_err2str(k->dl.first_err));
		rc = EV_EXIT_FAILURE;
	}
	if (rejected) {
		ev_error("%" PRIu64 " line(s) were not produced (see above)", rejected);
		rc = EV_EXIT_FAILURE;
	}
	if (k->fatal)
		rc = EV_EXIT_FAILURE;
	ev_info("%" PRIu64 " line(s): %" PRIu64 " message(s) delivered, %" PRIu64
		" not produced; %" PRIu64 " blank and %" PRIu64 " control line(s) skipped",
		ev_counter_value(k->m_in), k->dl.delivered, rejected, ev_stage_blank(in),
		ev_counter_value(k->m_skipped_control));
	if (rkt)
		rd_kafka_topic_destroy(rkt);
	ev_stage_free(in);
	ev_kafka_envelope_free(&env);
	ev_buf_free(&key);
	ev_buf_free(&k->frame);
	return rc;
}
