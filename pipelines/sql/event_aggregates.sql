-- pipelines/sql/event_aggregates.sql: the table the default job's windows land in.
-- Apply with `chsink --create-table pipelines/sql/event_aggregates.sql ...` (every statement is
-- idempotent, so each start may apply it) or `clickhouse-client --multiquery < this file`.
-- Works on ClickHouse 18.16 (Debian's) and current releases.
--
-- One row per window and key, as evwindow writes it:
--   {"window_start":"2024-11-24 00:00:00","window_end":"2024-11-24 00:01:00","event_type":"click",
--    "count":3,"sum_value":6.5,"min_value":1,"max_value":3.5,"uniq_user_id":2,"version":3}
-- sum/min/max are NULL for a window without any value (evwindow writes null); a sum of
-- integers arrives as an integer and is stored as a Float64.
--
-- version is the number of records folded into the window (ADR 0016): rows of one window
-- written by any process (a replay, another copy of the job) compare by their content.
--
-- Sub-second windows (ADR 0017). DateTime holds whole seconds (18.16 has no DateTime64 and
-- refuses "hh:mm:ss.mmm"), so windows whose size is not whole seconds also carry
-- window_start_msec and window_end_msec, each bound's milliseconds past its second (0-999);
-- rows of whole-second windows leave them out and they are 0, which is exact. The exact start
-- in epoch ms is toUInt64(window_start) * 1000 + window_start_msec. window_start_msec is in
-- the ORDER BY, so windows within one second stay distinct rows.
--
-- A table made by an earlier version of this file (without the two columns) still takes the
-- rows of whole-second windows; rows with the two columns are rejected there (chsink
-- dead-letters them, reason rejected). To upgrade such a table in place (18.16 and current
-- releases; the new sorting key column must come last):
--   ALTER TABLE evpipe.event_aggregates
--       ADD COLUMN window_start_msec UInt16 AFTER window_start,
--       ADD COLUMN window_end_msec UInt16 AFTER window_end,
--       MODIFY ORDER BY (window_start, event_type, window_start_msec)
--
-- Reading it. A window is written again, with a higher version, when a late record updates it,
-- and the whole stream may be replayed after a restore (ADR 0006): the table then holds several
-- rows for one (window_start, event_type, window_start_msec) until a background merge keeps
-- only the one with the highest version. Merges are eventual: they run when ClickHouse
-- chooses, maybe never for a part that stops growing, so a plain SELECT may count a window
-- twice. Read it with FINAL,
-- which merges at query time:
--   SELECT window_start, window_start_msec, event_type, count, sum_value
--   FROM evpipe.event_aggregates FINAL
--   WHERE window_start >= now() - INTERVAL 1 HOUR
--   ORDER BY window_start, window_start_msec, event_type
-- or, faster on large ranges, by picking the highest version per key yourself:
--   SELECT window_start, window_start_msec, event_type,
--          argMax(count, version) AS events, argMax(sum_value, version) AS total
--   FROM evpipe.event_aggregates
--   GROUP BY window_start, window_start_msec, event_type
-- (aliases other than the column names: older servers would read count inside argMax as the
-- alias). Never sum() the raw rows: a replayed or updated window would count more than once.

CREATE DATABASE IF NOT EXISTS evpipe;

CREATE TABLE IF NOT EXISTS evpipe.event_aggregates
(
    window_start      DateTime,
    window_start_msec UInt16,
    window_end        DateTime,
    window_end_msec   UInt16,
    event_type        String,
    count             UInt64,
    sum_value         Nullable(Float64),
    min_value         Nullable(Float64),
    max_value         Nullable(Float64),
    uniq_user_id      UInt64,
    version           UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, event_type, window_start_msec);
