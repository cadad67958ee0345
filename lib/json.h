/* SPDX-License-Identifier: Apache-2.0 */
/* json.h: writing JSON text the way evpipe's outputs have it, and a cheap look at untrusted
 * JSON text before it is parsed. */
#ifndef EV_JSON_H
#define EV_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "buf.h"
#include "fastjson.h"

/* A JSON number as its shortest text that reads back the same double; integral values keep a
 * ".0" so that they stay reals ("3.0", "0.1", "1e+16"). */
int ev_json_real(ev_buf *out, double v);
/* A JSON value in compact form, with reals as ev_json_real writes them. */
int ev_json_value(ev_buf *out, const json_t *v);
/* A scalar node as ev_json_value writes it. Returns 1 for an array or an object (not
 * written), 0, or -1 when out of memory. */
int ev_json_scalar_fj(ev_buf *out, const ev_fj_node *n);

/* Append s as a JSON string when it is UTF-8, as "key":"..." ; otherwise as
 * "key_b64":"...". key must need no escaping. */
int ev_json_bytes_field(ev_buf *out, const char *key, const char *s, size_t n);
/* True when the JSON text nests arrays and objects deeper than max (strings are skipped, the
 * text need not be valid). Cheap enough to run before parsing each record. */
int ev_json_too_deep(const char *s, size_t n, int max);

#endif
