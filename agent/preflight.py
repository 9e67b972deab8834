"""What `pager-edge run` would refuse at start-up, said before starting (`pager-edge config check`).

The daemon finds these mistakes too, but only when it starts on site; checking them from the
command line lets an installer see them all while the file is still open in the editor.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from agent.config import Config, ConfigError, ConfigErrors
from agent.secrets import read_secrets_file, secret


def secret_names(cfg: Config) -> list[str] | None:
    """The keys of the secrets file (checked for mode 0600), or None when there is none."""
    if not cfg.secrets.path:
        return None
    return sorted(read_secrets_file(cfg.secrets.path))


def store_path_problem(path: str | Path) -> str | None:
    """Why the agent could not create or write its database at `path`, or None.

    Tried, not only looked up in the permission bits (root ignores those): an existing directory
    gets a scratch file created and removed in it.
    """
    p = Path(path)
    if p.is_dir():
        return f"{p} is a directory, not a database file"
    if p.exists():
        if not os.access(p, os.R_OK | os.W_OK):
            return f"{p} is not writable by this user"
    parent = p.parent
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot create {p}: {parent} is not a directory"
    try:
        # The directory's own check: WAL needs -wal and -shm files beside the database.
        if parent == p.parent:
            fd, scratch = tempfile.mkstemp(prefix=".pager-edge-check-", dir=parent)
            os.close(fd)
            os.unlink(scratch)
        elif not os.access(parent, os.W_OK | os.X_OK):
            return f"cannot create {p.parent}: {parent} is not writable by this user"
    except OSError as exc:
        return f"cannot write in {parent}: {exc.strerror or exc}"
    return None


def preflight(cfg: Config) -> list[ConfigError]:
    """Every mistake start-up would meet (secrets file, store path, sync, backhaul); sends nothing."""
    problems: list[ConfigError] = []

    def check(step: Callable[[], object]) -> None:
        try:
            step()
        except ConfigErrors as exc:
            problems.extend(exc.errors)
        except ConfigError as exc:
            problems.append(exc)

    check(lambda: secret_names(cfg))
    if reason := store_path_problem(cfg.store.path):
        problems.append(ConfigError(reason, path=cfg.source, key="[store] path"))
    if cfg.sync.enabled:
        check(lambda: _check_sync(cfg))
    if cfg.backhaul.enabled:
        from agent.backhaul.monitor import make_client

        check(lambda: make_client(cfg))  # checks [backhaul] keys and the provider's secrets
    return problems


def _check_sync(cfg: Config) -> None:
    from agent.sync.engine import TOKEN_ENV, SyncSetupError, check_endpoint

    problems: list[ConfigError] = []
    try:
        check_endpoint(cfg.sync.endpoint)
    except SyncSetupError as exc:
        problems.append(ConfigError(str(exc), path=cfg.source, key="[sync] endpoint"))
    try:
        token = secret(cfg, TOKEN_ENV)
    except ConfigError as exc:
        problems.append(exc)
        token = "unknown"
    if not token:
        problems.append(
            ConfigError(
                f"sync is enabled but {TOKEN_ENV} is not set (environment or [secrets] path file)",
                path=cfg.source,
                key="[sync]",
            )
        )
    if problems:
        raise problems[0] if len(problems) == 1 else ConfigErrors(problems)
