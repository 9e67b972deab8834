"""The composition root: the `pager-edge` command line, the demo and the benchmarks.

The only package that knows `agent`, `tui` and `cloud` together. The libraries below it never
import it (tests/test_layering.py checks), and click lives here only: `agent`, `tui` and `cloud`
offer plain and async functions that these commands parse options for and report on.
"""
