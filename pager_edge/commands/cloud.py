"""`pager-edge cloud …`: the ingest service and its admin commands (thin wrappers, see cloud/).

The server libraries (aiohttp, asyncpg) come with the ``pager-edge[cloud]`` extra, which a site's
Pi never installs; they are imported inside the commands (:mod:`cloud.setup` checks for them), so
``pager-edge --help`` works without them and a command run without them says what to install.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any, TypeVar

import click

from agent.config import Config, load_config
from agent.logs import setup_logging
from cloud import setup
from pager_edge.commands import config_option as config_option_for

T = TypeVar("T")

config_option = config_option_for("([cloud])")


class SetupError(click.ClickException):
    """Something to install or configure first (exit status 2, as for other commands)."""

    exit_code = 2


def need_extra() -> None:
    """aiohttp and asyncpg are installed, else one line naming the extra and exit status 2."""
    try:
        setup.need_extra()
    except setup.SetupError as exc:
        raise SetupError(str(exc)) from None


def database_url(cfg: Config) -> str:
    """The DSN from the environment or secrets file, else one line and exit status 2."""
    try:
        return setup.database_url(cfg)
    except setup.SetupError as exc:
        raise SetupError(str(exc)) from None


def _run(cfg: Config, work: Callable[[Any], Awaitable[T]]) -> T:
    """Connect, migrate, run `work(conn)`; admin errors become one line and exit status 1."""
    need_extra()
    import asyncpg

    from cloud.sites import SiteError

    dsn = database_url(cfg)
    try:
        return asyncio.run(setup.with_database(cfg, dsn, work))
    except SiteError as exc:
        raise click.ClickException(str(exc)) from None
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise click.ClickException(f"database: {type(exc).__name__}: {exc}") from None


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM-DD, got {value!r}") from None


@click.group("cloud")
def cloud_group() -> None:
    """The chain's ingest service on PostgreSQL (needs pager-edge[cloud]; see cloud/README.md)."""


@cloud_group.command("serve")
@config_option
@click.option("--host", help="listen address (default [cloud] host)")
@click.option("--port", type=int, help="listen port (default [cloud] port; 0: any free port)")
def serve_cmd(config_path: str | None, host: str | None, port: int | None) -> None:
    """Receive sync batches on /v1/batches until SIGTERM; GET /healthz for load balancers."""
    from agent.config import with_overrides

    need_extra()
    from cloud.server import serve

    cfg = with_overrides(load_config(config_path), cloud={"host": host, "port": port})
    setup_logging(cfg.logging.level)
    dsn = database_url(cfg)

    def listening(urls: list[str]) -> None:
        click.echo(f"listening on {' '.join(urls)}")
        sys.stdout.flush()

    try:
        asyncio.run(serve(cfg.cloud, dsn, on_listening=listening))
    except OSError as exc:  # the port is taken, the address is not ours
        raise click.ClickException(
            f"cannot listen on {cfg.cloud.host}:{cfg.cloud.port}: {exc.strerror or exc}"
        ) from None


@cloud_group.command("add-site")
@config_option
@click.argument("site")
@click.option("--timezone", "zone", required=True, help="IANA zone of the restaurant")
@click.option(
    "--label-retention-days",
    type=click.IntRange(min=0),
    help="erase guest labels this many days after the visit (default [cloud]; 0: keep)",
)
def add_site_cmd(
    config_path: str | None, site: str, zone: str, label_retention_days: int | None
) -> None:
    """Register SITE and print its token (once: only its hash is kept)."""
    from cloud.sites import add_site

    cfg = load_config(config_path)
    token = _run(cfg, lambda conn: add_site(conn, site, zone, label_retention_days))
    click.echo(
        f"site {site} added; its token follows (shown once: put it in the site's secrets file "
        "as PAGER_EDGE_SYNC_TOKEN)",
        err=True,
    )
    click.echo(token)


@cloud_group.command("rotate-token")
@config_option
@click.argument("site")
@click.option(
    "--overlap-hours",
    type=click.FloatRange(min=0),
    help="how long the old token stays valid (default [cloud] token_overlap_hours)",
)
def rotate_token_cmd(config_path: str | None, site: str, overlap_hours: float | None) -> None:
    """Print a new token for SITE; its current tokens expire after the overlap."""
    from cloud.sites import rotate_token

    cfg = load_config(config_path)
    hours = cfg.cloud.token_overlap_hours if overlap_hours is None else overlap_hours
    token = _run(cfg, lambda conn: rotate_token(conn, site, timedelta(hours=hours)))
    click.echo(f"new token for {site} (shown once); the old one stays valid {hours:g} h", err=True)
    click.echo(token)


@cloud_group.command("revoke-site")
@config_option
@click.argument("site")
def revoke_site_cmd(config_path: str | None, site: str) -> None:
    """Refuse every token of SITE from now on (its data stays; rotate-token re-admits it)."""
    from cloud.sites import revoke_site

    n = _run(load_config(config_path), lambda conn: revoke_site(conn, site))
    click.echo(f"site {site} revoked ({n} tokens)")


@cloud_group.command("set-site")
@config_option
@click.argument("site")
@click.option("--timezone", "zone", help="IANA zone of the restaurant")
@click.option("--label-retention-days", type=click.IntRange(min=0), help="0: keep labels")
@click.option("--default-retention", is_flag=True, help="use [cloud] label_retention_days")
def set_site_cmd(
    config_path: str | None,
    site: str,
    zone: str | None,
    label_retention_days: int | None,
    default_retention: bool,
) -> None:
    """Change SITE's time zone or label retention."""
    from cloud.sites import set_site

    _run(
        load_config(config_path),
        lambda conn: set_site(
            conn,
            site,
            zone=zone,
            label_retention_days=label_retention_days,
            default_retention=default_retention,
        ),
    )
    click.echo(f"site {site} updated")


@cloud_group.command("list-sites")
@config_option
@click.option("--json", "as_json", is_flag=True)
def list_sites_cmd(config_path: str | None, as_json: bool) -> None:
    """Sites, their zones, retention and how many tokens are valid now."""
    from agent.display import printable
    from cloud.sites import list_sites

    sites = _run(load_config(config_path), list_sites)
    if as_json:
        click.echo(json.dumps([s.__dict__ for s in sites], default=str, indent=1))
        return
    for s in sites:
        state = f"revoked {s.revoked_at:%Y-%m-%d}" if s.revoked_at else f"{s.tokens} tokens"
        days = "default" if s.label_retention_days is None else s.label_retention_days
        click.echo(f"{printable(s.site)}  {s.timezone}  labels kept: {days}  {state}")


@cloud_group.command("report")
@config_option
@click.option("--site", help="one site only")
@click.option("--since", callback=_date, help="first local day, YYYY-MM-DD")
@click.option("--until", callback=_date, help="last local day, YYYY-MM-DD")
@click.option(
    "--by",
    type=click.Choice(["day", "hour", "party-size"]),
    default="day",
    show_default=True,
    help="per local day, or per day and hour of arrival, or per day and party size",
)
@click.option("--json", "as_json", is_flag=True, help="the view's rows as JSON")
def report_cmd(
    config_path: str | None,
    site: str | None,
    since: date | None,
    until: date | None,
    by: str,
    as_json: bool,
) -> None:
    """Parties, seated, walk-aways, lost, quoted vs actual wait, on-time share (the views)."""
    from cloud.report import format_report, report_rows

    rows = _run(
        load_config(config_path),
        lambda conn: report_rows(conn, by=by, site=site, since=since, until=until),
    )
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
    else:
        click.echo(format_report(rows, by))


@cloud_group.command("forget")
@config_option
@click.argument("site")
@click.option("--before", required=True, callback=_date, help="local date, YYYY-MM-DD")
def forget_cmd(config_path: str | None, site: str, before: date) -> None:
    """Erase the guest labels of SITE's sessions created before a date (figures stay)."""
    from cloud.sites import forget

    n = _run(load_config(config_path), lambda conn: forget(conn, site, before))
    click.echo(f"{site}: labels erased from {n} events of sessions created before {before}")
