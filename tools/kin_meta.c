/* SPDX-License-Identifier: Apache-2.0 */
/* kin_meta.c: kin -L (brokers, topics and partitions) and kin -Q (offsets for times), as text or
 * kcat's JSON. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kin.h"
#include "log.h"
#include "opts.h"

static void print_broker_list(const struct rd_kafka_metadata_partition *mp, int json, int isrs)
{
	int n = isrs ? mp->isr_cnt : mp->replica_cnt;
	const int32_t *ids = isrs ? mp->isrs : mp->replicas;
	for (int i = 0; i < n; i++) {
		if (json)
			printf("%s{\"id\":%d}", i ? "," : "", (int)ids[i]);
		else
			printf("%s%d", i ? "," : "", (int)ids[i]);
	}
}

int kin_list_metadata(struct kin *k)
{
	if (kin_make_client(k, RD_KAFKA_PRODUCER) < 0)
		return EV_EXIT_FAILURE;
	rd_kafka_topic_t *rkt = k->ntopics ? rd_kafka_topic_new(k->rk, k->topics[0], NULL) : NULL;
	const struct rd_kafka_metadata *md;
	int rc = kin_probe_brokers(k, &md, rkt);
	if (rkt)
		rd_kafka_topic_destroy(rkt);
	if (rc < 0)
		return EV_EXIT_FAILURE;
	int32_t controller = rd_kafka_controllerid(k->rk, 0);
	ev_buf s = EV_BUF_INIT;
	if (k->json) {
		printf("{\"originating_broker\":{\"id\":%d,\"name\":", (int)md->orig_broker_id);
		ev_buf_json_string(&s, md->orig_broker_name, strlen(md->orig_broker_name));
		printf("%s},\"query\":{\"topic\":\"%s\"},\"controllerid\":%d,\"brokers\":[", s.data,
		       k->ntopics ? k->topics[0] : "*", (int)controller);
		for (int i = 0; i < md->broker_cnt; i++)
			printf("%s{\"id\":%d,\"name\":\"%s:%d\"}", i ? "," : "",
			       (int)md->brokers[i].id, md->brokers[i].host, md->brokers[i].port);
		printf("],\"topics\":[");
		for (int t = 0; t < md->topic_cnt; t++) {
			const struct rd_kafka_metadata_topic *mt = &md->topics[t];
			ev_buf_reset(&s);
			ev_buf_json_string(&s, mt->topic, strlen(mt->topic));
			printf("%s{\"topic\":%s,", t ? "," : "", s.data);
			if (mt->err)
				printf("\"error\":\"%s\",", rd_kafka_err2str(mt->err));
			printf("\"partitions\":[");
			for (int p = 0; p < mt->partition_cnt; p++) {
				const struct rd_kafka_metadata_partition *mp = &mt->partitions[p];
				printf("%s{\"partition\":%d,\"leader\":%d,\"replicas\":[",
				       p ? "," : "", (int)mp->id, (int)mp->leader);
				print_broker_list(mp, 1, 0);
				printf("],\"isrs\":[");
				print_broker_list(mp, 1, 1);
				printf("]}");
			}
			printf("]}");
		}
		printf("]}\n");
	} else {
		printf("Metadata for %s (from broker %d: %s):\n",
		       k->ntopics ? k->topics[0] : "all topics", (int)md->orig_broker_id,
		       md->orig_broker_name);
		printf(" %d brokers:\n", md->broker_cnt);
		for (int i = 0; i < md->broker_cnt; i++)
			printf("  broker %d at %s:%d%s\n", (int)md->brokers[i].id,
			       md->brokers[i].host, md->brokers[i].port,
			       md->brokers[i].id == controller ? " (controller)" : "");
		printf(" %d topics:\n", md->topic_cnt);
		for (int t = 0; t < md->topic_cnt; t++) {
			const struct rd_kafka_metadata_topic *mt = &md->topics[t];
			printf("  topic \"%s\" with %d partitions:%s%s\n", mt->topic,
			       mt->partition_cnt, mt->err ? " " : "",
			       mt->err ? rd_kafka_err2str(mt->err) : "");
			for (int p = 0; p < mt->partition_cnt; p++) {
				const struct rd_kafka_metadata_partition *mp = &mt->partitions[p];
				printf("    partition %d, leader %d, replicas: ", (int)mp->id,
				       (int)mp->leader);
				print_broker_list(mp, 0, 0);
				printf(", isrs: ");
				print_broker_list(mp, 0, 1);
				printf("\n");
			}
		}
	}
	ev_buf_free(&s);
	rd_kafka_metadata_destroy(md);
	return EV_EXIT_OK;
}

/* "topic:partition:timestamp" (kcat -Q's -t): its parts, topic NUL-terminated in buf. */
static int query_parse(const char *spec, char *buf, size_t buflen, int32_t *partition, int64_t *ts)
{
	const char *c1 = strchr(spec, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	int64_t p;
	char num[16];
	if (!c2 || c1 == spec || (size_t)(c1 - spec) >= buflen || (size_t)(c2 - c1) > sizeof(num))
		return -1;
	snprintf(buf, buflen, "%.*s", (int)(c1 - spec), spec);
	snprintf(num, sizeof(num), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
	if (ev_opt_int(num, 0, INT32_MAX, &p) < 0 || ev_opt_int(c2 + 1, -2, INT64_MAX, ts) < 0)
		return -1;
	*partition = (int32_t)p;
	return 0;
}

int kin_query_check(const struct kin *k, char *err, size_t errlen)
{
	char topic[256], other[256];
	int32_t p, q;
	int64_t ts;
	for (int i = 0; i < k->ntopics; i++) {
		if (query_parse(k->topics[i], topic, sizeof(topic), &p, &ts) < 0) {
			snprintf(err, errlen, "invalid query '%s': want TOPIC:PARTITION:TIMESTAMP",
				 k->topics[i]);
			return -1;
		}
		/* librdkafka answers a partition asked for twice wrongly (kcat: "must only
		 * occur once") */
		for (int j = 0; j < i; j++)
			if (query_parse(k->topics[j], other, sizeof(other), &q, &ts) == 0 &&
			    p == q && strcmp(topic, other) == 0) {
				snprintf(err, errlen, "-Q asks for %s [%d] twice", topic, (int)p);
				return -1;
			}
	}
	return 0;
}

/* The result as kcat -Q -J writes it: {"topic":{"topic":"topic","N":{"partition":N,"offset":O},
 * ...},...}, topics in the order first asked for. */
static void print_query_json(const rd_kafka_topic_partition_list_t *list)
{
	ev_buf s = EV_BUF_INIT;
	ev_buf_putc(&s, '{');
	for (int i = 0; i < list->cnt; i++) {
		const char *topic = list->elems[i].topic;
		int seen = 0;
		for (int j = 0; j < i && !seen; j++)
			seen = strcmp(list->elems[j].topic, topic) == 0;
		if (seen)
			continue;
		if (s.len > 1)
			ev_buf_putc(&s, ',');
		ev_buf_json_string(&s, topic, strlen(topic));
		ev_buf_puts(&s, ":{\"topic\":");
		ev_buf_json_string(&s, topic, strlen(topic));
		for (int j = i; j < list->cnt; j++)
			if (strcmp(list->elems[j].topic, topic) == 0)
				ev_buf_printf(&s,
					      ",\"%d\":{\"partition\":%d,\"offset\":%" PRId64 "}",
					      (int)list->elems[j].partition,
					      (int)list->elems[j].partition, list->elems[j].offset);
		ev_buf_putc(&s, '}');
	}
	ev_buf_puts(&s, "}\n");
	fputs(ev_buf_cstr(&s), stdout);
	ev_buf_free(&s);
}

int kin_query_offsets(struct kin *k)
{
	if (kin_make_client(k, RD_KAFKA_PRODUCER) < 0 || kin_probe_brokers(k, NULL, NULL) < 0)
		return EV_EXIT_FAILURE;
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(k->ntopics);
	for (int i = 0; i < k->ntopics; i++) {
		char topic[256];
		int32_t p;
		int64_t ts;
		query_parse(k->topics[i], topic, sizeof(topic), &p, &ts); /* checked before */
		rd_kafka_topic_partition_list_add(list, topic, p)->offset = ts;
	}
	rd_kafka_topic_partition_list_sort(list, NULL, NULL); /* kcat's order */
	int rc = EV_EXIT_OK;
	rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(k->rk, list, (int)k->kafka.timeout_ms);
	if (err) {
		ev_error("cannot look up offsets for times: %s", rd_kafka_err2str(err));
		rc = EV_EXIT_FAILURE;
	}
	for (int i = 0; rc == EV_EXIT_OK && i < list->cnt; i++)
		if (list->elems[i].err) {
			ev_error("%s [%d]: %s", list->elems[i].topic, (int)list->elems[i].partition,
				 rd_kafka_err2str(list->elems[i].err));
			rc = EV_EXIT_FAILURE;
		}
	if (rc == EV_EXIT_OK && k->json)
		print_query_json(list);
	for (int i = 0; rc == EV_EXIT_OK && !k->json && i < list->cnt; i++)
		printf("%s [%d] offset %" PRId64 "\n", list->elems[i].topic,
		       (int)list->elems[i].partition, list->elems[i].offset);
	rd_kafka_topic_partition_list_destroy(list);
	return rc;
}
