"""Exportability as a guarded property: whether `torch.export` succeeded on each side of a diff.

A graph records it in `meta["export"]` (`{"ok": true}`, or `{"ok": false, "reason": ...,
"where": "modeling_x.py:123"}`), made by the export tracer or asked for with
`exportable=True`. Comparing two sides:

- ok → fails is drift: `export: ok → fails at modeling_x.py:123 (data-dependent branch on ...)`;
- fails → ok is a change too (`export: fails at ... → ok`): the stored snapshot must say ok, or
  the next regression would compare "fails" with "fails" and pass;
- a failure that moved or reworded (`where`, `reason`) is not drift: source lines never are;
- a side without a record is unknown, said in one line with how to record it, never drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nnviz.graph import Graph

HOW_TO_RECORD = "re-record with exportable=True (or --tracer export)"


@dataclass(frozen=True)
class Export:
    """One side's record."""

    ok: bool
    reason: str = ""
    where: str = ""

    @classmethod
    def of(cls, graph: Graph) -> Export | None:
        """The graph's record, None when it has none (or a malformed one)."""
        return cls.from_dict(graph.meta.get("export"))

    @classmethod
    def from_dict(cls, value: Any) -> Export | None:
        if not isinstance(value, dict) or not isinstance(value.get("ok"), bool):
            return None
        reason, where = value.get("reason", ""), value.get("where", "")
        return cls(value["ok"], str(reason) if reason else "", str(where) if where else "")

    def to_dict(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True}
        return {"ok": False, "reason": self.reason, "where": self.where}

    def __str__(self) -> str:
        if self.ok:
            return "ok"
        at = f" at {self.where}" if self.where else ""
        return f"fails{at} ({self.reason})" if self.reason else f"fails{at}"


@dataclass(frozen=True)
class ExportChange:
    """Exportability on both sides of a diff; `None` on a side is unknown."""

    old: Export | None
    new: Export | None

    @property
    def drifted(self) -> bool:
        """Whether exportability itself changed (both sides known, `ok` differs)."""
        return self.old is not None and self.new is not None and self.old.ok != self.new.ok

    @property
    def regressed(self) -> bool:
        return self.drifted and self.new is not None and not self.new.ok

    def line(self) -> str:
        """One line: `export: ok → fails at x.py:12 (...)`, `export: ok`, or what is unknown."""
        if self.old is None or self.new is None:
            side = "old" if self.old is None else "new"
            known = self.new if self.old is None else self.old
            return f"export: unknown on the {side} side ({known} on the other); {HOW_TO_RECORD}"
        if self.drifted or str(self.old) == str(self.new):
            return f"export: {self.old} → {self.new}" if self.drifted else f"export: {self.new}"
        return f"export: {self.new} (was {self.old}; not drift)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": None if self.old is None else self.old.to_dict(),
            "new": None if self.new is None else self.new.to_dict(),
            "drifted": self.drifted,
        }

    @classmethod
    def from_dict(cls, value: Any) -> ExportChange | None:
        if not isinstance(value, dict):
            return None
        return cls(Export.from_dict(value.get("old")), Export.from_dict(value.get("new")))


def compare(old: Graph, new: Graph) -> ExportChange | None:
    """Exportability of both sides; None when neither recorded it."""
    before, after = Export.of(old), Export.of(new)
    if before is None and after is None:
        return None
    return ExportChange(before, after)


def line(doc: Any) -> str | None:
    """The one line of a diff document's `"export"` record, None when it has none."""
    change = ExportChange.from_dict(doc.get("export") if isinstance(doc, dict) else None)
    return None if change is None else change.line()
