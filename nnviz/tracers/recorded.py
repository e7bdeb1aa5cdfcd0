"""Calls recorded by the eager tracer, and how they become a `Graph` (fx's conventions).

A recorded call keeps its arguments with traced values replaced by markers: `Ref` (the output
of an earlier call) and `Attr` (a module's parameter, buffer or tensor attribute). `to_graph`
then does what `nnviz.tracers.fx` does with an fx graph: drop asserts, the bool comparisons that
fed them and what only fed those, and unused shape reads; hand out structural ids in call order;
turn references into edges with their argument slots and everything else into constant args.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from torch import nn

from nnviz.graph import Edge, Graph, Node, Source
from nnviz.tracers.binding import bind
from nnviz.tracers.conventions import (
    IdAllocator,
    encode,
    holds_ref,
    is_shape_query,
    module_tree,
    nested_parts,
    nested_refs,
    scoped,
)
from nnviz.values import Value


@dataclasses.dataclass(frozen=True)
class Ref:
    """The output of recorded call number `index`."""

    index: int


@dataclasses.dataclass(frozen=True)
class Attr:
    """A module's parameter, buffer or tensor attribute (or a stored tensor constant)."""

    name: str
    proxied: bool
    """Whether fx would have a proxy for it (parameters), which makes a call recorded."""


@dataclasses.dataclass
class RecordedCall:
    kind: str
    op: str
    scope: str = ""
    module: str | None = None
    slots: list[tuple[str, Any]] = dataclasses.field(default_factory=list)
    spec: Value = None
    dropped: bool = False
    """Asserts and bool comparisons (which in a fx-traceable model only feed asserts)."""
    target: Any = None
    """The function called, for a function call (its signature names the arguments)."""
    cost: dict[str, Any] | None = None
    """What the call cost (`nnviz.tracers.cost.node_cost`), when counted."""
    source: Source | None = None
    """Where the call is written (`nnviz.tracers.lines`)."""


def is_traced(value: Any) -> bool:
    if isinstance(value, Ref):
        return True
    if isinstance(value, Attr):
        return value.proxied
    if isinstance(value, (tuple, list)):
        return any(is_traced(v) for v in value)
    if isinstance(value, dict):
        return any(is_traced(v) for v in value.values())
    if isinstance(value, slice):
        return any(is_traced(v) for v in (value.start, value.stop, value.step))
    return False


def to_graph(calls: list[RecordedCall], model: nn.Module, meta: dict[str, Value]) -> Graph:
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
    sources: dict[str, Source] = {}
    for index, call in enumerate(calls):
        if index in dropped:
            continue
        node_id = ids[index] = allocate(_base_id(call))
        if call.source is not None:
            sources[node_id] = call.source
        constants: dict[str, Value] = {}
        for slot, value in _bound_slots(call, model):
            for sub, part in nested_parts(value, slot, _is_ref):
                if isinstance(part, Ref):
                    if part.index in ids:
                        edges.setdefault((ids[part.index], node_id), []).append(sub)
                elif sub == slot or call.kind != "output":
                    constants[sub] = _constant(part)
        nodes.append(
            Node(
                id=node_id,
                kind=call.kind,  # type: ignore[arg-type]
                op=call.op,
                scope=call.scope,
                module=call.module,
                args=constants,
                spec=call.spec,
                cost=call.cost,
            )
        )
    return Graph(
        nodes,
        [Edge(s, t, tuple(slots)) for (s, t), slots in edges.items()],
        module_tree(model),
        meta,
        sources=sources,
    )


def _is_shape_query(call: RecordedCall) -> bool:
    """An unused side-effect-free read, which the fx tracer drops too (`nnviz.tracers.fx`)."""
    return is_shape_query(call.kind, call.op)


def _base_id(call: RecordedCall) -> str:
    if call.kind == "input":
        return f"input:{call.op}"
    if call.kind == "output":
        return "output"
    if call.kind == "module":
        assert call.module is not None
        return call.module
    return scoped(call.scope, call.op.rsplit(".", 1)[-1])


def _refs(value: Any, slot: str) -> Iterator[tuple[str, Ref]]:
    return nested_refs(value, slot, Ref)


def _is_ref(value: Any) -> bool:
    return isinstance(value, Ref)


def _bound_slots(call: RecordedCall, model: nn.Module) -> list[tuple[str, Any]]:
    """The call's arguments by the callee's parameter names (`nnviz.tracers.binding`)."""
    if call.kind == "module" and call.module is not None:
        target: Any = model.get_submodule(call.module)
    elif call.kind == "method":
        target = call.op
    elif call.kind == "function" and call.target is not None:
        target = call.target
    else:
        return call.slots
    return bind(call.kind, target, call.slots, _is_constant)


def _is_constant(value: Any) -> bool:
    return not holds_ref(value, lambda v: isinstance(v, (Ref, Attr)))


def _constant(value: Any) -> Value:
    """An argument without references as a value; attributes inside become `$attr`."""
    if isinstance(value, Attr):
        return {"$attr": value.name}
    if isinstance(value, (tuple, list)) and _has_attr(value):
        items = [_constant(v) for v in value]
        return {"$tuple": items} if isinstance(value, tuple) else items
    if isinstance(value, dict) and _has_attr(value):
        return {"$dict": [[encode(k), _constant(v)] for k, v in value.items()]}
    return encode(value)


def _has_attr(value: Any) -> bool:
    if isinstance(value, Attr):
        return True
    if isinstance(value, (tuple, list)):
        return any(_has_attr(v) for v in value)
    if isinstance(value, dict):
        return any(_has_attr(v) for v in value.values())
    return False
