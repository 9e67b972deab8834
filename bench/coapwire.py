"""Just enough CoAP (RFC 7252, 7641 Observe, 7959 Block2) to play a transmitter from a plain socket.

The ingest benchmark's producer must cost far less per notification than the consumer it feeds,
so it sends bytes it prepared beforehand instead of running a CoAP stack. A notification is
`header + token + Observe option + tail`, where the tail (Content-Format, payload marker, the
document) is encoded once per notification when the run is prepared; only the message ID, the
token and the Observe number are filled in when it is sent. Requests (the registration, the
agent's resync GETs and their Block2 follow-ups) are decoded here too. aiocoap's own
``Message.decode`` reads everything this module writes (tests/test_ingest_bench.py).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

CON, NON, ACK, RST = 0, 1, 2, 3
EMPTY = 0
GET = 1
CONTENT = 0x45  # 2.05
NOT_FOUND = 0x84  # 4.04
BAD_REQUEST = 0x80  # 4.00
ETAG, OBSERVE, URI_PATH, CONTENT_FORMAT, URI_QUERY, BLOCK2 = 4, 6, 11, 12, 15, 23
JSON_FORMAT = 50
PAYLOAD_MARKER = 0xFF
_HEADER = struct.Struct("!BBH")


class CoapDecodeError(ValueError):
    """A datagram that is not a CoAP message this producer can read."""


def _uint(value: int) -> bytes:
    """An option's unsigned integer: big-endian, no leading zero bytes (0 is empty)."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _nibble(value: int) -> tuple[int, bytes]:
    if value < 13:
        return value, b""
    if value < 269:
        return 13, bytes([value - 13])
    return 14, struct.pack("!H", value - 269)


def encode_options(options: list[tuple[int, bytes]], *, after: int = 0) -> bytes:
    """Options in ascending number order, each delta-coded against the one before (`after`: the
    number of an option already written in front of these)."""
    out = bytearray()
    previous = after
    for number, value in sorted(options, key=lambda o: o[0]):
        delta, delta_ext = _nibble(number - previous)
        length, length_ext = _nibble(len(value))
        out.append(delta << 4 | length)
        out += delta_ext + length_ext + value
        previous = number
    return bytes(out)


def encode(
    mtype: int,
    code: int,
    mid: int,
    token: bytes = b"",
    options: list[tuple[int, bytes]] | None = None,
    payload: bytes = b"",
) -> bytes:
    """One complete CoAP message."""
    head = _HEADER.pack(0x40 | mtype << 4 | len(token), code, mid & 0xFFFF)
    body = encode_options(options or [])
    if payload:
        body += bytes([PAYLOAD_MARKER]) + payload
    return head + token + body


def notification_tail(payload: bytes) -> bytes:
    """What follows the Observe option in a JSON notification: prepared once, sent many times."""
    return encode_options([(CONTENT_FORMAT, _uint(JSON_FORMAT))], after=OBSERVE) + (
        bytes([PAYLOAD_MARKER]) + payload
    )


def notification(mtype: int, mid: int, token: bytes, observe: int, tail: bytes) -> bytes:
    """A notification from its prepared tail: the only per-send work is this concatenation."""
    head = _HEADER.pack(0x40 | mtype << 4 | len(token), CONTENT, mid & 0xFFFF)
    return head + token + encode_options([(OBSERVE, _uint(observe & 0xFFFFFF))]) + tail


def block2_value(num: int, more: bool, szx: int) -> bytes:
    return _uint(num << 4 | (8 if more else 0) | szx)


@dataclass(slots=True)
class Decoded:
    mtype: int
    code: int
    mid: int
    token: bytes
    options: list[tuple[int, bytes]] = field(default_factory=list)
    payload: bytes = b""

    def option(self, number: int) -> bytes | None:
        for n, v in self.options:
            if n == number:
                return v
        return None

    def uint_option(self, number: int) -> int | None:
        value = self.option(number)
        return None if value is None else int.from_bytes(value, "big")

    def path(self) -> str:
        return "/" + "/".join(
            v.decode("utf-8", "replace") for n, v in self.options if n == URI_PATH
        )

    def query(self) -> list[str]:
        return [v.decode("utf-8", "replace") for n, v in self.options if n == URI_QUERY]

    def block2(self) -> tuple[int, bool, int] | None:
        """(block number, more, size exponent) of a Block2 option, if any."""
        value = self.uint_option(BLOCK2)
        if value is None:
            return None
        return value >> 4, bool(value & 8), value & 7


def _extended(data: bytes, pos: int, nibble: int) -> tuple[int, int]:
    if nibble < 13:
        return nibble, pos
    if nibble == 13:
        if pos >= len(data):
            raise CoapDecodeError("truncated option")
        return data[pos] + 13, pos + 1
    if nibble == 14:
        if pos + 2 > len(data):
            raise CoapDecodeError("truncated option")
        return struct.unpack_from("!H", data, pos)[0] + 269, pos + 2
    raise CoapDecodeError("reserved option nibble 15")


def decode(data: bytes) -> Decoded:
    if len(data) < 4:
        raise CoapDecodeError("shorter than a CoAP header")
    first, code, mid = _HEADER.unpack_from(data)
    if first >> 6 != 1:
        raise CoapDecodeError("not CoAP version 1")
    tkl = first & 0x0F
    if tkl > 8 or 4 + tkl > len(data):
        raise CoapDecodeError("bad token length")
    msg = Decoded(first >> 4 & 3, code, mid, data[4 : 4 + tkl])
    pos, number = 4 + tkl, 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        if byte == PAYLOAD_MARKER:
            msg.payload = data[pos:]
            if not msg.payload:
                raise CoapDecodeError("payload marker without payload")
            break
        delta, pos = _extended(data, pos, byte >> 4)
        length, pos = _extended(data, pos, byte & 0x0F)
        if pos + length > len(data):
            raise CoapDecodeError("truncated option value")
        number += delta
        msg.options.append((number, data[pos : pos + length]))
        pos += length
    return msg
