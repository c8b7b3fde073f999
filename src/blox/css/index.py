"""The secondary index entries a stored record must have. Pure: no I/O, no clock.

The processor writes a record and the change in its index entries in one store transaction;
the queries read one index prefix, fetch the records it names with `get_many`, and re-check
each filter with `values`, the same derivation, so an index and a filter never disagree.

Assumptions / Invariants:
- A live record has one entry per indexed field of its kind that holds a non-empty string
  (`family` comes from `taskDefinitionArn`); a tombstone has none, so it is never listed.
- Statuses are indexed upper case: the v0.3 status filter is case-insensitive.
- Entries are keys only (`keys.index_entry`, empty values): 100k tasks cost 100k records plus
  small keys, never a copy of each record per index.
- `VERSION` names this derivation: change the fields and bump it, and `processor.reindex`
  rebuilds every index once.
Callers: `blox.css.processor` (write path, reindex), `blox.css.queries` (read path).
"""

from __future__ import annotations

from typing import Literal

from blox.model import arn, ecs
from blox.model.errors import ArnInvalid
from blox.store import keys

__all__ = ["FIELDS", "VERSION", "Field", "entries", "family", "target", "values"]

VERSION = 1
Field = Literal["containerInstance", "startedBy", "group", "family", "status"]
# Per kind, most selective first: queries read the first one a request filters on. A container
# instance runs a handful of tasks, a startedBy token names one daemon's, a status half the fleet.
FIELDS: dict[ecs.Kind, tuple[Field, ...]] = {
    "task": ("containerInstance", "startedBy", "group", "family", "status"),
    "instance": ("status",),
}
# The detail field of each indexed field, per kind (`family` is derived, see `family`).
_DETAIL: dict[ecs.Kind, dict[Field, str]] = {
    "task": {
        "containerInstance": "containerInstanceArn",
        "startedBy": "startedBy",
        "group": "group",
        "status": "lastStatus",
    },
    "instance": {"status": "status"},
}


def values(record: ecs.Record) -> dict[Field, str]:
    """The indexed value of each field `record` has; empty for a tombstone.

    record: a decoded task or container-instance record.
    """
    if record.is_tombstone:
        return {}
    found: dict[Field, str] = {}
    for field, name in _DETAIL[record.kind].items():
        value = record.detail.get(name)
        if isinstance(value, str) and value:
            found[field] = value.upper() if field == "status" else value
    if record.kind == "task" and (named := family(record.detail.get("taskDefinitionArn"))):
        found["family"] = named
    return found


def entries(record: ecs.Record) -> frozenset[str]:
    """The store keys of every index entry `record` must have (none for a tombstone)."""
    return frozenset(
        keys.index_entry(record.kind, field, value, record.cluster_arn, record.arn)
        for field, value in values(record).items()
    )


def family(task_definition_arn: object) -> str | None:
    """The family of a task definition ARN (`…:task-definition/<family>:<revision>`), or None."""
    if not isinstance(task_definition_arn, str):
        return None
    try:
        parsed = arn.parse(task_definition_arn)
    except ArnInvalid:
        return None
    if parsed.resource_type != "task-definition":
        return None
    return parsed.resource_id.rpartition(":")[0]


def target(entry_key: str) -> str | None:
    """The record key an index entry names; None for a key that is no index entry."""
    try:
        return keys.indexed_record(entry_key)
    except ValueError:
        return None
