/* SPDX-License-Identifier: Apache-2.0 */
/* clickhouse.h: ClickHouse's HTTP interface: statements and inserts over one kept-alive
 * connection, and what an error answer means for the rows that were sent. */
#ifndef EV_CLICKHOUSE_H
#define EV_CLICKHOUSE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* What to do after an answer. */
enum ev_ch_verdict {
	EV_CH_OK = 0,
	EV_CH_REJECTED, /* the rows were refused for their content: find the bad ones */
	EV_CH_RETRY,    /* the server or the network failed: the same request may pass later */
	EV_CH_FATAL,    /* configuration (auth, unknown table, syntax): retrying cannot help */
};

typedef struct ev_ch_opts {
	const char *url;      /* http[s]://host:port[/path][?settings], without credentials */
	const char *user;     /* NULL: the server's default user */
	const char *password; /* NULL: none; never logged */
	int64_t timeout_ms;   /* a whole request; 0: no limit */
	int64_t connect_timeout_ms;
} ev_ch_opts;

typedef struct ev_ch_result {
	enum ev_ch_verdict verdict;
	long status;       /* HTTP status; 0 when there was no answer */
	int code;          /* ClickHouse's exception code; 0 when none */
	char message[512]; /* ClickHouse's error text on one line (UTF-8), or the transfer's */
	uint64_t ns;       /* how long the request took */
} ev_ch_result;

typedef struct ev_ch ev_ch;

/* A client for the server at o->url (the strings are copied). Returns NULL with a message
 * in err. */
ev_ch *ev_ch_new(const ev_ch_opts *o, char *err, size_t errlen);
/* Frees the client; its copy of the password is scrubbed first. */
void ev_ch_free(ev_ch *ch);
/* Abandon a transfer in progress (as a retryable failure) when fn(arg) returns non-zero;
 * fn is called on transfer progress and about once a second. */
void ev_ch_set_abort(ev_ch *ch, int (*fn)(void *arg), void *arg);

/* POST body to the server: with query non-NULL as ?query=<query> (an INSERT ... FORMAT ...
 * whose data is the body), otherwise the body is the statement. gzip: the body is gzip
 * (sent with Content-Encoding: gzip). Fills res; returns res->verdict. */
enum ev_ch_verdict ev_ch_post(ev_ch *ch, const char *query, const void *body, size_t len, int gzip,
			      ev_ch_result *res);
/* The body of the last answer (at most 64 KiB), e.g. a statement's result. */
const char *ev_ch_answer(const ev_ch *ch, size_t *len);
/* Connections opened so far (1 while keep-alive holds). */
uint64_t ev_ch_connections(const ev_ch *ch);

/* ClickHouse's exception code, from the X-ClickHouse-Exception-Code header (NULL when
 * absent) or the "Code: NN" that starts the body; 0 when neither has one. */
int ev_ch_exception_code(const char *header, const char *body, size_t len);
/* The verdict for an HTTP status and an exception code (0: none). */
enum ev_ch_verdict ev_ch_classify(long status, int code);
const char *ev_ch_verdict_name(enum ev_ch_verdict v);

/* 0 when url is an http(s) URL that carries no credentials (user:password@, user= or
 * password= in the query), so that secrets never sit on a command line. Otherwise -1 with a
 * message that does not repeat the URL. */
int ev_ch_check_url(const char *url, char *err, size_t errlen);
/* True for a table name a query can take as it is: name or db.name, each of [A-Za-z0-9_]
 * and not starting with a digit. */
int ev_ch_table_name_ok(const char *name);

/* Why a line cannot be a JSONEachRow row (NULL when it may be one): "not a JSON object" unless
 * it begins with '{' and ends with '}' (JSON's blanks aside), "not valid UTF-8". Only what is cheap
 * to see: ClickHouse parses every row anyway, and one that looks like an object but is
 * malformed is refused there (and bisected out with ClickHouse's words); parsing every row here
 * only to check it cost more CPU than the whole insert (about 3 s per million rows with
 * jansson). Every line that a JSON parser reads as an object passes. */
const char *ev_ch_row_check(const char *line, size_t len);

#endif
