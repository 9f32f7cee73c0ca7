"""llama.cpp engine (llama-cpp-python): a local GGUF file, or the embedded default model.

``model="default"`` is SmolLM2-135M-Instruct (Q4_1 GGUF, :func:`ipw.engines.models.default_model_path`);
anything else must be a local ``.gguf`` file. Nothing is downloaded.

How a prompt is sent. With ``chat`` (the default when the GGUF carries a
``tokenizer.chat_template``), the prompt becomes one user message rendered by llama-cpp-python's own
``Jinja2ChatFormatter`` from that template, exactly what ``Llama.create_chat_completion`` does;
otherwise the prompt is sent as plain text. Either way the engine tokenizes the text itself, the
same way llama-cpp-python does, and streams ``create_completion`` over those token ids, so
``input_tokens`` is the length of exactly what was evaluated. (``create_chat_completion`` is not
used because it tokenizes internally, which hides the token count, and silently sets
``repeat_penalty=1.1``.)

Token times and counts. Each token is stamped with :func:`ipw.core.clock.now` when llama.cpp
samples it (a ``Llama`` subclass records the id returned by ``Llama.sample``), not when its text
chunk reaches us: llama-cpp-python holds a chunk back while its text could be the start of a stop
string or an incomplete UTF-8 character, so one streamed chunk is *usually* but not always one
token. ``output_tokens`` is the number of sampled tokens, without the end-of-generation token (as
llama.cpp's own ``usage.completion_tokens``); a token that completes a stop string is counted (it
was computed), its text is not returned. ``extra`` records ``eog`` (whether an end-of-generation
token ended the answer), ``sampled_tokens`` (``output_tokens`` plus that token) and
``streamed_chunks``. The transformers engine counts the end-of-sequence token as an output token,
so on the same answer it reports one token more (docs/engines.md).

Each query starts from an empty KV cache (``Llama.reset``): llama-cpp-python would otherwise reuse
the previous prompt's common prefix, and a query's prefill time and energy would depend on the
query before it. Sampling is exactly what :class:`GenerationSettings` asks for: ``top_k``,
``min_p`` and the repeat penalty are switched off (llama-cpp-python's defaults are 40, 0.05, 1.0
for completions and 1.1 for chat); ``temperature=0`` is greedy.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from ipw.core.errors import IpwError, MissingExtra
from ipw.engines.models import locate_model
from ipw.core import clock
from ipw.engines.base import Engine, Generation, GenerationSettings

INSTALL = 'pip install "ipw[llamacpp]"'
# Samplers that GenerationSettings does not name are switched off (see the module docstring).
NEUTRAL_SAMPLING = {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}


def import_llama_cpp():
    """The ``llama_cpp`` module, or :class:`MissingExtra` with the install command."""
    try:
        import llama_cpp
    except ImportError as e:
        raise MissingExtra("llama-cpp-python (needed by the llamacpp engine)", INSTALL) from e
    return llama_cpp


def resolve_gguf(model: str) -> tuple[Path, str]:
    """(path of the GGUF file, display name) for ``model``: "default" or a local .gguf file."""
    where = locate_model(model)
    if where.gguf is not None:
        return where.folder / where.gguf, where.name
    raise IpwError(
        f"model {model!r} is neither 'default' nor a .gguf file "
        "(llama.cpp reads GGUF files; models are never downloaded: give a local path)"
    )


def default_threads() -> int:
    """llama-cpp-python's default decode thread count (half the logical CPUs), used for prefill too.

    Its default prefill count is every logical CPU; on a 2-core machine with one other busy process
    that made the prefill of a 42-token prompt take 7.7 s instead of 0.25 s (threads spin at each
    barrier while one of them waits for a core).
    """
    return max((os.cpu_count() or 2) // 2, 1)


def resolve_gpu_layers(n_gpu_layers: int | None, gpu_offload: bool) -> int:
    """Layers to offload: None means every layer (-1) on a GPU build of llama.cpp, 0 on a CPU build.

    Asking a CPU build for GPU layers is an error rather than a silent CPU run.
    """
    if n_gpu_layers is None:
        return -1 if gpu_offload else 0
    if n_gpu_layers != 0 and not gpu_offload:
        raise IpwError(
            f"n_gpu_layers={n_gpu_layers} asks for GPU offload, but this llama-cpp-python is a CPU build; "
            'reinstall it with CUDA (CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall llama-cpp-python) '
            "or use n_gpu_layers=0"
        )
    return n_gpu_layers


@functools.cache
def _stamping_llama(llama_class: type) -> type:
    """A ``Llama`` subclass that records ``(token id, clock.now())`` as each token is sampled."""

    class StampingLlama(llama_class):
        def __init__(self, *args, **kwargs) -> None:
            self.stamps: list[tuple[int, float]] = []
            super().__init__(*args, **kwargs)

        def sample(self, *args, **kwargs) -> int:
            token = super().sample(*args, **kwargs)
            self.stamps.append((int(token), clock.now()))
            return token

    return StampingLlama


class LlamaCppEngine(Engine):
    name = "llamacpp"

    # llama.cpp returns from each evaluation after its GPU work (the logits are copied to the host),
    # and its CUDA is not torch's: windows need no torch synchronisation around it.
    sync_cuda = False

    def __init__(self, model: str = "default", chat: bool | None = None, n_ctx: int = 2048,
                 threads: int | None = None, n_gpu_layers: int | None = None,
                 gpu_layers: int | None = None) -> None:  # fmt: skip
        llama_cpp = import_llama_cpp()
        self._lib = llama_cpp
        self.path, self.model_name = resolve_gguf(model)
        if gpu_layers is not None:  # the earlier name of n_gpu_layers
            n_gpu_layers = gpu_layers if n_gpu_layers is None else n_gpu_layers
        self.gpu_offload = bool(getattr(llama_cpp, "llama_supports_gpu_offload", lambda: False)())
        self.gpu_layers = resolve_gpu_layers(n_gpu_layers, self.gpu_offload)
        cls = _stamping_llama(llama_cpp.Llama)
        try:
            self._llm = cls(
                model_path=str(self.path),
                n_ctx=n_ctx,
                n_threads=threads or default_threads(),
                n_threads_batch=threads or default_threads(),  # see default_threads
                n_gpu_layers=self.gpu_layers,
                verbose=False,
            )
        except ValueError as e:  # llama-cpp-python's "Failed to load model from file"
            raise IpwError(f"llama.cpp could not load {self.path}: {e}") from e
        template = self._llm.metadata.get("tokenizer.chat_template")
        self.chat = bool(template) if chat is None else chat
        if self.chat and not template:
            raise IpwError(f"{self.model_name} has no chat template in its GGUF metadata; use chat=False (completion)")
        self._formatter = self._chat_formatter(template) if self.chat else None

    def _chat_formatter(self, template: str):
        """The formatter ``Llama`` itself builds from the GGUF template for ``create_chat_completion``."""
        llm = self._llm
        eos, bos = llm.token_eos(), llm.token_bos()
        text = llm._model.token_get_text  # the same lookup Llama.__init__ uses for these two strings
        return self._lib.llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=text(eos) if eos != -1 else "",
            bos_token=text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )

    def encode(self, prompt: str) -> tuple[list[int], list[str]]:
        """(token ids exactly as sent, stop strings the chat template adds)."""
        llm = self._llm
        if self._formatter is None:  # as Llama.create_completion tokenizes a text prompt
            return llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True), []
        # as llama_chat_format.chat_formatter_to_chat_completion_handler does
        result = self._formatter(messages=[{"role": "user", "content": prompt}])
        tokens = llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)
        stop = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
        return tokens, stop

    @property
    def n_ctx(self) -> int:
        """Tokens the context holds: llama.cpp may round n_ctx up (to 256 at least) while
        llama-cpp-python sizes its token buffer to the number asked for, so the smaller one."""
        return min(self._llm.n_ctx(), len(self._llm.input_ids))

    def _is_eog(self, token: int) -> bool:
        lib = self._lib
        return bool(lib.llama_vocab_is_eog(lib.llama_model_get_vocab(self._llm.model), token))

    def generate(self, prompt: str, settings: GenerationSettings) -> Generation:
        llm = self._llm
        t_start = clock.now()
        tokens, template_stop = self.encode(prompt)
        n_ctx = self.n_ctx
        if len(tokens) >= n_ctx:
            raise IpwError(f"the prompt has {len(tokens)} tokens; n_ctx is {n_ctx}: raise n_ctx")
        max_tokens = min(settings.max_tokens, n_ctx - len(tokens))  # as llama.cpp caps it, recorded
        llm.reset()  # no KV reuse from the previous query (module docstring)
        llm.stamps = []
        stream = llm.create_completion(
            tokens,
            max_tokens=max_tokens,
            temperature=settings.temperature,
            top_p=settings.top_p,
            seed=settings.seed,
            stop=list(settings.stop) + template_stop,
            stream=True,
            **NEUTRAL_SAMPLING,
        )
        parts: list[str] = []
        finish_reason = None
        try:
            for chunk in stream:
                choice = chunk["choices"][0]
                if choice["text"]:
                    parts.append(choice["text"])
                finish_reason = choice["finish_reason"] or finish_reason
        except (ValueError, RuntimeError) as e:  # e.g. llama_decode failing: this query's error, not the run's
            raise IpwError(f"llama.cpp failed on this prompt: {e}") from e
        t_end = clock.now()
        stamps = llm.stamps
        if parts and not stamps:
            raise IpwError(f"llama-cpp-python {self._lib.__version__} no longer calls Llama.sample: no token times")
        eog = bool(stamps) and self._is_eog(stamps[-1][0])
        content = stamps[:-1] if eog else stamps
        return Generation(
            text="".join(parts),
            input_tokens=len(tokens),
            output_tokens=len(content),
            t_start_s=t_start,
            t_end_s=t_end,
            t_first_token_s=content[0][1] if content else None,
            t_last_token_s=content[-1][1] if content else None,
            finish_reason=finish_reason,
            extra={
                "token_count_source": "sampled tokens (llama.cpp), end-of-generation token excluded",
                "eog": eog,
                "sampled_tokens": len(stamps),
                "streamed_chunks": len(parts),
            }
            | ({"max_tokens_capped_to": max_tokens} if max_tokens < settings.max_tokens else {}),
        )

    def describe(self) -> dict:
        llm = self._llm
        return {
            "engine": self.name,
            "model": self.model_name,
            "model_file": self.path.name,
            "chat_template": self.chat,
            "n_ctx": self.n_ctx,
            "threads": llm.n_threads,
            "threads_batch": llm.n_threads_batch,
            "n_gpu_layers": self.gpu_layers,
            "gpu_offload": self.gpu_offload,
            "sampling": dict(NEUTRAL_SAMPLING),
            "kv_cache": "reset before each query",
            "versions": {"llama_cpp": self._lib.__version__},
        }

    def close(self) -> None:
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is not None:
            llm.close()
