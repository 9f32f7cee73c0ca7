"""Batched generation for the transformers engine: N prompts in one ``generate``, per-row token times.

Prompts are rendered as :meth:`TransformersEngine.generate` renders them (chat template or plain),
left-padded to one length, and generated together (static batching: the batch runs until its
longest row ends; rows that ended earlier are padded). A streamer stamps each decoding step with
:func:`ipw.core.clock.now` when ``generate`` hands the step's tokens over (on CUDA it copies
them to the host first, so the stamp follows the kernels); every row's token ``k`` has step ``k``'s
time. A row ends at its first end-of-sequence token, which is not counted (as the single-query
engine counts). ``t_end`` of every row is the end of the batch, when its answer is available;
the row's last token time is when it stopped producing. Input tokens count the row's own prompt
tokens, not its padding. ``extra["token_times_s"]`` holds the row's token times.

A CUDA out-of-memory error becomes an :class:`~ipw.core.errors.IpwError` naming the batch size, so the
runner records the batch's queries as failed instead of crashing.
"""

from __future__ import annotations

from ipw.core.errors import IpwError
from ipw.core import clock
from ipw.engines.base import Generation, GenerationSettings


class _StepTimes:
    """A streamer that stamps each decoding step (the first ``put`` carries the prompts)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._prompt_seen = False

    def put(self, value) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self.times.append(clock.now())

    def end(self) -> None:
        pass


def _texts(engine, prompts: list[str]) -> list[str]:
    if not engine.chat:
        return list(prompts)
    return [engine.tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                                 tokenize=False) for p in prompts]  # fmt: skip


def generate_batch(engine, prompts: list[str], settings: GenerationSettings) -> list[Generation]:
    """One :class:`Generation` per prompt, generated in one batch (see the module docstring)."""
    if not prompts:
        return []
    torch, tok = engine._torch, engine.tokenizer
    device = getattr(engine, "device", "cpu")
    side, pad = tok.padding_side, tok.pad_token
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    try:
        t_start = clock.now()
        enc = tok(_texts(engine, prompts), return_tensors="pt", padding=True, add_special_tokens=not engine.chat)
        enc = enc.to(device) if device != "cpu" else enc
        sampling = settings.temperature > 0
        if sampling:
            torch.manual_seed(settings.seed)
        options = {"temperature": settings.temperature, "top_p": settings.top_p} if sampling else {}
        streamer = _StepTimes()
        try:
            with torch.inference_mode():
                out = engine.model.generate(**enc, max_new_tokens=settings.max_tokens, do_sample=sampling,
                                            streamer=streamer, pad_token_id=tok.pad_token_id, **options)  # fmt: skip
        except RuntimeError as e:
            if "out of memory" in str(e).lower():
                raise IpwError(f"a batch of {len(prompts)} did not fit in memory on {device}: {str(e)[:200]}") from None
            raise
        new = out[:, enc["input_ids"].shape[1]:].tolist()
        t_end = clock.now()
        lengths = enc["attention_mask"].sum(dim=1).tolist()
    finally:
        tok.padding_side, tok.pad_token = side, pad
    results = []
    for row, n_in in zip(new, lengths):
        ended = next((i for i, t in enumerate(row) if t in engine._eos_ids), None)
        n_out = len(row) if ended is None else ended
        text = tok.decode(row[:n_out], skip_special_tokens=True)
        stopped = [s for s in settings.stop if s in text]
        if stopped:
            text = text[: min(text.index(s) for s in stopped)]
        times = streamer.times[:n_out]
        finish = "stop" if stopped or ended is not None else "length"
        results.append(Generation(text, int(n_in), n_out, t_start, t_end, times[0] if times else None,
                                  times[-1] if times else None, finish,
                                  {"token_times_s": list(times), "batch_size": len(prompts)}))  # fmt: skip
    return results
