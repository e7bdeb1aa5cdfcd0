"""Mixture-of-experts blocks, read from the module tree alone: what a drawing says of them.

An experts module is one whose name is `experts` or whose class name ends in `Experts` (shared
experts aside): either fused, its own parameters stacked with the experts first
(transformers' `MixtralExperts.gate_up_proj` is `[8, 32768, 6144]`), or a list of modules of one
class (`experts.0` … `experts.255`). Its parent is the MoE block; the router is a sibling named
`gate`/`router` (or of a `Router`/`Gate` class), the shared expert a sibling named
`shared_expert(s)`.

`summary(graph, path)` is the line a collapsed node of `path` carries: `experts ×256` for the
experts module, `experts ×256 · router · shared expert` for one block, `58 MoE blocks: experts
×256 · router · shared expert` for a stack of layers. No torch.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping

from nnviz.graph import Graph, Module, parent_path

_INDEX: dict[int, tuple[Mapping[str, Module], list[str]]] = {}
"""Per module tree (by identity, kept alive with it): its experts modules' paths, sorted."""


def expert_count(graph: Graph, path: str) -> int | None:
    """How many experts the module at `path` holds, or None when it is not an experts module."""
    module = graph.modules.get(path)
    if module is None or "shared" in module.name.lower():
        return None
    if module.name != "experts" and not module.class_name.endswith("Experts"):
        return None
    if module.parameters:  # fused: every weight stacked over the experts
        leading = {shape[0] for shape in module.parameters.values() if len(shape) >= 2}
        return leading.pop() if len(leading) == 1 and min(leading) >= 2 else None
    children = graph.children(path)
    if len(children) >= 2 and len({child.cls for child in children}) == 1:
        return len(children)
    return None


def _experts(graph: Graph) -> list[str]:
    modules = graph.modules
    cached = _INDEX.get(id(modules))
    if cached is not None and cached[0] is modules:
        return cached[1]
    found = sorted(p for p in modules if p and expert_count(graph, p) is not None)
    if len(_INDEX) > 8:
        _INDEX.clear()
    _INDEX[id(modules)] = (modules, found)
    return found


def block(graph: Graph, experts: str) -> str:
    """`experts ×256 · router · shared expert`: one MoE block, given its experts module."""
    parent = parent_path(experts) or ""
    parts = [f"experts ×{expert_count(graph, experts)}"]
    siblings = [m for m in graph.children(parent) if m.path != experts]
    routers = ("Router", "Gate")
    if any(m.name in ("gate", "router") or m.class_name.endswith(routers) for m in siblings):
        parts.append("router")
    shared = [m for m in siblings if m.name.startswith("shared_expert")]
    if shared:
        parts.append("shared expert" + ("s" if len(shared) > 1 else ""))
    return " · ".join(parts)


def summary(graph: Graph, path: str) -> str | None:
    """The MoE line of a node standing for the module at `path` (see the module docstring)."""
    found = _experts(graph)
    if not found:
        return None
    prefix = f"{path}." if path else ""
    inside: list[str] = []
    for experts in found[bisect_left(found, path) :]:  # sorted: the subtree's are together
        if not experts.startswith(path):
            break
        if experts == path or experts.startswith(prefix):
            inside.append(experts)
    if not inside:
        return None
    if inside == [path]:  # the experts themselves: router and shared expert are drawn beside
        return f"experts ×{expert_count(graph, path)}"
    if len(inside) == 1:
        own = parent_path(inside[0]) == path  # the MoE block
        return ("" if own else "MoE: ") + block(graph, inside[0])
    kinds = Counter(block(graph, experts) for experts in inside)
    return " ; ".join(
        f"{count} MoE block{'s' if count > 1 else ''}: {kind}"
        for kind, count in kinds.most_common()
    )
