# SPDX-License-Identifier: Apache-2.0
"""tests/helpers/chdb_run.py: a table file and queries through chdb (ClickHouse in-process, a
current release), for tests/clickhouse-current.bats.

usage: chdb_run.py SQL ROWS BATCH QUERY...

Applies the ';'-separated statements of SQL (comments and all, as chsink --create-table sends
them one by one), inserts the NDJSON lines of ROWS as chsink does (INSERT INTO <table> FORMAT
JSONEachRow, BATCH lines per insert: each insert is a part, so FINAL has duplicates to merge),
then prints each query's result as TSV followed by a line '--'. The table is the one the first
CREATE TABLE of SQL names. The engine's version goes to stderr.
"""
import re
import sys

import chdb
from chdb import session


def statements(sql):
    # '--' comments removed line by line, as the statements have no string holding '--'
    text = "\n".join(re.sub(r"--.*$", "", line) for line in sql.splitlines())
    return [s.strip() for s in text.split(";") if s.strip()]


def main():
    if len(sys.argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    sql_path, rows_path, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    queries = sys.argv[4:]
    with open(sql_path, encoding="utf-8") as f:
        stmts = statements(f.read())
    tables = [m.group(1) for s in stmts
              for m in [re.match(r"CREATE TABLE (?:IF NOT EXISTS )?(\S+)", s)] if m]
    if not tables:
        print(f"chdb_run: no CREATE TABLE in {sql_path}", file=sys.stderr)
        return 1
    s = session.Session()
    print("chdb: ClickHouse " + str(s.query("SELECT version()", "TSV")).strip(), file=sys.stderr)
    for stmt in stmts:
        s.query(stmt)
    with open(rows_path, encoding="utf-8") as f:
        rows = [line for line in f if line.strip()]
    for i in range(0, len(rows), batch):
        s.query(f"INSERT INTO {tables[0]} FORMAT JSONEachRow\n" + "".join(rows[i:i + batch]))
    for q in queries:
        sys.stdout.write(str(s.query(q, "TSV")))
        sys.stdout.write("--\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
