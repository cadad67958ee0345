// SPDX-License-Identifier: Apache-2.0
// DeleteTopic.java: delete Kafka topics with the broker's own Admin client, for tests that need a
// topic to vanish under a consumer. Run from source with the jars tests/services/up resolved:
//   java -cp "$KAFKA_LIBS/*" tests/helpers/DeleteTopic.java BROKERS TOPIC...
import java.util.Arrays;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;

public class DeleteTopic {
	public static void main(String[] args) throws Exception {
		Properties props = new Properties();
		props.put("bootstrap.servers", args[0]);
		try (Admin admin = Admin.create(props)) {
			admin.deleteTopics(Arrays.asList(args).subList(1, args.length)).all().get();
		}
	}
}
