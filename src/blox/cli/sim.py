"""`blox sim …`: run the local ECS, and change its faults while it runs.

`blox sim up` serves the ECS API and the `/_sim` admin routes on one port (default 8001) until
Ctrl-C or SIGTERM, then flushes its events and exits 0. The other commands talk to a running
simulator's admin routes with httpx (`--endpoint`, or BLOX_SIM_ENDPOINT) and print JSON.
Bad values are one line on stderr (exit 1, rendered by `cli/main.py`), never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import httpx
import typer

from blox import errors
from blox.sim import service
from blox.sim.chaos import check_kill_rate
from blox.sim.faults import FaultConfig

DEFAULT_ENDPOINT = f"http://127.0.0.1:{service.DEFAULT_PORT}"
REQUEST_TIMEOUT_S = 10.0

app = typer.Typer(help="A local ECS with real events and injectable faults.", no_args_is_help=True)
faults_app = typer.Typer(help="Show, change or clear the running simulator's faults.")
app.add_typer(faults_app, name="faults")

EndpointOption = typer.Option(
    DEFAULT_ENDPOINT, "--endpoint", envvar="BLOX_SIM_ENDPOINT", help="The simulator's URL."
)
ClusterOption = typer.Option("default", "--cluster", help="Cluster name or ARN.")
InstanceOption = typer.Option(..., "--instance", help="Container instance ARN or ID (repeatable).")


class SimUnreachable(errors.Unavailable):
    """The simulator's admin endpoint did not answer."""


class SimRefused(errors.Invalid):
    """The simulator refused an admin request (its message says why)."""


class FlagInvalid(errors.Invalid):
    """A command-line value cannot be parsed (e.g. `key=value` without `=`)."""


def parse_pairs(pairs: list[str], *, what: str) -> dict[str, Any]:
    """`key=value` strings as a dict; values are JSON when they parse (1, 0.5, true), else text."""
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise FlagInvalid(f"{what} must look like key=value, got {pair!r}")
        try:
            parsed[key] = json.loads(raw)
        except ValueError:
            parsed[key] = raw
    return parsed


def _call(endpoint: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    url = f"{endpoint.rstrip('/')}/_sim{path}"
    try:
        with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
            response = client.request(method, url, json=body)
    except httpx.HTTPError as exc:
        raise SimUnreachable(f"cannot reach the simulator at {endpoint}: {exc}") from exc
    try:
        payload = response.json()
    except ValueError as exc:
        raise SimRefused(f"{method} {url}: HTTP {response.status_code}, not JSON") from exc
    if response.status_code >= 400:
        message = payload.get("message") if isinstance(payload, dict) else payload
        raise SimRefused(f"{method} {path} refused ({response.status_code}): {message}")
    return payload


def _print(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, sort_keys=True))


def _fault_settings(faults_json: str, pairs: list[str]) -> tuple[FaultConfig, float]:
    """--faults JSON merged with --fault key=value: the event faults and the kill rate."""
    settings: dict[str, Any] = {}
    if faults_json:
        try:
            loaded = json.loads(faults_json)
        except ValueError as exc:
            raise FlagInvalid(f"--faults is not JSON: {exc}") from exc
        if not isinstance(loaded, dict):
            raise FlagInvalid("--faults must be a JSON object")
        settings.update(loaded)
    settings.update(parse_pairs(pairs, what="--fault"))
    rate = check_kill_rate(settings.pop("kill_rate_per_s", 0.0))
    return FaultConfig.from_dict(settings), rate


def _cluster_names(names: list[str], count: int | None) -> tuple[str, ...]:
    if names and count is not None:
        raise FlagInvalid("use --cluster NAME or --clusters N, not both")
    if names:
        return tuple(names)
    if count is None or count == 1:
        return ("default",)
    if count < 1:
        raise FlagInvalid(f"--clusters must be >= 1, got {count}")
    return tuple(f"cluster-{n}" for n in range(1, count + 1))


@app.command("up")
def up(
    port: int = typer.Option(service.DEFAULT_PORT, "--port", help="TCP port (ECS API + /_sim)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    cluster: list[str] = typer.Option([], "--cluster", help="Cluster name (repeatable)."),
    clusters: int | None = typer.Option(None, "--clusters", help="N clusters cluster-1..N."),
    instances: int = typer.Option(0, "--instances", help="Container instances per cluster."),
    instance_cpu: int | None = typer.Option(None, "--instance-cpu", help="CPU units each."),
    instance_memory: int | None = typer.Option(None, "--instance-memory", help="MiB each."),
    sink: str = typer.Option("memory", "--sink", help="memory, sqs or eventbridge."),
    queue_url: str | None = typer.Option(None, "--queue-url", help="SQS queue (--sink sqs)."),
    event_bus: str = typer.Option("default", "--event-bus", help="Bus (--sink eventbridge)."),
    aws_endpoint_url: str | None = typer.Option(
        None, "--aws-endpoint-url", help="SQS/EventBridge endpoint, e.g. moto's."
    ),
    region: str = typer.Option("us-east-1", "--region"),
    account: str = typer.Option("123456789012", "--account"),
    seed: int = typer.Option(0, "--seed", help="Seed of every random choice."),
    pending_seconds: float | None = typer.Option(
        None, "--pending-seconds", help="Time from PENDING to RUNNING (default 1-3 s)."
    ),
    faults_json: str = typer.Option("", "--faults", help='JSON, e.g. {"drop_rate": 0.1}.'),
    fault: list[str] = typer.Option([], "--fault", help="key=value fault setting (repeatable)."),
    state_file: Path | None = typer.Option(
        None, "--state-file", help="Keep the state in this JSON file across restarts."
    ),
    save_every: float = typer.Option(
        service.DEFAULT_SAVE_EVERY_S, "--save-every", help="Seconds between --state-file saves."
    ),
) -> None:
    """Serve a simulated ECS until Ctrl-C or SIGTERM; prints one JSON line when ready.

    With --state-file, a saved state is restored (--instances then only fills new clusters).
    """
    event_faults, kill_rate = _fault_settings(faults_json, fault)
    settings = service.SimSettings(
        host=host,
        port=port,
        clusters=_cluster_names(cluster, clusters),
        instances=instances,
        instance_cpu=instance_cpu,
        instance_memory=instance_memory,
        sink=sink,
        queue_url=queue_url,
        event_bus=event_bus,
        aws_endpoint_url=aws_endpoint_url,
        region=region,
        account=account,
        seed=seed,
        pending_s=pending_seconds,
        faults=event_faults,
        kill_rate_per_s=kill_rate,
        state_file=state_file,
        save_every_s=save_every,
    )
    asyncio.run(_serve(settings))


async def _serve(settings: service.SimSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, or a service manager's stop
        loop.add_signal_handler(signum, stop.set)

    def ready(sim: service.Sim) -> None:
        typer.echo(json.dumps(sim.summary()))

    await service.run(settings, stop=stop, ready=ready)
    typer.echo(json.dumps({"stopped": True}))


@app.command("add-instances")
def add_instances(
    cluster: str = ClusterOption,
    count: int = typer.Option(1, "--count", help="How many instances."),
    cpu: int | None = typer.Option(None, "--cpu", help="CPU units each."),
    memory: int | None = typer.Option(None, "--memory", help="MiB each."),
    attribute: list[str] = typer.Option([], "--attribute", help="k=v attribute (repeatable)."),
    endpoint: str = EndpointOption,
) -> None:
    """Register more container instances in a running simulator."""
    body: dict[str, Any] = {"cluster": cluster, "count": count}
    body.update({k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None})
    attributes = parse_pairs(attribute, what="--attribute")
    if attributes:
        body["attributes"] = {
            k: v if isinstance(v, str) else json.dumps(v) for k, v in attributes.items()
        }
    _print(_call(endpoint, "POST", "/instances", body))


@faults_app.command("show")
def faults_show(endpoint: str = EndpointOption) -> None:
    """Print the faults in force."""
    _print(_call(endpoint, "GET", "/faults"))


@faults_app.command("set")
def faults_set(
    settings: list[str] = typer.Argument(..., help="key=value, e.g. duplicate_rate=0.5"),
    endpoint: str = EndpointOption,
) -> None:
    """Change some fault settings; the others stay as they are."""
    _print(_call(endpoint, "PUT", "/faults", parse_pairs(settings, what="a fault setting")))


@faults_app.command("clear")
def faults_clear(endpoint: str = EndpointOption) -> None:
    """Inject no faults any more (event faults, killer, start failures, throttling)."""
    _print(_call(endpoint, "DELETE", "/faults"))


@app.command("counters")
def counters(endpoint: str = EndpointOption) -> None:
    """Print what the faults and the event pump did so far."""
    _print(_call(endpoint, "GET", "/counters"))


@app.command("kill-task")
def kill_task(
    cluster: str | None = typer.Option(None, "--cluster", help="Only tasks of this cluster."),
    task: str | None = typer.Option(None, "--task", help="This task (needs --cluster)."),
    count: int = typer.Option(1, "--count", help="How many random live tasks."),
    endpoint: str = EndpointOption,
) -> None:
    """Kill a task (or random ones) as if its essential container died."""
    body: dict[str, Any] = {"count": count}
    body.update({k: v for k, v in (("cluster", cluster), ("task", task)) if v is not None})
    _print(_call(endpoint, "POST", "/tasks/kill", body))


@app.command("disconnect")
def disconnect(
    instance: list[str] = InstanceOption,
    cluster: str = ClusterOption,
    endpoint: str = EndpointOption,
) -> None:
    """Disconnect the agents of these container instances."""
    body = {"cluster": cluster, "instances": instance}
    _print(_call(endpoint, "POST", "/agents/disconnect", body))


@app.command("reconnect")
def reconnect(
    instance: list[str] = InstanceOption,
    cluster: str = ClusterOption,
    endpoint: str = EndpointOption,
) -> None:
    """Reconnect the agents of these container instances."""
    body = {"cluster": cluster, "instances": instance}
    _print(_call(endpoint, "POST", "/agents/reconnect", body))


@app.command("drain")
def drain(
    instance: list[str] = InstanceOption,
    cluster: str = ClusterOption,
    endpoint: str = EndpointOption,
) -> None:
    """Set these container instances to DRAINING."""
    _print(_call(endpoint, "POST", "/instances/drain", {"cluster": cluster, "instances": instance}))


@app.command("fail-starts")
def fail_starts(
    instance: list[str] = InstanceOption,
    cluster: str = ClusterOption,
    reason: str = typer.Option("AGENT", "--reason", help="StartTask failure reason."),
    clear: bool = typer.Option(False, "--clear", help="Let these instances start tasks again."),
    endpoint: str = EndpointOption,
) -> None:
    """Make StartTask fail on these container instances (or, with --clear, stop doing so)."""
    if clear:
        _print(_call(endpoint, "DELETE", "/start-failures", {"instances": instance}))
        return
    body = {"cluster": cluster, "instances": instance, "reason": reason}
    _print(_call(endpoint, "POST", "/start-failures", body))


@app.command("throttle")
def throttle(
    operation: str | None = typer.Option(
        None, "--operation", help="ECS operation, e.g. StartTask."
    ),
    capacity: float = typer.Option(1.0, "--capacity", help="Burst size (tokens)."),
    rate: float = typer.Option(1.0, "--rate", help="Sustained requests per second."),
    reset: bool = typer.Option(False, "--reset", help="Back to ECS's rates for every operation."),
    endpoint: str = EndpointOption,
) -> None:
    """Throttle one ECS operation harder (or reset every operation's rate)."""
    if reset:
        _print(_call(endpoint, "DELETE", "/throttle"))
        return
    if operation is None:
        raise FlagInvalid("--operation is needed (or --reset)")
    body = {"operation": operation, "capacity": capacity, "rate_per_s": rate}
    _print(_call(endpoint, "PUT", "/throttle", body))
