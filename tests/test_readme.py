"""The README's test command is exactly what CI runs."""

from __future__ import annotations

import re

from tests.conftest import REPO


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    assert len(blocks) >= 2, "the README shows two commands"
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert blocks[1].strip() == ci.strip()
