"""IPW metrics against hand-computed values, with their units."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ipw.science.intelligence.metrics import accuracy, bootstrap, coverage, ipj, ipw, summarize
from ipw.core.errors import IpwError


def frame(correct, energy_j, e2e_s, **extra):
    return pd.DataFrame({"id": [f"q{i}" for i in range(len(correct))], "correct": correct,
                         "energy_j": energy_j, "e2e_s": e2e_s, "measured": True, **extra})  # fmt: skip


def test_accuracy_counts_scored_only():
    assert accuracy(pd.Series([True, False, None, True])) == pytest.approx(2 / 3)
    assert math.isnan(accuracy(pd.Series([None, None])))


def test_ipw_and_ipj_by_hand():
    # energies 10 J and 30 J over 2 s and 3 s: powers 5 W and 10 W
    f = frame([True, False], [10.0, 30.0], [2.0, 3.0], energy_above_idle_j=[4.0, 12.0], domain=["a", "b"])
    row = summarize(f, n_boot=50).iloc[0]
    assert row["accuracy"] == 0.5
    assert row["power_w_mean"] == pytest.approx(7.5)  # mean of per-query power, W
    assert row["ipw_per_w"] == pytest.approx(0.5 / 7.5)  # 1/W
    assert row["ipj_per_j"] == pytest.approx(0.5 / 20.0)  # 1/J
    above = summarize(f, energy="above_idle", n_boot=50).iloc[0]
    assert above["ipj_per_j"] == pytest.approx(0.5 / 8.0)
    assert ipw(0.5, 7.5) == pytest.approx(1 / 15) and ipj(0.5, 20.0) == 0.025
    by = summarize(f, by="domain", n_boot=50).set_index("domain")
    assert by.loc["a", "accuracy"] == 1.0 and by.loc["b", "ipj_per_j"] == 0.0


def test_bootstrap_interval_contains_the_point_estimate():
    f = frame([True, False] * 50, [1.0, 3.0] * 50, [1.0] * 100)
    ci = bootstrap(f, n_boot=500, seed=1)
    assert ci["accuracy"].low < 0.5 < ci["accuracy"].high
    assert ci["ipj"].low < 0.5 / 2.0 < ci["ipj"].high
    assert ci["accuracy"].high - ci["accuracy"].low < 0.3


def test_coverage_and_best_of_local():
    a = frame([True, False, False, True], [1.0, 1.0, 1.0, 5.0], [1.0] * 4)
    b = frame([False, True, False, True], [2.0, 2.0, 2.0, 2.0], [1.0] * 4)
    cov = coverage({"a": a, "b": b})
    assert cov["coverage"] == 0.75  # q0 by a, q1 by b, q3 by both; q2 by none
    best = cov["best_of_local"]
    # routed energies: q0 a (1), q1 b (2), q2 none -> cheapest (a, 1), q3 both -> cheaper correct (b, 2)
    assert best["energy_j_mean"] == pytest.approx((1 + 2 + 1 + 2) / 4)
    assert best["ipj_per_j"] == pytest.approx(0.75 / 1.5)
    with pytest.raises(ValueError):
        coverage({"a": a, "c": frame([True], [1.0], [1.0]).assign(id=["zz"])})


def test_parity_with_the_released_harness_unit_test():
    # the IPW harness's own test: 10 J and 20 J over 2 s and 4 s, one of two answers correct
    row = summarize(frame([True, False], [10.0, 20.0], [2.0, 4.0]), n_boot=50).iloc[0]
    assert row["ipj_per_j"] == pytest.approx(1 / 30)  # 0.5 / mean(10, 20) J
    assert row["ipw_per_w"] == pytest.approx(0.1)  # 0.5 / mean(5, 5) W


def test_power_uses_the_window_span_of_the_energy():
    # the window (0.5 s) brackets the engine's end-to-end time (0.4 s): 2 J over 0.5 s is 4 W
    f = frame([True], [2.0], [0.4], window_s=[0.5])
    assert summarize(f, n_boot=10).iloc[0]["power_w_mean"] == pytest.approx(4.0)


def test_accuracy_coverage_and_energy_agree_on_the_scored_rows():
    # q2 could not be graded, q3 failed in the engine: neither is scored, anywhere
    a = frame([True, False, None, None], [1.0, 3.0, 50.0, 70.0], [1.0] * 4, error=[None, None, None, "HTTP 503"])
    row = summarize(a, n_boot=10).iloc[0]
    assert (row["n"], row["scored"], row["errors"]) == (4, 2, 1)
    assert row["accuracy"] == 0.5 and row["energy_j_mean"] == pytest.approx(2.0)
    assert row["ipj_per_j"] == pytest.approx(0.5 / 2.0)
    cov = coverage({"a": a, "b": frame([True, True, True, True], [1.0] * 4, [1.0] * 4)})
    assert cov["queries"] == 2 and cov["accuracy"]["a"] == row["accuracy"]


def test_accelerator_energy_is_the_default_basis():
    f = frame([True, True], [10.0, 10.0], [1.0, 1.0], accelerator_energy_j=[4.0, None], accelerator_measured=[True, None])
    row = summarize(f, n_boot=10).iloc[0]
    assert row["energy_scope"] == "accelerator"
    assert row["ipj_per_j"] == pytest.approx(1.0 / 7.0)  # 4 J, and 10 J where a record has no scopes
    system = summarize(f, energy="system", n_boot=10).iloc[0]
    assert system["energy_scope"] == "system" and system["ipj_per_j"] == pytest.approx(0.1)
    with pytest.raises(IpwError, match="unknown energy basis"):
        summarize(f, energy="gpu")


def test_meter_gaps_are_counted_whatever_form_the_flags_take():
    f = frame([True, None, None, True], [1.0, 0.0, 0.0, 1.0], [1.0] * 4,
              flags=[("estimate",), ("meter-gap:gpu:0",), '["meter-gap:cpu"]', ["short-window:gpu:0"]])  # fmt: skip
    row = summarize(f, n_boot=10).iloc[0]
    assert row["meter_gaps"] == 2 and row["scored"] == 2
    assert row["sub_update_period"] == 1  # the short-window flag of older records counts too


def test_windows_shorter_than_the_update_period_are_counted_once_per_record():
    f = frame([True, True, True, False], [1.0] * 4, [1.0] * 4,
              flags=[("sub-update-period:gpu:0", "sub-update-period:gpu:1"), ("estimate",),
                     '["sub-update-period:cpu"]', []])  # fmt: skip
    assert summarize(f, n_boot=10).iloc[0]["sub_update_period"] == 2
