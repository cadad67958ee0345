/* SPDX-License-Identifier: Apache-2.0 */
/* test_handover.c: a partition's state handed over through the checkpoint store (lib/handover):
 * keys, a round trip, and refusal of anything that is not what its header says. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "ckstore.h"
#include "handover.h"
#include "test.h"

static char err[512];
static char dir[256];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void test_key(void)
{
	ev_buf b = EV_BUF_INIT;
	ev_handover_key(&b, "job", "evwindow", "..", 3, 42);
	CHECK_STR(ev_buf_cstr(&b), "job/handover/evwindow/3-../00000000000000000042");
	CHECK(ev_store_key_ok(ev_buf_cstr(&b)));
	ev_buf_free(&b);
}

/* Replace the object of (t, 0, 7) with text. */
static void overwrite(ev_store *s, const char *text)
{
	ev_buf key = EV_BUF_INIT;
	ev_handover_key(&key, "j", "evwindow", "t", 0, 7);
	CHECK(ev_store_put(s, ev_buf_cstr(&key), text, strlen(text), err, sizeof(err)) == 0);
	ev_buf_free(&key);
}

static void test_round_trip(void)
{
	char url[300];
	ev_buf out = EV_BUF_INIT, obj = EV_BUF_INIT, key = EV_BUF_INIT;
	snprintf(url, sizeof(url), "file://%s", dir);
	ev_store *s = ev_store_open(url, err, sizeof(err));
	CHECK(s != NULL);
	if (!s)
		return;
	static const char state[] = "EVWP\x03 binary\n\0state";
	CHECK(ev_handover_put(s, "j", "evwindow", "t", 0, 7, state, sizeof(state), 2, err,
			      sizeof(err)) == 0);
	CHECK(ev_handover_get(s, "j", "evwindow", "t", 0, 7, &out, err, sizeof(err)) == 1);
	CHECK(out.len == sizeof(state) && memcmp(out.data, state, sizeof(state)) == 0);
	/* none at another offset, partition or stage */
	CHECK(ev_handover_get(s, "j", "evwindow", "t", 0, 8, &out, err, sizeof(err)) == 0);
	CHECK(ev_handover_get(s, "j", "evwindow", "t", 1, 7, &out, err, sizeof(err)) == 0);
	CHECK(ev_handover_get(s, "j", "other", "t", 0, 7, &out, err, sizeof(err)) == 0);

	/* the object as stored, then changed: one byte of the state, the header's offset, no
	 * header */
	ev_handover_key(&key, "j", "evwindow", "t", 0, 7);
	CHECK(ev_store_get(s, ev_buf_cstr(&key), &obj, err, sizeof(err)) == 1);
	ev_buf_putc(&obj, '\0');
	char *text = strdup(obj.data);
	char *flip = strdup(obj.data);
	flip[strlen(flip) - 1] ^= 1;
	overwrite(s, flip);
	CHECK(ev_handover_get(s, "j", "evwindow", "t", 0, 7, &out, err, sizeof(err)) == -1);
	CHECK(strstr(err, "does not match its size and SHA-256") != NULL);
	char *moved = strdup(text);
	char *at = strstr(moved, "\"offset\":7");
	CHECK(at != NULL);
	if (at)
		at[9] = '8';
	overwrite(s, moved);
	CHECK(ev_handover_get(s, "j", "evwindow", "t", 0, 7, &out, err, sizeof(err)) == -1);
	CHECK(strstr(err, "names another partition or offset") != NULL);
	overwrite(s, "no header at all");
	CHECK(ev_handover_get(s, "j", "evwindow", "t", 0, 7, &out, err, sizeof(err)) == -1);
	CHECK(strstr(err, "is corrupt: no header") != NULL);
	free(text);
	free(flip);
	free(moved);
	ev_buf_free(&out);
	ev_buf_free(&obj);
	ev_buf_free(&key);
	ev_store_close(s);
}

int main(void)
{
	const char *base = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/test_handover.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(dir))
		return 1;
	RUN(test_key);
	RUN(test_round_trip);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return test_report();
}
