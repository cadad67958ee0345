// SPDX-License-Identifier: Apache-2.0
// Transactions.java: the transactions the broker's coordinator knows whose transactional.id
// begins with a prefix, one "<transactional.id> <state> <start ms>" line each (as
// kafka-transactions.sh list and describe show them; the start is 0 without an open
// transaction), with the broker's own Admin client:
//   java -cp "$KAFKA_LIBS/*" tests/helpers/Transactions.java BROKERS PREFIX
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;

public class Transactions {
	public static void main(String[] args) throws Exception {
		Properties props = new Properties();
		props.put("bootstrap.servers", args[0]);
		try (Admin admin = Admin.create(props)) {
			List<String> ids = new ArrayList<>();
			for (TransactionListing t : admin.listTransactions().all().get())
				if (t.transactionalId().startsWith(args[1]))
					ids.add(t.transactionalId());
			if (ids.isEmpty())
				return;
			Map<String, TransactionDescription> d = admin.describeTransactions(ids).all().get();
			for (Map.Entry<String, TransactionDescription> e : d.entrySet())
				System.out.println(e.getKey() + " " + e.getValue().state() + " "
					+ e.getValue().transactionStartTimeMs().orElse(0));
		}
	}
}
