/* SPDX-License-Identifier: Apache-2.0 */
/* registry.h: a schema registry's Confluent-compatible REST API (Confluent Schema Registry,
 * Apicurio Registry's /apis/ccompat/v7, Karapace): JSON Schemas by subject and version or by
 * id, with their references resolved; compatibility checks and registration; a copy on disk of
 * every schema fetched, for a registry that is down.
 *
 * Credentials never come from argv: SCHEMA_REGISTRY_USER and SCHEMA_REGISTRY_PASSWORD, or
 * SCHEMA_REGISTRY_CREDENTIALS_FILE (one line "user:password"), sent as HTTP basic auth. */
#ifndef EV_REGISTRY_H
#define EV_REGISTRY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* The Confluent wire format: a magic byte 0 and the schema id (4 bytes, big-endian) before the
 * payload. ev_registry_frame appends the frame and the payload to out; ev_registry_unframe
 * answers 1 with *id when payload carries a frame (5 bytes to skip), else 0. */
#define EV_REGISTRY_FRAME_LEN 5
int ev_registry_frame(ev_buf *out, int32_t id, const void *payload, size_t len);
int ev_registry_unframe(const void *payload, size_t len, int32_t *id);

/* Results of the calls below. */
enum {
	EV_REG_OK = 0,
	EV_REG_NOT_FOUND = 1,    /* the registry answered 404: no such subject, version or id */
	EV_REG_ERROR = -1,       /* anything else: err says what */
	EV_REG_UNAVAILABLE = -2, /* the registry could not be reached (or answered 5xx) */
};

typedef struct ev_registry ev_registry;

/* url: the API's base (http://host:port/apis/ccompat/v7); cache_dir: where fetched schemas are
 * kept (created when missing), or NULL for none; timeout_ms: of each request (0: 5000). */
ev_registry *ev_registry_new(const char *url, const char *cache_dir, long timeout_ms, char *err,
			     size_t errlen);
void ev_registry_free(ev_registry *r);

/* One registered schema: its references are embedded (see ev_registry_fetch). */
typedef struct ev_reg_schema {
	char subject[256];
	int version; /* 0 when fetched by id */
	int id;
	char sha256[65]; /* of the resolved document's text */
	int from_cache;  /* the registry was down: read from the copy on disk */
	json_t *doc;     /* the resolved JSON Schema document (owned) */
} ev_reg_schema;
void ev_reg_schema_clear(ev_reg_schema *s);

/* Parse "registry:SUBJECT[@VERSION|@latest]": 1 when spec is a registry reference (subject
 * copied, *version 0 for latest), 0 when it is not one (a file), -1 when it is malformed. */
int ev_registry_parse_ref(const char *spec, char *subject, size_t subject_len, int *version);

/* The schema SUBJECT at version (0: latest). Each reference ({name, subject, version}) is
 * fetched too and embedded under "definitions" with "$id": name, so that a "$ref" to the name
 * resolves within the document. A schema read from the registry is written to the cache (as
 * SUBJECT@VERSION, and SUBJECT@latest when version is 0); when the registry is unavailable and
 * allow_cache is set, the cached copy is used (its hash checked) and from_cache set.
 * Returns EV_REG_OK, EV_REG_NOT_FOUND, EV_REG_UNAVAILABLE (and no cached copy) or EV_REG_ERROR. */
int ev_registry_fetch(ev_registry *r, const char *subject, int version, int allow_cache,
		      ev_reg_schema *out, char *err, size_t errlen);
/* The schema with id (version 0, subject ""), references embedded. Same results. */
int ev_registry_fetch_id(ev_registry *r, int id, ev_reg_schema *out, char *err, size_t errlen);
/* Is schema id registered under subject? 1 yes (*version: the newest version of subject with
 * it), 0 no, or EV_REG_UNAVAILABLE / EV_REG_ERROR. */
int ev_registry_id_in_subject(ev_registry *r, int id, const char *subject, int *version, char *err,
			      size_t errlen);
/* The latest version number of subject (without fetching its schema when it is known). */
int ev_registry_latest_version(ev_registry *r, const char *subject, int *version, char *err,
			       size_t errlen);

/* Is schema_text (a JSON Schema) compatible with subject's versions under the subject's
 * compatibility level? *compatible 1 or 0; the level and the registry's reasons (a JSON
 * array, or NULL) are given back when asked for. A subject with no version yet: compatible.
 * Returns EV_REG_OK, EV_REG_UNAVAILABLE or EV_REG_ERROR. */
int ev_registry_check_compat(ev_registry *r, const char *subject, const char *schema_text,
			     int *compatible, char *level, size_t level_len, json_t **messages,
			     char *err, size_t errlen);
/* Register schema_text under subject (an identical schema gets its existing id): *id. */
int ev_registry_register(ev_registry *r, const char *subject, const char *schema_text, int *id,
			 char *err, size_t errlen);

#endif
