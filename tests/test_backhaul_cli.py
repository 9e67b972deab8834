"""`pager-edge backhaul --once [--json]` end to end against a loopback server; configuration
mistakes; and no credential anywhere in what the agent prints, logs or raises."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import traceback

import pytest
from click.testing import CliRunner

from agent.backhaul.monitor import check_config, daemon_task, make_client, read_once
from agent.backhaul.reading import OperatorError
from agent.config import ConfigError, load_config
from agent.status import collect_status, format_status
from agent.store import Store
from pager_edge.cli import cli, main
from tests import backhaul_fakes as f

CC_ROOT = f"/rws/api/v1/devices/{f.CC_ICCID}"
TS_ENV = {
    "PAGER_EDGE_TS_CLIENT_ID": "ts-id-LEAKCANARY-1",
    "PAGER_EDGE_TS_CLIENT_SECRET": "ts-secret-LEAKCANARY-2",
    "PAGER_EDGE_TS_USERNAME": "ts-user-LEAKCANARY-3",
    "PAGER_EDGE_TS_PASSWORD": "ts-pass-LEAKCANARY-4",
}
CC_KEY = "cc-key-LEAKCANARY-0"
CONTRACT = (
    "provider", "online", "ipv4", "ipv6", "sim_status", "cycle_bytes", "cap_bytes",
    "projected_bytes", "mode", "taken_at", "error",
)  # fmt: skip


@pytest.fixture
def server():
    s = f.FakeOperator().start()
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def no_spacing(monkeypatch):
    """Real clock here: the spacing between calls is tested with a fake clock elsewhere."""
    monkeypatch.setattr("agent.backhaul.monitor.MIN_CALL_INTERVAL", 0.0)


@pytest.fixture
def cc_env(monkeypatch):
    monkeypatch.setenv("PAGER_EDGE_CC_API_KEY", CC_KEY)


@pytest.fixture
def ts_env(monkeypatch):
    for k, v in TS_ENV.items():
        monkeypatch.setenv(k, v)


def serve_cc(server):
    server.on("GET", f"{CC_ROOT}/sessionInfo", f.answer(f.SEED_SESSION_INFO))
    server.on("GET", f"{CC_ROOT}/ctdUsages", f.answer(f.SEED_CTD_USAGES))
    server.on("GET", f"{CC_ROOT}/usageInZone", f.answer(f.SEED_USAGE_IN_ZONE))


def serve_ts(server):
    server.on("POST", "/api/ts/v1/oauth2/token", f.answer(f.TS_TOKEN % "tok-LEAKCANARY-bearer"))
    server.on("POST", "/api/m2m/v1/session/login", f.answer(f.TS_LOGIN % "tok-LEAKCANARY-m2m"))
    server.on("POST", "/api/m2m/v1/devices/actions/list", f.answer(f.TS_DEVICE_LIST))
    server.on("POST", "/api/m2m/v1/devices/usage/actions/list", f.answer(f.TS_DAILY_USAGE))
    server.on("POST", "/api/hyper-precise/v1/report/sessions", f.answer(f.SEED_TS_SESSIONS))


def invoke(*args):
    return CliRunner().invoke(cli, ["backhaul", *args])


# --- end to end -----------------------------------------------------------------------------------


def test_json_reading_from_control_center(server, cc_env, tmp_path):
    serve_cc(server)
    result = invoke("--once", "--json", "--config", str(f.write_config(tmp_path, server.url)))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(CONTRACT) <= set(doc)
    assert doc["provider"] == "control_center" and doc["online"] is False
    assert doc["ipv4"] is None and doc["ipv6"] == "2605:9780:309e::/64"
    assert doc["sim_status"] == "ACTIVATED" and doc["cycle_bytes"] == 0
    assert doc["cap_bytes"] == 5_000_000_000 and doc["mode"] == "normal" and doc["error"] is None
    assert doc["taken_at"].endswith("Z")


def test_json_reading_from_thingspace(server, ts_env, tmp_path):
    serve_ts(server)
    path = f.write_config(tmp_path, server.url, provider="thingspace")
    result = invoke("--once", "--json", "--config", str(path))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["provider"] == "thingspace" and doc["online"] is True
    assert doc["ipv4"] == "10.20.30.40" and doc["sim_status"] == "active"
    assert doc["session_count"] == 1 and doc["error"] is None


def test_human_summary(server, cc_env, tmp_path):
    serve_cc(server)
    result = invoke("--once", "--config", str(f.write_config(tmp_path, server.url)))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Cisco Control Center: offline 2605:9780:309e::/64")
    assert "ACTIVATED plan 'hphlr rp1'" in result.stdout and "sync mode:  normal" in result.stdout


def test_operator_error_exits_non_zero_with_the_message(server, cc_env, tmp_path):
    server.on(
        "GET",
        f"{CC_ROOT}/sessionInfo",
        f.answer(f.cc_error_body("10000001", "Invalid credentials."), 401),
    )
    path = str(f.write_config(tmp_path, server.url))
    result = invoke("--once", "--json", "--config", path)
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert "credentials or allowed-IP range" in doc["error"] and doc["error_reaction"] == "stop"
    human = invoke("--once", "--config", path)
    assert human.exit_code == 1 and "ERROR: Control Center refused the credentials" in human.stdout
    # The console script too (click returns a command's exit status outside standalone mode).
    with pytest.raises(SystemExit) as exc:
        main(["backhaul", "--once", "--json", "--config", path])
    assert exc.value.code == 1


def test_without_once_it_explains(tmp_path):
    result = invoke()
    assert result.exit_code == 2 and "--once" in result.output and "pager-edge run" in result.output


def test_secrets_file(server, monkeypatch, tmp_path):
    monkeypatch.delenv("PAGER_EDGE_CC_API_KEY", raising=False)
    serve_cc(server)
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"PAGER_EDGE_CC_API_KEY={CC_KEY}\n")
    secrets.chmod(0o600)
    path = f.write_config(tmp_path, server.url)
    path.write_text(path.read_text() + f'[secrets]\npath = "{secrets}"\n')
    result = invoke("--once", "--json", "--config", str(path))
    assert result.exit_code == 0, result.output
    assert (
        server.seen[0]
        .headers["Authorization"]
        .endswith(base64.b64encode(f"site-api-user:{CC_KEY}".encode()).decode())
    )
    secrets.chmod(0o644)
    with pytest.raises(ConfigError, match="0600"):
        asyncio.run(read_once(load_config(path)))


# --- configuration mistakes: one line, exit status 2 -----------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"base_url": ""}, "[backhaul] base_url: expected the operator's API base URL"),
        (
            {"base_url": "http://rws.example.com/rws/api/v1/"},
            "[backhaul] base_url: expected https://",
        ),
        ({"iccid": ""}, "[backhaul] iccid: required for provider 'control_center'"),
        ({"usage_interval": 60}, "[backhaul] usage_interval: expected at least 900 s"),
        ({"session_interval": 30}, "[backhaul] session_interval: expected at least 300 s"),
        ({"warn_percent": 99}, "warn_percent ≤ critical_percent"),
        (
            {"first_reading_timeout": -1},
            "[backhaul] first_reading_timeout: expected a number of seconds, 0 or more",
        ),
        ({"provider": "vodafone"}, "[backhaul] provider: expected one of"),
    ],
)
def test_configuration_mistakes(cc_env, tmp_path, capsys, extra, expected):
    path = f.write_config(tmp_path, **{"base_url": "https://rws.example.com/rws/api/v1/", **extra})
    with pytest.raises(SystemExit) as exc:
        main(["backhaul", "--once", "--config", str(path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_no_backhaul_section(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_text('[site]\nid = "x"\n')
    with pytest.raises(SystemExit):
        main(["backhaul", "--once", "--config", str(path)])
    assert "no [backhaul] configured?" in capsys.readouterr().err


def test_missing_secret_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("PAGER_EDGE_CC_API_KEY", raising=False)
    cfg = load_config(f.write_config(tmp_path, "https://rws.example.com/"))
    with pytest.raises(ConfigError, match="PAGER_EDGE_CC_API_KEY is not set"):
        make_client(cfg)
    for k in TS_ENV:
        monkeypatch.delenv(k, raising=False)
    ts = load_config(
        f.write_config(tmp_path, "https://thingspace.verizon.com", provider="thingspace")
    )
    check_config(ts)
    with pytest.raises(ConfigError, match="PAGER_EDGE_TS_CLIENT_ID is not set"):
        make_client(ts)


# --- the daemon task ------------------------------------------------------------------------------


async def test_daemon_task_stores_readings(server, cc_env, tmp_path):
    serve_cc(server)
    cfg = load_config(f.write_config(tmp_path, server.url))
    store = Store(tmp_path / "pe.db", synchronous="NORMAL")
    task = asyncio.create_task(daemon_task(cfg, store)())
    try:
        for _ in range(200):
            if store.latest_backhaul_reading():
                break
            await asyncio.sleep(0.01)
        row = store.latest_backhaul_reading()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        store.close()
    assert row["provider"] == "control_center" and row["sim_status"] == "ACTIVATED"


# --- credentials never leak -------------------------------------------------------------------------


def _leaks(texts: list[str], secrets: list[str]) -> list[str]:
    return [s for s in secrets for t in texts if s in t]


@pytest.mark.parametrize("scenario", ["cc", "ts_call", "ts_login"])
def test_credentials_never_appear_anywhere(
    server, cc_env, ts_env, tmp_path, caplog, capfd, scenario
):
    caplog.set_level(logging.DEBUG)
    echo = f.answer('{"errorCode": "CANARY", "errorMessage": "you sent {ECHO}"}', 400)
    if scenario == "cc":
        serve_cc(server)
        server.on("GET", f"{CC_ROOT}/sessionInfo", echo)
        path = f.write_config(tmp_path, server.url)
        secrets = [CC_KEY, base64.b64encode(f"site-api-user:{CC_KEY}".encode()).decode()]
    else:
        serve_ts(server)
        route = (
            "/api/m2m/v1/session/login"
            if scenario == "ts_login"
            else "/api/m2m/v1/devices/actions/list"
        )
        server.on("POST", route, echo)
        path = f.write_config(tmp_path, server.url, provider="thingspace")
        basic = f"{TS_ENV['PAGER_EDGE_TS_CLIENT_ID']}:{TS_ENV['PAGER_EDGE_TS_CLIENT_SECRET']}"
        secrets = [*TS_ENV.values(), base64.b64encode(basic.encode()).decode(), "tok-LEAKCANARY"]

    texts: list[str] = []
    result = invoke("--once", "--json", "--config", str(path))
    assert result.exit_code == 1
    texts += [result.output, result.stdout, result.stderr]
    doc = json.loads(result.stdout)
    assert "you sent" in doc["error"] and "***" in doc["error"]  # the echo came back, redacted
    texts.append(invoke("--once", "--config", str(path)).output)

    cfg = load_config(path)
    reading = asyncio.run(read_once(cfg))
    texts += [repr(reading), json.dumps(reading.to_json()), json.dumps(reading.to_row())]

    async def raw_call():
        client = make_client(cfg)
        try:
            await client.session()
        finally:
            await client.aclose()

    with pytest.raises(OperatorError) as exc:
        asyncio.run(raw_call())
    texts += [str(exc.value), repr(exc.value), "".join(traceback.format_exception(exc.value))]
    captured = capfd.readouterr()
    texts += [caplog.text, captured.out, captured.err]
    texts += [r.getMessage() for r in caplog.records]
    sent = " ".join(r.headers.get("Authorization", "") + r.body for r in server.seen)
    assert _leaks([sent], secrets), "the secrets must have been in play"
    assert _leaks(texts, secrets) == []
    assert os.environ.get("PAGER_EDGE_CC_API_KEY") == CC_KEY  # the environment itself is untouched


# --- hostile text from the operator (or whatever poses as it) ------------------------------------

HOSTILE = "bad\x1b]0;owned\x07\nFORGED 2026-01-01 ERROR agent: all good"
SHOWN = "bad\N{REPLACEMENT CHARACTER} FORGED 2026-01-01 ERROR agent: all good"


def _clean(text: str) -> bool:
    return not any(ch in text for ch in "\x1b\x07\n\r")


@pytest.mark.parametrize("scenario", ["cc_error", "ts_error", "cc_values"])
def test_operator_text_reaches_people_without_escapes_or_line_breaks(
    server, cc_env, ts_env, tmp_path, scenario
):
    """A server (or a proxy posing as it) sends a terminal title escape and a forged log line in
    an error message, an error code, the SIM status and the rate plan: every place a person reads
    them shows the text on one line, the escape replaced by one visible placeholder."""
    body = json.dumps({"errorCode": "E\x1b[2J\n1", "errorMessage": HOSTILE})
    if scenario == "cc_error":
        serve_cc(server)
        server.on("GET", f"{CC_ROOT}/sessionInfo", f.answer(body, 400))
        path = f.write_config(tmp_path, server.url)
    elif scenario == "ts_error":
        serve_ts(server)
        server.on("POST", "/api/m2m/v1/devices/actions/list", f.answer(body, 400))
        path = f.write_config(tmp_path, server.url, provider="thingspace")
    else:
        serve_cc(server)
        ctd = json.loads(f.SEED_CTD_USAGES) | {"status": HOSTILE, "ratePlan": HOSTILE}
        server.on("GET", f"{CC_ROOT}/ctdUsages", f.answer(json.dumps(ctd)))
        path = f.write_config(tmp_path, server.url)
    failing = scenario != "cc_values"

    human = invoke("--once", "--config", str(path))
    assert human.exit_code == (1 if failing else 0), human.output
    lines = human.stdout.splitlines()
    assert _clean(human.stdout.replace("\n", ""))
    assert lines[0].startswith(("Cisco Control Center:", "Verizon ThingSpace:"))
    assert all(line.startswith("  ") for line in lines[1:])  # no line of the operator's own
    shown_in = [line for line in lines if SHOWN in line]
    assert shown_in and shown_in[0].startswith("  ERROR:" if failing else "  SIM:")

    doc = json.loads(invoke("--once", "--json", "--config", str(path)).stdout)
    fields = ("error", "error_code") if failing else ("sim_status", "rate_plan")
    for key in fields:
        assert _clean(doc[key]), (key, doc[key])
    assert SHOWN in doc[fields[0]]
    if failing:
        assert doc["error_code"] == "E\N{REPLACEMENT CHARACTER} 1"

    cfg = load_config(path)
    store = Store(tmp_path / "pe.db", synchronous="NORMAL")
    try:
        store.add_backhaul_reading(asyncio.run(read_once(cfg)).to_row())
        status = collect_status(store, config=cfg)
    finally:
        store.close()
    section = status["backhaul"]
    for key in fields:
        assert _clean(section[key]) and SHOWN in section[fields[0]], (key, section[key])
    assert all(_clean(v) for v in section.values() if isinstance(v, str))
    text = format_status(status)
    assert _clean(text.replace("\n", "")) and len(text.splitlines()) == text.count("\n") + 1
