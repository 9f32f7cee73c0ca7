"""Errors raised by the CMR package; all are :class:`ipw.errors.IpwError` subclasses."""

from __future__ import annotations

from ipw.errors import InputFileError, IpwError


class CmrError(IpwError):
    """Base class of the CMR package's errors."""


class CsvValueError(InputFileError):
    """A missing column or a bad value in a CPT runs CSV: names the file, line and column."""

    def __init__(self, path: object, line: int | None, column: str, message: str) -> None:
        self.column = column
        super().__init__(path, line, f"column {column!r}: {message}")


class TooFewPointsError(CmrError, ValueError):
    """A law was asked to fit fewer points than it needs for an uncertainty estimate."""

    def __init__(self, what: str, have: int, need: int, hint: str = "") -> None:
        self.have = have
        self.need = need
        msg = (f"{what}: {have} point(s), but fitting needs at least {need} "
               f"(one more than the law's parameters, so the fit has an uncertainty).")
        super().__init__(msg + (f" {hint}" if hint else ""))


class FitFailedError(CmrError, RuntimeError):
    """The least-squares fit did not converge from any starting point."""


class InfeasibleToleranceError(CmrError, ValueError):
    """No mixture ratio keeps the general-loss increase within the tolerance eps."""

    def __init__(self, eps: float, smallest_increase: float, at_ratio: float, where: str) -> None:
        self.eps = eps
        self.smallest_increase = smallest_increase
        self.at_ratio = at_ratio
        super().__init__(
            f"{where}: no mixture ratio R in (0, 1] keeps the general-loss increase within "
            f"eps = {eps:g}; the smallest achievable increase is {smallest_increase:.4g} "
            f"(at R = {at_ratio:.3g}). Raise --eps to at least that, or train longer.")
