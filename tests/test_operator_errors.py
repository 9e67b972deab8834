"""What a new user meets when something is wrong: one clear line, the right exit code, no traceback."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from agent.config import with_overrides
from agent.controller import link as link_module
from agent.daemon import Agent
from agent.skew import format_skew, looks_like_zone, skew_warning
from tests.agent_helpers import eventually, health, make_config


def _closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_an_unreachable_transmitter_is_logged_at_once_then_reminded(
    tmp_path, caplog, monkeypatch
):
    monkeypatch.setattr(link_module, "REMIND_EVERY", 1.0)
    caplog.set_level(logging.INFO, logger="agent.controller.link")
    db = tmp_path / "agent.db"
    port = _closed_udp_port()
    cfg = with_overrides(make_config(db, port), controller={"request_timeout": 0.3})
    agent = Agent(cfg)
    try:
        await agent.start()
        await eventually(lambda: health(db).state == "disconnected", timeout=5)
        since = health(db).since
        first = [r for r in caplog.records if "cannot reach the transmitter" in r.getMessage()]
        assert first and first[0].levelno == logging.WARNING
        assert f"127.0.0.1:{port}" in first[0].getMessage()
        await asyncio.sleep(2.5)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        reminders = [m for m in warnings if m.startswith("still cannot reach")]
        assert reminders and "failed attempts" in reminders[-1]
        assert len(warnings) < agent.link.failures  # not one line per retry
        assert health(db).since == since  # disconnected since it went down, not the last retry
    finally:
        await agent.stop()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(3600, "+1 h 0 m"), (-250, "-4 m 10 s"), (2.4, "+2 s"), (5430, "+1 h 30 m")],
)
def test_skew_reads_as_hours_and_minutes(seconds, text):
    assert format_skew(seconds) == text


def test_a_skew_near_whole_or_half_hours_is_a_zone_problem():
    assert looks_like_zone(3600 + 40) and looks_like_zone(-1800) and looks_like_zone(-7200 + 100)
    assert not looks_like_zone(300) and not looks_like_zone(3600 + 600) and not looks_like_zone(20)
    hint = skew_warning(3601)
    assert hint == (
        "transmitter clock is 1 h ahead of this host — check [controller] timezone, "
        "or set the transmitter's clock"
    )
    assert "set-clock" in (skew_warning(-130) or "") and skew_warning(59) is None
    unsynced = skew_warning(3600, host_synchronised=False) or ""
    assert "not synchronised" in unsynced


def test_every_mistake_in_a_file_is_reported_at_once():
    from agent.config import ConfigErrors, parse_config

    text = (
        '[controller]\nport = "abc"\ntimezone = "Mars/Olympus"\nflavour = 1\n'
        "[store]\nsynchronous = 3\n[bogus]\nx = 1\n"
    )
    with pytest.raises(ConfigErrors) as exc:
        parse_config(text, source="site.toml")
    problems = exc.value.problems
    assert len(problems) == 5, problems
    assert all(p.startswith("site.toml: ") for p in problems)
    assert any("[controller] port: expected an integer" in p for p in problems)
    assert any("[controller] timezone" in p for p in problems)
    assert any("[controller] flavour: unknown key" in p for p in problems)
    assert any("[bogus]: unknown section" in p for p in problems)
    for p in problems:  # no text said twice in one message
        assert p.count("site.toml") == 1 and p.count("expected") <= 1


def test_enum_values_are_case_insensitive():
    from agent.config import parse_config

    cfg = parse_config('[store]\nsynchronous = "normal"\n[logging]\nlevel = "debug"\n')
    assert (cfg.store.synchronous, cfg.logging.level) == ("NORMAL", "DEBUG")


def test_installer_placeholders_are_warnings_and_an_error_with_sync():
    from agent.config import ConfigError, config_warnings, parse_config

    cfg = parse_config('[site]\nid = "change-me"\n[controller]\nhost = "192.0.2.10"\n', source="c")
    warnings = config_warnings(cfg)
    assert any("[site] id: still the placeholder 'change-me'" in w for w in warnings)
    assert any("[controller] host: 192.0.2.10 is a documentation address" in w for w in warnings)
    assert config_warnings(parse_config('[controller]\nhost = "10.1.2.3"\n')) == []
    with pytest.raises(ConfigError, match=r"\[site\] id: expected this restaurant's own id"):
        parse_config(
            '[site]\nid = "change-me"\n[sync]\nenabled = true\n'
            'endpoint = "https://ingest.chain.test/v1/batches"\n'
        )


# --- through the command line, as a user meets them --------------------------------------------


def _pager_edge(*args: str, **env: str):
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "pager_edge", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def test_status_without_a_database_is_unknown_in_json_too(tmp_path):
    import json

    r = _pager_edge("status", "--db", str(tmp_path / "none.db"))
    assert r.returncode == 3 and "UNKNOWN" in r.stdout and "Traceback" not in r.stderr
    r = _pager_edge("status", "--json", "--db", str(tmp_path / "none.db"))
    doc = json.loads(r.stdout)
    assert r.returncode == 3 and doc["verdict"]["level"] == "unknown"


def test_status_of_a_stopped_agent_is_critical_and_lost_parties_warn(tmp_path):
    import json

    from tests.board_fixtures import healthy, make_store

    db = make_store(tmp_path / "agent.db", health=healthy().but(stopped_at="2026-03-13T18:00:00Z"))
    r = _pager_edge("status", "--json", "--db", str(db))
    doc = json.loads(r.stdout)
    assert r.returncode == 2 and doc["verdict"]["level"] == "critical"
    assert doc["verdict"]["reasons"][0].startswith("agent not running (stopped 2026-03-13T18:00")


def test_status_verdicts_from_the_document():
    from agent.status import judge

    base = {
        "agent": {"running": True, "stopped_at": None},
        "transmitter": {
            "connected": True,
            "state": "connected",
            "since": "x",
            "skew_warning": None,
        },
        "sessions": {"waiting": 1, "paged": 0, "cleared": 0, "removed": 0},
    }
    assert judge(base)["code"] == 0
    down = {**base, "transmitter": {**base["transmitter"], "connected": False,
                                    "state": "disconnected", "since": "2026-12-03T07:15:19Z"}}  # fmt: skip
    v = judge(down)
    assert v["code"] == 1 and v["reasons"] == [
        "transmitter disconnected since 2026-12-03T07:15:19Z"
    ]
    assert judge({**base, "sessions": {**base["sessions"], "lost": 2}})["reasons"] == [
        "2 lost parties to re-add or dismiss"
    ]
    assert judge({**base, "sync": {"alert": "database over its size cap"}})["code"] == 1
    assert judge(base, store_problem="/x is not writable by this user")["code"] == 2


def test_a_store_path_nobody_can_write_is_one_line_and_exit_2(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    conf = tmp_path / "config.toml"
    conf.write_text(f'[store]\npath = "{blocker}/sub/agent.db"\n')
    for args in (("config", "check", "--config", str(conf)), ("run", "--config", str(conf))):
        r = _pager_edge(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "Traceback" not in r.stderr and "OperationalError" not in r.stderr
        (line,) = r.stderr.strip().splitlines()
        assert line == (
            f"pager-edge: configuration error: {conf}: [store] path: cannot create "
            f"{blocker}/sub/agent.db: {blocker} is not a directory"
        )


def test_config_check_reports_all_problems_and_warns_of_placeholders(tmp_path):
    conf = tmp_path / "config.toml"
    conf.write_text(
        '[site]\nid = "change-me"\n[controller]\nhost = "192.0.2.10"\nport = 0\n'
        'timezone = "Nowhere/Land"\n[store]\nsynchronous = "full"\n'
    )
    r = _pager_edge("config", "check", "--config", str(conf))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 2, r.stderr
    assert all(
        line.startswith(f"pager-edge: configuration error: {conf}: [controller]") for line in lines
    )
    conf.write_text('[site]\nid = "change-me"\n[controller]\nhost = "192.0.2.10"\n')
    r = _pager_edge("config", "check", "--config", str(conf))
    assert r.returncode == 0 and "OK" in r.stdout
    assert "warning:" in r.stderr and "placeholder 'change-me'" in r.stderr
    assert "192.0.2.10 is a documentation address" in r.stderr
