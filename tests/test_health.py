"""One health record, one liveness rule: status, the watchdog and the board agree on a heartbeat.

Before, `status` said "not running" after 30 s, the systemd watchdog after 20 s and the board's
banner after 90 s; now each asks :func:`agent.health.liveness` with ``[agent] stale_after``.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from agent.clock import VirtualClock, iso_utc
from agent.config import ConfigError, config_warnings, parse_config, with_overrides
from agent.daemon import Agent
from agent.health import Health, liveness
from agent.ingest import Ingestor
from agent.status import collect_status
from agent.store import Store, StoreError, WriteBatch
from tests.board_fixtures import board_config, healthy
from tui.core.source import BoardSource, Snapshot
from tui.render.header import banner

NOW = datetime(2026, 3, 13, 19, 30, tzinfo=UTC)


def beat(seconds_ago: float, **more: object) -> Health:
    at = iso_utc(NOW - timedelta(seconds=seconds_ago))
    return Health(state="connected", heartbeat_at=at).but(**more)


def test_liveness_is_the_heartbeat_against_one_threshold():
    fresh = liveness(beat(29), NOW, 30)
    assert fresh.running and fresh.connected and fresh.heartbeat_age == 29.0
    assert liveness(beat(30), NOW, 30).running  # at the threshold: still there
    late = liveness(beat(31), NOW, 30)
    assert not late.running and late.stale and not late.connected and not late.stopped
    assert late.since == NOW - timedelta(seconds=31)
    assert liveness(beat(31), NOW, 60).running  # the threshold is the caller's (configured)
    assert not liveness(beat(5, state="disconnected"), NOW, 30).connected


def test_a_stamped_stop_is_not_running_however_fresh_the_heartbeat():
    stopped = liveness(beat(1, stopped_at=iso_utc(NOW)), NOW, 30)
    assert stopped.stopped and not stopped.running and stopped.since == NOW


def test_no_heartbeat_ever_is_not_running():
    never = liveness(Health(), NOW, 30)
    assert not never.running and never.since is None and never.heartbeat_age is None


def test_the_record_round_trips_through_the_store(tmp_path):
    h = healthy(NOW).but(host_clock_synced=False, sequence=41, gaps=2, last_error="timeout")
    store = Store(tmp_path / "h.db")
    try:
        assert store.health() == Health()  # before the agent first wrote it
        store.write_batch(WriteBatch(health=h))
        assert store.health() == h
        raw = store.conn.execute("SELECT host_clock_synced FROM health").fetchone()[0]
        assert raw == 0  # SQLite keeps the flag as an integer; it reads back as False
    finally:
        store.close()


def _store_with(tmp_path, health: Health):
    db = tmp_path / "agent.db"
    store = Store(db)
    store.write_batch(WriteBatch(health=health))
    store.close()
    return db


@pytest.mark.parametrize("stale_after, running", [(30.0, False), (60.0, True)])
def test_status_the_board_and_the_watchdog_apply_the_same_configured_threshold(
    tmp_path, stale_after, running
):
    """A heartbeat 45 s old: not running with the default 30 s, running with 60 s — for all three."""
    health = beat(45)
    db = _store_with(tmp_path, health)
    cfg = with_overrides(board_config(db), agent={"stale_after": stale_after})

    store = Store(db, readonly=True)
    try:
        status = collect_status(store, now=NOW, config=cfg)
    finally:
        store.close()
    assert status["agent"]["running"] is running
    assert status["transmitter"]["connected"] is running

    # The board: the header's banner, from the snapshot its source reads.
    snap = BoardSource(db, clock=VirtualClock(NOW)).poll()
    assert isinstance(snap, Snapshot) and snap.health == health
    offline = banner(snap, NOW, cfg.agent.stale_after, None)
    assert (offline is None) is running

    # The daemon's systemd watchdog, on the ingest's own record of the heartbeat.
    agent = Agent(cfg, clock=VirtualClock(NOW))
    writer = Store(db)
    try:
        agent.ingest = Ingestor(writer, None, zone=None)
        agent.ingest.health = health
        assert agent.healthy() is running
    finally:
        agent.ingest.close()
        writer.close()


def test_the_threshold_is_configured_once_and_checked():
    assert parse_config("").agent.stale_after == 30.0
    assert parse_config("[agent]\nstale_after = 45").agent.stale_after == 45.0
    with pytest.raises(ConfigError, match=r"\[agent\] stale_after: expected 10 seconds or more"):
        parse_config("[agent]\nstale_after = 4")


def test_the_boards_old_key_still_works_and_says_where_it_moved():
    cfg = parse_config("[board]\nstale_after = 90\nundo_seconds = 5", source="site.toml")
    assert cfg.agent.stale_after == 90.0 and cfg.board.undo_seconds == 5.0
    assert config_warnings(cfg) == [
        "site.toml: [board] stale_after: moved to [agent] stale_after; please move it there"
    ]
    both = parse_config("[agent]\nstale_after = 40\n[board]\nstale_after = 90")
    assert both.agent.stale_after == 40.0  # the new place wins


def test_the_stores_read_api_raises_only_its_own_error(tmp_path):
    db = _store_with(tmp_path, beat(1))
    reader = Store(db, readonly=True)
    events = reader.iter_events()  # an iterator: its rows are read as it is iterated
    reader.conn.close()  # what a vanished or broken file looks like to the reader
    for read in (reader.health, reader.active_views, reader.event_count, reader.data_version):
        with pytest.raises(StoreError, match="cannot read the database") as caught:
            read()
        # Nothing of sqlite3 leaks; the cause stays attached for the log.
        assert isinstance(caught.value.__cause__, sqlite3.ProgrammingError)
    with pytest.raises(StoreError):
        list(events)
    with pytest.raises(StoreError), reader.read_transaction():
        pass
