"""Lists through the secondary indexes, on memory and SQLite, over a fleet written by the processor.

The fleet: 240 tasks in three clusters (two share the name fleet-a, in two accounts), random
filter values, then status changes and tombstones; every answer is compared with the same
filter applied to the fleet as the test itself knows it, not as the store indexed it.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from blox.clock import ManualClock
from blox.css import queries
from blox.css.processor import Processor
from blox.model import events
from blox.store import Entry, Page, Store, keys, open_store

A = "arn:aws:ecs:us-east-1:111122223333"
B = "arn:aws-cn:ecs:cn-north-1:444455556666"
CA, CB, CC = f"{A}:cluster/fleet-a", f"{B}:cluster/fleet-a", f"{A}:cluster/fleet-b"
TASKS = 240


def in_cluster(cluster: str, resource: str, n: int) -> str:
    prefix, _, name = cluster.partition(":cluster/")
    return f"{prefix}:{resource}/{name}/{n:032x}"


def fleet() -> list[events.TaskEvent]:
    """Every task at version 1, then a status change to a quarter of them at version 2."""
    rng = random.Random(3)
    written: list[events.TaskEvent] = []
    for n in range(TASKS):
        cluster = (CA, CB, CC)[n % 3]
        detail: dict[str, Any] = {
            "taskArn": in_cluster(cluster, "task", n),
            "clusterArn": cluster,
            "lastStatus": rng.choice(["PENDING", "RUNNING", "STOPPED"]),
            "startedBy": rng.choice(["d1", "d2", "d3"]),
            "containerInstanceArn": in_cluster(cluster, "container-instance", rng.randrange(5)),
            "taskDefinitionArn": cluster.partition(":cluster/")[0]
            + f":task-definition/{rng.choice(['web', 'log'])}:{rng.randint(1, 3)}",
            "group": rng.choice(["family:web", "service:api"]),
            "version": 1,
        }
        if rng.random() < 0.2:
            del detail["startedBy"]
        written.append(task_event(detail))
    for event in written[::4]:
        written.append(task_event({**event.detail, "lastStatus": "STOPPED", "version": 2}))
    return written


def task_event(detail: dict[str, Any]) -> events.TaskEvent:
    cluster, arn, version = detail["clusterArn"], detail["taskArn"], detail["version"]
    account, region = cluster.split(":")[4], cluster.split(":")[3]
    return events.TaskEvent(account, region, cluster, arn, version, detail)


@dataclass
class Fleet:
    """The store and what the test knows is live in it: task ARN → (cluster, detail)."""

    store: Store
    live: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def expected(self, params: list[tuple[str, str]]) -> set[str]:
        given = dict(params)
        return {arn for arn, (cluster, d) in self.live.items() if _passes(cluster, d, given)}


def _passes(cluster: str, detail: dict[str, Any], given: dict[str, str]) -> bool:
    family = detail["taskDefinitionArn"].rpartition("/")[2].rpartition(":")[0]
    checks = {
        "status": detail["lastStatus"].lower() == given.get("status", "").lower(),
        "startedBy": detail.get("startedBy") == given.get("startedBy"),
        "containerInstance": detail["containerInstanceArn"] == given.get("containerInstance"),
        "family": family == given.get("family"),
        "group": detail["group"] == given.get("group"),
        "cluster": given.get("cluster") in (cluster, cluster.rpartition("/")[2]),
    }
    return all(checks[name] for name in given if name in checks)


@pytest.fixture(params=["memory", "sqlite"])
async def written(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Fleet]:
    url = "memory://" if request.param == "memory" else f"sqlite:{tmp_path / 'css.db'}"
    store = await open_store(url, clock=ManualClock())
    processor = Processor(store, clock=ManualClock())
    state = Fleet(store)
    for event in fleet():
        await processor.apply_event(event)
        state.live[event.arn] = (event.cluster_arn, event.detail)
    for arn in list(state.live)[::11]:
        cluster, _ = state.live.pop(arn)
        assert await processor.tombstone("task", cluster, arn)
    try:
        yield state
    finally:
        await store.close()


I2 = in_cluster(CA, "container-instance", 2)
QUERIES = [
    [("status", "running")],
    [("status", "STOPPED"), ("cluster", "fleet-a")],
    [("status", "pending"), ("cluster", CB)],
    [("startedBy", "d2")],
    [("startedBy", "d1"), ("status", "running"), ("cluster", CA)],
    [("containerInstance", I2)],
    [("containerInstance", I2), ("cluster", CB)],
    [("family", "web")],
    [("family", "log"), ("group", "service:api"), ("cluster", "fleet-b")],
    [("group", "family:web"), ("status", "stopped")],
    [("cluster", "fleet-a")],
    [("cluster", CC)],
    [("cluster", "fleet-c")],
    [("family", "nothing")],
]


async def list_all(store: Store, params: list[tuple[str, str]], page: int | None) -> list[str]:
    """Every ARN a client paging `page` at a time sees, in order (page None: one answer)."""
    seen: list[str] = []
    token: str | None = None
    while True:
        paging = [("maxResults", str(page))] if page else []
        filters, paged = queries.task_query(
            params + paging + ([("nextToken", token)] if token else [])
        )
        listing = await queries.list_records(store, filters, paged)
        assert page is None or len(listing.items) <= page
        seen += [found.record.arn for found in listing.items]
        if (token := listing.next_token) is None:
            return seen


@pytest.mark.parametrize("params", QUERIES, ids=lambda p: "&".join(f"{k}={v}" for k, v in p))
async def test_each_filter_lists_exactly_its_live_tasks_whole_or_in_pages(
    written: Fleet, params: list[tuple[str, str]]
) -> None:
    expected = written.expected(params)
    whole = await list_all(written.store, params, None)
    assert set(whole) == expected and len(whole) == len(expected)
    for page in (1, 7, 100):
        paged = await list_all(written.store, params, page)
        assert paged == whole, f"maxResults={page}"


class Counting:
    """A store that records the reads made through it."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.calls: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def get(self, key: str) -> Entry | None:
        self.calls.append(("get", key))
        return await self._inner.get(key)

    async def get_many(self, keys: list[str]) -> list[Entry | None]:
        self.calls.append(("get_many", str(len(keys))))
        return await self._inner.get_many(keys)

    async def list(self, prefix: str, *, limit: int = 0, after: str | None = None) -> Page:
        self.calls.append(("list", prefix))
        return await self._inner.list(prefix, limit=limit, after=after)


async def test_a_page_of_a_filtered_list_is_one_index_range_and_one_get_many(
    written: Fleet,
) -> None:
    counting = Counting(written.store)
    params = [("group", "family:web"), ("cluster", "fleet-a"), ("maxResults", "10")]
    filters, paging = queries.task_query(params)
    listing = await queries.list_records(cast(Store, counting), filters, paging)
    assert len(listing.items) == 10 and listing.next_token is not None
    prefix = keys.index_of("task", "group", "family:web", named="fleet-a")
    assert counting.calls == [("list", prefix), ("get_many", "10")]


async def test_a_cluster_name_alone_reads_only_the_clusters_of_that_name(written: Fleet) -> None:
    counting = Counting(written.store)
    filters, paging = queries.task_query([("cluster", "fleet-a")])
    listing = await queries.list_records(cast(Store, counting), filters, paging)
    assert len(listing.items) == len(written.expected([("cluster", "fleet-a")]))
    read = {prefix for call, prefix in counting.calls if call == "list"}
    assert read == {keys.clusters_named("fleet-a"), keys.tasks_of(CA), keys.tasks_of(CB)}


@pytest.mark.parametrize(
    ("params", "whole_prefix"),
    [([], keys.TASKS), ([("status", "running")], keys.index_of("task", "status", "RUNNING"))],
    ids=["no filter", "status alone"],
)
async def test_a_list_over_every_cluster_reads_one_cluster_range_at_a_time(
    written: Fleet, params: list[tuple[str, str]], whole_prefix: str
) -> None:
    """etcd counts every key of a range whatever its limit: never range over the whole fleet."""
    counting = Counting(written.store)
    filters, paging = queries.task_query([*params, ("maxResults", "40")])
    listing = await queries.list_records(cast(Store, counting), filters, paging)
    assert len(listing.items) == 40 and listing.next_token is not None
    read = {prefix for call, prefix in counting.calls if call == "list"}
    assert whole_prefix not in read
    assert read - {keys.CLUSTERS} <= {
        prefix
        for cluster in (CA, CB, CC)
        for prefix in (
            keys.tasks_of(cluster),
            keys.index_of("task", "status", "RUNNING", cluster_arn=cluster),
        )
    }


async def test_index_entries_left_behind_change_no_answer(written: Fleet) -> None:
    store = written.store
    running = sorted(written.expected([("status", "running")]))
    gone = running[0]
    cluster, _ = written.live.pop(gone)
    await store.delete(keys.task(cluster, gone))  # behind the processor's back
    stopped = sorted(written.expected([("status", "stopped")]))[0]
    stopped_cluster, _ = written.live[stopped]
    await store.put(keys.index_entry("task", "status", "RUNNING", stopped_cluster, stopped), b"")
    await store.put(keys.index_of("task", "status", "RUNNING") + "garbage", b"")
    listed = await list_all(store, [("status", "running")], 5)
    assert set(listed) == set(running[1:]) and len(listed) == len(running) - 1


async def test_instances_are_listed_by_status_and_cluster_through_the_index(
    written: Fleet,
) -> None:
    processor = Processor(written.store, clock=ManualClock())
    statuses = {CA: ["ACTIVE", "DRAINING", "ACTIVE"], CB: ["ACTIVE"], CC: ["INACTIVE"]}
    for cluster, each in statuses.items():
        for n, status in enumerate(each):
            arn = in_cluster(cluster, "container-instance", n)
            account, region = cluster.split(":")[4], cluster.split(":")[3]
            detail = {"containerInstanceArn": arn, "clusterArn": cluster, "status": status}
            await processor.apply_event(
                events.InstanceEvent(account, region, cluster, arn, 1, {**detail, "version": 1})
            )
    for params, count in [
        ([("status", "active")], 3),
        ([("status", "ACTIVE"), ("cluster", "fleet-a")], 3),
        ([("status", "active"), ("cluster", CA)], 2),
        ([("status", "draining"), ("maxResults", "1")], 1),
        ([("cluster", "fleet-a")], 4),
    ]:
        filters, paging = queries.instance_query(params)
        listing = await queries.list_records(written.store, filters, paging)
        assert len(listing.items) == count, params
        assert listing.next_token is None, params
