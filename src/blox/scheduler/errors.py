"""Errors of the daemon scheduler's environments, deployments and ECS catalog.

Each error's message is its exact text (`blox.contract.texts`), so the HTTP edge
(`blox.scheduler.api.errors`) only picks the status; the controller reads the categories.

SchedulerError
 ├── EnvironmentNotFound(NotFound)          no such environment (or it is being deleted)
 ├── DeploymentNotFound(NotFound)           no such deployment of the environment
 ├── RevisionNotFound(NotFound)             no such revision kept for the environment
 ├── ClusterNotFound(NotFound)              ECS does not know the cluster
 ├── ClusterInactive(NotFound)              the cluster was deleted (INACTIVE)
 ├── TaskDefinitionNotFound(NotFound)       ECS does not know the task definition
 ├── TaskDefinitionInactive(NotFound)       the task definition was deregistered (INACTIVE)
 ├── EnvironmentExists(Conflict)            create: the name is taken          (v0.3: 400)
 ├── EnvironmentDeleting(Conflict)          create: the name is still being deleted (409)
 ├── TokenOutdated(Conflict)                deploy: not the current revision's token (400)
 ├── DeploymentExists(Conflict)             deploy: that token was deployed already   (400)
 ├── DeploymentInProgress(Conflict)         deploy: one deployment is still moving    (400)
 ├── TransitionInvalid(Conflict, Permanent) a deployment status may not change that way
 ├── Contended(Conflict, Temporary)         every compare-and-swap attempt lost to racing writers
 ├── RequestInvalid(Invalid)                a request the scheduler cannot take, with what is wrong
 └── RecordUnreadable(Permanent)            stored bytes are not a record this code wrote (a bug)

Invalid environment values (names, shares, constraints, policies) are the model's
`blox.model.errors.DaemonInvalid`; store failures stay `blox.store.errors.StoreError`; ECS
failures other than "not found" stay `blox.ecs.EcsError`.
"""

from __future__ import annotations

from blox import errors
from blox.contract import texts


class SchedulerError(errors.BloxError):
    """Root of the daemon scheduler's errors."""


class EnvironmentNotFound(SchedulerError, errors.NotFound):
    """Raised when the environment named has no record, or is being deleted."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(texts.ENVIRONMENT_NOT_FOUND.format(name=name))


class DeploymentNotFound(SchedulerError, errors.NotFound):
    """Raised when the environment has no deployment of that id."""

    def __init__(self, name: str, deployment_id: str) -> None:
        self.name = name
        self.deployment_id = deployment_id
        super().__init__(texts.DEPLOYMENT_NOT_FOUND.format(id=deployment_id, name=name))


class RevisionNotFound(SchedulerError, errors.NotFound):
    """Raised when the revision asked for never existed or was pruned from the history."""

    def __init__(self, name: str, number: int) -> None:
        self.name = name
        self.number = number
        super().__init__(texts.REVISION_NOT_FOUND.format(revision=number, name=name))


class ClusterNotFound(SchedulerError, errors.NotFound, errors.Permanent):
    """Raised by the catalog when ECS does not know the cluster (v0.3 crashed with a 500)."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        super().__init__(texts.CLUSTER_NOT_FOUND.format(cluster=cluster))


class ClusterInactive(SchedulerError, errors.NotFound, errors.Permanent):
    """Raised by the catalog when the cluster is INACTIVE (deleted)."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        super().__init__(texts.CLUSTER_INACTIVE)


class TaskDefinitionNotFound(SchedulerError, errors.NotFound, errors.Permanent):
    """Raised by the catalog when ECS does not know the task definition."""

    def __init__(self, task_definition: str) -> None:
        self.task_definition = task_definition
        super().__init__(texts.TASK_DEFINITION_NOT_FOUND.format(task_definition=task_definition))


class TaskDefinitionInactive(SchedulerError, errors.NotFound, errors.Permanent):
    """Raised by the catalog when the task definition is INACTIVE (deregistered)."""

    def __init__(self, task_definition: str) -> None:
        self.task_definition = task_definition
        super().__init__(texts.TASK_DEFINITION_INACTIVE)


class EnvironmentExists(SchedulerError, errors.Conflict, errors.Permanent):
    """Raised by create when an environment of that name exists."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(texts.ENVIRONMENT_EXISTS.format(name=name))


class EnvironmentDeleting(SchedulerError, errors.Conflict):
    """Raised by create while an environment of that name is still stopping its tasks."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(texts.ENVIRONMENT_DELETING.format(name=name))


class TokenOutdated(SchedulerError, errors.Conflict, errors.Permanent):
    """Raised by create_deployment for a token other than the current revision's."""

    def __init__(self, token: str, current: str) -> None:
        self.token = token
        self.current = current
        super().__init__(texts.TOKEN_OUTDATED.format(token=token, current=current))


class DeploymentExists(SchedulerError, errors.Conflict, errors.Permanent):
    """Raised by create_deployment when the token was deployed already."""

    def __init__(self, token: str) -> None:
        self.token = token
        super().__init__(texts.DEPLOYMENT_EXISTS.format(token=token))


class DeploymentInProgress(SchedulerError, errors.Conflict):
    """Raised by create_deployment while another deployment is pending or running."""

    def __init__(self, deployment_id: str) -> None:
        self.deployment_id = deployment_id
        super().__init__(texts.DEPLOYMENT_IN_PROGRESS.format(id=deployment_id))


class TransitionInvalid(SchedulerError, errors.Conflict, errors.Permanent):
    """Raised by set_deployment_status for a change out of a final status."""


class Contended(SchedulerError, errors.Conflict, errors.Temporary):
    """Raised when every compare-and-swap attempt on an environment lost to racing writers."""

    delay_s = 0.5


class RequestInvalid(SchedulerError, errors.Invalid, errors.Permanent):
    """Raised for a request the scheduler cannot take; the message says what is wrong."""


class RecordUnreadable(SchedulerError, errors.Permanent):
    """Raised when a stored environment, revision or deployment does not decode (a bug: 500)."""
