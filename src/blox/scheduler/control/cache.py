"""The informer's memory of one kind (tasks or container instances), kept as planner values.

`Kept` converts a CSS item into the planner's value (`ObservedTask`, `ObservedInstance`) once,
when its change arrives, and files it by cluster: a controller pass asks `view(cluster)` and
gets an immutable tuple, built once after the cluster's last change and shared by every pass
until the next one, instead of converting the whole snapshot on every pass.
`apply(version, item)` takes one streamed change, `remove(arn)` forgets one entity,
`replace(listed)` makes a list the whole truth. Caller: `informer.Informer`.

Assumptions / Invariants:
- Only a strictly higher entityVersion replaces an entry (list and stream may repeat one);
  a relist keeps an entry the stream brought in at a higher version than the list's, reuses
  the value of an entry whose version did not change and forgets what it does not show.
- A view is never mutated: a change drops the cluster's cached tuple, so a pass that holds
  one keeps a consistent snapshot while changes go on arriving.
- An entity filed under one cluster moves if a later version names another.
- Synchronous and I/O-free: the informer calls it on the event loop, between awaits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, NamedTuple, TypeVar

__all__ = ["Kept"]

Item = TypeVar("Item")  # what the CSS sends (css.TaskPublic, css.ContainerInstancePublic)
Seen = TypeVar("Seen")  # what the planner reads (ObservedTask, ObservedInstance)


class _Entry(NamedTuple):
    version: int
    cluster: str


class Kept(Generic[Item, Seen]):
    """ARN → (entityVersion, cluster ARN), and per cluster ARN → planner value."""

    def __init__(
        self,
        *,
        arn: Callable[[Item], str],
        cluster: Callable[[Item], str],
        version: Callable[[Item], int],
        convert: Callable[[Item], Seen],
    ) -> None:
        self._arn = arn
        self._cluster = cluster
        self._version = version
        self._convert = convert
        self._entries: dict[str, _Entry] = {}
        self._clusters: dict[str, dict[str, Seen]] = {}  # cluster ARN → ARN → value
        self._views: dict[str, tuple[Seen, ...]] = {}  # cluster ARN → its values, frozen
        self.conversions = 0  # items converted so far (a relist of unchanged items adds none)

    def __len__(self) -> int:
        return len(self._entries)

    def view(self, cluster: str) -> tuple[Seen, ...]:
        """The values of `cluster`, as an immutable tuple (shared until the cluster changes)."""
        found = self._views.get(cluster)
        if found is None:
            found = tuple(self._clusters.get(cluster, {}).values())
            self._views[cluster] = found
        return found

    def cluster_of(self, arn: str) -> str | None:
        """The cluster ARN `arn` was last seen in, or None when it is not known."""
        entry = self._entries.get(arn)
        return None if entry is None else entry.cluster

    def version_of(self, arn: str) -> int | None:
        """The entityVersion kept for `arn`, or None when it is not known."""
        entry = self._entries.get(arn)
        return None if entry is None else entry.version

    def apply(self, version: int, item: Item) -> bool:
        """Take one change; False (nothing done) when a version as high is kept already."""
        arn = self._arn(item)
        known = self._entries.get(arn)
        if known is not None and known.version >= version:
            return False
        cluster = self._cluster(item)
        if known is not None and known.cluster != cluster:
            self._drop(arn, known.cluster)
        self._file(arn, version, cluster, self._convert(item))
        self.conversions += 1
        return True

    def remove(self, arn: str) -> bool:
        """Forget `arn` (a deletion); False when it was not known."""
        known = self._entries.pop(arn, None)
        if known is None:
            return False
        self._drop(arn, known.cluster)
        return True

    def replace(self, listed: Iterable[Item]) -> None:
        """Make `listed` the whole truth (see the Invariants for what a newer entry keeps)."""
        entries: dict[str, _Entry] = {}
        clusters: dict[str, dict[str, Seen]] = {}
        for item in listed:
            arn, version = self._arn(item), self._version(item)
            known = self._entries.get(arn)
            kept = None if known is None else self._clusters[known.cluster].get(arn)
            if known is not None and kept is not None and known.version >= version:
                entries[arn] = known
                clusters.setdefault(known.cluster, {})[arn] = kept
                continue
            cluster = self._cluster(item)
            entries[arn] = _Entry(version, cluster)
            clusters.setdefault(cluster, {})[arn] = self._convert(item)
            self.conversions += 1
        self._entries, self._clusters, self._views = entries, clusters, {}

    def _file(self, arn: str, version: int, cluster: str, value: Seen) -> None:
        self._entries[arn] = _Entry(version, cluster)
        self._clusters.setdefault(cluster, {})[arn] = value
        self._views.pop(cluster, None)

    def _drop(self, arn: str, cluster: str) -> None:
        values = self._clusters.get(cluster)
        if values is not None:
            values.pop(arn, None)
            if not values:
                del self._clusters[cluster]
        self._views.pop(cluster, None)
