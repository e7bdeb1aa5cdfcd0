"""The snapshot codec: a `Graph` as canonical, versioned, diff-friendly JSON, and back.

The text is valid JSON laid out for git: top-level keys sorted, then one line per module, node and
edge (each a compact JSON object with sorted keys), so a changed layer is a one-line diff. The same
graph always gives the same bytes. Loading validates the document against the schema (pydantic
models below; the JSON Schema shipped as `nnviz/schema/snapshot-v2.schema.json` is generated from
them), never imports torch, and never executes anything named in the file.
See `docs/snapshot-format.md`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from nnviz import untrusted
from nnviz.errors import SnapshotError
from nnviz.fs import atomic_write
from nnviz.graph import Edge, Graph, Module, Node

FORMAT = "nnviz-graph"
VERSION = 2
READS = (1, 2)
"""Versions read: version 1 lacks what 2 added (module bases, inherited hyperparameters, input
defaults) and reads as is, with `meta[MIGRATED]` saying so."""
MIGRATED = "migrated_from"
SCHEMA_PATH = Path(__file__).parent / "schema" / f"snapshot-v{VERSION}.schema.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ModuleV2(_Strict):
    """A module tree entry."""

    path: str = Field(description="Qualified name as in named_modules(); '' is the root.")
    cls: str = Field(alias="class", description="Qualified class name.")
    params: int = Field(0, ge=0, description="Parameters of this module and its children.")
    hparams: dict[str, JsonValue] = Field(default_factory=dict, description="Hyperparameters.")
    parameters: dict[str, list[int]] = Field(
        default_factory=dict, description="Shapes of the module's own parameters."
    )
    bases: list[str] = Field(
        default_factory=list,
        description="Public module classes the class derives from, nearest first.",
    )


class NodeV2(_Strict):
    """A data-flow node."""

    id: str = Field(min_length=1, description="Structural id, unique in the graph.")
    kind: Literal["input", "output", "module", "function", "method"]
    op: str = Field(description="Module class, qualified function, method name or input name.")
    scope: str = Field("", description="Path of the enclosing module.")
    module: str | None = Field(None, description="Called module's path, for module nodes.")
    args: dict[str, JsonValue] = Field(default_factory=dict, description="Constant arguments.")
    spec: JsonValue = Field(None, description="Output spec when traced with data.")
    meta: dict[str, JsonValue] = Field(default_factory=dict, description="Cosmetic data.")


class EdgeV2(_Strict):
    """A data-flow edge."""

    source: str
    target: str
    slots: list[str] = Field(default_factory=list, description="Argument slots fed.")


class SnapshotV2(_Strict):
    """A whole snapshot document, format version 2 (version 1 documents validate too)."""

    format: Literal["nnviz-graph"]
    version: Literal[1, 2]
    meta: dict[str, JsonValue] = Field(default_factory=dict)
    modules: list[ModuleV2]
    nodes: list[NodeV2]
    edges: list[EdgeV2]


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
    snap = untrusted.read_document(
        text,
        source,
        SnapshotError,
        SnapshotV2,
        format=FORMAT,
        noun="graph snapshot",
        reads=READS,
    )
    meta = snap.meta if snap.version == VERSION else {**snap.meta, MIGRATED: snap.version}
    try:
        return Graph(
            nodes=[
                Node(n.id, n.kind, n.op, n.scope, n.module, n.args, n.spec, n.meta)
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
                )
                for m in snap.modules
            ],
            meta=meta,
        )
    except ValueError as exc:
        raise SnapshotError(f"{source}: {exc}") from None


def load(path: str | os.PathLike[str]) -> Graph:
    """Read and validate the snapshot at `path`."""
    return loads(untrusted.read_bytes(path, SnapshotError), source=str(path))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the current format, as shipped in `SCHEMA_PATH`."""
    schema = SnapshotV2.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://nnviz.dev/schema/snapshot-v{VERSION}.schema.json"
    return schema
