"""Whether torch and torchvision come from matching builds, told from their installed metadata
without importing either.

torchvision's compiled operators only load into the torch build they were compiled against; a
mismatched pair fails deep inside `import torchvision` (`operator torchvision::nms does not
exist`, an undefined symbol in `torchvision/_C.so`). `explain(error)` turns such a failure into
one line naming both versions and the install command that fixes it.
"""

from __future__ import annotations

import importlib.metadata
import re

INDEX = "https://download.pytorch.org/whl"

_SIGNS = ("torchvision::", "torchvision/_C", "torchvision._C", "torchvision/image.so")
"""Text in an error raised by a torchvision whose compiled code does not fit the torch."""


def installed(name: str) -> str | None:
    """The installed version of distribution `name`, or `None`."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def torchvision_for(torch_version: str) -> str | None:
    """The torchvision release line made for a torch release: `2.5.1` → `0.20`, `1.13.1` →
    `0.14` (torch 2.N pairs with 0.(N+15), 1.N with 0.(N+1)); `None` when unknown."""
    match = re.match(r"(\d+)\.(\d+)", torch_version)
    if match is None:
        return None
    major, minor = int(match[1]), int(match[2])
    if major == 2:
        return f"0.{minor + 15}"
    if major == 1 and minor >= 4:
        return f"0.{minor + 1}"
    return None


def _line(version: str) -> str:
    return ".".join(version.split("+")[0].split(".")[:2])


def _local(version: str) -> str:
    return version.partition("+")[2]


def _built_for() -> str | None:
    """The torch version torchvision's own metadata pins (`torch==2.5.1`), if it pins one."""
    for requirement in importlib.metadata.requires("torchvision") or ():
        match = re.match(r"torch\s*\(?\s*==\s*([\w.+]+)", requirement)
        if match:
            return match[1]
    return None


def mismatch() -> str | None:
    """How the installed torch and torchvision disagree (`None` when they look like a pair)."""
    torch, vision = installed("torch"), installed("torchvision")
    if torch is None or vision is None:
        return None
    pinned = _built_for()
    if pinned is not None and _line(pinned) != _line(torch):
        return f"torchvision {vision} is built for torch {pinned}, but torch {torch} is installed"
    expected = torchvision_for(torch)
    if expected is not None and _line(vision) != expected:
        return (
            f"torchvision {vision} does not pair with torch {torch} (its torchvision is "
            f"{expected}.x)"
        )
    if _local(torch) != _local(vision) and _local(torch) and _local(vision):
        return f"torch {torch} and torchvision {vision} are different builds"
    return None


def explain(error: BaseException) -> str | None:
    """One line for an error that comes from mismatched torch and torchvision builds: both
    versions and the command that installs a matching torchvision; `None` for any other error."""
    text = f"{type(error).__name__}: {error}"
    if not any(sign in text for sign in _SIGNS):
        return None
    torch = installed("torch")
    first = (str(error).strip().splitlines() or [""])[0][:160]
    how = mismatch() or f"torchvision {installed('torchvision')} does not fit torch {torch}"
    pair = torchvision_for(torch) if torch is not None else None
    command = f"pip install 'torchvision=={pair}.*'" if pair else "pip install torchvision"
    build = _local(torch or "")
    if build:  # torch came from PyTorch's own index (`2.5.1+cpu`): the same index, same build
        command += f" --index-url {INDEX}/{build}"
    return f"{how} ({first}); install the torchvision made for it: {command}"
