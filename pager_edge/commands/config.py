"""`pager-edge config check`: validate a configuration file and say what it means."""

from __future__ import annotations

import click

from agent.config import load_config
from agent.preflight import check_optional, secret_names
from pager_edge.commands import config_option


@click.group("config")
def config_group() -> None:
    """Configuration helpers."""


@config_group.command("check")
@config_option("(the file to check)")
def check_cmd(config_path: str | None) -> None:
    """Validate the file (and the secrets file it names); exit 2 with file, key and expectation."""
    cfg = load_config(config_path)
    names = secret_names(cfg)
    if names is None:
        secrets_note = "none (environment only)"
    else:
        secrets_note = f"{cfg.secrets.path} (0600, {len(names)} key(s): {', '.join(names)})"
    check_optional(cfg)
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
