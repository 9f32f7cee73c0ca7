"""Shipped corpora, JSONL loading, and clear errors for bad input."""

from __future__ import annotations

import json

import pytest

from ipw.science.capacity import EmptySampleError, UnknownCorpusError, corpus_from_texts, load_corpus, shipped_corpora
from ipw.science.capacity.corpora import CORPORA_DIR, default_bias_bits
from ipw.core.errors import InputFileError, IpwError


def write_jsonl(path, *records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records),
                    encoding="utf-8")
    return path


def test_at_least_three_corpora_ship_with_provenance_and_licence():
    names = shipped_corpora()
    assert len(names) >= 3
    for name in names:
        sources = (CORPORA_DIR / name / "SOURCES.md").read_text(encoding="utf-8")
        assert "Licence" in sources and ("package" in sources or "written for the ipw" in sources)
        corpus = load_corpus(name)
        assert len(corpus.texts) >= 10 and all(t.strip() for t in corpus.texts)


def test_shipped_corpora_stay_small():
    total = sum(p.stat().st_size for p in CORPORA_DIR.rglob("samples.jsonl"))
    assert total < 1_000_000


def test_unknown_corpus_lists_shipped_and_suggests():
    with pytest.raises(UnknownCorpusError) as err:
        load_corpus("pyhton-code")
    message = str(err.value)
    assert "Did you mean 'python-code'?" in message
    assert all(name in message for name in shipped_corpora())
    assert isinstance(err.value, IpwError)


def test_jsonl_file_loads_with_official_bias_by_name(tmp_path):
    path = write_jsonl(tmp_path / "mixed_text.jsonl", {"text": "one"}, "", {"text": "two"})
    corpus = load_corpus(path)
    assert corpus.texts == ("one", "two") and corpus.lines == (1, 3)
    assert corpus.default_bias_bits == -24.0
    assert default_bias_bits("Ch-FineWeb-Edu.jsonl") == -18.7
    assert default_bias_bits("anything.jsonl") == load_corpus("math").default_bias_bits == -27.0


@pytest.mark.parametrize("blank", ["", "   ", "\n\t "])
def test_empty_or_whitespace_sample_in_file_names_line(tmp_path, blank):
    path = write_jsonl(tmp_path / "c.jsonl", {"text": "fine"}, {"text": blank})
    with pytest.raises(EmptySampleError, match=r"c\.jsonl:2: .*empty or whitespace only"):
        load_corpus(path)


def test_empty_sample_in_memory_names_position():
    with pytest.raises(EmptySampleError, match=r"<texts>:2:"):
        corpus_from_texts(["fine", " \n "])


def test_malformed_lines_name_file_and_line(tmp_path):
    with pytest.raises(InputFileError, match=r":2: not valid JSON"):
        load_corpus(write_jsonl(tmp_path / "a.jsonl", {"text": "x"}, "{oops"))
    with pytest.raises(InputFileError, match=r':1: expected an object with a "text" field'):
        load_corpus(write_jsonl(tmp_path / "b.jsonl", {"content": "x"}))
    with pytest.raises(InputFileError, match="no samples"):
        load_corpus(write_jsonl(tmp_path / "c.jsonl", ""))
