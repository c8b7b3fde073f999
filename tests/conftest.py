"""What every test needs: a manual clock."""

from __future__ import annotations

import pytest

from blox.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test advances it."""
    return ManualClock()
