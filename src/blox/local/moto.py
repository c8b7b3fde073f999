"""moto in server mode as a child process: the SQS, EventBridge and CloudFormation of `blox up`.

`MotoServer.start(host, port, log_path)` runs `python -m moto.server` on loopback, waits until it
answers, and returns its URL; `stop()` ends it (SIGTERM, then SIGKILL). The child dies with
its parent even when the parent is SIGKILLed (Linux's parent-death signal), and it runs in its
own session so that a Ctrl-C in the terminal reaches `blox up` only: `blox up` stops moto
last, after the CSS has acknowledged what it applied. Caller: `blox.local.compose`.

Assumptions: moto is installed (`pip install blox-ecs[local]`); `start` is called on the main
thread (the parent-death signal follows the thread that forked).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from blox import errors

__all__ = ["MotoFailed", "MotoServer", "free_port", "port_taken"]

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
_PR_SET_PDEATHSIG = 1


class MotoFailed(errors.Unavailable):
    """moto could not be started (not installed, port taken, exited early)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_taken(host: str, port: int) -> bool:
    """Whether something listens on host:port already."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _parent_death_signal() -> Callable[[], None] | None:
    """A pre-exec hook: the child gets SIGTERM when this process dies (None off Linux)."""
    name = ctypes.util.find_library("c")
    if sys.platform != "linux" or name is None:
        return None
    prctl = ctypes.CDLL(name, use_errno=True).prctl  # resolved before fork: nothing to load after

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))

    return hook


@dataclass
class MotoServer:
    """A running moto server and how to end it."""

    url: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    @classmethod
    def start(cls, *, host: str = "127.0.0.1", port: int = 0, log_path: Path) -> MotoServer:
        """Start moto on host:port (0: a free port) and wait until it answers."""
        try:
            import moto.server  # noqa: F401  (only checks that it is installed)
        except ImportError as exc:
            raise MotoFailed(
                "moto is not installed: pip install 'blox-ecs[local]' (or use --aws)"
            ) from exc
        port = port or free_port(host)
        if port_taken(host, port):
            raise MotoFailed(f"port {port} on {host} is in use: choose another with --moto-port")
        log = log_path.open("ab")
        hook = _parent_death_signal()
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches blox up, which stops moto last
            preexec_fn=hook,
        )
        server = cls(url=f"http://{host}:{port}", process=process, log=log)
        try:
            server._wait_ready(log_path)
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_ready(self, log_path: Path) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise MotoFailed(
                    f"moto exited with status {self.process.returncode} at start; see {log_path}"
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/moto-api/data.json", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise MotoFailed(f"moto did not answer on {self.url} within {READY_TIMEOUT_S:g}s")

    def stop(self) -> None:
        """End moto: SIGTERM, then SIGKILL after a grace period; idempotent."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
