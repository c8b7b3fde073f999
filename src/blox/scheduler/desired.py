"""What the controller reads and writes of an environment: `desired` and `write_status`.

`desired(store, name)` answers "what does environment E want now": its current revision (and
whether it is paused or being deleted), the target revision its tasks should run, and the
deployment in progress; None once it has no record. `write_status` stores the counters the
controller observed, which the API shows. Re-exported by `environments.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from blox.model import daemon
from blox.model.daemon import Deployment, Environment, Revision
from blox.scheduler.records import Status, Write, decode_deployment, encode_status, load, transact
from blox.store import Compare, Put, Store, keys

__all__ = ["DesiredState", "desired", "write_status"]


@dataclass(frozen=True, slots=True)
class DesiredState:
    """What an environment wants now (the controller's question)."""

    environment: Environment  # its current revision, `paused` and `deleting`
    target: Revision | None  # the revision its tasks should run; None before any deployment
    deployment: Deployment | None  # the deployment in progress, if one is
    version: int  # the store mod_revision of the environment record


async def desired(store: Store, name: str) -> DesiredState | None:
    """What environment `name` wants now, or None when it has no record (never created, or
    forgotten: its tasks, found by their group, are no one's)."""
    loaded = await load(store, name) if daemon.ENVIRONMENT_NAME.fullmatch(name) else None
    if loaded is None:
        return None
    active = loaded.environment.active_deployment
    deployment = None
    if active is not None:
        found = await store.get(keys.deployment(name, active))
        deployment = None if found is None else decode_deployment(found.value)
    return DesiredState(
        loaded.environment, loaded.record.target, deployment, loaded.entry.mod_revision
    )


async def write_status(store: Store, name: str, *, status: Status) -> bool:
    """Store what the controller observed of `name`; False if it is gone or being deleted."""

    async def attempt() -> Write[bool]:
        loaded = await load(store, name)
        if loaded is None or loaded.environment.deleting:
            return Write(False)
        compare = Compare(loaded.entry.key, loaded.entry.mod_revision)
        return Write(True, [compare], [Put(keys.scheduler_status(name), encode_status(status))])

    return await transact(store, attempt, what=f"status of {name}")
