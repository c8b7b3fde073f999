"""What every test needs: a manual clock; one real etcd server per session and moto in server
mode per module, when asked."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from blox.clock import ManualClock
from blox.testing.etcd import EtcdServer

# A shell without job control starts background commands with SIGINT ignored, and children
# inherit that: a `blox watch` the tests Ctrl-C would then never stop. The tests' subprocesses
# get SIGINT's default, as from a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test advances it."""
    return ManualClock()


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    """One real etcd server on a free loopback port for the whole session."""
    server = EtcdServer(tmp_path_factory.mktemp("etcd"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto (SQS, EventBridge, Kinesis, …) on a free loopback port, for one test module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run whole-system tests last, as kopf does: a unit failure should show first."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)
