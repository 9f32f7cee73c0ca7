"""Laws and fitting: known constants are recovered; too few points and bad input are clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from ipw.science.cmr import TooFewPointsError, fit_law, leave_one_out, tokens_to_t
from ipw.science.cmr.laws import POWER, TWO_TERM, cmr_law


def test_paper_token_unit_maps_20b_tokens_to_t_100():
    assert tokens_to_t(20e9) == pytest.approx(100.0)
    assert tokens_to_t(20e9, token_unit=1e9) == pytest.approx(20.0)


def test_power_law_recovers_constants_from_noiseless_points():
    x = np.linspace(0.1, 1.0, 8)
    fit = fit_law("power", x, POWER(x, -0.4, 0.2, 1.9))
    assert fit.params == pytest.approx((-0.4, 0.2, 1.9), rel=1e-5)
    assert fit.r2 == pytest.approx(1.0)


def test_two_term_law_recovers_constants_under_small_noise():
    true = (0.03, 0.35, -0.002, 0.8, 0.001)
    t = np.linspace(2.0, 100.0, 30)
    y = TWO_TERM(t, *true) + np.random.default_rng(1).normal(0.0, 2e-6, t.size)
    fit = fit_law("two_term", t, y)
    assert fit.params == pytest.approx(true, rel=0.05, abs=2e-4)
    # the true values lie within a few standard errors of the estimates
    assert all(abs(p - q) <= 5 * e for p, q, e in zip(fit.params, true, fit.stderr))


def test_fit_is_invariant_to_the_token_unit():
    t = np.linspace(5.0, 100.0, 12)
    y = POWER(t, -0.08, 0.3, 0.01)
    in_units = fit_law("power", t, y)
    in_tokens = fit_law("power", t * 2e8, y)
    assert in_tokens.predict(50 * 2e8)[()] == pytest.approx(in_units.predict(50.0)[()], rel=1e-6)
    assert in_tokens.p["s"] == pytest.approx(in_units.p["s"], rel=1e-6)


def test_cmr_law_recovered_from_points_generated_with_table5_constants():
    t = np.linspace(10.0, 100.0, 10)
    fit = fit_law("power", t, cmr_law(t, 0.22524761, 0.26944345, -0.48139982))
    assert fit.params == pytest.approx((0.22524761, 0.26944345, -0.48139982), rel=1e-4)


def test_two_term_parameters_come_out_ordered_by_exponent():
    t = np.linspace(1.0, 50.0, 20)
    fit = fit_law("two_term", t, TWO_TERM(t, -0.002, 0.9, 0.04, 0.3, 0.0))
    assert fit.p["s2"] < fit.p["s3"]
    assert fit.p["a2"] == pytest.approx(0.04, rel=1e-3)


@pytest.mark.parametrize("n", [1, 3])
def test_too_few_points_is_a_clear_error(n):
    x = np.linspace(0.2, 1.0, n)
    with pytest.raises(TooFewPointsError, match=rf"{n} point\(s\).*at least 4"):
        fit_law("power", x, 1.0 + x)


def test_single_point_two_term_fit_names_the_data():
    with pytest.raises(TooFewPointsError, match="my run"):
        fit_law("two_term", [1.0], [0.1], what="my run")


def test_leave_one_out_needs_two_spare_points():
    x = np.array([0.25, 0.5, 0.75, 1.0])
    with pytest.raises(TooFewPointsError):
        leave_one_out("power", x, POWER(x, -0.4, 0.2, 1.9))


def test_prediction_stderr_is_zero_for_exact_data_and_positive_for_noisy():
    x = np.linspace(0.1, 1.0, 8)
    y = POWER(x, -0.4, 0.2, 1.9)
    assert fit_law("power", x, y).predict_stderr(0.5)[0] < 1e-6
    noisy = fit_law("power", x, y + np.random.default_rng(0).normal(0, 1e-3, x.size))
    assert noisy.predict_stderr(0.5)[0] > 1e-5
