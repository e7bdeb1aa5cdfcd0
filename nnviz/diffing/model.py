"""The diff's values: `Change`, `NodeDiff`, `EdgeDiff` and `GraphDiff`, frozen.

`GraphDiff` (made by `nnviz.diffing.build.diff`) lists one entry per node of the union graph
(data-flow nodes, and the module-tree entries that are not themselves a call node, such as
containers): its union name (the new name, or the old one for a removed entry), status and
changes; a change that only follows another one names that one as its `cause`.
`GraphDiff.to_dict()` is the versioned document described in `docs/diff-format.md`; the text and
markdown renderings are built from that document by `nnviz.diffing.changelog`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nnviz.diffing.changelog import markdown_of, text_of, to_json, totals
from nnviz.diffing.checkpoint import Verdict
from nnviz.diffing.cost import CostDiff, EntryCosts
from nnviz.diffing.document import FORMAT, VERSION, Status, read
from nnviz.diffing.entries import changelog_of as entries_changelog
from nnviz.diffing.exportability import ExportChange, compare
from nnviz.diffing.matching import Matching
from nnviz.diffing.records import ABSENT, Changelog
from nnviz.graph import Graph
from nnviz.values import Value


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
    relation: str | None = None
    """For a class change: how the two classes relate (`a subclass`, `same settings`)."""
    settings: tuple[tuple[str, Value], ...] | None = None
    """For a class change: the settings only one of the two classes has, in `note` as
    `in_channels=3` (new class only) or `no bias` (old only: `ABSENT` as the value)."""

    @property
    def propagated(self) -> bool:
        return self.cause is not None

    def to_dict(self) -> dict[str, Value]:
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
        if self.settings is not None:
            doc["settings"] = [[k] if v is ABSENT else [k, v] for k, v in self.settings]
            if self.relation is not None:
                doc["relation"] = self.relation
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

    def to_dict(self) -> dict[str, Value]:
        changes = self.changes
        out: dict[str, Value] = {
            "name": self.name,
            "kind": self.kind,
            "path": self.path,
            "scope": self.scope,
            "status": self.status,
            "changes": {k: c.to_dict() for k, c in changes.items()} if changes else {},
            "renamed_from": self.renamed_from,
            "op": self.op,
            "params": self.params,
            "flow": self.flow,
        }
        if self.info is not None:
            out["info"] = self.info
        return out


@dataclass(frozen=True)
class EdgeDiff:
    """A union edge, named by union node names."""

    source: str
    target: str
    status: Status

    def to_dict(self) -> dict[str, Value]:
        return {"source": self.source, "target": self.target, "status": self.status}


@dataclass(frozen=True, eq=False, repr=False)
class GraphDiff:
    """What changed between `old` and `new` (both kept for drawing the union graph)."""

    old: Graph
    new: Graph
    entries: tuple[NodeDiff, ...]
    edges: Sequence[EdgeDiff]
    """The union edges, named by union names (made when first read)."""
    matching: Matching
    ignore: tuple[str, ...] = ()
    strict: bool = False
    """Whether information (scalar plumbing, attribute-only changes) counts as drift."""
    checkpoint: Verdict | None = None
    """Whether the old side's checkpoints load into the new side (`nnviz.diffing.checkpoint`)."""

    @property
    def identical(self) -> bool:
        """True when nothing drifted: no entry changed, or (unless `strict`) every difference is
        information only (scalar plumbing, a container attribute that changes nothing below)."""
        if self.export is not None and self.export.drifted:
            return False
        if self.strict:
            return all(e.status == "unchanged" for e in self.entries)
        return not any(e.drifted for e in self.entries)

    @property
    def export(self) -> ExportChange | None:
        """Exportability on both sides (`nnviz.diffing.exportability`); None when neither side
        recorded it."""
        return compare(self.old, self.new)

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

    @functools.cached_property
    def summary(self) -> dict[str, Any]:
        """The changelog's counts (`Changelog.tally`: entries per status as its totals line
        counts them, `propagated` the changes that only follow another), the information
        counts per kind, node counts and parameters before/after/delta: the numbers every
        rendering of the diff shows."""
        return {**self.changelog().tally, **self._facts()}

    def _facts(self) -> dict[str, Any]:
        """The summary's counts that need no changelog: information, nodes, parameters."""
        info: dict[str, int] = {}
        for e in self.entries:
            if e.info is not None or e.changes:  # most entries of a large diff: neither
                for kind in _info_kinds(e):
                    info[kind] = info.get(kind, 0) + 1
        old_p, new_p = self.old.total_params, self.new.total_params
        return {
            "info": info,
            "nodes": {"old": len(self.old), "new": len(self.new)},
            "params": {"old": old_p, "new": new_p, "delta": new_p - old_p},
        }

    @property
    def cost(self) -> CostDiff:
        """Both sides' compute and activation totals (`nnviz.diffing.cost`)."""
        return CostDiff.of(self.old, self.new)

    def to_dict(self) -> dict[str, Any]:
        """The `nnviz-diff` document (see docs/diff-format.md), with its changelog's records."""
        log = self.changelog()
        doc = dict(self._document())
        doc["summary"] = {**log.tally, **doc["summary"]}  # the counts its renderings show
        return doc | {"changelog": to_json(log)}

    def changelog(self, verbose: bool = False) -> Changelog:
        """The changelog's records (`nnviz.diffing.records`), which every rendering renders."""
        return self._changelog if not verbose else entries_changelog(self._readable, verbose)

    @functools.cached_property
    def _changelog(self) -> Changelog:
        return entries_changelog(self._readable)

    @functools.cached_property
    def _readable(self) -> dict[str, Any]:
        """The document as renderings read it (`document.read`: strings made printable); as it
        is when both graphs are known `printable` (loaded from text without an escape), so a
        large diff is not searched for what cannot be there, and without its union edges,
        which no changelog reads."""
        if self.old.printable and self.new.printable:
            return self._entries_doc
        return read(self._doc)

    def _document(self) -> dict[str, Any]:
        """The document without its changelog, built once (renderings read it, never change it)."""
        return self._doc

    @functools.cached_property
    def _doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for key, value in self._entries_doc.items():
            doc[key] = value
            if key == "nodes":
                doc["edges"] = [e.to_dict() for e in self.edges]
        return doc

    @functools.cached_property
    def _entries_doc(self) -> dict[str, Any]:
        """The document but its `edges`."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "identical": self.identical,
            "strict": self.strict,
            "summary": self._facts(),
            "old": _side(self.old),
            "new": _side(self.new),
            "ignore": list(self.ignore),
            "cost": self.cost.to_dict(),
            "nodes": self._entry_docs(),
            **({"checkpoint": self.checkpoint.to_dict()} if self.checkpoint else {}),
            **({"export": self.export.to_dict()} if self.export is not None else {}),
        }

    def _entry_docs(self) -> list[dict[str, Value]]:
        """Each entry's document, with its own cost where it moved."""
        changed = any(e.status != "unchanged" for e in self.entries)
        costs = EntryCosts(self.old, self.new) if changed else None  # module sums: only if used
        docs = []
        for e in self.entries:
            doc = e.to_dict()
            if e.status != "unchanged" and costs is not None and costs.known:
                old = e.old_name if e.status != "added" else None
                new = e.name if e.status != "removed" else None
                if e.path is not None and e.kind == "module":
                    old, new = _module_of(self.old, old), _module_of(self.new, new)
                moved = costs.of(old, new)
                if moved is not None:
                    doc["cost"] = moved.to_dict()
            docs.append(doc)
        return docs

    def to_text(self, verbose: bool = False, colour: bool = False) -> str:
        """The review changelog (`nnviz.diffing.changelog.changelog` of `to_dict()`): each real
        change once, its consequences folded under it; `verbose` lists every change; `colour`
        adds ANSI colours for a terminal."""
        return text_of(self.changelog(verbose), colour)

    def to_markdown(self) -> str:
        """Summary table, changelog and Mermaid flowchart (`nnviz.diffing.changelog.markdown`)."""
        printable = self.old.printable and self.new.printable  # read as `_readable`, edges too
        return markdown_of(self._doc if printable else self._readable, self._changelog)

    def __repr__(self) -> str:
        """One line: the two sides and the changelog's totals (`to_text()` has the changelog)."""
        return f"<GraphDiff {self.old.name} → {self.new.name}: {totals(self._document())}>"

    def _repr_markdown_(self) -> str:
        """The changelog, for a notebook where the interactive page is too large to inline."""
        return f"```text\n{self.to_text()}```\n"

    def _repr_html_(self) -> str | None:
        """Inline display in Jupyter: the interactive diff page (changelog links, statuses,
        folding) in a sandboxed frame; None when too large to inline."""
        from nnviz.render.notebook import notebook_html  # lazy: rendering sits two floors up

        return notebook_html(self)


def _module_of(graph: Graph, name: str | None) -> str | None:
    """The module path of an entry named `name` (a module call's node id, or a module path)."""
    if name is None:
        return None
    if name in graph and graph.node(name).module is not None:
        return graph.node(name).module
    return name


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
