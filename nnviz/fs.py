"""Atomic file writes: a temp file in the target folder, then `os.replace`.

A reader (or a concurrent pytest-xdist worker) sees either the old file or the new one, never a
half-written one, and a failure leaves the old file untouched and no temporary file behind. A file
that cannot be written raises `OutputError` (an `NNVizError`, and an `OSError` for callers that
catch those) with one line naming the file and the reason.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from nnviz.errors import OutputError


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write `data` to `path` atomically, creating missing parent folders; return the path."""
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise _output_error(target, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.chmod(tmp, _mode(target))
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise _output_error(target, exc) from None
        raise
    return target


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise `OutputError` now if `atomic_write(path, ...)` is bound to fail later: a folder in the
    way of the file, a file in the way of a folder, or a folder nnviz may not write to. Creates
    nothing: the nearest existing folder is probed with a temporary file that is removed at once.
    """
    target = Path(path)
    if target.is_dir():
        raise _output_error(target, IsADirectoryError(errno.EISDIR, "is a folder"))
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        if not folder.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a folder")
        with tempfile.TemporaryFile(dir=folder, prefix=f".{target.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise _output_error(target, exc) from None


def _mode(target: Path) -> int:
    """Keep an existing file's permissions (a private file stays private); new files get 0644."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o644


def _output_error(target: Path, exc: OSError) -> OutputError:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        reason = "a file is in the way of its folder"
    elif exc.errno == errno.EISDIR:
        reason = "it is a folder"
    return OutputError(f"cannot write {target}: {reason}; choose another output path")
