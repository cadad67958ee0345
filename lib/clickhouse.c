/* SPDX-License-Identifier: Apache-2.0 */
/* clickhouse.c: ClickHouse's HTTP interface: statements and inserts over one kept-alive
 * connection, and what an error answer means for the rows that were sent. */
#include "clickhouse.h"

#include <ctype.h>
#include <curl/curl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backoff.h"
#include "clock.h"
#include "codec.h"

#define MAX_ANSWER (64 * 1024) /* an error text is short; a longer answer is cut */

struct ev_ch {
	CURL *curl;
	char *base_url;
	char *user;
	char *password;
	struct curl_slist *headers, *headers_gzip;
	ev_buf url;
	ev_buf answer;
	char code_header[32];
	char curl_err[CURL_ERROR_SIZE];
	uint64_t connections;
	int (*abort_fn)(void *arg);
	void *abort_arg;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	ev_ch *ch = arg;
	size_t len = size * n, room = MAX_ANSWER - ch->answer.len;
	if (len > room)
		len = room;
	if (len > 0 && ev_buf_append(&ch->answer, data, len) < 0)
		return 0;
	return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	ev_ch *ch = arg;
	static const char name[] = "X-ClickHouse-Exception-Code:";
	size_t len = size * n;
	if (len > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
		size_t vlen = len - (sizeof(name) - 1);
		if (vlen >= sizeof(ch->code_header))
			vlen = sizeof(ch->code_header) - 1;
		memcpy(ch->code_header, data + sizeof(name) - 1, vlen);
		ch->code_header[vlen] = '\0';
	}
	return len;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	ev_ch *ch = arg;
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return ch->abort_fn && ch->abort_fn(ch->abort_arg) ? 1 : 0;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

ev_ch *ev_ch_new(const ev_ch_opts *o, char *err, size_t errlen)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "cannot initialise libcurl");
		return NULL;
	}
	ev_ch *ch = calloc(1, sizeof(*ch));
	if (!ch) {
		curl_global_cleanup();
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ch->curl = curl_easy_init();
	ch->base_url = strdup(o->url);
	ch->user = dup_or_null(o->user);
	ch->password = dup_or_null(o->password);
	/* No "Expect: 100-continue" round trip before a large body. */
	ch->headers = curl_slist_append(NULL, "Expect:");
	ch->headers_gzip = curl_slist_append(NULL, "Expect:");
	if (ch->headers_gzip)
		ch->headers_gzip = curl_slist_append(ch->headers_gzip, "Content-Encoding: gzip");
	if (!ch->curl || !ch->base_url || (o->user && !ch->user) ||
	    (o->password && !ch->password) || !ch->headers || !ch->headers_gzip) {
		ev_ch_free(ch);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	CURL *c = ch->curl;
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "evpipe/" EVPIPE_VERSION);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ch->curl_err);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, ch);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, ch);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, ch);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (o->timeout_ms > 0)
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
	if (o->connect_timeout_ms > 0)
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)o->connect_timeout_ms);
	if (ch->user || ch->password) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, ch->user ? ch->user : "default");
		curl_easy_setopt(c, CURLOPT_PASSWORD, ch->password ? ch->password : "");
	}
	return ch;
}

void ev_ch_free(ev_ch *ch)
{
	if (!ch)
		return;
	if (ch->curl)
		curl_easy_cleanup(ch->curl);
	curl_slist_free_all(ch->headers);
	curl_slist_free_all(ch->headers_gzip);
	if (ch->password) {
		explicit_bzero(ch->password, strlen(ch->password));
		free(ch->password);
	}
	free(ch->user);
	free(ch->base_url);
	ev_buf_free(&ch->url);
	ev_buf_free(&ch->answer);
	free(ch);
	curl_global_cleanup();
}

void ev_ch_set_abort(ev_ch *ch, int (*fn)(void *arg), void *arg)
{
	ch->abort_fn = fn;
	ch->abort_arg = arg;
}

uint64_t ev_ch_connections(const ev_ch *ch)
{
	return ch->connections;
}

/* ClickHouse's error text on one line: newlines become spaces; the trailing
 * ", e.what() = DB::Exception" of old servers and trailing blanks go. */
static void one_line(char *out, size_t outlen, const char *s, size_t n)
{
	const char *what = memmem(s, n, ", e.what() = ", 13);
	if (what)
		n = (size_t)(what - s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	size_t j = 0;
	for (size_t i = 0; i < n && j + 1 < outlen; i++)
		out[j++] = s[i] == '\n' || s[i] == '\r' || s[i] == '\t' ? ' ' : s[i];
	out[j] = '\0';
}

static int build_url(ev_ch *ch, const char *query)
{
	ev_buf_reset(&ch->url);
	int rc = ev_buf_puts(&ch->url, ch->base_url);
	if (query) {
		char *esc = curl_easy_escape(ch->curl, query, (int)strlen(query));
		if (!esc)
			return -1;
		rc |= ev_buf_printf(&ch->url, "%squery=%s", strchr(ch->base_url, '?') ? "&" : "?",
				    esc);
		curl_free(esc);
	}
	return rc || !ev_buf_cstr(&ch->url) ? -1 : 0;
}

enum ev_ch_verdict ev_ch_post(ev_ch *ch, const char *query, const void *body, size_t len, int gzip,
			      ev_ch_result *res)
{
	memset(res, 0, sizeof(*res));
	ev_buf_reset(&ch->answer);
	ch->code_header[0] = '\0';
	ch->curl_err[0] = '\0';
	if (build_url(ch, query) < 0) {
		snprintf(res->message, sizeof(res->message), "out of memory");
		return res->verdict = EV_CH_FATAL;
	}
	CURL *c = ch->curl;
	curl_easy_setopt(c, CURLOPT_URL, ch->url.data);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, len ? body : "");
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, gzip ? ch->headers_gzip : ch->headers);
	uint64_t t0 = ev_mono_ns();
	CURLcode rc = curl_easy_perform(c);
	res->ns = ev_mono_ns() - t0;
	long connects = 0;
	if (curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects > 0)
		ch->connections += (uint64_t)connects;
	if (rc != CURLE_OK) {
		snprintf(res->message, sizeof(res->message), "%s",
			 ch->curl_err[0] ? ch->curl_err : curl_easy_strerror(rc));
		return res->verdict = ev_backoff_curl_fatal(rc) ? EV_CH_FATAL : EV_CH_RETRY;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
	/* A query that fails after its headers were sent still names its exception. */
	if (res->status >= 200 && res->status < 300 &&
	    ev_ch_exception_code(ch->code_header[0] ? ch->code_header : NULL, "", 0) == 0)
		return res->verdict = EV_CH_OK;
	if (res->status >= 200 && res->status < 300)
		res->status = 500;
	const char *text = ev_buf_cstr(&ch->answer);
	res->code = ev_ch_exception_code(ch->code_header[0] ? ch->code_header : NULL,
					 text ? text : "", ch->answer.len);
	char line[sizeof(res->message)];
	one_line(line, sizeof(line), text ? text : "", ch->answer.len);
	if (res->code)
		snprintf(res->message, sizeof(res->message), "%s", line);
	else
		snprintf(res->message, sizeof(res->message), "HTTP %ld%s%.400s", res->status,
			 line[0] ? ": " : "", line);
	/* Cut where a multi-byte character was cut, or where the answer stops being UTF-8. */
	res->message[ev_utf8_valid_prefix(res->message, strlen(res->message))] = '\0';
	return res->verdict = ev_ch_classify(res->status, res->code);
}

const char *ev_ch_answer(const ev_ch *ch, size_t *len)
{
	*len = ch->answer.len;
	return ch->answer.data ? ch->answer.data : "";
}

int ev_ch_exception_code(const char *header, const char *body, size_t len)
{
	const char *p;
	if (header) {
		p = header;
		while (*p == ' ' || *p == '\t')
			p++;
		int code = atoi(p);
		if (code > 0)
			return code;
	}
	size_t i = 0;
	while (i < len && isspace((unsigned char)body[i]))
		i++;
	if (len - i < 7 || strncmp(body + i, "Code: ", 6) != 0)
		return 0;
	int code = 0;
	for (i += 6; i < len && isdigit((unsigned char)body[i]) && code < 100000; i++)
		code = code * 10 + (body[i] - '0');
	return code;
}

/* Codes of a row that cannot be read or converted into its column: parse, type and range
 * errors (ClickHouse's own isParseError() list, with those of older servers). */
static const int content_codes[] = {
	6,   /* CANNOT_PARSE_TEXT */
	16,  /* NO_SUCH_COLUMN_IN_TABLE */
	19,  /* SIZE_OF_FIXED_STRING_DOESNT_MATCH */
	25,  /* CANNOT_PARSE_ESCAPE_SEQUENCE */
	26,  /* CANNOT_PARSE_QUOTED_STRING */
	27,  /* CANNOT_PARSE_INPUT_ASSERTION_FAILED */
	32,  /* ATTEMPT_TO_READ_AFTER_EOF */
	33,  /* CANNOT_READ_ALL_DATA */
	38,  /* CANNOT_PARSE_DATE */
	41,  /* CANNOT_PARSE_DATETIME */
	53,  /* TYPE_MISMATCH */
	69,  /* ARGUMENT_OUT_OF_BOUND */
	70,  /* CANNOT_CONVERT_TYPE */
	72,  /* CANNOT_PARSE_NUMBER */
	117, /* INCORRECT_DATA */
	128, /* TOO_LARGE_ARRAY_SIZE */
	130, /* CANNOT_READ_ARRAY_FROM_TEXT */
	131, /* TOO_LARGE_STRING_SIZE */
	190, /* SIZES_OF_ARRAYS_DOESNT_MATCH */
	321, /* VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE */
	349, /* CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN */
	376, /* CANNOT_PARSE_UUID */
	407, /* DECIMAL_OVERFLOW */
	441, /* CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING */
	467, /* CANNOT_PARSE_BOOL */
	563, /* CANNOT_READ_MAP_FROM_TEXT */
	632, /* UNEXPECTED_DATA_AFTER_PARSED_VALUE */
	675, /* CANNOT_PARSE_IPV4 */
	676, /* CANNOT_PARSE_IPV6 */
	691, /* UNKNOWN_ELEMENT_OF_ENUM */
};

/* Codes of a request that cannot succeed as configured. */
static const int fatal_codes[] = {
	1,   /* UNSUPPORTED_METHOD */
	2,   /* UNSUPPORTED_PARAMETER */
	46,  /* UNKNOWN_FUNCTION */
	47,  /* UNKNOWN_IDENTIFIER */
	48,  /* NOT_IMPLEMENTED */
	56,  /* UNKNOWN_STORAGE */
	60,  /* UNKNOWN_TABLE */
	62,  /* SYNTAX_ERROR */
	73,  /* UNKNOWN_FORMAT */
	80,  /* INCORRECT_QUERY */
	81,  /* UNKNOWN_DATABASE */
	115, /* UNKNOWN_SETTING */
	164, /* READONLY */
	192, /* UNKNOWN_USER */
	193, /* WRONG_PASSWORD */
	194, /* REQUIRED_PASSWORD */
	195, /* IP_ADDRESS_NOT_ALLOWED */
	291, /* DATABASE_ACCESS_DENIED */
	452, /* SETTING_CONSTRAINT_VIOLATION */
	471, /* INVALID_SETTING_VALUE */
	472, /* READONLY_SETTING */
	497, /* ACCESS_DENIED */
	516, /* AUTHENTICATION_FAILED */
};

static int in_list(const int *list, size_t n, int code)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == code)
			return 1;
	return 0;
}

enum ev_ch_verdict ev_ch_classify(long status, int code)
{
	if (status >= 200 && status < 300)
		return EV_CH_OK;
	if (code > 0) {
		if (in_list(content_codes, sizeof(content_codes) / sizeof(content_codes[0]), code))
			return EV_CH_REJECTED;
		if (in_list(fatal_codes, sizeof(fatal_codes) / sizeof(fatal_codes[0]), code))
			return EV_CH_FATAL;
	}
	if (status == 408 || status == 429 || status >= 500 || status < 100)
		return EV_CH_RETRY;
	if (status == 413 && code == 0)
		return EV_CH_REJECTED; /* too large for a proxy: halves will pass */
	return EV_CH_FATAL;            /* another 4xx: the request itself is wrong */
}

const char *ev_ch_verdict_name(enum ev_ch_verdict v)
{
	switch (v) {
	case EV_CH_OK: return "ok";
	case EV_CH_REJECTED: return "rejected";
	case EV_CH_RETRY: return "retry";
	case EV_CH_FATAL: return "fatal";
	}
	return "unknown";
}

/* True when the query string q has a parameter named name. */
static int has_param(const char *q, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL)
		if (strncasecmp(p, name, n) == 0 && p[n] == '=')
			return 1;
	return 0;
}

int ev_ch_check_url(const char *url, char *err, size_t errlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *user = NULL, *password = NULL, *query = NULL;
	int rc = -1;
	if (!u) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
		snprintf(err, errlen, "not a URL: want http[s]://host:port[/path]");
		goto out;
	}
	curl_url_get(u, CURLUPART_USER, &user, 0);
	curl_url_get(u, CURLUPART_PASSWORD, &password, 0);
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)
		snprintf(err, errlen, "unsupported URL scheme '%s': want http or https", scheme);
	else if (user || password || has_param(query, "user") || has_param(query, "password"))
		snprintf(err, errlen,
			 "credentials in the URL are refused: use $CLICKHOUSE_USER and "
			 "$CLICKHOUSE_PASSWORD or --password-file");
	else
		rc = 0;
out:
	curl_free(scheme);
	curl_free(user);
	curl_free(password);
	curl_free(query);
	curl_url_cleanup(u);
	return rc;
}

static int identifier_ok(const char *s, size_t n)
{
	if (n == 0 || isdigit((unsigned char)s[0]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return 0;
	return 1;
}

int ev_ch_table_name_ok(const char *name)
{
	const char *dot = strchr(name, '.');
	if (!dot)
		return identifier_ok(name, strlen(name));
	return identifier_ok(name, (size_t)(dot - name)) && identifier_ok(dot + 1, strlen(dot + 1));
}

/* JSON's blanks: a '\r' is one too (a line that ended in "\r\r\n" keeps one). */
static int json_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

const char *ev_ch_row_check(const char *line, size_t len)
{
	size_t i = 0, n = len;
	while (i < n && json_blank(line[i]))
		i++;
	while (n > i && json_blank(line[n - 1]))
		n--;
	if (n - i < 2 || line[i] != '{' || line[n - 1] != '}')
		return "not a JSON object";
	if (!ev_utf8_valid(line, len))
		return "not valid UTF-8";
	return NULL;
}
