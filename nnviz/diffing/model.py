"""The structural architecture diff: what changed between two graphs, node by node.

`diff(old, new)` matches the two graphs (`nnviz.diffing.matching`), then compares every pair on what
defines the architecture: the op or module class, the module's hyperparameters and own parameter
shapes, the constant arguments, the incoming connections (each argument slot's source, named
through the matching) and, when both sides were traced with inputs, the output spec. Weights,
`Node.meta`, graph metadata and library versions never count; `ignore` drops more fields.

The result, `GraphDiff`, lists one entry per node of the union graph (data-flow nodes, and the
module-tree entries that are not themselves a call node, such as containers): its union name
(the new name, or the old one for a removed entry), status and changes. A change that is only the
consequence of another one (a shape that follows an upstream change, an input slot rewired by an
inserted or deleted node) carries a `cause`: the name of the root-cause entry it is folded under.
`GraphDiff.to_json()` is the versioned document described in `docs/diff-format.md`; the text and
markdown renderings are built from that document by `nnviz.diffing.changelog`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from nnviz.diffing.matching import Matching, match
from nnviz.graph import Graph, Module, Node, parent_path
from nnviz.values import Value

FORMAT = "nnviz-diff"
VERSION = 2
READS = (1, 2)
"""Document versions the renderings read (version 1 has no `info`: every change is drift)."""
Status = Literal["added", "removed", "changed", "renamed", "unchanged"]
STATUSES: tuple[Status, ...] = ("changed", "added", "removed", "renamed", "unchanged")


class _Absent:
    """Marks the side of a change where the field does not exist (an hparam added, ...)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class Change:
    """One field's `old` and `new` value (`ABSENT` where a side lacks the field)."""

    old: Value
    new: Value
    cause: str | None = None
    """Name of the entry whose change this one merely follows; None for a root cause."""
    info: str | None = None
    """Why this change is not drift, when it is not: `plumbing` (scalar shape arithmetic),
    `attribute` (a container's attribute that changes nothing below it); None for drift."""
    note: str | None = None
    """A short explanation shown after the change (`a subclass; same settings`)."""

    @property
    def propagated(self) -> bool:
        return self.cause is not None

    def to_json(self) -> dict[str, Value]:
        doc: dict[str, Value] = {}
        if self.old is not ABSENT:
            doc["old"] = self.old
        if self.new is not ABSENT:
            doc["new"] = self.new
        if self.cause is not None:
            doc["propagated"] = True
            doc["cause"] = self.cause
        if self.info is not None:
            doc["info"] = self.info
        if self.note is not None:
            doc["note"] = self.note
        return doc


@dataclass(frozen=True)
class NodeDiff:
    """One entry of the union graph."""

    name: str
    """The new node id or module path; the old one for a removed entry."""
    kind: str
    path: str | None
    """The module's qualified name for a module entry; None for other kinds."""
    scope: str
    """Union name of the enclosing module."""
    status: Status
    changes: Mapping[str, Change]
    renamed_from: str | None
    op: str
    """Module class or op (the new side's, else the old side's)."""
    params: int | None
    """Parameters of the module and its children, for module entries."""
    flow: bool
    """Whether the entry is a data-flow node (else a module-tree entry only, e.g. a container)."""
    old_name: str | None
    """The name on the old side (None when added)."""
    info: str | None = None
    """Why this entry's difference is not drift (`plumbing`, `attribute`), or None."""

    @property
    def propagated(self) -> bool:
        """Whether every change of this entry is only the consequence of another one."""
        return bool(self.changes) and all(c.propagated for c in self.changes.values())

    @property
    def drifted(self) -> bool:
        """Whether this entry differs in the architecture (not only in information)."""
        return self.status != "unchanged" and self.info is None

    def to_json(self) -> dict[str, Value]:
        return {
            "name": self.name,
            "kind": self.kind,
            "path": self.path,
            "scope": self.scope,
            "status": self.status,
            "changes": {k: c.to_json() for k, c in self.changes.items()},
            "renamed_from": self.renamed_from,
            "op": self.op,
            "params": self.params,
            "flow": self.flow,
            **({"info": self.info} if self.info is not None else {}),
        }


@dataclass(frozen=True)
class EdgeDiff:
    """A union edge, named by union node names."""

    source: str
    target: str
    status: Status

    def to_json(self) -> dict[str, Value]:
        return {"source": self.source, "target": self.target, "status": self.status}


@dataclass(frozen=True, eq=False)
class GraphDiff:
    """What changed between `old` and `new` (both kept for drawing the union graph)."""

    old: Graph
    new: Graph
    entries: tuple[NodeDiff, ...]
    edges: tuple[EdgeDiff, ...]
    matching: Matching
    ignore: tuple[str, ...] = ()
    strict: bool = False
    """Whether information (scalar plumbing, attribute-only changes) counts as drift."""

    @property
    def identical(self) -> bool:
        """True when nothing drifted: no entry changed, or (unless `strict`) every difference is
        information only (scalar plumbing, a container attribute that changes nothing below)."""
        if self.strict:
            return all(e.status == "unchanged" for e in self.entries)
        return not any(e.drifted for e in self.entries)

    def __bool__(self) -> bool:
        """True when the architectures differ."""
        return not self.identical

    def __iter__(self) -> Iterator[NodeDiff]:
        """The added, removed, changed and renamed entries, in union order."""
        return (e for e in self.entries if e.status != "unchanged")

    def entry(self, name: str) -> NodeDiff:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(name)

    @property
    def summary(self) -> dict[str, Any]:
        """Counts per status, `propagated` (changed entries that only follow another change),
        node counts and parameters before/after/delta."""
        counts: dict[str, Any] = dict.fromkeys(STATUSES, 0)
        for e in self.entries:
            counts[e.status] += 1
        counts["propagated"] = sum(1 for e in self.entries if e.propagated)
        info: dict[str, int] = {}
        for e in self.entries:
            for kind in _info_kinds(e):
                info[kind] = info.get(kind, 0) + 1
        counts["info"] = info
        counts["nodes"] = {"old": len(self.old), "new": len(self.new)}
        old_p, new_p = self.old.total_params, self.new.total_params
        counts["params"] = {"old": old_p, "new": new_p, "delta": new_p - old_p}
        return counts

    def to_json(self) -> dict[str, Any]:
        """The `nnviz-diff` document (see docs/diff-format.md)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "identical": self.identical,
            "strict": self.strict,
            "summary": self.summary,
            "old": _side(self.old),
            "new": _side(self.new),
            "ignore": list(self.ignore),
            "nodes": [e.to_json() for e in self.entries],
            "edges": [e.to_json() for e in self.edges],
        }

    def to_text(self) -> str:
        """The review changelog (`nnviz.diffing.changelog.changelog` of `to_json()`)."""
        from nnviz.diffing.changelog import changelog

        return changelog(self.to_json())

    def to_markdown(self) -> str:
        """Summary table, changelog and Mermaid flowchart (`nnviz.diffing.changelog.markdown`)."""
        from nnviz.diffing.changelog import markdown

        return markdown(self.to_json())

    def _repr_html_(self) -> str | None:
        """Inline display in Jupyter: the interactive diff page (changelog links, statuses,
        folding) in a sandboxed frame; None when too large to inline."""
        from nnviz.render.output import notebook_html  # lazy: rendering sits two floors up

        return notebook_html(self)


def _side(graph: Graph) -> dict[str, Any]:
    return {
        "name": graph.name,
        "nodes": len(graph),
        "modules": len(graph.modules),
        "params": graph.total_params,
        "traced_with_data": graph.traced_with_data,
    }


def _info_kinds(e: NodeDiff) -> list[str]:
    """The kinds of information-only differences an entry has (each counted once)."""
    if e.info is not None:
        return [e.info]
    return list(dict.fromkeys(c.info for c in e.changes.values() if c.info is not None))


def diff(
    old: Graph, new: Graph, ignore: tuple[str, ...] | list[str] = (), strict: bool = False
) -> GraphDiff:
    """Compare two graphs. `ignore` names change fields to drop: a whole field (`spec`,
    `inputs`, `hparams`) or one of its keys (`hparams.eps`, or just `eps`). With `strict`,
    information-only differences (scalar plumbing, attribute-only changes) count as drift."""
    from nnviz.diffing.build import build  # diffbuild builds this module's values: import it late

    matching = match(old, new)
    entries, edges = build(old, new, matching, tuple(ignore))
    return GraphDiff(old, new, entries, edges, matching, tuple(ignore), strict)


def module_changes(a: Module, b: Module) -> dict[str, Change]:
    """Class, hyperparameter and own-parameter-shape differences of two module entries."""
    changes: dict[str, Change] = {}
    if a.cls == b.cls and a.hparams == b.hparams and a.parameters == b.parameters:
        return changes
    if a.cls != b.cls:
        changes["class"] = Change(a.cls, b.cls)
    for key in _keys(a.hparams, b.hparams):
        old, new = a.hparams.get(key, ABSENT), b.hparams.get(key, ABSENT)
        if old != new:
            changes[f"hparams.{key}"] = Change(old, new)
    for key in _keys(a.parameters, b.parameters):
        pa, pb = a.parameters.get(key), b.parameters.get(key)
        if pa != pb:
            changes[f"parameters.{key}"] = Change(
                ABSENT if pa is None else list(pa), ABSENT if pb is None else list(pb)
            )
    return changes


def node_changes(a: Node, b: Node, specs: bool) -> dict[str, Change]:
    """Kind, op, constant-argument and (with `specs`) output-spec differences of two nodes."""
    changes: dict[str, Change] = {}
    if a.kind == b.kind and a.op == b.op and a.args == b.args and (not specs or a.spec == b.spec):
        return changes
    if a.kind != b.kind:
        changes["kind"] = Change(a.kind, b.kind)
    if a.op != b.op and "module" not in (a.kind, b.kind):
        changes["op"] = Change(a.op, b.op)
    for key in _keys(a.args, b.args):
        old, new = a.args.get(key, ABSENT), b.args.get(key, ABSENT)
        if old != new:
            changes[f"args.{key}"] = Change(old, new)
    if specs and a.spec != b.spec:
        changes["spec"] = Change(a.spec, b.spec)
    return changes


def _keys(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Both sides' keys in one order whatever the source (snapshots store keys sorted)."""
    return sorted({*a, *b}, key=lambda k: (not k.isdecimal(), int(k) if k.isdecimal() else 0, k))


def ignored(key: str, ignore: tuple[str, ...]) -> bool:
    """Whether change field `key` is dropped by one of the `ignore` names."""
    return any(key == f or key.startswith(f + ".") or key.endswith("." + f) for f in ignore)


def fold_root(name: str, entries: Mapping[str, tuple[str, str | None, str | None]]) -> str:
    """The topmost enclosing module entry with the same added/removed status as `name`.

    `entries` maps a name to (status, enclosing module's name or None, module path or None);
    `nnviz.diffing.changelog` calls this on the JSON document, `diff` on its own entries.
    """
    status = entries[name][0]
    if status not in ("added", "removed"):
        return name
    root, current = name, name
    seen = {name}
    while True:
        _, scope, path = entries[current]
        up = path if path is not None and path != current and path in entries else scope
        if up is None or up not in entries or up in seen or entries[up][0] != status:
            return root
        seen.add(up)
        root = current = up


def module_parent(path: str, matching: Matching) -> str | None:
    """Union name of the parent of an old module path."""
    parent = parent_path(path)
    return None if parent is None else matching.modules.get(parent, parent)
