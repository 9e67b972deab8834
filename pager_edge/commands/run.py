"""`pager-edge run`: the agent daemon (see :mod:`agent.daemon`)."""

from __future__ import annotations

import asyncio
import logging

import click

from agent.config import ConfigError, config_warnings, load_config, with_overrides
from agent.daemon import Agent, run_service
from agent.logs import setup_logging
from agent.preflight import store_path_problem
from pager_edge.commands import config_option, db_option


@click.command("run")
@config_option()
@db_option()
@click.option("--host", help="override [controller] host")
@click.option("--port", type=int, help="override [controller] port")
def run_cmd(
    config_path: str | None, db_path: str | None, host: str | None, port: int | None
) -> None:
    """Run the agent daemon: observe the transmitter and record every lifecycle step."""
    cfg = load_config(config_path)
    cfg = with_overrides(cfg, store={"path": db_path}, controller={"host": host, "port": port})
    if reason := store_path_problem(cfg.store.path):
        raise ConfigError(reason, path=cfg.source, key="[store] path")
    setup_logging(cfg.logging.level)
    for warning in config_warnings(cfg):
        logging.getLogger("pager_edge").warning("%s", warning)
    asyncio.run(run_service(Agent(cfg)))
