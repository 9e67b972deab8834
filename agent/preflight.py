"""What `pager-edge run` would refuse at start-up, said before starting (`pager-edge config check`).

The daemon finds these mistakes too, but only when it starts on site; checking them from the
command line lets an installer see them while the file is still open in the editor.
"""

from __future__ import annotations

from agent.config import Config, ConfigError, read_secrets_file, secret


def secret_names(cfg: Config) -> list[str] | None:
    """The keys of the secrets file (checked for mode 0600), or None when there is none."""
    if not cfg.secrets.path:
        return None
    return sorted(read_secrets_file(cfg.secrets.path))


def check_optional(cfg: Config) -> None:
    """Sync and backhaul settings and their secrets, as start-up checks them; sends nothing."""
    if cfg.sync.enabled:
        from agent.sync.engine import TOKEN_ENV, SyncSetupError, check_endpoint

        try:
            check_endpoint(cfg.sync.endpoint)
        except SyncSetupError as exc:
            raise ConfigError(str(exc), path=cfg.source, key="[sync] endpoint") from None
        if not secret(cfg, TOKEN_ENV):
            raise ConfigError(
                f"sync is enabled but {TOKEN_ENV} is not set (environment or [secrets] path file)",
                path=cfg.source,
                key="[sync]",
            )
    if cfg.backhaul.enabled:
        from agent.backhaul.monitor import make_client

        make_client(cfg)  # checks [backhaul] keys and the provider's secrets, sends nothing
