"""Every error text the cluster state service and the daemon scheduler send, as v0.3 spelled it
(shared/spec/README.md).

Rendered only by `blox.css.api.errors` and `blox.scheduler.api.errors`, always as a
`text/plain; charset=utf-8` body followed by a newline. Texts marked blox-ecs have no v0.3
counterpart (v0.3 had no such input or route).
"""

from __future__ import annotations

INSTANCE_NOT_FOUND = "Instance not found"
TASK_NOT_FOUND = "Task not found"
INVALID_STATUS = "Invalid status"
FILTERS_UNSUPPORTED = "At least one of the filters provided is unsupported"
FILTERS_REPEATED = "At least one of the filters provided is specified multiple times"
INVALID_CLUSTER = "Invalid cluster ARN or name"
INVALID_ENTITY_VERSION = "Invalid entity version"
ENTITY_VERSION_OUT_OF_RANGE = "Entity version is out of range"
# Never returned by v0.3 (it accepted every combination of task filters); kept for the record.
FILTER_COMBINATION_UNSUPPORTED = "The combination of filters provided are not supported"

UNEXPECTED_INTERNAL = "Unexpected internal server error"
UNEXPECTED_ENCODING = "Unexpected server error while encoding response"
UNEXPECTED_ROUTING = "Unexpected server error related to api handler function routing"

# Go's net/http texts for a path that matches no route.
PAGE_NOT_FOUND = "404 page not found"

# blox-ecs additions: 405 with `Allow` (v0.3 answered 404) and the optional paging parameters.
METHOD_NOT_ALLOWED = "405 method not allowed"
INVALID_MAX_RESULTS = "Invalid maxResults"
INVALID_NEXT_TOKEN = "Invalid nextToken"
# blox-ecs additions: the task filters containerInstance, family and group.
INVALID_CONTAINER_INSTANCE = "Invalid container instance ARN"
INVALID_FAMILY = "Invalid family"
INVALID_GROUP = "Invalid group"

# -- The daemon scheduler (shared/spec/scheduler-api.md). Templates take `str.format` fields;
# rendered only by `blox.scheduler.api.errors`, as plain text and a newline like the CSS's.
# FILTERS_REPEATED and INVALID_CLUSTER above are the scheduler's texts too. Note the scheduler
# spells the unsupported filter "not supported", the CSS "unsupported".
SCHEDULER_FILTERS_UNSUPPORTED = "At least one of the filters provided is not supported"
ENVIRONMENT_EXISTS = (
    "Error saving environment {name} to store: An environment with name {name} already exists"
)
TOKEN_OUTDATED = "Token '{token}' is outdated and does not match the environment token '{current}'"
DEPLOYMENT_EXISTS = "Deployment with token '{token}' already exists"
DEPLOYMENT_IN_PROGRESS = "There is already a deployment in progress: {id}"
ENVIRONMENT_NOT_FOUND = "Environment {name} does not exist"
DEPLOYMENT_NOT_FOUND = "Deployment {id} does not exist for environment {name}"
CLUSTER_INACTIVE = "Cluster is inactive"
TASK_DEFINITION_INACTIVE = "TaskDefinition is inactive"
SERVER_ERROR = "Server Error"
# blox-ecs additions: v0.3 crashed on a cluster ECS did not know (500) and sent ECS's own text
# for a task definition it did not know; the new routes and fields have texts of their own.
CLUSTER_NOT_FOUND = "Cluster {cluster} does not exist"
TASK_DEFINITION_NOT_FOUND = "TaskDefinition {task_definition} does not exist"
REVISION_NOT_FOUND = "Revision {revision} does not exist for environment {name}"
NO_EARLIER_REVISION = "Environment {name} has no earlier revision to roll back to"
ENVIRONMENT_DELETING = (
    "Environment {name} is being deleted: try again once its tasks have stopped, "
    "or delete it with force=true"
)
CLUSTER_IMMUTABLE = (
    "The cluster of environment {name} is {cluster} and cannot be changed; "
    "create another environment for cluster {requested}"
)
TOKEN_MISSING = "deploymentToken is required"
TOKEN_INVALID = "Invalid deploymentToken '{token}': it must be a lower-case UUID"
TOKEN_REPEATED = "deploymentToken is specified multiple times"
INVALID_FORCE = "Invalid force '{value}': use true or false"
INVALID_REVISION = "Invalid revision '{value}': it must be a positive integer"
INVALID_REQUEST = "Invalid request: {detail}"
NOTHING_TO_UPDATE = (
    "Nothing to update: give at least one of taskDefinition, instanceGroup, rollout, historyLimit"
)
