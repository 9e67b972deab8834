"""``pager-edge simulate``: the simulated T7470 alone, for training, hardware-less installs and
interoperability tests. Binds loopback unless told otherwise; stops cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal

import click

log = logging.getLogger("agent.simulator")


async def _serve(
    host: str,
    port: int,
    ping_interval: float,
    flow: str,
    seed: int,
    drop_rate: float,
    speed: float,
) -> None:
    from agent.clock import SYSTEM_CLOCK, ScaledClock
    from agent.simulator.flow import GuestFlow
    from agent.simulator.server import Simulator

    clock = ScaledClock(speed) if speed != 1.0 else SYSTEM_CLOCK
    sim = await Simulator.start(
        host=host,
        port=port,
        ping_interval=ping_interval,
        seed=seed,
        drop_rate=drop_rate,
        clock=clock,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "seed %d, ping every %g s, drop rate %g, flow %s%s",
        seed,
        ping_interval,
        drop_rate,
        flow,
        f", clock and flow at {speed:g}× speed" if speed != 1.0 else "",
    )
    if host not in ("127.0.0.1", "::1", "localhost"):
        log.warning("listening on %s: reachable from the network, not just this host", host)
    flow_task = None
    if flow != "none":
        flow_task = asyncio.create_task(GuestFlow(sim, flow, speed=speed, seed=seed).run())
    try:
        await stop.wait()
        log.info("signal received, stopping")
    finally:
        if flow_task is not None:
            flow_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flow_task
        await sim.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


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
    log_level: str,
) -> None:
    """Run the built-in LRS T7470 simulator alone (CoAP on UDP, loopback by default)."""
    from agent.logs import setup_logging

    setup_logging(log_level.upper())
    if seed is None:
        # A fixed default would repeat uuids across runs and confuse a persistent agent store.
        seed = random.SystemRandom().randrange(1 << 31)
    try:
        asyncio.run(_serve(host, port, ping_interval, flow, seed, drop_rate, speed))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from None
