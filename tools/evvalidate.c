/* evvalidate: pass records that meet a data contract, dead-letter the rest with the reason. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "checkpoint.h"
#include "codec.h"
#include "control.h"
#include "deadletter.h"
#include "log.h"
#include "meta.h"
#include "metrics.h"
#include "ndjson.h"
#include "opts.h"
#include "schema.h"
#include "tool.h"
#include "validate.h"

static const char usage_text[] =
	"usage: evvalidate --contract FILE [--dlq PATH|fd:N] [options] < records > valid\n"
	"\n"
	"Copies each record (a JSON value per line) that meets the contract, a JSON Schema\n"
	"(draft-07), to stdout byte for byte, and writes every other line to the dead-letter\n"
	"output as an envelope: {\"reason\",\"error\":{\"path\",\"keyword\",\"message\"},\"raw\" (or\n"
	"\"raw_b64\"),\"source\",\"line\",\"at\"}. Reasons: parse, truncated, encoding, too_long,\n"
	"depth, duplicate_key, schema, embedded_newline and reserved (a payload kin rejected,\n"
	"with its original bytes; any other line whose first key begins with \"__evpipe\").\n"
	"Blank lines are skipped and counted; control lines go to both outputs, in order.\n"
	"Nothing read is lost: in = valid + dead-lettered + skipped. A control line that\n"
	"evpipe's tools cannot have written (a barrier id that does not increase, a watermark\n"
	"far in the future, an unknown type: ADR 0013) stops evvalidate with exit 1.\n"
	"\n"
	"Options:\n"
	"  -c, --contract FILE      the JSON Schema (draft-07); keywords it does not support are\n"
	"                           refused at start, and so are formats it does not assert\n"
	"                           (it asserts date-time, date, time, email, uuid, ipv4, ipv6,\n"
	"                           hostname, uri, uri-reference, iri, iri-reference,\n"
	"                           json-pointer, relative-json-pointer and regex)\n"
	"      --formats-as-annotations\n"
	"                           accept the other formats unchecked, as annotations\n"
	"  -d, --dlq PATH|fd:N      dead-letter output: a file (appended to) or an inherited\n"
	"                           descriptor; without it each dead letter is reported on stderr\n"
	"      --all-errors         report every violation of a record, not just the first\n"
	"      --max-line-bytes N   longer lines are dead-lettered as too_long (default 1MiB)\n"
	"      --max-depth N        records nested deeper are dead-lettered as depth (default 64)\n"
	"      --meta-field NAME    the provenance field of kin --meta-field: not part of the\n"
	"                           contract, copied to the dead letter's \"source\"\n" EV_CKPT_OPTIONS_HELP
	"                           (evvalidate keeps no state: its part of a checkpoint records\n"
	"                           the contract's SHA-256, so that a restore of a checkpoint\n"
	"                           taken under another contract is refused)\n" EV_TOOL_OPTIONS_HELP
	"\n"
	"Exit status: 0 ok (dead letters are normal operation), 1 runtime failure (I/O, an\n"
	"impossible control line), 2 usage error or a contract that cannot be used.\n";

enum {
	OPT_ALL_ERRORS = 256,
	OPT_MAX_LINE,
	OPT_MAX_DEPTH,
	OPT_META_FIELD,
	OPT_FORMATS_AS_ANNOTATIONS,
};

static const struct option long_options[] = {
	{"contract", required_argument, NULL, 'c'},
	{"dlq", required_argument, NULL, 'd'},
	{"all-errors", no_argument, NULL, OPT_ALL_ERRORS},
	{"max-line-bytes", required_argument, NULL, OPT_MAX_LINE},
	{"max-depth", required_argument, NULL, OPT_MAX_DEPTH},
	{"meta-field", required_argument, NULL, OPT_META_FIELD},
	{"formats-as-annotations", no_argument, NULL, OPT_FORMATS_AS_ANNOTATIONS},
	EV_CKPT_LONG_OPTIONS,
	EV_TOOL_LONG_OPTIONS,
	{NULL, 0, NULL, 0},
};

struct evvalidate {
	ev_ckpt ck; /* a part per barrier: the contract's identity; nothing to restore */
	const char *contract_path;
	const char *dlq_spec;
	int all_errors;
	uint64_t max_line;
	int64_t max_depth;
	const char *meta_field;
	int schema_flags; /* EV_SCHEMA_* */
	ev_tool_common common;

	ev_schema *contract;
	ev_validator *validator;
	ev_reader *in;
	ev_writer *out;
	ev_writer *dlq; /* NULL: report on stderr */
	ev_metrics *metrics;
	ev_counter *m_in, *m_out, *m_bytes_in, *m_blank, *m_control, *m_dead[EV_REASON_COUNT];
	ev_counter *m_blocked_out, *m_blocked_dlq;
	uint64_t dead;
	ev_buf env;         /* envelope being written */
	ev_control_seq seq; /* the control lines seen */
};

static void flush_outputs(void *arg)
{
	struct evvalidate *v = arg;
	/* Failures stick in the writers and are reported where the next write fails. */
	ev_writer_flush(v->out);
	if (v->dlq)
		ev_writer_flush(v->dlq);
	ev_counter_set(v->m_blocked_out, ev_writer_blocked_ns(v->out));
	if (v->dlq)
		ev_counter_set(v->m_blocked_dlq, ev_writer_blocked_ns(v->dlq));
}

/* Judge one record line; write it to stdout or dead-letter it. */
static int judge(struct evvalidate *v, const char *line, size_t len, int flags)
{
	ev_verdict verdict;
	uint64_t lineno = ev_reader_lines(v->in);
	ev_buf_reset(&v->env);
	if (ev_validator_judge(v->validator, line, len, flags, lineno, ev_wall_ms(), &verdict,
			       v->dlq ? &v->env : NULL) < 0)
		return -1;
	if (verdict.valid) {
		ev_counter_inc(v->m_out);
		return ev_writer_line(v->out, verdict.record, verdict.record_len);
	}
	v->dead++;
	ev_counter_inc(v->m_dead[verdict.reason]);
	if (v->dlq)
		return ev_writer_line(v->dlq, v->env.data, v->env.len);
	ev_error("line %" PRIu64 ": %s%s%s%s: %s", lineno, ev_reason_name(verdict.reason),
		 *verdict.path ? " at '" : "", verdict.path, *verdict.path ? "'" : "",
		 verdict.message);
	return 0;
}

/* Forward a control line (c, checked); a barrier first gets this stage's part. */
static int forward_control(struct evvalidate *v, const char *line, size_t len, const ev_control *c)
{
	char err[512];
	ev_counter_inc(v->m_control);
	if (c->type == EV_CTL_BARRIER &&
	    ev_ckpt_ack(&v->ck, c->id, ev_mono_ns(), err, sizeof(err)) < 0)
		ev_ckpt_failed(&v->ck, c->id, err);
	if (ev_writer_line(v->out, line, len) < 0)
		return -1;
	return v->dlq ? ev_writer_line(v->dlq, line, len) : 0;
}

static int run(struct evvalidate *v)
{
	char *line;
	size_t len;
	int flags, r;
	uint64_t records = 0, blank = 0;

	ev_reader_set_before_read(v->in, flush_outputs, v);
	while ((r = ev_tool_next_line(v->in, "standard input", &line, &len, &flags)) != 0) {
		if (r < 0)
			return EV_EXIT_FAILURE;
		if (ev_control_is(line, len)) {
			ev_control c;
			if (ev_tool_control(&v->seq, v->in, line, len, &c) < 0)
				return EV_EXIT_FAILURE;
			if (forward_control(v, line, len, &c) < 0)
				goto write_error;
			continue;
		}
		if (ev_tool_torn_line(v->metrics, v->ck.url != NULL, len, flags))
			continue;
		ev_counter_add(v->m_bytes_in, len);
		if (len == 0 || strspn(line, " \t") == len) {
			blank++;
			ev_counter_inc(v->m_blank);
			continue;
		}
		records++;
		ev_counter_inc(v->m_in);
		if (judge(v, line, len, flags) < 0)
			goto write_error;
	}
	if (ev_tool_stop_requested())
		ev_info("stopping on signal %d", ev_tool_stop_requested());
	flush_outputs(v);
	if (ev_writer_flush(v->out) < 0 || (v->dlq && ev_writer_flush(v->dlq) < 0))
		goto write_error;
	ev_info("%" PRIu64 " record(s): %" PRIu64 " valid, %" PRIu64 " dead-lettered; %" PRIu64
		" blank line(s) skipped",
		records, records - v->dead, v->dead, blank);
	return EV_EXIT_OK;
write_error:
	if (errno != EPIPE)
		ev_error("cannot write output: %s", strerror(errno));
	return EV_EXIT_FAILURE;
}

static void setup_metrics(struct evvalidate *v)
{
	ev_metrics *m = v->metrics;
	v->m_in = ev_tool_records_in(m);
	v->m_out = ev_tool_records_out(m);
	v->m_bytes_in =
		ev_metrics_counter(m, "evpipe_bytes_in_total", "Bytes of records read", NULL);
	v->m_blank = ev_metrics_counter(m, "evpipe_records_skipped_total",
					"Input lines skipped, by reason", "reason=\"blank\"");
	v->m_control = ev_metrics_counter(m, "evpipe_control_lines_total",
					  "Control lines (watermarks, barriers) forwarded", NULL);
	for (int i = 0; i < EV_REASON_COUNT; i++)
		v->m_dead[i] = ev_tool_dead_letters(m, ev_reason_name((enum ev_reason)i));
	v->m_blocked_out = ev_tool_blocked(m, "stdout");
	v->m_blocked_dlq = ev_tool_blocked(m, "dlq");
}

static int parse_args(struct evvalidate *v, int argc, char **argv)
{
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "c:d:" EV_TOOL_SHORT_OPTIONS, long_options, NULL)) !=
	       -1) {
		int common = ev_tool_common_option(c, optarg, usage_text, &v->common);
		if (common < 0)
			return -1;
		if (common > 0)
			continue;
		switch (c) {
		case 'c': v->contract_path = optarg; break;
		case 'd': v->dlq_spec = optarg; break;
		case OPT_ALL_ERRORS: v->all_errors = 1; break;
		case OPT_MAX_LINE:
			if (ev_opt_size(optarg, &v->max_line) < 0 || v->max_line == 0)
				return ev_tool_usage_error("invalid size '%s'", optarg);
			break;
		case OPT_MAX_DEPTH:
			if (ev_opt_int(optarg, 1, 10000, &v->max_depth) < 0)
				return ev_tool_usage_error("invalid depth '%s'", optarg);
			break;
		case OPT_META_FIELD: v->meta_field = optarg; break;
		case OPT_FORMATS_AS_ANNOTATIONS:
			v->schema_flags |= EV_SCHEMA_FORMATS_AS_ANNOTATIONS;
			break;
		default:
			if (ev_ckpt_option(c, optarg, &v->ck))
				break;
			return ev_tool_bad_option(argv);
		}
	}
	if (optind < argc)
		return ev_tool_usage_error("unexpected argument '%s'", argv[optind]);
	if (!v->contract_path)
		return ev_tool_usage_error("no contract: give --contract FILE");
	if (v->meta_field && (!*v->meta_field || strpbrk(v->meta_field, "\"\\")))
		return ev_tool_usage_error("invalid --meta-field name '%s'", v->meta_field);
	return 0;
}

int main(int argc, char **argv)
{
	struct evvalidate v;
	char err[512];
	memset(&v, 0, sizeof(v));
	v.max_line = 1 << 20;
	v.max_depth = 64;
	v.common.job = "evpipe";

	ev_tool_init("evvalidate");
	int rc = parse_args(&v, argc, argv);
	if (rc != 0)
		return rc < 0 ? ev_tool_finish(EV_EXIT_OK) : rc;
	v.contract = ev_schema_load_file_flags(v.contract_path, v.schema_flags, err, sizeof(err));
	if (!v.contract) {
		ev_error("contract '%s': %s%s", v.contract_path, err,
			 strstr(err, "unsupported format") ? " (--formats-as-annotations accepts "
							     "the others unchecked)"
							   : "");
		return EV_EXIT_USAGE;
	}
	if (v.dlq_spec) {
		int fd = ev_sideout_open(v.dlq_spec, err, sizeof(err));
		if (fd < 0) {
			ev_error("--dlq: %s", err);
			ev_schema_free(v.contract);
			return EV_EXIT_FAILURE;
		}
		v.dlq = ev_writer_new(fd, 64 * 1024);
	}
	ev_validator_opts vo = {(size_t)v.max_line, (int)v.max_depth, v.all_errors, v.meta_field};
	v.validator = ev_validator_new(v.contract, &vo);
	char sha[65];
	if (ev_sha256_file(v.contract_path, sha, NULL) == 0)
		ev_ckpt_set_identity(&v.ck, json_pack("{s:s}", "contract_sha256", sha));
	if (ev_ckpt_open(&v.ck, v.common.job, "evvalidate", err, sizeof(err)) < 0 ||
	    ev_ckpt_stateless_restore(&v.ck, err, sizeof(err)) < 0) {
		ev_error("checkpoints: %s", err);
		rc = EV_EXIT_FAILURE;
		goto out;
	}
	v.metrics = ev_tool_metrics("evvalidate", v.common.job, v.common.metrics_addr);
	v.in = ev_reader_new(0, (size_t)v.max_line);
	v.out = ev_writer_new(1, 64 * 1024);
	if (!v.validator || !v.metrics || !v.in || !v.out || (v.dlq_spec && !v.dlq)) {
		rc = EV_EXIT_FAILURE;
	} else {
		setup_metrics(&v);
		ev_ckpt_metrics(&v.ck, v.metrics);
		ev_tool_catch_signals();
		rc = run(&v);
	}
out:
	ev_ckpt_close(&v.ck);
	ev_writer_free(v.out);
	ev_writer_free(v.dlq);
	ev_reader_free(v.in);
	ev_validator_free(v.validator);
	ev_schema_free(v.contract);
	ev_metrics_free(v.metrics);
	ev_buf_free(&v.env);
	return ev_tool_finish(rc);
}
