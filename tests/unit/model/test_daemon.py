"""model.daemon: shares and their budgets, attribute constraints, names, policies."""

from __future__ import annotations

import pytest

from blox.model import daemon
from blox.model.daemon import Constraint, RolloutPolicy, Share
from blox.model.errors import DaemonInvalid

CLUSTER = "arn:aws:ecs:us-east-1:111122223333:cluster/prod"
TASK_DEFINITION = "arn:aws:ecs:us-east-1:111122223333:task-definition/web:3"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", Share(0)),
        ("5", Share(5)),
        (7, Share(7)),
        ("10%", Share(10, True)),
        (" 100% ", Share(100, True)),
    ],
)
def test_shares_parse(text: str | int, expected: Share) -> None:
    assert daemon.parse_share(text, "maxUnavailable") == expected


@pytest.mark.parametrize("text", ["-1", "101%", "1.5", "ten", "", "%", True])
def test_bad_shares_say_which_setting(text: str | bool) -> None:
    with pytest.raises(DaemonInvalid, match="maxSurge"):
        daemon.parse_share(text, "maxSurge")


@pytest.mark.parametrize(
    ("unavailable", "surge", "desired", "budget"),
    [
        ("1", "0", 10, (1, 0)),
        ("10%", "0", 1000, (100, 0)),
        ("10%", "0", 5, (1, 0)),  # 0.5 rounds down to 0; both 0 → one may be unavailable
        ("0", "10%", 5, (0, 1)),  # surge rounds up
        ("25%", "25%", 10, (2, 3)),
        ("0", "0", 10, (1, 0)),
        ("100%", "0", 0, (1, 0)),
    ],
)
def test_the_budget_rounds_as_kubernetes(
    unavailable: str, surge: str, desired: int, budget: tuple[int, int]
) -> None:
    policy = RolloutPolicy(
        max_unavailable=daemon.parse_share(unavailable, "u"),
        max_surge=daemon.parse_share(surge, "s"),
    )
    assert policy.budget(desired) == budget


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"min_ready_s": -1}, "minReadySeconds"), ({"progress_deadline_s": 0}, "progressDeadline")],
)
def test_bad_policies_are_refused(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(DaemonInvalid, match=field):
        RolloutPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "attributes", "holds"),
    [
        ("attribute:stack == prod", {"stack": "prod"}, True),
        ("attribute:stack == prod", {"stack": "test"}, False),
        ("attribute:stack == prod", {}, False),
        ("attribute:stack != test", {"stack": "prod"}, True),
        ("attribute:stack != test", {}, True),
        ("attribute:stack != test", {"stack": "test"}, False),
        ("attribute:ecs.capability.gpu exists", {"ecs.capability.gpu": None}, True),
        ("  attribute:ecs.os-type==linux ", {"ecs.os-type": "linux"}, True),
    ],
)
def test_constraints_hold_on_attributes(
    text: str, attributes: dict[str, str | None], holds: bool
) -> None:
    constraint = daemon.parse_constraint(text)
    assert constraint.holds(attributes) is holds
    assert daemon.parse_constraint(str(constraint)) == constraint


@pytest.mark.parametrize(
    "text", ["stack == prod", "attribute:stack = prod", "attribute:stack ==", "attribute: exists"]
)
def test_malformed_constraints_show_the_accepted_forms(text: str) -> None:
    with pytest.raises(DaemonInvalid, match="attribute:NAME == VALUE"):
        daemon.parse_constraint(text)


def test_a_revision_selects_instances_meeting_every_constraint() -> None:
    revision = daemon.Revision(
        number=1,
        task_definition=TASK_DEFINITION,
        cluster_arn=CLUSTER,
        constraints=(Constraint("stack", "==", "prod"), Constraint("gpu", "exists")),
    )
    assert revision.selects({"stack": "prod", "gpu": None})
    assert not revision.selects({"stack": "prod"})
    assert daemon.Revision(1, TASK_DEFINITION, CLUSTER).selects({})


@pytest.mark.parametrize("name", ["", "a" * 31, "has space", "dot.ted", "ünï"])
def test_environment_names_follow_v03(name: str) -> None:
    revision = daemon.Revision(1, TASK_DEFINITION, CLUSTER)
    with pytest.raises(DaemonInvalid, match="1-30 letters"):
        daemon.Environment(name=name, revision=revision)
    assert daemon.Environment(name="web-1_a", revision=revision).name == "web-1_a"


def test_only_pending_and_running_deployments_are_in_progress() -> None:
    moving = {s for s in daemon.DeploymentStatus if s.in_progress}
    assert moving == {daemon.DeploymentStatus.PENDING, daemon.DeploymentStatus.RUNNING}
