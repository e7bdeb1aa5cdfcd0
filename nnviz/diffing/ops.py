"""One op under its several spellings, and the ops whose operands commute.

torch offers most ops as a function, a Tensor method, an operator and an alias (`F.relu(x)`,
`torch.relu(x)`, `x.relu()`; `x + y`, `torch.add(x, y)`, `x.add(y)`, `x.add_(y)`; `torch.cat`,
`torch.concat`). The diff pairs and compares calls by the op they compute: a call spelled another
way is the same call, and the spelling change alone is information (`spelling`), not drift.
Only torch's own namespaces, Python's `operator` and Tensor methods are read so: a function of
the model's own code named `relu` is its own op.

Two tensors added or multiplied in the other order (`y = a(x); y += x` against `x + a(x)`) are
the same call: the operands of a commutative op compare as a set.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from nnviz.graph import Node

_NAMESPACES = ("torch.", "operator.", "math.")
_IN_PLACE_OPERATORS = frozenset(
    {"iadd", "isub", "imul", "itruediv", "ifloordiv", "imod", "imatmul", "ipow", "iand", "ior"}
)
_ALIASES = {
    "concat": "cat",
    "concatenate": "cat",
    "swapaxes": "transpose",
    "swapdims": "transpose",
    "multiply": "mul",
    "subtract": "sub",
    "divide": "div",
    "true_divide": "div",
    "truediv": "div",
    "floor_divide": "floordiv",
    "absolute": "abs",
    "negative": "neg",
    "clip": "clamp",
    "greater": "gt",
    "greater_equal": "ge",
    "less": "lt",
    "less_equal": "le",
    "not_equal": "ne",
    "and_": "bitwise_and",
    "or_": "bitwise_or",
    "xor": "bitwise_xor",
}
_COMMUTATIVE = frozenset(
    {"add", "mul", "maximum", "minimum", "eq", "ne", "bitwise_and", "bitwise_or", "bitwise_xor"}
    | {"logical_and", "logical_or", "logical_xor"}
)
_FIRST = frozenset({"0", "input", "self", "a"})
_SECOND = frozenset({"1", "other", "b"})
"""How the spellings name an op's first and second operand: by position (`operator.add`), as
torch's functions (`input`, `other`) and as Tensor methods (`self`)."""


def op_of(node: Node) -> str:
    """What a call computes, whatever its spelling (`relu` for `F.relu`, `torch.relu` and
    `x.relu_()`); a module call is its module, a function of other code its qualified name."""
    if node.kind == "module":
        return f"module:{node.module}"
    if node.kind == "method":
        name = node.op
        if name.endswith("_") and not name.endswith("__"):
            name = name[:-1]  # the in-place variant computes the same tensor
    elif node.kind == "function" and node.op.startswith(_NAMESPACES):
        name = node.op.rsplit(".", 1)[-1]
        if node.op.startswith("operator.") and name in _IN_PLACE_OPERATORS:
            name = name[1:]
    else:
        return f"{node.kind}:{node.op}"
    return "call:" + _ALIASES.get(name, name)


def same_op(a: Node, b: Node) -> bool:
    if a.op == b.op and a.kind == b.kind and a.module == b.module:
        return True  # what `op_of` reads is equal (most pairs): no spelling to compare
    return op_of(a) == op_of(b)


def same_inputs(
    changes: MutableMapping[str, Any],
    a: Node,
    b: Node,
    a_inputs: Mapping[str, str],
    b_inputs: Mapping[str, str],
) -> None:
    """Drop the input and argument changes of two calls of one op that only differ by how the
    spelling names the operands (`x.relu()` reads `self`, `F.relu(x)` `input`, `operator.add`
    its position) or, for a commutative op (`torch.add` without `alpha`), by their order."""
    if not same_op(a, b):
        return
    commutes = op_of(a).removeprefix("call:") in _COMMUTATIVE
    commutes = commutes and "alpha" not in a.args and "alpha" not in b.args
    old, new = _operands(a, a_inputs, commutes), _operands(b, b_inputs, commutes)
    for key in list(changes):
        field, _, slot = key.partition(".")
        if field in ("inputs", "args"):
            where = _slot(slot, commutes)
            if where in old and old[where] == new.get(where):
                del changes[key]


def _slot(slot: str, commutes: bool) -> str:
    """A slot named as every spelling would: the first operand `0`, the second `1` (both `*`
    when they commute)."""
    head, dot, rest = slot.partition(".")
    head = "0" if head in _FIRST else "1" if head in _SECOND else head
    if commutes and head in ("0", "1") and not dot:
        return "*"
    return head + dot + rest


def _operands(node: Node, inputs: Mapping[str, str], commutes: bool) -> dict[str, Any]:
    """What feeds each slot (a source or a constant) by `_slot`; a commuting pair as a set."""
    out: dict[str, Any] = {}
    pair: list[str] = []
    for values, tag in ((inputs, "from"), (node.args, "constant")):
        for slot, value in values.items():
            where = _slot(slot, commutes)
            if where == "*":
                pair.append(f"{tag} {value!r}")
            else:
                out[where] = (tag, value)
    if pair:
        out["*"] = sorted(pair)
    return out
