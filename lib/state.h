/* SPDX-License-Identifier: Apache-2.0 */
/* state.h: a tool's keyed state in RocksDB: batched writes, range scans and deletes, a
 * memory budget, and a private temporary store when the user names no directory. */
#ifndef EV_STATE_H
#define EV_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct ev_state ev_state;

typedef struct ev_state_opts {
	const char *dir; /* NULL: a private directory under $TMPDIR, removed on close */
	/* What RocksDB may hold in memory: write buffers (memtables) and the block cache.
	 * 0: 32 MiB. */
	uint64_t memory;
	/* Restore: called with the directory emptied (a private one made) before the store is
	 * opened, to put a checkpoint's files there. Returns 0, or -1 with a message in err. */
	int (*fill)(const char *dir, void *arg, char *err, size_t errlen);
	void *fill_arg;
} ev_state_opts;

/* Open (creating if needed) the store. Returns NULL with a message in err. */
ev_state *ev_state_open(const ev_state_opts *o, char *err, size_t errlen);
/* Write what is pending, flush the memtables so that the directory holds everything without
 * a write-ahead log, and close. A private directory is removed. Returns 0, or -1 with a
 * message in err (the store is closed either way). */
int ev_state_close(ev_state *s, char *err, size_t errlen);
const char *ev_state_dir(const ev_state *s);
/* True when the directory held a store before this open. */
int ev_state_existed(const ev_state *s);

/* Read one key: 1 with the value in val (replaced), 0 when absent, -1 with a message. Pending
 * writes are not seen: commit first. */
int ev_state_get(ev_state *s, const void *key, size_t klen, ev_buf *val, char *err, size_t errlen);

/* Writes go into a pending batch, applied by ev_state_commit in order. */
void ev_state_put(ev_state *s, const void *key, size_t klen, const void *val, size_t vlen);
void ev_state_delete(ev_state *s, const void *key, size_t klen);
/* Every key in [from, to). */
void ev_state_delete_range(ev_state *s, const void *from, size_t flen, const void *to, size_t tlen);
/* Apply the pending batch (no write-ahead log: durability comes from ev_state_close and,
 * later, checkpoints). Returns 0, or -1 with a message in err. */
int ev_state_commit(ev_state *s, char *err, size_t errlen);
/* As ev_state_commit, through the write-ahead log and fsync'ed: small records that must
 * survive a crash (a run's "not closed cleanly" mark). */
int ev_state_commit_sync(ev_state *s, char *err, size_t errlen);

/* Keys in [from, to) in byte order (to NULL: to the end). */
typedef struct ev_state_iter ev_state_iter;
ev_state_iter *ev_state_iter_new(ev_state *s, const void *from, size_t flen, const void *to,
				 size_t tlen);
/* 1 with the next key and value (valid until the next call), 0 at the end, -1 on an error. */
int ev_state_iter_next(ev_state_iter *it, const void **key, size_t *klen, const void **val,
		       size_t *vlen);
void ev_state_iter_free(ev_state_iter *it);

/* A consistent copy of the store in dir (which must not exist): committed writes are flushed
 * and the immutable SST files hard-linked, so it costs little whatever the size. Returns 0, or
 * -1 with a message in err. */
int ev_state_checkpoint(ev_state *s, const char *dir, char *err, size_t errlen);
/* Remove a directory and what is in it. Returns 0 or -1 (errno set). */
int ev_state_remove_dir(const char *dir);

/* RocksDB's estimate of the keys it holds, and the bytes of its files and memtables. */
uint64_t ev_state_keys(ev_state *s);
uint64_t ev_state_bytes(ev_state *s);

/* Order-preserving encodings for composite keys: a signed integer as 8 big-endian bytes with
 * the sign bit flipped, so that byte order is numeric order. */
void ev_state_put_i64(unsigned char *p, int64_t v);
int64_t ev_state_get_i64(const unsigned char *p);
void ev_state_put_u32(unsigned char *p, uint32_t v);

#endif
