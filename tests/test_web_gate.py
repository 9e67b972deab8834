"""The web board's PIN gate, sessions and routes, with plain HTTP against a real server on loopback.

The server is the real one (aiohttp, textual-serve's AppService starting real `pager-edge board`
processes); only its monotonic clock is a :class:`VirtualClock`, so a 5-minute lockout and a
30-minute idle end are tested without waiting. The last tests run `pager-edge web` itself as a
site does and search everything it printed for the PIN.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from agent.clock import VirtualClock
from agent.config import Config, ConfigError, load_config, to_toml, with_overrides
from agent.logs import redact
from tests.board_fixtures import SECRET_LABEL
from tests.webfixtures import (
    PIN,
    WRONG,
    board_argvs,
    client,
    cmdline,
    cookie_header,
    descendants,
    eventually,
    first_output,
    free_port,
    post_pin,
    served,
    sign_in,
    site_config,
    spawn_web,
    until_closed,
    wait_listening,
)
from tui.web.gate import PinError, PinGate, SignIns, check_pin, make_pin
from tui.web.run import site_pin
from tui.web.server import COOKIE, WebBoard

# --- the gate's own rules (pure) --------------------------------------------------------------


def test_pin_must_be_4_to_12_digits_and_errors_never_echo_it():
    assert check_pin("0042") == "0042"
    assert check_pin(make_pin()).isdigit() and len(make_pin()) == 6
    with pytest.raises(PinError, match="PAGER_EDGE_WEB_PIN in the environment or in the secrets"):
        check_pin(None)
    for bad in ("123", "98x7", "1234567890123", "１２３４５６"):
        with pytest.raises(PinError) as exc:
            check_pin(bad)
        assert "4 to 12 digits" in str(exc.value)
        assert bad not in str(exc.value)


def test_five_wrong_tries_lock_one_address_for_five_minutes():
    clock = VirtualClock()
    gate = PinGate(PIN, clock.monotonic)
    for left in (4, 3, 2, 1):
        v = gate.attempt("10.0.0.5", WRONG)
        assert (v.outcome, v.tries_left) == ("wrong", left)
    v = gate.attempt("10.0.0.5", WRONG)
    assert (v.outcome, v.tries_left) == ("wrong", 0)  # the fifth wrong try starts the lockout
    v = gate.attempt("10.0.0.5", PIN)
    assert (v.outcome, v.retry_after) == ("locked", 300)  # the right PIN is refused unchecked
    assert gate.attempt("10.0.0.6", PIN).outcome == "ok"  # another device is not locked out
    clock.advance(200)
    v = gate.attempt("10.0.0.5", WRONG)
    assert (v.outcome, v.retry_after) == ("locked", 100)  # attempts do not extend it
    clock.advance(99.5)
    assert gate.attempt("10.0.0.5", PIN).outcome == "locked"
    clock.advance(0.5)
    assert gate.attempt("10.0.0.5", PIN).outcome == "ok"
    assert gate.attempt("10.0.0.5", WRONG).tries_left == 4  # a fresh count after a success


def test_sign_ins_expire_after_idle_time_and_slide_with_use():
    clock = VirtualClock()
    sign_ins = SignIns(clock.monotonic, idle_seconds=1800)
    token, s = sign_ins.create("10.0.0.5")
    assert token not in repr(s)  # logs name the sign-in's number, never its token
    clock.advance(1799)
    assert sign_ins.get(token) is s
    sign_ins.touch(s)
    clock.advance(1799)
    assert sign_ins.get(token) is s  # slid: 1 h after sign-in, used 30 min ago
    clock.advance(1)
    assert sign_ins.get(token) is None
    assert sign_ins.get("forged") is None and sign_ins.get(None) is None


# --- the routes, against a running server ------------------------------------------------------


async def test_sign_in_routes_lockout_and_cookie_flags(tmp_path):
    clock = VirtualClock()
    cfg = site_config(tmp_path)
    async with served(cfg, clock=clock) as board, client() as http:
        url = board.url
        async with http.get(f"{url}/", allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (303, "/login")
        async with http.get(f"{url}/login") as r:
            page = await r.text()
            assert r.status == 200 and 'name="pin"' in page
            assert "://" not in page  # nothing on the page comes from anywhere else
            assert "default-src 'self'" in r.headers["Content-Security-Policy"]
        async with http.get(f"{url}/static/js/textual.js") as r:
            assert r.status == 200  # textual-serve's bundle, served from the package

        for left in (4, 3, 2, 1):
            r = await post_pin(http, url, WRONG)
            assert r.status == 401 and f"{left} tries left" in await r.text()
            assert COOKIE not in r.cookies
        r = await post_pin(http, url, "")  # no PIN at all is a wrong try too
        assert r.status == 401
        r = await post_pin(http, url, PIN)  # sixth attempt: locked, the right PIN included
        assert r.status == 429 and r.headers["Retry-After"] == "300"
        assert COOKIE not in r.cookies
        async with http.get(f"{url}/login") as r:
            assert r.status == 429 and "Try again in 5 min" in await r.text()
        clock.advance(240)
        r = await post_pin(http, url, PIN)
        assert r.status == 429 and r.headers["Retry-After"] == "60"
        clock.advance(60)

        r = await post_pin(http, url, PIN)
        assert (r.status, r.headers["Location"]) == (303, "/")
        cookie = r.cookies[COOKIE]
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Strict"
        assert cookie["max-age"] == "1800"  # [web] idle_minutes = 30
        assert not cookie["secure"]  # plain HTTP here; see the TLS test
        assert cookie["path"] == "/"
        assert len(cookie.value) >= 40

        async with http.get(f"{url}/", headers=cookie_header(cookie)) as r:
            page = await r.text()
            assert r.status == 200
            assert f'data-session-websocket-url="ws://{url.split("://")[1]}/ws"' in page
            assert r.cookies[COOKIE].value == cookie.value  # the expiry slides on every visit
        async with http.get(f"{url}/", headers={"Cookie": f"{COOKIE}=forged"}) as r:
            assert r.status == 200 and r.url.path == "/login"


async def test_websocket_and_downloads_are_behind_the_same_gate(tmp_path):
    cfg = site_config(tmp_path)
    async with served(cfg) as board, client() as http:
        url = board.url
        for headers in ({}, {"Cookie": f"{COOKIE}=forged"}):
            for path in ("/ws", "/ws/touch", "/ws/compact"):  # every layout's socket
                with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
                    await http.ws_connect(f"{url}{path}", headers=headers)
                assert exc.value.status == 401
            async with http.get(f"{url}/download/abc", headers=headers) as r:
                assert r.status == 401
        r = await post_pin(http, url, WRONG)
        assert r.status == 401
        assert board.staff.sessions == [] and board_argvs(os.getpid()) == []  # nothing started
        cookie = await sign_in(http, url)
        async with http.get(f"{url}/download/abc", headers=cookie_header(cookie)) as r:
            assert r.status == 404  # signed in: past the gate, and there is no such download
        # A page on another site cannot open a board with this browser's cookie.
        evil = {**cookie_header(cookie), "Origin": "http://evil.example"}
        with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
            await http.ws_connect(f"{url}/ws", headers=evil)
        assert exc.value.status == 403
        async with http.get(f"{url}/ws", headers=cookie_header(cookie)) as r:
            assert r.status == 400  # signed in but not a websocket: no board either
        async with http.get(f"{url}/ws/wide", headers=cookie_header(cookie)) as r:
            assert r.status == 404  # no such layout
        assert board.staff.sessions == []


async def test_the_page_and_the_board_command_carry_the_layout(tmp_path):
    cfg = site_config(tmp_path)
    async with served(cfg) as board, client() as http:
        headers = cookie_header(await sign_in(http, board.url))
        for query, layout, font in (("", "auto", "18"), ("?layout=compact", "compact", "18")):
            async with http.get(f"{board.url}/{query}", headers=headers) as r:
                page = await r.text()
            assert f'data-layout="{layout}"' in page and f'data-touch-font-size="{font}"' in page
            assert 'src="/assets/board.js"' in page
        async with http.get(f"{board.url}/?layout=touch&fontsize=20", headers=headers) as r:
            page = await r.text()
        assert 'data-layout="touch"' in page and 'data-touch-font-size="20"' in page
        assert board.board_command(kiosk=False, layout="touch").endswith("--layout touch")
        assert "--layout" not in board.board_command(kiosk=False)  # [board] layout decides
        assert "--layout" not in board.board_command(kiosk=True, layout="touch")


async def test_sign_in_expires_after_idle_minutes_of_inactivity(tmp_path):
    clock = VirtualClock()
    cfg = site_config(tmp_path, idle_minutes=30)
    async with served(cfg, clock=clock) as board, client() as http:
        cookie = cookie_header(await sign_in(http, board.url))
        for _ in range(3):  # used every 29 minutes: stays signed in for 1½ hours
            clock.advance(29 * 60)
            async with http.get(f"{board.url}/", headers=cookie, allow_redirects=False) as r:
                assert r.status == 200
        clock.advance(30 * 60)
        async with http.get(f"{board.url}/", headers=cookie, allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (303, "/login")
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(f"{board.url}/ws", headers=cookie)


async def test_session_cap_says_so_and_idle_sessions_end(tmp_path, caplog):
    caplog.set_level("INFO", logger="tui.web.server")
    clock = VirtualClock()
    cfg = site_config(tmp_path, max_sessions=1, idle_minutes=30)
    async with served(cfg, clock=clock) as board, client() as http:
        url = board.url
        cookie = cookie_header(await sign_in(http, url))
        ws = await http.ws_connect(f"{url}/ws?width=120&height=40", headers=cookie)
        drawn = await first_output(ws, SECRET_LABEL.encode())  # the staff board shows labels
        assert b"Okafor" in drawn
        (session,) = board.staff.sessions
        argv = cmdline(session.pid)
        assert "tui.web.tablet" in argv and "--kiosk" not in " ".join(argv)
        assert "--config" in " ".join(argv) and str(tmp_path / "config.toml") in " ".join(argv)

        # A second device beyond the cap: a clear page, and no second board process.
        async with http.get(f"{url}/", headers=cookie) as r:
            page = await r.text()
            assert r.status == 503 and r.headers["Retry-After"] == "30"
            assert "The board is open on 1 device already" in page
            assert "127.0.0.1" in page and "close the board" in page
            assert "nobody touches for 30 min ends by itself" in page
        with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
            await http.ws_connect(f"{url}/ws", headers=cookie)
        assert exc.value.status == 503
        assert len(board.staff.sessions) == 1

        # Used a little later: not idle. Untouched for 30 minutes: ended.
        clock.advance(20 * 60)
        await ws.send_json(["stdin", "\x1b[B"])  # arrow down: the host touched the board
        await eventually(lambda: board.staff.idle_for(session) == 0)
        clock.advance(20 * 60)
        await board.sweep()
        assert board.staff.sessions == [session]
        clock.advance(10 * 60)
        await board.sweep()
        await until_closed(ws)
        await eventually(lambda: board.staff.sessions == [])
        await eventually(lambda: not os.path.exists(f"/proc/{session.pid}"), timeout=15)
        await eventually(lambda: "ended after 50 min (idle 30 min)" in caplog.text)
        assert f"staff session {session.number} started for 127.0.0.1" in caplog.text
        assert "refused a staff session for 127.0.0.1: 1 of 1 open" in caplog.text
        await ws.close()


async def test_kiosk_needs_no_pin_shows_no_label_and_takes_no_input(tmp_path):
    cfg = site_config(tmp_path)
    async with served(cfg) as board, client() as http:
        async with http.get(f"{board.url}/kiosk", allow_redirects=False) as r:
            page = await r.text()
            assert r.status == 200 and "/kiosk/ws" in page and "://" in page
            assert "http://" not in page.replace(board.url, "")  # nothing from elsewhere
        ws = await http.ws_connect(f"{board.url}/kiosk/ws?width=120&height=40")
        drawn = await first_output(ws, b"WAITING")
        (session,) = board.kiosk.sessions
        assert "--kiosk" in cmdline(session.pid)
        # Bad messages are skipped and counted; Ctrl+Q from a guest's keyboard is not forwarded.
        for bad in ("not json", '["resize", "big"]', "[1, 2]", "{}", '["stdin"]'):
            await ws.send_str(bad)
        await ws.send_json(["stdin", "\x11"])
        await eventually(lambda: board.malformed == 5)
        await asyncio.sleep(1.5)
        assert not ws.closed and os.path.exists(f"/proc/{session.pid}")
        assert board.staff.sessions == []  # the kiosk's own pool
        assert SECRET_LABEL.encode() not in drawn and b"Okafor" not in drawn
        await ws.close()
        await eventually(lambda: board.kiosk.sessions == [])
        await eventually(lambda: not os.path.exists(f"/proc/{session.pid}"))


async def test_a_configuration_built_in_memory_reaches_the_boards(tmp_path):
    """The demo's case: no config file; the boards get the same settings from a private file."""
    from agent.config import Config
    from tui.web import WebBoard as Exported
    from tui.web import make_pin

    assert Exported is WebBoard
    cfg = with_overrides(
        Config(), store={"path": str(tmp_path / "demo.db")}, controller={"port": 15999}
    )
    assert cfg.source is None
    async with WebBoard(cfg, make_pin(), port=0) as board:
        command = board.board_command(kiosk=True)
        path = Path(command.split("--config ", 1)[1].split()[0])
        assert path.stat().st_mode & 0o077 == 0  # private: only this user reads it
        assert load_config(path) == dataclasses.replace(cfg, source=str(path))
        assert command.endswith("--kiosk")
    assert not path.exists()  # removed when the server stops


# --- TLS --------------------------------------------------------------------------------------


def self_signed(tmp_path):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed to make a test certificate")
    cert, key = tmp_path / "web.crt", tmp_path / "web.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_serves_https_and_the_cookie_is_secure(tmp_path):
    import ssl

    cert, key = self_signed(tmp_path)
    cfg = site_config(tmp_path, tls_certificate=str(cert), tls_key=str(key))
    trust = ssl.create_default_context(cafile=str(cert))
    async with served(cfg) as board, client() as http:
        assert board.url.startswith("https://127.0.0.1:")
        login = f"{board.url}/login"
        async with http.post(login, data={"pin": PIN}, allow_redirects=False, ssl=trust) as r:
            assert r.status == 303
            cookie = r.cookies[COOKIE]
        assert cookie["secure"] is True and cookie["httponly"] is True
        async with http.get(f"{board.url}/", headers=cookie_header(cookie), ssl=trust) as r:
            assert 'data-session-websocket-url="wss://' in await r.text()
        with pytest.raises(aiohttp.ClientError):  # no plain-HTTP side door
            await http.get(board.url.replace("https://", "http://") + "/login")


def test_tls_mistakes_name_the_key(tmp_path):
    missing = site_config(tmp_path, tls_certificate=str(tmp_path / "no.crt"), tls_key="k.pem")
    with pytest.raises(ConfigError, match=r"\[web\] tls_certificate: cannot read .*no.crt"):
        WebBoard(missing, PIN)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    cfg = with_overrides(missing, web={"tls_certificate": str(junk), "tls_key": str(junk)})
    with pytest.raises(ConfigError, match=r"\[web\] tls_certificate: expected a PEM"):
        WebBoard(cfg, PIN)


# --- `pager-edge web` as a site runs it ---------------------------------------------------------


def test_web_refuses_to_start_without_a_usable_pin(tmp_path):
    site_config(tmp_path)
    config = tmp_path / "config.toml"
    env = {k: v for k, v in os.environ.items() if k != "PAGER_EDGE_WEB_PIN"}
    for extra, needle in (
        ({}, "no sign-in PIN: set PAGER_EDGE_WEB_PIN"),
        ({"PAGER_EDGE_WEB_PIN": "98x7"}, "PAGER_EDGE_WEB_PIN must be 4 to 12 digits"),
    ):
        res = subprocess.run(
            [sys.executable, "-m", "pager_edge", "web", "--config", str(config)],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert res.stdout == "" and len(lines) == 1 and lines[0].startswith("pager-edge web: ")
        assert needle in res.stderr
        assert "98x7" not in res.stderr


def test_pin_from_the_secrets_file_is_registered_for_redaction(tmp_path, monkeypatch):
    monkeypatch.delenv("PAGER_EDGE_WEB_PIN", raising=False)
    secrets = tmp_path / "secrets.env"
    secrets.write_text("PAGER_EDGE_WEB_PIN=58206413\n")
    secrets.chmod(0o600)
    cfg = load_config(site_config(tmp_path).source)
    cfg = with_overrides(cfg, secrets={"path": str(secrets)})
    assert site_pin(cfg) == "58206413"
    assert redact("tried 58206413") == "tried ***"


async def test_pager_edge_web_never_prints_the_pin(tmp_path):
    """The whole gate walked against the real command at DEBUG level: the PIN is nowhere."""
    pin, near = "40718325", ("40718326", "407183259")
    port = free_port()
    site_config(tmp_path, port=port)
    config = tmp_path / "config.toml"
    config.write_text(config.read_text() + '[logging]\nlevel = "DEBUG"\n')
    log = tmp_path / "web.log"
    proc = spawn_web(config, log, PAGER_EDGE_WEB_PIN=pin)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_listening(proc, log)
        async with client() as http:
            for wrong in near:
                assert (await post_pin(http, url, wrong)).status == 401
            cookie = await sign_in(http, url, pin)
            async with http.get(f"{url}/", headers=cookie_header(cookie)) as r:
                assert r.status == 200
            # A board process never inherits the PIN from the server's environment.
            ws = await http.ws_connect(f"{url}/kiosk/ws?width=100&height=30")
            await first_output(ws, b"WAITING")
            await eventually(lambda: board_argvs(proc.pid) != [])
            boards = descendants(proc.pid)
            for pid in boards:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
                assert b"PAGER_EDGE_WEB_PIN" not in environ and pin.encode() not in environ
            # SIGTERM with a board open: it is ended, then the server exits cleanly.
            proc.send_signal(signal.SIGTERM)
            await until_closed(ws)
            assert await asyncio.to_thread(proc.wait, 30) == 0
            assert not [p for p in boards if Path(f"/proc/{p}").exists()]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    assert "sign-in 1 from 127.0.0.1" in out and "wrong PIN from 127.0.0.1" in out
    assert "kiosk session 1 started" in out and "(server stopping)" in out
    for secret in (pin, *near, cookie.value):
        assert secret not in out


def test_a_tablet_process_with_a_bad_config_or_no_database_says_so(tmp_path):
    """The board process the server starts per tab (`python -m tui.web.tablet`) reports a
    configuration mistake (file, key, expectation) or a missing database in one line."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[board]\nlayout = "wide"\n')
    run = subprocess.run(
        [sys.executable, "-m", "tui.web.tablet", "--config", str(bad), "--layout", "touch"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "configuration error" in run.stderr and "layout" in run.stderr
    fine = tmp_path / "fine.toml"
    fine.write_text(to_toml(with_overrides(Config(), store={"path": str(tmp_path / "none.db")})))
    run = subprocess.run(
        [sys.executable, "-m", "tui.web.tablet", "--config", str(fine)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 1 and "no database yet" in run.stderr and "Traceback" not in run.stderr
