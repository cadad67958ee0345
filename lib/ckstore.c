/* SPDX-License-Identifier: Apache-2.0 */
/* ckstore.c: the checkpoint store: objects by key in a directory (file:///dir) or an S3 bucket
 * (s3://bucket/prefix), published atomically, streamed, with transient failures retried. */
#include "ckstore.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "s3.h"

#define TMP_PREFIX ".ev-tmp."
#define MAX_KEY 1024
#define COPY_CHUNK (256 * 1024)
#define MAX_DEPTH 64

struct ev_store {
	char *url;    /* canonical */
	char *root;   /* file: the directory, no trailing '/' ("" for /) */
	char *prefix; /* s3: "" or the prefix without a trailing '/' */
	ev_s3 *s3;
	ev_buf path, tmp, key;
	uint64_t tmp_seq;
};

/* ---- keys and URLs ---- */

/* A run of '/'-separated segments: none empty, "." or "..", none with a control character or
 * starting with the temporary prefix; partial_last: the last one may be a partial segment
 * (a list prefix), so "." and ".." and an empty string are allowed there. */
static int path_ok(const char *p, int partial_last)
{
	if (*p == '/' || strlen(p) > MAX_KEY)
		return 0;
	for (const unsigned char *u = (const unsigned char *)p; *u; u++)
		if (*u < 0x20 || *u == 0x7f)
			return 0;
	const char *seg = p;
	for (;;) {
		size_t n = strcspn(seg, "/");
		int last = seg[n] == '\0';
		if (!(last && partial_last)) {
			if (n == 0 || (n == 1 && seg[0] == '.') ||
			    (n == 2 && seg[0] == '.' && seg[1] == '.'))
				return 0;
		}
		if (n >= strlen(TMP_PREFIX) && strncmp(seg, TMP_PREFIX, strlen(TMP_PREFIX)) == 0)
			return 0;
		if (last)
			return 1;
		seg += n + 1;
	}
}

int ev_store_key_ok(const char *key)
{
	return key && *key && path_ok(key, 0);
}

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* Percent-decode s into a new string; NULL on a bad escape, an encoded NUL, or no memory. */
static char *pct_decode(const char *s)
{
	char *d = malloc(strlen(s) + 1), *o = d;
	if (!d)
		return NULL;
	for (; *s; s++) {
		if (*s != '%') {
			*o++ = *s;
			continue;
		}
		int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
		if (lo < 0 || (hi == 0 && lo == 0)) {
			free(d);
			return NULL;
		}
		*o++ = (char)(hi * 16 + lo);
		s += 2;
	}
	*o = '\0';
	return d;
}

static int bucket_ok(const char *b, size_t n)
{
	if (n < 3 || n > 63 || !isalnum((unsigned char)b[0]) || !isalnum((unsigned char)b[n - 1]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)b[i]) && !isdigit((unsigned char)b[i]) && b[i] != '.' &&
		    b[i] != '-')
			return 0;
	return 1;
}

static int open_file(ev_store *s, const char *rest, char *err, size_t errlen)
{
	/* file:///dir, or file://localhost/dir */
	if (strncmp(rest, "localhost/", 10) == 0)
		rest += 9;
	if (*rest != '/') {
		snprintf(err, errlen, "a file store URL is file:///absolute/dir");
		return -1;
	}
	if (strpbrk(rest, "?#")) {
		snprintf(err, errlen, "a file store URL takes no query or fragment");
		return -1;
	}
	char *dir = pct_decode(rest);
	if (!dir) {
		snprintf(err, errlen, "bad %%-escape in the file store URL");
		return -1;
	}
	size_t n = strlen(dir);
	while (n > 0 && dir[n - 1] == '/')
		dir[--n] = '\0';
	for (const char *p = dir; *p; p++)
		if ((unsigned char)*p < 0x20) {
			free(dir);
			snprintf(err, errlen, "control character in the file store URL");
			return -1;
		}
	s->root = dir;
	ev_buf u = EV_BUF_INIT;
	ev_buf_printf(&u, "file://%s", *dir ? dir : "/");
	s->url = ev_buf_cstr(&u) ? strdup(u.data) : NULL;
	ev_buf_free(&u);
	return s->url ? 0 : (snprintf(err, errlen, "out of memory"), -1);
}

static int open_s3(ev_store *s, const char *rest, char *err, size_t errlen)
{
	size_t blen = strcspn(rest, "/");
	if (memchr(rest, '@', blen)) {
		/* Not repeated: it may hold a secret. */
		snprintf(err, errlen,
			 "an S3 URL carries no credentials (user:password@): they come from the "
			 "environment or ~/.aws/credentials");
		return -1;
	}
	if (blen == 0) {
		snprintf(err, errlen, "an S3 URL names a bucket: s3://bucket[/prefix]");
		return -1;
	}
	if (!bucket_ok(rest, blen)) {
		snprintf(err, errlen, "invalid S3 bucket name '%.*s'", (int)(blen > 63 ? 63 : blen),
			 rest);
		return -1;
	}
	const char *pre = rest + blen;
	while (*pre == '/')
		pre++;
	if (strpbrk(pre, "?#")) {
		snprintf(err, errlen, "an S3 URL takes no query or fragment: s3://bucket[/prefix]");
		return -1;
	}
	s->prefix = strdup(pre);
	if (!s->prefix) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	size_t n = strlen(s->prefix);
	while (n > 0 && s->prefix[n - 1] == '/')
		s->prefix[--n] = '\0';
	if (n > 0 && !path_ok(s->prefix, 0)) {
		snprintf(err, errlen, "invalid S3 prefix '%s'", s->prefix);
		return -1;
	}
	char *bucket = strndup(rest, blen);
	if (!bucket) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->s3 = ev_s3_new(bucket, err, errlen);
	ev_buf u = EV_BUF_INIT;
	ev_buf_printf(&u, "s3://%s%s%s", bucket, n ? "/" : "", s->prefix);
	free(bucket);
	if (!s->s3) {
		ev_buf_free(&u);
		return -1;
	}
	s->url = ev_buf_cstr(&u) ? strdup(u.data) : NULL;
	ev_buf_free(&u);
	return s->url ? 0 : (snprintf(err, errlen, "out of memory"), -1);
}

ev_store *ev_store_open(const char *url, char *err, size_t errlen)
{
	ev_store *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	int rc;
	if (strncmp(url, "file://", 7) == 0)
		rc = open_file(s, url + 7, err, errlen);
	else if (strncmp(url, "s3://", 5) == 0)
		rc = open_s3(s, url + 5, err, errlen);
	else {
		/* The URL is not repeated: it may hold a secret. Its scheme is named. */
		size_t n = 0;
		while (n < 16 && (isalnum((unsigned char)url[n]) || url[n] == '+' || url[n] == '-'))
			n++;
		if (n > 0 && strncmp(url + n, "://", 3) == 0)
			snprintf(err, errlen,
				 "unsupported checkpoint store scheme '%.*s': want file:///dir or "
				 "s3://bucket/prefix",
				 (int)n, url);
		else
			snprintf(
				err, errlen,
				"not a checkpoint store URL: want file:///dir or s3://bucket/prefix");
		rc = -1;
	}
	if (rc < 0) {
		ev_store_close(s);
		return NULL;
	}
	return s;
}

void ev_store_close(ev_store *s)
{
	if (!s)
		return;
	ev_s3_free(s->s3);
	free(s->url);
	free(s->root);
	free(s->prefix);
	ev_buf_free(&s->path);
	ev_buf_free(&s->tmp);
	ev_buf_free(&s->key);
	free(s);
}

const char *ev_store_url(const ev_store *s)
{
	return s->url;
}

void ev_store_set_retry(ev_store *s, int64_t total_ms)
{
	if (s->s3)
		ev_s3_set_retry(s->s3, total_ms);
}

void ev_store_set_page_size(ev_store *s, int n)
{
	if (s->s3)
		ev_s3_set_page_size(s->s3, n);
}

uint64_t ev_store_retries(const ev_store *s)
{
	return s->s3 ? ev_s3_retries(s->s3) : 0;
}

/* The message for a failed operation on key: "cannot <verb> '<url>/<key>': <why>". */
static int fail(ev_store *s, char *err, size_t errlen, const char *verb, const char *key,
		const char *why)
{
	snprintf(err, errlen, "cannot %s '%s/%s': %s", verb, s->url, key, why);
	return -1;
}

static int check_key(ev_store *s, const char *key, const char *verb, char *err, size_t errlen)
{
	if (ev_store_key_ok(key))
		return 0;
	snprintf(err, errlen, "cannot %s '%s' in '%s': invalid key", verb, key ? key : "(null)",
		 s->url);
	return -1;
}

/* The object key of key under the S3 prefix, in s->key. */
static const char *s3_key(ev_store *s, const char *key)
{
	ev_buf_reset(&s->key);
	int rc = *s->prefix ? ev_buf_printf(&s->key, "%s/%s", s->prefix, key)
			    : ev_buf_puts(&s->key, key);
	return rc < 0 ? NULL : ev_buf_cstr(&s->key);
}

/* ---- the file store ----
 * Below its root, the store is walked one segment at a time with openat(2) and O_NOFOLLOW,
 * never by path: no symbolic link in the store leads outside it. A link met is an error
 * (ELOOP), never followed, listed or deleted. The root itself is the user's: it may be a link. */

static const char link_msg[] = "a symbolic link in the store (a store follows none)";

/* The reason for errno e: a link is named as such. */
static const char *why_errno(int e)
{
	return e == ELOOP ? link_msg : strerror(e);
}

/* mkdir -p of the directory that holds path (an absolute path); each directory made is made
 * durable by an fsync of its parent. Only for the root and the local files of get_file: they
 * are the user's paths. */
static int fsync_dir(const char *dir)
{
	int fd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

static int make_parents(char *path)
{
	char *slash = strrchr(path, '/');
	if (!slash || slash == path)
		return 0;
	*slash = '\0';
	struct stat st;
	int rc = 0;
	if (stat(path, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			rc = -1;
		}
	} else if (errno != ENOENT) {
		rc = -1;
	} else if (make_parents(path) < 0) {
		rc = -1;
	} else if (mkdir(path, 0777) < 0 && errno != EEXIST) {
		rc = -1;
	} else {
		char *parent = strrchr(path, '/');
		*parent = '\0';
		rc = fsync_dir(path);
		*parent = '/';
	}
	*slash = '/';
	return rc;
}

/* The directory name in dfd, not through a link: fd, or -1 with errno (ELOOP for a link). */
static int open_subdir(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 && errno == ENOTDIR && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		errno = ELOOP;
	return fd;
}

/* The directory of the first dlen bytes of rel ('/'-separated segments) under the root;
 * create: make the missing ones (the root too), each made durable by an fsync of its parent.
 * fd, or -1 with errno (ENOENT when one is missing, ELOOP when one is a link). */
static int open_dirs(ev_store *s, const char *rel, size_t dlen, int create)
{
	const char *root = *s->root ? s->root : "/";
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		ev_buf_reset(&s->path);
		if (ev_buf_printf(&s->path, "%s/x", s->root) < 0 || !ev_buf_cstr(&s->path)) {
			errno = ENOMEM;
			return -1;
		}
		if (make_parents(s->path.data) < 0)
			return -1;
		fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	for (size_t i = 0; fd >= 0 && i < dlen;) {
		size_t n = strcspn(rel + i, "/");
		if (i + n > dlen)
			n = dlen - i;
		ev_buf_reset(&s->path);
		if (ev_buf_append(&s->path, rel + i, n) < 0 || !ev_buf_cstr(&s->path)) {
			close(fd);
			errno = ENOMEM;
			return -1;
		}
		int sub = open_subdir(fd, s->path.data);
		if (sub < 0 && errno == ENOENT && create) {
			if ((mkdirat(fd, s->path.data, 0777) == 0 || errno == EEXIST) &&
			    fsync(fd) == 0)
				sub = open_subdir(fd, s->path.data);
		}
		int e = errno;
		close(fd);
		errno = e;
		fd = sub;
		i += n + 1;
	}
	return fd;
}

/* The directory that holds key (opened as open_dirs does), and key's last segment in *leaf. */
static int open_parent(ev_store *s, const char *key, int create, const char **leaf)
{
	const char *slash = strrchr(key, '/');
	*leaf = slash ? slash + 1 : key;
	return open_dirs(s, key, slash ? (size_t)(slash - key) : 0, create);
}

/* The directory that holds a local path (the user's: links are followed), and its last
 * segment in *leaf. */
static int open_local_parent(ev_store *s, const char *path, const char **leaf)
{
	const char *slash = strrchr(path, '/');
	*leaf = slash ? slash + 1 : path;
	if (!slash)
		return open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ev_buf_reset(&s->path);
	if (ev_buf_append(&s->path, path, slash == path ? 1 : (size_t)(slash - path)) < 0 ||
	    !ev_buf_cstr(&s->path)) {
		errno = ENOMEM;
		return -1;
	}
	return open(s->path.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Copy in to out from in's current offset to its end; the bytes copied in *n. */
static int copy_fd(int in, int out, uint64_t *n)
{
	char *buf = malloc(COPY_CHUNK);
	if (!buf) {
		errno = ENOMEM;
		return -1;
	}
	int rc = 0;
	*n = 0;
	for (;;) {
		ssize_t r = read(in, buf, COPY_CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -1 : 0;
			break;
		}
		if (write_all(out, buf, (size_t)r) < 0) {
			rc = -1;
			break;
		}
		*n += (uint64_t)r;
	}
	int e = errno;
	free(buf);
	errno = e;
	return rc;
}

/* Create a temporary file in the directory dfd; its name in s->tmp. Returns the fd or -1. */
static int open_tmp(ev_store *s, int dfd)
{
	for (int tries = 0; tries < 100; tries++) {
		ev_buf_reset(&s->tmp);
		if (ev_buf_printf(&s->tmp, TMP_PREFIX "%ld.%llu", (long)getpid(),
				  (unsigned long long)++s->tmp_seq) < 0 ||
		    !ev_buf_cstr(&s->tmp)) {
			errno = ENOMEM;
			return -1;
		}
		int fd = openat(dfd, s->tmp.data,
				O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	return -1;
}

/* Make the temporary file s->tmp of dfd (open as fd) durable and publish it as final in dfd,
 * atomically (a link there is replaced, not followed); then make the rename durable. Closes
 * fd; removes the temporary file on failure. */
static int publish(ev_store *s, int dfd, int fd, const char *final)
{
	int rc = fsync(fd);
	int e = errno;
	if (close(fd) < 0 && rc == 0) {
		rc = -1;
		e = errno;
	}
	if (rc == 0 && renameat(dfd, s->tmp.data, dfd, final) < 0) {
		rc = -1;
		e = errno;
	}
	if (rc == 0 && fsync(dfd) < 0) {
		rc = -1;
		e = errno;
	} else if (rc < 0) {
		unlinkat(dfd, s->tmp.data, 0);
	}
	errno = e;
	return rc;
}

/* Remove the directories of key that are empty, from its own up to the root; a non-empty one
 * stops it (a writer that loses its directory so makes it again: file_write). */
static void remove_empty_parents(ev_store *s, const char *key)
{
	const char *leaf = strrchr(key, '/');
	for (size_t end = leaf ? (size_t)(leaf - key) : 0; end > 0;) {
		const char *slash = memrchr(key, '/', end);
		size_t start = slash ? (size_t)(slash - key) + 1 : 0;
		int pfd = open_dirs(s, key, slash ? (size_t)(slash - key) : 0, 0);
		ev_buf_reset(&s->tmp);
		int gone = pfd >= 0 && ev_buf_append(&s->tmp, key + start, end - start) == 0 &&
			   ev_buf_cstr(&s->tmp) && unlinkat(pfd, s->tmp.data, AT_REMOVEDIR) == 0;
		if (gone)
			fsync(pfd);
		if (pfd >= 0)
			close(pfd);
		if (!gone || !slash)
			break;
		end = (size_t)(slash - key);
	}
}

/* Write a new object key from data (src < 0) or from the file src. */
static int file_write(ev_store *s, const char *key, const void *data, size_t len, int src)
{
	const char *leaf;
	int dfd = open_parent(s, key, 1, &leaf);
	int fd = dfd < 0 ? -1 : open_tmp(s, dfd);
	if (dfd >= 0 && fd < 0 && errno == ENOENT) {
		/* A delete removed the directory after it was made: once more. */
		close(dfd);
		dfd = open_parent(s, key, 1, &leaf);
		fd = dfd < 0 ? -1 : open_tmp(s, dfd);
	}
	int rc = fd < 0 ? -1 : 0;
	if (rc == 0) {
		uint64_t n;
		rc = src >= 0 ? copy_fd(src, fd, &n) : write_all(fd, data, len);
		if (rc < 0) {
			int e = errno;
			close(fd);
			unlinkat(dfd, s->tmp.data, 0);
			errno = e;
		} else {
			rc = publish(s, dfd, fd, leaf);
		}
	}
	int e = errno;
	if (dfd >= 0)
		close(dfd);
	if (rc < 0)
		remove_empty_parents(s, key); /* a full disk leaves no empty chk-N behind */
	errno = e;
	return rc;
}

static int file_put(ev_store *s, const char *key, const void *data, size_t len, int src, char *err,
		    size_t errlen)
{
	if (file_write(s, key, data, len, src) < 0)
		return fail(s, err, errlen, "put", key, why_errno(errno));
	return 0;
}

/* Open the object key for reading: fd, or -1 with errno (ENOENT when absent, ELOOP for a
 * link). */
static int file_open(ev_store *s, const char *key)
{
	const char *leaf;
	int dfd = open_parent(s, key, 0, &leaf);
	int fd = dfd < 0 ? -1 : openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int e = errno;
	if (dfd >= 0)
		close(dfd);
	errno = e == ENOTDIR ? ENOENT : e;
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
		close(fd);
		errno = ENOENT; /* a directory: the key is only a prefix */
		return -1;
	}
	return fd;
}

static int file_get(ev_store *s, const char *key, ev_buf *out, char *err, size_t errlen)
{
	ev_buf_reset(out);
	int fd = file_open(s, key);
	if (fd < 0)
		return errno == ENOENT ? 0 : fail(s, err, errlen, "get", key, why_errno(errno));
	char chunk[65536];
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || (r > 0 && ev_buf_append(out, chunk, (size_t)r) < 0)) {
			int e = r < 0 ? errno : ENOMEM;
			close(fd);
			return fail(s, err, errlen, "get", key, strerror(e));
		}
		if (r == 0)
			break;
	}
	close(fd);
	return 1;
}

/* lstat of key: 1 with st, 0 when absent, -1 with errno (ELOOP for a link). */
static int file_stat(ev_store *s, const char *key, struct stat *st)
{
	const char *leaf;
	int dfd = open_parent(s, key, 0, &leaf);
	int rc = dfd < 0 ? -1 : fstatat(dfd, leaf, st, AT_SYMLINK_NOFOLLOW);
	int e = errno;
	if (dfd >= 0)
		close(dfd);
	errno = e;
	if (rc < 0)
		return e == ENOENT || e == ENOTDIR ? 0 : -1;
	if (S_ISLNK(st->st_mode)) {
		errno = ELOOP;
		return -1;
	}
	return 1;
}

static int file_head(ev_store *s, const char *key, uint64_t *size, char *err, size_t errlen)
{
	struct stat st;
	int r = file_stat(s, key, &st);
	if (r < 0)
		return fail(s, err, errlen, "stat", key, why_errno(errno));
	if (r == 0 || !S_ISREG(st.st_mode))
		return 0;
	if (size)
		*size = (uint64_t)st.st_size;
	return 1;
}

static int file_delete(ev_store *s, const char *key, char *err, size_t errlen)
{
	struct stat st;
	int r = file_stat(s, key, &st);
	if (r < 0)
		return fail(s, err, errlen, "delete", key, why_errno(errno));
	if (r == 0 || S_ISDIR(st.st_mode)) /* a directory: the key is only a prefix of others */
		return 0;
	const char *leaf;
	int dfd = open_parent(s, key, 0, &leaf);
	if (dfd < 0 || unlinkat(dfd, leaf, 0) < 0 || fsync(dfd) < 0) {
		int e = errno;
		if (dfd >= 0)
			close(dfd);
		return e == ENOENT ? 0 : fail(s, err, errlen, "delete", key, why_errno(e));
	}
	close(dfd);
	remove_empty_parents(s, key);
	return 0;
}

struct walk {
	const char *prefix;
	size_t prefix_len;
	char **keys;
	uint64_t *sizes;
	size_t n, cap;
	char *link; /* the link met, relative to the root */
};

static int walk_add(struct walk *w, const char *key, uint64_t size)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 64;
		char **k = reallocarray(w->keys, cap, sizeof(*k));
		if (!k)
			return -1;
		w->keys = k;
		uint64_t *sz = reallocarray(w->sizes, cap, sizeof(*sz));
		if (!sz)
			return -1;
		w->sizes = sz;
		w->cap = cap;
	}
	if (!(w->keys[w->n] = strdup(key)))
		return -1;
	w->sizes[w->n++] = size;
	return 0;
}

/* Collect the regular files under the directory fd (taken; relative path rel, "" for the
 * root) whose keys start with the prefix. A link where a key or a directory of keys could be
 * is an error (ELOOP, w->link). Returns 0, or -1 with errno. */
static int walk_dir(struct walk *w, int fd, const char *rel, int depth)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	ev_buf crel = EV_BUF_INIT;
	int rc = 0;
	struct dirent *e;
	errno = 0;
	/* readdir(3) is safe on a stream no other thread uses; readdir_r is deprecated. */
	// cppcheck-suppress readdirCalled
	while (rc == 0 && (e = readdir(d))) {
		const char *name = e->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
		    strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0)
			continue;
		ev_buf_reset(&crel);
		if (ev_buf_printf(&crel, "%s%s%s/", rel, *rel ? "/" : "", name) < 0 ||
		    !ev_buf_cstr(&crel)) {
			errno = ENOMEM;
			rc = -1;
			break;
		}
		crel.data[--crel.len] = '\0';
		size_t n = crel.len;
		/* Keys with the prefix, and directories that hold them or lead to them. */
		size_t m = n + 1 < w->prefix_len ? n + 1 : w->prefix_len;
		crel.data[n] = '/';
		int relevant = memcmp(crel.data, w->prefix, m) == 0;
		crel.data[n] = '\0';
		struct stat st;
		if (!relevant)
			continue;
		if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT) /* removed meanwhile */
				continue;
			rc = -1;
			break;
		}
		if (S_ISLNK(st.st_mode)) {
			free(w->link);
			w->link = strdup(crel.data);
			errno = ELOOP;
			rc = -1;
		} else if (S_ISREG(st.st_mode)) {
			if (n >= w->prefix_len && path_ok(crel.data, 0) &&
			    walk_add(w, crel.data, (uint64_t)st.st_size) < 0) {
				errno = ENOMEM;
				rc = -1;
			}
		} else if (S_ISDIR(st.st_mode) && depth < MAX_DEPTH) {
			int sub = open_subdir(dirfd(d), name);
			if (sub < 0 && errno == ENOENT)
				continue;
			if (sub < 0 && errno == ELOOP) {
				free(w->link);
				w->link = strdup(crel.data);
			}
			rc = sub < 0 ? -1 : walk_dir(w, sub, crel.data, depth + 1);
		}
		if (rc == 0)
			errno = 0;
	}
	if (rc == 0 && errno != 0)
		rc = -1;
	int saved = errno;
	closedir(d);
	ev_buf_free(&crel);
	errno = saved;
	return rc;
}

static int cmp_index(const void *a, const void *b, void *arg)
{
	char **keys = arg;
	return strcmp(keys[*(const size_t *)a], keys[*(const size_t *)b]);
}

static int file_list(ev_store *s, const char *prefix,
		     int (*fn)(const char *key, uint64_t size, void *arg), void *arg, char *err,
		     size_t errlen)
{
	struct walk w = {prefix, strlen(prefix), NULL, NULL, 0, 0, NULL};
	/* Start in the deepest directory the prefix names. */
	const char *slash = strrchr(prefix, '/');
	size_t dlen = slash ? (size_t)(slash - prefix) : 0;
	ev_buf rel = EV_BUF_INIT;
	int rc = 0;
	int fd = open_dirs(s, prefix, dlen, 0);
	if (fd < 0)
		rc = errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	else if (ev_buf_printf(&rel, "%.*s", (int)dlen, prefix) < 0 || !ev_buf_cstr(&rel)) {
		close(fd);
		errno = ENOMEM;
		rc = -1;
	} else {
		rc = walk_dir(&w, fd, rel.data, 0);
	}
	size_t *order = NULL;
	if (rc < 0 && errno == ELOOP && w.link) {
		char why[1200];
		snprintf(why, sizeof(why), "'%s' is %s", w.link, link_msg);
		rc = fail(s, err, errlen, "list", prefix, why);
	} else if (rc < 0) {
		rc = fail(s, err, errlen, "list", prefix, why_errno(errno));
	} else if (w.n > 0 && !(order = calloc(w.n, sizeof(*order)))) {
		rc = fail(s, err, errlen, "list", prefix, "out of memory");
	} else {
		for (size_t i = 0; i < w.n; i++)
			order[i] = i;
		if (w.n > 1)
			qsort_r(order, w.n, sizeof(*order), cmp_index, w.keys);
		for (size_t i = 0; i < w.n && rc == 0; i++)
			rc = fn(w.keys[order[i]], w.sizes[order[i]], arg);
	}
	free(order);
	for (size_t i = 0; i < w.n; i++)
		free(w.keys[i]);
	free(w.keys);
	free(w.sizes);
	free(w.link);
	ev_buf_free(&rel);
	return rc;
}

/* ---- the operations ---- */

int ev_store_put(ev_store *s, const char *key, const void *data, size_t len, char *err,
		 size_t errlen)
{
	if (check_key(s, key, "put", err, errlen) < 0)
		return -1;
	if (!s->s3)
		return file_put(s, key, data, len, -1, err, errlen);
	char why[768];
	const char *k = s3_key(s, key);
	if (!k)
		return fail(s, err, errlen, "put", key, "out of memory");
	if (ev_s3_put(s->s3, k, data, len, why, sizeof(why)) < 0)
		return fail(s, err, errlen, "put", key, why);
	return 0;
}

int ev_store_put_file(ev_store *s, const char *key, const char *path, char *err, size_t errlen)
{
	if (check_key(s, key, "put", err, errlen) < 0)
		return -1;
	int src = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (src < 0 || fstat(src, &st) < 0 || !S_ISREG(st.st_mode)) {
		int e = src < 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		if (src >= 0)
			close(src);
		snprintf(err, errlen, "cannot put '%s' as '%s/%s': %s", path, s->url, key,
			 strerror(e));
		return -1;
	}
	int rc;
	if (!s->s3) {
		rc = file_put(s, key, NULL, 0, src, err, errlen);
	} else {
		char why[768];
		const char *k = s3_key(s, key);
		rc = !k ? fail(s, err, errlen, "put", key, "out of memory")
		     : ev_s3_put_fd(s->s3, k, src, (uint64_t)st.st_size, why, sizeof(why)) < 0
			     ? fail(s, err, errlen, "put", key, why)
			     : 0;
	}
	close(src);
	return rc;
}

int ev_store_get(ev_store *s, const char *key, ev_buf *out, char *err, size_t errlen)
{
	if (check_key(s, key, "get", err, errlen) < 0)
		return -1;
	if (!s->s3)
		return file_get(s, key, out, err, errlen);
	char why[768];
	const char *k = s3_key(s, key);
	if (!k)
		return fail(s, err, errlen, "get", key, "out of memory");
	int rc = ev_s3_get(s->s3, k, out, -1, why, sizeof(why));
	return rc < 0 ? fail(s, err, errlen, "get", key, why) : rc;
}

int ev_store_get_file(ev_store *s, const char *key, const char *path, char *err, size_t errlen)
{
	if (check_key(s, key, "get", err, errlen) < 0)
		return -1;
	int src = -1;
	if (!s->s3) {
		src = file_open(s, key);
		if (src < 0)
			return errno == ENOENT ? 0
					       : fail(s, err, errlen, "get", key, why_errno(errno));
	}
	const char *leaf;
	int dfd = open_local_parent(s, path, &leaf);
	int fd = dfd < 0 ? -1 : open_tmp(s, dfd);
	if (fd < 0) {
		int e = errno;
		if (src >= 0)
			close(src);
		if (dfd >= 0)
			close(dfd);
		snprintf(err, errlen, "cannot write '%s': %s", path, strerror(e));
		return -1;
	}
	int rc;
	char why[768];
	if (!s->s3) {
		uint64_t n;
		rc = copy_fd(src, fd, &n) < 0 ? -1 : 1;
		snprintf(why, sizeof(why), "%s", rc < 0 ? strerror(errno) : "");
		close(src);
	} else {
		const char *k = s3_key(s, key);
		rc = k ? ev_s3_get(s->s3, k, NULL, fd, why, sizeof(why)) : -1;
		if (!k)
			snprintf(why, sizeof(why), "out of memory");
	}
	if (rc <= 0) {
		close(fd);
		unlinkat(dfd, s->tmp.data, 0);
		close(dfd);
		return rc < 0 ? fail(s, err, errlen, "get", key, why) : 0;
	}
	rc = publish(s, dfd, fd, leaf);
	int e = errno;
	close(dfd);
	if (rc < 0) {
		snprintf(err, errlen, "cannot write '%s': %s", path, strerror(e));
		return -1;
	}
	return 1;
}

int ev_store_head(ev_store *s, const char *key, uint64_t *size, char *err, size_t errlen)
{
	if (check_key(s, key, "stat", err, errlen) < 0)
		return -1;
	if (!s->s3)
		return file_head(s, key, size, err, errlen);
	char why[768];
	const char *k = s3_key(s, key);
	if (!k)
		return fail(s, err, errlen, "stat", key, "out of memory");
	int rc = ev_s3_head(s->s3, k, size, why, sizeof(why));
	return rc < 0 ? fail(s, err, errlen, "stat", key, why) : rc;
}

int ev_store_delete(ev_store *s, const char *key, char *err, size_t errlen)
{
	if (check_key(s, key, "delete", err, errlen) < 0)
		return -1;
	if (!s->s3)
		return file_delete(s, key, err, errlen);
	char why[768];
	const char *k = s3_key(s, key);
	if (!k)
		return fail(s, err, errlen, "delete", key, "out of memory");
	return ev_s3_delete(s->s3, k, why, sizeof(why)) < 0
		       ? fail(s, err, errlen, "delete", key, why)
		       : 0;
}

/* Hands S3 keys to the caller's fn relative to the store's prefix. */
struct s3_list {
	size_t strip;
	int (*fn)(const char *key, uint64_t size, void *arg);
	void *arg;
	int stopped; /* fn's non-zero return */
};

static int s3_list_entry(const char *key, uint64_t size, void *arg)
{
	struct s3_list *l = arg;
	if (strlen(key) <= l->strip || !path_ok(key + l->strip, 0))
		return 0; /* not a key this store could have written */
	l->stopped = l->fn(key + l->strip, size, l->arg);
	return l->stopped ? 1 : 0;
}

int ev_store_list(ev_store *s, const char *prefix,
		  int (*fn)(const char *key, uint64_t size, void *arg), void *arg, char *err,
		  size_t errlen)
{
	if (!prefix)
		prefix = "";
	if (!path_ok(prefix, 1)) {
		snprintf(err, errlen, "cannot list '%s' in '%s': invalid prefix", prefix, s->url);
		return -1;
	}
	if (!s->s3)
		return file_list(s, prefix, fn, arg, err, errlen);
	ev_buf full = EV_BUF_INIT;
	int rc = *s->prefix ? ev_buf_printf(&full, "%s/%s", s->prefix, prefix)
			    : ev_buf_puts(&full, prefix);
	if (rc < 0 || !ev_buf_cstr(&full)) {
		ev_buf_free(&full);
		return fail(s, err, errlen, "list", prefix, "out of memory");
	}
	struct s3_list l = {*s->prefix ? strlen(s->prefix) + 1 : 0, fn, arg, 0};
	char why[768];
	rc = ev_s3_list(s->s3, full.data, s3_list_entry, &l, why, sizeof(why));
	ev_buf_free(&full);
	if (l.stopped)
		return l.stopped;
	return rc < 0 ? fail(s, err, errlen, "list", prefix, why) : 0;
}

/* ---- checksums ---- */
