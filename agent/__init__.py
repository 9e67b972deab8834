"""pager-edge: host-stand agent for LRS T7470 guest pagers."""

from __future__ import annotations

from functools import cache


@cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pager-edge")
    except PackageNotFoundError:  # running from a source tree without install
        return "0.0.0+src"


def __getattr__(name: str) -> str:
    # Looked up on first use: importlib.metadata (email, zipfile, csv…) costs every process
    # that imports the agent ≈ 2.5 MB, and a board process per tablet never asks for it.
    if name == "__version__":
        return _version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
