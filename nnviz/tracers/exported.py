"""How a `torch.export` program becomes a `Graph` with the fx tracer's conventions.

`torch.export` records ATen operators; users wrote torch calls and modules. Each ATen node is
folded back into what the user called:

- every node inside a leaf module (`nnviz.tracers.fx.is_leaf`, found through the node's
  `nn_module_stack`) belongs to one call of that module: one `module` node, as fx records it;
  a second call of the module is a second node (`relu:1`);
- every other node belongs to the torch call that made it (the node's `torch_fn`, recorded by
  non-strict export): `F.normalize`, which ATen runs as four ops, is one `normalize` node; a
  call's name is read as fx would name it (`torch.cat`, `torch.nn.functional.gelu`, the method
  `view`, `operator.add` for `x + y`);
- a node without a torch call (a `getitem` export adds, a shape read of a symbolic size) is
  recorded by its ATen name.

A call's inputs are the traced values it reads from outside itself, bound by the callee's
parameters as `nnviz.tracers.binding` binds them; its constants are the ATen node's when the
call is one ATen node of the same name (`torch.flatten(x, 1)` is `aten.flatten(x, 1)`), else
none. A call with several outputs used elsewhere gives one `operator.getitem` per output, as fx
records unpacking. A module's parameters and buffers read outside a leaf are `$attr` constants;
a tensor made without any input (`torch.eye(4)`) is a constant, recorded by what it is.
"""

from __future__ import annotations

import dataclasses
import inspect
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from nnviz.graph import Edge, Graph, Node, parent_path
from nnviz.tracers.binding import bind
from nnviz.tracers.conventions import (
    IdAllocator,
    call_name,
    encode,
    holds_ref,
    input_default,
    is_shape_query,
    module_names,
    module_tree,
    nested_parts,
    qualname,
    scoped,
)
from nnviz.tracers.cost import node_cost
from nnviz.tracers.fx import is_leaf
from nnviz.values import Value

OPERATORS = {
    "add": "add",
    "sub": "sub",
    "mul": "mul",
    "div": "truediv",
    "matmul": "matmul",
    "pow": "pow",
    "floor_divide": "floordiv",
    "remainder": "mod",
    "neg": "neg",
    "__getitem__": "getitem",
    "__and__": "and_",
    "__or__": "or_",
}
"""Tensor methods the Python operators call (`x + y` reaches torch as `Tensor.add`): recorded
as the `operator` function fx records, since `x.add(y)` is the rarer spelling of the same call."""

ASSERTS = frozenset(
    {"_assert_scalar", "_assert_tensor_metadata", "sym_constrain_range_for_size", "_assert_async"}
)


@dataclass
class _Call:
    """One user-level call: the ATen nodes it ran, in order."""

    kind: str
    op: str
    scope: str
    module: str | None
    nodes: list[fx.Node] = field(default_factory=list)
    target: Any = None
    index: int = 0
    """For a module call: which call of that module (0 for the first)."""


def op_of(torch_fn: tuple[str, str] | None, node: fx.Node) -> tuple[str, str, Any]:
    """(kind, op, target to bind with) of the torch call recorded as `torch_fn`, or of `node`."""
    if torch_fn is None:
        if node.target is operator.getitem:
            return "function", "operator.getitem", operator.getitem
        if callable(node.target) and not isinstance(node.target, torch._ops.OpOverload):
            return "function", qualname(node.target), node.target
        name = getattr(node.target, "__name__", str(node.target)).split(".")[0]
        if name == "sym_size":
            return "method", "size", "size"
        return "function", f"torch.ops.aten.{name}", None
    owner, _, name = torch_fn[1].rpartition(".")
    if owner in ("method_descriptor", "wrapper_descriptor") or (
        owner == "function"
        and not hasattr(torch.nn.functional, name)
        and hasattr(torch.Tensor, name)
    ):
        plain = name[:-1] if name.endswith("_") and not name.startswith("_") else name
        if plain in OPERATORS:  # `x += y` too, which fx records as `+`
            target = getattr(operator, OPERATORS[plain])
            return "function", qualname(target), target
        return "method", name, name
    homes: tuple[Any, ...] = (torch, torch.nn.functional, torch.special, torch.linalg, torch.fft)
    if owner == "function":  # a Python function: `F.layer_norm`, not the builtin it calls
        homes = (torch.nn.functional, *homes)
    for home in homes:
        target = getattr(home, name, None)
        if callable(target):
            return "function", qualname(target), target
    return "function", f"torch.{name}", None


def calls_of(program: Any, model: nn.Module, traced: set[fx.Node]) -> list[_Call]:
    """The user-level calls of `program`'s traced nodes (see the module docstring), in order."""
    names = module_names(model)
    calls: list[_Call] = []
    by_key: dict[str, _Call] = {}
    for node in program.graph.nodes:
        if node.op != "call_function" or node not in traced:
            continue
        scope, leaf = _where(node, model, names)
        torch_fn = node.meta.get("torch_fn")
        if leaf is not None:
            key = leaf[0]
        elif torch_fn is not None:
            key = f"fn:{scope}:{torch_fn[0]}:{torch_fn[1]}"
        else:
            key = f"node:{node.name}"
        call = by_key.get(key)
        if call is None:
            call = by_key[key] = _new_call(model, scope, leaf, torch_fn, node)
            if leaf is not None:
                call.index = sum(c.target is call.target for c in calls)
            calls.append(call)
        call.nodes.append(node)
    return calls


def _new_call(
    model: nn.Module,
    scope: str,
    leaf: tuple[str, str] | None,
    torch_fn: tuple[str, str] | None,
    node: fx.Node,
) -> _Call:
    if leaf is not None:
        module = model.get_submodule(leaf[1])
        return _Call("module", qualname(type(module)), parent_path(leaf[1]) or "", leaf[1],
                     target=module)  # fmt: skip
    kind, op, target = op_of(torch_fn, node)
    return _Call(kind, op, scope, None, target=target)


def _where(
    node: fx.Node, model: nn.Module, names: Mapping[int, tuple[str, ...]]
) -> tuple[str, tuple[str, str] | None]:
    """The module scope a node ran in, and (stack key, path) of the leaf module it ran inside."""
    scope = ""
    for key, (path, _cls) in (node.meta.get("nn_module_stack") or {}).items():
        if not path:
            continue
        try:
            module = model.get_submodule(path)
        except AttributeError:
            continue
        path = call_name(names.get(id(module), (path,)), scope)
        if is_leaf(module, path):
            return scope, (key, path)
        scope = path
    return scope, None


@dataclass
class Lowering:
    """What the conversion needs beside the program: constants by placeholder, specs by node."""

    attrs: dict[fx.Node, Value]
    """Parameters and buffers as `$attr`, lifted constants by what they are."""
    params: set[fx.Node]
    """The placeholders that are parameters: a call on one is recorded, as fx records it."""
    spec: Callable[[Any], Value]
    """A node's `meta["val"]` as a spec (symbolic sizes by their declared names)."""
    costs: dict[fx.Node, tuple[int, dict[str, int]]]
    """Each ATen node's MACs and uncounted ops (empty: cost unknown)."""
    arguments: LeafArguments
    """Each leaf module's calls' arguments as the forward pre-hook saw them (by module id)."""
    returns: dict[int, list[list[Any] | None]]
    """Each leaf module's calls' tuple outputs (a tensor element as the class `Arg`, others as
    they are), None for a call that returned something else (by module id, in call order)."""


@dataclass(frozen=True)
class Arg:
    """The i-th distinct tensor a leaf module call was given (its i-th leading `alias`)."""

    index: int


LeafArguments = dict[int, list[list[tuple[str, Any]]]]
"""Per leaf module (by `id`), per call in order: its argument slots, tensors as `Arg`."""


def to_graph(
    program: Any,
    model: nn.Module,
    inputs: Mapping[fx.Node, tuple[str, tuple[Any, ...]]],
    lowering: Lowering,
    meta: dict[str, Value],
) -> Graph:
    """The `Graph` of an exported program; `inputs` maps each user-input placeholder to its
    forward argument and the key path inside it; `meta["inputs"]` holds every bound argument's
    spec."""
    traced = _traced(program, set(inputs), lowering)
    calls = calls_of(program, model, traced)
    allocate = IdAllocator()
    made: dict[fx.Node, tuple[str, str | None]] = {}  # ATen node -> (graph node id, getitem slot)
    nodes: list[Node] = []
    edges: dict[tuple[str, str], list[str]] = {}
    given = meta["inputs"]
    assert isinstance(given, dict)
    for name, spec in given.items():
        node_id = allocate(f"input:{name}")
        defaults = {k: encode(v) for k, v in input_default(model, name)}
        nodes.append(Node(node_id, "input", name, args=defaults, spec=spec))
    for placeholder, (name, path) in inputs.items():
        made[placeholder] = (f"input:{name}", ".".join(str(p) for p in path) or None)
    used = _users(calls)
    for call in calls:
        _add_call(call, used, made, allocate, nodes, edges, lowering)
    out_node = next(n for n in program.graph.nodes if n.op == "output")
    structure = _output_structure(program, out_node)
    edges_out: list[tuple[str, str]] = []
    for sub, part in nested_parts(structure, "0", lambda v: isinstance(v, fx.Node)):
        if isinstance(part, fx.Node) and part in made:
            edges_out.append((_source(part, made, allocate, nodes, edges, lowering), sub))
    nodes.append(Node("output", "output", "output", spec=lowering.spec(structure)))
    for source, sub in edges_out:
        edges.setdefault((source, "output"), []).append(sub)
    graph_edges = [Edge(s, t, tuple(slots)) for (s, t), slots in edges.items()]
    return Graph(_drop_unused_reads(nodes, graph_edges), graph_edges, module_tree(model), meta)


def _traced(program: Any, inputs: set[fx.Node], lowering: Lowering) -> set[fx.Node]:
    """Nodes that depend on a user input or a parameter (fx records only calls on proxies);
    asserts and what only feeds them are left out."""
    traced: set[fx.Node] = set(inputs)
    params = lowering.params
    for node in program.graph.nodes:
        if node.op == "call_function" and any(a in traced or a in params for a in _args(node)):
            traced.add(node)
    for node in reversed(list(program.graph.nodes)):
        name = getattr(node.target, "__name__", "")
        if node in traced and (
            name.split(".")[0] in ASSERTS
            or (node.users and all(u not in traced for u in node.users) and node.op != "output"
                and all(u.op != "output" for u in node.users))
        ):  # fmt: skip
            traced.discard(node)
    return traced


def _args(node: fx.Node) -> list[fx.Node]:
    found: list[fx.Node] = []

    def keep(arg: fx.Node) -> fx.Node:
        found.append(arg)
        return arg

    fx.node.map_arg((node.args, node.kwargs), keep)
    return found


def _users(calls: list[_Call]) -> dict[fx.Node, list[_Call]]:
    """Which calls read each ATen node."""
    used: dict[fx.Node, list[_Call]] = {}
    for call in calls:
        for node in call.nodes:
            for arg in _args(node):
                used.setdefault(arg, []).append(call)
    return used


def _add_call(
    call: _Call,
    used: Mapping[fx.Node, list[_Call]],
    made: dict[fx.Node, tuple[str, str | None]],
    allocate: IdAllocator,
    nodes: list[Node],
    edges: dict[tuple[str, str], list[str]],
    lowering: Lowering,
) -> None:
    inside = set(call.nodes)
    base = call.module if call.module is not None else scoped(call.scope, call.op.split(".")[-1])
    node_id = allocate(base)
    slots = _slots(call, inside, made, lowering)

    def is_ref(value: Any) -> bool:
        return isinstance(value, fx.Node) and value in made

    kind = "module" if call.module is not None else call.kind
    named = bind(kind, call.target, slots, lambda v: not holds_ref(v, is_ref))
    if call.target is None:
        named = slots
    constants: dict[str, Value] = {}
    for slot, value in named:
        for sub, part in nested_parts(value, slot, is_ref):
            if is_ref(part):
                source = _source(part, made, allocate, nodes, edges, lowering)
                edges.setdefault((source, node_id), []).append(sub)
            else:
                constants[sub] = _constant(part, lowering)
    outputs = [n for n in call.nodes if any(c is not call for c in used.get(n, ()))]
    outputs += [
        n for n in call.nodes if any(u.op == "output" for u in n.users) and n not in outputs
    ]
    single = len(outputs) <= 1
    last = outputs[0] if single and outputs else call.nodes[-1]
    spec = lowering.spec(last.meta.get("val")) if single else {
        "$tuple": [lowering.spec(n.meta.get("val")) for n in outputs]}  # fmt: skip
    returned = _leaf_outputs(call, lowering)
    if returned is not None:  # a module returning a tuple: fx unpacks it with `getitem`s
        positions, elements = returned
        outputs, single = [n for n in positions if n in outputs], False
        spec = {"$tuple": [lowering.spec(e) for e in elements]}
    cost = None
    if lowering.costs:
        macs, uncounted = 0, dict[str, int]()
        for n in call.nodes:
            more, names = lowering.costs.get(n, (0, {}))
            macs += more
            for key, count in names.items():
                uncounted[key] = uncounted.get(key, 0) + count
        cost = node_cost((macs, uncounted))
    node = Node(node_id, kind, call.op, call.scope, call.module, constants, spec)  # type: ignore[arg-type]
    nodes.append(dataclasses.replace(node, cost=cost))
    for index, out in enumerate(outputs):
        at = returned[0][out] if returned is not None else _index(out, index)
        made[out] = (node_id, None if single else str(at))
    if not single:  # unpacked where the call is made, in order, as fx records `a, b = f(x)`
        for out in sorted(outputs, key=lambda n: int(made[n][1] or 0)):
            _source(out, made, allocate, nodes, edges, lowering)


def _index(node: fx.Node, fallback: int) -> Any:
    if node.target is operator.getitem and isinstance(node.args[1], int):
        return node.args[1]
    return fallback


def _source(
    node: fx.Node,
    made: Mapping[fx.Node, tuple[str, str | None]],
    allocate: IdAllocator,
    nodes: list[Node],
    edges: dict[tuple[str, str], list[str]],
    lowering: Lowering,
) -> str:
    """The graph node that gives `node`'s value: its call, or a `getitem` of a call with several
    outputs (made at first use, as unpacking in Python reads it)."""
    node_id, index = made[node]
    if index is None:
        return node_id
    key = f"{node_id}#{index}"
    found = next((n.id for n in nodes if n.meta.get("nnviz_item") == key), None)
    if found is not None:
        return found
    owner = next(n for n in nodes if n.id == node_id)
    item = allocate(scoped(owner.scope if owner.kind != "input" else "", "getitem"))
    value = encode(int(index) if index.lstrip("-").isdecimal() else index)
    nodes.append(Node(item, "function", "operator.getitem", owner.scope if owner.kind != "input"
                      else "", None, {"1": value}, lowering.spec(node.meta.get("val")),
                      meta={"nnviz_item": key}))  # fmt: skip
    if lowering.costs:
        nodes[-1] = dataclasses.replace(nodes[-1], cost=node_cost((0, {})))
    edges.setdefault((node_id, item), []).append("0")
    return item


def _slots(
    call: _Call,
    inside: set[fx.Node],
    made: Mapping[fx.Node, tuple[str, str | None]],
    lowering: Lowering,
) -> list[tuple[str, Any]]:
    """The call's arguments: the one ATen node's own when it is the call itself, else the
    traced values it reads from outside, by position."""
    main = [n for n in call.nodes if n.target is not operator.getitem] or call.nodes
    first = main[0]
    aten = getattr(first.target, "__name__", "").split(".")[0]
    name = call.op.split(".")[-1]
    in_place = aten == f"{name}_"  # `F.relu(x, inplace=True)` runs `relu_`
    same = (
        len(main) == 1
        and call.module is None
        and (name == aten or in_place or first.target is operator.getitem)
    )
    if same:
        slots = _by_name(first, call.target)
        if slots is None:
            args = list(first.args)[: _positional_count(call.target)]
            slots = [(str(i), a) for i, a in enumerate(args)] + list(first.kwargs.items())
        if in_place and "inplace" in _parameters(call.target):
            slots.append(("inplace", True))
        return [(k, _mark(v, made, lowering)) for k, v in slots]
    given = _leaf_slots(call, inside, made, lowering)
    if given is not None:
        return given
    outside: list[fx.Node] = []
    for node in call.nodes:
        for arg in _args(node):
            if arg not in inside and arg in made and arg not in outside:
                outside.append(arg)
    if call.module is None:  # parameters a call reads outside a leaf are its constants
        for node in call.nodes:
            for arg in _args(node):
                if arg in lowering.attrs and arg not in outside:
                    outside.append(arg)
    return [(str(i), _mark(a, made, lowering)) for i, a in enumerate(outside)]


def _leaf_outputs(call: _Call, lowering: Lowering) -> tuple[dict[fx.Node, int], list[Any]] | None:
    """For a module call that returned a tuple (`nn.MultiheadAttention`, `nn.LSTM`): the
    trailing `alias` node of each tensor element by its position, and every element's value
    (its alias node, or the constant such as `None`); None for any other call."""
    records = lowering.returns.get(id(call.target), []) if call.module is not None else []
    if call.index >= len(records) or records[call.index] is None:
        return None
    elements = records[call.index]
    assert elements is not None
    tensors = [i for i, e in enumerate(elements) if e is Arg]
    aliases = [n for n in call.nodes if n.target is torch.ops.aten.alias.default]
    if len(aliases) < len(tensors):
        return None
    trailing = aliases[len(aliases) - len(tensors) :]
    positions = dict(zip(trailing, tensors, strict=True))
    values: list[Any] = list(elements)
    for node, at in positions.items():
        values[at] = node
    return positions, values


def _leaf_slots(
    call: _Call,
    inside: set[fx.Node],
    made: Mapping[fx.Node, tuple[str, str | None]],
    lowering: Lowering,
) -> list[tuple[str, Any]] | None:
    """A module call's arguments as its forward pre-hook saw them: each tensor is the value its
    leading `alias` reads; None when the record does not fit the call."""
    if call.module is None:
        return None
    records = lowering.arguments.get(id(call.target), [])
    if call.index >= len(records):
        return None
    aliases = [
        n.args[0]
        for n in call.nodes
        if n.target is torch.ops.aten.alias.default
        and isinstance(n.args[0], fx.Node)
        and n.args[0] not in inside
    ]
    slots = []
    for slot, value in records[call.index]:
        if isinstance(value, Arg):
            if value.index >= len(aliases):
                return None
            value = aliases[value.index]
        slots.append((slot, _mark(value, made, lowering)))
    return slots


def _by_name(node: fx.Node, target: Any) -> list[tuple[str, Any]] | None:
    """The ATen node's arguments by the Python function's parameter names, matched by name
    (ATen's `batch_norm(input, weight, bias, running_mean, ...)` is `F.batch_norm(input,
    running_mean, running_var, weight, ...)` in another order); ATen-only arguments
    (`cudnn_enabled`) left out. None unless `target` is a Python function and every argument
    given finds its parameter."""
    schema = getattr(node.target, "_schema", None)
    params = _parameters(target) if inspect.isfunction(target) else ()
    if schema is None or not params:
        return None
    names = [a.name for a in schema.arguments]
    given = list(zip(names, node.args, strict=False)) + list(node.kwargs.items())
    slots = []
    for name, value in given:
        name = params[0] if name == "self" else name
        if name in params:
            slots.append((name, value))
        elif name not in _ATEN_ONLY:
            return None
    return slots


_ATEN_ONLY = frozenset({"cudnn_enabled", "cudnn_enable"})
"""ATen arguments a Python function fills in itself (from `torch.backends`)."""


def _parameters(target: Any) -> tuple[str, ...]:
    try:
        return tuple(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return ()


def _positional_count(target: Any) -> int | None:
    """How many positional arguments a Python function takes: ATen's own trailing arguments
    (`layer_norm`'s `cudnn_enable`) are not the user's call. None when not known."""
    if not inspect.isfunction(target):
        return None
    params = inspect.signature(target).parameters.values()
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def _mark(value: Any, made: Mapping[fx.Node, Any], lowering: Lowering) -> Any:
    if isinstance(value, fx.Node):
        if value in made:
            return value
        if value in lowering.attrs:
            return _Const(lowering.attrs[value])
        return _Const(encode(value.meta.get("val")))  # made without any input: `torch.eye(4)`
    if isinstance(value, (tuple, list)):
        items = [_mark(v, made, lowering) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    return value


@dataclass(frozen=True)
class _Const:
    value: Value


def _constant(value: Any, lowering: Lowering) -> Value:
    if isinstance(value, _Const):
        return value.value
    if isinstance(value, (tuple, list)) and any(isinstance(v, _Const) for v in value):
        items = [_constant(v, lowering) for v in value]
        return {"$tuple": items} if isinstance(value, tuple) else items
    return encode(value)


def _output_structure(program: Any, out_node: fx.Node) -> Any:
    """The forward's output with each tensor as the ATen node that made it."""
    flat = list(out_node.args[0])  # type: ignore[arg-type]
    count = len(program.graph_signature.user_outputs)
    flat = flat[len(flat) - count :]
    spec = program.call_spec.out_spec
    if spec is None:
        return flat[0] if len(flat) == 1 else tuple(flat)
    return torch.utils._pytree.tree_unflatten(flat, spec)


def _drop_unused_reads(nodes: list[Node], edges: list[Edge]) -> list[Node]:
    """Unused shape reads and getitems go, as in the other tracers; the marker meta goes too."""
    used = {e.source for e in edges}
    kept = []
    for node in nodes:
        if (
            node.kind in ("function", "method")
            and node.id not in used
            and is_shape_query(node.kind, node.op)
        ):
            continue
        kept.append(dataclasses.replace(node, meta={}) if node.meta else node)
    return kept
