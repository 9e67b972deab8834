"""`pager-edge status`: the agent's health for people and (``--json``) for scripts."""

from __future__ import annotations

import json

import click

from agent.config import load_config
from agent.preflight import store_path_problem
from agent.status import collect_status, format_status, judge, unknown_status
from agent.store import Store, StoreError
from pager_edge.commands import config_option, db_option


@click.command("status")
@config_option()
@db_option("database file to read")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def status_cmd(config_path: str | None, db_path: str | None, as_json: bool) -> None:
    """Transmitter health, counters and session figures from the agent's store.

    Exit status as monitoring expects: 0 OK, 1 warning (transmitter disconnected, large clock
    skew, lost parties, sync alert), 2 critical (agent not running, store not writable),
    3 unknown (no database yet). ``--json`` prints JSON in every case.
    """
    cfg = load_config(config_path)
    path = db_path or cfg.store.path
    try:
        store = Store(path, readonly=True)
    except StoreError as exc:
        s = unknown_status(str(path), str(exc))
    else:
        try:
            s = collect_status(store, config=cfg)
        finally:
            store.close()
        s["verdict"] = judge(s, store_problem=store_path_problem(path))
    click.echo(json.dumps(s, indent=2) if as_json else format_status(s))
    raise SystemExit(s["verdict"]["code"])
