/* SPDX-License-Identifier: Apache-2.0 */
/* state.c: a tool's keyed state in RocksDB. */
#include "state.h"

#include <errno.h>
#include <ftw.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ev_state {
	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_block_based_table_options_t *table;
	rocksdb_cache_t *cache;
	rocksdb_readoptions_t *ro;
	rocksdb_writeoptions_t *wo, *wo_sync;
	rocksdb_writebatch_t *batch;
	char *dir;
	int private_dir; /* ours to remove on close */
	int existed;
};

struct ev_state_iter {
	rocksdb_iterator_t *it;
	rocksdb_readoptions_t *ro;
	char *to;
	size_t tlen;
	int started;
};

/* Take RocksDB's error message (malloc'd) into err; returns -1 when there was one. */
static int take_error(char *rerr, const char *what, char *err, size_t errlen)
{
	if (!rerr)
		return 0;
	snprintf(err, errlen, "%s: %s", what, rerr);
	rocksdb_free(rerr);
	return -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

ev_state *ev_state_open(const ev_state_opts *o, char *err, size_t errlen)
{
	ev_state *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (o->dir) {
		s->dir = strdup(o->dir);
		if (s->dir && mkdir(s->dir, 0755) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", s->dir, strerror(errno));
			free(s->dir);
			free(s);
			return NULL;
		}
	} else {
		const char *tmp = getenv("TMPDIR");
		char path[4096];
		snprintf(path, sizeof(path), "%s/evpipe-state-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(path)) {
			snprintf(err, errlen, "cannot create a directory under %s: %s",
				 tmp && *tmp ? tmp : "/tmp", strerror(errno));
			free(s);
			return NULL;
		}
		s->dir = strdup(path);
		s->private_dir = 1;
	}
	if (o->fill && s->dir) {
		/* What was there is replaced by the checkpoint. */
		if (!s->private_dir &&
		    (ev_state_remove_dir(s->dir) < 0 || mkdir(s->dir, 0755) < 0)) {
			snprintf(err, errlen, "cannot empty %s: %s", s->dir, strerror(errno));
			free(s->dir);
			free(s);
			return NULL;
		}
		if (o->fill(s->dir, o->fill_arg, err, errlen) < 0) {
			if (s->private_dir)
				ev_state_remove_dir(s->dir);
			free(s->dir);
			free(s);
			return NULL;
		}
	}
	char current[4096];
	snprintf(current, sizeof(current), "%s/CURRENT", s->dir ? s->dir : "");
	s->existed = access(current, F_OK) == 0;

	uint64_t mem = o->memory ? o->memory : 32u << 20;
	/* Half for the block cache (reads of spilled state), half for two write buffers. */
	s->opts = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(s->opts, 1);
	rocksdb_options_set_write_buffer_size(s->opts, mem / 4);
	rocksdb_options_set_max_write_buffer_number(s->opts, 2);
	rocksdb_options_set_compression(s->opts, rocksdb_lz4_compression);
	rocksdb_options_increase_parallelism(s->opts, 2);
	rocksdb_options_set_max_open_files(s->opts, 512);
	rocksdb_options_set_info_log_level(s->opts, 3); /* errors only in its LOG file */
	rocksdb_options_set_keep_log_file_num(s->opts, 2);
	/* A bloom filter over the whole keys of the write buffers too: most point reads are for
	 * windows the store does not have (a new key), and without it each walks the skiplist. */
	rocksdb_options_set_memtable_prefix_bloom_size_ratio(s->opts, 0.05);
	rocksdb_options_set_memtable_whole_key_filtering(s->opts, 1);
	s->table = rocksdb_block_based_options_create();
	s->cache = rocksdb_cache_create_lru(mem / 2);
	rocksdb_block_based_options_set_block_cache(s->table, s->cache);
	rocksdb_block_based_options_set_cache_index_and_filter_blocks(s->table, 1);
	rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(s->table, 1);
	/* The table options own the filter policy from here. */
	rocksdb_block_based_options_set_filter_policy(s->table,
						      rocksdb_filterpolicy_create_bloom_full(10));
	rocksdb_options_set_block_based_table_factory(s->opts, s->table);
	s->ro = rocksdb_readoptions_create();
	s->wo = rocksdb_writeoptions_create();
	rocksdb_writeoptions_disable_WAL(s->wo, 1);
	s->wo_sync = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(s->wo_sync, 1);
	s->batch = rocksdb_writebatch_create();

	char *rerr = NULL;
	if (s->dir)
		s->db = rocksdb_open(s->opts, s->dir, &rerr);
	if (!s->db) {
		if (rerr)
			take_error(rerr, s->dir, err, errlen);
		else
			snprintf(err, errlen, "out of memory");
		ev_state_close(s, NULL, 0);
		return NULL;
	}
	return s;
}

int ev_state_close(ev_state *s, char *err, size_t errlen)
{
	if (!s)
		return 0;
	int rc = 0;
	char buf[512];
	if (!err) {
		err = buf;
		errlen = sizeof(buf);
	}
	if (s->db) {
		rc = ev_state_commit(s, err, errlen);
		if (rc == 0 && !s->private_dir) {
			rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
			char *rerr = NULL;
			rocksdb_flushoptions_set_wait(fo, 1);
			rocksdb_flush(s->db, fo, &rerr);
			rocksdb_flushoptions_destroy(fo);
			rc = take_error(rerr, "cannot flush the state", err, errlen);
		}
		rocksdb_close(s->db);
	}
	rocksdb_writebatch_destroy(s->batch);
	rocksdb_writeoptions_destroy(s->wo);
	rocksdb_writeoptions_destroy(s->wo_sync);
	rocksdb_readoptions_destroy(s->ro);
	rocksdb_options_destroy(s->opts);
	rocksdb_block_based_options_destroy(s->table);
	rocksdb_cache_destroy(s->cache);
	if (s->private_dir && s->dir)
		ev_state_remove_dir(s->dir);
	free(s->dir);
	free(s);
	return rc;
}

const char *ev_state_dir(const ev_state *s)
{
	return s->dir;
}

int ev_state_existed(const ev_state *s)
{
	return s->existed;
}

int ev_state_get(ev_state *s, const void *key, size_t klen, ev_buf *val, char *err, size_t errlen)
{
	char *rerr = NULL;
	size_t vlen = 0;
	rocksdb_pinnableslice_t *v = rocksdb_get_pinned(s->db, s->ro, key, klen, &rerr);
	if (take_error(rerr, "cannot read the state", err, errlen) < 0)
		return -1;
	if (!v)
		return 0;
	const char *data = rocksdb_pinnableslice_value(v, &vlen);
	ev_buf_reset(val);
	int rc = ev_buf_append(val, data, vlen);
	rocksdb_pinnableslice_destroy(v);
	if (rc < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 1;
}

void ev_state_put(ev_state *s, const void *key, size_t klen, const void *val, size_t vlen)
{
	rocksdb_writebatch_put(s->batch, key, klen, val, vlen);
}

void ev_state_delete(ev_state *s, const void *key, size_t klen)
{
	rocksdb_writebatch_delete(s->batch, key, klen);
}

void ev_state_delete_range(ev_state *s, const void *from, size_t flen, const void *to, size_t tlen)
{
	rocksdb_writebatch_delete_range(s->batch, from, flen, to, tlen);
}

static int commit(ev_state *s, rocksdb_writeoptions_t *wo, char *err, size_t errlen)
{
	if (rocksdb_writebatch_count(s->batch) == 0)
		return 0;
	char *rerr = NULL;
	rocksdb_write(s->db, wo, s->batch, &rerr);
	rocksdb_writebatch_clear(s->batch);
	return take_error(rerr, "cannot write the state", err, errlen);
}

int ev_state_commit(ev_state *s, char *err, size_t errlen)
{
	return commit(s, s->wo, err, errlen);
}

int ev_state_commit_sync(ev_state *s, char *err, size_t errlen)
{
	return commit(s, s->wo_sync, err, errlen);
}

ev_state_iter *ev_state_iter_new(ev_state *s, const void *from, size_t flen, const void *to,
				 size_t tlen)
{
	ev_state_iter *it = calloc(1, sizeof(*it));
	if (!it)
		return NULL;
	it->ro = rocksdb_readoptions_create();
	if (to) {
		if (!(it->to = malloc(tlen ? tlen : 1))) {
			rocksdb_readoptions_destroy(it->ro);
			free(it);
			return NULL;
		}
		memcpy(it->to, to, tlen);
		it->tlen = tlen;
		/* Lets RocksDB skip what lies past the range, deleted ranges included. */
		rocksdb_readoptions_set_iterate_upper_bound(it->ro, it->to, tlen);
	}
	/* A scan reads each block once: do not let it push the hot blocks out of the cache. */
	rocksdb_readoptions_set_fill_cache(it->ro, 0);
	it->it = rocksdb_create_iterator(s->db, it->ro);
	rocksdb_iter_seek(it->it, from, flen);
	return it;
}

int ev_state_iter_next(ev_state_iter *it, const void **key, size_t *klen, const void **val,
		       size_t *vlen)
{
	if (it->started)
		rocksdb_iter_next(it->it);
	it->started = 1;
	if (!rocksdb_iter_valid(it->it)) {
		char *rerr = NULL;
		rocksdb_iter_get_error(it->it, &rerr);
		if (rerr) {
			rocksdb_free(rerr);
			return -1;
		}
		return 0;
	}
	*key = rocksdb_iter_key(it->it, klen);
	*val = rocksdb_iter_value(it->it, vlen);
	return 1;
}

void ev_state_iter_free(ev_state_iter *it)
{
	if (!it)
		return;
	rocksdb_iter_destroy(it->it);
	rocksdb_readoptions_destroy(it->ro);
	free(it->to);
	free(it);
}

int ev_state_remove_dir(const char *dir)
{
	return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int ev_state_checkpoint(ev_state *s, const char *dir, char *err, size_t errlen)
{
	char *rerr = NULL;
	if (ev_state_commit(s, err, errlen) < 0)
		return -1;
	rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(s->db, &rerr);
	if (take_error(rerr, "cannot checkpoint the state", err, errlen) < 0)
		return -1;
	/* 0: always flush the memtables first (there is no write-ahead log to copy instead). */
	rocksdb_checkpoint_create(cp, dir, 0, &rerr);
	rocksdb_checkpoint_object_destroy(cp);
	return take_error(rerr, "cannot checkpoint the state", err, errlen);
}

static uint64_t property(ev_state *s, const char *name)
{
	uint64_t v = 0;
	return rocksdb_property_int(s->db, name, &v) == 0 ? v : 0;
}

uint64_t ev_state_keys(ev_state *s)
{
	return property(s, "rocksdb.estimate-num-keys");
}

uint64_t ev_state_bytes(ev_state *s)
{
	return property(s, "rocksdb.total-sst-files-size") +
	       property(s, "rocksdb.cur-size-all-mem-tables");
}

void ev_state_put_i64(unsigned char *p, int64_t v)
{
	uint64_t u = (uint64_t)v ^ (1ull << 63);
	for (int i = 7; i >= 0; i--, u >>= 8)
		p[i] = (unsigned char)u;
}

int64_t ev_state_get_i64(const unsigned char *p)
{
	uint64_t u = 0;
	for (int i = 0; i < 8; i++)
		u = u << 8 | p[i];
	return (int64_t)(u ^ (1ull << 63));
}

void ev_state_put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}
