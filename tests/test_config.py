"""Configuration mistakes name the file, the key and what was expected; secrets files must be 0600."""

from __future__ import annotations

import logging
import os

import pytest
from click.testing import CliRunner

from agent.config import Config, ConfigError, load_config, parse_config
from agent.logs import RedactingFormatter
from agent.secrets import read_secrets_file, secret
from pager_edge.cli import cli


def test_shipped_config_is_valid_and_matches_defaults(tmp_path):
    from pathlib import Path

    cfg = load_config(Path(__file__).parent.parent / "config.toml")
    defaults = Config()
    for section in ("agent", "controller", "store", "sync", "backhaul", "board", "web"):
        assert getattr(cfg, section) == getattr(defaults, section), section


@pytest.mark.parametrize(
    "text, needle",
    [
        ('[controller]\nport = "x"', "[controller] port: expected an integer"),
        ("[controller]\nport = 70000", "[controller] port: expected a port 1–65535"),
        ("[controller]\nhots = 'a'", "[controller] hots: unknown key"),
        ("[nope]\n", "[nope]: unknown section"),
        ('[controller]\ntimezone = "Nowhere/City"', "[controller] timezone: expected an IANA"),
        ('[store]\nsynchronous = "OFF"', "[store] synchronous: expected one of 'FULL' | 'NORMAL'"),
        ("[sync]\nenabled = true", "[sync] endpoint"),
        ("[sync]\nmax_delay = -1", "[sync] max_delay: expected a number of 0 or more"),
        ('[sync]\nca_file = "/nonexistent.pem"', "[sync] ca_file: expected a PEM file"),
        ("[backhaul]\ncycle_start_day = 31", "[backhaul] cycle_start_day"),
        ("[controller\n", "not valid TOML"),
        ("[controller]\nping_interval = true", "[controller] ping_interval: expected a number"),
        ("[web]\nport = 0", "[web] port: expected a port 1–65535"),
        ("[web]\nmax_sessions = 0", "[web] max_sessions: expected 1–64"),
        ("[web]\nidle_minutes = 0.5", "[web] idle_minutes: expected an integer"),
        ('[web]\nhost = ""', "[web] host: expected an address"),
        ('[web]\ntls_certificate = "/etc/c.pem"', "[web] tls_key: expected both"),
        ('[web]\ntls_key = "/etc/k.pem"', "[web] tls_certificate: expected both"),
        ('[web]\npin = "1234"', "[web] pin: unknown key"),  # the PIN is a secret, never here
    ],
)
def test_mistakes_are_reported_with_file_and_key(text, needle):
    with pytest.raises(ConfigError) as exc:
        parse_config(text, source="site.toml")
    assert str(exc.value).startswith("site.toml: ")
    assert needle in str(exc.value)


def test_cli_reports_config_error_without_traceback(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text("[controller]\nport = 'abc'\n")
    result = CliRunner().invoke(
        cli, ["config", "check", "--config", str(bad)], standalone_mode=False
    )
    assert isinstance(result.exception, ConfigError)
    from pager_edge.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["config", "check", "--config", str(bad)])
    assert exit_info.value.code == 2


def test_secrets_file_must_be_0600(tmp_path):
    f = tmp_path / "secrets.env"
    f.write_text("PAGER_EDGE_SYNC_TOKEN=tok-abcdef123456\n")
    f.chmod(0o644)
    with pytest.raises(ConfigError, match="must be mode 0600"):
        read_secrets_file(f)
    f.chmod(0o600)
    assert read_secrets_file(f) == {"PAGER_EDGE_SYNC_TOKEN": "tok-abcdef123456"}


def test_secret_from_file_is_redacted_in_logs(tmp_path, monkeypatch):
    monkeypatch.delenv("PAGER_EDGE_SYNC_TOKEN", raising=False)
    f = tmp_path / "secrets.env"
    f.write_text('PAGER_EDGE_SYNC_TOKEN="tok-RECOGNISABLE-987"\n')
    os.chmod(f, 0o600)
    cfg = parse_config(f'[secrets]\npath = "{f}"\n')
    assert secret(cfg, "PAGER_EDGE_SYNC_TOKEN") == "tok-RECOGNISABLE-987"
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "sent %s", ("tok-RECOGNISABLE-987",), None
    )
    assert "RECOGNISABLE" not in RedactingFormatter().format(record)


def test_malformed_secrets_line_does_not_echo_the_line(tmp_path):
    f = tmp_path / "s.env"
    f.write_text("just-a-secret-value-without-key\n")
    f.chmod(0o600)
    with pytest.raises(ConfigError) as exc:
        read_secrets_file(f)
    assert "just-a-secret" not in str(exc.value) and "line 1" in str(exc.value)


@pytest.mark.parametrize(
    "text, needle",
    [
        ('[sync]\nenabled = true\nendpoint = "http://10.0.0.5/x"\n', "loopback"),
        (
            '[sync]\nenabled = true\nendpoint = "https://ingest.example/x"\n',
            "PAGER_EDGE_SYNC_TOKEN",
        ),
        (
            '[backhaul]\nenabled = true\nbase_url = "https://rws.example/rws/api/v1/"\n'
            'iccid = "8988216716970004975"\nusername = "u"\n',
            "PAGER_EDGE_CC_API_KEY",
        ),
    ],
)
def test_config_check_refuses_what_run_would_refuse(tmp_path, monkeypatch, text, needle):
    for name in ("PAGER_EDGE_SYNC_TOKEN", "PAGER_EDGE_CC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    f = tmp_path / "c.toml"
    f.write_text(text)
    result = CliRunner().invoke(cli, ["config", "check", "--config", str(f)], standalone_mode=False)
    assert isinstance(result.exception, ConfigError)
    assert needle in str(result.exception)


def test_more_config_mistakes_are_reported_not_raised(tmp_path):
    from agent.config import with_overrides

    with pytest.raises(ConfigError, match="IANA"):
        parse_config('[controller]\ntimezone = "America"\n')  # a directory in the zone database
    with pytest.raises(ConfigError, match="port 1–65535"):
        with_overrides(Config(), controller={"port": 0})  # `pager-edge run --port 0`
    f = tmp_path / "s.env"
    f.write_bytes(b"\xff\xfe\x00KEY=1\n")
    f.chmod(0o600)
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_secrets_file(f)
    d = tmp_path / "dir.env"
    d.mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="cannot read the secrets file"):
        read_secrets_file(d)


def test_to_toml_round_trips_a_configuration_built_in_memory():
    from agent.config import to_toml, with_overrides

    cfg = with_overrides(
        Config(),
        store={"path": '/tmp/a "quoted" päth 🍽.db'},
        controller={"port": 15683, "ping_interval": 2.5, "timezone": "Europe/Paris"},
        board={"kiosk_show_estimates": False},
        web={"max_sessions": 2},
    )
    text = to_toml(cfg)
    assert "[sync]" not in text  # only what differs from the defaults
    assert parse_config(text) == cfg
    assert to_toml(Config()) == "\n"
