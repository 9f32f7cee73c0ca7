"""ipw: intelligence per watt, per joule and per FLOP, measured on the machine in front of you."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["measure", "Profiler", "__version__"]


def __getattr__(name: str):
    # Lazy, so that `import ipw` stays cheap and imports no vendor library.
    if name in ("measure", "Profiler"):
        from ipw.profilers import windows

        return getattr(windows, name)
    raise AttributeError(f"module 'ipw' has no attribute {name!r}")
