"""The report's DataFrames agree with ipw.science.intelligence.metrics and label every estimate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ipw.science.intelligence.metrics import coverage, summarize
from ipw.reports import tables as T
from ipw.store import load


def test_summary_has_one_row_per_run_with_the_efficiency_metrics(two_runs):
    runs = T.load_runs(two_runs)
    table = T.summary_table(runs)
    assert list(table["run"]) == ["measured-run", "estimated-run"]
    for path in two_runs:
        q = load(path).queries
        row = table.set_index("run").loc[path.name]
        expected = summarize(q).iloc[0]
        assert row["accuracy"] == pytest.approx(q["correct"].mean())
        assert row["ipw_per_w"] == pytest.approx(expected["ipw_per_w"])
        # IPJ and energy/query on the default basis, the accelerator; the system figure beside them
        assert row["ipj_per_j"] == pytest.approx(q["correct"].mean() / q["accelerator_energy_j"].mean())
        assert row["energy_j_mean"] == pytest.approx(q["accelerator_energy_j"].mean())
        assert row["system_energy_j_mean"] == pytest.approx(q["energy_j"].mean())
        assert row["energy_scope"] == "accelerator"
        # above idle on the same scope: the accelerator's beside its energy, the system's beside the system's
        assert row["energy_above_idle_j_mean"] == pytest.approx(q["accelerator_energy_above_idle_j"].mean())
        assert row["system_energy_above_idle_j_mean"] == pytest.approx(q["energy_above_idle_j"].mean())
        assert row["energy_above_idle_j_mean"] != pytest.approx(row["system_energy_above_idle_j_mean"])
        assert row["tpot_s_mean"] == pytest.approx(q["tpot_s"].mean())
        assert row["accuracy_ci_low"] <= row["accuracy"] <= row["accuracy_ci_high"]
    # the measured run's GPU is measured (its host an estimate): its accelerator basis is "measured"
    assert table.set_index("run")["energy"].to_dict() == {"measured-run": "measured", "estimated-run": "estimate"}
    assert table.set_index("run").loc["measured-run", "model"] == "model-a"
    assert table.set_index("run").loc["measured-run", "hardware"] == "machine-a"


def test_above_idle_energy_changes_ipj(two_runs):
    runs = T.load_runs(two_runs[:1])
    total, above = T.summary_table(runs), T.summary_table(runs, energy="above_idle")
    q = runs["measured-run"].queries
    # above idle on the accelerator's scope (the default's), not the system's
    assert above["ipj_per_j"].iloc[0] == pytest.approx(q["correct"].mean() / q["accelerator_energy_above_idle_j"].mean())
    assert above["ipj_per_j"].iloc[0] != pytest.approx(q["correct"].mean() / q["energy_above_idle_j"].mean())
    assert above["ipj_per_j"].iloc[0] > total["ipj_per_j"].iloc[0]
    system = T.summary_table(runs, energy="system")
    assert system["energy_above_idle_j_mean"].iloc[0] == pytest.approx(q["energy_above_idle_j"].mean())


def test_one_unmeasured_record_makes_the_run_and_its_domain_an_estimate(two_runs):
    runs = T.load_runs(two_runs)
    q = runs["measured-run"].queries
    q.loc[q.index[1], "accelerator_measured"] = False  # domain of record 1: the second domain
    summary = T.summary_table(runs).set_index("run")
    assert summary.loc["measured-run", "energy"] == "estimate"
    assert summary.loc["estimated-run", "energy"] == "estimate"
    domains = T.domain_table(runs)
    mine = domains[domains["run"] == "measured-run"].set_index("domain")["energy"]
    assert mine[q.loc[q.index[1], "domain"]] == "estimate"
    assert (mine.drop(q.loc[q.index[1], "domain"]) == "measured").all()
    q["accelerator_measured"] = True
    q["measured"] = False  # a host estimate in the system figure: the accelerator basis stays measured
    assert T.summary_table(runs).set_index("run").loc["measured-run", "energy"] == "measured"
    assert T.summary_table(runs, energy="system").set_index("run").loc["measured-run", "energy"] == "estimate"
    q["measured"] = True
    assert T.summary_table(runs).set_index("run").loc["measured-run", "energy"] == "measured"


def test_domain_table_matches_a_groupby(two_runs):
    runs = T.load_runs(two_runs)
    table = T.domain_table(runs)
    for name, run in runs.items():
        q = run.queries
        mine = table[table["run"] == name].set_index("domain")
        expected = q.groupby("domain")["accelerator_energy_j"].mean()  # the default basis
        assert list(mine.index) == sorted(expected.index)
        np.testing.assert_allclose(mine["energy_j_mean"], expected.loc[mine.index])
        np.testing.assert_allclose(mine["system_energy_j_mean"], q.groupby("domain")["energy_j"].mean().loc[mine.index])
        np.testing.assert_allclose(mine["accuracy"], q.groupby("domain")["correct"].mean().loc[mine.index])


@pytest.mark.parametrize(("acc", "energy", "front"), [
    ([0.5, 0.6, 0.4, 0.6], [1.0, 2.0, 3.0, 2.5], [True, True, False, False]),  # 3 dominated; 4 ties 2 on acc, costs more
    ([0.9, 0.5], [1.0, 0.5], [True, True]),  # a trade-off: both on the front
    ([0.5, 0.5], [1.0, 1.0], [True, False]),  # identical points: one stands for both
    ([np.nan, 0.3], [1.0, 2.0], [False, True]),
])
def test_pareto_front(acc, energy, front):
    assert T.pareto_front(np.array(acc), np.array(energy)).tolist() == front


def test_pareto_front_against_brute_force():
    rng = np.random.default_rng(0)
    acc, e = rng.random(40).round(1), rng.random(40).round(1)
    dominated = [any((acc[j] >= acc[i] and e[j] <= e[i]) and (acc[j] > acc[i] or e[j] < e[i]) for j in range(40))
                 for i in range(40)]
    mask = T.pareto_front(acc, e)
    assert not mask[np.array(dominated)].any()
    # every non-dominated point is on the front or an exact duplicate of one that is
    for i in np.flatnonzero(~np.array(dominated) & ~mask):
        assert any(mask[j] and acc[j] == acc[i] and e[j] == e[i] for j in range(40))


def test_coverage_tables_agree_with_efficiency(two_runs):
    runs = T.load_runs(two_runs)
    table, routed, n = T.coverage_tables(runs)
    cov = coverage({k: r.queries for k, r in runs.items()})
    assert n == cov["queries"] == 60
    best = table.iloc[-1]
    assert best["accuracy"] == pytest.approx(cov["coverage"])
    assert best["energy_j_mean"] == pytest.approx(cov["best_of_local"]["energy_j_mean"])
    assert best["energy"] == "estimate"  # one of the runs is estimated
    assert routed["queries_routed"].sum() == n


def test_coverage_needs_shared_ids(tmp_path):
    from tests.fakes.runs import SyntheticRun, write_synthetic_run

    a = write_synthetic_run(tmp_path, "a", SyntheticRun(n_queries=5, ids=("x1", "x2", "x3", "x4", "x5")))
    b = write_synthetic_run(tmp_path, "b", SyntheticRun(n_queries=5))
    with pytest.raises(ValueError, match="share no query ids"):
        T.coverage_tables(T.load_runs([a, b]))


def test_samples_are_cut_and_mix_right_and_wrong(two_runs):
    runs = T.load_runs(two_runs[:1])
    runs["measured-run"].queries.loc[0, "output"] = "x" * 1000
    table = T.samples_table(runs, per_run=4, max_chars=50)
    assert len(table) == 4 and table["correct"].sum() == 2
    assert table["output"].str.len().max() <= 50 + len(" [...]")


def test_same_folder_name_twice_gets_distinct_names(two_runs):
    runs = T.load_runs([two_runs[0], two_runs[0]])
    assert list(runs) == ["measured-run", "measured-run #2"]


def test_provenance_tables_come_from_the_manifest(two_runs):
    runs = T.load_runs(two_runs)
    meters = T.meters_table(runs)
    mine = meters[meters["run"] == "measured-run"].set_index("domain")
    assert mine[["source", "energy"]].to_dict("index") == {
        "gpu:0": {"source": "nvml.total_energy_counter", "energy": "measured"},
        "cpu": {"source": "estimate.cpu_util_tdp", "energy": "estimate"}}
    assert (meters.loc[meters["run"] == "estimated-run", "energy"] == "estimate").all()
    idle = T.idle_table(runs)
    for name, run in runs.items():
        assert idle[idle["run"] == name].set_index("domain")["idle_power_w"].to_dict() == run.idle[0]["power_w"]
    flags = T.flags_table(runs).set_index("run")
    # a host estimate makes every record's system figure an estimate (flag "estimate"), in both runs
    assert flags.loc["estimated-run", "records"] == 60 == flags.loc["measured-run", "records"]
    assert set(flags["flag"]) == {"estimate"}
    assert isinstance(T.versions_table(runs), pd.DataFrame)


def test_the_report_reuses_a_valid_summary_json_and_recomputes_any_other(two_runs):
    """summary.json is what the runner computed over the run's records on the default basis; the
    report takes it as it is (a million records are not resampled again), and recomputes where it
    does not fit: another basis, a summary older than the records, or one missing keys."""
    import json

    from ipw.run.session import write_summary
    from ipw.store import RunStore

    path = next(p for p in two_runs if p.name == "measured-run")
    write_summary(RunStore.open(path))
    fresh = T.summary_table(T.load_runs([path]))
    again = T.summary_table(T.load_runs([path]))
    pd.testing.assert_frame_equal(fresh, again)
    summary = json.loads((path / "summary.json").read_text())
    from dataclasses import replace

    (name, run), = T.load_runs([path]).items()
    recomputed = T.summary_table({name: replace(run, summary=None)})  # the same numbers, resampled again
    pd.testing.assert_frame_equal(recomputed, fresh)
    pd.testing.assert_frame_equal(T.domain_table({name: replace(run, summary=None)}), T.domain_table({name: run}))
    summary["overall"]["accuracy"] = 0.123  # marked: a table that shows it read the file
    summary["by_domain"][0]["accuracy"] = 0.456
    (path / "summary.json").write_text(json.dumps(summary))
    runs = T.load_runs([path])
    assert T.summary_table(runs)["accuracy"].iloc[0] == 0.123
    assert 0.456 in set(T.domain_table(runs)["accuracy"])
    assert T.summary_table(runs, energy="system")["accuracy"].iloc[0] != 0.123  # another basis: recomputed
    del summary["overall"]["system_measured"]  # an older summary: recomputed
    (path / "summary.json").write_text(json.dumps(summary))
    assert T.summary_table(T.load_runs([path]))["accuracy"].iloc[0] != 0.123
    summary["overall"]["system_measured"] = True
    summary["overall"]["n"] += 1  # records added since: recomputed
    (path / "summary.json").write_text(json.dumps(summary))
    assert T.summary_table(T.load_runs([path]))["accuracy"].iloc[0] != 0.123
