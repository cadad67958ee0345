/* SPDX-License-Identifier: Apache-2.0 */
/* contract.c: a job's data contract, from a file or from a schema registry. */
#include "contract.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckstore.h"
#include "clock.h"
#include "sha256.h"

#define QUIET_NS (5ULL * 1000000000ULL)

/* s with '"' and '\' replaced, for a label value or a JSON string. */
static void safe_copy(char *dst, size_t n, const char *s)
{
	snprintf(dst, n, "%s", s);
	for (char *p = dst; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
			*p = '_';
}

/* The subject's schema at version (0: latest) as the contract, replacing the one in force. */
static int load(ev_contract *c, int version, int allow_cache, ev_schema **old, char *err,
		size_t errlen)
{
	char safe[256];
	ev_reg_schema s = {0};
	int rc = ev_registry_fetch(c->reg, c->subject, version, allow_cache, &s, err, errlen);
	if (rc != EV_REG_OK)
		return 1;
	ev_schema *schema = ev_schema_compile_flags(s.doc, c->schema_flags, err, errlen);
	if (!schema) {
		ev_reg_schema_clear(&s);
		return 2;
	}
	*old = c->schema;
	c->schema = schema;
	c->version = s.version;
	c->id = s.id;
	c->from_cache = s.from_cache;
	memcpy(c->sha256, s.sha256, sizeof(c->sha256));
	ev_reg_schema_clear(&s);
	safe_copy(safe, sizeof(safe), c->subject);
	snprintf(c->json, sizeof(c->json),
		 "{\"subject\":\"%s\",\"version\":%d,\"id\":%d,\"sha256\":\"%s\"}", safe,
		 c->version, c->id, c->sha256);
	snprintf(c->labels, sizeof(c->labels), "subject=\"%s\",version=\"%d\",id=\"%d\"", safe,
		 c->version, c->id);
	return 0;
}

int ev_contract_open(ev_contract *c, const char *spec, const char *cache_dir, int pinned,
		     int schema_flags, char *err, size_t errlen)
{
	int version;
	ev_schema *old = NULL;
	memset(c, 0, sizeof(*c));
	c->schema_flags = schema_flags;
	int ref = ev_registry_parse_ref(spec, c->subject, sizeof(c->subject), &version);
	if (ref < 0) {
		snprintf(err, errlen, "want registry:SUBJECT[@VERSION|@latest]");
		return 2;
	}
	if (ref == 0) {
		uint64_t size;
		if (!(c->schema = ev_schema_load_file_flags(spec, schema_flags, err, errlen)))
			return 2;
		if (ev_sha256_file(spec, c->sha256, &size) < 0)
			c->sha256[0] = '\0';
		return 0;
	}
	const char *url = getenv("SCHEMA_REGISTRY_URL");
	if (!url || !*url) {
		snprintf(err, errlen, "SCHEMA_REGISTRY_URL is not set");
		return 2;
	}
	if (!(c->reg = ev_registry_new(url, cache_dir, 0, err, errlen)))
		return 2;
	c->registry = 1;
	c->follow_latest = version == 0;
	int rc = load(c, version ? version : pinned, 1, &old, err, errlen);
	if (rc != 0)
		ev_contract_close(c);
	return rc;
}

int ev_contract_refresh(ev_contract *c, ev_schema **old, char *err, size_t errlen)
{
	int latest;
	*old = NULL;
	if (!c->registry || !c->follow_latest)
		return 0;
	int rc = ev_registry_latest_version(c->reg, c->subject, &latest, err, errlen);
	if (rc != EV_REG_OK)
		return -1;
	if (latest == c->version) {
		c->from_cache = 0;
		return 0;
	}
	return load(c, latest, 0, old, err, errlen) == 0 ? 1 : -1;
}

void ev_contract_close(ev_contract *c)
{
	for (size_t i = 0; i < c->nids; i++)
		ev_schema_free(c->ids[i].schema);
	c->nids = 0;
	ev_schema_free(c->schema);
	ev_registry_free(c->reg);
	c->schema = NULL;
	c->reg = NULL;
}

/* Remember the answer about id (its schema fetched when accepted). */
static int remember(ev_contract *c, int32_t id, int version, char *msg, size_t msglen)
{
	char err[512], safe[256];
	ev_reg_schema s = {0};
	ev_schema *schema = NULL;
	if (version > 0) {
		int rc = ev_registry_fetch_id(c->reg, id, &s, err, sizeof(err));
		if (rc == EV_REG_OK)
			schema = ev_schema_compile_flags(s.doc, c->schema_flags, err, sizeof(err));
		ev_reg_schema_clear(&s);
		if (!schema) {
			if (rc == EV_REG_UNAVAILABLE)
				c->quiet_until_ns = ev_mono_ns() + QUIET_NS;
			snprintf(msg, msglen, "schema id %d cannot be used: %s", id, err);
			return -1;
		}
	}
	if (c->nids == EV_CONTRACT_MAX_IDS) {
		ev_schema_free(schema);
		snprintf(msg, msglen, "schema id %d: more than %d ids seen", id,
			 EV_CONTRACT_MAX_IDS);
		return -1;
	}
	size_t i = c->nids++;
	c->ids[i].id = id;
	c->ids[i].accepted = version > 0;
	c->ids[i].schema = schema;
	safe_copy(safe, sizeof(safe), c->subject);
	snprintf(c->ids[i].json, sizeof(c->ids[i].json),
		 "{\"subject\":\"%s\",\"version\":%d,\"id\":%d}", safe, version, id);
	return (int)i;
}

int ev_contract_accepts_id(ev_contract *c, int32_t id, const ev_schema **schema, const char **json,
			   char *msg, size_t msglen)
{
	char err[512];
	int version = 0, i = -1;
	*schema = NULL;
	*json = c->json;
	if (c->registry && id == c->id)
		return 1;
	for (size_t k = 0; k < c->nids && i < 0; k++)
		if (c->ids[k].id == id)
			i = (int)k;
	if (i < 0 && !c->registry) {
		snprintf(msg, msglen, "schema id %d: the contract is a file, not a registry's", id);
		return 0;
	}
	if (i < 0) {
		uint64_t now = ev_mono_ns();
		if (now < c->quiet_until_ns) {
			snprintf(msg, msglen,
				 "schema id %d cannot be resolved: the registry failed %.1f s ago",
				 id, (double)(now + QUIET_NS - c->quiet_until_ns) / 1e9);
			return 0;
		}
		int rc = ev_registry_id_in_subject(c->reg, id, c->subject, &version, err,
						   sizeof(err));
		if (rc < 0) {
			c->quiet_until_ns = ev_mono_ns() + QUIET_NS;
			snprintf(msg, msglen, "schema id %d cannot be resolved: %s", id, err);
			return 0;
		}
		if ((i = remember(c, id, rc ? version : 0, msg, msglen)) < 0)
			return 0;
	}
	if (!c->ids[i].accepted) {
		snprintf(msg, msglen, "schema id %d is unknown or not a version of subject '%s'",
			 id, c->subject);
		return 0;
	}
	*schema = c->ids[i].schema;
	*json = c->ids[i].json;
	return 1;
}
