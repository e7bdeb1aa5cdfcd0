"""How a `torch.export` program becomes a `Graph` with the fx tracer's conventions.

Each ATen node is folded back into what the user called (`nnviz.tracers.atencalls`): one
`module` node per call of a leaf module, one node per torch call (`F.normalize`'s four ATen ops
are one `normalize` node), as fx records them.

A call's inputs are the traced values it reads from outside itself, bound by the callee's
parameters as `nnviz.tracers.binding` binds them; its constants are the ATen node's when the
call is one ATen node of the same name (`torch.flatten(x, 1)` is `aten.flatten(x, 1)`), else
none. A call with several outputs used elsewhere gives one `operator.getitem` per output, as fx
records unpacking. A module's parameters and buffers read outside a leaf are `$attr` constants;
a tensor made without any input (`torch.eye(4)`) is a constant, recorded by what it is.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from nnviz.graph import Edge, Graph, Node, Source
from nnviz.tracers.atencalls import Call, by_name, calls_of, parameters, positional_count
from nnviz.tracers.binding import bind
from nnviz.tracers.conventions import (
    IdAllocator,
    encode,
    holds_ref,
    input_default,
    is_shape_query,
    module_tree,
    nested_parts,
    scoped,
)
from nnviz.tracers.cost import node_cost
from nnviz.tracers.lines import from_stack_trace
from nnviz.values import Value

ASSERTS = frozenset(
    {"_assert_scalar", "_assert_tensor_metadata", "sym_constrain_range_for_size", "_assert_async"}
)


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
    spec. Each call's source line (`Graph.sources`) is its first ATen node's `stack_trace`'s."""
    traced = _traced(program, set(inputs), lowering)
    calls = calls_of(program, model, traced)
    building = _Building(lowering)
    given = meta["inputs"]
    assert isinstance(given, dict)
    for name, spec in given.items():
        defaults = {k: encode(v) for k, v in input_default(model, name)}
        building.append(Node(building.allocate(f"input:{name}"), "input", name, args=defaults,
                             spec=spec))  # fmt: skip
    for placeholder, (name, path) in inputs.items():
        building.made[placeholder] = (f"input:{name}", ".".join(str(p) for p in path) or None)
    used = _users(calls)
    for call in calls:
        building.add_call(call, used)
    out_node = next(n for n in program.graph.nodes if n.op == "output")
    structure = _output_structure(program, out_node)
    edges_out: list[tuple[str, str]] = []
    for sub, part in nested_parts(structure, "0", lambda v: isinstance(v, fx.Node)):
        if isinstance(part, fx.Node) and part in building.made:
            edges_out.append((building.value_of(part), sub))
    building.append(Node("output", "output", "output", spec=lowering.spec(structure)))
    for source, sub in edges_out:
        building.edges.setdefault((source, "output"), []).append(sub)
    edges = [Edge(s, t, tuple(slots)) for (s, t), slots in building.edges.items()]
    nodes = _drop_unused_reads(building.nodes, edges)
    return Graph(nodes, edges, module_tree(model), meta, sources=building.sources)


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


def _users(calls: list[Call]) -> dict[fx.Node, list[Call]]:
    """Which calls read each ATen node."""
    used: dict[fx.Node, list[Call]] = {}
    for call in calls:
        for node in call.nodes:
            for arg in _args(node):
                used.setdefault(arg, []).append(call)
    return used


class _Building:
    """The graph under construction: its nodes and edges, and which graph node gives each ATen
    node's value."""

    def __init__(self, lowering: Lowering) -> None:
        self.lowering = lowering
        self.allocate = IdAllocator()
        self.made: dict[fx.Node, tuple[str, str | None]] = {}
        """ATen node -> (graph node id, its index when the call has several outputs)."""
        self.nodes: list[Node] = []
        self.by_id: dict[str, Node] = {}
        self.edges: dict[tuple[str, str], list[str]] = {}
        self.items: dict[tuple[str, str], str] = {}
        """(call's node id, index) -> the `getitem` node unpacking it."""
        self.sources: dict[str, Source] = {}

    def append(self, node: Node) -> None:
        self.nodes.append(node)
        self.by_id[node.id] = node

    def is_ref(self, value: Any) -> bool:
        return isinstance(value, fx.Node) and value in self.made

    def add_call(self, call: Call, used: Mapping[fx.Node, list[Call]]) -> None:
        """One call's node, the edges into it, and its outputs (unpacked when several)."""
        base = (
            call.module if call.module is not None else scoped(call.scope, call.op.split(".")[-1])
        )
        node_id = self.allocate(base)
        slots = _slots(call, set(call.nodes), self.made, self.lowering)
        kind = "module" if call.module is not None else call.kind
        named = bind(kind, call.target, slots, lambda v: not holds_ref(v, self.is_ref))
        if call.target is None:
            named = slots
        constants: dict[str, Value] = {}
        for slot, value in named:
            for sub, part in nested_parts(value, slot, self.is_ref):
                if self.is_ref(part):
                    self.edges.setdefault((self.value_of(part), node_id), []).append(sub)
                else:
                    constants[sub] = _constant(part)
        outputs, spec, positions = self._outputs(call, used)
        node = Node(node_id, kind, call.op, call.scope, call.module, constants, spec)  # type: ignore[arg-type]
        self.append(dataclasses.replace(node, cost=self._cost(call)))
        where = next((w for n in call.nodes if (w := from_stack_trace(n.meta.get("stack_trace")))),
                     None)  # fmt: skip
        if where is not None:
            self.sources[node_id] = where
        single = positions is None and len(outputs) <= 1
        for index, out in enumerate(outputs):
            at = positions[out] if positions is not None else _index(out, index)
            self.made[out] = (node_id, None if single else str(at))
        if not single:  # unpacked where the call is made, in order, as fx records `a, b = f(x)`
            for out in sorted(outputs, key=lambda n: int(self.made[n][1] or 0)):
                self.value_of(out)

    def _outputs(
        self, call: Call, used: Mapping[fx.Node, list[Call]]
    ) -> tuple[list[fx.Node], Value, dict[fx.Node, int] | None]:
        """The ATen nodes whose values leave the call, its spec, and for a module returning a
        tuple the position of each (fx unpacks it with `getitem`s), else None."""
        spec_of = self.lowering.spec
        outputs = [n for n in call.nodes if any(c is not call for c in used.get(n, ()))]
        outputs += [
            n for n in call.nodes if any(u.op == "output" for u in n.users) and n not in outputs
        ]
        returned = _leaf_outputs(call, self.lowering)
        if returned is not None:
            positions, elements = returned
            kept = [n for n in positions if n in outputs]
            return kept, {"$tuple": [spec_of(e) for e in elements]}, positions
        if len(outputs) <= 1:
            parts = _parts(call, outputs)
            if parts is not None:  # one part used of several: still a tuple, unpacked as by fx
                whole, positions = parts
                return outputs, {"$tuple": [spec_of(v) for v in whole]}, positions
            last = outputs[0] if outputs else call.nodes[-1]
            return outputs, spec_of(last.meta.get("val")), None
        sources = {n.args[0] for n in outputs if n.target is operator.getitem}
        whole = next(iter(sources)).meta.get("val") if len(sources) == 1 else None  # type: ignore[union-attr]
        if isinstance(whole, (list, tuple)) and all(n.target is operator.getitem for n in outputs):
            return outputs, {"$tuple": [spec_of(v) for v in whole]}, None  # every part, as fx
        return outputs, {"$tuple": [spec_of(n.meta.get("val")) for n in outputs]}, None

    def _cost(self, call: Call) -> dict[str, Any] | None:
        if not self.lowering.costs:
            return None
        macs, uncounted = 0, dict[str, int]()
        for n in call.nodes:
            more, names = self.lowering.costs.get(n, (0, {}))
            macs += more
            for key, count in names.items():
                uncounted[key] = uncounted.get(key, 0) + count
        return node_cost((macs, uncounted))

    def value_of(self, node: fx.Node) -> str:
        """The graph node that gives `node`'s value: its call, or a `getitem` of a call with
        several outputs (made at first use, as unpacking in Python reads it)."""
        node_id, index = self.made[node]
        if index is None:
            return node_id
        found = self.items.get((node_id, index))
        if found is not None:
            return found
        owner = self.by_id[node_id]
        scope = owner.scope if owner.kind != "input" else ""
        item = self.items[node_id, index] = self.allocate(scoped(scope, "getitem"))
        value = encode(int(index) if index.lstrip("-").isdecimal() else index)
        spec = self.lowering.spec(node.meta.get("val"))
        cost = node_cost((0, {})) if self.lowering.costs else None
        self.append(Node(item, "function", "operator.getitem", scope, None, {"1": value}, spec,
                         cost=cost))  # fmt: skip
        if node_id in self.sources:  # unpacked on the line of the call
            self.sources[item] = self.sources[node_id]
        self.edges.setdefault((node_id, item), []).append("0")
        return item


def _parts(call: Call, outputs: list[fx.Node]) -> tuple[Any, dict[fx.Node, int]] | None:
    """For a torch call that returns several values as its one ATen op does (`x.split(2, 1)`,
    `torch.topk`, `torch.max(x, 1)`: the same name) of which at most one is used: every value
    and the used one's position. None for any other call: a Python function returning one
    tensor may run an ATen op returning several (`F.max_pool2d` runs `max_pool2d_with_indices`)."""
    main = [n for n in call.nodes if n.target is not operator.getitem]
    if call.module is not None or len(main) != 1:
        return None
    whole = main[0].meta.get("val")
    aten = getattr(main[0].target, "__name__", "").split(".")[0]
    if _SAME_CALL.get(aten, aten) != call.op.split(".")[-1] or not isinstance(whole, (list, tuple)):
        return None
    positions: dict[fx.Node, int] = {}
    for out in outputs:
        index = out.args[1] if out.target is operator.getitem and out.args[0] is main[0] else None
        if not isinstance(index, int):
            return None
        positions[out] = index
    return whole, positions


_SAME_CALL = {"split_with_sizes": "split"}
"""ATen ops that are a torch call of another name (`torch.split(x, [1, 3])`)."""


def _index(node: fx.Node, fallback: int) -> Any:
    if node.target is operator.getitem and isinstance(node.args[1], int):
        return node.args[1]
    return fallback


def _slots(
    call: Call,
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
        and (_SAME_CALL.get(aten, aten) == name or in_place or first.target is operator.getitem)
    )
    if same:
        slots = by_name(first, call.target)
        if slots is None:
            args = list(first.args)[: positional_count(call.target)]
            slots = [(str(i), a) for i, a in enumerate(args)] + list(first.kwargs.items())
        if in_place and "inplace" in parameters(call.target):
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


def _leaf_outputs(call: Call, lowering: Lowering) -> tuple[dict[fx.Node, int], list[Any]] | None:
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
    call: Call,
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


def _constant(value: Any) -> Value:
    if isinstance(value, _Const):
        return value.value
    if isinstance(value, (tuple, list)) and any(isinstance(v, _Const) for v in value):
        items = [_constant(v) for v in value]
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
    """Unused shape reads and getitems go, as in the other tracers."""
    used = {e.source for e in edges}
    return [
        node
        for node in nodes
        if node.id in used
        or node.kind not in ("function", "method")
        or not is_shape_query(node.kind, node.op)
    ]
