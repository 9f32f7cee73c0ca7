"""Reading JSONL input files with errors that name the file and the line.

Lines are split at ``\\n`` only (``\\r\\n`` endings are accepted), never at the other characters
:meth:`str.splitlines` treats as line breaks: a JSON string may hold a raw U+2028, U+0085 or form
feed, and JSONL (like JSON) allows it. A UTF-8 byte-order mark at the start of the file (as Excel
and Notepad write it) is skipped. Every failure is an :class:`~ipw.core.errors.InputFileError` naming the
file and the line: bytes that are not UTF-8, a line that is not JSON, JSON nested deeper than the
parser can follow, a line that is not a JSON object.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from ipw.core.errors import InputFileError

BOM = b"\xef\xbb\xbf"


def decode_line(raw: bytes, path: object, number: int) -> str:
    """One line's bytes as text, without its line ending (and, on line 1, without a BOM)."""
    if number == 1 and raw.startswith(BOM):
        raw = raw[len(BOM) :]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputFileError(path, number, f"not UTF-8 text (byte {e.start + 1} of the line: {e.reason}); "
                                           "save the file as UTF-8") from None  # fmt: skip
    return text[:-1] if text.endswith("\n") else text


def split_lines(data: bytes, path: object) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of each line of ``data``, read from ``path`` (for messages)."""
    return _lines(data.split(b"\n") if data else [], path)


def iter_lines(path: Path | str) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of each line of a UTF-8 file, streamed (see the module docstring)."""
    path = Path(path)
    try:
        f = path.open("rb")
    except FileNotFoundError:
        raise InputFileError(path, None, "no such file") from None
    except OSError as e:
        raise InputFileError(path, None, f"cannot read it: {e.strerror or e}") from None
    with f:
        yield from _lines(f, path)


def _lines(raws: Iterable[bytes], path: object) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(raws, start=1):
        yield number, decode_line(raw, path, number).removesuffix("\r")


def loads(text: str, path: object, number: int | None):
    """``json.loads`` of one line; any failure is an :class:`InputFileError` naming file and line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputFileError(path, number, f"not valid JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise InputFileError(path, number, "JSON nested too deeply to read") from None
    except ValueError as e:  # e.g. an integer with more digits than Python converts
        raise InputFileError(path, number, f"not valid JSON ({e})") from None


def read_objects(path: Path | str) -> Iterator[tuple[int, dict]]:
    """(1-based line number, object) for each non-blank line of a JSONL file.

    A missing file, bytes that are not UTF-8, a line that is not valid JSON, or a line that is not
    a JSON object raises :class:`InputFileError` naming the file and the line.
    """
    path = Path(path)
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        obj = loads(line, path, number)
        if not isinstance(obj, dict):
            raise InputFileError(path, number, f"expected a JSON object, got {type(obj).__name__}")
        yield number, obj


def read_json(path: Path | str, error: type[InputFileError] = InputFileError):
    """The one JSON document in ``path`` (a BOM allowed). A file that cannot be read, bytes that are
    not UTF-8, text that is not JSON or is nested too deeply raise ``error`` (an
    :class:`InputFileError`) naming the file, and the line where JSON says where."""
    path = Path(path)
    try:
        return json.loads(path.read_bytes().decode("utf-8-sig"))
    except OSError as e:
        raise error(path, None, f"cannot read it ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise error(path, None, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise error(path, e.lineno, f"not valid JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise error(path, None, "JSON nested too deeply") from None
    except ValueError as e:  # e.g. an integer with more digits than Python converts
        raise error(path, None, f"not valid JSON ({e})") from None
