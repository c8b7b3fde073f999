"""The five-minute tour (docs/tour.md), command by command, against one real `blox up`.

`blox up` runs as a subprocess on free ports; every client command is a subprocess pointed at
it by BLOX_* variables; each `-o json` is compared with what the servers' APIs answer. At the
end `blox up` gets SIGINT and no process of it is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from blox.testing.up import BloxUp, processes_mentioning
from tests.e2e.aws import client, until

pytestmark = pytest.mark.e2e

INSTANCES = 3
DEADLINE_S = 90.0


class Tour:
    """Runs `blox …` against one `blox up`, as the tour's reader does."""

    def __init__(self, up: BloxUp, home: Path) -> None:
        self.css, self.scheduler = up.summary["css"], up.summary["scheduler"]
        self.sim = up.summary["ecs"]
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BLOX_")},
            "BLOX_CSS_ENDPOINT": self.css,
            "BLOX_SCHEDULER_ENDPOINT": self.scheduler,
            "BLOX_SIM_ENDPOINT": self.sim,
            "XDG_CONFIG_HOME": str(home),  # no profile: not the machine's own
        }

    def run(self, *args: str, status: int = 0) -> str:
        """stdout of `blox args…`, which must exit with `status`."""
        done = subprocess.run(
            [sys.executable, "-m", "blox", *args],
            capture_output=True,
            text=True,
            timeout=DEADLINE_S + 30,
            env=self.env,
        )
        assert done.returncode == status, (args, done.stdout, done.stderr)
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json"))

    def api(self, server: str, path: str, **params: str) -> Any:
        base = self.css if server == "css" else self.scheduler
        response = httpx.get(f"{base}{path}", params=params, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def running_on(self) -> dict[str, str]:
        """container instance ARN → task definition ARN of each RUNNING task of `web`."""
        tasks = self.json("tasks", "--cluster", "demo", "--status", "running")["items"]
        return {
            t["entity"]["containerInstanceARN"]: t["entity"]["taskDefinitionARN"]
            for t in tasks
            if t["entity"].get("group", "").startswith("blox:web:")
        }


def test_the_tour_against_blox_up(tmp_path: Path) -> None:
    up = BloxUp(tmp_path, "--instances", str(INSTANCES))
    with up:
        tour = Tour(up, tmp_path)
        # 2. a daemon on every instance
        created = tour.json("env", "create", "web", "--cluster", "demo", "--task-definition",
                            "web", "--max-unavailable", "25%")  # fmt: skip
        assert created == tour.api("scheduler", "/v1/environments/web")
        tour.run("deploy", "web", "--wait")
        instances = tour.json("instances", "--cluster", "demo")
        assert instances == tour.api("css", "/v1/instances", cluster="demo")
        arns = {i["entity"]["containerInstanceARN"] for i in instances["items"]}
        assert set(tour.running_on()) == arns and len(arns) == INSTANCES
        assert tour.json("tasks", "--cluster", "demo") == tour.api("css", "/v1/tasks",
                                                                   cluster="demo")  # fmt: skip
        shown = tour.json("env", "show", "web")
        assert shown["status"]["desired"] == INSTANCES, shown

        # 3. a new revision, rolled out, then rolled back
        ecs = client("ecs", tour.sim)
        ecs.register_task_definition(
            family="web",
            containerDefinitions=[{"name": "web", "image": "nginx:1.28", "memory": 128}],
        )
        updated = tour.json("env", "update", "web", "--task-definition", "web:2")
        assert updated["revision"] == 2
        tour.run("deploy", "web")
        assert "completed" in tour.run("rollout", "status", "web")  # follows to the end
        assert set(tour.running_on().values()) == {ecs.describe_task_definition(
            taskDefinition="web:2")["taskDefinition"]["taskDefinitionArn"]}  # fmt: skip
        revisions = tour.json("env", "revisions", "web")
        assert [r["revision"] for r in revisions["items"]] == [2, 1]
        tour.run("env", "rollback", "web", "--wait")
        assert {arn.rsplit(":", 1)[1] for arn in tour.running_on().values()} == {"1"}
        assert tour.json("env", "pause", "web")["paused"] is True
        assert tour.json("env", "resume", "web")["paused"] is False

        # 4. the cluster grows; a constraint narrows the daemon to the prod instances
        tour.run("sim", "add-instances", "--cluster", "demo", "--count", "2",
                 "--attribute", "stack=prod")  # fmt: skip
        until(lambda: len(tour.running_on()) == INSTANCES + 2, what="the new instances' tasks",
              deadline_s=DEADLINE_S)  # fmt: skip
        tour.run("env", "update", "web", "--constraint", "attribute:stack == prod")
        tour.run("deploy", "web", "--wait")
        until(lambda: len(tour.running_on()) == 2, what="tasks on the prod instances only",
              deadline_s=DEADLINE_S)  # fmt: skip

        # 5. the stream, from the first version, and the rest of the commands
        changes = tour.run("watch", "tasks", "--from-version", "1", "--count", "5").splitlines()
        assert len(changes) == 5 and all(json.loads(c)["entity"]["taskARN"] for c in changes)
        listed = tour.json("env", "list")
        assert listed == tour.api("scheduler", "/v1/environments")
        deployments = tour.json("env", "deployments", "web")
        assert deployments == tour.api("scheduler", "/v1/environments/web/deployments")
        assert "blox-ecs" in tour.run("version")
        tour.run("env", "delete", "web")
        until(lambda: not tour.running_on(), what="the environment's tasks to stop",
              deadline_s=DEADLINE_S)  # fmt: skip
        moto_port = up.moto_port
        status, _, err = up.stop(signal.SIGINT)
        assert status == 0, err
    assert processes_mentioning(f"moto.server -H 127.0.0.1 -p {moto_port}") == []
    assert processes_mentioning(str(tmp_path)) == []


def test_blox_up_demo_rolls_an_environment_out_and_reports_it(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "blox", "up", "--demo", "--once", "--json", "--data-dir",
         str(tmp_path), "--css-port", "0", "--scheduler-port", "0", "--sim-port", "0"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ready = json.loads(done.stdout.splitlines()[0])
    assert ready["instances"] == INSTANCES
    assert f"completed: revision 1 runs on {INSTANCES}/{INSTANCES} instances" in done.stderr
