"""Figures are Figure objects: importing ipw switches no backend and drawing opens no pyplot figure."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
from matplotlib.figure import Figure

from ipw.science.cmr.published import table5
from ipw.reports.savefig import save_figure
from ipw.reports.science_figures import capacity_figure, cmr_constants_figure, density_trend_figure

IMPORTS = ("ipw.science.capacity", "ipw.science.cmr", "ipw.science.cmr.results", "ipw.science.density", "ipw.science.density.results", "ipw.reports",
           "ipw.reports.science_figures", "ipw.reports.savefig", "ipw.cli")


def test_importing_ipw_keeps_the_notebooks_backend():
    code = ("import matplotlib; matplotlib.use('svg'); import importlib\n"
            f"for m in {IMPORTS!r}: importlib.import_module(m)\n"
            "import sys; assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()\n"
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_figures_leave_no_pyplot_state(tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    frame = pd.DataFrame({"model": ["a", "b"], "corpus": ["x", "x"], "information_capacity": [0.1, 0.2],
                          "bytes_per_token": [3.0, 4.0]})
    figures = [capacity_figure(frame), cmr_constants_figure(table5(), [20e9], 0.2e9)]
    trend = pd.DataFrame({"model": ["m1", "m2"], "release_date": pd.to_datetime(["2023-01-01", "2024-01-01"]).date,
                          "density": [1.0, 2.0]})
    figures.append(density_trend_figure(trend, {}))
    assert all(isinstance(f, Figure) for f in figures)
    for i, fig in enumerate(figures):
        assert save_figure(fig, tmp_path / f"f{i}.png").stat().st_size > 5000
    assert plt.get_fignums() == before
