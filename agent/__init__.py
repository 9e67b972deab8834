"""pager-edge: host-stand agent for LRS T7470 guest pagers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pager-edge")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+src"
