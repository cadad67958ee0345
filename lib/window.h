/* SPDX-License-Identifier: Apache-2.0 */
/* window.h: event-time windows (tumbling, sliding, session) with allowed lateness, held in
 * memory up to a budget and spilled to a state store; the store's layout (window keys, meta
 * keys, options fingerprint) and the row a window is written as.
 *
 * State is kept per Kafka partition (ADR 0016): a window belongs to the partition of the
 * records folded into it (records without provenance share one scope), so a partition's
 * windows, its part of the watermark and its place in the arrival order can be saved, dropped
 * and loaded on their own. A key must not span partitions: one that does is windowed in each
 * partition apart (two rows for one window and key), counted and said once. A row's version is
 * the number of records folded into its window, so copies that folded the same records agree
 * on it and a row with more records wins. */
#ifndef EV_WINDOW_H
#define EV_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "agg.h"
#include "buf.h"
#include "metrics.h"
#include "record.h"
#include "state.h"
#include "watermark.h"

typedef struct ev_window ev_window;

/* The engine's series: windows fired, late records by outcome, spills, the watermark and its
 * lag, and the state's windows, keys and bytes by tier (set at most once a second: RocksDB's
 * properties are not free). */
typedef struct ev_window_series {
	ev_counter *fired, *updated, *late, *spills, *cross;
	ev_gauge *wm, *wm_lag, *open, *keys_mem, *keys_store, *bytes_mem, *bytes_store;
} ev_window_series;
/* Register them in m (before an engine uses them: a tool exposes them from its start). */
void ev_window_series_register(ev_window_series *s, ev_metrics *m);

typedef struct ev_window_opts {
	/* What the windows are: size_ms alone tumbles, with every_ms (dividing it) slides;
	 * gap_ms alone makes session windows per key. */
	int64_t size_ms, every_ms, gap_ms;
	int64_t lateness_ms; /* state kept after a window fired; later records are late */
	/* Rows carry "window_start_msec" and "window_end_msec", the bounds' milliseconds past
	 * the seconds of "window_start" and "window_end": without them, windows whose sizes
	 * are not whole seconds have rows that share their bounds. */
	int msec_bounds;
	/* One state for all partitions, as if every record were of one (keys may then span
	 * partitions; the state cannot move between copies of the job: run one copy). */
	int keys_span_partitions;
	const char *ts_field;
	const char *const *keys; /* key field names, as the key texts given to add name them */
	int nkeys;
	const ev_agg_spec *aggs;
	size_t naggs;
	size_t mem_budget; /* bytes of windows in memory before they spill to the store */
	ev_wm *wm;         /* borrowed: observed by add, saved and restored with the windows */
	ev_state *st;      /* borrowed: spilled windows and what a restart continues from */
	/* A window's row (not NUL-terminated, no newline). Returns 0, or non-zero to stop: the
	 * call that emitted returns EV_WINDOW_OUTPUT. */
	int (*row)(void *arg, const char *row, size_t len);
	/* The record at hand cannot be windowed: reason "late" (past the allowed lateness) or
	 * "future" (too far ahead of its partition). Returns as row does. */
	int (*dead_letter)(void *arg, const char *reason, const char *message);
	/* When non-NULL, told before the windows in memory spill to the store. */
	void (*spilling)(void *arg, size_t bytes_in_memory, size_t windows);
	/* When non-NULL, told once per key (of the last million keys) that a record of partition
	 * now ("topic/partition") has a key seen first in partition first. */
	void (*cross_partition)(void *arg, const char *key, size_t keylen, const char *first,
				const char *now);
	void *arg;
	const ev_window_series *series; /* NULL: none (copied) */
} ev_window_opts;

/* Returns of the calls below besides 0: a callback asked to stop (its error is the
 * caller's), or a failure of the store or of memory with a message in err. After either, only
 * ev_window_free may be called. */
enum { EV_WINDOW_OUTPUT = -1, EV_WINDOW_FAILED = -2 };

/* A window engine over o (copied; the strings and arrays it points to must outlive it).
 * Returns NULL when out of memory. */
ev_window *ev_window_new(const ev_window_opts *o);
/* Free the windows in memory; the store is the caller's to close. */
void ev_window_free(ev_window *w);

/* A record, as ev_record_read gives it: event time, partition (ev_window_partition of its
 * topic and partition, 0 without provenance), key text as rows carry it ("k1":v1,"k2":v2, ""
 * without keys) and values[i] its value of aggs[i]. Fires what the watermark then passes.
 * now_ms is the processing time. */
int ev_window_add(ev_window *w, const ev_record *rec, int64_t now_ms, char *err, size_t errlen);
/* Fire the windows the watermark wm has passed (EV_WM_END: every one), drop those past their
 * lateness. */
int ev_window_advance(ev_window *w, int64_t wm, char *err, size_t errlen);

/* The partition key of a record from kin's provenance field (topic and partition); 0 when
 * the record has none. */
uint64_t ev_window_partition(const char *topic, size_t topic_len, int64_t partition);

/* The watermark last advanced to (EV_WM_MIN before any; the end of input is not one). */
int64_t ev_window_watermark(const ev_window *w);
/* The watermark at which every window open now is final, written for the last time and
 * dropped: the newest window's end - 1 + the lateness; EV_WM_END while a session window is
 * open (it grows with its input), EV_WM_MIN when none is open. */
int64_t ev_window_final_at(const ev_window *w);
/* Windows held in memory now. */
size_t ev_window_in_memory(const ev_window *w);

/* A snapshot of the state as of now in dir (which is replaced): the windows that changed go
 * to the store (and stay in memory) with the watermark, the arrival counter and the
 * fingerprint, then a RocksDB checkpoint hard-links the store's files into dir. A store opened
 * on dir, its "open" mark removed (ev_window_unmark_open), restores as a saved one does. */
int ev_window_checkpoint(ev_window *w, const char *dir, char *err, size_t errlen);
/* Everything to the store, committed, marked saved: a later ev_window_restore continues. */
int ev_window_save(ev_window *w, char *err, size_t errlen);
/* The stream is finished: empty the store. */
int ev_window_clear(ev_window *w, char *err, size_t errlen);
/* Continue from the store: the partitions, the watermark, the arrival counter and the
 * windows (left in the store; session windows read back into memory), then mark the store
 * open until a save. Returns 1 with *count the window ends (sessions: the sessions) found, 0
 * for a new store, or EV_WINDOW_FAILED with the reason in err (a store left open by a crash,
 * one of other options, one of another format (2 and before: not kept per partition), or one
 * that cannot be read). */
int ev_window_restore(ev_window *w, int64_t now_ms, size_t *count, char *err, size_t errlen);

/* One partition's state (partition as ev_window_partition gives it), for a partition that
 * moves to another engine when it is revoked here and assigned there:
 * - save appends to out its windows (in memory and in the store, fired or not), its part of
 *   the watermark, the arrival counter and the options fingerprint; *windows their number.
 *   The engine is unchanged. A partition without state here saves as empty.
 * - drop forgets them, without firing: the windows, in memory and in the store, and the
 *   partition's part of the watermark (which then is the minimum over the others).
 * - load takes what save wrote (another engine's, of the same options: refused otherwise,
 *   or when the partition has state here already). Its windows not fired yet that the
 *   watermark here has passed fire now; the others fire when it does.
 * Each returns 0, EV_WINDOW_OUTPUT (load: a row callback failed), or EV_WINDOW_FAILED with a
 * message in err. */
int ev_window_partition_save(ev_window *w, uint64_t partition, ev_buf *out, size_t *windows,
			     char *err, size_t errlen);
int ev_window_partition_drop(ev_window *w, uint64_t partition, char *err, size_t errlen);
int ev_window_partition_load(ev_window *w, const void *data, size_t len, int64_t now_ms,
			     size_t *windows, char *err, size_t errlen);
/* True when the partition has state here (it had a record, or was loaded, and was not dropped
 * since). */
int ev_window_partition_held(ev_window *w, uint64_t partition);
/* How many partitions have state here. */
size_t ev_window_partitions(const ev_window *w);

/* The store's layout, for tools that read a store without running windows (ckpt). */

/* The options fingerprint stored with the windows, format 3: "ts=F size=MS every=MS gap=MS
 * format=3 keys=K,.. aggs=NAME=FN[:FIELD],..", the aggregates by name. The format names the
 * store's layout: 3 keeps windows per partition with versions counting records folded; 2 had
 * one scope and versions counting rows written, and is read by ev_window_scan but refused by
 * ev_window_restore. (Format 1 had no "format=" and stored the aggregates as numbers of enum
 * ev_agg_fn: "NAME=N:FIELD".) */
int ev_window_fingerprint(ev_buf *out, const ev_window_opts *o);
/* The aggregates of a stored fingerprint (format 3 or 2, or 1 read through a frozen table of
 * the numbers it used). Returns 0, or -1 with a message in err: not a fingerprint, a newer format,
 * or an aggregate it cannot name. */
int ev_window_fingerprint_aggs(const char *fp, size_t len, ev_agg_spec **specs, size_t *n,
			       char *err, size_t errlen);
/* The stored fingerprint: 1 with it in out, 0 when the store has none, -1 with a message. */
int ev_window_stored_fingerprint(ev_state *st, ev_buf *out, char *err, size_t errlen);
/* The watermark a restart from the store would resume with: 1 with it in *wm (EV_WM_MIN when
 * none was known), 0 when the store has none, -1 with a message. */
int ev_window_stored_watermark(ev_state *st, int64_t *wm, char *err, size_t errlen);
/* Drop the "open" mark a checkpoint taken from a running store carries. */
int ev_window_unmark_open(ev_state *st, char *err, size_t errlen);

/* One stored window. */
typedef struct ev_window_row {
	int64_t start, end;
	const char *key;
	size_t keylen;
	const ev_agg_state *agg;
	int64_t version;
	uint32_t scope;    /* 0: records without provenance */
	const char *topic; /* the partition of scope (NULL for 0) */
	size_t topic_len;
	int64_t partition;
} ev_window_row;
/* Append the row of r: {"window_start":..,"window_end":..,<key>,<aggregates>,"version":N},
 * with "window_start_msec" and "window_end_msec" after the bounds when either is not a whole
 * second. */
int ev_window_format_row(ev_buf *out, const ev_window_row *r, const ev_agg_spec *specs, size_t n);
/* Call fn for every window in the store in key order (partition, end, start, key), its
 * aggregates decoded with specs (a store of format 2 too: all in scope 0). Returns 0, fn's
 * non-zero return, or -1 with a message in err. */
int ev_window_scan(ev_state *st, const ev_agg_spec *specs, size_t n,
		   int (*fn)(void *arg, const ev_window_row *r), void *arg, char *err,
		   size_t errlen);

#endif
