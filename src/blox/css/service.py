"""Composition root for `blox css`: store, processor, ingest, reconciler and the read API.

`run(settings, stop=…, ready=…)` opens the store (and brings its indexes up to date), builds the
`Processor`, the source's poller (SQS, or Kinesis for `kinesis://`), the reconciler's leader
loop on an ECS client, readiness and metrics, binds the listen socket, starts uvicorn, and calls
`ready` with what a user needs to reach it. When `stop` is set (or uvicorn exits on a signal,
or a loop ends) it shuts down in order: the reconciler (resigning its leadership), the HTTP
server, the pollers (which finish and ack the batch in hand), the AWS clients, the store.
The settings and their flag parsers live in `blox.css.settings`. Caller: `blox.cli.css`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Coroutine, Iterator
from datetime import timedelta
from typing import Any, Literal

import boto3
from fastapi import FastAPI

from blox.clock import Clock, SystemClock
from blox.css import reconciler
from blox.css.api.app import create_app
from blox.css.ingest.disposition import parse_queue
from blox.css.ingest.kinesis import KinesisPoller, resolve_stream
from blox.css.ingest.sqs import SqsPoller, resolve_queue
from blox.css.processor import Processor, reindex
from blox.css.reconciler import Reconciler
from blox.css.settings import (
    DEFAULT_BIND,
    DEFAULT_WAIT_TIME_S,
    BindFailed,
    CssSettings,
    SettingsInvalid,
    parse_bind,
    parse_duration,
    store_url,
)
from blox.ecs import EcsClient
from blox.obs import CssMetrics, Readiness, listen
from blox.obs.health import store_check
from blox.store import Store, compaction, open_store

__all__ = [
    "DEFAULT_BIND",
    "DEFAULT_WAIT_TIME_S",
    "BindFailed",
    "CssSettings",
    "SettingsInvalid",
    "parse_bind",
    "parse_duration",
    "run",
    "store_url",
]

DUMMY_CREDENTIALS = "testing"  # what moto accepts; used only with an endpoint URL


@contextlib.contextmanager
def _aws_client(settings: CssSettings, service: Literal["sqs", "kinesis"]) -> Iterator[Any]:
    """A boto3 client of the event source; placeholder keys for a bare endpoint (moto)."""
    dummy = settings.sqs_endpoint_url is not None and "AWS_ACCESS_KEY_ID" not in os.environ
    session = boto3.session.Session(
        region_name=settings.region,
        aws_access_key_id=DUMMY_CREDENTIALS if dummy else None,
        aws_secret_access_key=DUMMY_CREDENTIALS if dummy else None,
    )
    client = session.client(service, endpoint_url=settings.sqs_endpoint_url)
    try:
        yield client
    finally:
        client.close()


async def run(
    settings: CssSettings,
    *,
    stop: asyncio.Event,
    ready: Callable[[dict[str, Any]], None] | None = None,
    clock: Clock | None = None,
) -> None:
    """Ingest, reconcile and serve until `stop` is set (or uvicorn exits); then stop in order."""
    clock = clock or SystemClock()
    store = await open_store(settings.store_url, clock=clock)
    try:
        # A store written before the indexes existed is indexed first (minutes at 100k records
        # on etcd; a no-op after). SIGTERM meanwhile stops at once: reindex is idempotent.
        if not await listen.unless_stopped(stop, reindex(store)):
            return
        with contextlib.ExitStack() as clients:
            ecs = clients.enter_context(_ecs_client(settings, clock))
            processor = Processor(store, clock=clock, accounts=settings.accounts)
            metrics = CssMetrics(clock=clock)
            metrics.track_events(processor.counters)
            poller, source = await _source(settings, clients, store, processor, metrics, clock)
            metrics.track_ingest(poller.counters)
            readiness = _readiness(settings, store, clock)
            sock = listen.bind(settings.host, settings.port)
            try:
                # coroutines made only once bound: a port in use leaves none never awaited
                reconciling = _reconciling(settings, store, ecs, processor, clock, metrics)
                compacting = compaction.lead(store, identity=settings.identity, clock=clock)
                leaders = [compacting] if reconciling is None else [compacting, reconciling]
                summary = {"api": listen.api_url(sock), "store": store.url, "queue": source}
                app = create_app(store=store, readiness=readiness, metrics=metrics)
                await _serve(
                    app,
                    sock,
                    poller,
                    leaders,
                    stop=stop,
                    ready=lambda: _call(ready, summary),
                )
            finally:
                sock.close()
    finally:
        await store.close()


async def _source(
    settings: CssSettings,
    clients: contextlib.ExitStack,
    store: Store,
    processor: Processor,
    metrics: CssMetrics,
    clock: Clock,
) -> tuple[SqsPoller | KinesisPoller, str]:
    """The poller of `--queue` (an SQS queue or a Kinesis stream) and the source's URL or ARN."""
    if parse_queue(settings.queue)[0] == "kinesis":
        kinesis = clients.enter_context(_aws_client(settings, "kinesis"))
        stream_arn = await asyncio.to_thread(resolve_stream, kinesis, settings.queue)
        poller = KinesisPoller(
            kinesis,
            stream_arn,
            store=store,
            process_many=processor.process_many,
            clock=clock,
            observe_lag=metrics.observe_lag,
        )
        return poller, stream_arn
    sqs = clients.enter_context(_aws_client(settings, "sqs"))
    queue_url = await asyncio.to_thread(resolve_queue, sqs, settings.queue)
    dead_letter_url = None
    if settings.dead_letter_queue:
        dead_letter_url = await asyncio.to_thread(resolve_queue, sqs, settings.dead_letter_queue)
    sqs_poller = SqsPoller(
        sqs,
        queue_url,
        process_many=processor.process_many,
        clock=clock,
        pollers=settings.pollers,
        wait_time_s=settings.wait_time_s,
        visibility_s=settings.visibility_s,
        dead_letter_url=dead_letter_url,
        observe_lag=metrics.observe_lag,
    )
    return sqs_poller, queue_url


@contextlib.contextmanager
def _ecs_client(settings: CssSettings, clock: Clock) -> Iterator[EcsClient]:
    client = EcsClient.create(
        region=settings.region, endpoint_url=settings.ecs_endpoint_url, clock=clock
    )
    try:
        yield client
    finally:
        client.close()


def _readiness(settings: CssSettings, store: Store, clock: Clock) -> Readiness:
    """Ready when the store answers and, if reconciling, the store was reconciled lately.

    "Lately": a pass finished since this process started, or within the last two intervals.
    The pass may be another replica's (the leader's): the marker is read from the store, so a
    standby restarted between two passes is ready at once, not an interval later.
    """
    readiness = Readiness(clock=clock)
    readiness.add_check("store", store_check(store))
    if settings.reconcile_interval_s:
        started = clock.now()
        recent = timedelta(seconds=2 * settings.reconcile_interval_s)

        async def reconciled() -> bool:
            finished = await reconciler.last_reconciled(store)
            return finished is not None and finished >= min(started, clock.now() - recent)

        readiness.add_check(
            "reconcile", reconciled, failing="no reconcile pass has finished lately"
        )
    return readiness


def _reconciling(
    settings: CssSettings,
    store: Store,
    ecs: EcsClient,
    processor: Processor,
    clock: Clock,
    metrics: CssMetrics,
) -> Coroutine[Any, Any, None] | None:
    """The reconciler's leader loop, or None when `--reconcile-interval 0` turned it off."""
    if settings.reconcile_interval_s == 0:
        return None
    pass_ = Reconciler(store, ecs, processor, clock=clock, tombstone_ttl_s=settings.tombstone_ttl_s)
    return reconciler.lead(
        store,
        pass_,
        interval_s=settings.reconcile_interval_s,
        identity=settings.identity,
        clock=clock,
        on_report=lambda r: metrics.reconcile_finished(
            r.duration_s, written=r.written, tombstoned=r.tombstoned
        ),
        on_failure=lambda _: metrics.reconcile_failed(),
    )


def _call(ready: Callable[[dict[str, Any]], None] | None, summary: dict[str, Any]) -> None:
    if ready is not None:
        ready(summary)


async def _serve(
    app: FastAPI,
    sock: socket.socket,
    poller: SqsPoller | KinesisPoller,
    leaders: list[Coroutine[Any, Any, None]],
    *,
    stop: asyncio.Event,
    ready: Callable[[], None],
) -> None:
    server = listen.server(app)
    polling = asyncio.create_task(poller.run(), name="blox.css.poller")
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="blox.css.api")
    stopped = asyncio.create_task(stop.wait(), name="blox.css.stop")
    background = {asyncio.create_task(work, name="blox.css.leader") for work in leaders}
    listen.settle_heap()
    ready()
    try:
        await asyncio.wait(
            {polling, serving, stopped, *background}, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stopped.cancel()
        for task in background:  # a pass in hand is cut: its writes are version-ordered
            task.cancel()
        await asyncio.wait(background or {stopped})
        server.should_exit = True
        await asyncio.wait({serving})
        await poller.stop()  # finishes and acks the batch in hand
        await asyncio.wait({polling})
    for task in (serving, polling, *background):  # a crash is reported, not swallowed
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
