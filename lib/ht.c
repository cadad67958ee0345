/* SPDX-License-Identifier: Apache-2.0 */
/* ht.c: a hash table from byte-string keys to pointers (open addressing, linear probing). */
#include "ht.h"

#include <stdlib.h>
#include <string.h>

struct slot {
	char *key; /* NULL: empty */
	size_t len;
	uint64_t hash;
	void *value;
};

/* A block of key copies of a table made by ev_ht_new_kept. */
struct block {
	struct block *next;
	size_t used, cap;
	char data[];
};

struct ev_ht {
	struct slot *slots;
	size_t cap; /* a power of two */
	size_t count;
	size_t key_bytes;    /* of the copies of the keys */
	int kept;            /* the copies are in blocks, not one allocation each */
	struct block *block; /* the newest block, the others after it */
};

uint64_t ev_hash(const void *data, size_t len)
{
	/* FNV-1a, then a final mix so that linear probing spreads. */
	const unsigned char *p = data;
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	return h ^ (h >> 33);
}

ev_ht *ev_ht_new(void)
{
	ev_ht *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->cap = 8; /* small: there may be millions of tables (a uniq per window) */
	t->slots = calloc(t->cap, sizeof(*t->slots));
	if (!t->slots) {
		free(t);
		return NULL;
	}
	return t;
}

ev_ht *ev_ht_new_kept(void)
{
	ev_ht *t = ev_ht_new();
	if (t)
		t->kept = 1;
	return t;
}

void ev_ht_free(ev_ht *t)
{
	if (!t)
		return;
	for (size_t i = 0; !t->kept && i < t->cap; i++)
		free(t->slots[i].key);
	for (struct block *b = t->block, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	free(t->slots);
	free(t);
}

static struct slot *lookup(const ev_ht *t, const void *key, size_t len, uint64_t h)
{
	for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		struct slot *s = &t->slots[i];
		if (!s->key || (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0))
			return s;
	}
}

void *ev_ht_get(const ev_ht *t, const void *key, size_t len)
{
	struct slot *s = lookup(t, key, len, ev_hash(key, len));
	return s->key ? s->value : NULL;
}

static int grow(ev_ht *t)
{
	size_t cap = t->cap * 2;
	struct slot *old = t->slots, *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -1;
	size_t oldcap = t->cap;
	t->slots = slots;
	t->cap = cap;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].key)
			*lookup(t, old[i].key, old[i].len, old[i].hash) = old[i];
	free(old);
	return 0;
}

/* Room for n bytes of key copy: its own allocation, or in the table's blocks (each twice the
 * last, from 64 bytes to 64 KiB, or the key's size). NULL when out of memory. */
static char *key_room(ev_ht *t, size_t n)
{
	if (!t->kept)
		return malloc(n);
	struct block *b = t->block;
	if (!b || b->cap - b->used < n) {
		size_t cap = b ? (b->cap < 65536 ? 2 * b->cap : b->cap) : 64;
		if (cap < n)
			cap = n;
		if (!(b = malloc(sizeof(*b) + cap)))
			return NULL;
		b->next = t->block;
		b->used = 0;
		b->cap = cap;
		t->block = b;
	}
	b->used += n;
	return b->data + b->used - n;
}

/* Fill the empty slot s with a copy of key. */
static int fill(ev_ht *t, struct slot *s, const void *key, size_t len, uint64_t h, void *value)
{
	s->key = key_room(t, len ? len : 1);
	if (!s->key)
		return -1;
	memcpy(s->key, key, len);
	s->len = len;
	s->hash = h;
	s->value = value;
	t->count++;
	t->key_bytes += len ? len : 1;
	return 0;
}

int ev_ht_put(ev_ht *t, const void *key, size_t len, void *value)
{
	if ((t->count + 1) * 4 > t->cap * 3 && grow(t) < 0)
		return -1;
	uint64_t h = ev_hash(key, len);
	struct slot *s = lookup(t, key, len, h);
	if (!s->key)
		return fill(t, s, key, len, h, value);
	s->value = value;
	return 0;
}

int ev_ht_add(ev_ht *t, const void *key, size_t len, void *value)
{
	uint64_t h = ev_hash(key, len);
	struct slot *s = lookup(t, key, len, h);
	if (s->key)
		return 0;
	if ((t->count + 1) * 4 > t->cap * 3) {
		if (grow(t) < 0)
			return -1;
		s = lookup(t, key, len, h);
	}
	return fill(t, s, key, len, h, value) < 0 ? -1 : 1;
}

void *ev_ht_del(ev_ht *t, const void *key, size_t len)
{
	struct slot *s = lookup(t, key, len, ev_hash(key, len));
	if (!s->key)
		return NULL;
	void *value = s->value;
	t->key_bytes -= s->len ? s->len : 1;
	if (!t->kept)
		free(s->key);
	s->key = NULL;
	t->count--;
	/* Re-insert the rest of the cluster so that no probe sequence is cut. */
	size_t i = (size_t)(s - t->slots);
	for (size_t j = (i + 1) & (t->cap - 1); t->slots[j].key; j = (j + 1) & (t->cap - 1)) {
		struct slot moved = t->slots[j];
		t->slots[j].key = NULL;
		*lookup(t, moved.key, moved.len, moved.hash) = moved;
	}
	return value;
}

size_t ev_ht_count(const ev_ht *t)
{
	return t->count;
}

size_t ev_ht_bytes(const ev_ht *t)
{
	/* each key copy also costs malloc's header and rounding: about 16 bytes */
	return sizeof(*t) + t->cap * sizeof(struct slot) + t->key_bytes + 16 * t->count;
}

int ev_ht_next(const ev_ht *t, size_t *pos, const void **key, size_t *len, void **value)
{
	for (; *pos < t->cap; (*pos)++) {
		const struct slot *s = &t->slots[*pos];
		if (s->key) {
			*key = s->key;
			*len = s->len;
			*value = s->value;
			(*pos)++;
			return 1;
		}
	}
	return 0;
}
