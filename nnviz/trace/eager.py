"""The eager tracer: record a real forward pass into the same `Graph` the fx tracer builds.

For models torch.fx cannot trace (data-dependent control flow, detection models, HF models), the
model is run once on example inputs — on `meta` tensors when it lives on the meta device, else
(or when meta cannot run it) on the CPU — in eval mode under `torch.no_grad()`, and every call is
recorded:

- module forward pre/post hooks give the hierarchy: a non-leaf module opens a scope, a leaf
  module (`torch.fx.Tracer.is_leaf_module`: built-in `torch.nn` modules) is one node and nothing
  inside it is recorded;
- a `TorchFunctionMode` sees every torch function and Tensor method; Tensor operators (`x + y`,
  `x[0]`) are recorded as the `operator` functions fx records; functions registered with
  `torch.fx.wrap` are recorded as single calls, like fx does;
- tensor identity gives the data flow, and ints, sizes and tuples produced by recorded calls are
  wrapped (`nnviz.trace.traced`) so shape arithmetic and unpacking are recorded too.

Calls are recorded only when an argument is traced (as fx records only calls on proxies); the
recorded calls are then turned into nodes with fx's conventions — ids, op names, slots, `$attr`
for a module's own parameters and buffers, asserts and what only feeds them dropped — so for a
model both tracers handle, both graphs are the same apart from `meta["tracer"]`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
import operator
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.fx as fx
from torch import nn
from torch.overrides import TorchFunctionMode, is_tensor_method_or_property

from nnviz.errors import TraceError
from nnviz.graph import Edge, Graph, Node, parent_path
from nnviz.trace import traced
from nnviz.trace.encode import IdAllocator, encode, module_tree, qualname, scoped, spec_of, versions
from nnviz.trace.fx import ASSERTS
from nnviz.trace.inputs import InputSpec
from nnviz.values import Value


@dataclasses.dataclass(frozen=True)
class _Ref:
    """The output of recorded call number `index`."""

    index: int


@dataclasses.dataclass(frozen=True)
class _Attr:
    """A module's parameter, buffer or tensor attribute (or a stored tensor constant)."""

    name: str
    proxied: bool
    """Whether fx would have a proxy for it (parameters), which makes a call recorded."""


@dataclasses.dataclass
class _Call:
    kind: str
    op: str
    scope: str = ""
    module: str | None = None
    slots: list[tuple[str, Any]] = dataclasses.field(default_factory=list)
    spec: Value = None
    dropped: bool = False
    """Asserts and bool comparisons (which in a fx-traceable model only feed asserts)."""


class _Recorder:
    """Records the calls of one forward pass of `root`."""

    def __init__(self, root: nn.Module) -> None:
        self.root = root
        self.calls: list[_Call] = []
        self.muted = 0
        self.scopes: list[str] = [""]
        self.frames: list[tuple[str, int]] = []
        self.last_module = ""
        self.paths = {m: p for p, m in root.named_modules()}
        self._leaf_rule = fx.Tracer()
        self.producers: dict[int, tuple[_Ref, Any]] = {}
        self.attrs: dict[int, tuple[_Attr, Any]] = {}
        self._constants = 0
        for path, module in root.named_modules():  # fx's tensor_attrs: plain tensor attributes
            for key, value in vars(module).items():
                if isinstance(value, torch.Tensor):
                    self.attrs[id(value)] = (_Attr(scoped(path, key), False), value)
        for key, buffer in reversed(list(root.named_buffers())):
            self.attrs[id(buffer)] = (_Attr(key, False), buffer)
        for key, param in reversed(list(root.named_parameters())):
            self.attrs[id(param)] = (_Attr(key, True), param)

    # --- values --------------------------------------------------------------------------------

    def mark(self, value: Any) -> Any:
        """A runtime argument with traced values replaced by `_Ref`/`_Attr` markers."""
        if isinstance(value, traced.Traced):
            return value.ref
        if isinstance(value, torch.Tensor):
            hit = self.producers.get(id(value))
            if hit is not None:
                return hit[0]
            known = self.attrs.get(id(value))
            if known is None:  # fx stores a tensor it cannot name as a fresh constant
                known = (_Attr(f"_tensor_constant{self._constants}", False), value)
                self._constants += 1
                self.attrs[id(value)] = known
            return known[0]
        if isinstance(value, nn.Module) and value in self.paths:
            return _Attr(self.paths[value], False)
        if isinstance(value, (tuple, list)) and not hasattr(value, "_fields"):
            items = [self.mark(v) for v in value]
            return tuple(items) if isinstance(value, tuple) else items
        if isinstance(value, slice):
            return slice(self.mark(value.start), self.mark(value.stop), self.mark(value.step))
        fields = _fields(value)
        if fields is not None:
            return {k: self.mark(v) for k, v in fields.items()}
        return value

    def slots(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
        return [(str(i), self.mark(a)) for i, a in enumerate(args)] + [
            (k, self.mark(v)) for k, v in kwargs.items()
        ]

    def bind(self, result: Any, ref: _Ref) -> Any:
        """Register `result` as the output of `ref`; return what the program should see."""
        if isinstance(result, torch.Tensor):
            if id(result) in self.producers or id(result) in self.attrs:
                result = _alias(result)  # an op returning its input: fx sees a new value
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

    def own(self, value: Any, ref: _Ref) -> None:
        """Credit every tensor inside an input to its input node."""
        if isinstance(value, torch.Tensor):
            self.producers[id(value)] = (ref, value)
        elif isinstance(value, (tuple, list)):
            for item in value:
                self.own(item, ref)
        elif isinstance(value, dict):
            for item in value.values():
                self.own(item, ref)

    # --- recording -----------------------------------------------------------------------------

    def add(self, call: _Call) -> _Ref:
        self.calls.append(call)
        return _Ref(len(self.calls) - 1)

    def record(self, kind: str, op: str, slots: list[tuple[str, Any]], result: Any) -> Any:
        ref = self.add(_Call(kind, op, self.scopes[-1], None, slots, _spec(traced.plain(result))))
        return self.bind(result, ref)

    def record_op(
        self, target: Callable[..., Any] | str, operands: tuple[Any, ...], result: Any
    ) -> Any:
        return self.finish(target, [(str(i), self.mark(o)) for i, o in enumerate(operands)], result)

    def finish(
        self, target: Callable[..., Any] | str, slots: list[tuple[str, Any]], result: Any
    ) -> Any:
        """Record an operator call (a method when `target` is a name) if it is traced."""
        if not _is_traced(slots):
            return result
        if isinstance(target, str):
            return self.record("method", target, slots, result)
        out = self.record("function", qualname(target), slots, result)
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
        path = self.paths[module]
        if self.muted:
            self.frames.append(("inner", -1))
            return
        self.last_module = path
        if module is not self.root and self._leaf_rule.is_leaf_module(module, path):
            call = _Call("module", qualname(type(module)), parent_path(path) or "", path)
            call.slots = self.slots(args, kwargs)
            self.frames.append(("leaf", self.add(call).index))
            self.muted += 1
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
            new = self.bind(output, _Ref(index))
            return None if new is output else new
        return None


class _Mode(TorchFunctionMode):
    """Sees every torch function and Tensor method call made outside a leaf module."""

    def __init__(self, recorder: _Recorder) -> None:
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
                if _is_traced(slots):
                    rec.add(_Call("function", qualname(func), rec.scopes[-1], None, slots))
                    rec.calls[-1].dropped = True
            return None
        kind, op, slots = _classify(func, args, kwargs, rec) if not rec.muted else ("", "", [])
        with rec.mute():
            result = func(*traced.plain(args), **traced.plain(kwargs))
        if not kind or not _is_traced(slots):
            return result
        return rec.record(kind, op, slots, result)


def _classify(
    func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], rec: _Recorder
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


def _is_traced(value: Any) -> bool:
    if isinstance(value, _Ref):
        return True
    if isinstance(value, _Attr):
        return value.proxied
    if isinstance(value, (tuple, list)):
        return any(_is_traced(v) for v in value)
    if isinstance(value, dict):
        return any(_is_traced(v) for v in value.values())
    if isinstance(value, slice):
        return any(_is_traced(v) for v in (value.start, value.stop, value.step))
    return False


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


# --- patches active while recording ---------------------------------------------------------

_OPERATORS: dict[str, tuple[Callable[..., Any], bool]] = {}
"""Tensor dunder -> (the operator fx records, whether the operands are swapped)."""
for _name, _binary in {**traced.BINARY, "matmul": operator.matmul}.items():
    _OPERATORS[f"__{_name}__"] = (_binary, False)
    _OPERATORS[f"__r{_name}__"] = (_binary, True)
    _OPERATORS[f"__i{_name}__"] = (_binary, False)  # fx proxies have no `+=`: it records `+`
_ITEMS: dict[str, Callable[..., Any]] = {"getitem": operator.getitem, "setitem": operator.setitem}
for _name, _other in {**traced.UNARY, **traced.COMPARE, **_ITEMS}.items():
    _OPERATORS[f"__{_name}__"] = (_other, False)
_COMPARISONS = set(traced.COMPARE.values())


def _operator_method(
    original: Callable[..., Any], target: Callable[..., Any], swapped: bool
) -> Callable[..., Any]:
    def method(self: Any, *other: Any) -> Any:
        rec = traced.active()
        if not isinstance(rec, _Recorder):
            return original(self, *other)
        operands = (*other, self) if swapped else (self, *other)
        slots = [(str(i), rec.mark(o)) for i, o in enumerate(operands)]  # before any mutation
        with _muted(rec):
            result = original(self, *traced.plain(other))
        return result if result is NotImplemented else rec.finish(target, slots, result)

    method.__name__ = getattr(original, "__name__", "method")
    return method


@contextlib.contextmanager
def _muted(rec: traced.Recording) -> Iterator[None]:
    rec.muted += 1
    try:
        yield
    finally:
        rec.muted -= 1


def _wrapped_function(original: Callable[..., Any]) -> Callable[..., Any]:
    """A `torch.fx.wrap`-registered function: one recorded call, its insides unrecorded."""

    def function(*args: Any, **kwargs: Any) -> Any:
        rec = traced.active()
        if not isinstance(rec, _Recorder):
            return original(*args, **kwargs)
        slots = rec.slots(args, kwargs)
        with _muted(rec):
            result = original(*traced.plain(args), **traced.plain(kwargs))
        if not _is_traced(slots):
            return result
        return rec.record("function", qualname(original), slots, result)

    return function


@contextlib.contextmanager
def _patched() -> Iterator[None]:
    """Patch Tensor operators and the fx-wrapped functions; restore them afterwards."""
    from torch.fx import _symbolic_trace

    missing = object()
    undo: list[tuple[Any, str, Any]] = []
    try:
        for name, (target, swapped) in _OPERATORS.items():
            original = getattr(torch.Tensor, name, None)
            if original is None:
                continue
            undo.append((torch.Tensor, name, torch.Tensor.__dict__.get(name, missing)))
            setattr(torch.Tensor, name, _operator_method(original, target, swapped))
        wrapped = [(ns, name) for (_, name), ns in _symbolic_trace._wrapped_fns_to_patch.items()]
        # fx also records `math` functions called on traced numbers (its `autowrap_modules`)
        wrapped += [(vars(math), n) for n in vars(math) if not n.startswith("_")]
        for namespace, name in wrapped:
            if callable(namespace.get(name)):
                undo.append((namespace, name, namespace[name]))
                namespace[name] = _wrapped_function(namespace[name])
        yield
    finally:
        for owner, name, previous in reversed(undo):
            if isinstance(owner, dict):
                owner[name] = previous
            elif previous is missing:
                delattr(owner, name)
            else:
                setattr(owner, name, previous)


# --- running --------------------------------------------------------------------------------


def _device_of(model: nn.Module) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _call_arguments(
    forward: Callable[..., Any], bound: dict[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for name, param in inspect.signature(forward).parameters.items():
        if name not in bound:
            continue
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            args.append(bound[name])
        elif param.kind is param.VAR_POSITIONAL:
            args.extend(bound[name])
        elif param.kind is param.KEYWORD_ONLY:
            kwargs[name] = bound[name]
        else:
            kwargs.update(bound[name])
    return args, kwargs


def _record(model: nn.Module, bound: dict[str, Any], device: torch.device) -> _Recorder:
    rec = _Recorder(model)
    for name, value in bound.items():
        rec.own(value, rec.add(_Call("input", name, spec=_spec(value))))
    args, kwargs = _call_arguments(model.forward, bound)
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
        with torch.no_grad(), torch.device(device), _patched(), _Mode(rec):
            result = model(*args, **kwargs)
    finally:
        traced._recording.pop()
        for handle in handles:
            handle.remove()
    rec.add(_Call("output", "output", slots=[("0", rec.mark(result))], spec=_spec(result)))
    return rec


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
    device = _device_of(model)
    bound = inputs.bind(model.forward, device)
    try:
        rec = _record(model, bound, device)
    except Exception as first:
        if device.type != "meta":
            raise _failed(name, first, None) from None
        try:
            model = (rebuild() if rebuild is not None else _materialised(model)).eval()
            bound = inputs.bind(model.forward, "cpu")
            rec = _record(model, bound, torch.device("cpu"))
        except Exception as second:
            raise _failed(name, second, first) from None
    meta = {
        "name": name,
        "tracer": "eager",
        "versions": versions(),
        "inputs": {key: _spec(value) for key, value in bound.items()},
    }
    return _to_graph(rec.calls, model, meta)


def _materialised(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).to_empty(device="cpu")


def _failed(name: str, error: BaseException, on_meta: BaseException | None) -> TraceError:
    def one_line(exc: BaseException) -> str:
        text = (str(exc).strip().splitlines() or [""])[0][:200]
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

    also = f" (on meta: {one_line(on_meta)})" if on_meta is not None else ""
    return TraceError(f"running {name} on the example inputs failed: {one_line(error)}{also}")


# --- recorded calls to a graph (fx's conventions, see nnviz.trace.fx) ------------------------


def _to_graph(calls: list[_Call], model: nn.Module, meta: dict[str, Value]) -> Graph:
    users: list[list[int]] = [[] for _ in calls]
    for index, call in enumerate(calls):
        for slot, value in call.slots:
            for _, ref in _refs(value, slot):
                users[ref.index].append(index)
    dropped = {i for i, call in enumerate(calls) if call.dropped}
    changed = True
    while changed:
        changed = False
        for i in reversed(range(len(calls))):
            if i in dropped or calls[i].kind not in ("function", "method"):
                continue
            if (users[i] and all(u in dropped for u in users[i])) or (
                not users[i] and _is_shape_query(calls[i])
            ):
                dropped.add(i)
                changed = True
    allocate = IdAllocator()
    ids: dict[int, str] = {}
    nodes: list[Node] = []
    edges: dict[tuple[str, str], list[str]] = {}
    for index, call in enumerate(calls):
        if index in dropped:
            continue
        node_id = ids[index] = allocate(_base_id(call))
        constants: dict[str, Value] = {}
        for slot, value in call.slots:
            refs = list(_refs(value, slot))
            if refs:
                for sub, ref in refs:
                    if ref.index in ids:
                        edges.setdefault((ids[ref.index], node_id), []).append(sub)
            else:
                constants[slot] = _constant(value)
        nodes.append(
            Node(
                id=node_id,
                kind=call.kind,  # type: ignore[arg-type]
                op=call.op,
                scope=call.scope,
                module=call.module,
                args=constants,
                spec=call.spec,
            )
        )
    return Graph(
        nodes,
        [Edge(s, t, tuple(slots)) for (s, t), slots in edges.items()],
        module_tree(model),
        meta,
    )


def _is_shape_query(call: _Call) -> bool:
    """An unused side-effect-free read, which the fx tracer drops too (`nnviz.trace.fx`)."""
    if call.kind == "function":
        return call.op in ("getattr", "operator.getitem", "len")
    return call.kind == "method" and call.op in ("size", "dim", "numel", "__len__")


def _base_id(call: _Call) -> str:
    if call.kind == "input":
        return f"input:{call.op}"
    if call.kind == "output":
        return "output"
    if call.kind == "module":
        assert call.module is not None
        return call.module
    return scoped(call.scope, call.op.rsplit(".", 1)[-1])


def _refs(value: Any, slot: str) -> Iterator[tuple[str, _Ref]]:
    if isinstance(value, _Ref):
        yield slot, value
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            yield from _refs(item, f"{slot}.{i}")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _refs(item, f"{slot}.{key}")
    elif isinstance(value, slice):
        for i, item in enumerate((value.start, value.stop, value.step)):
            yield from _refs(item, f"{slot}.{i}")


def _constant(value: Any) -> Value:
    if isinstance(value, _Attr):
        return {"$attr": value.name}
    if isinstance(value, (tuple, list)) and any(isinstance(v, _Attr) for v in value):
        items = [_constant(v) for v in value]
        return {"$tuple": items} if isinstance(value, tuple) else items
    return encode(value)
