"""Readiness: checks and flags by name, failures reported as values, timeouts on the clock."""

from __future__ import annotations

import asyncio
import logging

import pytest

from blox.clock import ManualClock
from blox.errors import Unavailable
from blox.obs import Readiness
from blox.obs.health import Result, store_check
from blox.store import open_store


async def test_with_nothing_to_check_the_service_is_ready() -> None:
    report = await Readiness(clock=ManualClock()).report()
    assert report.ready and report.as_json() == {"ready": True, "checks": {}}


async def test_a_reachable_store_passes_its_check() -> None:
    store = await open_store("memory://", clock=ManualClock())
    readiness = Readiness(clock=ManualClock())
    readiness.add_check("store", store_check(store))
    try:
        report = await readiness.report()
    finally:
        await store.close()
    assert report.as_json() == {"ready": True, "checks": {"store": {"ok": True}}}


async def test_a_flag_fails_with_its_reason_until_set_and_again_after_clear() -> None:
    readiness = Readiness(clock=ManualClock())
    reconciled = readiness.add_flag("reconcile", waiting="the first reconcile has not finished")

    before = await readiness.report()
    assert not before.ready and before.failing == ["reconcile"]
    assert before.checks["reconcile"] == Result(False, "the first reconcile has not finished")
    reconciled.set()
    assert (await readiness.report()).ready and readiness.flag("reconcile").is_set
    reconciled.clear()
    assert not (await readiness.report()).ready


async def test_failing_checks_are_named_with_a_one_line_reason_and_never_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def down() -> object:
        raise Unavailable("etcd at 127.0.0.1:2379 refused the connection")

    async def bug() -> object:
        raise RuntimeError("secret internals")

    async def says_no() -> object:
        return False

    async def fine() -> object:
        return 0  # only False fails: a revision of 0 or None is an answer

    readiness = Readiness(clock=ManualClock())
    for name, check in (("store", down), ("bug", bug), ("no", says_no), ("fine", fine)):
        readiness.add_check(name, check)
    readiness.add_check("reconcile", says_no, failing="no reconcile pass has finished yet")
    with caplog.at_level(logging.ERROR, logger="blox.obs.health"):
        report = await readiness.report()

    assert report.as_json() == {
        "ready": False,
        "checks": {
            "store": {"ok": False, "error": "etcd at 127.0.0.1:2379 refused the connection"},
            "bug": {"ok": False, "error": "unexpected RuntimeError"},
            "no": {"ok": False, "error": "check failed"},
            "fine": {"ok": True},
            "reconcile": {"ok": False, "error": "no reconcile pass has finished yet"},
        },
    }
    assert "secret internals" in caplog.text  # logged with its traceback, not shown
    assert report.failing == ["store", "bug", "no", "reconcile"]


async def test_a_check_that_hangs_fails_after_the_timeout_on_the_injected_clock() -> None:
    clock = ManualClock()
    hung = asyncio.Event()
    readiness = Readiness(clock=clock, timeout_s=2.0)

    async def hangs() -> object:
        await hung.wait()
        return True

    readiness.add_check("store", hangs)
    reporting = asyncio.create_task(readiness.report())
    await clock.advance(1.9)
    assert not reporting.done()
    await clock.advance(0.2)

    report = await reporting
    assert report.checks["store"] == Result(False, "no answer within 2s")


class _Fixed:
    async def revision(self) -> int:
        return 1


async def test_names_are_unique_and_not_empty_and_the_timeout_is_positive() -> None:
    readiness = Readiness(clock=ManualClock())
    readiness.add_flag("store", waiting="x")
    with pytest.raises(ValueError, match="taken"):
        readiness.add_check("store", store_check(_Fixed()))
    with pytest.raises(ValueError, match="empty"):
        readiness.add_flag("", waiting="x")
    with pytest.raises(ValueError, match="positive"):
        Readiness(timeout_s=0)
