"""blox.css.api: the cluster state service's v0.3 HTTP API (FastAPI).

`create_app(store=...)` builds the app; `errors` renders every error in one place; the routes
live in `routes_tasks`, `routes_instances` and `routes_streams`.
"""

from __future__ import annotations

from blox.css.api.app import create_app

__all__ = ["create_app"]
