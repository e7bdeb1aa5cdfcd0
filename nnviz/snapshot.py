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
from types import MappingProxyType
from typing import Any

from nnviz import untrusted
from nnviz.collector import gc_paused
from nnviz.errors import SnapshotError
from nnviz.fs import atomic_write
from nnviz.graph import NODE_KINDS, Edge, Graph, Module, Node

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

    The text is untrusted: it is read within the limits of `nnviz.untrusted` (size: see
    `untrusted.snapshot_limit`; nesting, string length, strict UTF-8) and nothing named in it is
    ever imported or executed.
    """
    with gc_paused():
        limit = untrusted.snapshot_limit(SnapshotError)
        printable = isinstance(text, bytes) and not _escapes(text)
        # What `dumps` wrote is read without `untrusted.parse`'s walk over every value: the
        # makers check each value's type, `untrusted.bounded` the rest. When unsure, as always.
        quick = untrusted.quick(text, limit)
        graph = None if quick is None else _graph(quick, source, printable, [])
        if graph is None:
            doc = untrusted.document(
                text,
                source,
                SnapshotError,
                format=FORMAT,
                noun="graph snapshot",
                reads=READS,
                max_bytes=limit,
                advice=untrusted.SNAPSHOT_ADVICE,
                decoded=quick,
            )
            graph = _graph(doc, source, printable)
            if graph is None:
                graph = _validated_graph(doc, source)
        return graph


def _graph(doc: Any, source: str, printable: bool, loose: list[Any] | None = None) -> Graph | None:
    """`_plain_graph`, a graph that cannot be (an edge to no node) refused as `SnapshotError`."""
    try:
        return _plain_graph(doc, printable, loose)
    except ValueError as exc:
        raise SnapshotError(f"{source}: {exc}") from None


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
    """A node's cost as written (as the fast reader keeps it): `{}` stays `{}`, an `out_bytes`
    of 0 stays, so a graph is the same whichever reader read it (readers use `.get(k, 0)`)."""
    return None if cost is None else cost.model_dump(exclude_unset=True)


_TOP = frozenset({"format", "version", "meta", "modules", "nodes", "edges"})
_MODULE = frozenset(
    {"path", "class", "params", "hparams", "parameters", "bases", "ties", "buffers", "dtypes"}
    | {"extra_state"}
)
_NODE = frozenset({"id", "kind", "op", "scope", "module", "args", "spec", "meta", "cost"})


def _escapes(data: bytes) -> bool:
    """Whether the text may hold a control character in a string: an escape (`\\n`, `\\u001b`),
    or a C1 control, U+2028 or U+2029 written as itself (their UTF-8 lead bytes). A few C-speed
    scans of the bytes (4 ms for 28 MB); a graph without any is `Graph.printable`. The two-byte
    search (50 ms alone: no memchr) runs only where a byte 0xE2 is."""
    single = any(mark in data for mark in (b"\\", b"\x7f", b"\xc2"))
    return single or (b"\xe2" in data and b"\xe2\x80" in data)


def _plain_graph(doc: Any, printable: bool = False, loose: list[Any] | None = None) -> Graph | None:
    """The graph of a document in the exact form `dumps` writes, checked field by field without
    pydantic (whose import alone costs more than loading a large snapshot); None for anything
    else, which `_validated_graph` then accepts, coerces or names the fault of. Never accepts
    what the schema refuses. With `loose`, `doc` is `untrusted.quick`'s: its format and version
    are checked here, and the values the makers take unchecked (`loose`) by `untrusted.bounded`;
    None for any doubt."""
    if type(doc) is not dict or not doc.keys() <= _TOP:
        return None
    meta, sections = doc.get("meta", {}), [doc.get(k) for k in ("modules", "nodes", "edges")]
    if not isinstance(meta, dict) or not all(type(section) is list for section in sections):
        return None
    version = doc.get("version")
    if type(version) is not int or version != VERSION:
        return None  # older versions are marked as migrated by the schema path
    if loose is not None and doc.get("format") != FORMAT:
        return None
    unchecked = [] if loose is None else loose
    modules = _modules(sections[0], unchecked)
    nodes = _nodes(sections[1], unchecked)
    edges = _edges(sections[2], unchecked)
    if modules is None or nodes is None or edges is None:
        return None
    if loose is not None and not (untrusted.bounded([meta], 2) and untrusted.bounded(loose, 4)):
        return None  # in a record (level 3), a field's value is at level 4
    return Graph(nodes=nodes, edges=edges, modules=modules, meta=meta, printable=printable)


# Each maker checks the records of one section (exact JSON types, as `json.loads` returns them)
# and builds them in the same pass, or returns None. Records are made as `assemble` makes them (no
# `__init__`, no `__post_init__` copies: the JSON's own dicts become the read-only mappings, which
# nobody else holds), absent or empty mappings sharing one empty read-only mapping: two thirds of
# building a 100,000-node graph. `tests/unit/test_snapshot.py` holds them equal to the constructors.
# Values they take without checking their type go to `loose` (see `_plain_graph`).
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_NONE: dict[str, Any] = {}  # the default of an absent mapping (read, never written)
_NO_LIST: list[str] = []
# every field of a record in the constructor's order, as a record lacking every optional one has it
_MODULE_DEFAULTS = {"path": "", "cls": "", "params": 0, "hparams": _EMPTY, "parameters": _EMPTY}
_MODULE_DEFAULTS |= {"bases": (), "ties": _EMPTY, "buffers": _EMPTY, "dtypes": _EMPTY}
_MODULE_DEFAULTS["extra_state"] = False
_NODE_DEFAULTS = {"id": "", "kind": "", "op": "", "scope": "", "module": None, "args": _EMPTY}
_NODE_DEFAULTS |= {"spec": None, "meta": _EMPTY, "cost": None}


def _modules(
    items: Any, loose: list[Any], new: Any = object.__new__, frozen: Any = MappingProxyType
) -> list[Module] | None:
    out: list[Module] = []
    for m in items:
        if type(m) is not dict:
            return None
        get = m.get
        path, cls, params = get("path"), get("class"), get("params", 0)
        hparams, extra_state = get("hparams", _NONE), get("extra_state", False)
        if not (
            type(path) is str
            and type(cls) is str
            and type(params) is int
            and params >= 0
            and type(hparams) is dict
            and type(extra_state) is bool
        ):
            return None
        record: Module = new(Module)
        out.append(record)
        fields = record.__dict__
        fields.update(_MODULE_DEFAULTS)
        fields["path"], fields["cls"], fields["params"] = path, cls, params
        if hparams:
            loose.append(hparams)
            fields["hparams"] = frozen(hparams)
        if len(m) == 2 + ("params" in m) + (hparams is not _NONE):
            continue  # no other key: most modules (activations, containers, most layers)
        bases, ties, dtypes = get("bases", _NO_LIST), get("ties", _NONE), get("dtypes", _NONE)
        parameters, buffers = get("parameters", _NONE), get("buffers", _NONE)
        if not (
            m.keys() <= _MODULE
            and (parameters is _NONE or _shapes(parameters))
            and (buffers is _NONE or _shapes(buffers))
            and (bases is _NO_LIST or (type(bases) is list and all(type(b) is str for b in bases)))
            and (ties is _NONE or _strings(ties))
            and (dtypes is _NONE or _strings(dtypes))
        ):
            return None
        if parameters:
            fields["parameters"] = frozen({k: tuple(v) for k, v in parameters.items()})
        if buffers:
            fields["buffers"] = frozen({k: tuple(v) for k, v in buffers.items()})
        fields["bases"], fields["extra_state"] = tuple(bases), extra_state
        if ties:
            fields["ties"] = frozen(ties)
        if dtypes:
            fields["dtypes"] = frozen(dtypes)
    return out


def _shapes(value: Any) -> bool:
    return type(value) is dict and all(
        type(shape) is list and all(type(d) is int for d in shape) for shape in value.values()
    )


def _strings(value: Any) -> bool:
    return type(value) is dict and all(type(v) is str for v in value.values())


def _nodes(
    items: Any, loose: list[Any], new: Any = object.__new__, frozen: Any = MappingProxyType
) -> list[Node] | None:
    out: list[Node] = []
    for n in items:
        if type(n) is not dict or not n.keys() <= _NODE:
            return None
        get = n.get
        node_id, kind, op, scope = get("id"), get("kind"), get("op"), get("scope", "")
        module, args, meta, cost = (
            get("module"),
            get("args", _NONE),
            get("meta", _NONE),
            get("cost"),
        )
        spec = get("spec")
        if not (
            type(node_id) is str
            and node_id != ""
            and kind in NODE_KINDS
            and type(op) is str
            and type(scope) is str
            and (module is None or type(module) is str)
            and type(args) is dict
            and type(meta) is dict
            and (cost is None or _plain_cost(cost))
        ):
            return None
        record: Node = new(Node)
        out.append(record)
        fields = record.__dict__
        fields.update(_NODE_DEFAULTS)
        fields["id"], fields["kind"], fields["op"], fields["scope"] = node_id, kind, op, scope
        fields["module"] = module
        if args or meta or spec is not None:
            loose += (args, meta, spec)
            fields["spec"] = spec
            if args:
                fields["args"] = frozen(args)
            if meta:
                fields["meta"] = frozen(meta)
        if cost is not None:
            fields["cost"] = frozen(cost)
    return out


def _plain_cost(cost: Any) -> bool:
    if type(cost) is not dict:
        return False
    uncounted = cost.get("uncounted", _NONE)
    return (
        cost.keys() <= {"macs", "out_bytes", "uncounted"}
        and all(type(n := cost.get(k, 0)) is int and n >= 0 for k in ("macs", "out_bytes"))
        and type(uncounted) is dict
        and all(type(n) is int and n > 0 for n in uncounted.values())
    )


def _edges(items: Any, loose: list[Any], new: Any = object.__new__) -> list[Edge] | None:
    out: list[Edge] = []
    for e in items:
        if type(e) is not dict:
            return None
        source, target, slots = e.get("source"), e.get("target"), e.get("slots", _NO_LIST)
        if type(source) is not str or type(target) is not str or type(slots) is not list:
            return None
        if len(e) != (2 if slots is _NO_LIST else 3):  # a key besides these three
            return None
        for slot in slots:
            if type(slot) is not str:
                return None
        record: Edge = new(Edge)
        record.__dict__.update(source=source, target=target, slots=tuple(slots))
        out.append(record)
    return out


def load(path: str | os.PathLike[str]) -> Graph:
    """Read and validate the snapshot at `path`."""
    limit = untrusted.snapshot_limit(SnapshotError)
    data = untrusted.read_bytes(
        path, SnapshotError, max_bytes=limit, advice=untrusted.SNAPSHOT_ADVICE
    )
    return loads(data, source=str(path))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the current format, as shipped in `SCHEMA_PATH`."""
    from nnviz.snapshot_schema import SnapshotV4

    schema = SnapshotV4.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://nnviz.dev/schema/snapshot-v{VERSION}.schema.json"
    return schema
