"""Count what each traced op costs while the tracers run it (see `nnviz.costs` for the rule).

`Counter` is a `TorchDispatchMode` active for the whole run: every aten op the model executes
(on meta tensors or on the CPU fallback alike) adds its multiply-accumulates, from torch's own
shape formulas (`torch.utils.flop_counter.flop_registry`, which count 2 FLOPs per MAC) and a few
of ours for products torch has no formula for; composite ops are decomposed first, as
`FlopCounterMode` does, so `linear`, `matmul`, `einsum` and attention reach a formula. An op
that may compute but has none (another library's kernel, `my_op`, a fused kernel) is counted by
name as *uncounted*; every other aten op (elementwise, norms, softmax, pooling, views) is 0 MACs
by the rule. The tracer calls `take()` around each node it records, `node_cost` for the dict
`Node.cost` stores, and `priced` at the end for each node's output bytes.

While counting, nn.MultiheadAttention's fused fast path is switched off (it is one kernel
without a formula); its plain path computes the same output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from nnviz.costs import output_bytes
from nnviz.graph import Graph

aten = torch.ops.aten


def _mv(mat: torch.Tensor, vec: torch.Tensor) -> int:
    return int(math.prod(mat.shape))


def _mm(a: torch.Tensor, b: torch.Tensor) -> int:
    return int(a.shape[0]) * int(a.shape[1]) * int(b.shape[-1])


def _grouped_mm(a: torch.Tensor, b: torch.Tensor) -> int:
    """The MACs of a grouped matmul (mixture-of-experts experts): the sum over its groups of
    m_g·k·n. With `a` 2-D and `b` 3-D (rows by group, `b` one matrix per group) that is every
    row of `a` times k·n: the offsets are data, which meta tensors do not hold, so rows past
    the last offset (padding some expert-parallel code adds) are counted too. `a` and `b` both
    2-D split k by group (the sum is m·k·n), `a` 3-D and `b` 2-D split n (m·k·n), both 3-D are
    one matmul per group (g·m·k·n)."""
    if a.dim() == 3 and b.dim() == 2:
        return int(a.shape[1]) * int(a.shape[2]) * int(b.shape[-1])
    return int(a.numel()) * int(b.shape[-1])


def _extra() -> dict[Any, Any]:
    """MAC formulas torch's registry lacks (products it leaves to composite ops elsewhere)."""
    sdpa = flop_registry[aten._scaled_dot_product_flash_attention]

    def cpu_sdpa(q: Any, k: Any, v: Any, *args: Any, **kwargs: Any) -> int:
        return int(sdpa(q, k, v, out_val=None)) // 2

    return {
        aten._scaled_dot_product_flash_attention_for_cpu: cpu_sdpa,
        aten.mv: lambda mat, vec, *a, **k: _mv(mat, vec),
        aten.addmv: lambda inp, mat, vec, *a, **k: _mv(mat, vec),
        aten.dot: lambda a, b, *r, **k: int(a.numel()),
        aten.vdot: lambda a, b, *r, **k: int(a.numel()),
        aten.addbmm: lambda inp, b1, b2, *a, **k: int(math.prod(b1.shape)) * int(b2.shape[-1]),
        aten._int_mm: lambda a, b, *r, **k: _mm(a, b),
        aten._addmm_activation: lambda inp, a, b, *r, **k: _mm(a, b),
        aten._grouped_mm: lambda a, b, *r, **k: _grouped_mm(a, b),
        aten._scaled_grouped_mm: lambda a, b, *r, **k: _grouped_mm(a, b),
    }


_EXTRA = _extra()
_COMPUTING_PREFIXES = (
    "linalg_",
    "_linalg_",
    "fft_",
    "_fft_",
    "cudnn_",
    "miopen_",
    "mkldnn_",
    "_thnn_",
    "_native_multi_head_attention",
    "_transformer_encoder_layer_fwd",
    "cdist",
    "_cdist_",
    "conv_tbc",
    "_weight_int",
    "_nested_",
)
"""aten ops that multiply-accumulate but have no formula: counted as uncounted, never 0."""


_PRODUCTS = re.compile(r"(mm|matmul|gemm|attention|conv)(_|\d|$)|(^|_)linear(_|$)")
"""aten ops whose name says they multiply-accumulate (`_scaled_mm_v2`, `_cslt_sparse_mm`,
`_sparse_semi_structured_linear`, ...): without a formula they are uncounted, never 0."""
_RESAMPLING = ("upsample_", "_upsample_")
"""Interpolation (`upsample_bilinear2d`): weighted sums of neighbours, 0 MACs by the rule."""


def _uncounted(func: Any) -> str | None:
    """The name an op without a formula is listed under, or None when the rule counts it 0."""
    namespace = getattr(func, "namespace", "aten")
    name = func._overloadpacket.__name__ if hasattr(func, "_overloadpacket") else str(func)
    if namespace not in ("aten", "prims", "prim"):
        return name if namespace in ("", None) else f"{namespace}.{name}"
    computes = name.startswith(_COMPUTING_PREFIXES) or (
        _PRODUCTS.search(name) is not None and not name.startswith(_RESAMPLING)
    )
    return name if computes else None


def _plan(func: Any) -> tuple[str, Any]:
    """What to do with an op, worked out once per op: `("formula", f)` (its MACs are `f(...)`),
    `("decompose", None)` (a composite without a formula: count its parts), `("uncounted",
    name)` or `("zero", None)` (the rule)."""
    packet = func._overloadpacket
    functional = getattr(aten, packet.__name__[:-1], None) if packet.__name__[-1] == "_" else None
    if functional in flop_registry or functional in _EXTRA:  # in place (`addmm_`): the same
        packet = functional
    if packet in flop_registry:
        registered = flop_registry[packet]
        return "formula", lambda *a, **k: int(registered(*a, **k)) // 2
    if packet in _EXTRA:
        extra = _EXTRA[packet]
        return "formula", lambda *a, out_val=None, **k: int(extra(*a, **k))
    if torch._C._dispatch_has_kernel_for_dispatch_key(func.name(), _COMPOSITE):
        return "decompose", None
    name = _uncounted(func)
    return ("uncounted", name) if name is not None else ("zero", None)


_COMPOSITE = torch._C.DispatchKey.CompositeImplicitAutograd
_PLANS: dict[Any, tuple[str, Any]] = {}
"""`_plan` of every op seen so far."""


class Counter(TorchDispatchMode):  # type: ignore[no-untyped-call,misc]
    """Sums the MACs of the ops run since the last `take()`; lists ops without a formula."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # torch wraps a mode's __torch_dispatch__ to keep torch.compile out of it, which
        # imports torch._dynamo (some 300 modules, a second or more) on the first op; a trace
        # never runs under torch.compile.
        return False

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.macs = 0
        self.uncounted: dict[str, int] = {}

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        plan = _PLANS.get(func)
        if plan is None:
            plan = _PLANS[func] = _plan(func)
        kind, what = plan
        if kind == "decompose":  # its C++ composite kernel, whose parts come back here
            with self:
                return func._op_dk(_COMPOSITE, *args, **kwargs)
        out = func(*args, **kwargs)
        if kind == "formula":
            self.macs += what(*args, **kwargs, out_val=out)
        elif kind == "uncounted":
            self.uncounted[what] = self.uncounted.get(what, 0) + 1
        return out

    def take(self) -> tuple[int, dict[str, int]]:
        """The MACs and uncounted ops since the last call, and start again."""
        taken = self.macs, self.uncounted
        self.macs, self.uncounted = 0, {}
        return taken


ENABLED = True
"""Whether traces count cost; bench/cost.py turns it off to measure what counting adds."""


@contextlib.contextmanager
def counting() -> Iterator[Counter | None]:
    """A `Counter` active for the block, with the attention fast path off (None when counting
    is off)."""
    if not ENABLED:
        yield None
        return
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with Counter() as counter:
            yield counter
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def node_cost(taken: tuple[int, dict[str, int]]) -> dict[str, Any]:
    """The `Node.cost` dict of an op that ran `taken` (`priced` adds its output bytes)."""
    macs, uncounted = taken
    cost: dict[str, Any] = {"macs": macs}
    if uncounted:
        cost["uncounted"] = dict(sorted(uncounted.items()))
    return cost


def priced(graph: Graph) -> Graph:
    """`graph` with each counted node's `out_bytes` (from its spec: `nnviz.costs`)."""
    nodes = [
        dataclasses.replace(node, cost={**node.cost, "out_bytes": output_bytes(node)})
        if node.cost is not None
        else node
        for node in graph.nodes
    ]
    return graph.replace(nodes=nodes)
