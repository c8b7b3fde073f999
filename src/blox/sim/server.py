"""Run the simulator: uvicorn on 127.0.0.1 plus the lifecycle loop that calls `state.tick()`.

`serve()` is the `blox sim` entry; `BackgroundServer` runs the same thing on its own event
loop thread for tests and `blox up`, and funnels every state access through that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import uvicorn
from starlette.routing import BaseRoute

from blox.clock import Clock, ManualClock
from blox.sim.app import create_app
from blox.sim.state import EcsState
from blox.sim.throttle import Throttle

T = TypeVar("T")
TICK_S = 0.1
STARTUP_TIMEOUT_S = 10.0


async def run_lifecycle(state: EcsState, *, clock: Clock, tick_s: float = TICK_S) -> None:
    """Apply due lifecycle steps every `tick_s` of `clock` time, forever."""
    while True:
        state.tick()
        await clock.sleep(tick_s)


async def serve(
    state: EcsState,
    *,
    port: int,
    host: str = "127.0.0.1",
    throttle: Throttle | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    tick_s: float = TICK_S,
    started: Callable[[uvicorn.Server], None] | None = None,
) -> None:
    """Serve the ECS API on host:port and run the lifecycle loop until cancelled."""
    app = create_app(state, throttle=throttle, extra_routes=extra_routes)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    loop_task = asyncio.create_task(run_lifecycle(state, clock=state.clock, tick_s=tick_s))
    try:
        if started is not None:
            started(server)
        await server.serve()
    finally:
        loop_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop_task


class BackgroundServer:
    """The simulator on a thread of its own (for tests): `with BackgroundServer(state, port=p)`."""

    def __init__(self, state: EcsState, *, port: int, throttle: Throttle | None = None) -> None:
        self.state = state
        self.port = port
        self.throttle = throttle
        self.url = f"http://127.0.0.1:{port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="blox-sim", daemon=True)
        self._server: uvicorn.Server | None = None
        self._ready = threading.Event()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(
                serve(self.state, port=self.port, throttle=self.throttle, started=self._started)
            )
        finally:
            self._loop.close()

    def _started(self, server: uvicorn.Server) -> None:
        self._server = server

    def start(self) -> None:
        """Start the thread and wait until uvicorn accepts connections."""
        self._thread.start()
        deadline = self._loop.time() + STARTUP_TIMEOUT_S
        while self._server is None or not self._server.started:
            if not self._thread.is_alive() or self._loop.time() > deadline:
                raise RuntimeError("the simulator did not start")
            self._ready.wait(0.01)

    def stop(self) -> None:
        """Ask uvicorn to exit and join the thread."""
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(STARTUP_TIMEOUT_S)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the server's loop (the only thread that touches the state)."""

        async def run() -> T:
            return fn()

        future: Future[T] = asyncio.run_coroutine_threadsafe(run(), self._loop)
        return future.result(STARTUP_TIMEOUT_S)

    def advance(self, seconds: float) -> int:
        """With a ManualClock: move time on, then apply due steps; returns how many applied."""
        clock = self.state.clock
        if not isinstance(clock, ManualClock):
            raise TypeError("advance needs the state to run on a ManualClock")

        async def run() -> int:
            await clock.advance(seconds)
            return self.state.tick()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(STARTUP_TIMEOUT_S)

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
