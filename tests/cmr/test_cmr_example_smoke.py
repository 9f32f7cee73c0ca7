"""The CPU continual pre-training example, in its few-step smoke setting (the full run is not tested)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from ipw.science.cmr import load_runs

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cmr" / "cpt_tiny.py"


def test_smoke_run_writes_a_loadable_cpt_grid(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("cpt_tiny", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    module.main(["--smoke", "--threads", "1", "--out", str(tmp_path)])
    runs = load_runs(tmp_path / "runs.csv")
    smoke = module.SMOKE
    assert sorted(runs["ratio"].unique()) == pytest.approx(sorted(module.RATIOS), rel=1e-8)
    assert len(runs) == len(module.RATIOS) * smoke.cpt_steps // smoke.eval_every
    assert runs["tokens"].max() == smoke.cpt_steps * smoke.batch * smoke.context
