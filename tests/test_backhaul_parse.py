"""Operator payloads and error bodies → records and reactions (pure, no I/O)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.backhaul.control_center import (
    CC_ERRORS,
    cc_ctd_usages,
    cc_error,
    cc_session_info,
    cc_usage_in_zone,
    cycle_date,
)
from agent.backhaul.http import parse_bool, parse_int, parse_ipv4, parse_ipv6, parse_time
from agent.backhaul.reading import OperatorError
from agent.backhaul.thingspace import (
    login_failure,
    ts_access_token,
    ts_daily_usage,
    ts_device,
    ts_error,
    ts_session_report,
    ts_session_token,
)
from agent.logs import register_secret
from tests import backhaul_fakes as f

SEEDS = Path("/work/shared/seeds")


@pytest.mark.skipif(not SEEDS.is_dir(), reason="seed documents not present in this checkout")
@pytest.mark.parametrize(
    ("seed", "fixture"),
    [
        ("000_f01a3a16cf6a7d94.txt", f.SEED_SESSION_INFO),
        ("001_4129b3005711a18a.txt", f.SEED_CTD_USAGES),
        ("004_0d5b11911200500f.txt", f.SEED_USAGE_IN_ZONE),
        ("002_fab82500c78b61ca.txt", f.SEED_TS_SESSIONS),
        *(("002_fab82500c78b61ca.txt", body) for body in f.SEED_TS_ERRORS.values()),
    ],
)
def test_fixtures_are_the_seed_examples_verbatim(seed, fixture):
    assert fixture in (SEEDS / seed).read_text(encoding="utf-8")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- Control Center -------------------------------------------------------------------------------


def test_session_info_seed_null_string_ipv6_prefix_and_dates():
    s = cc_session_info(json.loads(f.SEED_SESSION_INFO))
    assert s.ipv4 is None  # "null", the string
    assert s.ipv6 == "2605:9780:309e::/64"
    assert s.started_at == utc(2016, 7, 6, 1, 31, 46, 893000)
    assert s.ended_at == s.started_at
    assert s.online is False  # the session has ended


def test_session_info_in_session_and_never_in_session():
    live = cc_session_info(
        {"ipAddress": "10.0.0.7", "dateSessionStarted": "2024-05-15 10:00:00.000+0000"}
    )
    assert live.online is True and live.ipv4 == "10.0.0.7" and live.ipv6 is None
    never = cc_session_info(
        {"ipAddress": None, "dateSessionStarted": None, "dateSessionEnded": None}
    )
    assert never.online is False and never.ipv4 is None and never.started_at is None


def test_ctd_usages_seed_null_counter_is_unknown_not_zero():
    u = cc_ctd_usages(json.loads(f.SEED_CTD_USAGES))
    assert u.cycle_bytes == 0 and u.sms_count == 0 and u.voice_seconds == 0
    assert u.session_count is None
    assert u.sim_status == "ACTIVATED" and u.rate_plan == "hphlr rp1"
    assert u.overage_limit_reached is False and u.overage_limit_override == "DEFAULT"


def test_usage_in_zone_seed_sums_every_plan_and_reads_timestamp_key():
    z = cc_usage_in_zone(json.loads(f.SEED_USAGE_IN_ZONE))
    assert z.as_of == utc(2016, 11, 10, 5, 31, 17, 557000)  # "timeStamp" in the example
    assert z.cycle_start == utc(2016, 10, 31, 10, 30)
    assert z.cycle_end == utc(2016, 11, 30, 10, 29, 59)
    assert z.data_bytes == 943718  # plan A null + plan B 943718
    assert z.voice_seconds == 600 + 943718
    assert z.sms_count is None  # every SMS counter is null
    assert z.rate_plans == ("Rate Plan A, 1", "Rate Plan B, 2")


def test_usage_in_zone_documented_key_spelling_reads_the_same():
    doc = json.loads(f.SEED_USAGE_IN_ZONE)
    doc["timestamp"] = doc.pop("timeStamp")
    for rows in doc["deviceCycleUsageInZones"].values():
        for row in rows:
            row["SMSmtusage"] = 2
            row["SMSmousage"] = 1
            del row["smsmtusage"], row["smsmousage"]
    z = cc_usage_in_zone(doc)
    assert z.as_of == utc(2016, 11, 10, 5, 31, 17, 557000)
    assert z.sms_count == 6


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2016-07-06 01:31:46.893+0000", utc(2016, 7, 6, 1, 31, 46, 893000)),
        ("2016-11-10T05:31:17.557Z", utc(2016, 11, 10, 5, 31, 17, 557000)),
        ("2016-11-10Z", utc(2016, 11, 10)),
        ("2024-05-15T12:00:00+02:00", utc(2024, 5, 15, 10)),
        ("2024-05-15T12:00:00", utc(2024, 5, 15, 12)),
        ("null", None),
        ("", None),
        (None, None),
        ("string", None),
    ],
)
def test_parse_time_spellings(raw, expected):
    assert parse_time(raw) == expected


def test_a_date_at_the_edge_of_the_calendar_is_unknown_not_a_crash():
    assert parse_time("0001-01-01T00:00:00+01:00") is None
    assert parse_time("9999-12-31T23:59:59-01:00") is None
    doc = json.loads(f.SEED_SESSION_INFO) | {"dateSessionEnded": "0001-01-01T00:00:00+01:00"}
    assert cc_session_info(doc).ended_at is None


def test_scalar_quirks():
    assert parse_int("943718") == 943718 and parse_int(None) is None
    assert parse_int(True) is None and parse_int("null") is None
    assert parse_bool("false") is False and parse_bool(None) is None
    assert parse_ipv4("null") is None and parse_ipv4("10.1.2.3") == "10.1.2.3"
    assert parse_ipv6("2605:9780:309e:0::/64") == "2605:9780:309e::/64"
    assert parse_ipv6("2605:9780:309e::1") == "2605:9780:309e::1"
    assert cycle_date(datetime(2016, 11, 10).date()) == "2016-11-10Z"


@pytest.mark.parametrize(("code", "status_message"), f.CC_ERROR_TABLE.items())
def test_every_documented_control_center_code(code, status_message):
    status, server_message = status_message
    err = cc_error(status, f.cc_error_body(code, server_message))
    assert isinstance(err, OperatorError)
    assert err.code == code and err.http_status == status
    expected = CC_ERRORS[code]
    assert err.reaction == expected[0]
    assert expected[1] in err.message and code in err.message


def test_control_center_reactions_that_matter_most():
    creds = cc_error(401, f.cc_error_body("10000001", "Invalid credentials."))
    assert creds.reaction == "stop"
    assert "credentials or allowed-IP range" in creds.message
    assert cc_error(404, f.cc_error_body("20000001", "x")).reaction == "stop"
    assert cc_error(500, f.cc_error_body("30000001", "x")).reaction == "retry_later"


@pytest.mark.parametrize("status", [200, 400, 429, 503])
def test_rate_limit_code_backs_off_whatever_the_status(status):
    err = cc_error(status, f.CC_RATE_LIMIT)
    assert err.code == "40000029" and err.reaction == "backoff"


def test_control_center_unknown_code_success_and_html():
    unknown = cc_error(400, f.cc_error_body("99999999", "Something new"))
    assert unknown.reaction == "retry_later" and "Something new" in unknown.message
    assert cc_error(200, f.SEED_SESSION_INFO) is None
    html = cc_error(200, f.HTML_PAGE, "text/html; charset=utf-8")
    assert html.code == "not_json" and "HTML" in html.message and "base_url" in html.message


# --- ThingSpace -----------------------------------------------------------------------------------


def test_session_report_seed_example():
    r = ts_session_report(json.loads(f.SEED_TS_SESSIONS))
    assert len(r.sessions) == 1
    only = r.sessions[0]
    assert only.start is None and only.end is None  # the example literally says "string"
    assert only.num_bytes == 0
    assert r.device_id == "{10-digit device ID}" and r.txid == "string"


def test_session_report_rows():
    r = ts_session_report(
        {
            "sessions": [
                {
                    "startTime": "2024-05-15T08:00:00Z",
                    "endTime": "2024-05-15T09:00:00Z",
                    "numBytes": 5,
                },
                {"startTime": "2024-05-15T10:00:00Z", "endTime": None, "numBytes": "7"},
            ]
        }
    )
    assert [(s.start, s.end, s.num_bytes) for s in r.sessions] == [
        (utc(2024, 5, 15, 8), utc(2024, 5, 15, 9), 5),
        (utc(2024, 5, 15, 10), None, 7),
    ]


def test_daily_usage_total_inside_cycle():
    d = ts_daily_usage(json.loads(f.TS_DAILY_USAGE))
    assert d.has_more is False
    assert d.total(utc(2024, 5, 1), utc(2024, 6, 1)) == (105369575 + 2000000, 3)
    assert ts_daily_usage({"usageHistory": []}).total(utc(2024, 5, 1), utc(2024, 6, 1)) == (
        0,
        0,
    )
    nulls = ts_daily_usage({"usageHistory": [{"bytesUsed": None, "timeStamp": "2024-05-02Z"}]})
    assert nulls.total(utc(2024, 5, 1), utc(2024, 6, 1)) == (None, None)


def test_device_list():
    s = ts_device(json.loads(f.TS_DEVICE_LIST))
    assert s.online is True and s.ipv4 == "10.20.30.40" and s.sim_status == "active"
    with pytest.raises(OperatorError) as exc:
        ts_device({"hasMoreData": False, "devices": []})
    assert exc.value.reaction == "stop"


@pytest.mark.parametrize(
    ("status", "reaction", "text"),
    [
        (400, "retry_later", "Device Not Found, Request will be queued"),
        (401, "stop", "The access policy denied the resource operation for this user"),
        (403, "stop", "Device Not Certified"),
        (404, "retry_later", "Device inactive"),
        (409, "stop", "Service Not Purchased"),
        (500, "retry_later", "Device is active in several accounts"),
    ],
)
def test_every_documented_session_report_error(status, reaction, text):
    err = ts_error(status, f.SEED_TS_ERRORS[status])
    assert err.reaction == reaction and text in err.message and err.http_status == status


@pytest.mark.parametrize(
    ("status", "body", "content_type", "code", "reaction", "text"),
    [
        (401, f.TS_SESSION_EXPIRED, "application/json", None, "relogin", "Session Token Expired"),
        (
            401,
            f.TS_FAULT_INVALID_CREDENTIALS,
            "application/json",
            "900901",
            "relogin",
            "Invalid Credentials",
        ),
        (
            401,
            f.TS_OAUTH_INVALID_CLIENT,
            "application/json",
            "invalid_client",
            "stop",
            "Client Authentication failed",
        ),
        (
            503,
            '{"error":"temporarily_unavailable"}',
            "application/json",
            None,
            "retry_later",
            "OAuth",
        ),
        (403, f.TS_XML_FORBIDDEN, "application/xml", "900908", "stop", "Resource forbidden"),
        (404, f.TS_XML_NOT_FOUND, "text/xml", "http_404", "stop", "Not Found"),
        (
            404,
            "<fault><message>gone</message></fault>",
            "application/xml",
            "http_404",
            "stop",
            "not found",
        ),
        (200, f.HTML_PAGE, "text/html", "not_json", "retry_later", "HTML"),
        (
            429,
            '{"fault":{"code":"900800","message":"Message throttled out"}}',
            "",
            "900800",
            "backoff",
            "throttled",
        ),
        (502, "Bad Gateway", "text/plain", "not_json", "retry_later", "not JSON"),
    ],
)
def test_every_thingspace_error_shape(status, body, content_type, code, reaction, text):
    err = ts_error(status, body, content_type)
    assert err is not None and err.reaction == reaction and text in err.message
    if code:
        assert err.code == code


def test_thingspace_success_is_not_an_error():
    assert ts_error(200, f.SEED_TS_SESSIONS) is None
    assert ts_error(200, f.TS_TOKEN % "abc") is None


def test_token_answers():
    assert ts_access_token(json.loads(f.TS_TOKEN % "tok")) == ("tok", 3600.0)
    assert ts_session_token(json.loads(f.TS_LOGIN % "m2m")) == "m2m"
    with pytest.raises(OperatorError):
        ts_access_token({"token_type": "Bearer"})


def test_login_failure_is_final_and_says_why():
    err = login_failure(ts_error(400, f.TS_LOGIN_REFUSED))
    assert err.reaction == "stop"
    assert "Not retried automatically" in err.message and "lock the account" in err.message


def test_error_messages_are_redacted():
    register_secret("SECRET-echoed-by-server-1234")
    err = cc_error(
        401, f.cc_error_body("99999998", "bad key SECRET-echoed-by-server-1234 for user")
    )
    assert "SECRET-echoed-by-server-1234" not in err.message
    assert "SECRET-echoed-by-server-1234" not in repr(err)


def test_error_messages_and_codes_are_printable():
    hostile = "bad\x1b]0;owned\x07\nFORGED line"
    for err in (
        cc_error(400, f.cc_error_body("E\x1b[2J1", hostile)),
        ts_error(400, json.dumps({"errorCode": "E\x1b[2J1", "errorMessage": hostile})),
        ts_error(401, json.dumps({"fault": {"code": "900901", "message": hostile}})),
        ts_error(400, json.dumps({"error": "E\x1b[2J1", "error_description": hostile})),
    ):
        for text in (err.message, err.code, str(err), repr(err)):
            assert not any(ch in text for ch in "\x1b\x07\n"), text
        assert "bad\N{REPLACEMENT CHARACTER} FORGED line" in err.message


def test_secrets_are_redacted_whatever_printable_does_to_them():
    register_secret("SECRET-split-by-server-5678")
    err = cc_error(401, f.cc_error_body("99999998", "key SECRET-split\u200b-by-server-5678"))
    assert "SECRET-split-by-server-5678" not in err.message and "***" in err.message
    register_secret("pass\tword-with-a-tab-9")  # printable alone would turn it into "pass word…"
    err = cc_error(401, f.cc_error_body("99999998", "you sent pass\tword-with-a-tab-9"))
    assert "word-with-a-tab-9" not in err.message and "***" in err.message
