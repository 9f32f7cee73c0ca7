import numpy as np
import pytest

from ipw.science.density import (
    DensityLaws, FitFailedError, LossOutOfRange, ScoreOutOfRange, TooFewPointsError, fit_loss_law,
    fit_score_law, loss_for_score, loss_law, params_for_loss, score_law,
)
from ipw.science.fitting import Problem, least_squares


def test_loss_law_recovers_known_constants_from_noisy_data(reference_runs, true_loss):
    fit = fit_loss_law(reference_runs["params"], reference_runs["tokens"], reference_runs["loss"])
    # a and alpha (b and beta) trade off against each other, so the prefactors are looser.
    for name, rel in (("alpha", 0.1), ("beta", 0.1), ("a", 0.4), ("b", 0.4)):
        assert fit[name] == pytest.approx(true_loss[name], rel=rel), name
        assert abs(fit[name] - true_loss[name]) < 5 * fit.error(name), name  # errors of the right size
    clean = loss_law(reference_runs["params"], reference_runs["tokens"], **true_loss)
    fitted = loss_law(reference_runs["params"], reference_runs["tokens"], **fit.params)
    np.testing.assert_allclose(fitted, clean, rtol=0.02)
    assert fit.r2 > 0.99
    assert len(fit.residuals) == fit.n_points == len(reference_runs)


def test_score_law_recovers_known_constants_from_noisy_data(score_runs, true_score):
    fit = fit_score_law(score_runs["loss"], score_runs["score"])
    for name, true in true_score.items():
        assert fit[name] == pytest.approx(true, rel=0.1, abs=0.02), name
    assert fit.r2 > 0.98


def test_score_law_with_pinned_parameters_keeps_them_exactly(score_runs, true_score):
    fit = fit_score_law(score_runs["loss"], score_runs["score"], fixed={"d": 0.25})
    assert fit["d"] == 0.25 and fit.error("d") == 0.0
    assert fit["gamma"] == pytest.approx(true_score["gamma"], rel=0.1)


def test_inversion_round_trip_score_to_params_and_back(true_loss, true_score):
    laws = DensityLaws(_exact("loss_law", true_loss), _exact("score_law", true_score), tokens_d0=1e12)
    params = np.array([3e7, 4e8, 7e9, 7e10])
    loss = loss_law(params, 1e12, **true_loss)
    score = score_law(loss, **true_score)
    np.testing.assert_allclose(laws.effective_params(score), params, rtol=1e-9)
    np.testing.assert_allclose(laws.density(score, params / 2), 2.0, rtol=1e-9)
    assert loss_for_score(float(score[0]), laws.score) == pytest.approx(float(loss[0]))


@pytest.mark.parametrize("score", [0.25, 0.2, 0.95, 1.0])
def test_score_outside_sigmoid_range_is_a_clear_error(score, true_score):
    fit = _exact("score_law", true_score)  # range (0.25, 0.95)
    with pytest.raises(ScoreOutOfRange, match=r"outside the fitted sigmoid's open range \(0\.25, 0\.95\)"):
        loss_for_score(score, fit)


def test_loss_below_the_floor_has_no_effective_size(true_loss):
    fit = _exact("loss_law", true_loss)
    floor = true_loss["b"] * 1e12 ** -true_loss["beta"]
    with pytest.raises(LossOutOfRange, match="floor"):
        params_for_loss(floor * 0.99, fit, tokens=1e12)


def test_too_few_points_names_what_is_needed():
    with pytest.raises(TooFewPointsError, match="4 point.*at least 5"):
        fit_loss_law([1e6, 1e7, 1e8, 1e9], [1e8, 1e9, 1e10, 1e11], [3.0, 2.5, 2.2, 2.0])
    with pytest.raises(TooFewPointsError):
        fit_score_law([1.0, 2.0], [0.8, 0.3], fixed={"c": 0.75})


def test_fit_that_cannot_converge_raises_ipw_error():
    problem = Problem("broken", lambda x, k: x * np.nan * k, np.arange(5.0), np.arange(5.0), [[1.0]])
    with pytest.raises(FitFailedError, match="did not converge"):
        least_squares(problem)


def test_fit_result_round_trips_through_json_dict(reference_runs, true_score):
    fit = fit_loss_law(reference_runs["params"], reference_runs["tokens"], reference_runs["loss"])
    laws = DensityLaws(fit, _exact("score_law", true_score))
    again = DensityLaws.from_dict(laws.to_dict())
    assert again.loss.params == fit.params and again.score.params == true_score


def _exact(law, params):
    from ipw.science.fitting import FitResult

    return FitResult.exact(law, params)
