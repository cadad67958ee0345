/* SPDX-License-Identifier: Apache-2.0 */
/* claim.h: claim checks: the original bytes of a dead letter too large for its topic go to a
 * store (lib/ckstore.h), and the envelope keeps a reference and the hash. */
#ifndef EV_CLAIM_H
#define EV_CLAIM_H

#include <jansson.h>
#include <stddef.h>

#include "buf.h"
#include "ckstore.h"

/* The original record of an envelope, "raw" or "raw_b64" decoded, into raw (reset first).
 * Returns 1, or 0 when env holds neither (not an envelope, or a claim check). */
int ev_claim_raw(const json_t *env, ev_buf *raw);

/* Turn env into a claim check: the bytes of raw are put under "<job>/claims/<sha256>" of store
 * (unless that key already exists: it names the content), and env's "raw" / "raw_b64" are
 * replaced by "raw_ref" ("<store URL>/<key>"), "raw_sha256" and "raw_bytes". With store NULL
 * the bytes are not kept: env gets "raw_sha256", "raw_bytes" and "raw_lost":true. Returns 0,
 * or -1 with a message in err (env unchanged). */
int ev_claim_check(json_t *env, const ev_buf *raw, ev_store *store, const char *job, char *err,
		   size_t errlen);

/* The original record of a claim check from store, checked against its "raw_bytes" and
 * "raw_sha256", into raw (reset first). Returns 1, 0 when env is not a claim check, or -1 with
 * a message in err: store NULL, a reference into another store or not to a claim, a missing
 * object, a size or hash that does not match. */
int ev_claim_resolve(const json_t *env, ev_store *store, ev_buf *raw, char *err, size_t errlen);

#endif
