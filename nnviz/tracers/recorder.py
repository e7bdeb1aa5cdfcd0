"""The eager tracer's recorder: what one forward pass calls, as `RecordedCall`s.

Module forward pre/post hooks (`CallRecorder.enter`/`leave`) give the hierarchy: a non-leaf
module opens a scope, a leaf module is one call and nothing inside it is recorded. A
`TorchFunctionMode` (`RecordingMode`) sees every torch function and Tensor method called
outside a leaf. Tensor identity gives the data flow (`CallRecorder.mark`: traced values as
`Ref`/`Attr` markers), and ints, sizes and tuples produced by recorded calls are wrapped
(`nnviz.tracers.traced`) so shape arithmetic and unpacking are recorded too. Each call keeps
its cost (`nnviz.tracers.cost`) and where it is written (`nnviz.tracers.lines`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode, is_tensor_method_or_property

from nnviz.graph import parent_path
from nnviz.tracers import budget, lenient, traced
from nnviz.tracers.conventions import call_name, encode, module_names, qualname, scoped, spec_of
from nnviz.tracers.cost import Counter, node_cost
from nnviz.tracers.fx import ASSERTS, is_leaf
from nnviz.tracers.lines import Where
from nnviz.tracers.recorded import Attr, RecordedCall, Ref, is_traced
from nnviz.values import Value

_COMPARISONS = set(traced.COMPARE.values())
OPS = ("module", "function", "method")


class CallRecorder:
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
        self.where: Where | None = None
        """Where a call is written (set by the function that runs the model)."""
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
                             [("0", ref), ("1", key)], runtime_spec(value)))  # fmt: skip
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
        if self.where is not None and call.kind in OPS:
            call.source = self.where()
        self.calls.append(call)
        return Ref(len(self.calls) - 1)

    def record(
        self, kind: str, op: str, slots: list[tuple[str, Any]], result: Any, target: Any = None
    ) -> Any:
        spec = runtime_spec(traced.plain(result))
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
            self.calls[index].spec = runtime_spec(output)
            if self.counter is not None:
                self.calls[index].cost = node_cost(self.counter.take())
            new = self.bind(output, Ref(index))
            return None if new is output else new
        return None


class RecordingMode(TorchFunctionMode):
    """Sees every torch function and Tensor method call made outside a leaf module."""

    def __init__(self, recorder: CallRecorder) -> None:
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
    func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], rec: CallRecorder
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


def runtime_spec(value: Any) -> Value:
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
