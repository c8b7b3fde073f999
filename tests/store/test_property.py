"""Conformance by property: random operation sequences give the memory reference's results.

Each example runs one sequence on a fresh memory store (the reference) and on the backend
under test, in a namespace of its own, and compares every outcome with revisions taken
relative to the revision each store started the example at.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blox.store import Compare, Delete, Entry, Op, Put, Store, errors, open_store
from tests.store.conftest import Backend

KEYS = ["a", "b", "c", "d/1", "d/2"]
_examples = itertools.count()


@dataclass(frozen=True)
class Step:
    """One operation: what, on which keys, with which value, expecting which relative revision."""

    op: str
    key: str
    other: str
    value: bytes
    expect: int | None
    limit: int


steps = st.builds(
    Step,
    op=st.sampled_from(["put", "delete", "get", "list", "txn", "txn"]),
    key=st.sampled_from(KEYS),
    other=st.sampled_from(KEYS),
    value=st.binary(max_size=8),
    expect=st.none() | st.integers(min_value=0, max_value=12),
    limit=st.integers(min_value=0, max_value=3),
)


def shape(entry: Entry | None, base: int, ns: str) -> tuple[Any, ...] | None:
    """An entry with its key and revisions made relative, comparable across stores."""
    if entry is None:
        return None
    return (
        entry.key.removeprefix(ns),
        entry.value,
        entry.create_revision - base,
        entry.mod_revision - base,
        entry.version,
    )


async def run(store: Store, ns: str, sequence: list[Step]) -> list[Any]:
    """Outcomes of `sequence` on `store` under `ns`: values, relative revisions or error names."""
    base = await store.revision()
    outcomes: list[Any] = []
    for step in sequence:
        expect = None if step.expect is None else (0 if step.expect == 0 else base + step.expect)
        key, other = ns + step.key, ns + step.other
        try:
            if step.op == "put":
                outcome: Any = await store.put(key, step.value, expect=expect) - base
            elif step.op == "delete":
                deleted = await store.delete(key, expect=expect)
                outcome = None if deleted is None else deleted - base
            elif step.op == "get":
                outcome = shape(await store.get(key), base, ns)
            elif step.op == "list":
                page = await store.list(ns + "d/" if step.limit == 3 else ns, limit=step.limit)
                outcome = (
                    [shape(e, base, ns) for e in page.entries],
                    page.more,
                    page.revision - base,
                )
            else:
                compares = [] if expect is None else [Compare(key, expect)]
                ops: list[Op] = (
                    [Put(key, step.value)]
                    if other == key
                    else [Put(key, step.value), Delete(other)]
                )
                outcome = await store.txn(compares=compares, ops=ops) - base
        except (errors.CompareFailed, errors.InvalidOperation) as exc:
            outcome = type(exc).__name__
        outcomes.append(outcome)
    return outcomes


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=st.lists(steps, min_size=1, max_size=25))
async def test_random_operation_sequences_match_the_reference(
    backend: Backend, sequence: list[Step]
) -> None:
    reference = await open_store("memory://")
    try:
        expected = await run(reference, "", sequence)
    finally:
        await reference.close()
    ns = f"{backend.ns}e{next(_examples)}/"
    assert await run(backend.store, ns, sequence) == expected
