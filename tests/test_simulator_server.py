"""The simulator over loopback UDP with a real aiocoap client: every resource, every refusal."""

from __future__ import annotations

import ast
import asyncio
import socket
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiocoap
import pytest

import agent.simulator as package
from agent.clock import VirtualClock
from agent.simulator.server import Simulator, reserve_port
from tests.simfixtures import doc, request, sim_and_client

GET, POST, PUT, DELETE = aiocoap.GET, aiocoap.POST, aiocoap.PUT, aiocoap.DELETE
METADATA = {"responseTypes", "globalSessionSequence", "timestamp", "deviceName", "firmwareVersion"}


async def test_sessions_create_get_update_page_clear_remove():
    async with sim_and_client() as (sim, ctx, clock):
        resp = await request(ctx, sim, POST, "/v1/sessions", {"number": 12, "label": "Zoë"})
        assert resp.code == aiocoap.CREATED
        assert resp.opt.content_format == 50
        created = doc(resp)
        assert METADATA <= created.keys()
        assert (
            created["sessions"][0]["label"] == "Zoë"
            and created["sessions"][0]["state"] == "started"
        )
        assert created["sessions"][0]["goalInSeconds"] == 300  # settings.defaultTargetGoal
        assert b" " not in resp.payload  # compact out

        resp = await request(ctx, sim, GET, "/v1/sessions?number=12")
        assert resp.code == aiocoap.CONTENT
        one = doc(resp)
        assert METADATA <= one.keys() and one["responseTypes"] == ["sessions"]
        assert [s["number"] for s in one["sessions"]] == [12]

        clock.advance(30)
        resp = await request(ctx, sim, PUT, "/v1/sessions?number=12", {"partySize": 5, "goal": 600})
        assert resp.code == aiocoap.CHANGED
        assert doc(resp)["sessions"][0]["partySize"] == 5

        clock.advance(30)
        resp = await request(
            ctx, sim, PUT, "/v1/sessions?number=12", {"action": "page", "pageMode": "Vibe1"}
        )
        assert doc(resp)["sessions"][0]["state"] == "paged"

        resp = await request(ctx, sim, PUT, "/v1/sessions?number=12", {"action": "clear"})
        assert resp.code == aiocoap.CHANGED and doc(resp)["sessions"][0]["state"] == "cleared"

        await request(ctx, sim, POST, "/v1/sessions", {"number": 13, "action": "page"})
        assert sim.model.active[13].page_count == 1
        resp = await request(ctx, sim, DELETE, "/v1/sessions?number=13")
        assert resp.code == aiocoap.DELETED and resp.payload == b""

        history = doc(await request(ctx, sim, GET, "/v1/sessions/history"))
        assert METADATA <= history.keys() and history["responseTypes"] == ["session_history"]
        assert [(h["number"], h["clearType"]) for h in history["session_history"]] == [
            (12, "STOP"),
            (13, "REMOVED"),
        ]
        states = {r["number"]: r["state"] for r in sim.ground_truth()}
        assert states == {12: "cleared", 13: "removed"}


async def test_the_wire_repeats_the_autumn_hour_and_ground_truth_does_not():
    chicago = ZoneInfo("America/Chicago")
    start = VirtualClock(datetime(2026, 11, 1, 6, 40, tzinfo=UTC))  # 01:40 CDT
    async with sim_and_client(clock=start, tz=chicago) as (sim, ctx, clock):
        await request(ctx, sim, POST, "/v1/sessions", {"number": 5, "label": "Zoë"})
        clock.advance(30 * 60)  # 01:10 CST
        await request(ctx, sim, PUT, "/v1/sessions?number=5", {"action": "page"})
        stats = doc(await request(ctx, sim, GET, "/v1/sessions/statistics"))["statistics"]
        assert stats["averageTimeServed"] == 30 * 60  # waited half an hour, not minus half
        clock.advance(60)
        await request(ctx, sim, PUT, "/v1/sessions?number=5", {"action": "clear"})
        [item] = doc(await request(ctx, sim, GET, "/v1/sessions/history"))["session_history"]
        assert (item["created"], item["notified"], item["cleared"]) == (
            "2026-11-01T01:40:00",
            "2026-11-01T01:10:00",
            "2026-11-01T01:11:00",
        )
        [truth] = sim.ground_truth()
        assert (truth["created"], truth["notified"], truth["cleared"]) == (
            "2026-11-01T06:40:00Z",
            "2026-11-01T07:10:00Z",
            "2026-11-01T07:11:00Z",
        )


async def test_delete_all_statistics_settings_and_standalone_page():
    async with sim_and_client() as (sim, ctx, clock):
        for n in (1, 2, 3):
            sim.create(n)
        clock.advance(100)
        sim.page(2)
        stats = doc(await request(ctx, sim, GET, "/v1/sessions/statistics"))
        assert METADATA <= stats.keys() and stats["statistics"]["numSessions"] == 3
        resp = await request(ctx, sim, DELETE, "/v1/sessions/statistics")
        assert resp.code == aiocoap.DELETED
        stats = doc(await request(ctx, sim, GET, "/v1/sessions/statistics"))
        assert stats["statistics"]["numSessions"] == 0

        resp = await request(ctx, sim, DELETE, "/v1/sessions")
        assert resp.code == aiocoap.DELETED and sim.model.active == {}
        assert doc(await request(ctx, sim, GET, "/v1/sessions"))["sessions"] == []

        settings = doc(await request(ctx, sim, GET, "/v1/settings"))
        assert METADATA <= settings.keys() and settings["settings"]["defaultTargetGoal"] == 300
        resp = await request(
            ctx,
            sim,
            POST,
            "/v1/settings",
            {"defaultTargetGoal": 900, "datetime": "2026-03-07T19:00:00"},
        )
        assert resp.code == aiocoap.CHANGED
        assert doc(resp)["settings"]["defaultTargetGoal"] == 900
        assert doc(resp)["timestamp"] == "2026-03-07T19:00:00"

        resp = await request(
            ctx, sim, POST, "/v1/page", {"number": 200, "pageMode": "Vibe1", "message": "hi"}
        )
        assert resp.code == aiocoap.CHANGED
        assert sim.model.standalone_pages[-1]["number"] == 200


@pytest.mark.parametrize(
    "method, path, payload, code",
    [
        (GET, "/v1/sessions?number=99", b"", "4.04"),
        (GET, "/v1/sessions?number=abc", b"", "4.00"),
        (GET, "/v1/sessions?num=1", b"", "4.00"),
        (PUT, "/v1/sessions?number=99", b'{"action":"page"}', "4.04"),
        (DELETE, "/v1/sessions?number=99", b"", "4.04"),
        (PUT, "/v1/sessions", b'{"action":"page"}', "4.00"),
        (PUT, "/v1/sessions?number=1", b'{"action":"dance"}', "4.00"),
        (PUT, "/v1/sessions?number=1", b"{}", "4.00"),
        (PUT, "/v1/sessions?number=1", b'{"pageMode":"Vibe1"}', "4.00"),
        (POST, "/v1/sessions", b'{"number":1}', "4.09"),
        (POST, "/v1/sessions", b'{"label":"no number"}', "4.00"),
        (POST, "/v1/sessions", b'{"number":5000}', "4.00"),
        (POST, "/v1/sessions", b'{"number":5,"goalInSeconds":60}', "4.00"),
        (POST, "/v1/sessions", b'{"number":5,"partySize":"two"}', "4.00"),
        (POST, "/v1/sessions", b'{"number": 5}', "4.00"),
        (POST, "/v1/sessions", b'{\n  "number":5\n}', "4.00"),
        (POST, "/v1/sessions", b'{"number":5', "4.00"),
        (POST, "/v1/sessions", b"\xff\xfe", "4.00"),
        (POST, "/v1/sessions", b"", "4.00"),
        (POST, "/v1/settings", b'{"systemId":-1}', "4.00"),
        (POST, "/v1/settings", b'{"datetime":"yesterday"}', "4.00"),
        (POST, "/v1/page", b'{"pageMode":"Vibe1"}', "4.00"),
        (POST, "/v1/sessions/history", b"{}", "4.05"),
        (GET, "/v1/nothing", b"", "4.04"),
    ],
)
async def test_refusals_carry_a_json_error_body(method, path, payload, code):
    async with sim_and_client() as (sim, ctx, _):
        sim.create(1)
        before = (sim.model.sequence, sim.model.settings_json(), dict(sim.model.active))
        resp = await request(ctx, sim, method, path, payload)
        assert str(resp.code).split(" ")[0] == code
        body = doc(resp)
        assert body["responseTypes"] == ["error"] and body["error"]
        assert METADATA <= body.keys()
        assert (sim.model.sequence, sim.model.settings_json(), dict(sim.model.active)) == before


async def test_wrong_content_format_is_415():
    async with sim_and_client() as (sim, ctx, _):
        msg = aiocoap.Message(code=POST, uri=sim.uri + "/v1/sessions", payload=b'{"number":1}')
        msg.opt.content_format = 0  # text/plain
        resp = await asyncio.wait_for(ctx.request(msg).response, 3)
        assert resp.code == aiocoap.UNSUPPORTED_CONTENT_FORMAT


async def test_etag_gives_empty_valid_until_something_changes():
    async with sim_and_client() as (sim, ctx, _):
        sim.create(1, label="a")
        first = await request(ctx, sim, GET, "/v1/sessions")
        etag = first.opt.etag
        assert etag and first.code == aiocoap.CONTENT
        again = await request(ctx, sim, GET, "/v1/sessions", etag=etag)
        assert again.code == aiocoap.VALID and again.payload == b"" and again.opt.etag == etag
        sim.page(1)
        changed = await request(ctx, sim, GET, "/v1/sessions", etag=etag)
        assert changed.code == aiocoap.CONTENT and changed.opt.etag != etag
        assert doc(changed)["sessions"][0]["state"] == "paged"


async def test_block2_carries_300_sessions_with_utf8_labels():
    async with sim_and_client() as (sim, ctx, clock):
        names = ["Zoë", "Øyvind", "李娜", "José", "Nguyễn Thị Minh Khai 🎉", "", None]
        for n in range(1, 301):
            clock.advance(1)
            sim.create(n, label=names[n % len(names)], party_size=1 + n % 8)
        resp = await request(ctx, sim, GET, "/v1/sessions", timeout=10)
        assert len(resp.payload) > 50_000  # many blocks of 1024
        body = doc(resp)
        assert [s["number"] for s in body["sessions"]] == list(range(1, 301))
        assert body["sessions"][4]["label"] == names[5 % len(names)]
        assert body["statistics"]["numSessions"] == 300


async def test_well_known_core_lists_the_resources():
    async with sim_and_client() as (sim, ctx, _):
        resp = await request(ctx, sim, GET, "/.well-known/core")
        text = resp.payload.decode()
        for path in ("/v1/sessions", "/v1/sessions/history", "/v1/settings", "/v1/notify"):
            assert f"<{path}>" in text


async def test_port_zero_binds_a_free_port_and_a_busy_port_is_an_error():
    async with Simulator.running(port=0) as sim:
        assert sim.port > 0
        with pytest.raises(OSError):
            await Simulator.start(port=sim.port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        with pytest.raises(OSError):
            reserve_port("127.0.0.1", s.getsockname()[1])


async def test_silenced_requests_wait_until_resumed():
    async with sim_and_client() as (sim, ctx, _):
        sim.silence()
        pending = asyncio.ensure_future(request(ctx, sim, GET, "/v1/settings", timeout=5))
        await asyncio.sleep(0.3)
        assert not pending.done()
        sim.resume()
        resp = await pending
        assert resp.code == aiocoap.CONTENT


async def test_silence_for_a_while_then_answers_again():
    async with sim_and_client() as (sim, ctx, _):
        sim.silence(0.2)
        with pytest.raises(TimeoutError):
            await request(ctx, sim, GET, "/v1/settings", timeout=0.1)
        await asyncio.sleep(0.2)
        assert sim.awake
        resp = await request(ctx, sim, GET, "/v1/settings")
        assert resp.code == aiocoap.CONTENT


def _imports(module: str) -> set[str]:
    source = (Path(package.__file__).parent / f"{module}.py").read_text(encoding="utf-8")
    return {n.module for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom)}


@pytest.mark.parametrize("module", ["notify", "resources", "replies"])
def test_the_coap_face_knows_the_device_only_through_its_interface(module):
    imported = _imports(module)
    assert "agent.simulator.server" not in imported
    if module != "replies":
        assert "agent.simulator.device" in imported
