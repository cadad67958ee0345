// Transactions.java: the transactions the broker's coordinator knows whose transactional.id
// begins with a prefix, one "<transactional.id> <state>" line each (as kafka-transactions.sh
// list prints them), with the broker's own Admin client:
//   java -cp "$KAFKA_LIBS/*" tests/helpers/Transactions.java BROKERS PREFIX
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.TransactionListing;

public class Transactions {
	public static void main(String[] args) throws Exception {
		Properties props = new Properties();
		props.put("bootstrap.servers", args[0]);
		try (Admin admin = Admin.create(props)) {
			for (TransactionListing t : admin.listTransactions().all().get())
				if (t.transactionalId().startsWith(args[1]))
					System.out.println(t.transactionalId() + " " + t.state());
		}
	}
}
