"""`pager-edge controller set-clock` and `pager-edge page`: what the transmitter offers, from a shell."""

from __future__ import annotations

import asyncio

import click

from agent.config import Config, load_config
from pager_edge.commands import config_option


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"pager-edge: {message}", err=True)
    raise SystemExit(code)


@click.group("controller")
def controller_group() -> None:
    """The transmitter itself: its clock."""


@controller_group.command("set-clock")
@config_option()
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def set_clock_cmd(config_path: str | None, yes: bool) -> None:
    """Set the transmitter's clock to this host's time in [controller] timezone.

    Refused while this host's own clock is not synchronised (a Raspberry Pi has no hardware
    clock): its guess would make every wait wrong. Exit 0 when the clocks agree within 2 s.
    """
    cfg = load_config(config_path)
    asyncio.run(_set_clock(cfg, yes))


async def _set_clock(cfg: Config, yes: bool) -> None:
    from agent.clock import SYSTEM_CLOCK, wall_time
    from agent.controller.client import ControllerError, connected
    from agent.skew import (
        ClockRefused,
        format_skew,
        host_clock_synchronised,
        set_transmitter_clock,
        transmitter_skew,
    )

    zone = cfg.transmitter_zone()
    where = cfg.controller.timezone or "this host's zone"
    if host_clock_synchronised() is False:
        _fail(
            "this host's clock is not synchronised yet (no NTP): refusing to copy it onto the "
            "transmitter; wait for NTP (timedatectl: 'System clock synchronized: yes')",
            2,
        )
    async with connected(cfg) as client:
        try:
            skew = await transmitter_skew(client, zone, SYSTEM_CLOCK)
            target = wall_time(SYSTEM_CLOCK.now(), zone)
            click.echo(f"transmitter clock is {format_skew(skew)} from this host")
            if not yes and not click.confirm(
                f"Set it to {target:%Y-%m-%d %H:%M:%S} ({where})?", default=False
            ):
                _fail("not changed", 1)
            _before, after = await set_transmitter_clock(client, zone, synchronised=lambda: True)
        except (ControllerError, ClockRefused) as exc:
            _fail(f"cannot set the transmitter's clock: {exc}", 1)
    click.echo(f"transmitter clock set; now {format_skew(after)} from this host")
    if abs(after) >= 2:
        _fail("the transmitter's clock is still more than 2 s off", 1)


@click.command("page")
@click.argument("number", type=click.IntRange(0, 65535))
@click.option("--mode", help="page mode (default: [controller] page_mode, e.g. Flash30Sec, Vibe1)")
@click.option("--message", help="text for alphanumeric pagers")
@config_option()
def page_cmd(number: int, mode: str | None, message: str | None, config_path: str | None) -> None:
    """Page any pager number: a staff pager, or a guest pager to find it (no session needed)."""
    cfg = load_config(config_path)
    asyncio.run(_page(cfg, number, mode, message))


async def _page(cfg: Config, number: int, mode: str | None, message: str | None) -> None:
    from agent.controller.client import ControllerError, connected
    from agent.display import printable

    async with connected(cfg) as client:
        try:
            await client.page_pager(number, page_mode=mode, message=message)
        except ControllerError as exc:
            _fail(f"page {number}: {printable(str(exc))}", 1)
    click.echo(f"paged {number} ({mode or cfg.controller.page_mode})")
