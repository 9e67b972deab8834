"""One connection to the store file: the agent's writer, or a reader (possibly immutable)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

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


def backup(source: str | Path, target: str | Path) -> int:
    """A consistent copy of the store at `target`, taken while the agent keeps writing.

    SQLite's online backup copies pages under a read transaction, restarting only if the source
    changes mid-copy; the copy lands in a temporary file first and is renamed into place, so
    `target` is never a half-written database. Returns the copy's size in bytes.
    """
    as_directory = str(target).endswith(("/", "\\"))
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise StoreError(f"{source}: no database to back up")
    if as_directory:
        target.mkdir(parents=True, exist_ok=True)
    if target.is_dir():
        target = target / f"{source.stem}-{time.strftime('%Y%m%d-%H%M%S')}{source.suffix or '.db'}"
    partial = target.with_name(f".{target.name}.partial")
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst, pages=1024)
            # One self-contained file (the copy inherits WAL mode; its -wal must not stay behind
            # under the temporary name): checkpoint into the file, then close before renaming.
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
            src.close()
        partial.replace(target)
    except (sqlite3.Error, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise StoreError(f"cannot back up {source} to {target}: {exc}") from exc
    return target.stat().st_size
