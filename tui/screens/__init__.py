"""Screens of the wait-board: staff board, history, kiosk and the modal dialogs."""
