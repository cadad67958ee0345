/* SPDX-License-Identifier: Apache-2.0 */
/* test_ack_claim.c: the sinks' acknowledgements back to kin (lib/ack) and claim checks of
 * oversize dead letters (lib/claim) on a file store. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ack.h"
#include "claim.h"
#include "sha256.h"
#include "test.h"

static char root[] = "/tmp/evpipe-test-ack-XXXXXX";

static void test_ack(void)
{
	char path[256], err[512];
	int64_t done = 0;
	snprintf(path, sizeof(path), "%s/acks", root);
	CHECK(mkfifo(path, 0600) == 0);
	const char *expect[] = {"chsink", "dlqsink"};
	ev_ack_in *in = ev_ack_in_new(path, expect, 2, err, sizeof(err));
	CHECK(in != NULL);
	if (!in)
		return;
	/* nobody has written yet: open, nothing complete */
	CHECK(ev_ack_poll(in, 0, &done, err, sizeof(err)) == EV_ACK_OPEN);
	CHECK(done == -1);
	ev_ack_out *a = ev_ack_out_new(path, err, sizeof(err));
	ev_ack_out *b = ev_ack_out_new(path, err, sizeof(err));
	CHECK(a && b);
	CHECK(ev_ack_send(a, "chsink", 3, err, sizeof(err)) == 0);
	CHECK(ev_ack_poll(in, 100, &done, err, sizeof(err)) == EV_ACK_OPEN);
	CHECK(done == -1); /* dlqsink has not acknowledged */
	CHECK(ev_ack_send(b, "dlqsink", 2, err, sizeof(err)) == 0);
	CHECK(ev_ack_send(b, "other", 9, err, sizeof(err)) == 0); /* not expected: ignored */
	CHECK(ev_ack_poll(in, 100, &done, err, sizeof(err)) == EV_ACK_OPEN);
	CHECK(done == 2); /* the lowest of the expected stages' highest */
	CHECK(ev_ack_send(b, "dlqsink", 5, err, sizeof(err)) == 0);
	CHECK(ev_ack_poll(in, 100, &done, err, sizeof(err)) == EV_ACK_OPEN);
	CHECK(done == 3);
	CHECK(ev_ack_send(a, "bad name", 1, err, sizeof(err)) < 0);
	CHECK(ev_ack_malformed(in) == 0);
	ev_ack_out_free(a);
	ev_ack_out_free(b);
	/* every writer gone */
	CHECK(ev_ack_poll(in, 100, &done, err, sizeof(err)) == EV_ACK_CLOSED);
	CHECK(done == 3);
	ev_ack_in_free(in);
	/* no reader: an error, not a hang and not a SIGPIPE */
	a = ev_ack_out_new(path, err, sizeof(err));
	CHECK(ev_ack_send(a, "chsink", 1, err, sizeof(err)) < 0);
	CHECK(strstr(err, "cannot open") != NULL);
	ev_ack_out_free(a);
	CHECK(ev_ack_out_new("fd:99999", err, sizeof(err)) == NULL);
}

static void test_ack_any_and_malformed(void)
{
	char err[512];
	int64_t done;
	int fds[2];
	CHECK(pipe(fds) == 0);
	char spec[32];
	snprintf(spec, sizeof(spec), "fd:%d", fds[0]);
	ev_ack_in *in = ev_ack_in_new(spec, NULL, 0, err, sizeof(err));
	CHECK(in != NULL);
	const char lines[] = "x 4\nnot-a-line\ny -1\ny 7\nz 5";
	CHECK(write(fds[1], lines, sizeof(lines) - 1) == (ssize_t)sizeof(lines) - 1);
	CHECK(ev_ack_poll(in, 100, &done, err, sizeof(err)) == EV_ACK_OPEN);
	CHECK(done == 7); /* any stage: the highest; "z 5" is not complete yet */
	CHECK(ev_ack_malformed(in) == 2);
	close(fds[1]);
	CHECK(ev_ack_poll(in, 100, &done, err, sizeof(err)) == EV_ACK_CLOSED);
	ev_ack_in_free(in);
	close(fds[0]);
}

static void test_claim(void)
{
	char url[256], err[1024];
	snprintf(url, sizeof(url), "file://%s/store", root);
	ev_store *s = ev_store_open(url, err, sizeof(err));
	CHECK(s != NULL);
	ev_buf raw = EV_BUF_INIT, back = EV_BUF_INIT;
	json_t *env = json_loads("{\"reason\":\"parse\",\"raw_b64\":\"AP8=\",\"at\":1}", 0, NULL);
	CHECK(ev_claim_raw(env, &raw) == 1);
	CHECK(raw.len == 2 && (unsigned char)raw.data[1] == 0xff);
	CHECK(ev_claim_check(env, &raw, s, "job", err, sizeof(err)) == 0);
	CHECK(json_object_get(env, "raw_b64") == NULL);
	CHECK(ev_claim_raw(env, &back) == 0);
	const char *ref = json_string_value(json_object_get(env, "raw_ref"));
	char want[512], sha[65];
	ev_sha256_hex(raw.data, raw.len, sha);
	snprintf(want, sizeof(want), "%s/job/claims/%s", url, sha);
	CHECK_STR(ref, want);
	CHECK(json_integer_value(json_object_get(env, "raw_bytes")) == 2);
	CHECK(ev_claim_resolve(env, s, &back, err, sizeof(err)) == 1);
	CHECK(back.len == 2 && memcmp(back.data, raw.data, 2) == 0);
	/* not in this store, no store, another key, altered bytes */
	CHECK(ev_claim_resolve(env, NULL, &back, err, sizeof(err)) < 0);
	json_t *forged = json_deep_copy(env);
	json_object_set_new(forged, "raw_ref", json_string("file:///etc/passwd"));
	CHECK(ev_claim_resolve(forged, s, &back, err, sizeof(err)) < 0);
	json_object_set_new(forged, "raw_ref", json_sprintf("%s/job/../claims/%s", url, sha));
	CHECK(ev_claim_resolve(forged, s, &back, err, sizeof(err)) < 0);
	json_decref(forged);
	char key[256];
	snprintf(key, sizeof(key), "job/claims/%s", sha);
	CHECK(ev_store_put(s, key, "xy", 2, err, sizeof(err)) == 0);
	CHECK(ev_claim_resolve(env, s, &back, err, sizeof(err)) < 0);
	CHECK(strstr(err, "the envelope says 2 bytes") != NULL);
	/* an envelope without a claim, and one whose bytes were lost for want of a store */
	json_t *plain = json_loads("{\"reason\":\"x\",\"raw\":\"r\"}", 0, NULL);
	CHECK(ev_claim_resolve(plain, s, &back, err, sizeof(err)) == 0);
	CHECK(ev_claim_check(plain, &raw, NULL, "job", err, sizeof(err)) == 0);
	CHECK(json_is_true(json_object_get(plain, "raw_lost")));
	CHECK(json_object_get(plain, "raw_ref") == NULL && json_object_get(plain, "raw") == NULL);
	json_decref(plain);
	json_decref(env);
	ev_buf_free(&raw);
	ev_buf_free(&back);
	ev_store_close(s);
}

int main(void)
{
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_ack);
	RUN(test_ack_any_and_malformed);
	RUN(test_claim);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		return 1;
	return test_report();
}
