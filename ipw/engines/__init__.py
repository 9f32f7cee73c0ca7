"""Engines by name, imported lazily so that a missing optional library breaks only its engine.

``get_engine("transformers", model="default")`` builds one; an unknown name gets a
"did you mean" error.
"""

from __future__ import annotations

import difflib
import importlib

from ipw.core.errors import IpwError
from ipw.engines.base import Engine, Generation, GenerationSettings

ENGINES: dict[str, str] = {
    "transformers": "ipw.engines.transformers:TransformersEngine",
    "llamacpp": "ipw.engines.llamacpp:LlamaCppEngine",
    "openai": "ipw.engines.openai:OpenAIEngine",
    "mlx": "ipw.engines.mlx:MlxEngine",
}

__all__ = ["ENGINES", "Engine", "Generation", "GenerationSettings", "get_engine"]


def get_engine(name: str, **options) -> Engine:
    target = ENGINES.get(name)
    if target is None:
        close = difflib.get_close_matches(name, ENGINES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise IpwError(f"unknown engine {name!r}; known: {', '.join(sorted(ENGINES))}.{hint}")
    module, attr = target.split(":")
    cls = getattr(importlib.import_module(module), attr)
    if not issubclass(cls, Engine):
        raise IpwError(f"{target} is not an Engine")
    return cls(**options)
