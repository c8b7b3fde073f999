"""Deployments of an environment as store transactions: create, list, get, change status.

`create_deployment` checks the token in v0.3's order: the environment exists, the token is
the current revision's (else "outdated"), no deployment quoted it yet (else "already
exists"), no deployment is in progress (else "in progress"). `set_deployment_status` is the
controller's; `start` and `supersede` build the writes `environments.rollback` and `delete`
share. Re-exported by `environments.py`, the module callers import.

Assumptions / Invariants:
- At most one deployment per environment is in progress (pending or running): the
  environment record names it (`active_deployment`), and every write that sets or clears that
  name compares the record.
- A deployment in a final status (completed, rolled_back, superseded) never changes again;
  failed may only become rolled_back.
- The newest deployment is the only one that can be in progress, so pruning the oldest past
  DEPLOYMENT_HISTORY never removes one in progress.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from blox.model.daemon import Deployment, DeploymentStatus, Environment, Revision
from blox.scheduler.errors import (
    DeploymentExists,
    DeploymentInProgress,
    DeploymentNotFound,
    TokenOutdated,
    TransitionInvalid,
)
from blox.scheduler.records import (
    Loaded,
    Write,
    decode_deployment,
    encode_deployment,
    load_live,
    put_environment,
    transact,
)
from blox.store import Compare, Delete, Op, Put, Store, keys

__all__ = [
    "DEPLOYMENT_HISTORY",
    "NEXT_STATUSES",
    "create_deployment",
    "get_deployment",
    "list_deployments",
    "new_id",
    "set_deployment_status",
    "start",
    "supersede",
]

DEPLOYMENT_HISTORY = 100  # deployments kept per environment, newest first

_S = DeploymentStatus
# Which status a deployment may move to from each; final statuses move nowhere.
NEXT_STATUSES: dict[DeploymentStatus, frozenset[DeploymentStatus]] = {
    _S.PENDING: frozenset({_S.RUNNING, _S.COMPLETED, _S.FAILED, _S.ROLLED_BACK, _S.SUPERSEDED}),
    _S.RUNNING: frozenset({_S.COMPLETED, _S.FAILED, _S.ROLLED_BACK, _S.SUPERSEDED}),
    _S.FAILED: frozenset({_S.ROLLED_BACK}),
    _S.COMPLETED: frozenset(),
    _S.ROLLED_BACK: frozenset(),
    _S.SUPERSEDED: frozenset(),
}

# What the end of the active deployment says of the environment's health (v0.3's field).
_HEALTH: dict[DeploymentStatus, Literal["healthy", "unhealthy"]] = {
    _S.COMPLETED: "healthy",
    _S.FAILED: "unhealthy",
}


def new_id() -> str:
    """A fresh lower-case UUID, for deployment ids and deployment tokens (v0.3's form)."""
    return str(uuid.uuid4())


async def create_deployment(store: Store, name: str, *, token: str, now: datetime) -> Deployment:
    """Start deploying the current revision of `name`, which `token` must name (v0.3)."""
    deployment_id = new_id()  # drawn once: a retried attempt writes the same deployment

    async def attempt() -> Write[Deployment]:
        loaded = await load_live(store, name)
        environment, record = loaded.environment, loaded.record
        current = environment.revision.deployment_token
        if token != current:
            raise TokenOutdated(token, current)
        if record.deployed_token == token:
            raise DeploymentExists(token)
        if environment.active_deployment is not None:
            raise DeploymentInProgress(environment.active_deployment)
        return await start(
            store, loaded, revision=environment.revision, deployment_id=deployment_id, now=now
        )

    return await transact(store, attempt, what=f"deployment of {name}")


async def start(
    store: Store,
    loaded: Loaded,
    *,
    revision: Revision,
    deployment_id: str,
    now: datetime,
    environment: Environment | None = None,
    reason: str | None = None,
) -> Write[Deployment]:
    """The write that starts a deployment of `revision` (the environment's token is used up).

    `environment`: the environment as it must be stored (default: as loaded), before it names
    the new deployment as active. Drops the deployment that falls out of DEPLOYMENT_HISTORY.
    """
    name = loaded.environment.name
    record = loaded.record
    seq = record.deployment_seq + 1
    deployment = Deployment(
        id=deployment_id,
        environment_name=name,
        revision=revision.number,
        task_definition=revision.task_definition,
        token=revision.deployment_token,
        reason=reason,
        created_at=now,
        updated_at=now,
    )
    base = environment or loaded.environment
    stored = dataclasses.replace(
        record,
        environment=dataclasses.replace(base, active_deployment=deployment_id, updated_at=now),
        target=revision,
        deployed_token=revision.deployment_token,
        deployment_seq=seq,
    )
    compare, put = put_environment(loaded, stored)
    ops: list[Op] = [
        put,
        Put(keys.deployment(name, deployment_id), encode_deployment(deployment)),
        Put(keys.deployment_order(name, seq), deployment_id.encode()),
    ]
    if (oldest := seq - DEPLOYMENT_HISTORY) >= 1:
        order = await store.get(keys.deployment_order(name, oldest))
        if order is not None:
            ops += [Delete(order.key), Delete(keys.deployment(name, order.value.decode()))]
    return Write(deployment, [compare], ops)


async def supersede(
    store: Store,
    loaded: Loaded,
    *,
    status: DeploymentStatus,
    reason: str,
    now: datetime,
    deployment_id: str | None = None,
) -> tuple[list[Compare], list[Op]]:
    """The compares and ops that end a deployment (default: the active one) with `status`.

    Nothing when there is no such deployment or it may not move to `status`.
    """
    name = loaded.environment.name
    target = deployment_id or loaded.environment.active_deployment
    if target is None:
        return [], []
    key = keys.deployment(name, target)
    entry = await store.get(key)
    if entry is None:
        return [], []
    current = decode_deployment(entry.value)
    if status not in NEXT_STATUSES[current.status]:
        return [], []
    ended = _moved(current, status, reason=reason, failed_instances=None, now=now)
    return [Compare(key, entry.mod_revision)], [Put(key, encode_deployment(ended))]


async def get_deployment(store: Store, name: str, *, deployment_id: str) -> Deployment:
    """One deployment of a live environment; EnvironmentNotFound / DeploymentNotFound."""
    await load_live(store, name)
    entry = await store.get(keys.deployment(name, deployment_id))
    if entry is None:
        raise DeploymentNotFound(name, deployment_id)
    return decode_deployment(entry.value)


async def list_deployments(store: Store, name: str, *, limit: int = 0) -> list[Deployment]:
    """The deployments of a live environment, newest first (at most `limit`; 0: all kept)."""
    await load_live(store, name)
    page = await store.list(keys.deployment_orders_of(name), limit=limit)
    ids = [entry.value.decode() for entry in page.entries]
    found = await store.get_many([keys.deployment(name, i) for i in ids])
    return [decode_deployment(entry.value) for entry in found if entry is not None]


async def set_deployment_status(
    store: Store,
    name: str,
    *,
    deployment_id: str,
    status: DeploymentStatus,
    now: datetime,
    reason: str | None = None,
    failed_instances: Sequence[str] | None = None,
) -> Deployment:
    """Move a deployment to `status` (the controller's call); the same status again is a no-op
    unless `reason` or `failed_instances` change (a final status is never rewritten). Ending
    the active deployment frees the environment for the next; completed makes it healthy,
    failed unhealthy.

    Raises EnvironmentNotFound, DeploymentNotFound, TransitionInvalid.
    """

    async def attempt() -> Write[Deployment]:
        loaded = await load_live(store, name)
        key = keys.deployment(name, deployment_id)
        entry = await store.get(key)
        if entry is None:
            raise DeploymentNotFound(name, deployment_id)
        current = decode_deployment(entry.value)
        failed = tuple(failed_instances) if failed_instances is not None else None
        if status == current.status:
            unchanged = reason in (None, current.reason) and failed in (
                None,
                current.failed_instances,
            )
            if unchanged or not status.in_progress:  # a final status is never rewritten
                return Write(current)
        elif status not in NEXT_STATUSES[current.status]:
            raise TransitionInvalid(
                f"deployment {deployment_id} of {name} is {current.status.value}; "
                f"it cannot become {status.value}"
            )
        moved = _moved(current, status, reason=reason, failed_instances=failed, now=now)
        compares = [Compare(key, entry.mod_revision)]
        ops: list[Op] = [Put(key, encode_deployment(moved))]
        environment = loaded.environment
        if not status.in_progress and environment.active_deployment == deployment_id:
            health = _HEALTH.get(status, environment.health)
            freed = dataclasses.replace(
                environment, active_deployment=None, health=health, updated_at=now
            )
            compare, put = put_environment(
                loaded, dataclasses.replace(loaded.record, environment=freed)
            )
            compares.append(compare)
            ops.append(put)
        return Write(moved, compares, ops)

    return await transact(store, attempt, what=f"status of deployment {deployment_id}")


def _moved(
    current: Deployment,
    status: DeploymentStatus,
    *,
    reason: str | None,
    failed_instances: tuple[str, ...] | None,
    now: datetime,
) -> Deployment:
    final = not status.in_progress
    return dataclasses.replace(
        current,
        status=status,
        reason=reason if reason is not None else current.reason,
        failed_instances=(
            failed_instances if failed_instances is not None else current.failed_instances
        ),
        updated_at=now,
        finished_at=(current.finished_at or now) if final else None,
    )
