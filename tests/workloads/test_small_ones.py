"""The first hour's small ones: IPW in the progress bar, --quiet for other libraries' bars, example
outputs ignored by git, whole summaries in --help, a query file without a grader, and the documented
local llama.cpp server."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from ipw.cli import main
from ipw.cli.progress import QUIET_ENV, ProgressBar
from ipw.core.errors import IpwError
from ipw.queries.querysets import load_queryset, parse_query
from ipw.run import runner
from ipw.store import load
from tests.conftest import REPO
from tests.workloads.test_runner_fake import QUERIES, ScriptedEngine


# -- IPW in the progress bar ----------------------------------------------------------------------

class Capturing(ProgressBar):
    def __init__(self) -> None:
        super().__init__(enabled=False)
        self.shown: list[str] = []

    def record(self, r) -> None:
        super().record(r)
        self.shown.append(self.bar.postfix)


def test_the_progress_bar_shows_the_running_ipw_of_the_summary(tmp_path):
    queryset = tmp_path / "q.jsonl"
    queryset.write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    config = runner.RunConfig(engine="scripted", queries=str(queryset), warmup=0, idle_s=0.0,
                              runs_dir=str(tmp_path / "runs"), run_id="r")  # fmt: skip
    bar = Capturing()
    store = runner.profile(config, engine=ScriptedEngine(), observer=bar)
    assert len(bar.shown) == len(QUERIES) and all("IPW " in s and "acc " in s and "J/q" in s for s in bar.shown)
    shown = float(re.search(r"IPW ([0-9.e+-]+) /W", bar.shown[-1]).group(1))
    assert shown == pytest.approx(load(store.path).summary["overall"]["ipw_per_w"], rel=1e-3)
    serving = ProgressBar(enabled=False, serving=True)
    assert "IPW (attributed)" in serving.postfix("accelerator")


# -- --quiet silences other libraries' bars -------------------------------------------------------

def test_quiet_silences_tqdm_and_transformers_bars_in_a_fresh_process():
    """What an engine load shows: a tqdm.auto bar (the GGUF conversion) and transformers' logging
    bar ("Loading weights"), after ipw's --quiet has run; and without it, for contrast."""
    script = (
        "import sys\n"
        "from ipw.cli.progress import quiet_libraries\n"
        "if sys.argv[1] == 'quiet': quiet_libraries()\n"
        "from tqdm.auto import tqdm\n"
        "for _ in tqdm(range(3), desc='Converting and de-quantizing GGUF tensors...'): pass\n"
        "from transformers.utils import logging\n"
        "for _ in logging.tqdm(range(3), desc='Loading weights'): pass\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k not in QUIET_ENV}
    quiet = subprocess.run([sys.executable, "-c", script, "quiet"], capture_output=True, text=True, env=env, cwd=REPO)
    loud = subprocess.run([sys.executable, "-c", script, "loud"], capture_output=True, text=True, env=env, cwd=REPO)
    assert quiet.returncode == 0 and loud.returncode == 0, quiet.stderr + loud.stderr
    assert "Loading weights" in loud.stderr and "de-quantizing" in loud.stderr
    assert quiet.stderr == "" and quiet.stdout == ""


@pytest.mark.slow
def test_quiet_profile_with_transformers_prints_no_loading_bars(tmp_path):
    queryset = tmp_path / "q.jsonl"
    queryset.write_text(json.dumps(QUERIES[0]) + "\n")
    run = subprocess.run([sys.executable, "-m", "ipw", "profile", "--engine", "transformers", "--queries", str(queryset),
                          "--max-tokens", "2", "--warmup", "0", "--idle", "0", "--quiet", "--runs-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=600, cwd=REPO)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "Loading weights" not in run.stderr and "%|" not in run.stderr and "it/s" not in run.stderr


# -- example outputs are ignored by git -----------------------------------------------------------

def test_the_readme_and_docs_example_outputs_are_ignored_by_git():
    if shutil.which("git") is None or subprocess.run(["git", "-C", str(REPO), "rev-parse"], capture_output=True).returncode:
        pytest.skip("not a git work tree")
    texts = [(REPO / "README.md").read_text()] + [p.read_text() for p in (REPO / "docs").glob("*.md")]
    outputs = set()
    for text in texts:
        for block in re.findall(r"```(?:bash|console)\n(.*?)```", text, re.S):
            outputs |= {m for m in re.findall(r"(?:^|\s)(?:-o|--out)\s+([\w./-]+)", block)}
    outputs |= set(re.findall(r"-o ([\w.-]+\.html)", (REPO / "README.md").read_text()))
    assert "report.html" in outputs and "sweep/" in outputs
    for out in sorted(outputs):
        path = out.rstrip("/") + ("/x" if out.endswith("/") else "")
        ignored = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", path]).returncode == 0
        assert ignored, f"{out} (an example's output) is not in .gitignore"


# -- whole summaries in --help --------------------------------------------------------------------

def _commands(group: click.Group, ctx: click.Context, prefix: str = ""):
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        yield f"{prefix}{name}", cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, click.Context(cmd, parent=ctx), f"{prefix}{name} ")


def test_every_command_has_a_whole_summary_in_help():
    ctx = click.Context(main)
    commands = dict(_commands(main, ctx))
    assert {"profile", "capacity", "cmr", "cmr fit", "density trend", "store check"} <= set(commands)
    for name, cmd in commands.items():
        assert cmd.short_help, f"ipw {name} has no explicit short_help (click cuts the docstring at its first period)"
        assert not cmd.short_help.endswith(("et al.", "(Eq.", "(Sec.", "...")), name
    for args in ([], ["cmr"], ["density"], ["store"]):
        out = CliRunner().invoke(main, [*args, "--help"], terminal_width=200).output
        rows = out.split("Commands:")[1].strip().splitlines()
        assert rows and not any(r.rstrip().endswith(("...", "et al.", "(Eq.", "(Sec.")) for r in rows), out
    assert "Information Capacity (Yuan et al. 2025)" in CliRunner().invoke(main, ["--help"], terminal_width=200).output


# -- a query file without a grader ---------------------------------------------------------------

def test_a_query_without_grader_lists_the_graders_and_shows_a_valid_line(tmp_path):
    from ipw.queries.grading import GRADERS

    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"id": "a", "prompt": "2 + 2?", "answer": "4", "domain": "arithmetic"}) + "\n")
    with pytest.raises(IpwError) as e:
        load_queryset(str(path))
    message = str(e.value)
    assert message.startswith(f"{path}:1: missing field(s) grader") and "\n" not in message
    assert all(name in message for name in GRADERS)
    example = message.split("a valid line: ", 1)[1]
    assert parse_query(example).grader in GRADERS  # the line shown is itself valid
    other = tmp_path / "r.jsonl"
    other.write_text(json.dumps({"id": "a", "prompt": "2 + 2?", "grader": "numeric", "domain": "d"}) + "\n")
    with pytest.raises(IpwError, match=r"missing field\(s\) answer; a valid line: "):
        load_queryset(str(other))


# -- a documented local llama.cpp server ----------------------------------------------------------

def _documented_server_command() -> list[str]:
    text = (REPO / "docs" / "engines.md").read_text()
    line = next(x for x in text.splitlines() if x.startswith("python -m llama_cpp.server"))
    return shlex.split(line.rstrip("&").strip())


def test_the_documented_llama_server_command_runs_the_shipped_model():
    command = _documented_server_command()
    inner = re.search(r"\$\(python -c '(.*?)'\)", command[command.index("--model") + 1]).group(1)
    path = subprocess.run([sys.executable, "-c", inner], capture_output=True, text=True, check=True, cwd=REPO).stdout.strip()
    from ipw.engines.models import default_model_path

    assert path == str(default_model_path()) and default_model_path().is_file()
    pytest.importorskip("llama_cpp.server", reason="the llamacpp extra (llama-cpp-python's server) is not installed")
    help_text = subprocess.run([sys.executable, "-m", "llama_cpp.server", "--help"], capture_output=True, text=True,
                               timeout=120).stdout  # fmt: skip
    for flag in (a for a in command if a.startswith("--")):
        assert flag in help_text, f"llama_cpp.server has no option {flag}"
