"""The MLX engine (ipw/engines/mlx.py) through mlx-lm, on MLX's CPU backend here (Metal on a Mac),
with the shipped SmolLM2-135M exported to a Hugging Face folder (cached, as the vLLM tests use it).
Skipped, saying how to install it, without mlx-lm. MLX decodes this model at about 5 tokens/s on the
project's VM, so the tests ask for few tokens.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
from click.testing import CliRunner

from ipw.cli import main
from ipw.core.errors import MissingExtra
from ipw.engines import GenerationSettings, get_engine
from ipw.store import load

needs_mlx = pytest.mark.skipif(importlib.util.find_spec("mlx_lm") is None,
                               reason='mlx-lm is not installed: pip install "ipw[mlx]"')  # fmt: skip


def test_without_mlx_the_engine_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlx_lm", None)  # import mlx_lm raises ImportError
    with pytest.raises(MissingExtra, match=r'mlx-lm \(needed by the mlx engine\) is not installed.*ipw\[mlx\]'):
        get_engine("mlx", model="default")


@pytest.fixture(scope="module")
def engine():
    e = get_engine("mlx", model="default")
    yield e
    e.close()


@needs_mlx
@pytest.mark.slow
def test_greedy_answers_repeat_and_the_end_token_is_not_counted(engine):
    prompt = "What is 2+2? Answer with the number only."
    g = engine.generate(prompt, GenerationSettings(max_tokens=12))
    again = engine.generate(prompt, GenerationSettings(max_tokens=12))
    assert g.text == again.text and "4" in g.text
    assert g.finish_reason == "stop" and g.extra["eos"] and g.extra["sampled_tokens"] == g.output_tokens + 1
    assert g.input_tokens == len(engine.encode(prompt)) and g.input_tokens > len(prompt.split())  # chat-templated
    assert g.t_start_s < g.t_first_token_s <= g.t_last_token_s < g.t_end_s
    assert g.tpot_s == (g.t_last_token_s - g.t_first_token_s) / (g.output_tokens - 1)
    d = engine.describe()
    assert d["engine"] == "mlx" and d["chat_template"] is True and "mlx-lm" in d["versions"] and d["dtype"] == "as stored"


@needs_mlx
@pytest.mark.slow
def test_a_length_cut_and_a_stop_string(engine):
    g = engine.generate("Write a long story about a dragon.", GenerationSettings(max_tokens=4))
    assert g.finish_reason == "length" and g.output_tokens == 4 == g.extra["sampled_tokens"] and not g.extra["eos"]
    full = engine.generate("What is 2+2? Answer with the number only.", GenerationSettings(max_tokens=12)).text
    stop = full.split()[1]  # a word inside the answer
    cut = engine.generate("What is 2+2? Answer with the number only.", GenerationSettings(max_tokens=12, stop=(stop,)))
    assert cut.text == full[: full.index(stop)] and cut.finish_reason == "stop" and not cut.extra["eos"]


@needs_mlx
@pytest.mark.slow
def test_ipw_profile_engine_mlx(tmp_path, engine):
    result = CliRunner().invoke(main, ["profile", "--engine", "mlx", "--limit", "2", "--max-tokens", "8", "--idle", "0",
                                       "--warmup", "0", "--quiet", "--runs-dir", str(tmp_path), "--run-id", "m"])  # fmt: skip
    assert result.exit_code == 0, result.output
    run = load(tmp_path / "m")
    assert len(run.queries) == 2 and run.queries["error"].isna().all() and (run.queries["output_tokens"] >= 1).all()
    assert run.manifest["engine"]["engine"] == "mlx" and "accuracy:" in result.output
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["config"]["engine"] == "mlx"
