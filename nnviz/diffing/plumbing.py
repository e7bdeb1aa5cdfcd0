"""Scalar plumbing: the Python numbers code computes from shapes, which are not architecture.

`x.shape[2]`, `x.size(0)`, `H + pad_h`, `W % 2` are how code computes a tensor op's arguments,
not what the network is: when every tensor op, its constant arguments and every tensor shape are
unchanged, a difference in the scalar calls is not drift. `scalar_nodes(graph)` finds the calls
whose output is such a value: by its recorded spec when the graph was traced with data, else by
what the call is (a shape read, or arithmetic and indexing on scalars only). `slot_values`
says, for a call, what each argument slot holds: a tensor from a named producer, a computed
scalar (with its value when the trace knows it), or a constant; tensor ops compare scalar slots
by value, never by which scalar call produced them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

from nnviz.diffing.model import Change
from nnviz.graph import Graph, Node
from nnviz.values import Value

_SHAPE_METHODS = frozenset(
    {"size", "dim", "ndimension", "numel", "nelement", "__len__", "stride", "get_device"}
)
_SHAPE_ATTRS = frozenset({"shape", "dtype", "device", "ndim", "is_cuda", "layout", "is_sparse"})
_SCALAR_FUNCTIONS = frozenset(
    {
        "len",
        "int",
        "float",
        "bool",
        "max",
        "min",
        "abs",
        "round",
        "divmod",
        "tuple",
        "list",
        "torch.sym_int",
        "torch.sym_float",
        "torch.sym_max",
        "torch.sym_min",
    }
)
_SCALAR_METHODS = frozenset({"__add__", "__sub__", "__mul__", "__floordiv__", "__mod__"})
SlotKind = Literal["tensor", "scalar", "constant"]


def _is_tensorless(spec: Value) -> bool:
    """Whether a recorded spec holds no tensor (an int, a size, a tuple of ints, a dtype)."""
    if isinstance(spec, list):
        return all(_is_tensorless(v) for v in spec)
    if isinstance(spec, dict):
        if len(spec) == 1 and "$tensor" in spec:
            return False
        if len(spec) == 1 and "$tuple" in spec:
            return all(_is_tensorless(v) for v in spec["$tuple"])
        if len(spec) == 1 and "$dict" in spec:
            return all(_is_tensorless(v) for _, v in spec["$dict"])
    return True


def _computes_scalars(node: Node) -> bool:
    """Ops that, on scalar inputs only, give a scalar: arithmetic, indexing, `math`, builtins."""
    if node.kind == "function":
        return (
            node.op.startswith(("operator.", "math.", "_operator."))
            or node.op in _SCALAR_FUNCTIONS
            or node.op == "getattr"
        )
    return node.kind == "method" and node.op in _SCALAR_METHODS


def _reads_shape(node: Node) -> bool:
    if node.kind == "method":
        return node.op in _SHAPE_METHODS
    return node.op == "len" or (node.op == "getattr" and node.args.get("1") in _SHAPE_ATTRS)


def scalar_nodes(graph: Graph) -> frozenset[str]:
    """Ids of the function and method calls whose output is scalar plumbing (no tensor)."""
    out: set[str] = set()
    pred = graph.nx.pred
    with_data = graph.traced_with_data
    for node in graph.nodes:  # trace order: producers come first
        if node.kind not in ("function", "method"):
            continue
        if with_data and node.spec is not None:
            if _is_tensorless(node.spec):
                out.add(node.id)
            continue
        if _reads_shape(node) or (
            _computes_scalars(node) and pred[node.id] and all(p in out for p in pred[node.id])
        ):
            out.add(node.id)
    return frozenset(out)


def slot_values(
    node: Node, inputs: Mapping[str, str], graph: Graph, scalars: frozenset[str]
) -> dict[str, tuple[SlotKind, Value]]:
    """What each argument slot of `node` holds: `("tensor", producer id)`, `("scalar", value or
    None when the trace does not know it)` or `("constant", value)`."""
    out: dict[str, tuple[SlotKind, Value]] = {k: ("constant", v) for k, v in node.args.items()}
    for slot, source in inputs.items():
        if source in scalars:
            spec = graph.node(source).spec
            out[slot] = ("scalar", spec if graph.traced_with_data else None)
        else:
            out[slot] = ("tensor", source)
    return out


def same_scalar(a: tuple[SlotKind, Value], b: tuple[SlotKind, Value]) -> bool | None:
    """Whether two non-tensor slot values are the same argument: True or False where values are
    known on both sides, None where a computed value is unknown (plumbing, not drift)."""
    if a[0] == "scalar" and b[0] == "scalar" and (a[1] is None or b[1] is None):
        return True  # both computed: how is plumbing; the values follow the shapes
    if (a[1] is None and a[0] == "scalar") or (b[1] is None and b[0] == "scalar"):
        return None
    return bool(a[1] == b[1])


def classify_slots(
    changes: dict[str, Change],
    old: dict[str, tuple[SlotKind, Value]],
    new: dict[str, tuple[SlotKind, Value]],
) -> None:
    """Drop or mark, in a tensor op's `args.*`/`inputs.*` changes, the slots that hold scalars:
    equal values are no change, an unknown computed value is plumbing, different known values
    stay one `args.<slot>` change (drift)."""
    for slot in {*old, *new}:
        a, b = old.get(slot), new.get(slot)
        if a is None or b is None or "tensor" in (a[0], b[0]) or a[0] == b[0] == "constant":
            continue
        keys = [k for k in (f"args.{slot}", f"inputs.{slot}") if k in changes]
        same = same_scalar(a, b)
        if same is True:
            for key in keys:
                del changes[key]
        elif same is None:
            for key in keys:
                changes[key] = dataclasses.replace(changes[key], info="plumbing")
        else:
            for key in keys:
                del changes[key]
            changes[f"args.{slot}"] = Change(a[1], b[1])
