"""``ipw models export-hf`` (ipw/engines/export.py): the shipped GGUF as a Hugging Face folder for servers.

The export itself is the one the vLLM tests serve (tests/workloads/vllm_server.py caches it), so the
slow test reads that cached folder: its files, its provenance, and the same chat prompt rendered and
tokenised by the folder's tokenizer as by the GGUF's.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ipw.cli import main
from ipw.engines.export import PROVENANCE, ExportError, export_hf, exported
from ipw.engines.models import default_model_path


def test_a_folder_holding_something_else_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(main, ["models", "export-hf", "default", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path} exists and is not an export of SmolLM2-135M-Instruct.Q4_1.gguf at bfloat16" in result.output
    assert "--overwrite" in result.output and (tmp_path / "notes.txt").read_text() == "mine"


def test_a_folder_that_is_already_hugging_face_or_a_wrong_dtype_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ExportError, match="already a Hugging Face folder"):
        export_hf(tmp_path, tmp_path / "out")
    with pytest.raises(ExportError, match="dtype 'int8' is not one of"):
        export_hf("default", tmp_path / "out", dtype="int8")


@pytest.mark.slow
def test_the_export_serves_the_same_tokens_as_the_gguf():
    from transformers import AutoTokenizer

    from tests.workloads.vllm_server import ensure_model

    folder = ensure_model()  # ~/.cache/ipw/engines/models/SmolLM2-135M-Instruct.Q4_1-bfloat16
    source = default_model_path()
    assert exported(folder, source, "bfloat16") and not exported(folder, source, "float32")
    provenance = json.loads((folder / PROVENANCE).read_text())
    assert provenance["source"] == source.name and provenance["dtype"] == "bfloat16"
    config = json.loads((folder / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and "quantization_config" not in config
    assert export_hf("default", folder) == folder  # kept, not written again
    hf = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    gguf = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name, local_files_only=True)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    rendered = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == gguf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert "<|im_start|>assistant" in rendered and hf(rendered)["input_ids"] == gguf(rendered)["input_ids"]
