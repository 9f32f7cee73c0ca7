"""Rebuild the two shipped corpora that are cut from Debian's Python 3.11 standard library.

Run with Debian's interpreter so the paths below are the packaged files::

    /usr/bin/python3.11 ipw/data/corpora/build_from_debian.py

Source package: ``libpython3.11-stdlib`` 3.11.2-6+deb12u6 (Debian 12), licence PSF-2.0
(``/usr/share/doc/libpython3.11-stdlib/copyright``). The selection is deterministic: the same
package version gives byte-identical JSONL files.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

STDLIB = Path("/usr/lib/python3.11")
HERE = Path(__file__).resolve().parent
SAMPLES = 24
SHORT_CHARS = 2400  # most samples: about 500-700 tokens
LONG_CHARS = 7000  # samples 0 and 12: longer than 1024 tokens, so truncation is exercised


def _limit(index: int) -> int:
    return LONG_CHARS if index % 12 == 0 else SHORT_CHARS


def _cut_at_paragraph(text: str, limit: int) -> str:
    """The longest run of whole paragraphs (blank-line separated) within ``limit`` characters."""
    kept: list[str] = []
    for para in text.strip().split("\n\n"):
        if kept and len("\n\n".join([*kept, para])) > limit:
            break
        kept.append(para)
    return "\n\n".join(kept)[:limit].rstrip()


def _every_nth(items: list, count: int) -> list:
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def english_docs() -> list[dict]:
    """Python Language Reference prose as shipped for ``help()`` in pydoc_data/topics.py."""
    tree = ast.parse((STDLIB / "pydoc_data" / "topics.py").read_text(encoding="utf-8"))
    topics = ast.literal_eval(tree.body[-1].value)
    names = sorted(name for name, text in topics.items() if len(text) >= 1500)
    picked = _every_nth(names, SAMPLES)
    return [
        {"text": _cut_at_paragraph(topics[name], _limit(i)), "source": f"pydoc_data/topics.py[{name!r}]"}
        for i, name in enumerate(picked)
    ]


def _definitions(path: Path) -> list[tuple[str, str]]:
    """(name, source) of each top-level def/class, from the first one of at least 800 characters."""
    source = path.read_text(encoding="utf-8")
    nodes = [n for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    found = [(n.name, ast.get_source_segment(source, n) or "") for n in nodes]
    start = next((i for i, (_, text) in enumerate(found) if len(text) >= 800), None)
    return [] if start is None else found[start:]


def _code_sample(path: Path, limit: int) -> dict:
    """Consecutive top-level definitions, cut at a line end within ``limit`` characters."""
    defs = _definitions(path)
    text = "\n\n\n".join(t for _, t in defs)
    if len(text) > limit:
        text = text[:limit].rsplit("\n", 1)[0]
    return {"text": text.rstrip(), "source": f"{path.name}:{defs[0][0]}"}


def python_code() -> list[dict]:
    """Top-level code from 24 stdlib modules, starting at each one's first def/class of 800+ chars."""
    modules = sorted(p for p in STDLIB.glob("*.py") if not p.name.startswith("_"))
    picked = _every_nth([p for p in modules if _definitions(p)], SAMPLES)
    return [_code_sample(path, _limit(i)) for i, path in enumerate(picked)]


def write(name: str, samples: list[dict]) -> None:
    out = HERE / name / "samples.jsonl"
    out.parent.mkdir(exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for sample in samples:
            f.write(json.dumps(sample, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    write("english-docs", english_docs())
    write("python-code", python_code())
