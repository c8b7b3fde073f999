"""The cluster state service's Prometheus metrics, in a registry of its own.

Built once per service by `css/service.py` (`CssMetrics(clock=...)`) and handed to whoever
counts. The processor and the SQS pollers keep plain integer totals (`processor.Counters`,
`IngestCounters`); `track_events` / `track_ingest` register collectors that read them at scrape
time, so those loops need no Prometheus code. The SQS poller reports queue lag through
`observe_lag`; the reconciler reports each pass through `reconcile_finished` /
`reconcile_failed`; the HTTP app times requests through `requests` (see `blox.obs.http`).
`GET /metrics` serves `exposition(accept)`.

Invariants: every name starts with `blox_css_`; every label value comes from a small fixed set
(outcome, kind, action, method, route template, status), never from request input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Final, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from blox.clock import Clock
from blox.obs.http import RequestMetrics

__all__ = [
    "DRIFT_ACTIONS",
    "DRIFT_KINDS",
    "EVENT_OUTCOMES",
    "PREFIX",
    "SCHEDULER_PREFIX",
    "CssMetrics",
    "EventCounts",
    "IngestCounts",
    "KinesisCounts",
    "SchedulerCounts",
    "SchedulerMetrics",
    "exposition",
]

PREFIX: Final = "blox_css"
SCHEDULER_PREFIX: Final = "blox_scheduler"
EVENT_OUTCOMES: Final = ("applied", "duplicate", "stale", "tombstoned", "rejected")
DRIFT_KINDS: Final = ("task", "instance")
DRIFT_ACTIONS: Final = ("written", "tombstoned")
# From a busy queue's seconds to a backlog of an hour: the SLO question is "minutes behind?".
LAG_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)
# A pass lists and describes every cluster: seconds on a small fleet, minutes on a large one.
RECONCILE_BUCKETS: Final = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


class EventCounts(Protocol):
    """Running totals of the event processor (`blox.css.processor.Counters` fits)."""

    received: int
    applied: int
    duplicate: int
    stale: int
    tombstoned: int
    rejected: int
    conflicts: int


class IngestCounts(Protocol):
    """Running totals of a poller set (`blox.css.ingest.IngestCounters` fits)."""

    received: int
    processed: int
    deleted: int
    dead_lettered: int
    poison_dropped: int
    temporary_failures: int
    receive_errors: int
    delete_errors: int


# IngestCounts field → (metric name after the prefix, help).
_INGEST: Final = {
    "received": ("sqs_messages_received", "SQS deliveries received (a redelivery counts again)."),
    "processed": ("sqs_messages_processed", "SQS messages whose processing returned."),
    "deleted": ("sqs_messages_deleted", "SQS messages deleted from the source queue."),
    "dead_lettered": ("sqs_messages_dead_lettered", "Poison messages sent to the DLQ."),
    "poison_dropped": ("sqs_messages_poison_dropped", "Poison deleted for want of a DLQ."),
    "temporary_failures": ("sqs_temporary_failures", "Messages left for redelivery."),
    "receive_errors": ("sqs_receive_errors", "ReceiveMessage calls that failed."),
    "delete_errors": ("sqs_delete_errors", "Failed DeleteMessageBatch calls or entries."),
}


class KinesisCounts(Protocol):
    """Running totals of a Kinesis poller (`blox.css.ingest.kinesis.KinesisCounters` fits)."""

    received: int
    processed: int
    poison_skipped: int
    temporary_failures: int
    read_errors: int
    checkpoints: int
    checkpoint_errors: int
    shards_drained: int


# KinesisCounts field → (metric name after the prefix, help).
_KINESIS: Final = {
    "received": ("kinesis_records_received", "Kinesis records read (a re-read counts again)."),
    "processed": ("kinesis_records_processed", "Kinesis records whose processing returned."),
    "poison_skipped": ("kinesis_records_poison_skipped", "Poison records logged and skipped."),
    "temporary_failures": ("kinesis_temporary_failures", "Records to be read again."),
    "read_errors": ("kinesis_read_errors", "ListShards/GetShardIterator/GetRecords failures."),
    "checkpoints": ("kinesis_checkpoints", "Shard checkpoints written to the store."),
    "checkpoint_errors": ("kinesis_checkpoint_errors", "Checkpoint reads or writes that failed."),
    "shards_drained": ("kinesis_shards_drained", "Closed shards read to their end."),
}


class _Reading:
    """A collector that turns running totals into counter families at scrape time."""

    def __init__(self, read: Callable[[], Iterable[Metric]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        return list(self._read())

    def describe(self) -> Iterable[Metric]:
        return self.collect()


class CssMetrics:
    """Every metric of one CSS process; `registry` is what `/metrics` exposes."""

    def __init__(self, *, clock: Clock, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._clock = clock
        self.requests = RequestMetrics(self.registry, prefix=PREFIX, clock=clock)
        self.queue_lag = Histogram(
            f"{PREFIX}_queue_lag_seconds",
            "Seconds from SQS accepting an event to the CSS applying it.",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.reconcile_duration = Histogram(
            f"{PREFIX}_reconcile_duration_seconds",
            "Seconds one successful reconcile pass took.",
            buckets=RECONCILE_BUCKETS,
            registry=self.registry,
        )
        self.drift_repaired = Counter(
            f"{PREFIX}_reconcile_drift_repaired",
            "Records the reconciler repaired: written (missing or behind) or tombstoned (gone).",
            ["kind", "action"],
            registry=self.registry,
        )
        self.reconcile_failures = Counter(
            f"{PREFIX}_reconcile_failures",
            "Reconcile passes that failed and will be retried.",
            registry=self.registry,
        )
        self.last_reconcile = Gauge(
            f"{PREFIX}_reconcile_last_success_timestamp_seconds",
            "Unix time at which the last successful reconcile pass finished (0: none yet).",
            registry=self.registry,
        )
        for kind in DRIFT_KINDS:  # present as 0 from the start, so rate() works at once
            for action in DRIFT_ACTIONS:
                self.drift_repaired.labels(kind=kind, action=action)

    def track_events(self, counts: EventCounts) -> None:
        """Expose the processor's totals: received, per outcome, and lost CAS attempts."""

        def read() -> Iterable[Metric]:
            received = CounterMetricFamily(
                f"{PREFIX}_events_received", "ECS events handed to the processor."
            )
            received.add_metric([], counts.received)
            outcomes = CounterMetricFamily(
                f"{PREFIX}_events",
                "ECS events by what processing did: applied, or skipped (duplicate, stale, "
                "tombstoned), or rejected as not an ECS event.",
                labels=["outcome"],
            )
            for outcome in EVENT_OUTCOMES:
                outcomes.add_metric([outcome], getattr(counts, outcome))
            conflicts = CounterMetricFamily(
                f"{PREFIX}_cas_conflicts", "Compare-and-swap writes lost to a racing writer."
            )
            conflicts.add_metric([], counts.conflicts)
            return [received, outcomes, conflicts]

        self.registry.register(_Reading(read))

    def track_ingest(self, counts: IngestCounts | KinesisCounts) -> None:
        """Expose an SQS poller set's or a Kinesis poller's totals (one source per registry)."""
        names = _KINESIS if hasattr(counts, "shards_drained") else _INGEST

        def read() -> Iterable[Metric]:
            for field, (name, help_text) in names.items():
                family = CounterMetricFamily(f"{PREFIX}_{name}", help_text)
                family.add_metric([], getattr(counts, field))
                yield family

        self.registry.register(_Reading(read))

    def observe_lag(self, seconds: float) -> None:
        """One event applied `seconds` after SQS accepted it (the SQS poller's `observe_lag`)."""
        self.queue_lag.observe(max(0.0, seconds))

    def reconcile_finished(
        self,
        duration_s: float,
        *,
        written: Mapping[str, int] | None = None,
        tombstoned: Mapping[str, int] | None = None,
    ) -> None:
        """A pass succeeded in `duration_s`; `written` / `tombstoned` count repairs by kind.

        Kinds are "task" and "instance"; a count must not be negative.
        """
        for action, counts in (("written", written or {}), ("tombstoned", tombstoned or {})):
            for kind, count in counts.items():
                if kind not in DRIFT_KINDS or count < 0:
                    raise ValueError(f"drift count {kind}={count} is not a kind and a count")
                self.drift_repaired.labels(kind=kind, action=action).inc(count)
        self.reconcile_duration.observe(max(0.0, duration_s))
        self.last_reconcile.set(self._clock.now().timestamp())

    def reconcile_failed(self) -> None:
        """A pass failed (it is retried with backoff by the reconciler)."""
        self.reconcile_failures.inc()

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The scrape body and its content type, negotiated from an `Accept` header."""
        return exposition(self.registry, accept)


class SchedulerCounts(Protocol):
    """What the scheduler's controller counts (`blox.scheduler.control.Controller` fits)."""

    @property
    def passes(self) -> int:
        """Passes over every environment."""

    @property
    def actions(self) -> Mapping[str, int]:
        """Tasks started and stopped, and starts refused, by action."""


class SchedulerMetrics:
    """Every metric of one scheduler process: API latency, controller passes, actions, lead."""

    def __init__(self, *, clock: Clock, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = RequestMetrics(self.registry, prefix=SCHEDULER_PREFIX, clock=clock)
        self.reconcile_duration = Histogram(
            f"{SCHEDULER_PREFIX}_reconcile_duration_seconds",
            "Seconds one environment's plan-and-act pass took.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.leading = Gauge(
            f"{SCHEDULER_PREFIX}_leader",
            "1 while this replica leads (runs the controller), else 0.",
            registry=self.registry,
        )

    def track_controller(self, read: Callable[[], SchedulerCounts | None]) -> None:
        """Expose the current controller's passes and actions (none while standing by)."""

        def collect() -> Iterable[Metric]:
            counts = read()
            passes = CounterMetricFamily(
                f"{SCHEDULER_PREFIX}_passes", "Controller passes over every environment."
            )
            actions = CounterMetricFamily(
                f"{SCHEDULER_PREFIX}_actions",
                "Tasks started and stopped, starts ECS refused, and starts left for the next "
                "pass because ECS still throttled them.",
                labels=["action"],
            )
            passes.add_metric([], counts.passes if counts else 0)
            for action in ("started", "stopped", "failed", "throttled"):
                actions.add_metric([action], counts.actions.get(action, 0) if counts else 0)
            yield passes
            yield actions

        self.registry.register(_Reading(collect))

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The scrape body and its content type, negotiated from an `Accept` header."""
        return exposition(self.registry, accept)


def exposition(registry: CollectorRegistry, accept: str | None = None) -> tuple[bytes, str]:
    """`registry` in the Prometheus text format (or OpenMetrics, if `accept` asks for it)."""
    encode, content_type = choose_encoder(accept or "")
    return encode(registry), content_type
