"""Lazy modules (`nn.LazyLinear`): their parameters exist only after a first forward pass.

`lazy_modules(model)` names them; `initialised(model, inputs, rebuild, name)` runs that pass on
a copy (the user's model stays lazy) and makes the CPU builds of `rebuild` initialised too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nnviz.errors import TraceError

if TYPE_CHECKING:
    from torch import nn


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

    from nnviz.tracers.conventions import device_of

    def run(module: nn.Module, device: Any) -> nn.Module:
        import torch

        from nnviz.tracers.eager import call_arguments

        bound = inputs.bind(module.forward, device)
        args, kwargs = call_arguments(module.forward, bound)
        with torch.no_grad(), torch.device(device):
            module(*args, **kwargs)
        return module.eval()

    device = device_of(model)
    try:
        ready = run(copy.deepcopy(model), device)
    except Exception as first:
        if rebuild is None or device.type != "meta":
            raise _uninitialisable(name, first) from None
        from nnviz.tracers import budget

        budget.check(name, model, inputs.bind(model.forward, device), budget.failed_op(first))
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
