"""What keeps a trace honest about the model it was given, whichever tracer runs.

- `preserved(model)`: tracing never mutates the user's model. A forward that assigns attributes
  (`self.buf = x ** 2`) would leave torch.fx `Proxy` objects or meta tensors behind, fx attaches
  `_tensor_constant*` attributes, lazy modules initialise themselves, and tracing switches to eval
  mode: every module's attributes, parameters, buffers, submodules and class are put back.
- `check_inputs(graph, forward)`: a graph whose inputs are not `forward`'s arguments is wrong
  (torch.fx binds the module itself to the first argument of a `@staticmethod` forward); it is
  refused rather than written.
- `static_forward(model)`: whether `forward` is such a `@staticmethod`.
- `lazy_modules(model)`: modules whose parameters only the first forward pass creates.
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


def lazy_modules(model: nn.Module) -> list[str]:
    """Paths of the modules holding uninitialised (lazy) parameters or buffers."""
    from torch.nn.parameter import is_lazy

    found = []
    for path, module in model.named_modules():
        tensors = (*module._parameters.values(), *module._buffers.values())
        if any(t is not None and is_lazy(t) for t in tensors):
            found.append(path or type(model).__name__)
    return found


def initialised(
    model: nn.Module, inputs: Any, rebuild: Callable[[], nn.Module] | None, name: str
) -> tuple[nn.Module, Callable[[], nn.Module] | None]:
    """A copy of `model` whose lazy modules one forward pass on `inputs` initialised (on the
    model's device, else on a CPU build), and a `rebuild` whose CPU builds are initialised too.
    The user's model keeps its lazy modules."""
    import copy

    from nnviz.tracers.shapes import device_of

    def run(module: nn.Module, device: Any) -> nn.Module:
        import torch

        from nnviz.tracers.eager import _call_arguments

        bound = inputs.bind(module.forward, device)
        args, kwargs = _call_arguments(module.forward, bound)
        with torch.no_grad(), torch.device(device):
            module(*args, **kwargs)
        return module.eval()

    device = device_of(model)
    try:
        ready = run(copy.deepcopy(model), device)
    except Exception as first:
        if rebuild is None or device.type != "meta":
            raise _uninitialisable(name, first) from None
        try:
            ready = run(rebuild(), "cpu")
        except Exception as second:
            raise _uninitialisable(name, second) from None
    cpu_build = None if rebuild is None else (lambda: run(rebuild(), "cpu"))
    return ready, cpu_build


def _uninitialisable(name: str, error: Exception) -> TraceError:
    first = (str(error).strip().splitlines() or [""])[0][:200]
    return TraceError(
        f"initialising the lazy modules of {name} on the example input failed: "
        f"{type(error).__name__}: {first}"
    )
