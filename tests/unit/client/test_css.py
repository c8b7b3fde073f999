"""The clients' settings are checked when built, and filters become v0.3 query names."""

from __future__ import annotations

import pytest

from blox.client import AsyncCssClient, CssClient
from blox.client.css import MAX_PAGE_SIZE, task_filters


def test_filters_take_their_wire_names_and_none_means_unfiltered() -> None:
    assert task_filters() == {}
    assert task_filters(
        cluster="fleet-a",
        status="running",
        started_by="blox",
        container_instance="arn:aws:ecs:us-east-1:111122223333:container-instance/x",
        family="web",
        group="service:web",
    ) == {
        "cluster": "fleet-a",
        "status": "running",
        "startedBy": "blox",
        "containerInstance": "arn:aws:ecs:us-east-1:111122223333:container-instance/x",
        "family": "web",
        "group": "service:web",
    }
    assert task_filters(started_by="") == {"startedBy": ""}  # given: the server judges it


@pytest.mark.parametrize("url", ["127.0.0.1:3000", "ftp://127.0.0.1", "http://", "css"])
def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        CssClient(url)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"timeout_s": 0}, "timeouts"),
        ({"stream_read_timeout_s": -1}, "timeouts"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": MAX_PAGE_SIZE + 1}, "page_size"),
    ],
)
async def test_settings_out_of_range_are_refused(settings: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CssClient("http://127.0.0.1:3000", **settings)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        AsyncCssClient("http://127.0.0.1:3000", **settings)  # type: ignore[arg-type]


async def test_clients_built_with_a_path_prefix_close_cleanly() -> None:
    with CssClient("http://127.0.0.1:3000/prod") as client:
        assert client.watch_tasks().next_version is None
    async with AsyncCssClient("https://127.0.0.1:8443") as aclient:
        assert aclient.watch_instances(5).next_version == 5
