"""Helpers of `bench.scheduler`: what the simulator shows (the truth), and the services' counters.

`Watcher.until_running` polls the simulator the way an operator would check ECS itself:
ListTasks (desiredStatus RUNNING, every page) and DescribeTasks (100 a call) of the tasks not
yet confirmed, until every container instance asked for runs a RUNNING task of the target task
definition; then it walks every RUNNING-desired task once more to confirm it and to count
instances with more than one live task (double starts). The figure it returns does not depend
on how often it polls: a task's `startedAt` is the simulator's own time of PENDING → RUNNING,
so "all RUNNING" is the latest `startedAt` among the tasks found. `stopped_tasks` describes the
tasks that were stopped (old revisions), whose `stoppingAt` / `stoppedAt` the rolling update's
analysis needs. The reads are unthrottled in this simulator (`scheduler_stack.bench_rates`).

`scrape` reads one Prometheus text page (the scheduler's `/metrics`) into name → value.
Caller: `bench.scheduler`.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
import httpx
from botocore.config import Config
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Placed", "Seen", "Watcher", "ecs_client", "scrape"]

PAGE = 100
Task = dict[str, Any]


def ecs_client(endpoint: str) -> Any:
    """A boto3 ECS client on the simulator (placeholder keys, no retries of its own)."""
    config = Config(retries={"total_max_attempts": 1}, max_pool_connections=4, read_timeout=60)
    return boto3.session.Session().client(
        "ecs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


def _epoch(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


@dataclass(frozen=True, slots=True)
class Placed:
    """One task as DescribeTasks shows it; times are epoch seconds (None: not yet)."""

    arn: str
    instance: str
    definition: str
    last_status: str
    created: float
    started: float | None
    stopping: float | None
    stopped: float | None

    @classmethod
    def of(cls, task: Task) -> Placed:
        return cls(
            arn=task["taskArn"],
            instance=task.get("containerInstanceArn", ""),
            definition=task["taskDefinitionArn"],
            last_status=task["lastStatus"],
            created=_epoch(task["createdAt"]) or 0.0,
            started=_epoch(task.get("startedAt")),
            stopping=_epoch(task.get("stoppingAt")),
            stopped=_epoch(task.get("stoppedAt")),
        )


@dataclass
class Seen:
    """What `until_running` found: each instance's RUNNING target task, and how it looked."""

    tasks: dict[str, Placed]  # container instance ARN → its first RUNNING target task
    confirmed_at: float  # epoch seconds when the observer saw the last one
    duplicates: int  # instances with more than one live (desired RUNNING) task
    polls: int
    reads: Counter[str] = field(default_factory=Counter)  # read calls by operation
    complete: bool = True

    @property
    def last_started(self) -> float:
        return max((t.started or math.nan for t in self.tasks.values()), default=math.nan)


class Watcher:
    """Reads one cluster of the simulator, paginated, as the truth of the benchmark."""

    def __init__(self, endpoint: str, cluster: str) -> None:
        self.ecs = ecs_client(endpoint)
        self.cluster = cluster
        self.reads: Counter[str] = Counter()

    def close(self) -> None:
        self.ecs.close()

    def task_arns(self, desired_status: str) -> list[str]:
        """Every task ARN of the cluster with this desiredStatus (ListTasks, every page)."""
        arns: list[str] = []
        request: dict[str, Any] = {
            "cluster": self.cluster,
            "desiredStatus": desired_status,
            "maxResults": PAGE,
        }
        while True:
            page = self.ecs.list_tasks(**request)
            self.reads["ListTasks"] += 1
            arns.extend(page["taskArns"])
            if not page.get("nextToken"):
                return arns
            request["nextToken"] = page["nextToken"]

    def describe(self, arns: Iterable[str]) -> list[Placed]:
        """The tasks named, 100 per DescribeTasks call."""
        wanted = list(arns)
        found: list[Placed] = []
        for first in range(0, len(wanted), PAGE):
            batch = wanted[first : first + PAGE]
            page = self.ecs.describe_tasks(cluster=self.cluster, tasks=batch)
            self.reads["DescribeTasks"] += 1
            found.extend(Placed.of(t) for t in page["tasks"])
        return found

    def until_running(
        self, *, instances: set[str], definition: str, timeout_s: float, poll_s: float = 0.5
    ) -> Seen:
        """Poll until each of `instances` runs a RUNNING task of `definition` (or time is up)."""
        before = Counter(self.reads)
        deadline = time.monotonic() + timeout_s
        confirmed: dict[str, Placed] = {}
        known: set[str] = set()
        polls = 0
        while True:
            polls += 1
            fresh = [a for a in self.task_arns("RUNNING") if a not in known]
            for task in self.describe(fresh):
                if task.definition != definition:
                    known.add(task.arn)  # another revision's: it never becomes the target
                elif task.last_status == "RUNNING":
                    known.add(task.arn)
                    if task.instance in instances:
                        confirmed.setdefault(task.instance, task)
            if instances <= confirmed.keys() or time.monotonic() > deadline:
                break
            time.sleep(poll_s)
        seen_at = time.time()
        live = self.describe(self.task_arns("RUNNING"))
        per_instance = Counter(t.instance for t in live)
        running = {t.arn for t in live if t.last_status == "RUNNING"}
        confirmed = {i: t for i, t in confirmed.items() if t.arn in running}  # still RUNNING
        return Seen(
            tasks=confirmed,
            confirmed_at=seen_at,
            duplicates=sum(1 for n in per_instance.values() if n > 1),
            polls=polls,
            reads=Counter(self.reads) - before,
            complete=instances <= confirmed.keys(),
        )

    def stopped_tasks(self, definition: str) -> dict[str, Placed]:
        """Container instance ARN → its stopped task of `definition` (the last one stopped)."""
        found: dict[str, Placed] = {}
        for task in self.describe(self.task_arns("STOPPED")):
            if task.definition != definition or task.stopped is None:
                continue
            known = found.get(task.instance)
            if known is None or (known.stopped or 0.0) < task.stopped:
                found[task.instance] = task
        return found


def scrape(url: str) -> dict[str, float]:
    """A Prometheus text page as `name{labels}` → value (labels as k=v, comma-joined)."""
    text = httpx.get(url, timeout=30).text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values
