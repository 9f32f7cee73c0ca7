"""The one fitting helper (ipw.science.fitting) that the density and cmr packages share."""

import pickle

import numpy as np
import pytest

import ipw.science.cmr.errors as cmr_errors
import ipw.science.density.errors as density_errors
from ipw.science.cmr.fitting import FitResult as CmrFitResult
from ipw.science.cmr.fitting import fit_law
from ipw.science.density import fit_loss_law
from ipw.core.errors import DegenerateDataError, FitFailedError, IpwError, TooFewPointsError
from ipw.science.fitting import FitResult, Params, curve_fit_best, require_points, require_variation


def test_one_error_and_no_old_names():
    assert density_errors.TooFewPointsError is TooFewPointsError and density_errors.FitFailedError is FitFailedError
    for old in ("TooFewPoints", "FitDidNotConverge"):
        assert not hasattr(density_errors, old)
    assert not hasattr(cmr_errors, "TooFewPointsError") and not hasattr(cmr_errors, "FitFailedError")
    assert issubclass(TooFewPointsError, IpwError) and issubclass(TooFewPointsError, ValueError)


def test_params_are_a_tuple_and_a_mapping():
    p = Params(("a", "s", "b"), (1.0, 0.5, -2.0))
    a, s, b = p
    assert (a, s, b) == (1.0, 0.5, -2.0) and p[1] == p["s"] == 0.5
    assert p == (1.0, 0.5, -2.0) and p == {"a": 1.0, "s": 0.5, "b": -2.0}
    assert p != {"a": 1.0} and "s" in p and dict(**p) == p.as_dict()
    assert pickle.loads(pickle.dumps(p)) == p and pickle.loads(pickle.dumps(p)).names == p.names
    with pytest.raises(KeyError):
        p["zz"]


def test_both_packages_return_the_same_shape(reference_runs):
    x = np.linspace(1, 10, 8)
    cmr = fit_law("power", x, 2.0 * x**-0.5 + 1.0 + 0.001 * np.sin(x))
    dens = fit_loss_law(reference_runs["params"], reference_runs["tokens"], reference_runs["loss"])
    for fit in (cmr, dens):
        assert isinstance(fit, FitResult)
        assert len(fit.values) == len(fit.stderr) == len(fit.cov) == len(fit.names)
        assert len(fit.residuals) == fit.n_points and fit.method.startswith("scipy.optimize.curve_fit")
        assert np.allclose(np.sqrt(np.diag(fit.covariance())), fit.stderr, rtol=1e-6)
    assert isinstance(cmr, CmrFitResult)
    again = FitResult.from_dict(dens.to_dict())
    assert again == dens


def test_best_start_wins_and_total_failure_names_the_fit():
    x = np.linspace(0, 4, 30)
    y = np.sin(2.0 * x)
    popt, _, sse = curve_fit_best(lambda t, w: np.sin(w * t), x, y, [[0.5], [1.9]], "sine")
    assert popt[0] == pytest.approx(2.0, rel=1e-6) and sse < 1e-12
    with pytest.raises(FitFailedError, match="sine: the least-squares fit did not converge from any of 1"):
        curve_fit_best(lambda t, w: t * np.nan * w, x, y, [[1.0]], "sine")


def test_points_are_counted_distinct_and_constants_refused():
    with pytest.raises(TooFewPointsError, match=r"my law: 3 point\(s\) given, at least 4 needed .*\. hint$"):
        require_points("my law", 3, 3, "hint")
    with pytest.raises(DegenerateDataError, match="every y is 2"):
        require_variation("my law", np.full(5, 2.0), "y")
