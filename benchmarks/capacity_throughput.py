"""Throughput of the Information Capacity evaluation against a plain batched forward loop.

Both loops see the same tokens in the same padded batches (the IC code's own batching, done once
for the plain loop outside the timer). The IC side is the whole ``evaluate_corpus`` call:
tokenization, decoding tokens 2..L for the text size, the forward passes, the log-softmax NLL and
the summary. The plain side is only ``model(input_ids, attention_mask)``. Rounds alternate
(plain, IC, plain, IC, ...) so that load from other processes hits both alike. Printed, measured in
this one run: wall-clock tokens/s of each (median over rounds), the ratio of those medians, the
median of the per-round ratios, and the ratio of tokens per CPU-second of this process (the least
sensitive to other processes on a shared machine). Goal: IC within 5% of the plain loop
(ratio >= 0.95).

Usage: python benchmarks/capacity_throughput.py [--corpus english-docs] [--max-tokens 256]
       [--max-samples 8] [--batch-size 4] [--rounds 3] [--model default]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ipw.science.capacity import CapacityConfig, evaluate_corpus, load_corpus, load_model
from ipw.science.capacity.likelihood import encode, length_batches, pad_batch, pad_token_id


def plain_batches(loaded, texts, config):
    encoded = encode(loaded.tokenizer, texts, config.max_tokens)
    pad = pad_token_id(loaded.tokenizer)
    batches = [pad_batch(b, pad, loaded.device) for b in length_batches(encoded, config.batch_size)]
    return batches, sum(len(e.ids) for e in encoded)


def timed(fn, *args) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - w0, time.process_time() - c0


def plain_loop(loaded, batches) -> None:
    with torch.inference_mode():
        for ids, mask in batches:
            loaded.model(input_ids=ids, attention_mask=mask, use_cache=False)


def _listed(values) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def report(tokens: int, plain: list, ic: list) -> None:
    """Print rates and ratios; ``plain`` and ``ic`` hold (wall s, CPU s) per round."""
    plain_wall = [tokens / wall for wall, _ in plain]
    ic_wall = [tokens / wall for wall, _ in ic]
    med_plain, med_ic = statistics.median(plain_wall), statistics.median(ic_wall)
    pairs = statistics.median([i / p for i, p in zip(ic_wall, plain_wall)])
    cpu_ratio = sum(cpu for _, cpu in plain) / sum(cpu for _, cpu in ic)
    print(f"plain forward loop : {med_plain:9.1f} tokens/s  (rounds: {_listed(plain_wall)})")
    print(f"IC evaluation      : {med_ic:9.1f} tokens/s  (rounds: {_listed(ic_wall)})")
    print(f"ratio IC / plain   : {med_ic / med_plain:9.3f}  wall-clock medians")
    print(f"                     {pairs:9.3f}  median of per-round ratios")
    print(f"                     {cpu_ratio:9.3f}  tokens per CPU-second (goal >= 0.95)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--corpus", default="english-docs")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--max-samples", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    config = CapacityConfig(max_tokens=args.max_tokens, batch_size=args.batch_size,
                            max_samples=args.max_samples)
    loaded, corpus = load_model(args.model), load_corpus(args.corpus)
    batches, tokens = plain_batches(loaded, corpus.texts[:args.max_samples], config)
    plain_loop(loaded, batches[:1])  # warm-up: first-call allocations
    plain, ic = [], []
    for _ in range(args.rounds):
        plain.append(timed(plain_loop, loaded, batches))
        ic.append(timed(evaluate_corpus, loaded, corpus, config))
    print(f"model {args.model}, corpus {args.corpus}: {tokens} tokens in {len(batches)} batches "
          f"(max {args.max_tokens} tokens, batch {args.batch_size}), {args.rounds} rounds, "
          f"torch threads {torch.get_num_threads()}")
    report(tokens, plain, ic)


if __name__ == "__main__":
    main()
