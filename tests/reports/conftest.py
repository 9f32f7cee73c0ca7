"""Run folders for the report tests, written in the real store format (ipw.store.RunStore)."""

from __future__ import annotations

import pytest

from tests.fakes.runs import SyntheticRun, write_synthetic_run

HOSTILE = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "</textarea><svg onload=alert(3)>",
    '"><iframe src="javascript:alert(4)"></iframe>',
    "{{ 7*7 }} {% raw %} $x^2$ & &amp;",
)


@pytest.fixture
def two_runs(tmp_path):
    """A measured run and an estimated one on the same query ids."""
    a = write_synthetic_run(tmp_path, "measured-run", SyntheticRun(n_queries=60, seed=1, accuracy=0.7, energy_j=5.0,
                                                                  model="model-a", hardware="machine-a"))
    b = write_synthetic_run(tmp_path, "estimated-run", SyntheticRun(n_queries=60, seed=2, accuracy=0.5, energy_j=12.0,
                                                                   measured=False, hz=0, model="model-b"))
    return a, b


@pytest.fixture
def hostile_run(tmp_path):
    """A run whose outputs, query ids, model name and hardware are HTML and script."""
    return write_synthetic_run(tmp_path, "<img src=x onerror=alert(6)>", SyntheticRun(
        n_queries=12, seed=3, accuracy=0.5, outputs=HOSTILE, ids=HOSTILE,
        model="<script>alert('model')</script>", hardware="<b onmouseover=alert(5)>hw</b>"))
