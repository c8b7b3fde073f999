"""Revisions of an environment: the kept history, one revision, rollback, and pruning.

A rollback writes a new revision that copies an older one (Kubernetes' way) and deploys it at
once, in one transaction with the environment record. `pruned` says which revisions an update
or a rollback drops. Re-exported by `environments.py`, the module callers import.

Assumptions / Invariants:
- Revision numbers only grow; revision keys are written once and never rewritten.
- Kept: the current revision, the target revision (what the tasks run), and the
  `history_limit` revisions before the current one; anything older is deleted.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from blox.contract import texts
from blox.model.daemon import Deployment, DeploymentStatus, Environment, Revision
from blox.scheduler.deployments import new_id, start, supersede
from blox.scheduler.errors import RequestInvalid, RevisionNotFound
from blox.scheduler.records import (
    EnvironmentRecord,
    Loaded,
    Write,
    decode_revision,
    encode_revision,
    every,
    load_live,
    transact,
)
from blox.store import Compare, Delete, Op, Put, Store, keys

__all__ = ["get_revision", "list_revisions", "pruned", "rollback"]


async def rollback(
    store: Store,
    name: str,
    *,
    to: int | None = None,
    now: datetime,
    failed_deployment: str | None = None,
    cause: str | None = None,
) -> Deployment:
    """Deploy a copy of revision `to` (default: the newest kept before the current) as a new
    revision, resuming a paused environment. The deployment in progress is superseded, or,
    when it is `failed_deployment` (the controller's automatic rollback), rolled back, its
    reason naming the `cause`."""
    token, deployment_id = new_id(), new_id()

    async def attempt() -> Write[Deployment]:
        loaded = await load_live(store, name)
        environment, current = loaded.environment, loaded.environment.revision
        source = await _rollback_source(store, loaded, to)
        revision = dataclasses.replace(
            source,
            number=current.number + 1,
            deployment_token=token,
            created_at=now,
            rolled_back_from=current.number,
        )
        note = f"rolled back to revision {source.number} as revision {revision.number}"
        compares: list[Compare] = []
        ops: list[Op] = []
        if failed_deployment is not None:
            compares, ops = await supersede(
                store,
                loaded,
                status=DeploymentStatus.ROLLED_BACK,
                reason=f"{note}: {cause}" if cause else note,
                now=now,
                deployment_id=failed_deployment,
            )
        if environment.active_deployment not in (None, failed_deployment):
            more = await supersede(
                store, loaded, status=DeploymentStatus.SUPERSEDED, reason=note, now=now
            )
            compares, ops = compares + more[0], ops + more[1]
        changed = dataclasses.replace(
            environment, revision=revision, paused=False, active_deployment=None
        )
        write = await start(
            store,
            loaded,
            revision=revision,
            deployment_id=deployment_id,
            now=now,
            environment=changed,
            reason=f"rollback to revision {source.number}",
        )
        dropped = await pruned(store, before=loaded.record, after=changed)
        put_revision = Put(keys.revision(name, revision.number), encode_revision(revision))
        return Write(
            write.result, write.compares + compares, [*write.ops, *ops, put_revision, *dropped]
        )

    return await transact(store, attempt, what=f"rollback of {name}")


async def list_revisions(store: Store, name: str) -> list[Revision]:
    """The kept revisions of a live environment, newest first."""
    await load_live(store, name)
    entries = await every(store, keys.revisions_of(name))
    return [decode_revision(entry.value) for entry in reversed(entries)]


async def get_revision(store: Store, name: str, *, number: int) -> Revision:
    """One kept revision of a live environment; RevisionNotFound if never made or pruned."""
    loaded = await load_live(store, name)
    return await _kept_revision(store, loaded, number)


async def _kept_revision(store: Store, loaded: Loaded, number: int) -> Revision:
    name, current = loaded.environment.name, loaded.environment.revision
    if number == current.number:
        return current
    entry = await store.get(keys.revision(name, number)) if 1 <= number < current.number else None
    if entry is None:
        raise RevisionNotFound(name, number)
    return decode_revision(entry.value)


async def _rollback_source(store: Store, loaded: Loaded, to: int | None) -> Revision:
    """Revision `to`, or the newest kept before the current one."""
    if to is not None:
        return await _kept_revision(store, loaded, to)
    name, current = loaded.environment.name, loaded.environment.revision
    entries = await every(store, keys.revisions_of(name))
    earlier = [decode_revision(e.value) for e in entries]
    earlier = [r for r in earlier if r.number < current.number]
    if not earlier:
        raise RequestInvalid(texts.NO_EARLIER_REVISION.format(name=name))
    return earlier[-1]


async def pruned(store: Store, *, before: EnvironmentRecord, after: Environment) -> list[Op]:
    """Deletes of the revisions `after` no longer keeps: older than its history limit allows,
    and neither its current nor its target revision."""
    keep_from = after.revision.number - after.history_limit
    target = before.target.number if before.target is not None else None
    entries = await every(store, keys.revisions_of(after.name))
    return [
        Delete(entry.key)
        for entry in entries
        if (number := int(entry.key.rsplit(keys.SEPARATOR, 1)[1])) < keep_from and number != target
    ]
