"""A substitute ruler: effective size from one model family's published scores.

The paper's ruler is its own reference models (Table 1) with fitted loss and score laws; their
fitted constants were not published, and the reference models' benchmark losses are not shipped
here. To place *published* scores on a size scale anyway, this module fits the same sigmoid as
the score law (Sec. 2.2, step 2) with ln N in the place of the loss:

    S(N) = c / (1 + exp(-gamma*(ln N - m))) + d,    d = chance score, c = ceiling - chance.

Why this shape: with L = a*N^-alpha + const and small alpha, N^-alpha ~ 1 - alpha*ln N, so the
loss is nearly linear in ln N and the paper's sigmoid-of-loss becomes a sigmoid of ln N. Pinning
c and d to the benchmark's chance and ceiling leaves two free parameters (gamma, m), which a
four-model family can fit with two degrees of freedom to spare.

This is *relative* density against the chosen family, not the paper's absolute density, and it
extrapolates beyond the family's largest member. Document what you use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ipw.density.fitting import FitResult, as_float_array
from ipw.density.laws import fit_score_law, loss_for_score


@dataclass(frozen=True)
class FamilyRuler:
    """Score -> effective parameter count, from a sigmoid in ln N fitted to one family."""

    family: str
    benchmark: str
    fit: FitResult  # score law with "l" meaning m (ln of params at the midpoint)

    def effective_params(self, score):
        """N_hat for a score given as a fraction; raises ScoreOutOfRange outside (d, c + d)."""
        return np.exp(loss_for_score(score, self.fit))

    def density(self, score, params):
        return self.effective_params(score) / np.asarray(params, dtype=float)


def fit_family_ruler(
    params: Iterable[float], scores: Iterable[float], chance: float, ceiling: float = 1.0,
) -> FitResult:
    """Fit S = (ceiling - chance)/(1 + exp(-gamma*(ln N - m))) + chance; scores as fractions."""
    log_n = np.log(as_float_array(params, "params"))
    return fit_score_law(log_n, scores, fixed={"c": ceiling - chance, "d": chance})
