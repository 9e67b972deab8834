"""mypy is the project's type checker; the suite fails on a type error in the shipped packages.

What it checks and how strictly lives in ``[tool.mypy]`` of pyproject.toml (agent, tui, pager_edge,
cloud; strict). mypy keeps its incremental cache in ``.mypy_cache/`` (git-ignored): a clean checkout
pays for a full run once.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_clean():
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
