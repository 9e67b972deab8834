"""Done 4: the analytics views and `cloud report` agree with the site's own `pager-edge export`.

A site runs for real: the simulator plays an evening across local midnight to the agent over CoAP,
the agent records it in SQLite, some sessions the transmitter then forgets (`lost`, issue 11), and
the real sync engine uploads it all to a replica. The expected figures are computed here, from
nothing but the site's JSONL exports (`export --events` and `export`), with Python's own zoneinfo
and statistics — never from the cloud's SQL — and compared with the views and the report.
"""

from __future__ import annotations

import asyncio
import json
import statistics
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from agent.clock import VirtualClock
from agent.config import Config, with_overrides
from agent.daemon import Agent
from agent.session import Event
from agent.simulator.flow import play, scripted_scenario
from agent.simulator.server import Simulator
from agent.store import Store, WriteBatch
from agent.sync.engine import SyncEngine
from agent.sync.wire import encode_batch
from pager_edge.cli import cli
from tests.agent_helpers import ZONE, converges, eventually, health, make_config
from tests.cloud_helpers import DSN_ENV, add_site, post, query, run

pytest_plugins = ["tests.cloud_fixtures"]
pytestmark = pytest.mark.slow

SITE = "site-ny"
ENDS = ("cleared", "removed", "lost")


async def evening_at_the_site(db, start: datetime) -> None:
    """The simulator's scripted evening, recorded by the real agent into `db`."""
    clock = VirtualClock(start)
    sim = await Simulator.start(ping_interval=0.3, clock=clock, tz=ZoneInfo(ZONE), seed=3)
    agent = Agent(make_config(db, sim.port, ping_interval=0.3))
    try:
        await agent.start()
        await eventually(lambda: health(db).state == "connected")
        await play(sim, scripted_scenario(seed=3, sessions=80), clock, delay=0.002)
        await converges(db, sim)
    finally:
        await agent.stop()
        await sim.stop()


def forget_some(db) -> int:
    """Every other session still open ends `lost`, an hour after the last event (issue 11)."""
    store = Store(db)
    try:
        events = list(store.iter_events())
        ended = {e["uuid"] for e in events if e["kind"] in ENDS}
        numbers = {e["uuid"]: e["number"] for e in events}
        last = max(datetime.fromisoformat(e["at"]) for e in events)
        at = (last + timedelta(hours=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        open_ = sorted(u for u in numbers if u not in ended)
        lost = [(Event("lost", u, numbers[u], at, {}), at, "resync") for u in open_[::2]]  # type: ignore[arg-type]
        store.write_batch(WriteBatch(events=lost))
        return len(lost)
    finally:
        store.close()


def export(db, *args: str) -> list[dict[str, Any]]:
    res = CliRunner().invoke(cli, ["export", "--db", str(db), *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return [json.loads(line) for line in res.stdout.splitlines()]


# --- the expected figures, from the exports alone -------------------------------------------------


def sessions_from_exports(events: list[dict], sessions: list[dict], zone: ZoneInfo) -> list[dict]:
    by_uuid: dict[str, list[dict]] = defaultdict(list)
    for e in sorted(events, key=lambda e: e["seq"]):
        by_uuid[e["uuid"]].append(e)
    latest = {s["uuid"]: s for s in sessions}
    out = []
    for uuid, evs in by_uuid.items():
        created = next((e for e in evs if e["kind"] == "created"), None)
        if created is None:
            continue
        t0 = datetime.fromisoformat(created["at"])
        assert latest[uuid]["created"] == created["at"]  # the session's created is the event's
        paged = next((e for e in evs if e["kind"] == "paged"), None)
        wait = (datetime.fromisoformat(paged["at"]) - t0).total_seconds() if paged else None
        quoted = latest[uuid]["goal_seconds"]
        local = t0.astimezone(zone)
        out.append(
            {
                "local_day": local.date().isoformat(),
                "local_hour": local.hour,
                "party_size": latest[uuid]["party_size"],
                "end": next((e["kind"] for e in evs if e["kind"] in ENDS), None),
                "wait": wait,
                "quoted": quoted,
                "on_time": None if wait is None or quoted is None else wait <= quoted,
            }
        )
    return out


def figures(group: list[dict]) -> dict[str, Any]:
    waits = [s["wait"] for s in group if s["wait"] is not None]
    quotes = [s["quoted"] for s in group if s["quoted"] is not None]
    judged = [s["on_time"] for s in group if s["on_time"] is not None]
    return {
        "parties": len(group),
        "seated": sum(s["end"] == "cleared" for s in group),
        "walk_aways": sum(s["end"] == "removed" for s in group),
        "lost": sum(s["end"] == "lost" for s in group),
        "still_open": sum(s["end"] is None for s in group),
        "paged": len(waits),
        "quoted": len(quotes),
        "quoted_mean_seconds": statistics.mean(quotes) if quotes else None,
        "wait_mean_seconds": statistics.mean(waits) if waits else None,
        "wait_median_seconds": statistics.median(waits) if waits else None,
        "on_time_eligible": len(judged),
        "on_time": sum(judged),
        "on_time_share": sum(judged) / len(judged) if judged else None,
    }


def expected_rows(facts: list[dict], by: str | None) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for s in facts:
        groups[(s["local_day"], s[by]) if by else (s["local_day"],)].append(s)
    rows = []
    for key in sorted(groups, key=lambda k: (k[0], *(-1 if v is None else v for v in k[1:]))):
        row = {"site": SITE, "local_day": key[0]}
        if by:
            row[by] = key[1]
        rows.append({**row, **figures(groups[key])})
    return rows


def plain(row) -> dict[str, Any]:
    """A view row with numerics as floats and the day as text, to compare with Python's figures."""
    out = {}
    for k, v in dict(row).items():
        if isinstance(v, Decimal):
            v = float(v)
        elif isinstance(v, date):
            v = v.isoformat()
        out[k] = v
    return out


def approx_rows(rows: list[dict]) -> list[dict]:
    return [
        {k: pytest.approx(v) if isinstance(v, float) else v for k, v in r.items()} for r in rows
    ]


# --- the test ---------------------------------------------------------------------------------------


def test_views_and_report_agree_with_the_sites_own_export(tmp_path, cloud_db, replicas):
    db = tmp_path / "site.db"
    # 23:10 New York: the evening runs past local midnight, so two local days and several hours.
    asyncio.run(
        evening_at_the_site(db, datetime(2026, 11, 22, 4, 10, tzinfo=UTC))
    )  # 23:10 in New York
    n_lost = forget_some(db)
    events, sessions = export(db, "--events"), export(db)
    facts = sessions_from_exports(events, sessions, ZoneInfo(ZONE))
    assert {f["local_day"] for f in facts} == {"2026-11-21", "2026-11-22"}
    assert {f["end"] for f in facts} == {"cleared", "removed", "lost", None} and n_lost >= 1
    assert any(f["wait"] is not None and not f["on_time"] for f in facts if f["quoted"])
    assert any(f["on_time"] for f in facts)

    token = run(add_site(cloud_db, SITE, ZONE))
    other = run(add_site(cloud_db, "site-tokyo", "Asia/Tokyo"))
    rep = replicas()
    cfg = with_overrides(
        Config(),
        site={"id": SITE},
        store={"path": str(db)},
        sync={"endpoint": rep.url, "max_batch_events": 40},
    )

    async def upload() -> None:
        engine = SyncEngine(cfg, token=token)
        try:
            res = await engine.sync_once()
            assert res.done and res.events == len(events), res
        finally:
            await engine.aclose()

    asyncio.run(upload())
    # Another site in the same database must not leak into this site's figures.
    t = "2026-11-21T14:30:00Z"
    mine = [{"seq": 1, "uuid": "tokyo-1", "number": 1, "kind": "created", "at": t,
             "observed_at": t, "changes": {"party_size": 2, "goal_seconds": 600}, "source": "x"}]  # fmt: skip
    assert post(rep.url, other, *encode_batch("site-tokyo", "t", mine)).status_code == 204

    env = {DSN_ENV: cloud_db}
    for by, view, extra in (
        (None, "site_day_stats", None),
        ("local_hour", "site_day_hour_stats", "local_hour"),
        ("party_size", "site_day_party_size_stats", "party_size"),
    ):
        want = expected_rows(facts, by)
        order = f", {extra} NULLS LAST" if extra else ""
        got = run(query(cloud_db, f"SELECT * FROM {view} WHERE site = $1 ORDER BY local_day{order}",
                        SITE))  # fmt: skip
        assert [plain(r) for r in got] == approx_rows(want), view
        flag = {"local_hour": "hour", "party_size": "party-size"}.get(by or "", "day")
        res = CliRunner().invoke(
            cli, ["cloud", "report", "--site", SITE, "--by", flag, "--json"], env=env
        )
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout) == approx_rows(want), flag

    # Filters: one local day; all sites.
    res = CliRunner().invoke(
        cli,
        ["cloud", "report", "--since", "2026-11-22", "--until", "2026-11-22", "--json"],
        env=env,
    )
    rows = json.loads(res.stdout)
    assert [(r["site"], r["local_day"]) for r in rows] == [(SITE, "2026-11-22")]
    res = CliRunner().invoke(cli, ["cloud", "report"], env=env)
    text = res.stdout
    assert "site-tokyo" in text and "2026-11-21" in text and SITE in text
    day1 = expected_rows(facts, None)[0]
    assert f"{day1['wait_mean_seconds'] / 60:.1f}" in text.splitlines()[1]

    # Guest data: labels of sessions before the second local day are erased, figures stay.
    before = run(query(cloud_db, "SELECT * FROM site_day_stats ORDER BY site, local_day"))
    named = [
        e for e in events_with_labels(cloud_db) if e["day"] == "2026-11-21" and e["label"] != "null"
    ]
    res = CliRunner().invoke(cli, ["cloud", "forget", SITE, "--before", "2026-11-22"], env=env)
    assert res.exit_code == 0, res.output
    assert f"labels erased from {len(named)} events" in res.output and named
    assert run(query(cloud_db, "SELECT * FROM site_day_stats ORDER BY site, local_day")) == before
    labels = events_with_labels(cloud_db)
    assert all(e["label"] == "null" for e in labels if e["day"] == "2026-11-21")
    assert any(e["label"] not in ("null", '""') for e in labels if e["day"] == "2026-11-22")


def events_with_labels(dsn: str) -> list[dict]:
    rows = run(
        query(
            dsn,
            "SELECT f.local_day, e.changes -> 'label' AS label FROM events e"
            " JOIN session_facts f USING (site, session) WHERE e.site = $1"
            " AND e.changes ? 'label'",
            SITE,
        )
    )
    return [{"day": r["local_day"].isoformat(), "label": r["label"]} for r in rows]
