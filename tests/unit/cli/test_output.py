"""`-o json` is the APIs' JSON, `-o yaml` the same data, `-o table` readable rows."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest
import yaml

from blox.cli import output, tables
from blox.cli.config import Output
from blox.contract import css, scheduler

CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/default"
TASK_DEF = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3"
INSTANCE = "arn:aws:ecs:us-east-1:123456789012:container-instance/default/0123abcd"
TASK = "arn:aws:ecs:us-east-1:123456789012:task/default/feed0123"


def environment(**changes: object) -> scheduler.EnvironmentPublic:
    fields: dict[str, object] = {
        "name": "web",
        "instance_group": scheduler.InstanceGroupPublic(
            cluster=CLUSTER, constraints=["attribute:stack == prod"]
        ),
        "task_definition": TASK_DEF,
        "deployment_token": "0b6f7c3e-2f7e-4f0e-9d1a-7c1d2f0e9a11",
        "health": "healthy",
        "revision": 3,
        "target_revision": 3,
        "paused": False,
        "rollout": scheduler.RolloutPublic(
            max_unavailable="25%",
            max_surge=0,
            min_ready_seconds=5.0,
            progress_deadline_seconds=600.0,
            auto_rollback=True,
        ),
        "status": scheduler.StatusPublic(
            desired=4,
            current=4,
            ready=3,
            updated=2,
            available=3,
            current_revision=2,
            target_revision=3,
            reason="min-ready",
        ),
    }
    fields.update(changes)
    return scheduler.EnvironmentPublic.model_validate(fields)


def task() -> css.TaskPublic:
    return css.TaskPublic.model_validate(
        {
            "metadata": {"entityVersion": "17"},
            "entity": {
                "clusterARN": CLUSTER,
                "containerInstanceARN": INSTANCE,
                "containers": [],
                "createdAt": "2017-06-01T00:00:00Z",
                "desiredStatus": "RUNNING",
                "lastStatus": "RUNNING",
                "overrides": {"containerOverrides": []},
                "startedBy": "deployment-1",
                "taskARN": TASK,
                "taskDefinitionARN": TASK_DEF,
                "group": "blox:web:3",
            },
        }
    )


def lines(text: str) -> list[str]:
    """The lines of a table with runs of blanks as one blank (columns' widths vary)."""
    return [" ".join(line.split()) for line in text.splitlines()]


def test_json_of_one_entity_is_exactly_what_the_api_sends() -> None:
    env = environment()
    assert output.payload(env) == json.loads(scheduler.dump(env))
    assert json.loads(output.render_json(output.payload(env))) == json.loads(scheduler.dump(env))
    assert "paused" in output.payload(env)  # false is a value, not an absent field
    assert "activeDeployment" not in output.payload(env)  # absent fields stay out, as the API


def test_json_of_a_list_is_the_api_page_shape() -> None:
    page = css.TasksPage(items=[task()])
    assert output.payload([task()]) == json.loads(css.dump(page))
    assert output.payload([]) == {"items": []}


def test_yaml_is_the_same_data_as_json_in_the_same_key_order() -> None:
    data = output.payload([environment(), environment(name="api")])
    text = output.render(data, "yaml", lambda: tables.environments_table([]))
    assert yaml.safe_load(text) == data
    assert text.startswith("items:\n- name: web\n  instanceGroup:\n")


def test_the_environments_table_shows_short_names_counts_and_revisions() -> None:
    text = output.render_table(tables.environments_table([environment(), environment(paused=True)]))
    header, first, second = [line for line in text.splitlines() if "web" in line or "NAME" in line]
    for column in ("NAME", "CLUSTER", "TASK DEFINITION", "CURRENT/TARGET", "UPDATED", "STATE"):
        assert column in header
    assert first.split()[:7] == ["web", "default", "web:3", "3", "2/3", "4", "2"]
    assert "healthy (min-ready)" in first
    assert "paused" in second
    assert "arn:aws" not in text


def test_environment_show_lists_settings_rollout_and_status_counters() -> None:
    text = output.render_table(tables.environment_view(environment()))
    for expected in (
        "Environment web",
        f"cluster {CLUSTER}",
        "constraints attribute:stack == prod",
        "max unavailable 25%",
        "auto rollback yes",
        "current revision 2",
        "target revision 3",
        "updated 2",
        "waiting for min-ready",
    ):
        assert expected in lines(text), expected


def test_tasks_and_instances_tables_shorten_arns() -> None:
    text = output.render_table(tables.tasks_table([task()]))
    assert text.splitlines()[1].split() == [
        "feed0123",
        "default",
        "0123abcd",
        "web:3",
        "RUNNING",
        "RUNNING",
        "deployment-1",
        "blox:web:3",
    ]
    instance = css.ContainerInstancePublic.model_validate(
        {
            "metadata": {"entityVersion": "9"},
            "entity": {
                "agentConnected": False,
                "clusterARN": CLUSTER,
                "containerInstanceARN": INSTANCE,
                "EC2InstanceID": "i-0abc",
                "registeredResources": [],
                "remainingResources": [],
                "status": "DRAINING",
                "versionInfo": {},
                "runningTasksCount": 2,
            },
        }
    )
    text = output.render_table(tables.instances_table([instance]))
    assert lines(text)[1] == "0123abcd default i-0abc DRAINING disconnected 2 -"


@pytest.mark.parametrize(
    ("arn", "short"),
    [
        (TASK_DEF, "web:3"),
        (CLUSTER, "default"),
        (INSTANCE, "0123abcd"),
        ("arn:aws:ecs:us-east-1:123456789012:container-instance/0123abcd", "0123abcd"),
        ("arn:aws-cn:ecs:cn-north-1:123456789012:task/default/abc", "abc"),
        ("web", "web"),
        (None, "-"),
    ],
)
def test_short_arn_keeps_the_part_a_person_reads(arn: str | None, short: str) -> None:
    assert tables.short_arn(arn) == short


def test_emit_writes_json_yaml_and_a_plain_table_to_a_file() -> None:
    data = output.payload(environment())
    formats: list[tuple[Output, Callable[[str], object]]] = [
        ("json", json.loads),
        ("yaml", yaml.safe_load),
    ]
    for fmt, parse in formats:
        buffer = io.StringIO()
        output.emit(data, fmt, lambda: tables.environment_view(environment()), file=buffer)
        assert parse(buffer.getvalue()) == data
    buffer = io.StringIO()
    output.emit(data, "table", lambda: tables.environment_view(environment()), file=buffer)
    assert "Environment web" in buffer.getvalue()
    assert "\x1b[" not in buffer.getvalue()  # no colour codes off a terminal
