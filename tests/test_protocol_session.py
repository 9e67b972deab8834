"""The session parser on anything a LAN can send: a record, or a ValueError naming the key — never
another exception — and timestamps (cached) checked the same way in items and documents."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.controller import protocol
from agent.controller.protocol import parse_document, parse_session

KEYS = (
    "uuid", "number", "id", "partySize", "goalInSeconds", "label", "created", "started",
    "notified", "cleared", "state", "clearType", "sessionSequence",
)  # fmt: skip
TIMES = st.sampled_from(
    [
        "2026-11-20T18:04:05", "2018-03-15T08:44:39", "2026-11-01T01:30:00", "1969-12-31T23:59:59",
        "2201-01-01T00:00:00", "2026-11-20T18:04:05+01:00", "2026-11-20 18:04:05", "yesterday",
        "", "2026-02-30T00:00:00",
    ]
)  # fmt: skip
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.integers(min_value=-2, max_value=70_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([3.0, 65535.0, 1e20, -0.0]),
    st.text(max_size=70),
    st.sampled_from(["started", "paged", "cleared", "STOP", "REMOVED", "  ", "x" * 65]),
    TIMES,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
)
PLAIN: dict[str, Any] = {
    "uuid": st.uuids().map(str),
    "number": st.integers(min_value=0, max_value=65535),
    "id": st.integers(min_value=0, max_value=1 << 40),
    "partySize": st.integers(min_value=0, max_value=10_000),
    "goalInSeconds": st.integers(min_value=0, max_value=1 << 31),
    "label": st.one_of(st.none(), st.text(max_size=64)),
    "created": TIMES,
    "started": TIMES,
    "notified": TIMES,
    "cleared": TIMES,
    "state": st.sampled_from(["started", "paged", "cleared"]),
    "clearType": st.sampled_from(["STOP", "REMOVED"]),
    "sessionSequence": st.integers(min_value=0, max_value=(1 << 32) - 1),
}


@st.composite
def items(draw: st.DrawFn) -> Any:
    """Mostly plain items with a few keys missing or odd, sometimes not an object at all."""
    if draw(st.integers(0, 20)) == 0:
        return draw(ODD)
    raw: dict[str, Any] = {}
    for key in KEYS:
        kind = draw(st.integers(0, 9))
        if kind == 0:
            continue  # missing
        raw[key] = draw(ODD) if kind == 1 else draw(PLAIN[key])
    return raw


@settings(max_examples=1500, deadline=None)
@given(items(), st.booleans())
def test_any_item_gives_a_record_or_a_value_error_naming_its_key(raw: Any, history: bool) -> None:
    try:
        record = parse_session(raw, history=history)
    except ValueError as exc:
        assert str(exc).split(":")[0] in (*KEYS, "session", "uuid", "clearType")
    else:
        assert isinstance(record, protocol.SessionRecord)
        assert 0 <= record.number <= protocol.MAX_PAGER_NUMBER


def test_a_plain_item_and_the_readings_of_odd_ones() -> None:
    plain = {
        "id": 7, "sessionSequence": 3, "uuid": "u-1", "number": 12, "partySize": 2,
        "goalInSeconds": 300, "created": "2026-11-20T18:04:05", "started": "2026-11-20T18:04:05",
        "label": "Zoë", "state": "started",
    }  # fmt: skip
    record = parse_session(plain)
    assert (record.number, record.party_size, record.label) == (12, 2, "Zoë")
    assert record.created is not None and record.created.hour == 18
    assert parse_session({**plain, "number": 12.0}).number == 12  # a whole float reads as such
    with pytest.raises(ValueError, match="number"):
        parse_session({**plain, "number": True})
    with pytest.raises(ValueError, match="clearType"):
        parse_session(plain, history=True)  # history items need a clearType


def test_document_timestamps_take_the_same_checks() -> None:
    doc = parse_document(b'{"responseTypes":["ping"],"timestamp":"2026-11-20T18:04:05"}')
    assert doc.meta.timestamp is not None and doc.meta.timestamp.hour == 18
    for bad, reason in ((b'"1969-01-01T00:00:00"', "implausible"), (b"5", "expected a timestamp")):
        try:
            parse_document(b'{"responseTypes":["ping"],"timestamp":' + bad + b"}")
        except protocol.ProtocolError as exc:
            assert reason in str(exc)
        else:
            raise AssertionError("accepted a bad timestamp")


def test_what_orjson_refuses_still_meets_the_item_checks() -> None:
    """The compiled decoder refuses NaN, overflowing numbers and lone surrogates; the document is
    then read by the standard library, so it meets the same checks as before orjson: a bad value
    rejects its item by name and the rest of the document is kept — never "not JSON"."""
    import orjson

    from agent.controller.protocol import ProtocolError

    item = (
        '{"uuid":"u1","transmitterId":1,"number":5,"state":"started","partySize":%s,"label":"%s"}'
    )
    doc = '{"responseTypes":["sessions"],"globalSessionSequence":%s,"sessions":[%s,%s]}'
    good = item % ("2", "Ana")
    cases = (
        ("NaN", "x", ["u1"], ("sessions[0]: partySize: expected a whole number, got nan",)),
        ("1e999", "y", ["u1"], ("sessions[0]: partySize: expected a whole number, got inf",)),
        ("2", "\\ud800x", ["u0", "u1"], ()),  # kept as the transmitter said it (the record)
    )
    for seq, (bad_value, label, kept, rejected) in enumerate(cases):
        text = doc % (seq, item.replace("u1", "u0") % (bad_value, label), good)
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(text)
        parsed = parse_document(text.encode())
        assert [r.uuid for r in parsed.sessions or ()] == kept
        assert parsed.rejected == rejected and parsed.meta.sequence == seq
    with pytest.raises(ProtocolError, match="globalSessionSequence: out of range"):
        parse_document((doc % ("1" + "0" * 30, good, good)).encode())
