"""Synthetic CPT runs with known laws, for tests and demonstrations (no model is trained).

The general-loss change is ``R^p * (a2*T^s2 + a3*T^s3) + b2``: for each ratio exactly Eq. 6's two-term
law, and at each budget exactly Sec. 5.1's power law in R (exponent p, constant b2). So the CMR has
a closed form, :func:`true_cmr`, to check the numerical pipeline against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ipw.science.cmr.laws import PAPER_TOKEN_UNIT


@dataclass(frozen=True)
class SyntheticCpt:
    """Known constants of a synthetic CPT grid (T in token units; losses in nats/token)."""

    model: str = "synthetic"
    ratios: tuple[float, ...] = (0.125, 0.25, 1 / 3, 0.5, 0.75, 1.0)
    t_values: tuple[float, ...] = tuple(float(t) for t in np.linspace(5.0, 100.0, 20))
    token_unit: float = PAPER_TOKEN_UNIT
    general: tuple[float, float, float, float, float] = (0.03, 0.35, -0.002, 0.8, 0.0)
    general_ratio_exponent: float = 2.0
    domain: tuple[float, float, float] = (-0.08, 0.3, 0.0)
    domain_ratio_exponent: float = 0.5
    before: tuple[float, float] = (2.0, 3.0)  # general, domain loss before CPT
    noise: float = 0.0
    seed: int = 0

    def general_change(self, ratio: float, t: np.ndarray) -> np.ndarray:
        a2, s2, a3, s3, b2 = self.general
        return ratio**self.general_ratio_exponent * (a2 * t**s2 + a3 * t**s3) + b2

    def domain_change(self, ratio: float, t: np.ndarray) -> np.ndarray:
        a1, s1, b1 = self.domain
        return ratio**self.domain_ratio_exponent * a1 * t**s1 + b1


def make_runs(spec: SyntheticCpt = SyntheticCpt()) -> pd.DataFrame:
    """A runs frame in the format of :func:`ipw.science.cmr.io.load_runs` (Gaussian noise if ``spec.noise``)."""
    rng = np.random.default_rng(spec.seed)
    t = np.asarray(spec.t_values, dtype=float)
    frames = []
    for r in spec.ratios:
        gen = spec.general_change(r, t) + rng.normal(0.0, spec.noise, t.size)
        dom = spec.domain_change(r, t) + rng.normal(0.0, spec.noise, t.size)
        frames.append(pd.DataFrame(dict(
            model=spec.model, ratio=r, tokens=t * spec.token_unit,
            general_loss=spec.before[0] + gen, domain_loss=spec.before[1] + dom,
            general_loss_before=spec.before[0], domain_loss_before=spec.before[1])))
    return pd.concat(frames, ignore_index=True)


def true_cmr(spec: SyntheticCpt, t: float, eps: float) -> float:
    """Closed-form CMR: the R solving ``R^p * c(T) + b2 = eps`` (clipped to 1 when all R pass)."""
    a2, s2, a3, s3, b2 = spec.general
    c = a2 * t**s2 + a3 * t**s3
    if c <= 0 or eps - b2 >= c:
        return 1.0
    return float(((eps - b2) / c) ** (1.0 / spec.general_ratio_exponent))
