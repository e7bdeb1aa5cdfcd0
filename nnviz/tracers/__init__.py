"""Tracers: turn an `nn.Module` into a `Graph`. Imports torch only when a trace runs.

`trace(model, name, inputs=...)` traces symbolically with torch.fx and, given example inputs,
runs the traced graph on them to record every edge's shape (`nnviz.tracers.shapes`).
`tracer="eager"` records a real forward pass instead (`nnviz.tracers.eager`), `tracer="export"`
runs `torch.export` (`nnviz.tracers.export`); `tracer="auto"` (the default) falls back to the
eager tracer when fx fails and an input is available, and uses export when an input names a size
(`-i tensorBx3x224x224`), which only export can trace symbolically.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nnviz.errors import TracerWarning
from nnviz.graph import Graph

if TYPE_CHECKING:
    from torch import nn


TRACERS = ("auto", "fx", "eager", "export")
EXAMPLE_INPUT_ADVICE = (
    "pass an example input (inputs=... in Python, -i on the command line), e.g. 'default'"
)
"""What to do when a tracer needs data; worded for Python and the command line alike."""


def check_tracer(tracer: str, name: str, has_input: bool, symbolic: bool = False) -> None:
    """`TraceError` for an unknown tracer, for the eager or export tracer without an input to run
    on, and for named (symbolic) sizes given to a tracer that cannot keep them."""
    from nnviz.errors import TraceError

    if tracer not in TRACERS:
        raise TraceError(f"unknown tracer {tracer!r} (available: {', '.join(TRACERS)})")
    if tracer in ("eager", "export") and not has_input:
        raise TraceError(f"the {tracer} tracer runs {name}: {EXAMPLE_INPUT_ADVICE}")
    if symbolic and tracer in ("fx", "eager"):
        raise TraceError(
            f"the input names a size (symbolic): only the export tracer keeps it "
            f"(tracer='export', --tracer export), the {tracer} tracer records numbers"
        )


def trace(
    model: nn.Module,
    name: str = "model",
    inputs: Any = None,
    rebuild: Callable[[], nn.Module] | None = None,
    tracer: str = "auto",
    example: Any = None,
    exportable: bool = False,
) -> Graph:
    """Trace `model` into a graph of its full architecture (see `nnviz.tracers.fx`).

    With `inputs` (an `-i` string, an `InputSpec`, or tensors: see `nnviz.tracers.inputs`), every
    node's `spec` holds its output spec and `meta["inputs"]` the bound inputs. `rebuild` makes a
    CPU copy of the model in case it cannot run on the meta device.

    `tracer` is `auto` (fx; when fx fails, the eager tracer on `inputs` or else on `example`,
    with a `TracerWarning`), `fx` or `eager` (needs an input); `meta["tracer"]` records which
    one made the graph. `exportable` records in `meta["export"]` whether `torch.export`
    succeeds on `inputs` and, when not, the first reason and its `file.py:line`
    (`nnviz.tracers.export.exportability`); the graph comes from `tracer` either way.

    The model is traced in eval mode and is left exactly as it was given: attributes a forward
    assigns, fx's tensor constants and the training flags are all put back
    (`nnviz.tracers.pristine.preserved`).
    """
    from nnviz.errors import TraceError
    from nnviz.tracers.defaults import leave_out
    from nnviz.tracers.pristine import preserved

    if exportable and inputs is None:
        raise TraceError(f"whether {name} exports is found by exporting it: {EXAMPLE_INPUT_ADVICE}")
    with preserved(model):
        model.eval()
        graph = leave_out(_trace_in_eval_mode(model, name, inputs, rebuild, tracer, example))
    if exportable and "export" not in graph.meta:
        from nnviz.tracers.export import exportability
        from nnviz.tracers.inputs import from_object

        with preserved(model):
            record = exportability(model, name, from_object(inputs))
        graph = graph.replace(meta={**graph.meta, "export": record.to_dict()})
    return graph


def _trace_in_eval_mode(
    model: nn.Module,
    name: str,
    inputs: Any,
    rebuild: Callable[[], nn.Module] | None,
    tracer: str,
    example: Any,
) -> Graph:
    from nnviz.errors import TraceError
    from nnviz.tracers.inputs import from_object
    from nnviz.tracers.lazy import initialised, lazy_modules

    spec = None if inputs is None else from_object(inputs)
    symbolic = spec is not None and spec.symbolic
    check_tracer(tracer, name, spec is not None, symbolic)
    if _is_script(model):
        from nnviz.tracers.script import trace_script

        return trace_script(model, name, spec)
    lazy = lazy_modules(model)
    if lazy:
        if spec is None:
            raise TraceError(
                f"{name} has lazy modules ({', '.join(lazy[:3])}) whose parameters only a "
                f"forward pass creates: {EXAMPLE_INPUT_ADVICE}"
            )
        model, rebuild = initialised(model, spec, rebuild, name)
    if (tracer == "export" or symbolic) and spec is not None:
        from nnviz.tracers.export import trace_export

        return trace_export(model, name, spec)
    if tracer == "eager" and spec is not None:  # check_tracer refused eager without one
        from nnviz.tracers.eager import trace_eager

        return trace_eager(model, name, spec, rebuild)
    return _trace_fx(model, name, spec, rebuild, tracer, example)


def _trace_fx(
    model: nn.Module,
    name: str,
    spec: Any,
    rebuild: Callable[[], nn.Module] | None,
    tracer: str,
    example: Any,
) -> Graph:
    """torch.fx (on a CPU build when meta alone defeats it), then shapes given an input; with
    `tracer="auto"`, the eager tracer when fx fails."""
    from nnviz.errors import TraceError
    from nnviz.tracers.fx import trace_fx
    from nnviz.tracers.inputs import from_object

    try:
        traced = trace_fx(model, name)
    except TraceError as failure:
        retried = _retry_on_cpu(failure, model, rebuild, name)
        if retried is None:
            run_on = spec if spec is not None or example is None else from_object(example)
            if tracer == "fx":
                how = "the eager tracer can record it by running it (tracer='eager' in Python, "
                how += "--tracer eager on the command line)"
                raise TraceError(f"{failure} ({how})") from None
            if run_on is None:
                how = f"to record it by running it, {EXAMPLE_INPUT_ADVICE}"
                raise TraceError(f"{failure} ({how})") from None
            return _fall_back(model, name, run_on, rebuild, given=spec is not None)
        model, traced = retried
    if spec is None:
        return traced.graph
    from nnviz.tracers.shapes import propagate

    return propagate(traced, model, spec, rebuild)


def _fall_back(
    model: nn.Module, name: str, run_on: Any, rebuild: Callable[[], nn.Module] | None, given: bool
) -> Graph:
    import warnings

    from nnviz.tracers.eager import trace_eager

    what = "the given input" if given else f"the example input {run_on.text}"
    warnings.warn(
        f"torch.fx cannot trace {name}; recording it by running it on {what} (eager tracer)",
        TracerWarning,
        stacklevel=4,
    )
    return trace_eager(model, name, run_on, rebuild)


def _is_script(model: Any) -> bool:
    import torch

    return isinstance(model, torch.jit.ScriptModule)


def _retry_on_cpu(
    failure: Exception, model: nn.Module, rebuild: Callable[[], nn.Module] | None, name: str
) -> tuple[nn.Module, Any] | None:
    """Trace a CPU build with fx when the symbolic trace failed for a reason of the meta device
    only (forward() computed with a meta buffer and a CPU tensor, `.item()` on a meta tensor);
    None when that does not apply or does not help."""
    from nnviz.tracers import budget
    from nnviz.tracers.conventions import cpu_copy, device_of
    from nnviz.tracers.fx import trace_fx
    from nnviz.tracers.shapes import meta_only

    cause = failure.__cause__
    if device_of(model).type != "meta" or cause is None or not meta_only(cause):
        return None
    if not budget.fits(model, {}):  # the eager tracer may still run it on meta
        return None
    try:
        cpu_model = (rebuild() if rebuild is not None else cpu_copy(model)).eval()
        return cpu_model, trace_fx(cpu_model, name)
    except Exception:  # the meta failure is the one worth reporting
        return None
