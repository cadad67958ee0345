/* SPDX-License-Identifier: Apache-2.0 */
/* metrics.c: a registry of counters, gauges and histograms, served in Prometheus text format. */
#include "metrics.h"

#include <arpa/inet.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum metric_kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

struct ev_metric {
	struct ev_metric *next;
	enum metric_kind kind;
	int seconds; /* counter kept in nanoseconds */
	char *name;
	char *help;
	char *labels;
	_Atomic uint64_t value; /* counter value, or gauge bits */
	/* histogram */
	size_t nbounds;
	double *bounds;
	_Atomic uint64_t *buckets; /* nbounds + 1, non-cumulative */
	_Atomic uint64_t sum_bits;
	_Atomic uint64_t count;
};

struct ev_metrics {
	pthread_mutex_t lock;
	char *tool;
	char *job;
	struct ev_metric *head;
	struct ev_metric **tail;
	struct MHD_Daemon *daemon;
	int port;
	char host[64];
};

static uint64_t dbl_bits(double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof(u));
	return u;
}

static double bits_dbl(uint64_t u)
{
	double d;
	memcpy(&d, &u, sizeof(d));
	return d;
}

ev_metrics *ev_metrics_new(const char *tool, const char *job)
{
	ev_metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	m->tool = strdup(tool);
	m->job = strdup(job ? job : "evpipe");
	m->tail = &m->head;
	if (!m->tool || !m->job) {
		ev_metrics_free(m);
		return NULL;
	}
	return m;
}

static void metric_free(struct ev_metric *x)
{
	if (!x)
		return;
	free(x->name);
	free(x->help);
	free(x->labels);
	free(x->bounds);
	free((void *)x->buckets);
	free(x);
}

void ev_metrics_free(ev_metrics *m)
{
	if (!m)
		return;
	if (m->daemon)
		MHD_stop_daemon(m->daemon);
	struct ev_metric *x = m->head;
	while (x) {
		struct ev_metric *next = x->next;
		metric_free(x);
		x = next;
	}
	pthread_mutex_destroy(&m->lock);
	free(m->tool);
	free(m->job);
	free(m);
}

static struct ev_metric *metric_get(ev_metrics *m, enum metric_kind kind, const char *name,
				    const char *help, const char *labels, const double *bounds,
				    size_t nbounds)
{
	const char *l = labels ? labels : "";
	pthread_mutex_lock(&m->lock);
	for (struct ev_metric *x = m->head; x; x = x->next)
		if (strcmp(x->name, name) == 0 && strcmp(x->labels, l) == 0) {
			pthread_mutex_unlock(&m->lock);
			return x;
		}
	struct ev_metric *x = calloc(1, sizeof(*x));
	if (!x)
		goto fail;
	x->kind = kind;
	x->name = strdup(name);
	x->help = strdup(help ? help : "");
	x->labels = strdup(l);
	if (!x->name || !x->help || !x->labels)
		goto fail;
	if (kind == KIND_HISTOGRAM) {
		x->nbounds = nbounds;
		x->bounds = malloc((nbounds ? nbounds : 1) * sizeof(double));
		x->buckets = calloc(nbounds + 1, sizeof(*x->buckets));
		if (!x->bounds || !x->buckets)
			goto fail;
		if (nbounds)
			memcpy(x->bounds, bounds, nbounds * sizeof(double));
	}
	/* Keep a family's series together so that HELP and TYPE are written once. */
	struct ev_metric **pos = m->tail;
	for (struct ev_metric **p = &m->head; *p; p = &(*p)->next)
		if (strcmp((*p)->name, name) == 0)
			pos = &(*p)->next;
	x->next = *pos;
	*pos = x;
	if (!x->next)
		m->tail = &x->next;
	pthread_mutex_unlock(&m->lock);
	return x;
fail:
	pthread_mutex_unlock(&m->lock);
	metric_free(x);
	return NULL;
}

ev_counter *ev_metrics_counter(ev_metrics *m, const char *name, const char *help,
			       const char *labels)
{
	return m ? metric_get(m, KIND_COUNTER, name, help, labels, NULL, 0) : NULL;
}

ev_counter *ev_metrics_counter_seconds(ev_metrics *m, const char *name, const char *help,
				       const char *labels)
{
	ev_counter *c = ev_metrics_counter(m, name, help, labels);
	if (c)
		c->seconds = 1;
	return c;
}

ev_gauge *ev_metrics_gauge(ev_metrics *m, const char *name, const char *help, const char *labels)
{
	return m ? metric_get(m, KIND_GAUGE, name, help, labels, NULL, 0) : NULL;
}

ev_histogram *ev_metrics_histogram(ev_metrics *m, const char *name, const char *help,
				   const char *labels, const double *bounds, size_t nbounds)
{
	return m ? metric_get(m, KIND_HISTOGRAM, name, help, labels, bounds, nbounds) : NULL;
}

void ev_counter_add(ev_counter *c, uint64_t n)
{
	if (c)
		atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

void ev_counter_set(ev_counter *c, uint64_t v)
{
	if (c)
		atomic_store_explicit(&c->value, v, memory_order_relaxed);
}

uint64_t ev_counter_value(const ev_counter *c)
{
	return c ? atomic_load_explicit(&c->value, memory_order_relaxed) : 0;
}

void ev_gauge_set(ev_gauge *g, double v)
{
	if (g)
		atomic_store_explicit(&g->value, dbl_bits(v), memory_order_relaxed);
}

double ev_gauge_value(const ev_gauge *g)
{
	return g ? bits_dbl(atomic_load_explicit(&g->value, memory_order_relaxed)) : 0;
}

int ev_metrics_sum(ev_metrics *m, const char *name, const char *labels, double *sum)
{
	int n = 0;
	*sum = 0;
	if (!m)
		return 0;
	pthread_mutex_lock(&m->lock);
	for (struct ev_metric *x = m->head; x; x = x->next) {
		if (x->kind == KIND_HISTOGRAM || strcmp(x->name, name) != 0 ||
		    (labels && strcmp(x->labels, labels) != 0))
			continue;
		uint64_t v = atomic_load_explicit(&x->value, memory_order_relaxed);
		*sum += x->kind == KIND_GAUGE ? bits_dbl(v)
			: x->seconds          ? (double)v / 1e9
					      : (double)v;
		n++;
	}
	pthread_mutex_unlock(&m->lock);
	return n;
}

void ev_histogram_observe(ev_histogram *h, double v)
{
	if (!h)
		return;
	size_t i = 0;
	while (i < h->nbounds && v > h->bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	uint64_t old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
	while (!atomic_compare_exchange_weak(&h->sum_bits, &old, dbl_bits(bits_dbl(old) + v)))
		;
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void ev_metrics_exp_bounds(double *out, size_t count, double start, double factor)
{
	for (size_t i = 0; i < count; i++, start *= factor)
		out[i] = start;
}

static int put_value(ev_buf *out, double v)
{
	if (isnan(v))
		return ev_buf_puts(out, "NaN");
	if (isinf(v))
		return ev_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
	return ev_buf_printf(out, "%.17g", v);
}

static int put_series(ev_buf *out, const ev_metrics *m, const char *name, const char *suffix,
		      const char *labels, const char *le)
{
	int rc = ev_buf_printf(out, "%s%s{tool=\"%s\",job=\"%s\"", name, suffix, m->tool, m->job);
	if (labels[0])
		rc |= ev_buf_printf(out, ",%s", labels);
	if (le)
		rc |= ev_buf_printf(out, ",le=\"%s\"", le);
	return rc | ev_buf_puts(out, "} ");
}

int ev_metrics_render(ev_metrics *m, ev_buf *out)
{
	static const char *const kinds[] = {"counter", "gauge", "histogram"};
	int rc = 0;
	const char *family = NULL;
	pthread_mutex_lock(&m->lock);
	for (struct ev_metric *x = m->head; x; x = x->next) {
		if (!family || strcmp(family, x->name) != 0) {
			family = x->name;
			rc |= ev_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", x->name, x->help,
					    x->name, kinds[x->kind]);
		}
		uint64_t v = atomic_load_explicit(&x->value, memory_order_relaxed);
		switch (x->kind) {
		case KIND_COUNTER:
			rc |= put_series(out, m, x->name, "", x->labels, NULL);
			if (x->seconds)
				rc |= put_value(out, (double)v / 1e9);
			else
				rc |= ev_buf_printf(out, "%llu", (unsigned long long)v);
			break;
		case KIND_GAUGE:
			rc |= put_series(out, m, x->name, "", x->labels, NULL);
			rc |= put_value(out, bits_dbl(v));
			break;
		case KIND_HISTOGRAM: {
			uint64_t cum = 0;
			for (size_t i = 0; i <= x->nbounds; i++) {
				char le[64];
				if (i < x->nbounds)
					snprintf(le, sizeof(le), "%.17g", x->bounds[i]);
				else
					strcpy(le, "+Inf");
				cum += atomic_load_explicit(&x->buckets[i], memory_order_relaxed);
				rc |= put_series(out, m, x->name, "_bucket", x->labels, le);
				rc |= ev_buf_printf(out, "%llu\n", (unsigned long long)cum);
			}
			rc |= put_series(out, m, x->name, "_sum", x->labels, NULL);
			rc |= put_value(out, bits_dbl(atomic_load(&x->sum_bits)));
			rc |= ev_buf_putc(out, '\n');
			rc |= put_series(out, m, x->name, "_count", x->labels, NULL);
			rc |= ev_buf_printf(out, "%llu", (unsigned long long)cum);
			break;
		}
		}
		rc |= ev_buf_putc(out, '\n');
	}
	pthread_mutex_unlock(&m->lock);
	return rc ? -1 : 0;
}

static enum MHD_Result serve_request(void *cls, struct MHD_Connection *conn, const char *url,
				     const char *method, const char *version, const char *upload,
				     size_t *upload_size, void **state)
{
	ev_metrics *m = cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned status = MHD_HTTP_OK;
	(void)version;
	(void)upload;
	(void)upload_size;
	(void)state;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		static const char msg[] = "method not allowed\n";
		resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
						       MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
	} else if (strcmp(url, "/metrics") == 0) {
		ev_buf body = EV_BUF_INIT;
		if (ev_metrics_render(m, &body) < 0) {
			ev_buf_free(&body);
			return MHD_NO;
		}
		resp = MHD_create_response_from_buffer(body.len, body.data ? body.data : (char *)"",
						       body.data ? MHD_RESPMEM_MUST_FREE
								 : MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(resp, "Content-Type",
					"text/plain; version=0.0.4; charset=utf-8");
	} else if (strcmp(url, "/") == 0 || strcmp(url, "/healthz") == 0) {
		static const char msg[] = "ok\n";
		resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
						       MHD_RESPMEM_PERSISTENT);
	} else {
		static const char msg[] = "not found: try /metrics\n";
		resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
						       MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_NOT_FOUND;
	}
	if (!resp)
		return MHD_NO;
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

int ev_metrics_serve(ev_metrics *m, const char *addr, char *err, size_t errlen)
{
	char host[64] = "127.0.0.1"; /* every interface only when asked: 0.0.0.0:PORT */
	const char *colon = strrchr(addr, ':');
	const char *port_s = colon ? colon + 1 : addr;
	char *end;
	long port = strtol(port_s, &end, 10);
	if (*port_s == '\0' || *end != '\0' || port < 0 || port > 65535) {
		snprintf(err, errlen, "invalid metrics address '%s': want host:port", addr);
		return -1;
	}
	if (colon && colon > addr) {
		size_t n = (size_t)(colon - addr);
		if (n >= sizeof(host)) {
			snprintf(err, errlen, "invalid metrics address '%s'", addr);
			return -1;
		}
		memcpy(host, addr, n);
		host[n] = '\0';
		if (strcmp(host, "localhost") == 0)
			strcpy(host, "127.0.0.1");
	}
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		snprintf(err, errlen, "invalid metrics address '%s': host must be an IPv4 address",
			 addr);
		return -1;
	}
	m->daemon =
		MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
				 serve_request, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				 MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (!m->daemon) {
		snprintf(err, errlen,
			 "cannot serve metrics on '%s': address in use or not permitted", addr);
		return -1;
	}
	const union MHD_DaemonInfo *info =
		MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_BIND_PORT);
	m->port = info ? info->port : (int)port;
	snprintf(m->host, sizeof(m->host), "%s", host);
	return 0;
}

const char *ev_metrics_host(const ev_metrics *m)
{
	return m->host;
}

int ev_metrics_port(const ev_metrics *m)
{
	return m->port;
}
