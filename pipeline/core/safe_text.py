"""Untrusted strings made safe to show: names and messages from boards, configs and inventories reach
terminal tables and reports, where a newline, an ANSI escape or a character XML forbids would break or
fake the output. Each output format adds its own escaping (HTML, Markdown, mathtext) on top."""
from __future__ import annotations

import re
import unicodedata

# ANSI/VT escape sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), 8-bit CSI, and two-byte ESC codes.
ANSI_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x9b[0-?]*[ -/]*[@-~]"
                           r"|\x1b[@-Z\\-_]")
HIDDEN_CATEGORIES = ("Cc", "Cf", "Cs", "Zl", "Zp")  # controls, bidi overrides and zero-widths, surrogates, breaks
REPLACEMENT = "?"
ELLIPSIS = "..."
TABLE_CELL_LIMIT = 40  # characters of a name in a terminal table column
# Characters XML 1.0 forbids anywhere, even escaped: most C0 controls, surrogates, U+FFFE and U+FFFF.
XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def one_line(value: object, limit: int | None = None) -> str:
    """`value` as one line of plain text: escape sequences dropped, whitespace breaks as spaces, other
    invisible or control characters as '?', cut to `limit` characters (with '...') when given."""
    text = ANSI_SEQUENCE.sub("", str(value))
    text = "".join(" " if char in "\t\n\r\v\f\x85\u2028\u2029" else
                   REPLACEMENT if unicodedata.category(char) in HIDDEN_CATEGORIES else char for char in text)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - len(ELLIPSIS), 0)] + ELLIPSIS
    return text


def table_cell(value: object) -> str:
    """A string a board, config or store holds, as a terminal table cell: no escape sequence or line break
    reaches the terminal, and a very long name cannot push the other columns off the screen."""
    return one_line(value, TABLE_CELL_LIMIT)


def xml_chars(text: str) -> str:
    """`text` without the characters XML 1.0 cannot hold (a parser refuses the whole file for one of them)."""
    return XML_FORBIDDEN.sub(REPLACEMENT, text)
