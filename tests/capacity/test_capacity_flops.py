"""Decode FLOPs per token against counts worked out by hand (2 FLOPs per multiply-add).

Per layer per token: Q,O 2*d*d each; K,V 2*d*kv_dim each; gated MLP 6*d*w; attention core
4*heads*d_k*(T(T-1)/2)/T (GQA) or 4*heads*d_k*kv_lora_rank (MLA). Plus LM head 2*d*V once.
All counts below use T = 8 generated tokens, so the GQA attention average is 3.5 positions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ipw.science.capacity import UnsupportedConfigError, architecture_from_config, decode_flops, decode_flops_per_token
from ipw.science.capacity.flops import load_config

CONFIGS = Path(__file__).parent / "configs"


def flops(name: str, **kw) -> float:
    return decode_flops_per_token(CONFIGS / name, gen_tokens=8, **kw)


def test_dense_multi_head():
    # d=64, 2 layers, 4 heads (d_k=16), kv_dim=64, w=128, V=1000
    # proj 16384 + 16384 = 32768; mlp 49152; attention 256 * 3.5 = 896 -> 82816 per layer
    assert flops("dense_mha.json") == 2 * 82816 + 128000


def test_grouped_query_attention():
    # d=128, 3 layers, 8 heads (d_k=16), 2 kv heads -> kv_dim=32, w=256, V=500
    # proj 65536 + 16384 = 81920; mlp 196608; attention 512 * 3.5 = 1792 -> 280320 per layer
    assert flops("gqa.json") == 3 * 280320 + 128000


def test_grouped_query_uses_fewer_kv_flops_than_multi_head():
    cfg = load_config(CONFIGS / "gqa.json")
    mha = decode_flops_per_token({**cfg, "num_key_value_heads": 8}, gen_tokens=8)
    # K and V shrink from 2*128*128 to 2*128*32 each, in 3 layers
    assert mha - flops("gqa.json") == 3 * 2 * (2 * 128 * 128 - 2 * 128 * 32)


def test_mixture_of_experts_counts_active_experts_only():
    # d=64, kv_dim=32, 2 of 8 experts of width 96 -> w = 192
    # proj 16384 + 8192 = 24576; mlp 6*64*192 = 73728; attention 896 -> 99200 per layer
    assert flops("moe_mixtral.json") == 2 * 99200 + 12800


def test_mixture_of_experts_with_shared_expert():
    # Qwen2-MoE style: 2 active experts of width 32 + a shared expert of width 64 -> w = 128;
    # intermediate_size (999) is not used by sparse layers
    assert flops("moe_shared.json") == 2 * (32768 + 49152 + 896) + 12800


def test_multi_head_latent_attention():
    # DeepSeek style: kv_lora_rank 16 -> attention 4*4*16*16 = 4096 per token per layer
    # experts: 2 routed + 1 shared of width 24 -> mlp 6*64*72 = 27648; proj 32768
    arch = architecture_from_config(load_config(CONFIGS / "mla_moe.json"))
    assert arch.attention == "mla" and arch.mla_latent == 16
    assert flops("mla_moe.json") == 2 * (32768 + 27648 + 4096) + 12800


def test_attention_override_counts_mla_model_as_gqa():
    # forcing GQA replaces the latent term by the growing-cache average (896 per layer)
    assert flops("mla_moe.json", attention="gqa") == 2 * (32768 + 27648 + 896) + 12800


def test_breakdown_adds_up_and_attention_grows_with_generated_tokens():
    arch = architecture_from_config(load_config(CONFIGS / "gqa.json"))
    short, long = decode_flops(arch, gen_tokens=8), decode_flops(arch, gen_tokens=1024)
    assert short.total == short.projections + short.mlp + short.attention_core + short.lm_head
    assert long.attention_core == 3 * 4 * 8 * 16 * (1024 * 1023 / 2) / 1024
    assert (long.projections, long.mlp, long.lm_head) == (short.projections, short.mlp, short.lm_head)


def test_smollm2_135m_config_by_hand():
    # the default model's sizes: d=576, 30 layers, 9 heads (d_k=64), 3 kv heads, w=1536, V=49152
    cfg = {"hidden_size": 576, "num_hidden_layers": 30, "num_attention_heads": 9,
           "num_key_value_heads": 3, "intermediate_size": 1536, "vocab_size": 49152, "head_dim": 64}
    per_layer = (2 * 576 * 576 * 2 + 2 * 576 * 192 * 2) + 6 * 576 * 1536 + 2304 * 523776 / 1024
    assert per_layer == 8_256_384
    assert decode_flops_per_token(cfg) == 30 * 8_256_384 + 2 * 576 * 49152 == 304_314_624


def test_text_config_of_multimodal_models_is_used():
    inner = load_config(CONFIGS / "gqa.json")
    assert decode_flops_per_token({"text_config": inner}, gen_tokens=8) == flops("gqa.json")


def test_linear_attention_layers_are_refused_by_name():
    with pytest.raises(UnsupportedConfigError, match="linear_attention"):
        flops("linear_attention.json")


def test_missing_size_field_is_named():
    cfg = load_config(CONFIGS / "gqa.json")
    del cfg["vocab_size"]
    with pytest.raises(UnsupportedConfigError, match="vocab_size"):
        decode_flops_per_token(cfg)


def test_experts_without_active_count_are_refused():
    cfg = load_config(CONFIGS / "moe_mixtral.json")
    del cfg["num_experts_per_tok"]
    with pytest.raises(UnsupportedConfigError, match="num_experts_per_tok"):
        decode_flops_per_token(cfg)
