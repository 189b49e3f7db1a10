"""Amounts of time and data as people read them: "5 minutes", "7 days", "1.2 MB"."""

from __future__ import annotations

import math
from datetime import timedelta

_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60))


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}{'s' if n != 1 else ''}"


def wait(seconds: float) -> str:
    """How long until something is allowed again, rounded up: "40 seconds", "3 minutes"."""
    seconds = max(0, math.ceil(seconds))
    if seconds < 60:
        return _plural(seconds, "second")
    return _plural(math.ceil(seconds / 60), "minute")


def remaining(seconds: float) -> str:
    """How long something stays valid, in its largest whole unit: "7 days", "23 hours"."""
    seconds = max(0.0, seconds)
    for unit, size in _UNITS:
        if seconds >= size:
            return _plural(math.floor(seconds / size + 0.02), unit)  # 6 d 23 h 59 m 59 s reads "7 days"
    return "less than a minute"


def duration(delta: timedelta) -> str:
    """A configured period exactly: "7 days", "36 hours", "90 minutes" (a single day reads "24 hours")."""
    seconds = int(delta.total_seconds())
    for unit, size in _UNITS:
        if seconds >= size and seconds % size == 0 and not (unit == "day" and seconds // size == 1):
            return _plural(seconds // size, unit)
    return wait(seconds)


def size(n: int | None) -> str:
    if n is None:
        return ""
    value = float(n)
    for unit in ("bytes", "KB", "MB"):
        if value < 1000:
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"
