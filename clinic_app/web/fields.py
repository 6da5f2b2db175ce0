"""Form field helpers shared by every page's forms."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wtforms import SelectMultipleField
from wtforms import widgets
from wtforms.fields.choices import SelectChoice


def opts(pairs: Iterable[tuple[Any, str]]) -> list[SelectChoice]:
    """``(value, label)`` pairs as WTForms choices (tuples are deprecated in WTForms 3.3)."""
    return [SelectChoice(str(value), label) for value, label in pairs]


class CheckboxList(SelectMultipleField):
    """A multiple choice shown as labelled checkboxes (keyboard friendly, no JS)."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()
