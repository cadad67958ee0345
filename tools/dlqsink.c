/* dlqsink: write dead-letter envelopes to a Kafka topic or a file, and replay them. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ack.h"
#include "buf.h"
#include "checkpoint.h"
#include "claim.h"
#include "codec.h"
#include "control.h"
#include "deadletter.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "ndjson.h"
#include "opts.h"
#include "stage.h"
#include "timefmt.h"
#include "tool.h"

struct dlqsink {
	ev_ckpt ck;
	int replay;
	ev_kafka_opts kafka;
	const char *topic;
	const char *file;
	ev_buf reasons; /* --reason as ",a,b," for matching; empty: every reason */
	int64_t since, until;
	const char *claim_url;
	const char *ack_spec;
	ev_ack_out *ack;
	ev_tool_common common;
	char **files; /* the inputs (none: stdin) */
	size_t nfiles;

	ev_stage *stage;
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	int fd; /* file mode */
	ev_writer *out;
	ev_kafka_delivery dl;
	ev_metrics *metrics;
	ev_counter *m_out, *m_bad, *m_delivery_errors;
	ev_counter *m_claimed, *m_lost;
	ev_store *claim_own;       /* --claim-store */
	ev_store *claims;          /* claim_own, else the checkpoint store, else NULL */
	ev_buf raw;                /* the record being claim-checked or restored */
	struct oversize *oversize; /* refused by the broker as too large: sent again as claims */
	size_t noversize, capoversize;
	uint64_t replayed, skipped, unrecoverable, written;
	ev_log_limit not_envelope; /* warnings of lines that are not envelopes */
};

/* A message the broker refused as too large, with its key (the reason). */
struct oversize {
	ev_buf payload;
	char *key;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	struct dlqsink *d = opaque;
	(void)rk;
	if (msg->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
		/* Larger than the topic's max.message.bytes: sent again as a claim check. */
		if (d->noversize == d->capoversize) {
			size_t cap = d->capoversize ? 2 * d->capoversize : 8;
			struct oversize *o = realloc(d->oversize, cap * sizeof(*o));
			if (!o)
				goto failed;
			d->oversize = o;
			d->capoversize = cap;
		}
		struct oversize *o = &d->oversize[d->noversize];
		memset(o, 0, sizeof(*o));
		o->key = msg->key ? strndup(msg->key, msg->key_len) : strdup("unknown");
		if (!o->key || ev_buf_append(&o->payload, msg->payload, msg->len) < 0) {
			free(o->key);
			ev_buf_free(&o->payload);
			goto failed;
		}
		d->noversize++;
		return;
	}
failed:
	ev_kafka_delivery_note(&d->dl, msg);
	ev_counter_inc(msg->err ? d->m_delivery_errors : d->m_out);
}

/* line as a claim check into out: its original bytes (the whole line when it is not an
 * envelope) to the claim store. Returns 0, or -1 when they could not be stored. */
static int claim(struct dlqsink *d, const char *line, size_t len, ev_buf *out)
{
	char err[1024];
	json_t *env = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
	if (!json_is_object(env) || !ev_claim_raw(env, &d->raw)) {
		json_decref(env);
		env = json_pack("{s:s}", "reason", "unknown");
		ev_buf_reset(&d->raw);
		if (!env || ev_buf_append(&d->raw, line, len) < 0) {
			json_decref(env);
			ev_error("out of memory");
			return -1;
		}
	}
	if (ev_claim_check(env, &d->raw, d->claims, d->common.job, err, sizeof(err)) < 0) {
		ev_error("a dead letter of %zu bytes is too large for '%s', and its claim check "
			 "could not be stored: %s",
			 len, d->topic, err);
		json_decref(env);
		return -1;
	}
	const char *sha = json_string_value(json_object_get(env, "raw_sha256"));
	if (d->claims) {
		ev_counter_inc(d->m_claimed);
		ev_info("a dead letter of %zu bytes is too large for '%s': its original bytes are "
			"in '%s'",
			len, d->topic, json_string_value(json_object_get(env, "raw_ref")));
	} else {
		ev_counter_inc(d->m_lost);
		ev_error("a dead letter of %zu bytes is too large for '%s' and there is no claim "
			 "store (--claim-store): its original bytes (%zu, sha256 %s) are lost",
			 len, d->topic, d->raw.len, sha);
	}
	char *s = json_dumps(env, JSON_COMPACT);
	json_decref(env);
	ev_buf_reset(out);
	int rc = s && ev_buf_puts(out, s) == 0 ? 0 : -1;
	free(s);
	if (rc < 0)
		ev_error("out of memory");
	return rc;
}

/* Produce one envelope; one too large for librdkafka's message.max.bytes goes as a claim
 * check. Returns 0, or -1 when it could not be queued. */
static int produce_envelope(struct dlqsink *d, const char *line, size_t len, const char *key)
{
	rd_kafka_resp_err_t err = ev_kafka_produce(d->rk, d->rkt, RD_KAFKA_PARTITION_UA, line, len,
						   key, strlen(key), 0, NULL);
	if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
		ev_buf small = EV_BUF_INIT;
		if (claim(d, line, len, &small) < 0) {
			ev_buf_free(&small);
			return -1;
		}
		err = ev_kafka_produce(d->rk, d->rkt, RD_KAFKA_PARTITION_UA, small.data, small.len,
				       key, strlen(key), 0, NULL);
		ev_buf_free(&small);
	}
	rd_kafka_poll(d->rk, 0);
	if (err) {
		ev_error("cannot produce to '%s': %s", d->topic, rd_kafka_err2str(err));
		return -1;
	}
	return 0;
}

/* Send again, as claim checks, the envelopes the broker refused as too large. */
static int resend_oversize(struct dlqsink *d)
{
	ev_buf small = EV_BUF_INIT;
	int rc = 0;
	size_t n = d->noversize;
	struct oversize *list = d->oversize;
	d->oversize = NULL;
	d->noversize = d->capoversize = 0;
	for (size_t i = 0; i < n; i++) {
		struct oversize *o = &list[i];
		if (rc == 0 && claim(d, o->payload.data, o->payload.len, &small) == 0) {
			rd_kafka_resp_err_t err =
				ev_kafka_produce(d->rk, d->rkt, RD_KAFKA_PARTITION_UA, small.data,
						 small.len, o->key, strlen(o->key), 0, NULL);
			if (err) {
				ev_error("cannot produce to '%s': %s", d->topic,
					 rd_kafka_err2str(err));
				rc = -1;
			}
		} else {
			rc = -1;
		}
		free(o->key);
		ev_buf_free(&o->payload);
	}
	free(list);
	ev_buf_free(&small);
	return rc;
}

/* Make everything written so far durable: delivered to Kafka, or fsync'ed. */
static int make_durable(void *arg)
{
	struct dlqsink *d = arg;
	if (d->rk) {
		for (;;) {
			ev_kafka_flush_all(d->rk);
			if (!d->noversize)
				break;
			if (resend_oversize(d) < 0)
				return -1;
		}
		return d->dl.failed ? -1 : 0;
	}
	ev_stage_flush(d->stage);
	if (ev_writer_flush(d->out) < 0 || fsync(d->fd) < 0) {
		ev_error("cannot write '%s': %s", d->file, strerror(errno));
		return -1;
	}
	return 0;
}

/* The envelope's reason, the message key; NULL for a line that is not an envelope. */
static const char *envelope_reason(const char *line, size_t len, json_t **root)
{
	*root = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
	return json_string_value(json_object_get(*root, "reason"));
}

static int sink(struct dlqsink *d)
{
	ev_stage_line l;
	int r, rc = EV_EXIT_OK;
	ev_stage_output(d->stage, d->out, "file");
	while ((r = ev_stage_next(d->stage, &l)) != 0) {
		if (r < 0) {
			rc = EV_EXIT_FAILURE;
			break;
		}
		if (l.cls == EV_LINE_CONTROL) {
			if (l.control.type == EV_CTL_BARRIER &&
			    ev_stage_barrier(d->stage, &l.control, ev_mono_ns(), make_durable, d) <
				    0) {
				rc = EV_EXIT_FAILURE;
				break;
			}
			continue;
		}
		json_t *root;
		const char *reason = envelope_reason(l.data, l.len, &root);
		if (!reason) {
			/* Still kept: a dead-letter sink never drops what it is given. */
			ev_counter_inc(d->m_bad);
			ev_log_limited(&d->not_envelope, EV_LOG_WARN,
				       "%s is not a dead-letter envelope; kept as it is",
				       ev_stage_where(d->stage));
		}
		if (d->rk) {
			if (produce_envelope(d, l.data, l.len, reason ? reason : "unknown") < 0 ||
			    (d->noversize && resend_oversize(d) < 0)) {
				json_decref(root);
				rc = EV_EXIT_FAILURE;
				break;
			}
		} else {
			if (ev_writer_line(d->out, l.data, l.len) < 0) {
				ev_error("cannot write '%s': %s", d->file, strerror(errno));
				json_decref(root);
				rc = EV_EXIT_FAILURE;
				break;
			}
			ev_counter_inc(d->m_out);
			d->written++;
		}
		json_decref(root);
	}
	if (make_durable(d) < 0)
		rc = EV_EXIT_FAILURE;
	ev_log_limit_end(&d->not_envelope, EV_LOG_WARN, "lines that are not envelopes");
	if (d->dl.failed)
		ev_error("%" PRIu64 " of %" PRIu64 " dead letter(s) failed delivery: %s",
			 d->dl.failed, d->dl.failed + d->dl.delivered,
			 rd_kafka_err2str(d->dl.first_err));
	ev_info("%" PRIu64 " line(s): %" PRIu64 " %s '%s' (%" PRIu64
		" not dead-letter envelopes, kept as they are); %" PRIu64 " blank line(s) skipped",
		ev_stage_records(d->stage), d->rk ? d->dl.delivered : d->written,
		d->rk ? "delivered to" : "written to", d->rk ? d->topic : d->file,
		d->not_envelope.total, ev_stage_blank(d->stage));
	return rc;
}

static int reason_wanted(const struct dlqsink *d, const char *reason)
{
	if (!d->reasons.len)
		return 1;
	if (!reason)
		return 0;
	size_t n = strlen(reason);
	for (const char *p = d->reasons.data; (p = strstr(p, reason)) != NULL; p++)
		if (p[-1] == ',' && p[n] == ',')
			return 1;
	return 0;
}

/* Replay one envelope: write its original record when it passes the filters. Returns 0, or
 * -1 when stdout fails. */
static int replay_one(struct dlqsink *d, const char *line, size_t len, const char *where)
{
	json_t *root = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
	const char *reason = json_string_value(json_object_get(root, "reason"));
	json_t *at = json_object_get(root, "at");
	int is_claim = json_object_get(root, "raw_ref") != NULL;
	int lost = json_is_true(json_object_get(root, "raw_lost"));
	int rc = 0;
	char err[1024];
	const char *sha = json_string_value(json_object_get(root, "raw_sha256"));
	if (!is_claim && !lost && !ev_claim_raw(root, &d->raw)) {
		ev_log_limited(&d->not_envelope, EV_LOG_WARN,
			       "%s is not a dead-letter envelope: skipped", where);
		d->skipped++;
	} else if (reason_wanted(d, reason) &&
		   (!json_is_integer(at) ||
		    (json_integer_value(at) >= d->since && json_integer_value(at) < d->until))) {
		if (lost) {
			ev_error("%s: the original bytes of this dead letter were not kept (sha256 "
				 "%s): it cannot be replayed",
				 where, sha ? sha : "unknown");
			d->unrecoverable++;
		} else if (is_claim &&
			   ev_claim_resolve(root, d->claims, &d->raw, err, sizeof(err)) < 0) {
			ev_error("%s: %s", where, err);
			d->unrecoverable++;
		} else {
			rc = ev_writer_line(d->out, d->raw.data, d->raw.len);
			d->replayed++;
		}
	}
	json_decref(root);
	return rc;
}

static int replay_message(void *arg, const rd_kafka_message_t *msg)
{
	char where[512];
	if (msg->len == 0 || ev_control_is(msg->payload, msg->len))
		return 0;
	snprintf(where, sizeof(where), "%s [%d] offset %" PRId64, rd_kafka_topic_name(msg->rkt),
		 (int)msg->partition, msg->offset);
	return replay_one(arg, msg->payload ? msg->payload : "", msg->len, where);
}

static int replay_topic(struct dlqsink *d)
{
	char err[512], gid[64];
	rd_kafka_conf_t *conf = d->kafka.conf;
	d->kafka.conf = NULL;
	snprintf(gid, sizeof(gid), "dlqsink-replay-%ld", (long)getpid());
	if (ev_kafka_conf_set(conf, "bootstrap.servers", d->kafka.brokers, 0, err, sizeof(err)) <
		    0 ||
	    ev_kafka_conf_set(conf, "group.id", gid, 0, err, sizeof(err)) < 0 ||
	    ev_kafka_conf_set(conf, "enable.auto.commit", "false", 0, err, sizeof(err)) < 0 ||
	    ev_kafka_conf_set(conf, "enable.partition.eof", "true", 0, err, sizeof(err)) < 0) {
		ev_error("%s", err);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	ev_kafka_conf_logging(conf);
	d->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!d->rk) {
		ev_error("cannot create Kafka consumer: %s", err);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	rd_kafka_poll_set_consumer(d->rk);
	if (ev_kafka_read_all(d->rk, d->topic, (int)d->kafka.timeout_ms, replay_message, d, err,
			      sizeof(err)) < 0) {
		ev_error("%s", err);
		return -1;
	}
	return 0;
}

static int replay_stream(struct dlqsink *d)
{
	ev_stage_line l;
	int r;
	while ((r = ev_stage_next(d->stage, &l)) > 0)
		if (l.cls == EV_LINE_RECORD &&
		    replay_one(d, l.data, l.len, ev_stage_where(d->stage)) < 0)
			return -1; /* reported by replay */
	return r;
}

static int replay(struct dlqsink *d)
{
	int rc = d->topic ? replay_topic(d) : replay_stream(d);
	if (ev_writer_flush(d->out) < 0 && ev_stage_write_failed(d->stage, "standard output") < 0)
		rc = -1;
	ev_log_limit_end(&d->not_envelope, EV_LOG_WARN, "lines that are not envelopes");
	ev_info("%" PRIu64 " record(s) replayed%s", d->replayed,
		d->skipped ? " (some lines were not envelopes)" : "");
	if (d->unrecoverable) {
		ev_error("%" PRIu64 " dead letter(s) could not be replayed", d->unrecoverable);
		rc = -1;
	}
	if (d->rk)
		rd_kafka_consumer_close(d->rk);
	return rc < 0 ? EV_EXIT_FAILURE : EV_EXIT_OK;
}

/* --reason LIST: each a reason some tool writes, kept as ",a,b," for reason_wanted. Returns 0,
 * or the exit code after a message (a usage error lists the known reasons). */
static int add_reasons(struct dlqsink *d, const char *list)
{
	for (const char *p = list;; p++) {
		size_t n = strcspn(p, ",");
		if (!ev_deadletter_reason_known(p, n)) {
			ev_buf known = EV_BUF_INIT;
			for (const char *const *r = ev_deadletter_reasons; *r; r++)
				ev_buf_printf(&known, "%s%s", known.len ? ", " : "", *r);
			int rc = ev_tool_usage_error("unknown reason '%.*s' (known: %s)", (int)n, p,
						     ev_buf_cstr(&known));
			ev_buf_free(&known);
			return rc;
		}
		if (ev_buf_puts(&d->reasons, d->reasons.len ? "" : ",") < 0 ||
		    ev_buf_append(&d->reasons, p, n) < 0 || ev_buf_putc(&d->reasons, ',') < 0) {
			ev_error("out of memory");
			return EV_EXIT_FAILURE;
		}
		p += n;
		if (!*p)
			return 0;
	}
}

static int opt_reason(const ev_option *o, char *arg, char *err, size_t errlen)
{
	(void)err, (void)errlen;
	return add_reasons(o->value, arg);
}

static int parse_args(struct dlqsink *d, int argc, char **argv)
{
	const ev_option options[] = {
		EV_OPT_TEXT(
			"usage: dlqsink -b BROKERS -t TOPIC [options] [FILE...]    to a Kafka topic\n"
			"       dlqsink --file PATH [options] [FILE...]            appended to a file\n"
			"       dlqsink replay [-t TOPIC | --file PATH | FILE...] [filters] > records\n"
			"\n"
			"Writes the dead-letter envelopes of evvalidate, evwindow and chsink (read from the FILEs\n"
			"in order, - for stdin, or stdin) to their final place:\n"
			"a Kafka topic (keyed by reason, idempotent producer) or a file (appended, fsync'ed). On a\n"
			"barrier control line everything before it is made durable first. Exit 1 when an envelope\n"
			"could not be written.\n"
			"\n"
			"An envelope too large for the topic (librdkafka's message.max.bytes, or the topic's\n"
			"max.message.bytes when the broker refuses it) is never a failure: its original bytes go\n"
			"to the claim store under <job>/claims/<sha256>, and the envelope goes to the topic with\n"
			"\"raw_ref\", \"raw_sha256\" and \"raw_bytes\" in place of \"raw\". Without a claim store those\n"
			"bytes are lost: the envelope keeps the hash and size with \"raw_lost\":true, and an\n"
			"error is logged and counted (evpipe_dead_letters_oversize_total).\n"
			"\n"
			"replay reads envelopes (a topic from its beginning to its end, --file, or stdin) and writes\n"
			"each one's original record (raw, or raw_b64 decoded) to stdout, so that records can be\n"
			"re-injected after a fix: dlqsink replay -t events.dlq --reason schema | kin -P -t events\n"
			"A claim check is fetched from the claim store and its size and sha256 verified; one that\n"
			"cannot be (no store given, missing, altered, or bytes that were lost) is reported and\n"
			"makes the exit status 1, after the other records are replayed.\n"
			"\n"
			"Options:\n"),
		EV_OPT_STRING('t', "topic", "TOPIC", &d->topic,
			      "dead-letter topic (write, or replay)"),
		EV_OPT_STRING('f', "file", "PATH", &d->file,
			      "dead-letter file (write: appended; replay: read)"),
		EV_OPT_STRING(0, "claim-store", "URL", &d->claim_url,
			      "where the original bytes of envelopes too large for the\n"
			      "topic go, and replay finds them: file:///dir or\n"
			      "s3://bucket/prefix (default: the --checkpoint-store)"),
		EV_OPTS_KAFKA(&d->kafka),
		EV_OPTS_CKPT(&d->ck),
		EV_OPT_ACK_SPEC(&d->ack_spec),
		EV_OPTS_PROGRESS(),
		EV_OPTS_COMMON(&d->common),
		EV_OPT_TEXT("\n"
			    "Replay filters:\n"),
		EV_OPT_CALLBACK(0, "reason", "LIST", d, opt_reason,
				"only these reasons (comma-separated; a reason no tool\n"
				"writes is refused)"),
		EV_OPT_TIME(0, "since", "TIME", &d->since,
			    "only dead letters at or after TIME (epoch ms or RFC 3339)"),
		EV_OPT_TIME(0, "until", "TIME", &d->until, "only dead letters before TIME"),
		EV_OPT_TEXT(
			"\n"
			"Exit status: 0 ok, 1 runtime failure (I/O, delivery, an impossible control line: ADR\n"
			"0013), 2 usage error.\n"),
		EV_OPT_END(),
	};

	if (argc > 1 && strcmp(argv[1], "replay") == 0) {
		d->replay = 1;
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	int rc = ev_tool_parse(options, argc, argv);
	if (rc != 0)
		return rc;
	d->files = argv + optind;
	d->nfiles = (size_t)(argc - optind);
	if (d->replay && d->nfiles && (d->file || d->topic))
		return ev_tool_usage_error(
			"replay reads -t, --file or the FILE arguments, not two");
	if (d->replay && d->file) {
		d->files = (char **)&d->file;
		d->nfiles = 1;
	}
	if (d->file && d->topic)
		return ev_tool_usage_error("--file and -t exclude each other");
	if (d->topic && ev_kafka_opts_brokers(&d->kafka) < 0)
		return ev_tool_usage_error("no brokers: give -b or set KAFKA_BROKERS");
	if (d->replay)
		return 0;
	if (d->reasons.len || d->since != INT64_MIN || d->until != INT64_MAX)
		return ev_tool_usage_error("--reason, --since and --until are replay options");
	if (!d->file && !d->topic)
		return ev_tool_usage_error("give -t TOPIC (with -b) or --file PATH");
	return 0;
}

static int open_sink(struct dlqsink *d)
{
	char err[512];
	if (d->file) {
		d->fd = open(d->file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (d->fd < 0) {
			ev_error("cannot open '%s': %s", d->file, strerror(errno));
			return -1;
		}
		d->out = ev_writer_new(d->fd, 64 * 1024);
		return d->out ? 0 : -1;
	}
	rd_kafka_conf_t *conf = d->kafka.conf;
	d->kafka.conf = NULL;
	if (ev_kafka_conf_set(conf, "bootstrap.servers", d->kafka.brokers, 0, err, sizeof(err)) <
		    0 ||
	    ev_kafka_conf_set(conf, "enable.idempotence", "true", 0, err, sizeof(err)) < 0) {
		ev_error("%s", err);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	ev_kafka_conf_logging(conf);
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_opaque(conf, d);
	d->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!d->rk) {
		ev_error("cannot create Kafka producer: %s", err);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	if (ev_kafka_probe(d->rk, &d->kafka, NULL, NULL, err, sizeof(err)) < 0) {
		ev_error("%s", err);
		return -1;
	}
	d->rkt = rd_kafka_topic_new(d->rk, d->topic, NULL);
	return d->rkt ? 0 : -1;
}

static void setup_metrics(struct dlqsink *d)
{
	ev_metrics *m = d->metrics;
	d->m_out = ev_tool_records_out(m);
	d->m_bad =
		ev_metrics_counter(m, "evpipe_records_invalid_envelope_total",
				   "Lines that were not dead-letter envelopes (kept as they are)",
				   NULL);
	d->m_delivery_errors = ev_metrics_counter(m, "evpipe_kafka_delivery_errors_total",
						  "Messages that could not be delivered", NULL);
	d->m_claimed = ev_metrics_counter(
		m, "evpipe_dead_letters_oversize_total",
		"Envelopes too large for the topic, by outcome: claim_check (original bytes in the "
		"claim store) or raw_lost (no claim store)",
		"outcome=\"claim_check\"");
	d->m_lost = ev_metrics_counter(
		m, "evpipe_dead_letters_oversize_total",
		"Envelopes too large for the topic, by outcome: claim_check (original bytes in the "
		"claim store) or raw_lost (no claim store)",
		"outcome=\"raw_lost\"");
}

int main(int argc, char **argv)
{
	struct dlqsink d;
	memset(&d, 0, sizeof(d));
	d.since = INT64_MIN;
	d.until = INT64_MAX;
	d.common.job = "evpipe";
	d.fd = -1;

	ev_tool_init("dlqsink");
	char err[512];
	int rc = ev_kafka_opts_init(&d.kafka, err, sizeof(err)) < 0 ? ev_tool_usage_error("%s", err)
								    : parse_args(&d, argc, argv);
	if (rc != 0) {
		rd_kafka_conf_destroy(d.kafka.conf);
		ev_buf_free(&d.reasons);
		return rc < 0 ? ev_tool_finish(EV_EXIT_OK) : rc;
	}
	if (d.topic)
		ev_ckpt_set_identity(&d.ck, json_pack("{s:s}", "topic", d.topic));
	if (ev_ckpt_open(&d.ck, d.common.job, "dlqsink", err, sizeof(err)) < 0 ||
	    ev_ckpt_stateless_restore(&d.ck, err, sizeof(err)) < 0) {
		ev_error("checkpoints: %s", err);
		rd_kafka_conf_destroy(d.kafka.conf);
		ev_buf_free(&d.reasons);
		ev_ckpt_close(&d.ck);
		return EV_EXIT_FAILURE;
	}
	if (d.claim_url && !(d.claim_own = ev_store_open(d.claim_url, err, sizeof(err)))) {
		ev_error("claim store: %s", err);
		rd_kafka_conf_destroy(d.kafka.conf);
		ev_buf_free(&d.reasons);
		ev_ckpt_close(&d.ck);
		return EV_EXIT_FAILURE;
	}
	d.claims = d.claim_own ? d.claim_own : d.ck.store;
	if (d.ack_spec && !(d.ack = ev_ack_out_new(d.ack_spec, err, sizeof(err)))) {
		ev_error("--ack: %s", err);
		rd_kafka_conf_destroy(d.kafka.conf);
		ev_buf_free(&d.reasons);
		ev_ckpt_close(&d.ck);
		ev_store_close(d.claim_own);
		return EV_EXIT_FAILURE;
	}
	d.metrics = ev_tool_metrics("dlqsink", d.common.job, d.common.metrics_addr);
	if (!d.metrics) {
		rd_kafka_conf_destroy(d.kafka.conf);
		ev_ckpt_close(&d.ck);
		ev_buf_free(&d.reasons);
		return EV_EXIT_FAILURE;
	}
	ev_stage_opts so = {.files = d.files,
			    .nfiles = d.nfiles,
			    .ck = d.replay ? NULL : &d.ck, /* a replay has no torn lines */
			    .ack = d.ack,
			    .metrics = d.metrics,
			    .flags = d.replay ? EV_STAGE_CONTROL_UNCHECKED : EV_STAGE_SINK};
	if (!(d.stage = ev_stage_new(&so))) {
		rc = EV_EXIT_FAILURE;
	} else if (d.replay) {
		setup_metrics(&d);
		ev_ckpt_metrics(&d.ck, d.metrics);
		ev_tool_catch_signals();
		ev_tool_progress(d.metrics);
		d.out = ev_writer_new(1, 64 * 1024);
		ev_stage_output(d.stage, d.out, "stdout");
		rc = replay(&d);
	} else {
		setup_metrics(&d);
		ev_ckpt_metrics(&d.ck, d.metrics);
		ev_tool_catch_signals();
		ev_tool_progress(d.metrics);
		rc = open_sink(&d) < 0 ? EV_EXIT_FAILURE : sink(&d);
	}
	ev_writer_free(d.out);
	if (d.fd >= 0)
		close(d.fd);
	if (d.kafka.conf)
		rd_kafka_conf_destroy(d.kafka.conf);
	if (d.rkt)
		rd_kafka_topic_destroy(d.rkt);
	if (d.rk)
		rd_kafka_destroy(d.rk);
	ev_tool_metrics_free(d.metrics);
	ev_ckpt_close(&d.ck);
	ev_store_close(d.claim_own);
	ev_ack_out_free(d.ack);
	ev_buf_free(&d.raw);
	ev_buf_free(&d.reasons);
	return ev_stage_exit(d.stage, rc);
}
