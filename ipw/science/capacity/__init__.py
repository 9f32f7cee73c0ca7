"""Information Capacity (Yuan et al., TeleAI, arXiv 2511.08066): compression per log-FLOP.

IC = (text size - NLL + b) / log2(F), in bits/token over log2(FLOPs/token). Pure parts:
:mod:`~ipw.science.capacity.formula`, :mod:`~ipw.science.capacity.flops`, :mod:`~ipw.science.capacity.architecture`,
:mod:`~ipw.science.capacity.corpora`; the model adapter is :mod:`~ipw.science.capacity.likelihood` (imports torch
and transformers only when a model is loaded). See docs/capacity.md.

    >>> from ipw.science.capacity import evaluate, CapacityConfig
    >>> frame = evaluate(["default"], ["english-docs", "math"], CapacityConfig(max_tokens=256))
"""

from __future__ import annotations

from ipw.science.capacity.architecture import Architecture, architecture_from_config
from ipw.science.capacity.corpora import Corpus, corpus_from_texts, load_corpus, shipped_corpora
from ipw.science.capacity.errors import (CapacityError, EmptySampleError, ModelNotFoundError,
                                 UnknownCorpusError, UnsupportedConfigError)
from ipw.science.capacity.api import CapacityConfig, CapacityResult, evaluate, evaluate_corpus, results_frame
from ipw.science.capacity.flops import DecodeFlops, decode_flops, decode_flops_per_token
from ipw.science.capacity.formula import CorpusSummary, SampleScore, information_capacity, summarize
from ipw.science.capacity.likelihood import LoadedModel, load_model, score_texts

__all__ = [
    "Architecture", "CapacityConfig", "CapacityError", "CapacityResult", "Corpus", "CorpusSummary",
    "DecodeFlops", "EmptySampleError", "LoadedModel", "ModelNotFoundError", "SampleScore",
    "UnknownCorpusError", "UnsupportedConfigError", "architecture_from_config", "corpus_from_texts",
    "decode_flops", "decode_flops_per_token", "evaluate", "evaluate_corpus", "information_capacity",
    "load_corpus", "load_model", "results_frame", "score_texts", "shipped_corpora", "summarize",
]
