/* SPDX-License-Identifier: Apache-2.0 */
/* kin: consume Kafka topics to NDJSON on stdout, produce stdin lines to Kafka (kcat-like).
 * This file: options, set-up shared by the modes, and main. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kin.h"
#include "log.h"
#include "opts.h"

struct part *kin_part_find(struct kin *k, const char *topic, int32_t partition, int create)
{
	if (k->last_part < k->nparts && k->parts[k->last_part].partition == partition &&
	    strcmp(k->parts[k->last_part].topic, topic) == 0)
		return &k->parts[k->last_part];
	for (size_t i = 0; i < k->nparts; i++)
		if (k->parts[i].partition == partition && strcmp(k->parts[i].topic, topic) == 0) {
			k->last_part = i;
			return &k->parts[i];
		}
	if (!create)
		return NULL;
	if (k->nparts == k->capparts) {
		size_t cap = k->capparts ? k->capparts * 2 : 16;
		struct part *p = realloc(k->parts, cap * sizeof(*p));
		if (!p)
			return NULL;
		k->parts = p;
		k->capparts = cap;
	}
	struct part *p = &k->parts[k->nparts];
	memset(p, 0, sizeof(*p));
	p->topic = strdup(topic);
	if (!p->topic)
		return NULL;
	p->partition = partition;
	p->pending = -1;
	p->written = -1;
	p->start = -1;
	k->last_part = k->nparts++;
	return p;
}

void kin_parts_clear(struct kin *k)
{
	for (size_t i = 0; i < k->nparts; i++)
		free(k->parts[i].topic);
	k->nparts = 0;
	k->last_part = 0;
}

static int parse_offset(struct kin *k, const char *s)
{
	int64_t v;
	if (strcmp(s, "beginning") == 0)
		k->start = START_BEGINNING;
	else if (strcmp(s, "end") == 0)
		k->start = START_END;
	else if (strcmp(s, "stored") == 0)
		k->start = START_STORED;
	else if (strncmp(s, "s@", 2) == 0 && ev_opt_int(s + 2, 0, INT64_MAX, &v) == 0) {
		k->start = START_TIME;
		k->start_value = v;
	} else if (strncmp(s, "e@", 2) == 0 && ev_opt_int(s + 2, 0, INT64_MAX, &v) == 0)
		k->end_ts = v;
	else if (s[0] == '-' && ev_opt_int(s + 1, 1, INT64_MAX, &v) == 0) {
		k->start = START_TAIL;
		k->start_value = v;
	} else if (ev_opt_int(s, 0, INT64_MAX, &v) == 0) {
		k->start = START_ABS;
		k->start_value = v;
	} else
		return -1;
	return 0;
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct kin *k = opaque;
	(void)rk;
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char buf[512];
		rd_kafka_fatal_error(rk, buf, sizeof(buf));
		ev_error("fatal Kafka error: %s", buf);
		k->fatal = 1;
		return;
	}
	/* Transient by librdkafka's design: it reconnects and retries by itself. */
	ev_log(err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ? EV_LOG_WARN : EV_LOG_DEBUG, "%s: %s",
	       rd_kafka_err2str(err), reason);
}

static void on_lag(void *arg, const char *topic, int32_t partition, int64_t lag)
{
	struct kin *k = arg;
	struct part *p = kin_part_find(k, topic, partition, 0);
	ev_debug("lag of %s [%d]: %lld%s", topic, (int)partition, (long long)lag,
		 p ? "" : " (not assigned)");
	if (!p)
		return;
	if (!p->lag) {
		char labels[512];
		snprintf(labels, sizeof(labels), "topic=\"%s\",partition=\"%d\"", topic,
			 (int)partition);
		p->lag = ev_metrics_gauge(
			k->metrics, "evpipe_kafka_consumer_lag",
			"Messages between the consumer's position and the partition's end", labels);
	}
	ev_gauge_set(p->lag, (double)lag);
}

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	(void)rk;
	if (ev_kafka_stats_lag(json, len, on_lag, opaque) < 0)
		ev_debug("cannot parse librdkafka statistics");
	return 0;
}

int kin_probe_brokers(struct kin *k, const struct rd_kafka_metadata **md, rd_kafka_topic_t *rkt)
{
	char err[512];
	if (ev_kafka_probe(k->rk, &k->kafka, rkt, md, err, sizeof(err)) < 0) {
		ev_error("%s", err);
		return -1;
	}
	return 0;
}

int kin_conf_set(rd_kafka_conf_t *conf, const char *key, const char *val)
{
	char err[512];
	if (ev_kafka_conf_set(conf, key, val, 0, err, sizeof(err)) < 0) {
		ev_error("%s", err);
		return -1;
	}
	return 0;
}

int kin_make_client(struct kin *k, rd_kafka_type_t type)
{
	char err[512];
	rd_kafka_conf_t *conf = k->kafka.conf;
	k->kafka.conf = NULL;
	if (kin_conf_set(conf, "bootstrap.servers", k->kafka.brokers) < 0)
		return -1;
	if (k->common.metrics_addr) {
		char v[32];
		size_t n = sizeof(v);
		if (rd_kafka_conf_get(conf, "statistics.interval.ms", v, &n) == RD_KAFKA_CONF_OK &&
		    strcmp(v, "0") == 0 && kin_conf_set(conf, "statistics.interval.ms", "5000") < 0)
			return -1;
		rd_kafka_conf_set_stats_cb(conf, on_stats);
	}
	rd_kafka_conf_set_error_cb(conf, on_error);
	ev_kafka_conf_logging(conf);
	rd_kafka_conf_set_opaque(conf, k);
	k->rk = rd_kafka_new(type, conf, err, sizeof(err));
	if (!k->rk) {
		ev_error("cannot create Kafka client: %s", err);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	return 0;
}

static void setup_metrics(struct kin *k)
{
	ev_metrics *m = k->metrics;
	k->m_in = ev_tool_records_in(m);
	k->m_out = ev_tool_records_out(m);
	k->m_bytes_in = ev_tool_bytes_in(m);
	k->m_bytes_out =
		ev_metrics_counter(m, "evpipe_bytes_out_total", "Payload bytes written", NULL);
	k->m_blocked = ev_tool_blocked(m, "stdout");
	k->m_skipped_control = ev_tool_skipped(m, "control");
	ev_tool_control_lines(m); /* -P's input; one set of series in every mode */
	k->m_rejected_too_long =
		ev_metrics_counter(m, "evpipe_records_rejected_total",
				   "Input lines refused, by reason", "reason=\"too_long\"");
	k->m_rejected_envelope =
		ev_metrics_counter(m, "evpipe_records_rejected_total",
				   "Input lines refused, by reason", "reason=\"envelope\"");
	k->m_rejected_newline = ev_metrics_counter(
		m, "evpipe_payloads_rejected_total",
		"Consumed payloads written as a rejected record (for evvalidate to dead-letter), by "
		"reason",
		"reason=\"embedded_newline\"");
	k->m_rejected_reserved = ev_metrics_counter(
		m, "evpipe_payloads_rejected_total",
		"Consumed payloads written as a rejected record (for evvalidate to dead-letter), by "
		"reason",
		"reason=\"reserved\"");
	k->m_rejected_schema_id = ev_metrics_counter(
		m, "evpipe_payloads_rejected_total",
		"Consumed payloads written as a rejected record (for evvalidate to dead-letter), by "
		"reason",
		"reason=\"schema_id\"");
	k->m_delivery_errors = ev_metrics_counter(m, "evpipe_kafka_delivery_errors_total",
						  "Messages that could not be delivered", NULL);
	k->m_rebalances = ev_metrics_counter(m, "evpipe_kafka_rebalances_total",
					     "Consumer group rebalances (assign and revoke)", NULL);
	k->m_stale = ev_metrics_counter(m, "evpipe_records_skipped_total",
					"Input lines skipped, by reason", "reason=\"stale\"");
	k->m_owned = ev_metrics_gauge(m, "evpipe_kafka_partitions_assigned",
				      "Partitions assigned to this consumer", NULL);
	static const double wait_bounds[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
	k->m_handover_wait = ev_metrics_histogram(
		m, "evpipe_handover_wait_seconds",
		"From a revoke line to the checkpoint after it complete: the partitions' hand-over",
		NULL, wait_bounds, sizeof(wait_bounds) / sizeof(wait_bounds[0]));
	k->m_handover_timeouts = ev_metrics_counter(
		m, "evpipe_handover_timeouts_total",
		"Hand-overs whose checkpoint did not complete in time (kin then exits 1)", NULL);
}

static int opt_mode(const ev_option *o, char *arg, char *err, size_t errlen)
{
	struct kin *k = o->value;
	(void)arg;
	if (k->mode && k->mode != o->short_name) {
		snprintf(err, errlen, "-C, -P, -L and -Q exclude each other");
		return -1;
	}
	k->mode = o->short_name;
	return 0;
}

static int add_topic(struct kin *k, const char *topic, char *err, size_t errlen)
{
	if (k->ntopics == MAX_TOPICS) {
		snprintf(err, errlen, "at most %d topics", MAX_TOPICS);
		return -1;
	}
	k->topics[k->ntopics++] = topic;
	return 0;
}

static int opt_topic(const ev_option *o, char *arg, char *err, size_t errlen)
{
	return add_topic(o->value, arg, err, errlen);
}

static int opt_offset(const ev_option *o, char *arg, char *err, size_t errlen)
{
	if (parse_offset(o->value, arg) < 0) {
		snprintf(err, errlen, "invalid offset '%s'", arg);
		return -1;
	}
	return 0;
}

static int opt_expect(const ev_option *o, char *arg, char *err, size_t errlen)
{
	struct kin *k = o->value;
	char *save = NULL;
	for (char *st = strtok_r(arg, ",", &save); st; st = strtok_r(NULL, ",", &save)) {
		if (k->co.nexpect == sizeof(k->expect) / sizeof(k->expect[0])) {
			snprintf(err, errlen, "too many stages");
			return -1;
		}
		k->expect[k->co.nexpect++] = st;
	}
	return 0;
}

/* -X K=V, and kcat's -X list and -X dump. */
static int opt_property(const ev_option *o, char *arg, char *err, size_t errlen)
{
	struct kin *k = o->value;
	ev_option kafka = *o;
	if (strcmp(arg, "list") == 0) {
		rd_kafka_conf_properties_show(stdout);
		return EV_OPTS_DONE;
	}
	if (strcmp(arg, "dump") == 0) {
		k->conf_dump = 1;
		return 0;
	}
	kafka.value = &k->kafka;
	return ev_kafka_opt_property(&kafka, arg, err, errlen);
}

/* -H NAME=VALUE, or NAME alone for a null value, as kcat's. */
static int opt_header(const ev_option *o, char *arg, char *err, size_t errlen)
{
	struct kin *k = o->value;
	const char *eq = strchr(arg, '=');
	if (!*arg || eq == arg) {
		snprintf(err, errlen, "invalid header '%s': want NAME=VALUE or NAME", arg);
		return -1;
	}
	if (!k->headers)
		k->headers = rd_kafka_headers_new(8);
	rd_kafka_header_add(k->headers, arg, eq ? eq - arg : -1, eq ? eq + 1 : NULL, -1);
	return 0;
}

/* A librdkafka property set from an option of its own (-z, -d). */
static int opt_conf(const ev_option *o, char *arg, char *err, size_t errlen)
{
	struct kin *k = o->value;
	const char *key = o->short_name == 'z' ? "compression.codec" : "debug";
	if (o->short_name == 'z')
		k->compression = arg;
	else
		ev_log_set_level(EV_LOG_DEBUG); /* librdkafka's debug lines are ours */
	return ev_kafka_conf_set(k->kafka.conf, key, arg, 0, err, errlen);
}

/* The combinations of kcat's options; delimiters unescaped, a consumer's format compiled. */
static int check_kcat_options(struct kin *k)
{
	char err[512];
	int formatting = k->format || k->delim || k->key_delim || k->print_offset || k->null_str;
	if (k->mode == 'Q') {
		if (k->ntopics == 0)
			return ev_tool_usage_error("no query: give -t TOPIC:PARTITION:TIMESTAMP");
		if (kin_query_check(k, err, sizeof(err)) < 0)
			return ev_tool_usage_error("%s", err);
		return 0;
	}
	if (k->mode == 'C' && k->start == START_STORED && !k->group)
		return ev_tool_usage_error(
			"-o stored needs -G: the offsets stored are a consumer group's");
	if (k->mode != 'C' && (k->format || k->print_offset))
		return ev_tool_usage_error("-f and -O are consume options");
	if (k->mode != 'P' && (k->headers || k->tee || k->line_file || k->compression))
		return ev_tool_usage_error("-H, -l, -T and -z are produce options");
	if (k->mode == 'C' && k->json && (k->format || k->key_delim || k->print_offset))
		return ev_tool_usage_error("-J writes kin's envelope: -f, -K and -O do not apply");
	if (k->mode == 'P' && k->json && (k->key_delim || k->headers || k->null_str))
		return ev_tool_usage_error(
			"-J takes key and headers from the envelope: -K, -H and -Z do not apply");
	if (formatting && (k->meta_field || k->ck.url || k->ack_spec))
		return ev_tool_usage_error(
			"-f, -D, -K, -O and -Z write kcat's formats, not a pipeline's records: "
			"--meta-field, checkpoints and --commit-on-ack do not apply");
	if (k->print_offset && !k->key_delim && !k->format)
		return ev_tool_usage_error("-O writes the offset with the -K delimiter: give -K");
	if (k->key_delim && k->key_field)
		return ev_tool_usage_error("-K and --key-field exclude each other");
	if (k->mode == 'P' && k->null_str && !k->key_delim)
		return ev_tool_usage_error(
			"-Z with -P makes -K's empty key or payload null: give -K");
	if (k->nfiles && !k->line_file && (k->json || k->delim || k->key_delim))
		return ev_tool_usage_error(
			"each FILE is one message: -J, -D and -K split lines (give -l FILE)");
	if (ev_msgfmt_unescape(k->delim ? k->delim : "\\n", &k->delim_bytes) < 0 ||
	    (k->key_delim && ev_msgfmt_unescape(k->key_delim, &k->key_delim_bytes) < 0))
		return ev_tool_usage_error("invalid delimiter: \\x wants hex digits");
	if (k->mode == 'P' && k->delim_bytes.len == 0)
		return ev_tool_usage_error("-D must not be empty when producing");
	if (k->mode == 'P' && k->nfiles > 1 && strcmp(k->delim_bytes.data, "\n") != 0)
		return ev_tool_usage_error("-D splits standard input or one -l FILE");
	if (k->key_delim && k->key_delim_bytes.len == 0)
		return ev_tool_usage_error("-K must not be empty");
	if (k->mode == 'C' && formatting && !k->json && kin_format_setup(k, err, sizeof(err)) < 0)
		return ev_tool_usage_error("-f: %s", err);
	return 0;
}

static int parse_args(struct kin *k, int argc, char **argv)
{
	char err[512];
	const ev_option options[] = {
		EV_OPT_TEXT(
			"usage: kin -C -b BROKERS -t TOPIC [-t TOPIC...] [options]   consume to stdout\n"
			"       kin -C -b BROKERS -G GROUP TOPIC... [options]          consume as a group member\n"
			"       kin -P -b BROKERS -t TOPIC [options] < lines             produce stdin lines\n"
			"       kin -P -b BROKERS -t TOPIC [options] FILE...             produce files\n"
			"       kin -P -b BROKERS -t TOPIC -l [options] FILE...          produce their lines\n"
			"       kin -L -b BROKERS [-t TOPIC] [-J]                        list metadata\n"
			"       kin -Q -b BROKERS -t TOPIC:PARTITION:TS... [-J]          offsets for times\n"
			"\n"
			"Modes:\n"),
		EV_OPT_CALLBACK('C', "consume", NULL, k, opt_mode,
				"consume messages, one payload per line on stdout"),
		EV_OPT_CALLBACK('P', "produce", NULL, k, opt_mode,
				"produce one message per stdin line (blank lines, spaces\n"
				"and tabs only, and control lines are skipped and counted),\n"
				"or each FILE as one message (kcat's); -l: the lines of the\n"
				"FILEs, in order (-: stdin)"),
		EV_OPT_CALLBACK('L', "list", NULL, k, opt_mode,
				"list brokers, topics and partitions"),
		EV_OPT_CALLBACK('Q', "query", NULL, k, opt_mode,
				"for each -t TOPIC:PARTITION:TS, the offset of the first\n"
				"message at or after TS (epoch ms; -1: the end, -2: the\n"
				"beginning), as \"TOPIC [PARTITION] offset N\" lines or, with\n"
				"-J, kcat's JSON; -1 when there is none"),
		EV_OPT_TEXT("\n"
			    "Common options:\n"),
		EV_OPT_KAFKA_BROKERS(&k->kafka),
		EV_OPT_CALLBACK('X', "property", "K=V|list|dump", k, opt_property,
				"librdkafka property; secrets are refused here (put them\n"
				"in a -F file); list: the properties librdkafka knows;\n"
				"dump: the configuration (secrets redacted), then exit"),
		EV_OPT_KAFKA_FILE(&k->kafka),
		EV_OPT_KAFKA_TIMEOUT(&k->kafka, 'm'),
		EV_OPT_CALLBACK('t', "topic", "TOPIC", k, opt_topic,
				"topic (repeatable when consuming)"),
		EV_OPT_INT('p', "partition", "N", &k->partition, -1, INT32_MAX, "partition",
			   "only partition N (consume), or produce to partition N\n"
			   "(-1: the partitioner's choice, the default)"),
		EV_OPT_FLAG('J', "json", &k->json, 1,
			    "consume: write kin's JSON envelope (topic, partition, offset,\n"
			    "tstype, ts, broker, headers, key, payload); produce: read it\n"
			    "back (key, headers, partition and timestamp restored)"),
		EV_OPT_INT('c', "count", "N", &k->max_count, 1, INT64_MAX, "count",
			   "exit after N messages consumed, or produced"),
		EV_OPT_STRING('D', "delimiter", "DELIM", &k->delim,
			      "consume: written after each message; produce: what splits\n"
			      "the input into messages (default \\n; kcat's escapes \\n \\r\n"
			      "\\t \\xHH)"),
		EV_OPT_STRING('K', "key-delimiter", "DELIM", &k->key_delim,
			      "consume: write each key, DELIM, then the payload; produce:\n"
			      "the key is what precedes a line's first DELIM (none: -k's\n"
			      "key, or none)"),
		EV_OPT_FLAG('Z', "null", &k->null_str, 1,
			    "consume: write NULL for an empty or null key or payload;\n"
			    "produce with -K: send an empty key or payload as null"),
		EV_OPT_FLAG('E', "keep-going", &k->keep_going, 1,
			    "a consume error or a message that cannot be produced is\n"
			    "reported and passed over instead of stopping kin (exit 1\n"
			    "still when a message was not produced)"),
		EV_OPT_CALLBACK('d', "debug", "LIST", k, opt_conf,
				"librdkafka's debug contexts (-X debug=LIST), on stderr"),
		EV_OPTS_PROGRESS(),
		EV_OPTS_COMMON(&k->common),
		EV_OPT_TEXT("\n"
			    "Consume options:\n"),
		EV_OPT_STRING('G', "group", "GROUP", &k->group,
			      "join consumer group GROUP (balanced, offsets committed after\n"
			      "the records are written); topics may follow as arguments"),
		EV_OPT_CALLBACK('o', "offset", "OFFSET", k, opt_offset,
				"where to start: beginning, end, stored (-G), N (absolute),\n"
				"-N (N before the end), s@MS (first message at or after epoch\n"
				"ms MS); e@MS stops a partition at timestamp MS (repeatable,\n"
				"default end; with -G only beginning, end and stored: where a\n"
				"new group starts)"),
		EV_OPT_FLAG('e', "exit", &k->exit_eof, 1,
			    "exit once every assigned partition has reached its end;\n"
			    "with -G and --restore, every partition of the checkpoint\n"
			    "too (one a member that died still holds, until its session\n"
			    "times out, is waited for: its restored state needs it)"),
		EV_OPT_STRING('f', "format", "FMT", &k->format,
			      "write each message as FMT, kcat's format (over -D and -K):\n"
			      "%s payload, %S its length (-1: null), %R that length as a\n"
			      "4-byte big-endian integer, %k key, %K its length, %T\n"
			      "timestamp (ms), %h headers (name=value,...), %t topic, %p\n"
			      "partition, %o offset, %% a percent sign; \\n \\r \\t \\xHH.\n"
			      "Every token of kcat 1.7 is there"),
		EV_OPT_FLAG('O', "print-offset", &k->print_offset, 1,
			    "write each message's offset and -K's delimiter before its key"),
		EV_OPT_FLAG('u', "unbuffered", &k->unbuffered, 1,
			    "write each message as it comes (with -P -T: each one produced)"),
		EV_OPT_STRING(
			0, "meta-field", "NAME", &k->meta_field,
			"add the message's provenance as the record's first field NAME:\n"
			"{\"NAME\":{\"topic\",\"partition\",\"offset\",\"ts\"},...}; a payload\n"
			"that is not a JSON object is wrapped as\n"
			"{\"NAME\":{...,\"wrapped\":true},\"payload\":\"...\"}"),
		EV_OPT_TEXT(
			"  A payload with a newline or a CR in it, or whose first key begins with \"__evpipe\"\n"
			"  (control lines are evpipe's own), is never written as it is: it is wrapped as\n"
			"  {\"__evpipe_rejected\":{...,\"wrapped\":true,\"rejected\":\"embedded_newline\"},\n"
			"  \"payload\":\"...\"} (or \"reserved\"), which evvalidate dead-letters with its bytes\n"
			"  (-J escapes every payload: nothing to wrap). So is a registry-framed one without\n"
			"  --meta-field (\"schema_id\", the id in the provenance, the frame kept in the payload).\n"
			"  With -f, -D, -K, -O or -Z kin writes the bytes as kcat does: a format, not a\n"
			"  pipeline's records (no --meta-field, checkpoints or --commit-on-ack then).\n"
			"  Feeding a pipeline (--meta-field or checkpoints), kin ends its output with\n"
			"  {\"__evpipe\":\"end\"} when it finished (-e, -c) and {\"__evpipe\":\"stop\"} when a\n"
			"  signal stopped it: evwindow fires its open windows at the end of a stream, and keeps\n"
			"  them when it is only suspended.\n"
			"  In a group kin uses the cooperative-sticky assignor: a rebalance stops only the\n"
			"  partitions that move (-X partition.assignment.strategy=range is the eager protocol).\n"
			"  Feeding a pipeline, it writes the group's changes in order with the records:\n"
			"  {\"__evpipe\":\"assign\",\"partitions\":[{\"topic\",\"partition\",\"offset\"},...]}\n"
			"  before their first record, {\"__evpipe\":\"revoke\",...} after their last, offset the\n"
			"  next one. A partition assigned again resumes where the output left it (ADR 0025).\n"
			"  With checkpoints, revoked partitions are let go only once a checkpoint after their\n"
			"  revoke line is complete (their state handed over to the store); their offsets are\n"
			"  then committed, where the next owner resumes them. Not complete within\n"
			"  --checkpoint-timeout (and max.poll.interval.ms): kin exits 1.\n"
			"  kin prefetches up to 500000 messages (-X queued.min.messages, at most\n"
			"  queued.max.messages.kbytes of payload) and fetches with -X fetch.wait.max.ms=100:\n"
			"  librdkafka 2.0 pauses fetching for a second once that queue is full. Set them lower\n"
			"  to trade throughput for memory.\n"
			"  kin reads committed messages only (isolation.level=read_committed, librdkafka's\n"
			"  default): what transactions aborted or still hold open is not read, e.g. the\n"
			"  copies of dead letters a restarted job aborted (-X isolation.level=read_uncommitted\n"
			"  reads them too).\n"
			"\n"
			"Checkpoints (kin coordinates them: docs/design.md, State and checkpoints):\n"),
		EV_OPT_DURATION(0, "checkpoint-interval", "D", &k->co.interval_ms, 1000, 1,
				INT64_MAX, "inject a barrier D after the last checkpoint ended"),
		EV_OPT_CALLBACK(0, "checkpoint-expect", "LIST", k, opt_expect,
				"the stages whose parts complete a checkpoint, e.g.\n"
				"evwindow,chsink,dlqsink-dlq (default: none but kin's)"),
		EV_OPT_DURATION(0, "checkpoint-timeout", "D", &k->co.timeout_ms, 1000, 1, INT64_MAX,
				"abandon a checkpoint not complete after D (default 60s);\n"
				"one that cannot begin for D (the output blocked by a stage\n"
				"that hangs) fails too"),
		EV_OPT_INT(0, "tolerable-failures", "N", &k->co.tolerable, 0, 1000000, "count",
			   "stop after more than N abandoned in a row (default 3)"),
		EV_OPT_INT(0, "retain", "K", &k->co.retain, 1, 1000000, "count",
			   "keep the K newest complete checkpoints (default 3)"),
		EV_OPTS_CKPT(&k->ck),
		EV_OPT_TEXT(
			"  With --restore, kin starts each partition at the checkpoint's offset; offsets go to\n"
			"  the group (-G) only once a checkpoint is complete, for lag monitoring. A checkpoint\n"
			"  of other topics or another group is refused unless --restore-mismatch allow.\n"
			"  After each checkpoint's manifest kin writes {\"__evpipe\":\"committed\",\"id\":N}:\n"
			"  dlqsink commits its Kafka transaction of checkpoint N on it (ADR 0021).\n"
			"  With -G the barrier lists the partitions kin owns and their offsets, where evwindow\n"
			"  saves each one's state for another copy to take over; a partition new to kin\n"
			"  starts at the group's committed offset, said in its assign line (ADR 0025).\n"
			"\n"
			"Commits without checkpoints (-G; ADR 0014):\n"),
		EV_OPT_STRING(0, "commit-on-ack", "SRC", &k->ack_spec,
			      "commit only what the sinks acknowledged: inject a barrier\n"
			      "every --checkpoint-interval (default 1s) and commit the\n"
			      "offsets it follows once every --checkpoint-expect stage (or\n"
			      "any one, by default) wrote \"<stage> <id>\" to SRC (a named\n"
			      "pipe or fd:N; chsink --ack, dlqsink --ack). At the end kin\n"
			      "closes its output and waits up to --checkpoint-timeout for\n"
			      "the last barrier's acknowledgements. Without this option\n"
			      "-G commits what was written to stdout: at-least-once only\n"
			      "when stdout is the record's final place."),
		EV_OPT_TEXT("\n"
			    "Produce options:\n"),
		EV_OPT_STRING('k', "key", "KEY", &k->key, "key of every message"),
		EV_OPT_CALLBACK('H', "header", "NAME=VALUE", k, opt_header,
				"add header NAME to every message (NAME alone: a null\n"
				"value; repeatable)"),
		EV_OPT_FLAG('l', "line-file", &k->line_file, 1,
			    "produce the lines of the FILEs (as stdin's), in order (-:\n"
			    "stdin), not each FILE as one message"),
		EV_OPT_FLAG('T', "tee", &k->tee, 1,
			    "write each message produced to stdout, with its delimiter"),
		EV_OPT_CALLBACK('z', "compression", "CODEC", k, opt_conf,
				"none, gzip, snappy, lz4 or zstd (-X compression.codec)"),
		EV_OPT_STRING(0, "key-field", "NAME", &k->key_field,
			      "key taken from the top-level JSON field NAME of each line"),
		EV_OPT_SIZE(0, "max-line-bytes", "N", &k->max_line, 1, INT64_MAX, "size",
			    "refuse (report, not produce, exit 1) lines longer than N\n"
			    "(default 1MiB, Kafka's default message.max.bytes)"),
		EV_OPT_FLAG(0, "no-idempotence", &k->idempotence, 0,
			    "turn off the idempotent producer (on by default)"),
		EV_OPT_INT(0, "schema-id", "N", &k->schema_id, 1, INT32_MAX, "schema id",
			   "write each message registry-framed: a byte 0 and the schema\n"
			   "id N (4 bytes, big-endian) before the line"),
		EV_OPT_STRING(0, "subject", "S", &k->subject,
			      "the same with the id of the latest version of subject S in\n"
			      "the schema registry at $SCHEMA_REGISTRY_URL"),
		EV_OPT_TEXT(
			"  Consuming with --meta-field, a registry-framed message (first byte 0, then a 4-byte\n"
			"  schema id) loses its frame and gets \"schema_id\":N in its provenance; without it,\n"
			"  the message is a rejected record of reason \"schema_id\" (see above), which\n"
			"  evvalidate dead-letters: the id cannot go along with a bare record.\n"
			"\n"
			"kcat's letters mean what they mean to kcat 1.7, but where kin differs on purpose:\n"
			"  secrets are refused on -X (a -F file holds them) and -X dump redacts them; -J\n"
			"  adds key_b64/payload_b64 for bytes that are not UTF-8 (kcat would mangle them); a\n"
			"  mode is always given (kcat guesses -C or -P from whether stdin is a terminal); -o\n"
			"  stored needs -G, and -G takes no -o offset but beginning, end and stored; -T\n"
			"  writes each message with its delimiter (kcat 1.7 joins them without); -O writes\n"
			"  the offset (kcat 1.7 takes -O and writes nothing); -l takes several FILEs, - for\n"
			"  stdin (kcat: one); -L -J and -Q -J end with a newline; the payload safety above\n"
			"  holds without -f, -D, -K, -O and -Z; there is no -s or -r (deserializers: kin\n"
			"  passes JSON through, registry frames go with --meta-field), -M or -U.\n"
			"\n"
			"Exit status: 0 ok, 1 runtime failure (brokers unreachable, a message not delivered or\n"
			"not produced), 2 usage error.\n"),
		EV_OPT_END(),
	};
	int rc = ev_tool_parse(options, argc, argv);
	if (rc != 0)
		return rc;
	if (k->conf_dump) {
		ev_buf dump = EV_BUF_INIT;
		rc = ev_kafka_conf_dump(k->kafka.conf, &dump);
		if (rc == 0)
			fputs(dump.data, stdout);
		ev_buf_free(&dump);
		return rc < 0 ? EV_EXIT_FAILURE : -1;
	}
	if (k->mode == 'P') {
		k->files = argv + optind;
		k->nfiles = (size_t)(argc - optind);
		optind = argc;
	}
	for (; optind < argc; optind++) {
		if (!k->group)
			return ev_tool_usage_error("unexpected argument '%s'", argv[optind]);
		if (add_topic(k, argv[optind], err, sizeof(err)) < 0)
			return ev_tool_usage_error("%s", err);
	}
	if (!k->mode)
		k->mode = k->group ? 'C' : 0;
	if (!k->mode)
		return ev_tool_usage_error("one of -C, -P, -L or -Q is required");
	if (ev_kafka_opts_brokers(&k->kafka) < 0)
		return ev_tool_usage_error("no brokers: give -b or set KAFKA_BROKERS");
	if (k->mode == 'C' && k->ntopics == 0)
		return ev_tool_usage_error("no topic: give -t TOPIC");
	if (k->mode == 'P' && k->ntopics > 1)
		return ev_tool_usage_error("produce takes one topic");
	if (k->mode == 'P' && k->ntopics == 0 && !k->json)
		return ev_tool_usage_error("no topic: give -t TOPIC");
	if (k->mode == 'C' && k->group &&
	    !(k->start == START_DEFAULT || k->start == START_BEGINNING || k->start == START_END ||
	      k->start == START_STORED))
		return ev_tool_usage_error(
			"with -G, -o takes only beginning, end or stored (where a new group starts)");
	if (k->mode == 'C' && k->group && k->partition != RD_KAFKA_PARTITION_UA)
		return ev_tool_usage_error(
			"-p and -G exclude each other: the group assigns partitions");
	if (k->mode != 'P' && (k->key || k->key_field))
		return ev_tool_usage_error("-k and --key-field are produce options");
	if (k->key && k->key_field)
		return ev_tool_usage_error("-k and --key-field exclude each other");
	if ((k->schema_id || k->subject) && k->mode != 'P')
		return ev_tool_usage_error("--schema-id and --subject are produce options");
	if (k->schema_id && k->subject)
		return ev_tool_usage_error("--schema-id and --subject exclude each other");
	if (k->meta_field && (k->mode != 'C' || k->json))
		return ev_tool_usage_error("--meta-field applies to -C without -J");
	if (k->meta_field && (!*k->meta_field || strpbrk(k->meta_field, "\"\\")))
		return ev_tool_usage_error("invalid --meta-field name '%s'", k->meta_field);
	if (k->json && k->key_field)
		return ev_tool_usage_error(
			"-J takes the key from the envelope; --key-field does not apply");
	if (k->ack_spec && (k->mode != 'C' || !k->group || k->ck.url))
		return ev_tool_usage_error(
			"--commit-on-ack needs -C and -G, without "
			"--checkpoint-store (whose checkpoints decide the commits)");
	if (k->ack_spec && !k->co.interval_ms)
		k->co.interval_ms = 1000;
	if (!k->ack_spec && (k->co.interval_ms || k->ck.url) &&
	    (k->mode != 'C' || !k->co.interval_ms || !k->ck.url))
		return ev_tool_usage_error("checkpoints need -C, --checkpoint-interval and "
					   "--checkpoint-store together");
	return check_kcat_options(k);
}

/* Open the store, find what to restore, and set up the coordinator. */
static int start_checkpoints(struct kin *k)
{
	char err[1024];
	ev_ckpt_restored rs;
	k->co.ck = &k->ck;
	k->co.expect = k->expect;
	/* What a checkpoint of this kin belongs to: its topics (in order) and group. */
	json_t *topics = json_array();
	for (int i = 0; i < k->ntopics; i++) {
		size_t at = 0;
		while (at < json_array_size(topics) &&
		       strcmp(json_string_value(json_array_get(topics, at)), k->topics[i]) < 0)
			at++;
		json_array_insert_new(topics, at, json_string(k->topics[i]));
	}
	ev_ckpt_set_identity(&k->ck, json_pack("{s:o, s:s?}", "topics", topics, "group", k->group));
	if (ev_ckpt_open(&k->ck, k->common.job, "kin", err, sizeof(err)) < 0 ||
	    ev_ckpt_restore(&k->ck, &rs, err, sizeof(err)) < 0) {
		ev_error("checkpoints: %s", err);
		return -1;
	}
	int64_t id = rs.id, no_offsets = id && !rs.offsets;
	if (no_offsets)
		snprintf(err, sizeof(err), "the manifest of checkpoint %" PRId64 " has no offsets",
			 id);
	else if (ev_ckpt_offsets_parse(rs.offsets, &k->restore_offsets, err, sizeof(err)) < 0)
		no_offsets = 1;
	ev_ckpt_restored_free(&rs);
	if (k->group) { /* copies in a group share hand-over objects: pruned by the group's offsets */
		k->co.committed = kin_committed_offsets;
		k->co.committed_arg = k;
	}
	if (no_offsets || !(k->coord = ev_coord_new(&k->co, k->metrics, err, sizeof(err)))) {
		ev_error("checkpoints: %s", err);
		return -1;
	}
	/* The coordinator must not hang on a store that is down: a checkpoint that cannot be
	 * written in its time is abandoned, and consuming goes on. */
	ev_store_set_retry(k->ck.store, k->co.timeout_ms / 2);
	return 0;
}

static volatile sig_atomic_t exit_code;

static void destroy_overdue(int sig)
{
	static const char msg[] =
		"kin: the Kafka client did not shut down within 10 s; exiting without it\n";
	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing more to do: exiting regardless */
	}
	_exit(exit_code);
}

/* librdkafka 2.0 can hang in rd_kafka_destroy for good (seen when a consumed topic was
 * deleted: a broker thread never ends). By now everything kin owes its output and the
 * brokers is done (messages delivered or reported, offsets committed, the consumer closed),
 * so after a grace period kin flushes its output and exits with its status without it. */
static void destroy_client(rd_kafka_t *rk, ev_writer *out, int rc)
{
	ev_writer_flush(out);
	exit_code = rc;
	signal(SIGALRM, destroy_overdue);
	alarm(10);
	rd_kafka_destroy(rk);
	alarm(0);
}

/* What the options hold: the client's configuration until a client takes it, -f's format,
 * -H's headers, the delimiters. */
static void free_options(struct kin *k)
{
	if (k->kafka.conf)
		rd_kafka_conf_destroy(k->kafka.conf);
	k->kafka.conf = NULL;
	ev_msgfmt_free(k->fmt);
	if (k->headers)
		rd_kafka_headers_destroy(k->headers);
	ev_buf_free(&k->delim_bytes);
	ev_buf_free(&k->key_delim_bytes);
}

int main(int argc, char **argv)
{
	struct kin k;
	memset(&k, 0, sizeof(k));
	k.partition = RD_KAFKA_PARTITION_UA;
	k.end_ts = -1;
	k.idempotence = 1;
	k.max_line = 1 << 20;
	k.common.job = "evpipe";
	k.co.timeout_ms = 60000;
	k.co.tolerable = 3;
	k.co.retain = 3;

	ev_tool_init("kin");
	char err[512];
	int rc = ev_kafka_opts_init(&k.kafka, err, sizeof(err)) < 0 ? ev_tool_usage_error("%s", err)
								    : parse_args(&k, argc, argv);
	if (rc != 0) {
		free_options(&k);
		return rc < 0 ? ev_tool_finish(EV_EXIT_OK) : rc;
	}
	k.metrics = ev_tool_metrics("kin", k.common.job, k.common.metrics_addr);
	if (!k.metrics) {
		free_options(&k);
		return EV_EXIT_FAILURE;
	}
	setup_metrics(&k);
	if (k.ck.url && start_checkpoints(&k) < 0) {
		free_options(&k);
		ev_ckpt_close(&k.ck);
		ev_tool_metrics_free(k.metrics);
		return EV_EXIT_FAILURE;
	}
	if (k.ack_spec) {
		k.ack = ev_ack_in_new(k.ack_spec, k.expect, k.co.nexpect, err, sizeof(err));
		k.marks = json_array();
		if (!k.ack || !k.marks) {
			ev_error("--commit-on-ack: %s", k.ack ? "out of memory" : err);
			free_options(&k);
			ev_tool_metrics_free(k.metrics);
			return EV_EXIT_FAILURE;
		}
	}
	ev_tool_catch_signals();
	k.out = ev_writer_new(1, 64 * 1024);
	if (!k.out) {
		ev_error("out of memory");
		return EV_EXIT_FAILURE;
	}
	if (k.mode == 'C' && ev_writer_set_tick(k.out, kin_output_blocked, &k, 100) < 0) {
		ev_error("standard output: %s", strerror(errno));
		return EV_EXIT_FAILURE;
	}

	if (k.mode != 'L')
		ev_tool_progress(k.metrics);
	switch (k.mode) {
	case 'C': rc = kin_consume(&k); break;
	case 'P': rc = kin_produce(&k); break;
	case 'Q': rc = kin_query_offsets(&k); break;
	default: rc = kin_list_metadata(&k); break;
	}

	/* The client first: destroying a consumer may still call the rebalance callback. */
	if (k.rk)
		destroy_client(k.rk, k.out, rc);
	free_options(&k);
	if (ev_writer_free(k.out) < 0 && rc == EV_EXIT_OK && errno != EPIPE) {
		ev_error("cannot write standard output: %s", strerror(errno));
		rc = EV_EXIT_FAILURE;
	}
	kin_parts_clear(&k);
	free(k.parts);
	ev_coord_free(k.coord);
	ev_ckpt_offsets_free(&k.restore_offsets);
	ev_ckpt_offsets_free(&k.handed);
	ev_ckpt_offsets_free(&k.committed);
	json_decref(k.marks);
	json_decref(k.mark_offsets);
	ev_ack_in_free(k.ack);
	ev_ckpt_close(&k.ck);
	ev_tool_metrics_free(k.metrics);
	return ev_tool_finish(rc);
}
