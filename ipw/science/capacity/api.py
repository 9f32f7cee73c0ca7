"""Information Capacity of models on corpora: the public API over models x corpora.

``evaluate(["default"], ["english-docs", "python-code"])`` returns a pandas DataFrame with one row
per (model, corpus); :func:`evaluate_corpus` gives one frozen :class:`CapacityResult`.
Formula and averaging: :mod:`ipw.science.capacity.formula`; FLOPs: :mod:`ipw.science.capacity.flops`;
model adapter: :mod:`ipw.science.capacity.likelihood`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

import pandas as pd

from ipw.science.capacity.architecture import ATTENTION, MOE_COUNTS
from ipw.science.capacity.corpora import Corpus, load_corpus
from ipw.science.capacity.errors import EmptySampleError
from ipw.science.capacity.flops import decode_flops_per_token
from ipw.science.capacity.formula import AVERAGING, information_capacity, summarize
from ipw.science.capacity.likelihood import LoadedModel, load_model, score_texts


@dataclass(frozen=True)
class CapacityConfig:
    """How to evaluate. ``bias_bits=None`` takes each corpus's default (see corpora.py);
    ``flops_gen_tokens=None`` counts decode FLOPs over ``max_tokens`` generated tokens, as the
    official ``calc_ic.py`` does. ``moe_count="official"`` counts MoE MLPs as the official
    ``flops.py`` does (by model path; see :mod:`ipw.science.capacity.architecture`)."""

    max_tokens: int = 1024
    batch_size: int = 4
    bias_bits: float | None = None
    averaging: str = "official"
    attention: str = "auto"
    flops_gen_tokens: int | None = None
    max_samples: int | None = None
    moe_count: str = "ipw"

    def __post_init__(self) -> None:
        if self.averaging not in AVERAGING:
            raise ValueError(f"averaging must be one of {AVERAGING}, got {self.averaging!r}")
        if self.attention not in ATTENTION:
            raise ValueError(f"attention must be one of {ATTENTION}, got {self.attention!r}")
        if self.moe_count not in MOE_COUNTS:
            raise ValueError(f"moe_count must be one of {MOE_COUNTS}, got {self.moe_count!r}")
        if self.max_tokens < 2 or self.batch_size < 1:
            raise ValueError("max_tokens must be at least 2 and batch_size at least 1")


@dataclass(frozen=True)
class CapacityResult:
    """One model on one corpus; units in the names (bits, bytes, FLOPs, per token)."""

    model: str
    corpus: str
    information_capacity: float
    text_size_bits_per_token: float
    nll_bits_per_token: float
    bias_bits: float
    flops_per_token: float
    log2_flops_per_token: float
    bytes_per_token: float
    bits_per_byte: float
    samples: int
    tokens_scored: int
    truncated_samples: int
    max_tokens: int
    averaging: str
    moe_count: str = "ipw"


def _corpus_scores(loaded: LoadedModel, corpus: Corpus, config: CapacityConfig):
    texts = corpus.texts[:config.max_samples] if config.max_samples else corpus.texts
    try:
        return score_texts(loaded, texts, config.max_tokens, config.batch_size)
    except EmptySampleError as e:
        path, line = corpus.where(e.line - 1)
        raise EmptySampleError(path, line, e.reason) from e


def evaluate_corpus(loaded: LoadedModel, corpus: Corpus,
                    config: CapacityConfig = CapacityConfig()) -> CapacityResult:
    """IC of one loaded model on one corpus."""
    summary = summarize(_corpus_scores(loaded, corpus, config), config.averaging)
    flops = decode_flops_per_token(loaded.config, config.flops_gen_tokens or config.max_tokens,
                                   config.attention, config.moe_count, model_path=loaded.name)
    bias = corpus.default_bias_bits if config.bias_bits is None else config.bias_bits
    ic = information_capacity(summary.text_size_bits_per_token, summary.nll_bits_per_token,
                              flops, bias)
    return CapacityResult(
        model=loaded.name, corpus=corpus.name, information_capacity=ic,
        text_size_bits_per_token=summary.text_size_bits_per_token,
        nll_bits_per_token=summary.nll_bits_per_token, bias_bits=bias, flops_per_token=flops,
        log2_flops_per_token=math.log2(flops), bytes_per_token=summary.bytes_per_token,
        bits_per_byte=summary.bits_per_byte, samples=summary.samples,
        tokens_scored=summary.tokens_scored, truncated_samples=summary.truncated_samples,
        max_tokens=config.max_tokens, averaging=config.averaging, moe_count=config.moe_count)


def _as_corpus(spec: str | Corpus) -> Corpus:
    return spec if isinstance(spec, Corpus) else load_corpus(spec)


def evaluate(models: Iterable[str | LoadedModel], corpora: Iterable[str | Corpus],
             config: CapacityConfig = CapacityConfig(),
             on_result: Callable[[CapacityResult], None] | None = None) -> pd.DataFrame:
    """A DataFrame with one row per (model, corpus); models are loaded one at a time.

    ``models``: 'default', local model folders or .gguf paths, or already loaded models.
    ``corpora``: shipped names, JSONL paths or :class:`Corpus` objects (all are read and checked
    before any model is loaded, so a bad corpus fails fast). ``on_result`` sees each result.
    """
    models = [models] if isinstance(models, (str, LoadedModel)) else models
    corpora = [corpora] if isinstance(corpora, (str, Corpus)) else corpora
    loaded_corpora = [_as_corpus(c) for c in corpora]
    rows = []
    for spec in models:
        loaded = spec if isinstance(spec, LoadedModel) else load_model(spec)
        for corpus in loaded_corpora:
            rows.append(evaluate_corpus(loaded, corpus, config))
            if on_result:
                on_result(rows[-1])
    return results_frame(rows)


def results_frame(results: Sequence[CapacityResult]) -> pd.DataFrame:
    """Results as a DataFrame, one row each, columns named as the dataclass fields."""
    columns = list(CapacityResult.__dataclass_fields__)
    return pd.DataFrame([asdict(r) for r in results], columns=columns)


__all__ = ["CapacityConfig", "CapacityResult", "evaluate", "evaluate_corpus", "results_frame"]
