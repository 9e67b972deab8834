"""`pager-edge config check`: validate a configuration file and say what it means."""

from __future__ import annotations

import click

from agent.config import ConfigErrors, config_warnings, load_config
from agent.preflight import preflight, secret_names
from pager_edge.commands import config_option


@click.group("config")
def config_group() -> None:
    """Configuration helpers."""


@config_group.command("check")
@config_option("(the file to check)")
def check_cmd(config_path: str | None) -> None:
    """Validate the file and everything `run` would refuse (secrets, store path, sync, backhaul).

    Every mistake is reported at once, one line each with file, key and expectation (exit 2);
    values that are surely still the installer's placeholders are warnings.
    """
    cfg = load_config(config_path)
    problems = preflight(cfg)
    if problems:
        raise ConfigErrors(problems)
    for warning in config_warnings(cfg):
        click.echo(f"warning: {warning}", err=True)
    names = secret_names(cfg)
    if names is None:
        secrets_note = "none (environment only)"
    else:
        secrets_note = f"{cfg.secrets.path} (0600, {len(names)} key(s): {', '.join(names)})"
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
