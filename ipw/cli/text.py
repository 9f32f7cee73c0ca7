"""Frames as terminal text: a missing number is ``n/a`` with its reason below the table, never
``nan`` (the rule and the reasons: :mod:`ipw.core.missing`). pandas' ``to_string`` prints ``NaN``
and offers no per-cell text, hence this small formatter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ipw.core.missing import NA, missing


def _cell(v, numeric: bool) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (float, np.floating)) or (v is None and numeric):
        return NA if missing(v) else f"{float(v):.4g}"
    return str(v)


def table(frame: pd.DataFrame, why: Sequence[Mapping[str, str]] = (), key: str | None = None) -> str:
    """``frame`` as text, floats to 4 significant digits, missing ones ``n/a``; then one line per
    (column, reason) of ``why`` (one mapping per row, :func:`ipw.core.missing.reasons`) naming the
    rows by their ``key`` column where it is given."""
    shown = pd.DataFrame({c: [_cell(v, pd.api.types.is_numeric_dtype(frame[c])) for v in frame[c]] for c in frame},
                         columns=frame.columns)
    text = shown.to_string(index=False)
    notes: dict[tuple[str, str], list[str]] = {}
    for i, reasons in enumerate(why):
        for col, reason in reasons.items():
            if col in shown and i < len(shown) and shown[col].iloc[i] == NA:
                notes.setdefault((col, reason), []).append(str(frame[key].iloc[i]) if key else "")
    if notes:
        text += "\n"  # a blank line between the table and its notes
    for (col, reason), rows in notes.items():
        where = f" ({', '.join(rows)})" if key else ""
        text += f"\nn/a in {col}{where}: {reason}"
    return text
