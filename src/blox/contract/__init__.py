"""blox.contract: the v0.3 wire contract, pure: pydantic schemas and the exact error texts.

`css` holds the cluster state service's JSON and the converters from stored records,
`scheduler` the daemon scheduler's; `texts` every error text the HTTP edges send. Nothing
here performs I/O; the APIs in `blox.css.api` and `blox.scheduler.api` render these values.
"""

from __future__ import annotations

from blox.contract import css, scheduler, texts

__all__ = ["css", "scheduler", "texts"]
