"""Helpers of `bench.store`: the targets, the printed table and the machine record."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from rich.console import Console
from rich.table import Table

CONCURRENCY = 16  # coroutines in the concurrent write cases, each on a key of its own


@dataclass(frozen=True)
class Target:
    """A figure to reach, printed as PASS/MISS; informational only."""

    backend: str | None  # None: every backend
    metric: str
    op: str  # ">=" or "<="
    threshold: float
    label: str

    def holds(self, value: float) -> bool:
        return value >= self.threshold if self.op == ">=" else value <= self.threshold


TARGETS = [
    Target("sqlite", "cas_seq_per_s", ">=", 5_000, "SQLite >= 5,000 single-key CAS commits/s"),
    Target(None, "list_p99_ms", "<=", 5.0, "list page of 100 out of 100k <= 5 ms p99"),
    Target("etcd", "ratio_cas_seq", ">=", 0.8, "etcd backend >= 0.8x raw client (sequential)"),
    Target("etcd", "ratio_cas_conc", ">=", 0.8, "etcd backend >= 0.8x raw client (concurrent)"),
    Target(None, "watch_p99_ms", "<=", 50.0, "watch delivery p99 <= 50 ms at 1k writes/s"),
]

# (metric, label, format); a backend shows only the metrics it measured.
ROWS = [
    ("cas_seq_per_s", "CAS writes/s, 1 key sequential", "{:,.0f}"),
    ("cas_conc_per_s", f"CAS writes/s, {CONCURRENCY} keys concurrently", "{:,.0f}"),
    ("raw_cas_seq_per_s", "  raw aetcd CAS txn/s, sequential", "{:,.0f}"),
    ("raw_cas_conc_per_s", f"  raw aetcd CAS txn/s, {CONCURRENCY} keys concurrently", "{:,.0f}"),
    ("raw_put_seq_per_s", "  raw aetcd put/s, sequential", "{:,.0f}"),
    ("raw_put_conc_per_s", f"  raw aetcd put/s, {CONCURRENCY} keys concurrently", "{:,.0f}"),
    ("ratio_cas_seq", "  ours/raw CAS, sequential", "{:.2f}x"),
    ("ratio_cas_conc", f"  ours/raw CAS, {CONCURRENCY} keys concurrently", "{:.2f}x"),
    ("load_keys_per_s", "list: load keys/s (100-put txns)", "{:,.0f}"),
    ("list_samples", "list: random pages timed", "{:,.0f}"),
    ("list_failures", "list: random pages failed", "{:,.0f}"),
    ("list_p50_ms", "list: page of 100, p50 ms", "{:.3f}"),
    ("list_p99_ms", "list: page of 100, p99 ms", "{:.3f}"),
    ("list_ok_p50_ms", "list: p50 ms of pages that answered", "{:.3f}"),
    ("list_ok_p99_ms", "list: p99 ms of pages that answered", "{:.3f}"),
    ("scan_pages_per_s", "list: full scan pages/s", "{:,.0f}"),
    ("scan_keys_read", "list: full scan keys read", "{:,.0f}"),
    ("txn100_per_s", "100-put txns/s", "{:,.0f}"),
    ("watch_p50_ms", "watch: delivery p50 ms", "{:.2f}"),
    ("watch_p99_ms", "watch: delivery p99 ms", "{:.2f}"),
    ("watch_max_ms", "watch: delivery max ms", "{:.2f}"),
    ("watch_writes_per_s", "watch: achieved writes/s", "{:,.0f}"),
    ("watch_lost", "watch: changes not received", "{:,.0f}"),
]


def verdicts(results: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Each target against each backend it applies to and that measured it."""
    out = []
    for target in TARGETS:
        for backend, figures in results.items():
            if target.backend in (None, backend) and target.metric in figures:
                value = figures[target.metric]
                out.append(
                    {
                        "target": target.label,
                        "backend": backend,
                        "metric": target.metric,
                        "op": target.op,
                        "threshold": target.threshold,
                        "value": value,
                        "pass": target.holds(value),
                    }
                )
    return out


def print_table(
    console: Console, results: dict[str, dict[str, float]], checks: list[dict[str, Any]]
) -> None:
    """One row per metric, one column per backend, PASS/MISS beside the figures with a target."""
    verdict = {(c["backend"], c["metric"]): c["pass"] for c in checks}
    targets = {t.metric: f"{t.backend or ''} {t.op} {t.threshold:,g}".strip() for t in TARGETS}
    table = Table(title="blox store benchmark")
    table.add_column("metric")
    for backend in results:
        table.add_column(backend, justify="right")
    table.add_column("target", justify="right")
    for metric, label, fmt in ROWS:
        if not any(metric in figures for figures in results.values()):
            continue
        cells = []
        for backend, figures in results.items():
            if metric not in figures:
                cells.append("")
                continue
            cell = fmt.format(figures[metric])
            if (backend, metric) in verdict:
                ok = verdict[(backend, metric)]
                cell += " [green]PASS[/]" if ok else " [red]MISS[/]"
            cells.append(cell)
        table.add_row(label, *cells, targets.get(metric, ""))
    console.print(table)


def machine(backends: list[str]) -> dict[str, Any]:
    """Where the figures were taken: CPUs, Python, platform, date, client and server versions."""
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "aetcd": metadata.version("aetcd"),
    }
    if "etcd" in backends:
        from bench.store_etcd import etcd_version

        info["etcd"] = etcd_version()
    return info
