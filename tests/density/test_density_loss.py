import math

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from ipw.science.density.items import Item, shipped_items  # noqa: E402
from ipw.science.density.loss import conditional_losses, summarize_losses  # noqa: E402


class CharTokenizer:
    """One token per character (ids 1..), BOS = 0: enough to check the loss bookkeeping."""

    def __call__(self, text, add_special_tokens=True):
        ids = [1 + (ord(ch) % 60) for ch in text]
        return {"input_ids": ([0] if add_special_tokens else []) + ids}


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32,
                                      num_hidden_layers=1, num_attention_heads=2,
                                      num_key_value_heads=1, max_position_embeddings=128)
    return transformers.LlamaForCausalLM(config).eval()


def _manual_nll(model, ids, n_answer):
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    total = 0.0
    for pos in range(len(ids) - n_answer, len(ids)):
        total -= torch.log_softmax(logits[pos - 1].double(), -1)[ids[pos]].item()
    return total


def test_conditional_loss_sums_answer_tokens_only(tiny_model):
    tok = CharTokenizer()
    item = Item("x", "Q: hi\nA:", " yes")
    frame = conditional_losses(tiny_model, tok, [item])
    ids = tok("Q: hi\nA:")["input_ids"] + tok(" yes", add_special_tokens=False)["input_ids"]
    assert frame.loc[0, "n_answer_tokens"] == 4
    assert frame.loc[0, "nll_nats"] == pytest.approx(_manual_nll(tiny_model, ids, 4), rel=1e-4)
    assert frame.loc[0, "loss_per_token"] == pytest.approx(frame.loc[0, "nll_nats"] / 4)


def test_trailing_prompt_whitespace_moves_into_the_answer(tiny_model):
    tok = CharTokenizer()
    moved = conditional_losses(tiny_model, tok, [Item("a", "Q:A: ", "yes")])
    joined = conditional_losses(tiny_model, tok, [Item("b", "Q:A:", " yes")])
    assert moved.loc[0, "nll_nats"] == pytest.approx(joined.loc[0, "nll_nats"])


def test_summary_weights_items_and_tokens_differently():
    import pandas as pd

    frame = pd.DataFrame({"n_answer_tokens": [1, 3], "nll_nats": [1.0, 6.0], "loss_per_token": [1.0, 2.0]})
    summary = summarize_losses(frame)
    assert summary["loss_item_mean"] == pytest.approx(1.5)
    assert summary["loss_token_mean"] == pytest.approx(7.0 / 4)


@pytest.mark.slow
def test_default_gguf_model_prefers_the_right_answer():
    from ipw.science.density.loss import load_model
    from ipw.core.errors import MissingExtra

    try:
        model, tok = load_model()
    except MissingExtra as e:
        pytest.skip(str(e))
    fact = shipped_items()[0]  # capital of France: " Paris"
    wrong = Item("wrong", fact.prompt, " Banana")
    frame = conditional_losses(model, tok, [fact, wrong])
    assert all(math.isfinite(v) and v > 0 for v in frame["loss_per_token"])
    assert frame.loc[0, "nll_nats"] < frame.loc[1, "nll_nats"]
