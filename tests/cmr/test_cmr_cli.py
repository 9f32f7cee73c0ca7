"""`ipw cmr` commands: outputs, plots, files, and errors as one clean line."""

from __future__ import annotations

from click.testing import CliRunner

from ipw.cli.cmr import cmr
from ipw.science.cmr.synthetic import SyntheticCpt, make_runs


def run(*args):
    return CliRunner().invoke(cmr, list(args), catch_exceptions=False)


def test_paper_prints_table5_cmr_and_table2_refit():
    out = run("paper")
    assert out.exit_code == 0
    assert "29.7617" in out.output and "47.8276" in out.output
    assert "corr_a_b" in out.output and "predicted_stderr" in out.output


def test_predict_one_model_with_plot(tmp_path):
    png = tmp_path / "cmr.png"
    out = run("predict", "--tokens", "20B", "--tokens", "5e10", "--model", "3.1B", "--plot", str(png))
    assert out.exit_code == 0, out.output
    assert "0.478276" in out.output and "460M" not in out.output
    assert png.stat().st_size > 10_000


def test_fit_writes_tables_and_plot(tmp_path):
    csv = tmp_path / "runs.csv"
    make_runs(SyntheticCpt(noise=1e-6)).to_csv(csv, index=False)
    out = run("fit", str(csv), "--eps", "0.02", "--predict", "40B", "--out", str(tmp_path / "res"),
              "--plot", str(tmp_path / "fit.png"))
    assert out.exit_code == 0, out.output
    assert "feasible_region" in out.output
    for name in ("token_fits", "ratio_fits", "cmr_curve", "cmr_law", "feasible", "predict"):
        assert (tmp_path / "res" / f"{name}.csv").exists()
    assert (tmp_path / "fit.png").stat().st_size > 20_000
    again = run("predict", "--constants", str(tmp_path / "res" / "cmr_law.csv"), "--tokens", "20B")
    assert again.exit_code == 0 and "synthetic" in again.output


def test_bad_csv_is_one_line_naming_file_line_and_column(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("model,ratio,tokens,general_loss,domain_loss,general_loss_before,domain_loss_before\n"
                   "m,0.5,1e9,2.1,x,2,3\n")
    out = CliRunner().invoke(cmr, ["fit", str(csv)])
    assert out.exit_code == 1
    assert f"{csv}:2: column 'domain_loss'" in out.output
    assert "Traceback" not in out.output


def test_bad_token_count_is_rejected():
    out = CliRunner().invoke(cmr, ["predict", "--tokens", "lots"])
    assert out.exit_code == 2 and "not a token count" in out.output
