"""Fuzzing the CPT runs CSV loader: every file either loads every data row or raises the project's
own error naming the file, never another exception, a hang or a silent partial result."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipw.science.cmr import load_runs
from ipw.science.cmr.io import COLUMNS
from ipw.core.errors import InputFileError

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

HEADER = ",".join(COLUMNS)
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-5, 10**12).map(str),
                    st.sampled_from(["", "abc", "1e999", "-0", "0.25", "nan", " 2.5 ", '"3"', "1,5"]))
cells = st.one_of(numbers, st.text(max_size=8))
good_rows = st.tuples(st.sampled_from(["460M", "m", "x y"]), st.floats(0, 1), st.floats(1, 1e12),
                      st.floats(0.1, 5), st.floats(0.1, 5)).map(
    lambda r: f"{r[0]},{r[1]!r},{r[2]!r},{r[3]!r},{r[4]!r},2.0,3.0")
rows = st.one_of(good_rows, st.lists(cells, min_size=0, max_size=9).map(",".join), st.text(max_size=30),
                 st.sampled_from(["# a comment", "", "   "]))
files = st.one_of(
    st.lists(rows, max_size=6).map(lambda rs: "\n".join([HEADER, *rs]).encode("utf-8")),
    st.lists(rows, max_size=4).map(lambda rs: b"\xef\xbb\xbf" + "\r\n".join([HEADER, *rs]).encode("utf-8")),
    st.tuples(st.lists(good_rows, max_size=3), st.binary(min_size=1, max_size=6)).map(
        lambda p: "\n".join([HEADER, *p[0]]).encode("utf-8") + b"\n" + p[1]),
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8")),
)


def _data_lines(data: bytes) -> int:
    """Non-blank, non-comment lines after the header (split at \\n, a BOM dropped)."""
    lines = data.decode("utf-8-sig").split("\n")
    kept = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return len(kept) - 1


@FUZZ
@given(data=files)
def test_runs_csv_loads_every_row_or_fails_naming_the_file(tmp_path, data):
    path = tmp_path / "runs.csv"
    path.write_bytes(data)
    try:
        frame = load_runs(path)
    except InputFileError as e:  # CsvValueError is one
        assert str(path) in str(e)
        return
    assert len(frame) == _data_lines(data)  # no row dropped silently
    assert set(COLUMNS) <= set(frame.columns)
    assert frame["ratio"].between(0, 1).all() and (frame["tokens"] > 0).all()
