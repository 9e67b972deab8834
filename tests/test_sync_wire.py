"""The sync wire format: pure encoding, decoding, determinism, schema, and the byte target."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from agent.clock import epoch_of_iso as parse_time
from agent.sync import wire
from agent.sync.wire import BatchEncoder, WireError, decode_body, encode_batch
from bench.sync import evening

SITE = "site-7"


def store_events(n_sessions: int = 40, *, realistic: bool = True) -> list[dict]:
    """The dicts ``Store.iter_events`` yields, without a store."""
    out = []
    for seq, (ev, observed, source) in enumerate(evening(n_sessions, realistic=realistic), 1):
        out.append(ev.record(seq, observed, source))
    return out


def test_round_trip_is_lossless_and_bytes_are_deterministic():
    events = store_events()
    key, body = encode_batch(SITE, "1.2.3", events)
    assert key == f"{SITE}:1-{len(events)}"
    assert encode_batch(SITE, "1.2.3", events) == (key, body)  # same events → same bytes
    assert body[4:8] == b"\0\0\0\0"  # gzip mtime is zero
    doc = decode_body(body)
    assert (doc["site"], doc["first"], doc["last"]) == (SITE, 1, len(events))
    got = doc["events"]
    assert [e.pop("id") for e in got] == [f"{SITE}:{e['seq']}" for e in events]
    assert got == events


ODD_EVENTS = [
    {"seq": 10, "uuid": "u-1", "number": 3, "kind": "created", "at": "2026-01-01T10:00:00Z",
     "observed_at": "", "changes": {"label": "Zoë «VIP»"}, "source": "notify"},
    {"seq": 14, "uuid": "u-1", "number": 3, "kind": "relabelled", "at": "2026-01-01T10:00:00.5Z",
     "observed_at": "2026-01-01T09:59:00Z", "changes": {}, "source": ""},
    {"seq": 15, "uuid": "u-2", "number": 3, "kind": "paged", "at": "2026-01-01T09:00:00Z",
     "observed_at": "2026-02-30T00:00:00Z", "changes": {"page": 1}, "source": "history"},
    {"seq": 16, "uuid": "u-2", "number": 3, "kind": "lost", "at": "2026-01-01T09:30:00Z",
     "observed_at": "2026-01-01T09:30:00Z", "changes": {}, "source": "snapshot"},
    {"seq": 17, "uuid": "u-2", "number": 3, "kind": "updated", "at": "2026-01-01T09:31:00Z",
     "observed_at": "2026-01-01T09:31:00Z", "source": "notify",
     "changes": {"7": 1, "=x": 2, "party_size": 4, "extra": None}},
]  # fmt: skip


@pytest.mark.parametrize("version", [1, 2])
def test_odd_values_survive_literally(version):
    key, body = encode_batch(SITE, "x", ODD_EVENTS, version=version)
    assert key == f"{SITE}:10-17"
    got = decode_body(body)["events"]
    for e in got:
        e.pop("id")
    assert got == ODD_EVENTS
    doc = json.loads(gzip.decompress(body))
    if version == 1:  # a kind the format did not know is appended to the batch's own table
        assert doc["kinds"][5:] == ["relabelled", "lost"]
    else:  # the fixed table has `lost`; a kind it lacks travels as its name
        assert [row[2] for row in doc["events"]] == [0, "relabelled", 2, 5, 1]
        assert doc["events"][3][6] == "snapshot" and doc["events"][1][6] == ""
        # changes keys the format knows go as their index; the others escaped where needed
        assert doc["events"][4][5] == {"=7": 1, "==x": 2, "1": 4, "extra": None}


def test_parse_time_only_takes_the_store_form():
    assert parse_time("2026-11-22T18:04:05Z") == 1795370645
    for bad in (
        "",
        None,
        "2026-11-22 18:04:05",
        "2026-11-22T18:04:05+00:00",
        "2026-13-01T00:00:00Z",
    ):
        assert parse_time(bad) is None


def test_receiver_side_rejects_garbage():
    with pytest.raises(WireError):
        decode_body(b"not gzip")
    with pytest.raises(WireError):
        decode_body(gzip.compress(b'{"format": "other"}'))
    enc = BatchEncoder(SITE, "x")
    for ev in store_events(3):
        enc.add(ev)
    doc = enc.document()
    doc["events"][0][1] = 99  # a session index out of range
    with pytest.raises(WireError):
        decode_body(json.dumps(doc).encode(), gzipped=False)
    with pytest.raises(ValueError):
        enc.add(store_events(1)[0])  # rowids must ascend


def test_every_body_follows_the_published_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(wire.__file__).parent / "wire-schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    docs = {}
    for version in (1, 2):
        enc = BatchEncoder(SITE, "0.1.0", version=version)
        for ev in store_events(30):
            enc.add(ev)
        docs[version] = enc.document()
        jsonschema.validate(docs[version], schema)
        odd = json.loads(gzip.decompress(encode_batch(SITE, "x", ODD_EVENTS, version=version)[1]))
        jsonschema.validate(odd, schema)
    beat = json.loads(gzip.decompress(wire.heartbeat_body(SITE, "0.2.0", 1795370645, 3)))
    jsonschema.validate(beat, schema)
    # each is exactly one of the three shapes, and a broken one is none of them
    assert "fields" not in docs[2] and "agent" not in docs[2] and isinstance(docs[2]["t0"], int)
    for bad in ({**docs[2], "t0": "2026-11-22T18:04:05Z"}, {**beat, "pending": -1},
                {k: v for k, v in docs[1].items() if k != "fields"}):  # fmt: skip
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


@pytest.mark.parametrize("batch", [50, 200, 500])
def test_body_bytes_per_lifecycle_leave_room_for_headers(batch):
    """The gzip body alone stays well under the 150 B per lifecycle target (headers: bench)."""
    events = store_events(600, realistic=False)
    total = sum(
        len(encode_batch(SITE, "0.1.0", events[i : i + batch])[1])
        for i in range(0, len(events), batch)
    )
    assert total / 600 < 110


def test_v2_round_trip_has_no_static_head_and_v1_is_still_decoded():
    events = store_events()
    key2, body2 = encode_batch(SITE, "1.2.3", events)
    key1, body1 = encode_batch(SITE, "1.2.3", events, version=1)
    assert key1 == key2 and body1 != body2
    assert encode_batch(SITE, "another agent", events) == (key2, body2)  # v2 bytes: site + events
    v1, v2 = decode_body(body1), decode_body(body2)
    assert (v1["format"], v1["agent"], v2["format"], v2["agent"]) == (
        "pager-edge-sync/1",
        "1.2.3",
        "pager-edge-sync/2",
        None,
    )
    assert v1["events"] == v2["events"] and v2["heartbeat"] is None
    assert [e.pop("id") for e in v2["events"]] == [f"{SITE}:{e['seq']}" for e in events]
    assert v2["events"] == events
    doc = json.loads(gzip.decompress(body2))
    assert set(doc) == {"v", "site", "first", "t0", "sessions", "events"}
    # trailing defaults left out: a seating with no changes from `notify` is five cells
    rows = zip(doc["events"], events, strict=True)
    cleared = [r for r, e in rows if e["kind"] == "cleared" and e["source"] == "notify"]
    assert cleared and all(len(r) == 5 for r in cleared)
    assert len(body2) < len(body1) - 150


def test_session_ids_compact_only_when_canonical_uuids():
    canonical = "0c5c7fd0-a6a3-4450-a513-270e269e0d37"
    for sid in (canonical, canonical.upper(), "=odd", "==", "s1", "", "x" * 22):
        cell = wire.compact_session(sid)
        assert wire.expand_session(cell) == sid
    assert len(wire.compact_session(canonical)) == 23
    assert wire.compact_session(canonical.upper()) == canonical.upper()  # not canonical: literal


def test_heartbeat_round_trip_and_rejects():
    beat = decode_body(wire.heartbeat_body(SITE, "0.2.0", 1795370645, 12))
    assert beat == {
        "format": "pager-edge-sync/2", "site": SITE, "agent": "0.2.0", "first": None,
        "last": None, "events": [], "heartbeat": {"at": "2026-11-22T18:04:05Z", "pending": 12},
    }  # fmt: skip
    for bad in ({"site": ""}, {"agent": 2}, {"heartbeat": "now"}, {"pending": -1},
                {"heartbeat": 10**30}):  # fmt: skip
        doc = {"v": 2, "site": SITE, "agent": "a", "heartbeat": 1,
               "pending": 0, **bad}  # fmt: skip
        with pytest.raises(WireError):
            decode_body(json.dumps(doc).encode(), gzipped=False)


def test_v2_receiver_side_rejects_garbage():
    enc = BatchEncoder(SITE)
    for ev in store_events(3):
        enc.add(ev)
    good = enc.document()
    for mutate in (
        lambda d: d["events"][0].__setitem__(2, 9),  # kind index past the table
        lambda d: d["events"][0].__setitem__(2, -1),
        lambda d: d["events"][0].__setitem__(slice(5, None), [None, 3]),  # source past the table
        lambda d: d["events"].__setitem__(0, d["events"][0][:4]),  # row too short
        lambda d: d.__setitem__("t0", "2026-11-22T18:04:05Z"),  # v1's t0 form
        lambda d: d["events"][0].__setitem__(3, 10**30),  # a time no clock shows
        lambda d: d["sessions"][0].__setitem__(0, "=tooshort"),  # neither a UUID nor escaped
    ):
        doc = json.loads(json.dumps(good))
        mutate(doc)
        with pytest.raises(WireError):
            decode_body(json.dumps(doc).encode(), gzipped=False)
