"""Simulator events benchmark: our EventPump + SqsPublisher against moto's own SQS ceiling.

Run from the repository root with the venv active:

    python -m bench.sim_events                      # 3 rounds x 10,000 envelopes a side, ~1 min
    python -m bench.sim_events --events 2000 --rounds 1 --depth drain --out /tmp/ev.json

Starts moto's server as a subprocess on 127.0.0.1 (its own process, so moto and the pump do
not share a GIL) and builds realistic task-change envelopes up front (not timed). Then:

1. pipeline ceiling: `EventPump` (batches of 10, `concurrency` in flight) into a counting
   publisher that renders each envelope's JSON, as `SqsPublisher` does, and drops it;
2. raw moto: a plain boto3 `SendMessageBatch` loop of the same envelopes (bodies rendered up
   front) on `concurrency` threads sharing one client;
3. ours: `EventPump` + `SqsPublisher` with the same concurrency and client setup.

2 and 3 take turns (`--rounds`), each on fresh queues; a rate is envelopes / seconds until
moto has accepted every batch (the pump: until `stop()` returns). ours/raw is printed.

Queue depth: moto 5 walks every message of a queue for each message it accepts (delay and
visibility checks for its approximate counts), so a SendMessageBatch of 10 costs ~10 x depth
and an unbounded queue measures moto's O(n^2), not the sender (one batch loop into one queue:
~850 messages/s over its first 100, ~140/s by 500, ~115/s by 600). Policies measured here
(2,000 envelopes a side, concurrency 4, 2 CPUs; raw / ours events/s):
  - `drain`: one queue and a consumer thread, ReceiveMessage(10, 1 s long poll,
    VisibilityTimeout 60 s) + DeleteMessageBatch: 52 / 55. Slower than no consumer at all:
    every receive and delete walks the queue too, on the same moto CPU, and the queue grows.
  - `rotate` to a new queue (all created beforehand, untimed) every 500 messages: 227 / 228;
    every 100: 894 / 914; every 50: 1,311 / 1,304; every 10: 2,017 / 2,096.
`rotate` every 10 (one queue per batch: depth never exceeds 10, so moto's per-request cost
and not its queue scan is what is left) is the default; `--rotate-every N` and `--depth drain`
select the others.

Every message is accounted for at the end (received by the consumer, or counted in the
rotated queues). The target (ours >= 2,000 events/s) is PASS/MISS for information only; when
raw moto itself is below it, a note says that moto is the bottleneck. Results go to
`bench/results/sim_events.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from rich.console import Console
from rich.table import Table

from blox.clock import SystemClock
from blox.sim import events, publishers, pump
from blox.sim.state.changes import EntityChange

TARGET_EVENTS_PER_S = 2_000
ROTATE_EVERY = 10  # default of --rotate-every: a fresh queue for every batch
REGION = "us-east-1"
ACCOUNT = "123456789012"
T0 = datetime(2026, 11, 20, 9, 14, 2, 131000, tzinfo=UTC)
CLUSTER_PREFIX = f"arn:aws:ecs:{REGION}:{ACCOUNT}"
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "sim_events.json"


def task_change(number: int) -> EntityChange:
    """A RUNNING task change of realistic size (one container with two port bindings)."""
    task_id = f"{number:032x}"
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/fleet-a/{task_id}"
    updated_at = T0 + timedelta(milliseconds=number * 37)
    binding = {"bindIP": "0.0.0.0", "containerPort": 24224, "hostPort": 24224}
    detail: dict[str, Any] = {
        "attachments": [],
        "clusterArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/fleet-a",
        "containerInstanceArn": f"{CLUSTER_PREFIX}:container-instance/fleet-a/{task_id}",
        "containers": [
            {
                "containerArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:container/fleet-a/{task_id}/c",
                "lastStatus": "RUNNING",
                "name": "shipper",
                "taskArn": arn,
                "networkBindings": [{**binding, "protocol": "tcp"}, {**binding, "protocol": "udp"}],
                "cpu": "128",
                "memory": "256",
            }
        ],
        "createdAt": T0,
        "desiredStatus": "RUNNING",
        "group": "family:log-shipper",
        "lastStatus": "RUNNING",
        "launchType": "EC2",
        "startedAt": updated_at,
        "taskArn": arn,
        "taskDefinitionArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/log-shipper:7",
        "updatedAt": updated_at,
        "version": 2,
    }
    return EntityChange(kind="task", detail=detail, account=ACCOUNT, region=REGION, time=updated_at)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server in a subprocess on a free loopback port; yields its endpoint URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    try:
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("moto server did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def sqs_client(endpoint: str) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(max_pool_connections=16),
    )


class CountingPublisher:
    """Renders each envelope's JSON (the work SqsPublisher does before the wire) and counts."""

    def __init__(self) -> None:
        self.body_bytes = 0

    def publish(self, envelopes: Sequence[events.Envelope]) -> events.PublishOutcome:
        self.body_bytes += sum(len(events.envelope_json(e).encode()) for e in envelopes)
        return events.PublishOutcome(published=len(envelopes))


class Queues:
    """Fresh queues for one run under a depth policy, and the consumer that drains them."""

    def __init__(self, endpoint: str, name: str, count: int, depth: str, every: int) -> None:
        self.endpoint, self.depth, self.every = endpoint, depth, every
        self.sqs = sqs_client(endpoint)
        queues = math.ceil(count / every) if depth == "rotate" else 1
        attributes = {"VisibilityTimeout": "60"}
        self.urls: list[str] = [
            self.sqs.create_queue(QueueName=f"{name}-{i}", Attributes=attributes)["QueueUrl"]
            for i in range(queues)
        ]
        self.received, self.duplicates = 0, 0
        self._done = threading.Event()
        self._consumer = threading.Thread(target=self._consume, daemon=True)
        if depth == "drain":
            self._consumer.start()

    def url_for(self, sent_before: int) -> str:
        """The queue for the message after `sent_before` messages."""
        return self.urls[min(sent_before // self.every, len(self.urls) - 1)]

    def _consume(self) -> None:
        sqs, seen = sqs_client(self.endpoint), set[str]()
        while True:
            messages = sqs.receive_message(
                QueueUrl=self.urls[0], MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            if not messages and self._done.is_set():
                return
            for message in messages:
                self.duplicates += message["MessageId"] in seen
                seen.add(message["MessageId"])
            self.received += len(messages)
            if messages:
                entries = [
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ]
                sqs.delete_message_batch(QueueUrl=self.urls[0], Entries=entries)

    def accounted(self) -> int:
        """Messages received (drain) or still queued (rotate), once the sender is done."""
        if self.depth == "drain":
            self._done.set()
            self._consumer.join()
            return self.received - self.duplicates
        names = ["ApproximateNumberOfMessages"]
        return sum(
            int(self.sqs.get_queue_attributes(QueueUrl=u, AttributeNames=names)["Attributes"][n])
            for u in self.urls
            for n in names
        )


class RoutedSqsPublisher:
    """SqsPublisher onto the queue `Queues.url_for` names (a new one every `every` messages)."""

    def __init__(self, queues: Queues) -> None:
        self._queues, self._lock, self._sent = queues, threading.Lock(), 0
        self._by_url = {u: publishers.SqsPublisher(queues.sqs, u) for u in queues.urls}

    def publish(self, envelopes: Sequence[events.Envelope]) -> events.PublishOutcome:
        with self._lock:
            url = self._queues.url_for(self._sent)
            self._sent += len(envelopes)
        return self._by_url[url].publish(envelopes)


async def pump_all(
    publisher: events.Publisher, batch: list[events.Envelope], concurrency: int
) -> tuple[float, pump.PumpCounters]:
    """Offer everything, then wait until every batch was accepted: (seconds, counters)."""
    started = time.perf_counter()
    running = pump.EventPump(
        publisher, clock=SystemClock(), capacity=len(batch), linger_s=0.0, concurrency=concurrency
    )
    async with running:
        for envelope in batch:
            running.offer(envelope)
    return time.perf_counter() - started, running.counters


def raw_send(queues: Queues, bodies: list[str], concurrency: int) -> tuple[float, int]:
    """Plain SendMessageBatch of 10 bodies on `concurrency` threads: (seconds, failed)."""

    def send(start: int) -> int:
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start:][:10])]
        answer = queues.sqs.send_message_batch(QueueUrl=queues.url_for(start), Entries=entries)
        return len(answer.get("Failed", []))

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        failed = sum(pool.map(send, range(0, len(bodies), 10)))
    return time.perf_counter() - started, failed


def run(count: int, rounds: int, concurrency: int, depth: str, every: int) -> dict[str, Any]:
    """Pipeline ceiling, then raw and ours taking turns on fresh queues; returns the figures."""
    factory = events.EnvelopeFactory(random.Random(1))
    batch = [factory.build(task_change(n)) for n in range(count)]
    bodies = [events.envelope_json(e) for e in batch]
    counting = CountingPublisher()
    memory_s, memory_counters = asyncio.run(pump_all(counting, batch * rounds, concurrency))
    totals = {"raw_s": 0.0, "ours_s": 0.0, "raw_failed": 0, "accounted_raw": 0}
    totals |= {"accounted_ours": 0, "published": 0, "failed": 0, "dropped_full": 0}
    per_round: dict[str, list[float]] = {"raw": [], "ours": []}
    with moto_server() as endpoint:
        for number in range(rounds):
            raw_queues = Queues(endpoint, f"raw-{number}", count, depth, every)
            seconds, failed = raw_send(raw_queues, bodies, concurrency)
            totals["raw_s"] += seconds
            per_round["raw"].append(round(count / seconds, 1))
            totals["raw_failed"] += failed
            totals["accounted_raw"] += raw_queues.accounted()
            ours_queues = Queues(endpoint, f"ours-{number}", count, depth, every)
            routed = RoutedSqsPublisher(ours_queues)
            seconds, counters = asyncio.run(pump_all(routed, batch, concurrency))
            totals["ours_s"] += seconds
            per_round["ours"].append(round(count / seconds, 1))
            totals["accounted_ours"] += ours_queues.accounted()
            totals["published"] += counters.published
            totals["failed"] += counters.failed
            totals["dropped_full"] += counters.dropped_full
    sent = count * rounds
    raw_rate, ours_rate = sent / totals["raw_s"], sent / totals["ours_s"]
    return {
        "events_per_side": sent,
        "rounds": rounds,
        "concurrency": concurrency,
        "depth": depth if depth == "drain" else f"rotate every {every}",
        "mean_body_bytes": round(sum(len(b.encode()) for b in bodies) / count),
        "pipeline_events_per_s": round(sent / memory_s, 1),
        "pipeline_published": memory_counters.published,
        "raw_events_per_s": round(raw_rate, 1),
        "ours_events_per_s": round(ours_rate, 1),
        "ratio_ours_raw": round(ours_rate / raw_rate, 3),
        "per_round_events_per_s": per_round,
    } | {key: round(value, 3) for key, value in totals.items()}


def main(argv: list[str] | None = None) -> None:
    """Parse flags, run, print the table and notes, and write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.sim_events", description=__doc__)
    parser.add_argument("--events", type=int, default=10_000, help="envelopes per side a round")
    parser.add_argument("--rounds", type=int, default=3, help="raw/ours turns")
    parser.add_argument("--concurrency", type=int, default=4, help="batches in flight")
    parser.add_argument("--depth", choices=("rotate", "drain"), default="rotate")
    parser.add_argument("--rotate-every", type=int, default=ROTATE_EVERY, help="messages a queue")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    f = run(args.events, args.rounds, args.concurrency, args.depth, args.rotate_every)
    ours, raw, sent = f["ours_events_per_s"], f["raw_events_per_s"], f["events_per_side"]
    verdict = "PASS" if ours >= TARGET_EVENTS_PER_S else "MISS"
    title = f"blox.sim events → moto SQS ({f['depth']}, concurrency {f['concurrency']})"
    table = Table(title=title)
    for column in ("figure", "value", "target"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    rows = [
        ("pipeline ceiling: pump → counting publisher, events/s",
         f"{f['pipeline_events_per_s']:,.0f}", ""),
        ("raw moto: boto3 SendMessageBatch loop, events/s", f"{raw:,.0f}", ""),
        ("ours: EventPump + SqsPublisher, events/s", f"{ours:,.0f} {verdict}",
         f">= {TARGET_EVENTS_PER_S:,}"),
        ("ours / raw", f"{f['ratio_ours_raw']:.2f}x", ""),
        ("envelopes a side (rounds)", f"{sent:,} ({f['rounds']})", ""),
        ("mean body bytes", f"{f['mean_body_bytes']:,}", ""),
        ("ours: published / failed / dropped", f"{f['published']:,} / {f['failed']} / "
         f"{f['dropped_full']}", f"= {sent:,} / 0 / 0"),
        ("messages accounted for: raw / ours", f"{f['accounted_raw']:,} / "
         f"{f['accounted_ours']:,}", f"= {sent:,}"),
    ]  # fmt: skip
    for row in rows:
        table.add_row(*row)
    console = Console(width=None if sys.stdout.isatty() else 110)
    console.print(table)
    notes = []
    if raw < TARGET_EVENTS_PER_S:
        notes.append(
            f"moto is the bottleneck: its raw SendMessageBatch ceiling here is {raw:,.0f} "
            f"events/s (< {TARGET_EVENTS_PER_S:,}); ours reaches {f['ratio_ours_raw']:.0%} of "
            f"it, and our pipeline alone does {f['pipeline_events_per_s']:,.0f}/s"
        )
    if f["accounted_ours"] != sent or f["accounted_raw"] != sent:
        notes.append("not every message was accounted for in the queues (see the JSON)")
    for note in notes:
        console.print(f"[yellow]note[/] {note}")
    record = {
        "figures": f,
        "targets": {"ours_events_per_s": TARGET_EVENTS_PER_S, "verdict": verdict},
        "notes": notes,
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "moto": metadata.version("moto"),
            "boto3": metadata.version("boto3"),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
