#!/usr/bin/env python3
"""A webhook receiver for benchmarks: answers 204 at once and records each delivery's end-to-end
latency — its arrival here minus the change's commit time in PostgreSQL (the payload's `timestamp`).

    webhook_sink.py PORT_FILE   # writes the port it listens on to PORT_FILE; on SIGTERM prints JSON
"""
import http.server
import json
import signal
import sys
import threading
import time
from datetime import datetime

latencies = []
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as crmd's client uses it

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        arrived = time.time()
        committed = datetime.fromisoformat(json.loads(body)["timestamp"]).timestamp()
        with lock:
            latencies.append(arrived - committed)
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        pass


def summary():
    with lock:
        values = sorted(latencies)
    if not values:
        return {"deliveries": 0}

    def at(p):
        return round(values[min(len(values) - 1, int(len(values) * p))] * 1000, 1)

    return {"deliveries": len(values), "p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "max_ms": round(values[-1] * 1000, 1)}


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[1], "w") as f:
    f.write(str(server.server_address[1]))


def stop(*_):
    print(json.dumps(summary()), flush=True)
    threading.Thread(target=server.shutdown).start()


signal.signal(signal.SIGTERM, stop)
server.serve_forever()
