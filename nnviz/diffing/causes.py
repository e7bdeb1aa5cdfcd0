"""The cause rules: which changes of the union entries are consequences of another entry's change,
and of which one. A consequence carries a `cause` (`Change.cause`), the name of the root-cause
entry it is folded under:

- an input slot that now reads from, or no longer reads from, an added or removed entry (or a
  module now called or no longer called) follows that entry; one rewired by siblings that
  swapped places follows the move;
- a changed output spec follows the changed module it is a repeated call of; else, when its
  entry has no change of its own, what its rewired inputs follow, the first upstream entry that
  was added or whose spec changed, or the scope whose hyperparameters or parameter shapes
  changed (an op that reads its module's resized parameters).

`mark_causes` runs once the entries are in union order, so an upstream spec's cause is known
before its readers'; it is linear in the entries and edges (times the module depth).
"""

from __future__ import annotations

from dataclasses import replace

from nnviz.diffing.document import Place, Shape, fold_root
from nnviz.diffing.model import Change
from nnviz.diffing.union import UnionEntry
from nnviz.graph import Graph, Node


def mark_causes(entries: list[UnionEntry], by_name: dict[str, UnionEntry], new: Graph) -> None:
    """Mark input rewiring by added/removed nodes (or modules now called or no longer called),
    and specs that follow an upstream change. `entries`, in union order, are those that may
    have changes (every other one is unchanged); `by_name` holds every entry."""
    shape = Shape(by_name, _place)
    for e in entries:
        _mark_rewired_inputs(e, by_name, shape)
    spec_cause: dict[str, str] = {}  # entry -> the root its changed spec follows (or itself)
    for e in entries:
        if e.new_node is None or "spec" not in e.changes:
            continue
        cause = _spec_cause(e, e.new_node, by_name, new, shape, spec_cause)
        spec_cause[e.name] = e.name if cause is None else cause
        if cause is not None:
            c = e.changes["spec"]
            e.changes["spec"] = replace(c, cause=cause)


def _place(e: UnionEntry) -> Place:
    return e.status, e.scope, _module_path(e)


def _module_path(e: UnionEntry) -> str | None:
    """The module an entry is or calls (a repeated call `drop_path:1` calls `drop_path`)."""
    if e.module is not None:
        return e.module.path
    node = e.node
    return node.module if node is not None and node.kind == "module" else None


def _mark_rewired_inputs(e: UnionEntry, by_name: dict[str, UnionEntry], shape: Shape) -> None:
    """An input slot that now reads from, or no longer reads from, an added or removed entry
    (or a module now called or no longer called) follows that entry's change; one rewired by
    siblings that swapped places follows the move."""
    for key, change in list(e.changes.items()):
        if not key.startswith("inputs.") or change.info is not None:
            continue
        for end in (change.old, change.new):
            other = by_name.get(end) if isinstance(end, str) else None
            if other is not None and (
                other.status in ("added", "removed") or "called" in other.changes
            ):
                e.changes[key] = replace(change, cause=fold_root(end, shape))
                break
        else:
            moved = _moved_end(e, change, by_name)
            if moved is not None:  # siblings that swapped places rewire their readers
                e.changes[key] = replace(change, cause=moved)


def _spec_cause(
    e: UnionEntry,
    node: Node,
    by_name: dict[str, UnionEntry],
    new: Graph,
    shape: Shape,
    spec_cause: dict[str, str],
) -> str | None:
    """What a changed output spec follows: the changed module it is a repeated call of; else,
    when the entry has no change of its own, what its rewired inputs follow, or the first
    upstream entry that was added or whose spec changed. None for a root cause."""
    module_entry = by_name.get(node.module or "\0")
    if (
        module_entry is not None
        and module_entry is not e
        and any(not c.propagated for c in module_entry.changes.values())
    ):
        return module_entry.name  # a repeated call of a changed module
    if any(k != "spec" and not c.propagated for k, c in e.changes.items()):
        return None
    from_inputs = (c.cause for k, c in e.changes.items() if k.startswith("inputs.") and c.cause)
    found = next(from_inputs, None)
    if found is not None:
        return found
    for p in new.predecessors(node.id):
        pe = by_name.get(p)
        if pe is None or pe.info is not None:
            continue  # scalar plumbing (a size tuple) says how, the tensor it reshapes says why
        if pe.status == "added":
            return fold_root(p, shape)
        if "spec" in pe.changes:
            return spec_cause.get(p, p)
    scope = by_name.get(e.scope)
    if scope is not None and any(
        k.startswith(("hparams.", "parameters.")) and not c.propagated
        for k, c in scope.changes.items()
    ):
        return scope.name  # an op that reads its module's resized parameters
    return None


def _moved(e: UnionEntry) -> bool:
    """A module call whose module moved (renamed within the tree, e.g. reordered siblings)."""
    return (
        e.new_node is not None
        and e.new_node.kind == "module"
        and e.old_name is not None
        and e.old_name != e.new_name
    )


def _moved_end(e: UnionEntry, change: Change, by_name: dict[str, UnionEntry]) -> str | None:
    """The moved module an input rewiring follows from: the entry itself when it moved, else
    the new (or old) source when that one moved."""
    if _moved(e):
        return e.name
    for end in (change.new, change.old):
        other = by_name.get(end) if isinstance(end, str) else None
        if other is not None and _moved(other):
            return other.name
    return None
