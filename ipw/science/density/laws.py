"""The two laws of the Densing Law paper and their inversion (Xiao et al., arXiv 2412.04315v2, Sec. 2).

Units used throughout:

* ``params`` N: number of parameters (a count, not billions).
* ``tokens`` D: number of training tokens (a count).
* ``loss`` L: conditional loss -ln P(answer | prompt), in **nats per answer token** (natural
  log, as in the paper's formula; bits = nats / ln 2). Any consistent loss unit works for the
  fits, but the score law's ``gamma`` and ``l`` carry that unit.
* ``score`` S: benchmark score as a **fraction** in [0, 1] (accuracy 0.453, not 45.3%).

Section numbers follow arXiv v2.

Step 1, loss law (Sec. 2.2, loss estimation):  L(N, D) = a*N^-alpha + b*D^-beta, fitted on the
reference models' runs (Table 1 sizes, each at several token budgets).
Step 2, score law (Sec. 2.3, performance estimation): S(L) = c / (1 + exp(-gamma*(L - l))) + d,
fitted on *its own* models: the paper fits it on fully trained models and checkpoints of the
MiniCPM-3 kind, because its small reference models score at chance and cannot show the sigmoid.
Inversion (Sec. 2.4): L_hat(S) = l - ln(c/(S - d) - 1)/gamma, then
N_hat = ((L_hat - b*D0^-beta) / a)^(-1/alpha), and density rho = N_hat / N (Sec. 2.4).

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

from ipw.science.density.errors import BadValue, LossOutOfRange, ScoreOutOfRange
from ipw.science.fitting import (
    CURVE_FIT, FitResult, Problem, as_cov, finite_array, require_points, distinct_rows,
    least_squares, r_squared, require_variation, stderr_from_cov,
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

    ``params`` and ``tokens`` are counts (> 0), ``loss`` nats/token (> 0). Needs at least 5
    distinct (params, tokens) points and losses that vary.
    """
    what = "loss law L = a*N^-alpha + b*D^-beta"
    n = finite_array(params, "params")
    d = finite_array(tokens, "tokens")
    y = finite_array(loss, "loss")
    if not (len(n) == len(d) == len(y)):
        raise BadValue(f"{what}: params, tokens and loss differ in length ({len(n)}, {len(d)}, {len(y)})")
    _positive(n, "params", "a parameter count")
    _positive(d, "tokens", "a training-token count")
    _positive(y, "loss", "a conditional loss in nats per token (-ln P is never negative)")
    require_points(what, distinct_rows(n, d), 4, _rows_hint(len(y), distinct_rows(n, d), "(params, tokens)"))
    require_variation(what, y, "loss")
    x = np.vstack([np.log(n), np.log(d)])
    bounds = ([-np.inf, 0.0, -np.inf, 0.0], [np.inf, 5.0, np.inf, 5.0])
    starts = _loss_starts(x[0], x[1], y)
    popt, pcov = least_squares(Problem("loss law", _log_loss_law, x, y, starts, bounds))
    se = stderr_from_cov(pcov)
    a, b = float(np.exp(popt[0])), float(np.exp(popt[2]))
    jac = np.diag([a, 1.0, b, 1.0])  # d(a, alpha, b, beta) / d(ln a, alpha, ln b, beta)
    predicted = _log_loss_law(x, *popt)
    return FitResult(
        law="loss_law", names=LOSS_NAMES,
        values=(a, float(popt[1]), b, float(popt[3])),
        stderr=(float(a * se[0]), float(se[1]), float(b * se[2]), float(se[3])),
        cov=as_cov(jac @ pcov @ jac.T), r2=r_squared(y, predicted),
        residuals=tuple(map(float, y - predicted)), n_points=len(y),
        method=CURVE_FIT.format(n=len(starts)) + "; fitted on (ln a, alpha, ln b, beta)",
    )


def _positive(values: np.ndarray, name: str, meaning: str) -> None:
    bad = values <= 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise BadValue(f"{name}[{i}] = {values[i]:g}: {name} must be > 0 ({meaning}).")


def _rows_hint(n_rows: int, n_distinct: int, key: str) -> str:
    if n_rows == n_distinct:
        return ""
    return f"{n_rows} rows were given but only {n_distinct} distinct {key} value(s): repeated rows are one point."


def check_fractions(score: np.ndarray, name: str = "score") -> None:
    """Scores are fractions in [0, 1]; a percentage (73.2) among them is refused by name."""
    bad = (score < 0) | (score > 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        hint = (f" It looks like a percentage: write {score[i] / 100:g}." if 1 < score[i] <= 100 else "")
        raise BadValue(f"{name}[{i}] = {score[i]:g}: scores are fractions in [0, 1] "
                       f"(0.453, not 45.3).{hint}")


def score_law(loss, c: float, gamma: float, l: float, d: float):
    """S(L) = c / (1 + exp(-gamma*(L - l))) + d (Sec. 2.3, step 2); S a fraction."""
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
    """Fit S = c/(1+exp(-gamma*(L-l))) + d (Sec. 2.3, step 2) on its own models' (loss, score).

    The paper fits this law on fully trained models and checkpoints whose scores span the
    sigmoid (MiniCPM-3-like), not on the tiny reference models, which score at chance.
    ``loss`` is nats/token (> 0), ``score`` a fraction in [0, 1]. ``fixed`` pins any of c,
    gamma, l, d (e.g. ``{"d": 0.25, "c": 0.75}`` for 4-way multiple choice: chance 0.25,
    ceiling 1.0); pinned parameters get standard error 0.
    """
    x = finite_array(loss, "loss")
    _positive(x, "loss", "a conditional loss in nats per token (-ln P is never negative)")
    return fit_sigmoid(x, score, fixed, "score law S = c/(1+exp(-gamma(L-l))) + d", "loss")


def fit_sigmoid(
    x: Iterable[float], score: Iterable[float], fixed: Mapping[str, float] | None, what: str,
    xname: str,
) -> FitResult:
    """The score law's sigmoid in any abscissa ``x`` (the loss, or ln N for a family ruler)."""
    x = finite_array(x, xname)
    y = finite_array(score, "score")
    if len(x) != len(y):
        raise BadValue(f"{what}: {xname} and score differ in length ({len(x)} vs {len(y)})")
    check_fractions(y)
    fixed = dict(fixed or {})
    unknown = set(fixed) - set(SCORE_NAMES)
    if unknown:
        raise BadValue(f"unknown score-law parameter(s) {sorted(unknown)}; use {SCORE_NAMES}")
    free = tuple(name for name in SCORE_NAMES if name not in fixed)
    n_distinct = distinct_rows(x)
    require_points(what, n_distinct, len(free), _rows_hint(len(y), n_distinct, xname))
    require_variation(what, y, "score")
    starts = [[s[SCORE_NAMES.index(n)] for n in free] for s in _score_starts(x, y)]
    func = _with_fixed(free, fixed)
    popt, pcov = least_squares(Problem("score law", func, x, y, starts))
    fitted = dict(fixed, **dict(zip(free, map(float, popt))))
    se = dict(zip(free, map(float, stderr_from_cov(pcov))))
    cov = np.zeros((len(SCORE_NAMES), len(SCORE_NAMES)))
    index = [SCORE_NAMES.index(n) for n in free]
    cov[np.ix_(index, index)] = pcov
    predicted = func(x, *popt)
    pinned = f"; pinned {', '.join(f'{k}={v:g}' for k, v in fixed.items())}" if fixed else ""
    return FitResult(
        law="score_law", names=SCORE_NAMES,
        values=tuple(fitted[n] for n in SCORE_NAMES),
        stderr=tuple(se.get(n, 0.0) for n in SCORE_NAMES), cov=as_cov(cov),
        r2=r_squared(y, predicted), residuals=tuple(map(float, y - predicted)), n_points=len(y),
        method=CURVE_FIT.format(n=len(starts)) + pinned,
    )


def fit_laws(
    loss_runs, score_runs, fixed: Mapping[str, float] | None = None,
    tokens_d0: float = DEFAULT_D0_TOKENS,
) -> "DensityLaws":
    """Both laws, each from its own table (Sec. 2.2 and 2.3).

    ``loss_runs``: reference-model runs with ``params``, ``tokens``, ``loss`` columns;
    ``score_runs``: fully trained models or checkpoints with ``loss`` and ``score`` columns.
    """
    loss = fit_loss_law(loss_runs["params"], loss_runs["tokens"], loss_runs["loss"])
    score = fit_score_law(score_runs["loss"], score_runs["score"], fixed)
    return DensityLaws(loss, score, tokens_d0)


def score_range(score_fit: FitResult) -> tuple[float, float]:
    """Open interval of scores the sigmoid can produce: (d, c + d) for c > 0."""
    c, d = score_fit["c"], score_fit["d"]
    return (min(d, c + d), max(d, c + d))


def loss_for_score(score, score_fit: FitResult):
    """L_hat(S) = l - ln(c/(S - d) - 1)/gamma (Sec. 2.4); raises :class:`ScoreOutOfRange`."""
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
    """N_hat = ((L - b*D0^-beta) / a)^(-1/alpha) (Sec. 2.4); raises :class:`LossOutOfRange`."""
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
        """rho = N_hat(S) / N (Sec. 2.4); dimensionless."""
        return self.effective_params(score) / np.asarray(params, dtype=float)

    def to_dict(self) -> dict:
        return {"loss_law": self.loss.to_dict(), "score_law": self.score.to_dict(),
                "tokens_d0": self.tokens_d0}

    @classmethod
    def from_dict(cls, data: dict) -> "DensityLaws":
        return cls(FitResult.from_dict(data["loss_law"]), FitResult.from_dict(data["score_law"]),
                   float(data.get("tokens_d0", DEFAULT_D0_TOKENS)))
