"""Python's cycle collector around work that builds large acyclic structures: `gc_paused` for
the block, `ending` for a process that stops after one command (the `nnviz` console script),
`kept` for what such a command built, which then lives until the process ends.

Loading or diffing a large graph allocates millions of small objects that hold no cycles; a
collection rescans every one of them, however often it finds nothing.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any

_ENDING = [False]
_KEPT: list[Any] = []
_KEPT.append(_KEPT)  # a cycle, frozen by `gc_paused`: neither freed nor collected at exit


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cycle collector off within the block (as it was after it). Loading or diffing
    a large graph allocates hundreds of thousands of small acyclic objects, and each full
    collection rescans all of them: half of loading a 20,000-node snapshot's CPU time. After
    `ending`, what the block made is frozen (`gc.freeze`) before the collector resumes."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            if _ENDING[0]:
                gc.freeze()
            gc.enable()


def ending() -> None:
    """The process ends after this command (the `nnviz` console script): what a `gc_paused`
    block made lives until then, so it is frozen out of every later collection instead of
    rescanned, which the collector does soon after resuming and at exit (0.8 s of CPU after a
    diff of two 100,000-node graphs). Later allocations are collected as usual."""
    _ENDING[0] = True
    del _KEPT[1:]  # what an earlier command in this process kept (`kept`)


def kept(value: Any) -> None:
    """After `ending`, `value` (what the command built) is never freed: the process ends soon
    and its memory goes back at once, where freeing millions of small objects one by one costs
    CPU (0.35 s after a diff of two 100,000-node graphs, 4 %). Without `ending`, nothing."""
    if _ENDING[0]:
        _KEPT.append(value)
