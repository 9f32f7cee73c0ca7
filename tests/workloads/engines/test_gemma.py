"""The second real model, Gemma 3 270M base, from the gemma extra: located without a download and
run by llama.cpp as plain completions (it has no chat template)."""

from __future__ import annotations

import importlib.util

import pytest

from ipw.engines import models
from ipw.core.errors import MissingExtra

needs_gemma = pytest.mark.skipif(
    importlib.util.find_spec(models.GEMMA_PACKAGE) is None or importlib.util.find_spec("llama_cpp") is None,
    reason="needs the gemma and llamacpp extras: pip install -e '.[gemma,llamacpp]'",
)


def test_without_the_extra_the_error_gives_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == models.GEMMA_PACKAGE else real(name, *a))
    with pytest.raises(MissingExtra, match=r"ipw\[gemma\]"):
        models.locate_model("gemma3-270m")


@needs_gemma
@pytest.mark.slow
def test_gemma_is_joined_once_and_answers_as_a_completion(tmp_path, monkeypatch):
    from ipw.engines import GenerationSettings, get_engine

    monkeypatch.setenv("IPW_CACHE", str(tmp_path))
    where = models.locate_model("gemma3-270m")
    assert where.folder == tmp_path / "models" and (where.folder / where.gguf).stat().st_size > 200e6
    joined = (where.folder / where.gguf).stat().st_mtime_ns
    assert models.locate_model("gemma3-270m") == where
    assert (where.folder / where.gguf).stat().st_mtime_ns == joined  # joined once; checked, not joined again
    with get_engine("llamacpp", model="gemma3-270m") as engine:
        assert engine.describe()["chat_template"] is False  # a base model: plain completion
        g = engine.generate("The capital of France is", GenerationSettings(max_tokens=4))
    assert g.output_tokens >= 1 and g.text.strip()
