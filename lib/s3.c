/* SPDX-License-Identifier: Apache-2.0 */
/* s3.c: an S3 client over libcurl: path-style requests signed with AWS Signature V4, errors
 * from S3's XML answers, transient failures retried with backoff. */
#include "s3.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <expat.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "clock.h"
#include "opts.h"
#include "sha256.h"

#define MAX_ERROR_BODY (64 * 1024)       /* an error answer is short; a longer one is cut */
#define MAX_LIST_BODY (16 * 1024 * 1024) /* a page of 1000 keys of 1 KiB is about 1.5 MiB */
#define MAX_XML_TEXT (64 * 1024)
#define MAX_PUT_SIZE (5ULL << 30) /* a single PUT's limit */
#define MAX_KEY 1024
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct ev_s3 {
	CURL *curl;
	char *bucket;
	char *endpoint; /* no trailing '/' */
	char *region;
	char *key_id;
	char *secret;
	char *token; /* NULL: none */
	char *sigv4; /* "aws:amz:<region>:s3" */
	int64_t retry_ms;
	int page_size;
	uint64_t retries;
	ev_backoff backoff;
	ev_buf url, body, scratch;
	char curl_err[CURL_ERROR_SIZE];
};

/* One request: what to send, where the answer's body goes. */
struct req {
	const char *method; /* GET, HEAD, PUT, DELETE */
	const char *key;    /* NULL: the bucket */
	const char *query;  /* canonical query string (sorted, encoded), or NULL */
	const void *data;   /* PUT from memory */
	size_t len;
	int in_fd; /* PUT from a file: >= 0 */
	uint64_t in_size, in_off;
	int in_errno;
	ev_buf *out; /* a 2xx answer's body: into out, or out_fd, or body (a list) */
	int out_fd;
	uint64_t out_off;
	int out_errno;
	size_t out_max; /* with neither out nor out_fd: the most body kept */
	ev_s3 *c;
	long status;
	int body_to_sink; /* the answer is a 2xx: its body goes to the sink, not c->body */
	int body_overflow;
};

static void scrub_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static const char *env_first(const char *const *names)
{
	for (; *names; names++) {
		const char *v = getenv(*names);
		if (v && *v)
			return v;
	}
	return NULL;
}

static int has_space(const char *s)
{
	for (; *s; s++)
		if (isspace((unsigned char)*s) || (unsigned char)*s < 0x20)
			return 1;
	return 0;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* The profile's keys from an AWS shared credentials file (INI: [profile] then key = value). */
static int read_credentials_file(ev_s3 *c, char *err, size_t errlen)
{
	const char *path = getenv("AWS_SHARED_CREDENTIALS_FILE");
	const char *home = getenv("HOME");
	const char *profile = getenv("AWS_PROFILE");
	char def[4096];
	if (!profile || !*profile)
		profile = "default";
	if (!path || !*path) {
		if (!home || !*home ||
		    snprintf(def, sizeof(def), "%s/.aws/credentials", home) >= (int)sizeof(def))
			return 0;
		path = def;
		if (access(path, F_OK) != 0)
			return 0;
	}
	char msg[256];
	char *text = ev_opt_read_file(path, 1 << 20, msg, sizeof(msg));
	if (!text) {
		snprintf(err, errlen, "cannot read the AWS credentials file '%s'", path);
		return -1;
	}
	int in_section = 0, found = 0, rc = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		line = trim(line);
		if (*line == '#' || *line == ';' || *line == '\0')
			continue;
		if (*line == '[') {
			char *end = strchr(line, ']');
			if (end)
				*end = '\0';
			in_section = strcmp(trim(line + 1), profile) == 0;
			found |= in_section;
			continue;
		}
		char *eq = strchr(line, '=');
		if (!in_section || !eq)
			continue;
		*eq = '\0';
		char *name = trim(line), *value = trim(eq + 1);
		char **slot = strcmp(name, "aws_access_key_id") == 0       ? &c->key_id
			      : strcmp(name, "aws_secret_access_key") == 0 ? &c->secret
			      : strcmp(name, "aws_session_token") == 0     ? &c->token
									   : NULL;
		if (slot && *value) {
			scrub_free(*slot);
			if (!(*slot = strdup(value)))
				rc = -1;
		}
	}
	explicit_bzero(text, strlen(text));
	free(text);
	if (rc < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (!found) {
		snprintf(err, errlen, "no profile '%s' in the AWS credentials file '%s'", profile,
			 path);
		return -1;
	}
	if (!c->key_id || !c->secret) {
		snprintf(err, errlen,
			 "profile '%s' of the AWS credentials file '%s' lacks aws_access_key_id or "
			 "aws_secret_access_key",
			 profile, path);
		return -1;
	}
	return 1;
}

static int read_credentials(ev_s3 *c, char *err, size_t errlen)
{
	const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
	if ((id && *id) || (secret && *secret)) {
		if (!id || !*id || !secret || !*secret) {
			snprintf(err, errlen, "%s is set but %s is not",
				 id && *id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
				 id && *id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
			return -1;
		}
		const char *token = getenv("AWS_SESSION_TOKEN");
		c->key_id = strdup(id);
		c->secret = strdup(secret);
		c->token = token && *token ? strdup(token) : NULL;
		if (!c->key_id || !c->secret || (token && *token && !c->token)) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		return 0;
	}
	int rc = read_credentials_file(c, err, errlen);
	if (rc < 0)
		return -1;
	if (rc == 0) {
		snprintf(
			err, errlen,
			"no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
			"put them in ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE)");
		return -1;
	}
	return 0;
}

/* http[s]://host[:port][/path], without user:password@, query or fragment. */
static int endpoint_ok(const char *ep)
{
	const char *rest = strncmp(ep, "http://", 7) == 0    ? ep + 7
			   : strncmp(ep, "https://", 8) == 0 ? ep + 8
							     : NULL;
	if (!rest || !*rest || *rest == '/' || has_space(ep) || strpbrk(ep, "?#"))
		return 0;
	size_t host_len = strcspn(rest, "/");
	return memchr(rest, '@', host_len) == NULL;
}

ev_s3 *ev_s3_new(const char *bucket, char *err, size_t errlen)
{
	static const char *const endpoint_vars[] = {"S3_ENDPOINT", "AWS_ENDPOINT_URL_S3",
						    "AWS_ENDPOINT_URL", NULL};
	static const char *const region_vars[] = {"AWS_REGION", "AWS_DEFAULT_REGION", NULL};
	const char *region = env_first(region_vars);
	if (!region)
		region = "us-east-1";
	if (has_space(region) || strpbrk(region, ":/")) {
		snprintf(err, errlen, "invalid AWS region '%s'", region);
		return NULL;
	}
	const char *ep = env_first(endpoint_vars);
	if (ep && !endpoint_ok(ep)) {
		snprintf(err, errlen,
			 "invalid S3 endpoint: want http[s]://host[:port] without credentials");
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "cannot initialise libcurl");
		return NULL;
	}
	ev_s3 *c = calloc(1, sizeof(*c));
	if (!c) {
		curl_global_cleanup();
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->retry_ms = 30000;
	c->page_size = 1000;
	ev_backoff_init(&c->backoff, 100, 5000,
			(uint64_t)getpid() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)ev_mono_ns());
	ev_buf e = EV_BUF_INIT, s = EV_BUF_INIT;
	if (ep)
		ev_buf_puts(&e, ep);
	else
		ev_buf_printf(&e, "https://s3.%s.amazonaws.com", region);
	while (e.len > 0 && e.data[e.len - 1] == '/')
		e.len--;
	ev_buf_printf(&s, "aws:amz:%s:s3", region);
	c->endpoint = ev_buf_cstr(&e) ? strdup(e.data) : NULL;
	c->sigv4 = ev_buf_cstr(&s) ? strdup(s.data) : NULL;
	ev_buf_free(&e);
	ev_buf_free(&s);
	c->bucket = strdup(bucket);
	c->region = strdup(region);
	c->curl = curl_easy_init();
	if (!c->endpoint || !c->sigv4 || !c->bucket || !c->region || !c->curl) {
		ev_s3_free(c);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (read_credentials(c, err, errlen) < 0) {
		ev_s3_free(c);
		return NULL;
	}
	if (has_space(c->key_id) || has_space(c->secret) || (c->token && has_space(c->token))) {
		ev_s3_free(c);
		snprintf(err, errlen, "the AWS credentials contain blanks or control characters");
		return NULL;
	}
	return c;
}

void ev_s3_free(ev_s3 *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	scrub_free(c->key_id);
	scrub_free(c->secret);
	scrub_free(c->token);
	free(c->bucket);
	free(c->endpoint);
	free(c->region);
	free(c->sigv4);
	ev_buf_free(&c->url);
	ev_buf_free(&c->body);
	ev_buf_free(&c->scratch);
	free(c);
	curl_global_cleanup();
}

const char *ev_s3_endpoint(const ev_s3 *c)
{
	return c->endpoint;
}

const char *ev_s3_region(const ev_s3 *c)
{
	return c->region;
}

void ev_s3_set_retry(ev_s3 *c, int64_t total_ms)
{
	c->retry_ms = total_ms > 0 ? total_ms : 0;
}

void ev_s3_set_page_size(ev_s3 *c, int n)
{
	c->page_size = n < 1 ? 1 : n > 1000 ? 1000 : n;
}

uint64_t ev_s3_retries(const ev_s3 *c)
{
	return c->retries;
}

int ev_s3_uri_encode(ev_buf *out, const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int rc;
		if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' ||
		    (keep_slash && *p == '/')) {
			rc = ev_buf_putc(out, (char)*p);
		} else {
			char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			rc = ev_buf_append(out, e, 3);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* ---- XML answers: errors and ListObjectsV2 pages (expat) ---- */

struct list_entry {
	char *key;
	uint64_t size;
};

struct xml {
	int depth;
	int root_ok; /* the root element is the one expected */
	const char *root;
	ev_buf text;
	int text_overflow;
	/* <Error> */
	char code[64];
	char message[400];
	/* <ListBucketResult> */
	int in_contents, truncated;
	char *key, *next_token;
	uint64_t size;
	int size_ok;
	struct list_entry *entries;
	size_t n, cap;
	int oom;
};

static void xml_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct xml *x = arg;
	(void)attrs;
	x->depth++;
	ev_buf_reset(&x->text);
	if (x->depth == 1)
		x->root_ok = strcmp(name, x->root) == 0;
	else if (x->depth == 2 && strcmp(name, "Contents") == 0) {
		x->in_contents = 1;
		free(x->key);
		x->key = NULL;
		x->size = 0;
		x->size_ok = 0;
	}
}

static void xml_text(void *arg, const XML_Char *s, int len)
{
	struct xml *x = arg;
	if (x->depth < 2 || len <= 0)
		return;
	if (x->text.len + (size_t)len > MAX_XML_TEXT)
		x->text_overflow = 1;
	else if (ev_buf_append(&x->text, s, (size_t)len) < 0)
		x->oom = 1;
}

static void copy_text(char *dst, size_t dstlen, ev_buf *text)
{
	size_t j = 0;
	for (size_t i = 0; i < text->len && j + 1 < dstlen; i++)
		dst[j++] = text->data[i] == '\n' || text->data[i] == '\r' ? ' ' : text->data[i];
	dst[j] = '\0';
}

static char *text_dup(struct xml *x)
{
	const char *t = ev_buf_cstr(&x->text);
	char *d = t ? strdup(t) : NULL;
	if (!d)
		x->oom = 1;
	return d;
}

/* The <Contents> just closed joins the page's entries. */
static void push_entry(struct xml *x)
{
	if (!x->key || !x->size_ok) {
		x->oom = 1; /* not a listing we understand */
		return;
	}
	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 64;
		struct list_entry *e = reallocarray(x->entries, cap, sizeof(*e));
		if (!e) {
			x->oom = 1;
			return;
		}
		x->entries = e;
		x->cap = cap;
	}
	x->entries[x->n].key = x->key;
	x->entries[x->n++].size = x->size;
	x->key = NULL;
}

static void xml_end(void *arg, const XML_Char *name)
{
	struct xml *x = arg;
	if (x->root_ok && x->depth == 2) {
		if (strcmp(name, "Code") == 0)
			copy_text(x->code, sizeof(x->code), &x->text);
		else if (strcmp(name, "Message") == 0)
			copy_text(x->message, sizeof(x->message), &x->text);
		else if (strcmp(name, "IsTruncated") == 0)
			x->truncated = x->text.len == 4 && memcmp(x->text.data, "true", 4) == 0;
		else if (strcmp(name, "NextContinuationToken") == 0) {
			free(x->next_token);
			x->next_token = text_dup(x);
		} else if (strcmp(name, "Contents") == 0 && x->in_contents) {
			x->in_contents = 0;
			push_entry(x);
		}
	} else if (x->root_ok && x->depth == 3 && x->in_contents) {
		if (strcmp(name, "Key") == 0) {
			free(x->key);
			x->key = text_dup(x);
		} else if (strcmp(name, "Size") == 0) {
			const char *t = ev_buf_cstr(&x->text);
			char *end = NULL;
			errno = 0;
			x->size = t ? strtoull(t, &end, 10) : 0;
			x->size_ok = t && end != t && *end == '\0' && errno == 0;
		}
	}
	ev_buf_reset(&x->text);
	x->depth--;
}

static void xml_free(struct xml *x)
{
	for (size_t i = 0; i < x->n; i++)
		free(x->entries[i].key);
	free(x->entries);
	free(x->key);
	free(x->next_token);
	ev_buf_free(&x->text);
}

/* Parse an answer whose root element should be root. Returns 0, or -1 when it is not
 * well-formed XML with that root. */
static int xml_parse(struct xml *x, const char *root, const char *data, size_t len)
{
	memset(x, 0, sizeof(*x));
	x->root = root;
	XML_Parser p = XML_ParserCreate("UTF-8");
	if (!p)
		return -1;
	XML_SetUserData(p, x);
	XML_SetElementHandler(p, xml_start, xml_end);
	XML_SetCharacterDataHandler(p, xml_text);
	int ok = len <= INT32_MAX && XML_Parse(p, data, (int)len, 1) == XML_STATUS_OK;
	XML_ParserFree(p);
	return ok && x->root_ok && !x->oom && !x->text_overflow ? 0 : -1;
}

/* ---- transfers ---- */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct req *r = arg;
	size_t len = size * n;
	if (r->status == 0)
		curl_easy_getinfo(r->c->curl, CURLINFO_RESPONSE_CODE, &r->status);
	r->body_to_sink = r->status >= 200 && r->status < 300;
	if (r->body_to_sink && r->out)
		return ev_buf_append(r->out, data, len) < 0 ? 0 : len;
	if (r->body_to_sink && r->out_fd >= 0) {
		for (size_t done = 0; done < len;) {
			ssize_t w = pwrite(r->out_fd, data + done, len - done, (off_t)r->out_off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				r->out_errno = w < 0 ? errno : EIO;
				return 0;
			}
			done += (size_t)w;
			r->out_off += (uint64_t)w;
		}
		return len;
	}
	size_t max = r->body_to_sink ? r->out_max : MAX_ERROR_BODY;
	if (r->c->body.len + len > max) {
		r->body_overflow = 1;
		len = max - r->c->body.len;
	}
	if (len > 0 && ev_buf_append(&r->c->body, data, len) < 0)
		return 0;
	return r->body_overflow && r->body_to_sink ? 0 : size * n;
}

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
	struct req *r = arg;
	size_t want = size * n;
	if (want > r->in_size - r->in_off)
		want = (size_t)(r->in_size - r->in_off);
	if (want == 0)
		return 0;
	for (;;) {
		ssize_t got = pread(r->in_fd, buf, want, (off_t)r->in_off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			/* A file that shrank would leave the server waiting for the rest. */
			r->in_errno = got < 0 ? errno : ENODATA;
			return CURL_READFUNC_ABORT;
		}
		r->in_off += (uint64_t)got;
		return (size_t)got;
	}
}

static int on_seek(void *arg, curl_off_t offset, int origin)
{
	struct req *r = arg;
	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > r->in_size)
		return CURL_SEEKFUNC_CANTSEEK;
	r->in_off = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

/* Transfer errors that retrying cannot cure: libcurl's (lib/backoff.h), and here also the
 * local file's I/O failing under a transfer. */
static int curl_error_fatal(CURLcode rc)
{
	return ev_backoff_curl_fatal(rc) || rc == CURLE_READ_ERROR || rc == CURLE_WRITE_ERROR ||
	       rc == CURLE_ABORTED_BY_CALLBACK || rc == CURLE_FILESIZE_EXCEEDED;
}

static int code_transient(const char *code)
{
	static const char *const codes[] = {"SlowDown",         "RequestTimeout",
					    "InternalError",    "ServiceUnavailable",
					    "OperationAborted", NULL};
	for (const char *const *p = codes; *p; p++)
		if (strcmp(code, *p) == 0)
			return 1;
	return 0;
}

static int build_url(ev_s3 *c, const struct req *r)
{
	ev_buf *u = &c->url;
	ev_buf_reset(u);
	int rc = ev_buf_printf(u, "%s/%s", c->endpoint, c->bucket);
	if (r->key) {
		rc |= ev_buf_putc(u, '/');
		rc |= ev_s3_uri_encode(u, r->key, 1);
	}
	if (r->query)
		rc |= ev_buf_printf(u, "?%s", r->query);
	return rc || !ev_buf_cstr(u) ? -1 : 0;
}

static struct curl_slist *add_header(struct curl_slist *h, int *oom, const char *name,
				     const char *value)
{
	size_t n = strlen(name) + strlen(value) + 3;
	char *line = malloc(n);
	struct curl_slist *l = NULL;
	if (line) {
		snprintf(line, n, "%s: %s", name, value);
		l = curl_slist_append(h, line);
		explicit_bzero(line, n);
		free(line);
	}
	if (!l)
		*oom = 1;
	return l ? l : h;
}

static void free_headers(struct curl_slist *h)
{
	for (struct curl_slist *p = h; p; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(h);
}

/* The reason phrase of an answer without a body (a HEAD's): " Forbidden", or "". */
static const char *reason(long status)
{
	switch (status) {
	case 301: return " Moved Permanently (the bucket is in another region?)";
	case 400: return " Bad Request";
	case 401: return " Unauthorized";
	case 403: return " Forbidden";
	case 404: return " Not Found";
	case 405: return " Method Not Allowed";
	case 409: return " Conflict";
	case 412: return " Precondition Failed";
	case 429: return " Too Many Requests";
	case 500: return " Internal Server Error";
	case 502: return " Bad Gateway";
	case 503: return " Service Unavailable";
	case 504: return " Gateway Timeout";
	default: return "";
	}
}

/* Outcome of one attempt. */
enum attempt { ATTEMPT_OK, ATTEMPT_RETRY, ATTEMPT_FAIL };

static enum attempt attempt_once(ev_s3 *c, struct req *r, const char *payload_hash, char *msg,
				 size_t msglen)
{
	CURL *h = c->curl;
	curl_easy_reset(h);
	ev_buf_reset(&c->body);
	c->curl_err[0] = '\0';
	r->status = 0;
	r->body_to_sink = 0;
	r->body_overflow = 0;
	r->in_off = 0;
	r->in_errno = 0;
	r->out_off = 0;
	r->out_errno = 0;
	if (r->out)
		ev_buf_reset(r->out);
	if (r->out_fd >= 0 && ftruncate(r->out_fd, 0) < 0) {
		snprintf(msg, msglen, "cannot truncate the download: %s", strerror(errno));
		return ATTEMPT_FAIL;
	}
	int oom = 0;
	struct curl_slist *hd = add_header(NULL, &oom, "x-amz-content-sha256", payload_hash);
	if (c->token)
		hd = add_header(hd, &oom, "x-amz-security-token", c->token);
	if (strcmp(r->method, "PUT") == 0)
		hd = add_header(hd, &oom, "Content-Type", "application/octet-stream");
	if (oom) {
		free_headers(hd);
		snprintf(msg, msglen, "out of memory");
		return ATTEMPT_FAIL;
	}
	curl_easy_setopt(h, CURLOPT_URL, c->url.data);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "evpipe/" EVPIPE_VERSION);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_err);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	/* A stalled transfer fails (and is retried) rather than hangs; a large one may take long. */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4);
	curl_easy_setopt(h, CURLOPT_USERNAME, c->key_id);
	curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	if (strcmp(r->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(r->method, "DELETE") == 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
	} else if (strcmp(r->method, "PUT") == 0 && r->in_fd >= 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, r);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, r);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->in_size);
	} else if (strcmp(r->method, "PUT") == 0) {
		/* From memory as a "POST" renamed PUT: no Expect: 100-continue round trip for
		 * small bodies. */
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->len ? r->data : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
	}
	CURLcode rc = curl_easy_perform(h);
	free_headers(hd);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	if (rc != CURLE_OK) {
		if (r->in_errno)
			snprintf(msg, msglen, "cannot read the file to upload: %s",
				 r->in_errno == ENODATA ? "it shrank while it was sent"
							: strerror(r->in_errno));
		else if (r->out_errno)
			snprintf(msg, msglen, "cannot write the download: %s",
				 strerror(r->out_errno));
		else if (rc == CURLE_WRITE_ERROR && r->body_overflow)
			snprintf(msg, msglen, "the answer is larger than %zu bytes", r->out_max);
		else
			snprintf(msg, msglen, "%s",
				 c->curl_err[0] ? c->curl_err : curl_easy_strerror(rc));
		return r->in_errno || r->out_errno || curl_error_fatal(rc) ? ATTEMPT_FAIL
									   : ATTEMPT_RETRY;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->status >= 200 && r->status < 300)
		return ATTEMPT_OK;
	/* S3's <Error><Code>..</Code><Message>..</Message></Error>; HEAD answers have no body. */
	struct xml x;
	int parsed = c->body.len > 0 && xml_parse(&x, "Error", c->body.data, c->body.len) == 0;
	char code[sizeof(x.code)] = "";
	if (parsed && x.code[0]) {
		snprintf(code, sizeof(code), "%s", x.code);
		snprintf(msg, msglen, "HTTP %ld %s%s%s", r->status, x.code,
			 x.message[0] ? ": " : "", x.message);
	} else if (c->body.len > 0) {
		char line[200];
		size_t j = 0;
		for (size_t i = 0; i < c->body.len && j + 1 < sizeof(line); i++) {
			unsigned char ch = (unsigned char)c->body.data[i];
			line[j++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
		}
		line[j] = '\0';
		snprintf(msg, msglen, "HTTP %ld: %s", r->status, trim(line));
	} else {
		snprintf(msg, msglen, "HTTP %ld%s", r->status, reason(r->status));
	}
	if (c->body.len > 0)
		xml_free(&x);
	/* No such key, an answer the caller sees in r->status: S3's NoSuchKey for GET and DELETE,
	 * any 404 for HEAD (whose answer has no body). A 404 that S3 did not explain (a wrong
	 * endpoint, a proxy) is an error: it must not pass for a missing checkpoint. */
	if (r->status == 404 && strcmp(r->method, "PUT") != 0 &&
	    (strcmp(code, "NoSuchKey") == 0 || strcmp(r->method, "HEAD") == 0))
		return ATTEMPT_OK;
	if (r->status >= 500 || r->status == 429 || code_transient(code))
		return ATTEMPT_RETRY;
	return ATTEMPT_FAIL;
}

/* Run a request with retries. Returns 0 with r->status set (2xx, or 404 for a missing key),
 * or -1 with a message in err. */
static int perform(ev_s3 *c, struct req *r, const char *payload_hash, char *err, size_t errlen)
{
	r->c = c;
	if (r->key && strlen(r->key) > MAX_KEY) {
		snprintf(err, errlen, "the key is longer than %d bytes", MAX_KEY);
		return -1;
	}
	if (build_url(c, r) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	uint64_t t0 = ev_mono_ns();
	ev_retry retry;
	ev_backoff_reset(&c->backoff);
	ev_retry_begin(&retry, &c->backoff, c->retry_ms);
	char msg[512];
	for (int attempts = 1;; attempts++) {
		enum attempt a = attempt_once(c, r, payload_hash, msg, sizeof(msg));
		if (a == ATTEMPT_OK)
			return 0;
		int64_t delay = 0;
		if (a == ATTEMPT_FAIL || !ev_retry_next(&retry, &delay)) {
			if (attempts == 1)
				snprintf(err, errlen, "%s", msg);
			else
				snprintf(err, errlen, "%s (gave up after %d attempts in %.1f s)",
					 msg, attempts, (double)(ev_mono_ns() - t0) / 1e9);
			return -1;
		}
		c->retries++;
		ev_sleep_ms(delay); /* a shutdown signal cuts it short: the next attempt is then
				     * at once, and the budget still holds */
	}
}

static struct req new_req(const char *method, const char *key)
{
	struct req r;
	memset(&r, 0, sizeof(r));
	r.method = method;
	r.key = key;
	r.in_fd = -1;
	r.out_fd = -1;
	r.out_max = MAX_ERROR_BODY;
	return r;
}

int ev_s3_put(ev_s3 *c, const char *key, const void *data, size_t len, char *err, size_t errlen)
{
	struct req r = new_req("PUT", key);
	r.data = data;
	r.len = len;
	char hash[65];
	if (ev_sha256_hex(data, len, hash) < 0) {
		snprintf(err, errlen, "cannot compute SHA-256");
		return -1;
	}
	return perform(c, &r, hash, err, errlen);
}

int ev_s3_put_fd(ev_s3 *c, const char *key, int fd, uint64_t size, char *err, size_t errlen)
{
	if (size > MAX_PUT_SIZE) {
		snprintf(err, errlen, "%" PRIu64 " bytes is more than a single PUT takes (5 GiB)",
			 size);
		return -1;
	}
	struct req r = new_req("PUT", key);
	r.in_fd = fd;
	r.in_size = size;
	return perform(c, &r, "UNSIGNED-PAYLOAD", err, errlen);
}

int ev_s3_get(ev_s3 *c, const char *key, ev_buf *out, int fd, char *err, size_t errlen)
{
	struct req r = new_req("GET", key);
	r.out = out;
	r.out_fd = out ? -1 : fd;
	if (perform(c, &r, EMPTY_SHA256, err, errlen) < 0)
		return -1;
	if (r.status == 404) {
		if (out)
			ev_buf_reset(out);
		else if (ftruncate(fd, 0) < 0) {
			snprintf(err, errlen, "cannot truncate the download: %s", strerror(errno));
			return -1;
		}
		return 0;
	}
	return 1;
}

int ev_s3_head(ev_s3 *c, const char *key, uint64_t *size, char *err, size_t errlen)
{
	struct req r = new_req("HEAD", key);
	if (perform(c, &r, EMPTY_SHA256, err, errlen) < 0)
		return -1;
	if (r.status == 404)
		return 0;
	curl_off_t len = -1;
	if (curl_easy_getinfo(c->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len) != CURLE_OK ||
	    len < 0) {
		snprintf(err, errlen, "the answer to HEAD has no Content-Length");
		return -1;
	}
	if (size)
		*size = (uint64_t)len;
	return 1;
}

int ev_s3_delete(ev_s3 *c, const char *key, char *err, size_t errlen)
{
	struct req r = new_req("DELETE", key);
	return perform(c, &r, EMPTY_SHA256, err, errlen);
}

int ev_s3_list(ev_s3 *c, const char *prefix, int (*fn)(const char *key, uint64_t size, void *arg),
	       void *arg, char *err, size_t errlen)
{
	char *token = NULL;
	ev_buf *q = &c->scratch;
	int rc = 0;
	for (;;) {
		/* Parameters in the canonical order (by name), values encoded: libcurl signs the
		 * query as it is given. */
		ev_buf_reset(q);
		int bad = 0;
		if (token) {
			bad |= ev_buf_puts(q, "continuation-token=");
			bad |= ev_s3_uri_encode(q, token, 0);
			bad |= ev_buf_putc(q, '&');
		}
		bad |= ev_buf_printf(q, "list-type=2&max-keys=%d&prefix=", c->page_size);
		bad |= ev_s3_uri_encode(q, prefix, 0);
		if (bad || !ev_buf_cstr(q)) {
			snprintf(err, errlen, "out of memory");
			rc = -1;
			break;
		}
		struct req r = new_req("GET", NULL);
		r.query = q->data;
		r.out_max = MAX_LIST_BODY;
		if (perform(c, &r, EMPTY_SHA256, err, errlen) < 0) {
			rc = -1;
			break;
		}
		struct xml x;
		if (r.status != 200 ||
		    xml_parse(&x, "ListBucketResult", c->body.data ? c->body.data : "",
			      c->body.len) < 0) {
			if (r.status == 200)
				xml_free(&x);
			snprintf(err, errlen,
				 "the answer to ListObjectsV2 is not a listing (HTTP %ld)",
				 r.status);
			rc = -1;
			break;
		}
		for (size_t i = 0; i < x.n && rc == 0; i++)
			rc = fn(x.entries[i].key, x.entries[i].size, arg);
		free(token);
		token = x.truncated ? x.next_token : NULL;
		if (x.truncated)
			x.next_token = NULL;
		xml_free(&x);
		if (rc != 0)
			break;
		if (!token) {
			if (x.truncated) {
				snprintf(err, errlen,
					 "a truncated listing has no continuation token");
				rc = -1;
			}
			break;
		}
	}
	free(token);
	return rc;
}
