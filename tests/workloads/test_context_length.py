"""A prompt longer than the model's context is refused before generation, with a clear error that the
runner records for that query (transformers: the position table; llama.cpp: n_ctx)."""

from __future__ import annotations

import importlib.util

import pytest

from ipw.core.errors import IpwError
from ipw.engines import GenerationSettings, get_engine

pytestmark = pytest.mark.slow  # loads the default model


def test_transformers_refuses_a_prompt_past_its_context():
    with get_engine("transformers", model="default") as engine:
        limit = engine.model.config.max_position_embeddings
        with pytest.raises(IpwError, match=rf"the prompt has \d+ tokens; .* holds {limit} \(max_position_embeddings\)"):
            engine.generate("word " * (limit + 10), GenerationSettings(max_tokens=2))
        assert engine.generate("Say hi.", GenerationSettings(max_tokens=2)).output_tokens >= 1  # still usable


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed")
def test_llamacpp_refuses_a_prompt_past_n_ctx():
    with get_engine("llamacpp", model="default", n_ctx=256) as engine:
        with pytest.raises(IpwError, match=r"the prompt has \d+ tokens; n_ctx is 256"):
            engine.generate("word " * 400, GenerationSettings(max_tokens=2))
