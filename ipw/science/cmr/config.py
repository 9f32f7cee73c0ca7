"""Settings of a CMR analysis, in one frozen dataclass (so no function takes a long argument list)."""

from __future__ import annotations

from dataclasses import dataclass

from ipw.science.cmr.laws import LAWS, PAPER_EPS, PAPER_TOKEN_UNIT


@dataclass(frozen=True)
class CmrConfig:
    """How to turn CPT runs into loss laws, a feasible region and a critical mixture ratio.

    eps          tolerance on the general-loss increase, absolute, in nats/token (paper: 0.05, Eq. 1)
    token_unit   tokens per unit of T (paper: 0.2e9, so T = 100 is 20B tokens)
    general_law  law of the general-loss change over T: ``two_term`` (Eq. 6, the paper) or ``power``
                 (one term; for short runs that never show the rise-then-fall)
    domain_law   law of the domain-loss change over T (Eq. 6: ``power``)
    ratio_floor  smallest R searched for the feasible region (R = 0 is excluded: R^s diverges for s < 0)
    ratio_grid   grid points on [ratio_floor, 1] before the region's edges are refined by root finding
    lagrange     lambda of Eq. 3; when set, the paper's T0 (Eq. 7) is reported per ratio
    """

    eps: float = PAPER_EPS
    token_unit: float = PAPER_TOKEN_UNIT
    general_law: str = "two_term"
    domain_law: str = "power"
    ratio_floor: float = 1e-3
    ratio_grid: int = 2001
    lagrange: float | None = None

    def __post_init__(self) -> None:
        if not self.eps >= 0:
            raise ValueError(f"eps must be >= 0 (a tolerance on a loss increase), got {self.eps!r}")
        if not self.token_unit > 0:
            raise ValueError(f"token_unit must be > 0, got {self.token_unit!r}")
        for name in (self.general_law, self.domain_law):
            if name not in LAWS:
                raise ValueError(f"unknown law {name!r}; choose one of {sorted(LAWS)}")
        if not 0 < self.ratio_floor < 1:
            raise ValueError(f"ratio_floor must be in (0, 1), got {self.ratio_floor!r}")
        if self.ratio_grid < 10:
            raise ValueError(f"ratio_grid must be >= 10, got {self.ratio_grid!r}")
        if self.lagrange is not None and not self.lagrange > 0:
            raise ValueError(f"lagrange must be > 0 (Eq. 4: lambda >= 0), got {self.lagrange!r}")
