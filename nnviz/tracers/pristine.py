"""What keeps a trace honest about the model it was given, whichever tracer runs.

- `preserved(model)`: tracing never mutates the user's model. A forward that assigns attributes
  (`self.buf = x ** 2`) would leave torch.fx `Proxy` objects or meta tensors behind, fx attaches
  `_tensor_constant*` attributes, lazy modules initialise themselves, and tracing switches to eval
  mode: every module's attributes, parameters, buffers, submodules and class are put back.
- `check_inputs(graph, forward)`: a graph whose inputs are not `forward`'s arguments is wrong
  (torch.fx binds the module itself to the first argument of a `@staticmethod` forward); it is
  refused rather than written.
- `static_forward(model)`: whether `forward` is such a `@staticmethod`.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from nnviz.errors import TraceError
from nnviz.graph import Graph

if TYPE_CHECKING:
    from torch import nn

_STATE = ("_parameters", "_buffers", "_modules", "_non_persistent_buffers_set")


@contextlib.contextmanager
def preserved(model: nn.Module) -> Iterator[None]:
    """Run the body, then restore every module of `model` to what it was before."""
    saved = []
    for module in model.modules():
        inner = {key: _copy(module.__dict__.get(key)) for key in _STATE}
        saved.append((module, type(module), dict(module.__dict__), inner))
    try:
        yield
    finally:
        for module, cls, attributes, inner in saved:
            if type(module) is not cls:
                module.__class__ = cls  # a lazy module turns into its initialised class
            module.__dict__.clear()
            module.__dict__.update(attributes)
            for key, contents in inner.items():  # the same dict objects, their old contents
                container = attributes.get(key)
                if container is not None and contents is not None:
                    container.clear()
                    container.update(contents)


def _copy(container: Any) -> Any:
    if isinstance(container, dict):
        return dict(container)
    if isinstance(container, set):
        return set(container)
    return None


def static_forward(model: nn.Module) -> bool:
    """Whether `type(model).forward` is a `@staticmethod` (torch.fx would pass the module as
    its first argument)."""
    for cls in type(model).__mro__:
        if "forward" in vars(cls):
            return isinstance(vars(cls)["forward"], staticmethod)
    return False


def check_inputs(graph: Graph, forward: Callable[..., Any], name: str) -> Graph:
    """`graph`, if its input nodes are exactly `forward`'s arguments, in order; else TraceError.

    A forward whose signature cannot be read (a C function) is not checked.
    """
    try:
        parameters = list(inspect.signature(forward).parameters)
    except (TypeError, ValueError):
        return graph
    inputs = [node.op for node in graph.nodes if node.kind == "input"]
    if inputs != parameters:
        raise TraceError(
            f"the graph of {name} has inputs ({', '.join(inputs) or 'none'}) that are not "
            f"forward()'s arguments ({', '.join(parameters) or 'none'}); refusing to record it"
        )
    return graph
