# SPDX-License-Identifier: Apache-2.0
"""bench/compare-rows.py: do two sets of window rows say the same thing?

    python3 bench/compare-rows.py KEY_FIELD A_FILES... -- B_FILES...

Each side's rows (NDJSON, as evwindow writes them) are reduced to the highest version per
(window_start, KEY_FIELD), as ClickHouse's ReplacingMergeTree keeps them, and compared field by
field, numbers as numbers: integers exactly, reals to a relative 1e-9 (a sum of the same values
added in another order, as two consumers of a partitioned topic see them, differs in its last
bits). Exit 0 when equal, 1 with the first differences on stderr.
"""
import json
import math
import sys


def load(paths, key):
    rows = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip() or line.startswith('{"__evpipe"'):
                    continue
                r = json.loads(line)
                k = (r["window_start"], json.dumps(r[key]))
                if k not in rows or r["version"] > rows[k]["version"]:
                    rows[k] = r
    return rows


def same(a, b):
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, int) and isinstance(b, int):
            return a == b
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def main():
    key = sys.argv[1]
    sep = sys.argv.index("--")
    a, b = load(sys.argv[2:sep], key), load(sys.argv[sep + 1:], key)
    problems = []
    for k in sorted(set(a) | set(b)):
        if k not in a or k not in b:
            problems.append(f"{k}: only in {'the first' if k in a else 'the second'}: {a.get(k) or b.get(k)}")
            continue
        for field in sorted(set(a[k]) | set(b[k])):
            if not same(a[k].get(field), b[k].get(field)):
                problems.append(f"{k}: {field}: {a[k].get(field)!r} != {b[k].get(field)!r}")
    if problems:
        print(f"compare-rows: {len(problems)} difference(s) over {len(a)} and {len(b)} rows:", file=sys.stderr)
        for p in problems[:10]:
            print(f"  {p}", file=sys.stderr)
        sys.exit(1)
    print(f"compare-rows: {len(a)} rows equal", file=sys.stderr)


if __name__ == "__main__":
    main()
