"""Errors raised by the capacity package; all are :class:`ipw.core.errors.IpwError` subclasses."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from ipw.core.errors import InputFileError, IpwError
from ipw.engines.models import ModelNotFoundError  # noqa: F401 - re-exported: one type for every package


class CapacityError(IpwError):
    """Base class of the capacity package's errors."""


class EmptySampleError(InputFileError):
    """A sample is empty, whitespace only, or too short to score (it needs two tokens).

    ``path`` is the corpus file (``"<texts>"`` for texts passed in memory), ``line`` the 1-based
    line of the JSONL file or position in the list.
    """

    def __init__(self, path: object, line: int | None, reason: str) -> None:
        self.reason = reason
        super().__init__(path, line, reason)


class UnknownCorpusError(CapacityError, LookupError):
    """A corpus name that is neither shipped nor an existing file; lists the shipped ones."""

    def __init__(self, name: str, shipped: Iterable[str]) -> None:
        shipped = sorted(shipped)
        close = difflib.get_close_matches(name, shipped, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        super().__init__(
            f"unknown corpus {name!r}.{hint} Shipped corpora: {', '.join(shipped)}; "
            "or pass the path of a JSONL file with one {\"text\": ...} object per line.")


class UnsupportedConfigError(CapacityError, ValueError):
    """A model config that the decode-FLOPs counter cannot count faithfully."""

    def __init__(self, fields: Iterable[str], why: str) -> None:
        self.fields = tuple(fields)
        super().__init__(f"model config field(s) {', '.join(self.fields)}: {why}")
