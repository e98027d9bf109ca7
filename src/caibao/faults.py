"""Named points where a test can kill the process, to prove crash safety with real kills.

``CAIBAO_KILL_AT=<name>`` makes the process end at once (``os._exit``: no
cleanup handler, no ``finally``, exactly like ``kill -9``) when it reaches the
point of that name; ``<name>#<n>`` at its n-th visit. Unset, a point costs one
dictionary lookup. The points are listed where they are used (``grep -n
"faults.point" src``).
"""

from __future__ import annotations

import os

KILL_ENV = "CAIBAO_KILL_AT"
KILLED_EXIT_CODE = 137  # what a shell reports for SIGKILL, so callers see "killed"

_visits: dict[str, int] = {}


def point(name: str) -> None:
    wanted = os.environ.get(KILL_ENV)
    if not wanted:
        return
    _visits[name] = _visits.get(name, 0) + 1
    if wanted in (name, f"{name}#{_visits[name]}"):
        os._exit(KILLED_EXIT_CODE)
