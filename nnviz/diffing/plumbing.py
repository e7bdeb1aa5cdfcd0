"""Scalar plumbing: the Python numbers code computes from shapes, which are not architecture.

`x.shape[2]`, `x.size(0)`, `H + pad_h`, `W % 2` are how code computes a tensor op's arguments,
not what the network is: when every tensor op, its constant arguments and every tensor shape are
unchanged, a difference in the scalar calls is not drift. `scalar_nodes(graph)` (from
`nnviz.bookkeeping`, which drawings fold by) finds the calls whose output is such a value: by its
recorded spec when the graph was traced with data, else by what the call is (a shape read, or
arithmetic and indexing on scalars only). `slot_values`
says, for a call, what each argument slot holds: a tensor from a named producer, a computed
scalar (with its value when the trace knows it), or a constant; tensor ops compare scalar slots
by value, never by which scalar call produced them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

from nnviz.bookkeeping import scalar_nodes
from nnviz.diffing.model import Change
from nnviz.diffing.records import ABSENT
from nnviz.diffing.union import UnionEntry
from nnviz.graph import Graph, Node
from nnviz.values import Value

SlotKind = Literal["tensor", "scalar", "optional", "constant"]


class Plumbing:
    """Marks scalar plumbing (see `nnviz.diffing.plumbing`): a scalar call's differences are
    information; a tensor op compares the scalar slots by value."""

    def __init__(
        self,
        old: Graph,
        new: Graph,
        old_inputs: dict[str, dict[str, str]],
        new_inputs: dict[str, dict[str, str]],
        scalars: tuple[frozenset[str], ...] = (),
    ) -> None:
        """`scalars`: both graphs' `scalar_nodes` when already known (`Matching.scalars`)."""
        self.old, self.new = old, new
        self.old_inputs, self.new_inputs = old_inputs, new_inputs
        self.old_scalars, self.new_scalars = scalars or (scalar_nodes(old), scalar_nodes(new))

    def classify(self, e: UnionEntry) -> None:
        """Mark `e` (an entry of the union graph being built) as plumbing or its slots."""
        a, b = e.old_node, e.new_node
        scalar_a = a is not None and a.id in self.old_scalars
        scalar_b = b is not None and b.id in self.new_scalars
        if (a is None) != (b is None) and is_optional_input(a or b):  # type: ignore[arg-type]
            e.info = "input"
        elif (a is None or scalar_a) and (b is None or scalar_b) and (scalar_a or scalar_b):
            e.info = "plumbing"
            for key, change in e.changes.items():
                e.changes[key] = dataclasses.replace(change, info="plumbing")
        elif a is not None and b is not None and not scalar_a and not scalar_b and e.changes:
            classify_slots(
                e.changes,
                slot_values(a, self.old_inputs.get(a.id, {}), self.old, self.old_scalars),
                slot_values(b, self.new_inputs.get(b.id, {}), self.new, self.new_scalars),
            )
            if "spec" not in e.changes and a.op == b.op and a.spec is not None:
                inferred_sizes(e.changes, a.op, a.spec)
            if a.op == b.op:
                ranks = (
                    input_rank(a, self.old_inputs.get(a.id, {}), self.old),
                    input_rank(b, self.new_inputs.get(b.id, {}), self.new),
                )
                counted_dims(e.changes, a.op, ranks)
                if a.op == "operator.getitem":
                    counts = (
                        item_count(self.old_inputs.get(a.id, {}), self.old),
                        item_count(self.new_inputs.get(b.id, {}), self.new),
                    )
                    counted_index(e.changes, counts)


def slot_values(
    node: Node, inputs: Mapping[str, str], graph: Graph, scalars: frozenset[str]
) -> dict[str, tuple[SlotKind, Value]]:
    """What each argument slot of `node` holds: `("tensor", producer id)`, `("scalar", value or
    None when the trace does not know it)`, `("optional", default)` (an optional model input,
    compared by its default) or `("constant", value)`."""
    out: dict[str, tuple[SlotKind, Value]] = {k: ("constant", v) for k, v in node.args.items()}
    for slot, source in inputs.items():
        producer = graph.node(source)
        if source in scalars:
            out[slot] = ("scalar", producer.spec if graph.traced_with_data else None)
        elif is_optional_input(producer):
            out[slot] = ("optional", producer.args["default"])
        else:
            out[slot] = ("tensor", source)
    return out


def is_optional_input(node: Node) -> bool:
    """An input whose forward argument has a default: leaving it out changes no tensor op."""
    return node.kind == "input" and "default" in node.args


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
    """Drop or mark, in a tensor op's `args.*`/`inputs.*` changes, the slots that hold no tensor:
    equal values are no change, an unknown computed value is `plumbing`, an optional input
    only one side passes is `input`; different known values stay one `args.<slot>` change."""
    _unpack(changes, old, new, whole_is_old=True)
    _unpack(changes, new, old, whole_is_old=False)
    for slot in sorted({*old, *new}):
        a, b = old.get(slot), new.get(slot)
        keys = [k for k in (f"args.{slot}", f"inputs.{slot}") if k in changes]
        if not keys or (a is not None and a[0] == "tensor") or (b is not None and b[0] == "tensor"):
            continue
        if a is None or b is None:
            if (a or b or ("", None))[0] == "optional":
                _mark(changes, keys, "input")
            continue
        if a[0] == b[0] and a[0] in ("constant", "optional"):
            continue
        same = same_scalar(a, b)
        if same is True:
            for key in keys:
                del changes[key]
        elif same is None:
            _mark(changes, keys, "plumbing")
        else:
            for key in keys:
                del changes[key]
            changes[f"args.{slot}"] = Change(a[1], b[1])


def _unpack(
    changes: dict[str, Change],
    whole: dict[str, tuple[SlotKind, Value]],
    items: dict[str, tuple[SlotKind, Value]],
    whole_is_old: bool,
) -> None:
    """A sequence given whole on one side (`x.view(sizes)`: a traced tuple or a constant) and
    item by item on the other (`x.view(b, s, -1, d)`: `size.0`, `size.1`, ...) is the same
    argument: the whole one is split into items (a traced tuple's by its recorded value), so
    the items compare one by one. `whole` is the side given whole, changed in place."""
    for slot in [s for s in whole if s not in items]:
        kind, value = whole[slot]
        indices = {k[len(slot) + 1 :] for k in items if k.startswith(slot + ".")}
        if (
            kind not in ("scalar", "constant")
            or not indices
            or not all(map(str.isdecimal, indices))
        ):
            continue
        sequence = value.get("$tuple") if isinstance(value, dict) else value
        if kind == "constant" and not isinstance(sequence, list):
            continue
        known = sequence if isinstance(sequence, list) else None
        changes.pop(f"args.{slot}", None)
        changes.pop(f"inputs.{slot}", None)
        del whole[slot]
        count = len(known) if known is not None else 1 + max(int(i) for i in indices)
        for i in range(count):
            item = f"{slot}.{i}"
            whole[item] = (kind, known[i] if known is not None else None)
            other = items.get(item)
            if other != whole[item]:
                mine, theirs = whole[item][1], ABSENT if other is None else other[1]
                pair = (mine, theirs) if whole_is_old else (theirs, mine)
                changes.setdefault(f"args.{item}", Change(*pair))


def _mark(changes: dict[str, Change], keys: list[str], info: str) -> None:
    for key in keys:
        changes[key] = dataclasses.replace(changes[key], info=info)


_SHAPED = {"view": "size", "reshape": "shape"}
"""The ops whose sizes may be left to infer (`-1`), and the parameter naming the sizes."""


def inferred_sizes(changes: dict[str, Change], op: str, spec: Value) -> None:
    """`x.view(b, -1, h, d)` is `x.view(b, s, -1, d)` when both give the same output: with the
    output's shape known (and equal on both sides), a `-1` size argument is the size it infers.
    Sizes are `size.<dim>` (`shape.<dim>`) items, or one constant tuple."""
    name = _SHAPED.get(op)
    if name is None or not (isinstance(spec, dict) and "$tensor" in spec):
        return
    shape = spec["$tensor"].get("shape", [])
    whole = changes.get(f"args.{name}")
    if whole is not None and _same_sizes(whole.old, whole.new, shape):
        del changes[f"args.{name}"]
    for key in [k for k in changes if k.startswith(f"args.{name}.")]:
        dim, change = key.removeprefix(f"args.{name}."), changes[key]
        if dim.isdecimal() and _same_size(change.old, change.new, shape, int(dim)):
            del changes[key]


def _same_size(old: Value, new: Value, shape: list[int], dim: int) -> bool:
    known = isinstance(old, int) and isinstance(new, int) and 0 <= dim < len(shape)
    return known and {old, new} <= {-1, shape[dim]}


def _same_sizes(old: Value, new: Value, shape: list[int]) -> bool:
    sizes = [v.get("$tuple") if isinstance(v, dict) else v for v in (old, new)]
    if not all(isinstance(s, list) and len(s) == len(shape) for s in sizes):
        return False
    return all(_same_size(a, b, shape, d) for d, (a, b) in enumerate(zip(*sizes, strict=True)))


_DIM_OPS = frozenset(
    {
        *("softmax", "log_softmax", "softmin", "mean", "sum", "prod", "amax", "amin"),
        *("argmax", "argmin", "std", "var", "logsumexp", "cumsum", "cumprod", "flatten"),
        *("transpose", "swapaxes", "cat", "concat", "concatenate", "chunk", "split", "unbind"),
        *("squeeze", "flip", "roll", "narrow", "select", "index_select", "gather", "movedim"),
    }
)
"""Ops whose dim arguments index their first tensor's dimensions (not the output's, as
`unsqueeze` and `stack` do): `dim=-1` and `dim=rank-1` are the same argument."""
_DIM_PARAMS = frozenset({"dim", "dims", "start_dim", "end_dim", "dim0", "dim1", "axis"})
_FIRST = ("input", "self", "tensors.0", "0")


def input_rank(node: Node, inputs: Mapping[str, str], graph: Graph) -> int | None:
    """The rank of the call's first tensor argument, when the trace recorded its shape."""
    for slot in _FIRST:
        if slot in inputs:
            spec = graph.node(inputs[slot]).spec
            if isinstance(spec, dict) and isinstance(spec.get("$tensor"), dict):
                return len(spec["$tensor"].get("shape", []))
            return None
    return None


def counted_dims(changes: dict[str, Change], op: str, ranks: tuple[int | None, int | None]) -> None:
    """`x.mean(-1)` is `x.mean(3)` and `x.mean((3,))` on a 4-D input: dim arguments of the ops
    above that differ only in counting from the end, or in one dim given in a sequence, are no
    change, when both inputs have the same known rank."""
    name = op.rsplit(".", 1)[-1]
    rank = ranks[0]
    if name not in _DIM_OPS or rank is None or ranks[1] != rank:
        return
    for key in [k for k in changes if k.startswith("args.") and k[5:] in _DIM_PARAMS]:
        old, new = _counted(changes[key].old, rank), _counted(changes[key].new, rank)
        if old is not None and old == new:
            del changes[key]


def item_count(inputs: Mapping[str, str], graph: Graph) -> int | None:
    """How many items the tuple or list a `getitem` indexes holds, when the trace recorded it."""
    source = inputs.get("0")
    spec = graph.node(source).spec if source is not None else None
    items = spec.get("$tuple", spec.get("$list")) if isinstance(spec, dict) else None
    return len(items) if isinstance(items, list) else None


def counted_index(changes: dict[str, Change], counts: tuple[int | None, int | None]) -> None:
    """`parts[-1]` is `parts[3]` of 4 parts (ATen records the latter): an index that differs
    only in counting from the end is no change, when both sides index as many items."""
    count, change = counts[0], changes.get("args.1")
    if change is None or count is None or counts[1] != count:
        return
    old, new = _counted(change.old, count), _counted(change.new, count)
    if isinstance(old, int) and old == new:
        del changes["args.1"]


def _counted(value: Value, rank: int) -> Value:
    """A dim (or a sequence of dims) counted from the start; None if it is not one. One dim in
    a sequence is that dim (`x.mean((1,))` is `x.mean(1)`; ATen records the former)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value % rank if rank > 0 and -rank <= value < rank else None
    items = value.get("$tuple") if isinstance(value, dict) else value
    if isinstance(items, list) and items:
        counted = [_counted(v, rank) for v in items]
        return None if None in counted else counted[0] if len(counted) == 1 else counted
    return None
