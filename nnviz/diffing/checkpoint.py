"""Whether an old checkpoint still loads: the state-dict contracts of two graphs compared through
the diff's matching, as one frozen `Verdict` record, and the key map that mends renames.

Every key of a `state_dict()` (parameters, persistent buffers, `_extra_state`) is in the module
tree of a format-4 graph (`Module.state_keys`). An old key pairs with a new one when its module
is matched to the new module (renamed or moved, `nnviz.diffing.matching`) and that module has a
key of the same local name, or, within a matched pair, the one leftover key of the same shape
(`gamma` -> `weight`); a key left unpaired pairs with the same key on the other side, as
`load_state_dict` itself would. What is still unpaired pairs by local name, shape and class
(`_leftovers`), then under its nearest matched module by shape and the likeness of its name,
moved into a new child module or out of one (`_anchored`); keys paired by name whose shapes
differ re-pair along a chain of moved modules (`_shifted`). Then exactly one verdict holds:

- `loads`: every key pairs with itself, same shape: a strict load succeeds as it is;
- `renames`: every key pairs, same shapes, some under another name: loads through the key map;
- `breaks`: shape mismatches, new keys (left at initialisation), keys no longer used. Only keys
  no longer used can be mended (the map drops them); shapes and new keys cannot;
- `unknown`: a side was recorded before format 4, without the contract.

dtypes never decide: `load_state_dict` copies into the new tensor's dtype. The verdict is
information; `nnviz.policy` (`checkpoint`) is what may fail on it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, Literal

from nnviz.errors import CheckpointError, NNVizError
from nnviz.graph import Graph

Status = Literal["loads", "renames", "breaks", "unknown"]
Shape = tuple[int, ...] | None
CONTRACT_VERSION = 4
"""The snapshot format version from which graphs record the state-dict contract."""
RERECORD = "re-record it (nnviz MODEL -o FILE.json, or pytest --nnviz-update)"
_SHOWN = 3  # examples named on the one-line verdict; -v and JSON list them all


@dataclass(frozen=True)
class Key:
    """One state-dict key of one side, with its shape (None for `_extra_state`) and, for a tied
    copy, the key it shares its tensor with."""

    key: str
    shape: Shape
    tied_to: str | None = None

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"key": self.key, "shape": _shape_doc(self.shape)}
        if self.tied_to is not None:
            doc["tied_to"] = self.tied_to
        return doc

    @classmethod
    def from_dict(cls, doc: Any) -> Key:
        tied = doc.get("tied_to") if isinstance(doc, dict) else None
        return cls(_text(doc, "key"), _shape(doc), tied if isinstance(tied, str) else None)

    def __str__(self) -> str:
        tie = f", tied to {self.tied_to}" if self.tied_to else ""
        return f"{self.key}{tie}"


@dataclass(frozen=True)
class Pair:
    """An old key and the new key it loads into, with both shapes."""

    old: str
    new: str
    old_shape: Shape
    new_shape: Shape

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": self.old,
            "new": self.new,
            "old_shape": _shape_doc(self.old_shape),
            "new_shape": _shape_doc(self.new_shape),
        }

    @classmethod
    def from_dict(cls, doc: Any) -> Pair:
        return cls(
            _text(doc, "old"),
            _text(doc, "new"),
            _shape(doc, "old_shape"),
            _shape(doc, "new_shape"),
        )


@dataclass(frozen=True)
class Verdict:
    """Whether checkpoints of the old graph load into the new one, with every key that says so."""

    status: Status
    renamed: tuple[Pair, ...] = ()
    """Keys that load under another name (same shape): what the key map holds."""
    mismatched: tuple[Pair, ...] = ()
    """Paired keys whose shapes differ: `size mismatch for ...`."""
    missing: tuple[Key, ...] = ()
    """New keys no old key fills: left at initialisation (`Missing key(s)`)."""
    unused: tuple[Key, ...] = ()
    """Old keys the new model has no place for (`Unexpected key(s)`)."""
    reason: str | None = None
    """Why the verdict is unknown."""

    @property
    def mendable(self) -> bool:
        """Whether a strict load succeeds once the key map is applied (renames, dropped keys)."""
        return self.status != "unknown" and not self.mismatched and not self.missing

    def key_map(self) -> dict[str, str | None]:
        """Old key -> new key for every renamed or moved tensor, and -> None for an old key no
        longer used (drop it); raises `CheckpointError` when no map can mend the break."""
        if not self.mendable:
            raise CheckpointError(f"no key map: {self.why_no_map()}")
        mapping: dict[str, str | None] = {pair.old: pair.new for pair in self.renamed}
        mapping.update((key.key, None) for key in self.unused)
        return mapping

    def why_no_map(self) -> str:
        """Why `key_map` cannot mend this verdict (empty when it can)."""
        if self.status == "unknown":
            return f"the checkpoint verdict is unknown ({self.reason})"
        parts = []
        if self.mismatched:
            parts.append(_count(len(self.mismatched), "shape mismatch", "shape mismatches"))
        if self.missing:
            parts.append(_count(len(self.missing), "new key", "new keys") + " without old weights")
        return " and ".join(parts) + " cannot be mended by renaming keys" if parts else ""

    def line(self) -> str:
        """The one-line verdict shown under a diff's totals."""
        if self.status == "unknown":
            return f"checkpoint: unknown — {self.reason}"
        if self.status == "loads":
            return "checkpoint: old checkpoints load as they are"
        if self.status == "renames":
            return f"checkpoint: loads after renaming {_count(len(self.renamed), 'key', 'keys')}"
        parts = []
        if self.mismatched:
            shown = [f"{p.new} {_fmt(p.old_shape)} → {_fmt(p.new_shape)}" for p in self.mismatched]
            count = _count(len(shown), "shape mismatch", "shape mismatches")
            parts.append(f"{count} ({_some(shown)})")
        if self.missing:
            count = _count(len(self.missing), "new key", "new keys")
            parts.append(f"{count} left at initialisation ({_some(map(str, self.missing))})")
        if self.unused:
            count = _count(len(self.unused), "key", "keys")
            parts.append(f"{count} no longer used ({_some(map(str, self.unused))})")
        return "checkpoint: breaks — " + ", ".join(parts)

    def shown(self, identical: bool, verbose: bool = False) -> list[str]:
        """The rendering hook: the lines a changelog shows under its totals; an identical diff
        shows only a verdict that is not `loads` (an identical architecture's checkpoints load
        unless its state keys changed), `verbose` adds every key."""
        if identical and self.status in ("loads", "unknown"):
            return []
        return [self.line(), *(self.details() if verbose else [])]

    def details(self) -> list[str]:
        """Every key behind the verdict, one per line (`-v`)."""
        out = [f"    → {p.old} → {p.new}" for p in self.renamed]
        out += [
            f"    ~ {p.new} {_fmt(p.old_shape)} → {_fmt(p.new_shape)}"
            + (f" (was {p.old})" if p.old != p.new else "")
            for p in self.mismatched
        ]
        out += [f"    + {key} {_fmt(key.shape)}" for key in self.missing]
        out += [f"    - {key} {_fmt(key.shape)}" for key in self.unused]
        return out

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "verdict": self.status,
            "renamed": [p.to_dict() for p in self.renamed],
            "mismatched": [p.to_dict() for p in self.mismatched],
            "missing": [k.to_dict() for k in self.missing],
            "unused": [k.to_dict() for k in self.unused],
            "mendable": self.mendable,
        }
        if self.reason is not None:
            doc["reason"] = self.reason
        return doc

    @classmethod
    def from_dict(cls, doc: Any) -> Verdict:
        """The record of a diff document's `checkpoint` (untrusted: `NNVizError` on a fault)."""
        if not isinstance(doc, dict) or doc.get("verdict") not in _STATUSES:
            raise NNVizError("diff document: checkpoint: not a checkpoint verdict")
        lists = {k: doc.get(k, []) for k in ("renamed", "mismatched", "missing", "unused")}
        if not all(isinstance(items, list) for items in lists.values()):
            raise NNVizError("diff document: checkpoint: its key lists must be lists")
        reason = doc.get("reason")
        return cls(
            doc["verdict"],
            tuple(Pair.from_dict(p) for p in lists["renamed"]),
            tuple(Pair.from_dict(p) for p in lists["mismatched"]),
            tuple(Key.from_dict(k) for k in lists["missing"]),
            tuple(Key.from_dict(k) for k in lists["unused"]),
            reason if isinstance(reason, str) else None,
        )


_STATUSES = ("loads", "renames", "breaks", "unknown")


def of_document(doc: Mapping[str, Any]) -> Verdict | None:
    """The verdict record of a diff document, None when it has none (written before)."""
    record = doc.get("checkpoint")
    return None if record is None else Verdict.from_dict(record)


# --- computing -------------------------------------------------------------------------------


def contract(graph: Graph) -> dict[str, Key]:
    """Every state-dict key of `graph` in `state_dict()` order, with shape and tie."""
    keys: dict[str, Key] = {}
    for path, module in graph.modules.items():
        for name, shape in module.state_keys.items():
            tie = module.ties.get(name)
            keys[_scoped(path, name)] = Key(_scoped(path, name), shape, tie)
    return keys


def recorded(graph: Graph) -> str | None:
    """Why `graph` lacks the state-dict contract, or None: read from an older snapshot, or made
    without it (a tracer records the dtype of every key, so a key without one means the
    contract was never read: a graph built by hand, a format-4 file of an nnviz before it)."""
    version = graph.meta.get("migrated_from")
    if isinstance(version, int) and version < CONTRACT_VERSION:
        return f"is a format-{version} snapshot, which records no state-dict keys"
    for module in graph.modules.values():
        if any(name not in module.dtypes for name in (*module.parameters, *module.buffers)):
            return "was recorded without its state-dict keys"
    return None


def verdict(old: Graph, new: Graph, modules: Mapping[str, str]) -> Verdict:
    """The verdict for loading `old`'s checkpoints into `new`, given the matched module paths
    (old path -> new path)."""
    sides = (("old", old), ("new", new))
    lacking = [f"the {side} side {why}" for side, g in sides if (why := recorded(g))]
    if lacking:
        return Verdict("unknown", reason=f"{' and '.join(lacking)}; {RERECORD}")
    before, after = contract(old), contract(new)
    pairs = _pairs(old, new, modules, after)
    taken = set(pairs.values())
    for key in before:  # what load_state_dict does with a key nothing else claimed: its name
        if key not in pairs and key in after and key not in taken:
            pairs[key] = key
            taken.add(key)
    pairs |= _leftovers(old, new, [k for k in before if k not in pairs], set(after) - taken)
    homes = _homes(old), _homes(new)
    taken = set(pairs.values())
    olds, news = [k for k in before if k not in pairs], [k for k in after if k not in taken]
    pairs |= _anchored(homes, modules, (olds, news), (before, after))
    pairs = _shifted(old, new, pairs, (before, after))
    taken = set(pairs.values())
    found = [Pair(o, n, before[o].shape, after[n].shape) for o, n in pairs.items()]
    renamed = tuple(p for p in found if p.old_shape == p.new_shape and p.old != p.new)
    mismatched = tuple(p for p in found if p.old_shape != p.new_shape)
    missing = tuple(k for name, k in after.items() if name not in taken)
    unused = tuple(k for name, k in before.items() if name not in pairs)
    status: Status = "breaks" if mismatched or missing or unused else "loads"
    if status == "loads" and renamed:
        status = "renames"
    order = {name: i for i, name in enumerate(before)}
    renamed = tuple(sorted(renamed, key=lambda p: order[p.old]))
    mismatched = tuple(sorted(mismatched, key=lambda p: order[p.old]))
    return Verdict(status, renamed, mismatched, missing, unused)


def _pairs(
    old: Graph, new: Graph, modules: Mapping[str, str], after: Mapping[str, Key]
) -> dict[str, str]:
    """Old key -> new key through the matched modules: the same local name, else, within a
    matched pair, the one leftover key of a shape on both sides."""
    pairs: dict[str, str] = {}
    for path, module in old.modules.items():
        target = modules.get(path)
        if target is None or target not in new.modules:
            continue
        mine, theirs = module.state_keys, new.modules[target].state_keys
        for name in mine:
            if name in theirs:
                pairs[_scoped(path, name)] = _scoped(target, name)
        left = [n for n in mine if n not in theirs], [n for n in theirs if n not in mine]
        for shape in {mine[n] for n in left[0]}:
            olds = [n for n in left[0] if mine[n] == shape]
            news = [n for n in left[1] if theirs[n] == shape]
            if len(olds) == len(news) == 1 and shape is not None:
                pairs[_scoped(path, olds[0])] = _scoped(target, news[0])
    return {o: n for o, n in pairs.items() if n in after}


def _leftovers(
    old: Graph, new: Graph, olds: list[str], news: Any, widths: tuple[int, ...] = (3, 2)
) -> dict[str, str]:
    """Keys still unpaired, paired when as many old as new keys share their local name, shape
    and module class, in module order: a module the matching could not place (a LayerNorm like
    every block's, moved under a wrapper or into a Sequential; transformers 5's ViT attention,
    `query`/`key`/`value` renamed `q_proj`/`k_proj`/`v_proj`) still holds the same tensor. What
    is left then pairs the same way by local name and shape alone (a table moved into a module
    of its own: Swin's `relative_position_bias_table`)."""
    owners = _owners(old), _owners(new)
    left = olds, [k for k in owners[1] if k in news]
    pairs: dict[str, str] = {}
    for width in widths:  # (name, shape, class), then (name, shape)
        groups: dict[tuple[Any, ...], tuple[list[str], list[str]]] = {}
        for side, keys in enumerate(left):
            for key in keys:  # a scalar (num_batches_tracked) says nothing about identity
                if owners[side][key][1]:
                    groups.setdefault(owners[side][key][:width], ([], []))[side].append(key)
        for a, b in groups.values():
            if len(a) == len(b):
                pairs.update(zip(a, b, strict=True))
        left = (
            [k for k in left[0] if k not in pairs],
            [k for k in left[1] if k not in pairs.values()],
        )
    return pairs


def _anchored(
    homes: tuple[dict[str, str], dict[str, str]],
    modules: Mapping[str, str],
    left: tuple[list[str], list[str]],
    keys: tuple[Mapping[str, Key], Mapping[str, Key]],
) -> dict[str, str]:
    """Keys still unpaired, paired under the nearest matched module holding each (its anchor): a
    parameter or buffer moved into a new child module or out of one, at any depth, keeps its
    matched block and its shape (timm's PoolFormer `layer_scale_1` -> `layer_scale1.scale`).
    Under one anchor, as many old as new keys of a shape pair one to one, by the likeness of
    their names below the anchor, ties in module order."""
    targets = set(modules.values())
    groups: dict[tuple[str, Shape], tuple[list[str], list[str]]] = {}
    for side, matched in ((0, modules.keys()), (1, targets)):
        for key in left[side]:
            shape = keys[side][key].shape
            if not shape:  # scalars and `_extra_state` say nothing about identity
                continue
            anchor = _anchor(homes[side][key], matched)
            if anchor is None:
                continue
            where = modules[anchor] if side == 0 else anchor
            below = key[len(anchor) + 1 :] if anchor else key
            groups.setdefault((where, shape), ([], []))[side].append(below)
    pairs: dict[str, str] = {}
    back = {target: path for path, target in modules.items()}
    for (where, _), (a, b) in groups.items():
        if len(a) != len(b):
            continue
        for x, y in _by_likeness(a, b):
            pairs[_scoped(back[where], x)] = _scoped(where, y)
    return pairs


def _anchor(path: str, matched: Any) -> str | None:
    """`path` or its nearest ancestor among `matched` (the root when it is matched)."""
    while path not in matched:
        if not path:
            return None
        path = path.rpartition(".")[0]
    return path


def _by_likeness(olds: list[str], news: list[str]) -> list[tuple[str, str]]:
    """Old and new names paired one to one, the most alike first (`layer_scale_1` with
    `layer_scale1.scale`, not `layer_scale2.scale`), ties in order."""
    plain = [re.sub(r"[^0-9a-z]", "", n.lower()) for n in news]
    ranked = sorted(
        (-SequenceMatcher(None, re.sub(r"[^0-9a-z]", "", o.lower()), p).ratio(), i, j)
        for i, o in enumerate(olds)
        for j, p in enumerate(plain)
    )
    done: tuple[set[int], set[int]] = set(), set()
    found = []
    for _, i, j in ranked:
        if i not in done[0] and j not in done[1]:
            done[0].add(i)
            done[1].add(j)
            found.append((olds[i], news[j]))
    return found


def _shifted(
    old: Graph, new: Graph, pairs: dict[str, str], keys: tuple[Mapping[str, Key], Mapping[str, Key]]
) -> dict[str, str]:
    """`pairs` with keys paired by name but of other shapes re-paired, where each finds an
    unpaired key of its shape, local name and module class and every key of the chain does: a
    module moved one place along a chain of blocks (timm's PiT: each stage's pooling moved to
    the start of the next, `transformers.0.pool` -> `transformers.1.pool`). A chain with an
    end left over (layers widened one after another) keeps its shape mismatches."""
    before, after = keys
    wrong = {o: n for o, n in pairs.items() if before[o].shape != after[n].shape}
    if not wrong:
        return pairs
    taken = set(pairs.values())
    pool = (
        [k for k in before if k in wrong or k not in pairs],
        [k for k in after if k in wrong.values() or k not in taken],
    )
    moved = _leftovers(old, new, pool[0], set(pool[1]), widths=(3,))
    links: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for o, n in (*wrong.items(), *moved.items()):
        links.setdefault(("n", n), set()).add(("o", o))
        links.setdefault(("o", o), set()).add(("n", n))
    found = dict(pairs)
    seen: set[tuple[str, str]] = set()
    for start in [("o", o) for o in wrong]:
        if start in seen:
            continue
        chain, todo = set(), [start]
        while todo:
            item = todo.pop()
            if item not in chain:
                chain.add(item)
                todo.extend(links.get(item, ()))
        seen |= chain
        olds = {k for side, k in chain if side == "o"}
        news = {k for side, k in chain if side == "n"}
        if all(o in moved for o in olds & wrong.keys()) and all(
            n in moved.values() for n in news & set(wrong.values())
        ):
            for o in olds & wrong.keys():
                del found[o]
            found.update((o, moved[o]) for o in olds if o in moved)
    return found


def _homes(graph: Graph) -> dict[str, str]:
    """Each key's module path."""
    return {
        _scoped(path, name): path
        for path, module in graph.modules.items()
        for name in module.state_keys
    }


def _owners(graph: Graph) -> dict[str, tuple[Any, ...]]:
    """Each key's (local name, shape, module class name)."""
    return {
        _scoped(path, name): (name, shape, module.class_name)
        for path, module in graph.modules.items()
        for name, shape in module.state_keys.items()
    }


def _scoped(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# --- reading and formatting ------------------------------------------------------------------


def _text(doc: Any, key: str) -> str:
    value = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(value, str):
        raise NNVizError(f"diff document: checkpoint: {key} must be a string")
    return value


def _shape(doc: Any, key: str = "shape") -> Shape:
    value = doc.get(key) if isinstance(doc, dict) else None
    if value is None:
        return None
    if not isinstance(value, list) or not all(type(d) is int for d in value):
        raise NNVizError(f"diff document: checkpoint: {key} must be a list of integers")
    return tuple(value)


def _shape_doc(shape: Shape) -> list[int] | None:
    return None if shape is None else list(shape)


def _fmt(shape: Shape) -> str:
    return "(no shape)" if shape is None else "[" + ", ".join(map(str, shape)) + "]"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _some(items: Any) -> str:
    items = list(items)
    more = len(items) - _SHOWN
    return ", ".join(items[:_SHOWN]) + (f", … {more} more" if more > 0 else "")
