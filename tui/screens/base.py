"""What every screen of the board shares: typed access to its app, and the main view's contract."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.screen import Screen

if TYPE_CHECKING:
    from tui.app import BoardApp


class LiveScreen(Screen[None]):
    """Any screen of the board (history, report, transmitter, the main view): it reads the app's
    model and settings, and may show live data (the app calls :meth:`refresh_view`)."""

    @property
    def board(self) -> BoardApp:
        """The app, as the board it is (its model, settings and markers are read from here)."""
        return cast("BoardApp", self.app)

    def refresh_view(self) -> None:
        """The model changed or the clock ticked; a screen that shows live data redraws it."""


class MainView(LiveScreen):
    """The board's main view, at the bottom of the screen stack: the staff board or the kiosk.
    The app calls :meth:`refresh_view` when the model changed or the clock ticked; the view reads
    the app's model and settings and redraws what changed."""

    def select_number(self, number: int) -> bool:
        """Put the cursor on a pager's row, if the view has one."""
        return False

    def flash(self, uuid: str) -> None:
        """Draw the eye to a party's row for a moment, if the view shows it."""
