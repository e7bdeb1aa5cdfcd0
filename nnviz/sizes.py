"""Sizes in bytes as people write them (`8GB`, `512MiB`), as nnviz prints them, and the memory
this machine can still give a process. No torch: the tracers' memory limit and the untrusted
reader's snapshot limit both use them."""

from __future__ import annotations

import contextlib
import os
import re

from nnviz.errors import InputSpecError

_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(i?)b?\s*$", re.IGNORECASE)


def parse_size(text: str | int | None, what: str = "memory limit") -> int | None:
    """Bytes from `4GB`, `512MiB`, `1.5g`, `1000000` or an int (None stays None); an
    `InputSpecError` naming `what` for anything else."""
    if text is None or isinstance(text, int):
        if isinstance(text, int) and text < 0:
            raise InputSpecError(f"{what} {text}: give a size of zero or more bytes")
        return text
    match = _SIZE.match(str(text))
    if match is None:
        raise InputSpecError(f"{what} {text!r}: give a size such as 8GB, 512MiB or 1000000 (bytes)")
    number, unit, binary = match.groups()
    scale = 1024 ** "bkmgt".index(unit.lower()) if binary and unit else _UNITS[unit.lower()]
    return int(float(number) * scale)


def human(size: int) -> str:
    """`12.3 GB`, `512.0 MB`, `4.0 kB`, `12 bytes` (decimal units, as `parse_size` reads them)."""
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def available() -> int | None:
    """Bytes this machine can still give a process (Linux `MemAvailable`, else free pages)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo", encoding="ascii") as info:
        for line in info:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    with contextlib.suppress(AttributeError, ValueError, OSError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None
