"""A terminal summary of a traced graph, as torchinfo's: one row per module down to a depth —
path and class, output shape, parameters, MACs, activations — then the totals.

`nnviz MODEL -i ... -o model.txt` writes it, `-o -` prints it. MACs are multiply-accumulates
(FLOPs = 2 × MACs); a module's figures are everything it runs, over all its calls; "—" where a
module never ran (or the graph was traced without inputs: then only parameters are known).
"""

from __future__ import annotations

from typing import Any

from nnviz import costs
from nnviz.graph import Graph, Module, is_within, parent_path
from nnviz.values import format_value

HEADERS = ("Module (class)", "Output shape", "Params", "MACs", "Activations")


def outputs(graph: Graph) -> dict[str, Any]:
    """What each module gives to the code outside it (its last such value in trace order)."""
    found: dict[str, Any] = {}
    for node in graph.nodes:
        inner = costs.owner(node)
        for target in graph.successors(node.id):
            outer = costs.owner(graph.node(target))
            path: str | None = inner
            while path is not None and path != "" and not is_within(outer, path):
                found[path] = graph.edge_value(node.id, target)
                path = parent_path(path)
    if "output" in graph:
        found[""] = graph.node("output").spec
    return found


def summary(graph: Graph, depth: int = 2) -> str:
    """The table (ends with a newline)."""
    sums = costs.per_module(graph)
    shapes = outputs(graph)
    rows: list[tuple[str, ...]] = [HEADERS]
    for module in graph.modules.values():
        if module.path == "" or (depth >= 0 and module.depth > depth):
            continue
        rows.append(_row(module, sums.get(module.path), shapes.get(module.path)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    rule = "=" * (sum(widths) + 2 * (len(widths) - 1))

    def line(row: tuple[str, ...]) -> str:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:], strict=True)]
        return "  ".join(cells).rstrip()

    total = costs.total(graph)
    root = graph.modules.get("")
    title = f"{graph.name}" + (f" ({root.class_name})" if root is not None else "")
    out = [title, rule, line(rows[0]), rule, *(line(row) for row in rows[1:]), rule]
    out.append(f"Total params: {graph.total_params:,}")
    if total.known:
        out.append(f"Total MACs: {total.macs:,} ({costs.macs_text(total.macs)}; FLOPs = 2 × MACs)")
        out.append(f"Activations: {costs.bytes_text(total.out_bytes)} (every op's output)")
        missing = costs.uncounted_text(total.uncounted)
        if missing:
            out.append(missing.capitalize())
    else:
        out.append("Compute and activations unknown: traced without example inputs (-i)")
    inputs = graph.meta.get("inputs")
    if isinstance(inputs, dict):
        shown = ", ".join(f"{k}={format_value(v)}" for k, v in inputs.items())
        out.append(f"Inputs: {shown}")
    return "\n".join(out) + "\n"


def _row(module: Module, cost: costs.Cost | None, spec: Any) -> tuple[str, ...]:
    name = "  " * (module.depth - 1) + f"{module.name} ({module.class_name})"
    known = cost is not None and cost.known
    return (
        name,
        format_value(spec) if spec is not None else "—",
        f"{module.params:,}" if module.params else "—",
        costs.macs_text(cost.macs) if cost is not None and known else "—",
        costs.bytes_text(cost.out_bytes) if cost is not None and known else "—",
    )
