"""How one fact of a changelog is worded, the same in every rendering (`nnviz.diffing.changelog`,
`nnviz.diffing.mermaid`, the drawing's labels): a field change (`describe`), a count of op kinds
(`counted`), a number of parameters (`human`), what changed inside a module (`inside_text`), an
entry's size (`size_text`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nnviz.diffing.entries import field_change
from nnviz.diffing.records import ABSENT, VARIES, FieldChange, Inside, Places, Size
from nnviz.values import format_value

_MAX_KINDS = 5


def human(n: int) -> str:
    """`2400000` -> `2.4M`, `9500` -> `9.5K`, `512` -> `512`."""
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= size:
            return f"{n / size:.1f}".rstrip("0").rstrip(".") + unit
    return str(n)


def display(name: str) -> str:
    return name if name else "(root)"


def counted(kinds: tuple[tuple[str, int], ...] | Mapping[str, int]) -> str:
    """`mul ×3, add ×2, pow`, the most frequent first, at most five kinds then `…`."""
    items = kinds.items() if isinstance(kinds, Mapping) else kinds
    ranked = sorted(items, key=lambda kv: -kv[1])
    shown = [f"{k} ×{n}" if n > 1 else k for k, n in ranked[:_MAX_KINDS]]
    return ", ".join(shown + (["…"] if len(ranked) > _MAX_KINDS else []))


def _label(change: FieldChange) -> str:
    key = change.key
    field = change.field
    rest = str(change.slot) if change.slot is not None else key.partition(".")[2]
    if field in ("hparams", "parameters"):
        return rest
    if field == "inputs":  # `input 0` (a position), `input other` (a slot), `input` (the
        return "input" if rest == "input" else f"input {rest}"  # slot named input)
    if field == "args":
        return f"arg {rest}"
    return "output" if key == "spec" else f"{field}.{rest}" if rest else key


def _value(change: FieldChange, value: Any, name: Callable[[str], str]) -> str:
    if value is ABSENT:
        return "(none)"
    if isinstance(value, Places):
        return name(value.single) if value.single is not None else str(value)
    if change.key == "class":
        return str(value).rsplit(".", 1)[-1]
    if change.field == "inputs" or change.key in ("op", "kind"):
        return str(value)
    return format_value(value)


def describe(change: FieldChange, name: Callable[[str], str] = str) -> str:
    """`kernel_size (3, 3) → (5, 5)`; a class by its short name unless both are the same
    (`class torch.nn.LayerNorm → timm.layers.norm.LayerNorm (a subclass; same settings)`).
    `name` shows the node an input reads."""
    old, new = _value(change, change.old, name), _value(change, change.new, name)
    if change.key == "class" and old == new:
        old, new = str(change.old), str(change.new)
    note = note_of(change)
    return f"{_label(change)} {old} → {new}{f' ({note})' if note else ''}"


def describe_change(key: str, change: Mapping[str, Any]) -> str:
    """`describe` of one change of the diff document (`Change.to_dict()`)."""
    return describe(field_change(key, change))


def note_of(change: FieldChange) -> str | None:
    """What a change says beside its values: a class swap's relation and own settings."""
    if change.settings is None:
        return change.note
    own = [
        f"{k}=…" if v is VARIES else f"no {k}" if v is ABSENT else f"{k}={format_value(v)}"
        for k, v in change.settings
    ]
    return "; ".join(p for p in (change.note, ", ".join(own)) if p) or None


def size_text(size: Size | None) -> str:
    """` (12 nodes, 1.2M params)`, or ranges for a group (` (3–5 nodes, 9.5K–12K params)`)."""
    if size is None:
        return ""
    nodes = [str(n) for n in size.nodes]
    params = list(dict.fromkeys(human(n) for n in size.params))
    unit = "node" if nodes == ["1"] else "nodes"
    n = nodes[0] if len(nodes) == 1 else f"{nodes[0]}–{nodes[-1]}"
    p = params[0] if len(params) == 1 else f"{params[0]}–{params[-1]}"
    return f" ({n} {unit}, {p} params)"


def inside_text(inside: Inside, ops_line: bool = False) -> str:
    """`− wi Linear; + wi_0, wi_1 Linear; act ReLU → GELU; +8 ops (mul ×4, …)`; as a module's
    own ops line, `+8 (mul ×4, …)`."""
    parts = [
        f"{mark} {', '.join(map(str, places))} {what}" for mark, what, places in inside.modules
    ]
    parts += [f"{place} {old} → {new}" for place, old, new in inside.swaps]
    for mark, kinds in inside.ops:
        n = sum(count for _, count in kinds)
        noun = "" if ops_line else f" op{'s' if n != 1 else ''}"
        parts.append(f"{mark}{n}{noun} ({counted(kinds)})")
    return "; ".join(parts)
