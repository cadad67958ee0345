#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""tcp_proxy.py: forward every connection to 127.0.0.1:PORT to TARGET (host:port), byte for
byte, so that a client's view of a server can be cut and restored (kill the proxy, start it
again on the same port) while the server and its data stay. Used for the S3 outage test: the
requests pass unchanged, their SigV4 signatures (over the Host header the client sent) too.

    tcp_proxy.py LISTEN_PORT TARGET_HOST:TARGET_PORT
"""
import socket
import sys
import threading


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    port = int(sys.argv[1])
    host, tport = sys.argv[2].rsplit(':', 1)
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(('127.0.0.1', port))
    lsock.listen(64)
    while True:
        client, _ = lsock.accept()
        try:
            server = socket.create_connection((host, int(tport)))
        except OSError:
            client.close()
            continue
        for a, b in ((client, server), (server, client)):
            threading.Thread(target=pump, args=(a, b), daemon=True).start()


if __name__ == '__main__':
    main()
