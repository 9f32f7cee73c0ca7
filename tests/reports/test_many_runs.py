"""Many runs (the IPW paper's comparison is about 20 models on 8 accelerators): the report and
``ipw compare`` stay readable, grouped by model and hardware, with a frontier per hardware.

40 runs of 24 queries (10 models on 4 hardware), every one with the summary.json the runner writes;
matplotlib's UserWarning (the tight layout that cannot be applied) is an error here.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ipw.cli import compare as compare_cli
from ipw.reports import grouped
from ipw.reports import tables as T
from ipw.reports.report import build_report
from ipw.run.session import write_summary
from ipw.store import RunStore, compact, load
from tests.fakes.runs import SyntheticRun, write_synthetic_run

MODELS = [f"m{k}-{size}" for k in range(2) for size in ("1B", "3B", "7B", "14B", "70B")]
HARDWARE = ["GPU alpha 80GB", "GPU beta 141GB", "APU gamma 128GB", "board delta 64GB"]


def _spec(m: int, h: int, n: int = 24) -> SyntheticRun:
    rng = np.random.default_rng(m)  # a model's accuracy is its own on every hardware, give or take
    return SyntheticRun(n_queries=n, seed=100 * m + h, accuracy=float(np.clip(0.3 + 0.05 * m + rng.uniform(-0.2, 0.2), 0, 1)),
                        energy_j=(1.0 + m) * (1.0 + 0.5 * h), model=MODELS[m], hardware=HARDWARE[h],
                        engine=("vllm", "llamacpp")[m % 2], hz=0.5 if h == 0 else 0)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    d = tmp_path_factory.mktemp("grid")
    paths = []
    for m in range(len(MODELS)):
        for h in range(len(HARDWARE)):
            path = write_synthetic_run(d, f"r{m:02d}-{h}", _spec(m, h))
            store = RunStore.open(path)
            write_summary(store)  # as the runner writes it at the end of a run
            store.close(seal=False)
            paths.append(path)
    return paths


def _no_warnings(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "Tight layout not applied" and the like
        return fn()


def test_a_report_of_40_runs_groups_its_figures_by_hardware(grid):
    report = _no_warnings(lambda: build_report(grid))
    html = _no_warnings(report.html)  # drawing lays the figures out: no warning there either
    assert len(report.runs) == 40 > grouped.MANY_RUNS
    sections = {s.key: s for s in report.sections}
    summary = report.tables["summary"]
    (front_plot,) = sections["summary"].figures
    panels = [ax for ax in front_plot.figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == HARDWARE  # one panel per hardware, in the order given
    on_front = T.hardware_front(summary)
    for ax, hw in zip(panels, HARDWARE):
        red = ax.collections[-1].get_offsets()  # that hardware's frontier, and only its runs
        mine = summary[(summary["hardware"] == hw).to_numpy() & on_front]
        assert sorted(map(tuple, np.asarray(red))) == sorted(zip(mine["energy_j_mean"], mine["accuracy"]))
        assert {t.get_text() for t in ax.texts} == set(mine["model"])  # the frontier's models are named
    (heat,) = sections["domains"].figures
    domains = sorted(report.tables["domains"]["domain"].unique())
    images = [ax for ax in heat.figure.axes if ax.images]
    assert len(images) == 2 * len(domains)  # accuracy and energy, one panel per domain
    assert [t.get_text() for t in images[0].get_yticklabels()] == MODELS  # one row per model
    assert images[0].images[0].get_array().shape == (len(MODELS), len(HARDWARE))
    (ranges,) = sections["energy"].figures  # no timeline past MANY_RUNS: one row per model per hardware
    assert len([ax for ax in ranges.figure.axes if ax.get_visible()]) == len(HARDWARE)
    assert any("power timelines are drawn for up to 12 runs" in line for line in sections["energy"].summary)
    for plot in (front_plot, heat, ranges):  # sized by what they show, not by the number of runs
        width, height = plot.figure.get_size_inches()
        assert width < 20 and height < 12
    assert "IPW [1/W] by model and hardware" in html


def test_the_grid_tables_hold_each_run_once_and_mark_each_hardware_frontier(grid):
    runs = T.load_runs(grid)
    summary = T.summary_table(runs)
    ipw_grid = grouped.grid(summary, "ipw_per_w")
    assert list(ipw_grid.columns) == ["model", *HARDWARE] and list(ipw_grid["model"]) == MODELS
    text = grouped.grid_text(summary, "ipw_per_w")
    on_front = T.hardware_front(summary)
    for row, front in zip(summary.itertuples(), on_front):
        cell = text.loc[text["model"] == row.model, row.hardware].item()
        assert cell == f"{row.ipw_per_w:.4g}" + ("*" if front else "")
    for hw in HARDWARE:  # each hardware's frontier: no run on it more accurate for less energy
        mine = summary[summary["hardware"] == hw]
        front = mine[T.hardware_front(mine)]
        assert len(front) >= 1
        for f in front.itertuples():
            assert not ((mine["accuracy"] >= f.accuracy) & (mine["energy_j_mean"] <= f.energy_j_mean)
                        & ((mine["accuracy"] > f.accuracy) | (mine["energy_j_mean"] < f.energy_j_mean))).any()
    frontier = T.frontier_table(summary)
    assert frontier.set_index("run")["on_hardware_front"].reindex(summary["run"]).tolist() == on_front.tolist()


def test_a_model_on_two_engines_gets_a_row_per_engine():
    summary = pd.DataFrame({"run": ["a", "b", "c"], "model": ["x", "x", "x"], "engine": ["vllm", "llamacpp", "vllm"],
                            "hardware": ["h1", "h1", "h2"], "accuracy": [0.5, 0.6, 0.5],
                            "energy_j_mean": [1.0, 2.0, 3.0], "ipw_per_w": [0.1, 0.2, 0.3]})
    assert grouped.row_keys(summary) == ["model", "engine"]
    g = grouped.grid(summary, "ipw_per_w")
    assert g.set_index(["model", "engine"]).loc[("x", "vllm")].tolist() == [0.1, 0.3]
    assert grouped.grid_text(summary, "ipw_per_w").set_index("engine").loc["llamacpp", "h2"] == ""  # did not run there


def test_compare_prints_the_grid_past_12_runs_and_the_runs_below(grid):
    assert compare_cli.GRID_PAST == grouped.MANY_RUNS
    paths = [str(p) for p in grid]
    res = CliRunner().invoke(compare_cli.compare, paths)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("40 runs: 10 models on 4 hardware; accelerator energy (measured)")
    summary = T.summary_table(T.load_runs(grid))  # the report's numbers: the same summary.json
    on_front = T.hardware_front(summary)
    for title, col, digits in (("IPW [1/W]", "ipw_per_w", ".4g"), ("accuracy", "accuracy", ".1%")):
        at = lines.index(title)
        header, body = lines[at + 1], lines[at + 2: at + 2 + len(MODELS)]
        assert all(hw.split()[0] in header for hw in HARDWARE)
        for row, front in zip(summary.itertuples(), on_front):
            line = next(b for b in body if b.split()[0] == row.model)
            assert f"{getattr(row, col):{digits}}" + ("*" if front else "") in line.split()
    per_run = CliRunner().invoke(compare_cli.compare, paths[:3]).output  # 3 runs: one row each, as before
    assert per_run.splitlines()[0].split()[:2] == ["run", "n"] and "r00-0" in per_run
    forced = CliRunner().invoke(compare_cli.compare, paths[:3] + ["--table", "grid"]).output
    assert forced.startswith("3 runs: 1 models on 3 hardware")
    js = json.loads(CliRunner().invoke(compare_cli.compare, paths + ["--json"]).output)
    assert len(js["runs"]) == 40 and js["coverage"]["queries"] == 24  # JSON: one row per run, always
    assert {r["run"]: r["ipw_per_w"] for r in js["runs"]} == pytest.approx(dict(zip(summary["run"], summary["ipw_per_w"])))


def test_loading_without_the_json_columns_is_the_same_frame_less_them(grid, tmp_path):
    import shutil

    full, lean = load(grid[0]), load(grid[0], json_columns=False)
    pd.testing.assert_frame_equal(full.queries.drop(columns=["domains", "engine_extra"]), lean.queries)
    assert lean.has_timeline and lean.timeline_rows == len(full.timeline) > 0
    pd.testing.assert_frame_equal(lean.read_timeline(), full.timeline)
    copy = shutil.copytree(grid[0], tmp_path / "sealed")
    compact(copy)  # the records in a segment, whose JSON columns are then not read at all
    pd.testing.assert_frame_equal(load(copy, json_columns=False).queries, lean.queries)
    pd.testing.assert_frame_equal(load(copy).queries, full.queries)
    (seg,) = (copy / "segments").glob("*.parquet")  # damaged: set aside and rebuilt from the journal either way
    seg.write_bytes(seg.read_bytes()[: seg.stat().st_size // 2])
    pd.testing.assert_frame_equal(load(copy, json_columns=False).queries, lean.queries)
    assert list((copy / "segments").glob("*.damaged"))


def test_up_to_12_runs_keep_one_figure_with_a_legend_beside_it(grid):
    report = _no_warnings(lambda: build_report(grid[:12]))  # 3 models on 4 hardware: at the limit
    _no_warnings(report.html)
    sections = {s.key: s for s in report.sections}
    (front,) = sections["summary"].figures
    assert len(front.figure.axes) == 1  # one plot, every run named
    assert len(front.figure.axes[0].texts) == 12
    timeline, dist, above = sections["energy"].figures
    ax = dist.figure.axes[-1]
    legend = ax.get_legend()  # 12 entries: to the right of the axes (display coordinates), the figure widened
    assert len(legend.get_texts()) == 12 and legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1
    assert dist.figure.get_size_inches()[1] >= 0.16 * 12


def test_the_timeline_figure_reads_four_columns_with_the_domains_as_codes(grid, tmp_path):
    from ipw.reports import run_figures as P
    from ipw.store.run import Run

    run = load(grid[0])  # a run with a timeline (hardware 0)
    full = run.read_timeline()
    lean = run.read_timeline(("t_s", "power_w", "domain"), lean=True)
    assert list(lean.columns) == ["t_s", "power_w", "domain"] and isinstance(lean["domain"].dtype, pd.CategoricalDtype)
    assert lean["domain"].astype(str).tolist() == full["domain"].tolist() and lean["t_s"].equals(full["t_s"])
    assert run.__dict__["_timeline"].__class__.__name__ == "TimelineSource"  # neither read kept it
    # two sessions, each on its own clock: the second drawn after the first, per domain
    tl = pd.DataFrame({"t_s": [100.0, 101.0, 5.0, 6.0] * 2, "power_w": [1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0],
                       "domain": ["gpu:0"] * 4 + ["cpu"] * 4, "session": [0, 0, 1, 1] * 2})
    two = Run(tmp_path, {"sessions": [{}, {}], "meters": []}, run.queries, tl)
    lines = {line.get_label(): line for line in P.power_timeline({"two": two}).axes[0].get_lines()
             if not line.get_label().startswith("_")}
    assert lines["two gpu:0 [estimate]"].get_xdata().tolist() == [0.0, 1.0, 2.0, 3.0]
    assert lines["two cpu [estimate]"].get_ydata().tolist() == [10.0, 20.0, 30.0, 40.0]
