"""The two laws of the Densing Law paper and their inversion (Xiao et al., arXiv 2412.04315, Sec. 2).

Units used throughout:

* ``params`` N: number of parameters (a count, not billions).
* ``tokens`` D: number of training tokens (a count).
* ``loss`` L: conditional loss -ln P(answer | prompt), in **nats per answer token** (natural
  log, as in the paper's formula; bits = nats / ln 2). Any consistent loss unit works for the
  fits, but the score law's ``gamma`` and ``l`` carry that unit.
* ``score`` S: benchmark score as a **fraction** in [0, 1] (accuracy 0.453, not 45.3%).

Step 1, loss law (Sec. 2.2 "loss estimation"):  L(N, D) = a*N^-alpha + b*D^-beta.
Step 2, score law (Sec. 2.2 "performance estimation"): S(L) = c / (1 + exp(-gamma*(L - l))) + d.
Inversion (Sec. 2.2): L_hat(S) = l - ln(c/(S - d) - 1)/gamma, then
N_hat = ((L_hat - b*D0^-beta) / a)^(-1/alpha), and density rho = N_hat / N (Sec. 2.1).

Ambiguities resolved here (see docs/density.md):

* The paper writes the law without an irreducible-loss constant; we fit exactly its four
  parameters. ``b*D^-beta`` then plays the floor's role at fixed D.
* D0, the token count used for inversion, is a parameter (default 1e12 = 1T tokens). The 1T
  figure comes from the project's paper notes and was *not* re-confirmed in the paper text
  available to us; pass another value if you know better.
* gamma's sign is not constrained: score falls as loss rises, so fits give gamma < 0. The
  inversion formula holds for either sign.
* The loss-law fit is done on (ln a, alpha, ln b, beta) for numerical conditioning; standard
  errors of a and b are carried back by the delta method (se(a) = a * se(ln a)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from ipw.density.errors import LossOutOfRange, ScoreOutOfRange
from ipw.density.fitting import (
    FitResult, Problem, as_float_array, check_enough, least_squares, r_squared, stderr_from_cov,
)

DEFAULT_D0_TOKENS = 1e12
LOSS_NAMES = ("a", "alpha", "b", "beta")
SCORE_NAMES = ("c", "gamma", "l", "d")


def loss_law(params, tokens, a: float, alpha: float, b: float, beta: float):
    """L(N, D) = a*N^-alpha + b*D^-beta (Sec. 2.2); N, D counts, L in the loss's unit."""
    return a * np.power(params, -alpha) + b * np.power(tokens, -beta)


def _log_loss_law(x, log_a, alpha, log_b, beta):
    log_n, log_d = x
    return np.exp(log_a - alpha * log_n) + np.exp(log_b - beta * log_d)


def _loss_starts(log_n: np.ndarray, log_d: np.ndarray, loss: np.ndarray) -> list[list[float]]:
    half = np.log(max(float(np.mean(loss)) / 2, 1e-12))
    starts = []
    for alpha in (0.1, 0.3, 0.6):
        for beta in (0.1, 0.3, 0.6):
            starts.append([half + alpha * np.median(log_n), alpha, half + beta * np.median(log_d), beta])
    return starts


def fit_loss_law(params: Iterable[float], tokens: Iterable[float], loss: Iterable[float]) -> FitResult:
    """Fit L(N, D) = a*N^-alpha + b*D^-beta to reference-model losses (Sec. 2.2, step 1).

    ``params`` and ``tokens`` are counts, ``loss`` nats/token. Needs at least 5 points.
    """
    n = as_float_array(params, "params")
    d = as_float_array(tokens, "tokens")
    y = as_float_array(loss, "loss")
    check_enough("loss law L = a*N^-alpha + b*D^-beta", len(y), 4)
    if np.any(n <= 0) or np.any(d <= 0):
        raise ValueError("params and tokens must be positive counts")
    x = np.vstack([np.log(n), np.log(d)])
    bounds = ([-np.inf, 0.0, -np.inf, 0.0], [np.inf, 5.0, np.inf, 5.0])
    problem = Problem("loss law", _log_loss_law, x, y, _loss_starts(x[0], x[1], y), bounds)
    popt, pcov = least_squares(problem)
    se = stderr_from_cov(pcov)
    a, b = float(np.exp(popt[0])), float(np.exp(popt[2]))
    predicted = _log_loss_law(x, *popt)
    return FitResult(
        law="loss_law", names=LOSS_NAMES,
        values=(a, float(popt[1]), b, float(popt[3])),
        stderr=(float(a * se[0]), float(se[1]), float(b * se[2]), float(se[3])),
        r2=r_squared(y, predicted), residuals=tuple(map(float, y - predicted)), n_points=len(y),
    )


def score_law(loss, c: float, gamma: float, l: float, d: float):
    """S(L) = c / (1 + exp(-gamma*(L - l))) + d (Sec. 2.2, step 2); S a fraction."""
    return c / (1.0 + np.exp(-gamma * (np.asarray(loss, dtype=float) - l))) + d


def _score_starts(loss: np.ndarray, score: np.ndarray) -> list[list[float]]:
    span = max(float(np.ptp(loss)), 1e-6)
    c0 = max(float(np.ptp(score)), 1e-3)
    d0 = float(np.min(score))
    starts = []
    for gamma in (-8.0 / span, -3.0 / span, 3.0 / span, 8.0 / span):
        for l0 in np.quantile(loss, [0.25, 0.5, 0.75]):
            starts.append([c0 * 1.2, gamma, float(l0), d0 - 0.1 * c0])
    return starts


def _with_fixed(free: tuple[str, ...], fixed: Mapping[str, float]):
    def func(loss, *theta):
        values = dict(fixed)
        values.update(zip(free, theta))
        return score_law(loss, **values)
    return func


def fit_score_law(
    loss: Iterable[float], score: Iterable[float], fixed: Mapping[str, float] | None = None,
) -> FitResult:
    """Fit S = c/(1+exp(-gamma*(L-l))) + d (Sec. 2.2, step 2).

    ``fixed`` pins any of c, gamma, l, d (e.g. ``{"d": 0.25, "c": 0.75}`` for a 4-way multiple
    choice benchmark: chance 0.25, ceiling 1.0); pinned parameters get standard error 0.
    """
    x = as_float_array(loss, "loss")
    y = as_float_array(score, "score")
    fixed = dict(fixed or {})
    unknown = set(fixed) - set(SCORE_NAMES)
    if unknown:
        raise ValueError(f"unknown score-law parameter(s) {sorted(unknown)}; use {SCORE_NAMES}")
    free = tuple(name for name in SCORE_NAMES if name not in fixed)
    check_enough("score law S = c/(1+exp(-gamma(L-l))) + d", len(y), len(free))
    starts = [[s[SCORE_NAMES.index(n)] for n in free] for s in _score_starts(x, y)]
    func = _with_fixed(free, fixed)
    popt, pcov = least_squares(Problem("score law", func, x, y, starts))
    fitted = dict(fixed, **dict(zip(free, map(float, popt))))
    se = dict(zip(free, map(float, stderr_from_cov(pcov))))
    predicted = func(x, *popt)
    return FitResult(
        law="score_law", names=SCORE_NAMES,
        values=tuple(fitted[n] for n in SCORE_NAMES),
        stderr=tuple(se.get(n, 0.0) for n in SCORE_NAMES),
        r2=r_squared(y, predicted), residuals=tuple(map(float, y - predicted)), n_points=len(y),
    )


def score_range(score_fit: FitResult) -> tuple[float, float]:
    """Open interval of scores the sigmoid can produce: (d, c + d) for c > 0."""
    c, d = score_fit["c"], score_fit["d"]
    return (min(d, c + d), max(d, c + d))


def loss_for_score(score, score_fit: FitResult):
    """L_hat(S) = l - ln(c/(S - d) - 1)/gamma (Sec. 2.2); raises :class:`ScoreOutOfRange`."""
    s = np.asarray(score, dtype=float)
    low, high = score_range(score_fit)
    bad = ~((s > low) & (s < high))
    if np.any(bad):
        first = float(np.atleast_1d(s)[np.atleast_1d(bad)][0])
        raise ScoreOutOfRange(
            f"score {first:g} is outside the fitted sigmoid's open range ({low:.4g}, {high:.4g}): "
            f"the curve only approaches its floor d and ceiling c + d, so no loss maps to this "
            f"score. Scores are fractions (0.453, not 45.3); a score at or beyond the reference "
            f"models' ceiling has no effective size under this fit."
        )
    c, gamma, l, d = (score_fit[n] for n in SCORE_NAMES)
    out = l - np.log(c / (s - d) - 1.0) / gamma
    return float(out) if np.ndim(out) == 0 else out


def params_for_loss(loss, loss_fit: FitResult, tokens: float = DEFAULT_D0_TOKENS):
    """N_hat = ((L - b*D0^-beta) / a)^(-1/alpha) (Sec. 2.2); raises :class:`LossOutOfRange`."""
    a, alpha, b, beta = (loss_fit[n] for n in LOSS_NAMES)
    floor = b * tokens ** (-beta)
    excess = np.asarray(loss, dtype=float) - floor
    if np.any(excess <= 0):
        worst = float(np.min(np.atleast_1d(loss)))
        raise LossOutOfRange(
            f"loss {worst:g} is at or below the loss law's floor b*D0^-beta = {floor:.4g} "
            f"(D0 = {tokens:.3g} tokens): no finite parameter count reaches it under this fit."
        )
    out = np.power(excess / a, -1.0 / alpha)
    return float(out) if np.ndim(out) == 0 else out


@dataclass(frozen=True)
class DensityLaws:
    """Both fitted laws plus D0: everything needed to turn a score into an effective size."""

    loss: FitResult
    score: FitResult
    tokens_d0: float = DEFAULT_D0_TOKENS

    def effective_params(self, score):
        """N_hat(S): parameters a reference model needs to reach ``score`` (a fraction)."""
        return params_for_loss(loss_for_score(score, self.score), self.loss, self.tokens_d0)

    def density(self, score, params):
        """rho = N_hat(S) / N (Sec. 2.1); dimensionless."""
        return self.effective_params(score) / np.asarray(params, dtype=float)

    def to_dict(self) -> dict:
        return {"loss_law": self.loss.to_dict(), "score_law": self.score.to_dict(),
                "tokens_d0": self.tokens_d0}

    @classmethod
    def from_dict(cls, data: dict) -> "DensityLaws":
        return cls(FitResult.from_dict(data["loss_law"]), FitResult.from_dict(data["score_law"]),
                   float(data.get("tokens_d0", DEFAULT_D0_TOKENS)))
