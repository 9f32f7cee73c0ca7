"""Runs CSV loading: a missing column or a bad value names the file, line and column."""

from __future__ import annotations

import pytest

from ipw.science.cmr import CsvValueError, load_runs, save_runs
from ipw.science.cmr.synthetic import SyntheticCpt, make_runs

HEADER = "model,ratio,tokens,general_loss,domain_loss,general_loss_before,domain_loss_before"


def write(tmp_path, *lines):
    path = tmp_path / "runs.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_round_trip(tmp_path):
    runs = make_runs(SyntheticCpt(ratios=(0.25, 0.5), t_values=(1.0, 2.0)))
    loaded = load_runs(save_runs(runs, tmp_path / "r.csv"))
    assert len(loaded) == 4
    assert loaded["line"].tolist() == [2, 3, 4, 5]
    assert loaded["ratio"].tolist() == [0.25, 0.25, 0.5, 0.5]


def test_missing_column_names_file_line_and_column(tmp_path):
    path = write(tmp_path, "model,ratio,tokens,general_loss,domain_loss,general_loss_before", "m,0.5,1,2,3,2")
    with pytest.raises(CsvValueError) as err:
        load_runs(path)
    assert err.value.column == "domain_loss_before"
    assert err.value.line == 1
    assert str(path) in str(err.value)


def test_bad_number_names_line_and_column_counting_comments(tmp_path):
    path = write(tmp_path, "# a comment", HEADER, "m,0.5,1e9,2.1,3.0,2,3", "", "m,0.5,2e9,abc,3.0,2,3")
    with pytest.raises(CsvValueError, match=r"runs.csv:5: column 'general_loss': 'abc' is not a number"):
        load_runs(path)


@pytest.mark.parametrize("row, column", [
    ("m,25,1e9,2.1,3.0,2,3", "ratio"),
    ("m,0.5,0,2.1,3.0,2,3", "tokens"),
    ("m,0.5,1e9,nan,3.0,2,3", "general_loss"),
    ("m,0.5,1e9,2.1,-3.0,2,3", "domain_loss"),
    (",0.5,1e9,2.1,3.0,2,3", "model"),
])
def test_out_of_range_values(tmp_path, row, column):
    with pytest.raises(CsvValueError) as err:
        load_runs(write(tmp_path, HEADER, row))
    assert (err.value.line, err.value.column) == (2, column)


def test_before_loss_must_be_one_value_per_model(tmp_path):
    path = write(tmp_path, HEADER, "m,0.5,1e9,2.1,3.0,2,3", "m,0.5,2e9,2.1,3.0,2.5,3")
    with pytest.raises(CsvValueError) as err:
        load_runs(path)
    assert (err.value.line, err.value.column) == (3, "general_loss_before")


def test_header_only_and_missing_file(tmp_path):
    with pytest.raises(CsvValueError, match="no data rows"):
        load_runs(write(tmp_path, HEADER))
    with pytest.raises(CsvValueError, match="cannot read"):
        load_runs(tmp_path / "absent.csv")
