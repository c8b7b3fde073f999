"""`blox up` as a service manager runs it: a real process, stopped by a signal."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from blox.testing.etcd import EtcdServer

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_blox_up_stops_cleanly_on_a_signal_and_gives_up_its_leadership(
    tmp_path: Path, signum: signal.Signals
) -> None:
    command = [sys.executable, "-m", "blox", "up", "--data-dir", str(tmp_path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as up:
        assert up.stdout is not None
        report = json.loads(up.stdout.readline())
        assert up.stdout.readline().startswith("blox is up")
        up.send_signal(signum)
        assert up.wait(timeout=30) == 0
        assert up.stdout.read().strip() == "blox stopped."
    store = f"sqlite:{tmp_path / 'blox.db'}"
    assert report["store"] == store
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "blox",
            "store",
            "list",
            "election/",
            "--store",
            store,
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert listed.stdout == ""  # resigned: the next blox up leads at once


@pytest.mark.etcd
def test_a_standby_blox_up_on_etcd_waits_for_leadership_and_stops_on_a_signal(
    tmp_path: Path, etcd_server: EtcdServer
) -> None:
    def start(name: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "blox",
                "up",
                "--data-dir",
                str(tmp_path / name),
                "--store",
                etcd_server.url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    with start("active") as active:
        assert active.stdout is not None
        assert json.loads(active.stdout.readline())["store"] == etcd_server.url
        with start("standby") as standby:
            assert standby.stdout is not None
            with pytest.raises(subprocess.TimeoutExpired):
                standby.wait(timeout=2)  # still campaigning: nothing printed, nothing exited
            standby.send_signal(signal.SIGTERM)
            assert standby.wait(timeout=30) == 0
            assert standby.stdout.read() == ""
        active.send_signal(signal.SIGTERM)
        assert active.wait(timeout=30) == 0
