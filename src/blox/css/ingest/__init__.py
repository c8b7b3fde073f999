"""Ingest: pollers that feed ECS events from a queue to the processor, acking after apply.

`sqs` holds the poller shell; `disposition` the pure decisions it branches on.
"""

from blox.css.ingest import disposition, sqs
from blox.css.ingest.disposition import Disposition, Outcome
from blox.css.ingest.sqs import IngestCounters, SqsPoller, resolve_queue

__all__ = [
    "Disposition",
    "IngestCounters",
    "Outcome",
    "SqsPoller",
    "disposition",
    "resolve_queue",
    "sqs",
]
