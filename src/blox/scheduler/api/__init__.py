"""blox.scheduler.api: the daemon scheduler's v0.3 HTTP API and its additions (FastAPI).

`create_app(store=..., catalog=...)` builds the app; `errors` renders every error in one place;
the routes live in `routes_environments` and `routes_deployments`.
"""

from __future__ import annotations

from blox.scheduler.api.app import HttpMetrics, create_app

__all__ = ["HttpMetrics", "create_app"]
