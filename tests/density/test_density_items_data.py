import json

import pytest

from ipw.science.density.data import load_open_models, load_reference_models, reference_token_grid
from ipw.science.density.items import load_items, load_lmeval_task, shipped_items
from ipw.core.errors import InputFileError


def test_every_shipped_row_names_its_source():
    for frame in (load_reference_models(), load_open_models()):
        assert frame["source"].str.strip().str.len().gt(10).all()


def test_reference_grid_spans_six_sizes_and_six_token_budgets():
    grid = reference_token_grid()
    assert grid["params"].nunique() == 6 and len(grid) == 36
    assert (grid["tokens"] == grid["params"] * grid["multiplier"]).all()
    assert load_reference_models()["params"].is_monotonic_increasing


def test_open_models_have_units_converted():
    frame = load_open_models(benchmark="mmlu")
    assert frame["score"].between(0, 1).all()
    assert (frame["params"] == frame["params_b"] * 1e9).all()


def test_shipped_benchmark_items_are_well_formed():
    items = shipped_items()
    assert len(items) >= 20
    assert len({i.id for i in items}) == len(items)


def test_bad_jsonl_line_is_named(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text('{"prompt": "Q", "answer": " A"}\n{"prompt": "Q2"}\n')
    with pytest.raises(InputFileError, match=r"items.jsonl:2: missing or empty string field 'answer'"):
        load_items(path)


def _write_task(tmp_path, extra=""):
    (tmp_path / "base.yaml").write_text(
        "dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: docs.jsonl\n"
        "test_split: test\ntarget_delimiter: ' '\n")
    (tmp_path / "task.yaml").write_text(
        "include: base.yaml\ntask: tiny_mc\n"
        "doc_to_text: \"Question: {{question}}\\nAnswer:\"\n"
        "doc_to_target: label\ndoc_to_choice: '{{choices}}'\n" + extra)
    docs = [{"question": "2+2?", "choices": ["3", "4"], "label": 1},
            {"question": "Sky colour?", "choices": ["blue", "green"], "label": 0}]
    (tmp_path / "docs.jsonl").write_text("\n".join(json.dumps(d) for d in docs))
    return tmp_path / "task.yaml"


def test_lmeval_task_with_include_choices_and_local_docs(tmp_path):
    items = load_lmeval_task(_write_task(tmp_path))
    assert [(i.prompt, i.answer) for i in items] == [
        ("Question: 2+2?\nAnswer:", " 4"), ("Question: Sky colour?\nAnswer:", " blue")]
    assert items[0].id == "tiny_mc-1"


def test_lmeval_task_with_python_hook_is_refused(tmp_path):
    task = _write_task(tmp_path)
    task.write_text(task.read_text().replace("doc_to_target: label", "doc_to_target: !function utils.t"))
    with pytest.raises(InputFileError, match="Python hook"):
        load_lmeval_task(task)


def test_lmeval_task_on_remote_dataset_asks_for_local_docs(tmp_path):
    task = tmp_path / "remote.yaml"
    task.write_text("dataset_path: cais/mmlu\ndoc_to_text: '{{question}}'\ndoc_to_target: answer\n")
    with pytest.raises(InputFileError, match="--docs"):
        load_lmeval_task(task)
