"""Consequences folded under their cause, so that the changelog says each real change once.

- A module whose class changed owns what changed inside it: the ops of a swapped activation, the
  Linear layers a swapped block replaced. They are one `↳ inside:` line under the class change
  (`− wi Linear; + wi_0, wi_1 Linear; act ReLU → NewGELUActivation; +10 ops (mul ×5, …)`), the
  same in every block, so that the swap groups across blocks as one line.
- A module that adds or removes at least three ops of its own (its forward rewritten) says its
  op changes on one line: `~ SelfAttention  T5Attention  ops +6 (contiguous ×2, …); −9 (…)`.
- A shape that follows and only changes sizes its cause's line changes the same way (every
  reader of a widened Embedding: `[1, 16, 64] → [1, 16, 128]`) is left to the totals.
- Other output shapes that only follow upstream stay `↳` lines while they fit on one, inputs rewired
  while they fit on two; a longer run is one line that counts them (`↳ output shapes follow in
  12 nodes (transpose ×6, …)`, `↳ inputs rewired in 32 nodes (mean ×16, mul ×16)`).

The diff document keeps every entry and every change; `changelog(doc, verbose=True)` lists them
all. Pure functions over the document's entries (mappings) and the changelog's text lines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nnviz.diffing.places import expand

Entry = Mapping[str, Any]
FOLLOWER = "    ↳ "
INSIDE = f"{FOLLOWER}inside: "
_MAX_KINDS = 5
_REWRITTEN = 3


def swap_owners(entries: list[Entry], shown: Callable[[Entry], bool]) -> dict[str, str]:
    """For every entry inside (or equal to) a module whose class changed, the outermost such
    module's name; entries `shown` rejects (information, unchanged) own nothing."""
    swapped = [
        str(e["name"])
        for e in entries
        if shown(e)
        and any(
            k == "class" and not c.get("propagated") and not c.get("info")
            for k, c in e.get("changes", {}).items()
        )
    ]
    owners: dict[str, str] = {}
    for name in sorted(swapped, key=len):  # outermost first: an inner swap folds into it
        if _owner(name, owners) is None:
            owners[name] = name
    out: dict[str, str] = {}
    for e in entries:
        owner = _owner(str(e["name"]), owners)
        if owner is not None:
            out[e["name"]] = owner
    return out


def _owner(name: str, owners: Mapping[str, str]) -> str | None:
    """The owner whose path `name` is or lies under."""
    parts = name.split(".")
    for cut in range(1, len(parts) + 1):
        head = ".".join(parts[:cut]).split("#")[0]
        if head in owners:
            return owners[head]
    return None


def rewritten_scopes(
    entries: list[Entry], shown: Callable[[Entry], bool], owners: Mapping[str, str]
) -> dict[str, str]:
    """For every op called directly by a module that adds or removes at least three ops of its
    own (its forward rewritten, as an upgrade does), that module's path: its op changes are one
    line on it. Ops already inside a swapped module stay with that one."""
    ops: dict[str, list[Entry]] = {}
    for e in entries:
        if e["kind"] in ("function", "method") and shown(e) and e["name"] not in owners:
            ops.setdefault(str(e["scope"]), []).append(e)
    out: dict[str, str] = {}
    for scope, calls in ops.items():
        if sum(1 for e in calls if e["status"] in ("added", "removed")) >= _REWRITTEN:
            out.update((str(e["name"]), scope) for e in calls)
    return out


def inside_summary(owner: str, inner: list[Entry], title: Callable[[Entry], str]) -> str:
    """What changed inside a module, by kind, with names relative to it: modules added,
    removed, swapped or changed by name; ops counted by kind (`−7 ops (mul ×3, add ×2, …)`)."""
    modules: dict[tuple[str, str], list[str]] = {}
    ops: dict[str, dict[str, int]] = {"+": {}, "−": {}, "~": {}}
    swaps: list[str] = []
    for e in inner:
        rel = str(e["name"])[len(owner) + 1 :]
        roots = {k: c for k, c in e.get("changes", {}).items() if not c.get("propagated")}
        status = e["status"]
        if e["kind"] == "module":
            if status in ("added", "removed"):
                modules.setdefault(("+" if status == "added" else "−", title(e)), []).append(rel)
            elif "class" in roots:
                old, new = str(roots["class"].get("old", "")), str(roots["class"].get("new", ""))
                if old.rsplit(".", 1)[-1] != new.rsplit(".", 1)[-1]:  # else both in full
                    old, new = old.rsplit(".", 1)[-1], title(e)
                swaps.append(f"{rel} {old} → {new}")
            elif roots:
                settings = [k.partition(".")[2] for k in roots if k.startswith("hparams.")]
                keys = ", ".join(settings or [_field(k) for k in roots])  # as the line would
                modules.setdefault(("~", f"({keys})"), []).append(rel)
        elif status in ("added", "removed") or "op" in roots or "spec" in roots:
            # an op that became another is said (`silu → gelu`), one whose own output changed
            # counted (`~3 ops (arange ×3)`: xcit's float32 → int64); one whose arguments alone
            # changed is part of the swap or rewrite (`-v` lists it)
            mark = {"added": "+", "removed": "−"}.get(status, "~")
            kind = _op_kind(e, roots) if mark == "~" else op_name(str(e.get("op", "")))
            ops[mark][kind] = ops[mark].get(kind, 0) + 1
    parts = [f"{mark} {', '.join(names)} {what}" for (mark, what), names in modules.items()]
    parts += swaps
    for mark, kinds in ops.items():
        if kinds:
            n = sum(kinds.values())
            parts.append(f"{mark}{n} op{'s' if n != 1 else ''} ({counted(kinds)})")
    return "; ".join(parts)


def _field(key: str) -> str:
    """`spec` -> `output`, `inputs.0` -> `input`, `parameters.weight` -> `weight`."""
    head, _, rest = key.partition(".")
    return {"spec": "output", "inputs": "input", "args": "args"}.get(head, rest or head)


def _op_kind(e: Entry, roots: Mapping[str, Any]) -> str:
    if "op" in roots:
        return f"{op_name(str(roots['op'].get('old', '')))} → {op_name(str(e.get('op', '')))}"
    return op_name(str(e.get("op", "")))


def restates(change: Mapping[str, Any], cause: Entry | None) -> bool:
    """Whether a shape that follows changes only sizes its cause changes the same way (an
    Embedding's `embedding_dim 64 → 128`, then `[1, 16, 64] → [1, 16, 128]` in every reader):
    it says nothing its cause's line does not."""
    mine = _resized(change.get("old"), change.get("new"))
    if not mine or cause is None:
        return False
    theirs: set[tuple[int, int]] = set()
    for c in cause.get("changes", {}).values():
        if not c.get("propagated"):
            theirs |= _resized(c.get("old"), c.get("new")) or set()
    return mine <= theirs


def _resized(old: Any, new: Any) -> set[tuple[int, int]] | None:
    """The (old, new) sizes that differ between two values read as flat lists of integers
    (shapes, tuples, numbers); None when they do not line up."""
    a, b = _sizes(old), _sizes(new)
    if len(a) != len(b):
        return None
    return {(x, y) for x, y in zip(a, b, strict=True) if x != y}


def _sizes(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, Mapping):
        return [n for key in sorted(value) for n in _sizes(value[key])]
    if isinstance(value, list | tuple):
        return [n for item in value for n in _sizes(item)]
    return []


def op_name(op: str) -> str:
    """`torch.nn.functional.gelu` -> `gelu`; `operator.add` -> `add`."""
    return op.rsplit(".", 1)[-1].split(":")[0] or "op"


def counted(kinds: Mapping[str, int]) -> str:
    """`mul ×3, add ×2, pow`, the most frequent first, at most five kinds then `…`."""
    ranked = sorted(kinds.items(), key=lambda kv: -kv[1])
    shown = [f"{k} ×{n}" if n > 1 else k for k, n in ranked[:_MAX_KINDS]]
    return ", ".join(shown + (["…"] if len(ranked) > _MAX_KINDS else []))


_SHOWN = {"output": 1, "input": 2}
"""How many grouped `↳` lines of shapes that follow / of inputs rewired stay lines; beyond, one
line counts them (rewired inputs say where from, so two of them still read at a glance)."""
_COUNTED = {"output": "output shapes follow", "input": "inputs rewired"}


def fold_consequences(lines: list[str], kind: str) -> list[str]:
    """Grouped `↳` lines of one `kind` (`output`: shapes that follow; `input`: inputs rewired)
    as they are while they are few, else one line counting the nodes by op."""
    if len(lines) <= _SHOWN[kind]:
        return lines
    kinds: dict[str, int] = {}
    for line in lines:
        names = line[len(FOLLOWER) :].partition("  ")[0]
        for name in expand(names):
            parts = name.split(".")  # a Sequential's child reads with its parent: downsample.0
            op = ".".join(parts[-2:]) if parts[-1].isdigit() else op_name(parts[-1])
            kinds[op] = kinds.get(op, 0) + 1
    n = sum(kinds.values())
    return [f"{FOLLOWER}{_COUNTED[kind]} in {n} nodes ({counted(kinds)})"]


def consequence(line: str) -> str | None:
    """`output` for a `↳` line that says an output shape follows upstream, `input` for one that
    says an input was rewired; None for other lines."""
    detail = line[len(FOLLOWER) :].partition("  ")[2]
    return next((kind for kind in _SHOWN if detail.startswith(f"{kind} ")), None)
