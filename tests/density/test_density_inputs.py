"""Bad input to the density loaders and fits is refused with a message that names it."""

import numpy as np
import pytest

from ipw.science.density import BadValue, TooFewPointsError, fit_loss_law, fit_score_law
from ipw.science.density.data import (
    load_density_table, load_loss_runs, load_open_models, load_published_scores, load_score_runs,
)
from ipw.core.errors import DegenerateDataError, InputFileError, IpwError


def _write(tmp_path, text, name="t.csv", raw=None):
    path = tmp_path / name
    path.write_bytes(raw if raw is not None else text.encode("utf-8"))
    return path


def test_letters_in_a_number_column_name_file_line_and_column(tmp_path):
    path = _write(tmp_path, "params,tokens,loss\n1e6,1e8,3.0\n2e6,abc,2.5\n")
    with pytest.raises(InputFileError, match=r"t\.csv:3: column 'tokens': 'abc' is not a number"):
        load_loss_runs(path)


def test_empty_file_is_named(tmp_path):
    path = _write(tmp_path, "")
    with pytest.raises(InputFileError, match=r"t\.csv: empty file"):
        load_density_table(path)


def test_header_without_rows_is_named(tmp_path):
    path = _write(tmp_path, "model,release_date,density\n\n")
    with pytest.raises(InputFileError, match="no data rows"):
        load_density_table(path)


def test_string_density_names_its_line(tmp_path):
    path = _write(tmp_path, "model,release_date,density\nm1,2023-01-01,1.5\nm2,2023-06-01,high\n")
    with pytest.raises(InputFileError, match=r"t\.csv:3: column 'density': 'high' is not a number"):
        load_density_table(path)


def test_negative_or_nan_density_is_refused(tmp_path):
    path = _write(tmp_path, "model,release_date,density\nm1,2023-01-01,-1\n")
    with pytest.raises(InputFileError, match=r":2: column 'density': -1 must be > 0"):
        load_density_table(path)
    path = _write(tmp_path, "model,release_date,density\nm1,2023-01-01,nan\n")
    with pytest.raises(InputFileError, match="not a finite number"):
        load_density_table(path)


def test_excel_bom_does_not_hide_the_first_column(tmp_path):
    text = "model,release_date,density\nm1,2023-01-01,1.5\n"
    path = _write(tmp_path, "", raw=b"\xef\xbb\xbf" + text.encode())
    frame = load_density_table(path)
    assert list(frame["model"]) == ["m1"] and frame["density"].iloc[0] == 1.5


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = _write(tmp_path, "", raw=b"model,release_date,density\nm\xe9,2023-01-01,1.5\n")
    with pytest.raises(InputFileError, match=r"t\.csv:2: not UTF-8 text"):
        load_density_table(path)


def test_ragged_row_and_bad_date_are_named(tmp_path):
    path = _write(tmp_path, "model,release_date,density\nm1,2023-01-01\n")
    with pytest.raises(InputFileError, match=r":2: 2 field\(s\), the header has 3"):
        load_density_table(path)
    path = _write(tmp_path, "model,release_date,density\nm1,01/02/2023,1.0\n")
    with pytest.raises(InputFileError, match=r":2: column 'release_date': '01/02/2023' is not a YYYY-MM-DD"):
        load_density_table(path)


def test_percentage_among_fractions_is_refused_in_a_file_and_in_the_fit(tmp_path):
    path = _write(tmp_path, "loss,score\n2.0,0.41\n1.8,73.2\n1.6,0.62\n")
    with pytest.raises(InputFileError, match=r":3: column 'score': 73.2 is not a fraction"):
        load_score_runs(path)
    with pytest.raises(BadValue, match=r"score\[1\] = 73.2.*write 0.732"):
        fit_score_law([2.0, 1.8, 1.6, 1.4, 1.2, 1.0], [0.41, 73.2, 0.62, 0.7, 0.75, 0.8])


def test_negative_loss_is_refused(tmp_path):
    with pytest.raises(BadValue, match=r"loss\[2\] = -0.5: loss must be > 0"):
        fit_loss_law([1e6, 2e6, 4e6, 8e6, 1.6e7], [1e8, 2e8, 4e8, 8e8, 1.6e9],
                     [3.0, 2.8, -0.5, 2.4, 2.2])
    with pytest.raises(BadValue, match="loss must be > 0"):
        fit_score_law([2.0, -1.0, 1.6, 1.4, 1.2], [0.3, 0.4, 0.5, 0.6, 0.7])
    path = _write(tmp_path, "params,tokens,loss\n1e6,1e8,-3\n")
    with pytest.raises(InputFileError, match=r":2: column 'loss': -3 must be > 0"):
        load_loss_runs(path)


def test_ten_identical_rows_are_one_point_not_a_fit():
    with pytest.raises(TooFewPointsError, match=r"1 point\(s\) given, at least 5 needed.*10 rows"):
        fit_loss_law([1e8] * 10, [1e10] * 10, [2.5] * 10)
    with pytest.raises(TooFewPointsError, match=r"1 point\(s\) given"):
        fit_score_law([1.5] * 10, [0.4] * 10)


def test_constant_scores_are_degenerate_not_a_fit_with_tiny_errors():
    with pytest.raises(DegenerateDataError, match="every score is 0.4"):
        fit_score_law(np.linspace(1.0, 2.0, 10), [0.4] * 10)


def test_every_loader_error_is_an_ipw_error(tmp_path):
    missing = tmp_path / "none.csv"
    for loader in (load_density_table, load_loss_runs, load_score_runs, load_open_models,
                   load_published_scores):
        with pytest.raises(IpwError, match="none.csv: no such file"):
            loader(missing)
