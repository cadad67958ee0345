/* SPDX-License-Identifier: Apache-2.0 */
/* kin_produce.c: kin -P: produce lines (or -J envelopes, -D records, whole files) to Kafka. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
		t ? ev_kafka_produce(k->rk, t, partition, payload, len, key, keylen, ts, headers,
				     (int)k->kafka.timeout_ms)
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

/* The records of -D's delimiter when it is not a newline, read from fd: a record over max
 * bytes is returned with EV_LINE_TOO_LONG, its length counted but its bytes let go. */
struct delim_input {
	int fd;
	const char *delim;
	size_t dlen, max, start;
	ev_buf buf;
	uint64_t n, dropped;
	int eof;
	char where[32];
};

/* The next record, as ev_reader_next returns a line: 1, 0 at the end, -1 on a read error. */
static int delim_next(struct delim_input *in, char **rec, size_t *len, int *flags)
{
	for (;;) {
		char *base = in->buf.data + in->start;
		size_t avail = in->buf.len - in->start;
		char *hit = avail ? memmem(base, avail, in->delim, in->dlen) : NULL;
		if (hit || (in->eof && (avail || in->dropped))) {
			size_t n = hit ? (size_t)(hit - base) : avail;
			in->start += n + (hit ? in->dlen : 0);
			in->n++;
			*rec = base;
			*len = n + in->dropped;
			*flags = *len > in->max ? EV_LINE_TOO_LONG : 0;
			in->dropped = 0;
			return 1;
		}
		if (in->eof)
			return 0;
		/* Keep what may begin a delimiter of a record already too long, nothing more. */
		if (avail > in->max + in->dlen) {
			size_t drop = avail - (in->dlen - 1);
			in->dropped += drop;
			in->start += drop;
			avail -= drop;
		}
		if (avail && in->start)
			memmove(in->buf.data, in->buf.data + in->start, avail);
		in->buf.len = avail;
		in->start = 0;
		if (ev_buf_reserve(&in->buf, 65536) < 0)
			return -1;
		ssize_t r = read(in->fd, in->buf.data + in->buf.len, 65536);
		if (r < 0)
			return -1;
		if (r == 0)
			in->eof = 1;
		in->buf.len += (size_t)r;
	}
}

/* The key of a record with -K: what comes before the first delimiter (the rest is the payload);
 * with -Z an empty key or payload is null. Without the delimiter, -k's key or none. */
static void split_key(const struct kin *k, const char **kp, size_t *kn, const void **payload,
		      size_t *plen)
{
	const char *rec = *payload;
	const char *t = memmem(rec, *plen, k->key_delim_bytes.data, k->key_delim_bytes.len);
	*kp = NULL;
	*kn = 0;
	if (t) {
		*kp = rec;
		*kn = (size_t)(t - rec);
		*payload = t + k->key_delim_bytes.len;
		*plen -= *kn + k->key_delim_bytes.len;
		if (k->null_str && *plen == 0)
			*payload = NULL;
		if (k->null_str && *kn == 0)
			*kp = NULL;
	}
	if (!*kp && k->key) {
		*kp = k->key;
		*kn = strlen(k->key);
	}
}

/* -T: what was produced, and its delimiter, to stdout. */
static int tee_out(struct kin *k, const void *data, size_t len, int delimited)
{
	if (ev_writer_write(k->out, data, len) < 0 ||
	    (delimited && ev_writer_write(k->out, k->delim_bytes.data, k->delim_bytes.len) < 0) ||
	    (k->unbuffered && ev_writer_flush(k->out) < 0)) {
		if (errno != EPIPE)
			ev_error("cannot write standard output: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Produce to -t's topic with -H's headers (a copy for each message). */
static int produce_with_headers(struct kin *k, rd_kafka_topic_t *rkt, int32_t partition,
				const void *payload, size_t len, const void *key, size_t keylen)
{
	rd_kafka_headers_t *h = k->headers ? rd_kafka_headers_copy(k->headers) : NULL;
	int rc = produce_one(k, rkt, k->topics[0], partition, payload, len, key, keylen, 0,
			     h ? &h : NULL);
	if (h)
		rd_kafka_headers_destroy(h);
	return rc;
}

/* What one run of kin -P holds. */
struct producing {
	rd_kafka_topic_t *rkt;
	ev_kafka_envelope env;
	ev_buf key;
	uint64_t rejected, blank;
	ev_counter *m_blank; /* blank lines skipped: the stage loop's, or -D's and FILEs' */
};

/* What became of a record. */
enum { NEXT, STOP, ENOUGH };

/* Produce one record of the input (a line, or -D's record); where names it in messages. */
static int produce_record(struct kin *k, struct producing *p, const char *line, size_t len,
			  int flags, const char *where)
{
	if (flags & EV_LINE_TOO_LONG) {
		ev_error("%s: %zu bytes is over --max-line-bytes %" PRIu64 ": not produced", where,
			 len, k->max_line);
		ev_counter_inc(k->m_rejected_too_long);
		p->rejected++;
		return NEXT;
	}
	const char *kp = k->key;
	size_t kn = k->key ? strlen(k->key) : 0;
	int32_t partition = k->partition;
	const char *topic = k->ntopics ? k->topics[0] : NULL;
	const void *payload = line;
	size_t plen = len;
	int err = 0;
	if (k->json) {
		char msg[512];
		ev_kafka_envelope *env = &p->env;
		if (ev_kafka_envelope_parse(env, line, len, msg, sizeof(msg)) < 0) {
			ev_error("%s: %s: not produced", where, msg);
			ev_counter_inc(k->m_rejected_envelope);
			p->rejected++;
			return NEXT;
		}
		if (partition == RD_KAFKA_PARTITION_UA)
			partition = env->partition;
		if (!topic)
			topic = env->topic;
		if (!topic) {
			ev_error("%s: envelope has no topic and -t was not given: not produced",
				 where);
			ev_counter_inc(k->m_rejected_envelope);
			p->rejected++;
			rd_kafka_headers_destroy(env->headers);
			env->headers = NULL;
			return NEXT;
		}
		err = produce_one(k, k->ntopics ? p->rkt : NULL, topic, partition, env->payload,
				  env->payload_len, env->key, env->key_len, env->ts, &env->headers);
		if (env->headers) {
			rd_kafka_headers_destroy(env->headers);
			env->headers = NULL;
		}
	} else {
		if (k->key_field) {
			int found = key_from_field(line, len, k->key_field, &p->key) == 0;
			kp = found ? p->key.data : NULL;
			kn = found ? p->key.len : 0;
		}
		if (k->key_delim)
			split_key(k, &kp, &kn, &payload, &plen);
		err = k->headers ? produce_with_headers(k, p->rkt, partition, payload, plen, kp, kn)
				 : produce_one(k, p->rkt, topic, partition, payload, plen, kp, kn,
					       0, NULL);
	}
	if (err < 0) {
		p->rejected++;
		return k->keep_going ? NEXT : STOP;
	}
	if (k->tee && tee_out(k, line, len, 1) < 0)
		return STOP;
	return k->max_count && (int64_t)++k->produced >= k->max_count ? ENOUGH : NEXT;
}

/* The lines of stdin or of -l's FILEs, through the stage loop's input. */
static int produce_lines(struct kin *k, struct producing *p)
{
	/* Every line read is a record in, blank and control lines too; control lines are passed
	 * over unchecked: they belong to the stream, not to the topic's data. */
	ev_stage_opts so = {.files = k->files,
			    .nfiles = k->nfiles,
			    .max_line = (size_t)k->max_line,
			    .metrics = k->metrics,
			    .flags = EV_STAGE_COUNT_EVERY_LINE | EV_STAGE_CONTROL_UNCHECKED};
	ev_stage *in = ev_stage_new(&so);
	ev_stage_line l;
	int r, rc = EV_EXIT_OK;
	if (!in) {
		ev_error("out of memory");
		return EV_EXIT_FAILURE;
	}
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
		if (l.cls == EV_LINE_CONTROL) {
			ev_counter_inc(k->m_skipped_control);
			continue;
		}
		int done = produce_record(k, p, l.data, l.len, l.flags, ev_stage_where(in));
		if (done == STOP)
			rc = EV_EXIT_FAILURE;
		if (done != NEXT)
			break;
		/* Serve delivery reports now and then; each poll takes the queue's lock. */
		if ((l.lineno & 63) == 0)
			rd_kafka_poll(k->rk, 0);
	}
	p->blank = ev_stage_blank(in);
	ev_stage_free(in);
	return rc;
}

/* The records of -D's delimiter, from stdin or -l's one FILE. */
static int produce_delimited(struct kin *k, struct producing *p)
{
	const char *path = k->nfiles ? k->files[0] : "-";
	struct delim_input in = {.delim = k->delim_bytes.data,
				 .dlen = k->delim_bytes.len,
				 .max = (size_t)k->max_line};
	char *rec;
	size_t len;
	int flags, r, rc = EV_EXIT_OK;
	in.fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	if (in.fd < 0) {
		ev_error("cannot open '%s': %s", path, strerror(errno));
		return EV_EXIT_FAILURE;
	}
	while (!ev_tool_stop_requested() && !k->fatal &&
	       (r = delim_next(&in, &rec, &len, &flags))) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ev_error("cannot read '%s': %s", path, strerror(errno));
			rc = EV_EXIT_FAILURE;
			break;
		}
		ev_counter_inc(k->m_in);
		ev_counter_add(k->m_bytes_in, len);
		enum ev_line_class cls = ev_line_classify(rec, len, flags, 0);
		if (cls == EV_LINE_BLANK || cls == EV_LINE_CONTROL) {
			p->blank += cls == EV_LINE_BLANK;
			ev_counter_inc(cls == EV_LINE_BLANK ? p->m_blank : k->m_skipped_control);
			continue;
		}
		snprintf(in.where, sizeof(in.where), "record %" PRIu64, in.n);
		int done = produce_record(k, p, rec, len, flags, in.where);
		if (done == STOP)
			rc = EV_EXIT_FAILURE;
		if (done != NEXT)
			break;
		if ((in.n & 63) == 0)
			rd_kafka_poll(k->rk, 0);
	}
	ev_buf_free(&in.buf);
	if (in.fd > 0)
		close(in.fd);
	return rc;
}

/* FILE arguments without -l: each file one message, its bytes as they are (kcat's). */
static int produce_files(struct kin *k, struct producing *p)
{
	ev_buf data = EV_BUF_INIT;
	int rc = EV_EXIT_OK;
	for (size_t i = 0; i < k->nfiles && !ev_tool_stop_requested() && !k->fatal; i++) {
		int fd = open(k->files[i], O_RDONLY | O_CLOEXEC);
		ssize_t r = 1;
		ev_buf_reset(&data);
		while (fd >= 0 && r > 0 && data.len <= k->max_line &&
		       ev_buf_reserve(&data, 65536) == 0)
			if ((r = read(fd, data.data + data.len, 65536)) > 0)
				data.len += (size_t)r;
		if (fd >= 0)
			close(fd);
		if (fd < 0 || r < 0) {
			ev_error("cannot read '%s': %s", k->files[i], strerror(errno));
			p->rejected++;
			continue;
		}
		ev_counter_inc(k->m_in);
		ev_counter_add(k->m_bytes_in, data.len);
		if (data.len == 0) {
			p->blank++;
			ev_counter_inc(p->m_blank);
			continue;
		}
		if (data.len > k->max_line) {
			ev_error("'%s': over --max-line-bytes %" PRIu64 ": not produced",
				 k->files[i], k->max_line);
			ev_counter_inc(k->m_rejected_too_long);
			p->rejected++;
			continue;
		}
		size_t kn = k->key ? strlen(k->key) : 0;
		if (produce_with_headers(k, p->rkt, k->partition, data.data, data.len, k->key, kn) <
		    0) {
			p->rejected++;
			if (k->keep_going)
				continue;
			rc = EV_EXIT_FAILURE;
			break;
		}
		if (k->tee && tee_out(k, data.data, data.len, 0) < 0) {
			rc = EV_EXIT_FAILURE;
			break;
		}
		if (k->max_count && (int64_t)++k->produced >= k->max_count)
			break;
	}
	ev_buf_free(&data);
	return rc;
}

int kin_produce(struct kin *k)
{
	struct producing p = {.key = EV_BUF_INIT};
	int rc;

	if (k->subject && resolve_subject(k) < 0)
		return EV_EXIT_FAILURE;
	rd_kafka_conf_set_dr_msg_cb(k->kafka.conf, on_delivery);
	if (k->idempotence && kin_conf_set(k->kafka.conf, "enable.idempotence", "true") < 0)
		return EV_EXIT_FAILURE;
	if (kin_make_client(k, RD_KAFKA_PRODUCER) < 0 || kin_probe_brokers(k, NULL, NULL) < 0)
		return EV_EXIT_FAILURE;
	p.rkt = k->ntopics ? rd_kafka_topic_new(k->rk, k->topics[0], NULL) : NULL;
	p.m_blank = ev_tool_skipped(k->metrics, "blank");
	if (k->nfiles && !k->line_file)
		rc = produce_files(k, &p);
	else if (k->delim_bytes.len == 1 && k->delim_bytes.data[0] == '\n')
		rc = produce_lines(k, &p);
	else
		rc = produce_delimited(k, &p);

	if (ev_tool_stop_requested())
		ev_info("stopping on signal %d: flushing %d queued message(s)",
			ev_tool_stop_requested(), rd_kafka_outq_len(k->rk));
	/* Flush everything queued, even after a signal: what was read must be delivered; after
	 * a signal for --timeout at most (brokers down would hold it for message.timeout.ms). */
	int left = ev_kafka_flush_all(k->rk, (int)k->kafka.timeout_ms);
	if (left) {
		ev_error("%d message(s) not delivered within --timeout of the stop signal", left);
		rc = EV_EXIT_FAILURE;
	}
	if (k->dl.failed) {
		ev_error("%" PRIu64 " of %" PRIu64 " message(s) failed delivery: %s", k->dl.failed,
			 k->dl.failed + k->dl.delivered, rd_kafka_err2str(k->dl.first_err));
		rc = EV_EXIT_FAILURE;
	}
	const char *what = k->nfiles && !k->line_file ? "file(s)" : "line(s)";
	if (p.rejected) {
		ev_error("%" PRIu64 " %s were not produced (see above)", p.rejected, what);
		rc = EV_EXIT_FAILURE;
	}
	if (k->fatal)
		rc = EV_EXIT_FAILURE;
	ev_info("%" PRIu64 " %s: %" PRIu64 " message(s) delivered, %" PRIu64
		" not produced; %" PRIu64 " blank and %" PRIu64 " control line(s) skipped",
		ev_counter_value(k->m_in), what, k->dl.delivered, p.rejected, p.blank,
		ev_counter_value(k->m_skipped_control));
	if (p.rkt)
		rd_kafka_topic_destroy(p.rkt);
	ev_kafka_envelope_free(&p.env);
	ev_buf_free(&p.key);
	ev_buf_free(&k->frame);
	return rc;
}
