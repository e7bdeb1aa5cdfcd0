"""Whether an old checkpoint still loads: the state-dict contracts of two graphs compared through
the diff's matching, as one frozen `Verdict` record, and the key map that mends renames.

Every key of a `state_dict()` (parameters, persistent buffers, `_extra_state`) is in the module
tree of a format-4 graph (`Module.state_keys`). Which old key loads into which new one is
`nnviz.diffing.keypairs.pair` (through the diff's module matching, then as `load_state_dict`
would, by name, then by what each key is and where it lives). Then exactly one verdict holds:

- `loads`: every key pairs with itself, same shape: a strict load succeeds as it is;
- `renames`: every key pairs, same shapes, some under another name: loads through the key map;
- `breaks`: shape mismatches, new keys (left at initialisation), keys no longer used, and the
  keys renamed beside them. Only keys no longer used can be mended (the map drops them); shapes
  and new keys cannot, and the map of a non-strict load (`key_map(strict=False)`) leaves them
  at initialisation;
- `unknown`: a side was recorded before format 4, without the contract.

dtypes never decide: `load_state_dict` copies into the new tensor's dtype. The verdict is
information; `nnviz.policy` (`checkpoint`) is what may fail on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from nnviz.diffing import keypairs
from nnviz.diffing.keypairs import Shape, scoped
from nnviz.errors import CheckpointError, NNVizError
from nnviz.graph import Graph

Status = Literal["loads", "renames", "breaks", "unknown"]
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

    def key_map(self, strict: bool = True) -> dict[str, str | None]:
        """Old key -> new key for every renamed or moved tensor, and -> None for an old key no
        longer used (drop it), so that `load_state_dict(mapped, strict=True)` succeeds; raises
        `CheckpointError` when no map can mend the break. With `strict=False`, the map for
        `load_state_dict(mapped, strict=False)` where a strict load cannot succeed: the same
        renames and drops, and -> None for an old key whose shape changed too (a non-strict
        load still refuses a size mismatch), so every tensor that can load loads and the new
        keys and changed shapes stay at initialisation; it raises only for `unknown`."""
        if self.status == "unknown" or (strict and not self.mendable):
            raise CheckpointError(f"no key map: {self.why_no_map()}")
        mapping: dict[str, str | None] = {pair.old: pair.new for pair in self.renamed}
        mapping.update((key.key, None) for key in self.unused)
        if not strict:
            mapping.update((pair.old, None) for pair in self.mismatched)
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
        if self.renamed:  # the other keys need renaming too: what the key map does
            parts.append(f"{_count(len(self.renamed), 'key', 'keys')} renamed (--key-map)")
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
            keys[scoped(path, name)] = Key(scoped(path, name), shape, tie)
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
    pairs = keypairs.pair(old, new, modules)
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
