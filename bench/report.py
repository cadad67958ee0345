# SPDX-License-Identifier: Apache-2.0
"""bench/report.py: bench/run's measurements into bench/results/latest.{md,json}.

    python3 bench/report.py WORK_DIR LATEST_MD LATEST_JSON

WORK_DIR holds run.json (the run), workloads.ndjson (what each workload is, its peers and
targets), results.ndjson (one line per run of a side: wall seconds, and wall, CPU and peak RSS
of each process under /usr/bin/time; the Flink job's own net runtime and CPU in "job") and
checkpoints.ndjson (one line per checkpoint manifest); for the production workloads, the
"job" of an e2e-prod run holds its steady throughput and its checkpoints, and latency.ndjson
and recovery.ndjson one line per run.

Ratios are peer / evpipe: above 1 evpipe is faster. "time" compares medians of the wall time,
except for the Flink job on a file, where the job's net runtime is used (JVM and MiniCluster
start-up left out, in Flink's favour); "CPU" compares the median CPU seconds of all processes
(for the Flink job on a file, the CPU of the job's JVM during execute()): throughput per core.
"""
import json
import statistics
import sys
from pathlib import Path


def median(xs):
    return statistics.median(xs) if xs else None


def side_time(workload, side, r):
    if side == "flink" and workload.startswith("window") and r.get("job"):
        return r["job"]["net_runtime_ms"] / 1000
    return r["wall"]


def side_cpu(workload, side, r):
    if side == "flink" and workload.startswith("window") and r.get("job"):
        return r["job"]["cpu_ms"] / 1000
    return sum(p["user"] + p["sys"] for p in r["procs"].values())


def prod_side(m, rs):
    """e2e-prod, one side: steady events/s and events per CPU second (every process, the
    servers included), checkpoint durations and sizes, over the timed repetitions."""
    steady = [r["job"]["steady"]["events_per_s"] for r in rs
              if r.get("job") and r["job"]["steady"].get("events_per_s")]
    cpu = [sum(p["user"] + p["sys"] for p in r["procs"].values()) for r in rs]
    ck = [c for r in rs if r.get("job") for c in r["job"]["checkpoints"]]
    return {
        "steady_events_per_s": median(steady),
        "commits": [r["job"]["steady"]["commits"] for r in rs if r.get("job")],
        "events_per_cpu_s": m["events"] / median(cpu) if cpu and median(cpu) else None,
        "cpu_s_per_million_events": median(cpu) / m["events"] * 1e6 if cpu else None,
        "checkpoints": len(ck),
        "checkpoint_duration_ms_median": median([c["duration_ms"] for c in ck if c.get("duration_ms") is not None]),
        "checkpoint_sync_ms_median": median([c["sync_ms"] for c in ck if c.get("sync_ms") is not None]),
        "checkpoint_async_ms_median": median([c["async_ms"] for c in ck if c.get("async_ms") is not None]),
        "checkpoint_bytes_median": median([c["bytes"] for c in ck if c.get("bytes") is not None]),
    }


def fmt_s(x):
    return "-" if x is None else (f"{x:.2f}" if x < 100 else f"{x:.0f}")


def fmt_rate(events, t):
    if not t:
        return "-"
    r = events / t
    return f"{r / 1e6:.2f}M" if r >= 1e6 else f"{r / 1e3:.0f}k"


def main():
    work, md_path, json_path = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    run = json.loads((work / "run.json").read_text())
    metas = [json.loads(l) for l in (work / "workloads.ndjson").read_text().splitlines() if l]
    results = [json.loads(l) for l in (work / "results.ndjson").read_text().splitlines() if l]
    ckpts = [json.loads(l) for l in (work / "checkpoints.ndjson").read_text().splitlines() if l] \
        if (work / "checkpoints.ndjson").exists() else []

    out = {"run": run, "workloads": [], "checkpoints": []}
    for m in metas:
        w = m["id"]
        sides = {}
        for side in [m["evpipe"].split("|")[0] if "|" not in m["evpipe"] else "evpipe"] + m["peers"]:
            rs = [r for r in results if r["workload"] == w and r["side"] == side]
            timed = [r for r in rs if r["rep"] > 0] or rs
            times = [side_time(w, side, r) for r in timed]
            cpus = [side_cpu(w, side, r) for r in timed]
            procs = {}
            for r in timed:
                for name, p in r["procs"].items():
                    q = procs.setdefault(name, {"rss_kib": 0, "cpu": []})
                    q["rss_kib"] = max(q["rss_kib"], p["rss_kib"])
                    q["cpu"].append(p["user"] + p["sys"])
            sides[side] = {
                "reps": [r["rep"] for r in timed],
                "time_s": times,
                "wall_s": [r["wall"] for r in timed],
                "median_s": median(times),
                "min_s": min(times) if times else None,
                "max_s": max(times) if times else None,
                "cpu_s_median": median(cpus),
                "events_per_s": m["events"] / median(times) if times else None,
                "job": [r["job"] for r in timed if r.get("job")],
                "processes": {
                    name: {
                        "peak_rss_mib": round(q["rss_kib"] / 1024, 1),
                        "cpu_s_median": round(median(q["cpu"]), 3),
                        "cpu_s_per_million_events": round(median(q["cpu"]) / m["events"] * 1e6, 3),
                    }
                    for name, q in procs.items()
                },
            }
        ev_name = list(sides)[0]
        ev = sides[ev_name]
        if w == "e2e-prod":
            for side in sides:
                rs = [r for r in results if r["workload"] == w and r["side"] == side]
                sides[side]["prod"] = prod_side(m, [r for r in rs if r["rep"] > 0] or rs)
        ratios = {}
        for peer in m["peers"]:
            p = sides[peer]
            if not ev["time_s"] or not p["time_s"]:
                continue
            per_rep = []
            for rep, t in zip(ev["reps"], ev["time_s"]):
                if rep in p["reps"]:
                    per_rep.append(round(p["time_s"][p["reps"].index(rep)] / t, 3))
            ratios[peer] = {
                "time": round(p["median_s"] / ev["median_s"], 3),
                "cpu": round(p["cpu_s_median"] / ev["cpu_s_median"], 3) if ev["cpu_s_median"] else None,
                "per_rep_time": per_rep,
            }
            if "prod" in ev and ev["prod"]["events_per_cpu_s"] and p["prod"]["events_per_cpu_s"]:
                ratios[peer]["steady_per_cpu"] = round(
                    ev["prod"]["events_per_cpu_s"] / p["prod"]["events_per_cpu_s"], 3)
        targets = []
        for t in m["targets"]:
            if t["metric"] == "rss_mib":
                value = max(q["peak_rss_mib"] for q in ev["processes"].values())
                met = value <= t["max"]
            else:
                key = {"wall": "time", "steady_per_cpu": "steady_per_cpu"}.get(t["metric"], "cpu")
                value = ratios.get(t["peer"], {}).get(key)
                met = value is not None and value >= t["min"]
            targets.append(dict(t, value=value, met=met))
        out["workloads"].append(dict(m, sides=sides, ratios=ratios, target_results=targets))

    for key in sorted({(c["store"], c["key"]) for c in ckpts}):
        cs = [c for c in ckpts if (c["store"], c["key"]) == key]
        out["checkpoints"].append({
            "store": key[0], "key": key[1], "checkpoints": len(cs), "wall_s": cs[0]["wall"],
            "bytes_median": median([c["bytes"] for c in cs]),
            "bytes_max": max(c["bytes"] for c in cs),
            "uploaded_bytes_median": median([c["uploaded_bytes"] for c in cs]),
            "uploaded_bytes_max": max(c["uploaded_bytes"] for c in cs),
            "duration_ms_median": median([c["duration_ms"] for c in cs]),
        })

    for name in ("latency", "recovery", "scaleout"):
        f = work / f"{name}.ndjson"
        out[name] = [json.loads(l) for l in f.read_text().splitlines() if l] if f.exists() else []

    out["scaleout_summary"] = scaleout_summary(out["scaleout"])
    json_path.write_text(json.dumps(out, indent=1) + "\n")
    md_path.write_text(markdown(out))


def markdown(out):
    run = out["run"]
    L = []
    L.append("# evpipe benchmarks: latest run")
    L.append("")
    L.append(f"`bench/run` (`make bench`), BENCH_SCALE={run['scale']} ({run['events']:,} events, "
             f"about {run['event_bytes']} bytes each, 5% invalid, 2% late), a warm-up then "
             f"{run['reps']} repetitions of each side, evpipe and peer taking turns. "
             f"{run['started']} on {run['cores']} cores / {run['mem_gib']} GiB, commit {run['commit']}; "
             f"the run took {run['elapsed_s'] // 60} min {run['elapsed_s'] % 60} s.")
    L.append(f"Peers: kcat {run['kcat']}, {run['jq']}, Python jsonschema {run['jsonschema']}, "
             f"Flink {run['flink']} (MiniCluster, parallelism 2, RocksDB state, Java {run['java']}), "
             f"clickhouse-client {run['clickhouse']}; servers Kafka {run['kafka']}, ClickHouse {run['clickhouse']}.")
    if run.get("cpu_pressure_pct"):
        L.append(f"Other work on the machine: CPU pressure (PSI some, 5 min) {run['cpu_pressure_pct'][0]}% at the "
                 f"start, {run['cpu_pressure_pct'][1]}% at the end; 15-min load {run['load15'][0]} / {run['load15'][1]}.")
    L.append("")
    L.append("Ratio = peer time / evpipe time (above 1: evpipe is faster), medians; per CPU = the same with "
             "CPU seconds of all processes (throughput per core). Spread: the fastest and slowest repetition.")
    L.append("")
    L.append("| workload | evpipe | peer | evpipe median (spread) | peer median (spread) | evpipe ev/s | peer ev/s "
             "| ratio | ratio per CPU | target |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for w in out["workloads"]:
        names = list(w["sides"])
        ev = w["sides"][names[0]]
        tgt = {t["peer"]: t for t in w["target_results"] if "peer" in t}
        peers = w["peers"] or [None]
        for peer in peers:
            p = w["sides"].get(peer) if peer else None
            r = w["ratios"].get(peer, {}) if peer else {}
            t = tgt.get(peer)
            ttxt = ""
            if t:
                want = f"≥ {t['min']}×" + (" per core" if t["metric"] in ("cpu", "steady_per_cpu") else "")
                ttxt = f"{want}: {'met' if t['met'] else '**missed**'}"
            rss = [t for t in w["target_results"] if t["metric"] == "rss_mib"]
            if rss and peer == peers[0]:
                rt = rss[0]
                ttxt += ("; " if ttxt else "") + f"RSS {rt['value']:.0f} MiB ≤ {rt['max']}: " + \
                    ("met" if rt["met"] else "**missed**")
            L.append(
                f"| {w['title']} | {w['evpipe']} | {peer or '-'} "
                f"| {fmt_s(ev['median_s'])} s ({fmt_s(ev['min_s'])}–{fmt_s(ev['max_s'])}) "
                + (f"| {fmt_s(p['median_s'])} s ({fmt_s(p['min_s'])}–{fmt_s(p['max_s'])}) " if p else "| - ")
                + f"| {fmt_rate(w['events'], ev['median_s'])} "
                + (f"| {fmt_rate(w['events'], p['median_s'])} " if p else "| - ")
                + (f"| {r['time']:.2f} ({min(r['per_rep_time']):.2f}–{max(r['per_rep_time']):.2f}) "
                   if r.get("per_rep_time") else "| - ")
                + (f"| {r['cpu']:.2f} " if r.get("cpu") else "| - ")
                + f"| {ttxt} |")
    L.append("")
    L.append("Flink on a file: the job's net runtime and the CPU of its JVM during `execute()` (JVM and "
             "MiniCluster start-up, about 3 s, left out); end to end: from launching `java` to its exit.")
    L.append("")
    L.append("## Memory and CPU of each process")
    L.append("")
    L.append("| workload | side | process | peak RSS MiB | CPU s per million events |")
    L.append("|---|---|---|---|---|")
    for w in out["workloads"]:
        for side_name, side in w["sides"].items():
            for name, p in side["processes"].items():
                L.append(f"| {w['id']} | {side_name} | {name} | {p['peak_rss_mib']:.0f} | {p['cpu_s_per_million_events']:.2f} |")
    if out["checkpoints"]:
        L.append("")
        L.append("## Checkpoints")
        L.append("")
        L.append("The job from the topic (kin → evvalidate → evwindow, without chsink), a barrier every second "
                 "(`kin --checkpoint-interval 1s`), sizes from the manifests: `bytes` is the checkpoint's whole "
                 "state, `uploaded_bytes` what this checkpoint wrote to the store (incremental: SST files "
                 "already there are shared).")
        L.append("")
        L.append("| store | key | checkpoints | run s | bytes per checkpoint (median, max) "
                 "| uploaded bytes per checkpoint (median, max) | duration ms (median) |")
        L.append("|---|---|---|---|---|---|---|")
        for c in out["checkpoints"]:
            L.append(f"| {c['store']} | {c['key']} | {c['checkpoints']} | {c['wall_s']:.1f} "
                     f"| {c['bytes_median'] / 1e6:.2f} MB, {c['bytes_max'] / 1e6:.2f} MB "
                     f"| {c['uploaded_bytes_median'] / 1e6:.2f} MB, {c['uploaded_bytes_max'] / 1e6:.2f} MB "
                     f"| {c['duration_ms_median']:.0f} |")
    L.extend(production(out))
    L.extend(scaleout(out))
    L.append("")
    return "\n".join(L)


def fmt_ms(x):
    return "-" if x is None else f"{x:.0f}"


def production(out):
    """The production configuration: e2e-prod, latency, recovery (README "Performance")."""
    L = []
    prod = [w for w in out["workloads"] if w["id"] == "e2e-prod"]
    if prod:
        w = prod[0]
        L += ["", "## Production configuration (e2e-prod)", "",
              "Kafka topic of 6 partitions -> ClickHouse, exactly-once checkpoints to the S3 server on both sides "
              "(evpipe: pipelines/events-to-clickhouse.sh; Flink: RocksDB incremental, JDBC sink, parallelism 2). "
              "Steady = events committed from the first to the last committed checkpoint over that time (consumer "
              "group offsets, polled every 250 ms). Events per CPU second: all events over the CPU of every "
              "process of the run, Kafka's and ClickHouse's included (shared servers: other work on them counts).",
              "",
              "| side | steady events/s | commits | events per CPU s | CPU s per M events | checkpoints "
              "| duration ms (median) | sync ms | async ms | size (median) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
        for name, sd in w["sides"].items():
            p = sd.get("prod", {})
            L.append(f"| {name} | {fmt_rate(p.get('steady_events_per_s') or 0, 1) if p.get('steady_events_per_s') else '-'} "
                     f"| {p.get('commits')} "
                     f"| {fmt_rate(p['events_per_cpu_s'], 1) if p.get('events_per_cpu_s') else '-'} "
                     f"| {fmt_s(p.get('cpu_s_per_million_events'))} | {p.get('checkpoints')} "
                     f"| {fmt_ms(p.get('checkpoint_duration_ms_median'))} | {fmt_ms(p.get('checkpoint_sync_ms_median'))} "
                     f"| {fmt_ms(p.get('checkpoint_async_ms_median'))} "
                     f"| {(p.get('checkpoint_bytes_median') or 0) / 1e6:.2f} MB |")
        r = w["ratios"].get("flink", {})
        if r.get("steady_per_cpu"):
            L += ["", f"Events per CPU second, evpipe / Flink: {r['steady_per_cpu']:.2f} (target ≥ 8)."]
    if out.get("latency"):
        L += ["", "## Latency", "",
              "A producer at a fixed rate, event time = wall clock; for every window row, the delay from the "
              "window's end + out-of-orderness to the first poll (every 100 ms) of ClickHouse that sees it. "
              "Producer behind: how late the producer finished against its rate; its lag is in every delay "
              "after it (the figures then measure the machine, not the job). Rows: those seen of the windows in "
              "range (the job runs until all are in ClickHouse, for at most the run's seconds more).", "",
              "| rate events/s | side | seconds | window | producer behind s | rows (of) | p50 ms | p99 ms | max ms |",
              "|---|---|---|---|---|---|---|---|---|"]
        for x in out["latency"]:
            behind = x.get("producer_behind_ms")
            L.append(f"| {x['rate']} | {x['side']} | {x['seconds']} | {x['window']} "
                     f"| {'-' if behind is None else f'{behind / 1000:.1f}'} | {x['rows']} ({x.get('expected_rows', '-')}) "
                     f"| {fmt_ms(x['p50_ms'])} | {fmt_ms(x['p99_ms'])} | {fmt_ms(x['max_ms'])} |")
    if out.get("recovery"):
        L += ["", "## Recovery", "",
              "SIGKILL of evwindow (of Flink's JVM) while the producer runs, the job restarted at once from the "
              "latest checkpoint. Times from the kill: the first row the restarted job adds to ClickHouse, and the "
              "first committed checkpoint at or past the topic's head at the restart.", "",
              "| side | events/s | users | window | open windows at the kill | first new row ms | caught up ms |",
              "|---|---|---|---|---|---|---|"]
        for x in out["recovery"]:
            L.append(f"| {x['side']} | {x['rate']} | {x['keys']} | {x['window']} | {x['open_windows'] if x['open_windows'] is not None else '-'} "
                     f"| {fmt_ms(x['first_row_ms'])} | {fmt_ms(x['caught_up_ms'])} |")
    return L


def scaleout_summary(xs):
    """The hand-over moves by state size (median and max of each figure), and the copies' runs."""
    moves = {}
    for x in xs:
        if x["part"] == "handover":
            moves.setdefault(x["windows"], []).append(x)
    out = []
    for w, ms in sorted(moves.items()):
        row = {"windows": w, "moves": len(ms), "kinds": [m["kind"] for m in ms]}
        for k in ("pause_s", "wall_s", "bytes"):
            v = [m[k] for m in ms]
            row[k] = {"median": median(v), "max": max(v)}
        v = [m["handover_wait_s"] for m in ms if m["handover_wait_s"] is not None]
        row["handover_wait_s"] = {"median": median(v), "max": max(v)} if v else None
        out.append(row)
    return {"handover": out, "copies": [x for x in xs if x["part"] == "copies"]}


def scaleout(out):
    """Scaling out (issue 14): the pause of a partition's move, and 1..K copies of the job."""
    s = out.get("scaleout_summary") or {}
    L = []
    if s.get("handover"):
        L += ["", "## Scaling out: the hand-over of a partition", "",
              "A topic of 2 partitions, each with N open windows (N keys in one window of a day, then a "
              "trickle of 100 records/s), read by kin | evwindow with checkpoints to S3; copy a owns both, "
              "copy b joins (a partition moves to it) and leaves by SIGTERM (its last checkpoint hands it "
              "back), in turns. Pause: from the new owner's assign line to the partition's first record "
              "(the state's GET and load, then kin's fetch: evpipe_handover_pause_seconds). Hand-over wait: "
              "the old owner's kin from the revoke line to the checkpoint after it complete (its PUT of the "
              "windows: evpipe_handover_wait_seconds; joins only). Wall: from the join or the SIGTERM to that "
              "first record (the group's rebalance included). Median / max.", "",
              "| open windows | moves | pause s | hand-over wait s | wall s | bytes moved |",
              "|---|---|---|---|---|---|"]
        for r in s["handover"]:
            hw = r["handover_wait_s"]
            hw = "-" if hw is None else f"{hw['median']:.3f} / {hw['max']:.3f}"
            L.append(f"| {r['windows']} | {r['moves']} ({', '.join(r['kinds'])}) "
                     f"| {r['pause_s']['median']:.3f} / {r['pause_s']['max']:.3f} | {hw} "
                     f"| {r['wall_s']['median']:.2f} / {r['wall_s']['max']:.2f} "
                     f"| {r['bytes']['median']:.0f} / {r['bytes']['max']:.0f} |")
    if s.get("copies"):
        L += ["", "## Scaling out: copies of the job on one topic", "",
              "K copies of pipelines/events-to-clickhouse.sh in one group on a topic of 6 partitions (48 event "
              "types), started on the empty topic; once the group is settled (every partition owned, each copy owning some), "
              "the events are produced, and the copies stopped once the group has committed the whole topic. Events/s from "
              "the start of the production to the group's lag at 0, and between the first and last committed checkpoint; "
              "CPU: user + sys of every copy's script and stages (the copies share the machine's cores).", "",
              "| copies | events | wall s | events/s | steady events/s | CPU s | CPU s per 1M events |",
              "|---|---|---|---|---|---|---|"]
        for x in s["copies"]:
            st = (x.get("steady") or {}).get("events_per_s")
            L.append(f"| {x['copies']} | {x['events']} | {x['wall_s']:.2f} | {x['events_per_s']:.0f} "
                     f"| {'-' if st is None else f'{st:.0f}'} | {x['cpu_s']:.2f} "
                     f"| {x['cpu_s_per_million']:.2f} |")
    return L


if __name__ == "__main__":
    main()
