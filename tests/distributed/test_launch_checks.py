"""``ipw launch`` fails fast and writes nothing when it cannot go on: no Ray cluster at --address
(a one-line error naming the address and what to start, within --connect-timeout), option values
``ipw profile`` refuses, and a base URL carrying a key. No Ray instance is started here."""

from __future__ import annotations

import math
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ipw.cli import main
from ipw.core.errors import IpwError
from ipw.run.config import RunConfig

REPO = str(Path(__file__).resolve().parents[2])


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was bound, then let go)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_an_address_with_no_cluster_is_one_line_naming_it_and_leaves_no_folder(tmp_path):
    pytest.importorskip("ray")
    address = f"127.0.0.1:{_closed_port()}"
    result = CliRunner().invoke(main, ["launch", "--address", address, "--shards", "1", "--connect-timeout", "5",
                                       "--launch-dir", str(tmp_path / "launches"), "--quiet"])  # fmt: skip
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and address in lines[0] and "ray start --head" in lines[0], result.output
    assert not (tmp_path / "launches").exists()


def test_a_port_that_accepts_but_never_answers_ends_at_the_connect_timeout(tmp_path):
    """Ray's own client would wait on; the launch stops at --connect-timeout (in a child process:
    the Ray thread left waiting must not stay in the test process)."""
    pytest.importorskip("ray")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    address = f"127.0.0.1:{silent.getsockname()[1]}"
    try:
        done = subprocess.run([sys.executable, "-m", "ipw", "launch", "--address", address, "--shards", "1",
                               "--connect-timeout", "2", "--launch-dir", str(tmp_path / "launches"), "--quiet"],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path,
                              env={**__import__("os").environ, "PYTHONPATH": REPO})  # fmt: skip
    finally:
        silent.close()
    assert done.returncode == 1, done.stderr
    error = [x for x in done.stderr.splitlines() if x.startswith("Error:")]
    assert len(error) == 1 and address in error[0] and "ray start --head" in error[0], done.stderr
    assert not (tmp_path / "launches").exists()


@pytest.mark.parametrize(
    "args, says",
    [(["--idle", "nan"], "--idle"), (["--hz", "inf"], "--hz"), (["--idle", "-1"], "--idle"),
     (["--max-tokens", "0"], "--max-tokens"), (["--connect-timeout", "0"], "--connect-timeout"),
     (["--gpus-per-shard", "nan"], "--gpus-per-shard"), (["--cpus-per-shard", "inf"], "--cpus-per-shard"),
     (["--engine", "openai", "--base-url", "http://127.0.0.1:9/v1", "--timeout", "0"], "--timeout"),
     (["--engine", "openai", "--base-url", "http://127.0.0.1:9/v1", "--deadline", "nan"], "--deadline")],
)  # fmt: skip
def test_launch_refuses_what_profile_refuses_before_anything_is_written(tmp_path, args, says):
    result = CliRunner().invoke(main, ["launch", "--shards", "1", "--launch-dir", str(tmp_path / "l"), *args])
    assert result.exit_code == 2 and "Invalid value" in result.output and says in result.output, result.output
    profile_args = [a for a in args if a not in ("--connect-timeout", "--gpus-per-shard", "--cpus-per-shard")]
    if len(profile_args) == len(args):  # the same value is refused by profile with the same words
        again = CliRunner().invoke(main, ["profile", "--runs-dir", str(tmp_path / "r"), *args])
        assert again.exit_code == 2 and result.output.splitlines()[-1] == again.output.splitlines()[-1]
    assert not (tmp_path / "l").exists()


def test_a_key_bearing_base_url_is_refused_before_anything_is_written(tmp_path):
    result = CliRunner().invoke(main, ["launch", "--engine", "openai", "--base-url", "http://h:8000/v1?key=sk-secret123",
                                       "--shards", "1", "--launch-dir", str(tmp_path / "l")])  # fmt: skip
    assert result.exit_code == 2 and "query string" in result.output and "sk-secret123" not in result.output
    assert not (tmp_path / "l").exists()


def test_the_library_refuses_them_too():
    from ipw.run import launch as L

    with pytest.raises(IpwError, match="idle_s"):
        RunConfig(idle_s=math.nan)
    with pytest.raises(IpwError, match="sampler_hz"):
        RunConfig(sampler_hz=math.inf)
    cell = L.Cell("openai-m", RunConfig(engine="openai", engine_options={"base_url": "http://u:sk-x@h/v1", "model": "m"}))
    with pytest.raises(IpwError, match="credentials"):
        L.LaunchSpec(cells=(cell,), shards=1)
    with pytest.raises(IpwError, match="connect_timeout_s"):
        L.LaunchSpec(cells=(L.Cell("a", RunConfig()),), shards=1, connect_timeout_s=math.inf)


def _earlier_launch(tmp_path) -> Path:
    """A launch folder as `ipw launch --shards 2 --max-tokens 8 --limit 6` leaves it (its launch.json)."""
    import json

    from ipw.engines import GenerationSettings
    from ipw.run import launch as L

    base = RunConfig(queries="default", settings=GenerationSettings(max_tokens=8), limit=6, warmup=0, idle_s=0.0)
    root = tmp_path / "launches" / "earlier"
    root.mkdir(parents=True)
    record = {"shards": 2, "max_retries": 1, "collect": True, "resources": {"num_gpus": 0, "num_cpus": 1.0},
              "cells": [c.to_dict() for c in L.grid(base, ["default"], ["llamacpp"])], "outcomes": {}}
    (root / "launch.json").write_text(json.dumps(record))
    return root


def test_resume_refuses_options_that_differ_from_the_launch_and_names_them(tmp_path):
    root = _earlier_launch(tmp_path)
    result = CliRunner().invoke(main, ["launch", "--resume", str(root), "--shards", "3", "--max-tokens", "9",
                                       "--limit", "6", "--model", "other.gguf", "--address", "127.0.0.1:9"])  # fmt: skip
    assert result.exit_code == 2, result.output
    said = result.output.splitlines()[-1]
    refused = said.split("differ from them: ")[1].split(".")[0].split(", ")
    assert sorted(refused) == ["--max-tokens", "--model", "--shards"]  # --limit 6 is the launch's own: accepted
    assert "--address" in said.split("only")[1]  # what may change is named, and --address was not refused


def test_resume_takes_the_launchs_options_and_the_ones_that_may_change(tmp_path, monkeypatch):
    from ipw.run import launch as L

    root = _earlier_launch(tmp_path)
    seen = []

    def launched(spec, progress=True, resume=None, engine_factory=None):
        seen.append((spec, resume))
        return L.LaunchResult(path=Path(resume), cells=[], shards={}, failed={})

    monkeypatch.setattr(L, "launch", launched)  # what the command hands the launcher; no Ray here
    result = CliRunner().invoke(main, ["launch", "--resume", str(root), "--shards", "2", "--max-tokens", "8",
                                       "--address", "127.0.0.1:9", "--cpus-per-shard", "2", "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    ((spec, resume),) = seen
    assert Path(resume) == root and spec.shards == 2 and spec.address == "127.0.0.1:9" and spec.cpus_per_shard == 2.0
    assert spec.max_retries == 1 and spec.collect and spec.gpus_per_shard == 0  # the launch's own, not the defaults
    assert [c.config.settings.max_tokens for c in spec.cells] == [8] and spec.cells[0].config.limit == 6
