/* SPDX-License-Identifier: Apache-2.0 */
/* scrape.c: reading another tool's /metrics: the page over HTTP, the series in its text. */
#include "scrape.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ev_scrape_url(const char *addr, char *url, size_t urllen, char *err, size_t errlen)
{
	if (strncmp(addr, "http://", 7) == 0 || strncmp(addr, "https://", 8) == 0) {
		snprintf(url, urllen, "%s", addr);
		return 0;
	}
	const char *colon = strrchr(addr, ':');
	const char *port = colon ? colon + 1 : addr;
	size_t digits = strspn(port, "0123456789");
	if (!*port || port[digits] || digits > 5 || (colon && colon == addr)) {
		snprintf(err, errlen, "'%s' is not [HOST:]PORT or a URL", addr);
		return -1;
	}
	if (colon)
		snprintf(url, urllen, "http://%.*s:%s/metrics", (int)(colon - addr), addr, port);
	else
		snprintf(url, urllen, "http://127.0.0.1:%s/metrics", port);
	return 0;
}

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
	return ev_buf_append(arg, data, size * n) < 0 ? 0 : size * n;
}

int ev_scrape_get(const char *url, ev_buf *body, long timeout_ms, char *err, size_t errlen)
{
	CURL *c = curl_easy_init();
	long status = 0;
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ev_buf_reset(body);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s", curl_easy_strerror(rc));
		return -1;
	}
	if (status != 200) {
		snprintf(err, errlen, "HTTP status %ld", status);
		return -1;
	}
	return 0;
}

/* The next sample line of text from *p: its metric name [name, name_end), labels [labels,
 * labels_end) (empty without braces) and value. Returns 1, or 0 at the end. */
struct sample {
	const char *name, *name_end, *labels, *labels_end;
	double value;
};

static int next_sample(const char **p, const char *end, struct sample *s)
{
	while (*p < end) {
		const char *line = *p;
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			eol = end;
		*p = eol < end ? eol + 1 : end;
		if (line == eol || *line == '#')
			continue;
		s->name = line;
		s->name_end = line + strcspn(line, "{ \n");
		if (s->name_end > eol)
			continue;
		s->labels = s->labels_end = s->name_end;
		const char *v = s->name_end;
		if (*v == '{') {
			s->labels = v + 1;
			const char *close = memchr(v, '}', (size_t)(eol - v));
			if (!close)
				continue;
			s->labels_end = close;
			v = close + 1;
		}
		char num[64];
		size_t n =
			(size_t)(eol - v) < sizeof(num) - 1 ? (size_t)(eol - v) : sizeof(num) - 1;
		memcpy(num, v, n);
		num[n] = 0;
		char *e;
		s->value = strtod(num, &e);
		if (e == num)
			continue;
		return 1;
	}
	return 0;
}

static int named(const struct sample *s, const char *name)
{
	size_t n = strlen(name);
	return (size_t)(s->name_end - s->name) == n && memcmp(s->name, name, n) == 0;
}

static const char *find(const char *hay, const char *hay_end, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = hay; p + n <= hay_end; p++)
		if (memcmp(p, needle, n) == 0)
			return p;
	return NULL;
}

int ev_scrape_sum(const char *text, size_t len, const char *name, const char *label, double *sum)
{
	const char *p = text, *end = text + len;
	struct sample s;
	int n = 0;
	*sum = 0;
	while (next_sample(&p, end, &s))
		if (named(&s, name) && (!label || find(s.labels, s.labels_end, label))) {
			*sum += s.value;
			n++;
		}
	return n;
}

int ev_scrape_label(const char *text, size_t len, const char *name, const char *label, char *out,
		    size_t outlen)
{
	const char *p = text, *end = text + len;
	struct sample s;
	char key[128];
	snprintf(key, sizeof(key), "%s=\"", label);
	if (outlen)
		out[0] = 0;
	while (next_sample(&p, end, &s)) {
		if (!named(&s, name))
			continue;
		const char *at = find(s.labels, s.labels_end, key);
		/* the label itself, not one whose name ends with it */
		while (at && at > s.labels && at[-1] != ',')
			at = find(at + 1, s.labels_end, key);
		if (!at)
			return -1;
		at += strlen(key);
		const char *q = memchr(at, '"', (size_t)(s.labels_end - at));
		if (!q)
			return -1;
		snprintf(out, outlen, "%.*s", (int)(q - at), at);
		return 0;
	}
	return -1;
}
