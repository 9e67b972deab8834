"""The board's core and rendering run without Textual: their tests pass with Textual unimportable.

The board's hard parts (what it reads, what a party's times are, quotes, the overlay of replies,
staff actions, the cells and header text) are plain Python; the Textual app only wires them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BLOCKER = """
import sys

class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "textual" or name.startswith("textual."):
            raise ImportError(name + " is blocked: the board core must not need Textual")
        return None

sys.meta_path.insert(0, _Block())
import pytest
sys.exit(pytest.main(["-q", "-n", "0", "-p", "no:textual-snapshot", "-p", "no:cacheprovider", *sys.argv[1:]]))
"""


def test_core_and_render_tests_pass_with_textual_blocked():
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCKER,
            "tests/test_board_data.py",
            "tests/test_quotes.py",
            "-k",
            "not textual",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert " passed" in r.stdout


def test_core_and_render_modules_import_without_textual():
    code = BLOCKER.split("import pytest")[0] + (
        "import pkgutil, importlib, tui.core, tui.render\n"
        "for pkg in (tui.core, tui.render):\n"
        "    for m in pkgutil.iter_modules(pkg.__path__):\n"
        "        importlib.import_module(pkg.__name__ + '.' + m.name)\n"
        "print('ok')\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
