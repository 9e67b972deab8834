"""The poller's schedule and reactions, readings as rows, and the text people see."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from agent.backhaul.control_center import ControlCenterClient
from agent.backhaul.monitor import (
    BackhaulPoller,
    current,
    header,
    mode_provider,
    status_section,
    summary,
)
from agent.backhaul.reading import NetworkFailure, OperatorError, Reading, SessionInfo, UsageInfo
from agent.config import BackhaulConfig
from agent.store import Store
from tests import backhaul_fakes as f

CFG = BackhaulConfig(
    provider="control_center", cap_bytes=10_000_000_000, session_interval=600, usage_interval=1800
)
ONLINE = SessionInfo(online=True, ipv4="10.1.2.3")
USAGE = UsageInfo(cycle_bytes=2_000_000_000, sim_status="ACTIVATED")
RATE_LIMITED = OperatorError("40000029", 429, "rate limit", "backoff")
REFUSED = OperatorError("10000001", 401, "credentials or allowed-IP range", "stop")


class ScriptedClient:
    """An operator client whose answers are scripted; records when (fake time) it was asked."""

    provider = "control_center"

    def __init__(self, clock, sessions=(ONLINE,), usages=(USAGE,)):
        self.clock = clock
        self._script = {"session": list(sessions), "usage": list(usages)}
        self.calls: list[tuple[str, float]] = []

    async def _answer(self, kind):
        self.calls.append((kind, self.clock.t))
        script = self._script[kind]
        result = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(result, Exception):
            raise result
        return result

    async def session(self):
        return await self._answer("session")

    async def usage(self):
        return await self._answer("usage")

    async def aclose(self):
        pass

    def times(self, kind):
        return [t for k, t in self.calls if k == kind]


async def run_until(clock, poller):
    with pytest.raises(f.ClockStop):
        await poller.run()


async def test_schedule_follows_the_intervals():
    clock = f.FakeClock(until=3600)
    client = ScriptedClient(clock)
    readings = []
    await run_until(clock, BackhaulPoller(CFG, client, readings.append, clock=clock))
    assert client.times("session") == [0, 600, 1200, 1800, 2400, 3000, 3600]
    assert client.times("usage") == [0, 1800, 3600]
    assert len(readings) == 7 and all(r.error is None for r in readings)


async def test_rate_limit_slows_the_poller_and_success_speeds_it_up_again():
    clock = f.FakeClock(until=4000)
    client = ScriptedClient(clock, sessions=(RATE_LIMITED, ONLINE))
    poller = BackhaulPoller(CFG, client, clock=clock)
    await run_until(clock, poller)
    sessions = client.times("session")
    assert sessions[:3] == [0, 1200, 1800]  # 600 × 2 after the rate limit, then back to 600
    assert client.times("usage")[0] == 3600  # 1800 × 2: the slowdown applies to usage as well
    assert poller.slowdown == 1.0


async def test_repeated_rate_limits_keep_slowing_down_up_to_a_cap():
    clock = f.FakeClock(until=60_000)
    client = ScriptedClient(clock, sessions=(RATE_LIMITED,))
    poller = BackhaulPoller(CFG, client, clock=clock)
    await run_until(clock, poller)
    gaps = [
        b - a for a, b in zip(client.times("session"), client.times("session")[1:], strict=False)
    ]
    assert gaps[:4] == [1200, 2400, 4800, 4800]
    assert poller.slowdown == 8.0


async def test_network_failure_pauses_polling_with_growing_probes():
    clock = f.FakeClock(until=2000)
    down = NetworkFailure("Control Center unreachable")
    client = ScriptedClient(clock, sessions=(down, down, down, ONLINE))
    readings = []
    await run_until(clock, BackhaulPoller(CFG, client, readings.append, clock=clock))
    assert client.times("session")[:5] == [0, 60, 180, 420, 1020]
    assert client.times("usage") == [420]  # not asked while the link is down
    assert [r.error_code for r in readings[:4]] == ["network", "network", "network", None]
    assert readings[0].online is None


async def test_network_pause_is_capped_at_the_session_interval():
    clock = f.FakeClock(until=5000)
    client = ScriptedClient(clock, sessions=(NetworkFailure("down"),))
    await run_until(clock, BackhaulPoller(CFG, client, clock=clock))
    gaps = [
        b - a for a, b in zip(client.times("session"), client.times("session")[1:], strict=False)
    ]
    assert gaps[:6] == [60, 120, 240, 480, 600, 600]


async def test_credential_error_stops_polling_for_good(caplog):
    clock = f.FakeClock()
    client = ScriptedClient(clock, sessions=(REFUSED, ONLINE))
    readings = []
    poller = BackhaulPoller(CFG, client, readings.append, clock=clock)
    task = asyncio.create_task(poller.run())
    for _ in range(50):
        await asyncio.sleep(0)
    assert poller.stopped is REFUSED and not task.done()
    assert client.calls == [("session", 0)]
    assert readings[0].error_reaction == "stop" and "allowed-IP range" in readings[0].error
    assert "backhaul polling stopped" in caplog.text
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_log_lines_quoting_the_operator_are_one_printable_line(caplog):
    clock = f.FakeClock(until=3000)
    hostile = "bad\x1b]0;owned\x07\n2026-01-01 ERROR agent: forged"
    flaky = OperatorError("30000001", 500, hostile, "retry_later")
    limited = OperatorError("40000029", 429, hostile, "backoff")
    client = ScriptedClient(clock, sessions=(flaky, limited, NetworkFailure(hostile), ONLINE))
    await run_until(clock, BackhaulPoller(CFG, client, clock=clock))
    quoted = [r.getMessage() for r in caplog.records if "forged" in r.getMessage()]
    assert len(quoted) == 3
    assert all(not any(ch in m for ch in "\x1b\x07\n") for m in quoted), quoted


async def test_retry_later_waits_for_the_next_interval():
    clock = f.FakeClock(until=1300)
    flaky = OperatorError("30000001", 500, "unknown server error", "retry_later")
    client = ScriptedClient(clock, sessions=(flaky, ONLINE))
    await run_until(clock, BackhaulPoller(CFG, client, clock=clock))
    assert client.times("session") == [0, 600, 1200]


async def test_rate_limit_through_the_real_client_slows_the_poller():
    server = f.FakeOperator().start()
    try:
        root = f"/rws/api/v1/devices/{f.CC_ICCID}"
        server.on(
            "GET",
            f"{root}/sessionInfo",
            f.answer(f.CC_RATE_LIMIT, 200),
            f.answer(f.SEED_SESSION_INFO),
        )
        server.on("GET", f"{root}/ctdUsages", f.answer(f.SEED_CTD_USAGES))
        server.on("GET", f"{root}/usageInZone", f.answer(f.SEED_USAGE_IN_ZONE))
        clock = f.FakeClock(until=1500)
        client = ControlCenterClient(
            server.url, iccid=f.CC_ICCID, username="u", api_key="k-123", clock=clock
        )
        poller = BackhaulPoller(CFG, client, clock=clock)
        await run_until(clock, poller)
        await client.aclose()
    finally:
        server.stop()
    assert len(server.calls(f"{root}/sessionInfo")) == 2  # at 0 (rate-limited) and at 1200, not 600
    assert poller.latest.error is None and poller.latest.online is False


async def test_on_reading_may_be_async_and_its_failures_do_not_stop_polling(caplog):
    clock = f.FakeClock(until=1300)
    client = ScriptedClient(clock)
    got = []

    async def store(reading):
        got.append(reading)
        if len(got) == 1:
            raise RuntimeError("disk full")

    await run_until(clock, BackhaulPoller(CFG, client, store, clock=clock))
    assert len(got) == 3 and "storing a backhaul reading failed" in caplog.text


async def test_a_failure_keeps_the_last_figures_and_marks_online_unknown():
    clock = f.FakeClock()
    client = ScriptedClient(clock, sessions=(ONLINE, NetworkFailure("down"), ONLINE))
    poller = BackhaulPoller(CFG, client, clock=clock)
    good = await poller.poll_once()
    clock.t = 600
    bad = await poller.poll_once()
    assert bad.online is None and bad.error_code == "network"
    assert bad.cycle_bytes == good.cycle_bytes and bad.usage_taken_at == good.usage_taken_at
    assert bad.ipv4 == "10.1.2.3" and bad.session_taken_at == good.session_taken_at
    clock.t = 1200
    again = await poller.poll_once()
    assert again.error is None and again.online is True


async def test_budget_counts_the_agents_own_bytes_since_the_reading():
    clock = f.FakeClock(start=datetime(2024, 6, 16, tzinfo=UTC))
    counter = [1_000]  # the agent's cumulative bytes over the backhaul
    client = ScriptedClient(clock)
    poller = BackhaulPoller(CFG, client, clock=clock, own_bytes=lambda: counter[0])
    reading = await poller.poll_once()
    assert reading.own_bytes_at_usage == 1_000 and reading.used_bytes == 2_000_000_000
    counter[0] += 5_000_000_000
    later = poller.budget(reading, clock.now())
    # 70 % used half-way through the cycle projects to 140 %: critical, though no alert yet
    assert later.used_bytes == 7_000_000_000 and later.mode == "critical" and later.alert is None


def test_own_bytes_counter_going_backwards_counts_in_full():
    r = Reading("control_center", datetime(2024, 6, 16, tzinfo=UTC), own_bytes_at_usage=500)
    assert r.own_bytes_since_usage(800) == 300
    assert r.own_bytes_since_usage(200) == 200
    assert r.own_bytes_since_usage(None) == 0
    assert Reading("thingspace", r.taken_at).own_bytes_since_usage(800) == 0


# --- rows, JSON and text --------------------------------------------------------------------------


async def _reading(clock=None) -> Reading:
    clock = clock or f.FakeClock(start=datetime(2024, 6, 16, tzinfo=UTC))
    info = SessionInfo(online=True, ipv4="10.1.2.3", ipv6="2605:9780:309e::/64")
    client = ScriptedClient(clock, sessions=(info,))
    return await BackhaulPoller(CFG, client, clock=clock, own_bytes=lambda: 0).poll_once()


async def test_json_has_the_contract_keys():
    doc = (await _reading()).to_json()
    for key in (
        "provider", "online", "ipv4", "ipv6", "sim_status", "cycle_bytes", "cap_bytes",
        "projected_bytes", "mode", "taken_at", "error",
    ):  # fmt: skip
        assert key in doc
    assert doc["taken_at"] == "2024-06-16T00:00:00Z" and doc["error"] is None
    assert json.loads(json.dumps(doc)) == doc


async def test_row_is_flat_scalars_and_round_trips_through_the_store(tmp_path):
    reading = await _reading()
    row = reading.to_row()
    assert all(isinstance(v, str | int | float | bool | type(None)) for v in row.values())
    store = Store(tmp_path / "pe.db", synchronous="NORMAL")
    try:
        store.add_backhaul_reading(row)
        back = Reading.from_row(store.latest_backhaul_reading())
    finally:
        store.close()
    assert back == reading


async def test_summary_and_board_header_say_what_matters():
    reading = await _reading()
    now = reading.taken_at + timedelta(minutes=4)
    text = summary(reading, now)
    assert "online 10.1.2.3 2605:9780:309e::/64" in text
    assert "2.0 GB of 10.0 GB (20 %)" in text and "projected:  4.0 GB by 2024-07-01" in text
    assert "sync mode:  normal" in text and "4 min ago" in text
    line = header(reading, now)
    assert (
        line
        == "backhaul online 10.1.2.3 2605:9780:309e::/64 · 2.0 GB of 10.0 GB (20 %) · → 4.0 GB · normal · 4 min ago"
    )
    assert header(None) == "backhaul: no reading yet"
    failed = reading.with_error(OperatorError("10000001", 401, "refused", "stop"), now)
    assert "ERROR: refused" in summary(failed, now) and "online?" in header(failed, now)


async def test_stored_reading_is_rebudgeted_for_now_and_status_section(tmp_path):
    reading = await _reading()
    later = current(reading.to_row(), CFG, datetime(2024, 7, 2, tzinfo=UTC))
    assert later.used_bytes == 0 and later.mode == "normal"  # a new cycle began
    store = Store(tmp_path / "pe.db", synchronous="NORMAL")
    try:
        assert status_section(CFG)(store)["backhaul"]["reading"] is None
        store.add_backhaul_reading(reading.to_row())
        section = status_section(CFG)(store)["backhaul"]
    finally:
        store.close()
    assert section["ipv4"] == "10.1.2.3" and section["age_seconds"] > 0
    assert section["summary"].startswith("backhaul online")


async def test_mode_provider_for_the_sync_engine():
    reading = await _reading()
    rows = [None]
    counter = [0]
    mode = mode_provider(
        CFG,
        lambda: rows[0],
        lambda: counter[0],
        default="conserve",
        clock=lambda: datetime(2024, 6, 16, tzinfo=UTC),
    )
    assert mode() == "conserve"  # no reading yet: the configured [sync] mode
    rows[0] = reading.to_row()
    assert mode() == "normal"
    counter[0] = 8_000_000_000  # the agent itself sent 8 GB since the reading
    assert mode() == "blocked"
