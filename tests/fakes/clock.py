"""A simulated monotonic clock, patched in where ipw reads time, so window tests are exact."""

from __future__ import annotations


class FakeClock:
    """Time in seconds that moves only when told, plus ``tick_s`` per read (the cost of a read)."""

    def __init__(self, start_s: float = 1000.0, tick_s: float = 1e-6) -> None:
        self.t = start_s
        self.tick_s = tick_s

    def __call__(self) -> float:
        self.t += self.tick_s
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
