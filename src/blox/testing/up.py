"""`blox up` as a real process, for end-to-end tests: on free ports, stopped by a signal.

`BloxUp(data_dir, *extra_args)` starts `python -m blox up --json` on free ports (the CSS, the
scheduler and the simulator on ports the kernel picks), `start()` waits for its one JSON line
and keeps it in `summary`; `stop(signal)` ends it and returns the exit status and the rest of
its output; `processes_mentioning(text)` finds any process left behind. Used as a context
manager it always stops (SIGKILL as the last resort).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = ["BloxUp", "processes_mentioning"]

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0


def processes_mentioning(text: str) -> list[int]:
    """The pids of live processes whose command line contains `text` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().split(") ", 1)[1][:1]
        except (OSError, IndexError):
            continue  # gone meanwhile
        if text in command and state != "Z":
            found.append(int(entry.name))
    return found


class BloxUp:
    """One `blox up` subprocess and what it printed."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.command = [
            sys.executable,
            "-m",
            "blox",
            "up",
            "--json",
            "--data-dir",
            str(data_dir),
            "--css-port",
            "0",
            "--scheduler-port",
            "0",
            "--sim-port",
            "0",
            *args,
        ]
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[str] | None = None
        self.summary: dict[str, Any] = {}

    def start(self, timeout_s: float = START_TIMEOUT_S) -> dict[str, Any]:
        """Start it and wait for its JSON line; RuntimeError with its stderr if it fails."""
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.process.kill()
            _, err = self.process.communicate()
            raise RuntimeError(f"blox up did not start: {err.strip()[-2000:]}")
        self.summary = json.loads(line)
        return self.summary

    def stop(self, signum: int = signal.SIGINT) -> tuple[int, str, str]:
        """Send `signum`, wait; (exit status, rest of stdout, stderr)."""
        assert self.process is not None
        self.process.send_signal(signum)
        out, err = self.process.communicate(timeout=STOP_TIMEOUT_S)
        return self.process.returncode, out, err

    @property
    def moto_port(self) -> str:
        """moto's port, to find it among the processes."""
        return str(self.summary["moto"]).rsplit(":", 1)[1]

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
            try:
                _, err = self.process.communicate(timeout=STOP_TIMEOUT_S)  # closes the pipes
            except subprocess.TimeoutExpired:
                self.process.kill()
                _, err = self.process.communicate()
            if kind is not None:  # the test failed: show what blox up said (pytest captures it)
                sys.stderr.write(f"blox up's stderr:\n{(err or '')[-8000:]}\n")
        deadline = time.monotonic() + 10
        while self.summary.get("moto") and time.monotonic() < deadline:
            if not processes_mentioning(f"moto.server -H 127.0.0.1 -p {self.moto_port}"):
                break
            time.sleep(0.1)
