"""Commands: (to be filled)."""

from __future__ import annotations

COMMANDS: list = []
