"""blox.css: the cluster state service, ECS events → store → API.

`apply` decides (pure), `processor` reads, decides and writes with compare-and-swap; the
pollers in `ingest` feed `Processor.process` and ack only after it returns.
"""

from __future__ import annotations

from blox.css import apply, errors, processor

__all__ = ["apply", "errors", "processor"]
