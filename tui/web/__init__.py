"""The wait-board delivered to browsers: `pager-edge web` (see :mod:`tui.web.server`)."""
