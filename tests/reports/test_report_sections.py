"""--extra: the outputs the science commands really write become report sections."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ipw.reports.extras import ExtraError, load_extra
from tests.conftest import REPO


def _ok(result):
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def cmr_out(tmp_path_factory):
    from ipw.cli.cmr import cmr

    out = tmp_path_factory.mktemp("cmr") / "out"
    _ok(CliRunner().invoke(cmr, ["fit", str(REPO / "examples/cmr/results/tiny_runs.csv"), "--token-unit", "1024",
                                 "--eps", "0.02", "--predict", "200K", "--out", str(out)]))
    return out


def test_cmr_fit_folder(cmr_out):
    section = load_extra(cmr_out)
    assert section.key == "cmr"
    captions = [t.caption for t in section.tables]
    assert captions[0].startswith("CMR law") and any("extrapolated" in c for c in captions)
    law = pd.read_csv(cmr_out / "cmr_law.csv").iloc[0]
    assert any(f"{law['a4']:.4g}" in line and f"{law['b3']:.4g}" in line for line in section.summary)
    feasible = pd.read_csv(cmr_out / "feasible.csv").iloc[0]
    assert any(f"CMR {feasible['cmr']:.1%}" in line for line in section.summary)
    assert len(section.figures) == 1


def test_cmr_single_csvs(cmr_out):
    assert load_extra(cmr_out / "cmr_law.csv").tables[0].caption.startswith("CMR law")
    curve = load_extra(cmr_out / "cmr_curve.csv")
    assert curve.tables[0].caption == "CMR per token budget" and curve.figures


def test_density_trend_csv(tmp_path):
    from ipw.cli.density import density
    from ipw.science.density.trend import fit_trend

    out = tmp_path / "trend.csv"
    _ok(CliRunner().invoke(density, ["trend", "--out", str(out)]))
    section = load_extra(out)
    assert section.key == "density-trend"
    fit = fit_trend(pd.read_csv(out, parse_dates=["release_date"]).assign(
        release_date=lambda f: f["release_date"].dt.date), "frontier")
    assert f"{fit.doubling_months:.2f} +/- {fit.doubling_months_stderr:.2f} months" in section.summary[0]
    assert len(section.tables[0].frame) == len(pd.read_csv(out))


def test_density_laws_json(tmp_path):
    from ipw.cli.density import density
    from ipw.science.density.data import reference_token_grid
    from ipw.science.density.laws import loss_law, score_law

    grid = reference_token_grid()
    rng = np.random.default_rng(5)
    grid["loss"] = loss_law(grid["params"], grid["tokens"], a=40.0, alpha=0.25, b=300.0, beta=0.3) * (1 + 0.003 * rng.standard_normal(len(grid)))
    grid["score"] = score_law(grid["loss"], c=0.7, gamma=-3.0, l=1.8, d=0.25)
    grid[["params", "tokens", "loss"]].to_csv(tmp_path / "ref.csv", index=False)
    grid[["loss", "score"]].to_csv(tmp_path / "scores.csv", index=False)
    _ok(CliRunner().invoke(density, ["fit", str(tmp_path / "ref.csv"), "--scores", str(tmp_path / "scores.csv"),
                                     "--out", str(tmp_path / "laws.json")]))
    section = load_extra(tmp_path / "laws.json")
    table = section.tables[0].frame
    written = json.loads((tmp_path / "laws.json").read_text())
    assert set(table["param"]) == set(written["loss_law"]["params"]) | set(written["score_law"]["params"])
    assert table.set_index("param").loc["alpha", "value"] == pytest.approx(written["loss_law"]["params"]["alpha"])
    assert not section.warnings


def test_density_losses_csv(tmp_path):
    from ipw.science.density.results import DensityLossesResult

    frame = pd.DataFrame({"id": ["a", "b"], "n_answer_tokens": [1, 3], "nll_nats": [2.0, 3.0], "loss_per_token": [2.0, 1.0]})
    DensityLossesResult(frame, "m").save(tmp_path / "losses.json")  # what `ipw density model --out losses.csv` writes
    section = load_extra(tmp_path / "losses.csv")
    assert "item mean 1.5000" in section.summary[0] and "token mean 1.2500" in section.summary[1]


def _capacity_results():
    from ipw.science.capacity.api import CapacityResult, results_frame

    def one(model, corpus, ic, bpt):
        return CapacityResult(model=model, corpus=corpus, information_capacity=ic, text_size_bits_per_token=30.0,
                              nll_bits_per_token=10.0, bias_bits=-27.0, flops_per_token=2e8,
                              log2_flops_per_token=27.6, bytes_per_token=bpt, bits_per_byte=2.5, samples=4,
                              tokens_scored=400, truncated_samples=1, max_tokens=256, averaging="official")

    return results_frame([one("m1", "math", 0.2, 4.0), one("m1", "code", 0.4, 3.0), one("m2", "math", 0.1, 2.0)])


def test_capacity_folder_json_and_csv(tmp_path):
    from ipw.cli.capacity import _write  # the writer `ipw capacity --out` uses

    _write(_capacity_results(), tmp_path / "cap", {"max_tokens": 256, "bias_bits": None})
    for path in (tmp_path / "cap", tmp_path / "cap" / "capacity.json", tmp_path / "cap" / "capacity.csv"):
        section = load_extra(path)
        assert section.key == "capacity"
        assert section.summary[0].startswith("m1: IC 0.3000 (mean over 2 corpora)")
        assert any("truncated" in w for w in section.warnings)
        assert section.figures


@pytest.mark.parametrize("content,suffix", [("a,b\n1,2\n", ".csv"), ('{"x": 1}', ".json"), ("not json", ".json")])
def test_unknown_extra_is_a_clear_error(tmp_path, content, suffix):
    path = tmp_path / f"thing{suffix}"
    path.write_text(content)
    with pytest.raises(ExtraError, match="thing"):
        load_extra(path)


def test_unknown_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ExtraError, match="no capacity"):
        load_extra(tmp_path)
