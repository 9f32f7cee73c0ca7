"""`ipw density trend` says what its figure is: the ruler, its fitted range, the models it
extrapolates to (flagged per model, saved and reported), and the spread across rulers and
selections beside the paper's published figure. On the shipped data, every printed item is
checked against an independent computation from the shipped table, not copied from the output."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest
from click.testing import CliRunner

from ipw.cli.density import density
from ipw.reports.extras import density_trend_section
from ipw.science.density import densities_by_benchmarks, fit_trend
from ipw.science.density.data import load_published_scores
from ipw.science.density.extrapolation import RulerRange, extrapolation_line, flag_extrapolated
from ipw.science.density.results import DensityTrendResult
from ipw.science.density.spread import PAPER_DOUBLING_MONTHS, Spread, published_options


@pytest.fixture(scope="module")
def scores():
    return load_published_scores()


@pytest.fixture(scope="module")
def shipped(scores):
    """The Llama-1 ruler's sizes, read from the shipped table, and the 24 models' densities."""
    llama1 = scores[(scores["family"] == "Llama-1") & scores["benchmark"].isin(["MMLU", "BBH", "HumanEval", "MBPP",
                                                                                  "GSM8K", "MATH", "Code", "Math"])]  # fmt: skip
    return float(llama1["params"].min()), float(llama1["params"].max()), densities_by_benchmarks(scores)[0]


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    out = tmp_path_factory.mktemp("trend") / "trend.csv"
    result = CliRunner().invoke(density, ["trend", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return result.output, out.with_suffix(".json")


def _line(output: str, start: str) -> str:
    (line,) = [l for l in output.splitlines() if l.startswith(start)]
    return line


def test_it_prints_the_ruler_and_its_fitted_range(printed, shipped):
    output, _ = printed
    smallest, largest, _ = shipped
    assert _line(output, "ruler:") == "ruler: Llama-1 family, published scores on MMLU, BBH, Code, Math"
    assert "least squares on the family's 4 sizes" in _line(output, "fitted:")
    assert _line(output, "fitted range:").startswith(f"fitted range: {smallest:.3g} to {largest:.3g} parameters")
    assert (smallest, largest) == (7e9, 65e9)  # Llama-1 7B to 65B


def test_each_model_is_flagged_when_its_effective_size_is_outside_the_range(printed, shipped):
    output, _ = printed
    smallest, largest, models = shipped
    above, below = models[models["n_hat"] > largest], models[models["n_hat"] < smallest]
    table = {w[0]: w[-1] for w in map(str.split, output.splitlines()) if w and w[-1] in ("True", "False")}
    assert table == {m: str(m in set(above["model"]) | set(below["model"])) for m in models["model"]}
    line = _line(output, "extrapolated:")
    assert f"{len(above) + len(below)} of {len(models)} models" in line
    assert f"({len(above)} above its largest, {len(below)} below its smallest)" in line
    far = above.loc[above["n_hat"].idxmax()]
    assert f"farthest: {far['model']} at {far['n_hat']:.3g}, {far['n_hat'] / largest:.0f}x the largest" in line
    # the figures docs/density.md states: 10 above (Llama-3-70B 70 times beyond), 4 below
    assert (len(above), len(below), far["model"], round(far["n_hat"] / largest)) == (10, 4, "Llama-3-70B", 70)
    frontier = fit_trend(models, "frontier")
    flagged = set(above["model"]) | set(below["model"])
    assert f"{sum(m in flagged for m in frontier.models)} of the trend's {frontier.n_points} points" in line


def test_the_spread_line_is_refitted_in_the_run_and_labels_the_papers_figure(printed, shipped, scores):
    output, _ = printed
    smallest, largest, models = shipped
    line = _line(output, "spread:")
    main = fit_trend(models, "frontier")
    inside = models[(models["n_hat"] >= smallest) & (models["n_hat"] <= largest)]
    without = fit_trend(inside, "frontier").doubling_months
    no_llama3 = fit_trend(models[models["model"] != "Llama-3-70B"], "frontier").doubling_months
    every = fit_trend(models, "all").doubling_months
    llama2 = fit_trend(densities_by_benchmarks(scores, "Llama-2")[0], "frontier").doubling_months
    assert line.startswith(f"spread: doubling {main.doubling_months:.2f} months (")
    assert f"{without:.2f} without the {len(models) - len(inside)} extrapolated models" in line
    assert f"Llama-3-70B moving it most ({no_llama3:.2f})" in line and round(no_llama3, 2) == 1.79  # issue 19's figure
    lo, hi = map(float, re.search(r"\((\d+\.\d+)-(\d+\.\d+) across 14 rulers and selections", line).groups())
    assert lo <= min(main.doubling_months, every, llama2) and hi >= max(every, llama2) and hi / lo > 2
    assert line.endswith(f"paper: {PAPER_DOUBLING_MONTHS:g} months (arXiv 2412.04315v2, its published figure, not refitted here)")
    assert PAPER_DOUBLING_MONTHS == 3.3


def test_the_options_table_covers_each_ruler_family_benchmark_set_and_selection(scores):
    options = published_options(scores)
    assert set(options["ruler"]) == {"Llama-1 family", "Llama-2 family", "Gemma-2 family", "Llama-3.1 family"}
    assert set(options["select"]) == {"frontier", "all"} and len(options) == 14  # Llama-3.1 has an MMLU ruler only
    row = options[(options["ruler"] == "Llama-1 family") & (options["benchmarks"] == "MMLU") & (options["select"] == "all")]
    mmlu = densities_by_benchmarks(scores, "Llama-1", benchmark="MMLU")[0]
    assert row["doubling_months"].item() == pytest.approx(fit_trend(mmlu, "all").doubling_months)


def test_the_saved_result_round_trips_the_flag_the_ruler_and_the_spread(printed):
    _, path = printed
    saved = DensityTrendResult.load(path)
    assert saved.densities["extrapolated"].dtype == bool and saved.densities["extrapolated"].sum() == 14
    assert saved.ruler.smallest == 7e9 and saved.ruler.largest == 65e9 and saved.ruler.ruler.startswith("Llama-1")
    again = path.parent / "again.json"
    saved.save(again)
    back = DensityTrendResult.load(again)
    pd.testing.assert_frame_equal(back.densities, saved.densities)
    assert back.ruler == saved.ruler and back.spread.line() == saved.spread.line()
    pd.testing.assert_frame_equal(back.spread.options, saved.spread.options)
    pd.testing.assert_frame_equal(back.spread.leave_one_out, saved.spread.leave_one_out)


def test_the_report_shows_the_flag_the_count_and_the_spread(printed):
    _, path = printed
    section = density_trend_section(path)
    saved = DensityTrendResult.load(path)
    assert "extrapolated" in section.tables[0].frame.columns
    assert any(w.startswith("extrapolated: 14 of 24 models") for w in section.warnings)
    assert f"spread: {saved.spread.line()}" in section.summary and "fitted range: 7e+09 to 6.5e+10 parameters " \
        "(effective sizes outside it are extrapolated)" in section.summary
    assert section.tables[1].frame.equals(saved.spread.options)


def test_an_older_result_without_the_new_fields_still_loads(tmp_path):
    frame = pd.DataFrame({"model": [f"m{i}" for i in range(5)], "density": [1.0, 2.0, 4.5, 8.0, 17.0],
                          "release_date": pd.date_range("2023-01-01", periods=5, freq="90D").date})  # fmt: skip
    DensityTrendResult(frame, {"all dates": fit_trend(frame, "all")}, "all").save(tmp_path / "old.json")
    loaded = DensityTrendResult.load(tmp_path / "old.json")
    assert loaded.ruler is None and loaded.spread is None and "extrapolated" not in loaded.densities
    section = density_trend_section(tmp_path / "old.json")
    assert len(section.tables) == 1 and not any("extrapolated" in w for w in section.warnings)


def test_a_density_table_has_no_ruler_and_its_spread_is_over_selections(tmp_path):
    rows = [("m%d" % i, f"202{2 + i // 6}-{1 + 2 * (i % 6):02d}-15", 1.6 ** i * (0.5 if i % 3 == 1 else 1)) for i in range(12)]
    table = tmp_path / "d.csv"
    pd.DataFrame(rows, columns=["model", "release_date", "density"]).to_csv(table, index=False)
    result = CliRunner().invoke(density, ["trend", str(table)])
    assert result.exit_code == 0, result.output
    assert _line(result.output, "ruler:") == "ruler: none: densities read from the table"
    assert "fitted range:" not in result.output and "extrapolated:" not in result.output
    assert "extrapolated models" not in result.output
    assert "across 2 selections;" in _line(result.output, "spread:")


def test_the_flag_is_strict_at_the_edges_and_absent_without_a_range():
    frame = pd.DataFrame({"model": list("abcde"), "n_hat": [0.99e9, 1e9, 5e9, 1e10, 1.01e10]})
    ruler = RulerRange("r", "f", 1e9, 1e10)
    assert flag_extrapolated(frame, ruler)["extrapolated"].tolist() == [True, False, False, False, True]
    assert "extrapolated" not in flag_extrapolated(frame, RulerRange("none", "none"))
    assert extrapolation_line(frame, RulerRange("none", "none")) is None
    line = extrapolation_line(flag_extrapolated(frame, ruler), ruler, ("a", "c"))
    assert "2 of 5 models" in line and "1 of the trend's 2 points" in line


def test_a_spread_line_says_when_nothing_grows_without_the_extrapolated_models():
    spread = Spread(2.0, "frontier", pd.DataFrame([{"ruler": "r", "benchmarks": "", "select": "all", "n_points": 0,
                                                    "doubling_months": math.nan, "r2": math.nan,
                                                    "extrapolated_points": 0}]), 3, None)  # fmt: skip
    assert "2.00-2.00 across 1 selections; no growing trend without the 3 extrapolated models" in spread.line()
    assert Spread.from_dict(spread.to_dict()).line() == spread.line()
