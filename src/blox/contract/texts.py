"""Every error text the cluster state service sends, as v0.3 spelled it (shared/spec/README.md).

Rendered only by `blox.css.api.errors`, always as a `text/plain; charset=utf-8` body followed
by a newline. Texts marked blox-ecs have no v0.3 counterpart (v0.3 had no such input or route).
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
