"""Token buckets in fake time, and the O(page) sequence index under removals."""

from __future__ import annotations

import pytest

from blox.clock import ManualClock
from blox.sim import errors
from blox.sim.state.paging import SeqIndex, decode_token, encode_token
from blox.sim.throttle import Throttle


def test_a_bucket_empties_then_refills_at_its_rate(clock: ManualClock) -> None:
    throttle = Throttle(clock=clock, rates={"ListTasks": (2.0, 1.0)})
    throttle.take("ListTasks")
    throttle.take("ListTasks")
    with pytest.raises(errors.Throttled):
        throttle.take("ListTasks")
    clock._elapsed = 1.0
    throttle.take("ListTasks")


def test_rates_can_be_lowered_at_run_time(clock: ManualClock) -> None:
    throttle = Throttle(clock=clock)
    throttle.set_rate("DescribeTasks", capacity=1, rate_per_s=0)
    throttle.take("DescribeTasks")
    with pytest.raises(errors.Throttled):
        throttle.take("DescribeTasks")


def test_seq_index_pages_skip_removed_entries_and_survive_compaction() -> None:
    index = SeqIndex()
    for seq in range(1, 2001):
        index.add(seq)
    for seq in range(1, 2001, 2):
        index.discard(seq)
    index.add(3)  # out of order re-insert
    page, more = index.page(after=0, limit=3)
    assert (page, more) == ([2, 3, 4], True)
    assert len(index) == 1001


@pytest.mark.parametrize("token", ["garbage", encode_token(5)[:-3] + "!!!", "Zm9vOjE="])
def test_a_foreign_next_token_is_an_invalid_parameter(token: str) -> None:
    with pytest.raises(errors.InvalidParameter):
        decode_token(token)


def test_a_next_token_round_trips() -> None:
    assert decode_token(encode_token(42)) == 42
