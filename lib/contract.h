/* SPDX-License-Identifier: Apache-2.0 */
/* contract.h: a job's data contract, from a file or from a schema registry
 * ("registry:SUBJECT[@VERSION|@latest]", the registry at $SCHEMA_REGISTRY_URL), and which
 * registry-framed schema ids it accepts. */
#ifndef EV_CONTRACT_H
#define EV_CONTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "registry.h"
#include "schema.h"

#define EV_CONTRACT_MAX_IDS 256

typedef struct ev_contract {
	ev_schema *schema; /* compiled */
	int registry;      /* from a registry: the fields below are set */
	char subject[256];
	int version, id;
	int follow_latest; /* the reference named no version: refresh moves to newer ones */
	int schema_flags;  /* EV_SCHEMA_* */
	int from_cache;    /* the registry was down: the copy on disk */
	char sha256[65];   /* of the schema (a file's bytes, a registry's resolved document) */
	char json[640];    /* {"subject","version","id","sha256"} for dead letters and parts */
	char labels[640];  /* subject="..",version="..",id=".." for metrics */
	ev_registry *reg;
	struct {
		int32_t id;
		int accepted;
		ev_schema *schema;  /* accepted: the schema registered with this id */
		char json[320];     /* accepted: {"subject","version","id"} */
	} ids[EV_CONTRACT_MAX_IDS]; /* answers about framed records' ids (known ones only) */
	size_t nids;
	uint64_t quiet_until_ns; /* after a failed request: ids are not asked about until then */
} ev_contract;

/* Load spec (a file path, or a registry reference with cache_dir for the copies on disk, NULL
 * for none), compiled with schema_flags (EV_SCHEMA_*). pinned (> 0) is the version a
 * checkpoint recorded: for a reference to the latest version, that version is loaded instead.
 * Returns 0; or 2 (a malformed reference, a schema that does not compile) or 1 (the registry
 * failed and there is no usable copy) with a message in err. */
int ev_contract_open(ev_contract *c, const char *spec, const char *cache_dir, int pinned,
		     int schema_flags, char *err, size_t errlen);

/* For a reference to the latest version: ask the registry for it, and move to it when it is
 * newer. Returns 1 when the contract changed (*old is the previous schema, to be freed by the
 * caller once nothing uses it), 0 when not, -1 when the registry failed (message in err; the
 * contract stays as it is). */
int ev_contract_refresh(ev_contract *c, ev_schema **old, char *err, size_t errlen);
void ev_contract_close(ev_contract *c);

/* Does the job accept records framed with schema id? 1 when id is the contract's or one of the
 * subject's registered versions, with *schema (its own schema, which the record must meet too;
 * NULL for the contract's id) and *json ({"subject","version","id"} for its dead letters); 0
 * when not (why, in msg). An id the registry cannot be asked
 * about now (it is down) is not accepted, and not remembered, so that it is asked again, but
 * not within 5 s of the failure: an outage costs each record no wait. */
int ev_contract_accepts_id(ev_contract *c, int32_t id, const ev_schema **schema, const char **json,
			   char *msg, size_t msglen);

#endif
