// fastjson.cc: simdjson's DOM parser, its document flattened into ev_fj_node (fastjson.h).
#include "fastjson.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <vector>

using simdjson::dom::element;
using simdjson::dom::element_type;

struct ev_fj {
	simdjson::dom::parser parser;
	std::vector<ev_fj_node> nodes;      // room for the most a text of its length can have
	size_t n;                           // used by the text at hand
	std::vector<std::string_view> keys; // scratch for the duplicate check of large objects
	bool maybe_nul; // the text has a \u0000 escape: strings and keys are to be checked
	int depth;      // the deepest nesting of arrays and objects
};

namespace {

// Objects up to this many members are checked for duplicate keys pair by pair.
constexpr size_t kPairwise = 16;

bool has_duplicate(ev_fj *p, size_t obj)
{
	const ev_fj_node *nodes = p->nodes.data();
	size_t n = nodes[obj].len;
	if (n < 2)
		return false;
	if (n <= kPairwise) {
		for (size_t i = obj + 1; i < nodes[obj].end; i = nodes[i].end)
			for (size_t j = nodes[i].end; j < nodes[obj].end; j = nodes[j].end)
				if (nodes[i].key_len == nodes[j].key_len &&
				    std::memcmp(nodes[i].key, nodes[j].key, nodes[i].key_len) == 0)
					return true;
		return false;
	}
	p->keys.clear();
	for (size_t i = obj + 1; i < nodes[obj].end; i = nodes[i].end)
		p->keys.emplace_back(nodes[i].key, nodes[i].key_len);
	std::sort(p->keys.begin(), p->keys.end());
	return std::adjacent_find(p->keys.begin(), p->keys.end()) != p->keys.end();
}

// Whether text has the escape \u0000 (most records have no backslash at all).
bool has_nul_escape(const char *text, size_t len)
{
	const char *end = text + len;
	for (const char *b = text; (b = static_cast<const char *>(std::memchr(b, '\\', end - b)));
	     b += 2) {
		if (end - b >= 6 && std::memcmp(b + 1, "u0000", 5) == 0)
			return true;
		if (end - b < 2)
			break;
	}
	return false;
}

bool has_nul(std::string_view s)
{
	return std::memchr(s.data(), '\0', s.size()) != nullptr;
}

// The next node, keyed unless at the root or in an array; NULL when jansson would refuse the key.
inline ev_fj_node *start_node(ev_fj *p, std::string_view key, bool keyed)
{
	ev_fj_node &nd = p->nodes[p->n++]; // nodes never grows during a parse
	nd.key = nd.str = nullptr;
	nd.key_len = 0;
	nd.len = 0;
	if (keyed) {
		if (p->maybe_nul && has_nul(key))
			return nullptr;
		nd.key = key.data();
		nd.key_len = static_cast<uint32_t>(key.size());
	}
	return &nd;
}

bool flatten(ev_fj *p, element v, element_type t, std::string_view key, bool keyed, int depth);

// Append v (and its subtree) with its key, v within depth containers; false when jansson would
// not read it the same. A scalar is written here, without a call: most values are.
inline __attribute__((always_inline)) bool append(ev_fj *p, element v, std::string_view key,
						  bool keyed, int depth)
{
	element_type t = v.type();
	if (t == element_type::ARRAY || t == element_type::OBJECT)
		return flatten(p, v, t, key, keyed, depth);
	ev_fj_node *nd = start_node(p, key, keyed);
	if (!nd)
		return false;
	switch (t) {
	case element_type::NULL_VALUE: nd->type = EV_FJ_NULL; break;
	case element_type::BOOL:
		nd->type = v.get_bool().value_unsafe() ? EV_FJ_TRUE : EV_FJ_FALSE;
		break;
	case element_type::INT64:
		nd->type = EV_FJ_INT;
		nd->num.i = v.get_int64().value_unsafe();
		break;
	case element_type::UINT64: return false; // jansson: "too big integer"
	case element_type::DOUBLE:
		nd->type = EV_FJ_REAL;
		nd->num.d = v.get_double().value_unsafe();
		break;
	case element_type::STRING: {
		std::string_view s = v.get_string().value_unsafe();
		if (p->maybe_nul && has_nul(s))
			return false; // jansson refuses \u0000 unless told otherwise
		nd->type = EV_FJ_STRING;
		nd->str = s.data();
		nd->len = static_cast<uint32_t>(s.size());
		break;
	}
	default: break; // containers: above
	}
	nd->end = static_cast<uint32_t>(p->n);
	return true;
}

// Append the array or object v (of type t) and its subtree, as append does.
bool flatten(ev_fj *p, element v, element_type t, std::string_view key, bool keyed, int depth)
{
	size_t at = p->n;
	ev_fj_node *nd = start_node(p, key, keyed);
	if (!nd)
		return false;
	p->depth = std::max(p->depth, depth + 1);
	if (t == element_type::ARRAY) {
		nd->type = EV_FJ_ARRAY;
		simdjson::dom::array a = v.get_array().value_unsafe();
		for (element x : a) {
			if (!append(p, x, {}, false, depth + 1))
				return false;
			nd->len++;
		}
	} else {
		nd->type = EV_FJ_OBJECT;
		simdjson::dom::object o = v.get_object().value_unsafe();
		for (auto m : o) {
			if (!append(p, m.value, m.key, true, depth + 1))
				return false;
			nd->len++;
		}
	}
	nd->end = static_cast<uint32_t>(p->n);
	return nd->type != EV_FJ_OBJECT || !has_duplicate(p, at);
}

} // namespace

extern "C" {

ev_fj *ev_fj_new(void)
{
	const char *use = std::getenv("EVPIPE_FASTJSON");
	if (use && std::strcmp(use, "0") == 0)
		return nullptr;
	return new (std::nothrow) ev_fj();
}

void ev_fj_free(ev_fj *p)
{
	delete p;
}

const ev_fj_node *ev_fj_parse(ev_fj *p, const char *text, size_t len, size_t *n)
{
	element root;
	if (len >= UINT32_MAX || p->parser.parse(text, len, true).get(root) != simdjson::SUCCESS)
		return nullptr;
	try {
		// Every value but the root takes two bytes at least: its own, and the '[', ',' or
		// ':' before it.
		size_t most = len / 2 + 1;
		if (p->nodes.size() < most)
			p->nodes.resize(most);
		p->n = 0;
		p->depth = 0;
		// A U+0000 can only come from this escape (a raw NUL is not JSON).
		p->maybe_nul = has_nul_escape(text, len);
		if (!append(p, root, {}, false, 0))
			return nullptr;
	} catch (const std::bad_alloc &) {
		return nullptr;
	}
	*n = p->n;
	return p->nodes.data();
}

int ev_fj_depth(const ev_fj *p)
{
	return p->depth;
}

long ev_fj_member(const ev_fj_node *nodes, size_t obj, const char *key, size_t key_len)
{
	if (nodes[obj].type != EV_FJ_OBJECT)
		return -1;
	for (size_t i = obj + 1; i < nodes[obj].end; i = nodes[i].end)
		if (nodes[i].key_len == key_len && std::memcmp(nodes[i].key, key, key_len) == 0)
			return static_cast<long>(i);
	return -1;
}

size_t ev_fj_shortest(double v, char *buf, size_t size)
{
	if (size < 2)
		return 0;
	auto r = std::to_chars(buf, buf + size - 1, v, std::chars_format::scientific);
	if (r.ec != std::errc())
		return 0;
	*r.ptr = '\0';
	return static_cast<size_t>(r.ptr - buf);
}

} // extern "C"
