/* SPDX-License-Identifier: Apache-2.0 */
/* ckstore.h: the checkpoint store: objects by key in a directory (file:///dir) or an S3 bucket
 * (s3://bucket/prefix), published atomically, streamed, with transient failures retried. */
#ifndef EV_CKSTORE_H
#define EV_CKSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Keys are '/'-separated paths relative to the store's root, e.g. "<job>/chk-<N>/<stage>.json",
 * "<job>/shared/<file>", "<job>/chk-<N>/_manifest.json": UTF-8, no leading or trailing '/', no
 * empty, "." or ".." segment, no control character, no segment starting with ".ev-tmp." (the
 * file store's temporary names), at most 1024 bytes with the S3 prefix.
 *
 * A reader never sees part of an object: a put is published whole or not at all (file: written
 * to a temporary name in the same directory, fsync'ed, renamed over the key, and the directory
 * fsync'ed; S3: one PUT). Large objects stream from and to files, never whole in memory.
 *
 * A file store is confined to its root: below it, no symbolic link is followed, listed, read,
 * written through or deleted (paths are walked with openat and O_NOFOLLOW); meeting one is an
 * error that names it ("a symbolic link in the store"), so that a prune never deletes outside
 * the store. The root itself may be a link.
 *
 * Every function that can fail returns -1 with a message in err; a message never contains a
 * secret. A handle is used by one thread at a time. */
typedef struct ev_store ev_store;

/* Open a store:
 *   file:///abs/dir        a local directory (%XX escapes decoded), made on the first put
 *                          when missing
 *   s3://bucket[/prefix]   S3, path-style; the endpoint, region and credentials come from the
 *                          environment (lib/s3.h): S3_ENDPOINT, AWS_ENDPOINT_URL_S3 or
 *                          AWS_ENDPOINT_URL (default
 *                          https://s3.<region>.amazonaws.com), AWS_REGION or
 *                          AWS_DEFAULT_REGION (default us-east-1), AWS_ACCESS_KEY_ID,
 *                          AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, or the AWS_PROFILE
 *                          section (default "default") of AWS_SHARED_CREDENTIALS_FILE
 *                          (default ~/.aws/credentials)
 * A URL that carries credentials (user:password@) is refused. No request is made. Returns NULL
 * with a message in err. */
ev_store *ev_store_open(const char *url, char *err, size_t errlen);
void ev_store_close(ev_store *s);
/* The store's URL in canonical form, for messages; it never contains a secret. */
const char *ev_store_url(const ev_store *s);

/* S3 only: retry transient failures (connection errors, HTTP 5xx and 429, SlowDown) with
 * exponential backoff and jitter while less than total_ms has passed since a request's first
 * failure (default 30000; 0: one attempt). Other errors (403, NoSuchBucket, ...) fail at once. */
void ev_store_set_retry(ev_store *s, int64_t total_ms);
/* S3 only: keys per list request, 1..1000 (default 1000; smaller pages are for tests). */
void ev_store_set_page_size(ev_store *s, int n);
/* Attempts retried since the store was opened (0 for a file store). */
uint64_t ev_store_retries(const ev_store *s);

/* Store len bytes under key, replacing what was there. Returns 0 or -1. */
int ev_store_put(ev_store *s, const char *key, const void *data, size_t len, char *err,
		 size_t errlen);
/* Store the file at path under key, streamed. Returns 0 or -1. */
int ev_store_put_file(ev_store *s, const char *key, const char *path, char *err, size_t errlen);
/* The object's bytes into out (reset first). Returns 1, 0 when there is no such key, or -1. */
int ev_store_get(ev_store *s, const char *key, ev_buf *out, char *err, size_t errlen);
/* The object's bytes into the file path, streamed to a temporary name in path's directory and
 * renamed to path once complete (path is left alone when the key is absent or on error).
 * Returns 1, 0 when there is no such key, or -1. */
int ev_store_get_file(ev_store *s, const char *key, const char *path, char *err, size_t errlen);
/* Whether key exists, and its size (size may be NULL). Returns 1, 0, or -1. */
int ev_store_head(ev_store *s, const char *key, uint64_t *size, char *err, size_t errlen);
/* fn(key, size, arg) for every key that starts with prefix ("" for all; "job/chk-1" matches
 * "job/chk-1/x" and "job/chk-10/x"), in key order (strcmp of the UTF-8 bytes). fn returns 0 to
 * go on; another value stops the listing and is returned (use a positive one to tell it from
 * an error). Returns 0 when every key was seen, or -1. */
int ev_store_list(ev_store *s, const char *prefix,
		  int (*fn)(const char *key, uint64_t size, void *arg), void *arg, char *err,
		  size_t errlen);
/* Remove key; a key that does not exist is not an error. The file store also removes the
 * directories that become empty, up to the root. Returns 0 or -1. */
int ev_store_delete(ev_store *s, const char *key, char *err, size_t errlen);

/* 1 when key is a valid key (see above), else 0. */
int ev_store_key_ok(const char *key);

#endif
