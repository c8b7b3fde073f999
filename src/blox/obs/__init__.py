"""blox.obs: what an operator watches: Prometheus metrics, readiness checks and JSON logs.

A low layer: the services (`css`, later `scheduler`) build these objects in their composition
roots and hand them down; nothing here imports a service, the store or the CLI. Each service
gets its own `CollectorRegistry`, never prometheus_client's global one, so two apps in one
process (the tests, `blox up`) never clash.
"""

from __future__ import annotations

from blox.obs import health, http, listen, logs, metrics
from blox.obs.health import Readiness, Report
from blox.obs.http import RequestMetrics
from blox.obs.logs import setup_logging
from blox.obs.metrics import CssMetrics, SchedulerMetrics

__all__ = [
    "CssMetrics",
    "Readiness",
    "Report",
    "RequestMetrics",
    "SchedulerMetrics",
    "health",
    "http",
    "listen",
    "logs",
    "metrics",
    "setup_logging",
]
