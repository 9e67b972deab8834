"""The simulated T7470 alone (``pager-edge simulate``), for training, hardware-less installs and
interoperability tests. Binds loopback unless told otherwise; stops cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from datetime import tzinfo
from pathlib import Path

log = logging.getLogger("agent.simulator")


async def serve_until_signalled(
    host: str,
    port: int,
    ping_interval: float,
    flow: str,
    seed: int,
    drop_rate: float,
    speed: float,
    *,
    tz: tzinfo | None = None,
    truth: Path | None = None,
) -> None:
    """Serve on `host`:`port` (0: any free port) with an optional guest flow until a signal.

    `tz` is the transmitter's zone (None: the host's); `truth` receives the simulator's ground
    truth (every session with its true UTC times, JSON) when it stops — what an agent's export of
    the same evening must equal.
    """
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
        tz=tz,
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
        if truth is not None:
            truth.write_text(json.dumps(sim.ground_truth(), ensure_ascii=False, indent=1))
        await sim.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
