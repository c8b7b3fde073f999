"""How the scheduler stores environments, revisions, deployments and status, and the one CAS loop.

The codecs are pure (JSON, by their own field names, never the wire's); `load` reads an
environment record, `every` a whole prefix, and `transact` runs an attempt function until its
transaction commits. Callers: the scheduler's `deployments`, `revisions`, `desired` and
`environments` modules only.

Assumptions / Invariants:
- An attempt function only reads and builds a transaction; it never has a side effect, so
  `transact` may run it again after a lost compare (v0.3 started tasks inside its retried
  transaction and so started them twice).
- Every write that changes an environment record compares its mod_revision (and a status
  change of a deployment the deployment's), so two writers never both act on one reading of
  it: of two creates of one name, or two deployments of one token, one wins.
- The record embeds its current revision and its target revision (those are immutable), so
  reading "what should run" is one get, whatever the revision history kept.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from blox.model import daemon
from blox.model.errors import DaemonInvalid
from blox.scheduler.errors import Contended, EnvironmentNotFound, RecordUnreadable
from blox.store import Compare, Entry, Op, Put, Store, errors, keys

__all__ = [
    "MAX_ATTEMPTS",
    "EnvironmentRecord",
    "Loaded",
    "Status",
    "Write",
    "decode_deployment",
    "decode_environment",
    "decode_revision",
    "decode_status",
    "encode_deployment",
    "encode_environment",
    "encode_revision",
    "encode_status",
    "every",
    "load",
    "load_live",
    "put_environment",
    "transact",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_ATTEMPTS = 8
LIST_PAGE = 500


@dataclass(frozen=True, slots=True)
class EnvironmentRecord:
    """An environment as stored: the domain value plus what only the store needs."""

    environment: daemon.Environment
    target: daemon.Revision | None = None  # the revision of the latest deployment
    deployed_token: str | None = None  # the token the latest deployment quoted
    deployment_seq: int = 0  # deployments created so far; numbers their order entries


@dataclass(frozen=True, slots=True)
class Status:
    """What the controller last observed of an environment (Kubernetes' DaemonSet status)."""

    desired: int = 0  # eligible container instances
    current: int = 0  # of them running a task of the environment, any revision
    ready: int = 0  # of them running a ready task
    updated: int = 0  # of them running a task of the target revision
    available: int = 0  # of them running a task ready for minReadySeconds
    unavailable: int = 0  # desired - available
    # instances that should not run the daemon (constraints unmet, DRAINING, not ACTIVE, gone,
    # or not wanted and disconnected) but run a live task of the environment
    misscheduled: int = 0
    current_revision: int | None = None
    target_revision: int | None = None
    # why the rollout waits, if it does (a `WaitReason` value); when it does not, after an
    # automatic rollback and until the next revision is deployed, what ECS said that caused
    # it ("rolled back: StartTask failed: RESOURCE:MEMORY on 3 instances")
    reason: str | None = None
    observed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Loaded:
    """An environment record as read, with the entry its writes must compare."""

    entry: Entry
    record: EnvironmentRecord

    @property
    def environment(self) -> daemon.Environment:
        """The environment at its current revision."""
        return self.record.environment


@dataclass(frozen=True, slots=True)
class Write(Generic[T]):
    """One attempt's transaction and what the caller gets once it commits (no ops: no write)."""

    result: T
    compares: list[Compare] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)


async def load(store: Store, name: str) -> Loaded | None:
    """The environment record `name`, or None when there is none."""
    entry = await store.get(keys.environment(name))
    return None if entry is None else Loaded(entry, decode_environment(entry.value))


async def load_live(store: Store, name: str) -> Loaded:
    """The environment record `name`; EnvironmentNotFound if absent or being deleted."""
    if not daemon.ENVIRONMENT_NAME.fullmatch(name):
        raise EnvironmentNotFound(name)
    loaded = await load(store, name)
    if loaded is None or loaded.environment.deleting:
        raise EnvironmentNotFound(name)
    return loaded


def put_environment(loaded: Loaded | None, record: EnvironmentRecord) -> tuple[Compare, Put]:
    """The compare and put that replace `loaded` (None: create) by `record`."""
    key = keys.environment(record.environment.name)
    expect = 0 if loaded is None else loaded.entry.mod_revision
    return Compare(key, expect), Put(key, encode_environment(record))


async def every(store: Store, prefix: str) -> list[Entry]:
    """Every entry under `prefix`, in key order, read LIST_PAGE at a time."""
    entries: list[Entry] = []
    after: str | None = None
    while True:
        page = await store.list(prefix, limit=LIST_PAGE, after=after)
        entries += page.entries
        if (after := page.next_after) is None:
            return entries


async def transact(store: Store, attempt: Callable[[], Awaitable[Write[T]]], *, what: str) -> T:
    """Run `attempt` and commit its write, again after each lost compare; Contended at the end."""
    for _ in range(MAX_ATTEMPTS):
        write = await attempt()
        if not write.ops:
            return write.result
        try:
            await store.txn(compares=write.compares, ops=write.ops)
        except errors.CompareFailed as exc:
            logger.debug("%s lost a compare on %s; reading again", what, exc.keys)
            continue
        return write.result
    raise Contended(f"{what}: {MAX_ATTEMPTS} compare-and-swap attempts lost to racing writers")


# -- codecs --------------------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _share(value: Any) -> daemon.Share:
    return daemon.parse_share(value, "stored share")


def _revision_dict(r: daemon.Revision) -> dict[str, Any]:
    return {
        "number": r.number,
        "taskDefinition": r.task_definition,
        "clusterArn": r.cluster_arn,
        "constraints": [str(c) for c in r.constraints],
        "rollout": {
            "maxUnavailable": str(r.rollout.max_unavailable),
            "maxSurge": str(r.rollout.max_surge),
            "minReadyS": r.rollout.min_ready_s,
            "progressDeadlineS": r.rollout.progress_deadline_s,
            "autoRollback": r.rollout.auto_rollback,
        },
        "deploymentToken": r.deployment_token,
        "createdAt": _time(r.created_at),
        "rolledBackFrom": r.rolled_back_from,
    }


def _revision(d: dict[str, Any]) -> daemon.Revision:
    rollout = d["rollout"]
    return daemon.Revision(
        number=int(d["number"]),
        task_definition=str(d["taskDefinition"]),
        cluster_arn=str(d["clusterArn"]),
        constraints=tuple(daemon.parse_constraint(c) for c in d["constraints"]),
        rollout=daemon.RolloutPolicy(
            max_unavailable=_share(rollout["maxUnavailable"]),
            max_surge=_share(rollout["maxSurge"]),
            min_ready_s=float(rollout["minReadyS"]),
            progress_deadline_s=float(rollout["progressDeadlineS"]),
            auto_rollback=bool(rollout["autoRollback"]),
        ),
        deployment_token=str(d["deploymentToken"]),
        created_at=_parse_time(d.get("createdAt")),
        rolled_back_from=d.get("rolledBackFrom"),
    )


def _decoded(what: str, data: bytes, build: Callable[[dict[str, Any]], T]) -> T:
    """`build` over the JSON object in `data`; RecordUnreadable for anything else."""
    try:
        value = json.loads(data)
        if not isinstance(value, dict):
            raise TypeError(f"a JSON {type(value).__name__}, not an object")
        return build(value)
    except (ValueError, TypeError, KeyError, AttributeError, DaemonInvalid) as exc:
        raise RecordUnreadable(f"stored {what} does not decode: {exc!r}") from exc


def _dumps(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def encode_revision(revision: daemon.Revision) -> bytes:
    """The stored bytes of a revision."""
    return _dumps(_revision_dict(revision))


def decode_revision(data: bytes) -> daemon.Revision:
    """The revision `encode_revision` wrote; RecordUnreadable for anything else."""
    return _decoded("revision", data, _revision)


def encode_environment(record: EnvironmentRecord) -> bytes:
    """The stored bytes of an environment record."""
    env = record.environment
    return _dumps(
        {
            "name": env.name,
            "revision": _revision_dict(env.revision),
            "target": None if record.target is None else _revision_dict(record.target),
            "paused": env.paused,
            "deleting": env.deleting,
            "health": env.health,
            "createdAt": _time(env.created_at),
            "updatedAt": _time(env.updated_at),
            "historyLimit": env.history_limit,
            "activeDeployment": env.active_deployment,
            "deployedToken": record.deployed_token,
            "deploymentSeq": record.deployment_seq,
        }
    )


def _environment(d: dict[str, Any]) -> EnvironmentRecord:
    health = d["health"]
    if health not in ("healthy", "unhealthy"):
        raise ValueError(f"health {health!r}")
    environment = daemon.Environment(
        name=str(d["name"]),
        revision=_revision(d["revision"]),
        paused=bool(d["paused"]),
        deleting=bool(d["deleting"]),
        health=health,
        created_at=_parse_time(d.get("createdAt")),
        updated_at=_parse_time(d.get("updatedAt")),
        history_limit=int(d["historyLimit"]),
        active_deployment=d.get("activeDeployment"),
    )
    target = d.get("target")
    return EnvironmentRecord(
        environment=environment,
        target=None if target is None else _revision(target),
        deployed_token=d.get("deployedToken"),
        deployment_seq=int(d["deploymentSeq"]),
    )


def decode_environment(data: bytes) -> EnvironmentRecord:
    """The record `encode_environment` wrote; RecordUnreadable for anything else."""
    return _decoded("environment", data, _environment)


def encode_deployment(deployment: daemon.Deployment) -> bytes:
    """The stored bytes of a deployment."""
    d = deployment
    return _dumps(
        {
            "id": d.id,
            "environmentName": d.environment_name,
            "revision": d.revision,
            "taskDefinition": d.task_definition,
            "token": d.token,
            "status": d.status.value,
            "failedInstances": list(d.failed_instances),
            "reason": d.reason,
            "createdAt": _time(d.created_at),
            "updatedAt": _time(d.updated_at),
            "finishedAt": _time(d.finished_at),
        }
    )


def _deployment(d: dict[str, Any]) -> daemon.Deployment:
    return daemon.Deployment(
        id=str(d["id"]),
        environment_name=str(d["environmentName"]),
        revision=int(d["revision"]),
        task_definition=str(d["taskDefinition"]),
        token=str(d["token"]),
        status=daemon.DeploymentStatus(d["status"]),
        failed_instances=tuple(str(a) for a in d["failedInstances"]),
        reason=d.get("reason"),
        created_at=_parse_time(d.get("createdAt")),
        updated_at=_parse_time(d.get("updatedAt")),
        finished_at=_parse_time(d.get("finishedAt")),
    )


def decode_deployment(data: bytes) -> daemon.Deployment:
    """The deployment `encode_deployment` wrote; RecordUnreadable for anything else."""
    return _decoded("deployment", data, _deployment)


_COUNTS = ("desired", "current", "ready", "updated", "available", "unavailable", "misscheduled")


def encode_status(status: Status) -> bytes:
    """The stored bytes of a status."""
    counts: dict[str, Any] = {name: getattr(status, name) for name in _COUNTS}
    return _dumps(
        {
            **counts,
            "currentRevision": status.current_revision,
            "targetRevision": status.target_revision,
            "reason": status.reason,
            "observedAt": _time(status.observed_at),
        }
    )


def _status(d: dict[str, Any]) -> Status:
    return Status(
        **{name: int(d[name]) for name in _COUNTS},
        current_revision=d.get("currentRevision"),
        target_revision=d.get("targetRevision"),
        reason=d.get("reason"),
        observed_at=_parse_time(d.get("observedAt")),
    )


def decode_status(data: bytes) -> Status:
    """The status `encode_status` wrote; RecordUnreadable for anything else."""
    return _decoded("status", data, _status)
