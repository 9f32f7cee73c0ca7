"""Saved science results: kind and version on file, round trips, dispatch on the kind, no refit."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from ipw.science.capacity.results import CapacityResults
from ipw.science.cmr import CmrConfig, analyse
from ipw.science.cmr.results import CmrResults
from ipw.science.cmr.synthetic import SyntheticCpt, make_runs
from ipw.science.density.results import DensityLawsResult, DensityLossesResult, DensityTrendResult
from ipw.science.density.trend import fit_trend
from ipw.reports.extras import ExtraError, load_extra
from ipw.science.results import ResultFileError, read_header


def _capacity() -> CapacityResults:
    frame = pd.DataFrame({"model": ["m1", "m2"], "corpus": ["math", "math"], "information_capacity": [0.2, 0.1],
                          "bias_bits": [-27.0, -27.0], "bytes_per_token": [4.0, 3.0], "truncated_samples": [0, 0]})
    return CapacityResults(frame, {"max_tokens": 256})


def _trend_frame() -> pd.DataFrame:
    days = [0, 90, 200, 300, 420, 500, 610]
    density = [1.0, 3.0, 1.2, 3.5, 1.1, 7.0, 9.0]
    return pd.DataFrame({"model": [f"m{i}" for i in range(7)], "density": density,
                         "release_date": [date(2023, 1, 1) + pd.Timedelta(days=d) for d in days]})


@pytest.fixture(scope="module")
def cmr_saved():
    return CmrResults.from_analysis(analyse(make_runs(SyntheticCpt(noise=1e-6)), CmrConfig(eps=0.02)), predict=[40e9])


def test_every_kind_round_trips_with_kind_and_version_on_file(tmp_path, cmr_saved):
    cap = _capacity().save(tmp_path / "cap")
    assert cap.name == "capacity.json" and read_header(tmp_path / "cap").kind == "capacity"
    pd.testing.assert_frame_equal(CapacityResults.load(tmp_path / "cap").results, _capacity().results)

    header = cmr_saved.save(tmp_path / "cmr")
    on_file = json.loads(header.read_text())
    assert (on_file["kind"], on_file["version"]) == ("cmr.analysis", 1)
    back = CmrResults.load(tmp_path / "cmr")
    assert back.config == cmr_saved.config and set(back.tables) == set(cmr_saved.tables)
    for name, table in cmr_saved.tables.items():  # numbers exactly; CSV keeps no empty strings (-> NaN)
        numeric = table.select_dtypes("number").columns
        pd.testing.assert_frame_equal(back.tables[name][numeric], table[numeric], check_dtype=False)

    frame = _trend_frame()
    fits = {"all dates": fit_trend(frame, "frontier")}
    DensityTrendResult(frame, fits).save(tmp_path / "trend.json")
    assert (tmp_path / "trend.csv").is_file()  # one table: <stem>.csv beside <stem>.json
    loaded = DensityTrendResult.load(tmp_path / "trend.json")
    assert loaded.fits == fits and loaded.densities["release_date"].tolist() == frame["release_date"].tolist()

    items = pd.DataFrame({"id": ["a"], "loss_per_token": [1.5]})
    DensityLossesResult(items, "m").save(tmp_path / "loss")
    assert DensityLossesResult.load(tmp_path / "loss").model == "m"


def test_laws_never_overwrite_an_input_table_named_like_them(tmp_path):
    from ipw.science.density.laws import fit_loss_law

    runs = pd.DataFrame({"params": [1e6, 3e6, 1e7, 3e7, 1e8, 3e8], "tokens": [2e7, 6e7, 2e8, 6e8, 2e9, 6e9]})
    runs["loss"] = 40 * runs["params"] ** -0.25 + 300 * runs["tokens"] ** -0.3
    runs.to_csv(tmp_path / "runs.csv", index=False)
    before = (tmp_path / "runs.csv").read_bytes()
    DensityLawsResult(fit_loss_law(runs["params"], runs["tokens"], runs["loss"]), points=runs).save(tmp_path / "runs.json")
    assert (tmp_path / "runs.csv").read_bytes() == before and (tmp_path / "runs.points.csv").is_file()


def test_another_kind_an_unknown_kind_and_a_newer_version_are_clear_errors(tmp_path):
    folder = tmp_path / "cap"
    _capacity().save(folder)
    with pytest.raises(ResultFileError, match="a 'capacity' result, not a 'cmr.analysis' result"):
        CmrResults.load(folder)
    payload = json.loads((folder / "capacity.json").read_text())
    (folder / "capacity.json").write_text(json.dumps({**payload, "version": 99}))
    with pytest.raises(ResultFileError, match=r"capacity\.json: .*version 99 .* newer ipw .* up to version 1"):
        CapacityResults.load(folder)
    with pytest.raises(ResultFileError, match="newer ipw"):
        load_extra(folder)
    (folder / "capacity.json").write_text(json.dumps({**payload, "kind": "capacity.v9"}))
    with pytest.raises(ExtraError, match=r"capacity\.json: unknown result kind 'capacity.v9'"):
        load_extra(folder)


def test_the_report_dispatches_on_the_kind_not_on_column_names(tmp_path):
    # a table whose columns are those of a capacity result, but with no saved result naming it
    _capacity().results.to_csv(tmp_path / "capacity.csv", index=False)
    with pytest.raises(ExtraError, match="kind unknown"):
        load_extra(tmp_path / "capacity.csv")
    # a capacity-shaped table saved under another kind is shown as that kind
    DensityLossesResult(_capacity().results.assign(loss_per_token=1.0)).save(tmp_path / "other.json")
    assert load_extra(tmp_path / "other.csv").key == "density-loss"


def test_the_report_shows_the_saved_trend_and_does_not_refit(tmp_path):
    frame = _trend_frame()
    frontier, every = fit_trend(frame, "frontier"), fit_trend(frame, "all")
    assert abs(frontier.doubling_months - every.doubling_months) > 0.5  # the two fits differ
    DensityTrendResult(frame, {"all dates": every}, "all").save(tmp_path / "t.json")
    section = load_extra(tmp_path / "t.json")
    assert f"{every.doubling_months:.2f} +/- {every.doubling_months_stderr:.2f} months" in section.summary[0]
    assert f"{frontier.doubling_months:.2f} +/-" not in " ".join(section.summary)


def test_cmr_figure_from_saved_tables_matches_the_fitted_laws(tmp_path, cmr_saved):
    from ipw.reports.science_figures import cmr_fit_figure

    cmr_saved.save(tmp_path / "cmr")
    back = CmrResults.load(tmp_path / "cmr")
    fig = cmr_fit_figure(back.tables, back.config.eps)
    cmr_panel = fig.axes[3]
    law = back.tables["cmr_law"].iloc[0]
    line = next(ln for ln in cmr_panel.get_lines() if ln.get_label() == "a4 T^s4 + b3 (Eq. 8)")
    t, y = line.get_data()
    np.testing.assert_allclose(y, law["a4"] * np.asarray(t) ** law["s4"] + law["b3"], rtol=1e-12)
    region = fig.axes[2]
    cmr = float(back.tables["feasible"]["cmr"].iloc[0])
    assert any(ln.get_label() == f"CMR = {cmr:.3f}" for ln in region.get_lines())
