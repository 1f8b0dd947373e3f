#!/usr/bin/env python3
"""A webhook receiver for benchmarks: answers 204 at once and records each delivery's end-to-end
latency — its arrival here minus the change's commit time in PostgreSQL (the payload's `timestamp`).
One asyncio event loop parsing HTTP/1.1 itself, so the receiver's own CPU stays small next to crmd's.

    webhook_sink.py PORT_FILE   # writes the port it listens on to PORT_FILE; on SIGTERM prints JSON
"""
import asyncio
import json
import signal
import sys
import time
from datetime import datetime

latencies = []


class Receiver(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data):
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            arrived = time.time()
            committed = datetime.fromisoformat(json.loads(body)["timestamp"]).timestamp()
            latencies.append(arrived - committed)
            self.transport.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")


def summary():
    values = sorted(latencies)
    if not values:
        return {"deliveries": 0}

    def at(p):
        return round(values[min(len(values) - 1, int(len(values) * p))] * 1000, 1)

    return {"deliveries": len(values), "p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "max_ms": round(values[-1] * 1000, 1)}


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Receiver, "127.0.0.1", 0)
    with open(sys.argv[1], "w") as f:
        f.write(str(server.sockets[0].getsockname()[1]))
    stopped = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stopped.set_result, None)
    await stopped
    print(json.dumps(summary()), flush=True)
    server.close()


asyncio.run(main())
