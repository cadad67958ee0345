// Topics: create and delete the benchmark's Kafka topics (bench/run), with the Kafka admin
// client that the Flink peer already depends on (kcat cannot do either).
//   java -cp 'target/classes:target/libs/*' evpipe.bench.Topics BROKERS create PARTITIONS TOPIC...
//   java -cp 'target/classes:target/libs/*' evpipe.bench.Topics BROKERS delete TOPIC...
package evpipe.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

public final class Topics {
	public static void main(String[] args) throws Exception {
		if (args.length < 3 || !(args[1].equals("create") || args[1].equals("delete"))) {
			System.err.println("usage: Topics BROKERS create PARTITIONS TOPIC... | BROKERS delete TOPIC...");
			System.exit(2);
		}
		try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]))) {
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
}
