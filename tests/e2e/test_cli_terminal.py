"""`blox rollout status` on a terminal (a pty, through pexpect): a progress bar that advances.

The bar redraws in place (carriage return, erase line) as instances get the new revision; the
command exits 0 once the deployment completes, and 4 with the reason when it is rolled back.
"""

from __future__ import annotations

import re
import sys

import pexpect
import pytest

from tests.e2e.test_cli_client import ROLLOUT_DEADLINE_S, Servers, ok
from tests.e2e.test_cli_client import servers as servers  # the module's own servers

pytestmark = pytest.mark.e2e

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BAR = "━"


def on_a_terminal(servers: Servers, *args: str) -> tuple[str, int]:
    """Run `blox *args` on a 160-column pty until it exits: what it drew, its exit status."""
    env = servers.env(TERM="xterm-256color", COLUMNS="160", LINES="24")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "blox", *args],
        env=env,
        dimensions=(24, 160),
        encoding="utf-8",
        timeout=ROLLOUT_DEADLINE_S,
    )
    child.expect(pexpect.EOF)
    drawn = child.before
    child.close()
    assert isinstance(drawn, str)
    assert child.exitstatus is not None, "killed by a signal"
    return drawn, child.exitstatus


def updated_counts(drawn: str) -> list[int]:
    """The bar's `updated/desired` figure in every frame drawn, in order."""
    frames = ANSI.sub("", drawn).split("\r")
    return [int(m[1]) for f in frames if BAR in f and (m := re.search(r"\s(\d+)/4\s", f))]


def test_rollout_status_draws_a_bar_that_advances_and_exits_0_when_done(
    servers: Servers,
) -> None:
    servers.register("tty")
    ok(servers, "env", "create", "tty", "-t", "tty", "--max-unavailable", "1")
    ok(servers, "deploy", "tty", "--wait")
    servers.register("tty", image="nginx:2")
    ok(servers, "env", "update", "tty", "-t", "tty:2", "--min-ready-seconds", "1")
    ok(servers, "deploy", "tty")

    drawn, status = on_a_terminal(servers, "rollout", "status", "tty")

    assert status == 0, drawn
    assert "\r\x1b[2K" in drawn  # redrawn in place, not line after line
    counts = updated_counts(drawn)
    assert counts == sorted(counts), counts  # the bar only moves forward
    assert counts[-1] == 4
    assert any(0 < count < 4 for count in counts), counts  # and was seen part way
    last = ANSI.sub("", drawn).strip().splitlines()[-1]
    assert last.endswith("completed: revision 2 runs on 4/4 instances"), last


def test_rollout_status_exits_4_saying_why_when_the_rollout_is_rolled_back(
    servers: Servers,
) -> None:
    servers.register("doomed")
    ok(servers, "env", "create", "doomed", "-t", "doomed", "--max-unavailable", "1")
    ok(servers, "deploy", "doomed", "--wait")
    servers.register("doomed", memory=10_000_000)  # no instance can ever place it
    ok(
        servers,
        *("env", "update", "doomed", "-t", "doomed:2"),
        *("--progress-deadline-seconds", "3", "--auto-rollback"),
    )
    ok(servers, "deploy", "doomed")

    drawn, status = on_a_terminal(servers, "rollout", "status", "doomed")

    assert status == 4, drawn
    assert BAR in drawn
    plain = ANSI.sub("", drawn).strip()
    last = plain.splitlines()[-1]
    assert last.startswith("error: the rollout of doomed failed: deployment "), last
    assert "(revision 2) rolled back: rolled back to revision 1 as revision 3" in last
    assert updated_counts(drawn)[-1] == 0
