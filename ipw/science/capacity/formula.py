"""Information Capacity formula and the per-corpus averages it needs (pure numbers, no model).

Paper: Yuan et al., "Information Capacity: Evaluating the Efficiency of Large Language Models via
Text Compression", arXiv 2511.08066 (TeleAI), Sec. 3 (definition). Official code:
TeleAI-AI-Flow/InformationCapacity, ``calc_ic.py`` (formula), ``text_size.py`` (text size),
``likelihood.py`` (NLL).

For a sample of L tokens x_1..x_L (as the tokenizer returns them, special tokens included):

* scored positions: tokens 2..L, i.e. L - 1 predictions; token 1 has no context and is not scored;
* text size C = 8 * UTF-8 bytes of ``decode(x_2..x_L)`` [bits]; per token C / (L - 1) [bits/token];
* NLL = sum over i = 2..L of -log2 p(x_i | x_<i) [bits]; per token NLL / (L - 1) [bits/token];
* IC = (text size per token - NLL per token + b) / log2(F), with b in bits/token and F the decode
  FLOPs per token (so IC is in bits per token per log2-FLOP).

Averaging over a corpus (the official code's choice, ``averaging="official"``): the NLL is the mean
over every scored position of every sample (``torch.nanmean`` over a padded matrix), while the
text size is the mean over samples of each sample's C / (L - 1) (``np.mean`` of per-line values).
``averaging="tokens"`` uses position weighting for both (text size = 8 * total bytes / total
positions), which makes text size - NLL an exact per-token difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

AVERAGING = ("official", "tokens")


@dataclass(frozen=True)
class SampleScore:
    """What one sample contributes: scored positions, bytes of tokens 2..L, NLL bits summed."""

    tokens_scored: int  # L - 1
    text_bytes: int  # UTF-8 bytes of the text decoded from tokens 2..L
    nll_bits: float  # sum of -log2 p over the L - 1 scored positions
    truncated: bool = False  # the text had more than max_tokens tokens


@dataclass(frozen=True)
class CorpusSummary:
    """Corpus averages, units in the names."""

    samples: int
    tokens_scored: int
    text_bytes: int
    truncated_samples: int
    nll_bits_per_token: float
    text_size_bits_per_token: float
    bytes_per_token: float  # tokenizer efficiency: UTF-8 bytes per scored token, pooled
    bits_per_byte: float  # compression rate: NLL bits per UTF-8 byte, pooled


def information_capacity(text_size_bits_per_token: float, nll_bits_per_token: float,
                         flops_per_token: float, bias_bits: float) -> float:
    """IC = (text size - NLL + b) / log2(F): bits/token over log2 of FLOPs/token (paper Sec. 3)."""
    if flops_per_token <= 1:
        raise ValueError(f"FLOPs per token must exceed 1 for log2 to be positive, got {flops_per_token}")
    return (text_size_bits_per_token - nll_bits_per_token + bias_bits) / math.log2(flops_per_token)


def summarize(scores: Sequence[SampleScore], averaging: str = "official") -> CorpusSummary:
    """Corpus averages of per-sample scores under the chosen averaging (see module docstring)."""
    if averaging not in AVERAGING:
        raise ValueError(f"averaging must be one of {AVERAGING}, got {averaging!r}")
    if not scores:
        raise ValueError("no samples to summarize")
    tokens = sum(s.tokens_scored for s in scores)
    text_bytes = sum(s.text_bytes for s in scores)
    nll_bits = math.fsum(s.nll_bits for s in scores)
    if averaging == "official":
        text_size = math.fsum(8 * s.text_bytes / s.tokens_scored for s in scores) / len(scores)
    else:
        text_size = 8 * text_bytes / tokens
    return CorpusSummary(
        samples=len(scores), tokens_scored=tokens, text_bytes=text_bytes,
        truncated_samples=sum(s.truncated for s in scores),
        nll_bits_per_token=nll_bits / tokens, text_size_bits_per_token=text_size,
        bytes_per_token=text_bytes / tokens, bits_per_byte=nll_bits / text_bytes if text_bytes else math.nan)
