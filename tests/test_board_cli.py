"""`pager-edge board`: clear messages for a missing config or database; staff vs kiosk wiring."""

from __future__ import annotations

import pytest

from pager_edge.cli import main
from tests.board_fixtures import make_store
from tui.app import BoardApp
from tui.run import run_board_async


def run(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code, capsys.readouterr().err


def test_staff_board_without_a_database_says_what_to_do(tmp_path, capsys):
    code, err = run(["board", "--db", str(tmp_path / "nope.db")], capsys)
    assert code == 1
    assert "nope.db: no database yet" in err and "pager-edge run" in err


def test_missing_config_file_is_one_readable_line(tmp_path, capsys):
    code, err = run(["board", "--config", str(tmp_path / "missing.toml")], capsys)
    assert code == 2
    assert "configuration error" in err and "missing.toml: file not found" in err


def test_db_path_that_is_a_directory(tmp_path, capsys):
    code, err = run(["board", "--db", str(tmp_path)], capsys)
    assert code == 2 and "is a directory" in err


@pytest.fixture
def launched(monkeypatch):
    seen: list[BoardApp] = []

    async def fake_run_async(self):
        seen.append(self)

    monkeypatch.setattr(BoardApp, "run_async", fake_run_async)
    return seen


def test_staff_board_gets_a_controller_client_from_the_config(tmp_path, launched):
    db = make_store(tmp_path / "agent.db")
    conf = tmp_path / "config.toml"
    conf.write_text(
        f'[store]\npath = "{db}"\n[controller]\nhost = "127.0.0.1"\nport = 5999\n'
        'request_timeout = 1.5\ntimezone = "Europe/Paris"\n'
    )
    main(["board", "--config", str(conf)])
    (app,) = launched
    assert not app.kiosk and app.db_path == db
    assert app.client is not None
    assert (app.client.host, app.client.port, app.client.timeout) == ("127.0.0.1", 5999, 1.5)
    assert str(app.zone) == "Europe/Paris"


def test_kiosk_starts_without_a_database_and_without_coap(tmp_path, launched):
    main(["board", "--kiosk", "--db", str(tmp_path / "later.db"), "--ascii"])
    (app,) = launched
    assert app.kiosk and app.client is None
    assert app.ascii and app.ansi
    assert not app.use_command_palette


def test_demo_embedding_signature(tmp_path):
    """`pager-edge demo` builds the app like this inside its running loop."""
    app = BoardApp(tmp_path / "demo.db", client=None, kiosk=False, config=None)
    assert app.db_path.name == "demo.db" and callable(app.run_async)
    assert run_board_async is not None
