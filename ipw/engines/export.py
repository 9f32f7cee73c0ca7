"""A server-ready Hugging Face folder from a shipped GGUF model, for servers that take only folders (vLLM, SGLang).

    ipw models export-hf default ~/models/smollm2-hf            # the embedded SmolLM2-135M-Instruct
    python -m vllm.entrypoints.openai.api_server --model ~/models/smollm2-hf ...

How: transformers reads the GGUF (``gguf_file=...``) and dequantises every weight
(``GgufConfig(dequantize=True)`` on transformers 5, where GGUF weights otherwise stay in GGUF blocks;
older releases always dequantise), casts it to ``dtype`` and writes it with ``save_pretrained``
(safetensors), beside the tokenizer and its chat template (``tokenizer_config.json`` or
``chat_template.jinja``), which a chat endpoint needs. Nothing is downloaded: the GGUF carries the
config, the weights and the tokenizer.

The weights are the Q4_1 values widened, not the original bf16 checkpoint: the served model answers as
the GGUF does (up to the server's own kernels), so a run against vLLM and one through the ``llamacpp``
engine measure the same model. Measured on the project's 2-core VM (no GPU): SmolLM2-135M Q4_1
(about 90 MB) becomes a 269 MB bf16 folder in about 42 s.

``ipw-export.json`` in the folder records the source file (name, size, SHA-256), the dtype and the
transformers version; :func:`export_hf` with the same source and dtype finds it and returns at once
(the test setup caches the folder this way).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from ipw.core.errors import IpwError
from ipw.engines.models import locate_model

PROVENANCE = "ipw-export.json"
DTYPES = ("bfloat16", "float16", "float32")


class ExportError(IpwError):
    """A model that cannot be exported (not a GGUF, an unknown dtype, a folder in the way)."""


def cache_root() -> Path:
    """``$IPW_CACHE``, else ``~/.cache/ipw``: where exports made on demand are kept."""
    return Path(os.environ.get("IPW_CACHE") or Path.home() / ".cache" / "ipw").expanduser()


def cached_export(spec: str | Path, dtype: str = "bfloat16", root: Path | None = None) -> Path:
    """The export of GGUF model ``spec`` at ``dtype`` in ``<root>/models/<file stem>-<dtype>`` (root:
    :func:`cache_root`), made on first use and kept (the MLX engine and the vLLM tests use it)."""
    where = locate_model(spec)
    if where.gguf is None:
        raise ExportError(f"{where.folder} is already a Hugging Face folder (config.json): serve it as it is")
    return export_hf(spec, (root or cache_root()) / "models" / f"{Path(where.gguf).stem}-{dtype}", dtype)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _provenance(source: Path, dtype: str) -> dict:
    import transformers

    return {"source": source.name, "source_bytes": source.stat().st_size, "source_sha256": _sha256(source),
            "dtype": dtype, "transformers": transformers.__version__, "how": "ipw.engines.export.export_hf"}  # fmt: skip


def exported(out: Path, source: Path, dtype: str) -> bool:
    """True when ``out`` holds an export of ``source`` at ``dtype`` (its provenance file says so)."""
    try:
        found = json.loads((Path(out) / PROVENANCE).read_text())
    except (OSError, ValueError):
        return False
    want = {"source_bytes": source.stat().st_size, "dtype": dtype}
    return all(found.get(k) == v for k, v in want.items()) and found.get("source_sha256") == _sha256(source)


def export_hf(spec: str | Path, out: str | Path, dtype: str = "bfloat16", overwrite: bool = False) -> Path:
    """Write the GGUF model ``spec`` ('default', 'gemma3-270m' or a .gguf path) as a Hugging Face folder
    at ``out`` (weights in ``dtype``, tokenizer, chat template); returns ``out``. An existing export of
    the same file and dtype is kept; any other non-empty ``out`` is refused unless ``overwrite``."""
    if dtype not in DTYPES:
        raise ExportError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    where = locate_model(spec)
    if where.gguf is None:
        raise ExportError(f"{where.folder} is already a Hugging Face folder (config.json): serve it as it is")
    source = where.folder / where.gguf
    out = Path(out).expanduser()
    if exported(out, source, dtype):
        return out
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ExportError(f"{out} exists and is not an export of {source.name} at {dtype}: "
                              "name an empty or new folder, or pass --overwrite")  # fmt: skip
        shutil.rmtree(out)
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    options = {"local_files_only": True, "gguf_file": where.gguf}
    dense = {}
    if hasattr(transformers, "GgufConfig"):  # transformers 5 keeps GGUF blocks unless told to dequantise
        dense["quantization_config"] = transformers.GgufConfig(dequantize=True)
    tokenizer = AutoTokenizer.from_pretrained(str(where.folder), **options)
    model = AutoModelForCausalLM.from_pretrained(str(where.folder), dtype=getattr(torch, dtype), **options, **dense)
    if getattr(model.config, "quantization_config", None) is not None:  # a dense model now: no GGUF config to carry
        del model.config.quantization_config
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    (tmp / PROVENANCE).write_text(json.dumps(_provenance(source, dtype), indent=1) + "\n")
    if out.exists():
        out.rmdir()
    tmp.rename(out)  # whole or not at all: a killed export leaves only the .partial folder
    return out
