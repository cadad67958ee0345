/* kin_meta.c: kin -L: brokers, topics and partitions, as text or kcat's JSON. */
#include <stdio.h>
#include <string.h>

#include "kin.h"

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
