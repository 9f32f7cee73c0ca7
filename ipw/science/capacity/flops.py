"""Decode FLOPs per token from a model config (forward pass only).

Paper: Yuan et al., arXiv 2511.08066, Sec. 3 (F, the computational cost in the denominator).
Official code: TeleAI-AI-Flow/InformationCapacity ``flops.py`` (``gqa_model_theoretical_flops``,
``mla_model_theoretical_flops``) as called by ``calc_ic.py``: generate ``gen_tokens`` tokens
(= the maximum sample length, 1024) from an empty prompt at batch size 1 and divide the total
decode FLOPs by ``gen_tokens``.

Counting rules (2 FLOPs per multiply-add; d = hidden size, d_k = d // heads,
kv_dim = kv_heads * d_k, T = gen_tokens), per token and per layer unless noted:

* projections: Q and O ``2 d^2`` each, K and V ``2 d kv_dim`` each;
* gated MLP: ``6 d w`` with w the active width (dense width, or active + shared experts for MoE;
  the router's ``2 d E`` is not counted, as in the official code);
* attention core, GQA/MHA: ``4 heads d_k t`` at cache length t; averaged over t = 0..T-1 this is
  ``4 heads d_k (T(T-1)/2) / T``;
* attention core, MLA (official "reuse" mode): ``4 heads d_k kv_lora_rank`` per step;
* LM head: ``2 d vocab`` per token, once (not per layer); embedding look-ups are not counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ipw.science.capacity.architecture import Architecture, architecture_from_config
from ipw.core.errors import InputFileError
from ipw.core.jsonl import read_json

OFFICIAL_GEN_TOKENS = 1024


@dataclass(frozen=True)
class DecodeFlops:
    """Average decode FLOPs per generated token, by component (all in FLOPs/token)."""

    projections: float  # all layers
    mlp: float  # all layers
    attention_core: float  # all layers
    lm_head: float
    gen_tokens: int
    attention: str

    @property
    def total(self) -> float:
        return self.projections + self.mlp + self.attention_core + self.lm_head


def _attention_core_per_layer(arch: Architecture, gen_tokens: int) -> float:
    per_position = 4 * arch.num_heads * arch.head_dim
    if arch.attention == "mla":
        return float(per_position * arch.mla_latent)
    cache_positions = gen_tokens * (gen_tokens - 1) // 2  # sum of t for t = 0..T-1
    return per_position * cache_positions / gen_tokens


def decode_flops(arch: Architecture, gen_tokens: int = OFFICIAL_GEN_TOKENS) -> DecodeFlops:
    """Per-token decode FLOPs of ``arch`` averaged over generating ``gen_tokens`` tokens."""
    if gen_tokens < 1:
        raise ValueError(f"gen_tokens must be at least 1, got {gen_tokens}")
    d, n = arch.hidden_size, arch.num_layers
    return DecodeFlops(
        projections=float(n * (2 * 2 * d * d + 2 * 2 * d * arch.kv_dim)),
        mlp=float(n * 6 * d * arch.ffn_active_width),
        attention_core=n * _attention_core_per_layer(arch, gen_tokens),
        lm_head=float(2 * d * arch.vocab_size),
        gen_tokens=gen_tokens, attention=arch.attention)


def load_config(path: Path | str) -> dict:
    """A model's ``config.json`` (a folder holding one, or the file itself); a missing, non-UTF-8,
    malformed or non-object file is an :class:`~ipw.core.errors.InputFileError` naming it."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    config = read_json(path)
    if not isinstance(config, dict):
        raise InputFileError(path, None, f"expected a JSON object, got {type(config).__name__}")
    return config


def decode_flops_per_token(config: Mapping | Path | str, gen_tokens: int = OFFICIAL_GEN_TOKENS,
                           attention: str = "auto", moe_count: str = "ipw",
                           model_path: str | None = None) -> float:
    """F of the IC formula, in FLOPs/token, from a config dict or a config.json path.

    ``moe_count="official"`` counts the MLP as the official ``flops.py`` does, which for some MoE
    models depends on the model's path (``model_path``; for a config path, that path; see
    :mod:`ipw.science.capacity.architecture`).
    """
    if not isinstance(config, Mapping):
        model_path = str(config) if model_path is None else model_path
        config = load_config(config)
    arch = architecture_from_config(config, attention, moe_count, model_path)
    return decode_flops(arch, gen_tokens).total
