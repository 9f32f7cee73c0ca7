import json

import pandas as pd
import pytest
from click.testing import CliRunner

from ipw.cli.density import density


def _run(args):
    result = CliRunner().invoke(density, args)
    return result


def _tables(tmp_path, reference_runs, score_runs):
    """The loss law's reference runs and the score law's models, each in its own CSV."""
    table, scores = tmp_path / "runs.csv", tmp_path / "scores.csv"
    reference_runs[["params", "tokens", "loss"]].to_csv(table, index=False)
    score_runs[["loss", "score"]].to_csv(scores, index=False)
    return table, scores


def test_fit_writes_laws_and_plot_then_model_reads_them(tmp_path, reference_runs, score_runs, true_loss):
    table, scores = _tables(tmp_path, reference_runs, score_runs)
    laws, plot = tmp_path / "laws.json", tmp_path / "fit.png"
    result = _run(["fit", "--losses", str(table), "--scores", str(scores), "--out", str(laws),
                   "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert "loss law R^2" in result.output and plot.stat().st_size > 1000
    saved = json.loads(laws.read_text())
    assert saved["loss_law"]["params"]["alpha"] == pytest.approx(true_loss["alpha"], rel=0.1)
    result = _run(["model", "--laws", str(laws), "--score", "0.5", "--params", "1e8"])
    assert result.exit_code == 0, result.output
    assert "density rho" in result.output


def test_model_reports_out_of_range_score_without_traceback(tmp_path, reference_runs, score_runs):
    table, scores = _tables(tmp_path, reference_runs, score_runs)
    laws = tmp_path / "laws.json"
    assert _run(["fit", str(table), "--scores", str(scores), "--out", str(laws)]).exit_code == 0
    result = _run(["model", "--laws", str(laws), "--score", "0.99", "--params", "1e8"])
    assert result.exit_code == 1 and "outside the fitted sigmoid" in result.output


def test_trend_on_shipped_table_prints_doubling_time(tmp_path):
    plot, out = tmp_path / "trend.png", tmp_path / "models.csv"
    result = _run(["trend", "--plot", str(plot), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "doubling every" in result.output and plot.stat().st_size > 1000
    assert pd.read_csv(out)["density"].gt(0).all()


def test_trend_on_a_density_table_with_cutoff(tmp_path):
    rows = [("m%d" % i, f"202{2 + i // 6}-{1 + 2 * (i % 6):02d}-15", 1.6 ** i) for i in range(12)]
    table = tmp_path / "d.csv"
    pd.DataFrame(rows, columns=["model", "release_date", "density"]).to_csv(table, index=False)
    result = _run(["trend", str(table), "--cutoff", "2022-11-30"])
    assert result.exit_code == 0, result.output
    assert "before 2022-11-30" in result.output and "from 2022-11-30" in result.output


def test_fit_with_too_few_rows_is_a_clear_error(tmp_path):
    table = tmp_path / "few.csv"
    table.write_text("params,tokens,loss\n1e6,1e8,3.0\n1e7,1e9,2.5\n")
    result = _run(["fit", str(table)])
    assert result.exit_code == 1 and "at least 5 needed" in result.output
