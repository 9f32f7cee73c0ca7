"""Errors of the Densing Law package, each saying what went wrong and what to do about it."""

from __future__ import annotations

from ipw.errors import IpwError


class DensityError(IpwError, ValueError):
    """Base class of the errors raised by :mod:`ipw.density`."""


class TooFewPoints(DensityError):
    """A fit was asked for with no more points than free parameters."""

    def __init__(self, what: str, n_points: int, n_needed: int) -> None:
        self.n_points = n_points
        self.n_needed = n_needed
        super().__init__(
            f"{what}: {n_points} point(s) given, at least {n_needed} needed "
            f"(more points than free parameters, so that the fit has residual degrees of freedom)."
        )


class FitDidNotConverge(DensityError):
    """The least-squares optimiser stopped without a usable solution."""


class ScoreOutOfRange(DensityError):
    """A score lies outside the open range (d, c + d) of the fitted sigmoid: no loss maps to it."""


class LossOutOfRange(DensityError):
    """A loss lies at or below the loss law's floor b*D0^-beta: no finite model size reaches it."""
