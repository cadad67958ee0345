# SPDX-License-Identifier: Apache-2.0
"""bench/prod.py: helpers of bench/run's production workloads (e2e-prod, latency, recovery).

    python3 bench/prod.py pace START_MS RATE < events > events
        Copies lines, line i no earlier than START_MS + i * 1000 / RATE (wall clock): a producer
        at a fixed rate whose event time (evgen --start START_MS --rate RATE) is the wall clock.
    python3 bench/prod.py poll URL QUERY MS > seen
        Every MS, QUERY on ClickHouse's HTTP interface URL (TabSeparated); every result line not
        seen before goes to stdout as "<epoch ms>\\t<line>". Runs until killed.
    python3 bench/prod.py latency SEEN OOO_MS FROM_MS TO_MS
        SEEN from poll with the query "toUnixTimestamp(window_end), key": for every window row
        whose window ends in [FROM_MS, TO_MS], the delay from its end + OOO_MS to the first poll
        that saw it; {"rows", "p50_ms", "p99_ms", "max_ms"} on stdout.
    python3 bench/prod.py steady WATCH
        WATCH from `Topics BROKERS watch` ("<ms> <committed> <end>" lines): the events committed
        between the first and the last committed checkpoint over that time (the run's steady
        part: start-up and the final flush left out); {"events", "seconds", "events_per_s",
        "commits"} on stdout (events_per_s null with fewer than two commits).
    python3 bench/prod.py flink-checkpoints LOG
        The checkpoints of a Flink job's log (CheckpointCoordinator at INFO, the subtasks' sync
        and async parts at DEBUG), one JSON line each: id, bytes, duration_ms, and the longest
        sync_ms and async_ms over the subtasks.
    python3 bench/prod.py evpipe-checkpoints MANIFEST...
        The same from evpipe's manifests: id, bytes, uploaded_bytes, duration_ms, and evwindow's
        part's sync_ms and async_ms (its snapshot time; async_ms when the part records one).
"""
import json
import re
import sys
import time
import urllib.parse
import urllib.request


def pace(start_ms, rate):
    out = sys.stdout.buffer
    inp = sys.stdin.buffer
    sent = 0
    lines = []
    tail = b""
    eof = False
    per_ms = rate / 1000.0
    while True:
        # Release what is due, in one write; sleep until the next millisecond otherwise.
        # Lines are split a block at a time (C speed: 100k lines/s costs a few % of a core).
        due = int((time.time() * 1000 - start_ms) * per_ms) + 1 - sent
        if due <= 0:
            time.sleep(0.001)
            continue
        while len(lines) < due and not eof:
            block = inp.read(1 << 20)
            if not block:
                eof = True
                if tail:
                    lines.append(tail)
                break
            parts = (tail + block).split(b"\n")
            tail = parts.pop()
            lines.extend(parts)
        chunk, lines = lines[:due], lines[due:]
        if chunk:
            out.write(b"\n".join(chunk) + b"\n")
            out.flush()
            sent += len(chunk)
        if eof and not lines:
            return


def poll(url, query, ms):
    seen = set()
    q = url.rstrip("/") + "/?" + urllib.parse.urlencode({"query": query})
    while True:
        try:
            with urllib.request.urlopen(q, timeout=5) as r:
                body = r.read().decode()
            now = int(time.time() * 1000)
            new = [line for line in body.splitlines() if line not in seen]
            for line in new:
                seen.add(line)
                print(f"{now}\t{line}")
            if new:
                sys.stdout.flush()
        except OSError:
            pass
        time.sleep(ms / 1000)


def percentile(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * p
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def latency(seen, ooo_ms, from_ms, to_ms):
    delays = {}
    with open(seen) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                continue
            at, end_s, key = int(parts[0]), int(parts[1]), parts[2]
            end_ms = end_s * 1000
            if from_ms <= end_ms <= to_ms and (end_s, key) not in delays:
                delays[(end_s, key)] = at - (end_ms + ooo_ms)
    d = list(delays.values())
    print(json.dumps({"rows": len(d), "p50_ms": percentile(d, 0.5), "p99_ms": percentile(d, 0.99),
                      "max_ms": max(d) if d else None}))


def steady(watch):
    points = []
    with open(watch) as f:
        for line in f:
            p = line.split()
            if len(p) == 3:
                points.append((int(p[0]), int(p[1]), int(p[2])))
    # A commit: the first sample that shows a new committed position.
    commits = []
    for t, c, _ in points:
        if c > 0 and (not commits or c != commits[-1][1]):
            commits.append((t, c))
    if len(commits) < 2:
        print(json.dumps({"events": commits[-1][1] if commits else 0, "seconds": None,
                          "events_per_s": None, "commits": len(commits)}))
        return
    ev = commits[-1][1] - commits[0][1]
    s = (commits[-1][0] - commits[0][0]) / 1000
    print(json.dumps({"events": ev, "seconds": s, "events_per_s": ev / s if s > 0 else None,
                      "commits": len(commits)}))


def flink_checkpoints(log):
    done = re.compile(r"Completed checkpoint (\d+) for job \S+ \((\d+) bytes.*?checkpointDuration=(\d+) ms")
    sync = re.compile(r"finished synchronous part of checkpoint (\d+)\. Alignment duration: (\d+) ms, "
                      r"snapshot duration (\d+) ms")
    asyn = re.compile(r"finished asynchronous part of checkpoint (\d+)\. Asynchronous duration: (\d+) ms")
    c = {}
    with open(log, errors="replace") as f:
        for line in f:
            m = done.search(line)
            if m:
                e = c.setdefault(int(m[1]), {"id": int(m[1])})
                e["bytes"], e["duration_ms"] = int(m[2]), int(m[3])
            m = sync.search(line)
            if m:
                e = c.setdefault(int(m[1]), {"id": int(m[1])})
                e["sync_ms"] = max(e.get("sync_ms", 0), int(m[3]))
                e["alignment_ms"] = max(e.get("alignment_ms", 0), int(m[2]))
            m = asyn.search(line)
            if m:
                e = c.setdefault(int(m[1]), {"id": int(m[1])})
                e["async_ms"] = max(e.get("async_ms", 0), int(m[2]))
    for k in sorted(c):
        if "duration_ms" in c[k]:
            print(json.dumps(c[k]))


def evpipe_checkpoints(paths):
    for p in paths:
        with open(p) as f:
            m = json.load(f)
        w = m.get("parts", {}).get("evwindow", {})
        print(json.dumps({"id": m["id"], "bytes": m.get("bytes"), "uploaded_bytes": m.get("uploaded_bytes"),
                          "duration_ms": m.get("duration_ms"),
                          "sync_ms": w.get("sync_ms", w.get("duration_ms")),
                          "async_ms": w.get("async_ms", 0)}))


def main():
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "pace":
        pace(int(a[0]), float(a[1]))
    elif cmd == "poll":
        poll(a[0], a[1], int(a[2]))
    elif cmd == "latency":
        latency(a[0], int(a[1]), int(a[2]), int(a[3]))
    elif cmd == "steady":
        steady(a[0])
    elif cmd == "flink-checkpoints":
        flink_checkpoints(a[0])
    elif cmd == "evpipe-checkpoints":
        evpipe_checkpoints(a)
    else:
        sys.exit(f"prod.py: unknown command '{cmd}'")


if __name__ == "__main__":
    main()
