"""blox.sim: a local ECS (the ECS JSON 1.1 API subset blox uses) with real events and faults.

Imports only blox.errors and blox.clock (and boto3, to publish events to moto's SQS or
EventBridge). `state/` holds pure, clock-driven resources; `api.py` translates the wire.
"""

__all__: list[str] = []
