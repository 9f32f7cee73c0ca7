"""The one adapter that runs a model: conditional loss -ln P(answer | prompt) with transformers.

Definition (arXiv 2412.04315, Sec. 2.2): for a benchmark instance with prompt x and reference
answer y (for reasoning tasks, the reference reasoning steps plus the answer), the conditional
loss is -ln P(y | x), the negative log-likelihood of y's tokens given x, in **nats** (natural
log; divide by ln 2 for bits). We report per item the sum over answer tokens and the mean per
answer token, and over a set:

* ``loss_item_mean``: mean over items of the per-token loss (each instance counts once); this
  is the value ipw feeds to the loss law, because the paper averages over test instances.
* ``loss_token_mean``: total nats / total answer tokens (long answers weigh more).

Tokenisation (resolved ambiguity): prompt and answer are tokenised separately and joined, as
lm-eval does, with whitespace at the end of the prompt moved to the start of the answer, so the
answer's token count does not depend on how the prompt ends. Over-long inputs are cut from the
left of the prompt; the answer is never cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from ipw.science.density.items import Item
from ipw.engines.models import load_hf_model


@dataclass(frozen=True)
class LossConfig:
    """How to run the model: context limit in tokens and the torch device."""

    max_length: int = 2048
    device: str = "cpu"


def load_model(path: Path | str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) from a GGUF file, a local Hugging Face folder, or the embedded default.

    Never downloads (:func:`ipw.engines.models.load_hf_model` reads local files only).
    """
    model, tokenizer, _ = load_hf_model(path if path is not None else "default")
    return model, tokenizer


def _split_whitespace(item: Item) -> tuple[str, str]:
    prompt = item.prompt.rstrip()
    return prompt, item.prompt[len(prompt):] + item.answer


def _encode(tokenizer: Any, item: Item, max_length: int) -> tuple[list[int], int]:
    prompt, answer = _split_whitespace(item)
    prompt_ids = list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    answer_ids = list(tokenizer(answer, add_special_tokens=False)["input_ids"])
    if not answer_ids:
        raise ValueError(f"item {item.id}: the answer encodes to no tokens")
    if len(answer_ids) >= max_length:
        raise ValueError(f"item {item.id}: answer has {len(answer_ids)} tokens, max_length is {max_length}")
    prompt_ids = prompt_ids[-(max_length - len(answer_ids)):] if prompt_ids else []
    if not prompt_ids:
        raise ValueError(f"item {item.id}: empty prompt and no BOS token to condition on")
    return prompt_ids + answer_ids, len(answer_ids)


def item_nll_nats(model: Any, ids: list[int], n_answer: int, device: str = "cpu") -> float:
    """Sum of -ln p(token) over the last ``n_answer`` tokens of ``ids``, in nats."""
    import torch

    with torch.inference_mode():
        input_ids = torch.tensor([ids], device=device)
        logits = model(input_ids).logits[0, :-1].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        targets = input_ids[0, 1:]
        picked = logprobs.gather(1, targets.unsqueeze(1)).squeeze(1)
        return float(-picked[-n_answer:].sum())


def conditional_losses(
    model: Any, tokenizer: Any, items: Iterable[Item], config: LossConfig = LossConfig(),
) -> pd.DataFrame:
    """One row per item: id, n_answer_tokens, nll_nats (sum), loss_per_token (nats/token)."""
    rows = []
    for item in items:
        ids, n_answer = _encode(tokenizer, item, config.max_length)
        nll = item_nll_nats(model, ids, n_answer, config.device)
        rows.append({"id": item.id, "n_answer_tokens": n_answer, "nll_nats": nll,
                     "loss_per_token": nll / n_answer})
    return pd.DataFrame(rows)


def summarize_losses(frame: pd.DataFrame) -> dict[str, float]:
    """Set-level losses in nats/token: item mean (fed to the loss law) and token mean."""
    return {
        "loss_item_mean": float(frame["loss_per_token"].mean()),
        "loss_token_mean": float(frame["nll_nats"].sum() / frame["n_answer_tokens"].sum()),
        "n_items": int(len(frame)),
        "n_answer_tokens": int(frame["n_answer_tokens"].sum()),
    }
