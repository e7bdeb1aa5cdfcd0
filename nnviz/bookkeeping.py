"""Scalar bookkeeping: shape reads and the Python arithmetic on them, and how drawings fold it.

A traced graph records every `x.shape`, `x.size(0)`, `shape[-2:]`, `h // 16` and `len(...)` a
model computes, because they steer the tensor ops (`x.view(b, -1)`). Detection models run
thousands of them; drawn as boxes they bury the layers. `scalar_nodes(graph)` finds them: with
data, every call whose recorded output holds no tensor; without, the reads of a tensor's shape
(`getattr` of `shape`/`dtype`/..., `size`, `dim`, `numel`, `len`) and the arithmetic, indexing
and builtins whose every input is such a value. The diff uses the same set: these values are how
code computes arguments, not architecture (`nnviz.diffing.plumbing`).

`fold(graph)` then removes these nodes from a drawing: each op that consumed one gets the
expression as an argument (`meta["folded"]`: `{"1": "x.shape[0] // 16"}`) and a dashed edge from
the tensor whose metadata was read. Only drawings fold: snapshots and diffs keep every node.
"""

from __future__ import annotations

from collections.abc import Mapping

from nnviz.graph import Edge, Graph, Node
from nnviz.values import Value, format_value

_SHAPE_METHODS = frozenset(
    {"size", "dim", "ndimension", "numel", "nelement", "__len__", "stride", "get_device"}
)
_SHAPE_ATTRS = frozenset({"shape", "dtype", "device", "ndim", "is_cuda", "layout", "is_sparse"})
_SCALAR_FUNCTIONS = frozenset(
    {
        "len", "int", "float", "bool", "max", "min", "abs", "round", "divmod", "tuple", "list",
        "torch.sym_int", "torch.sym_float", "torch.sym_max", "torch.sym_min",
    }
)  # fmt: skip
_SCALAR_METHODS = frozenset({"__add__", "__sub__", "__mul__", "__floordiv__", "__mod__"})
_BINARY = {
    "add": "+", "sub": "-", "mul": "*", "truediv": "/", "floordiv": "//", "mod": "%",
    "pow": "**", "eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=",
    "and_": "&", "or_": "|", "xor": "^", "lshift": "<<", "rshift": ">>",
}  # fmt: skip
_UNARY = {"neg": "-", "pos": "+", "invert": "~", "not_": "not "}
MAX_EXPRESSION = 60
"""Longest folded expression kept whole; longer ones end in an ellipsis."""


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
    """Ids of the function and method calls whose output is scalar bookkeeping (no tensor): by
    the recorded spec when traced with data, else by what the call is."""
    out: set[str] = set()
    with_data = graph.traced_with_data
    for node in graph.nodes:  # trace order: producers come first
        if node.kind not in ("function", "method"):
            continue
        if with_data and node.spec is not None:
            if _is_tensorless(node.spec):
                out.add(node.id)
            continue
        if _reads_shape(node):
            out.add(node.id)
        elif _computes_scalars(node):  # (only these read their inputs: no list for the rest)
            preds = graph.predecessors(node.id)
            if preds and all(p in out for p in preds):
                out.add(node.id)
    return frozenset(out)


def fold(graph: Graph) -> Graph:
    """`graph` without its bookkeeping nodes: consumers remember the folded expressions and read
    the tensors behind them through new edges. The input graph is never changed."""
    hidden = scalar_nodes(graph)
    if not hidden:
        return graph
    folder = _Folder(graph, hidden)
    slots: dict[tuple[str, str], list[str]] = {}
    folded: dict[str, dict[str, str]] = {}
    for edge in graph.edges:
        if edge.target in hidden:
            continue
        if edge.source not in hidden:
            _merge(slots, edge.source, edge.target, edge.slots)
            continue
        text = folder.expression(edge.source)
        for slot in edge.slots:
            folded.setdefault(edge.target, {})[slot] = text
        for origin in folder.origins(edge.source):
            _merge(slots, origin, edge.target, edge.slots)
    nodes = [
        _with_folded(node, folded.get(node.id, {})) for node in graph.nodes if node.id not in hidden
    ]
    edges = [Edge(u, v, tuple(s)) for (u, v), s in slots.items()]
    return Graph(nodes, edges, graph.modules.values(), graph.meta, sources=graph.sources)


def folded_edge(graph: Graph, edge: Edge) -> bool:
    """Whether `edge` only carries metadata reads that `fold` replaced (drawn dashed)."""
    folded = graph.node(edge.target).meta.get("folded")
    return isinstance(folded, Mapping) and bool(edge.slots) and all(s in folded for s in edge.slots)


def _merge(slots: dict[tuple[str, str], list[str]], u: str, v: str, new: tuple[str, ...]) -> None:
    merged = slots.setdefault((u, v), [])
    merged.extend(s for s in new if s not in merged)


def _with_folded(node: Node, folded: dict[str, str]) -> Node:
    if not folded:
        return node
    meta = {**node.meta, "folded": dict(sorted(folded.items()))}
    return Node(node.id, node.kind, node.op, node.scope, node.module, node.args, node.spec, meta)


class _Folder:
    """Memoised walks back through bookkeeping nodes: expressions and the tensors read."""

    def __init__(self, graph: Graph, hidden: frozenset[str]) -> None:
        self.graph, self.hidden = graph, hidden
        self._origins: dict[str, list[str]] = {}
        self._texts: dict[str, str] = {}

    def origins(self, node_id: str) -> list[str]:
        """The non-bookkeeping nodes whose outputs the bookkeeping node `node_id` reads."""
        if node_id not in self._origins:
            found: list[str] = []
            for pred in self.graph.predecessors(node_id):
                for origin in self.origins(pred) if pred in self.hidden else [pred]:
                    if origin not in found:
                        found.append(origin)
            self._origins[node_id] = found
        return self._origins[node_id]

    def expression(self, node_id: str) -> str:
        """`x.shape[0] // 16`: the bookkeeping node as Python-like text, capped in length."""
        if node_id not in self._texts:
            text = self._render(self.graph.node(node_id))
            if len(text) > MAX_EXPRESSION:
                text = text[: MAX_EXPRESSION - 1] + "…"
            self._texts[node_id] = text
        return self._texts[node_id]

    def _operand(self, node_id: str) -> str:
        if node_id in self.hidden:
            return self.expression(node_id)
        node = self.graph.node(node_id)
        return node.op if node.kind == "input" else node_id

    def _arguments(self, node: Node) -> tuple[list[str], list[str]]:
        """Positional and keyword argument texts: constants, and operands for traced slots."""
        given: dict[str, str] = {k: _constant(v) for k, v in node.args.items()}
        nested: dict[str, list[str]] = {}
        for pred in self.graph.predecessors(node.id):
            for slot in self.graph.edge(pred, node.id).slots:
                top, _, inner = slot.partition(".")
                if inner:
                    nested.setdefault(top, []).append(self._operand(pred))
                else:
                    given[top] = self._operand(pred)
        for top, items in nested.items():
            given.setdefault(top, "(" + ", ".join(items) + ", …)")
        # a method's tensor (`self`) is its receiver: `x.size(dim=0)`, written first
        receiver = [given.pop("self")] if node.kind == "method" and "self" in given else []
        positional = [given[k] for k in sorted((k for k in given if k.isdigit()), key=int)]
        keywords = [f"{k}={v}" for k, v in given.items() if not k.isdigit()]
        return receiver + positional, keywords

    def _render(self, node: Node) -> str:
        args, keywords = self._arguments(node)
        name = node.op.rsplit(".", 1)[-1]
        if node.op == "getattr" and len(args) == 2:
            return f"{_wrap(args[0])}.{node.args.get('1', args[1])}"
        if node.op == "operator.getitem" and len(args) == 2:
            return f"{_wrap(args[0])}[{args[1]}]"
        if node.op.startswith("operator.") and name in _BINARY and len(args) == 2:
            return f"{_wrap(args[0])} {_BINARY[name]} {_wrap(args[1])}"
        if node.op.startswith("operator.") and name in _UNARY and len(args) == 1:
            return f"{_UNARY[name]}{_wrap(args[0])}"
        if node.kind == "method" and args:
            return f"{_wrap(args[0])}.{name}({', '.join(args[1:] + keywords)})"
        return f"{name}({', '.join(args + keywords)})"


def _wrap(text: str) -> str:
    return f"({text})" if " " in text and not text.startswith("(") else text


def _constant(value: Value) -> str:
    if isinstance(value, dict) and "$slice" in value and len(value) == 1:
        parts = ["" if v is None else format_value(v) for v in value["$slice"]]
        return ":".join(parts[:2]) if parts[2] == "" else ":".join(parts)
    return format_value(value)
