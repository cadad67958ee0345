// SPDX-License-Identifier: Apache-2.0
// Topics: create and delete the benchmark's Kafka topics (bench/run), with the Kafka admin
// client that the Flink peer already depends on (kcat cannot do either).
//   java -cp 'target/classes:target/libs/*' evpipe.bench.Topics BROKERS create PARTITIONS TOPIC...
//   java -cp 'target/classes:target/libs/*' evpipe.bench.Topics BROKERS delete TOPIC...
//   java -cp 'target/classes:target/libs/*' evpipe.bench.Topics BROKERS watch GROUP TOPIC MS
// watch: every MS, a line "<epoch ms> <offsets GROUP committed on TOPIC> <TOPIC's end offsets>"
// (sums over the partitions) on stdout, until killed: when each checkpoint was committed, and
// how far the group was behind the head.
package evpipe.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

public final class Topics {
	public static void main(String[] args) throws Exception {
		if (args.length < 3 || !(args[1].equals("create") || args[1].equals("delete")
				|| (args[1].equals("watch") && args.length == 5))) {
			System.err.println("usage: Topics BROKERS create PARTITIONS TOPIC... | BROKERS delete TOPIC..."
					+ " | BROKERS watch GROUP TOPIC MS");
			System.exit(2);
		}
		try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]))) {
			if (args[1].equals("watch")) {
				watch(admin, args[2], args[3], Long.parseLong(args[4]));
				return;
			}
			try {
				if (args[1].equals("create")) {
					int partitions = Integer.parseInt(args[2]);
					List<NewTopic> topics = new ArrayList<>();
					for (String t : Arrays.copyOfRange(args, 3, args.length))
						topics.add(new NewTopic(t, partitions, (short) 1));
					admin.createTopics(topics).all().get();
				} else
					admin.deleteTopics(Arrays.asList(Arrays.copyOfRange(args, 2, args.length))).all().get();
			} catch (ExecutionException e) {
				if (!(e.getCause() instanceof TopicExistsException
						|| e.getCause() instanceof UnknownTopicOrPartitionException))
					throw e;
			}
		}
	}

	static void watch(Admin admin, String group, String topic, long ms) throws Exception {
		List<TopicPartition> parts = new ArrayList<>();
		int n = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size();
		Map<TopicPartition, OffsetSpec> latest = new java.util.HashMap<>();
		for (int p = 0; p < n; p++) {
			parts.add(new TopicPartition(topic, p));
			latest.put(parts.get(p), OffsetSpec.latest());
		}
		while (true) {
			long t = System.currentTimeMillis(), committed = 0, end = 0;
			Map<TopicPartition, OffsetAndMetadata> c =
					admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
			for (TopicPartition tp : parts) {
				OffsetAndMetadata o = c.get(tp);
				if (o != null)
					committed += o.offset();
			}
			for (ListOffsetsResult.ListOffsetsResultInfo i : admin.listOffsets(latest).all().get().values())
				end += i.offset();
			System.out.println(t + " " + committed + " " + end);
			System.out.flush();
			Thread.sleep(ms);
		}
	}
}
