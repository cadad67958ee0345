/* SPDX-License-Identifier: Apache-2.0 */
/* schema.h: JSON Schema draft-07 validation over jansson, compiled once, applied per record. */
#ifndef EV_SCHEMA_H
#define EV_SCHEMA_H

#include <jansson.h>
#include <stddef.h>

#include "fastjson.h"

/*
 * Supported: every draft-07 validation keyword (type, enum, const, multipleOf, maximum,
 * exclusiveMaximum, minimum, exclusiveMinimum, maxLength, minLength, pattern, items,
 * additionalItems, maxItems, minItems, uniqueItems, contains, maxProperties, minProperties,
 * required, properties, patternProperties, additionalProperties, dependencies, propertyNames,
 * if/then/else, allOf, anyOf, oneOf, not), boolean schemas, definitions and $ref.
 *
 * - Numbers compare by value: 1 and 1.0 are equal, and a real with an integral value is an
 *   "integer". Lengths count Unicode code points.
 * - pattern and patternProperties are PCRE2 (UTF) regexes searched unanchored, with "$"
 *   matching only at the very end and \uXXXX escapes, as in ECMA-262.
 * - format is asserted for date-time, date, time (RFC 3339; a leap second 23:59:60 is valid
 *   when it falls at 23:59 UTC), email, uuid, ipv4 and ipv6 (no zone id), hostname (RFC 1123),
 *   uri and uri-reference (RFC 3986), iri and iri-reference (the same, with non-ASCII characters
 *   where RFC 3987 takes them), json-pointer (RFC 6901), relative-json-pointer and regex (what
 *   pattern takes). Any other format (idn-hostname, idn-email, uri-template, a name of one's
 *   own) is refused, like an unknown keyword, unless EV_SCHEMA_FORMATS_AS_ANNOTATIONS makes
 *   it an annotation: accepted, not asserted.
 * - Annotations are accepted and ignored: $schema (which must name draft-07), $id, $comment,
 *   title, description, default, examples, readOnly, writeOnly, contentMediaType,
 *   contentEncoding.
 * - $ref resolves JSON pointer fragments ("#", "#/definitions/x", with ~0 ~1 and %-escapes),
 *   $id-based URIs and "#name" anchors within the document, and the draft-07 meta-schema
 *   (http://json-schema.org/draft-07/schema#), of which a copy is built in. Any other URI
 *   outside the document (a remote $ref) is refused. As draft-07 says, a $ref replaces its
 *   sibling keywords. A $ref cycle that never descends into the value is refused.
 * - Strictness: an unknown keyword in a schema object is refused, so that a misspelt
 *   "requierd" is not silently ignored. The only exception is a member that a $ref in the
 *   document points into: it is a container of subschemas, like definitions.
 */

typedef struct ev_schema ev_schema;

typedef struct ev_schema_error {
	char path[256];   /* JSON pointer into the instance, "" for the root, e.g. "/ts" */
	char keyword[32]; /* the failing keyword, e.g. "required", "pattern" */
	char message
		[256]; /* human-readable, e.g. "'ts' is required" or "3 is less than the minimum 5" */
} ev_schema_error;

/* Compile a schema document (draft-07). Refuses, with a clear message naming the keyword and
 * its location in the schema, any keyword it does not support and any format it does not
 * assert (see above); remote $ref (http...) is refused. The doc is not stolen (the compiled
 * schema takes its own reference if it needs one). NULL on error. */
ev_schema *ev_schema_compile(json_t *doc, char *err, size_t errlen);
/* Flags of ev_schema_compile_flags and ev_schema_load_file_flags. */
enum {
	EV_SCHEMA_FORMATS_AS_ANNOTATIONS = 1 << 0, /* a format not asserted: accepted unchecked */
};
ev_schema *ev_schema_compile_flags(json_t *doc, int flags, char *err, size_t errlen);
/* Read and compile a schema file. An error reading it is "cannot open 'path': reason" or
 * "path:line:column: JSON syntax error"; a schema error is as from ev_schema_compile (without
 * the path: the caller adds it). */
ev_schema *ev_schema_load_file(const char *path, char *err, size_t errlen);
ev_schema *ev_schema_load_file_flags(const char *path, int flags, char *err, size_t errlen);
void ev_schema_free(ev_schema *s);
/* Validate an instance. Returns the number of violations found: 0 means valid. With max_errors
 * 1 it stops at the first violation (the fast path); otherwise it collects up to max_errors into
 * errs (errs may be NULL when max_errors is 0, then it just answers valid or not, stopping early).
 * It stops once max_errors violations are found (at the first when max_errors is 0), so the
 * result is at most max(max_errors, 1). A required property is reported at the path of its
 * object, an additional property at its own path. A compiled schema is immutable except for a
 * regex match buffer: use it from one thread at a time (compile one per thread). */
size_t ev_schema_validate(const ev_schema *s, const json_t *instance, ev_schema_error *errs,
			  size_t max_errors);
/* The quiet fast path over the fast parser's nodes (fastjson.h): is the value nodes[root] valid?
 * 1 only when ev_schema_validate would find no violation in the same text read by jansson;
 * 0 when it is not valid, or when the answer is left to ev_schema_validate: uniqueItems over
 * long arrays or arrays of arrays and objects. When the value is an object, its member
 * skip_key (skip_len bytes; skip_key may be NULL) is taken as absent, as if deleted from it. */
int ev_schema_valid_fast(const ev_schema *s, const ev_fj_node *nodes, size_t root,
			 const char *skip_key, size_t skip_len);

#endif
