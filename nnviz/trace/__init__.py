"""Tracers: turn an `nn.Module` into a `Graph`. Imports torch; only imported when tracing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnviz.graph import Graph

if TYPE_CHECKING:
    from torch import nn


def trace(model: nn.Module, name: str = "model") -> Graph:
    """Trace `model` into a graph of its full architecture (see `nnviz.trace.fx`)."""
    from nnviz.trace.fx import trace_fx

    model.eval()
    return trace_fx(model, name)[0]
