"""`pager-edge config check`: validate a configuration file and say what it means."""

from __future__ import annotations

import click

from agent.config import load_config, read_secrets_file


@click.group("config")
def config_group() -> None:
    """Configuration helpers."""


@config_group.command("check")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="file to check")
def check_cmd(config_path: str | None) -> None:
    """Validate the file (and the secrets file it names); exit 2 with file, key and expectation."""
    cfg = load_config(config_path)
    if cfg.secrets.path:
        names = sorted(read_secrets_file(cfg.secrets.path))  # checks mode 0600 too
        secrets_note = f"{cfg.secrets.path} (0600, {len(names)} key(s): {', '.join(names)})"
    else:
        secrets_note = "none (environment only)"
    _check_optional(cfg)
    zone = cfg.controller.timezone or "host local zone"
    click.echo(f"{cfg.source or 'built-in defaults'}: OK")
    click.echo(f"  site:        {cfg.site.id}")
    click.echo(f"  transmitter: coap://{cfg.controller.host}:{cfg.controller.port} ({zone})")
    click.echo(f"  store:       {cfg.store.path} (synchronous={cfg.store.synchronous})")
    click.echo(
        f"  sync:        {'enabled → ' + cfg.sync.endpoint if cfg.sync.enabled else 'disabled'}"
    )
    click.echo(f"  backhaul:    {cfg.backhaul.provider if cfg.backhaul.enabled else 'disabled'}")
    click.echo(f"  secrets:     {secrets_note}")


def _check_optional(cfg) -> None:
    """What `pager-edge run` would refuse at start-up for sync and backhaul, said now."""
    from agent.config import ConfigError, secret

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
