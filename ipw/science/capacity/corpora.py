"""Text corpora for Information Capacity: the shipped ones and user JSONL files.

A corpus is a JSONL file with one ``{"text": "..."}`` object per line, the format of the official
code (TeleAI-AI-Flow/InformationCapacity, ``text_size.py`` and ``likelihood.py``). The shipped
corpora live in ``ipw/data/corpora/<name>/samples.jsonl`` with their provenance and licence in
``SOURCES.md`` beside them.

Numerator bias b (bits/token): the official ``calc_ic.py`` chooses it from the data file's name:
-24 for ``mixed_text.jsonl``, -18.7 for ``Ch-FineWeb-Edu.jsonl`` and -27 for any other file.
The shipped corpora are "any other file", so they default to -27; the CLI's ``--bias`` and
:class:`~ipw.science.capacity.api.CapacityConfig` ``bias_bits`` override it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ipw.science.capacity.errors import EmptySampleError, UnknownCorpusError
from ipw.core.errors import InputFileError
from ipw.core.jsonl import read_objects

CORPORA_DIR = Path(__file__).resolve().parents[2] / "data" / "corpora"
SAMPLES_FILE = "samples.jsonl"
# Official calc_ic.py defaults, in bits/token, keyed by data file name.
OFFICIAL_BIAS_BITS_BY_FILE = {"mixed_text.jsonl": -24.0, "Ch-FineWeb-Edu.jsonl": -18.7}
OFFICIAL_OTHER_BIAS_BITS = -27.0
IN_MEMORY = "<texts>"


@dataclass(frozen=True)
class Corpus:
    """Validated text samples and the bias (bits/token) that applies when none is given."""

    name: str
    texts: tuple[str, ...]
    default_bias_bits: float
    path: Path | None = None
    lines: tuple[int, ...] = ()  # 1-based file line of each text (empty: position in the list)

    def where(self, index: int) -> tuple[str, int]:
        """(file, line) of text ``index`` (0-based), for error messages."""
        if self.path is None or not self.lines:
            return IN_MEMORY, index + 1
        return str(self.path), self.lines[index]


def shipped_corpora() -> list[str]:
    """Names of the corpora that ship with ipw, sorted."""
    return sorted(p.parent.name for p in CORPORA_DIR.glob(f"*/{SAMPLES_FILE}"))


def default_bias_bits(path: Path | str) -> float:
    """The official code's bias for a data file, chosen by its file name (bits/token)."""
    return OFFICIAL_BIAS_BITS_BY_FILE.get(Path(path).name, OFFICIAL_OTHER_BIAS_BITS)


def check_text(text: object, where: str, line: int) -> str:
    """``text`` itself if it is a non-blank string; otherwise :class:`EmptySampleError`."""
    if not isinstance(text, str):
        raise InputFileError(where, line, f"'text' must be a string, not {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InputFileError(where, line, f"'text' is not valid Unicode (an unpaired surrogate at character "
                                          f"{e.start}); it cannot be encoded as UTF-8") from None
    if not text.strip():
        raise EmptySampleError(where, line, "the sample is empty or whitespace only; "
                                            "remove it (an empty text has no tokens to score)")
    return text


def corpus_from_texts(texts, name: str = IN_MEMORY, bias_bits: float = OFFICIAL_OTHER_BIAS_BITS) -> Corpus:
    """A corpus of in-memory strings (each checked like a file's line)."""
    checked = tuple(check_text(t, IN_MEMORY, i) for i, t in enumerate(texts, start=1))
    if not checked:
        raise InputFileError(IN_MEMORY, None, "no samples")
    return Corpus(name=name, texts=checked, default_bias_bits=bias_bits)


def read_jsonl(path: Path) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(texts, line numbers): the ``text`` field of each non-blank line, checked."""
    texts, lines = [], []
    for number, record in read_objects(path):
        if "text" not in record:
            raise InputFileError(path, number, 'expected an object with a "text" field')
        texts.append(check_text(record["text"], str(path), number))
        lines.append(number)
    if not texts:
        raise InputFileError(path, None, "the file has no samples")
    return tuple(texts), tuple(lines)


def load_corpus(spec: str | Path) -> Corpus:
    """A shipped corpus by name (see :func:`shipped_corpora`) or a JSONL file by path."""
    shipped = shipped_corpora()
    if str(spec) in shipped:
        path = CORPORA_DIR / str(spec) / SAMPLES_FILE
        return Corpus(str(spec), *_texts_and(path, OFFICIAL_OTHER_BIAS_BITS))
    path = Path(spec).expanduser()
    if not path.is_file():
        raise UnknownCorpusError(str(spec), shipped)
    return Corpus(path.stem, *_texts_and(path, default_bias_bits(path)))


def _texts_and(path: Path, bias_bits: float) -> tuple:
    texts, lines = read_jsonl(path)
    return texts, bias_bits, path, lines
