"""Shared synthetic data for the Densing Law tests: generated from known constants plus noise.

As in the paper, the two laws are fitted on different models (arXiv 2412.04315v2, Sec. 2.2-2.3):
the loss law on the small reference grid (Table 1 sizes x token budgets), whose losses are high
enough that their scores sit at chance, and the score law on fully trained models and their
checkpoints (MiniCPM-3-like), whose lower losses span the sigmoid. The reference grid carries no
scores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ipw.science.density.data import reference_token_grid
from ipw.science.density.laws import loss_law, score_law

TRUE_LOSS = {"a": 40.0, "alpha": 0.25, "b": 300.0, "beta": 0.3}
TRUE_SCORE = {"c": 0.7, "gamma": -15.0, "l": 0.32, "d": 0.25}


@pytest.fixture
def true_loss() -> dict[str, float]:
    return dict(TRUE_LOSS)


@pytest.fixture
def true_score() -> dict[str, float]:
    return dict(TRUE_SCORE)


@pytest.fixture
def reference_runs() -> pd.DataFrame:
    """The paper's 6 sizes x 6 token budgets, losses from TRUE_LOSS with 0.5% noise; no scores."""
    rng = np.random.default_rng(1234)
    grid = reference_token_grid()
    clean = loss_law(grid["params"], grid["tokens"], **TRUE_LOSS)
    grid["loss"] = clean * (1 + 0.005 * rng.standard_normal(len(grid)))
    return grid


@pytest.fixture
def score_runs() -> pd.DataFrame:
    """Fully trained models (0.5B-100B, 1T tokens) and their checkpoints (10B-300B tokens).

    Early checkpoints score near chance and the largest models near the ceiling, so the points
    span the sigmoid, as the paper's MiniCPM-3 models and checkpoints do.
    """
    rng = np.random.default_rng(4321)
    budgets = [1e10, 3e10, 1e11, 3e11, 1e12]
    params = np.repeat(np.geomspace(5e8, 1e11, 8), len(budgets))
    tokens = np.tile(budgets, 8)
    loss = loss_law(params, tokens, **TRUE_LOSS) * (1 + 0.005 * rng.standard_normal(len(params)))
    score = score_law(loss, **TRUE_SCORE) + 0.003 * rng.standard_normal(len(params))
    return pd.DataFrame({"params": params, "tokens": tokens, "loss": loss, "score": score})
