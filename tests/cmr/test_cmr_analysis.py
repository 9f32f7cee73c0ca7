"""End to end on synthetic runs with a closed-form CMR; infeasible and degenerate inputs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ipw.science.cmr import CmrConfig, CmrError, InfeasibleToleranceError, TooFewPointsError, analyse
from ipw.science.cmr.synthetic import SyntheticCpt, make_runs, true_cmr

SPEC = SyntheticCpt(noise=1e-6)
EPS = 0.02


@pytest.fixture(scope="module")
def result():
    return analyse(make_runs(SPEC), CmrConfig(eps=EPS, lagrange=1000.0))


def test_cmr_at_the_largest_budget_matches_the_closed_form(result):
    row = result.feasible.iloc[0]
    assert row["T"] == pytest.approx(100.0)
    assert row["cmr"] == pytest.approx(true_cmr(SPEC, 100.0, EPS), abs=2e-3)
    assert not row["saturated"] and not row["extrapolated"]
    assert row["feasible_region"].startswith("[0.0010, ")


def test_cmr_curve_matches_the_closed_form_at_every_budget(result):
    curve = result.cmr_curve
    assert (curve["status"] == "ok").all()
    expected = [true_cmr(SPEC, t, EPS) for t in curve["T"]]
    assert np.allclose(curve["cmr"], expected, atol=2e-3)


def test_token_laws_recover_the_generating_constants_at_r_equal_1(result):
    fits = result.token_fits.query("ratio == 1.0").set_index("target")
    a2, s2, a3, s3, b2 = SPEC.general
    gen = fits.loc["general"]
    assert (gen["a2"], gen["s2"], gen["s3"]) == pytest.approx((a2, s2, s3), rel=0.05)
    assert gen["a3"] == pytest.approx(a3, rel=0.1)
    dom = fits.loc["domain"]
    assert (dom["a"], dom["s"]) == pytest.approx(SPEC.domain[:2], rel=0.01)


def test_laws_over_r_recover_the_ratio_exponents(result):
    fits = result.ratio_fits.set_index("target")
    assert fits.loc["general", "s"] == pytest.approx(SPEC.general_ratio_exponent, rel=0.01)
    assert fits.loc["domain", "s"] == pytest.approx(SPEC.domain_ratio_exponent, rel=0.01)
    assert fits.loc["general", "s_stderr"] > 0


def test_cmr_law_is_fitted_and_extrapolation_is_flagged(result):
    law = result.cmr_law.iloc[0]
    assert np.isfinite([law["a4"], law["s4"], law["b3"]]).all()
    pred = result.predict([10e9, 40e9])
    assert pred["extrapolated"].tolist() == [False, True]
    assert (pred["cmr_stderr"] > 0).all()
    with pytest.raises(CmrError, match="no model named"):
        result.predict([1e9], model="other")


def test_eq7_t0_is_reported_when_lambda_is_given(result):
    t0 = result.token_fits.query("target == 'general'")["t0_eq7"]
    assert t0.notna().all() and (t0 > 0).all()


def test_infeasible_tolerance_says_the_smallest_achievable_increase():
    spec = replace(SPEC, general=(*SPEC.general[:4], 0.01))  # every ratio raises general loss >= 0.01
    with pytest.raises(InfeasibleToleranceError, match="smallest achievable increase is 0.01") as err:
        analyse(make_runs(spec), CmrConfig(eps=0.005))
    assert err.value.smallest_increase == pytest.approx(0.01, abs=1e-4)
    assert err.value.eps == 0.005


def test_a_tolerance_every_ratio_meets_gives_a_saturated_cmr_of_one():
    result = analyse(make_runs(SPEC), CmrConfig(eps=1.0))
    row = result.feasible.iloc[0]
    assert row["cmr"] == 1.0 and row["saturated"]
    assert (result.cmr_curve["status"] == "saturated").all()
    assert "CMR law" in result.cmr_law.iloc[0]["note"]
    with pytest.raises(CmrError, match="has no CMR law"):
        result.predict([1e9])


def test_single_checkpoint_per_run_is_a_clear_error():
    runs = make_runs(replace(SPEC, t_values=(100.0,)))
    with pytest.raises(TooFewPointsError, match=r"ratio 0.125: general loss over T: 1 point\(s\)"):
        analyse(runs, CmrConfig(eps=EPS))


def test_too_few_ratios_is_a_clear_error():
    runs = make_runs(replace(SPEC, ratios=(0.25, 0.5, 1.0)))
    with pytest.raises(TooFewPointsError, match="mixture ratios > 0: 3 point"):
        analyse(runs, CmrConfig(eps=EPS))


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="eps"):
        CmrConfig(eps=-0.1)
    with pytest.raises(ValueError, match="unknown law"):
        CmrConfig(general_law="cubic")
