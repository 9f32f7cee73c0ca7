"""The functional forms of the CMR paper (Gu et al., arXiv 2407.17467, EMNLP 2024).

Units. ``T`` is a token count divided by a token unit; the paper's unit is 0.2B tokens (Sec. 5.3:
"T_max is 20B tokens, which corresponds to a value of T = 100"), :data:`PAPER_TOKEN_UNIT`. Losses
are validation cross-entropies in nats per token, as the paper reports them. ``R`` is the domain
share of the CPT mixture, a fraction in [0, 1] (Definition 1: R = |D_dom| / (|D_gen| + |D_dom|)).

Every law here is a sum of power terms ``coef * x**exp`` plus a constant, so one fitting routine
(:mod:`ipw.science.cmr.fitting`) serves them all: :class:`Law` names the parameters and which coefficient
goes with which exponent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Tokens per unit of T in the paper (Sec. 5.3: T = 100 is 20B tokens).
PAPER_TOKEN_UNIT = 0.2e9
#: The paper's tolerance on the general-loss increase, absolute, in nats (Sec. 5.1: eps = 0.05;
#: Eq. 1: L_gen^CPT(T_max) <= L_gen(before) + eps).
PAPER_EPS = 0.05


@dataclass(frozen=True)
class Law:
    """A sum of power terms plus a constant: ``sum_k p[c_k] * x**p[e_k] + p[const]``."""

    name: str
    names: tuple[str, ...]
    pairs: tuple[tuple[int, int], ...]  # (coefficient index, exponent index) per term
    const: int

    @property
    def n_params(self) -> int:
        return len(self.names)

    def __call__(self, x: np.ndarray | float, *p: float) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        y = np.full_like(x, p[self.const], dtype=float)
        for c, e in self.pairs:
            y = y + p[c] * np.power(x, p[e])
        return y

    def derivative(self, x: np.ndarray | float, *p: float) -> np.ndarray:
        """d/dx of the law (used by the paper's Eq. 23-24)."""
        x = np.asarray(x, dtype=float)
        out = np.zeros_like(x, dtype=float)
        for c, e in self.pairs:
            out = out + p[c] * p[e] * np.power(x, p[e] - 1.0)
        return out


#: Sec. 5.1, L(R) = alpha * R^s + beta; Eq. 6 first line, dL_dom(T) = a1 * T^s1 + b1;
#: Eq. 8, R_CMR(T) = a4 * T^s4 + b3. One form, three uses.
POWER = Law("power", ("a", "s", "b"), ((0, 1),), 2)
#: Eq. 6 second line, dL_gen(T) = a2 * T^s2 + a3 * T^s3 + b2 ("general loss first rises, then falls").
TWO_TERM = Law("two_term", ("a2", "s2", "a3", "s3", "b2"), ((0, 1), (2, 3)), 4)

LAWS = {law.name: law for law in (POWER, TWO_TERM)}


def cmr_law(t: np.ndarray | float, a4: float, s4: float, b3: float) -> np.ndarray:
    """Eq. 8: the critical mixture ratio for a CPT budget of ``t`` token units, R_CMR = a4*T^s4 + b3."""
    return POWER(t, a4, s4, b3)


def tokens_to_t(tokens: np.ndarray | float, token_unit: float = PAPER_TOKEN_UNIT) -> np.ndarray:
    """Token count -> the paper's T (T = tokens / token_unit; 20e9 tokens -> 100 with the default)."""
    if token_unit <= 0:
        raise ValueError(f"token_unit must be positive, got {token_unit!r}")
    return np.asarray(tokens, dtype=float) / token_unit
