/* SPDX-License-Identifier: Apache-2.0 */
/* s3.h: an S3 client over libcurl: path-style requests signed with AWS Signature V4, errors
 * from S3's XML answers, transient failures retried with backoff. */
#ifndef EV_S3_H
#define EV_S3_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct ev_s3 ev_s3;

/* A client for bucket. Endpoint, region and credentials come from the environment:
 *   endpoint     S3_ENDPOINT, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (http[s]://host[:port],
 *                no credentials in it); default https://s3.<region>.amazonaws.com
 *   region       AWS_REGION or AWS_DEFAULT_REGION; default us-east-1
 *   credentials  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; when the first
 *                two are unset, the section AWS_PROFILE (default "default") of
 *                AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials)
 * Requests are path-style (<endpoint>/<bucket>/<key>). Returns NULL with a message in err that
 * names no secret. No request is made. */
ev_s3 *ev_s3_new(const char *bucket, char *err, size_t errlen);
/* Frees the client; its copies of the secrets are scrubbed first. */
void ev_s3_free(ev_s3 *c);
const char *ev_s3_endpoint(const ev_s3 *c);
const char *ev_s3_region(const ev_s3 *c);

/* Transient failures (connection errors, HTTP 5xx and 429, SlowDown, RequestTimeout) are
 * retried with exponential backoff and jitter (from 100 ms, doubling up to 5 s) while less than
 * total_ms (default 30 s) has passed since the request's first failure; 0: one attempt. Other
 * errors fail at once. */
void ev_s3_set_retry(ev_s3 *c, int64_t total_ms);
/* Keys per ListObjectsV2 request, 1..1000 (default 1000). */
void ev_s3_set_page_size(ev_s3 *c, int n);
/* Attempts that failed transiently and were retried, since the client was made. */
uint64_t ev_s3_retries(const ev_s3 *c);

/* Every function below takes an object key (UTF-8, at most 1024 bytes), returns -1 with a
 * message in err on failure (S3's error Code and Message when it answered, or the transfer's
 * error and how many attempts were made), and never puts a secret in err. */

/* PUT an object from memory, with the payload's SHA-256 signed. Returns 0 or -1. */
int ev_s3_put(ev_s3 *c, const char *key, const void *data, size_t len, char *err, size_t errlen);
/* PUT an object streamed from the first size bytes of fd (read with pread(2), so the file
 * offset is not used), signed as UNSIGNED-PAYLOAD; at most 5 GiB. Returns 0 or -1. */
int ev_s3_put_fd(ev_s3 *c, const char *key, int fd, uint64_t size, char *err, size_t errlen);
/* GET an object into out (reset first) or, with out NULL, into fd from offset 0 (truncated
 * before each attempt). Returns 1, 0 when there is no such key, or -1. */
int ev_s3_get(ev_s3 *c, const char *key, ev_buf *out, int fd, char *err, size_t errlen);
/* HEAD an object: 1 with its size, 0 when there is none (a 404, whatever its reason), -1. */
int ev_s3_head(ev_s3 *c, const char *key, uint64_t *size, char *err, size_t errlen);
/* fn(key, size, arg) for every object whose key starts with prefix, in key order (UTF-8
 * bytes), page by page (ListObjectsV2, continuation tokens). fn returns 0 to go on; another
 * value stops the listing and is returned. Returns 0 when every key was seen, or -1. */
int ev_s3_list(ev_s3 *c, const char *prefix, int (*fn)(const char *key, uint64_t size, void *arg),
	       void *arg, char *err, size_t errlen);
/* DELETE an object; one that does not exist is not an error. Returns 0 or -1. */
int ev_s3_delete(ev_s3 *c, const char *key, char *err, size_t errlen);

/* Append s URI-encoded as Signature V4 wants it: A-Z a-z 0-9 - _ . ~ kept, every other byte
 * as %XX (upper-case hex), '/' kept when keep_slash. Returns 0, or -1 when out of memory. */
int ev_s3_uri_encode(ev_buf *out, const char *s, int keep_slash);

#endif
