"""Helper of `bench.scheduler --profile`: sample a running service with py-spy, summarise it.

`sampling(pid, path)` runs `py-spy record --format raw` (collapsed stacks, every thread, idle
frames left out) on a process while the `with` body runs, and stops it with SIGINT, which makes
py-spy write its file. `summary(path)` turns the stacks into the functions holding the most
samples, inclusive (the function or anything it called) and exclusive (the function itself),
as shares of the busy samples. py-spy is the venv's (`py-spy` on PATH otherwise); when it
cannot attach, the benchmark goes on without a profile and says so.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

__all__ = ["sampling", "summary"]

RATE_HZ = 200


def _py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def sampling(pid: int, path: Path) -> Iterator[bool]:
    """Sample `pid` into `path` while the body runs; yields whether py-spy is there."""
    binary = _py_spy()
    if binary is None:
        yield False
        return
    command = [binary, "record", "--pid", str(pid), "--format", "raw", "--output", str(path)]
    command += ["--rate", str(RATE_HZ), "--nonblocking"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield True
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def summary(path: Path, *, top: int = 15) -> dict[str, list[tuple[str, float]]]:
    """The `top` functions by share of the busy samples (%): inclusive (the function and what
    it called; blox's own functions only, its CLI and entry point left out) and exclusive
    (any code: where the CPU was when sampled)."""
    inclusive: Counter[str] = Counter()
    exclusive: Counter[str] = Counter()
    total = 0
    lines = path.read_text().splitlines() if path.exists() else []
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        total += int(count)
        for frame in {_short(f) for f in frames if _ours(f)}:
            inclusive[frame] += int(count)
        exclusive[_short(frames[-1])] += int(count)
    return {
        "inclusive": [(f, 100 * n / total) for f, n in inclusive.most_common(top)],
        "exclusive": [(f, 100 * n / total) for f, n in exclusive.most_common(top)],
    }


def _ours(frame: str) -> bool:
    where = frame.partition(" (")[2]
    return "blox/" in where and "blox/cli/" not in where and "blox/__main__" not in where


def _short(frame: str) -> str:
    """`fn (path/to/module.py:123)` → `fn (module.py)`: one entry per function."""
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rsplit("/", 1)[-1].rstrip(")")
    return f"{name} ({file})" if file else name
