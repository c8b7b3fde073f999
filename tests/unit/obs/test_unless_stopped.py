"""Start-up work (the CSS reindexing an old store, blox up's demo) gives way to SIGTERM at once."""

from __future__ import annotations

import asyncio

import pytest

from blox.obs import listen


async def test_stop_cancels_the_work_in_hand() -> None:
    stop, cancelled = asyncio.Event(), asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    asyncio.get_running_loop().call_soon(stop.set)
    assert await listen.unless_stopped(stop, slow()) is False
    assert cancelled.is_set()


async def test_work_that_ends_first_is_done_and_its_failure_raised() -> None:
    async def quick() -> int:
        return 1

    async def broken() -> None:
        raise RuntimeError("reindex failed")

    assert await listen.unless_stopped(asyncio.Event(), quick()) is True
    with pytest.raises(RuntimeError, match="reindex failed"):
        await listen.unless_stopped(asyncio.Event(), broken())
