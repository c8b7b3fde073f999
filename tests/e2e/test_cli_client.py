"""The `blox` client commands as a user runs them, against a real scheduler, CSS and simulator.

Each command is a subprocess (`python -m blox …`) pointed at the servers by environment
variables or a config file; its `-o json` is compared with what the APIs answer, and its
errors with the one line and the exit status `blox.cli.exits` documents.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any, ClassVar

import httpx
import pytest
import yaml

from blox.testing.ports import free_port
from tests.e2e.aws import DEADLINE_S, client, until

pytestmark = pytest.mark.e2e

INSTANCES = 4
ROLLOUT_DEADLINE_S = 90.0


def definition(family: str, image: str = "nginx", memory: int = 128) -> dict[str, Any]:
    return {
        "family": family,
        "containerDefinitions": [{"name": "main", "image": image, "cpu": 16, "memory": memory}],
    }


@dataclass
class Servers:
    """moto's SQS, the simulator, the CSS and the scheduler as subprocesses, on free ports."""

    root: Path
    moto: str
    queue: str = ""
    sim: str = ""
    css: str = ""
    scheduler: str = ""
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def spawn(self, name: str, *args: str) -> None:
        with (self.root / f"{name}.log").open("ab") as log:  # the child keeps its own copy
            self.running[name] = subprocess.Popen(
                [sys.executable, "-m", "blox", *args], stdout=log, stderr=subprocess.STDOUT
            )

    def start(self) -> None:
        sqs = client("sqs", self.moto)
        self.queue = sqs.create_queue(QueueName=f"cli-{uuid.uuid4().hex[:12]}")["QueueUrl"]
        sqs.close()
        self.sim, self.css, self.scheduler = (f"http://127.0.0.1:{free_port()}" for _ in "123")
        self.spawn(
            "sim",
            *("sim", "up", "--sink", "sqs", "--aws-endpoint-url", self.moto),
            *("--queue-url", self.queue, "--port", self.sim.rsplit(":", 1)[1]),
            *("--instances", str(INSTANCES), "--seed", "7", "--pending-seconds", "0.3"),
        )
        self.start_css()
        self.spawn(
            "scheduler",
            *("scheduler", "--bind", self.scheduler.removeprefix("http://")),
            *("--css-endpoint", self.css, "--ecs-endpoint-url", self.sim),
            *("--data-dir", str(self.root / "scheduler"), "--resync", "1s"),
        )
        until(lambda: answers(f"{self.sim}/_sim/healthz"), what="the simulator")
        until(lambda: answers(f"{self.scheduler}/v1/ping"), what="the scheduler")
        until(
            lambda: len(self.api(self.css, "/v1/instances")["items"]) == INSTANCES,
            what="the CSS to know every instance",
        )

    def start_css(self) -> None:
        self.spawn(
            "css",
            *("css", "--queue", self.queue, "--sqs-endpoint-url", self.moto),
            *("--ecs-endpoint-url", self.sim, "--reconcile-interval", "0", "--wait-time", "1"),
            *("--bind", self.css.removeprefix("http://"), "--data-dir", str(self.root / "css")),
        )
        until(lambda: answers(f"{self.css}/healthz"), what="the CSS")

    def stop(self, name: str, *, kill: bool = False) -> None:
        process = self.running.pop(name)
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def close(self) -> None:
        for name in reversed(list(self.running)):  # clients of the CSS first: streams end
            self.stop(name)

    def env(self, **more: str) -> dict[str, str]:
        """The environment of a `blox` command aimed at these servers (no user config)."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("BLOX_")}
        base.update(
            XDG_CONFIG_HOME=str(self.root / "xdg"),
            BLOX_CSS_ENDPOINT=self.css,
            BLOX_SCHEDULER_ENDPOINT=self.scheduler,
        )
        base.update(more)
        return base

    def api(self, base: str, path: str, **params: str) -> Any:
        response = httpx.get(f"{base}{path}", params=params, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def register(self, family: str, **options: Any) -> None:
        ecs = client("ecs", self.sim)
        ecs.register_task_definition(**definition(family, **options))
        ecs.close()


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def servers(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    running = Servers(tmp_path_factory.mktemp("cli"), moto_endpoint)
    try:
        running.start()
        yield running
    finally:
        running.close()


def blox(
    servers: Servers, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "blox", *args],
        capture_output=True,
        text=True,
        timeout=ROLLOUT_DEADLINE_S + 30,
        env=env or servers.env(),
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def ok(servers: Servers, *args: str) -> str:
    done = blox(servers, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def the_error(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command printed on stderr."""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_environments_are_created_listed_and_shown_as_the_api_has_them(servers: Servers) -> None:
    servers.register("web")
    created = json.loads(
        ok(
            servers,
            *("env", "create", "listed", "-t", "web", "--cluster", "default", "-o", "json"),
            *("--constraint", "attribute:ecs.os-type == linux", "--max-unavailable", "25%"),
            *("--max-surge", "1", "--min-ready-seconds", "0.5", "--history-limit", "5"),
            *("--progress-deadline-seconds", "120", "--no-auto-rollback"),
        )
    )
    api = servers.api(servers.scheduler, "/v1/environments/listed")
    assert created == api
    assert created["instanceGroup"]["constraints"] == ["attribute:ecs.os-type == linux"]
    assert created["rollout"] == {
        "maxUnavailable": "25%",
        "maxSurge": 1,
        "minReadySeconds": 0.5,
        "progressDeadlineSeconds": 120.0,
        "autoRollback": False,
    }
    assert created["historyLimit"] == 5
    listed = json.loads(ok(servers, "env", "list", "-o", "json"))
    assert listed == servers.api(servers.scheduler, "/v1/environments")
    assert yaml.safe_load(ok(servers, "env", "show", "listed", "-o", "yaml")) == api
    revisions = json.loads(ok(servers, "env", "revisions", "listed", "-o", "json"))
    assert revisions == servers.api(servers.scheduler, "/v1/environments/listed/revisions")
    table = ok(servers, "env", "list", "--cluster", "default")
    assert table.splitlines()[0].split()[:3] == ["NAME", "CLUSTER", "TASK"]
    assert any(line.split()[:3] == ["listed", "default", "web:1"] for line in table.splitlines())
    shown = ok(servers, "env", "show", "listed")
    assert "attribute:ecs.os-type == linux" in shown
    assert "current revision" in shown and "target revision" in shown
    ok(servers, "env", "delete", "listed", "--force")


def test_deploy_wait_runs_one_task_per_instance_and_blox_tasks_shows_the_css(
    servers: Servers,
) -> None:
    servers.register("daemon")
    ok(servers, "env", "create", "daemon", "-t", "daemon", "--max-unavailable", "2")
    done = blox(servers, "deploy", "daemon", "--wait")
    assert done.returncode == 0, done.stderr
    assert "completed: revision 1 runs on 4/4 instances" in done.stdout
    [deployment] = servers.api(servers.scheduler, "/v1/environments/daemon/deployments")["items"]
    assert deployment["status"] == "completed"
    tasks = json.loads(
        ok(servers, "tasks", "--started-by", deployment["id"], "--status", "running", "-o", "json")
    )
    assert tasks == servers.api(
        servers.css, "/v1/tasks", startedBy=deployment["id"], status="running"
    )
    on = {t["entity"]["containerInstanceARN"] for t in tasks["items"]}
    instances = json.loads(ok(servers, "instances", "--cluster", "default", "-o", "json"))
    assert instances == servers.api(servers.css, "/v1/instances", cluster="default")
    assert on == {i["entity"]["containerInstanceARN"] for i in instances["items"]}
    assert len(tasks["items"]) == INSTANCES
    table = ok(servers, "tasks", "--started-by", deployment["id"])
    assert sum("RUNNING" in line and "daemon:1" in line for line in table.splitlines()) == 4

    # An update makes revision 2; deploy --wait rolls it out; rollback copies revision 1.
    servers.register("daemon", image="nginx:2")
    token = servers.api(servers.scheduler, "/v1/environments/daemon")["deploymentToken"]
    updated = json.loads(ok(servers, "env", "update", "daemon", "-t", "daemon:2", "-o", "json"))
    assert updated["revision"] == 2
    assert updated["deploymentToken"] != token
    done = blox(servers, "deploy", "daemon", "--wait", "-o", "json")
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stdout)
    assert (final["status"], final["revision"]) == ("completed", 2)
    assert "completed" in done.stderr.splitlines()[-1]  # the progress went to stderr
    done = blox(servers, "env", "rollback", "daemon", "--revision", "1", "--wait")
    assert done.returncode == 0, done.stderr
    shown = servers.api(servers.scheduler, "/v1/environments/daemon")
    assert shown["revision"] == 3 and shown["taskDefinition"].endswith("daemon:1")
    assert shown["status"]["currentRevision"] == shown["status"]["targetRevision"] == 3
    revisions = json.loads(ok(servers, "env", "revisions", "daemon", "-o", "json"))["items"]
    assert [r["revision"] for r in revisions] == [3, 2, 1]
    assert revisions[0]["rolledBackFrom"] == 2
    # deploy --revision N goes forward again, the same way.
    moved = json.loads(ok(servers, "deploy", "daemon", "--revision", "2", "-o", "json"))
    assert moved["revision"] == 4 and moved["taskDefinition"].endswith("daemon:2")
    status = blox(servers, "rollout", "status", "daemon")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[-1].endswith("revision 4 runs on 4/4 instances")


def test_pause_resume_and_delete(servers: Servers) -> None:
    servers.register("paused")
    ok(servers, "env", "create", "paused", "-t", "paused")
    assert json.loads(ok(servers, "env", "pause", "paused", "-o", "json"))["paused"] is True
    assert servers.api(servers.scheduler, "/v1/environments/paused")["paused"] is True
    assert "paused" in ok(servers, "env", "list")
    assert json.loads(ok(servers, "env", "resume", "paused", "-o", "json"))["paused"] is False
    deleted = ok(servers, "env", "delete", "paused")
    assert deleted.strip() == "environment paused deleted; its tasks are being stopped"
    gone = blox(servers, "env", "show", "paused")
    assert gone.returncode == 1
    assert the_error(gone) == "error: HTTP 404 from scheduler: Environment paused does not exist"


def streams_opened(css: str) -> int:
    """How many task streams the CSS has answered so far (its request metric)."""
    text = httpx.get(f"{css}/metrics", timeout=10).text
    found = re.search(r'_count\{method="GET",route="/v1/stream/tasks",status="200"\} (\S+)', text)
    return int(float(found[1])) if found else 0


def test_watch_tasks_prints_each_change_and_resumes_across_a_css_restart(
    servers: Servers,
) -> None:
    servers.register("watched")
    ok(servers, "env", "create", "watched", "-t", "watched")
    ok(servers, "deploy", "watched", "--wait")
    replay = ok(servers, "watch", "tasks", "--from-version", "1", "--count", "2")
    first, second = (json.loads(line) for line in replay.splitlines())
    versions = [int(item["metadata"]["entityVersion"]) for item in (first, second)]
    assert 1 <= versions[0] <= versions[1]
    assert first["entity"]["taskARN"].startswith("arn:aws:ecs:")

    tasks = servers.api(servers.css, "/v1/tasks")["items"]
    latest = max(int(t["metadata"]["entityVersion"]) for t in tasks)
    opened = streams_opened(servers.css)
    with subprocess.Popen(
        [sys.executable, "-m", "blox", "watch", "tasks", "--from-version", str(latest)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=servers.env(),
    ) as watch:
        assert watch.stdout is not None
        try:
            until(lambda: streams_opened(servers.css) > opened, what="the watch to connect")
            # Killed: with a stream open, the CSS's graceful stop waits for it to end.
            servers.stop("css", kill=True)
            servers.start_css()  # same port and store: the watch resumes where it was
            ok(servers, "env", "delete", "watched")  # its tasks stop: changes to print
            changes: list[dict[str, Any]] = []
            while not any(
                c["entity"].get("group", "").startswith("blox:watched:")
                and c["entity"]["desiredStatus"] == "STOPPED"
                for c in changes
            ):
                changes.append(json.loads(watch.stdout.readline()))
            watch.send_signal(signal.SIGINT)
            _, err = watch.communicate(timeout=DEADLINE_S)
        finally:
            if watch.poll() is None:
                watch.kill()
    assert watch.returncode == 130, err  # Ctrl-C: a quiet end
    assert "Traceback" not in err
    seen = [int(c["metadata"]["entityVersion"]) for c in changes]
    assert seen == sorted(seen) and seen[0] >= latest


def test_server_errors_are_one_line_with_a_meaningful_exit_status(
    servers: Servers, tmp_path: Path
) -> None:
    missing = blox(servers, "env", "show", "nope")
    assert missing.returncode == 1
    assert the_error(missing) == "error: HTTP 404 from scheduler: Environment nope does not exist"
    servers.register("web")
    bad = blox(servers, "env", "create", "bad", "-t", "web", "--constraint", "stack=prod")
    assert bad.returncode == 1
    assert the_error(bad).startswith("error: HTTP 400 from scheduler: constraint 'stack=prod'")
    invalid = blox(servers, "env", "create", "bad name!", "-t", "web")
    assert invalid.returncode == 2
    assert the_error(invalid).startswith("error: invalid name:")

    down = f"http://127.0.0.1:{free_port()}"
    for args, endpoint in (
        (("env", "list"), "BLOX_SCHEDULER_ENDPOINT"),
        (("tasks",), "BLOX_CSS_ENDPOINT"),
        (("watch", "instances"), "BLOX_CSS_ENDPOINT"),
    ):
        done = blox(servers, *args, env=servers.env(**{endpoint: down}))
        assert done.returncode == 3, done.stderr
        line = the_error(done)
        assert f"cannot reach the {'scheduler' if 'SCHED' in endpoint else 'CSS'} at {down}" in line
        assert "`blox up`" in line and endpoint in line

    config = tmp_path / "config.toml"
    config.write_text('[profiles.lab]\nscheduler_endpoint = "http://x"\noutptu = "json"\n')
    broken = blox(servers, "env", "list", env=servers.env(BLOX_CONFIG=str(config)))
    assert broken.returncode == 2
    assert the_error(broken) == (
        f"error: {config}: unknown key 'profiles.lab.outptu' (known: endpoint, css_endpoint, "
        "scheduler_endpoint, output, sigv4_region, aws_profile)"
    )
    config.write_text("[profiles.lab\n")
    broken = blox(servers, "env", "list", env=servers.env(BLOX_CONFIG=str(config)))
    assert broken.returncode == 2
    assert the_error(broken).startswith(f"error: {config}: not valid TOML")
    unknown = blox(servers, "env", "list", "--output", "xml")
    assert unknown.returncode == 2
    assert the_error(unknown) == "error: --output: output 'xml' is not one of table, json, yaml"


def test_a_profile_of_the_config_file_points_the_commands_at_the_servers(
    servers: Servers, tmp_path: Path
) -> None:
    config = tmp_path / "blox" / "config.toml"
    config.parent.mkdir()
    config.write_text(
        'profile = "local"\n'
        "[profiles.local]\n"
        f'css_endpoint = "{servers.css.removeprefix("http://")}"\n'
        f'scheduler_endpoint = "{servers.scheduler}"\n'
        'output = "yaml"\n'
    )
    env = {k: v for k, v in servers.env().items() if not k.startswith("BLOX_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    done = blox(servers, "version", env=env)
    assert done.returncode == 0, done.stderr
    version = yaml.safe_load(done.stdout)
    assert version["scheduler"] == {"endpoint": servers.scheduler, "reachable": True}
    assert version["css"] == {"endpoint": servers.css, "reachable": True}
    down = f"http://127.0.0.1:{free_port()}"
    env["BLOX_SCHEDULER_ENDPOINT"] = down  # the environment beats the profile
    done = blox(servers, "version", "-o", "json", env=env)
    assert done.returncode == 0, done.stderr
    version = json.loads(done.stdout)
    assert version["scheduler"]["endpoint"] == down
    assert version["scheduler"]["reachable"] is False
    assert version["css"]["reachable"] is True
    done = blox(servers, "instances", "--scheduler-endpoint", down, env=env)
    assert yaml.safe_load(done.stdout) == servers.api(servers.css, "/v1/instances")


class Recorder(BaseHTTPRequestHandler):
    """Answers every GET with an empty page, keeping the headers it was sent."""

    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        self.seen.append(dict(self.headers))
        body = b'{"items": []}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        return None


def test_sigv4_region_signs_each_request_with_the_aws_chains_credentials(
    servers: Servers, tmp_path: Path
) -> None:
    gateway = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    Thread(target=gateway.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{gateway.server_address[1]}/prod"
    nowhere = str(tmp_path / "none")
    aws = {"AWS_CONFIG_FILE": nowhere, "AWS_SHARED_CREDENTIALS_FILE": nowhere}
    aws |= {"AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE"}
    env = {k: v for k, v in servers.env().items() if not k.startswith("AWS_")} | aws
    try:
        signed = blox(
            servers, "env", "list", "-o", "json", "--scheduler-endpoint", url,
            "--sigv4-region", "eu-west-1", env={**env, "AWS_SECRET_ACCESS_KEY": "secret"},
        )  # fmt: skip
        assert signed.returncode == 0, signed.stderr
        assert json.loads(signed.stdout) == {"items": []}
        [headers] = Recorder.seen
        assert (
            headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
            and "/eu-west-1/execute-api/aws4_request" in headers["Authorization"]
        )
        assert "X-Amz-Date" in headers
        env.pop("AWS_ACCESS_KEY_ID")
        unsigned = blox(servers, "env", "list", "--scheduler-endpoint", url, env=env)
        assert unsigned.returncode == 0 and "Authorization" not in Recorder.seen[-1]
        nobody = blox(
            servers, "env", "list", "--scheduler-endpoint", url, "--sigv4-region", "eu-west-1",
            env=env,
        )  # fmt: skip
        assert nobody.returncode == 1
        assert the_error(nobody).startswith(
            "error: cannot sign requests to the scheduler: no AWS credentials found"
        )
    finally:
        gateway.shutdown()
        gateway.server_close()
