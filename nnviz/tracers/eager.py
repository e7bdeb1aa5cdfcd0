"""The eager tracer: record a real forward pass into the same `Graph` the fx tracer builds.

For models torch.fx cannot trace (data-dependent control flow, detection models, HF models), the
model is run once on example inputs — on `meta` tensors when it lives on the meta device, else
(or when meta cannot run it) on the CPU — in eval mode under `torch.no_grad()` (with autograd
enabled for a forward that calls `torch.autograd.grad`, which needs it), and every call is
recorded:

- module forward pre/post hooks give the hierarchy: a non-leaf module opens a scope, a leaf
  module (`nnviz.tracers.fx.is_leaf`: built-in `torch.nn` modules, an empty `Sequential`) is one
  node and nothing inside it is recorded;
- a `TorchFunctionMode` sees every torch function and Tensor method; Tensor operators (`x + y`,
  `x[0]`) are recorded as the `operator` functions fx records; functions registered with
  `torch.fx.wrap` are recorded as single calls, like fx does;
- tensor identity gives the data flow, and ints, sizes and tuples produced by recorded calls are
  wrapped (`nnviz.tracers.traced`) so shape arithmetic and unpacking are recorded too.

Calls are recorded only when an argument is traced (as fx records only calls on proxies); the
recorded calls are then turned into nodes with fx's conventions — ids, op names, slots, `$attr`
for a module's own parameters and buffers, asserts and what only feeds them dropped — so for a
model both tracers handle, both graphs are the same apart from `meta["tracer"]`.

What it does so that both graphs are the same (tests/unit/test_research_models.py checks each):
- an input tuple, list or dict is a traced value: indexing it records fx's `getitem`; a tensor
  given through `**kwargs` gets its `getitem` where it is first used (Python hands forward() a
  new dict, so the read itself cannot be seen);
- Tensor methods written in Python (`norm`, `split`, `unflatten`) are recorded as written, not
  with the defaults torch fills in before `__torch_function__` (`nnviz.tracers.patching`);
- a `device` read from a tensor is an edge from its `getattr`, and recorded as the model's device
  (`conventions.MODEL_DEVICE`), never as meta or the CPU of a fallback; a tensor made without an
  input is recorded by what it is (`tensor[4, 4]`), as in fx, not by a counter;
- the model is run inside `pristine.preserved`: attributes forward() assigns are put back.

Where a real run cannot see what fx sees, by principle:
- values that are neither tensors, numbers nor devices carry no identity: `x.to(x.dtype)` records
  the `getattr` but the `to` gets a constant dtype, where fx draws an edge;
- comparisons of Python numbers give plain `bool`s and are dropped with what only fed them (in
  a fx-traceable model they only feed asserts; here they steer control flow, which is not drawn);
- of fx's autowrapped `math` functions, calls through the module (`math.sqrt(n)`) are recorded,
  names imported with `from math import sqrt` are not;
- an op that returns its input (`nn.ReLU(inplace=True)`, eval-mode dropout) yields a new value,
  exactly as fx sees it, so an in-place update whose result is not rebound is a dead end in both.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nnviz.errors import TraceError
from nnviz.graph import Graph
from nnviz.tracers import budget, traced
from nnviz.tracers.conventions import cpu_copy, device_of, input_default, versions
from nnviz.tracers.cost import Counter, counting, priced
from nnviz.tracers.inputs import InputSpec
from nnviz.tracers.lines import Where
from nnviz.tracers.patching import patched
from nnviz.tracers.pristine import preserved
from nnviz.tracers.recorded import RecordedCall, to_graph
from nnviz.tracers.recorder import OPS, CallRecorder, RecordingMode, runtime_spec

# --- running --------------------------------------------------------------------------------


def call_arguments(
    forward: Callable[..., Any], bound: dict[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """Arguments to call `forward` with; defaults are left out (decorated forwards such as HF's
    fill some in themselves and refuse them twice)."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    positional = True
    for name, param in inspect.signature(forward).parameters.items():
        if name not in bound:
            continue
        value = bound[name]
        if param.kind is param.VAR_KEYWORD:
            kwargs.update(value)
        elif param.kind is param.VAR_POSITIONAL:
            args.extend(value)
        elif param.kind is not param.POSITIONAL_ONLY and value is param.default:
            positional = False
        elif param.kind is param.POSITIONAL_ONLY or (
            positional and param.kind is param.POSITIONAL_OR_KEYWORD
        ):
            args.append(value)
        else:
            kwargs[name] = value
    return args, kwargs


def _var_keyword(forward: Callable[..., Any]) -> str | None:
    """The name of forward's `**kwargs` parameter, if it has one."""
    for name, param in inspect.signature(forward).parameters.items():
        if param.kind is param.VAR_KEYWORD:
            return name
    return None


def _record(
    model: nn.Module, bound: dict[str, Any], device: torch.device, grad: bool = False
) -> CallRecorder:
    with counting() as counter:
        return _record_counting(model, bound, device, counter, grad)


def _record_counting(
    model: nn.Module,
    bound: dict[str, Any],
    device: torch.device,
    counter: Counter | None,
    grad: bool = False,
) -> CallRecorder:
    rec = CallRecorder(model, counter)
    given = {}  # containers passed in, by identity, as the model sees them
    keywords = _var_keyword(model.forward)
    for name, value in bound.items():
        call = RecordedCall(
            "input", name, spec=runtime_spec(value), slots=input_default(model, name)
        )
        ref = rec.add(call)
        given[id(value)] = rec.own(value, ref)
        if name == keywords:
            rec.keyed.update(
                (id(v), (ref, k)) for k, v in value.items() if isinstance(v, torch.Tensor)
            )
    args, kwargs = call_arguments(model.forward, bound)
    args = [given.get(id(a), a) for a in args]
    kwargs = {k: given.get(id(v), v) for k, v in kwargs.items()}
    handles = []
    for module in rec.paths:
        handles.append(
            module.register_forward_pre_hook(lambda m, a, k: rec.enter(m, a, k), with_kwargs=True)
        )
        handles.append(
            module.register_forward_hook(
                lambda m, a, k, out: rec.leave(out), with_kwargs=True, always_call=True
            )
        )
    traced._recording.append(rec)
    rec.where = Where()
    try:
        autograd = torch.enable_grad() if grad else torch.no_grad()
        with autograd, torch.device(device), patched(), RecordingMode(rec), preserved(model):
            result = model(*args, **kwargs)
    finally:
        traced._recording.pop()
        for handle in handles:
            handle.remove()
    rec.add(
        RecordedCall("output", "output", slots=[("0", rec.mark(result))], spec=runtime_spec(result))
    )
    for call in rec.calls:  # shape arithmetic on Python numbers: counted, and costs nothing
        if counter is not None and call.cost is None and call.kind in OPS:
            call.cost = {"macs": 0}
    return rec


_NEEDS_GRAD = ("does not require grad", "does not have a grad_fn", "differentiated Tensors")
"""What autograd says when a forward differentiates (`torch.autograd.grad` inside `forward`:
gradient penalties, physics-informed nets, meta-learning inner loops) under `no_grad`."""


def _record_with_grad_if_needed(
    model: nn.Module, bound: dict[str, Any], device: torch.device
) -> CallRecorder:
    """Record under `no_grad`; a forward that differentiates is recorded again with autograd
    enabled, which it needs (its `torch.autograd.grad` call is recorded as one op)."""
    try:
        return _record(model, bound, device)
    except RuntimeError as exc:
        if not any(words in str(exc) for words in _NEEDS_GRAD):
            raise
    return _record(model, bound, device, grad=True)


def trace_eager(
    model: nn.Module,
    name: str,
    inputs: InputSpec,
    rebuild: Callable[[], nn.Module] | None = None,
) -> Graph:
    """Run `model` on `inputs` and record its graph (see the module docstring).

    The model runs where it lives; a meta model that cannot run on meta tensors (`.item()`,
    data-dependent shapes) is run again on a CPU copy made by `rebuild` (default: an uninitialised
    copy). Inputs that do not bind raise `InputSpecError`; a failing forward pass `TraceError`.
    """
    model.eval()
    device = device_of(model)
    # seeded (without touching the caller's generator): random inputs and a CPU rebuild's
    # weights steer data-dependent models (how many boxes a detector keeps), hence the graph
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        bound = inputs.bind(model.forward, device)
        try:
            rec = _record_with_grad_if_needed(model, bound, device)
        except Exception as first:
            if device.type != "meta":
                raise _failed(name, first, None) from None
            budget.check(name, model, bound, budget.failed_op(first))
            try:
                torch.manual_seed(0)
                model = (rebuild() if rebuild is not None else cpu_copy(model)).eval()
                bound = inputs.bind(model.forward, "cpu")
                rec = _record_with_grad_if_needed(model, bound, torch.device("cpu"))
            except Exception as second:
                raise _failed(name, second, first) from None
    meta = {
        "name": name,
        "tracer": "eager",
        "versions": versions(),
        "inputs": {key: runtime_spec(value) for key, value in bound.items()},
    }
    return priced(to_graph(rec.calls, model, meta))


def _failed(name: str, error: BaseException, on_meta: BaseException | None) -> TraceError:
    def one_line(exc: BaseException) -> str:
        text = (str(exc).strip().splitlines() or [""])[0][:200]
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

    also = f" (on meta: {one_line(on_meta)})" if on_meta is not None else ""
    return TraceError(f"running {name} on the example inputs failed: {one_line(error)}{also}")
