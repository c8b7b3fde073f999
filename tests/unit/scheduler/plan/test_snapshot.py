"""The planner's inputs and their small rules: task groups, ownership, room, readiness,
eligibility, `Desired.of`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blox.model.daemon import Constraint, Environment
from blox.model.errors import DaemonInvalid
from blox.scheduler.plan import readiness
from blox.scheduler.plan.eligibility import Placement, judge
from blox.scheduler.plan.snapshot import (
    GROUP_MAX_CHARS,
    Desired,
    ObservedInstance,
    TaskNeeds,
    group_of,
    parse_group,
    revision_of,
    tasks_by_instance,
)
from tests.unit.scheduler.plan.builders import NOW, T0, desired, instance, revision, task


@pytest.mark.parametrize(
    ("environment", "number", "group"),
    [
        ("web", 1, "blox:web:1"),
        ("my_env-2", 123456, "blox:my_env-2:123456"),
        ("x" * 30, 10**9, f"blox:{'x' * 30}:{10**9}"),
    ],
)
def test_a_group_names_environment_and_revision_and_parses_back(
    environment: str, number: int, group: str
) -> None:
    assert group_of(environment, number) == group
    assert len(group) <= GROUP_MAX_CHARS
    assert parse_group(group) == (environment, number)


@pytest.mark.parametrize(
    ("environment", "number"), [("", 1), ("a:b", 1), ("web", 0), ("x" * 31, 1)]
)
def test_no_group_for_a_bad_name_or_revision(environment: str, number: int) -> None:
    with pytest.raises(DaemonInvalid):
        group_of(environment, number)


@pytest.mark.parametrize(
    "group",
    [None, "", "family:app", "service:web", "blox", "blox:web", "blox:web:", "blox:web:x",
     "blox:web:01", "blox:web:-1", "blox::1", "blox:a:b:1", "blox:web:\uff11", "BLOX:web:1"],
)  # fmt: skip
def test_other_groups_are_not_ours(group: str | None) -> None:
    assert parse_group(group) is None


@pytest.mark.parametrize(
    ("group", "started_by", "revision"),
    [
        pytest.param("blox:web:3", None, 3, id="our group"),
        pytest.param("blox:api:3", "dep-1", None, id="another environment's group wins"),
        pytest.param(None, "dep-1", 1, id="a v0.3 task by its deployment id"),
        pytest.param("family:app", "dep-1", 1, id="a v0.3 task with the default group"),
        pytest.param(None, "dep-9", None, id="an unknown deployment id"),
        pytest.param(None, None, None, id="neither"),
    ],
)
def test_revision_of_a_task(
    group: str | None, started_by: str | None, revision: int | None
) -> None:
    observed = task("t-1", on="i-1", group=group, started_by=started_by)
    assert revision_of(observed, environment="web", deployments={"dep-1": 1}) == revision


GROUPS = ["blox:web:1", "blox:web:2", "blox:web:02", "blox:web:x", "blox:api:1", "blox:webx:1",
          "blox:", "family:app", None]  # fmt: skip


@given(
    st.lists(
        st.tuples(
            st.sampled_from(GROUPS),
            st.sampled_from([None, "dep-1", "dep-2"]),
            st.sampled_from(["i-1", "i-2"]),
            st.sampled_from(["RUNNING", "STOPPED"]),
        ),
        max_size=8,
    ),
    st.sampled_from([{}, {"dep-1": 4}]),
)
def test_tasks_by_instance_agrees_with_revision_of(
    rows: list[tuple[str | None, str | None, str, str]], deployments: dict[str, int]
) -> None:
    observed = [
        task(f"t-{k}", on=on, status=status, group=group, started_by=started_by)
        for k, (group, started_by, on, status) in enumerate(rows)
    ]
    want = desired(deployments=deployments)
    expected: dict[str, list[tuple[str, int]]] = {}
    for t in observed:
        rev = revision_of(t, environment="web", deployments=deployments)
        if rev is not None and t.last_status != "STOPPED":
            expected.setdefault(t.container_instance_arn or "", []).append((t.task_arn, rev))
    got = tasks_by_instance(observed, desired=want)
    assert {k: [(t.task_arn, r) for t, r in v] for k, v in got.items()} == expected


@pytest.mark.parametrize(
    ("needs", "cpu", "memory", "fits"),
    [
        (TaskNeeds(cpu=256, memory=512), 256, 512, True),
        (TaskNeeds(cpu=256, memory=512), 255, 4096, False),
        (TaskNeeds(cpu=256, memory=512), 4096, 511, False),
        (TaskNeeds(cpu=256, memory=512), None, None, True),
        (TaskNeeds(cpu=256), 0, 0, False),
        (TaskNeeds(memory=512), 0, 512, True),
        (TaskNeeds(), 0, 0, True),
    ],
)
def test_room_for_a_task(needs: TaskNeeds, cpu: int | None, memory: int | None, fits: bool) -> None:
    assert needs.fit(instance("i-1", cpu=cpu, memory=memory)) is fits


HC = TaskNeeds(has_health_check=True)


@pytest.mark.parametrize(
    ("status", "health", "needs", "since", "min_ready_s", "ready", "at"),
    [
        pytest.param("RUNNING", None, TaskNeeds(), T0, 0, True, T0, id="running, no check"),
        pytest.param("PENDING", None, TaskNeeds(), None, 0, False, None, id="pending"),
        pytest.param("RUNNING", "HEALTHY", HC, T0, 0, True, T0, id="healthy"),
        pytest.param("RUNNING", "UNKNOWN", HC, T0, 0, False, None, id="health unknown"),
        pytest.param("RUNNING", "UNHEALTHY", HC, T0, 0, False, None, id="unhealthy"),
        pytest.param("RUNNING", "UNHEALTHY", TaskNeeds(), T0, 0, True, T0, id="health ignored"),
        pytest.param(
            "RUNNING", None, TaskNeeds(), T0, 90, True, T0 + timedelta(seconds=90), id="min ready"
        ),
        pytest.param("RUNNING", None, TaskNeeds(), None, 0, True, NOW, id="no start time"),
        pytest.param("RUNNING", None, TaskNeeds(), None, 5, True, None, id="no start, min ready"),
        pytest.param("DEACTIVATING", None, TaskNeeds(), T0, 0, False, None, id="deactivating"),
    ],
)  # fmt: skip
def test_readiness(
    status: str,
    health: str | None,
    needs: TaskNeeds,
    since: object,
    min_ready_s: float,
    ready: bool,
    at: object,
) -> None:
    observed = task("t-1", on="i-1", status=status, health=health, since=since)  # type: ignore[arg-type]
    if status == "RUNNING":
        assert observed.running_since == since
    assert readiness.is_ready(observed, needs=needs) is ready
    assert readiness.available_at(observed, needs=needs, min_ready_s=min_ready_s, now=NOW) == at


STACK = revision(constraints=[Constraint("stack", "==", "prod"), Constraint("gpu", "exists")])
MATCHING = {"stack": "prod", "gpu": None}


@pytest.mark.parametrize(
    ("observed", "placement"),
    [
        pytest.param(instance("i-1", attrs=MATCHING), Placement.ELIGIBLE, id="active, matching"),
        pytest.param(instance("i-1", attrs={"stack": "prod"}), Placement.UNMATCHED, id="no gpu"),
        pytest.param(
            instance("i-1", connected=False, attrs=MATCHING), Placement.DISCONNECTED,
            id="disconnected",
        ),
        pytest.param(
            instance("i-1", connected=False), Placement.UNREACHABLE, id="unmatched, disconnected"
        ),
        pytest.param(instance("i-1", "DRAINING", attrs=MATCHING), Placement.DRAINING, id="drain"),
        pytest.param(
            instance("i-1", "DRAINING", connected=False), Placement.UNREACHABLE,
            id="draining, disconnected",
        ),
        pytest.param(instance("i-1", "INACTIVE", attrs=MATCHING), Placement.NOT_ACTIVE, id="gone"),
        pytest.param(instance("i-1", "DEREGISTERING"), Placement.NOT_ACTIVE, id="deregistering"),
        pytest.param(None, Placement.GONE, id="not observed"),
    ],
)  # fmt: skip
def test_placement_of_an_instance(observed: ObservedInstance | None, placement: Placement) -> None:
    assert judge(observed, revision=STACK) is placement
    assert placement.is_desired is (placement in (Placement.ELIGIBLE, Placement.DISCONNECTED))


def test_desired_of_an_environment_reads_its_revision_and_flags() -> None:
    environment = Environment(name="web", revision=revision(4), paused=True, deleting=True)
    want = Desired.of(environment, needs=TaskNeeds(cpu=1), deployments={"d": 1})
    assert (want.environment, want.revision.number, want.paused, want.deleting) == (
        "web", 4, True, True,
    )  # fmt: skip
    assert want.needs == TaskNeeds(cpu=1)
    assert dict(want.deployments) == {"d": 1}
    assert dict(want.backoff_until) == {}
    assert Desired.of(environment, revision=revision(3)).revision == revision(3)
