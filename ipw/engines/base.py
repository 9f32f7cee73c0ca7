"""The engine contract: one call generates one answer, streaming, with token timestamps.

Engines stamp every output token with :func:`ipw.core.clock.now` (the one monotonic clock of
ipw) at the moment it is produced or received, so that latency follows the IPW paper's definitions
(the IPW paper, arXiv 2511.07885, section 3, and docs/profile.md):

- TTFT = t_first_token - t_start [s]
- TPOT = (t_last_token - t_first_token) / (n_out - 1) [s/token], undefined for n_out < 2
  (the released IPW harness divides the whole time by n_out, prefill included; we do not)
- end-to-end = t_end - t_start [s]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field

from ipw.core import latency


@dataclass(frozen=True)
class GenerationSettings:
    """What every engine is asked for; recorded in the run's manifest."""

    max_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")

    def to_dict(self) -> dict:
        return asdict(self) | {"stop": list(self.stop)}


@dataclass(frozen=True)
class Generation:
    """One answer with its timing. Times are monotonic seconds (:func:`ipw.core.clock.now`)."""

    text: str
    input_tokens: int | None  # None where a server does not report it
    output_tokens: int
    t_start_s: float
    t_end_s: float
    t_first_token_s: float | None = None
    t_last_token_s: float | None = None
    finish_reason: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ttft_s(self) -> float | None:
        """Time to first token [s] (:func:`ipw.core.latency.ttft_between_s`)."""
        return latency.ttft_between_s(self.t_start_s, self.t_first_token_s)

    @property
    def tpot_s(self) -> float | None:
        """Time per output token after the first [s] (:func:`ipw.core.latency.tpot_between_s`)."""
        return latency.tpot_between_s(self.t_first_token_s, self.t_last_token_s, self.output_tokens)

    @property
    def e2e_s(self) -> float:
        return self.t_end_s - self.t_start_s

    def timing(self) -> dict:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "ttft_s": self.ttft_s,
            "tpot_s": self.tpot_s,
            "e2e_s": self.e2e_s,
            "finish_reason": self.finish_reason,
        }


class Engine(ABC):
    """A model behind one interface. ``prompt`` is the user's text; the engine applies the model's
    chat template when it has one and ``chat`` is not False, else sends it as a plain completion."""

    name: str = "engine"
    in_process: bool = True  # the model runs in this process (False: a server; ipw.run.cpu_scope)

    @abstractmethod
    def generate(self, prompt: str, settings: GenerationSettings) -> Generation: ...

    @abstractmethod
    def describe(self) -> dict:
        """Model, engine, versions and options, for the run's manifest (never secrets)."""

    def redact(self, value):
        """``value`` (a string, or dicts, lists and tuples of them) with this engine's secrets replaced
        by ``[redacted]`` (:mod:`ipw.engines.secrets`): the run applies it to every record after grading,
        since :meth:`generate` returns the answer as given. An engine without secrets returns it as is."""
        return value

    def redaction_note(self) -> str | None:
        """Why a configured key is not redacted (too short or a placeholder), never the key; None otherwise."""
        return None

    def close(self) -> None:
        """Release the model. Safe to call twice."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
