"""The sync wire format: pure encoding, decoding, determinism, schema, and the byte target."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from agent.clock import epoch_of_iso as parse_time
from agent.sync import wire
from agent.sync.wire import BatchEncoder, WireError, decode_body, encode_batch
from pager_edge.bench.sync import evening

SITE = "site-7"


def store_events(n_sessions: int = 40, *, realistic: bool = True) -> list[dict]:
    """The dicts ``Store.iter_events`` yields, without a store."""
    out = []
    for seq, (ev, observed, source) in enumerate(evening(n_sessions, realistic=realistic), 1):
        out.append(
            {
                "seq": seq,
                "uuid": ev.uuid,
                "number": ev.number,
                "kind": ev.kind,
                "at": ev.at,
                "observed_at": observed,
                "changes": dict(ev.changes),
                "source": source,
            }
        )
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


def test_odd_values_survive_literally():
    events = [
        {"seq": 10, "uuid": "u-1", "number": 3, "kind": "created", "at": "2026-01-01T10:00:00Z",
         "observed_at": "", "changes": {"label": "Zoë «VIP»"}, "source": "notify"},
        {"seq": 14, "uuid": "u-1", "number": 3, "kind": "relabelled", "at": "2026-01-01T10:00:00.5Z",
         "observed_at": "2026-01-01T09:59:00Z", "changes": {}, "source": ""},
        {"seq": 15, "uuid": "u-2", "number": 3, "kind": "paged", "at": "2026-01-01T09:00:00Z",
         "observed_at": "2026-02-30T00:00:00Z", "changes": {"page": 1}, "source": "history"},
    ]  # fmt: skip
    key, body = encode_batch(SITE, "x", events)
    assert key == f"{SITE}:10-15"
    got = decode_body(body)["events"]
    for e in got:
        e.pop("id")
    assert got == events
    doc = json.loads(gzip.decompress(body))
    assert "relabelled" in doc["kinds"][5:]  # a kind the format did not know is appended


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


def test_body_follows_the_published_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(wire.__file__).parent / "wire-schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    enc = BatchEncoder(SITE, "0.1.0")
    for ev in store_events(30):
        enc.add(ev)
    jsonschema.validate(enc.document(), schema)


@pytest.mark.parametrize("batch", [50, 200, 500])
def test_body_bytes_per_lifecycle_leave_room_for_headers(batch):
    """The gzip body alone stays well under the 150 B per lifecycle target (headers: bench)."""
    events = store_events(600, realistic=False)
    total = sum(
        len(encode_batch(SITE, "0.1.0", events[i : i + batch])[1])
        for i in range(0, len(events), batch)
    )
    assert total / 600 < 110
