"""What a diff says about cost: the totals on both sides and each changed entry's own move.

Records (frozen, `to_dict`/`from_dict`, one-line `line()`), made from the two graphs
(`nnviz.costs`) by `GraphDiff`, stored in the diff document (`"cost"` at the top level, `"cost"`
on an entry whose own figures moved; docs/diff-format.md) and read back from it by the renderings:

- `CostDiff`: old and new totals (`Side`: MACs, activation bytes, ops not counted; or unknown,
  with why). `line()` is the totals line's part (`compute 1.82 → 2.00 GMACs (+10.0%) · activations
  31.4 → 33.0 MiB (+5.1%)`); `unknown_line()` the one line a diff with an unknown side prints.
- `EntryCost`: one entry's (a module: everything it runs; an op: itself) old and new figures;
  `line()` is what its changelog line carries (`+116 MMACs, +56.2 KiB activations`).

MACs are multiply-accumulates (FLOPs = 2 × MACs); every figure says so. No torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from nnviz.costs import RERECORD, Cost, bytes_text, macs_text, per_module, total, uncounted_text
from nnviz.graph import Graph

SYMBOLIC = "symbolic sizes: a cost would be a formula"
"""Why a side traced with named sizes (`-i tensorBx3x224x224`) has no cost."""


def _symbolic(value: Any) -> bool:
    """Whether a recorded input spec names a size (`{"$tensor": {"shape": ["B", 3]}}`)."""
    if isinstance(value, dict):
        shape = value.get("$tensor", {}).get("shape") if "$tensor" in value else None
        if isinstance(shape, list):
            return any(isinstance(size, str) for size in shape)
        return any(_symbolic(v) for v in value.values())
    if isinstance(value, list):
        return any(_symbolic(v) for v in value)
    return False


@dataclass(frozen=True)
class Side:
    """One side's totals, or why they are unknown."""

    known: bool
    macs: int = 0
    activation_bytes: int = 0
    uncounted: Mapping[str, int] = field(default_factory=dict)
    why: str = ""
    """For an unknown side: `format 3` (an older snapshot), `no inputs` (traced without data),
    `SYMBOLIC` (sizes named in `-i`, where a cost would be a formula)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "uncounted", MappingProxyType(dict(self.uncounted)))

    @classmethod
    def of(cls, graph: Graph) -> Side:
        cost = total(graph)
        if cost.known:
            return cls(True, cost.macs, cost.out_bytes, cost.uncounted)
        older = graph.meta.get("migrated_from")
        if older is not None:
            return cls(False, why=f"format {older}")
        if _symbolic(graph.meta.get("inputs")):
            return cls(False, why=SYMBOLIC)
        return cls(
            False, why="traced with data, no cost" if graph.traced_with_data else "no inputs"
        )

    def to_dict(self) -> dict[str, Any]:
        if not self.known:
            return {"known": False, "why": self.why}
        doc: dict[str, Any] = {
            "known": True,
            "macs": self.macs,
            "flops": 2 * self.macs,
            "activation_bytes": self.activation_bytes,
        }
        if self.uncounted:
            doc["uncounted"] = dict(sorted(self.uncounted.items()))
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Side:
        if not doc.get("known"):
            return cls(False, why=str(doc.get("why", "")))
        uncounted = doc.get("uncounted") or {}
        return cls(
            True,
            int(doc.get("macs", 0)),
            int(doc.get("activation_bytes", 0)),
            {str(k): int(v) for k, v in dict(uncounted).items()},
        )


def change(old: int, new: int) -> float | None:
    """The relative move `new / old - 1`; None from 0."""
    return (new - old) / old if old else None


def _pct(old: int, new: int) -> str:
    ratio = change(old, new)
    return f" ({ratio:+.1%})" if ratio is not None and old != new else ""


@dataclass(frozen=True)
class CostDiff:
    """The cost of both sides of a diff."""

    old: Side
    new: Side

    @classmethod
    def of(cls, old: Graph, new: Graph) -> CostDiff:
        return cls(Side.of(old), Side.of(new))

    @property
    def known(self) -> bool:
        return self.old.known and self.new.known

    @property
    def macs_change(self) -> float | None:
        """Relative compute move, None when unknown (or from 0)."""
        return change(self.old.macs, self.new.macs) if self.known else None

    @property
    def activations_change(self) -> float | None:
        if not self.known:
            return None
        return change(self.old.activation_bytes, self.new.activation_bytes)

    @property
    def moved(self) -> bool:
        return self.known and (
            self.old.macs != self.new.macs or self.old.activation_bytes != self.new.activation_bytes
        )

    def to_dict(self) -> dict[str, Any]:
        return {"unit": "MACs", "old": self.old.to_dict(), "new": self.new.to_dict()}

    @classmethod
    def from_dict(cls, doc: Any) -> CostDiff | None:
        if not isinstance(doc, Mapping):
            return None
        return cls(Side.from_dict(doc.get("old") or {}), Side.from_dict(doc.get("new") or {}))

    def line(self) -> str:
        """The totals line's part: `compute 1.82 → 2.00 GMACs (+10.0%) · activations 31.4 MiB →
        33.0 MiB (+5.1%)`, with what was not counted; empty when a side is unknown."""
        if not self.known:
            return ""
        o, n = self.old, self.new
        compute = f"compute {_pair(o.macs, n.macs, macs_text)}{_pct(o.macs, n.macs)}"
        memory = f"activations {_pair(o.activation_bytes, n.activation_bytes, bytes_text)}"
        memory += _pct(o.activation_bytes, n.activation_bytes)
        missing = uncounted_text(n.uncounted) or uncounted_text(o.uncounted)
        return " · ".join(part for part in (compute, memory, missing) if part)

    def rows(self) -> list[str]:
        """Markdown table cells: `compute (MACs) | 1.82 G → 2.00 G (+10.0%)`, activations."""
        o, n = self.old, self.new
        return [
            f"compute (MACs) | {_pair(o.macs, n.macs, macs_text)}{_pct(o.macs, n.macs)}",
            f"activations | {_pair(o.activation_bytes, n.activation_bytes, bytes_text)}"
            f"{_pct(o.activation_bytes, n.activation_bytes)}",
        ]

    def unknown_line(self) -> str:
        """One line when a side's cost is unknown though it could be known (an older snapshot,
        or one side traced with inputs and the other not); empty otherwise."""
        uncountable = ("no inputs", SYMBOLIC)  # on both sides: nothing to re-record
        if self.known or (self.old.why in uncountable and self.new.why in uncountable):
            return ""
        unknown = [(n, s) for n, s in (("old", self.old), ("new", self.new)) if not s.known]
        sides = [f"{name} side ({side.why})" for name, side in unknown]
        advice = RERECORD
        if any(side.why == SYMBOLIC for _, side in unknown):
            advice = "re-record it with numbers for the named sizes (-i tensor8x3, not tensorBx3)"
        return f"cost unknown on the {' and the '.join(sides)}: {advice}"


def _pair(old: int, new: int, text: Any) -> str:
    return text(old) if old == new else f"{text(old)} → {text(new)}"


@dataclass(frozen=True)
class EntryCost:
    """One changed entry's own figures on both sides (0 where it does not exist)."""

    macs: tuple[int, int]
    activation_bytes: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "macs": {"old": self.macs[0], "new": self.macs[1]},
            "activation_bytes": {"old": self.activation_bytes[0], "new": self.activation_bytes[1]},
        }

    @classmethod
    def from_dict(cls, doc: Any) -> EntryCost | None:
        if not isinstance(doc, Mapping):
            return None
        m, a = doc.get("macs") or {}, doc.get("activation_bytes") or {}
        return cls(
            (int(m.get("old", 0)), int(m.get("new", 0))),
            (int(a.get("old", 0)), int(a.get("new", 0))),
        )

    def times(self, count: int) -> EntryCost:
        """The figures of `count` places alike (a grouped entry's, all together)."""
        return EntryCost(
            (self.macs[0] * count, self.macs[1] * count),
            (self.activation_bytes[0] * count, self.activation_bytes[1] * count),
        )

    def line(self) -> str:
        """`+116 MMACs, +56.2 KiB activations` (what moved; the totals carry percentages)."""
        parts = []
        for (old, new), text, noun in (
            (self.macs, macs_text, ""),
            (self.activation_bytes, bytes_text, " activations"),
        ):
            if old != new:
                parts.append(f"{'+' if new > old else '-'}{text(abs(new - old))}{noun}")
        return ", ".join(parts)


class EntryCosts:
    """Each entry's own cost, from the two graphs' module sums (computed once)."""

    def __init__(self, old: Graph, new: Graph) -> None:
        self.known = total(old).known and total(new).known
        self.sides = (_own(old), _own(new)) if self.known else ({}, {})

    def of(self, old_name: str | None, new_name: str | None) -> EntryCost | None:
        """The entry's figures, None when unknown or when nothing moved."""
        if not self.known:
            return None
        old = self.sides[0].get(old_name) if old_name is not None else None
        new = self.sides[1].get(new_name) if new_name is not None else None
        o, n = old or Cost(), new or Cost()
        found = EntryCost((o.macs, n.macs), (o.out_bytes, n.out_bytes))
        if (
            found.macs[0] == found.macs[1]
            and found.activation_bytes[0] == found.activation_bytes[1]
        ):
            return None
        return found


def _own(graph: Graph) -> dict[str, Cost]:
    """Every module path's and every op node's cost, by the name a diff entry carries."""
    out = dict(per_module(graph))
    for node in graph.nodes:
        if node.cost is not None and node.kind in ("function", "method"):
            out[node.id] = Cost(
                int(node.cost.get("macs", 0)),
                int(node.cost.get("out_bytes", 0)),
                dict(node.cost.get("uncounted") or {}),
            )
    return out
