"""The board process behind one browser tab, as the web server starts it:
``python -m tui.web.tablet --config PATH [--kiosk | --layout touch|compact]``.

The same board as `pager-edge board`, without the command line's machinery (click, the command
modules): each signed-in tablet is one such process on the Pi, so what it does not import is memory
saved per tablet (`pager-edge bench web`). Only the web server calls it; mistakes still end in
one readable line, as the command line's do.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from agent.config import ConfigError, load_config, with_overrides
from agent.store import StoreError

LAYOUTS = ("auto", "touch", "compact")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tui.web.tablet", allow_abbrev=False)
    parser.add_argument("--config", required=True, help="the web server's configuration file")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--kiosk", action="store_true", help="the read-only guest screen")
    group.add_argument("--layout", choices=LAYOUTS, help="the staff board's layout")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from tui.run import run_board_async

    args = parse(argv)
    try:
        cfg = with_overrides(load_config(args.config), board={"layout": args.layout})
        db = Path(cfg.store.path)
        if not args.kiosk and not db.exists():
            print(f"pager-edge board: {db}: no database yet (start the agent)", file=sys.stderr)
            return 1
        asyncio.run(run_board_async(cfg, db, kiosk=args.kiosk))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"pager-edge board: configuration error: {problem}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"pager-edge board: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
