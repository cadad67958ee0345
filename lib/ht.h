/* SPDX-License-Identifier: Apache-2.0 */
/* ht.h: a hash table from byte-string keys to pointers (open addressing, linear probing). */
#ifndef EV_HT_H
#define EV_HT_H

#include <stddef.h>
#include <stdint.h>

typedef struct ev_ht ev_ht;

ev_ht *ev_ht_new(void);
/* A table for keys that stay until it is freed (a set of distinct values): their copies are
 * kept in blocks of the table, not allocated one by one; a deleted key's copy stays there
 * until ev_ht_free. */
ev_ht *ev_ht_new_kept(void);
/* Frees the table and its copies of the keys; values are the caller's. */
void ev_ht_free(ev_ht *t);
void *ev_ht_get(const ev_ht *t, const void *key, size_t len);
/* Insert or replace; the key is copied. Returns 0, or -1 when out of memory. */
int ev_ht_put(ev_ht *t, const void *key, size_t len, void *value);
/* Insert when absent, with one hash and one probe (the table grows as ev_ht_get, then
 * ev_ht_put of a new key, would grow it). Returns 1 when inserted, 0 when the key was
 * there (its value unchanged), -1 when out of memory. */
int ev_ht_add(ev_ht *t, const void *key, size_t len, void *value);
/* Remove and return the value (NULL when absent). */
void *ev_ht_del(ev_ht *t, const void *key, size_t len);
size_t ev_ht_count(const ev_ht *t);
/* The heap the table holds: its slots and the copies of the keys (not the values). */
size_t ev_ht_bytes(const ev_ht *t);
/* Iterate: start with *pos = 0; returns 0 at the end. The table must not change meanwhile. */
int ev_ht_next(const ev_ht *t, size_t *pos, const void **key, size_t *len, void **value);
uint64_t ev_hash(const void *data, size_t len);

#endif
