"""The torch.export tracer: non-strict `torch.export` on the model's own device (meta tensors for
a meta model), turned into the same `Graph` the fx and eager tracers build
(`nnviz.tracers.exported`), and the exportability of a model as a record.

- Sizes named in the inputs (`-i tensorBx3x224x224`, see `nnviz.tracers.inputs`) are traced as
  `torch.export.Dim`s and recorded by their names (`[B, 3, 224, 224]`, `[B*196, 768]`); a model
  that fixes a declared-dynamic size fails with one line saying which and to what.
- A failing export is an `ExportFailure`: the first reason, and where: the innermost frame
  of the traceback outside torch, as `file.py:line` (a file name, never an absolute path).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import os
import re
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from nnviz.errors import TraceError
from nnviz.graph import Graph
from nnviz.tracers.conventions import MODEL_DEVICE, encode, spec_of, versions
from nnviz.tracers.cost import counting, priced
from nnviz.tracers.eager import call_arguments
from nnviz.tracers.exported import Arg, LeafArguments, Lowering, to_graph
from nnviz.tracers.inputs import InputSpec
from nnviz.tracers.pristine import preserved
from nnviz.values import Value

_TORCH_DIR = os.path.dirname(torch.__file__)
_NNVIZ_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Exportability:
    """Whether `torch.export` succeeds on a model, and if not the first reason and where."""

    ok: bool
    reason: str = ""
    where: str = ""
    """`modeling_x.py:123`: the innermost frame of the failure outside torch."""

    def to_dict(self) -> dict[str, Value]:
        if self.ok:
            return {"ok": True}
        return {"ok": False, "reason": self.reason, "where": self.where}


class ExportFailure(TraceError):
    """`torch.export` failed on the model; `result` says why and where."""

    def __init__(self, name: str, result: Exportability) -> None:
        at = f" at {result.where}" if result.where else ""
        super().__init__(f"torch.export cannot export {name}{at}: {result.reason}")
        self.result = result


def trace_export(model: nn.Module, name: str, inputs: InputSpec) -> Graph:
    """Export `model` on `inputs` and record its graph (see the module docstring)."""
    program, bound, names, (arguments, returns) = _export(model, name, inputs)
    symbols = _symbols(program, names)
    lowering = _lowering(program, symbols)
    lowering.arguments.update(arguments)
    lowering.returns.update(returns)
    placeholders = _user_inputs(program, bound)
    given = _fake_bound(bound, placeholders, names)
    meta: dict[str, Value] = {
        "name": name,
        "tracer": "export",
        "versions": versions(),
        "inputs": {key: lowering.spec(value) for key, value in given.items()},
        "export": {"ok": True},
    }
    if not names:  # MACs of symbolic sizes would be formulas: unknown (no cost) instead
        lowering.costs.update(_costs(program, bound))
    with preserved(model):
        return priced(to_graph(program, model, placeholders, lowering, meta))


def exportability(model: nn.Module, name: str, inputs: InputSpec) -> Exportability:
    """Whether `model` exports on `inputs` (`torch.export`, non-strict), without raising."""
    try:
        _export(model, name, inputs)
    except ExportFailure as failure:
        return failure.result
    return Exportability(True)


def _export(
    model: nn.Module, name: str, inputs: InputSpec
) -> tuple[Any, dict[str, Any], Any, tuple[LeafArguments, dict[int, list[Any]]]]:
    from nnviz.tracers.conventions import device_of

    model.eval()
    device = device_of(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        bound = inputs.bind(model.forward, device)
    names = inputs.dims(model.forward)
    args, kwargs = call_arguments(model.forward, bound)
    positional = [
        n
        for n, p in inspect.signature(model.forward).parameters.items()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    passed = [*positional[: len(args)], *kwargs]  # defaults left out are not export's inputs
    dynamic = _dynamic_shapes(model, {n: bound[n] for n in passed if n in bound}, names)
    arguments: LeafArguments = {}
    returns: dict[int, list[Any]] = {}
    try:
        with preserved(model), _quiet(), torch.no_grad(), _leaves_seen(model, arguments, returns), \
                _functions_told_apart():  # fmt: skip
            program = torch.export.export(
                model, tuple(args), kwargs, dynamic_shapes=dynamic, strict=False
            )
    except Exception as exc:
        raise ExportFailure(name, _why(exc)) from exc
    return program, bound, names, (arguments, returns)


@contextlib.contextmanager
def _leaves_seen(
    model: nn.Module, arguments: LeafArguments, returns: dict[int, list[Any]]
) -> Iterator[None]:
    """Every call of a leaf module starts with an ATen `alias` of each distinct tensor argument
    and ends with one of its output, all made inside it: the aliases tell which traced value
    fills which argument (`arguments`, per module in call order: `Arg(i)` for the i-th distinct
    tensor, else the constant), and a module that computes nothing (`nn.Identity`, dropout in
    eval) still leaves a node with its `nn_module_stack`. One alias per tensor keeps `q is k`
    tests true. The aliases are folded into the module's node (`nnviz.tracers.exported`)."""
    from torch.utils._pytree import tree_map

    from nnviz.tracers.fx import is_leaf

    def alias(value: Any) -> Any:
        return torch.ops.aten.alias.default(value) if isinstance(value, torch.Tensor) else value

    def before(module: nn.Module, args: Any, kwargs: Any) -> Any:
        made: dict[int, Any] = {}
        slots: list[tuple[str, Any]] = []

        def mark(slot: str, value: Any) -> Any:
            if not isinstance(value, torch.Tensor):
                slots.append((slot, value))
                return value
            if id(value) not in made:
                made[id(value)] = (len(made), alias(value))
            slots.append((slot, Arg(made[id(value)][0])))
            return made[id(value)][1]

        new_args = tuple(mark(str(i), a) for i, a in enumerate(args))
        new_kwargs = {k: mark(k, v) for k, v in kwargs.items()}
        arguments.setdefault(id(module), []).append(slots)
        return new_args, new_kwargs

    def after(module: nn.Module, args: Any, out: Any) -> Any:
        shape = None
        if isinstance(out, tuple) and not hasattr(out, "_fields"):
            shape = [Arg if isinstance(e, torch.Tensor) else e for e in out]
        returns.setdefault(id(module), []).append(shape)
        return tree_map(alias, out)

    handles = []
    for path, module in model.named_modules():
        if path and is_leaf(module, path):
            handles.append(module.register_forward_pre_hook(before, with_kwargs=True))
            handles.append(module.register_forward_hook(after))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _costs(program: Any, bound: Mapping[str, Any]) -> dict[fx.Node, tuple[int, dict[str, int]]]:
    """Each ATen node's MACs and uncounted ops (`nnviz.tracers.cost`), from running the
    program's graph on meta tensors shaped as its example values."""
    from torch.utils._pytree import tree_leaves

    def meta(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return torch.empty(value.shape, dtype=value.dtype, device="meta")
        return value

    users = [v for v in tree_leaves(dict(bound)) if isinstance(v, torch.Tensor)]
    args = []
    by_name = {s.arg.name: s for s in program.graph_signature.input_specs}
    for node in program.graph.nodes:
        if node.op != "placeholder":
            continue
        spec = by_name.get(node.name)
        if spec is not None and spec.kind.name == "USER_INPUT":
            args.append(meta(users.pop(0)) if users else meta(node.meta.get("val")))
        else:
            args.append(meta(node.meta.get("val")))
    found: dict[fx.Node, tuple[int, dict[str, int]]] = {}

    class _Run(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            out = super().run_node(n)
            if n.op == "call_function" and counter is not None:
                found[n] = counter.take()
            return out

    try:
        with counting() as counter, torch.no_grad(), _quiet():
            _Run(fx.GraphModule({}, program.graph)).run(*args)
    except Exception:  # the graph is recorded either way; its cost is unknown
        return {}
    return found


def _dynamic_shapes(
    model: nn.Module, bound: Mapping[str, Any], names: Mapping[str, Mapping[int, str]]
) -> dict[str, Any] | None:
    """`dynamic_shapes` by forward argument: a `Dim` for every named size (one `Dim` per name)."""
    if not names:
        return None
    dims: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for arg in bound:
        if arg in names:
            out[arg] = {i: dims.setdefault(n, torch.export.Dim(n)) for i, n in names[arg].items()}
        else:
            out[arg] = None
    return out


TWINS = ("lu", "norm", "split", "stft", "unique", "unique_consecutive")
"""Python functions of `torch` whose `Tensor` method is Python too (`torch.split`,
`Tensor.split`): non-strict export names both `function.split` in a node's `torch_fn`."""


@contextlib.contextmanager
def _functions_told_apart() -> Iterator[None]:
    """While exporting, `torch.split` is named `torch.split` (its `torch_fn` then reads
    `function.torch.split`, `atencalls.op_of` records the function), its method `split`."""
    named = [(f, f.__name__) for n in TWINS if inspect.isfunction(f := getattr(torch, n, None))]
    for function, name in named:
        function.__name__ = f"torch.{name}"
    try:
        yield
    finally:
        for function, name in named:
            function.__name__ = name


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """torch.export logs graph dumps and hints at warning level, and prints the failing graph
    to stderr: none of it is nnviz's output (the failure itself is raised)."""
    loggers = [logging.getLogger(n) for n in ("torch", "torch._dynamo", "torch.fx", "torch.export")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


_SPECIALISED = re.compile(r"You marked (\w+) as dynamic but your code specialized it to be a "
                          r"constant \(([^)]*)\)")  # fmt: skip


_SENTENCE_END = re.compile(r"(?<=[a-z)'\]][.!?])\s+(?=[A-Z])")

_GUARD = re.compile(r"Not all values of (\w+) = .*? satisfy the generated guard (.*)\.$", re.M)


def _why(exc: BaseException) -> Exportability:
    """The first reason of a failed export, in one line, and the user's line that caused it."""
    text = str(exc)
    special = _SPECIALISED.search(text)
    if special is not None:
        reason = (f"the size {special[1]} was declared dynamic but the model fixes it to "
                  f"{special[2]}")  # fmt: skip
        return Exportability(False, reason, _where(exc))
    guard = _GUARD.search(text)
    if guard is not None:
        needs = re.sub(r"L\['\w+'\]\.size\(\)\[\d+\]", guard[1], guard[2])
        reason = (f"the size {guard[1]} was declared dynamic but the model only works when "
                  f"{needs}")  # fmt: skip
        return Exportability(False, reason, _where(exc))
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    first = re.sub(r"<class '([\w.]+)'>", r"\1", re.sub(r"\s+", " ", first))
    first = _SENTENCE_END.split(first, maxsplit=1)[0][:200]  # the reason, not torch's advice
    if type(exc).__name__ == "GuardOnDataDependentSymNode":
        expr = re.search(r"data-dependent expression (.*?) \(", first)
        reason = f"data-dependent branch on {expr[1] if expr else 'a tensor value'}"
    else:
        reason = f"{type(exc).__name__}: {first}"
    return Exportability(False, reason, _where(exc))


def _where(exc: BaseException) -> str:
    """`file.py:line` of the innermost traceback frame in the user's code (outside torch and
    nnviz), following causes; empty when there is none."""
    found = ""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for frame in traceback.extract_tb(current.__traceback__):
            path = os.path.abspath(frame.filename)
            if frame.filename.startswith("<") or path.startswith((_TORCH_DIR, _NNVIZ_DIR)):
                continue
            found = f"{os.path.basename(path)}:{frame.lineno}"
        current = current.__cause__ or current.__context__
    return found or _where_told(exc)


_TOLD = re.compile(r'File "([^"]+)", line (\d+)|(?:# File: |Caused by: \()(\S+?):(\d+) in ')


def _where_told(exc: BaseException) -> str:
    """The last user line torch names in its message, or in the partial graph it keeps (the
    `# File: ...` comment of the ops traced last), when the traceback has none."""
    text = f"{getattr(exc, 'partial_fx_graph', '') or ''}\n{exc}"  # the message's lines last
    found = ""
    for match in _TOLD.finditer(text):
        path, line = (match[1], match[2]) if match[1] else (match[3], match[4])
        if not os.path.abspath(path).startswith((_TORCH_DIR, _NNVIZ_DIR)):
            found = f"{os.path.basename(path)}:{line}"
    return found


def _symbols(program: Any, names: Mapping[str, Mapping[int, str]]) -> dict[Any, str]:
    """Each symbol export made for a named size (`s77`), by that name (`B`)."""
    if not names:
        return {}
    found: dict[Any, str] = {}
    for node in program.graph.nodes:
        if node.op != "placeholder" or node.name not in names:
            continue
        val = node.meta.get("val")
        for index, name in names[node.name].items():
            size = val.shape[index] if isinstance(val, torch.Tensor) else None
            if isinstance(size, torch.SymInt):
                found[size.node.expr] = name
    return found


def _lowering(program: Any, symbols: Mapping[Any, str]) -> Lowering:
    signature = program.graph_signature
    attrs: dict[fx.Node, Value] = {}
    params: set[fx.Node] = set()
    by_name = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    for given in signature.input_specs:
        node = by_name.get(given.arg.name)
        kind = given.kind.name
        if node is None or kind == "USER_INPUT":
            continue
        if kind in ("PARAMETER", "BUFFER") and given.target is not None:
            attrs[node] = {"$attr": given.target}
            if kind == "PARAMETER":
                params.add(node)
        else:  # a tensor forward() made without an input, lifted by export
            value = program.constants.get(given.target) if given.target else None
            attrs[node] = encode(value) if value is not None else encode(node.meta.get("val"))

    def size(dim: Any) -> Value:
        if isinstance(dim, torch.SymInt):
            expr = dim.node.expr
            if expr.is_number:
                return int(expr)
            text = str(expr.xreplace({s: _symbol(n) for s, n in symbols.items()}))
            return text.replace(" ", "")
        return int(dim)

    def spec(value: Any) -> Value:
        if isinstance(value, torch.Tensor):
            shape = [size(d) for d in value.shape]
            return {"$tensor": {"shape": shape, "dtype": str(value.dtype).removeprefix("torch.")}}
        if isinstance(value, torch.SymInt):
            return size(value)
        if isinstance(value, (tuple, list)) and not isinstance(value, torch.Size):
            items = [spec(v) for v in value]
            return {"$tuple": items} if isinstance(value, tuple) else items
        if isinstance(value, dict):
            return {"$dict": [[encode(k), spec(v)] for k, v in value.items()]}
        if isinstance(value, fx.Node):
            return spec(value.meta.get("val"))
        if isinstance(value, torch.device):
            return MODEL_DEVICE
        return spec_of(value)

    return Lowering(attrs, params, spec, {}, {}, {})


def _symbol(name: str) -> Any:
    import sympy

    return sympy.Symbol(name, integer=True, positive=True)


def _user_inputs(
    program: Any, bound: Mapping[str, Any]
) -> dict[fx.Node, tuple[str, tuple[Any, ...]]]:
    """Each user-input placeholder: its forward argument and the key path inside it."""
    from torch.utils._pytree import tree_flatten_with_path

    placeholders = [
        n for n in program.graph.nodes if n.op == "placeholder"
        and any(s.arg.name == n.name and s.kind.name == "USER_INPUT"
                for s in program.graph_signature.input_specs)
    ]  # fmt: skip
    leaves, _ = tree_flatten_with_path({k: v for k, v in bound.items() if _holds_tensor(v)})
    tensors = [(path, leaf) for path, leaf in leaves if isinstance(leaf, torch.Tensor)]
    out: dict[fx.Node, tuple[str, tuple[Any, ...]]] = {}
    for node, (path, _leaf) in zip(placeholders, tensors, strict=False):
        keys = [getattr(p, "key", getattr(p, "idx", getattr(p, "name", None))) for p in path]
        out[node] = (str(keys[0]), tuple(keys[1:]))
    return out


def _holds_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (tuple, list)):
        return any(_holds_tensor(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_tensor(v) for v in value.values())
    return False


def _fake_bound(
    bound: Mapping[str, Any],
    placeholders: Mapping[fx.Node, tuple[str, tuple[Any, ...]]],
    names: Mapping[str, Mapping[int, str]],
) -> dict[str, Any]:
    """The bound inputs, a top-level tensor as its placeholder (whose sizes are symbolic)."""
    out = dict(bound)
    for node, (arg, path) in placeholders.items():
        if not path and arg in names:
            out[arg] = node
    return out
