"""The snapshot codec: a `Graph` as canonical, versioned, diff-friendly JSON, and back.

The text is valid JSON laid out for git: top-level keys sorted, then one line per module, node and
edge (each a compact JSON object with sorted keys), so a changed layer is a one-line diff. The same
graph always gives the same bytes. Loading validates the document against the schema (the
pydantic models of `nnviz.snapshot_schema`, from which the shipped
`nnviz/schema/snapshot-v4.schema.json` is generated; a document in the exact form `dumps` writes
is checked without importing pydantic), never imports torch, and never executes anything named in
the file.
See `docs/snapshot-format.md`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nnviz import untrusted
from nnviz.errors import SnapshotError
from nnviz.fs import atomic_write
from nnviz.graph import (
    MODULE_FROZEN,
    NODE_FROZEN,
    NODE_KINDS,
    Edge,
    Graph,
    Module,
    Node,
    assemble,
    gc_paused,
)

FORMAT = "nnviz-graph"
VERSION = 4
READS = (1, 2, 3, 4)
"""Versions read: version 1 lacks what 2 added (module bases, inherited hyperparameters, input
defaults); versions 1 and 2 record call arguments by position where 3 names them by the callee's
parameters (`nnviz.tracers.binding`); version 4 adds each op's `cost` (compute and output bytes,
`nnviz.costs`), which older documents lack (their cost is unknown), and the state-dict contract
(persistent buffers, dtypes, `_extra_state`), without which the checkpoint verdict is unknown.
Older documents read as they are, with `meta[MIGRATED]` saying so."""
MIGRATED = "migrated_from"
SCHEMA_PATH = Path(__file__).parent / "schema" / f"snapshot-v{VERSION}.schema.json"


# --- writing ---------------------------------------------------------------------------------


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(
        obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


def _module_doc(m: Module) -> dict[str, Any]:
    doc: dict[str, Any] = {"path": m.path, "class": m.cls, "params": m.params}
    if m.hparams:
        doc["hparams"] = dict(m.hparams)
    if m.parameters:
        doc["parameters"] = {k: list(v) for k, v in m.parameters.items()}
    if m.bases:
        doc["bases"] = list(m.bases)
    if m.ties:
        doc["ties"] = dict(m.ties)
    if m.buffers:
        doc["buffers"] = {k: list(v) for k, v in m.buffers.items()}
    if m.dtypes:
        doc["dtypes"] = dict(m.dtypes)
    if m.extra_state:
        doc["extra_state"] = True
    return doc


def _node_doc(n: Node) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": n.id, "kind": n.kind, "op": n.op}
    if n.scope:
        doc["scope"] = n.scope
    if n.module is not None:
        doc["module"] = n.module
    if n.args:
        doc["args"] = dict(n.args)
    if n.spec is not None:
        doc["spec"] = n.spec
    if n.meta:
        doc["meta"] = dict(n.meta)
    if n.cost is not None:
        doc["cost"] = dict(n.cost)
    return doc


def _edge_doc(e: Edge) -> dict[str, Any]:
    return {"source": e.source, "target": e.target, "slots": list(e.slots)}


def dumps(graph: Graph) -> str:
    """The canonical snapshot text of `graph` (ends with a newline)."""
    order = {node.id: i for i, node in enumerate(graph.nodes)}
    edges = sorted(graph.edges, key=lambda e: (order[e.target], order[e.source]))
    sections = {
        "modules": [_line(_module_doc(m)) for m in graph.modules.values()],
        "nodes": [_line(_node_doc(n)) for n in graph.nodes],
        "edges": [_line(_edge_doc(e)) for e in edges],
    }
    head: dict[str, Any] = {"format": FORMAT, "version": VERSION, "meta": dict(graph.meta)}
    parts = []
    for key in sorted([*head, *sections]):
        if key in head:
            parts.append(
                f"{json.dumps(key)}: {_line(head[key]) if key == 'meta' else json.dumps(head[key])}"
            )
        else:
            rows = sections[key]
            body = ",\n".join(rows)
            parts.append(f"{json.dumps(key)}: [\n{body}\n]" if rows else f"{json.dumps(key)}: []")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def save(graph: Graph, path: str | os.PathLike[str]) -> Path:
    """Write `graph` to `path` atomically as a snapshot; return the path."""
    return atomic_write(path, dumps(graph))


# --- reading ---------------------------------------------------------------------------------


def loads(text: str | bytes, source: str = "snapshot") -> Graph:
    """Parse and validate snapshot text; raise `SnapshotError` with one clear line on any fault.

    The text is untrusted: it is read within the limits of `nnviz.untrusted` (size, nesting,
    string length, strict UTF-8) and nothing named in it is ever imported or executed.
    """
    with gc_paused():
        doc = untrusted.document(
            text, source, SnapshotError, format=FORMAT, noun="graph snapshot", reads=READS
        )
        try:
            graph = _plain_graph(doc)
        except ValueError as exc:
            raise SnapshotError(f"{source}: {exc}") from None
        return graph if graph is not None else _validated_graph(doc, source)


def _validated_graph(doc: Mapping[str, Any], source: str) -> Graph:
    """The document through the pydantic schema: coerces what the schema allows and names the
    first fault precisely (`nodes[3].kind: Input should be ...`)."""
    from nnviz.snapshot_schema import SnapshotV4

    snap = untrusted.read_document(
        doc, source, SnapshotError, SnapshotV4, format=FORMAT, noun="graph snapshot", reads=READS
    )
    meta = snap.meta if snap.version == VERSION else {**snap.meta, MIGRATED: snap.version}
    try:
        return Graph(
            nodes=[
                Node(n.id, n.kind, n.op, n.scope, n.module, n.args, n.spec, n.meta, _cost(n.cost))
                for n in snap.nodes
            ],
            edges=[Edge(e.source, e.target, tuple(e.slots)) for e in snap.edges],
            modules=[
                Module(
                    m.path,
                    m.cls,
                    m.params,
                    m.hparams,
                    {k: tuple(v) for k, v in m.parameters.items()},
                    tuple(m.bases),
                    m.ties,
                    {k: tuple(v) for k, v in m.buffers.items()},
                    m.dtypes,
                    m.extra_state,
                )
                for m in snap.modules
            ],
            meta=meta,
        )
    except ValueError as exc:
        raise SnapshotError(f"{source}: {exc}") from None


def _cost(cost: Any) -> dict[str, Any] | None:
    return None if cost is None else cost.model_dump(exclude_defaults=True) | {"macs": cost.macs}


_TOP = frozenset({"format", "version", "meta", "modules", "nodes", "edges"})
_MODULE = frozenset(
    {"path", "class", "params", "hparams", "parameters", "bases", "ties", "buffers", "dtypes"}
    | {"extra_state"}
)
_NODE = frozenset({"id", "kind", "op", "scope", "module", "args", "spec", "meta", "cost"})
_EDGE = frozenset({"source", "target", "slots"})


def _plain_graph(doc: Mapping[str, Any]) -> Graph | None:
    """The graph of a document in the exact form `dumps` writes, checked field by field without
    pydantic (whose import alone costs more than loading a large snapshot); None for anything
    else, which `_validated_graph` then accepts, coerces or names the fault of. Never accepts
    what the schema refuses."""
    meta, sections = doc.get("meta", {}), [doc.get(k) for k in ("modules", "nodes", "edges")]
    if not doc.keys() <= _TOP or not isinstance(meta, dict):
        return None
    if not all(isinstance(section, list) for section in sections):
        return None
    if doc.get("version") != VERSION:
        return None  # older versions are marked as migrated by the schema path
    modules, nodes, edges = sections
    assert isinstance(modules, list) and isinstance(nodes, list) and isinstance(edges, list)
    if not (
        all(_plain_module(m) for m in modules)
        and all(_plain_node(n) for n in nodes)
        and all(_plain_edge(e) for e in edges)
    ):
        return None
    return Graph(
        nodes=[
            assemble(
                Node,
                {
                    "id": n["id"],
                    "kind": n["kind"],
                    "op": n["op"],
                    "scope": n.get("scope", ""),
                    "module": n.get("module"),
                    "args": n.get("args", {}),
                    "spec": n.get("spec"),
                    "meta": n.get("meta", {}),
                    "cost": n.get("cost"),
                },
                NODE_FROZEN,
            )
            for n in nodes
        ],
        edges=[
            assemble(
                Edge,
                {"source": e["source"], "target": e["target"], "slots": tuple(e.get("slots", ()))},
            )
            for e in edges
        ],
        modules=[
            assemble(
                Module,
                {
                    "path": m["path"],
                    "cls": m["class"],
                    "params": m.get("params", 0),
                    "hparams": m.get("hparams", {}),
                    "parameters": {k: tuple(v) for k, v in m.get("parameters", {}).items()},
                    "bases": tuple(m.get("bases", ())),
                    "ties": m.get("ties", {}),
                    "buffers": {k: tuple(v) for k, v in m.get("buffers", {}).items()},
                    "dtypes": m.get("dtypes", {}),
                    "extra_state": m.get("extra_state", False),
                },
                MODULE_FROZEN,
            )
            for m in modules
        ],
        meta=meta,
    )


def _is(value: Any, kind: type) -> bool:
    return type(value) is kind


def _plain_module(m: Any) -> bool:
    return (
        _is(m, dict)
        and m.keys() <= _MODULE
        and _is(m.get("path"), str)
        and _is(m.get("class"), str)
        and _is(m.get("params", 0), int)
        and m.get("params", 0) >= 0
        and _is(m.get("hparams", {}), dict)
        and all(_shapes(m.get(key, {})) for key in ("parameters", "buffers"))
        and _is(m.get("bases", []), list)
        and all(_is(base, str) for base in m.get("bases", []))
        and _is(m.get("ties", {}), dict)
        and all(_is(tie, str) for tie in m.get("ties", {}).values())
        and _is(m.get("dtypes", {}), dict)
        and all(_is(dtype, str) for dtype in m.get("dtypes", {}).values())
        and _is(m.get("extra_state", False), bool)
    )


def _shapes(value: Any) -> bool:
    return _is(value, dict) and all(
        _is(shape, list) and all(_is(d, int) for d in shape) for shape in value.values()
    )


def _plain_node(n: Any) -> bool:
    if type(n) is not dict or not n.keys() <= _NODE:
        return False
    module, cost = n.get("module"), n.get("cost")
    return (
        type(n.get("id")) is str
        and n["id"] != ""
        and n.get("kind") in NODE_KINDS
        and type(n.get("op")) is str
        and type(n.get("scope", "")) is str
        and (module is None or type(module) is str)
        and type(n.get("args", {})) is dict
        and type(n.get("meta", {})) is dict
        and (cost is None or _plain_cost(cost))
    )


def _plain_cost(cost: Any) -> bool:
    if not _is(cost, dict):
        return False
    uncounted = cost.get("uncounted", {})
    return (
        cost.keys() <= {"macs", "out_bytes", "uncounted"}
        and all(_is(cost.get(k, 0), int) and cost.get(k, 0) >= 0 for k in ("macs", "out_bytes"))
        and _is(uncounted, dict)
        and all(_is(n, int) and n > 0 for n in uncounted.values())
    )


def _plain_edge(e: Any) -> bool:
    if type(e) is not dict or not e.keys() <= _EDGE:
        return False
    slots = e.get("slots", [])
    return (
        type(e.get("source")) is str
        and type(e.get("target")) is str
        and type(slots) is list
        and all(type(slot) is str for slot in slots)
    )


def load(path: str | os.PathLike[str]) -> Graph:
    """Read and validate the snapshot at `path`."""
    return loads(untrusted.read_bytes(path, SnapshotError), source=str(path))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the current format, as shipped in `SCHEMA_PATH`."""
    from nnviz.snapshot_schema import SnapshotV4

    schema = SnapshotV4.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://nnviz.dev/schema/snapshot-v{VERSION}.schema.json"
    return schema
