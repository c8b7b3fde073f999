"""Store benchmark: write, transaction, paged-list and watch figures for every backend.

Run from the repository root with the venv active:

    python -m bench.store                               # full run, about 2-3 minutes
    python -m bench.store --quick                       # smoke run: 10k keys, 1 s phases
    python -m bench.store --backends memory,sqlite --out /tmp/store.json

Each backend is opened through `open_store`: `memory://`, `sqlite:` on a file in a temporary
folder, and `etcd://` on a real etcd server this script starts on 127.0.0.1 (temporary data
folder, killed at the end). Per backend, in this order, all timed with `time.perf_counter`:

1. CAS writes/s: `put(key, value, expect=<last mod_revision>)` in a loop on one key, and with
   16 coroutines each CAS-ing a key of its own (in-process backends never suspend inside
   `put`, so there the coroutines effectively take turns).
2. Paged list: 100k keys loaded with 100-put transactions (8 in flight), then
   `list(prefix, limit=100, after=<random existing key>)` 500 times (p50/p99 ms per page),
   then one full scan in pages of 100 (pages/s). Each of the two stops early after 20 s
   (3 s with --quick); the table then shows how many pages / keys it got through. Runs
   before step 3, so the store holds about 100k keys, not the many more step 3 adds.
3. 100-op transactions/s: `txn(compares=[], ops=[Put] * 100)`, every key new.
4. Watch delivery: one watcher on a prefix while a writer puts at a paced 1,000 writes/s for
   3 s, each value the sender's `perf_counter()`; latency = receipt time - send time.
5. etcd only: the bare aetcd client on the same server, in the same process: sequential and
   concurrent puts and compare-and-swap Txns (`mod(key) == rev` then put). Ours and raw take
   turns (three rounds), and ours/raw is printed for sequential and concurrent CAS.

Targets are printed beside the figures as PASS/MISS, for information only: the script never
fails on them. Results, targets and machine details go to `bench/results/store.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import random
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.store_report import CONCURRENCY, machine, print_table, verdicts
from blox.store import Put, Store, errors, open_store

BACKENDS = ("memory", "sqlite", "etcd")
VALUE = b"v" * 64
LIST_PAGE = 100
LIST_SAMPLES = 500
WATCH_RATE = 1_000
ETCD_ROUNDS = 3

Step = Callable[[str, int], Awaitable[int]]  # (key, its last mod_revision) -> new revision
console = Console(width=None if sys.stdout.isatty() else 110)
log = Console(stderr=True)
notes: list[str] = []  # failures and oddities, printed under the table and kept in the JSON


@dataclass(frozen=True)
class Sizes:
    """How long and how big: FULL for figures, QUICK for a smoke run."""

    phase_s: float  # length of each timed write phase
    list_keys: int
    watch_s: float
    list_budget_s: float  # cap on each of the page sampling and the full scan


FULL = Sizes(phase_s=3.0, list_keys=100_000, watch_s=3.0, list_budget_s=20.0)
QUICK = Sizes(phase_s=1.0, list_keys=10_000, watch_s=1.0, list_budget_s=3.0)


def percentile(samples: list[float], q: float) -> float:
    """The nearest-rank q-quantile (0 < q <= 1) of `samples`."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def write_rate(prime: Step, step: Step, keys: list[str], seconds: float) -> tuple[int, float]:
    """Run `step` on each key from its own coroutine for `seconds`: (operations, elapsed s)."""
    revisions = [await prime(key, 0) for key in keys]  # outside the timed window
    deadline = time.perf_counter() + seconds

    async def worker(key: str, revision: int) -> int:
        done = 0
        while time.perf_counter() < deadline:
            revision = await step(key, revision)
            done += 1
        return done

    started = time.perf_counter()
    counts = await asyncio.gather(*(worker(k, r) for k, r in zip(keys, revisions, strict=True)))
    return sum(counts), time.perf_counter() - started


def finite(value: Any) -> Any:
    """`value` with inf/nan floats as None, for strict JSON."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def store_steps(store: Store) -> tuple[Step, Step]:
    """(unconditional put, CAS put) on our store, as `Step`s."""

    async def put(key: str, revision: int) -> int:
        return await store.put(key, VALUE)

    async def cas(key: str, revision: int) -> int:
        return await store.put(key, VALUE, expect=revision)

    return put, cas


async def cas_phase(store: Store, sizes: Sizes, port: int | None) -> dict[str, float]:
    """CAS writes/s, sequential and concurrent; on etcd, in turns with the raw client."""
    seq_keys = ["bench/cas/seq"]
    conc_keys = [f"bench/cas/c{i:02d}" for i in range(CONCURRENCY)]
    put, cas = store_steps(store)
    cases: dict[str, tuple[Step, Step, list[str]]] = {
        "cas_seq": (put, cas, seq_keys),
        "cas_conc": (put, cas, conc_keys),
    }
    raw = None
    if port is not None:
        from bench.store_etcd import RawEtcd

        raw = RawEtcd(port, VALUE)
        raw_seq, raw_conc = ["bench/raw/seq"], [f"bench/raw/c{i:02d}" for i in range(CONCURRENCY)]
        cases |= {
            "raw_cas_seq": (raw.put, raw.cas, raw_seq),
            "raw_cas_conc": (raw.put, raw.cas, raw_conc),
            "raw_put_seq": (raw.put, raw.put, raw_seq),
            "raw_put_conc": (raw.put, raw.put, raw_conc),
        }
    rounds = ETCD_ROUNDS if raw is not None else 1
    totals = {name: [0.0, 0.0] for name in cases}
    try:
        for _ in range(rounds):
            for name, (prime, step, keys) in cases.items():
                ops, elapsed = await write_rate(prime, step, keys, sizes.phase_s / rounds)
                totals[name][0] += ops
                totals[name][1] += elapsed
    finally:
        if raw is not None:
            await raw.close()
    out = {f"{name}_per_s": ops / elapsed for name, (ops, elapsed) in totals.items()}
    if raw is not None:
        out["ratio_cas_seq"] = out["cas_seq_per_s"] / out["raw_cas_seq_per_s"]
        out["ratio_cas_conc"] = out["cas_conc_per_s"] / out["raw_cas_conc_per_s"]
    return out


async def txn_phase(store: Store, sizes: Sizes) -> dict[str, float]:
    """100-put transactions/s, every key new."""
    done = 0
    deadline = time.perf_counter() + sizes.phase_s
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        base = done * 100
        ops = [Put(f"bench/txn/{base + i:09d}", VALUE) for i in range(100)]
        await store.txn(compares=[], ops=ops)
        done += 1
    return {"txn100_per_s": done / (time.perf_counter() - started)}


async def list_phase(store: Store, sizes: Sizes) -> dict[str, float]:
    """Load `list_keys` keys, time random pages of 100 and one full scan."""
    prefix, total = "bench/list/", sizes.list_keys
    keys = [f"{prefix}{i:08d}" for i in range(total)]
    batches = iter(range(0, total, 100))

    async def loader() -> None:
        for start in batches:
            ops = [Put(key, VALUE) for key in keys[start : start + 100]]
            await store.txn(compares=[], ops=ops)

    started = time.perf_counter()
    await asyncio.gather(*(loader() for _ in range(8)))
    load_rate = total / (time.perf_counter() - started)

    rng = random.Random(42)
    samples: list[float] = []
    failures: list[str] = []
    budget_end = time.perf_counter() + sizes.list_budget_s
    while len(samples) < LIST_SAMPLES and time.perf_counter() < budget_end:
        after = keys[rng.randrange(total)]
        t0 = time.perf_counter()
        try:
            await store.list(prefix, limit=LIST_PAGE, after=after)
        except errors.StoreError as exc:  # a failed page counts as infinitely slow
            failures.append(f"{type(exc).__name__}: {exc}")
            samples.append(math.inf)
            continue
        samples.append((time.perf_counter() - t0) * 1000)

    pages, seen, cursor, complete = 0, 0, None, False
    started = time.perf_counter()
    budget_end = started + sizes.list_budget_s
    while time.perf_counter() < budget_end:
        try:
            page = await store.list(prefix, limit=LIST_PAGE, after=cursor)
        except errors.StoreError as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            break
        pages, seen = pages + 1, seen + len(page.entries)
        cursor = page.next_after
        if cursor is None:
            complete = True
            break
    scan_s = time.perf_counter() - started
    if complete and seen != total:
        notes.append(f"full scan saw {seen:,} keys, expected {total:,}")
    kinds = Counter(re.sub(r"\d+", "N", text) for text in failures)
    examples = {re.sub(r"\d+", "N", text): text for text in failures}
    notes.extend(f"list failed {n}x, e.g. {examples[k][:200]}" for k, n in kinds.items())
    out = {
        "load_keys_per_s": load_rate,
        "list_samples": float(len(samples)),
        "list_failures": float(samples.count(math.inf)),
        "list_p50_ms": percentile(samples, 0.50),
        "list_p99_ms": percentile(samples, 0.99),
        "scan_pages_per_s": pages / scan_s,
        "scan_keys_read": float(seen),
    }
    answered = [ms for ms in samples if ms != math.inf]
    if len(answered) < len(samples) and answered:
        out["list_ok_p50_ms"] = percentile(answered, 0.50)
        out["list_ok_p99_ms"] = percentile(answered, 0.99)
    return out


async def watch_phase(store: Store, sizes: Sizes) -> dict[str, float]:
    """Delivery latency of one prefix watcher while a writer puts at WATCH_RATE writes/s."""
    prefix, total = "bench/watch/", int(WATCH_RATE * sizes.watch_s)
    latencies: list[float] = []
    ready, finished = asyncio.Event(), asyncio.Event()
    start_revision = await store.revision() + 1

    async def watcher() -> None:
        async for change in store.watch(prefix, start_revision=start_revision):
            received = time.perf_counter()
            if change.entry is None:
                continue
            if change.key == prefix + "ready":
                ready.set()
                continue
            latencies.append((received - float(change.entry.value)) * 1000)
            if len(latencies) >= total:
                finished.set()
                return

    task = asyncio.create_task(watcher())
    try:
        await store.put(prefix + "ready", b"0")
        await asyncio.wait_for(ready.wait(), timeout=10)  # the watcher is live
        in_flight = asyncio.Semaphore(CONCURRENCY)  # a round trip may exceed 1 ms (etcd)

        async def send(key: str) -> None:
            async with in_flight:
                await store.put(key, repr(time.perf_counter()).encode())

        sends: list[asyncio.Task[None]] = []
        started = time.perf_counter()
        for i in range(total):
            await asyncio.sleep(max(0.0, started + i / WATCH_RATE - time.perf_counter()))
            sends.append(asyncio.create_task(send(f"{prefix}k{i % 100:03d}")))
        await asyncio.gather(*sends)
        write_s = time.perf_counter() - started
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(finished.wait(), timeout=10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return {
        "watch_p50_ms": percentile(latencies, 0.50) if latencies else math.inf,
        "watch_p99_ms": percentile(latencies, 0.99) if latencies else math.inf,
        "watch_max_ms": max(latencies, default=math.inf),
        "watch_writes_per_s": total / write_s,
        "watch_lost": float(total - len(latencies)),
    }


async def run_backend(name: str, url: str, sizes: Sizes, port: int | None) -> dict[str, float]:
    """Every phase, in order, on one freshly opened store; a phase that fails is noted."""
    store = await open_store(url)
    results: dict[str, float] = {}
    try:
        phases: list[tuple[str, Callable[[], Awaitable[dict[str, float]]]]] = [
            ("CAS writes", lambda: cas_phase(store, sizes, port)),
            (f"paged list of {sizes.list_keys:,} keys", lambda: list_phase(store, sizes)),
            ("100-put txns", lambda: txn_phase(store, sizes)),
            (f"watch at {WATCH_RATE:,} writes/s", lambda: watch_phase(store, sizes)),
        ]
        for phase, run in phases:
            log.print(f"[dim]{name}: {phase}…[/]")
            try:
                results |= await run()
            except errors.StoreError as exc:
                notes.append(f"{phase} failed: {type(exc).__name__}: {str(exc)[:160]}")
    finally:
        await store.close()
    return results


@contextlib.contextmanager
def backend_url(name: str) -> Iterator[tuple[str, int | None]]:
    """(store URL, etcd client port or None), with the file or server it needs, cleaned up."""
    if name == "memory":
        yield "memory://", None
    elif name == "sqlite":
        with tempfile.TemporaryDirectory(prefix="blox-bench-sqlite-") as folder:
            yield f"sqlite://{Path(folder).resolve()}/store.db", None
    else:
        from bench.store_etcd import etcd_server

        with etcd_server() as port:
            yield f"etcd://127.0.0.1:{port}", port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.store", description="Store benchmark (see the module docstring)."
    )
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated subset")
    parser.add_argument("--quick", action="store_true", help="10k keys and 1 s phases")
    parser.add_argument("--out", type=Path, default=Path("bench/results/store.json"))
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend {unknown[0]!r}; choose from {', '.join(BACKENDS)}")
    sizes = QUICK if args.quick else FULL
    results: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    for name in backends:
        with backend_url(name) as (url, port):
            first_note = len(notes)
            results[name] = asyncio.run(run_backend(name, url, sizes, port))
            notes[first_note:] = [f"{name}: {note}" for note in notes[first_note:]]
    checks = verdicts(results)
    print_table(console, results, checks)
    info = machine(backends)
    for note in notes:
        console.print(f"[yellow]note[/] {note}")
    console.print(
        f"nproc {info['nproc']}, Python {info['python']}, {info['date']}, "
        f"{'quick' if args.quick else 'full'} run in {time.perf_counter() - started:.0f} s"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": info,
        "mode": "quick" if args.quick else "full",
        "sizes": dataclasses.asdict(sizes) | {"concurrency": CONCURRENCY, "watch_rate": WATCH_RATE},
        "results": results,
        "targets": checks,
        "notes": notes,
    }
    args.out.write_text(json.dumps(finite(report), indent=2, default=str) + "\n")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
