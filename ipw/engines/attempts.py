"""One try of one query, as the serving executor and the async client see it (no dependencies).

:class:`Attempt` holds an attempt's span and token times; a :class:`Tracker` is told when attempts
begin and end (``ipw.run.serving`` keeps the attempts in flight with one; the default
keeps nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ipw.core import clock


@dataclass
class Attempt:
    """One try of one query: its span [s], token times [s] and counts; ``error`` if it failed."""

    t_start_s: float
    t_end_s: float | None = None
    token_times_s: list[float] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int = 0
    error: Exception | None = None
    server_prefill_s: float | None = None  # the server's own prefill time [s], where it reports one per answer


class Tracker:
    """What the caller learns of attempts: :meth:`begin` stamps and registers one, :meth:`end`
    hears that it ended (its ``t_end_s`` set). The default keeps nothing."""

    def begin(self) -> Attempt:
        return Attempt(clock.now())

    def end(self, attempt: Attempt) -> None:
        pass
