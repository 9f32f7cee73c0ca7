"""Benchmark items for conditional loss: a prompt and the answer whose probability is scored.

Two sources:

* JSONL files with one object per line: ``{"id": ..., "prompt": ..., "answer": ...}``; for
  reasoning tasks ``answer`` holds the reference reasoning steps followed by the final answer
  (arXiv 2412.04315, Sec. 2.2). The shipped ``bench_small.jsonl`` has this form.
* lm-evaluation-harness task YAML files, read without lm-eval: ``doc_to_text``,
  ``doc_to_target``, ``doc_to_choice``, ``target_delimiter`` and ``include`` are honoured,
  templates are rendered with Jinja2 as lm-eval does. Documents come from a local JSONL file
  (``docs``) or from a task whose ``dataset_path`` is ``json`` with local ``data_files``; ipw
  never downloads a dataset. ``!function`` hooks (Python code in the task folder) are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from ipw.core.errors import InputFileError
from ipw.core.jsonl import read_objects


@dataclass(frozen=True)
class Item:
    """One benchmark instance: the loss is taken over ``answer``'s tokens given ``prompt``."""

    id: str
    prompt: str
    answer: str


def load_items(path: Path | str) -> list[Item]:
    """Items from a JSONL file with ``prompt`` and ``answer`` (and optional ``id``) fields."""
    path = Path(path)
    items = []
    for number, obj in read_objects(path):
        for key in ("prompt", "answer"):
            if not isinstance(obj.get(key), str) or not obj[key]:
                raise InputFileError(path, number, f"missing or empty string field {key!r}")
        items.append(Item(str(obj.get("id", f"line{number}")), obj["prompt"], obj["answer"]))
    if not items:
        raise InputFileError(path, None, "no items in file")
    return items


def shipped_items() -> list[Item]:
    """The small benchmark set written for ipw (``ipw/data/density/bench_small.jsonl``)."""
    from ipw.science.density.data import data_dir

    return load_items(data_dir() / "bench_small.jsonl")


class _TaskLoader(yaml.SafeLoader):
    """SafeLoader that keeps lm-eval's ``!function`` tags as markers instead of failing."""


def _function_tag(loader: yaml.Loader, node: yaml.Node) -> str:
    return f"!function {loader.construct_scalar(node)}"


_TaskLoader.add_constructor("!function", _function_tag)


def read_task_yaml(path: Path) -> dict[str, Any]:
    """A task's YAML with ``include`` resolved (the including file's keys win)."""
    try:
        config = yaml.load(path.read_text(encoding="utf-8"), Loader=_TaskLoader) or {}
    except FileNotFoundError:
        raise InputFileError(path, None, "no such file") from None
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise InputFileError(path, None if line is None else line + 1, f"invalid YAML ({e})") from e
    if "include" in config:
        base = read_task_yaml(path.parent / str(config.pop("include")))
        config = {**base, **config}
    return config


def _render(template: Any, doc: dict, path: Path, key: str) -> Any:
    if isinstance(template, (list, int)):
        return template
    text = str(template)
    if text.startswith("!function"):
        raise InputFileError(path, None, f"{key} uses a Python hook ({text}); ipw reads only "
                             "template-based tasks. Install lm-eval to run this task with it.")
    if text in doc:
        return doc[text]
    try:
        return jinja2.Template(text).render(**doc)
    except jinja2.TemplateError as e:
        raise InputFileError(path, None, f"{key}: template error ({e})") from e


def _target_text(config: dict, doc: dict, path: Path) -> str:
    target = _render(config.get("doc_to_target", ""), doc, path, "doc_to_target")
    if "doc_to_choice" not in config:
        return str(target)
    choices = _render(config["doc_to_choice"], doc, path, "doc_to_choice")
    if isinstance(choices, str):
        choices = yaml.safe_load(choices)
    index = int(target) if str(target).strip().lstrip("-").isdigit() else None
    return str(choices[index]) if index is not None else str(target)


def _task_docs(config: dict, task_path: Path, docs: Path | None) -> tuple[Path, list[dict]]:
    if docs is None:
        files = (config.get("dataset_kwargs") or {}).get("data_files")
        split = config.get("test_split") or config.get("validation_split") or "test"
        local = files.get(split) if isinstance(files, dict) else files
        if config.get("dataset_path") != "json" or not isinstance(local, str):
            raise InputFileError(task_path, None, (
                f"this task reads dataset {config.get('dataset_path')!r}, which ipw does not "
                "download; export its documents to JSONL and pass them with --docs FILE.jsonl"))
        docs = task_path.parent / local
    return docs, [obj for _, obj in read_objects(docs)]


def load_lmeval_task(task: Path | str, docs: Path | str | None = None, limit: int | None = None) -> list[Item]:
    """Items from an lm-eval task YAML: prompt = doc_to_text, answer = delimiter + target."""
    task_path = Path(task)
    config = read_task_yaml(task_path)
    if "doc_to_text" not in config:
        raise InputFileError(task_path, None, "no doc_to_text in the task (nor its include)")
    docs_path, documents = _task_docs(config, task_path, Path(docs) if docs else None)
    delimiter = str(config.get("target_delimiter", " "))
    items = []
    for number, doc in enumerate(documents[:limit] if limit else documents, start=1):
        prompt = str(_render(config["doc_to_text"], doc, task_path, "doc_to_text"))
        answer = delimiter + _target_text(config, doc, task_path)
        items.append(Item(f"{config.get('task', task_path.stem)}-{number}", prompt, answer))
    if not items:
        raise InputFileError(docs_path, None, "no documents")
    return items
