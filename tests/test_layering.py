"""The package layering: dependencies point one way, and the command line is the only root.

``bench`` (the benchmarks, in a development checkout only) may import everything; ``pager_edge``
(command line, demo) everything but ``bench``, which it reaches only by running it; ``cloud`` may import
``agent``; ``tui`` may import ``agent``; ``agent`` imports none of them. click belongs to the
command line alone. A module string (``"tui.app:BoardApp"`` for a lazy import) counts as an
import. Starting a process by name (the web board runs ``python -m tui.web.tablet``) does not:
that is a program's interface, like a systemd unit's ``ExecStart``.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import to_toml

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN: dict[str, set[str]] = {
    "agent": {"tui", "cloud", "pager_edge", "bench", "click"},
    "tui": {"cloud", "pager_edge", "bench", "click"},
    "cloud": {"tui", "pager_edge", "bench", "click"},
    # The command line reaches the benchmarks only through `pager-edge bench`, which imports the
    # package by its bare name from a development checkout (pager_edge/commands/bench.py).
    "pager_edge": {"bench"},
}
# A dotted module path, optionally with ``:attribute``, naming one of the packages.
MODULE_STRING = re.compile(r"^(agent|tui|cloud|pager_edge|bench)(\.\w+)+(:\w+)?$|^(\w+):\w+$")

MAX_LINES = 600


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) for every import statement and every module-path string."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            m = MODULE_STRING.match(node.value)
            if m:
                found.append((node.lineno, node.value.split(":")[0]))
    return found


def violations(package: str) -> list[str]:
    bad = []
    for path in modules(package):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, module in imported(tree):
            if module.split(".")[0] in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {module}")
    return bad


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_against_the_layering(package):
    assert violations(package) == []


def test_the_check_sees_statements_lazy_imports_and_module_strings():
    """The checker itself: each form of import is caught (else the test above proves nothing)."""
    source = (
        "import tui.app\n"
        "def f():\n    from pager_edge.cli import main\n"
        'COMMANDS = {"board": "tui.run:run_board_async"}\n'
        'import_module("cloud.setup")\n'
        'ARGV = ["-m", "pager_edge", "board"]\n'  # a process by name: allowed
        'SECTION = "cloud"\n'  # a word, not a module path
    )
    found = sorted(m for _, m in imported(ast.parse(source)))
    assert found == ["cloud.setup", "pager_edge.cli", "tui.app", "tui.run"]


# --- no library's private state -----------------------------------------------------------------

CODE = ("agent", "tui", "pager_edge", "cloud")


def library_privates() -> set[str]:
    """The private names of textual-serve's app service and download manager (instance and class
    attributes, read from the installed library), and ``_process`` whatever the library says: the
    web bridge once read the process handle textual-serve keeps to itself."""
    from textual_serve.app_service import AppService
    from textual_serve.download_manager import DownloadManager

    async def nothing(*_: object) -> None:
        return None

    downloads = DownloadManager()
    service = AppService(
        "true", write_bytes=nothing, write_str=nothing, close=nothing, download_manager=downloads
    )
    names = {*vars(service), *dir(AppService), *vars(downloads), *dir(DownloadManager)}
    return {n for n in names if n.startswith("_") and not n.startswith("__")} | {"_process"}


def private_reads(tree: ast.AST, names: set[str]) -> list[tuple[int, str]]:
    """(line, name) for every ``x.<name>`` and ``getattr(x, "<name>")`` of one of `names`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in names:
            found.append((node.lineno, node.attr))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in names
        ):
            found.append((node.lineno, str(node.args[1].value)))
    return found


def test_no_module_reads_a_library_objects_private_attributes():
    """textual-serve's process handle is its own (``_process``): what the board needs of the
    process it starts and owns itself (tui/web/bridge.py)."""
    names = library_privates()
    bad = [
        f"{path.relative_to(ROOT)}:{line}: .{name}"
        for package in CODE
        for path in modules(package)
        for line, name in private_reads(ast.parse(path.read_text(encoding="utf-8")), names)
    ]
    assert bad == []


def test_the_private_check_catches_the_old_bridge():
    """The checker itself, on the bridge's old lines (else the test above proves nothing)."""
    names = library_privates()
    assert {"_process", "_task", "_stdin", "_download_manager", "_build_environment"} <= names
    old = (
        "class BoardProcess(AppService):\n"
        "    @property\n"
        "    def pid(self):\n"
        "        return self._process.pid if self._process is not None else None\n"
        "    async def stop_within(self, timeout):\n"
        "        process = self._process\n"
        "        env = self._build_environment(80, 24)\n"
        "        handle = getattr(self, '_process')\n"
    )
    assert sorted(line for line, _ in private_reads(ast.parse(old), names)) == [4, 4, 6, 7, 8]
    mine = "self.process.pid\nself._reader\nself._consumed.set()\nprocess = self.process\n"
    assert private_reads(ast.parse(mine), names) == []


def test_no_module_in_agent_or_tui_is_over_600_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for package in ("agent", "tui")
        for p in modules(package)
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def loaded_after(argv: list[str], tmp_path: Path) -> set[str]:
    """The top-level packages imported by `pager-edge ARGV` (run in a fresh interpreter)."""
    script = (
        "import json, sys\n"
        "from pager_edge.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stdout.write('\\n' + json.dumps(sorted(sys.modules)))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    return set(json.loads(r.stdout.splitlines()[-1]))


def test_commands_import_only_what_they_drive(tmp_path):
    help_ = loaded_after(["--help"], tmp_path)
    assert not {m for m in help_ if m.startswith("pager_edge.commands")}
    assert {"textual", "httpx", "aiocoap"}.isdisjoint(help_)

    status = loaded_after(["status", "--db", str(tmp_path / "none.db")], tmp_path)
    assert "pager_edge.commands.status" in status
    assert {"textual", "httpx", "tui", "cloud"}.isdisjoint(status)

    board = loaded_after(["board", "--help"], tmp_path)
    assert "pager_edge.commands.board" in board
    assert {"textual", "httpx", "cloud"}.isdisjoint(board)


def test_a_tablet_board_process_loads_nothing_a_board_does_not_use(tmp_path):
    """Each signed-in tablet is a board process on the Pi (`python -m tui.web.tablet`): what it
    imports is paid once per tablet. Not the command line (click), the web server (aiohttp,
    jinja2, textual-serve), the writer's sqlite-utils, httpx, or importlib.metadata (≈ 2.5 MB
    for a version string)."""
    from tests.board_fixtures import board_config, make_store

    db = make_store(tmp_path / "agent.db")
    script = (
        "import json, sys\n"
        "import tui.web.tablet, tui.run, tui.app, tui.screens.staff, tui.screens.kiosk\n"
        "import tui.screens.dialogs, agent.controller.client\n"
        "from agent.config import load_config\n"
        "from tui.core.source import BoardSource\n"
        # What a board reads on every poll: the snapshot, the day, the sync and backhaul lines.
        f"snap = BoardSource({str(db)!r}, config=load_config({str(tmp_path / 'c.toml')!r}))"
        ".poll(force=True)\n"
        "assert snap is not None and snap.ready and snap.sessions, snap\n"
        "sys.stdout.write(json.dumps(sorted(sys.modules)))\n"
    )
    (tmp_path / "c.toml").write_text(to_toml(board_config(db)))
    r = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    loaded = set(json.loads(r.stdout))
    unwanted = {"click", "aiohttp", "jinja2", "textual_serve", "sqlite_utils", "httpx"}
    unwanted |= {"importlib.metadata", "pager_edge", "tui.web.server", "cloud"}
    assert unwanted.isdisjoint(loaded), sorted(unwanted & loaded)
    assert {"textual", "aiocoap", "tui.app"} <= loaded  # the check sees what it looks for


def test_the_board_core_depends_on_nothing_of_the_board_above_it():
    """tui.core is the board's Textual-free heart: it may use agent, never the rendering, the
    screens, the widgets, the app — nor Textual or Rich."""
    bad = []
    for path in sorted((ROOT / "tui" / "core").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, module in imported(tree):
            top = module.split(".")
            if top[0] in ("textual", "rich") or (
                top[0] == "tui" and len(top) > 1 and top[1] != "core"
            ):
                bad.append(f"{path.relative_to(ROOT)}:{line}: {module}")
    assert bad == []


def test_the_board_reads_the_agent_through_its_contracts_only():
    """tui/ reads health through `agent.health` and the store through its read API (which raises
    only StoreError): never `agent.status` (the command's document, pulling in sync and
    backhaul) and never sqlite3 itself."""
    bad = []
    for path in modules("tui"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, module in imported(tree):
            if (
                module == "sqlite3"
                or module == "agent.status"
                or module.startswith("agent.status.")
            ):
                bad.append(f"{path.relative_to(ROOT)}:{line}: {module}")
    assert bad == []


def test_the_wheel_a_pi_installs_ships_no_benchmarks(tmp_path):
    """Built from the tracked files (nothing written into the checkout), offline: the wheel holds
    the product and its package data, and no ``bench`` package."""
    import zipfile

    tree = tmp_path / "src"
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, (t.decode() for t in tracked)):
        source = ROOT / name
        if source.is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            (tree / name).write_bytes(source.read_bytes())
    out = tmp_path / "dist"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(tree)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    (wheel,) = out.glob("pager_edge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert "bench" not in tops, sorted(n for n in names if n.startswith("bench/"))
    assert {"agent", "tui", "pager_edge", "cloud"} <= tops
    for data in ("tui/board.tcss", "agent/sync/wire-schema.json", "tui/web/templates/login.html"):
        assert data in names
    assert "pager_edge/commands/bench.py" in names  # the command that says where benchmarks are
