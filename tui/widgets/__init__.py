"""Widgets of the wait-board: they render what their screen hands them and run no I/O."""
