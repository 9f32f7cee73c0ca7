"""`ipw density` turns bad input into one line naming what is wrong, never a traceback."""

import pandas as pd
from click.testing import CliRunner

from ipw.cli.density import density


def _run(args):
    return CliRunner().invoke(density, args)


def _densities(tmp_path, values, start_year=2023):
    rows = [(f"m{i}", f"{start_year + i // 12}-{1 + i % 12:02d}-15", v) for i, v in enumerate(values)]
    path = tmp_path / "d.csv"
    pd.DataFrame(rows, columns=["model", "release_date", "density"]).to_csv(path, index=False)
    return path


def test_a_trend_that_does_not_grow_is_an_error_not_inf(tmp_path):
    path = _densities(tmp_path, [2.0 * 0.9**i for i in range(8)])
    result = _run(["trend", str(path), "--select", "all"])
    assert result.exit_code == 1, result.output
    assert "does not grow" in result.output and "inf" not in result.output.split("Error:")[-1]
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cutoff_with_an_empty_side_names_the_side(tmp_path):
    path = _densities(tmp_path, [1.5**i for i in range(8)])
    result = _run(["trend", str(path), "--select", "all", "--cutoff", "2022-11-30"])
    assert result.exit_code == 1 and "'before' side is empty" in result.output
    result = _run(["trend", str(path), "--select", "all", "--cutoff", "2030-01-01"])
    assert result.exit_code == 1 and "'after' side is empty" in result.output


def test_bad_files_give_one_line_naming_file_and_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("model,release_date,density\nm1,2023-01-01,abc\n")
    result = _run(["trend", str(bad)])
    assert result.exit_code == 1 and "bad.csv:2: column 'density': 'abc' is not a number" in result.output
    runs = tmp_path / "runs.csv"
    runs.write_text("params,tokens,loss\n" + "".join(f"{n},{n * 20},{3 - i / 10}\n"
                                                     for i, n in enumerate([1e6, 2e6, 4e6, 8e6, 1.6e7, 3.2e7])))
    scores = tmp_path / "scores.csv"
    scores.write_text("loss,score\n2.0,0.41\n1.8,73.2\n1.6,0.62\n1.4,0.7\n1.2,0.75\n")
    result = _run(["fit", "--losses", str(runs), "--scores", str(scores)])
    assert result.exit_code == 1 and "scores.csv:3: column 'score': 73.2 is not a fraction" in result.output
    scores.write_text("loss,score\n2.0,0.41\n1.8,0.52\n1.6,0.62\n1.4,0.7\n1.2,0.75\n")
    result = _run(["fit", "--losses", str(runs), "--scores", str(scores), "--fix", "d=abc"])
    assert result.exit_code == 2 and "'abc' is not a number" in result.output
