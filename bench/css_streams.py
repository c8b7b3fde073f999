"""Section 3 of `bench.css`: 100 stream clients on `GET /v1/stream/tasks` at 1,000 changes/s.

Three processes besides the store's:

- the server (`python -m bench.css_streams --serve STORE_URL WRITES`): the CSS API
  (`blox.css.api.create_app` under uvicorn, as `blox css` serves it) on the store, plus a
  writer on the same event loop, as ingest shares the loop with the API in `blox css`. Told
  on stdin, the writer puts task records (the processor's JSON for simulator task events, at
  their `keys.record` keys) at a paced `rate` per second, at most 16 puts in flight, and
  prints each put's store revision with the CLOCK_MONOTONIC time taken just before the put.
  The writer is here and not behind SQS because moto does not carry 1,000 events/s, and not
  in another process because an SQLite store has one process;
- the clients (`python -m bench.css_streams --clients API N`): N connections, each a minimal
  HTTP/1.1 client (asyncio protocol, chunked decoding, the `entityVersion` picked out of each
  line without a JSON parse, so that the clients cost as little CPU as possible), stamping
  each line with CLOCK_MONOTONIC when its bytes arrive;
- this process, which connects the two and computes nothing timed itself.

Delivery latency = receipt - write start, for every (client, change); every client must get
every change (counted). The server's RSS is read at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import uvicorn

from bench.css_fleet import churn
from bench.css_ingest import writes_of
from bench.css_procs import child, cpu_seconds, memory_mb
from bench.sim import percentile
from blox.css.api.app import create_app
from blox.model import events
from blox.store import Store, open_store

__all__ = ["StreamSizes", "streams_store"]

IN_FLIGHT = 16
MARK = b'"entityVersion":"'


@dataclass(frozen=True)
class StreamSizes:
    """How many clients, how fast and how long."""

    clients: int
    rate: int  # changes written per second
    seconds: float
    drain_timeout_s: float  # after the last write, how long clients may take to catch up
    idle_s: float  # ... or until no line arrived for this long


# -- the server process --------------------------------------------------------------------


def _writes(count: int) -> list[tuple[str, bytes]]:
    """`count` task record writes (key, value), from simulator task lifecycles, in order."""
    bodies = churn(int(count * 1.8) + 100, cluster="stream").bodies
    task_bodies = [b for b in bodies if json.loads(b)["detail-type"] == events.TASK_DETAIL_TYPE]
    writes = writes_of(task_bodies)
    return (writes * (count // len(writes) + 1))[:count]


def _stdin_lines() -> asyncio.Queue[str]:
    """Lines of stdin as they come ("" at EOF), from a daemon thread that never blocks exit."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def pump() -> None:
        with contextlib.suppress(RuntimeError):  # the loop may be closed by EOF time
            for line in sys.stdin:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            loop.call_soon_threadsafe(lines.put_nowait, "")

    threading.Thread(target=pump, daemon=True).start()
    return lines


async def _write(store: Store, writes: list[tuple[str, bytes]], rate: int) -> dict[str, Any]:
    in_flight = asyncio.Semaphore(IN_FLIGHT)
    sends: list[tuple[int, float]] = []

    async def put(key: str, value: bytes) -> None:
        async with in_flight:
            sent = time.monotonic()
            sends.append((await store.put(key, value), sent))

    tasks = []
    started = time.monotonic()
    for number, (key, value) in enumerate(writes):
        await asyncio.sleep(max(0.0, started + number / rate - time.monotonic()))
        tasks.append(asyncio.create_task(put(key, value)))
    await asyncio.gather(*tasks)
    seconds = time.monotonic() - started
    return {"sends": sends, "write_s": seconds, "achieved_per_s": len(writes) / seconds}


async def serve(store_url: str, count: int) -> None:
    """The server process: API + writer; commands on stdin, answers on stdout, EOF stops."""
    writes = _writes(count)  # before the ready line: outside the measured CPU time
    store = await open_store(store_url)
    sock = socket.create_server(("127.0.0.1", 0), backlog=1024)  # clients may queue at once
    config = uvicorn.Config(create_app(store=store), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    print(json.dumps({"api": f"http://127.0.0.1:{sock.getsockname()[1]}"}), flush=True)
    commands = _stdin_lines()
    try:
        while True:
            reading = asyncio.ensure_future(commands.get())
            await asyncio.wait({reading, serving}, return_when=asyncio.FIRST_COMPLETED)
            if not reading.done() or not reading.result().strip():
                reading.cancel()
                break
            command = json.loads(reading.result())
            print(json.dumps(await _write(store, writes, command["rate"])), flush=True)
    finally:
        server.should_exit = True
        await serving
        await store.close()


# -- the clients process -------------------------------------------------------------------


class StreamClient(asyncio.Protocol):
    """One stream connection: headers, then chunked lines; keeps (revision, receipt time)."""

    def __init__(self, request: bytes, connected: asyncio.Future[int]) -> None:
        self.request = request
        self.connected = connected
        self.raw = bytearray()  # bytes not yet decoded
        self.body = bytearray()  # decoded body bytes not yet split into lines
        self.chunked: bool | None = None  # None: headers not seen yet
        self.received: list[tuple[int, float]] = []
        self.last_receipt = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.connected.done():
            self.connected.set_result(0)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.raw += data
        if self.chunked is None:
            end = self.raw.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.raw[:end]).lower()
            del self.raw[: end + 4]
            self.chunked = b"transfer-encoding: chunked" in head
            if not self.connected.done():
                self.connected.set_result(int(head.split()[1]))
        self._decode()
        self._lines(now)

    def _decode(self) -> None:
        if not self.chunked:
            self.body += self.raw
            self.raw.clear()
            return
        while True:
            end = self.raw.find(b"\r\n")
            if end < 0:
                return
            size = int(self.raw[:end].split(b";")[0], 16)
            if len(self.raw) < end + 2 + size + 2:
                return
            self.body += self.raw[end + 2 : end + 2 + size]
            del self.raw[: end + 2 + size + 2]

    def _lines(self, now: float) -> None:
        cut = self.body.rfind(b"\n")
        if cut < 0:
            return
        for line in bytes(self.body[:cut]).split(b"\n"):
            at = line.find(MARK)
            if at >= 0:
                start = at + len(MARK)
                self.received.append((int(line[start : line.index(b'"', start)]), now))
                self.last_receipt = now
        del self.body[: cut + 1]


async def clients(api: str, count: int) -> None:
    """The clients process: connect `count` streams, then wait for the sends on stdin."""
    url = urlsplit(api)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    request = (
        f"GET /v1/stream/tasks HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Accept: application/octet-stream\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    streams: list[StreamClient] = []
    futures: list[asyncio.Future[int]] = []
    for _ in range(count):
        connected: asyncio.Future[int] = loop.create_future()
        protocol = StreamClient(request, connected)
        await loop.create_connection(lambda p=protocol: p, host, port)  # type: ignore[misc]
        streams.append(protocol)
        futures.append(connected)
    statuses = await asyncio.gather(*futures)
    print(json.dumps({"connected": sum(1 for s in statuses if s == 200)}), flush=True)
    command = json.loads(await _stdin_lines().get())
    sent = {int(rev): at for rev, at in command["sends"]}
    deadline = time.monotonic() + command["timeout_s"]
    while time.monotonic() < deadline:
        if all(len(s.received) >= len(sent) for s in streams):
            break
        latest = max((s.last_receipt for s in streams), default=0.0)
        if time.monotonic() - max(latest, command["since"]) > command["idle_s"]:
            break
        await asyncio.sleep(0.05)
    latencies: list[float] = []
    complete, last = 0, 0.0
    for stream in streams:
        got = {rev: at for rev, at in stream.received if rev in sent}
        complete += len(got) == len(sent)
        latencies.extend((at - sent[rev]) * 1000 for rev, at in got.items())
        last = max([last, *got.values()])
    span = last - min(sent.values(), default=last)
    print(
        json.dumps(
            {
                "clients": count,
                "complete_clients": complete,
                "deliveries": len(latencies),
                "expected_deliveries": count * len(sent),
                "p50_ms": percentile(latencies, 0.50),
                "p99_ms": percentile(latencies, 0.99),
                "max_ms": max(latencies, default=float("nan")),
                "delivered_per_s": len(latencies) / span if span > 0 else float("nan"),
            }
        ),
        flush=True,
    )


# -- the orchestration in the bench process --------------------------------------------------


def streams_store(store_url: str, sizes: StreamSizes) -> dict[str, Any]:
    """Server, clients, the paced writes, and the figures."""
    python = [sys.executable, "-m", "bench.css_streams"]
    count = int(sizes.rate * sizes.seconds)
    serving = [*python, "--serve", store_url, str(count)]
    with child(serving, name="stream server", eof_stops=True) as server:
        command = [*python, "--clients", server.ready["api"], str(sizes.clients)]
        with child(command, name="stream clients", eof_stops=True) as reader:
            cpu = {
                name: cpu_seconds(c.pid) for name, c in (("server", server), ("clients", reader))
            }
            server.send({"rate": sizes.rate})
            written = server.receive(timeout_s=sizes.seconds * 10 + 120)
            reader.send(
                {
                    "sends": written["sends"],
                    "timeout_s": sizes.drain_timeout_s,
                    "idle_s": sizes.idle_s,
                    "since": time.monotonic(),
                }
            )
            got = reader.receive(timeout_s=sizes.drain_timeout_s + 60)
            rss = memory_mb(server.pid)
            used = {
                f"{n}_cpu_s": cpu_seconds(c.pid) - cpu[n]
                for n, c in (("server", server), ("clients", reader))
            }
    used["server_cpu_us_per_delivery"] = used["server_cpu_s"] * 1e6 / max(1, got["deliveries"])
    return (
        {
            "connected": reader.ready["connected"],
            "target_rate": sizes.rate,
            "writes": float(count),
            "write_s": written["write_s"],
            "achieved_writes_per_s": written["achieved_per_s"],
            "server_rss_mb": rss,
        }
        | used
        | got
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.css_streams", description=__doc__)
    parser.add_argument("--serve", nargs=2, metavar=("STORE_URL", "WRITES"))
    parser.add_argument("--clients", nargs=2, metavar=("API", "COUNT"))
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.serve[0], int(args.serve[1])))
    elif args.clients:
        asyncio.run(clients(args.clients[0], int(args.clients[1])))
    else:
        parser.error("use `python -m bench.css` to run the benchmark")


if __name__ == "__main__":
    main()
