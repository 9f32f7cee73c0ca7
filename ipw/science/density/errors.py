"""Errors of the Densing Law package, each saying what went wrong and what to do about it."""

from __future__ import annotations

from ipw.core.errors import DegenerateDataError, FitFailedError, IpwError, TooFewPointsError

__all__ = [
    "BadValue", "DegenerateDataError", "DensityError", "EmptySide", "FitFailedError",
    "LossOutOfRange", "NoGrowth", "ScoreOutOfRange", "TooFewPointsError",
]


class DensityError(IpwError, ValueError):
    """Base class of the errors raised by :mod:`ipw.science.density`."""


class BadValue(DensityError):
    """A value outside its unit's range: a score that is not a fraction, a loss that is not > 0."""


class ScoreOutOfRange(DensityError):
    """A score lies outside the open range (d, c + d) of the fitted sigmoid: no loss maps to it."""


class LossOutOfRange(DensityError):
    """A loss lies at or below the loss law's floor b*D0^-beta: no finite model size reaches it."""


class EmptySide(DensityError):
    """A before/after split left no models on one side of the cut-off date."""

    def __init__(self, side: str, cutoff: object, n_other: int) -> None:
        self.side = side
        word = "before" if side == "before" else "on or after"
        other = "on or after" if side == "before" else "before"
        super().__init__(
            f"--cutoff {cutoff}: the '{side}' side is empty: no model was released {word} "
            f"{cutoff} ({n_other} released {other} it). Pick a date inside the table's range.")


class NoGrowth(DensityError):
    """The fitted density trend does not grow (A <= 0): there is no doubling time."""
