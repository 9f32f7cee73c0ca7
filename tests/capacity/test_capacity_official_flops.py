"""F against the official code's count (TeleAI-AI-Flow/InformationCapacity ``flops.py``, commit
9b4cb316ace7bfdb574006fa75f17ccd328b0af6) for the MoE models docs/capacity.md names.

The official F values below were computed by the official ``gqa_model_theoretical_flops`` (its
decode part, ``decode_total_TFLOPs * 1e12 / gen_len`` as ``calc_ic.py`` does, gen_len 1024) on these
configs, in folders named as on Hugging Face. The rule that matters: the official counter takes
``d_ff = intermediate_size`` and adds ``shared_expert_intermediate_size`` only when the model path
contains ("Qwen1.5" or "Qwen2-") and "B-A". Per layer and token (T = 1024, 2 FLOPs per MAC):
projections 4 d^2 + 4 d kv_dim, MLP 6 d d_ff, attention 4 heads d_k (T-1)/2; LM head 2 d V once.

Config sources (the fields the counter reads, as in each model's config.json on Hugging Face):
* Qwen1.5-MoE-A2.7B: the Qwen/Qwen1.5-MoE-A2.7B config.json as carried, field for field, by
  huggingface.co/MaziyarPanahi/Qwen1.5-MoE-A2.7B-Wikihow/blame/f2045481b0b67a1324363fa416dca672026c1d28/config.json
  (``_name_or_path: Qwen/Qwen1.5-MoE-A2.7B``) and huggingface.co/RichardErkhov/Qwen_-_Qwen1.5-MoE-A2.7B-8bits
  config.json (a re-upload with a quantization block added).
* Qwen2-57B-A14B: the Qwen/Qwen2-57B-A14B config.json as carried by
  huggingface.co/zhoukz/qwen2-57b-a14b-4bit/blob/main/config.json (``_name_or_path: Qwen/Qwen2-57B-A14B``),
  the same fields in huggingface.co/shuyuej/Qwen2-57B-A14B-GPTQ and Intel/Qwen2-57B-A14B-Instruct-int4-inc;
  vocab_size 151936 as the loaded model's lm_head (out_features=151936).
* Mixtral-8x7B-Instruct-v0.1: huggingface.co/mistralai/Mixtral-8x7B-Instruct-v0.1, config.json at
  commit eba92302a2861cdc0098cc54bc9f17cb2c47eb61.
"""

from __future__ import annotations

import json

import pytest

from ipw.science.capacity import UnsupportedConfigError, architecture_from_config, decode_flops_per_token

QWEN15_MOE_A27B = {  # Qwen/Qwen1.5-MoE-A2.7B config.json (source above)
    "architectures": ["Qwen2MoeForCausalLM"], "model_type": "qwen2_moe", "hidden_size": 2048,
    "intermediate_size": 5632, "moe_intermediate_size": 1408, "num_attention_heads": 16, "num_experts": 60,
    "num_experts_per_tok": 4, "num_hidden_layers": 24, "num_key_value_heads": 16,
    "shared_expert_intermediate_size": 5632, "decoder_sparse_step": 1, "vocab_size": 151936,
}
QWEN2_57B_A14B = {  # Qwen/Qwen2-57B-A14B config.json (source above)
    "architectures": ["Qwen2MoeForCausalLM"], "model_type": "qwen2_moe", "hidden_size": 3584,
    "intermediate_size": 18944, "moe_intermediate_size": 2560, "num_attention_heads": 28, "num_experts": 64,
    "num_experts_per_tok": 8, "num_hidden_layers": 28, "num_key_value_heads": 4,
    "shared_expert_intermediate_size": 20480, "decoder_sparse_step": 1, "mlp_only_layers": [], "vocab_size": 151936,
}
MIXTRAL_8X7B = {  # mistralai/Mixtral-8x7B-Instruct-v0.1 config.json (source above)
    "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": 4096, "intermediate_size": 14336,
    "num_attention_heads": 32, "num_experts_per_tok": 2, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "num_local_experts": 8, "sliding_window": None, "vocab_size": 32000,
}

# The official code's F [FLOPs/token] for these configs at gen_len 1024.
OFFICIAL_F = {
    # 24 x (33,554,432 + 6*2048*5632 = 69,206,016 + 4,190,208) + 2*2048*151936 = 622,329,856
    "Qwen1.5-MoE-A2.7B": 3_189_145_600,
    # 28 x (58,720,256 + 6*3584*(18944 + 20480) = 847,773,696 + 7,332,864) + 1,089,077,248
    "Qwen2-57B-A14B": 26_676_228_096,
    # 32 x (4*4096^2 + 4*4096*1024 = 83,886,080 + 6*4096*14336 (one expert) + 4*32*128*511.5) + 262,144,000
    "Mixtral-8x7B-Instruct-v0.1": 14_488_961_024,
}
CONFIGS = {"Qwen1.5-MoE-A2.7B": QWEN15_MOE_A27B, "Qwen2-57B-A14B": QWEN2_57B_A14B,
           "Mixtral-8x7B-Instruct-v0.1": MIXTRAL_8X7B}


@pytest.mark.parametrize("name", sorted(OFFICIAL_F))
def test_official_count_reproduces_the_official_code(name, tmp_path):
    folder = tmp_path / "models" / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(CONFIGS[name]), encoding="utf-8")
    assert decode_flops_per_token(folder, moe_count="official") == OFFICIAL_F[name]
    assert decode_flops_per_token(CONFIGS[name], moe_count="official", model_path=f"/models/{name}") == OFFICIAL_F[name]


def test_ipw_count_differs_where_docs_say():
    # ipw: 4 active experts of 1408 + the shared expert of 5632 = 11264 against the official 5632
    ipw = decode_flops_per_token(QWEN15_MOE_A27B)
    assert architecture_from_config(QWEN15_MOE_A27B).ffn_active_width == 11264
    assert ipw == 24 * (33_554_432 + 6 * 2048 * 11264 + 4_190_208) + 622_329_856 == 4_850_089_984
    assert ipw / OFFICIAL_F["Qwen1.5-MoE-A2.7B"] == pytest.approx(1.5208, abs=1e-4)
    # Qwen2-57B-A14B: 8 x 2560 + 20480 = 40960 against the official 39424
    assert architecture_from_config(QWEN2_57B_A14B).ffn_active_width == 40960
    official = architecture_from_config(QWEN2_57B_A14B, moe_count="official", model_path="Qwen/Qwen2-57B-A14B")
    assert official.ffn_active_width == 39424
    # Mixtral: ipw counts both active experts, the official GQA counter one
    assert decode_flops_per_token(MIXTRAL_8X7B) - OFFICIAL_F["Mixtral-8x7B-Instruct-v0.1"] == 32 * 6 * 4096 * 14336


def test_official_shared_expert_rule_follows_the_path_not_the_config():
    # the same config counts the shared expert only under a path with "Qwen2-" and "B-A"
    width = {path: architecture_from_config(QWEN2_57B_A14B, moe_count="official", model_path=path).ffn_active_width
             for path in ("/m/Qwen2-57B-A14B-Instruct", "/m/qwen2-moe", "/m/Qwen1.5-MoE-A2.7B")}
    assert width == {"/m/Qwen2-57B-A14B-Instruct": 39424, "/m/qwen2-moe": 18944, "/m/Qwen1.5-MoE-A2.7B": 18944}
    # without a path argument the config's _name_or_path is read, as transformers' config.to_dict() has it
    named = {**QWEN2_57B_A14B, "_name_or_path": "Qwen/Qwen2-57B-A14B"}
    assert decode_flops_per_token(named, moe_count="official") == OFFICIAL_F["Qwen2-57B-A14B"]


def test_dense_models_count_the_same_either_way():
    dense = {"hidden_size": 576, "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
             "intermediate_size": 1536, "vocab_size": 49152}
    assert decode_flops_per_token(dense, moe_count="official") == decode_flops_per_token(dense) == 304_314_624


def test_official_mla_counts_shared_plus_active_experts_of_moe_width():
    # official mla_model_theoretical_flops: (n_shared_experts + num_experts_per_tok) * moe_intermediate_size
    cfg = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "kv_lora_rank": 16,
           "intermediate_size": 500, "moe_intermediate_size": 24, "n_routed_experts": 8, "n_shared_experts": 1,
           "num_experts_per_tok": 2, "vocab_size": 100}
    assert architecture_from_config(cfg, moe_count="official").ffn_active_width == 72
    assert decode_flops_per_token(cfg, moe_count="official") == decode_flops_per_token(cfg)


@pytest.mark.parametrize("path", ["/m/Llama-4-Scout-17B-16E", "/m/gpt-oss-20b", "/m/gemma-3-12b-it"])
def test_official_name_cases_are_refused_not_miscounted(path):
    with pytest.raises(UnsupportedConfigError, match="special-cases"):
        decode_flops_per_token(MIXTRAL_8X7B, moe_count="official", model_path=path)


def test_unknown_moe_count_is_refused():
    with pytest.raises(ValueError, match="moe_count"):
        decode_flops_per_token(MIXTRAL_8X7B, moe_count="paper")
