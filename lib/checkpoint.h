/* SPDX-License-Identifier: Apache-2.0 */
/* checkpoint.h: the checkpoint protocol of docs/design.md over a store (lib/ckstore.h): where a
 * stage's part and a checkpoint's manifest live, listing, choosing what to restore, pruning.
 *
 * Layout under the store's root:
 *   <job>/chk-<N>/<stage>.json       a stage's part of checkpoint N (N zero-padded to 10
 *                                    digits, so that key order is numeric order)
 *   <job>/chk-<N>/<stage>/<file>     files private to one checkpoint (RocksDB's MANIFEST ...)
 *   <job>/chk-<N>/_manifest.json     written last by the coordinator: its existence is the
 *                                    commit point of checkpoint N. It holds a copy of every
 *                                    part and a checksum of its own content: a restore reads
 *                                    only the manifest and the files its parts list, and
 *                                    verifies every byte of them (ADR 0008)
 *   <job>/shared/<stage>/<sha256>    immutable files shared by checkpoints (SST files), named by
 *                                    their content, uploaded once: incremental checkpoints
 * A copy of the job with a name (--copy: several copies in one consumer group, ADR 0025) has
 * the same layout under <job>/copies/<copy>/ (its root): its own ids, manifests, shared files
 * and pruning, so that copies never collide. What is shared between copies is the state of
 * each partition at an offset, under <job>/handover/ (handover.h). */
#ifndef EV_CHECKPOINT_H
#define EV_CHECKPOINT_H

#include <jansson.h>
#include <stdint.h>

#include "buf.h"
#include "ckstore.h"
#include "metrics.h"
#include "opts.h"

typedef struct ev_ckpt {
	ev_counter *failures; /* parts this stage could not write (ev_ckpt_metrics) */
	const char *url;      /* NULL: no checkpoints */
	const char *stage;    /* the part's name */
	const char *restore;  /* NULL or "none": start afresh */
	const char *job;
	const char *copy; /* --copy: this copy's name, or NULL (one copy: the job's own layout) */
	const char *root; /* where this copy's checkpoints are, <job>/copies/<copy>, or NULL:
			   * the job's (ev_ckpt_where) */
	char *root_owned;
	ev_store *store;
	json_t *identity;   /* what this stage belongs to (ev_ckpt_set_identity), or NULL */
	int allow_mismatch; /* --restore-mismatch allow */
} ev_ckpt;

/* --restore-mismatch refuse|allow (EV_OPTS_CKPT in opts.h, o->value an ev_ckpt); another
 * value is refused by ev_ckpt_open. Returns 0. */
int ev_ckpt_opt_mismatch(const ev_option *o, char *arg, char *err, size_t errlen);
/* Open the store when --checkpoint-store was given; job names the checkpoints, tool is the
 * default stage name; with --copy, the checkpoints are the copy's, under its root. Returns 0,
 * or -1 with a message in err. */
int ev_ckpt_open(ev_ckpt *o, const char *job, const char *tool, char *err, size_t errlen);
void ev_ckpt_close(ev_ckpt *o);
/* What this stage of the pipeline belongs to, as a JSON object of settings (taken): kin its
 * topics and group, evwindow its options fingerprint, chsink its table, ... Every part the
 * stage writes carries it as "identity", and a restore compares it with the checkpoint's. */
void ev_ckpt_set_identity(ev_ckpt *o, json_t *identity);

/* ---- the protocol's objects ----
 * A part and a manifest are JSON objects in the store; these structs are how code reads them,
 * so that every field name is spelt once, here and in checkpoint.c. Strings and JSON values
 * are borrowed from the object read: they live as long as it does. */

/* A file a part lists: {name, key, size, sha256}. */
typedef struct ev_ckpt_file {
	const char *name;   /* plain file name in the stage's directory */
	const char *key;    /* where it is in the store */
	const char *sha256; /* 64 hex digits */
	int64_t size;       /* -1 when absent or not an integer */
} ev_ckpt_file;

/* A stage's part: what ev_ckpt_put_part wrote, and what the stage added. */
typedef struct ev_ckpt_part {
	const char *stage;
	int64_t checkpoint;     /* the id it belongs to */
	int64_t at;             /* when it was written, epoch ms (0: unknown) */
	int64_t duration_ms;    /* the stage's own work on the barrier, -1 when absent */
	int64_t injected_at;    /* the coordinator's: when it injected the barrier, 0 when absent */
	int64_t bytes;          /* the state files it references */
	int64_t uploaded_bytes; /* of which it uploaded */
	const json_t *files;    /* array of file entries (ev_ckpt_part_file), or NULL */
	const json_t *offsets;  /* the coordinator's offsets, or NULL */
	const json_t *identity; /* what the stage belongs to, or NULL */
} ev_ckpt_part;

/* Read a part object (any JSON value: what is not there reads as absent). */
void ev_ckpt_part_read(const json_t *obj, ev_ckpt_part *p);
/* A new part object with the fields of p that a stage sets: files with bytes and uploaded
 * bytes (when files is not NULL), offsets, injected_at (when not 0), duration_ms (when not
 * -1); ev_ckpt_put_part adds stage, checkpoint, at and identity. A stage may add fields of its
 * own. NULL without memory. */
json_t *ev_ckpt_part_new(const ev_ckpt_part *p);
/* The number of file entries of p, and entry i read into f. */
size_t ev_ckpt_part_nfiles(const ev_ckpt_part *p);
void ev_ckpt_part_file(const ev_ckpt_part *p, size_t i, ev_ckpt_file *f);
/* A file entry object read into f. */
void ev_ckpt_file_read(const json_t *obj, ev_ckpt_file *f);
/* A new file entry object for the "files" array, or NULL without memory. */
json_t *ev_ckpt_file_new(const ev_ckpt_file *f);

/* A checkpoint's manifest: the commit point (ev_ckpt_put_manifest). */
typedef struct ev_ckpt_manifest {
	const char *job;
	int64_t id;
	int64_t started_at;     /* epoch ms: the barrier was injected */
	int64_t completed_at;   /* epoch ms: every part was there */
	int64_t duration_ms;    /* -1 when absent */
	int64_t bytes;          /* of the parts' files */
	int64_t uploaded_bytes; /* of which new in this checkpoint */
	const json_t *offsets;  /* see ev_ckpt_offsets_parse, or NULL */
	const json_t *parts;    /* stage -> the part object, or NULL */

	/* the copy that wrote it, or NULL (one copy, or older) */
	const char *copy;
	/* the state of each partition (ev_ckpt_manifest_partitions), or NULL */
	const json_t *partitions;
} ev_ckpt_manifest;

void ev_ckpt_manifest_read(const json_t *obj, ev_ckpt_manifest *m);
/* The state of each partition in a checkpoint, from the "partitions" its parts list (a
 * stateful stage's part lists, per partition it owned at the barrier, the hand-over object
 * that holds its state at the barrier's offset: handover.h):
 *   [{"topic":..,"partition":..,"offset":..,"state":{"<stage>":{"key":..,"windows":..,
 *     "bytes":..}}}]
 * by topic and partition; NULL when no part lists partitions, or without memory. */
json_t *ev_ckpt_manifest_partitions(const json_t *parts);
/* A new manifest object of m, with parts and offsets (json objects, not taken) in it; format
 * and checksum are added by ev_ckpt_put_manifest. NULL without memory. */
json_t *ev_ckpt_manifest_new(const ev_ckpt_manifest *m, json_t *parts, json_t *offsets);

/* The offsets of a checkpoint: per topic and partition, the next offset to read. In a
 * manifest they are {"topic":{"partition":offset}}, the partition a decimal number. */
typedef struct ev_ckpt_offset {
	char *topic;
	int32_t partition;
	int64_t offset;
} ev_ckpt_offset;
typedef struct ev_ckpt_offsets {
	ev_ckpt_offset *v; /* by topic, then partition number */
	size_t n, cap;
} ev_ckpt_offsets;
#define EV_CKPT_OFFSETS_INIT \
	{                    \
		NULL, 0, 0   \
	}

/* Set the offset of topic's partition (added, or replaced). Returns 0, or -1 without memory. */
int ev_ckpt_offsets_set(ev_ckpt_offsets *o, const char *topic, int32_t partition, int64_t offset);
/* The entry of topic's partition, or NULL. */
const ev_ckpt_offset *ev_ckpt_offsets_get(const ev_ckpt_offsets *o, const char *topic,
					  int32_t partition);
/* Parse the JSON form (NULL: none) into o (empty first): every partition a number from 0 to
 * INT32_MAX and every offset an integer from 0 (a negative one is a logical offset to Kafka,
 * "beginning" or "end", never a position kin recorded). Returns 0, or -1 with what is wrong
 * in err (o is then empty). */
int ev_ckpt_offsets_parse(const json_t *j, ev_ckpt_offsets *o, char *err, size_t errlen);
/* The JSON form of o, or NULL without memory. */
json_t *ev_ckpt_offsets_json(const ev_ckpt_offsets *o);
void ev_ckpt_offsets_free(ev_ckpt_offsets *o);

/* 1 when name can name a copy of a job: 1 to 64 of [A-Za-z0-9._-], not "." or "..". */
int ev_ckpt_copy_ok(const char *name);
/* The root of copy's checkpoints, "<job>/copies/<copy>" (job when copy is NULL), into b
 * (reset first). Every function below that takes a job takes such a root. */
void ev_ckpt_root(ev_buf *b, const char *job, const char *copy);

/* Where o's checkpoints are: its root once opened, else its job. */
const char *ev_ckpt_where(const ev_ckpt *o);

/* "<job>/chk-<N>" into b (reset first), and "<job>/chk-<N>/<name>". */
void ev_ckpt_dir(ev_buf *b, const char *job, int64_t id);
void ev_ckpt_key(ev_buf *b, const char *job, int64_t id, const char *name);
/* The key of stage's part, "<job>/chk-<N>/<stage>.json", and of the manifest. */
void ev_ckpt_part_key(ev_buf *b, const char *job, int64_t id, const char *stage);
void ev_ckpt_manifest_key(ev_buf *b, const char *job, int64_t id);
/* The length of the job's name in key when key is one of a checkpoint's, "<job>/chk-...", else
 * 0. */
size_t ev_ckpt_key_job(const char *key);
/* 1 when job and stage make valid keys of the store (ev_store_key_ok): the part's and the
 * directory of the stage's files, "<job>/chk-<N>/<stage>/"; else 0. */
int ev_ckpt_names_ok(const char *job, const char *stage);

/* The manifest's format: 2 adds "format" and "checksum", "sha256:" and the SHA-256 of the
 * manifest without "checksum" serialised compactly with sorted keys and ASCII escapes. A
 * manifest with neither key is of format 1 (written before checksums): read unverified. */
#define EV_CKPT_FORMAT 2
/* Write the manifest m of checkpoint id (the commit point), with "format" and "checksum"
 * added to m. Returns 0, or -1 with a message in err. */
int ev_ckpt_put_manifest(ev_store *s, const char *job, int64_t id, json_t *m, char *err,
			 size_t errlen);
/* Check a manifest read as checkpoint id of job (a root: the manifest's job and copy make
 * it): its checksum, its format, that it names that checkpoint and lists parts. Returns 0 when it verifies, 1 when it is of format 1 (no
 * checksum: nothing to verify), or -1 with what is wrong in err. */
int ev_ckpt_manifest_check(const json_t *m, const char *job, int64_t id, char *err, size_t errlen);
/* The manifest of checkpoint id, checked (ev_ckpt_manifest_check, every file entry of its
 * parts: ev_ckpt_file_check, and its offsets: partitions and offsets from 0): the object with *legacy 1 when it is of format 1, else NULL
 * with *found 0 (absent) or -1 (unreadable or corrupt, with a message in err). */
json_t *ev_ckpt_get_manifest(ev_store *s, const char *job, int64_t id, int *found, int *legacy,
			     char *err, size_t errlen);
/* A file entry of a part ({name, key, size, sha256}): a name that is a plain file name (not
 * empty, no '/', not starting with '.', no control character), a valid key under "<job>/",
 * a size and a SHA-256. Returns 0, or -1 with what is wrong in err. */
int ev_ckpt_file_check(const json_t *f, const char *job, char *err, size_t errlen);

/* Write this stage's part of checkpoint id: part (a JSON object, taken) gets "stage",
 * "checkpoint" and "at" added. Returns 0, or -1 with a message in err. */
int ev_ckpt_put_part(ev_ckpt *o, int64_t id, json_t *part, char *err, size_t errlen);
/* Register the stage's series of checkpoint failures (when checkpoints are on). */
void ev_ckpt_metrics(ev_ckpt *o, ev_metrics *m);
/* A part could not be written: warn and count. The job goes on; the coordinator abandons
 * the checkpoint, and the next one tries again. */
void ev_ckpt_failed(ev_ckpt *o, int64_t id, const char *err);
/* A stage without state acknowledges barrier id once what preceded it is durable: a part
 * with the time it took since the barrier arrived (t0, ev_mono_ns). Returns 0, or -1 with a
 * message in err. A no-op without --checkpoint-store. */
int ev_ckpt_ack(ev_ckpt *o, int64_t id, uint64_t t0_ns, char *err, size_t errlen);
/* For a stage without state, --restore has nothing to load, but the checkpoint is verified
 * and this stage's identity checked as ev_ckpt_restore does, and the stage says so once.
 * Returns 0, or -1 with a message in err (the restore is refused). */
int ev_ckpt_stateless_restore(ev_ckpt *o, char *err, size_t errlen);
/* The JSON object under key: the object, or NULL with *found 0 (absent) or -1 (error, with a
 * message in err). */
json_t *ev_ckpt_get_json(ev_store *s, const char *key, int *found, char *err, size_t errlen);
/* Put a JSON value under key. Returns 0 or -1. */
int ev_ckpt_put_json(ev_store *s, const char *key, const json_t *v, char *err, size_t errlen);

/* Upload the files of a local snapshot directory (a RocksDB checkpoint) as this stage's files
 * of checkpoint id: SST files (immutable) to <job>/shared/<stage>/<sha256>.sst once (a HEAD
 * tells whether a file is there already), the others to <job>/chk-<N>/<stage>/<name>. Returns
 * the "files" array for the part ([{name, key, size, sha256}]), with *total and *uploaded
 * bytes, or NULL with a message in err. */
json_t *ev_ckpt_upload_dir(ev_ckpt *o, int64_t id, const char *dir, uint64_t *total,
			   uint64_t *uploaded, char *err, size_t errlen);
/* Download the files a part lists into dir (which exists), checking each one's size and
 * SHA-256. Returns 0, or -1 with a message in err. */
int ev_ckpt_download_files(ev_store *s, const json_t *part, const char *dir, char *err,
			   size_t errlen);

/* What --restore names, verified: the newest complete checkpoint (latest; when it fails
 * verification, the restore is refused with the newest intact one named), the newest one that
 * verifies (latest-valid, the others skipped with a warning), an id, or none. Its manifest
 * must verify (ev_ckpt_manifest_check; format 1 is read with a warning), and this stage's
 * part in it must carry this stage's identity (a part without one, written before identities,
 * is restored with a warning); another identity refuses the restore naming what differs,
 * unless --restore-mismatch allow. The restore is logged at warn level with the checkpoint's
 * id and age. */
typedef struct ev_ckpt_restored {
	int64_t id;       /* 0: nothing to restore (no checkpoint yet, or none) */
	json_t *manifest; /* the verified manifest */
	json_t *part;     /* this stage's part in it (borrowed from manifest), or NULL */
	json_t *offsets;  /* the manifest's offsets (borrowed), or NULL */
} ev_ckpt_restored;
/* Returns 0, or -1 with a message in err; r is filled either way (ev_ckpt_restored_free). */
int ev_ckpt_restore(ev_ckpt *o, ev_ckpt_restored *r, char *err, size_t errlen);
void ev_ckpt_restored_free(ev_ckpt_restored *r);

/* The checkpoints of a job, by ascending id. */
typedef struct ev_ckpt_entry {
	int64_t id;
	int complete;   /* has a manifest */
	size_t parts;   /* stage parts present */
	uint64_t bytes; /* bytes under chk-<N>/ (not the shared files) */
	char **stages;  /* the stages whose part is present */
} ev_ckpt_entry;
int ev_ckpt_list(ev_store *s, const char *job, ev_ckpt_entry **entries, size_t *n, char *err,
		 size_t errlen);
void ev_ckpt_entries_free(ev_ckpt_entry *entries, size_t n);
/* The checkpoint "latest" (the newest complete one; 0 when there is none), "none" (0), or an id
 * (which must be complete), from the listing alone: nothing is verified (a restore goes
 * through ev_ckpt_restore). Returns 0, or -1 with a message in err. */
int ev_ckpt_resolve(ev_store *s, const char *job, const char *which, int64_t *id, char *err,
		    size_t errlen);
/* Delete the checkpoints older than the newest keep complete ones (those in progress, newer
 * than the newest complete one, are left), then every shared file that no remaining
 * checkpoint's part references. Returns the number of keys deleted, or -1. */
int ev_ckpt_prune(ev_store *s, const char *job, int keep, char *err, size_t errlen);

/* The names of the copies of job that have checkpoints (keys "<job>/copies/<copy>/chk-..."),
 * sorted, into *names (free with ev_ckpt_copies_free). Returns 0, or -1 with a message. */
int ev_ckpt_copies(ev_store *s, const char *job, char ***names, size_t *n, char *err,
		   size_t errlen);
void ev_ckpt_copies_free(char **names, size_t n);
/* The group's committed offset of each partition of o (filled in place; -1 for one that has
 * none or cannot be read): how ev_ckpt_prune_handovers learns it. Returns 0, or -1 when the
 * group cannot be asked (nothing is pruned). */
typedef int (*ev_ckpt_committed_fn)(ev_ckpt_offsets *o, void *arg);
/* Delete the hand-over objects of job (handover.h) that nothing can load any more: the state of
 * a partition at an offset below the group's committed offset for it (committed: no copy
 * resumes it there), that no complete checkpoint of any copy of the job still in the store
 * references (its manifest's partitions and offsets: a restore of it resumes there). Objects
 * written by revokes and by checkpoints alike; a partition whose committed offset is not known
 * keeps all of its objects. Returns the number deleted, or -1 with a message. */
int ev_ckpt_prune_handovers(ev_store *s, const char *job, ev_ckpt_committed_fn committed, void *arg,
			    char *err, size_t errlen);

#endif
