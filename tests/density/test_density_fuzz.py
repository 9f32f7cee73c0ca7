"""Property-based fuzzing of the density CSV loaders: every input loads or is refused by name.

Whatever bytes a file holds, a loader returns a frame or raises the project's own
:class:`~ipw.core.errors.InputFileError` whose message names the file; never another exception.
"""

import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ipw.science.density.data import (  # noqa: E402
    load_density_table, load_loss_runs, load_open_models, load_published_scores, load_score_runs,
)
from ipw.core.errors import InputFileError  # noqa: E402

LOADERS = {
    "density": (load_density_table, ["model", "release_date", "density"]),
    "loss": (load_loss_runs, ["params", "tokens", "loss"]),
    "score": (load_score_runs, ["loss", "score"]),
    "open": (load_open_models, ["model", "params_b", "release_date", "benchmark", "score_pct", "source"]),
    "published": (load_published_scores, ["model", "family", "params_b", "release_date", "benchmark",
                                          "score_pct", "evaluator", "source", "verified"]),
}
CELLS = st.one_of(
    st.sampled_from(["", "1", "0", "-2", "1e9", "0.5", "73.2", "nan", "inf", "abc", "2023-01-01",
                     "2023-13-45", '"a,b"', '"', "1e999", "\x00", " 3 ", "MMLU"]),
    st.text(max_size=8),
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check(loader, path):
    try:
        frame = loader(path)
    except InputFileError as e:
        assert str(path) in str(e)
        return
    assert isinstance(frame, pd.DataFrame) and len(frame) > 0


@SETTINGS
@given(kind=st.sampled_from(sorted(LOADERS)), data=st.binary(max_size=300))
def test_arbitrary_bytes(tmp_path, kind, data):
    loader, _ = LOADERS[kind]
    path = tmp_path / f"{kind}.csv"
    path.write_bytes(data)
    _check(loader, path)


@SETTINGS
@given(kind=st.sampled_from(sorted(LOADERS)), rows=st.lists(st.lists(CELLS, min_size=0, max_size=10), max_size=5),
       bom=st.booleans(), newline=st.sampled_from(["\n", "\r\n"]))
def test_right_header_arbitrary_cells(tmp_path, kind, rows, bom, newline):
    loader, header = LOADERS[kind]
    lines = [",".join(header)] + [",".join(r) for r in rows]
    text = ("\ufeff" if bom else "") + newline.join(lines) + newline
    path = tmp_path / f"{kind}.csv"
    path.write_bytes(text.encode("utf-8", errors="replace"))
    _check(loader, path)
