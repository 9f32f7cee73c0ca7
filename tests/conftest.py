from __future__ import annotations

from pathlib import Path

import pytest

from ipw.core import clock as core_clock
from tests.fakes.clock import FakeClock

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    """Simulated time, patched in where ipw stamps readings."""
    fake = FakeClock()
    monkeypatch.setattr(core_clock, "now", fake)
    return fake
