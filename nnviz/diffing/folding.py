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
all. Pure functions over the document's entries (mappings) and the changelog's records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from nnviz.diffing.grouping import group_followers
from nnviz.diffing.records import Entry, Folded, Inside, Places

Doc = Mapping[str, Any]
_REWRITTEN = 3


def swap_owners(
    entries: list[Doc], shown: Callable[[Doc], bool], candidates: list[Doc]
) -> dict[str, str]:
    """For every entry inside (or equal to) a module whose class changed, the outermost such
    module's name; entries `shown` rejects (information, unchanged) own nothing, and only
    `candidates` (those of `entries` with something to say) may be shown."""
    swapped = [
        str(e["name"])
        for e in candidates
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
    if not owners:
        return {}  # no class swapped (most diffs): no entry to look up
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
    entries: list[Doc], shown: Callable[[Doc], bool], owners: Mapping[str, str]
) -> dict[str, str]:
    """For every op called directly by a module that adds or removes at least three ops of its
    own (its forward rewritten, as an upgrade does), that module's path: its op changes are one
    line on it. Ops already inside a swapped module stay with that one."""
    ops: dict[str, list[Doc]] = {}
    for e in entries:
        if e["kind"] in ("function", "method") and shown(e) and e["name"] not in owners:
            ops.setdefault(str(e["scope"]), []).append(e)
    out: dict[str, str] = {}
    for scope, calls in ops.items():
        if sum(1 for e in calls if e["status"] in ("added", "removed")) >= _REWRITTEN:
            out.update((str(e["name"]), scope) for e in calls)
    return out


def inside_summary(owner: str, inner: list[Doc], title: Callable[[Doc], str]) -> Inside:
    """What changed inside a module, by kind, with names relative to it: modules added,
    removed, swapped or changed by name; ops counted by kind (`−7 ops (mul ×3, add ×2, …)`)."""
    modules: dict[tuple[str, str], list[Places]] = {}
    ops: dict[str, dict[str, int]] = {"+": {}, "−": {}, "~": {}}
    swaps: list[tuple[Places, str, str]] = []
    for e in inner:
        rel = Places.of(str(e["name"])[len(owner) + 1 :])
        roots = {k: c for k, c in e.get("changes", {}).items() if not c.get("propagated")}
        status = e["status"]
        if e["kind"] == "module":
            if status in ("added", "removed"):
                modules.setdefault(("+" if status == "added" else "−", title(e)), []).append(rel)
            elif "class" in roots:
                old, new = str(roots["class"].get("old", "")), str(roots["class"].get("new", ""))
                if old.rsplit(".", 1)[-1] != new.rsplit(".", 1)[-1]:  # else both in full
                    old, new = old.rsplit(".", 1)[-1], title(e)
                swaps.append((rel, old, new))
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
    return Inside(
        tuple((mark, what, tuple(names)) for (mark, what), names in modules.items()),
        tuple(swaps),
        tuple((mark, tuple(kinds.items())) for mark, kinds in ops.items() if kinds),
    )


def _field(key: str) -> str:
    """`spec` -> `output`, `inputs.0` -> `input`, `parameters.weight` -> `weight`."""
    head, _, rest = key.partition(".")
    return {"spec": "output", "inputs": "input", "args": "args"}.get(head, rest or head)


def _op_kind(e: Doc, roots: Mapping[str, Any]) -> str:
    if "op" in roots:
        return f"{op_name(str(roots['op'].get('old', '')))} → {op_name(str(e.get('op', '')))}"
    return op_name(str(e.get("op", "")))


def restates(change: Mapping[str, Any], cause: Doc | None) -> bool:
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


_SHOWN = {"output": 1, "input": 2}
"""How many grouped followers of shapes that follow / of inputs rewired stay entries; beyond,
one `Folded` counts them (rewired inputs say where from, so two of them still read at a glance)."""
_MAX_FOLLOWERS = 5


def arrange_followers(followers: list[Entry | Folded], verbose: bool) -> list[Entry | Folded]:
    """An entry's followers as shown: other consequences (at most five, then how many more),
    then rewired inputs and shapes that follow, each run folded to one counting `Folded` when
    long; `verbose` keeps every one (grouped)."""
    if verbose:
        return group_followers(followers)
    kinds = [consequence(f) for f in followers]
    others = [f for f, kind in zip(followers, kinds, strict=True) if kind is None]
    out = _capped(group_followers(others))
    for kind in ("input", "output"):
        same = [f for f, k in zip(followers, kinds, strict=True) if k == kind]
        out += fold_consequences(group_followers(same), kind)
    return out


def _capped(followers: list[Entry | Folded]) -> list[Entry | Folded]:
    if len(followers) <= _MAX_FOLLOWERS + 1:
        return followers
    return [*followers[:_MAX_FOLLOWERS], Folded("more", len(followers) - _MAX_FOLLOWERS)]


def fold_consequences(followers: list[Entry | Folded], kind: str) -> list[Entry | Folded]:
    """Grouped followers of one `kind` (`output`: shapes that follow; `input`: inputs rewired)
    as they are while they are few, else one `Folded` counting the nodes by op."""
    if len(followers) <= _SHOWN[kind]:
        return followers
    kinds: dict[str, int] = {}
    for f in followers:
        for name in f.places.names() if isinstance(f, Entry) else ():
            parts = name.split(".")  # a Sequential's child reads with its parent: downsample.0
            op = ".".join(parts[-2:]) if parts[-1].isdigit() else op_name(parts[-1])
            kinds[op] = kinds.get(op, 0) + 1
    what: Literal["output", "input"] = "output" if kind == "output" else "input"
    return [Folded(what, sum(kinds.values()), tuple(kinds.items()))]


def consequence(follower: Entry | Folded) -> str | None:
    """`output` for a follower that says an output shape follows upstream, `input` for one that
    says an input was rewired; None for others."""
    if not isinstance(follower, Entry) or len(follower.changes) != 1:
        return None
    field = follower.changes[0].field
    return {"spec": "output", "inputs": "input"}.get(field)
