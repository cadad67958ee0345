// SPDX-License-Identifier: Apache-2.0
// CreateTopic.java: create a Kafka topic of N partitions with the broker's own Admin client, for
// tests that need more partitions than the broker's default. Run from source with the jars
// tests/services/up resolved:
//   java -cp "$KAFKA_LIBS/*" tests/helpers/CreateTopic.java BROKERS TOPIC PARTITIONS
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;

public class CreateTopic {
	public static void main(String[] args) throws Exception {
		Properties props = new Properties();
		props.put("bootstrap.servers", args[0]);
		try (Admin admin = Admin.create(props)) {
			NewTopic t = new NewTopic(args[1], Integer.parseInt(args[2]), (short) 1);
			admin.createTopics(List.of(t)).all().get();
		}
	}
}
