"""A party's one-line description (the action panel's title): no empty slot between separators."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.session import SessionView
from tui.screens.party import describe

NOW = datetime(2026, 3, 13, 19, 30, tzinfo=UTC)


@pytest.mark.parametrize("label", [None, "", "   ", "\t"])
def test_a_party_without_a_label_has_no_doubled_separator(label):
    party = SessionView(
        uuid="u", number=37, label=label, party_size=2, created="2026-03-13T19:20:00Z"
    )
    line = describe(party, NOW)
    assert line == "Pager 37 · 2 guests · waiting 10m"


def test_a_labelled_party_shows_its_label_between():
    party = SessionView(uuid="u", number=37, label="Okafor", party_size=2)
    assert describe(party, NOW) == "Pager 37 · Okafor · 2 guests"


@pytest.mark.parametrize("label", [None, "", "   ", "\t"])
def test_alerts_and_questions_name_an_unlabelled_party_without_empty_brackets(label):
    from tui.core.parties import who

    party = SessionView(uuid="u", number=37, label=label, party_size=2)
    assert who(party) == "Pager 37"
    assert who(SessionView(uuid="u", number=37, label=" Okafor ")) == "Pager 37 (Okafor)"
