"""Helpers of `bench.css`: the targets, the printed tables and the machine record."""

from __future__ import annotations

import math
import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["finite", "machine", "print_report", "verdicts"]

TARGET_INGEST_RATIO = 0.5
TARGET_LIST_P99_MS = 20.0
TARGET_RSS_MB = 300.0
TARGET_STREAM_P99_MS = 100.0


def finite(value: Any) -> Any:
    """`value` with inf/nan floats as None, for strict JSON."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _check(label: str, store: str, value: float, op: str, threshold: float) -> dict[str, Any]:
    ok = value >= threshold if op == ">=" else value <= threshold
    return {"target": label, "store": store, "value": value, "op": op, "threshold": threshold,
            "pass": bool(ok) and math.isfinite(value)}  # fmt: skip


def verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target against every store that measured it."""
    out = []
    for store, r in results.get("ingest", {}).get("stores", {}).items():
        label = "ingest from SQS >= 0.5x raw store CAS writes/s"
        out.append(_check(label, store, r["ratio_css_raw_cas"], ">=", TARGET_INGEST_RATIO))
    for store, r in results.get("list", {}).items():
        label = "list/filter a page of 100 <= 20 ms p99 (worst task query)"
        out.append(_check(label, store, r["worst_task_page_p99_ms"], "<=", TARGET_LIST_P99_MS))
        out.append(_check("CSS peak RSS <= 300 MB", store, r["peak_rss_mb"], "<=", TARGET_RSS_MB))
    for store, r in results.get("streams", {}).items():
        label = f"{r['clients']} stream clients: delivery p99 <= 100 ms"
        out.append(_check(label, store, r["p99_ms"], "<=", TARGET_STREAM_P99_MS))
        label = "every stream client got every change"
        out.append(_check(label, store, r["complete_clients"], ">=", r["clients"]))
    return out


def _ms(value: float, fmt: str = "{:,.1f}") -> str:
    return fmt.format(value) if math.isfinite(value) else "-"


def _mark(ok: bool) -> str:
    return " [green]PASS[/]" if ok else " [red]MISS[/]"


def _table(title: str, stores: list[str]) -> Table:
    table = Table(title=title)
    table.add_column("figure")
    for store in stores:
        table.add_column(store, justify="right")
    return table


INGEST_ROWS = [
    ("raw_cas_seq_per_s", "raw store CAS writes/s, sequential", "{:,.0f}"),
    ("raw_cas_conc_per_s", "raw store CAS writes/s, one coroutine a poller", "{:,.0f}"),
    ("direct_per_s", "processor from memory (no SQS), events/s", "{:,.0f}"),
    ("moto_events_per_s", "raw moto: boto3 receive+delete, events/s", "{:,.0f}"),
    ("css_events_per_s", "ours: `blox css` from SQS, events/s", "{:,.0f}"),
    ("ratio_css_raw_cas", "ours / raw store CAS (target >= 0.5)", "{:.3f}x"),
    ("ratio_css_moto", "ours / raw moto", "{:.2f}x"),
    ("ratio_direct_raw_cas", "processor from memory / raw store CAS", "{:.2f}x"),
    ("moto_peak_depth", "raw moto: peak queue depth", "{:,.0f}"),
    ("css_peak_depth", "ours: peak queue depth", "{:,.0f}"),
    ("css_tasks_shown", "ours: tasks the API shows afterwards", "{:,.0f}"),
    ("css_tasks_wrong_status", "ours: tasks not in their last event's state", "{:,.0f}"),
    ("css_tasks_missing", "ours: tasks missing", "{:,.0f}"),
]
STREAM_ROWS = [
    ("connected", "clients connected", "{:,.0f}"),
    ("writes", "changes written", "{:,.0f}"),
    ("achieved_writes_per_s", "achieved writes/s (paced at the target rate)", "{:,.0f}"),
    ("p50_ms", "delivery p50 ms", "{:,.1f}"),
    ("p99_ms", "delivery p99 ms (target <= 100)", "{:,.1f}"),
    ("max_ms", "delivery max ms", "{:,.1f}"),
    ("delivered_per_s", "lines delivered/s, all clients", "{:,.0f}"),
    ("complete_clients", "clients that got every change", "{:,.0f}"),
    ("deliveries", "deliveries / expected", "{:,.0f}"),
    ("server_cpu_s", "server CPU seconds in the phase", "{:,.1f}"),
    ("clients_cpu_s", "clients' CPU seconds in the phase", "{:,.1f}"),
]


def _rows(table: Table, rows: list[tuple[str, str, str]], by_store: dict[str, Any]) -> None:
    for metric, label, fmt in rows:
        if not any(metric in r for r in by_store.values()):
            continue
        cells = [fmt.format(r[metric]) if metric in r else "" for r in by_store.values()]
        if metric == "deliveries":
            cells = [
                f"{c} / {r['expected_deliveries']:,}"
                for c, r in zip(cells, by_store.values(), strict=True)
            ]
        table.add_row(label, *cells)


def print_report(console: Console, results: dict[str, Any], checks: list[dict[str, Any]]) -> None:
    """The tables of every section run, then the targets."""
    ingest = results.get("ingest")
    if ingest:
        stores = ingest["stores"]
        table = _table("1. ingest: simulator events through moto SQS into the store", list(stores))
        _rows(table, INGEST_ROWS, stores)
        console.print(table)
        depth = Table(title="moto by queue depth: fill a queue, then drain it (raw boto3)")
        for column in ("messages", "SendMessageBatch msgs/s", "receive+delete msgs/s"):
            depth.add_column(column, justify="right")
        for cap, r in ingest.get("moto_depth", {}).items():
            depth.add_row(cap, f"{r['send_per_s']:,.0f}", f"{r['drain_per_s']:,.0f}")
        console.print(depth)
    for store, r in results.get("list", {}).items():
        fleet = r["fleet"]
        title = (f"2. list on {store}: pages of 100 out of {fleet['tasks']:,} tasks, "
                 f"{fleet['instances']:,} instances (ms)")  # fmt: skip
        table = Table(title=title)
        columns = ("query", "first p50", "first p99", "random p50", "random p99", "walk pages/s")
        for column in (*columns, "walk"):
            table.add_column(column, justify="left" if column == "query" else "right")
        for name, q in r["queries"].items():
            cells = [_ms(q[k]) for k in ("first_p50_ms", "first_p99_ms", "random_p50_ms")]
            p99 = _ms(q["random_p99_ms"])
            if name.startswith("tasks"):  # the verdict is on the worse of first and random
                p99 += _mark(q["p99_ms"] <= TARGET_LIST_P99_MS)
            walked = f"{q['walk_items']:,.0f} items" + ("" if q["walk_complete"] else " (cut)")
            table.add_row(name, *cells, p99, _ms(q["walk_pages_per_s"], "{:,.0f}"), walked)
        console.print(table)
        rss = r["rss_end_mb"]
        console.print(
            f"  load through the processor: {r['load_per_s']:,.0f} events/s ({r['load_s']:.0f} s);"
            f" CSS RSS at start {r['rss_start_mb']['VmRSS']:.0f} MiB, at the end "
            f"{rss['VmRSS']:.0f} MiB, peak {rss['VmHWM']:.0f} MiB"
            + _mark(rss["VmHWM"] <= TARGET_RSS_MB)
        )
    streams = results.get("streams")
    if streams:
        table = _table("3. streams: GET /v1/stream/tasks while records change", list(streams))
        _rows(table, STREAM_ROWS, streams)
        console.print(table)
    targets = Table(title="targets (information only)")
    for column in ("target", "store", "value", "verdict"):
        targets.add_column(column, justify="left" if column == "target" else "right")
    for c in checks:
        targets.add_row(c["target"], c["store"], f"{c['value']:,.3g}", _mark(c["pass"]).strip())
    console.print(targets)


def machine(stores: list[str]) -> dict[str, Any]:
    """Where the figures were taken, and how busy the machine was."""
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_1_5_15": list(os.getloadavg()),
        "moto": metadata.version("moto"),
        "uvicorn": metadata.version("uvicorn"),
    }
    if "etcd" in stores:
        from bench.store_etcd import etcd_version

        info["etcd"] = etcd_version()
    return info
