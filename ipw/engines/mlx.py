"""MLX engine (mlx-lm): Apple's array framework, on the GPU of an Apple Silicon Mac (Metal), or on a CPU.

``model``: a Hugging Face folder (an ``ipw models export-hf`` export, or one converted by
``mlx_lm.convert``, quantised or not), or a shipped GGUF ('default', 'gemma3-270m', a .gguf file),
which is exported once to a bf16 folder under ``~/.cache/ipw/engines/models`` (:mod:`ipw.engines.export`;
``IPW_CACHE`` moves it). Nothing is downloaded. Install: ``pip install "ipw[mlx]"`` (``mlx-lm``; on
Linux it brings ``mlx[cpu]``, MLX's CPU backend, on a Mac the Metal build).

``dtype``: 'auto' keeps the folder's weights as stored; 'bfloat16', 'float16' or 'float32' casts
them (quantised layers keep their own type). On a CPU, MLX is slow: on the project's 2-core VM
SmolLM2-135M decoded at about 5 tokens/s in bf16 and 6 in float32 (llama.cpp: about 30), so the
CPU build is for trying the engine, and Metal for measuring it.

How a prompt is sent: with a chat template (the default where the tokenizer has one; ``chat=True``
requires it), one user message rendered by the tokenizer's ``apply_chat_template`` with the
generation prompt, as ``mlx_lm generate`` does; else the plain text. The token ids are passed to
``mlx_lm.stream_generate``, which starts from an empty KV cache at every call (no prefix reuse
between queries).

Token times and counts: ``stream_generate`` yields one response per sampled token (its id in
``response.token``), when the token's value is known; each is stamped with :func:`ipw.core.clock.now`
then. ``output_tokens`` counts the sampled tokens without the end-of-sequence token that ends the
answer (as the llamacpp engine and llama.cpp count; ``extra["eos"]`` says whether one did).
Stop strings are applied here: generation stops at the first token after which the text contains
one, the text is cut before it, and that token is counted (it was computed), as llama.cpp does.
Sampling: ``temperature=0`` is greedy; otherwise ``temperature`` and ``top_p`` through
``mlx_lm.sample_utils.make_sampler`` and the seed through ``mx.random.seed`` before each query.
"""

from __future__ import annotations

from pathlib import Path

from ipw.core import clock
from ipw.core.errors import IpwError, MissingExtra
from ipw.engines.base import Engine, Generation, GenerationSettings
from ipw.engines.export import cached_export
from ipw.engines.models import locate_model

INSTALL = 'pip install "ipw[mlx]"'
DTYPES = ("auto", "bfloat16", "float16", "float32")


def import_mlx():
    """(mlx.core, mlx_lm), or :class:`MissingExtra` with the install command."""
    try:
        import mlx.core as mx
        import mlx_lm
    except ImportError as e:
        raise MissingExtra("mlx-lm (needed by the mlx engine)", INSTALL) from e
    return mx, mlx_lm


def model_folder(model: str | Path) -> tuple[Path, str]:
    """(Hugging Face folder MLX loads, display name): a folder as it is; a GGUF exported once (cached)."""
    where = locate_model(model)
    if where.gguf is None:
        return where.folder, where.name
    return cached_export(model), where.name


class MlxEngine(Engine):
    name = "mlx"

    def __init__(self, model: str = "default", chat: bool | None = None, dtype: str = "auto") -> None:
        if dtype not in DTYPES:
            raise IpwError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
        self._mx, self._lm = import_mlx()
        self.folder, self.model_name = model_folder(model)
        self._model, self._tokenizer = self._lm.load(str(self.folder))
        self.device = str(self._mx.default_device())
        if dtype != "auto":
            self._model.set_dtype(getattr(self._mx, dtype))
        self.dtype = dtype if dtype != "auto" else "as stored"
        has_template = bool(getattr(self._tokenizer, "chat_template", None))
        if chat and not has_template:
            raise IpwError(f"{self.folder} has no chat template: pass chat=False to send plain text")
        self.chat = has_template if chat is None else chat

    def encode(self, prompt: str) -> list[int]:
        """The token ids sent: the chat-templated user message, or the plain text."""
        tok = self._tokenizer
        if self.chat:
            ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True)
            ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
            return [int(i) for i in ids]
        return [int(i) for i in tok.encode(prompt)]

    def generate(self, prompt: str, settings: GenerationSettings) -> Generation:
        from mlx_lm.sample_utils import make_sampler

        t_start = clock.now()
        ids = self.encode(prompt)
        self._mx.random.seed(settings.seed)
        sampler = make_sampler(temp=settings.temperature, top_p=settings.top_p if settings.temperature > 0 else 0.0)
        eos = set(getattr(self._tokenizer, "eos_token_ids", ()) or ())
        stamps, text, finish, stopped_by = [], "", None, None
        try:
            for r in self._lm.stream_generate(self._model, self._tokenizer, ids, max_tokens=settings.max_tokens, sampler=sampler):
                stamps.append((int(r.token), clock.now()))
                text += r.text
                finish = r.finish_reason or finish
                stopped_by = next((s for s in settings.stop if s and s in text), None)
                if stopped_by is not None:
                    text, finish = text[: text.index(stopped_by)], "stop"
                    break
        except (ValueError, RuntimeError) as e:  # this query's error, not the run's
            raise IpwError(f"MLX failed on this prompt: {e}") from e
        t_end = clock.now()
        ended_by_eos = bool(stamps) and stopped_by is None and stamps[-1][0] in eos
        content = stamps[:-1] if ended_by_eos else stamps
        return Generation(
            text=text, input_tokens=len(ids), output_tokens=len(content), t_start_s=t_start, t_end_s=t_end,
            t_first_token_s=content[0][1] if content else None, t_last_token_s=content[-1][1] if content else None,
            finish_reason=finish,
            extra={"token_count_source": "sampled tokens (mlx-lm), end-of-sequence token excluded", "eos": ended_by_eos,
                   "sampled_tokens": len(stamps)},
        )  # fmt: skip

    def describe(self) -> dict:
        import importlib.metadata as md

        versions = {}
        for dist in ("mlx", "mlx-lm", "mlx-cpu", "mlx-metal"):
            try:
                versions[dist] = md.version(dist)
            except md.PackageNotFoundError:
                pass
        return {"engine": self.name, "model": self.model_name, "model_folder": str(self.folder), "device": self.device,
                "dtype": self.dtype, "chat_template": self.chat, "kv_cache": "new for each query", "versions": versions}  # fmt: skip

    def close(self) -> None:
        self._model = self._tokenizer = None
