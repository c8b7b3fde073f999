"""Environments, their revisions and deployments as store transactions; what the controller reads.

For the API: create (revision 1 with a fresh token), get, list (a cluster by name or ARN),
update (a new revision with a new token; old revisions pruned past the history limit),
rollback (a new revision copying an older one, deployed at once), pause / resume, delete
(v0.3: quiet when absent; marks the environment deleting so that the controller stops its
tasks, or with `force` removes its records at once). For the controller: `desired` (what an
environment wants now), `set_deployment_status`, `write_status` and `forget` (once a deleted
one's tasks stopped). The calls of `revisions.py`, `deployments.py` and `desired.py` are
re-exported here: callers import this module. ECS is asked (through `EcsCatalog`) before a
transaction, never inside one.

Assumptions / Invariants:
- Revision numbers only grow; a rollback writes a new revision (Kubernetes' way); the current
  revision, the target revision and the `history_limit` revisions before the current are kept.
- An environment being deleted is invisible to the API (404) and refuses every write but
  `forget`; its name is free again only once `forget` (or a forced delete) removed its record.
- The cluster of an environment never changes: tasks are only ever placed in one cluster.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime

from blox.contract import texts
from blox.model import arn as arns
from blox.model import daemon
from blox.model.daemon import Constraint, DeploymentStatus, Environment, Revision
from blox.model.errors import ArnInvalid, DaemonInvalid
from blox.scheduler.catalog import EcsCatalog
from blox.scheduler.deployments import (
    create_deployment,
    get_deployment,
    list_deployments,
    new_id,
    set_deployment_status,
    supersede,
)
from blox.scheduler.desired import DesiredState, desired, write_status
from blox.scheduler.errors import EnvironmentDeleting, EnvironmentExists, RequestInvalid
from blox.scheduler.records import (
    EnvironmentRecord,
    Status,
    Write,
    decode_environment,
    decode_status,
    encode_revision,
    every,
    load,
    load_live,
    put_environment,
    transact,
)
from blox.scheduler.revisions import get_revision, list_revisions, pruned, rollback
from blox.store import Compare, Delete, Op, Put, Store, errors, keys

__all__ = [
    "DEFAULT_HISTORY_LIMIT",
    "ClusterRef",
    "DesiredState",
    "EnvironmentView",
    "RolloutChange",
    "Status",
    "create_deployment",
    "create_environment",
    "delete_environment",
    "desired",
    "forget",
    "get_deployment",
    "get_environment",
    "get_revision",
    "list_deployments",
    "list_environments",
    "list_revisions",
    "parse_cluster",
    "rollback",
    "set_deployment_status",
    "set_paused",
    "update_environment",
    "write_status",
]

DEFAULT_HISTORY_LIMIT = 10
PURGE_BATCH = 100  # deletes per transaction: etcd refuses more than 128 operations in one
# ECS: "up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens".
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}", re.ASCII)


@dataclass(frozen=True, slots=True)
class ClusterRef:
    """A cluster as a client named it: by name (any account and region) or by ARN."""

    name: str
    arn: str | None = None

    def matches(self, cluster_arn: str) -> bool:
        """Whether `cluster_arn` is this cluster."""
        if self.arn is not None:
            return cluster_arn == self.arn
        return keys.cluster_name(cluster_arn) == self.name


def parse_cluster(text: str) -> ClusterRef:
    """A cluster name or ARN; RequestInvalid with v0.3's `Invalid cluster ARN or name`."""
    try:
        parsed = arns.parse(text) if text.startswith("arn:") else None
    except ArnInvalid:
        parsed = None
    if parsed is not None and parsed.resource_type == "cluster" and parsed.cluster:
        return ClusterRef(parsed.cluster, text)
    if parsed is None and _CLUSTER_NAME.fullmatch(text):
        return ClusterRef(text)
    raise RequestInvalid(texts.INVALID_CLUSTER)


@dataclass(frozen=True, slots=True)
class RolloutChange:
    """Rollout settings to change; None keeps the current (or default) value."""

    max_unavailable: daemon.Share | None = None
    max_surge: daemon.Share | None = None
    min_ready_s: float | None = None
    progress_deadline_s: float | None = None
    auto_rollback: bool | None = None

    def applied(self, policy: daemon.RolloutPolicy) -> daemon.RolloutPolicy:
        """`policy` with these changes; DaemonInvalid if the result breaks its rules."""
        changes = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }
        return dataclasses.replace(policy, **changes)


@dataclass(frozen=True, slots=True)
class EnvironmentView:
    """An environment as the API shows it: current revision, target revision, last status."""

    environment: Environment
    target: Revision | None
    status: Status | None


async def create_environment(
    store: Store,
    catalog: EcsCatalog,
    *,
    name: str,
    cluster: str,
    task_definition: str,
    constraints: tuple[Constraint, ...] = (),
    rollout: RolloutChange | None = None,
    history_limit: int = DEFAULT_HISTORY_LIMIT,
    now: datetime,
) -> Environment:
    """Create `name` at revision 1; v0.3's order: input, cluster, task definition, the name."""
    if not daemon.ENVIRONMENT_NAME.fullmatch(name):
        raise DaemonInvalid(f"environment name {name!r} must be 1-30 letters, digits, '-' or '_'")
    policy = (rollout or RolloutChange()).applied(daemon.RolloutPolicy())
    parse_cluster(cluster)
    cluster_arn = await catalog.cluster_arn(cluster)
    task_definition_arn = await catalog.task_definition_arn(task_definition)
    revision = Revision(
        number=1,
        task_definition=task_definition_arn,
        cluster_arn=cluster_arn,
        constraints=constraints,
        rollout=policy,
        deployment_token=new_id(),
        created_at=now,
    )
    environment = Environment(
        name=name, revision=revision, created_at=now, updated_at=now, history_limit=history_limit
    )

    async def attempt() -> Write[Environment]:
        loaded = await load(store, name)
        if loaded is not None:
            if loaded.environment.deleting:
                raise EnvironmentDeleting(name)
            raise EnvironmentExists(name)
        compare, put = put_environment(None, EnvironmentRecord(environment))
        return Write(
            environment, [compare], [put, Put(keys.revision(name, 1), encode_revision(revision))]
        )

    return await transact(store, attempt, what=f"creation of {name}")


async def get_environment(store: Store, name: str) -> EnvironmentView:
    """A live environment; EnvironmentNotFound if absent or being deleted."""
    loaded = await load_live(store, name)
    status = await store.get(keys.scheduler_status(name))
    return _view(loaded.record, None if status is None else decode_status(status.value))


async def list_environments(
    store: Store, *, cluster: ClusterRef | None = None, include_deleting: bool = False
) -> list[EnvironmentView]:
    """Every environment (of `cluster`, if given) by name; deleting ones only if asked."""
    statuses = {
        entry.key.removeprefix(keys.SCHEDULER_STATUS): decode_status(entry.value)
        for entry in await every(store, keys.SCHEDULER_STATUS)
    }
    views = []
    for entry in await every(store, keys.ENVIRONMENTS):
        record = decode_environment(entry.value)
        environment = record.environment
        if environment.deleting and not include_deleting:
            continue
        if cluster is None or cluster.matches(environment.revision.cluster_arn):
            views.append(_view(record, statuses.get(environment.name)))
    return views


async def update_environment(
    store: Store,
    catalog: EcsCatalog,
    *,
    name: str,
    task_definition: str | None = None,
    cluster: str | None = None,
    constraints: tuple[Constraint, ...] | None = None,
    rollout: RolloutChange | None = None,
    history_limit: int | None = None,
    now: datetime,
) -> Environment:
    """Change `name`: a new revision with a new token when what runs or how it rolls out
    changes (a new history limit alone makes none). The cluster may be named, not changed."""
    if (task_definition, cluster, constraints, rollout, history_limit) == (None,) * 5:
        raise RequestInvalid(texts.NOTHING_TO_UPDATE)
    ref = parse_cluster(cluster) if cluster is not None else None
    await load_live(store, name)  # a missing environment is a 404 before ECS is asked
    task_definition_arn = (
        await catalog.task_definition_arn(task_definition) if task_definition is not None else None
    )
    token = new_id()

    async def attempt() -> Write[Environment]:
        loaded = await load_live(store, name)
        environment, current = loaded.environment, loaded.environment.revision
        if ref is not None and not ref.matches(current.cluster_arn):
            raise RequestInvalid(
                texts.CLUSTER_IMMUTABLE.format(
                    name=name, cluster=current.cluster_arn, requested=cluster
                )
            )
        content = dataclasses.replace(
            current,
            task_definition=task_definition_arn or current.task_definition,
            constraints=current.constraints if constraints is None else constraints,
            rollout=rollout.applied(current.rollout) if rollout else current.rollout,
        )
        limit = environment.history_limit if history_limit is None else history_limit
        if content == current and limit == environment.history_limit:
            return Write(environment)
        ops: list[Op] = []
        if content != current:
            revision = dataclasses.replace(
                content,
                number=current.number + 1,
                deployment_token=token,
                created_at=now,
                rolled_back_from=None,
            )
            ops.append(Put(keys.revision(name, revision.number), encode_revision(revision)))
            current = revision
        changed = dataclasses.replace(
            environment, revision=current, history_limit=limit, updated_at=now
        )
        compare, put = put_environment(
            loaded, dataclasses.replace(loaded.record, environment=changed)
        )
        ops += [put, *await pruned(store, before=loaded.record, after=changed)]
        return Write(changed, [compare], ops)

    return await transact(store, attempt, what=f"update of {name}")


async def set_paused(store: Store, name: str, *, paused: bool, now: datetime) -> Environment:
    """Pause or resume the rollouts of `name` (the controller stops moving instances)."""

    async def attempt() -> Write[Environment]:
        loaded = await load_live(store, name)
        if loaded.environment.paused == paused:
            return Write(loaded.environment)
        changed = dataclasses.replace(loaded.environment, paused=paused, updated_at=now)
        compare, put = put_environment(
            loaded, dataclasses.replace(loaded.record, environment=changed)
        )
        return Write(changed, [compare], [put])

    return await transact(store, attempt, what=f"pause of {name}")


async def delete_environment(
    store: Store, name: str, *, force: bool = False, now: datetime
) -> None:
    """Delete `name` (nothing when absent, as v0.3): mark it deleting, supersede its
    deployment in progress; with `force`, also remove all its records now (`forget`)."""
    if not daemon.ENVIRONMENT_NAME.fullmatch(name):
        return

    async def attempt() -> Write[None]:
        loaded = await load(store, name)
        if loaded is None or loaded.environment.deleting:
            return Write(None)
        compares, ops = await supersede(
            store,
            loaded,
            status=DeploymentStatus.SUPERSEDED,
            reason="the environment was deleted",
            now=now,
        )
        changed = dataclasses.replace(
            loaded.environment, deleting=True, active_deployment=None, updated_at=now
        )
        compare, put = put_environment(
            loaded, dataclasses.replace(loaded.record, environment=changed)
        )
        return Write(None, [compare, *compares], [put, *ops])

    await transact(store, attempt, what=f"deletion of {name}")
    if force:
        await forget(store, name)


async def forget(store: Store, name: str) -> bool:
    """Remove every record of `name` if it is being deleted (its record last); False when
    there was none to remove or it is not being deleted. Safe to repeat and to race."""
    for _ in range(3):
        loaded = await load(store, name)
        if loaded is None or not loaded.environment.deleting:
            return False
        children = [keys.scheduler_status(name)]
        for prefix in (
            keys.revisions_of(name),
            keys.deployments_of(name),
            keys.deployment_orders_of(name),
        ):
            children += [entry.key for entry in await every(store, prefix)]
        for start_at in range(0, len(children), PURGE_BATCH):
            batch = children[start_at : start_at + PURGE_BATCH]
            await store.txn(compares=[], ops=[Delete(key) for key in batch])
        try:
            await store.txn(
                compares=[Compare(loaded.entry.key, loaded.entry.mod_revision)],
                ops=[Delete(loaded.entry.key)],
            )
        except errors.CompareFailed:
            continue
        return True
    return False


# -- helpers -------------------------------------------------------------------------------


def _view(record: EnvironmentRecord, status: Status | None) -> EnvironmentView:
    return EnvironmentView(record.environment, record.target, status)
