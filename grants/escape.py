"""Neutralise text written back out (marked workbooks, CSV exports, email attachments).

A cell that starts with = + - @ tab or CR can be run as a formula by a spreadsheet (CSV/formula
injection), so such text is prefixed with an apostrophe, the spreadsheet's own "this is text" mark.
"""

from __future__ import annotations

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """The value, with text that could start a formula prefixed by an apostrophe; others unchanged."""
    if isinstance(value, str) and value.startswith(_TRIGGERS):
        return "'" + value
    return value
