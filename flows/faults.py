"""Named crash points for the kill tests: DELEGATION_FAULT=<point> SIGKILLs the process there.

Production never sets the variable; the check is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = ("during-apply", "after-commit", "after-delivery")


def point(name: str) -> None:
    """Die here, at once and without clean-up, if the environment asks for it."""
    assert name in POINTS, name
    if os.environ.get("DELEGATION_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
