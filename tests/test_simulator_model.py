"""The simulator's pure model: lifecycle, sequence, statistics, ground truth, refusals."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from agent.clock import VirtualClock
from agent.simulator.jsonio import dumps, is_compact, loads_request
from agent.simulator.limits import MAX_LABEL_CHARS, UNSET_SEQUENCE, SimError
from agent.simulator.model import Transmitter

NY = ZoneInfo("America/New_York")
CHICAGO = ZoneInfo("America/Chicago")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def make(**kw) -> tuple[Transmitter, VirtualClock]:
    clock = VirtualClock(datetime(2018, 3, 15, 12, 44, 13, tzinfo=UTC))  # 08:44:13 in New York
    return Transmitter(clock, NY, **kw), clock


def test_lifecycle_started_paged_repaged_cleared():
    t, clock = make()
    [note] = t.create(4, label="Zoë", party_size=3)
    assert note["responseTypes"] == ["sessions", "statistics"]
    assert note["globalSessionSequence"] == 1
    assert {"timestamp", "deviceName", "firmwareVersion"} <= note.keys()
    [s] = note["sessions"]
    assert s["state"] == "started" and s["sessionSequence"] == 1
    assert s["created"] == s["started"] == "2018-03-15T08:44:13"
    assert s["goalInSeconds"] == 300 and s["partySize"] == 3 and s["label"] == "Zoë"
    assert "notified" not in s and "cleared" not in s
    assert UUID4.match(s["uuid"])

    clock.advance(300)
    [note] = t.page(4)
    assert note["sessions"][0]["state"] == "paged"
    assert note["sessions"][0]["notified"] == "2018-03-15T08:49:13"
    clock.advance(60)
    [note] = t.page(4, page_mode="Vibe1")
    assert note["sessions"][0]["notified"] == "2018-03-15T08:50:13"
    clock.advance(3 * 3600)
    [note] = t.clear(4)
    s = note["sessions"][0]
    assert s["state"] == "cleared" and s["cleared"] == "2018-03-15T11:50:13"
    assert "clearType" not in s  # only history tells STOP from REMOVED
    assert note["globalSessionSequence"] == 4 and s["sessionSequence"] == 4
    assert t.active == {}
    [item] = t.history_document()["session_history"]
    assert item["clearType"] == "STOP" and item["notified"] == "2018-03-15T08:50:13"


def test_remove_is_removed_in_history_and_ground_truth():
    t, clock = make()
    t.create(7, label=None)
    clock.advance(10)
    [note] = t.remove(7)
    assert note["sessions"][0]["state"] == "cleared"
    assert t.history_document()["session_history"][0]["clearType"] == "REMOVED"
    [gt] = t.ground_truth()
    assert gt["state"] == "removed" and gt["page_count"] == 0 and gt["notified"] is None


def test_update_keeps_state_and_can_null_the_label():
    t, clock = make()
    t.create(9, label="José", party_size=2)
    clock.advance(5)
    [note] = t.update(9, label=None, party_size=4)
    s = note["sessions"][0]
    assert s["label"] is None and s["partySize"] == 4 and s["state"] == "started"
    [note] = t.update(9, goal=900)
    assert note["sessions"][0]["goalInSeconds"] == 900 and note["sessions"][0]["label"] is None


def test_sequence_is_16_bit_and_wraps():
    t, _ = make(start_sequence=65534)
    assert t.create(1)[0]["globalSessionSequence"] == 65535
    assert t.page(1)[0]["globalSessionSequence"] == 0
    assert t.clear(1)[0]["globalSessionSequence"] == 1


def test_every_broadcast_bumps_the_sequence_once():
    t, _ = make()
    t.create(1)
    t.create(2)
    t.create(3)
    docs = t.clear_all()
    assert [d["globalSessionSequence"] for d in docs] == [4, 5, 6]
    assert [d["sessions"][0]["number"] for d in docs] == [1, 2, 3]
    [stats] = t.reset_statistics()
    assert stats["responseTypes"] == ["statistics"] and stats["globalSessionSequence"] == 7
    [settings] = t.set_settings(defaultTargetGoal=600)
    assert settings["responseTypes"] == ["settings"] and settings["globalSessionSequence"] == 8
    assert t.standalone_page(5, "Vibe1", "table ready", 0) == []
    assert t.sequence == 8


def test_restart_keeps_sessions_and_resets_sequence():
    t, _ = make()
    t.create(1)
    t.create(2)
    t.clear(2)
    t.restart(reset_sequence=True)
    assert t.sequence == 0 and list(t.active) == [1] and len(t.history) == 1
    t.create(3)
    assert t.sequence == 1
    t.restart(reset_sequence=False)
    assert t.sequence == 1


def test_statistics_on_time_late_and_average():
    t, clock = make()
    t.create(1, goal=300)
    t.create(2, goal=300)
    t.create(3, goal=300)
    clock.advance(200)
    t.page(1)  # on time, 200 s
    clock.advance(200)
    t.page(2)  # late, 400 s
    t.page(1)  # a re-page does not count again
    stats = t.statistics_document()["statistics"]
    assert stats == {
        "guestsServed": 2,
        "percentLate": 50,
        "percentOnTime": 50,
        "averageTimeServed": 300,
        "numSessions": 3,
    }
    t.reset_statistics()
    assert t.statistics_document()["statistics"]["numSessions"] == 0
    assert t.statistics_document()["statistics"]["percentOnTime"] == 0


def test_statistics_clear_mark_resets_daily():
    t, clock = make(statistics_clear_mark=12)
    t.create(1)
    assert t.statistics_json()["numSessions"] == 1
    clock.advance(4 * 3600)  # 08:44 → 12:44, past the mark
    assert t.statistics_json()["numSessions"] == 0


def test_settings_change_the_clock_and_default_goal():
    t, clock = make()
    t.set_settings(datetime="2018-03-15T09:00:00", defaultTargetGoal=420, systemId=3)
    assert t.settings_document()["settings"] == {
        "datetime": "2018-03-15T09:00:00",
        "systemId": 3,
        "defaultTargetGoal": 420,
        "statisticsClearMark": 24,
    }
    clock.advance(10)
    assert t.settings_json()["datetime"] == "2018-03-15T09:00:10"
    assert t.now() == datetime(2018, 3, 15, 13, 0, 10, tzinfo=UTC)
    assert t.create(1)[0]["sessions"][0]["goalInSeconds"] == 420


@pytest.mark.parametrize(
    "call, code",
    [
        (lambda t: t.page(99), "4.04"),
        (lambda t: t.update(99, goal=5), "4.04"),
        (lambda t: t.clear(99), "4.04"),
        (lambda t: t.remove(99), "4.04"),
        (lambda t: t.sessions_document(99), "4.04"),
        (lambda t: t.create(1), "4.09"),
        (lambda t: t.create(4096), "4.00"),
        (lambda t: t.create(-1), "4.00"),
        (lambda t: t.create(True), "4.00"),
        (lambda t: t.create(2, goal=0), "4.00"),
        (lambda t: t.create(2, goal="300"), "4.00"),
        (lambda t: t.create(2, party_size=0), "4.00"),
        (lambda t: t.create(2, label=5), "4.00"),
        (lambda t: t.create(2, label="x" * (MAX_LABEL_CHARS + 1)), "4.00"),
        (lambda t: t.create(2, label="a\nb"), "4.00"),
        (lambda t: t.update(1), "4.00"),
        (lambda t: t.page(1, page_mode=""), "4.00"),
        (lambda t: t.set_settings(colour="red"), "4.00"),
        (lambda t: t.set_settings(), "4.00"),
        (lambda t: t.set_settings(datetime="15/03/2018"), "4.00"),
        (lambda t: t.set_settings(datetime="9999-12-31T23:59:59"), "4.00"),  # past datetime.max
        (lambda t: t.set_settings(statisticsClearMark=25), "4.00"),
        (lambda t: t.standalone_page(5000), "4.00"),
    ],
)
def test_refusals(call, code):
    t, _ = make()
    t.create(1)
    before = (t.sequence, dict(t.active), t.settings_json())
    with pytest.raises(SimError) as exc:
        call(t)
    assert exc.value.code == code
    assert (t.sequence, dict(t.active), t.settings_json()) == before  # nothing changed


def test_number_range_edges_are_accepted():
    t, _ = make()
    t.create(0)
    t.create(4095)
    assert sorted(t.active) == [0, 4095]


def test_get_documents_shape():
    t, clock = make()
    t.create(11)
    clock.advance(300)
    t.page(11)
    one = t.sessions_document(11)
    assert one["responseTypes"] == ["sessions"]
    assert one["sessions"][0]["sessionSequence"] == UNSET_SEQUENCE
    assert list(one) == [
        "responseTypes",
        "globalSessionSequence",
        "timestamp",
        "deviceName",
        "firmwareVersion",
        "sessions",
    ]
    assert list(one["sessions"][0]) == [
        "id",
        "sessionSequence",
        "uuid",
        "number",
        "partySize",
        "goalInSeconds",
        "created",
        "started",
        "notified",
        "label",
        "state",
    ]
    every = t.sessions_document()
    assert every["responseTypes"] == ["sessions", "statistics"] and "statistics" in every
    assert t.ping_document()["responseTypes"] == ["ping"]
    assert t.metadata_document()["responseTypes"] == []
    assert t.error_document("nope")["error"] == "nope"
    assert t.settings_document()["deviceName"] == "T7470"
    assert t.settings_document()["firmwareVersion"] == "8.4.100.43"


def test_vendor_exact_flags():
    t, _ = make(vendor_exact_notifications=True, vendor_exact_history=True)
    [note] = t.create(1)
    assert list(note) == ["responseTypes", "globalSessionSequence", "statistics", "sessions"]
    [settings] = t.set_settings(systemId=1)
    assert "timestamp" not in settings
    t.clear(1)
    item = t.history_document()["session_history"][0]
    assert "partySize" not in item and "state" not in item and item["clearType"] == "STOP"
    # GET documents always carry the metadata.
    assert "timestamp" in t.sessions_document()


def test_ground_truth_shape_order_and_utc():
    t, clock = make()  # 08:44:13 in New York in March 2018 (EDT, UTC-4)
    t.create(5, label="李娜", party_size=2, goal=600)
    clock.advance(1)
    t.create(6, label="")
    clock.advance(100)
    t.page(5)
    clock.advance(100)
    t.page(5)
    t.clear(6)
    gt = t.ground_truth()
    assert [r["number"] for r in gt] == [5, 6]
    assert gt[0] == {
        "uuid": gt[0]["uuid"],
        "number": 5,
        "label": "李娜",
        "party_size": 2,
        "goal_seconds": 600,
        "created": "2018-03-15T12:44:13Z",
        "notified": "2018-03-15T12:47:34Z",
        "cleared": None,
        "state": "paged",
        "page_count": 2,
        "first_notified": "2018-03-15T12:45:54Z",  # the first page; `notified` is the latest
        "wait_seconds": 101,
        "reopened_from": None,
    }
    assert gt[1]["state"] == "cleared" and gt[1]["cleared"] == "2018-03-15T12:47:34Z"
    assert gt[1]["label"] == ""


def test_autumn_change_repeated_hour_keeps_true_order():
    """Chicago, 1 November 2026: 01:00–02:00 happens twice (CDT, then CST from 07:00 UTC)."""
    clock = VirtualClock(datetime(2026, 11, 1, 6, 30, tzinfo=UTC))  # 01:30 CDT, first pass
    t = Transmitter(clock, CHICAGO)
    [note] = t.create(1, goal=600)
    assert note["sessions"][0]["created"] == "2026-11-01T01:30:00"
    clock.advance(35 * 60)  # 07:05 UTC: 01:05 CST, the second pass
    [note] = t.create(2)
    assert note["sessions"][0]["created"] == "2026-11-01T01:05:00"
    [note] = t.page(1)
    assert note["timestamp"] == "2026-11-01T01:05:00"
    # on the wire, paged at an earlier wall time than it was created
    assert note["sessions"][0]["notified"] == "2026-11-01T01:05:00"
    clock.advance(20 * 60)  # 07:25 UTC: 01:25 CST
    t.clear(1)
    [item] = t.history_document()["session_history"]
    assert (item["created"], item["notified"], item["cleared"]) == (
        "2026-11-01T01:30:00",
        "2026-11-01T01:05:00",
        "2026-11-01T01:25:00",
    )
    # 35 minutes waited, not minus 25: the party was paged late (goal 10 min)
    stats = t.statistics_json()
    assert stats["averageTimeServed"] == 35 * 60 and stats["percentLate"] == 100

    first, second = t.ground_truth()  # in true order: the 01:30 CDT party came first
    assert first["number"] == 1 and second["number"] == 2
    assert first["created"] == "2026-11-01T06:30:00Z"
    assert first["notified"] == "2026-11-01T07:05:00Z"
    assert first["cleared"] == "2026-11-01T07:25:00Z"
    assert first["created"] < first["notified"] < first["cleared"]
    assert second["created"] == "2026-11-01T07:05:00Z"


def test_spring_change_skips_an_hour_of_wall_time():
    """Chicago, 8 March 2026: at 08:00 UTC the wall clock jumps from 02:00 CST to 03:00 CDT."""
    clock = VirtualClock(datetime(2026, 3, 8, 7, 59, 30, tzinfo=UTC))  # 01:59:30 CST
    t = Transmitter(clock, CHICAGO)
    [note] = t.create(3, goal=60)
    assert note["sessions"][0]["created"] == "2026-03-08T01:59:30"
    clock.advance(45)
    [note] = t.page(3)
    assert note["sessions"][0]["notified"] == "2026-03-08T03:00:15"
    assert t.settings_json()["datetime"] == "2026-03-08T03:00:15"
    stats = t.statistics_json()
    assert stats["averageTimeServed"] == 45 and stats["percentLate"] == 0  # 45 s, not 3645
    [gt] = t.ground_truth()
    assert (gt["created"], gt["notified"]) == ("2026-03-08T07:59:30Z", "2026-03-08T08:00:15Z")


def test_ground_truth_is_what_the_device_clock_saw_after_it_was_set():
    t, _ = make()  # 08:44:13 EDT
    t.set_settings(datetime="2018-03-15T09:44:13")  # an hour fast
    [note] = t.create(1)
    assert note["sessions"][0]["created"] == "2018-03-15T09:44:13"
    [gt] = t.ground_truth()
    assert gt["created"] == "2018-03-15T13:44:13Z"  # what the device said, in UTC


def test_uuids_are_reproducible_per_seed():
    def uuids(seed):
        t, _ = make(seed=seed)
        for n in range(1, 6):
            t.create(n)
        return [r["uuid"] for r in t.ground_truth()]

    assert uuids(1) == uuids(1)
    assert uuids(1) != uuids(2)
    assert len(set(uuids(1))) == 5


def test_single_session_notification_always_fits_one_block():
    t, _ = make(start_sequence=65000)
    worst = '"\\' * (MAX_LABEL_CHARS // 2)  # both need escaping
    t.create(4095, label="🎉" * MAX_LABEL_CHARS, party_size=99, goal=86400)
    t.page(4095)
    [note] = t.clear(4095)
    assert len(dumps(note)) <= 1024
    t.create(4094, label=worst)
    assert len(dumps(t.sessions_notification(t.active[4094]))) <= 1024


@pytest.mark.parametrize(
    "payload, ok",
    [
        (b'{"number":5,"label":"a b\\" c"}', True),
        (b'{"number": 5}', False),
        (b'{\n"number":5}', False),
        (b'{"number":5}\n', False),
        (b'\t{"number":5}', False),
        (b'{"number":5,"number":6}', False),
        (b'{"number":NaN}', False),
        (b"[1,2]", False),
        (b"", False),
        (b"\xff\xfe", False),
        (b'{"number":5', False),
    ],
)
def test_request_bodies_must_be_compact_json(payload, ok):
    if ok:
        assert loads_request(payload)["number"] == 5
    else:
        with pytest.raises(SimError) as exc:
            loads_request(payload)
        assert exc.value.code == "4.00"


def test_compact_scanner_ignores_whitespace_inside_strings():
    assert is_compact('{"a":"x y\\"z w","b":[1,2]}')
    assert not is_compact('{"a":"x" ,"b":1}')
