/* SPDX-License-Identifier: Apache-2.0 */
/* schema.c: JSON Schema draft-07 validation over jansson, compiled once, applied per record. */
#include "schema.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "schema_format.h"

enum {
	TY_NULL = 1 << 0,
	TY_BOOLEAN = 1 << 1,
	TY_OBJECT = 1 << 2,
	TY_ARRAY = 1 << 3,
	TY_NUMBER = 1 << 4,
	TY_STRING = 1 << 5,
	TY_INTEGER = 1 << 6,
};

static const char *const type_names[] = {"null",   "boolean", "object", "array",
					 "number", "string",  "integer"};

/* Keyword families present in a node, so that validation skips whole families at once. */
enum {
	H_TYPE = 1 << 0,
	H_ENUM = 1 << 1,
	H_CONST = 1 << 2,
	H_NUM = 1 << 3,
	H_STR = 1 << 4,
	H_ARR = 1 << 5,
	H_OBJ = 1 << 6,
	H_COMB = 1 << 7,
};

enum kind { N_SCHEMA, N_TRUE, N_FALSE, N_REF };

struct regex {
	pcre2_code *code;
	const char *src; /* the pattern, inside the schema document */
};

struct node;

struct node_list {
	struct node **v;
	size_t n;
};

struct prop {
	const char *name;
	size_t len;
	struct node *schema;
};

struct pattern_prop {
	struct regex re;
	struct node *schema;
};

struct name {
	const char *s;
	size_t len;
};

struct dep {
	struct name key;
	struct name *required; /* array form */
	size_t n_required;
	struct node *schema; /* schema form */
};

struct node {
	enum kind kind;
	unsigned has;
	struct node *ref;
	char *loc; /* where in the schema, e.g. "#/properties/x" */
	int mark;  /* cycle check at compile time */

	unsigned types;
	const json_t *type_val; /* for messages: the names as written */
	const json_t *enum_vals, *const_val;

	const json_t *minimum, *maximum, *ex_minimum, *ex_maximum, *multiple_of;

	size_t min_length, max_length;
	struct regex pattern;
	enum ev_schema_format format;

	struct node *items;          /* items as one schema */
	struct node_list items_list; /* items as an array of schemas */
	int items_is_list;
	struct node *additional_items, *contains;
	int unique_items;
	size_t min_items, max_items;

	struct prop *props;         /* as written */
	const struct prop **sorted; /* by (len, name), for additionalProperties */
	size_t n_props;
	struct pattern_prop *pattern_props;
	size_t n_pattern_props;
	struct node *additional_props, *property_names;
	struct name *required;
	size_t n_required;
	struct dep *deps;
	size_t n_deps;
	size_t min_props, max_props;

	struct node_list all_of, any_of, one_of;
	struct node *not_schema, *if_schema, *then_schema, *else_schema;
};

struct ev_schema {
	struct node *root;
	struct node **nodes; /* every node, for freeing: the graph may share and cycle */
	size_t n_nodes, cap_nodes;
	json_t *doc;  /* our copy of the document: the nodes point into it */
	json_t *meta; /* the draft-07 meta-schema, when a $ref uses it */
	pcre2_match_data *md;
};

/* The draft-07 meta-schema (http://json-schema.org/draft-07/schema#). */
static const char meta_uri[] = "http://json-schema.org/draft-07/schema";
static const char meta_schema[] =
	"{\"$schema\":\"http://json-schema.org/draft-07/schema#\","
	"\"$id\":\"http://json-schema.org/draft-07/schema#\","
	"\"title\":\"Core schema meta-schema\","
	"\"definitions\":{"
	"\"schemaArray\":{\"type\":\"array\",\"minItems\":1,\"items\":{\"$ref\":\"#\"}},"
	"\"nonNegativeInteger\":{\"type\":\"integer\",\"minimum\":0},"
	"\"nonNegativeIntegerDefault0\":{\"allOf\":[{\"$ref\":\"#/definitions/nonNegativeInteger\"},"
	"{\"default\":0}]},"
	"\"simpleTypes\":{\"enum\":[\"array\",\"boolean\",\"integer\",\"null\",\"number\","
	"\"object\",\"string\"]},"
	"\"stringArray\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"uniqueItems\":true,"
	"\"default\":[]}},"
	"\"type\":[\"object\",\"boolean\"],"
	"\"properties\":{"
	"\"$id\":{\"type\":\"string\",\"format\":\"uri-reference\"},"
	"\"$schema\":{\"type\":\"string\",\"format\":\"uri\"},"
	"\"$ref\":{\"type\":\"string\",\"format\":\"uri-reference\"},"
	"\"$comment\":{\"type\":\"string\"},"
	"\"title\":{\"type\":\"string\"},"
	"\"description\":{\"type\":\"string\"},"
	"\"default\":true,"
	"\"readOnly\":{\"type\":\"boolean\",\"default\":false},"
	"\"writeOnly\":{\"type\":\"boolean\",\"default\":false},"
	"\"examples\":{\"type\":\"array\",\"items\":true},"
	"\"multipleOf\":{\"type\":\"number\",\"exclusiveMinimum\":0},"
	"\"maximum\":{\"type\":\"number\"},"
	"\"exclusiveMaximum\":{\"type\":\"number\"},"
	"\"minimum\":{\"type\":\"number\"},"
	"\"exclusiveMinimum\":{\"type\":\"number\"},"
	"\"maxLength\":{\"$ref\":\"#/definitions/nonNegativeInteger\"},"
	"\"minLength\":{\"$ref\":\"#/definitions/nonNegativeIntegerDefault0\"},"
	"\"pattern\":{\"type\":\"string\",\"format\":\"regex\"},"
	"\"additionalItems\":{\"$ref\":\"#\"},"
	"\"items\":{\"anyOf\":[{\"$ref\":\"#\"},{\"$ref\":\"#/definitions/schemaArray\"}],"
	"\"default\":true},"
	"\"maxItems\":{\"$ref\":\"#/definitions/nonNegativeInteger\"},"
	"\"minItems\":{\"$ref\":\"#/definitions/nonNegativeIntegerDefault0\"},"
	"\"uniqueItems\":{\"type\":\"boolean\",\"default\":false},"
	"\"contains\":{\"$ref\":\"#\"},"
	"\"maxProperties\":{\"$ref\":\"#/definitions/nonNegativeInteger\"},"
	"\"minProperties\":{\"$ref\":\"#/definitions/nonNegativeIntegerDefault0\"},"
	"\"required\":{\"$ref\":\"#/definitions/stringArray\"},"
	"\"additionalProperties\":{\"$ref\":\"#\"},"
	"\"definitions\":{\"type\":\"object\",\"additionalProperties\":{\"$ref\":\"#\"},"
	"\"default\":{}},"
	"\"properties\":{\"type\":\"object\",\"additionalProperties\":{\"$ref\":\"#\"},"
	"\"default\":{}},"
	"\"patternProperties\":{\"type\":\"object\",\"additionalProperties\":{\"$ref\":\"#\"},"
	"\"propertyNames\":{\"format\":\"regex\"},\"default\":{}},"
	"\"dependencies\":{\"type\":\"object\",\"additionalProperties\":{\"anyOf\":["
	"{\"$ref\":\"#\"},{\"$ref\":\"#/definitions/stringArray\"}]}},"
	"\"propertyNames\":{\"$ref\":\"#\"},"
	"\"const\":true,"
	"\"enum\":{\"type\":\"array\",\"items\":true},"
	"\"type\":{\"anyOf\":[{\"$ref\":\"#/definitions/simpleTypes\"},{\"type\":\"array\","
	"\"items\":{\"$ref\":\"#/definitions/simpleTypes\"},\"minItems\":1,\"uniqueItems\":true}]},"
	"\"format\":{\"type\":\"string\"},"
	"\"contentMediaType\":{\"type\":\"string\"},"
	"\"contentEncoding\":{\"type\":\"string\"},"
	"\"if\":{\"$ref\":\"#\"},"
	"\"then\":{\"$ref\":\"#\"},"
	"\"else\":{\"$ref\":\"#\"},"
	"\"allOf\":{\"$ref\":\"#/definitions/schemaArray\"},"
	"\"anyOf\":{\"$ref\":\"#/definitions/schemaArray\"},"
	"\"oneOf\":{\"$ref\":\"#/definitions/schemaArray\"},"
	"\"not\":{\"$ref\":\"#\"}},"
	"\"default\":true}";

/* ---- numbers and equality ---- */

static int is_integral(double d)
{
	return isfinite(d) && d == floor(d);
}

/* Compare an integer with a double exactly (no rounding of the integer to a double). */
static int cmp_int_real(json_int_t i, double d)
{
	if (d >= 9223372036854775808.0)
		return -1;
	if (d < -9223372036854775808.0)
		return 1;
	double fl = floor(d);
	json_int_t f = (json_int_t)fl;
	if (i != f)
		return i < f ? -1 : 1;
	return fl < d ? -1 : 0;
}

/* A number as jansson or the fast parser read it: an integer, or a real. */
struct num {
	int is_int;
	json_int_t i;
	double d;
};

static struct num num_of(const json_t *x)
{
	struct num r = {json_is_integer(x), json_integer_value(x), json_real_value(x)};
	return r;
}

static int num_cmp(struct num a, struct num b)
{
	if (a.is_int && b.is_int)
		return a.i < b.i ? -1 : a.i > b.i;
	if (a.is_int)
		return cmp_int_real(a.i, b.d);
	if (b.is_int)
		return -cmp_int_real(b.i, a.d);
	return a.d < b.d ? -1 : a.d > b.d;
}

static int multiple_ok(struct num x, struct num m)
{
	if (x.is_int && m.is_int)
		return x.i % m.i == 0;
	/* x / m is integral up to the rounding of x, m and the division */
	double q = (x.is_int ? (double)x.i : x.d) / (m.is_int ? (double)m.i : m.d);
	return isfinite(q) && fabs(q - nearbyint(q)) <= 4 * DBL_EPSILON * fabs(q);
}

static int json_eq(const json_t *a, const json_t *b)
{
	if (json_is_number(a) && json_is_number(b))
		return num_cmp(num_of(a), num_of(b)) == 0;
	if (json_typeof(a) != json_typeof(b))
		return 0;
	switch (json_typeof(a)) {
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		       memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) ==
			       0;
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return 0;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!json_eq(json_array_get(a, i), json_array_get(b, i)))
				return 0;
		return 1;
	case JSON_OBJECT: {
		if (json_object_size(a) != json_object_size(b))
			return 0;
		const char *key;
		size_t klen;
		json_t *v;
		json_object_keylen_foreach((json_t *)a, key, klen, v)
		{
			const json_t *w = json_object_getn(b, key, klen);
			if (!w || !json_eq(v, w))
				return 0;
		}
		return 1;
	}
	default: return 1;
	}
}

/* A hash consistent with json_eq (1 and 1.0 hash alike), for uniqueItems on long arrays. */
static uint64_t json_hash(const json_t *v)
{
	uint64_t h = 1469598103934665603ull;
	switch (json_typeof(v)) {
	case JSON_INTEGER:
	case JSON_REAL: {
		double d = json_number_value(v);
		if (d == 0)
			d = 0; /* -0.0 */
		uint64_t bits;
		memcpy(&bits, &d, sizeof(bits));
		return (bits ^ (bits >> 29)) * 0xbf58476d1ce4e5b9ull;
	}
	case JSON_STRING: {
		const unsigned char *s = (const unsigned char *)json_string_value(v);
		for (size_t i = 0; i < json_string_length(v); i++)
			h = (h ^ s[i]) * 1099511628211ull;
		return h;
	}
	case JSON_ARRAY:
		for (size_t i = 0; i < json_array_size(v); i++)
			h = h * 31 + json_hash(json_array_get(v, i));
		return h ^ 0xa5;
	case JSON_OBJECT: {
		const char *key;
		size_t klen;
		json_t *m;
		uint64_t sum = 0x0b;
		json_object_keylen_foreach((json_t *)v, key, klen, m)
		{
			uint64_t kh = 1469598103934665603ull;
			for (size_t i = 0; i < klen; i++)
				kh = (kh ^ (unsigned char)key[i]) * 1099511628211ull;
			sum += kh ^ (json_hash(m) * 0x94d049bb133111ebull);
		}
		return sum;
	}
	case JSON_TRUE: return 0x7;
	case JSON_FALSE: return 0x8;
	default: return 0x9;
	}
}

/* ---- rendering values, strings and paths into bounded buffers ---- */

struct vw {
	char *p;
	size_t len, cap;
	int over;
};

static void vw_put(struct vw *w, const char *s, size_t n)
{
	if (w->over || w->len + n > w->cap) {
		w->over = 1;
		return;
	}
	memcpy(w->p + w->len, s, n);
	w->len += n;
}

static void vw_puts(struct vw *w, const char *s)
{
	vw_put(w, s, strlen(s));
}

static size_t utf8_seq_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		return 2;
	if ((c & 0xf0) == 0xe0)
		return 3;
	if ((c & 0xf8) == 0xf0)
		return 4;
	return 1;
}

/* A string in single quotes; stops (w->over) at a character boundary when full. */
static void vw_str(struct vw *w, const char *s, size_t n)
{
	vw_put(w, "'", 1);
	for (size_t i = 0; i < n && !w->over;) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];
		if (c == '\'' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			vw_put(w, esc, 2);
		} else if (c == '\n') {
			vw_put(w, "\\n", 2);
		} else if (c == '\t') {
			vw_put(w, "\\t", 2);
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			vw_put(w, esc, 6);
		} else {
			size_t k = utf8_seq_len(c);
			if (k > n - i)
				k = n - i;
			vw_put(w, s + i, k);
			i += k;
			continue;
		}
		i++;
	}
	vw_put(w, "'", 1);
}

static void fmt_real(char *b, size_t size, double d)
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(b, size, "%.*g", prec, d);
		if (strtod(b, NULL) == d)
			break;
	}
	if (!strpbrk(b, ".eEn") && strlen(b) + 3 <= size)
		strcat(b, ".0");
}

static void vw_value(struct vw *w, const json_t *v)
{
	char b[40];
	switch (json_typeof(v)) {
	case JSON_STRING: vw_str(w, json_string_value(v), json_string_length(v)); break;
	case JSON_INTEGER:
		snprintf(b, sizeof(b), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		vw_puts(w, b);
		break;
	case JSON_REAL:
		fmt_real(b, sizeof(b), json_real_value(v));
		vw_puts(w, b);
		break;
	case JSON_TRUE: vw_puts(w, "true"); break;
	case JSON_FALSE: vw_puts(w, "false"); break;
	case JSON_NULL: vw_puts(w, "null"); break;
	case JSON_ARRAY:
		vw_put(w, "[", 1);
		for (size_t i = 0; i < json_array_size(v) && !w->over; i++) {
			if (i)
				vw_put(w, ",", 1);
			vw_value(w, json_array_get(v, i));
		}
		vw_put(w, "]", 1);
		break;
	case JSON_OBJECT: {
		const char *key;
		size_t klen;
		json_t *m;
		int first = 1;
		vw_put(w, "{", 1);
		json_object_keylen_foreach((json_t *)v, key, klen, m)
		{
			if (w->over)
				break;
			if (!first)
				vw_put(w, ",", 1);
			first = 0;
			vw_str(w, key, klen);
			vw_put(w, ":", 1);
			vw_value(w, m);
		}
		vw_put(w, "}", 1);
		break;
	}
	}
}

enum { VALUE_MAX = 80, LIST_MAX = 120 };

/* Render v (strings in single quotes) into out, at most size-1 bytes: a long string is cut
 * with "...'", a long array or object after its last whole member with ",...]". */
static void fmt_value(char *out, size_t size, const json_t *v)
{
	struct vw w = {out, 0, size - 6, 0};
	if (json_is_string(v)) {
		vw_str(&w, json_string_value(v), json_string_length(v));
		if (w.over) {
			w.over = 0;
			w.cap = size - 1;
			vw_puts(&w, "...'");
		}
	} else if (json_is_array(v) || json_is_object(v)) {
		int arr = json_is_array(v);
		const char *close = arr ? "]" : "}";
		void *it = arr ? NULL : json_object_iter((json_t *)v);
		vw_put(&w, arr ? "[" : "{", 1);
		for (size_t i = 0; arr ? i < json_array_size(v) : it != NULL; i++) {
			size_t save = w.len;
			if (i)
				vw_put(&w, ",", 1);
			if (arr) {
				vw_value(&w, json_array_get(v, i));
			} else {
				vw_str(&w, json_object_iter_key(it), json_object_iter_key_len(it));
				vw_put(&w, ":", 1);
				vw_value(&w, json_object_iter_value(it));
				it = json_object_iter_next((json_t *)v, it);
			}
			if (w.over) {
				w.len = save;
				w.over = 0;
				w.cap = size - 1;
				vw_puts(&w, i ? ",..." : "...");
				break;
			}
		}
		w.cap = size - 1;
		vw_puts(&w, close);
	} else {
		vw_value(&w, v);
	}
	out[w.len] = '\0';
}

static void fmt_str(char *out, size_t size, const char *s, size_t n)
{
	struct vw w = {out, 0, size - 5, 0};
	vw_str(&w, s, n);
	if (w.over) {
		w.over = 0;
		w.cap = size - 1;
		vw_puts(&w, "...'");
	}
	out[w.len] = '\0';
}

/* ---- URIs ---- */

static size_t scheme_len(const char *u)
{
	size_t i = 0;
	if (!((u[0] >= 'a' && u[0] <= 'z') || (u[0] >= 'A' && u[0] <= 'Z')))
		return 0;
	while (u[i] && (isalnum((unsigned char)u[i]) || u[i] == '+' || u[i] == '-' || u[i] == '.'))
		i++;
	return u[i] == ':' ? i + 1 : 0;
}

/* Remove the "." and ".." segments of the path p, in place (RFC 3986 5.2.4). */
static void remove_dot_segments(char *p)
{
	char *out = p, *in = p;
	while (*in) {
		if (strncmp(in, "../", 3) == 0) {
			in += 3;
		} else if (strncmp(in, "./", 2) == 0 || strncmp(in, "/./", 3) == 0) {
			in += 2;
		} else if (strcmp(in, "/.") == 0) {
			in[1] = '\0';
		} else if (strncmp(in, "/../", 4) == 0 || strcmp(in, "/..") == 0) {
			in += 2;
			*in = '/';
			while (out > p && *--out != '/')
				;
		} else if (strcmp(in, ".") == 0 || strcmp(in, "..") == 0) {
			break;
		} else {
			do
				*out++ = *in++;
			while (*in && *in != '/');
		}
	}
	*out = '\0';
}

/* Resolve ref against base (RFC 3986 5.2, enough for JSON Schema ids); NULL if out of memory. */
static char *uri_resolve(const char *base, const char *ref)
{
	ev_buf b = EV_BUF_INIT;
	size_t blen = strcspn(base, "#");
	size_t sl = scheme_len(base);
	size_t path_at;
	if (scheme_len(ref)) {
		ev_buf_puts(&b, ref);
		path_at = scheme_len(ref);
		if (strncmp(ref + path_at, "//", 2) == 0)
			path_at += 2 + strcspn(ref + path_at + 2, "/?#");
	} else if (ref[0] == '#' || ref[0] == '\0') {
		ev_buf_append(&b, base, blen);
		ev_buf_puts(&b, ref);
		return b.data ? b.data : strdup("");
	} else if (strncmp(ref, "//", 2) == 0) {
		ev_buf_append(&b, base, sl);
		path_at = b.len + 2 + strcspn(ref + 2, "/?#");
		ev_buf_puts(&b, ref);
	} else {
		size_t auth_end = sl;
		if (strncmp(base + sl, "//", 2) == 0)
			auth_end = sl + 2 + strcspn(base + sl + 2, "/?#");
		if (auth_end > blen)
			auth_end = blen;
		if (ref[0] == '/') {
			ev_buf_append(&b, base, auth_end);
		} else {
			size_t plen = auth_end + strcspn(base + auth_end, "?#");
			size_t dir = plen;
			while (dir > auth_end && base[dir - 1] != '/')
				dir--;
			ev_buf_append(&b, base, dir);
			if (dir == auth_end && auth_end > sl)
				ev_buf_putc(&b, '/');
		}
		path_at = auth_end;
		ev_buf_puts(&b, ref);
	}
	const char *data = ev_buf_cstr(&b);
	if (!b.data)
		return NULL;
	size_t pend = path_at + strcspn(data + path_at, "?#");
	char save = b.data[pend];
	b.data[pend] = '\0';
	remove_dot_segments(b.data + path_at);
	size_t plen = strlen(b.data + path_at);
	b.data[pend] = save;
	memmove(b.data + path_at + plen, b.data + pend, strlen(b.data + pend) + 1);
	return b.data;
}

/* ---- compiling ---- */

struct id_entry {
	char *uri; /* absolute, without an empty fragment */
	json_t *node;
	char *loc;
	char *parent_base; /* the base the node's own $id is resolved against */
};

struct unknown_kw {
	char *name, *loc, *kwloc;
};

struct cctx {
	ev_schema *s;
	int flags; /* EV_SCHEMA_* */
	char *err;
	size_t errlen;
	int failed;
	struct id_entry *ids;
	size_t n_ids, cap_ids;
	struct unknown_kw *unknown;
	size_t n_unknown, cap_unknown;
	char **targets;
	size_t n_targets, cap_targets;
	const json_t **memo_keys; /* json node -> compiled node, open addressing */
	struct node **memo_vals;
	size_t memo_n, memo_cap;
};

struct at {
	const char *loc;  /* the schema object */
	const char *base; /* its base URI */
	const char *kw;   /* the keyword */
};

static int cfail(struct cctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int cfail(struct cctx *c, const char *fmt, ...)
{
	if (!c->failed && c->err && c->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->err, c->errlen, fmt, ap);
		va_end(ap);
	}
	c->failed = 1;
	return -1;
}

static int oom(struct cctx *c)
{
	return cfail(c, "out of memory compiling the schema");
}

/* Make room for one more element in *v (n used of *cap); -1 when out of memory. */
static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return v;
	size_t nc = *cap ? *cap * 2 : 8;
	void *p = realloc(v, nc * size);
	if (p)
		*cap = nc;
	return p;
}

/* loc + "/" + key as a JSON pointer token (~ and / escaped). */
static char *loc_join(const char *loc, const char *key, size_t klen)
{
	ev_buf b = EV_BUF_INIT;
	ev_buf_puts(&b, loc);
	ev_buf_putc(&b, '/');
	for (size_t i = 0; i < klen; i++) {
		if (key[i] == '~')
			ev_buf_puts(&b, "~0");
		else if (key[i] == '/')
			ev_buf_puts(&b, "~1");
		else
			ev_buf_putc(&b, key[i]);
	}
	if (!b.data)
		return NULL;
	return b.data;
}

static char *loc_index(const char *loc, size_t i)
{
	char k[32];
	snprintf(k, sizeof(k), "%zu", i);
	return loc_join(loc, k, strlen(k));
}

static size_t ptr_hash(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return (size_t)x;
}

static struct node *memo_get(const struct cctx *c, const json_t *js)
{
	if (!c->memo_cap)
		return NULL;
	for (size_t i = ptr_hash(js) & (c->memo_cap - 1);; i = (i + 1) & (c->memo_cap - 1)) {
		if (!c->memo_keys[i])
			return NULL;
		if (c->memo_keys[i] == js)
			return c->memo_vals[i];
	}
}

static int memo_put(struct cctx *c, const json_t *js, struct node *n)
{
	if ((c->memo_n + 1) * 2 > c->memo_cap) {
		size_t cap = c->memo_cap ? c->memo_cap * 2 : 64;
		const json_t **keys = calloc(cap, sizeof(*keys));
		struct node **vals = calloc(cap, sizeof(*vals));
		if (!keys || !vals) {
			free(keys);
			free(vals);
			return oom(c);
		}
		for (size_t i = 0; i < c->memo_cap; i++) {
			if (!c->memo_keys[i])
				continue;
			size_t j = ptr_hash(c->memo_keys[i]) & (cap - 1);
			while (keys[j])
				j = (j + 1) & (cap - 1);
			keys[j] = c->memo_keys[i];
			vals[j] = c->memo_vals[i];
		}
		free(c->memo_keys);
		free(c->memo_vals);
		c->memo_keys = keys;
		c->memo_vals = vals;
		c->memo_cap = cap;
	}
	size_t j = ptr_hash(js) & (c->memo_cap - 1);
	while (c->memo_keys[j])
		j = (j + 1) & (c->memo_cap - 1);
	c->memo_keys[j] = js;
	c->memo_vals[j] = n;
	c->memo_n++;
	return 0;
}

static struct node *node_new(struct cctx *c, const json_t *js, const char *loc)
{
	ev_schema *s = c->s;
	struct node **nodes = grow(s->nodes, &s->cap_nodes, s->n_nodes, sizeof(*nodes));
	if (!nodes) {
		oom(c);
		return NULL;
	}
	s->nodes = nodes;
	struct node *n = calloc(1, sizeof(*n));
	if (!n || !(n->loc = strdup(loc))) {
		free(n);
		oom(c);
		return NULL;
	}
	s->nodes[s->n_nodes++] = n;
	n->max_length = n->max_items = n->max_props = SIZE_MAX;
	if (memo_put(c, js, n) < 0)
		return NULL;
	return n;
}

static void node_free(struct node *n)
{
	pcre2_code_free(n->pattern.code);
	for (size_t i = 0; i < n->n_pattern_props; i++)
		pcre2_code_free(n->pattern_props[i].re.code);
	for (size_t i = 0; i < n->n_deps; i++)
		free(n->deps[i].required);
	free(n->pattern_props);
	free(n->deps);
	free(n->props);
	free(n->sorted);
	free(n->required);
	free(n->items_list.v);
	free(n->all_of.v);
	free(n->any_of.v);
	free(n->one_of.v);
	free(n->loc);
	free(n);
}

static struct node *compile(struct cctx *c, json_t *js, const char *loc, const char *base);

static struct node *compile_at(struct cctx *c, json_t *js, const char *loc, const char *key,
			       size_t klen, const char *base)
{
	char *l = loc_join(loc, key, klen);
	if (!l) {
		oom(c);
		return NULL;
	}
	struct node *n = compile(c, js, l, base);
	free(l);
	return n;
}

/* The subschema that is the keyword's value. */
static struct node *sub_kw(struct cctx *c, json_t *v, const struct at *a)
{
	return compile_at(c, v, a->loc, a->kw, strlen(a->kw), a->base);
}

static int kw_loc_fail(struct cctx *c, const struct at *a, const char *what)
{
	return cfail(c, "keyword '%s' at '%s' must be %s", a->kw, a->loc, what);
}

/* A subschema under a member of the keyword's value: loc/kw/key (key is an index if NULL). */
static struct node *sub_member(struct cctx *c, json_t *v, const struct at *a, const char *key,
			       size_t klen, size_t idx)
{
	char *kl = loc_join(a->loc, a->kw, strlen(a->kw));
	char *l = !kl ? NULL : key ? loc_join(kl, key, klen) : loc_index(kl, idx);
	struct node *n = NULL;
	if (l)
		n = compile(c, v, l, a->base);
	else
		oom(c);
	free(kl);
	free(l);
	return n;
}

static int compile_regex(struct cctx *c, struct regex *re, const json_t *v, const struct at *a,
			 const char *what)
{
	int code;
	PCRE2_SIZE off;
	re->src = json_string_value(v);
	re->code = pcre2_compile((PCRE2_SPTR)re->src, json_string_length(v),
				 EV_SCHEMA_REGEX_OPTIONS, &code, &off, NULL);
	if (!re->code) {
		PCRE2_UCHAR msg[128];
		char src[VALUE_MAX];
		pcre2_get_error_message(code, msg, sizeof(msg));
		fmt_str(src, sizeof(src), re->src, json_string_length(v));
		return cfail(c, "invalid regex %s in %s '%s' at '%s': %s at offset %zu", src, what,
			     a->kw, a->loc, (const char *)msg, (size_t)off);
	}
	pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE); /* the interpreter if JIT fails */
	return 0;
}

static int get_count(struct cctx *c, const json_t *v, const struct at *a, size_t *out)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (size_t)json_integer_value(v);
		return 0;
	}
	if (json_is_real(v) && is_integral(json_real_value(v)) && json_real_value(v) >= 0) {
		double d = json_real_value(v);
		*out = d >= 1.8e19 ? SIZE_MAX : (size_t)d;
		return 0;
	}
	return kw_loc_fail(c, a, "a non-negative integer");
}

static int get_names(struct cctx *c, const json_t *v, const struct at *a, struct name **out,
		     size_t *n)
{
	if (!json_is_array(v))
		return kw_loc_fail(c, a, "an array of strings");
	size_t k = json_array_size(v);
	*out = calloc(k ? k : 1, sizeof(**out));
	if (!*out)
		return oom(c);
	for (size_t i = 0; i < k; i++) {
		const json_t *e = json_array_get(v, i);
		if (!json_is_string(e))
			return kw_loc_fail(c, a, "an array of strings");
		(*out)[i].s = json_string_value(e);
		(*out)[i].len = json_string_length(e);
		(*n)++;
	}
	return 0;
}

static int get_list(struct cctx *c, json_t *v, const struct at *a, struct node_list *l)
{
	if (!json_is_array(v) || json_array_size(v) == 0)
		return kw_loc_fail(c, a, "a non-empty array of schemas");
	l->v = calloc(json_array_size(v), sizeof(*l->v));
	if (!l->v)
		return oom(c);
	for (size_t i = 0; i < json_array_size(v); i++) {
		if (!(l->v[i] = sub_member(c, json_array_get(v, i), a, NULL, 0, i)))
			return -1;
		l->n++;
	}
	return 0;
}

static int type_bit(const json_t *v)
{
	for (size_t i = 0; json_is_string(v) && i < sizeof(type_names) / sizeof(type_names[0]); i++)
		if (strcmp(json_string_value(v), type_names[i]) == 0)
			return 1 << i;
	return 0;
}

static int kw_type(struct cctx *c, struct node *n, json_t *v, const struct at *a)
{
	const char *what = "a type name (null, boolean, object, array, number, string, integer) "
			   "or an array of them";
	if (json_is_array(v)) {
		if (json_array_size(v) == 0)
			return kw_loc_fail(c, a, what);
		for (size_t i = 0; i < json_array_size(v); i++) {
			int bit = type_bit(json_array_get(v, i));
			if (!bit)
				return kw_loc_fail(c, a, what);
			n->types |= (unsigned)bit;
		}
	} else {
		int bit = type_bit(v);
		if (!bit)
			return kw_loc_fail(c, a, what);
		n->types = (unsigned)bit;
	}
	n->type_val = v;
	n->has |= H_TYPE;
	return 0;
}

static int kw_enum(struct cctx *c, struct node *n, json_t *v, const struct at *a)
{
	if (!json_is_array(v))
		return kw_loc_fail(c, a, "an array");
	n->enum_vals = v;
	n->has |= H_ENUM;
	return 0;
}

static int kw_const(struct cctx *c, struct node *n, json_t *v, const struct at *a)
{
	(void)c;
	(void)a;
	n->const_val = v;
	n->has |= H_CONST;
	return 0;
}

static int kw_number(struct cctx *c, struct node *n, json_t *v, const struct at *a)
{
	if (!json_is_number(v))
		return kw_loc_fail(c, a, "a number");
	const char *k = a->kw;
	if (strcmp(k, "minimum") == 0)
		n->minimum = v;
	else if (strcmp(k, "maximum") == 0)
		n->maximum = v;
	else if (strcmp(k, "exclusiveMinimum") == 0)
		n->ex_minimum = v;
	else if (strcmp(k, "exclusiveMaximum") == 0)
		n->ex_maximum = v;
	else if (json_number_value(v) > 0)
		n->multiple_of = v;
	else
		return kw_loc_fail(c, a, "a number greater than 0");
	n->has |= H_NUM;
	return 0;
}

static int kw_count(struct cctx *c, struct node *n, json_t *v, const struct at *a)
{
	static const struct {
		const char *kw;
		size_t off;
		unsigned has;
	} fields[] = {
		{"minLength", offsetof(struct node, min_length), H_STR},
		{"maxLength", offsetof(struct node, max_length), H_STR},
		{"minItems", offsetof(struct node, min_items), H_ARR},
		{"maxItems", offsetof(struct node, max_items), H_ARR},
		{"minProperties", offsetof(struct node, min_props), H_OBJ},
		{"maxProperties", offsetof(struct node, max_props), H_OBJ},
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (strcmp(a->kw, fields[i].kw) != 0)
			continue;
		size_t *field = (size_t *)(void *)((char *)n + fields[i].off);
		n->has |= fields[i].has;
		return get_count(c, v, a, field);
	}
	return cfail(c, "internal error: no field for keyword '%s'", a->kw);
}

static int kw_pattern(struct cctx *c, struct node *n, json_t *v, const struct at *a)
{
	if (!json_is_string(v))
		return kw_loc_fail(c, a, "a string (a regex)");
	n->has |= H_STR;
	return compile_regex(c, &n->pattern, v, a, "keyword");
}

static int kw_format(struct cctx *c, struct node *n, json_t *v, const struct at *a)
{
	if (!json_is_string(v))
		return kw_loc_fail(c, a, "a string");
	n->format = ev_schema_format_find(json_string_value(v));
	if (n->format != EV_FMT_NONE) {
		n->has |= H_STR;
		return 0;
	}
	if (c->flags & EV_SCHEMA_FORMATS_AS_ANNOTATIONS)
		return 0;
	char name[VALUE_MAX];
	fmt_str(name, sizeof(name), json_string_value(v), json_string_length(v));
	return cfail(
		c,
		"unsupported format %s at '%s': the formats asserted are date-time, date, time, "
		"email, uuid, ipv4, ipv6, hostname, uri, uri-reference, iri, iri-reference, "
		"json-pointer, relative-json-pointer and regex",
		name, a->loc);
}

static int kw_items(struct cctx *c, struct node *n, json_t *v, const struct at *a)
{
	n->has |= H_ARR;
	if (!json_is_array(v))
		return (n->items = sub_kw(c, v, a)) ? 0 : -1;
	n->items_is_list = 1;
	size_t k = json_array_size(v);
	n->items_list.v = calloc(k ? k : 1, sizeof(*n->items_list.v));
	if (!n->items_list.v)
		return oom(c);
	for (size_t i = 0; i < k; i++) {
		if (!(n->items_list.v[i] = sub_member(c, json_array_get(v, i), a, NULL, 0, i)))
			return -1;
		n->items_list.n++;
	}
	return 0;
}

static int kw_unique_items(struct cctx *c, struct node *n, json_t *v, const struct at *a)
{
	if (!json_is_boolean(v))
		return kw_loc_fail(c, a, "a boolean");
	n->unique_items = json_is_true(v);
	n->has |= H_ARR;
	return 0;
}

/* One subschema keyword: the offset of its field and the family it belongs to. */
static int kw_schema_field(struct cctx *c, struct node *n, json_t *v, const struct at *a)
{
	static const struct {
		const char *kw;
		size_t off;
		unsigned has;
	} fields[] = {
		{"additionalItems", offsetof(struct node, additional_items), H_ARR},
		{"contains", offsetof(struct node, contains), H_ARR},
		{"additionalProperties", offsetof(struct node, additional_props), H_OBJ},
		{"propertyNames", offsetof(struct node, property_names), H_OBJ},
		{"not", offsetof(struct node, not_schema), H_COMB},
		{"if", offsetof(struct node, if_schema), H_COMB},
		{"then", offsetof(struct node, then_schema), H_COMB},
		{"else", offsetof(struct node, else_schema), H_COMB},
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (strcmp(a->kw, fields[i].kw) != 0)
			continue;
		struct node **field = (struct node **)(void *)((char *)n + fields[i].off);
		n->has |= fields[i].has;
		return (*field = sub_kw(c, v, a)) ? 0 : -1;
	}
	return cfail(c, "internal error: no field for keyword '%s'", a->kw);
}

static int kw_list(struct cctx *c, struct node *n, json_t *v, const struct at *a)
{
	struct node_list *l = strcmp(a->kw, "allOf") == 0   ? &n->all_of
			      : strcmp(a->kw, "anyOf") == 0 ? &n->any_of
							    : &n->one_of;
	n->has |= H_COMB;
	return get_list(c, v, a, l);
}

static int prop_cmp(const void *x, const void *y)
{
	const struct prop *a = *(const struct prop *const *)x, *b = *(const struct prop *const *)y;
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return memcmp(a->name, b->name, a->len);
}

static int kw_properties(struct cctx *c, struct node *n, json_t *v, const struct at *a)
{
	if (!json_is_object(v))
		return kw_loc_fail(c, a, "an object of schemas");
	n->props = calloc(json_object_size(v) + 1, sizeof(*n->props));
	n->sorted = calloc(json_object_size(v) + 1, sizeof(*n->sorted));
	if (!n->props || !n->sorted)
		return oom(c);
	const char *key;
	size_t klen;
	json_t *m;
	json_object_keylen_foreach(v, key, klen, m)
	{
		struct prop *p = &n->props[n->n_props];
		p->name = key;
		p->len = klen;
		if (!(p->schema = sub_member(c, m, a, key, klen, 0)))
			return -1;
		n->sorted[n->n_props] = p;
		n->n_props++;
	}
	qsort(n->sorted, n->n_props, sizeof(*n->sorted), prop_cmp);
	n->has |= H_OBJ;
	return 0;
}

static int kw_pattern_properties(struct cctx *c, struct node *n, json_t *v, const struct at *a)
{
	if (!json_is_object(v))
		return kw_loc_fail(c, a, "an object of schemas");
	n->pattern_props = calloc(json_object_size(v) + 1, sizeof(*n->pattern_props));
	if (!n->pattern_props)
		return oom(c);
	const char *key;
	size_t klen;
	json_t *m;
	json_object_keylen_foreach(v, key, klen, m)
	{
		struct pattern_prop *p = &n->pattern_props[n->n_pattern_props];
		json_t *src = json_stringn_nocheck(key, klen);
		if (!src)
			return oom(c);
		int rc = compile_regex(c, &p->re, src, a, "property name of");
		json_decref(src);
		p->re.src = key;
		if (rc < 0)
			return -1;
		n->n_pattern_props++;
		if (!(p->schema = sub_member(c, m, a, key, klen, 0)))
			return -1;
	}
	n->has |= H_OBJ;
	return 0;
}

static int kw_required(struct cctx *c, struct node *n, json_t *v, const struct at *a)
{
	n->has |= H_OBJ;
	return get_names(c, v, a, &n->required, &n->n_required);
}

static int kw_dependencies(struct cctx *c, struct node *n, json_t *v, const struct at *a)
{
	if (!json_is_object(v))
		return kw_loc_fail(c, a, "an object of schemas or arrays of property names");
	n->deps = calloc(json_object_size(v) + 1, sizeof(*n->deps));
	if (!n->deps)
		return oom(c);
	const char *key;
	size_t klen;
	json_t *m;
	json_object_keylen_foreach(v, key, klen, m)
	{
		struct dep *d = &n->deps[n->n_deps++];
		d->key.s = key;
		d->key.len = klen;
		if (json_is_array(m)) {
			if (get_names(c, m, a, &d->required, &d->n_required) < 0)
				return -1;
		} else if (!(d->schema = sub_member(c, m, a, key, klen, 0))) {
			return -1;
		}
	}
	n->has |= H_OBJ;
	return 0;
}

static int kw_definitions(struct cctx *c, struct node *n, json_t *v, const struct at *a)
{
	(void)n;
	if (!json_is_object(v))
		return kw_loc_fail(c, a, "an object of schemas");
	const char *key;
	size_t klen;
	json_t *m;
	json_object_keylen_foreach(v, key, klen, m)
	{
		if (!sub_member(c, m, a, key, klen, 0))
			return -1;
	}
	return 0;
}

static int is_meta_uri(const char *u)
{
	size_t k = strncmp(u, "https:", 6) == 0 ? 6 : strncmp(u, "http:", 5) == 0 ? 5 : 0;
	return k && strcmp(u + k, meta_uri + 5) == 0;
}

static int kw_dollar_schema(struct cctx *c, struct node *n, json_t *v, const struct at *a)
{
	(void)n;
	if (!json_is_string(v))
		return kw_loc_fail(c, a, "a string");
	char *u = strdup(json_string_value(v));
	if (!u)
		return oom(c);
	u[strcspn(u, "#")] = '\0';
	int ok = is_meta_uri(u);
	free(u);
	if (!ok)
		return cfail(c, "unsupported $schema '%s' at '%s': only draft-07 is supported",
			     json_string_value(v), a->loc);
	return 0;
}

static int kw_string(struct cctx *c, struct node *n, json_t *v, const struct at *a)
{
	(void)n;
	return json_is_string(v) ? 0 : kw_loc_fail(c, a, "a string");
}

static int kw_boolean(struct cctx *c, struct node *n, json_t *v, const struct at *a)
{
	(void)n;
	return json_is_boolean(v) ? 0 : kw_loc_fail(c, a, "a boolean");
}

static int kw_any(struct cctx *c, struct node *n, json_t *v, const struct at *a)
{
	(void)c;
	(void)n;
	(void)v;
	(void)a;
	return 0;
}

typedef int (*kw_fn)(struct cctx *c, struct node *n, json_t *v, const struct at *a);

static const struct keyword {
	const char *name;
	kw_fn fn;
} keywords[] = {
	{"$comment", kw_string},
	{"$id", kw_string},
	{"$ref", kw_string},
	{"$schema", kw_dollar_schema},
	{"additionalItems", kw_schema_field},
	{"additionalProperties", kw_schema_field},
	{"allOf", kw_list},
	{"anyOf", kw_list},
	{"const", kw_const},
	{"contains", kw_schema_field},
	{"contentEncoding", kw_string},
	{"contentMediaType", kw_string},
	{"default", kw_any},
	{"definitions", kw_definitions},
	{"dependencies", kw_dependencies},
	{"description", kw_string},
	{"else", kw_schema_field},
	{"enum", kw_enum},
	{"examples", kw_any},
	{"exclusiveMaximum", kw_number},
	{"exclusiveMinimum", kw_number},
	{"format", kw_format},
	{"if", kw_schema_field},
	{"items", kw_items},
	{"maxItems", kw_count},
	{"maxLength", kw_count},
	{"maxProperties", kw_count},
	{"maximum", kw_number},
	{"minItems", kw_count},
	{"minLength", kw_count},
	{"minProperties", kw_count},
	{"minimum", kw_number},
	{"multipleOf", kw_number},
	{"not", kw_schema_field},
	{"oneOf", kw_list},
	{"pattern", kw_pattern},
	{"patternProperties", kw_pattern_properties},
	{"properties", kw_properties},
	{"propertyNames", kw_schema_field},
	{"readOnly", kw_boolean},
	{"required", kw_required},
	{"then", kw_schema_field},
	{"title", kw_string},
	{"type", kw_type},
	{"uniqueItems", kw_unique_items},
	{"writeOnly", kw_boolean},
};

static const struct keyword *keyword_find(const char *key, size_t klen)
{
	for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
		if (strlen(keywords[i].name) == klen && memcmp(keywords[i].name, key, klen) == 0)
			return &keywords[i];
	return NULL;
}

static int add_unknown(struct cctx *c, const char *key, size_t klen, const char *loc)
{
	struct unknown_kw *u = grow(c->unknown, &c->cap_unknown, c->n_unknown, sizeof(*u));
	if (!u)
		return oom(c);
	c->unknown = u;
	u = &c->unknown[c->n_unknown];
	u->name = strndup(key, klen);
	u->loc = strdup(loc);
	u->kwloc = loc_join(loc, key, klen);
	c->n_unknown++;
	return u->name && u->loc && u->kwloc ? 0 : oom(c);
}

static int add_id(struct cctx *c, const char *uri, json_t *node, const char *loc,
		  const char *parent_base)
{
	struct id_entry *e = grow(c->ids, &c->cap_ids, c->n_ids, sizeof(*e));
	if (!e)
		return oom(c);
	c->ids = e;
	e = &c->ids[c->n_ids];
	e->uri = strdup(uri);
	e->node = node;
	e->loc = strdup(loc);
	e->parent_base = strdup(parent_base);
	if (!e->uri || !e->loc || !e->parent_base) {
		free(e->uri);
		free(e->loc);
		free(e->parent_base);
		return oom(c);
	}
	c->n_ids++;
	size_t n = strlen(e->uri);
	if (n && e->uri[n - 1] == '#')
		e->uri[n - 1] = '\0';
	return 0;
}

static const struct id_entry *id_find(const struct cctx *c, const char *uri)
{
	for (size_t i = 0; i < c->n_ids; i++)
		if (strcmp(c->ids[i].uri, uri) == 0)
			return &c->ids[i];
	return NULL;
}

static int is_kw(const char *key, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(key, *set) == 0)
			return 1;
	return 0;
}

/* Record the $id of every schema in the document, before any $ref is resolved. */
static int collect_ids(struct cctx *c, json_t *js, const char *loc, const char *parent_base)
{
	static const char *const maps[] = {"properties", "patternProperties", "definitions",
					   "dependencies", NULL};
	static const char *const lists[] = {"items", "allOf", "anyOf", "oneOf", NULL};
	static const char *const single[] = {"items",
					     "additionalItems",
					     "additionalProperties",
					     "contains",
					     "propertyNames",
					     "not",
					     "if",
					     "then",
					     "else",
					     NULL};
	if (!json_is_object(js))
		return 0;
	const json_t *id = json_object_get(js, "$id");
	char *own = NULL;
	const char *base = parent_base;
	if (!json_object_get(js, "$ref") && json_is_string(id)) {
		if (!(own = uri_resolve(parent_base, json_string_value(id))))
			return oom(c);
		base = own;
		if (add_id(c, own, js, loc, parent_base) < 0)
			goto fail;
	}
	const char *key;
	json_t *v;
	json_object_foreach(js, key, v)
	{
		char *kl = loc_join(loc, key, strlen(key));
		int rc = kl ? 0 : oom(c);
		if (rc == 0 && is_kw(key, maps) && json_is_object(v)) {
			const char *k2;
			json_t *m;
			json_object_foreach(v, k2, m)
			{
				char *l = loc_join(kl, k2, strlen(k2));
				rc = l ? collect_ids(c, m, l, base) : oom(c);
				free(l);
				if (rc < 0)
					break;
			}
		} else if (rc == 0 && is_kw(key, lists) && json_is_array(v)) {
			for (size_t i = 0; i < json_array_size(v) && rc == 0; i++) {
				char *l = loc_index(kl, i);
				rc = l ? collect_ids(c, json_array_get(v, i), l, base) : oom(c);
				free(l);
			}
		} else if (rc == 0 && is_kw(key, single)) {
			rc = collect_ids(c, v, kl, base);
		}
		free(kl);
		if (rc < 0)
			goto fail;
	}
	free(own);
	return 0;
fail:
	free(own);
	return -1;
}

/* Register a document's root (as its $id, or as uri when it has none) and its $ids. */
static int add_document(struct cctx *c, json_t *doc, const char *uri, const char *loc)
{
	const json_t *id = json_object_get(doc, "$id");
	if ((json_object_get(doc, "$ref") || !json_is_string(id)) &&
	    add_id(c, uri, doc, loc, uri) < 0)
		return -1;
	return collect_ids(c, doc, loc, uri);
}

static int pct_decode(char *s)
{
	char *out = s;
	for (; *s; s++) {
		if (*s != '%') {
			*out++ = *s;
			continue;
		}
		char hex[3] = {s[1], s[1] ? s[2] : '\0', '\0'};
		char *end;
		long v = strtol(hex, &end, 16);
		if (!hex[0] || !hex[1] || *end || !isxdigit((unsigned char)hex[0]) || v == 0)
			return -1;
		*out++ = (char)v;
		s += 2;
	}
	*out = '\0';
	return 0;
}

/* Walk the JSON pointer ptr (already %-decoded) from *cur; updates *cur, *loc and *pbase. */
static int walk_pointer(struct cctx *c, const char *ptr, json_t **cur, ev_buf *loc, char **pbase)
{
	while (*ptr == '/') {
		ptr++;
		size_t tlen = strcspn(ptr, "/");
		char *tok = strndup(ptr, tlen);
		if (!tok)
			return oom(c);
		size_t n = 0;
		for (size_t i = 0; i < tlen; i++) {
			if (ptr[i] == '~' && (ptr[i + 1] == '0' || ptr[i + 1] == '1')) {
				tok[n++] = ptr[i + 1] == '0' ? '~' : '/';
				i++;
			} else if (ptr[i] == '~') {
				free(tok);
				return 1;
			} else {
				tok[n++] = ptr[i];
			}
		}
		const json_t *id = json_object_get(*cur, "$id");
		if (json_is_object(*cur) && json_is_string(id) && !json_object_get(*cur, "$ref")) {
			char *b = uri_resolve(*pbase, json_string_value(id));
			if (!b) {
				free(tok);
				return oom(c);
			}
			free(*pbase);
			*pbase = b;
		}
		json_t *next = NULL;
		if (json_is_object(*cur)) {
			next = json_object_getn(*cur, tok, n);
		} else if (json_is_array(*cur) && n > 0 && n < 20 &&
			   strspn(tok, "0123456789") == n && (tok[0] != '0' || n == 1)) {
			tok[n] = '\0';
			next = json_array_get(*cur, strtoull(tok, NULL, 10));
		}
		free(tok);
		if (!next)
			return 1;
		*cur = next;
		ev_buf_putc(loc, '/');
		ev_buf_append(loc, ptr, tlen);
		ptr += tlen;
	}
	return *ptr ? 1 : 0;
}

static int load_meta(struct cctx *c)
{
	if (c->s->meta)
		return 0;
	json_error_t jerr;
	c->s->meta = json_loads(meta_schema, 0, &jerr);
	if (!c->s->meta)
		return cfail(c, "built-in draft-07 meta-schema: %s", jerr.text);
	char loc[sizeof(meta_uri) + 1];
	snprintf(loc, sizeof(loc), "%s#", meta_uri);
	return add_document(c, c->s->meta, meta_uri, loc);
}

static struct node *resolve_ref(struct cctx *c, const char *ref, const char *loc, const char *base)
{
	char *u = uri_resolve(base, ref);
	if (!u) {
		oom(c);
		return NULL;
	}
	char *hash = strchr(u, '#');
	const char *frag = "";
	const struct id_entry *e = NULL;
	struct node *n = NULL;
	if (hash && hash[1] && hash[1] != '/') { /* a "#name" set by an $id */
		e = id_find(c, u);
	} else {
		if (hash) {
			*hash = '\0';
			frag = hash + 1;
		}
		if (strncmp(u, "https:", 6) == 0 && is_meta_uri(u))
			memmove(u + 4, u + 5, strlen(u + 5) + 1);
		e = id_find(c, u);
		if (!e && is_meta_uri(u)) {
			if (load_meta(c) < 0)
				goto out;
			e = id_find(c, u);
		}
	}
	if (!e) {
		if (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0)
			cfail(c, "remote $ref '%s' at '%s' is not supported (no network access)",
			      ref, loc);
		else
			cfail(c, "$ref '%s' at '%s' does not resolve within the schema", ref, loc);
		goto out;
	}
	char *ptr = strdup(frag), *pbase = strdup(e->parent_base);
	ev_buf tloc = EV_BUF_INIT;
	json_t *cur = e->node;
	int rc;
	if (!ptr || !pbase || ev_buf_puts(&tloc, e->loc) < 0)
		rc = oom(c);
	else if (pct_decode(ptr) < 0)
		rc = 1;
	else
		rc = walk_pointer(c, ptr, &cur, &tloc, &pbase);
	if (rc > 0)
		cfail(c, "$ref '%s' at '%s' does not resolve within the schema", ref, loc);
	if (rc == 0 && !tloc.data)
		rc = oom(c);
	if (rc == 0 && (n = compile(c, cur, tloc.data, pbase))) {
		char **t = grow(c->targets, &c->cap_targets, c->n_targets, sizeof(*t));
		if (t) {
			c->targets = t;
			t[c->n_targets++] = tloc.data;
			tloc.data = NULL;
		} else {
			oom(c);
			n = NULL;
		}
	}
	ev_buf_free(&tloc);
	free(ptr);
	free(pbase);
out:
	free(u);
	return n;
}

static struct node *compile(struct cctx *c, json_t *js, const char *loc, const char *base)
{
	struct node *n = memo_get(c, js);
	if (n)
		return n;
	if (!(n = node_new(c, js, loc)))
		return NULL;
	if (json_is_true(js)) {
		n->kind = N_TRUE;
		return n;
	}
	if (json_is_false(js)) {
		n->kind = N_FALSE;
		return n;
	}
	if (!json_is_object(js)) {
		cfail(c, "schema at '%s' must be an object or a boolean", loc);
		return NULL;
	}
	const json_t *ref = json_object_get(js, "$ref");
	const json_t *id = json_object_get(js, "$id");
	char *own = NULL;
	if (ref) {
		n->kind = N_REF;
	} else if (json_is_string(id)) {
		if (!(own = uri_resolve(base, json_string_value(id)))) {
			oom(c);
			return NULL;
		}
		base = own;
	}
	struct at a = {loc, base, NULL};
	const char *key;
	size_t klen;
	json_t *v;
	int rc = 0;
	json_object_keylen_foreach(js, key, klen, v)
	{
		const struct keyword *kw = keyword_find(key, klen);
		if (!kw) {
			rc = add_unknown(c, key, klen, loc);
		} else {
			a.kw = kw->name;
			/* beside a $ref: definitions (possible targets), string annotations */
			if (!ref || kw->fn == kw_definitions || kw->fn == kw_string)
				rc = kw->fn(c, n, v, &a);
		}
		if (rc < 0)
			break;
	}
	free(own);
	if (rc < 0)
		return NULL;
	if (ref && !(n->ref = resolve_ref(c, json_string_value(ref), loc, base)))
		return NULL;
	return n;
}

/* A cycle of schemas applied to the same value ($ref, allOf, not, if, dependencies...). */
static const struct node *find_cycle(struct node *n)
{
	if (n->mark == 2)
		return NULL;
	if (n->mark == 1)
		return n;
	n->mark = 1;
	struct node *single[] = {n->ref, n->not_schema, n->if_schema, n->then_schema,
				 n->else_schema};
	const struct node_list *lists[] = {&n->all_of, &n->any_of, &n->one_of};
	const struct node *r = NULL;
	for (size_t i = 0; !r && i < sizeof(single) / sizeof(single[0]); i++)
		if (single[i])
			r = find_cycle(single[i]);
	for (size_t i = 0; !r && i < sizeof(lists) / sizeof(lists[0]); i++)
		for (size_t j = 0; !r && j < lists[i]->n; j++)
			r = find_cycle(lists[i]->v[j]);
	for (size_t i = 0; !r && i < n->n_deps; i++)
		if (n->deps[i].schema)
			r = find_cycle(n->deps[i].schema);
	n->mark = 2;
	return r;
}

static int check_compiled(struct cctx *c)
{
	for (size_t i = 0; i < c->n_unknown; i++) {
		const struct unknown_kw *u = &c->unknown[i];
		size_t k = strlen(u->kwloc);
		int used = 0;
		for (size_t j = 0; !used && j < c->n_targets; j++)
			used = strncmp(c->targets[j], u->kwloc, k) == 0 &&
			       (c->targets[j][k] == '\0' || c->targets[j][k] == '/');
		if (!used)
			return cfail(c, "unsupported keyword '%s' at '%s'", u->name, u->loc);
	}
	for (size_t i = 0; i < c->s->n_nodes; i++) {
		const struct node *n = find_cycle(c->s->nodes[i]);
		if (n)
			return cfail(c,
				     "$ref cycle at '%s': the schema applies itself to the same "
				     "value without end",
				     n->loc);
	}
	return 0;
}

static void cctx_free(struct cctx *c)
{
	for (size_t i = 0; i < c->n_ids; i++) {
		free(c->ids[i].uri);
		free(c->ids[i].loc);
		free(c->ids[i].parent_base);
	}
	for (size_t i = 0; i < c->n_unknown; i++) {
		free(c->unknown[i].name);
		free(c->unknown[i].loc);
		free(c->unknown[i].kwloc);
	}
	for (size_t i = 0; i < c->n_targets; i++)
		free(c->targets[i]);
	free(c->ids);
	free(c->unknown);
	free(c->targets);
	free(c->memo_keys);
	free(c->memo_vals);
}

ev_schema *ev_schema_compile(json_t *doc, char *err, size_t errlen)
{
	return ev_schema_compile_flags(doc, 0, err, errlen);
}

ev_schema *ev_schema_compile_flags(json_t *doc, int flags, char *err, size_t errlen)
{
	struct cctx c = {.flags = flags, .err = err, .errlen = errlen};
	if (err && errlen)
		err[0] = '\0';
	if (!doc) {
		cfail(&c, "no schema document");
		return NULL;
	}
	if (!(c.s = calloc(1, sizeof(*c.s))) || !(c.s->doc = json_deep_copy(doc)) ||
	    !(c.s->md = pcre2_match_data_create(1, NULL))) {
		oom(&c);
		ev_schema_free(c.s);
		return NULL;
	}
	if (add_document(&c, c.s->doc, "", "#") == 0)
		c.s->root = compile(&c, c.s->doc, "#", "");
	if (c.s->root)
		check_compiled(&c);
	cctx_free(&c);
	if (c.failed) {
		ev_schema_free(c.s);
		return NULL;
	}
	return c.s;
}

ev_schema *ev_schema_load_file(const char *path, char *err, size_t errlen)
{
	return ev_schema_load_file_flags(path, 0, err, errlen);
}

ev_schema *ev_schema_load_file_flags(const char *path, int flags, char *err, size_t errlen)
{
	json_error_t jerr;
	errno = 0;
	json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!doc) {
		if (json_error_code(&jerr) == json_error_cannot_open_file)
			snprintf(err, errlen, "cannot open '%s': %s", path,
				 errno ? strerror(errno) : jerr.text);
		else
			snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column,
				 jerr.text);
		return NULL;
	}
	ev_schema *s = ev_schema_compile_flags(doc, flags, err, errlen);
	json_decref(doc);
	return s;
}

void ev_schema_free(ev_schema *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_nodes; i++)
		node_free(s->nodes[i]);
	free(s->nodes);
	pcre2_match_data_free(s->md);
	json_decref(s->doc);
	json_decref(s->meta);
	free(s);
}

/* ---- validating ---- */

/* The instance path, as a chain up the C stack: rendered only when an error is recorded. */
struct seg {
	const struct seg *up;
	const char *key; /* NULL: an array index */
	size_t len;      /* key length, or the index */
};

struct vctx {
	const ev_schema *s;
	ev_schema_error *errs;
	size_t max;  /* errors to record */
	size_t stop; /* stop after this many violations */
	size_t n;    /* violations found */
};

static int done(const struct vctx *c)
{
	return c->n >= c->stop;
}

static void path_put(struct vw *w, const struct seg *at)
{
	if (!at)
		return;
	path_put(w, at->up);
	vw_put(w, "/", 1);
	if (!at->key) {
		char b[24];
		snprintf(b, sizeof(b), "%zu", at->len);
		vw_puts(w, b);
		return;
	}
	for (size_t i = 0; i < at->len; i++) {
		if (at->key[i] == '~')
			vw_put(w, "~0", 2);
		else if (at->key[i] == '/')
			vw_put(w, "~1", 2);
		else
			vw_put(w, at->key + i, 1);
	}
}

/* Count a violation; returns the error to fill in when it is to be recorded, else NULL. */
static ev_schema_error *violation(struct vctx *c, const struct seg *at, const char *kw)
{
	ev_schema_error *e = c->errs && c->n < c->max ? &c->errs[c->n] : NULL;
	c->n++;
	if (!e)
		return NULL;
	struct vw w = {e->path, 0, sizeof(e->path) - 4, 0};
	path_put(&w, at);
	if (w.over) {
		w.over = 0;
		w.cap = sizeof(e->path) - 1;
		vw_puts(&w, "...");
	}
	e->path[w.len] = '\0';
	snprintf(e->keyword, sizeof(e->keyword), "%s", kw);
	e->message[0] = '\0';
	return e;
}

/* Write the message: %v a json_t value, %l a json_t list (longer), %k a (char *, size_t) name,
 * %z a size_t, %s a C string. Kept out of line so that validation frames stay small. */
__attribute__((cold, noinline)) static void say(ev_schema_error *e, const char *fmt, ...)
{
	struct vw w = {e->message, 0, sizeof(e->message) - 1, 0};
	char b[LIST_MAX];
	va_list ap;
	va_start(ap, fmt);
	for (const char *f = fmt; *f; f++) {
		if (*f != '%' || !f[1]) {
			vw_put(&w, f, 1);
			continue;
		}
		switch (*++f) {
		case 'v': fmt_value(b, VALUE_MAX, va_arg(ap, const json_t *)); break;
		case 'l': fmt_value(b, LIST_MAX, va_arg(ap, const json_t *)); break;
		case 'k': {
			const char *k = va_arg(ap, const char *);
			fmt_str(b, VALUE_MAX, k, va_arg(ap, size_t));
			break;
		}
		case 'z': snprintf(b, sizeof(b), "%zu", va_arg(ap, size_t)); break;
		case 's': snprintf(b, sizeof(b), "%s", va_arg(ap, const char *)); break;
		default: b[0] = *f, b[1] = '\0';
		}
		vw_puts(&w, b);
	}
	va_end(ap);
	e->message[w.len] = '\0';
}

static void validate(struct vctx *c, const struct node *n, const json_t *x, const struct seg *at);

static int valid_quiet(const ev_schema *s, const struct node *n, const json_t *x)
{
	struct vctx q = {s, NULL, 0, 1, 0};
	validate(&q, n, x, NULL);
	return q.n == 0;
}

/* Whether a value of jansson type t (a real: of value d) is of one of the types. */
static int type_ok(unsigned types, json_type t, double d)
{
	switch (t) {
	case JSON_OBJECT: return (types & TY_OBJECT) != 0;
	case JSON_ARRAY: return (types & TY_ARRAY) != 0;
	case JSON_STRING: return (types & TY_STRING) != 0;
	case JSON_INTEGER: return (types & (TY_INTEGER | TY_NUMBER)) != 0;
	case JSON_REAL: return (types & TY_NUMBER) || ((types & TY_INTEGER) && is_integral(d));
	case JSON_TRUE:
	case JSON_FALSE: return (types & TY_BOOLEAN) != 0;
	default: return (types & TY_NULL) != 0;
	}
}

__attribute__((cold, noinline)) static void say_type(ev_schema_error *e, const json_t *types,
						     const json_t *x)
{
	char list[128];
	struct vw w = {list, 0, sizeof(list) - 1, 0};
	size_t k = json_is_array(types) ? json_array_size(types) : 1;
	for (size_t i = 0; i < k; i++) {
		if (i)
			vw_puts(&w, i + 1 == k ? " or " : ", ");
		vw_value(&w, json_is_array(types) ? json_array_get(types, i) : types);
	}
	list[w.len] = '\0';
	say(e, "%v is not of type %s", x, list);
}

static const struct limit {
	size_t off;
	const char *kw;
	int bad, bad2; /* comparison results (value to limit) that fail */
	const char *text;
} limits[] = {
	{offsetof(struct node, minimum), "minimum", -1, -1, "less than the minimum"},
	{offsetof(struct node, maximum), "maximum", 1, 1, "greater than the maximum"},
	{offsetof(struct node, ex_minimum), "exclusiveMinimum", -1, 0,
	 "less than or equal to the exclusive minimum"},
	{offsetof(struct node, ex_maximum), "exclusiveMaximum", 1, 0,
	 "greater than or equal to the exclusive maximum"},
};

static const json_t *limit_of(const struct node *n, const struct limit *l)
{
	return *(const json_t *const *)(const void *)((const char *)n + l->off);
}

static int limit_ok(const struct node *n, const struct limit *l, struct num x)
{
	const json_t *lim = limit_of(n, l);
	int r = lim ? num_cmp(x, num_of(lim)) : 2;
	return r != l->bad && r != l->bad2;
}

static void validate_number(struct vctx *c, const struct node *n, const json_t *x,
			    const struct seg *at)
{
	struct num v = num_of(x);
	for (const struct limit *l = limits; l < limits + sizeof(limits) / sizeof(limits[0]); l++) {
		if (limit_ok(n, l, v))
			continue;
		ev_schema_error *e = violation(c, at, l->kw);
		if (e)
			say(e, "%v is %s %v", x, l->text, limit_of(n, l));
		if (done(c))
			return;
	}
	if (n->multiple_of && !multiple_ok(v, num_of(n->multiple_of))) {
		ev_schema_error *e = violation(c, at, "multipleOf");
		if (e)
			say(e, "%v is not a multiple of %v", x, n->multiple_of);
	}
}

static size_t utf8_count(const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += ((unsigned char)s[i] & 0xc0) != 0x80;
	return k;
}

static int regex_match(const ev_schema *s, const struct regex *re, const char *str, size_t len)
{
	return pcre2_match(re->code, (PCRE2_SPTR)str, len, 0, 0, s->md, NULL) >= 0;
}

static void validate_string(struct vctx *c, const struct node *n, const json_t *x,
			    const struct seg *at)
{
	const char *str = json_string_value(x);
	size_t len = json_string_length(x);
	if (n->min_length > 0 || n->max_length != SIZE_MAX) {
		size_t k = utf8_count(str, len);
		if (k < n->min_length || k > n->max_length) {
			int low = k < n->min_length;
			ev_schema_error *e = violation(c, at, low ? "minLength" : "maxLength");
			if (e)
				say(e, "%v is %s than the %s length %z", x,
				    low ? "shorter" : "longer", low ? "minimum" : "maximum",
				    low ? n->min_length : n->max_length);
			if (done(c))
				return;
		}
	}
	if (n->pattern.code && !regex_match(c->s, &n->pattern, str, len)) {
		ev_schema_error *e = violation(c, at, "pattern");
		if (e)
			say(e, "%v does not match %k", x, n->pattern.src, strlen(n->pattern.src));
		if (done(c))
			return;
	}
	if (n->format && !ev_schema_format_ok(n->format, str, len)) {
		ev_schema_error *e = violation(c, at, "format");
		if (e)
			say(e, "%v is not a valid %s", x, ev_schema_format_name(n->format));
	}
}

struct hashed {
	uint64_t h;
	size_t i;
};

static int hashed_cmp(const void *x, const void *y)
{
	const struct hashed *a = x, *b = y;
	if (a->h != b->h)
		return a->h < b->h ? -1 : 1;
	return a->i < b->i ? -1 : a->i > b->i;
}

/* Find the first item equal to an earlier one: 1 with both indexes (*di < *dj), else 0. */
static int find_duplicate(const json_t *x, size_t *di, size_t *dj)
{
	size_t k = json_array_size(x);
	struct hashed *hs = k > 32 ? malloc(k * sizeof(*hs)) : NULL;
	if (!hs) { /* short (or out of memory): compare every pair */
		for (size_t j = 1; j < k; j++)
			for (size_t i = 0; i < j; i++)
				if (json_eq(json_array_get(x, i), json_array_get(x, j))) {
					*di = i;
					*dj = j;
					return 1;
				}
		return 0;
	}
	for (size_t i = 0; i < k; i++) {
		hs[i].h = json_hash(json_array_get(x, i));
		hs[i].i = i;
	}
	qsort(hs, k, sizeof(*hs), hashed_cmp);
	int found = 0;
	for (size_t a = 0; a < k; a++) {
		for (size_t b = a + 1; b < k && hs[b].h == hs[a].h; b++) {
			if (found && hs[b].i > *dj)
				continue;
			if (json_eq(json_array_get(x, hs[a].i), json_array_get(x, hs[b].i)) &&
			    (!found || hs[b].i < *dj || hs[a].i < *di)) {
				*di = hs[a].i;
				*dj = hs[b].i;
				found = 1;
			}
		}
	}
	free(hs);
	return found;
}

static void validate_array(struct vctx *c, const struct node *n, const json_t *x,
			   const struct seg *at)
{
	size_t k = json_array_size(x);
	if (k < n->min_items || k > n->max_items) {
		int low = k < n->min_items;
		size_t lim = low ? n->min_items : n->max_items;
		ev_schema_error *e = violation(c, at, low ? "minItems" : "maxItems");
		if (e)
			say(e, "%v has %s than %z item%s", x, low ? "fewer" : "more", lim,
			    lim == 1 ? "" : "s");
		if (done(c))
			return;
	}
	if (n->items_is_list) {
		size_t i = 0;
		for (; i < k && i < n->items_list.n; i++) {
			struct seg s = {at, NULL, i};
			validate(c, n->items_list.v[i], json_array_get(x, i), &s);
			if (done(c))
				return;
		}
		const struct node *add = n->additional_items;
		if (add && add->kind == N_FALSE && k > i) {
			ev_schema_error *e = violation(c, at, "additionalItems");
			if (e)
				say(e, "the array has %z items, more than the %z the schema allows",
				    k, n->items_list.n);
			if (done(c))
				return;
		} else if (add) {
			for (; i < k; i++) {
				struct seg s = {at, NULL, i};
				validate(c, add, json_array_get(x, i), &s);
				if (done(c))
					return;
			}
		}
	} else if (n->items) {
		for (size_t i = 0; i < k; i++) {
			struct seg s = {at, NULL, i};
			validate(c, n->items, json_array_get(x, i), &s);
			if (done(c))
				return;
		}
	}
	if (n->contains) {
		int found = 0;
		for (size_t i = 0; i < k && !found; i++)
			found = valid_quiet(c->s, n->contains, json_array_get(x, i));
		ev_schema_error *e = found ? NULL : violation(c, at, "contains");
		if (e)
			say(e, "%v has no item valid under the 'contains' schema", x);
		if (done(c))
			return;
	}
	size_t di, dj;
	if (n->unique_items && find_duplicate(x, &di, &dj)) {
		ev_schema_error *e = violation(c, at, "uniqueItems");
		if (e)
			say(e, "%v has non-unique items (%z and %z are equal)", x, di, dj);
	}
}

/* The schema of properties named key, or NULL. */
/* A binary search in the order of prop_cmp, inlined: it runs for every member of every record. */
static const struct prop *find_prop(const struct node *n, const char *key, size_t klen)
{
	size_t lo = 0, hi = n->n_props;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct prop *p = n->sorted[mid];
		int c = p->len != klen ? (p->len < klen ? -1 : 1) : memcmp(p->name, key, klen);
		if (c == 0)
			return p;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* "property name 'Foo' does not match '^[a-z]+$'": the first reason, against the name. */
__attribute__((cold, noinline)) static void
say_property_name(ev_schema_error *e, const ev_schema *s, const struct node *n, const json_t *name)
{
	ev_schema_error why;
	struct vctx q = {s, &why, 1, 1, 0};
	why.message[0] = '\0';
	validate(&q, n, name, NULL);
	say(e, "property name %s", why.message);
}

/* patternProperties, additionalProperties and propertyNames: one pass over the members. */
static void validate_members(struct vctx *c, const struct node *n, const json_t *x,
			     const struct seg *at)
{
	for (void *it = json_object_iter((json_t *)x); it;
	     it = json_object_iter_next((json_t *)x, it)) {
		const char *key = json_object_iter_key(it);
		size_t klen = json_object_iter_key_len(it);
		const json_t *m = json_object_iter_value(it);
		struct seg s = {at, key, klen};
		if (n->property_names) {
			json_t *name = json_stringn_nocheck(key, klen);
			if (name && !valid_quiet(c->s, n->property_names, name)) {
				ev_schema_error *e = violation(c, &s, "propertyNames");
				if (e)
					say_property_name(e, c->s, n->property_names, name);
			}
			json_decref(name);
			if (done(c))
				return;
		}
		int matched = find_prop(n, key, klen) != NULL;
		for (size_t i = 0; i < n->n_pattern_props; i++) {
			const struct pattern_prop *pp = &n->pattern_props[i];
			if (!regex_match(c->s, &pp->re, key, klen))
				continue;
			matched = 1;
			validate(c, pp->schema, m, &s);
			if (done(c))
				return;
		}
		const struct node *add = n->additional_props;
		if (matched || !add)
			continue;
		if (add->kind == N_FALSE) {
			ev_schema_error *e = violation(c, &s, "additionalProperties");
			if (e)
				say(e, "additional property %k is not allowed", key, klen);
		} else {
			validate(c, add, m, &s);
		}
		if (done(c))
			return;
	}
}

static void validate_object(struct vctx *c, const struct node *n, const json_t *x,
			    const struct seg *at)
{
	size_t k = json_object_size(x);
	if (k < n->min_props || k > n->max_props) {
		int low = k < n->min_props;
		size_t lim = low ? n->min_props : n->max_props;
		ev_schema_error *e = violation(c, at, low ? "minProperties" : "maxProperties");
		if (e)
			say(e, "%v has %s than %z propert%s", x, low ? "fewer" : "more", lim,
			    lim == 1 ? "y" : "ies");
		if (done(c))
			return;
	}
	for (size_t i = 0; i < n->n_required; i++) {
		const struct name *r = &n->required[i];
		if (json_object_getn(x, r->s, r->len))
			continue;
		ev_schema_error *e = violation(c, at, "required");
		if (e)
			say(e, "%k is required", r->s, r->len);
		if (done(c))
			return;
	}
	for (size_t i = 0; i < n->n_props; i++) {
		const struct prop *p = &n->props[i];
		const json_t *m = json_object_getn(x, p->name, p->len);
		if (!m)
			continue;
		struct seg s = {at, p->name, p->len};
		validate(c, p->schema, m, &s);
		if (done(c))
			return;
	}
	if (n->n_pattern_props || n->additional_props || n->property_names) {
		validate_members(c, n, x, at);
		if (done(c))
			return;
	}
	for (size_t i = 0; i < n->n_deps; i++) {
		const struct dep *d = &n->deps[i];
		if (!json_object_getn(x, d->key.s, d->key.len))
			continue;
		if (d->schema) {
			validate(c, d->schema, x, at);
			if (done(c))
				return;
			continue;
		}
		for (size_t j = 0; j < d->n_required; j++) {
			const struct name *r = &d->required[j];
			if (json_object_getn(x, r->s, r->len))
				continue;
			ev_schema_error *e = violation(c, at, "dependencies");
			if (e)
				say(e, "%k is required when %k is present", r->s, r->len, d->key.s,
				    d->key.len);
			if (done(c))
				return;
		}
	}
}

static void validate_combinators(struct vctx *c, const struct node *n, const json_t *x,
				 const struct seg *at)
{
	for (size_t i = 0; i < n->all_of.n; i++) {
		validate(c, n->all_of.v[i], x, at);
		if (done(c))
			return;
	}
	if (n->any_of.n) {
		int ok = 0;
		for (size_t i = 0; i < n->any_of.n && !ok; i++)
			ok = valid_quiet(c->s, n->any_of.v[i], x);
		ev_schema_error *e = ok ? NULL : violation(c, at, "anyOf");
		if (e)
			say(e, "%v is not valid under any of the %z anyOf schemas", x, n->any_of.n);
		if (done(c))
			return;
	}
	if (n->one_of.n) {
		size_t ok = 0, first = 0, second = 0;
		for (size_t i = 0; i < n->one_of.n && ok < 2; i++) {
			if (!valid_quiet(c->s, n->one_of.v[i], x))
				continue;
			if (ok++)
				second = i;
			else
				first = i;
		}
		ev_schema_error *e = ok == 1 ? NULL : violation(c, at, "oneOf");
		if (e && ok)
			say(e, "%v is valid under more than one of the oneOf schemas (%z and %z)",
			    x, first, second);
		else if (e)
			say(e, "%v is not valid under any of the %z oneOf schemas", x, n->one_of.n);
		if (done(c))
			return;
	}
	if (n->not_schema && valid_quiet(c->s, n->not_schema, x)) {
		ev_schema_error *e = violation(c, at, "not");
		if (e)
			say(e, "%v must not be valid under the 'not' schema", x);
		if (done(c))
			return;
	}
	if (n->if_schema) {
		const struct node *branch =
			valid_quiet(c->s, n->if_schema, x) ? n->then_schema : n->else_schema;
		if (branch)
			validate(c, branch, x, at);
	}
}

static int enum_has(const json_t *list, const json_t *x)
{
	for (size_t i = 0; i < json_array_size(list); i++)
		if (json_eq(x, json_array_get(list, i)))
			return 1;
	return 0;
}

static void validate(struct vctx *c, const struct node *n, const json_t *x, const struct seg *at)
{
	while (n->kind == N_REF)
		n = n->ref;
	if (n->kind != N_SCHEMA) {
		ev_schema_error *e = n->kind == N_FALSE ? violation(c, at, "false") : NULL;
		if (e)
			say(e, "%v is not allowed here (the schema is false)", x);
		return;
	}
	if ((n->has & H_TYPE) && !type_ok(n->types, json_typeof(x), json_real_value(x))) {
		ev_schema_error *e = violation(c, at, "type");
		if (e)
			say_type(e, n->type_val, x);
		if (done(c))
			return;
	}
	if ((n->has & H_ENUM) && !enum_has(n->enum_vals, x)) {
		ev_schema_error *e = violation(c, at, "enum");
		if (e)
			say(e, "%v is not one of %l", x, n->enum_vals);
		if (done(c))
			return;
	}
	if ((n->has & H_CONST) && !json_eq(x, n->const_val)) {
		ev_schema_error *e = violation(c, at, "const");
		if (e)
			say(e, "%v is not the constant %v", x, n->const_val);
		if (done(c))
			return;
	}
	switch (json_typeof(x)) {
	case JSON_INTEGER:
	case JSON_REAL:
		if (n->has & H_NUM)
			validate_number(c, n, x, at);
		break;
	case JSON_STRING:
		if (n->has & H_STR)
			validate_string(c, n, x, at);
		break;
	case JSON_ARRAY:
		if (n->has & H_ARR)
			validate_array(c, n, x, at);
		break;
	case JSON_OBJECT:
		if (n->has & H_OBJ)
			validate_object(c, n, x, at);
		break;
	default: break;
	}
	if (!done(c) && (n->has & H_COMB))
		validate_combinators(c, n, x, at);
}

size_t ev_schema_validate(const ev_schema *s, const json_t *instance, ev_schema_error *errs,
			  size_t max_errors)
{
	struct vctx c = {s, errs, errs ? max_errors : 0, max_errors ? max_errors : 1, 0};
	validate(&c, s->root, instance, NULL);
	return c.n;
}

/* ---- quiet validation over the fast parser's nodes ---- */

/* A verdict of the fast path: ordered so that "all of" is the least, "any of" the greatest.
 * F_NO is certain (the jansson path finds a violation); F_UNSURE is left to it. */
enum { F_NO, F_UNSURE, F_YES };

struct fctx {
	const ev_schema *s;
	const ev_fj_node *nd;
	size_t root;
	size_t skip; /* the root's member taken as absent, 0 for none */
};

static const json_type fj_json_type[] = {
	[EV_FJ_NULL] = JSON_NULL,   [EV_FJ_FALSE] = JSON_FALSE,   [EV_FJ_TRUE] = JSON_TRUE,
	[EV_FJ_INT] = JSON_INTEGER, [EV_FJ_REAL] = JSON_REAL,     [EV_FJ_STRING] = JSON_STRING,
	[EV_FJ_ARRAY] = JSON_ARRAY, [EV_FJ_OBJECT] = JSON_OBJECT,
};

static int fast(const struct fctx *c, const struct node *n, size_t i);

static int least(int a, int b)
{
	return a < b ? a : b;
}

static int greatest(int a, int b)
{
	return a > b ? a : b;
}

static struct num fj_num(const ev_fj_node *x)
{
	struct num r = {x->type == EV_FJ_INT, 0, 0};
	if (r.is_int)
		r.i = x->num.i;
	else
		r.d = x->num.d;
	return r;
}

static int fj_is_num(const ev_fj_node *x)
{
	return x->type == EV_FJ_INT || x->type == EV_FJ_REAL;
}

static int fj_has(const struct fctx *c, size_t obj, const char *key, size_t klen)
{
	long m = ev_fj_member(c->nd, obj, key, klen);
	return m >= 0 && (size_t)m != c->skip;
}

/* nd[i] equals the jansson value v, as json_eq judges. */
static int fj_eq(const struct fctx *c, size_t i, const json_t *v)
{
	const ev_fj_node *x = &c->nd[i];
	size_t k = 0;
	if (fj_is_num(x))
		return json_is_number(v) && num_cmp(fj_num(x), num_of(v)) == 0;
	if (fj_json_type[x->type] != json_typeof(v))
		return 0;
	switch (x->type) {
	case EV_FJ_STRING:
		return json_string_length(v) == x->len &&
		       memcmp(json_string_value(v), x->str, x->len) == 0;
	case EV_FJ_ARRAY:
		if (json_array_size(v) != x->len)
			return 0;
		for (size_t m = i + 1; m < x->end; m = c->nd[m].end)
			if (!fj_eq(c, m, json_array_get(v, k++)))
				return 0;
		return 1;
	case EV_FJ_OBJECT:
		if (json_object_size(v) != x->len - (i == c->root && c->skip))
			return 0;
		for (size_t m = i + 1; m < x->end; m = c->nd[m].end) {
			if (m == c->skip)
				continue;
			const json_t *w = json_object_getn(v, c->nd[m].key, c->nd[m].key_len);
			if (!w || !fj_eq(c, m, w))
				return 0;
		}
		return 1;
	default: return 1;
	}
}

static int fj_in(const struct fctx *c, size_t i, const json_t *list)
{
	for (size_t k = 0; k < json_array_size(list); k++)
		if (fj_eq(c, i, json_array_get(list, k)))
			return 1;
	return 0;
}

/* uniqueItems, pair by pair over short arrays of scalars (empty arrays and objects are
 * scalars here); anything else is left to the jansson path. */
static int fj_unique(const struct fctx *c, size_t i)
{
	const ev_fj_node *x = &c->nd[i];
	if (x->len > 1 && (x->len > 64 || x->end - i - 1 != x->len))
		return F_UNSURE;
	for (size_t a = i + 1; a < x->end; a++) {
		for (size_t b = a + 1; b < x->end; b++) {
			const ev_fj_node *p = &c->nd[a], *q = &c->nd[b];
			int same = fj_is_num(p) && fj_is_num(q)
					   ? num_cmp(fj_num(p), fj_num(q)) == 0
					   : p->type == q->type &&
						     (p->type != EV_FJ_STRING ||
						      (p->len == q->len &&
						       memcmp(p->str, q->str, p->len) == 0));
			if (same)
				return F_NO;
		}
	}
	return F_YES;
}

static int string_ok(const ev_schema *s, const struct node *n, const char *str, size_t len)
{
	if (n->min_length > 0 || n->max_length != SIZE_MAX) {
		size_t k = utf8_count(str, len);
		if (k < n->min_length || k > n->max_length)
			return 0;
	}
	return (!n->pattern.code || regex_match(s, &n->pattern, str, len)) &&
	       (!n->format || ev_schema_format_ok(n->format, str, len));
}

static int number_ok(const struct node *n, struct num x)
{
	for (const struct limit *l = limits; l < limits + sizeof(limits) / sizeof(limits[0]); l++)
		if (!limit_ok(n, l, x))
			return 0;
	return !n->multiple_of || multiple_ok(x, num_of(n->multiple_of));
}

static int fast_array(const struct fctx *c, const struct node *n, size_t i)
{
	const ev_fj_node *x = &c->nd[i];
	if (x->len < n->min_items || x->len > n->max_items)
		return F_NO;
	int r = F_YES;
	size_t k = 0;
	for (size_t m = i + 1; m < x->end && r != F_NO; m = c->nd[m].end, k++) {
		const struct node *item = !n->items_is_list     ? n->items
					  : k < n->items_list.n ? n->items_list.v[k]
								: n->additional_items;
		if (item)
			r = least(r, fast(c, item, m));
	}
	if (n->contains && r != F_NO) {
		int found = F_NO;
		for (size_t m = i + 1; m < x->end && found != F_YES; m = c->nd[m].end)
			found = greatest(found, fast(c, n->contains, m));
		r = least(r, found);
	}
	return n->unique_items && r != F_NO ? least(r, fj_unique(c, i)) : r;
}

/* properties, patternProperties, additionalProperties and propertyNames for member m. */
static int fast_member(const struct fctx *c, const struct node *n, size_t m)
{
	const ev_fj_node *x = &c->nd[m];
	int r = F_YES;
	if (n->property_names) {
		ev_fj_node name = {.str = x->key,
				   .len = x->key_len,
				   .end = 1,
				   .type = EV_FJ_STRING};
		struct fctx q = {c->s, &name, 0, 0};
		r = fast(&q, n->property_names, 0);
	}
	const struct prop *p = find_prop(n, x->key, x->key_len);
	if (p && r != F_NO)
		r = least(r, fast(c, p->schema, m));
	int matched = p != NULL;
	for (size_t i = 0; i < n->n_pattern_props && r != F_NO; i++) {
		const struct pattern_prop *pp = &n->pattern_props[i];
		if (regex_match(c->s, &pp->re, x->key, x->key_len)) {
			matched = 1;
			r = least(r, fast(c, pp->schema, m));
		}
	}
	if (!matched && n->additional_props && r != F_NO)
		r = least(r, fast(c, n->additional_props, m));
	return r;
}

static int fast_object(const struct fctx *c, const struct node *n, size_t i)
{
	const ev_fj_node *x = &c->nd[i];
	size_t k = x->len - (i == c->root && c->skip);
	if (k < n->min_props || k > n->max_props)
		return F_NO;
	for (size_t j = 0; j < n->n_required; j++)
		if (!fj_has(c, i, n->required[j].s, n->required[j].len))
			return F_NO;
	int r = F_YES;
	for (size_t m = i + 1; m < x->end && r != F_NO; m = c->nd[m].end)
		if (m != c->skip)
			r = least(r, fast_member(c, n, m));
	for (size_t j = 0; j < n->n_deps && r != F_NO; j++) {
		const struct dep *d = &n->deps[j];
		if (!fj_has(c, i, d->key.s, d->key.len))
			continue;
		if (d->schema)
			r = least(r, fast(c, d->schema, i));
		for (size_t q = 0; q < d->n_required; q++)
			if (!fj_has(c, i, d->required[q].s, d->required[q].len))
				return F_NO;
	}
	return r;
}

static int fast_combinators(const struct fctx *c, const struct node *n, size_t i)
{
	int r = F_YES;
	for (size_t j = 0; j < n->all_of.n && r != F_NO; j++)
		r = least(r, fast(c, n->all_of.v[j], i));
	if (n->any_of.n && r != F_NO) {
		int any = F_NO;
		for (size_t j = 0; j < n->any_of.n && any != F_YES; j++)
			any = greatest(any, fast(c, n->any_of.v[j], i));
		r = least(r, any);
	}
	if (n->one_of.n && r != F_NO) {
		size_t yes = 0, unsure = 0;
		for (size_t j = 0; j < n->one_of.n && yes < 2; j++) {
			int v = fast(c, n->one_of.v[j], i);
			yes += v == F_YES;
			unsure += v == F_UNSURE;
		}
		r = least(r, yes > 1 || yes + unsure == 0 ? F_NO : unsure ? F_UNSURE : F_YES);
	}
	if (n->not_schema && r != F_NO)
		r = least(r, F_YES - fast(c, n->not_schema, i));
	if (n->if_schema && r != F_NO) {
		int v = fast(c, n->if_schema, i);
		const struct node *branch = v == F_YES ? n->then_schema : n->else_schema;
		r = least(r, v == F_UNSURE ? F_UNSURE : branch ? fast(c, branch, i) : F_YES);
	}
	return r;
}

static int fast(const struct fctx *c, const struct node *n, size_t i)
{
	while (n->kind == N_REF)
		n = n->ref;
	if (n->kind != N_SCHEMA)
		return n->kind == N_TRUE ? F_YES : F_NO;
	const ev_fj_node *x = &c->nd[i];
	json_type t = fj_json_type[x->type];
	if (((n->has & H_TYPE) && !type_ok(n->types, t, x->type == EV_FJ_REAL ? x->num.d : 0)) ||
	    ((n->has & H_ENUM) && !fj_in(c, i, n->enum_vals)) ||
	    ((n->has & H_CONST) && !fj_eq(c, i, n->const_val)))
		return F_NO;
	int r = F_YES;
	if (fj_is_num(x) && (n->has & H_NUM))
		r = number_ok(n, fj_num(x)) ? F_YES : F_NO;
	else if (t == JSON_STRING && (n->has & H_STR))
		r = string_ok(c->s, n, x->str, x->len) ? F_YES : F_NO;
	else if (t == JSON_ARRAY && (n->has & H_ARR))
		r = fast_array(c, n, i);
	else if (t == JSON_OBJECT && (n->has & H_OBJ))
		r = fast_object(c, n, i);
	return r != F_NO && (n->has & H_COMB) ? least(r, fast_combinators(c, n, i)) : r;
}

int ev_schema_valid_fast(const ev_schema *s, const ev_fj_node *nodes, size_t root,
			 const char *skip_key, size_t skip_len)
{
	long skip = skip_key ? ev_fj_member(nodes, root, skip_key, skip_len) : -1;
	struct fctx c = {s, nodes, root, skip > 0 ? (size_t)skip : 0};
	return fast(&c, s->root, root) == F_YES;
}
