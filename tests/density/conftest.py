"""Shared synthetic data for the Densing Law tests: generated from known constants plus noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ipw.density.data import reference_token_grid
from ipw.density.laws import loss_law, score_law

TRUE_LOSS = {"a": 40.0, "alpha": 0.25, "b": 300.0, "beta": 0.3}
TRUE_SCORE = {"c": 0.7, "gamma": -3.0, "l": 1.8, "d": 0.25}


@pytest.fixture
def true_loss() -> dict[str, float]:
    return dict(TRUE_LOSS)


@pytest.fixture
def true_score() -> dict[str, float]:
    return dict(TRUE_SCORE)


@pytest.fixture
def reference_runs() -> pd.DataFrame:
    """The paper's 6 sizes x 6 token budgets, losses from TRUE_LOSS with 0.5% noise."""
    rng = np.random.default_rng(1234)
    grid = reference_token_grid()
    clean = loss_law(grid["params"], grid["tokens"], **TRUE_LOSS)
    grid["loss"] = clean * (1 + 0.005 * rng.standard_normal(len(grid)))
    grid["score"] = score_law(grid["loss"], **TRUE_SCORE) + 0.003 * rng.standard_normal(len(grid))
    return grid
