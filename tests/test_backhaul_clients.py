"""The operator clients against a loopback HTTP server answering like the real APIs."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from datetime import UTC, date, datetime

import pytest

from agent.backhaul.control_center import ControlCenterClient, api_base
from agent.backhaul.http import require_https
from agent.backhaul.monitor import BackhaulPoller
from agent.backhaul.reading import NetworkFailure, OperatorError
from agent.backhaul.thingspace import ThingSpaceClient
from agent.clock import SystemClock
from agent.config import BackhaulConfig, ConfigError
from tests import backhaul_fakes as f

CC_ROOT = f"/rws/api/v1/devices/{f.CC_ICCID}"


@pytest.fixture
def server():
    s = f.FakeOperator().start()
    yield s
    s.stop()


def cc_client(server, clock=None, **kw) -> ControlCenterClient:
    return ControlCenterClient(
        server.url + "/rws/api/v1/",
        iccid=f.CC_ICCID,
        username="site-api-user",
        api_key="cc-key-0001",
        clock=clock or f.FakeClock(),
        **kw,
    )


def serve_cc_seeds(server) -> None:
    server.on("GET", f"{CC_ROOT}/sessionInfo", f.answer(f.SEED_SESSION_INFO))
    server.on("GET", f"{CC_ROOT}/ctdUsages", f.answer(f.SEED_CTD_USAGES))
    server.on("GET", f"{CC_ROOT}/usageInZone", f.answer(f.SEED_USAGE_IN_ZONE))


# --- Control Center -------------------------------------------------------------------------------


async def test_control_center_reading_from_the_seed_examples(server):
    serve_cc_seeds(server)
    clock = f.FakeClock(start=datetime(2016, 11, 15, 12, tzinfo=UTC))
    client = cc_client(server, clock)
    cfg = BackhaulConfig(provider="control_center", cap_bytes=1_000_000)
    reading = await BackhaulPoller(cfg, client, clock=clock).poll_once()
    await client.aclose()

    assert reading.error is None
    assert reading.online is False and reading.ipv4 is None  # "null" the string
    assert reading.ipv6 == "2605:9780:309e::/64"
    assert reading.sim_status == "ACTIVATED" and reading.rate_plan == "hphlr rp1"
    assert reading.cycle_bytes == 0 and reading.session_count is None
    assert reading.operator_cycle_start == datetime(2016, 10, 31, 10, 30, tzinfo=UTC)
    assert (
        reading.cycle_start == reading.operator_cycle_start
    )  # the budget uses the operator window
    assert reading.mode == "normal" and reading.used_bytes == 0
    assert reading.taken_at >= clock.start and reading.usage_taken_at is not None

    seen = server.seen
    assert [s.path.rsplit("/", 1)[1] for s in seen] == ["sessionInfo", "ctdUsages", "usageInZone"]
    expected = "Basic " + base64.b64encode(b"site-api-user:cc-key-0001").decode()
    assert all(s.headers["Authorization"] == expected for s in seen)
    assert all(s.headers["Accept"] == "application/json" for s in seen)


async def test_usage_in_zone_for_an_earlier_cycle(server):
    serve_cc_seeds(server)
    client = cc_client(server)
    z = await client.usage_in_zone(date(2016, 11, 10))
    await client.aclose()
    assert server.seen[0].query == {"cycleStartDate": ["2016-11-10Z"]}
    assert z.data_bytes == 943718


@pytest.mark.parametrize(("code", "status_message"), f.CC_ERROR_TABLE.items())
async def test_every_documented_control_center_error_over_http(server, code, status_message):
    status, message = status_message
    server.on("GET", f"{CC_ROOT}/sessionInfo", f.answer(f.cc_error_body(code, message), status))
    client = cc_client(server)
    with pytest.raises(OperatorError) as exc:
        await client.session()
    await client.aclose()
    assert exc.value.code == code and exc.value.http_status == status
    assert exc.value.reaction == {"30000001": "retry_later"}.get(code, "stop")


async def test_rate_limit_answer_means_backoff(server):
    server.on("GET", f"{CC_ROOT}/ctdUsages", f.answer(f.CC_RATE_LIMIT, 429))
    client = cc_client(server)
    with pytest.raises(OperatorError) as exc:
        await client.usage()
    await client.aclose()
    assert exc.value.reaction == "backoff"


async def test_one_call_in_flight_and_spaced(server):
    server.on("GET", f"{CC_ROOT}/sessionInfo", f.Answer(200, f.SEED_SESSION_INFO, delay=0.05))
    clock = f.FakeClock()
    client = cc_client(server, clock, min_interval=1.0)
    await asyncio.gather(*(client.session() for _ in range(3)))
    await client.aclose()
    assert server.max_active == 1
    assert clock.sleeps == [1.0, 1.0]  # each call waits for the spacing after the previous start


async def test_wrong_host_answering_html(server):
    server.on("GET", f"{CC_ROOT}/sessionInfo", f.answer(f.HTML_PAGE, 200, "text/html"))
    client = cc_client(server)
    with pytest.raises(OperatorError) as exc:
        await client.session()
    await client.aclose()
    assert exc.value.code == "not_json" and "base_url" in exc.value.message


async def test_unknown_path_on_a_web_server(server):
    client = cc_client(server)  # no routes: 404 HTML, like a host that is not the API
    with pytest.raises(OperatorError) as exc:
        await client.session()
    await client.aclose()
    assert "HTML" in exc.value.message and exc.value.http_status == 404


async def test_every_request_has_a_deadline(server):
    server.on("GET", f"{CC_ROOT}/sessionInfo", f.Answer(200, f.SEED_SESSION_INFO, delay=1.0))
    client = cc_client(server, timeout=0.1)
    with pytest.raises(NetworkFailure) as exc:
        await client.session()
    await client.aclose()
    assert "no answer within 0.1 s" in exc.value.message


async def test_nobody_listening_is_a_network_failure():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = ControlCenterClient(
        f"http://127.0.0.1:{port}/", iccid="1", username="u", api_key="key1", clock=SystemClock()
    )
    with pytest.raises(NetworkFailure) as exc:
        await client.session()
    await client.aclose()
    assert exc.value.reaction == "retry_later" and "unreachable" in exc.value.message


@pytest.mark.parametrize(
    "url",
    [
        "https://rws-jpotest.jasper.com/rws/api/v1/",
        "http://127.0.0.1:8080/",
        "http://localhost/",
        "http://[::1]:9/",
    ],
)
def test_https_required_except_loopback_accepts(url):
    require_https(url)


@pytest.mark.parametrize(
    "url", ["http://rws-jpotest.jasper.com/rws/api/v1/", "ftp://x/", "rws.example.com", ""]
)
def test_https_required_except_loopback_refuses(url):
    with pytest.raises(ConfigError):
        require_https(url)


def test_api_base_accepts_host_or_api_root():
    assert api_base("https://h.example") == "https://h.example/rws/api/v1/"
    assert api_base("https://h.example/rws/api/v1") == "https://h.example/rws/api/v1/"


# --- ThingSpace -----------------------------------------------------------------------------------

TOKEN = "/api/ts/v1/oauth2/token"
LOGIN = "/api/m2m/v1/session/login"
DEVICES = "/api/m2m/v1/devices/actions/list"
USAGE = "/api/m2m/v1/devices/usage/actions/list"
SESSIONS = "/api/hyper-precise/v1/report/sessions"


def ts_client(server, clock=None, **kw) -> ThingSpaceClient:
    return ThingSpaceClient(
        server.url,
        account_number="0000123456-00001",
        imei=f.TS_IMEI,
        iccid=f.TS_ICCID,
        client_id="ts-client-id",
        client_secret="ts-client-secret-0001",
        username="ts-user",
        password="ts-password-0001",
        clock=clock or f.FakeClock(),
        **kw,
    )


def serve_ts(server) -> None:
    server.on("POST", TOKEN, f.answer(f.TS_TOKEN % "bearer-1"), f.answer(f.TS_TOKEN % "bearer-2"))
    server.on("POST", LOGIN, f.answer(f.TS_LOGIN % "m2m-1"), f.answer(f.TS_LOGIN % "m2m-2"))
    server.on("POST", DEVICES, f.answer(f.TS_DEVICE_LIST))
    server.on("POST", USAGE, f.answer(f.TS_DAILY_USAGE))
    server.on("POST", SESSIONS, f.answer(f.SEED_TS_SESSIONS))


async def test_thingspace_reading_and_headers(server):
    serve_ts(server)
    clock = f.FakeClock()
    client = ts_client(server, clock)
    reading = await BackhaulPoller(
        BackhaulConfig(provider="thingspace"), client, clock=clock
    ).poll_once()
    await client.aclose()

    assert reading.error is None
    assert (
        reading.online is True and reading.ipv4 == "10.20.30.40" and reading.sim_status == "active"
    )
    assert reading.cycle_bytes == 105369575 + 2000000  # April's row is not in May's cycle
    assert reading.sms_count == 3 and reading.session_count == 1  # the seed's one session

    token = server.calls(TOKEN)[0]
    assert token.body == "grant_type=client_credentials"
    assert (
        token.headers["Authorization"]
        == "Basic " + base64.b64encode(b"ts-client-id:ts-client-secret-0001").decode()
    )
    login = server.calls(LOGIN)[0]
    assert json.loads(login.body) == {"username": "ts-user", "password": "ts-password-0001"}
    assert (
        login.headers["Authorization"] == "Bearer bearer-1" and "VZ-M2M-Token" not in login.headers
    )
    for path in (DEVICES, USAGE, SESSIONS):
        call = server.calls(path)[0]
        assert call.headers["Authorization"] == "Bearer bearer-1"
        assert call.headers["VZ-M2M-Token"] == "m2m-1"
    assert json.loads(server.calls(DEVICES)[0].body) == {
        "deviceId": {"id": f.TS_ICCID, "kind": "iccid"}
    }
    usage = json.loads(server.calls(USAGE)[0].body)
    assert usage["earliest"] == "2024-05-01T00:00:00Z" and usage["latest"].startswith(
        "2024-05-15T12:00"
    )
    report = json.loads(server.calls(SESSIONS)[0].body)
    assert report["accountNumber"] == "0000123456-00001" and report["imei"] == f.TS_IMEI


async def test_tokens_are_cached_and_the_bearer_renewed_a_minute_early(server):
    serve_ts(server)
    clock = f.FakeClock()
    client = ts_client(server, clock)
    await client.session()
    clock.t = 3530.0
    await client.session()
    assert len(server.calls(TOKEN)) == 1
    clock.t = 3541.0
    await client.session()
    assert len(server.calls(TOKEN)) == 2
    assert server.calls(DEVICES)[-1].headers["Authorization"] == "Bearer bearer-2"
    assert len(server.calls(LOGIN)) == 1  # the M2M session is reused throughout
    await client.aclose()


async def test_expired_session_means_exactly_one_relogin(server):
    serve_ts(server)
    server.on("POST", DEVICES, f.answer(f.TS_SESSION_EXPIRED, 401), f.answer(f.TS_DEVICE_LIST))
    client = ts_client(server)
    info = await client.session()
    await client.aclose()
    assert info.online is True
    assert len(server.calls(LOGIN)) == 2
    assert [c.headers["VZ-M2M-Token"] for c in server.calls(DEVICES)] == ["m2m-1", "m2m-2"]


async def test_session_expired_again_after_relogin_is_not_a_loop(server):
    serve_ts(server)
    server.on("POST", DEVICES, f.answer(f.TS_SESSION_EXPIRED, 401))
    client = ts_client(server)
    with pytest.raises(OperatorError) as exc:
        await client.session()
    await client.aclose()
    assert exc.value.reaction == "retry_later"
    assert len(server.calls(LOGIN)) == 2 and len(server.calls(DEVICES)) == 2


async def test_a_failed_login_is_never_retried(server):
    serve_ts(server)
    server.on("POST", LOGIN, f.answer(f.TS_LOGIN_REFUSED, 400))
    clock = f.FakeClock()
    client = ts_client(server, clock)
    poller = BackhaulPoller(BackhaulConfig(provider="thingspace"), client, clock=clock)
    first = await poller.poll_once()
    second = await poller.poll_once()
    await client.aclose()
    assert first.error_reaction == "stop" and "lock the account" in first.error
    assert second.error == first.error
    assert len(server.calls(LOGIN)) == 1
    assert server.calls(DEVICES) == []


async def test_login_without_an_answer_is_not_a_failed_login(server):
    serve_ts(server)
    server.on(
        "POST", LOGIN, f.Answer(200, f.TS_LOGIN % "late", delay=1.0), f.answer(f.TS_LOGIN % "m2m-9")
    )
    client = ts_client(server, timeout=0.1)
    with pytest.raises(NetworkFailure):
        await client.session()
    assert client.login_failed is None
    await client.aclose()


async def test_gateway_refusing_the_bearer_renews_it_once(server):
    serve_ts(server)
    server.on(
        "POST", DEVICES, f.answer(f.TS_FAULT_INVALID_CREDENTIALS, 401), f.answer(f.TS_DEVICE_LIST)
    )
    client = ts_client(server)
    await client.session()
    await client.aclose()
    assert len(server.calls(TOKEN)) == 2 and len(server.calls(LOGIN)) == 1
    assert server.calls(DEVICES)[-1].headers["Authorization"] == "Bearer bearer-2"


async def test_gateway_refusing_the_bearer_at_login_is_not_a_failed_login(server):
    serve_ts(server)
    server.on(
        "POST", LOGIN, f.answer(f.TS_FAULT_INVALID_CREDENTIALS, 401), f.answer(f.TS_LOGIN % "m2m-1")
    )
    client = ts_client(server)
    await client.session()
    await client.aclose()
    assert client.login_failed is None and len(server.calls(LOGIN)) == 2


async def test_oauth_refusal_stops_before_any_login(server):
    serve_ts(server)
    server.on("POST", TOKEN, f.answer(f.TS_OAUTH_INVALID_CLIENT, 401))
    client = ts_client(server)
    with pytest.raises(OperatorError) as exc:
        await client.session()
    await client.aclose()
    assert exc.value.reaction == "stop" and "PAGER_EDGE_TS_CLIENT_ID" in exc.value.message
    assert server.calls(LOGIN) == []


@pytest.mark.parametrize("status", sorted(f.SEED_TS_ERRORS))
async def test_session_report_errors_over_http(server, status):
    serve_ts(server)
    server.on("POST", SESSIONS, f.answer(f.SEED_TS_ERRORS[status], status))
    client = ts_client(server)
    with pytest.raises(OperatorError) as exc:
        await client.report_sessions(
            datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 15, tzinfo=UTC)
        )
    await client.aclose()
    assert exc.value.http_status == status
    assert exc.value.reaction == {401: "stop", 403: "stop", 409: "stop"}.get(status, "retry_later")


async def test_missing_session_report_add_on_only_costs_the_session_count(server):
    serve_ts(server)
    server.on("POST", SESSIONS, f.answer(f.SEED_TS_ERRORS[409], 409))
    client = ts_client(server)
    first = await client.usage()
    second = await client.usage()
    await client.aclose()
    assert first.cycle_bytes == second.cycle_bytes == 105369575 + 2000000
    assert first.session_count is None
    assert len(server.calls(SESSIONS)) == 1  # not asked again


async def test_xml_forbidden_from_the_gateway(server):
    serve_ts(server)
    server.on("POST", DEVICES, f.answer(f.TS_XML_FORBIDDEN, 403, "application/xml"))
    client = ts_client(server)
    with pytest.raises(OperatorError) as exc:
        await client.session()
    await client.aclose()
    assert exc.value.code == "900908" and exc.value.reaction == "stop"
    assert "Resource forbidden" in exc.value.message
