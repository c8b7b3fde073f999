"""Per-operation token buckets that make the simulator throttle like ECS.

Each operation has a bucket of `capacity` tokens refilled at `rate_per_s` on the injected
clock; a request takes one token or fails with ThrottlingException ("Rate exceeded"), so
clients must back off. Fault injection lowers rates at run time with `set_rate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from blox.clock import Clock
from blox.sim import errors

# (burst capacity, sustained requests per second), close to ECS's published API throttles:
# reads are refilled at 20/s with bursts of 100 (50 for the rest); task launches at 40/s.
DEFAULT_RATE = (50.0, 20.0)
ECS_RATES: dict[str, tuple[float, float]] = {
    "DescribeTasks": (100.0, 20.0),
    "DescribeContainerInstances": (100.0, 20.0),
    "DescribeClusters": (100.0, 20.0),
    "DescribeTaskDefinition": (100.0, 20.0),
    "ListTasks": (100.0, 20.0),
    "ListContainerInstances": (100.0, 20.0),
    "ListClusters": (100.0, 20.0),
    "ListTaskDefinitions": (100.0, 20.0),
    "ListAttributes": (100.0, 20.0),
    "RunTask": (100.0, 40.0),
    "StartTask": (100.0, 40.0),
    "StopTask": (100.0, 40.0),
    "RegisterContainerInstance": (50.0, 20.0),
    "DeregisterContainerInstance": (50.0, 20.0),
    "UpdateContainerInstancesState": (50.0, 20.0),
    "RegisterTaskDefinition": (20.0, 1.0),
}


@dataclass(slots=True)
class Bucket:
    """One operation's tokens; refilled lazily when a request arrives."""

    capacity: float
    rate_per_s: float
    tokens: float
    updated: float

    def take(self, now: float) -> bool:
        """Refill for the time since the last request, then take a token if there is one."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Throttle:
    """Token buckets by operation name."""

    def __init__(
        self,
        *,
        clock: Clock,
        rates: Mapping[str, tuple[float, float]] | None = None,
        default: tuple[float, float] = DEFAULT_RATE,
    ) -> None:
        self.clock = clock
        self.default = default
        self.rates = dict(ECS_RATES if rates is None else rates)
        self.buckets: dict[str, Bucket] = {}

    def bucket(self, operation: str) -> Bucket:
        """The operation's bucket, created full on first use."""
        found = self.buckets.get(operation)
        if found is None:
            capacity, rate = self.rates.get(operation, self.default)
            found = Bucket(capacity, rate, capacity, self.clock.monotonic())
            self.buckets[operation] = found
        return found

    def set_rate(self, operation: str, *, capacity: float, rate_per_s: float) -> None:
        """Change an operation's bucket now (tokens are capped at the new capacity)."""
        self.rates[operation] = (capacity, rate_per_s)
        bucket = self.bucket(operation)
        bucket.capacity, bucket.rate_per_s = capacity, rate_per_s
        bucket.tokens = min(bucket.tokens, capacity)

    def take(self, operation: str) -> None:
        """Spend one token of `operation`; ThrottlingException when the bucket is empty."""
        if not self.bucket(operation).take(self.clock.monotonic()):
            raise errors.Throttled("Rate exceeded")
