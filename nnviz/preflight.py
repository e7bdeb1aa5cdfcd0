"""What a call is checked for before anything heavy runs: the checks the public API (`nnviz.trace`,
`nnviz.draw`, `nnviz.diff`) and the `nnviz` command share, so the same bad input fails the same
way, with the same one-line `NNVizError`, before torch is imported (seconds) or a model traced.

    >>> from nnviz import preflight
    >>> preflight.check("resnet19")
    Traceback (most recent call last):
    ...
    nnviz.errors.ModelSpecError: unknown model 'resnet19': ... (did you mean resnet18 or ...?)

The checks, in this order (the first fault is the one reported): the MODEL spec's form, each
output path (its extension names a format; it can be written: no folder in the way, no file in
the way of its folder, permission), the style, the Graphviz engine, the depth, the inputs (the
`-i` language, a shape given without its `tensor` prefix refused with the fix), the memory
limit, the tracer, and last a torchvision name against the names torchvision registers, read
from its source (suggestions for a misspelt one). Nothing here imports torch, and nothing is
written.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnviz import models
from nnviz.errors import RenderError
from nnviz.fs import check_writable
from nnviz.render.engine import ENGINE_ENV, FORMATS, choose_engine, format_of
from nnviz.render.style import Style, make_style
from nnviz.sizes import parse_size
from nnviz.tracers import check_tracer
from nnviz.tracers.inputs import InputSpec, from_object
from nnviz.transform import check_depth

if TYPE_CHECKING:
    from nnviz.render.output import StyleLike

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Checked:
    """What the checks parsed, for the caller to use rather than parse again."""

    inputs: InputSpec | None
    memory_limit: int | None
    """Bytes; None: the memory this machine has available."""
    style: Style


def check(
    model: object = None,
    *,
    outputs: Sequence[PathLike] = (),
    style: StyleLike = None,
    engine: str | None = None,
    depth: int | None = None,
    inputs: Any = None,
    memory_limit: int | str | None = None,
    tracer: str | None = None,
    name: str | None = None,
    diff: bool = False,
) -> Checked:
    """Check everything that can be checked before torch is imported; raise the first fault as
    its `NNVizError` (one line), else return what was parsed. `model` is checked as a MODEL
    spec when it is a string or a path (anything else, a Graph or an nn.Module, is not a spec);
    `tracer` against `inputs`, `name` naming the model in its message; `outputs` as the
    drawings of a diff when `diff`."""
    spec = models.parse_spec(str(model)) if isinstance(model, (str, os.PathLike)) else None
    for path in outputs:
        output(path, diff=diff)
    if engine is not None or os.environ.get(ENGINE_ENV):
        choose_engine(engine)  # a misspelt name, or NNVIZ_ENGINE's
    if depth is not None:
        check_depth(depth)
    checked = Checked(
        None if inputs is None else from_object(inputs),
        parse_size(memory_limit),
        make_style(style),
    )
    if tracer is not None:
        label = name or (spec.name if spec else type(model).__name__)
        check_tracer(tracer, label, checked.inputs is not None)
    if spec is not None and spec.kind == "torchvision":
        models.check_torchvision_name(spec.target)
    return checked


def output(path: PathLike, *, diff: bool = False) -> str:
    """The format `path`'s extension asks for, once it is known that the file can be written
    (`RenderError` for an unknown extension, or one a diff is not written as when `diff`;
    `OutputError` naming what is in the way)."""
    fmt = format_of(path)
    if diff and fmt == "text":
        raise RenderError(
            f"{path}: a diff has no table of modules; print its changelog (nnviz diff OLD NEW, "
            f"GraphDiff.to_text()) or draw it as one of "
            f"{' '.join(s for s, f in FORMATS.items() if f != 'text')}"
        )
    check_writable(Path(path))
    return fmt
