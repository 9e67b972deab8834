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
        await eventually(lambda: health(db).get("state") == "disconnected", timeout=5)
        since = health(db)["since"]
        first = [r for r in caplog.records if "cannot reach the transmitter" in r.getMessage()]
        assert first and first[0].levelno == logging.WARNING
        assert f"127.0.0.1:{port}" in first[0].getMessage()
        await asyncio.sleep(2.5)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        reminders = [m for m in warnings if m.startswith("still cannot reach")]
        assert reminders and "failed attempts" in reminders[-1]
        assert len(warnings) < agent.link.failures  # not one line per retry
        assert health(db)["since"] == since  # disconnected since it went down, not the last retry
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
