"""Never silently weaker than asked: what a snapshot call asked nnviz to record, and the check
that the traced graph honours each ask.

A test that asks for something (tensor shapes through `inputs=` or the `nnviz_inputs` ini
option, a tracer through `tracer=` or `nnviz_tracer`) gets it, or fails with one line per unmet
ask naming what was asked and why it could not be honoured, and nothing is written: no
snapshot, no pending file, no drawing. The command line may draw without shapes after a
warning; a guard that quietly stored a weaker snapshot would pass every later run unguarded.

Each kind of ask is one entry in `CHECKS`: a function of the ask, the graph and the warnings
the trace raised, giving `None` when honoured or the reason it was not. A new kind of record
(cost, the checkpoint contract, exportability) is one `Ask` built in `asked` and one check.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nnviz import costs
from nnviz.diffing.checkpoint import recorded
from nnviz.errors import DataTraceWarning, NNVizError
from nnviz.graph import Graph
from pytest_nnviz.engine import build_graph

AUTO = "auto"


@dataclass(frozen=True)
class Ask:
    """One thing a snapshot call asked to record or compare."""

    kind: str
    """Its check in `CHECKS` (`shapes`, `tracer`, `export`)."""
    value: Any
    """What was asked: the inputs, the tracer's name."""
    given: str
    """How the user asked, for the failure line: `inputs='tensor1x32'`, `nnviz_tracer = fx
    (ini)`."""


Check = Callable[[Ask, Graph, Sequence[Warning]], str | None]
"""`None` when `graph` honours the ask, else why not (one line, no leading `nnviz:`)."""


def asked(
    *,
    inputs: Any,
    tracer: str | None,
    ini_inputs: str | None = None,
    ini_tracer: str = AUTO,
    checkpoint: bool = False,
    exportable: bool | None = None,
    ini_exportable: bool = False,
    cost: str | None = None,
) -> tuple[Ask, ...]:
    """The asks of one call: its own arguments first, the ini options where it gave none;
    `cost` says how the cost was asked for (`max_macs=4e9`, `fail_on='macs>+5%'`)."""
    asks = []
    if cost is not None:
        asks.append(Ask("cost", None, cost))
    if inputs is not None:
        asks.append(Ask("shapes", inputs, f"inputs={_shown(inputs)}"))
    elif ini_inputs:
        asks.append(Ask("shapes", ini_inputs, f"nnviz_inputs = {ini_inputs} (ini)"))
    if tracer is not None and tracer != AUTO:
        asks.append(Ask("tracer", tracer, f"tracer={tracer!r}"))
    elif tracer is None and ini_tracer != AUTO:
        asks.append(Ask("tracer", ini_tracer, f"nnviz_tracer = {ini_tracer} (ini)"))
    if checkpoint:
        asks.append(Ask("checkpoint", True, "fail_on with checkpoint"))
    if exportable:
        asks.append(Ask("export", True, "exportable=True"))
    elif exportable is None and ini_exportable:
        asks.append(Ask("export", True, "nnviz_exportable = true (ini)"))
    return tuple(asks)


def _shown(inputs: Any) -> str:
    if isinstance(inputs, str):
        return repr(inputs if len(inputs) <= 60 else inputs[:57] + "...")
    return f"<{type(inputs).__name__}>"


def trace_as_asked(
    model: Any, asks: Sequence[Ask], depth: int | None = None, memory_limit: Any = None
) -> tuple[Graph | None, list[str]]:
    """Trace `model` as `asks` say; the graph and one line per unmet ask (graph `None` when
    the trace itself refused). Warnings the asks do not turn into failures are passed on."""
    values = {ask.kind: ask.value for ask in asks}
    tracer = values.get("tracer", AUTO)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            graph = build_graph(
                model,
                inputs=values.get("shapes"),
                depth=depth,
                tracer=tracer,
                memory_limit=memory_limit,
                exportable=bool(values.get("export")),
            )
        except NNVizError as exc:  # a tracer that cannot trace, an input that does not parse
            return None, [f"nnviz: {exc}; nothing was written"]
    raised = [w.message for w in caught if isinstance(w.message, Warning)]
    problems = [
        f"nnviz: {ask.given} cannot be honoured: {reason}; nothing was written"
        for ask in asks
        if (reason := CHECKS[ask.kind](ask, graph, raised)) is not None
    ]
    if not problems:
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    return graph, problems


def _shapes(ask: Ask, graph: Graph, raised: Sequence[Warning]) -> str | None:
    if isinstance(graph.meta.get("inputs"), dict):
        return None
    name = graph.meta.get("name") or "the model"
    for warning in raised:
        if isinstance(warning, DataTraceWarning):
            if warning.reason:
                return f"{name} fails on {warning.inputs} {warning.reason}"
            return str(warning)
    return f"{name} was not traced with data, so the snapshot would have no shapes"


def _checkpoint(ask: Ask, graph: Graph, raised: Sequence[Warning]) -> str | None:
    why = recorded(graph)
    return None if why is None else f"the graph {why}"


def _tracer(ask: Ask, graph: Graph, raised: Sequence[Warning]) -> str | None:
    made_by = graph.meta.get("tracer")
    if made_by == ask.value:
        return None
    return f"the graph was made by the {made_by or 'unknown'} tracer"


def _export(ask: Ask, graph: Graph, raised: Sequence[Warning]) -> str | None:
    if isinstance(graph.meta.get("export"), dict):
        return None
    return "the graph records no exportability (a Graph given as is: trace it with exportable=True)"


def _cost(ask: Ask, graph: Graph, raised: Sequence[Warning]) -> str | None:
    if costs.total(graph).known:
        return None
    if not graph.traced_with_data:
        shapes = _shapes(ask, graph, raised)
        return f"its cost needs example inputs ({shapes})"
    return f"the {graph.meta.get('tracer', 'unknown')} tracer records no cost"


CHECKS: Mapping[str, Check] = {
    "shapes": _shapes,
    "tracer": _tracer,
    "checkpoint": _checkpoint,
    "export": _export,
    "cost": _cost,
}
"""Every kind of ask and its check."""
