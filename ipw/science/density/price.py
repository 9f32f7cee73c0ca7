"""The inference-price corollary of the densing law (Xiao et al., arXiv 2412.04315v2, Sec. 3.3).

If capability at a fixed level needs exponentially fewer parameters over time, its inference
price falls exponentially too. The paper's example: a GPT-3.5-level model cost $20 per million
tokens in December 2022 and $0.075 per million tokens in August 2024, 266.7 times less, which it
states as halving about every 2.6 months.

Units: prices in any currency per any fixed token count (the ratio is unit-free); time in days;
months of 30.4375 days (365.25 / 12), as in :mod:`ipw.science.density.trend`.

The paper gives only the months, not the days. Over whole calendar months, 2022-12-01 to
2024-08-31 is 639 days = 21.0 months and gives 2.61 months per halving; mid-month to mid-month
(20.0 months) gives 2.49. :func:`price_trend` takes the dates you choose and says which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from ipw.science.density.errors import BadValue
from ipw.science.density.trend import DAYS_PER_MONTH


@dataclass(frozen=True)
class PriceTrend:
    """An exponential price fall between two (date, price) points."""

    start: date
    end: date
    price_start: float
    price_end: float

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def ratio(self) -> float:
        """price_start / price_end (266.7 for $20 -> $0.075)."""
        return self.price_start / self.price_end

    @property
    def rate_per_day(self) -> float:
        """k in price(t) = price_start * exp(-k t), t in days: ln(ratio) / days."""
        return math.log(self.ratio) / self.days

    @property
    def halving_days(self) -> float:
        """ln 2 / k: days for the price to halve."""
        return math.log(2.0) / self.rate_per_day

    @property
    def halving_months(self) -> float:
        return self.halving_days / DAYS_PER_MONTH


def price_trend(start: date, price_start: float, end: date, price_end: float) -> PriceTrend:
    """The exponential fall from ``price_start`` at ``start`` to ``price_end`` at ``end``."""
    for name, value in (("price_start", price_start), ("price_end", price_end)):
        if not (math.isfinite(value) and value > 0):
            raise BadValue(f"{name} = {value!r}: prices must be positive numbers")
    if end <= start:
        raise BadValue(f"end {end} must come after start {start}")
    if price_end >= price_start:
        raise BadValue(f"the price did not fall ({price_start:g} -> {price_end:g}): no halving time")
    return PriceTrend(start, end, float(price_start), float(price_end))


#: The paper's example (Sec. 3.3): $20 -> $0.075 per million tokens, Dec 2022 -> Aug 2024,
#: dated over whole calendar months.
PAPER_PRICE_EXAMPLE = (date(2022, 12, 1), 20.0, date(2024, 8, 31), 0.075)
