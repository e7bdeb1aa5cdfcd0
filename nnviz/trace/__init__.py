"""Tracers: turn an `nn.Module` into a `Graph`. Imports torch only when a trace runs.

`trace(model, name, inputs=...)` traces symbolically with torch.fx and, given example inputs,
runs the traced graph on them to record every edge's shape (`nnviz.trace.shapes`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nnviz.graph import Graph

if TYPE_CHECKING:
    from torch import nn


class DataTraceWarning(UserWarning):
    """Running the model on the example inputs failed; the graph has no shapes.

    The message is one line; the CLI prints it as `nnviz: warning: ...`.
    """


def trace(
    model: nn.Module,
    name: str = "model",
    inputs: Any = None,
    rebuild: Callable[[], nn.Module] | None = None,
) -> Graph:
    """Trace `model` into a graph of its full architecture (see `nnviz.trace.fx`).

    With `inputs` (an `-i` string, an `InputSpec`, or tensors: see `nnviz.trace.inputs`), every
    node's `spec` holds its output spec and `meta["inputs"]` the bound inputs. `rebuild` makes a
    CPU copy of the model in case it cannot run on the meta device.
    """
    from nnviz.trace.fx import trace_fx
    from nnviz.trace.inputs import from_object

    spec = None if inputs is None else from_object(inputs)
    model.eval()
    graph, fx_graph, ids = trace_fx(model, name)
    if spec is None:
        return graph
    from nnviz.trace.shapes import propagate

    return propagate(graph, fx_graph, ids, model, spec, rebuild)
