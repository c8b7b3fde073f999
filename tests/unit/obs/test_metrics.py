"""CssMetrics: its own registry, collectors over the running totals, reconcile and lag figures."""

from __future__ import annotations

from datetime import UTC, datetime

import prometheus_client
import pytest

from blox.clock import ManualClock
from blox.css.ingest import IngestCounters
from blox.css.processor import Counters
from blox.obs import CssMetrics
from blox.obs.metrics import EVENT_OUTCOMES

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def metrics() -> CssMetrics:
    return CssMetrics(clock=ManualClock(start=T0))


def value(metrics: CssMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_two_services_in_one_process_keep_separate_registries_and_leave_the_global_one_alone() -> (
    None
):
    first, second = CssMetrics(clock=ManualClock()), CssMetrics(clock=ManualClock())
    first.observe_lag(1.0)

    assert value(first, "blox_css_queue_lag_seconds_count") == 1.0
    assert value(second, "blox_css_queue_lag_seconds_count") == 0.0
    global_names = {m.name for m in prometheus_client.REGISTRY.collect()}
    assert not any(name.startswith("blox_") for name in global_names)


def test_event_totals_are_read_from_the_processors_counters_at_scrape_time(
    metrics: CssMetrics,
) -> None:
    counters = Counters()
    metrics.track_events(counters)
    assert value(metrics, "blox_css_events_received_total") == 0.0

    counters.received, counters.applied, counters.stale = 7, 4, 2
    counters.rejected, counters.conflicts = 1, 3

    assert value(metrics, "blox_css_events_received_total") == 7.0
    assert {o: value(metrics, "blox_css_events_total", outcome=o) for o in EVENT_OUTCOMES} == {
        "applied": 4.0,
        "duplicate": 0.0,
        "stale": 2.0,
        "tombstoned": 0.0,
        "rejected": 1.0,
    }
    assert value(metrics, "blox_css_cas_conflicts_total") == 3.0


def test_ingest_totals_are_read_from_the_pollers_counters(metrics: CssMetrics) -> None:
    counters = IngestCounters()
    metrics.track_ingest(counters)
    counters.received, counters.deleted = 10, 9
    counters.dead_lettered, counters.receive_errors = 1, 2

    assert value(metrics, "blox_css_sqs_messages_received_total") == 10.0
    assert value(metrics, "blox_css_sqs_messages_deleted_total") == 9.0
    assert value(metrics, "blox_css_sqs_messages_dead_lettered_total") == 1.0
    assert value(metrics, "blox_css_sqs_receive_errors_total") == 2.0
    assert value(metrics, "blox_css_sqs_delete_errors_total") == 0.0


def test_a_finished_reconcile_counts_drift_by_kind_and_action_and_stamps_the_time(
    metrics: CssMetrics,
) -> None:
    def drift(kind: str, action: str) -> float | None:
        return value(metrics, "blox_css_reconcile_drift_repaired_total", kind=kind, action=action)

    assert value(metrics, "blox_css_reconcile_last_success_timestamp_seconds") == 0.0
    assert drift("task", "written") == 0.0  # present before the first pass: rate() can start

    metrics.reconcile_finished(12.5, written={"task": 3, "instance": 1}, tombstoned={"task": 2})
    metrics.reconcile_finished(0.4, written={"task": 1})

    assert (drift("task", "written"), drift("instance", "written")) == (4.0, 1.0)
    assert (drift("task", "tombstoned"), drift("instance", "tombstoned")) == (2.0, 0.0)
    assert value(metrics, "blox_css_reconcile_duration_seconds_count") == 2.0
    assert value(metrics, "blox_css_reconcile_duration_seconds_sum") == pytest.approx(12.9)
    assert value(metrics, "blox_css_reconcile_duration_seconds_bucket", le="0.5") == 1.0
    assert value(metrics, "blox_css_reconcile_last_success_timestamp_seconds") == T0.timestamp()


def test_a_failed_reconcile_is_counted_without_moving_the_last_success(
    metrics: CssMetrics,
) -> None:
    metrics.reconcile_failed()
    assert value(metrics, "blox_css_reconcile_failures_total") == 1.0
    assert value(metrics, "blox_css_reconcile_last_success_timestamp_seconds") == 0.0


@pytest.mark.parametrize(
    ("written", "tombstoned"),
    [({"cluster": 1}, {}), ({"task": -1}, {}), ({}, {"service": 2})],
    ids=["unknown kind written", "negative count", "unknown kind tombstoned"],
)
def test_drift_of_an_unknown_kind_or_a_negative_count_is_refused(
    metrics: CssMetrics, written: dict[str, int], tombstoned: dict[str, int]
) -> None:
    with pytest.raises(ValueError, match="drift count"):
        metrics.reconcile_finished(1.0, written=written, tombstoned=tombstoned)


def test_queue_lag_lands_in_its_bucket_and_a_negative_lag_from_clock_skew_counts_as_zero(
    metrics: CssMetrics,
) -> None:
    metrics.observe_lag(42.0)
    metrics.observe_lag(-3.0)

    assert value(metrics, "blox_css_queue_lag_seconds_bucket", le="0.05") == 1.0
    assert value(metrics, "blox_css_queue_lag_seconds_bucket", le="30.0") == 1.0
    assert value(metrics, "blox_css_queue_lag_seconds_bucket", le="60.0") == 2.0
    assert value(metrics, "blox_css_queue_lag_seconds_sum") == 42.0


@pytest.mark.parametrize(
    ("accept", "content_type", "marker"),
    [
        (None, "text/plain; version=0.0.4; charset=utf-8", b"# TYPE blox_css_events_total counter"),
        (
            "application/openmetrics-text; version=1.0.0",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            b"# EOF",
        ),
    ],
    ids=["prometheus text by default", "openmetrics when asked"],
)
def test_the_exposition_is_negotiated_from_accept(
    metrics: CssMetrics, accept: str | None, content_type: str, marker: bytes
) -> None:
    metrics.track_events(Counters(received=1, applied=1))
    body, negotiated = metrics.exposition(accept)
    assert negotiated.startswith(content_type)
    assert marker in body
    assert b"blox_css_events_received_total 1.0" in body
