"""CSS benchmark: ingest from moto SQS, list/filter pages at 100k tasks, 100 stream clients.

Run from the repository root with the venv active:

    python -m bench.css                              # full run, sqlite and etcd, ~13 minutes
    python -m bench.css --quick                      # smoke run, sqlite only, under a minute
    python -m bench.css --stores etcd --sections list --out /tmp/css.json

Everything runs on 127.0.0.1: moto's server as a subprocess (SQS, as `bench.sim_events`
starts it), the store (`sqlite:` files in a temporary folder, or a throw-away etcd server per
section from `bench.store_etcd`), the real `blox css` CLI as a subprocess wherever its own RSS
or its SQS ingest is measured, and this benchmark's own child processes for the streams. The
events are the simulator's (`bench/css_fleet.py`: an in-process `EcsState` whose changes
become envelopes through `blox.sim.events`, published with `blox.sim.publishers.SqsPublisher`).

1. ingest (`bench/css_ingest.py`), per store: raw single-key CAS writes/s of the processor's
   records; `Processor.process` from memory; moto's own ceiling (plain boto3 consumers); and
   `blox css` draining a queue that a feeder keeps at most `--depth` deep, then checked over
   its API. moto walks a queue's every message for each request, so it slows with depth (the
   "moto by queue depth" table), and on this kind of machine it carries a few
   hundred events/s at best: the ingest/CAS ratio then measures moto, and the table shows
   ours/moto and the processor's own rate beside it. The service takes one queue, so sharding
   over queues is not possible without a change to it; the queue is kept shallow instead.
2. list (`bench/css_list.py`), per store: the fleet loaded through the processor, `blox css`
   started on it, first pages, a token walk and random-token pages per query, RSS.
3. streams (`bench/css_streams.py`), per store: `--clients` streams while records are written
   at `--rate` per second; delivery latency write -> receipt, and whether all got all.

Targets (from the issue) are printed as PASS/MISS for information only; nothing fails on them.
Figures, targets, notes and the machine (with its load average: other work on the machine
shows up in every figure) go to `bench/results/css.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.css_ingest import depth_effect, ingest_store
from bench.css_list import ListSizes, list_store
from bench.css_report import finite, machine, print_report, verdicts
from bench.css_streams import StreamSizes, streams_store
from bench.sim_events import moto_server

STORES = ("sqlite", "etcd")
SECTIONS = ("ingest", "list", "streams")
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "css.json"
console = Console(width=None if sys.stdout.isatty() else 120)
log = Console(stderr=True)


@dataclass(frozen=True)
class Sizes:
    """How big and how long: FULL for figures, QUICK for a smoke run."""

    ingest_events: int  # a round, a side
    rounds: int
    depth: int
    pollers: int
    depths: tuple[int, ...]  # of the pre-filled queues of the moto depth table
    listing: ListSizes
    streams: StreamSizes


FULL = Sizes(
    ingest_events=1_500,
    rounds=2,
    depth=20,
    pollers=2,
    depths=(50, 200, 500),
    listing=ListSizes(instances=5_000, tasks=100_000, first=20, samples=200, walk_budget_s=5.0),
    streams=StreamSizes(clients=100, rate=1_000, seconds=2.0, drain_timeout_s=240, idle_s=15),
)
QUICK = Sizes(
    ingest_events=400,
    rounds=1,
    depth=20,
    pollers=2,
    depths=(50, 200),
    listing=ListSizes(instances=200, tasks=2_000, first=5, samples=20, walk_budget_s=0.5),
    streams=StreamSizes(clients=20, rate=1_000, seconds=0.5, drain_timeout_s=30, idle_s=5),
)


@contextlib.contextmanager
def store_urls(store: str, folder: Path, names: list[str]) -> Iterator[dict[str, str]]:
    """A store URL for each of `names`: its own SQLite file, or one fresh etcd server for all."""
    if store == "sqlite":
        yield {name: f"sqlite:{folder / f'{name}.db'}" for name in names}
        return
    from bench.store_etcd import etcd_server

    with etcd_server() as port:
        yield dict.fromkeys(names, f"etcd://127.0.0.1:{port}")


def run(sections: list[str], stores: list[str], sizes: Sizes, notes: list[str]) -> dict[str, Any]:
    """Every section asked for, store by store; a section that fails on a store is noted."""
    results: dict[str, Any] = {}

    def attempt(section: str, store: str, work: Callable[[], dict[str, Any]]) -> None:
        log.print(f"[dim]{section} on {store}…[/]")
        started = time.perf_counter()
        try:
            figures = work()
        except Exception as exc:  # one failing section must not lose the others' figures
            notes.append(f"{section} on {store} failed: {type(exc).__name__}: {str(exc)[:300]}")
            return
        figures["section_s"] = time.perf_counter() - started
        target = results.setdefault(section, {})
        (target.setdefault("stores", {}) if section == "ingest" else target)[store] = figures

    needs_moto = "ingest" in sections or "list" in sections
    with contextlib.ExitStack() as stack:
        moto = stack.enter_context(moto_server()) if needs_moto else ""
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="blox-bench-css-")))
        if "ingest" in sections:
            log.print("[dim]ingest: moto drain rate by queue depth…[/]")
            results["ingest"] = {"moto_depth": depth_effect(moto, sizes.depths, sizes.pollers)}
        for store in stores:
            if "ingest" in sections:
                with store_urls(store, folder, ["ingest-raw", "ingest-css"]) as urls:
                    work = partial(ingest_store, moto, urls["ingest-raw"], urls["ingest-css"],
                                   count=sizes.ingest_events, rounds=sizes.rounds,
                                   depth=sizes.depth, pollers=sizes.pollers)  # fmt: skip
                    attempt("ingest", store, work)
            if "list" in sections:
                with store_urls(store, folder, ["list"]) as urls:
                    attempt(
                        "list", store, partial(list_store, moto, urls["list"], sizes.listing, notes)
                    )
            if "streams" in sections:
                with store_urls(store, folder, ["streams"]) as urls:
                    attempt(
                        "streams", store, partial(streams_store, urls["streams"], sizes.streams)
                    )
    return results


def _notes(results: dict[str, Any], notes: list[str]) -> None:
    """What a reader of the figures must know: who the bottleneck is."""
    for store, r in results.get("ingest", {}).get("stores", {}).items():
        if r["ratio_css_raw_cas"] < 0.5 and r["moto_events_per_s"] < 0.5 * r["raw_cas_conc_per_s"]:
            notes.append(
                f"ingest on {store}: moto is the bottleneck: plain boto3 consumers drain "
                f"{r['moto_events_per_s']:,.0f} events/s from it (< 0.5x the store's "
                f"{r['raw_cas_conc_per_s']:,.0f} CAS writes/s); ours reaches "
                f"{r['ratio_css_moto']:.0%} of moto's rate; the processor alone, from memory, "
                f"does {r['direct_per_s']:,.0f}/s ({r['ratio_direct_raw_cas']:.2f}x the CAS rate)"
            )
    for store, r in results.get("streams", {}).items():
        if r["achieved_writes_per_s"] < 0.9 * r["target_rate"]:
            notes.append(
                f"streams on {store}: the writer, on the server's event loop, reached only "
                f"{r['achieved_writes_per_s']:,.0f} of {r['target_rate']:,} writes/s: the loop "
                f"was busy sending {r['delivered_per_s']:,.0f} lines/s to {r['clients']} clients"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.css",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes; sqlite unless --stores")
    parser.add_argument("--stores", help=f"comma-separated subset of {','.join(STORES)}")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset")
    parser.add_argument("--events", type=int, help="ingest: events a side a round")
    parser.add_argument("--rounds", type=int, help="ingest: turns of raw moto and ours")
    parser.add_argument("--depth", type=int, help="ingest: queue depth cap of the feeder")
    parser.add_argument("--pollers", type=int, help="ingest: `blox css --pollers`")
    parser.add_argument("--tasks", type=int, help="list: tasks in the fleet")
    parser.add_argument("--instances", type=int, help="list: container instances")
    parser.add_argument("--clients", type=int, help="streams: concurrent clients")
    parser.add_argument("--rate", type=int, help="streams: changes written per second")
    parser.add_argument("--seconds", type=float, help="streams: seconds of writes")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    default_stores = "sqlite" if args.quick else ",".join(STORES)
    stores = [s.strip() for s in (args.stores or default_stores).split(",") if s.strip()]
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    for given, allowed, what in ((stores, STORES, "store"), (sections, SECTIONS, "section")):
        unknown = sorted(set(given) - set(allowed))
        if unknown:
            parser.error(f"unknown {what} {unknown[0]!r}; choose from {', '.join(allowed)}")
    sizes = QUICK if args.quick else FULL
    sizes = dataclasses.replace(
        sizes,
        ingest_events=args.events or sizes.ingest_events,
        rounds=args.rounds or sizes.rounds,
        depth=args.depth or sizes.depth,
        pollers=args.pollers or sizes.pollers,
        listing=dataclasses.replace(sizes.listing, tasks=args.tasks or sizes.listing.tasks,
                                    instances=args.instances or sizes.listing.instances),
        streams=dataclasses.replace(sizes.streams, clients=args.clients or sizes.streams.clients,
                                    rate=args.rate or sizes.streams.rate,
                                    seconds=args.seconds or sizes.streams.seconds),
    )  # fmt: skip
    started = time.perf_counter()
    load_before = os.getloadavg()
    notes: list[str] = []
    results = run(sections, stores, sizes, notes)
    _notes(results, notes)
    checks = verdicts(results)
    print_report(console, results, checks)
    for note in notes:
        console.print(f"[yellow]note[/] {note}")
    info = machine(stores) | {"loadavg_at_start": list(load_before)}
    elapsed = time.perf_counter() - started
    console.print(
        f"nproc {info['nproc']}, load average {load_before[0]:.1f} at the start and "
        f"{info['loadavg_1_5_15'][0]:.1f} at the end, Python {info['python']}, "
        f"{'quick' if args.quick else 'full'} run in {elapsed:.0f} s"
    )
    report = {
        "machine": info,
        "mode": "quick" if args.quick else "full",
        "sizes": dataclasses.asdict(sizes),
        "results": results,
        "targets": checks,
        "notes": notes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(finite(report), indent=2, default=str) + "\n")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
