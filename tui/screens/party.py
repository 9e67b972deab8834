"""The touch panels: tapping a party offers its actions as large buttons; "More…" the rest.

A host with a tablet has no keyboard; the same actions as the keys (page, seat, remove, edit),
one tap each, in buttons a finger hits. Enter on a row opens it too. It only says which action
was chosen; the staff screen carries it out exactly as it does for a key.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static
from textual.widgets.button import ButtonVariant

from agent.display import minutes
from agent.session import SessionView
from tui.core.actions import more_actions, offered
from tui.core.parties import shown_label, waited


def describe(party: SessionView, now: datetime) -> str:
    parts = [f"Pager {party.number}"]
    if label := shown_label(party):
        parts.append(label)
    if party.party_size:
        parts.append(f"{party.party_size} guests")
    if (w := waited(party, now)) is not None:
        parts.append(f"waiting {minutes(w)}")
    return " · ".join(parts)


class PartyActions(ModalScreen[str | None]):
    """Large buttons for one party's actions; dismissed with the chosen action (None: cancel)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="panel-cancel")
    ]

    def __init__(self, party: SessionView, now: datetime):
        super().__init__()
        self.party = party
        self.now = now

    def compose(self) -> ComposeResult:
        with Vertical(id="party-panel", classes="dialog"):
            yield Static(Text(describe(self.party, self.now)), classes="dialog-title")
            with Grid(id="party-actions"):
                for action, title in offered(self.party):
                    variant: ButtonVariant = "error" if action.danger else "primary"
                    yield Button(title, id=action.name, variant=variant)
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class MoreActions(ModalScreen[str | None]):
    """The touch layout's "More…": every board action that is not on the action bar (edit,
    re-page, filter, search, history, report, transmitter, close-out) as a large button, so a
    tablet reaches what a keyboard reaches. Dismissed with the chosen action (None: cancel)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="more-cancel")
    ]

    def __init__(self, *, has_selection: bool):
        super().__init__()
        self.has_selection = has_selection

    def compose(self) -> ComposeResult:
        with Vertical(id="more-panel", classes="dialog"):
            yield Static("More", classes="dialog-title")
            with Grid(id="more-actions"):
                for action in more_actions():
                    yield Button(
                        action.title or action.name,
                        id=action.name,
                        disabled=action.needs_selection and not self.has_selection,
                    )
                yield Button("Cancel", id="cancel")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
