/* SPDX-License-Identifier: Apache-2.0 */
/* sha256.h: SHA-256 digests as hex text, of bytes and of files (checkpoint files, S3
 * payloads, manifests). */
#ifndef EV_SHA256_H
#define EV_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* SHA-256 of len bytes as 64 lower-case hex digits and a NUL.
 * Returns 0, or -1 when the digest failed (hex is then all zeros). */
int ev_sha256_hex(const void *data, size_t len, char hex[65]);
/* SHA-256 of the file at path, and its size (size may be NULL). Returns 0, or -1 with errno
 * set. */
int ev_sha256_file(const char *path, char hex[65], uint64_t *size);

#endif
