"""Where a traced call is written in the model's code (`nnviz.graph.Source`).

The line a reader wants is the innermost frame of the model's code: torch's frames (a leaf
module's own forward, `Tensor.__add__`, fx's proxies) and nnviz's (the recorder, patched
methods) are passed over, so a module call points at `self.conv(x)` in its parent's forward and
an op at `x + y`. A library's code counts as the model's (torchvision's `resnet.py:92`): the
pytest plugin only annotates the lines inside the repository.

The fx and eager tracers walk the live stack (`Where`, a few frames per call: cheap); the
export tracer reads each ATen node's `stack_trace`. A call made only by torch's code between
the model's entry and the op (the layers of a bare `nn.Sequential`) has no line.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from types import CodeType, FrameType

import torch

from nnviz.graph import Source

_PASSED = (
    str(Path(torch.__file__).resolve().parent) + os.sep,
    str(Path(__file__).resolve().parent.parent) + os.sep,  # nnviz
)
_passed: dict[str, bool] = {}
_shown: dict[str, str] = {}
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')


def _is_passed(file: str) -> bool:
    """Whether `file` is torch's or nnviz's (cached: asked once per recorded call)."""
    passed = _passed.get(file)
    if passed is None:
        resolved = os.path.realpath(file) if file[:1] != "<" else file
        passed = _passed[file] = file[:1] == "<" or resolved.startswith(_PASSED)
    return passed


def source(file: str, line: int) -> Source:
    """The `Source` of `file:line`, the file shown as a reader knows it."""
    shown = _shown.get(file)
    if shown is None:
        shown = _shown[file] = _shown_path(file)
    return Source(file, line, shown)


def _shown_path(file: str) -> str:
    """Relative to the working folder when inside it, else to the longest `sys.path` entry
    holding it (`torchvision/models/resnet.py`), else the file's name: never a user's home."""
    path = Path(os.path.realpath(file))
    cwd = Path.cwd().resolve()
    if path.is_relative_to(cwd):
        return path.relative_to(cwd).as_posix()
    roots = [Path(os.path.realpath(p)) for p in sys.path if p]
    inside = [r for r in roots if path.is_relative_to(r)]
    if inside:
        return path.relative_to(max(inside, key=lambda r: len(r.parts))).as_posix()
    return path.name


class Where:
    """The model-code line of calls made below the frame that creates it (the tracer's frame
    that calls the model): the walk up the stack stops there."""

    def __init__(self) -> None:
        self._boundary: CodeType = sys._getframe(1).f_code

    def __call__(self) -> Source | None:
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            code = frame.f_code
            if code is self._boundary:
                return None
            if not _is_passed(code.co_filename):
                return source(code.co_filename, frame.f_lineno)
            frame = frame.f_back
        return None


def from_stack_trace(text: str | None) -> Source | None:
    """The innermost frame outside torch and nnviz of an fx node's `stack_trace` (`File "m.py",
    line 12, in forward` lines, outermost first), as torch.export records it."""
    if not text:
        return None
    for found in reversed(list(_FRAME.finditer(text))):
        if not _is_passed(found["file"]):
            return source(found["file"], int(found["line"]))
    return None
