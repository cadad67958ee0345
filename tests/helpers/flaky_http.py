#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""flaky_http.py: an HTTP proxy in front of ClickHouse that fails INSERTs on purpose.

Usage: flaky_http.py --target URL --port-file FILE [--fail N] [--status CODE] [--log FILE]

Listens on 127.0.0.1 (a free port, written to --port-file once it listens). The first N
requests whose query is an INSERT (N = -1: all of them) are answered with --status
(default 503) and a body that is not a ClickHouse exception; every other request is
forwarded to --target as it came (path, query, body, Authorization and Content-Encoding)
and ClickHouse's answer is relayed. Each request is logged to --log as one line:
"<status> <INSERT|OTHER> gzip=<0|1> bytes=<body length>". Connections are kept alive.
"""
import argparse
import http.server
import os
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--fail", type=int, default=0)
    ap.add_argument("--status", type=int, default=503)
    ap.add_argument("--log")
    args = ap.parse_args()
    lock = threading.Lock()
    state = {"fail": args.fail}

    def log(line):
        if args.log:
            with lock, open(args.log, "a", encoding="utf-8") as f:
                f.write(line + "\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):  # quiet
            pass

        def answer(self, status, body, headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def handle_any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("query", [""])[0]
            kind = "INSERT" if query.lstrip().upper().startswith("INSERT") else "OTHER"
            gz = 1 if self.headers.get("Content-Encoding", "").lower() == "gzip" else 0
            if kind == "INSERT":
                with lock:
                    fail = state["fail"] != 0
                    if state["fail"] > 0:
                        state["fail"] -= 1
                if fail:
                    log(f"{args.status} {kind} gzip={gz} bytes={len(body)}")
                    self.answer(args.status, b"flaky_http: failing on purpose\n")
                    return
            req = urllib.request.Request(args.target.rstrip("/") + self.path, data=body,
                                         method=self.command)
            for h in ("Authorization", "Content-Encoding"):
                if self.headers.get(h):
                    req.add_header(h, self.headers[h])
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    status, data, hdrs = r.status, r.read(), r.headers
            except urllib.error.HTTPError as e:
                status, data, hdrs = e.code, e.read(), e.headers
            log(f"{status} {kind} gzip={gz} bytes={len(body)}")
            keep = [(k, v) for k, v in hdrs.items() if k.lower().startswith("x-clickhouse")]
            self.answer(status, data, keep)

        do_GET = handle_any
        do_POST = handle_any

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f"{srv.server_address[1]}\n")
    os.rename(tmp, args.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
