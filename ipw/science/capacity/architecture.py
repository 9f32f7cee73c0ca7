"""Read the numbers the FLOPs counter needs from a Hugging Face model config (a dict).

Field names follow ``transformers`` configs (Llama, Mistral, Qwen2/3, Qwen2-MoE, Mixtral,
DeepSeek-V2/V3, GPT-2 style aliases). Fields that change the cost in ways the official counter
(TeleAI-AI-Flow/InformationCapacity, ``flops.py``) does not model, such as linear-attention or
state-space layers, raise :class:`UnsupportedConfigError` instead of giving a wrong count.

Conventions taken from the official ``flops.py`` (documented in docs/capacity.md):

* head dimension d_k = hidden_size // num_attention_heads; a ``head_dim`` field is not used;
* every MLP is counted as gated (three matrices), whatever ``hidden_act`` says;
* ``sliding_window`` is ignored (attention is counted over the full cache);
* multi-head latent attention (MLA) is recognised by ``kv_lora_rank``; its latent length is
  ``kv_lora_rank``.

Mixture of experts, ``moe_count="ipw"`` (default; active experts only): routed experts =
``n_routed_experts`` | ``num_experts`` | ``num_local_experts``; active = ``num_experts_per_tok``;
expert width = ``moe_intermediate_size`` (else ``intermediate_size``, the Mixtral convention);
shared experts = ``shared_expert_intermediate_size`` (Qwen2-MoE) or ``n_shared_experts`` x expert
width (DeepSeek).

``moe_count="official"`` reproduces the official ``flops.py`` MLP width instead, which depends on
the model's path as well as its config:

* GQA counter (``gqa_model_theoretical_flops``): the width is ``intermediate_size`` (else
  ``ffn_hidden_size``), plus ``shared_expert_intermediate_size`` only when the path contains
  "Qwen1.5" or "Qwen2-" *and* "B-A". So Qwen1.5-MoE-A2.7B counts 5632 (ipw: 4 x 1408 + 5632 =
  11264) and Qwen2-57B-A14B 18944 + 20480 = 39424 (ipw: 8 x 2560 + 20480 = 40960); Mixtral
  counts one expert of 14336 (ipw: two);
* MLA counter (``mla_model_theoretical_flops``): (``n_shared_experts`` + ``num_experts_per_tok``)
  x (``moe_intermediate_size`` else ``intermediate_size``); 0 for a dense config.

The official code's other name-based cases (Llama-4, gpt-oss, gemma-3, Ruyi) change more than the
MLP width and are refused in official mode rather than counted differently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ipw.science.capacity.errors import UnsupportedConfigError

ATTENTION = ("auto", "gqa", "mla")
MOE_COUNTS = ("ipw", "official")
_OFFICIAL_NAME_CASES = ("Llama-4", "gpt-oss", "gemma-3", "Ruyi")
_FULL_ATTENTION_LAYERS = {"full_attention", "sliding_attention"}
_UNSUPPORTED_PREFIXES = ("mamba", "ssm_", "linear_", "conv_kernel", "rwkv")


@dataclass(frozen=True)
class Architecture:
    """Sizes that decode FLOPs depend on (counts, not bytes)."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    ffn_active_width: int  # summed width of the gated MLPs a token passes through (active experts)
    vocab_size: int
    attention: str  # "gqa" (dense/grouped-query/multi-head) or "mla"
    mla_latent: int = 0  # kv_lora_rank, for MLA only
    routed_experts: int = 0  # total routed experts (0: dense)
    active_experts: int = 0  # routed experts used per token

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim


def _first(cfg: Mapping, *names: str, required: bool = True):
    for name in names:
        if cfg.get(name) is not None:
            return cfg[name]
    if required:
        raise UnsupportedConfigError(names, "none of these is present; cannot count FLOPs")
    return None


def _text_part(cfg: Mapping) -> Mapping:
    """Multimodal configs keep the language model under ``text_config``."""
    if "hidden_size" not in cfg and isinstance(cfg.get("text_config"), Mapping):
        return cfg["text_config"]
    return cfg


def _check_supported(cfg: Mapping) -> None:
    odd = [k for k in cfg if k.startswith(_UNSUPPORTED_PREFIXES) and cfg[k] is not None]
    kinds = set(cfg.get("layer_types") or ()) - _FULL_ATTENTION_LAYERS
    if kinds:
        odd.append(f"layer_types ({', '.join(sorted(kinds))})")
    if odd:
        raise UnsupportedConfigError(odd, "layers other than softmax attention + MLP are not "
                                          "modelled by the paper's FLOPs counter")


def _ffn_width(cfg: Mapping) -> tuple[int, int, int]:
    """(active MLP width, routed experts, active experts) per token per layer."""
    dense = _first(cfg, "intermediate_size", "ffn_hidden_size", "n_inner", required=False)
    routed = int(_first(cfg, "n_routed_experts", "num_experts", "num_local_experts", required=False) or 0)
    if routed == 0:
        if dense is None:
            raise UnsupportedConfigError(("intermediate_size", "ffn_hidden_size", "n_inner"),
                                         "no MLP width found")
        return int(dense), 0, 0
    active = int(_first(cfg, "num_experts_per_tok", "num_experts_per_token", "experts_per_token"))
    expert = int(_first(cfg, "moe_intermediate_size", "intermediate_size"))
    shared = cfg.get("shared_expert_intermediate_size")
    shared = int(shared) if shared is not None else int(cfg.get("n_shared_experts") or 0) * expert
    return active * expert + shared, routed, active


def _official_ffn_width(cfg: Mapping, kind: str, model_path: str) -> int:
    """The MLP width the official ``flops.py`` counts (see the module docstring)."""
    special = [name for name in _OFFICIAL_NAME_CASES if name in model_path]
    if special:
        raise UnsupportedConfigError(["model path"], f"the official counter special-cases {special[0]!r} by "
                                                     "name; ipw does not reproduce that case (use moe_count='ipw')")
    if kind == "mla":
        width = int(_first(cfg, "moe_intermediate_size", "intermediate_size"))
        return (int(cfg.get("n_shared_experts") or 0) + int(cfg.get("num_experts_per_tok") or 0)) * width
    width = int(_first(cfg, "intermediate_size", "ffn_hidden_size"))
    if ("Qwen1.5" in model_path or "Qwen2-" in model_path) and "B-A" in model_path:
        width += int(_first(cfg, "shared_expert_intermediate_size"))
    return width


def _attention(cfg: Mapping, attention: str) -> str:
    if attention not in ATTENTION:
        raise ValueError(f"attention must be one of {ATTENTION}, got {attention!r}")
    if attention != "auto":
        return attention
    return "mla" if cfg.get("kv_lora_rank") is not None else "gqa"


def architecture_from_config(config: Mapping, attention: str = "auto", moe_count: str = "ipw",
                             model_path: str | None = None) -> Architecture:
    """The :class:`Architecture` of a model config dict (``config.json`` or ``model.config``).

    ``moe_count``: ``ipw`` or ``official`` (see the module docstring); ``model_path`` is the path
    the official rule reads (default: the config's ``_name_or_path``, else empty).
    """
    if moe_count not in MOE_COUNTS:
        raise ValueError(f"moe_count must be one of {MOE_COUNTS}, got {moe_count!r}")
    path = str(model_path if model_path is not None else config.get("_name_or_path") or "")
    cfg = _text_part(config)
    _check_supported(cfg)
    heads = int(_first(cfg, "num_attention_heads", "n_head"))
    kind = _attention(cfg, attention)
    ffn, routed, active = _ffn_width(cfg)
    if moe_count == "official":
        ffn = _official_ffn_width(cfg, kind, path)
    return Architecture(
        hidden_size=int(_first(cfg, "hidden_size", "n_embd", "d_model")),
        num_layers=int(_first(cfg, "num_hidden_layers", "n_layer", "num_layers")),
        num_heads=heads,
        num_kv_heads=int(cfg.get("num_key_value_heads") or heads),
        ffn_active_width=ffn, vocab_size=int(_first(cfg, "vocab_size")), attention=kind,
        mla_latent=int(_first(cfg, "kv_lora_rank")) if kind == "mla" else 0,
        routed_experts=routed, active_experts=active)
