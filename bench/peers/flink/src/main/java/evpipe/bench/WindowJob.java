// SPDX-License-Identifier: Apache-2.0
// WindowJob: the Flink peer of the evpipe job (bench/run). The same work as
//   kin -C --meta-field _src | evvalidate --contract contracts/event.schema.json
//     | evwindow --key K --tumble 1m --agg count,sum:value,min:value,max:value,uniq:user_id
//                --out-of-orderness 5s --lateness 30s --idle-timeout 60s --max-future 1h
// as one DataStream job in a MiniCluster: a Kafka topic (earliest, bounded to the end offsets)
// or an NDJSON file in; each record checked against the contract's rules (re-implemented
// below); per-partition watermarks max - 5s - 1 advanced on every record, idleness 60s; 1-minute
// tumbling event-time windows keyed by K with allowed lateness 30s, late records to a side
// output; RocksDB state; rows written to files as evwindow writes them.
//
//   java -cp 'target/classes:target/libs/*' evpipe.bench.WindowJob \
//     (--kafka BROKERS --topic T | --file PATH) --out DIR [--key event_type] [--no-validate]
//     [--parallelism 2] [--state-dir DIR]
// Writes DIR/rows-<subtask>.ndjson, DIR/late-<subtask>.ndjson, DIR/dlq-<subtask>.ndjson and
// one line of JSON on stdout: {"net_runtime_ms":..,"cpu_ms":..} (the job, without JVM start).
//
// The production configuration (bench/run's e2e-prod, latency and recovery workloads) adds
//     [--checkpoint-dir s3://BUCKET/PREFIX --checkpoint-interval MS] [--restore PATH]
//     [--job-id HEX32] [--group G] [--unbounded] [--clickhouse JDBC_URL --table DB.T]
//     [--batch N] [--batch-ms MS] [--window-ms MS] [--out-of-orderness-ms MS] [--idle-ms MS]
//     [--empty-idle-ms MS]
// checkpoints EXACTLY_ONCE (aligned barriers) every MS, RocksDB incremental, to the S3 server
// through the flink-s3-fs-presto plugin (FLINK_PLUGINS_DIR; s3.endpoint, s3.access-key and
// s3.secret-key from S3_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), retained on
// cancellation; --restore starts from a checkpoint (its chk-N directory); --job-id fixes the
// job's id, so that its checkpoints are under PREFIX/<id>/chk-N; the Kafka source commits its
// offsets to group G on every completed checkpoint; --unbounded reads the topic until killed;
// the window rows go to ClickHouse through Flink's JDBC connector (batches of N rows or MS,
// and at every checkpoint: at-least-once, into a ReplacingMergeTree as chsink's) instead of
// DIR/rows-*.ndjson. --empty-idle-ms: a partition that has had no record for MS since the
// start is idle until its first one (evwindow counts only the partitions it has seen), while
// --idle-ms applies to partitions that have had records.
//
// WINDOWJOB_TRACE=1 in the environment: "TRACE src" lines on stderr, once a second per source
// subtask (records, largest event time, current watermark), and a "TRACE fire" line per window
// row (its end, key, count, the wall clock and the watermark): how far the job is behind.
package evpipe.bench;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExternalizedCheckpointRetention;
import org.apache.flink.configuration.PipelineOptionsInternal;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.connector.jdbc.JdbcConnectionOptions;
import org.apache.flink.connector.jdbc.JdbcExecutionOptions;
import org.apache.flink.connector.jdbc.core.datastream.sink.JdbcSink;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.plugin.PluginUtils;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.connector.file.src.FileSource;
import org.apache.flink.connector.file.src.reader.TextLineInputFormat;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.state.rocksdb.RocksDBOptions;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.streaming.api.functions.windowing.ProcessWindowFunction;
import org.apache.flink.streaming.api.windowing.assigners.TumblingEventTimeWindows;
import org.apache.flink.streaming.api.windowing.windows.TimeWindow;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;
import org.apache.kafka.clients.consumer.ConsumerRecord;

public final class WindowJob {
	static final Duration LATENESS = Duration.ofSeconds(30);
	static final long MAX_FUTURE_MS = 3_600_000;

	/** One record: the fields the windows need, or why it is a dead letter (with its bytes). */
	public static final class Ev {
		public long ts;
		public String key;
		public double value;
		public boolean hasValue;
		public String user;
		public String error; // null when the record is valid
		public String raw;   // the original line, for dead letters only

		public Ev() {}
	}

	// ---- The contract (contracts/event.schema.json), as evvalidate applies it -------------------
	static final class Contract {
		static final Set<String> PROPS = Set.of("event_id", "event_type", "user_id", "ts", "value",
				"session_id", "properties");
		static final Set<String> TYPES = Set.of("page_view", "click", "add_to_cart", "purchase");
		static final Pattern EVENT_ID = Pattern.compile("^[A-Za-z0-9_-]{1,64}$");
		static final Pattern TS_PREFIX = Pattern.compile("^20[0-9]{2}-");
		// RFC 3339 date-time (format "date-time"), checked further by OffsetDateTime.
		static final Pattern DATE_TIME = Pattern.compile(
				"^\\d{4}-\\d{2}-\\d{2}[Tt]\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?([Zz]|[+-]\\d{2}:\\d{2})$");

		/** null when node meets the contract, else the violated rule. */
		static String check(JsonNode n) {
			if (!n.isObject())
				return "type";
			for (Iterator<String> it = n.fieldNames(); it.hasNext();)
				if (!PROPS.contains(it.next()))
					return "additionalProperties";
			JsonNode id = n.get("event_id"), type = n.get("event_type"), user = n.get("user_id"),
					ts = n.get("ts");
			if (id == null || type == null || user == null || ts == null)
				return "required";
			if (!id.isTextual() || !EVENT_ID.matcher(id.textValue()).find())
				return "event_id";
			if (!type.isTextual() || !TYPES.contains(type.textValue()))
				return "enum";
			if (!user.isTextual())
				return "user_id";
			int len = user.textValue().codePointCount(0, user.textValue().length());
			if (len < 1 || len > 64)
				return "user_id";
			if (ts.isNumber()) {
				double d = ts.doubleValue();
				if (!(ts.isIntegralNumber() || d == Math.floor(d)) || d < 946684800000.0
						|| d >= 4102444800000.0)
					return "oneOf";
			} else if (ts.isTextual()) {
				if (!TS_PREFIX.matcher(ts.textValue()).find() || parseDateTime(ts.textValue()) == null)
					return "oneOf";
			} else
				return "oneOf";
			JsonNode v = n.get("value");
			if (v != null && (!v.isNumber() || v.doubleValue() < 0))
				return "value";
			JsonNode s = n.get("session_id");
			if (s != null && !s.isTextual())
				return "session_id";
			JsonNode p = n.get("properties");
			if (p != null && !p.isObject())
				return "properties";
			return null;
		}

		static Long parseDateTime(String s) {
			if (!DATE_TIME.matcher(s).matches())
				return null;
			try {
				return OffsetDateTime.parse(s.toUpperCase()).toInstant().toEpochMilli();
			} catch (DateTimeParseException e) {
				return null;
			}
		}
	}

	/** Parses and checks one line; maxTs holds the partitions' largest event times (max-future). */
	static final class Parser implements java.io.Serializable {
		private final String keyField;
		private final boolean validate;
		private transient ObjectMapper mapper;
		private final Map<Integer, Long> maxTs = new HashMap<>();

		Parser(String keyField, boolean validate) {
			this.keyField = keyField;
			this.validate = validate;
		}

		Ev parse(String line, int partition) {
			if (mapper == null) {
				mapper = new ObjectMapper();
				mapper.enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
				mapper.enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
			}
			Ev e = new Ev();
			JsonNode n;
			try {
				n = mapper.readTree(line);
			} catch (IOException ex) {
				return dead(e, "parse", line);
			}
			if (n == null)
				return dead(e, "parse", line);
			if (validate) {
				String why = Contract.check(n);
				if (why != null)
					return dead(e, "schema:" + why, line);
			} else if (!n.isObject())
				return dead(e, "parse", line);
			JsonNode ts = n.get("ts"), key = n.get(keyField), v = n.get("value"), u = n.get("user_id");
			if (ts == null)
				return dead(e, "missing_ts", line);
			if (ts.isNumber())
				e.ts = ts.longValue();
			else {
				Long t = ts.isTextual() ? Contract.parseDateTime(ts.textValue()) : null;
				if (t == null)
					return dead(e, "bad_ts", line);
				e.ts = t;
			}
			if (key == null || key.isNull())
				return dead(e, "missing_key", line);
			e.key = key.isTextual() ? key.textValue() : key.toString();
			if (v != null && !v.isNull()) {
				if (!v.isNumber())
					return dead(e, "bad_value", line);
				e.value = v.doubleValue();
				e.hasValue = true;
			}
			e.user = u == null ? null : (u.isTextual() ? u.textValue() : u.toString());
			Long max = maxTs.get(partition);
			if (max != null && e.ts > max + MAX_FUTURE_MS)
				return dead(e, "future", line);
			if (max == null || e.ts > max)
				maxTs.put(partition, e.ts);
			return e;
		}

		private static Ev dead(Ev e, String why, String line) {
			e.error = why;
			e.raw = line;
			return e;
		}
	}

	static final class KafkaDeserializer implements KafkaRecordDeserializationSchema<Ev> {
		private final Parser parser;

		KafkaDeserializer(String keyField, boolean validate) {
			parser = new Parser(keyField, validate);
		}

		@Override
		public void open(DeserializationSchema.InitializationContext ctx) {}

		@Override
		public void deserialize(ConsumerRecord<byte[], byte[]> r, Collector<Ev> out) {
			String line = r.value() == null ? "" : new String(r.value(), StandardCharsets.UTF_8);
			out.collect(parser.parse(line, r.partition()));
		}

		@Override
		public TypeInformation<Ev> getProducedType() {
			return TypeInformation.of(Ev.class);
		}
	}

	/**
	 * forBoundedOutOfOrderness(B), but the watermark max - B - 1 is emitted on every record that
	 * raises the maximum, as evwindow advances it, instead of every 200 ms: with a timer the
	 * records that count as late would depend on the machine's speed. Dead letters do not move
	 * time (evwindow computes watermarks after validation).
	 */
	static final class PerRecordBoundedOutOfOrderness implements WatermarkGenerator<Ev> {
		private final long bound, emptyIdleMs;
		private long max, since = -1;
		private boolean seen;

		/**
		 * emptyIdleMs > 0: a partition that has delivered no record for that long since the
		 * generator started is idle (until its first record), as evwindow counts only the
		 * partitions it has seen; idleness after records is withIdleness's (the job's 60 s).
		 */
		PerRecordBoundedOutOfOrderness(long bound, long emptyIdleMs) {
			this.bound = bound;
			this.emptyIdleMs = emptyIdleMs;
			max = Long.MIN_VALUE + bound + 1;
		}

		@Override
		public void onEvent(Ev e, long ts, WatermarkOutput out) {
			seen = true;
			if (e.error != null || ts <= max)
				return;
			max = ts;
			out.emitWatermark(new Watermark(max - bound - 1));
		}

		@Override
		public void onPeriodicEmit(WatermarkOutput out) {
			if (!seen && emptyIdleMs > 0) {
				long now = System.currentTimeMillis();
				if (since < 0)
					since = now;
				if (now - since >= emptyIdleMs) {
					out.markIdle();
					return;
				}
			}
			out.emitWatermark(new Watermark(max - bound - 1));
		}
	}

	static WatermarkStrategy<Ev> watermarks(long outOfOrdernessMs, Duration idleness, long emptyIdleMs) {
		return WatermarkStrategy.<Ev>forGenerator(ctx -> new PerRecordBoundedOutOfOrderness(outOfOrdernessMs, emptyIdleMs))
				.withTimestampAssigner((e, prev) -> e.error == null ? e.ts : Long.MIN_VALUE)
				.withIdleness(idleness);
	}

	// ---- The window function: count, sum, min, max of value, exact distinct user_id, version ----
	static final DateTimeFormatter FMT =
			DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss").withZone(ZoneOffset.UTC);

	/** One window row, as evwindow writes it (toJson) and chsink inserts it (the JDBC sink). */
	public static final class WinRow {
		public long start, end, count, uniq, version;
		public String key;
		public boolean any;
		public double sum, min, max;

		public WinRow() {}

		String toJson(String keyField) {
			StringBuilder b = new StringBuilder(256);
			b.append("{\"window_start\":\"").append(FMT.format(Instant.ofEpochMilli(start)))
					.append("\",\"window_end\":\"").append(FMT.format(Instant.ofEpochMilli(end)))
					.append("\",\"").append(keyField).append("\":");
			json(b, key);
			b.append(",\"count\":").append(count);
			b.append(",\"sum_value\":").append(any ? Double.toString(sum) : "null");
			b.append(",\"min_value\":").append(any ? Double.toString(min) : "null");
			b.append(",\"max_value\":").append(any ? Double.toString(max) : "null");
			b.append(",\"uniq_user_id\":").append(uniq);
			b.append(",\"version\":").append(version).append('}');
			return b.toString();
		}
	}

	static final class Aggregate extends ProcessWindowFunction<Ev, WinRow, String, TimeWindow> {

		@Override
		public void process(String key, Context ctx, Iterable<Ev> events, Collector<WinRow> out)
				throws IOException {
			long count = 0;
			double sum = 0, min = Double.POSITIVE_INFINITY, max = Double.NEGATIVE_INFINITY;
			boolean any = false;
			Set<String> users = new HashSet<>();
			for (Ev e : events) {
				count++;
				if (e.hasValue) {
					sum += e.value;
					min = Math.min(min, e.value);
					max = Math.max(max, e.value);
					any = true;
				}
				if (e.user != null)
					users.add(e.user);
			}
			// the row's version is the records folded into its window, as evwindow's (ADR 0016):
			// a row fired again with late records has a higher one, whoever fired it
			long version = count;
			TimeWindow w = ctx.window();
			if (System.getenv("WINDOWJOB_TRACE") != null)
				System.err.println("TRACE fire end=" + w.getEnd() + " key=" + key + " count=" + count + " now="
						+ System.currentTimeMillis() + " wm=" + ctx.currentWatermark());
			WinRow r = new WinRow();
			r.start = w.getStart();
			r.end = w.getEnd();
			r.key = key;
			r.count = count;
			r.any = any;
			r.sum = sum;
			r.min = min;
			r.max = max;
			r.uniq = users.size();
			r.version = version;
			out.collect(r);
		}
	}

	static void json(StringBuilder b, String s) {
		b.append('"');
		for (int i = 0; i < s.length(); i++) {
			char c = s.charAt(i);
			if (c == '"' || c == '\\')
				b.append('\\').append(c);
			else if (c < 0x20)
				b.append(String.format("\\u%04x", (int) c));
			else
				b.append(c);
		}
		b.append('"');
	}

	static String envelope(String reason, Ev e) {
		StringBuilder b = new StringBuilder(256).append("{\"reason\":");
		json(b, reason);
		if (e.raw != null) {
			b.append(",\"raw\":");
			json(b, e.raw);
		} else {
			b.append(",\"record\":{\"ts\":").append(e.ts).append(",\"key\":");
			json(b, e.key);
			b.append('}');
		}
		return b.append('}').toString();
	}

	/** Lines to DIR/NAME-<subtask>.ndjson, buffered, flushed at the end of input. */
	static final class LineSink implements Sink<String> {
		private final String dir, name;

		LineSink(String dir, String name) {
			this.dir = dir;
			this.name = name;
		}

		@Override
		public SinkWriter<String> createWriter(WriterInitContext ctx) throws IOException {
			Path p = Paths.get(dir, name + "-" + ctx.getTaskInfo().getIndexOfThisSubtask() + ".ndjson");
			BufferedWriter w = new BufferedWriter(
					new OutputStreamWriter(Files.newOutputStream(p), StandardCharsets.UTF_8), 1 << 16);
			return new SinkWriter<>() {
				@Override
				public void write(String line, Context c) throws IOException {
					w.write(line);
					w.write('\n');
				}

				@Override
				public void flush(boolean endOfInput) throws IOException {
					w.flush();
				}

				@Override
				public void close() throws IOException {
					w.close();
				}
			};
		}
	}

	/** The window rows into ClickHouse: Flink's JDBC sink, batched, flushed at every checkpoint. */
	static Sink<WinRow> clickhouseSink(String url, String table, String keyField, int batch, long batchMs) {
		String sql = "INSERT INTO " + table + " (window_start, window_end, " + keyField
				+ ", count, sum_value, min_value, max_value, uniq_user_id, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
		return JdbcSink.<WinRow>builder()
				.withQueryStatement(sql, (ps, r) -> {
					ps.setString(1, FMT.format(Instant.ofEpochMilli(r.start)));
					ps.setString(2, FMT.format(Instant.ofEpochMilli(r.end)));
					ps.setString(3, r.key);
					ps.setLong(4, r.count);
					if (r.any) {
						ps.setDouble(5, r.sum);
						ps.setDouble(6, r.min);
						ps.setDouble(7, r.max);
					} else
						for (int c = 5; c <= 7; c++)
							ps.setNull(c, java.sql.Types.DOUBLE);
					ps.setLong(8, r.uniq);
					ps.setLong(9, r.version);
				})
				.withExecutionOptions(JdbcExecutionOptions.builder().withBatchSize(batch)
						.withBatchIntervalMs(batchMs).withMaxRetries(3).build())
				.buildAtLeastOnce(new JdbcConnectionOptions.JdbcConnectionOptionsBuilder().withUrl(url)
						.withDriverName("com.clickhouse.jdbc.ClickHouseDriver").build());
	}

	public static void main(String[] args) throws Exception {
		String brokers = null, topic = null, file = null, out = null, stateDir = null;
		String keyField = "event_type";
		String checkpointDir = null, restore = null, jobId = null, group = null, clickhouse = null,
				table = null;
		long checkpointMs = 10_000, windowMs = 60_000, outOfOrdernessMs = 5_000, idleMs = 60_000,
				batchMs = 1_000, emptyIdleMs = 0;
		int batch = 10_000;
		boolean validate = true, unbounded = false;
		int parallelism = 2;
		for (int i = 0; i < args.length; i++) {
			switch (args[i]) {
				case "--kafka" -> brokers = args[++i];
				case "--topic" -> topic = args[++i];
				case "--file" -> file = args[++i];
				case "--out" -> out = args[++i];
				case "--key" -> keyField = args[++i];
				case "--no-validate" -> validate = false;
				case "--parallelism" -> parallelism = Integer.parseInt(args[++i]);
				case "--state-dir" -> stateDir = args[++i];
				case "--checkpoint-dir" -> checkpointDir = args[++i];
				case "--checkpoint-interval" -> checkpointMs = Long.parseLong(args[++i]);
				case "--restore" -> restore = args[++i];
				case "--job-id" -> jobId = args[++i];
				case "--group" -> group = args[++i];
				case "--unbounded" -> unbounded = true;
				case "--clickhouse" -> clickhouse = args[++i];
				case "--table" -> table = args[++i];
				case "--batch" -> batch = Integer.parseInt(args[++i]);
				case "--batch-ms" -> batchMs = Long.parseLong(args[++i]);
				case "--window-ms" -> windowMs = Long.parseLong(args[++i]);
				case "--out-of-orderness-ms" -> outOfOrdernessMs = Long.parseLong(args[++i]);
				case "--idle-ms" -> idleMs = Long.parseLong(args[++i]);
				case "--empty-idle-ms" -> emptyIdleMs = Long.parseLong(args[++i]);
				default -> {
					System.err.println("WindowJob: unknown argument '" + args[i] + "'");
					System.exit(2);
				}
			}
		}
		if (out == null || (file == null) == (brokers == null || topic == null)
				|| (clickhouse == null) != (table == null)) {
			System.err.println("usage: WindowJob (--kafka BROKERS --topic T | --file PATH) --out DIR"
					+ " [--key F] [--no-validate] [--parallelism N] [--state-dir DIR]"
					+ " [--checkpoint-dir URI [--checkpoint-interval MS]] [--restore PATH] [--job-id HEX]"
					+ " [--group G] [--unbounded] [--clickhouse JDBC_URL --table DB.T [--batch N] [--batch-ms MS]]"
					+ " [--window-ms MS] [--out-of-orderness-ms MS] [--idle-ms MS] [--empty-idle-ms MS]");
			System.exit(2);
		}
		Files.createDirectories(Paths.get(out));
		if (stateDir == null)
			stateDir = Files.createTempDirectory("flink-state").toString();

		Configuration conf = new Configuration();
		conf.set(StateBackendOptions.STATE_BACKEND, "rocksdb");
		conf.set(RocksDBOptions.LOCAL_DIRECTORIES, stateDir);
		conf.set(CoreOptions.TMP_DIRS, stateDir);
		if (checkpointDir != null) {
			conf.set(CheckpointingOptions.CHECKPOINTING_INTERVAL, Duration.ofMillis(checkpointMs));
			conf.set(CheckpointingOptions.CHECKPOINTING_CONSISTENCY_MODE, CheckpointingMode.EXACTLY_ONCE);
			conf.set(CheckpointingOptions.CHECKPOINT_STORAGE, "filesystem");
			conf.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, checkpointDir);
			conf.set(CheckpointingOptions.INCREMENTAL_CHECKPOINTS, true);
			conf.set(CheckpointingOptions.EXTERNALIZED_CHECKPOINT_RETENTION,
					ExternalizedCheckpointRetention.RETAIN_ON_CANCELLATION);
			conf.set(CheckpointingOptions.MAX_RETAINED_CHECKPOINTS, 3);
			// The S3 server of tests/services: path-style, its endpoint and keys from the environment.
			String endpoint = System.getenv("S3_ENDPOINT");
			if (endpoint != null)
				conf.setString("s3.endpoint", endpoint);
			conf.setString("s3.path.style.access", "true");
			// SigV4 (the SDK signs requests to an endpoint it does not know with SigV2).
			conf.setString("s3.endpoint.region", System.getenv().getOrDefault("AWS_REGION", "us-east-1"));
			if (System.getenv("AWS_ACCESS_KEY_ID") != null) {
				conf.setString("s3.access-key", System.getenv("AWS_ACCESS_KEY_ID"));
				conf.setString("s3.secret-key", System.getenv("AWS_SECRET_ACCESS_KEY"));
			}
			// The S3 filesystem is a plugin (FLINK_PLUGINS_DIR), in a class loader of its own.
			FileSystem.initialize(conf, PluginUtils.createPluginManagerFromRootFolder(conf));
		}
		if (restore != null)
			conf.set(StateRecoveryOptions.SAVEPOINT_PATH, restore);
		if (jobId != null)
			conf.set(PipelineOptionsInternal.PIPELINE_FIXED_JOB_ID, jobId);
		StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(parallelism, conf);
		env.getConfig().enableObjectReuse();

		OutputTag<Ev> dlqTag = new OutputTag<>("dlq", TypeInformation.of(Ev.class));
		OutputTag<Ev> lateTag = new OutputTag<>("late", TypeInformation.of(Ev.class));
		final String kf = keyField;
		final boolean val = validate;
		WatermarkStrategy<Ev> wms = watermarks(outOfOrdernessMs, Duration.ofMillis(idleMs), emptyIdleMs);

		// A file is one split, read by one subtask: the stages before the keyBy run with
		// parallelism 1 then, so that the window operator has a single input whose watermark
		// is the file's (with an idle second input it would hold at its initial watermark).
		int srcPar = file != null ? 1 : parallelism;
		DataStream<Ev> parsed;
		if (brokers != null) {
			var builder = KafkaSource.<Ev>builder()
					.setBootstrapServers(brokers)
					.setTopics(topic)
					.setGroupId(group != null ? group : "evpipe-bench-flink-" + System.nanoTime())
					.setStartingOffsets(OffsetsInitializer.earliest())
					.setDeserializer(new KafkaDeserializer(kf, val))
					.setProperty("enable.auto.commit", "false");
			if (!unbounded)
				builder.setBounded(OffsetsInitializer.latest());
			parsed = env.fromSource(builder.build(), wms, "kafka");
		} else {
			FileSource<String> source = FileSource
					.forRecordStreamFormat(new TextLineInputFormat(), new org.apache.flink.core.fs.Path(file))
					.build();
			final Parser parser = new Parser(kf, val);
			parsed = env.fromSource(source, WatermarkStrategy.noWatermarks(), "file").setParallelism(1)
					.map(line -> parser.parse(line, 0)).returns(Ev.class).setParallelism(1)
					.assignTimestampsAndWatermarks(wms).setParallelism(1);
		}

		final boolean trace = System.getenv("WINDOWJOB_TRACE") != null;
		SingleOutputStreamOperator<Ev> valid = parsed.process(new ProcessFunction<Ev, Ev>() {
			private long next, n, maxTs;

			@Override
			public void processElement(Ev e, Context ctx, Collector<Ev> o) {
				if (trace) {
					n++;
					maxTs = Math.max(maxTs, e.ts);
					long now = System.currentTimeMillis();
					if (now >= next) {
						next = now + 1000;
						System.err.println("TRACE src " + getRuntimeContext().getTaskInfo().getIndexOfThisSubtask()
								+ " now=" + now + " n=" + n + " maxTs=" + maxTs + " wm="
								+ ctx.timerService().currentWatermark());
					}
				}
				if (e.error == null)
					o.collect(e);
				else
					ctx.output(dlqTag, e);
			}
		}).setParallelism(srcPar);
		SingleOutputStreamOperator<WinRow> rows = valid
				.keyBy(e -> e.key, Types.STRING)
				.window(TumblingEventTimeWindows.of(Duration.ofMillis(windowMs)))
				.allowedLateness(LATENESS)
				.sideOutputLateData(lateTag)
				.process(new Aggregate());
		if (clickhouse != null)
			rows.sinkTo(clickhouseSink(clickhouse, table, kf, batch, batchMs));
		else
			rows.map(r -> r.toJson(kf)).returns(Types.STRING).sinkTo(new LineSink(out, "rows"));
		rows.getSideOutput(lateTag).map(e -> envelope("late", e)).returns(Types.STRING).sinkTo(new LineSink(out, "late"));
		valid.getSideOutput(dlqTag).map(e -> envelope(e.error, e)).returns(Types.STRING).setParallelism(srcPar)
				.sinkTo(new LineSink(out, "dlq")).setParallelism(srcPar);

		com.sun.management.OperatingSystemMXBean os =
				(com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
		long cpu0 = os.getProcessCpuTime();
		JobExecutionResult r = env.execute("evpipe-bench-window");
		long cpu = (os.getProcessCpuTime() - cpu0) / 1_000_000;
		System.out.println("{\"net_runtime_ms\":" + r.getNetRuntime() + ",\"cpu_ms\":" + cpu + "}");
	}
}
