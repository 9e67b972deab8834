"""Modal dialogs: the add/edit party form and the confirmation for destructive actions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar, Literal

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from agent.display import printable
from tui.core.actions import PartyFields
from tui.core.quotes import Quote

MAX_LABEL = 40
MAX_PARTY = 99
MAX_GOAL_MINUTES = 24 * 60
MAX_PAGER = 65535
SIZE_BUTTONS = 7  # the touch form's size buttons: 1 … 7, then "8+"


def _int_or_none(text: str) -> int | None:
    text = text.strip()
    return int(text) if text else None


class PartyForm(ModalScreen[PartyFields | None]):
    """Add a party (pager number, label, party size, goal pre-filled with the quote for a party of
    that size joining the queue now, its basis in words), or edit one (the pager number is fixed)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="form-cancel")
    ]

    def __init__(
        self,
        *,
        number: int | None = None,
        label: str | None = None,
        party_size: int | None = None,
        goal_seconds: int | None = None,
        edit: bool = False,
        suggest: Callable[[int | None], Quote] | None = None,
        taken: Sequence[int] = (),
        pagers: tuple[int, int] = (0, MAX_PAGER),
        touch: bool = False,
    ):
        super().__init__()
        self.edit = edit
        self.touch = touch  # size buttons, full-size fields and buttons
        # The label is shown as the host can read it; unchanged, it is not sent back.
        self.initial = (
            number,
            None if label is None else printable(label),
            party_size,
            goal_seconds,
        )
        self.suggest = suggest
        self.taken = set(taken)
        self.pagers = pagers  # the transmitter's range ([board] pager_min, pager_max)
        self._goal_touched = edit
        self._quote: Quote | None = None

    def compose(self) -> ComposeResult:
        number, label, size, goal = self.initial
        with Vertical(id="form", classes="dialog"):
            title = f"Edit party on pager {number}" if self.edit else "Add a party"
            yield Label(title, id="form-title", classes="dialog-title")
            with Horizontal(classes="field"):
                yield Label("Pager number", classes="field-label")
                yield Input(
                    "" if number is None else str(number),
                    type="integer",
                    id="number",
                    disabled=self.edit,
                    max_length=5,
                    compact=not self.touch,
                )
            with Horizontal(classes="field"):
                yield Label("Label", classes="field-label")
                yield Input(
                    label or "",
                    id="label",
                    max_length=MAX_LABEL,
                    placeholder="name",
                    compact=not self.touch,
                )
            with Horizontal(classes="field"):
                yield Label("Party size", classes="field-label")
                yield Input(
                    "" if size is None else str(size),
                    type="integer",
                    id="size",
                    compact=not self.touch,
                )
            if self.touch:
                # One tap for the usual sizes; "8+" leaves the field to type a larger one.
                with Horizontal(id="size-buttons"):
                    for n in range(1, SIZE_BUTTONS + 1):
                        yield Button(str(n), id=f"size-{n}", classes="size")
                    yield Button(f"{SIZE_BUTTONS + 1}+", id="size-more", classes="size")
            with Horizontal(classes="field"):
                yield Label("Goal (min)", classes="field-label")
                yield Input(
                    "" if goal is None else str(round(goal / 60)),
                    type="integer",
                    id="goal",
                    placeholder="default",
                    compact=not self.touch,
                )
            yield Static("", id="quote-basis", classes="hint")
            yield Static("", id="form-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button(
                    "Save" if self.edit else "Add",
                    variant="primary",
                    id="ok",
                    compact=not self.touch,
                )
                yield Button("Cancel", id="cancel", compact=not self.touch)

    def on_mount(self) -> None:
        if not self.edit:
            self._update_quote()
        focus = "#label" if self.edit or self.initial[0] is not None else "#number"
        self.query_one(focus, Input).focus()

    def _update_quote(self) -> None:
        if self.suggest is None:
            return
        size = self._value("#size")
        quote = self.suggest(size if isinstance(size, int) else None)
        self._quote = quote
        if not self._goal_touched:
            goal = self.query_one("#goal", Input)
            with goal.prevent(Input.Changed):
                goal.value = "" if quote.seconds is None else str(round(quote.seconds / 60))
        text = quote.text
        # The basis is our own words and numbers: text, never markup.
        self.query_one("#quote-basis", Static).update(Text(text[:1].upper() + text[1:]))

    def _value(self, selector: str) -> int | Literal["invalid"] | None:
        try:
            return _int_or_none(self.query_one(selector, Input).value)
        except ValueError:
            return "invalid"

    @on(Input.Changed, "#size")
    def _size_changed(self) -> None:
        if not self.edit:
            self._update_quote()

    @on(Button.Pressed, ".size")
    def _size_tapped(self, event: Button.Pressed) -> None:
        size = self.query_one("#size", Input)
        if event.button.id == "size-more":
            size.value = ""
            size.focus()  # the numeric keypad, for a larger party
            return
        size.value = (event.button.id or "").removeprefix("size-")  # the quote follows

    @on(Input.Changed, "#goal")
    def _goal_changed(self) -> None:
        self._goal_touched = True

    def validate(self) -> PartyFields | str:
        number = self._value("#number")
        size = self._value("#size")
        goal = self._value("#goal")
        label = self.query_one("#label", Input).value.strip()
        low, high = self.pagers
        if not isinstance(number, int) or not low <= number <= high:
            return f"Pager number: {low} to {high} on this transmitter"
        if not self.edit and number in self.taken:
            return f"Pager {number} is already in use on the board"
        if size is None and not self.edit:
            return "Party size: how many guests? (a blank is not 1)"
        if size == "invalid" or size is None or not 1 <= size <= MAX_PARTY:
            return f"Party size: 1 to {MAX_PARTY}"
        if goal == "invalid" or (isinstance(goal, int) and not 1 <= goal <= MAX_GOAL_MINUTES):
            return f"Goal: 1 to {MAX_GOAL_MINUTES} minutes, or empty for the default"
        goal_seconds = goal * 60 if isinstance(goal, int) else None
        size_value = size if isinstance(size, int) else None
        if not self.edit:
            return PartyFields(number, label or None, size_value, goal_seconds)
        _n, old_label, old_size, old_goal = self.initial
        return PartyFields(
            number,
            label=label if label != (old_label or "") else None,
            party_size=size_value if size_value != old_size else None,
            goal_seconds=goal_seconds
            if goal_seconds is not None and goal_seconds != old_goal
            else None,
        )

    def _submit(self) -> None:
        result = self.validate()
        if isinstance(result, str):
            self.query_one("#form-error", Static).update(result)
            return
        if self.edit and not result.changes:
            self.dismiss(None)
            return
        self.dismiss(result)

    @on(Input.Submitted)
    def _enter(self, event: Input.Submitted) -> None:
        """Enter moves to the next field, as a host types; from the last one it submits."""
        fields = [i for i in self.query(Input) if not i.disabled]
        here = fields.index(event.input) if event.input in fields else len(fields) - 1
        if here + 1 < len(fields):
            fields[here + 1].focus()
        else:
            self._submit()

    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        self._submit()

    @on(Button.Pressed, "#cancel")
    def _cancel_button(self) -> None:
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    """Yes/no for destructive actions (remove). Escape or n says no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm-yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm-no"),
    ]

    def __init__(self, question: str, *, yes: str = "Remove"):
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm", classes="dialog"):
            yield Static(Text(self.question), id="question")  # labels inside: text, not markup
            with Horizontal(classes="buttons"):
                # Full-size buttons: a confirmation is answered with a finger at the stand.
                yield Button(f"{self.yes} (y)", variant="error", id="yes")
                yield Button("Keep (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed, "#yes")
    def _yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def _no(self) -> None:
        self.dismiss(False)

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)
