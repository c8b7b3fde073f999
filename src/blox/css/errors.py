"""Errors of the cluster state service.

CssError
 ├── ApplyContended(Conflict, Temporary)   every compare-and-swap attempt lost to a racing writer
 ├── FilterUnsupported(Invalid)            a list query names a parameter the route does not know
 ├── FilterRepeated(Invalid)               a list query gives one parameter more than once
 ├── StatusInvalid(Invalid)                a `status` filter outside the route's statuses
 ├── ClusterInvalid(Invalid)               a `cluster` filter that is neither a name nor an ARN
 ├── ContainerInstanceInvalid(Invalid)     `containerInstance` is not a container instance ARN
 ├── FamilyInvalid(Invalid)                `family` is no task definition family name (blox-ecs)
 ├── GroupInvalid(Invalid)                 `group` is empty or too long (blox-ecs)
 ├── MaxResultsInvalid(Invalid)            `maxResults` is not an integer in range (blox-ecs)
 ├── NextTokenInvalid(Invalid)             `nextToken` is not one this query handed out (blox-ecs)
 ├── RouteNotFound(NotFound)               a cluster or ARN in a path fails its pattern
 ├── TaskNotFound(NotFound)                no live record of the task asked for
 ├── InstanceNotFound(NotFound)            no live record of the container instance asked for
 └── RecordUnreadable(Permanent)           a stored record cannot be decoded (a bug: answer 500)

Parse failures are `blox.model.errors.EventInvalid` (Permanent: dead-letter the message);
store failures stay `blox.store.errors.StoreError` (do not ack; the queue redelivers).
`blox.css.api.errors` renders each of these with its v0.3 status and text.
"""

from __future__ import annotations

from blox import errors


class CssError(errors.BloxError):
    """Root of the cluster state service's errors."""


class ApplyContended(CssError, errors.Conflict, errors.Temporary):
    """Raised by the processor when every CAS attempt on one record failed; retry later."""

    delay_s = 1.0


class FilterUnsupported(CssError, errors.Invalid):
    """Raised by `queries` for a query parameter the list route does not support."""


class FilterRepeated(CssError, errors.Invalid):
    """Raised by `queries` when a query parameter is given more than once."""


class StatusInvalid(CssError, errors.Invalid):
    """Raised by `queries` for a status that is not one of the route's statuses."""


class ClusterInvalid(CssError, errors.Invalid):
    """Raised by `queries` for a cluster filter that is neither a cluster name nor its ARN."""


class ContainerInstanceInvalid(CssError, errors.Invalid):
    """Raised by `queries` for a `containerInstance` filter that is not a container instance ARN."""


class FamilyInvalid(CssError, errors.Invalid):
    """Raised by `queries` for a `family` filter that is not a task definition family name."""


class GroupInvalid(CssError, errors.Invalid):
    """Raised by `queries` for a `group` filter that is empty or longer than ECS allows."""


class MaxResultsInvalid(CssError, errors.Invalid):
    """Raised by `queries` when `maxResults` is not an integer from 1 to MAX_RESULTS."""


class NextTokenInvalid(CssError, errors.Invalid):
    """Raised by `queries` for a `nextToken` that this query did not hand out."""


class RouteNotFound(CssError, errors.NotFound):
    """Raised by `queries` when a path's cluster or ARN fails its pattern (v0.3: no route)."""


class TaskNotFound(CssError, errors.NotFound):
    """Raised by `queries.get_task` when the task has no live record."""


class InstanceNotFound(CssError, errors.NotFound):
    """Raised by `queries.get_instance` when the container instance has no live record."""


class RecordUnreadable(CssError, errors.Permanent):
    """Raised by `queries` when a stored record does not decode; the API answers 500."""
