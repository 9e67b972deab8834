"""The wait-board's data layer: no Textual here, only the store's read API and pure functions.

* :class:`Party` and :func:`party_cells` — one active session as the board shows it, computed from an
  injected clock (so snapshot tests are deterministic): time waited, time left or how late, state
  with a marker (``◆ PAGED``, ``▲ LATE``; ASCII fallbacks for the Linux console).
* :func:`wait_samples` / :func:`suggest_quote` — the suggested quote: the typical wait for a party
  size at this weekday and hour over the last weeks, else the transmitter's ``defaultTargetGoal``.
* :class:`BoardSource` — the read-only store connection: polls ``PRAGMA data_version`` and reads a
  consistent :class:`Snapshot` only when the agent committed something; copes with "no database
  yet" (the kiosk starts before the agent); strips labels at the source in kiosk mode.
* :func:`big_number` — block-glyph digits for the kiosk (half blocks, full blocks or ASCII).

Cells are ``(text, tone)`` pairs; the widgets map a tone to a colour (Okabe–Ito in truecolour, an
explicit ANSI mapping on a 16-colour console). The text alone always says the state.
"""

from __future__ import annotations

import dataclasses
import math
import sqlite3
import statistics as stats
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from agent.clock import iso_utc, to_utc
from agent.config import Config
from agent.display import printable
from agent.store import Store, StoreError

Clock = Callable[[], datetime]
Cell = tuple[str, str]  # (text, tone)


def utc_clock() -> datetime:
    return datetime.now(UTC)


# --- markers and palette ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Markers:
    paged: str
    late: str
    waiting: str
    seated: str
    removed: str
    ok: str
    bad: str
    warn: str
    sep: str
    times: str
    dash: str


UNICODE = Markers(
    paged="◆",
    late="▲",
    waiting="○",
    seated="✓",
    removed="✗",
    ok="●",
    bad="✗",
    warn="⚠",
    sep="·",
    times="×",
    dash="—",
)
ASCII = Markers(
    paged="*",
    late="!",
    waiting="-",
    seated="+",
    removed="x",
    ok="o",
    bad="X",
    warn="!!",
    sep="|",
    times="x",
    dash="-",
)

# tone -> (truecolour style: Okabe–Ito, 16-colour console style). On a 16-colour console orange and
# vermillion would both become yellow, so the console gets its own explicit mapping.
PALETTE: dict[str, tuple[str, str]] = {
    "late": ("bold #D55E00", "bold bright_red"),  # vermillion
    "soon": ("#E69F00", "yellow"),  # orange
    "paged": ("bold #56B4E9", "bold bright_cyan"),  # sky blue
    "ok": ("#009E73", "green"),  # bluish green
    "removed": ("#CC79A7", "magenta"),  # reddish purple
    "number": ("bold", "bold"),
    "muted": ("dim", "bright_black"),
    "": ("", ""),
}


def tone_style(tone: str, *, ansi: bool = False) -> str:
    return PALETTE.get(tone, ("", ""))[1 if ansi else 0]


# --- time helpers -----------------------------------------------------------------------------


def parse_iso(value: str | None) -> datetime | None:
    """The store's UTC ISO strings (``...Z``) → aware datetimes."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local(moment: datetime, zone: tzinfo | None) -> datetime:
    """`zone=None` means the host's local zone."""
    return moment.astimezone(zone) if zone is not None else moment.astimezone()


def minute_of(moment: datetime) -> datetime:
    """The table's time base: timers move together once a minute (one repaint a minute, not
    one a second; every duration on the board is shown in whole minutes anyway)."""
    return moment.replace(second=0, microsecond=0)


def minutes(seconds: float | None) -> str:
    """Coarse durations for the table: ``<1m``, ``12m``, ``1h05``."""
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    if s < 60:
        return "<1m"
    m = s // 60
    if m < 60:
        return f"{m}m"
    return f"{m // 60}h{m % 60:02d}"


def age_text(seconds: float | None) -> str:
    """How long ago, for the header: ``4 s``, ``3 min``, ``2 h``."""
    if seconds is None:
        return "never"
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    return f"{s // 3600} h"


# --- parties ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Party:
    """One active session as the board needs it (times parsed, label possibly absent)."""

    uuid: str
    number: int
    label: str | None = None
    party_size: int | None = None
    goal_seconds: int | None = None
    created: datetime | None = None
    first_notified: datetime | None = None
    notified: datetime | None = None
    state: str = "waiting"
    page_count: int = 0

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Party:
        return cls(
            uuid=row["uuid"],
            number=int(row["number"]),
            label=row.get("label"),
            party_size=row.get("party_size"),
            goal_seconds=row.get("goal_seconds"),
            created=parse_iso(row.get("created")),
            first_notified=parse_iso(row.get("first_notified")),
            notified=parse_iso(row.get("notified")),
            state=row.get("state") or "waiting",
            page_count=int(row.get("page_count") or 0),
        )

    @property
    def paged(self) -> bool:
        return self.state == "paged"

    def waited(self, now: datetime) -> float | None:
        if self.created is None:
            return None
        return (now - self.created).total_seconds()

    def slack(self, now: datetime) -> float | None:
        """Goal minus the wait until the first page (or until now): negative means late.

        "Late" is the transmitter's own definition: paged after the goal. A party still waiting past
        its goal is late already.
        """
        if self.goal_seconds is None or self.created is None:
            return None
        until = self.first_notified or now
        return self.goal_seconds - (until - self.created).total_seconds()

    def late(self, now: datetime) -> bool:
        slack = self.slack(now)
        return slack is not None and slack < 0


COLUMNS: tuple[tuple[str, str, int], ...] = (
    # key, title, width at 80 columns
    ("num", "#", 4),
    ("label", "Label", 14),
    ("size", "Size", 4),
    ("waited", "Waited", 6),
    ("quote", "Quote", 5),
    ("left", "Left/late", 10),
    ("state", "State", 15),
)
SOON_SECONDS = 120


def party_cells(p: Party, now: datetime, m: Markers = UNICODE) -> tuple[Cell, ...]:
    """The table row for one party, in :data:`COLUMNS` order."""
    slack = p.slack(now)
    late = slack is not None and slack < 0
    if slack is None:
        left: Cell = (m.dash, "muted")
    elif late:
        left = (f"{m.late} LATE {minutes(-slack)}", "late")
    elif p.paged:
        left = ("on time", "ok")
    else:
        left = (f"{minutes(slack)} left", "soon" if slack <= SOON_SECONDS else "ok")
    if p.paged:
        since = p.notified or p.first_notified
        text = f"{m.paged} PAGED {minutes((now - since).total_seconds()) if since else ''}"
        if p.page_count > 1:
            text += f" {m.times}{p.page_count}"
        state: Cell = (text.rstrip(), "paged")
    else:
        state = (f"{m.waiting} waiting", "late" if late else "")
    return (
        (str(p.number), "late" if late else "number"),
        (printable(p.label), ""),
        ("" if p.party_size is None else str(p.party_size), ""),
        (minutes(p.waited(now)), ""),
        ("" if p.goal_seconds is None else minutes(p.goal_seconds), "muted"),
        left,
        state,
    )


# party-size filter: (title, low, high)
SIZE_BUCKETS: tuple[tuple[str, int, int], ...] = (
    ("1–2", 1, 2),
    ("3–4", 3, 4),
    ("5–6", 5, 6),
    ("7+", 7, 10_000),
)


def size_bucket(size: int | None) -> int | None:
    if size is None:
        return None
    for i, (_title, low, high) in enumerate(SIZE_BUCKETS):
        if low <= size <= high:
            return i
    return None


def matches(p: Party, *, bucket: int | None = None, search: str = "") -> bool:
    """Filter by party-size bucket and search by label or pager number."""
    if bucket is not None and size_bucket(p.party_size) != bucket:
        return False
    needle = search.strip().casefold()
    if not needle:
        return True
    label = printable(p.label).casefold()  # search what the host sees
    if needle.isdigit():
        return str(p.number).startswith(needle) or needle in label
    return needle in label


def lowest_free_number(active: Iterable[int], *, start: int = 1, stop: int = 999) -> int | None:
    used = set(active)
    return next((n for n in range(start, stop + 1) if n not in used), None)


# --- history ----------------------------------------------------------------------------------


def actual_wait(row: dict[str, Any]) -> float | None:
    """Seconds from arrival to the first page; a party seated without a page waited until seated."""
    created = parse_iso(row.get("created"))
    if created is None:
        return None
    until = parse_iso(row.get("first_notified") or row.get("notified"))
    if until is None and row.get("state") == "cleared":
        until = parse_iso(row.get("cleared"))
    return None if until is None else (until - created).total_seconds()


HISTORY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("num", "#"),
    ("label", "Label"),
    ("size", "Size"),
    ("outcome", "Outcome"),
    ("quoted", "Quoted"),
    ("actual", "Actual"),
    ("verdict", "Verdict"),
    ("ended", "Ended"),
)


def history_cells(
    row: dict[str, Any], zone: tzinfo | None, m: Markers = UNICODE
) -> tuple[Cell, ...]:
    seated = row.get("state") == "cleared"
    outcome = (f"{m.seated} seated", "ok") if seated else (f"{m.removed} removed", "removed")
    wait = actual_wait(row)
    goal = row.get("goal_seconds")
    if wait is None or goal is None:
        verdict: Cell = (m.dash, "muted")
    elif wait > goal:
        verdict = (f"{m.late} LATE {minutes(wait - goal)}", "late")
    else:
        verdict = ("on time", "ok")
    ended = parse_iso(row.get("cleared"))
    return (
        (str(row["number"]), "number"),
        (printable(row.get("label")), ""),
        ("" if row.get("party_size") is None else str(row["party_size"]), ""),
        outcome,
        ("" if goal is None else minutes(goal), "muted"),
        (m.dash if wait is None else minutes(wait), ""),
        verdict,
        ("" if ended is None else local(ended, zone).strftime("%H:%M"), "muted"),
    )


@dataclass(frozen=True, slots=True)
class HistorySummary:
    seated: int
    removed: int
    average_wait: float | None
    on_time_percent: float | None


def summarize_history(rows: Sequence[dict[str, Any]]) -> HistorySummary:
    seated = sum(1 for r in rows if r.get("state") == "cleared")
    waits = [(w, r.get("goal_seconds")) for r in rows if (w := actual_wait(r)) is not None]
    judged = [(w, g) for w, g in waits if g is not None]
    return HistorySummary(
        seated=seated,
        removed=len(rows) - seated,
        average_wait=stats.fmean(w for w, _ in waits) if waits else None,
        on_time_percent=100.0 * sum(1 for w, g in judged if w <= g) / len(judged)
        if judged
        else None,
    )


def start_of_day(now: datetime, zone: tzinfo | None) -> datetime:
    """Local midnight of `now`'s day, as aware UTC."""
    here = local(now, zone)
    midnight = here.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(UTC)


# --- suggested quote --------------------------------------------------------------------------

QUOTE_WEEKS = 4
QUOTE_WINDOW_MINUTES = 60
QUOTE_MIN_SAMPLES = 3


@dataclass(frozen=True, slots=True)
class Quote:
    seconds: int | None
    basis: str
    samples: int = 0


def wait_samples(
    finished: Iterable[dict[str, Any]],
    now: datetime,
    zone: tzinfo | None,
    *,
    weeks: int = QUOTE_WEEKS,
    window_minutes: int = QUOTE_WINDOW_MINUTES,
) -> list[tuple[int | None, float]]:
    """(party size, wait) of finished parties that arrived on `now`'s weekday, within
    `window_minutes` of its time of day, over the last `weeks` weeks (today included)."""
    here = local(now, zone)
    minute_of_day = here.hour * 60 + here.minute
    oldest = now - timedelta(weeks=weeks, minutes=window_minutes)
    out: list[tuple[int | None, float]] = []
    for row in finished:
        created = parse_iso(row.get("created"))
        if created is None or created < oldest or created > now:
            continue
        c = local(created, zone)
        if c.weekday() != here.weekday():
            continue
        if abs(c.hour * 60 + c.minute - minute_of_day) > window_minutes:
            continue
        wait = actual_wait(row)
        if wait is not None and wait >= 0:
            out.append((row.get("party_size"), wait))
    return out


def suggest_quote(
    samples: Sequence[tuple[int | None, float]],
    party_size: int | None,
    *,
    default_goal: int | None,
    now: datetime | None = None,
    zone: tzinfo | None = None,
    min_samples: int = QUOTE_MIN_SAMPLES,
) -> Quote:
    """The median wait of comparable parties, rounded up to the minute; else the default goal."""
    bucket = size_bucket(party_size)
    if bucket is not None:
        waits = [w for size, w in samples if size_bucket(size) == bucket]
        if len(waits) >= min_samples:
            seconds = max(60, math.ceil(stats.median(waits) / 60) * 60)
            when = ""
            if now is not None:
                here = local(now, zone)
                when = f" on {here:%a} around {here:%H}h"
            return Quote(
                seconds,
                f"typical for {SIZE_BUCKETS[bucket][0]} guests{when}, "
                f"last {QUOTE_WEEKS} weeks ({len(waits)} parties)",
                len(waits),
            )
    if default_goal:
        return Quote(int(default_goal), "the transmitter's default goal", 0)
    return Quote(None, "no history yet; the transmitter applies its default", 0)


# --- big digits for the kiosk -----------------------------------------------------------------

# 3×5 pixel font.
_FONT: dict[str, tuple[str, ...]] = {
    "0": ("###", "#.#", "#.#", "#.#", "###"),
    "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"),
    "3": ("###", "..#", ".##", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"),
    "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"),
    "7": ("###", "..#", "..#", "..#", "..#"),
    "8": ("###", "#.#", "###", "#.#", "###"),
    "9": ("###", "#.#", "###", "..#", "###"),
    " ": ("...", "...", "...", "...", "..."),
}
_HALF = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}


def big_number(text: str, mode: str = "half") -> list[str]:
    """Render digits as blocks: ``half`` (3 rows, half blocks), ``full`` (5 rows, 2 columns a
    pixel) or ``ascii`` (5 rows of ``#``, for consoles without block glyphs)."""
    glyphs = [_FONT.get(ch, _FONT[" "]) for ch in text]
    rows = [" ".join(g[r] for g in glyphs) for r in range(5)]
    if mode == "ascii":
        return [r.replace(".", " ") for r in rows]
    if mode == "full":
        return ["".join("██" if c == "#" else "  " for c in r) for r in rows]
    pixels = [[c == "#" for c in r] for r in rows] + [[False] * len(rows[0])]
    return [
        "".join(_HALF[(top, bottom)] for top, bottom in zip(pixels[i], pixels[i + 1], strict=True))
        for i in (0, 2, 4)
    ]


# --- the source -------------------------------------------------------------------------------

_BASE_STATUS_KEYS = frozenset({"agent", "transmitter", "counters", "sessions", "store"})


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One consistent read of the store (or why there is none yet)."""

    ready: bool
    problem: str | None = None
    sessions: tuple[dict[str, Any], ...] = ()
    statistics: dict[str, Any] | None = None
    settings: dict[str, Any] | None = None
    health: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, dict[str, Any]] = field(default_factory=dict)  # sync, backhaul, …
    version: int | None = None
    read_at: datetime | None = None
    read_ms: float = 0.0

    @property
    def parties(self) -> list[Party]:
        return [Party.from_row(r) for r in self.sessions]

    @property
    def default_goal(self) -> int | None:
        goal = (self.settings or {}).get("defaultTargetGoal")
        return int(goal) if isinstance(goal, int | float) and goal > 0 else None


@dataclass(frozen=True, slots=True)
class AgentState:
    """Is the agent still writing? Computed from the health row and the clock."""

    stale: bool
    since: datetime | None  # last heartbeat (or stop time)
    stopped: bool
    connected: bool


def agent_state(health: dict[str, Any], now: datetime, stale_after: float) -> AgentState:
    beat = parse_iso(health.get("heartbeat_at"))
    stopped_at = parse_iso(health.get("stopped_at"))
    if stopped_at is not None:
        return AgentState(True, stopped_at, True, False)
    if beat is None:
        return AgentState(True, None, False, False)
    stale = (now - beat).total_seconds() > stale_after
    return AgentState(stale, beat, False, not stale and health.get("state") == "connected")


class BoardSource:
    """The board's read-only window on the agent's store.

    Thread-safe (one lock around the connection): the app polls from one worker thread and runs
    history and quote reads from others. ``kiosk=True`` removes labels from every row it returns,
    so guest names never reach the kiosk's widgets at all.
    """

    EXTRAS_EVERY = 2.0  # seconds between status-extras reads (sync/backhaul sections)
    QUOTE_CACHE = 300.0

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock = utc_clock,
        zone: tzinfo | None = None,
        kiosk: bool = False,
        config: Config | None = None,
    ):
        self.path = Path(path)
        self.config = config  # lets the status sections that need it (backhaul) be computed
        self.clock = clock
        self.zone = zone
        self.kiosk = kiosk
        self._store: Store | None = None
        self._lock = threading.Lock()
        self._version: int | None = None
        self._missing_reported = False
        self._extras: dict[str, dict[str, Any]] = {}
        self._extras_at = -math.inf
        self._samples: list[tuple[int | None, float]] | None = None
        self._samples_at = -math.inf

    # connection --------------------------------------------------------------------------

    def _open(self) -> Store | None:
        if self._store is not None and self._store.stale:
            self._drop()  # read as immutable while the agent was stopped; it writes again
        if self._store is None:
            try:
                self._store = Store(self.path, readonly=True)
            except (StoreError, sqlite3.Error):
                return None
        return self._store

    def _drop(self) -> None:
        if self._store is not None:
            try:
                self._store.close()
            finally:
                self._store = None
                self._version = None

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _missing(self, why: str) -> Snapshot:
        return Snapshot(ready=False, problem=why, read_at=self.clock())

    # polling -----------------------------------------------------------------------------

    def poll(self, *, force: bool = False) -> Snapshot | None:
        """A fresh snapshot if the store changed since the last one (or `force`), else None."""
        with self._lock:
            store = self._open()
            if store is None:
                if force or not self._missing_reported:
                    self._missing_reported = True
                    return self._missing(f"waiting for the agent's database at {self.path}")
                return None
            try:
                version = store.data_version()
                if not force and version == self._version:
                    return None
                snap = self._read(store, version)
            except sqlite3.Error as exc:
                # The agent is still creating the schema, or the file is not a database.
                self._drop()
                if force or not self._missing_reported:
                    self._missing_reported = True
                    return self._missing(f"database at {self.path} not ready: {exc}")
                return None
            self._version = version
            self._missing_reported = False
            return snap

    def _read(self, store: Store, version: int) -> Snapshot:
        t0 = time.perf_counter()
        with store.read_transaction():  # sessions, health and snapshots agree
            sessions = [dataclasses.asdict(v) for v in store.active_views()]
            statistics = store.latest_snapshot("statistics")
            settings = store.latest_snapshot("settings")
            health = store.health()
            if time.monotonic() - self._extras_at >= self.EXTRAS_EVERY:
                self._extras = self._read_extras(store)
                self._extras_at = time.monotonic()
        if self.kiosk:
            sessions = [{k: v for k, v in r.items() if k != "label"} for r in sessions]
        return Snapshot(
            ready=True,
            sessions=tuple(sessions),
            statistics=statistics,
            settings=settings,
            health=health,
            extras=self._extras,
            version=version,
            read_at=self.clock(),
            read_ms=(time.perf_counter() - t0) * 1000,
        )

    def _read_extras(self, store: Store) -> dict[str, dict[str, Any]]:
        """Optional status sections (sync, backhaul) contributed by other features."""
        from agent.status import collect_status

        try:
            status = collect_status(store, now=self.clock(), config=self.config)
        except Exception:  # an optional section must never take the board down
            status = {}
        return {
            k: v for k, v in status.items() if k not in _BASE_STATUS_KEYS and isinstance(v, dict)
        }

    # other reads -------------------------------------------------------------------------

    def finished_today(self) -> list[dict[str, Any]]:
        """Today's finished parties (local day), newest first. Empty before the database exists."""
        since = iso_z(start_of_day(self.clock(), self.zone))
        with self._lock:
            store = self._open()
            if store is None:
                return []
            try:
                rows = [dataclasses.asdict(v) for v in store.finished_views_since(since)]
            except sqlite3.Error:
                return []
        if self.kiosk:
            rows = [{k: v for k, v in r.items() if k != "label"} for r in rows]
        return rows

    def quote_samples(self, *, refresh: bool = False) -> list[tuple[int | None, float]]:
        """Comparable waits for this weekday and hour (cached for a few minutes)."""
        if not refresh and self._samples is not None:
            if time.monotonic() - self._samples_at < self.QUOTE_CACHE:
                return self._samples
        now = self.clock()
        start = iso_z(now - timedelta(weeks=QUOTE_WEEKS, minutes=QUOTE_WINDOW_MINUTES))
        with self._lock:
            store = self._open()
            if store is None:
                return []
            try:
                rows = [
                    dataclasses.asdict(v)
                    for v in store.finished_views_between(start, iso_z(now + timedelta(seconds=1)))
                ]
            except sqlite3.Error:
                return []
        self._samples = wait_samples(rows, now, self.zone)
        self._samples_at = time.monotonic()
        return self._samples

    def estimates(self, default_goal: int | None) -> list[tuple[str, Quote]]:
        """Estimated wait per party-size bucket (the kiosk's optional line)."""
        samples = self.quote_samples()
        return [
            (title, suggest_quote(samples, low, default_goal=default_goal))
            for title, low, _high in SIZE_BUCKETS
        ]


# --- header and banner text -------------------------------------------------------------------

Segments = list[Cell]


def _bytes(n: Any) -> str:
    if not isinstance(n, int | float):
        return "?"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def stats_segments(snap: Snapshot, m: Markers = UNICODE) -> Segments:
    """Statistics (served, average wait, on-time %) and what is on the board now."""
    s = snap.statistics or {}
    waiting = sum(1 for r in snap.sessions if r.get("state") == "waiting")
    paged = sum(1 for r in snap.sessions if r.get("state") == "paged")
    avg = s.get("averageTimeServed")
    on_time = s.get("percentOnTime")
    segs: Segments = [
        ("Served ", "muted"),
        (str(s.get("guestsServed", m.dash)), "number"),
        (f" {m.sep} avg wait ", "muted"),
        (minutes(avg) if isinstance(avg, int | float) else m.dash, "number"),
        (f" {m.sep} on time ", "muted"),
        (f"{on_time:.0f}%" if isinstance(on_time, int | float) else m.dash, "number"),
        (f"   Now {waiting} waiting", ""),
        (f" {m.sep} ", "muted"),
        (f"{paged} paged", "paged" if paged else ""),
    ]
    return segs


SKEW_WARN_SECONDS = 60


def health_segments(
    health: dict[str, Any], now: datetime, stale_after: float, m: Markers = UNICODE
) -> Segments:
    """Transmitter health: connected, last ping, clock skew, firmware."""
    agent = agent_state(health, now, stale_after)
    state = health.get("state") or "unknown"
    if agent.stale:
        link: Cell = (f"{m.bad} unknown (agent not writing)", "late")
    elif state == "connected":
        link = (f"{m.ok} connected", "ok")
    else:
        link = (f"{m.bad} {state.upper()}", "late")
    ping = parse_iso(health.get("last_ping_at"))
    skew = health.get("clock_skew_seconds")
    segs: Segments = [("Transmitter ", "muted"), link]
    segs += [
        (f" {m.sep} ping ", "muted"),
        (age_text((now - ping).total_seconds()) + " ago" if ping else "never", ""),
        (f" {m.sep} skew ", "muted"),
    ]
    if isinstance(skew, int | float):
        if abs(skew) >= SKEW_WARN_SECONDS:  # a wrong transmitter clock makes waits wrong
            segs.append((f"{m.warn} {skew:+.0f} s", "soon"))
        else:
            segs.append((f"{skew:+.0f} s", ""))
    else:
        segs.append(("?", "muted"))
    if health.get("firmware"):
        segs += [(f" {m.sep} fw ", "muted"), (printable(str(health["firmware"])), "muted")]
    return segs


def sync_segments(sync: dict[str, Any] | None, now: datetime, m: Markers = UNICODE) -> Segments:
    """Cloud-sync backlog, when the sync feature reports; empty otherwise."""
    if not sync:
        return []
    backlog = sync.get("backlog")
    segs: Segments = [
        ("Sync ", "muted"),
        (f"{backlog if backlog is not None else '?'} pending", "soon" if backlog else ""),
    ]
    last = sync.get("last_success")
    last_at = parse_iso(last) if isinstance(last, str) else None
    if last_at is not None:
        segs.append((f" {m.sep} ok {age_text((now - last_at).total_seconds())} ago", "muted"))
    else:
        segs.append((f" {m.sep} never synced", "muted"))
    if sync.get("bytes_sent") is not None:
        segs.append((f" {m.sep} {_bytes(sync['bytes_sent'])} sent", "muted"))
    if sync.get("quarantined"):
        segs.append((f" {m.sep} {m.warn} {sync['quarantined']} quarantined", "soon"))
    return segs


def backhaul_segments(bh: dict[str, Any] | None, m: Markers = UNICODE) -> Segments:
    """Backhaul SIM usage against its cap, when the backhaul feature reports; empty otherwise."""
    if not bh:
        return []
    segs: Segments = [("Backhaul ", "muted")]
    if "reading" in bh and bh["reading"] is None:
        return [*segs, ("no reading yet", "muted")]
    online = bh.get("online")
    if online is None:
        segs.append(("? link unknown", "muted"))
    else:
        segs.append(
            (f"{m.ok} online" if online else f"{m.bad} OFFLINE", "ok" if online else "late")
        )
    used = bh.get("used_bytes", bh.get("cycle_bytes"))
    cap = bh.get("cap_bytes")
    if isinstance(used, int | float):
        text = f" {m.sep} {_bytes(used)}"
        tone = ""
        if isinstance(cap, int | float) and cap > 0:
            pct = 100.0 * used / cap
            text += f" of {_bytes(cap)} ({pct:.0f}%)"
            tone = "late" if pct >= 95 else "soon" if pct >= 75 else ""
        segs.append((text, tone))
    if bh.get("projected_bytes") is not None:
        segs.append((f" {m.sep} proj. {_bytes(bh['projected_bytes'])}", "muted"))
    if bh.get("mode") and bh.get("mode") != "normal":
        segs.append((f" {m.sep} {m.warn} {bh['mode']}", "soon"))
    return segs


def visible_extras(
    extras: dict[str, dict[str, Any]], *, sync_enabled: bool, backhaul_enabled: bool
) -> dict[str, dict[str, Any]]:
    """Hide sections of features this site does not use (a disabled sync always has a backlog)."""
    out = dict(extras)
    sync = out.get("sync")
    if sync is not None and not sync_enabled and not sync.get("last_success"):
        del out["sync"]
    bh = out.get("backhaul")
    if bh is not None and not backhaul_enabled and bh.get("reading", bh) is None:
        del out["backhaul"]
    return out


@dataclass(frozen=True, slots=True)
class Banner:
    text: str
    kind: str  # "offline" (agent stale/stopped), "missing" (no database yet)


def banner(
    snap: Snapshot | None,
    now: datetime,
    stale_after: float,
    zone: tzinfo | None,
    m: Markers = UNICODE,
    *,
    kiosk: bool = False,
) -> Banner | None:
    """What is wrong with the data on screen, in words, or None when it is live."""
    if snap is None or not snap.ready:
        why = snap.problem if snap and snap.problem else "waiting for the agent's database"
        if kiosk:
            return Banner(
                f"{m.warn} Paging screen starting {m.dash} waiting for the pager system", "missing"
            )
        return Banner(f"{m.warn} {why}", "missing")
    agent = agent_state(snap.health, now, stale_after)
    if not agent.stale:
        return None

    def when(moment: datetime) -> str:
        here, today = local(moment, zone), local(now, zone)
        fmt = "%H:%M:%S" if here.date() == today.date() else "%a %d %b %H:%M"
        return f"{here.strftime(fmt)} ({age_text((now - moment).total_seconds())} ago)"

    if kiosk:
        since = f" since {local(agent.since, zone):%H:%M}" if agent.since else ""
        return Banner(
            f"{m.warn} OFFLINE{since} {m.dash} numbers may be out of date, please ask the host",
            "offline",
        )
    if agent.stopped and agent.since:
        return Banner(
            f"{m.warn} AGENT STOPPED at {when(agent.since)} {m.dash} the board is not updating",
            "offline",
        )
    if agent.since:
        return Banner(
            f"{m.warn} AGENT NOT WRITING since {when(agent.since)} {m.dash} the board may be out of date",
            "offline",
        )
    return Banner(f"{m.warn} the agent has not written a heartbeat yet", "offline")


# --- the transmitter's direct replies ---------------------------------------------------------


def record_row(
    record: Any, zone: tzinfo | None, base: dict[str, Any] | None
) -> dict[str, Any] | None:
    """A session the transmitter returned in its reply, as a store-shaped row (None: it ended).

    `base` is what the board showed before, so the re-page count stays right.
    """
    if record.ended:
        return None
    row = dict(base or {})
    notified = iso_utc(to_utc(record.notified, zone))
    paged = notified is not None or record.state == "paged"
    previous = row.get("notified")
    count = int(row.get("page_count") or 0)
    if notified is not None and (previous is None or notified > previous):
        count += 1
    row.update(
        uuid=record.uuid,
        number=record.number,
        label=record.label,
        created=iso_utc(to_utc(record.created, zone)) or row.get("created"),
        notified=notified or previous,
        first_notified=row.get("first_notified") or notified,
        state="paged" if paged else "waiting",
        page_count=max(count, 1) if paged else count,
    )
    if record.party_size is not None:
        row["party_size"] = record.party_size
    if record.goal_seconds is not None:
        row["goal_seconds"] = record.goal_seconds
    if record.id is not None:
        row["transmitter_id"] = record.id
    return row


_SETTLE_KEYS = ("state", "page_count", "label", "party_size", "goal_seconds")


class Overlay:
    """What the transmitter just answered, shown before the agent has recorded it.

    An entry is a store-shaped row, or None for "this session ended". It is dropped once the
    store agrees (or shows something newer), or after `ttl` seconds: the store is the truth.
    """

    def __init__(self, ttl: float = 15.0, monotonic: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.monotonic = monotonic
        self._items: dict[str, tuple[dict[str, Any] | None, float]] = {}
        self.version = 0  # bumped on every change, so a view knows when to recompute

    def __len__(self) -> int:
        return len(self._items)

    def put(self, uuid: str, row: dict[str, Any] | None) -> None:
        self._items[uuid] = (row, self.monotonic() + self.ttl)
        self.version += 1

    def settle(self, rows: Iterable[dict[str, Any]]) -> None:
        store = {r["uuid"]: r for r in rows}
        now = self.monotonic()
        for uuid, (row, deadline) in list(self._items.items()):
            have = store.get(uuid)
            if now >= deadline:
                caught_up = True
            elif row is None:
                caught_up = have is None
            elif have is None:
                caught_up = False
            else:
                newer = int(have.get("page_count") or 0) > int(row.get("page_count") or 0)
                caught_up = newer or all(have.get(k) == row.get(k) for k in _SETTLE_KEYS)
            if caught_up:
                del self._items[uuid]
                self.version += 1

    def merge(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The store's rows with the replies applied, oldest first."""
        if not self._items:
            return list(rows)
        out = []
        seen = set()
        for r in rows:
            seen.add(r["uuid"])
            if r["uuid"] in self._items:
                row = self._items[r["uuid"]][0]
                if row is not None:
                    out.append(row)
            else:
                out.append(r)
        added = [
            row for uuid, (row, _d) in self._items.items() if row is not None and uuid not in seen
        ]
        if added:
            out += added
            out.sort(key=lambda r: (r.get("created") or "", r.get("transmitter_id") or 0))
        return out
