"""One connection to the store file: the agent's writer, or a reader (possibly immutable)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from agent.clock import SYSTEM_CLOCK, Clock
from agent.store.reads import Reads
from agent.store.schema import StoreError, migrate, refuse_newer, user_version
from agent.store.writes import Writes


class Store(Reads, Writes):
    """One connection to the store. The agent holds one writer; readers open their own.

    A writer migrates the file first and runs in WAL with ``synchronous=FULL`` unless told
    otherwise (restaurants unplug things). A reader never changes the file.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        readonly: bool = False,
        synchronous: str = "FULL",
        clock: Clock = SYSTEM_CLOCK,
    ):
        self.path = Path(path)
        self.readonly = readonly
        self.immutable = False
        self.clock = clock
        if readonly:
            if not self.path.exists():
                raise StoreError(f"{self.path}: no database yet (is the agent running?)")
            conn = self._open_readonly()
            try:
                version = user_version(conn)
                if version == 0:
                    raise StoreError(
                        f"{self.path}: database not initialised yet (is the agent starting?)"
                    )
                refuse_newer(self.path, version)
            except StoreError:
                conn.close()
                raise
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            migrate(self.path)
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.row_factory = sqlite3.Row
        self.conn = conn
        self.db = sqlite_utils.Database(conn)

    def _open_readonly(self) -> sqlite3.Connection:
        """A read-only connection; `immutable` when WAL files cannot be created.

        A reader of a WAL database needs the ``-shm`` file. While the agent runs it exists; after
        a clean stop SQLite removes it, and a reader without write access to the directory (the
        kiosk user) cannot recreate it. With no ``-wal`` file nothing can be half-written, so the
        file is then read as immutable until :meth:`stale` says the agent writes again.
        """
        uri = f"file:{self.path}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=5)
        try:
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            return conn
        except sqlite3.OperationalError:
            conn.close()
            if Path(f"{self.path}-wal").exists():
                raise
        self.immutable = True
        return sqlite3.connect(f"{uri}&immutable=1", uri=True, check_same_thread=False)

    @property
    def stale(self) -> bool:
        """An immutable reader must reopen once the agent writes (a WAL file appears) again."""
        return self.immutable and Path(f"{self.path}-wal").exists()

    def file_bytes(self) -> int:
        """Database + WAL size on disk."""
        total = 0
        for suffix in ("", "-wal"):
            p = Path(f"{self.path}{suffix}")
            if p.exists():
                total += p.stat().st_size
        return total

    def close(self) -> None:
        self.conn.close()
