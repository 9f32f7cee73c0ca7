"""The suites that discover this machine's meters, run again as if on the machines ipw is for: an
H200-like GPU behind pynvml and a two-socket RAPL tree (tests/fakes/machine.py, installed for the
whole session by IPW_TEST_MACHINE=fake-gpu-rapl). A test that silently assumed no GPU or no RAPL
fails here; a test that needs a machine without counters says so (the ``estimate_only`` fixture)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import MACHINE, REPO

SUITES = ["tests/profilers", "tests/workloads/test_runner_fake.py", "tests/workloads/test_faults.py",
          "tests/test_records.py", "tests/test_efficiency.py"]  # fmt: skip


@pytest.mark.skipif(bool(MACHINE), reason="already running on the fake machine")
def test_the_meter_suites_pass_on_a_gpu_server_with_rapl():
    env = dict(os.environ, IPW_TEST_MACHINE="fake-gpu-rapl")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-m", "not slow", "-p", "no:cacheprovider", *SUITES],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1]
