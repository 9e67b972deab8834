"""A throw-away PostgreSQL cluster for the tests and the benchmark: initdb + pg_ctl in a temp dir.

Debian's ``postgresql`` package installs the server binaries under ``/usr/lib/postgresql/<major>/bin``
without putting them on PATH, and ``initdb`` refuses to run as root — so as root the cluster runs
as ``nobody`` (``setpriv``), with its directory handed to that user. It listens on 127.0.0.1 on a
private port only, with ``trust`` authentication for local connections: a cluster nobody else can
reach, that lives exactly as long as the object.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Self

NOBODY = 65534
SUPERUSER = "postgres"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries here; the message says what to install."""


def server_bin() -> Path:
    """The newest ``/usr/lib/postgresql/*/bin`` holding initdb and pg_ctl (or $PG_BIN)."""
    env = os.environ.get("PG_BIN")
    candidates = [env] if env else sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_major)
    for d in reversed(candidates):
        if d and (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return Path(d)
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
    )


def _major(path: str) -> int:
    try:
        return int(Path(path).parent.name)
    except ValueError:
        return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TempCluster:
    """``with TempCluster() as pg: pg.dsn("mydb")``. `durable=False` turns fsync off (tests only)."""

    def __init__(self, *, durable: bool = True, max_connections: int = 200):
        self.bin = server_bin()
        self.durable = durable
        self.max_connections = max_connections
        self.port = free_port()
        self.root: Path | None = None
        self._as_user: list[str] = []

    @property
    def data(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str, timeout: float = 120) -> None:
        res = subprocess.run(
            [*self._as_user, *argv], capture_output=True, text=True, timeout=timeout
        )
        if res.returncode != 0:
            log = self.root / "server.log" if self.root else None
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{Path(argv[0]).name} failed: {res.stderr.strip()}\n{tail}")

    def start(self) -> Self:
        # Directly in /tmp (world-traversable): a pytest tmp_path is private to root.
        self.root = Path(tempfile.mkdtemp(prefix="pager-edge-pg-"))
        self.root.chmod(0o755)
        (self.root / "socket").mkdir()
        if os.geteuid() == 0:
            for p in (self.root, self.root / "socket"):
                os.chown(p, NOBODY, NOBODY)
            self._as_user = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        opts = [
            "-c listen_addresses=127.0.0.1",
            f"-c port={self.port}",
            f"-c unix_socket_directories={self.root / 'socket'}",
            f"-c max_connections={self.max_connections}",
            "-c shared_buffers=64MB",
        ]
        if not self.durable:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        try:
            self._run(
                str(self.bin / "pg_ctl"),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data),
                "-l",
                str(self.root / "server.log"),
                "-o",
                " ".join(opts),
            )
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        return self

    def stop(self) -> None:
        if self.root is None:
            return
        try:
            self._run(str(self.bin / "pg_ctl"), "stop", "-m", "fast", "-w", "-D", str(self.data))
        except (RuntimeError, subprocess.TimeoutExpired):
            self._run(str(self.bin / "pg_ctl"), "stop", "-m", "immediate", "-D", str(self.data))
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
