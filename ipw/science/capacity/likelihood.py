"""The one adapter that runs a model: load it with transformers and score text samples.

Official code: TeleAI-AI-Flow/InformationCapacity ``likelihood.py`` (NLL) and ``text_size.py``
(text size). Same conventions, see :mod:`ipw.science.capacity.formula`:

* tokens = ``tokenizer(text, truncation=True, max_length=max_tokens)`` (special tokens included,
  as the tokenizer adds them); token 1 is context only, tokens 2..L are scored;
* -log2 p uses the softmax over the first ``len(tokenizer)`` logits (models whose embedding
  matrix is padded beyond the tokenizer's vocabulary), computed as a fused log-softmax
  (cross-entropy) in float32
  (the official code takes log2 of a float32 softmax, which can underflow to -inf);
* batches are right-padded and padded positions are masked (attention mask) and never scored;
  samples are batched in order of length to waste little compute on padding.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ipw.science.capacity.corpora import IN_MEMORY
from ipw.science.capacity.errors import EmptySampleError
from ipw.science.capacity.formula import SampleScore
from ipw.engines.models import load_hf_model

DEFAULT_SPEC = "default"


@dataclass(frozen=True)
class LoadedModel:
    """A transformers causal LM with its tokenizer and config dict."""

    name: str
    model: object
    tokenizer: object
    config: dict

    @property
    def device(self):
        return next(self.model.parameters()).device


def load_model(spec: str = DEFAULT_SPEC, device: str | None = None) -> LoadedModel:
    """Load ``spec`` ('default', a local HF folder or a .gguf file) for scoring, in eval mode."""
    import torch

    model, tokenizer, _ = load_hf_model(spec, dtype="auto")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device)
    return LoadedModel(name=spec, model=model, tokenizer=tokenizer, config=model.config.to_dict())


@dataclass(frozen=True)
class Encoded:
    """One sample's token ids (at most max_tokens) and its derived counts."""

    index: int
    ids: tuple[int, ...]
    text_bytes: int  # UTF-8 bytes of decode(ids[1:])
    truncated: bool


def encode(tokenizer, texts: Sequence[str], max_tokens: int) -> list[Encoded]:
    """Tokenize with truncation; a sample with fewer than 2 tokens is an :class:`EmptySampleError`."""
    cut = tokenizer(list(texts), truncation=True, max_length=max_tokens)["input_ids"]
    full_lengths = [len(ids) for ids in tokenizer(list(texts))["input_ids"]]
    encoded = []
    for i, (ids, full) in enumerate(zip(cut, full_lengths)):
        if len(ids) < 2:
            raise EmptySampleError(IN_MEMORY, i + 1, f"the sample has {len(ids)} token(s); "
                                   "at least 2 are needed (token 1 is context only)")
        text = tokenizer.decode(ids[1:])
        encoded.append(Encoded(i, tuple(ids), len(text.encode("utf-8")), full > len(ids)))
    return encoded


def length_batches(encoded: Sequence[Encoded], batch_size: int) -> Iterator[list[Encoded]]:
    """Batches of samples of similar length (longest first), so padding stays small."""
    ordered = sorted(encoded, key=lambda e: len(e.ids), reverse=True)
    for start in range(0, len(ordered), batch_size):
        yield ordered[start:start + batch_size]


def pad_batch(batch: Sequence[Encoded], pad_id: int, device):
    """Right-padded ``input_ids`` and ``attention_mask`` tensors of one batch."""
    import torch

    width = max(len(e.ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):
        ids[row, :len(e.ids)] = torch.tensor(e.ids)
        mask[row, :len(e.ids)] = 1
    return ids.to(device), mask.to(device)


def nll_bits(logits, ids, length: int, vocab: int) -> float:
    """Sum of -log2 p(x_i | x_<i) over positions 2..length of one row (bits).

    ``logits``: (width, V) of one sample; ``ids``: (width,) its tokens; ``vocab``: how many logits
    form the softmax (``len(tokenizer)``, as the official code).
    """
    import torch.nn.functional as F

    scores = logits[:length - 1, :vocab].float()
    nats = F.cross_entropy(scores, ids[1:length], reduction="none")  # fused log-softmax + pick
    return nats.double().sum().item() / math.log(2)


def pad_token_id(tokenizer) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return int(candidate)
    return 0


def score_batch(loaded: LoadedModel, batch: Sequence[Encoded]) -> list[SampleScore]:
    """One forward pass over a padded batch; a :class:`SampleScore` per sample, batch order."""
    import torch

    ids, mask = pad_batch(batch, pad_token_id(loaded.tokenizer), loaded.device)
    with torch.inference_mode():
        logits = loaded.model(input_ids=ids, attention_mask=mask, use_cache=False).logits
    vocab = min(len(loaded.tokenizer), logits.shape[-1])
    return [SampleScore(tokens_scored=len(e.ids) - 1, text_bytes=e.text_bytes,
                        nll_bits=nll_bits(logits[row], ids[row], len(e.ids), vocab),
                        truncated=e.truncated)
            for row, e in enumerate(batch)]


def score_texts(loaded: LoadedModel, texts: Sequence[str], max_tokens: int = 1024,
                batch_size: int = 4) -> list[SampleScore]:
    """Scores of ``texts`` in their given order (see module docstring for the conventions)."""
    if max_tokens < 2 or batch_size < 1:
        raise ValueError("max_tokens must be at least 2 and batch_size at least 1")
    encoded = encode(loaded.tokenizer, texts, max_tokens)
    scores: dict[int, SampleScore] = {}
    for batch in length_batches(encoded, batch_size):
        scores.update(zip((e.index for e in batch), score_batch(loaded, batch)))
    return [scores[i] for i in range(len(encoded))]
