"""Helpers of `bench.css`: the processes it runs, each on 127.0.0.1, and their memory.

`css_service` runs the real `blox css` (`python -m blox css`, the CLI a user runs) on a queue,
a store URL and a free port, waits for its JSON ready line, and stops it with SIGTERM (a stop
that takes longer than 30 s is a kill, and noted). `child` runs one of this benchmark's own
child processes (`python -m bench.css_streams --serve …`) the same way. `memory_mb` and
`cpu_seconds` read a process's VmRSS, VmHWM and CPU time from /proc. moto and etcd come
from `bench.sim_events` and `bench.store_etcd`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from blox.testing.ports import free_port

__all__ = ["Child", "child", "cpu_seconds", "css_service", "memory_mb"]

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 600.0  # `blox css` may reindex a large store before it serves
STOP_TIMEOUT_S = 30.0


@dataclass
class Child:
    """A running child process: its pid, the JSON of its ready line, and its pipes."""

    process: subprocess.Popen[str]
    ready: dict[str, Any]
    lines: queue.Queue[str]  # stdout lines after the ready line

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, command: dict[str, Any]) -> None:
        """Write one JSON command line to the child's stdin."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def receive(self, timeout_s: float) -> dict[str, Any]:
        """The next JSON line the child prints (RuntimeError after `timeout_s`)."""
        try:
            return dict(json.loads(self.lines.get(timeout=timeout_s)))
        except queue.Empty:
            raise RuntimeError(f"child {self.pid} printed nothing for {timeout_s:.0f} s") from None


def _pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        if line.strip():
            lines.put(line)


@contextlib.contextmanager
def child(command: list[str], *, name: str, eof_stops: bool = False) -> Iterator[Child]:
    """Start `command` (stdin/stdout pipes) and wait for its first stdout line.

    On exit: close its stdin (`eof_stops`: that alone ends it), then SIGTERM, then a kill.
    """
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,  # the child's warnings and tracebacks go to our stderr
        text=True,
        bufsize=1,
    )
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    try:
        try:
            first = lines.get(timeout=START_TIMEOUT_S)
        except queue.Empty:
            raise RuntimeError(f"{name} printed no ready line in {START_TIMEOUT_S:.0f} s") from None
        yield Child(process=process, ready=json.loads(first), lines=lines)
    finally:
        _stop(process, name, eof_stops)


def _stop(process: subprocess.Popen[str], name: str, eof_stops: bool) -> None:
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    if eof_stops:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT_S)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(f"note: {name} did not stop on SIGTERM in {STOP_TIMEOUT_S:.0f} s; killed")
            process.kill()
            process.wait()


@functools.cache
def css_flags() -> frozenset[str]:
    """The flags this checkout's `blox css` knows (they change while the CSS grows)."""
    command = [sys.executable, "-m", "blox", "css", "--help"]
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT, timeout=60)
    return frozenset(re.findall(r"--[a-z][a-z-]*", out.stdout))


@contextlib.contextmanager
def css_service(
    *, queue_url: str, moto: str, store_url: str, pollers: int = 2, wait_s: int = 1
) -> Iterator[Child]:
    """`blox css` on `queue_url` (moto's SQS) and `store_url`; ready has its "api" URL.

    Where this checkout has them: no reconciler (there is no ECS to reconcile with; moto's
    would have no clusters), SQS at moto by its own flag, and warnings only in the log.
    """
    flags = css_flags()
    sqs = "--sqs-endpoint-url" if "--sqs-endpoint-url" in flags else "--endpoint-url"
    command = [sys.executable, "-m", "blox", "css", "--queue", queue_url, sqs, moto]
    command += ["--store", store_url, "--bind", f"127.0.0.1:{free_port()}"]
    command += ["--pollers", str(pollers), "--wait-time", str(wait_s)]
    for flag, value in (("--reconcile-interval", "0"), ("--log-level", "warning")):
        if flag in flags:
            command += [flag, value]
    with child(command, name="blox css") as running:
        yield running


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of `pid`, in MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds `pid` has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
