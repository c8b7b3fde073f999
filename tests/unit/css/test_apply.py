"""apply.decide: duplicates, reordering, gaps, tombstones and resurrection, on the fixtures."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import blox.css
from blox.css import apply
from blox.model import ecs, events

# CI clones the repo next to a `shared` folder: <repo>/../shared/fixtures/ecs-events
FIXTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "ecs-events"
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(hours=1)


def event(name: str) -> events.Event:
    """The fixture `name`, parsed."""
    return events.parse((FIXTURES / f"{name}.json").read_text())


def stored(name: str, *, tombstoned: bool = False, version: int | None = -1) -> ecs.Record:
    """The record that applying fixture `name` to an empty store writes (optionally altered)."""
    decision = apply.decide(stored=None, event=event(name), now=EARLIER)
    assert isinstance(decision, apply.Put)
    record = decision.record
    if version != -1:
        record = dataclasses.replace(record, version=version)
    return apply.tombstone(record, EARLIER) if tombstoned else record


PUT = "put"
DUP, STALE, TOMB = apply.SkipReason.DUPLICATE, apply.SkipReason.STALE, apply.SkipReason.TOMBSTONED

CASES = [
    pytest.param(None, "task-pending", PUT, id="the first event of a task is stored"),
    pytest.param(stored("task-pending"), "task-running", PUT, id="RUNNING v2 replaces PENDING v1"),
    pytest.param(stored("task-pending"), "task-stopped", PUT, id="a gap v1 to v4 is accepted"),
    pytest.param(stored("task-running"), "task-running", DUP, id="a redelivery is a duplicate"),
    pytest.param(
        stored("task-running"), "task-pending", STALE, id="PENDING after RUNNING is stale"
    ),
    pytest.param(stored("task-stopped"), "task-running", STALE, id="nothing follows STOPPED v4"),
    pytest.param(
        stored("task-running"), "task-stopped", PUT, id="a STOPPED task is stored, not deleted"
    ),
    pytest.param(None, "task-stopped-oom", PUT, id="a task first seen STOPPED is stored"),
    pytest.param(None, "task-running-fargate", PUT, id="a Fargate task without instance is stored"),
    pytest.param(None, "task-running-legacy-arn", PUT, id="a short-ARN task is stored"),
    pytest.param(None, "instance-active", PUT, id="the first event of an instance is stored"),
    pytest.param(
        stored("instance-active"), "instance-draining", PUT, id="DRAINING v511 replaces ACTIVE v318"
    ),
    pytest.param(
        stored("instance-draining"),
        "instance-deregistered",
        PUT,
        id="a deregistered INACTIVE instance is stored, not deleted",
    ),
    pytest.param(
        stored("instance-deregistered"),
        "instance-draining",
        STALE,
        id="DRAINING after INACTIVE is stale",
    ),
    pytest.param(
        None, "instance-agent-disconnected", PUT, id="an agent disconnect is an ordinary update"
    ),
    pytest.param(
        stored("task-running", version=None),
        "task-pending",
        PUT,
        id="a stored record without a version never blocks (v0.3 bug)",
    ),
    pytest.param(
        stored("task-running", tombstoned=True),
        "task-pending",
        TOMB,
        id="an older event does not resurrect a tombstone",
    ),
    pytest.param(
        stored("task-running", tombstoned=True),
        "task-running",
        TOMB,
        id="the tombstoned version does not resurrect it either",
    ),
    pytest.param(
        stored("task-running", tombstoned=True),
        "task-stopped",
        PUT,
        id="a higher version replaces a tombstone: the task still changes in ECS",
    ),
    pytest.param(
        stored("task-running", tombstoned=True, version=None),
        "task-pending",
        PUT,
        id="a versionless tombstone never blocks",
    ),
]


@pytest.mark.parametrize(("before", "name", "expected"), CASES)
def test_decide(before: ecs.Record | None, name: str, expected: object) -> None:
    incoming = event(name)
    decision = apply.decide(stored=before, event=incoming, now=NOW)
    if expected == PUT:
        assert decision == apply.Put(
            ecs.Record(
                kind=incoming.kind,
                cluster_arn=incoming.cluster_arn,
                arn=incoming.arn,
                version=incoming.version,
                detail=incoming.detail,
                observed_at=NOW,
                deleted_at=None,
            )
        )
    else:
        assert decision == apply.Skip(expected)  # type: ignore[arg-type]


def test_a_stopped_task_keeps_its_status_and_stop_code_in_the_record() -> None:
    decision = apply.decide(stored=stored("task-running"), event=event("task-stopped"), now=NOW)
    assert isinstance(decision, apply.Put)
    assert decision.record.detail["lastStatus"] == "STOPPED"
    assert decision.record.detail["stopCode"] == "UserInitiated"
    assert not decision.record.is_tombstone


def test_decide_refuses_the_record_of_another_entity() -> None:
    with pytest.raises(ValueError, match="decided against"):
        apply.decide(stored=stored("task-stopped-oom"), event=event("task-running"), now=NOW)
    with pytest.raises(ValueError, match="decided against"):
        apply.decide(stored=stored("instance-active"), event=event("task-running"), now=NOW)


def test_a_tombstone_keeps_the_version_and_its_first_deletion_time() -> None:
    record = stored("task-running")
    first = apply.tombstone(record, EARLIER)
    assert (first.version, first.detail, first.deleted_at) == (2, record.detail, EARLIER)
    assert apply.tombstone(first, NOW).deleted_at == EARLIER


@pytest.mark.parametrize(
    ("age_s", "expired"),
    [(0, False), (599, False), (600, True), (3600, True)],
    ids=["just made", "a second before the ttl", "at the ttl", "long past the ttl"],
)
def test_a_tombstone_expires_after_its_ttl(age_s: int, expired: bool) -> None:
    record = apply.tombstone(stored("task-running"), EARLIER)
    now = EARLIER + timedelta(seconds=age_s)
    assert apply.is_expired(record, now=now, ttl_s=600) is expired


def test_a_live_record_never_expires() -> None:
    assert not apply.is_expired(stored("task-stopped"), now=NOW + timedelta(days=365), ttl_s=1)


def test_the_css_package_declares_its_surface() -> None:
    assert sorted(blox.css.__all__) == ["apply", "errors", "processor"]


def _fold(record: ecs.Record | None, delivered: list[events.Event]) -> ecs.Record | None:
    """The record after delivering `delivered` in order, checking each Put raises the version."""
    for incoming in delivered:
        decision = apply.decide(stored=record, event=incoming, now=NOW)
        if isinstance(decision, apply.Put):
            assert record is None or record.version is None or record.version < incoming.version
            record = decision.record
    return record


def versions_of(name: str, versions: list[int]) -> list[events.Event]:
    base = event(name)
    return [dataclasses.replace(base, version=v) for v in versions]


@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=40))
def test_any_delivery_order_and_duplication_ends_at_the_highest_version(
    delivered: list[int],
) -> None:
    for name in ("task-running", "instance-draining"):
        final = _fold(None, versions_of(name, delivered))
        assert final is not None
        assert final.version == max(delivered)


@given(
    st.integers(min_value=0, max_value=40),
    st.lists(st.integers(min_value=0, max_value=40), max_size=30),
)
def test_a_tombstone_is_replaced_only_by_a_strictly_higher_version(
    gone_at: int, delivered: list[int]
) -> None:
    [gone] = versions_of("task-running", [gone_at])
    grave = _fold(None, [gone])
    assert grave is not None
    final = _fold(apply.tombstone(grave, EARLIER), versions_of("task-running", delivered))
    assert final is not None
    higher = [v for v in delivered if v > gone_at]
    assert final.is_tombstone is not bool(higher)
    assert final.version == max(higher, default=gone_at)
