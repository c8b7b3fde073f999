"""Helper of `bench.scheduler`: its tables (targets, where the time went, py-spy's busiest
functions) and the JSON clean-up. Figures come in as `bench.scheduler` builds them.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["TARGET_CONVERGE", "TARGET_ROLLING", "clean", "limit", "print_targets", "print_where"]

TARGET_CONVERGE, TARGET_ROLLING = 1.25, 1.3
console = Console(width=None if sys.stdout.isatty() else 140)


def limit(scenario: str) -> float:
    """The ratio to its bound a scenario must stay within."""
    return TARGET_ROLLING if scenario.startswith("rolling") else TARGET_CONVERGE


def verdict(ok: bool) -> str:
    return "[green]PASS[/]" if ok else "[red]MISS[/]"


def print_targets(scenarios: dict[str, dict[str, Any]]) -> None:
    table = Table(title="daemon scheduler against the simulator's limits (seconds)")
    columns = ("scenario", "all RUNNING", "bound", "ratio", "target", "deployment completed")
    for column in (*columns, "double starts"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for name, row in scenarios.items():
        ok = row["complete"] and row["ratio"] <= limit(name)
        table.add_row(
            name if row["complete"] else f"{name} (INCOMPLETE)",
            f"{row['all_running_s']:.2f}",
            f"{row['bound']['bound_s']:.2f}",
            f"{row['ratio']:.2f}x",
            f"<= {limit(name)}x {verdict(ok)}",
            f"{row['deployment_completed_s']:.2f}",
            str(row["duplicates"]),
        )
    console.print(table)


def where_rows(row: dict[str, Any]) -> list[tuple[str, str]]:
    """The figures that say where a scenario's time went."""
    where, ctl, ingest = row["where"], row["controller"], row["ingest"]
    calls = row["start_calls"] if "tail_s" in where else row["stop_calls"]
    op = "StartTask" if "tail_s" in where else "StopTask"
    out = [
        (f"{op} calls accepted / throttled", f"{calls['accepted']:.0f} / {calls['throttled']:.0f}"),
        (f"{op} first / last accepted (s)",
         f"{calls.get('first_s', math.nan):.2f} / {calls.get('last_s', math.nan):.2f}"),
        (f"{op} accepted rate (limit 40/s after a burst of 100), median gap",
         f"{calls.get('rate_per_s', math.nan):.1f}/s, {calls.get('gap_p50_ms', math.nan):.1f} ms"),
        ("controller passes, mean pass (ms)", f"{ctl['passes']:.0f}, {ctl['mean_pass_ms']:.1f}"),
        ("controller started / stopped / refused",
         f"{ctl['started']:.0f} / {ctl['stopped']:.0f} / {ctl['refused']:.0f}"),
        ("CSS apply lag p50 / p99 / max (ms)",
         f"{ingest['lag_p50_ms']:.0f} / {ingest['lag_p99_ms']:.0f} / {ingest['lag_max_ms']:.0f}"),
        ("events applied by the CSS", f"{ingest['applied']:,}"),
    ]  # fmt: skip
    if op == "StartTask":
        out[3:3] = [
            ("ideal last StartTask (s), late by", f"{calls.get('ideal_last_s', math.nan):.2f}, "
             f"{calls.get('late_s', math.nan):.2f}"),
            ("tasks created first / p50 / last (s)", f"{where['first_created_s']:.2f} / "
             f"{where['p50_created_s']:.2f} / {where['last_created_s']:.2f}"),
            ("pending mean / max; tail after the last start (s)", f"{where['pending_mean_s']:.2f}"
             f" / {where['pending_max_s']:.2f}; {where['tail_s']:.2f}"),
            ("burst-aware floor (s), ratio", f"{row['bound']['floor_s']:.2f}, "
             f"{row['ratio_floor']:.2f}x"),
        ]  # fmt: skip
    else:
        bound = row["bound"]
        parts = " / ".join(f"{where[k]['mean']:.2f}" for k in ("stop_s", "react_s", "pending_s"))
        out[3:3] = [
            ("first StopTask after the deployment (s)", f"{where['first_stop_s']:.2f}"),
            ("replacement: stop / scheduler reaction / pending, mean (s)", parts),
            ("replacement slot (StopTask → RUNNING) mean / p99 (s)",
             f"{where['slot_s']['mean']:.2f} / {where['slot_s']['p99']:.2f}"),
            ("unavailable instances peak / mean (budget)",
             f"{where['peak_unavailable']} / {where['mean_unavailable']:.1f} "
             f"({bound['max_unavailable']:.0f})"),
            ("bound parts: slots / StopTask rate / waves (s)",
             f"{bound['slots_s']:.1f} / {bound['stop_rate_s']:.1f} / {bound['waves_s']:.1f}"),
            ("bound on the delays drawn (s), ratio",
             f"{where['realized_slots_s']:.2f}, {row['ratio_realized']:.2f}x"),
        ]  # fmt: skip
    return out


def print_where(scenarios: dict[str, dict[str, Any]]) -> None:
    for name, row in scenarios.items():
        table = Table(title=f"{name}: where the time went (s after the deployment)")
        table.add_column("figure")
        table.add_column("value", justify="right")
        for figure, value in where_rows(row):
            table.add_row(figure, value)
        console.print(table)
        if row.get("profile"):
            top = Table(title=f"{name}: the scheduler's busiest functions (py-spy, % of busy)")
            for column in ("blox function, inclusive", "incl %", "any code, exclusive", "excl %"):
                top.add_column(column, justify="right" if "%" in column else "left")
            for incl, excl in zip(
                row["profile"]["inclusive"], row["profile"]["exclusive"], strict=False
            ):
                top.add_row(incl[0], f"{incl[1]:.1f}", excl[0], f"{excl[1]:.1f}")
            console.print(top)


def clean(value: Any) -> Any:
    """`value` for JSON: NaN becomes null, tuples lists."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value
