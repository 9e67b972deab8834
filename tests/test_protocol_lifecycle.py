"""Pure parsing and folding, on the vendor's own example payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent.clock import to_utc
from agent.controller.protocol import (
    ProtocolError,
    compact,
    parse_document,
    sequence_delta,
    session_body,
)
from agent.lifecycle import fold

FIXTURES = Path(__file__).parent / "fixtures"
NY = ZoneInfo("America/New_York")
OBS = "2018-03-15T16:00:00Z"

NOTIFICATION = (
    b'{"responseTypes":["sessions","statistics"],"globalSessionSequence":121,'
    b'"statistics":{"guestsServed":41,"percentLate":0,"percentOnTime":100,"averageTimeServed":280,"numSessions":42},'
    b'"sessions":[{"id":49,"sessionSequence":121,"uuid":"3d8b1201-1ba9-454b-94a1-912df95f2d0b","number":83,'
    b'"partySize":1,"goalInSeconds":300,"created":"2018-03-15T15:42:37","started":"2018-03-15T15:42:37",'
    b'"label":null,"state":"started"}]}'
)
HISTORY = (
    b'{"responseTypes":["session_history"],"globalSessionSequence":116,"timestamp":"2018-03-15T11:45:29",'
    b'"deviceName":"T7470","firmwareVersion":"8.4.100.43",'
    b'"session_history":[{"id":11,"uuid":"15e958b7-bc83-4dd1-b4ae-d2bc27f39b3e","number":4,"goalInSeconds":300,'
    b'"created":"2018-03-15T08:44:13","started":"2018-03-15T08:44:13","notified":"2018-03-15T08:49:13",'
    b'"cleared":"2018-03-15T11:45:18","label":null,"clearType":"STOP"}]}'
)


def test_vendor_single_session_page_parses():
    doc = parse_document((FIXTURES / "t7470_single_session.json").read_bytes())
    assert doc.meta.sequence == 116 and doc.meta.firmware == "8.4.100.43"
    (s,) = doc.sessions
    assert s.uuid == "b4366f13-193f-4c93-bd6b-8f4d05a6ce37"
    assert s.number == 11 and s.state == "paged" and s.session_sequence == 65535
    assert s.notified == datetime(2018, 3, 15, 8, 49, 39)


def test_vendor_notification_without_metadata_parses():
    doc = parse_document(NOTIFICATION)
    assert doc.meta.timestamp is None and doc.meta.firmware is None
    assert doc.statistics["numSessions"] == 42
    assert doc.sessions[0].label is None


def test_history_item_without_party_size_or_state():
    doc = parse_document(HISTORY)
    (h,) = doc.history
    assert h.clear_type == "STOP" and h.party_size is None and h.state is None and h.ended


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"{not json", "not JSON"),
        (b"[1,2]", "JSON object"),
        (b'{"sessions":[]}', "responseTypes"),
        (b'{"responseTypes":"sessions"}', "responseTypes"),
        (b'{"responseTypes":["sessions"]}', "missing"),
        (b'{"responseTypes":["sessions"],"sessions":{}}', "array"),
        (b'{"responseTypes":["ping"],"globalSessionSequence":"x"}', "globalSessionSequence"),
        (b'{"responseTypes":["ping"],"globalSessionSequence":5000000000}', "out of range"),
        (b'{"responseTypes":["ping"],"timestamp":"yesterday"}', "timestamp"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_malformed_documents_raise_protocol_error(payload, reason):
    with pytest.raises(ProtocolError, match=reason):
        parse_document(payload)


def test_oversized_payload_rejected_before_parsing():
    with pytest.raises(ProtocolError, match="exceeds"):
        parse_document(b" " * 1001, max_bytes=1000)


def test_bad_items_are_rejected_individually():
    payload = json.dumps(
        {
            "responseTypes": ["sessions"],
            "sessions": [
                {"uuid": "a", "number": 1, "state": "started"},
                {"uuid": 5, "number": 2},
                {"uuid": "c", "number": "x"},
                {"uuid": "d", "number": 3, "state": "exploded"},
            ],
        }
    ).encode()
    doc = parse_document(payload)
    assert [s.uuid for s in doc.sessions] == ["a"]
    assert len(doc.rejected) == 3


def test_sequence_delta_is_wrap_safe():
    assert sequence_delta(10, 11) == 1
    assert sequence_delta(65535, 0) == 1
    assert sequence_delta(65530, 3) == 9
    assert sequence_delta(3, 65530) == -9
    assert sequence_delta(500, 0) == -500


def test_requests_are_compact_json():
    body = session_body(number=7, goal=600, label="Zoë party", party_size=4)
    assert b" " not in body.replace("Zoë party".encode(), b"")
    assert json.loads(body) == {"number": 7, "goal": 600, "label": "Zoë party", "partySize": 4}
    assert compact({"a": [1, 2]}) == b'{"a":[1,2]}'


def test_timezone_conversion_handles_dst():
    assert to_utc(datetime(2018, 3, 15, 8, 44, 39), NY) == datetime(
        2018, 3, 15, 12, 44, 39, tzinfo=UTC
    )
    assert to_utc(datetime(2018, 1, 15, 8, 44, 39), NY) == datetime(
        2018, 1, 15, 13, 44, 39, tzinfo=UTC
    )


# --- folding ----------------------------------------------------------------------------------


def _fold(known, payload, key="sessions"):
    doc = parse_document(payload)
    (rec,) = getattr(doc, "history" if key == "session_history" else "sessions")
    return fold(known, rec, zone=NY, doc_time=doc.meta.timestamp, observed_at=OBS)


def _session(state="started", notified=None, label=None, party=1, goal=300, cleared=None):
    s = {
        "id": 49,
        "uuid": "3d8b1201-1ba9-454b-94a1-912df95f2d0b",
        "number": 83,
        "partySize": party,
        "goalInSeconds": goal,
        "created": "2018-03-15T15:42:37",
        "label": label,
        "state": state,
    }
    if notified:
        s["notified"] = notified
    if cleared:
        s["cleared"] = cleared
    return json.dumps({"responseTypes": ["sessions"], "sessions": [s]}).encode()


def test_first_sight_creates_and_replay_is_idempotent():
    r = _fold(None, NOTIFICATION)
    assert [e.kind for e in r.events] == ["created"]
    assert r.events[0].at == "2018-03-15T19:42:37Z"
    assert r.view.state == "waiting" and r.view.created == "2018-03-15T19:42:37Z"
    again = _fold(r.view, NOTIFICATION)
    assert again.events == () and again.view == r.view


def test_page_repage_update_and_end_as_removed():
    v = _fold(None, _session()).view
    r = _fold(v, _session("paged", notified="2018-03-15T15:47:37"))
    assert [e.kind for e in r.events] == ["paged"] and r.view.page_count == 1
    r2 = _fold(r.view, _session("paged", notified="2018-03-15T15:49:00", label="Zoë", party=3))
    assert [e.kind for e in r2.events] == ["updated", "paged"]
    assert r2.events[0].changes == {"label": "Zoë", "party_size": 3}
    assert r2.view.page_count == 2 and r2.view.first_notified == "2018-03-15T19:47:37Z"
    ended = _fold(
        r2.view, _session("cleared", notified="2018-03-15T15:49:00", label="Zoë", party=3)
    )
    assert ended.events == () and ended.needs_history
    hist = json.dumps(
        {
            "responseTypes": ["session_history"],
            "session_history": [
                {
                    "uuid": "3d8b1201-1ba9-454b-94a1-912df95f2d0b",
                    "number": 83,
                    "goalInSeconds": 300,
                    "created": "2018-03-15T15:42:37",
                    "notified": "2018-03-15T15:49:00",
                    "cleared": "2018-03-15T15:55:00",
                    "label": "Zoë",
                    "clearType": "REMOVED",
                }
            ],
        }
    ).encode()
    final = _fold(ended.view, hist, key="session_history")
    assert [e.kind for e in final.events] == ["removed"]
    assert final.view.state == "removed" and final.view.cleared == "2018-03-15T19:55:00Z"
    assert final.view.party_size == 3  # history omits partySize: not a change
    assert _fold(final.view, hist, key="session_history").events == ()


def test_unknown_session_seen_only_in_history_gets_full_lifecycle():
    r = _fold(None, HISTORY, key="session_history")
    assert [e.kind for e in r.events] == ["created", "paged", "cleared"]
    assert r.view.state == "cleared" and r.view.page_count == 1


def test_stale_older_page_time_is_not_a_repage():
    v = _fold(None, _session("paged", notified="2018-03-15T15:49:00")).view
    assert _fold(v, _session("paged", notified="2018-03-15T15:47:00")).events == ()
