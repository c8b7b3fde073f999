"""What the simulator's state announces after every change of a task or container instance.

The state calls each listener synchronously, in commit order, with one `EntityChange` per
changed entity; `sim/events.py` turns them into EventBridge envelopes. Listeners must not
raise and must not call back into the state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

EntityKind = Literal["task", "container_instance"]


@dataclass(frozen=True)
class EntityChange:
    """One entity after one change.

    `detail` is the object DescribeTasks / DescribeContainerInstances returns for the entity
    (botocore's `Task` / `ContainerInstance` shape, camelCase keys, optional fields left out
    rather than empty) plus the two fields only events carry, `clusterArn` and `updatedAt`,
    with timestamps as timezone-aware `datetime` values (the API renders
    them as epoch seconds, events as ISO-8601 strings) and `version` the entity's own counter,
    raised by exactly one for each change.
    """

    kind: EntityKind
    detail: dict[str, Any]
    account: str
    region: str
    time: datetime


Listener = Callable[[EntityChange], None]
