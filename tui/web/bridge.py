"""One browser tab ↔ one board process: textual-serve's :class:`AppService` and the message relay.

The packet protocol on the board's stdin/stdout and the downloads are textual-serve's (its public
API: `send_*`, `on_*`, its `DownloadManager`); the process itself is owned here (textual-serve keeps
its handle private, and a board that will not quit must be killed). The browser side is relayed
here rather than by textual-serve's server, so that input can be timed (idle sessions end), the
kiosk can refuse input, and a malformed message is skipped instead of ending the session with an
assertion.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from asyncio.subprocess import Process
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any

from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.download_manager import DownloadManager

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
    """One board process for one browser tab.

    The packet protocol is textual-serve's (its public `send_*` to the board, its `on_data` /
    `on_meta` / `on_packed` for what the board sends: screen output, downloads); the process is
    ours — started, read, stopped and killed here — since textual-serve keeps its own private.
    Besides: the browser hears when the board exits, and a board that will not quit is killed.
    """

    def __init__(
        self,
        command: str,
        *,
        write_bytes: Callable[[bytes], Awaitable[None]],
        write_str: Callable[[str], Awaitable[None]],
        close: Callable[[], Awaitable[None]],
        download_manager: DownloadManager,
    ) -> None:
        super().__init__(
            command,
            write_bytes=write_bytes,
            write_str=write_str,
            close=close,
            download_manager=download_manager,
        )
        self.downloads = download_manager
        self.process: Process | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def stdin(self) -> asyncio.StreamWriter:
        """The board's standard input (textual-serve's `send_bytes`/`send_meta` write to it)."""
        assert self.process is not None and self.process.stdin is not None
        return self.process.stdin

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def start(self, width: int, height: int) -> None:
        """Start the board at the browser's size and read what it sends."""
        self.process = await asyncio.create_subprocess_shell(
            self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=board_environment(width, height),
        )
        self._reader = asyncio.create_task(self.run())

    async def run(self) -> None:
        """Read the board's packets until it exits; then the page's session ends (instead of a
        blank screen: textual-serve only closes the websocket when the app says "exit"). What the
        board wrote to stderr is passed on to ours, as textual-serve does."""
        process = self.process
        assert process is not None and process.stdout is not None and process.stderr is not None
        said = bytearray()
        errors = asyncio.create_task(_collect(process.stderr, said))
        try:
            await read_packets(process.stdout, self)
        finally:
            errors.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await errors
            with contextlib.suppress(Exception):
                await self.remote_close()
        if said:
            sys.stdout.write(said.decode("utf-8", "replace"))

    async def stop(self) -> None:
        """Ask the board to quit and wait for the end of its output."""
        if self._reader is not None:
            await self.downloads.cancel_app_downloads(app_service_id=self.app_service_id)
            await self.send_meta({"type": "quit"})
            await self._reader
            self._reader = None

    async def stop_within(self, timeout: float) -> None:
        """Ask the board to quit; kill it after `timeout`. Returns once the process has exited
        (stop() only waits for the end of its output)."""
        process = self.process
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


def board_environment(width: int, height: int) -> dict[str, str]:
    """The board's environment: Textual's web driver (the packet protocol on stdin/stdout) at the
    browser's size, as textual-serve sets it."""
    return {
        **os.environ,
        "TEXTUAL_DRIVER": "textual.drivers.web_driver:WebDriver",
        "TEXTUAL_FPS": "60",
        "TEXTUAL_COLOR_SYSTEM": "truecolor",
        "TERM_PROGRAM": "textual",
        "TERM_PROGRAM_VERSION": version("textual-serve"),
        "COLUMNS": str(width),
        "ROWS": str(height),
    }


PRELUDE = b"__GANGLION__\n"  # what Textual's web driver writes first
PRELUDE_LINES = 10


async def read_packets(stdout: asyncio.StreamReader, service: AppService) -> None:
    """The web driver's output after its prelude — packets of a type byte (``D`` screen data,
    ``M`` meta, ``P`` packed), a 4-byte length and the payload — to textual-serve's handlers,
    until the board's output ends."""
    ready = False
    for _ in range(PRELUDE_LINES):
        line = await stdout.readline()
        if not line or line == PRELUDE:
            ready = line == PRELUDE
            break
    if not ready:
        log.error("the board did not start (no Textual web driver prelude)")
    handlers = {b"D": service.on_data, b"M": service.on_meta, b"P": service.on_packed}
    try:
        while True:
            kind = await stdout.readexactly(1)
            size = int.from_bytes(await stdout.readexactly(4), "big")
            payload = await stdout.readexactly(size)
            if (handle := handlers.get(kind)) is not None:
                await handle(payload)
    except (asyncio.IncompleteReadError, ConnectionResetError):
        pass  # the board exited


async def _collect(stream: asyncio.StreamReader, into: bytearray, limit: int = 64 * 1024) -> None:
    """Read `stream` to its end, keeping its first `limit` bytes."""
    while chunk := await stream.read(4096):
        into += chunk[: max(0, limit - len(into))]


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
