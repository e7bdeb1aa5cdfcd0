"""Shape propagation: run a traced fx graph on example inputs and record what flows on each edge.

The model runs in eval mode under `torch.no_grad()` (autograd enabled when forward() calls
`torch.autograd.grad` itself), node by node (`torch.fx.Interpreter`), on
`meta` tensors when the model lives on the meta device — no memory, no arithmetic; ops whose
meta kernel is stricter than their CPU one run through `nnviz.tracers.lenient`. When a model
cannot run on meta (data-dependent shapes, `.item()`), it is materialised on the CPU and run
again, unless that copy would not fit (`nnviz.tracers.budget`: a one-line `TraceError`). Every
fx node gets its own spec, so a module called twice records each call's shapes, and its own cost
(`nnviz.tracers.cost`: MACs and output bytes, counted while it runs). If the model cannot run
at all, a `DataTraceWarning` says why in one line and the graph is returned without shapes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from nnviz.errors import DataTraceWarning
from nnviz.graph import Graph
from nnviz.tracers import budget, lenient
from nnviz.tracers.conventions import cpu_copy, device_of, qualname, spec_of
from nnviz.tracers.cost import Counter, counting, node_cost, priced
from nnviz.tracers.fx import ASSERTS, FxTrace
from nnviz.tracers.inputs import InputSpec
from nnviz.tracers.pristine import preserved
from nnviz.values import Value


class _RunFailed(Exception):
    """The model raised while running node `where`."""

    def __init__(self, where: str, error: BaseException) -> None:
        first = (str(error).strip().splitlines() or [""])[0][:200]
        super().__init__(f"at {where}: {type(error).__name__}" + (f": {first}" if first else ""))
        self.meta_only = meta_only(error)
        self.where = where
        self.error = error


def meta_only(error: BaseException) -> bool:
    """Whether `error` is one only the meta device raises: meta tensors fail with
    NotImplementedError or a message naming them (`.item()`, `nonzero`, a CPU tensor made in
    forward() meeting a meta buffer); anything else fails on the CPU too."""
    return isinstance(error, NotImplementedError) or "meta" in str(error).lower()


class _SpecRecorder(fx.Interpreter):
    """Runs the fx graph against `module`, keeping the spec of every node named in `ids`."""

    def __init__(self, module: nn.Module, traced: FxTrace) -> None:
        super().__init__(module, garbage_collect_values=True, graph=traced.fx_graph)
        self.extra_traceback = False  # it would append the fx node dump to our one-line message
        self.ids = traced.ids
        self.constants = traced.constants
        self.specs: dict[str, Value] = {}
        self.costs: dict[str, dict[str, Any]] = {}
        self.device = device_of(module)
        self.counter: Counter | None = None

    def fetch_args_kwargs_from_env(self, n: fx.Node) -> tuple[tuple[Any, ...], dict[str, Any]]:
        args, kwargs = super().fetch_args_kwargs_from_env(n)
        # fx hands over list arguments as immutable lists; model code may append to them
        # (swin3d's window sizes), as it can when the module runs as plain Python.
        return _mutable(args), _mutable(kwargs)

    def placeholder(self, target: Any, args: Any, kwargs: Any) -> Any:
        if str(target).startswith("**"):  # fx's Interpreter would hand over a list
            return next(self.args_iter)
        return super().placeholder(target, args, kwargs)

    def get_attr(self, target: Any, args: Any, kwargs: Any) -> Any:
        constant = self.constants.get(str(target))
        if constant is None:
            return super().get_attr(target, args, kwargs)
        # tensors forward() made while tracing (`torch.arange(4)`), on the device it runs on
        if constant.device == self.device:
            return constant
        if constant.device.type == "meta":  # no values to copy; the shape is what counts
            return torch.empty_like(constant, device=self.device)
        return constant.to(self.device)

    def call_function(self, target: Any, args: Any, kwargs: Any) -> Any:
        return lenient.call(target, args, kwargs)  # a meta kernel stricter than the CPU's

    def run_node(self, n: fx.Node) -> Any:
        if n.op == "call_function" and n.target in ASSERTS:
            return None  # asserts are not part of the graph, and cannot check meta tensors
        counter = self.counter
        if counter is not None:
            counter.take()
        try:
            result = super().run_node(n)
        except Exception as exc:
            budget.tag(exc, _target_name(n))
            raise _RunFailed(self.ids.get(n, n.name), exc) from exc
        node_id = self.ids.get(n)
        if node_id is not None:
            self.specs[node_id] = spec_of(result)
            if counter is not None and n.op.startswith("call_"):
                self.costs[node_id] = node_cost(counter.take())
        return result


def propagate(
    traced: FxTrace,
    model: nn.Module,
    inputs: InputSpec,
    rebuild: Callable[[], nn.Module] | None = None,
) -> Graph:
    """Return the traced graph with every node's output spec and `meta["inputs"]` set.

    `rebuild` makes a CPU copy of the model for the fallback (default: an uninitialised copy of
    `model`). Malformed or unbindable inputs raise `InputSpecError`; a model that fails to run
    warns and gives the graph back without shapes.
    """
    graph = traced.graph
    device = device_of(model)
    bound = inputs.bind(model.forward, device)
    described = ", ".join(f"{k}={_short(spec_of(v))}" for k, v in bound.items())
    try:
        specs, costs = _run(model, traced, bound)
    except _RunFailed as first:
        if device.type != "meta" or not first.meta_only:
            _warn(described, str(first))
            return graph
        failure = f"at {first.where}: {budget.failed_op(first.error)}"
        budget.check(str(graph.meta.get("name", "the model")), model, bound, failure)
        try:
            cpu_model = rebuild() if rebuild is not None else cpu_copy(model)
        except Exception as exc:  # the meta failure is the one worth reporting
            _warn(described, f"{first} (and the model could not be built on the CPU: {exc})")
            return graph
        try:
            bound = inputs.bind(cpu_model.forward, "cpu")
            specs, costs = _run(cpu_model.eval(), traced, bound)
        except _RunFailed as second:
            also = "" if str(second) == str(first) else f" (on meta: {first})"
            _warn(described, f"{second}{also}")
            return graph
    nodes = [
        dataclasses.replace(node, spec=specs.get(node.id), cost=costs.get(node.id))
        for node in graph.nodes
    ]
    meta = {**graph.meta, "inputs": {name: spec_of(value) for name, value in bound.items()}}
    return priced(graph.replace(nodes=nodes, meta=meta))


def _run(
    model: nn.Module, traced: FxTrace, bound: dict[str, Any]
) -> tuple[dict[str, Value], dict[str, dict[str, Any]]]:
    placeholders = [n for n in traced.fx_graph.nodes if n.op == "placeholder"]
    values: list[Any] = []
    for node in placeholders:
        target = str(node.target)
        if target.startswith("**"):
            values.append(bound.get(target.lstrip("*"), {}))
        elif target.startswith("*"):
            values.extend(bound.get(target.lstrip("*"), ()))
        else:
            values.append(bound.get(target))
    recorder = _SpecRecorder(model, traced)
    # On meta, tensors that forward() creates itself (positions, masks) must be meta tensors too.
    placement = (
        torch.device("meta") if device_of(model).type == "meta" else contextlib.nullcontext()
    )
    # forward() may assign attributes
    autograd = torch.enable_grad() if _differentiates(traced) else torch.no_grad()
    with autograd, placement, preserved(model), counting() as recorder.counter:
        recorder.run(*values)
    return recorder.specs, recorder.costs


def _differentiates(traced: FxTrace) -> bool:
    """Whether forward() calls autograd itself (a gradient penalty, a physics-informed loss):
    it then runs with autograd enabled, which it needs."""
    return any(
        (n.op == "call_function" and n.target in (torch.autograd.grad, torch.autograd.backward))
        or (n.op == "call_method" and n.target == "backward")
        for n in traced.fx_graph.nodes
    )


def _mutable(value: Any) -> Any:
    if isinstance(value, list):
        return [_mutable(v) for v in value]
    if isinstance(value, dict):
        return {k: _mutable(v) for k, v in value.items()}
    if type(value) is tuple:
        return tuple(_mutable(v) for v in value)
    return value


def _target_name(n: fx.Node) -> str:
    if n.op == "call_method":
        return f"Tensor.{n.target}"
    if n.op == "call_function":
        return qualname(n.target)
    return str(n.target)


def _warn(inputs: str, reason: str) -> None:
    message = f"data tracing with {inputs} failed {reason}; the graph has no shapes"
    warnings.warn(DataTraceWarning(message, inputs, reason), stacklevel=4)


def _short(spec: Value) -> str:
    from nnviz.values import format_value

    text = format_value(spec)
    return text if len(text) <= 60 else text[:57] + "..."
