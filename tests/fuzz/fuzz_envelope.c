/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_envelope.c: libFuzzer harness for kin -P -J's envelope reader (ev_kafka_envelope_parse
 * in lib/kafka.c): what it accepts is what the line says, and it reads back the same from the
 * envelope kin -C -J writes for it (ev_kafka_envelope_write). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "kafka.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const uint8_t *data, size_t size, const ev_buf *line)
{
	fprintf(stderr, "fuzz_envelope: invariant failed: %s\n", what);
	fprintf(stderr, "fuzz_envelope: input (%zu bytes): ", size);
	fwrite(data, 1, size, stderr);
	if (line && line->len) {
		fprintf(stderr, "\nfuzz_envelope: written (%zu bytes): ", line->len);
		fwrite(line->data, 1, line->len, stderr);
	}
	fputc('\n', stderr);
	abort();
}

static int same_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
	if (!a != !b)
		return 0;
	return !a || (alen == blen && (alen == 0 || memcmp(a, b, alen) == 0));
}

/* The headers of a and b, name by name and value by value. */
static int same_headers(const rd_kafka_headers_t *a, const rd_kafka_headers_t *b)
{
	size_t na = a ? rd_kafka_header_cnt(a) : 0, nb = b ? rd_kafka_header_cnt(b) : 0;
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++) {
		const char *an, *bn;
		const void *av, *bv;
		size_t al, bl;
		if (rd_kafka_header_get_all(a, i, &an, &av, &al) ||
		    rd_kafka_header_get_all(b, i, &bn, &bv, &bl) || strcmp(an, bn) != 0 ||
		    !same_bytes(av, al, bv, bl))
			return 0;
	}
	return 1;
}

/* What the reader took is what the line says: the topic and the header names as they are. */
static void check_taken(const ev_kafka_envelope *env, const uint8_t *data, size_t size)
{
	json_t *root = json_loadb((const char *)data, size, JSON_ALLOW_NUL, NULL);
	json_t *topic = json_object_get(root, "topic");
	json_t *headers = json_object_get(root, "headers");
	if (json_is_string(topic) &&
	    (!env->topic || !same_bytes(env->topic, strlen(env->topic), json_string_value(topic),
					json_string_length(topic))))
		fail("the topic read is not the envelope's", data, size, NULL);
	size_t n = env->headers ? rd_kafka_header_cnt(env->headers) : 0;
	if (n * 2 != json_array_size(headers))
		fail("the headers read are not the envelope's", data, size, NULL);
	for (size_t i = 0; i < n; i++) {
		const char *name;
		const void *v;
		size_t vl;
		json_t *want = json_array_get(headers, 2 * i);
		if (rd_kafka_header_get_all(env->headers, i, &name, &v, &vl) ||
		    !same_bytes(name, strlen(name), json_string_value(want),
				json_string_length(want)))
			fail("a header name read is not the envelope's", data, size, NULL);
	}
	json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ev_kafka_envelope env, back;
	char err[512] = "";
	ev_buf line = EV_BUF_INIT;
	memset(&env, 0, sizeof(env));
	memset(&back, 0, sizeof(back));

	if (ev_kafka_envelope_parse(&env, (const char *)data, size, err, sizeof(err)) < 0) {
		if (!*err)
			fail("a refused envelope without a message", data, size, NULL);
		if (env.headers)
			fail("a refused envelope with headers", data, size, NULL);
		ev_kafka_envelope_free(&env);
		return 0;
	}
	check_taken(&env, data, size);
	ev_kafka_record r = {
		.topic = env.topic ? env.topic : "",
		.partition = env.partition,
		.offset = 42,
		.tstype = env.ts ? "create" : "none",
		.ts = env.ts,
		.broker = 1,
		.headers = env.headers,
		.key = env.key,
		.key_len = env.key_len,
		.payload = env.payload,
		.len = env.payload_len,
	};
	if (ev_kafka_envelope_write(&line, &r) < 0)
		fail("ev_kafka_envelope_write failed", data, size, NULL);
	if (memchr(line.data, '\n', line.len))
		fail("the envelope written is several lines", data, size, &line);
	if (ev_kafka_envelope_parse(&back, line.data, line.len, err, sizeof(err)) < 0)
		fail("the envelope written does not read back", data, size, &line);
	if (strcmp(back.topic ? back.topic : "", r.topic) != 0 || back.partition != env.partition ||
	    back.ts != env.ts)
		fail("the envelope written reads back another topic, partition or time", data, size,
		     &line);
	if (!same_bytes(back.key, back.key_len, env.key, env.key_len) ||
	    !same_bytes(back.payload, back.payload_len, env.payload, env.payload_len))
		fail("the envelope written reads back another key or payload", data, size, &line);
	if (!same_headers(back.headers, env.headers))
		fail("the envelope written reads back other headers", data, size, &line);
	ev_kafka_envelope_free(&env);
	ev_kafka_envelope_free(&back);
	ev_buf_free(&line);
	return 0;
}
