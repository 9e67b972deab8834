"""One browser tab ↔ one board process: textual-serve's :class:`AppService` and the message relay.

The process side (start, the packet protocol on its stdin/stdout, downloads) is textual-serve's
own; the browser side is relayed here rather than by textual-serve's server, so that input can be
timed (idle sessions end), the kiosk can refuse input, and a malformed message is skipped instead of
ending the session with an assertion.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0


def int_in(value: Any, lo: int, hi: int, default: int) -> int:
    """`value` as an int within lo..hi, else `default` (query strings and browser messages)."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        return default
    return n if lo <= n <= hi else default


class BoardProcess(AppService):
    """textual-serve's app process, plus: the browser hears when the board exits, and a board that
    will not quit is killed."""

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            # A board that exits (or never started) ends the page's session instead of a blank
            # screen; textual-serve only closes the websocket when the app says "exit".
            with contextlib.suppress(Exception):
                await self.remote_close()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def stop_within(self, timeout: float) -> None:
        """Ask the board to quit; kill it after `timeout`. Returns once the process has exited
        (textual-serve's stop() only waits for the end of its output)."""
        process = self._process
        try:
            await asyncio.wait_for(self.stop(), timeout)
        except TimeoutError:
            if process is not None and process.returncode is None:
                log.warning("board process %s did not quit in %.0f s: killed", process.pid, timeout)
                process.kill()
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                process.kill()
                await process.wait()


async def relay(
    ws: web.WebSocketResponse,
    service: AppService,
    *,
    accept_input: bool,
    on_input: Callable[[], None],
    on_malformed: Callable[[], None],
) -> None:
    """Browser → board until the websocket closes: keys and taps (``stdin``, when
    `accept_input`; `on_input` is told), size changes, focus, pings. A malformed message is
    skipped (`on_malformed` counts it)."""
    async for message in ws:
        if message.type != WSMsgType.TEXT:
            continue
        try:
            envelope = json.loads(message.data)
            kind = envelope[0]
            payload = envelope[1] if len(envelope) > 1 else None
        except (ValueError, TypeError, KeyError, IndexError):
            on_malformed()
            continue
        if kind == "stdin" and isinstance(payload, str):
            if accept_input:
                on_input()
                await service.send_bytes(payload.encode("utf-8", "replace"))
        elif kind == "resize" and isinstance(payload, dict):
            width = int_in(payload.get("width"), 1, 1000, 0)
            height = int_in(payload.get("height"), 1, 1000, 0)
            if width and height:
                await service.set_terminal_size(width, height)
        elif kind == "ping" and isinstance(payload, str):
            await ws.send_json(["pong", payload[:64]])
        elif kind == "blur":
            await service.blur()
        elif kind == "focus":
            await service.focus()
        else:
            on_malformed()
