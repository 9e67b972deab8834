"""``pager-edge simulate``: the built-in T7470 alone (see :mod:`agent.simulator.run`)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click


@click.command("simulate")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=5683, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--ping-interval", default=30.0, show_default=True, type=click.FloatRange(min=0.01),
    help="Seconds between pings to each observer.",
)  # fmt: skip
@click.option(
    "--flow", type=click.Choice(["none", "steady", "rush"]), default="none", show_default=True,
    help="Generate guests: none, steady, or rush (denser).",
)  # fmt: skip
@click.option(
    "--seed", type=int, default=None, help="RNG seed (uuids, flow, faults). Default: random."
)
@click.option(
    "--drop-rate", default=0.0, show_default=True, type=click.FloatRange(0.0, 1.0),
    help="Fraction of notifications silently not sent.",
)  # fmt: skip
@click.option(
    "--speed", default=1.0, show_default=True, type=click.FloatRange(min=0.01, min_open=False),
    help="Run the guest flow and the transmitter clock this many times faster.",
)  # fmt: skip
@click.option(
    "--timezone",
    "zone",
    metavar="ZONE",
    default=None,
    help="IANA zone of the simulated transmitter's wall clock (default: the host's).",
)
@click.option(
    "--ground-truth",
    "truth",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="When stopped, write every session with its true UTC times (JSON) to this file.",
)
@click.option(
    "--log-level", default="INFO", show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)  # fmt: skip
def simulate_cmd(
    host: str,
    port: int,
    ping_interval: float,
    flow: str,
    seed: int | None,
    drop_rate: float,
    speed: float,
    zone: str | None,
    truth: str | None,
    log_level: str,
) -> None:
    """Run the built-in LRS T7470 simulator alone (CoAP on UDP, loopback by default)."""
    from agent.logs import setup_logging
    from agent.simulator.run import serve_until_signalled

    setup_logging(log_level.upper())
    if seed is None:
        # A fixed default would repeat uuids across runs and confuse a persistent agent store.
        seed = random.SystemRandom().randrange(1 << 31)
    tz = None
    if zone:
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise click.BadParameter(
                f"expected an IANA time zone such as 'America/Chicago', got {zone!r}",
                param_hint="--timezone",
            ) from None
    run = serve_until_signalled(
        host, port, ping_interval, flow, seed, drop_rate, speed, tz=tz,
        truth=Path(truth) if truth else None,
    )  # fmt: skip
    try:
        asyncio.run(run)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from None
