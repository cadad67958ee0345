/* SPDX-License-Identifier: Apache-2.0 */
/* fastjson.h: the hot path's JSON parser: simdjson (C++) behind a small C interface.
 *
 * One record becomes a flat array of nodes in document order, reused from record to record:
 * no allocation per value, and C code walks it with indices. The parser validates the whole
 * text (syntax, UTF-8, numbers), like jansson, but it is not the reference: every caller
 * falls back to jansson when ev_fj_parse answers NULL, so that an unusual record (a number
 * jansson would refuse, a duplicate key, a U+0000, an error to describe) gets exactly the
 * verdict and the message it always had. ADR 0010 gives the reasons and the measured gain. */
#ifndef EV_FASTJSON_H
#define EV_FASTJSON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum ev_fj_type {
	EV_FJ_NULL,
	EV_FJ_FALSE,
	EV_FJ_TRUE,
	EV_FJ_INT, /* fits in int64_t, written without a fraction or exponent */
	EV_FJ_REAL,
	EV_FJ_STRING,
	EV_FJ_ARRAY,
	EV_FJ_OBJECT
};

typedef struct ev_fj_node {
	const char *key; /* an object member's key, unescaped (NULL in arrays and at the root) */
	const char *str; /* a string's bytes, unescaped and NUL-terminated */
	union {
		int64_t i;
		double d;
	} num;
	uint32_t key_len;
	uint32_t len; /* a string's bytes, an array's elements, an object's members */
	uint32_t end; /* the index just past this node's subtree: its next sibling */
	uint8_t type; /* enum ev_fj_type */
} ev_fj_node;

typedef struct ev_fj ev_fj; /* a parser, reused from record to record */

/* NULL when out of memory, or when the environment has EVPIPE_FASTJSON=0: then the caller
 * reads every record with jansson (to compare the two, or to rule the fast parser out). */
ev_fj *ev_fj_new(void);
void ev_fj_free(ev_fj *p);

/* Parse one JSON text. Returns its nodes, the root at index 0 (*n of them), valid until the
 * next parse; or NULL when the text is not JSON, or is JSON that jansson would refuse or
 * read differently: an integer outside int64_t, an object with a key twice, a U+0000 in a
 * string or key. On NULL the caller parses with jansson, which tells why. */
const ev_fj_node *ev_fj_parse(ev_fj *p, const char *text, size_t len, size_t *n);

/* How deep the last text parsed nests arrays and objects: 0 for a scalar, 1 for {} or [1],
 * as ev_json_too_deep counts. */
int ev_fj_depth(const ev_fj *p);

/* The member named key of the object at nodes[obj], or -1. */
long ev_fj_member(const ev_fj_node *nodes, size_t obj, const char *key, size_t key_len);

/* The shortest decimal digits that read back as v (finite), nearest to v among the shortest,
 * written to buf as "[-]d[.ddd]e[+-]xx" (std::to_chars): its length, or 0 when size is too
 * small (32 bytes always suffice). */
size_t ev_fj_shortest(double v, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif
