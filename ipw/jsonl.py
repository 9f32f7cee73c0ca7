"""Reading JSONL input files with errors that name the file and the line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ipw.errors import InputFileError


def read_objects(path: Path | str) -> Iterator[tuple[int, dict]]:
    """(1-based line number, object) for each non-blank line of a JSONL file.

    A missing file, a line that is not valid JSON, or a line that is not a JSON object raises
    :class:`InputFileError` naming the file and the line.
    """
    path = Path(path)
    try:
        f = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(path, None, "no such file") from None
    with f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputFileError(path, number, f"not valid JSON ({e.msg})") from e
            if not isinstance(obj, dict):
                raise InputFileError(path, number, f"expected a JSON object, got {type(obj).__name__}")
            yield number, obj
