"""ECS-shaped errors raised by the simulator: the exact `__type` and message ECS sends.

`sim/api.py` renders them as `{"__type": ..., "message": ...}` with the class's HTTP status;
`sim/state` raises them before it mutates anything.

    SimError (BloxError)
     ├── ClusterNotFound              ClusterNotFoundException             (NotFound, Permanent)
     ├── TargetNotFound               TargetNotFoundException              (NotFound, Permanent)
     ├── InvalidParameter             InvalidParameterException            (Invalid, Permanent)
     ├── ClientFault                  ClientException                      (Invalid, Permanent)
     ├── SerializationFault           SerializationException               (Invalid, Permanent)
     ├── UnknownOperation             UnknownOperationException            (Invalid, Permanent)
     ├── AttributeLimitExceeded       AttributeLimitExceededException      (Invalid, Permanent)
     ├── ClusterContainsInstances     ClusterContainsContainerInstancesException (Conflict)
     ├── ClusterContainsTasks         ClusterContainsTasksException        (Conflict)
     ├── Throttled                    ThrottlingException                  (Unavailable, Temporary)
     └── ServerFault                  ServerException, HTTP 500            (Unavailable, Temporary)
"""

from __future__ import annotations

from typing import ClassVar

from blox import errors


class SimError(errors.BloxError):
    """Root of the simulator's ECS errors; `type_name` is the wire `__type`."""

    type_name: ClassVar[str] = "ClientException"
    status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ClusterNotFound(SimError, errors.NotFound, errors.Permanent):
    """The cluster named in the request does not exist or is INACTIVE."""

    type_name = "ClusterNotFoundException"


class TargetNotFound(SimError, errors.NotFound, errors.Permanent):
    """PutAttributes names a target (container instance) that does not exist."""

    type_name = "TargetNotFoundException"


class InvalidParameter(SimError, errors.Invalid, errors.Permanent):
    """A parameter is out of range, unknown or refers to a missing entity."""

    type_name = "InvalidParameterException"


class ClientFault(SimError, errors.Invalid, errors.Permanent):
    """ECS's catch-all client error (e.g. an unknown task definition on Describe)."""

    type_name = "ClientException"


class SerializationFault(SimError, errors.Invalid, errors.Permanent):
    """The body is not JSON, or a value has the wrong JSON type for its shape."""

    type_name = "SerializationException"


class UnknownOperation(SimError, errors.Invalid, errors.Permanent):
    """`X-Amz-Target` is missing or names an operation the simulator does not serve."""

    type_name = "UnknownOperationException"


class AttributeLimitExceeded(SimError, errors.Invalid, errors.Permanent):
    """More than 10 custom attributes on one resource (ECS limit)."""

    type_name = "AttributeLimitExceededException"


class ClusterContainsInstances(SimError, errors.Conflict, errors.Permanent):
    """DeleteCluster while ACTIVE or DRAINING container instances are registered."""

    type_name = "ClusterContainsContainerInstancesException"


class ClusterContainsTasks(SimError, errors.Conflict, errors.Permanent):
    """DeleteCluster while tasks are still active in the cluster."""

    type_name = "ClusterContainsTasksException"


class Throttled(SimError, errors.Unavailable, errors.Temporary):
    """The operation's token bucket is empty."""

    type_name = "ThrottlingException"


class ServerFault(SimError, errors.Unavailable, errors.Temporary):
    """An unexpected exception inside the simulator (logged with its traceback)."""

    type_name = "ServerException"
    status = 500
