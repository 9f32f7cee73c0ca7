"""The project's exception types, in one place.

Vendor errors (NVML, amdsmi, sysfs) are re-raised as one of these, ``from`` the original, with a
message that says what to do about it.
"""

from __future__ import annotations


class IpwError(Exception):
    """Base class of every error ipw raises on purpose."""


class MeterUnavailable(IpwError):
    """A counter family is absent or unusable on this machine.

    ``reason`` says what was found, ``fix`` what the user can do (may be empty).
    """

    def __init__(self, family: str, reason: str, fix: str = "") -> None:
        self.family = family
        self.reason = reason
        self.fix = fix
        super().__init__(f"{family}: {reason}" + (f" Fix: {fix}" if fix else ""))


class MeterPermissionError(MeterUnavailable):
    """A counter exists but this process may not read it (names the file and the fix)."""


class MeterReadError(IpwError):
    """A counter that worked at start-up failed while being read."""


class InputFileError(IpwError, ValueError):
    """A malformed input file; the message names the file and the line."""

    def __init__(self, path: object, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class MissingExtra(IpwError):
    """An optional dependency is not installed; the message gives the install command."""

    def __init__(self, what: str, install: str) -> None:
        self.install = install
        super().__init__(f"{what} is not installed. Install it with: {install}")


class TooFewPointsError(IpwError, ValueError):
    """A law was asked to fit no more distinct points than it has free parameters.

    ``have``/``need`` (also ``n_points``/``n_needed``) count distinct points.
    """

    def __init__(self, what: str, have: int, need: int, hint: str = "") -> None:
        self.what = what
        self.have = self.n_points = have
        self.need = self.n_needed = need
        msg = (f"{what}: {have} point(s) given, at least {need} needed (one more than the law's "
               f"free parameters, so that the fit has residual degrees of freedom and an "
               f"uncertainty).")
        super().__init__(msg + (f" {hint}" if hint else ""))


class FitFailedError(IpwError, RuntimeError):
    """A least-squares fit did not converge from any starting point."""


class DegenerateDataError(IpwError, ValueError):
    """Data a fit cannot use: non-finite values, or a target that does not vary."""
