"""User and candidate text on a terminal: shown as it is, never obeyed.

Reviewer names, notes, campaign names, formulas, ids and paths come from people (or from the
store they wrote); printed through rich they must not be read as markup (`[/b]` crashes
rich, `[red]eve` turns into a red "eve"), and printed to a terminal they must not carry
escape sequences (ANSI colours, cursor moves, a title change) or bidirectional overrides
that make the text read otherwise than it is stored."""

from __future__ import annotations

import logging
import re

from rich.logging import RichHandler
from rich.text import Text

# C0 controls but tab and newline, DEL, C1 controls (incl. the 8-bit CSI), the bidi embedding,
# override and isolate marks, and the line and paragraph separators.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(value: object) -> str:
    r"""`value` as text with every control character written out (`\x1b`), so that it
    shows as what it is; tabs become spaces, newlines stay."""
    return _UNSAFE.sub(_visible, str(value).replace("\t", " "))


def plain(value: object, style: str = "") -> Text:
    """A rich Text of `value`: no markup, no emoji codes, no control characters.

    Escaping markup alone is not enough: rich still turns `:warning:` into an emoji."""
    return Text(clean(value), style=style)


def labelled(label: str, style: str, value: object) -> Text:
    """`label: value` with the label styled and the value as plain text."""
    return Text.assemble((label, style), ": ", plain(value))


class SafeRichHandler(RichHandler):
    """RichHandler for messages that carry user text: markup off, controls written out."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["markup"] = False
        super().__init__(*args, **kwargs)

    def render_message(self, record: logging.LogRecord, message: str):
        return super().render_message(record, clean(message))
