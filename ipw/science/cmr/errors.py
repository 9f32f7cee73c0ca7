"""Errors raised by the CMR package; all are :class:`ipw.core.errors.IpwError` subclasses."""

from __future__ import annotations

from ipw.core.errors import InputFileError, IpwError


class CmrError(IpwError):
    """Base class of the CMR package's errors."""


class CsvValueError(InputFileError):
    """A missing column or a bad value in a CPT runs CSV: names the file, line and column."""

    def __init__(self, path: object, line: int | None, column: str, message: str) -> None:
        self.column = column
        super().__init__(path, line, f"column {column!r}: {message}")




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
