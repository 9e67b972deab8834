"""`python -m pager_edge …` — the same as the `pager-edge` console script."""

from pager_edge.cli import main

main()
