"""nnviz: draw PyTorch models as hierarchical Graphviz diagrams and guard their architecture.

The public API. Importing `nnviz` does not import torch: only `trace` and `load_model` do.

    >>> import nnviz
    >>> graph = nnviz.trace("resnet18")          # or any nn.Module
    >>> nnviz.save(graph, "resnet18.json")       # canonical snapshot
    >>> nnviz.load("resnet18.json") == graph
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# The packages `nnviz.tracers` and `nnviz.diffing` are named apart from the functions `trace`
# and `diff` below: importing a subpackage sets it as an attribute of `nnviz`.
import nnviz.tracers as _tracing
from nnviz.errors import (
    CheckpointError,
    DataTraceWarning,
    DriftReportError,
    InputSpecError,
    ModelBuildError,
    ModelSpecError,
    NNVizError,
    NNVizWarning,
    OutputError,
    PolicyError,
    RenderError,
    SelectionError,
    SnapshotError,
    StyleError,
    TraceError,
    TracersDifferWarning,
    TracerWarning,
)
from nnviz.graph import Edge, Graph, Module, Node
from nnviz.snapshot import load, save

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import Any

    from torch import nn

    from nnviz.diffing.model import GraphDiff

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "DataTraceWarning",
    "DriftReportError",
    "Edge",
    "Graph",
    "GraphDiff",
    "InputSpecError",
    "ModelBuildError",
    "ModelSpecError",
    "Module",
    "NNVizError",
    "NNVizWarning",
    "Node",
    "OutputError",
    "PolicyError",
    "RenderError",
    "SelectionError",
    "SnapshotError",
    "StyleError",
    "TraceError",
    "TracerWarning",
    "TracersDifferWarning",
    "diff",
    "draw",
    "key_map",
    "load",
    "load_model",
    "save",
    "trace",
]


def __getattr__(name: str) -> Any:
    """`nnviz.GraphDiff` on first use: drawing or loading a snapshot never imports the diff."""
    if name == "GraphDiff":
        from nnviz.diffing.model import GraphDiff

        return GraphDiff
    raise AttributeError(f"module 'nnviz' has no attribute {name!r}")


def load_model(spec: str, args: dict[str, Any] | None = None, device: str = "meta") -> nn.Module:
    """Build the model a MODEL spec names (`resnet18`, `pkg.mod:fn`, `file.py:fn`) in eval mode."""
    from nnviz import models

    return models.build(models.parse_spec(spec), args, device=device)


def trace(
    model: nn.Module | str | Path,
    *,
    name: str | None = None,
    args: dict[str, Any] | None = None,
    inputs: Any = None,
    tracer: str = "auto",
    memory_limit: int | str | None = None,
    exportable: bool = False,
) -> Graph:
    """Trace a module, or the model a spec names, into its full `Graph`.

    `inputs` traces with data: an `-i` string (`"default"`, `"image64"`, `"tensor1x16:int64"`,
    `"x:tensor2x3;y:image32"`, a torch expression) or Python objects (a tensor; a tuple binds
    positionally, a dict by argument name). Every node's `spec` then holds its output spec and
    `graph.meta["inputs"]` the inputs; if the model cannot run on them, a
    `nnviz.DataTraceWarning` says why and the graph has no shapes. A malformed input raises
    `InputSpecError` before anything is built. A `.json` spec is loaded instead of traced.

    `tracer`: `"auto"` (torch.fx; when fx fails, the eager tracer runs the model on `inputs`, or
    for a torchvision model on its family's example input, see `nnviz.tracers.examples`), `"fx"`,
    `"eager"` (records a real forward pass; needs `inputs`) or `"export"` (`torch.export` on
    `inputs`; a size named in them, `"tensorBx3x224x224"`, stays a symbol). `graph.meta["tracer"]`
    says which. `exportable=True` records in `graph.meta["export"]` whether `torch.export`
    succeeds on `inputs` (and if not, the first reason and its `file.py:line`), whatever tracer
    made the graph: the diff then guards it.

    A model on the meta device that cannot run there is run again on a CPU copy, unless that
    copy would allocate more than `memory_limit` (bytes, or `"8GB"`, `"512MiB"`; default: the
    memory this machine has available): then a `TraceError` names the op that failed on meta.
    """
    import functools
    from pathlib import Path

    from nnviz import models, preflight
    from nnviz.tracers.budget import limited

    # Every malformed argument fails here, before torch is imported or anything built.
    checked = preflight.check(
        model, inputs=inputs, memory_limit=memory_limit, tracer=tracer, name=name
    )
    parsed = checked.inputs
    rebuild: Callable[[], nn.Module] | None = None
    example = None
    if isinstance(model, (str, Path)):
        spec = models.parse_spec(str(model))
        if spec.kind == "snapshot":
            if parsed is not None:
                raise InputSpecError(f"{spec.target}: a snapshot cannot be traced with inputs")
            return load(spec.target)
        name = name or spec.title(args)
        with limited(checked.memory_limit):  # a last-resort CPU build is held to it too
            model = models.build(spec, args)
        rebuild = functools.partial(models.build, spec, args, device="cpu")
        if spec.kind == "torchvision" and parsed is None and tracer == "auto":
            from nnviz.tracers.examples import example_input

            example = example_input(spec.target)

    with limited(checked.memory_limit):
        return _tracing.trace(
            model,
            name or type(model).__name__,
            inputs=parsed,
            rebuild=rebuild,
            tracer=tracer,
            example=example,
            exportable=exportable,
        )


def diff(
    old: Graph | str | Path,
    new: Graph | str | Path,
    *,
    ignore: tuple[str, ...] | list[str] = (),
    strict: bool = False,
    inputs: Any = None,
) -> GraphDiff:
    """Compare two architectures: Graphs, snapshot paths or MODEL specs (traced as `trace` does,
    with `inputs` so that shapes are compared too; snapshots keep what they were traced with).

    `ignore` drops change fields (`spec`, `inputs`, `hparams.eps` or just `eps`, ...). The result
    is falsy when nothing drifted: differences that are information only (scalar shape
    arithmetic, a container's attribute that changes nothing below it) count only with
    `strict`; see `nnviz.GraphDiff` and docs/diff-format.md. When the two sides were made by
    different tracers and differ, a `TracersDifferWarning` says so: fx and eager agree on ids and
    ops but not on every scalar detail, so a difference may come from the tracers.
    """
    import warnings

    from nnviz import preflight
    from nnviz.diffing.build import diff as graph_diff

    for side in (old, new):  # both sides checked before either is traced
        if not isinstance(side, Graph):
            preflight.check(side, inputs=inputs)
    graphs = [_graph(side, inputs) for side in (old, new)]
    result = graph_diff(graphs[0], graphs[1], ignore=tuple(ignore), strict=strict)
    tracers = [g.meta.get("tracer") for g in graphs]
    if tracers[0] != tracers[1] and not result.identical:  # nothing to explain when identical
        names = [str(s) if not isinstance(s, Graph) else s.name for s in (old, new)]
        warnings.warn(
            f"{names[0]} was traced with {tracers[0]}, {names[1]} with {tracers[1]}; "
            "differences in scalar arithmetic may come from the tracers",
            TracersDifferWarning,
            stacklevel=2,
        )
    for side, graph, other in zip((old, new), graphs, graphs[::-1], strict=True):
        message = _older_format(graph, other, result)
        if message:
            where = side if not isinstance(side, Graph) else graph.name
            warnings.warn(f"{where} {message}", NNVizWarning, stacklevel=2)
    return result


def key_map(
    old: Graph | str | Path, new: Graph | str | Path, *, inputs: Any = None, strict: bool = True
) -> dict[str, str | None]:
    """Old state-dict key -> new key for every tensor whose module was renamed or moved, and
    -> None for an old key the new model no longer uses, so that an old checkpoint loads
    strictly into the new model (README: *Old checkpoints*). Sides as for `diff`. Raises
    `CheckpointError` when no map can mend the break (shapes changed, new keys without old
    weights, or a side recorded before the state-dict contract), saying why. With
    `strict=False`, the map for `load_state_dict(mapped, strict=False)` even then: old keys
    whose shape changed map to None too, and what has no old weights stays at initialisation."""
    verdict = diff(old, new, inputs=inputs).checkpoint
    assert verdict is not None  # every diff computes one
    return verdict.key_map(strict=strict)


def _older_format(graph: Graph, other: Graph, result: GraphDiff) -> str | None:
    """What an older snapshot format left uncompared, with how to re-record the file; None
    when nothing was lost (the current format, or an identical result with every argument
    compared)."""
    from nnviz.diffing.fields import positional_format

    version = graph.meta.get("migrated_from")
    if version is None:
        return None
    lost = []
    infos = {c.info for e in result for c in e.changes.values()}
    uncompared = not result.identical or "format" in infos
    if positional_format(graph) and not positional_format(other) and uncompared:
        lost.append(
            "it records call arguments by position and no tied parameters, so those compared "
            "only where exact"
        )
    if version < 2 and not result.identical:
        lost.append("it lacks inherited hyperparameters and optional-input defaults")
    if not lost:
        return None
    return (
        f"is a format-{version} snapshot: {'; '.join(lost)}; re-record it (nnviz MODEL -o "
        "FILE.json, or pytest --nnviz-update)"
    )


def _graph(side: Graph | str | Path, inputs: Any) -> Graph:
    """One side of a diff: a Graph as it is, a snapshot loaded, a MODEL spec traced."""
    import os

    from nnviz import models

    if isinstance(side, Graph):
        return side
    if isinstance(side, (str, os.PathLike)) and models.parse_spec(str(side)).kind == "snapshot":
        return load(side)  # snapshots keep what they were traced with
    return trace(side, inputs=inputs)


def draw(
    obj: Any,
    path: str | Path,
    *,
    depth: int | None = None,
    collapse: tuple[str, ...] | list[str] = (),
    layer: str | None = None,
    style: Any = None,
    engine: str | None = None,
    context: int | None = None,
) -> Path:
    """Draw a Graph, a GraphDiff, an nn.Module or a MODEL spec to `path`; return the path.

    The extension picks the format: `.pdf .svg .png .dot .gv` (a drawing), `.html` (the
    interactive page), `.txt` (a graph's table of modules) or `.json` (a graph's snapshot,
    selected by `layer` but never collapsed; a diff's document). `style` is a
    `nnviz.render.Style` or a dict of its keys; `engine` is `"embedded"` (the Graphviz bundled
    with pygraphviz, the default) or `"system"` (`dot` on PATH).

    For a graph, `layer` keeps one submodule, `depth` collapses modules nested deeper (default
    2; -1: fully expanded), `collapse` collapses the named modules. For a GraphDiff, `context`
    is how many unchanged hops around each change stay visible (default 3); the folding around
    the changes decides what is expanded, so `depth`, `collapse` and `layer` are refused with a
    `RenderError` rather than ignored, as `context` is for a graph.

    The output path, the style and a MODEL spec are checked before anything is traced or drawn
    (`nnviz.preflight`): a bad one raises its `NNVizError` at once and writes nothing.
    """
    import os

    from nnviz import preflight
    from nnviz.render.output import draw_diff, draw_graph

    is_spec = isinstance(obj, (str, os.PathLike))
    is_graph = _is_graph(obj, is_spec, depth=depth, collapse=collapse, layer=layer, context=context)
    checked = preflight.check(
        obj if is_spec else None,
        outputs=[path],
        style=style,
        engine=engine,
        depth=depth if is_graph else None,
        diff=not is_graph,
    )
    if not is_graph:
        context = 3 if context is None else context
        return draw_diff(obj, path, context=context, style=checked.style, engine=engine)
    return draw_graph(
        obj if isinstance(obj, Graph) else trace(obj),
        path,
        depth=2 if depth is None else depth,
        collapse=collapse,
        layer=layer,
        style=checked.style,
        engine=engine,
    )


def _is_graph(obj: Any, is_spec: bool, **given: Any) -> bool:
    """Whether `draw` draws `obj` as a graph (a Graph, a module, a spec) or as a GraphDiff; a
    `RenderError` for anything else, and for a keyword given that its drawing cannot honour."""
    import sys

    is_graph = isinstance(obj, Graph) or is_spec or _is_module(obj, sys.modules.get("torch"))
    diffing = sys.modules.get("nnviz.diffing.model")  # not loaded: obj is no GraphDiff
    if not is_graph and (diffing is None or not isinstance(obj, diffing.GraphDiff)):
        raise RenderError(
            f"cannot draw a {type(obj).__name__}: give a Graph, a GraphDiff, an nn.Module or "
            "a MODEL spec"
        )
    if is_graph:
        named = ["context"] if given["context"] is not None else []
        reason = "context applies to a diff drawing only (the unchanged hops kept around changes)"
    else:
        named = [key for key in ("depth", "collapse", "layer") if given[key] not in (None, (), [])]
        reason = (
            "depth, collapse and layer shape a graph drawing; a diff drawing folds what the "
            "changes leave untouched (context= sets how many unchanged hops stay)"
        )
    if named:
        raise RenderError(f"cannot draw a {type(obj).__name__} with {', '.join(named)}: {reason}")
    return is_graph


def _is_module(obj: Any, torch: Any) -> bool:
    """Whether `obj` is an nn.Module, without importing torch (if it is not loaded, it is not)."""
    return torch is not None and isinstance(obj, torch.nn.Module)
