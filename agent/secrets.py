"""Secrets (API keys, tokens, the web PIN): from the environment, else from a separate file.

Never from config.toml: a configuration file is shared, copied and pasted into support tickets.
The secrets file (``[secrets] path``, ``KEY=value`` lines in systemd ``EnvironmentFile`` syntax)
must be readable by its owner alone (mode 0600), or it is refused; every value read is registered
with the log redactor, so it never reaches a log line.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from agent.config import Config, ConfigError


def read_secrets_file(path: str | Path) -> dict[str, str]:
    """Read KEY=value lines from a file that only its owner may read (mode 0600 or stricter)."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ConfigError("secrets file not found", path=p) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the secrets file: {exc.strerror}", path=p) from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise ConfigError(
            f"secrets file must be mode 0600 (only its owner may read it), "
            f"it is {stat.S_IMODE(st.st_mode):04o}",
            path=p,
        )
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read the secrets file: {reason}", path=p) from None
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            # Do not echo the line: it may be a secret.
            raise ConfigError("expected KEY=value", path=p, key=f"line {n}")
        k, v = line.split("=", 1)
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
            v = v[1:-1]
        out[k.strip()] = v
    return out


def secret(cfg: Config, name: str) -> str | None:
    """A secret from the environment, else from the 0600 secrets file; registered for redaction."""
    from agent.logs import register_secret

    value = os.environ.get(name)
    if not value and cfg.secrets.path:
        value = read_secrets_file(cfg.secrets.path).get(name)
    if value:
        register_secret(value)
    return value or None
