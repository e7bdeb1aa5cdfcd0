"""Arguments that spell out what the callee would compute without them, left out like defaults.

Binding (`nnviz.tracers.binding`) leaves out an argument equal to its declared default. Some
defaults are computed from the other arguments: `F.scaled_dot_product_attention` scales by
`1/sqrt(E)` when `scale` is None. Passing that value is the same call, so it is left out too.
Each rule below states one such equivalence exactly, from the call's constant arguments and the
shapes of its tensor inputs (known when traced with data; without shapes a rule that needs
them keeps the argument).

| op | argument | is its default when |
| --- | --- | --- |
| `torch.arange` | `start` | it is 0 (documented `arange(start=0, end, step=1)`) |
| `F.scaled_dot_product_attention` | `scale` | it is `1/sqrt(E)`, E the query's last dimension |
| `F.scaled_dot_product_attention` | `enable_gqa` | query and key have as many heads (dim -3) |
| `F.max_pool{1,2,3}d`, `F.avg_pool{1,2,3}d` | `stride` | it equals `kernel_size` (None means so) |
| `F.pad` | `value` | it is 0 in `constant` mode (None pads with zeros) |
| `F.softmax`, `F.log_softmax`, `F.softmin` | `dim` | it is the implicit dim (see below) |

The implicit softmax dim is torch's legacy rule (`F._get_softmax_dim`): 0 for an input of rank 0,
1 or 3, else 1; a negative dim counts from the end.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping

from nnviz.graph import Graph, Node
from nnviz.values import Value

Specs = Mapping[str, Value]
"""The output spec of each tensor input of a call, by the slot it feeds."""

_F = "torch.nn.functional."


def _shape(spec: Value) -> list[int] | None:
    if isinstance(spec, dict) and isinstance(spec.get("$tensor"), dict):
        shape = spec["$tensor"].get("shape")
        return shape if isinstance(shape, list) else None
    return None


def _is_number(value: Value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _zero_start(value: Value, node: Node, specs: Specs) -> bool:
    return _is_number(value) and value == 0


def _sdpa_scale(value: Value, node: Node, specs: Specs) -> bool:
    query = _shape(specs.get("query"))
    if not (_is_number(value) and query and query[-1] > 0):
        return False
    return math.isclose(value, 1 / math.sqrt(query[-1]), rel_tol=1e-9)


def _sdpa_gqa(value: Value, node: Node, specs: Specs) -> bool:
    query, key = _shape(specs.get("query")), _shape(specs.get("key"))
    heads = [s[-3] for s in (query, key) if s is not None and len(s) >= 3]
    return value is True and len(heads) == 2 and heads[0] == heads[1]


def _stride_of_kernel(value: Value, node: Node, specs: Specs) -> bool:
    kernel = node.args.get("kernel_size")
    return kernel is not None and _expanded(value) == _expanded(kernel)


def _expanded(value: Value) -> Value:
    """`2` and `(2, 2)` are one pooling size (an int applies to every dimension)."""
    if isinstance(value, dict) and "$tuple" in value:
        items = value["$tuple"]
        return items[0] if items and all(i == items[0] for i in items) else items
    if isinstance(value, list):
        return value[0] if value and all(i == value[0] for i in value) else value
    return value


def _zero_fill(value: Value, node: Node, specs: Specs) -> bool:
    return _is_number(value) and value == 0 and node.args.get("mode", "constant") == "constant"


def _implicit_softmax_dim(value: Value, node: Node, specs: Specs) -> bool:
    shape = _shape(specs.get("input"))
    if shape is None or not _is_number(value) or isinstance(value, float):
        return False
    rank = len(shape)
    implicit = 0 if rank in (0, 1, 3) else 1  # torch.nn.functional._get_softmax_dim
    return bool(value == implicit or (value < 0 and value + max(rank, 1) == implicit))


Rule = Callable[[Value, Node, Specs], bool]

RULES: dict[tuple[str, str], Rule] = {
    ("torch.arange", "start"): _zero_start,
    (f"{_F}scaled_dot_product_attention", "scale"): _sdpa_scale,
    (f"{_F}scaled_dot_product_attention", "enable_gqa"): _sdpa_gqa,
    **{
        (f"{_F}{kind}_pool{n}d", "stride"): _stride_of_kernel
        for kind in ("max", "avg")
        for n in (1, 2, 3)
    },
    (f"{_F}pad", "value"): _zero_fill,
    **{(f"{_F}{op}", "dim"): _implicit_softmax_dim for op in ("softmax", "log_softmax", "softmin")},
}
"""(op, argument) -> whether the argument's value is what the op computes without it."""


def leave_out(graph: Graph) -> Graph:
    """`graph` with every argument a rule says is its computed default left out."""
    ops = {op for op, _ in RULES}
    if not any(n.op in ops for n in graph.nodes):
        return graph
    nodes = []
    for node in graph.nodes:
        drop = [
            key
            for key, value in node.args.items()
            if (node.op, key) in RULES and RULES[node.op, key](value, node, _specs(graph, node))
        ]
        if drop:
            args = {k: v for k, v in node.args.items() if k not in drop}
            node = dataclasses.replace(node, args=args)
        nodes.append(node)
    return graph.replace(nodes=nodes)


def _specs(graph: Graph, node: Node) -> dict[str, Value]:
    specs: dict[str, Value] = {}
    for source in graph.predecessors(node.id):
        for slot in graph.edge(source, node.id).slots:
            specs[slot] = graph.node(source).spec
    return specs
