"""NLL, text size, truncation, batching and the API/CLI on the real default model (loaded once)."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from ipw.science.capacity import (CapacityConfig, EmptySampleError, corpus_from_texts, decode_flops_per_token,
                          evaluate, information_capacity, score_texts)
from ipw.science.capacity import api as api_module
from ipw.cli.capacity import capacity
from ipw.core.errors import MissingExtra

pytestmark = pytest.mark.slow

TEXTS = (
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "def add(a, b):\n    return a + b\n",
    "Der Zug nach Hamburg hatte an diesem Morgen zwanzig Minuten Verspätung, sagte sie.",
)
LONG = " ".join(f"Sentence number {i} says something about counting tokens." for i in range(40))


@pytest.fixture(scope="module")
def loaded():
    from ipw.science.capacity.likelihood import load_model

    try:
        return load_model("default")
    except MissingExtra as e:
        pytest.skip(str(e))


def direct_nll_bits(loaded, ids):
    """-log2 softmax(logits)[next token] summed over positions 2..L, in float64, unbatched."""
    import torch

    with torch.inference_mode():
        logits = loaded.model(input_ids=torch.tensor([ids])).logits[0].double()
    probs = torch.softmax(logits[:-1, :len(loaded.tokenizer)], dim=-1)
    picked = probs[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
    return float(-torch.log2(picked).sum())


def test_nll_matches_direct_computation_from_logits(loaded):
    [score] = score_texts(loaded, TEXTS[:1], max_tokens=64)
    ids = loaded.tokenizer(TEXTS[0])["input_ids"]
    assert score.tokens_scored == len(ids) - 1
    assert score.nll_bits == pytest.approx(direct_nll_bits(loaded, ids), rel=1e-5)


def test_text_size_counts_bytes_of_tokens_2_to_L(loaded):
    [score] = score_texts(loaded, TEXTS[2:], max_tokens=64)
    ids = loaded.tokenizer(TEXTS[2])["input_ids"]
    first = loaded.tokenizer.decode(ids[:1]).encode("utf-8")
    # this tokenizer adds no special tokens and round-trips, so tokens 2..L are the text minus token 1
    assert score.text_bytes == len(TEXTS[2].encode("utf-8")) - len(first)


def test_padding_is_masked_batched_equals_one_by_one(loaded):
    batched = score_texts(loaded, TEXTS, max_tokens=64, batch_size=3)
    single = [score_texts(loaded, [t], max_tokens=64, batch_size=1)[0] for t in TEXTS]
    assert len({s.tokens_scored for s in single}) == 3  # unequal lengths, so padding happened
    for b, s in zip(batched, single):
        assert b.tokens_scored == s.tokens_scored and b.text_bytes == s.text_bytes
        assert b.nll_bits == pytest.approx(s.nll_bits, rel=1e-4)


def test_sample_longer_than_limit_is_truncated(loaded):
    full = loaded.tokenizer(LONG)["input_ids"]
    assert len(full) > 48
    [short] = score_texts(loaded, [LONG], max_tokens=48)
    assert short.truncated and short.tokens_scored == 47
    assert short.nll_bits == pytest.approx(direct_nll_bits(loaded, full[:48]), rel=1e-5)
    assert short.text_bytes == len(loaded.tokenizer.decode(full[1:48]).encode("utf-8"))


def test_whitespace_sample_and_single_token_sample_are_clear_errors(loaded):
    with pytest.raises(EmptySampleError, match="whitespace"):
        evaluate([loaded], [corpus_from_texts(["ok then", "   "])])
    with pytest.raises(EmptySampleError, match=r"<texts>:2: the sample has 1 token"):
        score_texts(loaded, ["two words", "a"], max_tokens=16)


def test_evaluate_returns_models_by_corpora_frame(loaded):
    config = CapacityConfig(max_tokens=24, batch_size=2, bias_bits=-20.0)
    corpora = [corpus_from_texts(TEXTS[:2], name="a"), corpus_from_texts([LONG], name="b")]
    frame = evaluate(loaded, corpora, config)  # one model needs no list
    assert list(frame["corpus"]) == ["a", "b"] and set(frame["model"]) == {"default"}
    flops = decode_flops_per_token(loaded.config, gen_tokens=24)
    for row in frame.itertuples():
        assert row.flops_per_token == flops and row.bias_bits == -20.0
        assert row.information_capacity == pytest.approx(information_capacity(
            row.text_size_bits_per_token, row.nll_bits_per_token, flops, -20.0))
        assert row.bits_per_byte * row.bytes_per_token == pytest.approx(row.nll_bits_per_token)
    assert frame.loc[1, "truncated_samples"] == 1 and frame.loc[1, "tokens_scored"] == 23


def test_default_model_flops_from_its_config(loaded):
    # SmolLM2-135M: 30 layers of 8,256,384 FLOPs/token plus a 2*576*49152 LM head (see flops tests)
    assert decode_flops_per_token(loaded.config) == 304_314_624
    assert math.log2(304_314_624) == pytest.approx(28.181, abs=1e-3)


def test_cli_prints_table_and_writes_csv_and_json(loaded, tmp_path, monkeypatch):
    monkeypatch.setattr(api_module, "load_model", lambda spec: loaded)
    corpus = tmp_path / "tiny.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS), encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(capacity, ["-c", str(corpus), "--max-tokens", "16", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "IC" in result.output and "bits/byte" in result.output and "tiny" in result.output
    payload = json.loads((out / "capacity.json").read_text())
    assert payload["settings"]["max_tokens"] == 16 and payload["results"][0]["samples"] == 3
    assert (out / "capacity.csv").read_text().startswith("model,corpus,information_capacity")


def test_cli_saves_a_capacity_result_the_report_reads_and_plots(loaded, tmp_path, monkeypatch):
    from ipw.science.capacity.results import CapacityResults
    from ipw.reports.extras import load_extra

    monkeypatch.setattr(api_module, "load_model", lambda spec: loaded)
    corpus = tmp_path / "tiny.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS), encoding="utf-8")
    out, png = tmp_path / "out", tmp_path / "ic.png"
    result = CliRunner().invoke(capacity, ["-c", str(corpus), "--max-tokens", "16", "--moe-count", "official",
                                           "--out", str(out), "--plot", str(png)])
    assert result.exit_code == 0, result.output
    saved = CapacityResults.load(out)
    assert saved.settings["moe_count"] == "official" and saved.results["moe_count"].tolist() == ["official"]
    assert json.loads((out / "capacity.json").read_text())["kind"] == "capacity"
    assert png.stat().st_size > 5000 and load_extra(out).key == "capacity"


def test_cli_unknown_corpus_is_one_clean_line():
    result = CliRunner().invoke(capacity, ["-c", "germn"])
    assert result.exit_code != 0
    assert "Did you mean 'german'?" in result.output and "Traceback" not in result.output


def test_local_hugging_face_folder_works(loaded, tmp_path):
    """A model folder on disk (config.json + weights + tokenizer) loads and evaluates."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=64,
                         vocab_size=len(loaded.tokenizer))
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    loaded.tokenizer.save_pretrained(tmp_path)
    frame = evaluate([str(tmp_path)], [corpus_from_texts(TEXTS)], CapacityConfig(max_tokens=16))
    row = frame.iloc[0]
    assert row["model"] == str(tmp_path) and row["samples"] == 3
    # d=32, kv_dim=16, w=64: proj 2*32*32*2 + 2*32*16*2 = 6144, mlp 12288, attention 4*4*8*7.5 = 960
    assert row["flops_per_token"] == 2 * (6144 + 12288 + 960) + 2 * 32 * len(loaded.tokenizer)
    # an untrained model predicts about uniformly: NLL near log2(vocabulary)
    assert row["nll_bits_per_token"] == pytest.approx(math.log2(len(loaded.tokenizer)), abs=0.5)
