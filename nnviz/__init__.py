"""nnviz: draw PyTorch models as hierarchical Graphviz diagrams and guard their architecture.

The public API. Importing `nnviz` does not import torch: only `trace` and `load_model` do.

    >>> import nnviz
    >>> graph = nnviz.trace("resnet18")          # or any nn.Module
    >>> nnviz.save(graph, "resnet18.json")       # canonical snapshot
    >>> nnviz.load("resnet18.json") == graph
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnviz.errors import NNVizError
from nnviz.graph import Edge, Graph, Module, Node
from nnviz.snapshot import load, save

if TYPE_CHECKING:
    from torch import nn

__version__ = "0.1.0"

__all__ = [
    "Edge",
    "Graph",
    "Module",
    "NNVizError",
    "Node",
    "load",
    "load_model",
    "save",
    "trace",
]


def load_model(spec: str, args: dict[str, Any] | None = None, device: str = "meta") -> nn.Module:
    """Build the model a MODEL spec names (`resnet18`, `pkg.mod:fn`, `file.py:fn`) in eval mode."""
    from nnviz import models

    return models.build(models.parse_spec(spec), args, device=device)


def trace(
    model: nn.Module | str | Path,
    *,
    name: str | None = None,
    args: dict[str, Any] | None = None,
) -> Graph:
    """Trace a module, or the model a spec names, into its full `Graph`.

    A `.json` spec is loaded instead of traced.
    """
    from nnviz import models

    if isinstance(model, (str, Path)):
        spec = models.parse_spec(str(model))
        if spec.kind == "snapshot":
            return load(spec.target)
        name = name or spec.name
        model = models.build(spec, args)
    from nnviz.trace import trace as _trace

    return _trace(model, name or type(model).__name__)
