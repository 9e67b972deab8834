"""The staff board and the kiosk, served to browsers on the LAN with textual-serve.

Every browser tab gets its own app process, the same board ``pager-edge board`` runs in a terminal
(staff, or ``--kiosk``; started as ``python -m tui.web.tablet``: no command-line machinery to pay
for per tablet), bridged to the page over a websocket by textual-serve's :class:`AppService`; what
the browser shows is that process's terminal output drawn by xterm.js. textual-serve has no
authentication, so this module owns the routes: the staff page, its websocket and downloads sit
behind a PIN sign-in (:mod:`tui.web.gate`); the kiosk is open (it never shows labels). Our own
templates replace textual-serve's, whose page loads a web font from the internet: nothing a page
asks for leaves the LAN (the Content-Security-Policy says so to the browser too).

Routes: ``GET /`` (the board, or 303 to ``/login``; ``?layout=touch|compact``), ``GET|POST
/login``, ``GET /ws`` and ``/ws/touch|compact`` (the layout the page chose),
``GET /download/{key}``, ``GET /kiosk``, ``GET /kiosk/ws``, ``/static`` (textual-serve's xterm.js
bundle and font), ``/assets`` (ours).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import shlex
import ssl
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
import textual_serve
from aiohttp import WSCloseCode, web
from textual_serve.download_manager import DownloadManager

from agent.clock import SYSTEM_CLOCK, Clock
from agent.config import Config, ConfigError, to_toml
from tui.web.bridge import STOP_TIMEOUT, BoardProcess, int_in, relay
from tui.web.gate import PinGate, SignIn, SignIns
from tui.web.pool import Pool

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEXTUAL_STATIC = Path(textual_serve.__file__).parent / "static"
COOKIE = "pager_edge_session"
WS_MAX_MESSAGE = 64 * 1024
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
NO_STORE = ("/", "/login", "/kiosk", "/ws", "/ws/touch", "/ws/compact", "/kiosk/ws")
# The page's font size (CSS px) per layout: at 18 px Debian's Chromium draws 10×24 px cells, so a
# touch row of two lines is 48 px and a button of three 72 px (≥ 44: a finger); `?fontsize=`
# overrides either.
FONT_SIZE = {"compact": 16, "touch": 18}
LAYOUTS = ("touch", "compact")


def load_tls(cfg: Config) -> ssl.SSLContext | None:
    """The server's TLS context from `[web] tls_certificate`/`tls_key`, or None for plain HTTP."""
    w = cfg.web
    if not w.tls_certificate:
        return None
    for key in ("tls_certificate", "tls_key"):
        path = Path(getattr(w, key))
        try:
            path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"cannot read {path}: {exc.strerror}", path=cfg.source, key=f"[web] {key}"
            ) from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(w.tls_certificate, w.tls_key)
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(
            f"expected a PEM certificate and its matching PEM private key: {exc}",
            path=cfg.source,
            key="[web] tls_certificate",
        ) from None
    return context


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes} min" if minutes else f"{int(seconds)} s"


@web.middleware
async def _security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _add_headers(request, exc)
        raise
    if not response.prepared:
        _add_headers(request, response)
    return response


def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    h = response.headers
    h.setdefault("Content-Security-Policy", CSP)
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "no-referrer")
    h.setdefault("X-Frame-Options", "DENY")
    if request.path in NO_STORE or request.path.startswith("/download/"):
        h["Cache-Control"] = "no-store"


class WebBoard:
    """``WebBoard(cfg, pin)``: serve the staff board and the kiosk; ``await start()`` → URL.

    `cfg.web` gives address, port, caps, idle time and TLS. The board processes run
    ``python -m tui.web.tablet --config PATH`` with the file `cfg` came from (`config_path`, else
    `cfg.source`); a configuration built in memory (the demo) is written to a private temporary
    file for them. `port` overrides `[web] port` (0: any free port; :attr:`url` tells which). `clock.monotonic()` times sign-ins, lockouts and idleness (tests inject one);
    `sweep_interval` is how often idle sessions are looked for (real seconds).
    """

    def __init__(
        self,
        cfg: Config,
        pin: str,
        *,
        config_path: str | Path | None = None,
        port: int | None = None,
        clock: Clock = SYSTEM_CLOCK,
        sweep_interval: float = 15.0,
    ) -> None:
        self.cfg = cfg
        w = cfg.web
        self.host = w.host
        self.port = w.port if port is None else port
        self.idle_seconds = w.idle_minutes * 60.0
        self.clock = clock
        self.sweep_interval = sweep_interval
        self.gate = PinGate(pin, clock.monotonic)
        self.sign_ins = SignIns(clock.monotonic, self.idle_seconds)
        numbers = itertools.count(1)
        self.staff = Pool("staff", w.max_sessions, clock.monotonic, numbers)
        # The kiosk needs no PIN: its own pool, so open kiosk pages never lock staff out.
        self.kiosk = Pool("kiosk", w.max_sessions, clock.monotonic, numbers)
        self.ssl_context = load_tls(cfg)
        self.secure = self.ssl_context is not None
        given = config_path or cfg.source
        self._config_path = Path(given).resolve() if given else None
        self._temp_config: Path | None = None
        self.downloads = DownloadManager()
        self._kiosk_downloads = DownloadManager()  # the kiosk delivers nothing; kept apart anyway
        self._templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True
        )
        self._runner: web.AppRunner | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        # Browser messages skipped as malformed (a counter, never an error for the tab).
        self.malformed = 0
        self.url = ""

    # commands --------------------------------------------------------------------------------

    def board_command(self, *, kiosk: bool, layout: str | None = None) -> str:
        """The shell command textual-serve starts for one browser session (`layout`: what the
        page chose, ``touch`` or ``compact``; None: ``[board] layout``)."""
        path = self._config_path
        if path is None:
            if self._temp_config is None:
                fd, name = tempfile.mkstemp(prefix="pager-edge-web-", suffix=".toml")
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(to_toml(self.cfg))
                self._temp_config = Path(name)
            path = self._temp_config
        argv = [sys.executable, "-m", "tui.web.tablet", "--config", str(path)]
        if kiosk:
            argv.append("--kiosk")
        elif layout in LAYOUTS:
            argv += ["--layout", layout]
        # textual-serve runs it with /bin/sh -c: `exec` makes the board the process it stops
        # (or kills), not a shell that would leave the board behind.
        return "exec " + shlex.join(argv)

    # life cycle ------------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[_security_headers], client_max_size=16 * 1024)
        app.add_routes(
            [
                web.get("/", self.handle_index),
                web.get("/login", self.handle_login_form),
                web.post("/login", self.handle_login),
                web.get("/ws", self.handle_staff_ws),
                web.get("/ws/{layout}", self.handle_staff_ws),
                web.get("/download/{key}", self.handle_download),
                web.get("/kiosk", self.handle_kiosk),
                web.get("/kiosk/ws", self.handle_kiosk_ws),
                web.get("/favicon.ico", self.handle_favicon),
                web.static("/static", TEXTUAL_STATIC),
                web.static("/assets", HERE / "assets"),
            ]
        )
        app.on_shutdown.append(self._close_sockets)
        return app

    async def start(self) -> str:
        """Listen; returns the base URL (with the port chosen when `port` was 0)."""
        self.board_command(kiosk=False)  # writes the private config (if any) before any tablet
        runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=STOP_TIMEOUT)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl_context)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror}",
                path=self.cfg.source,
                key="[web] host/port",
            ) from None
        self._runner = runner
        port = self.port
        for address in runner.addresses:
            port = address[1]
            break
        scheme = "https" if self.secure else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"{scheme}://{host}:{port}"
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="web-sweep")
        log.info(
            "web board on %s (staff: /, kiosk: /kiosk; %d staff sessions at most, ended after "
            "%s idle%s)",
            self.url,
            self.staff.limit,
            _duration(self.idle_seconds),
            "" if self.secure else "; plain HTTP: the PIN crosses the network in clear",
        )
        return self.url

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._runner is not None:
            await self._runner.cleanup()  # closes every websocket; handlers stop their boards
            self._runner = None
        if self._temp_config is not None:
            self._temp_config.unlink(missing_ok=True)
            self._temp_config = None

    async def __aenter__(self) -> WebBoard:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _close_sockets(self, _app: web.Application) -> None:
        for session in [*self.staff.sessions, *self.kiosk.sessions]:
            session.end_reason = "server stopping"
        await asyncio.gather(
            *(
                ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping")
                for ws in list(self._sockets)
            ),
            return_exceptions=True,
        )

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self.sweep()
            except Exception:  # the sweeper must outlive one bad pass
                log.exception("web: idle sweep failed")

    async def sweep(self) -> None:
        """Forget expired sign-ins; end staff sessions idle for `idle_minutes`."""
        self.sign_ins.sweep()
        closing = []
        for session in self.staff.idle(self.idle_seconds):
            if session.closer is not None and not session.end_reason.startswith("idle"):
                session.end_reason = f"idle {_duration(self.staff.idle_for(session))}"
                closing.append(session.closer())
        await asyncio.gather(*closing, return_exceptions=True)

    def _count_malformed(self) -> None:
        self.malformed += 1

    # pages -----------------------------------------------------------------------------------

    def _page(self, name: str, status: int = 200, **context: Any) -> web.Response:
        text = self._templates.get_template(name).render(site=self.cfg.site.name, **context)
        return web.Response(text=text, status=status, content_type="text/html")

    def _sign_in(self, request: web.Request) -> SignIn | None:
        return self.sign_ins.get(request.cookies.get(COOKIE))

    def _set_cookie(self, response: web.StreamResponse, token: str) -> None:
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(self.idle_seconds),
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self.secure or None,
        )

    def _ws_url(self, request: web.Request, path: str) -> str:
        return f"{'wss' if self.secure else 'ws'}://{request.host}{path}"

    def _busy(self, pool: Pool) -> web.Response:
        now_open = [
            {"address": s.address, "idle": _duration(pool.idle_for(s))} for s in pool.sessions
        ]
        response = self._page(
            "busy.html",
            503,
            kind=pool.kind,
            count=len(pool.sessions),
            sessions=now_open,
            idle=_duration(self.idle_seconds),
        )
        response.headers["Retry-After"] = "30"
        return response

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        sign_in = self._sign_in(request)
        if sign_in is None:
            raise web.HTTPSeeOther("/login")
        self.sign_ins.touch(sign_in)
        if self.staff.full:
            response: web.StreamResponse = self._busy(self.staff)
        else:
            # The layout: `?layout=` when given, else [board] layout; "auto" is decided by the
            # page (board.js: a coarse pointer is a touch screen) before it connects.
            wanted = request.query.get("layout")
            layout = wanted if wanted in LAYOUTS else self.cfg.board.layout
            fontsize = request.query.get("fontsize")
            response = self._page(
                "board.html",
                kiosk=False,
                ws_url=self._ws_url(request, "/ws"),
                layout=layout,
                font_sizes={
                    name: int_in(fontsize, 8, 48, default) for name, default in FONT_SIZE.items()
                },
            )
        self._set_cookie(response, request.cookies[COOKIE])  # sliding expiry
        return response

    async def handle_login_form(self, request: web.Request) -> web.StreamResponse:
        if self._sign_in(request) is not None:
            raise web.HTTPSeeOther("/")
        wait = self.gate.locked(request.remote or "")
        if wait:
            return self._locked(wait)
        return self._page("login.html", message="")

    def _locked(self, retry_after: int) -> web.Response:
        response = self._page(
            "login.html",
            429,
            message=f"Too many wrong PINs from this device. Try again in "
            f"{max(1, -(-retry_after // 60))} min.",
            locked=True,
        )
        response.headers["Retry-After"] = str(retry_after)
        return response

    async def handle_login(self, request: web.Request) -> web.StreamResponse:
        address = request.remote or ""
        try:
            form = await request.post()
        except (ValueError, web.HTTPException):
            form = None  # oversized or malformed: a wrong try like any other
        candidate = form.get("pin") if form is not None else None
        verdict = self.gate.attempt(address, candidate if isinstance(candidate, str) else "")
        if verdict.outcome == "locked":
            log.warning(
                "sign-in refused for %s: locked out for %d s more", address, verdict.retry_after
            )
            return self._locked(verdict.retry_after)
        if verdict.outcome == "wrong":
            if verdict.tries_left:
                log.warning("wrong PIN from %s (%d tries left)", address, verdict.tries_left)
                message = f"Wrong PIN. {verdict.tries_left} tries left before a 5-minute pause."
            else:
                log.warning(
                    "wrong PIN from %s: locked out for %d s",
                    address,
                    int(self.gate.lockout_seconds),
                )
                message = "Wrong PIN. Too many wrong PINs from this device: wait 5 minutes."
            return self._page("login.html", 401, message=message)
        token, sign_in = self.sign_ins.create(address)
        log.info("sign-in %d from %s", sign_in.number, address)
        response = web.Response(status=303, headers={"Location": "/"})
        self._set_cookie(response, token)
        return response

    async def handle_kiosk(self, request: web.Request) -> web.StreamResponse:
        if self.kiosk.full:
            return self._busy(self.kiosk)
        return self._page(
            "board.html",
            kiosk=True,
            ws_url=self._ws_url(request, "/kiosk/ws"),
            layout="compact",
            font_sizes={"compact": int_in(request.query.get("fontsize"), 8, 48, 16)},
        )

    async def handle_favicon(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=204)  # none: but no 404 in every browser's console

    async def handle_download(self, request: web.Request) -> web.StreamResponse:
        if self._sign_in(request) is None:
            return web.Response(status=401, text="sign in first\n")
        key = request.match_info["key"]
        try:
            meta = await self.downloads.get_download_metadata(key)
        except KeyError:
            return web.Response(status=404, text="no such download\n")
        response = web.StreamResponse()
        content_type = meta.mime_type + (f"; charset={meta.encoding}" if meta.encoding else "")
        response.headers["Content-Type"] = content_type
        disposition = "inline" if meta.open_method == "browser" else "attachment"
        name = "".join(c for c in meta.file_name if c.isalnum() or c in "._- ") or "download"
        response.headers["Content-Disposition"] = f'{disposition}; filename="{name}"'
        await response.prepare(request)
        async for chunk in self.downloads.download(key):
            await response.write(chunk)
        await response.write_eof()
        return response

    # websockets ------------------------------------------------------------------------------

    def _same_origin(self, request: web.Request) -> bool:
        """A page on another site must not open a board through this browser's cookie."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True  # not a browser page (browsers always send Origin on websockets)
        scheme = "https" if self.secure else "http"
        return origin == f"{scheme}://{request.host}"

    async def handle_staff_ws(self, request: web.Request) -> web.StreamResponse:
        sign_in = self._sign_in(request)
        if sign_in is None:
            log.warning("refused a board websocket without a sign-in from %s", request.remote)
            return web.Response(status=401, text="sign in first\n")
        layout = request.match_info.get("layout")
        if layout is not None and layout not in LAYOUTS:
            return web.Response(status=404, text="no such layout\n")
        return await self._bridge(request, self.staff, sign_in, layout=layout)

    async def handle_kiosk_ws(self, request: web.Request) -> web.StreamResponse:
        return await self._bridge(request, self.kiosk, None)

    async def _bridge(
        self, request: web.Request, pool: Pool, sign_in: SignIn | None, *, layout: str | None = None
    ) -> web.StreamResponse:
        """One browser tab ↔ one board process, for as long as both live."""
        address = request.remote or "?"
        if not self._same_origin(request):
            log.warning("refused a %s websocket from another site (%s)", pool.kind, address)
            return web.Response(status=403, text="cross-site websocket refused\n")
        ws = web.WebSocketResponse(heartbeat=15, max_msg_size=WS_MAX_MESSAGE)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="expected a websocket upgrade\n")
        session = pool.open(address)
        if session is None:
            log.warning(
                "refused a %s session for %s: %d of %d open",
                pool.kind,
                address,
                len(pool.sessions),
                pool.limit,
            )
            return web.Response(status=503, text=f"the board is open on {pool.limit} devices\n")
        kiosk = pool.kind == "kiosk"

        def touch() -> None:
            pool.touch(session)
            if sign_in is not None:
                self.sign_ins.touch(sign_in)

        async def close() -> None:
            await ws.close()

        session.closer = lambda: ws.close(code=WSCloseCode.GOING_AWAY, message=b"idle")
        width = int_in(request.query.get("width"), 1, 1000, 80)
        height = int_in(request.query.get("height"), 1, 1000, 24)
        service: BoardProcess | None = None
        try:
            await ws.prepare(request)
            self._sockets.add(ws)
            service = BoardProcess(
                self.board_command(kiosk=kiosk, layout=layout),
                write_bytes=ws.send_bytes,
                write_str=ws.send_str,
                close=close,
                download_manager=self._kiosk_downloads if kiosk else self.downloads,
            )
            await service.start(width, height)
            session.pid = service.pid
            log.info(
                "%s session %d started for %s%s (%d of %d open; board process %s)",
                pool.kind,
                session.number,
                address,
                f" (sign-in {sign_in.number})" if sign_in else "",
                len(pool.sessions),
                pool.limit,
                session.pid,
            )
            await relay(
                ws,
                service,
                accept_input=not kiosk,
                on_input=touch,
                on_malformed=self._count_malformed,
            )
        except Exception:
            log.exception("%s session %d failed", pool.kind, session.number)
        finally:
            pool.close(session)  # free the place first: a reloading tab reconnects at once
            self._sockets.discard(ws)
            if service is not None:
                await service.stop_within(STOP_TIMEOUT)
            log.info(
                "%s session %d ended after %s (%s)",
                pool.kind,
                session.number,
                _duration(self.clock.monotonic() - session.started),
                session.end_reason,
            )
        return ws
