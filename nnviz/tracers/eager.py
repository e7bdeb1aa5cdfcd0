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

import contextlib
import dataclasses
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode, is_tensor_method_or_property

from nnviz.errors import TraceError
from nnviz.graph import Graph, parent_path
from nnviz.tracers import budget, lenient, traced
from nnviz.tracers.conventions import (
    call_name,
    cpu_copy,
    device_of,
    encode,
    input_default,
    module_names,
    qualname,
    scoped,
    spec_of,
    versions,
)
from nnviz.tracers.cost import Counter, counting, node_cost, priced
from nnviz.tracers.fx import ASSERTS, is_leaf
from nnviz.tracers.inputs import InputSpec
from nnviz.tracers.patching import patched
from nnviz.tracers.pristine import preserved
from nnviz.tracers.recorded import Attr, RecordedCall, Ref, is_traced, to_graph
from nnviz.values import Value

_COMPARISONS = set(traced.COMPARE.values())
_OPS = ("module", "function", "method")


class _CallRecorder:
    """Records the calls of one forward pass of `root`."""

    def __init__(self, root: nn.Module, counter: Counter | None = None) -> None:
        self.root = root
        self.counter = counter
        self.pending: Any = None
        self.calls: list[RecordedCall] = []
        self.muted = 0
        self.scopes: list[str] = [""]
        self.frames: list[tuple[str, int]] = []
        self.last_module = ""
        self.paths = {m: p for p, m in root.named_modules()}
        self.names = module_names(root)
        self.producers: dict[int, tuple[Ref, Any]] = {}
        self.attrs: dict[int, tuple[Attr, Any]] = {}
        self.keyed: dict[int, tuple[Ref, str]] = {}
        """Tensors given through `**kwargs`, not yet read: Python hands forward() a new dict,
        so `kwargs["x"]` cannot be seen; it is recorded where the tensor is first used."""
        self.device_reads: dict[int, torch.device] = {}
        """Every `tensor.device` read outside leaf modules (kept alive: identity matters)."""
        for path, module in root.named_modules():  # fx's tensor_attrs: plain tensor attributes
            for key, value in vars(module).items():
                if isinstance(value, torch.Tensor):
                    self.attrs[id(value)] = (Attr(scoped(path, key), False), value)
        for key, buffer in reversed(list(root.named_buffers())):
            self.attrs[id(buffer)] = (Attr(key, False), buffer)
        for key, param in reversed(list(root.named_parameters())):
            self.attrs[id(param)] = (Attr(key, True), param)

    # --- values --------------------------------------------------------------------------------

    def mark(self, value: Any) -> Any:
        """A runtime argument with traced values replaced by `Ref`/`Attr` markers."""
        if isinstance(value, traced.Traced):
            return value.ref
        if isinstance(value, torch.Tensor):
            if id(value) in self.keyed:
                return self._read_key(value)
            hit = self.producers.get(id(value))
            if hit is not None:
                return hit[0]
            known = self.attrs.get(id(value))
            # a tensor made without an input (`torch.eye(4)`) is a constant, recorded by what it
            # is (as in `nnviz.tracers.fx`)
            return value if known is None else known[0]
        if isinstance(value, torch.device):
            hit = self.producers.get(id(value))
            if hit is not None:
                return hit[0]
            # a device read from a tensor is where nnviz ran the model, not the model's own
            # value: recorded like the read of a meta tensor's device (see `encode`)
            return torch.device("meta") if id(value) in self.device_reads else value
        if isinstance(value, nn.Module) and value in self.paths:
            return Attr(self.paths[value], False)
        if isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple, by field
            return {k: self.mark(v) for k, v in zip(value._fields, value, strict=False)}
        if isinstance(value, (tuple, list)):
            items = [self.mark(v) for v in value]
            return tuple(items) if isinstance(value, tuple) else items
        if isinstance(value, slice):
            return slice(self.mark(value.start), self.mark(value.stop), self.mark(value.step))
        if isinstance(value, dict):
            return {k: self.mark(v) for k, v in value.items()}
        fields = _fields(value)
        if fields is not None:
            return {k: self.mark(v) for k, v in fields.items()}
        return value

    def _read_key(self, value: torch.Tensor) -> Ref:
        ref, key = self.keyed.pop(id(value))
        read = self.add(RecordedCall("function", "operator.getitem", self.scopes[-1], None,
                             [("0", ref), ("1", key)], _spec(value)))  # fmt: skip
        self.producers[id(value)] = (read, value)
        return read

    def slots(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
        return [(str(i), self.mark(a)) for i, a in enumerate(args)] + [
            (k, self.mark(v)) for k, v in kwargs.items()
        ]

    def bind(self, result: Any, ref: Ref) -> Any:
        """Register `result` as the output of `ref`; return what the program should see."""
        if isinstance(result, torch.Tensor):
            if id(result) in self.producers or id(result) in self.attrs:
                result = _alias(result)  # an op returning its input: fx sees a new value
            self.producers[id(result)] = (ref, result)
            return result
        if isinstance(result, torch.device):  # `x.device`: later uses are edges, as in fx
            self.producers[id(result)] = (ref, result)
            return result
        if isinstance(result, bool) or result is None:
            return result
        if isinstance(result, int):
            return traced.TracedInt(result, ref)
        if isinstance(result, float):
            return traced.TracedFloat(result, ref)
        if isinstance(result, (tuple, list)):
            for item in result:  # reached without indexing: credit the whole call
                if isinstance(item, torch.Tensor) and id(item) not in self.producers:
                    self.producers[id(item)] = (ref, item)
            if isinstance(result, tuple):
                return traced.TracedTuple(result, ref)
            if type(result) is list:
                return traced.TracedList(result, ref)
        return result

    def own(self, value: Any, ref: Ref) -> Any:
        """Credit every tensor inside an input to its input node; return the input as the model
        should see it (a tuple, list or dict whose indexing is recorded, as fx records it)."""
        self._credit(value, ref)
        if type(value) in (tuple, list, dict):
            return traced.wrap(value, ref)
        return value

    def _credit(self, value: Any, ref: Ref) -> None:
        if isinstance(value, torch.Tensor):
            self.producers[id(value)] = (ref, value)
        elif isinstance(value, (tuple, list)):
            for item in value:
                self._credit(item, ref)
        elif isinstance(value, dict):
            for item in value.values():
                self._credit(item, ref)

    # --- recording -----------------------------------------------------------------------------

    def add(self, call: RecordedCall) -> Ref:
        self.calls.append(call)
        return Ref(len(self.calls) - 1)

    def record(
        self, kind: str, op: str, slots: list[tuple[str, Any]], result: Any, target: Any = None
    ) -> Any:
        spec = _spec(traced.plain(result))
        ref = self.add(RecordedCall(kind, op, self.scopes[-1], None, slots, spec, target=target))
        return self.bind(result, ref)

    def record_op(
        self, target: Callable[..., Any] | str, operands: tuple[Any, ...], result: Any
    ) -> Any:
        return self.finish(target, [(str(i), self.mark(o)) for i, o in enumerate(operands)], result)

    def finish(
        self, target: Callable[..., Any] | str, slots: list[tuple[str, Any]], result: Any
    ) -> Any:
        """Record an operator call (a method when `target` is a name) if it is traced."""
        pending, self.pending = self.pending, None
        if not is_traced(slots):
            return result
        if isinstance(target, str):
            out = self.record("method", target, slots, result)
        else:
            out = self.record("function", qualname(target), slots, result, target)
        if pending is not None:
            self.calls[-1].cost = node_cost(pending)
        if isinstance(target, str):
            return out
        if target in _COMPARISONS and isinstance(result, bool):
            self.calls[-1].dropped = True
        return out

    @contextlib.contextmanager
    def mute(self) -> Iterator[None]:
        self.muted += 1
        try:
            yield
        finally:
            self.muted -= 1

    # --- module hooks --------------------------------------------------------------------------

    def enter(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        path = call_name(self.names[id(module)], self.scopes[-1])
        if self.muted:
            self.frames.append(("inner", -1))
            return
        self.last_module = path
        if module is not self.root and is_leaf(module, path):
            call = RecordedCall("module", qualname(type(module)), parent_path(path) or "", path)
            call.slots = self.slots(args, kwargs)
            index = self.add(call).index
            self.frames.append(("leaf", index))
            self.muted += 1
            if self.counter is not None:
                self.counter.take()
            return
        self.scopes.append(path)
        self.frames.append(("scope", -1))

    def leave(self, output: Any) -> Any:
        kind, index = self.frames.pop()
        if kind == "scope":
            self.scopes.pop()
        elif kind == "leaf":
            self.muted -= 1
            self.calls[index].spec = _spec(output)
            if self.counter is not None:
                self.calls[index].cost = node_cost(self.counter.take())
            new = self.bind(output, Ref(index))
            return None if new is output else new
        return None


class _Mode(TorchFunctionMode):
    """Sees every torch function and Tensor method call made outside a leaf module."""

    def __init__(self, recorder: _CallRecorder) -> None:
        super().__init__()
        self.recorder = recorder

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        rec = self.recorder
        if func in ASSERTS:
            if not rec.muted:  # recorded (then dropped with what feeds it), never run
                slots = rec.slots(args, kwargs)
                if is_traced(slots):
                    rec.add(RecordedCall("function", qualname(func), rec.scopes[-1], None, slots))
                    rec.calls[-1].dropped = True
            return None
        kind, op, slots = _classify(func, args, kwargs, rec) if not rec.muted else ("", "", [])
        counter = rec.counter if kind else None
        if counter is not None:
            counter.take()
        with rec.mute():
            try:
                result = lenient.call(func, traced.plain(args), traced.plain(kwargs))
            except Exception as exc:  # the innermost op names the failure (`budget.failed_op`)
                budget.tag(exc, _op_name(func))
                raise
        taken = counter.take() if counter is not None else None
        if isinstance(result, torch.device) and not rec.muted:
            rec.device_reads[id(result)] = result
        if not kind or not is_traced(slots):
            return result
        target = func if kind == "function" and op != "getattr" else None
        out = rec.record(kind, op, slots, result, target)
        if taken is not None:
            rec.calls[-1].cost = node_cost(taken)
        return out


def _classify(
    func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], rec: _CallRecorder
) -> tuple[str, str, list[tuple[str, Any]]]:
    name = getattr(func, "__name__", "")
    owner = getattr(func, "__self__", None)
    if name == "__get__" and owner is not None and args:  # a Tensor property: `x.shape`
        return "function", "getattr", [("0", rec.mark(args[0])), ("1", owner.__name__)]
    if name.startswith("__") and name.endswith("__"):
        return "", "", []  # repr, len, format...: not part of the architecture
    slots = rec.slots(args, kwargs)
    if is_tensor_method_or_property(func):
        return "method", name, slots
    return "function", qualname(func), slots


def _op_name(func: Any) -> str:
    if is_tensor_method_or_property(func):
        return f"Tensor.{getattr(func, '__name__', func)}"
    return qualname(func)


def _alias(tensor: torch.Tensor) -> torch.Tensor:
    try:
        with torch._C.DisableTorchFunction():
            return tensor.view_as(tensor)
    except Exception:  # sparse and other layouts without views keep their identity
        return tensor


def _fields(value: Any) -> dict[str, Any] | None:
    """The fields of a dataclass or of an object holding tensors (torchvision's ImageList)."""
    if isinstance(value, (type, torch.Tensor, nn.Module, str, bytes)):
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, dict):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict) and any(
        isinstance(v, torch.Tensor) for v in attributes.values()
    ):
        return {k: v for k, v in attributes.items() if not k.startswith("_")}
    return None


def _spec(value: Any) -> Value:
    """`spec_of`, reading dataclasses and tensor-holding objects as their fields."""
    with torch._C.DisableTorchFunction():  # reading shapes is not part of the program
        return _spec_of(traced.plain(value))


def _spec_of(value: Any) -> Value:
    if isinstance(value, (torch.Tensor, torch.Size)):
        return spec_of(value)
    if isinstance(value, (tuple, list)):
        items = [_spec_of(v) for v in value]
        return {"$tuple": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {"$dict": [[encode(k), _spec_of(v)] for k, v in value.items()]}
    fields = _fields(value)
    if fields is not None:
        return {"$dict": [[k, _spec_of(v)] for k, v in fields.items()]}
    return spec_of(value)


# --- running --------------------------------------------------------------------------------


def _call_arguments(
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
) -> _CallRecorder:
    with counting() as counter:
        return _record_counting(model, bound, device, counter, grad)


def _record_counting(
    model: nn.Module,
    bound: dict[str, Any],
    device: torch.device,
    counter: Counter | None,
    grad: bool = False,
) -> _CallRecorder:
    rec = _CallRecorder(model, counter)
    given = {}  # containers passed in, by identity, as the model sees them
    keywords = _var_keyword(model.forward)
    for name, value in bound.items():
        call = RecordedCall("input", name, spec=_spec(value), slots=input_default(model, name))
        ref = rec.add(call)
        given[id(value)] = rec.own(value, ref)
        if name == keywords:
            rec.keyed.update(
                (id(v), (ref, k)) for k, v in value.items() if isinstance(v, torch.Tensor)
            )
    args, kwargs = _call_arguments(model.forward, bound)
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
    try:
        autograd = torch.enable_grad() if grad else torch.no_grad()
        with autograd, torch.device(device), patched(), _Mode(rec), preserved(model):
            result = model(*args, **kwargs)
    finally:
        traced._recording.pop()
        for handle in handles:
            handle.remove()
    rec.add(RecordedCall("output", "output", slots=[("0", rec.mark(result))], spec=_spec(result)))
    for call in rec.calls:  # shape arithmetic on Python numbers: counted, and costs nothing
        if counter is not None and call.cost is None and call.kind in _OPS:
            call.cost = {"macs": 0}
    return rec


_NEEDS_GRAD = ("does not require grad", "does not have a grad_fn", "differentiated Tensors")
"""What autograd says when a forward differentiates (`torch.autograd.grad` inside `forward`:
gradient penalties, physics-informed nets, meta-learning inner loops) under `no_grad`."""


def _record_with_grad_if_needed(
    model: nn.Module, bound: dict[str, Any], device: torch.device
) -> _CallRecorder:
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
        "inputs": {key: _spec(value) for key, value in bound.items()},
    }
    return priced(to_graph(rec.calls, model, meta))


def _failed(name: str, error: BaseException, on_meta: BaseException | None) -> TraceError:
    def one_line(exc: BaseException) -> str:
        text = (str(exc).strip().splitlines() or [""])[0][:200]
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

    also = f" (on meta: {one_line(on_meta)})" if on_meta is not None else ""
    return TraceError(f"running {name} on the example inputs failed: {one_line(error)}{also}")
