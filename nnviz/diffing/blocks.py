"""Which sibling blocks carry the same changes: `blocks.{0..11}` where `blocks.3.attn.norm` was
added in each of `blocks.0` … `blocks.11`.

The rule, stated once for every presentation of a diff: a *block* is a module whose last path
component ends in a number (`blocks.3`, `encoder.layer.0`, `layer2.1`, torchvision's
`encoder.layers.encoder_layer_7`; its siblings share the parent and the part before the number);
its *changes* are the diff's entries inside it that are not `unchanged` (rewired inputs are
changes of the reading entry), each written relative to the block (`@.attn.norm`, an input
`blocks.3.attn.reshape:1 → blocks.3.attn.norm` as `@.attn.reshape:1 → @.attn.norm`) with every
other value literal; which change a change follows is left out (a shape that follows the
previous block's output is the same change in every block). Sibling blocks whose changes are
equal are one group. A reference to another
block (`blocks.2.add` read by `blocks.3`) stays literal, so blocks rewired one step apart never
group. The changelog's rule says the same of its lines (numbers of module paths blanked, every
varying one varying with the block's: `nnviz.diffing.grouping`). Works on the diff document's
`nodes` (`GraphDiff.to_dict()`), so both the drawing and the text can use it; never imports
torch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nnviz.diffing.records import span

_SEPARATORS = ".:#"
_INDEX = re.compile(r"(0|[1-9][0-9]*)$")
"""The number a block's name ends in (`12`, `encoder_layer_7`; `block01` is `block0` + `1`)."""
"""What may follow a module path inside a name: a child, a repeated call, an old-side mark."""


@dataclass(frozen=True)
class Siblings:
    """Sibling blocks `parent.<stem>i` (i in `indices`, ascending) whose changes are equal."""

    parent: str
    indices: tuple[int, ...]
    stem: str = ""
    """What the blocks' names start with before their number (`encoder_layer_`), often none."""

    @property
    def paths(self) -> tuple[str, ...]:
        """The blocks' module paths (`blocks.0`, `blocks.1`, ...)."""
        return tuple(child(self.parent, f"{self.stem}{i}") for i in self.indices)

    @property
    def title(self) -> str:
        """`blocks.{0..11}`: the parent and the span of the indices."""
        return child(self.parent, self.stem + span(list(self.indices)))

    def only(self, indices: Iterable[int]) -> Siblings:
        """The same group restricted to `indices`."""
        return Siblings(self.parent, tuple(sorted(indices)), self.stem)


def child(parent: str, name: object) -> str:
    return f"{parent}.{name}" if parent else str(name)


def within(name: str, block: str) -> bool:
    """Whether union name `name` is `block` or lies in it (`blocks.3.attn:1`, `blocks.3#old`)."""
    return name == block or (name.startswith(block) and name[len(block)] in _SEPARATORS)


def relative(value: Any, block: str) -> Any:
    """`value` with every name inside `block` written from `@` (`blocks.3.attn` → `@.attn`)."""
    if isinstance(value, str):
        return "@" + value[len(block) :] if block and within(value, block) else value
    if isinstance(value, list | tuple):
        return [relative(v, block) for v in value]
    if isinstance(value, Mapping):
        return {k: relative(v, block) for k, v in value.items()}
    return value


def repeated_changes(nodes: Sequence[Mapping[str, Any]]) -> list[Siblings]:
    """Groups of two or more sibling blocks with equal changes, outermost blocks first (then in
    the order their parents first appear). Nested groups are all listed: `stages.{0,1}` and
    `stages.0.blocks.{0..2}` (and `stages.1.blocks.{0..2}`)."""
    blocks = _blocks(nodes)
    changes: dict[str, list[str]] = {}
    for e in nodes:
        if e["status"] != "unchanged":
            for block in _enclosing(e, blocks):
                changes.setdefault(block, []).append(_entry_key(e, block))
    alike: dict[tuple[str, str, tuple[str, ...]], list[int]] = {}
    for block, keys in changes.items():
        parent, _, name = block.rpartition(".")
        index = _INDEX.search(name)
        assert index is not None  # a block's name ends in a number
        family = (parent, name[: index.start()], tuple(sorted(keys)))
        alike.setdefault(family, []).append(int(index.group()))
    groups = [
        Siblings(parent, tuple(sorted(ix)), stem)
        for (parent, stem, _), ix in alike.items()
        if len(ix) > 1
    ]
    first = {block: i for i, block in enumerate(blocks)}
    return sorted(groups, key=lambda g: (g.parent.count("."), first[g.paths[0]]))


def _blocks(nodes: Sequence[Mapping[str, Any]]) -> dict[str, None]:
    """Module paths whose last component ends in a number, in order of appearance."""
    found: dict[str, None] = {}
    for e in nodes:
        for path in (e.get("path"), e.get("scope")):
            while path:
                if _INDEX.search(path.rpartition(".")[2]):
                    found.setdefault(path)
                path = path.rpartition(".")[0]
    return found


def _enclosing(e: Mapping[str, Any], blocks: Mapping[str, None]) -> list[str]:
    """The blocks an entry lies in: its own path if a block, and those around its scope."""
    paths = [p for p in (e.get("path"), e.get("scope")) if p]
    found: list[str] = []
    for path in paths:
        while path:
            if path in blocks and path not in found:
                found.append(path)
            path = path.rpartition(".")[0]
    return found


def _entry_key(e: Mapping[str, Any], block: str) -> str:
    fields = ("name", "kind", "status", "op", "renamed_from", "info", "flow")
    key = {k: relative(e.get(k), block) for k in fields}
    # what a change follows is not the change (the previous block's output, for every block)
    key["changes"] = {
        field: {k: v for k, v in relative(change, block).items() if k != "cause"}
        for field, change in e.get("changes", {}).items()
    }
    return json.dumps(key, sort_keys=True)


@dataclass(frozen=True)
class Chart:
    """Repeated blocks drawn once in a chart of the document (the Mermaid flowchart): the first
    block of each index-consecutive run of a group stands for the run (on a chain of blocks,
    a run with a gap would draw a loop through the block between)."""

    names: Mapping[str, str]
    """A name inside a later block of a run → its counterpart in the first block."""
    titles: Mapping[str, tuple[str, int]]
    """The first block of each run → its title and count (`blocks.{0..11}`, 12)."""
    blocks: Mapping[str, tuple[str, str]]
    """A name inside any block of a run → (the run's first block, its own block)."""

    def shown(self, name: str) -> str:
        """`name` with the first block of its run written as the run's title, and `×N`."""
        for block, (title, count) in self.titles.items():
            if within(name, block):
                return f"{title}{name[len(block) :]} ×{count}"
        return name

    def rename(self, name: str) -> str:
        """`name` with the first block of its run written as the run's title (`blocks.0.attn.x`
        → `blocks.{0..11}.attn.x`)."""
        for block in sorted(self.titles, key=len, reverse=True):
            if within(name, block):
                return self.titles[block][0] + name[len(block) :]
        return name

    def between_blocks(self, source: str, target: str) -> bool:
        """Whether an edge runs from one block of a run to another (left out of the chart)."""
        s, t = self.blocks.get(source), self.blocks.get(target)
        return s is not None and t is not None and s[0] == t[0] and s[1] != t[1]


def chart(nodes: Sequence[Mapping[str, Any]]) -> Chart:
    """The outermost groups of `repeated_changes`, cut into index-consecutive runs."""
    titles: dict[str, tuple[str, int]] = {}
    first_of: dict[str, str] = {}  # every block of a run → the run's first block
    for group in repeated_changes(nodes):
        if any(prefix in first_of for prefix in prefixes(group.parent)):
            continue  # nested: the outer run already stands for it
        for run in _consecutive(group):
            titles[run.paths[0]] = (run.title, len(run.indices))
            first_of.update(dict.fromkeys(run.paths, run.paths[0]))
    names: dict[str, str] = {}
    blocks: dict[str, tuple[str, str]] = {}
    for e in nodes:
        name = e["name"]
        block = next((p for p in prefixes(name) if p in first_of), None)
        if block is not None:
            blocks[name] = (first_of[block], block)
            if block != first_of[block]:
                names[name] = first_of[block] + name[len(block) :]
    return Chart(names, titles, blocks)


def prefixes(name: str) -> list[str]:
    """The module paths `name` may lie in, outermost first (`a`, `a.3`, `a.3.b` for `a.3.b:1`)."""
    return [name[:i] for i, char in enumerate(name) if char in _SEPARATORS] + [name]


def _consecutive(group: Siblings) -> list[Siblings]:
    runs: list[list[int]] = []
    for index in group.indices:
        if runs and index == runs[-1][-1] + 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return [group.only(run) for run in runs if len(run) > 1]
