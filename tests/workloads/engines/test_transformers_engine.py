"""The real default model generating through transformers."""

from __future__ import annotations

import pytest

from ipw.core.errors import IpwError
from ipw.engines import GenerationSettings, get_engine
from ipw.engines.models import locate_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine():
    e = get_engine("transformers", model="default")
    yield e
    e.close()


def test_generates_with_token_timing(engine):
    g = engine.generate("What is the capital of France? Answer in one word.", GenerationSettings(max_tokens=12))
    assert g.text.strip()
    assert 1 <= g.output_tokens <= 12 and g.input_tokens > 5
    # the end-of-sequence token is not counted (as llama.cpp and servers count)
    assert g.output_tokens == len(engine.tokenizer(g.text, add_special_tokens=False)["input_ids"]) or g.finish_reason == "length"
    assert g.t_start_s <= g.t_first_token_s <= g.t_last_token_s <= g.t_end_s
    assert 0 < g.ttft_s <= g.e2e_s
    if g.output_tokens >= 2:
        assert g.tpot_s == pytest.approx((g.t_last_token_s - g.t_first_token_s) / (g.output_tokens - 1))
    assert g.finish_reason in ("stop", "length")


def test_greedy_is_deterministic_and_max_tokens_is_honoured(engine):
    s = GenerationSettings(max_tokens=6)
    a = engine.generate("Count from one to twenty in words.", s)
    b = engine.generate("Count from one to twenty in words.", s)
    assert a.text == b.text
    assert a.output_tokens == 6 and a.finish_reason == "length"


def test_stop_strings_cut_the_text(engine):
    s = GenerationSettings(max_tokens=16, stop=(",",))
    g = engine.generate("List three colours separated by commas.", s)
    assert "," not in g.text


def test_describe_records_model_and_versions(engine):
    d = engine.describe()
    assert d["engine"] == "transformers" and "SmolLM2" in d["model"] and d["chat_template"] is True
    assert "torch" in d["versions"]
    import torch

    on_gpu = torch.cuda.is_available()
    assert d["device"] == ("cuda" if on_gpu else "cpu") and engine.sync_cuda is on_gpu
    assert d["dtype"] == ("bfloat16" if on_gpu and torch.cuda.is_bf16_supported() else "float16" if on_gpu else "float32")


def test_unknown_model_and_engine_are_clear_errors(tmp_path):
    with pytest.raises(IpwError, match="never downloaded"):
        locate_model(str(tmp_path / "nope"))
    with pytest.raises(IpwError, match="Did you mean 'transformers'"):
        get_engine("transformer")
