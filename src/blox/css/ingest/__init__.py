"""Ingest: pollers that feed ECS events from a queue or stream to the processor, after apply.

`sqs` and `kinesis` hold the poller shells (`parse_queue` says which one a `--queue` value asks
for); `disposition` the pure decisions they branch on.
"""

from blox.css.ingest import disposition, kinesis, sqs
from blox.css.ingest.disposition import Checkpoint, Disposition, Outcome, parse_queue
from blox.css.ingest.kinesis import KinesisCounters, KinesisPoller, resolve_stream
from blox.css.ingest.sqs import IngestCounters, SqsPoller, resolve_queue

__all__ = [
    "Checkpoint",
    "Disposition",
    "IngestCounters",
    "KinesisCounters",
    "KinesisPoller",
    "Outcome",
    "SqsPoller",
    "disposition",
    "kinesis",
    "parse_queue",
    "resolve_queue",
    "resolve_stream",
    "sqs",
]
