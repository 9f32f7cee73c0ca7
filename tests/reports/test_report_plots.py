"""The report's figures: drawn from arrays, labelled 'estimate' where energy is one."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ipw.reports import run_figures as P
from ipw.reports import tables as T
from tests.fakes.runs import SyntheticRun, write_synthetic_run


def _titles(fig: Figure) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


def test_downsample_keeps_the_mean_and_bounds_the_points():
    t = np.arange(100_000) / 10.0
    y = np.sin(t) + 5
    tb, yb = P.downsample(t, y, max_points=500)
    assert len(tb) <= 500 and len(tb) == len(yb)
    assert abs(np.mean(yb) - np.mean(y)) < 0.01
    assert tb.min() >= t.min() and tb.max() <= t.max()
    small_t, small_y = P.downsample(t[:10], y[:10])
    np.testing.assert_array_equal(small_y, y[:10])


def test_downsample_drops_nan():
    tb, yb = P.downsample(np.array([0.0, 1.0, 2.0]), np.array([np.nan, 1.0, 2.0]))
    assert yb.tolist() == [1.0, 2.0]


def test_figures_say_estimate_when_a_run_is_estimated(two_runs):
    runs = T.load_runs(two_runs)
    summary = T.summary_table(runs)
    for fig in (P.accuracy_vs_energy(summary), P.energy_distribution(runs), P.domain_bars(T.domain_table(runs))):
        assert isinstance(fig, Figure)
        assert any("(estimate)" in title for title in _titles(fig))
    measured = T.load_runs(two_runs[:1])
    fig = P.accuracy_vs_energy(T.summary_table(measured))
    assert not any("estimate" in title for title in _titles(fig))
    assert not any("estimate" in t.get_text() for t in fig.axes[0].texts)


def test_estimated_runs_are_tagged_in_legends_and_labels(two_runs):
    runs = T.load_runs(two_runs)
    fig = P.energy_distribution(runs)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["measured-run", "estimated-run [estimate]"]


def test_timeline_only_for_runs_that_have_one(two_runs):
    runs = T.load_runs(two_runs)
    fig = P.power_timeline(runs)
    lines = [line for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")]
    # one curve per domain, each with its own label: the host's CPU estimate beside the measured GPU
    assert [line.get_label() for line in lines] == ["measured-run cpu [estimate]", "measured-run gpu:0"]
    assert all(len(line.get_xdata()) <= 1500 for line in lines)
    assert P.power_timeline(T.load_runs(two_runs[1:])) is None


def test_frontier_plot_marks_the_front(tmp_path):
    paths = [write_synthetic_run(tmp_path, f"r{k}", SyntheticRun(n_queries=30, seed=k, accuracy=a, energy_j=e, hz=0))
             for k, (a, e) in enumerate([(0.9, 10.0), (0.3, 20.0), (0.5, 2.0)])]
    summary = T.summary_table(T.load_runs(paths))
    fig = P.accuracy_vs_energy(summary)
    on_front = fig.axes[0].collections[-1].get_offsets()  # the red points
    front = summary[T.pareto_front(summary["accuracy"].to_numpy(), summary["energy_j_mean"].to_numpy())]
    assert sorted(map(tuple, np.asarray(on_front))) == sorted(zip(front["energy_j_mean"], front["accuracy"]))
    assert "r1" not in set(front["run"])


def test_user_strings_with_dollars_do_not_break_drawing(tmp_path):
    import io

    name = "bad $x^$ math"  # not valid mathtext: drawing fails if it is parsed as such
    p = write_synthetic_run(tmp_path, name, SyntheticRun(n_queries=12, hz=1))
    runs = T.load_runs([p])
    runs[name].queries["domain"] = "$y_$"
    for fig in (P.accuracy_vs_energy(T.summary_table(runs)), P.domain_bars(T.domain_table(runs)), P.power_timeline(runs)):
        fig.savefig(io.BytesIO(), format="png")


def test_empty_inputs_give_no_figure():
    assert P.accuracy_vs_energy(pd.DataFrame(columns=["run", "accuracy", "energy_j_mean"])) is None
    assert P.domain_bars(pd.DataFrame()) is None
    assert P.energy_distribution({}) is None
