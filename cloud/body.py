"""Request bodies under limits: gunzip that stops at a size instead of trusting the sender.

A gzip body of 1 MB can hold 1 GB of zeros. ``gzip.decompress`` would allocate all of it before
anyone could look; here decompression is streamed and stops one byte past the limit, so memory
per request is bounded by ``max_decoded_bytes`` whatever arrives.
"""

from __future__ import annotations

import zlib

_CHUNK = 64 * 1024


class BodyTooLarge(ValueError):
    """Over a size limit (answered 413)."""


class BadBody(ValueError):
    """Not a complete gzip stream (answered 400)."""


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Decompress gzip `data` (one member or several, as ``gzip.decompress`` accepts).

    Raises :class:`BodyTooLarge` as soon as the output would exceed `limit` bytes, and
    :class:`BadBody` for anything that is not complete gzip.
    """
    out = bytearray()
    rest = data
    if not rest:
        raise BadBody("empty body")
    while rest:
        d = zlib.decompressobj(wbits=31)  # 16 + MAX_WBITS: gzip header and trailer
        try:
            pending = rest
            while pending:
                out += d.decompress(pending, min(_CHUNK, limit + 1 - len(out)))
                if len(out) > limit:
                    raise BodyTooLarge(f"more than {limit} bytes once decompressed")
                pending = d.unconsumed_tail
                if d.eof:
                    break
            while not d.eof:  # output held back by max_length with no input left
                chunk = d.decompress(b"", min(_CHUNK, limit + 1 - len(out)))
                if not chunk:
                    break
                out += chunk
                if len(out) > limit:
                    raise BodyTooLarge(f"more than {limit} bytes once decompressed")
        except zlib.error as exc:
            raise BadBody(f"not gzip: {exc}") from None
        if not d.eof:
            raise BadBody("truncated gzip stream")
        rest = d.unused_data
        if rest.strip(b"\x00") == b"":  # padding after the last member, as gzip tolerates
            break
    return bytes(out)
