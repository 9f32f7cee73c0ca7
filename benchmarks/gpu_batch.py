"""The serving regime of the transformers engine on a GPU: batch 1, 8 and 32, through ipw itself.

Builds a randomly initialised SmolLM2-135M-shaped Llama (``LlamaConfig``: 30 layers, d 576,
9 heads, 3 KV heads, FFN 1536, vocabulary 49152; no download) and a word-level tokenizer over its
ids (in memory), saves both to a temporary folder, loads the folder as ipw's transformers engine
(device auto: CUDA, dtype auto: bf16), and runs ``ipw profile --batch-size B`` (the runner with
``batch_size``) at each batch size on synthetic prompts of 32 tokens, 64 new tokens each (no
end-of-sequence token, so every row generates all 64). Energy comes from ipw's profilers (NVML:
the monitor's counter timeline), per query by the attribution rule; the figures per batch size
are ipw.run.sweep's: steady-state J/token (ML.ENERGY's window), J/token over the run, tokens/s, mean
power, TTFT and TPOT medians, prefill and decode energy per query, and the frontier.

Prints one table and one JSON line (``{"gpu_batch": ...}``); writes the runs (records, manifests,
timelines) and the sweep result under --out (the model goes to a temporary folder, removed after). Finishes in well under 90 s on an H200 (about 12, 40 and 96 queries at batch 1, 8, 32).
Needs torch (CUDA), transformers, tokenizers, nvidia-ml-py, numpy, pandas, pyarrow, psutil.
Usage: python benchmarks/gpu_batch.py [--batches 1,8,32] [--out DIR] [--smoke]
(--smoke: a 2-layer model, 8 new tokens, batches 1,2: a dry run on a CPU.)
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHAPE = dict(vocab=49152, d=576, layers=30, heads=9, kv=3, ff=1536, theta=100000.0)
QUERIES_PER_BATCH = {1: 12, 8: 40, 32: 96}  # steady state needs more than 2 x batch queries


def build_model_folder(folder: Path, layers: int) -> None:
    """Save a random SmolLM2-135M-shaped Llama and a word-level tokenizer over its ids to ``folder``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=SHAPE["vocab"], hidden_size=SHAPE["d"], intermediate_size=SHAPE["ff"],
                      num_hidden_layers=layers, num_attention_heads=SHAPE["heads"], num_key_value_heads=SHAPE["kv"],
                      max_position_embeddings=2048, rope_theta=SHAPE["theta"], tie_word_embeddings=True,
                      bos_token_id=None, eos_token_id=None, pad_token_id=0)  # fmt: skip
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    model.save_pretrained(folder)
    vocab = {"<pad>": 0} | {f"t{i}": i for i in range(1, SHAPE["vocab"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<pad>").save_pretrained(folder)


def write_queries(path: Path, n: int, prompt_tokens: int = 32) -> None:
    rng = random.Random(0)
    rows = [{"id": f"r{i}", "prompt": " ".join(f"t{rng.randrange(1, SHAPE['vocab'])}" for _ in range(prompt_tokens)),
             "answer": "none", "grader": "exact", "domain": "synthetic"} for i in range(n)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--out", help="folder for the runs and the sweep result (default: a temporary folder)")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    t0 = time.monotonic()
    from ipw.run import sweep
    from ipw.run import runner
    from ipw.engines import GenerationSettings, get_engine

    batches = sweep.parse_levels("1,2" if args.smoke else args.batches)
    new_tokens = 8 if args.smoke else 64
    out = Path(args.out or tempfile.mkdtemp(prefix="ipw-gpu-batch-"))
    out.mkdir(parents=True, exist_ok=True)
    model_dir = tempfile.TemporaryDirectory(prefix="ipw-gpu-batch-model-")  # 270 MB: never under --out
    folder = Path(model_dir.name)
    build_model_folder(folder, 2 if args.smoke else SHAPE["layers"])
    n_max = max(QUERIES_PER_BATCH.get(b, 3 * b + 3) for b in batches)
    write_queries(out / "queries.jsonl", n_max)
    engine = get_engine("transformers", model=str(folder), chat=False)
    print(f"model ready in {time.monotonic() - t0:.1f} s: {engine.describe().get('device')} "
          f"{engine.describe().get('dtype')}, {new_tokens} new tokens per query", flush=True)  # fmt: skip
    runs = []
    try:
        for b in batches:
            n = min(QUERIES_PER_BATCH.get(b, 3 * b + 3), n_max) if not args.smoke else 3 * b + 3
            config = runner.RunConfig(engine="transformers", engine_options={"model": str(folder), "chat": False},
                                      queries=str(out / "queries.jsonl"), settings=GenerationSettings(max_tokens=new_tokens),
                                      warmup=b, idle_s=1.0, limit=n, runs_dir=str(out / "runs"), run_id=f"b{b}",
                                      batch_size=b)  # fmt: skip
            runs.append(runner.profile(config, engine=engine).path)
            print(f"batch {b}: {n} queries done at {time.monotonic() - t0:.1f} s", flush=True)
    finally:
        engine.close()
        model_dir.cleanup()
    result = sweep.SweepResult(sweep.levels_frame(runs), {"mode": "batch_size", "levels": batches, "runs": [str(r) for r in runs],
                                                          "model": "random SmolLM2-135M-shaped Llama", "new_tokens": new_tokens})  # fmt: skip
    result.save(out / "sweep")
    cols = ["level", "n", "steady_j_per_token", "j_per_token_run", "steady_tokens_per_s", "steady_power_w",
            "energy_per_query_j", "prefill_energy_per_query_j", "decode_energy_per_query_j", "ttft_p50_s", "tpot_p50_s",
            "energy_scope", "frontier_ttft", "frontier_tpot"]  # fmt: skip
    f = result.levels
    print(f[[c for c in cols if c in f]].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    rows = f[[c for c in cols if c in f]].to_dict(orient="records")
    print(json.dumps({"gpu_batch": rows, "seconds": round(time.monotonic() - t0, 1), "out": str(out)}, default=str))


if __name__ == "__main__":
    main()
