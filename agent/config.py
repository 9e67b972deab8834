"""Configuration: one TOML file, validated up front, errors that name file, key and expectation.

Every section is a frozen dataclass with defaults, so `pager-edge demo` needs no file at all and a
site file only states what differs. Unknown keys are errors (a typo must not silently fall back to a
default). Secrets are never read from config.toml: see :func:`secret`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_CONFIG_PATHS = (Path("config.toml"), Path("/etc/pager-edge/config.toml"))


class ConfigError(Exception):
    """A configuration mistake, phrased for the person who edits the file."""

    def __init__(self, message: str, *, path: str | Path | None = None, key: str | None = None):
        self.path = str(path) if path is not None else None
        self.key = key
        where = ": ".join(p for p in (self.path, key) if p)
        super().__init__(f"{where}: {message}" if where else message)

    @property
    def problems(self) -> list[str]:
        """One line per mistake (several when a file has several)."""
        return [str(self)]


class ConfigErrors(ConfigError):
    """Several mistakes in one file, all reported at once."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))
        self.path = errors[0].path

    @property
    def problems(self) -> list[str]:
        return [str(e) for e in self.errors]


@dataclass(frozen=True)
class SiteConfig:
    id: str = "demo-site"
    name: str = "Demo restaurant"


@dataclass(frozen=True)
class ControllerConfig:
    host: str = "127.0.0.1"
    port: int = 5683
    ping_interval: float = 30.0
    # IANA zone of the transmitter's wall clock; empty means the host's zone.
    timezone: str = ""
    request_timeout: float = 5.0
    # Missing pings for this many intervals means the transmitter is gone.
    watchdog_intervals: float = 3.0
    max_backoff: float = 60.0
    page_mode: str = "Flash30Sec"
    # Largest notification payload accepted; larger ones are counted as malformed.
    max_payload_bytes: int = 256 * 1024
    # "udp6" (default, aiocoap's choice) or "simple6" for hosts with IPv6 disabled.
    transport: str = ""


@dataclass(frozen=True)
class StoreConfig:
    path: str = "pager-edge.db"
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # Group commit: at most this many documents per transaction (batches grow with load).
    commit_max_items: int = 256
    # Alert (never drop unsynced events) when the database file grows beyond this size.
    max_db_bytes: int = 512 * 1024 * 1024


@dataclass(frozen=True)
class SyncConfig:
    enabled: bool = False
    endpoint: str = ""
    site_id: str = ""  # empty: [site] id
    interval: float = 30.0  # how often the engine looks for new events (agent/sync/schedule.py)
    max_delay: float = 60.0  # they go once the oldest is this old, or a batch is full
    heartbeat_minutes: float = 30.0  # idle: an "alive" request this often (0: none)
    ca_file: str = ""  # PEM CA certificates for the endpoint; empty: the certifi bundle
    max_batch_events: int = 500
    max_batch_bytes: int = 256 * 1024
    timeout: float = 20.0
    max_backoff: float = 600.0
    retention_days: int = 30
    # sync --once, and the agent without [backhaul] (with it its readings decide): normal | …
    mode: Literal["normal", "conserve", "critical", "blocked"] = "normal"


@dataclass(frozen=True)
class BackhaulConfig:
    enabled: bool = False
    provider: Literal["control_center", "thingspace"] = "control_center"
    base_url: str = ""
    iccid: str = ""
    imei: str = ""
    account_number: str = ""
    username: str = ""
    cap_bytes: int = 0
    cycle_start_day: int = 1
    usage_interval: float = 1800.0
    session_interval: float = 600.0
    timeout: float = 20.0
    warn_percent: float = 75.0
    critical_percent: float = 95.0
    # Seconds: the sync holds every event until a reading decides its mode; then conserve.
    first_reading_timeout: float = 600.0


@dataclass(frozen=True)
class AgentConfig:
    # The agent counts as not running once its last heartbeat (every 5 s) is this old: the one
    # threshold `status`, the systemd watchdog and the board's "agent offline" banner all use.
    stale_after: float = 30.0


@dataclass(frozen=True)
class BoardConfig:
    refresh_interval: float = 0.2
    kiosk_show_estimates: bool = True
    # Seat and remove happen after this grace, with an Undo meanwhile (0: at once).
    undo_seconds: float = 8.0
    # A paged party not back after this long: nudge staff to re-page or remove.
    paged_nudge_minutes: float = 5.0
    # Terminal bell (a sound in the browser) when a party turns late or needs a nudge.
    sound: bool = False
    # "24h" (19:30) or "12h" (7:30 PM) on the board, the kiosk and reports.
    clock_format: Literal["24h", "12h"] = "24h"
    # "touch": finger-sized rows, a permanent action bar, large form buttons; "compact": one line
    # a party, keys and the footer; "auto": touch in a browser on a touch screen (the page says
    # so), compact in a terminal.
    layout: Literal["auto", "touch", "compact"] = "auto"
    # Opening hours, local, e.g. "11:00-23:30" (past midnight: "17:00-01:00"): outside them the
    # kiosk screen goes blank. Empty: always on.
    opening_hours: str = ""
    # Close out the night automatically at this local time ("03:00"): every party still open is
    # seated or removed as `close_out_action` says. Empty: only by hand.
    close_out_at: str = ""
    close_out_action: Literal["seat", "remove"] = "remove"
    # Pager numbers the transmitter accepts (the form refuses others before sending).
    pager_min: int = 1
    pager_max: int = 999

    def is_open(self, local_time: time) -> bool:
        """Within `opening_hours` (always, when none are set); a span may run past midnight."""
        start_text, _sep, end_text = self.opening_hours.partition("-")
        start, end = parse_hhmm(start_text), parse_hhmm(end_text)
        if start is None or end is None:
            return True
        now = (local_time.hour, local_time.minute)
        return start <= now < end if start <= end else now >= start or now < end


@dataclass(frozen=True)
class WebConfig:
    """`pager-edge web`: the staff board in a browser (PIN in PAGER_EDGE_WEB_PIN, never here)."""

    # 127.0.0.1 serves this machine only; a site binds the LAN ("0.0.0.0" or the Pi's address).
    host: str = "127.0.0.1"
    port: int = 8080
    # Board processes (one per open browser tab) at most; the kiosk has a pool of its own.
    max_sessions: int = 4
    # A staff tab untouched this long is ended; a sign-in unused this long expires.
    idle_minutes: int = 30
    # PEM files; both empty = plain HTTP, both set = HTTPS only.
    tls_certificate: str = ""
    tls_key: str = ""


@dataclass(frozen=True)
class CloudConfig:
    """`pager-edge cloud serve` (the chain's ingest service; see cloud/README.md)."""

    host: str = "127.0.0.1"
    port: int = 8480
    # Largest request body (gzip) and largest decompressed batch; bigger ones are answered 413.
    max_body_bytes: int = 1024 * 1024
    max_decoded_bytes: int = 16 * 1024 * 1024
    # Batches decoded and stored at once per replica (bounds memory); others wait their turn.
    max_concurrent_batches: int = 16
    request_timeout: float = 30.0
    pool_size: int = 10
    db_timeout: float = 10.0
    # rotate-token: the old token stays valid this long.
    token_overlap_hours: float = 168.0
    # Labels (guest names) are erased this long after the visit, for sites without their own
    # period; 0 keeps them.
    label_retention_days: int = 30
    shutdown_timeout: float = 20.0


@dataclass(frozen=True)
class SecretsConfig:
    # KEY=value lines (systemd EnvironmentFile syntax); must be mode 0600.
    path: str = ""


@dataclass(frozen=True)
class LoggingConfig:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


@dataclass(frozen=True)
class Config:
    site: SiteConfig = field(default_factory=SiteConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    backhaul: BackhaulConfig = field(default_factory=BackhaulConfig)
    board: BoardConfig = field(default_factory=BoardConfig)
    web: WebConfig = field(default_factory=WebConfig)
    cloud: CloudConfig = field(default_factory=CloudConfig)
    secrets: SecretsConfig = field(default_factory=SecretsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    # Where it came from, for messages; None for built-in defaults.
    source: str | None = None
    # What the file says that parses but is out of date (a key that moved), for `config check`.
    notes: tuple[str, ...] = ()

    @property
    def sync_site_id(self) -> str:
        return self.sync.site_id or self.site.id

    def transmitter_zone(self) -> ZoneInfo | None:
        """The configured transmitter zone, or None for the host's local zone."""
        return ZoneInfo(self.controller.timezone) if self.controller.timezone else None


_TYPE_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


class _Report:
    """Every mistake in a file, collected, so `config check` reports them all in one run."""

    def __init__(self, path: str | None):
        self.path = path
        self.errors: list[ConfigError] = []

    def add(self, message: str, key: str | None = None) -> None:
        self.errors.append(ConfigError(message, path=self.path, key=key))

    def raise_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise ConfigErrors(self.errors)


def _coerce(value: Any, hint: Any, *, path: str | None, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if isinstance(value, str):  # NORMAL, normal and Normal mean the same
            for choice in choices:
                if isinstance(choice, str) and choice.casefold() == value.casefold():
                    return choice
        expected = " | ".join(repr(c) for c in choices)
        raise ConfigError(f"expected one of {expected}, got {value!r}", path=path, key=key)
    if origin in (types.UnionType, typing.Union):
        raise TypeError(f"unsupported config type {hint}")  # pragma: no cover - schema bug
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool):
        raise ConfigError(f"expected {_TYPE_WORDS[int]}, got {value!r}", path=path, key=key)
    if not isinstance(value, hint):
        raise ConfigError(
            f"expected {_TYPE_WORDS.get(hint, hint.__name__)}, got {value!r}", path=path, key=key
        )
    return value


def _section(cls: type, raw: Any, report: _Report, *, name: str) -> Any:
    """One table; a bad key is reported and its default kept, so later checks still run."""
    if not isinstance(raw, dict):
        report.add("expected a table", f"[{name}]")
        return cls()
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            report.add(f"unknown key (known keys: {', '.join(sorted(known))})", f"[{name}] {key}")
            continue
        try:
            values[key] = _coerce(value, hints[key], path=report.path, key=f"[{name}] {key}")
        except ConfigError as exc:
            report.errors.append(exc)
    return cls(**values)


def _validate(cfg: Config) -> None:
    report = _Report(cfg.source)
    _check(cfg, report)
    report.raise_any()


def _check(cfg: Config, report: _Report) -> None:
    c = cfg.controller
    if not 1 <= c.port <= 65535:
        report.add(f"expected a port 1–65535, got {c.port}", "[controller] port")
    for key in ("ping_interval", "request_timeout", "watchdog_intervals", "max_backoff"):
        if getattr(c, key) <= 0:
            report.add("expected a positive number", f"[controller] {key}")
    if c.timezone:
        try:
            ZoneInfo(c.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            report.add(
                f"expected an IANA time zone such as 'Europe/Paris', got {c.timezone!r}",
                "[controller] timezone",
            )
    if c.transport not in ("", "udp6", "simple6"):
        report.add(
            f"expected 'udp6' or 'simple6', got {c.transport!r}",
            "[controller] transport",
        )
    if cfg.agent.stale_after < 10:
        # Below two heartbeats, a busy moment would read as the agent gone.
        report.add(
            f"expected 10 seconds or more, got {cfg.agent.stale_after:g}", "[agent] stale_after"
        )
    if not cfg.store.path:
        report.add("expected a file path", "[store] path")
    s = cfg.sync
    if s.enabled and not s.endpoint:
        report.add("expected an https:// URL when sync is enabled", "[sync] endpoint")
    if s.interval <= 0 or s.max_batch_events < 1:
        report.add("expected positive interval and batch size", "[sync]")
    for key in ("max_delay", "heartbeat_minutes"):
        if getattr(s, key) < 0:
            report.add("expected a number of 0 or more", f"[sync] {key}")
    if s.ca_file and not Path(s.ca_file).is_file():
        report.add(f"expected a PEM file of CA certificates: {s.ca_file!r}", "[sync] ca_file")
    if s.enabled and not s.site_id and is_placeholder_id(cfg.site.id):
        report.add(
            f"expected this restaurant's own id when sync is enabled (the cloud tells sites apart "
            f"by it), got the placeholder {cfg.site.id!r}",
            "[site] id",
        )
    _validate_cloud(cfg.cloud, report)
    b = cfg.backhaul
    if not 1 <= b.cycle_start_day <= 28:
        report.add(f"expected a day 1–28, got {b.cycle_start_day}", "[backhaul] cycle_start_day")
    if b.enabled and not b.base_url:
        report.add(
            "expected the operator's API base URL when backhaul is enabled",
            "[backhaul] base_url",
        )
    _validate_web(cfg.web, report)
    _validate_board(cfg.board, report)


def parse_hhmm(text: str) -> tuple[int, int] | None:
    """``"23:30"`` → (23, 30); None if it is not a 24-hour local time."""
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        return None
    h, m = int(hours), int(minutes)
    return (h, m) if 0 <= h <= 23 and 0 <= m <= 59 else None


def _validate_board(b: BoardConfig, report: _Report) -> None:
    if b.undo_seconds < 0 or b.undo_seconds > 120:
        report.add(f"expected 0–120 seconds, got {b.undo_seconds:g}", "[board] undo_seconds")
    if b.paged_nudge_minutes <= 0:
        report.add("expected a positive number of minutes", "[board] paged_nudge_minutes")
    if b.opening_hours:
        start, sep, end = b.opening_hours.partition("-")
        if not sep or parse_hhmm(start) is None or parse_hhmm(end) is None:
            report.add(
                f'expected local hours such as "11:00-23:30", got {b.opening_hours!r}',
                "[board] opening_hours",
            )
    if b.close_out_at and parse_hhmm(b.close_out_at) is None:
        report.add(
            f'expected a local time such as "03:00", got {b.close_out_at!r}', "[board] close_out_at"
        )
    if not 0 <= b.pager_min <= b.pager_max <= 65535:
        report.add(
            f"expected 0 ≤ pager_min ≤ pager_max ≤ 65535, got {b.pager_min}–{b.pager_max}",
            "[board] pager_max",
        )


def _validate_web(w: WebConfig, report: _Report) -> None:
    if not w.host:
        report.add("expected an address to listen on", "[web] host")
    if not 1 <= w.port <= 65535:
        report.add(f"expected a port 1–65535, got {w.port}", "[web] port")
    if not 1 <= w.max_sessions <= 64:
        report.add(f"expected 1–64 board sessions, got {w.max_sessions}", "[web] max_sessions")
    if not 1 <= w.idle_minutes <= 24 * 60:
        report.add(f"expected 1–1440 minutes, got {w.idle_minutes}", "[web] idle_minutes")
    if bool(w.tls_certificate) != bool(w.tls_key):
        missing = "tls_key" if w.tls_certificate else "tls_certificate"
        report.add(
            "expected both tls_certificate and tls_key (PEM file paths) or neither",
            f"[web] {missing}",
        )


def _validate_cloud(c: CloudConfig, report: _Report) -> None:
    if not 0 <= c.port <= 65535:
        report.add(f"expected a port 0–65535, got {c.port}", "[cloud] port")
    positive = (
        "max_body_bytes",
        "max_decoded_bytes",
        "max_concurrent_batches",
        "request_timeout",
        "pool_size",
        "db_timeout",
        "shutdown_timeout",
    )
    for key in positive:
        if getattr(c, key) <= 0:
            report.add("expected a positive number", f"[cloud] {key}")
    for key in ("token_overlap_hours", "label_retention_days"):
        if getattr(c, key) < 0:
            report.add("expected zero or more", f"[cloud] {key}")
    if c.max_decoded_bytes < c.max_body_bytes:
        report.add(
            f"expected at least max_body_bytes ({c.max_body_bytes})",
            "[cloud] max_decoded_bytes",
        )


PLACEHOLDER_IDS = frozenset({"change-me", "changeme", "change_me", "todo", "example"})
# RFC 5737 / RFC 3849 documentation addresses and RFC 2606 example domains: never a real site's.
_DOC_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)


def is_placeholder_id(site_id: str) -> bool:
    return site_id.strip().casefold() in PLACEHOLDER_IDS


def is_documentation_host(host: str) -> bool:
    """An address or name reserved for examples (what an installer's template ships)."""
    name = host.strip("[]").rstrip(".").casefold()
    if name in ("example.com", "example.org", "example.net") or name.endswith(
        (".example.com", ".example.org", ".example.net", ".example", ".invalid")
    ):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return any(address in net for net in _DOC_NETS)


def config_warnings(cfg: Config) -> list[str]:
    """Values that parse but are surely not this site's yet (the installer's placeholders)."""
    where = f"{cfg.source}: " if cfg.source else ""
    out = [f"{where}{note}" for note in cfg.notes]
    if is_placeholder_id(cfg.site.id) and not cfg.sync.enabled:
        out.append(f"{where}[site] id: still the placeholder {cfg.site.id!r}")
    if is_documentation_host(cfg.controller.host):
        out.append(
            f"{where}[controller] host: {cfg.controller.host} is a documentation address, "
            "not a transmitter; put the transmitter's LAN address here"
        )
    for key, url in (
        ("[sync] endpoint", cfg.sync.endpoint),
        ("[backhaul] base_url", cfg.backhaul.base_url),
    ):
        host = urlsplit(url).hostname or ""
        if url and is_documentation_host(host):
            out.append(f"{where}{key}: {host} is an example host, not a real one")
    return out


_NOT_SECTIONS = ("source", "notes")
# Keys that moved: (old section, key) → new section. The old place still works, with a warning.
MOVED_KEYS = {("board", "stale_after"): "agent"}


def _move_keys(raw: dict[str, Any]) -> tuple[str, ...]:
    """Carry keys from where older versions read them to where they live now (in `raw`)."""
    notes = []
    for (old, key), new in MOVED_KEYS.items():
        table = raw.get(old)
        if not isinstance(table, dict) or key not in table:
            continue
        value = table.pop(key)
        target = raw.setdefault(new, {})
        if isinstance(target, dict):
            target.setdefault(key, value)  # the new place wins when both are set
        notes.append(f"[{old}] {key}: moved to [{new}] {key}; please move it there")
    return tuple(notes)


def parse_config(text: str, *, source: str | None = None) -> Config:
    """Parse and validate TOML text; raise :class:`ConfigError` on any mistake."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=source) from None
    sections = {f.name: f for f in dataclasses.fields(Config) if f.name not in _NOT_SECTIONS}
    hints = typing.get_type_hints(Config)
    values: dict[str, Any] = {}
    report = _Report(source)
    notes = _move_keys(raw)
    for name, table in raw.items():
        if name not in sections:
            report.add(f"unknown section (known: {', '.join(sorted(sections))})", f"[{name}]")
            continue
        values[name] = _section(hints[name], table, report, name=name)
    cfg = Config(**values, source=source, notes=notes)
    _check(cfg, report)
    report.raise_any()
    return cfg


def load_config(path: str | Path | None = None) -> Config:
    """Load the given file, else the first default path that exists, else built-in defaults."""
    if path is None:
        path = next((p for p in DEFAULT_CONFIG_PATHS if p.is_file()), None)
        if path is None:
            return Config()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=path) from None
    return parse_config(text, source=str(path))


def with_overrides(cfg: Config, **sections: dict[str, Any]) -> Config:
    """A copy of `cfg` with some keys of some sections replaced (CLI flags, tests)."""
    changes = {
        name: dataclasses.replace(
            getattr(cfg, name), **{k: v for k, v in kv.items() if v is not None}
        )
        for name, kv in sections.items()
    }
    out = dataclasses.replace(cfg, **changes)
    _validate(out)
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    # A JSON string (ensure_ascii=False: no surrogate pairs) is a valid TOML basic string.
    return json.dumps(str(value), ensure_ascii=False)


def to_toml(cfg: Config) -> str:
    """`cfg` as config.toml text (keys that differ from the defaults): for processes started with
    `--config` by a caller that built its configuration in memory (the demo's web board)."""
    lines: list[str] = []
    for f in dataclasses.fields(Config):
        if f.name in _NOT_SECTIONS:
            continue
        section, default = getattr(cfg, f.name), getattr(Config(), f.name)
        changed = [
            (k.name, getattr(section, k.name))
            for k in dataclasses.fields(section)
            if getattr(section, k.name) != getattr(default, k.name)
        ]
        if changed:
            lines.append(f"[{f.name}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in changed]
    return "\n".join(lines) + "\n"
