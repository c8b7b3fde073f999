"""blox.css.api: the cluster state service's v0.3 HTTP read API (FastAPI).

`create_app(store=...)` builds the app; `errors` renders every error in one place; the routes
live in `routes_tasks` and `routes_instances`. Streams join in a later increment.
"""

from __future__ import annotations

from blox.css.api.app import create_app

__all__ = ["create_app"]
