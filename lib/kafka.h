/* SPDX-License-Identifier: Apache-2.0 */
/* kafka.h: librdkafka configuration from options and files, kin's message envelope. */
#ifndef EV_KAFKA_H
#define EV_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "opts.h"

typedef struct ev_kafka_opts {
	const char *brokers;
	rd_kafka_conf_t *conf; /* owned until a client takes it */
	int64_t timeout_ms;
	unsigned given; /* which of the properties a tool tunes the user set (-X, -F, file) */
} ev_kafka_opts;

/* A new configuration with $EVPIPE_KAFKA_CONFIG applied, and the default timeout. Returns 0,
 * or -1 with a message in err. */
int ev_kafka_opts_init(ev_kafka_opts *o, char *err, size_t errlen);
/* The options -X K=V and -F FILE (EV_OPTS_KAFKA in opts.h, o->value an ev_kafka_opts): set a
 * property, secrets refused, or those of a file. Return 0, or -1 with a message in err. */
int ev_kafka_opt_property(const ev_option *o, char *arg, char *err, size_t errlen);
int ev_kafka_opt_file(const ev_option *o, char *arg, char *err, size_t errlen);
/* A tool's own default for a property, where librdkafka's does not suit it: set unless the
 * user gave the property a value (-X, -F, $EVPIPE_KAFKA_CONFIG). key must be one of those
 * lib/kafka.c knows as tuned. Returns 0, or -1 with a message in err. */
int ev_kafka_opts_default(ev_kafka_opts *o, const char *key, const char *val, char *err,
			  size_t errlen);
/* After parsing: the brokers, from $KAFKA_BROKERS when -b was not given. Returns 0, or -1 when
 * there are none. */
int ev_kafka_opts_brokers(ev_kafka_opts *o);
/* Wait until the cluster answers (a metadata request, of rkt's topic or all topics), so that
 * unreachable brokers are an error after the timeout, not a hang. *md, when md is not NULL,
 * is for the caller to destroy. Returns 0, or -1 with a message in err. */
int ev_kafka_probe(rd_kafka_t *rk, const ev_kafka_opts *o, rd_kafka_topic_t *rkt,
		   const struct rd_kafka_metadata **md, char *err, size_t errlen);

/* Route librdkafka's own log lines through ev_log (debug level: its errors reach the user
 * through the error callback and the tools' messages). */
void ev_kafka_conf_logging(rd_kafka_conf_t *conf);

/* Set one property. from_argv refuses secrets (passwords, keys) so that they never sit on
 * a command line. Returns 0, or -1 with a message in err. */
int ev_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *val, int from_argv,
		      char *err, size_t errlen);
/* Set "key=value" (as given to -X). */
int ev_kafka_conf_set_pair(rd_kafka_conf_t *conf, const char *pair, int from_argv, char *err,
			   size_t errlen);
/* The properties of conf as kcat -X dump shows them ("# Global config", "key = value" lines,
 * "# Topic config", ...), the values of secrets as [redacted]. Returns 0, or -1 when out of
 * memory. */
int ev_kafka_conf_dump(rd_kafka_conf_t *conf, ev_buf *out);
/* Read a properties file: key=value lines, '#' comments, blank lines. */
int ev_kafka_conf_file(rd_kafka_conf_t *conf, const char *path, char *err, size_t errlen);

/* A message as kin's JSON envelope (-J), compatible with kcat's -J fields: topic,
 * partition, offset, tstype, ts, broker, headers (array of alternating name, value),
 * key, payload. Bytes that are not UTF-8 go to key_b64 / payload_b64 (and headers as
 * {"b64":...}); a NULL key or payload is null. */
int ev_kafka_envelope_format(ev_buf *out, const rd_kafka_message_t *msg);
/* The fields of a message that its envelope holds. */
typedef struct ev_kafka_record {
	const char *topic;
	int32_t partition;
	int64_t offset;
	const char *tstype; /* "create", "logappend" or "none" */
	int64_t ts;
	int32_t broker;
	const rd_kafka_headers_t *headers; /* NULL: none */
	const void *key;                   /* NULL: a null key */
	size_t key_len;
	const void *payload; /* NULL: a null payload */
	size_t len;
} ev_kafka_record;
/* The envelope of r, as ev_kafka_envelope_format writes it for a message. */
int ev_kafka_envelope_write(ev_buf *out, const ev_kafka_record *r);
/* The fields of msg; its headers only when headers is set (reading them costs a parse). */
void ev_kafka_record_of(ev_kafka_record *r, const rd_kafka_message_t *msg, int headers);

/* An envelope parsed back for producing. Pointers are into the buffers of the struct
 * (valid until the next parse or free). */
typedef struct ev_kafka_envelope {
	const char *topic; /* NULL when absent */
	int32_t partition; /* RD_KAFKA_PARTITION_UA when absent */
	int64_t ts;        /* 0 when absent */
	const char *key;   /* NULL: null key */
	size_t key_len;
	const char *payload; /* NULL: null payload */
	size_t payload_len;
	rd_kafka_headers_t *headers; /* NULL when none; ownership passes to the caller */
	/* private */
	ev_buf keybuf, payloadbuf, topicbuf;
} ev_kafka_envelope;

/* Parse one envelope line. Returns 0, or -1 with a message in err: not a JSON object, no
 * payload, a field of the wrong kind, a topic or header name holding a NUL (a C string to
 * librdkafka, it would be cut there). */
int ev_kafka_envelope_parse(ev_kafka_envelope *env, const char *line, size_t len, char *err,
			    size_t errlen);
void ev_kafka_envelope_free(ev_kafka_envelope *env);

/* Delivery accounting of a producer; call ev_kafka_delivery_note from the dr_msg_cb. */
typedef struct ev_kafka_delivery {
	uint64_t delivered;
	uint64_t failed;
	rd_kafka_resp_err_t first_err;
} ev_kafka_delivery;

void ev_kafka_delivery_note(ev_kafka_delivery *d, const rd_kafka_message_t *msg);

/* Produce a copy of one message. While librdkafka's local queue is full it serves delivery
 * reports and waits, so a fast input is slowed down rather than failed; once a stop signal
 * came (ev_tool_stop_requested), for at most stop_ms more (brokers down would hold the queue
 * for message.timeout.ms), then RD_KAFKA_RESP_ERR__QUEUE_FULL. headers, when not NULL, pass
 * to the message on success (*headers is set to NULL). Returns the error of a message that
 * could not be queued. */
rd_kafka_resp_err_t ev_kafka_produce(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int32_t partition,
				     const void *payload, size_t len, const void *key,
				     size_t keylen, int64_t ts, rd_kafka_headers_t **headers,
				     int stop_ms);

/* Wait until every queued message is delivered or failed; once a stop signal came, for at most
 * stop_ms more. Returns the messages still queued (0: all delivered or failed). */
int ev_kafka_flush_all(rd_kafka_t *rk, int stop_ms);

/* Read every partition of topic from its beginning to its end as it was when reading started,
 * calling fn for each message; a non-zero return of fn stops. The consumer must be created
 * with enable.partition.eof=true and its queue made the poll queue. Returns 0, or -1 with a
 * message in err. */
int ev_kafka_read_all(rd_kafka_t *consumer, const char *topic, int timeout_ms,
		      int (*fn)(void *arg, const rd_kafka_message_t *msg), void *arg, char *err,
		      size_t errlen);

/* The largest record batch the brokers accept for topic, the limit of every message
 * produced to it: the topic's max.message.bytes, or, for a topic that does not exist yet,
 * the broker's message.max.bytes (what an auto-created topic gets), read with the Admin API
 * (DescribeConfigs) within timeout_ms. Returns 0 with *max set, or -1 with a message in err
 * (no answer, or the configuration may not be described). */
int ev_kafka_max_message_bytes(rd_kafka_t *rk, const char *topic, int timeout_ms, int64_t *max,
			       char *err, size_t errlen);

/* Call fn(topic, partition, lag) for every partition of a librdkafka statistics JSON document
 * (statistics.interval.ms) whose lag is known: the partition's end minus the consumer's
 * position, as Kafka's records-lag. Returns 0, or -1 when it does not parse. */
int ev_kafka_stats_lag(const char *json, size_t len,
		       void (*fn)(void *arg, const char *topic, int32_t partition, int64_t lag),
		       void *arg);

#endif
