"""What a traced graph costs: compute and activation memory, per op, per module and in total.

Each op node traced with data carries `Node.cost` (made by `nnviz.tracers.cost`):

- `macs`: multiply-accumulates, from torch's own formulas (`torch.utils.flop_counter`: matrix
  products, convolutions, attention) — the headline figure, as published model tables count it.
  FLOPs = 2 × MACs wherever FLOPs are shown, and every figure says which it is.
- **The rule for everything else:** elementwise ops, normalisations, softmax, pooling,
  reductions, indexing and data movement count 0 MACs (they multiply-accumulate nothing; their
  cost is memory traffic, which `out_bytes` shows).
- `uncounted`: ops that may compute but have no formula (a custom `my_op`, an extension's
  kernel), by name and count; never silently 0: every total says `not counted: 3 ops (my_op ×3)`.
- `out_bytes`: bytes of the tensors the op outputs (dtype-aware, from its traced output spec),
  as torchinfo's "forward pass size" counts them: every op's output, in-place ones included, but
  views, indexing, shape reads and eval-mode identities (`VIEWS`) count 0. So the figure is the
  same whichever tracer made the graph, and their sum is the activation memory a forward pass
  that kept every output would hold.

A module's cost is the sum over the ops it ran (every call of it); nothing derived is stored.
Pure Python, no torch: loading and diffing snapshots never need it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from nnviz.graph import Graph, Node, is_within

RERECORD = (
    "re-record it with example inputs (nnviz MODEL -i ... -o model.json, or "
    "nnviz_snapshot(model, inputs=...) and pytest --nnviz-update)"
)
"""How to get a cost where a side has none."""


@dataclass(frozen=True)
class Cost:
    """Summed cost of some ops: MACs, output bytes and the ops without a formula."""

    macs: int = 0
    out_bytes: int = 0
    uncounted: Mapping[str, int] = field(default_factory=dict)
    known: bool = True
    """False when no op of the sum has a recorded cost (traced without data, older format)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "uncounted", MappingProxyType(dict(self.uncounted)))

    @property
    def flops(self) -> int:
        """FLOPs, counting a multiply-accumulate as 2."""
        return 2 * self.macs

    @property
    def uncounted_ops(self) -> int:
        return sum(self.uncounted.values())

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"macs": self.macs, "activation_bytes": self.out_bytes}
        if self.uncounted:
            doc["uncounted"] = dict(sorted(self.uncounted.items()))
        return doc


UNKNOWN = Cost(known=False)

VIEWS = frozenset(
    [
        "view",
        "view_as",
        "reshape",
        "reshape_as",
        "flatten",
        "unflatten",
        "permute",
        "transpose",
        "t",
        "expand",
        "expand_as",
        "squeeze",
        "unsqueeze",
        "chunk",
        "split",
        "split_with_sizes",
        "tensor_split",
        "unbind",
        "narrow",
        "select",
        "detach",
        "getitem",
        "getattr",
        "size",
        "dim",
        "numel",
        "Identity",
        "Sequential",  # a leaf Sequential is an empty one: it returns its input
        "Flatten",
        "Unflatten",
        "Dropout",
        "Dropout1d",
        "Dropout2d",
        "Dropout3d",
        "AlphaDropout",
        "FeatureAlphaDropout",
    ]
)
"""Ops (by last name) whose outputs are views of, or the same as, their inputs: no new memory."""

_DTYPE_BYTES = {"bool": 1, "uint8": 1, "int8": 1, "complex32": 4, "complex64": 8}


def dtype_bytes(dtype: str) -> int:
    """Bytes per element of a dtype named as a spec names it (`float32`, `bfloat16`, `int64`)."""
    if dtype in _DTYPE_BYTES:
        return _DTYPE_BYTES[dtype]
    digits = "".join(c for c in dtype.split("_")[0] if c.isdigit())
    bits = int(digits) if digits else 32
    return max(1, bits // 8) * (2 if dtype.startswith("complex") else 1)


def spec_bytes(spec: Any) -> int:
    """Bytes of every tensor in a spec (`{"$tensor": {...}}`, tuples, lists, dicts of them)."""
    if isinstance(spec, list):
        return sum(spec_bytes(item) for item in spec)
    if not isinstance(spec, Mapping):
        return 0
    tensor = spec.get("$tensor")
    if isinstance(tensor, Mapping):
        numel = 1
        for d in tensor.get("shape", ()):
            numel *= d if isinstance(d, int) else 0  # a symbolic size: unknown, counted as 0
        return numel * dtype_bytes(str(tensor.get("dtype", "float32")))
    if "$tuple" in spec:
        return spec_bytes(spec["$tuple"])
    if "$dict" in spec:
        return sum(spec_bytes(pair[1]) for pair in spec["$dict"] if isinstance(pair, list))
    return 0


def output_bytes(node: Node) -> int:
    """What `node` adds to activation memory (see the module docstring)."""
    return 0 if node.title in VIEWS else spec_bytes(node.spec)


def add(costs: Iterable[Mapping[str, Any] | None]) -> Cost:
    """The sum of op costs (`Node.cost` mappings); unknown when none of them is recorded."""
    macs = out = 0
    uncounted: dict[str, int] = {}
    known = False
    for cost in costs:
        if cost is None:
            continue
        known = True
        macs += int(cost.get("macs", 0))
        out += int(cost.get("out_bytes", 0))
        for op, n in dict(cost.get("uncounted") or {}).items():
            uncounted[op] = uncounted.get(op, 0) + int(n)
    return Cost(macs, out, uncounted, known) if known else UNKNOWN


def node_cost_dict(cost: Cost) -> dict[str, Any] | None:
    """`Cost` back as a `Node.cost` mapping (for a node that stands for several)."""
    if not cost.known:
        return None
    doc: dict[str, Any] = {"macs": cost.macs, "out_bytes": cost.out_bytes}
    if cost.uncounted:
        doc["uncounted"] = dict(sorted(cost.uncounted.items()))
    return doc


def total(graph: Graph) -> Cost:
    """The whole graph's cost (unknown for a graph traced without data or an older format)."""
    return add(node.cost for node in graph.nodes)


def owner(node: Node) -> str:
    """The module whose cost a node's cost counts toward first: a module call's own module,
    else its scope."""
    return node.module if node.module is not None else node.scope


def of_module(graph: Graph, path: str) -> Cost:
    """What module `path` costs: every op run inside it, over all its calls."""
    return add(n.cost for n in graph.nodes if is_within(owner(n), path))


def per_module(graph: Graph) -> dict[str, Cost]:
    """Every module path's cost in one pass (modules that ran no recorded op are absent)."""
    sums: dict[str, list[Mapping[str, Any]]] = {}
    for node in graph.nodes:
        if node.cost is None:
            continue
        path: str | None = owner(node)
        while path is not None:
            sums.setdefault(path, []).append(node.cost)
            path = None if path == "" else (path.rsplit(".", 1)[0] if "." in path else "")
    return {path: add(costs) for path, costs in sums.items()}


# --- words -----------------------------------------------------------------------------------


def _scaled(n: float, units: tuple[tuple[float, str], ...]) -> str:
    for scale, suffix in units:
        if abs(n) >= scale:
            if scale == 1:
                return f"{n:.0f} {suffix}"
            value = n / scale
            digits = 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0
            return f"{value:.{digits}f} {suffix}"
    return f"{n:.0f} {units[-1][1]}" if units[-1][0] == 1 else f"{n:.0f}"


_MAC_UNITS = ((1e12, "TMACs"), (1e9, "GMACs"), (1e6, "MMACs"), (1e3, "KMACs"), (1, "MACs"))
_BYTE_UNITS = ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"), (1, "B"))


def macs_text(macs: int) -> str:
    """`4.09 GMACs`, `512 MACs`; `0 MACs`."""
    return _scaled(macs, _MAC_UNITS) if macs else "0 MACs"


def bytes_text(n: int) -> str:
    """`12.3 MiB`, `0 B`."""
    return _scaled(n, _BYTE_UNITS) if n else "0 B"


def uncounted_text(uncounted: Mapping[str, int], limit: int = 4) -> str:
    """`not counted: 3 ops (my_op ×3)`; empty when every op was counted."""
    if not uncounted:
        return ""
    ranked = sorted(uncounted.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{op} ×{n}" for op, n in ranked[:limit])
    if len(ranked) > limit:
        shown += ", …"
    n = sum(uncounted.values())
    return f"not counted: {n} op{'s' if n != 1 else ''} ({shown})"


def summary(cost: Cost) -> str:
    """One line: `compute 4.09 GMACs (8.18 GFLOPs) · activations 12.3 MiB`, then what was not
    counted; or that the cost is unknown."""
    if not cost.known:
        return "cost unknown (traced without example inputs)"
    line = f"compute {macs_text(cost.macs)} ({_flops_text(cost.flops)})"
    line += f" · activations {bytes_text(cost.out_bytes)}"
    missing = uncounted_text(cost.uncounted)
    return f"{line} · {missing}" if missing else line


def _flops_text(flops: int) -> str:
    return macs_text(flops).replace("MACs", "FLOPs")


def share(part: int, whole: int) -> str:
    """`6%`, `<1%`; empty when the whole is 0."""
    if not whole:
        return ""
    ratio = part / whole
    return "<1%" if 0 < ratio < 0.005 else f"{ratio:.0%}"
