/* SPDX-License-Identifier: Apache-2.0 */
/* evvalidate: pass records that meet a data contract, dead-letter the rest with the reason. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "checkpoint.h"
#include "codec.h"
#include "contract.h"
#include "control.h"
#include "deadletter.h"
#include "log.h"
#include "meta.h"
#include "metrics.h"
#include "ndjson.h"
#include "opts.h"
#include "registry.h"
#include "schema.h"
#include "stage.h"
#include "tool.h"
#include "validate.h"

struct evvalidate {
	ev_ckpt ck; /* a part per barrier: the contract's identity; nothing to restore */
	const char *contract_path;
	const char *dlq_spec;
	int all_errors;
	uint64_t max_line;
	int64_t max_depth;
	const char *meta_field;
	const char *schema_frame; /* --schema-frame: strip or keep */
	int keep_frame;           /* --schema-frame keep */
	int schema_flags;         /* EV_SCHEMA_* */
	const char *registry_cache;
	const char *check_compat; /* registry:SUBJECT */
	const char *compat_file;
	int do_register;
	int64_t refresh_ms;
	uint64_t refreshed_ns; /* when the registry was last asked for the latest version */
	struct {
		const ev_schema *schema;
		ev_validator *val;
	} idv[EV_CONTRACT_MAX_IDS]; /* validators of framed records' own schemas */
	size_t nidv;
	ev_tool_common common;

	ev_contract contract;
	ev_validator *validator;
	char **files; /* the inputs (none: stdin) */
	size_t nfiles;
	ev_stage *stage;
	ev_writer *out;
	ev_writer *dlq; /* NULL: report on stderr */
	ev_metrics *metrics;
	ev_counter *m_out, *m_dead[EV_REASON_COUNT];
	ev_counter *m_contract_changes, *m_refresh_failures;
	uint64_t dead;
	ev_buf env;      /* envelope being written */
	ev_buf unframed; /* a valid record without its provenance's schema_id */
};

/* The validator of a framed record's own schema (kept per schema). */
static ev_validator *id_validator(struct evvalidate *v, const ev_schema *schema, const char *json)
{
	for (size_t i = 0; i < v->nidv; i++)
		if (v->idv[i].schema == schema)
			return v->idv[i].val;
	if (v->nidv == EV_CONTRACT_MAX_IDS)
		return NULL;
	ev_validator_opts vo = {(size_t)v->max_line, (int)v->max_depth, v->all_errors,
				v->meta_field, json};
	ev_validator *val = ev_validator_new(schema, &vo);
	if (val) {
		v->idv[v->nidv].schema = schema;
		v->idv[v->nidv++].val = val;
	}
	return val;
}

/* A framed record (a "schema_id" in its provenance) with a registry contract: dead-lettered
 * as schema_id when the job does not accept the id, judged by the id's own schema when it is
 * not the contract's. 1 when that decided the verdict, 0 when the contract is to judge, -1 when
 * out of memory. */
static int judge_framed(struct evvalidate *v, const char *line, size_t len, int flags,
			uint64_t lineno, ev_verdict *verdict)
{
	int32_t id;
	char msg[600];
	const ev_schema *own;
	const char *json;
	ev_buf *env = v->dlq ? &v->env : NULL;
	if (!v->contract.registry || !v->meta_field ||
	    !ev_meta_schema_id(line, len, v->meta_field, &id))
		return 0;
	if (!ev_contract_accepts_id(&v->contract, id, &own, &json, msg, sizeof(msg)))
		return ev_validator_reject(v->validator, line, len, EV_REASON_SCHEMA_ID, msg,
					   lineno, ev_wall_ms(), verdict, env) < 0
			       ? -1
			       : 1;
	if (!own)
		return 0;
	ev_validator *val = id_validator(v, own, json);
	if (!val ||
	    ev_validator_judge(val, line, len, flags, lineno, EV_VALIDATE_NOW, verdict, env) < 0)
		return -1;
	return verdict->valid ? 0 : 1;
}

/* Judge one record line; write it to stdout or dead-letter it. */
static int judge(struct evvalidate *v, const char *line, size_t len, int flags, uint64_t lineno)
{
	ev_verdict verdict;
	ev_buf_reset(&v->env);
	int framed = judge_framed(v, line, len, flags, lineno, &verdict);
	if (framed < 0)
		return -1;
	if (!framed) {
		ev_buf_reset(&v->env);
		if (ev_validator_judge(v->validator, line, len, flags, lineno, EV_VALIDATE_NOW,
				       &verdict, v->dlq ? &v->env : NULL) < 0)
			return -1;
	}
	if (verdict.valid) {
		ev_counter_inc(v->m_out);
		if (v->meta_field && !v->keep_frame) {
			ev_buf_reset(&v->unframed);
			int dropped = ev_meta_drop_schema_id(&v->unframed, verdict.record,
							     verdict.record_len, v->meta_field);
			if (dropped < 0) {
				errno = ENOMEM;
				return -1;
			}
			if (dropped)
				return ev_writer_line(v->out, v->unframed.data, v->unframed.len);
		}
		return ev_writer_line(v->out, verdict.record, verdict.record_len);
	}
	v->dead++;
	ev_counter_inc(v->m_dead[verdict.reason]);
	if (v->dlq)
		return ev_writer_line(v->dlq, v->env.data, v->env.len);
	ev_error("%s: %s%s%s%s: %s", ev_stage_where(v->stage), ev_reason_name(verdict.reason),
		 *verdict.path ? " at '" : "", verdict.path, *verdict.path ? "'" : "",
		 verdict.message);
	return 0;
}

/* This stage's identity in checkpoints: the contract's SHA-256, and a registry contract's
 * subject, version and id. */
static void set_identity(struct evvalidate *v)
{
	json_error_t jerr;
	json_t *id = json_pack("{s:s}", "contract_sha256", v->contract.sha256);
	if (id && v->contract.registry)
		json_object_set_new(id, "contract", json_loads(v->contract.json, 0, &jerr));
	if (id && v->contract.sha256[0])
		ev_ckpt_set_identity(&v->ck, id);
	else
		json_decref(id);
}

/* The validator over the contract in force, replacing the previous one. */
static int new_validator(struct evvalidate *v)
{
	ev_validator_opts vo = {(size_t)v->max_line, (int)v->max_depth, v->all_errors,
				v->meta_field, v->contract.registry ? v->contract.json : NULL};
	ev_validator *nv = ev_validator_new(v->contract.schema, &vo);
	if (!nv)
		return -1;
	ev_validator_free(v->validator);
	v->validator = nv;
	return 0;
}

static void set_contract_metric(struct evvalidate *v, const char *labels, double value)
{
	ev_gauge_set(
		ev_metrics_gauge(v->metrics, "evpipe_contract_info",
				 "The registry's contract in force (1), by subject, version and "
				 "schema id; 0 for the versions it replaced",
				 labels),
		value);
}

/* At barrier id: a contract that follows the latest version moves to a newer one, when the
 * registry was not asked within --contract-refresh. Records after the barrier are judged by
 * it. The registry being down changes nothing. */
static int refresh_contract(struct evvalidate *v, int64_t id)
{
	char err[600], prev_labels[sizeof(v->contract.labels)];
	ev_schema *old;
	int prev = v->contract.version;
	uint64_t now = ev_mono_ns();
	if (!v->contract.follow_latest ||
	    (v->refreshed_ns && now - v->refreshed_ns < (uint64_t)v->refresh_ms * 1000000))
		return 0;
	v->refreshed_ns = now;
	memcpy(prev_labels, v->contract.labels, sizeof(prev_labels));
	int rc = ev_contract_refresh(&v->contract, &old, err, sizeof(err));
	if (rc < 0) {
		ev_counter_inc(v->m_refresh_failures);
		ev_warn("contract: cannot ask the registry for the latest version of '%s' (keeping "
			"version %d): %s",
			v->contract.subject, prev, err);
		return 0;
	}
	if (rc == 0)
		return 0;
	set_contract_metric(v, prev_labels, 0);
	if (new_validator(v) < 0) {
		ev_schema_free(old);
		return -1;
	}
	ev_schema_free(old);
	set_identity(v);
	ev_counter_inc(v->m_contract_changes);
	ev_info("contract: subject '%s' version %d -> %d (schema id %d, sha256 %s) from barrier "
		"%" PRId64,
		v->contract.subject, prev, v->contract.version, v->contract.id, v->contract.sha256,
		id);
	set_contract_metric(v, v->contract.labels, 1);
	return 0;
}

/* Forward a control line (c, checked); a barrier first gets this stage's part (after a
 * contract that follows the latest version was refreshed: the part names the contract of the
 * records after the barrier). */
static int forward_control(struct evvalidate *v, const char *line, size_t len, const ev_control *c)
{
	if (c->type == EV_CTL_BARRIER && v->contract.registry && refresh_contract(v, c->id) < 0) {
		ev_error("out of memory");
		return -1;
	}
	if (c->type == EV_CTL_BARRIER)
		ev_stage_barrier(v->stage, c, ev_mono_ns(), NULL, NULL);
	if (ev_writer_line(v->out, line, len) < 0 ||
	    (v->dlq && ev_writer_line(v->dlq, line, len) < 0))
		return ev_stage_write_failed(v->stage, "output");
	return 0;
}

static int run(struct evvalidate *v)
{
	ev_stage_line l;
	int r;
	while ((r = ev_stage_next(v->stage, &l)) > 0) {
		if (l.cls == EV_LINE_CONTROL)
			r = forward_control(v, l.data, l.len, &l.control);
		else if ((r = judge(v, l.data, l.len, l.flags, l.lineno)) < 0)
			ev_stage_write_failed(v->stage, "output");
		if (r < 0)
			return EV_EXIT_FAILURE;
	}
	if (r < 0)
		return EV_EXIT_FAILURE;
	if (ev_tool_stop_requested())
		ev_info("stopping on signal %d", ev_tool_stop_requested());
	if (ev_stage_drain(v->stage) < 0)
		return EV_EXIT_FAILURE;
	uint64_t records = ev_stage_records(v->stage);
	ev_info("%" PRIu64 " record(s): %" PRIu64 " valid, %" PRIu64 " dead-lettered; %" PRIu64
		" blank line(s) skipped",
		records, records - v->dead, v->dead, ev_stage_blank(v->stage));
	return EV_EXIT_OK;
}

static void setup_metrics(struct evvalidate *v)
{
	ev_metrics *m = v->metrics;
	v->m_out = ev_tool_records_out(m);
	for (int i = 0; i < EV_REASON_COUNT; i++)
		v->m_dead[i] = ev_tool_dead_letters(m, ev_reason_name((enum ev_reason)i));
	/* A file contract has no subject, version or id: one series says so (subject "file"),
	 * and the registry's counters stay at 0, so every job exposes the same series. */
	set_contract_metric(v,
			    v->contract.registry ? v->contract.labels
						 : "subject=\"file\",version=\"0\",id=\"0\"",
			    1);
	v->m_contract_changes = ev_metrics_counter(
		m, "evpipe_contract_changes_total",
		"Times a contract following the latest version moved to a new one", NULL);
	v->m_refresh_failures =
		ev_metrics_counter(m, "evpipe_contract_refresh_failures_total",
				   "Times the registry could not be asked for the latest version",
				   NULL);
}

static int parse_args(struct evvalidate *v, int argc, char **argv)
{
	const ev_option options[] = {
		EV_OPT_TEXT(
			"usage: evvalidate --contract FILE|registry:SUBJECT[@VERSION] [--dlq PATH|fd:N] [options]\n"
			"           [FILE...] > valid\n"
			"       evvalidate --check-compat registry:SUBJECT FILE [--register]\n"
			"\n"
			"Copies each record (a JSON value per line) that meets the contract, a JSON Schema\n"
			"(draft-07), to stdout byte for byte, and writes every other line to the dead-letter\n"
			"output as an envelope: {\"reason\",\"error\":{\"path\",\"keyword\",\"message\"},\"raw\" (or\n"
			"\"raw_b64\"),\"source\",\"contract\" (a registry's),\"line\",\"at\"}. Reasons: parse,\n"
			"truncated, encoding, too_long, depth, duplicate_key, schema, embedded_newline and\n"
			"reserved (a payload kin rejected, with its original bytes; any other line whose first\n"
			"key begins with \"__evpipe\"), schema_id (a registry-framed record the job does not\n"
			"accept, or one kin consumed without --meta-field).\n"
			"Reads the FILEs in order (- for stdin), or stdin when none is given. Blank lines\n"
			"(empty, or spaces and tabs) are skipped and counted; control lines go to both outputs,\n"
			"in order. With checkpoints, the last line of an input without its newline is what a\n"
			"stage before this one was writing when it died: skipped, counted and warned about.\n"
			"Nothing read is lost: in = valid + dead-lettered + skipped. A control line that\n"
			"evpipe's tools cannot have written (a barrier id that does not increase, a watermark\n"
			"far in the future, an unknown type: ADR 0013) stops evvalidate with exit 1.\n"
			"\n"
			"Options:\n"),
		EV_OPT_STRING('c', "contract", "FILE", &v->contract_path,
			      "the JSON Schema (draft-07); keywords it does not support are\n"
			      "refused at start, and so are formats it does not assert\n"
			      "(it asserts date-time, date, time, email, uuid, ipv4, ipv6,\n"
			      "hostname, uri, uri-reference, iri, iri-reference,\n"
			      "json-pointer, relative-json-pointer and regex)"),
		EV_OPT_BIT(0, "formats-as-annotations", &v->schema_flags,
			   EV_SCHEMA_FORMATS_AS_ANNOTATIONS,
			   "accept the other formats unchecked, as annotations"),
		EV_OPT_SEE('c', "contract", "registry:SUBJECT[@VERSION|@latest]",
			   "the JSON Schema registered under SUBJECT (default latest) in\n"
			   "the schema registry at $SCHEMA_REGISTRY_URL (credentials:\n"
			   "SCHEMA_REGISTRY_USER/_PASSWORD or SCHEMA_REGISTRY_CREDENTIALS_FILE),\n"
			   "references resolved; its subject, version and id are logged,\n"
			   "labels of evpipe_contract_info and each dead letter's \"contract\""),
		EV_OPT_STRING(0, "registry-cache", "DIR", &v->registry_cache,
			      "keep a copy of each schema fetched in DIR (by subject and\n"
			      "version, with its hash); with the registry down at start the\n"
			      "copy is used, with a warning (default $EVPIPE_REGISTRY_CACHE)"),
		EV_OPT_TEXT(
			"  With a registry contract and --meta-field, a record whose provenance has a\n"
			"  \"schema_id\" (kin -C of a registry-framed message) is dead-lettered as schema_id\n"
			"  unless that id is the contract's or one of its subject's versions (answers kept; the\n"
			"  registry being down dead-letters it, never stops the job); a record of another\n"
			"  version must meet that version's schema too. A file contract judges such records by\n"
			"  their content alone.\n"),
		EV_OPT_DURATION(0, "contract-refresh", "D", &v->refresh_ms, 1000, 0, INT64_MAX,
				"a registry contract without a version follows the subject's\n"
				"latest version: asked for at most every D (default 60s; 0:\n"
				"at every barrier), a new version taken at a checkpoint\n"
				"barrier only (so a checkpoint covers one contract); the\n"
				"registry being down keeps the version in force"),
		EV_OPT_STRING(0, "check-compat", "registry:SUBJECT FILE", &v->check_compat,
			      "ask the registry whether the JSON Schema FILE is compatible\n"
			      "with SUBJECT under the subject's compatibility level, and\n"
			      "exit: 0 compatible, 3 incompatible, 1 registry failure"),
		EV_OPT_FLAG(0, "register", &v->do_register, 1,
			    "with --check-compat: register FILE when it is compatible"),
		EV_OPT_STRING('d', "dlq", "PATH|fd:N", &v->dlq_spec,
			      "dead-letter output: a file (appended to) or an inherited\n"
			      "descriptor; without it each dead letter is reported on stderr"),
		EV_OPT_FLAG(0, "all-errors", &v->all_errors, 1,
			    "report every violation of a record, not just the first"),
		EV_OPT_SIZE(0, "max-line-bytes", "N", &v->max_line, 1, INT64_MAX, "size",
			    "longer lines are dead-lettered as too_long (default 1MiB)"),
		EV_OPT_INT(0, "max-depth", "N", &v->max_depth, 1, 10000, "depth",
			   "records nested deeper are dead-lettered as depth (default 64)"),
		EV_OPT_STRING(0, "meta-field", "NAME", &v->meta_field,
			      "the provenance field of kin --meta-field: not part of the\n"
			      "contract, copied to the dead letter's \"source\""),
		EV_OPT_STRING(0, "schema-frame", "strip|keep", &v->schema_frame,
			      "with --meta-field: a valid record of a registry-framed\n"
			      "message goes out without the \"schema_id\" of its provenance\n"
			      "(strip, the default: the bytes it would have had unframed) or\n"
			      "with it (keep: for a later stage that routes or re-frames by\n"
			      "it); dead letters keep it in \"source\" either way"),
		EV_OPTS_CKPT(&v->ck),
		EV_OPT_TEXT(
			"                           (evvalidate keeps no state: its part of a checkpoint records\n"
			"                           the contract's SHA-256, and a registry contract's subject,\n"
			"                           version and id, so that a restore of a checkpoint taken\n"
			"                           under another contract is refused; --restore loads the\n"
			"                           recorded version when --contract names none)\n"),
		EV_OPTS_PROGRESS(),
		EV_OPTS_COMMON(&v->common),
		EV_OPT_TEXT(
			"\n"
			"Exit status: 0 ok (dead letters are normal operation), 1 runtime failure (I/O, an\n"
			"impossible control line, the registry unreachable at start without a cached copy), 2\n"
			"usage error or a contract that cannot be used; --check-compat: 3 incompatible.\n"),
		EV_OPT_END(),
	};
	int rc = ev_tool_parse(options, argc, argv);
	if (rc != 0)
		return rc;
	if (v->check_compat) {
		if (optind + 1 != argc)
			return ev_tool_usage_error("--check-compat needs the schema FILE");
		v->compat_file = argv[optind];
		return 0;
	}
	if (v->do_register)
		return ev_tool_usage_error("--register goes with --check-compat");
	v->files = argv + optind;
	v->nfiles = (size_t)(argc - optind);
	if (!v->contract_path)
		return ev_tool_usage_error("no contract: give --contract FILE");
	if (v->meta_field && (!*v->meta_field || strpbrk(v->meta_field, "\"\\")))
		return ev_tool_usage_error("invalid --meta-field name '%s'", v->meta_field);
	if (v->schema_frame && strcmp(v->schema_frame, "strip") != 0 &&
	    strcmp(v->schema_frame, "keep") != 0)
		return ev_tool_usage_error("invalid --schema-frame '%s' (strip or keep)",
					   v->schema_frame);
	if (v->schema_frame && !v->meta_field)
		return ev_tool_usage_error("--schema-frame goes with --meta-field");
	v->keep_frame = v->schema_frame && strcmp(v->schema_frame, "keep") == 0;
	return 0;
}

/* With --restore: the version of the registry contract the checkpoint's part of this stage
 * records, for a --contract that names no version (0 when there is none to take); -1 when the
 * checkpoint cannot be read. */
static int restored_version(struct evvalidate *v)
{
	char subject[256], err[512];
	int version, rc = 0;
	ev_ckpt_restored r;
	if (!v->ck.store ||
	    ev_registry_parse_ref(v->contract_path, subject, sizeof(subject), &version) != 1)
		return 0;
	if (ev_ckpt_restore(&v->ck, &r, err, sizeof(err)) < 0) {
		ev_error("checkpoints: %s", err);
		ev_ckpt_restored_free(&r);
		return -1;
	}
	ev_ckpt_part part;
	ev_ckpt_part_read(r.part, &part);
	json_t *c = json_object_get(part.identity, "contract");
	const char *s = json_string_value(json_object_get(c, "subject"));
	int pinned = (int)json_integer_value(json_object_get(c, "version"));
	if (r.id && s && strcmp(s, subject) == 0 && pinned > 0 && !version) {
		ev_info("--restore: checkpoint %" PRId64 " ran on version %d of subject '%s': "
			"taking it again",
			r.id, pinned, subject);
		rc = pinned;
	}
	ev_ckpt_restored_free(&r);
	return rc;
}

/* --check-compat: 0 compatible (and registered with --register), 3 not, 1 registry failure. */
static int check_compat(struct evvalidate *v)
{
	char subject[256], err[1024], level[64];
	int version, compatible, id;
	json_error_t jerr;
	if (ev_registry_parse_ref(v->check_compat, subject, sizeof(subject), &version) != 1 ||
	    version != 0)
		return ev_tool_usage_error("--check-compat wants registry:SUBJECT");
	json_t *doc = json_load_file(v->compat_file, 0, &jerr);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	ev_schema *s = doc ? ev_schema_compile_flags(doc, v->schema_flags, err, sizeof(err)) : NULL;
	json_decref(doc);
	if (!s) {
		ev_error("'%s': %s", v->compat_file, doc ? err : jerr.text);
		free(text);
		return EV_EXIT_USAGE;
	}
	ev_schema_free(s);
	const char *url = getenv("SCHEMA_REGISTRY_URL");
	ev_registry *r = url && *url ? ev_registry_new(url, NULL, 0, err, sizeof(err)) : NULL;
	if (!url || !*url)
		snprintf(err, sizeof(err), "SCHEMA_REGISTRY_URL is not set");
	json_t *why = NULL;
	int rc = r ? ev_registry_check_compat(r, subject, text, &compatible, level, sizeof(level),
					      &why, err, sizeof(err))
		   : EV_REG_ERROR;
	if (rc != EV_REG_OK) {
		ev_error("--check-compat '%s': %s", subject, err);
		rc = EV_EXIT_FAILURE;
	} else if (!compatible) {
		char *w = why ? json_dumps(why, JSON_COMPACT) : NULL;
		ev_error("'%s' is not compatible with subject '%s' (level %s)%s%s", v->compat_file,
			 subject, level, w ? ": " : "", w ? w : "");
		free(w);
		rc = 3;
	} else {
		ev_info("'%s' is compatible with subject '%s' (level %s)", v->compat_file, subject,
			level);
		rc = EV_EXIT_OK;
		if (v->do_register) {
			if (ev_registry_register(r, subject, text, &id, err, sizeof(err)) !=
			    EV_REG_OK) {
				ev_error("--register '%s': %s", subject, err);
				rc = EV_EXIT_FAILURE;
			} else {
				ev_info("registered under subject '%s' as schema id %d", subject,
					id);
			}
		}
	}
	json_decref(why);
	ev_registry_free(r);
	free(text);
	return rc;
}

int main(int argc, char **argv)
{
	struct evvalidate v;
	char err[512];
	memset(&v, 0, sizeof(v));
	v.max_line = 1 << 20;
	v.max_depth = 64;
	v.refresh_ms = 60000;
	v.common.job = "evpipe";

	ev_tool_init("evvalidate");
	int rc = parse_args(&v, argc, argv);
	if (rc != 0)
		return rc < 0 ? ev_tool_finish(EV_EXIT_OK) : rc;
	if (v.check_compat)
		return ev_tool_finish(check_compat(&v));
	if (!v.registry_cache && getenv("EVPIPE_REGISTRY_CACHE") &&
	    *getenv("EVPIPE_REGISTRY_CACHE"))
		v.registry_cache = getenv("EVPIPE_REGISTRY_CACHE");
	if (ev_ckpt_open(&v.ck, v.common.job, "evvalidate", err, sizeof(err)) < 0) {
		ev_error("checkpoints: %s", err);
		return ev_tool_finish(EV_EXIT_FAILURE);
	}
	int pinned = restored_version(&v);
	if (pinned < 0) {
		ev_ckpt_close(&v.ck);
		return ev_tool_finish(EV_EXIT_FAILURE);
	}
	rc = ev_contract_open(&v.contract, v.contract_path, v.registry_cache, pinned,
			      v.schema_flags, err, sizeof(err));
	if (rc != 0) {
		ev_error("contract '%s': %s%s", v.contract_path, err,
			 strstr(err, "unsupported format") ? " (--formats-as-annotations accepts "
							     "the others unchecked)"
							   : "");
		ev_ckpt_close(&v.ck);
		return ev_tool_finish(rc);
	}
	/* The version loaded now was the latest: the next is asked for within D of now (a copy
	 * from the cache, at the first barrier). */
	if (!v.contract.from_cache)
		v.refreshed_ns = ev_mono_ns();
	if (v.contract.from_cache)
		ev_warn("contract '%s': the registry is unavailable; using the cached copy of "
			"subject '%s' version %d (schema id %d, sha256 %s)",
			v.contract_path, v.contract.subject, v.contract.version, v.contract.id,
			v.contract.sha256);
	else if (v.contract.registry)
		ev_info("contract: subject '%s' version %d (schema id %d, sha256 %s)",
			v.contract.subject, v.contract.version, v.contract.id, v.contract.sha256);
	if (v.dlq_spec) {
		int fd = ev_sideout_open(v.dlq_spec, err, sizeof(err));
		if (fd < 0) {
			ev_error("--dlq: %s", err);
			rc = EV_EXIT_FAILURE;
			goto out;
		}
		v.dlq = ev_writer_new(fd, 64 * 1024);
	}
	new_validator(&v);
	set_identity(&v);
	if (ev_ckpt_stateless_restore(&v.ck, err, sizeof(err)) < 0) {
		ev_error("checkpoints: %s", err);
		rc = EV_EXIT_FAILURE;
		goto out;
	}
	v.metrics = ev_tool_metrics("evvalidate", v.common.job, v.common.metrics_addr);
	ev_stage_opts so = {.files = v.files,
			    .nfiles = v.nfiles,
			    .max_line = (size_t)v.max_line,
			    .ck = &v.ck,
			    .metrics = v.metrics};
	v.stage = v.metrics ? ev_stage_new(&so) : NULL;
	v.out = ev_writer_new(1, 64 * 1024);
	if (!v.validator || !v.metrics || !v.stage || !v.out || (v.dlq_spec && !v.dlq)) {
		rc = EV_EXIT_FAILURE;
	} else {
		ev_stage_output(v.stage, v.out, "stdout");
		ev_stage_output(v.stage, v.dlq, "dlq");
		setup_metrics(&v);
		ev_ckpt_metrics(&v.ck, v.metrics);
		ev_tool_catch_signals();
		ev_tool_progress(v.metrics);
		rc = run(&v);
	}
out:
	ev_ckpt_close(&v.ck);
	ev_writer_free(v.out);
	ev_writer_free(v.dlq);
	ev_validator_free(v.validator);
	for (size_t i = 0; i < v.nidv; i++)
		ev_validator_free(v.idv[i].val);
	ev_contract_close(&v.contract);
	ev_tool_metrics_free(v.metrics);
	ev_buf_free(&v.env);
	ev_buf_free(&v.unframed);
	return ev_stage_exit(v.stage, rc);
}
