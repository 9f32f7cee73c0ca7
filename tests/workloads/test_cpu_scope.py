"""The CPU estimate's scope, chosen by what a run measures (ipw.run.cpu_scope): this process tree for
an engine in this process, the server's processes with --server-pid, the whole machine otherwise.

Runs go through the real discovery: where this machine has a measured CPU counter (RAPL), the
estimate is not used, and the checks of the estimate's own configuration are skipped with that
reason; the choice itself is recorded either way.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from ipw.cli import main
from ipw.core.clock import now
from ipw.devices.estimate import SOURCE_PROCESS_TREE, SOURCE_SERVER, CpuEstimateMeter, ProcessTreeTime
from ipw.engines import Engine, Generation, GenerationSettings
from ipw.engines.openai import OpenAIEngine
from ipw.run import cpu_scope as S, runner
from ipw.store import load
from tests.workloads.openai_stub import StubServer


class InProcess(Engine):
    name = "scripted"

    def generate(self, prompt: str, settings: GenerationSettings) -> Generation:
        t0 = now()
        return Generation("4", 5, 1, t0, now(), now(), now(), "stop")

    def describe(self) -> dict:
        return {"engine": self.name, "model": "scripted"}


class Server(InProcess):
    in_process = False


@pytest.fixture
def stranger():
    """A process that is not ipw's child (started through a shell that exits at once): it burns
    0.3 s of CPU time, then sleeps; its pid."""
    busy = "import time\nwhile time.process_time() < 0.3: pass\ntime.sleep(30)"
    out = subprocess.run(["sh", "-c", f"{sys.executable} -c '{busy}' >/dev/null 2>&1 & echo $!"], capture_output=True,
                         text=True, check=True)  # fmt: skip
    pid = int(out.stdout.strip())
    yield pid
    subprocess.run(["kill", str(pid)], check=False)


def test_the_choice_follows_the_engine_the_options_and_the_environment(stranger):
    assert S.choose(None, None, InProcess(), environ={}).scope == "process-tree"
    assert S.choose(None, None, Server(), environ={}).scope == "machine"
    assert S.choose(None, None, OpenAIEngine("http://127.0.0.1:9/v1", "m", api_key_env="X"), environ={}).scope == "machine"
    server = S.choose(None, stranger, Server(), environ={})
    assert (server.scope, server.server_pid) == ("server", stranger) and f"--server-pid {stranger}" in server.reason
    assert S.choose("machine", stranger, Server(), environ={}) == S.CpuScope("machine", "chosen with --cpu-scope")
    assert S.choose(None, None, InProcess(), environ={S.ENV: "machine"}).scope == "machine"
    gone = S.choose(None, 2**22 + 12345, Server(), environ={})  # above the default pid_max: no such process
    assert gone.scope == "machine" and "gone" in gone.reason
    with pytest.raises(S.ServerPidError, match="--server-pid"):
        S.check_server_pid(2**22 + 12345)


def test_the_server_scope_counts_the_servers_cpu_time_and_the_process_tree_does_not(stranger):
    tree, server = ProcessTreeTime(), ProcessTreeTime((stranger,))
    deadline = time.monotonic() + 60
    while server() - tree() < 0.25 and time.monotonic() < deadline:  # its 0.3 s of CPU time, however loaded the machine
        time.sleep(0.05)
    assert server() - tree() >= 0.25
    meter = CpuEstimateMeter(cpu_scope="server", server_pid=stranger)
    assert meter.infos["cpu"].source == SOURCE_SERVER and f"pid {stranger}" in meter.describe()["note"]
    assert meter.describe()["server_pid"] == stranger
    with pytest.raises(ValueError, match="server_pid"):
        CpuEstimateMeter(cpu_scope="server")


def _queries(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"id": "a", "prompt": "ECHO: 4", "answer": "4", "grader": "numeric", "domain": "d"}) + "\n")
    return path


def _estimate(manifest: dict):
    return next((m for m in manifest["meters"] if m["family"] == "estimate"), None)


def test_an_in_process_engine_charges_its_process_tree_through_discovery(tmp_path, monkeypatch):
    monkeypatch.delenv(S.ENV, raising=False)
    config = runner.RunConfig(engine="scripted", queries=str(_queries(tmp_path)), warmup=0, idle_s=0.0,
                              runs_dir=str(tmp_path / "runs"), run_id="r")  # fmt: skip
    run = load(runner.profile(config, engine=InProcess()).path)
    entry = run.manifest["cpu_scope"]
    assert entry["scope"] == "process-tree" and "runs in this process" in entry["reason"]
    assert run.manifest["sessions"][-1]["cpu_scope"] == entry
    estimate = _estimate(run.manifest)
    assert entry["estimate_used"] == (estimate is not None)
    if estimate is None:
        pytest.skip("this machine has a measured CPU counter: the estimate, and so its scope, is not used")
    assert estimate["cpu_scope"] == "process-tree" and estimate["domains"][0]["source"] == SOURCE_PROCESS_TREE
    assert S.line(entry).startswith("CPU estimate over this process tree")


def test_cli_prints_records_and_reports_the_choice_for_a_server(tmp_path, monkeypatch, stranger):
    monkeypatch.delenv(S.ENV, raising=False)
    server = StubServer().start()
    try:
        base = ["profile", "--engine", "openai", "--base-url", f"{server.url}/ok/v1", "--model", "stub", "--queries",
                str(_queries(tmp_path)), "--idle", "0", "--warmup", "0", "--quiet", "--runs-dir", str(tmp_path / "runs")]  # fmt: skip
        plain = CliRunner().invoke(main, base + ["--run-id", "plain"])
        told = CliRunner().invoke(main, base + ["--run-id", "told", "--server-pid", str(stranger)])
    finally:
        server.stop()
    assert plain.exit_code == 0 and told.exit_code == 0, plain.output + told.output
    manifests = {n: json.loads((tmp_path / "runs" / n / "manifest.json").read_text()) for n in ("plain", "told")}
    assert manifests["plain"]["cpu_scope"]["scope"] == "machine" and "--server-pid" in manifests["plain"]["cpu_scope"]["reason"]
    assert manifests["told"]["cpu_scope"] == {"scope": "server", "server_pid": stranger, "estimate_used": manifests["told"]["cpu_scope"]["estimate_used"],
                                              "reason": f"told with --server-pid {stranger}: a server outside ipw's process tree"}  # fmt: skip
    assert manifests["told"]["config"]["server_pid"] == stranger
    bad = CliRunner().invoke(main, ["profile", "--engine", "transformers", "--server-pid", str(stranger)])
    assert bad.exit_code == 2 and "--server-pid goes with --engine openai" in bad.output
    gone = CliRunner().invoke(main, base + ["--server-pid", str(2**22 + 12345)])
    assert gone.exit_code == 2 and "no such process" in gone.output
    estimate = _estimate(manifests["told"])
    if estimate is None:
        pytest.skip("this machine has a measured CPU counter: the estimate, and so its scope, is not used")
    assert estimate["cpu_scope"] == "server" and estimate["server_pid"] == stranger
    assert f"CPU estimate over the server's processes (pid {stranger}) and ipw's" in told.output
    assert "CPU estimate over the whole machine" in plain.output
    html = tmp_path / "r.html"
    assert CliRunner().invoke(main, ["report", str(tmp_path / "runs" / "told"), "-o", str(html)]).exit_code == 0
    assert f"CPU estimate over the server&#39;s processes (pid {stranger})" in html.read_text()
