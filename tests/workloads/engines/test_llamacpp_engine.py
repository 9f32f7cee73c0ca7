"""The real default model generating through llama.cpp (skipped without llama-cpp-python)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from ipw.core.errors import IpwError, MissingExtra
from ipw.engines import GenerationSettings, get_engine
from ipw.engines.llamacpp import NEUTRAL_SAMPLING, import_llama_cpp, resolve_gguf


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: blocked in sys.modules
        return False


needs_llama_cpp = pytest.mark.skipif(
    not installed("llama_cpp"),
    reason='llama-cpp-python is not installed (optional extra): pip install "ipw[llamacpp]"',
)
CAPITAL = "What is the capital of France? Answer in one word."


@pytest.fixture(scope="module")
def engine():
    e = get_engine("llamacpp", model="default")
    yield e
    e.close()


def _check_timing(g, max_tokens: int) -> None:
    assert 1 <= g.output_tokens <= max_tokens
    assert g.t_start_s < g.t_first_token_s <= g.t_last_token_s < g.t_end_s
    assert 0 < g.ttft_s <= g.e2e_s
    if g.output_tokens >= 2:
        assert g.tpot_s == pytest.approx((g.t_last_token_s - g.t_first_token_s) / (g.output_tokens - 1))
    else:
        assert g.tpot_s is None


@needs_llama_cpp
@pytest.mark.slow
class TestDefaultModel:
    def test_answers_and_counts_what_llama_cpp_counts(self, engine):
        s = GenerationSettings(max_tokens=24)
        g = engine.generate(CAPITAL, s)
        assert "Paris" in g.text
        _check_timing(g, 24)
        assert g.finish_reason == "stop" and g.extra["eog"] is True  # ended by its end-of-turn token
        assert g.extra["sampled_tokens"] == g.output_tokens + 1
        # the same request through llama-cpp-python's own chat path reports the same text and counts
        engine._llm.reset()
        ref = engine._llm.create_chat_completion(
            [{"role": "user", "content": CAPITAL}], max_tokens=24, temperature=0.0, top_p=1.0, seed=0,
            **NEUTRAL_SAMPLING,
        )  # fmt: skip
        assert ref["choices"][0]["message"]["content"] == g.text
        assert (ref["usage"]["prompt_tokens"], ref["usage"]["completion_tokens"]) == (g.input_tokens, g.output_tokens)

    def test_greedy_is_deterministic_and_max_tokens_is_honoured(self, engine):
        s = GenerationSettings(max_tokens=6)
        a = engine.generate("Count from one to twenty in words.", s)
        b = engine.generate("Count from one to twenty in words.", s)
        assert a.text == b.text and a.text.strip()
        assert a.output_tokens == b.output_tokens == 6 and a.finish_reason == "length" and a.extra["eog"] is False
        _check_timing(a, 6)
        # plain English, no stop string: here one streamed chunk is one token
        assert a.extra["streamed_chunks"] == a.output_tokens

    def test_seeded_sampling_repeats(self, engine):
        s = GenerationSettings(max_tokens=12, temperature=1.0, top_p=0.95, seed=1234)
        a = engine.generate("Write a short poem about the sea.", s)
        b = engine.generate("Write a short poem about the sea.", s)
        assert a.text == b.text and a.output_tokens == b.output_tokens

    def test_stop_strings_cut_the_text_and_are_counted_as_llama_cpp_counts(self, engine):
        prompt = "List three colours separated by commas."
        free = engine.generate(prompt, GenerationSettings(max_tokens=24))
        assert "\n" in free.text  # otherwise this test checks nothing
        g = engine.generate(prompt, GenerationSettings(max_tokens=24, stop=("\n",)))
        assert "\n" not in g.text and g.text and free.text.startswith(g.text)
        assert g.finish_reason == "stop" and g.extra["eog"] is False and g.output_tokens < free.output_tokens
        tokens, template_stop = engine.encode(prompt)
        engine._llm.reset()
        ref = engine._llm.create_completion(
            tokens, max_tokens=24, temperature=0.0, top_p=1.0, seed=0, stop=["\n"] + template_stop, **NEUTRAL_SAMPLING
        )
        assert ref["choices"][0]["text"] == g.text and ref["usage"]["completion_tokens"] == g.output_tokens

    def test_input_tokens_are_the_chat_prompt_as_sent(self, engine):
        tokens, stop = engine.encode(CAPITAL)
        text = engine._llm.detokenize(tokens, special=True).decode()
        assert CAPITAL in text and "<|im_start|>assistant" in text and stop == ["<|im_end|>"]
        g = engine.generate(CAPITAL, GenerationSettings(max_tokens=2))
        assert g.input_tokens == len(tokens)

    def test_each_query_pays_its_own_prefill(self, engine, monkeypatch):
        evaluated: list[int] = []
        real_eval = engine._llm.eval
        monkeypatch.setattr(engine._llm, "eval", lambda tokens: (evaluated.append(len(tokens)), real_eval(tokens))[1])
        for _ in range(2):
            evaluated.clear()
            engine.generate(CAPITAL, GenerationSettings(max_tokens=2))
            # the whole prompt, then the first answer token (the second is sampled, never evaluated);
            # llama-cpp-python alone would reuse the cached prompt the second time
            assert evaluated == [len(engine.encode(CAPITAL)[0]), 1]

    def test_token_times_come_from_the_ipw_clock(self, engine, clock):
        g = engine.generate(CAPITAL, GenerationSettings(max_tokens=4))
        assert 1000 < g.t_start_s < g.t_first_token_s <= g.t_last_token_s < g.t_end_s < 1000.001

    def test_describe_records_model_versions_and_options(self, engine):
        d = engine.describe()
        assert d["engine"] == "llamacpp" and "SmolLM2" in d["model"] and d["chat_template"] is True
        assert d["n_ctx"] == 2048 and d["threads"] >= 1 and d["threads_batch"] == d["threads"]
        assert d["versions"]["llama_cpp"] == import_llama_cpp().__version__
        # GPU layers: every layer on a GPU build, none on a CPU build (the default); no torch sync
        assert d["n_gpu_layers"] == (-1 if d["gpu_offload"] else 0) and engine.sync_cuda is False


@needs_llama_cpp
@pytest.mark.slow
def test_completion_mode_sends_the_plain_prompt():
    with get_engine("llamacpp", model="default", chat=False, n_ctx=64, threads=1) as e:
        g = e.generate("The capital of France is", GenerationSettings(max_tokens=5))
        assert g.input_tokens == len(e._llm.tokenize(b"The capital of France is", add_bos=True))
        _check_timing(g, 5)
        assert e.describe()["chat_template"] is False and e.describe()["threads"] == 1
        with pytest.raises(IpwError, match="n_ctx is 64"):
            e.generate("word " * 100, GenerationSettings(max_tokens=5))


def test_missing_extra_and_bad_model_are_clear_errors(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if not installed
    with pytest.raises(MissingExtra, match=r'pip install "ipw\[llamacpp\]"'):
        get_engine("llamacpp")
    with pytest.raises(IpwError, match="never downloaded"):
        resolve_gguf(str(tmp_path / "model.safetensors"))
