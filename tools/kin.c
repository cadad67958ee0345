/* kin: consume Kafka topics to NDJSON on stdout, produce stdin lines to Kafka (kcat-like). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ack.h"
#include "buf.h"
#include "checkpoint.h"
#include "control.h"
#include "coordinator.h"
#include "kafka.h"
#include "log.h"
#include "meta.h"
#include "metrics.h"
#include "ndjson.h"
#include "opts.h"
#include "registry.h"
#include "tool.h"

static const char usage_text[] =
	"usage: kin -C -b BROKERS -t TOPIC [-t TOPIC...] [options]   consume to stdout\n"
	"       kin -C -b BROKERS -G GROUP TOPIC... [options]          consume as a group member\n"
	"       kin -P -b BROKERS -t TOPIC [options] < lines             produce stdin lines\n"
	"       kin -L -b BROKERS [-t TOPIC] [-J]                        list metadata\n"
	"\n"
	"Modes:\n"
	"  -C, --consume            consume messages, one payload per line on stdout\n"
	"  -P, --produce            produce one message per stdin line (blank lines and\n"
	"                           control lines are skipped and counted)\n"
	"  -L, --list               list brokers, topics and partitions\n"
	"\n"
	"Common options:\n" EV_KAFKA_OPTIONS_HELP
	"  -t, --topic TOPIC        topic (repeatable when consuming)\n"
	"  -p, --partition N        only partition N (consume), or produce to partition N\n"
	"  -J, --json               consume: write kin's JSON envelope (topic, partition, offset,\n"
	"                           tstype, ts, broker, headers, key, payload); produce: read it\n"
	"                           back (key, headers, partition and timestamp restored)\n" EV_TOOL_OPTIONS_HELP
	"\n"
	"Consume options:\n"
	"  -G, --group GROUP        join consumer group GROUP (balanced, offsets committed after\n"
	"                           the records are written); topics may follow as arguments\n"
	"  -o, --offset OFFSET      where to start: beginning, end, stored, N (absolute), -N\n"
	"                           (N before the end), s@MS (first message at or after epoch\n"
	"                           ms MS); e@MS stops a partition at timestamp MS (repeatable,\n"
	"                           default end; with -G only beginning and end, for new groups)\n"
	"  -e, --exit               exit once every assigned partition has reached its end;\n"
	"                           with -G and --restore, every partition of the checkpoint\n"
	"                           too (one a member that died still holds, until its session\n"
	"                           times out, is waited for: its restored state needs it)\n"
	"  -c, --count N            exit after N messages\n"
	"      --meta-field NAME    add the message's provenance as the record's first field NAME:\n"
	"                           {\"NAME\":{\"topic\",\"partition\",\"offset\",\"ts\"},...}; a payload\n"
	"                           that is not a JSON object is wrapped as\n"
	"                           {\"NAME\":{...,\"wrapped\":true},\"payload\":\"...\"}\n"
	"  A payload with a newline or a CR in it, or whose first key begins with \"__evpipe\"\n"
	"  (control lines are evpipe's own), is never written as it is: it is wrapped as\n"
	"  {\"__evpipe_rejected\":{...,\"wrapped\":true,\"rejected\":\"embedded_newline\"},\n"
	"  \"payload\":\"...\"} (or \"reserved\"), which evvalidate dead-letters with its bytes\n"
	"  (-J escapes every payload: nothing to wrap).\n"
	"  Feeding a pipeline (--meta-field or checkpoints), kin ends its output with\n"
	"  {\"__evpipe\":\"end\"} when it finished (-e, -c) and {\"__evpipe\":\"stop\"} when a\n"
	"  signal stopped it: evwindow fires its open windows at the end of a stream, and keeps\n"
	"  them when it is only suspended.\n"
	"  kin prefetches up to 500000 messages (-X queued.min.messages, at most\n"
	"  queued.max.messages.kbytes of payload) and fetches with -X fetch.wait.max.ms=100:\n"
	"  librdkafka 2.0 pauses fetching for a second once that queue is full. Set them lower\n"
	"  to trade throughput for memory.\n"
	"\n"
	"Checkpoints (kin coordinates them: docs/design.md, State and checkpoints):\n"
	"      --checkpoint-interval D  inject a barrier D after the last checkpoint ended\n"
	"      --checkpoint-expect LIST the stages whose parts complete a checkpoint, e.g.\n"
	"                           evwindow,chsink,dlqsink-dlq (default: none but kin's)\n"
	"      --checkpoint-timeout D   abandon a checkpoint not complete after D (default 60s);\n"
	"                           one that cannot begin for D (the output blocked by a stage\n"
	"                           that hangs) fails too\n"
	"      --tolerable-failures N   stop after more than N abandoned in a row (default 3)\n"
	"      --retain K           keep the K newest complete checkpoints (default 3)\n" EV_CKPT_OPTIONS_HELP
	"  With --restore, kin starts each partition at the checkpoint's offset; offsets go to\n"
	"  the group (-G) only once a checkpoint is complete, for lag monitoring. A checkpoint\n"
	"  of other topics or another group is refused unless --restore-mismatch allow.\n"
	"\n"
	"Commits without checkpoints (-G; ADR 0014):\n"
	"      --commit-on-ack SRC  commit only what the sinks acknowledged: inject a barrier\n"
	"                           every --checkpoint-interval (default 1s) and commit the\n"
	"                           offsets it follows once every --checkpoint-expect stage (or\n"
	"                           any one, by default) wrote \"<stage> <id>\" to SRC (a named\n"
	"                           pipe or fd:N; chsink --ack, dlqsink --ack). At the end kin\n"
	"                           closes its output and waits up to --checkpoint-timeout for\n"
	"                           the last barrier's acknowledgements. Without this option\n"
	"                           -G commits what was written to stdout: at-least-once only\n"
	"                           when stdout is the record's final place.\n"
	"\n"
	"Produce options:\n"
	"  -k, --key KEY            key of every message\n"
	"      --key-field NAME     key taken from the top-level JSON field NAME of each line\n"
	"      --max-line-bytes N   refuse (report, not produce, exit 1) lines longer than N\n"
	"                           (default 1MiB, Kafka's default message.max.bytes)\n"
	"      --no-idempotence     turn off the idempotent producer (on by default)\n"
	"      --schema-id N        write each message registry-framed: a byte 0 and the schema\n"
	"                           id N (4 bytes, big-endian) before the line\n"
	"      --subject S          the same with the id of the latest version of subject S in\n"
	"                           the schema registry at $SCHEMA_REGISTRY_URL\n"
	"  Consuming with --meta-field, a registry-framed message (first byte 0, then a 4-byte\n"
	"  schema id) loses its frame and gets \"schema_id\":N in its provenance.\n"
	"\n"
	"Exit status: 0 ok, 1 runtime failure (brokers unreachable, a message not delivered or\n"
	"not produced), 2 usage error.\n";

enum {
	OPT_KEY_FIELD = 256,
	OPT_META_FIELD,
	OPT_MAX_LINE,
	OPT_NO_IDEMPOTENCE,
	OPT_CKPT_INTERVAL,
	OPT_CKPT_EXPECT,
	OPT_CKPT_TIMEOUT,
	OPT_TOLERABLE,
	OPT_RETAIN,
	OPT_SCHEMA_ID,
	OPT_SUBJECT,
	OPT_COMMIT_ON_ACK,
};

static const struct option long_options[] = {
	{"consume", no_argument, NULL, 'C'},
	{"produce", no_argument, NULL, 'P'},
	{"list", no_argument, NULL, 'L'},
	EV_KAFKA_LONG_OPTIONS,
	{"topic", required_argument, NULL, 't'},
	{"partition", required_argument, NULL, 'p'},
	{"offset", required_argument, NULL, 'o'},
	{"exit", no_argument, NULL, 'e'},
	{"count", required_argument, NULL, 'c'},
	{"group", required_argument, NULL, 'G'},
	{"json", no_argument, NULL, 'J'},
	{"key", required_argument, NULL, 'k'},
	{"key-field", required_argument, NULL, OPT_KEY_FIELD},
	{"meta-field", required_argument, NULL, OPT_META_FIELD},
	{"max-line-bytes", required_argument, NULL, OPT_MAX_LINE},
	{"no-idempotence", no_argument, NULL, OPT_NO_IDEMPOTENCE},
	{"checkpoint-interval", required_argument, NULL, OPT_CKPT_INTERVAL},
	{"checkpoint-expect", required_argument, NULL, OPT_CKPT_EXPECT},
	{"checkpoint-timeout", required_argument, NULL, OPT_CKPT_TIMEOUT},
	{"tolerable-failures", required_argument, NULL, OPT_TOLERABLE},
	{"retain", required_argument, NULL, OPT_RETAIN},
	{"schema-id", required_argument, NULL, OPT_SCHEMA_ID},
	{"subject", required_argument, NULL, OPT_SUBJECT},
	{"commit-on-ack", required_argument, NULL, OPT_COMMIT_ON_ACK},
	EV_CKPT_LONG_OPTIONS,
	EV_TOOL_LONG_OPTIONS,
	{NULL, 0, NULL, 0},
};

#define MAX_TOPICS 64

enum start_kind {
	START_DEFAULT,
	START_BEGINNING,
	START_END,
	START_STORED,
	START_ABS,
	START_TAIL,
	START_TIME
};

struct kin {
	/* options */
	int mode;
	ev_kafka_opts kafka;
	const char *topics[MAX_TOPICS];
	int ntopics;
	int32_t partition;
	enum start_kind start;
	int64_t start_value;
	int64_t end_ts; /* e@: stop a partition at this timestamp; -1: none */
	int exit_eof;
	int64_t max_count;
	const char *group;
	int json;
	const char *key;
	const char *key_field;
	int32_t schema_id; /* produce registry-framed messages (0: no) */
	const char *subject;
	ev_buf frame;
	const char *meta_field;
	uint64_t max_line;
	int idempotence;
	ev_tool_common common;
	ev_ckpt ck;
	ev_coord_opts co;
	const char *expect[32];

	ev_coord *coord;         /* NULL: no checkpoints */
	json_t *restore_offsets; /* {"topic":{"partition":offset}} of the restored checkpoint */
	int told_unassigned;     /* 1 once all_done said it waits for a restored partition */
	const char *ack_spec;    /* --commit-on-ack */
	ev_ack_in *ack;          /* NULL: no commits on acknowledgements */
	json_t *marks;           /* [{"id":N,"offsets":{...}}] of barriers not acknowledged yet */
	json_t *mark_offsets;    /* the offsets of the last barrier injected */
	int64_t mark_id, mark_ms;

	/* run time */
	rd_kafka_t *rk;
	ev_writer *out;
	ev_metrics *metrics;
	ev_counter *m_in, *m_out, *m_bytes_in, *m_bytes_out, *m_delivery_errors, *m_rebalances;
	ev_counter *m_blocked, *m_skipped_blank, *m_skipped_control, *m_rejected_too_long;
	ev_counter *m_rejected_envelope, *m_rejected_newline, *m_rejected_reserved;
	struct part *parts;
	size_t nparts, capparts;
	size_t last_part;
	ev_kafka_delivery dl;
	int fatal;
	int stopped_by_checkpoints; /* too many failed: reported, the job stops */
};

/* A partition this consumer reads: end-of-partition state and the offset to store
 * once what was read from it has been written out. */
struct part {
	char *topic;
	int32_t partition;
	int eof;
	int done;        /* e@ reached */
	int64_t pending; /* next offset to store, -1 when none */
	int64_t written; /* next offset after what was written out, -1 when none */
	ev_gauge *lag;
};

static struct part *part_find(struct kin *k, const char *topic, int32_t partition, int create)
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
	k->last_part = k->nparts++;
	return p;
}

static void parts_clear(struct kin *k)
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
	struct part *p = part_find(k, topic, partition, 0);
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

/* Store the offsets of everything written so far; the group commits them. */
static int flush_and_store(struct kin *k)
{
	if (ev_writer_flush(k->out) < 0)
		return -1;
	ev_counter_set(k->m_blocked, ev_writer_blocked_ns(k->out));
	if (!k->group || k->coord || k->ack)
		return 0; /* with checkpoints, the group gets a checkpoint's offsets once complete;
			   * with --commit-on-ack, those the sinks acknowledged */
	rd_kafka_topic_partition_list_t *list = NULL;
	for (size_t i = 0; i < k->nparts; i++) {
		struct part *p = &k->parts[i];
		if (p->pending < 0)
			continue;
		if (!list)
			list = rd_kafka_topic_partition_list_new((int)k->nparts);
		rd_kafka_topic_partition_list_add(list, p->topic, p->partition)->offset =
			p->pending;
		p->pending = -1;
	}
	if (list) {
		rd_kafka_resp_err_t err = rd_kafka_offsets_store(k->rk, list);
		if (err)
			ev_warn("cannot store offsets: %s", rd_kafka_err2str(err));
		rd_kafka_topic_partition_list_destroy(list);
	}
	return 0;
}

/* With --restore, a partition starts where the checkpoint says. */
static void restore_offset(struct kin *k, struct part *p, rd_kafka_topic_partition_t *tp)
{
	char num[16];
	snprintf(num, sizeof(num), "%d", (int)tp->partition);
	json_t *o = json_object_get(json_object_get(k->restore_offsets, tp->topic), num);
	if (!p || !json_is_integer(o))
		return;
	tp->offset = p->written = json_integer_value(o);
	ev_info("%s [%d]: restored at offset %" PRId64, tp->topic, (int)tp->partition, tp->offset);
}

/* {"topic":{"partition":next offset}} of everything written so far, over the restored
 * checkpoint's offsets: a partition not assigned yet (a group still rebalancing) keeps the
 * position the restored state corresponds to. */
static json_t *written_offsets(struct kin *k)
{
	json_t *all = k->restore_offsets ? json_deep_copy(k->restore_offsets) : json_object();
	for (size_t i = 0; i < k->nparts; i++) {
		struct part *p = &k->parts[i];
		char num[16];
		if (p->written < 0)
			continue;
		json_t *t = json_object_get(all, p->topic);
		if (!t)
			json_object_set_new(all, p->topic, t = json_object());
		snprintf(num, sizeof(num), "%d", (int)p->partition);
		json_object_set_new(t, num, json_integer(p->written));
	}
	return all;
}

/* A complete checkpoint's offsets to the group: what lag monitoring reads, and where a run
 * without --restore starts. */
static void commit_offsets(struct kin *k, json_t *offsets)
{
	const char *topic, *num;
	json_t *parts, *off;
	if (!k->group)
		return;
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
	json_object_foreach(offsets, topic, parts)
	{
		json_object_foreach(parts, num, off)
		{
			rd_kafka_topic_partition_list_add(list, topic, atoi(num))->offset =
				json_integer_value(off);
		}
	}
	if (list->cnt) {
		rd_kafka_resp_err_t err = rd_kafka_commit(k->rk, list, 1);
		if (err)
			ev_warn("cannot commit the checkpoint's offsets: %s",
				rd_kafka_err2str(err));
	}
	rd_kafka_topic_partition_list_destroy(list);
}

/* Inject barrier id after everything written so far. Returns 0, or -1 when the output
 * fails. */
static int write_barrier(struct kin *k, int64_t id, int64_t now)
{
	ev_control c = {EV_CTL_BARRIER, id, now};
	ev_buf line = EV_BUF_INIT;
	int rc = ev_control_format(&line, &c) < 0 ||
				 ev_writer_line(k->out, line.data, line.len) < 0 ||
				 ev_writer_flush(k->out) < 0
			 ? -1
			 : 0;
	ev_buf_free(&line);
	if (rc < 0 && errno != EPIPE && !k->stopped_by_checkpoints)
		ev_error("cannot write standard output: %s", strerror(errno));
	return rc;
}

/* Finish the checkpoint in flight, or fail it (or one that could not begin) past its timeout.
 * Returns 0, or -1 (reported) to stop the job. */
static int checkpoint_poll(struct kin *k, int64_t now)
{
	char err[1024];
	json_t *offsets;
	int r = ev_coord_poll(k->coord, now, &offsets, err, sizeof(err));
	if (r == EV_COORD_COMPLETED) {
		commit_offsets(k, offsets);
		json_decref(offsets);
	} else if (r == EV_COORD_FAILED) {
		ev_error("%s", err);
		k->stopped_by_checkpoints = 1;
		return -1;
	}
	return 0;
}

/* While a write to stdout waits for the next stage: the blocked time and the coordinator's
 * clock go on (ev_writer_set_tick). */
static int output_blocked(void *arg)
{
	struct kin *k = arg;
	ev_counter_set(k->m_blocked, ev_writer_blocked_ns(k->out));
	return k->coord ? checkpoint_poll(k, ev_wall_ms()) : 0;
}

/* The coordinator's turn: finish the checkpoint in flight, begin the next when due (its
 * barrier follows every record written so far). Returns 0, or -1 to stop the job. */
static int checkpoint_tick(struct kin *k)
{
	char err[1024];
	if (!k->coord)
		return 0;
	int64_t now = ev_wall_ms();
	if (checkpoint_poll(k, now) < 0)
		return -1;
	if (!ev_coord_due(k->coord, now))
		return 0;
	int64_t id = ev_coord_begin(k->coord, written_offsets(k), now, err, sizeof(err));
	if (id < 0) {
		ev_warn("cannot begin a checkpoint: %s", err);
		return 0;
	}
	return write_barrier(k, id, now);
}

/* ---- Commits on the sinks' acknowledgements (--commit-on-ack, no checkpoints) ----------- */

/* Inject a barrier after what was written so far, and remember the offsets it follows. */
static int ack_mark(struct kin *k, int64_t now)
{
	json_t *offsets = written_offsets(k);
	k->mark_ms = now;
	if (json_equal(offsets, k->mark_offsets)) {
		json_decref(offsets); /* nothing new since the last barrier */
		return 0;
	}
	int64_t id = ++k->mark_id;
	json_decref(k->mark_offsets);
	k->mark_offsets = json_incref(offsets);
	json_array_append_new(k->marks,
			      json_pack("{s:I,s:o}", "id", (json_int_t)id, "offsets", offsets));
	return write_barrier(k, id, now);
}

/* Read the acknowledgements (waiting up to timeout_ms) and commit the offsets of the newest
 * barrier that every expected stage acknowledged. Returns EV_ACK_OPEN, EV_ACK_CLOSED, or -1. */
static int ack_commit(struct kin *k, int timeout_ms)
{
	char err[256];
	int64_t done;
	int st = ev_ack_poll(k->ack, timeout_ms, &done, err, sizeof(err));
	if (st < 0) {
		ev_error("%s", err);
		return -1;
	}
	size_t n = 0;
	while (n < json_array_size(k->marks) &&
	       json_integer_value(json_object_get(json_array_get(k->marks, n), "id")) <= done)
		n++;
	if (n) {
		json_t *m = json_array_get(k->marks, n - 1);
		commit_offsets(k, json_object_get(m, "offsets"));
		ev_debug("barrier %" JSON_INTEGER_FORMAT " acknowledged: its offsets committed",
			 json_integer_value(json_object_get(m, "id")));
		while (n--)
			json_array_remove(k->marks, 0);
	}
	return st;
}

static int ack_tick(struct kin *k)
{
	if (!k->ack)
		return 0;
	int64_t now = ev_wall_ms();
	if (now - k->mark_ms >= k->co.interval_ms && ack_mark(k, now) < 0)
		return -1;
	return ack_commit(k, 0) < 0 ? -1 : 0;
}

/* The output is complete (the last barrier and the end or stop line written): close it, so
 * that every stage downstream finishes, and commit as the acknowledgements of the last
 * barrier come back, for at most --checkpoint-timeout. */
static void ack_finish(struct kin *k)
{
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 1);
		close(null);
	}
	int64_t deadline = ev_wall_ms() + k->co.timeout_ms;
	while (json_array_size(k->marks) && ev_wall_ms() < deadline)
		if (ack_commit(k, 100) != EV_ACK_OPEN)
			break;
	if (json_array_size(k->marks))
		ev_warn("%zu barrier(s) not acknowledged: the offsets after the last acknowledged "
			"one are not committed, and a restart reads those records again",
			json_array_size(k->marks));
	if (ev_ack_malformed(k->ack))
		ev_warn("%" PRIu64 " malformed acknowledgement line(s) ignored",
			ev_ack_malformed(k->ack));
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct kin *k = opaque;
	ev_counter_inc(k->m_rebalances);
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		ev_info("assigned %d partition(s)", parts->cnt);
		parts_clear(k);
		for (int i = 0; i < parts->cnt; i++) {
			struct part *p =
				part_find(k, parts->elems[i].topic, parts->elems[i].partition, 1);
			restore_offset(k, p, &parts->elems[i]);
		}
		rd_kafka_assign(rk, parts);
	} else {
		ev_info("revoked %d partition(s)", parts->cnt);
		if (k->ack) {
			/* Offsets of partitions no longer ours are not committed: the new owner
			 * reads from the last acknowledged ones. */
			json_array_clear(k->marks);
			json_decref(k->mark_offsets);
			k->mark_offsets = NULL;
		}
		/* Commit what was written before giving the partitions away. */
		if (flush_and_store(k) == 0)
			rd_kafka_commit(rk, NULL, 0);
		parts_clear(k);
		rd_kafka_assign(rk, NULL);
	}
}

static int probe_brokers(struct kin *k, const struct rd_kafka_metadata **md, rd_kafka_topic_t *rkt)
{
	char err[512];
	if (ev_kafka_probe(k->rk, &k->kafka, rkt, md, err, sizeof(err)) < 0) {
		ev_error("%s", err);
		return -1;
	}
	return 0;
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *val)
{
	char err[512];
	if (ev_kafka_conf_set(conf, key, val, 0, err, sizeof(err)) < 0) {
		ev_error("%s", err);
		return -1;
	}
	return 0;
}

static int make_client(struct kin *k, rd_kafka_type_t type)
{
	char err[512];
	rd_kafka_conf_t *conf = k->kafka.conf;
	k->kafka.conf = NULL;
	if (conf_set(conf, "bootstrap.servers", k->kafka.brokers) < 0)
		return -1;
	if (k->common.metrics_addr) {
		char v[32];
		size_t n = sizeof(v);
		if (rd_kafka_conf_get(conf, "statistics.interval.ms", v, &n) == RD_KAFKA_CONF_OK &&
		    strcmp(v, "0") == 0 && conf_set(conf, "statistics.interval.ms", "5000") < 0)
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
	k->m_bytes_in = ev_metrics_counter(m, "evpipe_bytes_in_total", "Payload bytes read", NULL);
	k->m_bytes_out =
		ev_metrics_counter(m, "evpipe_bytes_out_total", "Payload bytes written", NULL);
	k->m_blocked = ev_tool_blocked(m, "stdout");
	k->m_skipped_blank =
		ev_metrics_counter(m, "evpipe_records_skipped_total",
				   "Input lines skipped, by reason", "reason=\"blank\"");
	k->m_skipped_control =
		ev_metrics_counter(m, "evpipe_records_skipped_total",
				   "Input lines skipped, by reason", "reason=\"control\"");
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
	k->m_delivery_errors = ev_metrics_counter(m, "evpipe_kafka_delivery_errors_total",
						  "Messages that could not be delivered", NULL);
	k->m_rebalances = ev_metrics_counter(m, "evpipe_kafka_rebalances_total",
					     "Consumer group rebalances (assign and revoke)", NULL);
}

/* Assign partitions directly (no group): every partition of every topic, or -p's. */
static int assign_partitions(struct kin *k)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
	int rc = -1;
	for (int t = 0; t < k->ntopics; t++) {
		rd_kafka_topic_t *rkt = rd_kafka_topic_new(k->rk, k->topics[t], NULL);
		const struct rd_kafka_metadata *md = NULL;
		if (probe_brokers(k, &md, rkt) < 0) {
			rd_kafka_topic_destroy(rkt);
			goto out;
		}
		rd_kafka_topic_destroy(rkt);
		const struct rd_kafka_metadata_topic *mt = md->topic_cnt ? &md->topics[0] : NULL;
		if (!mt || mt->err) {
			ev_error("topic '%s': %s", k->topics[t],
				 rd_kafka_err2str(mt ? mt->err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
			rd_kafka_metadata_destroy(md);
			goto out;
		}
		int found = 0;
		for (int i = 0; i < mt->partition_cnt; i++) {
			int32_t id = mt->partitions[i].id;
			if (k->partition != RD_KAFKA_PARTITION_UA && id != k->partition)
				continue;
			found = 1;
			rd_kafka_topic_partition_t *tp =
				rd_kafka_topic_partition_list_add(list, k->topics[t], id);
			switch (k->start) {
			case START_DEFAULT:
			case START_BEGINNING: tp->offset = RD_KAFKA_OFFSET_BEGINNING; break;
			case START_END: tp->offset = RD_KAFKA_OFFSET_END; break;
			case START_STORED: tp->offset = RD_KAFKA_OFFSET_STORED; break;
			case START_ABS: tp->offset = k->start_value; break;
			case START_TAIL: tp->offset = RD_KAFKA_OFFSET_TAIL(k->start_value); break;
			case START_TIME: tp->offset = k->start_value; break;
			}
			struct part *p = part_find(k, k->topics[t], id, 1);
			if (!p) {
				ev_error("out of memory");
				rd_kafka_metadata_destroy(md);
				goto out;
			}
			restore_offset(k, p, tp);
		}
		rd_kafka_metadata_destroy(md);
		if (!found) {
			ev_error("topic '%s' has no partition %d", k->topics[t], (int)k->partition);
			goto out;
		}
	}
	if (k->start == START_TIME) {
		rd_kafka_resp_err_t err =
			rd_kafka_offsets_for_times(k->rk, list, (int)k->kafka.timeout_ms);
		if (err) {
			ev_error("cannot look up offsets for time %" PRId64 ": %s", k->start_value,
				 rd_kafka_err2str(err));
			goto out;
		}
		for (int i = 0; i < list->cnt; i++)
			if (list->elems[i].offset < 0) /* no message that late: start at the end */
				list->elems[i].offset = RD_KAFKA_OFFSET_END;
	}
	rd_kafka_resp_err_t err = rd_kafka_assign(k->rk, list);
	if (err) {
		ev_error("cannot assign partitions: %s", rd_kafka_err2str(err));
		goto out;
	}
	rc = 0;
out:
	rd_kafka_topic_partition_list_destroy(list);
	return rc;
}

/* The first partition of the restored checkpoint, of a topic this kin consumes, that is not
 * assigned to this consumer, as "topic [N]" in buf; 0 when every one is. (A checkpoint of
 * another pipeline restored with --restore-mismatch allow may name other topics.) */
static int restored_unassigned(const struct kin *k, char *buf, size_t buflen)
{
	const char *topic, *num;
	json_t *parts, *off;
	json_object_foreach(k->restore_offsets, topic, parts)
	{
		int t = 0;
		while (t < k->ntopics && strcmp(k->topics[t], topic) != 0)
			t++;
		if (t == k->ntopics)
			continue;
		json_object_foreach(parts, num, off)
		{
			size_t i = 0;
			while (i < k->nparts && !(k->parts[i].partition == atoi(num) &&
						  strcmp(k->parts[i].topic, topic) == 0))
				i++;
			if (i == k->nparts) {
				snprintf(buf, buflen, "%s [%s]", topic, num);
				return 1;
			}
		}
	}
	return 0;
}

/* Every assigned partition is at its end (-e) or stop (e@), and so is every partition of the
 * restored checkpoint (with -G): the state restored with a partition (evwindow's open windows)
 * is final only once that partition was read to its end here. A member of the group that died
 * holds its partitions until its session times out; the end waits for the rebalance. */
static int all_done(struct kin *k)
{
	if (k->nparts == 0)
		return 0;
	for (size_t i = 0; i < k->nparts; i++)
		if (!k->parts[i].done && !(k->exit_eof && k->parts[i].eof))
			return 0;
	char which[300];
	if (k->group && restored_unassigned(k, which, sizeof(which))) {
		if (!k->told_unassigned)
			ev_info("%s of the restored checkpoint is not assigned to this consumer "
				"(another member of group '%s', maybe one that died and has not timed "
				"out yet): waiting for it before the end",
				which, k->group);
		k->told_unassigned = 1;
		return 0;
	}
	return 1;
}

static int write_message(struct kin *k, const rd_kafka_message_t *msg, ev_buf *line)
{
	if (k->json) {
		ev_buf_reset(line);
		if (ev_kafka_envelope_format(line, msg) < 0)
			return -1;
		return ev_writer_line(k->out, line->data, line->len);
	}
	/* A registry frame (byte 0, 4-byte schema id) with --meta-field: the id goes into the
	 * provenance and the frame off the payload, before the payload's safety is judged (the
	 * id's bytes may hold a newline). */
	const char *payload = msg->payload;
	size_t plen = msg->len;
	int32_t sid = 0;
	int framed = k->meta_field && ev_registry_unframe(payload, plen, &sid);
	if (framed) {
		payload += EV_REGISTRY_FRAME_LEN;
		plen -= EV_REGISTRY_FRAME_LEN;
	}
	/* A payload never becomes a control line or two lines (ADR 0013). */
	const char *unsafe = ev_control_payload_unsafe(payload, plen);
	if (k->meta_field || unsafe) {
		ev_meta m = {rd_kafka_topic_name(msg->rkt),
			     msg->partition,
			     msg->offset,
			     rd_kafka_message_timestamp(msg, NULL),
			     unsafe,
			     framed,
			     sid};
		ev_buf_reset(line);
		if (unsafe) {
			ev_counter_inc(strcmp(unsafe, "reserved") == 0 ? k->m_rejected_reserved
								       : k->m_rejected_newline);
			ev_debug("%s [%d] at offset %" PRId64 ": %s: written as a rejected record",
				 m.topic, (int)m.partition, m.offset, unsafe);
		}
		if (ev_meta_insert(line, unsafe ? EV_META_REJECTED : k->meta_field, &m, payload,
				   plen) < 0)
			return -1;
		return ev_writer_line(k->out, line->data, line->len);
	}
	return ev_writer_line(k->out, msg->payload ? msg->payload : "", msg->len);
}

/* What consume_one decided. */
enum { CONSUMED, FINISHED, FAILED, WRITE_FAILED };
#define CONSUME_BATCH 1024

/* Handle one message or event of the consumer queue (the caller destroys it). */
static int consume_one(struct kin *k, const rd_kafka_message_t *msg, ev_buf *line, uint64_t *count)
{
	if (msg->err) {
		if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			struct part *p =
				part_find(k, rd_kafka_topic_name(msg->rkt), msg->partition, 0);
			if (p)
				p->eof = 1;
			return all_done(k) ? FINISHED : CONSUMED;
		}
		ev_error("%s%s%s", msg->rkt ? rd_kafka_topic_name(msg->rkt) : "",
			 msg->rkt ? ": " : "", rd_kafka_message_errstr(msg));
		int fatal = msg->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
			    msg->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
			    msg->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
			    msg->err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED;
		return fatal ? FAILED : CONSUMED;
	}
	struct part *p = part_find(k, rd_kafka_topic_name(msg->rkt), msg->partition, 1);
	if (p)
		p->eof = 0;
	if (k->end_ts >= 0 && rd_kafka_message_timestamp(msg, NULL) >= k->end_ts) {
		if (p && !p->done) {
			p->done = 1;
			rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
			rd_kafka_topic_partition_list_add(one, p->topic, p->partition);
			rd_kafka_pause_partitions(k->rk, one);
			rd_kafka_topic_partition_list_destroy(one);
		}
		return all_done(k) ? FINISHED : CONSUMED;
	}
	ev_counter_inc(k->m_in);
	ev_counter_add(k->m_bytes_in, msg->len);
	if (write_message(k, msg, line) < 0)
		return WRITE_FAILED;
	ev_counter_inc(k->m_out);
	ev_counter_add(k->m_bytes_out, msg->len);
	if (p)
		p->pending = p->written = msg->offset + 1;
	(*count)++;
	return k->max_count > 0 && *count >= (uint64_t)k->max_count ? FINISHED : CONSUMED;
}

static int consume(struct kin *k)
{
	int rc = EV_EXIT_OK;
	uint64_t count = 0;
	uint64_t last_flush = ev_mono_ns();
	ev_buf line = EV_BUF_INIT;

	if (k->group) {
		rd_kafka_conf_t *conf = k->kafka.conf;
		if (conf_set(conf, "group.id", k->group) < 0 ||
		    conf_set(conf, "enable.auto.offset.store", "false") < 0 ||
		    conf_set(conf, "auto.offset.reset",
			     k->start == START_END ? "latest" : "earliest") < 0)
			return EV_EXIT_FAILURE;
		rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
	} else {
		char gid[64];
		snprintf(gid, sizeof(gid), "kin-%ld", (long)getpid());
		if (conf_set(k->kafka.conf, "group.id", gid) < 0 ||
		    conf_set(k->kafka.conf, "enable.auto.commit", "false") < 0)
			return EV_EXIT_FAILURE;
	}
	/* librdkafka 2.0 stops fetching for a second once queued.min.messages are waiting (a
	 * later release made that fetch.queue.backoff.ms): a fast pipeline drains 100000 (the
	 * default) long before that second is over and then starves. Half a million (still at
	 * most queued.max.messages.kbytes of payload) outlasts the pause; the user's -X or -F
	 * value wins. */
	char msg[256];
	if (ev_kafka_opts_default(&k->kafka, "queued.min.messages", "500000", msg, sizeof(msg)) <
		    0 ||
	    ev_kafka_opts_default(&k->kafka, "fetch.wait.max.ms", "100", msg, sizeof(msg)) < 0) {
		ev_error("%s", msg);
		return EV_EXIT_FAILURE;
	}
	if ((k->exit_eof && conf_set(k->kafka.conf, "enable.partition.eof", "true") < 0) ||
	    make_client(k, RD_KAFKA_CONSUMER) < 0)
		return EV_EXIT_FAILURE;
	rd_kafka_poll_set_consumer(k->rk);
	if (probe_brokers(k, NULL, NULL) < 0)
		return EV_EXIT_FAILURE;

	if (k->group) {
		rd_kafka_topic_partition_list_t *subs =
			rd_kafka_topic_partition_list_new(k->ntopics);
		for (int i = 0; i < k->ntopics; i++)
			rd_kafka_topic_partition_list_add(subs, k->topics[i],
							  RD_KAFKA_PARTITION_UA);
		rd_kafka_resp_err_t err = rd_kafka_subscribe(k->rk, subs);
		rd_kafka_topic_partition_list_destroy(subs);
		if (err) {
			ev_error("cannot subscribe: %s", rd_kafka_err2str(err));
			return EV_EXIT_FAILURE;
		}
	} else if (assign_partitions(k) < 0) {
		return EV_EXIT_FAILURE;
	}

	rd_kafka_queue_t *queue = rd_kafka_queue_get_consumer(k->rk);
	rd_kafka_message_t *batch[CONSUME_BATCH];
	int act = CONSUMED;
	while (act == CONSUMED && !ev_tool_stop_requested() && !k->fatal) {
		ssize_t n = rd_kafka_consume_batch_queue(queue, 100, batch, CONSUME_BATCH);
		if (checkpoint_tick(k) < 0 || ack_tick(k) < 0) {
			act = FAILED;
			break;
		}
		if (n <= 0) {
			if (flush_and_store(k) < 0)
				act = WRITE_FAILED;
			last_flush = ev_mono_ns();
			continue;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (act == CONSUMED)
				act = consume_one(k, batch[i], &line, &count);
			rd_kafka_message_destroy(batch[i]);
		}
		if (act == CONSUMED && ev_mono_ns() - last_flush > 100000000u) {
			if (flush_and_store(k) < 0)
				act = WRITE_FAILED;
			last_flush = ev_mono_ns();
		}
	}
	rd_kafka_queue_destroy(queue);
	if (act == WRITE_FAILED)
		goto write_error;
	if (act == FAILED)
		rc = EV_EXIT_FAILURE;
	int settled = act == FINISHED || (ev_tool_stop_requested() && act == CONSUMED);
	if (settled && k->ack && ack_mark(k, ev_wall_ms()) < 0)
		goto write_error; /* the last barrier: after every record written */
	if (settled && (k->coord || k->meta_field)) {
		/* Finished (-e, -c), or only stopped: say which downstream, so that windows are
		 * fired at the end of a stream and not when it is merely suspended. */
		ev_control stop = {act == FINISHED ? EV_CTL_END : EV_CTL_STOP, 0, 0};
		ev_buf_reset(&line);
		if (ev_control_format(&line, &stop) < 0 ||
		    ev_writer_line(k->out, line.data, line.len) < 0)
			goto write_error;
	}
	if (flush_and_store(k) < 0)
		goto write_error;
	if (settled && k->ack)
		ack_finish(k);
	if (k->fatal)
		rc = EV_EXIT_FAILURE;
	if (k->group) {
		rd_kafka_resp_err_t err = rd_kafka_commit(k->rk, NULL, 0);
		if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
			ev_warn("cannot commit offsets: %s", rd_kafka_err2str(err));
	}
	/* Leave the group while the output still exists: the revoke callback flushes it. */
	rd_kafka_consumer_close(k->rk);
	ev_buf_free(&line);
	return rc;
write_error:
	if (errno != EPIPE && !k->stopped_by_checkpoints)
		ev_error("cannot write standard output: %s", strerror(errno));
	ev_buf_free(&line);
	return EV_EXIT_FAILURE;
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

/* 1 when fd is readable (or at EOF or in error), 0 on timeout or a signal. */
static int wait_readable(int fd, int timeout_ms)
{
	struct pollfd pfd = {fd, POLLIN, 0};
	return poll(&pfd, 1, timeout_ms) > 0;
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

static int produce(struct kin *k)
{
	int rc = EV_EXIT_OK;
	uint64_t rejected = 0;
	ev_buf key = EV_BUF_INIT;
	ev_kafka_envelope env;
	memset(&env, 0, sizeof(env));

	if (k->subject && resolve_subject(k) < 0)
		return EV_EXIT_FAILURE;
	rd_kafka_conf_set_dr_msg_cb(k->kafka.conf, on_delivery);
	if (k->idempotence && conf_set(k->kafka.conf, "enable.idempotence", "true") < 0)
		return EV_EXIT_FAILURE;
	if (make_client(k, RD_KAFKA_PRODUCER) < 0 || probe_brokers(k, NULL, NULL) < 0)
		return EV_EXIT_FAILURE;
	ev_reader *in = ev_reader_new(0, (size_t)k->max_line);
	rd_kafka_topic_t *rkt = k->ntopics ? rd_kafka_topic_new(k->rk, k->topics[0], NULL) : NULL;
	if (!in) {
		ev_error("out of memory");
		return EV_EXIT_FAILURE;
	}

	char *line;
	size_t len;
	int flags, r;
	while (!ev_tool_stop_requested() && !k->fatal) {
		/* Serve delivery reports while stdin is quiet, so metrics and failures stay current. */
		if (ev_reader_buffered(in) == 0 && wait_readable(0, 100) == 0) {
			rd_kafka_poll(k->rk, 0);
			continue;
		}
		r = ev_reader_next(in, &line, &len, &flags);
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ev_error("cannot read standard input: %s", strerror(errno));
			rc = EV_EXIT_FAILURE;
			break;
		}
		ev_counter_inc(k->m_in);
		ev_counter_add(k->m_bytes_in, len);
		if (len == 0) {
			ev_counter_inc(k->m_skipped_blank);
			continue;
		}
		if (flags & EV_LINE_TOO_LONG) {
			ev_error("line %" PRIu64 ": %zu bytes is over --max-line-bytes %" PRIu64
				 ": not produced",
				 ev_reader_lines(in), len, k->max_line);
			ev_counter_inc(k->m_rejected_too_long);
			rejected++;
			continue;
		}
		if (ev_control_is(line, len)) {
			/* Control lines belong to the stream, not to the topic's data. */
			ev_counter_inc(k->m_skipped_control);
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
				ev_error("line %" PRIu64 ": %s: not produced", ev_reader_lines(in),
					 msg);
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
				ev_error(
					"line %" PRIu64
					": envelope has no topic and -t was not given: not produced",
					ev_reader_lines(in));
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
		if ((ev_reader_lines(in) & 63) == 0)
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
	ev_debug("%" PRIu64 " message(s) delivered", k->dl.delivered);
	if (rkt)
		rd_kafka_topic_destroy(rkt);
	ev_reader_free(in);
	ev_kafka_envelope_free(&env);
	ev_buf_free(&key);
	ev_buf_free(&k->frame);
	return rc;
}

static void print_broker_list(const struct rd_kafka_metadata_partition *mp, int json, int isrs)
{
	int n = isrs ? mp->isr_cnt : mp->replica_cnt;
	const int32_t *ids = isrs ? mp->isrs : mp->replicas;
	for (int i = 0; i < n; i++) {
		if (json)
			printf("%s{\"id\":%d}", i ? "," : "", (int)ids[i]);
		else
			printf("%s%d", i ? "," : "", (int)ids[i]);
	}
}

static int list_metadata(struct kin *k)
{
	if (make_client(k, RD_KAFKA_PRODUCER) < 0)
		return EV_EXIT_FAILURE;
	rd_kafka_topic_t *rkt = k->ntopics ? rd_kafka_topic_new(k->rk, k->topics[0], NULL) : NULL;
	const struct rd_kafka_metadata *md;
	int rc = probe_brokers(k, &md, rkt);
	if (rkt)
		rd_kafka_topic_destroy(rkt);
	if (rc < 0)
		return EV_EXIT_FAILURE;
	int32_t controller = rd_kafka_controllerid(k->rk, 0);
	ev_buf s = EV_BUF_INIT;
	if (k->json) {
		printf("{\"originating_broker\":{\"id\":%d,\"name\":", (int)md->orig_broker_id);
		ev_buf_json_string(&s, md->orig_broker_name, strlen(md->orig_broker_name));
		printf("%s},\"query\":{\"topic\":\"%s\"},\"controllerid\":%d,\"brokers\":[", s.data,
		       k->ntopics ? k->topics[0] : "*", (int)controller);
		for (int i = 0; i < md->broker_cnt; i++)
			printf("%s{\"id\":%d,\"name\":\"%s:%d\"}", i ? "," : "",
			       (int)md->brokers[i].id, md->brokers[i].host, md->brokers[i].port);
		printf("],\"topics\":[");
		for (int t = 0; t < md->topic_cnt; t++) {
			const struct rd_kafka_metadata_topic *mt = &md->topics[t];
			ev_buf_reset(&s);
			ev_buf_json_string(&s, mt->topic, strlen(mt->topic));
			printf("%s{\"topic\":%s,", t ? "," : "", s.data);
			if (mt->err)
				printf("\"error\":\"%s\",", rd_kafka_err2str(mt->err));
			printf("\"partitions\":[");
			for (int p = 0; p < mt->partition_cnt; p++) {
				const struct rd_kafka_metadata_partition *mp = &mt->partitions[p];
				printf("%s{\"partition\":%d,\"leader\":%d,\"replicas\":[",
				       p ? "," : "", (int)mp->id, (int)mp->leader);
				print_broker_list(mp, 1, 0);
				printf("],\"isrs\":[");
				print_broker_list(mp, 1, 1);
				printf("]}");
			}
			printf("]}");
		}
		printf("]}\n");
	} else {
		printf("Metadata for %s (from broker %d: %s):\n",
		       k->ntopics ? k->topics[0] : "all topics", (int)md->orig_broker_id,
		       md->orig_broker_name);
		printf(" %d brokers:\n", md->broker_cnt);
		for (int i = 0; i < md->broker_cnt; i++)
			printf("  broker %d at %s:%d%s\n", (int)md->brokers[i].id,
			       md->brokers[i].host, md->brokers[i].port,
			       md->brokers[i].id == controller ? " (controller)" : "");
		printf(" %d topics:\n", md->topic_cnt);
		for (int t = 0; t < md->topic_cnt; t++) {
			const struct rd_kafka_metadata_topic *mt = &md->topics[t];
			printf("  topic \"%s\" with %d partitions:%s%s\n", mt->topic,
			       mt->partition_cnt, mt->err ? " " : "",
			       mt->err ? rd_kafka_err2str(mt->err) : "");
			for (int p = 0; p < mt->partition_cnt; p++) {
				const struct rd_kafka_metadata_partition *mp = &mt->partitions[p];
				printf("    partition %d, leader %d, replicas: ", (int)mp->id,
				       (int)mp->leader);
				print_broker_list(mp, 0, 0);
				printf(", isrs: ");
				print_broker_list(mp, 0, 1);
				printf("\n");
			}
		}
	}
	ev_buf_free(&s);
	rd_kafka_metadata_destroy(md);
	return EV_EXIT_OK;
}

static int parse_args(struct kin *k, int argc, char **argv)
{
	char err[512];
	int c;
	int64_t v;

	opterr = 0;
	while ((c = getopt_long(argc, argv,
				"CPLt:p:o:ec:G:Jk:" EV_KAFKA_SHORT_OPTIONS EV_TOOL_SHORT_OPTIONS,
				long_options, NULL)) != -1) {
		int common = ev_tool_common_option(c, optarg, usage_text, &k->common);
		if (common < 0)
			return -1;
		if (common > 0)
			continue;
		int kafka = ev_kafka_opts_option(&k->kafka, c, optarg, err, sizeof(err));
		if (kafka < 0)
			return ev_tool_usage_error("%s", err);
		if (kafka > 0)
			continue;
		switch (c) {
		case 'C':
		case 'P':
		case 'L':
			if (k->mode && k->mode != c)
				return ev_tool_usage_error("-C, -P and -L exclude each other");
			k->mode = c;
			break;
		case 't':
			if (k->ntopics == MAX_TOPICS)
				return ev_tool_usage_error("at most %d topics", MAX_TOPICS);
			k->topics[k->ntopics++] = optarg;
			break;
		case 'p':
			if (ev_opt_int(optarg, 0, INT32_MAX, &v) < 0)
				return ev_tool_usage_error("invalid partition '%s'", optarg);
			k->partition = (int32_t)v;
			break;
		case 'o':
			if (parse_offset(k, optarg) < 0)
				return ev_tool_usage_error("invalid offset '%s'", optarg);
			break;
		case 'e': k->exit_eof = 1; break;
		case 'c':
			if (ev_opt_int(optarg, 1, INT64_MAX, &k->max_count) < 0)
				return ev_tool_usage_error("invalid count '%s'", optarg);
			break;
		case 'G': k->group = optarg; break;
		case 'J': k->json = 1; break;
		case 'k': k->key = optarg; break;
		case OPT_KEY_FIELD: k->key_field = optarg; break;
		case OPT_META_FIELD: k->meta_field = optarg; break;
		case OPT_MAX_LINE:
			if (ev_opt_size(optarg, &k->max_line) < 0 || k->max_line == 0)
				return ev_tool_usage_error("invalid size '%s'", optarg);
			break;
		case OPT_NO_IDEMPOTENCE: k->idempotence = 0; break;
		case OPT_SCHEMA_ID:
			if (ev_opt_int(optarg, 1, INT32_MAX, &v) < 0)
				return ev_tool_usage_error("invalid schema id '%s'", optarg);
			k->schema_id = (int32_t)v;
			break;
		case OPT_SUBJECT: k->subject = optarg; break;
		case OPT_CKPT_INTERVAL:
		case OPT_CKPT_TIMEOUT:
			if (ev_opt_duration_ms(optarg, 1000, &v) < 0 || v <= 0)
				return ev_tool_usage_error("invalid duration '%s'", optarg);
			*(c == OPT_CKPT_INTERVAL ? &k->co.interval_ms : &k->co.timeout_ms) = v;
			break;
		case OPT_CKPT_EXPECT: {
			char *save = NULL;
			for (char *st = strtok_r(optarg, ",", &save); st;
			     st = strtok_r(NULL, ",", &save)) {
				if (k->co.nexpect == sizeof(k->expect) / sizeof(k->expect[0]))
					return ev_tool_usage_error("too many stages");
				k->expect[k->co.nexpect++] = st;
			}
			break;
		}
		case OPT_TOLERABLE:
			if (ev_opt_int(optarg, 0, 1000000, &v) < 0)
				return ev_tool_usage_error("invalid count '%s'", optarg);
			k->co.tolerable = (int)v;
			break;
		case OPT_COMMIT_ON_ACK: k->ack_spec = optarg; break;
		case OPT_RETAIN:
			if (ev_opt_int(optarg, 1, 1000000, &v) < 0)
				return ev_tool_usage_error("invalid count '%s'", optarg);
			k->co.retain = (int)v;
			break;
		default:
			if (ev_ckpt_option(c, optarg, &k->ck))
				break;
			return ev_tool_bad_option(argv);
		}
	}
	for (; optind < argc; optind++) {
		if (!k->group)
			return ev_tool_usage_error("unexpected argument '%s'", argv[optind]);
		if (k->ntopics == MAX_TOPICS)
			return ev_tool_usage_error("at most %d topics", MAX_TOPICS);
		k->topics[k->ntopics++] = argv[optind];
	}
	if (!k->mode)
		k->mode = k->group ? 'C' : 0;
	if (!k->mode)
		return ev_tool_usage_error("one of -C, -P or -L is required");
	if (ev_kafka_opts_brokers(&k->kafka) < 0)
		return ev_tool_usage_error("no brokers: give -b or set KAFKA_BROKERS");
	if (k->mode == 'C' && k->ntopics == 0)
		return ev_tool_usage_error("no topic: give -t TOPIC");
	if (k->mode == 'P' && k->ntopics > 1)
		return ev_tool_usage_error("produce takes one topic");
	if (k->mode == 'P' && k->ntopics == 0 && !k->json)
		return ev_tool_usage_error("no topic: give -t TOPIC");
	if (k->mode == 'C' && k->group &&
	    !(k->start == START_DEFAULT || k->start == START_BEGINNING || k->start == START_END))
		return ev_tool_usage_error(
			"with -G, -o takes only beginning or end (for a new group)");
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
	return 0;
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
	int64_t id = rs.id;
	k->restore_offsets = json_incref(rs.offsets);
	ev_ckpt_restored_free(&rs);
	if (id && !k->restore_offsets)
		snprintf(err, sizeof(err), "the manifest of checkpoint %" PRId64 " has no offsets",
			 id);
	if ((id && !k->restore_offsets) ||
	    !(k->coord = ev_coord_new(&k->co, k->metrics, err, sizeof(err)))) {
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
		rd_kafka_conf_destroy(k.kafka.conf);
		return rc < 0 ? ev_tool_finish(EV_EXIT_OK) : rc;
	}
	k.metrics = ev_tool_metrics("kin", k.common.job, k.common.metrics_addr);
	if (!k.metrics) {
		rd_kafka_conf_destroy(k.kafka.conf);
		return EV_EXIT_FAILURE;
	}
	setup_metrics(&k);
	if (k.ck.url && start_checkpoints(&k) < 0) {
		rd_kafka_conf_destroy(k.kafka.conf);
		ev_ckpt_close(&k.ck);
		ev_metrics_free(k.metrics);
		return EV_EXIT_FAILURE;
	}
	if (k.ack_spec) {
		k.ack = ev_ack_in_new(k.ack_spec, k.expect, k.co.nexpect, err, sizeof(err));
		k.marks = json_array();
		if (!k.ack || !k.marks) {
			ev_error("--commit-on-ack: %s", k.ack ? "out of memory" : err);
			rd_kafka_conf_destroy(k.kafka.conf);
			ev_metrics_free(k.metrics);
			return EV_EXIT_FAILURE;
		}
	}
	ev_tool_catch_signals();
	k.out = ev_writer_new(1, 64 * 1024);
	if (!k.out) {
		ev_error("out of memory");
		return EV_EXIT_FAILURE;
	}
	if (k.mode == 'C' && ev_writer_set_tick(k.out, output_blocked, &k, 100) < 0) {
		ev_error("standard output: %s", strerror(errno));
		return EV_EXIT_FAILURE;
	}

	switch (k.mode) {
	case 'C': rc = consume(&k); break;
	case 'P': rc = produce(&k); break;
	default: rc = list_metadata(&k); break;
	}

	/* The client first: destroying a consumer may still call the rebalance callback. */
	if (k.rk)
		destroy_client(k.rk, k.out, rc);
	if (k.kafka.conf)
		rd_kafka_conf_destroy(k.kafka.conf);
	if (ev_writer_free(k.out) < 0 && rc == EV_EXIT_OK && errno != EPIPE) {
		ev_error("cannot write standard output: %s", strerror(errno));
		rc = EV_EXIT_FAILURE;
	}
	parts_clear(&k);
	free(k.parts);
	ev_coord_free(k.coord);
	json_decref(k.restore_offsets);
	json_decref(k.marks);
	json_decref(k.mark_offsets);
	ev_ack_in_free(k.ack);
	ev_ckpt_close(&k.ck);
	ev_metrics_free(k.metrics);
	return ev_tool_finish(rc);
}
