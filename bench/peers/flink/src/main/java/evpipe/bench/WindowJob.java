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
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.configuration.Configuration;
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
	static final long OUT_OF_ORDERNESS_MS = 5_000;
	static final Duration IDLENESS = Duration.ofSeconds(60);
	static final Duration LATENESS = Duration.ofSeconds(30);
	static final Duration WINDOW = Duration.ofMinutes(1);
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
		private long max = Long.MIN_VALUE + OUT_OF_ORDERNESS_MS + 1;

		@Override
		public void onEvent(Ev e, long ts, WatermarkOutput out) {
			if (e.error != null || ts <= max)
				return;
			max = ts;
			out.emitWatermark(new Watermark(max - OUT_OF_ORDERNESS_MS - 1));
		}

		@Override
		public void onPeriodicEmit(WatermarkOutput out) {
			out.emitWatermark(new Watermark(max - OUT_OF_ORDERNESS_MS - 1));
		}
	}

	static WatermarkStrategy<Ev> watermarks() {
		return WatermarkStrategy.<Ev>forGenerator(ctx -> new PerRecordBoundedOutOfOrderness())
				.withTimestampAssigner((e, prev) -> e.error == null ? e.ts : Long.MIN_VALUE)
				.withIdleness(IDLENESS);
	}

	// ---- The window function: count, sum, min, max of value, exact distinct user_id, version ----
	static final DateTimeFormatter FMT =
			DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss").withZone(ZoneOffset.UTC);

	static final class Aggregate extends ProcessWindowFunction<Ev, String, String, TimeWindow> {
		private final String keyField;
		private final ValueStateDescriptor<Long> fired = new ValueStateDescriptor<>("fired", Long.class);

		Aggregate(String keyField) {
			this.keyField = keyField;
		}

		@Override
		public void process(String key, Context ctx, Iterable<Ev> events, Collector<String> out)
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
			ValueState<Long> f = ctx.windowState().getState(fired);
			long version = (f.value() == null ? 0 : f.value()) + 1;
			f.update(version);
			TimeWindow w = ctx.window();
			StringBuilder b = new StringBuilder(256);
			b.append("{\"window_start\":\"").append(FMT.format(Instant.ofEpochMilli(w.getStart())))
					.append("\",\"window_end\":\"").append(FMT.format(Instant.ofEpochMilli(w.getEnd())))
					.append("\",\"").append(keyField).append("\":");
			json(b, key);
			b.append(",\"count\":").append(count);
			b.append(",\"sum_value\":").append(any ? Double.toString(sum) : "null");
			b.append(",\"min_value\":").append(any ? Double.toString(min) : "null");
			b.append(",\"max_value\":").append(any ? Double.toString(max) : "null");
			b.append(",\"uniq_user_id\":").append(users.size());
			b.append(",\"version\":").append(version).append('}');
			out.collect(b.toString());
		}

		@Override
		public void clear(Context ctx) {
			ctx.windowState().getState(fired).clear();
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

	public static void main(String[] args) throws Exception {
		String brokers = null, topic = null, file = null, out = null, stateDir = null;
		String keyField = "event_type";
		boolean validate = true;
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
				default -> {
					System.err.println("WindowJob: unknown argument '" + args[i] + "'");
					System.exit(2);
				}
			}
		}
		if (out == null || (file == null) == (brokers == null || topic == null)) {
			System.err.println("usage: WindowJob (--kafka BROKERS --topic T | --file PATH) --out DIR"
					+ " [--key F] [--no-validate] [--parallelism N] [--state-dir DIR]");
			System.exit(2);
		}
		Files.createDirectories(Paths.get(out));
		if (stateDir == null)
			stateDir = Files.createTempDirectory("flink-state").toString();

		Configuration conf = new Configuration();
		conf.set(StateBackendOptions.STATE_BACKEND, "rocksdb");
		conf.set(RocksDBOptions.LOCAL_DIRECTORIES, stateDir);
		conf.set(CoreOptions.TMP_DIRS, stateDir);
		StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(parallelism, conf);
		env.getConfig().enableObjectReuse();

		OutputTag<Ev> dlqTag = new OutputTag<>("dlq", TypeInformation.of(Ev.class));
		OutputTag<Ev> lateTag = new OutputTag<>("late", TypeInformation.of(Ev.class));
		final String kf = keyField;
		final boolean val = validate;

		// A file is one split, read by one subtask: the stages before the keyBy run with
		// parallelism 1 then, so that the window operator has a single input whose watermark
		// is the file's (with an idle second input it would hold at its initial watermark).
		int srcPar = file != null ? 1 : parallelism;
		DataStream<Ev> parsed;
		if (brokers != null) {
			KafkaSource<Ev> source = KafkaSource.<Ev>builder()
					.setBootstrapServers(brokers)
					.setTopics(topic)
					.setGroupId("evpipe-bench-flink-" + System.nanoTime())
					.setStartingOffsets(OffsetsInitializer.earliest())
					.setBounded(OffsetsInitializer.latest())
					.setDeserializer(new KafkaDeserializer(kf, val))
					.setProperty("enable.auto.commit", "false")
					.build();
			parsed = env.fromSource(source, watermarks(), "kafka");
		} else {
			FileSource<String> source = FileSource
					.forRecordStreamFormat(new TextLineInputFormat(), new org.apache.flink.core.fs.Path(file))
					.build();
			final Parser parser = new Parser(kf, val);
			parsed = env.fromSource(source, WatermarkStrategy.noWatermarks(), "file").setParallelism(1)
					.map(line -> parser.parse(line, 0)).returns(Ev.class).setParallelism(1)
					.assignTimestampsAndWatermarks(watermarks()).setParallelism(1);
		}

		SingleOutputStreamOperator<Ev> valid = parsed.process(new ProcessFunction<Ev, Ev>() {
			@Override
			public void processElement(Ev e, Context ctx, Collector<Ev> o) {
				if (e.error == null)
					o.collect(e);
				else
					ctx.output(dlqTag, e);
			}
		}).setParallelism(srcPar);
		SingleOutputStreamOperator<String> rows = valid
				.keyBy(e -> e.key, Types.STRING)
				.window(TumblingEventTimeWindows.of(WINDOW))
				.allowedLateness(LATENESS)
				.sideOutputLateData(lateTag)
				.process(new Aggregate(kf));
		rows.sinkTo(new LineSink(out, "rows"));
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
