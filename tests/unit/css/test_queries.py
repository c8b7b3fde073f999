"""Query parsing, path location, filters and paging of the CSS read API (memory store).

Records are written raw here, as before indexes existed, and `reindex` indexes them.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from blox.clock import ManualClock
from blox.css import errors, index, queries
from blox.css.processor import reindex
from blox.model import ecs
from blox.store import Store, keys, open_store

A = "arn:aws:ecs:us-east-1:111122223333"
B = "arn:aws-cn:ecs:cn-north-1:444455556666"
T1 = f"{A}:task/fleet-a/357f8a30d7761a1100ff311968bba316"


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ([("foo", "1")], errors.FilterUnsupported),
        ([("status", "running"), ("Status", "running")], errors.FilterUnsupported),
        ([("status", "running"), ("status", "running")], errors.FilterRepeated),
        ([("cluster", "a"), ("cluster", "b")], errors.FilterRepeated),
        ([("status", "")], errors.StatusInvalid),
        ([("status", "active")], errors.StatusInvalid),
        ([("cluster", "")], errors.ClusterInvalid),
        ([("cluster", "fleet a")], errors.ClusterInvalid),
        ([("cluster", f"{A}:task/fleet-a/1")], errors.ClusterInvalid),
        ([("cluster", "x" * 256)], errors.ClusterInvalid),
        ([("maxResults", "0")], errors.MaxResultsInvalid),
        ([("maxResults", "1001")], errors.MaxResultsInvalid),
        ([("maxResults", "-1")], errors.MaxResultsInvalid),
        ([("maxResults", "²")], errors.MaxResultsInvalid),
        ([("nextToken", "!!")], errors.NextTokenInvalid),
        ([("nextToken", base64.b64encode(b"ecs/instances/x").decode())], errors.NextTokenInvalid),
        ([("containerInstance", "")], errors.ContainerInstanceInvalid),
        (
            [("containerInstance", "0ae71c5f39e191095278da7bb8a0aece")],
            errors.ContainerInstanceInvalid,
        ),
        ([("containerInstance", T1)], errors.ContainerInstanceInvalid),
        ([("family", "")], errors.FamilyInvalid),
        ([("family", "log-shipper:7")], errors.FamilyInvalid),
        ([("family", "f" * 256)], errors.FamilyInvalid),
        ([("group", "")], errors.GroupInvalid),
        ([("group", "g" * 256)], errors.GroupInvalid),
        ([("family", "a"), ("family", "b")], errors.FilterRepeated),
    ],
    ids=repr,
)
def test_bad_task_queries_raise_the_error_of_their_v03_text(
    params: list[tuple[str, str]], error: type[Exception]
) -> None:
    with pytest.raises(error):
        queries.task_query(params)


def test_unsupported_wins_over_repeated_as_in_v03() -> None:
    with pytest.raises(errors.FilterUnsupported):
        queries.task_query([("status", "a"), ("status", "b"), ("x", "1")])


@pytest.mark.parametrize("name", ["startedBy", "containerInstance", "family", "group"])
def test_instances_take_no_task_filters(name: str) -> None:
    with pytest.raises(errors.FilterUnsupported):
        queries.instance_query([(name, "x")])


def test_instances_know_draining() -> None:
    with pytest.raises(errors.StatusInvalid):
        queries.instance_query([("status", "running")])
    filters, _ = queries.instance_query([("status", "Draining")])
    assert filters.status == "DRAINING"


def test_every_filter_combination_is_accepted_with_status_in_any_case() -> None:
    filters, paging = queries.task_query(
        [("status", "rUnNiNg"), ("cluster", f"{B}:cluster/fleet-a"), ("startedBy", "me")]
    )
    assert filters == queries.Filters(
        kind="task",
        status="RUNNING",
        cluster=queries.ClusterRef(name="fleet-a", arn=f"{B}:cluster/fleet-a"),
        started_by="me",
    )
    assert paging == queries.Paging()
    index_prefix = keys.index_of("task", "startedBy", "me", cluster_arn=f"{B}:cluster/fleet-a")
    assert filters.scan == queries.Scan(index_prefix, indexed=True)


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("fleet-a", queries.ClusterRef("fleet-a")),
        ("a", queries.ClusterRef("a")),
        ("1_x", queries.ClusterRef("1_x")),
        (f"{A}:cluster/fleet-a", queries.ClusterRef("fleet-a", f"{A}:cluster/fleet-a")),
        (
            "arn:aws-us-gov:ecs:us-gov-west-1:111122223333:cluster/c",
            queries.ClusterRef("c", "arn:aws-us-gov:ecs:us-gov-west-1:111122223333:cluster/c"),
        ),
        ("arn:aws:ecs:us-east-1:1234:cluster/c", None),
        ("fleet/a", None),
        ("", None),
        ("flëet", None),
    ],
    ids=repr,
)
def test_a_cluster_is_a_name_or_a_cluster_arn_of_any_partition(
    text: str, ref: queries.ClusterRef | None
) -> None:
    assert queries.cluster_ref(text) == ref


def test_a_cluster_name_matches_every_account_and_region_an_arn_only_itself() -> None:
    by_name, by_arn = (
        queries.ClusterRef("fleet-a"),
        queries.ClusterRef("fleet-a", f"{A}:cluster/fleet-a"),
    )
    assert by_name.matches(f"{A}:cluster/fleet-a") and by_name.matches(f"{B}:cluster/fleet-a")
    assert not by_name.matches(f"{A}:cluster/fleet-ab")
    assert by_arn.matches(f"{A}:cluster/fleet-a") and not by_arn.matches(f"{B}:cluster/fleet-a")


@pytest.mark.parametrize(
    "path",
    [
        f"fleet-a/{T1}",
        f"{A}:cluster/fleet-a/{T1}",
        f"legacy/{A}:task/0b3f8a2e-1c4d-4e5f-9a6b-7c8d9e0f1a2b",
        "c/arn:aws-cn:ecs:cn-north-1:444455556666:task/c/abc",
    ],
)
def test_locate_accepts_names_arns_long_and_short_formats_and_partitions(path: str) -> None:
    cluster, parsed, text = queries.locate("task", path)
    assert parsed.resource_type == "task" and path.endswith("/" + text)
    assert cluster.name in path


@pytest.mark.parametrize(
    "path",
    [
        "",
        "fleet-a",
        f"fleet a/{T1}",
        f"/{T1}",
        f"fleet-a/{T1}/",
        f"fleet-a/{A}:container-instance/fleet-a/1",
        "fleet-a/arn:aws:ecs:us-east-1:1:task/x",
        "fleet-a/arn:garbage",
    ],
)
def test_locate_rejects_garbage_as_no_route(path: str) -> None:
    with pytest.raises(errors.RouteNotFound):
        queries.locate("task", path)


def rec(
    arn: str, *, cluster: str = f"{A}:cluster/fleet-a", deleted: bool = False, **detail: object
) -> ecs.Record:
    kind: ecs.Kind = "task" if ":task/" in arn else "instance"
    return ecs.Record(
        kind=kind,
        cluster_arn=cluster,
        arn=arn,
        version=1,
        detail=dict(detail),
        deleted_at=datetime(2026, 1, 1, tzinfo=UTC) if deleted else None,
    )


def test_the_blox_ecs_task_filters_are_parsed_into_the_filters() -> None:
    instance = f"{A}:container-instance/fleet-a/0ae71c5f39e191095278da7bb8a0aece"
    filters, _ = queries.task_query(
        [("containerInstance", instance), ("family", "log-shipper"), ("group", "service:web")]
    )
    assert (filters.container_instance, filters.family, filters.group) == (
        instance,
        "log-shipper",
        "service:web",
    )
    assert filters.values == {
        "containerInstance": instance,
        "family": "log-shipper",
        "group": "service:web",
    }
    assert filters.scan.prefix == keys.index_of("task", "containerInstance", instance)


@pytest.mark.parametrize(
    ("params", "field", "prefix"),
    [
        ([("status", "running")], "status", keys.index_of("task", "status", "RUNNING")),
        (
            [("status", "running"), ("startedBy", "d1"), ("cluster", "fleet-a")],
            "startedBy",
            keys.index_of("task", "startedBy", "d1", named="fleet-a"),
        ),
        (
            [("family", "web"), ("group", "family:web"), ("cluster", f"{A}:cluster/fleet-a")],
            "group",
            keys.index_of("task", "group", "family:web", cluster_arn=f"{A}:cluster/fleet-a"),
        ),
    ],
    ids=["status alone", "startedBy over status, by cluster name", "group over family, by ARN"],
)
def test_a_query_reads_its_most_selective_index(
    params: list[tuple[str, str]], field: index.Field, prefix: str
) -> None:
    filters, _ = queries.task_query(params)
    if any(name == "cluster" for name, _ in params):
        assert filters.scan == queries.Scan(prefix, indexed=True)
    else:  # the value in every cluster: read one cluster at a time
        value = dict(params)[field].upper() if field == "status" else dict(params)[field]
        assert filters.scan == queries.Scan(
            prefix, indexed=True, per_cluster=True, field=field, value=value
        )
    assert f"/{field}/" in prefix


@pytest.mark.parametrize(
    ("params", "scan"),
    [
        ([], queries.Scan(keys.TASKS, per_cluster=True)),
        (
            [("cluster", f"{A}:cluster/fleet-a")],
            queries.Scan(keys.tasks_of(f"{A}:cluster/fleet-a")),
        ),
        (
            [("cluster", "fleet-a")],
            queries.Scan(keys.TASKS, per_cluster=True, cluster_name="fleet-a"),
        ),
    ],
    ids=["no filter reads each cluster's", "a cluster ARN its prefix", "a name each cluster's"],
)
def test_a_query_without_indexed_filters_reads_records(
    params: list[tuple[str, str]], scan: queries.Scan
) -> None:
    assert queries.task_query(params)[0].scan == scan


def test_a_token_from_another_index_or_cluster_does_not_belong() -> None:
    by_status, _ = queries.task_query([("status", "running")])
    token = base64.b64encode(
        keys.index_entry("task", "startedBy", "d1", f"{A}:cluster/fleet-a", T1).encode(),
        altchars=b"-_",
    ).decode()
    with pytest.raises(errors.NextTokenInvalid):
        queries.task_query([("status", "running"), ("nextToken", token)])
    assert not by_status.owns(keys.task(f"{A}:cluster/fleet-a", T1))
    other_cluster = base64.b64encode(keys.task(f"{A}:cluster/fleet-b", T1).encode()).decode()
    with pytest.raises(errors.NextTokenInvalid):
        queries.task_query([("cluster", "fleet-a"), ("nextToken", other_cluster)])
    same_name = base64.b64encode(keys.task(f"{B}:cluster/fleet-a", T1).encode()).decode()
    _, paging = queries.task_query([("cluster", "fleet-a"), ("nextToken", same_name)])
    assert paging.after == keys.task(f"{B}:cluster/fleet-a", T1)


def test_filters_keep_live_matching_records_only() -> None:
    running = rec(T1, lastStatus="RUNNING", startedBy="me")
    filters = queries.Filters(kind="task", status="RUNNING", started_by="me")
    assert filters.matches(running)
    assert not filters.matches(rec(T1, deleted=True, lastStatus="RUNNING", startedBy="me"))
    assert not filters.matches(rec(T1, lastStatus="STOPPED", startedBy="me"))
    assert not filters.matches(rec(T1, lastStatus="RUNNING"))
    assert not filters.matches(rec(T1, lastStatus=None, startedBy="me"))
    assert not queries.Filters(kind="instance").matches(running)


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    opened = await open_store("memory://", clock=ManualClock())
    yield opened
    await opened.close()


async def put(store: Store, record: ecs.Record) -> None:
    await store.put(keys.record(record.kind, record.cluster_arn, record.arn), ecs.encode(record))


async def test_paging_visits_every_match_once_and_ends_without_a_token(store: Store) -> None:
    for i in range(7):
        await put(store, rec(f"{A}:task/fleet-a/{i:032x}", lastStatus="RUNNING"))
        await put(store, rec(f"{A}:task/fleet-a/{i:031x}f", lastStatus="STOPPED"))
    await put(store, rec(f"{A}:task/fleet-a/{'e' * 32}", deleted=True, lastStatus="RUNNING"))
    await reindex(store)  # written as before indexes existed
    seen: list[str] = []
    token: str | None = None
    while True:
        params = [("status", "running"), ("maxResults", "3")]
        filters, paging = queries.task_query(params + ([("nextToken", token)] if token else []))
        listing = await queries.list_records(store, filters, paging)
        seen += [found.record.arn for found in listing.items]
        assert len(listing.items) <= 3
        if listing.next_token is None:
            break
        token = listing.next_token
    assert seen == [f"{A}:task/fleet-a/{i:032x}" for i in range(7)]
    everything = await queries.list_records(store, queries.Filters(kind="task"), queries.Paging())
    assert len(everything.items) == 14 and everything.next_token is None


async def test_a_page_that_ends_the_scan_exactly_hands_out_no_token(store: Store) -> None:
    for i in range(2):
        await put(store, rec(f"{A}:task/fleet-a/{i:032x}"))
    filters, paging = queries.task_query([("maxResults", "2")])
    assert (await queries.list_records(store, filters, paging)).next_token is None


async def test_get_finds_by_name_or_arn_and_hides_tombstones(store: Store) -> None:
    await put(store, rec(T1, lastStatus="RUNNING"))
    other = f"{A}:task/fleet-a/{'d' * 32}"
    await put(store, rec(other, deleted=True))
    found = await queries.get_record(store, "task", f"fleet-a/{T1}")
    assert found.record.arn == T1 and found.mod_revision > 1
    assert (await queries.get_record(store, "task", f"{A}:cluster/fleet-a/{T1}")).record.arn == T1
    for path in (f"fleet-b/{T1}", f"{B}:cluster/fleet-a/{T1}", f"fleet-a/{other}"):
        with pytest.raises(errors.TaskNotFound):
            await queries.get_record(store, "task", path)
    with pytest.raises(errors.InstanceNotFound):
        await queries.get_record(store, "instance", f"fleet-a/{A}:container-instance/fleet-a/1")


async def test_an_unreadable_record_is_left_out_of_lists_and_is_a_server_error_on_get(
    store: Store,
) -> None:
    await store.put(keys.task(f"{A}:cluster/fleet-a", T1), b"not json")
    listing = await queries.list_records(store, queries.Filters(kind="task"), queries.Paging())
    assert listing.items == []
    with pytest.raises(errors.RecordUnreadable):
        await queries.get_record(store, "task", f"fleet-a/{T1}")
