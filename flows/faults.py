"""Named crash points for the kill tests: DELEGATION_FAULT=<point> SIGKILLs the process there.

`DELEGATION_FAULT=after-commit@3` dies the third time the point is reached (earlier files finish).
Production never sets the variable; the check is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = ("during-apply", "after-commit", "after-delivery", "after-archive")
_reached: dict[str, int] = {}


def point(name: str) -> None:
    """Die here, at once and without clean-up, if the environment asks for it."""
    assert name in POINTS, name
    wanted = os.environ.get("DELEGATION_FAULT")
    if not wanted:
        return
    where, _, nth = wanted.partition("@")
    if where != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
