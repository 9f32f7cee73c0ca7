"""A fast engine at the engine boundary, for the shard and launch tests: it answers every prompt
with the digits in it summed ("2 + 2?" -> "4"), after ``delay_s``, stamping token times on ipw's
clock. Importable by Ray workers (the tests put the repository on their PYTHONPATH)."""

from __future__ import annotations

import re
import time

from ipw.core.clock import now
from ipw.engines import Engine, Generation, GenerationSettings


class CannedEngine(Engine):
    name = "canned"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s

    def generate(self, prompt: str, settings: GenerationSettings) -> Generation:
        t0 = now()
        time.sleep(self.delay_s)
        text = str(sum(int(x) for x in re.findall(r"\d+", prompt.split("Answer")[0])))
        t1 = now()
        return Generation(text, 8, 2, t0, now(), t1, now(), "stop")

    def describe(self) -> dict:
        return {"engine": self.name, "model": "canned", "delay_s": self.delay_s}


class Factory:
    """A picklable engine factory (what ipw.run.launch ships to each Ray task)."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s

    def __call__(self) -> CannedEngine:
        return CannedEngine(self.delay_s)


def queries(n: int, domains: tuple[str, ...] = ("arithmetic", "facts", "units")) -> list[dict]:
    """``n`` queries over ``domains`` whose answer the engine gets right when ``i`` is even."""
    out = []
    for i in range(n):
        answer = str(i + 1) if i % 2 == 0 else str(i + 2)
        out.append({"id": f"q{i:03d}", "prompt": f"What is {i} + 1?", "answer": answer, "grader": "numeric",
                    "domain": domains[i % len(domains)]})
    return out


class Broken:
    """A factory whose engine cannot be built on the worker (a model file missing on that node)."""

    def __call__(self):
        from ipw.core.errors import IpwError

        raise IpwError("model file /models/absent.gguf is not on this node")
