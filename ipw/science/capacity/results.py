"""Saved Information Capacity results (kind ``capacity``): one row per (model, corpus).

    >>> from ipw.science.capacity.results import CapacityResults
    >>> CapacityResults(frame, settings).save("capacity-results/")  # capacity.json + capacity.csv
    >>> CapacityResults.load("capacity-results/").results

The table's columns are the fields of :class:`~ipw.science.capacity.api.CapacityResult` (units in the
names); ``settings`` records how the numbers were made (max_tokens, bias, averaging, ...).
``capacity.json`` also carries the rows as JSON records (``results``), for readers without pandas;
the CSV table is what :meth:`CapacityResults.load` reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ipw.science.results import Header, Result, read_table

#: Columns every saved capacity table has (the CapacityResult fields the report shows).
REQUIRED = ("model", "corpus", "information_capacity", "bias_bits", "bytes_per_token")


@dataclass(frozen=True, eq=False)
class CapacityResults(Result):
    """IC per model and corpus (a DataFrame of CapacityResult rows) and the settings used."""

    KIND = "capacity"
    VERSION = 1
    HEADER = "capacity.json"

    results: pd.DataFrame
    settings: dict = field(default_factory=dict)

    def to_parts(self) -> tuple[dict, dict[str, pd.DataFrame]]:
        records = self.results.to_dict(orient="records")
        return {"settings": dict(self.settings), "results": records}, {"capacity": self.results}

    @classmethod
    def from_parts(cls, header: Header) -> "CapacityResults":
        frame = read_table(header, "capacity")
        missing = [c for c in REQUIRED if c not in frame]
        if missing:
            raise ValueError(f"results table lacks column(s) {', '.join(missing)}")
        return cls(frame, dict(header.data.get("settings") or {}))


__all__ = ["CapacityResults"]
