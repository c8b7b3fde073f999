"""Section 1 of `bench.css`: ingest. Store CAS rate vs. what the CSS applies from moto's SQS.

Per store, on the same kind of events (`css_fleet.churn`: simulator task lifecycles, each
section on a cluster of its own name so that keys never collide):

1. raw CAS: `store.put(key, record, expect=<its last mod_revision or 0>)` of the records the
   processor would write (same JSON, same `keys.record` layout), in event order, sequentially
   and from `pollers` coroutines (entities sharded so that no two race on a key);
2. processor direct: `Processor.process(body)` from memory (parse, read, decide, CAS), no SQS;
3. raw moto: plain boto3 consumers (`pollers` threads of ReceiveMessage(10, 1 s long poll) +
   DeleteMessageBatch) draining a queue the feeder keeps filled;
4. ours: the real `blox css` (subprocess, `--pollers`) draining the same way.

The feeder publishes the simulator's envelopes with its `SqsPublisher` and keeps the queue
(visible + in flight) at most `depth` deep: moto walks the whole queue for every request, so a
deep queue measures moto. A rate is events / seconds from the first send until the queue is
empty (the CSS deletes a message only after it applied it). Afterwards the CSS's API must show
every task of the cluster in the state of its last event. `depth_effect` measures moto's drain
rate of a pre-filled queue at several depths, for the record.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from bench.css_fleet import Fleet, churn
from bench.css_procs import css_service
from bench.sim_events import sqs_client
from blox.clock import SystemClock
from blox.css import apply
from blox.css.processor import Processor
from blox.model import ecs, events
from blox.sim.publishers import SqsPublisher
from blox.store import keys, open_store

__all__ = ["depth_effect", "ingest_store", "make_queue", "writes_of"]

BATCH = 10
POLL_S = 0.01
ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
FEED_TIMEOUT_S = 600.0


def make_queue(moto: str, name: str) -> tuple[Any, str]:
    sqs = sqs_client(moto)
    url = sqs.create_queue(QueueName=f"{name}-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    return sqs, str(url)


def _in_queue(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=ATTRIBUTES)["Attributes"]
    return sum(int(attrs[name]) for name in ATTRIBUTES)


def feed(
    sqs: Any, url: str, bodies: list[str], depth: int, alive: Callable[[], bool] = lambda: True
) -> dict[str, float]:
    """Publish `bodies` keeping the queue at most `depth` deep; return when it is empty.

    `alive` is asked on every round: a consumer that died fails the feed at once.
    """
    publisher = SqsPublisher(sqs, url)
    envelopes = [json.loads(body) for body in bodies]
    sent, failed, peak, polls = 0, 0, 0, 0
    started = time.perf_counter()
    while time.perf_counter() - started < FEED_TIMEOUT_S:
        if not alive():
            raise RuntimeError("the consumer exited while the queue was being fed")
        in_queue = _in_queue(sqs, url)
        polls += 1
        peak = max(peak, in_queue)
        if sent >= len(envelopes) and in_queue == 0:
            break
        room = depth - in_queue
        if sent < len(envelopes) and room >= BATCH:
            chunk = envelopes[sent : sent + room - room % BATCH]
            failed += len(publisher.publish(chunk).failed)
            sent += len(chunk)
        else:
            time.sleep(POLL_S)
    elapsed = time.perf_counter() - started
    left = _in_queue(sqs, url)
    return {
        "events": float(sent - failed),
        "seconds": elapsed,
        "events_per_s": (sent - failed) / elapsed,
        "send_failed": float(failed),
        "left_in_queue": float(left),
        "peak_depth": float(peak),
        "depth_polls": float(polls),
    }


def _drain(moto: str, url: str, stop: threading.Event | None, wait_s: int) -> int:
    """One raw consumer: receive 10 and delete them until `stop` (None: until a receive is
    empty); returns how many messages it deleted."""
    sqs, deleted = sqs_client(moto), 0
    while stop is None or not stop.is_set():
        messages = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=BATCH,
            WaitTimeSeconds=wait_s,
            AttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
        if not messages and stop is None:
            break
        if messages:
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)
            deleted += len(messages)
    return deleted


def raw_moto(moto: str, bodies: list[str], depth: int, pollers: int) -> dict[str, float]:
    """The feeder with `pollers` plain boto3 consumers: moto's own ceiling for this shape."""
    sqs, url = make_queue(moto, "raw")
    stop = threading.Event()
    with ThreadPoolExecutor(pollers) as pool:
        consumers = [pool.submit(_drain, moto, url, stop, 1) for _ in range(pollers)]
        try:
            fed = feed(sqs, url, bodies, depth)
        finally:
            stop.set()
        deleted = sum(c.result() for c in consumers)
    sqs.delete_queue(QueueUrl=url)
    return fed | {"deleted": float(deleted)}


def depth_effect(moto: str, depths: tuple[int, ...], pollers: int) -> dict[str, dict[str, float]]:
    """Fill a fresh queue to each depth, then drain it with `pollers` raw consumers: rates/s."""
    body = churn(1, cluster="depths").bodies[0]
    entries = [{"Id": str(i), "MessageBody": body} for i in range(BATCH)]
    out: dict[str, dict[str, float]] = {}
    for depth in depths:
        sqs, url = make_queue(moto, f"depth{depth}")
        started = time.perf_counter()
        for _ in range(depth // BATCH):
            sqs.send_message_batch(QueueUrl=url, Entries=entries)
        filled = time.perf_counter() - started
        started = time.perf_counter()
        with ThreadPoolExecutor(pollers) as pool:  # each stops at its first empty receive
            drains = [pool.submit(_drain, moto, url, None, 0) for _ in range(pollers)]
            deleted = sum(d.result() for d in drains)
        drained = time.perf_counter() - started
        sqs.delete_queue(QueueUrl=url)
        out[str(depth)] = {"send_per_s": depth / filled, "drain_per_s": deleted / drained}
    return out


def _shards(items: list[Any], key: Callable[[Any], str], count: int) -> list[list[Any]]:
    """`items` split into `count` lists by a stable hash of `key(item)`, order kept."""
    shards: list[list[Any]] = [[] for _ in range(count)]
    for item in items:
        shards[zlib.crc32(key(item).encode()) % count].append(item)
    return shards


async def _rate(shards: list[list[Any]], step: Callable[[Any], Awaitable[None]]) -> float:
    async def worker(shard: list[Any]) -> None:
        for item in shard:
            await step(item)

    started = time.perf_counter()
    await asyncio.gather(*(worker(s) for s in shards))
    return sum(len(s) for s in shards) / (time.perf_counter() - started)


def writes_of(bodies: list[str]) -> list[tuple[str, bytes]]:
    """(key, value) the processor writes for each event, were nothing stored yet."""
    now = SystemClock().now()
    writes: list[tuple[str, bytes]] = []
    for body in bodies:
        event = events.parse(body)
        decision = apply.decide(stored=None, event=event, now=now)
        assert isinstance(decision, apply.Put)
        key = keys.record(event.kind, event.cluster_arn, event.arn)
        writes.append((key, ecs.encode(decision.record)))
    return writes


async def raw_cas(store_url: str, count: int, workers: int) -> dict[str, float]:
    """CAS writes/s of the processor's records in event order: sequential, and `workers`."""
    out: dict[str, float] = {}
    store = await open_store(store_url)
    try:
        for label, shards, cluster in (("seq", 1, "rawseq"), ("conc", workers, "rawcon")):
            writes = writes_of(churn(count, cluster=cluster).bodies)
            revisions: dict[str, int] = {}

            async def put(write: tuple[str, bytes], revisions: dict[str, int] = revisions) -> None:
                key, value = write
                revisions[key] = await store.put(key, value, expect=revisions.get(key, 0))

            by_key = _shards(writes, lambda w: str(w[0]), shards)
            out[f"raw_cas_{label}_per_s"] = await _rate(by_key, put)
    finally:
        await store.close()
    return out


async def processor_direct(store_url: str, fleet_: Fleet, workers: int) -> dict[str, float]:
    """`Processor.process_many` from memory as the SQS pollers call it: batches of 10 (one
    ReceiveMessage), `workers` pollers taking the next batch in turn."""
    store = await open_store(store_url)
    try:
        processor = Processor(store, clock=SystemClock())
        bodies = fleet_.bodies
        chunks = iter([bodies[i : i + 10] for i in range(0, len(bodies), 10)])

        async def poller() -> None:
            for chunk in chunks:
                await processor.process_many(chunk)

        started = time.perf_counter()
        await asyncio.gather(*(poller() for _ in range(workers)))
        rate = len(bodies) / (time.perf_counter() - started)
        counters = processor.counters
    finally:
        await store.close()
    return {"direct_per_s": rate, "direct_applied": float(counters.applied)}


def verify(api: str, fleet_: Fleet, cluster: str) -> dict[str, float]:
    """Tasks the CSS shows for `cluster` vs. the last event of each: found, wrong, missing."""
    shown: dict[str, str] = {}
    with httpx.Client(base_url=api, timeout=60) as http:
        params: dict[str, str] = {"cluster": cluster, "maxResults": "1000"}
        while True:
            page = http.get("/v1/tasks", params=params)
            page.raise_for_status()
            body = page.json()
            shown |= {i["entity"]["taskARN"]: i["entity"]["lastStatus"] for i in body["items"]}
            if not body.get("nextToken"):
                break
            params["nextToken"] = body["nextToken"]
    wrong = sum(1 for arn, status in fleet_.task_status.items() if shown.get(arn, status) != status)
    return {
        "tasks_expected": float(len(fleet_.task_status)),
        "tasks_shown": float(len(shown)),
        "tasks_wrong_status": float(wrong),
        "tasks_missing": float(len(set(fleet_.task_status) - set(shown))),
    }


def css_ingest(
    moto: str, store_url: str, fleet_: Fleet, cluster: str, depth: int, pollers: int
) -> dict[str, float]:
    """The real `blox css` on a fresh queue and `store_url`, fed to the end, then verified."""
    sqs, url = make_queue(moto, "css")
    try:
        with css_service(queue_url=url, moto=moto, store_url=store_url, pollers=pollers) as css:
            fed = feed(sqs, url, fleet_.bodies, depth, lambda: css.process.poll() is None)
            checked = verify(css.ready["api"], fleet_, cluster)
    finally:
        sqs.delete_queue(QueueUrl=url)
    return fed | checked


def _combined(rounds: list[dict[str, float]]) -> dict[str, Any]:
    """Several rounds as one: counts add up, the rate is all events / all seconds."""
    out: dict[str, Any] = {k: sum(r[k] for r in rounds) for k in rounds[0]}
    out["events_per_s"] = out["events"] / out["seconds"]
    out["peak_depth"] = max(r["peak_depth"] for r in rounds)
    out["per_round_per_s"] = [round(r["events_per_s"], 1) for r in rounds]
    return out


def ingest_store(
    moto: str,
    store_url: str,
    css_store_url: str,
    *,
    count: int,
    rounds: int,
    depth: int,
    pollers: int,
) -> dict[str, Any]:
    """Every figure of section 1 for one store; raw moto and ours take turns, `rounds` times."""
    out: dict[str, Any] = {}
    out |= asyncio.run(raw_cas(store_url, count, pollers))
    out |= asyncio.run(processor_direct(store_url, churn(count, cluster="direct"), pollers))
    raw, ours = [], []
    for number in range(rounds):
        cluster = f"ingest{number}"
        events_ = churn(count, cluster=cluster)
        raw.append(raw_moto(moto, events_.bodies, depth, pollers))
        ours.append(css_ingest(moto, css_store_url, events_, cluster, depth, pollers))
    out |= {f"moto_{k}": v for k, v in _combined(raw).items()}
    out |= {f"css_{k}": v for k, v in _combined(ours).items()}
    out["ratio_css_raw_cas"] = out["css_events_per_s"] / out["raw_cas_conc_per_s"]
    out["ratio_css_moto"] = out["css_events_per_s"] / out["moto_events_per_s"]
    out["ratio_direct_raw_cas"] = out["direct_per_s"] / out["raw_cas_conc_per_s"]
    return out
