"""The pure positions of lists and streams: pages, fallback, versions, heartbeats, repeats."""

from __future__ import annotations

import json
import logging

import pytest

from blox.client.cursor import START_HEADER, PageCursor, StreamCursor, entity_version
from blox.client.errors import HttpInvalid, ResponseInvalid
from blox.contract import css, texts

CLUSTER = "arn:aws:ecs:us-east-1:111122223333:cluster/fleet-a"
INSTANCE = "arn:aws:ecs:us-east-1:111122223333:container-instance/fleet-a/0ae71c5f"


def instance_line(version: int | str) -> str:
    return json.dumps(
        {
            "metadata": {"entityVersion": str(version)},
            "entity": {
                "agentConnected": True,
                "clusterARN": CLUSTER,
                "containerInstanceARN": INSTANCE,
                "registeredResources": [],
                "remainingResources": [],
                "status": "ACTIVE",
                "versionInfo": {},
            },
        }
    )


# PageCursor -------------------------------------------------------------------------------


def test_pages_carry_the_filters_the_page_size_and_the_token() -> None:
    first = PageCursor({"status": "RUNNING"}, page_size=2)
    assert first.params() == {"status": "RUNNING", "maxResults": "2"}
    second = first.following("dG9rZW4=")
    assert second is not None
    assert second.params() == {"status": "RUNNING", "maxResults": "2", "nextToken": "dG9rZW4="}
    assert second.following(None) is None and second.following("") is None


def test_an_unpaged_list_is_one_request() -> None:
    unpaged = PageCursor({"cluster": "fleet-a"}, page_size=None)
    assert unpaged.params() == {"cluster": "fleet-a"}
    assert unpaged.following("ignored") is None


def test_only_a_first_page_refused_as_v03_refuses_a_filter_falls_back() -> None:
    refused = HttpInvalid(400, texts.FILTERS_UNSUPPORTED)
    first = PageCursor({"status": "RUNNING"}, page_size=2)
    fallback = first.unpaged(refused)
    assert fallback is not None and fallback.params() == {"status": "RUNNING"}
    assert first.unpaged(HttpInvalid(400, texts.INVALID_STATUS)) is None
    later = first.following("dG9rZW4=")
    assert later is not None and later.unpaged(refused) is None
    assert fallback.unpaged(refused) is None  # the unpaged request refused too: raise it


# StreamCursor -----------------------------------------------------------------------------


def test_items_advance_the_version_to_resume_from() -> None:
    cursor = StreamCursor(css.ContainerInstancePublic, next_version=7)
    assert cursor.params() == {"entityVersion": "7"}
    got = cursor.accept(instance_line(7))
    assert got is not None and got[0] == 7 and got[1].entity.container_instance_arn == INSTANCE
    assert cursor.accept(instance_line(9)) is not None
    assert (cursor.last_version, cursor.next_version) == (9, 10)
    assert cursor.params() == {"entityVersion": "9"}, "a reconnect asks for the last version again"


def test_heartbeats_are_counted_and_skipped() -> None:
    cursor = StreamCursor(css.ContainerInstancePublic)
    assert [cursor.accept(line) for line in ("", "  ", "\r")] == [None, None, None]
    assert cursor.heartbeats == 3 and cursor.last_version is None and cursor.params() == {}


def test_an_item_already_seen_is_never_handed_out_again(caplog: pytest.LogCaptureFixture) -> None:
    cursor = StreamCursor(css.ContainerInstancePublic)
    assert cursor.accept(instance_line(5)) is not None
    assert cursor.accept(instance_line(4)) is None
    assert cursor.next_version == 6 and "repeated" in caplog.text


def test_items_of_one_transaction_share_a_version_and_survive_a_reconnect() -> None:
    """One store transaction, three records: three items at version 5. Cut after two, the
    reconnect asks for 5 again and skips exactly the two already handed out."""
    cursor = StreamCursor(css.ContainerInstancePublic)
    assert cursor.accept(instance_line(5)) is not None
    assert cursor.accept(instance_line(5)) is not None, "a second record of the same revision"
    cursor.started({})
    assert cursor.params() == {"entityVersion": "5"}
    replayed = [cursor.accept(instance_line(v)) for v in (5, 5, 5, 6)]
    assert [r is not None for r in replayed] == [False, False, True, True]


@pytest.mark.parametrize("line", ["{", "[]", '{"metadata": {}}', instance_line("-1")])
def test_a_line_that_is_not_the_contract_is_refused(line: str) -> None:
    with pytest.raises(ResponseInvalid):
        StreamCursor(css.ContainerInstancePublic).accept(line)


def test_a_live_stream_learns_its_start_from_the_server_when_told() -> None:
    cursor = StreamCursor(css.ContainerInstancePublic)
    cursor.started({START_HEADER: "42"})
    assert cursor.params() == {"entityVersion": "42"}
    cursor.started({START_HEADER: "50"})  # a reconnect: the version already known wins
    assert cursor.next_version == 42


def test_a_live_stream_reconnecting_blind_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    cursor = StreamCursor(css.ContainerInstancePublic)
    cursor.started({START_HEADER: "garbage"})
    assert cursor.next_version is None and not caplog.records
    cursor.started({})
    assert "missed" in caplog.text


@pytest.mark.parametrize("version", [0, -3])
def test_a_start_version_below_one_is_refused(version: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        StreamCursor(css.TaskPublic, next_version=version)


def test_entity_version_reads_the_metadata() -> None:
    item = css.ContainerInstancePublic.model_validate_json(instance_line(12))
    assert entity_version(item) == 12
    odd = item.model_copy(update={"metadata": css.MetadataPublic(entity_version="1e3")})
    with pytest.raises(ResponseInvalid):
        entity_version(odd)
