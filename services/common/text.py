"""What people type that other people will read: names and short notes, made safe to show.

A display name is shown to staff, a note to citizens. Neither may carry anything that
changes how the text around it looks: terminal escape sequences (``ESC [31m``),
control characters (NUL, BEL, backspace), bidirectional overrides and isolates
(U+202A-U+202E, U+2066-U+2069, which show "anna" as "anna" reversed or hide a word)
or invisible characters (zero-width space, soft hyphen, byte-order mark).

Each text is normalised (NFC, so "é" typed two ways is one name), stripped of those
characters and of surrounding whitespace, and runs of whitespace become one space
(notes keep their line breaks). Zero-width (non-)joiners stay where a script needs
them, between two letters of a non-Latin script such as Persian or Devanagari, or in
an emoji sequence; next to an ASCII character they are dropped, so they cannot hide
inside a Latin name. What is left empty is refused: a Pydantic error, a 422.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, StringConstraints
from pydantic_core import PydanticCustomError

# CSI (ESC [ ... final byte, or the one-byte CSI U+009B), OSC (ESC ] ... BEL or ST),
# then any other two-byte escape: removed whole, not just their ESC.
_ESCAPE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[@-_]?"
)
_JOINERS = {"\u200c", "\u200d"}  # zero-width non-joiner, zero-width joiner
_REMOVED_CATEGORIES = {"Cc", "Cf", "Cs"}  # controls, format characters, lone surrogates
_LINE_BREAK = re.compile(r"\r\n|[\n\r\u2028\u2029\x85\x0b\x0c]")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_line(value: str) -> str:
    """One line of visible text: see the module's description."""
    text = _ESCAPE.sub("", unicodedata.normalize("NFC", value))
    kept: list[str] = []
    for index, char in enumerate(text):
        if char.isspace():
            kept.append(" ")
        elif char in _JOINERS:
            if _joins_script(text, index):
                kept.append(char)
        elif unicodedata.category(char) not in _REMOVED_CATEGORIES:
            kept.append(char)
    return " ".join("".join(kept).split())


def clean_text(value: str) -> str:
    """Visible text that may run over several lines: each line as ``clean_line``; no more
    than one empty line in a row, none at the start or end."""
    lines = [clean_line(line) for line in _LINE_BREAK.split(value)]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")


def _joins_script(text: str, index: int) -> bool:
    before = text[index - 1] if index > 0 else ""
    after = text[index + 1] if index + 1 < len(text) else ""
    return all(
        neighbour
        and not neighbour.isascii()
        and not neighbour.isspace()
        and neighbour not in _JOINERS
        and unicodedata.category(neighbour) not in _REMOVED_CATEGORIES
        for neighbour in (before, after)
    )


def _refuse_empty(cleaned: str, message: str) -> str:
    if not cleaned:
        raise PydanticCustomError("text_empty", message)
    return cleaned


def _display_name(value: str) -> str:
    return _refuse_empty(clean_line(value), EMPTY_NAME)


def _visible_line(value: str) -> str:
    return _refuse_empty(clean_line(value), EMPTY_TEXT)


def _visible_text(value: str) -> str:
    return _refuse_empty(clean_text(value), EMPTY_TEXT)


EMPTY_NAME = (
    "Must contain a name of visible characters (control characters, escape sequences "
    "and direction overrides are removed)"
)
EMPTY_TEXT = "Must contain visible characters (control characters are removed)"
# The house limits, on what was sent (before cleaning).
NAME_MAX_LENGTH = 60
LINE_MAX_LENGTH = 80
TEXT_MAX_LENGTH = 500

# A person's name as others will see it (a citizen's, a staff member's, a guest's).
DisplayName = Annotated[
    str, StringConstraints(max_length=NAME_MAX_LENGTH), AfterValidator(_display_name)
]
# A short label shown to others, e.g. a department's topic.
VisibleLine = Annotated[
    str, StringConstraints(max_length=LINE_MAX_LENGTH), AfterValidator(_visible_line)
]
# A note shown to others that may have line breaks, e.g. staff's message to a citizen.
VisibleText = Annotated[
    str, StringConstraints(max_length=TEXT_MAX_LENGTH), AfterValidator(_visible_text)
]


def display_name(value: str) -> str:
    """``DisplayName`` outside Pydantic (e.g. an account made on the command line):
    the cleaned name, or ValueError."""
    cleaned = clean_line(value)
    if not cleaned or len(value) > NAME_MAX_LENGTH:
        raise ValueError(
            f"a display name has 1 to {NAME_MAX_LENGTH} characters, visible ones (control "
            "characters, escape sequences and direction overrides are removed)"
        )
    return cleaned
